"""The figures a user reads to decide whether DARB pays off on a matrix.

Per matrix (see the method notes, "what the paper observed"):

* row-density spread after an irregular pass at the same ratio (min, median,
  max, max/min over non-empty rows, and the count of rows left empty): DARB
  pays off when densities differ a lot between rows;
* the block-size histogram (DARB, BMWM);
* requested and achieved ratio, kept weights, and the share of the total
  saliency the mask keeps (how much of the weight magnitude survives);
* how evenly the irregular pass spreads kept weights along a row (coefficient
  of variation of kept counts over 8 equal segments, averaged over rows; 0 is
  perfectly even), and how much of the irregular choice the mask also keeps;
* bytes and bits per kept weight in every applicable format, for float32,
  int16 and int8 values.
"""
import numpy as np

from . import formats
from .pruning.api import _irregular_masks, as_norms, as_weights

VALUE_DTYPES = ("float32", "int16", "int8")


def _spread(densities):
    d = np.asarray(densities, dtype=np.float64)
    live = d[d > 0]
    if live.size == 0:
        return {"min": 0.0, "median": 0.0, "max": 0.0, "max_over_min": None, "empty_rows": int(d.size)}
    return {
        "min": float(live.min()),
        "median": float(np.median(live)),
        "max": float(live.max()),
        "max_over_min": float(live.max() / live.min()),
        "empty_rows": int(d.size - live.size),
    }


def _segment_cv(mask, segments=8):
    """Mean over rows of the coefficient of variation of kept counts per segment."""
    rows, cols = mask.shape
    segments = min(segments, cols)
    edges = np.linspace(0, cols, segments + 1).astype(np.int64)
    counts = np.add.reduceat(mask.astype(np.int64), edges[:-1], axis=1) / np.diff(edges)
    mean = counts.mean(axis=1)
    live = mean > 0
    if not np.any(live):
        return 0.0
    return float(np.mean(counts[live].std(axis=1) / mean[live]))


def matrix_stats(weights, result, input_norms=None, value_dtypes=VALUE_DTYPES):
    """Statistics of one pruned matrix as a plain dict (JSON-ready).

    Args:
        weights: the dense matrix that was pruned.
        result: its :class:`darbgen.PruneResult`.
        input_norms: the norms used for saliency, if any.
    """
    name = result.name
    w = as_weights(weights, name)
    norms = as_norms(input_norms, w.shape[1], name)
    mask = result.mask
    rows, cols = w.shape
    ratio_for_irregular = result.requested_ratio or result.ratio
    irregular = _irregular_masks([w], [norms], ratio_for_irregular, name)[0] if ratio_for_irregular > 1 else mask
    densities = result.densities if result.densities is not None else irregular.sum(axis=1) / cols
    saliency = np.abs(w).astype(np.float64)
    if norms is not None:
        saliency = (np.abs(w) * norms).astype(np.float64)   # float32 product, as the kernels rank it
    total_saliency = float(saliency.sum())
    kept = result.kept
    out = {
        "name": name,
        "shape": [rows, cols],
        "method": result.method,
        "options": {k: v for k, v in result.options.items() if v is not None},
        "requested_ratio": result.requested_ratio,
        "ratio": result.ratio,
        "kept": kept,
        "saliency_kept": float(saliency[mask].sum() / total_saliency) if total_saliency > 0 else 1.0,
        "irregular_density": _spread(densities),
        "irregular_segment_cv": _segment_cv(irregular),
        "irregular_overlap": float(np.count_nonzero(irregular & mask) / max(1, np.count_nonzero(irregular))),
    }
    if result.block_sizes is not None:
        sizes, counts = np.unique(result.block_sizes, return_counts=True)
        out["block_sizes"] = {str(int(b)): int(c) for b, c in zip(sizes, counts)}
    encodings = {"dense": formats.encode(w, "dense", mask=mask), "csr": formats.encode(w, "csr", mask=mask)}
    if result.block_sizes is not None:
        encodings["darb"] = formats.encode(w, "darb", mask=mask, block_sizes=result.block_sizes)
    tile = result.options.get("tile")
    if tile is not None:
        encodings["bsr"] = formats.encode(w, "bsr", mask=mask, tile=tile)
    out["formats"] = {
        fmt: {dt: dict(enc.nbytes(dt), bits_per_kept=enc.bits_per_kept(dt)) for dt in value_dtypes}
        for fmt, enc in encodings.items()
    }
    return out


__all__ = ["matrix_stats", "VALUE_DTYPES"]
