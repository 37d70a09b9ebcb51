"""The op graph pipeline (darbgen.ir, darbgen.ops, graph_run, codegen.graph_emit, graph_build)."""
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import slow_except
from darbgen.codegen.graph_emit import generate_graph
from darbgen.errors import DarbgenError
from darbgen.graph_build import prune_graph
from darbgen.graph_run import quantize_graph, run_f64
from darbgen.ir import Graph, Node, Tensor
from darbgen.verify import verify

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"


def need_mlperf():
    import warnings

    if not MLPERF.is_dir():
        message = f"{MLPERF} is absent: the MLPerf Tiny model tests need ../shared (CI has it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        warnings.warn(message)
        pytest.skip("SKIPPED LOUDLY: " + message)


def toy_graph(rng, act="relu"):
    """conv 3x3 stride 2 padded -> pointwise conv -> reshape -> fully connected."""
    def const(name, arr):
        return Tensor(name, arr.shape, data=np.asarray(arr, np.float32))
    tensors = {n: Tensor(n, s) for n, s in [("x", (8, 6, 3)), ("y1", (4, 3, 4)), ("y2", (4, 3, 5)), ("y3", (60,)),
                                           ("y4", (7,))]}
    nodes = [
        Node("conv2d", "c1", ["x"], ["y1"], {"weight": const("w1", rng.standard_normal((4, 3, 3, 3))),
                                             "bias": const("b1", rng.standard_normal(4))},
             {"stride": (2, 2), "padding": (1, 1, 1, 1), "activation": act}),
        Node("conv2d", "pw", ["y1"], ["y2"], {"weight": const("w2", rng.standard_normal((5, 1, 1, 4)))}, {}),
        Node("reshape", "flat", ["y2"], ["y3"], {}, {"shape": (60,)}),
        Node("fully_connected", "fc", ["y3"], ["y4"], {"weight": const("w3", rng.standard_normal((7, 60))),
                                                        "bias": const("b3", rng.standard_normal(7))},
             {"activation": "none"}),
    ]
    return Graph("toy", tensors, nodes, ["x"], ["y4"])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_toy_graph_verifies_under_sanitizers(rng, gcc, dtype):
    g = toy_graph(rng)
    x = rng.standard_normal((24, 8, 6, 3))
    qg = quantize_graph(g, dtype, calib=x)
    module = generate_graph(qg, prefix="toy")
    result = verify(module, sanitize=True)
    assert result.ok
    assert {c.name for c in result.layers} == {"c1", "pw", "fc", "(model)"}     # reshape aliases: no code
    if dtype == "int8":
        y = qg.dequantize_output(qg.run(qg.quantize_input(x)))
        exact = run_f64(g, x)
        assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()
    else:
        assert np.allclose(qg.run(x.astype(np.float32)), run_f64(g, x), rtol=1e-4, atol=1e-4)


def test_float_reference_matches_a_naive_convolution(rng):
    g = toy_graph(rng, act="none")
    x = rng.standard_normal((3, 8, 6, 3))
    y1 = run_f64(g, x, keep=True)["y1"]
    w = g.nodes[0].params["weight"].data.astype(np.float64)
    b = g.nodes[0].params["bias"].data.astype(np.float64)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros((3, 4, 3, 4))
    for oy in range(4):
        for ox in range(3):
            patch = xp[:, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3, :]
            want[:, oy, ox, :] = np.einsum("nhwc,ohwc->no", patch, w) + b
    assert np.allclose(y1, want)


@pytest.mark.parametrize("method,kernel", [("darb", "packed"), ("darb", "unrolled"), ("irregular", "csr")])
def test_pruned_graph_verifies(rng, gcc, method, kernel):
    g = toy_graph(rng)
    pruned, results = prune_graph(g, 2, method)
    assert set(results) == {"c1", "pw", "fc"}
    for node in pruned.nodes:
        if node.kind != "reshape":
            mask = node.attrs["mask"]
            assert mask.sum() < mask.size
    x = rng.standard_normal((16, 8, 6, 3))
    module = generate_graph(quantize_graph(pruned, "int8", calib=x), kernel=kernel, prefix="toy")
    assert verify(module).ok


def test_arena_reuses_dead_tensors(rng):
    module = generate_graph(quantize_graph(toy_graph(rng), "int8", calib=rng.standard_normal((4, 8, 6, 3))))
    # y1 (48 B) and y2 (60 B) live at once; the output goes to `out`: 48 + 64 (aligned), and the
    # patches of 8 pixels of the 3x3x3 convolution (its dense int8 matrix takes up to 8 pixels per call)
    assert module.extra["arena_bytes"] == 48 + 64 + 8 * 27


