/* Shared inside src/report: the JSON member getters of the run files' parsers, whose messages name
 * the file and the key path ("RUN/seed-1/base.json: overall.items: missing"). */
#ifndef MMUPT_REPORT_INTERNAL_H
#define MMUPT_REPORT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "mmupt/err.h"

/* o[key] as a non-negative JSON integer; `path` is o's place in the file ("counts"). */
int report_get_count(const json_t *o, const char *key, int64_t *out, const char *name, const char *path,
                     struct mmupt_err *err);
/* o[key] as an object, or NULL with err set. */
const json_t *report_get_object(const json_t *o, const char *key, const char *name, struct mmupt_err *err);

#endif
