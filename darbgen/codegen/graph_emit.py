"""Writing C for an op graph (:class:`darbgen.graph_run.QGraph`).

The files of a graph model ``<prefix>``:

* ``<prefix>.h``: the public API, ``<prefix>_run(in, out)``, with the input and
  output shape, layout and quantization;
* ``<prefix>.c``: the op functions (each op kind writes its own, through
  :class:`GraphEmitter`), their constant parameters, one static arena
  planned by tensor liveness over the DAG, and the run function;
* ``<prefix>_ops.h``: the op functions' prototypes (for tests and the harness);
* ``<sym>.c`` / ``<sym>.h`` per weight matrix (the dense-layer templates:
  dense, packed DARB, CSR or unrolled kernels);
* the runtime files the ops use, copied from ``runtime_c``.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..errors import DarbgenError
from ..ops import op_kind
from ..resources import runtime_c_dir
from .emit import (CModule, CArray, GeneratedLayer, KERNELS, _ITEMSIZE, _layer_context, c_float, c_literal,
                   environment, runtime_files)
from .names import c_identifier, unique_identifiers
from .symbols import check_symbols

CTYPE = {"int8": "int8_t", "float32": "float"}
ALIGN = 8


@dataclass
class EmittedOp:
    """What one node wrote: its function (if any) and its description."""

    node: object
    symbol: str
    function: str = None          # "<symbol>_run", None for an alias
    description: str = ""
    matrices: list = field(default_factory=list)   # GeneratedLayer of its weight matrices
    arrays: list = field(default_factory=list)     # its constant arrays in <prefix>.c

    def data_bytes(self):
        """Bytes of const data by role (values, index, metadata, params) and total."""
        out = dict.fromkeys(("values", "index", "metadata", "params"), 0)
        for a in self.arrays + [a for m in self.matrices for a in m.arrays]:
            out[a.role] += a.nbytes
        out["total"] = sum(out.values())
        return out


class GraphEmitter:
    """Collects the C of every node; op kinds call its methods from ``OpKind.emit``."""

    def __init__(self, qg, kernel, prefix, banner):
        self.qg, self.kernel, self.prefix, self.banner = qg, kernel, prefix, banner
        self.env = environment()
        self.symbols = unique_identifiers([n.name for n in qg.graph.nodes], prefix, "op")
        self.files = {}
        self.arrays = []            # CArray, static const in <prefix>.c
        self.blocks = []            # C text: static const structs and op functions, in order
        self.prototypes = []
        self.used = set()           # (kernel, dtype) for runtime_files
        self.runtime_extra = set()  # runtime_c paths (relative)
        self.scratch = {"int8": 0, "float32": 0}
        self.tile_cols = 0          # the widest tile of a pruned int8 convolution (DARB_TILE lanes each)
        self.aliases = {}           # output tensor -> input tensor (reshape)
        self.ops = []
        self.matrix_layers = []
        self._current = None

    # ------------------------------------------------------------------ naming and types
    def sym(self, node):
        return self.symbols[node.name]

    def ctype(self, tensor):
        return CTYPE[self.qg.types[tensor]]

    def signature(self, node, symbol=None):
        symbol = symbol or self.sym(node)
        args = [f"const {self.ctype(t)} *in{i}" if len(node.inputs) > 1 else f"const {self.ctype(t)} *in"
                for i, t in enumerate(node.inputs)]
        args.append(f"{self.ctype(node.outputs[0])} *out")
        return f"void {symbol}_run({', '.join(args)})"

    # ------------------------------------------------------------------ what op kinds call
    def array(self, symbol, ctype, values, role="params"):
        """A static const array in <prefix>.c; returns its symbol."""
        a = CArray(symbol, ctype, np.asarray(values), role)
        self.arrays.append(a)
        self._current.setdefault("arrays", []).append(a)
        return symbol

    def block(self, text):
        """C text (a static const struct) placed before the op functions."""
        self.blocks.append(text)

    def function(self, node, body, runtime=(), symbol=None):
        """The node's ``<sym>_run`` with ``body`` (C statements, indented 4)."""
        sig = self.signature(node, symbol)
        self.blocks.append(f"{sig}\n{{\n{body.rstrip()}\n}}\n")
        self.prototypes.append(sig + ";")
        self.runtime_extra.update(runtime)
        self._current["function"] = f"{symbol or self.sym(node)}_run"

    def alias(self, node):
        """The node's output is its input's memory (a reshape): no code, unless it is the model's output."""
        g = self.qg.graph
        if node.outputs[0] in g.outputs or node.inputs[0] in g.inputs:
            n = int(np.prod(self.qg.shapes[node.outputs[0]]))
            t = self.ctype(node.outputs[0])
            self.runtime_extra.add("string.h")
            self.function(node, f"    memcpy(out, in, {n}u * sizeof({t}));")
        else:
            self.aliases[node.outputs[0]] = node.inputs[0]

    def matrix(self, node, p, kernel, symbol, is_function=False, pixels=False):
        """The node's weight matrix as a dense-layer pair <symbol>.c / .h with ``<symbol>_run(vec, out)``
        (``is_function``: that is the node's function, as for a fully connected layer; ``pixels``: also
        ``<symbol>_run_pixels(in, pixels, stride, out)``, several vectors at once, where the matrix is
        dense int8: darb_mm_s8)."""
        q = p.q
        ctx, _ = _layer_context(q, symbol, kernel, self.prefix)
        ctx["banner"] = self.banner
        ctx["pixels_fn"] = bool(pixels) and self.batched(p, kernel)
        ctx["tile_fn"] = bool(pixels) and self.tiled(p, kernel)
        # a dense int8 fully connected layer: darb_mm_s8 on its one vector (four rows per step)
        ctx["mm_run"] = bool(is_function) and self.batched(p, kernel)
        if ctx["pixels_fn"] or ctx["mm_run"]:
            self.runtime_extra.add("src/darb_mm_s8.c")
        if ctx["tile_fn"]:
            self.runtime_extra.add("src/darb_fc_s8_tile.c")
        self.files[f"{symbol}.h"] = self.env.get_template("dense_layer.h.j2").render(ctx)
        self.files[f"{symbol}.c"] = self.env.get_template("dense_layer.c.j2").render(ctx)
        g = GeneratedLayer(q, symbol, kernel, f"{symbol}.h", f"{symbol}.c", ctx["arrays"], ctx["description"])
        self.matrix_layers.append(g)
        self._current.setdefault("matrices", []).append(g)
        self.used.add((kernel, q.dtype))
        if is_function:
            self._current["function"] = f"{symbol}_run"
        return g

    @staticmethod
    def batched(p, kernel):
        """True when a matrix runs several pixels per call (dense int8: darb_mm_s8)."""
        return kernel == "dense" and p.q.dtype == "int8"

    @staticmethod
    def tiled(p, kernel):
        """True when a matrix runs tiles of 4 pixels, each kept weight decoded once per tile (packed
        int8: darb_fc_s8_tile)."""
        return kernel == "packed" and p.q.dtype == "int8"

    def _window_block(self, node, w, sym):
        """The convolution's ``static const darb_window <sym>_window`` (darb_graph.h), for the patch gathers."""
        fields = [w.in_h, w.in_w, w.in_c, w.kh, w.kw, w.stride_h, w.stride_w, w.dil_h, w.dil_w, w.pad_top,
                  w.pad_left]
        if max(fields) > 65535:
            raise DarbgenError(f"{node.name}: a convolution dimension exceeds 65535")
        self.block(f"static const darb_window {sym}_window = {{ {', '.join(map(str, fields))} }};\n")

    def conv(self, node, p, sym, msym, kernel):
        """A convolution's function: the patches times the matrix ``msym``, two pixels per call where
        the matrix is dense int8 (``<msym>_run_pixels``), else one."""
        w = p.window
        dtype = p.q.dtype
        oc = p.q.layer.rows
        cols = w.kh * w.kw * w.in_c
        pointwise = (w.kh == w.kw == 1 and w.stride_h == w.stride_w == 1 and w.pad_top == w.pad_left == 0
                     and w.pad_bottom == w.pad_right == 0)
        if self.batched(p, kernel):
            if self._strided_1x1(node, p, msym, "pixels"):
                return
            self._conv_batched(node, p, sym, msym, pointwise)
            return
        if self.tiled(p, kernel):
            if self._strided_1x1(node, p, msym, "tile"):
                return
            self._conv_tiled(node, p, sym, msym, pointwise)
            return
        if pointwise:
            body = (f"    uint32_t p;\n"
                    f"    for (p = 0; p < {w.out_h * w.out_w}u; ++p) {{\n"
                    f"        {msym}_run(in + p * {w.in_c}u, out + p * {oc}u);\n"
                    f"    }}")
            self.function(node, body)
            return
        self._window_block(node, w, sym)
        self.scratch[dtype] = max(self.scratch[dtype], cols)
        patch = f"{self.prefix}_patch_{'s8' if dtype == 'int8' else 'f32'}"
        if dtype == "int8":
            gather = f"darb_im2col_s8(&{sym}_window, in, oy, ox, {int(p.q.input.zero_point)}, {patch});"
        else:
            gather = f"darb_im2col_f32(&{sym}_window, in, oy, ox, {patch});"
        body = (f"    uint32_t oy, ox;\n"
                f"    for (oy = 0; oy < {w.out_h}u; ++oy) {{\n"
                f"        for (ox = 0; ox < {w.out_w}u; ++ox) {{\n"
                f"            {gather}\n"
                f"            {msym}_run({patch}, out + (oy * {w.out_w}u + ox) * {oc}u);\n"
                f"        }}\n"
                f"    }}")
        self.runtime_extra.update({"include/darb_graph.h", "src/darb_im2col.c"})
        self.function(node, body)

    @staticmethod
    def per_core(tiled, per_pixel):
        """A pruned int8 1x1 convolution's body: darb_fc_s8 on each pixel where darb.h defines
        DARB_SPARSE_PER_PIXEL (MVE cores: on KWS's pointwise layers its vector loops beat the tile, 0.92x
        against 1.16x CMSIS-NN's instructions at 4x; on ResNet-8's 3 x 3 layers the tile is faster), the tile
        elsewhere."""
        return f"#if defined(DARB_SPARSE_PER_PIXEL)\n{per_pixel}\n#else\n{tiled}\n#endif"

    def _strided_1x1(self, node, p, msym, how):
        """A 1x1 convolution with a stride above 1 and no padding (a residual network's shortcut): each output
        row's pixels are input pixels a constant stride apart, read in place, one output row per call
        (``how`` "pixels": darb_mm_s8; "tile": tiles of 4 for darb_fc_s8_tile). False if not such a layer."""
        w = p.window
        if not (w.kh == w.kw == 1 and (w.stride_h, w.stride_w) != (1, 1) and
                w.pad_top == w.pad_left == w.pad_bottom == w.pad_right == 0):
            return False
        oc = p.q.layer.rows
        c = w.in_c
        row_in = f"in + oy * {w.stride_h * w.in_w * c}u"
        if how == "pixels":
            body = (f"    uint32_t oy;\n"
                    f"    for (oy = 0; oy < {w.out_h}u; ++oy) {{\n"
                    f"        {msym}_run_pixels({row_in}, {w.out_w}u, {w.stride_w * c}u, out + oy * {w.out_w * oc}u);\n"
                    f"    }}")
        else:
            tile = f"{self.prefix}_tile_s8"
            self.tile_cols = max(self.tile_cols, c)
            self.runtime_extra.update({"include/darb_graph.h", "src/darb_im2col.c"})
            body = (f"    uint32_t oy, ox;\n"
                    f"    for (oy = 0; oy < {w.out_h}u; ++oy) {{\n"
                    f"        for (ox = 0; ox < {w.out_w}u; ox += DARB_TILE) {{\n"
                    f"            const uint32_t n = ox + DARB_TILE <= {w.out_w}u ? DARB_TILE : {w.out_w}u - ox;\n"
                    f"            darb_tile_s8({row_in} + ox * {w.stride_w * c}u, n, {w.stride_w * c}u, {c}u, {tile});\n"
                    f"            {msym}_run_tile({tile}, n, out + (oy * {w.out_w}u + ox) * {oc}u);\n"
                    f"        }}\n"
                    f"    }}")
        self.function(node, body)
        return True

    def _conv_tiled(self, node, p, sym, msym, pointwise):
        """A pruned int8 convolution, DARB_TILE output pixels per tile (darb.h: 8 on MVE cores, else 4):
        their patches interleaved in one scratch tile (gathered in place, or the input's pixels for a 1x1
        layer), then darb_fc_s8_tile."""
        w = p.window
        oc = p.q.layer.rows
        cols = w.kh * w.kw * w.in_c
        pixels = w.out_h * w.out_w
        self.tile_cols = max(self.tile_cols, cols)
        tile = f"{self.prefix}_tile_s8"
        self.runtime_extra.update({"include/darb_graph.h", "src/darb_im2col.c"})
        if pointwise:
            body = self.per_core(
                (f"    uint32_t p;\n"
                 f"    for (p = 0; p < {pixels}u; p += DARB_TILE) {{\n"
                 f"        const uint32_t n = p + DARB_TILE <= {pixels}u ? DARB_TILE : {pixels}u - p;\n"
                 f"        darb_tile_s8(in + p * {w.in_c}u, n, {w.in_c}u, {cols}u, {tile});\n"
                 f"        {msym}_run_tile({tile}, n, out + p * {oc}u);\n"
                 f"    }}"),
                (f"    uint32_t p;\n"
                 f"    for (p = 0; p < {pixels}u; ++p) {{\n"
                 f"        {msym}_run(in + p * {w.in_c}u, out + p * {oc}u);\n"
                 f"    }}"))
            self.function(node, body)
            return
        self._window_block(node, w, sym)
        zp = int(p.q.input.zero_point)
        body = (f"    uint32_t p, oy = 0, ox = 0;\n"
                f"    for (p = 0; p < {pixels}u; p += DARB_TILE) {{\n"
                f"        const uint32_t n = p + DARB_TILE <= {pixels}u ? DARB_TILE : {pixels}u - p;\n"
                f"        uint32_t k;\n"
                f"        for (k = 0; k < DARB_TILE; ++k) {{\n"
                f"            if (k < n) {{\n"
                f"                darb_im2col_tile_s8(&{sym}_window, in, oy, ox, {zp}, k, {tile});\n"
                f"                if (++ox == {w.out_w}u) {{\n"
                f"                    ox = 0;\n"
                f"                    ++oy;\n"
                f"                }}\n"
                f"            }} else {{\n"
                f"                darb_tile_clear_s8({tile}, k, {cols}u); /* lanes k.. of the last tile */\n"
                f"                break;\n"
                f"            }}\n"
                f"        }}\n"
                f"        {msym}_run_tile({tile}, n, out + p * {oc}u);\n"
                f"    }}")
        self.function(node, body)

    #: bytes of gathered patches a dense int8 convolution may hold at once (CMSIS-NN's scratch for ResNet-8's
    #: 3 x 3 x 64 layers is 2,304 B)
    PATCH_BUDGET = 2048

    @classmethod
    def patch_group(cls, cols, pixels):
        """Patches gathered per darb_mm_s8 call: up to 8 (from 8 pixels on, DSP cores widen each row pair's
        weights once per call), at least 2, within PATCH_BUDGET bytes."""
        return max(2, min(8, pixels, cls.PATCH_BUDGET // max(cols, 1)))

    def _conv_batched(self, node, p, sym, msym, pointwise):
        w = p.window
        oc = p.q.layer.rows
        cols = w.kh * w.kw * w.in_c
        pixels = w.out_h * w.out_w
        if pointwise:
            self.function(node, f"    {msym}_run_pixels(in, {pixels}u, {w.in_c}u, out);")
            return
        self._window_block(node, w, sym)
        group = self.patch_group(cols, pixels)
        self.scratch["int8"] = max(self.scratch["int8"], group * cols)
        patch = f"{self.prefix}_patch_s8"
        zp = int(p.q.input.zero_point)
        body = (f"    uint32_t p, oy = 0, ox = 0;\n"
                f"    for (p = 0; p < {pixels}u; p += {group}u) {{\n"
                f"        const uint32_t n = p + {group}u <= {pixels}u ? {group}u : {pixels}u - p;\n"
                f"        uint32_t k;\n"
                f"        for (k = 0; k < n; ++k) {{\n"
                f"            darb_im2col_s8(&{sym}_window, in, oy, ox, {zp}, {patch} + k * {cols}u);\n"
                f"            if (++ox == {w.out_w}u) {{\n"
                f"                ox = 0;\n"
                f"                ++oy;\n"
                f"            }}\n"
                f"        }}\n"
                f"        {msym}_run_pixels({patch}, n, {cols}u, out + p * {oc}u);\n"
                f"    }}")
        self.runtime_extra.update({"include/darb_graph.h", "src/darb_im2col.c"})
        self.function(node, body)

    # ------------------------------------------------------------------ whole model
    def emit_all(self):
        for node in self.qg.graph.nodes:
            self._current = {}
            kind = op_kind(node)
            kind.emit(node, self.qg.params[node.name], self)
            self.ops.append(EmittedOp(node, self.sym(node), self._current.get("function"),
                                      kind.describe(node, self.qg), self._current.get("matrices", []),
                                      self._current.get("arrays", [])))

    def plan(self):
        """Where every tensor lives (see :func:`plan_arena`) and the arena's size."""
        return plan_arena(self.qg, self.aliases)

    def pointer(self, where, t):
        w = where[t]
        if w in ("in", "out"):
            return w
        ty = self.qg.types[t]
        if ty == "float32":
            return f"{self.prefix}_arena.f + {w // 4}"
        return f"{self.prefix}_arena.b + {w}"


def plan_arena(qg, aliases):
    """Where every tensor of ``qg`` lives: "in", "out", or a byte offset in one arena; and the arena's size.

    ``aliases`` maps a tensor to the one whose memory it shares (a reshape's output to its input).
    Greedy first fit by tensor lifetime over the node order: a tensor is live from the node writing it
    to the last node reading it (through aliases); offsets are 8-byte aligned."""
    g = qg.graph

    def root(t):
        while t in aliases:
            t = aliases[t]
        return t
    if root(g.outputs[0]) == g.inputs[0]:
        raise DarbgenError(f"{g.name}: the model's output is its input reshaped; nothing to run")
    where = {g.inputs[0]: "in", root(g.outputs[0]): "out"}
    last = {}
    for i, node in enumerate(g.nodes):
        for t in node.inputs:
            last[root(t)] = i
    live, size = [], 0
    for i, node in enumerate(g.nodes):
        for t in node.outputs:
            if t in aliases or t in where:
                continue
            nbytes = int(np.prod(qg.shapes[t])) * _ITEMSIZE[CTYPE[qg.types[t]]]
            nbytes = -(-nbytes // ALIGN) * ALIGN
            end = last.get(t, i)
            busy = sorted((o, n) for o, n, a, b in live if not (b < i or a > end))
            offset = 0
            for o, n in busy:
                if offset + nbytes <= o:
                    break
                offset = max(offset, o + n)
            live.append((offset, nbytes, i, end))
            where[t] = offset
            size = max(size, offset + nbytes)
    for t in aliases:
        where[t] = where[root(t)]
    return where, size


@dataclass
class GraphUnit:
    """One thing the harness runs and verify() compares: an op, or the whole model."""

    name: str
    symbol: str
    in_type: str
    out_type: str
    in_shape: tuple
    out_shape: tuple
    reference_fn: object
    exact_fn: object = None
    inputs_fn: object = None
    kernel: str = "op"
    description: str = ""
    rtol: float = 1e-4
    parts: list = field(default_factory=list)
    source: str = None               # the .c file holding its weight matrix, if any
    calib_inputs: object = None      # real inputs for the whole model (model-typed), counted first

    @property
    def dtype(self):
        return self.out_type

    @property
    def run_function(self):
        return f"{self.symbol}_run"

    @property
    def in_ctype(self):
        return CTYPE[self.in_type]

    @property
    def out_ctype(self):
        return CTYPE[self.out_type]

    @property
    def layer(self):
        return self

    @property
    def in_size(self):
        return int(np.prod(self.in_shape))

    @property
    def out_size(self):
        return int(np.prod(self.out_shape))

    @property
    def in_bytes(self):
        return self.in_size * _ITEMSIZE[self.in_ctype]

    @property
    def out_bytes(self):
        return self.out_size * _ITEMSIZE[self.out_ctype]

    def reference(self, x):
        return np.asarray(self.reference_fn(x)).reshape(len(x), -1)

    def exact(self, x):
        fn = self.exact_fn or self.reference_fn
        y = np.asarray(fn(x), np.float64).reshape(len(x), -1)
        scale = np.maximum(np.abs(y), np.abs(y).max(axis=1, keepdims=True))
        return y, scale

    def make_inputs(self, n_random, seed):
        return self.inputs_fn(n_random, seed)


def _random_inputs(shape, dtype, quant):
    size = int(np.prod(shape))

    def make(n_random, seed):
        rng = np.random.default_rng(seed)
        if dtype == "float32":
            v = [rng.standard_normal(size) for _ in range(n_random)]
            v += [np.zeros(size), np.ones(size), -np.ones(size)]
            return np.asarray(v, np.float32)
        v = [rng.integers(-128, 128, size) for _ in range(n_random // 2)]
        zp = quant.zero_point if quant is not None else 0
        v += [np.clip(zp + rng.integers(-8, 9, size), -128, 127) for _ in range(n_random - n_random // 2)]
        v += [np.full(size, -128), np.full(size, 127), np.full(size, zp)]
        return np.asarray(v).astype(np.int8)
    return make


def generate_graph(qg, *, kernel="packed", prefix=None, command=None):
    """C for a quantized graph: a :class:`~darbgen.codegen.emit.CModule` whose units are
    every op with one input, then the whole model (``<prefix>_run``)."""
    from ..graph_run import run_f64

    if kernel not in KERNELS:
        raise DarbgenError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    g = qg.graph
    prefix = c_identifier(prefix or g.name, "model name")
    command = command or f"darbgen.generate_graph(kernel={kernel!r}, prefix={prefix!r})"
    banner = {"version": __version__, "command": command}
    e = GraphEmitter(qg, kernel, prefix, banner)
    e.emit_all()
    where, arena = e.plan()
    calls = []
    for op in e.ops:
        if op.function is None:
            continue
        args = [e.pointer(where, t) for t in op.node.inputs] + [e.pointer(where, op.node.outputs[0])]
        calls.append(f"    {op.function}({', '.join(args)});")
    t_in, t_out = g.inputs[0], g.outputs[0]
    in_q, out_q = qg.quants.get(t_in), qg.quants.get(t_out)
    env = e.env
    patch = {k: v for k, v in e.scratch.items() if v}
    # the tile buffer holds DARB_TILE lanes: 4 on the host and most cores (8 with MVE)
    arena_bytes = arena + sum(v * (1 if k == "int8" else 4) for k, v in patch.items()) + 4 * e.tile_cols
    headers = sorted({"include/darb_graph.h"} | {p for p in e.runtime_extra if p.startswith("include/")})
    ctx = dict(banner=banner, prefix=prefix, PREFIX=prefix.upper(), e=e, arena=arena, patch=patch, calls=calls,
               tile_cols=e.tile_cols,
               arrays=e.arrays, blocks=e.blocks, in_t=CTYPE[qg.types[t_in]], out_t=CTYPE[qg.types[t_out]],
               in_shape=qg.shapes[t_in], out_shape=qg.shapes[t_out], in_size=int(np.prod(qg.shapes[t_in])),
               out_size=int(np.prod(qg.shapes[t_out])), in_q=in_q, out_q=out_q, layout=g.layout,
               ops=e.ops, matrices=e.matrix_layers, headers=[h.split("/")[-1] for h in headers],
               needs_string="string.h" in e.runtime_extra, arena_bytes=arena_bytes, c_float=c_float,
               c_literal=c_literal, source=g.source, name=g.name, prototypes=e.prototypes, dtype=qg.dtype)
    files = dict(e.files)
    files[f"{prefix}.h"] = env.get_template("graph_model.h.j2").render(ctx)
    files[f"{prefix}_ops.h"] = env.get_template("graph_ops.h.j2").render(ctx)
    files[f"{prefix}.c"] = env.get_template("graph_model.c.j2").render(ctx)
    check_symbols(files, prefix, {sym: name for name, sym in e.symbols.items()})
    rt = runtime_files(e.used)
    root = runtime_c_dir()
    for path in sorted(e.runtime_extra | {"include/darb_graph.h"}):
        if path.endswith((".h", ".c")) and "/" in path:
            rt[path.split("/")[-1]] = (root / path).read_text(encoding="ascii")
    clash = set(rt) & set(files)
    if clash:
        raise DarbgenError(f"generated file {sorted(clash)[0]} would collide with a runtime file; choose another "
                           f"prefix")
    files.update(rt)

    # ---- verification units: every single-input op with a function, then the model
    units = []
    float_ref = g if qg.dtype == "float32" else None
    for op in e.ops:
        node = op.node
        if op.function is None or len(node.inputs) != 1:
            continue
        kind = op_kind(node)
        p = qg.params[node.name]
        ti, to = node.inputs[0], node.outputs[0]
        shape_in = qg.shapes[ti]

        def ref(x, node=node, kind=kind, p=p, shape_in=shape_in, nd=qg.node_dtype(node)):
            x = np.asarray(x).reshape((len(x),) + tuple(shape_in))
            if nd == "float32":
                return kind.forward_f32(node, p, [x], kernel)[0]
            return kind.forward_int8(node, p, [x])[0]

        def ex(x, node=node, kind=kind, shape_in=shape_in):
            return kind.forward_f64(node, [np.asarray(x, np.float64).reshape((len(x),) + tuple(shape_in))])[0]

        units.append(GraphUnit(node.name, op.symbol, qg.types[ti], qg.types[to], shape_in, qg.shapes[to], ref,
                               ex if float_ref is not None else None,
                               _random_inputs(shape_in, qg.types[ti], qg.quants.get(ti)),
                               kernel=op.matrices[0].kernel if op.matrices else node.kind,
                               description=op.description,
                               source=op.matrices[0].source if op.matrices else None))

    def model_ref(x):
        return qg.run(x, kernel)

    def model_exact(x):
        return run_f64(g, np.asarray(x, np.float64))

    model = GraphUnit("(model)", prefix, qg.types[t_in], qg.types[t_out], qg.shapes[t_in], qg.shapes[t_out],
                      model_ref, model_exact if float_ref is not None else None,
                      _random_inputs(qg.shapes[t_in], qg.types[t_in], in_q), kernel="model")
    model.arena_bytes = arena_bytes
    model.ops = e.ops
    module = CModule(prefix, qg.dtype, kernel, units, files, sorted(n for n in rt if n.endswith(".c")), command,
                     model, {"notes": list(g.notes), "graph": qg, "ops": e.ops, "arena_bytes": arena_bytes,
                             "matrices": e.matrix_layers, "arrays": e.arrays,
                             "harness_headers": [f"{prefix}_ops.h"]})
    return module
