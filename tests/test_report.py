"""`darbgen report`: the headline rule, goal checks, validation, the written report and the command."""
import json
import os
import re
import sys

import matplotlib  # noqa: F401  (in the test extra: a missing matplotlib must fail here, not skip)
import numpy as np
import pytest

from conftest import spread_rows
from darbgen import reporting
from darbgen.cli import main
from darbgen.errors import DarbgenError
from darbgen.files import MARKER

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(method, variant, requested, ratio, metric, bits=12.0):
    return {"method": method, "label": method, "variant": variant, "requested_ratio": requested,
            "ratio": ratio, "metric": metric, "bits_per_kept": bits, "format": "csr"}


def accuracy_results(**extra):
    """Dense 97.1 %, tolerance 0.5 points: the limit is 96.6 (itself within)."""
    runs = [
        # DARB one-shot: 2x and 4x pass (4x exactly at the limit), 8x fails, so 16x does not count.
        run("darb", "one-shot", 2, 2.0, 97.0), run("darb", "one-shot", 4, 4.1, 96.6),
        run("darb", "one-shot", 8, 8.2, 96.5), run("darb", "one-shot", 16, 16.3, 96.9),
        # block 4x4 one-shot: only 2x passes.
        run("block4x4", "one-shot", 2, 2.0, 97.0, bits=9.0), run("block4x4", "one-shot", 4, 4.0, 96.0),
        # irregular one-shot: even the lowest ratio fails.
        run("irregular", "one-shot", 2, 2.0, 96.0), run("irregular", "one-shot", 4, 4.0, 95.0),
        # fine-tuned: DARB 8x, irregular 16x, no block 4x4.
        run("darb", "fine-tuned", 8, 8.0, 96.9), run("darb", "fine-tuned", 16, 16.0, 96.0),
        run("irregular", "fine-tuned", 8, 8.0, 96.9), run("irregular", "fine-tuned", 16, 16.0, 96.8),
    ]
    data = {"schema": "darbgen-experiment/1", "task": "digits_mlp", "title": "MLP on digits",
            "metric": "accuracy", "higher_is_better": True, "dense_metric": 97.1,
            "tolerance": {"kind": "points", "value": 0.5}, "value_dtype": "int8",
            "command": "python examples/experiments/digits_mlp.py", "seconds": 12.0, "runs": runs}
    data.update(extra)
    return data


def bpc_results():
    """Dense 1.50 bpc, within 2 %: the limit is 1.53, lower is better."""
    runs = [run("darb", "refit", 2, 2.0, 1.50), run("darb", "refit", 4, 4.0, 1.52),
            run("darb", "refit", 8, 8.1, 1.53), run("darb", "refit", 16, 16.2, 1.54),
            run("irregular", "refit", 2, 2.0, 1.531)]
    return {"schema": "darbgen-experiment/1", "task": "char_lstm", "title": "LSTM on text", "metric": "bpc",
            "higher_is_better": False, "dense_metric": 1.50, "tolerance": {"kind": "relative", "value": 0.02},
            "runs": runs}


def by_key(rows):
    return {(r["method"], r["variant"]): r for r in rows}


# ----------------------------------------------------------------------------- headline and goals

def test_headline_stops_at_the_first_failure():
    rows = by_key(reporting.headline(reporting.check_results(accuracy_results())))
    darb = rows[("darb", "one-shot")]
    assert darb["ratio"] == 4.1 and darb["requested_ratio"] == 4 and darb["metric"] == 96.6
    assert darb["bits_per_kept"] == 12.0 and darb["runs"] == 4
    assert rows[("block4x4", "one-shot")]["ratio"] == 2.0
    assert rows[("block4x4", "one-shot")]["bits_per_kept"] == 9.0
    none = rows[("irregular", "one-shot")]
    assert none["ratio"] is None and none["metric"] is None and none["bits_per_kept"] is None
    assert rows[("irregular", "fine-tuned")]["ratio"] == 16.0
    assert rows[("darb", "fine-tuned")]["ratio"] == 8.0
    # fixed order: methods, then variants
    assert [(r["method"], r["variant"]) for r in reporting.headline(reporting.check_results(accuracy_results()))] \
        == [("irregular", "one-shot"), ("irregular", "fine-tuned"), ("block4x4", "one-shot"),
            ("darb", "one-shot"), ("darb", "fine-tuned")]


