"""Compressed storage formats for pruned matrices, with exact byte accounting.

Formats (``FORMATS``):

* ``darb``  DARB packed: rows grouped in classes of equal block size (a
  row-order table maps class order back to rows), the kept values row after
  row in that order, and each kept weight's in-block offset packed at
  ``ceil(log2 b)`` bits (0 bits for ``b = 1``), LSB first, each class starting
  on a byte boundary. Needs the mask to hold exactly one weight per block.
* ``csr``   compressed sparse rows: column indices uint8 when the matrix has at
  most 256 columns, uint16 up to 65536, row pointers uint16 or uint32.
* ``bsr``   block sparse rows with ``tile=(r, c)``: every tile holding a kept
  weight is stored whole (zeros included), with one tile-column index each.
* ``dense`` every value.

Every array an encoding holds is tagged ``values``, ``index`` or ``metadata``;
:meth:`Encoded.nbytes` sums them, and can price the values at another width
(float32, int16, int8) without re-encoding. :func:`decode` gives back the
masked matrix exactly. The layout is described byte by byte in docs/format.md.
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import DarbgenError

FORMATS = ("darb", "csr", "bsr", "dense")
VALUE_BYTES = {"float32": 4, "int16": 2, "int8": 1}


def uint_for(largest):
    """The narrowest unsigned type (uint8/16/32) that holds ``largest``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def offset_bits(block):
    """Bits needed for an in-block offset 0..block-1 (0 for block 1)."""
    return int(block - 1).bit_length()


@dataclass
class Encoded:
    """One matrix in one storage format.

    Attributes:
        fmt: the format name.
        shape: (rows, cols) of the matrix.
        kept: kept weights (the mask's count; rows*cols for an unmasked dense).
        arrays: name -> array, exactly what a device would store.
        roles: name -> "values", "index" or "metadata".
        params: format parameters (tile for bsr, classes for darb).
    """

    fmt: str
    shape: tuple
    kept: int
    arrays: dict
    roles: dict
    params: dict = field(default_factory=dict)

    def nbytes(self, value_dtype=None):
        """Bytes by role: dict with ``values``, ``index``, ``metadata``, ``total``.

        ``value_dtype`` ("float32", "int16" or "int8") prices the values at that
        width; by default they are priced as stored.
        """
        out = {"values": 0, "index": 0, "metadata": 0}
        for name, arr in self.arrays.items():
            role = self.roles[name]
            if role == "values" and value_dtype is not None:
                if value_dtype not in VALUE_BYTES:
                    raise DarbgenError(f"unknown value type {value_dtype!r}; choose one of {', '.join(VALUE_BYTES)}")
                out[role] += arr.size * VALUE_BYTES[value_dtype]
            else:
                out[role] += arr.nbytes
        out["total"] = out["values"] + out["index"] + out["metadata"]
        return out

    def bits_per_kept(self, value_dtype=None):
        """Total storage bits divided by kept weights (value and index together)."""
        return 8.0 * self.nbytes(value_dtype)["total"] / max(self.kept, 1)

    def index_bits_per_kept(self):
        """Index and metadata bits per kept weight (the cost of the sparsity pattern)."""
        b = self.nbytes()
        return 8.0 * (b["index"] + b["metadata"]) / max(self.kept, 1)


def _matrix(weights):
    w = np.asarray(weights)
    if w.ndim != 2 or w.size == 0:
        raise DarbgenError(f"encode needs a non-empty 2-D matrix, got shape {w.shape}")
    return w


def _mask_for(w, mask):
    if mask is None:
        return w != 0
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != w.shape:
        raise DarbgenError(f"mask shape {mask.shape} does not match the weights {w.shape}")
    return mask


