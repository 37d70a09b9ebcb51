"""Quantization: the NumPy integer steps against Python-int references, and the
parameters and refusals of quantize_dense."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive_int
from darbgen.errors import DarbgenError
from darbgen.graph import Dense
from darbgen.quantize import (
    TensorQuant, doubling_high_mul, quantize_dense, quantize_multiplier, quantize_network, requantize_s8,
    requantize_s16, rounding_divide_by_pot, tensor_quant, tensor_range)

int32s = st.integers(naive_int.INT32_MIN, naive_int.INT32_MAX)
EDGES = [naive_int.INT32_MIN, naive_int.INT32_MIN + 1, -(2 ** 30), -1, 0, 1, 2 ** 30, naive_int.INT32_MAX]


@given(a=st.one_of(int32s, st.sampled_from(EDGES)), b=st.one_of(int32s, st.sampled_from(EDGES)))
def test_doubling_high_mul_matches_python_ints(a, b):
    assert int(doubling_high_mul(a, b)) == naive_int.doubling_high_mul(a, b)


@given(x=st.one_of(int32s, st.sampled_from(EDGES)), e=st.integers(0, 31))
def test_rounding_divide_by_pot_matches_python_ints(x, e):
    assert int(rounding_divide_by_pot(x, e)) == naive_int.rounding_divide_by_pot(x, e)


def test_rounding_divide_by_pot_ties_go_away_from_zero():
    x = np.array([3, -3, 5, -5, 4, -4, 6, -6])
    assert rounding_divide_by_pot(x, 1).tolist() == [2, -2, 3, -3, 2, -2, 3, -3]


@given(acc=st.integers(-(2 ** 24), 2 ** 24), m=st.integers(2 ** 30, 2 ** 31 - 1), shift=st.integers(-31, 6))
def test_requantize_s8_matches_python_ints(acc, m, shift):
    assert int(requantize_s8(acc, m, shift)) == naive_int.requantize_s8(acc, m, shift)


@given(acc=st.integers(-(2 ** 47) + 1, 2 ** 47 - 1), m=st.integers(2 ** 30, 2 ** 31 - 1),
       shift=st.integers(-31, 14))
def test_requantize_s16_matches_python_ints(acc, m, shift):
    assert int(requantize_s16(acc, m, shift)) == naive_int.requantize_s16(acc, m, shift)


@given(m=st.floats(1e-9, 1e4, allow_nan=False))
def test_quantize_multiplier_is_accurate(m):
    q, shift = quantize_multiplier(m)
    assert (q, shift) == naive_int.quantize_multiplier(m)
    assert 2 ** 30 <= q < 2 ** 31
    assert abs(q * 2.0 ** (shift - 31) - m) <= m * 2.0 ** -30


def test_quantize_multiplier_zero_and_negative():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-20) == (0, 0)       # below 2^-32: rounds to nothing
    with pytest.raises(DarbgenError):
        quantize_multiplier(-1.0)


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (0.0, 6.0), (-3.5, -0.5), (0.25, 9.0), (0.0, 0.0)])
def test_int8_tensor_quant_covers_range_and_zero(low, high):
    q = tensor_quant(low, high, "int8")
    assert -128 <= q.zero_point <= 127
    # real zero is exactly representable (padding and ReLU need it)
    assert q.dequantize(q.quantize(0.0)) == 0.0
    lo, hi = q.dequantize(-128), q.dequantize(127)
    assert lo <= min(low, 0) + q.scale and hi >= max(high, 0) - q.scale


def test_int16_tensor_quant_is_symmetric():
    q = tensor_quant(-2.0, 5.0, "int16")
    assert q.zero_point == 0 and q.scale == pytest.approx(5.0 / 32767)


def test_tensor_range_percentile_ignores_outliers():
    v = np.concatenate([np.linspace(-1, 1, 100_000), [1000.0]])
    assert tensor_range(v)[1] == 1000.0
    assert tensor_range(v, percentile=99.9)[1] < 1.01
    with pytest.raises(DarbgenError, match="percentile"):
        tensor_range(v, percentile=20)
    with pytest.raises(DarbgenError, match="NaN"):
        tensor_range(np.array([1.0, np.nan]))


def _layer(rng, rows=8, cols=12, act="none", bias_scale=0.1, name="fc"):
    return Dense(name, rng.standard_normal((rows, cols)).astype(np.float32),
                 (bias_scale * rng.standard_normal(rows)).astype(np.float32), activation=act)


def test_quantized_layer_matches_naive_python_loop(rng):
    """The vectorised reference (darbgen.reference.dense_int) equals a plain loop over Python ints."""
    from darbgen.reference import dense_int

    for dtype in ("int8", "int16"):
        for act in ("none", "relu", "relu6", "sigmoid", "tanh"):
            layer = _layer(rng, act=act)
            q = quantize_network([layer], dtype, calib=rng.standard_normal((50, 12)))[0]
            x = rng.integers(q.input.qmin, q.input.qmax + 1, (6, 12))
            got = dense_int(q, x)
            for v in range(x.shape[0]):
                want = naive_int.dense_int(q.weight.tolist(), q.bias.tolist(), x[v].tolist(), q.multiplier,
                                           q.shift, q.output_offset, q.act_min, q.act_max,
                                           None if q.lut is None else q.lut.tolist(), int16=(dtype == "int16"))
                assert got[v].tolist() == want, (dtype, act)


def test_weights_are_symmetric_per_row(rng):
    q = quantize_network([_layer(rng)], "int8", calib=rng.standard_normal((10, 12)))[0]
    assert np.abs(q.weight).max(axis=1).tolist() == [127] * 8
    np.testing.assert_allclose(q.weight * q.weight_scale[:, None], q.layer.weight, atol=q.weight_scale.max())


def test_relu_and_relu6_clamp_in_the_quantized_domain(rng):
    layer = _layer(rng, act="relu6")
    q = quantize_network([layer], "int8", calib=3 * rng.standard_normal((100, 12)))[0]
    assert q.act_min == q.output.zero_point
    assert q.output.dequantize(q.act_max) <= 6.0 + q.output.scale


def test_lookup_tables_follow_the_function(rng):
    for dtype in ("int8", "int16"):
        for act, f in (("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("tanh", np.tanh)):
            q = quantize_network([_layer(rng, act=act)], dtype, calib=rng.standard_normal((100, 12)))[0]
            if dtype == "int8":
                x = q.pre.dequantize(np.arange(-128, 128))
                y = q.output.dequantize(q.lut)
            else:
                from darbgen.quantize import lut_s16
                v = np.arange(-32768, 32768, 7)
                x = q.pre.dequantize(v)
                y = q.output.dequantize(lut_s16(q.lut, v))
            assert np.all(np.diff(y) >= 0), "a table activation must be monotonic"
            # int8: exact up to rounding, and 1.0 is one step above the top code;
            # int16 adds linear interpolation over 512 segments (below 2 steps of 1/32768)
            tolerance = 1.0 if dtype == "int8" else 2.0
            assert np.abs(y - f(x)).max() <= tolerance * q.output.scale, (dtype, act)


def test_dead_row_with_bias_gets_a_coarser_scale_not_an_overflow(rng):
    """A row whose only weight is ~1e-16 next to a normal bias (seen in the bundled MLP)."""
    w = rng.standard_normal((4, 16)).astype(np.float32)
    w[2] = 0
    w[2, 5] = 2.6e-16
    layer = Dense("fc", w, np.full(4, -0.001, np.float32))
    q = quantize_network([layer], "int8", calib=rng.standard_normal((20, 16)))[0]
    assert np.abs(q.bias).max() <= 2 ** 30
    assert q.acc_bound.max() <= q.acc_limit


def test_accumulator_overflow_is_refused_with_the_row_and_a_fix():
    cols = 20000
    layer = Dense("big", np.ones((1, cols), np.float32))
    in_q = tensor_quant(0.0, 1.0, "int8")
    with pytest.raises(DarbgenError, match=r"big: the int32 accumulator of row 0 could overflow.*float32"):
        quantize_dense(layer, "int8", in_q, output_range=(-1e-3, 1e-3))


def test_gain_beyond_the_shift_limit_is_refused():
    layer = Dense("tiny_out", np.ones((1, 4), np.float32))
    with pytest.raises(DarbgenError, match="tiny_out: row 0 needs a requantization gain"):
        quantize_dense(layer, "int8", tensor_quant(-100, 100, "int8"), output_range=(-1e-12, 1e-12))


def test_headroom_is_reported(rng):
    q = quantize_network([_layer(rng)], "int16", calib=rng.standard_normal((10, 12)))[0]
    assert q.headroom_bits > 10


def test_calibration_errors_name_the_problem(rng):
    layers = [_layer(rng), _layer(rng, rows=3, cols=5, name="other")]
    with pytest.raises(DarbgenError, match="calibration inputs"):
        quantize_network(layers[:1], "int8")
    with pytest.raises(DarbgenError, match="do not form a chain"):
        quantize_network(layers, "int8", calib=rng.standard_normal((5, 12)))
    with pytest.raises(DarbgenError, match=r"shape \(n, 12\)"):
        quantize_network(layers[:1], "int8", calib=rng.standard_normal((5, 7)))
    with pytest.raises(DarbgenError, match="unknown dtype"):
        quantize_network(layers[:1], "int4", calib=rng.standard_normal((5, 12)))
    with pytest.raises(DarbgenError, match="other: no calibration inputs"):
        quantize_network(layers, "int8", calib={"fc": rng.standard_normal((5, 12))})
    per_layer = quantize_network(layers, "int8", calib={"fc": rng.standard_normal((5, 12)),
                                                         "other": rng.standard_normal((5, 5))})
    assert [q.input.dtype for q in per_layer] == ["int8", "int8"]


def test_chain_shares_quantization_between_layers(rng):
    a = _layer(rng, rows=10, cols=12, act="relu")
    b = Dense("fc2", rng.standard_normal((4, 10)).astype(np.float32), activation="tanh")
    c = Dense("fc3", rng.standard_normal((3, 4)).astype(np.float32))
    qa, qb, qc = quantize_network([a, b, c], "int8", calib=rng.standard_normal((64, 12)))
    assert qb.input == qa.output and qc.input == qb.output
    assert qb.output == TensorQuant("int8", 1 / 128, 0)
