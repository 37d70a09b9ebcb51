"""Bad input: every case gets a DarbgenError (a ValueError) naming the array and the fix."""
import numpy as np
import pytest

import darbgen
from darbgen.errors import DarbgenError


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_weights_name_the_array_and_position(value):
    w = np.ones((4, 5), np.float32)
    w[2, 3] = value
    with pytest.raises(DarbgenError, match=r"fc1: 1 weight\(s\) are NaN or inf.*row 2, column 3"):
        darbgen.prune(w, 4, name="fc1")


def test_float64_too_large_for_float32():
    w = np.ones((3, 3))
    w[0, 0] = 1e300
    with pytest.raises(DarbgenError, match="too large for float32"):
        darbgen.prune(w, 2)


@pytest.mark.parametrize("shape,match", [((5,), "1-D array"), ((2, 3, 4), "Flatten a convolution"),
                                         ((0, 4), "empty"), ((3, 0), "empty")])
def test_wrong_shapes(shape, match):
    with pytest.raises(DarbgenError, match=match):
        darbgen.prune(np.ones(shape, np.float32), 2)


@pytest.mark.parametrize("ratio", [1, 0.5, 0, -3, float("nan"), float("inf")])
def test_bad_ratios(ratio):
    with pytest.raises(DarbgenError, match="ratio must be a finite number > 1"):
        darbgen.prune(np.ones((4, 4), np.float32), ratio, "irregular")


def test_ratio_that_keeps_nothing():
    with pytest.raises(DarbgenError, match="keeps no weight; the largest ratio here is 16"):
        darbgen.prune(np.ones((4, 4), np.float32), 100, "irregular")


def test_missing_ratio():
    with pytest.raises(DarbgenError, match="needs a ratio"):
        darbgen.prune(np.ones((4, 4), np.float32))


def test_unknown_method_and_option():
    w = np.ones((4, 4), np.float32)
    with pytest.raises(DarbgenError, match="unknown method 'magic'"):
        darbgen.prune(w, 2, "magic")
    with pytest.raises(DarbgenError, match="option\\(s\\) tile do not apply to method 'darb'"):
        darbgen.prune(w, 2, tile=(2, 2))


def test_bad_structure_options():
    w = np.ones((4, 16), np.float32)
    with pytest.raises(DarbgenError, match="block must be a positive integer"):
        darbgen.prune(w, method="bmwm", block=0)
    with pytest.raises(DarbgenError, match="disagree"):
        darbgen.prune(w, 4, "bmwm", block=8)
    with pytest.raises(DarbgenError, match="n < m"):
        darbgen.prune(w, method="nm", n=4, m=2)
    with pytest.raises(DarbgenError, match="tile must be a pair"):
        darbgen.prune(w, 2, "block", tile=3)
    with pytest.raises(DarbgenError, match="banks do not fit"):
        darbgen.prune(w, 2, "bank_balanced", banks=17)
    with pytest.raises(DarbgenError, match="candidate block sizes must be >= 1"):
        darbgen.prune(w, 2, candidates=[0, 2])
    with pytest.raises(DarbgenError, match="whole numbers"):
        darbgen.prune(w, 2, candidates=[1.5, 2])


def test_bad_input_norms():
    w = np.ones((4, 8), np.float32)
    with pytest.raises(DarbgenError, match="one value per column \\(8\\)"):
        darbgen.prune(w, 2, input_norms=np.ones(7))
    with pytest.raises(DarbgenError, match="finite and >= 0"):
        darbgen.prune(w, 2, input_norms=-np.ones(8))
    with pytest.raises(DarbgenError, match="unknown matrices: zz"):
        darbgen.prune_model({"a": w}, 2, input_norms={"zz": np.ones(8)})


def test_non_numeric_weights():
    with pytest.raises(DarbgenError, match="real numbers"):
        darbgen.prune(np.array([["a", "b"], ["c", "d"]]), 2)


def test_bad_scope_and_empty_model():
    with pytest.raises(DarbgenError, match="unknown scope"):
        darbgen.prune_model({"a": np.ones((2, 2))}, 2, scope="everything")
    with pytest.raises(DarbgenError, match="non-empty mapping"):
        darbgen.prune_model({}, 2)


def test_error_is_a_value_error():
    assert issubclass(DarbgenError, ValueError)
