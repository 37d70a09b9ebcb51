"""How fast is DARB pruning, and how much memory does it need?

Run it::

    python -m darbgen.bench.prune            # a short table
    python -m darbgen.bench.prune --json     # one JSON object on stdout

What is measured
----------------
One float32 matrix (``rows x cols``, default 4096 x 4096 = 64 MiB) of standard
normal weights times a log-normal scale per row, so rows differ in magnitude
and therefore in density after the irregular pass, and DARB gives them
different block sizes, as in a trained layer. The seed is fixed.

In one process, after a warm-up call of each (numba compiles or loads its
cache, the pages of the matrix are touched), the three calls below are timed
``repeats`` times, interleaved round by round so that a noisy neighbour on a
shared machine hits all three alike; the median of each is reported (the
minimum too, as a hint of the noise):

``darb_s``
    ``darbgen.prune(w, ratio)``: method ``darb``, magnitude saliency, end to
    end (validation, the exact top-k of the irregular pass, row densities,
    block-size search, block-max masking, the result object).
``numpy_s``
    ``darbgen.pruning.vectorized.darb_numpy(w, ratio)``: the same answer from
    whole-array NumPy, the best one can do without compiled kernels.
``copy_s``
    ``numpy.copy(w)``: the physical floor. Any pruning has to read every
    weight (each one can change the selection) and write an output the size
    of the matrix; a copy does exactly one read and one write of the matrix
    at memory bandwidth, with nothing else. DARB cannot beat it: it reads the
    weights at least twice (the block sizes depend on the global top-k, so
    block-max masking can only start after a full pass) and writes a
    one-byte-per-weight mask. ``darb_vs_copy = darb_s / copy_s`` therefore
    says how close DARB is to the hardware, independently of the machine.

Every timed DARB mask is checked equal to the NumPy path's mask (and block
sizes), so the benchmark never reports the time of a wrong answer.

Peak memory is measured in a fresh child process (``sys.executable``), so the
parent's matrices do not count: it imports darbgen, warms numba up on a small
matrix, records its resident set (``baseline_rss_bytes``), builds a
``memory_rows x memory_rows`` float32 matrix (16384^2 = 1 GiB by default)
without a float64 temporary, prunes it and reports its high-water mark
(``ru_maxrss``) as ``peak_rss_bytes``. ``peak_vs_matrix`` is that peak over the
matrix size: the whole process, Python, NumPy and numba's LLVM included, so an
honest figure for "how much RAM do I need to prune this layer".

Goals checked (booleans in the output): ``darb_s <= 5 * copy_s``,
``numpy_s >= 5 * darb_s`` and ``peak_rss_bytes < 3 * matrix_bytes``.

Progress messages go to stderr, the result to stdout.
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

SEED = 20200207
ROW_SCALE_SIGMA = 0.3  # log-normal sigma of the per-row scale: one sigma is a factor 1.35


def make_matrix(rows, cols, seed=SEED, sigma=ROW_SCALE_SIGMA):
    """A float32 ``rows x cols`` matrix: standard normal times a log-normal
    scale per row. Generated straight into float32 (no float64 temporary, so
    a 1 GiB matrix needs 1 GiB)."""
    rng = np.random.default_rng(seed)
    w = np.empty((rows, cols), np.float32)
    rng.standard_normal(out=w, dtype=np.float32)
    scale = rng.lognormal(0.0, sigma, rows).astype(np.float32)
    w *= scale[:, None]
    return w


def _rss_now():
    """Current resident set size in bytes (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_rss()


def _peak_rss():
    """High-water mark of this process's resident set, in bytes."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; Linux: KiB


def _memory_child(rows, ratio):
    """Body of the peak-memory child process: prints one JSON object."""
    import darbgen

    darbgen.prune(make_matrix(64, 256), 16)  # numba: load the cache or compile
    baseline = _rss_now()
    w = make_matrix(rows, rows)
    start = time.perf_counter()
    result = darbgen.prune(w, ratio)
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_rss_bytes": _peak_rss(), "baseline_rss_bytes": baseline,
                      "matrix_bytes": w.nbytes, "memory_darb_s": seconds,
                      "memory_achieved_ratio": result.ratio}))


def measure_peak_memory(rows, ratio):
    """Run :func:`_memory_child` in a fresh interpreter and return its figures."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = f"from darbgen.bench.prune import _memory_child; _memory_child({int(rows)}, {float(ratio)!r})"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the peak-memory child failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_vs_matrix"] = out["peak_rss_bytes"] / out["matrix_bytes"]
    out["peak_above_baseline_vs_matrix"] = (out["peak_rss_bytes"] - out["baseline_rss_bytes"]) / out["matrix_bytes"]
    return out


