/*
 * test_loader_mmap.c - large initializers stay in read-only file mappings
 * (runtime/load/loader_map.c): which payloads are used in place, that they equal
 * the copied ones, that the mappings go away with the model, that sessions
 * compute the same outputs from them, and the refusals on that path.
 * Models come from tests/data/make_mmap_models.py.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir.h"
#include "loader.h"
#include "qkv.h"
#include "test_util.h"

static qkv_model *load_file_ok(const char *rel)
{
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_file(tu_data(rel), &m, &err), QKV_OK, "%s: %s", rel, err.message);
    return m;
}

static qkv_model *load_buffer_ok(const char *rel)
{
    FILE *f = fopen(tu_data(rel), "rb");
    cr_assert_not_null(f, "cannot open %s", rel);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_buffer(buf, (size_t)n, QKV_TEST_DATA "/mmap", &m, &err), QKV_OK,
                 "%s: %s", rel, err.message);
    memset(buf, 0xa5, (size_t)n); /* the model must not point into it */
    free(buf);
    return m;
}

static const qkv_ir_value *value(const qkv_model *m, const char *name)
{
    int32_t id = qkv_graph_find_value(m->graph, name);
    cr_assert_geq(id, 0, "no value '%s'", name);
    return &m->graph->values[id];
}

/* true when [data, data+bytes) lies inside one of the graph's mappings */
static bool in_mapping(const qkv_ir_graph *g, const void *data, size_t bytes)
{
    uintptr_t p = (uintptr_t)data;
    for (size_t k = 0; k < g->n_mappings; k++) {
        uintptr_t a = (uintptr_t)g->mappings[k].addr;
        if (p >= a && p + bytes <= a + g->mappings[k].bytes)
            return true;
    }
    return false;
}

static void assert_mapped(const qkv_model *m, const char *name, bool mapped)
{
    const qkv_ir_value *v = value(m, name);
    cr_assert_not_null(v->data, "%s has no data", name);
    cr_assert_eq(v->mapped, mapped, "%s: mapped %d, expected %d", name, v->mapped, mapped);
    cr_assert_eq(v->borrowed, mapped, "%s: borrowed follows mapped", name);
    cr_assert_eq(in_mapping(m->graph, v->data, v->data_bytes), mapped, "%s: pointer", name);
    cr_assert_eq((uintptr_t)v->data % sizeof(float), 0, "%s: misaligned floats", name);
}

/* Every initializer of a and b holds the same bytes. */
static void assert_same_payloads(const qkv_model *a, const qkv_model *b)
{
    const char *names[] = {"wa", "wb", "wc", "bias"};
    for (size_t k = 0; k < 4; k++) {
        const qkv_ir_value *va = value(a, names[k]), *vb = value(b, names[k]);
        cr_assert_eq(va->data_bytes, vb->data_bytes, "%s", names[k]);
        cr_assert_eq(memcmp(va->data, vb->data, va->data_bytes), 0, "%s differs", names[k]);
    }
}

/* Mappings of files under the test data's mmap/ directory, from
 * /proc/self/maps (only those: valgrind and malloc map memory of their own). */
static size_t count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    size_t n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f))
        n += strstr(line, QKV_TEST_DATA "/mmap/") != NULL;
    fclose(f);
    return n;
}

Test(loader_mmap, aligned_large_payloads_point_into_the_file_mapping)
{
    qkv_model *m = load_file_ok("mmap/inline.onnx");
    cr_assert_eq(m->graph->n_mappings, 1, "the model file stays mapped");
    assert_mapped(m, "wa", true);    /* 16 KiB at an offset that is a multiple of 8 */
    assert_mapped(m, "wc", true);    /* 4 KiB, the smallest size left in the file */
    assert_mapped(m, "wb", false);   /* at 2 mod 4: copied into an aligned buffer */
    assert_mapped(m, "bias", false); /* 256 bytes: the ordinary path */
    qkv_model *copy = load_buffer_ok("mmap/inline.onnx");
    assert_same_payloads(m, copy);
    qkv_model_destroy(copy);
    qkv_model_destroy(m);
}

Test(loader_mmap, a_caller_buffer_is_always_copied)
{
    qkv_model *m = load_buffer_ok("mmap/inline.onnx");
    cr_assert_eq(m->graph->n_mappings, 0);
    assert_mapped(m, "wa", false);
    assert_mapped(m, "wc", false);
    qkv_model_destroy(m);
}

Test(loader_mmap, external_payloads_point_into_a_mapping_of_the_data_file)
{
    qkv_model *m = load_file_ok("mmap/external/model.onnx");
    cr_assert_eq(m->graph->n_mappings, 1, "weights.bin is mapped once for all its tensors");
    assert_mapped(m, "wa", true);
    assert_mapped(m, "wb", true); /* onnx writes them one after the other: all aligned */
    assert_mapped(m, "wc", true);
    assert_mapped(m, "bias", false);
    qkv_model *inl = load_file_ok("mmap/inline.onnx");
    assert_same_payloads(m, inl);
    qkv_model_destroy(inl);
    qkv_model_destroy(m);
}

