/*
 * darb_depthwise.c - depthwise convolution over NHWC images (int8 and float32).
 *
 * darb_depthwise_s8 has three ways through an image. All give every output
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
 * - The plane path, on the DSP (Cortex-M4, M7, M33) and MVE (Cortex-M55)
 *   cores, for 3x3 kernels with stride 1, dilation 1 and depth multiplier 1
 *   (KWS's DS-CNN, MobileNet's stride-1 layers) whose shifts are all right
 *   shifts of 1..22 and |bias| < 2^29 (see "3x3 stride-1 layers" below): a
 *   band of rows by a tile of columns of one channel at a time goes into a
 *   plane on the stack with the padding around the image filled with the
 *   input zero point, which turns every window into a full 3x3 one of raw
 *   int8 inputs. On the DSP cores the plane holds int16 pairs of rows, and
 *   a pair of output rows takes 12 multiply instructions (SMLAD for 2 taps,
 *   SMLAxy for 1) for 18 taps, the output stage 5 instructions a value
 *   (SMMLAR with the rounding folded into its addend); on MVE a block of 4
 *   output rows of a column is one vector of int32 lanes, 9 VMLA by the
 *   weights as scalars, a column's loads serving the 3 output columns that
 *   hold it, the output stage 6 instructions for 4 values (VQRDMLAH, VQSHL
 *   saturating into the top byte, a scatter store). The whole tile, the
 *   copy of the channels into the plane, their constants and the columns,
 *   is one asm function (2.4 KB of code with its C driver on the Cortex-M4,
 *   2.0 KB with MVE; 2.0 KB and 1.1 KB of stack, most of it the planes). On
 *   the KWS layer 0.25x the instructions of CMSIS-NN's kernel on the
 *   Cortex-M4, 0.38x on the M55.
 *
 * - The channel-block loop, for the other layers of depth multiplier 1 and
 *   kernels of at most DARB_DW_TAPS taps (any stride, dilation and
 *   padding): a block of channels at a time (4 with the Armv7E-M DSP
 *   instructions or in plain C, 8 per MVE vector on the Cortex-M55 with the
 *   channel tail predicated), whose weights and output-stage constants are
 *   laid out once on the stack (190 bytes, 310 with MVE), then the image as
 *   runs of pixels with the same taps inside the image: the rows of the
 *   interior (every tap inside), the border columns beside it, the border
 *   rows. A run starts from the bias plus input_offset times the sum of its
 *   taps' weights and multiplies raw int8 inputs; a 3x3 interior pixel is
 *   one unrolled block of code, a border pixel one loop over its rows of 1
 *   to 3 taps. On the DSP and MVE cores these bodies, and the output stage,
 *   are inline asm (gcc's own code spilled the weights and accumulators),
 *   and blocks whose shifts are all right shifts under the whole int8 clamp
 *   take a shorter output stage.
 *
 * The channels that 4-channel blocks leave over (in_c % 4, without MVE),
 * larger kernels and depth multipliers > 1 go through the general loop, and
 * so does everything on Armv6-M (Cortex-M0+) and under -DDARB_COMPACT
 * (about 1.1 KB of code instead of 7 KB; on the KWS layer 9 times the
 * instructions of the DSP plane path, 16 times those of MVE).
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
/* the asm paths are in gcc's (and clang's) syntax, and need the registers an
 * optimizing build leaves free (at -O0 the portable blocks run instead) */
#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DARB_DW_MVE 1
#include <arm_mve.h>
#elif defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1
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
static DARB_DW_NOINLINE uint32_t darb_dw_s8_blocks(const darb_dw_geometry *g, const int8_t *weights,
                                                   const darb_dw_quant_s8 *q, const int8_t *in, int8_t *out)
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

/* ====================================================================================================
 * 3x3 stride-1 layers on the DSP and MVE cores: one channel at a time through a plane.
 *
 * For depth multiplier 1, a 3x3 kernel, stride 1 and dilation 1 the image goes through a small plane
 * on the stack: a band of rows by a tile of columns of one channel (4 channels at a time are copied in
 * on the DSP cores), the padding around the image filled with the input zero point zp. A tap in the
 * padding then multiplies its weight by zp, which the start value (bias + input_offset * the sum of
 * all 9 weights, input_offset = -zp) cancels exactly: every pixel is a full 3x3 window of raw int8
 * inputs, with no border cases. An output column next to a plane column of padding (the image's
 * first and last) starts from a start with that column's taps folded in and skips its loads. With
 * |bias| < 2^29 every partial sum (and twice it) stays inside int32, in any order.
 *
 * The output stage, for right shifts r of 1..22, is the requantization folded into one rounding
 * multiply-accumulate:
 *   darb_requantize_fast(acc, m, -r) + output_offset
 *     = (high + 2^(r-1) - (high < 0) + output_offset * 2^r) >> r,   high = (2 acc m + 2^31) >> 32,
 * and (high < 0) may be replaced by (acc < 0) (they differ only where high = 0, and there both give 0
 * after the shift); high + K with K = 2^(r-1) + output_offset * 2^r stays inside int32 (|high| <
 * 2^30, |K| < 2^30 for r <= 22), so SMMLAR / VQRDMLAH with K - (acc < 0) as the addend give it
 * exactly. The result is saturated to int8; a narrower clamp is a pass over the output afterwards
 * (clamping the saturated value gives the same bits). Layers with other shifts or larger biases take
 * the channel-block loop.
 * ==================================================================================================== */
#if defined(DARB_DW_DSP) || defined(DARB_DW_MVE)
#define DARB_DW3 1
#if defined(DARB_DW_MVE)
#define DARB_DW3_MIN_ROWS 4u          /* a vector of 4 rows */
#define DARB_DW3_MIN_COLS 2u          /* a block's prologue and epilogue */
#define DARB_DW3_MIN_CHANNELS 1u
#define DARB_DW3_MAX_ROW_STEP 9362u   /* 7 input rows' steps in a 16-bit gather offset */
#else
#define DARB_DW3_MIN_ROWS 2u          /* a pair of rows */
#define DARB_DW3_MIN_COLS 1u
#define DARB_DW3_MIN_CHANNELS 4u      /* a block of 4 (the others go through the general loop) */
#define DARB_DW3_MAX_ROW_STEP 0xFFFFFFFFu
#endif

#define DARB_DW3_STR_(x) #x
#define DARB_DW3_STR(x) DARB_DW3_STR_(x)

/* Whether the plane path takes the layer: the geometry (bands and tiles of the image are then at least
 * DARB_DW3_MIN_ROWS by DARB_DW3_MIN_COLS), a right shift of 1..22 and |bias| < 2^29 in every channel. */
static int darb_dw3_takes(const darb_dw_geometry *g, const darb_dw_quant_s8 *q)
{
    uint32_t c;
    if (g->mult != 1u || g->kh != 3u || g->kw != 3u || g->stride_h != 1u || g->stride_w != 1u || g->dil_h != 1u ||
        g->dil_w != 1u || g->out_h < DARB_DW3_MIN_ROWS || g->out_w < DARB_DW3_MIN_COLS ||
        (uint32_t)g->in_w * g->in_c > DARB_DW3_MAX_ROW_STEP || g->in_c < DARB_DW3_MIN_CHANNELS) {
        return 0;
    }
    for (c = 0u; c < g->in_c; ++c) {
        const int32_t s = q->shift[c];
        if (s > -1 || s < -22 || q->multiplier[c] < 0) {
            return 0;
        }
        if (q->bias != 0 && (q->bias[c] >= (1 << 29) || q->bias[c] <= -(1 << 29))) {
            return 0;
        }
    }
    return 1;
}

/* n parts of `total` as even as possible: part k is [*lo, *lo + *len) */
static void darb_dw3_split(uint32_t total, uint32_t parts, uint32_t k, uint32_t *lo, uint32_t *len)
{
    const uint32_t base = total / parts;
    const uint32_t extra = total % parts;
    *lo = k * base + (k < extra ? k : extra);
    *len = base + (k < extra ? 1u : 0u);
}

