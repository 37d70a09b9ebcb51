"""The shared experiment loop of examples/experiments/*.py: every pruning
method at every ratio, one-shot, one-shot with refit, and fine-tuned, on one
trained PyTorch model, written as a darbgen-experiment/1 results file that
``darbgen report`` turns into tables and plots (docs/results.md).

Variants, all starting from the same trained dense model:

* ``one-shot``: magnitude saliency, masks applied, nothing else (the paper's
  starting point);
* ``refit``: activation-aware saliency (|w| * ||x|| over calibration inputs)
  and the least-squares refit of the kept weights (darbgen.train.refit);
* ``fine-tuned``: darbgen.train.fine_tune, the ratio rising on the cubic
  schedule over the first half of the steps, the pattern derived again from
  the weights as it rises, then the masks fixed for the second half. Its
  metric is the mean over ``Task.seeds`` runs with different batch orders
  (on a 450-image test set one image is 0.22 points: single runs are noisy).

Storage is counted for int8 values in each method's own format: CSR
(irregular), BSR (blocks), DARB (darb), and an offset of ceil(log2(group))
bits per kept weight for N:M with N=1 and bank-balanced, which need no
per-row tables.
"""
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from darbgen import formats, train
from darbgen.errors import DarbgenError

#: (method key, label, darbgen method, options)
METHODS = (
    ("irregular", "irregular", "irregular", {}),
    ("block4x4", "block 4x4", "block", {"tile": (4, 4)}),
    ("block1x4", "block 1x4", "block", {"tile": (1, 4)}),
    ("bank_balanced", "bank-balanced", "bank_balanced", {}),
    ("bmwm", "N:M, N=1 (BMWM)", "nm", {"n": 1}),
    ("darb", "DARB", "darb", {}),
)
VARIANTS = ("one-shot", "refit", "fine-tuned")


def say(message):
    """Progress on stdout, flushed (runs take minutes; a log file should show them as they go)."""
    print(message, flush=True)


@dataclass
class Task:
    """One experiment: a trained model and how to score and train it."""

    name: str
    title: str
    model: object                       # the trained dense torch module
    evaluate: object                    # evaluate(model) -> metric
    batches: object                     # callable -> one training batch
    loss: object                        # loss(model, batch) -> scalar tensor
    calib: object                       # calibration inputs (tensor)
    metric: str = "accuracy"
    higher_is_better: bool = True
    tolerance: dict = field(default_factory=lambda: {"kind": "points", "value": 0.5})
    layers: list = None                 # parameter names to prune (None: all)
    fine_tune_steps: int = 1000
    lr: float = 1e-3
    scope: str = "layer"                # "global": one ratio over the whole model (darb, irregular, block)
    reseed: object = None               # reseed(seed): restart the batch stream (fine-tuning repeats)
    seeds: int = 1                      # fine-tuned runs averaged over this many seeds


def storage_bits(method, options, results):
    """Total bits (int8 values, index, metadata) and kept weights of the masks."""
    bits, kept = 0.0, 0
    for r in results.values():
        w = np.ones(r.mask.shape, np.int8)          # only the pattern matters for the byte count
        if method == "irregular":
            enc = formats.encode(w, "csr", mask=r.mask)
        elif method == "block":
            enc = formats.encode(w, "bsr", mask=r.mask, tile=r.options.get("tile", options.get("tile")))
        elif method == "darb":
            enc = formats.encode(w, "darb", mask=r.mask, block_sizes=r.block_sizes)
        else:
            # one kept weight in every group of m (N:M, N=1) or a fixed count per bank: an offset of
            # ceil(log2(group)) bits per kept weight, no per-row tables
            group = int(r.options["m"] if method == "nm" else r.options["bank_length"])
            bits += r.kept * (8 + formats.offset_bits(group))
            kept += r.kept
            continue
        bits += 8.0 * enc.nbytes("int8")["total"]
        kept += r.kept
    return bits, kept


def _format(method):
    return {"irregular": "csr", "block": "bsr", "darb": "darb", "nm": "darb (one block size)",
            "bank_balanced": "in-bank offsets"}[method]


def _ratio_of(results):
    total = sum(r.mask.size for r in results.values())
    return total / max(1, sum(r.kept for r in results.values()))


def run_variant(task, variant, method, options, ratio):
    """One run: a pruned copy of the task's model and its PruneResults."""
    model = copy.deepcopy(task.model)
    options = dict(options, scope=task.scope)
    if variant == "one-shot":
        results = train.prune_masks(model, ratio, method, layers=task.layers, **options)
        train.apply_masks(model, results)
    elif variant == "refit":
        norms = train.activation_norms(model, task.calib, task.layers)
        results = train.prune_masks(model, ratio, method, layers=task.layers, input_norms=norms, **options)
        train.refit(model, results, task.calib)
    else:
        pruning = train.fine_tune(model, task.batches, task.loss, ratio, method, steps=task.fine_tune_steps,
                                  lr=task.lr, layers=task.layers, **options)
        results = pruning.results
    model.eval()
    return model, results


