"""`darbgen build` and `darbgen demo`, the npz and scikit-learn importers,
each checked against the framework's own inference."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import darbgen
from conftest import slow_except
from darbgen.build import build, load, predict
from darbgen.cli import main
from darbgen.errors import DarbgenError
from darbgen.graph import Activation, Dense, Flatten, Model
from darbgen.importers.npz import model_from_npz
from darbgen.npzio import load_npz

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_mlp.npz"
sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the test extra (bash scripts/setup.sh)")


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- the bundled model

def test_npz_model_matches_its_own_numpy_forward():
    arrays = load_npz(EXAMPLE)
    model = model_from_npz(arrays)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Activation", "Dense", "Activation",
                                                                  "Dense", "Activation"]
    out = model.forward(arrays["test.x"])
    assert np.allclose(out.sum(axis=1), 1)
    accuracy = np.mean(out.argmax(axis=1) == arrays["test.y"])
    assert accuracy == pytest.approx(json.loads(str(arrays["__model__"]))["test_accuracy"])


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_pruned_digits_c_agrees_with_pruned_float(dtype, gcc):
    result = build(EXAMPLE, ratio=2, dtype=dtype)
    report = result.report
    assert report["verified"] and report["model_check"]["ok"]
    acc = report["accuracy"]
    assert acc["c_agrees_with_pruned"] >= 0.99, acc
    assert acc["original"] == pytest.approx(0.9756, abs=1e-3)
    assert abs(acc["c"] - acc["pruned"]) <= 0.01
    assert report["ram_bytes"] == (256 + 128) * {"int8": 1, "int16": 2, "float32": 4}[dtype]
    assert report["flash_bytes"] > sum(layer["bytes"]["values"] for layer in report["layers"])


# the unrolled kernel on the digits MLP compiles slowly: test_cortex_m's instruction counts build it by default
@pytest.mark.parametrize("method,kernel", slow_except(
    [("irregular", "csr"), ("bmwm", "unrolled"), ("nm", "dense"), ("block", "packed")],
    {("irregular", "csr"), ("nm", "dense"), ("block", "packed")}))
def test_every_method_and_kernel_builds(gcc, method, kernel):
    r = build(EXAMPLE, ratio=2, method=method, kernel=kernel, dtype="int8")
    assert r.ok
    if method == "block":
        assert {layer["kernel"] for layer in r.report["layers"][:3]} == {"csr"}
        assert any("csr kernel" in n for n in r.report["notes"])


def test_build_without_pruning_uses_the_dense_kernel(gcc):
    r = build(EXAMPLE, dtype="float32")
    assert r.ok and r.report["kernel"] == "dense" and r.report["method"] is None
    assert r.report["accuracy"]["c"] == pytest.approx(r.report["accuracy"]["original"])


# ----------------------------------------------------------------------------- scikit-learn

@pytest.fixture(scope="module")
def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16).astype(np.float32), y, test_size=0.3, random_state=1, stratify=y)


@pytest.fixture(scope="module")
def classifier(digits_split):
    import warnings

    from sklearn.neural_network import MLPClassifier

    x_train, _, y_train, _ = digits_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden_layer_sizes=(48, 24), activation="tanh", max_iter=150, random_state=0).fit(x_train, y_train + 3)


def test_sklearn_classifier_float32_c_matches_sklearn(classifier, digits_split, gcc):
    _, x_test, _, y_test = digits_split
    r = build(classifier, dtype="float32", eval_data=(x_test, y_test + 3))
    assert r.ok
    proba = classifier.predict_proba(x_test)
    assert np.max(np.abs(r.eval_outputs - proba)) <= 1e-4 * np.max(np.abs(proba))
    assert np.array_equal(predict(r.eval_outputs, r.model.classes), classifier.predict(x_test))
    assert r.report["accuracy"]["c"] == pytest.approx(classifier.score(x_test, y_test + 3))


def test_sklearn_classifier_int8_c_agrees_on_99_percent(classifier, digits_split, gcc):
    x_train, x_test, _, y_test = digits_split
    r = build(classifier, dtype="int8", calib=x_train[:300], eval_data=(x_test, y_test + 3))
    assert r.ok
    agree = np.mean(predict(r.eval_outputs, r.model.classes) == classifier.predict(x_test))
    assert agree >= 0.99, agree


def test_sklearn_regressor_matches_sklearn(gcc):
    import warnings

    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor

    x, y = load_diabetes(return_X_y=True)
    x = (x / np.abs(x).max(axis=0)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(32,), activation="relu", max_iter=300, random_state=0).fit(x[:300], y[:300] / 100)
    want = reg.predict(x[300:])
    r = build(reg, dtype="float32", eval_data=(x[300:], y[300:] / 100))
    assert r.ok and r.report["accuracy"]["metric"] == "mse"
    assert np.max(np.abs(r.eval_outputs[:, 0] - want)) <= 1e-4 * np.max(np.abs(want))
    # calibrated on every input (no labels): test inputs beyond a narrower range would saturate
    r8 = build(reg, dtype="int8", calib=x, eval_data=(x[300:], y[300:] / 100))
    assert r8.ok
    assert np.max(np.abs(r8.eval_outputs[:, 0] - want)) <= 0.05 * np.ptp(want)


def test_pickles_need_permission(classifier, tmp_path, capsys, gcc):
    path = tmp_path / "clf.pkl"
    with open(path, "wb") as f:
        pickle.dump(classifier, f)
    code, _, err = run(["build", path, "--dtype", "float32"], capsys)
    assert code == 2 and "--allow-pickle" in err
    code, out, err = run(["build", path, "--dtype", "float32", "--allow-pickle", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["verified"] is True
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    code, _, err = run(["build", tmp_path / "junk.pkl", "--allow-pickle"], capsys)
    assert code == 2 and "not a readable pickle" in err


# ----------------------------------------------------------------------------- CLI

def test_build_cli_json_and_table(tmp_path, capsys, gcc):
    out_dir = tmp_path / "c"
    code, out, err = run(["build", EXAMPLE, "--ratio", "2", "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    for key in ("verified", "flash_bytes", "ram_bytes", "layers", "accuracy"):
        assert key in report
    assert set(report["accuracy"]) >= {"original", "pruned", "c"}
    assert report["layers"][0]["block_sizes"] and report["layers"][0]["kind"] == "dense"
    assert (out_dir / "digits_mlp.h").is_file() and (out_dir / "digits_mlp.c").is_file()
    header = (out_dir / "digits_mlp.h").read_text()
    for macro in ("DIGITS_MLP_INPUT_SIZE 64", "DIGITS_MLP_OUTPUT_SIZE 10", "DIGITS_MLP_INPUT_SCALE",
                  "DIGITS_MLP_ARENA_BYTES 384", "void digits_mlp_run(const int8_t *in, int8_t *out);"):
        assert macro in header
    code, _, err = run(["build", EXAMPLE, "--ratio", "2", "--out", out_dir], capsys)
    assert code == 2 and "not empty" in err
    code, out, err = run(["build", EXAMPLE, "--ratio", "2", "--dtype", "int16"], capsys)
    assert code == 0 and "accuracy on 450 test inputs" in out and "RAM 768 B" in out


def test_build_cli_eval_files_and_errors(tmp_path, capsys, gcc):
    arrays = load_npz(EXAMPLE)
    np.save(tmp_path / "x.npy", arrays["test.x"][:100])
    np.save(tmp_path / "y.npy", arrays["test.y"][:100])
    np.save(tmp_path / "y_short.npy", arrays["test.y"][:99])
    code, out, err = run(["build", EXAMPLE, "--ratio", "2", "--eval", tmp_path / "x.npy", tmp_path / "y.npy",
                          "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"]["vectors"] == 100
    code, _, err = run(["build", EXAMPLE, "--eval", tmp_path / "x.npy", tmp_path / "y_short.npy"], capsys)
    assert code == 2 and "100 inputs but 99 labels" in err
    np.savez(tmp_path / "per_layer.npz", fc1=arrays["test.x"][:10])
    code, _, err = run(["build", EXAMPLE, "--calib", tmp_path / "per_layer.npz"], capsys)
    assert code == 2 and "not an .npz of per-layer inputs" in err
    code, _, err = run(["build", EXAMPLE, "--ratio", "0.5"], capsys)
    assert code == 2 and "ratio" in err
    code, _, err = run(["build", tmp_path / "model.pb"], capsys)
    assert code == 2 and "unknown model format .pb" in err and ".tflite" in err
    code, _, err = run(["build", tmp_path / "model.tflite"], capsys)
    assert code == 2 and "no such file" in err
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones((2, 2), np.float32))
    code, _, err = run(["build", plain], capsys)
    assert code == 2 and "no __model__ description" in err


def test_demo_runs_with_no_arguments(capsys, gcc):
    code, out, err = run(["demo"], capsys)
    assert code == 0, err
    assert "bit-identical to the reference" in out and "generated C 9" in out and "C written to" in out
    folder = out.split("C written to ")[1].split(" ")[0]
    assert os.path.isfile(os.path.join(folder, "digits_mlp.c"))


# ----------------------------------------------------------------------------- the graph

def test_graph_checks_shapes_and_names():
    w = np.ones((3, 4), np.float32)
    with pytest.raises(DarbgenError, match="fc: a dense layer with 4 inputs cannot take a tensor of shape"):
        Model("m", (5,), [Dense("fc", w)])
    with pytest.raises(DarbgenError, match=r"add a flatten layer"):
        Model("m", (2, 2), [Dense("fc", w)])
    Model("m", (2, 2), [Flatten("f"), Dense("fc", w)])
    with pytest.raises(DarbgenError, match="used twice"):
        Model("m", (4,), [Dense("fc", w), Dense("fc", np.ones((3, 3), np.float32))])
    with pytest.raises(DarbgenError, match="not supported"):
        Activation("a", "gelu")
    ops = Model("m", (4,), [Dense("fc", w), Activation("r", "relu"), Activation("s", "softmax")]).ops()
    assert [type(o).__name__ for o in ops] == ["Dense", "Softmax"] and ops[0].activation == "relu"


def test_load_refuses_unknown_objects():
    with pytest.raises(DarbgenError, match="cannot build from a dict"):
        load({"a": 1})


CNN = ROOT / "examples" / "digits_cnn.npz"


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_bundled_cnn_builds_and_agrees_with_float(dtype, gcc):
    """The bundled CNN (conv, pool, flatten, dense, softmax), its small first
    convolution left dense (packed as blocks of 1), the rest pruned 2x."""
    r = build(CNN, ratio=2, layers=["conv2", "fc"], dtype=dtype)
    assert r.ok and r.report["model_check"]["ok"]
    kinds = [layer["kind"] for layer in r.report["layers"]]
    assert kinds == ["conv", "maxpool", "conv", "maxpool", "dense", "softmax"]
    conv1 = r.report["layers"][0]
    assert conv1["ratio"] == 1.0 and conv1["block_sizes"] == {} and conv1["bytes"]["index"] == 0
    acc = r.report["accuracy"]
    assert acc["original"] == pytest.approx(0.9822, abs=1e-3)
    assert acc["c_agrees_with_pruned"] >= 0.99, acc


def test_build_layers_option(capsys, gcc):
    code, out, err = run(["build", CNN, "--ratio", "2", "--layers", "conv2,fc", "--json"], capsys)
    assert code == 0, err
    ratios = {layer["name"]: layer.get("ratio") for layer in json.loads(out)["layers"]}
    assert ratios["conv1"] == 1.0 and ratios["conv2"] == pytest.approx(2, rel=0.05)
    code, _, err = run(["build", CNN, "--ratio", "2", "--layers", "conv9"], capsys)
    assert code == 2 and "conv9: no dense or convolution layer" in err
