"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (over H and W) in NHWC: int8 and float32.

Bit-exact with TensorFlow Lite Micro's reference kernels:

* pooling (``reference_integer_ops::AveragePool`` / ``MaxPool`` and the float
  ``reference_ops`` twins, parameters from ``pooling_common.cc``): a window
  covers only the positions *inside* the image; the int8 average is
  ``(sum + count / 2) / count`` for a positive sum and ``(sum - count / 2) /
  count`` otherwise, in C's truncating division; the output keeps the input's
  quantization (TFLM refuses a different one); the clamp comes last. The float
  average adds the in-image values to ``0.0f`` in (ky, kx) order and divides
  by the count as a float; the float maximum starts from ``-FLT_MAX``.
* MEAN over axes 1 and 2 (``reduce_common.cc`` + ``reference_ops::QuantizedMeanOrSum``):
  Prepare turns ``double(in_scale) / double(out_scale)`` into a Q31 multiplier
  and shift (QuantizeMultiplier); Eval folds ``1 / count`` into it
  (``s = min(floor(log2 count), 32, 31 + shift)``, ``multiplier = (multiplier
  << s) / count``, ``shift -= s``), sums the raw int8 values in int32, subtracts
  ``in_zp * count``, requantizes with the gemmlowp double rounding, adds the
  output zero point and saturates to int8. TFLM (since April 2023, "Align mean
  kernel to TFL") takes this one path for every int8 MEAN, also when input and
  output share scale and zero point: the older integer-division path for that
  case is gone, so it is not modelled here (tests check the equal-scale case
  against the real TFLM). The float MEAN sums in (h, w) order from ``0.0f`` and
  divides by the count as a float.

Plain NumPy, no numba: this is the oracle the C is checked against.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import DarbgenError
from ..quantize import INT32_MAX, quantize_multiplier, requantize_s8
from .depthwise import FLT_MAX, check_limits, check_span, clamp_f32, pad_input, resolve_window, tap_inside, tap_views

#: A pooling window or MEAN may sum at most this many int8 values (int32 sums,
#: and ``255 * count`` must stay inside int32 for the MEAN's zero-point step).
MAX_COUNT = INT32_MAX // 255


@dataclass(frozen=True)
class PoolGeometry:
    """Shape of one pooling over an NHWC image (one batch item); no dilation.

    Output pixel (oy, ox) covers input rows ``oy * stride_h - pad_top + ky``
    (0 <= ky < kh) and columns ``ox * stride_w - pad_left + kx`` that are
    inside the image.
    """

    in_h: int
    in_w: int
    in_c: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int

    # the names tap_views / tap_inside / pad_input expect
    dil_h = property(lambda self: 1)
    dil_w = property(lambda self: 1)
    in_shape = property(lambda self: (self.in_h, self.in_w, self.in_c))
    out_shape = property(lambda self: (self.out_h, self.out_w, self.in_c))

    def __post_init__(self):
        check_limits(self, "pool")
        for name in ("in_h", "in_w", "in_c", "kh", "kw", "stride_h", "stride_w", "out_h", "out_w"):
            if getattr(self, name) < 1:
                raise DarbgenError(f"pool: {name} must be >= 1, got {getattr(self, name)}")
        if self.kh * self.kw > MAX_COUNT:
            raise DarbgenError(f"pool: a {self.kh}x{self.kw} window is too large (at most {MAX_COUNT} positions)")
        check_span(self, "pool")
        # Every window must hold at least one image position (TFLM's average
        # pool fails on an empty one).
        last_y = (self.out_h - 1) * self.stride_h - self.pad_top
        last_x = (self.out_w - 1) * self.stride_w - self.pad_left
        if self.pad_top >= self.kh or self.pad_left >= self.kw or last_y >= self.in_h or last_x >= self.in_w:
            raise DarbgenError(f"pool: with padding top {self.pad_top}, left {self.pad_left} some {self.kh}x{self.kw} "
                               f"windows lie wholly outside the {self.in_h}x{self.in_w} image; padding must be "
                               f"smaller than the window")

    @classmethod
    def from_padding(cls, in_shape, kernel, strides=None, padding="valid"):
        """Geometry from an (H, W, C) input shape (a leading batch dimension is
        ignored), window (kh, kw), strides (default: the window) and padding:
        TFLite's "same" / "valid", or explicit (top, left, bottom, right)."""
        shape = tuple(int(s) for s in in_shape)
        if len(shape) == 4:
            shape = shape[1:]
        if len(shape) != 3:
            raise DarbgenError(f"pool: the input shape must be (H, W, C) or (N, H, W, C), got {tuple(in_shape)}")
        in_h, in_w, in_c = shape
        if strides is None:
            strides = kernel
        kh, kw, sh, sw, _, _, pt, pl, oh, ow = resolve_window("pool", in_h, in_w, kernel, strides, 1, padding)
        return cls(in_h, in_w, in_c, kh, kw, sh, sw, pt, pl, oh, ow)

    @property
    def pad_bottom(self):
        return max((self.out_h - 1) * self.stride_h + self.kh - self.pad_top - self.in_h, 0)

    @property
    def pad_right(self):
        return max((self.out_w - 1) * self.stride_w + self.kw - self.pad_left - self.in_w, 0)

    def counts(self):
        """(out_h, out_w) int64: the in-image positions of every window."""
        iy = np.arange(self.out_h) * self.stride_h - self.pad_top
        ix = np.arange(self.out_w) * self.stride_w - self.pad_left
        rows = np.minimum(iy + self.kh, self.in_h) - np.maximum(iy, 0)
        cols = np.minimum(ix + self.kw, self.in_w) - np.maximum(ix, 0)
        return rows[:, None].astype(np.int64) * cols[None, :]


def _check_input(x, shape, dtype, op):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != tuple(shape):
        raise DarbgenError(f"{op}: input shape {x.shape} does not match (n, {', '.join(map(str, shape))})")
    if x.dtype != dtype:
        raise DarbgenError(f"{op}: input must be {np.dtype(dtype).name}, got {x.dtype}")
    return x


def _check_clamp(op, act_min, act_max):
    if not -128 <= int(act_min) <= int(act_max) <= 127:
        raise DarbgenError(f"{op}: the clamp must satisfy -128 <= act_min <= act_max <= 127, "
                           f"got [{act_min}, {act_max}]")


def _taps(geom):
    for ky in range(geom.kh):
        for kx in range(geom.kw):
            yield ky, kx


def avg_pool_int8(x, geom, act_min=-128, act_max=127):
    """int8 average pooling (input and output share their quantization), bit-exact
    with TFLM. x: int8 (n, H, W, C); returns int8 (n, out_h, out_w, C)."""
    op = "average pool"
    x = _check_input(x, geom.in_shape, np.int8, op)
    _check_clamp(op, act_min, act_max)
    xp = pad_input(x.astype(np.int64), geom)                 # padded positions add 0 (and are not counted)
    acc = np.zeros((x.shape[0], geom.out_h, geom.out_w, geom.in_c), np.int64)
    for ky, kx in _taps(geom):
        acc += tap_views(xp, geom, ky, kx)
    count = geom.counts()[None, :, :, None]
    q = (np.abs(acc) + count // 2) // count                   # C: (acc +- count/2) / count, truncating
    y = np.where(acc > 0, q, -q)
    return np.clip(y, act_min, act_max).astype(np.int8)


def max_pool_int8(x, geom, act_min=-128, act_max=127):
    """int8 max pooling, bit-exact with TFLM. x: int8 (n, H, W, C)."""
    op = "max pool"
    x = _check_input(x, geom.in_shape, np.int8, op)
    _check_clamp(op, act_min, act_max)
    xp = pad_input(x, geom, fill=-128)                       # -128 never beats the initial -128
    m = np.full((x.shape[0], geom.out_h, geom.out_w, geom.in_c), -128, np.int8)
    for ky, kx in _taps(geom):
        m = np.maximum(m, tap_views(xp, geom, ky, kx))
    return np.clip(m, act_min, act_max).astype(np.int8)


def avg_pool_f32(x, geom, act_min=-FLT_MAX, act_max=FLT_MAX):
    """float32 average pooling in TFLite's order: ``total = 0.0f``, ``+=`` the
    in-image values in (ky, kx) order, ``/ (float)count``, clamp."""
    x = _check_input(x, geom.in_shape, np.float32, "average pool")
    xp = pad_input(x, geom)
    total = np.zeros((x.shape[0], geom.out_h, geom.out_w, geom.in_c), np.float32)
    with np.errstate(all="ignore"):
        for ky, kx in _taps(geom):
            total = np.where(tap_inside(geom, ky, kx), total + tap_views(xp, geom, ky, kx), total)
        avg = total / geom.counts().astype(np.float32)[None, :, :, None]
    return clamp_f32(avg, act_min, act_max)


def max_pool_f32(x, geom, act_min=-FLT_MAX, act_max=FLT_MAX):
    """float32 max pooling as TFLite: ``m = -FLT_MAX``, ``m = (m < v) ? v : m``
    over the in-image values (so NaN inputs are passed over and -inf gives
    -FLT_MAX), clamp."""
    x = _check_input(x, geom.in_shape, np.float32, "max pool")
    xp = pad_input(x, geom, fill=-np.inf)                    # never beats -FLT_MAX
    m = np.full((x.shape[0], geom.out_h, geom.out_w, geom.in_c), -FLT_MAX, np.float32)
    with np.errstate(invalid="ignore"):
        for ky, kx in _taps(geom):
            v = tap_views(xp, geom, ky, kx)
            m = np.where(m < v, v, m)
    return clamp_f32(m, act_min, act_max)


# ----------------------------------------------------------------------------- MEAN

def _mean_axes(axes, op):
    try:
        resolved = {int(a) + 4 if int(a) < 0 else int(a) for a in axes}
    except (TypeError, ValueError):
        raise DarbgenError(f"{op}: axes must be integers, got {axes!r}") from None
    if resolved != {1, 2}:
        raise DarbgenError(f"{op}: only a mean over H and W (axes (1, 2) of NHWC) is supported, got axes {axes!r}")


def mean_params_int8(in_scale, out_scale, count):
    """The (multiplier, shift) TFLM's int8 MEAN applies to ``sum - in_zp * count``.

    QuantizeMultiplier of ``double(float32 in_scale) / double(float32 out_scale)``
    (Prepare), then the 1 / count fold of QuantizedMeanOrSum (Eval). The shift
    stays in -31..30; the multiplier is in [0, 2^31) (not always >= 2^30).
    """
    s_in, s_out = float(np.float32(in_scale)), float(np.float32(out_scale))
    if not (s_in > 0 and s_out > 0 and np.isfinite(s_in) and np.isfinite(s_out)):
        raise DarbgenError(f"mean: input and output scales must be finite and > 0, got {in_scale}, {out_scale}")
    count = int(count)
    if not 1 <= count <= MAX_COUNT:
        raise DarbgenError(f"mean: the mean must cover 1..{MAX_COUNT} values per channel, got {count}")
    multiplier, shift = quantize_multiplier(s_in / s_out)
    s = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << s) // count                  # both >= 0: C's truncation is the floor
    shift -= s
    if shift > 30:
        raise DarbgenError(f"mean: the input / output scale ratio {s_in / s_out:g} is too large for int8 "
                           f"requantization; widen the output range")
    # TFLM shifts the int32 sum left by `shift` before the multiply: it must not overflow.
    if shift > 0 and (255 * count) << shift > INT32_MAX:
        raise DarbgenError(f"mean: the input / output scale ratio {s_in / s_out:g} over {count} values could "
                           f"overflow TFLM's int32 requantization; widen the output range")
    return int(multiplier), int(shift)


def mean_int8(x, in_zp, in_scale, out_zp, out_scale, axes=(1, 2), keep_dims=True):
    """int8 MEAN over H and W, bit-exact with TFLM.

    x: int8 (n, H, W, C). Returns int8 (n, 1, 1, C) with ``keep_dims``, else (n, C).
    """
    op = "mean"
    _mean_axes(axes, op)
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype != np.int8:
        raise DarbgenError(f"{op}: the input must be int8 (n, H, W, C), got {x.dtype} {x.shape}")
    for name, v in (("input zero point", in_zp), ("output zero point", out_zp)):
        if not -128 <= int(v) <= 127:
            raise DarbgenError(f"{op}: the {name} must be in -128..127, got {v}")
    count = x.shape[1] * x.shape[2]
    multiplier, shift = mean_params_int8(in_scale, out_scale, count)
    total = x.astype(np.int64).sum(axis=(1, 2)) - int(in_zp) * count
    y = np.clip(requantize_s8(total, multiplier, shift) + int(out_zp), -128, 127).astype(np.int8)
    return y[:, None, None, :] if keep_dims else y


def mean_f32(x, axes=(1, 2), keep_dims=True):
    """float32 MEAN over H and W as TFLite: ``0.0f`` plus the values in (h, w)
    order, divided by ``(float)(H * W)``."""
    op = "mean"
    _mean_axes(axes, op)
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype != np.float32:
        raise DarbgenError(f"{op}: the input must be float32 (n, H, W, C), got {x.dtype} {x.shape}")
    total = np.zeros((x.shape[0], x.shape[3]), np.float32)
    with np.errstate(all="ignore"):
        for h in range(x.shape[1]):
            for w in range(x.shape[2]):
                total = total + x[:, h, w, :]
        y = total / np.float32(x.shape[1] * x.shape[2])
    return y[:, None, None, :] if keep_dims else y
