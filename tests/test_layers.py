"""Convolution, pooling and batch-norm layers: the graph's float64 forward
against textbook loops, and the generated C against the reference in every
dtype and kernel."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import darbgen
from conftest import slow_except
import naive_nn
from darbgen.build import build
from darbgen.codegen import KERNELS, generate
from darbgen.errors import DarbgenError
from darbgen.graph import (Activation, Conv1D, Conv2D, Dense, Flatten, GlobalAveragePool, Model, Pool1D, Pool2D,
                           fold_batchnorm)
from darbgen.verify import verify

DTYPES = ("int8", "int16", "float32")


@given(c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7), o=st.integers(1, 3), kh=st.integers(1, 3),
       kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 2), dh=st.integers(1, 2), dw=st.integers(1, 2),
       padding=st.one_of(st.sampled_from(["valid", "same"]), st.tuples(*[st.integers(0, 2)] * 4)),
       seed=st.integers(0, 1000))
def test_conv2d_forward_matches_loops(c, h, w, o, kh, kw, sh, sw, dh, dw, padding, seed):
    rng = np.random.default_rng(seed)
    conv = Conv2D("c", rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o), (sh, sw), padding, (dh, dw))
    try:
        out_shape = conv.output_shape((c, h, w))
    except DarbgenError:
        return                                          # the kernel does not fit: refused, tested below
    x = rng.standard_normal((2, c * h * w))
    got = conv.op((c, h, w)).forward_f64(x)[1]
    pad = conv.resolved_padding(h, w)
    for n in range(2):
        want = naive_nn.conv2d(x[n].reshape(c, h, w), conv.weight.astype(np.float64), conv.bias.astype(np.float64),
                               (sh, sw), pad, (dh, dw))
        assert want.shape == out_shape
        np.testing.assert_allclose(got[n], want.ravel(), rtol=1e-9, atol=1e-9)


def test_same_padding_keeps_the_size_and_follows_tensorflow():
    conv = Conv2D("c", np.ones((1, 1, 4, 3), np.float32), padding="same", stride=(2, 1))
    assert conv.output_shape((1, 9, 5)) == (1, 5, 5)
    assert conv.resolved_padding(9, 5) == (1, 2, 1, 1)            # extra padding at the end, like TensorFlow


@given(h=st.integers(1, 6), w=st.integers(1, 6), size=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), kind=st.sampled_from(["max", "avg"]),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 1000))
def test_pool_forward_matches_loops(h, w, size, stride, kind, padding, seed):
    rng = np.random.default_rng(seed)
    pool = Pool2D("p", kind, size, stride, padding)
    try:
        op = pool.op((2, h, w))
    except DarbgenError:
        return
    x = rng.standard_normal((1, 2 * h * w))
    want = naive_nn.pool2d(x[0].reshape(2, h, w), kind, size, stride, op.padding)
    np.testing.assert_allclose(op.forward_f64(x)[1][0], want.ravel(), rtol=1e-12)


def test_conv1d_and_pool1d_are_their_2d_forms(rng):
    conv = Conv1D("c", rng.standard_normal((3, 2, 4)), rng.standard_normal(3), stride=2, padding="same", dilation=1)
    x = rng.standard_normal((1, 2 * 11))
    want = naive_nn.conv2d(x[0].reshape(2, 1, 11), conv.weight[:, :, None, :].astype(np.float64),
                           conv.bias.astype(np.float64), (1, 2), conv.as_2d.resolved_padding(1, 11), (1, 1))
    np.testing.assert_allclose(conv.op((2, 11)).forward_f64(x)[1][0], want.ravel(), rtol=1e-9)
    assert conv.output_shape((2, 11)) == (3, 6)
    assert Pool1D("p", "max", 3, 2, 1).output_shape((3, 10)) == (3, 5)


def test_batchnorm_folds_exactly(rng):
    conv = Conv2D("c", rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4), padding=1)
    gamma, beta, mean, var = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4), rng.random(4) + .5
    folded = fold_batchnorm(conv, gamma, beta, mean, var, 1e-3)
    x = rng.standard_normal((3, 2 * 5 * 5))
    y = conv.op((2, 5, 5)).forward_f64(x)[1].reshape(3, 4, -1)
    want = (y - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-3) * gamma[None, :, None] + beta[None, :, None]
    np.testing.assert_allclose(folded.op((2, 5, 5)).forward_f64(x)[1], want.reshape(3, -1), rtol=1e-5, atol=1e-5)
    with pytest.raises(DarbgenError, match="must follow a dense or convolution"):
        fold_batchnorm(Flatten("f"), gamma, beta, mean, var)
    with pytest.raises(DarbgenError, match="4 values"):
        fold_batchnorm(conv, gamma[:3], beta, mean, var)


def test_layer_errors_name_the_layer():
    with pytest.raises(DarbgenError, match="c: a Conv2D kernel must be"):
        Conv2D("c", np.ones((2, 2, 2)))
    with pytest.raises(DarbgenError, match="c: a Conv2D with 3 input channels"):
        Model("m", (2, 5, 5), [Conv2D("c", np.ones((1, 3, 2, 2)))])
    with pytest.raises(DarbgenError, match="does not fit"):
        Model("m", (1, 2, 2), [Conv2D("c", np.ones((1, 1, 3, 3)))])
    with pytest.raises(DarbgenError, match="pooling kind"):
        Pool2D("p", "min", 2)
    with pytest.raises(DarbgenError, match="padding must be"):
        Conv2D("c", np.ones((1, 1, 2, 2)), padding=(1, 2, 3))


# ----------------------------------------------------------------------------- C

def cnn(rng):
    """A small CNN with every 2-D layer kind: conv (same, stride, dilation), pools, global pooling."""
    return Model("cnn", (2, 8, 7), [
        Conv2D("c1", rng.standard_normal((8, 2, 3, 3)), 0.1 * rng.standard_normal(8), padding="same"),
        Activation("r1", "relu"),
        Pool2D("p1", "max", 2, padding="same"),
        Conv2D("c2", rng.standard_normal((6, 8, 2, 3)), None, stride=(1, 2), padding=(1, 0, 1, 1), dilation=(2, 1)),
        Activation("t2", "tanh"),
        Pool2D("p2", "avg", (2, 2), stride=1, padding="same"),
        GlobalAveragePool("gap"),
        Dense("fc", rng.standard_normal((5, 6)).astype(np.float32)), Activation("sm", "softmax")])


def cnn1d(rng):
    return Model("k1d", (3, 25), [
        Conv1D("k", rng.standard_normal((6, 3, 5)), rng.standard_normal(6), stride=2, padding="same"),
        Activation("a", "relu6"), Pool1D("mp", "max", 3, stride=2, padding=1), Pool1D("ap", "avg", 2), Flatten("f"),
        Dense("o", rng.standard_normal((4, 6 * 3)).astype(np.float32), activation="sigmoid")])


@pytest.mark.parametrize("dtype", slow_except(DTYPES, {"int8"}))     # test_cnn_sanitized runs every dtype
def test_every_layer_kind_in_c_matches_the_reference(rng, gcc, dtype):
    for make, cin in ((cnn, 2 * 8 * 7), (cnn1d, 75)):
        model = make(rng)
        pruned = model.with_pruning(dict(darbgen.prune_model(
            {layer.name: layer.pruning_matrix for layer in model.weight_layers()}, 2).items()))
        for kernel in KERNELS:
            module = generate(pruned, dtype=dtype, kernel=kernel, prefix=model.name,
                              calib=rng.standard_normal((32, cin)))
            result = verify(module, cc=gcc, n_random=8)
            assert result.ok, result.describe()
            assert result.layers[-1].name == "(model)"
    assert any(n.startswith("darb_pool") for n in module.files)


def test_cnn_sanitized(rng, gcc):
    model = cnn(rng)
    for dtype in DTYPES:
        module = generate(model, dtype=dtype, kernel="csr", calib=rng.standard_normal((16, 2 * 8 * 7)))
        assert verify(module, cc=gcc, sanitize=True, n_random=4).ok


@pytest.mark.parametrize("dtype", slow_except(DTYPES, {"int8"}))
def test_npz_cnn_with_batchnorm_builds(tmp_path, rng, gcc, dtype):
    spec = {"format": "darbgen-npz", "version": 1, "name": "tiny_cnn", "input_shape": [1, 8, 8], "layers": [
        {"name": "conv1", "kind": "conv2d", "padding": "same"},
        {"name": "bn1", "kind": "batchnorm", "activation": "relu", "eps": 1e-3},
        {"name": "pool1", "kind": "maxpool2d", "size": 2},
        {"name": "conv2", "kind": "conv2d", "activation": "relu", "stride": 2},
        {"name": "gap", "kind": "globalavgpool"},
        {"name": "fc", "kind": "dense", "activation": "softmax"}]}
    arrays = {"__model__": np.array(json.dumps(spec)),
              "conv1.weight": rng.standard_normal((8, 1, 3, 3)).astype(np.float32),
              "conv1.bias": np.zeros(8, np.float32),
              "bn1.gamma": rng.random(8) + 0.5, "bn1.beta": rng.standard_normal(8),
              "bn1.mean": rng.standard_normal(8), "bn1.var": rng.random(8) + 0.5,
              "conv2.weight": rng.standard_normal((6, 8, 2, 2)).astype(np.float32),
              "fc.weight": rng.standard_normal((3, 6)).astype(np.float32),
              "calib.x": rng.random((64, 64)).astype(np.float32),
              "test.x": rng.random((50, 64)).astype(np.float32), "test.y": rng.integers(0, 3, 50)}
    path = tmp_path / "cnn.npz"
    np.savez(path, **arrays)
    r = build(path, ratio=2, dtype=dtype)
    assert r.ok
    kinds = [layer["kind"] for layer in r.report["layers"]]
    assert kinds == ["conv", "maxpool", "conv", "avgpool", "dense", "softmax"]
    assert r.report["accuracy"]["c_agrees_with_pruned"] >= 0.9


def test_depthwise_convolution_forward_and_c(rng, gcc):
    from darbgen.graph import DepthwiseConv2D

    dw = DepthwiseConv2D("dw", rng.standard_normal((6, 1, 3, 3)), rng.standard_normal(6), stride=1, padding="same")
    x = rng.standard_normal((2, 3 * 5 * 4))
    got = dw.op((3, 5, 4)).forward_f64(x)[1]
    for n in range(2):
        img = x[n].reshape(3, 5, 4)
        for o in range(6):                          # multiplier 2: filters 2c and 2c+1 read channel c
            want = naive_nn.conv2d(img[o // 2][None], dw.weight[o:o + 1].astype(np.float64),
                                   np.asarray([dw.bias[o]], np.float64) if dw.bias is not None else np.zeros(1),
                                   (1, 1), (1, 1, 1, 1), (1, 1))
            np.testing.assert_allclose(got[n].reshape(6, 5, 4)[o], want[0], rtol=1e-6, atol=1e-6)
    model = Model("mobile", (3, 5, 4), [dw, Activation("r", "relu6"),
                                        Conv2D("pw", rng.standard_normal((4, 6, 1, 1))), GlobalAveragePool("g")])
    assert model.weight_layers()[0].name == "pw"                 # the depthwise layer is not pruned
    for dtype in DTYPES:
        module = generate(model, dtype=dtype, kernel="packed", calib=rng.standard_normal((16, 60)))
        assert module.layers[0].kernel == "depthwise"                # its own kernel, no full convolution
        assert verify(module, cc=gcc, n_random=4).ok
    with pytest.raises(DarbgenError, match="do not divide among"):
        Model("m", (4, 5, 5), [dw])


C_EXAMPLES = int(__import__("os").environ.get("DARBGEN_C_EXAMPLES", 40))
CONV_DRAWS = dict(
    c=st.integers(1, 4), h=st.integers(1, 9), w=st.integers(1, 9), o=st.integers(1, 6), kh=st.integers(1, 4),
    kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
    padding=st.one_of(st.sampled_from(["valid", "same"]), st.tuples(*[st.integers(0, 3)] * 4)),
    pool=st.sampled_from(["max", "avg", None]), ratio=st.floats(1.2, 6), dtype=st.sampled_from(DTYPES),
    kernel=st.sampled_from(KERNELS), act=st.sampled_from(["none", "relu", "relu6", "sigmoid", "tanh"]),
    seed=st.integers(0, 2 ** 31))


def random_convolution_in_c_matches_the_reference(gcc, c, h, w, o, kh, kw, sh, sw, dh, dw, padding, pool,
                                                  ratio, dtype, kernel, act, seed):
    rng = np.random.default_rng(seed)
    conv = Conv2D("c", rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o), (sh, sw), padding, (dh, dw),
                  activation=act)
    try:
        shape = conv.output_shape((c, h, w))
        layers = [conv]
        if pool:
            layers.append(Pool2D("p", pool, (2, 2), 1, "same"))
        model = Model("r", (c, h, w), layers)
        r = darbgen.prune(conv.pruning_matrix, ratio)
    except DarbgenError:
        assume(False)
    model = model.with_pruning({"c": r})
    module = generate(model, dtype=dtype, kernel=kernel, calib=rng.standard_normal((8, c * h * w)))
    result = verify(module, cc=gcc, n_random=4, seed=seed % 1000)
    assert result.ok, (shape, result.describe())


# a few draws by default (each compiles C); the full run draws DARBGEN_C_EXAMPLES // 2
test_random_convolutions_in_c_match_the_reference = settings(
    max_examples=max(1, C_EXAMPLES // 8), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(
    given(**CONV_DRAWS)(random_convolution_in_c_matches_the_reference))
test_random_convolutions_in_c_match_the_reference_full = pytest.mark.slow(settings(
    max_examples=C_EXAMPLES // 2, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(
    given(**CONV_DRAWS)(random_convolution_in_c_matches_the_reference)))


def test_review_findings_on_layers(rng):
    # a pooling window that could hold only padding is refused
    with pytest.raises(DarbgenError, match="as wide as the"):
        Model("m", (1, 4, 4), [Pool2D("p", "avg", 2, padding=2)])
    Model("m", (1, 4, 4), [Pool2D("p", "avg", 2, padding=1)])
    # softmax beyond the kernels' 16-bit sizes is refused, not overflowed
    with pytest.raises(DarbgenError, match="softmax over 70000 values"):
        generate(Model("m", (70000,), [Activation("s", "softmax")]), dtype="float32")
    # Keras-style spellings and JSON one-element lists are accepted; nonsense is a named error
    assert Conv2D("c", np.ones((1, 1, 3, 3)), padding="SAME").padding == "same"
    assert Conv1D("k", np.ones((1, 1, 3)), stride=[2]).output_shape((1, 9)) == (1, 4)
    with pytest.raises(DarbgenError, match="c: padding must be"):
        Conv2D("c", np.ones((1, 1, 3, 3)), padding="full")
    with pytest.raises(DarbgenError, match="k: stride must be a positive integer"):
        Conv1D("k", np.ones((1, 1, 3)), stride="2")


def test_layers_calibrated_one_by_one_get_no_model_run(rng):
    a = Dense("a", rng.standard_normal((6, 5)).astype(np.float32), activation="relu")
    b = Dense("b", rng.standard_normal((3, 6)).astype(np.float32))
    m = generate([a, b], dtype="int8", calib={"a": rng.standard_normal((20, 5)), "b": rng.random((20, 6))})
    assert m.model is None and "model.c" not in m.files
    m = generate([a, b], dtype="int8", calib=rng.standard_normal((20, 5)))          # calibrated as a chain
    assert m.model is not None and m.layers[0].quantized.output == m.layers[1].quantized.input
