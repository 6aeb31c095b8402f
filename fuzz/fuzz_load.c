/*
 * fuzz_load.c - libFuzzer target: the input bytes as an ONNX model file,
 * loaded and validated with qkv_model_load_buffer (no base directory, so
 * external data is refused rather than read from disk), then destroyed.
 * Any outcome but a crash, a sanitizer report or a leak is fine.
 */
#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qkv_model *model = NULL;
    qkv_error err;
    if (qkv_model_load_buffer(data, size, NULL, &model, &err) == QKV_OK) {
        qkv_model_meta meta = {.struct_size = sizeof(qkv_model_meta)};
        qkv_model_get_meta(model, &meta);
        qkv_model_destroy(model);
    }
    return 0;
}
