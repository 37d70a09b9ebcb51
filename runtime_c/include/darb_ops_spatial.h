/*
 * darb_ops_spatial.h - depthwise convolution, pooling and MEAN over NHWC images.
 *
 * Tensors are one image in NHWC order without the batch dimension:
 * in[(y * in_w + x) * channels + c]. The int8 kernels are bit-exact with
 * TensorFlow Lite Micro's reference kernels (DepthwiseConvPerChannel,
 * AveragePool, MaxPool, QuantizedMeanOrSum); the float32 kernels do the same
 * float operations in the same order as TFLite's reference kernels and as
 * darbgen/ops/depthwise.py and darbgen/ops/pool.py, so with -ffp-contract=off
 * they agree with the NumPy reference bit for bit.
 *
 * Window positions outside the image are skipped (never read, never counted).
 * Code written by darbgen holds the geometry and quantization structs as
 * static const data; nothing here allocates memory, and the kernels do not
 * check their arguments: the generator proves the ranges below.
 */
#ifndef DARB_OPS_SPATIAL_H
#define DARB_OPS_SPATIAL_H

#include <stdint.h>

#include "darb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- depthwise convolution (DEPTHWISE_CONV_2D) ----------------------------- */

/* Output pixel (oy, ox), tap (ky, kx) reads input row
 * oy * stride_h + ky * dil_h - pad_top and column ox * stride_w + kx * dil_w -
 * pad_left. Output channel oc = c * mult + m reads input channel c. All fields
 * >= 1 except the pads (>= 0); in_c * mult <= 65535; out_h, out_w are those
 * of the model (TFLite "same" / "valid" or explicit padding, see
 * DepthwiseGeometry in darbgen/ops/depthwise.py). */
typedef struct {
    uint16_t in_h;
    uint16_t in_w;
    uint16_t in_c;
    uint16_t mult;          /* depth multiplier */
    uint16_t kh;
    uint16_t kw;
    uint16_t stride_h;
    uint16_t stride_w;
    uint16_t dil_h;
    uint16_t dil_w;
    uint16_t pad_top;
    uint16_t pad_left;
    uint16_t out_h;
    uint16_t out_w;
} darb_dw_geometry;

/* Output stage of an int8 depthwise convolution, per output channel. */
typedef struct {
    const int32_t *bias;        /* [in_c * mult] int32, or NULL for none */
    const int32_t *multiplier;  /* [in_c * mult] Q31 multiplier, 0 .. 2^31 - 1 */
    const int8_t *shift;        /* [in_c * mult] exponent -31..30, positive = left shift */
    int32_t input_offset;       /* minus the input zero point: -127..128 */
    int32_t output_offset;      /* output zero point: -128..127 */
    int32_t act_min;            /* clamp, -128 <= act_min <= act_max <= 127 */
    int32_t act_max;
} darb_dw_quant_s8;

/* Output stage of a float32 depthwise convolution. */
typedef struct {
    const float *bias;          /* [in_c * mult], or NULL for none (0.0f is added) */
    float act_min;              /* clamp: -FLT_MAX / FLT_MAX for none, 0 / FLT_MAX for relu, 0 / 6 for relu6 */
    float act_max;
} darb_dw_quant_f32;

/*
 * darb_depthwise_s8 - int8 depthwise convolution, per-channel requantization.
 *   g        geometry (above).
 *   weights  [kh][kw][in_c * mult] int8 (TFLite's [1, kh, kw, C * mult] filter).
 *   q        bias, multipliers, shifts, offsets and clamp (above).
 *   in       [in_h][in_w][in_c] int8.
 *   out      [out_h][out_w][in_c * mult] int8; must not overlap in.
 * For every output value: acc = sum over in-image taps of w * (x + input_offset),
 * plus bias (int32; the generator proves |bias| + max|x + input_offset| *
 * sum|w| < 2^31, also after the requantization's left shift), then
 * darb_requantize_fast(acc, multiplier, shift) + output_offset, clamped.
 */
void darb_depthwise_s8(const darb_dw_geometry *g, const int8_t *weights, const darb_dw_quant_s8 *q,
                       const int8_t *in, int8_t *out);

/*
 * darb_depthwise_f32 - float32 depthwise convolution.
 *   weights  [kh][kw][in_c * mult] float; in [in_h][in_w][in_c]; out [out_h][out_w][in_c * mult],
 *   no overlap.
 * For every output value: t = 0.0f; t += x * w over the in-image taps in
 * (ky, kx) order; v = t + bias (or t + 0.0f); v = v < act_min ? act_min : v;
 * v = v > act_max ? act_max : v.
 */
