/* DFT, STFT, the windows and MelWeightMatrix against references written
 * here: a naive O(n^2) DFT in long double, the window formulas, numpy's
 * MelWeightMatrix values. Tolerances: float64 runs are held to 1e-12 of the
 * largest magnitude (the transform sums in double with exact twiddles);
 * float32 runs to 1e-5 (one float rounding of the inputs and outputs). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 12345;
static double rnd_unit(void) /* [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (double)(rng_state % 2000000) / 1e6 - 1.0;
}

/* The naive DFT of n complex points (re, im interleaved) in long double. */
static void naive_dft(const double *x, size_t len, size_t n, bool inverse, double *out)
{
    const long double pi = 3.141592653589793238462643383279502884L;
    for (size_t k = 0; k < n; k++) {
        long double re = 0, im = 0;
        for (size_t j = 0; j < n && j < len; j++) {
            long double a = (inverse ? 2 : -2) * pi * (long double)((j * k) % n) / (long double)n;
            re += x[2 * j] * cosl(a) - x[2 * j + 1] * sinl(a);
            im += x[2 * j] * sinl(a) + x[2 * j + 1] * cosl(a);
        }
        if (inverse) {
            re /= (long double)n;
            im /= (long double)n;
        }
        out[2 * k] = (double)re;
        out[2 * k + 1] = (double)im;
    }
}

static qkv_tensor dbl(int32_t rank, const int64_t *dims, double *data)
{
    return kh_tensor(QKV_DTYPE_DOUBLE, rank, dims, data);
}

/* Runs DFT-17 on x with the given attributes (dft_length < 0: absent). */
static qkv_status run_dft(qkv_tensor x, int64_t axis, int inverse, int onesided, int64_t dft_length,
                          qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("DFT", 17, 2, 1);
    kh_attr_int(n, "axis", axis);
    kh_attr_int(n, "inverse", inverse);
    kh_attr_int(n, "onesided", onesided);
    if (dft_length < 0)
        kh_omit_input(n, 1);
    qkv_tensor ins[2] = {x, kh_i64(0, NULL, &dft_length)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

static double max_abs(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    return m;
}

Test(signal, dft_matches_naive_dft_on_random_lengths_including_primes)
{
    /* up to 64: radix-2 or the direct sum; longer non-powers of two: Bluestein
     * (400 is Whisper's n_fft, 1009 a prime) */
    static const size_t lens[] = {1,  2,  3,  4,  5,  7,  8,   11,  13,  16,  17,
                                  31, 32, 37, 64, 65, 97, 100, 128, 400, 1009};
    static double x[2 * 1024], want[2 * 1024], in[2 * 1024];
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        for (int complex_in = 0; complex_in < 2; complex_in++) {
            for (int inverse = 0; inverse < 2; inverse++) {
                size_t n = lens[t], comps = complex_in ? 2 : 1;
                for (size_t j = 0; j < n; j++) {
                    x[2 * j] = rnd_unit();
                    x[2 * j + 1] = complex_in ? rnd_unit() : 0.0;
                    in[j * comps] = x[2 * j];
                    if (complex_in)
                        in[j * comps + 1] = x[2 * j + 1];
                }
                naive_dft(x, n, n, inverse, want);
                int64_t dims[3] = {1, (int64_t)n, (int64_t)comps};
                qkv_tensor y;
                qkv_error err;
                cr_assert_eq(run_dft(dbl(3, dims, in), 1, inverse, 0, -1, &y, &err), QKV_OK,
                             "n %zu: %s", n, err.message);
                cr_assert_eq(y.dims[1], (int64_t)n);
                cr_assert_eq(y.dims[2], 2);
                const double *got = y.data;
                double tol = 1e-12 * (max_abs(want, 2 * n) + 1);
                for (size_t k = 0; k < 2 * n; k++)
                    cr_assert(fabs(got[k] - want[k]) <= tol,
                              "n %zu complex %d inverse %d: [%zu] got %.17g want %.17g", n,
                              complex_in, inverse, k, got[k], want[k]);
                kh_free_outputs(&y, 1);
            }
        }
    }
}

Test(signal, two_threads_give_the_single_thread_result)
{
    enum { B = 64, N = 96 }; /* 64 lines of 96 points, split across workers */
    static double x[B * N * 2];
    for (size_t i = 0; i < B * N * 2; i++)
        x[i] = rnd_unit();
    int64_t dims[3] = {B, N, 2}, len = -1;
    qkv_tensor y[2];
    for (int t = 0; t < 2; t++) {
        kh_node *n = kh_node_create("DFT", 17, 2, 1);
        kh_attr_int(n, "axis", 1);
        kh_omit_input(n, 1);
        kh_set_threads(n, (size_t)t + 1);
        qkv_tensor ins[2] = {dbl(3, dims, x), kh_i64(0, NULL, &len)};
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, &y[t], &err), QKV_OK, "%s", err.message);
        kh_node_destroy(n);
    }
    cr_assert_arr_eq(y[0].data, y[1].data, y[0].data_bytes);
    double line[2 * N], want[2 * N];
    memcpy(line, x + 37 * N * 2, sizeof line); /* one line against the reference */
    naive_dft(line, N, N, false, want);
    for (size_t k = 0; k < 2 * N; k++)
        cr_assert(fabs(((double *)y[1].data)[37 * N * 2 + k] - want[k]) < 1e-12);
    kh_free_outputs(y, 2);
}

