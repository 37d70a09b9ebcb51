"""Quantization: int8 and int16x8 parameters and the integer arithmetic the C performs.

The convention is TensorFlow Lite's (and CMSIS-NN's), see docs/codegen.md:

* weights int8, symmetric, one scale per output row (zero point 0), values in
  -127..127;
* int8 activations asymmetric per tensor (``real = scale * (q - zero_point)``);
  int16 activations symmetric (zero point 0), as in TFLite's 16x8 mode;
* bias int32 (int8) or int64 (int16) at scale ``input_scale * weight_scale``;
* requantization by a Q31 multiplier and a power-of-two shift, with gemmlowp's
  SaturatingRoundingDoublingHighMul and RoundingDivideByPOT (int8), or
  TFLite's reduced Q15 multiplier with a rounding shift (16x8); then the output
  zero point, a clamp (ReLU / ReLU6 fused there) and, for sigmoid and tanh, a
  look-up table.

Every integer step here is done in NumPy int64 exactly as the C does it in
int32 / int64, so :mod:`darbgen.reference` and the generated C agree bit for
bit. The accumulator bound is proved at quantization time: a layer whose
accumulator could overflow for *any* input of its type is refused.

This module never imports numba: it is half of the oracle the C is checked
against.
"""
import math
from dataclasses import dataclass

import numpy as np

from .errors import DarbgenError
from .graph import Dense, PoolOp, RecurrentOp, Softmax

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


# ----------------------------------------------------------------------------- layers

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


def _lut_function(activation):
    return lambda x: activate_f64(activation, x)


def _lut(dtype, activation, pre, out):
    f = _lut_function(activation)
    if dtype == "int8":
        q = np.arange(-128, 128)
    else:
        q = -32768 + 128 * np.arange(INT16_LUT_SIZE)      # the last entry (32768) only interpolates
    y = round_half_away(f(pre.scale * (q - pre.zero_point)) / out.scale) + out.zero_point
    return np.clip(y, out.qmin, out.qmax).astype(out.np_dtype)


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
        lut = _lut(dtype, act, pre, out)
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


# ----------------------------------------------------------------------------- softmax

SOFTMAX_OUTPUT = {"int8": (1.0 / 256, -128), "int16": (1.0 / 32768, 0)}
SOFTMAX_ONE = 1 << 15          # exp table values are Q15: exp(0) = 32768


@dataclass
class QuantizedSoftmax:
    """softmax over a vector, with its integer exp table.

    int8: ``table[d] = round(2^15 exp(-d * input_scale))`` for the 256 possible
    differences ``d = max - x``; ``out = round(256 e / sum) - 128``.
    int16: a 513-entry table over d = 0..65536 in steps of 128, interpolated
    like the int16 activation tables; ``out = round(32768 e / sum)``, at most
    32767. float32 needs no table.
    """

    layer: Softmax
    dtype: str
    input: TensorQuant = None
    output: TensorQuant = None
    table: np.ndarray = None

    @property
    def name(self):
        return self.layer.name


def quantize_softmax(layer, dtype, input_quant=None):
    """Quantize a softmax op: fixed output quantization, exp table from the input scale."""
    if dtype == "float32":
        return QuantizedSoftmax(layer, dtype)
    if input_quant is None or input_quant.dtype != dtype:
        raise DarbgenError(f"{layer.name}: {dtype} softmax needs the input's {dtype} quantization")
    d = np.arange(256) if dtype == "int8" else 128 * np.arange(INT16_LUT_SIZE)
    table = round_half_away(SOFTMAX_ONE * np.exp(-d * input_quant.scale)).astype(np.int32)
    scale, zp = SOFTMAX_OUTPUT[dtype]
    return QuantizedSoftmax(layer, dtype, input_quant, TensorQuant(dtype, scale, zp), table)


@np.errstate(under="ignore")
def softmax_f64(v):
    """softmax over the last axis in float64."""
    v = np.asarray(v, np.float64)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- networks

