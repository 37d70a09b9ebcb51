"""DARB in plain vectorised NumPy: the reference point for the numba kernels.

``darb_numpy(w, ratio)`` returns exactly the mask and block sizes of
``darbgen.prune(w, ratio, method="darb")`` for magnitude saliency (``|w|`` in
float32, no ``input_norms``, one matrix), computed with whole-array NumPy
operations only: no numba, no Python loop over rows or blocks. The only Python
loop is over the distinct block sizes the search chose (a dozen at most for
the default power-of-two candidates).

It exists so the benchmark (``darbgen.bench.prune``) can say how much the
numba path buys over the best a NumPy user could write, and as a second,
independent implementation of docs/pruning.md that the kernels are checked
against. The steps:

1. Saliency ``s = |w|`` (float32). Its bit pattern read as ``uint32`` sorts
   exactly like the float (``s`` is never negative or NaN), and integer
   compares are a little faster, so the selections below work on that view.
2. Irregular pass, exact top-``k`` with ``k = round(size / ratio)`` and ties in
   row-major order. The ``k``-th largest key is found with ``np.partition``,
   but only over the entries at or above a lower bound read off a fixed
   strided sample; the bound is verified (at least ``k`` entries reach it) and
   the full array is partitioned when it fails, so the answer never depends on
   the sample. Kept entries per row give the row densities.
3. Block sizes: :func:`darbgen.pruning.search.assign_block_sizes`, the same
   O(rows) exact search the numba path uses.
4. Block-max masking, per block-size class: the class's rows are gathered,
   padded to a multiple of ``b`` columns with zeros (after the real columns,
   so padding never wins a tie), reshaped to ``(rows, blocks, b)`` and reduced
   with ``argmax`` (the first maximum, i.e. the lowest column). Blocks of 2
   and 4 use a pairwise compare tree instead, which NumPy runs faster than an
   ``argmax`` over a 2- or 4-long axis.
"""
import math

import numpy as np

from ..errors import DarbgenError
from .search import assign_block_sizes, clean_candidates

# Matrices smaller than this are partitioned whole: the sample would not pay.
_SAMPLE_MIN_SIZE = 1 << 18
# About this many entries go into the sample that bounds the threshold.
_SAMPLE_SIZE = 1 << 16
# The bound sits this many standard deviations (of the binomial count of
# sample entries above the true threshold) below the expected rank.
_SAMPLE_SIGMAS = 8.0
# Largest block size handled by the compare tree instead of argmax.
_TREE_MAX_BLOCK = 4


