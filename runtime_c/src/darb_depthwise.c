/*
 * darb_depthwise.c - depthwise convolution over NHWC images (int8 and float32).
 *
 * darb_depthwise_s8 has two ways through an image. Both give every output
 * value the operations of TFLM's reference kernel (see darb_ops_spatial.h;
 * darbgen/ops/depthwise.py is the NumPy twin): int32 sums of w * (x +
 * input_offset) over the taps inside the image, plus the bias, then
 * darb_requantize_fast, the output zero point and the clamp. The generator
 * proves that no partial sum of a layer can leave int32 in any order, so
 * the sums below, taken in other orders, are exact and the results the
 * same bits.
 *
 * - The general loop (any geometry, any depth multiplier): one output pixel
 *   at a time, its output channels in blocks of DARB_DW_BLOCK accumulators,
 *   each block over the in-image taps in (ky, kx) order (the taps outside
 *   the image are cut from the loop bounds once per pixel).
 *
 * - The channel-block loop, for depth multiplier 1 and kernels of at most
 *   DARB_DW_TAPS taps (any stride, dilation and padding): a block of
 *   channels at a time (4 with the Armv7E-M DSP instructions or in plain C,
 *   8 per MVE vector on the Cortex-M55 with the channel tail predicated),
 *   whose weights and output-stage constants are laid out once on the
 *   stack (190 bytes, 310 with MVE), then the image as runs of pixels with
 *   the same taps inside the image: the rows of the interior (every tap
 *   inside), the border columns beside it, the border rows. A run starts
 *   from the bias plus input_offset times the sum of its taps' weights and
 *   multiplies raw int8 inputs; a 3x3 interior pixel is one unrolled block
 *   of code, a border pixel one loop over its rows of 1 to 3 taps. On the
 *   DSP and MVE cores these bodies, and the output stage, are inline asm
 *   (gcc's own code spilled the weights and accumulators), and blocks whose
 *   shifts are all right shifts under the whole int8 clamp take a shorter
 *   output stage.
 *
 * The channels that 4-channel blocks leave over (in_c % 4, without MVE),
 * larger kernels and depth multipliers > 1 go through the general loop, and
 * so does everything on Armv6-M (Cortex-M0+) and under -DDARB_COMPACT
 * (about 1.1 KB of code instead of 4.4 KB; on the KWS layer 4 times the
 * instructions of the DSP blocks, 8 times those of MVE).
 */
#include <stddef.h>
#include <string.h>

#include "darb_ops_spatial.h"

#define DARB_DW_BLOCK 32u
/* The largest kernel (kh * kw taps) the channel-block loop lays out on the stack. */
#define DARB_DW_TAPS 9u

/* Not on Armv6-M (Cortex-M0, M0+): with 8 low registers the 4-channel
 * blocks in plain C save too little (5 %) for their code (2.7 KB). */
#if !defined(DARB_COMPACT) && !defined(__ARM_ARCH_6M__)
/* the asm paths are in gcc's (and clang's) syntax */
#if defined(__GNUC__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DARB_DW_MVE 1
#include <arm_mve.h>
#elif defined(__GNUC__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1
#define DARB_DW_DSP 1
#endif
#define DARB_DW_CHANNEL_BLOCKS 1
#endif

/* The taps k in [*first, *end) of a window starting at `origin` with `taps`
 * taps `dil` apart that fall inside [0, size). */
static void darb_dw_tap_range(int32_t origin, uint32_t taps, uint32_t dil, uint32_t size, uint32_t *first,
                              uint32_t *end)
{
    uint32_t k0 = 0u;
    uint32_t k1 = taps;
    while (k0 < taps && origin + (int32_t)(k0 * dil) < 0) {
        ++k0;
    }
    while (k1 > k0 && origin + (int32_t)((k1 - 1u) * dil) >= (int32_t)size) {
        --k1;
    }
    *first = k0;
    *end = k1;
}

/* Kept out of line on gcc and clang, so that its frame (the accumulators)
 * does not add to the channel-block loop's (and, measured, the loop is
 * faster so). */
#if defined(__GNUC__)
#define DARB_DW_NOINLINE __attribute__((noinline))
#else
#define DARB_DW_NOINLINE
#endif

/* The general loop over output channels [oc_begin, oc_end) of every pixel. */
static DARB_DW_NOINLINE void darb_dw_s8_general(const darb_dw_geometry *g, const int8_t *weights,
                                                const darb_dw_quant_s8 *q, const int8_t *in, int8_t *out,
                                                uint32_t oc_begin, uint32_t oc_end)
{
    const uint32_t in_c = g->in_c;
    const uint32_t mult = g->mult;
    const uint32_t out_c = in_c * mult;
    const uint32_t row_stride = (uint32_t)g->in_w * in_c;
    const int32_t offset = q->input_offset;
    const uint32_t c_begin = oc_begin / mult;
    const uint32_t m_begin = oc_begin - c_begin * mult;
    int32_t acc[DARB_DW_BLOCK];
    uint32_t oy;
    uint32_t ox;

    for (oy = 0u; oy < g->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
        uint32_t ky0;
        uint32_t ky1;
        darb_dw_tap_range(iy0, g->kh, g->dil_h, g->in_h, &ky0, &ky1);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * out_c;
            uint32_t kx0;
            uint32_t kx1;
            uint32_t oc0;
            uint32_t c0 = c_begin; /* input channel and multiplier index of output channel oc0 */
            uint32_t m0 = m_begin;
            darb_dw_tap_range(ix0, g->kw, g->dil_w, g->in_w, &kx0, &kx1);
            for (oc0 = oc_begin; oc0 < oc_end; oc0 += DARB_DW_BLOCK) {
                const uint32_t n = oc_end - oc0 < DARB_DW_BLOCK ? oc_end - oc0 : DARB_DW_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0;
                }
                for (ky = ky0; ky < ky1; ++ky) {
                    const int8_t *row = in + (uint32_t)(iy0 + (int32_t)(ky * g->dil_h)) * row_stride;
                    const int8_t *wrow = weights + ((uint32_t)ky * g->kw) * out_c + oc0;
                    for (kx = kx0; kx < kx1; ++kx) {
                        const int8_t *px = row + (uint32_t)(ix0 + (int32_t)(kx * g->dil_w)) * in_c;
                        const int8_t *pw = wrow + kx * out_c;
                        if (mult == 1u) {
                            const int8_t *pc = px + oc0;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += (int32_t)pw[j] * ((int32_t)pc[j] + offset);
                            }
                        } else {
                            uint32_t c = c0;
                            uint32_t m = m0;
                            int32_t xv = (int32_t)px[c] + offset;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += (int32_t)pw[j] * xv;
                                if (++m == mult) {
                                    m = 0u;
                                    ++c;
                                    if (j + 1u < n) {
                                        xv = (int32_t)px[c] + offset;
                                    }
                                }
                            }
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const uint32_t oc = oc0 + j;
                    const int32_t a = q->bias != 0 ? acc[j] + q->bias[oc] : acc[j];
                    int32_t v = darb_requantize_fast(a, q->multiplier[oc], q->shift[oc]) + q->output_offset;
                    v = v < q->act_min ? q->act_min : v;
                    v = v > q->act_max ? q->act_max : v;
                    o[oc] = (int8_t)v;
                }
                m0 += n;
                while (m0 >= mult) {
                    m0 -= mult;
                    ++c0;
                }
            }
        }
    }
}


