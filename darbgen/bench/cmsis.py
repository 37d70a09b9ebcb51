"""The CMSIS-DSP dense baseline: ``arm_mat_vec_mult_q7`` on Cortex-M in QEMU.

darbgen's int8 fully connected kernels are measured against the dense q7
matrix-vector product of Arm's CMSIS-DSP library. This module gets that
library, builds it for a core, runs one call in QEMU and reports its exact
instruction count, its code size and its outputs, checked bit for bit
against a NumPy twin of its arithmetic::

    python -m darbgen.bench.cmsis --core cortex-m4 --rows 512 --cols 512

What runs
---------
CMSIS-DSP 1.10.3, ``Source/MatrixFunctions/arm_mat_vec_mult_q7.c``, taken
from the source distribution of the ``cmsisdsp`` package on PyPI when the
benchmark runs (:func:`fetch_cmsis_dsp`; nothing of CMSIS is kept in
darbgen's repository). CMSIS-DSP needs CMSIS core's ``cmsis_compiler.h``,
which that distribution lacks; darbgen has its own minimal one
(``runtime_c/bench/cmsis_compiler.h``: the handful of macros and
intrinsics the file uses, in C, gcc builtins and one-instruction asm).

The C paths CMSIS picks, by core:

* Cortex-M4, M7, M33 (DSP extension): the SIMD path, four rows at a time,
  four columns per step, ``SXTB16`` and ``SMLAD`` (two MACs each).
* Cortex-M0+, M3 (no DSP extension): the same code with CMSIS-DSP's own
  plain C versions of ``__SXTB16`` / ``__SMLAD`` (``dsp/none.h``).
* Cortex-M55: ``arm_math_types.h`` turns CMSIS's hand-written Helium
  (MVE) kernels on whenever the compiler targets MVE. They are kept off
  with ``-DARM_MATH_AUTOVECTORIZE`` (CMSIS's own switch; it changes nothing
  on the other cores), so the M55 runs the same DSP-extension C path as
  the M4, compiled for the M55; ``ARM_MATH_MVEI`` / ``ARM_MATH_HELIUM`` are
  never defined. The benchmark is therefore the scalar/DSP CMSIS-DSP
  baseline on every core, not CMSIS's best M55 code.

How it is measured
------------------
A generated C file holds the matrix and the vector as ``static const
int8_t`` arrays; ``bench_cmsis_run()`` (never inlined) fills an
``arm_matrix_instance_q7`` and calls ``arm_mat_vec_mult_q7`` once;
``main()`` calls it and writes the outputs to a host file over
semihosting. CMSIS's file is compiled on its own with darbgen's flags
(``-std=c99 -O2 -ffp-contract=off``, the warnings, but without ``-Werror``:
a warning in third-party code must not stop a benchmark) plus
``-ffunction-sections`` and the core's flags; the bench file with the full
strict flags. QEMU logs every executed instruction, and the count of one
call runs from the entry of ``arm_mat_vec_mult_q7`` to the first
instruction back in ``bench_cmsis_run`` (:func:`darbgen.toolchain.cortex_m.count_calls`).
The code size is the symbol size of ``arm_mat_vec_mult_q7`` in the linked
image (its literal pool included); the data size is the matrix, one byte a
weight.

With arm-none-eabi-gcc 12.2 and QEMU 7.2, 512 x 512 (seed 0): 513,712
instructions on the M4 (1.96 per MAC: 31 a step of four rows by four
columns), 498,349 on the M55 (low-overhead loops), 4,746,695 on the M0+
(18.1 per MAC). The count depends on how the intrinsics are built: see
``runtime_c/bench/cmsis_compiler.h`` (gcc's own builtins would give
596,015 on the M4). Only the plain C saturation of the M0+ branches on the
data; elsewhere the count depends on the shape alone.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DarbgenError
from ..resources import runtime_c_dir
from ..toolchain import cortex_m, host

#: The CMSIS-DSP release measured, and the SHA-256 of its source distribution on PyPI.
CMSIS_DSP_VERSION = "1.10.3"
CMSIS_DSP_SDIST_SHA256 = "307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519"
#: The files taken out of the source distribution (paths inside it, below its top folder).
KERNEL_SOURCE = "Source/MatrixFunctions/arm_mat_vec_mult_q7.c"
CMSIS_FILES = (
    "LICENSE",
    KERNEL_SOURCE,
    "PrivateInclude/arm_compiler_specific.h",
    "Include/arm_math_types.h",
    "Include/arm_math_memory.h",
    "Include/dsp/matrix_functions.h",
    "Include/dsp/none.h",
    "Include/dsp/utils.h",
)
#: Preprocessor definitions for every file that includes CMSIS-DSP's headers (see the module docstring).
CMSIS_DEFINES = ("-DARM_MATH_AUTOVECTORIZE",)
#: Seconds pip may take to download the source distribution (it prepares its metadata, which can take a minute).
DOWNLOAD_TIMEOUT = 900
#: arm_matrix_instance_q7 holds its dimensions as uint16_t.
MAX_DIM = 65535

_PROVENANCE = ".darbgen-source"  # which archive the files came from
_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|nodename nor servname|Network is unreachable|No route to host|"
    r"Connection refused|Connection reset|ConnectTimeout|ReadTimeout|timed out|ProxyError|SSLError|"
    r"Max retries exceeded|connection broken by|RemoteDisconnected|getaddrinfo failed",
    re.IGNORECASE)


class CMSISDownloadError(DarbgenError):
    """CMSIS-DSP's source could not be downloaded. ``network`` is True when
    the cause is the network (no connection, DNS, proxy, time-out)."""

    def __init__(self, message, network=False):
        super().__init__(message)
        self.network = network


def default_cache_dir():
    """Where :func:`fetch_cmsis_dsp` keeps CMSIS-DSP by default:
    ``$XDG_CACHE_HOME/darbgen/cmsisdsp-1.10.3``, else ``~/.cache/darbgen/cmsisdsp-1.10.3``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "darbgen" / f"cmsisdsp-{CMSIS_DSP_VERSION}"