Test(signal, inverse_of_dft_gives_the_signal_back)
{
    for (size_t n = 1; n <= 40; n += 3) {
        double x[2 * 40];
        for (size_t j = 0; j < 2 * n; j++)
            x[j] = rnd_unit();
        int64_t dims[2] = {(int64_t)n, 2};
        qkv_tensor y, z;
        qkv_error err;
        cr_assert_eq(run_dft(dbl(2, dims, x), 0, 0, 0, -1, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(run_dft(y, 0, 1, 0, -1, &z, &err), QKV_OK, "%s", err.message);
        const double *back = z.data;
        for (size_t j = 0; j < 2 * n; j++)
            cr_assert(fabs(back[j] - x[j]) < 1e-13, "n %zu [%zu]: %.17g vs %.17g", n, j, back[j],
                      x[j]);
        kh_free_outputs(&y, 1);
        kh_free_outputs(&z, 1);
    }
}

Test(signal, onesided_keeps_the_first_half_plus_one_bins)
{
    static const size_t lens[] = {1, 2, 5, 8, 9, 16};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        size_t n = lens[t];
        double x[16], xc[32], want[32];
        for (size_t j = 0; j < n; j++) {
            x[j] = rnd_unit();
            xc[2 * j] = x[j];
            xc[2 * j + 1] = 0;
        }
        naive_dft(xc, n, n, false, want);
        int64_t dims[2] = {(int64_t)n, 1};
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_dft(dbl(2, dims, x), 0, 0, 1, -1, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dims[0], (int64_t)(n / 2 + 1), "n %zu", n);
        const double *got = y.data;
        for (size_t k = 0; k < 2 * (n / 2 + 1); k++)
            cr_assert(fabs(got[k] - want[k]) < 1e-12, "n %zu [%zu]", n, k);
        kh_free_outputs(&y, 1);
    }
}

Test(signal, dft_length_pads_and_truncates_along_an_inner_axis)
{
    /* x: (2, 6, 3, 1), transformed along axis 1 with dft_length 4 and 9 */
    double x[2 * 6 * 3];
    for (size_t i = 0; i < 36; i++)
        x[i] = rnd_unit();
    int64_t dims[4] = {2, 6, 3, 1};
    static const int64_t lengths[] = {4, 9};
    for (size_t t = 0; t < 2; t++) {
        size_t n = (size_t)lengths[t];
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_dft(dbl(4, dims, x), 1, 0, 0, lengths[t], &y, &err), QKV_OK, "%s",
                     err.message);
        cr_assert_eq(y.dims[1], (int64_t)n);
        for (size_t b = 0; b < 2; b++) {
            for (size_t i = 0; i < 3; i++) {
                double line[18] = {0}, want[18];
                for (size_t j = 0; j < 6; j++)
                    line[2 * j] = x[(b * 6 + j) * 3 + i];
                naive_dft(line, 6, n, false, want);
                for (size_t k = 0; k < n; k++) {
                    const double *got = (const double *)y.data + ((b * n + k) * 3 + i) * 2;
                    cr_assert(fabs(got[0] - want[2 * k]) < 1e-12 &&
                                  fabs(got[1] - want[2 * k + 1]) < 1e-12,
                              "length %zu b %zu i %zu k %zu", n, b, i, k);
                }
            }
        }
        kh_free_outputs(&y, 1);
    }
}