def test_generated_graph_c_is_deterministic(rng):
    x = rng.standard_normal((8, 8, 6, 3))
    a = generate_graph(quantize_graph(toy_graph(np.random.default_rng(1)), "int8", calib=x)).files
    b = generate_graph(quantize_graph(toy_graph(np.random.default_rng(1)), "int8", calib=x)).files
    assert a == b


def test_graph_errors(rng):
    g = toy_graph(rng)
    with pytest.raises(DarbgenError, match="calibration inputs"):
        quantize_graph(g, "int8")
    with pytest.raises(DarbgenError, match=r"shape \(n, 8, 6, 3\)"):
        quantize_graph(g, "int8", calib=rng.standard_normal((4, 7)))
    with pytest.raises(DarbgenError, match="int16"):
        quantize_graph(g, "int16")
    bad = toy_graph(rng)
    with pytest.raises(DarbgenError, match="reads tensor 'y9'"):
        Graph("bad", dict(bad.tensors, y9=Tensor("y9", (3,))),
              [Node("reshape", "r", ["y9"], ["y3"], {}, {"shape": (3,)})], ["x"], ["y3"])
    with pytest.raises(DarbgenError, match="not supported"):
        from darbgen.ops import op_kind
        op_kind(Node("lstm_cell", "l", ["x"], ["y1"]))


# ----------------------------------------------------------------------------- real models (MLPerf Tiny)

def _tflm_outputs(path, x):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime",
                                  reason="the tflite-micro wheel is the oracle (pip install darbgen[test])")
    interp = runtime.Interpreter.from_bytes(Path(path).read_bytes())
    out = []
    for v in x:
        interp.set_input(v[None], 0)
        interp.invoke()
        out.append(np.asarray(interp.get_output(0)).reshape(-1))
    return np.asarray(out)


def test_ad_int8_matches_tflite_micro_bit_for_bit(rng):
    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.importers.tflite import graph_from_tflite

    path = MLPERF / "ad01_int8.tflite"
    g = graph_from_tflite(path)
    qg = quantize_graph(g, "int8")
    sample = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    x = np.concatenate([qg.quantize_input(sample), rng.integers(-128, 128, (8, 640)).astype(np.int8)])
    assert np.array_equal(qg.run(x).reshape(len(x), -1), _tflm_outputs(path, x))


def test_build_ad_int8_pruned_verifies(tmp_path, gcc):
    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.build import build

    result = build(str(MLPERF / "ad01_int8.tflite"), ratio=2, out=tmp_path / "ad")
    assert result.ok
    r = result.report
    assert 1.9 < r["ratio"] < 2.1 and r["source"] == "tflite"
    assert (tmp_path / "ad" / "ad01_int8.h").read_text().count("AD01_INT8_INPUT_SCALE") == 1


MODELS = {  # file: calibration inputs (float models) or None (int8 models keep their own quantization)
    "kws_ref_model.tflite": None, "ad01_int8.tflite": None, "pretrainedResnet_quant.tflite": None,
    "kws_ref_model_float32.tflite": (49, 10, 1), "ad01_fp32.tflite": "sample", "ad01.h5": "sample",
    "pretrainedResnet.h5": (32, 32, 3),
}


def _calib(name, rng):
    spec = MODELS[name]
    if spec is None:
        return None
    if spec == "sample":
        return np.load(MLPERF / "ad01_normal_id01_sample.npy")
    return rng.uniform(0, 1, (12,) + spec).astype(np.float32) * (20 if spec[0] == 49 else 1)


# by default the pruned KWS (depthwise) and ResNet (add); every model, pruned and not, in the full run
@pytest.mark.parametrize("ratio,name", slow_except([(ratio, name) for ratio in (None, 2) for name in sorted(MODELS)],
                                                   {(2, "kws_ref_model.tflite"), (2, "pretrainedResnet_quant.tflite")}))
def test_every_mlperf_tiny_model_builds_and_verifies_on_the_host(name, ratio, gcc, rng):
    need_mlperf()
    pytest.importorskip("tflite" if name.endswith(".tflite") else "h5py")
    from darbgen.build import build

    result = build(str(MLPERF / name), ratio=ratio, calib=_calib(name, rng))
    assert result.ok, result.verification.describe()
    r = result.report
    if ratio:
        assert 1.8 < r["ratio"] < 2.2
    kinds = {row["kind"] for row in r["layers"]}
    if name.startswith("kws"):
        assert "depthwise" in kinds and "conv" in kinds       # depthwise is its own op, never a full conv
    if "Resnet" in name:
        assert "add" in kinds


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def test_int8_cnns_match_tflite_micro_bit_for_bit(name, rng):
    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.importers.tflite import graph_from_tflite

    g = graph_from_tflite(MLPERF / name)
    qg = quantize_graph(g, "int8")
    x = rng.integers(-128, 128, (4,) + tuple(g.input_shape)).astype(np.int8)
    assert np.array_equal(qg.run(x).reshape(len(x), -1), _tflm_outputs(MLPERF / name, x))


