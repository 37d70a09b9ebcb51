"""Hostile option values: each must end in one `darbgen: error: ...` line and exit
status 2, never a traceback or a run that silently does nothing.

CASES is the table: (id, a function that writes what the case needs into
tmp_path and returns the CLI argv, a regexp the error line must match). The
CLI runs in-process (darbgen.cli.main); every case is refused before any
compiling or QEMU run, so the file takes seconds. The API-level tests at the
end check the same limits on darbgen.prune and that the values just inside
them still work.
"""
import json
import re
from typing import Callable, NamedTuple

import numpy as np
import pytest
from conftest import cli_error_line

import darbgen
from darbgen.bench import mcu
from darbgen.errors import DarbgenError
from darbgen.pruning.api import MAX_OPTION, METHODS
from darbgen.reporting import load_results

ROWS, COLS = 16, 32            # the plain matrix: 512 weights, so 512 is the largest ratio
SIZE = ROWS * COLS


class Case(NamedTuple):
    id: str
    make: Callable
    error: str


def plain(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32))
    return path


def prune(*flags):
    def make(tmp_path):
        return ["prune", plain(tmp_path), *flags, "-o", tmp_path / "o.npz"]
    return make


VALID_RESULTS = {"schema": "darbgen-experiment/1", "task": "t", "title": "T", "metric": "accuracy",
                 "higher_is_better": True, "dense_metric": 90.0, "tolerance": {"kind": "points", "value": 0.5},
                 "runs": [{"method": "darb", "variant": "one-shot", "requested_ratio": 2, "ratio": 2.0,
                           "metric": 89.8}]}


def report(text=None, **fields):
    """`darbgen report` of a results file: ``text`` as it is, or the valid results with ``fields`` replaced."""
    def make(tmp_path):
        path = tmp_path / "results.json"
        if text is None:
            path.write_text(json.dumps({**VALID_RESULTS, **fields}), encoding="utf-8")
        else:
            path.write_text(text, encoding="utf-8")
        return ["report", "--results", path, "--out", tmp_path / "out"]
    return make


def bench(*argv):
    return lambda tmp_path: ["bench", *argv]


KEEPS_NONE = rf"w: ratio {{}} keeps no weight; the largest ratio here is {SIZE} \(one weight of {SIZE} kept\)"
NOT_FINITE = r"w: ratio must be a finite number > 1 \(16 keeps 1 weight in 16\), got {}"
NM_NOT_LESS = r"w: N:M sparsity keeps n of every m weights and needs n < m, got n={}, m={}, which keeps every weight"

