/*
 * fft.c - the shared complex transform (fft.h): exact twiddles, radix-2 for
 * powers of two, a direct sum in double otherwise.
 */
#include "fft.h"

#include <math.h>

size_t qkv_fft_scratch_doubles(size_t n) { return 4 * n; }

void qkv_fft_twiddles(double *tw, size_t n)
{
    const double half_pi = 1.57079632679489661923;
    for (size_t m = 0; m < n; m++) {
        /* 2*pi*m/n = quadrant * pi/2 + r: reduce first, so the angle passed
         * to cos/sin is at most pi/2 and the quarter turns come out exact */
        size_t q4 = 4 * (m % n);
        size_t quadrant = q4 / n, rem = q4 % n;
        double a = half_pi * (double)rem / (double)n;
        double c = cos(a), s = sin(a);
        double cq, sq; /* cos and sin of the full angle */
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
        tw[2 * m] = cq;
        tw[2 * m + 1] = -sq;
    }
}

static bool is_pow2(size_t n) { return n && (n & (n - 1)) == 0; }

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
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = work[i];
}

void qkv_fft_run(double *x, size_t n, const double *tw, bool inverse, double *work)
{
    double sign = inverse ? -1.0 : 1.0;
    if (n <= 1)
        return;
    if (is_pow2(n))
        fft_radix2(x, n, tw, sign);
    else
        dft_direct(x, n, tw, sign, work);
}