Test(loader_mmap, destroying_the_model_unmaps_its_files)
{
    const char *models[] = {"mmap/inline.onnx", "mmap/external/model.onnx"};
    for (size_t k = 0; k < 2; k++) {
        size_t before = count_maps();
        qkv_model *m = load_file_ok(models[k]);
        cr_assert_gt(count_maps(), before, "%s: no mapping while loaded", models[k]);
        qkv_model_destroy(m);
        cr_assert_eq(count_maps(), before, "%s: a mapping outlives the model", models[k]);
    }
}

Test(loader_mmap, sessions_compute_the_same_outputs_from_mapped_weights)
{
    const char *models[] = {"mmap/inline.onnx", "mmap/external/model.onnx"};
    qkv_tensor x, want;
    tu_read_pb(tu_data("mmap/inline_in.pb"), &x);
    tu_read_pb(tu_data("mmap/inline_out.pb"), &want);
    for (size_t k = 0; k < 2; k++) {
        qkv_session *s = NULL;
        qkv_error err = {0};
        cr_assert_eq(qkv_session_create(tu_data(models[k]), NULL, &s, &err), QKV_OK, "%s: %s",
                     models[k], err.message);
        size_t released = 0;
        qkv_session_packed_bytes(s, &released);
        cr_assert_eq(released, 64 * 64 * sizeof(float), "%s: wa (mapped) is packed and dropped",
                     models[k]);
        qkv_context *c = NULL;
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        for (int run = 0; run < 2; run++) {
            cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s: %s", models[k], err.message);
            /* float32 dot products of 64 terms against numpy's float64 */
            tu_assert_close(qkv_context_output(c, 0), &want, 1e-5f, 1e-5f);
        }
        qkv_context_destroy(c);
        qkv_session_destroy(s);
    }
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}

Test(loader_mmap, the_last_of_two_raw_data_fields_wins)
{
    qkv_model *m = load_file_ok("mmap/two_raw.onnx");
    assert_mapped(m, "wa", false); /* left to protobuf-c, which keeps the last */
    qkv_model *ref = load_file_ok("mmap/inline.onnx");
    assert_same_payloads(m, ref);
    qkv_model_destroy(ref);
    qkv_model_destroy(m);
}

/* Loading rel fails with st and a message holding `a`; *out untouched. */
static void load_fails(const char *rel, qkv_status st, const char *a)
{
    qkv_model *sentinel = (qkv_model *)(uintptr_t)0x1234, *m = sentinel;
    qkv_error err = {0};
    size_t before = count_maps();
    qkv_status got = qkv_model_load_file(tu_data(rel), &m, &err);
    cr_assert_eq(got, st, "%s: %s (%s)", rel, qkv_status_string(got), err.message);
    cr_assert_eq(m, sentinel);
    cr_assert(strstr(err.message, a), "%s: message '%s' lacks '%s'", rel, err.message, a);
    cr_assert_eq(count_maps(), before, "%s: a failed load leaves a mapping", rel);
}

Test(loader_mmap_errors, refusals_on_the_mapped_path)
{
    load_fails("mmap/bad_length.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'wa': raw_data has 16380 bytes, expected 16384 (dims [64,64] "
               "float32)");
    load_fails("mmap/bad_past_end.onnx", QKV_ERR_INVALID_MODEL,
               "truncated or corrupt protobuf at byte");
    /* a reference the file wrote itself is stripped: wa then has no payload */
    load_fails("mmap/fake_ref.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'wa': has no data (dims [64,64] float32)");
}

/* Flips bytes of the model at random (deterministically), writes it to a
 * file and loads that: the cut-out of payloads sees hostile framing. Every
 * load succeeds or fails with a message, and leaves no mapping behind
 * (ASan and valgrind watch the reads). */
Test(loader_mmap_fuzz, mutated_files_fail_cleanly)
{
    FILE *f = fopen(tu_data("mmap/inline.onnx"), "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *orig = malloc(n), *buf = malloc(n);
    cr_assert_eq(fread(orig, 1, n, f), n);
    fclose(f);
    char path[1024];
    snprintf(path, sizeof path, "%s/mmap/fuzz_%d.onnx", QKV_TEST_DATA, (int)getpid());
    uint64_t state = 88172645463325252ull;
    size_t maps = count_maps();
    for (int iter = 0; iter < 300; iter++) {
        memcpy(buf, orig, n);
        for (int k = 0; k < 3; k++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            /* half the flips land in the first 600 bytes: the framing */
            size_t at = (size_t)(state >> 8) % (k == 0 ? 600 : n);
            buf[at] ^= (uint8_t)(1u << (state % 8));
        }
        f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(buf, 1, n, f), n);
        fclose(f);
        qkv_model *m = NULL;
        qkv_error err = {0};
        qkv_status st = qkv_model_load_file(path, &m, &err);
        if (st == QKV_OK)
            qkv_model_destroy(m);
        else
            cr_assert_neq(err.message[0], '\0', "iteration %d: status %d, no message", iter,
                          (int)st);
    }
    cr_assert_eq(count_maps(), maps);
    remove(path);
    free(buf);
    free(orig);
}
