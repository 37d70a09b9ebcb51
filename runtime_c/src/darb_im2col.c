/*
 * darb_im2col.c - the input patch of one output pixel of an NHWC convolution
 * (darb_graph.h). Whole rows of in_c channels are copied at once.
 */
#include <string.h>

#include "darb_graph.h"

void darb_im2col_s8(const darb_window *g, const int8_t *in, uint32_t oy, uint32_t ox, int32_t pad_value,
                    int8_t *patch)
{
    const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
    const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
    const uint32_t c = g->in_c;
    uint32_t ky, kx;
    for (ky = 0; ky < g->kh; ++ky) {
        const int32_t iy = y0 + (int32_t)(ky * g->dil_h);
        for (kx = 0; kx < g->kw; ++kx) {
            const int32_t ix = x0 + (int32_t)(kx * g->dil_w);
            if (iy < 0 || iy >= (int32_t)g->in_h || ix < 0 || ix >= (int32_t)g->in_w) {
                memset(patch, (int8_t)pad_value, c);
            } else {
                memcpy(patch, in + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c, c);
            }
            patch += c;
        }
    }
}

void darb_im2col_f32(const darb_window *g, const float *in, uint32_t oy, uint32_t ox, float *patch)
{
    const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
    const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
    const uint32_t c = g->in_c;
    uint32_t ky, kx, i;
    for (ky = 0; ky < g->kh; ++ky) {
        const int32_t iy = y0 + (int32_t)(ky * g->dil_h);
        for (kx = 0; kx < g->kw; ++kx) {
            const int32_t ix = x0 + (int32_t)(kx * g->dil_w);
            if (iy < 0 || iy >= (int32_t)g->in_h || ix < 0 || ix >= (int32_t)g->in_w) {
                for (i = 0; i < c; ++i) {
                    patch[i] = 0.0f;
                }
            } else {
                memcpy(patch, in + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c, c * sizeof(float));
            }
            patch += c;
        }
    }
}
