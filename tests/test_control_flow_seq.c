/*
 * Sequences and optionals crossing If, Loop and Scan bodies
 * (runtime/exec/frame.c qkv_body_run_values, control_values.c), on models
 * written by tests/data/make_control_flow_seq_models.py with numpy's
 * expected values: each direction across the boundary (If outputs,
 * Loop-carried values in and out, outer-scope reads by If, Loop and Scan
 * bodies, a sequence graph input passed through a body), an empty
 * sequence, an empty optional, an optional sequence becoming a sequence,
 * a Loop accumulating a sequence, Optional's TYPE_PROTO attribute, and
 * every error with its message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "loader.h" /* qkv_tensor_data_free */
#include "qkv.h"
#include "test_util.h"

typedef struct run {
    qkv_session *s;
    qkv_context *c;
    qkv_error err;
} run;

/* the inputs make_control_flow_seq_models.py computed its references from */
static float x2[2] = {1.5f, -2.0f}, w32[6];
static unsigned char yes = 1, no = 0;

static void make_inputs(void)
{
    for (int i = 0; i < 6; i++)
        w32[i] = (float)i * 0.5f - 1.0f;
}

static void open_model(run *r, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "control_flow_seq/%s.onnx", name);
    memset(r, 0, sizeof *r);
    cr_assert_eq(qkv_session_create(tu_data(rel), NULL, &r->s, &r->err), QKV_OK, "%s: %s", name,
                 r->err.message);
    cr_assert_eq(qkv_context_create(r->s, &r->c, &r->err), QKV_OK, "%s", r->err.message);
}

static void close_model(run *r)
{
    qkv_context_destroy(r->c);
    qkv_session_destroy(r->s);
}

static qkv_tensor tensor(qkv_dtype dtype, int32_t rank, const int64_t *dims, void *data)
{
    qkv_tensor t = {.dtype = dtype, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t d = 0; d < rank; d++)
        n *= (size_t)(t.dims[d] = dims[d]);
    t.data_bytes = n * (dtype == QKV_DTYPE_FLOAT ? 4 : dtype == QKV_DTYPE_BOOL ? 1 : 8);
    return t;
}

static qkv_value as_value(qkv_type_kind kind, const qkv_tensor *ts, size_t n, int has)
{
    return (qkv_value){.struct_size = sizeof(qkv_value),
                       .kind = kind,
                       .elem_dtype = n ? ts[0].dtype : QKV_DTYPE_FLOAT,
                       .has_element = has,
                       .count = n,
                       .tensors = ts};
}

/* got equals the tensor in file rel exactly (these models add and scale
 * halves and small integers: every value is exact in float32). */
static void assert_same(const qkv_tensor *got, const char *rel)
{
    qkv_tensor want;
    tu_read_pb(tu_data(rel), &want);
    cr_assert_eq(got->dtype, want.dtype, "%s: dtype %d, expected %d", rel, got->dtype, want.dtype);
    cr_assert_eq(got->rank, want.rank, "%s: rank %d, expected %d", rel, got->rank, want.rank);
    for (int32_t d = 0; d < want.rank; d++)
        cr_assert_eq(got->dims[d], want.dims[d], "%s: dim %d", rel, d);
    cr_assert_eq(got->data_bytes, want.data_bytes, "%s: bytes", rel);
    cr_assert(want.data_bytes == 0 || memcmp(got->data, want.data, want.data_bytes) == 0,
              "%s: values differ", rel);
    qkv_tensor_data_free(&want);
}

/* Output k: a value of `kind` holding n tensors equal to
 * <model>_<cas>_out<k>_<i>.pb, with has_element `has`. */
