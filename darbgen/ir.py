"""The op graph: a directed acyclic graph of ops over named tensors.

This is what the importers of real models (.tflite, Keras .h5) produce and what
the graph pipeline (:mod:`darbgen.graph_build`) prunes, quantizes, generates and
verifies. Tensors keep the source model's layout: NHWC images for TFLite and
Keras (a firmware feature extractor or camera buffer goes in as it is).

* Shapes never include the batch: an image is ``(H, W, C)``, a vector ``(C,)``.
  Axes in node attributes count from the first non-batch dimension.
* A :class:`Tensor` carries its data when constant (weights, bias) and its
  quantization when the source model is quantized (``real = scale * (q -
  zero_point)``, per tensor or per channel along ``quant.axis``).
* A :class:`Node` is one op: its ``kind`` (a key of :data:`darbgen.ops.OPS`,
  where everything about that kind lives), its activation inputs and outputs
  (tensor names), its constant ``params`` (``"weight"``, ``"bias"``: Tensors)
  and its ``attrs`` (strides, padding, fused activation, ...; see each kind's
  module under ``darbgen/ops``).

Node kinds and their attrs (canonical forms, every importer produces these):

=================  ==============================================================
conv2d             weight (O, KH, KW, I), bias (O,); stride (h, w), dilation
                   (h, w), padding (top, bottom, left, right), activation
depthwise_conv2d   weight (KH, KW, C * M), bias (C * M,); multiplier M, stride,
                   dilation, padding, activation
fully_connected    weight (O, I), bias (O,); activation (input flattened)
add                two inputs of one shape; activation
avg_pool2d         filter (h, w), stride, padding, activation
max_pool2d         the same
mean               axes (tuple), keep_dims
reshape            shape (the new shape, without batch)
softmax            beta
pad                pads: ((before, after), ...) per axis
concat             axis, activation
quantize           float input to the quantized output tensor
dequantize         quantized input to float output
=================  ==============================================================

``activation`` is one of "none", "relu", "relu6", "relu_n1_to_1".
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import DarbgenError

FUSED_ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
TENSOR_DTYPES = ("float32", "int8", "int16", "int32", "int64")


@dataclass
class Quant:
    """Affine quantization: ``real = scale * (q - zero_point)``.

    ``scale`` and ``zero_point`` have one value (per tensor) or one per
    channel along ``axis`` of the tensor (per-channel weights)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, np.int64))
        if self.scale.shape != self.zero_point.shape:
            raise DarbgenError(f"quantization: {self.scale.size} scales but {self.zero_point.size} zero points")
        if not np.all(np.isfinite(self.scale)) or np.any(self.scale <= 0):
            raise DarbgenError("quantization: scales must be finite and positive")

    @property
    def per_tensor(self):
        return self.scale.size == 1

    def same_as(self, other):
        return (other is not None and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


@dataclass
class Tensor:
    """A named tensor: an activation (``data`` None) or a constant."""

    name: str
    shape: tuple
    dtype: str = "float32"
    quant: Quant = None
    data: np.ndarray = None

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in TENSOR_DTYPES:
            raise DarbgenError(f"tensor {self.name!r}: type {self.dtype} is not supported; darbgen runs "
                               f"{', '.join(TENSOR_DTYPES)}")
        if any(d < 1 for d in self.shape):
            raise DarbgenError(f"tensor {self.name!r}: shape {self.shape} has an empty or unknown dimension")

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_constant(self):
        return self.data is not None

    def real(self):
        """A constant's real values (dequantized when it is quantized), float64."""
        if self.data is None:
            raise DarbgenError(f"tensor {self.name!r} is not a constant")
        d = np.asarray(self.data)
        if self.quant is None or self.dtype == "float32":
            return d.astype(np.float64)
        shape = [1] * d.ndim
        if not self.quant.per_tensor:
            shape[self.quant.axis] = -1
        s = self.quant.scale.astype(np.float64).reshape(shape)
        z = self.quant.zero_point.astype(np.float64).reshape(shape)
        return s * (d.astype(np.float64) - z)


@dataclass
class Node:
    """One op of the graph (see the module docstring for kinds and attrs)."""

    kind: str
    name: str
    inputs: list
    outputs: list
    params: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    #: the name the source framework gives this op (may be long); ``name`` is short and unique
    source_name: str = None

    def __post_init__(self):
        self.inputs, self.outputs = list(self.inputs), list(self.outputs)
        if self.source_name is None:
            self.source_name = self.name

    def param(self, key):
        return self.params.get(key)


@dataclass
class Graph:
    """A model as a DAG of :class:`Node` over :class:`Tensor` (topologically ordered).

    ``inputs`` / ``outputs``: the model's activation tensor names.
    ``layout``: "NHWC" (TFLite, Keras) - the layout of its image tensors.
    ``classes``: the label of each output for classifiers (None: the index).
    ``source``: what it was imported from (for reports).
    """

    name: str
    tensors: dict
    nodes: list
    inputs: list
    outputs: list
    layout: str = "NHWC"
    classes: np.ndarray = None
    source: str = ""
    notes: list = field(default_factory=list)

    def __post_init__(self):
        self.check()

    # ------------------------------------------------------------------ structure
    def check(self):
        """Validate names, references and order (raises DarbgenError naming the op)."""
        if not self.nodes:
            raise DarbgenError(f"{self.name}: the model has no ops")
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise DarbgenError(f"{self.name}: darbgen generates models with one input and one output tensor; this "
                               f"one has {len(self.inputs)} inputs and {len(self.outputs)} outputs")
        names = [n.name for n in self.nodes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DarbgenError(f"{self.name}: op name {dup[0]!r} is used twice; op names must be unique")
        ready = set(self.inputs)
        for t in self.inputs:
            self._tensor(t, "model input")
        for node in self.nodes:
            for t in node.inputs:
                self._tensor(t, node.name)
                if t not in ready:
                    raise DarbgenError(f"{node.name}: reads tensor {t!r} before any op writes it (the graph must "
                                       f"be acyclic and in order)")
            for t in node.outputs:
                self._tensor(t, node.name)
                if t in ready:
                    raise DarbgenError(f"{node.name}: writes tensor {t!r}, which another op or the input writes")
                ready.add(t)
            for key, p in node.params.items():
                if not isinstance(p, Tensor) or p.data is None:
                    raise DarbgenError(f"{node.name}: parameter {key!r} must be a constant tensor")
        for t in self.outputs:
            if t not in ready:
                raise DarbgenError(f"{self.name}: no op writes the output tensor {t!r}")

    def _tensor(self, name, who):
        if name not in self.tensors:
            raise DarbgenError(f"{who}: unknown tensor {name!r}")
        return self.tensors[name]

    @property
    def input(self):
        return self.tensors[self.inputs[0]]

    @property
    def output(self):
        return self.tensors[self.outputs[0]]

    @property
    def input_shape(self):
        return self.input.shape

    @property
    def output_shape(self):
        return self.output.shape

    @property
    def quantized(self):
        """True when the model runs quantized (its ops' tensors carry int8 quantization)."""
        return any(self.tensors[t].dtype == "int8" for n in self.nodes for t in n.outputs)

    def producer(self):
        """{tensor name: the node writing it}."""
        return {t: n for n in self.nodes for t in n.outputs}

    def consumers(self):
        """{tensor name: [nodes reading it]}."""
        out = {}
        for n in self.nodes:
            for t in n.inputs:
                out.setdefault(t, []).append(n)
        return out

    def last_use(self):
        """{tensor name: index of the last node reading it} (outputs live to the end)."""
        last = {}
        for i, n in enumerate(self.nodes):
            for t in n.inputs:
                last[t] = i
        for t in self.outputs:
            last[t] = len(self.nodes)
        return last

    def weight_nodes(self):
        """The nodes whose weight matrices can be pruned (convolutions and fully connected)."""
        from .ops import op_kind

        return [n for n in self.nodes if op_kind(n).prunable]

    def replace(self, **changes):
        """A shallow copy with some fields changed (nodes are shared unless given)."""
        fields = dict(name=self.name, tensors=dict(self.tensors), nodes=list(self.nodes), inputs=list(self.inputs),
                      outputs=list(self.outputs), layout=self.layout, classes=self.classes, source=self.source,
                      notes=list(self.notes))
        fields.update(changes)
        return Graph(**fields)
