"""The numba output stage and the exact integer matmul against the plain NumPy reference (darbgen.qmath)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from darbgen import qmath
from darbgen.qmath_fast import int_matmul, requantize_s8

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def _case(rng, n, c, per_channel):
    acc = rng.integers(I32_MIN, I32_MAX, (n, c), endpoint=True)
    k = c if per_channel else 1
    mult = rng.integers(0, I32_MAX, k, endpoint=True)
    shift = rng.integers(-31, 8, k, endpoint=True)
    # accumulators small enough for the left shift to stay in int32, as the C's callers guarantee
    acc = acc >> np.maximum(shift, 0)
    return acc, mult, shift


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("shape", [(5000, 3), (97, 64), (2, 4096)])
def test_requantize_matches_reference_random(shape, per_channel):
    rng = np.random.default_rng(sum(shape) + per_channel)
    acc, mult, shift = _case(rng, *shape, per_channel)
    np.testing.assert_array_equal(requantize_s8(acc, mult, shift), qmath.requantize_s8(acc, mult, shift))


def test_requantize_edge_cases():
    edges = np.array([0, 1, -1, 2, -2, I32_MAX, I32_MIN, I32_MAX - 1, I32_MIN + 1, 1 << 30, -(1 << 30),
                      (1 << 30) - 1, -(1 << 30) + 1], np.int64)
    mults = np.array([0, 1, I32_MAX, 1 << 30, (1 << 30) + 1, I32_MIN], np.int64)
    shifts = np.array([-31, -30, -1, 0], np.int64)
    acc = np.tile(edges, 400)[:, None].repeat(len(mults) * len(shifts), axis=1)       # > 4096 values: numba
    mult = np.repeat(mults, len(shifts))
    shift = np.tile(shifts, len(mults))
    np.testing.assert_array_equal(requantize_s8(acc, mult, shift), qmath.requantize_s8(acc, mult, shift))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 70), st.booleans(), st.integers(-31, 4))
def test_requantize_hypothesis(seed, c, per_channel, s0):
    rng = np.random.default_rng(seed)
    n = 4096 // c + 1
    acc, mult, _ = _case(rng, n, c, per_channel)
    shift = np.full(mult.shape, s0)
    acc = acc >> max(s0, 0)
    np.testing.assert_array_equal(requantize_s8(acc, mult, shift), qmath.requantize_s8(acc, mult, shift))


def test_requantize_other_broadcasting_falls_back():
    rng = np.random.default_rng(3)
    acc, mult, shift = _case(rng, 8000, 4, True)
    m2 = np.broadcast_to(mult, (8000, 4))                  # 2-D parameters: the NumPy reference
    np.testing.assert_array_equal(requantize_s8(acc, m2, shift), qmath.requantize_s8(acc, m2, shift))


@pytest.mark.parametrize("big", [False, True])
def test_int_matmul_exact(big):
    rng = np.random.default_rng(int(big))
    if big:      # partial sums beyond 2^53: int64 path
        x = rng.integers(-(1 << 30), 1 << 30, (7, 50))
        w = rng.integers(-(1 << 30), 1 << 30, (50, 3))
    else:
        x = rng.integers(-128, 128, (300, 640))
        w = rng.integers(-127, 128, (640, 64))
    got = int_matmul(x, w)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, x.astype(np.int64) @ w.astype(np.int64))
