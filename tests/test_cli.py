"""`darbgen prune` end to end: files in, files out, tables, JSON and errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import spread_rows
from darbgen.cli import main


@pytest.fixture
def model_file(tmp_path, rng):
    path = tmp_path / "model.npz"
    np.savez(path, **{
        "fc1.weight": spread_rows(rng, 64, 96), "fc1.bias": np.zeros(64, np.float32),
        "conv.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "step": np.array(3),
    })
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_prune_writes_masks_and_prints_table(model_file, tmp_path, capsys):
    out_path = tmp_path / "pruned.npz"
    code, out, err = run(["prune", model_file, "--ratio", 4, "-o", out_path], capsys)
    assert code == 0, err
    assert "fc1.weight" in out and "conv.weight" in out and "achieved" in out
    assert "8x3x3x3" in out
    with np.load(out_path, allow_pickle=False) as data:
        files = set(data.files)
        assert {"fc1.weight", "fc1.weight__mask", "fc1.weight__block_sizes", "conv.weight__mask",
                "fc1.bias", "step", "__darbgen__"} <= files
        mask = data["conv.weight__mask"]
        assert mask.shape == (8, 3, 3, 3) and mask.dtype == bool
        w = data["conv.weight"]
        assert not w[~mask].any()
        np.testing.assert_array_equal(data["fc1.bias"], np.zeros(64, np.float32))
        meta = json.loads(str(data["__darbgen__"]))
        assert meta["method"] == "darb" and meta["requested_ratio"] == 4
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_prune_json_report(model_file, tmp_path, capsys):
    code, out, _ = run(["prune", model_file, "--ratio", 8, "--scope", "global", "--method", "irregular",
                        "-o", tmp_path / "p.npz", "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["scope"] == "global"
    assert report["ratio"] == pytest.approx(8, rel=0.01)
    names = [layer["name"] for layer in report["layers"]]
    assert names == ["fc1.weight", "conv.weight"]
    for layer in report["layers"]:
        assert {"float32", "int16", "int8"} <= set(layer["formats"]["csr"])
        assert "irregular_density" in layer


@pytest.mark.parametrize("extra", [["--method", "bmwm", "--block", "4"], ["--method", "nm", "--n", "2", "--m", "8"],
                                   ["--method", "block", "--tile", "2", "2", "--ratio", "4"],
                                   ["--method", "bank_balanced", "--banks", "4", "--ratio", "4"],
                                   ["--ratio", "4", "--candidates", "2,4,8"]])
def test_prune_methods_from_the_command_line(model_file, tmp_path, capsys, extra):
    code, out, err = run(["prune", model_file, "-o", tmp_path / "p.npz", "--json"] + extra, capsys)
    assert code == 0, err
    assert json.loads(out)["layers"][0]["kept"] > 0


def test_refuses_to_overwrite_without_force(model_file, tmp_path, capsys):
    out_path = tmp_path / "p.npz"
    out_path.write_bytes(b"precious")
    code, _, err = run(["prune", model_file, "--ratio", 4, "-o", out_path], capsys)
    assert code == 2 and "already exists; pass --force" in err
    assert out_path.read_bytes() == b"precious"
    code, _, _ = run(["prune", model_file, "--ratio", 4, "-o", out_path, "--force"], capsys)
    assert code == 0 and out_path.read_bytes() != b"precious"


def test_same_input_same_output_bytes(model_file, tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    run(["prune", model_file, "--ratio", 4, "-o", a], capsys)
    run(["prune", model_file, "--ratio", 4, "-o", b], capsys)
    meta_free = []
    for p in (a, b):
        with np.load(p) as d:
            meta_free.append({k: d[k] for k in d.files if k != "__darbgen__"})
    assert meta_free[0].keys() == meta_free[1].keys()
    for k in meta_free[0]:
        np.testing.assert_array_equal(meta_free[0][k], meta_free[1][k])


def write(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def bad_inputs(tmp_path):
    nan = np.ones((4, 4), np.float32)
    nan[1, 2] = np.nan
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, w=np.ones((50, 50)))
    truncated.write_bytes(truncated.read_bytes()[:300])
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, w=np.array([{"a": 1}], dtype=object))
    return [
        (["prune", write(tmp_path, "nan.npz", fc=nan), "--ratio", 2], "fc: 1 weight(s) are NaN or inf"),
        (["prune", write(tmp_path, "inf.npz", fc=np.full((3, 3), np.inf)), "--ratio", 2], "fc: 9 weight(s)"),
        (["prune", write(tmp_path, "empty.npz", fc=np.ones((0, 4))), "--ratio", 2], "fc: is empty"),
        (["prune", write(tmp_path, "bias.npz", b=np.ones(4)), "--ratio", 2, "--layers", "b"], "b: is 1-D"),
        (["prune", write(tmp_path, "none.npz", b=np.ones(4)), "--ratio", 2], "no weight matrix"),
        (["prune", write(tmp_path, "five.npz", w=np.ones((2, 2, 2, 2, 2))), "--ratio", 2], "w: 5-D arrays"),
        (["prune", write(tmp_path, "ok1.npz", w=np.ones((4, 4))), "--ratio", 1], "ratio must be a finite number > 1"),
        (["prune", write(tmp_path, "ok2.npz", w=np.ones((4, 4))), "--ratio", 0.5], "ratio must be"),
        (["prune", write(tmp_path, "ok3.npz", w=np.ones((4, 4))), "--ratio", 10], "cannot be reached"),
        (["prune", write(tmp_path, "ok4.npz", w=np.ones((4, 4))), "--ratio", 2, "--layers", "zz"], "zz: no such array"),
        (["prune", tmp_path / "missing.npz", "--ratio", 2], "no such file"),
        (["prune", truncated, "--ratio", 2], "not a readable .npz file"),
        (["prune", pickled, "--ratio", 2], "never unpickles"),
        (["prune", write(tmp_path, "text.npz", w=np.array([["a", "b"]])), "--ratio", 2, "--layers", "w"],
         "expected real numbers"),
    ]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    for argv, message in bad_inputs(tmp_path):
        out_path = tmp_path / "out.npz"
        code, out, err = run(argv + ["-o", out_path], capsys)
        assert code == 2, (argv, out, err)
        assert message in err, (message, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not out_path.exists()


def test_pruning_an_output_again_is_refused(model_file, tmp_path, capsys):
    first = tmp_path / "p.npz"
    run(["prune", model_file, "--ratio", 4, "-o", first], capsys)
    code, _, err = run(["prune", first, "--ratio", 4, "-o", tmp_path / "q.npz"], capsys)
    assert code == 2 and "already the output of `darbgen prune`" in err


def test_input_norms_file(model_file, tmp_path, capsys, rng):
    norms = write(tmp_path, "norms.npz", **{"fc1.weight": rng.random(96)})
    code, out, err = run(["prune", model_file, "--ratio", 4, "--layers", "fc1.weight", "--input-norms", norms,
                          "-o", tmp_path / "p.npz", "--json"], capsys)
    assert code == 0, err


def test_model_description_selects_layer_weights(tmp_path, capsys, rng):
    meta = json.dumps({"format": "darbgen-npz", "version": 1, "layers": [{"name": "fc", "kind": "dense"}]})
    path = write(tmp_path, "m.npz", **{"fc.weight": rng.standard_normal((16, 32)), "fc.bias": np.zeros(16),
                                       "test.x": rng.standard_normal((10, 32)), "__model__": np.array(meta)})
    code, out, err = run(["prune", path, "--ratio", 4, "-o", tmp_path / "p.npz", "--json"], capsys)
    assert code == 0, err
    assert [layer["name"] for layer in json.loads(out)["layers"]] == ["fc.weight"]


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prune", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--ratio" in out and "example" in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "darbgen" in capsys.readouterr().out
    assert main([]) == 2


def test_module_entry_point(model_file, tmp_path):
    out_path = tmp_path / "p.npz"
    proc = subprocess.run([sys.executable, "-m", "darbgen", "prune", str(model_file), "--ratio", "4",
                           "-o", str(out_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out_path.exists()


def test_import_is_light():
    code = ("import sys, darbgen; heavy = [m for m in ('numba', 'torch', 'sklearn', 'tensorflow', 'onnx', 'jinja2') "
            "if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
