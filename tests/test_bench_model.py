"""darbgen bench model (darbgen.bench.model): a whole int8 model through CMSIS-NN and through darbgen in QEMU.

CMSIS-NN is ../shared/third_party/CMSIS-NN (the commit TFLM pins); these tests skip loudly without it, or without
arm-none-eabi-gcc / qemu-system-arm, and fail instead in CI. They check that CMSIS-NN, called as TFLM calls it, and
unpruned darbgen agree bit for bit (every tensor, on every input), that the counts are positive and repeatable, that
they match the figures measured independently in ../shared/third_party/README.md, and that --json parses.
"""
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import slow_except
from darbgen.toolchain import cortex_m

from darbgen.bench import model as bm
from darbgen.errors import DarbgenError

pytest.importorskip("tflite")

from tflite_build_import import ModelBuilder  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
CMSIS_NN = SHARED / "third_party" / "CMSIS-NN"
MLPERF = SHARED / "models" / "mlperf_tiny"


def _need(path, what):
    if path.exists():
        return
    message = f"{path} is absent: {what} needs ../shared (CI has it)"
    if os.environ.get("CI") or os.environ.get("DARBGEN_REQUIRE_TOOLS"):
        pytest.fail(message)
    warnings.warn(message)
    pytest.skip("SKIPPED LOUDLY: " + message)


@pytest.fixture
def cmsis_nn(qemu):
    _need(CMSIS_NN / "Include" / "arm_nnfunctions.h", "the CMSIS-NN benchmark")
    return CMSIS_NN


def _qw(rng, shape):
    return rng.integers(-127, 128, shape).astype(np.int8)


def residual_model(rng):
    """int8: conv 3x3 (relu) -> depthwise 3x3 (relu) -> pointwise 1x1 -> ADD with the conv's output (relu)
    -> average pool 8x8 -> reshape -> fully connected -> softmax."""
    m = ModelBuilder()
    sx = 0.05
    x = m.tensor("x", (1, 8, 8, 3), "int8", scale=sx, zero_point=-10)
    cw_s = rng.uniform(0.004, 0.012, 8).astype(np.float32)
    cw = m.tensor("cw", (8, 3, 3, 3), "int8", data=_qw(rng, (8, 3, 3, 3)), scale=cw_s, zero_point=0,
                  quantized_dimension=0)
    cb = m.tensor("cb", (8,), "int32", data=rng.integers(-400, 400, 8), scale=np.float32(sx) * cw_s, zero_point=0)
    s1 = 0.08
    h1 = m.tensor("model/conv2d/Relu", (1, 8, 8, 8), "int8", scale=s1, zero_point=-128)
    dw_s = rng.uniform(0.005, 0.02, 8).astype(np.float32)
    dw = m.tensor("dw", (1, 3, 3, 8), "int8", data=_qw(rng, (1, 3, 3, 8)), scale=dw_s, zero_point=0,
                  quantized_dimension=3)
    db = m.tensor("db", (8,), "int32", data=rng.integers(-300, 300, 8), scale=np.float32(s1) * dw_s, zero_point=0)
    s2 = 0.06
    h2 = m.tensor("model/depthwise_conv2d/Relu", (1, 8, 8, 8), "int8", scale=s2, zero_point=-128)
    pw_s = rng.uniform(0.005, 0.02, 8).astype(np.float32)
    pw = m.tensor("pw", (8, 1, 1, 8), "int8", data=_qw(rng, (8, 1, 1, 8)), scale=pw_s, zero_point=0,
                  quantized_dimension=0)
    pb = m.tensor("pb", (8,), "int32", data=rng.integers(-300, 300, 8), scale=np.float32(s2) * pw_s, zero_point=0)
    s3 = 0.07
    h3 = m.tensor("model/conv2d_1/BiasAdd", (1, 8, 8, 8), "int8", scale=s3, zero_point=3)
    s4 = 0.1
    h4 = m.tensor("model/add/Relu", (1, 8, 8, 8), "int8", scale=s4, zero_point=-128)
    h5 = m.tensor("model/average_pooling2d/AvgPool", (1, 1, 1, 8), "int8", scale=s4, zero_point=-128)
    shape = m.tensor("shape", (2,), "int32", data=np.array([1, 8], np.int32))
    h6 = m.tensor("model/flatten/Reshape", (1, 8), "int8", scale=s4, zero_point=-128)
    fw = m.tensor("fw", (4, 8), "int8", data=_qw(rng, (4, 8)), scale=0.02, zero_point=0)
    fb = m.tensor("fb", (4,), "int32", data=rng.integers(-500, 500, 4), scale=np.float32(s4) * np.float32(0.02),
                  zero_point=0)
    h7 = m.tensor("model/dense/BiasAdd", (1, 4), "int8", scale=0.15, zero_point=2)
    y = m.tensor("Identity", (1, 4), "int8", scale=1 / 256, zero_point=-128)
    m.op("CONV_2D", [x, cw, cb], [h1], ("Conv2DOptions", {"padding": "same", "stride_w": 1, "stride_h": 1,
                                                          "fused_activation_function": "relu"}))
    m.op("DEPTHWISE_CONV_2D", [h1, dw, db], [h2],
         ("DepthwiseConv2DOptions", {"padding": "same", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1,
                                     "fused_activation_function": "relu", "dilation_w_factor": 1,
                                     "dilation_h_factor": 1}))
    m.op("CONV_2D", [h2, pw, pb], [h3], ("Conv2DOptions", {"padding": "valid", "stride_w": 1, "stride_h": 1}))
    m.op("ADD", [h1, h3], [h4], ("AddOptions", {"fused_activation_function": "relu"}))
    m.op("AVERAGE_POOL_2D", [h4], [h5], ("Pool2DOptions", {"padding": "valid", "stride_w": 8, "stride_h": 8,
                                                           "filter_width": 8, "filter_height": 8}))
    m.op("RESHAPE", [h5, shape], [h6])
    m.op("FULLY_CONNECTED", [h6, fw, fb], [h7])
    m.op("SOFTMAX", [h7], [y], ("SoftmaxOptions", {"beta": 1.0}))
    return m.build([x], [y])


