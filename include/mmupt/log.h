/* Rank-tagged logging on stderr.
 *
 * Every line carries the rank and the time since the logger started, so interleaved output of many
 * MPI ranks can still be read:  "[r1 +12.345s] warn: ring buffer full, rollout waits".
 * The context is explicit (no global logger): each role, test or tool owns one.
 */
#ifndef MMUPT_LOG_H
#define MMUPT_LOG_H

#include <stdio.h>

#include "mmupt/err.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

struct log_ctx {
    enum log_level level; /* messages below this level are dropped */
    int rank;             /* printed in every line */
    int only_rank0;       /* when set, ranks other than 0 print only warnings and errors */
    FILE *stream;         /* stderr unless a test redirects it */
    double t0;            /* monotonic seconds at log_init */
};

void log_init(struct log_ctx *lg, enum log_level level, int rank, FILE *stream);

/* Parse "debug" | "info" | "warn" | "error" | "off"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(const struct log_ctx *lg, enum log_level level, const char *fmt, ...) MMUPT_PRINTF(3, 4);

#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define log_error(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)

/* Monotonic wall clock in seconds (CLOCK_MONOTONIC): for timings and log stamps. */
double mmupt_now(void);

#endif
