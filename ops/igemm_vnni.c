/*
 * igemm_vnni.c - the vpdpbusd micro-kernels of the int8 GEMM (igemm.h):
 * AVX512-VNNI on zmm and AVX-VNNI on ymm, two instantiations of
 * igemm_vnni_tile.h that differ only in vector width and tile size.
 *
 * Compiled with function attributes, not for the whole file; igemm.c calls a
 * variant only when host->cpu_features() has its instructions.
 */
#include <string.h>

#include "igemm_arch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define VNNI_WIDTH 512
#include "igemm_vnni_tile.h"
#undef VNNI_WIDTH

const qkv_igemm_arch *qkv_igemm_avx512vnni_arch(void) { return &arch_avx512vnni; }
#else
const qkv_igemm_arch *qkv_igemm_avx512vnni_arch(void) { return NULL; }
#endif

/* The VEX form of vpdpbusd needs gcc 11 or clang 12. */
#if defined(__x86_64__) && ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) ||        \
                            (defined(__clang__) && __clang_major__ >= 12))
#define VNNI_WIDTH 256
#include "igemm_vnni_tile.h"
#undef VNNI_WIDTH

const qkv_igemm_arch *qkv_igemm_avxvnni_arch(void) { return &arch_avxvnni; }
#else
const qkv_igemm_arch *qkv_igemm_avxvnni_arch(void) { return NULL; }
#endif
