"""The legacy Keras HDF5 importer (darbgen/importers/keras_h5.py, docs/keras_h5.md).

Every model is checked against Keras itself: the float64 forward pass of the
imported graph (tests/graph_eval.py) against Keras 3's output on random inputs.
The two MLPerf Tiny Keras 2 files are loaded by Keras 3's legacy .h5 loader;
the other models are built with Keras 3 here and written as Keras 2.4 files
(nested-list inbound_nodes, batch_input_shape, ":0" weight names) by
``save_keras2_h5`` below, or saved by Keras 3 itself as .h5. Then the
refusals, on small files made with h5py."""
import json
import os
import sys

import numpy as np
import pytest
from conftest import need_module

from darbgen.errors import DarbgenError
from darbgen.importers.keras_h5 import SUPPORTED_LAYERS, graph_from_h5
from graph_eval import run_graph

h5py = pytest.importorskip("h5py")
os.environ.setdefault("KERAS_BACKEND", "jax")
pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file"),
              pytest.mark.filterwarnings("ignore:The structure of `inputs` doesn't match")]

MLPERF = "/work/shared/models/mlperf_tiny"


def _need(module):
    return need_module(module, "the Keras .h5 importer tests compare with Keras", "keras \"jax[cpu]\"")


_need("jax")
keras = _need("keras")
from keras import layers  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_names():
    """Keras numbers its default layer names per session: start each test from conv2d, dense, ...
    (free_memory=False: the names are reset all the same, without a garbage collection per test)"""
    keras.backend.clear_session(free_memory=False)


def close(got, want, rel=1e-4):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= rel, err


def run_keras(model, x):
    return np.asarray(model.predict(x.astype(np.float32), batch_size=len(x), verbose=0), np.float64)


def check(model, path, rng, n=8):
    """Import ``path`` and compare its graph's float64 forward with the Keras ``model``; the graph."""
    graph = graph_from_h5(path)
    x = rng.standard_normal((n,) + graph.input_shape).astype(np.float32)
    close(run_graph(graph, x), run_keras(model, x))
    return graph


def kinds(graph):
    return [n.kind for n in graph.nodes]


# ---------------------------------------------------------------------------------------------- Keras 2 writer
def _keras2_layer_config(cls, cfg):
    cfg = dict(cfg)
    if isinstance(cfg.get("dtype"), dict):
        cfg["dtype"] = cfg["dtype"]["config"]["name"]
    if cls == "InputLayer":
        cfg["batch_input_shape"] = cfg.pop("batch_shape")
        cfg.pop("optional", None)
    if cls == "DepthwiseConv2D":
        cfg["groups"] = 1            # TF 2.4 wrote this (DepthwiseConv2D inherited it); Keras 3 rejects it
    return cfg


def _keras2_inbound(nodes):
    calls = []
    for node in nodes:
        found = []

        def walk(v):
            if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
                h = v["config"]["keras_history"]
                found.append([h[0], h[1], h[2], {}])
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x)
        walk(node["args"])
        calls.append(found)
    return calls


