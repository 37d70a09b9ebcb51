"""Quantizing and running an op graph (:mod:`darbgen.ir`): the oracle of the graph pipeline.

:func:`quantize_graph` turns a :class:`~darbgen.ir.Graph` into a :class:`QGraph`:
every tensor's number type and int8 quantization (kept from the file for a
quantized TFLite model, calibrated for a float model) and every node's
prepared parameters, computed as TFLite Micro's Prepare computes them.
:meth:`QGraph.run` then gives what the generated C must output, bit for bit.
Every op-specific step is asked of the node's :class:`~darbgen.ops.base.OpKind`.
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import DarbgenError
from .ops import op_kind
from .quantize import TensorQuant, tensor_range

_NP = {"int8": np.int8, "float32": np.float32}


def infer_shapes(graph):
    """{tensor name: shape} of every activation tensor, checked op by op against the file's shapes."""
    shapes = {t: graph.tensors[t].shape for t in graph.inputs}
    for node in graph.nodes:
        kind = op_kind(node)
        outs = kind.output_shapes(node, [shapes[t] for t in node.inputs])
        for t, s in zip(node.outputs, outs):
            declared = graph.tensors[t].shape
            if declared and int(np.prod(declared)) != int(np.prod(s)):
                raise DarbgenError(f"{node.name}: computes shape {tuple(s)} but the model declares "
                                   f"{tuple(declared)} for its output")
            shapes[t] = tuple(s)
    return shapes


@np.errstate(under="ignore", over="ignore", invalid="ignore")
def run_f64(graph, x, keep=False, until=None, given=None):
    """The float64 forward pass of a float graph on ``x`` (n, *input shape).

    Returns the output, or with ``keep`` every tensor's values; ``until`` (a
    node name) stops before that node runs (its inputs are then in the values);
    ``given``: {tensor: values} already known (of these same inputs): the ops
    writing them are skipped."""
    vals = {graph.inputs[0]: np.asarray(x, np.float64).reshape((len(x),) + tuple(graph.input_shape))}
    vals.update(given or {})
    for node in graph.nodes:
        if node.name == until:
            return vals
        if given and all(t in given for t in node.outputs):
            continue
        ys = op_kind(node).forward_f64(node, [vals[t] for t in node.inputs])
        for t, y in zip(node.outputs, ys):
            vals[t] = y
    return vals if keep else vals[graph.outputs[0]]


def _ir_quant(tensor):
    q = tensor.quant
    if q is None:
        raise DarbgenError(f"tensor {tensor.name!r}: an int8 tensor without quantization parameters")
    if not q.per_tensor:
        raise DarbgenError(f"tensor {tensor.name!r}: per-channel quantization of an activation is not supported")
    return TensorQuant("int8", float(q.scale[0]), int(q.zero_point[0]))


