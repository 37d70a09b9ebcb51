/*
 * darb.h - the one public header of darbgen's C runtime.
 *
 * Fully connected (dense) layer kernels for pruned weight matrices, in three
 * storage formats and three number types:
 *
 *   darb_fc_<t>        DARB packed: rows grouped in classes of equal block size,
 *                      each kept weight located by its in-block offset, packed
 *                      at ceil(log2 b) bits (docs/format.md);
 *   darb_csr_fc_<t>    compressed sparse rows (uint8 or uint16 column indices);
 *   darb_dense_fc_<t>  every weight (the baseline).
 *
 * with <t> one of
 *   s8   int8 activations, int8 weights, int32 accumulator (TFLite / CMSIS-NN);
 *   s16  int16 activations, int8 weights, int64 accumulator (TFLite 16x8);
 *   f32  float32.
 *
 * Code written by darbgen fills the parameter structs with static const
 * tables and calls these kernels; nothing here allocates memory.
 *
 * Arithmetic (docs/codegen.md): for each output row r
 *   acc = bias[r] + sum over kept j, in increasing column order, of w[r][j] * in[j]
 * For s8 the input zero point is folded into bias[r] by the generator. The
 * integer accumulator is then requantized with the gemmlowp steps (s8) or the
 * TFLite 16x8 reduced-multiplier step (s16), offset by the output zero point
 * and clamped to [act_min, act_max]; an optional look-up table then applies
 * sigmoid or tanh. float32 keeps the same order of additions as the NumPy
 * reference, so with -ffp-contract=off the results are bit-identical.
 *
 * The generator proves at generation time that no accumulator can overflow
 * for any input of the layer's type, so the kernels do not check.
 */
#ifndef DARB_H
#define DARB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Keeps a function out of line (generated unrolled code uses it so that
 * compilers optimise many small functions instead of one huge one). */
#if defined(__GNUC__)
#define DARB_NOINLINE __attribute__((noinline))
#else
#define DARB_NOINLINE
#endif

/* Activation applied after a float32 layer. */
typedef enum {
    DARB_ACT_NONE = 0,
    DARB_ACT_RELU = 1,
    DARB_ACT_RELU6 = 2,
    DARB_ACT_SIGMOID = 3,
    DARB_ACT_TANH = 4
} darb_activation;

/* Output stage of an int8 layer: requantization, zero point, clamp, table. */
typedef struct {
    const int32_t *bias;        /* [rows] int32, input zero point folded in */
    const int32_t *multiplier;  /* [rows] Q31 fixed-point multiplier, >= 0 (or [1], see scale_mask) */
    const int8_t *shift;        /* [rows] power-of-two exponent, -31..30 (or [1]) */
    int32_t output_offset;      /* output (or pre-table) zero point */
    int32_t act_min;            /* clamp bounds, within -128..127 */
    int32_t act_max;
    const int8_t *lut;          /* NULL, or 256 entries indexed by value + 128 */
    /* row r's multiplier and shift are at index r & scale_mask: 0xFFFFFFFF
     * (DARB_SCALE_PER_ROW) when each row has its own, 0 (DARB_SCALE_SHARED)
     * when one pair serves every row (a per-tensor quantized layer stores 5
     * bytes instead of 5 per row) */
    uint32_t scale_mask;
} darb_quant_s8;

#define DARB_SCALE_PER_ROW 0xFFFFFFFFu
#define DARB_SCALE_SHARED 0u

/* Output stage of an int16 (16x8) layer; zero points are 0. */
typedef struct {
    const int64_t *bias;        /* [rows] int64 */
    const int32_t *multiplier;  /* [rows] Q31 fixed-point multiplier, >= 0 */
    const int8_t *shift;        /* [rows] power-of-two exponent, -31..14 */
    int32_t act_min;            /* clamp bounds, within -32768..32767 */
    int32_t act_max;
    const int16_t *lut;         /* NULL, or 513 entries, interpolated */
} darb_quant_s16;

/* Output stage of a float32 layer. */
typedef struct {
    const float *bias;          /* [rows] */
    darb_activation activation;
} darb_quant_f32;

/* DARB packed pattern (docs/format.md). Rows are visited class by class;
 * values are stored in that order, one per block. */
typedef struct {
    uint16_t rows;
    uint16_t cols;
    uint16_t n_classes;
    const uint16_t *class_block;   /* [n_classes] block size b of the class */
    const uint16_t *class_rows;    /* [n_classes] rows in the class */
    const uint32_t *class_start;   /* [n_classes] byte offset of the class in offsets */
    const uint16_t *row_order;     /* [rows] output row of the i-th visited row */
    const uint8_t *offsets;        /* in-block offsets, ceil(log2 b) bits each, LSB first */
} darb_pattern;