def _same(reference, mask, block_sizes, what):
    if not (np.array_equal(reference[0], mask) and np.array_equal(reference[1], block_sizes)):
        raise AssertionError(f"{what} disagrees with the reference DARB mask; refusing to time a wrong answer")


def run(rows=4096, cols=4096, ratio=16.0, repeats=7, memory_rows=16384, progress=None):
    """Time DARB (numba), DARB (NumPy) and a copy on one matrix; return a dict.

    Args:
        rows, cols: matrix shape for the timings.
        ratio: pruning ratio (total / kept).
        repeats: timed runs of each call; medians are reported.
        memory_rows: side of the square matrix of the peak-memory check in a
            child process; 0 skips it.
        progress: optional callable taking a message string.

    Returns:
        A dict of the figures (see the module docstring); JSON-serialisable.
    """
    import numba

    import darbgen
    from darbgen.pruning.vectorized import darb_numpy

    say = progress or (lambda message: None)
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    say(f"building a {rows} x {cols} float32 matrix")
    w = make_matrix(rows, cols)

    say("warming up (numba compile or cache load)")
    first = darbgen.prune(w, ratio)
    reference = darb_numpy(w, ratio)
    _same(reference, first.mask, first.block_sizes, "darbgen.prune")
    np.copy(w)
    del first

    times = {"darb": [], "numpy": [], "copy": []}
    achieved = None
    say(f"timing {repeats} rounds of copy, darb, numpy")
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            start = time.perf_counter()
            copied = np.copy(w)
            times["copy"].append(time.perf_counter() - start)
            del copied

            start = time.perf_counter()
            result = darbgen.prune(w, ratio)
            times["darb"].append(time.perf_counter() - start)
            _same(reference, result.mask, result.block_sizes, "darbgen.prune")
            achieved = result.ratio
            del result

            start = time.perf_counter()
            mask, block_sizes = darb_numpy(w, ratio)
            times["numpy"].append(time.perf_counter() - start)
            _same(reference, mask, block_sizes, "darb_numpy")
            del mask, block_sizes
            say(f"  round {i + 1}/{repeats}: copy {times['copy'][-1] * 1e3:.1f} ms, "
                f"darb {times['darb'][-1] * 1e3:.1f} ms, numpy {times['numpy'][-1] * 1e3:.1f} ms")
    finally:
        if gc_was_enabled:
            gc.enable()

    med = {name: statistics.median(ts) for name, ts in times.items()}
    out = {
        "rows": rows, "cols": cols, "ratio": float(ratio), "achieved_ratio": achieved,
        "repeats": repeats,
        "darb_s": med["darb"], "numpy_s": med["numpy"], "copy_s": med["copy"],
        "darb_min_s": min(times["darb"]), "numpy_min_s": min(times["numpy"]), "copy_min_s": min(times["copy"]),
        "darb_vs_copy": med["darb"] / med["copy"],
        "numpy_vs_darb": med["numpy"] / med["darb"],
        "threads": numba.get_num_threads(),
        "block_size_counts": {int(b): int(n) for b, n in zip(*np.unique(reference[1], return_counts=True))},
        "numpy_version": np.__version__, "numba_version": numba.__version__,
        "seed": SEED, "row_scale_sigma": ROW_SCALE_SIGMA,
    }
    del w, reference
    gc.collect()

    if memory_rows:
        say(f"peak memory: pruning a {memory_rows} x {memory_rows} float32 matrix in a child process")
        out.update(measure_peak_memory(memory_rows, ratio))
    else:
        out.update({"peak_rss_bytes": None, "baseline_rss_bytes": None, "matrix_bytes": None,
                    "peak_vs_matrix": None})
    out["memory_rows"] = memory_rows

    out["goal_darb_within_5x_copy"] = out["darb_vs_copy"] <= 5.0
    out["goal_5x_faster_than_numpy"] = out["numpy_vs_darb"] >= 5.0
    out["goal_peak_under_3x"] = None if out["peak_vs_matrix"] is None else out["peak_vs_matrix"] < 3.0
    return out


