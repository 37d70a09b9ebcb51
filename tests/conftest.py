"""Shared fixtures and hypothesis settings."""
import os

# Under pytest-xdist (scripts/test.sh runs 2 workers on a 2-core machine) each worker gets one core: one BLAS /
# OpenMP thread a worker. More threads only oversubscribe the cores, and OpenBLAS's spinning threads then cost
# more than they give (the AD autoencoder's refit took 17 s with two threads a worker, 7 s with one). Set before
# NumPy (and torch) are imported; a value already in the environment wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# CI runs more examples; a developer's quick run fewer.
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def slow_except(values, fast):
    """Parametrize ``values`` so that only the ones in ``fast`` run by default; the others are marked slow
    and run in the full suite (CI, ``bash scripts/test.sh --all``). A tuple value is one case of a
    several-argument parametrize."""
    return [v if v in fast else pytest.param(*(v if isinstance(v, tuple) else (v,)), marks=pytest.mark.slow)
            for v in values]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def spread_rows(rng, rows, cols):
    """A weight matrix whose rows differ in scale, so densities differ (as in trained nets)."""
    scale = np.exp(0.7 * rng.standard_normal((rows, 1)))
    return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)


def need_module(module, what, install):
    """Import ``module``, or skip the whole test module loudly when it is missing: ``what`` needs it,
    ``install`` is what to pip install."""
    import warnings

    try:
        return __import__(module)
    except ImportError:
        message = f"{module} is not installed: {what} (pip install {install})"
        warnings.warn(message)
        pytest.skip("SKIPPED LOUDLY: " + message, allow_module_level=True)


def need_tool(name):
    """Skip (loudly) when a compiler or emulator is missing; fail instead in CI,
    where scripts/setup.sh must have installed it."""
    import shutil
    import warnings

    if shutil.which(name):
        return
    message = (f"{name} is not installed: the tests that compile and run C need it. Install it with "
               f"`bash scripts/setup.sh` (these tests always run in CI)")
    if os.environ.get("CI") or os.environ.get("DARBGEN_REQUIRE_TOOLS"):
        pytest.fail(message)
    warnings.warn(message)
    pytest.skip("SKIPPED LOUDLY: " + message)


@pytest.fixture
def gcc():
    need_tool("gcc")
    return "gcc"


@pytest.fixture
def arm_gcc():
    need_tool("arm-none-eabi-gcc")
    return "arm-none-eabi-gcc"


@pytest.fixture
def qemu():
    """arm-none-eabi-gcc and qemu-system-arm, for runs on Cortex-M cores."""
    need_tool("arm-none-eabi-gcc")
    need_tool("qemu-system-arm")
    return "qemu-system-arm"


def cli_error_line(argv, capsys):
    """Run the CLI in-process on ``argv`` and return its error line, asserting what every hostile-input table
    (tests/test_hostile_*.py) requires: exit status 2, exactly one line on stderr, starting with
    "darbgen: error: ", and no traceback anywhere."""
    from darbgen.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("darbgen: error: "), err
    assert "Traceback" not in err + out
    return lines[0]
