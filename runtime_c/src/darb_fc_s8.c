/*
 * darb_fc_s8.c - fully connected layer, DARB packed weights, int8 (int32 accumulator).
 *
 * Rows are visited class by class (all rows of one block size b together), so
 * the inner loops run with a constant b and offset width: one kept weight per
 * block, at column block_start + offset. The rows' sums go into a stack array
 * of DARB_FC_BATCH rows, across classes; each full array (and the last) then
 * takes the output stage (bias, requantization, zero point, clamp, table) in
 * one loop whose per-call constants stay in registers. Its integers are those
 * of darb_output_s8_fast in fewer steps (darb_mm_row_of / darb_mm_out, proof
 * in darb_internal.h). The products are added in other orders than the
 * reference's (the bias last, vector lanes together); the generator bounds
 * every partial sum of a layer whatever the order, so the sums are the same.
 *
 * Cortex-M4, M7, M33 and the portable path (M0+, M3, host): blocks of 2 to
 * 512 columns (a power of two, so 1 to 9 offset bits) have their own loops in
 * which b is a compile-time constant: the offsets of up to 25 bits' worth of
 * consecutive blocks are taken from one 32-bit load at any bit position (4
 * bytes from the byte holding the first offset, shifted; the generator pads
 * the offsets with 3 bytes so that the load stays inside the array), and those
 * multiply-adds are unrolled. On the DSP cores four blocks are one asm step (a
 * word of four weights widened by SXTB16, four SMLABB / SMLATB); classes whose
 * rows are whole bytes of offsets run as asm row loops, with offsets of 1, 2,
 * 4 and 8 bits spread to bytes so that UXTAB forms each input's address (about
 * 4 instructions per kept weight); the output stage of a per-tensor layer is
 * one SMLAL per row (and SSAT under the whole int8 clamp). Offsets are
 * little-endian bit streams, so the 32-bit load assumes a little-endian core
 * (every Cortex-M darbgen targets).
 *
 * Cortex-M55 (MVE): 8-bit lanes, 16 blocks per vector. Each lane's packed
 * offset is gathered byte by byte from the offsets, shifted by its bit and
 * merged with its block's position (VSLI); the inputs are gathered at those
 * 8-bit offsets and the weights loaded. Rows of 1, 2, 4, 8 or 16 blocks within
 * 256 columns go 16 / nblocks rows per vector (the products summed per row by
 * VMLADAV, or widened and added lane-wise), rows of 32 or 64 small blocks and
 * longer rows of whole bytes of offsets 16 blocks per step (VMLADAVA), all in
 * asm loops; other rows of blocks of up to 32 columns 16 (8) blocks per step
 * in C; wider blocks, rows of few blocks and other block sizes four rows at a
 * time, one block of each per step (32-bit lanes, per-lane gathers of
 * offsets, inputs and weights). The output stage is four rows per vector,
 * stored by scatter. Dense rows (b = 1) are four rows per tail-predicated
 * loop. Without optimisation (gcc -O0) the asm loops give way to C ones.
 *
 * Other block sizes take the general loop with the bit reader. The
 * specialised loops cost about 9 to 12 KB of code; compile with -DDARB_COMPACT
 * to keep only the general loop with darb_output_s8_fast per row (about 0.8
 * KB) where flash matters more than speed.
 */
#include "darb.h"
#include "darb_internal.h"

#ifndef DARB_COMPACT

/* Rows per output batch: their sums wait in a stack array of 4 *
 * (DARB_FC_BATCH + DARB_FC_ROOM) bytes. With MVE a class is cut into batches
 * at multiples of 16 rows (where darb_fc_s8_flat's vectors start) and a
 * vector store may write 15 rows past the batch. */
#if defined(DARB_HAVE_MVE)
#ifndef DARB_FC_BATCH
#define DARB_FC_BATCH 64u
#endif
#define DARB_FC_SPLIT 16u
#define DARB_FC_ROOM 16u
#else
#ifndef DARB_FC_BATCH
#define DARB_FC_BATCH 32u
#endif
#define DARB_FC_SPLIT 1u
#define DARB_FC_ROOM 0u
#endif
#if DARB_FC_BATCH < 32u || DARB_FC_BATCH % 16u != 0u
#error "darb_fc_s8: DARB_FC_BATCH must be a multiple of 16, at least 32"
#endif

/* (the DSP steps load four weights from any address) */
#if defined(DARB_HAVE_DSP) && !defined(DARB_HAVE_MVE) && defined(__GNUC__) && defined(__ARM_FEATURE_UNALIGNED)
#define DARB_FC_DSP 1
#if defined(__OPTIMIZE__)
/* the row loops in asm (up to 12 registers: gcc -O0 cannot give them) */
#define DARB_FC_DSP_ROWS 1
#endif
#endif
#if defined(DARB_HAVE_MVE) && defined(__GNUC__) && defined(__OPTIMIZE__)
/* the MVE loops in asm (without optimisation gcc cannot give them their registers) */
#define DARB_FC_MVE_ASM 1
#endif

/* One class, and where its next row starts. */
typedef struct {
    const int8_t *w;        /* the next row's first weight */
    const uint8_t *src;     /* the class's offsets */
    uint32_t pos;           /* the next row's first offset bit in src */
    uint32_t block;
    uint32_t bits;          /* offset bits, ceil(log2 block) */
    uint32_t nblocks;       /* blocks per row, ceil(cols / block) */
    const int8_t *in;
    darb_bit_reader reader; /* the general loop's */
} darb_fc_class;

/* The sums of the class's next n_rows rows into acc[0 .. n_rows). */
typedef void (*darb_fc_kernel)(darb_fc_class *cl, uint32_t n_rows, int32_t *acc);

/* ---- output stage: out[rows[i]] from the sums acc[i] (bias not added yet) -- */

#if defined(DARB_HAVE_MVE)
/* Four rows per vector: darb_mm_out's integers with VQRDMULH (the doubling
 * high multiply) and a rounding shift that takes 1 off a negative value
 * first, as darb_mm_s8's MVE output stage; rows' bias, multiplier and shift
 * gathered by row, the bytes scattered to their rows. Inlined: its vector
 * constants cost less than a call's saving of q4-q7. */
static inline __attribute__((always_inline)) void darb_fc_s8_outputs(const int32_t *acc, const uint16_t *rows,
                                                                    uint32_t n, const darb_quant_s8 *quant,
                                                                    int8_t *out)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t act_min = vdupq_n_s32(quant->act_min);
    const int32x4_t act_max = vdupq_n_s32(quant->act_max);
    const int32_t output_offset = quant->output_offset;
    const int32_t *bias = quant->bias;
    const int8_t *lut = quant->lut;
    const uint32_t scale_mask = quant->scale_mask;
    uint32_t i = 0;
    if (scale_mask == 0u && lut == 0 && quant->shift[0] < 0) {
        /* one multiplier and right shift for all rows, no table: scalar operands */
        const int32_t m = quant->multiplier[0];
        const int32_t neg_right = quant->shift[0];
        for (; i + 4u <= n; i += 4u) {
            const uint32x4_t r = vldrhq_u32(rows + i);
            int32x4_t v = vaddq_s32(vld1q_s32(acc + i), vldrwq_gather_shifted_offset_s32(bias, r));
            v = vqrdmulhq_n_s32(v, m);
            v = vrshlq_n_s32(vaddq_s32(v, vshrq_n_s32(v, 31)), neg_right);
            v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, output_offset), act_min), act_max);
            vstrbq_scatter_offset_s32(out, r, v);
        }
    }
    for (; i < n; i += 4u) {
        const mve_pred16_t p = vctp32q(n - i);
        const uint32x4_t r = vldrhq_z_u32(rows + i, p);
        const uint32x4_t s = vandq_u32(r, vdupq_n_u32(scale_mask));
        const int32x4_t shift = vldrbq_gather_offset_z_s32(quant->shift, s, p);
        const int32x4_t multiplier = vldrwq_gather_shifted_offset_z_s32(quant->multiplier, s, p);
        const int32x4_t left = vmaxq_s32(shift, zero);
        const int32x4_t neg_right = vminq_s32(shift, zero); /* -right */
        int32x4_t v = vaddq_s32(vldrwq_z_s32(acc + i, p), vldrwq_gather_shifted_offset_z_s32(bias, r, p));
        v = vqrdmulhq_s32(vshlq_s32(v, left), multiplier);
        /* rounding half away from zero: where the lane shifts right
         * (neg_right < 0), a negative value takes 1 off before the rounding
         * shift, which rounds half up */
        v = vrshlq_s32(vaddq_s32(v, vshrq_n_s32(vandq_s32(v, neg_right), 31)), neg_right);
        v = vaddq_n_s32(v, output_offset);
        v = vminq_s32(vmaxq_s32(v, act_min), act_max);
        if (lut != 0) {
            v = vldrbq_gather_offset_z_s32(lut, vreinterpretq_u32_s32(vaddq_n_s32(v, 128)), p);
        }
        vstrbq_scatter_offset_p_s32(out, r, v, p);
    }
}
#else /* scalar cores */
#ifdef DARB_FC_DSP
/* darb_mm_out for a row that shifts right by right >= 2: k = 2^30 + 2^(30 +
 * right) has low word 2^30 and high word 2^(right - 2), so k - (x < 0) *
 * 2^31 is low word 2^30 | (x's sign bit) and high word 2^(right - 2) + (x
 * >> 31); one SMLAL adds x * m, then the high word shifts by right - 1. */
static inline int32_t darb_fc_s8_requant(int32_t x, int32_t m, int32_t k_hi, uint32_t r1)
{
    uint32_t lo = ((uint32_t)x & 0x80000000u) | 0x40000000u;
    int32_t hi = k_hi + (x >> 31);
    __asm__("smlal %[lo], %[hi], %[x], %[m]" : [lo] "+r"(lo), [hi] "+r"(hi) : [x] "r"(x), [m] "r"(m));
    return hi >> r1;
}

static inline int32_t darb_fc_s8_ssat8(int32_t v)
{
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}
#endif

/* One row at a time: the rows' shared requantization constants once per
 * batch, the sum, its bias and one multiply-accumulate per row. */
static void darb_fc_s8_outputs(const int32_t *acc, const uint16_t *rows, uint32_t n, const darb_quant_s8 *quant,
                               int8_t *out)
{
    const darb_mm_post post = darb_mm_post_of(quant);
    const int32_t *bias = quant->bias;
    uint32_t i;
    if (quant->scale_mask == 0u && post.lut == 0) {
        const darb_mm_row q = darb_mm_row_of(quant, 0u);
#ifdef DARB_FC_DSP
        if (q.right >= 2u) {
            const uint32_t r1 = q.right - 1u;
            if (post.act_min == -128 && post.act_max == 127) {
                for (i = 0; i < n; ++i) {
                    const uint32_t row = rows[i];
                    const int32_t v = darb_fc_s8_requant(acc[i] + bias[row], q.multiplier, q.k_hi, r1);
                    out[row] = (int8_t)darb_fc_s8_ssat8(v + post.output_offset);
                }
                return;
            }
            for (i = 0; i < n; ++i) {
                const uint32_t row = rows[i];
                int32_t v = darb_fc_s8_requant(acc[i] + bias[row], q.multiplier, q.k_hi, r1) + post.output_offset;
                v = v < post.act_min ? post.act_min : v;
                v = v > post.act_max ? post.act_max : v;
                out[row] = (int8_t)v;
            }
            return;
        }
#else
        if (q.right != 0u) {
            const uint32_t r1 = q.right - 1u;
            const int64_t k = (int64_t)(((uint64_t)(uint32_t)q.k_hi << 32) | q.k_lo);
            for (i = 0; i < n; ++i) {
                const uint32_t row = rows[i];
                const int32_t x = acc[i] + bias[row];
                const int64_t t = k - (int64_t)((uint32_t)x & 0x80000000u) + (int64_t)x * q.multiplier;
                int32_t v = ((int32_t)(t >> 32) >> r1) + post.output_offset;
                v = v < post.act_min ? post.act_min : v;
                v = v > post.act_max ? post.act_max : v;
                out[row] = (int8_t)v;
            }
            return;
        }
#endif
    }
    for (i = 0; i < n; ++i) {
        const uint32_t row = rows[i];
        const darb_mm_row q = darb_mm_row_of(quant, row);
        out[row] = darb_mm_out(acc[i] + bias[row], &q, &post);
    }
}
#endif


