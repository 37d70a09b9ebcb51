"""Train the small example network bundled with darbgen: ``examples/digits_mlp.npz``.

What it trains
--------------
A scikit-learn ``MLPClassifier`` (hidden layers 256 and 128, ReLU, Adam, fixed
``random_state``) on scikit-learn's bundled 8x8 handwritten digits
(``sklearn.datasets.load_digits``: 1797 images, 10 classes). The data ships
inside the scikit-learn package, so nothing is downloaded.

Input scaling: each of the 64 pixels is an integer 0..16; the network's input is
``pixel / 16`` (float32 in [0, 1]). Anything that feeds the saved network must
scale its inputs the same way (the file records this as ``"input_scale": "pixel/16"``).

The data is split with a stratified train/test split (``test_size=0.25``, fixed
seed). Training is done in float32, so the saved float32 arrays are exactly the
trained weights, with no rounding on export.

Output schema (``np.savez``, no pickled objects; load with
``np.load(path, allow_pickle=False)``)
-------------------------------------------------------------------------------
* ``fc1.weight`` (256, 64), ``fc1.bias`` (256,)   float32, ReLU
* ``fc2.weight`` (128, 256), ``fc2.bias`` (128,)  float32, ReLU
* ``fc3.weight`` (10, 128), ``fc3.bias`` (10,)    float32, softmax (output)

  Weights are (out, in), i.e. ``y = W @ x + b`` (scikit-learn's ``coefs_`` are
  (in, out) and are transposed on export).
* ``test.x`` (n_test, 64) float32: the held-out inputs, already scaled by 1/16.
* ``test.y`` (n_test,) int32: their labels 0..9.
* ``calib.x`` (256, 64) float32: the first 256 training inputs, scaled by 1/16,
  for calibrating quantization without touching the test set.
* ``__model__``: a 0-d unicode string array holding JSON metadata
  (format ``darbgen-npz`` version 1, layer order/activations, input shape and
  scale, the script that trained it, and the test accuracy).

After saving, the script reloads the file and checks that a plain NumPy forward
pass over the saved arrays gives exactly scikit-learn's class predictions on the
test set. Running it twice gives identical arrays.

Re-running it
-------------
It needs scikit-learn (the ``examples`` extra: ``pip install -e '.[examples]'``).
From the repository root::

    python examples/train_digits_mlp.py --force

``--out PATH`` writes elsewhere (default: ``digits_mlp.npz`` next to this
script). An existing file is never overwritten unless ``--force`` is given; the
file is written to a temporary file in the same directory and then moved into
place with ``os.replace``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

try:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "train_digits_mlp.py needs scikit-learn: pip install 'darbgen[examples]' "
        "(or pip install scikit-learn)"
    )

SPLIT_SEED = 0
MODEL_SEED = 0
TEST_SIZE = 0.25
HIDDEN = (256, 128)
MAX_ITER = 200
LAYER_NAMES = ("fc1", "fc2", "fc3")
ACTIVATIONS = ("relu", "relu", "softmax")
DEFAULT_OUT = Path(__file__).resolve().parent / "digits_mlp.npz"


def load_data():
    """Digits scaled to [0, 1] (pixel / 16) as float32, stratified split."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    return train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)


def train(x_train, y_train) -> MLPClassifier:
    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        solver="adam",
        alpha=1e-4,
        batch_size=64,
        learning_rate_init=1e-3,
        max_iter=MAX_ITER,
        tol=1e-5,
        n_iter_no_change=10,
        shuffle=True,
        random_state=MODEL_SEED,
    )
    with warnings.catch_warnings():
        # Hitting max_iter on a training loss that is already ~0 is fine here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    return clf


CALIB_COUNT = 256


