"""The recurrent kind: an LSTM or GRU run over a whole sequence
(:class:`darbgen.graph.RecurrentOp`).

Its quantization (:class:`QuantizedRecurrent`, :func:`quantize_recurrent`:
the two matrices as dense layers, the cell's int16 tables and scales), its
references (:func:`recurrent_f32`, :func:`recurrent_int`, step by step as
runtime_c/src/darb_rnn_<t>.c) and its C: the two matrices as ``dense_layer``
pairs ``<sym>_ih`` / ``<sym>_hh`` (verified on their own) and the
``recurrent`` templates' cell, with ``<sym>_reset`` / ``<sym>_step`` to stream.
"""
from dataclasses import dataclass

import numpy as np

from ..codegen.cformat import CTYPES, ITEMSIZE, CArray
from ..codegen.layer import layer_context, layer_kernel, quant_macros
from ..errors import DarbgenError
from ..graph import RecurrentOp
from ..math_f32 import QUIET, sigmoidf, tanhf
from ..qmath import (DTYPES, TensorQuant, activation_lut, lut_s16, quantize_multiplier, requantize_s8,
                     tensor_quant, tensor_range)
from .base import LayerKind, block_size_histogram, check_inputs
from .dense import QuantizedDense, dense_f32, dense_int, quantize_dense

_F = np.float32


# ----------------------------------------------------------------------------- quantization

@dataclass
class QuantizedRecurrent:
    """An LSTM / GRU run over a sequence: its two matrices as dense layers
    and, for int16 and int8, the cell's tables (see runtime_c/src/darb_rnn_s16.c):
    gates at one shared scale, Q15 sigmoid / tanh, the cell state at its own
    scale, the hidden state Q15.

    int8 layers keep that int16 cell (as TFLite's integer LSTM keeps int16
    gates and cell): the int8 input is widened exactly to int16 (``q -
    zero_point`` at the same scale, ``wide``), the weights stay int8 (16x8
    matrices), and the Q15 hidden state is requantized to the int8 output
    (``output``, symmetric, from calibration) by ``out_multiplier`` /
    ``out_shift``."""

    layer: RecurrentOp
    dtype: str
    ih: QuantizedDense = None
    hh: QuantizedDense = None
    input: TensorQuant = None
    output: TensorQuant = None
    gate: TensorQuant = None
    cell: TensorQuant = None
    sigmoid: np.ndarray = None
    tanh: np.ndarray = None
    tanh_c: np.ndarray = None
    ig_multiplier: int = 0
    ig_shift: int = 0
    wide: TensorQuant = None
    out_multiplier: int = 0
    out_shift: int = 0

    @property
    def name(self):
        return self.layer.name


Q15 = TensorQuant("int16", 1.0 / 32768, 0)
#: gate pre-activation ranges beyond this saturate sigmoid and tanh anyway
GATE_LIMIT = 8.0