@np.errstate(under="ignore")
def float_forward(layer, x):
    """A dense layer or softmax op in float64: (pre-activation, output)."""
    if isinstance(layer, Softmax):
        x = np.asarray(x, np.float64)
        return x, softmax_f64(x)
    return layer.forward_f64(x)


@dataclass
class QuantizedPool:
    """A pooling op: its output keeps its input's quantization (as in TFLite)."""

    layer: PoolOp
    dtype: str
    input: TensorQuant = None
    output: TensorQuant = None

    @property
    def name(self):
        return self.layer.name


@dataclass
class QuantizedRecurrent:
    """An LSTM / GRU run over a sequence: its two matrices as dense layers
    and, for int16 and int8, the cell's tables (see runtime_c/src/darb_rnn_s16.c):
    gates at one shared scale, Q15 sigmoid / tanh, the cell state at its own
    scale, the hidden state Q15.

    int8 layers keep that int16 cell (as TFLite's integer LSTM keeps int16
    gates and cell): the int8 input is widened exactly to int16 (``q -
    zero_point`` at the same scale, ``wide``), the weights stay int8 (16x8
    matrices), and the Q15 hidden state is requantized to the int8 output
    (``output``, symmetric, from calibration) by ``out_multiplier`` /
    ``out_shift``."""

    layer: RecurrentOp
    dtype: str
    ih: QuantizedDense = None
    hh: QuantizedDense = None
    input: TensorQuant = None
    output: TensorQuant = None
    gate: TensorQuant = None
    cell: TensorQuant = None
    sigmoid: np.ndarray = None
    tanh: np.ndarray = None
    tanh_c: np.ndarray = None
    ig_multiplier: int = 0
    ig_shift: int = 0
    wide: TensorQuant = None
    out_multiplier: int = 0
    out_shift: int = 0

    @property
    def name(self):
        return self.layer.name


Q15 = TensorQuant("int16", 1.0 / 32768, 0)
#: gate pre-activation ranges beyond this saturate sigmoid and tanh anyway
GATE_LIMIT = 8.0


