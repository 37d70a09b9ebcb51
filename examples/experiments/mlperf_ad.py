"""MLPerf Tiny anomaly detection through darbgen: the dense autoencoder
(640-128-128-128-128-8-128-128-128-128-640) pruned by every method at fixed
ratios, against the unpruned int8 model and TFLite Micro + CMSIS-NN, in
reconstruction error (issue 15, "Results on a real model"; docs/results.md).

Model: ``ad01_int8.tflite`` (every fixed-ratio row) and its float twin
``ad01.h5`` (darbgen's own int8 quantization, and the fine-tuning's start),
in the shared folder's ``models/mlperf_tiny``. Data: the real inputs
``ad01_normal_id01_sample.npy``, 40 vectors of 640 log-mel values (5 frames x
128 bands) from one normal clip of machine id 01, split by alternate vectors:

* even vectors (0, 2, ..., 38; 20 vectors): calibration (refit, the float
  model's quantization) and the search's validation set; with 20 vectors
  there are not enough to keep the two apart;
* odd vectors (1, 3, ..., 39; 20 vectors): the test set of every figure.

Both halves come from the same clip: the test error measures how well a
pruned model reconstructs normal sound it has not been fitted to, not a
detection score (that needs anomalous clips, which the shared folder does
not hold). Metric: the mean over test vectors of the mean squared error
between the input and the C's output (``BuildResult.eval_outputs``,
dequantized), as the MLPerf Tiny anomaly score; lower is better, and the
table gives each row's error as a multiple of the unpruned int8 model's.

Rows and columns are mlperf_kws.py's (its docstring): TFLM + CMSIS-NN, darbgen
unpruned, each method at each ratio one-shot; ``--refit``, ``--search``
(``max_drop`` is a relative budget here, in percent of the unpruned
model's error: 10 = at most 10 % more) and ``--fine-tune`` (ad01.h5 in Keras 3 with
``darbgen.train.PruningCallback``, trained on the 20 calibration vectors
with batch norm frozen, saved as .h5 and built with ``from_zeros=True``)
behind flags (times on this 2-core machine)::

    .venv/bin/python examples/experiments/mlperf_ad.py                  # one-shot grid, 3.5 min
    .venv/bin/python examples/experiments/mlperf_ad.py --skip-one-shot --refit --merge       # 3.8 min
    .venv/bin/python examples/experiments/mlperf_ad.py --skip-one-shot --search --merge      # 5.3 min
    .venv/bin/python examples/experiments/mlperf_ad.py --skip-one-shot --fine-tune --merge   # 1.6 min
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mlperf_kws as mk  # noqa: E402
from mlperf_kws import build_row, say  # noqa: E402


def split(x):
    """(calibration and validation, test): even and odd vectors."""
    return x[0::2], x[1::2]


def mse(out, x):
    """Mean over vectors of each vector's mean squared reconstruction error."""
    return float(np.mean(np.mean((np.asarray(out, np.float64) - np.asarray(x, np.float64)) ** 2, axis=1)))