#ifdef DARB_DW_CHANNEL_BLOCKS

/* The taps k in [*first, *first + *count) of a window starting at `origin`
 * with `taps` taps `dil` apart that fall inside [0, size) (first = 0 when
 * there are none). */
static void darb_dw_span(int32_t origin, uint32_t taps, uint32_t dil, uint32_t size, uint32_t *first,
                         uint32_t *count)
{
    const int32_t room = (int32_t)size - origin; /* positions from the origin to the image's end */
    uint32_t k0 = 0u;
    uint32_t k1 = 0u;
    if (origin < 0) {
        k0 = ((uint32_t)-origin + dil - 1u) / dil;
    }
    if (room > 0) {
        k1 = ((uint32_t)room + dil - 1u) / dil;
        k1 = k1 < taps ? k1 : taps;
    }
    *first = k1 > k0 ? k0 : 0u;
    *count = k1 > k0 ? k1 - k0 : 0u;
}

/* The outputs [*lo, *hi) along one axis whose whole window lies inside the
 * image: origin = o * stride - pad >= 0 and origin + (taps - 1) * dil + 1 <=
 * size (an empty range has *lo == *hi). */
static void darb_dw_full_range(uint32_t outs, uint32_t stride, uint32_t pad, uint32_t taps, uint32_t dil,
                               uint32_t size, uint32_t *lo, uint32_t *hi)
{
    const uint32_t span = (taps - 1u) * dil + 1u;
    const uint32_t a = (pad + stride - 1u) / stride;
    uint32_t b = 0u;
    if (size + pad >= span) {
        b = (size + pad - span) / stride + 1u;
    }
    b = b < outs ? b : outs;
    *lo = a < b ? a : b;
    *hi = b;
}

/* ------------------------------------------------------------------ Armv7E-M DSP: 4 channels a block */
#if defined(DARB_DW_DSP)

#define DARB_DW_LANES 4u

/* Four bytes from any address (one load: these cores allow unaligned loads). */
static inline uint32_t darb_dw_load32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A block of 4 channels: per tap the weights as sxtb16 of their word
 * (channels 0 and 2 as int16 halves) and sxtb16 ror 8 (channels 1 and 3);
 * per channel the full-window start (bias + input_offset * the sum of its
 * weights), the bias and the requantization; the constants of the sweep. */
typedef struct {
    uint32_t w[DARB_DW_TAPS][2];
    int32_t full[4];
    int32_t bias[4];
    struct {
        int32_t mult;
        uint32_t right;
        uint32_t left;
    } rq[4];
    uint32_t quick;  /* every shift of the block < 0 and the clamp the whole int8 range */
    uint32_t dx;     /* input step between kx taps, between ky taps */
    uint32_t dy;
    uint32_t kh;
    uint32_t kw;
    int32_t in_off;
    uint32_t lo4;    /* act_min, act_max in every byte */
    uint32_t hi4;
    int32_t out_off;
} darb_dw_blk;

static void darb_dw_blk_init(darb_dw_blk *b, const darb_dw_geometry *g, const int8_t *weights,
                             const darb_dw_quant_s8 *q, uint32_t c0)
{
    const uint32_t in_c = g->in_c;
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    uint32_t j;
    uint32_t t;
    b->quick = q->act_min == -128 && q->act_max == 127 ? 1u : 0u;
    for (j = 0u; j < 4u; ++j) {
        const int32_t s = q->shift[c0 + j];
        b->bias[j] = q->bias != 0 ? q->bias[c0 + j] : 0;
        b->full[j] = b->bias[j];
        b->rq[j].mult = q->multiplier[c0 + j];
        b->rq[j].left = s > 0 ? (uint32_t)s : 0u;
        b->rq[j].right = s > 0 ? 0u : (uint32_t)-s;
        b->quick &= s < 0 ? 1u : 0u;
    }
    for (t = 0u; t < taps; ++t) {
        const int8_t *w = weights + t * in_c + c0;
        const uint32_t word = darb_dw_load32(w);
        uint32_t e;
        uint32_t od;
        __asm__("sxtb16 %0, %1" : "=r"(e) : "r"(word));
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(od) : "r"(word));
        b->w[t][0] = e;
        b->w[t][1] = od;
        for (j = 0u; j < 4u; ++j) {
            b->full[j] += q->input_offset * (int32_t)w[j];
        }
    }
    b->dx = (uint32_t)g->dil_w * in_c;
    b->dy = (uint32_t)g->dil_h * g->in_w * in_c;
    b->kh = g->kh;
    b->kw = g->kw;
    b->in_off = q->input_offset;
    b->lo4 = ((uint32_t)q->act_min & 0xFFu) * 0x01010101u;
    b->hi4 = ((uint32_t)q->act_max & 0xFFu) * 0x01010101u;
    b->out_off = q->output_offset;
}

/* One tap of the block, in asm (so that gcc neither hoists nor spills the
 * loads): the 4 inputs at XADDR sign-extended into int16 pairs (channels 0,
 * 2 and 1, 3), plus %[off] in both halves for the OFS form (SXTAB16), times
 * the tap's weight words at [%[w], #WOFF], into a0..a3. */
#define DARB_DW_DSP_TAP(XADDR, WOFF, SXT, OFF)                \
    "ldr    %[x], " XADDR "\n\t"                                \
    "ldrd   %[w0], %[w1], [%[w], #" WOFF "]\n\t"                \
    SXT "  %[e], " OFF "%[x]\n\t"                               \
    SXT "  %[x], " OFF "%[x], ror #8\n\t"                       \
    "smlabb %[a0], %[e], %[w0], %[a0]\n\t"                      \
    "smlatt %[a2], %[e], %[w0], %[a2]\n\t"                      \
    "smlabb %[a1], %[x], %[w1], %[a1]\n\t"                      \
    "smlatt %[a3], %[x], %[w1], %[a3]\n\t"
#define DARB_DW_DSP_RAW(XADDR, WOFF) DARB_DW_DSP_TAP(XADDR, WOFF, "sxtb16", "")
#define DARB_DW_DSP_OUTPUTS                                                                    \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "=&r"(x_), [e] "=&r"(e_), \
        [w0] "=&r"(w0_), [w1] "=&r"(w1_)
/*
 * darb_requantize_fast(acc, multiplier, shift) + output_offset, saturated to
 * int8, with left = max(shift, 0) and right = max(-shift, 0):
 *   high = (int64(acc << left) * multiplier + 2^30) >> 31: the bits
 *          (hi:lo) >> 31 plus bit 30 of lo (the carry out of LSLS #2);
 *   ADDS of high >> 31 gives high - (high < 0) and carries exactly when
 *   high < 0; ASRS by `right` leaves in the carry the last bit shifted out
 *   (for right = 0 it keeps the ADDS's carry, giving back the 1 taken from a
 *   negative high); ADC adds that carry and output_offset. So the result is
 *   (high - (high < 0) + 2^(right-1)) >> right for right > 0 and high for
 *   right = 0 (gemmlowp's RoundingDivideByPOT), never overflowing.
 */
