/*
 * string_normalizer.c - StringNormalizer (opset 10).
 *
 * Input 0: strings of shape [C] or [1, C]. Elements equal to one of the
 * `stopwords` are removed (compared byte for byte with is_case_sensitive=1,
 * else after ASCII lower-casing both sides); what is left is mapped by
 * case_change_action: LOWER, UPPER or NONE (the default). Output: [C'] or
 * [1, C']; when every element is removed, [1] or [1, 1] holding "" (the
 * spec's empty-output rule).
 *
 * Case mapping is ASCII only, whatever `locale` says: bytes A-Z and a-z map,
 * every other byte (UTF-8 sequences included) passes through unchanged, so
 * "Ärger" lower-cases to "Ärger" with its Ä kept. The locale attribute is
 * accepted and ignored.
 *
 * The output's shape and size depend on the strings, so infer leaves the
 * kept count -1 until the input is known (the node then runs as dynamic),
 * and asks for room for every kept string's characters.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

typedef enum case_action { CASE_NONE, CASE_LOWER, CASE_UPPER } case_action;

typedef struct normalizer_state {
    case_action action;
    bool case_sensitive;
    size_t n_stop;
    char **stop; /* (n_stop) lower-cased when !case_sensitive */
} normalizer_state;

static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

static void normalizer_destroy(void *state)
{
    normalizer_state *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_stop; i++)
        free(s->stop[i]);
    free(s->stop);
    free(s);
}

static qkv_status normalizer_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                  const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const char *action;
    int64_t sensitive;
    const char *const *stop;
    size_t n_stop;
    qkv_status st = host->attr_string(node, "case_change_action", "NONE", &action);
    if (st == QKV_OK)
        st = host->attr_int(node, "is_case_sensitive", 0, &sensitive);
    if (st == QKV_OK)
        st = host->attr_strings(node, "stopwords", &stop, &n_stop);
    if (st != QKV_OK)
        return st;
    case_action a;
    if (strcmp(action, "NONE") == 0)
        a = CASE_NONE;
    else if (strcmp(action, "LOWER") == 0)
        a = CASE_LOWER;
    else if (strcmp(action, "UPPER") == 0)
        a = CASE_UPPER;
    else
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'case_change_action' is \"%.40s\", expected LOWER, UPPER or NONE",
                    action);
    normalizer_state *s = calloc(1, sizeof *s);
    if (!s || (n_stop && !(s->stop = calloc(n_stop, sizeof *s->stop)))) {
        free(s);
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    }
    s->action = a;
    s->case_sensitive = sensitive != 0;
    for (size_t i = 0; i < n_stop; i++, s->n_stop++) {
        size_t len = strlen(stop[i]);
        if (!(s->stop[i] = malloc(len + 1))) {
            normalizer_destroy(s);
            return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
        }
        for (size_t k = 0; k <= len; k++)
            s->stop[i][k] = s->case_sensitive ? stop[i][k] : ascii_lower(stop[i][k]);
    }
    *state = s;
    return QKV_OK;
}

/* true when str (ASCII lower-cased first unless case-sensitive) is a stopword. */
static bool is_stopword(const normalizer_state *s, const char *str)
{
    for (size_t i = 0; i < s->n_stop; i++) {
        const char *a = str, *b = s->stop[i];
        while (*a && *b && (s->case_sensitive ? *a : ascii_lower(*a)) == *b) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0')
            return true;
    }
    return false;
}

/* Checks the input's shape; *c gets C (-1 when unknown). */
static qkv_status input_width(qkv_kernel_io *io, int64_t *c)
{
    const qkv_tensor *x = &io->inputs[0];
    *c = -1;
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank != 1 && x->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 has rank %d, expected [C] or [1, C]", x->rank);
    if (x->rank == 2 && x->dims[0] >= 0 && x->dims[0] != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 0 has shape [%lld, %lld], expected [1, C]",
                    (long long)x->dims[0], (long long)x->dims[1]);
    *c = x->dims[x->rank - 1];
    return QKV_OK;
}

static qkv_status normalizer_infer(void *state, qkv_kernel_io *io)
{
    const normalizer_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int64_t c;
    qkv_status st = input_width(io, &c);
    if (st != QKV_OK)
        return st;
    if (x->rank < 0) {
        qkv_set_shape(y, QKV_DTYPE_STRING, -1, NULL);
        return QKV_OK;
    }
    int32_t rank = x->rank;
    int64_t dims[2] = {1, -1};
    if (x->data && c >= 0) {
        const char *const *in = x->data;
        size_t kept = 0, chars = 0;
        for (size_t i = 0; i < (size_t)c; i++) {
            const char *str = in[i] ? in[i] : "";
            if (!is_stopword(s, str)) {
                kept++;
                chars += strlen(str) + 1;
            }
        }
        dims[rank - 1] = kept ? (int64_t)kept : 1;
        qkv_set_shape(y, QKV_DTYPE_STRING, rank, dims);
        y->data_bytes = qkv_string_bytes(kept ? kept : 1, kept ? chars : 1);
        return QKV_OK;
    }
    qkv_set_shape(y, QKV_DTYPE_STRING, rank, rank == 2 ? dims : dims + 1);
    return QKV_OK;
}

static qkv_status normalizer_compute(const void *state, qkv_kernel_io *io)
{
    const normalizer_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    size_t c = (size_t)x->dims[x->rank - 1], kept = 0;
    const char *const *in = x->data;
    qkv_string_writer w;
    qkv_string_writer_init(&w, y);
    size_t cap = qkv_numel(y);
    for (size_t i = 0; i < c; i++) {
        const char *str = in[i] ? in[i] : "";
        if (is_stopword(s, str))
            continue;
        size_t len = strlen(str);
        if (kept >= cap || !qkv_string_put(&w, kept, str, len))
            return KERR(io, QKV_ERR_INTERNAL, "output 0 has no room for string %zu", kept);
        char *o = w.slots[kept++];
        if (s->action != CASE_NONE)
            for (size_t k = 0; k < len; k++)
                o[k] = s->action == CASE_LOWER ? ascii_lower(o[k]) : ascii_upper(o[k]);
    }
    if (kept == 0 && !qkv_string_put(&w, 0, "", 0))
        return KERR(io, QKV_ERR_INTERNAL, "output 0 has no room for the empty string");
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "StringNormalizer",
        .since_version = 10,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_T(STRING)},
        .init = normalizer_init,
        .infer = normalizer_infer,
        .compute = normalizer_compute,
        .destroy = normalizer_destroy,
    },
};

/* The string_normalizer family: StringNormalizer. */
const qkv_kernel *qkv_ops_string_normalizer(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
