/* Pieces of the TensorBoard writer that tests check on their own: CRC32C, TFRecord framing and the
 * hand-written protocol-buffer encoder. Not part of the public API (include/mmupt/tensorboard.h). */
#ifndef MMUPT_TB_INTERNAL_H
#define MMUPT_TB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmupt/err.h"
#include "mmupt/tensorboard.h"

/* ---- CRC32C (Castagnoli), crc32c.c ---- */

/* The byte-at-a-time lookup table. Built once per writer rather than kept in a static, so the
 * module has no global state; 1 KiB and 2048 shifts, negligible next to opening a file. */
struct tb_crc32c_table {
    uint32_t t[256];
};

void tb_crc32c_init(struct tb_crc32c_table *tab);
uint32_t tb_crc32c(const struct tb_crc32c_table *tab, const void *data, size_t n);
/* TFRecord stores CRCs "masked" (rotated and offset) because a CRC of data that itself contains
 * CRCs is weak; the mask is fixed by the format. */
uint32_t tb_crc32c_mask(uint32_t crc);

/* ---- protocol-buffer encoding, proto.c ---- */

/* A fixed-capacity output buffer. Events are small and bounded (TB_TAG_MAX), so overflowing it is
 * a bug: the encoder dies rather than returning errors nobody could act on. */
struct tb_buf {
    uint8_t *p;
    size_t len, cap;
};

/* Largest serialized event: tag + the fixed fields, with room to spare. */
#define TB_EVENT_MAX (TB_TAG_MAX + 64)
/* Largest TFRecord: 8 (length) + 4 (its CRC) + data + 4 (data CRC). */
#define TB_RECORD_MAX (TB_EVENT_MAX + 16)

void tb_put_varint(struct tb_buf *b, uint64_t v);
void tb_put_fixed32(struct tb_buf *b, uint32_t v);
void tb_put_fixed64(struct tb_buf *b, uint64_t v);

/* The file's first event: wall_time and file_version "brain.Event:2". */
void tb_encode_version_event(struct tb_buf *b, double wall_time);
/* A scalar event: wall_time, step, summary { value { tag, simple_value } }. */
void tb_encode_scalar_event(struct tb_buf *b, double wall_time, int64_t step, const char *tag, float value);

/* Frame `data` as one TFRecord into b: length, masked CRC of the length, data, masked CRC of data. */
void tb_frame_record(struct tb_buf *b, const struct tb_crc32c_table *tab, const uint8_t *data, size_t n);

/* ---- writer, writer.c ---- */

/* Open a writer on an explicit file path (fopen mode "wb" or "wbx"). tb_open builds the name and
 * calls this; tests use it to aim a writer at /dev/full. */
int tb_open_path(struct tb_writer **w, const char *path, const char *mode, struct mmupt_err *err);

#endif
