"""numba kernels for the hot loops of pruning.

Every kernel here has a slow, obviously correct twin in ``tests/naive.py`` and
the tests compare the two on random and edge-case matrices.

Conventions shared by all kernels (see docs/pruning.md):

* ``w`` is a C-contiguous float32 matrix, ``norms`` a float32 vector with one
  entry per column, or None for plain magnitude pruning.
* Saliency is ``float32(|w|) * norm``, evaluated in float32. It is never NaN
  and never negative, so its IEEE bit pattern read as ``uint32`` sorts exactly
  like the float: kernels compare those keys. That makes the top-k selection a
  two-pass radix select with no copy of the matrix.
* Ties go to the lowest column (and, across rows, the lowest row).
"""
import numpy as np
from numba import get_num_threads, njit, prange

from ..numba_sigint import install as _hold_sigint_while_compiling

_hold_sigint_while_compiling()

_HIGH_BINS = 1 << 16


def chunk_count():
    """Row chunks for the parallel histograms: a few per thread, for balance."""
    return get_num_threads() * 4


@njit(cache=True)
def _saliency(w, norms, i, j):
    """float32 saliency of w[i, j]; ``norms`` None means plain magnitude (numba
    compiles that case separately, without the per-column load and multiply)."""
    if norms is None:
        return np.float32(abs(w[i, j]))
    return np.float32(np.float32(abs(w[i, j])) * norms[j])


@njit(cache=True)
def _key(w, norms, i, j):
    s = np.float32(_saliency(w, norms, i, j))
    return s.view(np.uint32)


@njit(cache=True, parallel=True)
def count_nonfinite(w):
    """Number of NaN or inf entries of a float32 matrix (parallel over rows)."""
    rows, cols = w.shape
    per_row = np.zeros(rows, np.int64)
    for i in prange(rows):
        n = 0
        for j in range(cols):
            if not np.isfinite(w[i, j]):
                n += 1
        per_row[i] = n
    return per_row.sum()


@njit(cache=True, parallel=True)
def high_histogram(w, norms, nchunks):
    """Histogram of the upper 16 bits of every saliency key (65536 bins),
    counted in ``nchunks`` row chunks in parallel."""
    rows, cols = w.shape
    nchunks = max(1, min(rows, nchunks))
    step = (rows + nchunks - 1) // nchunks
    hist = np.zeros((nchunks, _HIGH_BINS), np.int64)
    for c in prange(nchunks):
        for i in range(c * step, min(rows, (c + 1) * step)):
            for j in range(cols):
                hist[c, _key(w, norms, i, j) >> 16] += 1
    return hist.sum(axis=0)


@njit(cache=True, parallel=True)
def low_histogram(w, norms, high, nchunks):
    """Histogram of the lower 16 bits of the keys whose upper 16 bits == high."""
    rows, cols = w.shape
    nchunks = max(1, min(rows, nchunks))
    step = (rows + nchunks - 1) // nchunks
    hist = np.zeros((nchunks, _HIGH_BINS), np.int64)
    high = np.uint32(high)
    for c in prange(nchunks):
        for i in range(c * step, min(rows, (c + 1) * step)):
            for j in range(cols):
                k = _key(w, norms, i, j)
                if (k >> 16) == high:
                    hist[c, k & 0xFFFF] += 1
    return hist.sum(axis=0)


@njit(cache=True, parallel=True)
def row_counts(w, norms, threshold):
    """Per row: how many keys are above ``threshold`` and how many equal it."""
    rows, cols = w.shape
    above = np.zeros(rows, np.int64)
    equal = np.zeros(rows, np.int64)
    t = np.uint32(threshold)
    for i in prange(rows):
        a = 0
        e = 0
        for j in range(cols):
            k = _key(w, norms, i, j)
            if k > t:
                a += 1
            elif k == t:
                e += 1
        above[i] = a
        equal[i] = e
    return above, equal


@njit(cache=True, parallel=True)
def threshold_mask(w, norms, threshold, equal_quota):
    """Keep keys above ``threshold`` plus, per row, the first ``equal_quota[i]``
    keys equal to it (lowest columns first)."""
    rows, cols = w.shape
    mask = np.zeros((rows, cols), np.bool_)
    t = np.uint32(threshold)
    for i in prange(rows):
        quota = equal_quota[i]
        for j in range(cols):
            k = _key(w, norms, i, j)
            if k > t:
                mask[i, j] = True
            elif k == t and quota > 0:
                mask[i, j] = True
                quota -= 1
    return mask


