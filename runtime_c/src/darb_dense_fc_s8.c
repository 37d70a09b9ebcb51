/*
 * darb_dense_fc_s8.c - fully connected layer, dense weights, int8 (int32 accumulator).
 *
 * The unpruned baseline: every weight of the row-major matrix, zeros included.
 */
#include "darb.h"

void darb_dense_fc_s8(const darb_dense_shape *shape, const int8_t *weights,
                      const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    const int8_t *w = weights;
    uint32_t row;
    for (row = 0; row < shape->rows; ++row) {
        int32_t acc = quant->bias[row];
        uint32_t j;
        for (j = 0; j < shape->cols; ++j) {
            acc += (int32_t)w[j] * in[j];
        }
        w += shape->cols;
        out[row] = darb_output_s8_fast(acc, row, quant);
    }
}
