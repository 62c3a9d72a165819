/* Small string and file helpers shared by every module. */
#ifndef MMUPT_STRUTIL_H
#define MMUPT_STRUTIL_H

#include <stddef.h>

#include "mmupt/err.h"

/* Trim ASCII white space in place; returns the first non-space character. */
char *str_trim(char *s);

/* Levenshtein distance, capped: returns `cap` + 1 as soon as the distance must exceed `cap`,
 * so comparing against a long key list stays cheap. */
size_t str_edit_distance(const char *a, const char *b, size_t cap);

/* Copy src into dst (size n), always NUL-terminated; returns -1 if it had to cut. */
int str_copy(char *dst, size_t n, const char *src);

/* The shortest "%g" text that reads back (strtod) to exactly v. */
void str_format_double(double v, char *out, size_t n);

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes readable), or 0 if it is not
 * one: overlong forms, surrogates and code points past U+10FFFF are invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* Read a whole regular file into a NUL-terminated heap buffer. Refuses directories, files larger
 * than max_bytes (checked before reading), and unreadable files, with errno's text. */
int file_read_all(const char *path, size_t max_bytes, char **out, size_t *len, struct mmupt_err *err);
/* Write len bytes to path and flush them to disk; on failure the partial file is removed. */
int file_write_all(const char *path, const void *data, size_t len, struct mmupt_err *err);
/* Replace path atomically: file_write_all to PATH.PID.tmp (this process's own, so concurrent
 * writers of one path never share a temporary), then rename over path, so a reader sees the old
 * file or one writer's whole new one, and a failure leaves path as it was. */
int file_write_atomic(const char *path, const void *data, size_t len, struct mmupt_err *err);
/* 1 when dir does not exist or has no entries, 0 when it has some, -1 (err set) when unreadable:
 * the check before writing into an output directory that must not clobber anything. */
int dir_empty_or_missing(const char *dir, struct mmupt_err *err);
/* mkdir -p: dir and its missing parents. Errors name the component that failed and `what` the
 * directory is for ("log directory"); an existing non-directory at dir is an error too. */
int dir_make_all(const char *dir, const char *what, struct mmupt_err *err);

#endif
