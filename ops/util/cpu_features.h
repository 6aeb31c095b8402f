/*
 * cpu_features.h - what this CPU can run, detected once per process from
 * CPUID and the OS's enabled register state (XGETBV), and the ISA level the
 * kernels pick their variants from.
 *
 * The QKV_ISA environment variable caps the level for testing and for
 * comparing variants: "baseline" (x86-64 SSE2), "avx2", "avx512" (also
 * "native", the default: no cap). A cap above what the CPU has changes
 * nothing. It is read once, with the detection.
 */
#ifndef QKV_CPU_FEATURES_H
#define QKV_CPU_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "qkv_plugin.h"

/* The ISA levels kernel variants are written for, lowest first. */
typedef enum qkv_isa {
    QKV_ISA_BASELINE = 0, /* x86-64 SSE2, or any other architecture: portable C */
    QKV_ISA_AVX2 = 1,     /* AVX2 + FMA3 */
    QKV_ISA_AVX512 = 2    /* AVX-512 F/BW/VL/DQ */
} qkv_isa;

/* The QKV_CPU_* bits (qkv_plugin.h) of this CPU, less those above the
 * QKV_ISA cap. Thread-safe; the first call detects. */
uint64_t qkv_cpu_features_get(void);

/* The highest kernel level the features allow. */
qkv_isa qkv_cpu_isa(void);

/* "baseline", "avx2", "avx512". */
const char *qkv_isa_name(qkv_isa isa);

/* The brand string ("AMD EPYC 7B13", ...), for reports only; "" when the
 * CPU does not say. */
const char *qkv_cpu_brand(void);

/* The names of the bits set in `features`, space-separated, into buf (cap
 * bytes, cut if short); returns buf. */
char *qkv_cpu_features_str(uint64_t features, char *buf, size_t cap);

#endif /* QKV_CPU_FEATURES_H */
