"""Proving generated C right: compile it, run it, compare with the NumPy reference.

:func:`verify` builds a :class:`~darbgen.codegen.CModule` with the host gcc
and strict flags (optionally under AddressSanitizer and UBSan), links the
harness from ``runtime_c/harness``, runs every layer on random and edge-case
inputs and compares each output with :mod:`darbgen.reference`:

* int8 / int16: bit-exact with the integer reference;
* float32: bit-exact with the order-matched float32 reference, and within
  ``1e-5`` relative of the exact (float64) result, relative to
  ``max(|exact|, sum |w| |x| + |b|)``, the scale of float32 rounding, which is
  never below :func:`~darbgen.math_f32.subnormal_floor` (among the subnormals
  float32 rounds absolutely): :func:`float64_check`. That second check guards
  the reference itself; a layer whose float32 sums overflow on the inputs is
  refused before anything is compiled (:func:`check_float32_overflow`).

:func:`measure` compiles each generated file alone and reads its code and data
bytes from the object file.
"""
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .codegen.harness import harness_table
from .errors import DarbgenError
from .layers import kind_of
from .math_f32 import FLT_MAX, subnormal_floor
from .resources import runtime_c_dir
from .toolchain import cortex_m, host

FLOAT_RTOL = 1e-5
HARNESS_MAGIC = 0x44524231
_NP = {"int8": np.int8, "int16": np.int16, "float32": np.float32}


@dataclass
class LayerCheck:
    """The comparison of one layer's C outputs with the reference."""

    name: str
    symbol: str
    dtype: str
    kernel: str
    vectors: int
    mismatches: int                 # outputs that are not bit-identical with the reference
    max_abs_diff: float             # largest |C - reference|
    max_rel_f64: float = None       # float32 only: largest relative error against float64
    first_mismatch: dict = None
    rtol: float = FLOAT_RTOL        # the tolerance max_rel_f64 must meet

    @property
    def within_f64(self):
        """The float64 check passed (always, for integer types)."""
        return self.max_rel_f64 is None or self.max_rel_f64 <= self.rtol

    @property
    def ok(self):
        return self.mismatches == 0 and self.within_f64

    @property
    def status(self):
        """"ok", "MISMATCH" (outputs differ from the reference) or "float64 check FAILED"
        (the C equals the reference, but the reference is too far from the float64 result)."""
        if self.mismatches:
            return "MISMATCH"
        return "ok" if self.within_f64 else "float64 check FAILED"


@dataclass
class VerifyResult:
    """What :func:`verify` found. ``ok`` is True when every layer matched."""

    layers: list
    compiler: str
    flags: list
    sanitize: bool
    seconds: float
    outputs: dict = field(default_factory=dict)     # unit name -> the C's outputs, every vector
    extra: dict = field(default_factory=dict)
    target: str = "host"
    stack: dict = None                              # Cortex-M: unit name -> stack bytes one run needs
    run_seconds: float = 0.0                        # the harness's run alone (no compiling)
    sampled: bool = False                           # on a core: a sample of each unit's vectors ran (see verify)

    @property
    def ok(self):
        return all(c.ok for c in self.layers)

    @property
    def max_abs_diff(self):
        return max((c.max_abs_diff for c in self.layers), default=0.0)

    @property
    def headline(self):
        """What failed, in words for a message's head ("" when everything passed)."""
        if self.ok:
            return ""
        if any(c.mismatches for c in self.layers):
            return "generated C does not match the reference"
        return ("the C matches the reference bit for bit, but the float32 reference fails its float64 check "
                "(it is further from the exact result than float32 rounding explains)")

    def describe(self):
        """One line per layer, for messages."""
        lines = []
        for c in self.layers:
            rel = "" if c.max_rel_f64 is None else f", max relative error vs float64 {c.max_rel_f64:.2e}"
            lines.append(f"{c.name}: {c.status}: {c.vectors} vectors, {c.mismatches} outputs differ, "
                         f"max |C - reference| {c.max_abs_diff:g}{rel}")
            if c.first_mismatch:
                lines.append(f"  first difference: {c.first_mismatch}")
            elif not c.within_f64:
                lines.append(f"  the C equals the float32 reference, which is {c.max_rel_f64:.2e} (relative to the "
                             f"rounding scale) from the float64 result, above the {c.rtol:g} allowed: the reference "
                             f"itself is wrong")
        return "\n".join(lines)


