/*
 * test_sequence.c - sequence and optional values end to end: the ops
 * (ops/sequence.c, ops/sequence_split.c, ops/optional.c), the C API
 * (qkv_run_values, qkv_context_output_value), empty optionals, and the
 * errors, each naming its node or value. Models and numpy references come
 * from tests/data/make_sequence_models.py; the inputs below are the ones
 * that script names.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cli_runner.h"
#include "loader.h" /* qkv_tensor_data_free */
#include "qkv.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------------ */

typedef struct run {
    qkv_session *s;
    qkv_context *c;
    qkv_error err;
} run;

static void open_model(run *r, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sequence/%s.onnx", name);
    memset(r, 0, sizeof *r);
    cr_assert_eq(qkv_session_create(tu_data(rel), NULL, &r->s, &r->err), QKV_OK, "%s",
                 r->err.message);
    cr_assert_eq(qkv_context_create(r->s, &r->c, &r->err), QKV_OK, "%s", r->err.message);
}

static void close_model(run *r)
{
    qkv_context_destroy(r->c);
    qkv_session_destroy(r->s);
}

static qkv_value tensor_value(const qkv_tensor *t)
{
    return (qkv_value){.struct_size = sizeof(qkv_value),
                       .kind = QKV_KIND_TENSOR,
                       .elem_dtype = t->dtype,
                       .has_element = 1,
                       .count = 1,
                       .tensors = t};
}

static qkv_value seq_value(qkv_type_kind kind, const qkv_tensor *ts, size_t n, int has)
{
    return (qkv_value){.struct_size = sizeof(qkv_value),
                       .kind = kind,
                       .elem_dtype = n ? ts[0].dtype : QKV_DTYPE_FLOAT,
                       .has_element = has,
                       .count = n,
                       .tensors = ts};
}

static qkv_tensor f32(int32_t rank, const int64_t *dims, float *data)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_FLOAT, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t d = 0; d < rank; d++)
        n *= (size_t)(t.dims[d] = dims[d]);
    t.data_bytes = n * sizeof(float);
    return t;
}

static qkv_tensor i64(int32_t rank, const int64_t *dims, int64_t *data)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_INT64, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t d = 0; d < rank; d++)
        n *= (size_t)(t.dims[d] = dims[d]);
    t.data_bytes = n * sizeof(int64_t);
    return t;
}

/* got must equal the reference tensor in file rel exactly (these ops only
 * move values: no rounding). */
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

/* Output k of the last run: a tensor equal to <prefix>_out<k>.pb. */
static void assert_tensor_out(run *r, size_t k, const char *prefix)
{
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r->c, k, &v), QKV_OK);
    cr_assert_eq(v.kind, QKV_KIND_TENSOR);
    cr_assert_eq(v.count, 1);
    char rel[256];
    snprintf(rel, sizeof rel, "sequence/%s_out%zu.pb", prefix, k);
    assert_same(&v.tensors[0], rel);
    cr_assert_eq(qkv_context_output(r->c, k), &v.tensors[0], "the tensor call sees the same");
}

/* Output k of the last run: a value of `kind` holding n tensors equal to
 * <prefix>_out<k>_<i>.pb. */
static void assert_seq_out(run *r, size_t k, qkv_type_kind kind, size_t n, const char *prefix)
{
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r->c, k, &v), QKV_OK);
    cr_assert_eq(v.kind, kind, "output %zu: kind %d, expected %d", k, v.kind, kind);
    cr_assert_eq(v.count, n, "output %zu: %zu tensors, expected %zu", k, v.count, n);
    cr_assert(v.has_element);
    cr_assert_null(qkv_context_output(r->c, k), "not a tensor: qkv_context_output says NULL");
    for (size_t i = 0; i < n; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "sequence/%s_out%zu_%zu.pb", prefix, k, i);
        assert_same(&v.tensors[i], rel);
    }
}

