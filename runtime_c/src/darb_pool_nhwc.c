/*
 * darb_pool_nhwc.c - average and max pooling and MEAN over H and W, NHWC images.
 *
 * One output pixel at a time; channels in blocks of DARB_POOL_BLOCK; the
 * window is cut to the image once per pixel (TFLM's filter_{x,y}_{start,end}),
 * so the inner loops run over contiguous channels without tests. The
 * operations on every output value are TFLM's reference kernels' (see
 * darb_ops_spatial.h); darbgen/ops/pool.py is the NumPy twin. The int8
 * kernels have DSP and MVE paths (see "fast paths" below);
 * tests/test_elementwise_fast.py checks them.
 */
#include <float.h>

#include "darb_ops_spatial.h"

#define DARB_POOL_BLOCK 32u

/* The window of one output position along one axis, cut to [0, size). */
typedef struct {
    int32_t origin; /* first input position of the uncut window (may be < 0) */
    uint32_t first; /* window offsets [first, end) lie inside the image */
    uint32_t end;
} darb_pool_span;

static darb_pool_span darb_pool_cut(uint32_t o, uint32_t stride, uint32_t pad, uint32_t k, uint32_t size)
{
    darb_pool_span s;
    const int32_t room = (int32_t)size;
    s.origin = (int32_t)(o * stride) - (int32_t)pad;
    s.first = s.origin < 0 ? (uint32_t)(-s.origin) : 0u;
    s.end = room - s.origin < (int32_t)k ? (uint32_t)(room - s.origin) : k;
    return s;
}

/* Pointer to input (y, x) channel 0. */
static const int8_t *darb_px_s8(const darb_pool_geometry *g, const int8_t *in, int32_t y, int32_t x)
{
    return in + ((uint32_t)y * g->in_w + (uint32_t)x) * g->in_c;
}

static const float *darb_px_f32(const darb_pool_geometry *g, const float *in, int32_t y, int32_t x)
{
    return in + ((uint32_t)y * g->in_w + (uint32_t)x) * g->in_c;
}

/* ---- int8 pooling and MEAN: fast paths ------------------------------------ */

/*
 * On the DSP cores (Cortex-M4, M7, M33) and with MVE (Cortex-M55), without
 * -DDARB_COMPACT, the int8 average and max pooling and MEAN take these
 * paths (the same integers as the loops below them, fewer instructions):
 *
 * - A window's in-image positions are runs (its rows, or one run where the
 *   window spans whole image rows: those rows are contiguous), all of them
 *   in one asm loop with the sums in registers: 16 channels a block with
 *   SXTAB16 (4 channels' bytes added into two registers of two int16
 *   halves) and SSUB8 + SEL (4 maxima a word), 32 channels with VLDRB.S16 +
 *   VADD.I16 and 64 with VLDRB.8 + VMAX.S8; two positions a step. Fewer
 *   channels: 4 a word (DSP), 8 or 16 a predicated vector (MVE), one at a
 *   time (DSP).
 * - Sums are int16 lanes: at most 256 int8 values fit (-128 * 256 =
 *   -32768). A window of more than 256 positions is summed in chunks of at
 *   most 256, each added into int32 sums.
 * - The average's division is TFLM's, without branches (darb_avg_dsp_q,
 *   darb_avg_mve_q): an unsigned division of a biased sum (DSP) or a
 *   multiply-high by ceil(2^32 / n), exact for n <= 256 (MVE); windows of
 *   more than 256 positions divide one value at a time.
 */
#ifndef DARB_COMPACT
#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DARB_POOL_MVE 1
#include <arm_mve.h>
#elif defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1 && \
    defined(__ARM_FEATURE_UNALIGNED)
/* (word loads at any address; not at -O0, where the frame pointer takes a
 * register the asm needs) */
#define DARB_POOL_DSP 1
#include <string.h>
#endif
#endif

#if defined(DARB_POOL_MVE) || defined(DARB_POOL_DSP)

#define DARB_POOL_CHUNK 256u

/* A window's in-image positions: `runs` runs of `len` positions `step`
 * bytes apart (the channels), run r starting at p + r * row_step. */
typedef struct {
    const int8_t *p;
    uint32_t runs;
    uint32_t len;
    uint32_t step;
    uint32_t row_step;
} darb_pool_window;

/* What the asm loops read: the runs (counted down in place). */
typedef struct {
    uint32_t len;
    int32_t gap;        /* bytes from the end of a run to the start of the next */
    uint32_t runs;
} darb_pool_ctl;

static darb_pool_window darb_pool_window_of(const darb_pool_geometry *g, const int8_t *in, darb_pool_span sy,
                                            darb_pool_span sx)
{
    darb_pool_window w;
    const uint32_t nky = sy.end - sy.first;
    const uint32_t nkx = sx.end - sx.first;
    w.p = darb_px_s8(g, in, sy.origin + (int32_t)sy.first, sx.origin + (int32_t)sx.first);
    w.step = g->in_c;
    w.row_step = (uint32_t)g->in_w * g->in_c;
    if (nkx == g->in_w) { /* whole image rows: one run */
        w.runs = 1u;
        w.len = nky * nkx;
    } else {
        w.runs = nky;
        w.len = nkx;
    }
    return w;
}

/* The next chunk of at most DARB_POOL_CHUNK positions (whole runs, or a
 * piece of one long run) after (*r, *pos); 0 when the window is done. */
