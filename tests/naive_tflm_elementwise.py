"""Independent scalar references for ADD, SOFTMAX, QUANTIZE, DEQUANTIZE,
CONCATENATION and PAD, written line by line from TensorFlow Lite Micro's
sources (micro/kernels/add_common.cc, softmax_common.cc, quantize_common.cc,
dequantize_common.cc, concatenation.cc, pad.cc; kernels/internal/reference/
integer_ops/add.h, softmax.h, quantize.h, dequantize.h, requantize.h,
concatenation.h; quantization_util.cc; gemmlowp fixedpoint.h).

Plain Python integers, one element at a time, no NumPy vectorisation and
nothing shared with darbgen/ops: slow, but obviously the C++ code. Every
int32 intermediate is checked to fit (where TFLM's C++ would overflow, the
reference raises instead of wrapping).
"""
import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def i32(v):
    """An int32 result; raises where the C++ would overflow."""
    if not INT32_MIN <= v <= INT32_MAX:
        raise OverflowError(f"int32 overflow: {v}")
    return v


def c_div(a, b):
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# ----------------------------------------------------------------------------- gemmlowp fixedpoint.h, scalar int32

def SaturatingRoundingDoublingHighMul(a, b):
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = c_div(ab_64 + nudge, 1 << 31)
    return INT32_MAX if overflow else i32(ab_x2_high32)


