/*
 * onednn_prim.c - matmul primitives: one per problem (dn_key), built on first
 * use, kept in the node's cache and shared by every run context.
 *
 * A cache entry holds the primitive and a free list of "slots": the memory
 * objects (src, weights, bias, post-op source, dst, scratchpad) and a stream
 * that one call at a time uses, their data handles pointed at the call's
 * tensors. Memory objects carry a data pointer, so two concurrent calls need
 * two slots; a call takes a free slot (or makes one: the first time a given
 * number of contexts run the shape at once) and gives it back. The packed
 * weights' memory object belongs to the node and is shared: nobody changes
 * its handle.
 *
 * Allocation: our code allocates only on a miss (entry or slot creation,
 * oneDNN object creation). oneDNN itself allocates a little inside every
 * dnnl_primitive_execute (its argument map) and inside its JIT sgemm (packing
 * buffers): that is library-internal and not avoidable through the C API;
 * docs/plugins.md says so.
 *
 * Scratchpad: user mode, so a primitive needing one gets the node's scratch
 * (declared in prepare, which builds the primitive of the planned shape).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onednn_plugin.h"

struct dn_slot {
    dn_slot *next;
    dnnl_stream_t stream;
    dnnl_memory_t mem[DN_N_ARGS];
};

struct dn_entry {
    dn_key key;
    dnnl_primitive_t prim;
    bool has[DN_N_ARGS];
    dnnl_memory_desc_t md[DN_N_ARGS];
    int post_index; /* the binary post-op's position in the chain */
    size_t scratch_bytes;
    unsigned pins;  /* calls using it now: never evicted while > 0 */
    uint64_t used;  /* cache clock at the last use (LRU) */
    dn_slot *slots; /* free slots */
};

const char *dn_status_name(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success:
        return "success";
    case dnnl_out_of_memory:
        return "out of memory";
    case dnnl_invalid_arguments:
        return "invalid arguments";
    case dnnl_unimplemented:
        return "unimplemented";
    case dnnl_iterator_ends:
        return "iterator ends";
    case dnnl_runtime_error:
        return "runtime error";
    case dnnl_not_required:
        return "not required";
    default:
        return "unknown status";
    }
}

/* ---- descriptors ----------------------------------------------------------- */

dnnl_status_t dn_matrix_md(dnnl_memory_desc_t *md, int64_t batch, int64_t rows, int64_t cols,
                           bool trans)
{
    dnnl_dims_t dims = {0}, strides = {0};
    int nd = batch ? 3 : 2, o = batch ? 1 : 0;
    if (batch) {
        dims[0] = batch;
        strides[0] = rows * cols;
    }
    dims[o] = rows;
    dims[o + 1] = cols;
    strides[o] = trans ? 1 : cols;
    strides[o + 1] = trans ? rows : 1;
    return dnnl_memory_desc_init_by_strides(md, nd, dims, dnnl_f32, strides);
}

/* A plain (rows, cols) f32 md with row stride ld (>= cols; 0: cols). */
static dnnl_status_t strided_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t ld)
{
    dnnl_dims_t dims = {rows, cols}, strides = {ld ? ld : cols, 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides);
}

/* The mds of key's arguments into md/has (scratchpad excluded). */
static dnnl_status_t key_mds(const dn_prim_config *cfg, const dn_key *key, bool weights_any,
                             dnnl_memory_desc_t md[DN_N_ARGS], bool has[DN_N_ARGS])
{
    dnnl_status_t s;
    memset(has, 0, DN_N_ARGS * sizeof *has);
    has[DN_SRC] = has[DN_WEIGHTS] = has[DN_DST] = true;
    if ((s = dn_matrix_md(&md[DN_SRC], key->batch, key->m, key->k, key->trans_a)) != dnnl_success)
        return s;
    if (weights_any) {
        dnnl_dims_t wd = {key->k, key->n};
        s = dnnl_memory_desc_init_by_tag(&md[DN_WEIGHTS], 2, wd, dnnl_f32, dnnl_format_tag_any);
    } else if (key->panel) {
        if (!dn_panel_md(cfg, 0, key->n, &md[DN_WEIGHTS], NULL))
            s = dnnl_invalid_arguments;
    } else if (key->packed) {
        md[DN_WEIGHTS] = cfg->packed_md;
    } else {
        s = dn_matrix_md(&md[DN_WEIGHTS], key->batch, key->k, key->n, key->trans_b);
    }
    if (s != dnnl_success)
        return s;
    s = key->ld_dst ? strided_md(&md[DN_DST], key->m, key->n, key->ld_dst)
                    : dn_matrix_md(&md[DN_DST], key->batch, key->m, key->n, false);
    if (s != dnnl_success)
        return s;
    if (key->bias) {
        has[DN_BIAS] = true;
        if ((s = dn_matrix_md(&md[DN_BIAS], key->batch ? 1 : 0, 1, key->n, false)) != dnnl_success)
            return s;
    }
    if (key->post) {
        has[DN_POST] = true;
        if ((s = strided_md(&md[DN_POST], key->post_m, key->post_n, key->ld_post)) != dnnl_success)
            return s;
    }
    return dnnl_success;
}