CASES = [
    # 1. one ratio check for every method: inf, nan, 1e30, just above the matrix size, far above it
    *[Case(f"prune_{method}_ratio_{label}", prune("--method", method, "--ratio", value), error)
      for method in METHODS
      for label, value, error in [
          ("inf", "inf", NOT_FINITE.format("inf")),
          ("nan", "nan", NOT_FINITE.format("nan")),
          ("1e30", "1e30", KEEPS_NONE.format(r"1e\+30")),
          ("size_plus_1", str(SIZE + 1), KEEPS_NONE.format(SIZE + 1)),
          ("twice_size", str(2 * SIZE), KEEPS_NONE.format(2 * SIZE)),
      ]],
    Case("prune_bmwm_block_huge", prune("--method", "bmwm", "--block", str(10 ** 30)),
         rf"w: block must be at most {MAX_OPTION}, got 1{'0' * 30}"),
    Case("prune_block_inf_global", prune("--method", "block", "--ratio", "inf", "--scope", "global"),
         NOT_FINITE.format("inf")),
    # 2. N:M needs 1 <= n < m (so m >= 2); the fix names n= / m= (the CLI's --n / --m)
    Case("prune_nm_4_4", prune("--method", "nm", "--n", "4", "--m", "4"),
         NM_NOT_LESS.format(4, 4) + r"; lower --n or raise --m$"),
    Case("prune_nm_5_4", prune("--method", "nm", "--n", "5", "--m", "4"), NM_NOT_LESS.format(5, 4)),
    Case("prune_nm_n0", prune("--method", "nm", "--n", "0", "--m", "4"), r"w: n must be a positive integer, got 0"),
    Case("prune_nm_n_negative", prune("--method", "nm", "--n", "-3", "--m", "4"),
         r"w: n must be a positive integer, got -3"),
    Case("prune_nm_m1", prune("--method", "nm", "--m", "1"),
         r"w: N:M sparsity needs groups of m >= 2 weights, got m=1; give --m of 2 or more"),
    Case("prune_nm_m0", prune("--method", "nm", "--m", "0"), r"w: m must be a positive integer, got 0"),
    Case("prune_nm_m_huge", prune("--method", "nm", "--m", str(10 ** 10)),
         rf"w: m must be at most {MAX_OPTION}, got 10000000000"),
    # 3. results JSON: too deep to parse, or valid JSON of the wrong structure
    Case("report_deep_arrays", report("[" * 100000 + "]" * 100000),
         r"results\.json: its JSON nests arrays or objects too deeply to read"),
    Case("report_deep_objects", report('{"a":' * 100000 + "1" + "}" * 100000),
         r"results\.json: its JSON nests arrays or objects too deeply to read"),
    Case("report_top_list", report("[1, 2]"), r"results\.json: expected a JSON object at the top, got list"),
    Case("report_top_number", report("5"), r"results\.json: expected a JSON object at the top, got int"),
    Case("report_runs_numbers", report(runs=[1, 2]), r"results\.json: runs\[0\] must be an object, got int"),
    Case("report_runs_object", report(runs={"method": "darb"}),
         r"results\.json: field 'runs' must be a non-empty list of runs"),
    Case("report_tolerance_number", report(tolerance=3),
         r"results\.json: field 'tolerance' must be an object like .*, got 3$"),
    Case("report_metric_list", report(metric=["accuracy"]),
         r"results\.json: field 'metric' is \['accuracy'\]; expected one of accuracy, bpc"),
    Case("report_metric_object", report(metric={"accuracy": 1}),
         r"results\.json: field 'metric' is \{'accuracy': 1\}; expected one of accuracy, bpc"),
    Case("report_dense_metric_huge_int", report(dense_metric=10 ** 400),
         r"results\.json: field 'dense_metric' must be a finite number, got 1000+\.\.\.$"),
    Case("report_task_long_list", report(task=["x" * 100000]),
         r"results\.json: field 'task' must be a non-empty string, got \['x+\.\.\.$"),
    Case("report_int_too_many_digits", report('{"dense_metric": ' + "9" * 5000 + "}"),
         r"results\.json: not readable as JSON \(Exceeds the limit"),
    # 4. bench mcu / bench prune: refused up front, with the darbgen: prefix
    Case("bench_mcu_shape_1x1", bench("mcu", "--shapes", "1x1", "--ratios", "2"),
         r"--shapes: 1x1: the bsr4x4 kernel takes whole 4 x 4 blocks, so rows and columns must be multiples of 4"),
    Case("bench_mcu_shape_6x8", bench("mcu", "--shapes", "6x8", "--ratios", "2"),
         r"--shapes: 6x8: the bsr4x4 kernel takes whole 4 x 4 blocks"),
    Case("bench_mcu_shape_0x0", bench("mcu", "--shapes", "0x0", "--ratios", "2"),
         r"--shapes: 0x0 is not rows x cols of 1 to 65535 each"),
    Case("bench_mcu_shape_3d", bench("mcu", "--shapes", "8x8x8", "--ratios", "2"),
         r"--shapes: 8x8x8 is not rows x cols of 1 to 65535 each"),
    Case("bench_mcu_shape_1d", bench("mcu", "--shapes", "8", "--ratios", "2"),
         r"--shapes: 8 is not rows x cols of 1 to 65535 each"),
    Case("bench_mcu_shape_huge", bench("mcu", "--shapes", "70000x4", "--ratios", "2"),
         r"--shapes: 70000x4 is not rows x cols of 1 to 65535 each"),
    Case("bench_mcu_seed_negative", bench("mcu", "--shapes", "8x8", "--ratios", "2", "--seed", "-1"),
         r"--seed must be a whole number >= 0, got -1$"),
    *[Case(f"bench_mcu_spread_{label}", bench("mcu", "--shapes", "8x8", "--ratios", "2", "--spread", value),
           rf"--spread must be a number from 0 to 10 .*, got {shown}$")
      for label, value, shown in [("1e6", "1e6", r"1000000\.0"), ("nan", "nan", "nan"), ("inf", "inf", "inf"),
                                  ("negative", "-1", r"-1\.0"), ("just_above", "10.5", r"10\.5")]],
    Case("bench_mcu_ratio_1", bench("mcu", "--shapes", "8x8", "--ratios", "1"),
         r"--ratios must be whole numbers >= 2 .*, got 1$"),
    Case("bench_mcu_ratio_0", bench("mcu", "--shapes", "8x8", "--ratios", "0"),
         r"--ratios must be whole numbers >= 2 .*, got 0$"),
    Case("bench_mcu_ratio_above_size", bench("mcu", "--shapes", "8x8", "--ratios", "100", "--kernels", "csr"),
         r"--ratios 100 cannot be reached on 8x8 by the csr kernel \(irregular pruning reaches at most 64 there\)"),
    Case("bench_mcu_ratio_above_tiles", bench("mcu", "--shapes", "8x8", "--ratios", "16"),
         r"--ratios 16 cannot be reached on 8x8 by the bsr4x4 kernel \(block pruning reaches at most 4 there\)"),
    Case("bench_mcu_ratio_above_darb", bench("mcu", "--shapes", "8x8", "--ratios", "16", "--kernels", "darb_packed"),
         r"--ratios 16 cannot be reached on 8x8 by the darb_packed kernel \(darb pruning reaches at most 8 there\)"),
    Case("bench_prune_ratio_1e9", bench("prune", "--rows", "8", "--cols", "8", "--ratio", "1e9", "--repeats", "1",
                                        "--memory-rows", "0"),
         r"--ratio 1e\+09 cannot be reached by DARB on a 8 x 8 matrix, which reaches at most 8"),
    Case("bench_prune_ratio_nan", bench("prune", "--rows", "8", "--cols", "8", "--ratio", "nan"),
         r"--ratio must be a finite number > 1 .*, got nan$"),
    Case("bench_prune_ratio_1", bench("prune", "--rows", "8", "--cols", "8", "--ratio", "1"),
         r"--ratio must be a finite number > 1 .*, got 1$"),
    Case("bench_prune_1x1", bench("prune", "--rows", "1", "--cols", "1", "--repeats", "1", "--memory-rows", "0"),
         r"--ratio 16 cannot be reached by DARB on a 1 x 1 matrix, which reaches at most 1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_option_is_one_clear_error(case, tmp_path, capsys):
    argv = case.make(tmp_path)
    line = cli_error_line(argv, capsys)
    assert re.search(case.error, line), line
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "out").exists()


def test_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------ API level, and the limits' insides

@pytest.mark.parametrize("method", METHODS)
def test_every_method_refuses_a_ratio_above_the_size_and_takes_the_size(method):
    w = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    for ratio in (17, 1e30, float("inf"), float("nan"), 1):
        with pytest.raises(DarbgenError, match="keeps no weight; the largest ratio here is 16|finite number > 1"):
            darbgen.prune(w, ratio, method)
    if method != "darb":                       # darb's largest ratio here is 4 (one weight per row of 4)
        r = darbgen.prune(w, 16, method)
        assert r.kept >= 1 and r.mask.shape == w.shape
    r = darbgen.prune(w, 4, method)
    assert 1 <= r.kept <= 16


def test_global_scope_counts_the_whole_model():
    rng = np.random.default_rng(2)
    mats = {"a": rng.standard_normal((2, 4)).astype(np.float32), "b": rng.standard_normal((2, 4)).astype(np.float32)}
    assert darbgen.prune_model(mats, 16, "irregular", scope="global").kept == 1
    with pytest.raises(DarbgenError, match=r"the model: ratio 17 keeps no weight; the largest ratio here is 16"):
        darbgen.prune_model(mats, 17, "irregular", scope="global")
    with pytest.raises(DarbgenError, match=r"a: ratio 16 keeps no weight; the largest ratio here is 8"):
        darbgen.prune_model(mats, 16, "irregular", scope="layer")


def test_nm_limits():
    w = np.random.default_rng(3).standard_normal((8, 32)).astype(np.float32)
    for n, m in ((4, 4), (5, 4), (1, 1), (2, 1)):
        with pytest.raises(DarbgenError, match="n < m|m >= 2"):
            darbgen.prune(w, method="nm", n=n, m=m)
    r = darbgen.prune(w, method="nm", n=3, m=4)            # the largest n for m=4
    assert r.kept == 8 * 24 and r.options == {"n": 3, "m": 4}
    r = darbgen.prune(w, method="nm", n=1, m=2)            # the smallest group
    assert r.kept == 8 * 16
    # a group longer than the row is the row: the same mask as m = cols, and no m-sized buffer
    np.testing.assert_array_equal(darbgen.prune(w, method="nm", n=2, m=MAX_OPTION).mask,
                                  darbgen.prune(w, method="nm", n=2, m=32).mask)
    with pytest.raises(DarbgenError, match=f"m must be at most {MAX_OPTION}"):
        darbgen.prune(w, method="nm", m=MAX_OPTION + 1)


def test_report_still_reads_valid_results(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(VALID_RESULTS), encoding="utf-8")
    assert load_results(path)["runs"][0]["ratio"] == 2.0


def test_bench_mcu_accepts_the_smallest_shapes_and_its_defaults():
    mcu.check_options(mcu.SHAPES, mcu.RATIOS, mcu.KERNELS, 0, 0.7)
    mcu.check_options([(4, 8)], [2], mcu.KERNELS, 0, 10.0)         # bsr4x4's smallest at 2x: two 4 x 4 blocks
    mcu.check_options([(1, 1)], [2], ("cmsis_dense_q7", "dense", "bmwm"), 2**40, 0.0)  # no pruning kernel needs more
    with pytest.raises(DarbgenError, match="multiples of 4"):
        mcu.check_options([(4, 6)], [2], ("bsr4x4",), 0, 0.7)
    with pytest.raises(DarbgenError, match="bsr4x4 kernel .block pruning reaches at most 1 there"):
        mcu.check_options([(4, 4)], [2], ("bsr4x4",), 0, 0.7)      # one block: no ratio above 1
