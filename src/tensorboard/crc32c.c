/* CRC32C (Castagnoli polynomial), the checksum of TFRecord files. Reflected form, table-driven
 * one byte at a time: a training run writes a few hundred bytes per step, so speed is moot. */
#include "tb_internal.h"

/* 0x1EDC6F41 bit-reversed: the reflected algorithm shifts right, so the polynomial is reversed. */
#define TB_CRC32C_POLY_REFLECTED 0x82F63B78u

void tb_crc32c_init(struct tb_crc32c_table *tab)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ TB_CRC32C_POLY_REFLECTED : c >> 1;
        tab->t[i] = c;
    }
}

uint32_t tb_crc32c(const struct tb_crc32c_table *tab, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu; /* standard CRC-32 pre- and post-inversion */
    for (size_t i = 0; i < n; i++) c = tab->t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tb_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}
