/*
 * darb_mm_s8.c - the int8 weight matrix times the vectors of several pixels
 * (a convolution's patches, or a 1x1 convolution's input in place), int32
 * accumulator:
 *
 *   out[p * rows + r] = darb_output_s8_fast(bias[r] + sum_j w[r][j] * in[p * in_stride + j], r)
 *
 * for every pixel p and row r: darb_dense_fc_s8 on each pixel's vector, with
 * the same integers (the paths add the same products in other orders; the
 * generator bounds every partial sum, whatever the order), and the output
 * stage's integers computed in fewer steps (darb_mm_out, proof in darb_internal.h).
 *
 * Cortex-M4, M7, M33 (DSP extension): two rows times two pixels at a time,
 * four columns per step: one 32-bit load of each row's four weights serves
 * both pixels and one of each pixel's four inputs both rows; SXTB16 widens
 * each word to two int16 pairs and eight SMLAD add the sixteen products to
 * the four accumulators (20 instructions for 16 multiply-adds). The step
 * needs fourteen registers, so its loop is an assembly function. With 8
 * pixels or more and at most DARB_MM_PACK_COLS columns, each row pair's
 * weights are widened once into a stack array and the step takes 16
 * instructions. Row pairs are the outer loop; the four outputs of a block
 * are requantized by one SMLAL each and offset and clamped two at a time
 * (QADD16, SSUB16 / SEL).
 *
 * Cortex-M55 (MVE): four rows times one pixel, sixteen columns per VMLADAVA
 * in a tail-predicated loop (one load of the pixel's inputs, one per row),
 * and the four outputs requantized in one vector; rows are the outer loop,
 * so each group's requantization vectors are loaded once for all pixels.
 *
 * Cortex-M0+, M3 and the host: portable C, two rows times two pixels per
 * column. -DDARB_COMPACT: the plain loop with darb_output_s8_fast, the least
 * code, on every core.
 */
#include "darb.h"
#include "darb_internal.h"

/* acc + w . x over n columns, one product at a time */
static inline int32_t darb_mm_dot_s8(const int8_t *w, const int8_t *x, uint32_t n, int32_t acc)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        acc += (int32_t)w[j] * x[j];
    }
    return acc;
}

/* The output stage: darb_mm_row_of, darb_mm_post_of and darb_mm_out (darb_internal.h). */

#if defined(DARB_HAVE_MVE) && !defined(DARB_COMPACT)
#define DARB_MM_MVE 1
#elif defined(DARB_HAVE_DSP) && defined(__ARM_FEATURE_UNALIGNED) && !defined(DARB_COMPACT)
#define DARB_MM_DSP 1
/* Layers of up to this many columns (and 8 pixels or more) have each row
 * pair's weights widened to int16 once, in a stack array of 4 *
 * DARB_MM_PACK_COLS bytes (256 by default), which saves about a sixth of
 * the instructions; 0: never (no array). */
#ifndef DARB_MM_PACK_COLS
#define DARB_MM_PACK_COLS 64
#endif
#endif

#if defined(DARB_MM_DSP)

/* The column loop of a two-by-two block over the first n columns (n a
 * multiple of 4): s<row><pixel> += the products of rows w0, w1 and pixels a, b.
 * An assembly function of its own, so that it may use all fourteen registers
 * (a step needs four accumulators, four pointers and six values, one more than
 * inline assembly can have when gcc keeps a frame pointer, e.g. at -O0). */
typedef struct {
    int32_t s[4];                   /* s00, s01, s10, s11 (in and out) */
    const int8_t *w0;
    const int8_t *w1;
    const int8_t *a;
    const int8_t *b;
    uint32_t n;
} darb_mm_cols;

void darb_mm_dsp_cols(darb_mm_cols *c);

/* One step of four columns: r1..r4 = s00, s01, s10, s11; r5, r6 = w0, w1;
 * r7, r8 = a, b (all post-incremented); r0, r9..r12, lr are scratch. */
#define DARB_MM_STEP                 \
    "  ldr    r0, [r7], #4\n"        \
    "  ldr    r9, [r8], #4\n"        \
    "  ldr    r10, [r5], #4\n"       \
    "  sxtb16 r11, r0\n"             \
    "  sxtb16 r12, r9\n"             \
    "  sxtb16 lr, r10\n"             \
    "  smlad  r1, lr, r11, r1\n"     \
    "  smlad  r2, lr, r12, r2\n"     \
    "  sxtb16 r10, r10, ror #8\n"    \
    "  sxtb16 r0, r0, ror #8\n"      \
    "  sxtb16 r9, r9, ror #8\n"      \
    "  smlad  r1, r10, r0, r1\n"     \
    "  smlad  r2, r10, r9, r2\n"     \
    "  ldr    r10, [r6], #4\n"       \
    "  sxtb16 lr, r10\n"             \
    "  sxtb16 r10, r10, ror #8\n"    \
    "  smlad  r3, lr, r11, r3\n"     \
    "  smlad  r4, lr, r12, r4\n"     \
    "  smlad  r3, r10, r0, r3\n"     \
    "  smlad  r4, r10, r9, r4\n"

