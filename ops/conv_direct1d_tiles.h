/*
 * conv_direct1d_tiles.h - the tile kernels of the direct 1-D convolution
 * (conv_direct1d.h): one tile of output channels x positions, accumulated
 * in registers over a range of input channels and taps,
 *   acc[j][i] += sum_{c < nc} sum_{klo <= k < khi} w[c][k][i] * x[c][j * s + k * d]
 * for j < nj positions and i < mr * vw channels (mr vectors of vw lanes).
 *
 * acc: (nj, ldacc) floats, row j holding the tile's channels at position
 * j. w: the packed weights of the tile's channels, (nc, ksize, cw) floats,
 * cw = the packed chunk width (>= mr * vw): tap (c, k) of channel i at
 * w[(c * ksize + k) * cw + i]. x: the zero-padded input row of the first
 * channel at the tile's first position, rows xld floats apart; every
 * position read is inside the padded rows.
 *
 * Variants: AVX-512 (16 lanes) and AVX2/FMA (8 lanes), written once in
 * conv_direct1d_simd.h and compiled with target attributes, and a portable
 * one (8 lanes, conv_direct1d.c). Each has its own vector width, so the
 * packing follows the variant (qkv_direct1d_kind).
 */
#ifndef QKV_CONV_DIRECT1D_TILES_H
#define QKV_CONV_DIRECT1D_TILES_H

#include <stddef.h>
#include <stdint.h>

/* One tile: mr in 1..kind.mr, nj in 1..kind.nj. */
typedef void (*qkv_direct1d_tile_fn)(float *acc, size_t ldacc, const float *w, size_t cw,
                                     const float *x, size_t xld, size_t nc, size_t ksize,
                                     size_t klo, size_t khi, size_t s, size_t d, size_t mr,
                                     size_t nj);

/* A variant: its vector width, the most vectors of channels and positions
 * a tile holds, and its tile kernel. */
typedef struct qkv_direct1d_kind {
    const char *name;
    size_t vw, mr, nj;
    qkv_direct1d_tile_fn tile;
} qkv_direct1d_kind;

/* The portable tile kernel (any CPU). */
void qkv_direct1d_tile_portable(float *acc, size_t ldacc, const float *w, size_t cw, const float *x,
                                size_t xld, size_t nc, size_t ksize, size_t klo, size_t khi,
                                size_t s, size_t d, size_t mr, size_t nj);

/* x86-64 with GCC or clang: the AVX2 and AVX-512 variants are built. Call
 * one only when the CPU has its features. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QKV_DIRECT1D_HAVE_X86 1
void qkv_direct1d_tile_avx2(float *acc, size_t ldacc, const float *w, size_t cw, const float *x,
                            size_t xld, size_t nc, size_t ksize, size_t klo, size_t khi, size_t s,
                            size_t d, size_t mr, size_t nj);
void qkv_direct1d_tile_avx512(float *acc, size_t ldacc, const float *w, size_t cw, const float *x,
                              size_t xld, size_t nc, size_t ksize, size_t klo, size_t khi, size_t s,
                              size_t d, size_t mr, size_t nj);
#endif

/* The best variant for CPU features `features` (QKV_CPU_* bits, as
 * host->cpu_features() gives them): AVX-512 with QKV_CPU_AVX512, AVX2 with
 * QKV_CPU_AVX2, else portable. */
qkv_direct1d_kind qkv_direct1d_select(uint64_t features);

#endif /* QKV_CONV_DIRECT1D_TILES_H */