/* The plane rows [*lo, *hi) (of `rows`, plane row 0 being image row `iy0`) inside the image. */
static void darb_dw3_rows_in(int32_t iy0, uint32_t rows, uint32_t in_h, uint32_t *lo, uint32_t *hi)
{
    const int32_t a = iy0 < 0 ? -iy0 : 0;
    int32_t b = (int32_t)in_h - iy0;
    b = b < (int32_t)rows ? b : (int32_t)rows;
    *lo = (uint32_t)a;
    *hi = b > a ? (uint32_t)b : (uint32_t)a;
}
#endif

#if defined(DARB_DW_DSP)

/* The planes: int16 values, column-major; a column holds DARB_DW3_CS bytes, plane row pr in its
 * halfword pr, so that word k holds rows 2k (low half) and 2k + 1 (high half); 4 planes (channels) of
 * DARB_DW3_PS bytes. The kernel computes output rows in pairs (2k, 2k + 1) from words k and k + 1 of 3
 * columns: with W01 = (w0, w1) and W12 = (w1, w2) the weights of one column of the kernel (rows 0, 1,
 * 2) as int16 halves,
 *   acc(2k)     += SMLAD(word k, W01) + word(k + 1).low * w2
 *   acc(2k + 1) += word(k).high * w0 + SMLAD(word k + 1, W12):
 * 4 multiply instructions for 6 multiply-adds. An odd band ends with one row alone. */
#define DARB_DW3_CS_ASM 56
#define DARB_DW3_CS ((uint32_t)DARB_DW3_CS_ASM)
#define DARB_DW3_PS_ASM 392                           /* bytes a plane: 7 columns */
#define DARB_DW3_PS ((uint32_t)DARB_DW3_PS_ASM)
#define DARB_DW3_COLS (DARB_DW3_PS / DARB_DW3_CS)      /* plane columns: 5 output columns a tile */
#define DARB_DW3_ROWS (2u * (DARB_DW3_CS / 4u) - 2u)  /* output rows a band: 26 */
#define DARB_DW3_CS_S DARB_DW3_STR(DARB_DW3_CS_ASM)
#define DARB_DW3_PS_S DARB_DW3_STR(DARB_DW3_PS_ASM)

/* A tile for darb_dw3_dsp_tile: the planes; how 4 channels of the image go into them (s: the input
 * of the first position, the next column in_c on; d: plane 1's word holding it, the next column
 * DARB_DW3_CS on; a first row alone in the high half of its word (flags bit 0, the low half zp),
 * pairs of rows two words a pass (`dbl` passes), one more pair (bit 1), a last row alone in a low half
 * (bit 2, the high half zp)); the layer; the output columns, how to do the first and the last (0 all
 * 3 kernel columns, 1 without column 0, 2 without column 2, when that plane column is padding); the
 * kernel's constants (cb = &cb[17], see the kernel). Offsets in bytes as the asm uses them. */
typedef struct {
    uint32_t *planes;          /* 0 */
    const int8_t *src;         /* 4: channel 0 */
    uint8_t *dst;              /* 8 */
    int8_t *out;               /* 12: the output of the tile's first pixel, channel 0 */
    const int8_t *weights;     /* 16 */
    uint32_t channels;         /* 20: in whole blocks of 4 */
    const int32_t *bias;       /* 24: or NULL */
    const int32_t *mult;       /* 28 */
    const int8_t *shift;       /* 32 */
    int32_t input_offset;      /* 36 */
    int32_t output_offset;     /* 40 */
    uint32_t rs_in;            /* 44 */
    uint32_t in_c;             /* 48 */
    uint32_t copy_cols;        /* 52 */
    uint32_t dbl;              /* 56 */
    uint32_t flags;            /* 60 */
    uint32_t pad;              /* 64: zp in every byte */
    uint32_t cols;             /* 68 */
    uint32_t first;            /* 72 */
    uint32_t last;             /* 76 */
    int32_t cb[25];            /* 80 */
} darb_dw3_dsp_job;
typedef char darb_dw3_dsp_job_layout[offsetof(darb_dw3_dsp_job, cb) == 80u ? 1 : -1];

/* The output stage of R (2 acc): (R >> 31) + K + ((R * m + 2^31) >> 32) (SMMLAR), >> r, saturated. */
#define DARB_DW3_DSP_OUT(R, ADDR)                                        \
    "add     r12, r7, " R ", asr #31\n\t"                                  \
    "smmlar  " R ", " R ", r6, r12\n\t"                                    \
    "asr     " R ", " R ", r8\n\t"                                         \
    "ssat    " R ", #8, " R "\n\t"                                         \
    "strb    " R ", " ADDR "\n\t"
/* one kernel column (its words at LOAD, weights WA = W01, WB = W12) into the pair r4, r5 */
#define DARB_DW3_DSP_KX(LOAD, WA, WB)                                    \
    "ldrd    r12, lr, " LOAD "\n\t"                                        \
    "smlad   r4, r12, " WA ", r4\n\t"                                      \
    "smlatb  r5, r12, " WA ", r5\n\t"                                      \
    "smlad   r5, lr, " WB ", r5\n\t"                                       \
    "smlabt  r4, lr, " WB ", r4\n\t"
/* the same into r4 alone (an odd band's last row) */
#define DARB_DW3_DSP_KX1(LOAD, WA, WB)                                   \
    "ldrd    r12, lr, " LOAD "\n\t"                                        \
    "smlad   r4, r12, " WA ", r4\n\t"                                      \
    "smlabt  r4, lr, " WB ", r4\n\t"
#define DARB_DW3_DSP_P0 "[r0], #4"
#define DARB_DW3_DSP_P1 "[r0, #(" DARB_DW3_CS_S " - 4)]"
#define DARB_DW3_DSP_P2 "[r0, #(2 * " DARB_DW3_CS_S " - 4)]"
#define DARB_DW3_DSP_T0 "[r0]"
#define DARB_DW3_DSP_T1 "[r0, #" DARB_DW3_CS_S "]"
#define DARB_DW3_DSP_T2 "[r0, #(2 * " DARB_DW3_CS_S ")]"
/* the kernel columns of an output column: all 3; 1 and 2 (plane column 0 is padding, its taps in the
 * start; r0 then points at the next plane column); 0 and 1 (the last plane column is padding) */
#define DARB_DW3_DSP_FULL                                                \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P0, "r6", "r9")                          \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P1, "r7", "r10")                         \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P2, "r8", "r11")
#define DARB_DW3_DSP_FULL1                                               \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T0, "r6", "r9")                         \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T1, "r7", "r10")                        \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T2, "r8", "r11")
#define DARB_DW3_DSP_LEFT                                                \
    "ldrd    r4, r5, [r1, #-64]\n\t"                                      \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P0, "r7", "r10")                         \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P1, "r8", "r11")
#define DARB_DW3_DSP_LEFT1                                               \
    "ldr     r4, [r1, #-64]\n\t"                                          \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T0, "r7", "r10")                        \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T1, "r8", "r11")
#define DARB_DW3_DSP_RIGHT                                               \
    "ldrd    r4, r5, [r1, #-56]\n\t"                                      \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P0, "r6", "r9")                          \
    DARB_DW3_DSP_KX(DARB_DW3_DSP_P1, "r7", "r10")
#define DARB_DW3_DSP_RIGHT1                                              \
    "ldr     r4, [r1, #-56]\n\t"                                          \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T0, "r6", "r9")                         \
    DARB_DW3_DSP_KX1(DARB_DW3_DSP_T1, "r7", "r10")
#define DARB_DW3_DSP_NOP ""
#define DARB_DW3_DSP_FWD "add     r0, r0, #" DARB_DW3_CS_S "\n\t"
#define DARB_DW3_DSP_BACK "sub     r0, r0, #" DARB_DW3_CS_S "\n\t"
/* A pair of output rows: the start and weights, the taps, the output stage of both, 2 rows on. */
#define DARB_DW3_DSP_PAIR(MAC)                                           \
    "ldm     r1, {r4-r11}\n\t"                                            \
    MAC                                                                   \
    "ldmdb   r1, {r6-r9}\n\t"                                             \
    DARB_DW3_DSP_OUT("r4", "[r2]")                                        \
    DARB_DW3_DSP_OUT("r5", "[r2, r9]")                                    \
    "add     r2, r2, r9, lsl #1\n\t"
/* One output column: the pairs of rows (two a pass, entered at the second for an odd count), then an
 * odd band's last row; then to the next column. */
