/* Hand-written protocol-buffer encoding of the two tensorflow.Event messages mmupt writes, and
 * their TFRecord framing.
 *
 * Wire format facts used here: every field starts with a key varint (field_number << 3 | wire_type);
 * wire type 0 is a varint, 1 a little-endian 64-bit value, 2 a length-delimited byte string (strings
 * and nested messages), 5 a little-endian 32-bit value. Field numbers (tensorflow event.proto and
 * summary.proto): Event.wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
 * summary = 5 (Summary); Summary.value = 1 (repeated Value); Value.tag = 1 (string),
 * simple_value = 2 (float). */
#include <string.h>

#include "tb_internal.h"

enum tb_wire { TB_WIRE_VARINT = 0, TB_WIRE_FIXED64 = 1, TB_WIRE_BYTES = 2, TB_WIRE_FIXED32 = 5 };

static void put_byte(struct tb_buf *b, uint8_t v)
{
    MMUPT_CHECK(b->len < b->cap);
    b->p[b->len++] = v;
}

static void put_bytes(struct tb_buf *b, const void *data, size_t n)
{
    MMUPT_CHECK(n <= b->cap - b->len);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void tb_put_varint(struct tb_buf *b, uint64_t v)
{
    /* Seven bits per byte, least significant group first, high bit set on all but the last. */
    while (v >= 0x80) {
        put_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(b, (uint8_t)v);
}

void tb_put_fixed32(struct tb_buf *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) put_byte(b, (uint8_t)(v >> (8 * i)));
}

void tb_put_fixed64(struct tb_buf *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) put_byte(b, (uint8_t)(v >> (8 * i)));
}

static void put_key(struct tb_buf *b, unsigned field, enum tb_wire wire)
{
    tb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

static void put_double_field(struct tb_buf *b, unsigned field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits); /* the IEEE-754 bits; written little-endian whatever the host */
    put_key(b, field, TB_WIRE_FIXED64);
    tb_put_fixed64(b, bits);
}

static void put_float_field(struct tb_buf *b, unsigned field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_key(b, field, TB_WIRE_FIXED32);
    tb_put_fixed32(b, bits);
}

static void put_bytes_field(struct tb_buf *b, unsigned field, const void *data, size_t n)
{
    put_key(b, field, TB_WIRE_BYTES);
    tb_put_varint(b, n);
    put_bytes(b, data, n);
}

void tb_encode_version_event(struct tb_buf *b, double wall_time)
{
    static const char version[] = "brain.Event:2";
    put_double_field(b, 1, wall_time);
    put_bytes_field(b, 3, version, sizeof version - 1);
}

void tb_encode_scalar_event(struct tb_buf *b, double wall_time, int64_t step, const char *tag, float value)
{
    /* Nested messages are length-prefixed, so encode inside out: Value, then Summary around it. */
    uint8_t value_mem[TB_EVENT_MAX], summary_mem[TB_EVENT_MAX];
    struct tb_buf val = {value_mem, 0, sizeof value_mem};
    put_bytes_field(&val, 1, tag, strlen(tag));
    put_float_field(&val, 2, value);

    struct tb_buf sum = {summary_mem, 0, sizeof summary_mem};
    put_bytes_field(&sum, 1, val.p, val.len);

    put_double_field(b, 1, wall_time);
    put_key(b, 2, TB_WIRE_VARINT);
    tb_put_varint(b, (uint64_t)step); /* int64: negative steps take ten bytes, two's complement */
    put_bytes_field(b, 5, sum.p, sum.len);
}

void tb_frame_record(struct tb_buf *b, const struct tb_crc32c_table *tab, const uint8_t *data, size_t n)
{
    size_t len_at = b->len;
    tb_put_fixed64(b, (uint64_t)n);
    tb_put_fixed32(b, tb_crc32c_mask(tb_crc32c(tab, b->p + len_at, 8)));
    put_bytes(b, data, n);
    tb_put_fixed32(b, tb_crc32c_mask(tb_crc32c(tab, data, n)));
}
