"""Accuracy of the MLPerf Tiny keyword-spotting model through darbgen, on synthesized speech.

The MLPerf Tiny DS-CNN (``kws_ref_model.tflite``, int8; ``kws_ref_model_float32.tflite``)
was trained on Google Speech Commands. ``make_kws_set.py`` (in the project's
shared data, ``data/kws``) makes a labelled stand-in from speech that espeak-ng
synthesizes: MFCC features in the model's layout (n, 49, 10) and labels in its
order. This script makes such a set (or reads one) and prints the top-1 accuracy of

* TFLite Micro running the int8 model (the tflite-micro wheel),
* darbgen's int8 C of that model, unpruned (``darbgen.build.build(..., eval_data=(X, y))``:
  the C runs on the host on every clip; its outputs are checked against darbgen's
  NumPy reference bit for bit),
* darbgen's int8 C pruned with DARB at each ``--ratio`` (one-shot magnitude pruning, no fine-tuning),
* the float model in LiteRT (ai-edge-litert), and darbgen's float32 C of it (the file
  stores five convolution filters as int8: darbgen dequantizes them and runs float32,
  LiteRT runs them as hybrid kernels that quantize activations on the fly, so the two
  differ on a few percent of the clips),

with each one's agreement (same top-1 class) with TFLite Micro. int8 inputs are
quantized with the model's own scale and zero point, as TFLite's QUANTIZE op
does (round(x / scale) + zero point); TFLite Micro gets the same integers as
the C.

Run from the repository root (needs the Debian packages espeak-ng and sox to
make a set; 600 clips take about 5 s to make and the whole run about 1 minute
on two cores)::

    .venv/bin/python examples/kws_eval.py --per-class 50 --seed 9001
    .venv/bin/python examples/kws_eval.py --set kws.npz --ratio 1.25 --ratio 2 --method irregular --json out.json

``--shared`` is the folder holding ``data/kws`` and ``models/mlperf_tiny``
(default: ``../shared`` beside the repository). The set is only a stand-in for
Speech Commands: use it to compare a pruned model with the unpruned one on the
same clips, not as the model's absolute accuracy.
"""
import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]


def load_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_set(kws_dir, per_class, seed, out=None, jobs=2):
    """Run make_kws_set.py (in this process); returns the .npz path."""
    script = kws_dir / "make_kws_set.py"
    if not script.is_file():
        sys.exit(f"{script} not found: give --shared, the folder holding data/kws")
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="kws-eval-")) / f"kws_seed{seed}.npz"
    load_script(script).main(["--out", str(out), "--per-class", str(per_class), "--seed", str(seed),
                              "--jobs", str(jobs)])
    return out