static dnnl_alg_kind_t act_alg(dn_act a)
{
    switch (a) {
    case DN_ACT_RELU:
        return dnnl_eltwise_relu;
    case DN_ACT_GELU:
        return dnnl_eltwise_gelu_erf;
    case DN_ACT_GELU_TANH:
        return dnnl_eltwise_gelu_tanh;
    default:
        return dnnl_alg_kind_undef;
    }
}

/* Output scale (alpha), then post-ops: eltwise activation, binary add of
 * the post source, sum (beta * dst on entry). */
static dnnl_status_t make_attr(const dn_prim_config *cfg, const dn_key *key,
                               const dnnl_memory_desc_t *post_md, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && cfg->alpha != 1.0f)
        s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &cfg->alpha);
    if (s == dnnl_success)
        s = dnnl_post_ops_create(&po);
    if (s == dnnl_success && cfg->act != DN_ACT_NONE)
        s = dnnl_post_ops_append_eltwise(po, 1.0f, act_alg(cfg->act), 0.0f, 0.0f);
    if (s == dnnl_success && key->post)
        s = dnnl_post_ops_append_binary(po, dnnl_binary_add, post_md);
    if (s == dnnl_success && key->sum)
        s = dnnl_post_ops_append_sum(po, cfg->beta);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(attr, po);
    if (po)
        dnnl_post_ops_destroy(po);
    if (s != dnnl_success) {
        if (attr)
            dnnl_primitive_attr_destroy(attr);
        attr = NULL;
    }
    *out = attr;
    return s;
}

dnnl_status_t dn_prim_desc(const dn_prim_config *cfg, const dn_key *key, bool weights_any,
                           dnnl_primitive_desc_t *pd)
{
    dnnl_memory_desc_t md[DN_N_ARGS];
    bool has[DN_N_ARGS];
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    *pd = NULL;
    dnnl_status_t s = key_mds(cfg, key, weights_any, md, has);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &md[DN_SRC], &md[DN_WEIGHTS],
                                  has[DN_BIAS] ? &md[DN_BIAS] : NULL, &md[DN_DST]);
    if (s == dnnl_success)
        s = make_attr(cfg, key, &md[DN_POST], &attr);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &desc, attr, cfg->engine, NULL);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        *pd = NULL;
    return s;
}

/* ---- entries and slots ------------------------------------------------------ */

static void slot_destroy(dn_slot *sl)
{
    for (int a = 0; a < DN_N_ARGS; a++)
        if (sl->mem[a])
            dnnl_memory_destroy(sl->mem[a]);
    if (sl->stream)
        dnnl_stream_destroy(sl->stream);
    free(sl);
}

static void entry_destroy(dn_entry *e)
{
    if (!e)
        return;
    while (e->slots) {
        dn_slot *next = e->slots->next;
        slot_destroy(e->slots);
        e->slots = next;
    }
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    free(e);
}

/* Builds the entry of key (with the calling thread's OpenMP count, which
 * the caller set to key->threads). */