static void assert_error(qkv_status got, qkv_status want, const qkv_error *err, const char *a,
                         const char *b)
{
    cr_assert_eq(got, want, "status %d, expected %d: %s", got, want, err->message);
    cr_assert(strstr(err->message, a), "'%s' not in: %s", a, err->message);
    cr_assert(!b || strstr(err->message, b), "'%s' not in: %s", b, err->message);
}

/* the inputs make_sequence_models.py computed its references from */
static float x43[12], t23[6] = {10, 11, 12, 13, 14, 15}, x26[12];

static void make_inputs(void)
{
    for (int i = 0; i < 12; i++) {
        x43[i] = (float)i * 0.5f - 2.0f;
        x26[i] = (float)i - 3.0f;
    }
}

/* ---- the ops ------------------------------------------------------------------ */

Test(sequence, split_erase_insert_at_concat_length, .init = make_inputs)
{
    run r;
    open_model(&r, "seq_ops");
    const int64_t d43[] = {4, 3}, d23[] = {2, 3};
    const struct {
        int64_t p;
        const char *prefix;
    } cases[] = {{1, "seq_ops_p1"}, {-4, "seq_ops_pm4"}, {1, "seq_ops_p1"}};
    /* one context for every case: each run starts from clean sequences */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t p = cases[c].p;
        qkv_tensor x = f32(2, d43, x43), t = f32(2, d23, t23), pt = i64(0, NULL, &p);
        qkv_value in[] = {tensor_value(&x), tensor_value(&t), tensor_value(&pt)};
        cr_assert_eq(qkv_run_values(r.c, in, 3, &r.err), QKV_OK, "%s", r.err.message);
        assert_seq_out(&r, 0, QKV_KIND_SEQUENCE, 4, cases[c].prefix);
        for (size_t k = 1; k <= 4; k++)
            assert_tensor_out(&r, k, cases[c].prefix);
    }
    close_model(&r);
}

Test(sequence, split_sizes_scalar_keepdims_and_stack, .init = make_inputs)
{
    run r;
    open_model(&r, "seq_split");
    const int64_t d26[] = {2, 6};
    qkv_tensor x = f32(2, d26, x26);
    /* qkv_run works for a model whose inputs are all tensors */
    cr_assert_eq(qkv_run(r.c, &x, 1, &r.err), QKV_OK, "%s", r.err.message);
    assert_tensor_out(&r, 0, "seq_split_a");
    assert_tensor_out(&r, 1, "seq_split_a");
    assert_seq_out(&r, 2, QKV_KIND_SEQUENCE, 2, "seq_split_a");
    assert_seq_out(&r, 3, QKV_KIND_SEQUENCE, 2, "seq_split_a");
    close_model(&r);
}

Test(sequence, empty_construct_insert_back)
{
    run r;
    open_model(&r, "seq_build");
    int64_t v[] = {7, 8, 9}, w[] = {-5};
    const int64_t d3[] = {3}, d1[] = {1};
    qkv_tensor in[] = {i64(1, d3, v), i64(1, d1, w)};
    cr_assert_eq(qkv_run(r.c, in, 2, &r.err), QKV_OK, "%s", r.err.message);
    qkv_value e = {.struct_size = sizeof e};
    cr_assert_eq(qkv_context_output_value(r.c, 0, &e), QKV_OK);
    cr_assert_eq(e.kind, QKV_KIND_SEQUENCE);
    cr_assert_eq(e.count, 0, "SequenceEmpty is empty");
    cr_assert_eq(e.elem_dtype, QKV_DTYPE_INT64, "with the dtype attribute's elements");
    assert_tensor_out(&r, 1, "seq_build_a");
    assert_seq_out(&r, 2, QKV_KIND_SEQUENCE, 1, "seq_build_a");
    assert_seq_out(&r, 3, QKV_KIND_SEQUENCE, 3, "seq_build_a");
    assert_tensor_out(&r, 4, "seq_build_a");
    close_model(&r);
}