def _size(nbytes):
    return f"{nbytes / (1 << 30):.2f} GiB" if nbytes >= 1 << 30 else f"{nbytes / (1 << 20):.0f} MiB"


def _table(r):
    ms = 1e3
    lines = [
        f"DARB pruning of a {r['rows']} x {r['cols']} float32 matrix, ratio {r['ratio']:g} "
        f"(achieved {r['achieved_ratio']:.3f}), {r['threads']} numba thread(s), median of {r['repeats']}",
        f"  darbgen.prune (numba)  {r['darb_s'] * ms:8.1f} ms   {r['darb_vs_copy']:5.2f} x copy",
        f"  darb_numpy (NumPy)     {r['numpy_s'] * ms:8.1f} ms   {r['numpy_vs_darb']:5.2f} x darb",
        f"  numpy.copy (floor)     {r['copy_s'] * ms:8.1f} ms",
    ]
    if r["peak_vs_matrix"] is not None:
        lines.append(
            f"  peak RSS, {r['memory_rows']}^2 matrix: {_size(r['peak_rss_bytes'])} = "
            f"{r['peak_vs_matrix']:.2f} x the {_size(r['matrix_bytes'])} matrix "
            f"(baseline {_size(r['baseline_rss_bytes'])} before the matrix)")

    def yn(v):
        return "skipped" if v is None else ("yes" if v else "NO")

    lines.append(f"goals: darb <= 5x copy: {yn(r['goal_darb_within_5x_copy'])}; "
                 f"darb >= 5x faster than NumPy: {yn(r['goal_5x_faster_than_numpy'])}; "
                 f"peak < 3x matrix: {yn(r['goal_peak_under_3x'])}")
    return "\n".join(lines)


def check_ratio(ratio, rows, cols):
    """Refuse, before the matrix is built, a --ratio DARB cannot reach on a ``rows`` x ``cols`` matrix."""
    import math

    from darbgen.errors import DarbgenError
    from darbgen.pruning.api import reachable_ratio

    if not math.isfinite(ratio) or ratio <= 1:
        raise DarbgenError(f"--ratio must be a finite number > 1 (16 keeps 1 weight in 16), got {ratio:g}")
    hi = reachable_ratio((rows, cols), "darb")[1]
    if ratio > hi:
        raise DarbgenError(f"--ratio {ratio:g} cannot be reached by DARB on a {rows} x {cols} matrix, which "
                           f"reaches at most {hi:g}; lower --ratio or raise --cols")
    return ratio


def main(argv=None):
    """Command line: ``python -m darbgen.bench.prune [--json] [--rows N] ...``."""
    parser = argparse.ArgumentParser(prog="darbgen bench prune",
                                     description="Time DARB pruning against NumPy and a plain copy, "
                                                 "and measure its peak memory.")
    parser.add_argument("--rows", type=int, default=4096, help="matrix rows for the timings (default 4096)")
    parser.add_argument("--cols", type=int, default=4096, help="matrix columns for the timings (default 4096)")
    parser.add_argument("--ratio", type=float, default=16.0, help="pruning ratio, total / kept (default 16)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each call (default 7)")
    parser.add_argument("--memory-rows", type=int, default=16384,
                        help="side of the square matrix of the peak-memory check (default 16384 = 1 GiB); 0 skips it")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    for name in ("rows", "cols", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.memory_rows < 0:
        parser.error("--memory-rows must be >= 0")

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    from darbgen.errors import DarbgenError

    try:
        check_ratio(args.ratio, args.rows, args.cols)
        result = run(rows=args.rows, cols=args.cols, ratio=args.ratio, repeats=args.repeats,
                     memory_rows=args.memory_rows, progress=progress)
    except DarbgenError as exc:
        print(f"darbgen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