static dnnl_status_t entry_build(const dn_prim_config *cfg, const dn_key *key, dn_entry **out)
{
    *out = NULL;
    dn_entry *e = calloc(1, sizeof *e);
    if (!e)
        return dnnl_out_of_memory;
    e->key = *key;
    e->post_index = cfg->act != DN_ACT_NONE ? 1 : 0;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = key_mds(cfg, key, false, e->md, e->has);
    if (s == dnnl_success)
        s = dn_prim_desc(cfg, key, false, &pd);
    if (s == dnnl_success) {
        const dnnl_memory_desc_t *sp =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
        if (e->scratch_bytes) {
            e->md[DN_SCRATCH] = *sp;
            e->has[DN_SCRATCH] = true;
        }
        s = dnnl_primitive_create(&e->prim, pd);
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        e->prim = NULL;
        entry_destroy(e);
        return s;
    }
    *out = e;
    return dnnl_success;
}

static dnnl_status_t slot_build(const dn_prim_config *cfg, const dn_entry *e, dn_slot **out)
{
    *out = NULL;
    dn_slot *sl = calloc(1, sizeof *sl);
    if (!sl)
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_stream_create(&sl->stream, cfg->engine, dnnl_stream_default_flags);
    if (s != dnnl_success)
        sl->stream = NULL;
    for (int a = 0; a < DN_N_ARGS && s == dnnl_success; a++) {
        if (!e->has[a] || (a == DN_WEIGHTS && e->key.packed && !e->key.panel))
            continue;
        s = dnnl_memory_create(&sl->mem[a], &e->md[a], cfg->engine, DNNL_MEMORY_NONE);
        if (s != dnnl_success)
            sl->mem[a] = NULL;
    }
    if (s != dnnl_success) {
        slot_destroy(sl);
        return s;
    }
    *out = sl;
    return dnnl_success;
}

/* ---- the cache -------------------------------------------------------------- */

void dn_cache_init(dn_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

void dn_cache_fini(dn_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        entry_destroy(c->entries[i]);
    c->n = 0;
    pthread_mutex_destroy(&c->lock);
}

/* Under the lock: the entry of key, pinned, or NULL. */
static dn_entry *find_locked(dn_cache *c, const dn_key *key)
{
    for (size_t i = 0; i < c->n; i++) {
        dn_entry *e = c->entries[i];
        if (memcmp(&e->key, key, sizeof *key) == 0) {
            e->pins++;
            e->used = ++c->clock;
            return e;
        }
    }
    return NULL;
}

/* Under the lock: inserts the pinned entry e, evicting the least recently
 * used unpinned entry when full. false when all are pinned (e stays
 * private to the caller). */
static bool insert_locked(dn_cache *c, dn_entry *e)
{
    e->used = ++c->clock;
    if (c->n < DN_CACHE_MAX) {
        c->entries[c->n++] = e;
        return true;
    }
    size_t victim = DN_CACHE_MAX;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i]->pins == 0 &&
            (victim == DN_CACHE_MAX || c->entries[i]->used < c->entries[victim]->used))
            victim = i;
    if (victim == DN_CACHE_MAX)
        return false;
    entry_destroy(c->entries[victim]);
    c->entries[victim] = e;
    return true;
}

/*
 * The pinned entry of key (built on a miss, with the calling thread's
 * OpenMP count) and whether it is in the cache (*cached false: the caller
 * destroys it after use). Returns the dnnl status.
 */
