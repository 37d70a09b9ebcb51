"""The softmax kind: softmax over a vector (:class:`darbgen.graph.Softmax`, a
lowered Activation("softmax")).

Its quantization (:class:`QuantizedSoftmax`, :func:`quantize_softmax`: a fixed
output quantization and an integer exp table from the input scale), its
references (:func:`softmax_int`, :func:`softmax_f32`) and its C (the
``softmax`` templates, run in place over its input's buffer).
"""
from dataclasses import dataclass

import numpy as np

from ..activations import softmax_f64
from ..codegen.cformat import CTYPES, MAX_DIM, SUFFIX, CArray
from ..codegen.layer import quant_macros
from ..errors import DarbgenError
from ..graph import Softmax
from ..math_f32 import QUIET, expf
from ..qmath import INT16_LUT_SIZE, TensorQuant, round_half_away
from .base import LayerKind, check_inputs

_F = np.float32

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


def softmax_int(q, x):
    """darb_softmax_s8 / _s16: integer softmax through the exp table."""
    x = check_inputs(q, x).astype(np.int64)
    d = x.max(axis=1, keepdims=True) - x
    table = q.table.astype(np.int64)
    if q.dtype == "int8":
        e = table[d]
        total = e.sum(axis=1, keepdims=True)
        v = (e * 256 + total // 2) // total - 128
        return np.minimum(v, 127).astype(np.int8)
    index = d >> 7
    frac = d & 127
    lo, hi = table[index], table[index + 1]          # d <= 65535: index + 1 <= 512
    e = lo + (((hi - lo) * frac + 64) >> 7)
    total = e.sum(axis=1, keepdims=True)
    v = (e * 32768 + total // 2) // total
    return np.minimum(v, 32767).astype(np.int16)


@QUIET
def softmax_f32(x):
    """darb_softmax_f32: max, exp(x - max) with darb_expf, a running sum, one division each."""
    x = np.asarray(x, _F)
    e = expf(x - x.max(axis=1, keepdims=True))
    total = np.zeros(x.shape[0], _F)
    for j in range(x.shape[1]):
        total = total + e[:, j]
    return (e / total[:, None]).astype(_F)


def softmax_context(q, sym, prefix):
    """The ``softmax`` templates' context, and its arrays."""
    if q.layer.size > MAX_DIM:
        raise DarbgenError(f"{q.name}: softmax over {q.layer.size} values is beyond the C kernels' limit of "
                           f"{MAX_DIM}")
    arrays = []
    if q.dtype != "float32":
        arrays.append(CArray(f"{sym}_exp", "int32_t", q.table, "params"))
    in_t = CTYPES[q.dtype][0]
    macros = quant_macros(q)
    ctx = {"layer": q.layer, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": prefix, "arrays": arrays,
           "in_t": in_t, "sfx": SUFFIX[q.dtype], "macros": macros, "header": f"{sym}.h"}
    return ctx, arrays


class SoftmaxKind(LayerKind):
    """softmax over a vector: :class:`~darbgen.graph.Softmax`, :class:`QuantizedSoftmax`."""

    kind = "softmax"
    op_classes = (Softmax,)
    quantized_classes = (QuantizedSoftmax,)
    in_place = True

    def forward_f64(self, op, x):
        x = np.asarray(x, np.float64)
        return x, softmax_f64(x)

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        return quantize_softmax(op, dtype, in_q)

    @QUIET
    def run(self, q, x, kernel="packed"):
        return softmax_f32(x) if q.dtype == "float32" else softmax_int(q, x)

    @QUIET
    def exact(self, q, x):
        y = softmax_f64(np.asarray(x, np.float64))
        return y, np.broadcast_to(np.abs(y).max(axis=1, keepdims=True), y.shape)

    def propagate_exact(self, q, y, scale):
        # relative to the output, times the incoming scale
        y = self.exact(q, y)[0]
        grow = 1.0 + 2.0 * scale.max(axis=1, keepdims=True)
        return y, np.broadcast_to(np.abs(y).max(axis=1, keepdims=True) * grow, y.shape)

    def emit(self, q, sym, e):
        ctx, _ = softmax_context(q, sym, e.prefix)
        e.render("softmax", sym, ctx)
        return e.layer(q, sym, "softmax", ctx["arrays"], f"softmax over {q.layer.size}")

    def report_shape(self, g):
        return [g.layer.size]
