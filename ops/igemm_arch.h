/*
 * igemm_arch.h - what a micro-kernel variant of the int8 GEMM (igemm.h)
 * declares: its register tile, its cache blocks and the packed layouts its
 * tile reads. Private to ops/igemm*.c.
 *
 * Packed layouts (k grouped by kgroup, zero padded to whole groups, tiles and
 * panels):
 *   A sliver (mr rows x kcp):  element (i, p) at ((p / kgroup) * mr + i) * kgroup
 *                              + p % kgroup, as uint8 (a_elem_bytes 1) or
 *                              uint8 widened to uint16 (2).
 *   B panel  (kcp x nr cols):  element (p, j) at ((p / kgroup) * nr + j) * kgroup
 *                              + p % kgroup, as int8.
 * So one k-group of a row of A is one 32-bit broadcast, and one k-group of a
 * panel is nr 32-bit lanes (kgroup 4) or nr 16-bit pairs (kgroup 2): what
 * vpdpbusd and vpmaddwd take.
 */
#ifndef QKV_IGEMM_ARCH_H
#define QKV_IGEMM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "igemm.h"

struct qkv_igemm_arch {
    const char *name;
    uint64_t needs;      /* QKV_CPU_* bits the tile needs */
    size_t mr, nr;       /* the register tile */
    size_t kgroup;       /* 4 or 2 */
    size_t a_elem_bytes; /* 1 or 2 */
    size_t kc, mc, nc;   /* kc a multiple of kgroup, mc of mr, nc of nr; buffers below */
    /* c (mr x nr, row stride ldc) = (accumulate ? c : 0) + ap . bp over
     * `groups` k-groups of a packed sliver and panel. groups >= 1. */
    void (*tile)(size_t groups, const void *ap, const int8_t *bp, int32_t *c, size_t ldc,
                 bool accumulate);
};

#define QKV_IGEMM_MAX_A_BYTES (64 * 1024)  /* mc * kc * a_elem_bytes of every arch */
#define QKV_IGEMM_MAX_B_BYTES (128 * 1024) /* kc * nc of every arch */
#define QKV_IGEMM_MAX_TILE 256             /* mr * nr of every arch */
#define QKV_IGEMM_MAX_MC 128

/* The variants in their own files; NULL when the compiler cannot build one. */
const qkv_igemm_arch *qkv_igemm_avx512vnni_arch(void);
const qkv_igemm_arch *qkv_igemm_avxvnni_arch(void);
const qkv_igemm_arch *qkv_igemm_avx2_arch(void);

#endif /* QKV_IGEMM_ARCH_H */
