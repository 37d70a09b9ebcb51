"""One-shot recovery without retraining: a least-squares refit of kept weights.

Pruning drops weights; the kept ones were trained to work *with* the dropped
ones. Given calibration inputs, the kept weights of each row (and its bias)
can be re-solved so that the pruned layer reproduces the dense layer's
outputs as closely as possible. The mask never changes: only the values of
kept weights and the bias move.

For one weight matrix W (rows = outputs) with bias b and mask M, and
calibration inputs seen by the pruned network ``Xp`` (n, C) and by the dense
network ``Xd`` (n, C), row r with kept columns S solves

    minimise  || [Xp_S 1] [w_S; b] - (Xd w + b_r) ||^2  +  sum_i lam_i (v_i - v0_i)^2

over v = [w_S; b], v0 = [W_rS; b_r]

a ridge regression pulled towards the row's original values. The penalty on
each coordinate is ``alpha`` times that coordinate's Gram diagonal (the
squared norm of its input column, n for the bias), so rescaling an input
(and its weights inversely) changes nothing: ``alpha -> inf`` leaves the
weights as they were, ``alpha -> 0`` is the plain least-squares fit. Using the pruned network's inputs ``Xp``
(sequential refit, layer after layer) lets each layer also correct the error
that earlier pruned layers put into its input.

The solve needs only two Gram matrices, ``[Xp 1]^T [Xp 1]`` and
``[Xp 1]^T [Xd 1]``, accumulated once per matrix (:class:`Gram`); rows with
the same kept count are solved together in one batched call. The plain NumPy
per-row ``lstsq`` oracle the tests compare with is ``tests/naive_refit.py``.

Drivers: :func:`refit_model` for a :class:`darbgen.graph.Model` (dense,
convolution, LSTM and GRU layers), :func:`darbgen.train.refit_torch` for a
PyTorch module.

A refit that never hurts (:func:`refit_model`'s default): a quarter of the
calibration inputs (every fourth) is held out. Each matrix is fit on the
rest at every ridge strength of :data:`ALPHAS` (or the one given), the
strength with the least output error on the held-out inputs is kept, and
every row whose refit is no better than its pruned values on the held-out
inputs keeps those: on held-out data the refit layer is never worse than no
refit, row by row (the errors come from held-out Gram matrices, exactly).
Calibration inputs are streamed through the model in chunks, so the Gram
matrices, not the inputs, bound the memory.
"""
import math

import numpy as np

from .errors import DarbgenError

#: default ridge strength (relative to each coordinate's Gram diagonal: its input column's squared norm)
DEFAULT_ALPHA = 1e-3
#: the ridge strengths a safe refit tries on its held-out inputs
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: every HOLDOUT_EVERY-th calibration input is held out to check the refit
HOLDOUT_EVERY = 4
#: calibration inputs run through the model at a time
CHUNK = 256


class Gram:
    """Accumulates ``A^T A`` and ``A^T B`` over batches of inputs, with a
    column of ones appended to both (the bias)."""

    def __init__(self, cols):
        self.cols = int(cols)
        self.pp = np.zeros((cols + 1, cols + 1))
        self.pd = np.zeros((cols + 1, cols + 1))
        self.dd = np.zeros((cols + 1, cols + 1))
        self.rows = 0

    def add(self, xp, xd=None):
        """Add calibration rows: ``xp`` as the pruned network sees them,
        ``xd`` as the dense one does (default: the same)."""
        xp = _with_ones(xp, self.cols)
        xd = xp if xd is None else _with_ones(xd, self.cols)
        if xd.shape != xp.shape:
            raise DarbgenError(f"refit: pruned and dense inputs differ in shape ({xp.shape} vs {xd.shape})")
        self.pp += xp.T @ xp
        self.pd += xp.T @ xd
        self.dd += xd.T @ xd
        self.rows += xp.shape[0]
        return self

    def row_errors(self, weight, bias, dense_weight, dense_bias):
        """Per row r: the squared output error, summed over these inputs, of the
        pruned row (``weight``, ``bias``) on the pruned inputs against the dense
        row on the dense inputs: ||[Xp 1] u_r - [Xd 1] t_r||^2, from the Gram
        matrices alone."""
        u = np.hstack([np.asarray(weight, np.float64), np.asarray(bias, np.float64)[:, None]])
        t = np.hstack([np.asarray(dense_weight, np.float64), np.asarray(dense_bias, np.float64)[:, None]])
        err = np.einsum("ri,ij,rj->r", u, self.pp, u) - 2 * np.einsum("ri,ij,rj->r", u, self.pd, t) + \
            np.einsum("ri,ij,rj->r", t, self.dd, t)
        return np.maximum(err, 0.0)