def _is_complete(folder):
    # folders are filled in a temporary folder and renamed into place, so every file present means complete
    # (a cmsisdsp-1.10.3 folder unpacked by hand from the source distribution qualifies too)
    return all((folder / name).is_file() for name in CMSIS_FILES)


def _download_sdist(dest):
    """pip download the cmsisdsp source distribution into ``dest``; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "cmsisdsp",
           f"cmsisdsp=={CMSIS_DSP_VERSION}", "-d", str(dest), "--disable-pip-version-check", "--no-input",
           "--progress-bar", "off"]
    fix = (f"check the connection to PyPI (and any proxy), or download it elsewhere with `pip download "
           f"--no-deps --no-binary cmsisdsp cmsisdsp=={CMSIS_DSP_VERSION} -d DIR`, unpack it and pass the "
           f"cmsisdsp-{CMSIS_DSP_VERSION} folder as fetch_cmsis_dsp(cache_dir=...) / run_cmsis_dense(cmsis_dir=...)")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)
    except FileNotFoundError:
        raise CMSISDownloadError(f"cannot run {sys.executable} to download CMSIS-DSP") from None
    except subprocess.TimeoutExpired:
        raise CMSISDownloadError(f"downloading CMSIS-DSP {CMSIS_DSP_VERSION} from PyPI (pip) took longer than "
                                 f"{DOWNLOAD_TIMEOUT} s: {fix}", network=True) from None
    output = (proc.stdout + "\n" + proc.stderr).strip()
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-12:])
        if "No module named pip" in output:
            raise CMSISDownloadError(f"pip is missing from {sys.executable}: it is needed to download CMSIS-DSP "
                                     f"{CMSIS_DSP_VERSION}; install it with `{sys.executable} -m ensurepip`")
        network = bool(_NETWORK.search(output))
        if network:
            cause = "the network failed"
        elif "from versions: none" in output:
            # cmsisdsp is on PyPI: no version at all means pip did not reach it (pip only reports
            # connection errors when it retries) or its index settings (pip config list) point elsewhere
            network = True
            cause = "pip reached no index that has cmsisdsp (the network is down, or pip's index is not PyPI)"
        else:
            cause = f"pip failed (exit {proc.returncode})"
        raise CMSISDownloadError(f"cannot download CMSIS-DSP {CMSIS_DSP_VERSION} (the PyPI source distribution "
                                 f"of cmsisdsp): {cause}; {fix}.\npip said:\n{tail}", network=network)
    found = sorted(Path(dest).glob(f"cmsisdsp-{CMSIS_DSP_VERSION}.tar.gz"))
    if not found:
        raise CMSISDownloadError(f"pip downloaded no cmsisdsp-{CMSIS_DSP_VERSION}.tar.gz into {dest} "
                                 f"(found: {sorted(p.name for p in Path(dest).iterdir())})")
    return found[0]


def _extract(sdist, folder):
    digest = hashlib.sha256(Path(sdist).read_bytes()).hexdigest()
    if digest != CMSIS_DSP_SDIST_SHA256:
        raise CMSISDownloadError(f"{Path(sdist).name} has SHA-256 {digest}, not the {CMSIS_DSP_SDIST_SHA256} of "
                                 f"cmsisdsp {CMSIS_DSP_VERSION} on PyPI: the download is corrupt or not from PyPI; "
                                 f"try again, or check pip's index settings (pip config list)")
    top = f"cmsisdsp-{CMSIS_DSP_VERSION}"
    with tarfile.open(sdist, "r:gz") as tar:
        for name in CMSIS_FILES:
            try:
                member = tar.extractfile(f"{top}/{name}")
            except KeyError:
                member = None
            if member is None:
                raise CMSISDownloadError(f"{Path(sdist).name} lacks {top}/{name}: not the expected CMSIS-DSP "
                                         f"{CMSIS_DSP_VERSION} source distribution")
            out = folder / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(member.read())
    (folder / _PROVENANCE).write_text(f"cmsisdsp {CMSIS_DSP_VERSION} sha256 {digest}\n")


def _not_cmsis(folder):
    return DarbgenError(f"{folder} exists and is not a CMSIS-DSP {CMSIS_DSP_VERSION} folder (it lacks some of "
                        f"{', '.join(CMSIS_FILES)}); darbgen leaves it alone: pass a new or empty cache_dir, "
                        f"or delete it")


def fetch_cmsis_dsp(cache_dir=None):
    """The folder holding CMSIS-DSP's ``arm_mat_vec_mult_q7.c`` and the headers it needs.

    On the first call it runs ``python -m pip download --no-deps --no-binary
    cmsisdsp cmsisdsp==1.10.3`` (a minute or two: pip prepares the package's
    metadata), checks the archive's SHA-256, and unpacks only
    :data:`CMSIS_FILES` (Apache-2.0, its LICENSE included) into ``cache_dir``
    (default :func:`default_cache_dir`); later calls reuse that folder.
    A failed download raises :class:`CMSISDownloadError` (a
    :class:`DarbgenError`) saying how to fix it.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if _is_complete(folder):
        return folder
    if folder.exists() and not (folder.is_dir() and not any(folder.iterdir())):
        raise _not_cmsis(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as e:
        raise DarbgenError(f"cannot create the CMSIS-DSP cache folder {folder}: {e}; pass fetch_cmsis_dsp() a "
                           f"writable cache_dir or set XDG_CACHE_HOME") from None
    try:
        sdist = _download_sdist(work / "download")
        tree = work / "tree"
        tree.mkdir()
        _extract(sdist, tree)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()                            # an empty folder: fill it
        try:
            os.replace(tree, folder)
        except OSError:
            if not _is_complete(folder):              # else another process finished first: use its copy
                raise _not_cmsis(folder) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _int8_array(a, what, ndim):
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise DarbgenError(f"{what} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise DarbgenError(f"{what} must hold integers (q7, int8), got dtype {arr.dtype}; quantize it first")
    if arr.size and (arr.min() < -128 or arr.max() > 127):
        raise DarbgenError(f"{what} holds values outside int8's [-128, 127] "
                           f"(from {arr.min()} to {arr.max()}); quantize it to q7 first")
    return arr.astype(np.int8)


def _check_operands(w, x):
    w = _int8_array(w, "the weight matrix w", 2)
    x = _int8_array(x, "the input vector x", 1)
    rows, cols = w.shape
    if x.shape[0] != cols:
        raise DarbgenError(f"the input vector has {x.shape[0]} elements but the matrix {cols} columns")
    if not (1 <= rows <= MAX_DIM and 1 <= cols <= MAX_DIM):
        raise DarbgenError(f"arm_mat_vec_mult_q7 takes 1 to {MAX_DIM} rows and columns (uint16_t), "
                           f"got a {rows} x {cols} matrix")
    return w, x


def reference_q7(w, x):
    """NumPy twin of CMSIS-DSP's ``arm_mat_vec_mult_q7(w, x)``, bit for bit.

    Every output is ``__SSAT(sum >> 7, 8)``: the q7 x q7 products of a row
    summed in a q31 accumulator (``sum``), shifted right by 7 with an
    arithmetic shift (rounding towards minus infinity, no rounding
    constant), then saturated to [-128, 127]. The sum is exact: with at
    most 65535 columns (uint16_t) it stays below 2^31 in magnitude, so the
    accumulator never wraps, and the order of the additions (SMLAD's pairs,
    the four-column steps, the tail) does not matter. Returns int8, one per row.
    """
    w, x = _check_operands(w, x)
    acc = w.astype(np.int64) @ x.astype(np.int64)
    return np.clip(acc >> 7, -128, 127).astype(np.int8)


def _c_array(values, per_line=24):
    flat = [str(v) for v in np.asarray(values).ravel().tolist()]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "    " + ",\n    ".join(lines)


def _bench_source(w, x):
    rows, cols = w.shape
    return f"""/* darbgen (generated): CMSIS-DSP {CMSIS_DSP_VERSION} arm_mat_vec_mult_q7, {rows} x {cols} int8 */
#include <stdint.h>

#include "darb_semihost.h"
#include "dsp/matrix_functions.h"

#define BENCH_ROWS {rows}u
#define BENCH_COLS {cols}u

static const int8_t bench_w[BENCH_ROWS * BENCH_COLS] __attribute__((aligned(4))) = {{
{_c_array(w)}
}};
static const int8_t bench_x[BENCH_COLS] __attribute__((aligned(4))) = {{
{_c_array(x)}
}};
static int8_t bench_y[BENCH_ROWS] __attribute__((aligned(4)));

void bench_cmsis_run(void);

/* one call; the matrix instance lives on this frame, so the call is never a tail call */
__attribute__((noinline)) void bench_cmsis_run(void)
{{
    arm_matrix_instance_q7 m;
    m.numRows = (uint16_t)BENCH_ROWS;
    m.numCols = (uint16_t)BENCH_COLS;
    m.pData = (q7_t *)(uintptr_t)bench_w;   /* CMSIS only reads it */
    arm_mat_vec_mult_q7(&m, bench_x, bench_y);
}}

int main(void)
{{
    int32_t out;
    bench_cmsis_run();
    out = darb_sh_open("outputs.bin", DARB_SH_OPEN_WB);
    if (out < 0) {{
        return 1;
    }}
    if (!darb_sh_write(out, bench_y, BENCH_ROWS)) {{
        (void)darb_sh_close(out);
        return 2;
    }}
    return darb_sh_close(out) ? 0 : 4;
}}
"""


def _relaxed_flags():
    """darbgen's strict flags without -Werror (CMSIS's file is third-party code)."""
    return tuple(f for f in host.STRICT_FLAGS if f != "-Werror")


def _run(core_, w, x, folder, cmsis):
    bench_dir = runtime_c_dir() / "bench"
    includes = ("-I", str(bench_dir), "-I", str(cmsis / "Include"), "-I", str(cmsis / "PrivateInclude"))
    (folder / "bench_cmsis.c").write_text(_bench_source(w, x))
    obj = "arm_mat_vec_mult_q7.o"
    host.run_compiler([cortex_m.compiler(), *_relaxed_flags(), "-ffunction-sections", *core_.flags,
                       *CMSIS_DEFINES, *includes, "-c", str(cmsis / KERNEL_SOURCE), "-o", obj], cwd=folder)
    elf = cortex_m.link_image(folder, ["bench_cmsis.c", obj], core_, output="bench_cmsis.elf",
                              extra_flags=("-ffunction-sections", *CMSIS_DEFINES, *includes))
    trace = folder / "trace.log"
    cortex_m.run_image(elf, core_, folder, trace=trace)
    syms = cortex_m.symbols(elf)
    for name in ("arm_mat_vec_mult_q7", "bench_cmsis_run"):
        if name not in syms:
            raise DarbgenError(f"{elf} has no symbol {name}: the CMSIS-DSP benchmark image was not built as expected")
    entry, code_bytes = syms["arm_mat_vec_mult_q7"]
    start, size = syms["bench_cmsis_run"]
    (instructions,) = cortex_m.count_calls(trace, [entry], [(start, start + size)])
    out_file = folder / "outputs.bin"
    if not out_file.is_file():
        raise DarbgenError(f"{core_.name}: the CMSIS-DSP benchmark wrote no outputs.bin in {folder}")
    outputs = np.fromfile(out_file, dtype=np.int8)
    return instructions, code_bytes, outputs


def _check_outputs(core_name, outputs, w, x):
    """Raise DarbgenError unless ``outputs`` equals reference_q7(w, x) bit for bit."""
    expected = reference_q7(w, x)
    outputs = np.asarray(outputs)
    if outputs.dtype != np.int8 or outputs.shape != expected.shape:
        raise DarbgenError(f"{core_name}: CMSIS-DSP's arm_mat_vec_mult_q7 gave {outputs.size} outputs of type "
                           f"{outputs.dtype}, expected {expected.size} of int8")
    bad = np.flatnonzero(outputs != expected)
    if bad.size:
        i = int(bad[0])
        raise DarbgenError(f"{core_name}: CMSIS-DSP's arm_mat_vec_mult_q7 differs from reference_q7 in "
                           f"{bad.size} of {expected.size} outputs (first: row {i}, C {int(outputs[i])}, "
                           f"reference {int(expected[i])}); the C build or darbgen's cmsis_compiler.h is wrong")


def run_cmsis_dense(core_name, w_q7, x_q7, keep_dir=None, *, cmsis_dir=None):
    """Run CMSIS-DSP's ``arm_mat_vec_mult_q7`` once on ``core_name`` in QEMU.

    ``w_q7``: the (rows, cols) int8 weight matrix; ``x_q7``: the int8 input
    vector of ``cols`` elements. ``keep_dir``: a folder to build in and keep
    (C, objects, image, QEMU's trace), else a temporary one.
    ``cmsis_dir``: the CMSIS-DSP cache folder (see :func:`fetch_cmsis_dsp`).

    Returns a dict: ``instructions`` (executed by the one call, exact, from
    QEMU's trace), ``code_bytes`` (arm_mat_vec_mult_q7's machine code in
    the linked image), ``data_bytes`` (the matrix: rows * cols), ``outputs``
    (int8, one per row), plus ``core``, ``rows``, ``cols`` and
    ``cmsis_dsp`` (the version). Raises :class:`DarbgenError` if a single
    output differs from :func:`reference_q7`, and on a failed download,
    build or run.
    """
    core_ = cortex_m.core(core_name)
    w, x = _check_operands(w_q7, x_q7)
    cmsis = fetch_cmsis_dsp(cmsis_dir)
    if keep_dir is not None:
        folder = Path(keep_dir)
        folder.mkdir(parents=True, exist_ok=True)
        instructions, code_bytes, outputs = _run(core_, w, x, folder, cmsis)
    else:
        with tempfile.TemporaryDirectory(prefix="darbgen-cmsis-") as tmp:
            instructions, code_bytes, outputs = _run(core_, w, x, Path(tmp), cmsis)
    _check_outputs(core_.name, outputs, w, x)
    rows, cols = w.shape
    return {"core": core_.name, "rows": rows, "cols": cols, "cmsis_dsp": CMSIS_DSP_VERSION,
            "instructions": int(instructions), "code_bytes": int(code_bytes), "data_bytes": rows * cols,
            "outputs": outputs}


def main(argv=None):
    """``python -m darbgen.bench.cmsis``: the CMSIS-DSP baseline on random int8 data, one line per core."""
    p = argparse.ArgumentParser(prog="python -m darbgen.bench.cmsis", description=main.__doc__)
    p.add_argument("--core", action="append", choices=list(cortex_m.CORES),
                   help="a core to run on (repeatable; default cortex-m4)")
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--cols", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", metavar="DIR", help="build in DIR/<core> and keep the files")
    p.add_argument("--json", action="store_true", help="one JSON object per core on stdout")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    w = rng.integers(-128, 128, size=(args.rows, args.cols), dtype=np.int8)
    x = rng.integers(-128, 128, size=args.cols, dtype=np.int8)
    for name in args.core or ["cortex-m4"]:
        keep = Path(args.keep) / name if args.keep else None
        r = run_cmsis_dense(name, w, x, keep)
        row = {k: v for k, v in r.items() if k != "outputs"}
        row["instructions_per_mac"] = round(r["instructions"] / (args.rows * args.cols), 4)
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{name:14s} {args.rows}x{args.cols}: {r['instructions']:>10,d} instructions "
                  f"({row['instructions_per_mac']:.3f} per MAC), code {r['code_bytes']} B, "
                  f"data {r['data_bytes']} B, outputs bit-exact")
    return 0


__all__ = ["CMSIS_DSP_VERSION", "CMSISDownloadError", "default_cache_dir", "fetch_cmsis_dsp", "reference_q7",
           "run_cmsis_dense"]

if __name__ == "__main__":
    sys.exit(main())
