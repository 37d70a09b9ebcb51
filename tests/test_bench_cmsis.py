"""The CMSIS-DSP dense baseline (darbgen.bench.cmsis): its NumPy twin against
a brute-force loop, the real arm_mat_vec_mult_q7 in QEMU against the twin,
repeatable instruction counts, and clear errors when the download fails.

The tests that build CMSIS-DSP download its source from PyPI once (into the
default cache, ~/.cache/darbgen or $XDG_CACHE_HOME/darbgen) and skip loudly
when there is no network."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from darbgen.bench import cmsis
from darbgen.errors import DarbgenError


def brute_q7(w, x):
    """arm_mat_vec_mult_q7 by hand: exact integer sum, arithmetic shift right by 7, saturate to int8."""
    out = []
    for row in np.asarray(w).tolist():
        acc = 0
        for a, b in zip(row, np.asarray(x).tolist()):
            acc += a * b
        assert -2 ** 31 <= acc < 2 ** 31                    # the q31 accumulator never wraps
        out.append(max(-128, min(127, acc >> 7)))         # Python's >> floors, like ASR
    return np.array(out, dtype=np.int8)


def row_with_sum(total, cols):
    """An int8 row whose elements add up to ``total`` (against an all-ones vector)."""
    row = np.zeros(cols, dtype=np.int64)
    rest = total
    for i in range(cols):
        row[i] = max(-128, min(127, rest))
        rest -= row[i]
    assert rest == 0
    return row.astype(np.int8)


def saturating_case(rng, rows, cols):
    """Random int8 operands whose first rows drive the sum to both extremes."""
    w = rng.integers(-128, 128, size=(rows, cols), dtype=np.int8)
    x = rng.integers(-128, 128, size=cols, dtype=np.int8)
    x[x == 0] = 1
    big = np.where(x > 0, 127, -128).astype(np.int8)
    w[0] = big                                            # the largest sum: saturates to 127
    w[1] = np.where(x > 0, -128, 127).astype(np.int8)     # the most negative: saturates to -128
    w[2] = 0                                              # zero
    w[3, :] = 0
    w[3, 0] = -1 if x[0] > 0 else 1                       # a small negative sum: floors to -1, not 0
    return w, x


def test_reference_matches_brute_force(rng):
    for rows, cols in [(1, 1), (3, 5), (4, 4), (7, 13), (16, 24), (9, 300)]:
        for _ in range(3):
            w = rng.integers(-128, 128, size=(rows, cols), dtype=np.int8)
            x = rng.integers(-128, 128, size=cols, dtype=np.int8)
            np.testing.assert_array_equal(cmsis.reference_q7(w, x), brute_q7(w, x))
    w, x = saturating_case(rng, 8, 40)
    ref = cmsis.reference_q7(w, x)
    np.testing.assert_array_equal(ref, brute_q7(w, x))
    assert ref[0] == 127 and ref[1] == -128 and ref[2] == 0 and ref[3] == -1


def test_reference_shift_and_saturation_boundaries():
    # sums around the shift and the saturation limits, against an all-ones vector
    sums = [0, 1, 127, 128, 255, -1, -127, -128, -129, -255, -256, 16256, 16383, 16384, 16511, 40000,
            -16384, -16385, -16512, -40000]
    cols = 320
    w = np.stack([row_with_sum(s, cols) for s in sums])
    x = np.ones(cols, dtype=np.int8)
    expected = [0, 0, 0, 1, 1, -1, -1, -1, -2, -2, -2, 127, 127, 127, 127, 127, -128, -128, -128, -128]
    assert cmsis.reference_q7(w, x).tolist() == expected
    np.testing.assert_array_equal(cmsis.reference_q7(w, x), brute_q7(w, x))
    # (-128) * (-128) in every column: the largest product the q7 inputs allow
    full = np.full((2, 64), -128, dtype=np.int8)
    assert cmsis.reference_q7(full, np.full(64, -128, dtype=np.int8)).tolist() == [127, 127]
    assert cmsis.reference_q7(full, np.full(64, 127, dtype=np.int8)).tolist() == [-128, -128]


def test_reference_rejects_bad_operands():
    w = np.zeros((2, 3), dtype=np.int8)
    with pytest.raises(DarbgenError, match="3 columns"):
        cmsis.reference_q7(w, np.zeros(4, dtype=np.int8))
    with pytest.raises(DarbgenError, match=r"outside int8's \[-128, 127\]"):
        cmsis.reference_q7(w.astype(np.int16) + 200, np.zeros(3, dtype=np.int8))
    with pytest.raises(DarbgenError, match="must hold integers"):
        cmsis.reference_q7(w.astype(np.float32), np.zeros(3, dtype=np.int8))
    with pytest.raises(DarbgenError, match="2-D"):
        cmsis.reference_q7(np.zeros(3, dtype=np.int8), np.zeros(3, dtype=np.int8))


def test_a_single_wrong_bit_is_an_error(rng):
    w, x = saturating_case(rng, 16, 24)
    good = cmsis.reference_q7(w, x)
    cmsis._check_outputs("cortex-m4", good.copy(), w, x)
    bad = good.copy()
    bad[5] ^= np.int8(1)
    with pytest.raises(DarbgenError, match="differs from reference_q7 in 1 of 16 outputs .first: row 5"):
        cmsis._check_outputs("cortex-m4", bad, w, x)


@pytest.fixture(scope="session")
def cmsis_dir():
    """CMSIS-DSP's files (downloaded once into the default cache); skips loudly without network."""
    try:
        return cmsis.fetch_cmsis_dsp()
    except cmsis.CMSISDownloadError as e:
        if not e.network:
            raise
        message = f"CMSIS-DSP {cmsis.CMSIS_DSP_VERSION} could not be downloaded (no network?): {e}"
        warnings.warn(message)
        pytest.skip("SKIPPED LOUDLY: " + message)