static dnnl_status_t acquire(const dn_prim_config *cfg, dn_cache *c, const dn_key *key,
                             dn_entry **out, bool *cached)
{
    *out = NULL;
    *cached = true;
    pthread_mutex_lock(&c->lock);
    dn_entry *e = find_locked(c, key);
    pthread_mutex_unlock(&c->lock);
    if (e) {
        *out = e;
        return dnnl_success;
    }
    dn_entry *made = NULL;
    dnnl_status_t s = entry_build(cfg, key, &made); /* slow: outside the lock */
    if (s != dnnl_success)
        return s;
    made->pins = 1;
    pthread_mutex_lock(&c->lock);
    c->built++;
    e = find_locked(c, key); /* another call may have built it meanwhile */
    if (!e) {
        *cached = insert_locked(c, made);
        e = made;
        made = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    entry_destroy(made);
    *out = e;
    return dnnl_success;
}

/* Gives e (and slot sl, may be NULL) back. */
static void release(dn_cache *c, dn_entry *e, bool cached, dn_slot *sl)
{
    if (!cached) {
        if (sl) {
            sl->next = e->slots;
            e->slots = sl;
        }
        entry_destroy(e);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (sl) {
        sl->next = e->slots;
        e->slots = sl;
    }
    e->pins--;
    pthread_mutex_unlock(&c->lock);
}

/* A free slot of the pinned entry e, or a new one. */
static dnnl_status_t take_slot(const dn_prim_config *cfg, dn_cache *c, dn_entry *e, dn_slot **out)
{
    pthread_mutex_lock(&c->lock);
    dn_slot *sl = e->slots;
    if (sl)
        e->slots = sl->next;
    pthread_mutex_unlock(&c->lock);
    if (sl) {
        sl->next = NULL;
        *out = sl;
        return dnnl_success;
    }
    return slot_build(cfg, e, out);
}

static qkv_status fail(qkv_kernel_io *io, dnnl_status_t s, const char *what, const dn_key *key)
{
    qkv_status st = s == dnnl_out_of_memory   ? QKV_ERR_OUT_OF_MEMORY
                    : s == dnnl_unimplemented ? QKV_ERR_UNSUPPORTED
                                              : QKV_ERR_INTERNAL;
    return KERR(io, st, "oneDNN: %s failed (%s) for the matmul batch=%lld m=%lld k=%lld n=%lld",
                what, dn_status_name(s), (long long)key->batch, (long long)key->m,
                (long long)key->k, (long long)key->n);
}

/* ---- splitting a call over the host's threads ----------------------------------- */

/* Row blocks of at least this many rows: narrower ones waste the sgemm's
 * register tile and repack B's panels once per block. */
#define DN_MIN_ROWS 32

/*
 * How a call is threaded: `blocks` single-threaded primitives (key threads
 * = 1), one per host thread through host->parallel_for, each on a column
 * panel `width` columns wide (the last one narrower) or on a block of rows;
 * blocks == 1: one primitive threaded by oneDNN on an OpenMP team of
 * key->threads.
 *
 * Why split at all: an OpenMP team's workers spin after each primitive
 * (libgomp's default wait policy) while the host's own pool runs the next
 * nodes, so on a busy machine the two fight for cores; measured on the
 * 2-layer encoder with 2 threads, a row split ran as fast as
 * OMP_WAIT_POLICY=passive does.
 *
 * Why columns first: with packed plain weights, a column panel per thread
 * means each thread reads and packs only its share of the weights (the
 * larger operand whenever N >= M), where a row split makes every thread
 * stream and pack all of them. Measured on the encoder's four GEMM shapes
 * (M 128, 2 threads, medians of 200): panels 4.53 ms, row blocks 5.26 ms,
 * one primitive on an OpenMP team 4.88 ms. A (1, n) binary source
 * broadcast over rows keeps the row split: beside a strided destination
 * oneDNN 2.6 has only a reference kernel for it.
 */
typedef struct dn_split {
    size_t blocks;
    bool cols;
    int64_t width;
} dn_split;

static dn_split split_of(const dn_prim_config *cfg, const dn_key *key)
{
    dn_split sp = {1, false, 0};
    if (key->threads <= 1 || key->batch != 0 || key->trans_a || key->panel)
        return sp;
    int64_t t = key->threads, step = cfg->panel_step;
    /* oneDNN has only a reference kernel for a (1, n) binary source
     * broadcast over the rows of a strided destination */
    bool row_post = key->post && key->post_m == 1 && key->m > 1 && key->post_n == key->n;
    if (key->packed && step > 0 && !row_post && (key->n >= key->m || key->m < 2 * DN_MIN_ROWS)) {
        sp.cols = true;
        sp.width = dn_panel_width(key->n, t, step);
        sp.blocks = (size_t)((key->n + sp.width - 1) / sp.width);
        return sp;
    }
    int64_t by_rows = key->m / DN_MIN_ROWS;
    sp.blocks = by_rows < 2 ? 1 : (size_t)(by_rows < t ? by_rows : t);
    return sp;
}

/* Block b's key and call: columns [c0, c1) or rows [r0, r1) of the call. */
static void block_of(const dn_prim_config *cfg, const dn_key *key, const dn_call *call,
                     const dn_split *sp, size_t b, dn_key *bk, dn_call *bc)
{
    *bk = *key;
    *bc = *call;
    bk->threads = 1;
    if (sp->cols) {
        int64_t c0 = (int64_t)b * sp->width;
        int64_t c1 = c0 + sp->width < key->n ? c0 + sp->width : key->n;
        size_t offset = 0;
        dn_panel_md(cfg, c0, c1 - c0, NULL, &offset);
        bk->n = c1 - c0;
        bk->panel = 1;
        bk->ld_dst = key->n;
        bc->ptr[DN_WEIGHTS] = (char *)cfg->packed_data + offset;
        if (call->ptr[DN_DST])
            bc->ptr[DN_DST] = (float *)call->ptr[DN_DST] + c0;
        if (key->bias && call->ptr[DN_BIAS])
            bc->ptr[DN_BIAS] = (float *)call->ptr[DN_BIAS] + c0;
        if (key->post && key->post_n == key->n) {
            bk->post_n = bk->n;
            bk->ld_post = key->n; /* as dst's: oneDNN wants the two alike */
            if (call->ptr[DN_POST])
                bc->ptr[DN_POST] = (float *)call->ptr[DN_POST] + c0;
        }
        return;
    }
    int64_t r0 = (int64_t)b * key->m / (int64_t)sp->blocks;
    int64_t r1 = (int64_t)(b + 1) * key->m / (int64_t)sp->blocks;
    bk->m = r1 - r0;
    if (call->ptr[DN_SRC])
        bc->ptr[DN_SRC] = (float *)call->ptr[DN_SRC] + r0 * key->k;
    if (call->ptr[DN_DST])
        bc->ptr[DN_DST] = (float *)call->ptr[DN_DST] + r0 * key->n;
    if (key->post && key->post_m == key->m) {
        bk->post_m = bk->m;
        if (call->ptr[DN_POST])
            bc->ptr[DN_POST] = (float *)call->ptr[DN_POST] + r0 * key->post_n;
    }
}

/* Scratch of one block, rounded up so every block's slice stays aligned. */
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---- running ---------------------------------------------------------------------- */

/* Runs key on call with the calling thread's OpenMP count (set by the
 * caller); scratch: scratch_bytes for the primitive's scratchpad. *what
 * names the failing step. */
static dnnl_status_t run_one(const dn_prim_config *cfg, dn_cache *cache, const dn_key *key,
                             const dn_call *call, void *scratch, size_t scratch_bytes,
                             const char **what)
{
    dn_entry *e = NULL;
    dn_slot *sl = NULL;
    bool cached = true;
    *what = "creating the primitive";
    dnnl_status_t s = acquire(cfg, cache, key, &e, &cached);
    if (s == dnnl_success && e->scratch_bytes > scratch_bytes) {
        *what = "finding scratchpad memory (the node was not planned for this shape)";
        s = dnnl_out_of_memory;
    }
    if (s == dnnl_success) {
        *what = "creating memory objects";
        s = take_slot(cfg, cache, e, &sl);
    }
    dnnl_exec_arg_t args[DN_N_ARGS];
    int nargs = 0;
    static const int ids[DN_N_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS,   DNNL_ARG_BIAS, 0,
                                       DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    for (int a = 0; a < DN_N_ARGS && s == dnnl_success; a++) {
        if (!e->has[a])
            continue;
        dnnl_memory_t mem = sl->mem[a];
        if (a == DN_WEIGHTS && key->packed && !key->panel) {
            mem = cfg->packed_mem;
        } else {
            *what = "setting a data handle";
            s = dnnl_memory_set_data_handle(mem, a == DN_SCRATCH ? scratch : call->ptr[a]);
        }
        args[nargs].arg = a == DN_POST
                              ? (DNNL_ARG_ATTR_MULTIPLE_POST_OP(e->post_index) | DNNL_ARG_SRC_1)
                              : ids[a];
        args[nargs].memory = mem;
        nargs++;
    }
    if (s == dnnl_success) {
        *what = "executing";
        s = dnnl_primitive_execute(e->prim, sl->stream, nargs, args);
    }
    if (s == dnnl_success) {
        *what = "waiting for the stream";
        s = dnnl_stream_wait(sl->stream);
    }
    if (e)
        release(cache, e, cached, sl);
    else if (sl)
        slot_destroy(sl);
    return s;
}

typedef struct split_run {
    const dn_prim_config *cfg;
    dn_cache *cache;
    const dn_key *key;
    const dn_call *call;
    dn_split split;
    char *scratch;
    size_t block_scratch; /* bytes of scratch per block */
    pthread_mutex_t lock; /* guards the first failure */
    dnnl_status_t failed;
    const char *what;
    dn_key failed_key;
} split_run;

/* parallel_for body: blocks [begin, end), each on one OpenMP thread. */
static void split_range(void *arg, size_t begin, size_t end)
{
    split_run *r = arg;
    dn_threads th;
    dn_threads_enter(&th, 1);
    for (size_t b = begin; b < end; b++) {
        dn_key bk;
        dn_call bc;
        block_of(r->cfg, r->key, r->call, &r->split, b, &bk, &bc);
        const char *what = NULL;
        dnnl_status_t s =
            run_one(r->cfg, r->cache, &bk, &bc,
                    r->scratch ? r->scratch + b * r->block_scratch : NULL, r->block_scratch, &what);
        if (s != dnnl_success) {
            pthread_mutex_lock(&r->lock);
            if (r->failed == dnnl_success) {
                r->failed = s;
                r->what = what;
                r->failed_key = bk;
            }
            pthread_mutex_unlock(&r->lock);
        }
    }
    dn_threads_leave(&th);
}

qkv_status dn_prim_scratch(const dn_prim_config *cfg, dn_cache *cache, const dn_key *key,
                           qkv_kernel_io *io, size_t *bytes)
{
    *bytes = 0;
    dn_split sp = split_of(cfg, key);
    size_t blocks = sp.blocks;
    size_t most = 0;
    char impl[64] = "?";
    for (size_t b = 0; b < (blocks > 1 ? 2 : 1); b++) {
        /* blocks have at most two sizes: the first and the last */
        dn_key bk = *key;
        dn_call unused = {{0}};
        dn_call bc;
        if (blocks > 1)
            block_of(cfg, key, &unused, &sp, b == 0 ? 0 : blocks - 1, &bk, &bc);
        dn_threads th;
        dn_threads_enter(&th, (size_t)bk.threads);
        dn_entry *e = NULL;
        bool cached = true;
        dnnl_status_t s = acquire(cfg, cache, &bk, &e, &cached);
        dn_threads_leave(&th);
        if (s != dnnl_success)
            return fail(io, s, "creating the primitive", &bk);
        if (e->scratch_bytes > most)
            most = e->scratch_bytes;
        const_dnnl_primitive_desc_t pd = NULL;
        const char *name = NULL;
        if (b == 0 && dnnl_primitive_get_primitive_desc(e->prim, &pd) == dnnl_success &&
            dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
            name)
            snprintf(impl, sizeof impl, "%s", name);
        release(cache, e, cached, NULL);
    }
    *bytes = blocks > 1 && most ? round64(most) * blocks : most;
    char how[64];
    if (sp.cols)
        snprintf(how, sizeof how, "%zu column panels of %lld", blocks, (long long)sp.width);
    else
        snprintf(how, sizeof how, "%zu %s", blocks, blocks > 1 ? "row blocks" : "primitive");
    io->host->log(QKV_LOG_DEBUG, "onednn: matmul m=%lld k=%lld n=%lld on %d thread(s): %s (%s)",
                  (long long)key->m, (long long)key->k, (long long)key->n, (int)key->threads, how,
                  impl);
    return QKV_OK;
}

qkv_status dn_prim_run(const dn_prim_config *cfg, dn_cache *cache, const dn_key *key,
                       const dn_call *call, qkv_kernel_io *io)
{
    dn_split sp = split_of(cfg, key);
    size_t blocks = sp.blocks;
    if (blocks > 1) {
        split_run r = {.cfg = cfg,
                       .cache = cache,
                       .key = key,
                       .call = call,
                       .split = sp,
                       .scratch = io->scratch,
                       .failed = dnnl_success};
        r.block_scratch = io->scratch_bytes / blocks & ~(size_t)63;
        pthread_mutex_init(&r.lock, NULL);
        io->host->parallel_for(io->host_ctx, blocks, split_range, &r);
        pthread_mutex_destroy(&r.lock);
        return r.failed == dnnl_success ? QKV_OK : fail(io, r.failed, r.what, &r.failed_key);
    }
    dn_threads th;
    dn_threads_enter(&th, (size_t)key->threads);
    const char *what = NULL;
    dnnl_status_t s = run_one(cfg, cache, key, call, io->scratch, io->scratch_bytes, &what);
    dn_threads_leave(&th);
    return s == dnnl_success ? QKV_OK : fail(io, s, what, key);
}