def save_keras2_h5(model, path, sequential_without_input=False, model_class="Functional"):
    """Write a Keras 3 model as TF 2.4's tf.keras model.save('m.h5') did."""
    config = model.get_config()
    if isinstance(model, keras.Sequential):
        entries = [{"class_name": e["class_name"], "config": _keras2_layer_config(e["class_name"], e["config"])}
                   for e in config["layers"]]
        if sequential_without_input:          # Keras 2.2 style: the first layer carries batch_input_shape
            first = entries.pop(0)
            entries[0]["config"]["batch_input_shape"] = first["config"]["batch_input_shape"]
        model_config = {"class_name": "Sequential", "config": {"name": config["name"], "layers": entries}}
    else:
        entries = [{"class_name": e["class_name"], "name": e["name"],
                    "config": _keras2_layer_config(e["class_name"], e["config"]),
                    "inbound_nodes": _keras2_inbound(e["inbound_nodes"])} for e in config["layers"]]
        ins, outs = config["input_layers"], config["output_layers"]
        model_config = {"class_name": model_class, "config": {
            "name": config["name"], "layers": entries,
            "input_layers": ins if isinstance(ins[0], list) else [ins],
            "output_layers": outs if isinstance(outs[0], list) else [outs]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.4.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config)
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = root.create_group(layer.name)
            names = []
            for w in layer.weights:
                short = w.path.rsplit("/", 1)[-1]
                if type(layer).__name__ == "DepthwiseConv2D" and short == "kernel":
                    short = "depthwise_kernel"
                names.append(f"{layer.name}/{short}:0".encode())
                group.create_dataset(names[-1].decode(), data=np.asarray(keras.ops.convert_to_numpy(w.value)))
            group.attrs["weight_names"] = names
    return path


def randomize_bn(model, rng):
    """Give batch normalisations non-trivial statistics (fresh ones are the identity)."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in w.path or
                               "gamma" in w.path else rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for w in layer.weights])
    return model


# ---------------------------------------------------------------------------------------------- MLPerf Tiny
def test_ad01_autoencoder(rng):
    path = f"{MLPERF}/ad01.h5"
    model = keras.saving.load_model(path, compile=False)
    graph = check(model, path, rng)
    assert (graph.name, graph.source, graph.layout) == ("ad01", "keras-h5", "NHWC")
    assert graph.input_shape == (640,) and graph.output_shape == (640,)
    assert kinds(graph) == ["fully_connected"] * 10
    assert [n.attrs["activation"] for n in graph.nodes] == ["relu"] * 9 + ["none"]
    widths = [n.params["weight"].shape for n in graph.nodes]
    assert widths == [(128, 640)] + [(128, 128)] * 3 + [(8, 128), (128, 8)] + [(128, 128)] * 3 + [(640, 128)]
    assert [n.name for n in graph.nodes] == ["dense"] + [f"dense_{k}" for k in range(1, 10)]
    # the real log-mel frames shipped with the model
    frames = np.load(f"{MLPERF}/ad01_normal_id01_sample.npy")
    close(run_graph(graph, frames), run_keras(model, frames))


@pytest.mark.slow          # test_graph.test_float_models_match_litert reads the same file in the default run
def test_resnet8(rng):
    path = f"{MLPERF}/pretrainedResnet.h5"
    model = keras.saving.load_model(path, compile=False)
    graph = check(model, path, rng)
    x = rng.uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
    close(run_graph(graph, x), run_keras(model, x))
    assert graph.input_shape == (32, 32, 3) and graph.output_shape == (10,)
    assert kinds(graph) == ["conv2d"] * 3 + ["add"] + ["conv2d"] * 3 + ["add"] + ["conv2d"] * 3 + [
        "add", "avg_pool2d", "reshape", "fully_connected", "softmax"]
    by = {n.name: n for n in graph.nodes}
    assert by["conv2d_3"].attrs == {"stride": (2, 2), "dilation": (1, 1), "padding": (0, 1, 0, 1),
                                    "activation": "relu"}
    assert by["conv2d_1"].params["weight"].shape == (16, 3, 3, 16)
    assert by["conv2d_2"].attrs["activation"] == "none"          # its BN output feeds the add
    assert [by[a].attrs["activation"] for a in ("add", "add_1", "add_2")] == ["relu"] * 3
    assert graph.tensors[by["flatten"].outputs[0]].shape == (64,)


# ---------------------------------------------------------------------------------------------- synthetic
def test_conv_zoo_keras2(tmp_path, rng):
    """Odd sizes, 'same' with even kernels and strides (pads after), dilation, depthwise multipliers, separable,
    padding, both pools, concatenation, a 3-way add, global pools, dropout, softmax."""
    inp = keras.Input((17, 15, 3))
    x = layers.ZeroPadding2D(((1, 0), (2, 1)))(inp)
    x = layers.Conv2D(8, (4, 3), strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(max_value=6)(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dilation_rate=2)(x)
    x = layers.BatchNormalization(center=False)(x)
    x = layers.Activation("relu")(x)
    a = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    b = layers.AveragePooling2D(2, strides=2, padding="same")(x)
    c = layers.Conv2D(16, 1, strides=2, padding="same", activation="relu6")(x)
    x = layers.Concatenate()([a, b])
    x = layers.SeparableConv2D(16, 3, padding="same", depth_multiplier=2)(x)
    x = layers.BatchNormalization()(x)
    s = layers.Add()([layers.Conv2D(16, 2, padding="same")(x), c, layers.Dropout(0.5)(a)])
    s = layers.Activation("relu")(s)
    g1 = layers.GlobalAveragePooling2D()(s)
    g2 = layers.GlobalMaxPooling2D()(layers.DepthwiseConv2D((2, 3), strides=(1, 2))(s))
    x = layers.Concatenate(axis=1)([g1, g2])
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(5, activation="softmax")(x)
    model = randomize_bn(keras.Model(inp, out), rng)
    graph = check(model, save_keras2_h5(model, tmp_path / "zoo.h5"), rng)
    by = {n.name: n for n in graph.nodes}
    assert by["conv2d"].attrs["padding"] == (1, 1, 0, 1)       # 18 rows, k 4, s 2: 2 + 2; 18 cols, k 3: 0 + 1
    assert by["conv2d"].attrs["activation"] == "relu6"
    assert by["depthwise_conv2d"].attrs["multiplier"] == 2
    assert by["depthwise_conv2d"].attrs["padding"] == (2, 2, 2, 2)
    assert by["depthwise_conv2d"].params["weight"].shape == (3, 3, 16)
    assert by["separable_conv2d_depthwise"].attrs["multiplier"] == 2
    assert by["max_pooling2d"].attrs["padding"] == (1, 1, 1, 1)
    assert by["add"].attrs["activation"] == "relu" and by["add_0"].kind == "add"
    assert by["global_average_pooling2d"].attrs == {"axes": (0, 1), "keep_dims": False}
    assert "_batchnorm" not in kinds(graph) and "_activation" not in kinds(graph)


def test_depthwise_channel_order(tmp_path, rng):
    """Output channel c * M + m of a depthwise kernel (KH, KW, C, M): TFLite's order."""
    inp = keras.Input((5, 5, 3))
    model = keras.Model(inp, layers.DepthwiseConv2D(3, depth_multiplier=4)(inp))
    graph = check(model, save_keras2_h5(model, tmp_path / "dw.h5"), rng)
    kernel = np.asarray(model.layers[1].weights[0].value)          # (3, 3, 3, 4)
    w = graph.nodes[0].params["weight"].data
    for c in range(3):
        for m in range(4):
            assert np.array_equal(w[:, :, c * 4 + m], kernel[:, :, c, m])


@pytest.mark.parametrize("without_input", [False, True])
def test_sequential_mlp(tmp_path, rng, without_input):
    model = randomize_bn(keras.Sequential([
        keras.Input((20,)), layers.Dense(16, activation="relu"), layers.Dense(12),
        layers.BatchNormalization(scale=False), layers.Activation("relu"), layers.Dropout(0.2),
        layers.Dense(12, use_bias=False), layers.ReLU(), layers.Dense(4), layers.Softmax()]), rng)
    graph = check(model, save_keras2_h5(model, tmp_path / "mlp.h5", sequential_without_input=without_input), rng)
    assert kinds(graph) == ["fully_connected"] * 4 + ["softmax"]
    assert [n.attrs.get("activation") for n in graph.nodes] == ["relu", "relu", "relu", "none", None]
    assert graph.inputs == (["input"] if without_input else [graph.inputs[0]])


def test_reshape_flatten_and_dense_on_ones(tmp_path, rng):
    inp = keras.Input((48,))
    x = layers.Reshape((4, -1, 3))(inp)
    x = layers.Conv2D(5, 3, activation="relu")(x)
    x = layers.Flatten()(x)                      # (2, 2, 5) in NHWC order: a plain reshape
    x = layers.Dense(6)(x)
    x = layers.Reshape((1, 1, 6))(x)
    x = layers.Dense(4, activation="relu")(x)    # on (1, 1, 6): Keras keeps (1, 1, 4)
    x = layers.Flatten()(x)
    out = layers.Dense(3)(layers.Flatten()(x))   # flattening a vector: nothing
    model = keras.Model(inp, out)
    graph = check(model, save_keras2_h5(model, tmp_path / "rs.h5", model_class="Model"), rng)
    assert kinds(graph) == ["reshape", "conv2d", "reshape", "fully_connected", "reshape", "fully_connected",
                            "reshape", "reshape", "fully_connected"]
    assert graph.nodes[0].attrs["shape"] == (4, 4, 3)
    assert graph.nodes[5].attrs["activation"] == "relu"


def test_standalone_relu_is_a_1x1_max_pool(tmp_path, rng):
    """A ReLU on the input or on a tensor that also feeds something else cannot be fused."""
    inp = keras.Input((6, 6, 2))
    c = layers.Conv2D(4, 3, padding="same")(inp)
    r = layers.ReLU(max_value=6.0)(c)
    x = layers.Add()([c, layers.Conv2D(4, 3, padding="same")(r)])
    x = layers.Flatten()(x)
    x = layers.ReLU()(x)                          # after a reshape: not fusable
    v = layers.Activation("relu")(layers.Dense(7)(x))
    model = keras.Model(inp, layers.Dense(3)(v))
    graph = check(model, save_keras2_h5(model, tmp_path / "relu.h5"), rng)
    by = {n.name: n for n in graph.nodes}
    assert by["re_lu"].kind == "max_pool2d" and by["re_lu"].attrs == {
        "filter": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0), "activation": "relu6"}
    assert [by[k].kind for k in ("re_lu_1_image", "re_lu_1", "re_lu_1_back")] == ["reshape", "max_pool2d", "reshape"]
    assert by["re_lu_1_image"].attrs["shape"] == (1, 1, 144)
    assert by["dense"].attrs["activation"] == "relu"
    assert any("1x1 max pool" in note for note in graph.notes)

    inp = keras.Input((10,))
    model = keras.Model(inp, layers.Dense(4)(layers.ReLU()(inp)))
    graph = check(model, save_keras2_h5(model, tmp_path / "relu_in.h5"), rng)
    assert kinds(graph) == ["reshape", "max_pool2d", "reshape", "fully_connected"]


