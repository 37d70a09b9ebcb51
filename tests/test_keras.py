"""The Keras importer: Keras 3 models (JAX backend) built here, each checked
against Keras itself (darbgen's float64 forward within 1e-5, the generated
float32 C within 1e-4, on channel-first inputs as docs/keras.md says), a .keras
round trip, an int8 digits classifier trained with Keras, and the refusals."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import need_module

from darbgen.codegen import generate
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Conv1D, Conv2D, DepthwiseConv2D, Flatten
from darbgen.verify import verify

os.environ.setdefault("KERAS_BACKEND", "jax")
# keras 3.15's own model.save() converts variables with np.array(), which numpy 2 flags
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


def _need(module):
    return need_module(module, "the Keras importer tests need it", "keras \"jax[cpu]\"")


_need("jax")
keras = _need("keras")
from keras import layers  # noqa: E402

from darbgen.importers.keras import model_from_keras  # noqa: E402


def run_keras(model, x):
    return np.asarray(model(x.astype(np.float32), training=False), np.float64)


def close(got, want, rel):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= rel, err


def channel_first(x):
    """Keras' (N, H, W, C) / (N, L, C) as darbgen's per-sample rows (C, H, W) / (C, L), flattened."""
    if x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    return x.reshape(len(x), -1)


def check(model, x, gcc, to_darbgen=channel_first, c=True):
    """Keras vs darbgen's forward (1e-5) and its float32 C (1e-4); the darbgen model."""
    x = x.astype(np.float32)
    want = run_keras(model, x).reshape(len(x), -1)
    xs = to_darbgen(x)
    darb = model_from_keras(model)
    close(darb.forward(xs), want, 1e-5)
    if c:
        module = generate(darb, dtype="float32", kernel="dense", prefix="kerasm")
        result = verify(module, inputs={"(model)": xs}, cc=gcc, n_random=2)
        assert result.ok, result.describe()
        close(result.outputs["(model)"][:len(xs)], want, 1e-4)
    return darb


