/*
 * darb_depthwise_chw.c - depthwise 2-D convolution over channel-first tensors
 * (the chain pipeline's layout), int8, int16 (16x8) and float32.
 *
 * Output channel o filters input channel o / mult with its own kh x kw
 * kernel, weights[o][ky][kx]: the kernel holds channels x mult x kh x kw
 * weights, never a full convolution's zeros. Each output is
 *   acc = bias[o] + sum over (ky, kx) in order of w * input
 * with input = pad_value outside the image (the int8 input zero point, whose
 * product the generator folds out of the bias, so a padded tap adds nothing);
 * then the layer's output stage, as darbgen/reference.py computes it.
 */
#include "darb.h"

void darb_depthwise_chw_s8(const darb_conv_geometry *g, uint32_t mult, const int8_t *weights,
                           const darb_quant_s8 *quant, const int8_t *in, int8_t *out)
{
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    const uint32_t channels = (uint32_t)g->in_c * mult;
    uint32_t o, oy, ox, ky, kx;
    for (o = 0; o < channels; ++o) {
        const int32_t c = (int32_t)(o / mult);
        const int8_t *w = weights + o * taps;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
                const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
                int32_t acc = quant->bias[o];
                for (ky = 0; ky < g->kh; ++ky) {
                    for (kx = 0; kx < g->kw; ++kx) {
                        acc += (int32_t)w[ky * g->kw + kx] *
                               darb_at_s8(in, g->in_h, g->in_w, g->pad_value, c, y0 + (int32_t)(ky * g->dil_h),
                                          x0 + (int32_t)(kx * g->dil_w));
                    }
                }
                out[(o * g->out_h + oy) * g->out_w + ox] = darb_output_s8_fast(acc, o, quant);
            }
        }
    }
}

void darb_depthwise_chw_s16(const darb_conv_geometry *g, uint32_t mult, const int8_t *weights,
                            const darb_quant_s16 *quant, const int16_t *in, int16_t *out)
{
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    const uint32_t channels = (uint32_t)g->in_c * mult;
    uint32_t o, oy, ox, ky, kx;
    for (o = 0; o < channels; ++o) {
        const int32_t c = (int32_t)(o / mult);
        const int8_t *w = weights + o * taps;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
                const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
                int64_t acc = quant->bias[o];
                for (ky = 0; ky < g->kh; ++ky) {
                    for (kx = 0; kx < g->kw; ++kx) {
                        acc += (int64_t)w[ky * g->kw + kx] *
                               darb_at_s16(in, g->in_h, g->in_w, c, y0 + (int32_t)(ky * g->dil_h),
                                           x0 + (int32_t)(kx * g->dil_w));
                    }
                }
                out[(o * g->out_h + oy) * g->out_w + ox] = darb_output_s16(acc, (int32_t)o, quant);
            }
        }
    }
}

void darb_depthwise_chw_f32(const darb_conv_geometry *g, uint32_t mult, const float *weights,
                            const darb_quant_f32 *quant, const float *in, float *out)
{
    const uint32_t taps = (uint32_t)g->kh * g->kw;
    const uint32_t channels = (uint32_t)g->in_c * mult;
    uint32_t o, oy, ox, ky, kx;
    for (o = 0; o < channels; ++o) {
        const int32_t c = (int32_t)(o / mult);
        const float *w = weights + o * taps;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
                const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
                float acc = quant->bias[o];
                for (ky = 0; ky < g->kh; ++ky) {
                    for (kx = 0; kx < g->kw; ++kx) {
                        acc += w[ky * g->kw + kx] *
                               darb_at_f32(in, g->in_h, g->in_w, c, y0 + (int32_t)(ky * g->dil_h),
                                           x0 + (int32_t)(kx * g->dil_w));
                    }
                }
                out[(o * g->out_h + oy) * g->out_w + ox] = darb_output_f32(acc, quant->activation);
            }
        }
    }
}
