"""darbgen.importers.tflite: .tflite flatbuffers into the op graph (docs/tflite.md).

The MLPerf Tiny models (/work/shared/models/mlperf_tiny) are checked node by
node against their known architectures, and run through a small NumPy forward
pass of the imported graph against LiteRT (float) and TFLite Micro (int8).
Small models built with the `tflite` package's flatbuffer builders
(tests/tflite_build_import.py) cover every operator, the weight dequantization
(bit for bit against LiteRT) and every refusal.
"""
import os
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from darbgen.errors import DarbgenError  # noqa: E402
from darbgen.importers import tflite as tfl  # noqa: E402
from darbgen.importers.tflite import graph_from_tflite  # noqa: E402

pytest.importorskip("tflite")
from tflite_build_import import ModelBuilder  # noqa: E402

MODELS = pathlib.Path(os.environ.get("DARBGEN_MLPERF_TINY", "/work/shared/models/mlperf_tiny"))
ALL_MODELS = sorted(MODELS.glob("*.tflite")) if MODELS.is_dir() else []
needs_models = pytest.mark.skipif(not ALL_MODELS, reason=f"MLPerf Tiny models not found in {MODELS} (set "
                                                         f"DARBGEN_MLPERF_TINY): the real-model checks did NOT run")


def model(name):
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"{path} is missing: this real-model check did NOT run")
    return path