#define DARB_DW_REQUANT_BODY                                 \
    "smull %[lo], %[hi], %[t], %[m]\n\t"                     \
    "lsl   %[hi], %[hi], #1\n\t"                             \
    "lsls  %[t], %[lo], #2\n\t"                              \
    "adc   %[hi], %[hi], %[lo], lsr #31\n\t"                 \
    "adds  %[hi], %[hi], %[hi], asr #31\n\t"                 \
    "asrs  %[hi], %[hi], %[right]\n\t"                       \
    "adc   %[hi], %[hi], %[off]\n\t"                         \
    "ssat  %[hi], #8, %[hi]"

static inline int32_t darb_dw_requant(int32_t acc, int32_t multiplier, uint32_t left, uint32_t right,
                                      int32_t output_offset)
{
    int32_t hi;
    int32_t lo;
    int32_t t = acc;
    __asm__("lsl   %[t], %[t], %[left]\n\t" DARB_DW_REQUANT_BODY
            : [hi] "=&r"(hi), [lo] "=&r"(lo), [t] "+&r"(t)
            : [m] "r"(multiplier), [left] "r"(left), [right] "r"(right), [off] "r"(output_offset)
            : "cc");
    return hi;
}

/* the same for right shifts only (left = 0) */
static inline int32_t darb_dw_requant_right(int32_t acc, int32_t multiplier, uint32_t right, int32_t output_offset)
{
    int32_t hi;
    int32_t lo;
    int32_t t = acc;
    __asm__(DARB_DW_REQUANT_BODY
            : [hi] "=&r"(hi), [lo] "=&r"(lo), [t] "+&r"(t)
            : [m] "r"(multiplier), [right] "r"(right), [off] "r"(output_offset)
            : "cc");
    return hi;
}

/* The 4 outputs: requantized, packed into a word, clamped byte by byte
 * (SSUB8 sets the GE flags that SEL picks with), stored. The quick form
 * (every shift a right shift, the clamp int8's) leaves out the left shifts
 * and the clamp; the general one is out of line. */
static inline __attribute__((always_inline)) void darb_dw_store_as(const darb_dw_blk *b, int32_t a0, int32_t a1,
                                                                   int32_t a2, int32_t a3, int8_t *o, int quick)
{
    uint32_t v;
    int32_t v1;
    int32_t v2;
    int32_t v3;
    if (quick) {
        v = (uint32_t)darb_dw_requant_right(a0, b->rq[0].mult, b->rq[0].right, b->out_off);
        v1 = darb_dw_requant_right(a1, b->rq[1].mult, b->rq[1].right, b->out_off);
        v2 = darb_dw_requant_right(a2, b->rq[2].mult, b->rq[2].right, b->out_off);
        v3 = darb_dw_requant_right(a3, b->rq[3].mult, b->rq[3].right, b->out_off);
    } else {
        v = (uint32_t)darb_dw_requant(a0, b->rq[0].mult, b->rq[0].left, b->rq[0].right, b->out_off);
        v1 = darb_dw_requant(a1, b->rq[1].mult, b->rq[1].left, b->rq[1].right, b->out_off);
        v2 = darb_dw_requant(a2, b->rq[2].mult, b->rq[2].left, b->rq[2].right, b->out_off);
        v3 = darb_dw_requant(a3, b->rq[3].mult, b->rq[3].left, b->rq[3].right, b->out_off);
    }
    __asm__("bfi   %[v], %[v1], #8, #8\n\t"
            "bfi   %[v], %[v2], #16, #8\n\t"
            "bfi   %[v], %[v3], #24, #8"
            : [v] "+r"(v)
            : [v1] "r"(v1), [v2] "r"(v2), [v3] "r"(v3));
    if (!quick) {
        uint32_t t;
        __asm__("ssub8 %[t], %[v], %[lo]\n\t"
                "sel   %[v], %[v], %[lo]\n\t"
                "ssub8 %[t], %[hi], %[v]\n\t"
                "sel   %[v], %[v], %[hi]"
                : [v] "+&r"(v), [t] "=&r"(t)
                : [lo] "r"(b->lo4), [hi] "r"(b->hi4)
                : "cc");
    }
    memcpy(o, &v, sizeof v);
}

static DARB_DW_NOINLINE void darb_dw_store_general(const darb_dw_blk *b, int32_t a0, int32_t a1, int32_t a2,
                                                   int32_t a3, int8_t *o)
{
    darb_dw_store_as(b, a0, a1, a2, a3, o, 0);
}

static inline __attribute__((always_inline)) void darb_dw_store(const darb_dw_blk *b, int32_t a0, int32_t a1,
                                                                int32_t a2, int32_t a3, int8_t *o)
{
    if (b->quick) {
        darb_dw_store_as(b, a0, a1, a2, a3, o, 1);
    } else {
        darb_dw_store_general(b, a0, a1, a2, a3, o);
    }
}

/* `count` pixels of a 3x3 kernel whose windows lie inside the image, the
 * first reading p, the next ones `pstep` bytes on; outputs `ostep` apart.
 * The 9 taps are one asm block. */
static void darb_dw_run3x3(const darb_dw_blk *b, const int8_t *p, uint32_t count, uint32_t pstep, int8_t *o,
                           uint32_t ostep)
{
    const uint32_t dx = b->dx;
    const uint32_t dy = b->dy;
    const uint32_t *w = b->w[0];
    for (; count != 0u; --count, p += pstep, o += ostep) {
        const int8_t *r = p;
        int32_t a0 = b->full[0];
        int32_t a1 = b->full[1];
        int32_t a2 = b->full[2];
        int32_t a3 = b->full[3];
        uint32_t x_;
        uint32_t e_;
        uint32_t w0_;
        uint32_t w1_;
        __asm__(DARB_DW_DSP_RAW("[%[r]]", "0")
                DARB_DW_DSP_RAW("[%[r], %[dx]]", "8")
                DARB_DW_DSP_RAW("[%[r], %[dx], lsl #1]", "16")
                "add    %[r], %[r], %[dy]\n\t"
                DARB_DW_DSP_RAW("[%[r]]", "24")
                DARB_DW_DSP_RAW("[%[r], %[dx]]", "32")
                DARB_DW_DSP_RAW("[%[r], %[dx], lsl #1]", "40")
                "add    %[r], %[r], %[dy]\n\t"
                DARB_DW_DSP_RAW("[%[r]]", "48")
                DARB_DW_DSP_RAW("[%[r], %[dx]]", "56")
                DARB_DW_DSP_RAW("[%[r], %[dx], lsl #1]", "64")
                : DARB_DW_DSP_OUTPUTS, [r] "+r"(r)
                : [dx] "r"(dx), [dy] "r"(dy), [w] "r"(w)
                : "memory");
        darb_dw_store(b, a0, a1, a2, a3, o);
    }
}

/* One tap of a run: the raw inputs at XADDR times the next two weight words
 * of the run's list (post-incremented). */
#define DARB_DW_DSP_RTAP(XADDR)                                \
    "ldr     %[x], " XADDR "\n\t"                               \
    "sxtb16  %[e], %[x]\n\t"                                    \
    "sxtb16  %[x], %[x], ror #8\n\t"                            \
    "ldr     %[wv], [%[w]], #4\n\t"                             \
    "smlabb  %[a0], %[e], %[wv], %[a0]\n\t"                     \
    "smlatt  %[a2], %[e], %[wv], %[a2]\n\t"                     \
    "ldr     %[wv], [%[w]], #4\n\t"                             \
    "smlabb  %[a1], %[x], %[wv], %[a1]\n\t"                     \
    "smlatt  %[a3], %[x], %[wv], %[a3]\n\t"
