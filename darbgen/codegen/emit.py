"""Writing C for quantized dense layers from the jinja2 templates.

:func:`generate` turns layers into a :class:`CModule`: the text of every file
(one header/source pair per layer, a header listing them, and the runtime
files they need, copied from ``runtime_c/``), held in memory until
:meth:`CModule.write` puts them in a folder atomically. The same input always
gives the same bytes: no timestamps, no dict-order or path dependence beyond
the command line recorded in the header comment.
"""
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DarbgenError
from ..files import move_into_place
from ..formats import encode
from ..graph import ConvOp, Dense, Model, PoolOp, RecurrentOp, Softmax
from ..quantize import (QuantizedDense, QuantizedPool, QuantizedRecurrent, QuantizedSoftmax, is_chain,
                        quantize_network)
from ..resources import runtime_c_dir, templates_dir
from .names import c_identifier, unique_identifiers

KERNELS = ("packed", "unrolled", "dense", "csr")
CTYPES = {"int8": ("int8_t", "int8_t"), "int16": ("int16_t", "int8_t"), "float32": ("float", "float")}
SUFFIX = {"int8": "s8", "int16": "s16", "float32": "f32"}
BIAS_CTYPE = {"int8": "int32_t", "int16": "int64_t", "float32": "float"}
ACTIVATION_ENUM = {"none": "DARB_ACT_NONE", "relu": "DARB_ACT_RELU", "relu6": "DARB_ACT_RELU6",
                   "sigmoid": "DARB_ACT_SIGMOID", "tanh": "DARB_ACT_TANH"}
ROLES = ("values", "index", "metadata", "params")
_ITEMSIZE = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
             "int64_t": 8, "float": 4}
_PER_LINE = {1: 16, 2: 12, 4: 8, 8: 4}
MAX_DIM = 65535


@dataclass
class CArray:
    """One static const array of a generated layer."""

    symbol: str
    ctype: str
    values: np.ndarray
    role: str

    @property
    def nbytes(self):
        return int(self.values.size) * _ITEMSIZE[self.ctype]

    @property
    def initializer(self):
        return c_initializer(self.values, self.ctype)


@dataclass
class GeneratedLayer:
    """What was generated for one layer."""

    quantized: QuantizedDense
    symbol: str
    kernel: str
    header: str
    source: str
    arrays: list
    description: str = ""
    parts: list = field(default_factory=list)     # a recurrent layer's two matrices (verified on their own)
    state_bytes: int = 0                          # static RAM the layer keeps (recurrent state, gate buffers)

    @property
    def name(self):
        return self.quantized.name

    @property
    def layer(self):
        return self.quantized.layer

    @property
    def in_ctype(self):
        return CTYPES[self.quantized.dtype][0]

    out_ctype = in_ctype

    @property
    def in_bytes(self):
        return self.layer.in_size * _ITEMSIZE[self.in_ctype]

    @property
    def out_bytes(self):
        return self.layer.out_size * _ITEMSIZE[self.in_ctype]

    @property
    def dtype(self):
        return self.quantized.dtype

    @property
    def run_function(self):
        return f"{self.symbol}_run"

    #: float32 tolerance against float64 (relative to the rounding scale)
    rtol = 1e-5

    def data_bytes(self):
        """Bytes of const data by role (values, index, metadata, params) and total."""
        out = dict.fromkeys(ROLES, 0)
        for a in self.arrays + [a for p in self.parts for a in p.arrays]:
            out[a.role] += a.nbytes
        out["total"] = sum(out[r] for r in ROLES)
        return out

    def reference(self, x):
        """What the C must output for inputs ``x`` (bit for bit)."""
        from ..reference import run

        return run(self.quantized, x, self.kernel)

    def exact(self, x):
        """float32 ops: the float64 result and the scale of rounding errors."""
        from ..reference import exact

        return exact(self.quantized, x)

    def make_inputs(self, n_random, seed):
        from ..verify import make_inputs

        return make_inputs(self.quantized, n_random, seed)


