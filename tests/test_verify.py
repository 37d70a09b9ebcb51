"""The generated C, compiled with gcc and run, equals the reference: every
kernel, dtype and activation, edge layers, sanitizers, and random draws."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import darbgen
from conftest import slow_except
import naive
from darbgen.codegen import KERNELS, generate
from darbgen.errors import DarbgenError
from darbgen.graph import ACTIVATIONS, Dense
from darbgen.verify import VerificationError, make_inputs, verify

DTYPES = ("int8", "int16", "float32")


def layer_set(rng, cols=45):
    """One layer per activation, chained, with rows of different scale (so DARB
    gives them different block sizes) and cols not a multiple of most blocks."""
    layers = []
    c = cols
    for i, act in enumerate(ACTIVATIONS):
        rows = 20 + 3 * i
        w = (rng.standard_normal((rows, c)) * np.exp(rng.standard_normal((rows, 1)))).astype(np.float32)
        r = darbgen.prune(w, 3 + i, "darb")
        layers.append(Dense(f"l{i}_{act}", w, (0.2 * rng.standard_normal(rows)).astype(np.float32), r.mask,
                            r.block_sizes, act))
        c = rows
    return layers


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_dtype_and_activation_matches_the_reference(rng, gcc, dtype, kernel):
    layers = layer_set(rng)
    m = generate(layers, dtype=dtype, kernel=kernel, prefix="t", calib=rng.standard_normal((64, 45)))
    result = verify(m, cc=gcc)
    assert result.ok and len(result.layers) == len(ACTIVATIONS) + 1      # each layer, then the model
    assert result.layers[-1].name == "(model)"
    for check in result.layers:
        assert check.mismatches == 0 and check.max_abs_diff == 0
        assert check.vectors >= 40
        if dtype == "float32":
            assert check.max_rel_f64 <= 1e-5


@pytest.mark.parametrize("dtype", slow_except(DTYPES, {"int8"}))
def test_rows_of_every_block_size_from_1_to_128(rng, gcc, dtype):
    """128 rows with block sizes 1, 2, ..., 128 over 300 columns (a multiple of
    almost none of them): every offset width 0..7 bits, short last blocks."""
    rows, cols = 128, 300
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    sizes = np.arange(1, rows + 1)
    mask = naive.bmwm_mask(w, sizes)
    layer = Dense("every_block", w, None, mask, sizes, "none")
    for kernel in KERNELS:
        m = generate([layer], dtype=dtype, kernel=kernel, calib=rng.standard_normal((32, cols)))
        assert verify(m, cc=gcc).ok
    enc = darbgen.encode(w, "darb", mask=mask, block_sizes=sizes)
    assert len(enc.params["classes"]) == 128


def test_a_wrong_output_is_caught(rng, gcc):
    """Tamper with one bias in the generated C: verification must fail and say where."""
    for dtype in DTYPES:
        m = generate(layer_set(rng)[:1], dtype=dtype, kernel="packed", calib=rng.standard_normal((16, 45)))
        name = m.layers[0].source
        text = m.files[name]
        start = text.index("_bias[20] = {\n") + len("_bias[20] = {\n")
        first_value = text[start:].split(",")[0].strip()
        bumped = (str(int(first_value) + 1000) if dtype != "float32"
                  else repr(float(first_value.rstrip("f")) + 0.5) + "f")
        m.files[name] = text[:start] + text[start:].replace(first_value, bumped, 1)
        with pytest.raises(VerificationError, match=r"l0_none: MISMATCH") as info:
            verify(m, cc=gcc)
        first = info.value.result.layers[0].first_mismatch
        assert first["output"] == 0
        quiet = verify(m, cc=gcc, raise_on_mismatch=False)
        assert not quiet.ok and quiet.layers[0].mismatches > 0


# slow: test_layers.test_cnn_sanitized (every dtype) and test_cortex_m's packed offset widths run the sanitizers
@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_sanitizers_run_clean(rng, gcc, dtype):
    layers = layer_set(rng)
    for kernel in ("packed", "csr", "unrolled", "dense"):
        m = generate(layers, dtype=dtype, kernel=kernel, calib=rng.standard_normal((32, 45)))
        result = verify(m, cc=gcc, sanitize=True, n_random=8)
        assert result.ok and "-fsanitize=address,undefined" in result.flags


def test_edge_inputs_include_extremes_and_saturating_patterns(rng):
    m = generate(layer_set(rng)[:1], dtype="int8", kernel="csr", calib=rng.standard_normal((16, 45)))
    q = m.layers[0].quantized
    x = make_inputs(q, n_random=4)
    rows = {tuple(v) for v in x.tolist()}
    assert tuple([-128] * 45) in rows and tuple([127] * 45) in rows and tuple([0] * 45) in rows
    pattern = tuple(np.where(q.layer.weight[0] > 0, 127, -128).tolist())
    assert pattern in rows
    # the saturating inputs really saturate some output
    from darbgen.reference import dense_int
    out = dense_int(q, x)
    assert (out == q.act_min).any() and (out == q.act_max).any()


def test_user_inputs_are_checked(rng, gcc):
    m = generate(layer_set(rng)[:1], dtype="int8", kernel="csr", calib=rng.standard_normal((16, 45)))
    with pytest.raises(DarbgenError, match=r"inputs must have shape \(n, 45\)"):
        verify(m, inputs={"l0_none": np.zeros((3, 44))}, cc=gcc)
    r = verify(m, inputs={"l0_none": np.zeros((3, 45))}, cc=gcc)
    assert r.layers[0].vectors == 3


METHODS = {"darb": {}, "bmwm": {}, "irregular": {}, "nm": {}, "bank_balanced": {}, "block": {"tile": (2, 2)}}


C_EXAMPLES = int(__import__("os").environ.get("DARBGEN_C_EXAMPLES", 40))
LAYER_DRAWS = dict(rows=st.integers(1, 300), cols=st.integers(1, 300), ratio=st.floats(1.5, 24),
                   method=st.sampled_from(sorted(METHODS)), dtype=st.sampled_from(DTYPES),
                   kernel=st.sampled_from(KERNELS), act=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 2 ** 31))


def random_layer_matches_the_reference(gcc, rows, cols, ratio, method, dtype, kernel, act, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((rows, cols)) * np.exp(rng.standard_normal((rows, 1)))).astype(np.float32)
    try:
        r = darbgen.prune(w, ratio, method, **METHODS[method])
    except DarbgenError:
        assume(False)                            # a ratio this shape cannot reach (tested elsewhere)
    if kernel == "packed" and r.block_sizes is None:
        kernel = "csr"
    layer = Dense("h", w, rng.standard_normal(rows).astype(np.float32), r.mask, r.block_sizes, act)
    m = generate([layer], dtype=dtype, kernel=kernel, calib=rng.standard_normal((16, cols)))
    result = verify(m, cc=gcc, n_random=8, seed=seed % 1000)
    assert result.ok, result.describe()


# a few draws by default (each compiles C); the full run draws DARBGEN_C_EXAMPLES
test_random_layers_match_the_reference = settings(
    max_examples=max(1, C_EXAMPLES // 4), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(
    given(**LAYER_DRAWS)(random_layer_matches_the_reference))
test_random_layers_match_the_reference_full = pytest.mark.slow(settings(
    max_examples=C_EXAMPLES, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(
    given(**LAYER_DRAWS)(random_layer_matches_the_reference)))


def test_a_callers_numpy_error_state_does_not_break_the_reference(rng, gcc):
    """Some libraries set np.seterr(all="raise") process-wide (emlearn does on
    import); float underflow in the reference is normal and must not raise."""
    from darbgen.graph import Dense

    layer = Dense("s", 30 * rng.standard_normal((6, 9)).astype(np.float32), activation="sigmoid")
    with np.errstate(all="raise"):
        module = darbgen.generate([layer], dtype="float32", kernel="dense")
        assert verify(module, cc=gcc, n_random=8).ok


def test_sample_rows_spreads_over_every_vector():
    from darbgen.verify import sample_rows

    assert list(sample_rows(5, 12)) == [0, 1, 2, 3, 4]
    rows = sample_rows(100, 12)
    assert len(rows) == 12 and rows[0] == 0 and rows[-1] == 99 and np.all(np.diff(rows) > 0)


def test_a_core_checks_a_sample_within_a_time_out_from_the_hosts_run(rng, gcc, qemu):
    """verify(..., target, sample=host result) runs TARGET_SAMPLE vectors per unit in QEMU (the host ran them
    all), and its time-out comes from the host's run time."""
    from darbgen.toolchain import cortex_m
    from darbgen.verify import TARGET_SAMPLE

    m = generate(layer_set(rng)[:2], dtype="int8", kernel="packed", prefix="t", calib=rng.standard_normal((64, 45)))
    host = verify(m, cc=gcc)
    assert host.ok and host.run_seconds > 0 and not host.sampled
    assert all(c.vectors > TARGET_SAMPLE for c in host.layers)
    core = verify(m, target="cortex-m4", sample=host)
    assert core.ok and core.sampled
    assert all(c.vectors == TARGET_SAMPLE for c in core.layers)
    assert cortex_m.run_timeout(host.run_seconds) < cortex_m.RUN_TIMEOUT
    full = verify(m, target="cortex-m4")            # no sample: every vector, the fixed time-out
    assert full.ok and not full.sampled and [c.vectors for c in full.layers] == [c.vectors for c in host.layers]


def test_build_rejects_a_bad_timeout(tmp_path):
    from darbgen.build import build

    with pytest.raises(DarbgenError, match=r"timeout= must be a number of seconds above 0 and at most 604800"):
        build("examples/digits_mlp.npz", timeout=0)
