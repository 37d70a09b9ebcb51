"""What does a pruned int8 layer cost on a Cortex-M core, kernel by kernel?

Run it::

    darbgen bench mcu                      # Cortex-M4, the issue's shapes and ratios, a table
    darbgen bench mcu --core cortex-m55 --json

What is measured
----------------
int8 fully connected layers of ``512 x 512`` and ``512 x 128`` (an LSTM gate
block: four gates of 128 rows over 128 inputs) with random weights whose
rows differ in scale (so DARB gives them different block sizes, as in a
trained layer), at pruning ratios 4, 8 and 16, in these kernels:

``cmsis_dense_q7``
    CMSIS-DSP's ``arm_mat_vec_mult_q7`` on the unpruned int8 weights (its
    source is fetched from the ``cmsisdsp`` sdist on PyPI at run time, never
    committed; see :mod:`darbgen.bench.cmsis`). Its arithmetic is q7 (no
    bias, shift by 7), checked bit for bit against a NumPy twin.
``dense``
    darbgen's dense int8 kernel (``darb_dense_fc_s8``), unpruned.
``csr``
    darbgen's CSR kernel on the irregular (magnitude top-k) mask.
``bsr4x4``
    block-sparse rows with 4 x 4 blocks (``runtime_c/bench/darb_bsr_fc_s8.c``)
    on the 4 x 4 block mask; uint16 block indices.
``bmwm``
    darbgen's packed kernel on the uniform BMWM mask (one block size, N:M
    with N = 1).
``darb_packed`` / ``darb_unrolled``
    DARB masks in darbgen's packed kernel and fully unrolled code.

Every figure comes from a run in QEMU on the chosen core (``--core``,
default cortex-m4), compiled with arm-none-eabi-gcc -O2 and darbgen's flags;
every output is checked bit for bit against the NumPy reference.
``instructions``: exact count of one call (QEMU's exec trace, see
:mod:`darbgen.toolchain.cortex_m`); ``code_bytes``: the machine code the call
needs (the layer's functions and the runtime functions it uses, from the
linked image's symbol table; for CMSIS the one function); ``data_bytes``:
weights plus index plus metadata (the per-row bias and requantization
parameters, which every int8 kernel but CMSIS's needs alike, are in
``params_bytes``); ``compile_s``: arm-none-eabi-gcc's time for the layer's
files (what matters for unrolled code).

The goals of the issue are checked on the 512 x 512 rows at 16x and printed
with their measured ratios; they are stated for Cortex-M4.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..toolchain.cortex_m import HARNESS_SYMBOLS as _NOT_KERNEL
from ..toolchain.cortex_m import sized_symbols

SHAPES = ((512, 512), (512, 128))
RATIOS = (4, 8, 16)
KERNELS = ("cmsis_dense_q7", "dense", "csr", "bsr4x4", "bmwm", "darb_packed", "darb_unrolled")
#: functions of the harness and start-up code, not of the kernel under test


def matrix(rows, cols, seed=0, spread=0.7):
    """Random weights with a log-normal scale per row, exp(spread * N(0, 1)):
    rows of different density after pruning, as in trained layers (0: every
    row alike)."""
    rng = np.random.default_rng(seed)
    scale = np.exp(spread * rng.standard_normal((rows, 1)))
    return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)


def _kernel_code_bytes(elf, prefix):
    """Bytes of the functions of the layer (``prefix``_*) and of darbgen's
    runtime (darb_*) in a linked image, harness and start-up code excluded."""
    return sum(size for name, kind, _, size in sized_symbols(elf)
               if kind in "tT" and name.startswith((prefix + "_", "darb_")) and not name.startswith(_NOT_KERNEL))


def _row(shape, ratio, kernel, instructions, code, data, kept, **extra):
    row = {"shape": f"{shape[0]}x{shape[1]}", "ratio": ratio, "kernel": kernel, "instructions": int(instructions),
           "code_bytes": int(code), "data_bytes": int(data), "kept": int(kept),
           "instructions_per_kept": instructions / max(kept, 1)}
    row.update(extra)
    return row


def _ours(core, layer, kernel, calib, shape, ratio, name):
    """Generate, verify and count one darbgen kernel on ``core``."""
    from ..codegen import generate
    from ..verify import count_instructions, measure

    module = generate([layer], dtype="int8", kernel=kernel, prefix="bench", calib=calib)
    g = module.layers[0]
    start = time.perf_counter()
    measure(module, core)                         # compiles the layer's files alone: the compile time
    compile_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="darbgen-bench-") as tmp:
        count = count_instructions(module, core, keep_dir=tmp)
        code = _kernel_code_bytes(Path(tmp) / "darb_harness.elf", "bench")
    b = g.data_bytes()
    return _row(shape, ratio, name, count.instructions[g.name], code, b["values"] + b["index"] + b["metadata"],
                layer.kept, values_bytes=b["values"], index_bytes=b["index"], metadata_bytes=b["metadata"],
                params_bytes=b["params"], compile_s=round(compile_s, 2), verified=True)


def bsr4_arrays(mask, weight_q):
    """BSR arrays of a 4 x 4 block mask: (row_ptr, col_idx, values), uint16 / int8."""
    rows, cols = mask.shape
    blocks = mask.reshape(rows // 4, 4, cols // 4, 4).any(axis=(1, 3))
    row_ptr = np.concatenate([[0], np.cumsum(blocks.sum(axis=1))]).astype(np.uint16)
    br, bc = np.nonzero(blocks)
    w = weight_q.reshape(rows // 4, 4, cols // 4, 4)
    values = np.stack([w[r, :, c, :] for r, c in zip(br, bc)]) if len(br) else np.zeros((0, 4, 4))
    return row_ptr, bc.astype(np.uint16), values.astype(np.int8).reshape(-1)


def _bsr(core, layer, calib, shape, ratio):
    """The 4 x 4 BSR baseline: quantized like darbgen's layers, run and counted in QEMU."""
    from .. import reference
    from ..codegen.emit import c_initializer
    from ..errors import DarbgenError
    from ..quantize import quantize_network
    from ..resources import runtime_c_dir
    from ..toolchain import cortex_m
    from ..verify import _run_target, _write_inputs  # noqa: F401  (one harness for every figure)

    q = quantize_network([layer], "int8", calib)[0]
    row_ptr, col_idx, values = bsr4_arrays(layer.mask, q.weight)
    x = q.input.quantize(calib[:1])
    want = reference.dense_int(q, x)
    arrays = [("bench_values", "int8_t", values), ("bench_row_ptr", "uint16_t", row_ptr),
              ("bench_col_idx", "uint16_t", col_idx), ("bench_bias", "int32_t", q.bias),
              ("bench_multiplier", "int32_t", q.multiplier), ("bench_shift", "int8_t", q.shift)]
    src = ['#include "darb.h"', '#include "darb_bsr.h"', '#include "darb_harness.h"', ""]
    for sym, ctype, v in arrays:
        src += [f"static const {ctype} {sym}[{max(v.size, 1)}] = {{", c_initializer(v if v.size else np.zeros(1),
                                                                                  ctype), "};"]
    src += [f"static const darb_bsr4_pattern bench_pattern = {{ {layer.rows // 4}u, bench_row_ptr, bench_col_idx }};",
            f"static const darb_quant_s8 bench_quant = {{ bench_bias, bench_multiplier, bench_shift, "
            f"{q.output_offset}, {q.act_min}, {q.act_max}, 0, DARB_SCALE_PER_ROW }};",
            "static void bench_bsr_run(const void *in, void *out)", "{",
            "    darb_bsr4_fc_s8(&bench_pattern, bench_values, &bench_quant, (const int8_t *)in, (int8_t *)out);",
            "}", "",
            'const darb_harness_entry darb_harness_layers[] = { { "bsr", '
            f"{layer.cols}u, {layer.rows}u, bench_bsr_run }} }};",
            "const uint32_t darb_harness_count = 1u;",
            f"int64_t darb_harness_in_buf[{(layer.cols + 7) // 8}];",
            f"int64_t darb_harness_out_buf[{(layer.rows + 7) // 8}];", ""]
    core_ = cortex_m.core(core)
    with tempfile.TemporaryDirectory(prefix="darbgen-bench-bsr-") as tmp:
        folder = Path(tmp)
        (folder / "bench_bsr.c").write_text("\n".join(src), encoding="ascii")
        rt = runtime_c_dir()
        for path in (rt / "include" / "darb.h", rt / "src" / "darb_output.c", rt / "bench" / "darb_bsr.h",
                     rt / "bench" / "darb_bsr_fc_s8.c", rt / "harness" / "darb_harness.c",
                     rt / "harness" / "darb_harness.h", rt / "harness" / "darb_harness_target.c"):
            (folder / path.name).write_bytes(path.read_bytes())
        sources = ["bench_bsr.c", "darb_bsr_fc_s8.c", "darb_output.c", "darb_harness.c", "darb_harness_target.c"]
        elf = cortex_m.link_image(folder, sources, core_, "bench_bsr.elf")
        raw, _ = _run_target(elf, core_, folder, [x], cortex_m.RUN_TIMEOUT, trace=folder / "trace.log")
        got = np.frombuffer(raw, np.int8).reshape(1, -1)
        if not np.array_equal(got, want):
            raise DarbgenError(f"bsr4x4 on {core}: the output differs from the reference")
        syms = cortex_m.symbols(elf)
        callers = [(a, a + n) for nm, (a, n) in syms.items()
                   if (nm.startswith("darb_harness") or nm == "darb_stack_call") and n > 0]
        count = cortex_m.count_calls(folder / "trace.log", [syms["bench_bsr_run"][0]], callers)[0]
        code = _kernel_code_bytes(elf, "bench")
    data = values.size + 2 * col_idx.size + 2 * row_ptr.size
    return _row(shape, ratio, "bsr4x4", count, code, data, int(np.count_nonzero(layer.mask)),
                values_bytes=int(values.size), index_bytes=2 * int(col_idx.size), metadata_bytes=2 * int(row_ptr.size),
                params_bytes=int(q.bias.nbytes + q.multiplier.nbytes + q.shift.nbytes), verified=True)


