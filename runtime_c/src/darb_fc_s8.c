/*
 * darb_fc_s8.c - fully connected layer, DARB packed weights, int8 (int32 accumulator).
 *
 * Rows are visited class by class (all rows of one block size b together), so
 * the inner loop runs with a constant b and offset width: one kept weight per
 * block, at column block_start + offset.
 *
 * Blocks of 2 to 512 columns (a power of two, so 1 to 9 offset bits) have
 * their own loops in which b is a compile-time constant: the offsets of up
 * to 25 bits' worth of consecutive blocks are taken from one 32-bit load at
 * any bit position (4 bytes from the byte holding the first offset, shifted;
 * the generator pads the offsets with 3 bytes so that the load stays inside
 * the array), and those multiply-adds are unrolled. Other block sizes take the
 * general loop with the bit reader. Every path adds the same products in the
 * same order. Offsets are little-endian bit streams, so the 32-bit load
 * assumes a little-endian core (every Cortex-M darbgen targets). On cores
 * with MVE (Cortex-M55) blocks of 2 to 64 and 256 run four per vector step.
 *
 * The specialised loops cost about 5 to 9 KB of code; compile with
 * -DDARB_COMPACT to keep only the general loop (about 0.3 KB) where flash
 * matters more than speed.
 */
#include "darb.h"
#include "darb_internal.h"

#ifndef DARB_COMPACT
/* One class whose block is 1 << BITS, GROUP blocks per 32-bit load. When
 * GROUP * BITS is a whole number of bytes (STEP bytes), a row's offsets keep
 * the same bit phase, so each group is one load from a pointer that steps by
 * STEP bytes and one shift; otherwise (STEP 0) the position is counted in bits.
 * Rows of 1, 2, 4 or 8 bits that start on a byte first take whole words. */
#define DARB_FC_S8_POW2(BITS, GROUP, STEP)                                                           \
    static const int8_t *darb_fc_s8_class_b##BITS(const int8_t *w, const uint8_t *src, uint32_t nblocks, \
                                                  const uint16_t *rows, uint32_t n_rows,              \
                                                  const darb_quant_s8 *quant, const int8_t *in,       \
                                                  int8_t *out)                                        \
    {                                                                                                 \
        const uint32_t block = 1u << (BITS);                                                          \
        const uint32_t mask = (1u << (BITS)) - 1u;                                                    \
        uint32_t pos = 0;                                                                             \
        uint32_t i;                                                                                   \
        for (i = 0; i < n_rows; ++i) {                                                                \
            const uint32_t row = rows[i];                                                             \
            uint32_t xo = 0; /* the first input column of the current block */                        \
            const uint8_t *p = src + (pos >> 3);                                                      \
            const uint32_t phase = pos & 7u;                                                          \
            int32_t acc = quant->bias[row];                                                           \
            uint32_t k = nblocks;                                                                     \
            uint32_t t;                                                                               \
            uint32_t j;                                                                               \
            if (8u % (BITS) == 0u && phase == 0u) {                                                   \
                /* a byte-aligned row of 1, 2, 4 or 8 bits: a full word of offsets per load */       \
                for (; k >= 32u / (BITS); k -= 32u / (BITS)) {                                        \
                    const int8_t *x = in + xo; /* the group's first block: inside the input */        \
                    t = darb_load32(p);                                                               \
                    p += 4;                                                                           \
                    _Pragma("GCC unroll 32")                                                          \
                    for (j = 0; j < 32u / (BITS); ++j) {                                              \
                        acc += (int32_t)w[j] * x[j * block + ((t >> (j * (BITS))) & mask)];                \
                    }                                                                                 \
                    w += 32u / (BITS);                                                                \
                    xo += (32u / (BITS)) * block;                                                      \
                }                                                                                     \
                pos = (uint32_t)(p - src) * 8u;                                                       \
            }                                                                                         \
            for (; k >= (GROUP); k -= (GROUP)) {                                                      \
                const int8_t *x = in + xo; /* the group's first block: inside the input */            \
                if ((STEP) != 0u) {                                                                   \
                    t = darb_load32(p) >> phase;                                                      \
                    p += (STEP);                                                                      \
                } else {                                                                              \
                    t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                  \
                    pos += (GROUP) * (BITS);                                                          \
                }                                                                                     \
                _Pragma("GCC unroll 25")                                                              \
                for (j = 0; j < (GROUP); ++j) {                                                       \
                    acc += (int32_t)w[j] * x[j * block + ((t >> (j * (BITS))) & mask)];                    \
                }                                                                                     \
                w += (GROUP);                                                                         \
                xo += (GROUP) * block;                                                                 \
            }                                                                                         \
            if ((STEP) != 0u) {                                                                       \
                pos = (uint32_t)(p - src) * 8u + phase;                                               \
            }                                                                                         \
            if (k != 0u) {                                                                            \
                t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                      \
                for (j = 0; j < k; ++j) {                                                             \
                    acc += (int32_t)w[j] * in[xo + j * block + ((t >> (j * (BITS))) & mask)];               \
                }                                                                                     \
                w += k;                                                                               \
                pos += k * (BITS);                                                                    \
            }                                                                                         \
            out[row] = darb_output_s8_fast(acc, row, quant);                                      \
        }                                                                                             \
        return w;                                                                                     \
    }

