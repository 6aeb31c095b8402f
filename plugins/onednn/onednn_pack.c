/*
 * onednn_pack.c - constant weights reordered once, at session creation, into
 * the layout the matmul primitive reads fastest.
 *
 * Two layouts. Plain row-major (K, N), with a padded row stride
 * (padded_ld), is read by oneDNN's JIT sgemm ("gemm:jit"), which packs the
 * panels it needs as it goes; with M of 16 or more and K of 256 or more
 * that is as fast as the brgemm kernels on their own blocked layout or
 * faster (M 128, the encoder's four GEMM shapes, one thread: 9.1 against
 * 9.3 ms; M 512: 35.4 against 35.7), and a plain matrix can be cut into
 * column panels for threads without a copy (below). Below M 16 the JIT
 * sgemm's packing dominates (M 4: 1.6 against 1.3 ms), and so it does with
 * a shallow K (MaxViT's M 3136, K 64 products: 1.62 against 1.49 ms), so
 * there the weights take the layout the primitive picks for weights given
 * as "format any" (brgemm's BA16a64b on AVX-512).
 *
 * M is only a hint here: the weights are packed once while M changes with
 * every input shape. It is the static M when known, else 128. A picked
 * layout that is not plain is probed for a set of M (1, 16, 128, 1024, the
 * hint) on one thread and on all of the machine's: only when every probe
 * picks the very same descriptor is that layout used; otherwise the
 * weights are packed plain, which every implementation accepts for any M.
 * A primitive is then always created with the packed descriptor (never
 * "any"), so a layout mismatch cannot reach compute: at worst oneDNN
 * declines the problem and the node reports it.
 *
 * Column panels: a call split over threads by columns (onednn_prim.c) gives
 * each thread a panel of the plain weights, a strided view starting at a
 * multiple of 16 columns, so that each thread reads and packs only its
 * share. Whether oneDNN runs those views (and a destination with the
 * whole row stride) on an optimised implementation is checked once, here,
 * for every panel width a split may use; if one would run on a reference
 * implementation, calls are not split by columns.
 */
#include <stdint.h>
#include <string.h>

#include "onednn_plugin.h"

#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

