/*
 * darb_fc_s8_tile.c - DARB packed int8 weights times a tile of up to
 * DARB_TILE (4) pixels at once: the weight-stationary sparse convolution.
 *
 *   out[p * rows + r] = darb_fc_s8 on pixel p's vector, for p < pixels
 *
 * with the pixels' vectors interleaved in the tile: tile[j * DARB_TILE + p] is
 * column j of pixel p (darb_tile_s8 and darb_im2col_tile_s8 in darb_graph.h
 * write it; unused lanes hold 0). Each kept weight's offset is decoded once
 * and its value loaded once for the whole tile; its column's four inputs are
 * one aligned 32-bit word, applied to four accumulators held in registers:
 *
 *   DSP cores (M4, M7, M33): SXTB16 twice and four SMLABB / SMLATB, 10
 *     instructions per kept weight with the decode, 2.5 per multiply-add;
 *   MVE (M55): tiles of 8 pixels, two widening vector loads and two VMLA by
 *     the weight (two vectors of accumulators) and a vector output stage;
 *   others (M0+, M3, host): four byte loads and four multiply-adds.
 *
 * So the index costs once per tile, not once per pixel, and the work falls
 * with the pruning ratio. Offsets are decoded as darb_fc_s8 does (classes of
 * one block size, power-of-two blocks from one 32-bit load, the general bit
 * reader for the rest); the integers are the same (each pixel's products are
 * added in darb_fc_s8's order). -DDARB_COMPACT keeps only the general loop.
 */
#include "darb.h"
#include "darb_internal.h"

/* DARB_TILE_MAC(A, WP, X): A[p] += *WP * X[p] for the tile's 4 lanes, WP advanced by one. The
 * assembly steps need the registers an optimizing build leaves free: at -O0 the portable C runs. */
#if defined(DARB_HAVE_DSP) && !defined(DARB_HAVE_MVE) && defined(__OPTIMIZE__)
typedef struct {
    int32_t a0, a1, a2, a3;
} darb_tile_acc;

/* a word of the tile, as an assembly operand (so gcc picks the addressing mode) */
typedef uint32_t __attribute__((may_alias)) darb_tile_word;

#define DARB_TILE_INIT(A, B) ((A).a0 = (A).a1 = (A).a2 = (A).a3 = (B))
/* One assembly step, so that gcc cannot hoist the loads of a whole unrolled
 * group ahead and spill them: the weight (post-increment), the column's four
 * inputs as one word, bytes 0 and 2 then 1 and 3 as int16 halves, and four
 * 16 x 16 multiply-adds: 8 instructions. */
#define DARB_TILE_MAC(A, WP, X)                                                                       \
    do {                                                                                              \
        int32_t w_;                                                                                   \
        uint32_t v_;                                                                                  \
        uint32_t e_;                                                                                  \
        __asm__("ldrsb   %[w], [%[wp]], #1\n\t"                                                      \
                "ldr     %[v], %[x]\n\t"                                                             \
                "sxtb16  %[e], %[v]\n\t"                                                             \
                "sxtb16  %[v], %[v], ror #8\n\t"                                                     \
                "smlabb  %[a0], %[e], %[w], %[a0]\n\t"                                               \
                "smlatb  %[a2], %[e], %[w], %[a2]\n\t"                                               \
                "smlabb  %[a1], %[v], %[w], %[a1]\n\t"                                               \
                "smlatb  %[a3], %[v], %[w], %[a3]"                                                   \
                : [a0] "+r"((A).a0), [a1] "+r"((A).a1), [a2] "+r"((A).a2), [a3] "+r"((A).a3),        \
                  [wp] "+r"(WP), [w] "=&r"(w_), [v] "=&r"(v_), [e] "=&r"(e_)                         \
                : [x] "m"(*(const darb_tile_word *)(const void *)(X)));                               \
    } while (0)
#define DARB_TILE_GET(A, V) ((V)[0] = (A).a0, (V)[1] = (A).a1, (V)[2] = (A).a2, (V)[3] = (A).a3)

/* Block J of a group whose offsets are the bits of T (BITS each) and whose
 * first block's tile columns start at X, all in one assembly step with the
 * offset's field and the block's distance as immediates: 10 instructions,
 * where gcc's decode between DARB_TILE_MAC steps spilled registers. */
