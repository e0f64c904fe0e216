/* safetensors_convert.c - F32, F16 and BF16 tensor bytes to float32. The bytes
 * are little-endian whatever the host, and may be unaligned (offsets in a
 * safetensors file need not be multiples of the element size), so every value
 * is assembled byte by byte. */
#include <math.h>
#include <string.h>

#include "safetensors.h"

static float f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) /* inf or nan: keep the payload's top bits */
        return f32_from_bits(sign | 0x7f800000u | mant << 13);
    if (exp != 0)
        return f32_from_bits(sign | (exp + 112) << 23 | mant << 13);
    /* zero or subnormal: mant * 2^-24, exact in float */
    float v = ldexpf((float)mant, -24);
    return sign ? -v : v;
}

void safetensors_to_f32(const safetensors_tensor_t *t, float *dst)
{
    const uint8_t *p = t->data;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == SAFETENSORS_F32) {
        memcpy(dst, p, (size_t)t->n_elems * sizeof *dst);
        return;
    }
#endif
    for (int64_t i = 0; i < t->n_elems; i++) {
        switch (t->dtype) {
        case SAFETENSORS_F32:
            dst[i] = f32_from_bits((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                   (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
            p += 4;
            break;
        case SAFETENSORS_F16:
            dst[i] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
            p += 2;
            break;
        case SAFETENSORS_BF16:
            dst[i] = f32_from_bits((uint32_t)p[0] << 16 | (uint32_t)p[1] << 24);
            p += 2;
            break;
        case SAFETENSORS_OTHER:
            dst[i] = 0.0f;
            break;
        }
    }
}