/* 16 columns per iteration, then 4; the two ends wait on the stack. */
__asm__("  .pushsection .text.darb_mm_dsp_cols,\"ax\",%progbits\n"
        "  .syntax unified\n"
        "  .thumb\n"
        "  .p2align 2\n"
        "  .global darb_mm_dsp_cols\n"
        "  .type darb_mm_dsp_cols, %function\n"
        "  .thumb_func\n"
        "darb_mm_dsp_cols:\n"
        "  push   {r4-r11, lr}\n"
        "  ldr    r9, [r0, #32]\n"
        "  ldm    r0, {r1-r8}\n"
        "  push   {r0}\n"
        "  bic    r10, r9, #15\n"
        "  add    r10, r5, r10\n"
        "  add    r9, r5, r9\n"
        "  push   {r9, r10}\n"
        "  cmp    r5, r10\n"
        "  beq    2f\n"
        "1:\n" DARB_MM_STEP DARB_MM_STEP DARB_MM_STEP DARB_MM_STEP
        "  ldr    r0, [sp, #4]\n"
        "  cmp    r5, r0\n"
        "  bne    1b\n"
        "2:\n"
        "  ldr    r0, [sp]\n"
        "  cmp    r5, r0\n"
        "  beq    4f\n"
        "3:\n" DARB_MM_STEP
        "  ldr    r0, [sp]\n"
        "  cmp    r5, r0\n"
        "  bne    3b\n"
        "4:\n"
        "  add    sp, sp, #8\n"
        "  pop    {r0}\n"
        "  stm    r0, {r1-r4}\n"
        "  pop    {r4-r11, pc}\n"
        "  .size darb_mm_dsp_cols, .-darb_mm_dsp_cols\n"
        "  .popsection\n");

#if DARB_MM_PACK_COLS > 0
/* The same step on a row pair whose weights were widened beforehand: per
 * four columns, row 0's two int16 pairs and row 1's (in the SXTB16 order:
 * columns 0 and 2, then 1 and 3) one LDRD each. 16 instructions for 16
 * multiply-adds. */
#define DARB_MM_ASM_STEP_PACKED                \
    "ldr    %[t0], [%[a]], #4\n\t"             \
    "ldr    %[t1], [%[b]], #4\n\t"             \
    "sxtb16 %[t2], %[t0]\n\t"                  \
    "sxtb16 %[t3], %[t1]\n\t"                  \
    "sxtb16 %[t0], %[t0], ror #8\n\t"          \
    "sxtb16 %[t1], %[t1], ror #8\n\t"          \
    "ldrd   %[t4], %[t5], [%[wp]], #8\n\t"     \
    "smlad  %[s00], %[t4], %[t2], %[s00]\n\t"  \
    "smlad  %[s01], %[t4], %[t3], %[s01]\n\t"  \
    "smlad  %[s00], %[t5], %[t0], %[s00]\n\t"  \
    "smlad  %[s01], %[t5], %[t1], %[s01]\n\t"  \
    "ldrd   %[t4], %[t5], [%[wp]], #8\n\t"     \
    "smlad  %[s10], %[t4], %[t2], %[s10]\n\t"  \
    "smlad  %[s11], %[t4], %[t3], %[s11]\n\t"  \
    "smlad  %[s10], %[t5], %[t0], %[s10]\n\t"  \
    "smlad  %[s11], %[t5], %[t1], %[s11]\n\t"

/* its column loops, as in darb_mm_dsp_cols (the ends are in the packed array) */
#define DARB_MM_ASM_COLUMNS_PACKED                                                                   \
    "ldr    %[t0], %[end16]\n\t"                                                                    \
    "cmp    %[wp], %[t0]\n\t"                                                                       \
    "beq    2f\n\t"                                                                                 \
    "1:\n\t" DARB_MM_ASM_STEP_PACKED DARB_MM_ASM_STEP_PACKED DARB_MM_ASM_STEP_PACKED                 \
        DARB_MM_ASM_STEP_PACKED                                                                      \
    "ldr    %[t0], %[end16]\n\t"                                                                    \
    "cmp    %[wp], %[t0]\n\t"                                                                       \
    "bne    1b\n\t"                                                                                 \
    "2:\n\t"                                                                                        \
    "ldr    %[t0], %[end4]\n\t"                                                                     \
    "cmp    %[wp], %[t0]\n\t"                                                                       \
    "beq    4f\n\t"                                                                                 \
    "3:\n\t" DARB_MM_ASM_STEP_PACKED                                                                \
    "ldr    %[t0], %[end4]\n\t"                                                                     \
    "cmp    %[wp], %[t0]\n\t"                                                                       \
    "bne    3b\n\t"                                                                                 \
    "4:\n\t"                                                                                        \
    : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [wp] "+r"(wp), [a] "+r"(a),   \
      [b] "+r"(b), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4),      \
      [t5] "=&r"(t5)                                                                                 \
    : [end16] "m"(pend16), [end4] "m"(pend4)                                                         \
    : "cc", "memory"
