"""Slow, literal transcriptions of TensorFlow Lite Micro's reference kernels.

Scalar loops with Python integers (and NumPy float32 scalars for float), one
statement per statement of the C++ in tflite-micro:

* tensorflow/lite/kernels/padding.h (ComputePaddingHeightWidth),
* tensorflow/lite/kernels/internal/quantization_util.cc (QuantizeMultiplier),
* tensorflow/lite/kernels/internal/common.cc + gemmlowp (MultiplyByQuantizedMultiplier,
  double rounding),
* reference/integer_ops/depthwise_conv.h and reference/depthwiseconv_float.h,
* reference/integer_ops/pooling.h and reference/pooling.h,
* micro/kernels/reduce_common.cc + reference/reduce.h (MEAN: Prepare, QuantizedMeanOrSum,
  and the float Mean).

They check darbgen/ops/depthwise.py and darbgen/ops/pool.py, which are
vectorised and written differently. Nothing here imports darbgen.
"""
import math

import numpy as np

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
FLT_MAX = np.float32(np.finfo(np.float32).max)


def _wrap32(v):
    """The int32 value of an integer (two's complement)."""
    return (v + 2 ** 31) % 2 ** 32 - 2 ** 31


def _c_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# ----------------------------------------------------------------------------- padding.h

def compute_out_size(padding, image_size, filter_size, stride, dilation_rate=1):
    effective_filter_size = (filter_size - 1) * dilation_rate + 1
    if padding == "same":
        return _c_div(image_size + stride - 1, stride)
    return _c_div(image_size + stride - effective_filter_size, stride)


def compute_padding_with_offset(stride, dilation_rate, in_size, filter_size, out_size):
    effective_filter_size = (filter_size - 1) * dilation_rate + 1
    total_padding = (out_size - 1) * stride + effective_filter_size - in_size
    total_padding = total_padding if total_padding > 0 else 0
    return total_padding // 2, total_padding % 2


def compute_padding_height_width(stride_h, stride_w, dil_h, dil_w, in_h, in_w, filter_h, filter_w, padding):
    """(pad_height, pad_width, out_height, out_width)."""
    out_w = compute_out_size(padding, in_w, filter_w, stride_w, dil_w)
    out_h = compute_out_size(padding, in_h, filter_h, stride_h, dil_h)
    pad_h, _ = compute_padding_with_offset(stride_h, dil_h, in_h, filter_h, out_h)
    pad_w, _ = compute_padding_with_offset(stride_w, dil_w, in_w, filter_w, out_w)
    return pad_h, pad_w, out_h, out_w


# ----------------------------------------------------------------------------- fixed point

def tflite_round(x):
    """std::round: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)


def quantize_multiplier(double_multiplier):
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    q_fixed = int(tflite_round(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def saturating_rounding_doubling_high_mul(a, b):
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = _c_div(ab_64 + nudge, 1 << 31)
    return INT32_MAX if overflow else ab_x2_high32


def rounding_divide_by_pot(x, exponent):
    mask = (1 << exponent) - 1
    remainder = x & mask                      # Python's & on negatives is two's complement, as in C
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift):
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x * (1 << left_shift)), quantized_multiplier), right_shift)


def populate_per_channel_multipliers(input_scale, filter_scales, output_scale):
    """PopulateConvolutionQuantizationParams' per-channel loop (scales are float32 in the model)."""
    mults, shifts = [], []
    for s in filter_scales:
        effective = float(np.float32(input_scale)) * float(np.float32(s)) / float(np.float32(output_scale))
        m, sh = quantize_multiplier(effective)
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def activation_range_quantized(activation, scale, zero_point, qmin=-128, qmax=127):
    """CalculateActivationRangeQuantized (Quantize works in float32)."""
    def quantize(f):
        tmp = np.float32(f) / np.float32(scale)
        return zero_point + int(tflite_round(float(tmp)))

    if activation == "relu":
        return max(qmin, quantize(0.0)), qmax
    if activation == "relu6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "relu_n1_to_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax


# ----------------------------------------------------------------------------- depthwise