class VerificationError(DarbgenError):
    """Generated C and reference disagree; ``.result`` holds the details."""

    def __init__(self, result):
        super().__init__((result.headline or "verification failed") + ":\n" + result.describe())
        self.result = result


# ----------------------------------------------------------------------------- inputs

def make_inputs(q, n_random=32, seed=0):
    """Inputs for one layer in its C input type: random, then edge cases
    (type minimum, maximum, zero, zero point, and sign patterns that push rows
    to their largest and smallest accumulators). Each kind says which matrix
    gives the sign patterns (:meth:`darbgen.layers.base.LayerKind.make_inputs`)."""
    return kind_of(q).make_inputs(q, n_random, seed)


# ----------------------------------------------------------------------------- build and run

def _write_inputs(path, inputs):
    with open(path, "wb") as f:
        f.write(np.asarray([HARNESS_MAGIC, len(inputs)], "<u4").tobytes())
        for x in inputs:
            f.write(np.asarray([x.shape[0]], "<u4").tobytes())
            f.write(np.ascontiguousarray(x).tobytes())


def _write_harness(module, folder, main_file):
    """The module, the harness loop with ``main_file`` (its main()) and the
    module's table in ``folder``; returns the sources to compile."""
    module.write_files(folder)
    hdir = runtime_c_dir() / "harness"
    for name in ("darb_harness.c", "darb_harness.h", main_file):
        shutil.copyfile(hdir / name, Path(folder) / name)
    (Path(folder) / "darb_harness_table.c").write_text(harness_table(module), encoding="ascii")
    return module.sources + ["darb_harness.c", main_file, "darb_harness_table.c"]


def build_harness(module, folder, *, sanitize=False, cc=None, extra_flags=()):
    """Write the module and the harness into ``folder`` and compile them; returns (exe, compiler, flags)."""
    folder = Path(folder)
    sources = _write_harness(module, folder, "darb_harness_host.c")
    compiler = host.host_compiler(cc)
    flags = list(host.STRICT_FLAGS) + (list(host.SANITIZE_FLAGS) if sanitize else []) + list(extra_flags)
    exe = folder / "darb_harness"
    host.run_compiler([compiler, *flags, "-I.", *sources, "-o", exe.name], cwd=folder)
    return exe, compiler, flags


