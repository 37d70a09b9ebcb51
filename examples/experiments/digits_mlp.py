"""Pruning experiment 1: an MLP (64-256-128-10, ReLU) on scikit-learn's 8x8
handwritten digits (bundled with scikit-learn: nothing is downloaded).

Every method (irregular, block 4x4, block 1x4, bank-balanced, N:M with N=1,
DARB) at every ratio, one-shot, one-shot with refit and fine-tuned; metric:
test accuracy (%), tolerance 0.5 points. Results, weights and a report go to
docs/results/digits_mlp (see docs/results.md). About 8 minutes on 2 cores:

    .venv/bin/python examples/experiments/digits_mlp.py
"""
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402

RATIOS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
SPLIT_SEED = 0          # the split of examples/train_digits_mlp.py


def digits(image=False):
    """(x_train, y_train, x_test, y_test) torch tensors, pixels / 16; the
    stratified 75/25 split of examples/train_digits_*.py."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, stratify=d.target, random_state=SPLIT_SEED)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (xtr, ytr.astype(np.int64), xte,
                                                                     yte.astype(np.int64)))


def classification_task(name, title, model, data, dense_steps, fine_tune_steps, layers=None, seeds=3, log=sweep.say):
    import torch

    xtr, ytr, xte, yte = data
    gen = torch.Generator().manual_seed(1)

    def batches():
        i = torch.randint(0, len(xtr), (64,), generator=gen)
        return xtr[i], ytr[i]

    def loss(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

    def evaluate(m):
        with torch.no_grad():
            return 100.0 * float((m(xte).argmax(1) == yte).double().mean())

    sweep.train_dense(model, batches, loss, dense_steps, log=log)
    return sweep.Task(name, title, model, evaluate, batches, loss, calib=xtr, layers=layers,
                      fine_tune_steps=fine_tune_steps, reseed=lambda seed: gen.manual_seed(100 + seed), seeds=seeds)


def main():
    import torch

    args = sweep.parse_args(__doc__, "docs/results/digits_mlp", RATIOS, 1500)
    torch.manual_seed(0)
    model = torch.nn.Sequential(OrderedDict([
        ("fc1", torch.nn.Linear(64, 256)), ("relu1", torch.nn.ReLU()),
        ("fc2", torch.nn.Linear(256, 128)), ("relu2", torch.nn.ReLU()),
        ("fc3", torch.nn.Linear(128, 10))]))
    dense_steps = 600 if args.quick else 6000
    steps = 100 if args.quick else args.steps
    task = classification_task("digits_mlp", "MLP 64-256-128-10 on scikit-learn digits", model, digits(),
                               dense_steps, steps, seeds=args.seeds or (1 if args.quick else 3))
    sweep.run(task, args)


if __name__ == "__main__":
    main()
