"""One-shot recovery: the least-squares refit against a per-row lstsq oracle,
its guarantees (mask kept, output error never worse), and what it wins back
on real models."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import darbgen
from darbgen.build import load
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Dense, Model
from darbgen.refit import Gram, input_norms, refit_matrix, refit_model
from naive_refit import refit as naive_refit
from test_recurrent import make

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"


def _case(rng, rows, cols, n, density):
    w = rng.standard_normal((rows, cols))
    b = rng.standard_normal(rows)
    mask = rng.random((rows, cols)) < density
    mask[0] = False                      # an empty row: only its bias is refit
    if rows > 1:
        mask[1] = True                   # a full row
    xd = rng.standard_normal((n, cols))
    xp = xd + 0.3 * rng.standard_normal((n, cols))
    return w, b, mask, xp, xd


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 1.0])
@pytest.mark.parametrize("fit_bias", [True, False])
def test_matches_the_per_row_oracle(rng, alpha, fit_bias):
    w, b, mask, xp, xd = _case(rng, 9, 13, 60, 0.4)
    got_w, got_b = refit_matrix(w, b, mask, Gram(13).add(xp, xd), alpha, fit_bias=fit_bias)
    want_w, want_b = naive_refit(w, b, mask, xp, xd, alpha, fit_bias)
    np.testing.assert_allclose(got_w, want_w, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(got_b, want_b, rtol=2e-4, atol=2e-4)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 9), n=st.integers(1, 30), seed=st.integers(0, 2**31),
       density=st.floats(0, 1))
def test_oracle_on_random_shapes(rows, cols, n, seed, density):
    rng = np.random.default_rng(seed)
    w, b, mask, xp, xd = _case(rng, rows, cols, n, density)
    got_w, got_b = refit_matrix(w, b, mask, Gram(cols).add(xp, xd), 1e-2)
    want_w, want_b = naive_refit(w, b, mask, xp, xd, 1e-2)
    scale = 1 + np.abs(want_w).max(initial=0)
    np.testing.assert_allclose(got_w, want_w, atol=1e-3 * scale)
    np.testing.assert_allclose(got_b, want_b, atol=1e-3 * (1 + np.abs(want_b).max()))


def test_keeps_the_mask_and_never_worsens_the_output(rng):
    w, b, mask, _, _ = _case(rng, 40, 64, 500, 0.15)
    x = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 64))   # correlated inputs, as real ones are
    for alpha in (1e-6, 1e-3, 1e-1, 10.0):
        new_w, new_b = refit_matrix(w, b, mask, Gram(64).add(x), alpha)
        assert np.all(new_w[~mask] == 0)
        dense = x @ w.T + b
        before = np.mean((x @ np.where(mask, w, 0).T + b - dense) ** 2)
        after = np.mean((x @ new_w.T.astype(np.float64) + new_b - dense) ** 2)
        # the ridge objective at the solution is at most its value at the pruned weights
        assert after <= before * (1 + 1e-6)
        if alpha <= 1e-3:
            assert after < 0.5 * before


def test_rescaling_an_input_changes_nothing(rng):
    """An input scaled by s with its weights scaled by 1/s computes the same
    layer: the refit layer must compute the same outputs too."""
    w, b, mask, _, _ = _case(rng, 12, 16, 300, 0.3)
    x = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 16))
    outs = []
    for s in (1e-2, 1.0, 1e2):
        scale = np.ones(16)
        scale[:8] = s
        new_w, new_b = refit_matrix(w / scale, b, mask, Gram(16).add(x * scale), 1e-2)
        outs.append((x * scale) @ new_w.T.astype(np.float64) + new_b)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(outs[2], outs[1], rtol=1e-3, atol=1e-3)


def test_a_fixed_bias_is_not_learnt_twice(rng):
    w, b, mask, _, _ = _case(rng, 10, 12, 200, 0.4)
    b = b + 5.0
    x = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 12))
    new_w, new_b = refit_matrix(w, b, mask, Gram(12).add(x), 1e-3, fit_bias=False)
    np.testing.assert_array_equal(new_b, b.astype(np.float32))
    dense = x @ w.T + b
    before = np.mean((x @ np.where(mask, w, 0).T + b - dense) ** 2)
    after = np.mean((x @ new_w.T.astype(np.float64) + new_b - dense) ** 2)
    assert after < before


def test_large_alpha_leaves_the_weights(rng):
    w, b, mask, xp, xd = _case(rng, 5, 8, 50, 0.5)
    new_w, new_b = refit_matrix(w, b, mask, Gram(8).add(xp, xd), 1e9)
    np.testing.assert_allclose(new_w, np.where(mask, w, 0), atol=1e-5)
    np.testing.assert_allclose(new_b, b, atol=1e-5)


def test_refit_errors(rng):
    w, b, mask, xp, xd = _case(rng, 4, 6, 10, 0.5)
    with pytest.raises(DarbgenError, match="fc.*mask shape"):
        refit_matrix(w, b, mask[:, :3], Gram(6).add(xp), name="fc")
    with pytest.raises(DarbgenError, match="5 columns, the weights 6"):
        refit_matrix(w, b, mask, Gram(5).add(xp[:, :5]))
    with pytest.raises(DarbgenError, match="no calibration inputs"):
        refit_matrix(w, b, mask, Gram(6))
    with pytest.raises(DarbgenError, match="alpha"):
        refit_matrix(w, b, mask, Gram(6).add(xp), alpha=0)
    bad = xp.copy()
    bad[2, 3] = np.nan
    with pytest.raises(DarbgenError, match="NaN"):
        Gram(6).add(bad)
    with pytest.raises(DarbgenError, match=r"must be \(rows, 6\), got shape \(60,\)"):
        Gram(6).add(xp.ravel())
    model = Model("m", (6,), [Dense("fc", w, b)])
    with pytest.raises(DarbgenError, match=r"m: calibration inputs \(calib\) of shape \(10, 5\)"):
        input_norms(model, xp[:, :5])
    with pytest.raises(DarbgenError, match="NaN"):
        refit_model(model, {"fc": darbgen.prune(w, 2, name="fc")}, bad)


def test_input_norms_are_column_norms_of_each_layers_input(rng):
    w1, w2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 5))
    model = Model("m", (4,), [Dense("a", w1, activation="relu"), Dense("b", w2)])
    x = rng.standard_normal((20, 4))
    norms = input_norms(model, x)
    np.testing.assert_allclose(norms["a"], np.linalg.norm(x, axis=0))
    np.testing.assert_allclose(norms["b"], np.linalg.norm(np.maximum(x @ w1.T, 0), axis=0))


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_refit_wins_back_accuracy(name):
    """Measured on the bundled models (8x DARB, magnitude one-shot): the MLP
    goes from about 42% to 97%, the CNN from about 39% to 92%."""
    src = load(str(EXAMPLES / f"{name}.npz"))
    model, x, y = src.model, src.eval_x, src.eval_y
    matrices = {n: m for n, m in model.pruning_matrices().items() if m.shape[1] >= 32}
    results = dict(darbgen.prune_model(matrices, 8).items())
    pruned = model.with_pruning(results)
    refit = refit_model(model, results, src.calib)

    def acc(m):
        return 100 * np.mean(m.forward(x).argmax(1) == y)
    assert acc(refit) > acc(pruned) + 30
    assert acc(refit) > acc(model) - 8
    for n, r in results.items():            # same masks and block sizes, zeros where pruned
        layer = {lay.name: lay for lay in refit.weight_layers()}[n]
        np.testing.assert_array_equal(layer.mask, r.mask)
        np.testing.assert_array_equal(layer.block_sizes, r.block_sizes)
        assert np.all(layer.pruning_matrix[~r.mask] == 0)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_refit_brings_the_output_closer(rng, cls):
    rnn = make(cls, rng, hidden=16, inputs=12)
    model = Model("seq", (20, 12), [rnn, Dense("head", rng.standard_normal((4, 16)))])
    x = (rng.standard_normal((64 * 20, 4)) @ rng.standard_normal((4, 12))).reshape(64, 240)   # correlated
    results = dict(darbgen.prune_model(model.pruning_matrices(), 4).items())
    dense = model.forward(x)
    before = np.mean((model.with_pruning(results).forward(x) - dense) ** 2)
    refit = refit_model(model, results, x)
    after = np.mean((refit.forward(x) - dense) ** 2)
    assert after < 0.7 * before
    layer = refit.layers[0]
    for part in ("w_ih", "w_hh"):
        r = results[f"rnn.{part}"]
        assert np.all(getattr(layer, part)[~r.mask] == 0)
        np.testing.assert_array_equal(layer.masks[part], r.mask)


def test_build_with_refit_and_activation_saliency(gcc):
    from darbgen.build import build

    path = str(EXAMPLES / "digits_mlp.npz")
    plain = build(path, ratio=8, dtype="int8")
    fitted = build(path, ratio=8, dtype="int8", refit=True, saliency="activation")
    assert fitted.ok
    assert fitted.report["accuracy"]["pruned"] > plain.report["accuracy"]["pruned"] + 0.3
    assert fitted.report["accuracy"]["c"] > 0.9
    assert any("refit by least squares" in n for n in fitted.report["notes"])
    with pytest.raises(DarbgenError, match="need a pruning --ratio"):
        build(path, refit=True)
    with pytest.raises(DarbgenError, match="unknown saliency"):
        build(path, ratio=2, saliency="random")


def _overfit_case(rng, n=12, cols=64):
    """Two dense layers and few calibration inputs: a plain least-squares refit fits the 9 it sees and fails
    the held-out ones."""
    w1 = rng.standard_normal((40, cols)).astype(np.float32)
    w2 = rng.standard_normal((10, 40)).astype(np.float32)
    model = Model("m", (cols,), [Dense("a", w1, rng.standard_normal(40), activation="relu"),
                                 Dense("b", w2, rng.standard_normal(10))])
    results = dict(darbgen.prune_model({"a": w1, "b": w2}, 4).items())
    return model, results, rng.standard_normal((n, cols))


def _heldout_errors(model, inputs_from, layer, x, name):
    """Per output row: ``layer``'s squared output error on the held-out calibration inputs, fed by
    ``inputs_from``'s earlier layers, against the dense model, computed directly."""
    from darbgen.refit import HOLDOUT_EVERY, _inputs_by_matrix

    held = x[np.arange(len(x)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    index = [lay.name for lay in model.layers].index(name)
    xd = _inputs_by_matrix(model, held, upto=index)[name]
    xp = _inputs_by_matrix(inputs_from, held, upto=index)[name]
    dense = model.layers[index]
    return np.sum((xp @ layer.weight.T.astype(np.float64) + layer.bias - (xd @ dense.weight.T + dense.bias)) ** 2,
                  axis=0)


def test_safe_refit_is_never_worse_on_held_out_inputs(rng):
    """Per matrix and per row, the refit's output error on the held-out calibration inputs is at most the
    pruned layer's (rows where refitting would be worse keep their pruned values), and the report's figures
    are those errors."""
    model, results, x = _overfit_case(rng)
    report = {}
    refit = refit_model(model, results, x, report=report)       # sequential: b sees the refit a's outputs
    pruned = model.with_pruning(results)
    for index, name in enumerate(("a", "b")):
        before = _heldout_errors(model, refit, pruned.layers[index], x, name)
        after = _heldout_errors(model, refit, refit.layers[index], x, name)
        assert np.all(after <= before * (1 + 1e-9) + 1e-9), name
        r = report[name]
        assert r["alpha"] in darbgen.refit.ALPHAS and 0 <= r["rows_refit"] <= r["rows"]
        np.testing.assert_allclose(r["heldout_error_pruned"], before.sum(), rtol=1e-6)
        np.testing.assert_allclose(r["heldout_error_refit"], after.sum(), rtol=1e-6)
        assert r["heldout_error_refit"] <= r["heldout_error_pruned"]


def test_an_overfitting_refit_falls_back(rng):
    """With a tiny ridge strength forced, a refit on 9 inputs of 64 columns fits them exactly and is far worse on
    the held-out ones: those rows keep their pruned values instead."""
    model, results, x = _overfit_case(rng)
    report = {}
    refit = refit_model(model, results, x, alpha=1e-9, sequential=False, report=report)
    assert report["a"]["alpha"] == 1e-9 and report["a"]["rows_refit"] < report["a"]["rows"]
    kept = {lay.name: lay for lay in refit.weight_layers()}["a"]
    pruned = {lay.name: lay for lay in model.with_pruning(results).weight_layers()}["a"]
    same = np.all(kept.weight == pruned.weight, axis=1)
    assert same.sum() == report["a"]["rows"] - report["a"]["rows_refit"] > 0


def test_refit_streams_its_inputs(rng, monkeypatch):
    """Calibration inputs go through the model in chunks: the result does not depend on the chunk size."""
    import darbgen.refit as refit_module

    model, results, x = _overfit_case(rng, n=40)
    whole = refit_model(model, results, x)
    monkeypatch.setattr(refit_module, "CHUNK", 7)
    chunked = refit_model(model, results, x)
    for a, b in zip(whole.weight_layers(), chunked.weight_layers()):
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(a.bias, b.bias, rtol=1e-4, atol=1e-5)


def test_refit_needs_enough_calibration_inputs(rng):
    model, results, x = _overfit_case(rng)
    with pytest.raises(DarbgenError, match="at least 8 calibration inputs .a quarter is held out"):
        refit_model(model, results, x[:7])
    with pytest.raises(DarbgenError, match="alpha must be a finite number > 0"):
        refit_model(model, results, x, alpha=-1.0)


def test_build_reports_the_safe_refit(gcc):
    """darbgen build --refit says per run how many rows were refit and the held-out error; --refit-alpha is
    passed through and needs --refit."""
    from darbgen.build import build

    result = build(str(EXAMPLES / "digits_mlp.npz"), ratio=8, refit=True, refit_alpha=1e-2)
    note = [n for n in result.report["notes"] if n.startswith("kept weights refit")][0]
    assert "alpha 0.01" in note and "rows refit" in note and "held-out output error" in note
    per_matrix = result.report["refit"]
    assert per_matrix and all(r["alpha"] == 1e-2 and r["heldout_error_refit"] <= r["heldout_error_pruned"]
                              for r in per_matrix.values())
    with pytest.raises(DarbgenError, match="--refit-alpha .* give --refit with it"):
        build(str(EXAMPLES / "digits_mlp.npz"), ratio=8, refit_alpha=1e-2)