#endif

/* Four rows of one pixel (a fully connected layer): s[k] += w_k . x over the
 * first n columns (n a multiple of 4). Per four columns one load of the
 * input's word and its two SXTB16 serve the four rows; each row takes a load,
 * two SXTB16 and two SMLAD: 23 instructions for 16 multiply-adds. */
typedef struct {
    int32_t s[4];                   /* in and out */
    const int8_t *w[4];
    const int8_t *x;
    uint32_t n;
} darb_mm_rows4;

void darb_mm_dsp_rows4(darb_mm_rows4 *c);

/* r0 = x, r1..r4 = s0..s3, r5..r8 = w0..w3 (all post-incremented); r9..r12 scratch */
#define DARB_MM_ROW_STEP(W, S)       \
    "  ldr    r11, [" W "], #4\n"    \
    "  sxtb16 r12, r11\n"            \
    "  sxtb16 r11, r11, ror #8\n"    \
    "  smlad  " S ", r12, r9, " S "\n" \
    "  smlad  " S ", r11, r10, " S "\n"
#define DARB_MM_STEP4                \
    "  ldr    r9, [r0], #4\n"        \
    "  sxtb16 r10, r9, ror #8\n"     \
    "  sxtb16 r9, r9\n"              \
    DARB_MM_ROW_STEP("r5", "r1") DARB_MM_ROW_STEP("r6", "r2") \
    DARB_MM_ROW_STEP("r7", "r3") DARB_MM_ROW_STEP("r8", "r4")

/* 16 columns per iteration (lr: their end), then 4 (their end on the stack) */
__asm__("  .pushsection .text.darb_mm_dsp_rows4,\"ax\",%progbits\n"
        "  .syntax unified\n"
        "  .thumb\n"
        "  .p2align 2\n"
        "  .global darb_mm_dsp_rows4\n"
        "  .type darb_mm_dsp_rows4, %function\n"
        "  .thumb_func\n"
        "darb_mm_dsp_rows4:\n"
        "  push   {r4-r11, lr}\n"
        "  push   {r0}\n"
        "  ldr    r9, [r0, #36]\n"
        "  ldr    r10, [r0, #32]\n"
        "  ldm    r0, {r1-r8}\n"
        "  mov    r0, r10\n"
        "  bic    r10, r9, #15\n"
        "  add    lr, r0, r10\n"
        "  add    r9, r0, r9\n"
        "  push   {r9}\n"
        "  cmp    r0, lr\n"
        "  beq    2f\n"
        "1:\n" DARB_MM_STEP4 DARB_MM_STEP4 DARB_MM_STEP4 DARB_MM_STEP4
        "  cmp    r0, lr\n"
        "  bne    1b\n"
        "2:\n"
        "  ldr    lr, [sp]\n"
        "  cmp    r0, lr\n"
        "  beq    4f\n"
        "3:\n" DARB_MM_STEP4
        "  cmp    r0, lr\n"
        "  bne    3b\n"
        "4:\n"
        "  add    sp, sp, #4\n"
        "  pop    {r0}\n"
        "  stm    r0, {r1-r4}\n"
        "  pop    {r4-r11, pc}\n"
        "  .size darb_mm_dsp_rows4, .-darb_mm_dsp_rows4\n"
        "  .popsection\n");

/* s0 += c . d0 and s1 += c . d1 over n columns (two rows of one pixel, or one
 * row of two pixels: c is the operand they share) */
static inline void darb_mm_1x2_dsp(const int8_t *c, const int8_t *d0, const int8_t *d1, uint32_t n, int32_t *s0,
                                   int32_t *s1)
{
    int32_t acc0 = *s0;
    int32_t acc1 = *s1;
    uint32_t j = 0;
    for (; j + 4u <= n; j += 4u) {
        const uint32_t x = darb_load32(c + j);
        const uint32_t xe = darb_sxtb16(x);
        const uint32_t xo = darb_sxtb16_ror8(x);
        const uint32_t u = darb_load32(d0 + j);
        const uint32_t v = darb_load32(d1 + j);
        acc0 = darb_smlad(darb_sxtb16(u), xe, acc0);
        acc0 = darb_smlad(darb_sxtb16_ror8(u), xo, acc0);
        acc1 = darb_smlad(darb_sxtb16(v), xe, acc1);
        acc1 = darb_smlad(darb_sxtb16_ror8(v), xo, acc1);
    }
    for (; j < n; ++j) {
        acc0 += (int32_t)c[j] * d0[j];
        acc1 += (int32_t)c[j] * d1[j];
    }
    *s0 = acc0;
    *s1 = acc1;
}

/* A row pair's output stage for the assembly below (rows that shift right,
 * no table): k = 2^30 + 2^(30 + right), the multiplier and right - 1 of each
 * row, then output_offset, act_min and act_max twice (int16 halves). */
