/* Element conversions: half formats to and from float32, and whole tensors to float32 / int64.
 * Tensor data may sit at any byte offset in a file, so every element is loaded with memcpy
 * (which compiles to a plain load where the target allows unaligned access). */
#include <string.h>

#include "internal.h"
#include "mmupt/bf16.h"

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

float st_bf16_to_f32(uint16_t h)
{
    return bf16_to_f32(h);
}

uint16_t st_f32_to_bf16(float f)
{
    return bf16_from_f32(f);
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf, NaN (payload kept) */
    if (exp == 0) {
        /* Zero or subnormal: man * 2^-24, exact in float32. */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

static int check_numel(const struct st_tensor *t, int64_t numel, struct mmupt_err *err)
{
    if (numel != t->numel)
        return mmupt_fail(err, "%s: tensor '%.200s': has %lld elements, expected %lld", t->file, t->name,
                          (long long)t->numel, (long long)numel);
    return 0;
}

/* Loads of one element of each width from an unaligned address. */
static uint16_t load16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t load32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t load64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int st_copy_f32(const struct st_tensor *t, float *out, int64_t numel, struct mmupt_err *err)
{
    if (check_numel(t, numel, err)) return -1;
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        if (t->nbytes) memcpy(out, p, t->nbytes);
        return 0;
    case ST_BF16:
#pragma omp parallel for schedule(static) if (numel > (1 << 20))
        for (int64_t i = 0; i < numel; i++) out[i] = st_bf16_to_f32(load16(p + 2 * i));
        return 0;
    case ST_F16:
#pragma omp parallel for schedule(static) if (numel > (1 << 20))
        for (int64_t i = 0; i < numel; i++) out[i] = st_f16_to_f32(load16(p + 2 * i));
        return 0;
    case ST_F64:
        for (int64_t i = 0; i < numel; i++) {
            uint64_t b = load64(p + 8 * i);
            double d;
            memcpy(&d, &b, sizeof d);
            out[i] = (float)d;
        }
        return 0;
    default:
        return mmupt_fail(err, "%s: tensor '%.200s': dtype %s is not a float type", t->file, t->name,
                          st_dtype_name(t->dtype));
    }
}

int st_copy_i64(const struct st_tensor *t, int64_t *out, int64_t numel, struct mmupt_err *err)
{
    if (check_numel(t, numel, err)) return -1;
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case ST_I64:
        if (t->nbytes) memcpy(out, p, t->nbytes);
        return 0;
    case ST_I32:
        for (int64_t i = 0; i < numel; i++) out[i] = (int32_t)load32(p + 4 * i);
        return 0;
    case ST_I16:
        for (int64_t i = 0; i < numel; i++) out[i] = (int16_t)load16(p + 2 * i);
        return 0;
    case ST_I8:
        for (int64_t i = 0; i < numel; i++) out[i] = (int8_t)p[i];
        return 0;
    case ST_U8:
        for (int64_t i = 0; i < numel; i++) out[i] = p[i];
        return 0;
    case ST_BOOL:
        for (int64_t i = 0; i < numel; i++) out[i] = p[i] != 0;
        return 0;
    default:
        return mmupt_fail(err, "%s: tensor '%.200s': dtype %s is not an integer type", t->file, t->name,
                          st_dtype_name(t->dtype));
    }
}
