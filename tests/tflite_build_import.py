"""Build small multi-operator .tflite models with the `tflite` package's
flatbuffer builders, for the importer's tests (tests/test_tflite_import.py).

    m = ModelBuilder()
    x = m.tensor("x", (1, 8), "float32")
    w = m.tensor("w", (4, 8), "int8", data=q, scale=[...], quantized_dimension=0)
    wf = m.tensor("wf", (4, 8), "float32")
    y = m.tensor("y", (1, 4), "float32")
    m.op("DEQUANTIZE", [w], [wf])
    m.op("FULLY_CONNECTED", [x, wf, None], [y], ("FullyConnectedOptions", {"fused_activation_function": "relu"}))
    buf = m.build(inputs=[x], outputs=[y])

Tensors with ``data`` are constants. ``None`` in an operator's inputs is an
absent optional input (-1). ``m.op(("CUSTOM", "MyOp"), ...)`` adds a custom
operator. Options are the schema table's name and its fields in snake_case;
``padding`` takes "same" / "valid", ``fused_activation_function`` "none",
"relu", "relu6", "relu_n1_to_1", "tanh"; list values become vectors
(``new_shape``, ``squeeze_dims``). Nothing here imports darbgen.
"""
import importlib

import flatbuffers
import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

TYPES = {"float32": (TensorType.FLOAT32, np.float32), "float16": (TensorType.FLOAT16, np.float16),
         "int8": (TensorType.INT8, np.int8), "int16": (TensorType.INT16, np.int16),
         "int32": (TensorType.INT32, np.int32), "int64": (TensorType.INT64, np.int64),
         "uint8": (TensorType.UINT8, np.uint8)}
_PADDING = {"same": Padding.SAME, "valid": Padding.VALID}
_ACTIVATION = {"none": ActivationFunctionType.NONE, "relu": ActivationFunctionType.RELU,
               "relu6": ActivationFunctionType.RELU6, "relu_n1_to_1": ActivationFunctionType.RELU_N1_TO_1,
               "tanh": ActivationFunctionType.TANH}


#: the generated builder modules (``tflite.Tensor`` etc. are the classes: the package star-imports them)
_M = {name: importlib.import_module(f"tflite.{name}") for name in
      ("QuantizationParameters", "Tensor", "Operator", "SubGraph", "Buffer", "OperatorCode", "Model")}


class _T:
    def __init__(self, index, name, shape, dtype, data, scale, zero_point, quantized_dimension, signature):
        self.index, self.name, self.shape, self.dtype = index, name, tuple(shape), dtype
        self.data, self.scale, self.zero_point = data, scale, zero_point
        self.quantized_dimension, self.signature = quantized_dimension, signature


