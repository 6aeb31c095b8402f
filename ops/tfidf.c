/*
 * tfidf.c - TfIdfVectorizer (opset 9).
 *
 * Input 0: int32, int64 or string items of shape [C] or [B, C] (a scalar
 * counts as [1]). Output: float32 [S] or [B, S], S = max(ngram_indexes) + 1.
 *
 * The pool (pool_int64s or pool_strings) holds the n-grams grouped by
 * length: ngram_counts[i] is where the (i + 1)-grams start (in items), and
 * the k-th n-gram of the pool, counting every length, is counted into output
 * column ngram_indexes[k]. Only lengths in [min_gram_length, max_gram_length]
 * are looked for. An n-gram of a row is items start, start + d, ...,
 * start + (n - 1) d for every skip distance d in [1, max_skip_count + 1];
 * unigrams are counted once, at d = 1. Mode TF gives the counts; IDF gives
 * weights[col] (1 without weights) where the count is non-zero; TFIDF the
 * count times weights[col]. This is the ONNX reference's algorithm (a pool
 * listing one n-gram twice counts it into its last column).
 *
 * Errors (init, naming the node): a mode other than TF, IDF, TFIDF; gram
 * lengths or max_skip_count out of range; ngram_counts not increasing or
 * past the pool, or not splitting it into whole n-grams; fewer
 * ngram_indexes than n-grams, or a negative one; fewer weights than output
 * columns. An int pool with string input, or the other way round, is a type
 * error.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

typedef enum tfidf_mode { MODE_TF, MODE_IDF, MODE_TFIDF } tfidf_mode;

typedef struct tfidf_state {
    tfidf_mode mode;
    int64_t min_n, max_n, max_skip;
    size_t width; /* S: output columns */
    bool strings; /* the pool is pool_strings */
    const int64_t *pool_ints;
    const char *const *pool_strs; /* both live as long as the session */
    size_t n_grams;
    size_t *gram_start;   /* (n_grams) the first item in the pool */
    size_t *gram_len;     /* (n_grams) */
    size_t *gram_col;     /* (n_grams) its output column */
    const float *weights; /* NULL: none */
} tfidf_state;

static void tfidf_destroy(void *state)
{
    tfidf_state *s = state;
    if (!s)
        return;
    free(s->gram_start);
    free(s->gram_len);
    free(s->gram_col);
    free(s);
}

/* Splits the pool into n-grams (s->gram_*), checking ngram_counts. */
static qkv_status split_pool(tfidf_state *s, const qkv_host_api *host, const qkv_node_ctx *node,
                             const int64_t *counts, size_t n_counts, size_t pool_items)
{
    size_t total = 0;
    for (size_t i = 0; i < n_counts; i++) {
        int64_t start = counts[i];
        int64_t end = i + 1 < n_counts ? counts[i + 1] : (int64_t)pool_items;
        if (start < 0 || end < start || end > (int64_t)pool_items)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'ngram_counts'[%zu] = %lld is out of range for a pool of %zu "
                        "items",
                        i, (long long)start, pool_items);
        if ((end - start) % (int64_t)(i + 1) != 0)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "the pool's %zu-grams take %lld items, not a multiple of %zu", i + 1,
                        (long long)(end - start), i + 1);
        total += (size_t)(end - start) / (i + 1);
    }
    s->gram_start = calloc(total ? total : 1, sizeof *s->gram_start);
    s->gram_len = calloc(total ? total : 1, sizeof *s->gram_len);
    s->gram_col = calloc(total ? total : 1, sizeof *s->gram_col);
    if (!s->gram_start || !s->gram_len || !s->gram_col)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    size_t k = 0;
    for (size_t i = 0; i < n_counts; i++) {
        size_t start = (size_t)counts[i];
        size_t end = i + 1 < n_counts ? (size_t)counts[i + 1] : pool_items;
        for (size_t at = start; at < end; at += i + 1, k++) {
            s->gram_start[k] = at;
            s->gram_len[k] = i + 1;
        }
    }
    s->n_grams = total;
    return QKV_OK;
}

static qkv_status read_attrs(tfidf_state *s, const qkv_host_api *host, const qkv_node_ctx *node)
{
    const char *mode;
    const int64_t *counts, *indexes;
    const float *weights;
    size_t n_counts, n_indexes, n_weights, n_ints, n_strs;
    qkv_status st = host->attr_string(node, "mode", "", &mode);
    if (st == QKV_OK)
        st = host->attr_int(node, "min_gram_length", 0, &s->min_n);
    if (st == QKV_OK)
        st = host->attr_int(node, "max_gram_length", 0, &s->max_n);
    if (st == QKV_OK)
        st = host->attr_int(node, "max_skip_count", 0, &s->max_skip);
    if (st == QKV_OK)
        st = host->attr_ints(node, "ngram_counts", &counts, &n_counts);
    if (st == QKV_OK)
        st = host->attr_ints(node, "ngram_indexes", &indexes, &n_indexes);
    if (st == QKV_OK)
        st = host->attr_floats(node, "weights", &weights, &n_weights);
    if (st == QKV_OK)
        st = host->attr_ints(node, "pool_int64s", &s->pool_ints, &n_ints);
    if (st == QKV_OK)
        st = host->attr_strings(node, "pool_strings", &s->pool_strs, &n_strs);
    if (st != QKV_OK)
        return st;
    if (strcmp(mode, "TF") == 0)
        s->mode = MODE_TF;
    else if (strcmp(mode, "IDF") == 0)
        s->mode = MODE_IDF;
    else if (strcmp(mode, "TFIDF") == 0)
        s->mode = MODE_TFIDF;
    else
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'mode' is \"%.40s\", expected TF, IDF or TFIDF", mode);
    if (s->min_n < 1 || s->max_n < s->min_n || s->max_skip < 0 || s->max_n > (1 << 20) ||
        s->max_skip > (1 << 20))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "min_gram_length %lld, max_gram_length %lld, max_skip_count %lld: expected "
                    "1 <= min <= max and max_skip_count >= 0",
                    (long long)s->min_n, (long long)s->max_n, (long long)s->max_skip);
    if (n_ints && n_strs)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "has both 'pool_int64s' and 'pool_strings'");
    s->strings = n_strs > 0;
    st = split_pool(s, host, node, counts, n_counts, s->strings ? n_strs : n_ints);
    if (st != QKV_OK)
        return st;
    if (n_indexes < s->n_grams || n_indexes == 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'ngram_indexes' has %zu entries, the pool %zu n-grams", n_indexes,
                    s->n_grams);
    int64_t widest = -1;
    for (size_t i = 0; i < n_indexes; i++) {
        if (indexes[i] < 0 || indexes[i] >= ((int64_t)1 << 32))
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'ngram_indexes'[%zu] is %lld, out of range", i,
                        (long long)indexes[i]);
        widest = indexes[i] > widest ? indexes[i] : widest;
    }
    s->width = (size_t)widest + 1;
    for (size_t k = 0; k < s->n_grams; k++)
        s->gram_col[k] = (size_t)indexes[k];
    if (n_weights && n_weights < s->width)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'weights' has %zu entries, the output %zu columns", n_weights,
                    s->width);
    s->weights = n_weights ? weights : NULL;
    return QKV_OK;
}