#define DARB_DW_DSP_RROW1 DARB_DW_DSP_RTAP("[%[r]]")
#define DARB_DW_DSP_RROW2 DARB_DW_DSP_RROW1 DARB_DW_DSP_RTAP("[%[r], %[dx]]")
#define DARB_DW_DSP_RROW3 DARB_DW_DSP_RROW2 DARB_DW_DSP_RTAP("[%[r], %[dx], lsl #1]")
/* the rows of a window, ROW each, as one asm loop: after a row's weights the
 * list holds the input step to the next row, 0 after the last row */
#define DARB_DW_DSP_WINDOW(ROW)                                                                     \
    __asm__("1:\n\t" ROW                                                                            \
            "ldr     %[wv], [%[w]], #4\n\t"                                                         \
            "add     %[r], %[r], %[wv]\n\t"                                                         \
            "cmp     %[wv], #0\n\t"                                                                 \
            "bne     1b"                                                                            \
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "=&r"(x_), [e] "=&r"(e_), \
              [wv] "=&r"(wv_), [r] "+r"(r), [w] "+r"(w)                                             \
            : [dx] "r"(dx)                                                                          \
            : "cc", "memory")

/* the low 16 bits of v as a signed value */
static inline int32_t darb_dw_half(uint32_t v)
{
    return (int32_t)(v & 0xFFFFu) - (int32_t)((v & 0x8000u) << 1);
}

/* `count` pixels over the taps [ky0, ky0 + nky) x [kx0, kx0 + nkx) (t0 =
 * ky0 * kw + kx0; p: the input of the first pixel's tap (ky0, kx0)), the
 * next ones `pstep` bytes on, outputs `ostep` apart. The run's weights are
 * first listed in tap order, row by row, and its start is the bias plus
 * input_offset times the sum of those weights, so that the taps multiply
 * raw inputs and rows of 1 to 3 taps go as one asm loop over the window. */
static void darb_dw_run(const darb_dw_blk *b, const int8_t *p, uint32_t t0, uint32_t nky, uint32_t nkx,
                        uint32_t count, uint32_t pstep, int8_t *o, uint32_t ostep)
{
    const uint32_t dx = b->dx;
    uint32_t list[2u * DARB_DW_TAPS + DARB_DW_TAPS];
    int32_t start[4];
    uint32_t sum0 = 0u; /* the weights' sums in int16 halves: channels 0, 2 and 1, 3 (|sum| <= 9 * 128) */
    uint32_t sum1 = 0u;
    uint32_t ky;
    uint32_t kx;
    uint32_t *at = list;
    if (nky == b->kh && nkx == b->kw && b->kh == 3u && b->kw == 3u) {
        darb_dw_run3x3(b, p, count, pstep, o, ostep);
        return;
    }
    if (nkx == 0u) {
        nky = 0u;
    }
    for (ky = 0u; ky < nky; ++ky) {
        const uint32_t *w = b->w[t0 + ky * b->kw];
        for (kx = 0u; kx < nkx; ++kx, w += 2) {
            at[0] = w[0];
            at[1] = w[1];
            at += 2;
            __asm__("sadd16 %0, %0, %1" : "+r"(sum0) : "r"(w[0]));
            __asm__("sadd16 %0, %0, %1" : "+r"(sum1) : "r"(w[1]));
        }
        *at++ = ky + 1u < nky ? b->dy : 0u;
    }
    start[0] = b->bias[0] + b->in_off * darb_dw_half(sum0);
    start[1] = b->bias[1] + b->in_off * darb_dw_half(sum1);
    start[2] = b->bias[2] + b->in_off * darb_dw_half(sum0 >> 16);
    start[3] = b->bias[3] + b->in_off * darb_dw_half(sum1 >> 16);
    for (; count != 0u; --count, p += pstep, o += ostep) {
        const int8_t *r = p;
        const uint32_t *w = list;
        int32_t a0 = start[0];
        int32_t a1 = start[1];
        int32_t a2 = start[2];
        int32_t a3 = start[3];
        uint32_t x_;
        uint32_t e_;
        uint32_t wv_;
        if (nky != 0u) {
            if (nkx == 1u) {
                DARB_DW_DSP_WINDOW(DARB_DW_DSP_RROW1);
            } else if (nkx == 2u) {
                DARB_DW_DSP_WINDOW(DARB_DW_DSP_RROW2);
            } else if (nkx == 3u) {
                DARB_DW_DSP_WINDOW(DARB_DW_DSP_RROW3);
            } else {
                for (ky = 0u; ky < nky; ++ky, r += b->dy, ++w) {
                    const int8_t *px = r;
                    for (kx = 0u; kx < nkx; ++kx, px += dx) {
                        __asm__(DARB_DW_DSP_RROW1
                                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "=&r"(x_),
                                  [e] "=&r"(e_), [wv] "=&r"(wv_), [w] "+r"(w)
                                : [r] "r"(px)
                                : "memory");
                    }
                }
            }
        }
        darb_dw_store(b, a0, a1, a2, a3, o);
    }
}

/* ------------------------------------------------------------------ MVE: 8 channels a vector */
#elif defined(DARB_DW_MVE)

#define DARB_DW_LANES 8u

/* A block of 8 channels (fewer in the tail: the other lanes hold zeros and
 * are neither loaded nor stored): per tap the weights as int16; per channel,
 * split into the even (0, 2, 4, 6) and odd (1, 3, 5, 7) channels as VMULLB
 * and VMULLT leave them, the full-window start, the bias and the
 * requantization; the constants of the sweep. */
typedef struct {
    int16_t w[DARB_DW_TAPS][8];
    int32_t full[2][4];
    int32_t bias[2][4];
    int32_t mult[2][4];
    int8_t left[2][4];
    int8_t negr[2][4];    /* -right: VRSHL by a negative count is a rounding right shift */
    int8_t neg[2][4];     /* -1 where right > 0, where a negative value rounds its halves down */
    uint32_t quick;       /* every shift < 0 and the clamp the whole int8 range: the quick output stage */
    uint32_t dx;
    uint32_t dy;
    uint32_t kh;
    uint32_t kw;
    uint32_t n;           /* channels in the block */
    int32_t in_off;
    int32_t out_off;
    int32_t act_min;
    int32_t act_max;
} darb_dw_blk;

static void darb_dw_blk_init(darb_dw_blk *b, const darb_dw_geometry *g, const int8_t *weights,
                             const darb_dw_quant_s8 *q, uint32_t c0)
{
    const uint32_t in_c = g->in_c;
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    const uint32_t n = in_c - c0 < 8u ? in_c - c0 : 8u;
    uint32_t right_only = 1u;
    uint32_t j;
    uint32_t t;
    for (j = 0u; j < 8u; ++j) {
        const uint32_t h = j & 1u;
        const uint32_t l = j >> 1;
        const int32_t s = j < n ? q->shift[c0 + j] : 0;
        int32_t sum = 0;
        b->bias[h][l] = j < n && q->bias != 0 ? q->bias[c0 + j] : 0;
        b->mult[h][l] = j < n ? q->multiplier[c0 + j] : 0;
        b->left[h][l] = (int8_t)(s > 0 ? s : 0);
        b->negr[h][l] = (int8_t)(s > 0 ? 0 : s);
        b->neg[h][l] = (int8_t)(s < 0 ? -1 : 0);
        right_only &= j >= n || s < 0 ? 1u : 0u;
        for (t = 0u; t < taps; ++t) {
            const int32_t w = j < n ? (int32_t)weights[t * in_c + c0 + j] : 0;
            b->w[t][j] = (int16_t)w;
            sum += w;
        }
        b->full[h][l] = b->bias[h][l] + q->input_offset * sum;
    }
    b->quick = right_only && q->act_min == -128 && q->act_max == 127 ? 1u : 0u;
    b->dx = (uint32_t)g->dil_w * in_c;
    b->dy = (uint32_t)g->dil_h * g->in_w * in_c;
    b->kh = g->kh;
    b->kw = g->kw;
    b->n = n;
    b->in_off = q->input_offset;
    b->out_off = q->output_offset;
    b->act_min = q->act_min;
    b->act_max = q->act_max;
}