static int darb_pool_next_chunk(const darb_pool_window *w, uint32_t *r, uint32_t *pos, darb_pool_window *c)
{
    if (*r >= w->runs) {
        return 0;
    }
    *c = *w;
    if (w->len <= DARB_POOL_CHUNK) {
        const uint32_t k = DARB_POOL_CHUNK / w->len;
        c->p = w->p + *r * w->row_step;
        c->runs = k < w->runs - *r ? k : w->runs - *r;
        *r += c->runs;
    } else {
        c->p = w->p + *r * w->row_step + *pos * w->step;
        c->runs = 1u;
        c->len = w->len - *pos < DARB_POOL_CHUNK ? w->len - *pos : DARB_POOL_CHUNK;
        *pos += c->len;
        if (*pos == w->len) {
            *pos = 0u;
            ++*r;
        }
    }
    return 1;
}

static darb_pool_ctl darb_pool_ctl_of(const darb_pool_window *c)
{
    darb_pool_ctl ctl;
    ctl.len = c->len;
    ctl.gap = (int32_t)c->row_step - (int32_t)(c->len * c->step);
    ctl.runs = c->runs;
    return ctl;
}

static inline int8_t darb_pool_clamp(int32_t v, int32_t act_min, int32_t act_max)
{
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

/* TFLM's rounding division and the clamp, one value */
static inline int8_t darb_avg_div(int32_t s, int32_t count, int32_t act_min, int32_t act_max)
{
    const int32_t half = count / 2;
    return darb_pool_clamp(s > 0 ? (s + half) / count : (s - half) / count, act_min, act_max);
}

#endif

#if defined(DARB_POOL_DSP)

/* the int32 sum of channel c over the window, and its maximum */
static int32_t darb_pool_sum1(const darb_pool_window *w, uint32_t c)
{
    int32_t s = 0;
    uint32_t r;
    for (r = 0u; r < w->runs; ++r) {
        const int8_t *p = w->p + r * w->row_step + c;
        uint32_t k;
        for (k = 0u; k < w->len; ++k, p += w->step) {
            s += *p;
        }
    }
    return s;
}

static int32_t darb_pool_max1(const darb_pool_window *w, uint32_t c)
{
    int32_t m = -128;
    uint32_t r;
    for (r = 0u; r < w->runs; ++r) {
        const int8_t *p = w->p + r * w->row_step + c;
        uint32_t k;
        for (k = 0u; k < w->len; ++k, p += w->step) {
            m = *p > m ? *p : m;
        }
    }
    return m;
}

/* MEAN's output stage (darb_mean_s8): x = sum - input_zero_point * count,
 * darb_requantize_fast(x, multiplier, shift) + output_zero_point, saturated.
 * A right shift r >= 1 is one 64-bit multiply-accumulate (as darb_mm_out in
 * darb_internal.h): with high = (x m + 2^30) >> 31, the rounding (high +
 * 2^(r-1) - (high < 0)) >> r equals (x m + 2^30 + 2^(30+r) - (x < 0) 2^31)
 * >> (31 + r) (a floor of a floor is one floor; high < 0 only where x < 0,
 * and where x < 0 but high = 0 both give 0), the high word shifted right by
 * r - 1. */
typedef struct {
    int32_t zero_sum;   /* input_zero_point * count */
    int32_t m;
    uint32_t left;
    uint32_t right;
    int64_t k;          /* 2^30 + 2^(30 + right) */
    int32_t zp;
} darb_mean_rq;

static darb_mean_rq darb_mean_rq_of(const darb_mean_quant_s8 *q, int32_t zero_sum)
{
    darb_mean_rq r;
    r.zero_sum = zero_sum;
    r.m = q->multiplier;
    r.left = q->shift > 0 ? (uint32_t)q->shift : 0u;
    r.right = q->shift > 0 ? 0u : (uint32_t)-q->shift;
    r.k = ((int64_t)1 << 30) + ((int64_t)1 << (30u + r.right));
    r.zp = q->output_zero_point;
    return r;
}

static inline int8_t darb_mean_one(int32_t s, const darb_mean_rq *r)
{
    const int32_t x = s - r->zero_sum;
    int32_t v;
    if (r->right == 0u) {
        v = (int32_t)(((int64_t)(int32_t)((uint32_t)x << r->left) * r->m + ((int64_t)1 << 30)) >> 31);
    } else {
        const int64_t t = r->k - (int64_t)((uint32_t)x & 0x80000000u) + (int64_t)x * r->m;
        v = (int32_t)(t >> 32) >> (r->right - 1u);
    }
    return darb_pool_clamp(v + r->zp, -128, 127);
}

/* one position: 16 channels' bytes added to the halves */
#define DARB_POOL_DSP_SUM_POSITION                      \
    "ldr     %[t], [%[p]]\n\t"                          \
    "sxtab16 %[a0], %[a0], %[t]\n\t"                    \
    "sxtab16 %[a1], %[a1], %[t], ror #8\n\t"            \
    "ldr     %[t], [%[p], #4]\n\t"                      \
    "sxtab16 %[a2], %[a2], %[t]\n\t"                    \
    "sxtab16 %[a3], %[a3], %[t], ror #8\n\t"            \
    "ldr     %[t], [%[p], #8]\n\t"                      \
    "sxtab16 %[a4], %[a4], %[t]\n\t"                    \
    "sxtab16 %[a5], %[a5], %[t], ror #8\n\t"            \
    "ldr     %[t], [%[p], #12]\n\t"                     \
    "sxtab16 %[a6], %[a6], %[t]\n\t"                    \
    "sxtab16 %[a7], %[a7], %[t], ror #8\n\t"            \
    "add     %[p], %[p], %[step]\n\t"

/* one position: the maxima of 16 channels, 4 a word */
#define DARB_POOL_DSP_MAX_POSITION                      \
    "ldr     %[t], [%[p]]\n\t"                          \
    "ssub8   %[x], %[t], %[a0]\n\t"                     \
    "sel     %[a0], %[t], %[a0]\n\t"                    \
    "ldr     %[t], [%[p], #4]\n\t"                      \
    "ssub8   %[x], %[t], %[a1]\n\t"                     \
    "sel     %[a1], %[t], %[a1]\n\t"                    \
    "ldr     %[t], [%[p], #8]\n\t"                      \
    "ssub8   %[x], %[t], %[a2]\n\t"                     \
    "sel     %[a2], %[t], %[a2]\n\t"                    \
    "ldr     %[t], [%[p], #12]\n\t"                     \
    "ssub8   %[x], %[t], %[a3]\n\t"                     \
    "sel     %[a3], %[t], %[a3]\n\t"                    \
    "add     %[p], %[p], %[step]\n\t"

/* The runs of a window (ctl at %[w]), POSITION for each position, two a
 * step: an odd run length does one first. */
#define DARB_POOL_DSP_RUNS(POSITION)                    \
    "1:\n\t"                                            \
    "ldr     %[n], [%[w]]\n\t"                          \
    "tst     %[n], #1\n\t"                              \
    "beq     2f\n\t"                                    \
    POSITION                                            \
    "subs    %[n], %[n], #1\n\t"                        \
    "beq     3f\n\t"                                    \
    "2:\n\t"                                            \
    POSITION                                            \
    POSITION                                            \
    "subs    %[n], %[n], #2\n\t"                        \
    "bne     2b\n\t"                                    \
    "3:\n\t"                                            \
    "ldr     %[t], [%[w], #4]\n\t"                      \
    "add     %[p], %[p], %[t]\n\t"                      \
    "ldr     %[t], [%[w], #8]\n\t"                      \
    "subs    %[t], %[t], #1\n\t"                        \
    "str     %[t], [%[w], #8]\n\t"                      \
    "bne     1b"

/* sums[0..8) = the 16 channels at p summed over a chunk (at most 256
 * positions): sums[2k] holds channels 4k (low half) and 4k + 2 (high half),
 * sums[2k + 1] channels 4k + 1 and 4k + 3; 14 instructions a position */
static void darb_pool_dsp_sum16(const darb_pool_window *c, const int8_t *p, uint32_t sums[8])
{
    darb_pool_ctl ctl = darb_pool_ctl_of(c);
    const uint32_t step = c->step;
    uint32_t a0 = 0u, a1 = 0u, a2 = 0u, a3 = 0u, a4 = 0u, a5 = 0u, a6 = 0u, a7 = 0u;
    uint32_t t_;
    uint32_t n_;
    __asm__ volatile(DARB_POOL_DSP_RUNS(DARB_POOL_DSP_SUM_POSITION)
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5),
                       [a6] "+r"(a6), [a7] "+r"(a7), [t] "=&r"(t_), [n] "=&r"(n_), [p] "+r"(p)
                     : [w] "r"(&ctl), [step] "r"(step)
                     : "cc", "memory");
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = a2;
    sums[3] = a3;
    sums[4] = a4;
    sums[5] = a5;
    sums[6] = a6;
    sums[7] = a7;
}

