/*
 * darb_fc_s8.c - fully connected layer, DARB packed weights, int8 (int32 accumulator).
 *
 * Rows are visited class by class (all rows of one block size b together), so
 * the inner loop runs with a constant b and offset width: one kept weight per
 * block, at column block_start + offset.
 */
#include "darb.h"
#include "darb_internal.h"

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
        darb_bit_reader reader;
        uint32_t i;
        /* b = 1 stores no offsets (and offsets may be NULL: no arithmetic on it) */
        darb_bits_init(&reader, bits != 0u ? pattern->offsets + pattern->class_start[c] : pattern->offsets, bits);
        for (i = 0; i < pattern->class_rows[c]; ++i, ++visited) {
            const uint32_t row = pattern->row_order[visited];
            int32_t acc = quant->bias[row];
            uint32_t k;
            uint32_t start = 0;
            for (k = 0; k < nblocks; ++k, start += block) {
                acc += (int32_t)w[k] * in[start + darb_bits_next(&reader)];
            }
            w += nblocks;
            out[row] = darb_output_s8(acc, (int32_t)row, quant);
        }
    }
}