def _as_float32_matrix(w, name):
    arr = np.asarray(w)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DarbgenError(f"{name}: weights must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DarbgenError(f"{name}: expected a 2-D weight matrix (rows = outputs), got shape {arr.shape}")
    if arr.size == 0:
        raise DarbgenError(f"{name}: the weight matrix is empty (shape {arr.shape}); nothing to prune")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(arr, dtype=np.float32)


def _check_ratio(ratio, name):
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
        raise DarbgenError(f"{name}: ratio must be a number, got {ratio!r}")
    ratio = float(ratio)
    if not math.isfinite(ratio) or ratio <= 1:
        raise DarbgenError(f"{name}: ratio must be a finite number > 1 (16 keeps 1 weight in 16), got {ratio:g}")
    return ratio


def _kth_largest(keys, k):
    """The ``k``-th largest entry of the 1-D array ``keys`` (1 <= k <= size)."""
    n = keys.size
    return np.partition(keys, n - k)[n - k]


def _sample_bound(flat, k):
    """A key at or below the ``k``-th largest with overwhelming probability
    (verified by the caller), from a fixed strided sample; 0 when the sample
    cannot say (then every entry is a candidate)."""
    n = flat.size
    step = max(1, n // _SAMPLE_SIZE) | 1  # odd, so the sample does not lock onto power-of-two columns
    sample = flat[step // 2::step]
    m = sample.size
    q = k / n
    rank = int(math.ceil(q * m + _SAMPLE_SIGMAS * math.sqrt(q * (1 - q) * m) + 16))
    if rank >= m:
        return 0
    return int(_kth_largest(sample, rank))


def irregular_row_counts(keys, k):
    """Per-row count of the ``k`` most salient entries of the uint32 key matrix
    ``keys`` (ties in row-major order): the irregular pass of docs/pruning.md."""
    rows, cols = keys.shape
    flat = keys.reshape(-1)
    bound = _sample_bound(flat, k) if flat.size >= _SAMPLE_MIN_SIZE else 0
    if bound > 0:
        cand = np.flatnonzero(flat >= bound)        # ascending = row-major order
        if cand.size < k:                           # the sample misjudged: no bound
            cand = None
    else:
        cand = None
    if cand is None:
        threshold = _kth_largest(flat, k)
        above = np.count_nonzero(keys > threshold, axis=1)
        equal_at = np.flatnonzero(flat == threshold)
        need = k - int(above.sum())
        return above + np.bincount(equal_at[:need] // cols, minlength=rows)
    vals = flat[cand]
    threshold = _kth_largest(vals, k)
    keep = vals > threshold
    need = k - int(np.count_nonzero(keep))
    keep[np.flatnonzero(vals == threshold)[:need]] = True
    # Kept per row from a running count at each row's first candidate.
    starts = np.searchsorted(cand, np.arange(rows + 1, dtype=np.int64) * cols)
    running = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return running[starts[1:]] - running[starts[:-1]]


def _block_argmax(g, b):
    """Index inside each block of its first maximum: ``g`` is (n, blocks * b)."""
    n = g.shape[0]
    v = g.reshape(n, -1, b)
    if b > _TREE_MAX_BLOCK or b & (b - 1):
        return v.argmax(axis=2)
    # Pairwise tree over adjacent pairs: the left one wins ties, so the
    # winner is the lowest index among the maxima.
    idx = None
    width = 1
    while v.shape[2] > 1:
        left, right = v[..., 0::2], v[..., 1::2]
        take_right = right > left
        v = np.maximum(left, right)
        if idx is None:
            idx = take_right.astype(np.intp)
        else:
            idx = np.where(take_right, idx[..., 1::2] + width, idx[..., 0::2])
        width *= 2
    return idx[..., 0]


def block_max_mask(keys, block_sizes):
    """Keep the most salient entry of every block of each row (row ``i`` cut into
    blocks of ``block_sizes[i]`` columns, the last one possibly shorter; ties
    to the lowest column). One vectorised pass per distinct block size."""
    rows, cols = keys.shape
    mask = np.zeros((rows, cols), np.bool_)
    flat_mask = mask.reshape(-1)
    sizes, inverse = np.unique(block_sizes, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(sizes.size + 1))
    for c, b in enumerate(sizes.tolist()):
        idx = order[bounds[c]:bounds[c + 1]]
        if b == 1:
            mask[idx] = True
            continue
        b = min(b, cols)                    # one block per row beyond the width
        nblocks = -(-cols // b)
        whole = idx.size == rows
        if nblocks * b == cols:
            g = keys if whole else np.take(keys, idx, axis=0)
        else:
            g = np.zeros((idx.size, nblocks * b), keys.dtype)
            g[:, :cols] = keys if whole else np.take(keys, idx, axis=0)
        best = _block_argmax(g, b)
        best += np.arange(0, nblocks * b, b)                     # column of each block's winner
        best += (idx * cols)[:, None] if not whole else (np.arange(rows, dtype=np.intp) * cols)[:, None]
        flat_mask[best.reshape(-1)] = True
    return mask


def darb_numpy(w, ratio, candidates=None, *, name="weights"):
    """DARB pruning of one matrix in vectorised NumPy (magnitude saliency).

    Args:
        w: 2-D array of real numbers (rows = outputs); converted to float32.
        ratio: total weights / kept weights, > 1.
        candidates: allowed block sizes (default: powers of two up to the
            column count), as for ``darbgen.prune(..., candidates=)``.
        name: used in error messages.

    Returns:
        ``(mask, block_sizes)``: a bool matrix of the weights kept and the int64
        block size of each row, identical to ``darbgen.prune(w, ratio).mask``
        and ``.block_sizes``.

    Raises:
        DarbgenError: bad weights (NaN/inf included), bad ratio, or a ratio the
        candidates cannot reach.
    """
    w = _as_float32_matrix(w, name)
    ratio = _check_ratio(ratio, name)
    rows, cols = w.shape
    keys = np.abs(w).view(np.uint32)
    # NaN/inf keys are >= 0x7f800000; a NaN in w would make max() of the float
    # view NaN, so checking the integer max catches both.
    if int(keys.max()) >= 0x7F800000:
        bad = np.count_nonzero(~np.isfinite(w))
        r, c = np.argwhere(~np.isfinite(w))[0]
        raise DarbgenError(f"{name}: {bad} weight(s) are NaN or inf, first at row {r}, column {c}. "
                           f"Fix the model (training diverged?) or replace them before pruning.")
    size = w.size
    k = int(round(size / ratio))
    if k < 1:
        raise DarbgenError(f"{name}: ratio {ratio:g} keeps no weight; the largest ratio here is {size} "
                           f"(one weight of {size} kept)")
    kept_per_row = irregular_row_counts(keys, k)
    densities = kept_per_row / cols
    cands = clean_candidates(candidates, cols, name)
    plan = assign_block_sizes([densities], [cols], [cands], size / ratio, ratio, [name])
    block_sizes = plan.block_sizes[0]
    return block_max_mask(keys, block_sizes), block_sizes
