"""DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D and MEAN in NHWC (darbgen/ops/depthwise.py,
darbgen/ops/pool.py, runtime_c/src/darb_depthwise.c, runtime_c/src/darb_pool_nhwc.c):

* the NumPy int8 / float32 references against literal transcriptions of TFLM's
  reference kernels (tests/naive_tflm.py);
* the NumPy int8 (and float32) references against the real TFLM interpreter on
  single-operator .tflite models built here (tests/tflite_build.py);
* the C kernels against the NumPy references, bit for bit, under ASan and
  UBSan, on random shapes and edge cases; and their strict compile for Cortex-M4.
"""
import subprocess

import numpy as np
import pytest

import naive_tflm as naive
import tflite_build
from conftest import need_tool
from darbgen.errors import DarbgenError
from darbgen.ops.depthwise import (DepthwiseGeometry, activation_range_f32, activation_range_int8,
                                   depthwise_f32, depthwise_f64, depthwise_int8, depthwise_multipliers)
from darbgen.ops.pool import (PoolGeometry, avg_pool_f32, avg_pool_int8, max_pool_f32, max_pool_int8, mean_f32,
                              mean_int8, mean_params_int8)
from darbgen.quantize import quantize_multiplier
from darbgen.resources import runtime_c_dir
from darbgen.toolchain import host

SOURCES = ("darb_depthwise.c", "darb_pool_nhwc.c")


# ----------------------------------------------------------------------------- random cases

def _geometry_args(rng, dilation=True, explicit=True):
    in_h, in_w = (int(v) for v in rng.integers(1, 10, 2))
    kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
    strides = tuple(int(v) for v in rng.integers(1, 4, 2))
    dil = tuple(int(v) for v in rng.integers(1, 4, 2)) if dilation and rng.random() < 0.4 else (1, 1)
    r = rng.random()
    if explicit and r < 0.2:
        padding = tuple(int(v) for v in rng.integers(0, 3, 4))
    else:
        padding = "same" if r < 0.6 else "valid"
    return (in_h, in_w), kernel, strides, dil, padding


def _zero_point(rng):
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.3 else int(rng.integers(-128, 128))


def random_depthwise(rng, explicit=True):
    """A random valid int8 depthwise case: (x, w, bias, geom, in_zp, out_zp, mult, shift, act_min, act_max)."""
    while True:
        (in_h, in_w), kernel, strides, dil, padding = _geometry_args(rng, explicit=explicit)
        in_c = int(rng.choice([1, 2, 3, 5, 16, 33, 40])) if rng.random() < 0.5 else int(rng.integers(1, 9))
        mult = int(rng.choice([1, 1, 2, 3]))
        try:
            geom = DepthwiseGeometry.from_padding((in_h, in_w, in_c), kernel, strides, dil, padding, mult)
        except DarbgenError:
            continue
        break
    n = int(rng.integers(1, 3))
    oc = geom.out_c
    x = rng.integers(-128, 128, (n, in_h, in_w, in_c)).astype(np.int8)
    if rng.random() < 0.15:
        x[...] = rng.choice([-128, 127])
    w = rng.integers(-127, 128, (geom.kh, geom.kw, oc)).astype(np.int8)
    if rng.random() < 0.15:
        w[...] = rng.choice([-127, 127, -128])
    in_zp, out_zp = _zero_point(rng), _zero_point(rng)
    taps = geom.kh * geom.kw
    typical = 75.0 * 74.0 * np.sqrt(taps)                  # rough spread of the accumulator
    bias = rng.integers(-int(typical), int(typical) + 1, oc).astype(np.int32) if rng.random() < 0.8 else None
    kind = rng.random()
    if kind < 0.7:                                          # outputs mostly inside int8
        pairs = [quantize_multiplier(60.0 / typical * 2.0 ** rng.uniform(-2, 1)) for _ in range(oc)]
    elif kind < 0.8:                                        # extreme multipliers and shifts
        pairs = [(int(rng.choice([0, 1, 1 << 30, (1 << 31) - 1])), int(rng.choice([-31, -20, -1, 0])))
                 for _ in range(oc)]
    else:                                                   # left shifts: small weights and bias
        w = rng.integers(-2, 3, w.shape).astype(np.int8)
        bias = None if bias is None else (bias // 4096).astype(np.int32)
        pairs = [(int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(1, 8))) for _ in range(oc)]
    mult_q = np.array([p[0] for p in pairs], np.int64)
    shift = np.array([p[1] for p in pairs], np.int64)
    lo = int(rng.integers(-128, 0)) if rng.random() < 0.3 else -128
    hi = int(rng.integers(0, 128)) if rng.random() < 0.3 else 127
    return x, w, bias, geom, in_zp, out_zp, mult_q, shift, lo, hi


def random_pool(rng, explicit=True):
    while True:
        (in_h, in_w), kernel, strides, _, padding = _geometry_args(rng, dilation=False, explicit=explicit)
        in_c = int(rng.choice([1, 3, 32, 33, 40])) if rng.random() < 0.5 else int(rng.integers(1, 9))
        try:
            geom = PoolGeometry.from_padding((in_h, in_w, in_c), kernel, strides, padding)
        except DarbgenError:
            continue
        return geom, int(rng.integers(1, 3))