/* ---- the rows' sums ---------------------------------------------------------- */

#if defined(DARB_HAVE_MVE)

#ifdef DARB_FC_MVE_ASM
/* Dense rows (b = 1): four rows at a time, 16 columns per step (one load of
 * the inputs, one of each row's weights, four VMLADAVA) in a tail-predicated
 * low-overhead loop; then the rows left one by one. */
static void darb_fc_s8_dense(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)
{
    const uint32_t cols = cl->nblocks;
    const int8_t *in = cl->in;
    const int8_t *w = cl->w;
    uint32_t i;
    cl->w += n_rows * cols;
    for (i = 0; i + 4u <= n_rows; i += 4u) {
        const int8_t *w0 = w;
        const int8_t *w1 = w + cols;
        const int8_t *w2 = w + 2u * cols;
        const int8_t *w3 = w + 3u * cols;
        const int8_t *x = in;
        int32_t a0, a1, a2, a3;
        __asm__ volatile("movs        %[a0], #0\n\t"
                         "movs        %[a1], #0\n\t"
                         "movs        %[a2], #0\n\t"
                         "movs        %[a3], #0\n\t"
                         "dlstp.8     lr, %[n]\n\t"
                         "1:\n\t"
                         "vldrb.8     q0, [%[x]], #16\n\t"
                         "vldrb.8     q1, [%[w0]], #16\n\t"
                         "vmladava.s8 %[a0], q1, q0\n\t"
                         "vldrb.8     q1, [%[w1]], #16\n\t"
                         "vmladava.s8 %[a1], q1, q0\n\t"
                         "vldrb.8     q1, [%[w2]], #16\n\t"
                         "vmladava.s8 %[a2], q1, q0\n\t"
                         "vldrb.8     q1, [%[w3]], #16\n\t"
                         "vmladava.s8 %[a3], q1, q0\n\t"
                         "letp        lr, 1b"
                         : [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3), [w0] "+&r"(w0),
                           [w1] "+&r"(w1), [w2] "+&r"(w2), [w3] "+&r"(w3), [x] "+&r"(x)
                         : [n] "r"(cols)
                         : "q0", "q1", "lr", "memory");
        acc[i] = a0;
        acc[i + 1u] = a1;
        acc[i + 2u] = a2;
        acc[i + 3u] = a3;
        w += 4u * cols; /* (the loads step by 16 columns) */
    }
    for (; i < n_rows; ++i, w += cols) {
        const int8_t *w0 = w;
        const int8_t *x = in;
        int32_t a0;
        __asm__ volatile("movs        %[a0], #0\n\t"
                         "dlstp.8     lr, %[n]\n\t"
                         "1:\n\t"
                         "vldrb.8     q0, [%[x]], #16\n\t"
                         "vldrb.8     q1, [%[w0]], #16\n\t"
                         "vmladava.s8 %[a0], q1, q0\n\t"
                         "letp        lr, 1b"
                         : [a0] "=&Te"(a0), [w0] "+&r"(w0), [x] "+&r"(x)
                         : [n] "r"(cols)
                         : "q0", "q1", "lr", "memory");
        acc[i] = a0;
    }
}
#else
/* Dense rows (b = 1): 16 columns per VMLADAVA, the last step predicated. */
static void darb_fc_s8_dense(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)
{
    const uint32_t cols = cl->nblocks;
    const int8_t *in = cl->in;
    const int8_t *w = cl->w;
    uint32_t i;
    for (i = 0; i < n_rows; ++i, w += cols) {
        int32_t s = 0;
        uint32_t j;
        for (j = 0; j < cols; j += 16u) {
            const mve_pred16_t p = vctp8q(cols - j);
            s = vmladavaq_s8(s, vldrbq_z_s8(in + j, p), vldrbq_z_s8(w + j, p));
        }
        acc[i] = s;
    }
    cl->w = w;
}
#endif

/* Any block of 2 to 512 columns (offsets of 1 to 9 bits): four rows at a
 * time, lane l one row, one block of each row per step. The lanes' offsets
 * are 16 bits gathered byte by byte from the rows' bit positions, shifted
 * lane by lane and masked; then the inputs and the weights are gathered. */
static void darb_fc_s8_rows(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)
{
    const uint32_t block = cl->block;
    const uint32_t bits = cl->bits;
    const uint32_t nblocks = cl->nblocks;
    const uint8_t *src = cl->src;
    const int8_t *in = cl->in;
    const uint32x4_t lane = vidupq_n_u32(0u, 1);
    const uint32x4_t w_lanes = vmulq_n_u32(lane, nblocks);            /* each row's first weight */
    const uint32x4_t pos_lanes = vmulq_n_u32(lane, nblocks * bits);   /* and first offset bit */
    const uint32x4_t mask = vdupq_n_u32((1u << bits) - 1u);
    const int8_t *w = cl->w;
    uint32_t pos = cl->pos;
    uint32_t i;
    for (i = 0; i < n_rows; i += 4u) {
        const uint32_t n = n_rows - i < 4u ? n_rows - i : 4u;
        uint32x4_t at = vaddq_n_u32(pos_lanes, pos);
#ifdef DARB_FC_MVE_ASM
        /* per step 17 instructions: the offsets' bytes (VSHR, VSHL and VSUB
         * give each lane's byte and -bit), two gathers, VSLI, VSHL, VAND,
         * the inputs' and weights' gathers, VMUL, VADD, and the steps */
        int32x4_t s;
        const int8_t *x = in;
        const int8_t *wk = w;
        __asm__ volatile("vctp.32     %[n]\n\t"
                         "vmov.i32    %q[s], #0\n\t"
                         "dls         lr, %[nb]\n\t"
                         "1:\n\t"
                         "vshr.u32    q0, %q[at], #3\n\t"
                         "vshl.i32    q1, q0, #3\n\t"
                         "vsub.i32    q1, q1, %q[at]\n\t"
                         "vpstt\n\t"
                         "vldrbt.u32  q2, [%[src], q0]\n\t"
                         "vldrbt.u32  q3, [%[src1], q0]\n\t"
                         "vsli.32     q2, q3, #8\n\t"
                         "vshl.u32    q2, q2, q1\n\t"
                         "vand        q2, q2, %q[mask]\n\t"
                         "vpstt\n\t"
                         "vldrbt.s32  q3, [%[x], q2]\n\t"
                         "vldrbt.s32  q1, [%[wk], %q[wl]]\n\t"
                         "vmul.i32    q3, q3, q1\n\t"
                         "vadd.i32    %q[s], %q[s], q3\n\t"
                         "vadd.i32    %q[at], %q[at], %[bits]\n\t"
                         "add         %[x], %[x], %[block]\n\t"
                         "adds        %[wk], %[wk], #1\n\t"
                         "le          lr, 1b\n\t"
                         "vpst\n\t"
                         "vstrwt.32   %q[s], [%[acc]]"
                         : [s] "=&w"(s), [at] "+&w"(at), [x] "+&r"(x), [wk] "+&r"(wk)
                         : [n] "r"(n), [nb] "r"(nblocks), [src] "r"(src), [src1] "r"(src + 1),
                           [bits] "r"(bits), [block] "r"(block), [mask] "w"(mask), [wl] "w"(w_lanes),
                           [acc] "r"(acc + i)
                         : "q0", "q1", "q2", "q3", "lr", "p0", "memory");
        (void)s;
#else
        const mve_pred16_t p = vctp32q(n);
        const uint32x4_t seven = vdupq_n_u32(7u);
        int32x4_t s = vdupq_n_s32(0);
        const int8_t *x = in;
        const int8_t *wk = w;
        uint32_t k;
        for (k = nblocks; k != 0u; --k) {
            const uint32x4_t byte = vshrq_n_u32(at, 3);
            const int32x4_t right = vnegq_s32(vreinterpretq_s32_u32(vandq_u32(at, seven)));
            uint32x4_t o = vsliq_n_u32(vldrbq_gather_offset_z_u32(src, byte, p),
                                       vldrbq_gather_offset_z_u32(src + 1, byte, p), 8);
            o = vandq_u32(vshlq_u32(o, right), mask);
            s = vaddq_s32(s, vmulq_s32(vldrbq_gather_offset_z_s32(x, o, p),
                                       vldrbq_gather_offset_z_s32(wk, w_lanes, p)));
            at = vaddq_n_u32(at, bits);
            x += block;
            ++wk;
        }
        vstrwq_p_s32(acc + i, s, p);
#endif
        w += n * nblocks;
        pos += n * nblocks * bits;
    }
    cl->w = w;
    cl->pos = pos;
}

/* The lane constants of 16 consecutive offsets of BITS bits from bit PHASE
 * of a byte: lane l's first byte, its bit as a right shift (-bit) and the
 * left shift of the byte after it (8 - bit). */
#define DARB_FC_S8_LANES(BITS, PHASE)                                                                 \
    do {                                                                                              \
        const uint8x16_t at_ = vaddq_n_u8(vmulq_n_u8(vidupq_n_u8(0u, 1), (BITS)), (uint8_t)(PHASE));  \
        byte = vshrq_n_u8(at_, 3);                                                                    \
        right = vnegq_s8(vreinterpretq_s8_u8(vandq_u8(at_, vdupq_n_u8(7u))));                         \
        left = vaddq_n_s8(right, 8);                                                                  \
    } while (0)

/* Blocks of 1 << BITS columns (BITS 1 to 5), CHUNK (16, or 8 for BITS 5) of
 * a row's blocks per step, so that every input offset fits 8 bits, from any
 * bit position: lane k's offset starts at bit phase + k * BITS of the
 * chunk's first byte, gathered as one byte (two when it may cross a byte),
 * shifted right by its bit, then VSLI puts k above it (k * b + offset). The
 * shifts depend on the row's phase only: computed again when it changes. */
/* a row's offsets into q0 (asm): gathered, shifted by their bit (and the
 * bytes after, when offsets may cross a byte); _P: predicated by P0 */
#define DARB_FC_S8_ROW_OFF                                                                            \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
#define DARB_FC_S8_ROW_OFF_P                                                                          \
    "vpst\n\t"                                                                                        \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
#define DARB_FC_S8_ROW_OFF2                                                                           \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrb.u8    q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
#define DARB_FC_S8_ROW_OFF2_P                                                                         \
    "vpstt\n\t"                                                                                       \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrbt.u8   q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"

#ifdef DARB_FC_MVE_ASM
/* one row (s = its sum; b, x, w step past it): `m` steps of CHUNK blocks in a
 * low-overhead loop, then `t` blocks predicated; blocks of 32 columns (8
 * lanes) predicated throughout */
