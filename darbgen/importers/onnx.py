"""An ONNX model into darbgen's layer graph (docs/onnx.md).

Walks the graph from its single input along one chain of nodes (darbgen
builds sequential networks: no branches, no residual connections) and maps
each node onto a layer of :mod:`darbgen.graph`. Nodes whose inputs are all
constants (initializers, ``Constant`` nodes, ``DequantizeLinear`` of
quantized weights, ...) are folded into constants with onnx's reference
evaluator. Anything darbgen cannot compute exactly is refused with a
message naming the node.

The ``onnx`` package is imported only when a model is read, so darbgen does
not need it otherwise.
"""
import dataclasses
import os

import numpy as np

from ..codegen.names import LayerNames
from ..errors import DarbgenError
from ..graph import (GRU, LSTM, Activation, Conv1D, Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePool,
                     Model, Pool1D, Pool2D, fold_batchnorm)

#: ONNX operators (default domain) that ``model_from_onnx`` maps onto layers.
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "Tanh", "Softmax",
                 "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "LSTM", "GRU", "Identity",
                 "Dropout", "Squeeze", "Unsqueeze", "Transpose", "Gather", "Slice", "QuantizeLinear",
                 "DequantizeLinear", "Constant", "Shape")

#: ONNX gate order -> PyTorch's (darbgen's): LSTM i, o, f, c -> i, f, g, o; GRU z, r, h -> r, z, n.
LSTM_ORDER = (0, 2, 3, 1)
GRU_ORDER = (1, 0, 2)

#: what a Shape node reports for a symbolic batch size (a large prime: a Reshape
#: that uses it as the batch is recognised, any arithmetic on it then fails to fit)
_BATCH = 1_000_003
_WEIGHT_LAYERS = (Dense, Conv1D, Conv2D, DepthwiseConv2D)
_FLOATS = (1, 10, 11, 16)            # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise DarbgenError("reading ONNX models needs the onnx package: pip install onnx") from None
    return onnx


def _read(onnx, source):
    """(ModelProto, where) from a path, bytes or a ModelProto; every failure a DarbgenError."""
    if isinstance(source, onnx.ModelProto):
        model, where = source, "the ONNX model"
    elif isinstance(source, (bytes, bytearray)):
        where = "the ONNX bytes"
        try:
            model = onnx.load_model_from_string(bytes(source))
        except Exception as exc:  # protobuf raises several kinds
            raise DarbgenError(f"{where}: is not a valid ONNX model: {exc.__class__.__name__}: {exc}") from None
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        if not os.path.isfile(where):
            raise DarbgenError(f"{where}: no such file")
        try:
            model = onnx.load(where)
        except Exception as exc:  # a broken file can raise almost anything (DecodeError, OSError, ...)
            raise DarbgenError(f"{where}: is not a valid ONNX model: {exc.__class__.__name__}: {exc}") from None
    else:
        raise DarbgenError(f"cannot read an ONNX model from a {type(source).__name__}: give a path or a ModelProto")
    _refuse_integer_weights(onnx, model.graph, where)
    try:
        # full_check adds strict type and shape inference: it catches, for example, int8 weights fed to a
        # MatMul without a DequantizeLinear, which the basic check lets through
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise DarbgenError(f"{where}: is not a valid ONNX model (onnx.checker): {exc.__class__.__name__}: "
                           f"{_first_line(exc)}") from None
    return model, where


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


#: inputs (by position) of the ops darbgen maps to layers that hold float weights
_WEIGHT_INPUTS = {"Gemm": (0, 1, 2), "MatMul": (0, 1), "Conv": (1, 2), "BatchNormalization": (1, 2, 3, 4),
                  "LSTM": (1, 2, 3, 5, 6, 7), "GRU": (1, 2, 3, 5)}


def _integer_weights_message(where, node, tensor, dtype):
    return (f"{where}: node {_label(node)!r} ({node.op_type}): its input {tensor!r} holds {dtype} integers used "
            f"directly as float weights (no DequantizeLinear, so their scale is lost); export float weights, or a "
            f"QDQ model where DequantizeLinear turns the {dtype} weights into floats (docs/onnx.md)")