/* The layout picked for `key` with weights any, into *md. */
static dnnl_status_t picked_layout(const dn_prim_config *cfg, const dn_key *key,
                                   dnnl_memory_desc_t *md)
{
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dn_prim_desc(cfg, key, true, &pd);
    if (s != dnnl_success)
        return s;
    const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (w)
        *md = *w;
    else
        s = dnnl_runtime_error;
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* The machine's processors, as oneDNN's OpenMP runtime counts them (1
 * without it). */
static int machine_threads(void)
{
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/* true when every probe M picks the layout *want (see the file comment). */
static bool layout_stable(const dn_prim_config *cfg, const dn_key *proto, int64_t m_hint,
                          const dnnl_memory_desc_t *want)
{
    const int64_t probes[] = {1, 16, 128, 1024, m_hint};
    int max_threads = machine_threads();
    for (int t = 0; t < 2; t++) {
        dn_threads th;
        dn_threads_enter(&th, t == 0 ? 1 : (size_t)max_threads);
        bool ok = true;
        for (size_t i = 0; i < sizeof probes / sizeof probes[0] && ok; i++) {
            dn_key key = *proto;
            key.m = probes[i];
            dnnl_memory_desc_t md;
            ok = picked_layout(cfg, &key, &md) == dnnl_success && dnnl_memory_desc_equal(&md, want);
        }
        dn_threads_leave(&th);
        if (!ok)
            return false;
    }
    return true;
}

/* From this M hint and this K on, the weights are packed plain (see the
 * file comment). */
#define DN_PLAIN_MIN_M 16
#define DN_PLAIN_MIN_K 256

/* Reorders src (over data) into dst (over out) on one thread. */
static dnnl_status_t reorder(const dn_prim_config *cfg, const dnnl_memory_desc_t *src_md,
                             const void *data, const dnnl_memory_desc_t *dst_md, void *out)
{
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_stream_t stream = NULL;
    dn_threads th;
    dn_threads_enter(&th, 1);
    dnnl_status_t s =
        dnnl_reorder_primitive_desc_create(&rpd, src_md, cfg->engine, dst_md, cfg->engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&prim, rpd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&src, src_md, cfg->engine, (void *)data);
    if (s == dnnl_success)
        s = dnnl_memory_create(&dst, dst_md, cfg->engine, out);
    if (s == dnnl_success)
        s = dnnl_stream_create(&stream, cfg->engine, dnnl_stream_default_flags);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        s = dnnl_primitive_execute(prim, stream, 2, args);
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    dn_threads_leave(&th);
    if (stream)
        dnnl_stream_destroy(stream);
    if (src)
        dnnl_memory_destroy(src);
    if (dst)
        dnnl_memory_destroy(dst);
    if (prim)
        dnnl_primitive_destroy(prim);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    return s;
}

/* The row stride of plain packed weights with n columns: a multiple of 16
 * floats (64 bytes, aligned rows) plus 16, so that rows never sit a multiple
 * of 4 KiB apart. oneDNN's AVX2 sgemm reads aligned weights without copying
 * them, and with a row stride of 12 KiB (n = 3072) those reads alias in the
 * L1 cache: measured on 128x768x3072, 17.9 ms with stride 3072 vs 6.4 ms
 * with 3088 (OpenBLAS: 6.7 ms). */
static int64_t padded_ld(int64_t n) { return (n + 15) / 16 * 16 + 16; }

/* dst (k, n) row-major with row stride ld = src, stored (k, n), or (n, k)
 * when trans. A plain layout needs no oneDNN reorder, whose pd creation and
 * JIT code generation per weight shape would cost session creation time. */
static void copy_plain(float *dst, int64_t ld, const float *src, int64_t k, int64_t n, bool trans)
{
    if (!trans) {
        for (int64_t i = 0; i < k; i++) {
            memcpy(dst + i * ld, src + i * n, (size_t)n * sizeof *dst);
            memset(dst + i * ld + n, 0, (size_t)(ld - n) * sizeof *dst);
        }
        return;
    }
    enum { T = 32 }; /* tiles keep both sides in cache */
    for (int64_t i = 0; i < k; i++)
        memset(dst + i * ld + n, 0, (size_t)(ld - n) * sizeof *dst);
    for (int64_t j0 = 0; j0 < n; j0 += T)
        for (int64_t i0 = 0; i0 < k; i0 += T)
            for (int64_t j = j0; j < j0 + T && j < n; j++)
                for (int64_t i = i0; i < i0 + T && i < k; i++)
                    dst[i * ld + j] = src[j * k + i];
}

bool dn_panel_md(const dn_prim_config *cfg, int64_t n0, int64_t nb, dnnl_memory_desc_t *md,
                 size_t *offset)
{
    const dnnl_memory_desc_t *whole = &cfg->packed_md;
    if (!cfg->have_packed || cfg->panel_step <= 0 || n0 % cfg->panel_step != 0 || nb <= 0 ||
        n0 + nb > whole->dims[1])
        return false;
    if (md) {
        dnnl_dims_t dims = {whole->dims[0], nb};
        if (dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32,
                                             whole->format_desc.blocking.strides) != dnnl_success)
            return false;
    }
    if (offset)
        *offset = (size_t)n0 * sizeof(float);
    return true;
}

/* Whether oneDNN runs key on one thread with an optimised implementation
 * (not one of its reference ones, "ref:..."). */
static bool optimised(const dn_prim_config *cfg, const dn_key *key)
{
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    bool ok = dn_prim_desc(cfg, key, false, &pd) == dnnl_success &&
              dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
              impl && strncmp(impl, "ref", 3) != 0;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return ok;
}

/* Whether every panel a split over 2 to max_threads threads may use runs
 * optimised, for M = 1 and m_hint (see the file comment). cfg's packed
 * fields and panel_step are set. */
static bool panels_usable(const dn_prim_config *cfg, const dn_key *proto, int64_t m_hint)
{
    int max_threads = machine_threads();
    if (max_threads > 8)
        max_threads = 8;
    const int64_t ms[] = {1, m_hint};
    dn_threads th;
    dn_threads_enter(&th, 1);
    bool ok = true;
    for (int t = 2; t <= max_threads && ok; t++) {
        int64_t w = dn_panel_width(proto->n, t, cfg->panel_step);
        int64_t widths[2] = {w, proto->n - (proto->n - 1) / w * w};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0] && ok; i++)
            for (int j = 0; j < 4 && ok && w < proto->n; j++) {
                dn_key panel = *proto;
                panel.m = ms[i];
                panel.n = widths[j % 2];
                panel.packed = 1;
                panel.panel = 1;
                panel.ld_dst = proto->n;
                if (j >= 2) { /* with a residual (an (m, n) binary source) */
                    panel.post = 1;
                    panel.post_m = panel.m;
                    panel.post_n = panel.n;
                    panel.ld_post = proto->n;
                }
                ok = optimised(cfg, &panel);
            }
    }
    dn_threads_leave(&th);
    return ok;
}

