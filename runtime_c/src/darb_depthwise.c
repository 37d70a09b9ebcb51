/*
 * darb_depthwise.c - depthwise convolution over NHWC images (int8 and float32).
 *
 * One output pixel at a time; its output channels in blocks of DARB_DW_BLOCK
 * accumulators, each block running over the in-image taps in (ky, kx) order
 * (the taps outside the image are cut from the loop bounds once per pixel, so
 * the inner loops neither test nor divide). For a given output value the
 * operations are those of TFLM's reference kernels (see darb_ops_spatial.h);
 * darbgen/ops/depthwise.py is the NumPy twin.
 */
#include "darb_ops_spatial.h"

#define DARB_DW_BLOCK 32u

/* The taps k in [*first, *end) of a window starting at `origin` with `taps`
 * taps `dil` apart that fall inside [0, size). */
static void darb_dw_tap_range(int32_t origin, uint32_t taps, uint32_t dil, uint32_t size, uint32_t *first,
                              uint32_t *end)
{
    uint32_t k0 = 0u;
    uint32_t k1 = taps;
    while (k0 < taps && origin + (int32_t)(k0 * dil) < 0) {
        ++k0;
    }
    while (k1 > k0 && origin + (int32_t)((k1 - 1u) * dil) >= (int32_t)size) {
        --k1;
    }
    *first = k0;
    *end = k1;
}

void darb_depthwise_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                       const int8_t *in, int8_t *out)
{
    const uint32_t in_c = g->in_c;
    const uint32_t mult = g->mult;
    const uint32_t out_c = in_c * mult;
    const uint32_t row_stride = (uint32_t)g->in_w * in_c;
    const int32_t offset = q->input_offset;
    int32_t acc[DARB_DW_BLOCK];
    uint32_t oy;
    uint32_t ox;

    for (oy = 0u; oy < g->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
        uint32_t ky0;
        uint32_t ky1;
        darb_dw_tap_range(iy0, g->kh, g->dil_h, g->in_h, &ky0, &ky1);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * out_c;
            uint32_t kx0;
            uint32_t kx1;
            uint32_t oc0;
            uint32_t c0 = 0u; /* input channel and multiplier index of output channel oc0 */
            uint32_t m0 = 0u;
            darb_dw_tap_range(ix0, g->kw, g->dil_w, g->in_w, &kx0, &kx1);
            for (oc0 = 0u; oc0 < out_c; oc0 += DARB_DW_BLOCK) {
                const uint32_t n = out_c - oc0 < DARB_DW_BLOCK ? out_c - oc0 : DARB_DW_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0;
                }
                for (ky = ky0; ky < ky1; ++ky) {
                    const int8_t *row = in + (uint32_t)(iy0 + (int32_t)(ky * g->dil_h)) * row_stride;
                    const int8_t *wrow = weights + ((uint32_t)ky * g->kw) * out_c + oc0;
                    for (kx = kx0; kx < kx1; ++kx) {
                        const int8_t *px = row + (uint32_t)(ix0 + (int32_t)(kx * g->dil_w)) * in_c;
                        const int8_t *pw = wrow + kx * out_c;
                        if (mult == 1u) {
                            const int8_t *pc = px + oc0;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += (int32_t)pw[j] * ((int32_t)pc[j] + offset);
                            }
                        } else {
                            uint32_t c = c0;
                            uint32_t m = m0;
                            int32_t xv = (int32_t)px[c] + offset;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += (int32_t)pw[j] * xv;
                                if (++m == mult) {
                                    m = 0u;
                                    ++c;
                                    if (j + 1u < n) {
                                        xv = (int32_t)px[c] + offset;
                                    }
                                }
                            }
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const uint32_t oc = oc0 + j;
                    const int32_t a = q->bias != 0 ? acc[j] + q->bias[oc] : acc[j];
                    int32_t v = darb_requantize_fast(a, q->multiplier[oc], q->shift[oc]) + q->output_offset;
                    v = v < q->act_min ? q->act_min : v;
                    v = v > q->act_max ? q->act_max : v;
                    o[oc] = (int8_t)v;
                }
                m0 += n;
                while (m0 >= mult) {
                    m0 -= mult;
                    ++c0;
                }
            }
        }
    }
}

void darb_depthwise_f32(const darb_dw_geometry *g, const float *weights, const darb_dw_quant_f32 *q,
                        const float *in, float *out)
{
    const uint32_t in_c = g->in_c;
    const uint32_t mult = g->mult;
    const uint32_t out_c = in_c * mult;
    const uint32_t row_stride = (uint32_t)g->in_w * in_c;
    float acc[DARB_DW_BLOCK];
    uint32_t oy;
    uint32_t ox;

    for (oy = 0u; oy < g->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
        uint32_t ky0;
        uint32_t ky1;
        darb_dw_tap_range(iy0, g->kh, g->dil_h, g->in_h, &ky0, &ky1);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
            float *o = out + ((uint32_t)oy * g->out_w + ox) * out_c;
            uint32_t kx0;
            uint32_t kx1;
            uint32_t oc0;
            uint32_t c0 = 0u;
            uint32_t m0 = 0u;
            darb_dw_tap_range(ix0, g->kw, g->dil_w, g->in_w, &kx0, &kx1);
            for (oc0 = 0u; oc0 < out_c; oc0 += DARB_DW_BLOCK) {
                const uint32_t n = out_c - oc0 < DARB_DW_BLOCK ? out_c - oc0 : DARB_DW_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0.0f;
                }
                for (ky = ky0; ky < ky1; ++ky) {
                    const float *row = in + (uint32_t)(iy0 + (int32_t)(ky * g->dil_h)) * row_stride;
                    const float *wrow = weights + ((uint32_t)ky * g->kw) * out_c + oc0;
                    for (kx = kx0; kx < kx1; ++kx) {
                        const float *px = row + (uint32_t)(ix0 + (int32_t)(kx * g->dil_w)) * in_c;
                        const float *pw = wrow + kx * out_c;
                        if (mult == 1u) {
                            const float *pc = px + oc0;
                            for (j = 0u; j < n; ++j) {
                                acc[j] += pc[j] * pw[j];
                            }
                        } else {
                            uint32_t c = c0;
                            uint32_t m = m0;
                            float xv = px[c];
                            for (j = 0u; j < n; ++j) {
                                acc[j] += xv * pw[j];
                                if (++m == mult) {
                                    m = 0u;
                                    ++c;
                                    if (j + 1u < n) {
                                        xv = px[c];
                                    }
                                }
                            }
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const uint32_t oc = oc0 + j;
                    float v = acc[j] + (q->bias != 0 ? q->bias[oc] : 0.0f);
                    v = v < q->act_min ? q->act_min : v;
                    v = v > q->act_max ? q->act_max : v;
                    o[oc] = v;
                }
                m0 += n;
                while (m0 >= mult) {
                    m0 -= mult;
                    ++c0;
                }
            }
        }
    }
}
