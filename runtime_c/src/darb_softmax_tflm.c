/*
 * darb_softmax_tflm.c - softmax as TensorFlow Lite Micro computes it: the
 * int8 kernel with gemmlowp's fixed-point exp and reciprocal, bit for bit,
 * and a float32 kernel in TFLM's order of operations with darbgen's own exp.
 * darbgen/ops/softmax.py holds the NumPy twins and explains each step.
 *
 * Fixed-point values are int32 with a stated number of integer bits:
 * Q0.31 for exp results and reciprocals, Q5.26 for the rescaled input
 * difference, Q12.19 for the sum of exponentials, Q2.29 inside the
 * Newton-Raphson division.
 */
#include <float.h>

#include "darb.h"
#include "darb_ops_elementwise.h"

/* gemmlowp SaturatingRoundingDoublingHighMul */
static int32_t darb_fx_mul(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates, as gemmlowp's */
}

/* gemmlowp RoundingDivideByPOT, exponent 0..31 */
static int32_t darb_fx_div_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: a saturating left shift */
static int32_t darb_fx_shl_sat(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return x * ((int32_t)1 << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8 */
static int32_t darb_fx_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = a + ((int32_t)1 << 28); /* a + 1/8 */
    const int32_t x2 = darb_fx_mul(x, x);
    const int32_t x3 = darb_fx_mul(x2, x);
    const int32_t x4 = darb_fx_mul(x2, x2);
    const int32_t x4_over_4 = darb_fx_div_pot(x4, 2);
    const int32_t poly = darb_fx_div_pot(darb_fx_mul(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + darb_fx_mul(constant_term, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result Q0.31 (gemmlowp exp_on_negative_values) */
static int32_t darb_fx_exp_neg_q5(int32_t a)
{
    static const int32_t barrel[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8) */
        242         /* exp(-16) */
    };
    const int32_t one_quarter = (int32_t)1 << 24;
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int32_t result = darb_fx_exp_quarter(darb_fx_shl_sat(a_mod_quarter_minus_one_quarter, 5));
    int32_t k;
    for (k = 0; k < 7; ++k) {
        /* bit 24 + k of the remainder is 2^(k - 2) */
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = darb_fx_mul(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out (gemmlowp, Newton-Raphson) */
static int32_t darb_fx_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + darb_fx_mul(half_denominator, -1010580540); /* 48/17 - 32/17 d, Q2.29 */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = ((int32_t)1 << 29) - darb_fx_mul(half_denominator, x);
        x = x + darb_fx_shl_sat(darb_fx_mul(x, one_minus), 2);
    }
    return darb_fx_shl_sat(x, 1);
}

/* diff * 2^left_shift in Q5.26, times the input multiplier (TFLM's
 * MultiplyByQuantizedMultiplierGreaterThanOne); diff >= diff_min keeps the
 * product inside int32 */
static int32_t darb_softmax_rescale(int32_t diff, const darb_softmax_tflm_s8_params *p)
{
    return darb_fx_mul((int32_t)((int64_t)diff * ((int64_t)1 << p->input_left_shift)), p->input_multiplier);
}

void darb_softmax_tflm_s8(const darb_softmax_tflm_s8_params *params, const int8_t *in, int8_t *out, uint32_t rows,
                          uint32_t depth)
{
    uint32_t r;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = in + (uint32_t)(r * depth);
        int8_t *y = out + (uint32_t)(r * depth);
        int32_t max = -128;
        int32_t sum = 0; /* Q12.19: below 2^31 for depth <= 4095 */
        uint32_t headroom_plus_one = 0;
        uint32_t normalized;
        int32_t recip;
        int32_t exponent;
        uint32_t c;
        for (c = 0; c < depth; ++c) {
            max = x[c] > max ? x[c] : max;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max;
            if (diff >= params->diff_min) {
                /* exp in Q0.31, added in Q12.19 */
                sum += darb_fx_div_pot(darb_fx_exp_neg_q5(darb_softmax_rescale(diff, params)), 12);
            }
        }
        /* TFLite GetReciprocal: normalise the sum to [1, 2) and take 1 / sum
         * (the max entry alone adds 2^19, so sum >= 2^19 and the loop ends) */
        normalized = (uint32_t)sum;
        while ((normalized & 0x80000000u) == 0u) {
            normalized <<= 1;
            ++headroom_plus_one;
        }
        recip = darb_fx_one_over_one_plus_x((int32_t)(normalized - 0x80000000u));
        exponent = (12 - (int32_t)headroom_plus_one) + 31 - 8;
        for (c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max;
            int32_t v = -128;
            if (diff >= params->diff_min) {
                const int32_t e = darb_fx_exp_neg_q5(darb_softmax_rescale(diff, params));
                /* exponent > 31 (sum >= 512): TFLM aborts; the exact rounding gives 0 */
                v = (exponent <= 31 ? darb_fx_div_pot(darb_fx_mul(recip, e), exponent) : 0) - 128;
                v = v > 127 ? 127 : v;
                v = v < -128 ? -128 : v;
            }
            y[c] = (int8_t)v;
        }
    }
}

void darb_softmax_tflm_f32(const float *in, float *out, uint32_t rows, uint32_t depth, float beta)
{
    uint32_t r;
    for (r = 0; r < rows; ++r) {
        const float *x = in + (uint32_t)(r * depth);
        float *y = out + (uint32_t)(r * depth);
        float max = -FLT_MAX;
        float sum = 0.0f;
        uint32_t c;
        for (c = 0; c < depth; ++c) {
            if (x[c] > max) {
                max = x[c];
            }
        }
        for (c = 0; c < depth; ++c) {
            const float e = darb_expf((x[c] - max) * beta);
            y[c] = e;
            sum += e;
        }
        for (c = 0; c < depth; ++c) {
            y[c] = y[c] / sum;
        }
    }
}