typedef struct {
    uint32_t k_lo0;
    int32_t k_hi0;
    int32_t m0;
    uint32_t r1_0;
    uint32_t k_lo1;
    int32_t k_hi1;
    int32_t m1;
    uint32_t r1_1;
    uint32_t offset2;
    uint32_t min2;
    uint32_t max2;
} darb_mm_pair;

static inline uint32_t darb_mm_twice(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16);
}

static inline void darb_mm_pair_of(const darb_quant_s8 *quant, uint32_t r, darb_mm_pair *pair)
{
    const darb_mm_row q0 = darb_mm_row_of(quant, r);
    const darb_mm_row q1 = darb_mm_row_of(quant, r + 1u);
    pair->k_lo0 = q0.k_lo;
    pair->k_hi0 = q0.k_hi;
    pair->m0 = q0.multiplier;
    pair->r1_0 = q0.right - 1u;
    pair->k_lo1 = q1.k_lo;
    pair->k_hi1 = q1.k_hi;
    pair->m1 = q1.multiplier;
    pair->r1_1 = q1.right - 1u;
    pair->offset2 = darb_mm_twice(quant->output_offset);
    pair->min2 = darb_mm_twice(quant->act_min);
    pair->max2 = darb_mm_twice(quant->act_max);
}

/* The output stage of one accumulator %[x] of row pair half H (0 or 16):
 * (x * m + k - (x < 0) * 2^31) >> 32 >> (right - 1), saturated to int16
 * (the offset and clamp below give the same bytes as on the int32 value). */
#define DARB_MM_ASM_REQUANT(x, H)                    \
    "ldrd   %[lo], %[hi], [%[q], #" #H "]\n\t"      \
    "and    %[t], %[" #x "], #0x80000000\n\t"       \
    "subs   %[lo], %[lo], %[t]\n\t"                 \
    "sbc    %[hi], %[hi], #0\n\t"                   \
    "smlal  %[lo], %[hi], %[" #x "], %[m]\n\t"      \
    "asr    %[" #x "], %[hi], %[r1]\n\t"            \
    "ssat   %[" #x "], #16, %[" #x "]\n\t"

/* Two pixels' outputs of a row pair: a<p> is row r, b<p> row r + 1 of pixel
 * p; each pixel's two values go into the halves of one register, take the
 * offset (QADD16) and the clamp (SSUB16 sets the GE flags, SEL picks) and
 * are stored as two bytes. */
#define DARB_MM_ASM_OUTPUT                                                                            \
    "ldr    %[m], [%[q], #8]\n\t"                                                                    \
    "ldr    %[r1], [%[q], #12]\n\t" DARB_MM_ASM_REQUANT(a0, 0) DARB_MM_ASM_REQUANT(a1, 0)              \
    "ldr    %[m], [%[q], #24]\n\t"                                                                   \
    "ldr    %[r1], [%[q], #28]\n\t" DARB_MM_ASM_REQUANT(b0, 16) DARB_MM_ASM_REQUANT(b1, 16)           \
    "pkhbt  %[a0], %[a0], %[b0], lsl #16\n\t"                                                        \
    "pkhbt  %[a1], %[a1], %[b1], lsl #16\n\t"                                                        \
    "ldr    %[t], [%[q], #32]\n\t"                                                                   \
    "qadd16 %[a0], %[a0], %[t]\n\t"                                                                  \
    "qadd16 %[a1], %[a1], %[t]\n\t"                                                                  \
    "ldr    %[t], [%[q], #36]\n\t"                                                                   \
    "ssub16 %[m], %[a0], %[t]\n\t"                                                                   \
    "sel    %[a0], %[a0], %[t]\n\t"                                                                  \
    "ssub16 %[m], %[a1], %[t]\n\t"                                                                   \
    "sel    %[a1], %[a1], %[t]\n\t"                                                                  \
    "ldr    %[t], [%[q], #40]\n\t"                                                                   \
    "ssub16 %[m], %[t], %[a0]\n\t"                                                                   \
    "sel    %[a0], %[a0], %[t]\n\t"                                                                  \
    "ssub16 %[m], %[t], %[a1]\n\t"                                                                   \
    "sel    %[a1], %[a1], %[t]\n\t"                                                                  \
    "uxtb16 %[a0], %[a0]\n\t"                                                                        \
    "uxtb16 %[a1], %[a1]\n\t"                                                                        \
    "orr    %[a0], %[a0], %[a0], lsr #8\n\t"                                                         \
    "orr    %[a1], %[a1], %[a1], lsr #8\n\t"                                                         \
    "strh   %[a0], [%[o0]]\n\t"                                                                      \
    "strh   %[a1], [%[o1]]\n\t"

/* The output stage of a two-by-two block in C (a table, or a row that
 * shifts left): out of line, as it is rare and would crowd the hot loop. */
