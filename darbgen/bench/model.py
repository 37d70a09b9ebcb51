"""A whole int8 model through Arm's CMSIS-NN kernels and through darbgen, side by side, in QEMU.

Run it::

    darbgen bench model kws_ref_model.tflite --core cortex-m4 --cmsis-nn ../shared/third_party/CMSIS-NN
    darbgen bench model ad01_int8.tflite --core cortex-m55 --cmsis-nn DIR --ratios 1,2,4,8 --json

Firmware engineers run TensorFlow Lite Micro with CMSIS-NN today; this
benchmark runs the same int8 model both ways on the same core, on the same
inputs, and checks that CMSIS-NN and unpruned darbgen agree bit for bit.

CMSIS-NN side
-------------
CMSIS-NN comes from ``--cmsis-nn DIR`` (or ``$DARBGEN_CMSIS_NN``): the user's
checkout, the folder holding ``Source/`` and ``Include/``. Nothing of it is
copied into darbgen: its ``Source/**/*.c`` (without the ``_f16`` / ``_f32``
files, as TFLM's ``cmsis_nn.inc`` leaves them out) are compiled into a static
library in a temporary folder, with TFLM's flags (:data:`CMSIS_FLAGS`: ``-O2
-std=c17 -ffunction-sections -fdata-sections -fomit-frame-pointer
-fsigned-char -DARM_NN_ENABLE_F16=0 -DARM_NN_ENABLE_F32=0``) and the core's
(CMSIS-NN picks its DSP or MVE kernels itself from ``__ARM_FEATURE_DSP`` /
``__ARM_FEATURE_MVE``).

darbgen writes a C file (``templates/bench_cmsis_nn_model.c.j2``) that calls,
layer by layer, the kernel TFLM's ``kernels/cmsis_nn/*.cc`` call, with the
arguments they pass:

* ``conv2d``: ``arm_convolve_wrapper_s8`` (it dispatches to the 1x1, 1xN or
  general kernel);
* ``depthwise_conv2d``: ``arm_depthwise_conv_wrapper_s8``;
* ``fully_connected``: ``arm_fully_connected_wrapper_s8`` (per-tensor or
  per-channel; it calls ``arm_fully_connected_s8``), or
  ``arm_convolve_1x1_s8_fast`` when the output has more than two dimensions
  and the depth is a multiple of 4, as TFLM does. With TFLM's default
  ``KERNELS_OPTIMIZED_FOR_SPEED`` the kernel sums a core asks a buffer for
  (MVE) are computed once at Prepare (``arm_vector_sum_s8``), outside the
  count, into RAM;
* ``avg_pool2d`` / ``max_pool2d``: ``arm_avgpool_s8`` / ``arm_max_pool_s8``;
* ``add``: ``arm_elementwise_add_s8``; ``softmax``: ``arm_softmax_s8``;
* ``reshape``: nothing (the output is the input's memory).

Weights, bias and the per-channel multipliers and shifts (computed as TFLM's
Prepare computes them, by darbgen's :func:`~darbgen.graph_run.quantize_graph`)
are const arrays; activations live in one arena planned by tensor lifetime
(first fit, 8-byte aligned); scratch is one buffer of the largest
``*_get_buffer_size`` result, measured on the core by a first small image
(``templates/bench_cmsis_nn_sizes.c.j2``), since the sizes depend on the
core's features.

What is measured
----------------
* **Bit-exactness**: both images run every input in QEMU (random int8
  vectors and edge cases from darbgen's model unit); every intermediate
  tensor of CMSIS-NN must equal darbgen's int8 reference
  (:meth:`~darbgen.graph_run.QGraph.run`), and its output darbgen's C output
  at ratio 1, bit for bit; darbgen's C must equal its own reference at every
  ratio.
* **Instructions**: exact counts from QEMU's trace of one inference on the
  first input (:func:`darbgen.toolchain.cortex_m.count_calls`): for CMSIS-NN each
  kernel call, from its entry to the return into the model's glue (TFLM's
  interpreter overhead is not counted, as in ../shared/third_party/README.md);
  for darbgen each op's ``<op>_run`` call, made in turn by the test harness on
  the real tensors (a reshape is free on both sides). Totals are the sums
  over layers. Only softmax (and a few instructions of a fully connected
  layer) depend on the data: the README's figures, on other inputs, differ
  by about 1,500 on KWS.
* **Flash**: from the linked images, the symbols the model adds to an image
  of the bare test harness (so neither the harness, the start-up code,
  semihosting nor the C library parts they use count; C library and libgcc
  routines the model calls do): code, and constants split into weights,
  bias, per-channel multipliers and shifts (CMSIS-NN), or darbgen's values,
  index, metadata and params (bias, multipliers, shifts).
* **RAM**: activations (arena), scratch, persistent buffers (CMSIS-NN's
  kernel sums on MVE), and the stack of one inference, measured by the
  harness (the free stack painted before the call).

Pruned ratios use darbgen's ``packed`` kernels (DARB by default, ``--method``)
after one-shot pruning; their accuracy is not this benchmark's concern (see
``darbgen build --eval``).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..codegen.graph_emit import plan_arena
from ..errors import DarbgenError
from ..resources import runtime_c_dir
from ..toolchain import cortex_m, host

#: TFLM's compiler flags for CMSIS-NN (tools/make/ext_libs/cmsis_nn.inc and its Makefile's defaults).
CMSIS_FLAGS = ("-O2", "-std=c17", "-ffunction-sections", "-fdata-sections", "-fomit-frame-pointer", "-fsigned-char")
CMSIS_DEFINES = ("-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0")
#: The CMSIS-NN commit TFLM pins (tools/make/ext_libs/cmsis_nn_download.sh): the API the calls follow.
CMSIS_NN_COMMIT = "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae"
#: Environment variable naming the CMSIS-NN folder when --cmsis-nn is not given.
CMSIS_ENV = "DARBGEN_CMSIS_NN"
#: The op kinds this benchmark runs through CMSIS-NN.
KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d", "max_pool2d", "add", "softmax", "reshape")
#: Alignment of every tensor (arena and test dump) in bytes.
ALIGN = 8
HARNESS_MAGIC = 0x44524231
#: Functions of the harness's own call chain (callers of the counted calls).
_HARNESS_CALLERS = ("darb_harness", "darb_stack_call")


def _progress_default(message):
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- CMSIS-NN: sources and library

def cmsis_nn_folder(path=None):
    """The CMSIS-NN folder: ``path``, else $DARBGEN_CMSIS_NN; checked to hold Source/ and Include/arm_nnfunctions.h."""
    if path is None:
        path = os.environ.get(CMSIS_ENV)
    if not path:
        raise DarbgenError(f"bench model needs CMSIS-NN's source: pass --cmsis-nn DIR (a checkout of "
                           f"ARM-software/CMSIS-NN, the folder holding Source/ and Include/) or set {CMSIS_ENV}; "
                           f"in this repository's tests it is ../shared/third_party/CMSIS-NN")
    folder = Path(path).expanduser().resolve()
    if not (folder / "Include" / "arm_nnfunctions.h").is_file() or not (folder / "Source").is_dir():
        raise DarbgenError(f"{path} is not a CMSIS-NN folder: it needs Include/arm_nnfunctions.h and Source/ "
                           f"(pass the top folder of a CMSIS-NN checkout)")
    return folder


def cmsis_nn_sources(folder):
    """The .c files TFLM compiles from CMSIS-NN with ARM_NN_ENABLE_F16=0 and F32=0, sorted."""
    folder = Path(folder)
    out = []
    for p in sorted((folder / "Source").rglob("*.c")):
        if p.name.endswith(("_f16.c", "_f32.c")) or p.name == "arm_nntables_flt.c":
            continue
        out.append(p)
    if not out:
        raise DarbgenError(f"{folder}/Source holds no C files: not a CMSIS-NN checkout")
    return out


def build_cmsis_nn(folder, core, out_dir, progress=None, jobs=None):
    """Compile CMSIS-NN (``folder``) for ``core`` into ``out_dir``/libcmsisnn.a with TFLM's flags; returns its path."""
    core_ = cortex_m.core(core) if isinstance(core, str) else core
    folder = cmsis_nn_folder(folder)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = cmsis_nn_sources(folder)
    if progress:
        progress(f"compiling CMSIS-NN for {core_.name}: {len(sources)} files from {folder}")
    cc = cortex_m.compiler()
    flags = [*core_.flags, *CMSIS_FLAGS, *CMSIS_DEFINES, "-I", str(folder / "Include")]

    def compile_one(src):
        obj = out_dir / (str(src.relative_to(folder / "Source")).replace(os.sep, "__")[:-2] + ".o")
        host.run_compiler([cc, *flags, "-c", str(src), "-o", str(obj)], cwd=out_dir)
        return obj
    with ThreadPoolExecutor(max_workers=jobs or max(1, os.cpu_count() or 1)) as pool:
        objects = list(pool.map(compile_one, sources))
    ar = host.find_tool("arm-none-eabi-ar", "archive CMSIS-NN's objects")
    lib = out_dir / "libcmsisnn.a"
    lib.unlink(missing_ok=True)
    proc = subprocess.run([ar, "rcs", str(lib), *map(str, objects)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise DarbgenError(f"arm-none-eabi-ar failed on CMSIS-NN's objects: {proc.stderr.strip()[-1000:]}")
    for o in objects:
        o.unlink()
    return lib


_LIBRARIES = {}


def cmsis_nn_library(folder, core, progress=None):
    """CMSIS-NN compiled for ``core``, once per process (kept in a temporary folder removed at exit)."""
    folder = cmsis_nn_folder(folder)
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in cmsis_nn_sources(folder))
    key = (str(folder), core, cortex_m.compiler(), hash(stamp))
    if key not in _LIBRARIES:
        tmp = tempfile.TemporaryDirectory(prefix=f"darbgen-cmsis-nn-{core}-")
        lib = build_cmsis_nn(folder, core, tmp.name, progress)
        _LIBRARIES[key] = (tmp, lib)
    return _LIBRARIES[key][1]


# ----------------------------------------------------------------------------- C text helpers

def _c_values(values, per_line=20):
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "    " + ",\n    ".join(lines) if flat else "    0"


def _c_array(symbol, ctype, values):
    values = np.asarray(values).reshape(-1)
    return (f"static const {ctype} {symbol}[{max(values.size, 1)}] __attribute__((aligned(16))) = {{\n"
            f"{_c_values(values)}\n}};")


def _dims(symbol, n, h, w, c):
    return f"static const cmsis_nn_dims {symbol} = {{ .n = {n}, .h = {h}, .w = {w}, .c = {c} }};"


def _tile(h, w):
    return f"{{ .w = {w}, .h = {h} }}"


def _act(lo, hi):
    return f"{{ .min = {int(lo)}, .max = {int(hi)} }}"


def _i32(values, what):
    v = np.asarray(values, np.int64).reshape(-1)
    if v.size and (v.min() < -2 ** 31 or v.max() > 2 ** 31 - 1):
        raise DarbgenError(f"{what}: a value does not fit int32")
    return v


# ----------------------------------------------------------------------------- CMSIS-NN: one call per layer

@dataclass
class CmsisLayer:
    """One node of the graph as CMSIS-NN runs it: the C of its kernel call and what it needs."""

    index: int
    name: str
    kind: str
    inputs: list                      # tensors read
    output: str                       # tensor written
    kernel: str = None                # the CMSIS-NN function called (None: reshape, no call)
    shape_decls: list = field(default_factory=list)   # dims / params structs (also the sizes program's)
    data_decls: list = field(default_factory=list)    # arrays and structs pointing at arrays
    body: str = ""                    # the call; {ctx} is replaced by the context's address
    buffer_expr: str = None           # C expression: the scratch bytes TFLM's Prepare requests
    buffer_kind: str = "scratch"      # "scratch", or "kernel_sums" (FC on MVE: persistent, computed at Prepare)
    data: dict = field(default_factory=dict)          # const bytes by role: weights, bias, quant
    macs: int = 0
    fc_sums: tuple = None             # (accum depth, rows, input offset, bias) for kernel sums
    prepare: list = field(default_factory=list)       # C statements for bench_cmsis_prepare
    call: str = None                  # the body with its context filled in

    @property
    def size_decls(self):
        """The shape decls the buffer-size expression uses (the sizes program defines no unused constant)."""
        if not self.buffer_expr:
            return []
        return [d for d in self.shape_decls if re.search(r"\b" + _decl_symbol(d) + r"\b", self.buffer_expr)]

    @property
    def sym(self):
        return f"bench_cmsis_L{self.index}"

    @property
    def signature(self):
        ins = ", ".join(f"const int8_t *in{i}" for i in range(len(self.inputs)))
        return f"{ins}, int8_t *out"


def _decl_symbol(decl):
    return re.match(r"static const \w+ (\w+)", decl).group(1)


def _unfolded_bias(p):
    """A conv / FC node's int32 bias as in the file: darbgen folds -in_zp * rowsum(w) into it; undo that."""
    q = p.q
    w = np.asarray(q.weight, np.int64)
    return _i32(np.asarray(q.bias, np.int64) + int(q.input.zero_point) * w.sum(axis=1), "bias")


def _conv_layer(layer, node, p, qg):
    w = p.window
    q = p.q
    out_c = int(q.weight.shape[0])
    s = layer.sym
    in_zp, out_zp = int(q.input.zero_point), int(q.output.zero_point)
    layer.kernel = "arm_convolve_wrapper_s8"
    layer.shape_decls = [
        f"static const cmsis_nn_conv_params {s}_conv = {{ .input_offset = {-in_zp}, .output_offset = {out_zp}, "
        f".stride = {_tile(w.stride_h, w.stride_w)}, .padding = {_tile(w.pad_top, w.pad_left)}, "
        f".dilation = {_tile(w.dil_h, w.dil_w)}, .activation = {_act(q.act_min, q.act_max)} }};",
        _dims(f"{s}_in_dims", 1, w.in_h, w.in_w, w.in_c),
        _dims(f"{s}_filter_dims", 1, w.kh, w.kw, w.in_c),
        _dims(f"{s}_out_dims", 1, w.out_h, w.out_w, out_c),
    ]
    layer.buffer_expr = (f"arm_convolve_wrapper_s8_get_buffer_size(&{s}_conv, &{s}_in_dims, &{s}_filter_dims, "
                         f"&{s}_out_dims)")
    weight = np.asarray(q.weight, np.int8)
    bias = _unfolded_bias(p)
    has_bias = node.params.get("bias") is not None
    layer.data_decls = [
        _c_array(f"{s}_w", "int8_t", weight),
        _c_array(f"{s}_m", "int32_t", _i32(q.multiplier, node.name)),
        _c_array(f"{s}_s", "int32_t", _i32(q.shift, node.name)),
        f"static const cmsis_nn_per_channel_quant_params {s}_quant = {{ (int32_t *){s}_m, (int32_t *){s}_s }};",
        _dims(f"{s}_bias_dims", 1, 1, 1, out_c),
    ]
    if has_bias:
        layer.data_decls.insert(1, _c_array(f"{s}_b", "int32_t", bias))
    layer.body = (f"    darb_harness_cmsis_check({layer.index}u, arm_convolve_wrapper_s8({{ctx}}, &{s}_conv, "
                  f"&{s}_quant, &{s}_in_dims, in0, &{s}_filter_dims, {s}_w, &{s}_bias_dims, "
                  f"{f'{s}_b' if has_bias else 'NULL'}, &{s}_out_dims, out));")
    layer.data = {"weights": weight.size, "bias": 4 * out_c if has_bias else 0, "quant": 8 * out_c}
    layer.macs = w.out_h * w.out_w * out_c * w.kh * w.kw * w.in_c


def _depthwise_layer(layer, node, p, qg):
    g = p.geom
    s = layer.sym
    out_c = g.in_c * g.mult
    layer.kernel = "arm_depthwise_conv_wrapper_s8"
    layer.shape_decls = [
        f"static const cmsis_nn_dw_conv_params {s}_dw = {{ .input_offset = {-p.in_zp}, .output_offset = {p.out_zp}, "
        f".ch_mult = {g.mult}, .stride = {_tile(g.stride_h, g.stride_w)}, .padding = {_tile(g.pad_top, g.pad_left)}, "
        f".dilation = {_tile(g.dil_h, g.dil_w)}, .activation = {_act(p.act_min, p.act_max)} }};",
        _dims(f"{s}_in_dims", 1, g.in_h, g.in_w, g.in_c),
        _dims(f"{s}_filter_dims", 1, g.kh, g.kw, out_c),
        _dims(f"{s}_out_dims", 1, g.out_h, g.out_w, out_c),
    ]
    layer.buffer_expr = (f"arm_depthwise_conv_wrapper_s8_get_buffer_size(&{s}_dw, &{s}_in_dims, &{s}_filter_dims, "
                         f"&{s}_out_dims)")
    weight = np.asarray(p.weight, np.int8).reshape(g.kh, g.kw, out_c)
    has_bias = node.params.get("bias") is not None
    layer.data_decls = [
        _c_array(f"{s}_w", "int8_t", weight),
        _c_array(f"{s}_m", "int32_t", _i32(p.multiplier, node.name)),
        _c_array(f"{s}_s", "int32_t", _i32(p.shift, node.name)),
        f"static const cmsis_nn_per_channel_quant_params {s}_quant = {{ (int32_t *){s}_m, (int32_t *){s}_s }};",
        _dims(f"{s}_bias_dims", 1, 1, 1, out_c),
    ]
    if has_bias:
        layer.data_decls.insert(1, _c_array(f"{s}_b", "int32_t", _i32(p.bias, node.name)))
    layer.body = (f"    darb_harness_cmsis_check({layer.index}u, arm_depthwise_conv_wrapper_s8({{ctx}}, &{s}_dw, "
                  f"&{s}_quant, &{s}_in_dims, in0, &{s}_filter_dims, {s}_w, &{s}_bias_dims, "
                  f"{f'{s}_b' if has_bias else 'NULL'}, &{s}_out_dims, out));")
    layer.data = {"weights": weight.size, "bias": 4 * out_c if has_bias else 0, "quant": 8 * out_c}
    layer.macs = g.out_h * g.out_w * out_c * g.kh * g.kw


def _fc_layer(layer, node, p, qg):
    q = p.q
    s = layer.sym
    rows, depth = (int(v) for v in q.weight.shape)
    in_zp, out_zp = int(q.input.zero_point), int(q.output.zero_point)
    wt = node.params["weight"]
    per_channel = not (wt.quant is not None and wt.quant.per_tensor)
    weight = np.asarray(q.weight, np.int8)
    has_bias = node.params.get("bias") is not None
    bias = _unfolded_bias(p)
    mult, shift = _i32(q.multiplier, node.name), _i32(q.shift, node.name)
    # TFLM: output_dim_count > 2 and accum_depth % 4 == 0 -> arm_convolve_1x1_s8_fast
    out_rank = len(qg.graph.tensors[node.outputs[0]].shape) + 1
    layer.data_decls = [_c_array(f"{s}_w", "int8_t", weight)]
    if has_bias:
        layer.data_decls.append(_c_array(f"{s}_b", "int32_t", bias))
    b = f"{s}_b" if has_bias else "NULL"
    layer.shape_decls = [
        _dims(f"{s}_in_dims", 1, 1, 1, depth),
        _dims(f"{s}_filter_dims", depth, 1, 1, rows),
        _dims(f"{s}_out_dims", 1, 1, 1, rows),
    ]
    layer.data_decls.append(_dims(f"{s}_bias_dims", 1, 1, 1, rows))
    layer.macs = rows * depth
    if out_rank > 2 and depth % 4 == 0:
        layer.kernel = "arm_convolve_1x1_s8_fast"
        layer.shape_decls.append(
            f"static const cmsis_nn_conv_params {s}_conv = {{ .input_offset = {-in_zp}, .output_offset = {out_zp}, "
            f".stride = {_tile(1, 1)}, .padding = {_tile(0, 0)}, .dilation = {_tile(1, 1)}, "
            f".activation = {_act(q.act_min, q.act_max)} }};")
        layer.buffer_expr = f"arm_convolve_1x1_s8_fast_get_buffer_size(&{s}_in_dims)"
        if per_channel:
            layer.data_decls += [
                _c_array(f"{s}_m", "int32_t", mult), _c_array(f"{s}_s", "int32_t", shift),
                f"static const cmsis_nn_per_channel_quant_params {s}_quant = {{ (int32_t *){s}_m, "
                f"(int32_t *){s}_s }};"]
            layer.data = {"weights": weight.size, "bias": 4 * rows if has_bias else 0, "quant": 8 * rows}
        else:
            # TFLM fills a scratch buffer of per-channel copies of the one multiplier and shift at every Eval
            layer.data_decls += [
                f"static int32_t {s}_pc[{2 * rows}];",
                f"static const cmsis_nn_per_channel_quant_params {s}_quant = {{ {s}_pc, {s}_pc + {rows} }};"]
            layer.prepare = [f"    {{\n        int32_t i;\n        for (i = 0; i < {rows}; ++i) {{\n"
                             f"            {s}_pc[i] = {int(mult[0])};\n            {s}_pc[{rows} + i] = "
                             f"{int(shift[0])};\n        }}\n    }}"]
            layer.data = {"weights": weight.size, "bias": 4 * rows if has_bias else 0, "quant": 8}
        layer.body = (f"    darb_harness_cmsis_check({layer.index}u, arm_convolve_1x1_s8_fast({{ctx}}, &{s}_conv, "
                      f"&{s}_quant, &{s}_in_dims, in0, &{s}_filter_dims, {s}_w, &{s}_bias_dims, {b}, &{s}_out_dims, "
                      f"out));")
        return
    layer.kernel = "arm_fully_connected_wrapper_s8"
    layer.buffer_expr = f"arm_fully_connected_s8_get_buffer_size(&{s}_filter_dims)"
    layer.buffer_kind = "kernel_sums"
    layer.fc_sums = (depth, rows, -in_zp, b)
    if per_channel:
        layer.data_decls += [_c_array(f"{s}_m", "int32_t", mult), _c_array(f"{s}_s", "int32_t", shift)]
        quant = f"{{ (int32_t *){s}_m, (int32_t *){s}_s, 1 }}"
        layer.data = {"weights": weight.size, "bias": 4 * rows if has_bias else 0, "quant": 8 * rows}
    else:
        layer.data_decls += [f"static const int32_t {s}_m[1] = {{ {int(mult[0])} }};",
                             f"static const int32_t {s}_s[1] = {{ {int(shift[0])} }};"]
        quant = f"{{ (int32_t *){s}_m, (int32_t *){s}_s, 0 }}"
        layer.data = {"weights": weight.size, "bias": 4 * rows if has_bias else 0, "quant": 8}
    layer.data_decls += [
        f"static const cmsis_nn_fc_params {s}_fc = {{ .input_offset = {-in_zp}, .filter_offset = 0, "
        f".output_offset = {out_zp}, .activation = {_act(q.act_min, q.act_max)} }};",
        f"static const cmsis_nn_quant_params {s}_quant = {quant};",
    ]
    layer.body = (f"    darb_harness_cmsis_check({layer.index}u, arm_fully_connected_wrapper_s8({{ctx}}, &{s}_fc, "
                  f"&{s}_quant, &{s}_in_dims, in0, &{s}_filter_dims, {s}_w, &{s}_bias_dims, {b}, &{s}_out_dims, "
                  f"out));")


def _pool_layer(layer, node, p, qg):
    g = p.geom
    s = layer.sym
    avg = node.kind == "avg_pool2d"
    layer.kernel = "arm_avgpool_s8" if avg else "arm_max_pool_s8"
    decls = [
        f"static const cmsis_nn_pool_params {s}_pool = {{ .stride = {_tile(g.stride_h, g.stride_w)}, "
        f".padding = {_tile(g.pad_top, g.pad_left)}, .activation = {_act(p.act_min, p.act_max)} }};",
        _dims(f"{s}_in_dims", 1, g.in_h, g.in_w, g.in_c),
        _dims(f"{s}_filter_dims", 1, g.kh, g.kw, 1),
        _dims(f"{s}_out_dims", 1, g.out_h, g.out_w, g.in_c),
    ]
    if avg:
        layer.buffer_expr = f"arm_avgpool_s8_get_buffer_size({g.out_w}, {g.in_c})"
    layer.data_decls = decls
    layer.body = (f"    darb_harness_cmsis_check({layer.index}u, {layer.kernel}({{ctx}}, &{s}_pool, &{s}_in_dims, in0, "
                  f"&{s}_filter_dims, &{s}_out_dims, out));")
    layer.macs = g.out_h * g.out_w * g.in_c * g.kh * g.kw


def _add_layer(layer, node, p, qg):
    n = int(np.prod(qg.shapes[node.outputs[0]]))
    layer.kernel = "arm_elementwise_add_s8"
    layer.body = (f"    darb_harness_cmsis_check({layer.index}u, arm_elementwise_add_s8(in0, in1, {p.input1_offset}, "
                  f"{p.input1_multiplier}, {p.input1_shift}, {p.input2_offset}, {p.input2_multiplier}, "
                  f"{p.input2_shift}, {p.left_shift}, out, {p.output_offset}, {p.output_multiplier}, "
                  f"{p.output_shift}, {p.act_min}, {p.act_max}, {n}));")


def _softmax_layer(layer, node, p, qg):
    shape = qg.shapes[node.outputs[0]]
    depth = int(shape[-1])
    rows = int(np.prod(shape)) // depth
    layer.kernel = "arm_softmax_s8"
    layer.body = (f"    arm_softmax_s8(in0, {rows}, {depth}, {p.input_multiplier}, {p.input_left_shift}, {p.diff_min}, "
                  f"out);")


_LAYER = {"conv2d": _conv_layer, "depthwise_conv2d": _depthwise_layer, "fully_connected": _fc_layer,
          "avg_pool2d": _pool_layer, "max_pool2d": _pool_layer, "add": _add_layer, "softmax": _softmax_layer}


def cmsis_layers(qg):
    """One :class:`CmsisLayer` per node of an int8 :class:`~darbgen.graph_run.QGraph`, in order."""
    g = qg.graph
    bad = [n for n in g.nodes if n.kind not in KINDS]
    if bad:
        raise DarbgenError(f"{bad[0].name}: op kind {bad[0].kind!r} has no CMSIS-NN kernel in this benchmark; it runs "
                           f"models of {', '.join(KINDS)}")
    floats = [t for t, ty in qg.types.items() if ty != "int8"]
    if floats:
        raise DarbgenError(f"tensor {floats[0]!r} is {qg.types[floats[0]]}: bench model compares int8 models "
                           f"(every activation int8, as TFLM + CMSIS-NN run them)")
    layers = []
    for i, node in enumerate(g.nodes):
        layer = CmsisLayer(i, node.name, node.kind, list(node.inputs), node.outputs[0])
        if node.kind != "reshape":
            _LAYER[node.kind](layer, node, qg.params[node.name], qg)
        layers.append(layer)
    return layers


# ----------------------------------------------------------------------------- memory plans

def _aligned(n):
    return -(-int(n) // ALIGN) * ALIGN


def _bases(graph, aliased_kinds):
    """{tensor: the tensor whose memory it is}: outputs of ``aliased_kinds`` nodes are their input's memory."""
    base = {}
    for node in graph.nodes:
        if aliased_kinds(node):
            src = node.inputs[0]
            base[node.outputs[0]] = base.get(src, src)
    return base


def plan_dump(qg, base):
    """Every tensor but the input at its own 8-aligned offset of one buffer: (where, bytes)."""
    g = qg.graph
    where = {g.inputs[0]: "in"}
    size = 0
    for node in g.nodes:
        t = node.outputs[0]
        if t in base:
            continue
        where[t] = size
        size += _aligned(np.prod(qg.shapes[t]))
    for t, b in base.items():
        r = b
        while r in base:
            r = base[r]
        where[t] = where[r]
    return where, size


def _ptr(where, t, buf):
    w = where[t]
    return w if isinstance(w, str) else f"{buf} + {w}"


# ----------------------------------------------------------------------------- images, runs, counts

def _env():
    from ..codegen.emit import environment

    return environment()


def _write_inputs(path, per_unit):
    with open(path, "wb") as f:
        f.write(np.asarray([HARNESS_MAGIC, len(per_unit)], "<u4").tobytes())
        for x in per_unit:
            f.write(np.asarray([x.shape[0]], "<u4").tobytes())
            f.write(np.ascontiguousarray(x).tobytes())


def _harness_source(units, headers=(), prototypes=(), chain=None):
    return _env().get_template("bench_cmsis_nn_harness.c.j2").render(
        units=units, headers=list(headers), prototypes=list(prototypes), chain=chain,
        max_in=max(u["in_bytes"] for u in units), max_out=max(u["out_bytes"] for u in units))


def _copy_harness(folder):
    hdir = runtime_c_dir() / "harness"
    for name in ("darb_harness.c", "darb_harness.h", "darb_harness_target.c"):
        (Path(folder) / name).write_bytes((hdir / name).read_bytes())
    return ["darb_harness.c", "darb_harness_target.c", "darb_harness_table.c"]


def baseline_image(folder, core_):
    """The bare test harness (one unit that does nothing): what every benchmark image holds besides the model."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = _copy_harness(folder)
    (folder / "darb_harness_table.c").write_text(_harness_source(
        [{"name": "(none)", "in_bytes": 8, "out_bytes": 8, "body": "    (void)in;\n    (void)out;"}]),
        encoding="ascii")
    return cortex_m.link_image(folder, sources, core_, "baseline.elf")


def _run(elf, core_, folder, per_unit, out_bytes, timeout, trace=None):
    """Run an image on ``per_unit`` vectors: ([outputs per unit], [stack bytes per unit])."""
    folder = Path(folder)
    _write_inputs(folder / "inputs.bin", per_unit)
    for name in ("outputs.bin", "stack.bin"):
        (folder / name).unlink(missing_ok=True)
    cortex_m.run_image(elf, core_, folder, timeout=timeout, trace=trace)
    raw = (folder / "outputs.bin").read_bytes()
    outs, pos = [], 0
    for x, nb in zip(per_unit, out_bytes):
        n = x.shape[0] * nb
        outs.append(np.frombuffer(raw, np.int8, count=n, offset=pos).reshape(x.shape[0], nb))
        pos += n
    if pos != len(raw):
        raise DarbgenError(f"{core_.name}: the benchmark image wrote {len(raw)} output bytes, expected {pos}")
    stack = [int(v) for v in np.frombuffer((folder / "stack.bin").read_bytes(), "<u4")]
    return outs, stack


def _callers(syms, prefixes):
    return [(a, a + n) for name, (a, n) in syms.items() if name.startswith(prefixes) and n > 0]


def _count(elf, core_, folder, per_unit, out_bytes, entries, caller_prefixes, timeout):
    """Instructions of each call to ``entries`` (function names, in call order) in one traced run."""
    trace = Path(folder) / "trace.log"
    try:
        _run(elf, core_, folder, per_unit, out_bytes, timeout, trace=trace)
        syms = cortex_m.symbols(elf)
        missing = [e for e in entries if e not in syms]
        if missing:
            raise DarbgenError(f"{elf.name} has no function {missing[0]}: the benchmark image was not built as "
                               f"expected")
        return cortex_m.count_calls(trace, [syms[e][0] for e in entries], _callers(syms, caller_prefixes))
    finally:
        trace.unlink(missing_ok=True)


def model_symbols(elf, baseline):
    """[(name, kind, size)] the model adds to the bare harness image ``baseline`` (harness symbols excluded)."""
    base = {name for name, _, _, _ in cortex_m.sized_symbols(baseline)}
    return [(name, kind.lower(), size) for name, kind, _, size in cortex_m.sized_symbols(elf)
            if name not in base and not name.startswith(cortex_m.HARNESS_SYMBOLS) and size > 0]


def _sections(symbols):
    out = dict.fromkeys(("code", "rodata", "data", "bss"), 0)
    kinds = {"t": "code", "r": "rodata", "d": "data", "b": "bss"}
    for _, kind, size in symbols:
        if kind in kinds:
            out[kinds[kind]] += size
    return out


def _compare(what, got, want):
    """Raise DarbgenError at the first differing int8 value."""
    got = np.asarray(got, np.int8)
    want = np.asarray(want, np.int8).reshape(got.shape)
    bad = np.argwhere(got != want)
    if bad.size:
        v, i = (int(k) for k in bad[0])
        raise DarbgenError(f"{what}: {len(bad)} of {got.size} outputs differ (first: vector {v}, element {i}: "
                           f"{int(got[v, i])} against {int(want[v, i])})")


def _check_tensors(what, dump, where, qg, vals):
    """Every tensor in ``dump`` (n, bytes) against the reference values; names the first layer that differs."""
    for node in qg.graph.nodes:
        t = node.outputs[0]
        w = where.get(t)
        if not isinstance(w, int):
            continue
        size = int(np.prod(qg.shapes[t]))
        got = dump[:, w:w + size]
        want = np.asarray(vals[t], np.int8).reshape(len(dump), size)
        bad = np.argwhere(got != want)
        if bad.size:
            v, i = (int(k) for k in bad[0])
            raise DarbgenError(f"{what}: layer {node.name} ({node.kind}) differs from darbgen's int8 reference in "
                               f"{len(bad)} of {got.size} values (first: vector {v}, element {i}: {int(got[v, i])} "
                               f"against {int(want[v, i])})")


# ----------------------------------------------------------------------------- the CMSIS-NN run

def run_cmsis_nn(qg, core, cmsis_nn, inputs, folder, progress=None, baseline=None, timeout=None):
    """Run ``qg`` through CMSIS-NN on ``core`` in QEMU on ``inputs`` ((n, in) int8); returns a dict of results.

    Raises DarbgenError when a tensor differs from darbgen's int8 reference."""
    progress = progress or (lambda m: None)
    core_ = cortex_m.core(core)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    timeout = timeout or cortex_m.RUN_TIMEOUT
    cmsis_dir = cmsis_nn_folder(cmsis_nn)
    lib = cmsis_nn_library(cmsis_dir, core_.name, progress)
    layers = cmsis_layers(qg)
    g = qg.graph
    inc = ("-I", str(cmsis_dir / "Include"), *CMSIS_DEFINES)
    env = _env()

    # 1. the scratch sizes TFLM's Prepare would request, asked of CMSIS-NN on the core itself
    progress(f"CMSIS-NN on {core_.name}: asking the *_get_buffer_size functions")
    sdir = folder / "sizes"
    sdir.mkdir(exist_ok=True)
    (sdir / "bench_cmsis_sizes.c").write_text(env.get_template("bench_cmsis_nn_sizes.c.j2").render(
        name=g.name, layers=layers), encoding="ascii")
    selff = cortex_m.link_image(sdir, ["bench_cmsis_sizes.c", str(lib)], core_, "sizes.elf", inc)
    cortex_m.run_image(selff, core_, sdir, timeout=60)
    sizes = [int(v) for v in np.frombuffer((sdir / "sizes.bin").read_bytes(), "<i4")]
    if len(sizes) != len(layers) or min(sizes, default=0) < 0:
        raise DarbgenError(f"{core_.name}: CMSIS-NN's buffer sizes came back as {sizes}")

    # 2. the model's C
    base = _bases(g, lambda n: n.kind == "reshape")
    where, arena = plan_arena(qg, base)
    dump_where, dump_bytes = plan_dump(qg, base)
    scratch = max([sz for sz, l in zip(sizes, layers) if l.buffer_kind == "scratch"], default=0)
    persistent = 0
    prepare = []
    run_calls, dump_calls = [], []
    for sz, l in zip(sizes, layers):
        if l.kernel is None:
            continue
        if l.buffer_kind == "kernel_sums" and sz > 0:
            depth, rows, in_off, bias = l.fc_sums
            l.data_decls.append(f"static int32_t {l.sym}_sums[{sz // 4}] __attribute__((aligned(16)));")
            prepare.append(f"    (void)arm_vector_sum_s8({l.sym}_sums, {depth}, {rows}, {l.sym}_w, {in_off}, 0, "
                           f"{bias});")
            ctx = f"{{ .buf = {l.sym}_sums, .size = 0 }}"
            persistent += sz
        elif l.buffer_kind == "scratch" and sz > 0:
            ctx = "{ .buf = bench_cmsis_scratch, .size = 0 }"
        else:
            ctx = "{ .buf = NULL, .size = 0 }"
        prepare += l.prepare
        if l.kind not in ("add", "softmax"):
            l.data_decls.append(f"static const cmsis_nn_context {l.sym}_ctx = {ctx};")
        l.call = l.body.replace("{ctx}", f"&{l.sym}_ctx")
        ins = [_ptr(where, t, "bench_cmsis_arena") for t in l.inputs]
        dins = [_ptr(dump_where, t, "dump") for t in l.inputs]
        run_calls.append(f"bench_cmsis_L{l.index}({', '.join(ins + [_ptr(where, l.output, 'bench_cmsis_arena')])});")
        dump_calls.append(f"bench_cmsis_L{l.index}({', '.join(dins + [_ptr(dump_where, l.output, 'dump')])});")
    src = env.get_template("bench_cmsis_nn_model.c.j2").render(
        name=g.name, layers=layers, arena=arena, scratch=scratch, persistent=persistent, prepare=prepare,
        run_calls=run_calls, dump_calls=dump_calls)
    mdir = folder / "model"
    mdir.mkdir(exist_ok=True)
    (mdir / "bench_cmsis_model.c").write_text(src, encoding="ascii")
    in_size = int(np.prod(qg.shapes[g.inputs[0]]))
    out_size = int(np.prod(qg.shapes[g.outputs[0]]))
    units = [
        {"name": "(model)", "in_bytes": in_size, "out_bytes": out_size,
         "body": "    bench_cmsis_prepare();\n    bench_cmsis_run((const int8_t *)in, (int8_t *)out);"},
        {"name": "(tensors)", "in_bytes": in_size, "out_bytes": dump_bytes,
         "body": "    bench_cmsis_prepare();\n    darb_harness_cmsis_tensors((const int8_t *)in, (int8_t *)out);"},
    ]
    sources = _copy_harness(mdir)
    (mdir / "darb_harness_table.c").write_text(_harness_source(units, prototypes=[
        "void bench_cmsis_prepare(void);", "void bench_cmsis_run(const int8_t *in, int8_t *out);",
        "void darb_harness_cmsis_tensors(const int8_t *in, int8_t *dump);"]), encoding="ascii")
    progress(f"CMSIS-NN on {core_.name}: linking the model ({len(layers)} layers, arena {arena:,} B, "
             f"scratch {scratch:,} B)")
    try:
        elf = cortex_m.link_image(mdir, sources + ["bench_cmsis_model.c", str(lib)], core_, "cmsis_nn.elf", inc)
    except host.CompileError as exc:
        raise DarbgenError(f"{exc}\n(the benchmark calls CMSIS-NN as TFLM's kernels/cmsis_nn call it today, the API "
                           f"of CMSIS-NN {CMSIS_NN_COMMIT[:12]}, the commit TFLM pins; is {cmsis_dir} a much older or "
                           f"newer CMSIS-NN?)") from None

    # 3. every input, every tensor
    progress(f"CMSIS-NN on {core_.name}: running {len(inputs)} inputs in QEMU")
    (out, dump), stack = _run(elf, core_, mdir, [inputs, inputs], [out_size, dump_bytes], timeout)
    vals = qg.run(inputs, keep=True)
    _check_tensors(f"CMSIS-NN on {core_.name}", dump, dump_where, qg, vals)
    _compare(f"CMSIS-NN on {core_.name}: the model's output against darbgen's int8 reference", out,
             np.asarray(vals[g.outputs[0]]).reshape(len(inputs), -1))

    # 4. instructions of each kernel call, one inference
    progress(f"CMSIS-NN on {core_.name}: counting instructions (QEMU trace)")
    called = [l for l in layers if l.kernel is not None]
    counts = _count(elf, core_, mdir, [inputs[:1], inputs[:0]], [out_size, dump_bytes],
                    [l.kernel for l in called], ("bench_cmsis_", *_HARNESS_CALLERS), timeout)
    by_layer = {l.name: c for l, c in zip(called, counts)}

    # 5. flash and RAM
    baseline = baseline or baseline_image(folder / "baseline", core_)
    syms = model_symbols(elf, baseline)
    sec = _sections(syms)
    role = {}
    for name, kind, size in syms:
        m = re.fullmatch(r"bench_cmsis_L\d+_(w|b|m|s)", name)
        if m and kind in "rd":
            r = {"w": "weights", "b": "bias", "m": "quant", "s": "quant"}[m.group(1)]
            role[r] = role.get(r, 0) + size
    const = sec["rodata"] + sec["data"]
    flash = {"code": sec["code"], "weights": role.get("weights", 0), "bias": role.get("bias", 0),
             "quant": role.get("quant", 0)}
    flash["other_const"] = const - flash["weights"] - flash["bias"] - flash["quant"]
    flash["data"] = const
    flash["total"] = flash["code"] + const
    size_of = {name: size for name, _, size in syms}
    sums = sum(size for name, _, size in syms if re.fullmatch(r"bench_cmsis_L\d+_sums", name))
    # FC through conv 1x1, per tensor: TFLM's scratch copies of the multiplier and shift per channel
    pc = sum(size for name, _, size in syms if re.fullmatch(r"bench_cmsis_L\d+_pc", name))
    ram = {"activations": size_of.get("bench_cmsis_arena", 0),
           "scratch": size_of.get("bench_cmsis_scratch", 0) + pc, "persistent": sums}
    ram["other"] = sec["bss"] + sec["data"] - ram["activations"] - ram["scratch"] - sums
    ram["stack"] = stack[0]
    ram["total"] = ram["activations"] + ram["scratch"] + ram["persistent"] + ram["other"] + ram["stack"]
    return {"layers": [{"name": l.name, "kind": l.kind, "kernel": l.kernel, "instructions": by_layer.get(l.name, 0),
                        "macs": l.macs, "buffer_bytes": sz, "buffer_kind": l.buffer_kind if sz else None,
                        "data_bytes": l.data} for l, sz in zip(layers, sizes)],
            "instructions": int(sum(counts)), "flash": flash, "ram": ram, "outputs": out,
            "buffer_sizes": sizes, "symbols": syms}


# ----------------------------------------------------------------------------- the darbgen run

def run_darbgen(module, qg, core, inputs, folder, progress=None, baseline=None, timeout=None, label="darbgen"):
    """Run a generated graph module on ``core`` on ``inputs``, op by op and whole; returns a dict of results.

    Raises DarbgenError when its C differs from its int8 reference."""
    progress = progress or (lambda m: None)
    core_ = cortex_m.core(core)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    timeout = timeout or cortex_m.RUN_TIMEOUT
    g = qg.graph
    ops = module.extra["ops"]
    base = {}
    for op in ops:
        if op.function is None:
            src = op.node.inputs[0]
            base[op.node.outputs[0]] = base.get(src, src)
    dump_where, dump_bytes = plan_dump(qg, base)
    calls = []
    for op in ops:
        if op.function is None:
            continue
        args = [_ptr(dump_where, t, "dump") for t in op.node.inputs] + [_ptr(dump_where, op.node.outputs[0], "dump")]
        ctype = [f"(const int8_t *){a}" if a == "in" else a for a in args]
        calls.append(f"    {op.function}({', '.join(ctype)});")
    chain = ("void darb_harness_chain(const int8_t *in, int8_t *dump);\n\n"
             "void darb_harness_chain(const int8_t *in, int8_t *dump)\n{\n" + "\n".join(calls) + "\n}")
    in_size = int(np.prod(qg.shapes[g.inputs[0]]))
    out_size = int(np.prod(qg.shapes[g.outputs[0]]))
    units = [
        {"name": "(ops)", "in_bytes": in_size, "out_bytes": dump_bytes,
         "body": "    darb_harness_chain((const int8_t *)in, (int8_t *)out);"},
        {"name": "(model)", "in_bytes": in_size, "out_bytes": out_size,
         "body": f"    {module.prefix}_run((const int8_t *)in, (int8_t *)out);"},
    ]
    module.write_files(folder)
    sources = _copy_harness(folder)
    (folder / "darb_harness_table.c").write_text(_harness_source(
        units, headers=[f"{module.prefix}.h", f"{module.prefix}_ops.h"], chain=chain), encoding="ascii")
    progress(f"{label}: linking")
    elf = cortex_m.link_image(folder, module.sources + sources, core_, "darbgen.elf")
    progress(f"{label}: running {len(inputs)} inputs in QEMU")
    (dump, out), stack = _run(elf, core_, folder, [inputs, inputs], [dump_bytes, out_size], timeout)
    vals = qg.run(inputs, keep=True)
    _check_tensors(f"{label} on {core_.name}", dump, dump_where, qg, vals)
    _compare(f"{label} on {core_.name}: the model's output against its int8 reference", out,
             np.asarray(vals[g.outputs[0]]).reshape(len(inputs), -1))
    progress(f"{label}: counting instructions (QEMU trace)")
    called = [op for op in ops if op.function is not None]
    counts = _count(elf, core_, folder, [inputs[:1], inputs[:0]], [dump_bytes, out_size],
                    [op.function for op in called], _HARNESS_CALLERS, timeout)
    by_op = {op.node.name: c for op, c in zip(called, counts)}
    baseline = baseline or baseline_image(folder / "baseline", core_)
    syms = model_symbols(elf, baseline)
    sec = _sections(syms)
    roles = {}
    for op in ops:
        for a in list(op.arrays) + [a for m in op.matrices for a in m.arrays]:
            roles[a.symbol] = a.role
    by_role = dict.fromkeys(("values", "index", "metadata", "params"), 0)
    for name, kind, size in syms:
        if kind in "rd" and name in roles:
            by_role[roles[name]] += size
    const = sec["rodata"] + sec["data"]
    flash = {"code": sec["code"], **by_role}
    flash["other_const"] = const - sum(by_role.values())
    flash["data"] = const
    flash["total"] = flash["code"] + const
    size_of = {name: size for name, _, size in syms}
    patch = sum(size for name, _, size in syms if name.startswith((f"{module.prefix}_patch_", f"{module.prefix}_tile_")))
    ram = {"activations": size_of.get(f"{module.prefix}_arena", 0), "scratch": patch, "persistent": 0}
    ram["other"] = sec["bss"] + sec["data"] - ram["activations"] - ram["scratch"]
    ram["stack"] = stack[1]
    ram["total"] = ram["activations"] + ram["scratch"] + ram["other"] + ram["stack"]
    layers = []
    for op in ops:
        d = op.data_bytes()
        layers.append({"name": op.node.name, "kind": op.node.kind, "kernel": _op_kernel(op),
                       "instructions": by_op.get(op.node.name, 0), "data_bytes": d})
    return {"layers": layers, "instructions": int(sum(counts)), "flash": flash, "ram": ram, "outputs": out,
            "symbols": syms}


def _op_kernel(op):
    if op.function is None:
        return None
    if op.matrices:
        return op.matrices[0].kernel
    return op.node.kind


# ----------------------------------------------------------------------------- the benchmark

def _ratio_label(r):
    return f"{r:g}x"


def run(model, core="cortex-m4", cmsis_nn=None, ratios=(1, 2, 4, 8), method="darb", n_random=8, seed=0,
        progress=None, keep_dir=None, timeout=None):
    """The side-by-side benchmark of one int8 model on one core; returns a JSON-ready dict.

    ``model``: a .tflite path (int8) or a loaded :class:`darbgen.ir.Graph`.
    ``ratios``: pruning ratios for darbgen (1: unpruned). ``n_random``:
    random inputs (edge cases come on top). ``keep_dir``: build there and
    keep every file. Raises DarbgenError on any mismatch.
    """
    from ..build import load
    from ..codegen.graph_emit import generate_graph
    from ..graph_build import prune_graph
    from ..graph_run import quantize_graph
    from ..ir import Graph

    start = time.perf_counter()
    progress = progress or (lambda m: None)

    def step(message):
        progress(f"[{time.perf_counter() - start:6.1f} s] {message}")
    core_ = cortex_m.core(core)
    cmsis_dir = cmsis_nn_folder(cmsis_nn)
    ratios = [float(r) for r in ratios]
    if not ratios or any(not np.isfinite(r) or r < 1 for r in ratios):
        raise DarbgenError(f"ratios must be numbers >= 1 (1: unpruned), got {ratios}")
    graph = model if isinstance(model, Graph) else load(model).model
    if not isinstance(graph, Graph) or not graph.quantized:
        raise DarbgenError(f"{getattr(graph, 'name', model)}: bench model compares int8 models (a .tflite with int8 "
                           f"weights and activations, as TFLM + CMSIS-NN run them)")
    step(f"{graph.name}: {len(graph.nodes)} ops on {core_.name}")
    qg = quantize_graph(graph, "int8")
    cmsis_layers(qg)                      # refuse unsupported models before any build
    module1 = generate_graph(qg, kernel="packed")
    inputs = module1.model.make_inputs(n_random, seed)
    with tempfile.TemporaryDirectory(prefix="darbgen-bench-model-") as tmp:
        root = Path(keep_dir) if keep_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        baseline = baseline_image(root / "baseline", core_)
        cm = run_cmsis_nn(qg, core_.name, cmsis_dir, inputs, root / "cmsis_nn", step, baseline, timeout)
        step(f"CMSIS-NN: {cm['instructions']:,} instructions, every tensor bit-exact with darbgen's reference")
        ours = []
        for r in ratios:
            label = f"darbgen {_ratio_label(r)}"
            if r == 1:
                g_r, q_r, module = graph, qg, module1
            else:
                step(f"{label}: pruning ({method})")
                g_r = prune_graph(graph, r, method)[0]
                q_r = quantize_graph(g_r, "int8")
                module = generate_graph(q_r, kernel="packed")
            res = run_darbgen(module, q_r, core_.name, inputs, root / f"darbgen_{_ratio_label(r)}", step, baseline,
                              timeout, label)
            if r == 1:
                _compare(f"{core_.name}: CMSIS-NN's outputs against darbgen's unpruned C", cm["outputs"],
                         res["outputs"])
                res["bit_exact_with_cmsis_nn"] = True
            step(f"{label}: {res['instructions']:,} instructions")
            res.update(ratio=r, method=method if r > 1 else None, kernel="packed" if r > 1 else "dense",
                       kept=_kept(g_r))
            ours.append(res)
    result = {"model": graph.name, "source": str(model) if not isinstance(model, Graph) else graph.source,
              "core": core_.name, "cmsis_nn": str(cmsis_dir), "cmsis_nn_flags": list(CMSIS_FLAGS + CMSIS_DEFINES),
              "inputs": int(len(inputs)), "seed": seed, "macs": int(sum(l["macs"] for l in cm["layers"])),
              "cmsis": {k: v for k, v in cm.items() if k not in ("outputs", "symbols")},
              "darbgen": [{k: v for k, v in d.items() if k not in ("outputs", "symbols")} for d in ours],
              "checks": {"cmsis_nn_equals_reference": True,
                         "cmsis_nn_equals_darbgen_unpruned": any(d["ratio"] == 1 for d in ours) or None,
                         "darbgen_equals_reference": True}}
    result["layers"] = _layer_rows(result)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def _kept(graph):
    total, kept = 0, 0
    for n in graph.nodes:
        if n.kind in ("conv2d", "fully_connected"):
            w = n.params["weight"]
            size = int(np.prod(w.shape))
            mask = n.attrs.get("mask")
            total += size
            kept += size if mask is None else int(np.count_nonzero(mask))
    return {"weights": total, "kept": kept}


def _layer_rows(result):
    rows = []
    for i, l in enumerate(result["cmsis"]["layers"]):
        row = {"name": l["name"], "kind": l["kind"], "macs": l["macs"], "cmsis_nn": l["instructions"],
               "cmsis_nn_kernel": l["kernel"], "darbgen": {}}
        for d in result["darbgen"]:
            row["darbgen"][_ratio_label(d["ratio"])] = d["layers"][i]["instructions"]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- output

def _ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def table(result):
    """The benchmark as text: one row per layer, then totals."""
    from ..report import table as text_table

    labels = [_ratio_label(d["ratio"]) for d in result["darbgen"]]
    cm = result["cmsis"]
    lines = [f"{result['model']} on {result['core']}: CMSIS-NN ({result['cmsis_nn']}) against darbgen; instructions "
             f"counted in QEMU (one inference, inside the kernels / op functions); {result['inputs']} inputs, every "
             f"tensor bit-exact with darbgen's int8 reference, CMSIS-NN = darbgen unpruned", ""]
    headers = ["op", "kind", "MACs", "CMSIS-NN"]
    for lab in labels:
        headers += [f"darbgen {lab}", "/CMSIS"]
    rows = []
    for r in result["layers"]:
        row = [r["name"], r["kind"], f"{r['macs']:,}" if r["macs"] else "-",
               f"{r['cmsis_nn']:,}" if r["cmsis_nn_kernel"] else "-"]
        for lab in labels:
            v = r["darbgen"][lab]
            row += [f"{v:,}" if v else "-", _ratio(v, r["cmsis_nn"]) if v and r["cmsis_nn"] else "-"]
        rows.append(row)
    total = ["total", "", f"{result['macs']:,}", f"{cm['instructions']:,}"]
    for d in result["darbgen"]:
        total += [f"{d['instructions']:,}", _ratio(d["instructions"], cm["instructions"])]
    rows.append(total)
    lines.append(text_table(headers, rows, "ll" + "r" * (len(headers) - 2)))
    lines += ["", "memory (bytes; flash from the linked images, without the test harness; RAM: static + stack of "
                  "one inference)", ""]
    mem_headers = ["", "CMSIS-NN"] + [f"darbgen {lab}" for lab in labels]
    cf, cr = cm["flash"], cm["ram"]

    def drow(name, cval, key, sub="flash"):
        return [name, f"{cval:,}" if cval is not None else "-"] + \
               [f"{d[sub][key]:,}" if key in d[sub] else "-" for d in result["darbgen"]]
    mem = [
        drow("flash: code", cf["code"], "code"),
        ["flash: weights (CMSIS) / values (darbgen)", f"{cf['weights']:,}"] +
        [f"{d['flash']['values']:,}" for d in result["darbgen"]],
        ["flash: bias + multipliers + shifts (CMSIS) / params", f"{cf['bias'] + cf['quant']:,}"] +
        [f"{d['flash']['params']:,}" for d in result["darbgen"]],
        ["flash: index + metadata (darbgen)", "-"] +
        [f"{d['flash']['index'] + d['flash']['metadata']:,}" for d in result["darbgen"]],
        drow("flash: other constants", cf["other_const"], "other_const"),
        drow("flash: all constants", cf["data"], "data"),
        ["  / CMSIS-NN's", "1.00"] + [_ratio(d["flash"]["data"], cf["data"]) for d in result["darbgen"]],
        drow("flash: total", cf["total"], "total"),
        drow("RAM: activations", cr["activations"], "activations", "ram"),
        drow("RAM: scratch", cr["scratch"], "scratch", "ram"),
        drow("RAM: persistent (kernel sums)", cr["persistent"], "persistent", "ram"),
        drow("RAM: other static", cr["other"], "other", "ram"),
        drow("RAM: stack", cr["stack"], "stack", "ram"),
        drow("RAM: total", cr["total"], "total", "ram"),
    ]
    lines.append(text_table(mem_headers, mem, "l" + "r" * (len(mem_headers) - 1)))
    lines += ["", f"{result['seconds']} s"]
    return "\n".join(lines)


def main(argv=None):
    """Command line: ``darbgen bench model MODEL --core cortex-m4 --cmsis-nn DIR [--ratios 1,2,4,8] [--json]``."""
    parser = argparse.ArgumentParser(
        prog="darbgen bench model",
        description="One int8 .tflite model through Arm's CMSIS-NN kernels (called as TensorFlow Lite Micro calls "
                    "them) and through darbgen at each pruning ratio, on one Cortex-M core in QEMU: per-layer and "
                    "total instructions, flash and RAM; CMSIS-NN and unpruned darbgen must agree bit for bit.")
    parser.add_argument("model", help="an int8 .tflite model")
    parser.add_argument("--core", default="cortex-m4", choices=tuple(cortex_m.CORES), help="core (default cortex-m4)")
    parser.add_argument("--cmsis-nn", metavar="DIR", default=None,
                        help=f"a CMSIS-NN checkout (the folder with Source/ and Include/); default ${CMSIS_ENV}")
    parser.add_argument("--ratios", default="1,2,4,8", help="darbgen's pruning ratios, 1 = unpruned (default 1,2,4,8)")
    parser.add_argument("--method", default="darb", help="pruning method for ratios above 1 (default darb)")
    parser.add_argument("--inputs", type=int, default=8, help="random inputs checked (edge cases come on top; "
                        "default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--keep", metavar="DIR", help="build in DIR and keep every file (C, images)")
    parser.add_argument("--timeout", type=float, default=None, help=f"seconds a QEMU run may take (default "
                        f"{cortex_m.RUN_TIMEOUT})")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    try:
        ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    except ValueError:
        parser.error("--ratios takes numbers like 1,2,4,8")
    if args.inputs < 1:
        parser.error("--inputs must be at least 1")
    from ..report import plain

    try:
        result = run(args.model, args.core, args.cmsis_nn, ratios, args.method, args.inputs, args.seed,
                     progress=_progress_default, keep_dir=args.keep, timeout=args.timeout)
    except DarbgenError as exc:
        print(f"darbgen bench model: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(plain(result), indent=2) if args.json else table(result))
    return 0


__all__ = ["CMSIS_FLAGS", "CMSIS_DEFINES", "KINDS", "CmsisLayer", "baseline_image", "build_cmsis_nn",
           "cmsis_layers", "cmsis_nn_folder", "cmsis_nn_library", "cmsis_nn_sources", "main",
           "model_symbols", "plan_arena", "plan_dump", "run", "run_cmsis_nn", "run_darbgen", "table"]

if __name__ == "__main__":
    sys.exit(main())