def fc_variants_model(rng):
    """int8: max pool 2x2 -> reshape to (1, 1, 16) -> fully connected keeping its dimensions, per-tensor (TFLM
    runs it through arm_convolve_1x1_s8_fast) -> fully connected per-channel (arm_fully_connected_per_channel_s8)."""
    m = ModelBuilder()
    s = 0.05
    x = m.tensor("x", (1, 4, 4, 4), "int8", scale=s, zero_point=5)
    p = m.tensor("pool", (1, 2, 2, 4), "int8", scale=s, zero_point=5)
    shape = m.tensor("shape", (3,), "int32", data=np.array([1, 1, 16], np.int32))
    r = m.tensor("flat", (1, 1, 16), "int8", scale=s, zero_point=5)
    w1 = m.tensor("w1", (8, 16), "int8", data=_qw(rng, (8, 16)), scale=0.01, zero_point=0)
    b1 = m.tensor("b1", (8,), "int32", data=rng.integers(-300, 300, 8), scale=np.float32(s) * np.float32(0.01),
                  zero_point=0)
    h1 = m.tensor("fc1", (1, 1, 8), "int8", scale=0.04, zero_point=-128)
    w2_s = rng.uniform(0.005, 0.02, 6).astype(np.float32)
    w2 = m.tensor("w2", (6, 8), "int8", data=_qw(rng, (6, 8)), scale=w2_s, zero_point=0, quantized_dimension=0)
    b2 = m.tensor("b2", (6,), "int32", data=rng.integers(-300, 300, 6), scale=np.float32(0.04) * w2_s, zero_point=0)
    y = m.tensor("y", (1, 6), "int8", scale=0.03, zero_point=-7)
    m.op("MAX_POOL_2D", [x], [p], ("Pool2DOptions", {"padding": "valid", "stride_w": 2, "stride_h": 2,
                                                      "filter_width": 2, "filter_height": 2}))
    m.op("RESHAPE", [p, shape], [r])
    m.op("FULLY_CONNECTED", [r, w1, b1], [h1], ("FullyConnectedOptions", {"fused_activation_function": "relu",
                                                                          "keep_num_dims": True}))
    m.op("FULLY_CONNECTED", [h1, w2, b2], [y])
    return m.build([x], [y])


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    rng = np.random.default_rng(2024)
    folder = tmp_path_factory.mktemp("bench_model")
    paths = {}
    for name, build in (("residual", residual_model), ("fc_variants", fc_variants_model)):
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(build(rng))
    return paths


