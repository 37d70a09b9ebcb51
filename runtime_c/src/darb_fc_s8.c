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
 * assumes a little-endian core (every Cortex-M darbgen targets).
 */
#include "darb.h"
#include "darb_internal.h"

/* One class whose block is 1 << BITS, GROUP blocks per 32-bit load. When
 * GROUP * BITS is a whole number of bytes (STEP bytes), a row's offsets keep
 * the same bit phase, so each group is one load from a pointer that steps by
 * STEP bytes and one shift; otherwise (STEP 0) the position is counted in bits. */
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
            const int8_t *x = in;                                                                     \
            const uint8_t *p = src + (pos >> 3);                                                      \
            const uint32_t phase = pos & 7u;                                                          \
            int32_t acc = quant->bias[row];                                                           \
            uint32_t k = nblocks;                                                                     \
            uint32_t t;                                                                               \
            uint32_t j;                                                                               \
            for (; k >= (GROUP); k -= (GROUP)) {                                                      \
                if ((STEP) != 0u) {                                                                   \
                    t = darb_load32(p) >> phase;                                                      \
                    p += (STEP);                                                                      \
                } else {                                                                              \
                    t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                  \
                    pos += (GROUP) * (BITS);                                                          \
                }                                                                                     \
                _Pragma("GCC unroll 25")                                                              \
                for (j = 0; j < (GROUP); ++j) {                                                       \
                    acc += (int32_t)w[j] * x[j * block + ((t >> (j * (BITS))) & mask)];               \
                }                                                                                     \
                w += (GROUP);                                                                         \
                x += (GROUP) * block;                                                                 \
            }                                                                                         \
            if ((STEP) != 0u) {                                                                       \
                pos = (uint32_t)(p - src) * 8u + phase;                                               \
            }                                                                                         \
            if (k != 0u) {                                                                            \
                t = darb_load32(src + (pos >> 3)) >> (pos & 7u);                                      \
                for (j = 0; j < k; ++j) {                                                             \
                    acc += (int32_t)w[j] * x[j * block + ((t >> (j * (BITS))) & mask)];               \
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
        if (bits >= 1u && bits <= 9u && block == (1u << bits)) {
            w = darb_fc_s8_pow2[bits](w, src, nblocks, rows, n_rows, quant, in, out);
        } else {
            w = darb_fc_s8_class(w, src, block, bits, nblocks, rows, n_rows, quant, in, out);
        }
        visited += n_rows;
    }
}
