"""SOFTMAX over the last axis: TensorFlow Lite Micro's int8 kernel bit for bit,
and float32 with darbgen's own exp.

int8 (micro/kernels/softmax_common.cc CalculateSoftmaxParams, reference/softmax.h):

* Prepare: ``input_multiplier`` / ``input_left_shift`` from
  ``min(beta * input_scale * 2^26, 2^31 - 1)`` (PreprocessSoftmaxScaling with
  5 integer bits for the scaled difference, Q5.26), and ``diff_min =
  -floor(31 * 2^26 / 2^input_left_shift)`` (CalculateInputRadius).
* Eval, per row: ``d = x - max``; entries with ``d < diff_min`` give -128;
  others are rescaled to Q5.26 (SaturatingRoundingDoublingHighMul of
  ``d << input_left_shift`` by the multiplier), exponentiated with gemmlowp's
  fixed-point ``exp_on_negative_values`` (Q0.31) and summed in Q12.19. The sum's
  reciprocal comes from gemmlowp's Newton-Raphson
  ``one_over_one_plus_x_for_x_in_0_1`` (TFLite's GetReciprocal), and each output
  is ``RoundingDivideByPOT(recip * exp, bits_over_unit + 23) - 128``, clamped.
* Output quantization is fixed: scale 1/256, zero point -128 (TFLM checks it
  and the TFLite converter always writes it); anything else is refused.

Two limits of TFLM's arithmetic, made explicit here:

* the Q12.19 sum overflows int32 from 4096 maximal entries on, so rows longer
  than 4095 are refused;
* when a row's sum of exponentials is 512 or more (possible only for rows of
  512+ entries), TFLM's shift exponent exceeds 31 and it aborts
  (TFLITE_CHECK). We give what the exact rounding gives instead: every
  probability is then at most 1/512, below half an output step, so every
  output is -128.

float32 (reference/softmax.h): ``max`` (NaN ignored, starting at -FLT_MAX),
``e = exp((x - max) * beta)`` with :func:`darbgen.reference.expf` (the NumPy
twin of runtime_c's darb_expf, so host, Cortex-M and NumPy agree bit for
bit; TFLM's std::exp differs from it in the last bits), a float32 running sum
in index order, then ``e / sum``.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..errors import DarbgenError
from ..quantize import doubling_high_mul, quantize_multiplier, rounding_divide_by_pot
from ..reference import expf
from .elementwise import FLT_MAX, as_int8, batched, scale_f32, zero_point_s8

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: Integer bits of the rescaled input difference (Q5.26), TFLM's kScaledDiffIntegerBits.
SCALED_DIFF_INTEGER_BITS = 5
#: Integer bits of the sum of exponentials (Q12.19), TFLM's kAccumulationIntegerBits.
ACCUMULATION_INTEGER_BITS = 12
#: The only int8 output quantization TFLM accepts.
SOFTMAX_S8_OUTPUT = (1.0 / 256, -128)
#: Longest row the int8 kernel accepts (the Q12.19 sum stays in int32).
SOFTMAX_S8_MAX_DEPTH = 4095


@dataclass(frozen=True)
class SoftmaxParams:
    """TFLM's int8 SoftmaxParams fields that the kernel uses."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(in_scale, beta=1.0, out_scale=SOFTMAX_S8_OUTPUT[0], out_zp=SOFTMAX_S8_OUTPUT[1]):
    """TFLM's CalculateSoftmaxParams for an int8 input and int8 output.

    ``in_scale`` and ``beta`` are rounded to float32 (as in the .tflite file
    and TfLiteSoftmaxParams), then used in double as TFLM does."""
    s = scale_f32(in_scale, "SOFTMAX input")
    if np.float32(out_scale) != np.float32(1.0 / 256) or out_zp != -128:
        raise DarbgenError(f"SOFTMAX: the int8 output must have scale 1/256 and zero point -128 (TFLM's and the "
                           f"TFLite converter's fixed choice), got scale {out_scale!r}, zero point {out_zp!r}; "
                           f"requantize the output in a separate op")
    zero_point_s8(out_zp, "SOFTMAX output")
    b = np.float32(beta)
    if not np.isfinite(b) or b <= 0:
        raise DarbgenError(f"SOFTMAX: beta must be a positive finite number, got {beta!r}")
    real = min(float(b) * s * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
    if not real > 1.0:
        raise DarbgenError(f"SOFTMAX: beta * input scale = {float(b) * s!r} is below 2^-26, which TFLM refuses; "
                           f"the input range is implausibly narrow")
    multiplier, shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
                        / (1 << shift))
    return SoftmaxParams(int(multiplier), int(shift), -int(radius))