/* CSR pattern: exactly one of col8 / col16 and one of ptr16 / ptr32 is set. */
typedef struct {
    uint16_t rows;
    uint16_t cols;
    const uint8_t *col8;           /* [kept] column indices when cols <= 256 */
    const uint16_t *col16;         /* [kept] column indices otherwise */
    const uint16_t *ptr16;         /* [rows + 1] row pointers when kept <= 65535 */
    const uint32_t *ptr32;         /* [rows + 1] row pointers otherwise */
} darb_csr_pattern;

/* Geometry of a 2-D convolution over channel-first tensors: input
 * [in_c][in_h][in_w], output [rows][out_h][out_w]. Weight column j of a row is
 * (c, ky, kx) with j = (c * kh + ky) * kw + kx; a 1-D convolution has
 * in_h = kh = 1. Inputs outside the image read pad_value (the int8 input zero
 * point, i.e. real 0; 0 for int16 and float32). */
typedef struct {
    uint16_t in_c;
    uint16_t in_h;
    uint16_t in_w;
    uint16_t out_h;
    uint16_t out_w;
    uint16_t kh;
    uint16_t kw;
    uint16_t stride_h;
    uint16_t stride_w;
    uint16_t dil_h;
    uint16_t dil_w;
    uint16_t pad_top;
    uint16_t pad_left;
    int32_t pad_value;
} darb_conv_geometry;

/* Input value (c, iy, ix) of a channel-first tensor, or pad outside it. */
static inline int32_t darb_at_s8(const int8_t *in, int32_t h, int32_t w, int32_t pad, int32_t c, int32_t iy,
                                 int32_t ix)
{
    return (iy < 0 || iy >= h || ix < 0 || ix >= w) ? pad : in[(c * h + iy) * w + ix];
}

static inline int32_t darb_at_s16(const int16_t *in, int32_t h, int32_t w, int32_t c, int32_t iy, int32_t ix)
{
    return (iy < 0 || iy >= h || ix < 0 || ix >= w) ? 0 : in[(c * h + iy) * w + ix];
}

static inline float darb_at_f32(const float *in, int32_t h, int32_t w, int32_t c, int32_t iy, int32_t ix)
{
    return (iy < 0 || iy >= h || ix < 0 || ix >= w) ? 0.0f : in[(c * h + iy) * w + ix];
}

/* Dense shape: weights row-major, rows x cols. */
typedef struct {
    uint16_t rows;
    uint16_t cols;
} darb_dense_shape;

