/*
 * darb_graph.h - helpers of generated graph models (darbgen's op graph, NHWC).
 *
 * A convolution of a graph model runs as one matrix-vector product per output
 * pixel: darb_im2col_<t> gathers the pixel's input patch, in the column order
 * (ky, kx, c) of TFLite's (O, KH, KW, I) kernel, into a scratch vector, and
 * the layer's matrix kernel (darb.h) multiplies it. Taps outside the image
 * read pad_value: the int8 input zero point (real 0; the bias holds the
 * folded zero point, so such a tap adds nothing, as TFLite skips it), 0.0f
 * for float32.
 */
#ifndef DARB_GRAPH_H
#define DARB_GRAPH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry of a sliding window over an NHWC input [in_h][in_w][in_c]. */
typedef struct {
    uint16_t in_h;
    uint16_t in_w;
    uint16_t in_c;
    uint16_t kh;
    uint16_t kw;
    uint16_t stride_h;
    uint16_t stride_w;
    uint16_t dil_h;
    uint16_t dil_w;
    uint16_t pad_top;
    uint16_t pad_left;
} darb_window;

/* patch[kh * kw * in_c] = the input patch of output pixel (oy, ox); int8 taps
 * outside the image read pad_value (-128..127). */
void darb_im2col_s8(const darb_window *g, const int8_t *in, uint32_t oy, uint32_t ox, int32_t pad_value,
                    int8_t *patch);
/* The same for float32; taps outside the image read 0.0f. */
void darb_im2col_f32(const darb_window *g, const float *in, uint32_t oy, uint32_t ox, float *patch);

#ifdef __cplusplus
}
#endif

#endif /* DARB_GRAPH_H */
