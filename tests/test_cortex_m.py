"""Cortex-M targets: every core builds, runs in QEMU and matches the
reference bit for bit; instruction counts are exact and repeatable; faults
and hangs end a run with a clear error."""
import numpy as np
import pytest

from conftest import slow_except
import darbgen
from darbgen.build import build, load
from darbgen.codegen import generate
from darbgen.errors import DarbgenError
from darbgen.graph import LSTM, Activation, Conv2D, Dense, Flatten, Model, Pool2D
from darbgen.resources import examples_dir
from darbgen.toolchain import cortex_m
from darbgen.verify import count_instructions, verify

CORES = list(cortex_m.CORES)


@pytest.fixture(scope="module")
def digits():
    src = load(examples_dir() / "digits_mlp.npz")
    pruned = src.model.with_pruning(dict(darbgen.prune_model(src.model.pruning_matrices(), 4).items()))
    return pruned, src.calib


@pytest.mark.parametrize("core", slow_except(CORES, {"cortex-m4"}))     # test_build_cli_target_json: M0+, M55
def test_demo_model_builds_and_verifies_on_every_core(qemu, core):
    """darbgen build --target <core> on the bundled digits MLP (the demo's
    settings): every layer and the whole model bit-exact in QEMU, the test
    set run on the core, instructions and stack in the report."""
    r = build(examples_dir() / "digits_mlp.npz", ratio=2, dtype="int8", target=core)
    assert r.ok and r.verification.target == core, r.verification.describe()
    assert [c.name for c in r.verification.layers] == ["fc1", "fc2", "fc3", "fc3.softmax", "(model)"]
    rep = r.report
    assert rep["verified"] and rep["host_verified"] and rep["target"] == core
    assert rep["accuracy"]["c_agrees_with_pruned"] >= 0.99
    assert rep["accuracy"]["c"] == pytest.approx(rep["accuracy"]["pruned"], abs=0.01)
    layers = sum(row["instructions"] for row in rep["layers"])
    assert abs(rep["instructions"] - layers) < 0.05 * layers
    assert 0 < rep["stack_bytes"] < 1024 and rep["ram_bytes"] == rep["static_ram_bytes"] + rep["stack_bytes"]
    assert rep["static_ram_bytes"] >= 256 + 128                       # the arena holds fc1's and fc2's outputs
    assert rep["flash_bytes"] == rep["code_bytes"] + rep["weight_bytes"]
    assert rep["weight_bytes"] > sum(row["bytes"]["values"] for row in rep["layers"])


def mixed_model(rng):
    conv = Conv2D("conv", 0.5 * rng.standard_normal((4, 1, 3, 3)), 0.1 * rng.standard_normal(4), padding="same")
    return Model("mixed", (1, 8, 8), [conv, Activation("r", "relu"), Pool2D("pool", "max", 2), Flatten("f"),
                                       Dense("fc", 0.3 * rng.standard_normal((5, 64))), Activation("s", "softmax")])


# by default each core once and each dtype once; every pair in the full run
@pytest.mark.parametrize("dtype,core", slow_except(
    [(dtype, core) for core in ("cortex-m0plus", "cortex-m7", "cortex-m55") for dtype in ("int8", "int16", "float32")],
    {("int8", "cortex-m0plus"), ("float32", "cortex-m7"), ("int16", "cortex-m55")}))
def test_every_dtype_and_kernel_kind_on_target(rng, qemu, core, dtype):
    """Convolution, pooling, dense, softmax and a recurrent model, in each
    dtype, bit-exact on a core without FPU, one with, and one with MVE."""
    x = rng.standard_normal((16, 64))
    for kernel in ("packed", "unrolled"):
        module = generate(mixed_model(rng), dtype=dtype, kernel=kernel, prefix="mixed", calib=x)
        result = verify(module, target=core, n_random=4)
        assert result.ok, result.describe()
    rnn = LSTM("lstm", 0.5 * rng.standard_normal((24, 3)), 0.5 * rng.standard_normal((24, 6)))
    module = generate(Model("seq", (10, 3), [rnn, Dense("head", rng.standard_normal((2, 6)))]), dtype=dtype,
                      kernel="csr", prefix="seq", calib=rng.standard_normal((8, 30)))
    result = verify(module, target=core, n_random=4)
    assert result.ok, result.describe()


