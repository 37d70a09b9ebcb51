"""ADD, QUANTIZE (float32 -> int8 and int8 -> int8) and DEQUANTIZE: the
arithmetic of TensorFlow Lite Micro's reference kernels, bit for bit.

Batched NumPy pure functions: every array is (n, ...) and is handled
elementwise, so any layout (NHWC images, (n, C) vectors) works. The C twins
are in runtime_c/src/darb_elementwise.c (declared in
runtime_c/include/darb_ops_elementwise.h).

What TFLM does, and so what these functions do:

* ADD int8 (micro/kernels/add_common.cc, reference/integer_ops/add.h): both
  inputs are offset by their zero points, shifted left by 20 bits, brought to
  a common scale (twice the larger input scale) by two multipliers below one,
  added, and the sum brought to the output scale by a third multiplier; each
  multiplication is gemmlowp's SaturatingRoundingDoublingHighMul followed by
  RoundingDivideByPOT ("double rounding"). The multipliers are computed in
  double from the float32 scales of the model file.
* ADD float32: ``min(max(a + b, act_min), act_max)``; with no fused activation
  TFLM clamps to [-FLT_MAX, FLT_MAX], so an infinite sum becomes FLT_MAX.
* QUANTIZE float32 -> int8 (reference/quantize.h AffineQuantize):
  ``round(x / scale) + zero_point`` with a float32 division, rounding half
  away from zero, then a clamp to -128..127. TFLM converts the rounded value
  to int32 without a range check (undefined behaviour beyond +-2^31, NaN); we
  saturate instead: +-inf and huge values give -128 / 127, NaN gives the zero
  point (what a Cortex-M's saturating conversion gives).
* QUANTIZE int8 -> int8 (reference/requantize.h): ``MultiplyByQuantizedMultiplier
  (q - in_zp, m, shift) + out_zp``, clamped; the multiplier from the double
  ratio of the float32 scales.
* DEQUANTIZE int8 -> float32 (reference/dequantize.h): ``float(double(scale) *
  (q - zp))``. The double product of a float32 scale and an integer below 2^9
  is exact, so rounding it to float32 equals the float32 product
  ``scale * (float)(q - zp)``, which is what the C computes (no double needed).
"""
from dataclasses import dataclass

import numpy as np

from ..errors import DarbgenError
from ..quantize import doubling_high_mul, quantize_multiplier, rounding_divide_by_pot
from .base import FLT_MAX, activation_range_f32, activation_range_s8  # noqa: F401  (re-exported)

INT8_MIN, INT8_MAX = -128, 127
#: TFLM ADD shifts int8 inputs left by this many bits (20; 15 for int16).
ADD_LEFT_SHIFT_S8 = 20
#: Largest left shift of the int8 -> int8 requantization: |q - zp| <= 255 must
#: stay below 2^31 after the shift.
REQUANT_MAX_SHIFT = 23


# ----------------------------------------------------------------------------- checks shared by the op files

def scale_f32(scale, what):
    """A tensor scale as the model file holds it: float32, positive and finite.

    Returned as a Python float (a double) holding the float32 value, so that
    ``static_cast<double>(tensor->params.scale)`` is reproduced exactly."""
    try:
        s = np.float32(scale)
    except (TypeError, ValueError):
        raise DarbgenError(f"{what}: scale must be a number, got {scale!r}") from None
    if not np.isfinite(s) or s <= 0:
        raise DarbgenError(f"{what}: scale must be a positive finite float32, got {scale!r}; "
                           f"check the tensor's quantization parameters")
    return float(s)


def zero_point_s8(zero_point, what):
    """An int8 tensor's zero point, checked to lie in -128..127."""
    if isinstance(zero_point, (bool, np.bool_)) or not isinstance(zero_point, (int, np.integer)):
        raise DarbgenError(f"{what}: zero point must be an integer, got {zero_point!r}")
    zp = int(zero_point)
    if not INT8_MIN <= zp <= INT8_MAX:
        raise DarbgenError(f"{what}: an int8 zero point must be in -128..127, got {zp}; "
                           f"check the tensor's quantization parameters")
    return zp


