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


# The largest block, group, tile side or bank count accepted: the kernels index with fixed-size integers.
MAX_OPTION = 2**31 - 1


def _positive_int(value, what, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DarbgenError(f"{name}: {what} must be a positive integer, got {value!r}")
    if value > MAX_OPTION:
        raise DarbgenError(f"{name}: {what} must be at most {MAX_OPTION}, got {value}")
    return int(value)


def check_ratio_fits(ratio, size, name):
    """Refuse a ratio that keeps less than one weight of ``size``: every method keeps at least
    one, so ``size`` (one weight kept) is the largest ratio there is."""
    if ratio > size:
        raise DarbgenError(f"{name}: ratio {ratio:g} keeps no weight; the largest ratio here is {size} "
                           f"(one weight of {size} kept)")
    return ratio


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
        ratio that cannot be reached; the message says what can
        (:func:`reachable_ratio` tells in advance, from the shape alone).

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
    if ratio is not None or method not in ("bmwm", "nm"):  # one check of the ratio, for every method
        ratio = check_ratio_fits(check_ratio(ratio, label, method), sum(w.size for w in ws), label)
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
        if options.get("m") is not None:   # from a ratio, m = n keeps every weight, as bmwm's block 1 does (the
            _check_nm(n_keep, m, label)    # first steps of a gradual schedule, ratio near 1, prune nothing)
        resolved.update(n=n_keep, m=m)
        # a group longer than the row is the row: the same mask, without a buffer of m keys per row
        masks = [kernels.segment_top_mask(w, nrm, min(m, w.shape[1]), n_keep) for w, nrm in zip(ws, norms)]
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


def _check_nm(n, m, name):
    """N:M keeps n weights of every group of m: it prunes nothing unless n < m (so m >= 2)."""
    if m < 2:
        raise DarbgenError(f"{name}: N:M sparsity needs groups of m >= 2 weights, got m={m}; give m= of 2 or more")
    if n >= m:
        raise DarbgenError(f"{name}: N:M sparsity keeps n of every m weights and needs n < m, got n={n}, m={m}, "
                           f"which keeps every weight; lower n= or raise m=")


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


# ----------------------------------------------------------------------------- reachable ratios

def _ceil_div(a, b):
    return -(-int(a) // int(b))


def _reach(shape, method, options, name):
    """(lo, hi, why_hi, why_lo, fix_lo, fixed) of one (rows, cols) matrix (see :func:`reachable_ratio`);
    ``fixed``: the option that fixes the ratio (``block=8``, ``m=8``), else ''."""
    rows, cols = (int(d) for d in shape)
    size = rows * cols
    if method == "irregular":
        return 1.0, float(size), f"one weight of {size} kept", "", "", ""
    if method == "darb":
        cands = clean_candidates(options.get("candidates"), cols, name)
        lo_c, hi_c = int(cands[0]), int(cands[-1])
        per_row = _ceil_div(cols, hi_c)
        why = (f"one weight per block of {hi_c} columns, the largest candidate block, so at least {per_row} per "
               f"row of {cols}")
        return (cols / _ceil_div(cols, lo_c), cols / per_row, why, f"block sizes from {lo_c}",
                "allow block size 1 in candidates=", "")
    if method == "bmwm":
        block = options.get("block")
        if block is None:
            return 1.0, float(cols), f"one weight per row of {cols}", "", "", ""
        block = _positive_int(block, "block", name)
        return (max(1.0, block - 0.5), min(block + 0.5, float(cols)),
                f"block={block} fixes the ratio near {block}, and one weight per row of {cols} is the most",
                f"block={block} fixes the ratio near {block}",
                "drop block= (the ratio then chooses the block) or prune at once with steps=0", f"block={block}")
    if method == "nm":
        n = _positive_int(options.get("n", 1), "n", name)
        top = cols / min(n, cols)
        m = options.get("m")
        if m is None:
            return 1.0, top, f"{min(n, cols)} weight(s) per row of {cols} (n={n})", "", "", ""
        m = _positive_int(m, "m", name)
        return (max(1.0, (m - 0.5) / n), min((m + 0.5) / n, top),
                f"n={n}, m={m} fix the ratio near {m / n:g}, and {min(n, cols)} weight(s) per row of {cols} is the "
                f"most", f"n={n}, m={m} fix the ratio near {m / n:g}",
                "drop m= (the ratio then chooses m) or prune at once with steps=0", f"m={m}")
    if method == "bank_balanced":
        banks = options.get("banks")
        if banks is None:
            return 1.0, float(cols), f"one weight per row of {cols} (one bank)", "", "", ""
        banks = _positive_int(banks, "banks", name)
        if banks > cols:
            raise DarbgenError(f"{name}: {banks} banks do not fit in {cols} columns; use at most {cols}")
        present = _ceil_div(cols, _ceil_div(cols, banks))
        return 1.0, cols / present, f"one weight per bank, {present} banks per row of {cols}", "", "", ""
    # block
    tr, tc = _tile(options.get("tile"), name)
    tiles = _ceil_div(rows, tr) * _ceil_div(cols, tc)
    return 1.0, float(tiles), f"one {tr}x{tc} tile of {tiles} kept", "", "", ""


def reachable_ratio(shape, method="darb", **options):
    """The pruning ratios ``method`` reaches on a matrix of ``shape``.

    Cheap (a few integer operations, no weights needed), so a search over
    ratios can call it for every layer and candidate method.

    Args:
        shape: (rows, cols) of the matrix as darbgen prunes it (rows =
            outputs; a convolution (out, in, kh, kw) is (out, in*kh*kw)).
        method, **options: as :func:`prune` (``candidates``, ``block``,
            ``n``, ``m``, ``banks``, ``tile``).

    Returns:
        (lo, hi): a ``ratio`` in [lo, hi] is accepted by :func:`prune` and
        achieved up to the method's granularity (whole blocks, tiles, N:M
        groups). Above ``hi``, ``darb`` raises and the other methods keep
        more weights than asked (``irregular`` raises once not one weight
        would be kept). ``lo > hi`` means no ratio works with these options. Per method, for cols columns:

        - ``darb``: cols / ceil(cols / smallest candidate) to
          cols / ceil(cols / largest candidate); with the default candidates
          (powers of two up to cols) 1 to cols for a power of two, else about
          cols / 2: a 3x3x3 convolution (27 columns) reaches 13.5 at most.
        - ``irregular``: 1 to rows * cols (one weight kept).
        - ``bmwm``, ``bank_balanced``: 1 to cols (one weight per row); with
          ``block=b``, b - 0.5 to b + 0.5 (the ratios that agree with it);
          with ``banks=``, at least one weight per bank.
        - ``nm``: 1 to cols / n; with ``m=``, (m - 0.5) / n to (m + 0.5) / n.
        - ``block``: 1 to the number of tiles (one tile kept).

    Example:
        >>> import darbgen.pruning.api as api
        >>> api.reachable_ratio((16, 27), "darb")
        (1.0, 13.5)
    """
    _check_options(method, options, "weights")
    shape = tuple(shape)
    if len(shape) != 2 or any(isinstance(d, bool) or int(d) != d or d < 1 for d in shape):
        raise DarbgenError(f"reachable_ratio: shape must be (rows, cols) of positive integers, got {shape!r}")
    lo, hi = _reach(shape, method, options, "weights")[:2]
    return float(lo), float(hi)


def check_reachable(shapes, ratio, method="darb", *, scope="layer", lowest=None, **options):
    """Refuse, before any pruning or training, a ratio a matrix cannot reach.

    Args:
        shapes: {name: (rows, cols)} of the matrices to prune; the names are
            those ``layers=`` takes (they appear in the message's fix).
        ratio: the final ratio.
        method, scope, **options: as :func:`prune_model`.
        lowest: the smallest ratio a gradual schedule asks for on its way
            (default ``ratio``).

    Returns:
        {name: (lo, hi)} per matrix, as :func:`reachable_ratio`.

    Raises:
        DarbgenError naming the first matrix out of reach (or "the model" for
        ``scope="global"``), what it reaches, and the fix: leave it dense
        with ``layers=``, or another ``ratio=``.
    """
    if scope not in SCOPES:
        raise DarbgenError(f"unknown scope {scope!r}; choose 'layer' or 'global'")
    names = [str(n) for n in shapes]
    if not names:
        raise DarbgenError("nothing to prune: no matrices")
    _check_options(method, options, names[0] if len(names) == 1 else "the model")
    ratio = check_ratio(ratio, names[0] if len(names) == 1 else "the model", method)
    lowest = ratio if lowest is None else float(lowest)
    shape_of = {n: tuple(int(d) for d in s) for n, s in zip(names, shapes.values())}
    reach = {n: _reach(shape_of[n], method, options, n) for n in names}
    out = {n: (float(r[0]), float(r[1])) for n, r in reach.items()}
    start = (f"the gradual schedule starts at ratio {lowest:.4g}" if lowest < ratio * (1 - 1e-9)
             else f"ratio={ratio:g} is below it")
    if scope == "global" and method in _GLOBAL and len(names) > 1:
        size = sum(r * c for r, c in shape_of.values())
        if method == "block":           # one tile of the whole model at least
            lo, hi = 1.0, float(sum(out[n][1] for n in names))
        elif method == "irregular":     # one weight of the whole model
            lo, hi = 1.0, float(size)
        else:                           # darb: kept counts add up, as assign_block_sizes counts them
            cands = {n: clean_candidates(options.get("candidates"), c, n) for n, (_, c) in shape_of.items()}
            lo = size / sum(r * _ceil_div(c, cands[n][0]) for n, (r, c) in shape_of.items())
            hi = size / sum(r * _ceil_div(c, cands[n][-1]) for n, (r, c) in shape_of.items())
        if ratio > hi:
            raise DarbgenError(f"the model: ratio={ratio:g} cannot be reached by method {method!r} over its "
                               f"{len(names)} matrices together (scope='global'), which reach {lo:.4g} to "
                               f"{hi:.4g}. Lower ratio= to at most {hi:.4g}.")
        if lowest < lo:
            raise DarbgenError(f"the model: method {method!r} reaches ratios from {lo:.4g} over its matrices "
                               f"together (scope='global') and {start}: raise it, or "
                               f"{next(r[4] for r in reach.values())}.")
        return out
    for n, (lo, hi, why_hi, why_lo, fix_lo, fixed) in reach.items():
        rows, cols = shape_of[n]
        per = int(options.get("n", 1)) if method == "nm" else 1
        value = int(fixed.split("=")[1]) if fixed else 0
        if fixed and abs(ratio * per - value) > 0.5:       # prune's own rule for ratio and block= / m=
            raise DarbgenError(f"{n}: ratio {ratio:g} and {fixed} disagree; give one of them (drop "
                               f"{fixed.split('=')[0]}= and the ratio chooses it)")
        others = [m for m in names if m != n]
        dense = ""
        if others:
            dense = (f"leave it dense with layers={others!r}, or " if len(others) <= 6 else
                     f"leave it dense (layers= without {n!r}), or ")
        if lo > hi:
            raise DarbgenError(f"{n} ({rows} x {cols}): method {method!r} reaches no ratio on this layer "
                               f"({why_hi}): {dense}change the method's options.")
        if ratio > hi:
            raise DarbgenError(f"{n} ({rows} x {cols}): ratio={ratio:g} cannot be reached by method {method!r}, "
                               f"which reaches {lo:.4g} to {hi:.4g} on this layer ({why_hi}): {dense}lower ratio= "
                               f"to at most {hi:.4g}.")
        if lowest < lo:
            if fixed:                          # the structure fixes the ratio of every layer alike
                fix, dense = fix_lo, ""
            elif lowest < ratio * (1 - 1e-9):
                fix = f"{fix_lo}, or start the schedule there with initial_ratio={lo:.4g}"
            else:
                fix = f"{fix_lo}, or raise ratio="
            raise DarbgenError(f"{n} ({rows} x {cols}): method {method!r} reaches ratios from {lo:.4g} on this "
                               f"layer ({why_lo}) and {start}: {dense}{fix}.")
    return out
