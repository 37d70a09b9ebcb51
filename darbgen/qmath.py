"""Quantization arithmetic: int8 / int16 tensor quantization and the integer steps the C performs.

The convention is TensorFlow Lite's (and CMSIS-NN's), see docs/codegen.md:

* weights int8, symmetric, one scale per output row (zero point 0), values in
  -127..127 (:func:`quantize_weights`);
* int8 activations asymmetric per tensor (``real = scale * (q - zero_point)``);
  int16 activations symmetric (zero point 0), as in TFLite's 16x8 mode;
* requantization by a Q31 multiplier and a power-of-two shift, with gemmlowp's
  SaturatingRoundingDoublingHighMul and RoundingDivideByPOT (int8), or
  TFLite's reduced Q15 multiplier with a rounding shift (16x8); sigmoid and
  tanh through look-up tables (:func:`activation_lut`).

Every integer step is done in NumPy int64 exactly as the C does it in int32 /
int64. This is the bottom of the quantization stack: the layer kinds
(:mod:`darbgen.layers`) build their parameters from it, the op graph's kinds
(:mod:`darbgen.ops`) use its integer steps, and :mod:`darbgen.quantize`
re-exports all of it. Never imports numba, nor any other part of darbgen but
errors and activations.
"""
import math
from dataclasses import dataclass

import numpy as np

from .activations import activate_f64
from .errors import DarbgenError

DTYPES = ("float32", "int16", "int8")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: Pre-activation ranges wider than these saturate sigmoid / tanh at the table's
#: output resolution anyway, so calibration ranges are clipped to them.
LUT_INPUT_LIMIT = {"sigmoid": 8.0, "tanh": 4.0}
#: Fixed output quantization of the table activations (TFLite's choice).
LUT_OUTPUT = {
    ("int8", "sigmoid"): (1.0 / 256, -128), ("int8", "tanh"): (1.0 / 128, 0),
    ("int16", "sigmoid"): (1.0 / 32768, 0), ("int16", "tanh"): (1.0 / 32768, 0),
}
INT16_LUT_SIZE = 513


def round_half_away(x):
    """Round to nearest, ties away from zero (C's round(), TFLite's TfLiteRound)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))


@dataclass(frozen=True)
class TensorQuant:
    """Quantization of one activation tensor: ``real = scale * (q - zero_point)``."""

    dtype: str
    scale: float
    zero_point: int

    @property
    def qmin(self):
        return -128 if self.dtype == "int8" else -32768

    @property
    def qmax(self):
        return 127 if self.dtype == "int8" else 32767

    @property
    def np_dtype(self):
        return np.int8 if self.dtype == "int8" else np.int16

    def quantize(self, x):
        """Real values to integers, rounded and saturated."""
        q = round_half_away(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, self.qmin, self.qmax).astype(self.np_dtype)

    def dequantize(self, q):
        return self.scale * (np.asarray(q, np.float64) - self.zero_point)


def tensor_range(values, percentile=None, what="calibration data"):
    """(low, high) of calibration values: min/max, or the ``percentile`` and
    ``100 - percentile`` percentiles (e.g. 99.99) to ignore rare outliers."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise DarbgenError(f"{what}: is empty; give at least one calibration input")
    if not np.all(np.isfinite(v)):
        raise DarbgenError(f"{what}: holds NaN or inf; clean the calibration inputs")
    if percentile is None:
        return float(v.min()), float(v.max())
    if not 50 < percentile <= 100:
        raise DarbgenError(f"percentile must be in (50, 100], e.g. 99.99; got {percentile}")
    return float(np.percentile(v, 100 - percentile)), float(np.percentile(v, percentile))


def tensor_quant(low, high, dtype):
    """Activation quantization covering [low, high] (always including 0).

    int8: asymmetric, 256 levels over the range. int16: symmetric, zero point 0.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if dtype == "int8":
        width = high - low
        scale = width / 255.0 if width > 0 else 1.0 / 255.0
        zero_point = int(np.clip(round_half_away(-128 - low / scale), -128, 127))
        return TensorQuant("int8", scale, zero_point)
    if dtype == "int16":
        bound = max(-low, high)
        return TensorQuant("int16", bound / 32767.0 if bound > 0 else 1.0 / 32767.0, 0)
    raise DarbgenError(f"unknown activation type {dtype!r}; choose int8 or int16")


def quantize_multiplier(m):
    """A real multiplier as (Q31 integer, shift) with ``m ~= q * 2^(shift - 31)``.

    TFLite's QuantizeMultiplier: q in [2^30, 2^31), or (0, 0) for m == 0.
    """
    m = float(m)
    if m < 0 or not math.isfinite(m):
        raise DarbgenError(f"requantization multiplier must be finite and >= 0, got {m}")
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


# ----------------------------------------------------------------------------- integer steps

def doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))          # C division truncates toward zero
    return np.where((a == b) & (a == INT32_MIN), np.int64(INT32_MAX), q)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def requantize_s8(acc, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier on int32 accumulators."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(doubling_high_mul(np.asarray(acc, np.int64) << left, multiplier), right)


def requantize_s16(acc, multiplier, shift):
    """TFLite's 16x8 MultiplyByQuantizedMultiplier on int64 accumulators
    (multiplier reduced to Q15, one rounding shift)."""
    m = np.asarray(multiplier, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, np.int64(0x7FFF))
    total = 15 - np.asarray(shift, np.int64)
    return (np.asarray(acc, np.int64) * reduced + (np.int64(1) << (total - 1))) >> total


def lut_s16(lut, v):
    """The int16 table activation: 513 entries over the int16 range, linear between."""
    u = np.asarray(v, np.int64) + 32768
    index = u >> 7
    frac = u & 127
    lo = lut.astype(np.int64)[index]
    hi = lut.astype(np.int64)[index + 1]
    return lo + (((hi - lo) * frac + 64) >> 7)


#: Largest |bias| in units of the bias scale: a row whose weights are negligible
#: next to its bias (a dead neuron) gets a coarser weight scale so that its bias
#: stays this far inside the accumulator (TFLite would overflow int32 there).
BIAS_LIMIT = {"int8": float(1 << 30), "int16": float(1 << 40)}


def quantize_weights(weight, mask, min_scale=None):
    """Per-row symmetric int8 weights: (int8 matrix, float64 scale per row).

    ``min_scale`` (per row) raises a row's scale where ``max|w| / 127`` is smaller.
    """
    w = np.asarray(weight, np.float64)
    peak = np.abs(np.where(mask, w, 0.0)).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    q = np.clip(round_half_away(w / scale[:, None]), -127, 127)
    return np.where(mask, q, 0).astype(np.int8), scale


def activation_lut(dtype, activation, pre, out):
    """The sigmoid / tanh table from the pre-activation quantization ``pre`` to
    the output's ``out``: 256 entries (int8) or 513 over the int16 range (int16,
    interpolated by :func:`lut_s16`)."""
    if dtype == "int8":
        q = np.arange(-128, 128)
    else:
        q = -32768 + 128 * np.arange(INT16_LUT_SIZE)      # the last entry (32768) only interpolates
    y = round_half_away(activate_f64(activation, pre.scale * (q - pre.zero_point)) / out.scale) + out.zero_point
    return np.clip(y, out.qmin, out.qmax).astype(out.np_dtype)