def as_int8(x, what):
    """An integer array with values in -128..127, as int64 for the arithmetic."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        raise DarbgenError(f"{what}: int8 inputs must be an integer array, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < INT8_MIN or a.max() > INT8_MAX):
        raise DarbgenError(f"{what}: values must be in -128..127, got {a.min()}..{a.max()}")
    return a


def batched(x, what, min_ndim=2):
    """Checks that ``x`` is batched: (n, ...) with at least ``min_ndim`` axes."""
    if x.ndim < min_ndim:
        raise DarbgenError(f"{what}: inputs must be batched, shape (n, ...) with at least {min_ndim} axes; "
                           f"got shape {x.shape} (add a leading batch axis, e.g. x[None])")
    return x


def _quant(q, what):
    """(scale, zero_point) from a tuple or an object with .scale / .zero_point."""
    if hasattr(q, "scale") and hasattr(q, "zero_point"):
        return q.scale, q.zero_point
    try:
        scale, zp = q
    except (TypeError, ValueError):
        raise DarbgenError(f"{what}: quantization must be (scale, zero_point), got {q!r}") from None
    return scale, zp


def quant_s8(q, what):
    """A checked int8 tensor quantization: (float32 scale as float, zero point)."""
    scale, zp = _quant(q, what)
    return scale_f32(scale, what), zero_point_s8(zp, what)


def quantize_multiplier_smaller_than_one_exp(m, what):
    """TFLite's QuantizeMultiplierSmallerThanOneExp: (Q31 multiplier, shift <= 0).

    TFLM aborts (TFLITE_CHECK) when m is not in (0, 1) or when rounding pushes
    the shift above 0; we raise instead."""
    if not 0.0 < m < 1.0:
        raise DarbgenError(f"{what}: needs a multiplier in (0, 1), got {m!r}")
    mult, shift = quantize_multiplier(m)
    if shift > 0:
        raise DarbgenError(f"{what}: the multiplier {m!r} rounds to 1.0 in Q31, which TFLM refuses")
    return int(mult), int(shift)


def _check_act_s8(act_min, act_max, what):
    act_min, act_max = int(act_min), int(act_max)
    if not INT8_MIN <= act_min <= act_max <= INT8_MAX:
        raise DarbgenError(f"{what}: the clamp [{act_min}, {act_max}] must satisfy -128 <= min <= max <= 127")
    return act_min, act_max


def _round_half_away_f32(r):
    """std::round on float32 values, exactly (no float addition that could round)."""
    r = np.asarray(r, np.float32)
    t = np.trunc(r)
    frac = r - t                                         # exact
    return (t + (frac >= np.float32(0.5)) - (frac <= np.float32(-0.5))).astype(np.float32)


# ----------------------------------------------------------------------------- ADD

@dataclass(frozen=True)
class AddParams:
    """The integer parameters of a TFLM int8 ADD, as its Prepare computes them.

    Fields mirror TFLM's OpDataAdd; shifts are <= 0 (right shifts)."""

    input1_offset: int          # -input1 zero point
    input2_offset: int          # -input2 zero point
    output_offset: int          # output zero point
    left_shift: int             # 20 for int8
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def add_params(in1_scale, in1_zp, in2_scale, in2_zp, out_scale, out_zp, act_min=INT8_MIN, act_max=INT8_MAX):
    """TFLM's CalculateOpDataAdd for int8 tensors.

    Scales are rounded to float32 (as stored in a .tflite file), then every
    ratio is computed in double as TFLM does. ``act_min`` / ``act_max`` come
    from :func:`activation_range_s8` (the fused activation)."""
    s1 = scale_f32(in1_scale, "ADD input 1")
    s2 = scale_f32(in2_scale, "ADD input 2")
    so = scale_f32(out_scale, "ADD output")
    zp1 = zero_point_s8(in1_zp, "ADD input 1")
    zp2 = zero_point_s8(in2_zp, "ADD input 2")
    zpo = zero_point_s8(out_zp, "ADD output")
    act_min, act_max = _check_act_s8(act_min, act_max, "ADD")
    twice_max_input_scale = 2.0 * max(s1, s2)
    real1 = s1 / twice_max_input_scale
    real2 = s2 / twice_max_input_scale
    real_out = twice_max_input_scale / ((1 << ADD_LEFT_SHIFT_S8) * so)
    if not real_out < 1.0:
        raise DarbgenError(
            f"ADD: output scale {so!r} is too small for input scales {s1!r} and {s2!r}: TFLM needs "
            f"2 * max(input scales) / (2^20 * output scale) < 1 (it aborts otherwise); widen the output range")
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1, "ADD input 1 multiplier")
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2, "ADD input 2 multiplier")
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_out, "ADD output multiplier")
    return AddParams(-zp1, -zp2, zpo, ADD_LEFT_SHIFT_S8, m1, sh1, m2, sh2, mo, sho, act_min, act_max)


def _same_shape(x1, x2, what):
    if x1.shape != x2.shape:
        raise DarbgenError(f"{what}: inputs have shapes {x1.shape} and {x2.shape}; broadcasting is not supported, "
                           f"give both inputs the same shape (insert an explicit broadcast before the op)")