static void assert_value_out(run *r, size_t k, qkv_type_kind kind, int has, size_t n,
                             const char *model, const char *cas)
{
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r->c, k, &v), QKV_OK);
    cr_assert_eq(v.kind, kind, "output %zu: kind %d, expected %d", k, v.kind, kind);
    cr_assert_eq(v.has_element, has, "output %zu: has_element %d", k, v.has_element);
    cr_assert_eq(v.count, n, "output %zu: %zu tensors, expected %zu", k, v.count, n);
    for (size_t i = 0; i < n; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "control_flow_seq/%s_%s_out%zu_%zu.pb", model, cas, k, i);
        assert_same(&v.tensors[i], rel);
    }
}

static void assert_tensor_out(run *r, size_t k, const char *model, const char *cas)
{
    char rel[256];
    snprintf(rel, sizeof rel, "control_flow_seq/%s_%s_out%zu.pb", model, cas, k);
    const qkv_tensor *t = qkv_context_output(r->c, k);
    cr_assert_not_null(t, "output %zu is a tensor", k);
    assert_same(t, rel);
}

static void assert_error(qkv_status got, qkv_status want, const qkv_error *err, const char *a,
                         const char *b)
{
    cr_assert_eq(got, want, "status %d, expected %d: %s", got, want, err->message);
    cr_assert(strstr(err->message, a), "'%s' not in: %s", a, err->message);
    cr_assert(!b || strstr(err->message, b), "'%s' not in: %s", b, err->message);
}

/* ---- If ------------------------------------------------------------------------ */

Test(control_flow_seq, if_gives_a_sequence_or_an_empty_one)
{
    run r;
    open_model(&r, "if_seq");
    const int64_t d2[] = {2};
    for (int rep = 0; rep < 2; rep++) { /* the same context, both branches, twice */
        qkv_tensor in[] = {tensor(QKV_DTYPE_BOOL, 0, NULL, &yes),
                           tensor(QKV_DTYPE_FLOAT, 1, d2, x2)};
        cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
        assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 2, "if_seq", "then");
        in[0].data = &no;
        cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
        assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 0, "if_seq", "else");
        qkv_value v = {.struct_size = sizeof v};
        cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_OK);
        cr_assert_eq(v.elem_dtype, QKV_DTYPE_FLOAT, "an empty sequence keeps its element type");
    }
    close_model(&r);
}

Test(control_flow_seq, if_gives_one_sequence_as_two_outputs)
{
    run r;
    open_model(&r, "if_twice");
    const int64_t d2[] = {2};
    qkv_tensor in[] = {tensor(QKV_DTYPE_BOOL, 0, NULL, &yes), tensor(QKV_DTYPE_FLOAT, 1, d2, x2)};
    cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 2, "if_twice", "then");
    assert_value_out(&r, 1, QKV_KIND_SEQUENCE, 1, 2, "if_twice", "then");
    qkv_value a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
    qkv_context_output_value(r.c, 0, &a);
    qkv_context_output_value(r.c, 1, &b);
    cr_assert_neq(a.tensors[0].data, b.tensors[0].data, "each output owns its elements");
    close_model(&r);
}

Test(control_flow_seq, if_branches_read_the_main_graphs_sequence, .init = make_inputs)
{
    run r;
    open_model(&r, "if_outer_seq");
    const int64_t d2[] = {2}, d32[] = {3, 2};
    qkv_tensor in[] = {tensor(QKV_DTYPE_BOOL, 0, NULL, &yes), tensor(QKV_DTYPE_FLOAT, 1, d2, x2),
                       tensor(QKV_DTYPE_FLOAT, 2, d32, w32)};
    cr_assert_eq(qkv_run(r.c, in, 3, &r.err), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 4, "if_outer_seq", "then");
    in[0].data = &no;
    cr_assert_eq(qkv_run(r.c, in, 3, &r.err), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 3, "if_outer_seq", "else");
    close_model(&r);
}

