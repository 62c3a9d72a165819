/* Structured metrics as JSON Lines: one object per record, one record per line, flushed at once so
 * `tail -f` and plotting scripts see a step as soon as it ends and a crash loses at most one line.
 *
 *   {"step": 12, "time": 3.52, "reward/mean": 0.61, "phase": "train"}
 *
 * Non-finite numbers are written as null (JSON has no NaN). The file is opened for append, so a
 * resumed run continues the same history.
 */
#ifndef MMUPT_METRICS_H
#define MMUPT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "mmupt/err.h"

struct metrics_writer {
    FILE *f;
    char *line;     /* the record being built */
    size_t len, cap;
    int n_fields;   /* fields in the current record, to place commas */
    int open_record;
};

/* Open `path` for append ("-" means stdout). */
int metrics_open(struct metrics_writer *w, const char *path, struct mmupt_err *err);
void metrics_close(struct metrics_writer *w);

void metrics_begin(struct metrics_writer *w);
void metrics_i64(struct metrics_writer *w, const char *key, int64_t value);
void metrics_f64(struct metrics_writer *w, const char *key, double value);
void metrics_str(struct metrics_writer *w, const char *key, const char *value);
/* Write the record as one line and flush; -1 with err set when the write fails (disk full). */
int metrics_end(struct metrics_writer *w, struct mmupt_err *err);

/* Append `s` to `out` as a JSON string literal (quotes, escapes, invalid UTF-8 as U+FFFD).
 * Shared by every module that writes JSON. Returns the new length, growing *out as needed. */
size_t json_append_string(char **out, size_t *len, size_t *cap, const char *s);

#endif
