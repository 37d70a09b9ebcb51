"""A TensorFlow Lite flatbuffer into darbgen's op graph (docs/tflite.md).

Reads a ``.tflite`` file with the ``tflite`` package (a pure-Python flatbuffer
parser; TensorFlow and LiteRT are never imported) and translates its single
subgraph, operator by operator, into a :class:`darbgen.ir.Graph` in the
file's NHWC layout. Shapes lose the batch dimension, padding is resolved to
explicit (top, bottom, left, right) with TFLite's own rule, axes count from
the first non-batch dimension. An int8 model keeps its int8 tensors and their
quantization exactly as in the file; a float model's int8-stored weights
(TFLite's dynamic-range optimization) are dequantized the way TFLite does.
Anything darbgen cannot run is refused with a message naming the operator
(its index and builtin name) and the tensor.

``tflite`` is an optional dependency (``pip install darbgen[tflite]``),
imported only when a model is read.
"""
import os

import numpy as np

from ..codegen.names import short_name
from ..errors import DarbgenError
from ..ir import Graph, Node, Quant, Tensor

#: TFLite builtin operators ``graph_from_tflite`` translates (RELU, RELU6 and
#: RELU_N1_TO_1 only when they can be fused into the op before them).
SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                 "MEAN", "RESHAPE", "SQUEEZE", "SOFTMAX", "PAD", "CONCATENATION", "QUANTIZE", "DEQUANTIZE",
                 "RELU", "RELU6", "RELU_N1_TO_1")

#: the fewest inputs each supported operator has
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "AVERAGE_POOL_2D": 1,
               "MAX_POOL_2D": 1, "MEAN": 2, "RESHAPE": 1, "SQUEEZE": 1, "SOFTMAX": 1, "PAD": 2, "CONCATENATION": 1,
               "QUANTIZE": 1, "DEQUANTIZE": 1, "RELU": 1, "RELU6": 1, "RELU_N1_TO_1": 1}

#: the largest file read (TFLite Micro targets hold far less)
MAX_FILE_BYTES = 256 * 2 ** 20

_INSTALL = "pip install tflite (or pip install darbgen[tflite])"

#: TFLite TensorType -> (name, NumPy dtype or None)
_TYPES = {0: ("float32", np.float32), 1: ("float16", np.float16), 2: ("int32", np.int32), 3: ("uint8", np.uint8),
          4: ("int64", np.int64), 5: ("string", None), 6: ("bool", np.bool_), 7: ("int16", np.int16),
          8: ("complex64", np.complex64), 9: ("int8", np.int8), 10: ("float64", np.float64),
          11: ("complex128", np.complex128), 12: ("uint64", np.uint64), 13: ("resource", None),
          14: ("variant", None), 15: ("uint32", np.uint32), 16: ("uint16", np.uint16), 17: ("int4", None),
          18: ("bfloat16", None)}

#: ActivationFunctionType -> darbgen's fused activation
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_ACTIVATION_NAMES = {4: "TANH", 5: "SIGN_BIT"}
#: standalone activation ops that are fused into the op before them
_STANDALONE = {"RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu_n1_to_1"}
#: node kinds that carry a fused activation
_FUSABLE = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d", "concat")

#: for readable node names: the Keras layer-name prefixes that belong to each node kind
_KERAS_PREFIXES = {
    "conv2d": ("conv2d", "conv", "pointwise"),
    "depthwise_conv2d": ("depthwise_conv2d", "depthwise", "dw_conv"),
    "fully_connected": ("dense", "fc", "linear"),
    "add": ("add",),
    "avg_pool2d": ("average_pooling2d", "avg_pool", "avgpool", "average_pool"),
    "max_pool2d": ("max_pooling2d", "max_pool", "maxpool"),
    "mean": ("global_average_pooling2d", "global_average_pooling1d", "mean", "global_avg"),
    "reshape": ("flatten", "reshape", "squeeze"),
    "softmax": ("softmax",),
    "pad": ("zero_padding2d", "pad"),
    "concat": ("concatenate", "concat"),
    "quantize": ("quantize",),
    "dequantize": ("dequantize",),
}



def _import_tflite():
    try:
        import tflite
    except ImportError:
        raise DarbgenError(f"reading .tflite models needs the tflite package: {_INSTALL}") from None
    return tflite


# ---------------------------------------------------------------------------------------------------- reading
def _read_bytes(path):
    where = os.fspath(path)
    if not os.path.exists(where):
        raise DarbgenError(f"{where}: no such file")
    if not os.path.isfile(where):
        raise DarbgenError(f"{where}: is not a file")
    size = os.path.getsize(where)
    if size > MAX_FILE_BYTES:
        raise DarbgenError(f"{where}: is {size / 2 ** 20:.0f} MB; darbgen reads .tflite files up to "
                           f"{MAX_FILE_BYTES // 2 ** 20} MB (models for microcontrollers are far smaller)")
    with open(where, "rb") as f:
        buf = f.read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        got = buf[4:8] if len(buf) >= 8 else b""
        raise DarbgenError(f"{where}: is not a TensorFlow Lite flatbuffer (its file identifier is {got!r}, a .tflite "
                           f"file has b'TFL3' at byte 4)")
    return where, buf


class _RawTensor:
    __slots__ = ("index", "name", "shape", "signature", "type", "buffer", "quant", "sparse", "data")


class _RawOp:
    __slots__ = ("index", "opname", "custom", "inputs", "outputs", "options", "options_type")


def _vector_bytes(buf, tab, field_offset):
    """The bytes of a [ubyte] field of a flatbuffer table, checked to lie inside the file."""
    o = tab.Offset(field_offset)
    if o == 0:
        return b""
    start = tab.Vector(o)
    n = tab.VectorLen(o)
    if start < 0 or n < 0 or start + n > len(buf):
        raise ValueError(f"a buffer of {n} bytes at offset {start} runs past the end of the file ({len(buf)} bytes)")
    return bytes(buf[start:start + n])


def _count(n, buf):
    """A vector length read from the file, checked against the file's size (a corrupt length could be huge)."""
    if not 0 <= n <= len(buf) // 4:
        raise ValueError(f"a vector claims {n} elements in a file of {len(buf)} bytes")
    return n


