/*
 * cpu_features.c - CPUID and XGETBV, read once per process.
 *
 * A feature counts only when the OS saves its registers on a context switch
 * (XCR0): a hypervisor may report AVX-512 in CPUID and still not enable the
 * ZMM state. AMX additionally needs the kernel's permission per process
 * (arch_prctl ARCH_REQ_XCOMP_PERM); qkv only reports it.
 *
 * The detection is a pthread_once, so the result is computed by plain code
 * at first use: no ifunc resolver runs before the sanitizer runtimes exist.
 */
#include "cpu_features.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define QKV_X86 1
#endif

typedef struct cpu_info {
    uint64_t features; /* after the QKV_ISA cap */
    char brand[49];
} cpu_info;

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static cpu_info detected; /* written once, under detect_once */

#ifdef QKV_X86
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t detect_x86(char *brand)
{
    unsigned a, b, c, d;
    uint64_t f = 0;
    unsigned max = __get_cpuid_max(0, NULL);
    if (max < 1 || !__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    bool osxsave = c & bit_OSXSAVE;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm_os = (xcr0 & 0x6) == 0x6;             /* XMM and YMM state */
    bool zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    bool tile_os = (xcr0 & 0x60000) == 0x60000;    /* XTILECFG, XTILEDATA */
    bool fma = c & bit_FMA;
    if (c & bit_SSE4_1)
        f |= QKV_CPU_SSE41;
    if ((c & bit_AVX) && ymm_os)
        f |= QKV_CPU_AVX;
    if ((c & bit_F16C) && ymm_os)
        f |= QKV_CPU_F16C;
    if (max >= 7) {
        unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
        __cpuid_count(7, 0, a, b7, c7, d7);
        __cpuid_count(7, 1, a71, b71, c71, d71);
        (void)b71, (void)c71, (void)d71;
        if ((b7 & bit_AVX2) && fma && ymm_os)
            f |= QKV_CPU_AVX2;
        unsigned need512 = bit_AVX512F | bit_AVX512BW | bit_AVX512VL | bit_AVX512DQ | bit_AVX512CD;
        if ((b7 & need512) == need512 && zmm_os && (f & QKV_CPU_AVX2)) {
            f |= QKV_CPU_AVX512;
            if (c7 & bit_AVX512VNNI)
                f |= QKV_CPU_AVX512_VNNI;
            if (a71 & bit_AVX512BF16)
                f |= QKV_CPU_AVX512_BF16;
            if (d7 & (1u << 23)) /* AVX512-FP16 */
                f |= QKV_CPU_AVX512_FP16;
        }
        if ((a71 & (1u << 4)) && ymm_os) /* AVX-VNNI */
            f |= QKV_CPU_AVX_VNNI;
        /* AMX-BF16 (bit 22), AMX-TILE (24), AMX-INT8 (25) */
        if ((d7 & (7u << 22)) == (7u << 22) && tile_os)
            f |= QKV_CPU_AMX;
    }
    unsigned ext = __get_cpuid_max(0x80000000u, NULL);
    if (ext >= 0x80000004u) {
        unsigned *w = (unsigned *)(void *)brand;
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &w[4 * i], &w[4 * i + 1], &w[4 * i + 2], &w[4 * i + 3]);
        brand[48] = '\0';
    }
    return f;
}
#endif

/* The features allowed at level `isa`. */
static uint64_t level_mask(qkv_isa isa)
{
    switch (isa) {
    case QKV_ISA_BASELINE:
        return QKV_CPU_SSE41;
    case QKV_ISA_AVX2:
        return QKV_CPU_SSE41 | QKV_CPU_AVX | QKV_CPU_F16C | QKV_CPU_AVX2 | QKV_CPU_AVX_VNNI;
    case QKV_ISA_AVX512:
        return ~(uint64_t)0;
    }
    return 0;
}

static void detect(void)
{
    uint64_t f = 0;
    memset(detected.brand, 0, sizeof detected.brand);
#ifdef QKV_X86
    f = detect_x86(detected.brand);
#endif
    const char *cap = getenv("QKV_ISA");
    if (cap && *cap && strcmp(cap, "native") != 0) {
        if (strcmp(cap, "baseline") == 0 || strcmp(cap, "sse2") == 0)
            f &= level_mask(QKV_ISA_BASELINE);
        else if (strcmp(cap, "avx2") == 0)
            f &= level_mask(QKV_ISA_AVX2);
        else if (strcmp(cap, "avx512") != 0)
            fprintf(stderr,
                    "qkv warning: QKV_ISA='%s' is not one of native, avx512, avx2, "
                    "baseline: ignored\n",
                    cap);
    }
    detected.features = f;
}

uint64_t qkv_cpu_features_get(void)
{
    pthread_once(&detect_once, detect);
    return detected.features;
}

qkv_isa qkv_cpu_isa(void)
{
    uint64_t f = qkv_cpu_features_get();
    if (f & QKV_CPU_AVX512)
        return QKV_ISA_AVX512;
    if (f & QKV_CPU_AVX2)
        return QKV_ISA_AVX2;
    return QKV_ISA_BASELINE;
}

const char *qkv_isa_name(qkv_isa isa)
{
    switch (isa) {
    case QKV_ISA_AVX2:
        return "avx2";
    case QKV_ISA_AVX512:
        return "avx512";
    case QKV_ISA_BASELINE:
        break;
    }
    return "baseline";
}

const char *qkv_cpu_brand(void)
{
    pthread_once(&detect_once, detect);
    const char *b = detected.brand;
    while (*b == ' ')
        b++;
    return b;
}

char *qkv_cpu_features_str(uint64_t features, char *buf, size_t cap)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {
        {QKV_CPU_SSE41, "sse4.1"},
        {QKV_CPU_AVX, "avx"},
        {QKV_CPU_F16C, "f16c"},
        {QKV_CPU_AVX2, "avx2+fma"},
        {QKV_CPU_AVX512, "avx512(f,bw,vl,dq,cd)"},
        {QKV_CPU_AVX512_VNNI, "avx512-vnni"},
        {QKV_CPU_AVX512_BF16, "avx512-bf16"},
        {QKV_CPU_AVX512_FP16, "avx512-fp16"},
        {QKV_CPU_AVX_VNNI, "avx-vnni"},
        {QKV_CPU_AMX, "amx"},
    };
    size_t used = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(features & names[i].bit))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", names[i].name);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    if (used == 0)
        snprintf(buf, cap, "baseline");
    return buf;
}