def _cmsis(core, layer, calib, shape):
    from ..quantize import quantize_network
    from .cmsis import run_cmsis_dense

    q = quantize_network([layer], "int8", calib)[0]
    x = q.input.quantize(calib[:1])[0]
    r = run_cmsis_dense(core, q.weight.astype(np.int8), x)
    return _row(shape, None, "cmsis_dense_q7", r["instructions"], r["code_bytes"], r["data_bytes"], layer.weight.size,
                values_bytes=r["data_bytes"], index_bytes=0, metadata_bytes=0, params_bytes=0, verified=True)


#: rows x cols the kernels take: the C kernels and CMSIS-DSP's arm_matrix_instance_q7 count them in uint16_t
MAX_DIM = 65535
#: the largest --spread: row scales exp(spread * N(0, 1)) stay far inside float32 (exp(40 * 2.2) overflows it,
#: and 512 rows draw |N(0, 1)| above 3 routinely) and the int8 quantization keeps every row distinct enough
MAX_SPREAD = 10.0
#: the pruning method behind each pruned kernel (bmwm takes block = ratio, which any ratio > 1 can do)
_METHODS = {"csr": "irregular", "bsr4x4": "block", "darb_packed": "darb", "darb_unrolled": "darb"}


def check_options(shapes, ratios, kernels, seed, spread):
    """Refuse, before any compiling or QEMU run, what :func:`run` cannot measure; messages name the flags."""
    from ..errors import DarbgenError
    from ..pruning.api import reachable_ratio

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DarbgenError(f"--seed must be a whole number >= 0, got {seed!r}")
    if isinstance(spread, bool) or not isinstance(spread, (int, float)) or not 0 <= spread <= MAX_SPREAD:
        raise DarbgenError(f"--spread must be a number from 0 to {MAX_SPREAD:g} (row scales exp(spread * N(0, 1)); "
                           f"0: every row alike, default 0.7), got {spread!r}")
    if not shapes or not ratios:
        raise DarbgenError("--shapes and --ratios need at least one entry each (like 512x512,512x128 and 4,8,16)")
    for shape in shapes:
        if len(shape) != 2 or not all(1 <= d <= MAX_DIM for d in shape):
            raise DarbgenError(f"--shapes: {'x'.join(map(str, shape))} is not rows x cols of 1 to {MAX_DIM} each "
                               f"(like 512x128)")
        rows, cols = shape
        if "bsr4x4" in kernels and (rows % 4 or cols % 4):
            raise DarbgenError(f"--shapes: {rows}x{cols}: the bsr4x4 kernel takes whole 4 x 4 blocks, so rows and "
                               f"columns must be multiples of 4; change the shape or leave bsr4x4 out "
                               f"of --kernels")
    for ratio in ratios:
        if ratio < 2:
            raise DarbgenError(f"--ratios must be whole numbers >= 2 (16 keeps 1 weight in 16), got {ratio}")
    for shape in shapes:
        rows, cols = shape
        for ratio in ratios:
            for kernel in kernels:
                method = _METHODS.get(kernel)
                if method is None:
                    continue
                hi = reachable_ratio(shape, method)[1]
                if ratio > hi:
                    raise DarbgenError(f"--ratios {ratio} cannot be reached on {rows}x{cols} by the {kernel} kernel "
                                       f"({method} pruning reaches at most {hi:g} there); lower --ratios or give "
                                       f"larger --shapes")
                if kernel == "bsr4x4" and max(1, round(rows * cols / 16 / ratio)) > MAX_DIM:
                    raise DarbgenError(f"--shapes: {rows}x{cols} at ratio {ratio} keeps more 4 x 4 blocks than "
                                       f"bsr4x4's uint16_t row pointers count ({MAX_DIM}); raise --ratios or give "
                                       f"smaller --shapes")


