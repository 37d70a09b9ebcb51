"""The dense kind: a fully connected layer (:class:`darbgen.graph.Dense`).

Everything of it in one place: its quantization (:class:`QuantizedDense`,
:func:`quantize_dense`: per-row int8 weights, the bias at the accumulator's
scale, requantization, fused activation, and the proof that the accumulator
cannot overflow), its references (:func:`dense_int`, :func:`dense_f32`,
:func:`dense_f64`, bit for bit what the C computes), and :class:`DenseKind`,
which wires them to the stages with the ``dense_layer`` C
(:func:`darbgen.codegen.layer.layer_context`). The convolution kind reuses
all of it on image patches; recurrent layers on their two matrices.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..activations import activate_f64
from ..codegen.layer import layer_context, layer_kernel
from ..errors import DarbgenError
from ..graph import Dense
from ..math_f32 import FLT_MAX, QUIET, activate_f32, subnormal_floor
from ..qmath import (BIAS_LIMIT, DTYPES, INT32_MAX, LUT_INPUT_LIMIT, LUT_OUTPUT, TensorQuant, activation_lut,
                     lut_s16, quantize_multiplier, quantize_weights, requantize_s8, requantize_s16, round_half_away,
                     tensor_quant)
from .base import F32_INPUT_MAX, LayerKind, block_size_histogram, check_inputs

_F = np.float32


# ----------------------------------------------------------------------------- quantization

@dataclass
class QuantizedDense:
    """A :class:`~darbgen.graph.Dense` layer with everything its C needs.

    For ``dtype == "float32"`` only ``weight`` and ``bias`` (float32) are used.
    For int8 / int16, ``weight`` holds the int8 weights, ``bias`` what the C
    stores (int8: int32 with the input zero point folded in; int16: int64), and
    ``multiplier`` / ``shift`` / ``output_offset`` / ``act_min`` / ``act_max``
    / ``lut`` the output stage. ``acc_bound`` is the proved bound on every
    partial sum of each row's accumulator, ``acc_limit`` what it must stay
    below.
    """

    layer: Dense
    dtype: str
    weight: np.ndarray
    bias: np.ndarray
    input: TensorQuant = None
    output: TensorQuant = None
    pre: TensorQuant = None
    weight_scale: np.ndarray = None
    multiplier: np.ndarray = None
    shift: np.ndarray = None
    output_offset: int = 0
    act_min: int = 0
    act_max: int = 0
    lut: np.ndarray = None
    acc_bound: np.ndarray = None
    acc_limit: int = 0
    shifted_bound: np.ndarray = None
    shifted_limit: int = 0

    @property
    def name(self):
        return self.layer.name

    @property
    def headroom_bits(self):
        """How many bits the worst-case accumulator stays below its limit."""
        if self.acc_bound is None:
            return None
        before = math.log2(self.acc_limit / max(int(self.acc_bound.max()), 1))
        after = math.log2(self.shifted_limit / max(int(self.shifted_bound.max()), 1))
        return min(before, after)


def check_float32_range(name, weight, bias, input_max=F32_INPUT_MAX):
    """Refuse a float32 matrix whose sums could leave float32's range.

    On inputs up to ``input_max`` in magnitude (the verification inputs' largest,
    :data:`~darbgen.layers.base.F32_INPUT_MAX`) every product and partial sum
    of row r stays within ``|b_r| + input_max * sum_j |w_rj|``; when that bound
    (with room for the roundings) passes float32's largest value the C can
    compute inf, and inf - inf = NaN, so neither the C nor its check would mean
    anything. int8 / int16 layers scale their weights instead and do not need this.
    """
    w = np.abs(np.asarray(weight, np.float64))
    if w.size == 0:
        return
    bound = np.abs(np.asarray(bias, np.float64)) + input_max * w.sum(axis=1)
    bound = bound * (1.0 + (w.shape[1] + 1) * 2.0 ** -24)         # each rounding may grow a partial sum
    if np.all(bound <= float(FLT_MAX)):
        return
    r = int(np.argmax(bound))
    raise DarbgenError(
        f"{name}: float32 cannot hold this layer's sums: |bias| + {input_max:g} x sum|weights| of row {r} is "
        f"{bound[r]:.3g}, beyond float32's largest value {float(FLT_MAX):.3g} (inputs up to {input_max:g} are "
        f"verified), so the C would compute inf or NaN; scale the weights down (largest |weight| "
        f"{float(w.max()):.3g}) or fix the model")


def quantize_dense(layer, dtype, input_quant=None, output_range=None, pre_range=None):
    """Quantize one dense layer.

    Args:
        layer: the :class:`~darbgen.graph.Dense` layer.
        dtype: "float32", "int16" or "int8".
        input_quant: the input tensor's :class:`TensorQuant` (int types).
        output_range: (low, high) of the layer's outputs after its activation,
            from calibration (int types; not used for sigmoid / tanh, whose
            output quantization is fixed).
        pre_range: (low, high) before the activation (needed for sigmoid / tanh).
    """
    if dtype not in DTYPES:
        raise DarbgenError(f"{layer.name}: unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "float32":
        check_float32_range(layer.name, layer.weight, layer.bias)
        return QuantizedDense(layer, "float32", layer.weight.copy(), layer.bias.copy())
    if input_quant is None or input_quant.dtype != dtype:
        raise DarbgenError(f"{layer.name}: {dtype} needs the input's {dtype} quantization (from calibration data)")
    name = layer.name
    min_scale = np.abs(layer.bias.astype(np.float64)) / (input_quant.scale * BIAS_LIMIT[dtype])
    w_q, w_scale = quantize_weights(layer.weight, layer.mask, min_scale)
    real_scale = input_quant.scale * w_scale
    bias_q = round_half_away(layer.bias.astype(np.float64) / real_scale)
    act = layer.activation
    if act in ("sigmoid", "tanh"):
        if pre_range is None:
            raise DarbgenError(f"{name}: {act} needs the pre-activation range from calibration data")
        limit = LUT_INPUT_LIMIT[act]
        pre = tensor_quant(max(pre_range[0], -limit), min(pre_range[1], limit), dtype)
        scale, zp = LUT_OUTPUT[(dtype, act)]
        out = TensorQuant(dtype, scale, zp)
        stage = pre
        lut = activation_lut(dtype, act, pre, out)
        act_min, act_max = pre.qmin, pre.qmax
    else:
        if output_range is None:
            raise DarbgenError(f"{name}: {dtype} needs the output range from calibration data")
        pre = None
        out = stage = tensor_quant(output_range[0], output_range[1], dtype)
        lut = None
        act_min, act_max = out.qmin, out.qmax
        if act in ("relu", "relu6"):
            act_min = max(act_min, out.zero_point)
        if act == "relu6":
            act_max = min(act_max, out.zero_point + int(round_half_away(6.0 / out.scale)))
    mult, shift = zip(*(quantize_multiplier(s / stage.scale) for s in real_scale))
    mult = np.asarray(mult, np.int64)
    shift = np.asarray(shift, np.int64)
    abs_w = np.abs(w_q.astype(np.int64)).sum(axis=1)
    row_sums = w_q.astype(np.int64).sum(axis=1)
    if dtype == "int8":
        bias_c = bias_q.astype(np.int64) - input_quant.zero_point * row_sums
        max_shift = 30
        acc_bound = np.abs(bias_c) + 128 * abs_w
        acc_limit = INT32_MAX
        worst_after_shift = acc_bound << np.maximum(shift, 0)
        limit_after_shift = INT32_MAX - 129
    else:
        bias_c = bias_q.astype(np.int64)
        max_shift = 14
        acc_bound = np.abs(bias_c) + 32768 * abs_w
        acc_limit = (1 << 47) - 1
        worst_after_shift = acc_bound
        limit_after_shift = acc_limit
    if np.any(shift > max_shift):
        r = int(np.argmax(shift))
        raise DarbgenError(
            f"{name}: row {r} needs a requantization gain of 2^{int(shift[r])}, above the {dtype} limit 2^{max_shift}: "
            f"the output range is far narrower than input scale x weight scale. Check the calibration data, or "
            f"generate float32")
    bad = np.flatnonzero((acc_bound > acc_limit) | (worst_after_shift > limit_after_shift))
    if bad.size:
        r = int(bad[0])
        acc_type = "int32" if dtype == "int8" else "int64 (below 2^47, TFLite 16x8)"
        raise DarbgenError(
            f"{name}: the {acc_type} accumulator of row {r} could overflow: |bias| + max|input| x sum|weights| = "
            f"{int(acc_bound[r])} (x 2^{max(int(shift[r]), 0)} after the requantization shift) exceeds "
            f"{limit_after_shift}. The bias is too large for the weight and input scales; rescale the layer, "
            f"widen the calibration range, or generate float32")
    return QuantizedDense(
        layer=layer, dtype=dtype, weight=w_q, bias=bias_c, input=input_quant, output=out, pre=pre,
        weight_scale=w_scale, multiplier=mult, shift=shift, output_offset=stage.zero_point,
        act_min=int(act_min), act_max=int(act_max), lut=lut, acc_bound=acc_bound, acc_limit=acc_limit,
        shifted_bound=worst_after_shift, shifted_limit=limit_after_shift)


# ----------------------------------------------------------------------------- reference

def _patches(q, x, pad):
    """(n, pixels, cols): what each output pixel's row multiplies (one pixel for a dense layer)."""
    return q.layer.patches(x, pad)


