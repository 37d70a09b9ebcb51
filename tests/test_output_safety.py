"""Output folders (issue 16, "Nothing lost"): --force replaces only a folder
darbgen wrote, the swap of an existing folder survives Ctrl-C and errors with
no folder lost and no temporary folder left, and a bad --out fails before any
work is done."""
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from darbgen import files
from darbgen.cli import main
from darbgen.errors import DarbgenError
from darbgen.files import MARKER, MARKER_TEXT, write_folder

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_mlp.npz"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    """Every file under ``folder`` (hidden ones too), by relative path, with its bytes."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def user_folder(path):
    """A user's working folder: a model, notes and sources."""
    path.mkdir()
    shutil.copyfile(EXAMPLE, path / "model.npz")
    (path / "notes.md").write_text("my notes\n")
    (path / "src").mkdir()
    (path / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    return snapshot(path)


def writer(contents):
    """A fill function writing ``contents`` (name -> text)."""
    def fill(folder):
        for name, text in contents.items():
            (Path(folder) / name).write_text(text)
    return fill


OLD = {"a.c": "old a\n", "b.h": "old b\n"}
NEW = {"a.c": "new a\n", "c.h": "new c\n"}


@pytest.fixture
def no_build(monkeypatch):
    """Make any build, generation or report drawing fail the test: the checks must come first."""
    import darbgen.build
    import darbgen.codegen
    import darbgen.reporting

    def called(*args, **kwargs):
        raise AssertionError("the work started before the output folder was checked")

    monkeypatch.setattr(darbgen.build, "build", called)
    monkeypatch.setattr(darbgen.codegen, "generate", called)
    monkeypatch.setattr(darbgen.reporting, "_load_matrices", called)


# ----------------------------------------------------------------------------- --force and the marker

@pytest.mark.parametrize("command", [
    ["build", EXAMPLE, "--ratio", 2],
    ["demo"],
    ["generate", EXAMPLE],
    ["report", "--weights", EXAMPLE, "--ratio", 2],
])
def test_force_refuses_a_user_folder_untouched(command, tmp_path, capsys, no_build):
    folder = tmp_path / "work"
    before = user_folder(folder)
    started = time.perf_counter()
    code, _, err = run(command + ["--out", folder, "--force"], capsys)
    assert time.perf_counter() - started < 1.0
    assert code == 2
    assert err.count("\n") == 1 and str(folder) in err
    assert f"no {MARKER} file" in err and "--force will not replace it; choose a new or empty folder" in err
    assert snapshot(folder) == before                                # byte by byte
    assert sorted(os.listdir(tmp_path)) == ["work"]                  # no temporary folder


def test_force_refuses_the_current_folder(tmp_path, capsys, monkeypatch, no_build):
    """The issue's case: `darbgen build model.npz --out . --force` in the user's folder."""
    before = user_folder(tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    code, _, err = run(["build", "model.npz", "--ratio", 2, "--out", ".", "--force"], capsys)
    assert code == 2 and "is the current folder, and darbgen replaces its output folder whole" in err
    assert snapshot(tmp_path / "work") == before
    assert sorted(os.listdir(tmp_path)) == ["work"]


def test_build_marks_its_folder_and_force_replaces_it(tmp_path, capsys):
    out = tmp_path / "c"
    code, _, err = run(["build", EXAMPLE, "--ratio", 2, "--kernel", "csr", "--out", out], capsys)
    assert code == 0, err
    assert (out / MARKER).read_bytes() == MARKER_TEXT.encode("ascii")
    first = snapshot(out)
    assert "darb_csr_fc_s8.c" in first
    (out / "leftover.txt").write_text("x")          # a darbgen folder is replaced whole, whatever it holds
    code, _, err = run(["build", EXAMPLE, "--ratio", 2, "--out", out], capsys)
    assert code == 2 and "already exists and is not empty; pass --force to replace it" in err
    code, _, err = run(["build", EXAMPLE, "--ratio", 2, "--out", out, "--force"], capsys)
    assert code == 0, err
    second = snapshot(out)
    assert second[MARKER] == first[MARKER]                       # byte-identical between runs
    assert "leftover.txt" not in second and "darb_csr_fc_s8.c" not in second and "darb_fc_s8.c" in second
    assert sorted(os.listdir(tmp_path)) == ["c"]
    assert (out.stat().st_mode & 0o777) == 0o777 & ~files._umask()      # not mkdtemp's private 0700


def test_writer_refuses_and_replaces(tmp_path):
    out = tmp_path / "out"
    write_folder(out, writer(OLD))
    assert snapshot(out) == {**{k: v.encode() for k, v in OLD.items()}, MARKER: MARKER_TEXT.encode()}
    with pytest.raises(DarbgenError, match="already exists and is not empty; pass force=True to replace it"):
        write_folder(out, writer(NEW))
    write_folder(out, writer(NEW), force=True)
    assert snapshot(out) == {**{k: v.encode() for k, v in NEW.items()}, MARKER: MARKER_TEXT.encode()}
    mine = tmp_path / "mine"
    before = user_folder(mine)
    with pytest.raises(DarbgenError, match=r"mine: not a folder darbgen wrote .* force=True will not replace it"):
        write_folder(mine, writer(NEW), force=True)
    assert snapshot(mine) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    write_folder(empty, writer(NEW))                  # an empty folder needs no force
    assert sorted(os.listdir(empty)) == sorted([MARKER, *NEW])
    assert sorted(os.listdir(tmp_path)) == ["empty", "mine", "out"]


def test_a_user_folder_made_during_the_work_is_not_replaced(tmp_path):
    out = tmp_path / "out"

    def fill(folder):
        user_folder(out)                              # the user fills the path while darbgen works
        writer(NEW)(folder)

    with pytest.raises(DarbgenError, match="not empty"):
        write_folder(out, fill)
    assert (out / "notes.md").read_text() == "my notes\n"
    assert sorted(os.listdir(tmp_path)) == ["out"]


# ----------------------------------------------------------------------------- the swap

def old_folder(tmp_path):
    out = tmp_path / "out"
    write_folder(out, writer(OLD))
    return out, snapshot(out)


def failing_replace(monkeypatch, fail_on, error):
    """os.replace raising ``error`` on the calls numbered in ``fail_on`` (1-based)."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) in fail_on:
            raise error
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("fail_on", [1, 2])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_failed_swap_keeps_the_old_folder(tmp_path, monkeypatch, fail_on, error):
    out, before = old_folder(tmp_path)
    calls = failing_replace(monkeypatch, {fail_on}, error)
    with pytest.raises(type(error)):
        write_folder(out, writer(NEW), force=True)
    assert len(calls) == (1 if fail_on == 1 else 3)       # old aside, new in (fails), old back
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_swap_that_cannot_put_the_old_folder_back_says_where_it_is(tmp_path, monkeypatch):
    out, before = old_folder(tmp_path)
    calls = failing_replace(monkeypatch, {2, 3}, OSError(5, "Input/output error"))
    with pytest.raises(DarbgenError) as info:
        write_folder(out, writer(NEW), force=True)
    aside = Path(calls[0][1])
    assert str(aside) in str(info.value) and "previous copy" in str(info.value)
    assert not out.exists() and snapshot(aside) == before
    assert sorted(os.listdir(tmp_path)) == [aside.parent.name]     # the new temporary folder is gone


def test_ctrl_c_between_the_renames_is_held_until_the_swap_is_done(tmp_path, monkeypatch):
    out, _ = old_folder(tmp_path)
    real = os.replace
    calls = []

    def replace_with_sigint(src, dst):
        calls.append(dst)
        result = real(src, dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)       # a real Ctrl-C with the folder renamed aside
        return result

    monkeypatch.setattr(os, "replace", replace_with_sigint)
    with pytest.raises(KeyboardInterrupt):
        write_folder(out, writer(NEW), force=True)
    assert len(calls) == 2
    assert snapshot(out) == {**{k: v.encode() for k, v in NEW.items()}, MARKER: MARKER_TEXT.encode()}
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_writing_leaves_nothing(tmp_path):
    out, before = old_folder(tmp_path)

    def fill(folder):
        writer(NEW)(folder)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_folder(out, fill, force=True)
    assert snapshot(out) == before
    with pytest.raises(KeyboardInterrupt):
        write_folder(tmp_path / "new", fill)
    assert sorted(os.listdir(tmp_path)) == ["out"]


# ----------------------------------------------------------------------------- a bad --out, before any work

@pytest.mark.parametrize("case", ["file", "no parent", "parent is a file", "unwritable parent", "not empty"])
@pytest.mark.parametrize("command", [["build", EXAMPLE, "--ratio", 2], ["demo"], ["generate", EXAMPLE]])
def test_bad_out_fails_before_the_build(case, command, tmp_path, capsys, no_build):
    (tmp_path / "f.txt").write_text("a file")
    out, message = {
        "file": (tmp_path / "f.txt", "exists and is not a folder"),
        "no parent": (tmp_path / "missing" / "c", "does not exist; create it"),
        "parent is a file": (tmp_path / "f.txt" / "c", "does not exist"),
        "unwritable parent": (Path("/proc/darbgen-out"), "cannot create folders in /proc"),   # even as root
        "not empty": (tmp_path, "already exists and is not empty; pass --force"),
    }[case]
    started = time.perf_counter()
    code, _, err = run(command + ["--out", out], capsys)
    assert time.perf_counter() - started < 1.0
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "f.txt").read_text() == "a file"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_symbolic_link_is_refused(tmp_path):
    target = tmp_path / "real"
    write_folder(target, writer(OLD))
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(DarbgenError, match="is a symbolic link"):
        write_folder(tmp_path / "link", writer(NEW), force=True)
    assert sorted(os.listdir(target)) == sorted([MARKER, *OLD])


def test_report_writes_the_marker_and_force_replaces_its_folder(tmp_path, rng):
    from darbgen.reporting import write_report

    weights = tmp_path / "w.npz"
    np.savez(weights, fc=rng.standard_normal((16, 32)).astype(np.float32))
    out = tmp_path / "report"
    write_report(out, weights=weights, ratio=2)
    first = snapshot(out)
    assert first[MARKER] == MARKER_TEXT.encode() and "report.md" in first
    write_report(out, weights=weights, ratio=2, force=True)
    assert snapshot(out) == first                    # the same inputs, the same bytes
    assert sorted(os.listdir(tmp_path)) == ["report", "w.npz"]