def _camel(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _end(b, n):
    try:
        return b.EndVector()
    except TypeError:  # flatbuffers < 2
        return b.EndVector(n)


def _offsets(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return _end(b, len(offsets))


def _bytes(b, raw, alignment=16):
    b.StartVector(1, len(raw), alignment)
    b.head = b.head - len(raw)
    b.Bytes[b.head:b.head + len(raw)] = raw
    return _end(b, len(raw))


class ModelBuilder:
    """A model with one subgraph (``build(subgraphs=2)`` repeats it, for the refusal of several)."""

    def __init__(self):
        self.tensors = []
        self.ops = []
        self.codes = []

    def tensor(self, name, shape, dtype="float32", data=None, scale=None, zero_point=None, quantized_dimension=0,
               signature=None):
        if data is not None:
            data = np.ascontiguousarray(np.asarray(data, TYPES[dtype][1]).reshape(shape))
        t = _T(len(self.tensors), name, shape, dtype, data, scale, zero_point, quantized_dimension, signature)
        self.tensors.append(t)
        return t

    def op(self, name, inputs, outputs, options=None):
        key = name if isinstance(name, tuple) else (name, None)
        if key not in self.codes:
            self.codes.append(key)
        self.ops.append((self.codes.index(key), inputs, outputs, options))

    # ------------------------------------------------------------------ serialization
    def _options(self, b, options):
        type_name, values = options
        module = importlib.import_module(f"tflite.{type_name}")
        vectors = {}
        for field, value in values.items():
            if isinstance(value, (list, tuple)):
                getattr(module, f"{type_name}Start{_camel(field)}Vector")(b, len(value))
                for v in reversed(value):
                    b.PrependInt32(int(v))
                vectors[field] = _end(b, len(value))
        getattr(module, f"{type_name}Start")(b)
        for field, value in values.items():
            if field == "padding" and isinstance(value, str):
                value = _PADDING[value]
            if field == "fused_activation_function" and isinstance(value, str):
                value = _ACTIVATION[value]
            getattr(module, f"{type_name}Add{_camel(field)}")(b, vectors.get(field, value))
        return getattr(BuiltinOptions, type_name), getattr(module, f"{type_name}End")(b)

    def _quant(self, b, t):
        if t.scale is None:
            return None
        scale = np.atleast_1d(np.asarray(t.scale, np.float32))
        zp = np.atleast_1d(np.asarray(0 if t.zero_point is None else t.zero_point, np.int64))
        if zp.size == 1 and scale.size > 1:
            zp = np.zeros(scale.size, np.int64) + zp[0]
        sv, zv = b.CreateNumpyVector(scale), b.CreateNumpyVector(zp)
        Q = _M['QuantizationParameters']
        Q.QuantizationParametersStart(b)
        Q.QuantizationParametersAddScale(b, sv)
        Q.QuantizationParametersAddZeroPoint(b, zv)
        Q.QuantizationParametersAddQuantizedDimension(b, int(t.quantized_dimension))
        return Q.QuantizationParametersEnd(b)

    def _subgraph(self, b, inputs, outputs, tensor_buffer):
        tensor_offsets = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = b.CreateNumpyVector(np.asarray(t.shape, np.int32))
            sig = None if t.signature is None else b.CreateNumpyVector(np.asarray(t.signature, np.int32))
            quant = self._quant(b, t)
            _M['Tensor'].TensorStart(b)
            _M['Tensor'].TensorAddShape(b, shape)
            if sig is not None:
                _M['Tensor'].TensorAddShapeSignature(b, sig)
            _M['Tensor'].TensorAddType(b, TYPES[t.dtype][0])
            _M['Tensor'].TensorAddBuffer(b, tensor_buffer[t.index])
            _M['Tensor'].TensorAddName(b, name)
            if quant is not None:
                _M['Tensor'].TensorAddQuantization(b, quant)
            tensor_offsets.append(_M['Tensor'].TensorEnd(b))
        op_offsets = []
        for code, ins, outs, options in self.ops:
            opts = None if options is None else self._options(b, options)
            iv = b.CreateNumpyVector(np.asarray([-1 if t is None else t.index for t in ins], np.int32))
            ov = b.CreateNumpyVector(np.asarray([t.index for t in outs], np.int32))
            _M['Operator'].OperatorStart(b)
            _M['Operator'].OperatorAddOpcodeIndex(b, code)
            _M['Operator'].OperatorAddInputs(b, iv)
            _M['Operator'].OperatorAddOutputs(b, ov)
            if opts is not None:
                _M['Operator'].OperatorAddBuiltinOptionsType(b, opts[0])
                _M['Operator'].OperatorAddBuiltinOptions(b, opts[1])
            op_offsets.append(_M['Operator'].OperatorEnd(b))
        tv = _offsets(b, tensor_offsets)
        gi = b.CreateNumpyVector(np.asarray([t.index for t in inputs], np.int32))
        go = b.CreateNumpyVector(np.asarray([t.index for t in outputs], np.int32))
        ov = _offsets(b, op_offsets)
        name = b.CreateString("main")
        _M['SubGraph'].SubGraphStart(b)
        _M['SubGraph'].SubGraphAddTensors(b, tv)
        _M['SubGraph'].SubGraphAddInputs(b, gi)
        _M['SubGraph'].SubGraphAddOutputs(b, go)
        _M['SubGraph'].SubGraphAddOperators(b, ov)
        _M['SubGraph'].SubGraphAddName(b, name)
        return _M['SubGraph'].SubGraphEnd(b)

    def build(self, inputs, outputs, subgraphs=1):
        """The .tflite bytes (file identifier TFL3)."""
        b = flatbuffers.Builder(1024)
        buffers = [None]
        tensor_buffer = {}
        for t in self.tensors:
            if t.data is not None:
                buffers.append(t.data.astype(t.data.dtype.newbyteorder("<")).tobytes())
                tensor_buffer[t.index] = len(buffers) - 1
            else:
                tensor_buffer[t.index] = 0
        buffer_offsets = []
        for raw in buffers:
            vec = None if raw is None else _bytes(b, raw)
            _M['Buffer'].BufferStart(b)
            if vec is not None:
                _M['Buffer'].BufferAddData(b, vec)
            buffer_offsets.append(_M['Buffer'].BufferEnd(b))
        sgs = [self._subgraph(b, inputs, outputs, tensor_buffer) for _ in range(subgraphs)]
        code_offsets = []
        for name, custom in self.codes:
            custom_off = None if custom is None else b.CreateString(custom)
            code = BuiltinOperator.CUSTOM if name == "CUSTOM" else getattr(BuiltinOperator, name)
            _M['OperatorCode'].OperatorCodeStart(b)
            _M['OperatorCode'].OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            _M['OperatorCode'].OperatorCodeAddBuiltinCode(b, code)
            _M['OperatorCode'].OperatorCodeAddVersion(b, 1)
            if custom_off is not None:
                _M['OperatorCode'].OperatorCodeAddCustomCode(b, custom_off)
            code_offsets.append(_M['OperatorCode'].OperatorCodeEnd(b))
        cv = _offsets(b, code_offsets)
        sv = _offsets(b, sgs)
        bv = _offsets(b, buffer_offsets)
        desc = b.CreateString("darbgen importer test")
        _M['Model'].ModelStart(b)
        _M['Model'].ModelAddVersion(b, 3)
        _M['Model'].ModelAddOperatorCodes(b, cv)
        _M['Model'].ModelAddSubgraphs(b, sv)
        _M['Model'].ModelAddDescription(b, desc)
        _M['Model'].ModelAddBuffers(b, bv)
        model = _M['Model'].ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())