/* tot[0..16) = the int32 sums of the 16 channels at c0 */
static void darb_pool_dsp_sums16(const darb_pool_window *w, uint32_t c0, int32_t tot[16])
{
    darb_pool_window c;
    uint32_t r = 0u;
    uint32_t pos = 0u;
    uint32_t k;
    for (k = 0u; k < 16u; ++k) {
        tot[k] = 0;
    }
    while (darb_pool_next_chunk(w, &r, &pos, &c)) {
        uint32_t sums[8];
        darb_pool_dsp_sum16(&c, c.p + c0, sums);
        for (k = 0u; k < 4u; ++k) {
            const uint32_t e = sums[2u * k];
            const uint32_t od = sums[2u * k + 1u];
            tot[4u * k] += (int16_t)(e & 0xFFFFu);
            tot[4u * k + 1u] += (int16_t)(od & 0xFFFFu);
            tot[4u * k + 2u] += (int32_t)e >> 16;
            tot[4u * k + 3u] += (int32_t)od >> 16;
        }
    }
}

static inline uint32_t darb_pool_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4u);
    return v;
}

/* tot[0..4) = the int32 sums of the 4 channels at c0 (SXTAB16 in C: two
 * sums, few registers) */
static void darb_pool_dsp_sums4(const darb_pool_window *w, uint32_t c0, int32_t tot[4])
{
    darb_pool_window c;
    uint32_t r = 0u;
    uint32_t pos = 0u;
    tot[0] = tot[1] = tot[2] = tot[3] = 0;
    while (darb_pool_next_chunk(w, &r, &pos, &c)) {
        uint32_t e = 0u;
        uint32_t od = 0u;
        uint32_t k;
        for (k = 0u; k < c.runs; ++k) {
            const int8_t *p = c.p + k * c.row_step + c0;
            uint32_t i;
            for (i = 0u; i < c.len; ++i, p += c.step) {
                const uint32_t x = darb_pool_load4(p);
                __asm__("sxtab16 %0, %0, %2\n\t"
                        "sxtab16 %1, %1, %2, ror #8"
                        : "+r"(e), "+r"(od)
                        : "r"(x));
            }
        }
        tot[0] += (int16_t)(e & 0xFFFFu);
        tot[1] += (int16_t)(od & 0xFFFFu);
        tot[2] += (int32_t)e >> 16;
        tot[3] += (int32_t)od >> 16;
    }
}

