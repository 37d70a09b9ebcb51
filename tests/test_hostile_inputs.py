"""Hostile data: evaluation, validation and calibration inputs and labels (--eval, --val, --calib, and the
data a model file bundles). Each must end in one `darbgen: error: ...` line naming the data and the fix, exit
status 2, before any work is done: never a traceback or an accuracy computed from nonsense.

CASES is the table (the hostile model files are in test_hostile_load.py): (id, a function that writes the
data into tmp_path and returns the CLI argv, a regexp the error line must match). The model is a tiny MLP
(4 inputs, 3 classes) with calibration and test data bundled.
"""
import re
from typing import Callable, NamedTuple

import numpy as np
import pytest
from conftest import cli_error_line
from test_hostile_load import mlp_arrays

from darbgen.build import build
from darbgen.errors import DarbgenError

N = 20


def model(tmp_path, **bundled):
    """The tiny MLP with calib.x, test.x and test.y bundled (``bundled`` replaces any of them)."""
    rng = np.random.default_rng(5)
    arrays = mlp_arrays()
    arrays.update({"calib.x": rng.standard_normal((32, 4)).astype(np.float32),
                   "test.x": rng.standard_normal((N, 4)).astype(np.float32),
                   "test.y": rng.integers(0, 3, N)})
    arrays.update({k.replace("_", "."): v for k, v in bundled.items()})
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path


def inputs(n=N):
    return np.random.default_rng(6).standard_normal((n, 4)).astype(np.float32)


def labels(n=N):
    return np.random.default_rng(7).integers(0, 3, n)


def save(tmp_path, name, array, allow_pickle=False):
    path = tmp_path / name
    np.save(path, array, allow_pickle=allow_pickle)
    return path


def with_eval(x, y):
    def make(tmp_path):
        return ["build", model(tmp_path), "--eval", save(tmp_path, "x.npy", x), save(tmp_path, "y.npy", y),
                "--out", tmp_path / "out"]
    return make


def with_calib(c, eval_data=None):
    def make(tmp_path):
        argv = ["build", model(tmp_path), "--calib", save(tmp_path, "c.npy", c), "--out", tmp_path / "out"]
        if eval_data is not None:
            argv += ["--eval", save(tmp_path, "x.npy", eval_data[0]), save(tmp_path, "y.npy", eval_data[1])]
        return argv
    return make


def with_bundled(**bundled):
    def make(tmp_path):
        return ["build", model(tmp_path, **bundled), "--out", tmp_path / "out"]
    return make


def with_file(flag, write):
    """--eval / --calib given a file ``write(path)`` writes."""
    def make(tmp_path):
        path = tmp_path / "data.npy"
        write(path)
        if flag == "--calib":
            return ["build", model(tmp_path), "--calib", path, "--out", tmp_path / "out"]
        return ["build", model(tmp_path), "--eval", path, save(tmp_path, "y.npy", labels()), "--out",
                tmp_path / "out"]
    return make


def huge_header(path):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (64 - (len(header) + 11) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())


def with_val(x, y):
    def make(tmp_path):
        return ["build", model(tmp_path), "--max-drop", "1", "--val", save(tmp_path, "vx.npy", x),
                save(tmp_path, "vy.npy", y), "--out", tmp_path / "out"]
    return make


class Case(NamedTuple):
    id: str
    make: Callable
    error: str


def _nan(a, where=(3, 1)):
    a = np.array(a, np.float64)
    a[where if a.ndim == 2 else where[0]] = np.nan
    return a


def _one_hot(y):
    return np.eye(3)[y]


