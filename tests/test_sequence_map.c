/*
 * test_sequence_map.c - SequenceMap (runtime/exec/control_seqmap.c) on
 * models written by tests/data/make_sequence_map_models.py, whose inputs
 * and expected outputs it saved (numpy): elements of varying rank and
 * shape, two output types, a tensor and a second sequence as additional
 * inputs, a value the body reads from the main graph, empty sequences,
 * repeated runs on one context, and each error with its message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "loader.h" /* qkv_tensor_data_free */
#include "qkv.h"
#include "test_util.h"

#define MAX_ELEMS 8
#define MAX_INPUTS 4

typedef struct run {
    qkv_session *s;
    qkv_context *c;
    qkv_error err;
} run;

/* A model's input as the test holds it: a sequence (n tensors) or a tensor. */
typedef struct input {
    bool is_sequence;
    size_t n;
    qkv_tensor t[MAX_ELEMS];
} input;

static void open_model(run *r, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sequence_map/%s.onnx", name);
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

/* Input j of a case: a sequence of n elements, or (n 0, !is_sequence) a tensor. */
static void read_input(input *in, const char *model, const char *cas, size_t j, bool is_sequence,
                       size_t n)
{
    char rel[256];
    memset(in, 0, sizeof *in);
    in->is_sequence = is_sequence;
    in->n = is_sequence ? n : 1;
    cr_assert_leq(in->n, MAX_ELEMS);
    for (size_t i = 0; i < in->n; i++) {
        if (is_sequence)
            snprintf(rel, sizeof rel, "sequence_map/%s_%s_in%zu_%zu.pb", model, cas, j, i);
        else
            snprintf(rel, sizeof rel, "sequence_map/%s_%s_in%zu.pb", model, cas, j);
        tu_read_pb(tu_data(rel), &in->t[i]);
    }
}

static void free_input(input *in)
{
    for (size_t i = 0; i < in->n; i++)
        qkv_tensor_data_free(&in->t[i]);
}

/* The public value for in (an empty sequence holds `elem` elements). */
static qkv_value as_value(const input *in, qkv_dtype elem)
{
    return (qkv_value){.struct_size = sizeof(qkv_value),
                       .kind = in->is_sequence ? QKV_KIND_SEQUENCE : QKV_KIND_TENSOR,
                       .elem_dtype = in->n ? in->t[0].dtype : elem,
                       .has_element = 1,
                       .count = in->n,
                       .tensors = in->t};
}

static qkv_status run_inputs(run *r, input *ins, size_t n_in)
{
    qkv_value v[MAX_INPUTS];
    for (size_t j = 0; j < n_in; j++)
        v[j] = as_value(&ins[j], QKV_DTYPE_FLOAT);
    return qkv_run_values(r->c, v, n_in, &r->err);
}

/* Output k of the last run: a sequence of `elem` elements equal to the n
 * files <model>_<case>_out<k>_<i>.pb. Float elements come from one
 * multiply and one add, in numpy's order: within 1e-6. */
static void assert_sequence_out(run *r, size_t k, qkv_dtype elem, const char *model,
                                const char *cas, size_t n)
{
    qkv_value v = {.struct_size = sizeof v};
    cr_assert_eq(qkv_context_output_value(r->c, k, &v), QKV_OK);
    cr_assert_eq(v.kind, QKV_KIND_SEQUENCE, "output %zu: kind %d", k, v.kind);
    cr_assert_eq(v.elem_dtype, elem, "output %zu: elements %d, expected %d", k, v.elem_dtype, elem);
    cr_assert_eq(v.count, n, "output %zu: %zu elements, expected %zu", k, v.count, n);
    for (size_t i = 0; i < n; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "sequence_map/%s_%s_out%zu_%zu.pb", model, cas, k, i);
        qkv_tensor want;
        tu_read_pb(tu_data(rel), &want);
        const qkv_tensor *got = &v.tensors[i];
        cr_assert_eq(got->dtype, want.dtype, "%s: dtype", rel);
        if (want.dtype == QKV_DTYPE_FLOAT) {
            tu_assert_close(got, &want, 1e-6f, 1e-6f);
        } else {
            cr_assert_eq(got->rank, want.rank, "%s: rank %d, expected %d", rel, got->rank,
                         want.rank);
            for (int32_t d = 0; d < want.rank; d++)
                cr_assert_eq(got->dims[d], want.dims[d], "%s: dim %d", rel, d);
            cr_assert_eq(got->data_bytes, want.data_bytes, "%s: bytes", rel);
            cr_assert(!want.data_bytes || memcmp(got->data, want.data, want.data_bytes) == 0,
                      "%s: values differ", rel);
        }
        qkv_tensor_data_free(&want);
    }
}

static void assert_error(qkv_status got, qkv_status want, const qkv_error *err, const char *a,
                         const char *b)
{
    cr_assert_eq(got, want, "status %d, expected %d: %s", got, want, err->message);
    cr_assert(strstr(err->message, a), "'%s' not in: %s", a, err->message);
    cr_assert(!b || strstr(err->message, b), "'%s' not in: %s", b, err->message);
}

/* ---- map_shapes: one sequence, elements of varying rank and shape ----------- */

