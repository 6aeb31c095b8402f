/* String tensors: StringNormalizer, TfIdfVectorizer, Cast to string (texts
 * generated with numpy's str()), and a whole model moving strings through
 * the arena and a dynamic node, run twice on one context. Expected values
 * are written out by hand from the ONNX spec, or from numpy. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"
#include "test_util.h"

static qkv_tensor strs(int32_t rank, const int64_t *dims, const char **v)
{
    return kh_tensor(QKV_DTYPE_STRING, rank, dims, (void *)v);
}

static void assert_strings(const qkv_tensor *y, const char *const *want, size_t n)
{
    cr_assert_eq(y->dtype, QKV_DTYPE_STRING);
    size_t numel = 1;
    for (int32_t d = 0; d < y->rank; d++)
        numel *= (size_t)y->dims[d];
    cr_assert_eq(numel, n, "%zu elements, expected %zu", numel, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(((char *const *)y->data)[i], want[i], "[%zu]", i);
}

/* ---- StringNormalizer ------------------------------------------------------------ */

static qkv_status normalize(const char *action, int sensitive, const char *const *stop,
                            size_t n_stop, qkv_tensor x, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("StringNormalizer", 10, 1, 1);
    if (action)
        kh_attr_string(n, "case_change_action", action);
    if (sensitive >= 0)
        kh_attr_int(n, "is_case_sensitive", sensitive);
    if (n_stop)
        kh_attr_strings(n, "stopwords", stop, n_stop);
    kh_attr_string(n, "locale", "tr_TR");
    kh_hide_input_values(n); /* as at planning: the shape comes from the values */
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

Test(strings, normalizer_maps_ascii_case_and_passes_other_bytes)
{
    const char *in[4] = {"Monday", "tUEsday", "\xc3\x84rger-\xc3\xa4", ""};
    int64_t dims[1] = {4};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(normalize("LOWER", -1, NULL, 0, strs(1, dims, in), &y, &err), QKV_OK, "%s",
                 err.message);
    const char *lower[4] = {"monday", "tuesday", "\xc3\x84rger-\xc3\xa4", ""};
    assert_strings(&y, lower, 4);
    kh_free_outputs(&y, 1);
    cr_assert_eq(normalize("UPPER", -1, NULL, 0, strs(1, dims, in), &y, &err), QKV_OK, "%s",
                 err.message);
    const char *upper[4] = {"MONDAY", "TUESDAY", "\xc3\x84RGER-\xc3\xa4", ""};
    assert_strings(&y, upper, 4);
    kh_free_outputs(&y, 1);
    cr_assert_eq(normalize(NULL, -1, NULL, 0, strs(1, dims, in), &y, &err), QKV_OK, "%s",
                 err.message);
    assert_strings(&y, in, 4);
    kh_free_outputs(&y, 1);
}

Test(strings, normalizer_removes_stopwords_with_or_without_case)
{
    const char *in[1 * 5] = {"monday", "Monday", "sunday", "MONDAY", "day"};
    const char *stop[2] = {"monday", "tuesday"};
    int64_t dims[2] = {1, 5};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(normalize("NONE", 1, stop, 2, strs(2, dims, in), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 1);
    const char *kept_sensitive[4] = {"Monday", "sunday", "MONDAY", "day"};
    assert_strings(&y, kept_sensitive, 4);
    kh_free_outputs(&y, 1);
    cr_assert_eq(normalize("UPPER", 0, stop, 2, strs(2, dims, in), &y, &err), QKV_OK, "%s",
                 err.message);
    const char *kept_insensitive[2] = {"SUNDAY", "DAY"};
    assert_strings(&y, kept_insensitive, 2);
    kh_free_outputs(&y, 1);
}

Test(strings, normalizer_gives_one_empty_string_when_all_are_removed)
{
    const char *in[2] = {"monday", "monday"};
    const char *stop[1] = {"monday"};
    int64_t d1[1] = {2}, d2[2] = {1, 2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(normalize("UPPER", 1, stop, 1, strs(1, d1, in), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.rank, 1);
    const char *empty[1] = {""};
    assert_strings(&y, empty, 1);
    kh_free_outputs(&y, 1);
    cr_assert_eq(normalize("UPPER", 1, stop, 1, strs(2, d2, in), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 1);
    cr_assert_eq(y.dims[1], 1);
    assert_strings(&y, empty, 1);
    kh_free_outputs(&y, 1);
}

Test(strings, normalizer_errors_name_the_node)
{
    const char *in[4] = {"a", "b", "c", "d"};
    int64_t d22[2] = {2, 2}, d3[3] = {1, 1, 4};
    float f[2] = {1, 2};
    int64_t d1[1] = {2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(normalize("TITLE", -1, NULL, 0, strs(1, d1, in), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "case_change_action"), "%s",
              err.message);
    cr_assert_eq(normalize("LOWER", -1, NULL, 0, kh_f32(1, d1, f), &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "float32"), "%s",
              err.message);
    cr_assert_eq(normalize("LOWER", -1, NULL, 0, strs(2, d22, in), &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "[1, C]"), "%s", err.message);
    cr_assert_eq(normalize("LOWER", -1, NULL, 0, strs(3, d3, in), &y, &err), QKV_ERR_SHAPE);
}

/* ---- TfIdfVectorizer ------------------------------------------------------------- */

typedef struct tfidf_cfg {
    const char *mode;
    int64_t min_n, max_n, skip;
    const int64_t *counts;
    size_t n_counts;
    const int64_t *indexes;
    size_t n_indexes;
    const int64_t *pool_ints;
    const char *const *pool_strs;
    size_t n_pool;
    const float *weights;
    size_t n_weights;
} tfidf_cfg;

static qkv_status tfidf(const tfidf_cfg *c, qkv_tensor x, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("TfIdfVectorizer", 9, 1, 1);
    kh_attr_string(n, "mode", c->mode);
    kh_attr_int(n, "min_gram_length", c->min_n);
    kh_attr_int(n, "max_gram_length", c->max_n);
    kh_attr_int(n, "max_skip_count", c->skip);
    kh_attr_ints(n, "ngram_counts", c->counts, c->n_counts);
    kh_attr_ints(n, "ngram_indexes", c->indexes, c->n_indexes);
    if (c->pool_ints)
        kh_attr_ints(n, "pool_int64s", c->pool_ints, c->n_pool);
    else
        kh_attr_strings(n, "pool_strings", c->pool_strs, c->n_pool);
    if (c->n_weights)
        kh_attr_floats(n, "weights", c->weights, c->n_weights);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

static void assert_floats(const qkv_tensor *y, const float *want, size_t n)
{
    cr_assert_eq(y->dtype, QKV_DTYPE_FLOAT);
    for (size_t i = 0; i < n; i++)
        cr_assert_float_eq(((float *)y->data)[i], want[i], 1e-6, "[%zu]: %g vs %g", i,
                           (double)((float *)y->data)[i], (double)want[i]);
}

/* the node suite's pool: unigrams 2 3 5 4, bigrams (5,6) (7,8) (6,7) */
static const int64_t suite_pool[10] = {2, 3, 5, 4, 5, 6, 7, 8, 6, 7};
static const int64_t suite_counts[2] = {0, 4};
static const int64_t suite_indexes[7] = {0, 1, 2, 3, 4, 5, 6};

Test(strings, tfidf_counts_uni_and_skip_bigrams_in_batches)
{
    /* the node suite's tf_batch_uniandbigrams_skip5 (expected from its data) */
    int32_t x[12] = {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8};
    int64_t dims[2] = {2, 6};
    tfidf_cfg c = {"TF", 1, 2, 5, suite_counts, 2, suite_indexes, 7, suite_pool, NULL, 10, NULL, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(tfidf(&c, kh_tensor(QKV_DTYPE_INT32, 2, dims, x), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[1], 7);
    const float want[14] = {0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1};
    assert_floats(&y, want, 14);
    kh_free_outputs(&y, 1);
    /* bigrams only, no skip: (7,8) is 3 apart, so only (5,6) and (6,7) count */
    c.min_n = 2;
    c.skip = 0;
    cr_assert_eq(tfidf(&c, kh_tensor(QKV_DTYPE_INT32, 2, dims, x), &y, &err), QKV_OK, "%s",
                 err.message);
    const float want2[14] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
    assert_floats(&y, want2, 14);
    kh_free_outputs(&y, 1);
}

Test(strings, tfidf_modes_weigh_the_counts)
{
    /* 1-D int64 input; pool unigrams a=1 b=2 into columns 1 and 0 */
    int64_t x[5] = {1, 2, 1, 9, 1}, dims[1] = {5};
    const int64_t pool[2] = {1, 2}, counts[1] = {0}, idx[2] = {1, 0};
    const float w[2] = {0.5f, 4.0f};
    tfidf_cfg c = {"TF", 1, 1, 0, counts, 1, idx, 2, pool, NULL, 2, w, 2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    assert_floats(&y, (const float[]){1, 3}, 2);
    kh_free_outputs(&y, 1);
    c.mode = "IDF";
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (const float[]){0.5f, 4.0f}, 2);
    kh_free_outputs(&y, 1);
    c.mode = "TFIDF";
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (const float[]){0.5f, 12.0f}, 2);
    kh_free_outputs(&y, 1);
    c.n_weights = 0;
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (const float[]){1, 3}, 2);
    kh_free_outputs(&y, 1);
    c.mode = "IDF";
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (const float[]){1, 1}, 2);
    kh_free_outputs(&y, 1);
}

Test(strings, tfidf_reads_string_pools)
{
    const char *x[6] = {"the", "cat", "sat", "the", "cat", "ran"};
    const char *pool[5] = {"cat", "the", "the", "cat", "zzz"};
    /* unigrams cat, the; bigrams (the cat) -- zzz would be half a bigram: see errors */
    const int64_t counts[2] = {0, 2}, idx[3] = {0, 1, 2};
    int64_t dims[1] = {6};
    tfidf_cfg c = {"TF", 1, 2, 0, counts, 2, idx, 3, NULL, pool, 4, NULL, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(tfidf(&c, strs(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (const float[]){2, 2, 2}, 3);
    kh_free_outputs(&y, 1);
}

Test(strings, tfidf_errors_name_the_node)
{
    int64_t x[2] = {1, 2}, dims[1] = {2};
    const int64_t pool[3] = {1, 2, 3}, counts[2] = {0, 2}, far[1] = {4}, idx[2] = {0, 1};
    qkv_tensor y;
    qkv_error err;
    tfidf_cfg c = {"COUNT", 1, 1, 0, counts, 1, idx, 2, pool, NULL, 3, NULL, 0};
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "'mode'"), "%s", err.message);
    c.mode = "TF";
    c.counts = far; /* the unigrams start past the pool's end */
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "ngram_counts") && strstr(err.message, "out of range"), "%s",
              err.message);
    c.counts = counts;
    c.n_counts = 2; /* 2 unigrams, then 1 item: not a whole bigram */
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "multiple of 2"), "%s", err.message);
    c.n_counts = 1;
    c.n_indexes = 1; /* three unigrams, one index */
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "ngram_indexes"), "%s", err.message);
    c.n_indexes = 2;
    c.max_n = 0;
    cr_assert_eq(tfidf(&c, kh_i64(1, dims, x), &y, &err), QKV_ERR_INVALID_MODEL);
    c.max_n = 1;
    c.n_pool = 2; /* two unigrams, two indexes: valid, but integers */
    const char *sx[2] = {"1", "2"};
    cr_assert_eq(tfidf(&c, strs(1, dims, sx), &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "integers"), "%s", err.message);
}

/* ---- Cast to string ---------------------------------------------------------------- */

static qkv_status cast_to_string(qkv_tensor x, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("Cast", 13, 1, 1);
    kh_attr_int(n, "to", QKV_DTYPE_STRING);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

Test(strings, cast_float_to_string_prints_numpy_shortest_digits)
{
    float x[19] = {0.1f,        1.0f,        100.0f,        1e-5f,    1.5e20f,
                   -0.0f,       123456.78f,  3.4028235e38f, 1e-45f,   0.0001f,
                   -2.5e-7f,    16777216.0f, 0.9767611f,    1e16f,    9.999999e15f,
                   0.00012345f, NAN,         INFINITY,      -INFINITY};
    /* str(np.float32(v)) for each (NaN and the infinities as ONNX spells them) */
    const char *want[19] = {
        "0.1",        "1.0",        "100.0",         "1e-05", "1.5e+20",
        "-0.0",       "123456.78",  "3.4028235e+38", "1e-45", "1e-04",
        "-2.5e-07",   "16777216.0", "0.9767611",     "1e+16", "9999999000000000.0",
        "0.00012345", "NaN",        "INF",           "-INF"};
    int64_t dims[1] = {19};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(cast_to_string(kh_f32(1, dims, x), &y, &err), QKV_OK, "%s", err.message);
    assert_strings(&y, want, 19);
    kh_free_outputs(&y, 1);
}

Test(strings, cast_double_half_and_ints_to_string)
{
    double d[9] = {0.1,
                   1.0 / 3,
                   1e16,
                   1e-4,
                   12345678901234567.0,
                   -1e-300,
                   5e-324,
                   1152921504606846976.0,
                   1000000000000000.5};
    const char *dwant[9] = {"0.1",    "0.3333333333333333",     "1e+16",
                            "0.0001", "1.2345678901234568e+16", "-1e-300",
                            "5e-324", "1.152921504606847e+18",  "1000000000000000.5"};
    int64_t dd[1] = {9};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(cast_to_string(kh_tensor(QKV_DTYPE_DOUBLE, 1, dd, d), &y, &err), QKV_OK, "%s",
                 err.message);
    assert_strings(&y, dwant, 9);
    kh_free_outputs(&y, 1);
    /* float16 0.1, 65504, 6e-8, -1.5, 0.333 */
    uint16_t h[5] = {0x2e66, 0x7bff, 0x0001, 0xbe00, 0x3554};
    const char *hwant[5] = {"0.1", "65500.0", "6e-08", "-1.5", "0.333"};
    int64_t hd[1] = {5};
    cr_assert_eq(cast_to_string(kh_tensor(QKV_DTYPE_FLOAT16, 1, hd, h), &y, &err), QKV_OK, "%s",
                 err.message);
    assert_strings(&y, hwant, 5);
    kh_free_outputs(&y, 1);
    int64_t iv[3] = {-9223372036854775807LL - 1, 0, 42}, id[1] = {3};
    const char *iwant[3] = {"-9223372036854775808", "0", "42"};
    cr_assert_eq(cast_to_string(kh_i64(1, id, iv), &y, &err), QKV_OK, "%s", err.message);
    assert_strings(&y, iwant, 3);
    kh_free_outputs(&y, 1);
}

Test(strings, castlike_to_string_and_back)
{
    float x[3] = {0.25f, -3.0f, 1e-7f};
    const char *like[1] = {""};
    int64_t dims[1] = {3}, ld[1] = {1};
    kh_node *n = kh_node_create("CastLike", 15, 2, 1);
    qkv_tensor ins[2] = {kh_f32(1, dims, x), strs(1, ld, like)}, y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    kh_node_destroy(n);
    const char *want[3] = {"0.25", "-3.0", "1e-07"};
    assert_strings(&y, want, 3);
    /* and the strings parse back to the same floats */
    kh_node *back = kh_node_create("Cast", 13, 1, 1);
    kh_attr_int(back, "to", QKV_DTYPE_FLOAT);
    qkv_tensor z;
    cr_assert_eq(kh_run(back, &y, &z, &err), QKV_OK, "%s", err.message);
    kh_node_destroy(back);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((float *)z.data)[i], x[i]);
    kh_free_outputs(&y, 1);
    kh_free_outputs(&z, 1);
}

Test(strings, bool_to_string_is_refused)
{
    uint8_t b[2] = {0, 1};
    int64_t dims[1] = {2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(cast_to_string(kh_tensor(QKV_DTYPE_BOOL, 1, dims, b), &y, &err),
                 QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
}

/* ---- a whole model ---------------------------------------------------------------- */

/* One run of strings/pipeline.onnx, checked against what its nodes do. */
static void run_pipeline(qkv_context *c, const float *x, size_t n, const char **words,
                         size_t n_words, const char *const *s_want, const char *const *t_want,
                         size_t n_t, const float *counts_want)
{
    int64_t xd[1] = {(int64_t)n}, wd[1] = {(int64_t)n_words};
    qkv_tensor ins[2] = {kh_f32(1, xd, (float *)x), strs(1, wd, words)};
    qkv_error err;
    cr_assert_eq(qkv_run(c, ins, 2, &err), QKV_OK, "%s", err.message);
    assert_strings(qkv_context_output(c, 0), s_want, n);
    /* the characters share the arena buffer but are not counted as data */
    cr_assert_eq(qkv_context_output(c, 0)->data_bytes, n * sizeof(char *));
    assert_strings(qkv_context_output(c, 1), t_want, n_t);
    const qkv_tensor *counts = qkv_context_output(c, 2);
    cr_assert_eq(counts->dims[0], 3);
    assert_floats(counts, counts_want, 3);
}

Test(strings, strings_flow_through_arena_and_dynamic_nodes_run_after_run)
{
    qkv_session *s;
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("strings/pipeline.onnx"), NULL, &s, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    const float x1[3] = {0.5f, 1e-5f, INFINITY};
    const char *w1[4] = {"A", "b", "a", "B"};
    const char *s1[3] = {"0.5", "1e-05", "INF"}, *t1[2] = {"1E-05", "INF"};
    /* a b a b: unigrams a 2, b 2; bigram (a b) 2 */
    run_pipeline(c, x1, 3, w1, 4, s1, t1, 2, (const float[]){2, 2, 2});
    const float x2[2] = {0.5f, 0.5f};
    const char *w2[3] = {"b", "C", "A"};
    const char *s2[2] = {"0.5", "0.5"}, *t2[1] = {""};
    run_pipeline(c, x2, 2, w2, 3, s2, t2, 1, (const float[]){1, 1, 0});
    run_pipeline(c, x1, 3, w1, 4, s1, t1, 2, (const float[]){2, 2, 2});
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}