/* The average's division of one output pixel without branches: TFLM's (s
 * +- n/2) / n (C truncation) is floor((s + h) / n) with h = n/2, less 1
 * for s < 0 and n even (for s < 0 it is ceil((s - n/2) / n) =
 * floor((s - n/2 + n - 1) / n)). With t = s + h + 256 n, 0 <= t < 384 n <
 * 2^32 (n < 2^23): an unsigned division gives the quotient plus 256, which
 * a byte store drops. An average of int8 values is an int8 value: the
 * clamp to the whole int8 range is none. */
typedef struct {
    uint32_t c;         /* h + 256 n */
    uint32_t n;
    uint32_t even;      /* all ones where n is even */
    int32_t act_min;
    int32_t act_max;
} darb_avg_dsp_q;

static inline int8_t darb_avg_dsp_one(int32_t s, const darb_avg_dsp_q *q, int clamp)
{
    const uint32_t t = (uint32_t)s + q->c + ((uint32_t)(s >> 31) & q->even);
    const int32_t v = (int32_t)(t / q->n) - 256;
    return clamp ? darb_pool_clamp(v, q->act_min, q->act_max) : (int8_t)v;
}

/* 16 outputs from darb_pool_dsp_sum16's halves */
static inline void darb_avg_dsp_out16(const uint32_t sums[8], const darb_avg_dsp_q *q, int8_t *o, int clamp)
{
    uint32_t k;
    for (k = 0u; k < 4u; ++k, o += 4) {
        const uint32_t e = sums[2u * k];
        const uint32_t od = sums[2u * k + 1u];
        o[0] = darb_avg_dsp_one((int16_t)(e & 0xFFFFu), q, clamp);
        o[1] = darb_avg_dsp_one((int16_t)(od & 0xFFFFu), q, clamp);
        o[2] = darb_avg_dsp_one((int32_t)e >> 16, q, clamp);
        o[3] = darb_avg_dsp_one((int32_t)od >> 16, q, clamp);
    }
}

/* 16 outputs of a window of more than 256 positions (its int32 sums kept
 * off the common path's stack) */
static void __attribute__((noinline)) darb_avg_dsp_long16(const darb_pool_window *w, uint32_t c0,
                                                          const darb_avg_dsp_q *q, int8_t *o)
{
    int32_t tot[16];
    uint32_t j;
    darb_pool_dsp_sums16(w, c0, tot);
    for (j = 0u; j < 16u; ++j) {
        o[c0 + j] = darb_avg_dsp_one(tot[j], q, 1);
    }
}

static void darb_avg_pixel_fast(const darb_pool_window *w, uint32_t channels, int32_t count, int32_t act_min,
                                int32_t act_max, int8_t *o)
{
    const int clamp = act_min != -128 || act_max != 127;
    darb_avg_dsp_q q;
    uint32_t c0;
    uint32_t j;
    q.n = (uint32_t)count;
    q.c = (uint32_t)count / 2u + 256u * (uint32_t)count;
    q.even = (count & 1) == 0 ? 0xFFFFFFFFu : 0u;
    q.act_min = act_min;
    q.act_max = act_max;
    for (c0 = 0u; c0 + 16u <= channels; c0 += 16u) {
        if (count <= (int32_t)DARB_POOL_CHUNK) {
            uint32_t sums[8];
            darb_pool_dsp_sum16(w, w->p + c0, sums);
            if (clamp) {
                darb_avg_dsp_out16(sums, &q, o + c0, 1);
            } else {
                darb_avg_dsp_out16(sums, &q, o + c0, 0);
            }
        } else {
            darb_avg_dsp_long16(w, c0, &q, o);
        }
    }
    for (; c0 + 4u <= channels; c0 += 4u) {
        int32_t tot[4];
        darb_pool_dsp_sums4(w, c0, tot);
        for (j = 0u; j < 4u; ++j) {
            o[c0 + j] = darb_avg_dsp_one(tot[j], &q, 1);
        }
    }
    for (; c0 < channels; ++c0) {
        o[c0] = darb_avg_dsp_one(darb_pool_sum1(w, c0), &q, 1);
    }
}

static void darb_mean_fast(const darb_pool_window *w, uint32_t channels, const darb_mean_quant_s8 *q,
                           int32_t zero_sum, int8_t *o)
{
    const darb_mean_rq rq = darb_mean_rq_of(q, zero_sum);
    uint32_t c0;
    uint32_t j;
    for (c0 = 0u; c0 + 16u <= channels; c0 += 16u) {
        int32_t tot[16];
        darb_pool_dsp_sums16(w, c0, tot);
        for (j = 0u; j < 16u; ++j) {
            o[c0 + j] = darb_mean_one(tot[j], &rq);
        }
    }
    for (; c0 + 4u <= channels; c0 += 4u) {
        int32_t tot[4];
        darb_pool_dsp_sums4(w, c0, tot);
        for (j = 0u; j < 4u; ++j) {
            o[c0 + j] = darb_mean_one(tot[j], &rq);
        }
    }
    for (; c0 < channels; ++c0) {
        o[c0] = darb_mean_one(darb_pool_sum1(w, c0), &rq);
    }
}

/* 4 int8 maxima a word: a = max(a, x) byte by byte */
static inline uint32_t darb_pool_max4(uint32_t a, uint32_t x)
{
    uint32_t t;
    __asm__("ssub8 %[t], %[x], %[a]\n\t"
            "sel   %[a], %[x], %[a]"
            : [a] "+r"(a), [t] "=&r"(t)
            : [x] "r"(x)
            : "cc");
    return a;
}

