"""The ONNX importer: models built here with onnx.helper, each checked against
onnxruntime (darbgen's float64 forward within 1e-5, the generated float32 C
within 1e-4), an int8 digits classifier built from an .onnx file, and the
refusals."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import need_module

from darbgen.codegen import generate
from darbgen.codegen.names import unique_identifiers
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Conv1D, Conv2D, DepthwiseConv2D, Flatten
from darbgen.verify import verify


def _need(module):
    return need_module(module, "the ONNX importer tests need it", "onnx onnxruntime")


onnx = _need("onnx")
ort = _need("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from darbgen.importers.onnx import model_from_onnx  # noqa: E402

FLOAT = TensorProto.FLOAT


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def node(op, inputs, outputs, name=None, **attrs):
    return helper.make_node(op, inputs, outputs, name=name or f"/{outputs[0]}/{op}", **attrs)


def graph_model(nodes, in_shape, out_shape, inits, opset=17, name="net"):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    onnx.checker.check_model(m)
    return m


def run_ort(m, x):
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def close(got, want, rel):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= rel, err


def check(m, x, gcc, sample_x=None, sample_y=None):
    """onnxruntime vs darbgen's forward (1e-5) and its float32 C (1e-4); the
    model. ``sample_x`` / ``sample_y`` map onnxruntime's tensors to darbgen's
    per-sample rows (default: batch first, flattened)."""
    x = x.astype(np.float32)
    xs = x.reshape(len(x), -1) if sample_x is None else sample_x(x)
    want = run_ort(m, x)
    want = want.reshape(len(xs), -1) if sample_y is None else sample_y(want)
    model = model_from_onnx(m)
    close(model.forward(xs), want, 1e-5)
    module = generate(model, dtype="float32", kernel="dense", prefix="onnxm")
    result = verify(module, inputs={"(model)": xs}, cc=gcc, n_random=2)
    assert result.ok, result.describe()
    close(result.outputs["(model)"][:len(xs)], want, 1e-4)
    return model


def w(rng, *shape, scale=0.5):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


# ----------------------------------------------------------------------------- every op kind against onnxruntime

def test_mlp_gemm_and_matmul_add(rng, gcc):
    nodes = [node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1, alpha=0.5, beta=2.0),
             node("Relu", ["h1"], ["a1"]),
             node("MatMul", ["a1", "w2"], ["m2"]),
             node("Add", ["m2", "b2"], ["h2"]),
             node("Tanh", ["h2"], ["a2"]),
             node("Dropout", ["a2"], ["d2"]),
             node("Gemm", ["d2", "w3", "b3"], ["h3"]),           # transB = 0: B is (in, out)
             node("Identity", ["h3"], ["i3"]),
             node("Sigmoid", ["i3"], ["y"])]
    inits = [const("w1", w(rng, 16, 12)), const("b1", w(rng, 16)), const("w2", w(rng, 16, 10)),
             const("b2", w(rng, 10)), const("w3", w(rng, 10, 4)), const("b3", w(rng, 1, 4))]
    model = check(graph_model(nodes, ["N", 12], ["N", 4], inits), rng.standard_normal((9, 12)), gcc)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Activation"] * 3
    assert model.layers[0].name == "/h1/Gemm" and model.input_shape == (12,)


def test_cnn_conv_bn_relu_maxpool_flatten_gemm_softmax(rng, gcc):
    nodes = [node("Conv", ["x", "cw", "cb"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"], epsilon=1e-3),
             node("Relu", ["n1"], ["r1"]),
             node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Conv", ["p1", "cw2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
             node("Relu", ["c2"], ["r2"]),
             node("Flatten", ["r2"], ["f"]),
             node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
             node("Softmax", ["logits"], ["y"], axis=-1)]
    inits = [const("cw", w(rng, 4, 2, 3, 3)), const("cb", w(rng, 4)), const("g", 1 + w(rng, 4)),
             const("be", w(rng, 4)), const("mu", w(rng, 4)), const("var", 0.5 + np.abs(w(rng, 4))),
             const("cw2", w(rng, 5, 4, 3, 3)), const("fw", w(rng, 3, 5 * 2 * 2)), const("fb", w(rng, 3))]
    model = check(graph_model(nodes, ["N", 2, 8, 8], ["N", 3], inits), rng.standard_normal((6, 2, 8, 8)), gcc)
    kinds = [type(layer) for layer in model.layers]
    assert kinds[0] is Conv2D and Flatten in kinds and model.input_shape == (2, 8, 8)   # batch norm folded


def test_conv1d_dilation_pads_and_relu_after_max_pool(rng, gcc):
    nodes = [node("Conv", ["x", "cw", "cb"], ["c1"], dilations=[2], pads=[1, 2]),
             node("MaxPool", ["c1"], ["p1"], kernel_shape=[2], strides=[2]),
             node("Relu", ["p1"], ["r1"]),                  # commutes with max pooling: fused into the conv
             node("Conv", ["r1", "cw2", "cb2"], ["c2"], strides=[2]),
             node("Relu", ["c2"], ["r2"]),
             node("Reshape", ["r2", "shape"], ["f"]),
             node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    inits = [const("cw", w(rng, 4, 3, 3)), const("cb", w(rng, 4)), const("cw2", w(rng, 5, 4, 3)),
             const("cb2", w(rng, 5)), const("shape", [0, -1], np.int64), const("fw", w(rng, 2, 5 * 4)),
             const("fb", w(rng, 2))]
    model = check(graph_model(nodes, ["N", 3, 20], ["N", 2], inits), rng.standard_normal((5, 3, 20)), gcc)
    assert type(model.layers[0]) is Conv1D and model.input_shape == (3, 20)


def test_depthwise_bn_relu6_global_average_pool(rng, gcc):
    nodes = [node("Conv", ["x", "dw", "db"], ["c1"], group=3, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"]),
             node("Clip", ["n1", "lo", "hi"], ["r1"]),
             node("Conv", ["r1", "pw", "pb"], ["c2"], kernel_shape=[1, 1]),
             node("Clip", ["c2", "lo"], ["r2"]),               # min 0, no max: relu
             node("GlobalAveragePool", ["r2"], ["gap"]),
             node("Flatten", ["gap"], ["f"]),
             node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    inits = [const("dw", w(rng, 6, 1, 3, 3)), const("db", w(rng, 6)), const("g", 1 + w(rng, 6)),
             const("be", w(rng, 6)), const("mu", w(rng, 6)), const("var", 0.5 + np.abs(w(rng, 6))),
             const("lo", 0.0), const("hi", 6.0), const("pw", w(rng, 8, 6, 1, 1)), const("pb", w(rng, 8)),
             const("fw", w(rng, 3, 8)), const("fb", w(rng, 3))]
    x = 4 * rng.standard_normal((5, 3, 9, 9))           # large enough that relu6 clips
    model = check(graph_model(nodes, ["N", 3, 9, 9], ["N", 3], inits), x, gcc)
    assert type(model.layers[0]) is DepthwiseConv2D
    assert [getattr(layer, "kind", None) for layer in model.layers][1:4:2] == ["relu6", "relu"]


def test_average_pool_with_padding_and_reshape(rng, gcc):
    nodes = [node("AveragePool", ["x"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("AveragePool", ["p1"], ["p2"], kernel_shape=[2, 2], count_include_pad=1),   # no padding: same
             node("Reshape", ["p2", "shape"], ["f"]),
             node("MatMul", ["f", "fw"], ["m"]),
             node("Add", ["fb", "m"], ["y"])]
    inits = [const("shape", [-1, 2 * 3 * 3], np.int64), const("fw", w(rng, 18, 4)), const("fb", w(rng, 4))]
    check(graph_model(nodes, ["N", 2, 7, 7], ["N", 4], inits), rng.standard_normal((4, 2, 7, 7)), gcc)


@pytest.mark.parametrize("batch", ["N", 1])
def test_view_batch_minus_one_as_torchscript_exports_it(rng, gcc, batch):
    """x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat, Reshape (a
    symbolic batch), or a Reshape to (1, -1) when the batch is fixed."""
    nodes = [node("Conv", ["x", "cw", "cb"], ["c"], kernel_shape=[3, 3]),
             node("Relu", ["c"], ["r"])]
    if batch == "N":
        nodes += [node("Shape", ["r"], ["s"]),
                  node("Gather", ["s", "zero"], ["n"], axis=0),
                  node("Unsqueeze", ["n", "ax0"], ["n1"]),
                  node("Concat", ["n1", "minus1"], ["shape"], axis=0)]
    inits = [const("cw", w(rng, 3, 2, 3, 3)), const("cb", w(rng, 3)), const("zero", np.array(0), np.int64),
             const("ax0", [0], np.int64), const("minus1", [-1], np.int64), const("fw", w(rng, 4, 3 * 4 * 4)),
             const("fb", w(rng, 4))]
    if batch == 1:
        inits.append(const("shape", [1, -1], np.int64))
    nodes += [node("Reshape", ["r", "shape"], ["f"]), node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    x = rng.standard_normal((3 if batch == "N" else 1, 2, 6, 6))
    model = check(graph_model(nodes, [batch, 2, 6, 6], [batch, 4], inits), x, gcc)
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "Activation", "Flatten", "Dense"]


def lstm_weights(rng, gates, hidden, inputs):
    return (w(rng, 1, gates * hidden, inputs), w(rng, 1, gates * hidden, hidden),
            w(rng, 1, 2 * gates * hidden, scale=0.2))


def test_lstm_batch_first_pytorch_export_last_state(rng, gcc):
    """What torch.onnx writes for nn.LSTM(batch_first=True) returning h_n[-1]: a
    transpose to time first, the LSTM, a squeeze of Y_h (Y and Y_c unused)."""
    wi, wh, b = lstm_weights(rng, 4, 6, 4)
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             node("LSTM", ["xt", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=6),
             node("Squeeze", ["Y_h", "ax0"], ["h"]),
             node("Gemm", ["h", "fw", "fb"], ["y"], transB=1)]
    inits = [const("W", wi), const("R", wh), const("B", b), const("h0", np.zeros((1, 1, 6))),
             const("c0", np.zeros((1, 1, 6))), const("ax0", [0], np.int64), const("fw", w(rng, 3, 6)),
             const("fb", w(rng, 3))]
    m = graph_model(nodes, [1, 120, 4], [1, 3], inits)          # a fixed batch of 1, as exporters often write
    x = rng.standard_normal((1, 120, 4))
    model = check(m, x, gcc)
    assert type(model.layers[0]) is LSTM and not model.layers[0].return_sequences
    assert model.input_shape == (120, 4)


@pytest.mark.parametrize("form", ["gather", "slice"])
def test_lstm_sequence_then_last_step(rng, gcc, form):
    """out, _ = lstm(x); fc(out[:, -1]) as the TorchScript exporter writes it
    (Squeeze, Transpose, Gather), or Y reshaped to (T, N, H) and sliced."""
    wi, wh, b = lstm_weights(rng, 4, 5, 3)
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             node("LSTM", ["xt", "W", "R", "B"], ["Y"], hidden_size=5)]
    if form == "gather":
        nodes += [node("Squeeze", ["Y", "ax1"], ["ys"]),
                  node("Transpose", ["ys"], ["yb"], perm=[1, 0, 2]),
                  node("Gather", ["yb", "last"], ["h"], axis=1)]
    else:
        nodes += [node("Transpose", ["Y"], ["yt"], perm=[0, 2, 1, 3]),
                  node("Reshape", ["yt", "tnh"], ["ys"]),
                  node("Transpose", ["ys"], ["yb"], perm=[1, 0, 2]),
                  node("Slice", ["yb", "last1", "big", "ax1"], ["yl"]),
                  node("Squeeze", ["yl", "ax1"], ["h"])]
    nodes.append(node("Gemm", ["h", "fw", "fb"], ["y"], transB=1))
    inits = [const("W", wi), const("R", wh), const("B", b), const("ax1", [1], np.int64),
             const("last", np.array(-1, np.int64), np.int64), const("last1", [-1], np.int64),
             const("big", [2 ** 62], np.int64), const("tnh", [0, 0, -1], np.int64), const("fw", w(rng, 2, 5)),
             const("fb", w(rng, 2))]
    model = check(graph_model(nodes, ["N", 100, 3], ["N", 2], inits), rng.standard_normal((3, 100, 3)), gcc)
    assert not model.layers[0].return_sequences


def test_gru_sequence_first(rng, gcc):
    """nn.GRU(batch_first=False): the input is (T, N, F), straight into the GRU."""
    wi, wh, b = lstm_weights(rng, 3, 7, 3)
    nodes = [node("GRU", ["x", "W", "R", "B"], ["", "Y_h"], hidden_size=7, linear_before_reset=1),
             node("Squeeze", ["Y_h", "ax0"], ["h"]),
             node("Gemm", ["h", "fw", "fb"], ["y"], transB=1)]
    inits = [const("W", wi), const("R", wh), const("B", b), const("ax0", [0], np.int64), const("fw", w(rng, 2, 7)),
             const("fb", w(rng, 2))]
    x = rng.standard_normal((110, 4, 3))
    model = check(graph_model(nodes, [110, "N", 3], ["N", 2], inits), x, gcc,
                  sample_x=lambda v: v.transpose(1, 0, 2).reshape(v.shape[1], -1))
    assert type(model.layers[0]) is GRU and model.input_shape == (110, 3)


def test_gru_returning_the_sequence_and_layout_1(rng, gcc):
    """Y (T, 1, N, H) as the model's output: every step's state. onnxruntime
    does not run layout = 1, so the batch-first form is checked against this."""
    wi, wh, b = lstm_weights(rng, 3, 4, 2)
    nodes = [node("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=4, linear_before_reset=1)]
    inits = [const("W", wi), const("R", wh), const("B", b)]
    x = rng.standard_normal((100, 3, 2))
    model = check(graph_model(nodes, [100, "N", 2], [100, 1, "N", 4], inits), x, gcc,
                  sample_x=lambda v: v.transpose(1, 0, 2).reshape(3, -1),
                  sample_y=lambda v: v.transpose(2, 0, 1, 3).reshape(3, -1))
    assert model.layers[0].return_sequences and model.output_shape == (100, 4)
    nodes = [node("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=4, linear_before_reset=1, layout=1)]
    batch_first = model_from_onnx(graph_model(nodes, ["N", 100, 2], ["N", 100, 1, 4], inits))
    xb = x.transpose(1, 0, 2).reshape(3, -1)
    np.testing.assert_array_equal(batch_first.forward(xb), model.forward(xb))


def test_qdq_weights_are_dequantized(rng):
    q = rng.integers(-127, 128, (4, 6)).astype(np.int8)
    nodes = [node("DequantizeLinear", ["wq", "ws", "wz"], ["wf"]),
             node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             node("Gemm", ["xd", "wf", "b"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(q, "wq"), const("ws", 0.01), numpy_helper.from_array(np.int8(0), "wz"),
             const("xs", 0.02), numpy_helper.from_array(np.int8(0), "xz"), const("b", w(rng, 4))]
    m = graph_model(nodes, ["N", 6], ["N", 4], inits)
    model = model_from_onnx(m)
    np.testing.assert_allclose(model.layers[0].weight, q * np.float32(0.01), rtol=1e-6)
    x = rng.uniform(-2, 2, (20, 6))
    # the activation's Q/DQ pair is dropped (darbgen quantizes with its own calibration)
    close(model.forward(x), run_ort(m, x), 0.03)


# ----------------------------------------------------------------------------- int8 through darbgen build

@pytest.mark.slow          # a framework round trip with training; the importer tests above are the fast ones
def test_digits_int8_build_agrees_with_onnxruntime(tmp_path, gcc):
    from sklearn.datasets import load_digits

    from darbgen.build import build

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1300], y[:1300], x[1300:], y[1300:]
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((64, 32)) * 0.2, np.zeros(32)
    w2, b2 = rng.standard_normal((32, 10)) * 0.2, np.zeros(10)
    onehot = np.eye(10)[y_train]
    params = [w1, b1, w2, b2]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    for step in range(1, 401):                         # full-batch Adam on the cross entropy
        h = np.maximum(x_train @ w1 + b1, 0)
        z = h @ w2 + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = (p - onehot) / len(x_train)
        dh = (dz @ w2.T) * (h > 0)
        grads = [x_train.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
        for param, g, mv in zip(params, grads, moments):
            mv[0] = 0.9 * mv[0] + 0.1 * g
            mv[1] = 0.999 * mv[1] + 0.001 * g * g
            param -= 0.01 * (mv[0] / (1 - 0.9 ** step)) / (np.sqrt(mv[1] / (1 - 0.999 ** step)) + 1e-8)
    nodes = [node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1), node("Relu", ["h1"], ["a1"]),
             node("Gemm", ["a1", "w2", "b2"], ["z"], transB=1), node("Softmax", ["z"], ["y"], axis=1)]
    inits = [const("w1", w1.T), const("b1", b1), const("w2", w2.T), const("b2", b2)]
    path = tmp_path / "digits.onnx"
    onnx.save(graph_model(nodes, ["N", 64], ["N", 10], inits, name="digits"), path)
    want = run_ort(onnx.load(path), x_test).argmax(axis=1)
    assert np.mean(want == y_test) > 0.9
    r = build(path, dtype="int8", calib=x_train[:200], eval_data=(x_test, y_test))
    assert r.ok and r.model.name == "digits"
    agree = np.mean(r.eval_outputs.argmax(axis=1) == want)
    assert agree >= 0.99, agree
    r2 = build(path, ratio=2, dtype="int8", calib=x_train[:200], eval_data=(x_test, y_test))
    assert r2.ok and r2.report["accuracy"]["c_agrees_with_pruned"] >= 0.97


# ----------------------------------------------------------------------------- names and packaging

def test_names_stay_unique_as_c_identifiers(rng):
    nodes = [node("Gemm", ["x", "w1"], ["h"], name="/fc/Gemm", transB=1),
             node("Relu", ["h"], ["a"], name="fc.gemm"),
             node("Gemm", ["a", "w2"], ["y"], name="", transB=1)]
    m = graph_model(nodes, ["N", 4], ["N", 2], [const("w1", w(rng, 3, 4)), const("w2", w(rng, 2, 3))])
    names = [layer.name for layer in model_from_onnx(m).layers]
    assert len(unique_identifiers(names, "m")) == 3          # no two collide once made C identifiers


def test_import_darbgen_does_not_import_onnx():
    code = "import sys, darbgen, darbgen.build, darbgen.importers.onnx; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ----------------------------------------------------------------------------- refusals

def small(op_nodes, inits, in_shape=("N", 4), out_shape=("N", 2)):
    return graph_model(op_nodes, list(in_shape), list(out_shape), inits)


def test_unknown_op_names_node_and_supported_ops(rng):
    m = small([node("Celu", ["x"], ["y"], name="my_celu")], [], out_shape=("N", 4))
    with pytest.raises(DarbgenError, match=r"'my_celu'.*Celu.*supported ops: Gemm, MatMul"):
        model_from_onnx(m)


def test_grouped_conv_is_refused(rng):
    m = small([node("Conv", ["x", "cw"], ["y"], name="gconv", group=2)], [const("cw", w(rng, 4, 2, 3, 3))],
              ("N", 4, 6, 6), ("N", 4, 4, 4))
    with pytest.raises(DarbgenError, match=r"'gconv' \(Conv\): group = 2 is not supported"):
        model_from_onnx(m)


def test_gru_linear_before_reset_0_is_refused(rng):
    wi, wh, b = lstm_weights(rng, 3, 4, 2)
    m = small([node("GRU", ["x", "W", "R", "B"], ["", "y"], name="gru", hidden_size=4)],
              [const("W", wi), const("R", wh), const("B", b)], (10, "N", 2), (1, "N", 4))
    with pytest.raises(DarbgenError, match="linear_before_reset = 0 is not supported"):
        model_from_onnx(m)


def test_malformed_and_truncated_files(tmp_path, rng):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \xff\xfe\x00\x01" * 3)
    with pytest.raises(DarbgenError, match="is not a valid ONNX model"):
        model_from_onnx(bad)
    data = small([node("Gemm", ["x", "w1"], ["y"], transB=1)], [const("w1", w(rng, 2, 4))]).SerializeToString()
    for cut in (len(data) // 2, len(data) - 7, 5):
        cut_path = tmp_path / f"cut{cut}.onnx"
        cut_path.write_bytes(data[:cut])
        with pytest.raises(DarbgenError, match="is not a valid ONNX model"):
            model_from_onnx(cut_path)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(DarbgenError, match="is not a valid ONNX model"):
        model_from_onnx(empty)


def test_build_loads_onnx_and_reports_broken_files(tmp_path):
    from darbgen.build import load

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(DarbgenError, match="is not a valid ONNX model"):
        load(bad)


def test_missing_onnx_package_is_a_clear_error(monkeypatch, rng):
    m = small([node("Gemm", ["x", "w1"], ["y"], transB=1)], [const("w1", w(rng, 2, 4))])
    monkeypatch.setitem(sys.modules, "onnx", None)          # `import onnx` now raises ImportError
    with pytest.raises(DarbgenError, match="pip install onnx"):
        model_from_onnx(m)


@pytest.mark.parametrize("case", ["branch", "clip", "softmax_axis", "transpose", "bidirectional", "count_pad",
                                  "batch_times_3"])
def test_other_refusals_are_clear(rng, case):
    if case == "batch_times_3":         # x.view(3 * x.size(0), -1) mixes the batch with the features
        nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
                 node("Mul", ["n", "three"], ["n3"]), node("Unsqueeze", ["n3", "ax0"], ["n1"]),
                 node("Concat", ["n1", "minus1"], ["shape"], axis=0), node("Reshape", ["x", "shape"], ["y"])]
        inits = [const("zero", np.array(0), np.int64), const("three", np.array(3), np.int64),
                 const("ax0", [0], np.int64), const("minus1", [-1], np.int64)]
        m, match = small(nodes, inits, ("N", 3, 4), ("M", 4)), "needs the batch axis kept"
    elif case == "branch":
        nodes = [node("Relu", ["x"], ["a"]), node("Sigmoid", ["x"], ["b"]), node("Add", ["a", "b"], ["y"])]
        m, match = small(nodes, [], out_shape=("N", 4)), "single chain of layers"
    elif case == "clip":
        m = small([node("Clip", ["x", "lo", "hi"], ["y"])], [const("lo", -1.0), const("hi", 1.0)], out_shape=("N", 4))
        match = r"Clip to \[-1.0, 1.0\] is not supported"
    elif case == "softmax_axis":
        m = small([node("Softmax", ["x"], ["y"], axis=1)], [], ("N", 3, 4), ("N", 3, 4))
        match = "darbgen's softmax runs over a vector"
    elif case == "transpose":
        m = small([node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], [], ("N", 3, 4), ("N", 4, 3))
        match = "reorders the features"
    elif case == "bidirectional":
        wi, wh, b = lstm_weights(rng, 4, 3, 4)
        m = small([node("LSTM", ["x", "W", "R"], ["", "y"], hidden_size=3, direction="bidirectional")],
                  [const("W", np.concatenate([wi, wi])), const("R", np.concatenate([wh, wh]))],
                  (5, "N", 4), (2, "N", 3))
        match = "direction 'bidirectional' is not supported"
    else:
        m = small([node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)],
                  [], ("N", 1, 4, 4), ("N", 1, 5, 5))
        match = "count_include_pad = 1 with padding is not supported"
    with pytest.raises(DarbgenError, match=match):
        model_from_onnx(m)


def test_streaming_matches_onnxruntime_step_by_step(rng, gcc, tmp_path):
    """<model>_reset / <model>_step fed one time step at a time: after 120
    steps the LSTM classifier's output, and at every one of 100 steps the GRU's
    state sequence, match onnxruntime within 1e-4."""
    from test_recurrent import stream

    for sub in ("lstm", "gru"):
        (tmp_path / sub).mkdir()
    wi, wh, b = lstm_weights(rng, 4, 6, 4)
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             node("LSTM", ["xt", "W", "R", "B"], ["", "Y_h"], hidden_size=6),
             node("Squeeze", ["Y_h", "ax0"], ["h"]),
             node("Gemm", ["h", "fw", "fb"], ["y"], transB=1)]
    inits = [const("W", wi), const("R", wh), const("B", b), const("ax0", [0], np.int64), const("fw", w(rng, 3, 6)),
             const("fb", w(rng, 3))]
    m = graph_model(nodes, ["N", 120, 4], ["N", 3], inits)
    x = rng.standard_normal((4, 120, 4)).astype(np.float32)
    module = generate(model_from_onnx(m), dtype="float32", kernel="packed", prefix="kws")
    _, run, steps = stream(module, tmp_path / "lstm", gcc, x.reshape(4, -1), 120)
    close(steps[:, -1], run_ort(m, x), 1e-4)
    assert np.array_equal(run, steps[:, -1])

    wi, wh, b = lstm_weights(rng, 3, 4, 2)
    nodes = [node("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=4, linear_before_reset=1)]
    m = graph_model(nodes, [100, "N", 2], [100, 1, "N", 4], [const("W", wi), const("R", wh), const("B", b)])
    x = rng.standard_normal((100, 3, 2)).astype(np.float32)
    module = generate(model_from_onnx(m), dtype="float32", kernel="csr", prefix="seq")
    _, run, steps = stream(module, tmp_path / "gru", gcc, x.transpose(1, 0, 2).reshape(3, -1), 100)
    want = run_ort(m, x)[:, 0].transpose(1, 0, 2)                      # (N, T, H)
    close(steps, want, 1e-4)
