/*
 * darb_rnn_s16.c - LSTM and GRU cell updates in int16 (16x8 models).
 *
 * The gate pre-activations gx = W_ih x + b_ih and gh = W_hh h + b_hh come from
 * two generated 16x8 dense layers that share one output scale, so they add as
 * integers (saturated to int16). Sigmoid and tanh are the interpolated
 * 513-entry tables of the int16 activations, giving Q15 (1/32768); the cell
 * state c is int16 at its own calibrated scale; the hidden state h is Q15.
 * Products round half up ((a * b + 2^14) >> 15); i * g is brought to c's
 * scale by a Q31 multiplier and shift (the int8 requantization). Every step
 * has a NumPy twin in darbgen/reference.py.
 *
 * int8 models use the same cell (as TFLite's integer LSTM keeps int16 gates
 * and cell state): darb_widen_s8 turns the int8 input into int16 at the same
 * scale, and darb_narrow_s8 requantizes the Q15 hidden state to int8.
 */
#include "darb.h"

static int32_t darb_sat16(int32_t v)
{
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

/* (a * b) / 2^15, rounded half up, for Q15 products */
static int32_t darb_mul_q15(int32_t a, int32_t b)
{
    return (a * b + (1 << 14)) >> 15;
}

void darb_lstm_cell_s16(const int16_t *gx, const int16_t *gh, int16_t *h, int16_t *c, uint32_t hidden,
                        const darb_rnn_s16 *q)
{
    uint32_t j;
    for (j = 0; j < hidden; ++j) {
        const int32_t i = darb_lut_s16(q->sigmoid, darb_sat16(gx[j] + gh[j]));
        const int32_t f = darb_lut_s16(q->sigmoid, darb_sat16(gx[hidden + j] + gh[hidden + j]));
        const int32_t g = darb_lut_s16(q->tanh, darb_sat16(gx[2u * hidden + j] + gh[2u * hidden + j]));
        const int32_t o = darb_lut_s16(q->sigmoid, darb_sat16(gx[3u * hidden + j] + gh[3u * hidden + j]));
        const int32_t fc = darb_mul_q15(f, c[j]);
        const int32_t ig = darb_requantize(i * g, q->ig_multiplier, q->ig_shift);
        c[j] = (int16_t)darb_sat16(fc + ig);
        h[j] = (int16_t)darb_sat16(darb_mul_q15(o, darb_lut_s16(q->tanh_c, c[j])));
    }
}

void darb_gru_cell_s16(const int16_t *gx, const int16_t *gh, int16_t *h, uint32_t hidden, const darb_rnn_s16 *q)
{
    uint32_t j;
    for (j = 0; j < hidden; ++j) {
        const int32_t r = darb_lut_s16(q->sigmoid, darb_sat16(gx[j] + gh[j]));
        const int32_t z = darb_lut_s16(q->sigmoid, darb_sat16(gx[hidden + j] + gh[hidden + j]));
        const int32_t n = darb_lut_s16(q->tanh, darb_sat16(gx[2u * hidden + j] + darb_mul_q15(r, gh[2u * hidden + j])));
        const int64_t mix = (int64_t)(32768 - z) * n + (int64_t)z * h[j];
        h[j] = (int16_t)darb_sat16((int32_t)((mix + (1 << 14)) >> 15));
    }
}

void darb_widen_s8(const int8_t *in, int16_t *out, uint32_t n, int32_t zero_point)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        out[j] = (int16_t)((int32_t)in[j] - zero_point);
    }
}

void darb_narrow_s8(const int16_t *in, int8_t *out, uint32_t n, int32_t multiplier, int32_t shift)
{
    uint32_t j;
    for (j = 0; j < n; ++j) {
        const int32_t v = darb_requantize(in[j], multiplier, shift);
        out[j] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}