/* ---- the tail block (fewer than 8 channels): intrinsics, predicated */

/* darb_requantize_fast lane by lane (VQRDMULH is gemmlowp's
 * SaturatingRoundingDoublingHighMul; VRSHL rounds halves up, so negative
 * values first lose 1 where right > 0) plus output_offset. */
static inline int32x4_t darb_dw_mve_requant(int32x4_t acc, const darb_dw_blk *b, uint32_t h)
{
    int32x4_t v = vshlq_s32(acc, vldrbq_s32(b->left[h]));
    v = vqrdmulhq_s32(v, vld1q_s32(b->mult[h]));
    v = vaddq_s32(v, vandq_s32(vshrq_n_s32(v, 31), vldrbq_s32(b->neg[h])));
    v = vrshlq_s32(v, vldrbq_s32(b->negr[h]));
    return vaddq_n_s32(v, b->out_off);
}

static void darb_dw_tail_pixel(const darb_dw_blk *b, const int8_t *p, uint32_t t0, uint32_t nky, uint32_t nkx,
                               int8_t *o)
{
    const mve_pred16_t pred = vctp16q(b->n);
    const int full = nky == b->kh && nkx == b->kw;
    const int16_t off = full ? 0 : (int16_t)b->in_off;
    int32x4_t e = vld1q_s32(full ? b->full[0] : b->bias[0]);
    int32x4_t od = vld1q_s32(full ? b->full[1] : b->bias[1]);
    int16x8_t r;
    uint32_t ky;
    for (ky = 0u; ky < nky; ++ky, p += b->dy, t0 += b->kw) {
        const int8_t *px = p;
        uint32_t kx;
        for (kx = 0u; kx < nkx; ++kx, px += b->dx) {
            const int16x8_t x = vaddq_n_s16(vldrbq_z_s16(px, pred), off);
            const int16x8_t w = vld1q_s16(b->w[t0 + kx]);
            e = vaddq_s32(e, vmullbq_int_s16(x, w));
            od = vaddq_s32(od, vmulltq_int_s16(x, w));
        }
    }
    r = vqmovnbq_s32(vuninitializedq_s16(), darb_dw_mve_requant(e, b, 0u));
    r = vqmovntq_s32(r, darb_dw_mve_requant(od, b, 1u));
    r = vmaxq_s16(r, vdupq_n_s16((int16_t)b->act_min));
    r = vminq_s16(r, vdupq_n_s16((int16_t)b->act_max));
    vstrbq_p_s16(o, r, pred);
}

/* ---- whole blocks: asm (gcc's allocation of the 8 Q registers spills in
 * the pixel loops), the constants loaded with immediate offsets from the
 * block */

/* The output stage: darb_dw_mve_requant of both halves, narrowing with
 * saturation to int16, clamp, store of the 8 bytes. Where every shift of
 * the block is negative the left shift goes and the rounding's "minus 1
 * for negative values" needs no mask; where the clamp is the whole int8
 * range a saturating narrowing to 8 bits replaces it. */
/* offsets of the int8 shift constants from the first of them (VLDRB reaches 127 bytes) */
#define DARB_DW_S8(FIELD) (offsetof(darb_dw_blk, FIELD) - offsetof(darb_dw_blk, left))
#define DARB_DW_MVE_REQUANT(H, IDX)                                   \
    "vldrb.s32    %q[p], [%[s8], #%c[left" IDX "]]\n\t"                 \
    "vshl.s32     " H ", " H ", %q[p]\n\t"                             \
    "vldrw.32     %q[p], [%[b], #%c[mult" IDX "]]\n\t"                 \
    "vqrdmulh.s32 " H ", " H ", %q[p]\n\t"                             \
    "vldrb.s32    %q[p], [%[s8], #%c[neg" IDX "]]\n\t"                  \
    "vshr.s32     %q[t], " H ", #31\n\t"                               \
    "vand         %q[t], %q[t], %q[p]\n\t"                             \
    "vadd.i32     " H ", " H ", %q[t]\n\t"                             \
    "vldrb.s32    %q[p], [%[s8], #%c[negr" IDX "]]\n\t"                 \
    "vrshl.s32    " H ", " H ", %q[p]\n\t"                             \
    "vadd.i32     " H ", " H ", %[off]\n\t"
#define DARB_DW_MVE_REQUANT_RIGHT(H, IDX)                             \
    "vldrw.32     %q[p], [%[b], #%c[mult" IDX "]]\n\t"                 \
    "vqrdmulh.s32 " H ", " H ", %q[p]\n\t"                             \
    "vshr.s32     %q[t], " H ", #31\n\t"                               \
    "vadd.i32     " H ", " H ", %q[t]\n\t"                             \
    "vldrb.s32    %q[p], [%[s8], #%c[negr" IDX "]]\n\t"                 \
    "vrshl.s32    " H ", " H ", %q[p]\n\t"                             \
    "vadd.i32     " H ", " H ", %[off]\n\t"
#define DARB_DW_MVE_CLAMP                                             \
    "vdup.16      %q[p], %[lo]\n\t"                                   \
    "vmax.s16     %q[r], %q[r], %q[p]\n\t"                            \
    "vdup.16      %q[p], %[hi]\n\t"                                   \
    "vmin.s16     %q[r], %q[r], %q[p]\n\t"
#define DARB_DW_MVE_SATURATE "vqmovnb.s16  %q[r], %q[r]\n\t"
#define DARB_DW_MVE_OUT_ASM(REQUANT, CLAMP)                                                                   \
    __asm__(REQUANT("%q[e]", "0")                                                                              \
            REQUANT("%q[od]", "1")                                                                             \
            "vqmovnb.s32  %q[r], %q[e]\n\t"                                                                    \
            "vqmovnt.s32  %q[r], %q[od]\n\t"                                                                   \
            CLAMP                                                                                              \
            "vstrb.16     %q[r], [%[o]]"                                                                       \
            : [e] "+w"(e), [od] "+w"(od), [p] "=&w"(p), [t] "=&w"(t), [r] "=&w"(r),                          \
              [stored] "=m"(*(int8_t(*)[8])o)                                                                 \
            : [b] "r"(b), [s8] "l"(b->left[0]), [o] "l"(o), [off] "r"(b->out_off), [lo] "r"(b->act_min),         \
              [hi] "r"(b->act_max), [mult0] "i"(offsetof(darb_dw_blk, mult[0])),                               \
              [mult1] "i"(offsetof(darb_dw_blk, mult[1])), [left0] "i"(DARB_DW_S8(left[0])),                 \
              [left1] "i"(DARB_DW_S8(left[1])), [neg0] "i"(DARB_DW_S8(neg[0])), [neg1] "i"(DARB_DW_S8(neg[1])), \
              [negr0] "i"(DARB_DW_S8(negr[0])), [negr1] "i"(DARB_DW_S8(negr[1]))                             \
            : "memory")

