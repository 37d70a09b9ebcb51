/*
 * darb_output.c - output stages: requantization, clamping and activation
 * tables for int8 and int16, activations for float32.
 *
 * The integer steps are those of gemmlowp / TensorFlow Lite; darbgen's
 * NumPy reference (darbgen/quantize.py) performs the same steps, so results
 * agree bit for bit. The int8 steps live in darb.h (darb_requantize_fast,
 * darb_output_s8_fast) so that kernels can inline them. Right shifts of
 * negative values are arithmetic on every compiler darbgen supports (gcc,
 * arm-none-eabi-gcc).
 */
#include "darb.h"

int32_t darb_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    return darb_requantize_fast(x, multiplier, shift);
}

int32_t darb_lut_s16(const int16_t *lut, int32_t v)
{
    /* 513-entry table over the int16 range, linear between entries. */
    const uint32_t u = (uint32_t)(v + 32768);
    const uint32_t index = u >> 7;
    const int32_t frac = (int32_t)(u & 127u);
    const int32_t lo = lut[index];
    const int32_t hi = lut[index + 1u];
    return lo + (((hi - lo) * frac + 64) >> 7);
}

int8_t darb_output_s8(int32_t acc, int32_t row, const darb_quant_s8 *quant)
{
    return darb_output_s8_fast(acc, (uint32_t)row, quant);
}

int16_t darb_output_s16(int64_t acc, int32_t row, const darb_quant_s16 *quant)
{
    const int32_t multiplier = quant->multiplier[row];
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - quant->shift[row];
    int64_t v = acc * (int64_t)reduced + ((int64_t)1 << (total_shift - 1));
    v >>= total_shift;
    if (v < quant->act_min) {
        v = quant->act_min;
    }
    if (v > quant->act_max) {
        v = quant->act_max;
    }
    if (quant->lut != 0) {
        v = darb_lut_s16(quant->lut, (int32_t)v);
    }
    return (int16_t)v;
}

float darb_output_f32(float acc, darb_activation activation)
{
    switch (activation) {
    case DARB_ACT_RELU:
        return acc > 0.0f ? acc : 0.0f;
    case DARB_ACT_RELU6:
        return acc > 0.0f ? (acc < 6.0f ? acc : 6.0f) : 0.0f;
    case DARB_ACT_SIGMOID:
        return darb_sigmoidf(acc);
    case DARB_ACT_TANH:
        return darb_tanhf(acc);
    case DARB_ACT_NONE:
    default:
        return acc;
    }
}