#define DARB_DW3_DSP_COLUMN(NAME, V, MAC, MAC1, PRE, POST)               \
    ".L" NAME "_" V ":\n\t"                                               \
    PRE                                                                   \
    "ldr     r3, [r1, #-40]\n\t"                                          \
    "add     r3, r3, r0\n\t"                                              \
    "ldr     r4, [r1, #-68]\n\t"                                          \
    "cbnz    r4, .L" NAME "_" V "h\n"                                      \
    ".L" NAME "_" V "p:\n\t"                                              \
    DARB_DW3_DSP_PAIR(MAC)                                                \
    ".L" NAME "_" V "h:\n\t"                                              \
    DARB_DW3_DSP_PAIR(MAC)                                                \
    "cmp     r0, r3\n\t"                                                  \
    "bne     .L" NAME "_" V "p\n\t"                                       \
    "ldr     r4, [r1, #-28]\n\t"                                          \
    "cbz     r4, .L" NAME "_" V "t\n\t"                                   \
    "ldm     r1, {r4-r11}\n\t"                                            \
    MAC1                                                                  \
    "ldmdb   r1, {r6-r9}\n\t"                                             \
    DARB_DW3_DSP_OUT("r4", "[r2]")                                        \
    ".L" NAME "_" V "t:\n\t"                                              \
    POST                                                                  \
    "b       .L" NAME "_next\n"
/* A word of the 4 planes from rows A (low halves) and B (high halves) of 4 channels: bytes A0 A1 B0 B1
 * and A2 A3 B2 B3 (PKH), sign-extended in pairs (SXTB16) to channels 0 and 1, 2 and 3; r2 plane 1. */
#define DARB_DW3_DSP_WORD1(A, B)                                         \
    "pkhbt   r9, " A ", " B ", lsl #16\n\t"                                \
    "pkhtb   r10, " B ", " A ", asr #16\n\t"                               \
    "sub     r4, r2, #" DARB_DW3_PS_S "\n\t"                              \
    "sxtb16  r5, r9\n\t"                                                  \
    "str     r5, [r4]\n\t"                                                \
    "sxtb16  r5, r9, ror #8\n\t"                                          \
    "str     r5, [r4, #" DARB_DW3_PS_S "]\n\t"                            \
    "sxtb16  r5, r10\n\t"                                                 \
    "str     r5, [r4, #(2 * " DARB_DW3_PS_S ")]\n\t"                      \
    "sxtb16  r5, r10, ror #8\n\t"                                         \
    "str     r5, [r4, #(3 * " DARB_DW3_PS_S ")]\n\t"                      \
    "add     r2, r2, #4\n\t"
/*
 * darb_dw3_dsp_tile(job): every whole block of 4 channels of a tile. Per block: the 4 channels into
 * the planes (2 words of each a pass: 4 rows loaded, PKHBT/PKHTB, SXTB16, a doubleword store a plane).
 * Per channel: its constants into cb (the 9 weights doubled into W01, W12; the start doubled, and the
 * starts of the columns next to padding; multiplier, K, r), then the output columns (the kernel).
 * The kernel: r0 plane, r1 cb, r2 out, r3 end of the pairs of a column, r4 r5 the two accumulators,
 * r6-r8 W01, r9-r11 W12, r12 lr the column's two words; in the output stage r6-r9 multiplier, K, r,
 * row step. cb[-17] 1 for an odd number of pairs, cb[-16..-15] the start with plane column 0's taps
 * as padding (twice), cb[-14..-13] the same with the last plane column's, cb[-10] 4 * pairs, cb[-9]
 * column step in the plane after the pairs, cb[-8] in the output, cb[-7] 1 for an odd band (a last
 * row alone), cb[-6..-5] unused, cb[-4..-1] multiplier, K, r, output row step; cb[0..1] the start
 * twice, cb[2..4] W01 of kernel columns 0..2, cb[5..7] W12. The weights and starts are
 * doubled (int16 halves 2w, start 2 * start): the accumulators hold 2 acc, which SMMLAR wants. Stack:
 * 0 the first column's code, 4 the last one's, 8 columns left, 12 the job, 16 the block's first
 * channel, 20 copy columns left, 24 the channel in the block.
 */