static inline void darb_dw_mve_out_quick(const darb_dw_blk *b, int32x4_t e, int32x4_t od, int8_t *o)
{
    int32x4_t p;
    int32x4_t t;
    int16x8_t r;
    DARB_DW_MVE_OUT_ASM(DARB_DW_MVE_REQUANT_RIGHT, DARB_DW_MVE_SATURATE);
}

static inline void darb_dw_mve_out_general(const darb_dw_blk *b, int32x4_t e, int32x4_t od, int8_t *o)
{
    int32x4_t p;
    int32x4_t t;
    int16x8_t r;
    DARB_DW_MVE_OUT_ASM(DARB_DW_MVE_REQUANT, DARB_DW_MVE_CLAMP);
}

static inline void darb_dw_mve_out(const darb_dw_blk *b, int32x4_t e, int32x4_t od, int8_t *o)
{
    if (b->quick) {
        darb_dw_mve_out_quick(b, e, od, o);
    } else {
        darb_dw_mve_out_general(b, e, od, o);
    }
}

/* One tap: the 8 inputs at ADDR (int16, raw) times the weights at [%[w],
 * #WOFF], the even products into e, the odd ones into od. */
#define DARB_DW_MVE_TAP(ADDR, WOFF)                      \
    "vldrb.s16    %q[x], " ADDR "\n\t"                    \
    "vldrh.16     %q[wv], [%[w], #" WOFF "]\n\t"          \
    "vmullb.s16   %q[t], %q[x], %q[wv]\n\t"               \
    "vmullt.s16   %q[u], %q[x], %q[wv]\n\t"               \
    "vadd.i32     %q[e], %q[e], %q[t]\n\t"                \
    "vadd.i32     %q[od], %q[od], %q[u]\n\t"

/* `count` pixels of a 3x3 kernel whose windows lie inside the image (see
 * the DSP version), the 9 taps in one asm block. */
static inline void darb_dw_mve_run3x3(const darb_dw_blk *b, const int8_t *p, uint32_t count, uint32_t pstep,
                                      int8_t *o, uint32_t ostep, int quick)
{
    const uint32_t dx = b->dx;
    const uint32_t dy = b->dy;
    for (; count != 0u; --count, p += pstep, o += ostep) {
        const int8_t *r = p;
        const int8_t *a_;
        int32x4_t e;
        int32x4_t od;
        int16x8_t x_;
        int16x8_t wv_;
        int32x4_t t_;
        int32x4_t u_;
        __asm__("vldrw.32     %q[e], [%[w], #%c[full0]]\n\t"
                "vldrw.32     %q[od], [%[w], #%c[full1]]\n\t"
                DARB_DW_MVE_TAP("[%[r]]", "0")
                "add          %[a], %[r], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "16")
                "add          %[a], %[a], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "32")
                "add          %[r], %[r], %[dy]\n\t"
                DARB_DW_MVE_TAP("[%[r]]", "48")
                "add          %[a], %[r], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "64")
                "add          %[a], %[a], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "80")
                "add          %[r], %[r], %[dy]\n\t"
                DARB_DW_MVE_TAP("[%[r]]", "96")
                "add          %[a], %[r], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "112")
                "add          %[a], %[a], %[dx]\n\t"
                DARB_DW_MVE_TAP("[%[a]]", "128")
                : [e] "=&w"(e), [od] "=&w"(od), [x] "=&w"(x_), [wv] "=&w"(wv_), [t] "=&w"(t_), [u] "=&w"(u_),
                  [r] "+l"(r), [a] "=&l"(a_)
                : [w] "r"(b), [dx] "r"(dx), [dy] "r"(dy), [full0] "i"(offsetof(darb_dw_blk, full[0])),
                  [full1] "i"(offsetof(darb_dw_blk, full[1]))
                : "memory");
        if (quick) {
            darb_dw_mve_out_quick(b, e, od, o);
        } else {
            darb_dw_mve_out_general(b, e, od, o);
        }
    }
}

static void darb_dw_run3x3(const darb_dw_blk *b, const int8_t *p, uint32_t count, uint32_t pstep, int8_t *o,
                           uint32_t ostep)
{
    if (b->quick) {
        darb_dw_mve_run3x3(b, p, count, pstep, o, ostep, 1);
    } else {
        darb_dw_mve_run3x3(b, p, count, pstep, o, ostep, 0);
    }
}

/* one tap of a run: the inputs at ADDR times the next weights of the run's
 * list (post-incremented) */
#define DARB_DW_MVE_RTAP(ADDR)                           \
    "vldrb.s16    %q[x], " ADDR "\n\t"                    \
    "vldrh.16     %q[wv], [%[w]], #16\n\t"                \
    "vmullb.s16   %q[t], %q[x], %q[wv]\n\t"               \
    "vmullt.s16   %q[u], %q[x], %q[wv]\n\t"               \
    "vadd.i32     %q[e], %q[e], %q[t]\n\t"                \
    "vadd.i32     %q[od], %q[od], %q[u]\n\t"
#define DARB_DW_MVE_RROW1 DARB_DW_MVE_RTAP("[%[r]]")
#define DARB_DW_MVE_RROW2 DARB_DW_MVE_RROW1 "add          %[a], %[r], %[dx]\n\t" DARB_DW_MVE_RTAP("[%[a]]")
#define DARB_DW_MVE_RROW3 DARB_DW_MVE_RROW2 "add          %[a], %[a], %[dx]\n\t" DARB_DW_MVE_RTAP("[%[a]]")
/* the n rows of a window, ROW each, as one asm loop; the weights of the next
 * row are `skip` bytes after the row's last ones */
#define DARB_DW_MVE_WINDOW(ROW)                                                                           \
    __asm__("1:\n\t" ROW                                                                                  \
            "add          %[r], %[r], %[dy]\n\t"                                                          \
            "add          %[w], %[w], %[skip]\n\t"                                                        \
            "subs         %[n], %[n], #1\n\t"                                                             \
            "bne          1b"                                                                             \
            : [e] "+w"(e), [od] "+w"(od), [x] "=&w"(x_), [wv] "=&w"(wv_), [t] "=&w"(t_), [u] "=&w"(u_), \
              [a] "=&l"(a_), [r] "+l"(r), [w] "+r"(w), [n] "+r"(n)                                      \
            : [dx] "r"(dx), [dy] "r"(dy), [skip] "r"(skip)                                                \
            : "cc", "memory")

/* `count` pixels over the taps [ky0, ky0 + nky) x [kx0, kx0 + nkx) (see the
 * DSP version): the run's start is the bias plus input_offset times the sum
 * of its taps' weights, the taps multiply raw inputs, rows of 1 to 3 taps
 * go as one asm loop over the window. */
