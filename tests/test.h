/* A minimal test harness: CHECK records a failure with file:line and goes on, RUN runs a test
 * function, and test_summary prints the plain "N passed, N failed" line and gives the exit status.
 * Exit status 77 tells meson a test was skipped. */
#ifndef MMUPT_TEST_H
#define MMUPT_TEST_H

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmupt/strutil.h"

struct test_state {
    int passed, failed;
    int current_failed;
};

#define TEST_SKIP 77

#define CHECK(ts, cond)                                                               \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            (ts)->current_failed = 1;                                                 \
        }                                                                             \
    } while (0)

#define CHECK_MSG(ts, cond, ...)                                                      \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            (ts)->current_failed = 1;                                                 \
        }                                                                             \
    } while (0)

#define CHECK_CONTAINS(ts, haystack, needle)                                          \
    CHECK_MSG(ts, strstr((haystack), (needle)) != NULL, "'%s' not in '%s'", (needle), (haystack))

#define RUN(ts, fn) RUN_CALL(ts, fn, fn(ts))
/* RUN for a test that takes a context argument (a fixture struct), reported under fn's name. */
#define RUN_WITH(ts, fn, ctx) RUN_CALL(ts, fn, fn(ts, ctx))
#define RUN_CALL(ts, fn, call)                                                        \
    do {                                                                              \
        (ts)->current_failed = 0;                                                     \
        call;                                                                         \
        if ((ts)->current_failed) {                                                   \
            (ts)->failed++;                                                           \
            fprintf(stderr, "not ok - %s\n", #fn);                                    \
        } else {                                                                      \
            (ts)->passed++;                                                           \
            printf("ok - %s\n", #fn);                                                 \
        }                                                                             \
    } while (0)

/* Runs fn(ctx) in a child process with its stderr captured into msg (cap bytes, NUL-terminated);
 * returns the child's wait status. For tests of fatal errors: the message and the death are the
 * behaviour under test. */
static inline int test_in_child(void (*fn)(void *), void *ctx, char *msg, size_t cap)
{
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        fn(ctx);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd[0], msg + got, cap - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* The relative error of a whole tensor, max |a - b| / max |b| (max |a - b| when b is all zero):
 * elementwise relative error is meaningless for values near zero. A NaN anywhere counts as infinite. */
static inline double test_rel_err(const float *a, const float *b, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) d = INFINITY;
        if (d > num) num = d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* Run `MMUPT SUB ARGS` through the shell (ARGS is pasted as is) with stdout discarded and stderr
 * captured via DIR/stderr.txt: returns the exit status (-1 if it did not exit), and stderr in
 * *errtext (caller frees). For tests of a subcommand's command line. */
static inline int test_run_mmupt(const char *mmupt, const char *dir, const char *sub, const char *args, char **errtext)
{
    char cmd[8192], errpath[4200];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s %s 2>'%s' >/dev/null", mmupt, sub, args, errpath);
    int st = system(cmd);
    size_t len;
    struct mmupt_err err;
    if (file_read_all(errpath, 1 << 20, errtext, &len, &err)) *errtext = strdup("");
    unlink(errpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Remove a scratch directory and the files directly in it (tests make flat ones). */
static inline void test_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* RUN for a test that takes one argument (a fixture path), reported under that argument. */
#define RUN_ON(ts, fn, arg)                                                           \
    do {                                                                              \
        (ts)->current_failed = 0;                                                     \
        fn(ts, arg);                                                                  \
        if ((ts)->current_failed) {                                                   \
            (ts)->failed++;                                                           \
            fprintf(stderr, "not ok - %s %s\n", #fn, (arg));                          \
        } else {                                                                      \
            (ts)->passed++;                                                           \
            printf("ok - %s %s\n", #fn, (arg));                                       \
        }                                                                             \
    } while (0)

static inline int test_summary(const struct test_state *ts)
{
    printf("%d passed, %d failed\n", ts->passed, ts->failed);
    return ts->failed ? 1 : 0;
}

#endif