static DARB_NOINLINE void darb_mm_out2x2(const int32_t *s, const darb_quant_s8 *quant, uint32_t r, int8_t *o,
                                         uint32_t rows)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const darb_mm_row q0 = darb_mm_row_of(quant, r);
    const darb_mm_row q1 = darb_mm_row_of(quant, r + 1u);
    o[0] = darb_mm_out(s[0], &q0, &post);
    o[1] = darb_mm_out(s[2], &q1, &post);
    o[rows] = darb_mm_out(s[1], &q0, &post);
    o[rows + 1u] = darb_mm_out(s[3], &q1, &post);
}

/* Rows r, r + 1 of one pixel x (an odd pixel count's last). */
static DARB_NOINLINE void darb_mm_2x1_dsp(const int8_t *w, uint32_t cols, const darb_quant_s8 *quant, uint32_t r,
                                          const int8_t *x, int8_t *o)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const darb_mm_row q0 = darb_mm_row_of(quant, r);
    const darb_mm_row q1 = darb_mm_row_of(quant, r + 1u);
    int32_t s0 = quant->bias[r];
    int32_t s1 = quant->bias[r + 1u];
    darb_mm_1x2_dsp(x, w, w + cols, cols, &s0, &s1);
    o[0] = darb_mm_out(s0, &q0, &post);
    o[1] = darb_mm_out(s1, &q1, &post);
}

/* The last row r of an odd row count, every pixel. */
static DARB_NOINLINE void darb_mm_1xn_dsp(const int8_t *w, uint32_t rows, uint32_t cols,
                                          const darb_quant_s8 *quant, uint32_t r, const int8_t *in, uint32_t pixels,
                                          uint32_t in_stride, int8_t *out)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const darb_mm_row q = darb_mm_row_of(quant, r);
    const int32_t b0 = quant->bias[r];
    const int8_t *x = in;
    int8_t *o = out + r;
    uint32_t p;
    for (p = 0; p + 2u <= pixels; p += 2u, x += 2u * in_stride, o += 2u * rows) {
        int32_t s0 = b0;
        int32_t s1 = b0;
        darb_mm_1x2_dsp(w, x, x + in_stride, cols, &s0, &s1);
        o[0] = darb_mm_out(s0, &q, &post);
        o[rows] = darb_mm_out(s1, &q, &post);
    }
    if (p < pixels) {
        o[0] = darb_mm_out(darb_mm_dot_s8(w, x, cols, b0), &q, &post);
    }
}

/* Row pairs outside (a pair's output stage is prepared once), pixel pairs
 * inside. pack: NULL, or room for cols int32 (cols <= DARB_MM_PACK_COLS),
 * where each row pair's weights are widened once for all its pixels. */
static DARB_NOINLINE void darb_mm_dsp_pairs(uint32_t rows, uint32_t cols, const int8_t *weights,
                                            const darb_quant_s8 *quant, const int8_t *in, uint32_t pixels,
                                            uint32_t in_stride, int8_t *restrict out, uint32_t *pack)
{
    /* the assembly's output stage: no table, and the bounds its int16 steps
     * are exact within (darb.h's ranges) */
    const int simd_post = quant->lut == 0 && quant->output_offset >= -256 && quant->output_offset <= 255 &&
                          quant->act_min >= -128 && quant->act_max <= 127;
    const uint32_t cols4 = cols & ~3u;
    const int8_t *w = weights;
    darb_mm_pair pair;
    darb_mm_cols cc;
    uint32_t r;
    uint32_t p;
    (void)pack;
    for (r = 0; r + 2u <= rows; r += 2u, w += 2u * cols) {
        const int fast = simd_post && quant->shift[r & quant->scale_mask] < 0 &&
                         quant->shift[(r + 1u) & quant->scale_mask] < 0;
        const int32_t b0 = quant->bias[r];
        const int32_t b1 = quant->bias[r + 1u];
        const int8_t *x = in;
        int8_t *o = out + r;
#if DARB_MM_PACK_COLS > 0
        const uint32_t *const pend16 = pack != 0 ? pack + (cols & ~15u) : pack;
        const uint32_t *const pend4 = pack != 0 ? pack + cols4 : pack;
        if (pack != 0) {
            uint32_t j;
            for (j = 0; j < cols4; j += 4u) {
                const uint32_t u = darb_load32(w + j);
                const uint32_t v = darb_load32(w + cols + j);
                pack[j] = darb_sxtb16(u);
                pack[j + 1u] = darb_sxtb16_ror8(u);
                pack[j + 2u] = darb_sxtb16(v);
                pack[j + 3u] = darb_sxtb16_ror8(v);
            }
        }
#endif
        if (fast) {
            darb_mm_pair_of(quant, r, &pair);
        }
        cc.w0 = w;
        cc.w1 = w + cols;
        cc.n = cols4;
        for (p = 0; p + 2u <= pixels; p += 2u, x += 2u * in_stride, o += 2u * rows) {
            int32_t s00 = b0;
            int32_t s01 = b0;
            int32_t s10 = b1;
            int32_t s11 = b1;
            uint32_t j;
#if DARB_MM_PACK_COLS > 0
            if (pack != 0) {
                const uint32_t *wp = pack;
                const int8_t *a = x;
                const int8_t *b = x + in_stride;
                uint32_t t0, t1, t2, t3, t4, t5;
                __asm__ volatile(DARB_MM_ASM_COLUMNS_PACKED);
            } else
#endif
            {
                cc.s[0] = s00;
                cc.s[1] = s01;
                cc.s[2] = s10;
                cc.s[3] = s11;
                cc.a = x;
                cc.b = x + in_stride;
                darb_mm_dsp_cols(&cc);
                s00 = cc.s[0];
                s01 = cc.s[1];
                s10 = cc.s[2];
                s11 = cc.s[3];
            }
            for (j = cols4; j < cols; ++j) {     /* the last cols % 4 columns */
                const int32_t xa = x[j];
                const int32_t xb = x[in_stride + j];
                s00 += (int32_t)w[j] * xa;
                s01 += (int32_t)w[j] * xb;
                s10 += (int32_t)w[cols + j] * xa;
                s11 += (int32_t)w[cols + j] * xb;
            }
            if (fast) {
                uint32_t lo, hi, t, m, r1;
                __asm__ volatile(DARB_MM_ASM_OUTPUT
                                 : [a0] "+r"(s00), [a1] "+r"(s01), [b0] "+r"(s10), [b1] "+r"(s11), [lo] "=&r"(lo),
                                   [hi] "=&r"(hi), [t] "=&r"(t), [m] "=&r"(m), [r1] "=&r"(r1)
                                 : [q] "r"(&pair), [o0] "r"(o), [o1] "r"(o + rows)
                                 : "cc", "memory");
            } else {
                cc.s[0] = s00;
                cc.s[1] = s01;
                cc.s[2] = s10;
                cc.s[3] = s11;
                darb_mm_out2x2(cc.s, quant, r, o, rows);
            }
        }
        if (p < pixels) {
            darb_mm_2x1_dsp(w, cols, quant, r, x, o);
        }
    }
    if (r < rows) {
        darb_mm_1xn_dsp(w, rows, cols, quant, r, in, pixels, in_stride, out);
    }
}

