"""Per-matrix statistics."""
import numpy as np
import pytest

import darbgen
from conftest import spread_rows


def test_stats_of_a_darb_matrix(rng):
    w = spread_rows(rng, 128, 256)
    r = darbgen.prune(w, 16)
    s = darbgen.matrix_stats(w, r)
    assert s["shape"] == [128, 256] and s["method"] == "darb"
    assert s["kept"] == r.kept and s["ratio"] == pytest.approx(r.ratio)
    d = s["irregular_density"]
    assert d["min"] <= d["median"] <= d["max"]
    assert d["max_over_min"] == pytest.approx(d["max"] / d["min"])
    assert sum(s["block_sizes"].values()) == 128
    assert 0 < s["saliency_kept"] < 1
    sal = np.abs(w.astype(np.float64))
    assert s["saliency_kept"] == pytest.approx(sal[r.mask].sum() / sal.sum())
    assert set(s["formats"]) == {"dense", "csr", "darb"}
    i8 = s["formats"]["darb"]["int8"]
    assert i8["values"] == r.kept
    assert s["formats"]["darb"]["int8"]["bits_per_kept"] < s["formats"]["csr"]["int8"]["bits_per_kept"]
    assert 0 < s["irregular_overlap"] <= 1


def test_irregular_keeps_the_most_saliency(rng):
    w = spread_rows(rng, 64, 128)
    kept = {m: darbgen.matrix_stats(w, darbgen.prune(w, 8, m))["saliency_kept"]
            for m in ("irregular", "darb", "block", "bank_balanced")}
    assert kept["irregular"] == max(kept.values())
    assert kept["darb"] > kept["block"]


def test_block_method_reports_bsr(rng):
    w = rng.standard_normal((32, 32)).astype(np.float32)
    s = darbgen.matrix_stats(w, darbgen.prune(w, 4, "block", tile=(2, 2)))
    assert "bsr" in s["formats"] and "block_sizes" not in s
