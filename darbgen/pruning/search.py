"""DARB block-size assignment: one scale for all rows, found exactly.

Row ``r`` with irregular-pass density ``d_r`` takes the candidate block size
nearest in log scale to ``s / d_r``. As ``ln s`` grows, the row steps from
candidate ``c_j`` to ``c_{j+1}`` at the event ``t = m_j + ln d_r`` (``m_j`` the
log-midpoint of the two candidates). Sorting all events gives every assignment
a single scale can reach, in order of decreasing kept count; the one whose kept
count is nearest the target (in log scale) wins. This is the bisection of the
paper done exactly: no tolerance, no iteration count, the same answer on every
machine. See docs/pruning.md, section ``darb``.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import DarbgenError


def default_candidates(cols):
    """Powers of two from 1 up to the largest power of two <= ``cols``."""
    top = int(cols).bit_length() - 1
    return np.left_shift(np.int64(1), np.arange(top + 1, dtype=np.int64))


def clean_candidates(candidates, cols, name):
    """Validated candidate set: sorted distinct positive integers."""
    if candidates is None:
        return default_candidates(cols)
    arr = np.asarray(candidates)
    if arr.ndim != 1 or arr.size == 0:
        raise DarbgenError(f"{name}: candidates must be a non-empty list of block sizes, got {candidates!r}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DarbgenError(f"{name}: candidates must be whole numbers, got {candidates!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 1):
        raise DarbgenError(f"{name}: candidate block sizes must be >= 1, got {candidates!r}")
    return np.unique(arr)


@dataclass
class Assignment:
    """Block size per row for each matrix, and the kept count it gives."""

    block_sizes: list
    kept: int
    min_ratio: float
    max_ratio: float


def assign_block_sizes(densities, cols, candidates, target, ratio, names):
    """Choose each row's block size so the total kept count is nearest ``target``.

    ``densities``, ``cols``, ``candidates`` and ``names`` are per matrix (a list
    of one for a single matrix, several for whole-model pruning). Raises
    :class:`DarbgenError` when ``ratio`` is outside the reachable range, worded
    for the Python API (``ratio=``, ``candidates=``; the command line rewrites
    them to its flags).
    """
    starts, step_rows, step_deltas, step_times = [], [], [], []
    row_offset = 0
    size = 0
    kept_min = 0
    for d, c, cand in zip(densities, cols, candidates):
        d = np.asarray(d, dtype=np.float64)
        rows = d.shape[0]
        size += rows * c
        per_block = -(-c // cand)                  # kept per row at each candidate
        kept_min += rows * int(per_block[-1])
        start = np.where(d > 0, 0, cand.size - 1)
        starts.append(start)
        if cand.size > 1:
            logc = np.log(cand.astype(np.float64))
            mids = (logc[:-1] + logc[1:]) / 2
            live = np.flatnonzero(d > 0)
            with np.errstate(divide="ignore"):
                logd = np.log(d[live])
            # Rows in density order and events step by step: the events come out as
            # len(cand) - 1 already sorted runs, which the stable sort merges quickly.
            by_density = np.argsort(logd, kind="stable")
            live, logd = live[by_density], logd[by_density]
            times = mids[:, None] + logd[None, :]          # (steps, live rows)
            step_times.append(times.ravel())
            step_rows.append(np.tile(live + row_offset, cand.size - 1))
            step_deltas.append(np.repeat(per_block[1:] - per_block[:-1], live.size))
        row_offset += rows
    start_all = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    kept_start = 0
    for d, c, cand, start in zip(densities, cols, candidates, starts):
        kept_start += int(np.sum(-(-c // cand[start])))
    kept_max = sum(len(d) * int(-(-c // cand[0])) for d, c, cand in zip(densities, cols, candidates))
    min_ratio = size / kept_max
    max_ratio = size / kept_min
    what = names[0] if len(names) == 1 else "the model"
    if ratio > max_ratio:
        raise DarbgenError(
            f"{what}: ratio {ratio:g} cannot be reached with block sizes up to "
            f"{max(int(c[-1]) for c in candidates)}; reachable ratios are {min_ratio:.4g} to {max_ratio:.4g} "
            f"(one weight per block of the largest size in every row). Lower ratio= or allow larger candidates=.")
    if ratio < min_ratio:
        raise DarbgenError(
            f"{what}: ratio {ratio:g} cannot be reached with block sizes from "
            f"{min(int(c[0]) for c in candidates)}; reachable ratios are {min_ratio:.4g} to {max_ratio:.4g}. "
            f"Raise ratio= or allow smaller candidates=.")

    if step_times:
        times = np.concatenate(step_times)
        rows_of = np.concatenate(step_rows)
        deltas = np.concatenate(step_deltas)
        order = np.argsort(times, kind="stable")
        times, rows_of, deltas = times[order], rows_of[order], deltas[order]
        kept_after = kept_start + np.cumsum(deltas)
        # Events with equal times happen together: only group ends are states.
        ends = np.flatnonzero(np.append(times[1:] != times[:-1], True))
        states = np.concatenate(([kept_start], kept_after[ends]))
    else:
        ends = np.zeros(0, np.int64)
        states = np.array([kept_start])
    err = np.abs(np.log(states / target))
    best = int(np.argmin(err))  # argmin takes the first: the earlier state wins ties
    index = start_all.copy()
    if best > 0:
        applied = rows_of[: ends[best - 1] + 1]
        index += np.bincount(applied, minlength=index.size)
    block_sizes = []
    offset = 0
    for d, cand in zip(densities, candidates):
        block_sizes.append(cand[index[offset: offset + len(d)]].astype(np.int64))
        offset += len(d)
    kept = int(states[best])
    return Assignment(block_sizes, kept, min_ratio, max_ratio)
