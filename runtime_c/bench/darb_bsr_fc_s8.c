/*
 * darb_bsr_fc_s8.c - fully connected int8 layer in block-sparse rows (BSR)
 * with 4 x 4 blocks: a baseline for `darbgen bench mcu`, not a darbgen
 * kernel. Rows and columns are multiples of 4.
 *
 *   row_ptr[br] .. row_ptr[br + 1] - 1   the kept blocks of block row br
 *   col_idx[k]                           block column of block k (columns 4 col .. 4 col + 3)
 *   values[16 k .. 16 k + 15]            block k, row-major
 *
 * Output stage: darb_output_s8, called (inlining it here, as darbgen's kernels
 * do, measured slower: four accumulators leave too few registers).
 */
#include "darb.h"
#include "darb_bsr.h"

void darb_bsr4_fc_s8(const darb_bsr4_pattern *pattern, const int8_t *values, const darb_quant_s8 *quant,
                     const int8_t *in, int8_t *out)
{
    uint32_t br;
    for (br = 0; br < pattern->block_rows; ++br) {
        const uint32_t row = 4u * br;
        int32_t acc0 = quant->bias[row];
        int32_t acc1 = quant->bias[row + 1u];
        int32_t acc2 = quant->bias[row + 2u];
        int32_t acc3 = quant->bias[row + 3u];
        uint32_t k;
        for (k = pattern->row_ptr[br]; k < pattern->row_ptr[br + 1u]; ++k) {
            const int8_t *x = in + 4u * pattern->col_idx[k];
            const int8_t *v = values + 16u * k;
            const int32_t x0 = x[0];
            const int32_t x1 = x[1];
            const int32_t x2 = x[2];
            const int32_t x3 = x[3];
            acc0 += v[0] * x0 + v[1] * x1 + v[2] * x2 + v[3] * x3;
            acc1 += v[4] * x0 + v[5] * x1 + v[6] * x2 + v[7] * x3;
            acc2 += v[8] * x0 + v[9] * x1 + v[10] * x2 + v[11] * x3;
            acc3 += v[12] * x0 + v[13] * x1 + v[14] * x2 + v[15] * x3;
        }
        out[row] = darb_output_s8(acc0, (int32_t)row, quant);
        out[row + 1u] = darb_output_s8(acc1, (int32_t)row + 1, quant);
        out[row + 2u] = darb_output_s8(acc2, (int32_t)row + 2, quant);
        out[row + 3u] = darb_output_s8(acc3, (int32_t)row + 3, quant);
    }
}
