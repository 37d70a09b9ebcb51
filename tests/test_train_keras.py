"""Masked fine-tuning of Keras 3 models (darbgen.train.PruningCallback): on
the JAX backend in this process, on the torch backend in a subprocess. The
masks hold through every optimizer step of several optimizers, the schedule
reaches its final ratio, the DARB pattern is valid and in darbgen's matrix
layout, a plain model.save() builds with --from-zeros, and a ratio a layer
cannot reach is refused before the first step."""
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
from conftest import need_module

from darbgen.errors import DarbgenError

os.environ.setdefault("KERAS_BACKEND", "jax")
# keras 3.15's own model.save() converts variables with np.array(), which numpy 2 flags
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


def _need(module):
    return need_module(module, "the Keras fine-tuning tests need it", "keras \"jax[cpu]\"")


_need("jax")
keras = _need("keras")
from keras import layers  # noqa: E402

from darbgen import train  # noqa: E402
from darbgen.importers.keras import model_from_keras  # noqa: E402
from darbgen.train import cubic_ratio  # noqa: E402
from darbgen.train_keras import prunable  # noqa: E402

STEPS_PER_EPOCH = 8                # 256 samples in batches of 32


@pytest.fixture(scope="module")
def data():
    """Four classes: which quadrant of channel 0 has the largest mean."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8, 8, 2)).astype(np.float32)
    quadrants = x[..., 0].reshape(256, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(256, 4)
    return x, quadrants.argmax(axis=1).astype(np.int64)


def he_init(model, seed=0):
    """He-normal kernels and zero biases drawn by NumPy: Keras' own random initializers cost seconds of XLA
    compiling on JAX, so the layers are made with zeros and filled here."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * np.sqrt(2 / np.prod(w.shape[:-1]))).astype(np.float32)
                       if w.ndim > 1 else np.zeros(w.shape, np.float32) for w in model.get_weights()])
    return model


def cnn(seed=0, channels=2):
    z = {"kernel_initializer": "zeros"}
    return he_init(keras.Sequential([
        keras.Input((8, 8, channels)), layers.Conv2D(8, 3, activation="relu", name="conv1", **z),
        layers.Conv2D(16, 3, activation="relu", name="conv2", **z), layers.Flatten(),
        layers.Dense(32, activation="relu", name="fc1", **z), layers.Dense(4, name="fc2", **z)]), seed)


def compile_fit(model, data, optimizer, callbacks, epochs=3, **compile_args):
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), **compile_args)
    return model.fit(data[0], data[1], batch_size=32, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


class Watch(keras.callbacks.Callback):
    """Runs after the PruningCallback at every train batch end: records the
    schedule and checks that every pruned weight is exactly +0.0 then."""

    def __init__(self, pruning):
        super().__init__()
        self.pruning, self.ratios, self.violations, self.masks = pruning, [], 0, []

    def on_train_begin(self, logs=None):
        self.matrices = prunable(self.model)          # the test's own view of the model's weights
        self.start = {n: m.matrix().copy() for n, m in self.matrices.items()}

    def on_train_batch_end(self, batch, logs=None):
        self.model                                    # noqa: B018  (JAX: the trained state into the variables)
        self.ratios.append(self.pruning.ratio)
        self.masks.append({n: r.mask.copy() for n, r in self.pruning.results.items()})
        for n, r in self.pruning.results.items():
            w = self.matrices[n].matrix()[~r.mask]
            self.violations += int(np.count_nonzero(w) + np.count_nonzero(np.signbit(w)))


OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: keras.optimizers.Adam(1e-2),
    "adamw": lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.05),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_masks_hold_through_every_optimizer_step(data, optimizer):
    """Gradual DARB to 4x over 12 steps, then 12 more with the masks fixed:
    after every step every pruned weight is exactly 0 (momentum and Adam
    state never revive one), the mask set never changes once the final ratio
    is in place, and the kept weights still train."""
    model = cnn()
    pruning = train.PruningCallback(4, "darb", steps=12, every=3)
    watch = Watch(pruning)
    compile_fit(model, data, OPTIMIZERS[optimizer](), [pruning, watch])
    assert pruning.step_count == 3 * STEPS_PER_EPOCH and pruning.done and watch.violations == 0
    final = watch.masks[11]                           # the masks of step 12, the final ratio's
    for masks in watch.masks[12:]:
        assert masks.keys() == final.keys()
        assert all(np.array_equal(masks[n], final[n]) for n in final)
    for n, r in pruning.results.items():
        w = watch.matrices[n].matrix()
        assert np.array_equal(r.mask, final[n]) and np.all(w[~r.mask] == 0)
        assert r.ratio == pytest.approx(4, rel=0.15)       # whole blocks: 3.56 on the first layer's 18 columns
        moved = w[r.mask] != watch.start[n][r.mask]
        assert moved.mean() > 0.9                     # the kept weights trained