qkv_status dn_pack_weights(dn_prim_config *cfg, const qkv_host_api *host, const qkv_node_ctx *node,
                           const qkv_tensor *b, bool trans_b, int64_t m_hint, const dn_key *proto,
                           void **raw, size_t *bytes, bool *blocked)
{
    *raw = NULL;
    *bytes = 0;
    *blocked = false;
    int64_t k = proto->k, n = proto->n;
    dnnl_memory_desc_t want, plain, src_md;
    dnnl_status_t s = dn_matrix_md(&plain, 0, k, n, false);
    if (s == dnnl_success)
        s = dn_matrix_md(&src_md, 0, k, n, trans_b);
    if (s != dnnl_success)
        return NERR(host, node, QKV_ERR_INTERNAL, "oneDNN: weights (%lld, %lld): %s", (long long)k,
                    (long long)n, dn_status_name(s));
    want = plain;
    if (m_hint < DN_PLAIN_MIN_M || k < DN_PLAIN_MIN_K) {
        dn_key key = *proto;
        key.m = m_hint;
        key.packed = 0;
        dn_threads th;
        dn_threads_enter(&th, 1);
        s = picked_layout(cfg, &key, &want);
        dn_threads_leave(&th);
        /* plain row-major is valid for every M: only another layout is probed */
        if (s != dnnl_success ||
            (!dnnl_memory_desc_equal(&want, &plain) && !layout_stable(cfg, &key, m_hint, &want)))
            want = plain;
    }
    *blocked = !dnnl_memory_desc_equal(&want, &plain);
    int64_t ld = padded_ld(n);
    if (!*blocked) {
        dnnl_dims_t dims = {k, n}, strides = {ld, 1};
        s = dnnl_memory_desc_init_by_strides(&want, 2, dims, dnnl_f32, strides);
        if (s != dnnl_success)
            return NERR(host, node, QKV_ERR_INTERNAL, "oneDNN: weights (%lld, %lld): %s",
                        (long long)k, (long long)n, dn_status_name(s));
    }

    size_t size = dnnl_memory_desc_get_size(&want);
    if (!*blocked && (size_t)(k * ld) * sizeof(float) > size)
        size = (size_t)(k * ld) * sizeof(float); /* copy_plain pads the last row too */
    if (size == 0 || size > SIZE_MAX - 64)
        return NERR(host, node, QKV_ERR_INTERNAL, "oneDNN: packed weights of %zu bytes", size);
    void *mem = host->alloc(size + 64);
    if (!mem)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY,
                    "oneDNN: %zu bytes for the packed input 1 'B'", size);
    void *aligned = (void *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    if (*blocked)
        s = reorder(cfg, &src_md, b->data, &want, aligned);
    else
        copy_plain(aligned, ld, b->data, k, n, trans_b);
    if (s == dnnl_success)
        s = dnnl_memory_create(&cfg->packed_mem, &want, cfg->engine, aligned);
    if (s != dnnl_success) {
        cfg->packed_mem = NULL;
        host->free(mem);
        return NERR(host, node, s == dnnl_out_of_memory ? QKV_ERR_OUT_OF_MEMORY : QKV_ERR_INTERNAL,
                    "oneDNN: packing input 1 'B' (%lld, %lld) failed: %s", (long long)k,
                    (long long)n, dn_status_name(s));
    }
    cfg->packed_md = want;
    cfg->packed_data = aligned;
    cfg->have_packed = true;
    /* plain rows are cut at 16 columns: each panel stays 64-byte aligned;
     * only weights deep and wide enough for two panels are ever cut */
    cfg->panel_step = 16;
    if (*blocked || k < DN_PANEL_MIN_K || n < 2 * cfg->panel_step ||
        !panels_usable(cfg, proto, m_hint))
        cfg->panel_step = 0;
    *raw = mem;
    *bytes = size;
    return QKV_OK;
}
