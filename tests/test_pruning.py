"""The numba pruning kernels against the slow references in naive.py.

Every method is compared element for element (mask and block sizes) on
hand-picked edge cases and on hypothesis-drawn matrices of 1..300 x 1..300,
including tie-heavy ones (few distinct values) where only the tie rule
decides the answer.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import darbgen
import naive
from conftest import spread_rows
from darbgen.errors import DarbgenError

METHOD_CASES = ["irregular", "darb", "bmwm", "block", "bank_balanced", "nm"]


def reference(method, w, ratio, norms=None, **opts):
    """(mask, block_sizes) from naive.py for a method and options."""
    if method == "irregular":
        return naive.irregular_mask(w, ratio, norms), None
    if method == "darb":
        return naive.darb_mask(w, ratio, opts.get("candidates"), norms)
    if method == "bmwm":
        b = opts["block"]
        bs = np.full(w.shape[0], b, np.int64)
        return naive.bmwm_mask(w, bs, norms), bs
    if method == "block":
        return naive.block_mask(w, ratio, opts.get("tile", (4, 4)), norms), None
    if method == "bank_balanced":
        return naive.bank_balanced_mask(w, ratio, opts.get("banks"), norms), None
    if method == "nm":
        return naive.nm_mask(w, opts.get("n", 1), opts["m"], norms), None
    raise AssertionError(method)


def check_same(method, w, ratio, norms=None, **opts):
    try:
        want_mask, want_bs = reference(method, w, ratio, norms, **opts)
    except ValueError:
        with pytest.raises(DarbgenError):
            darbgen.prune(w, ratio if method not in ("bmwm", "nm") else None, method, input_norms=norms, **opts)
        return None
    got = darbgen.prune(w, ratio if method not in ("bmwm", "nm") else None, method, input_norms=norms, **opts)
    assert got.mask.shape == w.shape
    assert got.mask.dtype == bool
    np.testing.assert_array_equal(got.mask, want_mask, err_msg=f"{method} mask differs")
    if want_bs is None:
        assert got.block_sizes is None
    else:
        np.testing.assert_array_equal(got.block_sizes, want_bs, err_msg=f"{method} block sizes differ")
    assert got.ratio == pytest.approx(w.size / want_mask.sum())
    assert got.method == method
    return got


def edge_matrices(rng):
    yield "random", rng.standard_normal((37, 53)).astype(np.float32)
    yield "spread rows", spread_rows(rng, 64, 200)
    yield "all zero", np.zeros((9, 17), np.float32)
    yield "all equal", np.full((8, 24), 0.5, np.float32)
    yield "few values", rng.integers(-2, 3, (31, 45)).astype(np.float32)
    yield "one row", rng.standard_normal((1, 100)).astype(np.float32)
    yield "one column", rng.standard_normal((50, 1)).astype(np.float32)
    yield "signed ties", np.tile(np.array([1.0, -1.0, 0.5, -0.5], np.float32), (6, 5))
    yield "tiny and huge", (rng.standard_normal((20, 20)) * 10.0 ** rng.integers(-30, 30, (20, 20))).astype(np.float32)
    yield "subnormals", (rng.standard_normal((10, 30)) * 1e-42).astype(np.float32)


@pytest.mark.parametrize("method", METHOD_CASES)
def test_edge_matrices_match_reference(method, rng):
    for label, w in edge_matrices(rng):
        for ratio in (1.5, 2, 4, 16):
            opts = {}
            if method == "bmwm":
                opts["block"] = max(1, int(round(ratio)))
            if method == "nm":
                opts["m"] = max(1, int(round(ratio)))
            check_same(method, w, ratio, **opts)


def test_input_norms_change_saliency(rng):
    w = rng.standard_normal((40, 64)).astype(np.float32)
    norms = np.abs(rng.standard_normal(64)).astype(np.float32) * 3
    norms[::7] = 0.0
    for method in METHOD_CASES:
        opts = {"block": 8} if method == "bmwm" else {"m": 8} if method == "nm" else {}
        check_same(method, w, 8, norms, **opts)
    plain = darbgen.prune(w, 8, "irregular").mask
    weighted = darbgen.prune(w, 8, "irregular", input_norms=norms).mask
    assert not np.array_equal(plain, weighted)
    assert not weighted[:, ::7].any(), "columns with zero input norm carry no saliency"


@st.composite
def matrices(draw, max_side=300):
    rows = draw(st.integers(1, max_side))
    cols = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["normal", "spread", "ties", "sparse"]))
    rng = np.random.default_rng(seed)
    if kind == "normal":
        w = rng.standard_normal((rows, cols)).astype(np.float32)
    elif kind == "spread":
        w = spread_rows(rng, rows, cols)
    elif kind == "ties":
        w = rng.integers(-3, 4, (rows, cols)).astype(np.float32)
    else:
        w = (rng.standard_normal((rows, cols)) * (rng.random((rows, cols)) < 0.1)).astype(np.float32)
    return w


@given(w=matrices(), ratio=st.floats(1.01, 64), method=st.sampled_from(METHOD_CASES),
       use_norms=st.booleans(), data=st.data())
def test_every_method_matches_reference(w, ratio, method, use_norms, data):
    norms = None
    if use_norms:
        norms = np.random.default_rng(w.shape[1]).random(w.shape[1]).astype(np.float32) * 2
    opts = {}
    if method == "bmwm":
        opts["block"] = data.draw(st.integers(1, max(1, w.shape[1])))
    elif method == "nm":
        m = data.draw(st.integers(1, 32))
        opts.update(m=m, n=data.draw(st.integers(1, m)))
    elif method == "block":
        opts["tile"] = data.draw(st.sampled_from([(1, 4), (4, 4), (2, 8), (3, 5)]))
    elif method == "bank_balanced":
        opts["banks"] = data.draw(st.integers(1, max(1, w.shape[1])))
    elif method == "darb" and data.draw(st.booleans()):
        opts["candidates"] = sorted(set(data.draw(st.lists(st.integers(1, 300), min_size=1, max_size=6))))
    check_same(method, w, ratio, norms, **opts)


@given(ws=st.lists(matrices(max_side=120), min_size=2, max_size=4), ratio=st.floats(1.5, 40),
       method=st.sampled_from(["irregular", "darb", "block"]))
def test_global_scope_matches_reference(ws, ratio, method):
    names = [f"m{i}" for i in range(len(ws))]
    try:
        if method == "irregular":
            want = [(m, None) for m in naive.irregular_mask_global(ws, ratio)]
        elif method == "darb":
            want = naive.darb_masks_global(ws, ratio)
        else:
            want = [(m, None) for m in naive.block_masks_global(ws, ratio)]
    except ValueError:
        with pytest.raises(DarbgenError):
            darbgen.prune_model(dict(zip(names, ws)), ratio, method, scope="global")
        return
    got = darbgen.prune_model(dict(zip(names, ws)), ratio, method, scope="global")
    assert list(got) == names
    for name, (mask, bs) in zip(names, want):
        np.testing.assert_array_equal(got[name].mask, mask)
        if bs is not None:
            np.testing.assert_array_equal(got[name].block_sizes, bs)
    total = sum(w.size for w in ws)
    assert got.ratio == pytest.approx(total / sum(m.sum() for m, _ in want))


def test_irregular_keeps_exactly_k_and_top_saliency(rng):
    w = rng.standard_normal((100, 300)).astype(np.float32)
    r = darbgen.prune(w, 16, "irregular")
    assert r.kept == round(w.size / 16)
    assert np.abs(w[r.mask]).min() >= np.abs(w[~r.mask]).max()


def test_irregular_ties_go_to_lowest_column():
    w = np.ones((2, 8), np.float32)
    r = darbgen.prune(w, 4, "irregular")  # keeps 4 of 16: the first four in row-major order
    assert r.mask[0, :4].all() and r.mask.sum() == 4


def test_bmwm_keeps_one_per_block_even_when_last_block_is_short(rng):
    w = rng.standard_normal((5, 21)).astype(np.float32)
    r = darbgen.prune(w, method="bmwm", block=8)
    assert (r.mask.sum(axis=1) == 3).all()
    for start in (0, 8, 16):
        assert (r.mask[:, start: start + 8].sum(axis=1) == 1).all()
    np.testing.assert_array_equal(r.block_sizes, np.full(5, 8))


def test_nm_one_to_m_is_bmwm(rng):
    w = rng.standard_normal((30, 70)).astype(np.float32)
    a = darbgen.prune(w, method="nm", n=1, m=8).mask
    b = darbgen.prune(w, method="bmwm", block=8).mask
    np.testing.assert_array_equal(a, b)


def test_darb_gives_dense_rows_small_blocks(rng):
    w = spread_rows(rng, 128, 256)
    r = darbgen.prune(w, 16)
    dens = r.densities
    order = np.argsort(dens)
    # Block size never decreases as the irregular-pass density falls.
    assert np.all(np.diff(r.block_sizes[order][::-1]) <= 0) or np.all(
        np.diff(r.block_sizes[order]) <= 0)
    assert r.block_sizes[np.argmax(dens)] < r.block_sizes[np.argmin(dens)]
    assert abs(r.ratio / 16 - 1) < 0.05


def test_darb_hits_ratio_closely_on_large_matrix(rng):
    w = spread_rows(rng, 512, 512)
    for ratio in (4, 8, 16, 25):
        r = darbgen.prune(w, ratio)
        assert abs(np.log(r.ratio / ratio)) < 0.02, (ratio, r.ratio)


def test_darb_impossible_ratio_says_what_can(rng):
    w = rng.standard_normal((10, 64)).astype(np.float32)
    with pytest.raises(DarbgenError, match=r"reachable ratios are 1 to 64"):
        darbgen.prune(w, 100)
    with pytest.raises(DarbgenError, match="reachable ratios"):
        darbgen.prune(w, 1.5, candidates=[8, 16])


def test_custom_candidates_are_respected(rng):
    w = spread_rows(rng, 64, 120)
    r = darbgen.prune(w, 6, candidates=[3, 5, 12, 40])
    assert set(np.unique(r.block_sizes)) <= {3, 5, 12, 40}
    assert r.options["candidates"] == [3, 5, 12, 40]


def test_prune_model_layer_scope_equals_separate_calls(rng):
    mats = {"a": spread_rows(rng, 40, 90), "b": spread_rows(rng, 70, 33)}
    model = darbgen.prune_model(mats, 8)
    for name, w in mats.items():
        np.testing.assert_array_equal(model[name].mask, darbgen.prune(w, 8).mask)


def test_global_scope_spreads_ratio_by_saliency(rng):
    big = rng.standard_normal((64, 64)).astype(np.float32) * 10
    small = rng.standard_normal((64, 64)).astype(np.float32) * 0.1
    model = darbgen.prune_model({"big": big, "small": small}, 8, "irregular", scope="global")
    assert model["big"].kept > 10 * model["small"].kept
    assert model.ratio == pytest.approx(8, rel=1e-3)


def test_float64_and_integer_weights_are_accepted(rng):
    w = rng.standard_normal((20, 30))
    np.testing.assert_array_equal(darbgen.prune(w, 4).mask, darbgen.prune(w.astype(np.float32), 4).mask)
    assert darbgen.prune(rng.integers(-5, 5, (20, 30)), 4, "irregular").kept == 150


def test_apply_zeroes_pruned_weights(rng):
    w = rng.standard_normal((16, 32))
    r = darbgen.prune(w, 4)
    out = r.apply(w)
    assert out.dtype == w.dtype
    np.testing.assert_array_equal(out[r.mask], w[r.mask])
    assert not out[~r.mask].any()


def test_results_are_deterministic(rng):
    w = spread_rows(rng, 200, 300)
    for method in ("darb", "irregular", "block", "bank_balanced"):
        a = darbgen.prune(w, 10, method)
        b = darbgen.prune(w.copy(), 10, method)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_non_contiguous_input(rng):
    w = rng.standard_normal((60, 80)).astype(np.float32)
    view = w[::2, ::3]
    np.testing.assert_array_equal(darbgen.prune(view, 4).mask, darbgen.prune(view.copy(), 4).mask)


@given(w=matrices(), ratio=st.floats(1.01, 64))
def test_vectorised_numpy_path_matches(w, ratio):
    """darb_numpy (the benchmark's NumPy baseline) gives the same answer as the kernels."""
    from darbgen.pruning.vectorized import darb_numpy
    try:
        want = darbgen.prune(w, ratio)
    except DarbgenError:
        with pytest.raises(DarbgenError):
            darb_numpy(w, ratio)
        return
    mask, block_sizes = darb_numpy(w, ratio)
    np.testing.assert_array_equal(mask, want.mask)
    np.testing.assert_array_equal(block_sizes, want.block_sizes)
