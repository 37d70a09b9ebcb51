"""Hostile paths and options on the command line: outputs that would destroy something (a device, the input
file, the current folder, a folder holding the inputs, an empty name), inputs that would block (a pipe), lists
that name nothing, options that would be silently ignored, and messages that must name the flag. Each must end
in one `darbgen: error: ...` line, exit status 2, with nothing written or replaced.

CASES is the table (model files: test_hostile_load.py; data: test_hostile_inputs.py; option values:
test_hostile_options.py): (id, a function that prepares tmp_path (the current folder during the run) and
returns the argv, a regexp the error line must match, a check of what must be left untouched).
"""
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
from conftest import cli_error_line

from darbgen.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_mlp.npz"


def model(tmp_path, name="m.npz"):
    path = tmp_path / name
    shutil.copy(EXAMPLE, path)
    return path


def _same_bytes(path, data):
    return lambda tmp_path: (tmp_path / path).read_bytes() == data


class Case(NamedTuple):
    id: str
    make: Callable
    error: str


def prune_to(target_name, force=True, setup=None):
    def make(tmp_path):
        m = model(tmp_path)
        if setup:
            setup(tmp_path)
        return ["prune", m.name, "--ratio", "2", "-o", target_name] + (["--force"] if force else [])
    return make


def fifo(tmp_path, name):
    os.mkfifo(tmp_path / name)
    return name


def build_args(*extra, name="m.npz"):
    def make(tmp_path):
        model(tmp_path)
        return ["build", name, *extra]
    return make


def generate_args(*extra):
    def make(tmp_path):
        model(tmp_path)
        return ["generate", "m.npz", *extra]
    return make


def _bad_order(tmp_path):
    arrays = dict(np.load(EXAMPLE))
    desc = json.loads(str(arrays["__model__"]))
    desc["layers"] = [desc["layers"][1], desc["layers"][0], desc["layers"][2]]
    desc["input_shape"] = [256]
    arrays["__model__"] = np.array(json.dumps(desc))
    np.savez(tmp_path / "bad.npz", **arrays)
    return ["generate", "bad.npz", "--dtype", "float32", "--out", "c"]


def _bad_shape(tmp_path):
    arrays = dict(np.load(EXAMPLE))
    desc = json.loads(str(arrays["__model__"]))
    desc["input_shape"] = [17]
    arrays["__model__"] = np.array(json.dumps(desc))
    np.savez(tmp_path / "bad.npz", **arrays)
    return ["generate", "bad.npz", "--dtype", "float32", "--out", "c"]


def _norms(tmp_path):
    model(tmp_path)
    np.savez(tmp_path / "norms.npz", v=np.ones(64))
    return ["prune", "m.npz", "--ratio", "2", "--input-norms", "norms.npz", "-o", "p.npz"]


def _out_holds_model(tmp_path):
    (tmp_path / "work").mkdir()
    model(tmp_path / "work")
    (tmp_path / "work" / ".darbgen-output").write_text("x")
    return ["build", "work/m.npz", "--out", "work", "--force"]


def _out_holds_eval(tmp_path):
    model(tmp_path)
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.zeros((3, 64)))
    np.save(tmp_path / "data" / "y.npy", np.zeros(3, int))
    (tmp_path / "data" / ".darbgen-output").write_text("x")
    return ["build", "m.npz", "--eval", "data/x.npy", "data/y.npy", "--out", "data", "--force"]