def export_arrays(clf: MLPClassifier, x_test, y_test, test_accuracy: float, x_calib) -> dict[str, np.ndarray]:
    if len(clf.coefs_) != len(LAYER_NAMES):
        raise AssertionError(f"expected {len(LAYER_NAMES)} layers, got {len(clf.coefs_)}")
    arrays: dict[str, np.ndarray] = {}
    for name, coef, intercept in zip(LAYER_NAMES, clf.coefs_, clf.intercepts_):
        # sklearn stores (in, out); darbgen wants (out, in).
        arrays[f"{name}.weight"] = np.ascontiguousarray(coef.T, dtype=np.float32)
        arrays[f"{name}.bias"] = np.ascontiguousarray(intercept, dtype=np.float32)
    arrays["test.x"] = np.ascontiguousarray(x_test, dtype=np.float32)
    arrays["test.y"] = np.ascontiguousarray(y_test, dtype=np.int32)
    arrays["calib.x"] = np.ascontiguousarray(x_calib[:CALIB_COUNT], dtype=np.float32)
    meta = {
        "format": "darbgen-npz",
        "version": 1,
        "name": "digits_mlp",
        "input_shape": [int(x_test.shape[1])],
        "input_scale": "pixel/16",
        "layers": [
            {"name": name, "kind": "dense", "activation": act}
            for name, act in zip(LAYER_NAMES, ACTIVATIONS)
        ],
        "trained_by": "examples/train_digits_mlp.py",
        "test_accuracy": float(test_accuracy),
    }
    arrays["__model__"] = np.array(json.dumps(meta))
    return arrays


def save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the target directory, then os.replace into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: np.savez does not append ".npz"
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def numpy_forward(z: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Plain NumPy inference over the saved arrays; returns class probabilities."""
    meta = json.loads(str(z["__model__"]))
    h = x.astype(np.float32)
    for layer in meta["layers"]:
        w, b = z[layer["name"] + ".weight"], z[layer["name"] + ".bias"]
        h = h @ w.T + b
        if layer["activation"] == "relu":
            h = np.maximum(h, 0)
        elif layer["activation"] == "softmax":
            h = np.exp(h - h.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
        else:
            raise ValueError(f"unknown activation {layer['activation']!r}")
    return h


def verify(path: Path, clf: MLPClassifier, x_test, y_test) -> None:
    with np.load(path, allow_pickle=False) as z:
        z = {k: z[k] for k in z.files}
    for k, v in z.items():
        if k == "__model__":
            assert v.shape == () and v.dtype.kind == "U", (k, v.dtype, v.shape)
        elif k == "test.y":
            assert v.dtype == np.int32, (k, v.dtype)
        else:
            assert v.dtype == np.float32, (k, v.dtype)
    meta = json.loads(str(z["__model__"]))
    assert meta["format"] == "darbgen-npz" and meta["version"] == 1
    assert np.array_equal(z["test.x"], x_test) and np.array_equal(z["test.y"], y_test)

    ours = numpy_forward(z, z["test.x"]).argmax(axis=1)
    theirs = clf.predict(x_test)
    agree = int(np.sum(ours == theirs))
    n = len(theirs)
    print(f"numpy forward pass vs sklearn predictions: {agree}/{n} agree")
    assert np.array_equal(ours, theirs), "NumPy forward pass disagrees with sklearn"
    acc = float(np.mean(ours == z["test.y"]))
    assert acc == meta["test_accuracy"], (acc, meta["test_accuracy"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output .npz path (default: {DEFAULT_OUT})")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = ap.parse_args(argv)
    out: Path = args.out

    if out.exists() and not args.force:
        print(f"error: {out} exists; pass --force to overwrite", file=sys.stderr)
        return 1

    x_train, x_test, y_train, y_test = load_data()
    t0 = time.perf_counter()
    clf = train(x_train, y_train)
    dt = time.perf_counter() - t0
    assert clf.coefs_[0].dtype == np.float32, clf.coefs_[0].dtype
    train_acc = float(np.mean(clf.predict(x_train) == y_train))
    test_acc = float(np.mean(clf.predict(x_test) == y_test))
    print(f"trained in {dt:.1f}s ({clf.n_iter_} epochs, final loss {clf.loss_:.5f})")
    print(f"train accuracy: {train_acc:.4f}  ({len(y_train)} samples)")
    print(f"test accuracy:  {test_acc:.4f}  ({len(y_test)} samples)")

    arrays = export_arrays(clf, x_test, y_test, test_acc, x_train)
    save_atomic(out, arrays)
    verify(out, clf, x_test, y_test)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
