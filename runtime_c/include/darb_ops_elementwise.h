/*
 * darb_ops_elementwise.h - elementwise and data-movement kernels, bit-exact
 * with TensorFlow Lite Micro's reference kernels (int8) and with darbgen's
 * NumPy float32 references:
 *
 *   ADD                    darb_add_s8, darb_add_f32
 *   QUANTIZE               darb_quantize_f32_s8 (float -> int8),
 *                          darb_requantize_s8 (int8 -> int8)
 *   DEQUANTIZE             darb_dequantize_s8_f32
 *   CONCATENATION          darb_concat_s8, darb_concat_f32
 *   PAD / PADV2            darb_pad_s8, darb_pad_f32
 *   SOFTMAX                darb_softmax_tflm_s8, darb_softmax_tflm_f32
 *
 * Every kernel works on one sample (a TFLite tensor with batch 1). Parameter
 * structs hold only integers, floats and pointers to const, so generated code
 * keeps them as `static const`. Nothing here allocates memory.
 *
 * The NumPy twins, with the TFLM arithmetic explained step by step, are
 * darbgen/ops/elementwise.py, darbgen/ops/softmax.py and
 * darbgen/ops/shape_ops.py; every parameter below is computed there
 * (add_params, requantize_params, concat_params, softmax_params).
 */
#ifndef DARB_OPS_ELEMENTWISE_H
#define DARB_OPS_ELEMENTWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ADD ------------------------------------------------------------------ */

/* TFLM's OpDataAdd for int8 (add_params in darbgen/ops/elementwise.py). */
typedef struct {
    int32_t input1_offset;      /* -zero point of input 1 */
    int32_t input2_offset;      /* -zero point of input 2 */
    int32_t output_offset;      /* zero point of the output */
    int32_t left_shift;         /* 20 */
    int32_t input1_multiplier;  /* Q31, with input1_shift <= 0 */
    int32_t input1_shift;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;            /* clamp (fused activation), -128 <= act_min <= act_max <= 127 */
    int32_t act_max;
} darb_add_s8_params;

/*
 * out[i] = in1[i] + in2[i] for n int8 values, exactly as TFLM's
 * reference_integer_ops::Add: each input offset by its zero point, shifted
 * left by left_shift, scaled by its multiplier (gemmlowp
 * SaturatingRoundingDoublingHighMul + RoundingDivideByPOT), summed, scaled by
 * the output multiplier, offset by the output zero point and clamped. No
 * broadcasting: both inputs hold n values. out may alias in1 or in2.
 */
void darb_add_s8(const darb_add_s8_params *params, const int8_t *in1, const int8_t *in2, int8_t *out, uint32_t n);

/*
 * out[i] = min(max(in1[i] + in2[i], act_min), act_max) in float32, TFLM's
 * float Add; with no fused activation pass act_min = -FLT_MAX,
 * act_max = FLT_MAX (TFLM's choice: an infinite sum becomes +-FLT_MAX).
 * NaN passes through. out may alias in1 or in2.
 */
void darb_add_f32(const float *in1, const float *in2, float *out, uint32_t n, float act_min, float act_max);

/* ---- QUANTIZE / DEQUANTIZE ------------------------------------------------ */

/*
 * float32 -> int8, TFLM's AffineQuantize: q = round(x / scale) + zero_point
 * (float32 division, rounding half away from zero), clamped to -128..127.
 * Beyond TFLM (whose int32 conversion is undefined there): values out of
 * range saturate, NaN gives zero_point. Needs no libm.
 */
void darb_quantize_f32_s8(const float *in, int8_t *out, uint32_t n, float scale, int32_t zero_point);

/*
 * int8 -> float32, TFLM's Dequantize: x = scale * (q - zero_point) with one
 * float32 rounding (equal to TFLM's double product rounded to float).
 */
void darb_dequantize_s8_f32(const int8_t *in, float *out, uint32_t n, float scale, int32_t zero_point);

/* int8 -> int8 requantization (requantize_params in darbgen/ops/elementwise.py). */
typedef struct {
    int32_t multiplier;         /* Q31 of in_scale / out_scale */
    int32_t shift;              /* -31..23; > 0 shifts left */
    int32_t in_zero_point;
    int32_t out_zero_point;
} darb_requant_s8;