@pytest.mark.parametrize("name,limit", slow_except([("kws_ref_model.tflite", 1.13), ("ad01_int8.tflite", 1.10),
                                                    ("pretrainedResnet_quant.tflite", 1.10)],
                                                   {("ad01_int8.tflite", 1.10)}))
def test_unpruned_int8_flash_is_close_to_the_tflite_tensors(name, limit):
    """Weights, bias and requantization tables against the .tflite file's tensor bytes (weights + bias).

    TFLite Micro computes each channel's multiplier and shift at Prepare into RAM; darbgen keeps them as
    const data (5 bytes a channel). That is 3% (AD), 2% (ResNet-8) and 12% (KWS: 9 per-channel layers of
    only 64 channels) of the tensors: KWS misses the issue's 10% (docs/graph.md)."""
    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.build import build, load

    graph = load(str(MLPERF / name)).model
    tensors = sum(p.data.nbytes for n in graph.nodes for p in n.params.values())
    r = build(str(MLPERF / name)).report
    assert r["data_bytes"]["values"] == sum(n.params["weight"].data.nbytes for n in graph.nodes
                                            if "weight" in n.params)
    assert r["data_bytes"]["total"] <= limit * tensors, (name, r["data_bytes"], tensors)
    for row in r["layers"]:
        if row["kind"] == "depthwise":                    # 3 x 3 x 64 int8 weights, never a full convolution
            assert row["bytes"]["values"] == 3 * 3 * 64


def test_float_model_matches_litert(rng):
    need_mlperf()
    pytest.importorskip("tflite")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT is the float oracle")
    from darbgen.importers.tflite import graph_from_tflite

    path = MLPERF / "ad01_fp32.tflite"
    g = graph_from_tflite(path)
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")[:8]
    interp = litert.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    want = []
    for v in x:
        interp.set_tensor(i, v[None].astype(np.float32))
        interp.invoke()
        want.append(interp.get_tensor(o).reshape(-1))
    want = np.asarray(want)
    qg = quantize_graph(g, "float32")
    got = qg.run(x.astype(np.float32))
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)) < 1e-4
    assert np.max(np.abs(run_f64(g, x) - want) / np.maximum(np.abs(want), 1.0)) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_ad_int8_pruned_verifies_on_cortex_m(core, qemu):
    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.build import build

    result = build(str(MLPERF / "ad01_int8.tflite"), ratio=2, target=core)
    assert result.ok and result.report["instructions"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_mlperf_tiny_model_verifies_on_cortex_m(name, core, qemu, rng):
    """Unpruned and pruned 2x, every op and the whole model, bit-exact in QEMU (a few vectors: the
    host check runs the full set)."""
    need_mlperf()
    pytest.importorskip("tflite" if name.endswith(".tflite") else "h5py")
    from darbgen.build import load

    graph = load(str(MLPERF / name)).model
    for ratio in (None, 2):
        g = graph if ratio is None else prune_graph(graph, ratio)[0]
        qg = quantize_graph(g, "int8", calib=_calib(name, rng))
        module = generate_graph(qg, kernel="dense" if ratio is None else "packed")
        result = verify(module, n_random=2, target=core, raise_on_mismatch=False)
        assert result.ok, result.describe()


def test_long_framework_names_become_short_unique_identifiers():
    from darbgen.codegen.names import MAX_NAME, LayerNames, short_name

    long = "functional_1/conv2d_3/BiasAdd;functional_1/conv2d_3/Conv2D;" * 5
    a, b = short_name(long), short_name(long + "x")
    assert len(a) <= MAX_NAME and len(b) <= MAX_NAME and a != b and a == short_name(long)
    assert short_name("conv2d_3") == "conv2d_3"                     # short names stay as they are
    names = LayerNames()
    first, second = names.unique(long), names.unique(long)
    assert first != second and max(len(first), len(second)) <= MAX_NAME + 2


def test_prune_and_generate_point_model_files_to_build(tmp_path, capsys):
    from darbgen.cli import main

    path = tmp_path / "model.tflite"
    path.write_bytes(b"TFL3")
    for argv in (["prune", str(path), "--ratio", "2", "-o", str(tmp_path / "p.npz")],
                 ["generate", str(path), "--out", str(tmp_path / "c")]):
        assert main(argv) == 2
        assert "darbgen build model.tflite" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["kws_ref_model_float32.tflite", "ad01.h5", "pretrainedResnet.h5"])