/* the clamp of 4 int8 values (a word) to [lo, hi] (bytes repeated in lo4, hi4) */
static inline uint32_t darb_pool_clamp4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    uint32_t t;
    __asm__("ssub8 %[t], %[v], %[lo]\n\t"
            "sel   %[v], %[v], %[lo]\n\t"
            "ssub8 %[t], %[v], %[hi]\n\t"
            "sel   %[v], %[hi], %[v]"
            : [v] "+r"(v), [t] "=&r"(t)
            : [lo] "r"(lo4), [hi] "r"(hi4)
            : "cc");
    return v;
}

static inline void darb_pool_store4(int8_t *o, uint32_t v)
{
    memcpy(o, &v, 4u);
}

static void darb_max_pixel_fast(const darb_pool_window *w, uint32_t channels, int32_t act_min, int32_t act_max,
                                int8_t *o)
{
    const int clamp = act_min != -128 || act_max != 127;
    const uint32_t lo4 = (uint32_t)(uint8_t)act_min * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)act_max * 0x01010101u;
    uint32_t c0;
    for (c0 = 0u; c0 + 16u <= channels; c0 += 16u) {
        darb_pool_ctl ctl = darb_pool_ctl_of(w);
        const int8_t *p = w->p + c0;
        uint32_t a0 = 0x80808080u, a1 = a0, a2 = a0, a3 = a0;
        uint32_t t_;
        uint32_t x_;
        uint32_t n_;
        __asm__ volatile(DARB_POOL_DSP_RUNS(DARB_POOL_DSP_MAX_POSITION)
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [t] "=&r"(t_),
                           [x] "=&r"(x_), [n] "=&r"(n_), [p] "+r"(p)
                         : [w] "r"(&ctl), [step] "r"(w->step)
                         : "cc", "memory");
        if (clamp) {
            a0 = darb_pool_clamp4(a0, lo4, hi4);
            a1 = darb_pool_clamp4(a1, lo4, hi4);
            a2 = darb_pool_clamp4(a2, lo4, hi4);
            a3 = darb_pool_clamp4(a3, lo4, hi4);
        }
        darb_pool_store4(o + c0, a0);
        darb_pool_store4(o + c0 + 4u, a1);
        darb_pool_store4(o + c0 + 8u, a2);
        darb_pool_store4(o + c0 + 12u, a3);
    }
    for (; c0 + 4u <= channels; c0 += 4u) {
        uint32_t a = 0x80808080u;
        uint32_t k;
        for (k = 0u; k < w->runs; ++k) {
            const int8_t *p = w->p + k * w->row_step + c0;
            uint32_t i;
            for (i = 0u; i < w->len; ++i, p += w->step) {
                a = darb_pool_max4(a, darb_pool_load4(p));
            }
        }
        darb_pool_store4(o + c0, darb_pool_clamp4(a, lo4, hi4));
    }
    for (; c0 < channels; ++c0) {
        o[c0] = darb_pool_clamp(darb_pool_max1(w, c0), act_min, act_max);
    }
}

#elif defined(DARB_POOL_MVE)

/* one position: 32 channels added to a0..a3 */
#define DARB_POOL_MVE_SUM_POSITION                                       \
    "vldrb.s16    %q[x0], [%[p]]\n\t"                                    \
    "vldrb.s16    %q[x1], [%[p], #8]\n\t"                                \
    "vadd.i16     %q[a0], %q[a0], %q[x0]\n\t"                            \
    "vldrb.s16    %q[x0], [%[p], #16]\n\t"                               \
    "vadd.i16     %q[a1], %q[a1], %q[x1]\n\t"                            \
    "vldrb.s16    %q[x1], [%[p], #24]\n\t"                               \
    "vadd.i16     %q[a2], %q[a2], %q[x0]\n\t"                            \
    "vadd.i16     %q[a3], %q[a3], %q[x1]\n\t"                            \
    "add          %[p], %[p], %[step]\n\t"

/* one position: the maxima of 64 channels in a0..a3 */
#define DARB_POOL_MVE_MAX_POSITION                                       \
    "vldrb.8      %q[x0], [%[p]]\n\t"                                    \
    "vldrb.8      %q[x1], [%[p], #16]\n\t"                               \
    "vmax.s8      %q[a0], %q[a0], %q[x0]\n\t"                            \
    "vldrb.8      %q[x0], [%[p], #32]\n\t"                               \
    "vmax.s8      %q[a1], %q[a1], %q[x1]\n\t"                            \
    "vldrb.8      %q[x1], [%[p], #48]\n\t"                               \
    "vmax.s8      %q[a2], %q[a2], %q[x0]\n\t"                            \
    "vmax.s8      %q[a3], %q[a3], %q[x1]\n\t"                            \
    "add          %[p], %[p], %[step]\n\t"

/* The runs of a window (ctl at %[w]), POSITION for each position, two a
 * step in a low-overhead loop: an odd run length does one first. */
#define DARB_POOL_MVE_RUNS(POSITION)                                     \
    "1:\n\t"                                                             \
    "ldr          %[n], [%[w]]\n\t"                                      \
    "lsrs         %[n], %[n], #1\n\t"                                    \
    "bcc          2f\n\t"                                                \
    POSITION                                                             \
    "cmp          %[n], #0\n\t"                                          \
    "beq          3f\n\t"                                                \
    "2:\n\t"                                                             \
    "dls          lr, %[n]\n\t"                                          \
    "4:\n\t"                                                             \
    POSITION                                                             \
    POSITION                                                             \
    "le           lr, 4b\n\t"                                            \
    "3:\n\t"                                                             \
    "ldr          %[n], [%[w], #4]\n\t"                                  \
    "add          %[p], %[p], %[n]\n\t"                                  \
    "ldr          %[n], [%[w], #8]\n\t"                                  \
    "subs         %[n], %[n], #1\n\t"                                    \
    "str          %[n], [%[w], #8]\n\t"                                  \
    "bne          1b"