def test_shared_layer_and_vector_concat(tmp_path, rng):
    inp = keras.Input((8,))
    shared = layers.Dense(8)
    y = layers.ReLU()(shared(inp))
    z = shared(y)
    x = layers.Concatenate()([z, y])
    model = keras.Model(inp, layers.Dense(2)(x))
    graph = check(model, save_keras2_h5(model, tmp_path / "shared.h5"), rng)
    fcs = [n for n in graph.nodes if n.kind == "fully_connected"]
    assert [n.source_name for n in fcs] == ["dense", "dense", "dense_1"]
    assert len({n.name for n in fcs}) == 3
    assert np.array_equal(fcs[0].params["weight"].data, fcs[1].params["weight"].data)
    # the first call's output feeds only the ReLU (fused); the ReLU's output feeds the second call and the concat
    assert [n.attrs["activation"] for n in fcs] == ["relu", "none", "none"]


def test_keras3_h5_file(tmp_path, rng):
    """Keras 3's own model.save('m.h5') (args dicts, batch_shape, 'kernel' for depthwise)."""
    inp = keras.Input((9, 9, 2))
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=3)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    y = layers.Conv2D(6, 1)(inp)
    x = layers.Concatenate()([x, y])
    x = layers.AveragePooling2D(3, strides=2)(x)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    out = layers.Dense(3)(layers.Flatten()(x))
    model = randomize_bn(keras.Model(inp, out), rng)
    path = str(tmp_path / "k3.h5")
    model.save(path)
    graph = check(model, path, rng)
    assert kinds(graph) == ["depthwise_conv2d", "conv2d", "concat", "avg_pool2d", "mean", "reshape",
                            "fully_connected"]
    assert graph.nodes[0].attrs["activation"] == "relu"
    seq = keras.Sequential([keras.Input((5,)), layers.Dense(3, activation="relu"), layers.Dense(2)])
    path = str(tmp_path / "k3seq.h5")
    seq.save(path)
    check(seq, path, rng)