def _mul_smaller_than_one(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0), double rounding."""
    return rounding_divide_by_pot(doubling_high_mul(x, multiplier), -shift)


def add_int8(x1, x2, params):
    """TFLM reference_integer_ops::Add on equal-shape int8 arrays -> int8."""
    a = as_int8(x1, "ADD input 1")
    b = as_int8(x2, "ADD input 2")
    _same_shape(a, b, "ADD")
    p = params
    v1 = (a + p.input1_offset) << p.left_shift
    v2 = (b + p.input2_offset) << p.left_shift
    raw_sum = _mul_smaller_than_one(v1, p.input1_multiplier, p.input1_shift) + \
        _mul_smaller_than_one(v2, p.input2_multiplier, p.input2_shift)
    out = _mul_smaller_than_one(raw_sum, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def add_f32(x1, x2, act_min=-FLT_MAX, act_max=FLT_MAX):
    """TFLM float32 Add: ``min(max(a + b, act_min), act_max)`` in float32 (NaN stays NaN)."""
    a = np.asarray(x1, np.float32)
    b = np.asarray(x2, np.float32)
    _same_shape(a, b, "ADD")
    lo, hi = np.float32(act_min), np.float32(act_max)
    if not lo <= hi:
        raise DarbgenError(f"ADD: the clamp [{act_min}, {act_max}] must have min <= max")
    with np.errstate(over="ignore", invalid="ignore"):
        s = a + b
    # std::max(s, lo) is (s < lo) ? lo : s, std::min(., hi) is (hi < .) ? hi : . : NaN passes through
    s = np.where(s < lo, lo, s)
    s = np.where(hi < s, hi, s)
    return s.astype(np.float32)


# ----------------------------------------------------------------------------- QUANTIZE / DEQUANTIZE

def quantize_f32_to_int8(x, scale, zp):
    """TFLM AffineQuantize float32 -> int8: round(x / scale) + zp, clamped.

    float32 division, rounding half away from zero; out-of-range values
    saturate and NaN gives ``zp`` (TFLM's int32 conversion is undefined there)."""
    s = np.float32(scale_f32(scale, "QUANTIZE output"))
    zp = zero_point_s8(zp, "QUANTIZE output")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = np.asarray(x, np.float32) / s
    r = np.where(np.isnan(r), np.float32(0.0), np.clip(r, np.float32(-1024.0), np.float32(1024.0)))
    q = _round_half_away_f32(r).astype(np.int64) + zp
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize_int8_to_f32(q, scale, zp):
    """TFLM Dequantize int8 -> float32: scale * (q - zp), one float32 rounding."""
    s = np.float32(scale_f32(scale, "DEQUANTIZE input"))
    zp = zero_point_s8(zp, "DEQUANTIZE input")
    v = as_int8(q, "DEQUANTIZE input")
    with np.errstate(over="ignore", under="ignore"):
        return (s * (v - zp).astype(np.float32)).astype(np.float32)


@dataclass(frozen=True)
class RequantParams:
    """int8 -> int8 requantization (TFLM QUANTIZE with int8 input and output)."""

    multiplier: int
    shift: int                  # > 0: left shift
    in_zero_point: int
    out_zero_point: int

    @property
    def identity(self):
        """True when the requantization copies (same scale, same zero point)."""
        return self.multiplier == 1 << 30 and self.shift == 1 and self.in_zero_point == self.out_zero_point


def requantize_params(in_scale, in_zp, out_scale, out_zp, what="QUANTIZE"):
    """TFLM PrepareQuantizeReference for int8 -> int8: QuantizeMultiplier of
    the double ratio in_scale / out_scale (float32 scales)."""
    si = scale_f32(in_scale, f"{what} input")
    so = scale_f32(out_scale, f"{what} output")
    zpi = zero_point_s8(in_zp, f"{what} input")
    zpo = zero_point_s8(out_zp, f"{what} output")
    mult, shift = quantize_multiplier(si / so)
    if shift > REQUANT_MAX_SHIFT:
        raise DarbgenError(f"{what}: the input scale {si!r} is over 2^{REQUANT_MAX_SHIFT} times the output scale "
                           f"{so!r}; TFLM's int32 arithmetic would overflow. Check the quantization parameters")
    return RequantParams(int(mult), int(shift), zpi, zpo)


def requantize_int8(x, params):
    """TFLM reference_ops::Requantize int8 -> int8 (double rounding)."""
    v = as_int8(x, "QUANTIZE input")
    p = params
    left = max(p.shift, 0)
    right = max(-p.shift, 0)
    out = rounding_divide_by_pot(doubling_high_mul((v - p.in_zero_point) << left, p.multiplier), right)
    return np.clip(out + p.out_zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


__all__ = ["AddParams", "RequantParams", "activation_range_f32", "activation_range_s8", "add_f32", "add_int8",
           "add_params", "dequantize_int8_to_f32", "quantize_f32_to_int8", "requantize_int8", "requantize_params"]