#define DARB_TILE_STEP(J, BITS, A, WP, T, X)                                                          \
    do {                                                                                              \
        int32_t w_;                                                                                   \
        uint32_t v_;                                                                                  \
        uint32_t e_;                                                                                  \
        uint32_t o_;                                                                                  \
        __asm__("ubfx    %[o], %[t], #((" #J ") * (" #BITS ")), #(" #BITS ")\n\t"                    \
                "add     %[o], %[x], %[o], lsl #2\n\t"                                              \
                "ldrsb   %[w], [%[wp]], #1\n\t"                                                     \
                "ldr     %[v], [%[o], #((" #J ") * 4 * (1 << (" #BITS ")))]\n\t"                     \
                "sxtb16  %[e], %[v]\n\t"                                                            \
                "sxtb16  %[v], %[v], ror #8\n\t"                                                    \
                "smlabb  %[a0], %[e], %[w], %[a0]\n\t"                                              \
                "smlatb  %[a2], %[e], %[w], %[a2]\n\t"                                              \
                "smlabb  %[a1], %[v], %[w], %[a1]\n\t"                                              \
                "smlatb  %[a3], %[v], %[w], %[a3]"                                                  \
                : [a0] "+r"((A).a0), [a1] "+r"((A).a1), [a2] "+r"((A).a2), [a3] "+r"((A).a3),       \
                  [wp] "+r"(WP), [w] "=&r"(w_), [v] "=&r"(v_), [e] "=&r"(e_), [o] "=&r"(o_)         \
                : [t] "r"(T), [x] "r"(X), "m"(*(const darb_tile_word(*)[1 << 12])(const void *)(X))); \
    } while (0)
#define DARB_TILE_G1(B, A, WP, T, X) DARB_TILE_STEP(0, B, A, WP, T, X)
#define DARB_TILE_G2(B, A, WP, T, X) DARB_TILE_G1(B, A, WP, T, X); DARB_TILE_STEP(1, B, A, WP, T, X)
#define DARB_TILE_G4(B, A, WP, T, X)                                                                  \
    DARB_TILE_G2(B, A, WP, T, X); DARB_TILE_STEP(2, B, A, WP, T, X); DARB_TILE_STEP(3, B, A, WP, T, X)
#define DARB_TILE_G8(B, A, WP, T, X)                                                                  \
    DARB_TILE_G4(B, A, WP, T, X); DARB_TILE_STEP(4, B, A, WP, T, X); DARB_TILE_STEP(5, B, A, WP, T, X); \
    DARB_TILE_STEP(6, B, A, WP, T, X); DARB_TILE_STEP(7, B, A, WP, T, X)
#define DARB_TILE_G16(B, A, WP, T, X)                                                                 \
    DARB_TILE_G8(B, A, WP, T, X); DARB_TILE_STEP(8, B, A, WP, T, X); DARB_TILE_STEP(9, B, A, WP, T, X); \
    DARB_TILE_STEP(10, B, A, WP, T, X); DARB_TILE_STEP(11, B, A, WP, T, X);                          \
    DARB_TILE_STEP(12, B, A, WP, T, X); DARB_TILE_STEP(13, B, A, WP, T, X);                          \
    DARB_TILE_STEP(14, B, A, WP, T, X); DARB_TILE_STEP(15, B, A, WP, T, X)
/* a whole group of GROUP blocks */
#define DARB_TILE_GROUP(GROUP, BITS, A, WP, T, X) DARB_TILE_G##GROUP(BITS, A, WP, T, X)
#elif defined(DARB_HAVE_MVE)
/* 8 pixels: two vectors of 4 accumulators; per kept weight two widening
 * loads of the column's 8 inputs and two VMLA by the weight */
typedef struct {
    int32x4_t a0, a1;
} darb_tile_acc;
#define DARB_TILE_INIT(A, B) ((A).a0 = (A).a1 = vdupq_n_s32(B))
#define DARB_TILE_MAC(A, WP, X)                                                                       \
    do {                                                                                              \
        const int32_t w_ = *(WP)++;                                                                   \
        const int8_t *x_ = (X);                                                                       \
        (A).a0 = vmlaq_n_s32((A).a0, vldrbq_s32(x_), w_);                                             \
        (A).a1 = vmlaq_n_s32((A).a1, vldrbq_s32(x_ + 4), w_);                                         \
    } while (0)
