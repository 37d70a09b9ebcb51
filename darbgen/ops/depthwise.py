"""DEPTHWISE_CONV_2D in NHWC: geometry, and the int8 / float32 / float64 arithmetic.

The int8 path is bit-exact with TensorFlow Lite Micro's reference kernel
``reference_integer_ops::DepthwiseConvPerChannel`` and how TFLM's Prepare
derives its parameters (``depthwise_conv_common.cc``):

* output channel ``oc = c * mult + m`` reads input channel ``c``; weights are
  TFLite's ``[1, kh, kw, C * mult]`` filter with the leading 1 dropped;
* for each output pixel and channel, ``acc`` is the int32 sum over the taps
  *inside* the image of ``w * (x - input_zero_point)`` (taps in the padding are
  skipped, which is the same as a zero contribution), then ``+ bias``;
* ``MultiplyByQuantizedMultiplier(acc, multiplier[oc], shift[oc])`` (gemmlowp
  double rounding, :func:`darbgen.quantize.requantize_s8`), ``+ output zero
  point``, clamp to ``[act_min, act_max]``.

float32 follows ``reference_ops::DepthwiseConv``: ``total = 0.0f``, then
``total += x * w`` over the in-image taps in (ky, kx) order, then
``total + bias``, then the clamp; the C does the same float operations in the
same order, so with ``-ffp-contract=off`` the two agree bit for bit.

Padding follows TFLite (``tensorflow/lite/kernels/padding.h``): "same" gives
``ceil(in / stride)`` outputs and puts the odd extra row / column of padding at
the bottom / right; "valid" gives ``(in + stride - effective_kernel) // stride``.

This module is plain NumPy (no numba): it is the oracle the C is checked against.
"""
import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import DarbgenError
from ..quantize import INT32_MAX, quantize_multiplier
from .base import FLT_MAX, activation_range_f32, activation_range_s8  # noqa: F401  (re-exported)

#: Largest value of any geometry field (the C structs hold uint16_t).
GEOMETRY_LIMIT = 65535


def _positive_pair(value, what, op):
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise DarbgenError(f"{op}: {what} must be an integer or a pair of integers, got {value!r}") from None
    if a < 1 or b < 1:
        raise DarbgenError(f"{op}: {what} must be >= 1, got {value!r}")
    return a, b


def tflite_out_size(padding, in_size, k, stride, dilation=1):
    """TFLite's ComputeOutSize: the output length along one axis ("same" or "valid")."""
    eff = (k - 1) * dilation + 1
    if padding == "same":
        return (in_size + stride - 1) // stride
    if padding == "valid":
        v = in_size + stride - eff
        return v // stride if v >= 0 else -1            # C truncation; negative is an error in TFLite
    raise DarbgenError(f"padding must be 'same', 'valid' or explicit (top, left, bottom, right); got {padding!r}")


def tflite_padding(padding, in_size, k, stride, dilation=1):
    """(out, pad_before) along one axis, as TFLite's ComputePaddingHeightWidth."""
    out = tflite_out_size(padding, in_size, k, stride, dilation)
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def resolve_window(op, in_h, in_w, kernel, strides, dilation, padding):
    """Shared by depthwise and pooling: (kh, kw, sh, sw, dh, dw, pad_top, pad_left, out_h, out_w).

    ``padding`` is "same", "valid" (TFLite) or explicit ``(top, left, bottom,
    right)`` (then ``out = (in + before + after - effective_kernel) // stride + 1``).
    """
    kh, kw = _positive_pair(kernel, "kernel size", op)
    sh, sw = _positive_pair(strides, "stride", op)
    dh, dw = _positive_pair(dilation, "dilation", op)
    if in_h < 1 or in_w < 1:
        raise DarbgenError(f"{op}: the input must be at least 1x1, got {in_h}x{in_w}")
    if isinstance(padding, str):
        pad = padding.lower()
        if pad not in ("same", "valid"):
            raise DarbgenError(f"{op}: padding must be 'same', 'valid' or explicit (top, left, bottom, right); "
                               f"got {padding!r}")
        out_h, pad_top = tflite_padding(pad, in_h, kh, sh, dh)
        out_w, pad_left = tflite_padding(pad, in_w, kw, sw, dw)
    else:
        try:
            top, left, bottom, right = (int(p) for p in padding)
        except (TypeError, ValueError):
            raise DarbgenError(f"{op}: explicit padding must be four integers (top, left, bottom, right); "
                               f"got {padding!r}") from None
        if min(top, left, bottom, right) < 0:
            raise DarbgenError(f"{op}: padding must be >= 0, got {padding!r}")
        eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        out_h = (in_h + top + bottom - eff_h) // sh + 1 if in_h + top + bottom >= eff_h else 0
        out_w = (in_w + left + right - eff_w) // sw + 1 if in_w + left + right >= eff_w else 0
        pad_top, pad_left = top, left
    if out_h < 1 or out_w < 1:
        raise DarbgenError(f"{op}: a {kh}x{kw} window (dilation {dh}x{dw}) with padding {padding!r} leaves no "
                           f"output on a {in_h}x{in_w} input; use 'same' padding or a smaller window")
    return kh, kw, sh, sw, dh, dw, pad_top, pad_left, out_h, out_w