def encode(weights, fmt="darb", *, mask=None, block_sizes=None, tile=(4, 4)):
    """Encode a pruned matrix.

    Args:
        weights: 2-D array (the values at kept positions are stored as given,
            in the array's dtype).
        fmt: "darb", "csr", "bsr" or "dense".
        mask: bool array of kept positions (default: the non-zeros).
        block_sizes: for "darb", one block size per row (PruneResult.block_sizes).
        tile: for "bsr", the (rows, cols) tile shape.
    """
    w = _matrix(weights)
    if fmt == "dense":
        m = np.ones(w.shape, bool) if mask is None else _mask_for(w, mask)
        values = np.where(m, w, np.zeros((), w.dtype))
        return Encoded("dense", w.shape, int(np.count_nonzero(m)), {"values": values}, {"values": "values"})
    m = _mask_for(w, mask)
    if fmt == "csr":
        return _encode_csr(w, m)
    if fmt == "bsr":
        return _encode_bsr(w, m, tile)
    if fmt == "darb":
        return _encode_darb(w, m, block_sizes)
    raise DarbgenError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def decode(enc):
    """The masked matrix an :class:`Encoded` holds (zeros where pruned)."""
    return {"dense": _decode_dense, "csr": _decode_csr, "bsr": _decode_bsr, "darb": _decode_darb}[enc.fmt](enc)


# ----------------------------------------------------------------------------- dense

def _decode_dense(enc):
    return enc.arrays["values"].copy()


# ----------------------------------------------------------------------------- CSR

def _encode_csr(w, m):
    rows, cols = w.shape
    r, c = np.nonzero(m)
    counts = np.bincount(r, minlength=rows)
    ptr = np.concatenate(([0], np.cumsum(counts)))
    arrays = {
        "values": w[r, c],
        "col_idx": c.astype(uint_for(cols - 1)),
        "row_ptr": ptr.astype(uint_for(ptr[-1])),
    }
    roles = {"values": "values", "col_idx": "index", "row_ptr": "metadata"}
    return Encoded("csr", w.shape, int(r.size), arrays, roles)


def _decode_csr(enc):
    rows, _ = enc.shape
    vals = enc.arrays["values"]
    out = np.zeros(enc.shape, vals.dtype)
    ptr = enc.arrays["row_ptr"].astype(np.int64)
    r = np.repeat(np.arange(rows), np.diff(ptr))
    out[r, enc.arrays["col_idx"].astype(np.int64)] = vals
    return out


# ----------------------------------------------------------------------------- BSR

