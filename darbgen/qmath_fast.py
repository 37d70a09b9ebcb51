"""numba kernels for the integer output stage of the NumPy reference (the graph pipeline's hot loop).

:func:`requantize_s8` computes exactly what :func:`darbgen.qmath.requantize_s8`
(the plain NumPy reference, TFLite's MultiplyByQuantizedMultiplier) does, in
one pass over the accumulators instead of a dozen int64 temporaries: the
graph reference runs several times faster, which the accuracy-budget search
(:mod:`darbgen.search`) and every bit-exactness test lean on. Tests compare
the two on random and edge-case inputs (tests/test_qmath_fast.py).
"""
import numpy as np
from numba import njit, prange

from . import qmath
from .numba_sigint import install as _hold_sigint_while_compiling

_hold_sigint_while_compiling()

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


@njit(cache=True, parallel=True)
def _requantize_rows(acc, mult, shift, out):
    n, c = acc.shape
    for i in prange(n):
        for j in range(c):
            s = shift[j]
            left = s if s > 0 else 0
            right = -s if s < 0 else 0
            a = acc[i, j] << left
            b = mult[j]
            if a == _I32_MIN and b == _I32_MIN:
                q = np.int64(_I32_MAX)
            else:
                ab = a * b
                if ab >= 0:
                    q = (ab + (1 << 30)) >> 31
                else:
                    t = ab + (1 - (1 << 30))
                    q = t >> 31 if t >= 0 else -((-t) >> 31)
            mask = (np.int64(1) << right) - 1
            rem = q & mask
            thr = (mask >> 1) + (1 if q < 0 else 0)
            out[i, j] = (q >> right) + (1 if rem > thr else 0)


def requantize_s8(acc, multiplier, shift):
    """:func:`darbgen.qmath.requantize_s8` (same arguments, same int64 result) in one numba pass.

    Per-channel parameters must run along the last axis of ``acc`` (or be
    scalars); any other broadcasting falls back to the NumPy reference."""
    acc = np.asarray(acc, np.int64)
    m = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    c = acc.shape[-1] if acc.ndim else 1
    if acc.size < 4096 or m.ndim > 1 or s.ndim > 1 or m.size not in (1, c) or s.size not in (1, c):
        return qmath.requantize_s8(acc, m, s)
    m = np.ascontiguousarray(np.broadcast_to(m.reshape(-1), (c,)))
    s = np.ascontiguousarray(np.broadcast_to(s.reshape(-1), (c,)))
    flat = np.ascontiguousarray(acc).reshape(-1, c)
    out = np.empty_like(flat)
    _requantize_rows(flat, m, s, out)
    return out.reshape(acc.shape)


def int_matmul(x, w):
    """``x @ w`` of integer arrays as int64, exactly, through float64 BLAS where every partial sum stays below
    2^53 (int8 and int16 products over any realistic row length), else in int64."""
    x = np.asarray(x)
    w = np.asarray(w)
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(w).max(initial=0)) * max(x.shape[-1], 1)
    if bound < 2.0 ** 52:
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x.astype(np.int64) @ w.astype(np.int64)