/* a0..a3 (int16x8_t) += the 32 channels at PTR summed over CHUNK (at most
 * 256 positions), 9 instructions a position; a0..a3 (int8x16_t) = the
 * maxima of the 64 channels at PTR over a window */
#define DARB_POOL_MVE_LOOP(POSITION, CHUNK, PTR, A0, A1, A2, A3)                                    \
    do {                                                                                           \
        darb_pool_ctl ctl_ = darb_pool_ctl_of(CHUNK);                                              \
        const int8_t *p_ = (PTR);                                                                  \
        int32x4_t x0_;                                                                             \
        int32x4_t x1_;                                                                             \
        uint32_t n_;                                                                               \
        __asm__ volatile(DARB_POOL_MVE_RUNS(POSITION)                                              \
                         : [a0] "+w"(A0), [a1] "+w"(A1), [a2] "+w"(A2), [a3] "+w"(A3), [x0] "=&w"(x0_), \
                           [x1] "=&w"(x1_), [n] "=&r"(n_), [p] "+l"(p_)                            \
                         : [w] "r"(&ctl_), [step] "r"((CHUNK)->step)                               \
                         : "cc", "lr", "memory");                                                  \
    } while (0)

/* the n < 32 channels at p (8 a vector, the last one predicated) summed
 * over a chunk into sums[0..n) */
static void darb_pool_mve_sum_tail(const darb_pool_window *c, const int8_t *p, uint32_t n, int16_t *sums)
{
    uint32_t v;
    for (v = 0u; v < n; v += 8u) {
        const mve_pred16_t pred = vctp16q(n - v);
        int16x8_t a = vdupq_n_s16(0);
        uint32_t r;
        uint32_t k;
        for (r = 0u; r < c->runs; ++r) {
            const int8_t *x = p + v + r * c->row_step;
            for (k = 0u; k < c->len; ++k, x += c->step) {
                a = vaddq_s16(a, vldrbq_z_s16(x, pred));
            }
        }
        vst1q_s16(sums + v, a);
    }
}

/* sums[0..n) = the int16 sums of the n <= 32 channels at c0 over a chunk */
static void darb_pool_mve_sum(const darb_pool_window *c, uint32_t c0, uint32_t n, int16_t sums[32])
{
    if (n == 32u) {
        int16x8_t a0 = vdupq_n_s16(0), a1 = a0, a2 = a0, a3 = a0;
        DARB_POOL_MVE_LOOP(DARB_POOL_MVE_SUM_POSITION, c, c->p + c0, a0, a1, a2, a3);
        vst1q_s16(sums, a0);
        vst1q_s16(sums + 8, a1);
        vst1q_s16(sums + 16, a2);
        vst1q_s16(sums + 24, a3);
    } else {
        darb_pool_mve_sum_tail(c, c->p + c0, n, sums);
    }
}

/* tot[0..n) = the int32 sums of the n <= 32 channels at c0 over a window */
static void darb_pool_mve_sums(const darb_pool_window *w, uint32_t c0, uint32_t n, int32_t tot[32])
{
    darb_pool_window c;
    uint32_t r = 0u;
    uint32_t pos = 0u;
    uint32_t j;
    for (j = 0u; j < n; j += 4u) {
        vst1q_s32(tot + j, vdupq_n_s32(0));
    }
    while (darb_pool_next_chunk(w, &r, &pos, &c)) {
        int16_t part[32];
        darb_pool_mve_sum(&c, c0, n, part);
        for (j = 0u; j < n; j += 4u) {
            vst1q_s32(tot + j, vaddq_s32(vld1q_s32(tot + j), vldrhq_s32(part + j)));
        }
    }
}

/* The average's division of one output pixel: TFLM's (s +- n/2) / n is
 * floor((s + h) / n) with h = n/2, less 1 for s < 0 and n even (C
 * truncates: for s < 0 it is ceil((s - n/2) / n) = floor((s - n/2 + n - 1)
 * / n)). With K = 256: t = s + h + K n >= 0 (s >= -128 n), t < 384 n, and
 * for M = ceil(2^32 / n) = (2^32 + r) / n, 0 <= r < n, floor(t M / 2^32) =
 * floor(t / n) as t r < 384 n^2 <= 2^32 (2 <= n <= 256 here): the
 * multiply-high gives the quotient plus K, which the clamp (to [act_min +
 * K, act_max + K]) keeps and the byte store drops. An average of int8
 * values is an int8 value: the clamp to the whole int8 range is none. */
typedef struct {
    uint32_t m;         /* ceil(2^32 / n), n >= 2 */
    int32_t c;          /* h + K n */
    int16_t lo;         /* act_min + K */
    int16_t hi;
} darb_avg_mve_q;

static inline int32x4_t darb_avg_mve_div(int32x4_t s, int32_t c, uint32x4_t m, int even)
{
    int32x4_t t = vaddq_n_s32(s, c);
    if (even) {
        t = vaddq_s32(t, vshrq_n_s32(s, 31));
    }
    return vreinterpretq_s32_u32(vmulhq_u32(vreinterpretq_u32_s32(t), m));
}

