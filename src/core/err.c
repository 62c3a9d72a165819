/* The error convention (see err.h): input errors fill a struct, fatal errors end the job. */
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/strutil.h"

int mmupt_fail(struct mmupt_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void mmupt_err_prefix(struct mmupt_err *err, const char *fmt, ...)
{
    if (!err) return;
    char joined[2 * MMUPT_ERR_MSG_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, MMUPT_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = strlen(joined);
    joined[len++] = ':';
    joined[len++] = ' ';
    memcpy(joined + len, err->msg, MMUPT_ERR_MSG_MAX);
    joined[len + MMUPT_ERR_MSG_MAX - 1] = '\0';
    str_copy(err->msg, sizeof err->msg, joined); /* a message too long is cut, never overflowed */
}

static int mpi_running(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

int mmupt_world_rank(void)
{
    if (mpi_running()) {
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        return rank;
    }
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

void mmupt_die_at(const char *file, int line, const char *fmt, ...)
{
    char msg[MMUPT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mmupt: [rank %d] %s:%d: fatal: %s\n", mmupt_world_rank(), file, line, msg);
    fflush(stderr);
    if (mpi_running()) {
        int size = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        /* With several ranks, exiting one would leave the others blocked in a collective. */
        if (size > 1) MPI_Abort(MPI_COMM_WORLD, MMUPT_EXIT_FATAL);
    }
    exit(MMUPT_EXIT_FATAL);
}

void *mmupt_xmalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) mmupt_die_at(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *mmupt_xcalloc_at(size_t count, size_t size, const char *file, int line)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) mmupt_die_at(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}