Test(signal, float32_values_near_zero_meet_the_suite_atol)
{
    /* the node suite's test_dft: rows of 0..99, whose transform has exact
     * zeros that a float accumulation misses by more than 1e-7 */
    float x[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i;
    int64_t dims[4] = {1, 10, 10, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_dft(kh_f32(4, dims, x), 2, 0, 0, -1, &y, &err), QKV_OK, "%s", err.message);
    const float *got = y.data;
    for (size_t r = 0; r < 10; r++) {
        double line[20], want[20];
        for (size_t j = 0; j < 10; j++) {
            line[2 * j] = (double)(r * 10 + j);
            line[2 * j + 1] = 0;
        }
        naive_dft(line, 10, 10, false, want);
        for (size_t k = 0; k < 20; k++) {
            double tol = 1e-7 + 1e-6 * fabs(want[k]); /* the suite: atol 1e-7 */
            cr_assert(fabs((double)got[r * 20 + k] - want[k]) <= tol, "row %zu [%zu]: %g vs %g", r,
                      k, (double)got[r * 20 + k], want[k]);
        }
    }
    kh_free_outputs(&y, 1);
}

Test(signal, opset20_takes_the_axis_as_an_input)
{
    double x[3 * 4];
    for (size_t i = 0; i < 12; i++)
        x[i] = rnd_unit();
    int64_t dims[3] = {3, 4, 1}, axis = -3, len = 0;
    kh_node *n = kh_node_create("DFT", 20, 3, 1);
    kh_omit_input(n, 1);
    qkv_tensor ins[3] = {dbl(3, dims, x), kh_i64(0, NULL, &len), kh_i64(0, NULL, &axis)}, y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    kh_node_destroy(n);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 4);
    for (size_t c = 0; c < 4; c++) {
        double line[6], want[6];
        for (size_t j = 0; j < 3; j++) {
            line[2 * j] = x[j * 4 + c];
            line[2 * j + 1] = 0;
        }
        naive_dft(line, 3, 3, false, want);
        for (size_t k = 0; k < 3; k++)
            cr_assert(fabs(((double *)y.data)[(k * 4 + c) * 2] - want[2 * k]) < 1e-12);
    }
    kh_free_outputs(&y, 1);
}