def litert(buf_or_path):
    """A LiteRT interpreter without XNNPACK (so intermediate tensors can be read back)."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    kw = dict(experimental_preserve_all_tensors=True,
              experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if isinstance(buf_or_path, (bytes, bytearray)):
        it = interp_mod.Interpreter(model_content=bytes(buf_or_path), **kw)
    else:
        it = interp_mod.Interpreter(model_path=str(buf_or_path), **kw)
    it.allocate_tensors()
    return it


def write(tmp_path, buf, name="m.tflite"):
    p = tmp_path / name
    p.write_bytes(buf)
    return p


# ------------------------------------------------------------------------------------ a NumPy forward pass
CLAMP = {"none": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}


def _act(y, node):
    lo, hi = CLAMP[node.attrs.get("activation", "none")]
    return np.clip(y, lo, hi)


def _pad(x, p, value=0.0):
    return np.pad(x, ((p[0], p[1]), (p[2], p[3]), (0, 0)), constant_values=value)


def _taps(x, kh, kw, stride, dilation):
    (sh, sw), (dh, dw) = stride, dilation
    oh = (x.shape[0] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[1] - (kw - 1) * dw - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]


def _eval(node, xs):
    a = node.attrs
    k = node.kind
    if k == "conv2d":
        w = node.params["weight"].real()
        acc = sum(v @ w[:, i, j, :].T for i, j, v in _taps(_pad(xs[0], a["padding"]), w.shape[1], w.shape[2],
                                                            a["stride"], a["dilation"]))
        return _act(acc + node.params["bias"].real(), node)
    if k == "depthwise_conv2d":
        w = node.params["weight"].real()
        x = np.repeat(xs[0], a["multiplier"], axis=-1)
        acc = sum(v * w[i, j] for i, j, v in _taps(_pad(x, a["padding"]), w.shape[0], w.shape[1], a["stride"],
                                                   a["dilation"]))
        return _act(acc + node.params["bias"].real(), node)
    if k == "fully_connected":
        return _act(node.params["weight"].real() @ xs[0].reshape(-1) + node.params["bias"].real(), node)
    if k == "add":
        return _act(xs[0] + xs[1], node)
    if k in ("avg_pool2d", "max_pool2d"):
        fh, fw = a["filter"]
        if k == "max_pool2d":
            views = [v for _, _, v in _taps(_pad(xs[0], a["padding"], -np.inf), fh, fw, a["stride"], (1, 1))]
            return _act(np.max(views, axis=0), node)
        total = sum(v for _, _, v in _taps(_pad(xs[0], a["padding"]), fh, fw, a["stride"], (1, 1)))
        ones = np.ones(xs[0].shape[:2] + (1,))
        count = sum(v for _, _, v in _taps(_pad(ones, a["padding"]), fh, fw, a["stride"], (1, 1)))
        return _act(total / count, node)
    if k == "mean":
        return xs[0].mean(axis=a["axes"], keepdims=a["keep_dims"])
    if k == "reshape":
        return xs[0].reshape(a["shape"])
    if k == "softmax":
        e = np.exp(a["beta"] * (xs[0] - xs[0].max(axis=-1, keepdims=True)))
        return e / e.sum(axis=-1, keepdims=True)
    if k == "pad":
        return np.pad(xs[0], a["pads"])
    if k == "concat":
        return _act(np.concatenate(xs, axis=a["axis"]), node)
    if k in ("quantize", "dequantize"):
        return xs[0]
    raise AssertionError(k)


def forward(graph, x, tensor=None):
    """The real-valued output (or ``tensor``) for one sample ``x`` (real values). int8 tensors are rounded to
    their quantization after each op (fake quantization), as an int8 runtime would."""
    values = {graph.inputs[0]: np.asarray(x, np.float64)}
    for node in graph.nodes:
        y = _eval(node, [values[t] for t in node.inputs])
        t = graph.tensors[node.outputs[0]]
        assert y.shape == t.shape, (node.name, y.shape, t.shape)
        if t.dtype == "int8":
            s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
            y = s * (np.clip(np.round(y / s) + z, -128, 127) - z)
        values[node.outputs[0]] = y
    return values[tensor or graph.outputs[0]]


# ------------------------------------------------------------------------------------ the MLPerf Tiny models
@needs_models
@pytest.mark.parametrize("path", ALL_MODELS, ids=[p.name for p in ALL_MODELS])
def test_every_mlperf_model_imports(path):
    g = graph_from_tflite(path)
    assert g.name == path.stem and g.source == "tflite" and g.layout == "NHWC"
    names = [n.name for n in g.nodes]
    assert len({n.upper() for n in names}) == len(names)
    assert all(len(n) <= 32 and n.isidentifier() and n == n.lower() for n in names)
    for n in g.nodes:
        assert n.source_name == n.outputs[0]          # the full output tensor name (unique in these files)
        for p in n.params.values():
            if p.quant is not None and not p.quant.per_tensor:
                assert p.quant.scale.size == p.shape[p.quant.axis]
    quantized = "int8" in path.name or "quant" in path.name or path.name == "kws_ref_model.tflite"
    assert g.quantized == quantized
    assert g.input.dtype == g.output.dtype == ("int8" if quantized else "float32")


@needs_models
def test_kws_int8():
    g = graph_from_tflite(model("kws_ref_model.tflite"))
    kinds = [n.kind for n in g.nodes]
    assert kinds == ["conv2d"] + ["depthwise_conv2d", "conv2d"] * 4 + ["avg_pool2d", "reshape", "fully_connected",
                                                                      "softmax"]
    assert [n.name for n in g.nodes] == ["conv2d", "depthwise_conv2d", "conv2d_1", "depthwise_conv2d_1", "conv2d_2",
                                         "depthwise_conv2d_2", "conv2d_3", "depthwise_conv2d_3", "conv2d_4",
                                         "average_pooling2d", "flatten", "dense", "softmax_12"]
    assert g.input_shape == (49, 10, 1) and g.output_shape == (12,)
    assert g.input.quant.zero_point[0] == 83 and abs(g.input.quant.scale[0] - 0.5847) < 1e-4
    assert g.output.quant.zero_point[0] == -128 and g.output.quant.scale[0] == np.float32(1 / 256)
    conv = g.nodes[0]
    assert conv.attrs == {"stride": (2, 2), "dilation": (1, 1), "padding": (4, 5, 1, 1), "activation": "relu"}
    w, b = conv.params["weight"], conv.params["bias"]
    assert w.shape == (64, 10, 4, 1) and w.dtype == "int8" and w.quant.axis == 0 and w.quant.scale.size == 64
    assert b.shape == (64,) and b.dtype == "int32" and b.quant.scale.size == 64
    assert g.tensors[conv.outputs[0]].shape == (25, 5, 64)
    for dw in g.nodes[1:9:2]:
        assert dw.attrs == {"multiplier": 1, "stride": (1, 1), "dilation": (1, 1), "padding": (1, 1, 1, 1),
                            "activation": "relu"}
        w = dw.params["weight"]
        assert w.shape == (3, 3, 64) and w.dtype == "int8" and w.quant.axis == 2 and w.quant.scale.size == 64
    for pw in g.nodes[2:9:2]:
        assert pw.params["weight"].shape == (64, 1, 1, 64) and pw.attrs["padding"] == (0, 0, 0, 0)
    pool, flat, fc, sm = g.nodes[9:]
    assert pool.attrs == {"filter": (25, 5), "stride": (25, 5), "padding": (0, 0, 0, 0), "activation": "none"}
    assert g.tensors[pool.outputs[0]].shape == (1, 1, 64)
    assert flat.attrs == {"shape": (64,)}
    assert fc.params["weight"].shape == (12, 64) and fc.params["weight"].quant.per_tensor
    assert fc.attrs == {"activation": "none"} and sm.attrs == {"beta": 1.0}
    assert conv.source_name.startswith("functional_1/activation/Relu;")
    assert not g.notes


@needs_models
def test_kws_float_weights_match_litert():
    path = model("kws_ref_model_float32.tflite")
    g = graph_from_tflite(path)
    assert [n.kind for n in g.nodes] == ["conv2d"] + ["depthwise_conv2d", "conv2d"] * 4 + [
        "avg_pool2d", "reshape", "fully_connected", "softmax"]
    assert not g.quantized
    assert g.nodes[0].attrs["padding"] == (4, 5, 1, 1)
    it = litert(path)
    details = {d["name"]: d for d in it.get_tensor_details()}
    int8_seen = 0
    for n in g.nodes:
        for p in n.params.values():
            assert p.dtype == "float32" and p.quant is None and p.data.dtype == np.float32
            d = details[p.name]
            raw = it.get_tensor(d["index"])
            if raw.dtype == np.int8:        # stored int8: dequantize with LiteRT's own view of its scales
                int8_seen += 1
                qp = d["quantization_parameters"]
                shape = [1] * raw.ndim
                shape[qp["quantized_dimension"]] = -1
                s = qp["scales"].astype(np.float32).reshape(shape if qp["scales"].size > 1 else [1] * raw.ndim)
                z = qp["zero_points"].astype(np.int32).reshape(shape if qp["zero_points"].size > 1 else
                                                                [1] * raw.ndim)
                expect = (raw.astype(np.int32) - z).astype(np.float32) * s
            else:
                expect = raw
            if n.kind == "depthwise_conv2d" and p.name == n.params["weight"].name:
                expect = expect.reshape(expect.shape[1:])
            np.testing.assert_array_equal(p.data, expect.reshape(p.shape))
    assert int8_seen == 5                   # the five CONV_2D filters (TFLite's dynamic-range optimization)
    assert any("5 int8 weight tensors" in note for note in g.notes)


@needs_models
def test_kws_float_runs_like_litert():
    """The logits of a float forward pass of the imported graph are within 5% of LiteRT's, which runs the int8
    convolutions as hybrid kernels (activations quantized on the fly: about 1-3% apart); a wrong padding of the
    first convolution alone puts them about 18% apart."""
    path = model("kws_ref_model_float32.tflite")
    g = graph_from_tflite(path)
    it = litert(path)
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    logits = g.nodes[-2].outputs[0]
    rng = np.random.default_rng(1)
    for scale in (1, 8, 20):
        x = (rng.normal(size=(49, 10, 1)) * scale - scale).astype(np.float32)
        it.set_tensor(it.get_input_details()[0]["index"], x[None])
        it.invoke()
        ref = it.get_tensor(index[logits])[0]
        ours = forward(g, x, logits)
        assert np.abs(ours - ref).max() < 0.05 * np.abs(ref).max()
        assert np.argmax(ours) == np.argmax(ref)


def _run_tflm(path, xq):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interp = runtime.Interpreter.from_bytes(pathlib.Path(path).read_bytes())
    interp.set_input(np.ascontiguousarray(xq[None]), 0)
    interp.invoke()
    return np.array(interp.get_output(0))[0]


@needs_models
@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite"])
def test_int8_models_run_like_tflm(name):
    """A fake-quantized float forward pass of the imported graph lands within a few output steps of TFLM
    (rounding differences grow through ResNet's adds to about 10 steps at worst; a wrong padding of one
    stride-2 convolution gives 100 and more)."""
    path = model(name)
    g = graph_from_tflite(path)
    rng = np.random.default_rng(2)
    s_in, z_in = float(g.input.quant.scale[0]), int(g.input.quant.zero_point[0])
    s_out, z_out = float(g.output.quant.scale[0]), int(g.output.quant.zero_point[0])
    worst = []
    for _ in range(6):
        xq = rng.integers(-128, 128, g.input_shape).astype(np.int8)
        if name.startswith("ad01") and (MODELS / "ad01_normal_id01_sample.npy").is_file():
            x = np.load(MODELS / "ad01_normal_id01_sample.npy")[rng.integers(40)]
            xq = np.clip(np.round(x / s_in) + z_in, -128, 127).astype(np.int8)
        ref = _run_tflm(path, xq).astype(np.int64)
        ours = forward(g, s_in * (xq.astype(np.float64) - z_in))
        ours_q = np.clip(np.round(ours / s_out) + z_out, -128, 127)
        worst.append(np.abs(ours_q - ref).max())
    assert max(worst) <= 16 and np.mean(worst) <= 6, (name, worst)


@needs_models
def test_resnet_structure():
    g = graph_from_tflite(model("pretrainedResnet_quant.tflite"))
    kinds = [n.kind for n in g.nodes]
    assert kinds.count("conv2d") == 9 and kinds.count("add") == 3
    assert kinds[-4:] == ["avg_pool2d", "reshape", "fully_connected", "softmax"]
    assert g.input_shape == (32, 32, 3) and g.input.quant.scale[0] == 1.0 and g.input.quant.zero_point[0] == -128
    by = {n.name: n for n in g.nodes}
    assert by["conv2d_3"].attrs["stride"] == (2, 2) and by["conv2d_3"].attrs["padding"] == (0, 1, 0, 1)
    assert by["conv2d_5"].params["weight"].shape == (32, 1, 1, 16) and by["conv2d_5"].attrs["padding"] == (0, 0, 0, 0)
    prod = g.producer()
    assert {prod[t].name for t in by["add"].inputs} == {"conv2d", "conv2d_2"}
    assert {prod[t].name for t in by["add_1"].inputs} == {"conv2d_5", "conv2d_4"}
    assert by["add"].attrs == {"activation": "relu"}
    assert by["dense"].params["weight"].quant.per_tensor


@needs_models
@pytest.mark.parametrize("name", ["ad01_fp32.tflite", "ad01_int8.tflite"])
def test_ad01_structure(name):
    g = graph_from_tflite(model(name))
    assert [n.kind for n in g.nodes] == ["fully_connected"] * 10
    widths = [g.nodes[0].params["weight"].shape[1]] + [n.params["weight"].shape[0] for n in g.nodes]
    assert widths == [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert [n.attrs["activation"] for n in g.nodes] == ["relu"] * 9 + ["none"]
    assert [n.name for n in g.nodes] == ["dense"] + [f"dense_{i}" for i in range(1, 10)]


@needs_models
def test_ad01_float_runs_like_litert():
    path = model("ad01_fp32.tflite")
    g = graph_from_tflite(path)
    it = litert(path)
    xs = np.load(MODELS / "ad01_normal_id01_sample.npy")[:3] if (MODELS / "ad01_normal_id01_sample.npy").is_file() \
        else np.random.default_rng(0).normal(size=(3, 640))
    for x in xs.astype(np.float32):
        it.set_tensor(it.get_input_details()[0]["index"], x[None])
        it.invoke()
        ref = it.get_tensor(it.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(forward(g, x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


# ------------------------------------------------------------------------------------ built models
def _q(rng, shape):
    return rng.integers(-127, 128, shape)


def test_dequantize_op_on_constants_matches_litert(tmp_path):
    """DEQUANTIZE of int8 weights (per channel, conv axis 0 and depthwise axis 3) and of float16 weights
    disappears; the float32 weights equal LiteRT's dequantized tensors bit for bit."""
    rng = np.random.default_rng(3)
    m = ModelBuilder()
    x = m.tensor("x", (1, 6, 6, 3), signature=(-1, 6, 6, 3))
    cq = m.tensor("cw_q", (4, 3, 3, 3), "int8", data=_q(rng, (4, 3, 3, 3)), scale=rng.uniform(1e-3, 0.1, 4),
                  zero_point=0, quantized_dimension=0)
    cw = m.tensor("cw", (4, 3, 3, 3))
    cb = m.tensor("cb", (4,), data=rng.normal(size=4))
    h = m.tensor("model/conv2d/Relu", (1, 6, 6, 4))
    dq = m.tensor("dw_q", (1, 3, 3, 8), "int8", data=_q(rng, (1, 3, 3, 8)), scale=rng.uniform(1e-3, 0.1, 8),
                  zero_point=rng.integers(-3, 4, 8), quantized_dimension=3)
    dw = m.tensor("dw", (1, 3, 3, 8))
    h2 = m.tensor("model/depthwise_conv2d/Relu6", (1, 2, 2, 8))
    fq = m.tensor("fw_h", (5, 32), "float16", data=rng.normal(size=(5, 32)))
    fw = m.tensor("fw", (5, 32))
    y = m.tensor("model/dense/BiasAdd", (1, 5), signature=(-1, 5))
    m.op("DEQUANTIZE", [cq], [cw])
    m.op("CONV_2D", [x, cw, cb], [h], ("Conv2DOptions", {"padding": "same", "stride_w": 1, "stride_h": 1,
                                                         "fused_activation_function": "relu",
                                                         "dilation_w_factor": 1, "dilation_h_factor": 1}))
    m.op("DEQUANTIZE", [dq], [dw])
    db = m.tensor("db", (8,), data=rng.normal(size=8))
    m.op("DEPTHWISE_CONV_2D", [h, dw, db], [h2],
         ("DepthwiseConv2DOptions", {"padding": "valid", "stride_w": 2, "stride_h": 2, "depth_multiplier": 2,
                                     "fused_activation_function": "relu6", "dilation_w_factor": 1,
                                     "dilation_h_factor": 1}))
    m.op("DEQUANTIZE", [fq], [fw])
    m.op("FULLY_CONNECTED", [h2, fw, None], [y], ("FullyConnectedOptions", {}))
    buf = m.build([x], [y])
    g = graph_from_tflite(write(tmp_path, buf))
    assert [n.kind for n in g.nodes] == ["conv2d", "depthwise_conv2d", "fully_connected"]
    assert [n.name for n in g.nodes] == ["conv2d", "depthwise_conv2d", "dense"]
    conv, dwn, fc = g.nodes
    assert dwn.attrs == {"multiplier": 2, "stride": (2, 2), "dilation": (1, 1), "padding": (0, 0, 0, 0),
                         "activation": "relu6"}
    it = litert(buf)
    x_val = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    it.set_tensor(x.index, x_val)
    it.invoke()
    np.testing.assert_array_equal(conv.params["weight"].data, it.get_tensor(cw.index))
    np.testing.assert_array_equal(dwn.params["weight"].data, it.get_tensor(dw.index).reshape(3, 3, 8))
    np.testing.assert_array_equal(fc.params["weight"].data, it.get_tensor(fw.index))
    assert all(p.dtype == "float32" and p.data.dtype == np.float32 for n in g.nodes for p in n.params.values())
    assert np.all(fc.params["bias"].data == 0) and fc.params["bias"].shape == (5,)
    assert any("2 DEQUANTIZE operators" in s for s in g.notes) and any("float16" in s for s in g.notes)
    assert any("zero bias" in s for s in g.notes)
    np.testing.assert_allclose(forward(g, x_val[0]), it.get_tensor(y.index)[0], rtol=1e-5, atol=1e-5)


