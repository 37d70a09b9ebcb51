"""Slow, obviously correct reference implementations of every pruning method.

Each function follows docs/pruning.md literally (saliency in float32, the
row-major tie order, Python's round(), the darb event rules) with plain loops
and sorts, so the fast kernels in darbgen.pruning can be compared against it
element for element. Nothing here imports darbgen. Errors are ValueError.
"""
import math

import numpy as np


# ----------------------------------------------------------------------------- inputs

def _weights(w):
    """The weights as a C-contiguous float32 matrix; ValueError if not 2-D, empty, NaN or inf."""
    arr = np.asarray(w)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"expected a non-empty 2-D weight matrix, got shape {arr.shape}")
    with np.errstate(over="ignore"):
        w32 = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(w32)):
        raise ValueError("weights contain NaN or inf (after conversion to float32)")
    return w32


def _norms(input_norms, cols):
    """Per-column saliency factors as float32; all ones when not given."""
    if input_norms is None:
        return np.ones(cols, np.float32)
    norms = np.ascontiguousarray(np.asarray(input_norms), dtype=np.float32)
    if norms.ndim != 1 or norms.shape[0] != cols:
        raise ValueError(f"input_norms must have one value per column ({cols}), got shape {norms.shape}")
    if not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise ValueError("input_norms must be finite and >= 0")
    return norms


def _ratio(ratio):
    """The ratio as a Python float; ValueError unless finite and > 0."""
    ratio = float(ratio)
    if not math.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"ratio must be a finite positive number, got {ratio!r}")
    return ratio


def _positive_int(value, what):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _norms_list(input_norms, count):
    if input_norms is None:
        return [None] * count
    if len(input_norms) != count:
        raise ValueError(f"input_norms must have one entry per matrix ({count}), got {len(input_norms)}")
    return list(input_norms)


def _ceil_div(a, b):
    return -(-int(a) // int(b))


def _top_columns(s_row, start, stop, q):
    """Columns of the q most salient weights of s_row[start:stop]: larger saliency
    first, equal saliency by lower column."""
    cols = sorted(range(start, stop), key=lambda j: (-float(s_row[j]), j))
    return cols[:q]


# ----------------------------------------------------------------------------- saliency and irregular

def saliency(w, input_norms=None):
    """Saliency float32(|w|) * float32(norm) per weight, evaluated in float32, shape (R, C)."""
    w = _weights(w)
    norms = _norms(input_norms, w.shape[1])
    rows, cols = w.shape
    s = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            s[i, j] = np.float32(abs(w[i, j])) * norms[j]   # float32 * float32 -> float32
    return s


def irregular_mask(w, ratio, input_norms=None):
    """Keep exactly k = round(R*C / ratio) most salient weights (ties: row-major first); k < 1 is an error."""
    return irregular_mask_global([w], ratio, [input_norms])[0]


def irregular_mask_global(ws, ratio, input_norms=None):
    """Irregular selection over several matrices as if concatenated (matrix order, then
    row-major inside each); returns one boolean mask per matrix."""
    ratio = _ratio(ratio)
    norms = _norms_list(input_norms, len(ws))
    sal = [saliency(w, n) for w, n in zip(ws, norms)]
    size = sum(s.size for s in sal)
    if ratio > size:                  # every method: a ratio above the weight count keeps less than one weight
        raise ValueError(f"ratio {ratio:g} keeps no weight; the largest ratio is {size}")
    k = round(size / ratio)
    if k > size:
        raise ValueError(f"ratio {ratio:g} would keep {k} of {size} weights")
    # Every weight as (matrix, row, col); the global order position of (m, i, j) in
    # the concatenation is given by the tuple itself, so it is the tie-break.
    everything = []
    for m, s in enumerate(sal):
        rows, cols = s.shape
        for i in range(rows):
            for j in range(cols):
                everything.append((-float(s[i, j]), m, i, j))
    everything.sort()
    masks = [np.zeros(s.shape, bool) for s in sal]
    for _, m, i, j in everything[:k]:
        masks[m][i, j] = True
    return masks


def row_densities(mask):
    """Per-row density kept_r / C as float64."""
    mask = np.asarray(mask, dtype=bool)
    cols = mask.shape[1]
    return np.array([int(np.count_nonzero(mask[r])) / cols for r in range(mask.shape[0])], np.float64)


# ----------------------------------------------------------------------------- bmwm

def bmwm_mask(w, block_sizes, input_norms=None):
    """Block-max masking: row r is cut into blocks of block_sizes[r] (last may be shorter),
    each block keeps its most salient weight (ties: lowest column)."""
    s = saliency(w, input_norms)
    rows, cols = s.shape
    sizes = np.broadcast_to(np.asarray(block_sizes), (rows,))
    mask = np.zeros((rows, cols), bool)
    for i in range(rows):
        b = _positive_int(sizes[i], "block size")
        for start in range(0, cols, b):
            stop = min(cols, start + b)
            best = start
            for j in range(start + 1, stop):
                if s[i, j] > s[i, best]:          # strictly greater: ties stay at the lower column
                    best = j
            mask[i, best] = True
    return mask


# ----------------------------------------------------------------------------- darb

def default_candidates(cols):
    """Powers of two 1, 2, 4, ... up to the largest power of two <= cols, as int64."""
    cols = _positive_int(cols, "cols")
    out = []
    c = 1
    while c <= cols:
        out.append(c)
        c *= 2
    return np.array(out, np.int64)


def _clean_candidates(candidates, cols):
    """Candidate set as sorted distinct positive int64 (the default when None)."""
    if candidates is None:
        return default_candidates(cols)
    arr = np.asarray(candidates)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"candidates must be a non-empty 1-D list, got {candidates!r}")
    values = [_positive_int(v, "candidate block size") for v in arr.tolist()]
    return np.array(sorted(set(values)), np.int64)