#define DARB_FC_S8_PHASED_ROW16(BITS, OFF, OFF_P)                                                     \
    __asm__ volatile("movs        %[s], #0\n\t"                                                       \
                     "wls         lr, %[m], 2f\n\t"                                                   \
                     "1:\n\t" OFF                                                                     \
                     "vsli.8      q0, %q[k], #" #BITS "\n\t"                                          \
                     "vldrb.u8    q1, [%[x], q0]\n\t"                                                 \
                     "vldrb.8     q2, [%[w]], #16\n\t"                                                \
                     "vmladava.s8 %[s], q1, q2\n\t"                                                   \
                     "adds        %[b], %[b], #(2 * " #BITS ")\n\t"                                   \
                     "add         %[x], %[x], #(16 << " #BITS ")\n\t"                                 \
                     "le          lr, 1b\n\t"                                                         \
                     "2:\n\t"                                                                         \
                     "cmp         %[t], #0\n\t"                                                       \
                     "beq         3f\n\t"                                                             \
                     "vctp.8      %[t]\n\t" OFF_P                                                     \
                     "vsli.8      q0, %q[k], #" #BITS "\n\t"                                          \
                     "vpstt\n\t"                                                                      \
                     "vldrbt.u8   q1, [%[x], q0]\n\t"                                                 \
                     "vldrbt.8    q2, [%[w]]\n\t"                                                     \
                     "vmladava.s8 %[s], q1, q2\n\t"                                                   \
                     "add         %[w], %[w], %[t]\n\t"                                               \
                     "3:"                                                                             \
                     : [s] "=&Te"(s), [b] "+&r"(b), [x] "+&r"(x), [w] "+&r"(w)                        \
                     : [m] "r"(m), [t] "r"(t), [k] "w"(lane), [byte] "w"(byte), [byte1] "w"(byte1),   \
                       [right] "w"(right), [left] "w"(left)                                           \
                     : "q0", "q1", "q2", "lr", "p0", "memory", "cc")
#define DARB_FC_S8_PHASED_ROW8(BITS, OFF, OFF_P)                                                      \
    __asm__ volatile("movs        %[s], #0\n\t"                                                       \
                     "vctp.8      %[eight]\n\t"                                                       \
                     "wls         lr, %[m], 2f\n\t"                                                   \
                     "1:\n\t" OFF_P                                                                   \
                     "vsli.8      q0, %q[k], #" #BITS "\n\t"                                          \
                     "vpstt\n\t"                                                                      \
                     "vldrbt.u8   q1, [%[x], q0]\n\t"                                                 \
                     "vldrbt.8    q2, [%[w]], #8\n\t"                                                 \
                     "vmladava.s8 %[s], q1, q2\n\t"                                                   \
                     "adds        %[b], %[b], #" #BITS "\n\t"                                         \
                     "add         %[x], %[x], #(8 << " #BITS ")\n\t"                                  \
                     "le          lr, 1b\n\t"                                                         \
                     "2:\n\t"                                                                         \
                     "cmp         %[t], #0\n\t"                                                       \
                     "beq         3f\n\t"                                                             \
                     "vctp.8      %[t]\n\t" OFF_P                                                     \
                     "vsli.8      q0, %q[k], #" #BITS "\n\t"                                          \
                     "vpstt\n\t"                                                                      \
                     "vldrbt.u8   q1, [%[x], q0]\n\t"                                                 \
                     "vldrbt.8    q2, [%[w]]\n\t"                                                     \
                     "vmladava.s8 %[s], q1, q2\n\t"                                                   \
                     "add         %[w], %[w], %[t]\n\t"                                               \
                     "3:"                                                                             \
                     : [s] "=&Te"(s), [b] "+&r"(b), [x] "+&r"(x), [w] "+&r"(w)                        \
                     : [m] "r"(m), [t] "r"(t), [eight] "r"(8u), [k] "w"(lane), [byte] "w"(byte),      \
                       [byte1] "w"(byte1), [right] "w"(right), [left] "w"(left)                       \
                     : "q0", "q1", "q2", "lr", "p0", "memory", "cc")
#define DARB_FC_S8_PHASED_ROW(BITS, CHUNK, OFF, OFF_P) DARB_FC_S8_PHASED_ROW##CHUNK(BITS, OFF, OFF_P)
#endif

#ifdef DARB_FC_MVE_ASM
#define DARB_FC_S8_PHASED_SUM(BITS, CHUNK, OFF, OFF_P)                                                \
    do {                                                                                              \
        const uint32_t m = nblocks / (CHUNK);                                                         \
        const uint32_t t = nblocks % (CHUNK);                                                         \
        DARB_FC_S8_PHASED_ROW(BITS, CHUNK, OFF, OFF_P);                                               \
    } while (0)
#else
#define DARB_FC_S8_PHASED_SUM(BITS, CHUNK, OFF, OFF_P)                                                \
    do {                                                                                              \
        uint32_t k;                                                                                   \
        s = 0;                                                                                        \
        for (k = nblocks; k >= (CHUNK); k -= (CHUNK)) {                                               \
            uint8x16_t o;                                                                             \
            if ((CHUNK) == 16u) {                                                                     \
                o = vshlq_u8(vldrbq_gather_offset_u8(b, byte), right);                                \
                if (8u % (BITS) != 0u) {                                                              \
                    o = vorrq_u8(o, vshlq_u8(vldrbq_gather_offset_u8(b + 1, byte), left));            \
                }                                                                                     \
                o = vsliq_n_u8(o, lane, (BITS));                                                      \
                s = vmladavaq_s8(s, vldrbq_gather_offset_s8(x, o), vldrbq_s8(w));                     \
            } else {                                                                                  \
                o = vshlq_u8(vldrbq_gather_offset_z_u8(b, byte, full), right);                        \
                o = vorrq_u8(o, vshlq_u8(vldrbq_gather_offset_z_u8(b + 1, byte, full), left));        \
                o = vsliq_n_u8(o, lane, (BITS));                                                      \
                s = vmladavaq_s8(s, vldrbq_gather_offset_z_s8(x, o, full), vldrbq_z_s8(w, full));     \
            }                                                                                         \
            w += (CHUNK);                                                                             \
            x += (CHUNK) << (BITS);                                                                   \
            b += (CHUNK) * (BITS) / 8u;                                                               \
        }                                                                                             \
        if (k != 0u) {                                                                                \
            const mve_pred16_t p = vctp8q(k);                                                         \
            uint8x16_t o = vshlq_u8(vldrbq_gather_offset_z_u8(b, byte, p), right);                    \
            if (8u % (BITS) != 0u) {                                                                  \
                o = vorrq_u8(o, vshlq_u8(vldrbq_gather_offset_z_u8(b + 1, byte, p), left));           \
            }                                                                                         \
            o = vsliq_n_u8(o, lane, (BITS));                                                          \
            s = vmladavaq_s8(s, vldrbq_gather_offset_z_s8(x, o, p), vldrbq_z_s8(w, p));               \
            w += k;                                                                                   \
        }                                                                                             \
    } while (0)
#endif

#define DARB_FC_S8_PHASED(BITS, CHUNK, OFF, OFF_P)                                                    \
    static void darb_fc_s8_phased_b##BITS(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)           \
    {                                                                                                 \
        const uint32_t nblocks = cl->nblocks;                                                         \
        const uint32_t row_bits = nblocks * (BITS);                                                   \
        const uint8_t *src = cl->src;                                                                 \
        const int8_t *in = cl->in;                                                                    \
        const uint8x16_t lane = vidupq_n_u8(0u, 1);                                                   \
        const mve_pred16_t full = vctp8q(CHUNK);                                                      \
        const int8_t *w = cl->w;                                                                      \
        uint32_t pos = cl->pos;                                                                       \
        uint32_t phase = 8u; /* none yet */                                                           \
        uint8x16_t byte = lane;                                                                       \
        int8x16_t right = vreinterpretq_s8_u8(lane);                                                  \
        int8x16_t left = right;                                                                       \
        uint8x16_t byte1 = lane;                                                                      \
        uint32_t i;                                                                                   \
        (void)byte1;                                                                                  \
        (void)full;                                                                                   \
        for (i = 0; i < n_rows; ++i) {                                                                \
            const uint8_t *b = src + (pos >> 3);                                                      \
            const int8_t *x = in;                                                                     \
            int32_t s;                                                                                \
            if ((pos & 7u) != phase) {                                                                \
                phase = pos & 7u;                                                                     \
                DARB_FC_S8_LANES(BITS, phase);                                                        \
                byte1 = vaddq_n_u8(byte, 1);                                                          \
            }                                                                                         \
            DARB_FC_S8_PHASED_SUM(BITS, CHUNK, OFF, OFF_P);                                           \
            acc[i] = s;                                                                               \
            pos += row_bits;                                                                          \
        }                                                                                             \
        cl->w = w;                                                                                    \
        cl->pos = pos;                                                                                \
    }

DARB_FC_S8_PHASED(1, 16, DARB_FC_S8_ROW_OFF, DARB_FC_S8_ROW_OFF_P)
DARB_FC_S8_PHASED(2, 16, DARB_FC_S8_ROW_OFF, DARB_FC_S8_ROW_OFF_P)
DARB_FC_S8_PHASED(3, 16, DARB_FC_S8_ROW_OFF2, DARB_FC_S8_ROW_OFF2_P)
DARB_FC_S8_PHASED(4, 16, DARB_FC_S8_ROW_OFF, DARB_FC_S8_ROW_OFF_P)
DARB_FC_S8_PHASED(5, 8, DARB_FC_S8_ROW_OFF2_P, DARB_FC_S8_ROW_OFF2_P)

static const darb_fc_kernel darb_fc_s8_phased[6] = {
    0, darb_fc_s8_phased_b1, darb_fc_s8_phased_b2, darb_fc_s8_phased_b3, darb_fc_s8_phased_b4,
    darb_fc_s8_phased_b5,
};

#ifdef DARB_FC_MVE_ASM
/* Classes whose rows are 1, 2, 4, 8 or 16 blocks of 1 << BITS columns in at
 * most 256 columns, or 32 blocks of up to 8 or 64 of up to 4 columns: the
 * class's blocks 16 at a time as they lie in the values and offsets (each
 * vector's offsets are 2 * BITS whole bytes, so every lane's byte and bit
 * are constants). Lane l is block k = l % nblocks of its row: its input
 * offset k * b + offset fits 8 bits. The 16 products are summed per row:
 * VMLADAV for one row (or VMLADAVA over a row's 2 or 4 vectors, inputs from
 * in, in + 16 b, ...); for two rows VMLADAV of all lanes and of lanes 0 to 7;
 * for 4, 8 or 16 rows the products as int16 (VMULLB / VMULLT, even and odd
 * lanes), widened to int32 (VMOVLB / VMOVLT) and added (4 rows) or
 * interleaved in row order (VST2, VST4). The last vector is predicated. In
 * asm (gcc's own code spilled the lane constants); acc has room for 15 rows
 * more than n_rows. */
#define DARB_FC_S8_FLAT_OFF                                                                           \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
#define DARB_FC_S8_FLAT_OFF_P                                                                         \
    "vpst\n\t"                                                                                        \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