Test(signal, dft_errors_name_the_node)
{
    double x[8] = {0};
    int64_t dims[3] = {2, 2, 2}, bad_last[2] = {4, 3};
    qkv_tensor y;
    qkv_error err;
    /* the axis may not be the complex dim */
    cr_assert_eq(run_dft(dbl(3, dims, x), 2, 0, 0, -1, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "axis 2"), "%s", err.message);
    cr_assert_eq(run_dft(dbl(3, dims, x), -4, 0, 0, -1, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(run_dft(dbl(3, dims, x), 1, 0, 0, 0, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "dft_length"), "%s",
              err.message);
    cr_assert_eq(run_dft(dbl(2, bad_last, x), 0, 0, 0, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "last dim is 3"), "%s", err.message);
    cr_assert_eq(run_dft(dbl(1, dims, x), 0, 0, 0, -1, &y, &err), QKV_ERR_SHAPE);
    kh_node *n = kh_node_create("DFT", 17, 1, 1);
    kh_attr_int(n, "inverse", 2);
    qkv_tensor in = dbl(3, dims, x);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'inverse'"), "%s", err.message);
    kh_node_destroy(n);
}

/* ---- STFT ---------------------------------------------------------------- */

static qkv_status run_stft(qkv_tensor sig, int64_t step, qkv_tensor *window, int64_t frame_length,
                           int onesided, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("STFT", 17, 4, 1);
    if (onesided >= 0)
        kh_attr_int(n, "onesided", onesided);
    if (!window)
        kh_omit_input(n, 2);
    if (frame_length < 0)
        kh_omit_input(n, 3);
    qkv_tensor ins[4] = {sig, kh_i64(0, NULL, &step), window ? *window : sig,
                         kh_i64(0, NULL, &frame_length)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

Test(signal, stft_matches_framed_naive_dft)
{
    enum { LEN = 50 };
    double sig[2 * LEN], win[11];
    for (size_t i = 0; i < 2 * LEN; i++)
        sig[i] = rnd_unit();
    for (size_t i = 0; i < 11; i++)
        win[i] = 0.5 + 0.5 * rnd_unit();
    for (int complex_in = 0; complex_in < 2; complex_in++) {
        for (int onesided = 0; onesided < 2; onesided++) {
            /* real: 2 batches of LEN/2 samples; complex: 1 batch of LEN/2 pairs */
            size_t comps = complex_in ? 2 : 1, frame = 11, step = 4;
            size_t batch = 2 / comps, length = LEN / 2;
            size_t frames = (length - frame) / step + 1;
            size_t bins = onesided ? frame / 2 + 1 : frame;
            int64_t dims[3] = {(int64_t)batch, (int64_t)length, (int64_t)comps}, wdims[1] = {11};
            qkv_tensor w = dbl(1, wdims, win), y;
            qkv_error err;
            cr_assert_eq(run_stft(dbl(3, dims, sig), (int64_t)step, &w, -1, onesided, &y, &err),
                         QKV_OK, "%s", err.message);
            cr_assert_eq(y.rank, 4);
            cr_assert_eq(y.dims[1], (int64_t)frames);
            cr_assert_eq(y.dims[2], (int64_t)bins);
            for (size_t b = 0; b < batch; b++) {
                for (size_t f = 0; f < frames; f++) {
                    double line[22], want[22];
                    for (size_t j = 0; j < frame; j++) {
                        const double *s = sig + (b * length + f * step + j) * comps;
                        line[2 * j] = s[0] * win[j];
                        line[2 * j + 1] = complex_in ? s[1] * win[j] : 0;
                    }
                    naive_dft(line, frame, frame, false, want);
                    const double *got = (const double *)y.data + (b * frames + f) * bins * 2;
                    for (size_t k = 0; k < 2 * bins; k++)
                        cr_assert(fabs(got[k] - want[k]) < 1e-12, "b %zu f %zu [%zu]", b, f, k);
                }
            }
            kh_free_outputs(&y, 1);
        }
    }
}

Test(signal, stft_on_two_threads_gives_the_single_thread_result)
{
    enum { LEN = 4000 }; /* 400-sample frames (Bluestein) every 160: 23 frames */
    static float sig[LEN];
    kh_fill_random(sig, LEN, 7);
    int64_t dims[3] = {1, LEN, 1};
    qkv_tensor y[2];
    for (int t = 0; t < 2; t++) {
        int64_t step = 160, flen = 400;
        kh_node *n = kh_node_create("STFT", 17, 4, 1);
        kh_omit_input(n, 2);
        kh_set_threads(n, (size_t)t + 1);
        qkv_tensor ins[4] = {kh_f32(3, dims, sig), kh_i64(0, NULL, &step), kh_f32(3, dims, sig),
                             kh_i64(0, NULL, &flen)};
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, &y[t], &err), QKV_OK, "%s", err.message);
        kh_node_destroy(n);
    }
    cr_assert_eq(y[0].dims[1], 23);
    cr_assert_eq(y[0].dims[2], 201);
    cr_assert_arr_eq(y[0].data, y[1].data, y[0].data_bytes);
    double line[800], want[800]; /* frame 17 against the reference */
    for (size_t j = 0; j < 400; j++) {
        line[2 * j] = (double)sig[17 * 160 + j];
        line[2 * j + 1] = 0;
    }
    naive_dft(line, 400, 400, false, want);
    const float *got = (const float *)y[1].data + 17 * 201 * 2;
    for (size_t k = 0; k < 2 * 201; k++)
        cr_assert(fabs((double)got[k] - want[k]) <= 1e-5 * (1 + fabs(want[k])), "[%zu]", k);
    kh_free_outputs(y, 2);
}

Test(signal, stft_without_window_uses_frame_length_and_is_onesided_by_default)
{
    float sig[32];
    for (int i = 0; i < 32; i++)
        sig[i] = (float)i;
    int64_t dims[3] = {1, 32, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_stft(kh_f32(3, dims, sig), 8, NULL, 16, -1, &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.dims[1], 3);
    cr_assert_eq(y.dims[2], 9);
    /* frame 0 bin 0 is the sum 0..15 = 120; frame 2 bin 0 is 16..31 = 376 */
    cr_assert_float_eq(((float *)y.data)[0], 120.0f, 1e-4);
    cr_assert_float_eq(((float *)y.data)[1], 0.0f, 1e-7);
    cr_assert_float_eq(((float *)y.data)[2 * 9 * 2], 376.0f, 1e-4);
    kh_free_outputs(&y, 1);
}

Test(signal, stft_errors_name_the_node)
{
    float sig[16] = {0}, win[4] = {1, 1, 1, 1};
    int64_t dims[3] = {1, 16, 1}, wdims[1] = {4};
    qkv_tensor w = kh_f32(1, wdims, win), y;
    qkv_error err;
    cr_assert_eq(run_stft(kh_f32(3, dims, sig), 2, &w, 5, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "test_node") && strstr(err.message, "window"), "%s", err.message);
    cr_assert_eq(run_stft(kh_f32(3, dims, sig), 2, NULL, 17, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "longer than the signal"), "%s", err.message);
    cr_assert_eq(run_stft(kh_f32(3, dims, sig), 0, NULL, 4, -1, &y, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "frame_step"), "%s", err.message);
    cr_assert_eq(run_stft(kh_f32(3, dims, sig), 2, NULL, -1, -1, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert_eq(run_stft(kh_f32(2, dims, sig), 2, NULL, 4, -1, &y, &err), QKV_ERR_SHAPE);
}

/* ---- windows --------------------------------------------------------------- */

static qkv_status run_window(const char *op, int64_t size, int periodic, int64_t dtype,
                             qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create(op, 17, 1, 1);
    if (periodic >= 0)
        kh_attr_int(n, "periodic", periodic);
    if (dtype)
        kh_attr_int(n, "output_datatype", dtype);
    qkv_tensor in = kh_i64(0, NULL, &size);
    qkv_status st = kh_run(n, &in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(signal, windows_follow_their_formulas)
{
    static const struct {
        const char *op;
        double a0, a1, a2;
    } w[] = {{"HannWindow", 0.5, 0.5, 0},
             {"HammingWindow", 25.0 / 46, 21.0 / 46, 0},
             {"BlackmanWindow", 0.42, 0.5, 0.08}};
    for (size_t t = 0; t < 3; t++) {
        for (int periodic = 0; periodic < 2; periodic++) {
            for (int64_t size = 2; size < 20; size += 5) {
                qkv_tensor y;
                qkv_error err;
                cr_assert_eq(run_window(w[t].op, size, periodic, QKV_DTYPE_DOUBLE, &y, &err),
                             QKV_OK, "%s", err.message);
                cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
                cr_assert_eq(y.dims[0], size);
                double nn = (double)(periodic ? size : size - 1);
                for (int64_t i = 0; i < size; i++) {
                    double a = 6.283185307179586 * (double)i / nn;
                    double want = w[t].a0 - w[t].a1 * cos(a) + w[t].a2 * cos(2 * a);
                    cr_assert(fabs(((double *)y.data)[i] - want) < 1e-15, "%s periodic %d [%lld]",
                              w[t].op, periodic, (long long)i);
                }
                kh_free_outputs(&y, 1);
            }
        }
    }
}

Test(signal, window_defaults_are_periodic_float32)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_window("HannWindow", 4, -1, 0, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    const float want[4] = {0.0f, 0.5f, 1.0f, 0.5f}; /* 0.5 - 0.5 cos(pi i / 2) */
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 1e-7);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_window("HannWindow", -1, -1, 0, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert_eq(run_window("HannWindow", 3, -1, QKV_DTYPE_STRING, &y, &err), QKV_ERR_UNSUPPORTED);
}

/* ---- MelWeightMatrix ------------------------------------------------------------- */

/* numpy, the ONNX reference's formula: num_mel_bins 4, dft_length 64,
 * sample_rate 16000, 100..7000 Hz */
static const float mel_expected_33x4[33 * 4] = {
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0.666666687f,
    0.333333343f,
    0,
    0,
    0.333333343f,
    0.666666687f,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0.666666687f,
    0.333333343f,
    0,
    0,
    0.333333343f,
    0.666666687f,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0.75f,
    0.25f,
    0,
    0,
    0.5f,
    0.5f,
    0,
    0,
    0.25f,
    0.75f,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0.857142866f,
    0,
    0,
    0,
    0.714285731f,
    0,
    0,
    0,
    0.571428597f,
    0,
    0,
    0,
    0.428571433f,
    0,
    0,
    0,
    0.285714298f,
    0,
    0,
    0,
    0.142857149f,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
};

static qkv_status run_mel(int64_t mels, int64_t dft_length, int64_t rate, float lo, float hi,
                          qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("MelWeightMatrix", 17, 5, 1);
    qkv_tensor ins[5] = {kh_i64(0, NULL, &mels), kh_i64(0, NULL, &dft_length),
                         kh_i64(0, NULL, &rate), kh_f32(0, NULL, &lo), kh_f32(0, NULL, &hi)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

Test(signal, melweightmatrix_matches_the_onnx_reference)
{
    /* the node suite's case: (9, 8), ones on a staircase */
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_mel(8, 16, 8192, 0, 4096, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 9);
    cr_assert_eq(y.dims[1], 8);
    static const int one_at[9] = {-1, -1, 4, 5, 6, 7, -1, -1, -1};
    const float *m = y.data;
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 8; c++) {
            float want = 0;
            if ((r == 0 && c < 2) || (r == 1 && (c == 2 || c == 3)) || one_at[r] == c)
                want = 1;
            cr_assert_eq(m[r * 8 + c], want, "[%d, %d]", r, c);
        }
    kh_free_outputs(&y, 1);
    /* numpy (the ONNX reference's formula), num_mel_bins 4, dft_length 64,
     * sample_rate 16000, 100..7000 Hz: fractional triangles */
    cr_assert_eq(run_mel(4, 64, 16000, 100, 7000, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 33);
    cr_assert_eq(y.dims[1], 4);
    for (int i = 0; i < 33 * 4; i++)
        cr_assert_float_eq(((float *)y.data)[i], mel_expected_33x4[i], 1e-6, "[%d]", i);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_mel(0, 16, 8192, 0, 4096, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "num_mel_bins"), "%s", err.message);
}

/* Every input of MelWeightMatrix is required: one given as "" (the last one
 * keeps the arity) is refused before init instead of read as NULL. */
Test(signal, melweightmatrix_refuses_an_omitted_input)
{
    for (size_t omit = 0; omit < 4; omit++) {
        int64_t mels = 8, dft_length = 16, rate = 8192;
        float lo = 0, hi = 4096;
        kh_node *n = kh_node_create("MelWeightMatrix", 17, 5, 1);
        kh_omit_input(n, omit);
        qkv_tensor ins[5] = {kh_i64(0, NULL, &mels), kh_i64(0, NULL, &dft_length),
                             kh_i64(0, NULL, &rate), kh_f32(0, NULL, &lo), kh_f32(0, NULL, &hi)},
                   y;
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        char want[80];
        snprintf(want, sizeof want, "input %zu is omitted", omit);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want), "%s", err.message);
        kh_node_destroy(n);
    }
}

/* STFT's signal and frame_step are required: one given as "" (the frame
 * length after it keeps the arity) is refused before the kernel's init runs. */
Test(signal, stft_refuses_an_omitted_required_input)
{
    static const char *const want[2] = {"input 0 is omitted", "input 1 is omitted"};
    for (size_t omit = 0; omit < 2; omit++) {
        float sig[16] = {0};
        int64_t step = 2, flen = 4;
        kh_node *n = kh_node_create("STFT", 17, 4, 1);
        kh_omit_input(n, 2);
        kh_omit_input(n, omit);
        qkv_tensor ins[4] = {kh_f32(3, (int64_t[]){1, 16, 1}, sig), kh_i64(0, NULL, &step),
                             kh_f32(1, (int64_t[]){4}, sig), kh_i64(0, NULL, &flen)},
                   y;
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want[omit]), "%s",
                  err.message);
        kh_node_destroy(n);
    }
}