def _kept_count(cols_list, block_sizes_list):
    """K = sum over all rows of ceil(C / b_r)."""
    kept = 0
    for cols, sizes in zip(cols_list, block_sizes_list):
        for b in sizes:
            kept += _ceil_div(cols, b)
    return kept


def darb_ratio_range(densities_list, cols_list, candidates_list):
    """(min_ratio, max_ratio): size / K with every row at its smallest, resp. largest, candidate."""
    size = 0
    kept_smallest = 0
    kept_largest = 0
    for d, cols, cand in zip(densities_list, cols_list, candidates_list):
        cand = _clean_candidates(cand, cols)
        rows = len(d)
        size += rows * int(cols)
        kept_smallest += rows * _ceil_div(cols, cand[0])
        kept_largest += rows * _ceil_div(cols, cand[-1])
    return size / kept_smallest, size / kept_largest


def darb_block_sizes(densities_list, cols_list, candidates_list, target):
    """Steps 3-5 of darb by brute force: enumerate every reachable assignment (initial, then
    after each group of equal events in increasing order), pick min |ln(K/target)|, ties earlier."""
    target = float(target)
    cands = [_clean_candidates(c, cols) for c, cols in zip(candidates_list, cols_list)]
    dens = [np.asarray(d, dtype=np.float64) for d in densities_list]

    # Events per matrix: events[m][r, j] = m_j + ln d_r, with m_j = (ln c_j + ln c_{j+1}) / 2.
    events = []
    for d, cand in zip(dens, cands):
        logc = np.log(cand.astype(np.float64))
        mids = [(logc[j] + logc[j + 1]) / 2 for j in range(cand.size - 1)]
        with np.errstate(divide="ignore"):
            logd = np.log(d)                       # -inf for d == 0; those rows have no events
        ev = np.full((d.size, len(mids)), np.inf)
        for r in range(d.size):
            if d[r] > 0:
                for j in range(len(mids)):
                    ev[r, j] = mids[j] + logd[r]
        events.append(ev)

    def assignment_after(t):
        """Candidate index of every row once all events <= t are applied (t=-inf: initial)."""
        out = []
        for d, cand, ev in zip(dens, cands, events):
            idx = np.empty(d.size, np.int64)
            for r in range(d.size):
                if d[r] > 0:
                    idx[r] = int(np.count_nonzero(ev[r] <= t))
                else:
                    idx[r] = cand.size - 1
            out.append(idx)
        return out

    distinct = sorted({float(t) for ev in events for t in ev.ravel() if np.isfinite(t)})
    states = [assignment_after(-np.inf)] + [assignment_after(t) for t in distinct]
    sizes_of = [[cand[idx] for cand, idx in zip(cands, state)] for state in states]
    kept = np.array([_kept_count(cols_list, s) for s in sizes_of], np.float64)
    err = np.abs(np.log(kept / target))

    best = 0
    for i in range(1, len(states)):
        if err[i] < err[best]:                     # strict: on a tie the earlier state stays
            best = i
    return [np.asarray(s, dtype=np.int64) for s in sizes_of[best]]


def darb_masks_global(ws, ratio, candidates_list=None, input_norms=None):
    """darb over several matrices with one scale; returns [(mask, block_sizes)] per matrix."""
    ratio = _ratio(ratio)
    norms = _norms_list(input_norms, len(ws))
    if candidates_list is None:
        candidates_list = [None] * len(ws)
    ws = [_weights(w) for w in ws]
    irregular = irregular_mask_global(ws, ratio, norms)
    densities = [row_densities(m) for m in irregular]
    cols_list = [w.shape[1] for w in ws]
    cands = [_clean_candidates(c, cols) for c, cols in zip(candidates_list, cols_list)]
    lo, hi = darb_ratio_range(densities, cols_list, cands)
    if ratio > hi or ratio < lo:
        raise ValueError(f"ratio {ratio:g} cannot be reached; reachable ratios are {lo:.6g} to {hi:.6g}")
    size = sum(w.size for w in ws)
    block_sizes = darb_block_sizes(densities, cols_list, cands, size / ratio)
    return [(bmwm_mask(w, b, n), b) for w, b, n in zip(ws, block_sizes, norms)]