static void check_shapes_case(run *r, const char *cas, size_t n)
{
    input xs;
    read_input(&xs, "map_shapes", cas, 0, true, n);
    cr_assert_eq(run_inputs(r, &xs, 1), QKV_OK, "%s: %s", cas, r->err.message);
    assert_sequence_out(r, 0, QKV_DTYPE_FLOAT, "map_shapes", cas, n);
    assert_sequence_out(r, 1, QKV_DTYPE_INT64, "map_shapes", cas, n);
    free_input(&xs);
}

Test(sequence_map, elements_of_varying_shapes_and_two_output_types)
{
    run r;
    open_model(&r, "map_shapes");
    /* [2,3], [4], [1,1,2], [2,3] again (a plan seen before), [0,3] (empty) */
    check_shapes_case(&r, "mixed", 5);
    close_model(&r);
}

Test(sequence_map, empty_sequence_gives_empty_sequences_of_the_body_types)
{
    run r;
    open_model(&r, "map_shapes");
    check_shapes_case(&r, "empty", 0);
    close_model(&r);
}

Test(sequence_map, runs_again_on_one_context_with_other_lengths)
{
    run r;
    open_model(&r, "map_shapes");
    /* each run starts from empty output sequences */
    check_shapes_case(&r, "mixed", 5);
    check_shapes_case(&r, "one", 1);
    check_shapes_case(&r, "empty", 0);
    check_shapes_case(&r, "mixed", 5);
    close_model(&r);
}

/* ---- map_mixed: two sequences, a tensor, an outer value ------------------------ */

static void read_mixed(input *ins, const char *cas, size_t n)
{
    read_input(&ins[0], "map_mixed", cas, 0, true, n);
    read_input(&ins[1], "map_mixed", cas, 1, true, n);
    read_input(&ins[2], "map_mixed", cas, 2, false, 0);
    read_input(&ins[3], "map_mixed", cas, 3, false, 0);
}

static void free_mixed(input *ins)
{
    for (size_t j = 0; j < 4; j++)
        free_input(&ins[j]);
}

Test(sequence_map, second_sequence_tensor_input_and_outer_value)
{
    run r;
    open_model(&r, "map_mixed");
    const struct {
        const char *cas;
        size_t n;
    } cases[] = {{"a", 3}, {"b", 2}, {"a", 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        input ins[4];
        read_mixed(ins, cases[c].cas, cases[c].n);
        cr_assert_eq(run_inputs(&r, ins, 4), QKV_OK, "%s: %s", cases[c].cas, r.err.message);
        assert_sequence_out(&r, 0, QKV_DTYPE_FLOAT, "map_mixed", cases[c].cas, cases[c].n);
        assert_sequence_out(&r, 1, QKV_DTYPE_FLOAT, "map_mixed", cases[c].cas, cases[c].n);
        free_mixed(ins);
    }
    close_model(&r);
}

Test(sequence_map_errors, sequences_of_different_lengths)
{
    run r;
    open_model(&r, "map_mixed");
    input ins[4];
    read_mixed(ins, "a", 3);
    ins[1].n = 2; /* bs one short (its third tensor is freed below all the same) */
    assert_error(run_inputs(&r, ins, 4), QKV_ERR_SHAPE, &r.err, "node 'map_mixed'",
                 "input 1 'bs' has 2 elements, input 0 'as' has 3");
    ins[1].n = 3;
    /* the context is still good */
    cr_assert_eq(run_inputs(&r, ins, 4), QKV_OK, "%s", r.err.message);
    assert_sequence_out(&r, 0, QKV_DTYPE_FLOAT, "map_mixed", "a", 3);
    free_mixed(ins);
    close_model(&r);
}

Test(sequence_map_errors, element_shape_the_body_cannot_take)
{
    run r;
    open_model(&r, "map_mixed");
    input ins[4];
    read_mixed(ins, "a", 3);
    /* element 1 of bs (a [1, 3]) read as [2]: b * t with t [3] cannot broadcast */
    ins[1].t[1].rank = 1;
    ins[1].t[1].dims[0] = 2;
    ins[1].t[1].data_bytes = 2 * sizeof(float);
    assert_error(run_inputs(&r, ins, 4), QKV_ERR_SHAPE, &r.err, "node 'map_mixed'",
                 "subgraph 'body'");
    free_mixed(ins);
    close_model(&r);
}

static void assert_session_error(const char *name, qkv_status want, const char *a, const char *b)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sequence_map/%s.onnx", name);
    qkv_session *s = NULL;
    qkv_error err;
    assert_error(qkv_session_create(tu_data(rel), NULL, &s, &err), want, &err, a, b);
    cr_assert_null(s);
}

Test(sequence_map_errors, body_input_count_differs_from_the_node)
{
    assert_session_error("bad_count", QKV_ERR_INVALID_MODEL, "node 'map_count'",
                         "the body has 1 inputs and 1 outputs, expected 2 and 1");
}

Test(sequence_map_errors, input_0_must_be_a_sequence)
{
    assert_session_error("bad_tensor_input", QKV_ERR_TYPE, "node 'map_tensor'",
                         "input 0 is a tensor, expected a sequence");
}

Test(sequence_map_errors, element_type_differs_from_the_body_input)
{
    assert_session_error("bad_elem_type", QKV_ERR_TYPE, "node 'map_int'",
                         "input 0 holds int64, the body's input 0 'x' is float");
}

Test(sequence_map_errors, body_reading_an_outer_sequence_is_refused)
{
    assert_session_error("bad_outer_sequence", QKV_ERR_UNSUPPORTED, "node 'map_outer_seq'",
                         "the body reads 'xs', a sequence");
}
