/* Error reporting: the one convention every module follows.
 *
 * Two kinds of failure, two paths:
 *   - Bad input (a config, a file, a model output) is normal. Functions that read input return 0 on
 *     success and -1 on failure, and fill a caller-owned `struct mmupt_err` with a message that
 *     names the place: "run.yaml:3:5: optim.lr: expected a number, got 'fast'". They never exit,
 *     never print, and leave everything the caller already had intact. The CLI decides what to do.
 *   - Broken invariants and exhausted resources (out of memory, a CUDA call failing) are fatal:
 *     MMUPT_DIE / MMUPT_CHECK print "mmupt: [rank R] file.c:LINE: message" on stderr and end the
 *     whole job (MPI_Abort when MPI runs with more than one rank, so no rank hangs in a collective).
 */
#ifndef MMUPT_ERR_H
#define MMUPT_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMUPT_ERR_MSG_MAX 1024

struct mmupt_err {
    char msg[MMUPT_ERR_MSG_MAX];
};

/* Exit codes of the mmupt binary, documented in docs/design.md. */
enum mmupt_exit {
    MMUPT_EXIT_OK = 0,
    MMUPT_EXIT_ERROR = 1,            /* bad input, I/O failure: the message says which */
    MMUPT_EXIT_USAGE = 2,            /* bad command line */
    MMUPT_EXIT_NOT_IMPLEMENTED = 3,  /* the subcommand exists in the design but not in this build */
    MMUPT_EXIT_PREEMPTED = 75,       /* stopped by SIGUSR1/SIGTERM after saving a checkpoint (EX_TEMPFAIL):
                                      * requeue the job and it resumes */
    MMUPT_EXIT_FATAL = 70,           /* internal error (EX_SOFTWARE): a bug or an exhausted resource */
};

#if defined(__GNUC__)
#define MMUPT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MMUPT_NORETURN __attribute__((noreturn))
#else
#define MMUPT_PRINTF(a, b)
#define MMUPT_NORETURN
#endif

/* Set err's message (printf-style) and return -1, so input code can write `return mmupt_fail(...)`. */
int mmupt_fail(struct mmupt_err *err, const char *fmt, ...) MMUPT_PRINTF(2, 3);

/* Put "prefix: " in front of an existing message (adds context as an error travels up). */
void mmupt_err_prefix(struct mmupt_err *err, const char *fmt, ...) MMUPT_PRINTF(2, 3);

/* The world rank of this process: MPI's when MPI is initialised, else the launcher's environment
 * (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID), else 0. Derived every call: no global state. */
int mmupt_world_rank(void);

/* Fatal path: print with rank and source location, then MPI_Abort (multi-rank) or exit. */
MMUPT_NORETURN void mmupt_die_at(const char *file, int line, const char *fmt, ...) MMUPT_PRINTF(3, 4);

#define MMUPT_DIE(...) mmupt_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define MMUPT_CHECK(cond)                                                \
    do {                                                                 \
        if (!(cond)) mmupt_die_at(__FILE__, __LINE__, "check failed: %s", #cond); \
    } while (0)

/* Allocation that cannot fail silently: dies with the size and call site on exhaustion. */
void *mmupt_xmalloc_at(size_t n, const char *file, int line);
void *mmupt_xcalloc_at(size_t count, size_t size, const char *file, int line);
#define mmupt_xmalloc(n) mmupt_xmalloc_at((n), __FILE__, __LINE__)
#define mmupt_xcalloc(c, s) mmupt_xcalloc_at((c), (s), __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