def test_fetch_reuses_the_cache(cmsis_dir):
    assert cmsis.fetch_cmsis_dsp(cmsis_dir) == cmsis_dir
    for name in cmsis.CMSIS_FILES:
        assert (cmsis_dir / name).is_file(), name
    assert "Apache License" in (cmsis_dir / "LICENSE").read_text()
    # only what the benchmark needs, not the whole library
    assert {p.relative_to(cmsis_dir).as_posix() for p in cmsis_dir.rglob("*") if p.is_file()} <= {
        *cmsis.CMSIS_FILES, ".darbgen-source"}


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m0plus"])
def test_cmsis_dense_is_bit_exact_and_repeatable(rng, qemu, cmsis_dir, core, tmp_path):
    w, x = saturating_case(rng, 16, 24)
    first = cmsis.run_cmsis_dense(core, w, x, keep_dir=tmp_path / "a", cmsis_dir=cmsis_dir)
    again = cmsis.run_cmsis_dense(core, w, x, cmsis_dir=cmsis_dir)
    np.testing.assert_array_equal(first["outputs"], cmsis.reference_q7(w, x))
    np.testing.assert_array_equal(first["outputs"], brute_q7(w, x))
    assert first["outputs"][:4].tolist() == [127, -128, 0, -1]
    assert first["instructions"] == again["instructions"]
    assert first["code_bytes"] == again["code_bytes"] > 100
    assert first["data_bytes"] == 16 * 24
    per_mac = first["instructions"] / (16 * 24)
    # SMLAD does two MACs; the M0+ emulates SXTB16 / SMLAD in C and reads bytes one by one
    assert (1.5 < per_mac < 4) if core == "cortex-m4" else (8 < per_mac < 40), per_mac
    assert (tmp_path / "a" / "bench_cmsis.elf").is_file() and (tmp_path / "a" / "trace.log").is_file()


def test_a_tail_of_rows_and_columns(rng, qemu, cmsis_dir):
    """Rows not a multiple of 4 and columns not a multiple of 4 take CMSIS's remainder loops."""
    w = rng.integers(-128, 128, size=(7, 13), dtype=np.int8)
    x = rng.integers(-128, 128, size=13, dtype=np.int8)
    r = cmsis.run_cmsis_dense("cortex-m55", w, x, cmsis_dir=cmsis_dir)
    np.testing.assert_array_equal(r["outputs"], brute_q7(w, x))


def test_a_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    """Real pip, pointed at a closed local port: a network error that says what to do."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")              # pip reports the connection error only when it retries
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(cmsis.CMSISDownloadError, match="cannot download CMSIS-DSP 1.10.3.*the network failed") as e:
        cmsis.fetch_cmsis_dsp(tmp_path / "cache")
    assert e.value.network and isinstance(e.value, DarbgenError)
    assert "check the connection to PyPI" in str(e.value)
    assert not (tmp_path / "cache").exists()
    assert list(tmp_path.iterdir()) == []                 # no half-written folder left behind


def test_unknown_core_is_a_clear_error(rng):
    with pytest.raises(DarbgenError, match="unknown target 'cortex-m99'"):
        cmsis.run_cmsis_dense("cortex-m99", np.zeros((4, 4), dtype=np.int8), np.zeros(4, dtype=np.int8))


def test_default_cache_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cmsis.default_cache_dir() == tmp_path / "darbgen" / "cmsisdsp-1.10.3"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cmsis.default_cache_dir() == Path.home() / ".cache" / "darbgen" / "cmsisdsp-1.10.3"


def test_a_foreign_folder_is_never_touched(tmp_path):
    (tmp_path / "mine.txt").write_text("not CMSIS")
    with pytest.raises(DarbgenError, match="is not a CMSIS-DSP 1.10.3 folder .* darbgen leaves it alone"):
        cmsis.fetch_cmsis_dsp(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