#define DARB_DW3_DSP_TILE(NAME)                                          \
    "\t.section .text." NAME ",\"ax\",%progbits\n"                        \
    "\t.align  2\n"                                                       \
    "\t.global " NAME "\n"                                                \
    "\t.hidden " NAME "\n"                                                \
    "\t.thumb\n"                                                          \
    "\t.thumb_func\n"                                                     \
    "\t.type   " NAME ", %function\n"                                     \
    NAME ":\n\t"                                                          \
    "push    {r4-r11, lr}\n\t"                                            \
    "sub     sp, sp, #32\n\t"                                             \
    "str     r0, [sp, #12]\n\t"                                           \
    "adr     r4, .L" NAME "_tab\n\t"                                      \
    "ldrd    r5, r6, [r0, #72]\n\t"                                       \
    "ldr     r5, [r4, r5, lsl #2]\n\t"                                    \
    "ldr     r6, [r4, r6, lsl #2]\n\t"                                    \
    "strd    r5, r6, [sp]\n\t"                                            \
    "movs    r4, #0\n"                                                    \
    ".L" NAME "_block:\n\t"                                               \
    "str     r4, [sp, #16]\n\t"                                           \
    "ldr     r11, [r0, #4]\n\t"                                           \
    "add     r11, r11, r4\n\t"                                            \
    "ldr     r12, [r0, #8]\n\t"                                           \
    "ldr     r3, [r0, #44]\n\t"                                           \
    "ldr     lr, [r0, #64]\n\t"                                           \
    "ldr     r4, [r0, #52]\n\t"                                           \
    "str     r4, [sp, #20]\n"                                             \
    ".L" NAME "_fcol:\n\t"                                                \
    "mov     r1, r11\n\t"                                                 \
    "mov     r2, r12\n\t"                                                 \
    "ldr     r8, [r0, #60]\n\t"                                           \
    "tst     r8, #1\n\t"                                                  \
    "beq     1f\n\t"                                                      \
    "ldr     r7, [r1]\n\t"                                                \
    "add     r1, r1, r3\n\t"                                              \
    DARB_DW3_DSP_WORD1("lr", "r7")                                        \
    "1:\n\t"                                                              \
    "ldr     r4, [r0, #56]\n\t"                                           \
    "cbz     r4, 3f\n"                                                    \
    "2:\n\t"                                                              \
    "ldr     r5, [r1]\n\t"                                                \
    "ldr     r6, [r1, r3]\n\t"                                            \
    "add     r1, r1, r3, lsl #1\n\t"                                      \
    "ldr     r7, [r1]\n\t"                                                \
    "ldr     r8, [r1, r3]\n\t"                                            \
    "add     r1, r1, r3, lsl #1\n\t"                                      \
    "pkhbt   r9, r5, r6, lsl #16\n\t"                                     \
    "pkhbt   r10, r7, r8, lsl #16\n\t"                                    \
    "pkhtb   r6, r6, r5, asr #16\n\t"                                     \
    "pkhtb   r8, r8, r7, asr #16\n\t"                                     \
    "sxtb16  r5, r9\n\t"                                                  \
    "sxtb16  r7, r10\n\t"                                                 \
    "strd    r5, r7, [r2, #-" DARB_DW3_PS_S "]\n\t"                       \
    "sxtb16  r5, r9, ror #8\n\t"                                          \
    "sxtb16  r7, r10, ror #8\n\t"                                         \
    "strd    r5, r7, [r2]\n\t"                                            \
    "sxtb16  r5, r6\n\t"                                                  \
    "sxtb16  r7, r8\n\t"                                                  \
    "strd    r5, r7, [r2, #" DARB_DW3_PS_S "]\n\t"                        \
    "sxtb16  r5, r6, ror #8\n\t"                                          \
    "sxtb16  r7, r8, ror #8\n\t"                                          \
    "strd    r5, r7, [r2, #(2 * " DARB_DW3_PS_S ")]\n\t"                  \
    "add     r2, r2, #8\n\t"                                              \
    "subs    r4, r4, #1\n\t"                                              \
    "bne     2b\n"                                                        \
    "3:\n\t"                                                              \
    "ldr     r8, [r0, #60]\n\t"                                           \
    "tst     r8, #2\n\t"                                                  \
    "beq     4f\n\t"                                                      \
    "ldr     r6, [r1]\n\t"                                                \
    "ldr     r7, [r1, r3]\n\t"                                            \
    "add     r1, r1, r3, lsl #1\n\t"                                      \
    DARB_DW3_DSP_WORD1("r6", "r7")                                        \
    "4:\n\t"                                                              \
    "tst     r8, #4\n\t"                                                  \
    "beq     5f\n\t"                                                      \
    "ldr     r6, [r1]\n\t"                                                \
    DARB_DW3_DSP_WORD1("r6", "lr")                                        \
    "5:\n\t"                                                              \
    "ldr     r4, [r0, #48]\n\t"                                           \
    "add     r11, r11, r4\n\t"                                            \
    "add     r12, r12, #" DARB_DW3_CS_S "\n\t"                            \
    "ldr     r4, [sp, #20]\n\t"                                           \
    "subs    r4, r4, #1\n\t"                                              \
    "str     r4, [sp, #20]\n\t"                                           \
    "bne     .L" NAME "_fcol\n\t"                                         \
    "movs    r4, #0\n"                                                    \
    ".L" NAME "_chan:\n\t"                                                \
    "str     r4, [sp, #24]\n\t"                                           \
    "ldr     lr, [sp, #16]\n\t"                                           \
    "add     lr, lr, r4\n\t"                                              \
    "ldr     r1, [r0, #16]\n\t"                                           \
    "add     r1, r1, lr\n\t"                                              \
    "ldr     r3, [r0, #48]\n\t"                                           \
    "add     r2, r3, r3, lsl #1\n\t"                                      \
    "ldrsb   r4, [r1]\n\t"                                                \
    "ldrsb   r5, [r1, r3]\n\t"                                            \
    "ldrsb   r6, [r1, r3, lsl #1]\n\t"                                    \
    "add     r1, r1, r2\n\t"                                              \
    "ldrsb   r7, [r1]\n\t"                                                \
    "ldrsb   r8, [r1, r3]\n\t"                                            \
    "ldrsb   r9, [r1, r3, lsl #1]\n\t"                                    \
    "add     r1, r1, r2\n\t"                                              \
    "ldrsb   r10, [r1]\n\t"                                               \
    "ldrsb   r11, [r1, r3]\n\t"                                           \
    "ldrsb   r12, [r1, r3, lsl #1]\n\t"                                   \
    "add     r1, r4, r7\n\t"                                              \
    "add     r1, r1, r10\n\t"                                             \
    "add     r2, r6, r9\n\t"                                              \
    "add     r2, r2, r12\n\t"                                             \
    "add     r3, r5, r8\n\t"                                              \
    "add     r3, r3, r11\n\t"                                             \
    "add     r3, r3, r1\n\t"                                              \
    "add     r3, r3, r2\n\t"                                              \
    "lsl     r4, r4, #1\n\t"                                              \
    "pkhbt   r4, r4, r7, lsl #17\n\t"                                     \
    "lsl     r7, r7, #1\n\t"                                              \
    "pkhbt   r7, r7, r10, lsl #17\n\t"                                    \
    "lsl     r5, r5, #1\n\t"                                              \
    "pkhbt   r5, r5, r8, lsl #17\n\t"                                     \
    "lsl     r8, r8, #1\n\t"                                              \
    "pkhbt   r8, r8, r11, lsl #17\n\t"                                    \
    "lsl     r6, r6, #1\n\t"                                              \
    "pkhbt   r6, r6, r9, lsl #17\n\t"                                     \
    "lsl     r9, r9, #1\n\t"                                              \
    "pkhbt   r9, r9, r12, lsl #17\n\t"                                    \
    "ldr     r10, [r0, #36]\n\t"                                          \
    "lsl     r10, r10, #1\n\t"                                            \
    "ldr     r11, [r0, #24]\n\t"                                          \
    "cmp     r11, #0\n\t"                                                \
    "it      ne\n\t"                                                      \
    "ldrne   r11, [r11, lr, lsl #2]\n\t"                                  \
    "lsl     r11, r11, #1\n\t"                                            \
    "mla     r11, r10, r3, r11\n\t"                                       \
    "mls     r12, r10, r1, r11\n\t"                                       \
    "mls     r10, r10, r2, r11\n\t"                                       \
    "mov     r2, r11\n\t"                                                 \
    "mov     r3, r11\n\t"                                                 \
    "add     r1, r0, #148\n\t"                                            \
    "stm     r1, {r2-r9}\n\t"                                             \
    "strd    r12, r12, [r1, #-64]\n\t"                                    \
    "strd    r10, r10, [r1, #-56]\n\t"                                    \
    "ldr     r2, [r0, #28]\n\t"                                           \
    "ldr     r2, [r2, lr, lsl #2]\n\t"                                    \
    "ldr     r3, [r0, #32]\n\t"                                           \
    "ldrsb   r3, [r3, lr]\n\t"                                            \
    "rsb     r3, r3, #0\n\t"                                              \
    "ldr     r4, [r0, #40]\n\t"                                           \
    "lsl     r4, r4, r3\n\t"                                              \
    "sub     r5, r3, #1\n\t"                                              \
    "movs    r6, #1\n\t"                                                  \
    "lsl     r6, r6, r5\n\t"                                              \
    "add     r4, r4, r6\n\t"                                              \
    "strd    r2, r4, [r1, #-16]\n\t"                                      \
    "str     r3, [r1, #-8]\n\t"                                           \
    "ldr     r2, [r0, #12]\n\t"                                           \
    "add     r2, r2, lr\n\t"                                              \
    "ldr     r3, [r0, #68]\n\t"                                           \
    "str     r3, [sp, #8]\n\t"                                            \
    "ldr     r3, [sp, #24]\n\t"                                           \
    "movw    r4, #" DARB_DW3_PS_S "\n\t"                                  \
    "ldr     r0, [r0]\n\t"                                                \
    "mla     r0, r3, r4, r0\n\t"                                          \
    "ldr     pc, [sp]\n"                                                  \
    DARB_DW3_DSP_COLUMN(NAME, "f", DARB_DW3_DSP_FULL, DARB_DW3_DSP_FULL1, DARB_DW3_DSP_NOP, DARB_DW3_DSP_NOP) \
    DARB_DW3_DSP_COLUMN(NAME, "l", DARB_DW3_DSP_LEFT, DARB_DW3_DSP_LEFT1, DARB_DW3_DSP_FWD, DARB_DW3_DSP_BACK) \
    DARB_DW3_DSP_COLUMN(NAME, "r", DARB_DW3_DSP_RIGHT, DARB_DW3_DSP_RIGHT1, DARB_DW3_DSP_NOP, DARB_DW3_DSP_NOP) \
    ".L" NAME "_next:\n\t"                                                \
    "ldrd    r4, r5, [r1, #-36]\n\t"                                      \
    "add     r0, r0, r4\n\t"                                              \
    "add     r2, r2, r5\n\t"                                              \
    "ldr     r3, [sp, #8]\n\t"                                            \
    "subs    r3, r3, #1\n\t"                                              \
    "beq     .L" NAME "_chend\n\t"                                        \
    "str     r3, [sp, #8]\n\t"                                            \
    "cmp     r3, #1\n\t"                                                  \
    "it      eq\n\t"                                                      \
    "ldreq   pc, [sp, #4]\n\t"                                            \
    "b       .L" NAME "_f\n"                                              \
    ".L" NAME "_chend:\n\t"                                               \
    "ldr     r0, [sp, #12]\n\t"                                           \
    "ldr     r4, [sp, #24]\n\t"                                           \
    "add     r4, r4, #1\n\t"                                              \
    "cmp     r4, #4\n\t"                                                  \
    "bne     .L" NAME "_chan\n\t"                                         \
    "ldr     r4, [sp, #16]\n\t"                                           \
    "ldr     r5, [r0, #20]\n\t"                                           \
    "add     r4, r4, #4\n\t"                                              \
    "cmp     r4, r5\n\t"                                                  \
    "bne     .L" NAME "_block\n\t"                                        \
    "add     sp, sp, #32\n\t"                                             \
    "pop     {r4-r11, pc}\n\t"                                            \
    ".align  2\n"                                                         \
    ".L" NAME "_tab:\n\t"                                                 \
    ".word   .L" NAME "_f + 1, .L" NAME "_l + 1, .L" NAME "_r + 1\n\t"    \
    ".size   " NAME ", . - " NAME "\n"                                    \
    "\t.text\n"

