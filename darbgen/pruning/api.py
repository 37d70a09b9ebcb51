"""darbgen.prune and darbgen.prune_model: every pruning method behind one call.

The exact semantics (what is kept, ties, rounding) are in docs/pruning.md.
"""
import math

import numpy as np

from ..errors import DarbgenError
from . import kernels
from .result import ModelPruneResult, PruneResult
from .search import assign_block_sizes, clean_candidates

METHODS = ("darb", "irregular", "bmwm", "block", "bank_balanced", "nm")
SCOPES = ("layer", "global")

_OPTIONS = {
    "darb": {"candidates"},
    "irregular": set(),
    "bmwm": {"block"},
    "block": {"tile"},
    "bank_balanced": {"banks"},
    "nm": {"n", "m"},
}
# Methods whose kept count is spread over the model by saliency when scope="global".
_GLOBAL = ("darb", "irregular", "block")


# ----------------------------------------------------------------------------- checks

def as_weights(weights, name):
    """The weights as a C-contiguous float32 matrix, or a DarbgenError naming ``name``."""
    arr = np.asarray(weights)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DarbgenError(f"{name}: weights must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = (" Flatten a convolution kernel (out, in, kh, kw) to (out, in*kh*kw) with w.reshape(w.shape[0], -1)."
                if arr.ndim > 2 else " A 1-D array (a bias, say) is not pruned.")
        raise DarbgenError(f"{name}: expected a 2-D weight matrix (rows = outputs), got shape {arr.shape}.{hint}")
    if arr.size == 0:
        raise DarbgenError(f"{name}: the weight matrix is empty (shape {arr.shape}); nothing to prune")
    with np.errstate(over="ignore"):
        w = np.ascontiguousarray(arr, dtype=np.float32)
    bad = int(kernels.count_nonfinite(w))
    if bad:
        rows, cols = np.nonzero(~np.isfinite(w))
        where = f"first at row {rows[0]}, column {cols[0]}"
        too_big = np.isfinite(arr[rows[0], cols[0]]) if arr.dtype != np.float32 else False
        why = " (too large for float32)" if too_big else ""
        raise DarbgenError(
            f"{name}: {bad} weight(s) are NaN or inf{why}, {where}. Fix the model (training diverged?) "
            f"or replace them before pruning.")
    return w


def as_norms(input_norms, cols, name):
    """Per-column saliency factors as float32, or None (plain magnitude)."""
    if input_norms is None:
        return None
    norms = np.asarray(input_norms)
    if norms.ndim != 1 or norms.shape[0] != cols:
        raise DarbgenError(f"{name}: input_norms must have one value per column ({cols}), got shape {norms.shape}")
    if not np.issubdtype(norms.dtype, np.number):
        raise DarbgenError(f"{name}: input_norms must be numbers, got dtype {norms.dtype}")
    # + 0.0 turns -0.0 into +0.0: the kernels compare bit patterns, where -0.0 would outrank everything.
    norms = np.ascontiguousarray(norms, dtype=np.float32) + np.float32(0.0)
    if not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise DarbgenError(f"{name}: input_norms must be finite and >= 0 (norms of calibration inputs)")
    return norms


def check_ratio(ratio, name, method):
    if ratio is None:
        raise DarbgenError(f"{name}: method {method!r} needs a ratio (total weights / kept weights), e.g. ratio=16")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise DarbgenError(f"{name}: ratio must be a number, got {ratio!r}")
    ratio = float(ratio)
    if not math.isfinite(ratio) or ratio <= 1:
        raise DarbgenError(f"{name}: ratio must be a finite number > 1 (16 keeps 1 weight in 16), got {ratio:g}")
    return ratio