def test_float_models_match_litert(name, rng):
    """The float graph darbgen imported (int8-stored weights dequantized; Keras layers folded and fused),
    written back as a float .tflite and run by LiteRT: darbgen's float64 and float32 references within 1e-4."""
    need_mlperf()
    pytest.importorskip("tflite" if name.endswith(".tflite") else "h5py")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT is the float oracle")
    from darbgen.build import load
    from darbgen.graph_run import infer_shapes
    from graph_to_tflite import graph_to_tflite

    g = load(str(MLPERF / name)).model
    buf = graph_to_tflite(g, infer_shapes(g))
    interp = litert.Interpreter(model_content=bytes(buf))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    x = _calib(name, rng)[:6].astype(np.float32).reshape((-1,) + tuple(g.input_shape))
    want = []
    for v in x:
        interp.set_tensor(i, v[None])
        interp.invoke()
        want.append(interp.get_tensor(o).reshape(-1))
    want = np.asarray(want, np.float64)
    scale = np.maximum(np.abs(want).max(axis=1, keepdims=True), 1e-6)
    f64 = run_f64(g, x).reshape(len(x), -1)
    f32 = quantize_graph(g, "float32").run(x).reshape(len(x), -1)
    assert np.max(np.abs(f64 - want) / scale) < 1e-4
    assert np.max(np.abs(f32 - want) / scale) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_block_counts_equal_a_single_step_trace(tmp_path, qemu, core):
    """count_instructions adds translated blocks' sizes; QEMU's -singlestep trace logs every instruction:
    the two agree on every op (the M55's MVE instructions, which QEMU lists as two halfwords, included)."""
    import importlib
    import re
    import subprocess

    need_mlperf()
    pytest.importorskip("tflite")
    from darbgen.importers.tflite import graph_from_tflite
    from darbgen.toolchain import cortex_m

    V = importlib.import_module("darbgen.verify")
    module = generate_graph(quantize_graph(graph_from_tflite(MLPERF / "ad01_int8.tflite"), "int8"), kernel="dense")
    units = module.units
    vectors = [x[:1] for x in V._unit_vectors(module, None, 1, 0)]
    elf, c, _ = V.build_target_harness(module, tmp_path, core)
    V._write_inputs(tmp_path / "inputs.bin", vectors)
    subprocess.run([cortex_m.qemu(), "-M", c.board, "-nographic", "-monitor", "none", "-serial", "none",
                    "-semihosting-config", "enable=on,target=native", "-kernel", str(elf), "-singlestep",
                    "-d", "exec,nochain", "-D", "one.log"], cwd=tmp_path, check=True, capture_output=True)
    syms = cortex_m.symbols(elf)
    entries = [syms[u.run_function][0] for u in units]
    callers = [(a, a + n) for name, (a, n) in syms.items()
               if (name.startswith("darb_harness") or name == "darb_stack_call") and n > 0]
    trace = re.compile(rb"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
    single, k, inside, n = [], 0, False, 0
    for line in open(tmp_path / "one.log", "rb"):
        m = trace.match(line)
        if m is None:
            continue
        pc = int(m.group(1), 16)
        if inside:
            if any(lo <= pc < hi for lo, hi in callers):
                single.append(n)
                inside, k = False, k + 1
            else:
                n += 1
        if not inside and k < len(entries) and pc == entries[k]:
            inside, n = True, 1
    counted = V.count_instructions(module, core)
    assert [counted.instructions[u.name] for u in units] == single


def test_packed_speed_note():
    """The report says when packed layers are expected to be slower than dense ones on the target."""
    from darbgen.graph_build import packed_speed_note

    assert packed_speed_note("host", 2, "packed", "int8") is None
    assert packed_speed_note("cortex-m4", 4, "packed", "int8") is None
    assert packed_speed_note("cortex-m4", None, "packed", "int8") is None
    assert packed_speed_note("cortex-m4", 2, "dense", "int8") is None
    assert "below about 3x" in packed_speed_note("cortex-m4", 2, "packed", "int8")
    assert "--kernel dense" in packed_speed_note("cortex-m55", 8, "packed", "int8", convolutions=True)
    assert packed_speed_note("cortex-m55", 8, "packed", "int8", convolutions=False) is None
