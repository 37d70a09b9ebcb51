"""Build tiny .tflite models (one operator) with the `tflite` package's flatbuffer
builders, and run them with the TensorFlow Lite Micro interpreter (tests only).

    x = Tensor((1, 8, 8, 4), "int8", scale=0.05, zero_point=-3)
    y = Tensor((1, 4, 4, 4), "int8", scale=0.05, zero_point=-3)
    model = single_op_model("AVERAGE_POOL_2D", [x], [y],
                            ("Pool2DOptions", {"padding": "same", "stride_w": 2, "stride_h": 2,
                                               "filter_width": 2, "filter_height": 2}))
    (out,) = run_tflm(model, [x_values])

A tensor with ``data`` is a constant (weights, bias, axis); the others are the
model's inputs (in the order given) and outputs. ``None`` in ``inputs`` is an
absent optional input (index -1). Options are given as the schema's table name
and its fields in snake_case (``stride_w``, ``depth_multiplier``,
``fused_activation_function``, ``keep_dims``, ...); ``padding`` accepts "same" /
"valid" and ``fused_activation_function`` "none" / "relu" / "relu6" /
"relu_n1_to_1" / "tanh". Nothing here imports darbgen.
"""
import importlib
from dataclasses import dataclass

import flatbuffers
import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

# The schema's builder functions live in the modules (the package's attributes are the reader classes).
_Buffer, _Tensor, _QuantizationParameters, _Operator, _SubGraph, _OperatorCode, _Model = (
    importlib.import_module(f"tflite.{name}")
    for name in ("Buffer", "Tensor", "QuantizationParameters", "Operator", "SubGraph", "OperatorCode", "Model"))

_TYPES = {"float32": (TensorType.FLOAT32, np.float32), "int8": (TensorType.INT8, np.int8),
          "int16": (TensorType.INT16, np.int16), "int32": (TensorType.INT32, np.int32),
          "int64": (TensorType.INT64, np.int64), "uint8": (TensorType.UINT8, np.uint8),
          "bool": (TensorType.BOOL, np.bool_)}
_PADDING = {"same": Padding.SAME, "valid": Padding.VALID}
_ACTIVATION = {"none": ActivationFunctionType.NONE, "relu": ActivationFunctionType.RELU,
               "relu6": ActivationFunctionType.RELU6, "relu_n1_to_1": ActivationFunctionType.RELU_N1_TO_1,
               "tanh": ActivationFunctionType.TANH}


@dataclass
class Tensor:
    """One tensor of the model. ``scale`` / ``zero_point``: a number (per tensor)
    or a sequence (per channel along ``quantized_dimension``); None for float."""

    shape: tuple
    dtype: str = "float32"
    data: np.ndarray = None
    scale: object = None
    zero_point: object = None
    quantized_dimension: int = 0
    name: str = ""