def sweep(task, ratios, out_dir, *, methods=None, variants=VARIANTS, command=None, dense_metric=None,
          log=say):
    """Run every method x variant x ratio; write results.json and weights.npz
    into ``out_dir`` (atomically) and return the results dict."""
    start = time.perf_counter()
    dense_metric = task.evaluate(task.model) if dense_metric is None else dense_metric
    log(f"{task.title}: dense {task.metric} {dense_metric:.4g}")
    chosen = [m for m in METHODS if methods is None or m[0] in methods]
    runs = []
    for key, label, method, options in chosen:
        for variant in variants:
            for ratio in ratios:
                t = time.perf_counter()
                values = []
                try:
                    for seed in range(task.seeds if variant == "fine-tuned" else 1):
                        if task.reseed is not None:
                            task.reseed(seed)
                        model, results = run_variant(task, variant, method, options, ratio)
                        achieved = _ratio_of(results)
                        if abs(np.log(achieved / ratio)) > np.log(1.25):
                            raise DarbgenError(f"its structure reaches {achieved:.3g}x, not {ratio:g}x")
                        values.append(float(task.evaluate(model)))
                    bits, kept = storage_bits(method, options, results)
                except DarbgenError as e:
                    log(f"  {label:18s} {variant:10s} {ratio:>4g}x  skipped: {e}")
                    continue
                value = float(np.mean(values))
                runs.append({"method": key, "label": label, "variant": variant, "requested_ratio": float(ratio),
                             "ratio": _ratio_of(results), "metric": value, "bits_per_kept": bits / max(kept, 1),
                             "format": _format(method), "kept": int(kept), "metric_per_seed": values,
                             "seconds": round(time.perf_counter() - t, 2)})
                log(f"  {label:18s} {variant:10s} {ratio:>4g}x  {task.metric} {value:8.4g}  "
                    f"({bits / max(kept, 1):.1f} bits/kept, {time.perf_counter() - t:.1f} s)")
    params = train.prunable(task.model, task.layers)
    result = {
        "schema": "darbgen-experiment/1", "task": task.name, "title": task.title, "metric": task.metric,
        "higher_is_better": task.higher_is_better, "dense_metric": float(dense_metric),
        "tolerance": task.tolerance, "value_dtype": "int8",
        "command": command or "python " + " ".join(sys.argv),
        "seconds": round(time.perf_counter() - start, 1), "weights": "weights.npz",
        "pruned_weights": {n: list(p.shape) for n, (_, p) in params.items()},
        "fine_tune_steps": task.fine_tune_steps, "scope": task.scope, "runs": runs,
    }
    weights = {n: p.detach().cpu().numpy().reshape(p.shape[0], -1).astype(np.float32) for n, (_, p) in params.items()}
    _write(out_dir, result, weights)
    return result


def _write(out_dir, result, weights):
    """results.json and weights.npz into out_dir, each written whole then renamed."""
    os.makedirs(out_dir, exist_ok=True)
    for name, writer in (("results.json", lambda f: f.write(json.dumps(result, indent=1).encode())),
                         ("weights.npz", lambda f: np.savez(f, **weights))):
        fd, tmp = tempfile.mkstemp(prefix="." + name, dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                writer(f)
            os.replace(tmp, os.path.join(out_dir, name))
        except BaseException:
            os.unlink(tmp)
            raise


def run(task, args):
    """The sweep over the ratios the command line asked for (two with --quick), then the report."""
    ratios = args.ratios[:2] if args.quick else args.ratios
    task.scope = args.scope
    if args.scope == "global":
        task.name += "_global"
        task.title += " (one ratio over the whole model)"
    sweep(task, ratios, args.out, methods=args.methods, variants=args.variants)
    if not args.no_report:
        report(args.out)


def report(out_dir, log=say):
    """Render out_dir/results.json with ``darbgen report`` into out_dir/report."""
    from darbgen import reporting

    paths = reporting.write_report(os.path.join(out_dir, "report"), results=[os.path.join(out_dir, "results.json")],
                                   force=True)
    log(f"report: {paths[0]}")
    return paths


def train_dense(model, batches, loss, steps, lr=1e-3, log=say, label="dense"):
    """Train ``model`` with Adam and a cosine learning-rate decay (to convergence,
    so that fine-tuned runs are not ahead just by training longer)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    t = time.perf_counter()
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        value = loss(model, batches())
        value.backward()
        opt.step()
        sched.step()
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"  {label} training {step + 1}/{steps}: loss {value.item():.4f} ({time.perf_counter() - t:.0f} s)")
    model.eval()
    return model


def parse_args(description, default_out, default_ratios, default_steps, extra=()):
    import argparse

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=default_out, help=f"folder for results.json, weights.npz and the report "
                                                      f"(default {default_out})")
    p.add_argument("--ratios", default=",".join(f"{r:g}" for r in default_ratios),
                   help="comma-separated pruning ratios (default %(default)s)")
    p.add_argument("--methods", default=None, help="comma-separated subset of: " + ", ".join(m[0] for m in METHODS))
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--steps", type=int, default=default_steps, help="fine-tuning steps per run (default %(default)s)")
    p.add_argument("--scope", choices=("layer", "global"), default="layer",
                   help="layer (default): every matrix at the ratio; global: the kept weights spread over the "
                        "whole model by saliency, for darb, irregular and block (the others fix each row's count)")
    p.add_argument("--seeds", type=int, default=None, help="fine-tuned runs averaged over this many batch orders")
    p.add_argument("--quick", action="store_true", help="a tiny run (2 ratios, short training) to check the script")
    p.add_argument("--no-report", action="store_true", help="do not render the Markdown report")
    for flag, text in extra:
        p.add_argument(flag, action="store_true", help=text)
    args = p.parse_args()
    args.ratios = [float(r) for r in args.ratios.split(",")]
    args.methods = None if args.methods is None else args.methods.split(",")
    args.variants = args.variants.split(",")
    bad = [v for v in args.variants if v not in VARIANTS] + [m for m in (args.methods or [])
                                                              if m not in [k[0] for k in METHODS]]
    if bad:
        p.error(f"unknown method or variant {bad[0]!r}")
    return args