Test(control_flow_seq, if_gives_an_optional_or_none)
{
    run r;
    open_model(&r, "if_opt"); /* else_branch: Optional with a TYPE_PROTO 'type' */
    const int64_t d2[] = {2};
    qkv_tensor in[] = {tensor(QKV_DTYPE_BOOL, 0, NULL, &yes), tensor(QKV_DTYPE_FLOAT, 1, d2, x2)};
    cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_OPTIONAL, 1, 1, "if_opt", "then");
    in[0].data = &no;
    cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_OPTIONAL, 0, 0, "if_opt", "else");
    close_model(&r);
}

/* ---- Loop ---------------------------------------------------------------------- */

static void run_loop_acc(run *r, int64_t m)
{
    const int64_t d2[] = {2};
    qkv_tensor mt = tensor(QKV_DTYPE_INT64, 0, NULL, &m), x = tensor(QKV_DTYPE_FLOAT, 1, d2, x2);
    qkv_tensor p[2] = {tensor(QKV_DTYPE_FLOAT, 1, d2, w32),
                       tensor(QKV_DTYPE_FLOAT, 1, d2, w32 + 4)};
    qkv_value in[] = {as_value(QKV_KIND_TENSOR, &mt, 1, 1), as_value(QKV_KIND_TENSOR, &x, 1, 1),
                      as_value(QKV_KIND_SEQUENCE, p, 2, 1)};
    cr_assert_eq(qkv_run_values(r->c, in, 3, &r->err), QKV_OK, "%s", r->err.message);
    /* p went through every iteration unchanged, as a copy the context owns */
    qkv_value po = {.struct_size = sizeof po};
    cr_assert_eq(qkv_context_output_value(r->c, 1, &po), QKV_OK);
    cr_assert_eq(po.kind, QKV_KIND_SEQUENCE);
    cr_assert_eq(po.count, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(po.tensors[i].rank, 1);
        cr_assert_eq(memcmp(po.tensors[i].data, p[i].data, sizeof x2), 0, "p[%zu]", i);
        cr_assert_neq(po.tensors[i].data, p[i].data, "not the caller's memory");
    }
}

Test(control_flow_seq, loop_accumulates_a_sequence_and_passes_one_through, .init = make_inputs)
{
    run r;
    open_model(&r, "loop_acc");
    for (int rep = 0; rep < 3; rep++) { /* reruns start from clean boxes */
        run_loop_acc(&r, 4);
        assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 4, "loop_acc", "m4");
        assert_tensor_out(&r, 2, "loop_acc", "m4");
    }
    close_model(&r);
}

Test(control_flow_seq, loop_with_zero_trips_gives_the_initial_sequences, .init = make_inputs)
{
    run r;
    open_model(&r, "loop_acc");
    run_loop_acc(&r, 4);
    run_loop_acc(&r, 0);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 0, "loop_acc", "m0");
    const qkv_tensor *lens = qkv_context_output(r.c, 2);
    cr_assert_eq(lens->rank, 1);
    cr_assert_eq(lens->dims[0], 0, "no iteration: an empty scan output");
    close_model(&r);
}

static qkv_status run_opt_loop(run *r, int64_t m, const qkv_tensor *elem)
{
    const int64_t d2[] = {2};
    qkv_tensor mt = tensor(QKV_DTYPE_INT64, 0, NULL, &m), x = tensor(QKV_DTYPE_FLOAT, 1, d2, x2);
    qkv_value in[] = {as_value(QKV_KIND_TENSOR, &mt, 1, 1), as_value(QKV_KIND_TENSOR, &x, 1, 1),
                      as_value(QKV_KIND_OPTIONAL_SEQUENCE, elem, elem ? 1 : 0, elem != NULL)};
    return qkv_run_values(r->c, in, 3, &r->err);
}