def _refuse_integer_weights(onnx, graph, where):
    """A DarbgenError when an integer initializer (or Constant) feeds a layer
    directly as its weights, bias or normalisation parameters."""
    integers = {}
    for init in graph.initializer:
        integers[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    integers[node.output[0]] = a.t.data_type
    names = {v: k for k, v in onnx.TensorProto.DataType.items()}
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if all(t in integers and integers[t] not in _FLOATS for t in node.input if t):
            continue                 # integer arithmetic on constants (shape computations), not a layer
        for i in _WEIGHT_INPUTS.get(node.op_type, ()):
            tensor = node.input[i] if i < len(node.input) else ""
            code = integers.get(tensor)
            if tensor and code is not None and code not in _FLOATS:
                raise DarbgenError(_integer_weights_message(where, node, tensor, names.get(code, str(code)).lower()))


def _attrs(onnx, node):
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _prod(values):
    return int(np.prod(values, dtype=np.int64)) if len(values) else 1


def _label(node):
    """A node's name, or (unnamed) its first output's."""
    return node.name or (f"(unnamed, output {node.output[0]})" if node.output and node.output[0] else "(unnamed)")


def _squeezed(shape):
    return tuple(int(d) for d in shape if d != 1)


class _Importer:
    def __init__(self, onnx, proto, where, name):
        self.onnx, self.proto, self.where = onnx, proto, where
        self.graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.name = name
        self.layers = []
        self.names = LayerNames()
        self.consts = {}
        self.seen = {}               # dynamic tensor -> (ONNX shape with None for the batch, batch axis)
        self.consumers = {}
        for node in self.graph.node:
            for t in node.input:
                if t and node.op_type != "Shape":          # reading a shape is not a branch of the data
                    self.consumers.setdefault(t, []).append(node)
        self.outputs = [o.name for o in self.graph.output]

    # ------------------------------------------------------------------ helpers

    def fail(self, node, message):
        raise DarbgenError(f"{self.where}: node {_label(node)!r} ({node.op_type}): {message}")

    def unique(self, base, extra=()):
        """A layer name from ``base``, unique also as a C identifier (:class:`LayerNames`)."""
        return self.names.unique(base, extra)

    def layer_name(self, node, extra=()):
        return self.unique(node.name or (node.output[0] if node.output else node.op_type.lower()), extra)

    def darb_shape(self):
        if not self.layers:
            return self.input_shape
        return Model(self.name, self.input_shape, self.layers).shapes()[-1]

    def sample(self):
        return tuple(d for i, d in enumerate(self.shape) if i != self.batch)

    def const(self, node, index, what, required=True):
        name = node.input[index] if len(node.input) > index else ""
        if not name:
            if required:
                self.fail(node, f"needs its {what} input")
            return None
        if name not in self.consts:
            self.fail(node, f"its {what} ({name!r}) must be a constant (an initializer), not computed from the "
                            f"input")
        return self.consts[name]

    def weights(self, node, index, what, required=True):
        """A constant input holding float weights (``const``); integer values are refused (an
        integer tensor reaching a layer without DequantizeLinear)."""
        value = self.const(node, index, what, required)
        if value is not None and np.asarray(value).dtype.kind in "biuc":
            raise DarbgenError(_integer_weights_message(self.where, node, node.input[index],
                                                        str(np.asarray(value).dtype)))
        return value

    def used_outputs(self, node):
        return [o for o in node.output if o and (o in self.consumers or o in self.outputs)]

    def advance(self, node, tensor, shape, batch):
        """The chain moves on to ``tensor`` (ONNX shape with None for the batch at ``batch``)."""
        extra = [o for o in self.used_outputs(node) if o != tensor]
        if extra:
            self.fail(node, f"its output {extra[0]!r} is used too; darbgen imports a single chain of layers (no "
                            f"branches or residual connections)")
        self.current, self.shape, self.batch = tensor, list(shape), batch
        self.seen[tensor] = (list(shape), batch)

    def add(self, layer):
        self.layers.append(layer)
        self.darb_shape()      # checks the layer fits

    def need_flat(self, node):
        """Dense layers read vectors: a Flatten when darbgen's tensor is not one yet."""
        if len(self.darb_shape()) != 1:
            self.add(Flatten(self.unique(f"{node.name or node.op_type.lower()}.flatten")))

    def activation(self, node, kind):
        name = self.layer_name(node)
        prev = self.layers[-1] if self.layers else None
        before = self.layers[-2] if len(self.layers) > 1 else None
        is_max = (isinstance(prev, Pool2D) and prev.kind == "max") or (isinstance(prev, Pool1D)
                                                                      and prev.as_2d.kind == "max")
        if (kind != "softmax" and is_max and isinstance(before, _WEIGHT_LAYERS)
                and before.activation == "none"):
            # a monotone activation commutes with max pooling: run it before the pool, fused into the layer
            self.layers.insert(len(self.layers) - 1, Activation(name, kind))
        else:
            self.add(Activation(name, kind))
        self.advance(node, node.output[0], self.shape, self.batch)

    # ------------------------------------------------------------------ the walk

    def run(self):
        onnx = self.onnx
        for init in self.graph.initializer:
            try:
                self.consts[init.name] = onnx.numpy_helper.to_array(init)
            except Exception as exc:
                raise DarbgenError(f"{self.where}: is not a valid ONNX model: initializer {init.name!r} cannot be "
                                   f"read ({exc.__class__.__name__}: {exc})") from None
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise DarbgenError(f"{self.where}: darbgen needs a graph with exactly one input, this one has "
                               f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
        if len(self.outputs) != 1:
            raise DarbgenError(f"{self.where}: darbgen needs a graph with exactly one output, this one has "
                               f"{len(self.outputs)} ({', '.join(self.outputs)})")
        self.read_input(inputs[0])
        for node in self.graph.node:
            self.visit(node)
        if self.current != self.outputs[0]:
            raise DarbgenError(f"{self.where}: the graph's output {self.outputs[0]!r} is not the end of the chain of "
                               f"layers from the input (which ends at {self.current!r})")
        if not self.layers:
            raise DarbgenError(f"{self.where}: the graph computes nothing darbgen can generate code for")
        model = Model(self.name, self.input_shape, self.layers)
        model.ops()            # surfaces what the code generator cannot run (e.g. an activation after a pool)
        return model

    def read_input(self, value):
        t = value.type.tensor_type
        if not value.type.HasField("tensor_type") or t.elem_type not in _FLOATS:
            raise DarbgenError(f"{self.where}: input {value.name!r} must be a float tensor")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if not t.HasField("shape") or not 2 <= len(dims) <= 4:
            raise DarbgenError(f"{self.where}: input {value.name!r} must have a batch dimension and 1 to 3 more "
                               f"((N, F), (N, T, F), (N, C, L) or (N, C, H, W)); it has shape {dims}")
        batch = 0
        users = self.consumers.get(value.name, [])
        if (len(dims) == 3 and len(users) == 1 and users[0].op_type in ("LSTM", "GRU")
                and not any(a.name == "layout" and a.i == 1 for a in users[0].attribute)):
            batch = 1              # a sequence-first (T, N, F) input straight into the recurrent layer
        sample = [d for i, d in enumerate(dims) if i != batch]
        if any(d is None or d < 1 for d in sample):
            raise DarbgenError(f"{self.where}: input {value.name!r} has shape {dims}: every dimension but the batch "
                               f"(axis {batch}) must be a fixed size")
        self.input_shape = tuple(sample)
        self.current, self.batch, self.batch_size = value.name, batch, dims[batch] or None
        self.shape = [None if i == batch else d for i, d in enumerate(dims)]
        self.seen[value.name] = (list(self.shape), batch)
        if len(users) > 1:
            raise DarbgenError(f"{self.where}: input {value.name!r} feeds {len(users)} nodes; darbgen imports a "
                               f"single chain of layers (no branches or residual connections)")

    def fold(self, node):
        """Evaluate a node whose inputs are all constants."""
        from onnx.reference import ReferenceEvaluator

        try:
            feeds = {n: self.consts[n] for n in node.input if n}
            values = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as exc:
            self.fail(node, f"cannot be evaluated on its constant inputs ({exc.__class__.__name__}: {exc})")
        for out, v in zip(node.output, values):
            if out:
                self.consts[out] = np.asarray(v)

    def visit(self, node):
        if node.domain not in ("", "ai.onnx"):
            raise DarbgenError(f"{self.where}: node {_label(node)!r} has op type {node.domain}.{node.op_type}, which "
                               f"darbgen does not support; supported ops: {', '.join(SUPPORTED_OPS)}")
        if node.op_type == "Shape" and node.input and node.input[0] not in self.consts:
            if node.input[0] not in self.seen:
                self.fail(node, f"reads the shape of {node.input[0]!r}, which is not on the chain of layers")
            shape = self.seen[node.input[0]][0]
            a = _attrs(self.onnx, node)
            dims = [(self.batch_size or _BATCH) if d is None else d for d in shape]
            self.consts[node.output[0]] = np.array(dims[a.get("start", 0):a.get("end", None)], np.int64)
            return
        dynamic = [t for t in node.input if t and t not in self.consts]
        if not dynamic:
            self.fold(node)
            return
        if node.op_type not in SUPPORTED_OPS:
            raise DarbgenError(f"{self.where}: node {_label(node)!r} has op type {node.op_type}, which darbgen does "
                               f"not support; supported ops: {', '.join(SUPPORTED_OPS)}")
        if len(dynamic) != 1 or dynamic[0] != self.current:
            other = next(t for t in dynamic if t != self.current) if set(dynamic) != {self.current} else dynamic[0]
            self.fail(node, f"reads {other!r}, which is not (only) the output of the layer before; darbgen imports "
                            f"sequential networks (one chain from input to output, no branches or residual "
                            f"connections)")
        if len(self.consumers.get(self.current, [])) > 1 or self.current in self.outputs:
            self.fail(node, f"tensor {self.current!r} feeds several nodes; darbgen imports a single chain of layers "
                            f"(no branches or residual connections)")
        getattr(self, "op_" + node.op_type.lower())(node, _attrs(self.onnx, node))

    # ------------------------------------------------------------------ dense

    def vector_input(self, node):
        if len(self.shape) != 2 or self.batch != 0:
            self.fail(node, f"needs a (batch, features) input, got shape "
                            f"{['N' if d is None else d for d in self.shape]} (flatten before it)")
        self.need_flat(node)
        return self.shape[1]

    def op_gemm(self, node, a):
        if node.input[0] != self.current:
            self.fail(node, "the input must be A (the first operand), with the weights in B")
        if a.get("transA", 0):
            self.fail(node, "transA = 1 (a transposed input) is not supported")
        b = np.asarray(self.weights(node, 1, "B (weights)"), np.float64)
        c = self.weights(node, 2, "C (bias)", required=False)
        if b.ndim != 2:
            self.fail(node, f"B must be a matrix, got shape {b.shape}")
        w = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
        inputs = self.vector_input(node)
        if w.shape[1] != inputs:
            self.fail(node, f"weights for {w.shape[1]} inputs, but the input has {inputs}")
        bias = None
        if c is not None:
            try:
                bias = float(a.get("beta", 1.0)) * np.broadcast_to(np.asarray(c, np.float64),
                                                                   (1, w.shape[0])).reshape(-1)
            except ValueError:
                self.fail(node, f"C of shape {np.shape(c)} is not a bias of {w.shape[0]} outputs (shape (out,) or "
                                f"(1, out))")
        self.add(Dense(self.layer_name(node), w, bias))
        self.advance(node, node.output[0], [None, w.shape[0]], 0)

    def op_matmul(self, node, a):
        if node.input[0] != self.current:
            self.fail(node, "the input must be the first operand, with the weights (in, out) second")
        b = np.asarray(self.weights(node, 1, "weights"), np.float64)
        if b.ndim != 2:
            self.fail(node, f"the weights must be an (in, out) matrix, got shape {b.shape}")
        inputs = self.vector_input(node)
        if b.shape[0] != inputs:
            self.fail(node, f"weights for {b.shape[0]} inputs, but the input has {inputs}")
        self.add(Dense(self.layer_name(node), b.T))
        self.advance(node, node.output[0], [None, b.shape[1]], 0)

    def op_add(self, node, a):
        other = next(i for i, t in enumerate(node.input) if t != self.current)
        c = np.asarray(self.weights(node, other, "addend"), np.float64)
        prev = self.layers[-1] if self.layers else None
        if not isinstance(prev, _WEIGHT_LAYERS) or prev.activation != "none":
            self.fail(node, "adding a constant is supported only as the bias straight after a MatMul, Gemm or Conv")
        full_shape = tuple(1 if d is None else d for d in self.shape)
        try:
            full = np.broadcast_to(c, full_shape)
        except ValueError:
            self.fail(node, f"the constant of shape {c.shape} does not broadcast to the tensor {full_shape}")
        if np.broadcast_shapes(c.shape, full_shape) != full_shape:
            self.fail(node, f"the constant of shape {c.shape} would change the tensor's shape {full_shape}")
        per = np.moveaxis(full, self.batch, 0)[0].reshape(prev.weight.shape[0], -1)
        if np.ptp(per, axis=1).max() > 0:
            self.fail(node, "the constant differs within a channel, so it is not a bias")
        base = np.zeros(per.shape[0]) if prev.bias is None else np.asarray(prev.bias, np.float64)
        self.layers[-1] = dataclasses.replace(prev, bias=base + per[:, 0])
        self.advance(node, node.output[0], self.shape, self.batch)

    # ------------------------------------------------------------------ convolutions and pooling

    def spatial_input(self, node, rank):
        if len(self.shape) != rank + 2 or self.batch != 0:
            self.fail(node, f"needs a (batch, channels, {'length' if rank == 1 else 'height, width'}) input, got "
                            f"shape {['N' if d is None else d for d in self.shape]}")
        sample = self.sample()
        if tuple(self.darb_shape()) != sample:
            self.fail(node, f"its input is {sample} in ONNX but {self.darb_shape()} in darbgen's graph (a reshape "
                            f"before it that darbgen cannot follow)")
        return sample

    def pads(self, node, a, spatial, kernel, strides, dilations):
        """[(begin, end)] per spatial axis from pads / auto_pad."""
        auto = a.get("auto_pad", "NOTSET")
        rank = len(spatial)
        if auto in ("NOTSET", ""):
            p = list(a.get("pads", [0] * (2 * rank)))
            if len(p) != 2 * rank:
                self.fail(node, f"pads {p} must have {2 * rank} values")
            return [(int(p[i]), int(p[i + rank])) for i in range(rank)]
        if auto == "VALID":
            return [(0, 0)] * rank
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            self.fail(node, f"auto_pad {auto!r} is not supported")
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out

    def op_conv(self, node, a):
        w = np.asarray(self.weights(node, 1, "W (weights)"), np.float64)
        bias = self.weights(node, 2, "B (bias)", required=False)
        rank = w.ndim - 2
        if rank not in (1, 2):
            self.fail(node, f"a {rank}-D convolution is not supported (1-D and 2-D are)")
        sample = self.spatial_input(node, rank)
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != w.shape[2:]:
            self.fail(node, f"kernel_shape {a['kernel_shape']} does not match the weights {w.shape}")
        strides = tuple(a.get("strides", [1] * rank))
        dilations = tuple(a.get("dilations", [1] * rank))
        pads = self.pads(node, a, sample[1:], w.shape[2:], strides, dilations)
        group, channels = int(a.get("group", 1)), sample[0]
        name = self.layer_name(node)
        if group == 1:
            if w.shape[1] != channels:
                self.fail(node, f"weights for {w.shape[1]} input channels, but the input has {channels}")
            if rank == 1:
                layer = Conv1D(name, w, bias, strides[0], pads[0], dilations[0])
            else:
                layer = Conv2D(name, w, bias, strides, pads[0] + pads[1], dilations)
        elif group == channels and w.shape[1] == 1 and rank == 2:
            layer = DepthwiseConv2D(name, w, bias, strides, pads[0] + pads[1], dilations)
        elif group == channels and w.shape[1] == 1:
            self.fail(node, "a 1-D depthwise convolution is not supported (2-D ones are)")
        else:
            self.fail(node, f"group = {group} is not supported: darbgen runs group = 1 (an ordinary convolution) "
                            f"and group = channels ({channels}, a depthwise convolution)")
        self.add(layer)
        self.advance(node, node.output[0], [None] + list(self.darb_shape()), 0)

    def pool(self, node, a, kind):
        kernel = tuple(a.get("kernel_shape", ()))
        rank = len(kernel)
        if rank not in (1, 2):
            self.fail(node, f"{rank}-D pooling is not supported (1-D and 2-D are)")
        sample = self.spatial_input(node, rank)
        strides = tuple(a.get("strides", [1] * rank))
        dilations = tuple(a.get("dilations", [1] * rank))
        if any(d != 1 for d in dilations):
            self.fail(node, f"dilations {list(dilations)} are not supported in pooling")
        pads = self.pads(node, a, sample[1:], kernel, strides, dilations)
        if kind == "avg" and a.get("count_include_pad", 0) and any(p != (0, 0) for p in pads):
            self.fail(node, "count_include_pad = 1 with padding is not supported: darbgen averages over the real "
                            "(unpadded) positions of each window; export with count_include_pad = 0 or no padding")
        if a.get("ceil_mode", 0):
            for size, k, s, (p0, p1) in zip(sample[1:], kernel, strides, pads):
                if (size + p0 + p1 - k) % s:
                    self.fail(node, "ceil_mode = 1 adds a partial window here, which darbgen does not run; export "
                                    "with ceil_mode = 0 or sizes that divide evenly")
        name = self.layer_name(node)
        if rank == 1:
            layer = Pool1D(name, kind, kernel[0], strides[0], pads[0])
        else:
            layer = Pool2D(name, kind, kernel, strides, pads[0] + pads[1])
        self.add(layer)
        self.advance(node, node.output[0], [None] + list(self.darb_shape()), 0)

    def op_maxpool(self, node, a):
        if a.get("storage_order", 0) not in (0, 1):
            self.fail(node, "unknown storage_order")
        self.pool(node, a, "max")

    def op_averagepool(self, node, a):
        self.pool(node, a, "avg")

    def op_globalaveragepool(self, node, a):
        if self.batch != 0 or len(self.shape) not in (3, 4):
            self.fail(node, "needs a (batch, channels, length) or (batch, channels, height, width) input")
        self.spatial_input(node, len(self.shape) - 2)
        self.add(GlobalAveragePool(self.layer_name(node)))
        self.advance(node, node.output[0], self.shape[:2] + [1] * (len(self.shape) - 2), 0)

    def op_batchnormalization(self, node, a):
        if a.get("training_mode", 0):
            self.fail(node, "training_mode = 1 is not supported (export the model in eval mode)")
        params = [np.asarray(self.weights(node, i, w), np.float64) for i, w in
                  enumerate(("X", "scale", "B", "input_mean", "input_var")) if i]
        prev = self.layers[-1] if self.layers else None
        if not isinstance(prev, _WEIGHT_LAYERS) or self.batch != 0:
            self.fail(node, "batch normalisation must directly follow a Gemm / MatMul or Conv (before any "
                            "activation), to be folded into it")
        self.layers[-1] = fold_batchnorm(prev, *params, eps=float(a.get("epsilon", 1e-5)),
                                         name=node.name or "BatchNormalization")
        self.advance(node, node.output[0], self.shape, self.batch)

    # ------------------------------------------------------------------ activations

    def op_relu(self, node, a):
        self.activation(node, "relu")

    def op_sigmoid(self, node, a):
        self.activation(node, "sigmoid")

    def op_tanh(self, node, a):
        self.activation(node, "tanh")

    def op_clip(self, node, a):
        if self.opset >= 11:
            lo, hi = self.const(node, 1, "min", False), self.const(node, 2, "max", False)
        else:
            lo, hi = a.get("min"), a.get("max")
        lo = None if lo is None or float(lo) <= -3.4e38 else float(lo)
        hi = None if hi is None or float(hi) >= 3.4e38 else float(hi)
        if lo == 0 and hi == 6:
            self.activation(node, "relu6")
        elif lo == 0 and hi is None:
            self.activation(node, "relu")
        else:
            self.fail(node, f"Clip to [{lo}, {hi}] is not supported: only [0, 6] (relu6) and [0, none] (relu)")

    def op_softmax(self, node, a):
        rank = len(self.shape)
        axis = int(a.get("axis", -1 if self.opset >= 13 else 1)) % rank
        features = [i for i, d in enumerate(self.shape) if i != self.batch and d != 1]
        if self.opset >= 13:
            ok = set(features) <= {axis}
        else:                                # softmax over the input flattened from axis on
            ok = self.batch < axis and all(i >= axis for i in features)
        if not ok or len(self.darb_shape()) != 1:
            self.fail(node, f"softmax over axis {a.get('axis', 'default')} of a tensor of shape "
                            f"{['N' if d is None else d for d in self.shape]} is not supported: darbgen's softmax "
                            f"runs over a vector (the last axis of a (batch, features) tensor)")
        self.activation(node, "softmax")

    # ------------------------------------------------------------------ shapes (no computation)

    def op_identity(self, node, a):
        self.advance(node, node.output[0], self.shape, self.batch)

    def op_dropout(self, node, a):
        self.advance(node, node.output[0], self.shape, self.batch)

    def op_quantizelinear(self, node, a):
        users = self.consumers.get(node.output[0], [])
        if not users or any(u.op_type != "DequantizeLinear" for u in users):
            self.fail(node, "a quantized activation must be dequantized straight away (a QuantizeLinear / "
                            "DequantizeLinear pair); darbgen reads float models and quantizes them itself")
        self.advance(node, node.output[0], self.shape, self.batch)

    def op_dequantizelinear(self, node, a):
        self.advance(node, node.output[0], self.shape, self.batch)

    def op_flatten(self, node, a):
        axis = int(a.get("axis", 1)) % max(len(self.shape), 1)
        if self.batch != 0 or axis != 1:
            self.fail(node, f"only Flatten(axis = 1) of a batch-first tensor is supported (got axis {axis} on "
                            f"shape {['N' if d is None else d for d in self.shape]})")
        self.flatten_to(node, [None, _prod(self.sample())], 0)

    def flatten_to(self, node, shape, batch):
        sample = [d for i, d in enumerate(shape) if i != batch]
        if len(sample) == 1 and len(self.darb_shape()) != 1:
            self.add(Flatten(self.layer_name(node)))
        elif _squeezed(sample) != _squeezed(self.darb_shape()):
            self.fail(node, f"reshaping a sample of {tuple(self.darb_shape())} into {tuple(sample)} is not "
                            f"supported; darbgen flattens to (batch, -1)")
        self.advance(node, node.output[0], shape, batch)

    def op_reshape(self, node, a):
        target = [int(v) for v in np.asarray(self.const(node, 1, "shape")).reshape(-1)]
        size, before = _prod(self.sample()), _prod(self.shape[:self.batch])
        dims, batch = [], None
        for i, v in enumerate(target):
            if v == 0 and not a.get("allowzero", 0):
                if i >= len(self.shape):
                    self.fail(node, f"shape {target} copies axis {i}, which the input does not have")
                v = self.shape[i]
            elif v == _BATCH:              # the batch size, read by a Shape node
                v = None
            if v is None:
                if batch is not None:
                    self.fail(node, f"shape {target} uses the batch size twice")
                batch = i
            dims.append(v)
        if dims.count(-1) > 1:
            self.fail(node, f"shape {target} has more than one -1")
        known = _prod([d for d in dims if d is not None and d > 0])
        if batch is None and -1 in dims and known == size:
            batch = dims.index(-1)         # (-1, features): the batch is the -1
            dims[batch] = None
        elif batch is None and self.batch_size is not None:
            # a fixed batch size written out, as exporters do for a fixed input shape
            total = self.batch_size * size
            if -1 in dims and total % known == 0:
                dims[dims.index(-1)] = total // known
            batch = next((i for i, d in enumerate(dims) if d == self.batch_size and _prod(dims[:i]) == before
                          and _prod(dims[:i] + dims[i + 1:]) == size), None)
            if batch is not None:
                dims[batch] = None
        elif batch is not None and -1 in dims:
            if size % known:
                self.fail(node, f"shape {target} does not fit the input")
            dims[dims.index(-1)] = size // known
        if batch is None:
            self.fail(node, f"reshape to {target}: darbgen needs the batch axis kept (0 or -1 in the shape, e.g. "
                            f"(batch, -1))")
        if any(d is not None and d < 1 for d in dims) or _prod([d for d in dims if d is not None]) != size:
            self.fail(node, f"shape {target} does not fit the input")
        if _prod(dims[:batch]) != before:
            self.fail(node, f"reshape to {target} mixes the batch with the features")
        self.flatten_to(node, dims, batch)

    def axes(self, node, a, rank, added=False):
        """The sorted non-negative axes of a Squeeze / Unsqueeze (attribute or input), or None."""
        if "axes" in a:
            axes = [int(v) for v in a["axes"]]
        elif len(node.input) > 1 and node.input[1]:
            axes = [int(v) for v in np.asarray(self.const(node, 1, "axes")).reshape(-1)]
        else:
            return None
        rank += len(axes) if added else 0
        return sorted(v % rank for v in axes)

    def op_squeeze(self, node, a):
        axes = self.axes(node, a, len(self.shape))
        if axes is None:
            axes = [i for i, d in enumerate(self.shape) if d == 1]
        if self.batch in axes or any(self.shape[i] != 1 for i in axes):
            self.fail(node, f"can only squeeze axes of size 1 other than the batch (axes {axes} of shape "
                            f"{['N' if d is None else d for d in self.shape]})")
        shape = [d for i, d in enumerate(self.shape) if i not in axes]
        self.advance(node, node.output[0], shape, self.batch - sum(i < self.batch for i in axes))

    def op_unsqueeze(self, node, a):
        axes = self.axes(node, a, len(self.shape), added=True)
        if axes is None:
            self.fail(node, "needs axes")
        shape = list(self.shape)
        for i in axes:
            shape.insert(i, 1)
        batch = next(i for i, d in enumerate(shape) if d is None)
        self.advance(node, node.output[0], shape, batch)

    def op_transpose(self, node, a):
        perm = [int(p) for p in a.get("perm", range(len(self.shape) - 1, -1, -1))]
        kept = [p for p in perm if p != self.batch and self.shape[p] != 1]
        if kept != sorted(kept):
            self.fail(node, f"perm {perm} reorders the features of each sample (darbgen keeps ONNX's channel-first "
                            f"order); only moving the batch axis or axes of size 1 is supported")
        self.advance(node, node.output[0], [self.shape[p] for p in perm], perm.index(self.batch))

    def op_gather(self, node, a):
        index = np.asarray(self.const(node, 1, "indices"))
        prev = self.layers[-1] if self.layers else None
        features = [i for i, d in enumerate(self.shape) if i != self.batch and d != 1]
        axis = int(a.get("axis", 0)) % len(self.shape)
        if (not isinstance(prev, LSTM) or not prev.return_sequences or index.ndim != 0 or len(features) != 2
                or axis != features[0] or int(index) not in (-1, self.shape[axis] - 1)):
            self.fail(node, "Gather is supported only to take the last step of an LSTM / GRU output sequence "
                            "(e.g. out[:, -1])")
        self.layers[-1] = dataclasses.replace(prev, return_sequences=False)
        self.advance(node, node.output[0], [d for i, d in enumerate(self.shape) if i != axis],
                     self.batch - (axis < self.batch))

    def op_slice(self, node, a):
        if self.opset >= 10:
            starts, ends = self.const(node, 1, "starts"), self.const(node, 2, "ends")
            axes = self.const(node, 3, "axes", required=False)
            steps = self.const(node, 4, "steps", required=False)
        else:
            starts, ends, axes, steps = a.get("starts"), a.get("ends"), a.get("axes"), None
        starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1)
        axes = np.arange(len(starts)) if axes is None else np.asarray(axes).reshape(-1)
        steps = np.ones(len(starts), np.int64) if steps is None else np.asarray(steps).reshape(-1)
        prev = self.layers[-1] if self.layers else None
        features = [i for i, d in enumerate(self.shape) if i != self.batch and d != 1]
        if (not isinstance(prev, LSTM) or not prev.return_sequences or len(starts) != 1 or len(features) != 2
                or int(axes[0]) % len(self.shape) != features[0] or int(steps[0]) != 1):
            self.fail(node, "Slice is supported only to take the last step of an LSTM / GRU output sequence "
                            "(e.g. out[:, -1:])")
        steps_t = self.shape[features[0]]
        start = int(starts[0]) + steps_t if int(starts[0]) < 0 else int(starts[0])
        if start != steps_t - 1 or int(ends[0]) < steps_t:
            self.fail(node, "Slice is supported only to take the last step of an LSTM / GRU output sequence "
                            "(e.g. out[:, -1:])")
        self.layers[-1] = dataclasses.replace(prev, return_sequences=False)
        shape = list(self.shape)
        shape[features[0]] = 1
        self.advance(node, node.output[0], shape, self.batch)

    # ------------------------------------------------------------------ recurrent layers

    def op_lstm(self, node, a):
        self.recurrent(node, a, LSTM, 4, LSTM_ORDER, ["sigmoid", "tanh", "tanh"])

    def op_gru(self, node, a):
        if not a.get("linear_before_reset", 0):
            self.fail(node, "linear_before_reset = 0 is not supported: darbgen's GRU is PyTorch's (reset gate "
                            "applied after the recurrent matrix product, linear_before_reset = 1)")
        self.recurrent(node, a, GRU, 3, GRU_ORDER, ["sigmoid", "tanh"])

    def recurrent(self, node, a, cls, gates, order, activations):
        if node.input[0] != self.current:
            self.fail(node, "its input X must be the sequence")
        if a.get("direction", "forward") != "forward":
            self.fail(node, f"direction {a['direction']!r} is not supported (forward only)")
        if [s.lower() for s in a.get("activations", activations)] != activations:
            self.fail(node, f"activations {a['activations']} are not supported (only the defaults {activations})")
        for key in ("clip", "activation_alpha", "activation_beta"):
            if key in a:
                self.fail(node, f"attribute {key} is not supported")
        if a.get("input_forget", 0):
            self.fail(node, "input_forget = 1 (coupled input and forget gates) is not supported")
        layout = int(a.get("layout", 0))
        if len(self.shape) != 3 or self.batch != (1 if layout == 0 else 0):
            want = "(steps, batch, features)" if layout == 0 else "(batch, steps, features)"
            self.fail(node, f"with layout {layout} needs a {want} input, got shape "
                            f"{['N' if d is None else d for d in self.shape]}")
        steps, feats = self.sample()
        if tuple(self.darb_shape()) != (steps, feats):
            self.fail(node, f"its input is ({steps}, {feats}) in ONNX but {self.darb_shape()} in darbgen's graph")
        w = np.asarray(self.weights(node, 1, "W"), np.float64)
        r = np.asarray(self.weights(node, 2, "R"), np.float64)
        hidden = int(a.get("hidden_size", r.shape[-1]))
        if w.shape != (1, gates * hidden, feats) or r.shape != (1, gates * hidden, hidden):
            self.fail(node, f"needs one direction with W (1, {gates * hidden}, {feats}) and R (1, {gates * hidden}, "
                            f"{hidden}), got {w.shape} and {r.shape}")
        b = self.weights(node, 3, "B", required=False)
        b = np.zeros((1, 2 * gates * hidden)) if b is None else np.asarray(b, np.float64)
        if b.shape != (1, 2 * gates * hidden):
            self.fail(node, f"B must be (1, {2 * gates * hidden}), got {b.shape}")
        lens = self.const(node, 4, "sequence_lens", required=False)
        if lens is not None and np.any(np.asarray(lens) != steps):
            self.fail(node, "sequence_lens shorter than the sequence are not supported")
        for index, what in ((5, "initial_h"), (6, "initial_c"), (7, "P (peepholes)")):
            value = self.const(node, index, what, required=False) if index < 6 or cls is LSTM else None
            if value is not None and np.any(np.asarray(value) != 0):
                self.fail(node, f"a non-zero {what} is not supported")

        def reorder(m):
            return np.concatenate([m[k * hidden:(k + 1) * hidden] for k in order])

        used = self.used_outputs(node)
        y, y_h = (node.output[i] if len(node.output) > i else "" for i in (0, 1))
        if len(node.output) > 2 and node.output[2] in used:
            self.fail(node, "its cell state output Y_c is used; darbgen outputs the hidden state only")
        if len(used) != 1:
            self.fail(node, "exactly one of its outputs Y (the sequence) and Y_h (the last state) must be used")
        sequences = used[0] == y
        layer = cls(self.layer_name(node, (".w_ih", ".w_hh")), reorder(w[0]), reorder(r[0]),
                    reorder(b[0, :gates * hidden]), reorder(b[0, gates * hidden:]), None, None, sequences)
        self.add(layer)
        if sequences:
            shape, batch = ([steps, 1, None, hidden], 2) if layout == 0 else ([None, steps, 1, hidden], 0)
        else:
            shape, batch = ([1, None, hidden], 1) if layout == 0 else ([None, 1, hidden], 0)
        self.advance(node, used[0], shape, batch)


def model_from_onnx(source, name=None):
    """A :class:`~darbgen.graph.Model` computing what the ONNX model ``source``
    (a path, the file's bytes, or an ``onnx.ModelProto``) computes, for one
    sample without the batch axis. ``name``: the model's name (default: the
    file name, else the graph's name). Needs the ``onnx`` package."""
    onnx = _import_onnx()
    proto, where = _read(onnx, source)
    if name is None:
        if isinstance(source, (str, os.PathLike)):
            name = os.path.splitext(os.path.basename(os.fspath(source)))[0]
        else:
            name = proto.graph.name or "model"
    try:
        return _Importer(onnx, proto, where, name).run()
    except DarbgenError:
        raise
    except Exception as exc:   # an inconsistent graph (wrong attribute types, shapes ...) the checker let through
        raise DarbgenError(f"{where}: cannot be imported, the graph is inconsistent ({exc.__class__.__name__}: "
                           f"{exc})") from None