def run(core="cortex-m4", shapes=SHAPES, ratios=RATIOS, kernels=KERNELS, progress=None, seed=0, spread=0.7):
    """Measure every (shape, ratio, kernel) on ``core``; returns the result object."""
    import darbgen
    from ..graph import Dense

    check_options(shapes, ratios, kernels, seed, spread)
    say = progress or (lambda message: None)
    rows = []
    for shape in shapes:
        w = matrix(*shape, seed=seed, spread=spread)
        calib = np.random.default_rng(seed + 1).standard_normal((64, shape[1]))
        dense = Dense("fc", w)
        fixed = {}
        if "cmsis_dense_q7" in kernels:
            say(f"{shape[0]}x{shape[1]}: CMSIS-DSP arm_mat_vec_mult_q7 on {core}")
            fixed["cmsis_dense_q7"] = _cmsis(core, dense, calib, shape)
        if "dense" in kernels:
            say(f"{shape[0]}x{shape[1]}: dense int8 on {core}")
            fixed["dense"] = _ours(core, dense, "dense", calib, shape, None, "dense")
        for ratio in ratios:
            for name in ("cmsis_dense_q7", "dense"):
                if name in fixed:
                    rows.append(dict(fixed[name], ratio=ratio, ratio_independent=True))

            def pruned(method, **options):
                r = darbgen.prune(w, ratio, method, **options)
                return Dense("fc", r.apply(w), None, r.mask, getattr(r, "block_sizes", None))

            plan = [("csr", "irregular", {}, "csr"), ("bmwm", "bmwm", {"block": ratio}, "packed"),
                    ("darb_packed", "darb", {}, "packed"), ("darb_unrolled", "darb", {}, "unrolled")]
            if "bsr4x4" in kernels:
                say(f"{shape[0]}x{shape[1]} at {ratio}x: bsr4x4 on {core}")
                rows.append(_bsr(core, pruned("block", tile=(4, 4)), calib, shape, ratio))
            darb_layer = None
            for name, method, options, kernel in plan:
                if name not in kernels:
                    continue
                say(f"{shape[0]}x{shape[1]} at {ratio}x: {name} on {core}")
                if method == "darb":
                    darb_layer = darb_layer or pruned("darb")
                    layer = darb_layer
                else:
                    layer = pruned(method, **options)
                rows.append(_ours(core, layer, kernel, calib, shape, ratio, name))
    return {"core": core, "spread": spread, "seed": seed, "rows": rows, "goals": goals(rows, core)}


