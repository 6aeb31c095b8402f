/*
 * fft.c - the shared complex transform (fft.h): exact twiddles; radix-2 for
 * powers of two, a direct sum in double for short other lengths, Bluestein
 * for long ones.
 *
 * Tables for length n:
 *   power of two, or n <= QKV_FFT_DIRECT_MAX: tw (n, 2), the twiddles of n.
 *   Bluestein (m = the power of two >= 2n - 1):
 *     chirp (n, 2)  exp(-i*pi*k^2/n)
 *     tw    (m, 2)  the twiddles of m
 *     bf    (m, 2)  the FFT of the conjugate chirp laid out circularly
 */
#include "fft.h"

#include <math.h>
#include <string.h>

static bool is_pow2(size_t n) { return n && (n & (n - 1)) == 0; }

static bool uses_bluestein(size_t n) { return !is_pow2(n) && n > QKV_FFT_DIRECT_MAX; }

static size_t bluestein_len(size_t n)
{
    size_t m = 1;
    while (m < 2 * n - 1)
        m <<= 1;
    return m;
}

/* (cos, -sin) of 2*pi*k/n: the angle is reduced to [0, pi/2) first, so the
 * quarter turns come out exact. */
static void twiddle(size_t k, size_t n, double *w)
{
    const double half_pi = 1.57079632679489661923;
    size_t q4 = 4 * (k % n);
    size_t quadrant = q4 / n, rem = q4 % n;
    double a = half_pi * (double)rem / (double)n;
    double c = cos(a), s = sin(a), cq, sq;
    switch (quadrant & 3) {
    case 0:
        cq = c;
        sq = s;
        break;
    case 1:
        cq = -s;
        sq = c;
        break;
    case 2:
        cq = -c;
        sq = -s;
        break;
    default:
        cq = s;
        sq = -c;
        break;
    }
    w[0] = cq;
    w[1] = -sq;
}

static void twiddles(double *tw, size_t n)
{
    for (size_t k = 0; k < n; k++)
        twiddle(k, n, tw + 2 * k);
}

size_t qkv_fft_table_doubles(size_t n)
{
    return uses_bluestein(n) ? 2 * n + 4 * bluestein_len(n) : 2 * n;
}

size_t qkv_fft_work_doubles(size_t n) { return uses_bluestein(n) ? 2 * bluestein_len(n) : 2 * n; }

/* Iterative decimation-in-time radix-2 FFT of x (n a power of two). */
static void fft_radix2(double *x, size_t n, const double *tw, double sign)
{
    for (size_t i = 1, j = 0; i < n; i++) { /* bit-reversal permutation */
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j |= bit;
        if (i < j) {
            double tr = x[2 * i], ti = x[2 * i + 1];
            x[2 * i] = x[2 * j];
            x[2 * i + 1] = x[2 * j + 1];
            x[2 * j] = tr;
            x[2 * j + 1] = ti;
        }
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        size_t half = len >> 1, step = n / len;
        for (size_t b = 0; b < n; b += len) {
            for (size_t k = 0; k < half; k++) {
                double wr = tw[2 * k * step], wi = sign * tw[2 * k * step + 1];
                double *u = x + 2 * (b + k), *v = x + 2 * (b + k + half);
                double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
                v[0] = u[0] - vr;
                v[1] = u[1] - vi;
                u[0] += vr;
                u[1] += vi;
            }
        }
    }
}

/* Direct DFT of any length: work gets the result, then x. */
static void dft_direct(double *x, size_t n, const double *tw, double sign, double *work)
{
    for (size_t k = 0; k < n; k++) {
        double re = 0, im = 0;
        size_t idx = 0; /* j * k mod n, kept without overflow */
        for (size_t j = 0; j < n; j++) {
            double wr = tw[2 * idx], wi = sign * tw[2 * idx + 1];
            re += x[2 * j] * wr - x[2 * j + 1] * wi;
            im += x[2 * j] * wi + x[2 * j + 1] * wr;
            idx += k;
            if (idx >= n)
                idx -= n;
        }
        work[2 * k] = re;
        work[2 * k + 1] = im;
    }
    memcpy(x, work, 2 * n * sizeof *x);
}

void qkv_fft_tables(double *tab, size_t n)
{
    if (!uses_bluestein(n)) {
        twiddles(tab, n);
        return;
    }
    size_t m = bluestein_len(n);
    double *chirp = tab, *tw = chirp + 2 * n, *bf = tw + 2 * m;
    for (size_t k = 0; k < n; k++) /* exp(-i*pi*k^2/n) = twiddle k^2 mod 2n of 2n */
        twiddle((size_t)(((unsigned __int128)k * k) % (2 * n)), 2 * n, chirp + 2 * k);
    twiddles(tw, m);
    memset(bf, 0, 2 * m * sizeof *bf);
    for (size_t k = 0; k < n; k++) {
        bf[2 * k] = chirp[2 * k];
        bf[2 * k + 1] = -chirp[2 * k + 1];
        if (k) {
            bf[2 * (m - k)] = chirp[2 * k];
            bf[2 * (m - k) + 1] = -chirp[2 * k + 1];
        }
    }
    fft_radix2(bf, m, tw, 1.0);
}

/* Forward DFT of x by Bluestein: x[j] * chirp[j], convolved with the
 * conjugate chirp (pointwise in the FFT domain), times chirp[k]. */
static void dft_bluestein(double *x, size_t n, const double *tab, double *a)
{
    size_t m = bluestein_len(n);
    const double *chirp = tab, *tw = chirp + 2 * n, *bf = tw + 2 * m;
    memset(a, 0, 2 * m * sizeof *a);
    for (size_t k = 0; k < n; k++) {
        double xr = x[2 * k], xi = x[2 * k + 1], cr = chirp[2 * k], ci = chirp[2 * k + 1];
        a[2 * k] = xr * cr - xi * ci;
        a[2 * k + 1] = xr * ci + xi * cr;
    }
    fft_radix2(a, m, tw, 1.0);
    for (size_t k = 0; k < m; k++) {
        double ar = a[2 * k], ai = a[2 * k + 1], br = bf[2 * k], bi = bf[2 * k + 1];
        a[2 * k] = ar * br - ai * bi;
        a[2 * k + 1] = ar * bi + ai * br;
    }
    fft_radix2(a, m, tw, -1.0);
    double scale = 1.0 / (double)m;
    for (size_t k = 0; k < n; k++) {
        double ar = a[2 * k] * scale, ai = a[2 * k + 1] * scale;
        double cr = chirp[2 * k], ci = chirp[2 * k + 1];
        x[2 * k] = ar * cr - ai * ci;
        x[2 * k + 1] = ar * ci + ai * cr;
    }
}

void qkv_fft_run(double *x, size_t n, const double *tab, bool inverse, double *work)
{
    if (n <= 1)
        return;
    if (is_pow2(n)) {
        fft_radix2(x, n, tab, inverse ? -1.0 : 1.0);
    } else if (!uses_bluestein(n)) {
        dft_direct(x, n, tab, inverse ? -1.0 : 1.0, work);
    } else {
        /* the inverse is the conjugate of the forward transform of the conjugate */
        if (inverse)
            for (size_t k = 0; k < n; k++)
                x[2 * k + 1] = -x[2 * k + 1];
        dft_bluestein(x, n, tab, work);
        if (inverse)
            for (size_t k = 0; k < n; k++)
                x[2 * k + 1] = -x[2 * k + 1];
    }
}