static qkv_status tfidf_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    tfidf_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = read_attrs(s, host, node);
    if (st != QKV_OK) {
        tfidf_destroy(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static qkv_status tfidf_infer(void *state, qkv_kernel_io *io)
{
    const tfidf_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (x->dtype != QKV_DTYPE_UNDEFINED && s->n_grams &&
        (x->dtype == QKV_DTYPE_STRING) != s->strings)
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, the pool holds %s",
                    io->host->dtype_name(x->dtype), s->strings ? "strings" : "integers");
    if (x->rank > 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 has rank %d, expected [C] or [B, C]", x->rank);
    int64_t dims[2] = {x->rank == 2 ? x->dims[0] : (int64_t)s->width, (int64_t)s->width};
    if (x->rank < 0)
        qkv_set_shape(y, QKV_DTYPE_FLOAT, -1, NULL);
    else
        qkv_set_shape(y, QKV_DTYPE_FLOAT, x->rank == 2 ? 2 : 1, dims);
    return QKV_OK;
}

/* true when the n-gram of length `len` at row[at], row[at + d], ... is pool
 * n-gram k. */
static bool gram_matches(const tfidf_state *s, const qkv_tensor *x, size_t row, size_t at, size_t d,
                         size_t k)
{
    for (size_t j = 0; j < s->gram_len[k]; j++) {
        size_t i = row + at + j * d, p = s->gram_start[k] + j;
        if (s->strings) {
            const char *item = ((const char *const *)x->data)[i];
            if (strcmp(item ? item : "", s->pool_strs[p]) != 0)
                return false;
        } else if (qkv_int_at(x, i) != s->pool_ints[p]) {
            return false;
        }
    }
    return true;
}

/* Counts row r's n-grams (items row..row+c) into counts (width floats). */
static void count_row(const tfidf_state *s, const qkv_tensor *x, size_t row, size_t c,
                      float *counts)
{
    size_t first_n = (size_t)s->min_n;
    for (size_t d = 1; d <= (size_t)s->max_skip + 1; d++) {
        for (size_t at = 0; at < c; at++) {
            if (at + d * (first_n - 1) >= c)
                break;
            /* the pool's last match wins, as in the reference's trie */
            for (size_t k = s->n_grams; k-- > 0;) {
                size_t n = s->gram_len[k];
                if (n < first_n || n > (size_t)s->max_n || at + d * (n - 1) >= c)
                    continue;
                bool shadowed = false; /* a later identical n-gram counts instead */
                for (size_t m = k + 1; m < s->n_grams && !shadowed; m++)
                    shadowed = s->gram_len[m] == n && gram_matches(s, x, row, at, d, m);
                if (!shadowed && gram_matches(s, x, row, at, d, k))
                    counts[s->gram_col[k]] += 1.0f;
            }
        }
        if (first_n == 1) { /* unigrams do not depend on the skip distance */
            first_n = 2;
            if (first_n > (size_t)s->max_n)
                break;
        }
    }
}

static qkv_status tfidf_compute(const void *state, qkv_kernel_io *io)
{
    const tfidf_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    size_t rows = x->rank == 2 ? (size_t)x->dims[0] : 1;
    size_t c = x->rank == 2 ? (size_t)x->dims[1] : x->rank == 1 ? (size_t)x->dims[0] : 1;
    float *out = y->data;
    memset(out, 0, rows * s->width * sizeof *out);
    for (size_t r = 0; r < rows && s->n_grams; r++) {
        float *row = out + r * s->width;
        count_row(s, x, r * c, c, row);
        for (size_t i = 0; i < s->width; i++) {
            float w = s->weights ? s->weights[i] : 1.0f;
            if (s->mode == MODE_IDF)
                row[i] = row[i] > 0 ? w : 0.0f;
            else if (s->mode == MODE_TFIDF)
                row[i] *= w;
        }
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "TfIdfVectorizer",
        .since_version = 9,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_INDEX | QKV_T(STRING)},
        .init = tfidf_init,
        .infer = tfidf_infer,
        .compute = tfidf_compute,
        .destroy = tfidf_destroy,
    },
};

/* The tfidf family: TfIdfVectorizer. */
const qkv_kernel *qkv_ops_tfidf(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