@pytest.mark.slow   # the unrolled digits MLP compiles slowly; the demo test checks the counts add up by default
def test_instruction_counts_are_exact_and_repeatable(digits, qemu):
    pruned, calib = digits
    module = generate(pruned, dtype="int8", kernel="packed", prefix="digits", calib=calib)
    first = count_instructions(module, "cortex-m4")
    again = count_instructions(module, "cortex-m4")
    assert first.instructions == again.instructions and first.stack == again.stack
    layers = sum(v for k, v in first.instructions.items() if k != "(model)")
    # the model is its layers (run here on other inputs: a little data-dependent) plus a few instructions of glue
    assert abs(first.total - layers) < 0.05 * layers
    assert first.instructions["fc3.softmax"] < first.instructions["fc3"]
    dense = count_instructions(generate(pruned, dtype="int8", kernel="dense", prefix="digits", calib=calib),
                               "cortex-m4")
    unrolled = count_instructions(generate(pruned, dtype="int8", kernel="unrolled", prefix="digits", calib=calib),
                                  "cortex-m4")
    assert unrolled.total < dense.total               # pruned weights are skipped


def _image(tmp_path, body, core="cortex-m3"):
    (tmp_path / "main.c").write_text("#include <stdint.h>\nint main(void)\n{\n" + body + "\n}\n")
    return cortex_m.link_image(tmp_path, ["main.c"], cortex_m.core(core))


def test_a_fault_is_a_clear_error(tmp_path, qemu):
    elf = _image(tmp_path, "    void (*f)(void) = (void (*)(void))(uintptr_t)0xFFFFFFF1u;\n    f();\n    return 0;")
    with pytest.raises(DarbgenError, match="cortex-m3: the run in QEMU .mps2-an385. failed with a HardFault"):
        cortex_m.run_image(elf, cortex_m.core("cortex-m3"), tmp_path, timeout=30)


def test_a_run_past_its_time_out_ends_with_a_clear_error(tmp_path, qemu):
    """A run that does not end in time is stopped; the message says how to allow more time and does not call it
    a hang (a busy machine may just be slow)."""
    elf = _image(tmp_path, "    volatile int spin = 1;\n    while (spin) {\n    }\n    return 0;")
    with pytest.raises(DarbgenError, match="did not finish within 3 s") as err:
        cortex_m.run_image(elf, cortex_m.core("cortex-m3"), tmp_path, timeout=3)
    assert "--timeout" in str(err.value) and "hang" not in str(err.value)


def test_run_timeout_scales_with_the_work():
    """QEMU's time-out grows with the host's run time of the same work, more when every instruction is logged."""
    base = cortex_m.run_timeout(0.0)
    assert base == cortex_m.QEMU_BASE_SECONDS
    assert base < cortex_m.run_timeout(0.1) < cortex_m.run_timeout(1.0)
    assert cortex_m.run_timeout(0.1, trace=True) > cortex_m.run_timeout(0.1)


def test_exit_status_travels_back(tmp_path, qemu):
    elf = _image(tmp_path, "    return 5;", core="cortex-m33")
    with pytest.raises(DarbgenError, match="exit status 5"):
        cortex_m.run_image(elf, cortex_m.core("cortex-m33"), tmp_path, timeout=30)


def test_unknown_target():
    with pytest.raises(DarbgenError, match="unknown target 'cortex-m99'; choose one of: host, cortex-m0plus"):
        cortex_m.core("cortex-m99")


