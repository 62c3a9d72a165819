/* Shared between the files of the safetensors module; not part of the public API. */
#ifndef MMUPT_SAFETENSORS_INTERNAL_H
#define MMUPT_SAFETENSORS_INTERNAL_H

#include <stdbool.h>

#include "mmupt/safetensors.h"

/* Tensor names can be as long as a header allows; messages show at most this many characters of
 * one, so the complaint after the name is never cut off. */
#define ST_NAME_SHOWN 200

/* Parse the file image of set->files[file_idx] (buf, len) and append its tensors to the set,
 * unsorted. Its __metadata__ goes into the set when want_meta is true. */
int st_parse_image(struct st_set *set, size_t file_idx, const unsigned char *buf, size_t len, bool want_meta,
                   struct mmupt_err *err);

/* Add a file to the set (copies path; map may be NULL) and return its index. */
size_t st_add_file(struct st_set *set, const char *path, void *map, size_t map_len);

/* Sort the tensors by name; a name present twice (only possible across shards) is an error. */
int st_sort_tensors(struct st_set *set, struct mmupt_err *err);

/* Look a dtype up by its header name; -1 when unknown. */
int st_dtype_parse(const char *name);

/* realloc that dies on exhaustion, like mmupt_xmalloc. */
void *st_xrealloc(void *p, size_t n);

#endif
