/*
 * fuzz_session.c - libFuzzer target: the input bytes as an ONNX model, made
 * a session (qkv_session_create_from_buffer: no default plugins, one
 * thread) and run twice on one context with inputs of the declared shapes.
 *
 * Inputs: unknown and symbolic dims become 1..3 (one value per symbol name,
 * so the run's symbolic-dim check holds); integer inputs hold 0..2 and bool
 * inputs 0/1, so shapes computed from input data stay small; float inputs
 * take their values from the last bytes of the fuzz input (the tail of the
 * model file: what mutations of it change). A model whose inputs would hold
 * more than MAX_ELEMENTS elements, an input of unknown rank or a string
 * input is skipped after session creation, as is one whose convolutions
 * would take more than MAX_CONV_MACS multiply-adds (conv_macs). The session
 * is capped at MEMORY_LIMIT bytes (qkv_session_options.memory_limit), so a
 * plan with a huge output fails before it allocates, as in a user's session
 * with a limit. A run still going after RUN_SECONDS is stopped with
 * qkv_context_cancel by a watchdog thread. Both runs may fail; a crash, a
 * sanitizer report or a leak is the finding.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir.h" /* the session's graph, for conv_macs */
#include "qkv.h"
#include "tensor_io.h" /* qkv_cli_f32_to_f16, qkv_cli_f32_to_bf16 */

#define MAX_ELEMENTS ((size_t)1 << 16)
#define TAIL_BYTES 256
/* The most multiply-adds a model's convolutions may take in one run. The
 * inputs' bound does not bound them: a valid ConvTranspose of X
 * [1,1,19,68,5] by W [1,34,122,3,3] is 241M, and its two runs took over 60 s
 * in this instrumented build (fuzz/regressions/fuzz_session-timeout-269d...):
 * real work, not a hang. 2^24 is about a second per run here. */
#define MAX_CONV_MACS ((uint64_t)1 << 24)
/* Arena, packed weights and run-time buffers of a session. The inputs'
 * bound does not bound its outputs: AveragePool pads of 4194303 made a valid
 * 1.5 GB output whose runs took over 60 s here
 * (fuzz/regressions/fuzz_session-timeout-8235...). 64 MiB is tens of
 * milliseconds of writes. */
#define MEMORY_LIMIT ((size_t)64 << 20)
/* A run's time before the watchdog cancels it. Neither bound above bounds
 * time: a Loop whose trip count a mutation made 2^40, each iteration a small
 * Add, is a valid model that runs for hours
 * (fuzz/regressions/fuzz_session-timeout-5417...), and a user would stop it
 * the same way. */
#define RUN_SECONDS 2
/* What make_shape gives an unknown or symbolic dim at most. */
#define UNKNOWN_DIM 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes input values are drawn from: the input's last TAIL_BYTES. */
typedef struct tail {
    const uint8_t *p;
    size_t n, pos;
} tail;

static uint8_t tail_next(tail *t)
{
    if (t->n == 0)
        return 0;
    uint8_t b = t->p[t->pos % t->n];
    t->pos++;
    return b;
}