static void darb_dw_run(const darb_dw_blk *b, const int8_t *p, uint32_t t0, uint32_t nky, uint32_t nkx,
                        uint32_t count, uint32_t pstep, int8_t *o, uint32_t ostep)
{
    const uint32_t dx = b->dx;
    const uint32_t dy = b->dy;
    const uint32_t kw = b->kw;
    const uint32_t skip = nkx < kw ? 16u * (kw - nkx) : 0u;
    int16x8_t sum = vdupq_n_s16(0);
    int32_t start[2][4];
    uint32_t ky;
    uint32_t kx;
    if (b->n != 8u) {
        for (; count != 0u; --count, p += pstep, o += ostep) {
            darb_dw_tail_pixel(b, p, t0, nky, nkx, o);
        }
        return;
    }
    if (nky == b->kh && nkx == kw && kw == 3u && b->kh == 3u) {
        darb_dw_run3x3(b, p, count, pstep, o, ostep);
        return;
    }
    if (nkx == 0u) {
        nky = 0u;
    }
    for (ky = 0u; ky < nky; ++ky) {
        for (kx = 0u; kx < nkx; ++kx) {
            sum = vaddq_s16(sum, vld1q_s16(b->w[t0 + ky * kw + kx]));
        }
    }
    vst1q_s32(start[0], vaddq_s32(vld1q_s32(b->bias[0]), vmullbq_int_s16(sum, vdupq_n_s16((int16_t)b->in_off))));
    vst1q_s32(start[1], vaddq_s32(vld1q_s32(b->bias[1]), vmulltq_int_s16(sum, vdupq_n_s16((int16_t)b->in_off))));
    for (; count != 0u; --count, p += pstep, o += ostep) {
        const int8_t *r = p;
        const int16_t *w = b->w[t0];
        uint32_t n = nky;
        int32x4_t e = vld1q_s32(start[0]);
        int32x4_t od = vld1q_s32(start[1]);
        int16x8_t x_;
        int16x8_t wv_;
        int32x4_t t_;
        int32x4_t u_;
        const int8_t *a_;
        if (n != 0u) {
            if (nkx == 1u) {
                DARB_DW_MVE_WINDOW(DARB_DW_MVE_RROW1);
            } else if (nkx == 2u) {
                DARB_DW_MVE_WINDOW(DARB_DW_MVE_RROW2);
            } else if (nkx == 3u) {
                DARB_DW_MVE_WINDOW(DARB_DW_MVE_RROW3);
            } else {
                for (; n != 0u; --n, r += dy, w += 8u * (kw - nkx)) {
                    const int8_t *px = r;
                    for (kx = 0u; kx < nkx; ++kx, px += dx) {
                        __asm__(DARB_DW_MVE_RROW1
                                : [e] "+w"(e), [od] "+w"(od), [x] "=&w"(x_), [wv] "=&w"(wv_), [t] "=&w"(t_),
                                  [u] "=&w"(u_), [w] "+r"(w)
                                : [r] "l"(px)
                                : "memory");
                    }
                }
            }
        }
        darb_dw_mve_out(b, e, od, o);
    }
}

/* ------------------------------------------------------------------ plain C: 4 channels a block */
#else

#define DARB_DW_LANES 4u

typedef struct {
    int16_t w[DARB_DW_TAPS][4];
    int32_t full[4];
    int32_t bias[4];
    uint32_t dx;
    uint32_t dy;
    uint32_t kh;
    uint32_t kw;
    uint32_t c0;
    int32_t in_off;
    const darb_dw_quant_s8 *q;
} darb_dw_blk;

static void darb_dw_blk_init(darb_dw_blk *b, const darb_dw_geometry *g, const int8_t *weights,
                             const darb_dw_quant_s8 *q, uint32_t c0)
{
    const uint32_t in_c = g->in_c;
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    uint32_t j;
    uint32_t t;
    for (j = 0u; j < 4u; ++j) {
        b->bias[j] = q->bias != 0 ? q->bias[c0 + j] : 0;
        b->full[j] = b->bias[j];
    }
    for (t = 0u; t < taps; ++t) {
        for (j = 0u; j < 4u; ++j) {
            b->w[t][j] = weights[t * in_c + c0 + j];
            b->full[j] += q->input_offset * (int32_t)b->w[t][j];
        }
    }
    b->dx = (uint32_t)g->dil_w * in_c;
    b->dy = (uint32_t)g->dil_h * g->in_w * in_c;
    b->kh = g->kh;
    b->kw = g->kw;
    b->c0 = c0;
    b->in_off = q->input_offset;
    b->q = q;
}

static inline int8_t darb_dw_c_out(int32_t acc, const darb_dw_quant_s8 *q, uint32_t oc)
{
    int32_t v = darb_requantize_fast(acc, q->multiplier[oc], q->shift[oc]) + q->output_offset;
    v = v < q->act_min ? q->act_min : v;
    v = v > q->act_max ? q->act_max : v;
    return (int8_t)v;
}

/* `count` pixels over the taps [ky0, ky0 + nky) x [kx0, kx0 + nkx) (see the
 * DSP version): full windows from the full-window start with raw inputs,
 * the others from the bias with input_offset added. */
static void darb_dw_run(const darb_dw_blk *b, const int8_t *p, uint32_t t0, uint32_t nky, uint32_t nkx,
                        uint32_t count, uint32_t pstep, int8_t *o, uint32_t ostep)
{
    const int full = nky == b->kh && nkx == b->kw;
    const int32_t *start = full ? b->full : b->bias;
    const int32_t off = full ? 0 : b->in_off;
    for (; count != 0u; --count, p += pstep, o += ostep) {
        const int8_t *row = p;
        const int16_t(*wrow)[4] = (const int16_t(*)[4])b->w + t0;
        int32_t a0 = start[0];
        int32_t a1 = start[1];
        int32_t a2 = start[2];
        int32_t a3 = start[3];
        uint32_t ky;
        for (ky = 0u; ky < nky; ++ky, row += b->dy, wrow += b->kw) {
            const int8_t *px = row;
            const int16_t(*w)[4] = wrow;
            uint32_t kx;
            for (kx = 0u; kx < nkx; ++kx, ++w, px += b->dx) {
                a0 += ((int32_t)px[0] + off) * (*w)[0];
                a1 += ((int32_t)px[1] + off) * (*w)[1];
                a2 += ((int32_t)px[2] + off) * (*w)[2];
                a3 += ((int32_t)px[3] + off) * (*w)[3];
            }
        }
        o[0] = darb_dw_c_out(a0, b->q, b->c0);
        o[1] = darb_dw_c_out(a1, b->q, b->c0 + 1u);
        o[2] = darb_dw_c_out(a2, b->q, b->c0 + 2u);
        o[3] = darb_dw_c_out(a3, b->q, b->c0 + 3u);
    }
}

#endif

/*
 * The channel-block loop (see the top of the file). For each block of
 * DARB_DW_LANES channels (the MVE tail predicated, otherwise whole blocks
 * only) the image goes as runs of pixels with the same taps inside the
 * image: the rows of the interior (windows wholly inside), the border
 * columns beside it (one run each), then the border rows (their middle
 * stretch as one run, their border pixels one by one). Returns the first
 * channel it did not cover.
 */