def _run_harness(exe, folder, inputs, timeout):
    in_path, out_path = Path(folder) / "inputs.bin", Path(folder) / "outputs.bin"
    _write_inputs(in_path, inputs)
    try:
        proc = subprocess.run([str(exe), in_path.name, out_path.name], cwd=folder, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DarbgenError(f"the test harness did not finish within {timeout:g} s on the host; allow more time "
                           f"(darbgen build --timeout SECONDS)") from None
    if proc.returncode != 0:
        raise DarbgenError(f"the test harness failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-3000:]}")
    return out_path.read_bytes()


def build_target_harness(module, folder, target, extra_flags=()):
    """Write the module and the Cortex-M harness into ``folder`` and link a
    QEMU image for core ``target``; returns (elf, core, flags)."""
    core = cortex_m.core(target)
    folder = Path(folder)
    sources = _write_harness(module, folder, "darb_harness_target.c")
    elf = cortex_m.link_image(folder, sources, core, "darb_harness.elf", extra_flags)
    return elf, core, list(host.STRICT_FLAGS) + list(core.flags) + list(extra_flags)


def _run_target(elf, core, folder, inputs, timeout, trace=None):
    """Run the target harness in QEMU: (outputs bytes, stack bytes per unit)."""
    folder = Path(folder)
    _write_inputs(folder / "inputs.bin", inputs)
    for name in ("outputs.bin", "stack.bin"):
        (folder / name).unlink(missing_ok=True)
    cortex_m.run_image(elf, core, folder, timeout=timeout, trace=trace)
    stack = np.frombuffer((folder / "stack.bin").read_bytes(), "<u4")
    return (folder / "outputs.bin").read_bytes(), [int(v) for v in stack]


def float64_check(got, exact, scale, floor=0.0):
    """The float64 check of float32 outputs: per output, ``|got - exact|`` relative
    to ``max(scale, floor)`` (``scale``: the rounding scale a reference's
    :meth:`~darbgen.layers.base.LayerKind.exact` gives, ``floor``: at least
    that of :func:`~darbgen.math_f32.subnormal_floor`). An exact result beyond
    float32's range is rightly ``inf`` of its sign and counts 0; NaN where the
    float64 result is a number is ``inf``. A result within ``rtol`` passes."""
    got = np.asarray(got, np.float64)
    exact = np.asarray(exact, np.float64)
    scale = np.maximum(np.maximum(np.abs(exact), np.asarray(scale, np.float64)), floor)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(got - exact) / np.where(scale > 0, scale, 1.0)
        overflow = np.isinf(got) & (np.abs(exact) > float(FLT_MAX)) & (np.sign(got) == np.sign(exact))
        rel = np.where(overflow, 0.0, rel)
        rel = np.where(np.isnan(rel) & ~np.isnan(exact), np.inf, rel)
    return rel


def _finite_rows(x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        return np.ones(x.shape[0], bool)
    return np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)


def check_float32_overflow(unit, x, want=None, exact=None):
    """Refuse (DarbgenError) a float32 unit whose float32 reference gives inf or
    NaN on finite inputs ``x`` where the float64 result is a number within
    float32's range (or of the other sign): its sums overflowed, so the C computes
    inf / NaN, which is neither a C bug nor a reference bug. Names the first op
    of a whole model that overflows. Returns ``(want, exact)`` for reuse."""
    with np.errstate(over="ignore", invalid="ignore"):         # overflow is what this looks for
        want = unit.reference(x) if want is None else want
        exact = unit.exact(x) if exact is None else exact
    y = np.asarray(exact[0], np.float64)
    w = np.asarray(want)
    with np.errstate(invalid="ignore"):
        rightly_inf = np.isinf(w) & (np.abs(y) > float(FLT_MAX)) & (np.sign(w) == np.sign(y))
    bad = _finite_rows(x)[:, None] & ~np.isfinite(w) & ~np.isnan(y) & ~rightly_inf
    if not bad.any():
        return want, exact
    name, where = unit.name, "its"
    ops = getattr(unit, "ops", None)
    if ops:                                         # the whole model: find the op whose sums overflow
        v = np.asarray(x)[_finite_rows(x)]
        for g in ops:
            with np.errstate(over="ignore", invalid="ignore"):
                v = g.reference(v)
            if not np.all(np.isfinite(v)):
                name, where = f"{g.name} (in the whole model)", "the model's"
                break
    v, r = (int(i) for i in np.argwhere(bad)[0])
    peak = float(np.max(np.abs(np.where(np.isnan(y), 0.0, y))))
    raise DarbgenError(
        f"{name}: float32 overflows on {where} verification inputs: {int(bad.sum())} outputs come out "
        f"{w[v, r]} where the float64 result is a number (largest |output| {peak:.3g}; float32 ends at "
        f"{float(FLT_MAX):.3g}), so the C would compute inf or NaN; scale the layer's weights down or verify "
        f"with smaller inputs")


def _compare(unit, x, got, want=None, exact=None):
    want = unit.reference(x) if want is None else want
    if unit.dtype == "float32":
        same = got.view(np.uint32) == want.view(np.uint32)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(same, 0.0, np.abs(got.astype(np.float64) - want.astype(np.float64)))
        y, magnitude = unit.exact(x) if exact is None else exact
        rel = float64_check(got, y, magnitude, subnormal_floor(unit.layer.in_size))
        max_rel = float(np.max(rel)) if rel.size else 0.0
    else:
        same = got == want
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        max_rel = None
    bad = np.argwhere(~same)
    first = None
    if bad.size:
        v, r = (int(i) for i in bad[0])
        first = {"vector": v, "output": r, "c": got[v, r].item(), "reference": want[v, r].item()}
    return LayerCheck(unit.name, unit.symbol, unit.dtype, unit.kernel, int(x.shape[0]), int(bad.shape[0]),
                      float(diff.max()) if diff.size else 0.0, max_rel, first, unit.rtol)


def _unit_vectors(module, inputs, n_random, seed, extra_inputs=None):
    vectors = []
    for i, g in enumerate(module.units):
        if inputs is not None and g.name in inputs:
            x = np.asarray(inputs[g.name])
            if x.ndim != 2 or x.shape[1] != g.layer.in_size:
                raise DarbgenError(f"{g.name}: verification inputs must have shape (n, {g.layer.in_size}), "
                                   f"got {x.shape}")
            x = x.astype(_NP[getattr(g, "in_type", g.dtype)])
        else:
            x = g.make_inputs(n_random, seed + i)
        if extra_inputs is not None and g.name in extra_inputs:
            x = np.concatenate([x, np.asarray(extra_inputs[g.name]).astype(x.dtype)])
        vectors.append(x)
    return vectors


#: Vectors per unit a Cortex-M check runs when verify() is given ``sample`` (evenly spread over the host's,
#: so the edge cases at the end are in).
TARGET_SAMPLE = 12


def sample_rows(n, k):
    """Indices of ``k`` rows spread evenly over ``n`` (all of them when n <= k), first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def verify(module, inputs=None, *, n_random=32, seed=0, sanitize=False, cc=None, timeout=None,
           raise_on_mismatch=True, keep_dir=None, extra_inputs=None, target="host", extra_flags=(), sample=None):
    """Compile ``module``, run it and compare every output with the reference.

    On the host (``target="host"``) with gcc; on a Cortex-M core
    (``target="cortex-m4"``, any of :data:`darbgen.toolchain.cortex_m.CORES`)
    with arm-none-eabi-gcc, run in QEMU, where it also measures the stack
    each unit needs (``result.stack``).

    Args:
        module: a :class:`~darbgen.codegen.CModule` from :func:`darbgen.generate`.
        inputs: optional ``{layer name: (n, in) array}`` of inputs in the
            layer's C type (quantized for int8 / int16); by default random and
            edge-case inputs from :func:`make_inputs` (for the whole model:
            those of its first layer plus real calibration inputs). The key
            ``"(model)"`` gives inputs for the whole model.
        n_random: random vectors per layer (edge cases come on top).
        seed: seed of the random inputs.
        sanitize: build with ``-fsanitize=address,undefined`` (any report fails).
        cc: the compiler (default $CC or gcc).
        timeout: seconds the harness may run (default: 120 on the host; in QEMU
            :data:`darbgen.toolchain.cortex_m.RUN_TIMEOUT`, or what ``sample`` allows).
        raise_on_mismatch: raise :class:`VerificationError` when a layer differs.
        keep_dir: build in this folder (kept) instead of a temporary one.
        extra_inputs: ``{unit name: array}`` appended to that unit's inputs
            (checked like the others); ``result.outputs[name]`` then ends with
            their outputs (``darbgen build --eval`` runs the test set so).
        target: "host", or a Cortex-M core ("cortex-m4", ...).
        extra_flags: more compiler flags, e.g. ``("-DDARB_COMPACT",)``.
        sample: on a core, a :class:`VerifyResult` of the host's run of the same
            vectors: then only :data:`TARGET_SAMPLE` vectors per unit run in
            QEMU (``result.sampled``; the host ran them all, and the two builds
            compute the same integers), and the time-out scales with the host's
            run time (:func:`darbgen.toolchain.cortex_m.run_timeout`).

    Returns:
        a :class:`VerifyResult`.
    """
    start = time.perf_counter()
    units = module.units
    vectors = _unit_vectors(module, inputs, n_random, seed, extra_inputs)
    sampled = False
    if target != "host" and sample is not None:
        total = sum(len(x) for x in vectors)
        vectors = [x[sample_rows(len(x), TARGET_SAMPLE)] for x in vectors]
        sampled = sum(len(x) for x in vectors) < total
        if timeout is None:
            timeout = cortex_m.run_timeout(sample.run_seconds * sum(len(x) for x in vectors) / max(total, 1))
    if target != "host" and sanitize:
        raise DarbgenError("the sanitizers run on the host only; verify with sanitize on the host, then on the target")
    # the references first: a float32 unit that overflows is refused before anything compiles
    expected = [check_float32_overflow(g, x) if g.dtype == "float32" else (g.reference(x), None)
                for g, x in zip(units, vectors)]
    stack = None
    with tempfile.TemporaryDirectory(prefix="darbgen-verify-") as tmp:
        folder = Path(keep_dir) if keep_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if target == "host":
            exe, compiler, flags = build_harness(module, folder, sanitize=sanitize, cc=cc, extra_flags=extra_flags)
            run_start = time.perf_counter()
            raw = _run_harness(exe, folder, vectors, timeout or 120)
        else:
            elf, core, flags = build_target_harness(module, folder, target, extra_flags)
            compiler = cortex_m.compiler()
            run_start = time.perf_counter()
            raw, stack_list = _run_target(elf, core, folder, vectors, timeout or cortex_m.RUN_TIMEOUT)
            stack = {g.name: b for g, b in zip(units, stack_list)}
        run_seconds = time.perf_counter() - run_start
    checks = []
    outputs = {}
    pos = 0
    for g, x, (want, exact) in zip(units, vectors, expected):
        n = x.shape[0] * g.layer.out_size
        dt = _NP[g.dtype]
        got = np.frombuffer(raw, dtype=dt, count=n, offset=pos).reshape(x.shape[0], g.layer.out_size)
        pos += n * np.dtype(dt).itemsize
        checks.append(_compare(g, x, got, want, exact))
        outputs[g.name] = got
    if pos != len(raw):
        raise DarbgenError(f"the harness wrote {len(raw)} bytes, expected {pos}")
    result = VerifyResult(checks, compiler, flags, sanitize, time.perf_counter() - start, outputs, target=target,
                          stack=stack, run_seconds=run_seconds, sampled=sampled)
    if raise_on_mismatch and not result.ok:
        raise VerificationError(result)
    return result


@dataclass
class InstructionCount:
    """Instructions one run of each unit executes on a Cortex-M core (exact,
    counted by QEMU), and the stack bytes it needs."""

    target: str
    instructions: dict          # unit name -> instructions of one <unit>_run call
    stack: dict                 # unit name -> stack bytes
    seconds: float

    @property
    def total(self):
        """The whole model's count (or the sum of the layers when they do not chain)."""
        if "(model)" in self.instructions:
            return self.instructions["(model)"]
        return sum(self.instructions.values())


def count_instructions(module, target="cortex-m4", inputs=None, seed=0, timeout=None, keep_dir=None):
    """Count the instructions one call of every unit (each layer, a recurrent
    layer's matrices, the whole model) executes on ``target``, in QEMU.

    Each unit runs once on one input (``inputs[name][0]``, else a random
    vector; the whole model gets a real calibration input when the module
    has one). QEMU logs every instruction it executes, one per line; a
    unit's count runs from the first instruction of ``<unit>_run`` to its
    return, so the figure is exact and the same on every run. The outputs
    are checked against the reference too.
    """
    start = time.perf_counter()
    units = module.units
    vectors = _unit_vectors(module, inputs, 1, seed)
    vectors = [x[:1] for x in vectors]
    model = module.model
    if model is not None and model.calib_inputs is not None and not (inputs and "(model)" in inputs):
        vectors[-1] = model.calib_inputs[:1].astype(vectors[-1].dtype)
    with tempfile.TemporaryDirectory(prefix="darbgen-count-") as tmp:
        folder = Path(keep_dir) if keep_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        elf, core, _ = build_target_harness(module, folder, target)
        trace = folder / "trace.log"
        raw, stack_list = _run_target(elf, core, folder, vectors, timeout or cortex_m.RUN_TIMEOUT, trace=trace)
        syms = cortex_m.symbols(elf)
        entries = [syms[g.run_function][0] for g in units]
        callers = [(a, a + n) for name, (a, n) in syms.items()
                   if (name.startswith("darb_harness") or name == "darb_stack_call") and n > 0]
        counts = cortex_m.count_calls(trace, entries, callers)
        trace.unlink()
    pos = 0
    for g, x in zip(units, vectors):
        n = g.layer.out_size
        got = np.frombuffer(raw, dtype=_NP[g.dtype], count=n, offset=pos).reshape(1, n)
        pos += n * np.dtype(_NP[g.dtype]).itemsize
        check = _compare(g, x, got)
        if not check.ok:
            raise DarbgenError(f"{g.name}: on {target} the output differs from the reference while counting "
                               f"instructions: {check.first_mismatch}")
    return InstructionCount(target, {g.name: c for g, c in zip(units, counts)},
                            {g.name: b for g, b in zip(units, stack_list)}, time.perf_counter() - start)


def measure(module, target="cortex-m4", cc=None):
    """Code and data bytes of every generated layer and of the runtime, read
    from object files compiled with darbgen's flags (-O2) for ``target``: a
    Cortex-M core (arm-none-eabi-gcc with that core's flags) or "host".

    Returns ``{"target": ..., "layers": {symbol: sizes}, "runtime": sizes,
    "model": sizes}`` where sizes is ``{"code": .text, "rodata": .rodata,
    "data": .data, "bss": .bss}`` in bytes (model: the run function chaining
    the layers and its arena, when they chain).
    """
    if target == "host":
        compiler, size_tool, tflags = host.host_compiler(cc), "size", []
    else:
        core = cortex_m.core(target)
        compiler = cortex_m.compiler()
        size_tool, tflags = "arm-none-eabi-size", list(core.flags)
    empty = {"code": 0, "rodata": 0, "data": 0, "bss": 0}
    out = {"target": target, "layers": {}, "runtime": dict(empty), "model": dict(empty)}
    with tempfile.TemporaryDirectory(prefix="darbgen-size-") as tmp:
        module.write_files(tmp)
        sources = module.sources
        host.run_compiler([compiler, *host.STRICT_FLAGS, *tflags, "-I.", "-c", *sources], cwd=tmp)
        layer_sources = {g.source: g.symbol for g in module.layers}
        layer_sources.update({p.source: g.symbol for g in module.layers for p in g.parts})
        for src in sources:
            sizes = host.section_sizes(Path(tmp) / (src[:-2] + ".o"), size_tool)
            entry = {"code": host.code_bytes(sizes), "rodata": host.data_bytes(sizes),
                     "data": host.sections_bytes(sizes, ".data"), "bss": host.sections_bytes(sizes, ".bss")}
            if src in layer_sources:
                total = out["layers"].setdefault(layer_sources[src], dict(empty))
            elif src == f"{module.prefix}.c":
                total = out["model"]
            else:
                total = out["runtime"]
            for k, v in entry.items():
                total[k] += v
    return out