def _with_ones(x, cols):
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != cols:
        raise DarbgenError(f"refit: calibration inputs must be (rows, {cols}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DarbgenError("refit: the calibration inputs hold NaN or inf")
    return np.hstack([x, np.ones((x.shape[0], 1))])


def refit_matrix(weight, bias, mask, gram, alpha=DEFAULT_ALPHA, name="weights", fit_bias=True):
    """Refit the kept weights and the bias of one matrix.

    Args:
        weight: (R, C) dense weights (the pruned entries are read as the
            dense values the layer should imitate).
        bias: (R,) bias, or None for zeros.
        mask: (R, C) bool, True where a weight is kept.
        gram: a :class:`Gram` of the calibration inputs (C columns).
        alpha: ridge strength relative to each coordinate's Gram diagonal (> 0).
        fit_bias: refit the bias too (False for a layer without one: the
            bias stays as given, zeros for None).

    Returns:
        (weight, bias): float32 arrays, weights zero outside the mask.
    """
    w = np.asarray(weight, np.float64)
    mask = np.asarray(mask, bool)
    rows, cols = w.shape
    if mask.shape != w.shape:
        raise DarbgenError(f"{name}: mask shape {mask.shape} does not match the weights {w.shape}")
    if gram.cols != cols:
        raise DarbgenError(f"{name}: calibration inputs have {gram.cols} columns, the weights {cols}")
    if gram.rows == 0:
        raise DarbgenError(f"{name}: no calibration inputs to refit on")
    check_alpha(alpha, f"{name}: alpha")
    b = np.zeros(rows) if bias is None else np.asarray(bias, np.float64)
    dense = np.hstack([w, b[:, None]])                  # (R, C+1): the outputs to imitate
    # row r: ([Xp 1]^T [Xd 1]) [w_r; b_r]; with the bias fixed it is on both sides and cancels
    target = (dense if fit_bias else np.hstack([w, np.zeros((rows, 1))])) @ gram.pd.T
    new = np.zeros_like(dense)
    kept = mask.sum(axis=1)
    for k in np.unique(kept):
        rs = np.flatnonzero(kept == k)
        # kept columns of each row, then the bias column (index C)
        idx = np.nonzero(mask[rs])[1].reshape(len(rs), k)
        if fit_bias:
            idx = np.hstack([idx, np.full((len(rs), 1), cols)])
        size = idx.shape[1]
        if size == 0:
            continue
        start = np.take_along_axis(dense[rs], idx, axis=1)
        if np.all(idx == idx[:1]):            # every row keeps the same columns: one system, many right sides
            a = gram.pp[idx[0][:, None], idx[0][None, :]]
            lam = alpha * np.maximum(np.diag(a), 1e-12)
            rhs = np.take_along_axis(target[rs], idx, axis=1) + lam * start
            sol = np.linalg.solve(a + np.diag(lam), rhs.T).T
        else:
            a = gram.pp[idx[:, :, None], idx[:, None, :]]   # (rows, size, size)
            lam = alpha * np.maximum(np.einsum("rii->ri", a), 1e-12)     # per coordinate
            a = a + lam[:, :, None] * np.eye(size)
            rhs = np.take_along_axis(target[rs], idx, axis=1) + lam * start
            sol = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
        new[rs[:, None], idx] = sol
    out_w = new[:, :cols].astype(np.float32)
    out_w[~mask] = 0.0
    return out_w, (new[:, cols] if fit_bias else b).astype(np.float32)


def refit_rows(w0, bias, mask, fit, held, alphas, holdout=True, name="weights", snap=None):
    """One matrix's safe refit: the refit at the best of ``alphas`` on the held-out Gram ``held``, kept only in
    the rows where it beats the pruned values there (every row without ``holdout``).

    Args:
        w0: (R, C) dense weights; bias: (R,) or None (zeros, refit as a bias).
        mask: (R, C) kept weights; fit / held: :class:`Gram` of the fitting and held-out inputs.
        snap: optional ``(w, b) -> (w, b)`` giving the values the layer will really hold (int8 rounding, say):
            the held-out comparison is made on those, so the guarantee holds for the stored values.

    Returns:
        (weights, bias, report row) as float64; a row is {"alpha", "rows", "rows_refit",
        "heldout_error_pruned", "heldout_error_refit"}.
    """
    w0 = np.asarray(w0, np.float64)
    b0 = np.zeros(w0.shape[0]) if bias is None else np.asarray(bias, np.float64)
    mask = np.asarray(mask, bool)
    snap = snap or (lambda w, b: (w, b))
    pw = np.where(mask, w0, 0.0)
    before = held.row_errors(pw, b0, w0, b0)
    best = None
    for a in alphas:
        w, b = refit_matrix(w0, bias, mask, fit, a, name)
        w, b = snap(np.asarray(w, np.float64), np.asarray(b, np.float64))
        err = held.row_errors(w, b, w0, b0)
        if best is None or err.sum() < best[0].sum():
            best = (err, w, b, a)
    err, w, b, a = best
    # rows the refit helps on held-out inputs (every row without a hold-out)
    better = err < before if holdout else np.ones(len(err), bool)
    w = np.where(better[:, None], w, pw)
    b = np.where(better, b, b0)
    row = {"alpha": a, "rows": int(len(better)), "rows_refit": int(better.sum()),
           "heldout_error_pruned": float(before.sum()),
           "heldout_error_refit": float(np.where(better, err, before).sum())}
    return w, b, row


# ----------------------------------------------------------------------------- graph.Model driver

def _layer_inputs(layer, shape, y):
    """{matrix name: (rows, cols) inputs it multiplies} for one weight layer fed ``y``."""
    from .graph import LSTM, Conv1D, Conv2D, Dense

    if isinstance(layer, Dense):
        return {layer.name: y}
    if isinstance(layer, (Conv2D, Conv1D)):
        p = layer.op(shape).patches(np.asarray(y, np.float64), 0.0)
        return {layer.name: p.reshape(-1, p.shape[-1])}
    if isinstance(layer, LSTM):
        op = layer.op(shape)
        x = np.asarray(y, np.float64).reshape(len(y), op.steps, -1)
        hs = op.trace_f64(y)[3]                                   # (T, n, H)
        h_prev = np.concatenate([np.zeros_like(hs[:1]), hs[:-1]]).transpose(1, 0, 2)
        return {layer.ih.name: x.reshape(-1, x.shape[-1]), layer.hh.name: h_prev.reshape(-1, hs.shape[-1])}
    return {}



def _inputs_by_matrix(model, x, upto=None):
    """{matrix name: its inputs} for every pruned matrix of ``model`` run on
    ``x``; with ``upto`` (a layer index), only that layer's, and the forward
    pass stops there."""
    out = {}
    with np.errstate(under="ignore"):
        for index, (layer, shape, y) in enumerate(model.walk(x)):
            if layer is not None and (upto is None or index == upto):
                out.update(_layer_inputs(layer, shape, y))
            if index == upto:
                break
    return out


def check_alpha(alpha, what):
    """``alpha`` as a float when it is a valid ridge strength (finite, > 0); else a DarbgenError naming it as
    ``what`` (the caller's argument: "alpha", "refit_alpha=", ...)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DarbgenError(f"{what} must be a finite number > 0 (the ridge strength), got {alpha!r}")
    return value


def _check_calib(model, x):
    from .datacheck import real_inputs

    x = real_inputs(x, model.input_shape, f"{model.name}: calibration inputs (calib)")
    return x.reshape(len(x), -1)


def input_norms(model, calib):
    """Activation-aware saliency factors: {matrix name: L2 norm of each input
    column over the calibration inputs}, for :func:`darbgen.prune_model`'s
    ``input_norms`` (saliency |w_ij| * ||x_j||)."""
    x = _check_calib(model, calib)
    return {name: np.sqrt(np.sum(np.square(v), axis=0)) for name, v in _inputs_by_matrix(model, x).items()}


def _grams(model_for_inputs, model_dense, x, index, names, cols, sequential, holdout=True):
    """(fit Gram, held-out Gram) per matrix name of layer ``index``, the calibration inputs streamed in chunks:
    every HOLDOUT_EVERY-th input is held out (none without ``holdout``)."""
    fit = {n: Gram(cols[n]) for n in names}
    held = {n: Gram(cols[n]) for n in names}
    rows = np.arange(len(x))
    for start in range(0, len(x), CHUNK):
        chunk = x[start:start + CHUNK]
        dense = _inputs_by_matrix(model_dense, chunk, upto=index)
        pruned = _inputs_by_matrix(model_for_inputs, chunk, upto=index) if sequential else dense
        out_of = ((rows[start:start + CHUNK] % HOLDOUT_EVERY) == HOLDOUT_EVERY - 1) & holdout
        for n in names:
            per_input = len(dense[n]) // len(chunk)           # patches or time steps per input
            held_rows = np.repeat(out_of, per_input)
            fit[n].add(pruned[n][~held_rows], dense[n][~held_rows])
            if held_rows.any():
                held[n].add(pruned[n][held_rows], dense[n][held_rows])
    return fit, held


def refit_model(model, results, calib, *, alpha=None, sequential=True, report=None, holdout=True):
    """The pruned model with every pruned matrix's kept weights and bias refit, never worse than unrefit on
    held-out calibration inputs (see the module docstring).

    Args:
        model: the dense :class:`darbgen.graph.Model`.
        results: {matrix name: PruneResult} (as from :func:`darbgen.prune_model`).
        calib: calibration inputs of the model's first layer, (n, inputs), n >= 8 (a quarter is held out).
        alpha: ridge strength (see the module docstring); None: the best of :data:`ALPHAS` on the held-out
            inputs, per matrix.
        sequential: fit each layer on the inputs the already refit pruned
            layers before it produce (True), or on the dense model's inputs.
        report: a dict to fill with {matrix name: {"alpha", "rows", "rows_refit", "heldout_error_pruned",
            "heldout_error_refit"}} (the errors: squared output errors summed over the held-out inputs).
        holdout: False: the plain refit on every input at ``alpha`` (default
            :data:`DEFAULT_ALPHA`), no held-out check (what
            :func:`darbgen.train.refit` does on a PyTorch module).

    Returns:
        A Model like ``model.with_pruning(results)`` (same masks and block
        sizes) whose kept weights and biases are refit where that helps.
    """
    import dataclasses

    from .graph import LSTM, Conv1D, Conv2D, Dense, Model

    x = _check_calib(model, calib)
    if not holdout:
        alpha = DEFAULT_ALPHA if alpha is None else alpha
    elif len(x) < 2 * HOLDOUT_EVERY:
        raise DarbgenError(f"{model.name}: a refit needs at least {2 * HOLDOUT_EVERY} calibration inputs (a "
                           f"quarter is held out to check it), got {len(x)}; pass more calibration inputs "
                           f"(calib=; --calib on the command line)")
    if alpha is not None:
        check_alpha(alpha, f"{model.name}: the refit's alpha")
    alphas = ALPHAS if alpha is None else (float(alpha),)
    current = model.with_pruning(results)
    for index, layer in enumerate(model.layers):
        parts = {layer.ih.name: layer.ih, layer.hh.name: layer.hh} if isinstance(layer, LSTM) else (
            {layer.name: layer} if isinstance(layer, (Dense, Conv1D, Conv2D)) else {})
        parts = {n: p for n, p in parts.items() if n in results}
        if not parts:
            continue
        cols = {n: p.pruning_matrix.shape[1] for n, p in parts.items()}
        fit, held = _grams(current, model, x, index, list(parts), cols, sequential, holdout)
        fitted = {}
        for n, part in parts.items():
            w0 = np.asarray(part.pruning_matrix, np.float64)
            w, b, row = refit_rows(w0, part.bias, results[n].mask, fit[n], held[n], alphas, holdout, n)
            fitted[n] = (w.astype(np.float32), b.astype(np.float32))
            if report is not None:
                report[n] = row
        old = current.layers[index]
        if isinstance(layer, LSTM):
            (wi, bi), (wh, bh) = (fitted.get(layer.ih.name, (old.w_ih, old.b_ih)),
                                  fitted.get(layer.hh.name, (old.w_hh, old.b_hh)))
            new = dataclasses.replace(old, w_ih=wi, w_hh=wh, b_ih=bi, b_hh=bh)
        else:
            w, b = fitted[layer.name]
            new = dataclasses.replace(old, weight=w.reshape(np.shape(old.weight)), bias=b)
        layers = list(current.layers)
        layers[index] = new
        current = Model(current.name, current.input_shape, layers, current.classes)
    return current