CASES = [
    # --eval labels
    Case("eval-labels-fractional", with_eval(inputs(), labels() + 0.5),
         r"evaluation labels \(--eval\) must be whole class numbers 0\.\.2, and these have fractions"),
    Case("eval-labels-nan", with_eval(inputs(), _nan(labels())),
         r"evaluation labels \(--eval\) hold NaN or infinite values \(the first at input 3\)"),
    Case("eval-labels-inf", with_eval(inputs(), np.where(labels() == 1, np.inf, 0.0)),
         r"evaluation labels \(--eval\) hold NaN or infinite"),
    Case("eval-labels-2d", with_eval(inputs(), np.stack([labels(), labels()], 1)),
         r"evaluation labels \(--eval\) have shape \(20, 2\), which fits neither class labels"),
    Case("eval-labels-one-hot", with_eval(inputs(), _one_hot(labels())),
         r"have shape \(20, 3\): one-hot or integer rows.*y\.argmax\(axis=1\)"),
    Case("eval-labels-int-rows", with_eval(inputs(), np.ones((N, 3), np.int64)), r"one-hot or integer rows"),
    Case("eval-labels-out-of-range", with_eval(inputs(), np.full(N, 7)),
         r"evaluation labels \(--eval\) must be 0\.\.2 \(the model has 3 outputs\), got 7\.\.7"),
    Case("eval-labels-negative", with_eval(inputs(), np.full(N, -1.0)), r"must be 0\.\.2 .* got -1\.\.-1"),
    Case("eval-labels-strings", with_eval(inputs(), np.array(["cat"] * N)),
         r"evaluation labels \(--eval\) must be real numbers .* got dtype <U3"),
    Case("eval-labels-complex", with_eval(inputs(), labels().astype(np.complex64)), r"must be real numbers"),
    Case("eval-labels-count", with_eval(inputs(), labels(N - 1)),
         r"evaluation labels \(--eval\): 20 inputs but 19 labels"),
    Case("eval-labels-scalar", with_eval(inputs(), np.array(1)), r"labels \(--eval\) are a single value"),
    # --eval inputs
    Case("eval-inputs-nan", with_eval(_nan(inputs()), labels()),
         r"evaluation inputs \(--eval\) hold 1 NaN or infinite values \(the first in input 3\)"),
    Case("eval-inputs-width", with_eval(inputs()[:, :3], labels()),
         r"evaluation inputs \(--eval\) of shape \(20, 3\) do not match the model's input \(4,\) \(4 values "
         r"each\): give an array of shape \(n, 4\)"),
    Case("eval-inputs-complex", with_eval(inputs().astype(np.complex64), labels()),
         r"evaluation inputs \(--eval\) are complex \(complex64\)"),
    Case("eval-inputs-strings", with_eval(inputs().astype(str), labels()),
         r"evaluation inputs \(--eval\) must be numbers, got dtype <U"),
    Case("eval-inputs-empty", with_eval(np.zeros((0, 4), np.float32), labels(0)),
         r"evaluation inputs \(--eval\) are empty"),
    Case("eval-inputs-objects", with_file("--eval", lambda p: np.save(p, np.array([{}] * N), allow_pickle=True)),
         r"data\.npy: holds Python objects \(--eval inputs\); darbgen never unpickles"),
    Case("eval-inputs-npz", with_file("--eval", lambda p: np.savez(open(p, "wb"), x=inputs())),
         r"data\.npy: is an \.npz archive, expected one \.npy array \(--eval inputs\)"),
    Case("eval-inputs-huge-header", with_file("--eval", huge_header),
         r"data\.npy: declares shape \(100000, 100000\) float32 \(37\.3 GiB\), over the 1 GiB limit"),
    Case("eval-inputs-garbage", with_file("--eval", lambda p: p.write_bytes(b"not an array" * 9)),
         r"data\.npy: not a readable \.npy array \(--eval inputs: "),
    Case("eval-inputs-missing", with_file("--eval", lambda p: None), r"data\.npy: no such file \(--eval inputs\)"),
    # --calib
    Case("calib-complex", with_calib(inputs().astype(np.complex64)),
         r"calibration inputs \(--calib\) are complex \(complex64\); the model takes real numbers"),
    Case("calib-constant", with_calib(np.ones((N, 4), np.float32)),
         r"calibration inputs \(--calib\) are all 1: a constant array says nothing"),
    Case("calib-zeros", with_calib(np.zeros((N, 4), np.float32)), r"calibration inputs \(--calib\) are all 0"),
    Case("calib-far-above-bundled", with_calib(inputs() * 1e6),
         r"calibration inputs \(--calib\) span .* but the test inputs bundled in tiny\.npz \(test\.x\) span .*"
         r"times larger\): calibrate on inputs scaled and normalised as the model's real inputs are"),
    Case("calib-far-below-bundled", with_calib(inputs() * 1e-6), r"times smaller\): calibrate on inputs"),
    Case("calib-far-from-eval", with_calib(inputs(), (inputs() * 1e4, labels())),
         r"but the evaluation inputs \(--eval\) span .* times smaller"),
    Case("calib-nan", with_calib(_nan(inputs())), r"calibration inputs \(--calib\) hold 1 NaN"),
    Case("calib-width", with_calib(inputs()[:, :2]),
         r"calibration inputs \(--calib\) of shape \(20, 2\) do not match the model's input \(4,\)"),
    Case("calib-empty", with_calib(np.zeros((0, 4), np.float32)), r"calibration inputs \(--calib\) are empty"),
    Case("calib-huge-header", with_file("--calib", huge_header), r"over the 1 GiB limit \(--calib\)"),
    # data the model file bundles
    Case("bundled-test-labels-fractional", with_bundled(test_y=labels() + 0.25),
         r"tiny\.npz's bundled test labels \(test\.x, test\.y\) must be whole class numbers"),
    Case("bundled-test-inputs-nan", with_bundled(test_x=_nan(inputs())),
         r"tiny\.npz's bundled test inputs \(test\.x, test\.y\) hold 1 NaN"),
    Case("bundled-calib-constant", with_bundled(calib_x=np.full((8, 4), 3.0, np.float32)),
         r"tiny\.npz's bundled calibration inputs \(calib\.x\) are all 3"),
    # --val (checked before the search, whatever the model)
    Case("val-labels-nan", with_val(inputs(), _nan(labels())), r"validation labels \(--val\) hold NaN"),
    Case("val-inputs-width", with_val(inputs()[:, :1], labels()),
         r"validation inputs \(--val\) of shape \(20, 1\) do not match"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_data_is_one_clear_error(case, tmp_path, capsys):
    argv = case.make(tmp_path)
    line = cli_error_line(argv, capsys)
    assert re.search(case.error, line), line
    assert not (tmp_path / "out").exists()


def test_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


def test_whole_number_float_labels_are_accepted_as_class_numbers(tmp_path, gcc):
    """Float labels that are whole numbers (how pandas and many loaders store them), and (n, 1) columns, give
    the same accuracy as integer labels."""
    path = model(tmp_path)
    x, y = inputs(), labels()
    want = build(str(path), dtype="int8", eval_data=(x, y)).report["accuracy"]
    for variant in (y.astype(np.float32), y.astype(np.float64)[:, None], y.astype(bool) if y.max() <= 1 else y):
        got = build(str(path), dtype="int8", eval_data=(x, variant)).report["accuracy"]
        assert got == want
    assert want["metric"] == "accuracy" and 0 <= want["c"] <= 1


def test_api_names_the_arguments(tmp_path):
    """The API's errors name its arguments (the CLI's name the flags)."""
    path = model(tmp_path)
    with pytest.raises(DarbgenError, match=r"evaluation labels \(eval_data\) hold NaN"):
        build(str(path), eval_data=(inputs(), _nan(labels())))
    with pytest.raises(DarbgenError, match=r"calibration inputs \(calib\) are all 0"):
        build(str(path), calib=np.zeros((5, 4)))
    with pytest.raises(DarbgenError, match=r"evaluation data \(eval_data\) must be a pair"):
        build(str(path), eval_data=inputs())


def test_regression_targets_of_the_output_shape_are_accepted(tmp_path, gcc):
    """Float targets shaped like the output are a regression: the report gives the mean squared error."""
    path = model(tmp_path)
    targets = np.random.default_rng(8).random((N, 3))
    acc = build(str(path), dtype="float32", eval_data=(inputs(), targets)).report["accuracy"]
    assert acc["metric"] == "mse" and acc["c"] > 0


def test_calibration_far_from_an_int8_models_input_range(tmp_path):
    """An int8 .tflite model says what its inputs are: calibration (for --refit here) a million times larger
    than its int8 input can hold is refused, naming that range."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny" / "kws_ref_model.tflite"
    if not path.exists():
        import warnings

        warnings.warn(f"{path} is missing: the MLPerf Tiny models live in ../shared")
        pytest.skip(f"SKIPPED LOUDLY: {path} is missing (../shared/models/mlperf_tiny)")
    x = np.random.default_rng(9).uniform(-100, 20, (16, 49, 10, 1)) * 1e6
    with pytest.raises(DarbgenError, match=r"calibration inputs \(calib\) span .* but the values the model's "
                                           r"int8 input can hold span \[-123\.4, 25\.73\] .*times larger"):
        build(str(path), ratio=2, refit=True, calib=x)