def _channels_first(acc):
    """(n, pixels, rows) -> (n, rows * pixels): the C's channel-first output order."""
    return acc.transpose(0, 2, 1).reshape(acc.shape[0], -1)


def dense_int(q, x):
    """The int8 / int16 dense or convolution layer on quantized inputs, exactly as the C."""
    x = check_inputs(q, x).astype(np.int64)
    pad = q.input.zero_point if q.dtype == "int8" else 0        # real 0 outside the image
    from ..qmath_fast import int_matmul, requantize_s8 as fast_requantize_s8   # numba: loaded when first run

    acc = int_matmul(_patches(q, x, pad), q.weight.T) + q.bias.astype(np.int64)
    if q.dtype == "int8":
        v = fast_requantize_s8(acc, q.multiplier, q.shift) + q.output_offset
    else:
        v = requantize_s16(acc, q.multiplier, q.shift)
    v = np.clip(v, q.act_min, q.act_max)
    if q.lut is not None:
        v = q.lut.astype(np.int64)[v + 128] if q.dtype == "int8" else lut_s16(q.lut, v)
    return _channels_first(v).astype(np.int8 if q.dtype == "int8" else np.int16)


@QUIET
def dense_f32(q, x, all_columns=False):
    """The float32 dense or convolution layer in the C's order of operations.

    ``all_columns``: add every column, zeros included (the dense kernel);
    otherwise only the kept weights (packed, unrolled and CSR kernels).
    """
    x = check_inputs(q, x).astype(_F)
    w = q.weight.astype(_F)
    p = _patches(q, x, _F(0.0))
    acc = np.broadcast_to(q.bias.astype(_F), (p.shape[0], p.shape[1], w.shape[0])).copy()
    for j in range(w.shape[1]):
        rows = slice(None) if all_columns else q.layer.mask[:, j]
        acc[:, :, rows] += p[:, :, j:j + 1] * w[rows, j]
    return _channels_first(activate_f32(q.layer.activation, acc))