#else
typedef struct {
    int32_t a0, a1, a2, a3;
} darb_tile_acc;
#define DARB_TILE_INIT(A, B) ((A).a0 = (A).a1 = (A).a2 = (A).a3 = (B))
#define DARB_TILE_MAC(A, WP, X)                                                                       \
    do {                                                                                              \
        const int32_t w_ = *(WP)++;                                                                   \
        const int8_t *x_ = (X);                                                                       \
        (A).a0 += w_ * x_[0];                                                                         \
        (A).a1 += w_ * x_[1];                                                                         \
        (A).a2 += w_ * x_[2];                                                                         \
        (A).a3 += w_ * x_[3];                                                                         \
    } while (0)
#define DARB_TILE_GET(A, V) ((V)[0] = (A).a0, (V)[1] = (A).a1, (V)[2] = (A).a2, (V)[3] = (A).a3)
#endif

#ifndef DARB_TILE_GROUP
/* a whole group of GROUP blocks, a loop of DARB_TILE_MAC */
#define DARB_TILE_GROUP(GROUP, BITS, A, WP, T, X)                                                     \
    do {                                                                                              \
        uint32_t j_;                                                                                  \
        _Pragma("GCC unroll 16")                                                                      \
        for (j_ = 0; j_ < (GROUP); ++j_) {                                                            \
            DARB_TILE_MAC(A, WP, (X) + DARB_TILE * (j_ * (1u << (BITS)) + (((T) >> (j_ * (BITS))) & ((1u << (BITS)) - 1u)))); \
        }                                                                                             \
    } while (0)
#endif
#define DARB_TILE_GROUP_STEPS(GROUP, BITS, A, WP, T, X, BLOCK, MASK) DARB_TILE_GROUP(GROUP, BITS, A, WP, T, X)

#if defined(DARB_HAVE_MVE) ? DARB_TILE != 8 : DARB_TILE != 4
#error "darb_fc_s8_tile: DARB_TILE is 8 with MVE, else 4 (darb.h)"
#endif

#if defined(DARB_HAVE_DSP) && !defined(DARB_HAVE_MVE) && defined(__OPTIMIZE__)
/* A row's output stage for the assembly below (a row that shifts right, no
 * table): k = 2^30 + 2^(30 + right), the multiplier and right - 1 (per row),
 * then output_offset, act_min and act_max twice (int16 halves, per call). */
typedef struct {
    uint32_t k_lo;
    int32_t k_hi;
    int32_t m;
    uint32_t r1;
    uint32_t offset2;
    uint32_t min2;
    uint32_t max2;
} darb_tile_q;

static inline uint32_t darb_tile_twice(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16);
}

/* (x * m + k - (x < 0) * 2^31) >> 32 >> (right - 1) (darb_mm_out), saturated
 * to int16; the offset and clamp below give the same bytes as on int32 */
#define DARB_TILE_ASM_REQUANT(x)                     \
    "ldrd   %[lo], %[hi], [%[q]]\n\t"              \
    "and    %[t], %[" #x "], #0x80000000\n\t"       \
    "subs   %[lo], %[lo], %[t]\n\t"                 \
    "sbc    %[hi], %[hi], #0\n\t"                   \
    "smlal  %[lo], %[hi], %[" #x "], %[m]\n\t"      \
    "asr    %[" #x "], %[hi], %[r1]\n\t"            \
    "ssat   %[" #x "], #16, %[" #x "]\n\t"

/* The four outputs of a row: requantized one by one, pixels 0 and 1, 2 and
 * 3 paired in int16 halves for the offset (QADD16) and the clamp (SSUB16
 * sets the GE flags, SEL picks), stored as bytes rows apart: 52
 * instructions, where the C below takes about twice as many. */