/*
 * TFLM's int8 -> int8 QUANTIZE (reference_ops::Requantize):
 * out = clamp(MultiplyByQuantizedMultiplier(in - in_zp, multiplier, shift)
 * + out_zp). out may alias in.
 */
void darb_requantize_s8(const darb_requant_s8 *params, const int8_t *in, int8_t *out, uint32_t n);

/* ---- CONCATENATION -------------------------------------------------------- */

/*
 * Concatenation of n_inputs tensors along one axis. With `outer` the product
 * of the dimensions before the axis and `inner` the product of those after
 * it, input i contributes copy_size[i] = dims_i[axis] * inner consecutive
 * values per outer step; the output is, for each outer step, the blocks of
 * input 0, 1, ... in order (TFLM's reference_ops::Concatenation).
 */
typedef struct {
    uint32_t outer;
    uint32_t n_inputs;
    const uint32_t *copy_size;  /* [n_inputs] */
} darb_concat_shape;

/*
 * int8 concatenation. requant is NULL when every input has the output's
 * scale and zero point (TFLM's only case: a copy), else [n_inputs]
 * requantizations applied while copying (each exactly TFLM's int8 -> int8
 * QUANTIZE; an identity entry, multiplier 2^30 and shift 1 with equal zero
 * points, copies). in[i] points to input i. out must not overlap the inputs.
 */
void darb_concat_s8(const darb_concat_shape *shape, const darb_requant_s8 *requant, const int8_t *const *in,
                    int8_t *out);
/* float32 concatenation (a copy). */
void darb_concat_f32(const darb_concat_shape *shape, const float *const *in, float *out);

/* ---- PAD ------------------------------------------------------------------ */

#define DARB_PAD_MAX_DIMS 5

/*
 * One sample's geometry: rank dimensions (1..DARB_PAD_MAX_DIMS, no batch),
 * row-major; output dimension d is before[d] + in_dims[d] + after[d].
 * Unused trailing entries are ignored.
 */
typedef struct {
    uint32_t rank;
    uint32_t in_dims[DARB_PAD_MAX_DIMS];
    uint32_t before[DARB_PAD_MAX_DIMS];
    uint32_t after[DARB_PAD_MAX_DIMS];
} darb_pad_geometry;

/*
 * TFLM's Pad: the input copied into the middle of an output filled with
 * pad_value (int8: the output zero point for PAD, the constant for PADV2;
 * float32: 0.0f or the constant). out must not overlap in.
 */
void darb_pad_s8(const darb_pad_geometry *geometry, const int8_t *in, int8_t *out, int8_t pad_value);
void darb_pad_f32(const darb_pad_geometry *geometry, const float *in, float *out, float pad_value);

/* ---- SOFTMAX -------------------------------------------------------------- */

/* TFLM's int8 SoftmaxParams (softmax_params in darbgen/ops/softmax.py). */
typedef struct {
    int32_t input_multiplier;   /* Q31 of min(beta * input_scale * 2^26, 2^31 - 1) */
    int32_t input_left_shift;   /* 1..31 */
    int32_t diff_min;           /* -floor(31 * 2^26 / 2^input_left_shift) */
} darb_softmax_tflm_s8_params;

/*
 * TFLM's int8 softmax (reference_ops::Softmax, gemmlowp fixed point) over
 * `rows` rows of `depth` values (depth 1..4095); output scale 1/256, zero
 * point -128. Where TFLM aborts (a row whose sum of exponentials reaches 512,
 * possible only when depth >= 512) every output of the row is -128, the
 * exactly rounded value. out may alias in.
 */
void darb_softmax_tflm_s8(const darb_softmax_tflm_s8_params *params, const int8_t *in, int8_t *out, uint32_t rows,
                          uint32_t depth);

/*
 * float32 softmax over `rows` rows of `depth` values, TFLM's order of
 * operations: max (NaN ignored, from -FLT_MAX), e = darb_expf((x - max) *
 * beta), a float32 running sum in index order, then e / sum. darb_expf (not
 * libm's expf) makes host, Cortex-M and NumPy agree bit for bit. out may
 * alias in.
 */
void darb_softmax_tflm_f32(const float *in, float *out, uint32_t rows, uint32_t depth, float beta);

#ifdef __cplusplus
}
#endif

#endif /* DARB_OPS_ELEMENTWISE_H */