@njit(cache=True, parallel=True)
def block_max_mask(w, norms, block_sizes):
    """Block-max weight masking: row i is cut into blocks of ``block_sizes[i]``
    columns (the last may be shorter) and the most salient weight of every
    block is kept (ties: lowest column).

    A row of many blocks is swept offset by offset across all its full blocks,
    so the blocks' running maxima are independent and the CPU overlaps them
    (about 2x faster than block after block for blocks of 4 to 64); a row of a
    few long blocks is swept block after block. The code is inline on purpose:
    moved into helper functions it ran 2-3x slower.
    """
    rows, cols = w.shape
    mask = np.zeros((rows, cols), np.bool_)
    for i in prange(rows):
        b = block_sizes[i]
        nb = (cols + b - 1) // b
        full = cols // b
        if full >= 8:
            best_key = np.empty(nb, np.uint32)
            best_off = np.zeros(nb, np.int64)
            for k in range(nb):
                best_key[k] = _key(w, norms, i, k * b)
            for o in range(1, b):
                for k in range(full):
                    c = k * b + o
                    key = _key(w, norms, i, c)
                    gt = key > best_key[k]          # strict: ties keep the lower column
                    best_key[k] = key if gt else best_key[k]
                    best_off[k] = o if gt else best_off[k]
            if full < nb:                            # the short last block
                start = full * b
                for c in range(start + 1, cols):
                    key = _key(w, norms, i, c)
                    if key > best_key[full]:
                        best_key[full] = key
                        best_off[full] = c - start
            for k in range(nb):
                mask[i, k * b + best_off[k]] = True
        else:
            start = 0
            while start < cols:
                stop = min(cols, start + b)
                best = start
                best_key0 = _key(w, norms, i, start)
                for j in range(start + 1, stop):
                    key = _key(w, norms, i, j)
                    if key > best_key0:
                        best_key0 = key
                        best = j
                mask[i, best] = True
                start = stop
    return mask


@njit(cache=True)
def _keep_top_in_segment(w, norms, i, start, stop, q, mask, keys):
    """Mark the ``q`` most salient weights of w[i, start:stop] (ties: lowest
    column). ``keys`` is scratch space of at least stop - start entries."""
    n = stop - start
    if q >= n:
        for j in range(start, stop):
            mask[i, j] = True
        return
    for j in range(n):
        keys[j] = _key(w, norms, i, start + j)
    ordered = np.sort(keys[:n])
    t = ordered[n - q]
    above = 0
    for j in range(n):
        if keys[j] > t:
            above += 1
    quota = q - above
    for j in range(n):
        if keys[j] > t:
            mask[i, start + j] = True
        elif keys[j] == t and quota > 0:
            mask[i, start + j] = True
            quota -= 1


@njit(cache=True, parallel=True)
def segment_top_mask(w, norms, seg_len, keep):
    """Cut each row into segments of ``seg_len`` columns (the last may be
    shorter) and keep the ``keep`` most salient weights of each (N:M and
    bank-balanced sparsity)."""
    rows, cols = w.shape
    mask = np.zeros((rows, cols), np.bool_)
    for i in prange(rows):
        keys = np.empty(seg_len, np.uint32)
        start = 0
        while start < cols:
            stop = min(cols, start + seg_len)
            _keep_top_in_segment(w, norms, i, start, stop, keep, mask, keys)
            start = stop
    return mask


@njit(cache=True, parallel=True)
def tile_scores(w, norms, tile_rows, tile_cols):
    """Score of each (tile_rows x tile_cols) tile: sum of squared saliency in
    float64, row-major inside the tile. Edge tiles may be smaller."""
    rows, cols = w.shape
    trs = (rows + tile_rows - 1) // tile_rows
    tcs = (cols + tile_cols - 1) // tile_cols
    scores = np.zeros((trs, tcs), np.float64)
    for ti in prange(trs):
        r0 = ti * tile_rows
        r1 = min(rows, r0 + tile_rows)
        for tj in range(tcs):
            c0 = tj * tile_cols
            c1 = min(cols, c0 + tile_cols)
            acc = 0.0
            for i in range(r0, r1):
                for j in range(c0, c1):
                    s = np.float64(_saliency(w, norms, i, j))
                    acc += s * s
            scores[ti, tj] = acc
    return scores


@njit(cache=True, parallel=True)
def expand_tiles(keep, rows, cols, tile_rows, tile_cols):
    """Weight mask from a tile mask: every weight of a kept tile is kept."""
    mask = np.zeros((rows, cols), np.bool_)
    for i in prange(rows):
        ti = i // tile_rows
        for j in range(cols):
            mask[i, j] = keep[ti, j // tile_cols]
    return mask