def depthwise_conv_per_channel(x, filt, bias, stride, dilation, pad, depth_multiplier, input_offset, output_offset,
                               output_multiplier, output_shift, act_min, act_max, out_hw):
    """reference_integer_ops::DepthwiseConvPerChannel. x (n, H, W, C) int8, filt (1, kh, kw, C*mult),
    bias (C*mult,) or None; stride/dilation/pad as (h, w); out_hw = (out_h, out_w)."""
    batches, input_height, input_width, input_depth = x.shape
    _, filter_height, filter_width, output_depth = filt.shape
    output_height, output_width = out_hw
    out = np.zeros((batches, output_height, output_width, output_depth), np.int8)
    for batch in range(batches):
        for out_y in range(output_height):
            for out_x in range(output_width):
                for in_channel in range(input_depth):
                    for m in range(depth_multiplier):
                        output_channel = m + in_channel * depth_multiplier
                        in_x_origin = out_x * stride[1] - pad[1]
                        in_y_origin = out_y * stride[0] - pad[0]
                        acc = 0
                        for filter_y in range(filter_height):
                            for filter_x in range(filter_width):
                                in_x = in_x_origin + dilation[1] * filter_x
                                in_y = in_y_origin + dilation[0] * filter_y
                                if 0 <= in_x < input_width and 0 <= in_y < input_height:
                                    input_val = int(x[batch, in_y, in_x, in_channel])
                                    filter_val = int(filt[0, filter_y, filter_x, output_channel])
                                    acc += filter_val * (input_val + input_offset)
                        if bias is not None:
                            acc += int(bias[output_channel])
                        assert INT32_MIN <= acc <= INT32_MAX
                        acc = multiply_by_quantized_multiplier(acc, int(output_multiplier[output_channel]),
                                                               int(output_shift[output_channel]))
                        acc += output_offset
                        acc = max(acc, act_min)
                        acc = min(acc, act_max)
                        out[batch, out_y, out_x, output_channel] = acc
    return out


def depthwise_conv_float(x, filt, bias, stride, dilation, pad, depth_multiplier, act_min, act_max, out_hw):
    """reference_ops::DepthwiseConv (float), with float32 scalars."""
    batches, input_height, input_width, input_depth = x.shape
    _, filter_height, filter_width, output_depth = filt.shape
    output_height, output_width = out_hw
    out = np.zeros((batches, output_height, output_width, output_depth), np.float32)
    with np.errstate(all="ignore"):
        for b in range(batches):
            for out_y in range(output_height):
                for out_x in range(output_width):
                    for ic in range(input_depth):
                        for m in range(depth_multiplier):
                            oc = m + ic * depth_multiplier
                            in_x_origin = out_x * stride[1] - pad[1]
                            in_y_origin = out_y * stride[0] - pad[0]
                            total = np.float32(0.0)
                            for filter_y in range(filter_height):
                                for filter_x in range(filter_width):
                                    in_x = in_x_origin + dilation[1] * filter_x
                                    in_y = in_y_origin + dilation[0] * filter_y
                                    if 0 <= in_x < input_width and 0 <= in_y < input_height:
                                        total = np.float32(total + np.float32(x[b, in_y, in_x, ic] *
                                                                              filt[0, filter_y, filter_x, oc]))
                            bias_value = np.float32(0.0) if bias is None else np.float32(bias[oc])
                            out[b, out_y, out_x, oc] = _activation_min_max(np.float32(total + bias_value),
                                                                           act_min, act_max)
    return out


def _activation_min_max(x, lo, hi):
    """ActivationFunctionWithMinMax: std::min(std::max(x, lo), hi)."""
    lo, hi = np.float32(lo), np.float32(hi)
    y = lo if x < lo else x                   # std::max(x, lo) = (x < lo) ? lo : x
    return hi if hi < y else y                # std::min(y, hi) = (hi < y) ? hi : y


# ----------------------------------------------------------------------------- pooling

def _window(out_y, out_x, stride, pad, filt, input_height, input_width):
    in_x_origin = out_x * stride[1] - pad[1]
    in_y_origin = out_y * stride[0] - pad[0]
    filter_x_start = max(0, -in_x_origin)
    filter_x_end = min(filt[1], input_width - in_x_origin)
    filter_y_start = max(0, -in_y_origin)
    filter_y_end = min(filt[0], input_height - in_y_origin)
    for filter_y in range(filter_y_start, filter_y_end):
        for filter_x in range(filter_x_start, filter_x_end):
            yield in_y_origin + filter_y, in_x_origin + filter_x