def _layer(result, name):
    (row,) = [r for r in result["layers"] if r["name"] == name]
    return row


def test_residual_model_cmsis_nn_equals_darbgen_on_cortex_m4(small_models, cmsis_nn):
    result = bm.run(small_models["residual"], "cortex-m4", cmsis_nn, ratios=(1, 2), n_random=4)
    assert [r["kind"] for r in result["layers"]] == ["conv2d", "depthwise_conv2d", "conv2d", "add", "avg_pool2d",
                                                     "reshape", "fully_connected", "softmax"]
    kernels = [r["cmsis_nn_kernel"] for r in result["layers"]]
    assert kernels == ["arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8", "arm_convolve_wrapper_s8",
                       "arm_elementwise_add_s8", "arm_avgpool_s8", None, "arm_fully_connected_wrapper_s8",
                       "arm_softmax_s8"]
    assert result["checks"] == {"cmsis_nn_equals_reference": True, "cmsis_nn_equals_darbgen_unpruned": True,
                                "darbgen_equals_reference": True}
    assert result["inputs"] == 7                       # 4 random + 3 edge cases, every tensor compared
    for r in result["layers"]:
        if r["kind"] == "reshape":                     # free on both sides
            assert r["cmsis_nn"] == 0 and r["darbgen"] == {"1x": 0, "2x": 0}
        else:
            assert r["cmsis_nn"] > 0 and r["darbgen"]["1x"] > 0 and r["darbgen"]["2x"] > 0
    cm = result["cmsis"]
    assert cm["instructions"] == sum(r["cmsis_nn"] for r in result["layers"])
    for d in result["darbgen"]:
        assert d["instructions"] == sum(r["instructions"] for r in d["layers"]) > 0
    d1, d2 = result["darbgen"]
    assert d1["ratio"] == 1 and d1["bit_exact_with_cmsis_nn"] and d2["ratio"] == 2
    assert d2["kept"]["kept"] < d1["kept"]["kept"] == d1["kept"]["weights"]
    # flash: the model's own symbols; the weights exactly as many bytes as the file's int8 weights
    weights = 8 * 27 + 8 * 9 + 8 * 8 + 4 * 8
    assert cm["flash"]["weights"] == weights == d1["flash"]["values"]
    assert cm["flash"]["bias"] == 4 * (8 + 8 + 8 + 4) and cm["flash"]["quant"] == 8 * 24 + 8
    assert cm["flash"]["code"] > 1000 and d1["flash"]["code"] > 500
    assert d2["flash"]["values"] < d1["flash"]["values"] and d2["flash"]["index"] > 0
    # RAM: the residual branch stays live across the block: three 512-byte tensors at once, on both sides
    assert cm["ram"]["activations"] == d1["ram"]["activations"] == 3 * 512
    assert cm["ram"]["stack"] > 0 and d1["ram"]["stack"] > 0
    assert cm["ram"]["scratch"] == max(cm["buffer_sizes"]) > 0
    # the same again: the counts are exact and repeatable
    again = bm.run(small_models["residual"], "cortex-m4", cmsis_nn, ratios=(1,), n_random=4)
    assert [r["cmsis_nn"] for r in again["layers"]] == [r["cmsis_nn"] for r in result["layers"]]
    assert [r["darbgen"]["1x"] for r in again["layers"]] == [r["darbgen"]["1x"] for r in result["layers"]]
    text = bm.table(result)
    rows = [line.split()[0] for line in text.splitlines() if line.split()]
    assert all(r["name"] in rows for r in result["layers"]) and "total" in rows
    assert "darbgen 2x" in text and "RAM: stack" in text and "flash: code" in text


