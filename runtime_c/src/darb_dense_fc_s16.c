/*
 * darb_dense_fc_s16.c - fully connected layer, dense weights, int16 activations x int8 weights (int64 accumulator).
 *
 * The unpruned baseline: every weight of the row-major matrix, zeros included.
 */
#include "darb.h"

void darb_dense_fc_s16(const darb_dense_shape *shape, const int8_t *weights,
                       const darb_quant_s16 *quant, const int16_t *in, int16_t *out)
{
    const int8_t *w = weights;
    uint32_t row;
    for (row = 0; row < shape->rows; ++row) {
        int64_t acc = quant->bias[row];
        uint32_t j;
        for (j = 0; j < shape->cols; ++j) {
            acc += (int64_t)w[j] * in[j];
        }
        w += shape->cols;
        out[row] = darb_output_s16(acc, (int32_t)row, quant);
    }
}