def goals(rows, core):
    """The issue's goals on 512 x 512 at 16x, with the measured ratios (stated for Cortex-M4)."""
    at = {r["kernel"]: r for r in rows if r["shape"] == "512x512" and r["ratio"] == 16}
    need = ("cmsis_dense_q7", "dense", "csr", "darb_packed", "darb_unrolled")
    if not all(k in at for k in need):
        return {}
    cm, de, csr, pk, un = (at[k] for k in need)
    dense_bytes = de["values_bytes"]
    out = {
        "darb_packed_vs_cmsis_instructions": pk["instructions"] / cm["instructions"],
        "darb_packed_vs_csr_instructions": pk["instructions"] / csr["instructions"],
        "darb_packed_vs_dense_data": pk["data_bytes"] / dense_bytes,
        "darb_packed_vs_csr_data": pk["data_bytes"] / csr["data_bytes"],
        "darb_unrolled_vs_cmsis_instructions": un["instructions"] / cm["instructions"],
        "darb_unrolled_code_bytes_per_kept": un["code_bytes"] / un["kept"],
        "darb_unrolled_compile_s": un["compile_s"],
    }
    limits = {"darb_packed_vs_cmsis_instructions": 1 / 6, "darb_packed_vs_csr_instructions": 0.85,
              "darb_packed_vs_dense_data": 0.10, "darb_packed_vs_csr_data": 0.55,
              "darb_unrolled_vs_cmsis_instructions": 0.10, "darb_unrolled_code_bytes_per_kept": 8.0,
              "darb_unrolled_compile_s": 20.0}
    return {k: {"measured": round(v, 4), "goal_at_most": round(limits[k], 4), "met": v <= limits[k]}
            for k, v in out.items()} | {"core": core, "stated_for": "cortex-m4"}


