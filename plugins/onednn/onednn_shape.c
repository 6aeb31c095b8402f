/*
 * onednn_shape.c - output shapes of the plugin's kernels, with the checks
 * and messages of their specs (the plugin sees only qkv_plugin.h, so it
 * cannot borrow the built-in kernels' shape code).
 */
#include <stdio.h>

#include "onednn_plugin.h"

size_t dn_numel(const qkv_tensor *t)
{
    size_t n = 1;
    for (int32_t i = 0; i < t->rank; i++)
        n *= (size_t)t->dims[i];
    return n;
}

const char *dn_shape_str(const qkv_tensor *t, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < t->rank && len + 1 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "(", (long long)t->dims[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (len + 1 < cap)
        snprintf(buf + len, cap - len, "%s", t->rank > 0 ? ")" : "()");
    return buf;
}

/* The broadcast of two batch dims (-1: unknown); false when they clash. */
static bool broadcast_dim(int64_t da, int64_t db, int64_t *out)
{
    if (da == 1 || da == db) {
        *out = db;
        return true;
    }
    if (db == 1) {
        *out = da;
        return true;
    }
    if (da < 0 || db < 0) { /* one unknown: the known one wins unless it is 1 */
        *out = da < 0 ? db : da;
        return true;
    }
    return false;
}

qkv_status dn_matmul_shape(qkv_kernel_io *io, const qkv_tensor *a, const qkv_tensor *b,
                           qkv_tensor *y)
{
    y->dtype = a->dtype;
    y->rank = -1;
    if (a->rank < 0 || b->rank < 0)
        return QKV_OK;
    if (a->rank < 1 || b->rank < 1)
        return KERR(io, QKV_ERR_SHAPE, "input %d '%s' has rank 0, expected >= 1",
                    a->rank < 1 ? 0 : 1, a->rank < 1 ? "A" : "B");
    int32_t ra = a->rank, rb = b->rank;
    int64_t ka = a->dims[ra - 1], kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'A' has %lld columns but input 1 'B' has %lld rows: they must "
                    "match",
                    (long long)ka, (long long)kb);
    int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int32_t nb = nba > nbb ? nba : nbb;
    int32_t rank = nb + (ra >= 2) + (rb >= 2);
    if (rank > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "the output would have rank %d (max %d)", rank,
                    QKV_MAX_RANK);
    for (int32_t j = 0; j < nb; j++) {
        int32_t ja = j - (nb - nba), jb = j - (nb - nbb);
        int64_t da = ja >= 0 ? a->dims[ja] : 1, db = jb >= 0 ? b->dims[jb] : 1;
        if (!broadcast_dim(da, db, &y->dims[j]))
            return KERR(io, QKV_ERR_SHAPE,
                        "batch dims do not broadcast: input 0 'A' has %lld and input 1 'B' "
                        "has %lld at output dim %d",
                        (long long)da, (long long)db, j);
    }
    int32_t r = nb;
    if (ra >= 2)
        y->dims[r++] = a->dims[ra - 2];
    if (rb >= 2)
        y->dims[r++] = b->dims[rb - 1];
    y->rank = rank;
    return QKV_OK;
}