@dataclass
class ModelUnit:
    """The whole chain of a module as one run function, ``<prefix>_run``."""

    prefix: str
    ops: list                # the GeneratedLayer of every op, in order
    plan: dict               # memory plan (see plan_memory)
    calib_inputs: np.ndarray = None

    name = "(model)"
    rtol = 1e-4
    kernel = "model"

    @property
    def symbol(self):
        return self.prefix

    @property
    def run_function(self):
        return f"{self.prefix}_run"

    @property
    def dtype(self):
        return self.ops[0].dtype

    @property
    def in_ctype(self):
        return self.ops[0].in_ctype

    out_ctype = in_ctype

    @property
    def layer(self):
        """Shape information (rows = outputs, cols = inputs) like a layer's."""
        return _Shape(self.ops[-1].layer.out_size, self.ops[0].layer.in_size)

    @property
    def in_bytes(self):
        return self.ops[0].in_bytes

    @property
    def out_bytes(self):
        return self.ops[-1].out_bytes

    @property
    def arena_bytes(self):
        return self.plan["arena"] * _ITEMSIZE[self.in_ctype]

    def reference(self, x):
        for g in self.ops:
            x = g.reference(x)
        return x

    def exact(self, x):
        """The float64 model, and the scale of the float32 rounding errors it
        accumulates: propagated op by op as |W| (|x| + scale) + |b| through
        dense and convolution layers (whose activations are 1-Lipschitz),
        pooled with the values through pooling, and relative to the output
        (times the incoming scale) through softmax."""
        from ..quantize import QuantizedPool, QuantizedSoftmax
        from ..reference import exact

        y = np.asarray(x, np.float64)
        scale = np.zeros_like(y)
        for g in self.ops:
            q = g.quantized
            if isinstance(q, QuantizedPool):
                y, scale = q.layer.forward_f64(y)[1], q.layer.forward_f64(scale)[1]
            elif isinstance(q, QuantizedSoftmax):
                y = exact(q, y)[0]
                grow = 1.0 + 2.0 * scale.max(axis=1, keepdims=True)
                scale = np.broadcast_to(np.abs(y).max(axis=1, keepdims=True) * grow, y.shape)
            else:
                y, scale = exact(q, y)[0], exact(q, np.abs(y) + scale)[1]
        return y, scale

    def make_inputs(self, n_random, seed):
        x = self.ops[0].make_inputs(n_random, seed)
        if self.calib_inputs is not None:
            x = np.concatenate([x, self.calib_inputs.astype(x.dtype)])
        return x


@dataclass
class _Shape:
    out_size: int
    in_size: int


