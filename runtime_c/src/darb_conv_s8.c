/*
 * darb_conv_s8.c - 2-D convolution, int8 (int32 accumulator), direct over
 * channel-first tensors (no im2col buffer), in the three weight formats.
 *
 * Every output value is one row of the (out, in * kh * kw) weight matrix
 * applied at one output pixel: acc = bias + sum over kept columns, in
 * increasing order, of w * input (pad_value outside the image), as in
 * darbgen/reference.py.
 */
#include "darb.h"
#include "darb_internal.h"

static int32_t darb_conv_input_s8(const darb_conv_geometry *g, const int8_t *in, uint32_t col, uint32_t oy, uint32_t ox)
{
    const darb_conv_tap t = darb_conv_locate(g, col, oy, ox);
    return darb_at_s8(in, g->in_h, g->in_w, g->pad_value, t.c, t.iy, t.ix);
}

void darb_conv_s8(const darb_pattern *pattern, const darb_conv_geometry *geometry, const int8_t *values,
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
        darb_bits_init(&reader, bits != 0u ? pattern->offsets + pattern->class_start[c] : pattern->offsets, bits);
        for (i = 0; i < pattern->class_rows[c]; ++i, ++visited) {
            const uint32_t row = pattern->row_order[visited];
            const darb_bit_reader row_start = reader;
            uint32_t oy;
            uint32_t ox;
            for (oy = 0; oy < geometry->out_h; ++oy) {
                for (ox = 0; ox < geometry->out_w; ++ox) {
                    int32_t acc = quant->bias[row];
                    uint32_t k;
                    uint32_t start = 0;
                    reader = row_start; /* every pixel reads the row's offsets again */
                    for (k = 0; k < nblocks; ++k, start += block) {
                        acc += (int32_t)w[k] * darb_conv_input_s8(geometry, in, start + darb_bits_next(&reader), oy, ox);
                    }
                    out[(row * geometry->out_h + oy) * geometry->out_w + ox] = darb_output_s8_fast(acc, row, quant);
                }
            }
            w += nblocks;
        }
    }
}

void darb_csr_conv_s8(const darb_csr_pattern *pattern, const darb_conv_geometry *geometry,
                        const int8_t *values, const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    uint32_t row;
    for (row = 0; row < pattern->rows; ++row) {
        const uint32_t begin = pattern->ptr16 != 0 ? pattern->ptr16[row] : pattern->ptr32[row];
        const uint32_t end = pattern->ptr16 != 0 ? pattern->ptr16[row + 1u] : pattern->ptr32[row + 1u];
        uint32_t oy;
        uint32_t ox;
        for (oy = 0; oy < geometry->out_h; ++oy) {
            for (ox = 0; ox < geometry->out_w; ++ox) {
                int32_t acc = quant->bias[row];
                uint32_t k;
                for (k = begin; k < end; ++k) {
                    const uint32_t col = pattern->col8 != 0 ? pattern->col8[k] : pattern->col16[k];
                    acc += (int32_t)values[k] * darb_conv_input_s8(geometry, in, col, oy, ox);
                }
                out[(row * geometry->out_h + oy) * geometry->out_w + ox] = darb_output_s8_fast(acc, row, quant);
            }
        }
    }
}

void darb_dense_conv_s8(const darb_dense_shape *shape, const darb_conv_geometry *geometry,
                          const int8_t *weights, const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    uint32_t row;
    for (row = 0; row < shape->rows; ++row) {
        const int8_t *w = weights + row * shape->cols;
        uint32_t oy;
        uint32_t ox;
        for (oy = 0; oy < geometry->out_h; ++oy) {
            for (ox = 0; ox < geometry->out_w; ++ox) {
                int32_t acc = quant->bias[row];
                uint32_t j;
                for (j = 0; j < shape->cols; ++j) {
                    acc += (int32_t)w[j] * darb_conv_input_s8(geometry, in, j, oy, ox);
                }
                out[(row * geometry->out_h + oy) * geometry->out_w + ox] = darb_output_s8_fast(acc, row, quant);
            }
        }
    }
}
