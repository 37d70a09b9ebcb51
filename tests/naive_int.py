"""Slow, obviously correct integer arithmetic of the TFLite / gemmlowp convention.

Python integers (unbounded) and scalar loops, written from the specification
in docs/codegen.md, to check darbgen.quantize's vectorised NumPy versions and,
through them, the C. Nothing here imports darbgen.
"""
import math

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


def c_div(a, b):
    """C integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2 ** 30 if ab >= 0 else 1 - 2 ** 30
    return c_div(ab + nudge, 2 ** 31)


def rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded to nearest, ties away from zero."""
    if exponent == 0:
        return x
    q, r = divmod(abs(x), 2 ** exponent)
    if 2 * r >= 2 ** exponent:
        q += 1
    return q if x >= 0 else -q


def requantize_s8(acc, multiplier, shift):
    left = max(shift, 0)
    right = max(-shift, 0)
    return rounding_divide_by_pot(doubling_high_mul(acc * 2 ** left, multiplier), right)


def requantize_s16(acc, multiplier, shift):
    reduced = (multiplier + 2 ** 15) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    return (acc * reduced + 2 ** (total - 1)) >> total     # Python >> floors, like an arithmetic shift


def dense_int(weight, bias, x, multiplier, shift, output_offset, act_min, act_max, lut=None, int16=False):
    """One quantized dense layer, one output at a time, with Python ints."""
    rows, cols = len(weight), len(weight[0])
    out = []
    for r in range(rows):
        acc = int(bias[r])
        for j in range(cols):
            acc += int(weight[r][j]) * int(x[j])
        if int16:
            v = requantize_s16(acc, int(multiplier[r]), int(shift[r]))
        else:
            v = requantize_s8(acc, int(multiplier[r]), int(shift[r])) + output_offset
        v = min(max(v, act_min), act_max)
        if lut is not None:
            if int16:
                u = v + 32768
                lo, hi = int(lut[u >> 7]), int(lut[(u >> 7) + 1])
                v = lo + (((hi - lo) * (u & 127) + 64) >> 7)
            else:
                v = int(lut[v + 128])
        out.append(v)
    return out


def quantize_multiplier(m):
    """(q, shift) with m = q * 2^(shift - 31), q in [2^30, 2^31)."""
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = math.floor(q * 2 ** 31 + 0.5)
    if q_fixed == 2 ** 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift
