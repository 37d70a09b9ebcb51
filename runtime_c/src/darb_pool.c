/*
 * darb_pool.c - max and average pooling over channel-first tensors.
 *
 * The window of output pixel (oy, ox) covers input rows oy * stride_h -
 * pad_top + ky and columns ox * stride_w - pad_left + kx; positions outside
 * the input are skipped (an average divides by the real positions, as
 * TFLite). Integer averages round half away from zero; the output keeps the
 * input's quantization. darbgen/reference.py holds the NumPy twin.
 */
#include <float.h>

#include "darb.h"

/* Visit every output pixel's window: BODY sees c, oy, ox, iy, ix. */
#define DARB_POOL_WINDOWS(g, PIXEL_START, BODY, PIXEL_END)                                               \
    do {                                                                                                  \
        uint32_t c_, oy_, ox_, ky_, kx_;                                                                  \
        for (c_ = 0; c_ < (g)->in_c; ++c_) {                                                              \
            for (oy_ = 0; oy_ < (g)->out_h; ++oy_) {                                                      \
                for (ox_ = 0; ox_ < (g)->out_w; ++ox_) {                                                  \
                    PIXEL_START;                                                                          \
                    for (ky_ = 0; ky_ < (g)->kh; ++ky_) {                                                 \
                        const int32_t iy_ = (int32_t)(oy_ * (g)->stride_h + ky_) - (int32_t)(g)->pad_top;  \
                        for (kx_ = 0; kx_ < (g)->kw; ++kx_) {                                             \
                            const int32_t ix_ =                                                           \
                                (int32_t)(ox_ * (g)->stride_w + kx_) - (int32_t)(g)->pad_left;            \
                            if (iy_ >= 0 && iy_ < (int32_t)(g)->in_h && ix_ >= 0 && ix_ < (int32_t)(g)->in_w) { \
                                const uint32_t at_ = (c_ * (g)->in_h + (uint32_t)iy_) * (g)->in_w + (uint32_t)ix_; \
                                BODY;                                                                     \
                            }                                                                             \
                        }                                                                                 \
                    }                                                                                     \
                    {                                                                                     \
                        const uint32_t o_ = (c_ * (g)->out_h + oy_) * (g)->out_w + ox_;                    \
                        PIXEL_END;                                                                        \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    } while (0)

void darb_maxpool_s8(const darb_conv_geometry *g, const int8_t *in, int8_t *out)
{
    int32_t m;
    DARB_POOL_WINDOWS(g, m = -128, if (in[at_] > m) { m = in[at_]; }, out[o_] = (int8_t)m);
}

void darb_maxpool_s16(const darb_conv_geometry *g, const int16_t *in, int16_t *out)
{
    int32_t m;
    DARB_POOL_WINDOWS(g, m = -32768, if (in[at_] > m) { m = in[at_]; }, out[o_] = (int16_t)m);
}

void darb_maxpool_f32(const darb_conv_geometry *g, const float *in, float *out)
{
    float m;
    DARB_POOL_WINDOWS(g, m = -FLT_MAX, if (in[at_] > m) { m = in[at_]; }, out[o_] = m);
}

void darb_avgpool_s8(const darb_conv_geometry *g, const int8_t *in, int8_t *out)
{
    int32_t sum;
    int32_t count;
    DARB_POOL_WINDOWS(g, (sum = 0, count = 0), (sum += in[at_], ++count),
                      out[o_] = (int8_t)(sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count));
}

void darb_avgpool_s16(const darb_conv_geometry *g, const int16_t *in, int16_t *out)
{
    int64_t sum;
    int64_t count;
    DARB_POOL_WINDOWS(g, (sum = 0, count = 0), (sum += in[at_], ++count),
                      out[o_] = (int16_t)(sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count));
}

void darb_avgpool_f32(const darb_conv_geometry *g, const float *in, float *out)
{
    float sum;
    int32_t count;
    DARB_POOL_WINDOWS(g, (sum = 0.0f, count = 0), (sum += in[at_], ++count), out[o_] = sum / (float)count);
}
