"""float32 at the edges of its range: denormal weights verify (the C equals the
reference and the float64 check allows for float32's absolute rounding among
the subnormals), weights whose sums overflow are refused before any C is
written, and the float64 check still catches a wrong reference."""
import numpy as np
import pytest

from darbgen.cli import main
from darbgen.codegen import generate
from darbgen.errors import DarbgenError
from darbgen.graph import Dense
from darbgen.layers.base import F32_INPUT_MAX
from darbgen.math_f32 import FLT_TINY, subnormal_floor
from darbgen.verify import (FLOAT_RTOL, LayerCheck, VerificationError, VerifyResult, check_float32_overflow,
                            float64_check, make_inputs, verify)

DENORMAL = np.float32(1e-42)


def _denormal_layer(activation="none", name="w"):
    return Dense(name, np.full((16, 32), DENORMAL, np.float32), activation=activation)


@pytest.mark.parametrize("activation", ["none", "relu", "tanh", "sigmoid"])
def test_denormal_weights_verify(gcc, activation):
    """The fuzzer's case: every weight 1e-42. The C equals the reference bit for bit and the float64
    check passes (it failed with 2.09e-04 when products among the subnormals were judged relatively)."""
    m = generate([_denormal_layer(activation)], dtype="float32")
    result = verify(m, cc=gcc)
    assert result.ok, result.describe()
    check = result.layers[0]
    assert check.mismatches == 0 and check.max_abs_diff == 0.0
    assert check.max_rel_f64 <= FLOAT_RTOL and check.status == "ok"
    assert "MISMATCH" not in result.describe()


def test_denormal_layer_then_large_weights_verify_as_a_model(gcc, rng):
    """Absolute subnormal errors of a first layer grow through a second one with large weights: the
    whole model's check propagates the floor with the rounding scale."""
    big = (rng.standard_normal((8, 16)) * 1e30).astype(np.float32)
    m = generate([_denormal_layer(), Dense("big", big)], dtype="float32")
    result = verify(m, cc=gcc)
    assert [c.name for c in result.layers] == ["w", "big", "(model)"]
    assert result.ok, result.describe()