@pytest.mark.slow          # the residual model's benchmark again, against count_instructions op by op
def test_darbgen_op_counts_equal_count_instructions(small_models, cmsis_nn):
    """The benchmark counts darbgen's ops on the model's own tensors; verify.count_instructions counts each op on
    random inputs: the same figures where the kernels do not depend on the data."""
    from darbgen.build import load
    from darbgen.codegen.graph_emit import generate_graph
    from darbgen.graph_run import quantize_graph
    from darbgen.verify import count_instructions

    result = bm.run(small_models["residual"], "cortex-m4", cmsis_nn, ratios=(1,), n_random=1)
    qg = quantize_graph(load(str(small_models["residual"])).model, "int8")
    counted = count_instructions(generate_graph(qg, kernel="packed"), "cortex-m4")
    ours = {r["name"]: r["darbgen"]["1x"] for r in result["layers"]}
    for name in ("conv2d", "depthwise_conv2d", "conv2d_1", "average_pooling2d", "dense"):
        assert ours[name] == counted.instructions[name], name
    # the whole model's run adds only the calls between the ops (softmax depends on its input)
    assert abs(counted.instructions["(model)"] - result["darbgen"][0]["instructions"]) < 2000


@pytest.mark.parametrize("core", slow_except(["cortex-m4", "cortex-m55"], {"cortex-m4"}))
def test_fully_connected_variants_as_tflm_calls_them(small_models, cmsis_nn, core):
    """keep_num_dims FC (per-tensor, through arm_convolve_1x1_s8_fast with TFLM's per-channel copies), per-channel
    FC, max pooling; on the M55 the FC kernel sums TFLM computes at Prepare (persistent RAM)."""
    result = bm.run(small_models["fc_variants"], core, cmsis_nn, ratios=(1,), n_random=4)
    kernels = [r["cmsis_nn_kernel"] for r in result["layers"]]
    assert kernels == ["arm_max_pool_s8", None, "arm_convolve_1x1_s8_fast", "arm_fully_connected_wrapper_s8"]
    assert result["checks"]["cmsis_nn_equals_darbgen_unpruned"]
    assert all(r["cmsis_nn"] > 0 for r in result["layers"] if r["cmsis_nn_kernel"])
    cm = result["cmsis"]
    assert cm["ram"]["scratch"] >= 2 * 4 * 8           # the per-channel copies of the one multiplier and shift
    assert cm["flash"]["quant"] == 8 * 6                # the per-tensor FC's pair is in its Prepare code
    if core == "cortex-m55":
        assert cm["ram"]["persistent"] == 4 * 6         # arm_fully_connected_s8_get_buffer_size: rows * 4
    else:
        assert cm["ram"]["persistent"] == 0


def test_a_wrong_cmsis_nn_argument_is_caught_at_its_layer(small_models, cmsis_nn, tmp_path, monkeypatch):
    """Every intermediate tensor is compared: an ADD called with an output offset one off is named."""
    from darbgen.build import load
    from darbgen.graph_run import quantize_graph

    real = bm._LAYER["add"]

    def off_by_one(layer, node, p, qg):
        real(layer, node, p, qg)
        layer.body = layer.body.replace(f"out, {p.output_offset}, ", f"out, {p.output_offset + 1}, ")
    monkeypatch.setitem(bm._LAYER, "add", off_by_one)
    qg = quantize_graph(load(str(small_models["residual"])).model, "int8")
    x = np.random.default_rng(0).integers(-128, 128, (3, 8 * 8 * 3)).astype(np.int8)
    with pytest.raises(DarbgenError, match=r"layer add \(add\) differs"):
        bm.run_cmsis_nn(qg, "cortex-m4", cmsis_nn, x, tmp_path)


