/*
 * darb_im2col.c - the input patch of one output pixel of an NHWC convolution
 * (darb_graph.h).
 *
 * In NHWC the kw taps of one kernel row are kw * in_c consecutive bytes when
 * the dilation across is 1, so a kernel row that lies wholly inside the image
 * is one copy; rows that cross an edge go tap by tap, and rows outside the
 * image are filled with the pad value. Copies are inline (a word at a time on
 * cores with unaligned loads, then bytes): a first layer of one or three
 * channels copies 4 to 30 bytes per row, which a library memcpy call would
 * cost ten times over.
 */
#include <string.h>

#include "darb.h"
#include "darb_graph.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#endif

static inline void darb_copy_s8(int8_t *dst, const int8_t *src, uint32_t n)
{
#if defined(__ARM_FEATURE_UNALIGNED) || defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
    for (; n >= 4u; n -= 4u) {
        uint32_t v;
        memcpy(&v, src, 4);     /* one unaligned load and store; no library call */
        memcpy(dst, &v, 4);
        src += 4;
        dst += 4;
    }
#endif
    for (; n != 0u; --n) {
        *dst++ = *src++;
    }
}

static inline void darb_fill_s8(int8_t *dst, int8_t value, uint32_t n)
{
    for (; n != 0u; --n) {
        *dst++ = value;
    }
}

void darb_im2col_s8(const darb_window *g, const int8_t *in, uint32_t oy, uint32_t ox, int32_t pad_value,
                    int8_t *patch)
{
    const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
    const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
    const uint32_t c = g->in_c;
    const uint32_t row_bytes = (uint32_t)g->kw * c;
    /* the whole kernel row is inside the image across (and contiguous) */
    const int inside_x = g->dil_w == 1u && x0 >= 0 && x0 + (int32_t)g->kw <= (int32_t)g->in_w;
    const int8_t pad = (int8_t)pad_value;
    uint32_t ky, kx;
    for (ky = 0; ky < g->kh; ++ky) {
        const int32_t iy = y0 + (int32_t)(ky * g->dil_h);
        if (iy < 0 || iy >= (int32_t)g->in_h) {
            darb_fill_s8(patch, pad, row_bytes);
            patch += row_bytes;
            continue;
        }
        if (inside_x) {
            darb_copy_s8(patch, in + ((uint32_t)iy * g->in_w + (uint32_t)x0) * c, row_bytes);
            patch += row_bytes;
            continue;
        }
        for (kx = 0; kx < g->kw; ++kx) {
            const int32_t ix = x0 + (int32_t)(kx * g->dil_w);
            if (ix < 0 || ix >= (int32_t)g->in_w) {
                darb_fill_s8(patch, pad, c);
            } else {
                darb_copy_s8(patch, in + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c, c);
            }
            patch += c;
        }
    }
}

void darb_im2col_f32(const darb_window *g, const float *in, uint32_t oy, uint32_t ox, float *patch)
{
    const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
    const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
    const uint32_t c = g->in_c;
    uint32_t ky, kx, i;
    for (ky = 0; ky < g->kh; ++ky) {
        const int32_t iy = y0 + (int32_t)(ky * g->dil_h);
        for (kx = 0; kx < g->kw; ++kx) {
            const int32_t ix = x0 + (int32_t)(kx * g->dil_w);
            if (iy < 0 || iy >= (int32_t)g->in_h || ix < 0 || ix >= (int32_t)g->in_w) {
                for (i = 0; i < c; ++i) {
                    patch[i] = 0.0f;
                }
            } else {
                memcpy(patch, in + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c, c * sizeof(float));
            }
            patch += c;
        }
    }
}

/* n bytes to every DARB_TILE-th byte of dst (a tile lane). With MVE, 16
 * bytes per step: one load and one scatter store (byte offsets 0, 8, ...,
 * 120); with unaligned word loads, 4 bytes per load, each stored as its low
 * byte and shifted down (2 instructions a byte instead of about 4). */