# ---------------------------------------------------------------------------------------------- refusals
def _raw_h5(path, layers_config, weights=None, class_name="Functional", inputs=None, outputs=None):
    """A Keras 2 style file from a hand-written layer list (functional, one input, the last layer the output)."""
    config = {"class_name": class_name, "config": {
        "name": "m", "layers": layers_config,
        "input_layers": inputs or [[layers_config[0]["name"], 0, 0]],
        "output_layers": outputs or [[layers_config[-1]["name"], 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        root = f.create_group("model_weights")
        for layer, arrays in (weights or {}).items():
            group = root.create_group(layer)
            group.attrs["weight_names"] = [f"{layer}/{k}:0".encode() for k in arrays]
            for k, v in arrays.items():
                group.create_dataset(f"{layer}/{k}:0", data=np.asarray(v, np.float32))
    return str(path)


def _input(name="input_1", shape=(None, 4)):
    return {"class_name": "InputLayer", "name": name, "config": {"batch_input_shape": list(shape), "name": name},
            "inbound_nodes": []}


def _layer(cls, name, inbound, **config):
    return {"class_name": cls, "name": name, "config": dict(name=name, **config),
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]]}


def _dense(name, inbound, units=3, activation="linear"):
    return _layer("Dense", name, inbound, units=units, activation=activation, use_bias=True)


def _dense_weights(i, o):
    return {"kernel": np.ones((i, o)), "bias": np.zeros(o)}


def _raises(path, *words):
    with pytest.raises(DarbgenError) as info:
        graph_from_h5(path)
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message
    return message


def test_lambda_layer_is_refused_without_running_it(tmp_path):
    bytecode = "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARQAUwApAk7pAgAAAKkAKQHaAXhyAgAAAHICAAAA"
    path = _raw_h5(tmp_path / "lam.h5", [
        _input(), _layer("Lambda", "double_it", ["input_1"], function=[bytecode, None, None],
                         function_type="lambda", module="__main__"),
        _dense("dense", ["double_it"])], {"dense": _dense_weights(4, 3)})
    _raises(path, str(tmp_path / "lam.h5"), "'double_it'", "Lambda", "never runs")


def test_unknown_and_custom_layers_are_refused(tmp_path):
    path = _raw_h5(tmp_path / "custom.h5", [_input(), _layer("MyAttention", "attn", ["input_1"])])
    message = _raises(path, "'attn'", "MyAttention", "supported:")
    assert all(cls in message for cls in SUPPORTED_LAYERS)
    path = _raw_h5(tmp_path / "lstm.h5", [_input(), _layer("LSTM", "lstm", ["input_1"], units=4)])
    _raises(path, "'lstm'", "LSTM")
    path = _raw_h5(tmp_path / "nested.h5", [_input(), _layer("Functional", "backbone", ["input_1"], layers=[])])
    _raises(path, "'backbone'", "nested")


def test_broken_and_weights_only_files(tmp_path, monkeypatch):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    _raises(broken, str(broken), "is not an HDF5 file", "model.save")
    _raises(tmp_path / "missing.h5", "no such file")

    weights_only = tmp_path / "weights.h5"              # Keras 2 model.save_weights('w.h5')
    with h5py.File(weights_only, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g.create_dataset("dense/kernel:0", data=np.ones((2, 2)))
    _raises(weights_only, str(weights_only), "only weights", "model.save('model.h5')")

    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    k3 = str(tmp_path / "k3.weights.h5")                 # Keras 3 model.save_weights
    model.save_weights(k3)
    _raises(k3, "model_config", "model.save('model.h5')")

    bad_json = tmp_path / "json.h5"
    with h5py.File(bad_json, "w") as f:
        f.attrs["model_config"] = "{not json"
        f.create_group("model_weights")
    _raises(bad_json, "not valid JSON")

    no_weights = tmp_path / "noweights.h5"
    with h5py.File(no_weights, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    _raises(no_weights, "no model_weights")

    monkeypatch.setitem(sys.modules, "h5py", None)
    _raises(broken, "pip install h5py")


def test_missing_and_wrong_weights(tmp_path):
    path = _raw_h5(tmp_path / "nobias.h5", [_input(), _dense("dense", ["input_1"])],
                   {"dense": {"kernel": np.ones((4, 3))}})
    _raises(path, "'dense'", "bias", "missing")
    path = _raw_h5(tmp_path / "shape.h5", [_input(), _dense("dense", ["input_1"])], {"dense": _dense_weights(5, 3)})
    _raises(path, "'dense'", "(5, 3)", "(4, 3)")


def _bn(name, inbound):
    return _layer("BatchNormalization", name, inbound, axis=[1], epsilon=1e-3, center=True, scale=True)


BN_WEIGHTS = {k: np.ones(3) for k in ("gamma", "beta", "moving_mean", "moving_variance")}


def test_unfoldable_batch_normalization(tmp_path):
    path = _raw_h5(tmp_path / "bn_in.h5", [_input(shape=(None, 3)), _bn("bn", ["input_1"]),
                                           _dense("dense", ["bn"])], {"bn": BN_WEIGHTS, "dense": _dense_weights(3, 3)})
    _raises(path, "'bn' (BatchNormalization)", "model's input")
    path = _raw_h5(tmp_path / "bn_act.h5", [_input(), _dense("dense", ["input_1"], activation="relu"),
                                            _bn("bn", ["dense"])], {"bn": BN_WEIGHTS, "dense": _dense_weights(4, 3)})
    _raises(path, "'bn'", "'dense' (Dense) applies its activation (relu) before")
    path = _raw_h5(tmp_path / "bn_branch.h5", [
        _input(), _dense("dense", ["input_1"]), _bn("bn", ["dense"]),
        _layer("Add", "add", ["dense", "bn"])], {"bn": BN_WEIGHTS, "dense": _dense_weights(4, 3)})
    _raises(path, "'bn'", "also feeds 'add'", "branch point")
    path = _raw_h5(tmp_path / "bn_pool.h5", [
        _input(shape=(None, 4, 4, 3)), _layer("MaxPooling2D", "pool", ["input_1"], pool_size=[2, 2], strides=None,
                                              padding="valid"),
        _layer("BatchNormalization", "bn", ["pool"], axis=[3], epsilon=1e-3), _layer("Flatten", "flat", ["bn"])],
        {"bn": BN_WEIGHTS})
    _raises(path, "'bn'", "'pool' (MaxPooling2D), which is not a Dense or convolution")


def test_other_refusals(tmp_path):
    path = _raw_h5(tmp_path / "sig.h5", [_input(), _dense("dense", ["input_1"], activation="sigmoid")],
                   {"dense": _dense_weights(4, 3)})
    _raises(path, "'dense' (Dense)", "'sigmoid'", "relu6")
    path = _raw_h5(tmp_path / "two.h5", [_input(), _dense("a", ["input_1"]), _dense("b", ["input_1"])],
                   {"a": _dense_weights(4, 3), "b": _dense_weights(4, 3)}, outputs=[["a", 0, 0], ["b", 0, 0]])
    _raises(path, "one input and one output", "2 outputs")
    path = _raw_h5(tmp_path / "seq.h5", [_input(shape=(None, 5, 4)), _dense("dense", ["input_1"])],
                   {"dense": _dense_weights(4, 3)})
    _raises(path, "'dense'", "put a Flatten before the Dense")
    path = _raw_h5(tmp_path / "none.h5", [_input(shape=(None, None, 4)), _dense("dense", ["input_1"])],
                   {"dense": _dense_weights(4, 3)})
    _raises(path, "'input_1' (InputLayer)", "unknown (None) dimension")
    path = _raw_h5(tmp_path / "cf.h5", [_input(shape=(None, 3, 4, 4)), _layer(
        "Conv2D", "conv", ["input_1"], filters=2, kernel_size=[1, 1], data_format="channels_first")],
        {"conv": {"kernel": np.ones((1, 1, 3, 2)), "bias": np.zeros(2)}})
    _raises(path, "'conv' (Conv2D)", "channels_first")
    path = _raw_h5(tmp_path / "grp.h5", [_input(shape=(None, 4, 4, 4)), _layer(
        "Conv2D", "conv", ["input_1"], filters=2, kernel_size=[1, 1], groups=2)],
        {"conv": {"kernel": np.ones((1, 1, 2, 2)), "bias": np.zeros(2)}})
    _raises(path, "'conv' (Conv2D)", "groups = 2")
    path = _raw_h5(tmp_path / "leaky.h5", [_input(), _layer("ReLU", "r", ["input_1"], max_value=3.0)])
    _raises(path, "'r' (ReLU)", "max_value 3.0")
    path = _raw_h5(tmp_path / "noinbound.h5", [_input(), _dense("dense", ["nowhere"])],
                   {"dense": _dense_weights(4, 3)})
    _raises(path, "'dense'", "'nowhere'")
    path = _raw_h5(tmp_path / "ident.h5", [_input(), _layer("Dropout", "drop", ["input_1"], rate=0.5)])
    _raises(path, "computes nothing")
    path = _raw_h5(tmp_path / "cls.h5", [_input()], class_name="Bogus")
    _raises(path, "'Bogus'", "Sequential and functional")
