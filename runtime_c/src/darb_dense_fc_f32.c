/*
 * darb_dense_fc_f32.c - fully connected layer, dense weights, float32.
 *
 * The unpruned baseline: every weight of the row-major matrix, zeros included.
 */
#include "darb.h"

void darb_dense_fc_f32(const darb_dense_shape *shape, const float *weights,
                       const darb_quant_f32 *quant, const float *in, float *out)
{
    const float *w = weights;
    uint32_t row;
    for (row = 0; row < shape->rows; ++row) {
        float acc = quant->bias[row];
        uint32_t j;
        for (j = 0; j < shape->cols; ++j) {
            acc += w[j] * in[j];
        }
        w += shape->cols;
        out[row] = darb_output_f32(acc, quant->activation);
    }
}