def quantize_recurrent(op, dtype, input_quant=None, calib=None, percentile=None):
    """Quantize an LSTM / GRU: float32, or int16 / int8 from calibration sequences.

    int16 (16x8): the input at its calibrated int16 scale, gates at one
    shared scale (their calibrated range, at most +-8), the cell state at its
    own (at least +-1), the hidden state Q15. int8: the same cell, the int8
    input widened to int16 and the hidden state requantized to int8.
    """
    layer = op.layer
    if dtype == "float32":
        return QuantizedRecurrent(op, dtype, quantize_dense(layer.ih, dtype), quantize_dense(layer.hh, dtype))
    if dtype not in ("int16", "int8"):
        raise DarbgenError(f"{op.name}: unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if input_quant is None or input_quant.dtype != dtype:
        raise DarbgenError(f"{op.name}: {dtype} needs the input's {dtype} quantization (from calibration data)")
    wide = input_quant if dtype == "int16" else TensorQuant("int16", input_quant.scale, 0)
    gx, gh, cells, hs = op.trace_f64(calib)
    bound = min(max(np.abs(gx).max(), np.abs(gh).max(), np.abs(gx + gh).max(), 1e-3), GATE_LIMIT)
    ih = quantize_dense(layer.ih, "int16", wide, output_range=(-bound, bound))
    hh = quantize_dense(layer.hh, "int16", Q15, output_range=(-bound, bound))
    gate = ih.output
    c_max = 1.0 if cells is None else max(np.abs(cells).max(), 1.0)
    cell = tensor_quant(-c_max, c_max, "int16")
    mult, shift = quantize_multiplier(2.0 ** -30 / cell.scale)
    if shift > 0:
        raise DarbgenError(f"{op.name}: the cell-state range is too narrow for int16")
    output, out_mult, out_shift = Q15, 0, 0
    if dtype == "int8":
        seen = hs if op.sequences else hs[-1:]
        low, high = tensor_range(seen, percentile, f"{op.name} hidden states")
        h_max = min(max(-low, high, 2.0 ** -7), 1.0)
        output = TensorQuant("int8", h_max / 127.0, 0)
        out_mult, out_shift = quantize_multiplier(Q15.scale / output.scale)
    return QuantizedRecurrent(op, dtype, ih, hh, input_quant, output, gate, cell,
                              activation_lut("int16", "sigmoid", gate, Q15),
                              activation_lut("int16", "tanh", gate, Q15),
                              activation_lut("int16", "tanh", cell, Q15), mult, shift, wide, out_mult, out_shift)


# ----------------------------------------------------------------------------- reference

def _sequence_output(q, hs):
    """The op's output from every step's hidden state (T, n, H): all of them
    time first, or the last."""
    return np.concatenate(hs, axis=1) if q.layer.sequences else hs[-1]


@QUIET
def recurrent_f32(q, x, kernel="packed"):
    """An LSTM / GRU over whole sequences, step by step as the C: the two
    matrices through dense_f32, then the cell in float32 operations."""
    x = check_inputs(q, x).astype(_F)
    layer = q.layer.layer
    steps, hidden = q.layer.steps, layer.hidden
    xs = x.reshape(len(x), steps, -1)
    h = np.zeros((len(x), hidden), _F)
    c = np.zeros_like(h)
    dense_cols = kernel == "dense"
    hs = []
    for t in range(steps):
        gx = dense_f32(q.ih, xs[:, t], dense_cols)
        gh = dense_f32(q.hh, h, dense_cols)
        g = [slice(k * hidden, (k + 1) * hidden) for k in range(layer.gates)]
        if layer.kind == "lstm":
            i = sigmoidf(gx[:, g[0]] + gh[:, g[0]])
            f = sigmoidf(gx[:, g[1]] + gh[:, g[1]])
            cand = tanhf(gx[:, g[2]] + gh[:, g[2]])
            o = sigmoidf(gx[:, g[3]] + gh[:, g[3]])
            c = f * c + i * cand
            h = o * tanhf(c)
        else:
            r = sigmoidf(gx[:, g[0]] + gh[:, g[0]])
            z = sigmoidf(gx[:, g[1]] + gh[:, g[1]])
            n = tanhf(gx[:, g[2]] + r * gh[:, g[2]])
            h = (_F(1.0) - z) * n + z * h
        hs.append(h)
    return _sequence_output(q, hs).astype(_F)


def recurrent_int(q, x):
    """darb_lstm_cell_s16 / darb_gru_cell_s16 over whole sequences, with the
    two matrices through dense_int; for int8, the input widened to int16
    (darb_widen_s8) and the hidden states requantized to int8 (darb_narrow_s8)."""
    x = check_inputs(q, x).astype(np.int64)
    if q.dtype == "int8":
        x = x - q.input.zero_point
    layer = q.layer.layer
    steps, hidden = q.layer.steps, layer.hidden
    xs = x.reshape(len(x), steps, -1)
    h = np.zeros((len(x), hidden), np.int64)
    c = np.zeros_like(h)

    def sat(v):
        return np.clip(v, -32768, 32767)

    def mul_q15(a, b):
        return (a * b + (1 << 14)) >> 15

    def table(lut, v):
        return lut_s16(lut, v)

    g = [slice(k * hidden, (k + 1) * hidden) for k in range(layer.gates)]
    hs = []
    for t in range(steps):
        gx = dense_int(q.ih, xs[:, t]).astype(np.int64)
        gh = dense_int(q.hh, h).astype(np.int64)
        if layer.kind == "lstm":
            i = table(q.sigmoid, sat(gx[:, g[0]] + gh[:, g[0]]))
            f = table(q.sigmoid, sat(gx[:, g[1]] + gh[:, g[1]]))
            cand = table(q.tanh, sat(gx[:, g[2]] + gh[:, g[2]]))
            o = table(q.sigmoid, sat(gx[:, g[3]] + gh[:, g[3]]))
            c = sat(mul_q15(f, c) + requantize_s8(i * cand, q.ig_multiplier, q.ig_shift))
            h = sat(mul_q15(o, table(q.tanh_c, c)))
        else:
            r = table(q.sigmoid, sat(gx[:, g[0]] + gh[:, g[0]]))
            z = table(q.sigmoid, sat(gx[:, g[1]] + gh[:, g[1]]))
            n = table(q.tanh, sat(gx[:, g[2]] + mul_q15(r, gh[:, g[2]])))
            h = sat(((32768 - z) * n + z * h + (1 << 14)) >> 15)
        hs.append(h)
    y = _sequence_output(q, hs)
    if q.dtype == "int8":
        return np.clip(requantize_s8(y, q.out_multiplier, q.out_shift), -128, 127).astype(np.int8)
    return y.astype(np.int16)


# ----------------------------------------------------------------------------- C

def recurrent_context(q, sym, prefix):
    """The ``recurrent`` templates' context (the cell; the matrices have their own)."""
    op = q.layer
    layer = op.layer
    hidden, inputs, gates = layer.hidden, layer.w_ih.shape[1], layer.gates * layer.hidden
    in_t = CTYPES[q.dtype][0]
    st_t = "float" if q.dtype == "float32" else "int16_t"       # int8 layers run the int16 cell
    state = (hidden * (2 if layer.kind == "lstm" else 1) + 2 * gates) * ITEMSIZE[st_t]
    if q.dtype == "int8":
        state += inputs * ITEMSIZE[st_t]                         # the widened input step
    arrays = []
    if q.dtype != "float32":
        arrays = [CArray(f"{sym}_sigmoid", "int16_t", q.sigmoid, "params"),
                  CArray(f"{sym}_tanh", "int16_t", q.tanh, "params")]
        if layer.kind == "lstm":
            arrays.append(CArray(f"{sym}_tanh_c", "int16_t", q.tanh_c, "params"))
    description = (f"{layer.kind.upper()} over {op.steps} steps of {inputs} inputs, {hidden} hidden, "
                   f"{layer.ih.kept + layer.hh.kept} of {layer.ih.weight.size + layer.hh.weight.size} weights kept")
    ctx = {"layer": op, "rnn": layer, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": prefix, "arrays": arrays,
           "in_t": in_t, "st_t": st_t, "hidden": hidden, "inputs": inputs, "gates": gates, "steps": op.steps,
           "header": f"{sym}.h", "macros": quant_macros(q), "description": description, "state_bytes": state}
    return ctx



class RecurrentKind(LayerKind):
    """An LSTM / GRU over a sequence: :class:`~darbgen.graph.RecurrentOp`, :class:`QuantizedRecurrent`."""

    kind = "recurrent"
    op_classes = (RecurrentOp,)
    quantized_classes = (QuantizedRecurrent,)
    streaming = True

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        return quantize_recurrent(op, dtype, in_q, calib, percentile)

    @QUIET
    def run(self, q, x, kernel="packed"):
        return recurrent_f32(q, x, kernel) if q.dtype == "float32" else recurrent_int(q, x)

    @QUIET
    def exact(self, q, x):
        y = q.layer.forward_f64(x)[1]
        return y, np.ones_like(y)                 # hidden states live in (-1, 1)

    def emit(self, q, sym, e):
        parts = []
        for part_q, part in ((q.ih, "ih"), (q.hh, "hh")):
            part_sym = f"{sym}_{part}"
            kernel = layer_kernel(part_q.layer, e.kernel)
            pctx, _ = layer_context(part_q, part_sym, kernel, e.prefix)
            e.render("dense_layer", part_sym, pctx)
            parts.append(e.layer(part_q, part_sym, kernel, pctx["arrays"],
                                 f"{pctx['description']} ({part} matrix of {q.name})"))
        ctx = recurrent_context(q, sym, e.prefix)
        e.render("recurrent", sym, ctx)
        g = e.layer(q, sym, "recurrent", ctx["arrays"], ctx["description"])
        g.parts, g.state_bytes, g.rtol = parts, ctx["state_bytes"], 1e-4
        return g

    def runtime(self, g):
        # int8 layers run the int16 cell
        return {("rnn", "float32" if g.dtype == "float32" else "int16")}

    def report_kind(self, g):
        return g.layer.layer.kind

    def report_shape(self, g):
        layer = g.layer
        return [layer.steps, layer.layer.w_ih.shape[1], layer.layer.hidden]

    def report_fields(self, g):
        mats = [p.layer for p in g.parts]
        kept = sum(m.kept for m in mats)
        return {"kept": kept, "ratio": sum(m.mask.size for m in mats) / max(kept, 1),
                "block_sizes": block_size_histogram(np.concatenate([m.block_sizes for m in mats])
                                                    if all(m.block_sizes is not None for m in mats) else None),
                "state_bytes": g.state_bytes}
