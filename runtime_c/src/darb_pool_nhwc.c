/*
 * darb_pool_nhwc.c - average and max pooling and MEAN over H and W, NHWC images.
 *
 * One output pixel at a time; channels in blocks of DARB_POOL_BLOCK; the
 * window is cut to the image once per pixel (TFLM's filter_{x,y}_{start,end}),
 * so the inner loops run over contiguous channels without tests. The
 * operations on every output value are TFLM's reference kernels' (see
 * darb_ops_spatial.h); darbgen/ops/pool.py is the NumPy twin.
 */
#include <float.h>

#include "darb_ops_spatial.h"

#define DARB_POOL_BLOCK 32u

/* The window of one output position along one axis, cut to [0, size). */
typedef struct {
    int32_t origin; /* first input position of the uncut window (may be < 0) */
    uint32_t first; /* window offsets [first, end) lie inside the image */
    uint32_t end;
} darb_pool_span;

static darb_pool_span darb_pool_cut(uint32_t o, uint32_t stride, uint32_t pad, uint32_t k, uint32_t size)
{
    darb_pool_span s;
    const int32_t room = (int32_t)size;
    s.origin = (int32_t)(o * stride) - (int32_t)pad;
    s.first = s.origin < 0 ? (uint32_t)(-s.origin) : 0u;
    s.end = room - s.origin < (int32_t)k ? (uint32_t)(room - s.origin) : k;
    return s;
}

/* Pointer to input (y, x) channel 0. */
static const int8_t *darb_px_s8(const darb_pool_geometry *g, const int8_t *in, int32_t y, int32_t x)
{
    return in + ((uint32_t)y * g->in_w + (uint32_t)x) * g->in_c;
}

static const float *darb_px_f32(const darb_pool_geometry *g, const float *in, int32_t y, int32_t x)
{
    return in + ((uint32_t)y * g->in_w + (uint32_t)x) * g->in_c;
}

void darb_avgpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out)
{
    const uint32_t channels = g->in_c;
    int32_t acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            const int32_t count = (int32_t)((sy.end - sy.first) * (sx.end - sx.first));
            const int32_t half = count / 2;
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const int8_t *p =
                            darb_px_s8(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] += p[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    const int32_t s = acc[j];
                    int32_t v = s > 0 ? (s + half) / count : (s - half) / count;
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = (int8_t)v;
                }
            }
        }
    }
}

void darb_avgpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out)
{
    const uint32_t channels = g->in_c;
    float acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            const float count = (float)((sy.end - sy.first) * (sx.end - sx.first));
            float *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = 0.0f;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const float *p =
                            darb_px_f32(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] += p[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    float v = acc[j] / count;
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = v;
                }
            }
        }
    }
}

void darb_maxpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out)
{
    const uint32_t channels = g->in_c;
    int32_t acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            int8_t *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = -128;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const int8_t *p =
                            darb_px_s8(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] = p[j] > acc[j] ? p[j] : acc[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    int32_t v = acc[j];
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = (int8_t)v;
                }
            }
        }
    }
}

void darb_maxpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out)
{
    const uint32_t channels = g->in_c;
    float acc[DARB_POOL_BLOCK];
    uint32_t oy;
    uint32_t ox;
    for (oy = 0u; oy < g->out_h; ++oy) {
        const darb_pool_span sy = darb_pool_cut(oy, g->stride_h, g->pad_top, g->kh, g->in_h);
        for (ox = 0u; ox < g->out_w; ++ox) {
            const darb_pool_span sx = darb_pool_cut(ox, g->stride_w, g->pad_left, g->kw, g->in_w);
            float *o = out + ((uint32_t)oy * g->out_w + ox) * channels;
            uint32_t c0;
            for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
                const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
                uint32_t j;
                uint32_t ky;
                uint32_t kx;
                for (j = 0u; j < n; ++j) {
                    acc[j] = -FLT_MAX;
                }
                for (ky = sy.first; ky < sy.end; ++ky) {
                    for (kx = sx.first; kx < sx.end; ++kx) {
                        const float *p =
                            darb_px_f32(g, in, sy.origin + (int32_t)ky, sx.origin + (int32_t)kx) + c0;
                        for (j = 0u; j < n; ++j) {
                            acc[j] = acc[j] < p[j] ? p[j] : acc[j];
                        }
                    }
                }
                for (j = 0u; j < n; ++j) {
                    float v = acc[j];
                    v = v < act_min ? act_min : v;
                    v = v > act_max ? act_max : v;
                    o[c0 + j] = v;
                }
            }
        }
    }
}

void darb_mean_s8(const darb_mean_geometry *g, const darb_mean_quant_s8 *q, const int8_t *in, int8_t *out)
{
    const uint32_t channels = g->channels;
    const uint32_t pixels = (uint32_t)g->in_h * g->in_w;
    const int32_t zero_sum = q->input_zero_point * (int32_t)pixels;
    int32_t acc[DARB_POOL_BLOCK];
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
        const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
        const int8_t *p = in + c0;
        uint32_t j;
        uint32_t i;
        for (j = 0u; j < n; ++j) {
            acc[j] = 0;
        }
        for (i = 0u; i < pixels; ++i, p += channels) {
            for (j = 0u; j < n; ++j) {
                acc[j] += p[j];
            }
        }
        for (j = 0u; j < n; ++j) {
            int32_t v = darb_requantize_fast(acc[j] - zero_sum, q->multiplier, q->shift) + q->output_zero_point;
            v = v < -128 ? -128 : v;
            v = v > 127 ? 127 : v;
            out[c0 + j] = (int8_t)v;
        }
    }
}

void darb_mean_f32(const darb_mean_geometry *g, const float *in, float *out)
{
    const uint32_t channels = g->channels;
    const uint32_t pixels = (uint32_t)g->in_h * g->in_w;
    const float count = (float)pixels;
    float acc[DARB_POOL_BLOCK];
    uint32_t c0;
    for (c0 = 0u; c0 < channels; c0 += DARB_POOL_BLOCK) {
        const uint32_t n = channels - c0 < DARB_POOL_BLOCK ? channels - c0 : DARB_POOL_BLOCK;
        const float *p = in + c0;
        uint32_t j;
        uint32_t i;
        for (j = 0u; j < n; ++j) {
            acc[j] = 0.0f;
        }
        for (i = 0u; i < pixels; ++i, p += channels) {
            for (j = 0u; j < n; ++j) {
                acc[j] += p[j];
            }
        }
        for (j = 0u; j < n; ++j) {
            out[c0 + j] = acc[j] / count;
        }
    }
}