void darb_dw3_dsp_tile(darb_dw3_dsp_job *job);
__asm__(".syntax unified\n" DARB_DW3_DSP_TILE("darb_dw3_dsp_tile"));

/* A layer's clamp narrower than int8's, after the tiles (which saturate to int8; clamping that gives
 * the same as clamping the requantized value): 4 bytes a pass, SSUB8 setting the GE flags for SEL. */
static void darb_dw3_clamp(int8_t *out, uint32_t n, int32_t lo, int32_t hi)
{
    const uint32_t lo4 = ((uint32_t)lo & 0xFFu) * 0x01010101u;
    const uint32_t hi4 = ((uint32_t)hi & 0xFFu) * 0x01010101u;
    for (; n >= 4u; n -= 4u, out += 4) {
        uint32_t v;
        uint32_t t;
        memcpy(&v, out, 4u);
        __asm__("ssub8 %[t], %[v], %[lo]\n\t"
                "sel   %[v], %[v], %[lo]\n\t"
                "ssub8 %[t], %[hi], %[v]\n\t"
                "sel   %[v], %[v], %[hi]"
                : [v] "+&r"(v), [t] "=&r"(t)
                : [lo] "r"(lo4), [hi] "r"(hi4)
                : "cc");
        memcpy(out, &v, 4u);
    }
    for (; n != 0u; --n, ++out) {
        *out = (int8_t)(*out < lo ? lo : *out > hi ? hi : *out);
    }
}

static void darb_dw3_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                        const int8_t *in, int8_t *out)
{
    uint32_t planes[4u * DARB_DW3_PS / 4u];
    darb_dw3_dsp_job job;
    int32_t *const cb = job.cb + 17;
    const uint32_t in_c = g->in_c;
    const uint32_t rs = (uint32_t)g->out_w * in_c;
    const uint32_t rs_in = (uint32_t)g->in_w * in_c;
    const uint32_t pad16 = ((uint32_t)-q->input_offset & 0xFFFFu) * 0x10001u;   /* zp, zp as int16 */
    const uint32_t bands = (g->out_h + DARB_DW3_ROWS - 1u) / DARB_DW3_ROWS;
    const uint32_t tiles = (g->out_w + DARB_DW3_COLS - 3u) / (DARB_DW3_COLS - 2u);
    uint32_t band;
    uint32_t tile;
    job.planes = planes;
    job.weights = weights;
    job.channels = in_c & ~3u;
    job.bias = q->bias;
    job.mult = q->multiplier;
    job.shift = q->shift;
    job.input_offset = q->input_offset;
    job.output_offset = q->output_offset;
    job.rs_in = rs_in;
    job.in_c = in_c;
    job.pad = ((uint32_t)-q->input_offset & 0xFFu) * 0x01010101u;
    cb[-1] = (int32_t)rs;
    for (band = 0u; band < bands; ++band) {
        uint32_t y0;
        uint32_t h;
        darb_dw3_split(g->out_h, bands, band, &y0, &h);
        cb[-17] = (int32_t)((h / 2u) & 1u);
        cb[-10] = (int32_t)(4u * (h / 2u));
        cb[-9] = (int32_t)(DARB_DW3_CS - 4u * (h / 2u));
        cb[-8] = (int32_t)(in_c - 2u * (h / 2u) * rs);
        cb[-7] = (int32_t)(h & 1u);
        for (tile = 0u; tile < tiles; ++tile) {
            const uint32_t words = h / 2u + 1u + (h & 1u);  /* words a column the kernel reads */
            const int32_t iy0 = (int32_t)y0 - (int32_t)g->pad_top;   /* image row of plane row 0 */
            int32_t ix0;
            uint32_t x0;
            uint32_t w;
            uint32_t lo;
            uint32_t hi;
            uint32_t j0;
            uint32_t j1;
            uint32_t i;
            darb_dw3_split(g->out_w, tiles, tile, &x0, &w);
            ix0 = (int32_t)x0 - (int32_t)g->pad_left;   /* image column of plane column 0 */
            for (i = 0u; i < 4u * DARB_DW3_PS / 4u; i += DARB_DW3_CS / 4u) {
                uint32_t k;
                for (k = 0u; k < words; ++k) {
                    planes[i + k] = pad16;
                }
            }
            darb_dw3_rows_in(iy0, 2u * words, g->in_h, &lo, &hi);
            darb_dw3_rows_in(ix0, w + 2u, g->in_w, &j0, &j1);
            if (lo < hi && j0 < j1) {
                const uint32_t head = lo & 1u;   /* a first row alone in the high half of its word */
                job.src = in + ((uint32_t)(iy0 + (int32_t)lo) * g->in_w + (uint32_t)(ix0 + (int32_t)j0)) * in_c;
                job.dst = (uint8_t *)planes + DARB_DW3_PS + j0 * DARB_DW3_CS + 2u * (lo - head);
                job.copy_cols = j1 - j0;
                job.dbl = (hi - lo - head) / 4u;
                job.flags = head | ((hi - lo - head) & 2u) | (((hi - lo - head) & 1u) << 2);
            } else {                             /* all padding: nothing to copy */
                job.src = in;
                job.dst = (uint8_t *)planes + DARB_DW3_PS;
                job.copy_cols = 1u;
                job.dbl = 0u;
                job.flags = 0u;
            }
            job.out = out + (y0 * g->out_w + x0) * in_c;
            job.cols = w;
            /* the first and last output columns without a padding plane column's taps */
            job.first = ix0 < 0 ? 1u : w == 1u && ix0 + 2 >= (int32_t)g->in_w ? 2u : 0u;
            job.last = ix0 + (int32_t)w + 1 >= (int32_t)g->in_w ? 2u : 0u;
            darb_dw3_dsp_tile(&job);
        }
    }
    if (q->act_min != -128 || q->act_max != 127) {
        darb_dw3_clamp(out, (uint32_t)g->out_h * rs, q->act_min, q->act_max);
    }
    if (job.channels < in_c) {   /* the channels 4-channel blocks leave over (clamped there) */
        darb_dw_s8_general(g, weights, q, in, out, job.channels, in_c);
    }
}
#elif defined(DARB_DW_MVE)

/* The plane: int8 values, column-major, DARB_DW3_CSB bytes a column. The kernel computes a block of
 * 4 output rows of one column as one vector of 4 int32 lanes (VLDRB.S32 of the plane's rows y..y+3,
 * y+1.., y+2.. times the weights as scalars, VMLA), sweeping the columns: a column's 3 loads serve
 * the 3 output columns whose windows hold it, their accumulators in rotation (q0, q1, q2). The blocks
 * start every 4 rows, the last at h - 4 (overlapping the one before it, with the same values). */
#define DARB_DW3_CSB_ASM 32
#define DARB_DW3_CSB ((uint32_t)DARB_DW3_CSB_ASM)
#define DARB_DW3_COLS 16u                              /* plane columns: 14 output columns a tile */
#define DARB_DW3_ROWS (DARB_DW3_CSB - 2u)              /* output rows a band: 30 */

/* A tile for darb_dw3_mve_tile: the plane, how each channel's image part goes into it (chunks of 8
 * rows, the last overlapping the one before, by `cols` columns; or `rows` < 8 rows under a
 * predicate), the layer, the sweep's steps and entry points, the clamp (shifted to the top byte) and
 * the output rows' offsets. Offsets in bytes as the asm uses them. */