def table(result):
    from ..report import table as text_table

    lines = [f"int8 fully connected layers on {result['core']} (instructions counted in QEMU, every output "
             f"bit-exact with the reference; row scale spread {result['spread']:g}, seed {result['seed']})", ""]
    rows = [[r["shape"], str(r["ratio"]), r["kernel"], f"{r['instructions']:,}", f"{r['instructions_per_kept']:.2f}",
             f"{r['code_bytes']:,}", f"{r['data_bytes']:,}", str(r.get("values_bytes", "")),
             str(r.get("index_bytes", "")), str(r.get("metadata_bytes", "")), str(r.get("compile_s", "-"))]
            for r in result["rows"]]
    lines.append(text_table(["shape", "ratio", "kernel", "instructions", "per kept", "code B", "data B", "values B",
                             "index B", "metadata B", "compile s"], rows))
    g = {k: v for k, v in result["goals"].items() if isinstance(v, dict)}
    if g:
        lines += ["", f"goals on 512x512 at 16x (stated for {result['goals']['stated_for']}):"]
        lines += [f"  {k}: {v['measured']:.3f} (goal <= {v['goal_at_most']:.3f}) {'met' if v['met'] else 'MISSED'}"
                  for k, v in g.items()]
    return "\n".join(lines)


def main(argv=None):
    """Command line: ``darbgen bench mcu [--core cortex-m4] [--json]``."""
    from ..errors import DarbgenError
    from ..toolchain.cortex_m import CORES

    parser = argparse.ArgumentParser(prog="darbgen bench mcu",
                                     description="Instructions, code and data bytes of int8 fully connected layers "
                                                 "on a Cortex-M core, per kernel, against CMSIS-DSP's dense q7.")
    parser.add_argument("--core", default="cortex-m4", choices=tuple(CORES), help="core (default cortex-m4)")
    parser.add_argument("--shapes", default="512x512,512x128", help="rows x cols list (default 512x512,512x128)")
    parser.add_argument("--ratios", default="4,8,16", help="pruning ratios (default 4,8,16)")
    parser.add_argument("--kernels", default=",".join(KERNELS), help=f"subset of {','.join(KERNELS)}")
    parser.add_argument("--spread", type=float, default=0.7, help="row scales exp(spread * N(0,1)): how much row "
                        "densities differ after pruning (default 0.7; 0: all rows alike)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    try:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        ratios = [int(r) for r in args.ratios.split(",")]
    except ValueError:
        parser.error("--shapes like 512x512,512x128 and --ratios like 4,8,16")
    kernels = args.kernels.split(",")
    bad = [k for k in kernels if k not in KERNELS]
    if bad:
        parser.error(f"unknown kernel {bad[0]!r}; choose from {', '.join(KERNELS)}")
    try:
        result = run(args.core, shapes, ratios, kernels, progress=lambda m: print(m, file=sys.stderr, flush=True),
                     seed=args.seed, spread=args.spread)
    except DarbgenError as exc:
        print(f"darbgen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