def randomize(model, seed=0):
    """Random weights everywhere (biases and batch-norm statistics too, so none is trivially zero / one)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for v in layer.weights:
            shape = tuple(v.shape)
            if "variance" in v.path:
                value = 0.5 + rng.random(shape)
            else:
                value = 0.5 * rng.standard_normal(shape)
            v.assign(value.astype(np.float32))
    return model


# ----------------------------------------------------------------------------- every layer kind against Keras

def test_mlp_dense_activations_bn_dropout_functional(rng, gcc):
    inp = keras.Input((12,))
    x = layers.Dense(16, activation="relu", name="fc1")(inp)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(10, name="fc2")(x)
    x = layers.BatchNormalization(epsilon=1e-3)(x)
    x = layers.Activation("tanh")(x)
    x = layers.Dense(8, activation=keras.activations.relu6)(x)
    x = layers.Dense(6, activation="sigmoid")(x)
    x = layers.Dense(5)(x)
    x = layers.ReLU(max_value=6)(x)
    out = layers.Dense(4, activation="softmax")(x)
    model = randomize(keras.Model(inp, out, name="mlp"))
    darb = check(model, 2 * rng.standard_normal((9, 12)), gcc)
    assert darb.name == "mlp" and darb.input_shape == (12,) and darb.layers[0].name == "fc1"
    assert [type(layer).__name__ for layer in darb.layers].count("Dense") == 6


def test_cnn_conv2d_maxpool_flatten_dense_permutes_the_columns(rng, gcc):
    """Keras flattens (H, W, C), darbgen (C, H, W): only the permuted Dense agrees."""
    model = randomize(keras.Sequential([
        keras.Input((8, 8, 3)),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(5, name="fc"),
    ]))
    x = rng.standard_normal((6, 8, 8, 3))
    darb = check(model, x, gcc)
    assert darb.input_shape == (3, 8, 8)
    assert isinstance(darb.layers[0], Conv2D) and isinstance(darb.layers[3], Flatten)
    # the permutation matters: Keras' unpermuted kernel gives other outputs
    fc = darb.layers[-1]
    kernel = keras.ops.convert_to_numpy(model.get_layer("fc").kernel.value)
    assert not np.allclose(fc.weight, kernel.T)
    np.testing.assert_allclose(np.sort(fc.weight, axis=1), np.sort(kernel.T, axis=1))


def test_conv2d_stride_dilation_bn_relu_avgpool_same_global_average(rng, gcc):
    model = randomize(keras.Sequential([
        keras.Input((9, 9, 2)),
        layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False),
        layers.BatchNormalization(scale=False),
        layers.ReLU(),
        layers.Conv2D(3, (2, 3), dilation_rate=(1, 2), padding="valid", activation="tanh"),
        layers.AveragePooling2D(2, strides=1, padding="same"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(2),
    ]))
    check(model, rng.standard_normal((5, 9, 9, 2)), gcc)


def test_depthwise_bn_relu6_and_flatten_after_it(rng, gcc):
    model = randomize(keras.Sequential([
        keras.Input((6, 6, 3)),
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        layers.BatchNormalization(),
        layers.Activation("relu6"),
        layers.Flatten(),
        layers.Dense(4),
    ]))
    darb = check(model, rng.standard_normal((4, 6, 6, 3)), gcc)
    assert isinstance(darb.layers[0], DepthwiseConv2D)


def test_conv1d_causal_pooling_flatten_dense(rng, gcc):
    model = randomize(keras.Sequential([
        keras.Input((20, 3)),
        layers.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
        layers.MaxPooling1D(2),
        layers.Conv1D(4, 3, strides=2, padding="same"),
        layers.AveragePooling1D(2, padding="valid"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ]))
    darb = check(model, rng.standard_normal((5, 20, 3)), gcc, lambda x: x.transpose(0, 2, 1).reshape(len(x), -1))
    assert darb.input_shape == (3, 20) and isinstance(darb.layers[0], Conv1D)


def test_conv1d_global_average_pool(rng, gcc):
    model = randomize(keras.Sequential([keras.Input((12, 2)), layers.Conv1D(4, 3, activation="sigmoid"),
                                        layers.GlobalAveragePooling1D(), layers.Dense(2)]))
    check(model, rng.standard_normal((4, 12, 2)), gcc, lambda x: x.transpose(0, 2, 1).reshape(len(x), -1))


@pytest.mark.slow          # test_streaming_matches_keras_step_by_step runs the same stacked LSTM against Keras
def test_lstm_over_120_steps_stacked(rng, gcc):
    model = randomize(keras.Sequential([keras.Input((120, 3)), layers.LSTM(6, return_sequences=True),
                                        layers.LSTM(5), layers.Dense(2)]), seed=1)
    for v in model.weights:                      # moderate weights: the state neither saturates nor vanishes
        v.assign(v.value * 0.6)
    darb = check(model, rng.standard_normal((4, 120, 3)), gcc)
    assert darb.input_shape == (120, 3) and isinstance(darb.layers[0], LSTM)


def test_gru_over_100_steps_returning_the_sequence(rng, gcc):
    model = randomize(keras.Sequential([keras.Input((100, 2)), layers.GRU(5, return_sequences=True)]), seed=2)
    darb = check(model, rng.standard_normal((3, 100, 2)), gcc)
    assert isinstance(darb.layers[0], GRU) and darb.output_shape == (100, 5)
    model2 = randomize(keras.Sequential([keras.Input((100, 2)), layers.GRU(4, use_bias=False)]), seed=3)
    check(model2, rng.standard_normal((3, 100, 2)), gcc, c=False)


def test_save_and_load_a_keras_file(tmp_path, rng, gcc):
    model = randomize(keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu"),
                                        layers.Flatten(), layers.Dense(4, activation="softmax")], name="small"))
    path = tmp_path / "small_cnn.keras"
    model.save(path)
    darb = model_from_keras(path)
    assert darb.name == "small_cnn"
    x = rng.standard_normal((5, 6, 6, 2)).astype(np.float32)
    close(darb.forward(channel_first(x)), run_keras(model, x), 1e-5)
    assert model_from_keras(str(path), name="other").name == "other"


# ----------------------------------------------------------------------------- int8 through darbgen build

@pytest.mark.slow          # a framework round trip with training; the importer tests above are the fast ones
def test_digits_int8_build_agrees_with_keras(gcc):
    from sklearn.datasets import load_digits

    from darbgen.build import build

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1300], y[:1300], x[1300:], y[1300:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), layers.Dense(32, activation="relu"),
                              layers.Dense(10, activation="softmax")], name="digits")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=8, batch_size=64, verbose=0)
    want = run_keras(model, x_test).argmax(axis=1)
    assert np.mean(want == y_test) > 0.9
    darb = model_from_keras(model)
    r = build(darb, dtype="int8", calib=x_train[:200], eval_data=(x_test, y_test))
    assert r.ok and r.model.name == "digits"
    agree = np.mean(r.eval_outputs.argmax(axis=1) == want)
    assert agree >= 0.99, agree


# ----------------------------------------------------------------------------- packaging

def test_import_darbgen_does_not_import_keras():
    code = ("import sys, darbgen, darbgen.build, darbgen.importers.keras; "
            "print('keras' in sys.modules or 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ----------------------------------------------------------------------------- refusals

def test_unsupported_layer_names_layer_class_and_supported_list():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.LeakyReLU(name="leaky")])
    with pytest.raises(DarbgenError, match=r"'leaky' has class LeakyReLU.*supported layers: InputLayer, Dense"):
        model_from_keras(model)


def test_lambda_layer_in_a_keras_file_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Lambda(lambda t: t * 2, name="double")])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(DarbgenError, match=r"'double' is a Lambda layer.*safe_mode"):
        model_from_keras(path)


def test_malformed_and_truncated_files(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    good = tmp_path / "good.keras"
    model.save(good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 5, 0):
        cut_path = tmp_path / f"cut{cut}.keras"
        cut_path.write_bytes(data[:cut])
        with pytest.raises(DarbgenError, match=r"is not a valid \.keras file|cannot be loaded as a Keras model"):
            model_from_keras(cut_path)
    # the archive intact but its weights file cut short
    cut_weights = tmp_path / "cut_weights.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(cut_weights, "w") as dst:
        for item in src.namelist():
            blob = src.read(item)
            dst.writestr(item, blob[:100] if item.endswith(".h5") else blob)
    with pytest.raises(DarbgenError, match="cannot be loaded as a Keras model.*truncated"):
        model_from_keras(cut_weights)
    # a zip whose config is not a model
    odd = tmp_path / "odd.keras"
    with zipfile.ZipFile(odd, "w") as z:
        z.writestr("config.json", '{"class_name": "Nothing", "config": {}}')
    with pytest.raises(DarbgenError, match="cannot be loaded as a Keras model"):
        model_from_keras(odd)
    with pytest.raises(DarbgenError, match="no such file"):
        model_from_keras(tmp_path / "missing.keras")
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"x")
    with pytest.raises(DarbgenError, match=r"\.keras files"):
        model_from_keras(h5)


def test_custom_layer_in_a_file_is_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="darbgen_test")
    class Twice(layers.Layer):
        def call(self, t):
            return 2 * t

    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), Twice(name="twice")])
    path = tmp_path / "custom.keras"
    model.save(path)
    keras.saving.get_custom_objects().pop("darbgen_test>Twice", None)
    with pytest.raises(DarbgenError, match=r"'twice' is a custom object \(darbgen_test>Twice\).*never custom"):
        model_from_keras(path)


def test_gru_reset_after_false_is_refused():
    model = keras.Sequential([keras.Input((5, 2)), layers.GRU(3, reset_after=False, name="g")])
    with pytest.raises(DarbgenError, match=r"'g' \(GRU\): reset_after = False is not supported"):
        model_from_keras(model)


def test_missing_keras_is_a_clear_error(monkeypatch):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    monkeypatch.setitem(sys.modules, "keras", None)          # `import keras` now raises ImportError
    with pytest.raises(DarbgenError, match=r'pip install keras "jax\[cpu\]"'):
        model_from_keras(model)


@pytest.mark.parametrize("case", ["bn_after_activation", "branch", "go_backwards", "activation_after_avg_pool",
                                  "flatten_at_end", "dense_on_3d", "channels_first", "unbuilt",
                                  "leaky_relu_layer_config"])
def test_other_refusals_are_clear(case):
    if case == "bn_after_activation":
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu", name="d"),
                                  layers.BatchNormalization()])
        match = "cannot fold into 'd', whose activation \\(relu\\) comes before the normalisation"
    elif case == "branch":
        inp = keras.Input((4,))
        a, b = layers.Dense(3)(inp), layers.Dense(3)(inp)
        model, match = keras.Model(inp, layers.Add(name="add")([a, b])), "single chain of layers"
    elif case == "go_backwards":
        model = keras.Sequential([keras.Input((5, 2)), layers.LSTM(3, go_backwards=True)])
        match = "go_backwards = True is not supported"
    elif case == "activation_after_avg_pool":
        model = keras.Sequential([keras.Input((4, 4, 1)), layers.Conv2D(2, 1), layers.AveragePooling2D(2),
                                  layers.ReLU()])
        match = "cannot be fused"
    elif case == "flatten_at_end":
        model = keras.Sequential([keras.Input((4, 4, 2)), layers.Conv2D(2, 1), layers.Flatten()])
        match = "ends with a flattened multi-channel tensor"
    elif case == "dense_on_3d":
        model = keras.Sequential([keras.Input((4, 4, 2)), layers.Dense(3)])
        match = "add a Flatten before it"
    elif case == "channels_first":
        model = keras.Sequential([keras.Input((2, 4, 4)), layers.Conv2D(2, 1, data_format="channels_first")])
        match = "data_format 'channels_first' is not supported"
    elif case == "unbuilt":
        model, match = keras.Sequential([layers.Dense(3)]), "not built"
    else:
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.ReLU(negative_slope=0.1)])
        match = "negative_slope"
    with pytest.raises(DarbgenError, match=match):
        model_from_keras(model)


@pytest.mark.slow          # starts Keras on PyTorch in a new process (20 s)
def test_keras_on_the_torch_backend_goes_to_the_keras_importer():
    """On Keras' torch backend a keras.Model is also a torch.nn.Module; load()
    must still read it as a Keras model."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    code = ("import keras, numpy as np\n"
            "from darbgen.build import load\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='relu')])\n"
            "src = load(m)\n"
            "x = np.random.default_rng(0).standard_normal((5, 4)).astype('float32')\n"
            "assert np.allclose(src.model.forward(x), m.predict(x, verbose=0), rtol=1e-5, atol=1e-6)\n"
            "print('ok', type(src.model.layers[0]).__name__)\n")
    env = dict(__import__("os").environ, KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "ok Dense" in proc.stdout, proc.stderr[-2000:]


def test_streaming_matches_keras_step_by_step(rng, gcc, tmp_path):
    """<model>_reset / <model>_step one time step at a time: the stacked LSTM
    classifier's output after 120 steps, and the GRU's state at every one of
    100 steps, match Keras within 1e-4."""
    from test_recurrent import stream

    model = randomize(keras.Sequential([keras.Input((120, 3)), layers.LSTM(6, return_sequences=True),
                                        layers.LSTM(5), layers.Dense(2)]), seed=4)
    for v in model.weights:                      # moderate weights: the state neither saturates nor vanishes
        v.assign(v.value * 0.6)
    x = rng.standard_normal((3, 120, 3)).astype(np.float32)
    (tmp_path / "lstm").mkdir()
    module = generate(model_from_keras(model), dtype="float32", kernel="packed", prefix="kws")
    _, run, steps = stream(module, tmp_path / "lstm", gcc, x.reshape(3, -1), 120)
    close(steps[:, -1], run_keras(model, x), 1e-4)
    assert np.array_equal(run, steps[:, -1])

    model = randomize(keras.Sequential([keras.Input((100, 2)), layers.GRU(4, return_sequences=True)]), seed=5)
    x = rng.standard_normal((3, 100, 2)).astype(np.float32)
    (tmp_path / "gru").mkdir()
    module = generate(model_from_keras(model), dtype="float32", kernel="csr", prefix="seq")
    _, run, steps = stream(module, tmp_path / "gru", gcc, x.reshape(3, -1), 100)
    close(steps, run_keras(model, x), 1e-4)