#if DARB_MM_PACK_COLS > 0
/* the row pairs with their weights widened on the stack (the array's first cols words) */
static DARB_NOINLINE void darb_mm_dsp_packed(uint32_t rows, uint32_t cols, const int8_t *weights,
                                             const darb_quant_s8 *quant, const int8_t *in, uint32_t pixels,
                                             uint32_t in_stride, int8_t *out)
{
    uint32_t pack[DARB_MM_PACK_COLS];
    darb_mm_dsp_pairs(rows, cols, weights, quant, in, pixels, in_stride, out, pack);
}
#endif

/* One pixel (a fully connected layer): four rows at a time, then pairs, then the odd last row. */
static DARB_NOINLINE void darb_mm_dsp_1px(uint32_t rows, uint32_t cols, const int8_t *weights,
                                          const darb_quant_s8 *quant, const int8_t *x, int8_t *out)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const uint32_t cols4 = cols & ~3u;
    const int8_t *w = weights;
    darb_mm_rows4 c;
    uint32_t r;
    uint32_t k;
    for (r = 0; r + 4u <= rows; r += 4u, w += 4u * cols) {
        for (k = 0; k < 4u; ++k) {
            c.s[k] = quant->bias[r + k];
            c.w[k] = w + k * cols;
        }
        c.x = x;
        c.n = cols4;
        darb_mm_dsp_rows4(&c);
        for (k = 0; k < 4u; ++k) {
            const darb_mm_row q = darb_mm_row_of(quant, r + k);
            out[r + k] = darb_mm_out(darb_mm_dot_s8(w + k * cols + cols4, x + cols4, cols - cols4, c.s[k]), &q,
                                     &post);
        }
    }
    for (; r + 2u <= rows; r += 2u, w += 2u * cols) {
        darb_mm_2x1_dsp(w, cols, quant, r, x, out + r);
    }
    if (r < rows) {
        darb_mm_1xn_dsp(w, rows, cols, quant, r, x, 1u, cols, out);
    }
}

static void darb_mm_dsp(uint32_t rows, uint32_t cols, const int8_t *weights, const darb_quant_s8 *quant,
                        const int8_t *in, uint32_t pixels, uint32_t in_stride, int8_t *out)
{
    if (pixels == 1u && rows >= 4u) {
        darb_mm_dsp_1px(rows, cols, weights, quant, in, out);
        return;
    }
#if DARB_MM_PACK_COLS > 0
    /* widening a pair's weights costs about what four pixels' steps save */
    if (cols >= 4u && cols <= DARB_MM_PACK_COLS && rows >= 2u && pixels >= 8u) {
        darb_mm_dsp_packed(rows, cols, weights, quant, in, pixels, in_stride, out);
        return;
    }
#endif
    darb_mm_dsp_pairs(rows, cols, weights, quant, in, pixels, in_stride, out, 0);
}

#endif /* DARB_MM_DSP */

#if defined(DARB_MM_MVE)

