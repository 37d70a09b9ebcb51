"""Single-op .tflite models built with the `tflite` package's flatbuffer
builders, to run ADD, SOFTMAX, CONCATENATION, PAD, QUANTIZE and DEQUANTIZE in
the real TensorFlow Lite Micro (the tflite-micro wheel) and compare with
darbgen's NumPy references."""
from dataclasses import dataclass

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

_TYPES = {np.dtype(np.float32): TensorType.FLOAT32, np.dtype(np.int8): TensorType.INT8,
          np.dtype(np.int32): TensorType.INT32}


@dataclass
class T:
    """One tensor: shape, dtype, optional (scale, zero point), optional constant data."""

    shape: tuple
    dtype: type
    scale: float = None
    zero_point: int = 0
    data: np.ndarray = None


def _ints(b, start, values):
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt32(int(v))
    return b.EndVector()


def _floats(b, start, values):
    start(b, len(values))
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _longs(b, start, values):
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt64(int(v))
    return b.EndVector()


def _bytes(b, data):
    raw = np.ascontiguousarray(data).tobytes()
    tflite.BufferStartDataVector(b, len(raw))
    for byte in reversed(raw):
        b.PrependUint8(byte)
    return b.EndVector()


def _options(b, kind, fields):
    """(BuiltinOptions type, offset) of an options table."""
    if kind == "add":
        tflite.AddOptionsStart(b)
        tflite.AddOptionsAddFusedActivationFunction(b, fields.get("activation", 0))
        return BuiltinOptions.AddOptions, tflite.AddOptionsEnd(b)
    if kind == "softmax":
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, fields.get("beta", 1.0))
        return BuiltinOptions.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
    if kind == "concat":
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, fields["axis"])
        tflite.ConcatenationOptionsAddFusedActivationFunction(b, 0)
        return BuiltinOptions.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)
    if kind == "pad":
        tflite.PadOptionsStart(b)
        return BuiltinOptions.PadOptions, tflite.PadOptionsEnd(b)
    if kind == "padv2":
        tflite.PadV2OptionsStart(b)
        return BuiltinOptions.PadV2Options, tflite.PadV2OptionsEnd(b)
    if kind == "quantize":
        tflite.QuantizeOptionsStart(b)
        return BuiltinOptions.QuantizeOptions, tflite.QuantizeOptionsEnd(b)
    if kind == "dequantize":
        tflite.DequantizeOptionsStart(b)
        return BuiltinOptions.DequantizeOptions, tflite.DequantizeOptionsEnd(b)
    raise ValueError(kind)


_OPCODES = {"add": BuiltinOperator.ADD, "softmax": BuiltinOperator.SOFTMAX,
            "concat": BuiltinOperator.CONCATENATION, "pad": BuiltinOperator.PAD, "padv2": BuiltinOperator.PADV2,
            "quantize": BuiltinOperator.QUANTIZE, "dequantize": BuiltinOperator.DEQUANTIZE}


def single_op(kind, inputs, outputs, **fields):
    """A .tflite flatbuffer (bytes) with one operator ``kind`` reading ``inputs``
    (list of :class:`T`; those with data are constants) and writing ``outputs``."""
    b = flatbuffers.Builder(4096)
    tensors = list(inputs) + list(outputs)
    # buffers: 0 is the empty sentinel, then one per constant tensor
    buffer_offsets = []
    tflite.BufferStart(b)
    buffer_offsets.append(tflite.BufferEnd(b))
    buffer_of = []
    for t in tensors:
        if t.data is None:
            buffer_of.append(0)
            continue
        data = _bytes(b, np.asarray(t.data, t.dtype))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        buffer_offsets.append(tflite.BufferEnd(b))
        buffer_of.append(len(buffer_offsets) - 1)
    tensor_offsets = []
    for i, t in enumerate(tensors):
        name = b.CreateString(f"t{i}")
        shape = _ints(b, tflite.TensorStartShapeVector, t.shape)
        quant = None
        if t.scale is not None:
            scale = _floats(b, tflite.QuantizationParametersStartScaleVector, [t.scale])
            zp = _longs(b, tflite.QuantizationParametersStartZeroPointVector, [t.zero_point])
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[np.dtype(t.dtype)])
        tflite.TensorAddBuffer(b, buffer_of[i])
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))
    n_in = len(inputs)
    graph_inputs = [i for i, t in enumerate(inputs) if t.data is None]
    op_inputs = _ints(b, tflite.OperatorStartInputsVector, list(range(n_in)))
    op_outputs = _ints(b, tflite.OperatorStartOutputsVector, list(range(n_in, len(tensors))))
    opt_type, opt = _options(b, kind, fields)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_inputs)
    tflite.OperatorAddOutputs(b, op_outputs)
    tflite.OperatorAddBuiltinOptionsType(b, opt_type)
    tflite.OperatorAddBuiltinOptions(b, opt)
    op = tflite.OperatorEnd(b)

    tflite.SubGraphStartTensorsVector(b, len(tensor_offsets))
    for off in reversed(tensor_offsets):
        b.PrependUOffsetTRelative(off)
    tensors_vec = b.EndVector()
    sg_inputs = _ints(b, tflite.SubGraphStartInputsVector, graph_inputs)
    sg_outputs = _ints(b, tflite.SubGraphStartOutputsVector, list(range(n_in, len(tensors))))
    tflite.SubGraphStartOperatorsVector(b, 1)
    b.PrependUOffsetTRelative(op)
    ops_vec = b.EndVector()
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, sg_inputs)
    tflite.SubGraphAddOutputs(b, sg_outputs)
    tflite.SubGraphAddOperators(b, ops_vec)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    code = _OPCODES[kind]
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)

    tflite.ModelStartOperatorCodesVector(b, 1)
    b.PrependUOffsetTRelative(opcode)
    codes_vec = b.EndVector()
    tflite.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs_vec = b.EndVector()
    tflite.ModelStartBuffersVector(b, len(buffer_offsets))
    for off in reversed(buffer_offsets):
        b.PrependUOffsetTRelative(off)
    buffers_vec = b.EndVector()
    description = b.CreateString("darbgen test")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddBuffers(b, buffers_vec)
    tflite.ModelAddDescription(b, description)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def run_tflm(model, inputs):
    """Run a model in TensorFlow Lite Micro once per sample: ``inputs`` is a
    list of batched arrays (n, ...) for the graph inputs; returns the batched
    outputs of graph output 0."""
    from tflite_micro.python.tflite_micro import runtime

    per_sample = sum(x[0].nbytes for x in inputs)
    interp = runtime.Interpreter.from_bytes(model, arena_size=16384 + 16 * per_sample)
    outs = []
    for k in range(inputs[0].shape[0]):
        for i, x in enumerate(inputs):
            interp.set_input(np.ascontiguousarray(x[k:k + 1]), i)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return np.concatenate(outs, axis=0)
