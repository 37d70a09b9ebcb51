"""Graph models with pad, concat, quantize, dequantize, max pool and mean: darbgen's reference against
TensorFlow Lite Micro on a .tflite built here, and the generated C against the reference."""
import numpy as np
import pytest

pytest.importorskip("tflite")

from darbgen.codegen.graph_emit import generate_graph  # noqa: E402
from darbgen.graph_run import quantize_graph  # noqa: E402
from darbgen.importers.tflite import graph_from_tflite  # noqa: E402
from darbgen.verify import verify  # noqa: E402

from tflite_build import run_tflm  # noqa: E402
from tflite_build_import import ModelBuilder  # noqa: E402


def branchy_model(rng):
    """float in -> QUANTIZE -> PAD -> CONV 3x3 (relu) -+-------------------------+-> CONCAT (channels) -> MEAN
                                                      \\-> MAX_POOL 3x3 s1 same -/
       -> FC -> DEQUANTIZE -> float out (TFLM wants one quantization on every concat input)"""
    m = ModelBuilder()
    x = m.tensor("x", (1, 6, 5, 3), "float32")
    xq = m.tensor("xq", (1, 6, 5, 3), "int8", scale=0.05, zero_point=3)
    pads = m.tensor("pads", (4, 2), "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    xp = m.tensor("xp", (1, 8, 7, 3), "int8", scale=0.05, zero_point=3)
    w = m.tensor("w", (4, 3, 3, 3), "int8", data=rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
                 scale=rng.uniform(0.002, 0.01, 4), zero_point=0, quantized_dimension=0)
    b = m.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4).astype(np.int32),
                 scale=np.full(4, 0.05) * 0.005, zero_point=0)
    c = m.tensor("c", (1, 6, 5, 4), "int8", scale=0.06, zero_point=-20)
    mp = m.tensor("mp", (1, 6, 5, 4), "int8", scale=0.06, zero_point=-20)
    cat = m.tensor("cat", (1, 6, 5, 8), "int8", scale=0.06, zero_point=-20)
    axes = m.tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    mean = m.tensor("mean", (1, 8), "int8", scale=0.03, zero_point=-60)
    fw = m.tensor("fw", (5, 8), "int8", data=rng.integers(-127, 128, (5, 8)).astype(np.int8), scale=0.01,
                  zero_point=0)
    fb = m.tensor("fb", (5,), "int32", data=rng.integers(-300, 300, 5).astype(np.int32), scale=0.0003,
                  zero_point=0)
    y = m.tensor("y", (1, 5), "int8", scale=0.1, zero_point=5)
    yf = m.tensor("yf", (1, 5), "float32")
    m.op("QUANTIZE", [x], [xq])
    m.op("PAD", [xq, pads], [xp])
    m.op("CONV_2D", [xp, w, b], [c], ("Conv2DOptions", {"padding": "valid", "stride_w": 1, "stride_h": 1,
                                                         "fused_activation_function": "relu"}))
    m.op("MAX_POOL_2D", [c], [mp], ("Pool2DOptions", {"padding": "same", "stride_w": 1, "stride_h": 1,
                                                        "filter_width": 3, "filter_height": 3}))
    m.op("CONCATENATION", [c, mp], [cat], ("ConcatenationOptions", {"axis": 3}))
    m.op("MEAN", [cat, axes], [mean], ("ReducerOptions", {"keep_dims": False}))
    m.op("FULLY_CONNECTED", [mean, fw, fb], [y])
    m.op("DEQUANTIZE", [y], [yf])
    return m.build(inputs=[x], outputs=[yf])


def test_pad_concat_quantize_mean_graph_matches_tflm_and_c(tmp_path, rng, gcc):
    buf = branchy_model(rng)
    path = tmp_path / "branchy.tflite"
    path.write_bytes(buf)
    g = graph_from_tflite(path)
    assert [n.kind for n in g.nodes] == ["quantize", "pad", "conv2d", "max_pool2d", "concat", "mean",
                                         "fully_connected", "dequantize"]
    qg = quantize_graph(g, "int8")
    x = (rng.standard_normal((6, 6, 5, 3)) * 3).astype(np.float32)
    ours = qg.run(x)
    theirs = np.asarray([run_tflm(buf, [v[None]])[0].reshape(-1) for v in x])
    assert np.array_equal(ours.reshape(len(x), -1), theirs)
    module = generate_graph(qg, prefix="branchy")
    result = verify(module, sanitize=True)
    assert result.ok
    assert "(model)" in {c.name for c in result.layers}
    header = module.files["branchy.h"]
    assert "void branchy_run(const float *in, float *out);" in header


@pytest.mark.parametrize("dtype", [pytest.param("float32", marks=pytest.mark.slow), "int8"])   # int8 requantizes
def test_calibrated_float_graph_with_requantizing_concat(rng, gcc, dtype):
    """Two branches of very different ranges: the int8 concat requantizes one of them."""
    from darbgen.ir import Graph, Node, Tensor

    def const(name, arr):
        return Tensor(name, arr.shape, data=np.asarray(arr, np.float32))
    t = {n: Tensor(n, s) for n, s in [("x", (5, 4, 2)), ("a", (5, 4, 3)), ("b", (5, 4, 2)), ("p", (7, 6, 5)),
                                     ("cat", (5, 4, 5)), ("pool", (7, 6, 5)), ("m", (5,)), ("y", (3,))]}
    nodes = [
        Node("conv2d", "big", ["x"], ["a"], {"weight": const("w", 30 * rng.standard_normal((3, 1, 1, 2)))}, {}),
        Node("depthwise_conv2d", "small", ["x"], ["b"], {"weight": const("d", 0.1 * rng.standard_normal((3, 3, 2)))},
             {"padding": (1, 1, 1, 1), "multiplier": 1}),
        Node("concat", "cat", ["a", "b"], ["cat"], {}, {"axis": 2}),
        Node("pad", "pad", ["cat"], ["p"], {}, {"pads": ((1, 1), (1, 1), (0, 0))}),
        Node("avg_pool2d", "pool", ["p"], ["pool"], {}, {"filter": (3, 3), "padding": (1, 1, 1, 1)}),
        Node("mean", "mean", ["pool"], ["m"], {}, {"axes": (0, 1), "keep_dims": False}),
        Node("fully_connected", "fc", ["m"], ["y"], {"weight": const("f", rng.standard_normal((3, 5)))}, {}),
    ]
    g = Graph("twobranch", t, nodes, ["x"], ["y"])
    x = rng.standard_normal((20, 5, 4, 2))
    qg = quantize_graph(g, dtype, calib=x)
    if dtype == "int8":
        req = qg.params["cat"]["requant"]
        assert not all(r.identity for r in req)            # the branches have their own scales
    module = generate_graph(qg, prefix="twobranch")
    assert verify(module, sanitize=True).ok
