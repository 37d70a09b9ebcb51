"""The depthwise kind: a DepthwiseConv2D at a known input shape (:class:`darbgen.graph.DepthwiseOp`,
channel first), as its own op.

Each output channel o has its own kh x kw weights and reads only input
channel ``o // multiplier``: the op stores channels x multiplier x kh x kw
weights (a full convolution would store channels times as many, nearly all
zero). It is quantized like a dense layer whose rows are the output channels
(:func:`~darbgen.layers.dense.quantize_dense` on the op's ``matrix``: per-row
int8 weights, the input zero point folded into the bias, padded taps reading
the zero point), and its C is darb_depthwise_chw_<t> (runtime_c/src/darb_depthwise_chw.c).
"""
import dataclasses

import numpy as np

from ..codegen.cformat import BIAS_CTYPE, CArray, CTYPES, SUFFIX
from ..codegen.layer import ACTIVATION_ENUM, geometry_fields, param_arrays, quant_macros, scale_mask
from ..graph import DepthwiseOp
from ..math_f32 import QUIET, activate_f32, subnormal_floor
from ..activations import activate_f64
from ..qmath import lut_s16, requantize_s16, requantize_s8
from .base import LayerKind, check_inputs
from .dense import QuantizedDense, quantize_dense

_F = np.float32


def _out(acc):
    """(n, channels, pixels) -> (n, channels * pixels): channel first, as the C writes."""
    return acc.reshape(acc.shape[0], -1)


def depthwise_int(q, x):
    """darb_depthwise_chw_s8 / _s16: per output channel, bias + the taps in (ky, kx) order, then the
    dense layers' output stage."""
    x = check_inputs(q, x).astype(np.int64)
    pad = q.input.zero_point if q.dtype == "int8" else 0
    v = q.layer.windows(x, pad)                                   # (n, channels, pixels, taps)
    acc = np.einsum("ncpt,ct->ncp", v, q.weight.astype(np.int64)) + q.bias.astype(np.int64)[None, :, None]
    mult, shift = q.multiplier[None, :, None], q.shift[None, :, None]
    if q.dtype == "int8":
        out = requantize_s8(acc, mult, shift) + q.output_offset
    else:
        out = requantize_s16(acc, mult, shift)
    out = np.clip(out, q.act_min, q.act_max)
    if q.lut is not None:
        out = q.lut.astype(np.int64)[out + 128] if q.dtype == "int8" else lut_s16(q.lut, out)
    return _out(out).astype(np.int8 if q.dtype == "int8" else np.int16)


@QUIET
def depthwise_f32(q, x):
    """darb_depthwise_chw_f32: acc = bias, then + w * x tap by tap in float32, then the activation."""
    x = check_inputs(q, x).astype(_F)
    v = q.layer.windows(x, _F(0.0))
    w = q.weight.astype(_F)
    acc = np.broadcast_to(q.bias.astype(_F)[None, :, None], v.shape[:3]).copy()
    for t in range(v.shape[-1]):
        acc += v[..., t] * w[None, :, t, None]
    return _out(activate_f32(q.layer.activation, acc))


@QUIET
def depthwise_f64(q, x):
    """The exact result and sum |w| |x| + |b| per output (the scale of float32 rounding), plus
    :func:`~darbgen.math_f32.subnormal_floor` of the taps."""
    x = check_inputs(q, x).astype(np.float64)
    v = q.layer.windows(x, 0.0)
    w, b = q.weight.astype(np.float64), q.bias.astype(np.float64)[None, :, None]
    pre = np.einsum("ncpt,ct->ncp", v, w) + b
    magnitude = np.einsum("ncpt,ct->ncp", np.abs(v), np.abs(w)) + np.abs(b) + subnormal_floor(w.shape[1])
    return _out(activate_f64(q.layer.activation, pre)), _out(magnitude)


class DepthwiseKind(LayerKind):
    """A depthwise convolution: :class:`~darbgen.graph.DepthwiseOp`, quantized as a
    :class:`~darbgen.layers.dense.QuantizedDense` over its output channels."""

    kind = "depthwise"
    op_classes = (DepthwiseOp,)
    quantized_classes = (QuantizedDense,)

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        return dataclasses.replace(quantize_dense(op.matrix, dtype, in_q, out_range, pre_range), layer=op)

    def run(self, q, x, kernel="packed"):
        return depthwise_f32(q, x) if q.dtype == "float32" else depthwise_int(q, x)

    def exact(self, q, x):
        return depthwise_f64(q, x)

    def emit(self, q, sym, e):
        op = q.layer
        pad = q.input.zero_point if q.dtype == "int8" else 0
        w_t = CTYPES[q.dtype][1]
        arrays = [CArray(f"{sym}_weights", w_t, q.weight.astype(np.float32 if q.dtype == "float32" else np.int8),
                         "values")] + param_arrays(q, sym)
        names = {a.symbol for a in arrays}
        kh, kw = op.kernel_size
        description = (f"depthwise {op.rows} x {kh} x {kw} (multiplier {op.multiplier}) on "
                       f"{' x '.join(map(str, op.in_shape))} -> {' x '.join(map(str, op.out_shape))}, stride "
                       f"{op.stride[0]}x{op.stride[1]}, padding {'/'.join(map(str, op.padding))}, dilation "
                       f"{op.dilation[0]}x{op.dilation[1]}")
        ctx = {"layer": op, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": e.prefix, "arrays": arrays,
               "ref": lambda name: f"{sym}_{name}" if f"{sym}_{name}" in names else "0",
               "in_t": CTYPES[q.dtype][0], "sfx": SUFFIX[q.dtype], "acc_t": BIAS_CTYPE[q.dtype],
               "macros": quant_macros(q), "header": f"{sym}.h", "fields": geometry_fields(op, pad),
               "activation_enum": ACTIVATION_ENUM[op.activation], "description": description,
               "scale_mask": scale_mask(q)}
        e.render("depthwise", sym, ctx)
        return e.layer(q, sym, "depthwise", arrays, f"{description}, {op.activation}")

    def runtime(self, g):
        return {("depthwise", g.dtype)}

    def report_fields(self, g):
        return {"activation": g.layer.activation}