def test_hybrid_weights_are_dequantized(tmp_path):
    rng = np.random.default_rng(4)
    m = ModelBuilder()
    x = m.tensor("x", (1, 16))
    q = _q(rng, (3, 16))
    s = rng.uniform(1e-3, 1e-1, 3).astype(np.float32)
    w = m.tensor("w", (3, 16), "int8", data=q, scale=s, zero_point=0, quantized_dimension=0)
    b = m.tensor("b", (3,), data=[0.5, -1, 2])
    y = m.tensor("y", (1, 3))
    m.op("FULLY_CONNECTED", [x, w, b], [y], ("FullyConnectedOptions", {"fused_activation_function": "relu_n1_to_1"}))
    g = graph_from_tflite(write(tmp_path, m.build([x], [y])))
    (fc,) = g.nodes
    expect = (q.astype(np.int32)).astype(np.float32) * s[:, None]
    np.testing.assert_array_equal(fc.params["weight"].data, expect)
    assert fc.params["weight"].dtype == "float32" and fc.attrs["activation"] == "relu_n1_to_1"
    assert fc.name == "fully_connected_0"
    assert any("hybrid" in note for note in g.notes)


def _int8_conv_model(act_in="float32"):
    """QUANTIZE -> CONV_2D (int8, per-channel) -> MEAN -> DEQUANTIZE: an int8 model with float I/O."""
    rng = np.random.default_rng(5)
    m = ModelBuilder()
    x = m.tensor("serving_default_x:0", (1, 5, 5, 2), act_in, signature=(-1, 5, 5, 2))
    xq = m.tensor("xq", (1, 5, 5, 2), "int8", scale=0.02, zero_point=3)
    w = m.tensor("model/conv/Conv2D", (4, 3, 3, 2), "int8", data=_q(rng, (4, 3, 3, 2)),
                 scale=rng.uniform(1e-3, 1e-2, 4), zero_point=0)
    b = m.tensor("bias", (4,), "int32", data=rng.integers(-100, 100, 4), scale=rng.uniform(1e-5, 1e-4, 4),
                 zero_point=0)
    h = m.tensor("model/conv/Relu", (1, 3, 3, 4), "int8", scale=0.05, zero_point=-128)
    axes = m.tensor("axes", (2,), "int32", data=[-3, 2])
    r = m.tensor("model/global_average_pooling2d/Mean", (1, 4), "int8", scale=0.05, zero_point=-128)
    y = m.tensor("StatefulPartitionedCall:0", (1, 4), "float32")
    m.op("QUANTIZE", [x], [xq])
    m.op("CONV_2D", [xq, w, b], [h], ("Conv2DOptions", {"padding": "valid", "stride_w": 1, "stride_h": 1,
                                                        "fused_activation_function": "relu",
                                                        "dilation_w_factor": 1, "dilation_h_factor": 1}))
    m.op("MEAN", [h, axes], [r], ("ReducerOptions", {"keep_dims": False}))
    m.op("DEQUANTIZE", [r], [y])
    return m, x, y