static float tail_float(tail *t)
{
    uint8_t b = tail_next(t);
    if (b == 0xff)
        return __builtin_nanf("");
    if (b == 0xfe)
        return __builtin_inff();
    return (float)(int8_t)b / 16.0f;
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Shapes t from the declared info; 0 when the input is skipped. */
static int make_shape(const qkv_value_info *vi, uint8_t salt, qkv_tensor *t, size_t *elems)
{
    if (vi->rank < 0 || vi->rank > QKV_MAX_RANK || vi->dtype == QKV_DTYPE_STRING ||
        qkv_dtype_bits(vi->dtype) == 0)
        return 0;
    t->dtype = vi->dtype;
    t->rank = vi->rank;
    size_t n = 1;
    for (int32_t k = 0; k < vi->rank; k++) {
        int64_t d = vi->dims[k];
        if (vi->dim_params && vi->dim_params[k])
            d = 1 + (int64_t)((name_hash(vi->dim_params[k]) + salt) % 3);
        else if (d < 0)
            d = 1 + (int64_t)((salt + (unsigned)k) % 3);
        if (d > (int64_t)MAX_ELEMENTS)
            return 0;
        t->dims[k] = d;
        n *= (size_t)d;
        if (n > MAX_ELEMENTS)
            return 0;
    }
    *elems = n;
    return 1;
}

static void fill(qkv_tensor *t, size_t n, tail *tl)
{
    uint8_t *b = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case QKV_DTYPE_FLOAT:
            ((float *)b)[i] = tail_float(tl);
            break;
        case QKV_DTYPE_DOUBLE:
            ((double *)b)[i] = tail_float(tl);
            break;
        case QKV_DTYPE_FLOAT16:
            ((uint16_t *)b)[i] = qkv_cli_f32_to_f16(tail_float(tl));
            break;
        case QKV_DTYPE_BFLOAT16:
            ((uint16_t *)b)[i] = qkv_cli_f32_to_bf16(tail_float(tl));
            break;
        case QKV_DTYPE_BOOL:
            b[i] = tail_next(tl) & 1;
            break;
        case QKV_DTYPE_INT8:
            ((int8_t *)b)[i] = (int8_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_UINT8:
            b[i] = (uint8_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_INT16:
            ((int16_t *)b)[i] = (int16_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_UINT16:
            ((uint16_t *)b)[i] = (uint16_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_INT32:
            ((int32_t *)b)[i] = (int32_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_UINT32:
            ((uint32_t *)b)[i] = (uint32_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_INT64:
            ((int64_t *)b)[i] = (int64_t)(tail_next(tl) % 3);
            break;
        case QKV_DTYPE_UINT64:
            ((uint64_t *)b)[i] = (uint64_t)(tail_next(tl) % 3);
            break;
        default:
            return; /* complex, float8, sub-byte: left zero */
        }
    }
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Product of value id's dims [from, rank) in g, an unknown dim counted as
 * UNKNOWN_DIM; 1 for an unknown rank or no value (an estimate, not a bound). */
static uint64_t dims_product(const qkv_ir_graph *g, int32_t id, int32_t from)
{
    if (id < 0 || (size_t)id >= g->n_values)
        return 1;
    const qkv_ir_value *v = &g->values[id];
    uint64_t n = 1;
    for (int32_t d = from; d < v->rank; d++)
        n = sat_mul(n, v->dims[d] < 0 ? UNKNOWN_DIM : (uint64_t)v->dims[d]);
    return n;
}

/* Multiply-adds of g's convolutions (and of those in its subgraphs, each
 * counted once), from the static shapes the session inferred from the
 * declared ones: a Conv-like node makes each output element from W.dims[1]
 * x kernel products, a ConvTranspose each input element. */
static uint64_t conv_macs(const qkv_ir_graph *g)
{
    uint64_t total = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qkv_ir_node *n = &g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            const qkv_ir_attr *at = &n->attrs[a];
            if (at->type != QKV_ATTR_GRAPH && at->type != QKV_ATTR_GRAPHS)
                continue;
            for (size_t k = 0; at->graphs && k < at->n; k++)
                total = sat_add(total, conv_macs(at->graphs[k]));
        }
        if (n->dead || n->domain[0] || n->n_inputs < 2 || n->n_outputs < 1)
            continue;
        bool transpose = strcmp(n->op_type, "ConvTranspose") == 0;
        bool qlinear = strcmp(n->op_type, "QLinearConv") == 0;
        if (!transpose && !qlinear && strcmp(n->op_type, "Conv") != 0 &&
            strcmp(n->op_type, "ConvInteger") != 0 && strcmp(n->op_type, "DeformConv") != 0)
            continue;
        if (qlinear && n->n_inputs < 4)
            continue;
        uint64_t per = dims_product(g, n->inputs[qlinear ? 3 : 1], 1);
        uint64_t base = dims_product(g, transpose ? n->inputs[0] : n->outputs[0], 0);
        total = sat_add(total, sat_mul(base, per));
    }
    return total;
}

/* The watchdog: one thread for the process, made at the first run, cancels
 * `ctx` when `deadline` passes while the run `gen` is still being watched.
 * A harness's global state; the library has none. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool started;
    qkv_context *ctx; /* the context being watched, NULL between runs */
    unsigned long gen;
    struct timespec deadline; /* CLOCK_REALTIME, as pthread_cond_timedwait takes */
} watch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, 0, {0, 0}};

static void *watchdog(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&watch.lock);
    for (;;) {
        if (!watch.ctx) {
            pthread_cond_wait(&watch.changed, &watch.lock);
            continue;
        }
        unsigned long gen = watch.gen;
        int rc = pthread_cond_timedwait(&watch.changed, &watch.lock, &watch.deadline);
        if (rc == ETIMEDOUT && watch.ctx && watch.gen == gen) {
            qkv_context_cancel(watch.ctx); /* under the lock: unwatch waits for it */
            watch.ctx = NULL;
        }
    }
    return NULL;
}

/* Watches the run about to start on ctx (false: no watchdog thread). */
static bool watch_run(qkv_context *ctx)
{
    pthread_mutex_lock(&watch.lock);
    if (!watch.started) {
        pthread_t t;
        watch.started = pthread_create(&t, NULL, watchdog, NULL) == 0;
        if (watch.started)
            pthread_detach(t);
    }
    if (watch.started) {
        clock_gettime(CLOCK_REALTIME, &watch.deadline);
        watch.deadline.tv_sec += RUN_SECONDS;
        watch.ctx = ctx;
        watch.gen++;
        pthread_cond_signal(&watch.changed);
    }
    bool ok = watch.started;
    pthread_mutex_unlock(&watch.lock);
    return ok;
}

/* Ends the watch: after it, the watchdog no longer touches the context. */
static void unwatch_run(void)
{
    pthread_mutex_lock(&watch.lock);
    watch.ctx = NULL;
    watch.gen++;
    pthread_cond_signal(&watch.changed);
    pthread_mutex_unlock(&watch.lock);
}

static void run_session(qkv_session *s, const uint8_t *data, size_t size)
{
    const qkv_model *m = qkv_session_model(s);
    size_t n_in = qkv_model_input_count(m);
    if (n_in > 64 || conv_macs(m->graph) > MAX_CONV_MACS)
        return;
    tail tl = {size > TAIL_BYTES ? data + size - TAIL_BYTES : data,
               size > TAIL_BYTES ? TAIL_BYTES : size, 0};
    uint8_t salt = tail_next(&tl);
    qkv_tensor *in = calloc(n_in ? n_in : 1, sizeof *in);
    if (!in)
        return;
    size_t total = 0;
    int ok = 1;
    for (size_t i = 0; i < n_in && ok; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(m, i, &vi);
        size_t n = 0;
        ok = make_shape(&vi, salt, &in[i], &n) && (total += n) <= MAX_ELEMENTS;
        if (!ok)
            break;
        in[i].data_bytes = (n * qkv_dtype_bits(vi.dtype) + 7) / 8;
        in[i].data = calloc(in[i].data_bytes ? in[i].data_bytes : 1, 1);
        if (!in[i].data) {
            ok = 0;
            break;
        }
        fill(&in[i], n, &tl);
    }
    qkv_context *ctx = NULL;
    qkv_error err;
    if (ok && qkv_context_create(s, &ctx, &err) == QKV_OK) {
        for (int r = 0; r < 2; r++) {
            if (!watch_run(ctx))
                break;
            qkv_status st = qkv_run(ctx, in, n_in, &err);
            unwatch_run();
            if (st != QKV_OK)
                break;
            /* touch every output byte: a short buffer shows up here */
            unsigned sum = 0;
            for (size_t o = 0; o < qkv_model_output_count(m); o++) {
                const qkv_tensor *t = qkv_context_output(ctx, o);
                if (t && t->data)
                    for (size_t k = 0; k < t->data_bytes; k++)
                        sum += ((const uint8_t *)t->data)[k];
            }
            __asm__ volatile("" : : "r"(sum));
        }
        qkv_context_destroy(ctx);
    }
    for (size_t i = 0; i < n_in; i++)
        free(in[i].data);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.no_default_plugins = 1;
    opts.threads = 1;
    opts.memory_limit = MEMORY_LIMIT;
    qkv_session *s = NULL;
    qkv_error err;
    if (qkv_session_create_from_buffer(data, size, NULL, &opts, &s, &err) != QKV_OK)
        return 0;
    run_session(s, data, size);
    qkv_session_destroy(s);
    return 0;
}