/* offsets that may cross a byte: the byte after too */
#define DARB_FC_S8_FLAT_OFF2                                                                          \
    "adds        %[b1], %[b], #1\n\t"                                                                 \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrb.u8    q2, [%[b1], %q[byte]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
#define DARB_FC_S8_FLAT_OFF2_P                                                                        \
    "adds        %[b1], %[b], #1\n\t"                                                                 \
    "vpstt\n\t"                                                                                       \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrbt.u8   q2, [%[b1], %q[byte]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
/* the same with the bytes after in a vector of their own (byte1: the loops
 * that need only q0 to q2) */
#define DARB_FC_S8_FLAT_OFF2Q                                                                         \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrb.u8    q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
#define DARB_FC_S8_FLAT_OFF2Q_P                                                                       \
    "vpstt\n\t"                                                                                       \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrbt.u8   q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
/* the inputs (q1) and weights (q2) of the vector (blocks of 256: one per
 * row, k = 0, no VSLI) */
#define DARB_FC_S8_FLAT_SLI(BITS) "vsli.8      q0, %q[k], #" #BITS "\n\t"
#define DARB_FC_S8_FLAT_LOAD(BITS, SLI)                                                               \
    SLI                                                                                               \
    "vldrb.u8    q1, [%[in], q0]\n\t"                                                                 \
    "vldrb.8     q2, [%[w]], #16\n\t"                                                                 \
    "adds        %[b], %[b], #(2 * " #BITS ")\n\t"
#define DARB_FC_S8_FLAT_LOAD_P(SLI)                                                                   \
    SLI                                                                                               \
    "vpstt\n\t"                                                                                       \
    "vldrbt.u8   q1, [%[in], q0]\n\t"                                                                 \
    "vldrbt.8    q2, [%[w]]\n\t"
/* the sums of the 16 products per row, stored */
#define DARB_FC_S8_FLAT_SUM16                                                                         \
    "vmladav.s8  %[s0], q1, q2\n\t"                                                                   \
    "str         %[s0], [%[acc]], #4\n\t"
#define DARB_FC_S8_FLAT_SUM8 /* P0: lanes 0 to 7 */                                                   \
    "vmladav.s8  %[s1], q1, q2\n\t"                                                                   \
    "vpst\n\t"                                                                                        \
    "vmladavt.s8 %[s0], q1, q2\n\t"                                                                   \
    "subs        %[s1], %[s1], %[s0]\n\t"                                                             \
    "strd        %[s0], %[s1], [%[acc]], #8\n\t"
#define DARB_FC_S8_FLAT_MULL                                                                          \
    "vmullb.s8   q0, q1, q2\n\t"                                                                      \
    "vmullt.s8   q3, q1, q2\n\t"
#define DARB_FC_S8_FLAT_SUM4                                                                          \
    DARB_FC_S8_FLAT_MULL                                                                              \
    "vmovlb.s16  q1, q0\n\t"                                                                          \
    "vmovlt.s16  q2, q0\n\t"                                                                          \
    "vadd.i32    q1, q1, q2\n\t"                                                                      \
    "vmovlb.s16  q2, q3\n\t"                                                                          \
    "vmovlt.s16  q0, q3\n\t"                                                                          \
    "vadd.i32    q1, q1, q2\n\t"                                                                      \
    "vadd.i32    q1, q1, q0\n\t"                                                                      \
    "vstrw.32    q1, [%[acc]], #16\n\t"
#define DARB_FC_S8_FLAT_SUM2                                                                          \
    DARB_FC_S8_FLAT_MULL                                                                              \
    "vmovlb.s16  q1, q0\n\t"                                                                          \
    "vmovlb.s16  q2, q3\n\t"                                                                          \
    "vadd.i32    q1, q1, q2\n\t"                                                                      \
    "vmovlt.s16  q2, q0\n\t"                                                                          \
    "vmovlt.s16  q0, q3\n\t"                                                                          \
    "vadd.i32    q2, q2, q0\n\t"                                                                      \
    "vst20.32    {q1, q2}, [%[acc]]\n\t"                                                              \
    "vst21.32    {q1, q2}, [%[acc]]!\n\t"
#define DARB_FC_S8_FLAT_SUM1                                                                          \
    DARB_FC_S8_FLAT_MULL                                                                              \
    "vmovlb.s16  q1, q3\n\t"                                                                          \
    "vmovlt.s16  q2, q0\n\t"                                                                          \
    "vmovlb.s16  q0, q0\n\t"                                                                          \
    "vmovlt.s16  q3, q3\n\t"                                                                          \
    "vst40.32    {q0, q1, q2, q3}, [%[acc]]\n\t"                                                      \
    "vst41.32    {q0, q1, q2, q3}, [%[acc]]\n\t"                                                      \
    "vst42.32    {q0, q1, q2, q3}, [%[acc]]\n\t"                                                      \
    "vst43.32    {q0, q1, q2, q3}, [%[acc]]!\n\t"

/* the vectors: `full` in a low-overhead loop, then `tail` blocks predicated */
#define DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF, OFF_P, SUM, VREGS)                                        \
    __asm__ volatile("movs        %[b1], #8\n\t"                                                      \
                     "vctp.8      %[b1]\n\t"                                                          \
                     "wls         lr, %[full], 2f\n\t"                                                \
                     "1:\n\t" OFF DARB_FC_S8_FLAT_LOAD(BITS, SLI) SUM                                 \
                     "le          lr, 1b\n\t"                                                         \
                     "2:\n\t"                                                                         \
                     "cmp         %[tail], #0\n\t"                                                    \
                     "beq         3f\n\t"                                                             \
                     "vctp.8      %[tail]\n\t" OFF_P DARB_FC_S8_FLAT_LOAD_P(SLI)                      \
                     "movs        %[b1], #8\n\t"                                                      \
                     "vctp.8      %[b1]\n\t" SUM                                                      \
                     "3:"                                                                             \
                     : [s0] "=&Te"(s0), [s1] "=&Te"(s1), [b] "+&r"(b), [b1] "=&r"(b1), [w] "+&r"(w),  \
                       [acc] "+&r"(acc)                                                               \
                     : [in] "r"(in), [full] "r"(full), [tail] "r"(tail), [k] "w"(k), [byte] "w"(byte), \
                       [right] "w"(right), [left] "w"(left) VREGS)

/* the vector operands and clobbers: 4 lane constants and q0 to q3 (4 rows
 * or more per vector), or 5 and q0 to q2 */
#define DARB_FC_S8_FLAT_Q4 : "q0", "q1", "q2", "q3", "lr", "p0", "memory", "cc"
#define DARB_FC_S8_FLAT_Q3 , [byte1] "w"(byte1) : "q0", "q1", "q2", "lr", "p0", "memory", "cc"

/* rows of 2 or 4 vectors (32 or 64 blocks), one row per loop step */
#define DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, X, MLA)                                                  \
    OFF SLI                                                                                           \
    "vldrb.u8    q1, [%[" X "], q0]\n\t"                                                              \
    "vldrb.8     q2, [%[w]], #16\n\t"                                                                 \
    "adds        %[b], %[b], #(2 * " #BITS ")\n\t"                                                    \
    MLA "     %[s0], q1, q2\n\t"
#define DARB_FC_S8_FLAT_ROW2(BITS, SLI, OFF)                                                          \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in", "vmladav.s8 ")                                         \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in1", "vmladava.s8")                                        \
    "str         %[s0], [%[acc]], #4\n\t"
#define DARB_FC_S8_FLAT_ROW4(BITS, SLI, OFF)                                                          \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in", "vmladav.s8 ")                                         \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in1", "vmladava.s8")                                        \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in2", "vmladava.s8")                                        \
    DARB_FC_S8_FLAT_PART(BITS, SLI, OFF, "in3", "vmladava.s8")                                        \
    "str         %[s0], [%[acc]], #4\n\t"
#define DARB_FC_S8_FLAT_ROWS(BITS, ROW)                                                               \
    __asm__ volatile("wls         lr, %[n], 2f\n\t"                                                   \
                     "1:\n\t" ROW                                                                     \
                     "le          lr, 1b\n\t"                                                         \
                     "2:"                                                                             \
                     : [s0] "=&Te"(s0), [b] "+&r"(b), [b1] "=&r"(b1), [w] "+&r"(w), [acc] "+&r"(acc)  \
                     : [in] "r"(in), [in1] "r"((uintptr_t)in + (16u << (BITS))),                      \
                       [in2] "r"((uintptr_t)in + (32u << (BITS))), [in3] "r"((uintptr_t)in + (48u << (BITS))), \
                       [n] "r"(n_rows), [k] "w"(k), [byte] "w"(byte),                                 \
                       [right] "w"(right), [left] "w"(left), [byte1] "w"(byte1)                       \
                     : "q0", "q1", "q2", "lr", "p0", "memory", "cc")

#define DARB_FC_S8_FLAT(BITS, SLI, OFF, OFF_P, OFF3, OFF3_P)                                          \
    static void darb_fc_s8_flat_b##BITS(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)             \
    {                                                                                                 \
        const uint32_t nblocks = cl->nblocks;                                                         \
        const uint32_t total = n_rows * nblocks;                                                      \
        const uint32_t full = total / 16u;                                                            \
        const uint32_t tail = total % 16u;                                                            \
        const uint8x16_t k = vandq_u8(vidupq_n_u8(0u, 1), vdupq_n_u8((uint8_t)(nblocks - 1u)));       \
        const int8_t *in = cl->in;                                                                    \
        const uint8_t *b = cl->src + (cl->pos >> 3);                                                  \
        const uint8_t *b1;                                                                            \
        const int8_t *w = cl->w;                                                                      \
        int32_t s0, s1;                                                                               \
        uint8x16_t byte, byte1;                                                                       \
        int8x16_t right, left;                                                                        \
        DARB_FC_S8_LANES(BITS, 0u);                                                                   \
        byte1 = vaddq_n_u8(byte, 1);                                                                  \
        cl->w += total;                                                                               \
        cl->pos += total * (BITS);                                                                    \
        switch (nblocks) {                                                                            \
        case 64u:                                                                                     \
            if ((BITS) <= 2) {                                                                        \
                DARB_FC_S8_FLAT_ROWS(BITS, DARB_FC_S8_FLAT_ROW4(BITS, SLI, OFF3));                    \
            }                                                                                         \
            break;                                                                                    \
        case 32u:                                                                                     \
            if ((BITS) <= 3) {                                                                        \
                DARB_FC_S8_FLAT_ROWS(BITS, DARB_FC_S8_FLAT_ROW2(BITS, SLI, OFF3));                    \
            }                                                                                         \
            break;                                                                                    \
        case 16u:                                                                                     \
            if ((BITS) <= 4) {                                                                        \
                DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF3, OFF3_P, DARB_FC_S8_FLAT_SUM16, DARB_FC_S8_FLAT_Q3); \
            }                                                                                         \
            break;                                                                                    \
        case 8u:                                                                                      \
            if ((BITS) <= 5) {                                                                        \
                DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF3, OFF3_P, DARB_FC_S8_FLAT_SUM8, DARB_FC_S8_FLAT_Q3); \
            }                                                                                         \
            break;                                                                                    \
        case 4u:                                                                                      \
            if ((BITS) <= 6) {                                                                        \
                DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF, OFF_P, DARB_FC_S8_FLAT_SUM4, DARB_FC_S8_FLAT_Q4); \
            }                                                                                         \
            break;                                                                                    \
        case 2u:                                                                                      \
            if ((BITS) <= 7) {                                                                        \
                DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF, OFF_P, DARB_FC_S8_FLAT_SUM2, DARB_FC_S8_FLAT_Q4); \
            }                                                                                         \
            break;                                                                                    \
        default:                                                                                      \
            DARB_FC_S8_FLAT_ASM(BITS, SLI, OFF, OFF_P, DARB_FC_S8_FLAT_SUM1, DARB_FC_S8_FLAT_Q4);     \
            break;                                                                                    \
        }                                                                                             \
    }