#define DARB_TILE_ASM_OUTPUT                                                                          \
    "ldr    %[m], [%[q], #8]\n\t"                                                                    \
    "ldr    %[r1], [%[q], #12]\n\t" DARB_TILE_ASM_REQUANT(a0) DARB_TILE_ASM_REQUANT(a1)               \
    DARB_TILE_ASM_REQUANT(a2) DARB_TILE_ASM_REQUANT(a3)                                              \
    "pkhbt  %[a0], %[a0], %[a1], lsl #16\n\t"                                                        \
    "pkhbt  %[a2], %[a2], %[a3], lsl #16\n\t"                                                        \
    "ldr    %[t], [%[q], #16]\n\t"                                                                   \
    "qadd16 %[a0], %[a0], %[t]\n\t"                                                                  \
    "qadd16 %[a2], %[a2], %[t]\n\t"                                                                  \
    "ldr    %[t], [%[q], #20]\n\t"                                                                   \
    "ssub16 %[m], %[a0], %[t]\n\t"                                                                   \
    "sel    %[a0], %[a0], %[t]\n\t"                                                                  \
    "ssub16 %[m], %[a2], %[t]\n\t"                                                                   \
    "sel    %[a2], %[a2], %[t]\n\t"                                                                  \
    "ldr    %[t], [%[q], #24]\n\t"                                                                   \
    "ssub16 %[m], %[t], %[a0]\n\t"                                                                   \
    "sel    %[a0], %[a0], %[t]\n\t"                                                                  \
    "ssub16 %[m], %[t], %[a2]\n\t"                                                                   \
    "sel    %[a2], %[a2], %[t]\n\t"                                                                  \
    "strb   %[a0], [%[o]]\n\t"                                                                       \
    "lsr    %[a0], %[a0], #16\n\t"                                                                   \
    "strb   %[a0], [%[o], %[rows]]\n\t"                                                              \
    "add    %[t], %[o], %[rows], lsl #1\n\t"                                                         \
    "strb   %[a2], [%[t]]\n\t"                                                                       \
    "lsr    %[a2], %[a2], #16\n\t"                                                                   \
    "strb   %[a2], [%[t], %[rows]]\n\t"

/* the call's part of the assembly's constants, and whether it applies: no
 * table and the bounds its int16 steps are exact within */
static inline int darb_tile_q_init(const darb_quant_s8 *quant, darb_tile_q *tq)
{
    tq->offset2 = darb_tile_twice(quant->output_offset);
    tq->min2 = darb_tile_twice(quant->act_min);
    tq->max2 = darb_tile_twice(quant->act_max);
    return quant->lut == 0 && quant->output_offset >= -256 && quant->output_offset <= 255 &&
           quant->act_min >= -128 && quant->act_max <= 127;
}
#define DARB_TILE_FAST_POST 1
#endif

#ifdef DARB_HAVE_MVE
/* darb_mm_out on a vector of one row's accumulators (as darb_mm_s8's MVE
 * output stage: VQRDMULH is the doubling high multiply, and a lane that
 * shifts right takes 1 off a negative value before the rounding shift) */
static inline int32x4_t darb_tile_requant(int32x4_t v, int32_t m, int32_t left, int32_t neg_right,
                                          const darb_quant_s8 *quant)
{
    v = vqrdmulhq_n_s32(vshlq_r_s32(v, left), m);
    v = vrshlq_n_s32(vaddq_s32(v, vshrq_n_s32(vandq_s32(v, vdupq_n_s32(neg_right)), 31)), neg_right);
    v = vaddq_n_s32(v, quant->output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(quant->act_min)), vdupq_n_s32(quant->act_max));
    if (quant->lut != 0) {
        v = vldrbq_gather_offset_s32(quant->lut, vreinterpretq_u32_s32(vaddq_n_s32(v, 128)));
    }
    return v;
}

/* one row's outputs for the tile's pixels, two vectors stored rows apart */
static inline __attribute__((always_inline)) void darb_tile_out(darb_tile_acc acc, uint32_t row, uint32_t rows,
                                                                uint32_t pixels, const darb_quant_s8 *quant,
                                                                void *fast, int8_t *out)
{
    const uint32_t s = row & quant->scale_mask;
    const int32_t shift = quant->shift[s];
    const int32_t m = quant->multiplier[s];
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t neg_right = shift > 0 ? 0 : shift;
    const uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0u, 1), rows);     /* 0, rows, 2 rows, 3 rows */
    const int32x4_t v0 = darb_tile_requant(acc.a0, m, left, neg_right, quant);
    const int32x4_t v1 = darb_tile_requant(acc.a1, m, left, neg_right, quant);
    (void)fast;
    out += row;
    if (pixels == DARB_TILE) {
        vstrbq_scatter_offset_s32(out, offsets, v0);
        vstrbq_scatter_offset_s32(out + 4u * rows, offsets, v1);
    } else {
        vstrbq_scatter_offset_p_s32(out, offsets, v0, vctp32q(pixels < 4u ? pixels : 4u));
        if (pixels > 4u) {
            vstrbq_scatter_offset_p_s32(out + 4u * rows, offsets, v1, vctp32q(pixels - 4u));
        }
    }
}
#else
/* the outputs of one row for the tile's pixels: the row's requantization
 * constants once, then one multiply-accumulate per output (darb_mm_out), or
 * the assembly above for a full tile */
