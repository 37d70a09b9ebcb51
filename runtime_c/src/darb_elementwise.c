/*
 * darb_elementwise.c - ADD, QUANTIZE, DEQUANTIZE, CONCATENATION and PAD,
 * bit-exact with TensorFlow Lite Micro's reference kernels (int8) and with
 * darbgen's NumPy float32 references (darbgen/ops/elementwise.py,
 * darbgen/ops/shape_ops.py). See darb_ops_elementwise.h.
 */
#include <string.h>

#include "darb.h"
#include "darb_ops_elementwise.h"

static inline int32_t darb_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* ---- ADD ------------------------------------------------------------------ */

void darb_add_s8(const darb_add_s8_params *params, const int8_t *in1, const int8_t *in2, int8_t *out, uint32_t n)
{
    const darb_add_s8_params p = *params;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        /* |in + offset| <= 255, so the shift by 20 stays far inside int32 */
        const int32_t shifted1 = (int32_t)(in1[i] + p.input1_offset) * ((int32_t)1 << p.left_shift);
        const int32_t shifted2 = (int32_t)(in2[i] + p.input2_offset) * ((int32_t)1 << p.left_shift);
        /* shifts are <= 0: darb_requantize_fast is then exactly gemmlowp's
         * SaturatingRoundingDoublingHighMul + RoundingDivideByPOT */
        const int32_t scaled1 = darb_requantize_fast(shifted1, p.input1_multiplier, p.input1_shift);
        const int32_t scaled2 = darb_requantize_fast(shifted2, p.input2_multiplier, p.input2_shift);
        const int32_t raw = darb_requantize_fast(scaled1 + scaled2, p.output_multiplier, p.output_shift) +
                            p.output_offset;
        out[i] = (int8_t)darb_clamp_s8(raw, p.act_min, p.act_max);
    }
}

void darb_add_f32(const float *in1, const float *in2, float *out, uint32_t n, float act_min, float act_max)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        float s = in1[i] + in2[i];
        s = s < act_min ? act_min : s; /* std::max(s, act_min) */
        s = act_max < s ? act_max : s; /* std::min(s, act_max) */
        out[i] = s;
    }
}

/* ---- QUANTIZE / DEQUANTIZE ------------------------------------------------ */

void darb_quantize_f32_s8(const float *in, int8_t *out, uint32_t n, float scale, int32_t zero_point)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        float r = in[i] / scale;
        int32_t q = 0;
        if (r == r) {
            /* beyond +-1024 every zero point saturates anyway */
            r = r > 1024.0f ? 1024.0f : r;
            r = r < -1024.0f ? -1024.0f : r;
            q = (int32_t)r; /* truncation; r - q is exact */
            {
                const float frac = r - (float)q;
                if (frac >= 0.5f) {
                    ++q;
                } else if (frac <= -0.5f) {
                    --q;
                }
            }
        }
        out[i] = (int8_t)darb_clamp_s8(q + zero_point, -128, 127);
    }
}

void darb_dequantize_s8_f32(const int8_t *in, float *out, uint32_t n, float scale, int32_t zero_point)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = scale * (float)((int32_t)in[i] - zero_point);
    }
}

void darb_requantize_s8(const darb_requant_s8 *params, const int8_t *in, int8_t *out, uint32_t n)
{
    const darb_requant_s8 p = *params;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        /* |in - zp| <= 255 and shift <= 23: the left shift stays inside int32 */
        const int32_t v = darb_requantize_fast((int32_t)in[i] - p.in_zero_point, p.multiplier, p.shift);
        out[i] = (int8_t)darb_clamp_s8(v + p.out_zero_point, -128, 127);
    }
}

/* ---- CONCATENATION -------------------------------------------------------- */

static int darb_requant_is_identity(const darb_requant_s8 *r)
{
    return r->multiplier == ((int32_t)1 << 30) && r->shift == 1 && r->in_zero_point == r->out_zero_point;
}

