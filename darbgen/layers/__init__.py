"""Op kinds of the chain pipeline (.npz, .onnx, .keras, PyTorch, scikit-learn
models): one module per kind, one table.

:data:`KINDS` maps an op kind (the ``op_kind`` of the lowered ops of
:meth:`darbgen.graph.Model.ops`) to its :class:`~darbgen.layers.base.LayerKind`,
which holds everything the stages know about that kind: quantization, the
NumPy reference, the C, the report row and the verification inputs.

==========  ==================================  ==============================
kind        op (darbgen.graph)                  module
==========  ==================================  ==============================
dense       Dense                               :mod:`darbgen.layers.dense`
conv        ConvOp (Conv2D, Conv1D)             :mod:`darbgen.layers.conv`
depthwise   DepthwiseOp (DepthwiseConv2D)       :mod:`darbgen.layers.depthwise`
pool        PoolOp (Pool2D, Pool1D, global)     :mod:`darbgen.layers.pool`
softmax     Softmax                             :mod:`darbgen.layers.softmax`
recurrent   RecurrentOp (LSTM, GRU)             :mod:`darbgen.layers.recurrent`
==========  ==================================  ==============================

A new kind: its op class in :mod:`darbgen.graph` (with an ``op_kind``, and
the :class:`~darbgen.graph.Layer` a Model holds that lowers to it), and a
module here with one LayerKind subclass, listed in :data:`KINDS` (and its
templates; the importers that produce it). Nothing else changes:
quantization, the reference, generate, verify and the build report find it
in the table.

(The op graph of .tflite / .h5 models has its own table, :data:`darbgen.ops.OPS`.)
"""
from ..errors import DarbgenError
from .base import LayerKind
from .conv import ConvKind
from .dense import DenseKind
from .depthwise import DepthwiseKind
from .pool import PoolKind
from .recurrent import RecurrentKind
from .softmax import SoftmaxKind

#: op kind -> its LayerKind
KINDS = {k.kind: k() for k in (DenseKind, ConvKind, DepthwiseKind, PoolKind, SoftmaxKind, RecurrentKind)}


def kind_of(obj):
    """The LayerKind of an op, of a quantized op (its ``layer``) or of a
    generated layer (its quantized op's): an error naming it otherwise."""
    kind = getattr(obj, "op_kind", None)
    if kind is None:
        kind = getattr(getattr(obj, "layer", None), "op_kind", None)
    try:
        return KINDS[kind]
    except KeyError:
        raise DarbgenError(f"{getattr(obj, 'name', obj)}: a {type(obj).__name__} is not an op the chain pipeline "
                           f"runs; it runs {', '.join(KINDS)}") from None


def op_classes():
    """Every op class of the chain pipeline."""
    return tuple(c for k in KINDS.values() for c in k.op_classes)


def quantized_classes():
    """Every quantized op class of the chain pipeline."""
    return tuple(dict.fromkeys(c for k in KINDS.values() for c in k.quantized_classes))


__all__ = ["KINDS", "LayerKind", "kind_of", "op_classes", "quantized_classes"]