static inline __attribute__((always_inline)) void darb_tile_out(darb_tile_acc acc, uint32_t row, uint32_t rows,
                                                                uint32_t pixels, const darb_quant_s8 *quant,
                                                                void *fast, int8_t *out)
{
    int32_t v[DARB_TILE];
    darb_mm_row q;
    darb_mm_post post;
    uint32_t p;
    out += row;
#ifdef DARB_TILE_FAST_POST
    if (fast != 0) {    /* a full tile, and an output stage the assembly can take */
        const uint32_t s = row & quant->scale_mask;
        const int32_t shift = quant->shift[s];
        if (shift < 0) {
            /* k = 2^30 + 2^(30 + right): 0xC0000000 for right 1, else 2^30 + 2^(right - 2) * 2^32 */
            darb_tile_q *tq = (darb_tile_q *)fast;
            const uint32_t right = (uint32_t)-shift;
            int32_t a0 = acc.a0, a1 = acc.a1, a2 = acc.a2, a3 = acc.a3;
            uint32_t lo, hi, t, m, r1;
            tq->k_lo = right == 1u ? 0xC0000000u : 0x40000000u;
            tq->k_hi = right == 1u ? 0 : (int32_t)(1u << (right - 2u));
            tq->m = quant->multiplier[s];
            tq->r1 = right - 1u;
            __asm__ volatile(DARB_TILE_ASM_OUTPUT
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [lo] "=&r"(lo),
                               [hi] "=&r"(hi), [t] "=&r"(t), [m] "=&r"(m), [r1] "=&r"(r1)
                             : [q] "r"(tq), [o] "r"(out), [rows] "r"(rows)
                             : "cc", "memory");
            return;
        }
    }
#else
    (void)fast;
#endif
    q = darb_mm_row_of(quant, row);
    post = darb_mm_post_of(quant);
    DARB_TILE_GET(acc, v);
    for (p = 0; p < pixels; ++p) {
        out[p * rows] = darb_mm_out(v[p], &q, &post);
    }
}
#endif

#ifndef DARB_COMPACT
/* One class whose block is 1 << BITS: GROUP blocks' offsets per 32-bit load,
 * STEP bytes per load (0: the position is counted in bits), as in darb_fc_s8. */
#define DARB_FC_S8_TILE_POW2(BITS, GROUP, STEP)                                                      \
    static const int8_t *darb_fc_s8_tile_b##BITS(const int8_t *w, const uint8_t *src, uint32_t nblocks, \
                                                 const uint16_t *rows, uint32_t n_rows, uint32_t n_out,  \
                                                 const darb_quant_s8 *quant, void *fast,                \
                                                 const int8_t *tile, uint32_t pixels, int8_t *out)      \
    {                                                                                                 \
        const uint32_t block = 1u << (BITS);                                                          \
        const uint32_t mask = block - 1u;                                                             \
        uint32_t pos = 0;                                                                             \
        uint32_t i;                                                                                   \
        for (i = 0; i < n_rows; ++i) {                                                                \
            const uint32_t row = rows[i];                                                             \
            const int8_t *x = tile; /* the current block's first column */                            \
            const uint8_t *p = src + (pos >> 3);                                                      \
            const uint32_t phase = pos & 7u;                                                          \
            darb_tile_acc acc;                                                                        \
            uint32_t k = nblocks;                                                                     \
            uint32_t t;                                                                               \
            DARB_TILE_INIT(acc, quant->bias[row]);                                                    \
            for (; k >= (GROUP); k -= (GROUP)) {                                                      \
                if ((STEP) != 0u) {                                                                   \
                    t = darb_load32(p) >> phase;                                                      \
                    p += (STEP);                                                                      \
                } else {                                                                              \
                    t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                  \
                    pos += (GROUP) * (BITS);                                                          \
                }                                                                                     \
                DARB_TILE_GROUP_STEPS(GROUP, BITS, acc, w, t, x, block, mask);                         \
                x += DARB_TILE * (GROUP) * block;                                                     \
            }                                                                                         \
            if ((STEP) != 0u) {                                                                       \
                pos = (uint32_t)(p - src) * 8u + phase;                                               \
            }                                                                                         \
            if (k != 0u) {                                                                            \
                /* fewer than GROUP blocks: their offsets from one more load */                       \
                t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                      \
                pos += k * (BITS);                                                                    \
                for (; k != 0u; --k) {                                                                \
                    DARB_TILE_MAC(acc, w, x + DARB_TILE * (t & mask));                                \
                    t >>= (BITS);                                                                     \
                    x += DARB_TILE * block;                                                           \
                }                                                                                     \
            }                                                                                         \
            darb_tile_out(acc, row, n_out, pixels, quant, fast, out);                                       \
        }                                                                                             \
        return w;                                                                                     \
    }

