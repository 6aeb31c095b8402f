/*
 * test_omitted_inputs.c - the host's check of inputs given as "" (omitted)
 * among the first min_inputs of a kernel (qkv_kernel_check_io), and how a
 * descriptor from before ABI 1.4, which has no omittable_inputs, is read.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "node_eval.h"
#include "registry.h"

static qkv_status compute_nothing(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

/* A 3-input kernel "Probe" whose first 2 inputs are required. */
static qkv_kernel probe(uint64_t omittable)
{
    return (qkv_kernel){.struct_size = sizeof(qkv_kernel),
                        .abi_version = QKV_ABI_VERSION,
                        .domain = "test",
                        .op_type = "Probe",
                        .since_version = 1,
                        .min_inputs = 2,
                        .max_inputs = 3,
                        .min_outputs = 1,
                        .max_outputs = 1,
                        .compute = compute_nothing,
                        .omittable_inputs = omittable};
}

/* Registers k, then checks a node whose inputs are `ids` (-1: omitted). */
static qkv_status check(const qkv_kernel *k, const int32_t ids[3], qkv_error *err)
{
    qkv_registry *reg = qkv_registry_create();
    cr_assert_not_null(reg);
    cr_assert_eq(qkv_registry_add(reg, k, "test", err), QKV_OK, "%s", err->message);
    const qkv_kernel *copy = qkv_registry_find(reg, "test", "Probe", 1, NULL);
    cr_assert_not_null(copy);
    int32_t in[3], out[1] = {3};
    memcpy(in, ids, sizeof in);
    qkv_ir_node node = {.name = (char *)"probe",
                        .op_type = (char *)"Probe",
                        .domain = (char *)"test",
                        .opset = 1,
                        .n_inputs = 3,
                        .inputs = in,
                        .n_outputs = 1,
                        .outputs = out};
    qkv_tensor t[3];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 3; i++) {
        t[i].dtype = ids[i] < 0 ? QKV_DTYPE_UNDEFINED : QKV_DTYPE_FLOAT;
        t[i].rank = ids[i] < 0 ? -1 : 0;
    }
    qkv_status st = qkv_kernel_check_io(copy, &node, t, err);
    qkv_registry_destroy(reg);
    return st;
}

Test(omitted_inputs, a_required_input_given_as_empty_is_refused_naming_it)
{
    qkv_kernel k = probe(0);
    qkv_error err;
    cr_assert_eq(check(&k, (int32_t[]){0, -1, 2}, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'probe'") && strstr(err.message, "input 1 is omitted"), "%s",
              err.message);
}

Test(omitted_inputs, an_optional_input_after_the_required_ones_may_be_omitted)
{
    qkv_kernel k = probe(0);
    qkv_error err;
    cr_assert_eq(check(&k, (int32_t[]){0, 1, -1}, &err), QKV_OK, "%s", err.message);
}

Test(omitted_inputs, an_input_the_kernel_marks_omittable_passes)
{
    qkv_kernel k = probe(1u << 1);
    qkv_error err;
    cr_assert_eq(check(&k, (int32_t[]){0, -1, 2}, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(check(&k, (int32_t[]){-1, 1, 2}, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "input 0 is omitted"), "%s", err.message);
}

/* A 1.3 plugin's descriptor ends before omittable_inputs: the host must not
 * read past it, and leaves omitted inputs to that kernel as 1.3 hosts did. */
Test(omitted_inputs, a_descriptor_from_before_1_4_keeps_the_old_behaviour)
{
    _Alignas(qkv_kernel) unsigned char bytes[sizeof(qkv_kernel) + 8];
    memset(bytes, 0xab, sizeof bytes); /* what lies past a shorter struct */
    qkv_kernel k = probe(0);
    k.struct_size = (uint32_t)offsetof(qkv_kernel, omittable_inputs);
    k.abi_version = (uint32_t)QKV_ABI_MAJOR << 16 | 3u;
    memcpy(bytes, &k, k.struct_size);
    qkv_error err;
    cr_assert_eq(check((const qkv_kernel *)(void *)bytes, (int32_t[]){0, -1, 2}, &err), QKV_OK,
                 "%s", err.message);
}