static void run_opt_ops(run *r, bool full)
{
    float xv[] = {0.25f, -1, 4}, yv[] = {1.5f, -2.5f};
    const int64_t d3[] = {3}, d2[] = {2};
    qkv_tensor x = f32(1, d3, xv), y = f32(1, d2, yv);
    qkv_value in[] = {seq_value(QKV_KIND_OPTIONAL, &x, full ? 1 : 0, full), tensor_value(&y)};
    cr_assert_eq(qkv_run_values(r->c, in, 2, &r->err), QKV_OK, "%s", r->err.message);
    const char *prefix = full ? "opt_ops_full" : "opt_ops_empty";
    assert_tensor_out(r, 0, prefix);
    qkv_value xo = {.struct_size = sizeof xo};
    cr_assert_eq(qkv_context_output_value(r->c, 1, &xo), QKV_OK);
    cr_assert_eq(xo.kind, QKV_KIND_OPTIONAL);
    cr_assert_eq(xo.has_element, full, "Identity keeps the optional %s", full ? "full" : "empty");
    cr_assert_eq(xo.count, full ? 1 : 0);
    if (full) {
        cr_assert_eq(xo.tensors[0].rank, 1);
        cr_assert_eq(memcmp(xo.tensors[0].data, xv, sizeof xv), 0);
        cr_assert_neq(xo.tensors[0].data, (void *)xv, "the output is the context's copy");
    }
    for (size_t k = 2; k <= 5; k++)
        assert_tensor_out(r, k, prefix);
    assert_seq_out(r, 6, QKV_KIND_SEQUENCE, 2, prefix);
    qkv_value osy = {.struct_size = sizeof osy};
    cr_assert_eq(qkv_context_output_value(r->c, 7, &osy), QKV_OK);
    cr_assert_eq(osy.kind, QKV_KIND_OPTIONAL_SEQUENCE);
    cr_assert(osy.has_element);
    cr_assert_eq(osy.count, 2);
}

Test(optional, wrap_get_has_element_and_empty)
{
    run r;
    open_model(&r, "opt_ops");
    run_opt_ops(&r, true);
    run_opt_ops(&r, false);
    run_opt_ops(&r, true);
    close_model(&r);
}

Test(optional, get_element_of_empty_optional_names_the_node)
{
    run r;
    open_model(&r, "opt_get");
    float xv[] = {1, 2, 3};
    const int64_t d3[] = {3};
    qkv_tensor x = f32(1, d3, xv);
    qkv_value full = seq_value(QKV_KIND_OPTIONAL, &x, 1, 1);
    cr_assert_eq(qkv_run_values(r.c, &full, 1, &r.err), QKV_OK, "%s", r.err.message);
    const qkv_tensor *got = qkv_context_output(r.c, 0);
    cr_assert_not_null(got);
    cr_assert_eq(memcmp(got->data, xv, sizeof xv), 0);
    cr_assert_eq(*(const unsigned char *)qkv_context_output(r.c, 1)->data, 1);
    qkv_value empty = seq_value(QKV_KIND_OPTIONAL, NULL, 0, 0);
    assert_error(qkv_run_values(r.c, &empty, 1, &r.err), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "'get_x'", "empty optional");
    /* the context is usable again after the failed run */
    cr_assert_eq(qkv_run_values(r.c, &full, 1, &r.err), QKV_OK, "%s", r.err.message);
    close_model(&r);
}

/* ---- sequence inputs and the C API ---------------------------------------------- */