def _encode_bsr(w, m, tile):
    try:
        tr, tc = (int(t) for t in tile)
    except (TypeError, ValueError):
        raise DarbgenError(f"tile must be a pair (rows, cols), got {tile!r}") from None
    if tr < 1 or tc < 1:
        raise DarbgenError(f"tile sides must be >= 1, got {tile!r}")
    rows, cols = w.shape
    trs, tcs = -(-rows // tr), -(-cols // tc)
    padded_w = np.zeros((trs * tr, tcs * tc), w.dtype)
    padded_m = np.zeros((trs * tr, tcs * tc), bool)
    padded_w[:rows, :cols] = np.where(m, w, np.zeros((), w.dtype))
    padded_m[:rows, :cols] = m
    tiles_w = padded_w.reshape(trs, tr, tcs, tc).transpose(0, 2, 1, 3)
    kept_tiles = padded_m.reshape(trs, tr, tcs, tc).any(axis=(1, 3))
    ti, tj = np.nonzero(kept_tiles)
    ptr = np.concatenate(([0], np.cumsum(np.bincount(ti, minlength=trs))))
    arrays = {
        "values": np.ascontiguousarray(tiles_w[ti, tj]),
        "tile_col": tj.astype(uint_for(max(tcs - 1, 0))),
        "tile_row_ptr": ptr.astype(uint_for(ptr[-1])),
    }
    roles = {"values": "values", "tile_col": "index", "tile_row_ptr": "metadata"}
    return Encoded("bsr", w.shape, int(np.count_nonzero(m)), arrays, roles, {"tile": (tr, tc)})


def _decode_bsr(enc):
    tr, tc = enc.params["tile"]
    rows, cols = enc.shape
    trs, tcs = -(-rows // tr), -(-cols // tc)
    vals = enc.arrays["values"]
    full = np.zeros((trs, tcs, tr, tc), vals.dtype)
    ptr = enc.arrays["tile_row_ptr"].astype(np.int64)
    ti = np.repeat(np.arange(trs), np.diff(ptr))
    full[ti, enc.arrays["tile_col"].astype(np.int64)] = vals
    return full.transpose(0, 2, 1, 3).reshape(trs * tr, tcs * tc)[:rows, :cols].copy()


# ----------------------------------------------------------------------------- DARB packed

def _pack_bits(values, bits):
    """Pack non-negative ints at ``bits`` each, LSB first, into whole bytes."""
    if bits == 0 or values.size == 0:
        return np.zeros(0, np.uint8)
    planes = (values.astype(np.uint64)[:, None] >> np.arange(bits, dtype=np.uint64)) & 1
    return np.packbits(planes.astype(np.uint8).ravel(), bitorder="little")


def _unpack_bits(packed, bits, count):
    if bits == 0:
        return np.zeros(count, np.int64)
    planes = np.unpackbits(packed, bitorder="little", count=count * bits).reshape(count, bits)
    return (planes.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=1)


def _encode_darb(w, m, block_sizes):
    rows, cols = w.shape
    if block_sizes is None:
        raise DarbgenError("the darb format needs block_sizes (one per row), e.g. from PruneResult.block_sizes")
    bs = np.asarray(block_sizes)
    if bs.shape != (rows,) or not np.issubdtype(bs.dtype, np.integer) or np.any(bs < 1):
        raise DarbgenError(f"block_sizes must be {rows} positive integers, one per row; got shape {bs.shape}")
    bs = bs.astype(np.int64)
    order = np.argsort(bs, kind="stable")
    classes, class_rows = np.unique(bs, return_counts=True)
    values, streams, starts = [], [], []
    nbytes = 0
    for b, n in zip(classes, class_rows):
        idx = order[np.searchsorted(bs[order], b): np.searchsorted(bs[order], b) + n]
        nblocks = -(-cols // b)
        sub = m[idx]
        r, c = np.nonzero(sub)
        per_block = np.zeros((n, nblocks), np.int64)
        np.add.at(per_block, (r, c // b), 1)
        if np.any(per_block != 1):
            bad_row = int(idx[np.flatnonzero((per_block != 1).any(axis=1))[0]])
            raise DarbgenError(
                f"row {bad_row}: the darb format needs exactly one kept weight per block of {b}; "
                f"this mask is not a DARB/BMWM mask (use csr for other masks)")
        values.append(w[idx][r, c])
        packed = _pack_bits(c % b, offset_bits(b))
        starts.append(nbytes)
        streams.append(packed)
        nbytes += packed.size
    arrays = {
        "values": np.concatenate(values),
        "offsets": np.concatenate(streams) if streams else np.zeros(0, np.uint8),
        "row_order": order.astype(uint_for(rows - 1)),
        "class_block": classes.astype(uint_for(classes[-1])),
        "class_rows": class_rows.astype(uint_for(class_rows.max())),
        "class_start": np.asarray(starts, dtype=uint_for(max(nbytes, 1))),
    }
    roles = {"values": "values", "offsets": "index", "row_order": "metadata",
             "class_block": "metadata", "class_rows": "metadata", "class_start": "metadata"}
    params = {"classes": [(int(b), int(n), offset_bits(b)) for b, n in zip(classes, class_rows)]}
    return Encoded("darb", w.shape, int(arrays["values"].size), arrays, roles, params)


def _decode_darb(enc):
    rows, cols = enc.shape
    a = enc.arrays
    vals = a["values"]
    out = np.zeros(enc.shape, vals.dtype)
    order = a["row_order"].astype(np.int64)
    row_pos = 0
    val_pos = 0
    for b, n, start in zip(a["class_block"].astype(np.int64), a["class_rows"].astype(np.int64),
                           a["class_start"].astype(np.int64)):
        nblocks = -(-cols // b)
        count = n * nblocks
        bits = offset_bits(b)
        nbytes = -(-count * bits // 8)
        offs = _unpack_bits(a["offsets"][start: start + nbytes], bits, count).reshape(n, nblocks)
        col = offs + np.arange(nblocks) * b
        out[order[row_pos: row_pos + n, None], col] = vals[val_pos: val_pos + count].reshape(n, nblocks)
        row_pos += n
        val_pos += count
    return out
