/* RotaryEmbedding (opset 23) against a reference written from the ONNX
 * reference implementation (numpy: transpose to (batch, seq, heads, head),
 * split or interleave, rotate, concatenate): 4-D and 3-D inputs, halves and
 * interleaved, partial rotation, with and without position_ids, float16 and
 * bfloat16, threads, and every error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

typedef struct rope_case {
    bool x3d;
    int64_t batch, heads, seq, head;
    int64_t rot_attr; /* 0: attribute absent */
    bool interleaved;
    bool with_pos;
    int64_t max_pos;
    bool cache_batch1; /* without position_ids: caches (1, seq, rot/2) */
    size_t threads;
} rope_case;

/* element (b, h, s, i) of x/y in the case's layout */
static size_t at(const rope_case *c, int64_t b, int64_t h, int64_t s, int64_t i)
{
    if (c->x3d)
        return (size_t)(((b * c->seq + s) * c->heads + h) * c->head + i);
    return (size_t)(((b * c->heads + h) * c->seq + s) * c->head + i);
}

/* y from x in double, the caches as given (cos/sin rows of rot/2 values) */
static void ref_rope(const rope_case *c, const float *x, const float *cs, const float *sn,
                     const int64_t *pos, double *y)
{
    int64_t rot = c->rot_attr ? c->rot_attr : c->head, half = rot / 2;
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->heads; h++)
            for (int64_t s = 0; s < c->seq; s++) {
                int64_t row =
                    c->with_pos ? pos[b * c->seq + s] : (c->cache_batch1 ? 0 : b) * c->seq + s;
                const float *cr = cs + row * half, *sr = sn + row * half;
                for (int64_t k = 0; k < half; k++) {
                    int64_t i1 = c->interleaved ? 2 * k : k,
                            i2 = c->interleaved ? 2 * k + 1 : k + half;
                    double x1 = x[at(c, b, h, s, i1)], x2 = x[at(c, b, h, s, i2)];
                    y[at(c, b, h, s, i1)] = cr[k] * x1 - sr[k] * x2;
                    y[at(c, b, h, s, i2)] = sr[k] * x1 + cr[k] * x2;
                }
                for (int64_t i = rot; i < c->head; i++)
                    y[at(c, b, h, s, i)] = x[at(c, b, h, s, i)];
            }
}

typedef struct rope_data {
    size_t nx, nc, np;
    float *x, *cs, *sn;
    int64_t *pos;
    double *want;
    int64_t xdims[4], cdims[3], pdims[2];
    int32_t xrank, crank;
} rope_data;

static void make_data(const rope_case *c, rope_data *d, uint32_t seed)
{
    int64_t rot = c->rot_attr ? c->rot_attr : c->head, half = rot / 2;
    d->nx = (size_t)(c->batch * c->heads * c->seq * c->head);
    d->np = (size_t)(c->batch * c->seq);
    if (c->with_pos) {
        d->nc = (size_t)(c->max_pos * half);
        d->crank = 2;
        d->cdims[0] = c->max_pos;
        d->cdims[1] = half;
    } else {
        int64_t cb = c->cache_batch1 ? 1 : c->batch;
        d->nc = (size_t)(cb * c->seq * half);
        d->crank = 3;
        d->cdims[0] = cb;
        d->cdims[1] = c->seq;
        d->cdims[2] = half;
    }
    d->x = malloc((d->nx + 1) * sizeof *d->x);
    d->cs = malloc((d->nc + 1) * sizeof *d->cs);
    d->sn = malloc((d->nc + 1) * sizeof *d->sn);
    d->pos = malloc((d->np + 1) * sizeof *d->pos);
    d->want = malloc((d->nx + 1) * sizeof *d->want);
    kh_fill_random(d->x, d->nx, seed);
    /* real angles, so the caches are what a model would hold */
    int64_t rows = (int64_t)(d->nc / (size_t)(half ? half : 1));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < half; k++) {
            double ang = (double)(r + 1) * pow(10000.0, -2.0 * (double)k / (double)rot);
            d->cs[r * half + k] = (float)cos(ang);
            d->sn[r * half + k] = (float)sin(ang);
        }
    for (size_t i = 0; i < d->np; i++)
        d->pos[i] = (int64_t)((i * 7 + seed) % (size_t)(c->max_pos ? c->max_pos : 1));
    if (c->x3d) {
        d->xrank = 3;
        d->xdims[0] = c->batch;
        d->xdims[1] = c->seq;
        d->xdims[2] = c->heads * c->head;
    } else {
        d->xrank = 4;
        d->xdims[0] = c->batch;
        d->xdims[1] = c->heads;
        d->xdims[2] = c->seq;
        d->xdims[3] = c->head;
    }
    d->pdims[0] = c->batch;
    d->pdims[1] = c->seq;
    ref_rope(c, d->x, d->cs, d->sn, d->pos, d->want);
}