Test(sequence, sequence_and_optional_sequence_inputs)
{
    run r;
    open_model(&r, "seq_io");
    float a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8, 9, 10}, tv[] = {-1, -2};
    const int64_t d22[] = {2, 2}, d23[] = {2, 3}, d21[] = {2, 1};
    qkv_tensor s[] = {f32(2, d22, a), f32(2, d23, b)}, t = f32(2, d21, tv);
    int64_t p = 1;
    qkv_tensor pt = i64(0, NULL, &p);
    qkv_value in[] = {seq_value(QKV_KIND_SEQUENCE, s, 2, 1),
                      seq_value(QKV_KIND_OPTIONAL_SEQUENCE, s, 2, 1), tensor_value(&pt),
                      tensor_value(&t)};
    cr_assert_eq(qkv_run_values(r.c, in, 4, &r.err), QKV_OK, "%s", r.err.message);
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_OK);
    cr_assert_eq(v.kind, QKV_KIND_SEQUENCE);
    cr_assert_eq(v.count, 2);
    cr_assert_eq(memcmp(v.tensors[1].data, b, sizeof b), 0);
    cr_assert_eq(qkv_context_output_value(r.c, 1, &v), QKV_OK);
    cr_assert_eq(v.kind, QKV_KIND_OPTIONAL_SEQUENCE);
    cr_assert(v.has_element);
    cr_assert_eq(v.count, 2);
    const qkv_tensor *at = qkv_context_output(r.c, 2);
    cr_assert_eq(at->rank, 2);
    cr_assert_eq(at->dims[1], 3);
    cr_assert_eq(memcmp(at->data, b, sizeof b), 0, "SequenceAt 1 is b");
    cr_assert_eq(qkv_context_output_value(r.c, 3, &v), QKV_OK);
    cr_assert_eq(v.count, 3, "inserted at 1");
    cr_assert_eq(memcmp(v.tensors[0].data, a, sizeof a), 0);
    cr_assert_eq(memcmp(v.tensors[1].data, tv, sizeof tv), 0);
    cr_assert_eq(memcmp(v.tensors[2].data, b, sizeof b), 0);
    const qkv_tensor *cat = qkv_context_output(r.c, 4);
    float want[] = {1, 2, 5, 6, 7, 3, 4, 8, 9, 10}; /* concat of [2,2] and [2,3] on axis 1 */
    cr_assert_eq(cat->rank, 2);
    cr_assert_eq(cat->dims[0], 2);
    cr_assert_eq(cat->dims[1], 5);
    cr_assert_eq(memcmp(cat->data, want, sizeof want), 0);

    /* an empty optional sequence goes through Identity empty */
    in[1] = seq_value(QKV_KIND_OPTIONAL_SEQUENCE, NULL, 0, 0);
    cr_assert_eq(qkv_run_values(r.c, in, 4, &r.err), QKV_OK, "%s", r.err.message);
    cr_assert_eq(qkv_context_output_value(r.c, 1, &v), QKV_OK);
    cr_assert_eq(v.has_element, 0);
    cr_assert_eq(v.count, 0);
    close_model(&r);
}