def check_limits(geom, op):
    for f in fields(geom):
        v = getattr(geom, f.name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise DarbgenError(f"{op}: geometry field {f.name} must be an integer, got {v!r}")
        if v < 0 or v > GEOMETRY_LIMIT:
            raise DarbgenError(f"{op}: geometry field {f.name} = {v} is outside 0..{GEOMETRY_LIMIT} "
                               f"(the C kernels hold it in 16 bits)")


def check_span(geom, op):
    """Index arithmetic of the C kernels stays inside int32 / uint32."""
    for shape, what in ((geom.in_shape, "input"), (geom.out_shape, "output")):
        if math.prod(shape) > INT32_MAX:
            raise DarbgenError(f"{op}: the {what} {shape} has more than 2^31 - 1 values")
    reach_h = geom.out_h * geom.stride_h + geom.kh * geom.dil_h
    reach_w = geom.out_w * geom.stride_w + geom.kw * geom.dil_w
    if max(reach_h, reach_w) > INT32_MAX:
        raise DarbgenError(f"{op}: the window positions exceed the int32 range of the C kernels")


@dataclass(frozen=True)
class DepthwiseGeometry:
    """Shape of one depthwise convolution over an NHWC image (one batch item).

    Output pixel (oy, ox) tap (ky, kx) reads input row
    ``oy * stride_h + ky * dil_h - pad_top`` and column
    ``ox * stride_w + kx * dil_w - pad_left``; positions outside the image are
    skipped. ``pad_bottom`` / ``pad_right`` follow from the other fields.
    """

    in_h: int
    in_w: int
    in_c: int
    mult: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int

    def __post_init__(self):
        check_limits(self, "depthwise")
        for name in ("in_h", "in_w", "in_c", "mult", "kh", "kw", "stride_h", "stride_w", "dil_h", "dil_w",
                     "out_h", "out_w"):
            if getattr(self, name) < 1:
                raise DarbgenError(f"depthwise: {name} must be >= 1, got {getattr(self, name)}")
        if self.in_c * self.mult > GEOMETRY_LIMIT:
            raise DarbgenError(f"depthwise: {self.in_c} channels x multiplier {self.mult} exceed {GEOMETRY_LIMIT} "
                               f"output channels")
        check_span(self, "depthwise")

    @classmethod
    def from_padding(cls, in_shape, kernel, strides=1, dilation=1, padding="valid", mult=1):
        """Geometry from an (H, W, C) input shape (a leading batch dimension is
        ignored), kernel (kh, kw), strides, dilation and padding: TFLite's
        "same" / "valid", or explicit (top, left, bottom, right)."""
        shape = tuple(int(s) for s in in_shape)
        if len(shape) == 4:
            shape = shape[1:]
        if len(shape) != 3:
            raise DarbgenError(f"depthwise: the input shape must be (H, W, C) or (N, H, W, C), got {tuple(in_shape)}")
        in_h, in_w, in_c = shape
        kh, kw, sh, sw, dh, dw, pt, pl, oh, ow = resolve_window("depthwise", in_h, in_w, kernel, strides, dilation,
                                                               padding)
        if int(mult) < 1:
            raise DarbgenError(f"depthwise: the depth multiplier must be >= 1, got {mult}")
        return cls(in_h, in_w, in_c, int(mult), kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)

    out_c = property(lambda self: self.in_c * self.mult, doc="output channels, in_c * mult")
    in_shape = property(lambda self: (self.in_h, self.in_w, self.in_c))
    out_shape = property(lambda self: (self.out_h, self.out_w, self.out_c))

    @property
    def pad_bottom(self):
        """Rows of padding the last output row reaches below the image (>= 0)."""
        return max((self.out_h - 1) * self.stride_h + (self.kh - 1) * self.dil_h + 1 - self.pad_top - self.in_h, 0)

    @property
    def pad_right(self):
        return max((self.out_w - 1) * self.stride_w + (self.kw - 1) * self.dil_w + 1 - self.pad_left - self.in_w, 0)


# ----------------------------------------------------------------------------- parameters

def depthwise_multipliers(in_scale, w_scales, out_scale):
    """Per-channel (multiplier, shift) int64 arrays as TFLM's
    PopulateConvolutionQuantizationParams: ``double(in) * double(w[c]) / double(out)``
    with the scales first rounded to float32 (as a .tflite file stores them),
    then QuantizeMultiplier."""
    s_in = float(np.float32(in_scale))
    s_out = float(np.float32(out_scale))
    if not (s_in > 0 and s_out > 0 and math.isfinite(s_in) and math.isfinite(s_out)):
        raise DarbgenError(f"depthwise: input and output scales must be finite and > 0, got {in_scale}, {out_scale}")
    ws = np.atleast_1d(np.asarray(w_scales, np.float32)).astype(np.float64)
    pairs = [quantize_multiplier(s_in * float(w) / s_out) for w in ws]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def activation_range_int8(activation, out_scale, out_zp):
    """TFLite's CalculateActivationRangeQuantized for int8 outputs: (act_min, act_max) (see ops/base.py)."""
    return activation_range_s8(activation, out_scale, out_zp, "depthwise")


def depthwise_acc_bound(w_q, bias_q, in_zp):
    """Per output channel, the largest |int32 accumulator| any int8 input can give
    (every tap inside the image, ``|x - in_zp|`` at its worst), for the
    no-overflow proof."""
    worst_x = max(abs(-128 - int(in_zp)), abs(127 - int(in_zp)))
    w = np.asarray(w_q, np.int64)
    abs_w = np.abs(w).reshape(-1, w.shape[-1]).sum(axis=0)
    b = np.zeros(w.shape[-1], np.int64) if bias_q is None else np.abs(np.asarray(bias_q, np.int64))
    return b + worst_x * abs_w


# ----------------------------------------------------------------------------- arithmetic

def _check_input(x, geom, dtype, op):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != geom.in_shape:
        raise DarbgenError(f"{op}: input shape {x.shape} does not match the geometry's (n, {geom.in_h}, "
                           f"{geom.in_w}, {geom.in_c})")
    if x.dtype != dtype:
        raise DarbgenError(f"{op}: input must be {np.dtype(dtype).name}, got {x.dtype}")
    return x


def _check_weights(w, geom, op):
    w = np.asarray(w)
    if w.ndim == 4 and w.shape[0] == 1:
        w = w[0]
    if w.shape != (geom.kh, geom.kw, geom.out_c):
        raise DarbgenError(f"{op}: weights shape {w.shape} does not match (kh, kw, C*mult) = "
                           f"({geom.kh}, {geom.kw}, {geom.out_c})")
    return w


def _vector(v, n, dtype, what, op):
    a = np.broadcast_to(np.asarray(v), (n,)) if np.ndim(v) == 0 else np.asarray(v)
    if a.shape != (n,):
        raise DarbgenError(f"{op}: {what} must have {n} entries (one per output channel), got shape {a.shape}")
    return a.astype(dtype)


def tap_views(xp, geom, ky, kx):
    """The (n, out_h, out_w, C) slice of a padded input that tap (ky, kx) reads."""
    y0 = ky * geom.dil_h
    x0 = kx * geom.dil_w
    return xp[:, y0:y0 + (geom.out_h - 1) * geom.stride_h + 1:geom.stride_h,
              x0:x0 + (geom.out_w - 1) * geom.stride_w + 1:geom.stride_w, :]


def tap_inside(geom, ky, kx):
    """(out_h, out_w, 1) bool: where tap (ky, kx) falls inside the image."""
    iy = np.arange(geom.out_h) * geom.stride_h + ky * geom.dil_h - geom.pad_top
    ix = np.arange(geom.out_w) * geom.stride_w + kx * geom.dil_w - geom.pad_left
    return (((iy >= 0) & (iy < geom.in_h))[:, None] & ((ix >= 0) & (ix < geom.in_w))[None, :])[..., None]


def pad_input(x, geom, fill=0):
    """Pad (n, H, W, C) so that every tap's slice is in range; padded entries hold ``fill``."""
    return np.pad(x, ((0, 0), (geom.pad_top, geom.pad_bottom), (geom.pad_left, geom.pad_right), (0, 0)),
                  constant_values=fill)


def depthwise_int8(x, w_q, bias_q, geom, in_zp, out_zp, multiplier, shift, act_min=-128, act_max=127):
    """int8 depthwise convolution, bit-exact with TFLM's DepthwiseConvPerChannel.

    Args:
        x: int8 (n, H, W, C) (or one (H, W, C) image).
        w_q: int8 (kh, kw, C*mult), TFLite's [1, kh, kw, C*mult] filter (a leading 1 is accepted).
        bias_q: int32 (C*mult,), or None (TFLM's optional bias).
        geom: a :class:`DepthwiseGeometry`.
        in_zp, out_zp: input and output zero points, -128..127.
        multiplier, shift: per output channel (or one scalar for all), as
            :func:`darbgen.quantize.quantize_multiplier` returns them (Q31
            multiplier in [0, 2^31), shift -31..30 with positive = left).
        act_min, act_max: the clamp, -128 <= act_min <= act_max <= 127.

    Returns:
        int8 (n, out_h, out_w, C*mult).

    Raises DarbgenError when the int32 accumulator (or its left-shifted value
    in the requantization) could overflow for some int8 input: TFLM's result
    is undefined there, so darbgen refuses such a layer.
    """
    op = "depthwise"
    x = _check_input(x, geom, np.int8, op)
    w = _check_weights(w_q, geom, op).astype(np.int64)
    if np.asarray(w_q).dtype != np.int8:
        raise DarbgenError(f"{op}: weights must be int8, got {np.asarray(w_q).dtype}")
    oc = geom.out_c
    bias = np.zeros(oc, np.int64) if bias_q is None else _vector(bias_q, oc, np.int64, "bias", op)
    if np.any(np.abs(bias) > INT32_MAX):
        raise DarbgenError(f"{op}: the bias must fit in int32")
    mult = _vector(multiplier, oc, np.int64, "multiplier", op)
    sh = _vector(shift, oc, np.int64, "shift", op)
    _check_output_stage(op, mult, sh, in_zp, out_zp, act_min, act_max)
    bound = depthwise_acc_bound(w, bias, in_zp)
    worst = bound << np.maximum(sh, 0)
    bad = np.flatnonzero(worst > INT32_MAX)
    if bad.size:
        c = int(bad[0])
        raise DarbgenError(f"{op}: the int32 accumulator of output channel {c} could overflow (|bias| + "
                           f"max|x - zp| x sum|w| = {int(bound[c])}, x 2^{max(int(sh[c]), 0)} after the "
                           f"requantization's left shift); rescale the layer or generate float32")
    # float64 holds every partial sum exactly (|x - zp| <= 255, |w| <= 127, bound checked above < 2^31)
    xp = pad_input(x.astype(np.float64) - int(in_zp), geom)     # padded taps contribute w * 0 = 0: skipped
    wf = w.astype(np.float64)
    acc = np.zeros((x.shape[0], geom.out_h, geom.out_w, oc), np.float64)
    for ky in range(geom.kh):
        for kx in range(geom.kw):
            xs = tap_views(xp, geom, ky, kx)
            if geom.mult > 1:
                xs = np.repeat(xs, geom.mult, axis=-1)           # output channel c*mult + m reads channel c
            acc += xs * wf[ky, kx]
    acc = acc.astype(np.int64) + bias
    from ..qmath_fast import requantize_s8 as fast_requantize_s8   # numba: loaded when first run

    y = fast_requantize_s8(acc, mult, sh) + int(out_zp)
    return np.clip(y, act_min, act_max).astype(np.int8)


def _check_output_stage(op, mult, sh, in_zp, out_zp, act_min, act_max):
    if np.any(mult < 0) or np.any(mult > INT32_MAX):
        raise DarbgenError(f"{op}: multipliers must be in [0, 2^31)")
    if np.any(sh < -31) or np.any(sh > 30):
        raise DarbgenError(f"{op}: shifts must be in -31..30")
    for name, v in (("input zero point", in_zp), ("output zero point", out_zp)):
        if not -128 <= int(v) <= 127:
            raise DarbgenError(f"{op}: the {name} must be in -128..127, got {v}")
    if not -128 <= int(act_min) <= int(act_max) <= 127:
        raise DarbgenError(f"{op}: the clamp must satisfy -128 <= act_min <= act_max <= 127, "
                           f"got [{act_min}, {act_max}]")


def clamp_f32(v, act_min, act_max):
    """TFLite's ActivationFunctionWithMinMax on float32: ``min(max(v, lo), hi)``
    with std::max / std::min semantics (NaN passes through, -0.0 stays -0.0)."""
    lo, hi = np.float32(act_min), np.float32(act_max)
    v = np.where(v < lo, lo, v)
    return np.where(hi < v, hi, v).astype(np.float32)


def depthwise_f32(x, w, bias, geom, act_min=-FLT_MAX, act_max=FLT_MAX):
    """float32 depthwise convolution with TFLite's order of operations:
    ``total = 0.0f; total += x * w`` over the in-image taps in (ky, kx) order;
    ``clamp(total + bias)``. ``bias`` may be None (then 0.0f is added)."""
    op = "depthwise"
    x = _check_input(x, geom, np.float32, op)
    w = _check_weights(w, geom, op).astype(np.float32)
    oc = geom.out_c
    b = np.zeros(oc, np.float32) if bias is None else _vector(bias, oc, np.float32, "bias", op)
    xp = pad_input(x, geom)
    total = np.zeros((x.shape[0], geom.out_h, geom.out_w, oc), np.float32)
    with np.errstate(all="ignore"):
        for ky in range(geom.kh):
            for kx in range(geom.kw):
                xs = tap_views(xp, geom, ky, kx)
                if geom.mult > 1:
                    xs = np.repeat(xs, geom.mult, axis=-1)
                total = np.where(tap_inside(geom, ky, kx), total + xs * w[ky, kx], total)
        return clamp_f32(total + b, act_min, act_max)


def depthwise_f64(x, w, bias, geom, act_min=-np.inf, act_max=np.inf):
    """The exact depthwise convolution in float64 (for tolerance checks)."""
    op = "depthwise"
    x = np.asarray(x, np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != geom.in_shape:
        raise DarbgenError(f"{op}: input shape {x.shape} does not match the geometry's (n, {geom.in_h}, "
                           f"{geom.in_w}, {geom.in_c})")
    w = _check_weights(w, geom, op).astype(np.float64)
    oc = geom.out_c
    b = np.zeros(oc) if bias is None else _vector(bias, oc, np.float64, "bias", op)
    xp = pad_input(x, geom)
    total = np.zeros((x.shape[0], geom.out_h, geom.out_w, oc))
    for ky in range(geom.kh):
        for kx in range(geom.kw):
            xs = tap_views(xp, geom, ky, kx)
            if geom.mult > 1:
                xs = np.repeat(xs, geom.mult, axis=-1)
            total += xs * w[ky, kx]
    return np.clip(total + b, act_min, act_max)