/* bits, blocks per load, bytes per load (0: count bits). At most 25 bits per
 * load, so any phase 0..7 fits in 32; powers of two where possible, since
 * rows of power-of-two widths then need no tail. */
DARB_FC_S8_POW2(1, 16, 2)
DARB_FC_S8_POW2(2, 8, 2)
DARB_FC_S8_POW2(3, 8, 3)
DARB_FC_S8_POW2(4, 4, 2)
DARB_FC_S8_POW2(5, 4, 0)
DARB_FC_S8_POW2(6, 4, 3)
DARB_FC_S8_POW2(7, 2, 0)
DARB_FC_S8_POW2(8, 2, 2)
DARB_FC_S8_POW2(9, 1, 0)

typedef const int8_t *(*darb_fc_s8_class_fn)(const int8_t *w, const uint8_t *src, uint32_t nblocks,
                                             const uint16_t *rows, uint32_t n_rows, const darb_quant_s8 *quant,
                                             const int8_t *in, int8_t *out);

static const darb_fc_s8_class_fn darb_fc_s8_pow2[10] = {
    0, darb_fc_s8_class_b1, darb_fc_s8_class_b2, darb_fc_s8_class_b3, darb_fc_s8_class_b4, darb_fc_s8_class_b5,
    darb_fc_s8_class_b6, darb_fc_s8_class_b7, darb_fc_s8_class_b8, darb_fc_s8_class_b9,
};

#ifdef DARB_HAVE_MVE
/* MVE (Cortex-M55): four blocks per vector step. Their offsets come out of
 * the 32-bit offset load as a vector (duplicate, shift lane by lane, mask),
 * plus 0, b, 2b, 3b; one gather load fetches the four inputs, one load the
 * four weights, and VMLADAVA adds the four products to the accumulator.
 * GROUP (a multiple of 4) blocks per offset load, as in the scalar loops. */
