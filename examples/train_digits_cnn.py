"""Train the small CNN bundled with darbgen: ``examples/digits_cnn.npz``.

A convolutional network for scikit-learn's 8x8 handwritten digits (the same
data and stratified split as ``train_digits_mlp.py``), trained in plain NumPy
so that it needs nothing beyond NumPy and scikit-learn's bundled data:

    input (1, 8, 8), pixel / 16
    conv1  16 x 1 x 3 x 3, padding same, ReLU     -> (16, 8, 8)
    pool1  max 2 x 2                               -> (16, 4, 4)
    conv2  32 x 16 x 3 x 3, padding same, ReLU    -> (32, 4, 4)
    pool2  max 2 x 2                               -> (32, 2, 2)
    flatten                                        -> 128
    fc     10 x 128, softmax

Adam on the cross-entropy, fixed seeds: running it twice gives the same file.
The output follows docs/npz.md (``__model__`` with the layer list, weights
(out, in, kh, kw) float32, ``calib.x`` = 256 training images, ``test.x`` /
``test.y`` = the held-out set). After saving, the file is reloaded and the
darbgen graph's float forward must give exactly this script's predictions.

    python examples/train_digits_cnn.py --force
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("train_digits_cnn.py needs scikit-learn: pip install 'darbgen[examples]'")

SEED = 0
EPOCHS = 40
BATCH = 32
LEARNING_RATE = 3e-3
CALIB_COUNT = 256
C1, C2 = 16, 32          # channels of the two convolutions


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y.astype(np.int32), test_size=0.25, random_state=0, stratify=y)


# ----------------------------------------------------------------------------- layers (im2col, 3x3 same)

def im2col(x):
    """(n, c, h, w) -> (n, h * w, c * 9) patches of a 3x3 'same' convolution, column (c, ky, kx)."""
    n, c, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, :, ky:ky + h, kx:kx + w] for ky in range(3) for kx in range(3)], axis=2)
    return cols.reshape(n, c * 9, h * w).transpose(0, 2, 1)          # (n, hw, c*9) with column c*9 + ky*3 + kx


def col2im(dcols, shape):
    n, c, h, w = shape
    d = dcols.transpose(0, 2, 1).reshape(n, c, 9, h, w)
    dp = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for k in range(9):
        ky, kx = divmod(k, 3)
        dp[:, :, ky:ky + h, kx:kx + w] += d[:, :, k]
    return dp[:, :, 1:-1, 1:-1]


def conv_forward(x, w, b):
    n, _, h, wd = x.shape
    cols = im2col(x)
    y = cols @ w.reshape(w.shape[0], -1).T + b                      # (n, hw, o)
    return y.transpose(0, 2, 1).reshape(n, w.shape[0], h, wd), cols


def conv_backward(dy, cols, w, x_shape):
    n, o, h, wd = dy.shape
    d = dy.reshape(n, o, h * wd).transpose(0, 2, 1)                 # (n, hw, o)
    dw = np.einsum("npo,npk->ok", d, cols).reshape(w.shape)
    db = d.sum(axis=(0, 1))
    dcols = d @ w.reshape(o, -1)
    return col2im(dcols, x_shape), dw, db


def pool_forward(x):
    n, c, h, w = x.shape
    v = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = v.argmax(axis=-1)
    return np.take_along_axis(v, arg[..., None], -1)[..., 0], arg


def pool_backward(dy, arg, shape):
    n, c, h, w = shape
    dv = np.zeros(dy.shape + (4,), dy.dtype)
    np.put_along_axis(dv, arg[..., None], dy[..., None], -1)
    return dv.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def forward(params, x, keep=False):
    w1, b1, w2, b2, w3, b3 = params
    a1, c1 = conv_forward(x, w1, b1)
    r1 = np.maximum(a1, 0)
    p1, arg1 = pool_forward(r1)
    a2, c2 = conv_forward(p1, w2, b2)
    r2 = np.maximum(a2, 0)
    p2, arg2 = pool_forward(r2)
    flat = p2.reshape(len(x), -1)
    logits = flat @ w3.T + b3
    if not keep:
        return logits
    return logits, (c1, a1, r1, p1, arg1, c2, a2, r2, p2, arg2, flat)


def gradients(params, x, y):
    w1, b1, w2, b2, w3, b3 = params
    logits, (c1, a1, r1, p1, arg1, c2, a2, r2, p2, arg2, flat) = forward(params, x, keep=True)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    dlogits = prob.copy()
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dw3, db3 = dlogits.T @ flat, dlogits.sum(axis=0)
    dp2 = (dlogits @ w3).reshape(p2.shape)
    da2 = pool_backward(dp2, arg2, r2.shape) * (a2 > 0)
    dp1, dw2, db2 = conv_backward(da2, c2, w2, p1.shape)
    da1 = pool_backward(dp1, arg1, r1.shape) * (a1 > 0)
    _, dw1, db1 = conv_backward(da1, c1, w1, x.shape)
    return [dw1, db1, dw2, db2, dw3, db3]


def train(x, y):
    rng = np.random.default_rng(SEED)
    params = [rng.standard_normal((C1, 1, 3, 3)) * np.sqrt(2 / 9), np.zeros(C1),
              rng.standard_normal((C2, C1, 3, 3)) * np.sqrt(2 / (9 * C1)), np.zeros(C2),
              rng.standard_normal((10, 4 * C2)) * np.sqrt(1 / (4 * C2)), np.zeros(10)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    x = x.reshape(-1, 1, 8, 8).astype(np.float64)
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            grads = gradients(params, x[idx], y[idx])
            step += 1
            for p, g, mi, vi in zip(params, grads, m, v):
                mi *= 0.9
                mi += 0.1 * g
                vi *= 0.999
                vi += 0.001 * g * g
                p -= LEARNING_RATE * (mi / (1 - 0.9 ** step)) / (np.sqrt(vi / (1 - 0.999 ** step)) + 1e-8)
    return [p.astype(np.float32) for p in params]


def predict(params, x):
    return forward([p.astype(np.float64) for p in params], x.reshape(-1, 1, 8, 8).astype(np.float64)).argmax(1)


def export(params, x_train, x_test, y_test, accuracy):
    w1, b1, w2, b2, w3, b3 = params
    layers = [
        {"name": "conv1", "kind": "conv2d", "padding": "same", "activation": "relu"},
        {"name": "pool1", "kind": "maxpool2d", "size": 2},
        {"name": "conv2", "kind": "conv2d", "padding": "same", "activation": "relu"},
        {"name": "pool2", "kind": "maxpool2d", "size": 2},
        {"name": "flatten", "kind": "flatten"},
        {"name": "fc", "kind": "dense", "activation": "softmax"},
    ]
    meta = {"format": "darbgen-npz", "version": 1, "name": "digits_cnn", "input_shape": [1, 8, 8],
            "input_scale": "pixel/16", "layers": layers, "trained_by": "examples/train_digits_cnn.py",
            "test_accuracy": float(accuracy)}
    return {"conv1.weight": w1, "conv1.bias": b1, "conv2.weight": w2, "conv2.bias": b2, "fc.weight": w3,
            "fc.bias": b3, "calib.x": x_train[:CALIB_COUNT].astype(np.float32),
            "test.x": x_test.astype(np.float32), "test.y": y_test.astype(np.int32),
            "__model__": np.array(json.dumps(meta))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("digits_cnn.npz")))
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        sys.exit(f"{out} exists; pass --force to replace it")
    x_train, x_test, y_train, y_test = load_data()
    params = train(x_train, y_train)
    train_acc = float(np.mean(predict(params, x_train) == y_train))
    ours = predict(params, x_test)
    test_acc = float(np.mean(ours == y_test))
    print(f"train accuracy: {train_acc:.4f}  test accuracy: {test_acc:.4f}")
    arrays = export(params, x_train, x_test, y_test, test_acc)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, out)
    # the darbgen graph of the saved file must predict exactly what this script does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from darbgen.importers.npz import model_from_npz
    from darbgen.npzio import load_npz

    model = model_from_npz(load_npz(out), str(out))
    theirs = model.forward(x_test).argmax(axis=1)
    assert np.array_equal(theirs, ours), "darbgen's forward pass disagrees with the training script"
    print(f"wrote {out}; darbgen's graph agrees on all {len(ours)} test predictions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
