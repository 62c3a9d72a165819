/* Rank-tagged console logging (see log.h). */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "mmupt/log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

double mmupt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void log_init(struct log_ctx *lg, enum log_level level, int rank, FILE *stream)
{
    lg->level = level;
    lg->rank = rank;
    lg->only_rank0 = 0;
    lg->stream = stream ? stream : stderr;
    lg->t0 = mmupt_now();
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (level >= LOG_DEBUG && level <= LOG_OFF) ? level_names[level] : "?";
}

void log_msg(const struct log_ctx *lg, enum log_level level, const char *fmt, ...)
{
    if (level < lg->level || level >= LOG_OFF) return;
    if (lg->only_rank0 && lg->rank != 0 && level < LOG_WARN) return;
    /* Build the line first and write it with one call, so lines of ranks sharing a terminal
     * do not interleave mid-line. */
    char line[2048];
    int n = snprintf(line, sizeof line, "[r%d +%.3fs] %s: ", lg->rank, mmupt_now() - lg->t0, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, lg->stream);
    fflush(lg->stream);
}
