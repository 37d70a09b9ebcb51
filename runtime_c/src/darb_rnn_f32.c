/*
 * darb_rnn_f32.c - LSTM and GRU cell updates in float32.
 *
 * The gate pre-activations come from two fully connected layers generated
 * like any other (W_ih x + b_ih and W_hh h + b_hh, any kernel); these
 * functions combine them into the new state, in PyTorch's gate order and
 * with darbgen's own sigmoid and tanh, operation for operation as
 * darbgen/reference.py does.
 */
#include "darb.h"

void darb_lstm_cell_f32(const float *gx, const float *gh, float *h, float *c, uint32_t hidden)
{
    uint32_t j;
    for (j = 0; j < hidden; ++j) {
        const float i = darb_sigmoidf(gx[j] + gh[j]);
        const float f = darb_sigmoidf(gx[hidden + j] + gh[hidden + j]);
        const float g = darb_tanhf(gx[2u * hidden + j] + gh[2u * hidden + j]);
        const float o = darb_sigmoidf(gx[3u * hidden + j] + gh[3u * hidden + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * darb_tanhf(c[j]);
    }
}

void darb_gru_cell_f32(const float *gx, const float *gh, float *h, uint32_t hidden)
{
    uint32_t j;
    for (j = 0; j < hidden; ++j) {
        const float r = darb_sigmoidf(gx[j] + gh[j]);
        const float z = darb_sigmoidf(gx[hidden + j] + gh[hidden + j]);
        const float n = darb_tanhf(gx[2u * hidden + j] + r * gh[2u * hidden + j]);
        h[j] = (1.0f - z) * n + z * h[j];
    }
}