def test_headline_bpc_relative_tolerance_lower_is_better():
    res = reporting.check_results(bpc_results())
    assert reporting.tolerance_limit(res) == pytest.approx(1.53)
    rows = by_key(reporting.headline(res))
    assert rows[("darb", "refit")]["ratio"] == 8.1          # 1.53 is the limit itself: within
    assert rows[("irregular", "refit")]["ratio"] is None    # 1.531 > 1.53


def test_goal_check_numbers():
    goals = {g["variant"]: g for g in reporting.goal_check(reporting.check_results(accuracy_results()))}
    assert list(goals) == ["one-shot", "fine-tuned"]
    block, irregular = goals["one-shot"]["checks"]
    assert goals["one-shot"]["darb_ratio"] == 4.1
    assert block["baseline"] == "block4x4" and block["goal"] == 2.0
    assert block["factor"] == pytest.approx(2.05) and block["met"] is True
    assert irregular["baseline"] == "irregular" and irregular["factor"] is None and irregular["met"] is None
    block, irregular = goals["fine-tuned"]["checks"]
    assert block["baseline_ratio"] is None and block["met"] is None
    assert irregular["factor"] == pytest.approx(0.5) and irregular["goal"] == 0.8 and irregular["met"] is False


def test_markdown_tables():
    res = reporting.check_results(accuracy_results())
    head = reporting.headline_markdown(res)
    assert "| darb | one-shot | 4.10x | 96.60% | 12.00 |" in head
    assert "| irregular | one-shot | - | - | - |" in head
    goals = reporting.goal_markdown(res)
    assert "| one-shot | block 4x4 | 4.10x | 2.00x | 2.05x | >= 2x | yes |" in goals
    assert "| fine-tuned | irregular | 8.00x | 16.00x | 0.50x | >= 0.8x | no |" in goals
    full = reporting.metric_markdown(res)
    assert full.splitlines()[0] == "| method | variant | 2x | 4x | 8x | 16x |"
    assert "| darb | one-shot | 97.00 (2.00x) | 96.60 (4.10x) | 96.50* (8.20x) | 96.90 (16.30x) |" in full


# ----------------------------------------------------------------------------- validation

