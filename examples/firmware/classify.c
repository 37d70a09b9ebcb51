/*
 * classify.c - calling darbgen's generated C from firmware.
 *
 * The digits MLP (examples/digits_mlp.npz: 64 pixels -> 256 -> 128 -> 10),
 * pruned and generated as int8 with
 *
 *   darbgen prune examples/digits_mlp.npz --ratio 2 -o pruned.npz
 *   darbgen generate pruned.npz --dtype int8 --out digits_c --verify
 *
 * Compile this file together with every .c file in digits_c/ (add
 * -ffp-contract=off; no other flags are needed). The layers chain directly:
 * each layer's output quantization is the next one's input quantization, so
 * int8 activations pass from one to the next unchanged.
 */
#include <stdint.h>

#include "classify.h"
#include "digits_mlp.h"

/* Activations live in two static buffers, reused layer after layer. */
static int8_t buffer_a[DIGITS_MLP_FC1_OUTPUT_SIZE];
static int8_t buffer_b[DIGITS_MLP_FC2_OUTPUT_SIZE];

/* Quantize one real input the way the first layer expects:
 * q = round(x / scale) + zero_point, saturated to int8. */
static int8_t quantize_input(float x)
{
    const float scaled = x / (float)DIGITS_MLP_FC1_INPUT_SCALE;
    int32_t q = (int32_t)(scaled >= 0.0f ? scaled + 0.5f : scaled - 0.5f) + DIGITS_MLP_FC1_INPUT_ZERO_POINT;
    if (q < -128) {
        q = -128;
    }
    if (q > 127) {
        q = 127;
    }
    return (int8_t)q;
}

int digits_classify(const float pixels[DIGITS_MLP_FC1_INPUT_SIZE])
{
    int8_t input[DIGITS_MLP_FC1_INPUT_SIZE];
    int8_t logits[DIGITS_MLP_FC3_OUTPUT_SIZE];
    int i;
    int best = 0;
    for (i = 0; i < DIGITS_MLP_FC1_INPUT_SIZE; ++i) {
        input[i] = quantize_input(pixels[i]);
    }
    digits_mlp_fc1_run(input, buffer_a);
    digits_mlp_fc2_run(buffer_a, buffer_b);
    digits_mlp_fc3_run(buffer_b, logits);
    /* softmax is monotonic: the largest logit is the predicted digit */
    for (i = 1; i < DIGITS_MLP_FC3_OUTPUT_SIZE; ++i) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    return best;
}
