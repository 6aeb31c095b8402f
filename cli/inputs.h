/*
 * inputs.h - the model inputs of `qkv run` and `qkv bench`: each one read
 * from a file (--input NAME=FILE) or filled with seeded random data of the
 * shape --shape gives (or the model's own dims).
 */
#ifndef QKV_CLI_INPUTS_H
#define QKV_CLI_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* What the command line asked for. */
typedef struct qkv_cli_input_spec {
    const char *const *input_args; /* "NAME=FILE", from --input */
    size_t n_input_args;
    const qkv_cli_shape *shapes; /* from --shape */
    size_t n_shapes;
    int random;    /* fill inputs without --input with random data */
    uint64_t seed; /* seed of that data */
} qkv_cli_input_spec;

/* The inputs of one model, in qkv_model_input order. */
typedef struct qkv_cli_inputs {
    qkv_tensor *tensors;  /* count entries; each owns its data */
    const char **sources; /* per input: the FILE it came from (points into argv), NULL if random */
    size_t count;
} qkv_cli_inputs;

/*
 * Checks that every --shape names an input or symbolic dim and every --input
 * an input, reads the files, fills the other inputs with random data when
 * spec->random (otherwise an input without --input is an error), and prints
 * one line per input on stdout:
 *     input NAME: DTYPE [DIMS] from FILE
 *     input NAME: DTYPE [DIMS] random (seed S)
 * Random data: floats uniform in [-1, 1), integers uniform in [0, 10), bools
 * 0 or 1 (splitmix64 from the seed, inputs filled in model order).
 * Returns QKV_EXIT_OK with *out filled (free it with qkv_cli_inputs_free), or
 * QKV_EXIT_FAILURE after printing the one-line error (*out is then empty).
 */
int qkv_cli_inputs_load(const qkv_model *model, const qkv_cli_input_spec *spec,
                        qkv_cli_inputs *out);

/* Frees the tensors and arrays of in and empties it; in may be empty. */
void qkv_cli_inputs_free(qkv_cli_inputs *in);

/* Checks the syntax of an --input value (NAME=FILE with a non-empty NAME).
 * Returns QKV_EXIT_OK, or prints the usage error and returns QKV_EXIT_USAGE. */
int qkv_cli_check_input_arg(const char *value, const char *usage);

#endif /* QKV_CLI_INPUTS_H */