static uint32_t darb_dw_s8_blocks(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                                  const int8_t *in, int8_t *out)
{
    const uint32_t in_c = g->in_c;
    const uint32_t in_row = (uint32_t)g->in_w * in_c;
    const uint32_t out_row = (uint32_t)g->out_w * in_c;
    const uint32_t sx = (uint32_t)g->stride_w * in_c;
    const uint32_t sy = (uint32_t)g->stride_h * in_row;
    const uint32_t kw = g->kw;
#if defined(DARB_DW_MVE)
    const uint32_t cover = in_c;
#else
    const uint32_t cover = in_c - in_c % DARB_DW_LANES;
#endif
    uint32_t oy_lo;
    uint32_t oy_hi;
    uint32_t ox_lo;
    uint32_t ox_hi;
    uint32_t c0;
    darb_dw_blk b;

    darb_dw_full_range(g->out_h, g->stride_h, g->pad_top, g->kh, g->dil_h, g->in_h, &oy_lo, &oy_hi);
    darb_dw_full_range(g->out_w, g->stride_w, g->pad_left, kw, g->dil_w, g->in_w, &ox_lo, &ox_hi);
    for (c0 = 0u; c0 < cover; c0 += DARB_DW_LANES) {
        uint32_t oy;
        uint32_t ox;
        darb_dw_blk_init(&b, g, weights, q, c0);
        /* rows whose windows lie inside vertically: the interior, then the border columns */
        if (oy_lo < oy_hi) {
            const uint32_t iy_lo = oy_lo * g->stride_h - g->pad_top;
            for (oy = oy_lo; ox_lo < ox_hi && oy < oy_hi; ++oy) {
                const uint32_t iy = oy * g->stride_h - g->pad_top;
                darb_dw_run(&b, in + iy * in_row + (ox_lo * g->stride_w - g->pad_left) * in_c + c0, 0u, g->kh, kw,
                            ox_hi - ox_lo, sx, out + oy * out_row + ox_lo * in_c + c0, in_c);
            }
            for (ox = 0u; ox < g->out_w; ++ox) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
                const int8_t *p = in;
                uint32_t kx0;
                uint32_t nkx;
                if (ox == ox_lo && ox_lo < ox_hi) {
                    ox = ox_hi - 1u;
                    continue;
                }
                darb_dw_span(ix0, kw, g->dil_w, g->in_w, &kx0, &nkx);
                if (nkx != 0u) {
                    p = in + iy_lo * in_row + (uint32_t)(ix0 + (int32_t)(kx0 * g->dil_w)) * in_c + c0;
                }
                darb_dw_run(&b, p, kx0, g->kh, nkx, oy_hi - oy_lo, sy, out + oy_lo * out_row + ox * in_c + c0,
                            out_row);
            }
        }
        /* rows whose windows reach outside vertically */
        for (oy = 0u; oy < g->out_h; ++oy) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
            int8_t *o = out + oy * out_row + c0;
            uint32_t at = 0u; /* input offset of row ky0, channel c0 */
            uint32_t ky0;
            uint32_t nky;
            if (oy == oy_lo && oy_lo < oy_hi) {
                oy = oy_hi - 1u;
                continue;
            }
            darb_dw_span(iy0, g->kh, g->dil_h, g->in_h, &ky0, &nky);
            if (nky != 0u) {
                at = (uint32_t)(iy0 + (int32_t)(ky0 * g->dil_h)) * in_row + c0;
            }
            for (ox = 0u; ox < g->out_w; ++ox) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
                const int8_t *p;
                uint32_t kx0;
                uint32_t nkx;
                if (ox == ox_lo && ox_lo < ox_hi) {
                    p = nky != 0u ? in + at + (uint32_t)ix0 * in_c : in;
                    darb_dw_run(&b, p, ky0 * kw, nky, kw, ox_hi - ox_lo, sx, o + ox * in_c, in_c);
                    ox = ox_hi - 1u;
                    continue;
                }
                darb_dw_span(ix0, kw, g->dil_w, g->in_w, &kx0, &nkx);
                p = in;
                if (nky != 0u && nkx != 0u) {
                    p = in + at + (uint32_t)(ix0 + (int32_t)(kx0 * g->dil_w)) * in_c;
                }
                darb_dw_run(&b, p, ky0 * kw + kx0, nky, nkx, 1u, 0u, o + ox * in_c, 0u);
            }
        }
    }
    return cover;
}

#endif /* DARB_DW_CHANNEL_BLOCKS */

void darb_depthwise_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                       const int8_t *in, int8_t *out)
{
    uint32_t done = 0u;
#ifdef DARB_DW_CHANNEL_BLOCKS
    if (g->mult == 1u && (uint32_t)g->kh * g->kw <= DARB_DW_TAPS) {
        done = darb_dw_s8_blocks(g, weights, q, in, out);
    }
#endif
    if (done < (uint32_t)g->in_c * g->mult) {
        darb_dw_s8_general(g, weights, q, in, out, done, (uint32_t)g->in_c * g->mult);
    }
}

void darb_depthwise_f32(const darb_dw_geometry *g, const float *weights, const darb_dw_quant_f32 *q,
                        const float *in, float *out)
{
    const uint32_t in_c = g->in_c;
    const uint32_t mult = g->mult;
    const uint32_t out_c = in_c * mult;
    const uint32_t row_stride = (uint32_t)g->in_w * in_c;
    float acc[DARB_DW_BLOCK];
    uint32_t oy;
    uint32_t ox;

    for (oy = 0u; oy < g->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
        uint32_t ky0;
        uint32_t ky1;
        darb_dw_tap_range(iy0, g->kh, g->dil_h, g->in_h, &ky0, &ky1);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
            float *o = out + ((uint32_t)oy * g->out_w + ox) * out_c;
            uint32_t kx0;
            uint32_t kx1;
            uint32_t oc0;
            uint32_t c0 = 0u;
            uint32_t m0 = 0u;
            darb_dw_tap_range(ix0, g->kw, g->dil_w, g->in_w, &kx0, &kx1);
            for (oc0 = 0u; oc0 < out_c; oc0 += DARB_DW_BLOCK) {
                const uint32_t n = out_c - oc0 < DARB_DW_BLOCK ? out_c - oc0 : DARB_DW_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0.0f;
                }
                for (ky = ky0; ky < ky1; ++ky) {
                    const float *row = in + (uint32_t)(iy0 + (int32_t)(ky * g->dil_h)) * row_stride;
                    const float *wrow = weights + ((uint32_t)ky * g->kw) * out_c + oc0;
                    for (kx = kx0; kx < kx1; ++kx) {
                        const float *px = row + (uint32_t)(ix0 + (int32_t)(kx * g->dil_w)) * in_c;
                        const float *pw = wrow + kx * out_c;
                        if (mult == 1u) {
                            const float *pc = px + oc0;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += pc[j] * pw[j];
                            }
                        } else {
                            uint32_t c = c0;
                            uint32_t m = m0;
                            float xv = px[c];
                            for (j = 0u; j < n; ++j) {
                                acc[j] += xv * pw[j];
                                if (++m == mult) {
                                    m = 0u;
                                    ++c;
                                    if (j + 1u < n) {
                                        xv = px[c];
                                    }
                                }
                            }
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const uint32_t oc = oc0 + j;
                    float v = acc[j] + (q->bias != 0 ? q->bias[oc] : 0.0f);
                    v = v < q->act_min ? q->act_min : v;
                    v = v > q->act_max ? q->act_max : v;
                    o[oc] = v;
                }
                m0 += n;
                while (m0 >= mult) {
                    m0 -= mult;
                    ++c0;
                }
            }
        }
    }
}