def test_schedule_rises_on_the_cubic_curve_and_reaches_the_final_ratio(data):
    model = cnn()
    pruning = train.PruningCallback(8, "darb", steps=16, start=2, every=4, initial_ratio=1.5,
                                    layers=["conv2", "fc1"])
    watch = Watch(pruning)
    compile_fit(model, data, keras.optimizers.Adam(1e-2), [pruning, watch])
    # masks derived when training begins and at step 2 (the initial ratio), at steps 6, 10, 14 (the cubic
    # schedule), and at step 18 (the final ratio); the ratio after each of the 24 steps:
    want = [1.5] * 5 + [cubic_ratio(s, 8, 16, 2, 1.5) for s in (6, 10, 14) for _ in range(4)] + [8.0] * 7
    assert watch.ratios == pytest.approx(want)
    assert watch.ratios == sorted(watch.ratios) and pruning.done and watch.violations == 0
    assert set(pruning.results) == {"conv2", "fc1"}
    assert all(r.ratio == pytest.approx(8, rel=0.05) for r in pruning.results.values())
    assert np.all(keras.ops.convert_to_numpy(model.layers[0].kernel) != 0)    # not listed: dense
    with pytest.warns(UserWarning, match=r"ended at ratio 1, before the final 8 \(the schedule needs 100 "
                                         r"optimizer steps, 8 were seen\)"):
        model.fit(data[0], data[1], batch_size=32, epochs=1, verbose=0,      # compiled already
                  callbacks=[train.PruningCallback(8, steps=100, every=10)])