def test_the_float64_check_still_catches_a_wrong_reference(rng):
    """The subnormal floor only allows float32's own rounding: a reference that flushes subnormals to
    zero, drops a bias or is off by a relative 1e-4 still fails the float64 check."""
    m = generate([_denormal_layer()], dtype="float32")
    g = m.layers[0]
    x = g.make_inputs(32, 0)
    want, (exact, scale) = g.reference(x), g.exact(x)
    floor = subnormal_floor(g.layer.in_size)
    assert float64_check(want, exact, scale, floor).max() <= FLOAT_RTOL               # the real reference passes
    assert np.any((want != 0) & (np.abs(want) < FLT_TINY))                            # its outputs are subnormal
    flushed = np.where(np.abs(want) < FLT_TINY, np.float32(0), want)                   # flush-to-zero arithmetic
    assert float64_check(flushed, exact, scale, floor).max() > FLOAT_RTOL
    doubled = want * np.float32(2)                                                     # a weight read twice
    assert float64_check(doubled, exact, scale, floor).max() > FLOAT_RTOL

    w = rng.standard_normal((16, 32)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    n = generate([Dense("n", w, b)], dtype="float32").layers[0]
    x = n.make_inputs(32, 0)
    want, (exact, scale) = n.reference(x), n.exact(x)
    floor = subnormal_floor(n.layer.in_size)
    assert float64_check(want, exact, scale, floor).max() <= FLOAT_RTOL
    no_bias = want - b
    assert float64_check(no_bias, exact, scale, floor).max() > FLOAT_RTOL
    nudged = want * np.float32(1 + 1e-4)
    assert float64_check(nudged, exact, scale, floor).max() > FLOAT_RTOL


def test_a_failed_float64_check_is_not_called_a_mismatch():
    """0 outputs differ: the message names the float64 check, never MISMATCH."""
    check = LayerCheck("w", "m_w", "float32", "dense", 45, 0, 0.0, 2.09e-4)
    assert not check.ok and check.status == "float64 check FAILED"
    result = VerifyResult([check], "gcc", [], False, 0.0)
    text = result.describe()
    assert "MISMATCH" not in text and "w: float64 check FAILED: 45 vectors, 0 outputs differ" in text
    assert "reference itself is wrong" in text
    err = str(VerificationError(result))
    assert "does not match" not in err and "float64 check" in err
    differ = LayerCheck("w", "m_w", "float32", "dense", 45, 3, 0.5, 1e-2, {"vector": 0, "output": 1})
    assert differ.status == "MISMATCH"
    assert str(VerificationError(VerifyResult([differ], "gcc", [], False, 0.0))).startswith(
        "generated C does not match the reference:\nw: MISMATCH: 45 vectors, 3 outputs differ")


@pytest.mark.parametrize("shape,value", [((16, 32), 3e38), ((16, 32), 1e36), ((4, 3), -2e36)])
def test_weights_whose_sums_overflow_are_refused(shape, value):
    with pytest.raises(DarbgenError, match=r"^w: float32 cannot hold this layer's sums: .* row 0 .*beyond float32's "
                                           r"largest value 3.4e\+38 .*scale the weights down") as info:
        generate([Dense("w", np.full(shape, value, np.float32))], dtype="float32")
    assert "\n" not in str(info.value)


def test_the_refusal_bound_is_the_verification_inputs():
    """Just inside the bound generates; the inputs verify uses cannot overflow it."""
    cols = 32
    limit = float(np.finfo(np.float32).max) / (F32_INPUT_MAX * cols)
    m = generate([Dense("w", np.full((4, cols), limit * 0.99, np.float32))], dtype="float32")
    x = make_inputs(m.layers[0].quantized)
    assert np.abs(x).max() == F32_INPUT_MAX
    assert np.all(np.isfinite(m.layers[0].reference(x)))
    with pytest.raises(DarbgenError, match="float32 cannot hold"):
        generate([Dense("w", np.full((4, cols), limit * 1.01, np.float32))], dtype="float32")


def test_int_types_still_take_huge_weights(rng):
    """int8 scales its weights, so 3e38 quantizes (the float32 refusal is float32's alone)."""
    m = generate([Dense("w", np.full((16, 32), 3e38, np.float32))], dtype="int8",
                 calib=rng.standard_normal((32, 32)))
    assert m.layers[0].quantized.weight.dtype == np.int8


def test_overflow_on_given_inputs_is_refused_before_compiling(rng):
    """verify(inputs=...) past float32's range: a clean error naming the layer, before any compiler runs
    (cc names no compiler, so reaching it would fail otherwise)."""
    w = np.where(rng.standard_normal((8, 16)) > 0, 1e30, -1e30).astype(np.float32)
    m = generate([Dense("w", w)], dtype="float32")
    x = (rng.standard_normal((4, 16)) * 1e10).astype(np.float32)
    with pytest.raises(DarbgenError, match=r"^w: float32 overflows on its verification inputs: \d+ outputs come "
                                           r"out (-?inf|nan) .*scale the layer's weights down"):
        verify(m, inputs={"w": x}, cc="/nonexistent/cc")


def test_a_rightly_infinite_output_still_verifies(gcc):
    """All-positive sums beyond float32 are +inf in float32 and in the float64 result: no refusal."""
    m = generate([Dense("w", np.full((4, 8), 1e30, np.float32))], dtype="float32")
    x = np.full((3, 8), 1e10, np.float32)
    want, exact = check_float32_overflow(m.layers[0], x)
    assert np.all(np.isposinf(want))
    result = verify(m, inputs={"w": x}, cc=gcc)
    assert result.ok, result.describe()


def test_overflow_in_the_whole_model_names_the_op(rng):
    """Each layer fits float32 on its own inputs, the chain does not: the model check names the op."""
    w1 = np.where(rng.standard_normal((16, 32)) > 0, 1e18, -1e18).astype(np.float32)
    w2 = np.where(rng.standard_normal((8, 16)) > 0, 1e18, -1e18).astype(np.float32)
    m = generate([Dense("fc1", w1), Dense("fc2", w2)], dtype="float32")
    model = m.units[-1]
    assert model.name == "(model)"
    x = model.make_inputs(8, 0)
    with pytest.raises(DarbgenError, match=r"^fc2 \(in the whole model\): float32 overflows on the model's"):
        check_float32_overflow(model, x)
    with pytest.raises(DarbgenError, match=r"^fc2 \(in the whole model\): float32 overflows"):
        verify(m, cc="/nonexistent/cc")


def test_cli_generate_refuses_huge_float32_weights(tmp_path, capsys):
    path = tmp_path / "big.npz"
    np.savez(path, w=np.full((16, 32), 3e38, np.float32))
    out = tmp_path / "c"
    code = main(["generate", str(path), "--dtype", "float32", "--verify", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("darbgen: error: w: float32 cannot hold this layer's sums") and err.count("\n") == 1
    assert not out.exists()


def test_cli_generate_verifies_denormal_weights(tmp_path, capsys, gcc):
    path = tmp_path / "den.npz"
    np.savez(path, w=np.full((16, 32), 1e-42, np.float32))
    code = main(["generate", str(path), "--dtype", "float32", "--verify", "--out", str(tmp_path / "c"),
                 "--size-target", "host"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "FAILED" not in out + err and "MISMATCH" not in out + err
