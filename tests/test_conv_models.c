/*
 * Convolution front ends exported from PyTorch (tests/data/make_conv_models.py:
 * wav2vec2's feature extractor and grouped positional conv, a vision stem
 * with depthwise, pointwise and transposed convs, Conformer's convolution
 * module, a video tubelet embedding) run through whole sessions at two
 * shapes each, against PyTorch eager outputs, with qkv's own kernels and
 * with the default backends, on 1 and 2 threads.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

/* float32 convolutions of up to a few hundred products against PyTorch's
 * float32: both round, in different orders */
#define RTOL 1e-4f
#define ATOL 1e-5f

static void run_model(const char *name, const char *backends, size_t threads)
{
    char rel[128];
    snprintf(rel, sizeof rel, "conv/%s.onnx", name);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    opts.backends = backends;
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), &opts, &s, &err), QKV_OK, "%s: %s", name,
                 err.message);
    qkv_context *c = NULL;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    static const char *cases[] = {"a", "b", "a"}; /* back to the first shape */
    for (int i = 0; i < 3; i++) {
        char in[128], out[128];
        snprintf(in, sizeof in, "conv/%s_%s_input_0.pb", name, cases[i]);
        snprintf(out, sizeof out, "conv/%s_%s_output_0.pb", name, cases[i]);
        qkv_tensor x, want;
        tu_read_pb(tu_data(in), &x);
        tu_read_pb(tu_data(out), &want);
        cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s case %s: %s", name, cases[i],
                     err.message);
        tu_assert_close(qkv_context_output(c, 0), &want, RTOL, ATOL);
        qkv_tensor_data_free(&x);
        qkv_tensor_data_free(&want);
    }
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static void run_all_ways(const char *name)
{
    for (size_t threads = 1; threads <= 2; threads++) {
        run_model(name, "cpu", threads);
        run_model(name, NULL, threads); /* every backend: a plugin's GEMM service */
    }
}

Test(conv_models, wav2vec2_feature_extractor_and_positional_conv) { run_all_ways("w2v_front"); }

Test(conv_models, vision_stem_with_depthwise_pointwise_and_transposed_convs)
{
    run_all_ways("conv_stem");
}

Test(conv_models, conformer_convolution_module) { run_all_ways("conformer"); }

Test(conv_models, video_tubelet_embedding_3d) { run_all_ways("video"); }