/* offsets of 1, 2, 4 or 8 bits stay inside a byte; of 3, 5, 6 or 7 bits they may cross one */
#define DARB_FC_S8_FLAT_INSIDE(BITS, SLI)                                                             \
    DARB_FC_S8_FLAT(BITS, SLI, DARB_FC_S8_FLAT_OFF, DARB_FC_S8_FLAT_OFF_P, DARB_FC_S8_FLAT_OFF,          \
                    DARB_FC_S8_FLAT_OFF_P)
#define DARB_FC_S8_FLAT_CROSS(BITS)                                                                   \
    DARB_FC_S8_FLAT(BITS, DARB_FC_S8_FLAT_SLI(BITS), DARB_FC_S8_FLAT_OFF2, DARB_FC_S8_FLAT_OFF2_P,        \
                    DARB_FC_S8_FLAT_OFF2Q, DARB_FC_S8_FLAT_OFF2Q_P)
DARB_FC_S8_FLAT_INSIDE(1, DARB_FC_S8_FLAT_SLI(1))
DARB_FC_S8_FLAT_INSIDE(2, DARB_FC_S8_FLAT_SLI(2))
DARB_FC_S8_FLAT_CROSS(3)
DARB_FC_S8_FLAT_INSIDE(4, DARB_FC_S8_FLAT_SLI(4))
DARB_FC_S8_FLAT_CROSS(5)
DARB_FC_S8_FLAT_CROSS(6)
DARB_FC_S8_FLAT_CROSS(7)
DARB_FC_S8_FLAT_INSIDE(8, "") /* (blocks of 256: k = 0, no VSLI) */

static const darb_fc_kernel darb_fc_s8_flat[9] = {
    0, darb_fc_s8_flat_b1, darb_fc_s8_flat_b2, darb_fc_s8_flat_b3, darb_fc_s8_flat_b4, darb_fc_s8_flat_b5,
    darb_fc_s8_flat_b6, darb_fc_s8_flat_b7, darb_fc_s8_flat_b8,
};

/* Rows of more than 16 blocks of 1 << BITS columns (BITS 1 to 4) whose
 * offsets are whole bytes, so that every row starts at bit 0 and the lane
 * constants are the class's: per row, 16 blocks per step in a low-overhead
 * loop (the offsets' gather and VSHL, VSLI, the inputs' gather, the weights'
 * load, VMLADAVA and two pointer steps; with 3 bits also the byte after each
 * offset), then the row's last nblocks % 16 blocks predicated (the predicate
 * set once, before the rows). In asm: gcc's own code spent about 30
 * instructions a row around the loop. */
#define DARB_FC_S8_CHUNK_OFFSETS                                                                      \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
#define DARB_FC_S8_CHUNK_OFFSETS_P                                                                    \
    "vpst\n\t"                                                                                        \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vshl.u8     q0, q0, %q[right]\n\t"
/* offsets that may cross a byte: the byte after too (offsets of 3 bits) */
#define DARB_FC_S8_CHUNK_OFFSETS2                                                                     \
    "vldrb.u8    q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrb.u8    q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"
#define DARB_FC_S8_CHUNK_OFFSETS2_P                                                                   \
    "vpstt\n\t"                                                                                       \
    "vldrbt.u8   q0, [%[b], %q[byte]]\n\t"                                                            \
    "vldrbt.u8   q2, [%[b], %q[byte1]]\n\t"                                                           \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vshl.u8     q2, q2, %q[left]\n\t"                                                                \
    "vorr        q0, q0, q2\n\t"

#define DARB_FC_S8_CHUNKS(BITS, OFFSETS, OFFSETS_P)                                                   \
    static void darb_fc_s8_chunks_b##BITS(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)           \
    {                                                                                                 \
        const uint32_t m = cl->nblocks / 16u;                                                         \
        const uint32_t t = cl->nblocks % 16u;                                                         \
        const uint32_t tb = t * (BITS) / 8u;                                                          \
        const uint8x16_t k = vidupq_n_u8(0u, 1);                                                      \
        const int8_t *in = cl->in;                                                                    \
        const uint8_t *b = cl->src + (cl->pos >> 3);                                                  \
        const int8_t *w = cl->w;                                                                      \
        const int8_t *x;                                                                              \
        uint32_t n = n_rows;                                                                          \
        int32_t s;                                                                                    \
        uint8x16_t byte, byte1;                                                                       \
        int8x16_t right, left;                                                                        \
        DARB_FC_S8_LANES(BITS, 0u);                                                                   \
        byte1 = vaddq_n_u8(byte, 1);                                                                  \
        cl->w += n_rows * cl->nblocks;                                                                \
        cl->pos += n_rows * cl->nblocks * (BITS);                                                     \
        if (n == 0u) {                                                                                \
            return;                                                                                   \
        }                                                                                             \
        __asm__ volatile("vctp.8      %[t]\n\t"                                                       \
                         "1:\n\t"                                                                     \
                         "movs        %[s], #0\n\t"                                                   \
                         "mov         %[x], %[in]\n\t"                                                \
                         "dls         lr, %[m]\n\t"                                                   \
                         "2:\n\t" OFFSETS                                                             \
                         "vsli.8      q0, %q[k], #" #BITS "\n\t"                                      \
                         "vldrb.u8    q1, [%[x], q0]\n\t"                                             \
                         "vldrb.8     q2, [%[w]], #16\n\t"                                            \
                         "vmladava.s8 %[s], q1, q2\n\t"                                               \
                         "adds        %[b], %[b], #(2 * " #BITS ")\n\t"                               \
                         "add         %[x], %[x], #(16 << " #BITS ")\n\t"                             \
                         "le          lr, 2b\n\t"                                                     \
                         "cmp         %[t], #0\n\t"                                                   \
                         "beq         3f\n\t" OFFSETS_P                                               \
                         "vsli.8      q0, %q[k], #" #BITS "\n\t"                                      \
                         "vpstt\n\t"                                                                  \
                         "vldrbt.u8   q1, [%[x], q0]\n\t"                                             \
                         "vldrbt.8    q2, [%[w]]\n\t"                                                 \
                         "vmladava.s8 %[s], q1, q2\n\t"                                               \
                         "add         %[w], %[w], %[t]\n\t"                                           \
                         "add         %[b], %[b], %[tb]\n\t"                                          \
                         "3:\n\t"                                                                     \
                         "str         %[s], [%[acc]], #4\n\t"                                         \
                         "subs        %[n], %[n], #1\n\t"                                             \
                         "bne         1b"                                                             \
                         : [s] "=&Te"(s), [x] "=&r"(x), [b] "+&r"(b), [w] "+&r"(w), [acc] "+&r"(acc), \
                           [n] "+&r"(n)                                                               \
                         : [in] "r"(in), [m] "r"(m), [t] "r"(t), [tb] "r"(tb), [k] "w"(k),            \
                           [byte] "w"(byte), [byte1] "w"(byte1), [right] "w"(right), [left] "w"(left) \
                         : "q0", "q1", "q2", "lr", "p0", "memory", "cc");                             \
    }

/* Offsets of 1 or 2 bits: two steps per loop pass sharing one input pointer
 * (the second step's lanes are blocks 16 to 31, k + 16, whose offsets still
 * fit 8 bits, and its offsets' bytes 2 * BITS further: byte2), which saves
 * a third of the pointer steps and loop ends. */
#define DARB_FC_S8_CHUNK_PAIR(BYTE, K, BITS)                                                          \
    "vldrb.u8    q0, [%[b], %q[" BYTE "]]\n\t"                                                        \
    "vshl.u8     q0, q0, %q[right]\n\t"                                                               \
    "vsli.8      q0, %q[" K "], #" #BITS "\n\t"                                                       \
    "vldrb.u8    q1, [%[x], q0]\n\t"                                                                  \
    "vldrb.8     q2, [%[w]], #16\n\t"                                                                 \
    "vmladava.s8 %[s], q1, q2\n\t"
#define DARB_FC_S8_CHUNKS2(BITS)                                                                      \
    static void darb_fc_s8_chunks_b##BITS(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)           \
    {                                                                                                 \
        const uint32_t m = cl->nblocks / 16u;                                                         \
        const uint32_t pairs = m / 2u;                                                                \
        const uint32_t odd = m % 2u;                                                                  \
        const uint32_t t = cl->nblocks % 16u;                                                         \
        const uint8x16_t k = vidupq_n_u8(0u, 1);                                                      \
        const uint8x16_t k2 = vidupq_n_u8(16u, 1);                                                    \
        const int8_t *in = cl->in;                                                                    \
        const uint8_t *b = cl->src + (cl->pos >> 3);                                                  \
        const int8_t *w = cl->w;                                                                      \
        const int8_t *x;                                                                              \
        uint32_t n = n_rows;                                                                          \
        int32_t s;                                                                                    \
        uint8x16_t byte, byte2;                                                                       \
        int8x16_t right, left;                                                                        \
        DARB_FC_S8_LANES(BITS, 0u);                                                                   \
        (void)left;                                                                                   \
        byte2 = vaddq_n_u8(byte, 2u * (BITS));                                                        \
        cl->w += n_rows * cl->nblocks;                                                                \
        cl->pos += n_rows * cl->nblocks * (BITS);                                                     \
        if (n == 0u) {                                                                                \
            return;                                                                                   \
        }                                                                                             \
        __asm__ volatile("vctp.8      %[t]\n\t"                                                       \
                         "1:\n\t"                                                                     \
                         "movs        %[s], #0\n\t"                                                   \
                         "ldr         %[x], %[in]\n\t"                                                \
                         "wls         lr, %[pairs], 4f\n\t"                                           \
                         "2:\n\t" DARB_FC_S8_CHUNK_PAIR("byte", "k", BITS)                            \
                         DARB_FC_S8_CHUNK_PAIR("byte2", "k2", BITS)                                   \
                         "adds        %[b], %[b], #(4 * " #BITS ")\n\t"                               \
                         "add         %[x], %[x], #(32 << " #BITS ")\n\t"                             \
                         "le          lr, 2b\n\t"                                                     \
                         "4:\n\t"                                                                     \
                         "cmp         %[odd], #0\n\t"                                                 \
                         "beq         5f\n\t" DARB_FC_S8_CHUNK_PAIR("byte", "k", BITS)                \
                         "adds        %[b], %[b], #(2 * " #BITS ")\n\t"                               \
                         "add         %[x], %[x], #(16 << " #BITS ")\n\t"                             \
                         "5:\n\t"                                                                     \
                         "cmp         %[t], #0\n\t"                                                   \
                         "beq         3f\n\t" DARB_FC_S8_CHUNK_OFFSETS_P                              \
                         "vsli.8      q0, %q[k], #" #BITS "\n\t"                                      \
                         "vpstt\n\t"                                                                  \
                         "vldrbt.u8   q1, [%[x], q0]\n\t"                                             \
                         "vldrbt.8    q2, [%[w]]\n\t"                                                 \
                         "vmladava.s8 %[s], q1, q2\n\t"                                               \
                         "add         %[w], %[w], %[t]\n\t"                                           \
                         "add         %[b], %[b], %[t], lsr #(4 - " #BITS ")\n\t"                     \
                         "3:\n\t"                                                                     \
                         "str         %[s], [%[acc]], #4\n\t"                                         \
                         "subs        %[n], %[n], #1\n\t"                                             \
                         "bne         1b"                                                             \
                         : [s] "=&Te"(s), [x] "=&r"(x), [b] "+&r"(b), [w] "+&r"(w), [acc] "+&r"(acc), \
                           [n] "+&r"(n)                                                               \
                         : [in] "m"(in), [pairs] "r"(pairs), [odd] "r"(odd), [t] "r"(t), [k] "w"(k),   \
                           [k2] "w"(k2), [byte] "w"(byte), [byte2] "w"(byte2), [right] "w"(right)     \
                         : "q0", "q1", "q2", "lr", "p0", "memory", "cc");                             \
    }