def quantize_recurrent(op, dtype, input_quant=None, calib=None, percentile=None):
    """Quantize an LSTM / GRU: float32, or int16 / int8 from calibration sequences.

    int16 (16x8): the input at its calibrated int16 scale, gates at one
    shared scale (their calibrated range, at most +-8), the cell state at its
    own (at least +-1), the hidden state Q15. int8: the same cell, the int8
    input widened to int16 and the hidden state requantized to int8.
    """
    layer = op.layer
    if dtype == "float32":
        return QuantizedRecurrent(op, dtype, quantize_dense(layer.ih, dtype), quantize_dense(layer.hh, dtype))
    if dtype not in ("int16", "int8"):
        raise DarbgenError(f"{op.name}: unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if input_quant is None or input_quant.dtype != dtype:
        raise DarbgenError(f"{op.name}: {dtype} needs the input's {dtype} quantization (from calibration data)")
    wide = input_quant if dtype == "int16" else TensorQuant("int16", input_quant.scale, 0)
    gx, gh, cells, hs = op.trace_f64(calib)
    bound = min(max(np.abs(gx).max(), np.abs(gh).max(), np.abs(gx + gh).max(), 1e-3), GATE_LIMIT)
    ih = quantize_dense(layer.ih, "int16", wide, output_range=(-bound, bound))
    hh = quantize_dense(layer.hh, "int16", Q15, output_range=(-bound, bound))
    gate = ih.output
    c_max = 1.0 if cells is None else max(np.abs(cells).max(), 1.0)
    cell = tensor_quant(-c_max, c_max, "int16")
    mult, shift = quantize_multiplier(2.0 ** -30 / cell.scale)
    if shift > 0:
        raise DarbgenError(f"{op.name}: the cell-state range is too narrow for int16")
    output, out_mult, out_shift = Q15, 0, 0
    if dtype == "int8":
        seen = hs if op.sequences else hs[-1:]
        low, high = tensor_range(seen, percentile, f"{op.name} hidden states")
        h_max = min(max(-low, high, 2.0 ** -7), 1.0)
        output = TensorQuant("int8", h_max / 127.0, 0)
        out_mult, out_shift = quantize_multiplier(Q15.scale / output.scale)
    return QuantizedRecurrent(op, dtype, ih, hh, input_quant, output, gate, cell,
                              _lut("int16", "sigmoid", gate, Q15), _lut("int16", "tanh", gate, Q15),
                              _lut("int16", "tanh", cell, Q15), mult, shift, wide, out_mult, out_shift)


def _quantize_op(layer, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
    if isinstance(layer, RecurrentOp):
        return quantize_recurrent(layer, dtype, in_q, calib, percentile)
    if isinstance(layer, PoolOp):
        return QuantizedPool(layer, dtype, in_q, in_q)
    if isinstance(layer, Softmax):
        return quantize_softmax(layer, dtype, in_q)
    return quantize_dense(layer, dtype, in_q, out_range, pre_range)


@np.errstate(under="ignore")
def activate_f64(activation, v):
    """The exact activation in float64."""
    if activation == "relu":
        return np.maximum(v, 0.0)
    if activation == "relu6":
        return np.clip(v, 0.0, 6.0)
    if activation == "sigmoid":
        e = np.exp(-np.abs(v))               # never overflows
        return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if activation == "tanh":
        return np.tanh(v)
    return v


def is_chain(layers):
    """True when each layer's inputs are the previous layer's outputs."""
    return all(a.out_size == b.in_size for a, b in zip(layers, layers[1:]))


def _calibration_inputs(layer, x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise DarbgenError(f"{layer.name}: calibration inputs must be numbers, got dtype {x.dtype}")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != layer.in_size:
        raise DarbgenError(f"{layer.name}: calibration inputs must have shape (n, {layer.in_size}), got {x.shape}")
    return x.astype(np.float64)


@np.errstate(under="ignore")
def quantize_network(layers, dtype, calib=None, percentile=None):
    """Quantize a list of dense layers (and softmax ops) from calibration inputs.

    ``calib`` is an (n, inputs) array of inputs to the first layer when the
    layers form a chain (each feeding the next: the ranges are propagated
    through the pruned float model and every layer's output quantization is
    the next one's input), or a dict ``{layer name: (n, inputs) array}`` to
    calibrate layers one by one. float32 needs no calibration.
    """
    if dtype not in DTYPES:
        raise DarbgenError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "float32":
        return [_quantize_op(layer, dtype, None, None, None) for layer in layers]
    if calib is None:
        raise DarbgenError(f"{dtype} needs calibration inputs to choose activation ranges: pass --calib X.npy "
                           f"(inputs of the first layer, shape (n, {layers[0].in_size})) or calib= in the API")
    out = []
    if isinstance(calib, dict):
        for layer in layers:
            if layer.name not in calib:
                raise DarbgenError(f"{layer.name}: no calibration inputs for this layer in the calibration dict")
            x = _calibration_inputs(layer, calib[layer.name])
            in_q = tensor_quant(*tensor_range(x, percentile, f"{layer.name} calibration"), dtype)
            pre, y = float_forward(layer, x)
            out.append(_quantize_op(layer, dtype, in_q, tensor_range(y, percentile, layer.name),
                                    tensor_range(pre, percentile, layer.name), x, percentile))
        return out
    if not is_chain(layers):
        raise DarbgenError("these layers do not form a chain (a layer's inputs are not the previous layer's "
                           "outputs), so one calibration array cannot serve them all; give a dict of "
                           "calibration inputs per layer")
    x = _calibration_inputs(layers[0], calib)
    in_q = tensor_quant(*tensor_range(x, percentile, "calibration inputs"), dtype)
    for layer in layers:
        pre, y = float_forward(layer, x)
        q = _quantize_op(layer, dtype, in_q, tensor_range(y, percentile, layer.name),
                         tensor_range(pre, percentile, layer.name), x, percentile)
        out.append(q)
        in_q = q.output
        # Propagate what the device will see: the quantized (clamped) outputs.
        x = q.output.dequantize(q.output.quantize(y))
    return out
