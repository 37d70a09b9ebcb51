"""darbgen bench mcu: every kernel of the benchmark runs, is checked bit for
bit and reports the fields docs/benchmarks.md relies on (small shapes here;
the full table is a benchmark, not a test)."""
import json

import pytest

from darbgen.bench import mcu
from darbgen.errors import DarbgenError


@pytest.mark.slow          # every kernel of the benchmark compiled and counted in QEMU (a benchmark's own test)
def test_every_kernel_on_a_small_layer(qemu, capsys):
    try:
        from darbgen.bench.cmsis import fetch_cmsis_dsp

        fetch_cmsis_dsp()
        kernels = mcu.KERNELS
    except DarbgenError as exc:              # no network: everything but the CMSIS row, loudly
        import warnings

        warnings.warn(f"CMSIS-DSP could not be fetched ({exc}); the bench test runs without it")
        kernels = tuple(k for k in mcu.KERNELS if k != "cmsis_dense_q7")
    result = mcu.run("cortex-m4", shapes=[(32, 48)], ratios=[4], kernels=kernels)
    rows = {r["kernel"]: r for r in result["rows"]}
    assert set(rows) == set(kernels)
    for r in rows.values():
        assert {"shape", "ratio", "kernel", "instructions", "code_bytes", "data_bytes"} <= set(r)
        assert r["shape"] == "32x48" and r["ratio"] == 4 and r["instructions"] > 0 and r["verified"]
    assert rows["darb_unrolled"]["instructions"] < rows["dense"]["instructions"]
    assert rows["darb_packed"]["data_bytes"] < rows["csr"]["data_bytes"] < rows["dense"]["data_bytes"]
    assert all(r["code_bytes"] > 0 for r in rows.values())
    code = mcu.main(["--shapes", "32x48", "--ratios", "4", "--kernels", "dense,darb_packed", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["rows"]


def test_bsr_arrays_round_trip(rng):
    import numpy as np

    mask = np.zeros((8, 12), bool)
    mask[0:4, 4:8] = True
    mask[4:8, 0:4] = mask[4:8, 8:12] = True
    w = rng.integers(-100, 100, (8, 12)).astype(np.int8)
    row_ptr, col_idx, values = mcu.bsr4_arrays(mask, w)
    assert row_ptr.tolist() == [0, 1, 3] and col_idx.tolist() == [1, 0, 2]
    assert values.reshape(3, 4, 4)[0].tolist() == w[0:4, 4:8].tolist()


def test_bad_options():
    with pytest.raises(SystemExit):
        mcu.main(["--kernels", "magic"])