void darb_concat_s8(const darb_concat_shape *shape, const darb_requant_s8 *requant, const int8_t *const *in,
                    int8_t *out)
{
    uint32_t k;
    uint32_t i;
    for (k = 0; k < shape->outer; ++k) {
        for (i = 0; i < shape->n_inputs; ++i) {
            const uint32_t size = shape->copy_size[i];
            const int8_t *src = in[i] + (uint32_t)(k * size);
            if (requant == 0 || darb_requant_is_identity(&requant[i])) {
                memcpy(out, src, size);
            } else {
                darb_requantize_s8(&requant[i], src, out, size);
            }
            out += size;
        }
    }
}

void darb_concat_f32(const darb_concat_shape *shape, const float *const *in, float *out)
{
    uint32_t k;
    uint32_t i;
    for (k = 0; k < shape->outer; ++k) {
        for (i = 0; i < shape->n_inputs; ++i) {
            const uint32_t size = shape->copy_size[i];
            memcpy(out, in[i] + (uint32_t)(k * size), size * sizeof(float));
            out += size;
        }
    }
}

/* ---- PAD ------------------------------------------------------------------ */

/*
 * Walks the output row by row (a row: the last dimension). A row whose
 * leading coordinates all fall inside the input copies its input row between
 * the last dimension's pads; any other row is all padding. `elem` is the
 * element size; `pad` points to one element of the pad value.
 */
static void darb_pad_rows(const darb_pad_geometry *g, const uint8_t *in, uint8_t *out, const uint8_t *pad,
                          uint32_t elem)
{
    uint32_t out_dims[DARB_PAD_MAX_DIMS];
    uint32_t in_stride[DARB_PAD_MAX_DIMS];
    uint32_t index[DARB_PAD_MAX_DIMS];
    const uint32_t rank = g->rank < 1 ? 1 : (g->rank > DARB_PAD_MAX_DIMS ? DARB_PAD_MAX_DIMS : g->rank);
    const uint32_t last = rank - 1;
    uint32_t rows = 1;
    uint32_t r;
    uint32_t d;
    for (d = 0; d < rank; ++d) {
        out_dims[d] = g->before[d] + g->in_dims[d] + g->after[d];
        index[d] = 0;
    }
    in_stride[last] = 1;
    for (d = last; d > 0; --d) {
        in_stride[d - 1] = in_stride[d] * g->in_dims[d];
    }
    for (d = 0; d < last; ++d) {
        rows *= out_dims[d];
    }
    for (r = 0; r < rows; ++r) {
        const uint8_t *src = in;
        int inside = 1;
        uint32_t j;
        for (d = 0; d < last; ++d) {
            if (index[d] < g->before[d] || index[d] >= g->before[d] + g->in_dims[d]) {
                inside = 0;
                break;
            }
            src += (size_t)(index[d] - g->before[d]) * in_stride[d] * elem;
        }
        if (inside) {
            for (j = 0; j < g->before[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
            memcpy(out, src, (size_t)g->in_dims[last] * elem);
            out += (size_t)g->in_dims[last] * elem;
            for (j = 0; j < g->after[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
        } else {
            for (j = 0; j < out_dims[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
        }
        /* next row: odometer over the leading dimensions */
        for (d = last; d > 0; --d) {
            if (++index[d - 1] < out_dims[d - 1]) {
                break;
            }
            index[d - 1] = 0;
        }
    }
}

void darb_pad_s8(const darb_pad_geometry *geometry, const int8_t *in, int8_t *out, int8_t pad_value)
{
    darb_pad_rows(geometry, (const uint8_t *)in, (uint8_t *)out, (const uint8_t *)&pad_value, 1u);
}

void darb_pad_f32(const darb_pad_geometry *geometry, const float *in, float *out, float pad_value)
{
    darb_pad_rows(geometry, (const uint8_t *)in, (uint8_t *)out, (const uint8_t *)&pad_value,
                  (uint32_t)sizeof(float));
}