def _clamp(rng):
    lo = int(rng.integers(-128, 0)) if rng.random() < 0.3 else -128
    hi = int(rng.integers(0, 128)) if rng.random() < 0.3 else 127
    return lo, hi


def _int8_image(rng, shape):
    x = rng.integers(-128, 128, shape).astype(np.int8)
    r = rng.random()
    if r < 0.1:
        x[...] = -128
    elif r < 0.2:
        x[...] = 127
    return x


def _float_image(rng, shape, specials=False):
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
    if specials:
        flat = x.reshape(-1)
        k = max(1, flat.size // 10)
        idx = rng.choice(flat.size, k, replace=True)
        flat[idx] = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3e38, -3e38],
                                        np.float32), k)
    return x


def _pads(geom):
    return (geom.pad_top, geom.pad_left)


# ----------------------------------------------------------------------------- geometry

def test_geometry_matches_tflite_padding():
    for in_size in range(1, 12):
        for k in range(1, 6):
            for stride in range(1, 4):
                for dil in range(1, 4):
                    for padding in ("same", "valid"):
                        pad_h, pad_w, out_h, out_w = naive.compute_padding_height_width(
                            stride, 1, dil, 1, in_size, 5, k, 1, padding)
                        if out_h < 1:
                            with pytest.raises(DarbgenError, match="no output"):
                                DepthwiseGeometry.from_padding((in_size, 5, 2), (k, 1), (stride, 1), (dil, 1),
                                                               padding)
                            continue
                        g = DepthwiseGeometry.from_padding((in_size, 5, 2), (k, 1), (stride, 1), (dil, 1), padding)
                        assert (g.out_h, g.pad_top, g.out_w, g.pad_left) == (out_h, pad_h, out_w, pad_w)
                        if dil == 1:
                            p = PoolGeometry.from_padding((5, in_size, 2), (1, k), (1, stride), padding)
                            assert (p.out_w, p.pad_left) == (out_h, pad_h)


def test_explicit_padding_and_geometry_errors():
    g = DepthwiseGeometry.from_padding((1, 5, 5, 3), 3, 2, 1, (1, 0, 2, 1), mult=2)
    assert (g.out_h, g.out_w, g.pad_top, g.pad_left, g.out_c) == (3, 2, 1, 0, 6)
    assert (g.pad_bottom, g.pad_right) == (1, 0)
    with pytest.raises(DarbgenError, match="padding must be"):
        DepthwiseGeometry.from_padding((5, 5, 3), 3, padding="full")
    with pytest.raises(DarbgenError, match="stride"):
        DepthwiseGeometry.from_padding((5, 5, 3), 3, strides=0)
    with pytest.raises(DarbgenError, match="wholly outside"):
        PoolGeometry.from_padding((5, 5, 3), 2, 1, (2, 0, 0, 0))
    with pytest.raises(DarbgenError, match="wholly outside"):
        PoolGeometry.from_padding((5, 5, 3), 2, 1, (0, 0, 0, 3))
    with pytest.raises(DarbgenError, match="16 bits"):
        DepthwiseGeometry.from_padding((70000, 5, 3), 3)
    with pytest.raises(DarbgenError, match="H and W"):
        mean_int8(np.zeros((1, 2, 2, 3), np.int8), 0, 0.1, 0, 0.1, axes=(1, 3))
    assert PoolGeometry.from_padding((4, 6, 1), (2, 3)).out_shape == (2, 2, 1)     # strides default to the window


def test_depthwise_refuses_possible_overflow():
    g = DepthwiseGeometry.from_padding((3, 3, 1), 3, padding="same")
    x = np.zeros((1, 3, 3, 1), np.int8)
    w = np.full((3, 3, 1), 127, np.int8)
    with pytest.raises(DarbgenError, match="overflow"):
        depthwise_int8(x, w, np.array([2 ** 31 - 2], np.int32), g, 0, 0, 1 << 30, 0)
    with pytest.raises(DarbgenError, match="left shift"):
        depthwise_int8(x, w, None, g, 0, 0, 1 << 30, 20)
    with pytest.raises(DarbgenError, match="shifts"):
        depthwise_int8(x, w, None, g, 0, 0, 1 << 30, -32)
    with pytest.raises(DarbgenError, match="does not match"):
        depthwise_int8(x[:, :2], w, None, g, 0, 0, 1 << 30, -5)