def darb_pattern_is_valid(result):
    """Every row of a DARB mask holds exactly one weight per block of its block size."""
    rows, cols = result.mask.shape
    for r in range(rows):
        b = int(result.block_sizes[r])
        blocks = np.zeros(-(-cols // b) * b, bool)
        blocks[:cols] = result.mask[r]
        if not np.all(blocks.reshape(-1, b).sum(axis=1) == 1):
            return False
    return True


@pytest.fixture(scope="module")
def tuned(data):
    """The CNN fine-tuned to DARB 4x: (model, callback)."""
    model = cnn()
    pruning = train.PruningCallback(4, "darb", steps=16, every=4)
    compile_fit(model, data, keras.optimizers.Adam(1e-2), [pruning], epochs=3)
    return model, pruning


def test_darb_pattern_is_valid_and_in_darbgens_layout(tuned):
    """The masks are valid DARB patterns of the matrices darbgen's importer
    makes (the Dense after the Flatten with its columns in (C, H, W) order),
    and darbgen.from_zeros reads the same pruning back from the weights."""
    import darbgen

    model, pruning = tuned
    imported = model_from_keras(model).pruning_matrices()
    assert list(pruning.results) == list(imported) == ["conv1", "conv2", "fc1", "fc2"]
    for n, r in pruning.results.items():
        w = imported[n]
        assert r.method == "darb" and darb_pattern_is_valid(r)
        assert np.all(w[~r.mask] == 0)
        back = darbgen.from_zeros(w, "darb")
        assert np.all(back.block_sizes >= r.block_sizes) and np.all(back.mask[w != 0])
        assert back.ratio >= r.ratio * 0.999


def test_saved_model_builds_with_from_zeros_and_verifies(tuned, data, tmp_path, gcc, capsys):
    from darbgen.cli import main

    model, pruning = tuned
    path = tmp_path / "tuned.keras"
    model.save(path)                                     # plain Keras: the callback adds nothing to the model
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    assert "darbgen" not in config.lower() and "constraint\": {" not in config
    assert [lay["class_name"] for lay in json.loads(config)["config"]["layers"]] == [
        "InputLayer", "Conv2D", "Conv2D", "Flatten", "Dense", "Dense"]
    calib = tmp_path / "calib.npy"
    np.save(calib, data[0][:64].transpose(0, 3, 1, 2).reshape(64, -1))      # darbgen's inputs are channel first
    code = main(["build", str(path), "--from-zeros", "--method", "darb", "--calib", str(calib),
                 "--out", str(tmp_path / "c"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["verified"] is True and report["target"] == "host"
    for layer in report["layers"]:
        r = pruning.results[layer["name"]]
        assert layer["verify"]["ok"] and layer["kept"] <= r.kept and layer["ratio"] >= r.ratio * 0.999
        assert min(int(b) for b in layer["block_sizes"]) >= int(r.block_sizes.min())


def test_an_unreachable_layer_is_refused_before_the_first_step(data):
    """A first Conv2D on one channel has 9 columns: DARB reaches 4.5 at most there."""
    x1 = (data[0][..., :1], data[1])
    model = cnn(channels=1)
    before = [w.copy() for w in model.get_weights()]
    pruning = train.PruningCallback(8, "darb", steps=2000)
    watch = Watch(pruning)
    t0 = time.perf_counter()
    with pytest.raises(DarbgenError) as info:
        compile_fit(model, x1, "adam", [pruning, watch], epochs=100)
    assert time.perf_counter() - t0 < 10
    assert str(info.value) == (
        "conv1 (8 x 9): ratio=8 cannot be reached by method 'darb', which reaches 1 to 4.5 on this layer (one "
        "weight per block of 8 columns, the largest candidate block, so at least 2 per row of 9): leave it dense "
        "with layers=['conv2', 'fc1', 'fc2'], or lower ratio= to at most 4.5.")
    assert watch.ratios == [] and pruning.step_count == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert pruning.reachable == {}                         # nothing was set up
    # the message's fix works
    fixed = train.PruningCallback(8, "darb", layers=["conv2", "fc1", "fc2"])
    fixed.setup(model)
    fixed.prune(8)
    assert fixed.done and set(fixed.results) == {"conv2", "fc1", "fc2"}
    assert fixed.reachable == {"conv2": (1.0, 36.0), "fc1": (1.0, 256.0), "fc2": (1.0, 32.0)}


def test_errors_name_api_arguments(data):
    depthwise = keras.Sequential([keras.Input((8, 8, 2)),
                                  layers.DepthwiseConv2D(3, name="dw", depthwise_initializer="zeros"),
                                  layers.Flatten(), layers.Dense(4, name="out", kernel_initializer="zeros")])
    cases = [
        (lambda: train.PruningCallback(1), "ratio must be a finite number > 1"),
        (lambda: train.PruningCallback(4, every=0), "every must be a whole number >= 1"),
        (lambda: train.PruningCallback(4, steps=-5), "steps must be a whole number >= 0"),
        (lambda: train.PruningCallback(4, initial_ratio=9), "initial_ratio must be between 1 and the final ratio 4"),
        (lambda: train.PruningCallback(4, "magic"), "unknown method 'magic'"),
        (lambda: train.PruningCallback(4, tile=(2, 2)), "option.s. tile do not apply to method 'darb'"),
        (lambda: train.PruningCallback(4, scope="model"), "unknown scope 'model'"),
        (lambda: prunable(cnn(), ["nope"]), "nope: no prunable layer of that name \\(layers=\\); the model has: "
                                            "conv1, conv2, fc1, fc2"),
        (lambda: prunable(depthwise, ["dw"]), "dw: not prunable: darbgen keeps depthwise convolutions dense"),
        (lambda: compile_fit(cnn(), data, "adam", [train.PruningCallback(4)], steps_per_execution=2),
         "steps_per_execution=1"),
        (lambda: compile_fit(cnn(), data, "adam", [train.PruningCallback(4, "nm", m=8, steps=10)]),
         "conv1: ratio 4 and m=8 disagree; give one of them \\(drop m= and the ratio chooses it\\)"),
    ]
    for call, match in cases:
        with pytest.raises(DarbgenError, match=match) as info:
            call()
        assert "--" not in str(info.value), str(info.value)
    assert list(prunable(depthwise)) == ["out"]              # depthwise left dense unless asked for


def same_matrices_as_the_importer(model, rng):
    want = model_from_keras(model).pruning_matrices()
    got = prunable(model)
    assert list(got) == list(want)
    for n, m in got.items():
        np.testing.assert_array_equal(m.matrix(), np.asarray(want[n], np.float32))
        mask = rng.random(m.shape) < 0.5
        np.testing.assert_array_equal(m.to_matrix(m.to_kernel(mask)), mask)


def test_matrices_are_the_importers_for_conv1d(rng):
    """prunable() reads each kernel as darbgen's importer does (Conv1D, the
    Dense after a Flatten of a (L, C) signal with its columns permuted), and
    masks go back to the kernel's layout."""
    z = {"kernel_initializer": "zeros"}
    same_matrices_as_the_importer(he_init(keras.Sequential([
        keras.Input((12, 3)), layers.Conv1D(5, 4, activation="relu", **z), layers.Flatten(), layers.Dense(6, **z)])),
        rng)


@pytest.mark.slow                 # building LSTM / GRU models on JAX takes seconds
def test_matrices_are_the_importers_for_lstm_and_gru(rng):
    """LSTM and GRU kernels as darbgen's <layer>.w_ih / .w_hh, rows in its gate order."""
    keras.utils.set_random_seed(1)
    # named: Keras numbers unnamed layers per process, so "lstm" would be "lstm_3" after other tests' models
    rnn = keras.Sequential([keras.Input((7, 4)), layers.LSTM(5, return_sequences=True, name="lstm"),
                            layers.GRU(6, name="gru"), layers.Dense(3)])
    same_matrices_as_the_importer(rnn, rng)
    assert list(prunable(rnn, ["lstm", "gru.w_hh"])) == ["lstm.w_ih", "lstm.w_hh", "gru.w_hh"]


def test_importing_darbgen_train_does_not_import_keras():
    code = "import sys, darbgen.train; assert 'keras' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


TORCH_SCRIPT = textwrap.dedent("""
    import numpy as np, keras, darbgen.train as dt
    from keras import layers
    assert keras.backend.backend() == "torch"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 8, 8, 2)).astype("float32")
    y = x[..., 0].reshape(128, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(128, 4).argmax(1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(8, 3, activation="relu"), layers.Flatten(),
                              layers.Dense(16, activation="relu"), layers.Dense(4)])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = dt.PruningCallback(4, "darb", steps=8, every=2)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for n, r in cb.results.items():
                seen.append(int(np.count_nonzero(cb.matrices[n].matrix()[~r.mask])))

    model.fit(x, y, batch_size=32, epochs=4, verbose=0, callbacks=[cb, Watch()])
    fixed = {n: r.mask.copy() for n, r in cb.results.items()}
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[cb, Watch()])
    assert cb.done and cb.step_count == 24 and len(seen) == 3 * 23 and sum(seen) == 0, (cb.step_count, seen)
    assert all(np.array_equal(cb.results[n].mask, fixed[n]) for n in fixed)
    model.save("PATH")
    again = keras.saving.load_model("PATH", safe_mode=True)
    for layer in again.layers:
        if layer.name in cb.results:
            k = keras.ops.convert_to_numpy(layer.kernel)
            assert np.array_equal(k != 0, cb.matrices[layer.name].to_kernel(cb.results[layer.name].mask) & (k != 0))
            assert np.count_nonzero(k) <= cb.results[layer.name].kept
    print("ok", {n: round(r.ratio, 3) for n, r in cb.results.items()})
""")


@pytest.mark.slow                 # importing torch and Keras' torch backend: about 12 s
def test_the_torch_backend(tmp_path):
    pytest.importorskip("torch")
    env = dict(os.environ, KERAS_BACKEND="torch")
    script = TORCH_SCRIPT.replace("PATH", str(tmp_path / "torch.keras"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-3000:]
    assert "'conv2d': 4.0" in proc.stdout and "'dense': 4.0" in proc.stdout