@dataclass
class CModule:
    """Generated C, in memory. ``files`` maps file names to their text."""

    prefix: str
    dtype: str
    kernel: str
    layers: list
    files: dict
    runtime_sources: list
    command: str = ""
    model: ModelUnit = None
    extra: dict = field(default_factory=dict)

    @property
    def units(self):
        """What the test harness runs: every op (a recurrent layer's matrices first), then the whole model."""
        units = [u for g in self.layers for u in g.parts + [g]]
        return units + ([self.model] if self.model is not None else [])

    @property
    def sources(self):
        """The .c files to compile (generated layers and runtime)."""
        return sorted(n for n in self.files if n.endswith(".c"))

    def write(self, out_dir, force=False):
        """Write every file to ``out_dir`` through a temporary folder moved into place whole.

        An existing non-empty ``out_dir`` is replaced only with ``force``.
        """
        out = Path(out_dir).absolute()
        if out.exists() and not out.is_dir():
            raise DarbgenError(f"{out_dir}: exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise DarbgenError(f"{out_dir}: exists and is not empty; pass --force to replace it")
        if not out.parent.is_dir():
            raise DarbgenError(f"{out_dir}: the folder {out.parent} does not exist")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.darbgen-", dir=out.parent))
        try:
            self.write_files(tmp)
            move_into_place(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def write_files(self, folder):
        """Write every file into an existing folder (no atomicity; used for build folders)."""
        folder = Path(folder)
        for name, text in sorted(self.files.items()):
            (folder / name).write_text(text, encoding="ascii")


# ----------------------------------------------------------------------------- formatting

def c_literal(value, ctype):
    """One value as a C literal of ``ctype`` that reads back exactly."""
    if ctype == "float":
        text = "%.9g" % float(value)      # 9 significant digits round-trip every float32
        if not any(ch in text for ch in ".en"):
            text += ".0"
        return text + "f"
    return str(int(value))


def c_initializer(values, ctype, indent="    "):
    """The body of an array initializer, a fixed number of values per line."""
    per_line = _PER_LINE[_ITEMSIZE[ctype]]
    flat = np.asarray(values).ravel()
    items = [c_literal(v, ctype) for v in flat.tolist()]
    lines = [indent + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join(lines)


def c_comment(text):
    """Text safe inside a C block comment: ASCII only, no comment terminator."""
    text = str(text).encode("ascii", "replace").decode("ascii")
    return "".join(ch if ch.isprintable() else "?" for ch in text).replace("*/", "* /").replace("/*", "/ *")


def c_float(value):
    """A float for a macro (scales): shortest text that reads back as the same double."""
    return repr(float(value))


# ----------------------------------------------------------------------------- layers

def _check_size(layer):
    if layer.rows > MAX_DIM or layer.cols > MAX_DIM:
        raise DarbgenError(f"{layer.name}: {layer.rows} x {layer.cols} is beyond the C kernels' limit of "
                           f"{MAX_DIM} rows and columns; split the layer")


def _values_dtype(q):
    return np.float32 if q.dtype == "float32" else np.int8


def _param_arrays(q, sym):
    bias_t = BIAS_CTYPE[q.dtype]
    arrays = [CArray(f"{sym}_bias", bias_t, np.asarray(q.bias), "params")]
    if q.dtype != "float32":
        arrays.append(CArray(f"{sym}_multiplier", "int32_t", q.multiplier, "params"))
        arrays.append(CArray(f"{sym}_shift", "int8_t", q.shift, "params"))
        if q.lut is not None:
            arrays.append(CArray(f"{sym}_lut", CTYPES[q.dtype][0], q.lut, "params"))
    return arrays


def _pattern_arrays(q, sym, kernel):
    layer = q.layer
    w = q.weight.astype(_values_dtype(q))
    wt = CTYPES[q.dtype][1]
    if kernel == "dense":
        return [CArray(f"{sym}_weights", wt, w, "values")], {}
    if kernel == "unrolled":
        r, c = np.nonzero(layer.mask)
        return [CArray(f"{sym}_values", wt, w[r, c], "values")], {}
    if kernel == "csr":
        enc = encode(w, "csr", mask=layer.mask)
        col = enc.arrays["col_idx"]
        col_t = "uint8_t" if col.dtype == np.uint8 else "uint16_t"
        ptr = enc.arrays["row_ptr"].astype(np.int64)
        ptr_t = "uint16_t" if ptr[-1] <= 0xFFFF else "uint32_t"
        arrays = [CArray(f"{sym}_values", wt, enc.arrays["values"], "values"),
                  CArray(f"{sym}_col", col_t, col, "index"),
                  CArray(f"{sym}_row_ptr", ptr_t, ptr, "metadata")]
        return arrays, {"col_bits": 8 if col_t == "uint8_t" else 16, "ptr_bits": 16 if ptr_t == "uint16_t" else 32}
    block_sizes = layer.block_sizes
    if block_sizes is None:
        block_sizes = np.ones(layer.rows, np.int64)      # an unpruned layer: blocks of 1, no offsets at all
    # A block wider than the row is one block of the whole row: the same kept
    # weight, stored with the row's width (and 16-bit class tables stay valid).
    enc = encode(w, "darb", mask=layer.mask, block_sizes=np.minimum(block_sizes, layer.cols))
    a = enc.arrays
    # The int8 kernel reads offsets 32 bits at a time from any byte: 3 readable
    # bytes after the last one keep those reads inside the array.
    offsets = a["offsets"]
    if offsets.size:
        offsets = np.concatenate([offsets, np.zeros(OFFSET_TAIL_BYTES, np.uint8)])
    arrays = [CArray(f"{sym}_values", wt, a["values"], "values"),
              CArray(f"{sym}_offsets", "uint8_t", offsets, "index"),
              CArray(f"{sym}_class_block", "uint16_t", a["class_block"], "metadata"),
              CArray(f"{sym}_class_rows", "uint16_t", a["class_rows"], "metadata"),
              CArray(f"{sym}_class_start", "uint32_t", a["class_start"], "metadata"),
              CArray(f"{sym}_row_order", "uint16_t", a["row_order"], "metadata")]
    return arrays, {"n_classes": int(a["class_block"].size), "classes": enc.params["classes"]}


#: Zero bytes after a packed layer's offsets (darb_fc_s8 loads 4 bytes from any offset byte).
OFFSET_TAIL_BYTES = 3

#: Unrolled code is split into functions of about this many multiply-adds:
#: compilers optimise one huge function in superlinear time (512 x 512 at 1/16
#: took arm-none-eabi-gcc -O2 83 s as one function, a few seconds in parts).
UNROLLED_PART_MACS = 512


def _unrolled_parts(layer):
    """Rows grouped into parts of consecutive rows; offsets into the values are
    relative to the part's first value."""
    parts = []
    current = None
    start = 0
    for r in range(layer.rows):
        cols = np.flatnonzero(layer.mask[r]).tolist()
        if current is None or (current["macs"] and current["macs"] + len(cols) > UNROLLED_PART_MACS):
            current = {"index": len(parts), "start": start, "macs": 0, "rows": []}
            parts.append(current)
        current["rows"].append({"index": r, "cols": cols, "offset": current["macs"]})
        current["macs"] += len(cols)
        start += len(cols)
    return parts


def _geometry_fields(layer, pad_value):
    """The darb_conv_geometry initializer of a convolution or pooling op, in field order."""
    c, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    kh, kw = layer.kernel_size
    top, _, left, _ = layer.padding
    fields = [c, h, w, oh, ow, kh, kw, layer.stride[0], layer.stride[1], layer.dilation[0], layer.dilation[1],
              top, left]
    if max(fields) > MAX_DIM:
        raise DarbgenError(f"{layer.name}: a convolution or pooling dimension exceeds {MAX_DIM}")
    return fields + [pad_value]


def _conv_geometry(q):
    """The darb_conv_geometry of a convolution op, and what unrolled code needs."""
    layer = q.layer
    c, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    kh, kw = layer.kernel_size
    top, _, left, _ = layer.padding
    pad_value = q.input.zero_point if q.dtype == "int8" else 0
    fields = _geometry_fields(layer, pad_value)
    taps = [(j // (kh * kw), (j % (kh * kw)) // kw * layer.dilation[0], (j % kw) * layer.dilation[1])
            for j in range(layer.cols)]
    return {"fields": fields, "c": c, "h": h, "w": w, "oh": oh, "ow": ow, "sh": layer.stride[0],
            "sw": layer.stride[1], "top": top, "left": left, "pad": pad_value, "taps": taps}


def _describe(layer):
    if isinstance(layer, ConvOp):
        kh, kw = layer.kernel_size
        return (f"conv {layer.rows} x {layer.in_shape[0]} x {kh} x {kw} on "
                f"{' x '.join(map(str, layer.in_shape))} -> {' x '.join(map(str, layer.out_shape))}, "
                f"stride {layer.stride[0]}x{layer.stride[1]}, padding {'/'.join(map(str, layer.padding))}, "
                f"dilation {layer.dilation[0]}x{layer.dilation[1]}")
    return f"dense {layer.rows} x {layer.cols}"


def _quant_macros(q):
    if q.dtype == "float32":
        return []
    return [("INPUT_SCALE", c_float(q.input.scale)), ("INPUT_ZERO_POINT", f"({q.input.zero_point})"),
            ("OUTPUT_SCALE", c_float(q.output.scale)), ("OUTPUT_ZERO_POINT", f"({q.output.zero_point})")]


def _layer_context(q, sym, kernel, prefix):
    layer = q.layer
    _check_size(layer)
    pattern, info = _pattern_arrays(q, sym, kernel)
    arrays = [a for a in pattern + _param_arrays(q, sym)]
    emitted = {a.symbol: a for a in arrays if a.values.size > 0}
    in_t, w_t = CTYPES[q.dtype]
    sfx = SUFFIX[q.dtype]
    conv = _conv_geometry(q) if isinstance(layer, ConvOp) else None
    op = "conv" if conv else "fc"
    ctx = {
        "layer": layer, "q": q, "sym": sym, "SYM": sym.upper(), "kernel": kernel, "prefix": prefix,
        "arrays": [a for a in arrays if a.symbol in emitted],
        "ref": lambda name: (f"{sym}_{name}" if f"{sym}_{name}" in emitted else "0"),
        "in_t": in_t, "w_t": w_t, "acc_t": BIAS_CTYPE[q.dtype], "sfx": sfx,
        "macros": _quant_macros(q), "info": info,
        "activation_enum": ACTIVATION_ENUM[layer.activation],
        "parts": _unrolled_parts(layer) if kernel == "unrolled" else [],
        "header": f"{sym}.h",
        "parts_macs": UNROLLED_PART_MACS,
        "runtime_call": {"packed": f"darb_{op}_{sfx}", "csr": f"darb_csr_{op}_{sfx}",
                         "dense": f"darb_dense_{op}_{sfx}", "unrolled": None}[kernel],
        "conv": conv, "description": _describe(layer),
    }
    return ctx, arrays


# ----------------------------------------------------------------------------- environment

_ENV = None


def environment():
    """The jinja2 environment over darbgen's templates (strict: an unknown name is an error)."""
    global _ENV
    if _ENV is None:
        import jinja2

        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
        _ENV.filters["c_comment"] = c_comment
    return _ENV


def runtime_files(kernels):
    """The runtime_c files a module needs: {name: text}, for ``kernels``, a set
    of (kernel, dtype) pairs ("packed", "csr", "dense", "conv", "softmax",
    "pool", "rnn"; "unrolled" needs only the common files)."""
    root = runtime_c_dir()
    names = ["include/darb.h", "src/darb_output.c", "src/darb_math_f32.c"]
    for kernel, dtype in sorted(set(kernels)):
        sfx = SUFFIX[dtype]
        if kernel == "conv":
            names += ["src/darb_internal.h", f"src/darb_conv_{sfx}.c"]
        elif kernel == "packed":
            names += ["src/darb_internal.h", f"src/darb_fc_{sfx}.c"]
        elif kernel == "csr":
            names.append(f"src/darb_csr_fc_{sfx}.c")
        elif kernel == "dense":
            names += ["src/darb_internal.h", f"src/darb_dense_fc_{sfx}.c"]
        elif kernel == "softmax":
            names.append("src/darb_softmax.c")
        elif kernel == "pool":
            names.append("src/darb_pool.c")
        elif kernel == "rnn":
            names.append(f"src/darb_rnn_{sfx}.c")
    return {Path(n).name: (root / n).read_text(encoding="ascii") for n in sorted(set(names))}


def _as_quantized(layers, dtype, calib, percentile):
    if isinstance(layers, Model):
        layers = layers.ops()
    layers = list(layers)
    if not layers:
        raise DarbgenError("nothing to generate: no layers given")
    if all(isinstance(x, (QuantizedDense, QuantizedSoftmax, QuantizedPool, QuantizedRecurrent)) for x in layers):
        if len({q.dtype for q in layers}) != 1:
            raise DarbgenError("all layers of one module must have the same dtype")
        return layers
    if all(isinstance(x, (Dense, Softmax, ConvOp, PoolOp, RecurrentOp)) for x in layers):
        return quantize_network(layers, dtype, calib, percentile)
    raise DarbgenError("generate takes a darbgen.graph.Model, or Dense / Softmax layers (or their quantized "
                       "forms from quantize_network)")


def _softmax_context(q, sym, prefix):
    if q.layer.size > MAX_DIM:
        raise DarbgenError(f"{q.name}: softmax over {q.layer.size} values is beyond the C kernels' limit of "
                           f"{MAX_DIM}")
    arrays = []
    if q.dtype != "float32":
        arrays.append(CArray(f"{sym}_exp", "int32_t", q.table, "params"))
    in_t = CTYPES[q.dtype][0]
    macros = _quant_macros(q)
    ctx = {"layer": q.layer, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": prefix, "arrays": arrays,
           "in_t": in_t, "sfx": SUFFIX[q.dtype], "macros": macros, "header": f"{sym}.h"}
    return ctx, arrays


def _pool_context(q, sym, prefix):
    layer = q.layer
    kh, kw = layer.kernel_size
    fields = _geometry_fields(layer, 0)
    if kh * kw > (1 << 23):
        raise DarbgenError(f"{layer.name}: a pooling window of {kh * kw} values could overflow the int8 sum "
                           f"(at most 2^23)")
    ctx = {"layer": layer, "q": q, "sym": sym, "SYM": sym.upper(), "prefix": prefix, "arrays": [],
           "in_t": CTYPES[q.dtype][0], "sfx": SUFFIX[q.dtype], "macros": _quant_macros(q), "header": f"{sym}.h",
           "fields": fields,
           "description": (f"{layer.kind} pooling {kh} x {kw} on {' x '.join(map(str, layer.in_shape))} -> "
                           f"{' x '.join(map(str, layer.out_shape))}, stride {layer.stride[0]}x{layer.stride[1]}, "
                           f"padding {'/'.join(map(str, layer.padding))}")}
    return ctx, []


def _recurrent_context(q, sym, prefix):
    op = q.layer
    layer = op.layer
    hidden, inputs, gates = layer.hidden, layer.w_ih.shape[1], layer.gates * layer.hidden
    in_t = CTYPES[q.dtype][0]
    st_t = "float" if q.dtype == "float32" else "int16_t"       # int8 layers run the int16 cell
    state = (hidden * (2 if layer.kind == "lstm" else 1) + 2 * gates) * _ITEMSIZE[st_t]
    if q.dtype == "int8":
        state += inputs * _ITEMSIZE[st_t]                        # the widened input step
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
           "header": f"{sym}.h", "macros": _quant_macros(q), "description": description, "state_bytes": state}
    return ctx


def plan_memory(ops):
    """Where each tensor of a chain lives: the model's ``in``, its ``out``, or an
    offset (in elements) in one static arena, reusing space once a tensor is dead.

    Tensor k is op k's input (tensor 0 is ``in``, the last is ``out``). Softmax
    works in place, so it shares its input's buffer (and the op before a final
    softmax writes straight into ``out``).
    """
    n = len(ops)
    where = [None] * (n + 1)
    where[0], where[n] = "in", "out"
    in_place = [isinstance(getattr(op, "layer", op), Softmax) for op in ops]
    k = n
    while k > 1 and in_place[k - 1]:          # a trailing in-place op: its input is `out` too
        where[k - 1] = "out"
        k -= 1
    alias = {}
    for i in range(1, n):
        if where[i] is None and in_place[i] and i + 1 < n and where[i + 1] is None:
            alias[i + 1] = i                   # op i writes its output over its input
    live = []                                  # (offset, size, first op, last op)
    size = 0
    for t in range(1, n):
        if where[t] is not None or t in alias:
            continue
        last = t
        while last + 1 in alias:
            last += 1
        elems = getattr(ops[t - 1], "layer", ops[t - 1]).out_size
        busy = sorted((o, s_) for o, s_, first, end in live if not (end < t - 1 or first > last))
        offset = 0
        for o, s_ in busy:
            if offset + elems <= o:
                break
            offset = max(offset, o + s_)
        live.append((offset, elems, t - 1, last))
        where[t] = offset
        size = max(size, offset + elems)
    for t, src in sorted(alias.items()):
        where[t] = where[src]
    return {"tensors": where, "arena": size}


def generate(layers, *, dtype="int8", kernel="packed", prefix="model", calib=None, percentile=None, command=None,
             chain=None):
    """Generate C for a list of dense layers.

    Args:
        layers: :class:`~darbgen.graph.Dense` layers (quantized here from
            ``calib``) or :class:`~darbgen.quantize.QuantizedDense` layers.
        dtype: "int8", "int16" (16x8) or "float32".
        kernel: "packed" (DARB, generic kernel over packed offsets),
            "unrolled" (straight-line code, columns as constants), "dense" or
            "csr" (the baselines).
        prefix: the model name; every C symbol starts with it.
        calib: calibration inputs for int types (see
            :func:`darbgen.quantize.quantize_network`).
        percentile: calibration range by percentile instead of min/max.
        command: the call recorded in the files' header comment.
        chain: also write ``<prefix>_run`` running the layers one after the
            other. Default: for a Model, or for layers whose sizes chain and
            that were calibrated as a chain (one calibration array); never
            for layers calibrated one by one (a dict), whose quantizations do
            not connect.

    Returns:
        a :class:`CModule` (write it with ``.write(folder)``, check it with
        :func:`darbgen.verify`).
    """
    if kernel not in KERNELS:
        raise DarbgenError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    prefix = c_identifier(prefix, "model name")
    if chain is None:
        chain = isinstance(layers, Model) or not isinstance(calib, dict)
    qs = _as_quantized(layers, dtype, calib, percentile)
    dtype = qs[0].dtype
    symbols = unique_identifiers([q.name for q in qs], prefix)
    env = environment()
    command = command or f"darbgen.generate(dtype={dtype!r}, kernel={kernel!r}, prefix={prefix!r})"
    banner = {"version": __version__, "command": command}
    files = {}
    generated = []
    notes = []
    for q in qs:
        sym = symbols[q.name]
        if isinstance(q, QuantizedSoftmax):
            ctx, arrays = _softmax_context(q, sym, prefix)
            template = "softmax"
        elif isinstance(q, QuantizedPool):
            ctx, arrays = _pool_context(q, sym, prefix)
            template = "pool"
        elif isinstance(q, QuantizedRecurrent):
            parts = []
            for part_q, part in ((q.ih, "ih"), (q.hh, "hh")):
                part_kernel = _layer_kernel(part_q.layer, kernel)
                pctx, _ = _layer_context(part_q, f"{sym}_{part}", part_kernel, prefix)
                pctx["banner"] = banner
                files[f"{sym}_{part}.h"] = env.get_template("dense_layer.h.j2").render(pctx)
                files[f"{sym}_{part}.c"] = env.get_template("dense_layer.c.j2").render(pctx)
                parts.append(GeneratedLayer(part_q, f"{sym}_{part}", part_kernel, f"{sym}_{part}.h",
                                            f"{sym}_{part}.c", pctx["arrays"],
                                            f"{pctx['description']} ({part} matrix of {q.name})"))
            ctx = _recurrent_context(q, sym, prefix)
            template = "recurrent"
        else:
            layer_kernel = _layer_kernel(q.layer, kernel)
            if layer_kernel != kernel:
                notes.append(f"{q.name}: not pruned, so it uses the dense kernel" if layer_kernel == "dense" else
                             f"{q.name}: its mask is not a DARB / BMWM pattern, so it uses the {layer_kernel} kernel")
            ctx, arrays = _layer_context(q, sym, layer_kernel, prefix)
            template = "dense_layer"
        ctx["banner"] = banner
        files[f"{sym}.h"] = env.get_template(f"{template}.h.j2").render(ctx)
        files[f"{sym}.c"] = env.get_template(f"{template}.c.j2").render(ctx)
        if template == "softmax":
            description = f"softmax over {q.layer.size}"
        elif template in ("pool", "recurrent"):
            description = ctx["description"]
        else:
            description = f"{ctx['description']}, {q.layer.activation}"
        g = GeneratedLayer(q, sym, template if template in ("softmax", "pool", "recurrent") else layer_kernel,
                           f"{sym}.h", f"{sym}.c", ctx["arrays"], description)
        if template == "recurrent":
            g.parts, g.state_bytes, g.rtol = parts, ctx["state_bytes"], 1e-4
        generated.append(g)
    model = None
    stream, step_output_size = 0, 0
    if chain and is_chain([g.layer for g in generated]) and _quantizations_connect(qs):
        model = ModelUnit(prefix, generated, plan_memory(qs), calib_inputs=_model_calib(qs, calib))
        stream, step_output_size = _streaming(qs)
        files[f"{prefix}.c"] = env.get_template("model.c.j2").render(
            banner=banner, prefix=prefix, PREFIX=prefix.upper(), model=model, layers=generated,
            in_t=CTYPES[dtype][0], stream=stream)
    first, last = qs[0], qs[-1]
    files[f"{prefix}.h"] = env.get_template("model.h.j2").render(
        banner=banner, prefix=prefix, PREFIX=prefix.upper(), layers=generated, dtype=dtype, kernel=kernel,
        model=model, in_t=CTYPES[dtype][0], macros=_model_macros(first, last), stream=stream,
        step_output_size=step_output_size)
    used = set()
    for g in [u for g in generated for u in g.parts + [g]]:
        if g.kernel == "recurrent":
            used.add(("rnn", "float32" if g.dtype == "float32" else "int16"))
        elif g.kernel in ("softmax", "pool"):
            used.add((g.kernel, g.dtype))
        elif isinstance(g.layer, ConvOp):
            if g.kernel != "unrolled":
                used.add(("conv", g.dtype))
        else:
            used.add((g.kernel, g.dtype))
    rt = runtime_files(used)
    clash = set(rt) & set(files)
    if clash:
        raise DarbgenError(f"generated file {sorted(clash)[0]} would collide with a runtime file; choose another "
                           f"prefix")
    files.update(rt)
    return CModule(prefix, dtype, kernel, generated, files, sorted(n for n in rt if n.endswith(".c")), command,
                   model, {"notes": notes})


def _quantizations_connect(qs):
    """Each op's output quantization is the next op's input quantization."""
    if qs[0].dtype == "float32":
        return True
    return all(a.output == b.input for a, b in zip(qs, qs[1:]))


def _layer_kernel(layer, kernel):
    """The kernel a dense / convolution layer gets: ``packed`` needs a DARB or
    BMWM pattern; an unpruned layer takes ``dense`` (the same bytes, a faster
    loop) and other masks fall back to ``csr``."""
    if kernel == "packed" and layer.block_sizes is None:
        return "dense" if layer.mask.all() else "csr"
    return kernel


def _streaming(qs):
    """(how many leading recurrent ops ``<model>_step`` steps, its output size).

    A model streams when it starts with recurrent layers, each feeding the
    next its sequence, and the rest takes one step's output: the last of
    them returns only its last state, or nothing follows it. Otherwise (0, 0).
    """
    k = 0
    while k < len(qs) and isinstance(qs[k], QuantizedRecurrent):
        k += 1
    if k == 0 or (qs[k - 1].layer.sequences and k < len(qs)):
        return 0, 0
    if k == len(qs):
        return k, qs[k - 1].layer.rows
    return k, qs[-1].layer.out_size


def _model_macros(first, last):
    if first.dtype == "float32":
        return []
    return [("INPUT_SCALE", c_float(first.input.scale)), ("INPUT_ZERO_POINT", f"({first.input.zero_point})"),
            ("OUTPUT_SCALE", c_float(last.output.scale)), ("OUTPUT_ZERO_POINT", f"({last.output.zero_point})")]


def _model_calib(qs, calib, count=16):
    """A few real calibration inputs in the model's input type, for verification."""
    if calib is None or isinstance(calib, dict):
        return None
    x = np.asarray(calib, np.float64)
    if x.ndim != 2:
        return None
    x = x[:count]
    return x.astype(np.float32) if qs[0].dtype == "float32" else qs[0].input.quantize(x)


def harness_table(module):
    """The C table the runtime_c harness runs the module's units (ops, then the model) from."""
    units = module.units
    return environment().get_template("harness_table.c.j2").render(
        module=module, layers=units, prefix=module.prefix, headers=module.extra.get("harness_headers", []),
        max_in=max(g.in_bytes for g in units), max_out=max(g.out_bytes for g in units))


__all__ = ["generate", "CModule", "GeneratedLayer", "CArray", "KERNELS", "c_identifier", "harness_table"]