static void free_data(rope_data *d)
{
    free(d->x);
    free(d->cs);
    free(d->sn);
    free(d->pos);
    free(d->want);
}

static kh_node *rope_node(const rope_case *c)
{
    kh_node *n = kh_node_create("RotaryEmbedding", 23, c->with_pos ? 4 : 3, 1);
    if (c->x3d)
        kh_attr_int(n, "num_heads", c->heads);
    if (c->rot_attr)
        kh_attr_int(n, "rotary_embedding_dim", c->rot_attr);
    if (c->interleaved)
        kh_attr_int(n, "interleaved", 1);
    kh_set_threads(n, c->threads ? c->threads : 1);
    return n;
}

static qkv_status run_f32(const rope_case *c, const rope_data *d, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = rope_node(c);
    qkv_tensor ins[4] = {kh_f32(d->xrank, d->xdims, d->x), kh_f32(d->crank, d->cdims, d->cs),
                         kh_f32(d->crank, d->cdims, d->sn), kh_i64(2, d->pdims, d->pos)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* float products and one add each: a few 1e-7 of |x| (|x|, |cos|, |sin| <= 1) */
static void check_case(const rope_case *c, const char *what)
{
    rope_data d;
    make_data(c, &d, 17);
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_f32(c, &d, &y, &err), QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.rank, d.xrank, "%s", what);
    for (int k = 0; k < d.xrank; k++)
        cr_assert_eq(y.dims[k], d.xdims[k], "%s", what);
    const float *g = y.data;
    for (size_t i = 0; i < d.nx; i++)
        cr_assert(fabs(g[i] - d.want[i]) <= 1e-6, "%s: element %zu is %.9g, expected %.9g", what, i,
                  g[i], d.want[i]);
    kh_free_outputs(&y, 1);
    free_data(&d);
}

Test(rotary, four_d_with_position_ids_halves_and_interleaved_full_and_partial)
{
    for (int inter = 0; inter < 2; inter++)
        for (int rot = 0; rot <= 4; rot += 4) {
            rope_case c = {.batch = 2,
                           .heads = 4,
                           .seq = 3,
                           .head = 8,
                           .rot_attr = rot,
                           .interleaved = inter,
                           .with_pos = true,
                           .max_pos = 50};
            char what[64];
            snprintf(what, sizeof what, "4-D interleaved=%d rot=%d", inter, rot);
            check_case(&c, what);
        }
}

Test(rotary, three_d_input_with_num_heads)
{
    for (int inter = 0; inter < 2; inter++) {
        rope_case c = {.x3d = true,
                       .batch = 2,
                       .heads = 4,
                       .seq = 3,
                       .head = 8,
                       .interleaved = inter,
                       .with_pos = true,
                       .max_pos = 50};
        check_case(&c, inter ? "3-D interleaved" : "3-D");
        c.rot_attr = 6;
        check_case(&c, inter ? "3-D interleaved rot 6" : "3-D rot 6");
    }
}

Test(rotary, gathered_caches_without_position_ids_and_batch_broadcast)
{
    for (int inter = 0; inter < 2; inter++) {
        rope_case c = {.batch = 3, .heads = 2, .seq = 5, .head = 10, .interleaved = inter};
        check_case(&c, "gathered");
        c.rot_attr = 4;
        check_case(&c, "gathered rot 4");
        c.cache_batch1 = true;
        check_case(&c, "gathered, cache batch 1");
        c.x3d = true;
        check_case(&c, "gathered 3-D, cache batch 1");
    }
}

Test(rotary, long_head_vectors_float16_and_bfloat16)
{
    /* head 300 with rot 296: more pairs than one conversion chunk of 128 */
    for (int ty = 0; ty < 2; ty++)
        for (int inter = 0; inter < 2; inter++) {
            rope_case c = {.batch = 1,
                           .heads = 2,
                           .seq = 3,
                           .head = 300,
                           .rot_attr = 296,
                           .interleaved = inter,
                           .with_pos = true,
                           .max_pos = 9};
            rope_data d;
            make_data(&c, &d, 5);
            qkv_dtype dt = ty ? QKV_DTYPE_BFLOAT16 : QKV_DTYPE_FLOAT16;
            uint16_t *hx = malloc(d.nx * 2), *hc = malloc(d.nc * 2), *hs = malloc(d.nc * 2);
            /* the reference on the rounded inputs */
            for (size_t i = 0; i < d.nx; i++) {
                hx[i] = ty ? qkv_f32_to_bf16(d.x[i]) : qkv_f32_to_f16(d.x[i]);
                d.x[i] = ty ? qkv_bf16_to_f32(hx[i]) : qkv_f16_to_f32(hx[i]);
            }
            for (size_t i = 0; i < d.nc; i++) {
                hc[i] = ty ? qkv_f32_to_bf16(d.cs[i]) : qkv_f32_to_f16(d.cs[i]);
                hs[i] = ty ? qkv_f32_to_bf16(d.sn[i]) : qkv_f32_to_f16(d.sn[i]);
                d.cs[i] = ty ? qkv_bf16_to_f32(hc[i]) : qkv_f16_to_f32(hc[i]);
                d.sn[i] = ty ? qkv_bf16_to_f32(hs[i]) : qkv_f16_to_f32(hs[i]);
            }
            ref_rope(&c, d.x, d.cs, d.sn, d.pos, d.want);
            kh_node *n = rope_node(&c);
            qkv_tensor ins[4] = {kh_tensor(dt, d.xrank, d.xdims, hx),
                                 kh_tensor(dt, d.crank, d.cdims, hc),
                                 kh_tensor(dt, d.crank, d.cdims, hs), kh_i64(2, d.pdims, d.pos)};
            qkv_tensor y;
            qkv_error err;
            cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
            cr_assert_eq(y.dtype, dt);
            const uint16_t *g = y.data;
            for (size_t i = 0; i < d.nx; i++) {
                double gv = ty ? qkv_bf16_to_f32(g[i]) : qkv_f16_to_f32(g[i]);
                /* computed in float, rounded once: half an ulp of the type
                 * (values below 2 in magnitude: 2^-10 or 2^-7 absolute) */
                double tol = ty ? 0x1p-7 : 0x1p-10;
                cr_assert(fabs(gv - d.want[i]) <= tol, "%s inter=%d element %zu: %g, expected %g",
                          ty ? "bf16" : "f16", inter, i, gv, d.want[i]);
                if ((size_t)(i % 300) >= 296) /* the tail is copied bit for bit */
                    cr_assert_eq(g[i], hx[i], "tail element %zu", i);
            }
            kh_free_outputs(&y, 1);
            kh_node_destroy(n);
            free(hx), free(hc), free(hs);
            free_data(&d);
        }
}

Test(rotary, many_vectors_two_threads_give_the_single_thread_result)
{
    rope_case c1 = {.batch = 2,
                    .heads = 8,
                    .seq = 64,
                    .head = 32,
                    .with_pos = true,
                    .max_pos = 128,
                    .threads = 1};
    rope_case c2 = c1;
    c2.threads = 2;
    rope_data d;
    make_data(&c1, &d, 3);
    qkv_tensor y1, y2;
    qkv_error err;
    cr_assert_eq(run_f32(&c1, &d, &y1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(run_f32(&c2, &d, &y2, &err), QKV_OK, "%s", err.message);
    cr_assert_arr_eq(y1.data, y2.data, d.nx * sizeof(float));
    for (size_t i = 0; i < d.nx; i += 97)
        cr_assert(fabs(((float *)y2.data)[i] - d.want[i]) <= 1e-6);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free_data(&d);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_error(const rope_case *c, const rope_data *d, qkv_status want, const char *msg)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_f32(c, d, &y, &err), want, "%s", err.message);
    cr_assert(strstr(err.message, msg), "got '%s', expected '%s'", err.message, msg);
}

Test(rotary, refuses_position_ids_out_of_the_cache)
{
    rope_case c = {.batch = 1, .heads = 1, .seq = 2, .head = 4, .with_pos = true, .max_pos = 3};
    rope_data d;
    make_data(&c, &d, 1);
    d.pos[1] = 3;
    expect_error(&c, &d, QKV_ERR_INVALID_ARGUMENT,
                 "(RotaryEmbedding-23): input 3 'position_ids'[0][1] = 3 is out of range [0, 3) "
                 "of the cache rows");
    d.pos[1] = -1;
    expect_error(&c, &d, QKV_ERR_INVALID_ARGUMENT, "'position_ids'[0][1] = -1 is out of range");
    free_data(&d);
}

Test(rotary, refuses_3d_input_without_num_heads_or_with_a_bad_hidden_size)
{
    rope_case c = {
        .x3d = true, .batch = 1, .heads = 2, .seq = 2, .head = 4, .with_pos = true, .max_pos = 4};
    rope_data d;
    make_data(&c, &d, 1);
    kh_node *n = kh_node_create("RotaryEmbedding", 23, 4, 1);
    qkv_tensor ins[4] = {kh_f32(d.xrank, d.xdims, d.x), kh_f32(d.crank, d.cdims, d.cs),
                         kh_f32(d.crank, d.cdims, d.sn), kh_i64(2, d.pdims, d.pos)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "input 0 'X' is 3-D [1,2,8] but attribute num_heads is not set"),
              "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("RotaryEmbedding", 23, 4, 1);
    kh_attr_int(n, "num_heads", 3);
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'X' hidden size 8 is not a multiple of num_heads=3"),
              "%s", err.message);
    kh_node_destroy(n);
    free_data(&d);
}

Test(rotary, refuses_bad_rotary_dims)
{
    rope_case c = {.batch = 1, .heads = 1, .seq = 2, .head = 4, .with_pos = true, .max_pos = 4};
    rope_data d;
    make_data(&c, &d, 1);
    c.rot_attr = 3;
    expect_error(&c, &d, QKV_ERR_INVALID_MODEL,
                 "attribute rotary_embedding_dim=3 must be even and >= 0");
    c.rot_attr = 6;
    expect_error(&c, &d, QKV_ERR_SHAPE,
                 "attribute rotary_embedding_dim=6 exceeds the head size 4 of input 0 'X'");
    free_data(&d);
    /* an odd head size with full rotation */
    rope_case c2 = {.batch = 1, .heads = 1, .seq = 1, .head = 5, .with_pos = true, .max_pos = 2};
    rope_data d2;
    c2.rot_attr = 4; /* build caches of 2 per row */
    make_data(&c2, &d2, 1);
    c2.rot_attr = 0;
    expect_error(&c2, &d2, QKV_ERR_SHAPE, "the rotated size 5 (head size of input 0 'X') is odd");
    free_data(&d2);
}

Test(rotary, refuses_caches_and_position_ids_of_the_wrong_shape)
{
    rope_case c = {.batch = 2, .heads = 1, .seq = 3, .head = 4, .with_pos = true, .max_pos = 5};
    rope_data d;
    make_data(&c, &d, 1);
    d.cdims[1] = 3; /* rot/2 is 2 */
    expect_error(&c, &d, QKV_ERR_SHAPE,
                 "input 1 'cos_cache' has shape [5,3], expected (max_position, rot/2) with input 0 "
                 "'X' [2,1,3,4] and rotated size 4");
    d.cdims[1] = 2;
    d.pdims[1] = 2;
    expect_error(&c, &d, QKV_ERR_SHAPE,
                 "input 3 'position_ids' has shape [2,2], expected (batch, seq) of input 0 'X'");
    free_data(&d);
    /* gathered caches must match the batch (or be 1) and the sequence */
    rope_case g = {.batch = 2, .heads = 1, .seq = 3, .head = 4};
    make_data(&g, &d, 1);
    d.cdims[1] = 2;
    expect_error(&g, &d, QKV_ERR_SHAPE, "expected (batch or 1, seq, rot/2)");
    free_data(&d);
}

Test(rotary, refuses_wrong_rank_and_mixed_types)
{
    rope_case c = {.batch = 1, .heads = 1, .seq = 2, .head = 4, .with_pos = true, .max_pos = 4};
    rope_data d;
    make_data(&c, &d, 1);
    d.xrank = 2;
    d.xdims[0] = 2;
    d.xdims[1] = 4;
    expect_error(&c, &d, QKV_ERR_SHAPE, "input 0 'X' has rank 2, expected 3 or 4");
    d.xrank = 4;
    d.xdims[0] = 1, d.xdims[1] = 1, d.xdims[2] = 2, d.xdims[3] = 4;
    uint16_t hc[8] = {0};
    kh_node *n = rope_node(&c);
    qkv_tensor ins[4] = {kh_f32(d.xrank, d.xdims, d.x),
                         kh_tensor(QKV_DTYPE_FLOAT16, d.crank, d.cdims, hc),
                         kh_f32(d.crank, d.cdims, d.sn), kh_i64(2, d.pdims, d.pos)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 'cos_cache' is float16 but input 0 'X' is float32"),
              "%s", err.message);
    kh_node_destroy(n);
    free_data(&d);
}
