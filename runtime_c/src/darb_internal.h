/*
 * darb_internal.h - helpers shared by the runtime kernels (not public API).
 */
#ifndef DARB_INTERNAL_H
#define DARB_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "darb.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1
/* The Armv7E-M / Armv8-M DSP instructions the int8 kernels use (Cortex-M4,
 * M7, M33, M55), one instruction each, as inline assembly: gcc schedules its
 * builtins worse (more register spills) in the unrolled loops. */
#define DARB_HAVE_DSP 1
/* sign-extend bytes 0 and 2 to two int16 halves */
static inline uint32_t darb_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

/* sign-extend bytes 1 and 3 to two int16 halves */
static inline uint32_t darb_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* acc + lo(a) * lo(b) + hi(a) * hi(b), int16 halves */
static inline int32_t darb_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
#endif

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
/* Armv8.1-M MVE (Helium) integer vectors (Cortex-M55). */
#define DARB_HAVE_MVE 1
#include <arm_mve.h>
#endif

/* Four bytes from any address, little-endian: one load where the core allows
 * unaligned loads, four byte loads otherwise (Cortex-M0+; a memcpy call there
 * would cost more than the loads). */
static inline uint32_t darb_load32(const void *p)
{
#if defined(__ARM_FEATURE_UNALIGNED) || defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
#endif
}

/* Bits of an in-block offset 0..b-1: ceil(log2 b), 0 for b = 1. */
static inline uint32_t darb_offset_bits(uint32_t block)
{
    uint32_t bits = 0;
    while ((1u << bits) < block) {
        ++bits;
    }
    return bits;
}

/* Reads the packed offsets of one class, LSB first (docs/format.md). Loads
 * a byte only when it is needed, so it never reads past the class. */
typedef struct {
    const uint8_t *src;
    uint32_t buf;
    uint32_t avail;
    uint32_t bits;
    uint32_t mask;
} darb_bit_reader;

static inline void darb_bits_init(darb_bit_reader *r, const uint8_t *src, uint32_t bits)
{
    r->src = src;
    r->buf = 0u;
    r->avail = 0u;
    r->bits = bits;
    r->mask = (1u << bits) - 1u;
}

static inline uint32_t darb_bits_next(darb_bit_reader *r)
{
    uint32_t value;
    while (r->avail < r->bits) {
        r->buf |= (uint32_t)(*r->src++) << r->avail;
        r->avail += 8u;
    }
    value = r->buf & r->mask;
    r->buf >>= r->bits;
    r->avail -= r->bits;
    return value;
}

/* Where weight column `col` of a convolution reads its input for output
 * pixel (oy, ox): channel, row and column in the (unpadded) input. */
typedef struct {
    int32_t c;
    int32_t iy;
    int32_t ix;
} darb_conv_tap;

static inline darb_conv_tap darb_conv_locate(const darb_conv_geometry *g, uint32_t col, uint32_t oy, uint32_t ox)
{
    const uint32_t per_channel = (uint32_t)g->kh * g->kw;
    const uint32_t c = col / per_channel;
    const uint32_t rest = col - c * per_channel;
    const uint32_t ky = rest / g->kw;
    const uint32_t kx = rest - ky * g->kw;
    darb_conv_tap t;
    t.c = (int32_t)c;
    t.iy = (int32_t)(oy * g->stride_h + ky * g->dil_h) - (int32_t)g->pad_top;
    t.ix = (int32_t)(ox * g->stride_w + kx * g->dil_w) - (int32_t)g->pad_left;
    return t;
}

#endif /* DARB_INTERNAL_H */