CASES = [
    # outputs that would destroy something
    Case("prune-o-device", prune_to("dev", setup=lambda t: os.mknod(t / "dev", 0o666 | stat.S_IFIFO)),
         r"dev: exists and is not a regular file \(a device, pipe or socket\); darbgen never replaces one"),
    Case("prune-o-input", prune_to("m.npz"), r"m\.npz: is the input file m\.npz; write the result to a new file"),
    Case("prune-o-input-via-link", prune_to("link.npz", setup=lambda t: os.symlink("m.npz", t / "link.npz")),
         r"link\.npz: is the input file m\.npz"),
    Case("prune-o-dash", prune_to("-", force=False), r"-: darbgen writes an \.npz file, not to standard output"),
    Case("prune-o-empty", prune_to("", force=False), r"the output file's name is empty"),
    Case("generate-out-empty", generate_args("--out", ""), r"the output folder's name is empty"),
    Case("build-out-empty-force", build_args("--out", "", "--force"), r"the output folder's name is empty"),
    Case("build-out-current-folder", build_args("--out", ".", "--force"),
         r"\.: is the current folder, and darbgen replaces its output folder whole"),
    Case("build-out-parent-folder", build_args("--out", "..", "--force"), r"\.\.: holds the current folder"),
    Case("build-out-holds-model", _out_holds_model, r"work: holds work/m\.npz, which this run reads"),
    Case("build-out-holds-eval-data", _out_holds_eval, r"data: holds data/x\.npy, which this run reads"),
    # inputs that would block
    Case("build-model-fifo", lambda t: ["build", fifo(t, "f.npz"), "--out", "c"],
         r"f\.npz: is not a regular file \(a pipe, device or socket\)"),
    Case("build-tflite-fifo", lambda t: ["build", fifo(t, "f.tflite"), "--out", "c"], r"is not a regular file"),
    Case("prune-fifo", lambda t: ["prune", fifo(t, "f.npz"), "--ratio", "2", "-o", "p.npz"],
         r"f\.npz: is not a regular file"),
    Case("generate-fifo", lambda t: ["generate", fifo(t, "f.npz"), "--out", "c"], r"f\.npz: is not a regular file"),
    Case("calib-fifo", lambda t: build_args("--calib", fifo(t, "c.npy"), "--out", "c")(t),
         r"c\.npy: is not a regular file \(a pipe, device or socket; --calib\)"),
    Case("eval-fifo", lambda t: build_args("--eval", fifo(t, "x.npy"), "y.npy", "--out", "c")(t),
         r"x\.npy: is not a regular file"),
    # lists that name nothing
    Case("prune-layers-empty", lambda t: ["prune", model(t).name, "--ratio", "2", "--layers", "", "-o", "p.npz"],
         r"--layers '' names nothing"),
    Case("build-layers-comma", build_args("--ratio", "2", "--layers", ",", "--out", "c"),
         r"--layers ',' names nothing; give comma-separated values, or leave --layers out"),
    Case("generate-layers-comma", generate_args("--layers", ",", "--out", "c"), r"--layers ',' names nothing"),
    Case("prune-candidates-empty",
         lambda t: ["prune", model(t).name, "--ratio", "2", "--candidates", "", "-o", "p.npz"], r"--candidates"),
    Case("prune-input-norms-unmatched", _norms,
         r"norms\.npz: has no norms for fc1\.weight, fc2\.weight, fc3\.weight .*it has: v"),
    # options that would be ignored
    Case("generate-sanitize-without-verify", generate_args("--sanitize", "--out", "c"), r"add --verify"),
    Case("build-objective-without-max-drop", build_args("--objective", "instructions", "--out", "c"),
         r"--objective chooses what the search under a budget minimises: give --max-drop with it"),
    Case("build-percentile-float32", build_args("--dtype", "float32", "--percentile", "99", "--out", "c"),
         r"--percentile sets int8 / int16 activation ranges; float32 needs none"),
    Case("generate-calib-float32", generate_args("--dtype", "float32", "--calib", "x.npy", "--out", "c"),
         r"--calib sets int8 / int16 activation ranges"),
    Case("build-calib-float32", build_args("--dtype", "float32", "--calib", "x.npy", "--out", "c"),
         r"--calib sets int8 / int16 activation ranges .* float32 without those needs none"),
    Case("generate-input-shape-mismatch", _bad_shape,
         r"bad\.npz: __model__ input_shape \[17\] holds 17 values, but layer 'fc1' takes 64 inputs"),
    Case("generate-layers-do-not-chain", _bad_order,
         r"bad\.npz: layer 'fc2' has 128 outputs, but the next layer 'fc1' takes 64 inputs"),
    # values that overflowed (OverflowError tracebacks)
    Case("build-timeout-inf", build_args("--timeout", "inf", "--out", "c"),
         r"--timeout must be a number of seconds above 0 and at most 604800 \(a week\), got inf"),
    Case("build-timeout-huge", build_args("--timeout", "1e30", "--out", "c"), r"--timeout .* got 1e\+30"),
    Case("build-timeout-nan", build_args("--timeout", "nan", "--out", "c"), r"--timeout .* got nan"),
    # messages that name the flag
    Case("build-refit-alpha-zero", build_args("--ratio", "2", "--refit", "--refit-alpha", "0", "--out", "c"),
         r"--refit-alpha must be a finite number > 0 \(the ridge strength\), got 0"),
    Case("build-prefix-unusable", build_args("--prefix", "é", "--out", "c"),
         r"--prefix 'é': has no letters or digits to make a C name from"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_cli_is_one_clear_error(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = case.make(tmp_path)
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    line = cli_error_line(argv, capsys)
    assert re.search(case.error, line), line
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    assert after == before, "a refused run changed the folder"


def test_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


def test_no_command_is_an_error_line(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("darbgen: error: give a command: prune, generate, build")


def test_a_device_survives_prune_force(tmp_path, monkeypatch):
    """The fuzzer's case: -o /dev/null --force replaced the device with a regular file (as root). A FIFO made
    here stands for the device (mknod of a character device needs root)."""
    monkeypatch.chdir(tmp_path)
    model(tmp_path)
    os.mkfifo(tmp_path / "node")
    assert main(["prune", "m.npz", "--ratio", "2", "-o", "node", "--force"]) == 2
    assert stat.S_ISFIFO(os.stat(tmp_path / "node").st_mode)
