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

Every integer step is done in NumPy int64 exactly as the C does it in
int32 / int64, so :mod:`darbgen.reference` and the generated C agree bit for
bit. The accumulator bound is proved at quantization time: a layer whose
accumulator could overflow for *any* input of its type is refused.

Where things live: this module holds :func:`quantize_network` (calibration of
a chain, each op quantized by its kind, :data:`darbgen.layers.KINDS`) and
re-exports the rest under its historical names: the arithmetic from
:mod:`darbgen.qmath`, the float64 activations from :mod:`darbgen.activations`,
and each kind's quantized form from its module (:class:`QuantizedDense` and
:func:`quantize_dense` from :mod:`darbgen.layers.dense`,
:class:`QuantizedSoftmax` from :mod:`~darbgen.layers.softmax`,
:class:`QuantizedPool` from :mod:`~darbgen.layers.pool`,
:class:`QuantizedRecurrent` from :mod:`~darbgen.layers.recurrent`).

Never imports numba: it is half of the oracle the C is checked against.
"""
import numpy as np

from .activations import activate_f64, softmax_f64
from .errors import DarbgenError
from .layers import kind_of
from .layers.dense import QuantizedDense, quantize_dense
from .layers.pool import QuantizedPool
from .layers.recurrent import GATE_LIMIT, Q15, QuantizedRecurrent, quantize_recurrent
from .layers.softmax import SOFTMAX_ONE, SOFTMAX_OUTPUT, QuantizedSoftmax, quantize_softmax
from .qmath import (BIAS_LIMIT, DTYPES, INT16_LUT_SIZE, INT32_MAX, INT32_MIN, LUT_INPUT_LIMIT, LUT_OUTPUT,
                    TensorQuant, activation_lut, doubling_high_mul, lut_s16, quantize_multiplier, quantize_weights,
                    requantize_s8, requantize_s16, round_half_away, rounding_divide_by_pot, tensor_quant,
                    tensor_range)


@np.errstate(under="ignore")
def float_forward(layer, x):
    """An op in float64: (pre-activation, output)."""
    return kind_of(layer).forward_f64(layer, x)


def _quantize_op(layer, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
    return kind_of(layer).quantize(layer, dtype, in_q, out_range, pre_range, calib, percentile)


def is_chain(layers):
    """True when each layer's inputs are the previous layer's outputs."""
    return all(a.out_size == b.in_size for a, b in zip(layers, layers[1:]))


def _calibration_inputs(layer, x):
    from .datacheck import calibration

    return calibration(x, (layer.in_size,), f"{layer.name}: calibration inputs (calib)").reshape(len(x), -1)


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


__all__ = ["BIAS_LIMIT", "DTYPES", "GATE_LIMIT", "INT16_LUT_SIZE", "INT32_MAX", "INT32_MIN", "LUT_INPUT_LIMIT",
           "LUT_OUTPUT", "Q15", "QuantizedDense", "QuantizedPool", "QuantizedRecurrent", "QuantizedSoftmax",
           "SOFTMAX_ONE", "SOFTMAX_OUTPUT", "TensorQuant", "activate_f64", "activation_lut", "doubling_high_mul",
           "float_forward", "is_chain", "lut_s16", "quantize_dense", "quantize_multiplier", "quantize_network",
           "quantize_recurrent", "quantize_softmax", "quantize_weights", "requantize_s8", "requantize_s16",
           "round_half_away", "rounding_divide_by_pot", "softmax_f64", "tensor_quant", "tensor_range"]
