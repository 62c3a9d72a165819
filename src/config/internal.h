/* Shared by the files of the config module only. */
#ifndef MMUPT_CONFIG_INTERNAL_H
#define MMUPT_CONFIG_INTERNAL_H

#include "mmupt/config.h"

/* Address of the member that field f describes. */
static inline void *cfg_member(struct cfg *c, const struct cfg_field *f)
{
    return (char *)c + f->offset;
}
static inline const void *cfg_member_const(const struct cfg *c, const struct cfg_field *f)
{
    return (const char *)c + f->offset;
}

/* Replace a list field with the given item texts (each an integer). */
int cfg_set_list(struct cfg *c, const struct cfg_field *f, const char *const *items, size_t n,
                 struct mmupt_err *err);

/* The value of f in c as YAML text that reads back to the same value (strings double-quoted). */
void cfg_format_value(const struct cfg *c, const struct cfg_field *f, char *out, size_t n);

/* Is this plain scalar text YAML's null ("", "~", "null")? */
int cfg_text_is_null(const char *text);

/* Byte length of the section part of a dotted key ("optim.lr" -> 5); the whole length if no dot. */
size_t cfg_section_len(const char *key);

#endif