#define DARB_FC_S8_MVE(BITS, GROUP, STEP)                                                            \
    static const int8_t *darb_fc_s8_mve_b##BITS(const int8_t *w, const uint8_t *src, uint32_t nblocks, \
                                                const uint16_t *rows, uint32_t n_rows,                \
                                                const darb_quant_s8 *quant, const int8_t *in,         \
                                                int8_t *out)                                          \
    {                                                                                                 \
        const uint32_t block = 1u << (BITS);                                                          \
        const uint32_t mask = block - 1u;                                                             \
        const int32_t shift_lanes[4] = { 0, -(BITS), -2 * (BITS), -3 * (BITS) };                      \
        const uint32_t block_lanes[4] = { 0u, block, 2u * block, 3u * block };                        \
        const int32x4_t shifts = vld1q_s32(shift_lanes);                                              \
        const uint32x4_t starts = vld1q_u32(block_lanes);                                             \
        const uint32x4_t masks = vdupq_n_u32(mask);                                                   \
        uint32_t pos = 0;                                                                             \
        uint32_t i;                                                                                   \
        for (i = 0; i < n_rows; ++i) {                                                                \
            const uint32_t row = rows[i];                                                             \
            uint32_t xo = 0; /* the first input column of the current block */                        \
            const uint8_t *p = src + (pos >> 3);                                                      \
            const uint32_t phase = pos & 7u;                                                          \
            int32_t acc = quant->bias[row];                                                           \
            uint32_t k = nblocks;                                                                     \
            uint32_t t;                                                                               \
            uint32_t v;                                                                               \
            for (; k >= (GROUP); k -= (GROUP)) {                                                      \
                const int8_t *x = in + xo; /* the group's first block: inside the input */            \
                if ((STEP) != 0u) {                                                                   \
                    t = darb_load32(p) >> phase;                                                      \
                    p += (STEP);                                                                      \
                } else {                                                                              \
                    t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                  \
                    pos += (GROUP) * (BITS);                                                          \
                }                                                                                     \
                _Pragma("GCC unroll 8")                                                               \
                for (v = 0; v < (GROUP) / 4u; ++v) {                                                  \
                    const uint32x4_t o = vaddq_u32(                                                   \
                        vandq_u32(vshlq_u32(vdupq_n_u32(t >> (4u * v * (BITS))), shifts), masks), starts); \
                    acc = vmladavaq_s32(acc, vldrbq_gather_offset_s32(x + 4u * v * block, o),             \
                                        vldrbq_s32(w + 4u * v));                                      \
                }                                                                                     \
                w += (GROUP);                                                                         \
                xo += (GROUP) * block;                                                                 \
            }                                                                                         \
            if ((STEP) != 0u) {                                                                       \
                pos = (uint32_t)(p - src) * 8u + phase;                                               \
            }                                                                                         \
            for (; k != 0u; --k) {                                                                    \
                acc += (int32_t)*w++ * in[xo + ((darb_load32(src + (pos >> 3)) >> (pos & 7u)) & mask)];       \
                xo += block;                                                                          \
                pos += (BITS);                                                                        \
            }                                                                                         \
            out[row] = darb_output_s8_fast(acc, row, quant);                                          \
        }                                                                                             \
        return w;                                                                                     \
    }

/* bits, blocks per offset load (4 * vectors, at most 25 bits, or 32 whole bytes), bytes per load or 0 */
DARB_FC_S8_MVE(1, 16, 2)
DARB_FC_S8_MVE(2, 8, 2)
DARB_FC_S8_MVE(3, 8, 3)
DARB_FC_S8_MVE(4, 4, 2)
DARB_FC_S8_MVE(5, 4, 0)
DARB_FC_S8_MVE(6, 4, 3)
DARB_FC_S8_MVE(8, 4, 4)

static const darb_fc_s8_class_fn darb_fc_s8_mve[9] = {
    0, darb_fc_s8_mve_b1, darb_fc_s8_mve_b2, darb_fc_s8_mve_b3, darb_fc_s8_mve_b4, darb_fc_s8_mve_b5,
    darb_fc_s8_mve_b6, 0, darb_fc_s8_mve_b8,
};
#endif
#endif /* DARB_COMPACT */

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
#if defined(DARB_HAVE_MVE) && !defined(DARB_COMPACT)
        if (bits >= 1u && bits <= 8u && darb_fc_s8_mve[bits] != 0 && block == (1u << bits)) {
            w = darb_fc_s8_mve[bits](w, src, nblocks, rows, n_rows, quant, in, out);
            visited += n_rows;
            continue;
        }
#endif
#ifndef DARB_COMPACT
        if (bits >= 1u && bits <= 9u && block == (1u << bits)) {
            w = darb_fc_s8_pow2[bits](w, src, nblocks, rows, n_rows, quant, in, out);
            visited += n_rows;
            continue;
        }
#endif
        w = darb_fc_s8_class(w, src, block, bits, nblocks, rows, n_rows, quant, in, out);
        visited += n_rows;
    }
}