DARB_FC_S8_CHUNKS2(1)
DARB_FC_S8_CHUNKS2(2)
DARB_FC_S8_CHUNKS(3, DARB_FC_S8_CHUNK_OFFSETS2, DARB_FC_S8_CHUNK_OFFSETS2_P)
DARB_FC_S8_CHUNKS(4, DARB_FC_S8_CHUNK_OFFSETS, DARB_FC_S8_CHUNK_OFFSETS_P)

static const darb_fc_kernel darb_fc_s8_chunks[5] = {
    0, darb_fc_s8_chunks_b1, darb_fc_s8_chunks_b2, darb_fc_s8_chunks_b3, darb_fc_s8_chunks_b4,
};

#endif /* DARB_FC_MVE_ASM */

/* The kernel of a class of blocks of `block` columns, rows of nblocks. */
static darb_fc_kernel darb_fc_s8_kernel(uint32_t block, uint32_t bits, uint32_t nblocks)
{
    if (block == 1u) {
        return darb_fc_s8_dense;
    }
    if (block == 1u << bits) {
#ifdef DARB_FC_MVE_ASM
        if (bits <= 8u && (nblocks & (nblocks - 1u)) == 0u &&
            ((nblocks <= 16u && (nblocks << bits) <= 256u) || (nblocks == 32u && bits <= 3u) ||
             (nblocks == 64u && bits <= 2u))) {
            return darb_fc_s8_flat[bits];
        }
        if (bits <= 4u && nblocks > 16u && (nblocks * bits) % 8u == 0u) {
            return darb_fc_s8_chunks[bits];
        }
#endif
        if (bits <= 5u && nblocks >= 5u) {
            return darb_fc_s8_phased[bits];
        }
    }
    return bits <= 9u ? darb_fc_s8_rows : 0;
}

#else /* scalar cores */

#ifdef DARB_FC_DSP
/* Four blocks J .. J + 3 of a group: one word of four weights, SXTB16 into
 * (w0, w2) and (w1, w3), each block's offset from T (UBFX) added to X, its
 * input loaded at the block's distance and multiplied by its weight's half:
 * 19 instructions, in one asm step so that gcc neither spills nor hoists. */
#define DARB_FC_STEP4(J, BITS, ACC, WP, T, X)                                                         \
    do {                                                                                              \
        uint32_t wv_, we_, o_;                                                                        \
        int32_t i_;                                                                                   \
        __asm__("ldr     %[wv], [%[wp]], #4\n\t"                                                      \
                "ubfx    %[o], %[t], #((" #J ") * (" #BITS ")), #(" #BITS ")\n\t"                     \
                "add     %[o], %[x], %[o]\n\t"                                                        \
                "ldrsb   %[i], [%[o], #((" #J ") << (" #BITS "))]\n\t"                                \
                "sxtb16  %[we], %[wv]\n\t"                                                            \
                "smlabb  %[acc], %[i], %[we], %[acc]\n\t"                                             \
                "ubfx    %[o], %[t], #((" #J " + 1) * (" #BITS ")), #(" #BITS ")\n\t"                 \
                "add     %[o], %[x], %[o]\n\t"                                                        \
                "ldrsb   %[i], [%[o], #((" #J " + 1) << (" #BITS "))]\n\t"                            \
                "sxtb16  %[wv], %[wv], ror #8\n\t"                                                    \
                "smlabb  %[acc], %[i], %[wv], %[acc]\n\t"                                             \
                "ubfx    %[o], %[t], #((" #J " + 2) * (" #BITS ")), #(" #BITS ")\n\t"                 \
                "add     %[o], %[x], %[o]\n\t"                                                        \
                "ldrsb   %[i], [%[o], #((" #J " + 2) << (" #BITS "))]\n\t"                            \
                "smlabt  %[acc], %[i], %[we], %[acc]\n\t"                                             \
                "ubfx    %[o], %[t], #((" #J " + 3) * (" #BITS ")), #(" #BITS ")\n\t"                 \
                "add     %[o], %[x], %[o]\n\t"                                                        \
                "ldrsb   %[i], [%[o], #((" #J " + 3) << (" #BITS "))]\n\t"                            \
                "smlabt  %[acc], %[i], %[wv], %[acc]"                                                 \
                : [acc] "+r"(ACC), [wp] "+r"(WP), [wv] "=&r"(wv_), [we] "=&r"(we_), [o] "=&r"(o_),    \
                  [i] "=&r"(i_)                                                                       \
                : [t] "r"(T), [x] "r"(X), "m"(*(const int8_t(*)[4096])(const void *)(X)),             \
                  "m"(*(const int8_t(*)[4])(const void *)(WP)));                                      \
    } while (0)
#else
#define DARB_FC_STEP4(J, BITS, ACC, WP, T, X)                                                         \
    do {                                                                                              \
        uint32_t j_;                                                                                  \
        _Pragma("GCC unroll 4")                                                                       \
        for (j_ = (J); j_ < (J) + 4u; ++j_) {                                                         \
            (ACC) += (int32_t)*(WP)++ * (X)[(j_ << (BITS)) + (((T) >> (j_ * (BITS))) & ((1u << (BITS)) - 1u))]; \
        }                                                                                             \
    } while (0)
#endif
/* GROUP blocks (0, or 4 to 32, a multiple of 4) as 4-block steps with literal block numbers */
#define DARB_FC_G0(BITS, ACC, WP, T, X) (void)(T)
#define DARB_FC_G4(BITS, ACC, WP, T, X) DARB_FC_STEP4(0, BITS, ACC, WP, T, X)
#define DARB_FC_G8(BITS, ACC, WP, T, X) DARB_FC_G4(BITS, ACC, WP, T, X); DARB_FC_STEP4(4, BITS, ACC, WP, T, X)
#define DARB_FC_G16(BITS, ACC, WP, T, X)                                                              \
    DARB_FC_G8(BITS, ACC, WP, T, X); DARB_FC_STEP4(8, BITS, ACC, WP, T, X); DARB_FC_STEP4(12, BITS, ACC, WP, T, X)
#define DARB_FC_G32(BITS, ACC, WP, T, X)                                                              \
    DARB_FC_G16(BITS, ACC, WP, T, X); DARB_FC_STEP4(16, BITS, ACC, WP, T, X);                         \
    DARB_FC_STEP4(20, BITS, ACC, WP, T, X); DARB_FC_STEP4(24, BITS, ACC, WP, T, X);                   \
    DARB_FC_STEP4(28, BITS, ACC, WP, T, X)
#define DARB_FC_GROUP(GROUP, BITS, ACC, WP, T, X) DARB_FC_G##GROUP(BITS, ACC, WP, T, X)

/* Classes whose rows are whole bytes of offsets and whole groups of FG
 * blocks (FSTEP bytes of offsets a group), on the DSP cores: the rows one
 * after the other from one pointer into the offsets, no bit position, each
 * row an asm loop over its groups (gcc's own loops spilled about 12
 * registers a row). Offsets of 2, 4 and 8 bits are first spread to bytes
 * (AND of the group's word, shifted, with 0x03030303 or 0x0F0F0F0F; 1-bit
 * offsets by a multiply) so that UXTAB adds each to the block's input
 * address: 15 instructions per 4 blocks, where UBFX and ADD take 19. */
#ifdef DARB_FC_DSP_ROWS
#define DARB_FC_FIXED_ROWS 1
/* blocks J .. J + 3, offsets in bytes LA .. LD of registers EA .. ED */
#define DARB_FC_ASM_STEP4X(J, BITS, EA, LA, EB, LB, EC, LC, ED, LD)                                   \
    "ldr     %[wv], [%[wp]], #4\n\t"                                                                  \
    "uxtab   %[a], %[x], %[" EA "], ror #(8 * " #LA ")\n\t"                                           \
    "ldrsb   %[a], [%[a], #((" #J ") << " #BITS ")]\n\t"                                              \
    "sxtb16  %[we], %[wv]\n\t"                                                                        \
    "smlabb  %[s], %[a], %[we], %[s]\n\t"                                                             \
    "uxtab   %[a], %[x], %[" EB "], ror #(8 * " #LB ")\n\t"                                           \
    "ldrsb   %[a], [%[a], #((" #J " + 1) << " #BITS ")]\n\t"                                          \
    "sxtb16  %[wv], %[wv], ror #8\n\t"                                                                \
    "smlabb  %[s], %[a], %[wv], %[s]\n\t"                                                             \
    "uxtab   %[a], %[x], %[" EC "], ror #(8 * " #LC ")\n\t"                                           \
    "ldrsb   %[a], [%[a], #((" #J " + 2) << " #BITS ")]\n\t"                                          \
    "smlabt  %[s], %[a], %[we], %[s]\n\t"                                                             \
    "uxtab   %[a], %[x], %[" ED "], ror #(8 * " #LD ")\n\t"                                           \
    "ldrsb   %[a], [%[a], #((" #J " + 3) << " #BITS ")]\n\t"                                          \
    "smlabt  %[s], %[a], %[wv], %[s]\n\t"
/* blocks J .. J + 3, offsets from bit J * BITS of t (UBFX) */
#define DARB_FC_ASM_STEP4(J, BITS)                                                                    \
    "ldr     %[wv], [%[wp]], #4\n\t"                                                                  \
    "ubfx    %[a], %[t], #((" #J ") * " #BITS "), #" #BITS "\n\t"                                     \
    "add     %[a], %[x], %[a]\n\t"                                                                    \
    "ldrsb   %[a], [%[a], #((" #J ") << " #BITS ")]\n\t"                                              \
    "sxtb16  %[we], %[wv]\n\t"                                                                        \
    "smlabb  %[s], %[a], %[we], %[s]\n\t"                                                             \
    "ubfx    %[a], %[t], #((" #J " + 1) * " #BITS "), #" #BITS "\n\t"                                 \
    "add     %[a], %[x], %[a]\n\t"                                                                    \
    "ldrsb   %[a], [%[a], #((" #J " + 1) << " #BITS ")]\n\t"                                          \
    "sxtb16  %[wv], %[wv], ror #8\n\t"                                                                \
    "smlabb  %[s], %[a], %[wv], %[s]\n\t"                                                             \
    "ubfx    %[a], %[t], #((" #J " + 2) * " #BITS "), #" #BITS "\n\t"                                 \
    "add     %[a], %[x], %[a]\n\t"                                                                    \
    "ldrsb   %[a], [%[a], #((" #J " + 2) << " #BITS ")]\n\t"                                          \
    "smlabt  %[s], %[a], %[we], %[s]\n\t"                                                             \
    "ubfx    %[a], %[t], #((" #J " + 3) * " #BITS "), #" #BITS "\n\t"                                 \
    "add     %[a], %[x], %[a]\n\t"                                                                    \
    "ldrsb   %[a], [%[a], #((" #J " + 3) << " #BITS ")]\n\t"                                          \
    "smlabt  %[s], %[a], %[wv], %[s]\n\t"
/* blocks J .. J + 3 of 1-bit offsets: the four bits to the bytes' low bits
 * by one multiply (n * 0x00204081 puts bit i of n at bit 9 i; e2 holds the
 * constant), then UXTAB: 18 instructions where UBFX and ADD take 19 */
