"""`darbgen generate` end to end on the bundled example and on bad input."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import slow_except, spread_rows
from darbgen.cli import main
from darbgen.files import MARKER

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.npz"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    path = tmp_path_factory.mktemp("pruned") / "digits_pruned.npz"
    assert main(["prune", str(EXAMPLE), "--ratio", "8", "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize("dtype,kernel", slow_except([("int8", "packed"), ("int16", "unrolled"), ("float32", "csr"),
                                                      ("int8", "dense")],
                                                     {("int8", "packed"), ("float32", "csr"), ("int8", "dense")}))
def test_generate_verify_json(pruned, tmp_path, capsys, gcc, arm_gcc, dtype, kernel):
    out_dir = tmp_path / "c"
    code, out, err = run(["generate", pruned, "--dtype", dtype, "--kernel", kernel, "--out", out_dir,
                          "--verify", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["verified"] is True
    assert [layer["name"] for layer in report["layers"]] == ["fc1", "fc2", "fc3"]
    for layer in report["layers"]:
        assert layer["verify"]["ok"] and layer["verify"]["mismatches"] == 0
        assert layer["bytes"]["values"] > 0 and layer["code_bytes"] > 0
        assert layer["ratio"] == pytest.approx(8, rel=0.1)
    if kernel in ("packed", "csr"):
        assert report["layers"][1]["bytes"]["index"] > 0
    assert any("softmax" in n for n in report["notes"])
    assert sorted(os.listdir(out_dir)) == sorted(report["files"] + [MARKER])
    assert (out_dir / "digits_mlp.h").is_file() and (out_dir / "digits_mlp_fc2.c").is_file()
    assert report["flash_bytes"] > sum(layer["bytes"]["values"] for layer in report["layers"])


def test_generate_table_and_overwrite_rules(pruned, tmp_path, capsys, arm_gcc):
    out_dir = tmp_path / "c"
    code, out, err = run(["generate", pruned, "--out", out_dir], capsys)
    assert code == 0, err
    assert "fc2" in out and "128x256" in out and "not verified" in out and "calibrated on calib.x" in out
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    code, _, err = run(["generate", pruned, "--out", out_dir, "--kernel", "csr"], capsys)
    assert code == 2 and "not empty; pass --force" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before       # untouched
    code, _, err = run(["generate", pruned, "--out", out_dir, "--kernel", "csr", "--force"], capsys)
    assert code == 0, err
    assert "darb_csr_fc_s8.c" in os.listdir(out_dir)


def test_generate_with_calibration_file_and_percentile(pruned, tmp_path, capsys, arm_gcc):
    calib = tmp_path / "calib.npy"
    with np.load(EXAMPLE) as d:
        np.save(calib, d["test.x"][:100])
    code, out, err = run(["generate", pruned, "--out", tmp_path / "c", "--calib", calib, "--percentile", "99.9",
                          "--layers", "fc1", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert [layer["name"] for layer in report["layers"]] == ["fc1"]
    assert not any("calibrated on" in n for n in report["notes"])


@pytest.fixture
def plain_file(tmp_path, rng):
    path = tmp_path / "plain.npz"
    np.savez(path, **{"enc.weight": spread_rows(rng, 16, 24), "enc.bias": np.zeros(16, np.float32)})
    return path


def test_errors_are_one_line_with_a_fix(plain_file, pruned, tmp_path, capsys, rng, arm_gcc):
    code, _, err = run(["generate", plain_file, "--out", tmp_path / "a"], capsys)
    assert code == 2 and "int8 needs calibration inputs: pass --calib" in err
    bad = tmp_path / "bad.npy"
    np.save(bad, rng.standard_normal((10, 23)))
    code, _, err = run(["generate", plain_file, "--out", tmp_path / "a", "--calib", bad], capsys)
    assert code == 2 and "enc: calibration inputs (--calib) of shape (10, 23) do not match" in err
    code, _, err = run(["generate", plain_file, "--out", tmp_path / "a", "--dtype", "float32", "--kernel", "dense"],
                       capsys)
    assert code == 0, err
    code, _, err = run(["generate", pruned, "--out", tmp_path / "b", "--layers", "fc9"], capsys)
    assert code == 2 and "fc9: no such layer" in err
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    code, _, err = run(["generate", pruned, "--out", tmp_path / "b", "--calib", tmp_path / "broken.npy"], capsys)
    assert code == 2 and "broken.npy" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_unsupported_layer_kind_is_named(tmp_path, capsys):
    path = tmp_path / "conv.npz"
    model = {"format": "darbgen-npz", "version": 1, "name": "c",
             "layers": [{"name": "conv1", "kind": "conv2d", "activation": "relu"}]}
    np.savez(path, **{"conv1.weight": np.ones((4, 3, 3, 3), np.float32), "__model__": np.array(json.dumps(model))})
    code, _, err = run(["generate", path, "--out", tmp_path / "o", "--dtype", "float32"], capsys)
    assert code == 2 and "layer 'conv1' is 'conv2d'" in err and "darbgen build" in err


def test_failed_verification_exits_1(pruned, tmp_path, capsys, monkeypatch, gcc, arm_gcc):
    """If the C and the reference ever disagree, the command says so and fails."""
    from darbgen import reference

    real = reference.run

    def off_by_one(q, x, kernel="packed"):
        out = real(q, x, kernel).copy()
        out[0, 0] += 1
        return out

    monkeypatch.setattr(reference, "run", off_by_one)
    code, out, err = run(["generate", pruned, "--out", tmp_path / "c", "--verify", "--json"], capsys)
    assert code == 1
    assert json.loads(out)["verified"] is False
    assert "verification FAILED" in err and "MISMATCH" in err


def test_generate_help_points_to_the_docs(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "docs/codegen.md" in text and "--verify" in text and "--kernel" in text


def test_generate_verify_on_a_core(pruned, tmp_path, capsys, qemu):
    code, out, err = run(["generate", pruned, "--out", tmp_path / "c", "--verify", "--target", "cortex-m33",
                          "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["verified"] is True and report["size_target"] == "cortex-m33"
    code, out, err = run(["generate", pruned, "--out", tmp_path / "d", "--target", "cortex-m33"], capsys)
    assert code == 2 and "add --verify" in err
    code, out, err = run(["generate", pruned, "--out", tmp_path / "e", "--verify", "--sanitize", "--target",
                          "cortex-m4"], capsys)
    assert code == 2 and "--sanitize runs on the host only" in err
