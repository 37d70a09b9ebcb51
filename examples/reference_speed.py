"""Speed of the NumPy int8 reference: the oracle the generated C is checked against, which
``darbgen build --max-drop`` runs hundreds of times.

Prints the MLPerf Tiny KWS model's int8 reference on 600 inputs, and the numba output
stage (darbgen.qmath_fast) against qmath's plain NumPy version in the same run (medians
of 3). Run from the repository root::

    .venv/bin/python examples/reference_speed.py
"""
import statistics
import time
from pathlib import Path

import numpy as np

from darbgen import qmath, qmath_fast
from darbgen.build import load
from darbgen.graph_run import quantize_graph

MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny" / "kws_ref_model.tflite"


def median_seconds(f, k=3):
    times = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    qg = quantize_graph(load(str(MODEL), False).model, "int8")
    x = np.random.default_rng(0).integers(-128, 128, (600, 49, 10, 1)).astype(np.int8)
    qg.run(x[:4])                                   # numba's compile / cache load outside the timing
    full = median_seconds(lambda: qg.run(x))
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, (75000, 64))
    mult, shift = rng.integers(1 << 30, 1 << 31, 64), rng.integers(-10, 1, 64)
    ref = median_seconds(lambda: qmath.requantize_s8(acc, mult, shift))
    fast = median_seconds(lambda: qmath_fast.requantize_s8(acc, mult, shift))
    print(f"KWS int8 reference, 600 inputs: {full:.2f} s")
    print(f"requantize 75000 x 64: NumPy {ref * 1e3:.0f} ms, numba {fast * 1e3:.0f} ms, ratio {ref / fast:.1f}x")


if __name__ == "__main__":
    main()