def tflm_outputs(model_path, xq):
    """TFLite Micro's int8 outputs, one invoke per clip."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(Path(model_path).read_bytes())
    out = []
    for v in xq:
        interp.set_input(np.ascontiguousarray(v[None]), 0)
        interp.invoke()
        out.append(np.asarray(interp.get_output(0)).reshape(-1))
    return np.asarray(out)


def litert_outputs(model_path, x):
    """LiteRT's float outputs, one invoke per clip."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    out = []
    for v in x:
        interp.set_tensor(i, v[None].astype(np.float32))
        interp.invoke()
        out.append(np.asarray(interp.get_tensor(o)).reshape(-1))
    return np.asarray(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring (examples/kws_eval.py) for details.")
    p.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared",
                   help="folder holding data/kws and models/mlperf_tiny (default: ../shared beside the repository)")
    p.add_argument("--set", type=Path, help="an .npz made by make_kws_set.py (default: make one)")
    p.add_argument("--per-class", type=int, default=50, help="clips per class when making a set (12 classes)")
    p.add_argument("--seed", type=int, default=9001, help="make_kws_set.py --seed when making a set")
    p.add_argument("--keep-set", type=Path, help="where to write the set it makes (default: a temporary folder)")
    p.add_argument("--ratio", type=float, action="append",
                   help="DARB pruning ratio of the int8 model (repeatable; default: 2)")
    p.add_argument("--method", default="darb", help="pruning method for --ratio (darb, irregular, ...; default darb)")
    p.add_argument("--no-float", action="store_true", help="skip the float model (LiteRT and darbgen float32 C)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    a = p.parse_args(argv)
    ratios = a.ratio or [2.0]

    from darbgen.build import build
    from darbgen.graph_run import quantize_graph
    from darbgen.importers.tflite import graph_from_tflite

    models = a.shared / "models" / "mlperf_tiny"
    int8_model, float_model = models / "kws_ref_model.tflite", models / "kws_ref_model_float32.tflite"
    if not int8_model.is_file():
        sys.exit(f"{int8_model} not found: give --shared, the folder holding models/mlperf_tiny")
    t0 = time.perf_counter()
    path = a.set or make_set(a.shared / "data" / "kws", a.per_class, a.seed, a.keep_set)
    d = np.load(path)
    if [str(s) for s in d["label_names"]] != LABELS:
        sys.exit(f"{path}: label order {list(d['label_names'])} is not the model's ({LABELS})")
    x = d["x"].astype(np.float32)[..., None]               # (n, 49, 10, 1), the model's layout
    y = d["y"].astype(np.int64)
    print(f"set {path}: {len(y)} clips, per class {np.bincount(y, minlength=12).tolist()} "
          f"({time.perf_counter() - t0:.1f} s)")

    rows = []

    def add(name, outputs, seconds, ref=None, extra=None):
        pred = np.asarray(outputs).argmax(axis=1)
        row = {"name": name, "accuracy": float(np.mean(pred == y)), "seconds": round(seconds, 2)}
        if ref is not None:
            row["agrees_with_tflm"] = float(np.mean(pred == ref))
        row.update(extra or {})
        rows.append(row)
        return pred

    t = time.perf_counter()
    xq = quantize_graph(graph_from_tflite(int8_model), "int8").quantize_input(x)
    tflm = tflm_outputs(int8_model, xq)
    ref = add("TFLite Micro int8", tflm, time.perf_counter() - t)

    for ratio in [None] + ratios:
        t = time.perf_counter()
        r = build(str(int8_model), ratio=ratio, method=a.method, eval_data=(x, y))
        if not r.ok:
            sys.exit(f"darbgen's C does not match its reference (ratio {ratio}):\n{r.verification.describe()}")
        rep = r.report
        name = "darbgen int8 C, unpruned" if ratio is None else f"darbgen int8 C, {a.method} {ratio:g}x"
        extra = {"ratio": round(rep["ratio"], 3), "kept": rep["kept"], "weights": rep["weights"],
                 "flash_bytes": rep["flash_bytes"], "verified": rep["verified"]}
        if ratio is None:
            extra["bit_exact_with_tflm"] = bool(np.array_equal(
                quantize_graph(graph_from_tflite(int8_model), "int8").run(xq).reshape(len(xq), -1), tflm))
        add(name, r.eval_outputs, time.perf_counter() - t, ref, extra)

    if not a.no_float:
        lite = None
        try:
            t = time.perf_counter()
            lite = add("LiteRT float32 (float model)", litert_outputs(float_model, x), time.perf_counter() - t, ref)
        except ImportError as e:
            print(f"LiteRT float run skipped: {e} (pip install ai-edge-litert)")
        t = time.perf_counter()
        r = build(str(float_model), dtype="float32", eval_data=(x, y))
        if not r.ok:
            sys.exit(f"darbgen's float32 C does not match its reference:\n{r.verification.describe()}")
        pred = add("darbgen float32 C (float model)", r.eval_outputs, time.perf_counter() - t, ref,
                   {"flash_bytes": r.report["flash_bytes"]})
        if lite is not None:      # LiteRT runs the file's five int8 convolutions as hybrid kernels
            rows[-1]["agrees_with_litert"] = float(np.mean(pred == lite))

    print(f"\n{'':34}{'accuracy':>10}{'agrees w/ TFLM':>16}{'flash B':>9}{'s':>7}")
    for row in rows:
        agree = f"{row['agrees_with_tflm']:.4f}" if "agrees_with_tflm" in row else "-"
        flash = str(row.get("flash_bytes", "-"))
        print(f"{row['name']:34}{row['accuracy']:>10.4f}{agree:>16}{flash:>9}{row['seconds']:>7.1f}")
    for row in rows:
        if "agrees_with_litert" in row:
            print(f"{row['name']} agrees with LiteRT on {row['agrees_with_litert']:.4f} of the clips")
    print(f"\nchance {1 / 12:.3f}; {len(y)} clips; total {time.perf_counter() - t0:.1f} s")
    if a.json:
        a.json.write_text(json.dumps({"set": str(path), "clips": int(len(y)), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