typedef struct {
    int8_t *plane;            /* 0 */
    const int8_t *src;        /* 4: the input of the first image position in the plane, channel 0 */
    int8_t *dst;              /* 8: that position in the plane */
    int8_t *out;              /* 12: the output of the tile's first pixel, channel 0 */
    const int8_t *weights;    /* 16 */
    uint32_t in_c;            /* 20 */
    const int32_t *bias;      /* 24: or NULL */
    const int32_t *mult;      /* 28 */
    const int8_t *shift;      /* 32 */
    int32_t input_offset;     /* 36 */
    int32_t output_offset;    /* 40 */
    uint32_t chunks;          /* 44 */
    uint32_t cols;            /* 48 */
    uint32_t rows;            /* 52 */
    uint32_t src_off[5];      /* 56: a chunk's input offset */
    uint32_t dst_off[5];      /* 76: its plane offset */
    uint32_t blocks;          /* 96 */
    uint32_t passes;          /* 100: passes of the 3-column loop */
    uint32_t entry;           /* 104: where a block's loop starts: column phase 0, 1, 2, or 3 (no loop) */
    uint32_t pad_left;        /* 108: plane column 0 is padding */
    uint32_t pad_right;       /* 112: the last plane column is padding */
    int32_t pstep;            /* 116: plane step from the end of a block's sweep to the next block */
    int32_t ostep;            /* 120: output step from the end of a block's sweep to the next block */
    int32_t pstep_last;       /* 124: the same to the last block */
    int32_t ostep_last;       /* 128 */
    uint32_t spare[3];
    uint16_t gather[8];       /* 144: the input offsets of a chunk's 8 rows */
    uint32_t offs[4];         /* 160: output row offsets */
} darb_dw3_mve_job;
typedef char darb_dw3_mve_job_layout[offsetof(darb_dw3_mve_job, offs) == 160u ? 1 : -1];

/* One column j of the sweep in the loop: its 3 loads (rows y, y + 1, y + 2) times the weights of kernel
 * column 2 into A (output column j - 2), 1 into B, 0 into C (initialized to the start); then A's output. */
#define DARB_DW3_MVE_STEP(A, B, C)                         \
    "vmov         " C ", q6\n\t"                             \
    "vldrb.s32    q3, [r0], #" DARB_DW3_CSB_S "\n\t"         \
    "vmla.s32     " A ", q3, r9\n\t"                         \
    "vmla.s32     " B ", q3, r6\n\t"                         \
    "vmla.s32     " C ", q3, r3\n\t"                         \
    "vldrb.s32    q3, [r0, #(1 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " A ", q3, r10\n\t"                        \
    "vmla.s32     " B ", q3, r7\n\t"                         \
    "vmla.s32     " C ", q3, r4\n\t"                         \
    "vldrb.s32    q3, [r0, #(2 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " A ", q3, r11\n\t"                        \
    "vmla.s32     " B ", q3, r8\n\t"                         \
    "vmla.s32     " C ", q3, r5\n\t"                         \
    DARB_DW3_MVE_OUT(A)                                      \
    "add          r1, r1, r2\n\t"
/* A's output: t = (A >> 31) + K; t += (2 A m + 2^31) >> 32 (VQRDMLAH); t <<= 24 - r, saturating, so
 * that the top byte holds the result saturated to int8; >> 24; stored to the 4 rows (scatter). */
#define DARB_DW3_MVE_OUT(A)                                \
    "vshr.s32     q3, " A ", #31\n\t"                        \
    "vadd.i32     q3, q3, q4\n\t"                            \
    "vqrdmlah.s32 q3, " A ", r12\n\t"                        \
    "vqshl.s32    q3, q3, q5\n\t"                            \
    "vshr.s32     q3, q3, #24\n\t"                           \
    "vstrb.32     q3, [r1, q7]\n\t"
/* plane column j (rows y, y + 1, y + 2) times one kernel column into ACC, or two into A and B */
#define DARB_DW3_MVE_COL(ACC, W0, W1, W2)                  \
    "vldrb.s32    q3, [r0], #" DARB_DW3_CSB_S "\n\t"         \
    "vmla.s32     " ACC ", q3, " W0 "\n\t"                   \
    "vldrb.s32    q3, [r0, #(1 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " ACC ", q3, " W1 "\n\t"                   \
    "vldrb.s32    q3, [r0, #(2 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " ACC ", q3, " W2 "\n\t"
#define DARB_DW3_MVE_COL2(A, B, WA0, WA1, WA2, WB0, WB1, WB2) \
    "vldrb.s32    q3, [r0], #" DARB_DW3_CSB_S "\n\t"         \
    "vmla.s32     " A ", q3, " WA0 "\n\t"                    \
    "vmla.s32     " B ", q3, " WB0 "\n\t"                    \
    "vldrb.s32    q3, [r0, #(1 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " A ", q3, " WA1 "\n\t"                    \
    "vmla.s32     " B ", q3, " WB1 "\n\t"                    \
    "vldrb.s32    q3, [r0, #(2 - " DARB_DW3_CSB_S ")]\n\t"   \
    "vmla.s32     " A ", q3, " WA2 "\n\t"                    \
    "vmla.s32     " B ", q3, " WB2 "\n\t"
#define DARB_DW3_CSB_S DARB_DW3_STR(DARB_DW3_CSB_ASM)
/*
 * darb_dw3_mve_tile(job): every channel of a tile. Per channel: its image part into the plane (8
 * rows a gather, VLDRB.U16 with 16-bit offsets, the columns in a low-overhead loop); its constants
 * (the 9 weights as scalars in r3-r11: kernel column kx, row ky in r(3 + 3 kx + ky); the multiplier
 * in r12; K, 24 - r, the start in q4-q6; the start of output column 0 when plane column 0 is padding
 * and what the last plane column adds when it is padding, on the stack); then the blocks of 4 rows:
 * the prologue (plane columns 0 and 1 into q0, q1: output columns 0 and 1), the loop over columns
 * 2..w-1 (3 a pass, entered at the phase that makes it end at phase 0), the epilogue (columns w and
 * w + 1: outputs w - 2 and w - 1 from q0 and q1). Registers in the blocks: r0 plane, r1 output, r2
 * in_c, lr the loop count, q3 the loads, q7 the output rows' offsets. Stack: 0 pstep, 4 ostep, 8
 * pstep_last, 12 ostep_last, 16 blocks left, 20 passes, 24 the multiplier, 28 the loop's entry, 32
 * act_min << 24, 48 act_max << 24 | 0xFFFFFF, 64 start_l, 80 right, 96 the prologue, 100 the
 * epilogue, 104 the job, 108 the channel, 112 blocks.
 */