def write_json(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def broken(change):
    data = accuracy_results()
    change(data)
    return data


@pytest.mark.parametrize("data, field", [
    (broken(lambda d: d.pop("runs")), "'runs'"),
    (broken(lambda d: d.pop("dense_metric")), "'dense_metric'"),
    (broken(lambda d: d.update(schema="darbgen-experiment/0")), "'schema'"),
    (broken(lambda d: d["runs"][1].update(variant="retrained")), "runs[1].variant"),
    (broken(lambda d: d["runs"][2].update(method="block2x2")), "runs[2].method"),
    (broken(lambda d: d["runs"][3].pop("ratio")), "runs[3].ratio"),
    (broken(lambda d: d["runs"][0].update(metric=float("nan"))), "runs[0].metric"),
    (broken(lambda d: d["tolerance"].update(kind="percent")), "tolerance.kind"),
    (broken(lambda d: d.update(higher_is_better="yes")), "'higher_is_better'"),
    (broken(lambda d: d["runs"].append(dict(d["runs"][0]))), "repeats runs[0]"),
])
def test_load_results_names_the_field(tmp_path, data, field):
    path = write_json(tmp_path / "bad.json", data)   # json.dumps writes NaN as the literal NaN
    with pytest.raises(DarbgenError) as info:
        reporting.load_results(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_load_results_file_errors(tmp_path):
    with pytest.raises(DarbgenError, match="no such file"):
        reporting.load_results(tmp_path / "missing.json")
    with pytest.raises(DarbgenError, match="not valid JSON"):
        reporting.load_results(write_json(tmp_path / "cut.json", '{"schema": '))
    res = reporting.load_results(write_json(tmp_path / "ok.json", accuracy_results()))
    assert res["weights"] is None and res["runs"][0]["format"] == "csr"


# ----------------------------------------------------------------------------- the written report

@pytest.fixture
def inputs(tmp_path, rng):
    """A results file naming its weights, and the weights: one small matrix, one tall enough to downsample."""
    src = tmp_path / "inputs"
    src.mkdir()
    np.savez(src / "weights.npz", **{"fc1.weight": spread_rows(rng, 24, 40), "fc1.bias": np.zeros(24),
                                     "tall": spread_rows(rng, 300, 40)})
    results = write_json(src / "results.json", accuracy_results(weights="weights.npz"))
    return src / "results.json", src / "weights.npz", results


def files_in(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_write_report_files_links_and_determinism(tmp_path, inputs):
    results, weights, _ = inputs
    paths = reporting.write_report(tmp_path / "a", results=[results], ratio=8)   # weights from the JSON
    assert paths[0] == str(tmp_path / "a" / "report.md")
    assert all(os.path.isfile(p) for p in paths)
    written = files_in(tmp_path / "a")
    assert sorted(written) == sorted([MARKER] + [os.path.basename(p) for p in paths])
    pngs = [n for n in written if n.endswith(".png")]
    assert len(pngs) == 1 + 3 * 2        # metric plot, then density, blocks and masks per matrix
    assert all(written[n].startswith(PNG_MAGIC) for n in pngs)
    md = written["report.md"].decode()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(pngs)
    assert "| darb | one-shot | 4.10x | 96.60% | 12.00 |" in md
    assert "downsampled 2x2" in md and "one pixel per weight" in md
    assert "fc1.bias" not in md

    again = reporting.write_report(tmp_path / "b", results=[results], weights=weights, ratio=8)
    assert [os.path.basename(p) for p in again] == [os.path.basename(p) for p in paths]
    assert files_in(tmp_path / "b") == written


def test_write_report_refuses_existing_dir_unless_force(tmp_path, inputs):
    results = inputs[0]
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(DarbgenError, match="already exists"):
        reporting.write_report(out, results=[results])
    with pytest.raises(DarbgenError, match="not a folder darbgen wrote"):       # a user's folder: never replaced
        reporting.write_report(out, results=[results], force=True)
    assert os.listdir(out) == ["old.txt"]
    (out / MARKER).write_text("")                                                 # as if darbgen wrote it
    reporting.write_report(out, results=[results], weights=None, ratio=8, force=True)
    assert "old.txt" not in os.listdir(out) and "report.md" in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["inputs", "out"]


def test_write_report_leaves_nothing_behind_on_error(tmp_path, rng):
    # The second matrix has 3 columns: DARB cannot reach 8x there, after the first matrix was drawn.
    np.savez(tmp_path / "w.npz", a=spread_rows(rng, 16, 32), b=spread_rows(rng, 4, 3))
    with pytest.raises(DarbgenError, match="b: ratio 8 cannot be reached"):
        reporting.write_report(tmp_path / "out", weights=tmp_path / "w.npz", ratio=8)
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]


def test_write_report_needs_input(tmp_path):
    with pytest.raises(DarbgenError, match="nothing to report"):
        reporting.write_report(tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_downsample_keeps_shares():
    mask = np.zeros((5, 600), bool)
    mask[:, ::2] = True
    image, factor = reporting.downsample(mask, max_pixels=256)
    assert factor == 3 and image.shape == (2, 200)
    np.testing.assert_allclose(image[:, 0], [2 / 3, 2 / 3])


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    from darbgen import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DarbgenError, match=r"darbgen\[report\]"):
        plots._pyplot()


# ----------------------------------------------------------------------------- the command

def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_report(tmp_path, inputs, capsys):
    results, weights, _ = inputs
    out = tmp_path / "report"
    code, stdout, err = cli(["report", "--results", results, "--weights", weights, "--ratio", 8,
                             "--out", out, "--title", "My report"], capsys)
    assert code == 0, err
    assert str(out / "report.md") in stdout and "highest ratio within tolerance" in stdout
    assert re.search(r"digits_mlp\s+darb\s+one-shot\s+4\.10x\s+96\.60%", stdout)
    assert (out / "report.md").read_text().startswith("# My report\n")
    code, _, err = cli(["report", "--results", results, "--out", out], capsys)
    assert code == 2 and "--force" in err


def test_cli_report_errors(tmp_path, capsys):
    code, _, err = cli(["report", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "--results" in err and "--weights" in err
    bad = write_json(tmp_path / "bad.json", broken(lambda d: d["runs"][0].update(variant="x")))
    code, _, err = cli(["report", "--results", bad, "--out", tmp_path / "r"], capsys)
    assert code == 2 and err.startswith("darbgen: error:") and "runs[0].variant" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_cli_report_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["report", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "darbgen report --results" in text and "--weights" in text