def test_mean_params_fold_the_count_as_tflm():
    for in_scale, out_scale, count in [(0.1, 0.1, 1), (0.1, 0.1, 49), (0.02, 0.5, 1024), (0.5, 0.02, 3),
                                       (1e-9, 1.0, 100), (3.0, 0.7, 2 ** 20), (0.05, 0.05, 8421504)]:
        m, s = mean_params_int8(in_scale, out_scale, count)
        qm, qs = naive.quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
        shift = min(count.bit_length() - 1, 32, 31 + qs)
        assert (m, s) == ((qm << shift) // count, qs - shift)
        assert 0 <= m < 2 ** 31 and -31 <= s <= 30
    with pytest.raises(DarbgenError, match="overflow"):
        mean_params_int8(1e4, 1e-4, 1)


# ----------------------------------------------------------------------------- NumPy vs naive TFLM

def test_depthwise_int8_matches_naive_tflm():
    rng = np.random.default_rng(1)
    for _ in range(60):
        x, w, bias, geom, in_zp, out_zp, m, s, lo, hi = random_depthwise(rng)
        got = depthwise_int8(x, w, bias, geom, in_zp, out_zp, m, s, lo, hi)
        want = naive.depthwise_conv_per_channel(
            x, w[None], bias, (geom.stride_h, geom.stride_w), (geom.dil_h, geom.dil_w), _pads(geom), geom.mult,
            -in_zp, out_zp, m, s, lo, hi, (geom.out_h, geom.out_w))
        np.testing.assert_array_equal(got, want)


def test_depthwise_float_matches_naive_tflm_and_float64():
    rng = np.random.default_rng(2)
    for i in range(30):
        _, _, _, geom, *_ = random_depthwise(rng)
        n = int(rng.integers(1, 3))
        x = _float_image(rng, (n, *geom.in_shape), specials=i % 3 == 0)
        w = _float_image(rng, (geom.kh, geom.kw, geom.out_c))
        bias = None if i % 4 == 0 else _float_image(rng, (geom.out_c,))
        lo, hi = activation_range_f32(["none", "relu", "relu6"][i % 3])
        got = depthwise_f32(x, w, bias, geom, lo, hi)
        want = naive.depthwise_conv_float(x, w[None], bias, (geom.stride_h, geom.stride_w),
                                          (geom.dil_h, geom.dil_w), _pads(geom), geom.mult, lo, hi,
                                          (geom.out_h, geom.out_w))
        assert_same_floats(got, want)
        if i % 3 != 0:
            exact = depthwise_f64(x, w, bias, geom, lo, hi)
            scale = depthwise_f64(np.abs(x), np.abs(w), None if bias is None else np.abs(bias), geom).max()
            assert np.max(np.abs(got - exact)) <= 1e-5 * scale + 1e-30


def test_pool_int8_matches_naive_tflm():
    rng = np.random.default_rng(3)
    for _ in range(60):
        geom, n = random_pool(rng)
        x = _int8_image(rng, (n, *geom.in_shape))
        lo, hi = _clamp(rng)
        args = ((geom.kh, geom.kw), (geom.stride_h, geom.stride_w), _pads(geom), lo, hi, (geom.out_h, geom.out_w))
        np.testing.assert_array_equal(avg_pool_int8(x, geom, lo, hi), naive.average_pool_int8(x, *args))
        np.testing.assert_array_equal(max_pool_int8(x, geom, lo, hi), naive.max_pool_int8(x, *args))


def test_pool_float_matches_naive_tflm():
    rng = np.random.default_rng(4)
    for i in range(40):
        geom, n = random_pool(rng)
        x = _float_image(rng, (n, *geom.in_shape), specials=i % 2 == 0)
        lo, hi = activation_range_f32(["none", "relu", "relu6", "relu_n1_to_1"][i % 4])
        args = ((geom.kh, geom.kw), (geom.stride_h, geom.stride_w), _pads(geom), lo, hi, (geom.out_h, geom.out_w))
        assert_same_floats(avg_pool_f32(x, geom, lo, hi), naive.average_pool_float(x, *args))
        assert_same_floats(max_pool_f32(x, geom, lo, hi), naive.max_pool_float(x, *args))


MEAN_SCALES = [(0.1, 0.1), (0.05, 0.2), (0.3, 0.01), (0.02, 0.02 * 3.0), (1.0, 1e-3), (1e-4, 1.0), (0.7, 0.35)]


def test_mean_matches_naive_tflm():
    rng = np.random.default_rng(5)
    shapes = [(1, 1, 1, 3), (2, 1, 1, 40), (1, 7, 9, 5), (2, 4, 4, 33), (1, 32, 32, 2), (1, 3, 5, 1), (1, 10, 10, 8)]
    for i in range(40):
        shape = shapes[i % len(shapes)]
        in_scale, out_scale = MEAN_SCALES[i % len(MEAN_SCALES)]
        in_zp, out_zp = _zero_point(rng), _zero_point(rng)
        if i % 5 == 0:
            out_zp = in_zp
        x = _int8_image(rng, shape)
        try:
            got = mean_int8(x, in_zp, in_scale, out_zp, out_scale, keep_dims=False)
        except DarbgenError as e:
            assert "overflow" in str(e) and in_scale / out_scale > 100
            continue
        np.testing.assert_array_equal(got, naive.mean_int8(x, in_zp, in_scale, out_zp, out_scale))
        assert mean_int8(x, in_zp, in_scale, out_zp, out_scale, axes=(-2, -3)).shape == (shape[0], 1, 1, shape[3])
        xf = _float_image(rng, shape, specials=i % 4 == 0)
        assert_same_floats(mean_f32(xf, keep_dims=False), naive.mean_float(xf))


def assert_same_floats(got, want):
    got = np.asarray(got, np.float32)
    want = np.asarray(want, np.float32)
    assert got.shape == want.shape
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        k = np.flatnonzero(~same.reshape(-1))[0]
        raise AssertionError(f"{(~same).sum()} of {same.size} differ; first at {np.unravel_index(k, got.shape)}: "
                             f"{got.reshape(-1)[k]!r} vs {want.reshape(-1)[k]!r}")


# ----------------------------------------------------------------------------- C vs NumPy

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darb_ops_spatial.h"

static unsigned char *buf;
static size_t len;
static size_t pos;

static void need(size_t n)
{
    if (pos + n > len) {
        fprintf(stderr, "record truncated at %lu\n", (unsigned long)pos);
        exit(3);
    }
}

static int32_t word(void)
{
    int32_t v;
    need(4);
    memcpy(&v, buf + pos, 4);
    pos += 4;
    return v;
}

static float fword(void)
{
    float v;
    need(4);
    memcpy(&v, buf + pos, 4);
    pos += 4;
    return v;
}

/* A copy of the next n bytes in its own allocation (so ASan sees over-reads). */
static void *take(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    need(n);
    memcpy(p, buf + pos, n);
    pos += n;
    return p;
}

int main(int argc, char **argv)
{
    FILE *f = fopen(argv[1], "rb");
    FILE *o = fopen(argv[2], "wb");
    (void)argc;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(len);
    if (fread(buf, 1, len, f) != len) {
        return 2;
    }
    while (pos < len) {
        const int32_t op = word();
        const int32_t n = word();
        int32_t b;
        if (op == 1 || op == 2) {
            darb_dw_geometry g;
            size_t in_n, out_n, w_n, oc;
            g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.in_c = (uint16_t)word();
            g.mult = (uint16_t)word(); g.kh = (uint16_t)word(); g.kw = (uint16_t)word();
            g.stride_h = (uint16_t)word(); g.stride_w = (uint16_t)word();
            g.dil_h = (uint16_t)word(); g.dil_w = (uint16_t)word();
            g.pad_top = (uint16_t)word(); g.pad_left = (uint16_t)word();
            g.out_h = (uint16_t)word(); g.out_w = (uint16_t)word();
            oc = (size_t)g.in_c * g.mult;
            in_n = (size_t)g.in_h * g.in_w * g.in_c;
            out_n = (size_t)g.out_h * g.out_w * oc;
            w_n = (size_t)g.kh * g.kw * oc;
            if (op == 1) {
                darb_dw_quant_s8 q;
                int8_t *w;
                int32_t has_bias;
                q.input_offset = word(); q.output_offset = word(); q.act_min = word(); q.act_max = word();
                has_bias = word();
                w = take(w_n);
                q.bias = has_bias ? take(oc * 4) : NULL;
                q.multiplier = take(oc * 4);
                q.shift = take(oc);
                for (b = 0; b < n; ++b) {
                    int8_t *in = take(in_n);
                    int8_t *out = malloc(out_n);
                    darb_depthwise_s8(&g, w, &q, in, out);
                    fwrite(out, 1, out_n, o);
                    free(in); free(out);
                }
                free(w); free((void *)q.bias); free((void *)q.multiplier); free((void *)q.shift);
            } else {
                darb_dw_quant_f32 q;
                float *w;
                int32_t has_bias = word();
                q.act_min = fword(); q.act_max = fword();
                w = take(w_n * 4);
                q.bias = has_bias ? take(oc * 4) : NULL;
                for (b = 0; b < n; ++b) {
                    float *in = take(in_n * 4);
                    float *out = malloc(out_n * 4);
                    darb_depthwise_f32(&g, w, &q, in, out);
                    fwrite(out, 4, out_n, o);
                    free(in); free(out);
                }
                free(w); free((void *)q.bias);
            }
        } else if (op >= 3 && op <= 6) {
            darb_pool_geometry g;
            size_t in_n, out_n;
            g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.in_c = (uint16_t)word();
            g.kh = (uint16_t)word(); g.kw = (uint16_t)word();
            g.stride_h = (uint16_t)word(); g.stride_w = (uint16_t)word();
            g.pad_top = (uint16_t)word(); g.pad_left = (uint16_t)word();
            g.out_h = (uint16_t)word(); g.out_w = (uint16_t)word();
            in_n = (size_t)g.in_h * g.in_w * g.in_c;
            out_n = (size_t)g.out_h * g.out_w * g.in_c;
            if (op == 3 || op == 5) {
                const int32_t lo = word();
                const int32_t hi = word();
                for (b = 0; b < n; ++b) {
                    int8_t *in = take(in_n);
                    int8_t *out = malloc(out_n);
                    if (op == 3) {
                        darb_avgpool_nhwc_s8(&g, lo, hi, in, out);
                    } else {
                        darb_maxpool_nhwc_s8(&g, lo, hi, in, out);
                    }
                    fwrite(out, 1, out_n, o);
                    free(in); free(out);
                }
            } else {
                const float lo = fword();
                const float hi = fword();
                for (b = 0; b < n; ++b) {
                    float *in = take(in_n * 4);
                    float *out = malloc(out_n * 4);
                    if (op == 4) {
                        darb_avgpool_nhwc_f32(&g, lo, hi, in, out);
                    } else {
                        darb_maxpool_nhwc_f32(&g, lo, hi, in, out);
                    }
                    fwrite(out, 4, out_n, o);
                    free(in); free(out);
                }
            }
        } else if (op == 7 || op == 8) {
            darb_mean_geometry g;
            size_t in_n;
            g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.channels = (uint16_t)word();
            in_n = (size_t)g.in_h * g.in_w * g.channels;
            if (op == 7) {
                darb_mean_quant_s8 q;
                q.input_zero_point = word(); q.output_zero_point = word();
                q.multiplier = word(); q.shift = word();
                for (b = 0; b < n; ++b) {
                    int8_t *in = take(in_n);
                    int8_t *out = malloc(g.channels);
                    darb_mean_s8(&g, &q, in, out);
                    fwrite(out, 1, g.channels, o);
                    free(in); free(out);
                }
            } else {
                for (b = 0; b < n; ++b) {
                    float *in = take(in_n * 4);
                    float *out = malloc((size_t)g.channels * 4);
                    darb_mean_f32(&g, in, out);
                    fwrite(out, 4, g.channels, o);
                    free(in); free(out);
                }
            }
        } else {
            fprintf(stderr, "unknown op %d\n", (int)op);
            return 4;
        }
    }
    free(buf);
    fclose(f);
    return fclose(o) == 0 ? 0 : 5;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    need_tool("gcc")
    folder = tmp_path_factory.mktemp("spatial")
    (folder / "driver.c").write_text(DRIVER)
    rt = runtime_c_dir()
    # The kernels with the strict flags; the driver (test code) with the sanitizers only.
    host.run_compiler(["gcc", *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, "-I", str(rt / "include"), "-c",
                       *[str(rt / "src" / s) for s in SOURCES]], cwd=folder)
    host.run_compiler(["gcc", "-std=c99", "-O1", "-ffp-contract=off", *host.SANITIZE_FLAGS, "-I",
                       str(rt / "include"), "driver.c", *[s.replace(".c", ".o") for s in SOURCES], "-o", "driver"],
                      cwd=folder)
    return Driver(folder)


class Driver:
    """Collects cases (records for the C driver and the NumPy expectation), runs them all at once."""

    def __init__(self, folder):
        self.folder = folder

    def run(self, cases):
        blob = b"".join(c[0] for c in cases)
        (self.folder / "in.bin").write_bytes(blob)
        subprocess.run([str(self.folder / "driver"), "in.bin", "out.bin"], cwd=self.folder, check=True,
                       capture_output=True, timeout=300)
        out = (self.folder / "out.bin").read_bytes()
        at = 0
        for record, want, what in cases:
            size = want.nbytes
            got = np.frombuffer(out[at:at + size], want.dtype).reshape(want.shape)
            at += size
            if want.dtype == np.float32:
                try:
                    assert_same_floats(got, want)
                except AssertionError as e:
                    raise AssertionError(f"{what}: {e}") from None
            else:
                bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
                assert bad.size == 0, (f"{what}: {bad.size} of {want.size} differ, first at "
                                       f"{np.unravel_index(bad[0], want.shape)}: C {got.reshape(-1)[bad[0]]}, "
                                       f"NumPy {want.reshape(-1)[bad[0]]}")
        assert at == len(out)


def _words(*values):
    return np.asarray(values, np.int64).astype("<i4").tobytes()


def _f32(*values):
    return np.asarray(values, np.float32).astype("<f4").tobytes()


def _dw_geom_words(g):
    return _words(g.in_h, g.in_w, g.in_c, g.mult, g.kh, g.kw, g.stride_h, g.stride_w, g.dil_h, g.dil_w,
                  g.pad_top, g.pad_left, g.out_h, g.out_w)


def _pool_geom_words(g):
    return _words(g.in_h, g.in_w, g.in_c, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h,
                  g.out_w)


def dw_s8_case(x, w, bias, geom, in_zp, out_zp, m, s, lo, hi):
    want = depthwise_int8(x, w, bias, geom, in_zp, out_zp, m, s, lo, hi)
    rec = (_words(1, x.shape[0]) + _dw_geom_words(geom) + _words(-in_zp, out_zp, lo, hi, bias is not None)
           + w.astype(np.int8).tobytes() + (b"" if bias is None else np.asarray(bias, "<i4").tobytes())
           + np.asarray(m, "<i4").tobytes() + np.asarray(s, np.int8).tobytes() + x.tobytes())
    return rec, want, f"depthwise s8 {geom}"


def dw_f32_case(x, w, bias, geom, lo, hi):
    want = depthwise_f32(x, w, bias, geom, lo, hi)
    rec = (_words(2, x.shape[0]) + _dw_geom_words(geom) + _words(bias is not None) + _f32(lo, hi)
           + w.astype("<f4").tobytes() + (b"" if bias is None else np.asarray(bias, "<f4").tobytes())
           + x.astype("<f4").tobytes())
    return rec, want, f"depthwise f32 {geom}"


def pool_case(kind, x, geom, lo, hi):
    ops = {("avg", np.int8): (3, avg_pool_int8), ("avg", np.float32): (4, avg_pool_f32),
           ("max", np.int8): (5, max_pool_int8), ("max", np.float32): (6, max_pool_f32)}
    code, fn = ops[(kind, x.dtype.type)]
    want = fn(x, geom, lo, hi)
    clamp = _words(lo, hi) if x.dtype == np.int8 else _f32(lo, hi)
    rec = _words(code, x.shape[0]) + _pool_geom_words(geom) + clamp + x.tobytes()
    return rec, want, f"{kind} pool {x.dtype} {geom}"


def mean_case(x, in_zp=0, in_scale=1.0, out_zp=0, out_scale=1.0):
    n, h, w, c = x.shape
    if x.dtype == np.int8:
        want = mean_int8(x, in_zp, in_scale, out_zp, out_scale, keep_dims=False)
        m, s = mean_params_int8(in_scale, out_scale, h * w)
        rec = _words(7, n, h, w, c, in_zp, out_zp, m, s) + x.tobytes()
    else:
        want = mean_f32(x, keep_dims=False)
        rec = _words(8, n, h, w, c) + x.tobytes()
    return rec, want, f"mean {x.dtype} {x.shape}"


def test_c_depthwise_int8_is_bit_exact(driver):
    rng = np.random.default_rng(10)
    cases = [dw_s8_case(*random_depthwise(rng)) for _ in range(600)]
    # Hand-picked edges: 1x1 kernel, windows wholly in the padding, channel blocks crossed by the multiplier.
    g = DepthwiseGeometry.from_padding((4, 4, 1), 1, 1, 1, "valid", mult=1)
    cases.append(dw_s8_case(np.full((1, 4, 4, 1), -128, np.int8), np.full((1, 1, 1), -128, np.int8), None, g,
                            127, -128, [(1 << 31) - 1], [0], -128, 127))
    g = DepthwiseGeometry.from_padding((2, 3, 5), (3, 3), 1, 1, (3, 3, 3, 3), mult=7)
    x = rng.integers(-128, 128, (1, 2, 3, 5)).astype(np.int8)
    w = rng.integers(-127, 128, (3, 3, 35)).astype(np.int8)
    cases.append(dw_s8_case(x, w, rng.integers(-1000, 1000, 35), g, -128, 127, [1 << 30] * 35, [-8] * 35, -128, 127))
    g = DepthwiseGeometry.from_padding((9, 9, 11), (3, 3), 2, 3, "same", mult=3)
    x = rng.integers(-128, 128, (2, 9, 9, 11)).astype(np.int8)
    w = rng.integers(-127, 128, (3, 3, 33)).astype(np.int8)
    cases.append(dw_s8_case(x, w, None, g, 5, -7, rng.integers(1 << 30, 1 << 31, 33), [-10] * 33, -20, 90))
    driver.run(cases)


def test_c_depthwise_float_is_bit_exact(driver):
    rng = np.random.default_rng(11)
    cases = []
    for i in range(300):
        _, _, _, geom, *_ = random_depthwise(rng)
        n = int(rng.integers(1, 3))
        x = _float_image(rng, (n, *geom.in_shape), specials=i % 5 == 0)
        w = _float_image(rng, (geom.kh, geom.kw, geom.out_c), specials=i % 7 == 0)
        bias = None if i % 4 == 0 else _float_image(rng, (geom.out_c,))
        lo, hi = activation_range_f32(["none", "relu", "relu6", "relu_n1_to_1"][i % 4])
        cases.append(dw_f32_case(x, w, bias, geom, lo, hi))
    driver.run(cases)


def test_c_pooling_is_bit_exact(driver):
    rng = np.random.default_rng(12)
    cases = []
    for i in range(400):
        geom, n = random_pool(rng)
        lo, hi = _clamp(rng)
        x8 = _int8_image(rng, (n, *geom.in_shape))
        cases.append(pool_case("avg", x8, geom, lo, hi))
        cases.append(pool_case("max", x8, geom, lo, hi))
        xf = _float_image(rng, (n, *geom.in_shape), specials=i % 4 == 0)
        flo, fhi = activation_range_f32(["none", "relu", "relu6", "relu_n1_to_1"][i % 4])
        cases.append(pool_case("avg", xf, geom, flo, fhi))
        cases.append(pool_case("max", xf, geom, flo, fhi))
    # one window covering the whole image (global pooling), and a 1x1 window
    g = PoolGeometry.from_padding((7, 5, 40), (7, 5), 1, "valid")
    cases.append(pool_case("avg", _int8_image(rng, (1, 7, 5, 40)), g, -128, 127))
    g = PoolGeometry.from_padding((3, 4, 2), 1, 1, "same")
    cases.append(pool_case("max", _int8_image(rng, (2, 3, 4, 2)), g, -5, 5))
    driver.run(cases)


def test_c_mean_is_bit_exact(driver):
    rng = np.random.default_rng(13)
    cases = []
    for i in range(300):
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        if i % 10 == 0:
            h, w = 64, 64
        c = int(rng.choice([1, 3, 32, 33, 70]))
        n = int(rng.integers(1, 3))
        in_scale, out_scale = MEAN_SCALES[i % len(MEAN_SCALES)]
        in_zp, out_zp = _zero_point(rng), _zero_point(rng)
        try:
            mean_params_int8(in_scale, out_scale, h * w)
        except DarbgenError:
            continue
        cases.append(mean_case(_int8_image(rng, (n, h, w, c)), in_zp, in_scale, out_zp, out_scale))
        cases.append(mean_case(_float_image(rng, (n, h, w, c), specials=i % 6 == 0)))
    driver.run(cases)


def test_kernels_compile_strictly_for_cortex_m4(tmp_path, arm_gcc):
    rt = runtime_c_dir()
    for src in SOURCES:
        host.run_compiler([arm_gcc, *host.STRICT_FLAGS, *host.CORTEX_M4_FLAGS, "-I", str(rt / "include"), "-c",
                           str(rt / "src" / src), "-o", str(tmp_path / (src + ".o"))], cwd=tmp_path)


# ----------------------------------------------------------------------------- NumPy vs the real TFLM

def _tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError as e:                                                    # pragma: no cover
        pytest.skip(f"the tflite-micro wheel is not installed ({e}); `bash scripts/setup.sh` installs it")


def _tf_padding(rng):
    return "same" if rng.random() < 0.5 else "valid"


def test_depthwise_int8_matches_tflm():
    _tflm()
    T = tflite_build.Tensor
    rng = np.random.default_rng(20)
    done = 0
    while done < 50:
        (in_h, in_w), kernel, strides, dil, _ = _geometry_args(rng)
        padding = _tf_padding(rng)
        in_c = int(rng.integers(1, 12))
        mult = int(rng.choice([1, 1, 2, 3]))
        try:
            geom = DepthwiseGeometry.from_padding((in_h, in_w, in_c), kernel, strides, dil, padding, mult)
        except DarbgenError:
            continue
        n = int(rng.integers(1, 3))
        oc = geom.out_c
        in_scale = float(10 ** rng.uniform(-3, 0))
        w_scales = (10 ** rng.uniform(-2.5, -2, oc)).astype(np.float32)
        spread = 73.0 * 74.0 * np.sqrt(geom.kh * geom.kw)          # of the accumulator
        out_scale = float(in_scale * np.median(w_scales) * spread / 60 * 10 ** rng.uniform(-0.5, 0.5))
        in_zp, out_zp = _zero_point(rng), _zero_point(rng)
        act = ["none", "relu", "relu6"][done % 3]
        x = _int8_image(rng, (n, in_h, in_w, in_c))
        w = rng.integers(-127, 128, (geom.kh, geom.kw, oc)).astype(np.int8)
        bias = rng.integers(-5000, 5000, oc).astype(np.int32)
        model = tflite_build.single_op_model(
            "DEPTHWISE_CONV_2D",
            [T((n, in_h, in_w, in_c), "int8", scale=in_scale, zero_point=in_zp),
             T((1, geom.kh, geom.kw, oc), "int8", data=w[None], scale=w_scales, zero_point=[0] * oc,
               quantized_dimension=3),
             T((oc,), "int32", data=bias, scale=np.float32(in_scale) * w_scales, zero_point=[0] * oc)],
            [T((n, geom.out_h, geom.out_w, oc), "int8", scale=out_scale, zero_point=out_zp)],
            ("DepthwiseConv2DOptions", {"padding": padding, "stride_w": geom.stride_w, "stride_h": geom.stride_h,
                                        "depth_multiplier": mult, "fused_activation_function": act,
                                        "dilation_w_factor": geom.dil_w, "dilation_h_factor": geom.dil_h}),
            op_version=3)
        (want,) = tflite_build.run_tflm(model, [x])
        m, s = depthwise_multipliers(in_scale, w_scales, out_scale)
        lo, hi = activation_range_int8(act, out_scale, out_zp)
        np.testing.assert_array_equal(depthwise_int8(x, w, bias, geom, in_zp, out_zp, m, s, lo, hi), want)
        done += 1


def test_pooling_int8_and_float_match_tflm():
    _tflm()
    T = tflite_build.Tensor
    rng = np.random.default_rng(21)
    for i in range(60):
        while True:
            (in_h, in_w), kernel, strides, _, _ = _geometry_args(rng, dilation=False)
            padding = _tf_padding(rng)
            in_c = int(rng.integers(1, 12))
            try:
                geom = PoolGeometry.from_padding((in_h, in_w, in_c), kernel, strides, padding)
                break
            except DarbgenError:
                continue
        n = int(rng.integers(1, 3))
        kind = "avg" if i % 2 == 0 else "max"
        act = ["none", "relu", "relu6", "relu_n1_to_1"][(i // 2) % 4]
        options = ("Pool2DOptions", {"padding": padding, "stride_w": geom.stride_w, "stride_h": geom.stride_h,
                                     "filter_width": geom.kw, "filter_height": geom.kh,
                                     "fused_activation_function": act})
        op = "AVERAGE_POOL_2D" if kind == "avg" else "MAX_POOL_2D"
        scale, zp = float(10 ** rng.uniform(-3, 0)), _zero_point(rng)
        x = _int8_image(rng, (n, in_h, in_w, in_c))
        model = tflite_build.single_op_model(
            op, [T(x.shape, "int8", scale=scale, zero_point=zp)],
            [T((n, geom.out_h, geom.out_w, in_c), "int8", scale=scale, zero_point=zp)], options)
        (want,) = tflite_build.run_tflm(model, [x])
        lo, hi = activation_range_int8(act, scale, zp)
        fn = avg_pool_int8 if kind == "avg" else max_pool_int8
        np.testing.assert_array_equal(fn(x, geom, lo, hi), want)
        xf = _float_image(rng, x.shape)
        model = tflite_build.single_op_model(
            op, [T(x.shape, "float32")], [T((n, geom.out_h, geom.out_w, in_c), "float32")], options)
        (want,) = tflite_build.run_tflm(model, [xf])
        lo, hi = activation_range_f32(act)
        assert_same_floats((avg_pool_f32 if kind == "avg" else max_pool_f32)(xf, geom, lo, hi), want)


def test_depthwise_float_matches_tflm():
    _tflm()
    T = tflite_build.Tensor
    rng = np.random.default_rng(22)
    for i in range(20):
        while True:
            (in_h, in_w), kernel, strides, dil, _ = _geometry_args(rng)
            padding = _tf_padding(rng)
            try:
                geom = DepthwiseGeometry.from_padding((in_h, in_w, int(rng.integers(1, 9))), kernel, strides, dil,
                                                      padding, int(rng.choice([1, 2])))
                break
            except DarbgenError:
                continue
        x = _float_image(rng, (1, *geom.in_shape))
        w = _float_image(rng, (geom.kh, geom.kw, geom.out_c))
        bias = _float_image(rng, (geom.out_c,))
        act = ["none", "relu", "relu6"][i % 3]
        model = tflite_build.single_op_model(
            "DEPTHWISE_CONV_2D",
            [T(x.shape, "float32"), T((1, *w.shape), "float32", data=w[None]), T(bias.shape, "float32", data=bias)],
            [T((1, *geom.out_shape), "float32")],
            ("DepthwiseConv2DOptions", {"padding": padding, "stride_w": geom.stride_w, "stride_h": geom.stride_h,
                                        "depth_multiplier": geom.mult, "fused_activation_function": act,
                                        "dilation_w_factor": geom.dil_w, "dilation_h_factor": geom.dil_h}))
        (want,) = tflite_build.run_tflm(model, [x])
        lo, hi = activation_range_f32(act)
        assert_same_floats(depthwise_f32(x, w, bias, geom, lo, hi), want)


def test_mean_int8_and_float_match_tflm():
    """Both TFLM MEAN cases: requantizing, and input and output sharing scale and zero point."""
    _tflm()
    T = tflite_build.Tensor
    rng = np.random.default_rng(23)
    shapes = [(1, 1, 1, 3), (2, 1, 1, 7), (1, 7, 9, 5), (2, 4, 4, 33), (1, 32, 32, 2), (1, 3, 5, 1), (1, 10, 10, 8),
              (1, 13, 1, 4)]
    for i in range(48):
        shape = shapes[i % len(shapes)]
        in_scale, out_scale = MEAN_SCALES[i % len(MEAN_SCALES)]
        in_zp, out_zp = _zero_point(rng), _zero_point(rng)
        if i % 3 == 0:
            out_scale, out_zp = in_scale, in_zp                 # the "same quantization" case
        keep = i % 2 == 0
        x = _int8_image(rng, shape)
        axes = [1, 2] if i % 4 < 2 else [2, 1]
        out_shape = (shape[0], 1, 1, shape[3]) if keep else (shape[0], shape[3])
        try:
            ours = mean_int8(x, in_zp, in_scale, out_zp, out_scale, axes=axes, keep_dims=keep)
        except DarbgenError:
            continue
        model = tflite_build.single_op_model(
            "MEAN", [T(shape, "int8", scale=in_scale, zero_point=in_zp),
                     T((2,), "int32", data=np.array(axes, np.int32))],
            [T(out_shape, "int8", scale=out_scale, zero_point=out_zp)], ("ReducerOptions", {"keep_dims": keep}),
            op_version=2)
        (want,) = tflite_build.run_tflm(model, [x])
        np.testing.assert_array_equal(ours, want)
        xf = _float_image(rng, shape)
        model = tflite_build.single_op_model(
            "MEAN", [T(shape, "float32"), T((2,), "int32", data=np.array(axes, np.int32))],
            [T(out_shape, "float32")], ("ReducerOptions", {"keep_dims": keep}))
        (want,) = tflite_build.run_tflm(model, [xf])
        assert_same_floats(mean_f32(xf, axes=axes, keep_dims=keep), want)