static inline int16x8_t darb_avg_mve_q8(int16x8_t s, const darb_avg_mve_q *q, uint32x4_t m, int even, int clamp)
{
    int16x8_t r = vmovnbq_s32(vuninitializedq_s16(), darb_avg_mve_div(vmovlbq_s16(s), q->c, m, even));
    r = vmovntq_s32(r, darb_avg_mve_div(vmovltq_s16(s), q->c, m, even));
    if (clamp) {
        r = vmaxq_s16(r, vdupq_n_s16(q->lo));
        r = vminq_s16(r, vdupq_n_s16(q->hi));
    }
    return r;
}

/* the outputs of n channels from their int16 sums */
static inline void darb_avg_mve_out_k(const int16_t *sums, uint32_t n, const darb_avg_mve_q *q, int8_t *o,
                                      int even, int clamp)
{
    const uint32x4_t m = vdupq_n_u32(q->m);
    uint32_t c;
    for (c = 0u; c + 8u <= n; c += 8u) {
        vstrbq_s16(o + c, darb_avg_mve_q8(vld1q_s16(sums + c), q, m, even, clamp));
    }
    if (c < n) {
        vstrbq_p_s16(o + c, darb_avg_mve_q8(vld1q_s16(sums + c), q, m, even, clamp), vctp16q(n - c));
    }
}

static void darb_avg_mve_out(const int16_t *sums, uint32_t n, const darb_avg_mve_q *q, int8_t *o, int even,
                             int clamp)
{
    if (even) {
        if (clamp) {
            darb_avg_mve_out_k(sums, n, q, o, 1, 1);
        } else {
            darb_avg_mve_out_k(sums, n, q, o, 1, 0);
        }
    } else if (clamp) {
        darb_avg_mve_out_k(sums, n, q, o, 0, 1);
    } else {
        darb_avg_mve_out_k(sums, n, q, o, 0, 0);
    }
}

/* A window of one position or of more than 256: int32 sums (in chunks),
 * one division a value; off the common path's stack. */
static void __attribute__((noinline)) darb_avg_mve_other(const darb_pool_window *w, uint32_t channels,
                                                         int32_t count, int32_t act_min, int32_t act_max,
                                                         int8_t *o)
{
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += 32u) {
        const uint32_t n = channels - c0 < 32u ? channels - c0 : 32u;
        int32_t tot[32];
        uint32_t j;
        darb_pool_mve_sums(w, c0, n, tot);
        for (j = 0u; j < n; ++j) {
            o[c0 + j] = darb_avg_div(tot[j], count, act_min, act_max);
        }
    }
}

static void darb_avg_pixel_fast(const darb_pool_window *w, uint32_t channels, int32_t count, int32_t act_min,
                                int32_t act_max, int8_t *o)
{
    const int even = (count & 1) == 0;
    const int clamp = act_min != -128 || act_max != 127;
    darb_avg_mve_q q;
    uint32_t c0;
    if (count == 1 || count > (int32_t)DARB_POOL_CHUNK) {
        darb_avg_mve_other(w, channels, count, act_min, act_max, o);
        return;
    }
    q.m = 0xFFFFFFFFu / (uint32_t)count + 1u;
    q.c = count / 2 + 256 * count;
    q.lo = (int16_t)(act_min + 256);
    q.hi = (int16_t)(act_max + 256);
    for (c0 = 0u; c0 < channels; c0 += 32u) {
        const uint32_t n = channels - c0 < 32u ? channels - c0 : 32u;
        int16_t sums[32];
        darb_pool_mve_sum(w, c0, n, sums);
        darb_avg_mve_out(sums, n, &q, o + c0, even, clamp);
    }
}

/* MEAN's output stage, 4 lanes: darb_requantize_fast is VSHL by the left
 * shift, VQRDMULH (gemmlowp's SaturatingRoundingDoublingHighMul) and, for a
 * right shift, VRSHL after subtracting 1 from negative values (VRSHL
 * rounds halves up, RoundingDivideByPOT away from zero) */
static inline void darb_mean_mve_out(const int32_t *tot, uint32_t n, const darb_mean_quant_s8 *q, int32_t zero_sum,
                                     int8_t *o)
{
    const int32_t left = q->shift > 0 ? q->shift : 0;
    const int32_t neg_right = q->shift > 0 ? 0 : q->shift;
    const int32x4_t lo = vdupq_n_s32(-128);
    const int32x4_t hi = vdupq_n_s32(127);
    uint32_t j;
    for (j = 0u; j < n; j += 4u) {
        int32x4_t v = vshlq_r_s32(vsubq_n_s32(vld1q_s32(tot + j), zero_sum), left);
        v = vqrdmulhq_n_s32(v, q->multiplier);
        if (neg_right != 0) {
            v = vrshlq_n_s32(vaddq_s32(v, vshrq_n_s32(v, 31)), neg_right);
        }
        v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, q->output_zero_point), lo), hi);
        vstrbq_p_s32(o + j, v, vctp32q(n - j));
    }
}

static void darb_mean_fast(const darb_pool_window *w, uint32_t channels, const darb_mean_quant_s8 *q,
                           int32_t zero_sum, int8_t *o)
{
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += 32u) {
        const uint32_t n = channels - c0 < 32u ? channels - c0 : 32u;
        int32_t tot[32];
        darb_pool_mve_sums(w, c0, n, tot);
        darb_mean_mve_out(tot, n, q, zero_sum, o + c0);
    }
}

