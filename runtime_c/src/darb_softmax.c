/*
 * darb_softmax.c - softmax over a vector, int8, int16 and float32.
 *
 * Integer versions never leave integers: exp(x - max) comes from a table the
 * generator computes for the input scale (Q15, exp(0) = 32768), and each
 * output is the rounded ratio of its exp to the sum. darbgen/reference.py
 * holds the NumPy twins.
 */
#include "darb.h"

void darb_softmax_s8(const int8_t *in, int8_t *out, uint32_t n, const int32_t *table)
{
    int32_t max = in[0];
    int32_t sum = 0;
    uint32_t i;
    for (i = 1; i < n; ++i) {
        if (in[i] > max) {
            max = in[i];
        }
    }
    for (i = 0; i < n; ++i) {
        sum += table[max - in[i]];      /* n * 32768 < 2^31 for n <= 65535 */
    }
    for (i = 0; i < n; ++i) {
        const int32_t q = (table[max - in[i]] * 256 + sum / 2) / sum - 128;
        out[i] = (int8_t)(q > 127 ? 127 : q);
    }
}

/* exp(-d * scale) in Q15 for d = 0..65535, from a 513-entry table (steps of 128). */
static int32_t darb_softmax_exp_s16(int32_t d, const int32_t *table)
{
    const int32_t index = d >> 7;
    const int32_t frac = d & 127;
    const int32_t lo = table[index];
    const int32_t hi = table[index + 1];
    return lo + (((hi - lo) * frac + 64) >> 7);
}

void darb_softmax_s16(const int16_t *in, int16_t *out, uint32_t n, const int32_t *table)
{
    int32_t max = in[0];
    int64_t sum = 0;
    uint32_t i;
    for (i = 1; i < n; ++i) {
        if (in[i] > max) {
            max = in[i];
        }
    }
    for (i = 0; i < n; ++i) {
        sum += darb_softmax_exp_s16(max - in[i], table);
    }
    for (i = 0; i < n; ++i) {
        const int64_t e = darb_softmax_exp_s16(max - in[i], table);
        const int64_t q = (e * 32768 + sum / 2) / sum;
        out[i] = (int16_t)(q > 32767 ? 32767 : q);
    }
}

void darb_softmax_f32(const float *in, float *out, uint32_t n)
{
    float max = in[0];
    float sum = 0.0f;
    uint32_t i;
    for (i = 1; i < n; ++i) {
        if (in[i] > max) {
            max = in[i];
        }
    }
    for (i = 0; i < n; ++i) {
        out[i] = darb_expf(in[i] - max);
        sum += out[i];
    }
    for (i = 0; i < n; ++i) {
        out[i] = out[i] / sum;
    }
}
