/* cli_runner.c - see cli_runner.h. */
#include "cli_runner.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define QKV QKV_BINARY_DIR "/qkv"

char *cli_tmp;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            s = realloc(s, cap *= 2);
    }
    fclose(f);
    s[n] = '\0';
    return s;
}

/* Runs argv[0] with argv; stdout and stderr captured. Fails the test if the
 * process dies from a signal. */
cli_result cli_spawn(char *const argv[])
{
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/.stdout", cli_tmp);
    snprintf(err_path, sizeof err_path, "%s/.stderr", cli_tmp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s", argv[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "%s died from signal %d", argv[0],
              WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    cli_result r = {WEXITSTATUS(status), read_all(out_path), read_all(err_path)};
    return r;
}

/* Runs qkv with the NULL-terminated arguments; "@/" in an argument is
 * replaced by the test directory. */
cli_result cli_qkv(const char *first, ...)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)QKV;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) {
        const char *at = strstr(a, "@/");
        if (at) {
            size_t len = strlen(a) + strlen(cli_tmp) + 1;
            char *s = malloc(len);
            snprintf(s, len, "%.*s%s/%s", (int)(at - a), a, cli_tmp, at + 2);
            argv[n++] = s;
        } else {
            argv[n++] = strdup(a);
        }
    }
    va_end(ap);
    argv[n] = NULL;
    cli_result r = cli_spawn(argv);
    for (int i = 1; i < n; i++)
        free(argv[i]);
    return r;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs python -c script cli_tmp [arg]; asserts it succeeds. */
void cli_python(const char *script, const char *arg)
{
    char *argv[] = {(char *)QKV_PYTHON, (char *)"-c", (char *)script, cli_tmp, (char *)arg, NULL};
    cli_result r = cli_spawn(argv);
    cr_assert_eq(r.code, 0, "python failed: %s", r.err);
    cli_result_free(&r);
}

void cli_setup(const char *dir_template, const char *make_files)
{
    cli_tmp = strdup(dir_template);
    cr_assert_not_null(mkdtemp(cli_tmp));
    cli_python(make_files, NULL);
}

void cli_teardown(void)
{
    char *argv[] = {(char *)"/bin/rm", (char *)"-rf", cli_tmp, NULL};
    pid_t pid;
    int status;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0)
        waitpid(pid, &status, 0);
    free(cli_tmp);
}

size_t cli_count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}