DARB_FC_S8_TILE_POW2(1, 16, 2)
DARB_FC_S8_TILE_POW2(2, 8, 2)
DARB_FC_S8_TILE_POW2(3, 8, 3)
DARB_FC_S8_TILE_POW2(4, 4, 2)
DARB_FC_S8_TILE_POW2(5, 4, 0)
DARB_FC_S8_TILE_POW2(6, 4, 3)
DARB_FC_S8_TILE_POW2(7, 2, 0)
DARB_FC_S8_TILE_POW2(8, 2, 2)
DARB_FC_S8_TILE_POW2(9, 1, 0)

typedef const int8_t *(*darb_fc_s8_tile_fn)(const int8_t *w, const uint8_t *src, uint32_t nblocks,
                                            const uint16_t *rows, uint32_t n_rows, uint32_t n_out,
                                            const darb_quant_s8 *quant, void *fast, const int8_t *tile,
                                            uint32_t pixels, int8_t *out);

static const darb_fc_s8_tile_fn darb_fc_s8_tile_pow2[10] = {
    0, darb_fc_s8_tile_b1, darb_fc_s8_tile_b2, darb_fc_s8_tile_b3, darb_fc_s8_tile_b4, darb_fc_s8_tile_b5,
    darb_fc_s8_tile_b6, darb_fc_s8_tile_b7, darb_fc_s8_tile_b8, darb_fc_s8_tile_b9,
};
#endif /* DARB_COMPACT */

/* Any block size (1: a dense row, no offsets), with the general bit reader. */
static const int8_t *darb_fc_s8_tile_class(const int8_t *w, const uint8_t *src, uint32_t block, uint32_t bits,
                                           uint32_t nblocks, const uint16_t *rows, uint32_t n_rows,
                                           uint32_t n_out, const darb_quant_s8 *quant, void *fast,
                                           const int8_t *tile, uint32_t pixels, int8_t *out)
{
    darb_bit_reader reader;
    uint32_t i;
    darb_bits_init(&reader, src, bits);
    for (i = 0; i < n_rows; ++i) {
        const uint32_t row = rows[i];
        darb_tile_acc acc;
        uint32_t k;
        uint32_t start = 0;
        DARB_TILE_INIT(acc, quant->bias[row]);
        for (k = 0; k < nblocks; ++k, start += block) {
            const uint32_t o = bits != 0u ? darb_bits_next(&reader) : 0u;
            DARB_TILE_MAC(acc, w, tile + DARB_TILE * (start + o));
        }
        darb_tile_out(acc, row, n_out, pixels, quant, fast, out);
    }
    return w;
}

void darb_fc_s8_tile(const darb_pattern *pattern, const int8_t *values, const darb_quant_s8 *quant,
                     const int8_t *tile, uint32_t pixels, int8_t *out)
{
    const int8_t *w = values;
    uint32_t visited = 0;
    uint32_t c;
    void *fast = 0;     /* the assembly output stage's constants, where it applies */
#ifdef DARB_TILE_FAST_POST
    darb_tile_q tq;
    if (darb_tile_q_init(quant, &tq) && pixels == DARB_TILE) {
        fast = &tq;
    }
#endif
    for (c = 0; c < pattern->n_classes; ++c) {
        const uint32_t block = pattern->class_block[c];
        const uint32_t nblocks = (pattern->cols + block - 1u) / block;
        const uint32_t bits = darb_offset_bits(block);
        const uint32_t n_rows = pattern->class_rows[c];
        const uint16_t *rows = pattern->row_order + visited;
        /* b = 1 stores no offsets (and offsets may be NULL: no arithmetic on it) */
        const uint8_t *src = bits != 0u ? pattern->offsets + pattern->class_start[c] : pattern->offsets;
#ifndef DARB_COMPACT
        if (bits >= 1u && bits <= 9u && block == (1u << bits)) {
            w = darb_fc_s8_tile_pow2[bits](w, src, nblocks, rows, n_rows, pattern->rows, quant, fast, tile,
                                           pixels, out);
            visited += n_rows;
            continue;
        }
#endif
        w = darb_fc_s8_tile_class(w, src, block, bits, nblocks, rows, n_rows, pattern->rows, quant, fast, tile,
                                  pixels, out);
        visited += n_rows;
    }
}
