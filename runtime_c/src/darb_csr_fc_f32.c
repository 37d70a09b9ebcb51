/*
 * darb_csr_fc_f32.c - fully connected layer, CSR weights, float32.
 *
 * The irregular-pruning baseline: every kept weight carries its column index
 * (uint8 when the layer has at most 256 inputs, uint16 otherwise).
 */
#include "darb.h"

void darb_csr_fc_f32(const darb_csr_pattern *pattern, const float *values,
                     const darb_quant_f32 *quant, const float *in, float *out)
{
    uint32_t row;
    for (row = 0; row < pattern->rows; ++row) {
        const uint32_t begin = pattern->ptr16 != 0 ? pattern->ptr16[row] : pattern->ptr32[row];
        const uint32_t end = pattern->ptr16 != 0 ? pattern->ptr16[row + 1u] : pattern->ptr32[row + 1u];
        float acc = quant->bias[row];
        uint32_t k;
        if (pattern->col8 != 0) {
            for (k = begin; k < end; ++k) {
                acc += values[k] * in[pattern->col8[k]];
            }
        } else {
            for (k = begin; k < end; ++k) {
                acc += values[k] * in[pattern->col16[k]];
            }
        }
        out[row] = darb_output_f32(acc, quant->activation);
    }
}
