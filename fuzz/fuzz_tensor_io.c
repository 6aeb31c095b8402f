/*
 * fuzz_tensor_io.c - libFuzzer target: the input bytes as a tensor file, as
 * the CLI reads --input files: decoded as a .npy image (qkv_cli_npy_decode,
 * cli/tensor_io.c) and as a serialized TensorProto (qkv_tensor_proto_decode,
 * the decoder behind qkv_cli_pb_read; no base directory, so external data is
 * refused rather than read from disk). A .npy that decodes is encoded again
 * and decoded once more, and must give back the same tensor. The same bytes
 * are also read as a SequenceProto and as OptionalProtos (of a tensor and of
 * a sequence), as `qkv test` reads sequence and optional values
 * (qkv_cli_value_decode, cli/value_io.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "tensor_io.h"
#include "value_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void npy_round_trip(const qkv_tensor *t)
{
    void *buf = NULL;
    size_t bytes = 0;
    qkv_error err;
    if (qkv_cli_npy_encode(t, &buf, &bytes, &err) != QKV_OK)
        return;
    qkv_tensor back;
    memset(&back, 0, sizeof back);
    if (qkv_cli_npy_decode(buf, bytes, "re-encoded", &back, &err) != QKV_OK)
        abort(); /* what the encoder writes, the decoder must read */
    if (back.dtype != t->dtype || back.rank != t->rank || back.data_bytes != t->data_bytes ||
        memcmp(back.dims, t->dims, sizeof(t->dims[0]) * (size_t)t->rank) != 0 ||
        (t->data_bytes && memcmp(back.data, t->data, t->data_bytes) != 0))
        abort();
    qkv_tensor_data_free(&back);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qkv_error err;
    qkv_tensor t;
    memset(&t, 0, sizeof t);
    if (qkv_cli_npy_decode(data, size, "fuzz.npy", &t, &err) == QKV_OK) {
        npy_round_trip(&t);
        qkv_tensor_data_free(&t);
    }

    static const uint8_t empty = 0;
    char *name = NULL;
    memset(&t, 0, sizeof t);
    if (qkv_tensor_proto_decode(size ? data : &empty, size, NULL, &t, &name, &err) == QKV_OK) {
        qkv_tensor_data_free(&t);
        free(name);
    }

    static const qkv_type_kind kinds[] = {QKV_KIND_SEQUENCE, QKV_KIND_OPTIONAL,
                                          QKV_KIND_OPTIONAL_SEQUENCE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        qkv_value v;
        if (qkv_cli_value_decode(data, size, kinds[k], NULL, &v, &err) != QKV_OK)
            continue;
        if (v.kind != kinds[k] || (v.count && !v.tensors) ||
            (kinds[k] == QKV_KIND_OPTIONAL && v.count > 1))
            abort(); /* a decoded value is what was asked for */
        qkv_cli_value_free(&v);
    }
    return 0;
}
