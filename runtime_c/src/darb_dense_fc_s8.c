/*
 * darb_dense_fc_s8.c - fully connected layer, dense weights, int8 (int32 accumulator).
 *
 * The unpruned baseline: every weight of the row-major matrix, zeros included.
 * On cores with the DSP extension two rows are computed together, four
 * columns at a time: one load of four inputs and of four weights per row,
 * SXTB16 to int16 pairs, two SMLAD per row (CMSIS-NN's approach); the sums
 * are the same integers, so the outputs are bit-identical with the plain loop.
 * On cores with MVE (Cortex-M55) each row takes eight columns per vector step.
 */
#include "darb.h"
#include "darb_internal.h"

static void darb_dense_row_s8(const int8_t *w, uint32_t cols, uint32_t row, const darb_quant_s8 *quant,
                              const int8_t *in, int8_t *out)
{
    int32_t acc = quant->bias[row];
    uint32_t j;
    for (j = 0; j < cols; ++j) {
        acc += (int32_t)w[j] * in[j];
    }
    out[row] = darb_output_s8_fast(acc, row, quant);
}

void darb_dense_fc_s8(const darb_dense_shape *shape, const int8_t *weights,
                      const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    const uint32_t cols = shape->cols;
    uint32_t row = 0;
#if defined(DARB_HAVE_MVE)
    /* MVE (Cortex-M55): eight columns per step, int8 widened to int16 lanes
     * as they load, VMLADAVA adds the eight products */
    for (; row < shape->rows; ++row) {
        const int8_t *w = weights + row * cols;
        int32_t acc = quant->bias[row];
        uint32_t j = 0;
        for (; j + 8u <= cols; j += 8u) {
            acc = vmladavaq_s16(acc, vldrbq_s16(in + j), vldrbq_s16(w + j));
        }
        for (; j < cols; ++j) {
            acc += (int32_t)w[j] * in[j];
        }
        out[row] = darb_output_s8_fast(acc, row, quant);
    }
#elif defined(DARB_HAVE_DSP)
    for (; row + 2u <= shape->rows; row += 2u) {
        const int8_t *w0 = weights + row * cols;
        const int8_t *w1 = w0 + cols;
        int32_t acc0 = quant->bias[row];
        int32_t acc1 = quant->bias[row + 1u];
        uint32_t j = 0;
        for (; j + 4u <= cols; j += 4u) {
            const uint32_t x = darb_load32(in + j);
            const uint32_t x02 = darb_sxtb16(x);
            const uint32_t x13 = darb_sxtb16_ror8(x);
            const uint32_t a = darb_load32(w0 + j);
            const uint32_t b = darb_load32(w1 + j);
            acc0 = darb_smlad(darb_sxtb16(a), x02, acc0);
            acc0 = darb_smlad(darb_sxtb16_ror8(a), x13, acc0);
            acc1 = darb_smlad(darb_sxtb16(b), x02, acc1);
            acc1 = darb_smlad(darb_sxtb16_ror8(b), x13, acc1);
        }
        for (; j < cols; ++j) {
            acc0 += (int32_t)w0[j] * in[j];
            acc1 += (int32_t)w1[j] * in[j];
        }
        out[row] = darb_output_s8_fast(acc0, row, quant);
        out[row + 1u] = darb_output_s8_fast(acc1, row + 1u, quant);
    }
#endif
    for (; row < shape->rows; ++row) {
        darb_dense_row_s8(weights + row * cols, cols, row, quant, in, out);
    }
}
