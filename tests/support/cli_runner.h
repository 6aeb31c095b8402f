/*
 * cli_runner.h - running the qkv CLI (and python) as subprocesses from the
 * CLI tests, with stdout and stderr captured. Each Criterion test is its own
 * process, so the test directory is one global per process.
 */
#ifndef QKV_CLI_RUNNER_H
#define QKV_CLI_RUNNER_H

#include <stddef.h>

typedef struct cli_result {
    int code;        /* exit status */
    char *out, *err; /* captured stdout and stderr (free with cli_result_free) */
} cli_result;

/* The current test's directory (made by cli_setup). */
extern char *cli_tmp;

/* Runs argv[0] with argv; stdout and stderr captured. Fails the test if the
 * process dies from a signal. */
cli_result cli_spawn(char *const argv[]);
/* Runs qkv with the NULL-terminated arguments; "@/" in an argument is
 * replaced by the test directory. */
cli_result cli_qkv(const char *first, ...);
void cli_result_free(cli_result *r);
/* Runs python -c script cli_tmp [arg]; asserts it succeeds. */
void cli_python(const char *script, const char *arg);
/* Makes cli_tmp from a mkdtemp template and runs make_files (python) in it. */
void cli_setup(const char *dir_template, const char *make_files);
/* Removes cli_tmp. */
void cli_teardown(void);
/* Newlines in s. */
size_t cli_count_lines(const char *s);

#endif /* QKV_CLI_RUNNER_H */
