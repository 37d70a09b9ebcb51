/*
 * darb_internal.h - helpers shared by the runtime kernels (not public API).
 */
#ifndef DARB_INTERNAL_H
#define DARB_INTERNAL_H

#include <stdint.h>

#include "darb.h"

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