#define DARB_DW3_MVE_TILE(NAME)                                            \
    "\t.section .text." NAME ",\"ax\",%progbits\n"                          \
    "\t.align  2\n"                                                         \
    "\t.global " NAME "\n"                                                  \
    "\t.hidden " NAME "\n"                                                  \
    "\t.thumb\n"                                                            \
    "\t.thumb_func\n"                                                       \
    "\t.type   " NAME ", %function\n"                                       \
    NAME ":\n\t"                                                            \
    "push         {r4-r11, lr}\n\t"                                         \
    "vpush        {d8-d15}\n\t"                                             \
    "sub          sp, sp, #128\n\t"                                         \
    "str          r0, [sp, #104]\n\t"                                       \
    "vldrw.32     q7, [r0, #160]\n\t"                                       \
    "ldrd         r4, r5, [r0, #116]\n\t"                                   \
    "strd         r4, r5, [sp]\n\t"                                         \
    "ldrd         r4, r5, [r0, #124]\n\t"                                   \
    "strd         r4, r5, [sp, #8]\n\t"                                     \
    "ldrd         r4, r5, [r0, #96]\n\t"                                    \
    "str          r4, [sp, #112]\n\t"                                       \
    "str          r5, [sp, #20]\n\t"                                        \
    "adr          r5, .L" NAME "_tab\n\t"                                   \
    "ldr          r4, [r0, #104]\n\t"                                       \
    "ldr          r4, [r5, r4, lsl #2]\n\t"                                 \
    "str          r4, [sp, #28]\n\t"                                        \
    "ldr          r4, [r0, #108]\n\t"                                       \
    "add          r4, r4, #4\n\t"                                           \
    "ldr          r4, [r5, r4, lsl #2]\n\t"                                 \
    "str          r4, [sp, #96]\n\t"                                        \
    "ldr          r4, [r0, #112]\n\t"                                       \
    "add          r4, r4, #6\n\t"                                           \
    "ldr          r4, [r5, r4, lsl #2]\n\t"                                 \
    "str          r4, [sp, #100]\n\t"                                       \
    "movs         r8, #0\n"                                                 \
    ".L" NAME "_chan:\n\t"                                                  \
    "str          r8, [sp, #108]\n\t"                                       \
    "vldrw.32     q1, [r0, #144]\n\t"                                       \
    "ldrd         r1, r2, [r0, #4]\n\t"                                     \
    "add          r1, r1, r8\n\t"                                           \
    "ldr          r3, [r0, #20]\n\t"                                        \
    "ldr          r4, [r0, #44]\n\t"                                        \
    "cbz          r4, .L" NAME "_pred\n\t"                                  \
    "add          r5, r0, #56\n"                                            \
    ".L" NAME "_chunk:\n\t"                                                 \
    "ldr          r7, [r5, #20]\n\t"                                        \
    "ldr          r6, [r5], #4\n\t"                                         \
    "add          r6, r6, r1\n\t"                                           \
    "add          r7, r7, r2\n\t"                                           \
    "ldr          lr, [r0, #48]\n\t"                                        \
    "dls          lr, lr\n"                                                 \
    ".L" NAME "_copy:\n\t"                                                  \
    "vldrb.u16    q0, [r6, q1]\n\t"                                         \
    "add          r6, r6, r3\n\t"                                           \
    "vstrb.16     q0, [r7], #" DARB_DW3_CSB_S "\n\t"                        \
    "le           lr, .L" NAME "_copy\n\t"                                  \
    "subs         r4, r4, #1\n\t"                                           \
    "bne          .L" NAME "_chunk\n\t"                                     \
    "b            .L" NAME "_setup\n"                                       \
    ".L" NAME "_pred:\n\t"                                                  \
    "ldr          r4, [r0, #52]\n\t"                                        \
    "vctp.16      r4\n\t"                                                   \
    "ldr          lr, [r0, #48]\n\t"                                        \
    "dls          lr, lr\n"                                                 \
    ".L" NAME "_copyp:\n\t"                                                 \
    "vpst\n\t"                                                              \
    "vldrbt.u16   q0, [r1, q1]\n\t"                                         \
    "add          r1, r1, r3\n\t"                                           \
    "vpst\n\t"                                                              \
    "vstrbt.16    q0, [r2], #" DARB_DW3_CSB_S "\n\t"                        \
    "le           lr, .L" NAME "_copyp\n"                                   \
    ".L" NAME "_setup:\n\t"                                                 \
    "ldr          r1, [r0, #24]\n\t"                                        \
    "cbz          r1, 1f\n\t"                                               \
    "ldr          r1, [r1, r8, lsl #2]\n"                                   \
    "1:\n\t"                                                                \
    "ldr          r2, [r0, #28]\n\t"                                        \
    "ldr          r2, [r2, r8, lsl #2]\n\t"                                 \
    "str          r2, [sp, #24]\n\t"                                        \
    "ldr          r2, [r0, #32]\n\t"                                        \
    "ldrsb        r2, [r2, r8]\n\t"                                         \
    "ldr          r4, [r0, #40]\n\t"                                        \
    "rsb          r2, r2, #0\n\t"                                           \
    "lsl          r4, r4, r2\n\t"                                           \
    "sub          r5, r2, #1\n\t"                                           \
    "movs         r6, #1\n\t"                                               \
    "lsl          r6, r6, r5\n\t"                                           \
    "add          r4, r4, r6\n\t"                                           \
    "vdup.32      q4, r4\n\t"                                               \
    "rsb          r2, r2, #24\n\t"                                          \
    "vdup.32      q5, r2\n\t"                                               \
    "ldr          r12, [r0, #16]\n\t"                                       \
    "add          r12, r12, r8\n\t"                                         \
    "add          r2, r3, r3, lsl #1\n\t"                                   \
    "ldrsb        r6, [r12, r3]\n\t"                                        \
    "ldrsb        r9, [r12, r3, lsl #1]\n\t"                                \
    "ldrsb        r4, [r12, r2]\n\t"                                        \
    "add          lr, r12, r2\n\t"                                          \
    "ldrsb        r7, [lr, r3]\n\t"                                         \
    "ldrsb        r10, [lr, r3, lsl #1]\n\t"                                \
    "ldrsb        r5, [lr, r2]\n\t"                                         \
    "add          lr, lr, r2\n\t"                                           \
    "ldrsb        r8, [lr, r3]\n\t"                                         \
    "ldrsb        r11, [lr, r3, lsl #1]\n\t"                                \
    "ldrsb        r3, [r12]\n\t"                                            \
    "adds         r2, r3, r4\n\t"                                           \
    "add          r2, r2, r5\n\t"                                           \
    "add          lr, r9, r10\n\t"                                          \
    "add          lr, lr, r11\n\t"                                          \
    "add          r12, r6, r7\n\t"                                          \
    "add          r12, r12, r8\n\t"                                         \
    "add          r12, r12, r2\n\t"                                         \
    "add          r12, r12, lr\n\t"                                         \
    "ldr          r0, [r0, #36]\n\t"                                        \
    "mla          r1, r0, r12, r1\n\t"                                      \
    "vdup.32      q6, r1\n\t"                                               \
    "mls          r1, r0, r2, r1\n\t"                                       \
    "vdup.32      q0, r1\n\t"                                               \
    "vstrw.32     q0, [sp, #64]\n\t"                                        \
    "mul          r1, r0, lr\n\t"                                           \
    "rsb          r1, r1, #0\n\t"                                           \
    "vdup.32      q0, r1\n\t"                                               \
    "vstrw.32     q0, [sp, #80]\n\t"                                        \
    "ldr          r12, [sp, #24]\n\t"                                       \
    "ldr          lr, [sp, #104]\n\t"                                       \
    "ldr          r0, [lr]\n\t"                                             \
    "ldr          r1, [lr, #12]\n\t"                                        \
    "ldr          r2, [sp, #108]\n\t"                                       \
    "add          r1, r1, r2\n\t"                                           \
    "ldr          r2, [lr, #20]\n\t"                                        \
    "ldr          lr, [sp, #112]\n\t"                                       \
    "str          lr, [sp, #16]\n\t"                                        \
    "ldr          pc, [sp, #96]\n"                                          \
    ".L" NAME "_pro0:\n\t"                                                  \
    "vmov         q0, q6\n\t"                                               \
    DARB_DW3_MVE_COL("q0", "r3", "r4", "r5")                                \
    "b            .L" NAME "_pro1\n"                                        \
    ".L" NAME "_prop:\n\t"                                                  \
    "vldrw.32     q0, [sp, #64]\n\t"                                        \
    "add          r0, r0, #" DARB_DW3_CSB_S "\n"                            \
    ".L" NAME "_pro1:\n\t"                                                  \
    "vmov         q1, q6\n\t"                                               \
    DARB_DW3_MVE_COL2("q0", "q1", "r6", "r7", "r8", "r3", "r4", "r5")       \
    "ldr          lr, [sp, #20]\n\t"                                        \
    "dls          lr, lr\n\t"                                               \
    "ldr          pc, [sp, #28]\n"                                          \
    ".L" NAME "_e1:\n\t"                                                    \
    "vmov         q2, q1\n\t"                                               \
    "vmov         q1, q0\n\t"                                               \
    "b            .L" NAME "_ph1\n"                                         \
    ".L" NAME "_e2:\n\t"                                                    \
    "vmov         q2, q0\n\t"                                               \
    "vmov         q0, q1\n\t"                                               \
    "b            .L" NAME "_ph2\n"                                         \
    ".L" NAME "_ph0:\n\t"                                                   \
    DARB_DW3_MVE_STEP("q0", "q1", "q2")                                     \
    ".L" NAME "_ph1:\n\t"                                                   \
    DARB_DW3_MVE_STEP("q1", "q2", "q0")                                     \
    ".L" NAME "_ph2:\n\t"                                                   \
    DARB_DW3_MVE_STEP("q2", "q0", "q1")                                     \
    "le           lr, .L" NAME "_ph0\n"                                     \
    ".L" NAME "_epi:\n\t"                                                   \
    "ldr          pc, [sp, #100]\n"                                         \
    ".L" NAME "_epi0:\n\t"                                                  \
    DARB_DW3_MVE_COL2("q0", "q1", "r9", "r10", "r11", "r6", "r7", "r8")     \
    DARB_DW3_MVE_OUT("q0")                                                  \
    "add          r1, r1, r2\n\t"                                           \
    DARB_DW3_MVE_COL("q1", "r9", "r10", "r11")                              \
    "b            .L" NAME "_out\n"                                         \
    ".L" NAME "_epip:\n\t"                                                  \
    DARB_DW3_MVE_COL2("q0", "q1", "r9", "r10", "r11", "r6", "r7", "r8")     \
    DARB_DW3_MVE_OUT("q0")                                                  \
    "add          r1, r1, r2\n\t"                                           \
    "vldrw.32     q3, [sp, #80]\n\t"                                        \
    "vadd.i32     q1, q1, q3\n\t"                                           \
    "add          r0, r0, #" DARB_DW3_CSB_S "\n"                            \
    ".L" NAME "_out:\n\t"                                                   \
    DARB_DW3_MVE_OUT("q1")                                                  \
    "ldr          lr, [sp, #16]\n\t"                                        \
    "subs         lr, lr, #1\n\t"                                           \
    "beq          .L" NAME "_next\n\t"                                      \
    "str          lr, [sp, #16]\n\t"                                        \
    "cmp          lr, #1\n\t"                                               \
    "ite          ne\n\t"                                                   \
    "ldrdne       r12, lr, [sp]\n\t"                                        \
    "ldrdeq       r12, lr, [sp, #8]\n\t"                                    \
    "add          r0, r0, r12\n\t"                                          \
    "add          r1, r1, lr\n\t"                                           \
    "ldr          r12, [sp, #24]\n\t"                                       \
    "ldr          pc, [sp, #96]\n"                                          \
    ".L" NAME "_next:\n\t"                                                  \
    "ldr          r0, [sp, #104]\n\t"                                       \
    "ldr          r8, [sp, #108]\n\t"                                       \
    "ldr          r1, [r0, #20]\n\t"                                        \
    "add          r8, r8, #1\n\t"                                           \
    "cmp          r8, r1\n\t"                                               \
    "bne          .L" NAME "_chan\n\t"                                      \
    "add          sp, sp, #128\n\t"                                         \
    "vpop         {d8-d15}\n\t"                                             \
    "pop          {r4-r11, pc}\n\t"                                         \
    ".align       2\n"                                                      \
    ".L" NAME "_tab:\n\t"                                                   \
    ".word        .L" NAME "_ph0 + 1, .L" NAME "_e1 + 1, .L" NAME "_e2 + 1, .L" NAME "_epi + 1\n\t" \
    ".word        .L" NAME "_pro0 + 1, .L" NAME "_prop + 1, .L" NAME "_epi0 + 1, .L" NAME "_epip + 1\n\t" \
    ".size   " NAME ", . - " NAME "\n"                                      \
    "\t.text\n"

