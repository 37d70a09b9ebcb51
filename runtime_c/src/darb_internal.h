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

/* The output stage of the int8 matrix kernels (darb_mm_s8, darb_fc_s8_tile), split into what a row needs once (for all its pixels)
 * and what each output needs; the same integers as darb_output_s8_fast in
 * fewer instructions. A row shifts left or right, never both. Left (right =
 * 0): (x * m + 2^30) >> 31 with x = acc << left. Right: with high = (acc * m
 * + 2^30) >> 31, darb_requantize_fast's (high + 2^(right-1) - (high < 0)) >>
 * right equals
 *     (acc * m + 2^30 + 2^(30 + right) - (acc < 0) * 2^31) >> (31 + right)
 * (a floor of a floor is one floor; high < 0 exactly when acc * m < -2^30,
 * and when -2^30 <= acc * m < 0 both forms give 0): one 64-bit constant
 * k = 2^30 + 2^(30 + right) per row, one multiply-accumulate per output, and
 * its high word shifted right by right - 1. */
typedef struct {
    int32_t multiplier;
    uint32_t left;                  /* 0 .. 30 */
    uint32_t right;                 /* 0 .. 31 */
    uint32_t k_lo;                  /* k, when right > 0 */
    int32_t k_hi;
} darb_mm_row;

typedef struct {
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int8_t *lut;
} darb_mm_post;

static inline darb_mm_row darb_mm_row_of(const darb_quant_s8 *quant, uint32_t r)
{
    darb_mm_row q;
    const uint32_t s = r & quant->scale_mask;
    const int32_t shift = quant->shift[s];
    uint64_t k;
    q.multiplier = quant->multiplier[s];
    q.left = shift > 0 ? (uint32_t)shift : 0u;
    q.right = shift > 0 ? 0u : (uint32_t)-shift;
    k = (uint64_t)(1u + (1u << q.right)) << 30;     /* 2^30 + 2^(30 + right) */
    q.k_lo = (uint32_t)k;
    q.k_hi = (int32_t)(k >> 32);
    return q;
}

static inline darb_mm_post darb_mm_post_of(const darb_quant_s8 *quant)
{
    darb_mm_post post;
    post.output_offset = quant->output_offset;
    post.act_min = quant->act_min;
    post.act_max = quant->act_max;
    post.lut = quant->lut;
    return post;
}

static inline int8_t darb_mm_out(int32_t acc, const darb_mm_row *q, const darb_mm_post *post)
{
    int32_t v;
    if (q->right == 0u) {
        const int32_t x = (int32_t)((uint32_t)acc << q->left);
        v = (int32_t)(((int64_t)x * q->multiplier + ((int64_t)1 << 30)) >> 31);
    } else {
        int64_t t = (int64_t)(((uint64_t)(uint32_t)q->k_hi << 32) | q->k_lo);
        t -= (int64_t)((uint32_t)acc & 0x80000000u);
        t += (int64_t)acc * q->multiplier;
        v = (int32_t)(t >> 32) >> (q->right - 1u);
    }
    v += post->output_offset;
    v = v < post->act_min ? post->act_min : v;
    v = v > post->act_max ? post->act_max : v;
    if (post->lut != 0) {
        v = post->lut[v + 128];
    }
    return (int8_t)v;
}

#endif /* DARB_INTERNAL_H */