@QUIET
def dense_f64(q, x):
    """The float32 layer computed exactly (float64), for the tolerance check;
    also returns sum |w| |x| + |b| per output, the scale of rounding errors,
    plus :func:`~darbgen.math_f32.subnormal_floor` of the row's products
    (below float32's smallest normal the roundings err absolutely)."""
    x = check_inputs(q, x).astype(np.float64)
    p = _patches(q, x, 0.0)
    w = q.weight.astype(np.float64)
    b = q.bias.astype(np.float64)
    pre = p @ w.T + b
    magnitude = np.abs(p) @ np.abs(w).T + np.abs(b) + subnormal_floor(w.shape[1])
    return _channels_first(activate_f64(q.layer.activation, pre)), _channels_first(magnitude)


# ----------------------------------------------------------------------------- the kind

class DenseKind(LayerKind):
    """A fully connected layer: :class:`~darbgen.graph.Dense` as the op, :class:`QuantizedDense`."""

    kind = "dense"
    op_classes = (Dense,)
    quantized_classes = (QuantizedDense,)

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        return quantize_dense(op, dtype, in_q, out_range, pre_range)

    @QUIET
    def run(self, q, x, kernel="packed"):
        if q.dtype == "float32":
            return dense_f32(q, x, all_columns=(kernel == "dense"))
        return dense_int(q, x)

    @QUIET
    def exact(self, q, x):
        return dense_f64(q, x)

    def context(self, q, sym, kernel, prefix):
        """The ``dense_layer`` templates' context."""
        return layer_context(q, sym, kernel, prefix)

    def emit(self, q, sym, e):
        kernel = layer_kernel(q.layer, e.kernel)
        if kernel != e.kernel:
            e.note(f"{q.name}: not pruned, so it uses the dense kernel" if kernel == "dense" else
                   f"{q.name}: its mask is not a DARB / BMWM pattern, so it uses the {kernel} kernel")
        ctx, _ = self.context(q, sym, kernel, e.prefix)
        e.render("dense_layer", sym, ctx)
        return e.layer(q, sym, kernel, ctx["arrays"], f"{ctx['description']}, {q.layer.activation}")

    def report_shape(self, g):
        return [g.layer.rows, g.layer.cols]

    def report_fields(self, g):
        layer = g.layer
        return {"activation": layer.activation, "kept": layer.kept, "ratio": layer.ratio,
                "block_sizes": block_size_histogram(layer.block_sizes)}

    def sign_matrix(self, q):
        return q.layer.weight