def test_int8_model_with_quantize_and_dequantize(tmp_path):
    m, x, y = _int8_conv_model()
    g = graph_from_tflite(write(tmp_path, m.build([x], [y])))
    assert [n.kind for n in g.nodes] == ["quantize", "conv2d", "mean", "dequantize"]
    assert [n.name for n in g.nodes] == ["quantize_0", "conv", "global_average_pooling2d", "dequantize_3"]
    assert g.input.dtype == "float32" and g.output.dtype == "float32" and g.quantized
    q, conv, mean, dq = g.nodes
    assert g.tensors[q.outputs[0]].dtype == "int8" and g.tensors[q.outputs[0]].quant.zero_point[0] == 3
    w = conv.params["weight"]
    assert w.dtype == "int8" and w.quant.axis == 0 and w.quant.scale.size == 4
    assert conv.params["bias"].dtype == "int32" and conv.params["bias"].quant.scale.size == 4
    assert mean.attrs == {"axes": (0, 1), "keep_dims": False}
    assert g.tensors[dq.inputs[0]].shape == (4,)


def test_shape_ops(tmp_path):
    """PAD, MAX_POOL_2D, CONCATENATION, SQUEEZE, RESHAPE (options only), ADD, SOFTMAX, and a standalone RELU
    fused into the ADD before it."""
    m = ModelBuilder()
    x = m.tensor("x", (1, 4, 4, 3), signature=(-1, 4, 4, 3))
    pads = m.tensor("pads", (4, 2), "int64", data=[[0, 0], [1, 2], [0, 1], [0, 0]])
    p = m.tensor("model/zero_padding2d/Pad", (1, 7, 5, 3))
    mp = m.tensor("model/max_pooling2d/MaxPool", (1, 3, 2, 3))
    c = m.tensor("model/concatenate/concat", (1, 3, 2, 6))
    a = m.tensor("model/add/add", (1, 3, 2, 6))
    ar = m.tensor("model/re_lu/Relu", (1, 3, 2, 6))
    pool = m.tensor("model/global_max/Mean", (1, 1, 1, 6))
    axes = m.tensor("axes", (2,), "int32", data=[1, 2])
    sq = m.tensor("model/squeeze/Squeeze", (1, 6))
    rs = m.tensor("model/reshape/Reshape", (1, 2, 3))
    rs2 = m.tensor("model/flatten/Reshape", (1, 6))
    y = m.tensor("Identity", (1, 6))
    m.op("PAD", [x, pads], [p])
    m.op("MAX_POOL_2D", [p], [mp], ("Pool2DOptions", {"padding": "valid", "stride_w": 2, "stride_h": 2,
                                                       "filter_width": 2, "filter_height": 3}))
    m.op("CONCATENATION", [mp, mp], [c], ("ConcatenationOptions", {"axis": -1}))
    m.op("ADD", [c, c], [a], ("AddOptions", {}))
    m.op("RELU", [a], [ar])
    m.op("MEAN", [ar, axes], [pool], ("ReducerOptions", {"keep_dims": True}))
    m.op("SQUEEZE", [pool], [sq], ("SqueezeOptions", {"squeeze_dims": [1, -2]}))
    m.op("RESHAPE", [sq], [rs], ("ReshapeOptions", {"new_shape": [-1, 2, 3]}))
    m.op("RESHAPE", [rs, m.tensor("shape", (2,), "int32", data=[1, 6])], [rs2])
    m.op("SOFTMAX", [rs2], [y], ("SoftmaxOptions", {"beta": 0.5}))
    buf = m.build([x], [y])
    g = graph_from_tflite(write(tmp_path, buf))
    assert [n.kind for n in g.nodes] == ["pad", "max_pool2d", "concat", "add", "mean", "reshape", "reshape",
                                         "reshape", "softmax"]
    by = {n.kind + str(i): n for i, n in enumerate(g.nodes)}
    assert by["pad0"].attrs == {"pads": ((1, 2), (0, 1), (0, 0))} and by["pad0"].name == "zero_padding2d"
    assert by["max_pool2d1"].attrs == {"filter": (3, 2), "stride": (2, 2), "padding": (0, 0, 0, 0),
                                       "activation": "none"}
    assert by["concat2"].attrs == {"axis": 2, "activation": "none"}
    assert by["add3"].attrs == {"activation": "relu"} and by["add3"].outputs == ["model/re_lu/Relu"]
    assert "model/add/add" not in g.tensors
    assert by["mean4"].attrs == {"axes": (0, 1), "keep_dims": True}
    assert by["reshape5"].attrs == {"shape": (6,)} and by["reshape6"].attrs == {"shape": (2, 3)}
    assert by["reshape7"].attrs == {"shape": (6,)}
    assert by["softmax8"].attrs == {"beta": 0.5} and by["softmax8"].name == "softmax_9"
    assert any("RELU" in s and "fused" in s for s in g.notes)
    it = litert(buf)
    xv = np.random.default_rng(6).normal(size=(1, 4, 4, 3)).astype(np.float32)
    it.set_tensor(x.index, xv)
    it.invoke()
    np.testing.assert_allclose(forward(g, xv[0]), it.get_tensor(y.index)[0], rtol=1e-6, atol=1e-7)