void darb_depthwise_f32(const darb_dw_geometry *g, const float *weights, const darb_dw_quant_f32 *q,
                        const float *in, float *out);

/* ---- pooling (AVERAGE_POOL_2D, MAX_POOL_2D) -------------------------------- */

/* Output pixel (oy, ox) covers input rows oy * stride_h - pad_top + ky
 * (0 <= ky < kh) and columns ox * stride_w - pad_left + kx that lie inside
 * the image. All fields >= 1 except the pads, which are smaller than the
 * window (pad_top < kh, pad_left < kw) and such that every window holds at
 * least one image position; kh * kw <= 8421504. Output channels = in_c. */
typedef struct {
    uint16_t in_h;
    uint16_t in_w;
    uint16_t in_c;
    uint16_t kh;
    uint16_t kw;
    uint16_t stride_h;
    uint16_t stride_w;
    uint16_t pad_top;
    uint16_t pad_left;
    uint16_t out_h;
    uint16_t out_w;
} darb_pool_geometry;

/*
 * darb_avgpool_nhwc_s8 - int8 average pooling; the output keeps the input's
 * scale and zero point (as TFLite requires).
 *   in [in_h][in_w][in_c], out [out_h][out_w][in_c], no overlap;
 *   act_min, act_max: clamp, -128 <= act_min <= act_max <= 127.
 * out = sum > 0 ? (sum + n / 2) / n : (sum - n / 2) / n (C division) over the
 * n in-image positions of the window, then clamped.
 */
void darb_avgpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out);

/*
 * darb_avgpool_nhwc_f32 - float32 average pooling: t = 0.0f, t += x in (ky, kx)
 * order over the in-image positions, t / (float)n, then the clamp [act_min, act_max].
 */
void darb_avgpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out);

/*
 * darb_maxpool_nhwc_s8 - int8 max pooling (output quantization = input's):
 * the largest in-image value, then clamped to [act_min, act_max] (-128..127).
 */
void darb_maxpool_nhwc_s8(const darb_pool_geometry *g, int32_t act_min, int32_t act_max, const int8_t *in,
                          int8_t *out);

/*
 * darb_maxpool_nhwc_f32 - float32 max pooling as TFLite: m = -FLT_MAX, then
 * m = m < x ? x : m over the in-image positions (NaN inputs are passed over),
 * then the clamp.
 */
void darb_maxpool_nhwc_f32(const darb_pool_geometry *g, float act_min, float act_max, const float *in, float *out);

/* ---- MEAN over H and W ------------------------------------------------------ */

/* in_h * in_w <= 8421504 values are averaged per channel. The output is
 * [channels] (TFLite's [1, 1, 1, C] or [1, C]: the same bytes). */
typedef struct {
    uint16_t in_h;
    uint16_t in_w;
    uint16_t channels;
} darb_mean_geometry;

/* int8 MEAN parameters, from darbgen.ops.pool.mean_params_int8 (TFLM's
 * Prepare and its 1 / count fold). */
typedef struct {
    int32_t input_zero_point;   /* -128..127 */
    int32_t output_zero_point;  /* -128..127 */
    int32_t multiplier;         /* 0 .. 2^31 - 1, the 1 / (in_h * in_w) folded in */
    int32_t shift;              /* -31..30, positive = left; (255 * in_h * in_w) << shift < 2^31 */
} darb_mean_quant_s8;

/*
 * darb_mean_s8 - int8 MEAN over H and W, bit-exact with TFLM:
 *   out[c] = saturate_int8(darb_requantize_fast(sum - input_zero_point * n,
 *            multiplier, shift) + output_zero_point), n = in_h * in_w,
 *   sum = the int32 sum of in[.][.][c].
 *   in [in_h][in_w][channels], out [channels], no overlap.
 */
void darb_mean_s8(const darb_mean_geometry *g, const darb_mean_quant_s8 *q, const int8_t *in, int8_t *out);

/*
 * darb_mean_f32 - float32 MEAN over H and W: t = 0.0f, t += x in (h, w) order,
 * out[c] = t / (float)(in_h * in_w).
 */
void darb_mean_f32(const darb_mean_geometry *g, const float *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* DARB_OPS_SPATIAL_H */