Test(sequence, model_info_reports_kinds)
{
    run r;
    open_model(&r, "seq_io");
    const qkv_model *m = qkv_session_model(r.s);
    qkv_value_info vi = {.struct_size = sizeof vi};
    cr_assert_eq(qkv_model_input(m, 0, &vi), QKV_OK);
    cr_assert_eq(vi.kind, QKV_KIND_SEQUENCE);
    cr_assert_eq(vi.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(qkv_model_input(m, 1, &vi), QKV_OK);
    cr_assert_eq(vi.kind, QKV_KIND_OPTIONAL_SEQUENCE);
    cr_assert_eq(qkv_model_input(m, 2, &vi), QKV_OK);
    cr_assert_eq(vi.kind, QKV_KIND_TENSOR);
    cr_assert_eq(qkv_model_output(m, 2, &vi), QKV_OK);
    cr_assert_eq(vi.kind, QKV_KIND_TENSOR);
    cr_assert_eq(qkv_model_output(m, 3, &vi), QKV_OK);
    cr_assert_eq(vi.kind, QKV_KIND_SEQUENCE);
    close_model(&r);
}

/* ---- errors ---------------------------------------------------------------------- */

typedef struct seq_io_inputs {
    float a[4], b[6], c[6], tv[2];
    qkv_tensor s[2], t, pt;
    int64_t p;
    qkv_value in[4];
} seq_io_inputs;

static void seq_io_fill(seq_io_inputs *x, int64_t p)
{
    static const int64_t d22[] = {2, 2}, d23[] = {2, 3}, d21[] = {2, 1};
    memset(x, 0, sizeof *x);
    x->s[0] = f32(2, d22, x->a);
    x->s[1] = f32(2, d23, x->b);
    x->t = f32(2, d21, x->tv);
    x->p = p;
    x->pt = i64(0, NULL, &x->p);
    x->in[0] = seq_value(QKV_KIND_SEQUENCE, x->s, 2, 1);
    x->in[1] = seq_value(QKV_KIND_OPTIONAL_SEQUENCE, NULL, 0, 0);
    x->in[2] = tensor_value(&x->pt);
    x->in[3] = tensor_value(&x->t);
}

Test(sequence_errors, sequence_at_out_of_range)
{
    run r;
    open_model(&r, "seq_io");
    seq_io_inputs x;
    seq_io_fill(&x, 2);
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "node 'at' (SequenceAt-11)", "position 2 is out of range");
    seq_io_fill(&x, -3);
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "node 'at'", "position -3 is out of range");
    close_model(&r);
}

Test(sequence_errors, insert_position_out_of_range)
{
    run r;
    open_model(&r, "seq_insert");
    seq_io_inputs x;
    seq_io_fill(&x, 3);
    qkv_value in[] = {x.in[0], x.in[3], x.in[2]};
    assert_error(qkv_run_values(r.c, in, 3, &r.err), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "node 'insert' (SequenceInsert-11)", "position 3 is out of range");
    x.p = 2; /* the end: appends */
    cr_assert_eq(qkv_run_values(r.c, in, 3, &r.err), QKV_OK, "%s", r.err.message);
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_OK);
    cr_assert_eq(v.count, 3);
    cr_assert_eq(v.tensors[2].dims[1], 1, "t is last");
    close_model(&r);
}

Test(sequence_errors, concat_shape_mismatch)
{
    run r;
    open_model(&r, "seq_io");
    seq_io_inputs x;
    seq_io_fill(&x, 0);
    static const int64_t d32[] = {3, 2};
    x.s[1] = f32(2, d32, x.c); /* [2,2] then [3,2]: dim 0 differs off axis 1 */
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_SHAPE, &r.err,
                 "node 'concat' (ConcatFromSequence-11)", "element 1 has shape [3,2]");
    close_model(&r);
}

Test(sequence_errors, element_dtype_mismatch)
{
    run r;
    open_model(&r, "seq_io");
    seq_io_inputs x;
    seq_io_fill(&x, 0);
    int64_t iv[4] = {0};
    static const int64_t d22[] = {2, 2};
    x.s[1] = i64(2, d22, iv);
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_TYPE, &r.err,
                 "input 0 's': element 1 is int64", "expected float32");
    close_model(&r);
}

Test(sequence_errors, wrong_kind_for_an_input)
{
    run r;
    open_model(&r, "seq_io");
    seq_io_inputs x;
    seq_io_fill(&x, 0);
    x.in[0] = tensor_value(&x.s[0]);
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_TYPE, &r.err,
                 "input 0 's' is a sequence", "a tensor was given");
    seq_io_fill(&x, 0);
    x.in[2] = seq_value(QKV_KIND_SEQUENCE, &x.pt, 1, 1);
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_TYPE, &r.err,
                 "input 2 'p' is a tensor", "a sequence was given");
    /* the tensor-only call refuses a sequence input */
    qkv_tensor ts[] = {x.s[0], x.s[0], x.pt, x.t};
    assert_error(qkv_run(r.c, ts, 4, &r.err), QKV_ERR_TYPE, &r.err, "input 0 's'",
                 "qkv_run_values");
    close_model(&r);
}