#define DARB_FC_ASM_STEP4M(J)                                                                         \
    "ubfx    %[e1], %[t], #" #J ", #4\n\t"                                                            \
    "mul     %[e1], %[e1], %[e2]\n\t"                                                                 \
    "and     %[e1], %[e1], #0x01010101\n\t"                                                           \
    DARB_FC_ASM_STEP4X(J, 1, "e1", 0, "e1", 1, "e1", 2, "e1", 3)
#define DARB_FC_ASM_GROUP1                                                                            \
    DARB_FC_ASM_STEP4M(0) DARB_FC_ASM_STEP4M(4) DARB_FC_ASM_STEP4M(8) DARB_FC_ASM_STEP4M(12)          \
    DARB_FC_ASM_STEP4M(16) DARB_FC_ASM_STEP4M(20) DARB_FC_ASM_STEP4M(24) DARB_FC_ASM_STEP4M(28)
#define DARB_FC_ASM_GROUP2                                                                            \
    "mov     %[a], #0x03030303\n\t"                                                                   \
    "and     %[e1], %[a], %[t], lsr #2\n\t"                                                           \
    "and     %[e2], %[a], %[t], lsr #4\n\t"                                                           \
    "and     %[e3], %[a], %[t], lsr #6\n\t"                                                           \
    "and     %[t], %[t], %[a]\n\t"                                                                    \
    DARB_FC_ASM_STEP4X(0, 2, "t", 0, "e1", 0, "e2", 0, "e3", 0)                                       \
    DARB_FC_ASM_STEP4X(4, 2, "t", 1, "e1", 1, "e2", 1, "e3", 1)                                       \
    DARB_FC_ASM_STEP4X(8, 2, "t", 2, "e1", 2, "e2", 2, "e3", 2)                                       \
    DARB_FC_ASM_STEP4X(12, 2, "t", 3, "e1", 3, "e2", 3, "e3", 3)
#define DARB_FC_ASM_GROUP3 DARB_FC_ASM_STEP4(0, 3) DARB_FC_ASM_STEP4(4, 3)
#define DARB_FC_ASM_GROUP4                                                                            \
    "lsr     %[e1], %[t], #4\n\t"                                                                     \
    "and     %[t], %[t], #0x0F0F0F0F\n\t"                                                             \
    "and     %[e1], %[e1], #0x0F0F0F0F\n\t"                                                           \
    DARB_FC_ASM_STEP4X(0, 4, "t", 0, "e1", 0, "t", 1, "e1", 1)                                        \
    DARB_FC_ASM_STEP4X(4, 4, "t", 2, "e1", 2, "t", 3, "e1", 3)
#define DARB_FC_ASM_GROUP6 DARB_FC_ASM_STEP4(0, 6)
#define DARB_FC_ASM_GROUP8 DARB_FC_ASM_STEP4X(0, 8, "t", 0, "t", 1, "t", 2, "t", 3)

/* n rows (n >= 1) from offsets P and weights W into ACC: per row its groups
 * until the input pointer reaches xend. At most 12 registers (13 with a
 * frame pointer are all gcc can give an asm statement): offsets of 2 bits,
 * which take three more, count the rows by acc's end instead of n. */
#define DARB_FC_ROWS_ASM(BITS, FG, FSTEP, P, W, ROW_END, EXTRA)                                       \
    __asm__ volatile(DARB_FC_ROWS_START##BITS                                                         \
                     "1:\n\t"                                                                         \
                     "movs    %[s], #0\n\t"                                                           \
                     "ldr     %[x], %[in]\n\t"                                                        \
                     "2:\n\t"                                                                         \
                     "ldr     %[t], [%[p]], #" #FSTEP "\n\t" DARB_FC_ASM_GROUP##BITS                  \
                     "add     %[x], %[x], #(" #FG " << " #BITS ")\n\t"                                \
                     "ldr     %[a], %[xend]\n\t"                                                      \
                     "cmp     %[x], %[a]\n\t"                                                         \
                     "bne     2b\n\t"                                                                 \
                     "str     %[s], [%[acc]], #4\n\t" ROW_END                                         \
                     : [s] "=&r"(s_), [x] "=&r"(x_), [t] "=&r"(t_), [wv] "=&r"(wv_), [we] "=&r"(we_), \
                       [a] "=&r"(a_), [p] "+&r"(P), [wp] "+&r"(W), [acc] "+&r"(acc_) EXTRA            \
                     : [in] "m"(in_), [xend] "m"(xend_), [accend] "m"(accend_)                        \
                     : "memory", "cc")