def ad_fine_tune_rows(exp, a, harness, log=say):
    """ad01.h5 in Keras 3, batch norm frozen (20 vectors cannot re-estimate its statistics), fine-tuned on the
    calibration vectors (mlperf_kws.fine_tune_rows)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    xc = exp.calib
    steps = int(np.ceil(len(xc) / a.ft_batch)) * a.ft_epochs

    def make_model():
        model = keras.models.load_model(a.shared / "models" / "mlperf_tiny" / "ad01.h5", compile=False)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(a.ft_lr), loss="mse")
        return model

    def fit(model, callbacks):
        if model is not None:
            keras.utils.set_random_seed(0)
            model.fit(xc, xc, batch_size=a.ft_batch, epochs=a.ft_epochs, shuffle=True, verbose=0,
                      callbacks=callbacks)
        return steps

    return mk.fine_tune_rows(exp, a, harness, make_model, fit, log=log)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring (examples/experiments/mlperf_ad.py).")
    mk.common_args(p, "docs/results/mlperf_ad", mk.DEFAULT_METHODS, (1.5, 2, 3, 4, 6, 8))
    p.add_argument("--max-drop", type=lambda s: [float(v) for v in s.split(",")], default=[10.0],
                   help="the search's budgets in percent of the unpruned error (default 10)")
    p.add_argument("--ft-ratios", type=lambda s: [float(v) for v in s.split(",")], default=[2.0, 4.0, 8.0],
                   help="DARB ratios fine-tuned with --fine-tune (default 2,4,8)")
    p.add_argument("--ft-epochs", type=int, default=200, help="fine-tuning epochs over the 20 vectors (default 200)")
    p.add_argument("--ft-batch", type=int, default=4)
    p.add_argument("--ft-lr", type=float, default=1e-3, help="Adam's learning rate for fine-tuning (default 1e-3)")
    a = p.parse_args(argv)
    if a.report_only:
        return mk.report_only(a.out)
    if a.quick:
        a.methods, a.ratios, a.refit_ratios, a.ft_ratios = ["darb", "irregular"], [2.0, 4.0], [2.0], [4.0]
    mk.check_methods(a.methods)
    start = time.perf_counter()
    models = a.shared / "models" / "mlperf_tiny"
    model, sample = models / "ad01_int8.tflite", models / "ad01_normal_id01_sample.npy"
    for f in (model, sample):
        if not f.is_file():
            raise SystemExit(f"{f} not found: give --shared, the folder holding models/mlperf_tiny")

    from darbgen.graph_run import quantize_graph
    from darbgen.importers.tflite import graph_from_tflite

    x = np.load(sample).astype(np.float32)
    xc, xt = split(x)
    say(f"{sample.name}: {len(x)} vectors; calibration and validation: the {len(xc)} even ones, test: the "
        f"{len(xt)} odd ones")
    qg = quantize_graph(graph_from_tflite(model), "int8")
    tflm = qg.dequantize_output(mk.kws_eval.tflm_outputs(model, qg.quantize_input(xt))).reshape(len(xt), -1)
    exp = mk.Experiment(
        name="mlperf_ad", title="MLPerf Tiny anomaly detection (dense autoencoder, int8), reconstruction error of "
                                "the real sample's odd vectors",
        int8_model=model, metric="mse", higher_is_better=False, score=lambda out: mse(out, xt),
        test=(xt, xt), calib=xc, val=(xc, xc), budget_unit="relative", target=a.target,
        data={"file": str(sample), "calibration": "even vectors 0, 2, ..., 38 (20)",
              "validation": "the calibration vectors", "test": "odd vectors 1, 3, ..., 39 (20)"})
    harness = mk._harness_flash(a.target) if a.target != "host" else 0
    cmsis = mk.cmsis_reference(exp, a.cmsis_nn)
    rows = mk.reference_rows(exp, tflm, cmsis, harness)
    rows.append(build_row(exp, "reference", "float", None, "darbgen int8 of ad01.h5 (own quantization)", harness,
                          source=models / "ad01.h5", calib=xc))
    rows = mk.run_variants(exp, a, harness, rows)
    if a.fine_tune:
        rows += ad_fine_tune_rows(exp, a, harness)
    seconds = round(time.perf_counter() - start, 1)
    meta = {"command": "python " + " ".join([os.path.relpath(__file__, mk.REPO)] + (argv or sys.argv[1:])),
            "seconds": seconds, "methods": a.methods, "ratios": a.ratios,
            "variants": [v for v, on in (("one-shot", not a.skip_one_shot), ("refit", a.refit),
                                         ("search", a.search), ("fine-tuned", a.fine_tune)) if on]}
    mk.save(exp, a.out, rows, meta, a.merge)
    say(f"\n{seconds / 60:.1f} min; results in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