def test_build_cli_target_json(tmp_path, capsys, qemu):
    import json

    from darbgen.cli import main

    code = main(["build", str(examples_dir() / "digits_mlp.npz"), "--ratio", "2", "--target", "cortex-m0plus",
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "cortex-m0plus" and report["verified"]
    assert {"flash_bytes", "ram_bytes", "instructions", "stack_bytes", "layers", "accuracy"} <= set(report)
    assert all(row["instructions"] > 0 for row in report["layers"])
    code = main(["build", str(examples_dir() / "digits_mlp.npz"), "--ratio", "2", "--target", "cortex-m55"])
    text = capsys.readouterr().out
    assert code == 0 and "instructions per inference (counted in QEMU)" in text and "on cortex-m55" in text


def test_packed_int8_every_offset_width(rng, gcc, qemu):
    """darb_fc_s8's paths: blocks of 1 to 512 (0 to 9 offset bits, rows that
    start mid-byte) and blocks that are not a power of two (the bit reader),
    bit-exact on the host under the sanitizers (the 32-bit offset loads stay
    inside the array), on a core without unaligned loads and on the MVE core."""
    from darbgen.pruning.vectorized import block_max_mask

    cols = 600
    blocks = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 3, 5, 24, 600] * 3)
    rng.shuffle(blocks)
    w = rng.standard_normal((len(blocks), cols)).astype(np.float32)
    mask = block_max_mask(np.abs(w), blocks)
    layer = Dense("fc", np.where(mask, w, 0), None, mask, blocks, "relu")
    module = generate([layer], dtype="int8", kernel="packed", prefix="widths", calib=rng.standard_normal((32, cols)))
    assert verify(module, cc=gcc, n_random=6, sanitize=True).ok
    assert verify(module, target="cortex-m0plus", n_random=6).ok
    assert verify(module, target="cortex-m7", n_random=6).ok
    assert verify(module, target="cortex-m55", n_random=6).ok                      # the MVE gather loop


@pytest.mark.parametrize("core", slow_except(["cortex-m4", "cortex-m55", "cortex-m3"], {"cortex-m4", "cortex-m3"}))
def test_dense_int8_dsp_path_matches(rng, qemu, core):
    """The two-row SMLAD loop (DSP cores) and the plain loop, with column and
    row counts that leave tails, bit-exact with the reference."""
    for rows, cols in ((7, 13), (6, 16), (1, 3), (9, 64)):
        layer = Dense("d", rng.standard_normal((rows, cols)).astype(np.float32), activation="relu")
        module = generate([layer], dtype="int8", kernel="dense", prefix="dn", calib=rng.standard_normal((16, cols)))
        result = verify(module, target=core, n_random=8)
        assert result.ok, result.describe()


def test_compact_packed_kernel(rng, qemu, gcc):
    """-DDARB_COMPACT keeps only the general loop: the same bits, far less code."""
    from darbgen.pruning.vectorized import block_max_mask

    blocks = np.array([2, 4, 8, 16, 32, 64, 128, 3] * 2)
    w = rng.standard_normal((len(blocks), 256)).astype(np.float32)
    mask = block_max_mask(np.abs(w), blocks)
    module = generate([Dense("fc", np.where(mask, w, 0), None, mask, blocks)], dtype="int8", prefix="cp",
                      calib=rng.standard_normal((16, 256)))
    for core in ("cortex-m4", "cortex-m55"):
        assert verify(module, target=core, n_random=4, extra_flags=("-DDARB_COMPACT",)).ok
    assert verify(module, cc=gcc, n_random=4, sanitize=True, extra_flags=("-DDARB_COMPACT",)).ok
    import subprocess
    import tempfile

    from darbgen.toolchain import host
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        module.write_files(tmp)
        for extra in ((), ("-DDARB_COMPACT",)):
            subprocess.run(["arm-none-eabi-gcc", *host.STRICT_FLAGS, *cortex_m.core("cortex-m4").flags, *extra,
                            "-I.", "-c", "darb_fc_s8.c"], cwd=tmp, check=True)
            sizes.append(host.code_bytes(host.section_sizes(f"{tmp}/darb_fc_s8.o", "arm-none-eabi-size")))
    assert sizes[1] < 1024 < 4 * 1024 < sizes[0]


@pytest.mark.parametrize("core", slow_except(["cortex-m4", "cortex-m55", "cortex-m0plus"], {"cortex-m4", "cortex-m55"}))
def test_runtime_compiles_without_optimization(core, tmp_path, arm_gcc):
    """Every runtime kernel compiles with the strict flags at -O0 and -Og too (a firmware engineer's debug
    build): the assembly paths that need an optimizing build's free registers step aside there."""
    import subprocess

    from darbgen.resources import runtime_c_dir
    from darbgen.toolchain import host

    rt = runtime_c_dir()
    sources = sorted((rt / "src").glob("*.c"))
    assert len(sources) > 20
    for opt in ("-O0", "-Og"):
        for src in sources:
            cmd = [cortex_m.compiler(), *host.STRICT_FLAGS, *cortex_m.core(core).flags, opt, f"-I{rt / 'include'}",
                   f"-I{rt / 'src'}", "-c", str(src), "-o", str(tmp_path / "x.o")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{core} {opt} {src.name}: {proc.stderr[-1500:]}"
