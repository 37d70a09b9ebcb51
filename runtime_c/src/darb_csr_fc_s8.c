/*
 * darb_csr_fc_s8.c - fully connected layer, CSR weights, int8 (int32 accumulator).
 *
 * The irregular-pruning baseline: every kept weight carries its column index
 * (uint8 when the layer has at most 256 inputs, uint16 otherwise).
 */
#include "darb.h"

void darb_csr_fc_s8(const darb_csr_pattern *pattern, const int8_t *values,
                    const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    uint32_t row;
    for (row = 0; row < pattern->rows; ++row) {
        const uint32_t begin = pattern->ptr16 != 0 ? pattern->ptr16[row] : pattern->ptr32[row];
        const uint32_t end = pattern->ptr16 != 0 ? pattern->ptr16[row + 1u] : pattern->ptr32[row + 1u];
        int32_t acc = quant->bias[row];
        uint32_t k;
        if (pattern->col8 != 0) {
            for (k = begin; k < end; ++k) {
                acc += (int32_t)values[k] * in[pattern->col8[k]];
            }
        } else {
            for (k = begin; k < end; ++k) {
                acc += (int32_t)values[k] * in[pattern->col16[k]];
            }
        }
        out[row] = darb_output_s8_fast(acc, row, quant);
    }
}