def RoundingDivideByPOT(x, exponent):
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def SaturatingRoundingMultiplyByPOT(exponent, x):
    if exponent == 0:
        return x
    if exponent < 0:
        return RoundingDivideByPOT(x, -exponent)
    threshold = (1 << (32 - 1 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return i32(x << exponent)


def RoundingHalfSum(a, b):
    s = a + b
    sign = 1 if s >= 0 else -1
    return i32(c_div(s + sign, 2))


class FP:
    """gemmlowp::FixedPoint<int32_t, integer_bits>."""

    def __init__(self, raw, integer_bits):
        self.raw = i32(raw)
        self.ib = integer_bits

    @property
    def fractional_bits(self):
        return 31 - self.ib

    def __add__(self, o):
        assert self.ib == o.ib
        return FP(self.raw + o.raw, self.ib)

    def __sub__(self, o):
        assert self.ib == o.ib
        return FP(self.raw - o.raw, self.ib)

    def __mul__(self, o):
        return FP(SaturatingRoundingDoublingHighMul(self.raw, o.raw), self.ib + o.ib)

    @staticmethod
    def one(ib):
        return FP(INT32_MAX if ib == 0 else 1 << (31 - ib), ib)

    @staticmethod
    def constant_pot(exponent, ib):
        offset = 31 - ib + exponent
        assert offset < 31
        return FP(1 << offset, ib)


def Rescale(dst_bits, x):
    return FP(SaturatingRoundingMultiplyByPOT(x.ib - dst_bits, x.raw), dst_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    constant_term = FP(1895147668, 0)
    constant_1_over_3 = FP(715827883, 0)
    x = a + FP.constant_pot(-3, 0)
    x2 = x * x
    x3 = x2 * x
    x4 = x2 * x2
    x4_over_4 = FP(SaturatingRoundingMultiplyByPOT(-2, x4.raw), 0)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = FP(
        SaturatingRoundingMultiplyByPOT(-1, (((x4_over_4 + x3) * constant_1_over_3) + x2).raw), 0)
    return constant_term + constant_term * (x + x4_over_24_plus_x3_over_6_plus_x2_over_2)


def exp_on_negative_values(a):
    k_integer_bits = a.ib
    k_fractional_bits = a.fractional_bits
    k_one_quarter = FP.constant_pot(-2, k_integer_bits)
    mask = k_one_quarter - FP(1, k_integer_bits)
    a_mod_quarter_minus_one_quarter = FP(a.raw & mask.raw, k_integer_bits) - k_one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(Rescale(0, a_mod_quarter_minus_one_quarter))
    remainder = (a_mod_quarter_minus_one_quarter - a).raw
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        if k_integer_bits > exponent:
            shift_amount = k_fractional_bits + exponent if k_integer_bits > exponent else 0
            if remainder & (1 << shift_amount):
                result = result * FP(multiplier, 0)
    if k_integer_bits > 5:
        clamp_b = 36 - k_integer_bits
        if a.raw < -(1 << clamp_b):
            result = FP(0, 0)
    if a.raw == 0:
        result = FP.one(0)
    return result


def one_over_one_plus_x_for_x_in_0_1(a):
    half_denominator = FP(RoundingHalfSum(a.raw, FP.one(0).raw), 0)
    constant_48_over_17 = FP(1515870810, 2)
    constant_neg_32_over_17 = FP(-1010580540, 2)
    x = constant_48_over_17 + half_denominator * constant_neg_32_over_17
    for _ in range(3):
        half_denominator_times_x = half_denominator * x
        one_minus_half_denominator_times_x = FP.one(2) - half_denominator_times_x
        x = x + Rescale(2, x * one_minus_half_denominator_times_x)
    return Rescale(0, FP(x.raw, 1))              # ExactMulByPot<-1>


def count_leading_zeros32(x):
    x &= 0xFFFFFFFF
    if x == 0:
        return 32
    n = 0
    while not x & 0x80000000:
        x <<= 1
        n += 1
    return n


def GetReciprocal(x, x_integer_digits):
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(FP(shifted_sum_minus_one, 0))
    return shifted_scale.raw, num_bits_over_unit


# ----------------------------------------------------------------------------- quantization_util.cc

def TfLiteRound_double(v):
    """std::round on a double: half away from zero (v + 0.5 is exact below 2^52)."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def QuantizeMultiplier(double_multiplier):
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    q_fixed = int(TfLiteRound_double(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def QuantizeMultiplierSmallerThanOneExp(double_multiplier):
    assert 0.0 < double_multiplier < 1.0
    q, shift = QuantizeMultiplier(double_multiplier)
    assert shift <= 0
    return q, shift


def QuantizeMultiplierGreaterThanOne(double_multiplier):
    assert double_multiplier > 1.0
    q, shift = QuantizeMultiplier(double_multiplier)
    assert shift >= 0
    return q, shift


def MultiplyByQuantizedMultiplierSmallerThanOneExp(x, quantized_multiplier, left_shift):
    return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, quantized_multiplier), -left_shift)


def MultiplyByQuantizedMultiplierGreaterThanOne(x, quantized_multiplier, left_shift):
    return SaturatingRoundingDoublingHighMul(i32(x * (1 << left_shift)), quantized_multiplier)


def MultiplyByQuantizedMultiplier(x, quantized_multiplier, shift):
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(i32(x * (1 << left_shift)), quantized_multiplier),
                               right_shift)


def f32(v):
    """static_cast<float>: a Python float holding a float32."""
    return float(np.float32(v))


# ----------------------------------------------------------------------------- ADD

def add_prepare(s1, zp1, s2, zp2, so, zpo):
    """CalculateOpDataAdd (int8): returns a dict of OpDataAdd fields."""
    s1, s2, so = f32(s1), f32(s2), f32(so)
    d = {"input1_offset": -zp1, "input2_offset": -zp2, "output_offset": zpo, "left_shift": 20}
    twice_max_input_scale = 2 * float(max(s1, s2))
    real_input1_multiplier = float(s1) / twice_max_input_scale
    real_input2_multiplier = float(s2) / twice_max_input_scale
    real_output_multiplier = twice_max_input_scale / ((1 << d["left_shift"]) * float(so))
    d["input1_multiplier"], d["input1_shift"] = QuantizeMultiplierSmallerThanOneExp(real_input1_multiplier)
    d["input2_multiplier"], d["input2_shift"] = QuantizeMultiplierSmallerThanOneExp(real_input2_multiplier)
    d["output_multiplier"], d["output_shift"] = QuantizeMultiplierSmallerThanOneExp(real_output_multiplier)
    return d


def add_func(x, y, p, act_min, act_max):
    """reference_integer_ops AddFunc."""
    input1_val = p["input1_offset"] + x
    input2_val = p["input2_offset"] + y
    shifted_input1_val = i32(input1_val * (1 << p["left_shift"]))
    shifted_input2_val = i32(input2_val * (1 << p["left_shift"]))
    scaled_input1_val = MultiplyByQuantizedMultiplierSmallerThanOneExp(
        shifted_input1_val, p["input1_multiplier"], p["input1_shift"])
    scaled_input2_val = MultiplyByQuantizedMultiplierSmallerThanOneExp(
        shifted_input2_val, p["input2_multiplier"], p["input2_shift"])
    raw_sum = i32(scaled_input1_val + scaled_input2_val)
    raw_output = MultiplyByQuantizedMultiplierSmallerThanOneExp(
        raw_sum, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return min(act_max, max(act_min, raw_output))


def add_int8(x1, x2, p, act_min=-128, act_max=127):
    a = np.asarray(x1).ravel()
    b = np.asarray(x2).ravel()
    out = [add_func(int(u), int(v), p, act_min, act_max) for u, v in zip(a, b)]
    return np.array(out, np.int8).reshape(np.shape(x1))


def add_f32(x1, x2, act_min, act_max):
    a = np.asarray(x1, np.float32).ravel()
    b = np.asarray(x2, np.float32).ravel()
    lo, hi = np.float32(act_min), np.float32(act_max)
    out = []
    for u, v in zip(a, b):
        with np.errstate(over="ignore", invalid="ignore"):
            s = np.float32(u + v)
        m = lo if s < lo else s          # std::max(s, lo)
        out.append(hi if hi < m else m)  # std::min(m, hi)
    return np.array(out, np.float32).reshape(np.shape(x1))


# ----------------------------------------------------------------------------- SOFTMAX

def softmax_prepare(input_scale, beta=1.0):
    """CalculateSoftmaxParams, int8: (input_multiplier, input_left_shift, diff_min)."""
    k_scaled_diff_integer_bits = 5
    max_real_multiplier = (1 << 31) - 1.0
    input_beta_real_multiplier = min(float(f32(beta)) * float(f32(input_scale))
                                     * (1 << (31 - k_scaled_diff_integer_bits)), max_real_multiplier)
    input_multiplier, input_left_shift = QuantizeMultiplierGreaterThanOne(input_beta_real_multiplier)
    # CalculateInputRadius(input_integer_bits, input_left_shift, total_signed_bits = 31)
    max_input_rescaled = (1.0 * ((1 << k_scaled_diff_integer_bits) - 1) * (1 << (31 - k_scaled_diff_integer_bits))
                          / (1 << input_left_shift))
    diff_min = int(-1.0 * math.floor(max_input_rescaled))
    return input_multiplier, input_left_shift, diff_min


def softmax_row(row, input_multiplier, input_left_shift, diff_min, tflm_abort=False):
    """reference_ops::Softmax<int8_t, int8_t> on one row. Where TFLM aborts
    (exponent > 31) this returns -128 everywhere, darbgen's documented
    extension, unless tflm_abort: then it raises."""
    k_accumulation_integer_bits = 12
    max_in_row = -128
    for v in row:
        max_in_row = max(max_in_row, int(v))
    sum_of_exps = FP(0, k_accumulation_integer_bits)
    for v in row:
        input_diff = int(v) - max_in_row
        if input_diff >= diff_min:
            input_diff_rescaled = MultiplyByQuantizedMultiplierGreaterThanOne(input_diff, input_multiplier,
                                                                              input_left_shift)
            scaled_diff_f8 = FP(input_diff_rescaled, 5)
            sum_of_exps = sum_of_exps + Rescale(k_accumulation_integer_bits, exp_on_negative_values(scaled_diff_f8))
    shifted_scale_raw, num_bits_over_unit = GetReciprocal(sum_of_exps.raw, k_accumulation_integer_bits)
    shifted_scale = FP(shifted_scale_raw, 0)
    exponent = num_bits_over_unit + 31 - 8
    if exponent > 31:
        if tflm_abort:
            raise RuntimeError("TFLITE_CHECK(0 <= exponent && exponent <= 31) fails")
        return [-128] * len(row)
    out = []
    for v in row:
        input_diff = int(v) - max_in_row
        if input_diff >= diff_min:
            input_diff_rescaled = MultiplyByQuantizedMultiplierGreaterThanOne(input_diff, input_multiplier,
                                                                              input_left_shift)
            scaled_diff_f8 = FP(input_diff_rescaled, 5)
            exp_in_0 = exp_on_negative_values(scaled_diff_f8)
            unsat_output = RoundingDivideByPOT((shifted_scale * exp_in_0).raw, exponent)
            shifted_output = unsat_output + (-128)
            out.append(max(min(shifted_output, 127), -128))
        else:
            out.append(-128)
    return out


def softmax_int8(x, in_scale, beta=1.0):
    m, s, d = softmax_prepare(in_scale, beta)
    x = np.asarray(x)
    rows = x.reshape(-1, x.shape[-1])
    return np.array([softmax_row(r, m, s, d) for r in rows], np.int8).reshape(x.shape)


# ----------------------------------------------------------------------------- QUANTIZE / DEQUANTIZE

def affine_quantize(x, scale, zero_point):
    """AffineQuantize float -> int8: static_cast<int32_t>(TfLiteRound(val / static_cast<float>(scale))) + zp.
    Beyond int32 (undefined in C++) it saturates, NaN gives the zero point (darbgen's extension)."""
    s = np.float32(scale)
    out = []
    for val in np.asarray(x, np.float32).ravel():
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            r = float(np.float32(val / s))
        if math.isnan(r):
            unclamped = zero_point
        else:
            if math.isinf(r):
                rounded = math.copysign(2.0 ** 40, r)
            else:
                rounded = TfLiteRound_double(r)      # exact for a float32 value
            unclamped = int(min(max(rounded, -2.0 ** 31), 2.0 ** 31 - 1)) + zero_point
        out.append(min(max(unclamped, -128), 127))
    return np.array(out, np.int8).reshape(np.shape(x))


def dequantize(q, scale, zero_point):
    """Dequantize: static_cast<float>(double(scale) * (val - zero_point))."""
    scale_d = float(np.float32(scale))
    out = []
    for val in np.asarray(q).ravel():
        with np.errstate(over="ignore"):
            out.append(np.float32(scale_d * (int(val) - zero_point)))
    return np.array(out, np.float32).reshape(np.shape(q))


def requantize_prepare(in_scale, out_scale):
    effective_scale = float(f32(in_scale)) / float(f32(out_scale))
    return QuantizeMultiplier(effective_scale)


def requantize(x, multiplier, shift, in_zp, out_zp):
    """reference_ops::Requantize int8 -> int8."""
    out = []
    for v in np.asarray(x).ravel():
        output = MultiplyByQuantizedMultiplier(int(v) - in_zp, multiplier, shift) + out_zp
        out.append(max(min(output, 127), -128))
    return np.array(out, np.int8).reshape(np.shape(x))


# ----------------------------------------------------------------------------- CONCATENATION / PAD

def concatenation(xs, axis):
    """reference_ops::Concatenation on one tensor per input (batch included)."""
    shapes = [x.shape for x in xs]
    out_shape = list(shapes[0])
    out_shape[axis] = sum(s[axis] for s in shapes)
    outer_size = 1
    for i in range(axis):
        outer_size *= out_shape[i]
    base_inner_size = 1
    for i in range(axis + 1, len(out_shape)):
        base_inner_size *= out_shape[i]
    flat = [np.asarray(x).ravel() for x in xs]
    out = []
    for k in range(outer_size):
        for i, x in enumerate(flat):
            copy_size = shapes[i][axis] * base_inner_size
            out.extend(x[k * copy_size:(k + 1) * copy_size])
    return np.array(out, xs[0].dtype).reshape(out_shape)


def pad(x, paddings, pad_value):
    """Pad: each output element is the input element it maps to, or pad_value (paddings per axis)."""
    x = np.asarray(x)
    out_shape = [d + b + a for d, (b, a) in zip(x.shape, paddings)]
    out = np.empty(out_shape, x.dtype)
    for idx in np.ndindex(*out_shape):
        src = tuple(i - b for i, (b, _) in zip(idx, paddings))
        inside = all(0 <= s < d for s, d in zip(src, x.shape))
        out[idx] = x[src] if inside else pad_value
    return out