@dataclass
class QGraph:
    """A graph ready to generate: tensor types, shapes, int8 quantizations and node parameters."""

    graph: object
    dtype: str
    shapes: dict
    types: dict                       # tensor -> "int8" | "float32"
    quants: dict                      # tensor -> TensorQuant (int8 tensors)
    params: dict = field(default_factory=dict)

    # the PrepareContext face, for OpKind.prepare
    def quant(self, t):
        if t not in self.quants:
            raise DarbgenError(f"tensor {t!r} has no int8 quantization")
        return self.quants[t]

    def shape(self, t):
        return self.shapes[t]

    def type_of(self, t):
        return self.types[t]

    @property
    def input_type(self):
        return self.types[self.graph.inputs[0]]

    @property
    def output_type(self):
        return self.types[self.graph.outputs[0]]

    def quantize_input(self, x):
        """Real-valued inputs in the model's C input type."""
        t = self.graph.inputs[0]
        x = np.asarray(x, np.float64).reshape((len(x),) + tuple(self.shapes[t]))
        return self.quants[t].quantize(x) if self.types[t] == "int8" else x.astype(np.float32)

    def dequantize_output(self, y):
        t = self.graph.outputs[0]
        return self.quants[t].dequantize(y) if self.types[t] == "int8" else np.asarray(y, np.float64)

    @np.errstate(under="ignore", over="ignore", invalid="ignore")
    def run(self, x, kernel="packed", keep=False, until=None, given=None):
        """What the generated C outputs for inputs ``x`` in the model's input type ((n, *shape) or (n, size)).

        ``keep``: return every tensor's values; ``until`` (a node name): stop before that node runs and return
        the values so far; ``given``: {tensor: values} already known for these inputs (the ops writing them are
        skipped)."""
        g = self.graph
        t0 = g.inputs[0]
        x = np.asarray(x).reshape((len(x),) + tuple(self.shapes[t0]))
        vals = {t0: x}
        vals.update(given or {})
        for node in g.nodes:
            if node.name == until:
                return vals
            if given and all(t in given for t in node.outputs):
                continue
            kind = op_kind(node)
            xs = [vals[t] for t in node.inputs]
            p = self.params[node.name]
            if self.node_dtype(node) == "float32":
                ys = kind.forward_f32(node, p, xs, kernel)
            else:
                ys = kind.forward_int8(node, p, xs)
            for t, y in zip(node.outputs, ys):
                vals[t] = np.asarray(y).reshape((len(x),) + tuple(self.shapes[t]))
        return vals if keep else vals[g.outputs[0]]

    def node_dtype(self, node):
        """The arithmetic a node runs in: float32, or int8 when any of its tensors is int8."""
        ts = list(node.inputs) + list(node.outputs)
        return "int8" if any(self.types[t] == "int8" for t in ts) else "float32"


def quantize_graph(graph, dtype, calib=None, percentile=None):
    """A :class:`QGraph` for ``dtype`` ("int8" or "float32").

    A quantized model (int8 tensors from the file) keeps its own quantization:
    ``dtype`` must be "int8" and no calibration is needed. A float model runs
    in float32, or in int8 with activation ranges calibrated on ``calib``
    (inputs in the model's own layout, (n, *input shape))."""
    shapes = infer_shapes(graph)
    if graph.quantized:
        if dtype != "int8":
            raise DarbgenError(f"{graph.name}: the model is quantized (int8); it builds as int8 with its own "
                               f"quantization (drop --dtype {dtype})")
        types, quants = {}, {}
        for t in shapes:
            tensor = graph.tensors[t]
            types[t] = "int8" if tensor.dtype == "int8" else "float32"
            if tensor.dtype == "int8":
                quants[t] = _ir_quant(tensor)
            elif tensor.dtype != "float32":
                raise DarbgenError(f"tensor {t!r}: type {tensor.dtype} activations are not supported (int8 and "
                                   f"float32 are)")
        qg = QGraph(graph, "int8", shapes, types, quants)
    elif dtype == "float32":
        qg = QGraph(graph, "float32", shapes, dict.fromkeys(shapes, "float32"), {})
    elif dtype == "int8":
        qg = _calibrate(graph, shapes, calib, percentile)
    else:
        raise DarbgenError(f"{graph.name}: the graph pipeline generates int8 or float32, not {dtype!r} (int16 runs "
                           f"on chain models only)")
    for node in graph.nodes:
        qg.params[node.name] = op_kind(node).prepare(node, qg)
    return qg


def _calibrate(graph, shapes, calib, percentile):
    if calib is None:
        raise DarbgenError(f"{graph.name}: int8 needs calibration inputs to choose activation ranges: pass --calib "
                           f"X.npy with inputs in the model's own layout, shape (n, "
                           f"{', '.join(map(str, graph.input_shape))})")
    from .datacheck import calibration

    x = calibration(calib, graph.input_shape, f"{graph.name}: calibration inputs (calib)")
    vals = run_f64(graph, x, keep=True)
    quants = {}
    t0 = graph.inputs[0]
    from .ops.base import tensor_quant_int8

    quants[t0] = tensor_quant_int8(*tensor_range(x, percentile, "calibration inputs"))
    for node in graph.nodes:
        kind = op_kind(node)
        for t in node.outputs:
            lo, hi = tensor_range(vals[t], percentile, f"{node.name} output")
            quants[t] = kind.calibrated_quant(node, [quants[i] for i in node.inputs], lo, hi)
    return QGraph(graph, "int8", shapes, dict.fromkeys(shapes, "int8"), quants)