def _camel(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _option_value(field, value):
    if field == "padding" and isinstance(value, str):
        return _PADDING[value.lower()]
    if field == "fused_activation_function" and isinstance(value, str):
        return _ACTIVATION[value.lower()]
    return value


def _bytes_vector(builder, data, alignment=16):
    """A [ubyte] vector holding ``data``, its start aligned (TFLM reads tensor data in place)."""
    raw = bytes(data)
    builder.StartVector(1, len(raw), alignment)
    builder.head = builder.head - len(raw)
    builder.Bytes[builder.head:builder.head + len(raw)] = raw
    return builder.EndVector()


def _offsets_vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _options(builder, options):
    type_name, values = options
    module = importlib.import_module(f"tflite.{type_name}")
    getattr(module, f"{type_name}Start")(builder)
    for field, value in values.items():
        getattr(module, f"{type_name}Add{_camel(field)}")(builder, _option_value(field, value))
    return getattr(BuiltinOptions, type_name), getattr(module, f"{type_name}End")(builder)


def _quantization(builder, t):
    if t.scale is None:
        return None
    scale = np.atleast_1d(np.asarray(t.scale, np.float32))
    zp = np.atleast_1d(np.asarray(0 if t.zero_point is None else t.zero_point, np.int64))
    if zp.size == 1 and scale.size > 1:
        zp = np.zeros(scale.size, np.int64) + zp[0]
    scale_vec = builder.CreateNumpyVector(scale)
    zp_vec = builder.CreateNumpyVector(zp)
    _QuantizationParameters.QuantizationParametersStart(builder)
    _QuantizationParameters.QuantizationParametersAddScale(builder, scale_vec)
    _QuantizationParameters.QuantizationParametersAddZeroPoint(builder, zp_vec)
    _QuantizationParameters.QuantizationParametersAddQuantizedDimension(builder, int(t.quantized_dimension))
    return _QuantizationParameters.QuantizationParametersEnd(builder)


def single_op_model(op_name, inputs, outputs, options=None, op_version=1, description="darbgen test model"):
    """The bytes of a .tflite model with one subgraph holding one builtin operator.

    Args:
        op_name: the BuiltinOperator name, e.g. "DEPTHWISE_CONV_2D", "MEAN".
        inputs: the operator's inputs, :class:`Tensor` or None (absent optional input).
        outputs: its outputs, :class:`Tensor`.
        options: None, or (options table name, {snake_case field: value}), e.g.
            ("ReducerOptions", {"keep_dims": True}).
        op_version: the operator code's version.
    """
    code = getattr(BuiltinOperator, op_name)
    builder = flatbuffers.Builder(1024)
    tensors = [t for t in inputs if t is not None] + list(outputs)
    # Buffers: 0 is the empty sentinel; each constant tensor gets its own.
    buffer_data = [None]
    tensor_buffer = []
    for t in tensors:
        if t.data is not None:
            buffer_data.append(np.ascontiguousarray(np.asarray(t.data, _TYPES[t.dtype][1])).tobytes())
            tensor_buffer.append(len(buffer_data) - 1)
        else:
            tensor_buffer.append(0)
    buffer_offsets = []
    for data in buffer_data:
        vec = None if data is None else _bytes_vector(builder, data)
        _Buffer.BufferStart(builder)
        if vec is not None:
            _Buffer.BufferAddData(builder, vec)
        buffer_offsets.append(_Buffer.BufferEnd(builder))
    tensor_offsets = []
    for i, t in enumerate(tensors):
        name = builder.CreateString(t.name or f"t{i}")
        shape = builder.CreateNumpyVector(np.asarray(t.shape, np.int32))
        quant = _quantization(builder, t)
        _Tensor.TensorStart(builder)
        _Tensor.TensorAddShape(builder, shape)
        _Tensor.TensorAddType(builder, _TYPES[t.dtype][0])
        _Tensor.TensorAddBuffer(builder, tensor_buffer[i])
        _Tensor.TensorAddName(builder, name)
        if quant is not None:
            _Tensor.TensorAddQuantization(builder, quant)
        tensor_offsets.append(_Tensor.TensorEnd(builder))
    index = {}
    k = 0
    op_inputs = []
    for t in inputs:
        if t is None:
            op_inputs.append(-1)
        else:
            index[id(t)] = k
            op_inputs.append(k)
            k += 1
    op_outputs = list(range(k, k + len(outputs)))
    graph_inputs = [index[id(t)] for t in inputs if t is not None and t.data is None]

    opts = None if options is None else _options(builder, options)
    op_in_vec = builder.CreateNumpyVector(np.asarray(op_inputs, np.int32))
    op_out_vec = builder.CreateNumpyVector(np.asarray(op_outputs, np.int32))
    _Operator.OperatorStart(builder)
    _Operator.OperatorAddOpcodeIndex(builder, 0)
    _Operator.OperatorAddInputs(builder, op_in_vec)
    _Operator.OperatorAddOutputs(builder, op_out_vec)
    if opts is not None:
        _Operator.OperatorAddBuiltinOptionsType(builder, opts[0])
        _Operator.OperatorAddBuiltinOptions(builder, opts[1])
    operator = _Operator.OperatorEnd(builder)

    tensors_vec = _offsets_vector(builder, tensor_offsets)
    g_in_vec = builder.CreateNumpyVector(np.asarray(graph_inputs, np.int32))
    g_out_vec = builder.CreateNumpyVector(np.asarray(op_outputs, np.int32))
    ops_vec = _offsets_vector(builder, [operator])
    graph_name = builder.CreateString("main")
    _SubGraph.SubGraphStart(builder)
    _SubGraph.SubGraphAddTensors(builder, tensors_vec)
    _SubGraph.SubGraphAddInputs(builder, g_in_vec)
    _SubGraph.SubGraphAddOutputs(builder, g_out_vec)
    _SubGraph.SubGraphAddOperators(builder, ops_vec)
    _SubGraph.SubGraphAddName(builder, graph_name)
    subgraph = _SubGraph.SubGraphEnd(builder)

    _OperatorCode.OperatorCodeStart(builder)
    _OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
    _OperatorCode.OperatorCodeAddBuiltinCode(builder, code)
    _OperatorCode.OperatorCodeAddVersion(builder, op_version)
    opcode = _OperatorCode.OperatorCodeEnd(builder)

    opcodes_vec = _offsets_vector(builder, [opcode])
    subgraphs_vec = _offsets_vector(builder, [subgraph])
    buffers_vec = _offsets_vector(builder, buffer_offsets)
    desc = builder.CreateString(description)
    _Model.ModelStart(builder)
    _Model.ModelAddVersion(builder, 3)
    _Model.ModelAddOperatorCodes(builder, opcodes_vec)
    _Model.ModelAddSubgraphs(builder, subgraphs_vec)
    _Model.ModelAddDescription(builder, desc)
    _Model.ModelAddBuffers(builder, buffers_vec)
    model = _Model.ModelEnd(builder)
    builder.Finish(model, file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_tflm(model, inputs, n_outputs=1, arena_size=None):
    """Run a model once with the TFLM interpreter (tflite-micro wheel); returns its outputs.

    The arena defaults to 68 KiB plus ten times the model and four times the
    inputs (the wheel's own default, ten times the model's size, is too small
    for models without weights)."""
    from tflite_micro.python.tflite_micro import runtime

    if arena_size is None:
        arena_size = 4096 + len(model) * 10 + 4 * sum(np.asarray(x).nbytes for x in inputs) + (1 << 16)
    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    for i, x in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(x), i)
    interp.invoke()
    return [np.array(interp.get_output(i)) for i in range(n_outputs)]