static inline void darb_copy_lane_s8(int8_t *dst, const int8_t *src, uint32_t n)
{
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(DARB_COMPACT)
    const uint8x16_t offsets = vmulq_n_u8(vidupq_n_u8(0u, 1), (uint8_t)DARB_TILE);
    for (; n >= 16u; n -= 16u) {
        vstrbq_scatter_offset_s8(dst, offsets, vld1q_s8(src));
        src += 16;
        dst += 16u * DARB_TILE;
    }
    if (n != 0u) {
        const mve_pred16_t p = vctp8q(n);
        vstrbq_scatter_offset_p_s8(dst, offsets, vldrbq_z_s8(src, p), p);
    }
#else
#if defined(__ARM_FEATURE_UNALIGNED) && !defined(DARB_COMPACT)
    for (; n >= 4u; n -= 4u) {
        uint32_t v;
        memcpy(&v, src, 4);
        dst[0] = (int8_t)(uint8_t)v;
        dst[DARB_TILE] = (int8_t)(uint8_t)(v >> 8);
        dst[2u * DARB_TILE] = (int8_t)(uint8_t)(v >> 16);
        dst[3u * DARB_TILE] = (int8_t)(uint8_t)(v >> 24);
        src += 4;
        dst += 4u * DARB_TILE;
    }
#endif
    for (; n != 0u; --n) {
        *dst = *src++;
        dst += DARB_TILE;
    }
#endif
}

static inline void darb_fill_lane_s8(int8_t *dst, int8_t value, uint32_t n)
{
    for (; n != 0u; --n) {
        *dst = value;
        dst += DARB_TILE;
    }
}

void darb_im2col_tile_s8(const darb_window *g, const int8_t *in, uint32_t oy, uint32_t ox, int32_t pad_value,
                         uint32_t lane, int8_t *tile)
{
    const int32_t y0 = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_top;
    const int32_t x0 = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_left;
    const uint32_t c = g->in_c;
    const uint32_t row_bytes = (uint32_t)g->kw * c;
    const int inside_x = g->dil_w == 1u && x0 >= 0 && x0 + (int32_t)g->kw <= (int32_t)g->in_w;
    const int8_t pad = (int8_t)pad_value;
    int8_t *dst = tile + lane;
    uint32_t ky, kx;
    for (ky = 0; ky < g->kh; ++ky) {
        const int32_t iy = y0 + (int32_t)(ky * g->dil_h);
        if (iy < 0 || iy >= (int32_t)g->in_h) {
            darb_fill_lane_s8(dst, pad, row_bytes);
            dst += DARB_TILE * row_bytes;
            continue;
        }
        if (inside_x) {
            darb_copy_lane_s8(dst, in + ((uint32_t)iy * g->in_w + (uint32_t)x0) * c, row_bytes);
            dst += DARB_TILE * row_bytes;
            continue;
        }
        for (kx = 0; kx < g->kw; ++kx) {
            const int32_t ix = x0 + (int32_t)(kx * g->dil_w);
            if (ix < 0 || ix >= (int32_t)g->in_w) {
                darb_fill_lane_s8(dst, pad, c);
            } else {
                darb_copy_lane_s8(dst, in + ((uint32_t)iy * g->in_w + (uint32_t)ix) * c, c);
            }
            dst += DARB_TILE * c;
        }
    }
}

void darb_tile_s8(const int8_t *in, uint32_t pixels, uint32_t in_stride, uint32_t cols, int8_t *tile)
{
    uint32_t p;
#if DARB_TILE == 4
    if (pixels == 4u) {
        const int8_t *r0 = in;
        const int8_t *r1 = in + in_stride;
        const int8_t *r2 = in + 2u * in_stride;
        const int8_t *r3 = in + 3u * in_stride;
        uint32_t j;
        for (j = 0; j < cols; ++j) {
            tile[0] = r0[j];
            tile[1] = r1[j];
            tile[2] = r2[j];
            tile[3] = r3[j];
            tile += 4;
        }
        return;
    }
#endif
    for (p = 0; p < pixels; ++p) {
        darb_copy_lane_s8(tile + p, in + p * in_stride, cols);
    }
    darb_tile_clear_s8(tile, pixels, cols);
}

void darb_tile_clear_s8(int8_t *tile, uint32_t from_lane, uint32_t cols)
{
    uint32_t p;
    for (p = from_lane; p < DARB_TILE; ++p) {
        darb_fill_lane_s8(tile + p, 0, cols);
    }
}