def _positive_int(value, what, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DarbgenError(f"{name}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _check_options(method, options, name):
    if method not in METHODS:
        raise DarbgenError(f"{name}: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        valid = ", ".join(sorted(_OPTIONS[method])) or "none"
        raise DarbgenError(f"{name}: option(s) {', '.join(sorted(unknown))} do not apply to method "
                           f"{method!r} (its options: {valid})")


# ----------------------------------------------------------------------------- selection

def _topk_threshold(ws, norms, k):
    """Key threshold and per-row tie quotas that keep exactly the ``k`` most
    salient weights of all matrices together (row-major order, matrices in
    the order given). Returns (threshold, [above per row], [quota per row]).

    The threshold comes from a two-pass radix select (16 high bits, then 16
    low bits of the keys), which needs no copy or sort of the matrix. A
    sample-and-bracket selection (one scan plus a small partition) was tried
    and measured slower: its scan cannot vectorise, the histogram passes can.
    """
    threshold, above, equal = _radix_select(ws, norms, k)
    equal = np.concatenate(equal)
    need = k - sum(int(a.sum()) for a in above)
    before = np.cumsum(equal) - equal
    quota_all = np.clip(need - before, 0, equal)
    quotas, offset = [], 0
    for a in above:
        quotas.append(quota_all[offset: offset + a.size])
        offset += a.size
    return threshold, above, quotas


def _radix_select(ws, norms, k):
    """Two-pass radix select on the key bits (16 high, then 16 low)."""
    hist = sum(kernels.high_histogram(w, n, kernels.chunk_count()) for w, n in zip(ws, norms))
    at_or_above = np.cumsum(hist[::-1])[::-1]
    high = int(np.flatnonzero(at_or_above >= k)[-1])
    above_high = int(at_or_above[high] - hist[high])
    low_hist = sum(kernels.low_histogram(w, n, high, kernels.chunk_count()) for w, n in zip(ws, norms))
    low_at_or_above = np.cumsum(low_hist[::-1])[::-1]
    low = int(np.flatnonzero(low_at_or_above >= k - above_high)[-1])
    threshold = (high << 16) | low
    counts = [kernels.row_counts(w, n, threshold) for w, n in zip(ws, norms)]
    return threshold, [a for a, _ in counts], [e for _, e in counts]


def _keep_count(size, ratio, name):
    k = int(round(size / ratio))
    if k < 1:
        raise DarbgenError(f"{name}: ratio {ratio:g} keeps no weight; the largest ratio here is {size} "
                           f"(one weight of {size} kept)")
    return k


def _irregular(ws, norms, ratio, name):
    size = sum(w.size for w in ws)
    k = _keep_count(size, ratio, name)
    threshold, above, quotas = _topk_threshold(ws, norms, k)
    return threshold, above, quotas


def _irregular_masks(ws, norms, ratio, name):
    threshold, _, quotas = _irregular(ws, norms, ratio, name)
    return [kernels.threshold_mask(w, n, threshold, q) for w, n, q in zip(ws, norms, quotas)]


def _darb(ws, norms, ratio, names, candidates):
    _, above, quotas = _irregular(ws, norms, ratio, names[0] if len(names) == 1 else "the model")
    densities = [(a + q) / w.shape[1] for a, q, w in zip(above, quotas, ws)]
    cands = [clean_candidates(c, w.shape[1], n) for c, w, n in zip(candidates, ws, names)]
    size = sum(w.size for w in ws)
    plan = assign_block_sizes(densities, [w.shape[1] for w in ws], cands, size / ratio, ratio, names)
    masks = [kernels.block_max_mask(w, n, b) for w, n, b in zip(ws, norms, plan.block_sizes)]
    return masks, plan.block_sizes, densities, cands


def _tile(tile, name):
    if tile is None:
        return (4, 4)
    try:
        tr, tc = tile
    except (TypeError, ValueError):
        raise DarbgenError(f"{name}: tile must be a pair (rows, cols), got {tile!r}") from None
    return (_positive_int(tr, "tile rows", name), _positive_int(tc, "tile cols", name))


def _block_masks(ws, norms, ratio, tile, name):
    scores = [kernels.tile_scores(w, n, tile[0], tile[1]) for w, n in zip(ws, norms)]
    flat = np.concatenate([s.ravel() for s in scores])
    k = max(1, int(round(flat.size / ratio)))  # at least one tile, as docs/pruning.md says
    keep_flat = topk_flat(flat, k)
    masks, offset = [], 0
    for w, s in zip(ws, scores):
        keep = keep_flat[offset: offset + s.size].reshape(s.shape)
        offset += s.size
        masks.append(kernels.expand_tiles(keep, w.shape[0], w.shape[1], tile[0], tile[1]))
    return masks


def topk_flat(values, k):
    """Boolean mask of the ``k`` largest entries of a 1-D array, ties to the
    lowest index; selection by partition, not a full sort."""
    n = values.size
    if k >= n:
        return np.ones(n, bool)
    t = np.partition(values, n - k)[n - k]
    keep = values > t
    need = k - int(np.count_nonzero(keep))
    ties = np.flatnonzero(values == t)[:need]
    keep[ties] = True
    return keep


# ----------------------------------------------------------------------------- public API

def prune(weights, ratio=None, method="darb", *, input_norms=None, name="weights", **options):
    """Prune one weight matrix.

    Args:
        weights: 2-D array of real numbers, rows = outputs (a convolution kernel
            flattened to (out, in*kh*kw)). Converted to float32.
        ratio: total weights / kept weights (16 keeps 1 in 16). Required for
            ``darb``, ``irregular``, ``block`` and ``bank_balanced``; for
            ``bmwm`` and ``nm`` it may be given instead of ``block`` / ``m``.
        method: one of ``darb`` (default), ``irregular``, ``bmwm``, ``block``,
            ``bank_balanced``, ``nm``.
        input_norms: optional, one non-negative value per column (for example
            the L2 norm of each input over calibration data); saliency becomes
            |w| * norm instead of |w|.
        name: used in error messages and reports.
        **options: per method: ``candidates`` (darb: allowed block sizes,
            default powers of two up to the column count), ``block`` (bmwm),
            ``tile=(r, c)`` (block, default (4, 4)), ``banks`` (bank_balanced),
            ``n`` and ``m`` (nm, N kept in every M).

    Returns:
        A :class:`PruneResult` with ``mask``, achieved ``ratio``,
        ``block_sizes`` (darb and bmwm) and ``method``.

    Raises:
        DarbgenError (a ValueError) for bad weights, unknown options or a
        ratio that cannot be reached; the message says what can.

    Example:
        >>> import numpy as np, darbgen
        >>> w = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
        >>> r = darbgen.prune(w, 16)
        >>> round(r.ratio)
        16
    """
    result = prune_model({name: weights}, ratio, method, scope="layer",
                         input_norms=None if input_norms is None else {name: input_norms}, **options)
    return result[name]


def prune_model(matrices, ratio=None, method="darb", *, scope="layer", input_norms=None, **options):
    """Prune several weight matrices (a whole model) with one ratio.

    Args:
        matrices: mapping name -> 2-D weight matrix (rows = outputs).
        ratio, method, **options: as for :func:`prune`.
        scope: ``"layer"`` prunes each matrix at ``ratio`` on its own;
            ``"global"`` keeps ``total / ratio`` weights over the whole model,
            spread by saliency (for ``irregular``, ``darb`` and ``block``; the
            other methods fix every row's kept count, so there it equals
            ``"layer"``).
        input_norms: optional mapping name -> per-column norms.

    Returns:
        A :class:`ModelPruneResult`: a mapping name -> :class:`PruneResult`
        with the overall achieved ``ratio``.
    """
    if scope not in SCOPES:
        raise DarbgenError(f"unknown scope {scope!r}; choose 'layer' or 'global'")
    if not hasattr(matrices, "items") or len(matrices) == 0:
        raise DarbgenError("prune_model needs a non-empty mapping of name -> weight matrix")
    names = [str(n) for n in matrices]
    _check_options(method, options, names[0] if len(names) == 1 else "the model")
    norms_in = input_norms or {}
    extra = set(map(str, norms_in)) - set(names)
    if extra:
        raise DarbgenError(f"input_norms names unknown matrices: {', '.join(sorted(extra))}")
    ws = [as_weights(w, n) for n, w in zip(names, matrices.values())]
    norms = [as_norms(norms_in.get(n), w.shape[1], n) for n, w in zip(names, ws)]

    if scope == "global" and method in _GLOBAL and len(ws) > 1:
        layers = _prune_group(ws, norms, names, ratio, method, options)
    else:
        layers = {}
        for w, nrm, n in zip(ws, norms, names):
            layers.update(_prune_group([w], [nrm], [n], ratio, method, options))
    size = sum(w.size for w in ws)
    kept = sum(r.kept for r in layers.values())
    requested = next(iter(layers.values())).requested_ratio
    return ModelPruneResult(layers, size / kept, requested, method, scope)


def _prune_group(ws, norms, names, ratio, method, options):
    """Prune matrices that share one selection (one matrix, or a global group)."""
    label = names[0] if len(names) == 1 else "the model"
    block_sizes = [None] * len(ws)
    densities = [None] * len(ws)
    resolved = {}
    requested = ratio
    if method == "irregular":
        ratio = check_ratio(ratio, label, method)
        masks = _irregular_masks(ws, norms, ratio, label)
    elif method == "darb":
        ratio = check_ratio(ratio, label, method)
        cands = options.get("candidates")
        masks, block_sizes, densities, cand_used = _darb(ws, norms, ratio, names, [cands] * len(ws))
        resolved["candidates"] = [int(c) for c in cand_used[0]] if len(ws) == 1 else None
    elif method == "block":
        ratio = check_ratio(ratio, label, method)
        tile = _tile(options.get("tile"), label)
        resolved["tile"] = tile
        masks = _block_masks(ws, norms, ratio, tile, label)
    elif method == "bmwm":
        block = _structure_size(options.get("block"), ratio, 1, "block", label)
        resolved["block"] = block
        block_sizes = [np.full(w.shape[0], block, np.int64) for w in ws]
        masks = [kernels.block_max_mask(w, n, b) for w, n, b in zip(ws, norms, block_sizes)]
        requested = None if ratio is None else float(ratio)
    elif method == "nm":
        n_keep = _positive_int(options.get("n", 1), "n", label)
        m = _structure_size(options.get("m"), ratio, n_keep, "m", label)
        if n_keep > m:
            raise DarbgenError(f"{label}: N:M sparsity needs n <= m, got n={n_keep}, m={m}")
        resolved.update(n=n_keep, m=m)
        masks = [kernels.segment_top_mask(w, nrm, m, n_keep) for w, nrm in zip(ws, norms)]
        requested = None if ratio is None else float(ratio)
    else:  # bank_balanced
        ratio = check_ratio(ratio, label, method)
        masks = []
        for w, nrm, n in zip(ws, norms, names):
            cols = w.shape[1]
            banks = options.get("banks")
            banks = max(1, round(cols / (4 * ratio))) if banks is None else _positive_int(banks, "banks", n)
            if banks > cols:
                raise DarbgenError(f"{n}: {banks} banks do not fit in {cols} columns; use at most {cols}")
            length = -(-cols // banks)
            keep = max(1, round(length / ratio))
            resolved.update(banks=banks, bank_length=length, keep_per_bank=keep)
            masks.append(kernels.segment_top_mask(w, nrm, length, keep))
    if requested is not None:
        requested = float(requested)
    out = {}
    for w, m, b, d, n in zip(ws, masks, block_sizes, densities, names):
        kept = int(np.count_nonzero(m))  # 0 is possible for one matrix of a global selection
        out[n] = PruneResult(mask=m, ratio=w.size / kept if kept else float("inf"), requested_ratio=requested, block_sizes=b,
                             method=method, options=dict(resolved), densities=d, name=n, kept=kept)
    return out


def _structure_size(value, ratio, n_keep, what, name):
    """Block size (bmwm) or group size m (nm), given directly or from the ratio."""
    if value is not None:
        value = _positive_int(value, what, name)
        if ratio is not None:
            implied = check_ratio(ratio, name, "bmwm" if what == "block" else "nm") * n_keep
            if abs(implied - value) > 0.5:
                raise DarbgenError(f"{name}: ratio {ratio:g} and {what}={value} disagree; give one of them")
        return value
    if ratio is None:
        raise DarbgenError(f"{name}: give {what}= or a ratio")
    ratio = check_ratio(ratio, name, "bmwm" if what == "block" else "nm")
    return max(1, int(round(ratio * n_keep)))


def from_zeros(weights, method="darb", *, name="weights", candidates=None):
    """The pruning an already pruned matrix carries in its zeros (a model
    fine-tuned with :mod:`darbgen.train`, or pruned by another tool).

    ``irregular``: the mask is the non-zeros. ``darb``: each row gets the
    largest candidate block size (default: powers of two up to the column
    count) whose blocks each hold at most one non-zero, and the mask keeps
    the largest weight of every block, so no non-zero is ever dropped (a
    block of zeros keeps one zero). A model fine-tuned with DARB comes back
    with its block sizes or larger ones.

    Returns a :class:`PruneResult` (``requested_ratio`` None).
    """
    if method not in ("darb", "irregular"):
        raise DarbgenError(f"{name}: reading the pruning from zeros works for 'darb' and 'irregular', not {method!r}")
    w = as_weights(weights, name)
    nonzero = w != 0
    if method == "irregular":
        kept = int(np.count_nonzero(nonzero))
        if kept == 0:
            raise DarbgenError(f"{name}: every weight is zero; nothing to keep")
        return PruneResult(nonzero, w.size / kept, None, None, "irregular", {"from_zeros": True}, name=name,
                           kept=kept)
    rows, cols = w.shape
    cands = clean_candidates(candidates, cols, name)
    cands = cands[cands <= cols]
    if cands.size == 0:
        raise DarbgenError(f"{name}: no candidate block size fits {cols} columns")
    sizes = np.full(rows, -1, np.int64)
    for b in cands:                       # ascending: the last size that fits wins
        nb = -(-cols // b)
        padded = np.zeros((rows, nb * b), bool)
        padded[:, :cols] = nonzero
        fits = padded.reshape(rows, nb, b).sum(axis=2).max(axis=1) <= 1
        sizes[fits] = b
    if np.any(sizes < 0):
        r = int(np.flatnonzero(sizes < 0)[0])
        raise DarbgenError(f"{name}: row {r} has two non-zeros closer than the smallest candidate block "
                           f"({int(cands[0])}); allow block size 1 or read it as irregular")
    mask = kernels.block_max_mask(w, None, sizes)
    kept = int(np.count_nonzero(mask))
    return PruneResult(mask, w.size / kept, None, sizes, "darb", {"from_zeros": True}, name=name, kept=kept)
