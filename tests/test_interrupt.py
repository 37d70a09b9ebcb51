"""Ctrl-C (SIGINT) at any moment of a run, numba's compilation and its kernels included, ends as one line,
"darbgen: interrupted", exit status 130, no traceback, and leaves no output and no temporary file behind;
a Ctrl-C that arrives once the work is done leaves the finished output and the exit status alone."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process needs POSIX")


def _weights(tmp_path, n=3000):
    path = tmp_path / "big.npz"
    np.savez(path, w=np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    return path


def _run_and_interrupt(args, delay, cwd, env=None):
    """Start ``python -m darbgen ARGS`` (SIGINT at its default, as in a terminal), send SIGINT after ``delay``
    seconds; (exit status, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "darbgen", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _check(rc, out, err, tmp_path, result):
    assert "Traceback" not in err, err
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("big.npz", "numba", result))
    assert leftovers == [], f"temporary files left behind: {leftovers}"
    if rc == 130:
        assert err.strip().splitlines()[-1] == "darbgen: interrupted", err
        assert not (tmp_path / result).exists(), "an interrupted run wrote its output"
    else:
        assert rc == 0, (rc, err)
        pruned = np.load(tmp_path / result)
        assert pruned["w__mask"].mean() == pytest.approx(1 / 8, rel=0.05)


@pytest.mark.parametrize("delay", [1.5, pytest.param(3.0, marks=pytest.mark.slow),
                                   pytest.param(6.0, marks=pytest.mark.slow)])
def test_sigint_while_numba_compiles(tmp_path, delay):
    """An empty numba cache: the run compiles the pruning kernels (about 10 s), then runs them; SIGINT lands in
    the compilation, where LLVM calls back into Python (a KeyboardInterrupt raised in such a callback used to be
    swallowed, leaving "RuntimeError: no compiled object yet"; darbgen.numba_sigint holds it until numba is
    done)."""
    big = _weights(tmp_path)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    rc, out, err = _run_and_interrupt(["prune", str(big), "--ratio", "8", "-o", "pruned.npz"], delay, tmp_path, env)
    assert rc == 130, (rc, err)
    _check(rc, out, err, tmp_path, "pruned.npz")


@pytest.mark.parametrize("delay", [0.5, 1.2, pytest.param(3.0, marks=pytest.mark.slow)])
def test_sigint_at_any_moment_is_clean(tmp_path, delay):
    """Whatever it interrupts (imports, numba kernels, writing, shutdown), the run either ends "interrupted"
    with nothing written, or had finished and its output is whole."""
    big = _weights(tmp_path)
    rc, out, err = _run_and_interrupt(["prune", str(big), "--ratio", "8", "-o", "pruned.npz"], delay, tmp_path)
    _check(rc, out, err, tmp_path, "pruned.npz")