def _options(tflite, op):
    """(options type name, {field: value}) of a builtin operator."""
    kind = op.BuiltinOptionsType()
    names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int) and not k.startswith("_")}
    name = names.get(kind, f"#{kind}")
    table = op.BuiltinOptions()
    if kind == 0 or table is None:
        return "NONE", {}
    fields = {
        "Conv2DOptions": ("Padding", "StrideW", "StrideH", "FusedActivationFunction", "DilationWFactor",
                          "DilationHFactor"),
        "DepthwiseConv2DOptions": ("Padding", "StrideW", "StrideH", "DepthMultiplier", "FusedActivationFunction",
                                   "DilationWFactor", "DilationHFactor"),
        "FullyConnectedOptions": ("FusedActivationFunction", "WeightsFormat", "KeepNumDims"),
        "AddOptions": ("FusedActivationFunction",),
        "Pool2DOptions": ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight", "FusedActivationFunction"),
        "ReducerOptions": ("KeepDims",),
        "SoftmaxOptions": ("Beta",),
        "ConcatenationOptions": ("Axis", "FusedActivationFunction"),
    }
    vectors = {"ReshapeOptions": ("NewShape",), "SqueezeOptions": ("SqueezeDims",)}
    cls = getattr(tflite, name, None) if isinstance(name, str) else None
    if cls is None or (name not in fields and name not in vectors):
        return name, {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    out = {f: getattr(obj, f)() for f in fields.get(name, ())}
    for f in vectors.get(name, ()):
        out[f] = [int(getattr(obj, f)(j)) for j in range(_count(getattr(obj, f + "Length")(), table.Bytes))]
    return name, out


def _parse(tflite, buf):
    """Everything graph_from_tflite needs, read into plain Python objects (any flatbuffer error raises)."""
    from tflite.utils import BUILTIN_OPCODE2NAME

    model = tflite.Model.GetRootAsModel(buf, 0)
    n_sub = _count(model.SubgraphsLength(), buf)
    codes = []
    for i in range(_count(model.OperatorCodesLength(), buf)):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        custom = oc.CustomCode()
        codes.append((code, custom.decode("utf-8", "replace") if custom else None))
    buffers = []
    for i in range(_count(model.BuffersLength(), buf)):
        b = model.Buffers(i)
        data = _vector_bytes(buf, b._tab, 4)
        offset, size = int(b.Offset()), int(b.Size())
        if not data and offset > 1:      # data stored after the flatbuffer (large models)
            if offset + size > len(buf):
                raise ValueError(f"buffer {i} ({size} bytes at offset {offset}) runs past the end of the file "
                                 f"({len(buf)} bytes)")
            data = bytes(buf[offset:offset + size])
        buffers.append(data)
    if n_sub < 1:
        return dict(n_subgraphs=n_sub)
    sg = model.Subgraphs(0)
    tensors = []
    for i in range(_count(sg.TensorsLength(), buf)):
        t = sg.Tensors(i)
        r = _RawTensor()
        r.index = i
        r.name = (t.Name() or b"").decode("utf-8", "replace")
        r.shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else ()))
        r.signature = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else None
        r.type = int(t.Type())
        r.buffer = int(t.Buffer())
        if not 0 <= r.buffer < max(len(buffers), 1):
            raise ValueError(f"tensor {i} refers to buffer {r.buffer}, the file has {len(buffers)}")
        r.data = buffers[r.buffer] if buffers else b""
        q = t.Quantization()
        r.quant = None
        if q is not None and q.ScaleLength() > 0:
            zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
            r.quant = (np.array(q.ScaleAsNumpy(), np.float32), np.array(zp, np.int64), int(q.QuantizedDimension()))
        r.sparse = t.Sparsity() is not None
        tensors.append(r)
    ops = []
    for k in range(_count(sg.OperatorsLength(), buf)):
        op = sg.Operators(k)
        r = _RawOp()
        r.index = k
        idx = int(op.OpcodeIndex())
        if not 0 <= idx < len(codes):
            raise ValueError(f"operator {k} refers to operator code {idx}, the file has {len(codes)}")
        code, custom = codes[idx]
        r.custom = custom
        r.opname = "CUSTOM" if code == 32 else BUILTIN_OPCODE2NAME.get(code, f"builtin operator #{code}")
        r.inputs = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        r.outputs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for t in r.inputs + r.outputs:
            if not -1 <= t < len(tensors):
                raise ValueError(f"operator {k} refers to tensor {t}, the subgraph has {len(tensors)}")
        r.options_type, r.options = _options(tflite, op) if r.opname in SUPPORTED_OPS else ("NONE", {})
        ops.append(r)
    inputs = [int(i) for i in sg.InputsAsNumpy()] if sg.InputsLength() else []
    outputs = [int(i) for i in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    for t in inputs + outputs:
        if not 0 <= t < len(tensors):
            raise ValueError(f"the subgraph's input or output refers to tensor {t}, it has {len(tensors)}")
    return dict(n_subgraphs=n_sub, tensors=tensors, ops=ops, inputs=inputs, outputs=outputs)


# ------------------------------------------------------------------------------------------------ translation
def _tname(t):
    name = t.name if len(t.name) <= 80 else t.name[:77] + "..."
    return f"tensor {t.index} {name!r}"


def _typename(t):
    return _TYPES.get(t.type, (f"type #{t.type}", None))[0]


def _pad_same(in_size, k, stride, dilation, out_size):
    """TFLite's (before, after) padding (tensorflow/lite/kernels/padding.h): total = max((out - 1) * stride +
    (k - 1) * dilation + 1 - in, 0); before = total // 2, after gets the odd one."""
    total = max((out_size - 1) * stride + (k - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def _out_size(padding, in_size, k, stride, dilation):
    """TFLite's output size (ComputeOutSize): SAME ceil(in / stride), VALID ceil((in - effective k + 1) / stride)."""
    eff = (k - 1) * dilation + 1
    if padding == 0:
        return (in_size + stride - 1) // stride
    return (in_size + stride - eff) // stride


def _dequantize(q, scale, zero_point, axis):
    """float32 values of int8 ``q`` as TFLite's Dequantize computes them: the exact product scale * (q - zp)
    (float32 scale, integer q - zp, at most 33 significant bits) rounded once to float32. Per channel along
    ``axis`` when there are several scales."""
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = -1
    s = np.asarray(scale, np.float32).reshape(shape)
    zp = np.asarray(zero_point, np.int32)
    z = (zp if zp.size == scale.size else np.full(scale.size, zp.reshape(-1)[0], np.int32)).reshape(shape)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(np.float32)


class _Translator:
    def __init__(self, where, raw):
        self.where = where
        self.raw = raw
        self.tensors = raw["tensors"]
        self.ops = raw["ops"]
        self.nodes = []
        self.ir = {}                 # IR tensors by (unique) name
        self.names = {}              # raw tensor index -> IR tensor name
        self.folded = {}             # raw tensor index -> constant IR Tensor (DEQUANTIZE of a constant)
        self.producer = {}           # IR tensor name -> node
        self.notes = []
        self.used_node_names = set()
        self.hybrid = []             # int8 weights read directly by float ops (TFLite's hybrid kernels)
        self.dequantized = []        # constants dequantized by a DEQUANTIZE op
        self.consumers = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op.index)
        counts = {}
        for t in self.tensors:
            counts[t.name] = counts.get(t.name, 0) + 1
        self.unique_tensor_names = {t.index: (t.name if t.name and counts[t.name] == 1 else f"{t.name}#{t.index}")
                                    for t in self.tensors}

    # ------------------------------------------------------------ errors and helpers
    def fail(self, op, msg):
        """Raise a DarbgenError naming the file and the operator (``op`` None: the model input)."""
        who = "the model input" if op is None else f"operator {op.index} ({op.opname})"
        raise DarbgenError(f"{self.where}: {who}: {msg}")

    def is_constant(self, i):
        return i in self.folded or bool(self.tensors[i].data)

    def quant(self, op, t, axis=None):
        if t.quant is None:
            return None
        scale, zp, dim = t.quant
        if zp.size == 1 and scale.size > 1:
            zp = np.full(scale.size, zp[0], np.int64)
        try:
            q = Quant(scale, zp, dim if axis is None else axis)
        except DarbgenError as exc:
            self.fail(op, f"{_tname(t)}: {exc}")
        return q

    def batch_shape(self, op, t):
        """The shape of an activation tensor without its batch dimension (which must be 1 or dynamic)."""
        shape = t.shape
        if len(shape) < 2:
            self.fail(op, f"{_tname(t)} has shape {list(shape)}: darbgen expects a batch dimension (1 or dynamic) "
                          f"followed by at least one more dimension")
        sig = t.signature if t.signature is not None and len(t.signature) == len(shape) else shape
        if shape[0] != 1 or sig[0] not in (1, -1):
            self.fail(op, f"{_tname(t)} has batch dimension {sig[0] if sig[0] != 1 else shape[0]}; darbgen runs one "
                          f"sample at a time, so the batch must be 1 or dynamic (-1): re-convert the model with "
                          f"batch size 1")
        if any(d < 1 for d in shape[1:]) or any(s < 1 and s != d for s, d in zip(sig[1:], shape[1:])):
            self.fail(op, f"{_tname(t)} has shape {list(sig)}: every dimension but the batch must have a fixed "
                          f"size (darbgen plans static memory)")
        return shape[1:]

    def activation(self, op, i, *, role="input"):
        """The IR name of activation tensor ``i``, which the model input or an earlier operator writes."""
        if i < 0:
            self.fail(op, f"its {role} tensor is missing")
        t = self.tensors[i]
        if self.is_constant(i):
            self.fail(op, f"{role} {_tname(t)} is a constant; darbgen takes constants only as weights, bias and "
                          f"shape / axis / padding operands, so this {op.opname} needs computed inputs")
        if i not in self.names:
            self.fail(op, f"reads {_tname(t)}, which neither the model input nor an earlier operator writes")
        return self.names[i]

    def new_activation(self, op, i):
        t = self.tensors[i]
        dtype = _typename(t)
        if dtype == "uint8":
            self.fail(op, f"{_tname(t)} is uint8 (TFLite's legacy asymmetric quantization); darbgen runs float32 "
                          f"or int8 activations: re-convert with full-integer int8 quantization")
        if dtype == "int16":
            self.fail(op, f"{_tname(t)} is int16 (16x8 quantization); darbgen's TFLite import runs float32 or int8 "
                          f"activations: re-convert with int8 quantization")
        if dtype not in ("float32", "int8"):
            self.fail(op, f"{_tname(t)} has type {dtype}; darbgen's activations are float32 or int8")
        if t.sparse:
            self.fail(op, f"{_tname(t)} is sparse; darbgen reads dense tensors only")
        shape = self.batch_shape(op, t)
        quant = None
        if dtype == "int8":
            quant = self.quant(op, t, axis=0)
            if quant is None:
                self.fail(op, f"{_tname(t)} is int8 without quantization parameters; darbgen needs each int8 "
                              f"tensor's scale and zero point")
            if not quant.per_tensor:
                self.fail(op, f"{_tname(t)} has {quant.scale.size} scales; darbgen's int8 activations are quantized "
                              f"per tensor")
        name = self.unique_tensor_names[i]
        self.ir[name] = Tensor(name, shape, dtype, quant)
        self.names[i] = name
        return name

    def output(self, op, pos=0):
        if len(op.outputs) <= pos or op.outputs[pos] < 0:
            self.fail(op, "it has no output tensor")
        i = op.outputs[pos]
        if i in self.names or self.is_constant(i):
            self.fail(op, f"its output {_tname(self.tensors[i])} is written twice or is a constant")
        return self.new_activation(op, i)

    def constant(self, op, i, what):
        """(raw tensor, NumPy array) of constant operand ``i``."""
        if i < 0 or i >= len(self.tensors):
            self.fail(op, f"its {what} is missing")
        t = self.tensors[i]
        if i in self.folded:
            return t, self.folded[i].data
        if not t.data:
            self.fail(op, f"its {what} {_tname(t)} is computed at run time; darbgen needs it to be a constant in "
                          f"the file")
        if t.sparse:
            self.fail(op, f"its {what} {_tname(t)} is stored sparse; darbgen reads dense tensors only "
                          f"(re-convert without sparsity)")
        name, np_type = _TYPES.get(t.type, (f"type #{t.type}", None))
        if np_type is None:
            self.fail(op, f"its {what} {_tname(t)} has type {name}, which darbgen cannot read")
        count = int(np.prod(t.shape, dtype=np.int64)) if t.shape else 1
        itemsize = np.dtype(np_type).itemsize
        if len(t.data) != count * itemsize:
            self.fail(op, f"its {what} {_tname(t)} holds {len(t.data)} bytes, but shape {list(t.shape)} of {name} "
                          f"needs {count * itemsize}: the file is corrupt")
        return t, np.frombuffer(t.data, dtype=np.dtype(np_type).newbyteorder("<")).astype(np_type).reshape(t.shape)

    def int_vector(self, op, i, what):
        t, data = self.constant(op, i, what)
        if data.dtype not in (np.int32, np.int64):
            self.fail(op, f"its {what} {_tname(t)} has type {data.dtype}; TFLite stores it as int32 or int64")
        return [int(v) for v in data.reshape(-1)]

    def fused(self, op):
        code = op.options.get("FusedActivationFunction", 0)
        if code not in _ACTIVATIONS:
            name = _ACTIVATION_NAMES.get(code, f"#{code}")
            self.fail(op, f"fused activation {name} is not supported; darbgen fuses NONE, RELU, RELU6 and "
                          f"RELU_N1_TO_1 (use one of those, or a separate activation darbgen supports)")
        return _ACTIVATIONS[code]

    def need_options(self, op, kind):
        if op.options_type != kind:
            self.fail(op, f"its options are {op.options_type}, expected {kind}: the file is corrupt")

    # ------------------------------------------------------------ weights
    def weight(self, op, i, quantized, what, channels, file_axis, squeeze0=False):
        """The weight Tensor of a conv / depthwise / FC: int8 with per-channel Quant (int8 model) or float32."""
        t, data = self.constant(op, i, what)
        if squeeze0:
            data = data.reshape(data.shape[1:])
        axis = file_axis - 1 if squeeze0 else file_axis
        name = self.unique_tensor_names[i]
        if data.dtype == np.int8:
            if t.quant is None:
                self.fail(op, f"its {what} {_tname(t)} is int8 without quantization parameters")
            scale, zp, dim = t.quant
            if scale.size > 1 and (dim != file_axis or scale.size != channels):
                self.fail(op, f"its {what} {_tname(t)} has {scale.size} scales along axis {dim}; darbgen expects one "
                              f"per output channel ({channels}) along axis {file_axis}")
            if scale.size not in (1, channels):
                self.fail(op, f"its {what} {_tname(t)} has {scale.size} scales for {channels} channels")
            if quantized:
                q = self.quant(op, t, axis=axis if scale.size > 1 else 0)
                return Tensor(name, data.shape, "int8", q, np.ascontiguousarray(data))
            real = _dequantize(data, scale, zp, axis)
            self.hybrid.append(t.name)
            return Tensor(name, data.shape, "float32", None, real.astype(np.float32))
        if data.dtype == np.float32:
            if quantized:
                self.fail(op, f"its {what} {_tname(t)} is float32 in an int8 op; darbgen needs int8 weights there "
                              f"(re-convert with full-integer quantization)")
            return Tensor(name, data.shape, "float32", None, np.ascontiguousarray(data))
        self.fail(op, f"its {what} {_tname(t)} has type {data.dtype}; darbgen reads float32 or int8 weights")

    def bias(self, op, i, quantized, channels, x_quant, w):
        if i is None or i < 0:
            if quantized:
                scale = x_quant.scale.astype(np.float64) * w.quant.scale.astype(np.float64)
                q = Quant(scale.astype(np.float32), np.zeros(scale.size, np.int64), 0)
                data = np.zeros(channels, np.int32)
                return Tensor(f"{op.opname.lower()}_{op.index}_zero_bias", (channels,), "int32", q, data), True
            return Tensor(f"{op.opname.lower()}_{op.index}_zero_bias", (channels,), "float32", None,
                          np.zeros(channels, np.float32)), True
        t, data = self.constant(op, i, "bias")
        name = self.unique_tensor_names[i]
        if data.size != channels:
            self.fail(op, f"its bias {_tname(t)} has {data.size} values for {channels} output channels")
        data = data.reshape(channels)
        if quantized:
            if data.dtype != np.int32:
                self.fail(op, f"its bias {_tname(t)} has type {data.dtype}; an int8 op's bias is int32")
            q = self.quant(op, t, axis=0)
            if q is None:
                self.fail(op, f"its bias {_tname(t)} has no quantization parameters")
            if q.scale.size not in (1, channels):
                self.fail(op, f"its bias {_tname(t)} has {q.scale.size} scales for {channels} channels")
            return Tensor(name, (channels,), "int32", q, np.ascontiguousarray(data)), False
        if data.dtype != np.float32:
            self.fail(op, f"its bias {_tname(t)} has type {data.dtype}; a float op's bias is float32")
        return Tensor(name, (channels,), "float32", None, np.ascontiguousarray(data)), False

    # ------------------------------------------------------------ node naming
    def node_name(self, kind, op, out_index, weight_index=None):
        def candidates(text):
            """Layer names in a TFLite tensor name: for each ';'-separated TF name "scope/layer/.../Op", the
            components between the model scope and the op (names of variables are skipped)."""
            found = []
            for part in text.split(";"):
                comps = [c for c in part.split("/") if c]
                if len(comps) < 2 or any(c.lower().startswith("readvariableop") for c in comps):
                    continue
                found.extend(comps[1:-1] if len(comps) > 2 else comps[:1])
            return found

        def vote(names):
            prefixes = _KERAS_PREFIXES.get(kind, ())
            match = [n for n in names if n.lower().startswith(prefixes)]
            if not match:
                return None
            return max(match, key=lambda n: (match.count(n), -match.index(n)))

        out_text = self.tensors[out_index].name
        w_text = self.tensors[weight_index].name if weight_index is not None and weight_index >= 0 else ""
        base = vote(candidates(out_text)) or vote(candidates(w_text))
        if base is None:
            cands = candidates(out_text)
            base = cands[-1] if cands and kind not in ("quantize", "dequantize") else None
        if base is None:
            base = f"{kind}_{op.index}"
        try:
            base = short_name(base)
        except DarbgenError:
            base = short_name(f"{kind}_{op.index}")
        name, k = base, 2
        while name.upper() in self.used_node_names:
            name, k = short_name(f"{base}_{k}"), k + 1
        self.used_node_names.add(name.upper())
        return name

    def add_node(self, kind, op, inputs, out, params=None, attrs=None, weight_index=None):
        name = self.node_name(kind, op, op.outputs[0], weight_index)
        node = Node(kind, name, inputs, [out], params or {}, attrs or {}, source_name=self.tensors[op.outputs[0]].name)
        self.nodes.append(node)
        self.producer[out] = node
        return node

    # ------------------------------------------------------------ ops
    def translate(self):
        raw = self.raw
        if len(raw["inputs"]) != 1 or len(raw["outputs"]) != 1:
            raise DarbgenError(f"{self.where}: has {len(raw['inputs'])} inputs and {len(raw['outputs'])} outputs; "
                               f"darbgen generates models with one input and one output tensor")
        if not self.ops:
            raise DarbgenError(f"{self.where}: the model has no operators")
        for op in self.ops:
            if op.opname == "CUSTOM":
                outs = ", ".join(_tname(self.tensors[t]) for t in op.outputs if t >= 0) or "no output"
                self.fail(op, f"is the custom operator {op.custom!r} (writing {outs}); darbgen supports only the "
                              f"builtin operators {', '.join(SUPPORTED_OPS)}")
            if op.opname not in SUPPORTED_OPS:
                outs = ", ".join(_tname(self.tensors[t]) for t in op.outputs if t >= 0) or "no output"
                self.fail(op, f"writing {outs}: darbgen does not support this operator; it supports "
                              f"{', '.join(SUPPORTED_OPS)} (RELU / RELU6 / RELU_N1_TO_1 when they follow an op "
                              f"they can be fused into)")
        x = raw["inputs"][0]
        if self.is_constant(x):
            raise DarbgenError(f"{self.where}: the model input {_tname(self.tensors[x])} is a constant")
        self.new_activation(None, x)
        for op in self.ops:
            need = _MIN_INPUTS[op.opname]
            if len(op.inputs) < need or any(i < 0 for i in op.inputs[:1]) or len(op.outputs) != 1 \
                    or op.outputs[0] < 0:
                self.fail(op, f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; {op.opname} takes at "
                              f"least {need} inputs (the first one present) and one output")
            getattr(self, "op_" + op.opname.lower())(op)
        out = raw["outputs"][0]
        if out not in self.names:
            raise DarbgenError(f"{self.where}: no operator darbgen translated writes the model output "
                               f"{_tname(self.tensors[out])}")
        return self.names[x], self.names[out]

    def spatial(self, op, x_shape, y_shape, k, stride, dilation, padding_code):
        """Explicit (top, bottom, left, right) padding, checking TFLite's output size against the file's."""
        if padding_code not in (0, 1):
            self.fail(op, f"padding type {padding_code} is neither SAME nor VALID")
        if min(stride) < 1 or min(dilation) < 1 or min(k) < 1:
            self.fail(op, f"stride {stride}, dilation {dilation} and filter {k} must be positive")
        pads = []
        for d in range(2):
            out = _out_size(padding_code, x_shape[d], k[d], stride[d], dilation[d])
            if out != y_shape[d]:
                self.fail(op, f"output {_tname(self.tensors[op.outputs[0]])} has spatial size {y_shape[:2]}, but "
                              f"TFLite computes {out} along axis {d + 1} for input {x_shape[:2]}, filter {k}, stride "
                              f"{stride}, dilation {dilation} and padding "
                              f"{'SAME' if padding_code == 0 else 'VALID'}: the file is inconsistent")
            pads.extend(_pad_same(x_shape[d], k[d], stride[d], dilation[d], out))
        return tuple(pads)

    def op_conv_2d(self, op):
        self.need_options(op, "Conv2DOptions")
        o = op.options
        xi, wi = op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else -1
        bi = op.inputs[2] if len(op.inputs) > 2 else -1
        x = self.activation(op, xi)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if len(xt.shape) != 3 or len(yt.shape) != 3:
            self.fail(op, f"reads {list(self.tensors[xi].shape)} and writes {list(self.tensors[op.outputs[0]].shape)}"
                          f"; darbgen's conv2d takes (1, H, W, C) images")
        quantized = xt.dtype == "int8"
        wt = self.tensors[wi] if wi >= 0 else None
        if wt is None or len(wt.shape) != 4:
            self.fail(op, "its filter must be a constant (O, KH, KW, I) tensor")
        out_c, kh, kw, in_c = wt.shape
        if in_c != xt.shape[2]:
            self.fail(op, f"filter {_tname(wt)} has {in_c} input channels for an input with {xt.shape[2]}: a grouped "
                          f"convolution, which darbgen does not support")
        if yt.shape[2] != out_c:
            self.fail(op, f"writes {yt.shape[2]} channels with a filter of {out_c}")
        w = self.weight(op, wi, quantized, "filter", out_c, 0)
        b, zero = self.bias(op, bi, quantized, out_c, xt.quant, w)
        stride, dilation = (o["StrideH"], o["StrideW"]), (o["DilationHFactor"], o["DilationWFactor"])
        padding = self.spatial(op, xt.shape, yt.shape, (kh, kw), stride, dilation, o["Padding"])
        node = self.add_node("conv2d", op, [x], y, {"weight": w, "bias": b},
                             {"stride": stride, "dilation": dilation, "padding": padding,
                              "activation": self.fused(op)}, weight_index=wi)
        self.same_type(op, xt, yt)
        if zero:
            self.notes.append(f"{node.name}: the file has no bias; a zero bias was added")

    def op_depthwise_conv_2d(self, op):
        self.need_options(op, "DepthwiseConv2DOptions")
        o = op.options
        xi, wi = op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else -1
        bi = op.inputs[2] if len(op.inputs) > 2 else -1
        x = self.activation(op, xi)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if len(xt.shape) != 3 or len(yt.shape) != 3:
            self.fail(op, "darbgen's depthwise_conv2d takes (1, H, W, C) images")
        quantized = xt.dtype == "int8"
        wt = self.tensors[wi] if wi >= 0 else None
        if wt is None or len(wt.shape) != 4 or wt.shape[0] != 1:
            self.fail(op, "its filter must be a constant (1, KH, KW, C * M) tensor")
        _, kh, kw, cm = wt.shape
        c = xt.shape[2]
        if cm % c:
            self.fail(op, f"filter {_tname(wt)} has {cm} channels, not a multiple of the input's {c}")
        mult = cm // c
        if yt.shape[2] != cm:
            self.fail(op, f"writes {yt.shape[2]} channels with a filter of {cm}")
        w = self.weight(op, wi, quantized, "filter", cm, 3, squeeze0=True)
        b, zero = self.bias(op, bi, quantized, cm, xt.quant, w)
        stride, dilation = (o["StrideH"], o["StrideW"]), (o["DilationHFactor"], o["DilationWFactor"])
        padding = self.spatial(op, xt.shape, yt.shape, (kh, kw), stride, dilation, o["Padding"])
        node = self.add_node("depthwise_conv2d", op, [x], y, {"weight": w, "bias": b},
                             {"multiplier": mult, "stride": stride, "dilation": dilation, "padding": padding,
                              "activation": self.fused(op)}, weight_index=wi)
        self.same_type(op, xt, yt)
        if o.get("DepthMultiplier", mult) not in (mult, 0):
            self.notes.append(f"{node.name}: the file's depth_multiplier option says {o['DepthMultiplier']}, the "
                              f"filter shape {mult}; darbgen uses the shape (as TFLite's kernels do)")
        if zero:
            self.notes.append(f"{node.name}: the file has no bias; a zero bias was added")

    def op_fully_connected(self, op):
        if op.options_type not in ("NONE", "FullyConnectedOptions"):
            self.need_options(op, "FullyConnectedOptions")
        o = op.options
        if o.get("WeightsFormat", 0) != 0:
            self.fail(op, "its weights are in a shuffled format (SHUFFLED4x16INT8); darbgen reads the DEFAULT format")
        xi, wi = op.inputs[0], op.inputs[1] if len(op.inputs) > 1 else -1
        bi = op.inputs[2] if len(op.inputs) > 2 else -1
        x = self.activation(op, xi)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        quantized = xt.dtype == "int8"
        wt = self.tensors[wi] if wi >= 0 else None
        if wt is None or len(wt.shape) != 2:
            self.fail(op, "its weights must be a constant (O, I) matrix")
        out_c, in_c = wt.shape
        if xt.size != in_c:
            self.fail(op, f"input {_tname(self.tensors[xi])} has shape {list(self.tensors[xi].shape)} and the weights "
                          f"{in_c} columns: TFLite would treat it as {xt.size // max(in_c, 1)} rows of {in_c} values; "
                          f"darbgen's fully_connected flattens each sample into one row (add a Flatten before the "
                          f"Dense layer)")
        if yt.size != out_c or yt.shape[-1] != out_c:
            self.fail(op, f"writes shape {list(self.tensors[op.outputs[0]].shape)} with {out_c} outputs; darbgen's "
                          f"fully_connected writes (1, {out_c})")
        w = self.weight(op, wi, quantized, "weights", out_c, 0)
        b, zero = self.bias(op, bi, quantized, out_c, xt.quant, w)
        node = self.add_node("fully_connected", op, [x], y, {"weight": w, "bias": b},
                             {"activation": self.fused(op)}, weight_index=wi)
        self.same_type(op, xt, yt)
        if zero:
            self.notes.append(f"{node.name}: the file has no bias; a zero bias was added")

    def same_type(self, op, xt, yt):
        if xt.dtype != yt.dtype:
            self.fail(op, f"reads {xt.dtype} and writes {yt.dtype} ({_tname(self.tensors[op.outputs[0]])}); darbgen "
                          f"changes types only in QUANTIZE / DEQUANTIZE")

    def op_add(self, op):
        if op.options_type not in ("NONE", "AddOptions"):
            self.need_options(op, "AddOptions")
        if len(op.inputs) != 2:
            self.fail(op, f"has {len(op.inputs)} inputs, ADD takes 2")
        a = self.activation(op, op.inputs[0])
        b = self.activation(op, op.inputs[1])
        y = self.output(op)
        at, bt, yt = self.ir[a], self.ir[b], self.ir[y]
        if not (at.shape == bt.shape == yt.shape):
            self.fail(op, f"adds shapes {at.shape} and {bt.shape} into {yt.shape}; darbgen's add takes two tensors "
                          f"of the output's shape (no broadcasting)")
        self.same_type(op, at, yt)
        self.same_type(op, bt, yt)
        self.add_node("add", op, [a, b], y, attrs={"activation": self.fused(op)})

    def _pool(self, op, kind):
        self.need_options(op, "Pool2DOptions")
        o = op.options
        x = self.activation(op, op.inputs[0] if op.inputs else -1)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if len(xt.shape) != 3 or len(yt.shape) != 3 or xt.shape[2] != yt.shape[2]:
            self.fail(op, f"pools {xt.shape} into {yt.shape}; darbgen's pooling takes (1, H, W, C) images and keeps C")
        self.same_type(op, xt, yt)
        k, stride = (o["FilterHeight"], o["FilterWidth"]), (o["StrideH"], o["StrideW"])
        padding = self.spatial(op, xt.shape, yt.shape, k, stride, (1, 1), o["Padding"])
        self.add_node(kind, op, [x], y, attrs={"filter": k, "stride": stride, "padding": padding,
                                               "activation": self.fused(op)})

    def op_average_pool_2d(self, op):
        self._pool(op, "avg_pool2d")

    def op_max_pool_2d(self, op):
        self._pool(op, "max_pool2d")

    def op_mean(self, op):
        if len(op.inputs) != 2:
            self.fail(op, "MEAN takes an input and a constant axes tensor")
        x = self.activation(op, op.inputs[0])
        axes_raw = self.int_vector(op, op.inputs[1], "axes")
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        rank = len(xt.shape) + 1
        axes = set()
        for a in axes_raw:
            if not -rank <= a < rank:
                self.fail(op, f"axis {a} is out of range for a rank-{rank} input")
            a %= rank
            if a == 0:
                self.fail(op, "averages over the batch dimension; darbgen runs one sample at a time")
            axes.add(a - 1)
        axes = tuple(sorted(axes))
        keep = bool(op.options.get("KeepDims", False))
        expect = tuple(1 if d in axes else s for d, s in enumerate(xt.shape)) if keep else \
            tuple(s for d, s in enumerate(xt.shape) if d not in axes)
        if expect != yt.shape:
            self.fail(op, f"averages {xt.shape} over axes {axes} (keep_dims {keep}) but writes {yt.shape}")
        self.same_type(op, xt, yt)
        self.add_node("mean", op, [x], y, attrs={"axes": axes, "keep_dims": keep})

    def _reshape_node(self, op, x, y, shape):
        xt, yt = self.ir[x], self.ir[y]
        if tuple(shape) != yt.shape:
            self.fail(op, f"its new shape {tuple(shape)} (without batch) differs from its output's {yt.shape}")
        if xt.size != yt.size:
            self.fail(op, f"reshapes {xt.shape} ({xt.size} values) into {yt.shape} ({yt.size})")
        self.same_type(op, xt, yt)
        self.add_node("reshape", op, [x], y, attrs={"shape": tuple(int(s) for s in shape)})

    def op_reshape(self, op):
        x = self.activation(op, op.inputs[0] if op.inputs else -1)
        y = self.output(op)
        xt = self.ir[x]
        if len(op.inputs) > 1 and op.inputs[1] >= 0 and self.is_constant(op.inputs[1]):
            new = self.int_vector(op, op.inputs[1], "shape")
        elif op.options.get("NewShape"):
            new = list(op.options["NewShape"])
        elif len(op.inputs) > 1 and op.inputs[1] >= 0:
            self.fail(op, f"its shape {_tname(self.tensors[op.inputs[1]])} is computed at run time; darbgen needs a "
                          f"constant shape")
        else:
            self.fail(op, "has neither a shape input nor a new_shape option (TFLite would reshape to a scalar)")
        total = xt.size  # batch 1
        if new.count(-1) > 1 or any(d < -1 for d in new):
            self.fail(op, f"its new shape {new} is invalid")
        if -1 in new:
            known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
            if known <= 0 or total % known:
                self.fail(op, f"cannot reshape {total} values into {new}")
            new = [total // known if d == -1 else d for d in new]
        if not new or new[0] != 1:
            self.fail(op, f"reshapes into {new}, which moves data into or out of the batch dimension; darbgen keeps "
                          f"the batch (first) dimension at 1")
        self._reshape_node(op, x, y, new[1:])

    def op_squeeze(self, op):
        x = self.activation(op, op.inputs[0] if op.inputs else -1)
        y = self.output(op)
        xt = self.ir[x]
        full = (1,) + xt.shape
        dims = op.options.get("SqueezeDims") or [d for d, s in enumerate(full) if s == 1]
        dims = {d % len(full) if -len(full) <= d < len(full) else None for d in dims}
        if None in dims:
            self.fail(op, f"squeeze dimensions {op.options.get('SqueezeDims')} are out of range")
        if 0 in dims:
            self.fail(op, "squeezes the batch dimension; darbgen keeps the batch (first) dimension "
                          "(squeeze only axes 1 and later)")
        if any(full[d] != 1 for d in dims):
            self.fail(op, f"squeezes dimensions {sorted(dims)} of shape {list(full)} that are not 1")
        self._reshape_node(op, x, y, [s for d, s in enumerate(full) if d not in dims][1:])

    def op_softmax(self, op):
        self.need_options(op, "SoftmaxOptions")
        x = self.activation(op, op.inputs[0] if op.inputs else -1)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if xt.shape != yt.shape:
            self.fail(op, f"maps shape {xt.shape} to {yt.shape}")
        self.same_type(op, xt, yt)
        beta = float(np.float32(op.options["Beta"]))
        if not beta > 0 or not np.isfinite(beta):
            self.fail(op, f"beta {beta} must be positive")
        self.add_node("softmax", op, [x], y, attrs={"beta": beta})

    def op_pad(self, op):
        if len(op.inputs) != 2:
            self.fail(op, "PAD takes an input and a constant paddings tensor (PADV2's constant value is not supported)")
        x = self.activation(op, op.inputs[0])
        t, data = self.constant(op, op.inputs[1], "paddings")
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        rank = len(xt.shape) + 1
        if data.dtype not in (np.int32, np.int64) or data.shape != (rank, 2):
            self.fail(op, f"its paddings {_tname(t)} are {data.dtype} {list(data.shape)}; expected int32 ({rank}, 2)")
        pads = [(int(a), int(b)) for a, b in data]
        if pads[0] != (0, 0):
            self.fail(op, f"pads the batch dimension by {pads[0]}; darbgen runs one sample at a time")
        if any(a < 0 or b < 0 for a, b in pads):
            self.fail(op, f"has negative paddings {pads}")
        pads = tuple(pads[1:])
        expect = tuple(s + a + b for s, (a, b) in zip(xt.shape, pads))
        if expect != yt.shape:
            self.fail(op, f"pads {xt.shape} by {pads} into {yt.shape}, expected {expect}")
        self.same_type(op, xt, yt)
        self.add_node("pad", op, [x], y, attrs={"pads": pads})

    def op_concatenation(self, op):
        self.need_options(op, "ConcatenationOptions")
        if not op.inputs:
            self.fail(op, "has no inputs")
        xs = [self.activation(op, i) for i in op.inputs]
        y = self.output(op)
        yt = self.ir[y]
        rank = len(yt.shape) + 1
        axis = op.options["Axis"]
        if not -rank <= axis < rank:
            self.fail(op, f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        if axis == 0:
            self.fail(op, "concatenates along the batch dimension; darbgen runs one sample at a time")
        axis -= 1
        shapes = [self.ir[x].shape for x in xs]
        if any(len(s) != len(yt.shape) for s in shapes) or \
                any(s[:axis] + s[axis + 1:] != yt.shape[:axis] + yt.shape[axis + 1:] for s in shapes) or \
                sum(s[axis] for s in shapes) != yt.shape[axis]:
            self.fail(op, f"concatenates shapes {shapes} along axis {axis} into {yt.shape}")
        for x in xs:
            self.same_type(op, self.ir[x], yt)
        self.add_node("concat", op, xs, y, attrs={"axis": axis, "activation": self.fused(op)})

    def op_quantize(self, op):
        x = self.activation(op, op.inputs[0] if op.inputs else -1)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if xt.dtype != "float32" or yt.dtype != "int8":
            self.fail(op, f"converts {xt.dtype} to {yt.dtype} ({_tname(self.tensors[op.outputs[0]])}); darbgen's "
                          f"quantize converts float32 to int8 (an int8-to-int8 requantization is not supported)")
        if xt.shape != yt.shape:
            self.fail(op, f"maps shape {xt.shape} to {yt.shape}")
        self.add_node("quantize", op, [x], y)

    def op_dequantize(self, op):
        xi = op.inputs[0] if op.inputs else -1
        if xi >= 0 and self.is_constant(xi):
            self.fold_dequantize(op, xi)
            return
        x = self.activation(op, xi)
        y = self.output(op)
        xt, yt = self.ir[x], self.ir[y]
        if xt.dtype != "int8" or yt.dtype != "float32":
            self.fail(op, f"converts {xt.dtype} to {yt.dtype}; darbgen's dequantize converts int8 to float32")
        if xt.shape != yt.shape:
            self.fail(op, f"maps shape {xt.shape} to {yt.shape}")
        self.add_node("dequantize", op, [x], y)

    def fold_dequantize(self, op, xi):
        t, data = self.constant(op, xi, "input")
        if len(op.outputs) != 1 or op.outputs[0] < 0:
            self.fail(op, "it has no output tensor")
        oi = op.outputs[0]
        ot = self.tensors[oi]
        if _typename(ot) != "float32":
            self.fail(op, f"dequantizes a constant into {_typename(ot)}; darbgen expects float32")
        if data.dtype == np.int8:
            if t.quant is None:
                self.fail(op, f"its input {_tname(t)} is int8 without quantization parameters")
            scale, zp, dim = t.quant
            if scale.size > 1 and (dim >= data.ndim or data.shape[dim] != scale.size):
                self.fail(op, f"its input {_tname(t)} has {scale.size} scales along axis {dim} of shape "
                              f"{list(data.shape)}")
            real = _dequantize(data, scale, zp, dim)
            self.dequantized.append(t.name)
        elif data.dtype == np.float16:
            real = data.astype(np.float32)
            self.notes.append(f"operator {op.index} (DEQUANTIZE) of the float16 constant {t.name!r} was folded into "
                              f"float32 weights")
        else:
            self.fail(op, f"dequantizes the constant {_tname(t)} of type {data.dtype}; darbgen reads int8 or float16")
        self.folded[oi] = Tensor(self.unique_tensor_names[oi], real.shape if real.ndim else (1,), "float32", None,
                                 real.astype(np.float32))

    def _standalone_activation(self, op):
        act = _STANDALONE[op.opname]
        xi = op.inputs[0] if op.inputs else -1
        x = self.activation(op, xi)
        xt = self.ir[x]
        node = self.producer.get(x)
        why = None
        if node is None:
            why = "it reads the model input"
        elif node.kind not in _FUSABLE:
            why = f"the op before it ({node.name}, {node.kind}) has no fused activation"
        elif node.attrs.get("activation", "none") != "none":
            why = f"the op before it ({node.name}) already applies {node.attrs['activation']}"
        elif len(self.consumers.get(xi, [])) != 1 or xi in self.raw["outputs"]:
            why = f"{_tname(self.tensors[xi])} is also read elsewhere"
        y = self.output(op)
        yt = self.ir[y]
        if why is None and (xt.dtype != yt.dtype or xt.shape != yt.shape):
            why = f"it changes {xt.dtype} {xt.shape} into {yt.dtype} {yt.shape}"
        if why is None and xt.dtype == "int8" and not xt.quant.same_as(yt.quant):
            why = "its input and output have different quantization (a requantizing activation)"
        if why is not None:
            self.fail(op, f"a standalone {op.opname} can be imported only when darbgen can fuse it into the op before "
                          f"it, and {why}; convert the model so that TFLite fuses the activation")
        node.attrs["activation"] = act
        node.outputs = [y]
        del self.producer[x]
        del self.ir[x]
        self.producer[y] = node
        self.notes.append(f"operator {op.index} ({op.opname}) was fused into {node.name}")

    op_relu = op_relu6 = op_relu_n1_to_1 = _standalone_activation


def graph_from_tflite(path):
    """A :class:`darbgen.ir.Graph` from a ``.tflite`` file (see docs/tflite.md).

    Raises :class:`DarbgenError` for a missing, oversized or broken file and
    for anything darbgen does not support, naming the operator and tensor.
    """
    tflite = _import_tflite()
    where, buf = _read_bytes(path)
    try:
        raw = _parse(tflite, buf)
    except DarbgenError:
        raise
    except Exception as exc:  # a broken flatbuffer raises IndexError, struct.error, ValueError, ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        kind = exc.__class__.__name__
        if kind == "error":          # struct.error
            kind = f"{exc.__class__.__module__}.error"
        raise DarbgenError(f"{where}: is not a valid TensorFlow Lite model (the flatbuffer is corrupt or truncated: "
                           f"{kind}{': ' + text if text else ''})") from None
    if raw["n_subgraphs"] != 1:
        raise DarbgenError(f"{where}: has {raw['n_subgraphs']} subgraphs (control flow such as IF / WHILE, or several "
                           f"signatures); darbgen reads models with one subgraph")
    tr = _Translator(where, raw)
    x, y = tr.translate()
    notes = list(tr.notes)

    def listed(names):
        return ", ".join(repr(n if len(n) <= 60 else n[:57] + "...") for n in names)

    if tr.dequantized:
        notes.insert(0, f"{len(tr.dequantized)} DEQUANTIZE operators of int8 constants were folded: their weights are "
                        f"float32 computed as TFLite does (scale * (q - zero_point)): {listed(tr.dequantized)}")
    if tr.hybrid:
        notes.insert(0, f"{len(tr.hybrid)} int8 weight tensors of the float model (TFLite's dynamic-range "
                        f"quantization) were dequantized to float32 (scale * (q - zero_point)); TFLite runs these ops "
                        f"as hybrid kernels that also quantize the activations, darbgen runs them in float32: "
                        f"{listed(tr.hybrid)}")
    used = {t for n in tr.nodes for t in n.inputs + n.outputs} | {x, y}
    tensors = {k: v for k, v in tr.ir.items() if k in used}
    name = os.path.splitext(os.path.basename(where))[0] or "model"
    return Graph(name=name, tensors=tensors, nodes=tr.nodes, inputs=[x], outputs=[y], layout="NHWC",
                 source="tflite", notes=notes)
