/*
 * darb_graph.h - helpers of generated graph models (darbgen's op graph, NHWC).
 *
 * A convolution of a graph model multiplies its weight matrix by input
 * patches: darb_im2col_<t> gathers a pixel's patch, in the column order
 * (ky, kx, c) of TFLite's (O, KH, KW, I) kernel, into a scratch vector (up to
 * 8 of them for darb_mm_s8, dense int8), or darb_im2col_tile_s8 into one lane
 * of a tile of DARB_TILE pixels (darb_fc_s8_tile, pruned int8); 1x1 layers
 * read their input in place. Taps outside the image
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

/* Tiles of DARB_TILE pixels (darb.h: 8 on MVE cores, else 4) for
 * darb_fc_s8_tile: column j of lane p at tile[j * DARB_TILE + p].
 * darb_im2col_tile_s8 writes output pixel (oy, ox)'s patch into lane `lane`;
 * darb_tile_s8 writes the vectors in + p * in_stride (p < pixels) into lanes
 * 0..pixels-1 and 0 into the others. */
void darb_im2col_tile_s8(const darb_window *g, const int8_t *in, uint32_t oy, uint32_t ox, int32_t pad_value,
                         uint32_t lane, int8_t *tile);
void darb_tile_s8(const int8_t *in, uint32_t pixels, uint32_t in_stride, uint32_t cols, int8_t *tile);
/* 0 into lanes from_lane..DARB_TILE-1 of a tile of cols columns */
void darb_tile_clear_s8(int8_t *tile, uint32_t from_lane, uint32_t cols);

#ifdef __cplusplus
}
#endif

#endif /* DARB_GRAPH_H */
