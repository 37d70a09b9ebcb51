"""Compressed formats: exact round trips and honest byte accounting."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import darbgen
from conftest import spread_rows
from darbgen.errors import DarbgenError
from darbgen.formats import decode, encode, offset_bits, uint_for


def roundtrip(w, fmt, **kw):
    enc = encode(w, fmt, **kw)
    mask = kw.get("mask")
    want = w if mask is None and fmt == "dense" else np.where(mask if mask is not None else w != 0, w, 0)
    got = decode(enc)
    assert got.dtype == w.dtype
    np.testing.assert_array_equal(got, want)
    return enc


@given(rows=st.integers(1, 300), cols=st.integers(1, 300), seed=st.integers(0, 2**31),
       method=st.sampled_from(["darb", "bmwm", "irregular", "block", "nm", "bank_balanced"]),
       ratio=st.floats(1.1, 40), dtype=st.sampled_from([np.float32, np.float64, np.int8, np.int16]))
def test_every_format_round_trips(rows, cols, seed, method, ratio, dtype):
    rng = np.random.default_rng(seed)
    w = (spread_rows(rng, rows, cols) * 40).astype(dtype)
    opts = {"block": max(1, min(cols, round(ratio)))} if method == "bmwm" else {}
    if method == "nm":
        opts = {"m": max(1, round(ratio))}
    try:
        r = darbgen.prune(w, None if method in ("bmwm", "nm") else ratio, method, **opts)
    except DarbgenError:
        return
    formats = ["dense", "csr", "bsr"] + (["darb"] if r.block_sizes is not None else [])
    for fmt in formats:
        enc = roundtrip(w, fmt, mask=r.mask, block_sizes=r.block_sizes, tile=(4, 4))
        assert enc.kept == r.kept
        b = enc.nbytes()
        assert b["total"] == b["values"] + b["index"] + b["metadata"]
        assert b["total"] == sum(a.nbytes for a in enc.arrays.values())


def test_darb_packed_layout_by_hand():
    # Two rows of 6 columns: row 0 block 2 (offset bits 1), row 1 block 4 (2 bits).
    w = np.arange(1, 13, dtype=np.float32).reshape(2, 6)
    mask = np.zeros((2, 6), bool)
    mask[0, [1, 2, 5]] = True          # blocks [0,2) [2,4) [4,6): offsets 1, 0, 1
    mask[1, [3, 5]] = True             # blocks [0,4) [4,6): offsets 3, 1
    enc = encode(w, "darb", mask=mask, block_sizes=[2, 4])
    a = enc.arrays
    np.testing.assert_array_equal(a["values"], [2, 3, 6, 10, 12])
    np.testing.assert_array_equal(a["row_order"], [0, 1])
    np.testing.assert_array_equal(a["class_block"], [2, 4])
    np.testing.assert_array_equal(a["class_rows"], [1, 1])
    # class 2: bits 1,0,1 LSB first -> 0b101 = 5; class 4: 3 (0b11) then 1 (0b01) -> 0b0111 = 7
    np.testing.assert_array_equal(a["offsets"], [5, 7])
    np.testing.assert_array_equal(a["class_start"], [0, 1])
    assert enc.params["classes"] == [(2, 1, 1), (4, 1, 2)]
    assert a["offsets"].dtype == np.uint8 and a["row_order"].dtype == np.uint8


def test_darb_rows_are_grouped_by_class(rng):
    w = spread_rows(rng, 50, 128)
    r = darbgen.prune(w, 8)
    enc = encode(w, "darb", mask=r.mask, block_sizes=r.block_sizes)
    order = enc.arrays["row_order"].astype(int)
    np.testing.assert_array_equal(np.sort(order), np.arange(50))
    np.testing.assert_array_equal(r.block_sizes[order], np.sort(r.block_sizes, kind="stable"))
    expect_index_bits = sum(offset_bits(b) * -(-128 // b) for b in r.block_sizes)
    assert enc.arrays["offsets"].size * 8 >= expect_index_bits
    assert enc.arrays["offsets"].size * 8 < expect_index_bits + 8 * len(enc.params["classes"])


def test_darb_costs_fewer_bits_than_csr(rng):
    w = spread_rows(rng, 512, 512)
    r = darbgen.prune(w, 16)
    darb = encode(w, "darb", mask=r.mask, block_sizes=r.block_sizes)
    csr = encode(w, "csr", mask=r.mask)
    assert darb.index_bits_per_kept() < 0.7 * csr.index_bits_per_kept()
    assert darb.bits_per_kept("int8") < csr.bits_per_kept("int8")
    assert csr.arrays["col_idx"].dtype == np.uint16


def test_csr_index_width_follows_columns(rng):
    assert encode(rng.standard_normal((3, 256)), "csr").arrays["col_idx"].dtype == np.uint8
    assert encode(rng.standard_normal((3, 257)), "csr").arrays["col_idx"].dtype == np.uint16


def test_value_pricing():
    w = np.ones((4, 8), np.float32)
    enc = encode(w, "dense")
    assert enc.nbytes()["values"] == 128
    assert enc.nbytes("int16")["values"] == 64
    assert enc.nbytes("int8")["values"] == 32
    assert enc.bits_per_kept("int8") == 8
    with pytest.raises(DarbgenError, match="unknown value type"):
        enc.nbytes("int4")


def test_bsr_counts_zeros_inside_kept_tiles():
    w = np.ones((5, 5), np.float32)
    mask = np.zeros((5, 5), bool)
    mask[4, 4] = True                        # one weight in the corner tile (padded to 4x4)
    enc = roundtrip(w, "bsr", mask=mask, tile=(4, 4))
    assert enc.arrays["values"].shape == (1, 4, 4)
    assert enc.kept == 1


def test_darb_format_refuses_non_block_masks(rng):
    w = rng.standard_normal((4, 16)).astype(np.float32)
    irregular = darbgen.prune(w, 4, "irregular").mask
    with pytest.raises(DarbgenError, match="exactly one kept weight per block"):
        encode(w, "darb", mask=irregular, block_sizes=np.full(4, 4))
    with pytest.raises(DarbgenError, match="needs block_sizes"):
        encode(w, "darb", mask=irregular)
    with pytest.raises(DarbgenError, match="unknown format"):
        encode(w, "coo")


def test_uint_for():
    assert uint_for(255) == np.uint8 and uint_for(256) == np.uint16 and uint_for(70000) == np.uint32