def average_pool_int8(x, filt, stride, pad, act_min, act_max, out_hw):
    """reference_integer_ops::AveragePool (int8); filt = (filter_height, filter_width)."""
    batches, input_height, input_width, depth = x.shape
    out = np.zeros((batches, *out_hw, depth), np.int8)
    for batch in range(batches):
        for out_y in range(out_hw[0]):
            for out_x in range(out_hw[1]):
                for channel in range(depth):
                    acc = 0
                    filter_count = 0
                    for in_y, in_x in _window(out_y, out_x, stride, pad, filt, input_height, input_width):
                        acc += int(x[batch, in_y, in_x, channel])
                        filter_count += 1
                    assert filter_count > 0
                    acc = (_c_div(acc + filter_count // 2, filter_count) if acc > 0
                           else _c_div(acc - filter_count // 2, filter_count))
                    acc = max(acc, act_min)
                    acc = min(acc, act_max)
                    out[batch, out_y, out_x, channel] = acc
    return out


def max_pool_int8(x, filt, stride, pad, act_min, act_max, out_hw):
    batches, input_height, input_width, depth = x.shape
    out = np.zeros((batches, *out_hw, depth), np.int8)
    for batch in range(batches):
        for out_y in range(out_hw[0]):
            for out_x in range(out_hw[1]):
                for channel in range(depth):
                    mx = -128
                    for in_y, in_x in _window(out_y, out_x, stride, pad, filt, input_height, input_width):
                        mx = max(mx, int(x[batch, in_y, in_x, channel]))
                    mx = max(mx, act_min)
                    mx = min(mx, act_max)
                    out[batch, out_y, out_x, channel] = mx
    return out


def average_pool_float(x, filt, stride, pad, act_min, act_max, out_hw):
    batches, input_height, input_width, depth = x.shape
    out = np.zeros((batches, *out_hw, depth), np.float32)
    with np.errstate(all="ignore"):
        for batch in range(batches):
            for out_y in range(out_hw[0]):
                for out_x in range(out_hw[1]):
                    for channel in range(depth):
                        total = np.float32(0.0)
                        filter_count = np.float32(0.0)
                        for in_y, in_x in _window(out_y, out_x, stride, pad, filt, input_height, input_width):
                            total = np.float32(total + x[batch, in_y, in_x, channel])
                            filter_count = np.float32(filter_count + np.float32(1.0))
                        average = np.float32(total / filter_count)
                        out[batch, out_y, out_x, channel] = _activation_min_max(average, act_min, act_max)
    return out


def max_pool_float(x, filt, stride, pad, act_min, act_max, out_hw):
    batches, input_height, input_width, depth = x.shape
    out = np.zeros((batches, *out_hw, depth), np.float32)
    for batch in range(batches):
        for out_y in range(out_hw[0]):
            for out_x in range(out_hw[1]):
                for channel in range(depth):
                    mx = -FLT_MAX
                    for in_y, in_x in _window(out_y, out_x, stride, pad, filt, input_height, input_width):
                        v = x[batch, in_y, in_x, channel]
                        mx = v if mx < v else mx            # std::max(mx, v)
                    out[batch, out_y, out_x, channel] = _activation_min_max(mx, act_min, act_max)
    return out


# ----------------------------------------------------------------------------- MEAN

def mean_int8(x, input_zp, input_scale, output_zp, output_scale):
    """MEAN over axes 1, 2 of an int8 (n, H, W, C) tensor: PrepareMeanOrSumHelper
    (QuantizeMultiplier of double(in_scale) / double(out_scale)) and
    QuantizedMeanOrSum<int8_t, int32_t>(compute_sum=false). Returns (n, C)."""
    output_multiplier, output_shift = quantize_multiplier(
        float(np.float32(input_scale)) / float(np.float32(output_scale)))
    batches, h, w, depth = x.shape
    temp_sum = [[0] * depth for _ in range(batches)]
    for b in range(batches):                           # Reduce: walks the input in order
        for y in range(h):
            for xx in range(w):
                for c in range(depth):
                    temp_sum[b][c] = _wrap32(temp_sum[b][c] + int(x[b, y, xx, c]))
    num_elements_in_axis = h * w
    shift = 63 - (64 - num_elements_in_axis.bit_length())          # 63 - CountLeadingZeros(uint64)
    shift = min(shift, 32)
    shift = min(shift, 31 + output_shift)
    output_multiplier = _wrap32((output_multiplier << shift) // num_elements_in_axis)
    output_shift = output_shift - shift
    out = np.zeros((batches, depth), np.int8)
    for b in range(batches):
        for c in range(depth):
            shifted_sum = _wrap32(temp_sum[b][c] - input_zp * num_elements_in_axis)
            output = multiply_by_quantized_multiplier(shifted_sum, output_multiplier, output_shift) + output_zp
            output = min(max(output, -128), 127)
            out[b, c] = output
    return out


def mean_float(x):
    """reference_ops::Mean (4-D, axes 1 and 2) on float32: returns (n, C)."""
    batches, h, w, depth = x.shape
    out = np.zeros((batches, depth), np.float32)
    with np.errstate(all="ignore"):
        for b in range(batches):
            for d in range(depth):
                value = np.float32(0.0)
                for y in range(h):
                    for xx in range(w):
                        value = np.float32(value + x[b, y, xx, d])
                out[b, d] = np.float32(value / np.float32(w * h))
    return out