@pytest.mark.slow          # the residual model's benchmark again, through the CLI
def test_json_through_the_cli(small_models, cmsis_nn, capsys):
    from darbgen.cli import main

    assert main(["bench", "model", str(small_models["residual"]), "--core", "cortex-m4", "--cmsis-nn",
                 str(cmsis_nn), "--ratios", "1", "--inputs", "1", "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["core"] == "cortex-m4" and data["cmsis"]["instructions"] > 0
    assert data["darbgen"][0]["ratio"] == 1 and len(data["layers"]) == 8
    assert "counting instructions" in out.err              # progress on stderr


@pytest.mark.slow          # the full KWS benchmark; the small models above check CMSIS-NN against darbgen fast
def test_kws_on_cortex_m4_matches_the_measured_cmsis_nn_figures(cmsis_nn):
    """The KWS DS-CNN: CMSIS-NN equals darbgen unpruned bit for bit; its counts equal those measured independently
    in ../shared/third_party/README.md (7,692,370; conv 10x4 3.49 instructions a MAC, depthwise 7.79, pointwise
    2.09). Only softmax depends on the input (a few thousand instructions). darbgen stays where
    docs/benchmarks.md records it: unpruned 0.67x CMSIS-NN's instructions, DARB 4x 0.60x (limits with room)."""
    _need(MLPERF / "kws_ref_model.tflite", "the KWS benchmark")
    result = bm.run(MLPERF / "kws_ref_model.tflite", "cortex-m4", cmsis_nn, ratios=(1, 4), n_random=2)
    assert result["checks"]["cmsis_nn_equals_darbgen_unpruned"]
    per_mac = {r["name"]: r["cmsis_nn"] / r["macs"] for r in result["layers"] if r["macs"]}
    assert round(per_mac["conv2d"], 2) == 3.49
    assert round(per_mac["depthwise_conv2d"], 2) == 7.79
    assert round(per_mac["conv2d_1"], 2) == 2.09
    assert abs(result["cmsis"]["instructions"] - 7_692_370) < 10_000
    assert result["cmsis"]["flash"]["weights"] + result["cmsis"]["flash"]["bias"] == 24_368
    cm = result["cmsis"]["instructions"]
    d1, d4 = result["darbgen"]
    assert 0 < d1["instructions"] < 0.75 * cm
    assert d4["instructions"] < 0.68 * cm and d4["instructions"] < d1["instructions"]
    assert d4["flash"]["data"] < 0.55 * result["cmsis"]["flash"]["data"]


def test_count_calls_counts_mve_instructions_once(tmp_path):
    """QEMU 7.2 lists an MVE instruction it cannot disassemble as two lines (one per halfword): counted once."""
    trace = tmp_path / "trace.log"
    trace.write_text(
        "IN: f\n"
        "0x00001000:  b580       push     {r7, lr}\n"
        "0x00001002:  eba9 0503  sub.w    r5, sb, r3\n"
        "0x00001006:  fe71       .byte    0x71, 0xfe\n"        # VPST: 32 bits, shown as two lines
        "0x00001008:  0f4d       lsrs     r5, r1, #0x1d\n"
        "0x0000100a:  eef8       .byte    0xf8, 0xee\n"        # VMLADAVA
        "0x0000100c:  6f26       ldr      r6, [r4, #0x70]\n"
        "0x0000100e:  bd80       pop      {r7, pc}\n"
        "\n"
        "IN: main\n"
        "0x00002000:  f7ff ff00  bl       #0x1000\n"
        "\n"
        "IN: main\n"
        "0x00002004:  2000       movs     r0, #0\n"
        "\n"
        "Trace 0: 0x1 [00000000/00002000/00000000/00000000] main\n"
        "Trace 0: 0x1 [00000000/00001000/00000000/00000000] f\n"
        "Trace 0: 0x1 [00000000/00002004/00000000/00000000] main\n", encoding="ascii")
    assert cortex_m.count_calls(trace, [0x1000], [(0x2000, 0x2010)]) == [5]


def test_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(bm.CMSIS_ENV, raising=False)
    with pytest.raises(DarbgenError, match="--cmsis-nn DIR"):
        bm.cmsis_nn_folder(None)
    with pytest.raises(DarbgenError, match="not a CMSIS-NN folder"):
        bm.cmsis_nn_folder(tmp_path)
    from darbgen.graph_run import quantize_graph
    from darbgen.importers.tflite import graph_from_tflite

    m = ModelBuilder()
    x = m.tensor("x", (1, 4, 4, 2), "int8", scale=0.1, zero_point=0)
    axes = m.tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    y = m.tensor("y", (1, 2), "int8", scale=0.1, zero_point=0)
    m.op("MEAN", [x, axes], [y], ("ReducerOptions", {"keep_dims": False}))
    path = tmp_path / "mean.tflite"
    path.write_bytes(m.build([x], [y]))
    with pytest.raises(DarbgenError, match="no CMSIS-NN kernel"):
        bm.cmsis_layers(quantize_graph(graph_from_tflite(path), "int8"))