static void darb_max_pixel_fast(const darb_pool_window *w, uint32_t channels, int32_t act_min, int32_t act_max,
                                int8_t *o)
{
    const int clamp = act_min != -128 || act_max != 127;
    const int8x16_t lo = vdupq_n_s8((int8_t)act_min);
    const int8x16_t hi = vdupq_n_s8((int8_t)act_max);
    uint32_t c0;
    for (c0 = 0u; c0 + 64u <= channels; c0 += 64u) {
        int8x16_t a0 = vdupq_n_s8(-128), a1 = a0, a2 = a0, a3 = a0;
        DARB_POOL_MVE_LOOP(DARB_POOL_MVE_MAX_POSITION, w, w->p + c0, a0, a1, a2, a3);
        if (clamp) {
            a0 = vminq_s8(vmaxq_s8(a0, lo), hi);
            a1 = vminq_s8(vmaxq_s8(a1, lo), hi);
            a2 = vminq_s8(vmaxq_s8(a2, lo), hi);
            a3 = vminq_s8(vmaxq_s8(a3, lo), hi);
        }
        vst1q_s8(o + c0, a0);
        vst1q_s8(o + c0 + 16u, a1);
        vst1q_s8(o + c0 + 32u, a2);
        vst1q_s8(o + c0 + 48u, a3);
    }
    for (; c0 < channels; c0 += 16u) {
        const mve_pred16_t pred = vctp8q(channels - c0);
        int8x16_t a = vdupq_n_s8(-128);
        uint32_t r;
        uint32_t k;
        for (r = 0u; r < w->runs; ++r) {
            const int8_t *x = w->p + c0 + r * w->row_step;
            for (k = 0u; k < w->len; ++k, x += w->step) {
                a = vmaxq_s8(a, vldrbq_z_s8(x, pred));
            }
        }
        vstrbq_p_s8(o + c0, vminq_s8(vmaxq_s8(a, lo), hi), pred);
    }
}
#endif

void darb_avgpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out)
{
    const uint32_t channels = g->in_c;
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            const int32_t count = (int32_t)((sy.end - sy.first) * (sx.end - sx.first));
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
#if defined(DARB_POOL_MVE) || defined(DARB_POOL_DSP)
            const darb_pool_window w = darb_pool_window_of(g, in, sy, sx);
            darb_avg_pixel_fast(&w, channels, count, act_min, act_max, o);
#else
            const int32_t half = count / 2;
            int32_t acc[DARB_POOL_BLOCK];
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const int8_t *p =
                            darb_px_s8(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] += p[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const int32_t s = acc[j];
                    int32_t v = s > 0 ? (s + half) / count : (s - half) / count;
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = (int8_t)v;
                }
            }
#endif
        }
    }
}

void darb_avgpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out)
{
    const uint32_t channels = g->in_c;
    float acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            const float count = (float)((sy.end - sy.first) * (sx.end - sx.first));
            float *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0.0f;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const float *p =
                            darb_px_f32(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] += p[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    float v = acc[j] / count;
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = v;
                }
            }
        }
    }
}

void darb_maxpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out)
{
    const uint32_t channels = g->in_c;
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
#if defined(DARB_POOL_MVE) || defined(DARB_POOL_DSP)
            const darb_pool_window w = darb_pool_window_of(g, in, sy, sx);
            darb_max_pixel_fast(&w, channels, act_min, act_max, o);
#else
            int32_t acc[DARB_POOL_BLOCK];
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = -128;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const int8_t *p =
                            darb_px_s8(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] = p[j] > acc[j] ? p[j] : acc[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    int32_t v = acc[j];
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = (int8_t)v;
                }
            }
#endif
        }
    }
}

void darb_maxpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out)
{
    const uint32_t channels = g->in_c;
    float acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            float *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = -FLT_MAX;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const float *p =
                            darb_px_f32(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] = acc[j] < p[j] ? p[j] : acc[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    float v = acc[j];
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = v;
                }
            }
        }
    }
}

void darb_mean_s8(const darb_mean_geometry *g, const darb_mean_quant_s8 *q, const int8_t *in, int8_t *out)
{
    const uint32_t channels = g->channels;
    const uint32_t pixels = (uint32_t)g->in_h * g->in_w;
    const int32_t zero_sum = q->input_zero_point * (int32_t)pixels;
#if defined(DARB_POOL_MVE) || defined(DARB_POOL_DSP)
    darb_pool_window w;
    w.p = in;
    w.runs = 1u;
    w.len = pixels;
    w.step = channels;
    w.row_step = pixels * channels;
    darb_mean_fast(&w, channels, q, zero_sum, out);
#else
    int32_t acc[DARB_POOL_BLOCK];
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
        const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
        const int8_t *p = in + c0;
        uint32_t j;
        uint32_t i;
        for (j = 0u; j < n; ++j) {
            acc[j] = 0;
        }
        for (i = 0u; i < pixels; ++i, p += channels) {
            for (j = 0u; j < n; ++j) {
                acc[j] += p[j];
            }
        }
        for (j = 0u; j < n; ++j) {
            int32_t v = darb_requantize_fast(acc[j] - zero_sum, q->multiplier, q->shift) + q->output_zero_point;
            v = v < -128 ? -128 : v;
            v = v > 127 ? 127 : v;
            out[c0 + j] = (int8_t)v;
        }
    }
#endif
}

void darb_mean_f32(const darb_mean_geometry *g, const float *in, float *out)
{
    const uint32_t channels = g->channels;
    const uint32_t pixels = (uint32_t)g->in_h * g->in_w;
    const float count = (float)pixels;
    float acc[DARB_POOL_BLOCK];
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
        const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
        const float *p = in + c0;
        uint32_t j;
        uint32_t i;
        for (j = 0u; j < n; ++j) {
            acc[j] = 0.0f;
        }
        for (i = 0u; i < pixels; ++i, p += channels) {
            for (j = 0u; j < n; ++j) {
                acc[j] += p[j];
            }
        }
        for (j = 0u; j < n; ++j) {
            out[c0 + j] = acc[j] / count;
        }
    }
}
