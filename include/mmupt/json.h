/* JSON through jansson, with errors in the project's convention ("file:line:col: message").
 * Typed getters name the file and the key path in their messages, so callers can write
 *   if (json_get_int(cfg, "hidden_size", &h, ctx, err)) return -1;
 */
#ifndef MMUPT_JSON_H
#define MMUPT_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

/* Parse text (len bytes, need not be NUL-terminated); `name` is used in messages. Rejects
 * duplicate object keys. The caller json_decref()s *out. */
int json_parse_text(const char *name, const char *text, size_t len, json_t **out, struct mmupt_err *err);
/* Read and parse a file, refusing files larger than max_bytes. */
int json_parse_file(const char *path, size_t max_bytes, json_t **out, struct mmupt_err *err);

/* Getters: `where` names the file (and object) for messages. A missing key is an error; use
 * json_object_get() directly for optional keys. Integers must be JSON integers; numbers accept
 * integers and reals. */
int json_get_int(const json_t *obj, const char *key, int64_t *out, const char *where, struct mmupt_err *err);
int json_get_number(const json_t *obj, const char *key, double *out, const char *where, struct mmupt_err *err);
int json_get_bool(const json_t *obj, const char *key, int *out, const char *where, struct mmupt_err *err);
int json_get_string(const json_t *obj, const char *key, const char **out, const char *where, struct mmupt_err *err);
/* An array of integers of length at most max; *n receives the length. */
int json_get_int_array(const json_t *obj, const char *key, int64_t *out, int max, int *n, const char *where,
                       struct mmupt_err *err);

#endif