Test(control_flow_seq, loop_carries_none_that_becomes_a_sequence)
{
    run r;
    open_model(&r, "loop_opt_none");
    cr_assert_eq(run_opt_loop(&r, 3, NULL), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 3, "loop_opt_none", "m3");
    /* no iteration: the final value is the initial None, which a sequence output cannot hold */
    assert_error(run_opt_loop(&r, 0, NULL), QKV_ERR_INVALID_ARGUMENT, &r.err, "'none_loop'",
                 "output 0: an empty optional where a sequence is expected");
    cr_assert_eq(run_opt_loop(&r, 3, NULL), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 3, "loop_opt_none", "m3");
    close_model(&r);
}

Test(control_flow_seq, loop_unwraps_an_optional_sequence_for_its_body, .init = make_inputs)
{
    run r;
    open_model(&r, "loop_unwrap");
    const int64_t d2[] = {2};
    qkv_tensor w0 = tensor(QKV_DTYPE_FLOAT, 1, d2, w32);
    cr_assert_eq(run_opt_loop(&r, 2, &w0), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 3, "loop_unwrap", "m2");
    assert_error(run_opt_loop(&r, 2, NULL), QKV_ERR_INVALID_ARGUMENT, &r.err, "'unwrap_loop'",
                 "subgraph 'loop_body': input 2 's_in' is a sequence, the node gives it an empty "
                 "optional");
    cr_assert_eq(run_opt_loop(&r, 2, &w0), QKV_OK, "%s", r.err.message);
    assert_value_out(&r, 0, QKV_KIND_SEQUENCE, 1, 3, "loop_unwrap", "m2");
    close_model(&r);
}

Test(control_flow_seq, loop_body_reads_the_main_graphs_sequence, .init = make_inputs)
{
    run r;
    open_model(&r, "loop_outer_seq");
    int64_t m = 3;
    const int64_t d32[] = {3, 2};
    qkv_tensor in[] = {tensor(QKV_DTYPE_INT64, 0, NULL, &m), tensor(QKV_DTYPE_FLOAT, 2, d32, w32)};
    cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
    assert_tensor_out(&r, 0, "loop_outer_seq", "m3");
    close_model(&r);
}

static qkv_status run_opt_tensor_loop(run *r, int64_t m, qkv_tensor *x)
{
    qkv_tensor mt = tensor(QKV_DTYPE_INT64, 0, NULL, &m);
    qkv_value in[] = {as_value(QKV_KIND_TENSOR, &mt, 1, 1),
                      as_value(QKV_KIND_OPTIONAL, x, x ? 1 : 0, x != NULL)};
    return qkv_run_values(r->c, in, 2, &r->err);
}

Test(control_flow_seq, loop_carries_an_optional_tensor_into_a_tensor)
{
    run r;
    open_model(&r, "loop_opt_tensor");
    const int64_t d2[] = {2};
    qkv_tensor x = tensor(QKV_DTYPE_FLOAT, 1, d2, x2);
    /* iteration 0 unwraps the optional; then the tensor is wrapped for the body */
    cr_assert_eq(run_opt_tensor_loop(&r, 3, &x), QKV_OK, "%s", r.err.message);
    assert_tensor_out(&r, 0, "loop_opt_tensor", "m3");
    assert_error(run_opt_tensor_loop(&r, 0, NULL), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "'opt_tensor_loop'", "output 0 is a tensor, its value is an empty optional");
    assert_error(run_opt_tensor_loop(&r, 2, NULL), QKV_ERR_INVALID_ARGUMENT, &r.err, "'get'",
                 "input 0 is an empty optional");
    cr_assert_eq(run_opt_tensor_loop(&r, 3, &x), QKV_OK, "%s", r.err.message);
    assert_tensor_out(&r, 0, "loop_opt_tensor", "m3");
    close_model(&r);
}