#define DARB_FC_ROWS_FIXED(BITS, FG, FSTEP, P, W, IN, NBLOCKS, N, ACC)                                \
    do {                                                                                              \
        const int8_t *in_ = (IN);                                                                     \
        const int8_t *xend_ = in_ + ((NBLOCKS) << (BITS));                                            \
        int32_t *acc_ = (ACC);                                                                        \
        const int32_t *accend_ = acc_ + (N);                                                          \
        uint32_t n_ = (N);                                                                            \
        int32_t s_;                                                                                   \
        const int8_t *x_;                                                                             \
        uint32_t t_, e1_, e2_, e3_, wv_, we_, a_;                                                     \
        DARB_FC_ROWS_ASM(BITS, FG, FSTEP, P, W, DARB_FC_ROWS_END##BITS, DARB_FC_ROWS_OPS##BITS);      \
        (void)e2_;                                                                                    \
        (void)e3_;                                                                                    \
        (void)n_;                                                                                     \
    } while (0)
#define DARB_FC_ROWS_END_N "subs    %[n], %[n], #1\n\tbne     1b"
#define DARB_FC_ROWS_OPS_N , [e1] "=&r"(e1_), [n] "+&r"(n_)
#define DARB_FC_ROWS_END2 "ldr     %[a], %[accend]\n\tcmp     %[acc], %[a]\n\tbne     1b"
#define DARB_FC_ROWS_OPS2 , [e1] "=&r"(e1_), [e2] "=&r"(e2_), [e3] "=&r"(e3_)
#define DARB_FC_ROWS_END1 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS1 DARB_FC_ROWS_OPS_N , [e2] "=&r"(e2_)
#define DARB_FC_ROWS_START1 "movw    %[e2], #0x4081\n\tmovt    %[e2], #0x0020\n\t"
#define DARB_FC_ROWS_START2 ""
#define DARB_FC_ROWS_START3 ""
#define DARB_FC_ROWS_START4 ""
#define DARB_FC_ROWS_START5 ""
#define DARB_FC_ROWS_START6 ""
#define DARB_FC_ROWS_START7 ""
#define DARB_FC_ROWS_START8 ""
#define DARB_FC_ROWS_START9 ""
#define DARB_FC_ROWS_END3 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS3 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END4 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS4 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END5 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS5 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END6 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS6 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END7 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS7 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END8 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS8 DARB_FC_ROWS_OPS_N
#define DARB_FC_ROWS_END9 DARB_FC_ROWS_END_N
#define DARB_FC_ROWS_OPS9 DARB_FC_ROWS_OPS_N
#define DARB_FC_ASM_GROUP5 ""
#define DARB_FC_ASM_GROUP7 ""
#define DARB_FC_ASM_GROUP9 ""
#else
/* (without them the general loops below, which take whole words of offsets too) */
#define DARB_FC_FIXED_ROWS 0
#define DARB_FC_ROWS_FIXED(BITS, FG, FSTEP, P, W, IN, NBLOCKS, N, ACC) (void)(P)
#endif

/* One class whose block is 1 << BITS. On the DSP cores, rows whose offsets
 * are whole bytes and whole groups of FG blocks (FSTEP bytes) take the asm
 * row loops above. Rows of at most 25 bits of offsets take one load each.
 * The others take GROUP blocks per 32-bit load (a multiple of 4 where it
 * fits, for the 4-block steps): when GROUP * BITS is a whole number of bytes
 * (STEP bytes), a row's offsets keep the same bit phase, so each group is one
 * load from a pointer that steps by STEP bytes and one shift; otherwise (STEP
 * 0) the position is counted in bits. Rows of 1, 2, 4 or 8 bits that start
 * on a byte first take whole words (WORD blocks). */
#define DARB_FC_S8_POW2(BITS, WORD, GROUP, STEP, FG, FSTEP)                                           \
    static void darb_fc_s8_pow2_b##BITS(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)             \
    {                                                                                                 \
        const uint32_t nblocks = cl->nblocks;                                                         \
        const uint8_t *src = cl->src;                                                                 \
        const int8_t *in = cl->in;                                                                    \
        const uint32_t mask = (1u << (BITS)) - 1u;                                                    \
        const uint32_t word = (WORD);   /* (variables: no warning on k >= 0) */                       \
        const uint32_t group = (GROUP);                                                               \
        const int8_t *w = cl->w;                                                                      \
        uint32_t pos = cl->pos;                                                                       \
        uint32_t i;                                                                                   \
        if (DARB_FC_FIXED_ROWS && (FG) != 0u && ((nblocks * (BITS)) & 7u) == 0u &&                    \
            nblocks % ((FG) + !(FG)) == 0u && (pos & 7u) == 0u && n_rows != 0u) {                     \
            /* every row whole bytes of offsets and whole groups: no bit position */                  \
            const uint8_t *p = src + (pos >> 3);                                                      \
            DARB_FC_ROWS_FIXED(BITS, FG, FSTEP, p, w, in, nblocks, n_rows, acc);                      \
            cl->w = w;                                                                                \
            cl->pos = pos + n_rows * nblocks * (BITS);                                                \
            return;                                                                                   \
        }                                                                                             \
        if (nblocks * (BITS) <= 25u) {                                                                \
            /* rows of few blocks: one load of each row's offsets */                                  \
            const uint32_t row_bits = nblocks * (BITS);                                               \
            if (nblocks == 1u) {                                                                      \
                for (i = 0; i < n_rows; ++i, pos += row_bits) {                                       \
                    const uint32_t t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                   \
                    acc[i] = (int32_t)w[i] * in[t & mask];                                            \
                }                                                                                     \
                w += n_rows;                                                                          \
            } else if (nblocks == 2u) {                                                               \
                for (i = 0; i < n_rows; ++i, pos += row_bits, w += 2) {                               \
                    const uint32_t t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                   \
                    acc[i] = (int32_t)w[0] * in[t & mask] +                                           \
                             (int32_t)w[1] * in[(1u << (BITS)) + ((t >> (BITS)) & mask)];             \
                }                                                                                     \
            } else if (nblocks == 4u && (BITS) <= 6) {                                                \
                for (i = 0; i < n_rows; ++i, pos += row_bits) {                                       \
                    const uint32_t t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                   \
                    int32_t s = 0;                                                                    \
                    DARB_FC_STEP4(0, BITS, s, w, t, in);                                              \
                    acc[i] = s;                                                                       \
                }                                                                                     \
            } else {                                                                                  \
                for (i = 0; i < n_rows; ++i, pos += row_bits) {                                       \
                    uint32_t t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                         \
                    const int8_t *x = in;                                                             \
                    int32_t s = 0;                                                                    \
                    uint32_t k;                                                                       \
                    for (k = nblocks; k != 0u; --k, t >>= (BITS), x += 1u << (BITS)) {                \
                        s += (int32_t)*w++ * x[t & mask];                                             \
                    }                                                                                 \
                    acc[i] = s;                                                                       \
                }                                                                                     \
            }                                                                                         \
            cl->w = w;                                                                                \
            cl->pos = pos;                                                                            \
            return;                                                                                   \
        }                                                                                             \
        for (i = 0; i < n_rows; ++i) {                                                                \
            const int8_t *x = in; /* the first input column of the current block */                   \
            const uint8_t *p = src + (pos >> 3);                                                      \
            const uint32_t phase = pos & 7u;                                                          \
            int32_t s = 0;                                                                            \
            uint32_t k = nblocks;                                                                     \
            uint32_t t;                                                                               \
            if (word != 0u && phase == 0u) {                                                          \
                /* a byte-aligned row of 1, 2, 4 or 8 bits: a full word of offsets per load */        \
                for (; k >= word; k -= word) {                                                        \
                    t = darb_load32(p);                                                               \
                    p += 4;                                                                           \
                    DARB_FC_GROUP(WORD, BITS, s, w, t, x);                                            \
                    x += (WORD) << (BITS);                                                            \
                }                                                                                     \
                pos = (uint32_t)(p - src) * 8u;                                                       \
            }                                                                                         \
            if (group != 0u) {                                                                        \
                for (; k >= group; k -= group) {                                                      \
                    if ((STEP) != 0u) {                                                               \
                        t = darb_load32(p) >> phase;                                                  \
                        p += (STEP);                                                                  \
                    } else {                                                                          \
                        t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                              \
                        pos += (GROUP) * (BITS);                                                      \
                    }                                                                                 \
                    DARB_FC_GROUP(GROUP, BITS, s, w, t, x);                                           \
                    x += (GROUP) << (BITS);                                                           \
                }                                                                                     \
                if ((STEP) != 0u) {                                                                   \
                    pos = (uint32_t)(p - src) * 8u + phase;                                           \
                }                                                                                     \
            }                                                                                         \
            while (k != 0u) {                                                                         \
                /* up to 25 bits' worth of blocks one by one */                                       \
                uint32_t g = k < 25u / (BITS) ? k : 25u / (BITS);                                     \
                t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                      \
                pos += g * (BITS);                                                                    \
                k -= g;                                                                               \
                for (; g != 0u; --g) {                                                                \
                    s += (int32_t)*w++ * x[t & mask];                                                 \
                    t >>= (BITS);                                                                     \
                    x += 1u << (BITS);                                                                \
                }                                                                                     \
            }                                                                                         \
            acc[i] = s;                                                                               \
        }                                                                                             \
        cl->w = w;                                                                                    \
        cl->pos = pos;                                                                                \
    }

/* bits, blocks per word-aligned word (0: none), blocks per load (0: none),
 * bytes per load (0: count bits), blocks and bytes per group of whole-byte
 * rows (0: none). At most 25 bits per load, so that any phase 0..7 fits in
 * 32; the blocks left over go one by one. */
DARB_FC_S8_POW2(1, 32, 16, 2, 32, 4)
DARB_FC_S8_POW2(2, 16, 8, 2, 16, 4)
DARB_FC_S8_POW2(3, 0, 8, 3, 8, 3)
DARB_FC_S8_POW2(4, 8, 4, 2, 8, 4)
DARB_FC_S8_POW2(5, 0, 4, 0, 0, 0)
DARB_FC_S8_POW2(6, 0, 4, 3, 4, 3)
DARB_FC_S8_POW2(7, 0, 0, 0, 0, 0)
DARB_FC_S8_POW2(8, 4, 0, 0, 4, 4)
DARB_FC_S8_POW2(9, 0, 0, 0, 0, 0)

static const darb_fc_kernel darb_fc_s8_pow2[10] = {
    0, darb_fc_s8_pow2_b1, darb_fc_s8_pow2_b2, darb_fc_s8_pow2_b3, darb_fc_s8_pow2_b4, darb_fc_s8_pow2_b5,
    darb_fc_s8_pow2_b6, darb_fc_s8_pow2_b7, darb_fc_s8_pow2_b8, darb_fc_s8_pow2_b9,
};

/* Dense rows (b = 1); on the DSP cores two rows at a time, four columns per
 * step (SXTB16 of the inputs' word once for both rows, two SMLAD a row). */
static void darb_fc_s8_dense(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)
{
    const uint32_t cols = cl->nblocks;
    const int8_t *in = cl->in;
    const int8_t *w = cl->w;
    uint32_t i = 0;
#ifdef DARB_FC_DSP
    for (; i + 2u <= n_rows; i += 2u, w += 2u * cols) {
        const int8_t *w1 = w + cols;
        int32_t s0 = 0;
        int32_t s1 = 0;
        uint32_t j;
        for (j = 0; j + 4u <= cols; j += 4u) {
            const uint32_t x = darb_load32(in + j);
            const uint32_t xe = darb_sxtb16(x);
            const uint32_t xo = darb_sxtb16_ror8(x);
            const uint32_t a = darb_load32(w + j);
            const uint32_t b = darb_load32(w1 + j);
            s0 = darb_smlad(darb_sxtb16(a), xe, s0);
            s0 = darb_smlad(darb_sxtb16_ror8(a), xo, s0);
            s1 = darb_smlad(darb_sxtb16(b), xe, s1);
            s1 = darb_smlad(darb_sxtb16_ror8(b), xo, s1);
        }
        for (; j < cols; ++j) {
            s0 += (int32_t)w[j] * in[j];
            s1 += (int32_t)w1[j] * in[j];
        }
        acc[i] = s0;
        acc[i + 1u] = s1;
    }
#endif
    for (; i < n_rows; ++i, w += cols) {
        int32_t s = 0;
        uint32_t j;
        for (j = 0; j < cols; ++j) {
            s += (int32_t)w[j] * in[j];
        }
        acc[i] = s;
    }
    cl->w = w;
}

/* The kernel of a class of blocks of `block` columns. */
static darb_fc_kernel darb_fc_s8_kernel(uint32_t block, uint32_t bits, uint32_t nblocks)
{
    (void)nblocks;
    if (block == 1u) {
        return darb_fc_s8_dense;
    }
    return block == 1u << bits && bits <= 9u ? darb_fc_s8_pow2[bits] : 0;
}
#endif /* scalar cores */

/* Any block size, with the general bit reader (its state kept across batches). */
static void darb_fc_s8_general(darb_fc_class *cl, uint32_t n_rows, int32_t *acc)
{
    const uint32_t block = cl->block;
    const uint32_t nblocks = cl->nblocks;
    const int8_t *in = cl->in;
    const int8_t *w = cl->w;
    uint32_t i;
    for (i = 0; i < n_rows; ++i) {
        int32_t s = 0;
        uint32_t k;
        uint32_t start = 0;
        for (k = 0; k < nblocks; ++k, start += block) {
            s += (int32_t)w[k] * in[start + darb_bits_next(&cl->reader)];
        }
        w += nblocks;
        acc[i] = s;
    }
    cl->w = w;
}

/* ceil(log2 block) */
static inline uint32_t darb_fc_s8_bits(uint32_t block)
{
#if defined(__GNUC__)
    return block > 1u ? 32u - (uint32_t)__builtin_clz(block - 1u) : 0u;
#else
    return darb_offset_bits(block);
#endif
}

void darb_fc_s8(const darb_pattern *pattern, const int8_t *values, const darb_quant_s8 *quant, const int8_t *in,
                int8_t *out)
{
    int32_t acc[DARB_FC_BATCH + DARB_FC_ROOM];
    const uint16_t *rows = pattern->row_order;  /* the rows of the sums in acc */
    uint32_t filled = 0;
    darb_fc_class cl;
    uint32_t c;
    cl.w = values;
    cl.in = in;
    for (c = 0; c < pattern->n_classes; ++c) {
        const uint32_t block = pattern->class_block[c];
        uint32_t left = pattern->class_rows[c];
        darb_fc_kernel kernel;
        cl.block = block;
        cl.bits = darb_fc_s8_bits(block);
        cl.nblocks = (pattern->cols + block - 1u) / block;
        /* b = 1 stores no offsets (and offsets may be NULL: no arithmetic on it) */
        cl.src = cl.bits != 0u ? pattern->offsets + pattern->class_start[c] : pattern->offsets;
        cl.pos = 0;
        kernel = darb_fc_s8_kernel(block, cl.bits, cl.nblocks);
        if (kernel == 0) {
            darb_bits_init(&cl.reader, cl.src, cl.bits);
            kernel = darb_fc_s8_general;
        }
        while (left != 0u) {
            /* the rest of the class, or as many rows as fit (a multiple of DARB_FC_SPLIT) */
            uint32_t n = DARB_FC_BATCH - filled;
            if (n >= left) {
                n = left;
            } else {
                n &= ~(DARB_FC_SPLIT - 1u);
            }
            if (n != 0u) {
                kernel(&cl, n, acc + filled);
                filled += n;
                left -= n;
            }
            if (filled == DARB_FC_BATCH || (left != 0u && DARB_FC_BATCH - filled < DARB_FC_SPLIT)) {
                /* the output stage of a multiple of 4 rows; the others wait at the front */
                const uint32_t done = filled & ~3u;
                uint32_t i;
                darb_fc_s8_outputs(acc, rows, done, quant, out);
                rows += done;
                for (i = done; i < filled; ++i) {
                    acc[i - done] = acc[i];
                }
                filled -= done;
            }
        }
    }
    darb_fc_s8_outputs(acc, rows, filled, quant, out);
}

#else /* DARB_COMPACT */

/* Any block size, with the general bit reader. */
static const int8_t *darb_fc_s8_class(const int8_t *w, const uint8_t *src, uint32_t block, uint32_t bits,
                                      uint32_t nblocks, const uint16_t *rows, uint32_t n_rows,
                                      const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    darb_bit_reader reader;
    uint32_t i;
    darb_bits_init(&reader, src, bits);
    for (i = 0; i < n_rows; ++i) {
        const uint32_t row = rows[i];
        int32_t acc = quant->bias[row];
        uint32_t k;
        uint32_t start = 0;
        for (k = 0; k < nblocks; ++k, start += block) {
            acc += (int32_t)w[k] * in[start + darb_bits_next(&reader)];
        }
        w += nblocks;
        out[row] = darb_output_s8_fast(acc, row, quant);
    }
    return w;
}

void darb_fc_s8(const darb_pattern *pattern, const int8_t *values,
                const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    const int8_t *w = values;
    uint32_t visited = 0;
    uint32_t c;
    for (c = 0; c < pattern->n_classes; ++c) {
        const uint32_t block = pattern->class_block[c];
        const uint32_t nblocks = (pattern->cols + block - 1u) / block;
        const uint32_t bits = darb_offset_bits(block);
        const uint32_t n_rows = pattern->class_rows[c];
        const uint16_t *rows = pattern->row_order + visited;
        /* b = 1 stores no offsets (and offsets may be NULL: no arithmetic on it) */
        const uint8_t *src = bits != 0u ? pattern->offsets + pattern->class_start[c] : pattern->offsets;
        if (block == 1u) {
            /* every column kept: a dense row */
            uint32_t i;
            for (i = 0; i < n_rows; ++i) {
                int32_t acc = quant->bias[rows[i]];
                uint32_t j;
                for (j = 0; j < pattern->cols; ++j) {
                    acc += (int32_t)w[j] * in[j];
                }
                w += pattern->cols;
                out[rows[i]] = darb_output_s8_fast(acc, rows[i], quant);
            }
            visited += n_rows;
            continue;
        }
        w = darb_fc_s8_class(w, src, block, bits, nblocks, rows, n_rows, quant, in, out);
        visited += n_rows;
    }
}

#endif /* DARB_COMPACT */