# ----------------------------------------------------------------------------- gemmlowp fixed point (int32 in int64)

def _srdhm(a, b):
    return doubling_high_mul(a, b)


def _sat_shift_left(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent > 0>: saturating left shift."""
    threshold = (1 << (31 - exponent)) - 1
    x = np.asarray(x, np.int64)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _rounding_half_sum(a, b):
    """gemmlowp RoundingHalfSum: (a + b + sign) / 2, the division truncating."""
    s = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t >> 1, -((-t) >> 1))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp's exp on [-1/4, 0), Q0.31 in and out."""
    const_term = 1895147668                      # exp(-1/8)
    const_1_over_3 = 715827883
    x = np.asarray(a, np.int64) + (1 << 28)       # a + 1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_srdhm(x4_over_4 + x3, const_1_over_3) + x2, 1)
    return const_term + _srdhm(const_term, x + poly)


#: exp(-2^k) in Q0.31 for k = -2..4, gemmlowp's barrel shifter.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))


def exp_on_negative_values(a, integer_bits=SCALED_DIFF_INTEGER_BITS):
    """gemmlowp exp_on_negative_values: a <= 0 in Q(integer_bits).(31-integer_bits) -> exp(a) in Q0.31."""
    a = np.asarray(a, np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp's 1 / (1 + a) for a in [0, 1) (Q0.31 in, Q0.31 out), Newton-Raphson."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + _srdhm(half_denominator, -1010580540)      # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x)
        one_minus = (1 << 29) - half_denominator_times_x
        x = x + _sat_shift_left(_srdhm(x, one_minus), 2)
    return _sat_shift_left(x, 1)


def get_reciprocal(x, x_integer_digits):
    """TFLite GetReciprocal: (Q0.31 reciprocal of the normalised x, num_bits_over_unit)."""
    x = np.asarray(x, np.int64)
    _, bit_length = np.frexp(x.astype(np.float64))               # exact: x < 2^31
    headroom_plus_one = 32 - bit_length.astype(np.int64)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = (x << headroom_plus_one) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ----------------------------------------------------------------------------- kernels

def softmax_int8(x, params):
    """TFLM reference_ops::Softmax int8 -> int8 over the last axis of (n, ..., depth)."""
    v = batched(as_int8(x, "SOFTMAX input"), "SOFTMAX input")
    depth = v.shape[-1]
    if not 1 <= depth <= SOFTMAX_S8_MAX_DEPTH:
        raise DarbgenError(f"SOFTMAX: int8 rows must hold 1..{SOFTMAX_S8_MAX_DEPTH} values (TFLM's Q12.19 sum "
                           f"overflows beyond), got {depth}; split the softmax or use float32")
    p = params
    diff = v - v.max(axis=-1, keepdims=True)
    valid = diff >= p.diff_min
    rescaled = _srdhm(np.where(valid, diff, 0) << p.input_left_shift, p.input_multiplier)
    exps = exp_on_negative_values(rescaled)
    acc = np.where(valid, rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS), 0)
    total = acc.sum(axis=-1, keepdims=True)
    shifted_scale, bits_over_unit = get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    exponent = bits_over_unit + 31 - 8
    prod = _srdhm(shifted_scale, exps)
    unsat = np.where(exponent <= 31, rounding_divide_by_pot(prod, np.minimum(exponent, 31)), 0)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)


def softmax_f32(x, beta=1.0):
    """float32 softmax over the last axis, as darb_softmax_tflm_f32 computes it."""
    v = batched(np.asarray(x, np.float32), "SOFTMAX input")
    if v.shape[-1] < 1:
        raise DarbgenError("SOFTMAX: rows must hold at least one value")
    b = np.float32(beta)
    with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
        m = np.where(np.isnan(v), np.float32(-FLT_MAX), v).max(axis=-1, keepdims=True)
        m = np.maximum(m, np.float32(-FLT_MAX))
        e = expf((v - m) * b)
        total = np.zeros(v.shape[:-1], np.float32)
        for j in range(v.shape[-1]):
            total = (total + e[..., j]).astype(np.float32)
        return (e / total[..., None]).astype(np.float32)


__all__ = ["SoftmaxParams", "exp_on_negative_values", "get_reciprocal", "one_over_one_plus_x_for_x_in_0_1",
           "softmax_f32", "softmax_int8", "softmax_params"]