void darb_dw3_mve_tile(const darb_dw3_mve_job *job);
__asm__(".syntax unified\n" DARB_DW3_MVE_TILE("darb_dw3_mve_tile"));

/* A layer's clamp narrower than int8's, after the tiles (which saturate to int8; clamping that gives
 * the same as clamping the requantized value): 16 bytes a vector, the last ones predicated. */
static void darb_dw3_clamp(int8_t *out, uint32_t n, int32_t lo, int32_t hi)
{
    const int8x16_t vlo = vdupq_n_s8((int8_t)lo);
    const int8x16_t vhi = vdupq_n_s8((int8_t)hi);
    for (; n >= 16u; n -= 16u, out += 16) {
        vst1q_s8(out, vminq_s8(vmaxq_s8(vld1q_s8(out), vlo), vhi));
    }
    if (n != 0u) {
        const mve_pred16_t p = vctp8q(n);
        vstrbq_p_s8(out, vminq_s8(vmaxq_s8(vldrbq_z_s8(out, p), vlo), vhi), p);
    }
}

static void darb_dw3_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                        const int8_t *in, int8_t *out)
{
    int8_t plane[DARB_DW3_CSB * DARB_DW3_COLS] __attribute__((aligned(16)));
    darb_dw3_mve_job job __attribute__((aligned(16)));
    const uint32_t in_c = g->in_c;
    const uint32_t rs = (uint32_t)g->out_w * in_c;
    const uint32_t rs_in = (uint32_t)g->in_w * in_c;
    const uint32_t bands = (g->out_h + DARB_DW3_ROWS - 1u) / DARB_DW3_ROWS;
    const uint32_t tiles = (g->out_w + DARB_DW3_COLS - 3u) / (DARB_DW3_COLS - 2u);
    const uint8x16_t zp = vdupq_n_u8((uint8_t)-q->input_offset);
    uint32_t band;
    uint32_t tile;
    uint32_t i;
    job.plane = plane;
    job.weights = weights;
    job.in_c = in_c;
    job.bias = q->bias;
    job.mult = q->multiplier;
    job.shift = q->shift;
    job.input_offset = q->input_offset;
    job.output_offset = q->output_offset;
    for (i = 0u; i < 8u; ++i) {
        job.gather[i] = (uint16_t)(i * rs_in);
    }
    for (i = 0u; i < 4u; ++i) {
        job.offs[i] = i * rs;
    }
    for (band = 0u; band < bands; ++band) {
        uint32_t y0;
        uint32_t h;
        uint32_t blocks;
        darb_dw3_split(g->out_h, bands, band, &y0, &h);
        blocks = (h + 3u) / 4u;
        job.blocks = blocks;
        for (tile = 0u; tile < tiles; ++tile) {
            const int32_t iy0 = (int32_t)y0 - (int32_t)g->pad_top;   /* image row of plane row 0 */
            int32_t ix0;
            uint32_t x0;
            uint32_t w;
            uint32_t lo;
            uint32_t hi;
            uint32_t j0;
            uint32_t j1;
            darb_dw3_split(g->out_w, tiles, tile, &x0, &w);
            ix0 = (int32_t)x0 - (int32_t)g->pad_left;
            /* the loop's passes over columns 2..w-1, entered at the phase that ends them at phase 0 */
            job.entry = w == 2u ? 3u : (3u - (w - 2u) % 3u) % 3u;
            job.passes = w == 2u ? 0u : (w - 2u + job.entry) / 3u;
            /* after a block the plane pointer is w + 2 columns on, the output w - 1 columns */
            job.pstep = (int32_t)(4u - (w + 2u) * DARB_DW3_CSB);
            job.ostep = (int32_t)(4u * rs - (w - 1u) * in_c);
            job.pstep_last = (int32_t)(h - 4u - 4u * (blocks - 2u) - (w + 2u) * DARB_DW3_CSB);
            job.ostep_last = (int32_t)((h - 4u - 4u * (blocks - 2u)) * rs - (w - 1u) * in_c);
            job.pad_left = ix0 < 0 ? 1u : 0u;
            job.pad_right = ix0 + (int32_t)w + 1 >= (int32_t)g->in_w ? 1u : 0u;
            for (i = 0u; i < (w + 2u) * DARB_DW3_CSB; i += 16u) {
                vst1q_u8((uint8_t *)plane + i, zp);
            }
            darb_dw3_rows_in(iy0, h + 2u, g->in_h, &lo, &hi);
            darb_dw3_rows_in(ix0, w + 2u, g->in_w, &j0, &j1);
            job.rows = hi - lo;
            job.cols = j1 - j0;
            job.chunks = 0u;
            if (job.rows == 0u || job.cols == 0u) {   /* all padding: one pass, no lanes */
                job.rows = 0u;
                job.cols = 1u;
                lo = 0u;
                j0 = 0u;
                ix0 = 0;
            } else if (job.rows >= 8u) {
                uint32_t r = 0u;
                for (;;) {
                    job.src_off[job.chunks] = r * rs_in;
                    job.dst_off[job.chunks] = r;
                    ++job.chunks;
                    if (r + 8u == job.rows) {
                        break;
                    }
                    r = r + 16u <= job.rows ? r + 8u : job.rows - 8u;
                }
            }
            job.dst = plane + j0 * DARB_DW3_CSB + lo;
            job.src = job.rows == 0u ? in
                                     : in + ((uint32_t)(iy0 + (int32_t)lo) * g->in_w + (uint32_t)(ix0 + (int32_t)j0)) * in_c;
            job.out = out + (y0 * g->out_w + x0) * in_c;
            darb_dw3_mve_tile(&job);
        }
    }
    if (q->act_min != -128 || q->act_max != 127) {
        darb_dw3_clamp(out, (uint32_t)g->out_h * rs, q->act_min, q->act_max);
    }
}
#endif

void darb_depthwise_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                       const int8_t *in, int8_t *out)
{
    uint32_t done = 0u;
#ifdef DARB_DW3
    if (darb_dw3_takes(g, q)) {
        darb_dw3_s8(g, weights, q, in, out);
        return;
    }
#endif
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