Test(sequence_errors, struct_size_checked)
{
    run r;
    open_model(&r, "seq_io");
    seq_io_inputs x;
    seq_io_fill(&x, 0);
    x.in[1].struct_size = 8;
    assert_error(qkv_run_values(r.c, x.in, 4, &r.err), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "input 1 'os'", "struct_size");
    qkv_value v = {.struct_size = 8};
    cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_ERR_INVALID_ARGUMENT);
    close_model(&r);
}

static void assert_session_fails(const char *name, qkv_status want, const char *a, const char *b)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sequence/%s.onnx", name);
    qkv_session *s = NULL;
    qkv_error err = {0};
    assert_error(qkv_session_create(tu_data(rel), NULL, &s, &err), want, &err, a, b);
    cr_assert_null(s);
}

Test(sequence_errors, type_errors_at_session_creation)
{
    assert_session_fails("bad_insert_type", QKV_ERR_TYPE, "node 'insert_int'",
                         "the tensor is int64 but the sequence holds float32");
    assert_session_fails("bad_construct_type", QKV_ERR_TYPE, "node 'construct_mixed'",
                         "input 1 is int64 but input 0 is float32");
    assert_session_fails("bad_tensor_op", QKV_ERR_TYPE, "node 'relu_of_sequence'",
                         "input 0 's' is a sequence; the op takes a tensor");
}

/* ---- the CLI: `qkv test` on SequenceProto / OptionalProto data --------------------- */

/* A scratch directory for the CLI's captured output; the data are generated. */
static void cli_dir(void) { cli_setup("/tmp/qkv_seq_cli_XXXXXX", "import sys\n"); }

Test(sequence_cli, qkv_test_reads_sequence_and_optional_protos, .init = cli_dir,
     .fini = cli_teardown)
{
    cli_result r = cli_qkv("test", tu_data("sequence/suite"), NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "PASS test_seq_io"), "%s", r.out);
    cr_assert(strstr(r.out, "PASS test_opt_get"), "%s", r.out);
    cr_assert(strstr(r.out, "2 passed, 0 failed"), "%s", r.out);
    cli_result_free(&r);
}

Test(sequence_cli, qkv_test_finds_a_sequence_of_the_wrong_length, .init = cli_dir,
     .fini = cli_teardown)
{
    cli_result r = cli_qkv("test", tu_data("sequence/suite_bad"), NULL);
    cr_assert_neq(r.code, 0, "%s", r.out);
    cr_assert(strstr(r.out, "FAIL test_seq_io_short: output 3 'ins'"), "%s", r.out);
    cr_assert(strstr(r.out, "is a sequence of 3 tensor(s), expected a sequence of 2"), "%s", r.out);
    cli_result_free(&r);
}

Test(sequence_cli, qkv_info_prints_kinds, .init = cli_dir, .fini = cli_teardown)
{
    cli_result r = cli_qkv("info", tu_data("sequence/seq_io.onnx"), NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "s: sequence of float32"), "%s", r.out);
    cr_assert(strstr(r.out, "os: optional sequence of float32"), "%s", r.out);
    cli_result_free(&r);
}

/* ---- SplitToSequence's split sizes and piece count -------------------------------- */

/* Runs model `name` on x (and split when not NULL). */
static qkv_status run_split(run *r, const char *name, qkv_tensor *x, qkv_tensor *split)
{
    open_model(r, name);
    qkv_value in[2] = {tensor_value(x)};
    if (split)
        in[1] = tensor_value(split);
    return qkv_run_values(r->c, in, split ? 2 : 1, &r->err);
}