def darb_mask(w, ratio, candidates=None, input_norms=None):
    """darb on one matrix: (mask, block_sizes); ValueError if the ratio is out of reach."""
    return darb_masks_global([w], ratio, [candidates], [input_norms])[0]


# ----------------------------------------------------------------------------- block (tiles)

def _tile_scores(s, tr, tc):
    """Tile scores sum(s^2): each float32 saliency widened to float64, squared and summed
    in float64, row-major inside the tile. Returns a list of lists (tile rows x tile cols)."""
    rows, cols = s.shape
    scores = []
    for r0 in range(0, rows, tr):
        line = []
        for c0 in range(0, cols, tc):
            acc = 0.0
            for i in range(r0, min(rows, r0 + tr)):
                for j in range(c0, min(cols, c0 + tc)):
                    x = float(s[i, j])
                    acc += x * x
            line.append(acc)
        scores.append(line)
    return scores


def block_masks_global(ws, ratio, tile=(4, 4), input_norms=None):
    """Tile pruning over several matrices: keep max(1, round(T / ratio)) best tiles of all
    (ties: matrix order, then row-major tile order); returns one mask per matrix."""
    ratio = _ratio(ratio)
    tr, tc = (4, 4) if tile is None else tile
    tr, tc = _positive_int(tr, "tile rows"), _positive_int(tc, "tile cols")
    norms = _norms_list(input_norms, len(ws))
    sal = [saliency(w, n) for w, n in zip(ws, norms)]
    tiles = []
    for m, s in enumerate(sal):
        for ti, line in enumerate(_tile_scores(s, tr, tc)):
            for tj, score in enumerate(line):
                tiles.append((-score, m, ti, tj))
    size = sum(s.size for s in sal)
    if ratio > size:
        raise ValueError(f"ratio {ratio:g} keeps no weight; the largest ratio is {size}")
    k = max(1, round(len(tiles) / ratio))
    tiles.sort()
    masks = [np.zeros(s.shape, bool) for s in sal]
    for _, m, ti, tj in tiles[:k]:
        masks[m][ti * tr:(ti + 1) * tr, tj * tc:(tj + 1) * tc] = True
    return masks


def block_mask(w, ratio, tile=(4, 4), input_norms=None):
    """Tile pruning of one matrix: keep the max(1, round(T / ratio)) highest-scoring tiles."""
    return block_masks_global([w], ratio, tile, [input_norms])[0]


# ----------------------------------------------------------------------------- bank balanced, N:M

def bank_balanced_mask(w, ratio, banks=None, input_norms=None):
    """Rows cut into banks of L = ceil(C / banks) columns (last may be shorter); each bank
    keeps its min(q, len) most salient, q = max(1, round(L / ratio))."""
    ratio = _ratio(ratio)
    s = saliency(w, input_norms)
    rows, cols = s.shape
    if ratio > s.size:
        raise ValueError(f"ratio {ratio:g} keeps no weight; the largest ratio is {s.size}")
    if banks is None:
        banks = max(1, round(cols / (4 * ratio)))
    banks = _positive_int(banks, "banks")
    if banks > cols:
        raise ValueError(f"{banks} banks do not fit in {cols} columns")
    length = _ceil_div(cols, banks)
    q = max(1, round(length / ratio))
    mask = np.zeros((rows, cols), bool)
    for i in range(rows):
        for start in range(0, cols, length):
            stop = min(cols, start + length)
            for j in _top_columns(s[i], start, stop, min(q, stop - start)):
                mask[i, j] = True
    return mask


def nm_mask(w, n, m, input_norms=None):
    """N:M: each group of m consecutive columns (last may be shorter) keeps its min(n, len)
    most salient weights, ties to the lowest column."""
    n = _positive_int(n, "n")
    m = _positive_int(m, "m")
    if m < 2 or n >= m:
        raise ValueError(f"N:M needs 1 <= n < m, got n={n}, m={m}")
    s = saliency(w, input_norms)
    rows, cols = s.shape
    mask = np.zeros((rows, cols), bool)
    for i in range(rows):
        for start in range(0, cols, m):
            stop = min(cols, start + m)
            for j in _top_columns(s[i], start, stop, min(n, stop - start)):
                mask[i, j] = True
    return mask
