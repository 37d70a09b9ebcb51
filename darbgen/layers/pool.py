"""The pooling kind: max or average pooling at a known input shape
(:class:`darbgen.graph.PoolOp`, from Pool2D, Pool1D and GlobalAveragePool).

Its output keeps its input's quantization (:class:`QuantizedPool`, as in
TFLite), its reference is :func:`pool` (darb_maxpool_<t> / darb_avgpool_<t>
step for step), and its C the ``pool`` templates over a darb_conv_geometry.
"""
from dataclasses import dataclass

import numpy as np

from ..codegen.cformat import CTYPES, SUFFIX
from ..codegen.layer import geometry_fields, quant_macros
from ..errors import DarbgenError
from ..graph import PoolOp
from ..math_f32 import FLT_MAX, QUIET, subnormal_floor
from ..qmath import TensorQuant
from .base import LayerKind, check_inputs

_F = np.float32


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


def pool(q, x):
    """darb_maxpool_<t> / darb_avgpool_<t>: each window in (ky, kx) order,
    padded positions skipped; int averages rounded half away from zero."""
    x = check_inputs(q, x)
    layer = q.layer
    n = x.shape[0]
    if q.dtype == "float32":
        v, real = layer.windows(x.astype(_F), _F(0.0))
        if layer.kind == "max":
            acc = np.full(v.shape[:-1], -FLT_MAX, _F)
            for k in range(v.shape[-1]):
                acc = np.where(real[:, k] & (v[..., k] > acc), v[..., k], acc)
            return acc.reshape(n, -1)
        acc = np.zeros(v.shape[:-1], _F)
        for k in range(v.shape[-1]):
            acc = np.where(real[:, k], acc + v[..., k], acc)
        return (acc / real.sum(axis=-1).astype(_F)).astype(_F).reshape(n, -1)
    v, real = layer.windows(x.astype(np.int64), 0)
    out_t = np.int8 if q.dtype == "int8" else np.int16
    if layer.kind == "max":
        return np.where(real, v, np.iinfo(np.int64).min).max(axis=-1).astype(out_t).reshape(n, -1)
    total = np.where(real, v, 0).sum(axis=-1)
    count = real.sum(axis=-1)
    avg = np.where(total > 0, (total + count // 2) // count, -((-total + count // 2) // count))
    return avg.astype(out_t).reshape(n, -1)


def pool_context(q, sym, prefix):
    """The ``pool`` templates' context."""
    layer = q.layer
    kh, kw = layer.kernel_size
    fields = geometry_fields(layer, 0)
    if kh * kw > (1 << 23):
        raise DarbgenError(f"{layer.name}: a pooling window of {kh * kw} values could overflow the int8 sum "
                           f"(at most 2^23)")
    ctx = {"layer": layer, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": prefix, "arrays": [],
           "in_t": CTYPES[q.dtype][0], "sfx": SUFFIX[q.dtype], "macros": quant_macros(q), "header": f"{sym}.h",
           "fields": fields,
           "description": (f"{layer.kind} pooling {kh} x {kw} on {' x '.join(map(str, layer.in_shape))} -> "
                           f"{' x '.join(map(str, layer.out_shape))}, stride {layer.stride[0]}x{layer.stride[1]}, "
                           f"padding {'/'.join(map(str, layer.padding))}")}
    return ctx, []


class PoolKind(LayerKind):
    """Max or average pooling: :class:`~darbgen.graph.PoolOp`, :class:`QuantizedPool`."""

    kind = "pool"
    op_classes = (PoolOp,)
    quantized_classes = (QuantizedPool,)

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        return QuantizedPool(op, dtype, in_q, in_q)

    @QUIET
    def run(self, q, x, kernel="packed"):
        return pool(q, x)

    @staticmethod
    def _floor(q):
        # an average's sum and division round (absolutely, among the subnormals)
        return subnormal_floor(int(np.prod(q.layer.kernel_size))) if q.layer.kind == "avg" else 0.0

    @QUIET
    def exact(self, q, x):
        x = np.asarray(x, np.float64)
        return q.layer.forward_f64(x)[1], q.layer.forward_f64(np.abs(x))[1] + self._floor(q)

    def propagate_exact(self, q, y, scale):
        # the errors are pooled with the values
        return q.layer.forward_f64(y)[1], q.layer.forward_f64(scale)[1] + self._floor(q)

    def emit(self, q, sym, e):
        ctx, _ = pool_context(q, sym, e.prefix)
        e.render("pool", sym, ctx)
        return e.layer(q, sym, "pool", ctx["arrays"], ctx["description"])

    def report_kind(self, g):
        return f"{g.layer.kind}pool"