Test(control_flow_seq_errors, loop_sequence_elements_of_another_type_at_run_time)
{
    run r;
    open_model(&r, "loop_elem_dtype");
    int64_t m = 1;
    const int64_t d2[] = {2};
    qkv_tensor mt = tensor(QKV_DTYPE_INT64, 0, NULL, &m), e = tensor(QKV_DTYPE_FLOAT, 1, d2, x2);
    qkv_value in[] = {as_value(QKV_KIND_TENSOR, &mt, 1, 1), as_value(QKV_KIND_SEQUENCE, &e, 1, 1)};
    assert_error(qkv_run_values(r.c, in, 2, &r.err), QKV_ERR_TYPE, &r.err, "'any_loop'",
                 "subgraph 'loop_body': input 2 's_in' holds int64 elements, the node gives "
                 "float32");
    close_model(&r);
}

/* ---- Scan ------------------------------------------------------------------------ */

Test(control_flow_seq, scan_body_reads_the_main_graphs_sequence, .init = make_inputs)
{
    run r;
    open_model(&r, "scan_outer_seq");
    const int64_t d2[] = {2}, d32[] = {3, 2};
    qkv_tensor in[] = {tensor(QKV_DTYPE_FLOAT, 1, d2, x2), tensor(QKV_DTYPE_FLOAT, 2, d32, w32),
                       tensor(QKV_DTYPE_FLOAT, 2, d32, w32)};
    cr_assert_eq(qkv_run(r.c, in, 3, &r.err), QKV_OK, "%s", r.err.message);
    assert_tensor_out(&r, 0, "scan_outer_seq", "run");
    close_model(&r);
}

/* ---- errors at session creation ---------------------------------------------------- */

static void expect_create_error(const char *model, qkv_status want, const char *a, const char *b)
{
    char rel[256];
    snprintf(rel, sizeof rel, "control_flow_seq/%s.onnx", model);
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = qkv_session_create(tu_data(rel), NULL, &s, &err);
    cr_assert_null(s);
    assert_error(st, want, &err, a, b);
}

Test(control_flow_seq_errors, loop_body_input_of_another_kind)
{
    expect_create_error(
        "loop_kind_mismatch", QKV_ERR_TYPE, "'kind_loop'",
        "loop-carried value 0: the body 'kind_body' input 2 'v_in' is a tensor, the "
        "node gives it a sequence");
}

Test(control_flow_seq_errors, loop_body_output_of_another_kind)
{
    expect_create_error("loop_body_kind", QKV_ERR_TYPE, "'flat_loop'",
                        "loop-carried value 0: the body 'flat_body' output 1 'flat' is a tensor, "
                        "its input 2 's_in' is a sequence");
}

Test(control_flow_seq_errors, if_branches_of_different_kinds)
{
    expect_create_error("if_kind_mismatch", QKV_ERR_TYPE, "'mixed_if'",
                        "output 0: then_branch gives a sequence, else_branch gives a tensor");
}

Test(control_flow_seq_errors, loop_sequence_of_another_element_type)
{
    expect_create_error("loop_seq_dtype", QKV_ERR_TYPE, "'dtype_loop'",
                        "the body 'int_body' input 2 's_in' holds int64, the node gives it "
                        "float32");
}

Test(control_flow_seq_errors, scan_state_declared_a_sequence)
{
    expect_create_error("scan_seq_state", QKV_ERR_TYPE, "'seq_scan'",
                        "the body's input 0 'st_in' is a sequence; Scan's states and scanned "
                        "values are tensors");
}

Test(control_flow_seq_errors, optional_type_attribute_of_a_map)
{
    expect_create_error("optional_type_map", QKV_ERR_UNSUPPORTED, "'opt_node'",
                        "attribute 'type': only tensor, sequence and optional types are supported");
}

Test(control_flow_seq_errors, optional_type_attribute_of_an_optional)
{
    expect_create_error("optional_type_optional", QKV_ERR_UNSUPPORTED, "'opt_node'",
                        "attribute 'type' must be a tensor or a sequence type");
}

Test(control_flow_seq_errors, optional_type_attribute_without_a_type)
{
    expect_create_error("optional_type_missing", QKV_ERR_INVALID_MODEL, "'opt_node'",
                        "attribute 'type': the type is missing");
}