def test_same_padding_rule():
    # tensorflow/lite/kernels/padding.h: total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)
    assert tfl._pad_same(49, 10, 2, 1, 25) == (4, 5)
    assert tfl._pad_same(10, 4, 2, 1, 5) == (1, 1)
    assert tfl._pad_same(32, 3, 2, 1, 16) == (0, 1)
    assert tfl._pad_same(7, 3, 1, 2, 7) == (2, 2)
    assert tfl._pad_same(5, 1, 2, 1, 3) == (0, 0)
    assert tfl._out_size(0, 49, 10, 2, 1) == 25 and tfl._out_size(1, 49, 10, 2, 1) == 20


def test_dilated_same_conv(tmp_path):
    rng = np.random.default_rng(7)
    m = ModelBuilder()
    x = m.tensor("x", (1, 9, 8, 2))
    w = m.tensor("w", (3, 3, 3, 2), data=rng.normal(size=(3, 3, 3, 2)))
    b = m.tensor("b", (3,), data=rng.normal(size=3))
    y = m.tensor("y", (1, 5, 4, 3))
    m.op("CONV_2D", [x, w, b], [y], ("Conv2DOptions", {"padding": "same", "stride_w": 2, "stride_h": 2,
                                                          "dilation_w_factor": 3, "dilation_h_factor": 2}))
    buf = m.build([x], [y])
    g = graph_from_tflite(write(tmp_path, buf))
    (conv,) = g.nodes
    # H: total = 4 * 2 + 2 * 2 + 1 - 9 = 4; W: 3 * 2 + 2 * 3 + 1 - 8 = 5
    assert conv.attrs["padding"] == (2, 2, 2, 3) and conv.attrs["dilation"] == (2, 3)
    it = litert(buf)
    xv = rng.normal(size=(1, 9, 8, 2)).astype(np.float32)
    it.set_tensor(x.index, xv)
    it.invoke()
    np.testing.assert_allclose(forward(g, xv[0]), it.get_tensor(y.index)[0], rtol=1e-5, atol=1e-5)