/* v = bias4 + (w0 . x, w1 . x, w2 . x, w3 . x) over n columns: sixteen
 * columns per step in a tail-predicated low-overhead loop (the last step's
 * lanes past n neither load nor add). VMLADAVA adds into even registers
 * ("Te"); four single-lane VMOVs put the sums into the vector. */
#define DARB_MM_MVE_DOT4(v, bias4, w0, w1, w2, w3, x, n)                                               \
    do {                                                                                             \
        int32_t a0_, a1_, a2_, a3_;                                                                  \
        __asm__ volatile("ldrd        %[a0], %[a1], [%[b]]\n\t"                                      \
                         "ldrd        %[a2], %[a3], [%[b], #8]\n\t"                                  \
                         "wlstp.8     lr, %[cnt], 2f\n\t"                                            \
                         "1:\n\t"                                                                    \
                         "vldrb.8     q0, [%[px]], #16\n\t"                                          \
                         "vldrb.8     q1, [%[p0]], #16\n\t"                                          \
                         "vmladava.s8 %[a0], q1, q0\n\t"                                             \
                         "vldrb.8     q1, [%[p1]], #16\n\t"                                          \
                         "vmladava.s8 %[a1], q1, q0\n\t"                                             \
                         "vldrb.8     q1, [%[p2]], #16\n\t"                                          \
                         "vmladava.s8 %[a2], q1, q0\n\t"                                             \
                         "vldrb.8     q1, [%[p3]], #16\n\t"                                          \
                         "vmladava.s8 %[a3], q1, q0\n\t"                                             \
                         "letp        lr, 1b\n\t"                                                    \
                         "2:\n\t"                                                                    \
                         "vmov.32     %q[v][0], %[a0]\n\t"                                     \
                         "vmov.32     %q[v][1], %[a1]\n\t"                                     \
                         "vmov.32     %q[v][2], %[a2]\n\t"                                     \
                         "vmov.32     %q[v][3], %[a3]\n\t"                                     \
                         : [v] "=&w"(v), [a0] "=&Te"(a0_), [a1] "=&Te"(a1_), [a2] "=&Te"(a2_),           \
                           [a3] "=&Te"(a3_), [p0] "+&r"(w0), [p1] "+&r"(w1), [p2] "+&r"(w2), [p3] "+&r"(w3), \
                           [px] "+&r"(x)                                                             \
                         : [cnt] "r"(n), [b] "r"(bias4)                                              \
                         : "q0", "q1", "lr", "memory");                                              \
    } while (0)

static void darb_mm_mve(uint32_t rows, uint32_t cols, const int8_t *weights, const darb_quant_s8 *quant,
                        const int8_t *in, uint32_t pixels, uint32_t in_stride, int8_t *restrict out)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t act_min = vdupq_n_s32(quant->act_min);
    const int32x4_t act_max = vdupq_n_s32(quant->act_max);
    const int32_t output_offset = quant->output_offset;
    const int8_t *lut = quant->lut;
    uint32_t r;
    for (r = 0; r < rows; r += 4u) {
        /* the last group may hold fewer than four rows: the missing ones
         * repeat row r (their sums are computed and not stored) */
        const uint32_t n_rows = rows - r < 4u ? rows - r : 4u;
        const mve_pred16_t rp = vctp32q(n_rows);
        const int8_t *w = weights + r * cols;
        const uint32_t d1 = n_rows > 1u ? cols : 0u;
        const uint32_t d2 = n_rows > 2u ? 2u * cols : 0u;
        const uint32_t d3 = n_rows > 3u ? 3u * cols : 0u;
        const int32x4_t multiplier = quant->scale_mask != 0u ? vldrwq_z_s32(quant->multiplier + r, rp)
                                                             : vdupq_n_s32(quant->multiplier[0]);
        const int32x4_t shift = quant->scale_mask != 0u ? vldrbq_z_s32(quant->shift + r, rp)
                                                        : vdupq_n_s32(quant->shift[0]);
        const int32x4_t left = vmaxq_s32(shift, zero);
        const int32x4_t neg_right = vminq_s32(shift, zero);    /* -right */
        int32_t bias4[4];
        const int8_t *x = in;
        int8_t *o = out + r;
        uint32_t p;
        vstrwq_s32(bias4, vldrwq_z_s32(quant->bias + r, rp));
        for (p = pixels; p != 0u; --p, x += in_stride, o += rows) {
            const int8_t *w0 = w;
            const int8_t *w1 = w + d1;
            const int8_t *w2 = w + d2;
            const int8_t *w3 = w + d3;
            const int8_t *xp = x;
            int32x4_t v;
            DARB_MM_MVE_DOT4(v, bias4, w0, w1, w2, w3, xp, cols);
            v = vqrdmulhq_s32(vshlq_s32(v, left), multiplier);
            /* rounding half away from zero: where the lane shifts right
             * (neg_right < 0), a negative value takes 1 off before the
             * rounding shift, which rounds half up (never below INT32_MIN:
             * |v| < 2^31 - 1) */
            v = vrshlq_s32(vaddq_s32(v, vshrq_n_s32(vandq_s32(v, neg_right), 31)), neg_right);
            v = vaddq_n_s32(v, output_offset);
            v = vminq_s32(vmaxq_s32(v, act_min), act_max);
            if (lut != 0) {
                v = vldrbq_gather_offset_s32(lut, vreinterpretq_u32_s32(vaddq_n_s32(v, 128)));
            }
            if (n_rows == 4u) {
                vstrbq_s32(o, v);
            } else {
                vstrbq_p_s32(o, v, rp);
            }
        }
    }
}