/* The spec: "'split' must contain only positive numbers". */
Test(sequence_errors, split_refuses_a_zero_size)
{
    run r;
    float xs[6] = {0};
    int64_t sizes[2] = {3, 0}, zero = 0;
    const int64_t d32[] = {3, 2}, d2[] = {2};
    qkv_tensor x = f32(2, d32, xs), sp = i64(1, d2, sizes);
    assert_error(run_split(&r, "seq_split_by", &x, &sp), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "node 'split_by' (SplitToSequence-11)",
                 "has 0 at 1: split sizes must be positive");
    close_model(&r);
    sp = i64(0, NULL, &zero);
    assert_error(run_split(&r, "seq_split_by", &x, &sp), QKV_ERR_INVALID_ARGUMENT, &r.err,
                 "node 'split_by'", "input 1 'split' is 0, must be positive");
    close_model(&r);
}

/* An empty X may declare 2^40 rows: that many pieces are refused, naming
 * the count, before the first is made (it used to append them one by one). */
Test(sequence_errors, split_refuses_2_pow_40_pieces, .timeout = 30)
{
    run r;
    float dummy = 0;
    int64_t one = 1;
    const int64_t huge[] = {(int64_t)1 << 40, 0};
    qkv_tensor x = f32(2, huge, &dummy), sp = i64(0, NULL, &one);
    assert_error(run_split(&r, "seq_split_by", &x, &sp), QKV_ERR_UNSUPPORTED, &r.err,
                 "node 'split_by'", "would make 1099511627776 pieces, more than the 1048576");
    close_model(&r);
    assert_error(run_split(&r, "seq_split_rows", &x, NULL), QKV_ERR_UNSUPPORTED, &r.err,
                 "node 'split_rows'", "would make 1099511627776 pieces");
    close_model(&r);
}

/* Pieces with no elements off the axis are legal: 3 rows of nothing without
 * split (keepdims 0 drops the axis: three [0]), and [2, 0] then [1, 0] by a
 * scalar 2 (the last piece smaller). */
Test(sequence, split_makes_empty_pieces_of_an_empty_x)
{
    run r;
    float dummy = 0;
    int64_t two = 2;
    const int64_t d30[] = {3, 0};
    qkv_tensor x = f32(2, d30, &dummy), sp = i64(0, NULL, &two);
    cr_assert_eq(run_split(&r, "seq_split_rows", &x, NULL), QKV_OK, "%s", r.err.message);
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_OK);
    cr_assert_eq(v.count, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(v.tensors[i].rank, 1, "piece %zu", i);
        cr_assert_eq(v.tensors[i].dims[0], 0, "piece %zu", i);
    }
    close_model(&r);
    cr_assert_eq(run_split(&r, "seq_split_by", &x, &sp), QKV_OK, "%s", r.err.message);
    cr_assert_eq(qkv_context_output_value(r.c, 0, &v), QKV_OK);
    cr_assert_eq(v.count, 2);
    cr_assert_eq(v.tensors[0].rank, 2);
    cr_assert_eq(v.tensors[0].dims[0], 2);
    cr_assert_eq(v.tensors[0].dims[1], 0);
    cr_assert_eq(v.tensors[1].dims[0], 1);
    cr_assert_eq(v.tensors[1].dims[1], 0);
    close_model(&r);
}

/* A split of a type other than int32/int64 (int4 here) is a type error. */
Test(sequence_errors, split_refuses_an_int4_split)
{
    run r;
    float xs[8] = {0};
    unsigned char packed = 0x02; /* int4 2 in the low nibble */
    const int64_t d42[] = {4, 2};
    qkv_tensor x = f32(2, d42, xs);
    qkv_tensor sp = {.dtype = QKV_DTYPE_INT4, .rank = 0, .data = &packed, .data_bytes = 1};
    assert_error(run_split(&r, "seq_split_int4", &x, &sp), QKV_ERR_TYPE, &r.err,
                 "node 'split_int4'", "input 1 'split' is int4, expected int32 or int64");
    close_model(&r);
}