def test_names_unique_case_insensitively_and_tensor_names_unique(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    w1 = m.tensor("w", (4, 4), data=np.eye(4))
    w2 = m.tensor("w", (4, 4), data=np.eye(4))
    h = m.tensor("model/Dense/BiasAdd", (1, 4))
    y = m.tensor("model/dense/BiasAdd", (1, 4))
    m.op("FULLY_CONNECTED", [x, w1, None], [h])
    m.op("FULLY_CONNECTED", [h, w2, None], [y])
    g = graph_from_tflite(write(tmp_path, m.build([x], [y])))
    assert [n.name for n in g.nodes] == ["dense", "dense_2"]
    assert len({g.nodes[0].params["weight"].name, g.nodes[1].params["weight"].name}) == 2


def test_long_layer_names_are_shortened(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    w = m.tensor("w", (4, 4), data=np.eye(4))
    layer = "dense_" + "with_a_very_long_descriptive_name_" * 3
    y = m.tensor(f"model/{layer}/BiasAdd", (1, 4))
    m.op("FULLY_CONNECTED", [x, w, None], [y])
    g = graph_from_tflite(write(tmp_path, m.build([x], [y])))
    (fc,) = g.nodes
    assert len(fc.name) <= 32 and fc.name.startswith("dense_with_a_very") and fc.name == tfl.short_name(layer)
    assert fc.source_name == f"model/{layer}/BiasAdd"


# ------------------------------------------------------------------------------------ refusals
def _error(tmp_path, buf, *fragments, name="m.tflite"):
    with pytest.raises(DarbgenError) as e:
        graph_from_tflite(write(tmp_path, buf, name))
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def _fc_model(act="float32", op="FULLY_CONNECTED", options=("FullyConnectedOptions", {}), batch=1, scale=0.1):
    m = ModelBuilder()
    q = dict(scale=scale, zero_point=0) if act != "float32" else {}
    x = m.tensor("x", (batch, 4), act, **q)
    w = m.tensor("w", (3, 4), "int8" if act != "float32" else "float32", data=np.ones((3, 4)),
                 **({"scale": 0.01} if act != "float32" else {}))
    y = m.tensor("model/dense/BiasAdd", (batch, 3), act, **q)
    m.op(op, [x, w, None], [y], options)
    return m.build([x], [y])


def test_truncated_file(tmp_path):
    buf = _fc_model()
    for cut in (len(buf) // 2, len(buf) - 9, 40):
        _error(tmp_path, buf[:cut], "m.tflite", "is not a valid TensorFlow Lite model")


def test_not_a_flatbuffer(tmp_path):
    _error(tmp_path, b"hello, this is a text file, not a model\n" * 3, "m.tflite", "not a TensorFlow Lite flatbuffer")
    _error(tmp_path, b"", "not a TensorFlow Lite flatbuffer")


def test_wrong_identifier(tmp_path):
    buf = bytearray(_fc_model())
    buf[4:8] = b"TFL2"
    _error(tmp_path, bytes(buf), "b'TFL2'", "TFL3")


def test_missing_and_oversized_file(tmp_path, monkeypatch):
    with pytest.raises(DarbgenError, match="no such file"):
        graph_from_tflite(tmp_path / "absent.tflite")
    with pytest.raises(DarbgenError, match="is not a file"):
        graph_from_tflite(tmp_path)
    monkeypatch.setattr(tfl, "MAX_FILE_BYTES", 100)
    _error(tmp_path, _fc_model(), "up to 0 MB")


def test_corrupt_bytes_give_one_line_errors(tmp_path):
    """Flipped bytes anywhere in the file: a DarbgenError (or, when harmless, a graph), never a crash."""
    buf = _fc_model(act="int8")
    rng = np.random.default_rng(8)
    for k in range(150):
        b = bytearray(buf)
        for pos in rng.integers(8, len(b), 1 + k % 3):
            b[pos] = int(rng.integers(0, 256))
        p = write(tmp_path, bytes(b))
        try:
            graph_from_tflite(p)
        except DarbgenError as e:
            assert "\n" not in str(e) and str(p) in str(e)


def test_buffer_outside_the_file(tmp_path):
    buf = bytearray(_fc_model())
    # the weight buffer is the first data vector: make its length run past the end of the file
    data = np.ones((3, 4), np.float32).tobytes()
    at = bytes(buf).index(data)
    buf[at - 4:at] = (len(buf) * 2).to_bytes(4, "little")
    _error(tmp_path, bytes(buf), "m.tflite", "runs past the end of the file")


def test_custom_op(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    y = m.tensor("model/my_layer/MyOp", (1, 4))
    m.op(("CUSTOM", "MyFancyOp"), [x], [y])
    _error(tmp_path, m.build([x], [y]), "operator 0 (CUSTOM)", "'MyFancyOp'", "model/my_layer/MyOp",
                 "CONV_2D")


def test_unsupported_op(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    h = m.tensor("h", (1, 4))
    y = m.tensor("model/activation/Tanh", (1, 4))
    m.op("RELU6", [x], [h])       # standalone after the input: not fusable
    m.op("TANH", [h], [y])
    _error(tmp_path, m.build([x], [y]), "operator 1 (TANH)", "model/activation/Tanh", "FULLY_CONNECTED")
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    y = m.tensor("y", (1, 4))
    m.op("RELU6", [x], [y])
    _error(tmp_path, m.build([x], [y]), "operator 0 (RELU6)", "fuse", "model input")


def test_unfusable_relu(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    w = m.tensor("w", (4, 4), "int8", data=np.eye(4), scale=0.01)
    h = m.tensor("h", (1, 4), "int8", scale=0.1, zero_point=0)
    y = m.tensor("y", (1, 4), "int8", scale=0.2, zero_point=-128)
    m.op("FULLY_CONNECTED", [x, w, None], [h])
    m.op("RELU", [h], [y])
    _error(tmp_path, m.build([x], [y]), "operator 1 (RELU)", "different quantization")


def test_fused_tanh(tmp_path):
    _error(tmp_path, _fc_model(options=("FullyConnectedOptions", {"fused_activation_function": "tanh"})),
           "operator 0 (FULLY_CONNECTED)", "fused activation TANH", "RELU6")


def test_uint8_and_int16_activations(tmp_path):
    _error(tmp_path, _fc_model(act="uint8"), "uint8", "legacy", "int8")
    _error(tmp_path, _fc_model(act="int16"), "int16", "int8")


def test_batch_other_than_one(tmp_path):
    _error(tmp_path, _fc_model(batch=2), "batch dimension 2")


def test_multiple_subgraphs(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4))
    w = m.tensor("w", (3, 4), data=np.ones((3, 4)))
    y = m.tensor("y", (1, 3))
    m.op("FULLY_CONNECTED", [x, w, None], [y])
    _error(tmp_path, m.build([x], [y], subgraphs=2), "2 subgraphs", "one subgraph")


def test_grouped_conv_and_broadcast_add_and_two_inputs(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 4, 4, 4))
    w = m.tensor("w", (4, 1, 1, 2), data=np.ones((4, 1, 1, 2)))
    y = m.tensor("y", (1, 4, 4, 4))
    m.op("CONV_2D", [x, w, None], [y], ("Conv2DOptions", {"padding": "valid", "stride_w": 1, "stride_h": 1}))
    _error(tmp_path, m.build([x], [y]), "operator 0 (CONV_2D)", "grouped")
    m = ModelBuilder()
    x = m.tensor("x", (1, 4, 4, 4))
    c = m.tensor("c", (1, 1, 1, 4))
    y = m.tensor("y", (1, 4, 4, 4))
    m.op("ADD", [x, c], [y], ("AddOptions", {}))
    m.op("ADD", [y, y], [m.tensor("z", (1, 4, 4, 4))], ("AddOptions", {}))
    _error(tmp_path, m.build([x, c], [y]), "2 inputs")
    m = ModelBuilder()
    x = m.tensor("x", (1, 4, 4, 4))
    c = m.tensor("c", (1, 1, 1, 4), data=np.ones(4))
    y = m.tensor("y", (1, 4, 4, 4))
    m.op("ADD", [x, c], [y], ("AddOptions", {}))
    _error(tmp_path, m.build([x], [y]), "operator 0 (ADD)", "is a constant")


def test_fc_over_rows_and_requantize(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 5, 4))
    w = m.tensor("w", (3, 4), data=np.ones((3, 4)))
    y = m.tensor("y", (1, 5, 3))
    m.op("FULLY_CONNECTED", [x, w, None], [y], ("FullyConnectedOptions", {"keep_num_dims": True}))
    _error(tmp_path, m.build([x], [y]), "operator 0 (FULLY_CONNECTED)", "flattens each sample")
    m = ModelBuilder()
    x = m.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    y = m.tensor("y", (1, 4), "int8", scale=0.2, zero_point=0)
    m.op("QUANTIZE", [x], [y])
    _error(tmp_path, m.build([x], [y]), "operator 0 (QUANTIZE)", "requantization")


def test_missing_tflite_package(tmp_path, monkeypatch):
    p = write(tmp_path, _fc_model())
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(DarbgenError, match=r"pip install tflite.*darbgen\[tflite\]"):
        graph_from_tflite(p)


def test_reshape_without_shape_and_fusable_int8_relu(tmp_path):
    m = ModelBuilder()
    x = m.tensor("x", (1, 2, 3))
    y = m.tensor("y", (1, 6))
    m.op("RESHAPE", [x], [y])
    _error(tmp_path, m.build([x], [y]), "operator 0 (RESHAPE)", "neither a shape input nor a new_shape")
    m = ModelBuilder()
    x = m.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    w = m.tensor("w", (4, 4), "int8", data=np.eye(4), scale=[0.01, 0.02, 0.03, 0.04], quantized_dimension=0)
    h = m.tensor("model/dense/BiasAdd", (1, 4), "int8", scale=0.1, zero_point=5)
    y = m.tensor("model/re_lu/Relu", (1, 4), "int8", scale=0.1, zero_point=5)
    m.op("FULLY_CONNECTED", [x, w, None], [h])
    m.op("RELU", [h], [y])
    g = graph_from_tflite(write(tmp_path, m.build([x], [y])))
    (fc,) = g.nodes
    assert fc.attrs == {"activation": "relu"} and fc.outputs == ["model/re_lu/Relu"] and fc.name == "dense"
    b = fc.params["bias"]
    assert b.dtype == "int32" and np.all(b.data == 0)
    np.testing.assert_array_equal(b.quant.scale, np.float32([0.001, 0.002, 0.003, 0.004]))


def test_int8_depthwise_multiplier_and_avg_pool_same_run_like_tflm(tmp_path):
    """int8 DEPTHWISE_CONV_2D with multiplier 2 (per-channel scales along the squeezed axis 2) and an
    AVERAGE_POOL_2D with SAME padding: a fake-quantized forward pass of the imported graph is within one step of
    TFLM."""
    rng = np.random.default_rng(9)
    m = ModelBuilder()
    x = m.tensor("x", (1, 7, 6, 3), "int8", scale=0.05, zero_point=-10)
    w = m.tensor("dw", (1, 3, 3, 6), "int8", data=_q(rng, (1, 3, 3, 6)), scale=rng.uniform(2e-3, 1e-2, 6),
                 zero_point=0, quantized_dimension=3)
    b = m.tensor("db", (6,), "int32", data=rng.integers(-200, 200, 6), scale=0.05 * np.float32(1e-2), zero_point=0)
    h = m.tensor("model/depthwise_conv2d/Relu6", (1, 4, 3, 6), "int8", scale=6 / 255, zero_point=-128)
    y = m.tensor("model/average_pooling2d/AvgPool", (1, 2, 2, 6), "int8", scale=6 / 255, zero_point=-128)
    # per-channel bias scales must be input scale * weight scale for TFLM
    sw = np.asarray(w.scale, np.float32)
    b.scale = (np.float32(0.05) * sw).astype(np.float32)
    m.op("DEPTHWISE_CONV_2D", [x, w, b], [h],
         ("DepthwiseConv2DOptions", {"padding": "same", "stride_w": 2, "stride_h": 2, "depth_multiplier": 2,
                                     "fused_activation_function": "relu6", "dilation_w_factor": 1,
                                     "dilation_h_factor": 1}))
    m.op("AVERAGE_POOL_2D", [h], [y], ("Pool2DOptions", {"padding": "same", "stride_w": 2, "stride_h": 2,
                                                          "filter_width": 3, "filter_height": 3}))
    p = write(tmp_path, m.build([x], [y]))
    g = graph_from_tflite(p)
    dw, pool = g.nodes
    # H 7 -> 4: total 3 * 2 + 3 - 7 = 2; W 6 -> 3: total 2 * 2 + 3 - 6 = 1 (the odd one after)
    assert dw.attrs == {"multiplier": 2, "stride": (2, 2), "dilation": (1, 1), "padding": (1, 1, 0, 1),
                        "activation": "relu6"}
    assert dw.params["weight"].shape == (3, 3, 6) and dw.params["weight"].quant.axis == 2
    assert pool.attrs == {"filter": (3, 3), "stride": (2, 2), "padding": (0, 1, 1, 1), "activation": "none"}
    for _ in range(5):
        xq = rng.integers(-128, 128, (7, 6, 3)).astype(np.int8)
        ref = _run_tflm(p, xq).astype(np.int64)
        ours = forward(g, 0.05 * (xq.astype(np.float64) + 10))
        ours_q = np.clip(np.round(ours / (6 / 255)) - 128, -128, 127)
        assert np.abs(ours_q - ref).max() <= 1