#endif /* DARB_MM_MVE */

#if !defined(DARB_MM_DSP) && !defined(DARB_MM_MVE) && !defined(DARB_COMPACT)

/* s[0..3] += w0 . a, w0 . b, w1 . a, w1 . b over n columns: a function of
 * its own, so that the loop gets the registers (gcc spills them otherwise). */
static DARB_NOINLINE void darb_mm_dot2x2(const int8_t *w0, const int8_t *w1, const int8_t *a, const int8_t *b,
                                         uint32_t n, int32_t *s)
{
    int32_t s00 = s[0];
    int32_t s01 = s[1];
    int32_t s10 = s[2];
    int32_t s11 = s[3];
    uint32_t j;
    for (j = 0; j < n; ++j) {
        const int32_t u = w0[j];
        const int32_t v = w1[j];
        const int32_t xa = a[j];
        const int32_t xb = b[j];
        s00 += u * xa;
        s01 += u * xb;
        s10 += v * xa;
        s11 += v * xb;
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* Portable C (Cortex-M0+, M3, the host): two rows times two pixels per
 * column, so that each loaded weight and input serves two products. */
static void darb_mm_plain(uint32_t rows, uint32_t cols, const int8_t *weights, const darb_quant_s8 *quant,
                          const int8_t *in, uint32_t pixels, uint32_t in_stride, int8_t *restrict out)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const int8_t *w = weights;
    uint32_t r;
    uint32_t p;
    for (r = 0; r + 2u <= rows; r += 2u, w += 2u * cols) {
        const darb_mm_row q0 = darb_mm_row_of(quant, r);
        const darb_mm_row q1 = darb_mm_row_of(quant, r + 1u);
        const int32_t b0 = quant->bias[r];
        const int32_t b1 = quant->bias[r + 1u];
        const int8_t *w1 = w + cols;
        const int8_t *x = in;
        int8_t *o = out + r;
        for (p = 0; p + 2u <= pixels; p += 2u, x += 2u * in_stride, o += 2u * rows) {
            int32_t s[4];
            s[0] = b0;
            s[1] = b0;
            s[2] = b1;
            s[3] = b1;
            darb_mm_dot2x2(w, w1, x, x + in_stride, cols, s);
            o[0] = darb_mm_out(s[0], &q0, &post);
            o[1] = darb_mm_out(s[2], &q1, &post);
            o[rows] = darb_mm_out(s[1], &q0, &post);
            o[rows + 1u] = darb_mm_out(s[3], &q1, &post);
        }
        if (p < pixels) {
            int32_t s0 = b0;
            int32_t s1 = b1;
            uint32_t j;
            for (j = 0; j < cols; ++j) {
                const int32_t a = x[j];
                s0 += (int32_t)w[j] * a;
                s1 += (int32_t)w1[j] * a;
            }
            o[0] = darb_mm_out(s0, &q0, &post);
            o[1] = darb_mm_out(s1, &q1, &post);
        }
    }
    if (r < rows) {
        const darb_mm_row q = darb_mm_row_of(quant, r);
        const int32_t b0 = quant->bias[r];
        const int8_t *x = in;
        int8_t *o = out + r;
        for (p = pixels; p != 0u; --p, x += in_stride, o += rows) {
            *o = darb_mm_out(darb_mm_dot_s8(w, x, cols, b0), &q, &post);
        }
    }
}

#endif

void darb_mm_s8(const darb_dense_shape *shape, const int8_t *weights, const darb_quant_s8 *quant,
                const int8_t *in, uint32_t pixels, uint32_t in_stride, int8_t *out)
{
    const uint32_t rows = shape->rows;
    const uint32_t cols = shape->cols;
#if defined(DARB_MM_DSP)
    darb_mm_dsp(rows, cols, weights, quant, in, pixels, in_stride, out);
#elif defined(DARB_MM_MVE)
    darb_mm_mve(rows, cols, weights, quant, in, pixels, in_stride, out);
#elif defined(DARB_COMPACT)
    uint32_t p;
    for (p = 0; p < pixels; ++p) {
        const int8_t *x = in + p * in_stride;
        int8_t *o = out + p * rows;
        const int8_t *w = weights;
        uint32_t r;
        for (r = 0; r < rows; ++r, w += cols) {
            o[r] = darb_output_s8_fast(darb_mm_dot_s8(w, x, cols, quant->bias[r]), r, quant);
        }
    }
#else
    darb_mm_plain(rows, cols, weights, quant, in, pixels, in_stride, out);
#endif
}