/* ---- DARB packed ---------------------------------------------------------- */
void darb_fc_s8(const darb_pattern *pattern, const int8_t *values,
                const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_fc_s16(const darb_pattern *pattern, const int8_t *values,
                 const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_fc_f32(const darb_pattern *pattern, const float *values,
                 const darb_quant_f32 *quant, const float *in, float *out);

/* DARB packed weights times a tile of up to DARB_TILE pixels (the
 * weight-stationary sparse convolution, darb_fc_s8_tile.c): each kept weight
 * is decoded once per tile.
 *   out[p * pattern->rows + r] = darb_fc_s8 on pixel p's vector, p < pixels
 * tile[j * DARB_TILE + p] is column j of pixel p (darb_graph.h writes it);
 * lanes p >= pixels must hold 0. pixels: 1..DARB_TILE. DARB_TILE is 8 on
 * cores with MVE (two vectors of 4 accumulators), 4 on the others (four
 * registers); generated code sizes its tile buffer with it. */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DARB_TILE 8u
#else
#define DARB_TILE 4u
#endif
/* Defined where darb_fc_s8 on each pixel takes fewer instructions than the
 * tiles on a 1x1 convolution (MVE cores: its vector loops take 16 blocks per
 * step); generated pruned 1x1 convolutions then call it per pixel. */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(DARB_COMPACT)
#define DARB_SPARSE_PER_PIXEL 1
#endif
void darb_fc_s8_tile(const darb_pattern *pattern, const int8_t *values, const darb_quant_s8 *quant,
                     const int8_t *tile, uint32_t pixels, int8_t *out);

/* ---- CSR ------------------------------------------------------------------- */
void darb_csr_fc_s8(const darb_csr_pattern *pattern, const int8_t *values,
                    const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_csr_fc_s16(const darb_csr_pattern *pattern, const int8_t *values,
                     const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_csr_fc_f32(const darb_csr_pattern *pattern, const float *values,
                     const darb_quant_f32 *quant, const float *in, float *out);

/* ---- dense ----------------------------------------------------------------- */
void darb_dense_fc_s8(const darb_dense_shape *shape, const int8_t *weights,
                      const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_dense_fc_s16(const darb_dense_shape *shape, const int8_t *weights,
                       const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_dense_fc_f32(const darb_dense_shape *shape, const float *weights,
                       const darb_quant_f32 *quant, const float *in, float *out);

/*
 * darb_mm_s8: the dense int8 matrix times the vectors of several pixels (a
 * convolution's patches, or a 1x1 convolution's input read in place):
 *
 *   out[p * rows + r] = darb_output_s8_fast(bias[r] + sum_j weights[r * cols + j] * in[p * in_stride + j], r)
 *
 * for p < pixels and r < shape->rows: darb_dense_fc_s8 on each pixel's
 * vector, the same integer results (the products are added in other orders;
 * the generator's bound on every partial sum covers any order).
 *   shape:     rows >= 1, cols >= 1; weights: rows x cols, row-major, any
 *              alignment; quant: as for darb_dense_fc_s8.
 *   in:        pixel p's cols inputs at in + p * in_stride, any alignment; any
 *              in_stride (vectors may overlap; only read).
 *   pixels:    0 or more.
 *   out:       pixels * rows outputs, pixel-major (NHWC); must not overlap in,
 *              weights or quant's arrays.
 * Cortex-M4 / M7 / M33: two rows x two pixels per SMLAD step; with 8 pixels
 * or more and cols <= DARB_MM_PACK_COLS (default 64) each row pair's weights
 * are widened first into a stack array of 4 * DARB_MM_PACK_COLS bytes.
 * Cortex-M55: four rows per MVE step. Elsewhere portable C; -DDARB_COMPACT
 * keeps only the plain loop (runtime_c/src/darb_mm_s8.c).
 */
void darb_mm_s8(const darb_dense_shape *shape, const int8_t *weights, const darb_quant_s8 *quant,
                const int8_t *in, uint32_t pixels, uint32_t in_stride, int8_t *out);

/* ---- 2-D convolution (direct, no im2col buffer), three formats ------------ */
void darb_conv_s8(const darb_pattern *pattern, const darb_conv_geometry *geometry, const int8_t *values,
                  const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_conv_s16(const darb_pattern *pattern, const darb_conv_geometry *geometry, const int8_t *values,
                   const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_conv_f32(const darb_pattern *pattern, const darb_conv_geometry *geometry, const float *values,
                   const darb_quant_f32 *quant, const float *in, float *out);
void darb_csr_conv_s8(const darb_csr_pattern *pattern, const darb_conv_geometry *geometry,
                      const int8_t *values, const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_csr_conv_s16(const darb_csr_pattern *pattern, const darb_conv_geometry *geometry,
                       const int8_t *values, const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_csr_conv_f32(const darb_csr_pattern *pattern, const darb_conv_geometry *geometry,
                       const float *values, const darb_quant_f32 *quant, const float *in, float *out);
void darb_dense_conv_s8(const darb_dense_shape *shape, const darb_conv_geometry *geometry,
                        const int8_t *weights, const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_dense_conv_s16(const darb_dense_shape *shape, const darb_conv_geometry *geometry,
                         const int8_t *weights, const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_dense_conv_f32(const darb_dense_shape *shape, const darb_conv_geometry *geometry,
                         const float *weights, const darb_quant_f32 *quant, const float *in, float *out);

/* ---- depthwise convolution over channel-first tensors (darb_depthwise_chw.c):
 * output channel o (of in_c * mult) filters input channel o / mult with its
 * kh x kw weights[o][ky][kx] (no zeros stored); outputs [in_c * mult][out_h][out_w].
 * The output stage is the dense layers' (per output channel). */
void darb_depthwise_chw_s8(const darb_conv_geometry *geometry, uint32_t mult, const int8_t *weights,
                           const darb_quant_s8 *quant, const int8_t *in, int8_t *out);
void darb_depthwise_chw_s16(const darb_conv_geometry *geometry, uint32_t mult, const int8_t *weights,
                            const darb_quant_s16 *quant, const int16_t *in, int16_t *out);
void darb_depthwise_chw_f32(const darb_conv_geometry *geometry, uint32_t mult, const float *weights,
                            const darb_quant_f32 *quant, const float *in, float *out);

/* ---- pooling over channel-first tensors (geometry: in_c channels, kh x kw
 * window, stride, padding; dilation and pad_value unused) -------------------- */
void darb_maxpool_s8(const darb_conv_geometry *geometry, const int8_t *in, int8_t *out);
void darb_maxpool_s16(const darb_conv_geometry *geometry, const int16_t *in, int16_t *out);
void darb_maxpool_f32(const darb_conv_geometry *geometry, const float *in, float *out);
void darb_avgpool_s8(const darb_conv_geometry *geometry, const int8_t *in, int8_t *out);
void darb_avgpool_s16(const darb_conv_geometry *geometry, const int16_t *in, int16_t *out);
void darb_avgpool_f32(const darb_conv_geometry *geometry, const float *in, float *out);

/* ---- softmax over n values; in == out is allowed --------------------------- */
/* table: 256 (s8) or 513 (s16) Q15 values of exp(-d * input_scale), from the generator */
void darb_softmax_s8(const int8_t *in, int8_t *out, uint32_t n, const int32_t *table);
void darb_softmax_s16(const int16_t *in, int16_t *out, uint32_t n, const int32_t *table);
void darb_softmax_f32(const float *in, float *out, uint32_t n);

/* ---- recurrent cells (float32): gx = W_ih x + b_ih, gh = W_hh h + b_hh ------ */
/* LSTM gates i, f, g, o (PyTorch order), each hidden values long; h, c updated */
void darb_lstm_cell_f32(const float *gx, const float *gh, float *h, float *c, uint32_t hidden);
/* GRU gates r, z, n (PyTorch order); h updated */
void darb_gru_cell_f32(const float *gx, const float *gh, float *h, uint32_t hidden);

/* int16 recurrent cells (16x8 models): gx, gh share one scale; h is Q15 */
typedef struct {
    const int16_t *sigmoid;     /* 513-entry table: gate scale -> Q15 */
    const int16_t *tanh;        /* 513-entry table: gate scale -> Q15 */
    const int16_t *tanh_c;      /* 513-entry table: cell-state scale -> Q15 (LSTM) */
    int32_t ig_multiplier;      /* i * g (Q30) to the cell-state scale (LSTM) */
    int32_t ig_shift;
} darb_rnn_s16;
void darb_lstm_cell_s16(const int16_t *gx, const int16_t *gh, int16_t *h, int16_t *c, uint32_t hidden,
                        const darb_rnn_s16 *q);
void darb_gru_cell_s16(const int16_t *gx, const int16_t *gh, int16_t *h, uint32_t hidden, const darb_rnn_s16 *q);
/* int8 recurrent layers run the int16 cell: out = in - zero_point (exact, same
 * scale) on the way in, and the Q15 hidden state requantized to int8 (zero
 * point 0) on the way out. */
void darb_widen_s8(const int8_t *in, int16_t *out, uint32_t n, int32_t zero_point);
void darb_narrow_s8(const int16_t *in, int8_t *out, uint32_t n, int32_t multiplier, int32_t shift);

/* ---- output stages (also called by unrolled generated code) ---------------- */
/*
 * gemmlowp's MultiplyByQuantizedMultiplier (SaturatingRoundingDoublingHighMul,
 * then RoundingDivideByPOT) for a multiplier in [0, 2^31), in few operations:
 * with such a multiplier the doubling high multiply never saturates and equals
 * (x * m + 2^30) >> 31 for either sign of the product (its nudge of 1 - 2^30
 * for negative products and the truncating division combine to that), and
 * the rounding division by 2^e (half away from zero) is
 * (v + 2^(e-1) - (v < 0)) >> e, done in 64 bits so it cannot overflow.
 * tests/c/requant_probe.c checks it against the textbook steps.
 */
static inline int32_t darb_requantize_fast(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int64_t ab = (int64_t)(int32_t)((uint32_t)x << left) * multiplier;
    const int64_t high = (ab + ((int64_t)1 << 30)) >> 31;
    if (right == 0) {
        return (int32_t)high;
    }
    return (int32_t)((high + ((int64_t)1 << (right - 1)) - (high < 0 ? 1 : 0)) >> right);
}

/* darb_output_s8 for kernels to inline: requantize, zero point, clamp, table. */
static inline int8_t darb_output_s8_fast(int32_t acc, uint32_t row, const darb_quant_s8 *quant)
{
    const uint32_t s = row & quant->scale_mask;
    int32_t v = darb_requantize_fast(acc, quant->multiplier[s], quant->shift[s]) + quant->output_offset;
    v = v < quant->act_min ? quant->act_min : v;
    v = v > quant->act_max ? quant->act_max : v;
    if (quant->lut != 0) {
        v = quant->lut[v + 128];
    }
    return (int8_t)v;
}

int8_t darb_output_s8(int32_t acc, int32_t row, const darb_quant_s8 *quant);
int16_t darb_output_s16(int64_t acc, int32_t row, const darb_quant_s16 *quant);
/* the int16 activation table lookup (513 entries, linear between them) */
int32_t darb_lut_s16(const int16_t *lut, int32_t v);
/* gemmlowp MultiplyByQuantizedMultiplier of an int32 value */
int32_t darb_requantize(int32_t x, int32_t multiplier, int32_t shift);
float darb_output_f32(float acc, darb_activation activation);

/* exp, sigmoid and tanh in float32 from basic operations only, so that every
 * target (and the NumPy reference) computes the same bits. */
float darb_expf(float x);
float darb_sigmoidf(float x);
float darb_tanhf(float x);

#ifdef __cplusplus
}
#endif

#endif /* DARB_H */
