/*
 * sgemm_peak.c - the machine's practical single-precision GEMM peak: OpenBLAS
 * cblas_sgemm and, when built with oneDNN, dnnl_sgemm, on square row-major
 * matrices, C = A @ B (2 n^3 FLOPs), best of R timed calls after one untimed
 * call, at each requested size and thread count (openblas_set_num_threads,
 * omp_set_num_threads for oneDNN's OpenMP runtime).
 *
 * usage: sgemm_peak [--sizes N,N,...] [--threads T,T,...] [--reps R]
 * (defaults: sizes 1024,2048, threads 1,2, reps 5)
 *
 * Prints one line per (library, size, threads):
 *     sgemm lib=openblas n=1024 threads=1 gflops=48.21 best_ms=44.544
 * and, per thread count, the best over the sizes and libraries:
 *     peak threads=1 gflops=48.21 lib=openblas
 * The peak is the best library's: qkv's whole-model GFLOP/s is quoted as a
 * fraction of it, and a slower library would flatter that fraction.
 * bench/attention.sh and bench/vs-ort.sh read the "peak" lines. A benchmark
 * tool, not part of qkv: it links the libraries directly and is not installed.
 */
#include <cblas.h>
#ifdef SGEMM_PEAK_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 16

static const char USAGE[] = "usage: sgemm_peak [--sizes N,N,...] [--threads T,T,...] [--reps R]\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Parses "a,b,c" of integers in [lo, hi] into out; returns the count, 0 on
 * a malformed list. */
static size_t parse_list(const char *s, long lo, long hi, long *out)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        if (n == MAX_LIST || *p < '0' || *p > '9')
            return 0;
        errno = 0;
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (errno || v < lo || v > hi || (*end != ',' && *end != '\0'))
            return 0;
        out[n++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && !*p)
            return 0;
    }
    return n;
}

enum peak_lib { LIB_OPENBLAS, LIB_ONEDNN };
static const char *const LIB_NAMES[] = {"openblas", "onednn"};

/* One row-major n x n x n C = A @ B through the chosen library. */
static void sgemm(enum peak_lib lib, int n, const float *a, const float *b, float *c)
{
#ifdef SGEMM_PEAK_ONEDNN
    if (lib == LIB_ONEDNN) {
        dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        return;
    }
#endif
    (void)lib;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

static void set_threads(enum peak_lib lib, int threads)
{
#ifdef SGEMM_PEAK_ONEDNN
    if (lib == LIB_ONEDNN) {
        omp_set_num_threads(threads);
        return;
    }
#endif
    (void)lib;
    openblas_set_num_threads(threads);
}

/* Best GFLOP/s of reps calls of an n x n x n sgemm on the given buffers. */
static double measure(enum peak_lib lib, int n, int reps, const float *a, const float *b, float *c,
                      double *best_ms)
{
    sgemm(lib, n, a, b, c);
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        sgemm(lib, n, a, b, c);
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    *best_ms = best * 1e3;
    return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

int main(int argc, char **argv)
{
    long sizes[MAX_LIST] = {1024, 2048}, threads[MAX_LIST] = {1, 2}, reps = 5;
    size_t n_sizes = 2, n_threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "sgemm_peak: '%s' needs a value\n%s", argv[i], USAGE);
            return 2;
        }
        long one[MAX_LIST];
        if (!strcmp(argv[i], "--sizes") && (n_sizes = parse_list(v, 1, 16384, sizes)) > 0) {
            i++;
        } else if (!strcmp(argv[i], "--threads") &&
                   (n_threads = parse_list(v, 1, 1024, threads)) > 0) {
            i++;
        } else if (!strcmp(argv[i], "--reps") && parse_list(v, 1, 1000, one) == 1) {
            reps = one[0];
            i++;
        } else {
            fprintf(stderr, "sgemm_peak: bad argument '%s %s'\n%s", argv[i], v, USAGE);
            return 2;
        }
    }
    long max_n = 0;
    for (size_t i = 0; i < n_sizes; i++)
        max_n = sizes[i] > max_n ? sizes[i] : max_n;
    size_t elems = (size_t)max_n * (size_t)max_n;
    float *a = malloc(elems * sizeof *a), *b = malloc(elems * sizeof *b);
    float *c = malloc(elems * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_peak: out of memory for n=%ld\n", max_n);
        free(a);
        free(b);
        free(c);
        return 1;
    }
    /* values in [-1, 1): no denormals, no overflow */
    unsigned s = 12345u;
    for (size_t i = 0; i < elems; i++) {
        s = s * 1664525u + 1013904223u;
        a[i] = (float)(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
        s = s * 1664525u + 1013904223u;
        b[i] = (float)(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
    printf("# OpenBLAS %s, core %s\n", openblas_get_config(), openblas_get_corename());
    int n_libs = 1;
#ifdef SGEMM_PEAK_ONEDNN
    const dnnl_version_t *dv = dnnl_version();
    printf("# oneDNN %d.%d.%d, dnnl_sgemm\n", dv->major, dv->minor, dv->patch);
    n_libs = 2;
#endif
    for (size_t t = 0; t < n_threads; t++) {
        double peak = 0.0;
        int peak_lib = LIB_OPENBLAS;
        for (int lib = 0; lib < n_libs; lib++) {
            set_threads((enum peak_lib)lib, (int)threads[t]);
            for (size_t i = 0; i < n_sizes; i++) {
                double best_ms = 0.0;
                double g = measure((enum peak_lib)lib, (int)sizes[i], (int)reps, a, b, c, &best_ms);
                printf("sgemm lib=%s n=%ld threads=%ld gflops=%.2f best_ms=%.3f\n", LIB_NAMES[lib],
                       sizes[i], threads[t], g, best_ms);
                fflush(stdout);
                if (g > peak) {
                    peak = g;
                    peak_lib = lib;
                }
            }
        }
        printf("peak threads=%ld gflops=%.2f lib=%s\n", threads[t], peak, LIB_NAMES[peak_lib]);
    }
    free(a);
    free(b);
    free(c);
    return 0;
}
