"""MLPerf Tiny keyword spotting through darbgen: every pruning method at fixed
ratios, against the unpruned int8 model and TFLite Micro + CMSIS-NN
(issue 15, "Results on a real model"; docs/results.md).

Model: the MLPerf Tiny DS-CNN (``kws_ref_model.tflite``, int8, in the shared
folder's ``models/mlperf_tiny``). Data: synthesized speech from the shared
``data/kws/make_kws_set.py``, four independent sets made with different seeds
(made into ``--data`` when missing, about 20 s; the training set about 80 s):

=========== ====== ============ ==================================================
set         seed   clips/class  used for
=========== ====== ============ ==================================================
calibration 21     50           refit and search (``calib=``); the fine-tuned
                                model's int8 quantization
validation  22     50           the search's budget (``val=``)
test        23     100          every figure in the table (1200 clips)
training    11     500          fine-tuning only (``--fine-tune``)
=========== ====== ============ ==================================================

Rows, each built by ``darbgen.build.build(..., target="cortex-m4",
eval_data=test)``: the C runs every test clip on the host (checked bit for
bit against darbgen's NumPy reference), a sample in QEMU on the Cortex-M4,
where one inference's instructions are counted.

* ``TFLM + CMSIS-NN``: accuracy from the tflite-micro wheel on the same int8
  inputs; flash (code + constants the model adds to an image) and M4
  instructions from ``darbgen.bench.model.run`` with ``--cmsis-nn`` (the
  figures of docs/benchmarks.md; TFLM's interpreter is not counted);
* ``darbgen unpruned``: the int8 model as it is;
* ``one-shot`` (default): each method (``--methods``) at each ratio
  (``--ratios``), magnitude pruning of every convolution and dense layer, no
  data used;
* ``--refit``: the same grid with the kept weights refit by least squares on
  the calibration set (``build(..., refit=True, calib=X)``);
* ``--search``: the accuracy-budget search (``build(..., max_drop=P,
  val=(Xv, yv), calib=X, objective=...)``), one row per objective;
* ``--fine-tune``: the float model rebuilt in Keras 3 from
  ``kws_ref_model_float32.tflite``, fine-tuned on the training set with
  ``darbgen.train.PruningCallback`` (DARB at ``--ft-ratios``), saved as
  ``.keras`` and ``.h5`` and built from the ``.h5`` (``--ft-build``: read as
  a graph, with the .tflite path's convolution kernels) with
  ``from_zeros=True``; quantized by darbgen from the calibration set, so its
  references are the same Keras model, not fine-tuned, and a dense
  fine-tuned control (training on synthesized speech lifts the dense model
  itself to 100 % on this test set).

Columns: test accuracy; weights + index bytes (the build report's
``data_bytes``: values + index + metadata: every weight byte, pruned or not,
and the sparse index), params (bias, multipliers, shifts), flash (the M4
image's code and constants minus the bare test harness's, as
``darbgen bench model`` counts them) and M4 instructions.

Runs from the repository root; results.json, table.md and mlperf_kws.png go
to ``--out`` (default docs/results/mlperf_kws). ``--merge`` adds the rows of
this run to an existing results.json (rows of the same variant, method and
ratio are replaced; fine-tuned rows all at once), so variants can run one at
a time::

    .venv/bin/python examples/experiments/mlperf_kws.py                  # one-shot grid, 11.5-15 min
    .venv/bin/python examples/experiments/mlperf_kws.py --skip-one-shot --refit --merge       # 11-14.5 min
    .venv/bin/python examples/experiments/mlperf_kws.py --skip-one-shot --search --merge      # 3.3 min
    .venv/bin/python examples/experiments/mlperf_kws.py --skip-one-shot --fine-tune --merge   # 11.3 min
    .venv/bin/python examples/experiments/mlperf_kws.py --quick --out /tmp/kws   # 2 methods x 2 ratios

examples/experiments/mlperf_ad.py runs the same rows on the anomaly-detection
autoencoder and imports the machinery below.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))               # examples/: kws_eval
import kws_eval  # noqa: E402

#: method key -> (darbgen method, prune options, label). bmwm is darbgen's own (one block size per matrix,
#: the packed kernel); the others but darb fall back to CSR kernels.
METHODS = {
    "darb": ("darb", {}, "DARB"),
    "irregular": ("irregular", {}, "irregular"),
    "block4x4": ("block", {"tile": (4, 4)}, "block 4x4"),
    "block1x4": ("block", {"tile": (1, 4)}, "block 1x4"),
    "bmwm": ("bmwm", {}, "BMWM"),
    "bank_balanced": ("bank_balanced", {}, "bank-balanced"),
}
DEFAULT_METHODS = ("darb", "irregular", "block4x4", "bmwm", "bank_balanced")
VARIANTS = ("reference", "one-shot", "refit", "search", "fine-tuned")
SCHEMA = "darbgen-mlperf/1"
CORE = "cortex-m4"

#: TFLM + CMSIS-NN on the Cortex-M4 as docs/benchmarks.md measured them ("Where issue 14 ends", 2026-11-30):
#: used when the CMSIS-NN sources are not there to measure again.
DOCUMENTED_CMSIS = {
    "kws_ref_model": {"instructions": 7693862, "flash": {"code": 25214, "weights": 22016, "bias": 2352,
                                                         "quant": 4616, "other_const": 1280, "data": 30264,
                                                         "total": 55478}},
    "ad01_int8": {"instructions": 579910, "flash": None},
}


def say(message):
    """Progress on stdout, flushed (a run takes minutes)."""
    print(message, flush=True)


# ----------------------------------------------------------------------------- the experiment

@dataclass
class Experiment:
    """One model, its data and how its outputs are scored."""

    name: str                      # results folder and file names
    title: str
    int8_model: Path               # the .tflite every fixed-ratio row prunes
    metric: str                    # "accuracy" (percent) or "mse"
    higher_is_better: bool
    score: object                  # score(real outputs (n, k)) -> metric on the test set
    test: tuple                    # (x, y) for build's eval_data, in the int8 model's layout
    calib: np.ndarray              # calibration inputs, the same layout
    val: tuple                     # (x, y) for the search
    budget_unit: str               # how --max-drop is read: "points" or "relative"
    target: str = CORE
    data: dict = field(default_factory=dict)   # what the sets are (written into results.json)
    agree: object = None           # agree(outputs) -> share agreeing with TFLM (classifiers)
    graph: object = None           # the int8 model, loaded once for the grid's pattern checks


def _harness_flash(core):
    """Flash of the bare test harness image on ``core`` (what a build's image holds besides the model; all of
    it code)."""
    from darbgen.bench.model import baseline_image
    from darbgen.toolchain import cortex_m

    with tempfile.TemporaryDirectory(prefix="mlperf-baseline-") as tmp:
        image = cortex_m.image_sizes(baseline_image(Path(tmp), cortex_m.core(core)))
    return image["code"] + image["rodata"] + image["data"]


def cmsis_reference(exp, cmsis_dir, log=say):
    """TFLM + CMSIS-NN's instructions and flash on the experiment's core, measured with darbgen.bench.model
    (about 25 s) or, without the CMSIS-NN sources, the figures docs/benchmarks.md gives."""
    stem = exp.int8_model.stem
    if exp.target != "host" and cmsis_dir and Path(cmsis_dir, "Source").is_dir():
        from darbgen.bench.model import run

        t = time.perf_counter()
        res = run(str(exp.int8_model), core=exp.target, cmsis_nn=str(cmsis_dir), ratios=(1,))
        log(f"TFLM + CMSIS-NN on {exp.target}: {res['cmsis']['instructions']:,} instructions, flash "
            f"{res['cmsis']['flash']['total']:,} B ({time.perf_counter() - t:.0f} s, darbgen.bench.model)")
        return {"instructions": res["cmsis"]["instructions"], "flash": res["cmsis"]["flash"],
                "source": f"darbgen.bench.model.run(core={exp.target!r}, cmsis_nn={str(cmsis_dir)!r})"}
    doc = DOCUMENTED_CMSIS.get(stem)
    why = "target host" if exp.target == "host" else f"no CMSIS-NN sources at {cmsis_dir}"
    log(f"{why}: TFLM + CMSIS-NN figures from docs/benchmarks.md")
    return None if doc is None else dict(doc, source="docs/benchmarks.md (Cortex-M4)")


def _bytes(report):
    """Weights + index and params bytes of a build report (a chain model's report, from .keras, holds them per
    layer only)."""
    d = report.get("data_bytes")
    if d is None:
        d = {k: sum(layer["bytes"][k] for layer in report["layers"]) for k in ("values", "index", "metadata",
                                                                                  "params", "total")}
    return {"weights_index_bytes": d["values"] + d["index"] + d["metadata"], "params_bytes": d["params"],
            "data_bytes": d}


def build_row(exp, variant, row_method, requested, label, harness, *, source=None, log=say, **kwargs):
    """Build one model with darbgen on the experiment's target and test set; returns its row
    (with ``skipped`` and the one-line reason when darbgen refuses it)."""
    from darbgen.build import build
    from darbgen.errors import DarbgenError

    key = f"{variant}/{row_method or '-'}/{requested if requested is not None else '-'}"
    row = {"key": key, "label": label, "variant": variant, "method": row_method, "requested": requested}
    t = time.perf_counter()
    eval_data = kwargs.pop("eval_data", exp.test)
    try:
        r = build(str(source or exp.int8_model), eval_data=eval_data, target=exp.target, **kwargs)
    except (DarbgenError, TypeError) as e:
        if isinstance(e, TypeError) and "unexpected keyword argument" not in str(e):
            raise
        why = str(e) if isinstance(e, DarbgenError) else f"this darbgen's build() has no such argument yet ({e})"
        row.update(skipped=why, seconds=round(time.perf_counter() - t, 1))
        log(f"  {label:44s} skipped: {why}")
        return row
    rep = r.report
    if not r.ok:
        raise SystemExit(f"{label}: darbgen's C does not match its reference:\n{r.verification.describe()}")
    out = np.asarray(r.eval_outputs, np.float64).reshape(len(eval_data[0]), -1)
    row.update(metric=float(exp.score(out)), ratio=float(rep["ratio"]), kept=int(rep["kept"]),
               weights=int(rep["weights"]), kernel=rep["kernel"], verified=bool(rep["verified"]), **_bytes(rep))
    if exp.target != "host":
        row.update(flash_bytes=int(rep["flash_bytes"]) - harness, code_bytes=int(rep["code_bytes"]) - harness,
                   instructions=int(rep["instructions"]))
    else:
        row.update(flash_bytes=int(rep["flash_bytes"]), instructions=None)
    if exp.agree is not None and eval_data is exp.test:
        row["agrees_with_tflm"] = float(exp.agree(out))
    for k in ("refit", "search"):
        if k in rep:
            row[k] = rep[k]
    row["notes"] = [n for n in rep.get("notes", []) if "refit" in n or "search" in n]
    row["seconds"] = round(time.perf_counter() - t, 1)
    instr = f"{row['instructions']:>11,}" if row["instructions"] else f"{'-':>11}"
    log(f"  {label:44s} {exp.metric} {row['metric']:8.4g}  {row['weights_index_bytes']:>7,} B w+i  "
        f"{row['flash_bytes']:>7,} B flash  {instr} instr  ({row['seconds']:.0f} s)")
    return row


def reference_rows(exp, tflm_outputs, cmsis, harness, log=say):
    """TFLM + CMSIS-NN (metric from the tflite-micro wheel) and darbgen's unpruned int8 C."""
    row = {"key": "reference/tflm/-", "label": "TFLM + CMSIS-NN", "variant": "reference", "method": "tflm",
           "requested": None, "ratio": 1.0, "metric": float(exp.score(tflm_outputs)), "verified": None}
    if cmsis:
        fl = cmsis["flash"]
        row.update(instructions=int(cmsis["instructions"]), reference_source=cmsis["source"])
        if fl:
            row.update(flash_bytes=int(fl["total"]), weights_index_bytes=int(fl["weights"]),
                       params_bytes=int(fl["bias"] + fl["quant"]))
    log(f"  {'TFLM + CMSIS-NN':44s} {exp.metric} {row['metric']:8.4g}")
    return [row, build_row(exp, "reference", "darbgen", None, "darbgen unpruned int8", harness, log=log)]


def _pattern(exp, ratio, method, options):
    """(kept weights per layer, achieved ratio) of a one-shot pruning, in a fraction of a second; None when
    darbgen refuses the ratio (build_row then reports why)."""
    from darbgen.build import load
    from darbgen.errors import DarbgenError
    from darbgen.graph_build import prune_graph

    if exp.graph is None:
        exp.graph = load(str(exp.int8_model)).model
    try:
        results = prune_graph(exp.graph, ratio, method, prune_options=options or None)[1]
    except DarbgenError:
        return None
    kept = tuple(r.kept for r in results.values())
    return kept, sum(r.mask.size for r in results.values()) / max(1, sum(kept))


def grid_rows(exp, variant, methods, ratios, harness, log=say, **kwargs):
    """Every method at every ratio (``kwargs`` go to build: refit=True, calib=...). Ratios a method's structure
    cannot tell apart (bmwm's block sizes are whole numbers: 1.5x keeps what 2x keeps) are built once, at the
    requested ratio nearest the achieved one; the others are listed as such."""
    rows = []
    for key in methods:
        method, options, label = METHODS[key]
        patterns = {float(r): _pattern(exp, float(r), method, options) for r in ratios}
        chosen = {}
        for r, pat in patterns.items():
            if pat is not None:
                best = chosen.get(pat[0])
                if best is None or abs(np.log(r / pat[1])) < abs(np.log(best / pat[1])):
                    chosen[pat[0]] = r
        for ratio in map(float, ratios):
            name = f"{label} {ratio:g}x {variant}"
            pat = patterns[ratio]
            if pat is not None and chosen[pat[0]] != ratio:
                why = f"keeps what {chosen[pat[0]]:g}x keeps (achieved {pat[1]:.2f}x)"
                log(f"  {name:44s} {why}")
                rows.append({"key": f"{variant}/{key}/{ratio}", "label": name, "variant": variant, "method": key,
                             "requested": ratio, "skipped": why})
                continue
            rows.append(build_row(exp, variant, key, ratio, name, harness, ratio=ratio, method=method,
                                  prune_options=dict(options) or None, log=log, **kwargs))
    return rows


def search_rows(exp, budgets, objectives, harness, log=say):
    """The accuracy-budget search, one row per budget and objective."""
    rows = []
    for budget in budgets:
        for objective in objectives:
            unit = "points" if exp.budget_unit == "points" else "% error"
            rows.append(build_row(exp, "search", f"search-{objective}", float(budget),
                                  f"search, {budget:g} {unit}, {objective}", harness, calib=exp.calib,
                                  val=exp.val, max_drop=float(budget), objective=objective, log=log))
    return rows


# ----------------------------------------------------------------------------- results, table, plot

def merge_rows(old, new):
    """``old`` rows with those of ``new``'s keys replaced (new keys appended). Fine-tuned rows are replaced as a
    whole: their training settings belong to the run."""
    fresh = {r["key"]: r for r in new}
    if any(r["variant"] == "fine-tuned" for r in new):
        old = [r for r in old if r["variant"] != "fine-tuned"]
    out = [fresh.pop(r["key"], r) for r in old]
    return out + [r for r in new if r["key"] in fresh]


def unpruned(result):
    return next((r for r in result["rows"] if r["key"] == "reference/darbgen/-" and "metric" in r), None)


def goal_check(result):
    """Issue 15's KWS goal: weights + index <= 1/3 of the unpruned int8 model's, accuracy within 1 point,
    on the test set, without training data (rows other than fine-tuned). Returns a dict (or None)."""
    goal = result.get("goal")
    base = unpruned(result)
    if not goal or base is None:
        return None
    limit_bytes = base["weights_index_bytes"] * goal["max_bytes_fraction"]
    floor = base["metric"] - goal["max_drop_points"]
    rows = [r for r in result["rows"] if "metric" in r and r["variant"] in goal["variants"]
            and r.get("weights_index_bytes") is not None]
    small = [r for r in rows if r["weights_index_bytes"] <= limit_bytes]
    close = [r for r in rows if r["metric"] >= floor]
    met = [r for r in small if r["metric"] >= floor]
    best_small = max(small, key=lambda r: r["metric"], default=None)
    best_close = min(close, key=lambda r: r["weights_index_bytes"], default=None)
    return {"limit_bytes": limit_bytes, "floor": floor, "unpruned": base["metric"],
            "met": sorted((r["label"] for r in met)),
            "best_within_bytes": None if best_small is None else
            {"label": best_small["label"], "metric": best_small["metric"],
             "weights_index_bytes": best_small["weights_index_bytes"]},
            "smallest_within_accuracy": None if best_close is None else
            {"label": best_close["label"], "metric": best_close["metric"],
             "weights_index_bytes": best_close["weights_index_bytes"]}}


def _fmt(v, spec=","):
    return "-" if v is None else format(v, spec)


def _order(r):
    """References first (TFLM, darbgen, the float model; in fine-tuned: the Keras model, the dense control),
    then methods in METHODS order, then ratios."""
    methods = list(METHODS)
    m = r.get("method") or ""
    first = ("tflm", "darbgen", "float", "keras", "dense")
    return (VARIANTS.index(r["variant"]), first.index(m) if m in first else len(first),
            methods.index(m) if m in methods else len(methods), m, r.get("requested") or 0)


def markdown_table(result):
    """The rows as a Markdown table (the one docs/results.md shows)."""
    base = unpruned(result)
    acc = result["metric"] == "accuracy"
    cm = next((r for r in result["rows"] if r["key"] == "reference/tflm/-"), None)
    head = ["row", "ratio", "accuracy %" if acc else "MSE", "vs unpruned", "weights + index B", "/ unpruned",
            "params B", "flash B", "M4 instructions", "/ CMSIS-NN", "s"]
    lines = ["| " + " | ".join(head) + " |", "| :--- " + "| ---: " * (len(head) - 1) + "|"]
    for r in sorted(result["rows"], key=_order):
        if "metric" not in r:
            lines.append(f"| {r['label']} | skipped: {r.get('skipped', '?')} |" + " |" * (len(head) - 2))
            continue
        if base is None:
            delta = "-"
        elif acc:
            delta = f"{r['metric'] - base['metric']:+.1f}"
        else:
            delta = f"x{r['metric'] / base['metric']:.3g}"
        wi = r.get("weights_index_bytes")
        frac = "-" if wi is None or base is None else f"{wi / base['weights_index_bytes']:.2f}"
        ins = r.get("instructions")
        vs = "-" if not ins or not cm or not cm.get("instructions") else f"{ins / cm['instructions']:.2f}"
        metric = f"{r['metric']:.1f}" if acc else f"{r['metric']:.4g}"
        lines.append(f"| {r['label']} | {r['ratio']:.2f} | {metric} | {delta} | {_fmt(wi)} | {frac} | "
                     f"{_fmt(r.get('params_bytes'))} | {_fmt(r.get('flash_bytes'))} | {_fmt(ins)} | {vs} | "
                     f"{_fmt(r.get('seconds'), 'g')} |")
    return "\n".join(lines)


VARIANT_MARKERS = {"one-shot": (":", "o"), "refit": ("--", "s"), "fine-tuned": ("-", "^"), "search": ("none", "*")}


def plot(result, path):
    """Metric against weights + index bytes (left) and against M4 instructions (right), one line per method
    and variant, the references as black and grey stars; colours as darbgen report's figures."""
    from darbgen.plots import METHOD_COLORS, _draw, _figure, _save

    acc = result["metric"] == "accuracy"
    base = unpruned(result)
    rows = [r for r in result["rows"] if "metric" in r]

    def draw(mpl):
        fig = _figure(mpl, (12.8, 6.4))
        axes = fig.subplots(1, 2)
        panels = ((axes[0], "weights_index_bytes", "weights + index (kB)"),
                  (axes[1], "instructions", f"{result['target']} instructions per inference (millions)"))
        for ax, xkey, xlabel in panels:
            groups = {}
            for r in rows:
                if r.get(xkey) is None:
                    continue
                if r["variant"] == "reference":
                    color, marker, ms, text = {"tflm": ("black", "*", 15, "TFLM + CMSIS-NN"),
                                               "darbgen": ("0.55", "D", 7, "darbgen unpruned int8")}.get(
                        r["method"], ("0.3", "*", 12, r["label"]))
                    ax.plot([r[xkey]], [r["metric"]], ls="none", marker=marker, ms=ms, color=color, label=text,
                            zorder=5 if r["method"] == "darbgen" else 4)
                    continue
                if r["method"] in ("keras", "dense"):       # the fine-tuning's own references
                    ax.plot([r[xkey]], [r["metric"]], ls="none", marker="P" if r["method"] == "keras" else "X",
                            ms=9, color="0.35", label=r["label"], zorder=5)
                    continue
                groups.setdefault((r["variant"], r["method"]), []).append(r)
            for (variant, method), rs in sorted(groups.items(), key=lambda kv: _order(kv[1][0])):
                rs = sorted(rs, key=lambda r: (r.get("ratio") or 0, r.get("requested") or 0))   # along the ratio
                ls, marker = VARIANT_MARKERS.get(variant, ("-", "x"))
                m = method.split("-")[0] if method else ""
                color = METHOD_COLORS.get(m) or {"search-flash": "#17becf", "search-instructions": "#e377c2"}.get(
                    method, "#7f7f7f")
                if variant == "search":
                    label = f"search, {method.split('-', 1)[-1]} objective"
                else:
                    label = f"{METHODS[m][2] if m in METHODS else method} ({variant})"
                ax.plot([r[xkey] for r in rs], [r["metric"] for r in rs], ls=ls, marker=marker, ms=5 if
                        variant != "search" else 11, lw=1.4, color=color, label=label)
            if base is not None:
                if acc and result.get("goal"):
                    ax.axhline(base["metric"] - result["goal"]["max_drop_points"], color="#d62728", lw=1,
                               ls="--", label="unpruned - 1 point")
                if xkey == "weights_index_bytes" and result.get("goal"):
                    ax.axvline(base[xkey] * result["goal"]["max_bytes_fraction"], color="#d62728", lw=1, ls=":",
                               label="1/3 of unpruned")
            ax.set_xlabel(xlabel)
            scale = 1e3 if xkey == "weights_index_bytes" else 1e6
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _, s=scale: f"{v / s:g}"))
            ax.set_ylabel("test accuracy (%)" if acc else "test reconstruction error (MSE, log scale)")
            if not acc:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
        axes[0].set_title("accuracy against weights + index" if acc else "error against weights + index",
                          fontsize="medium")
        axes[1].set_title(f"against {result['target']} instructions", fontsize="medium")
        seen = {}                               # one legend for both panels, each label once
        for ax in axes:
            for handle, text in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(text, handle)
        fig.legend(list(seen.values()), list(seen.keys()), fontsize="small", loc="lower center", ncol=4,
                   frameon=False)
        fig.suptitle(result["title"], fontsize="medium")
        rows_of_legend = (len(seen) + 3) // 4
        fig.tight_layout(rect=(0, 0.045 * rows_of_legend + 0.02, 1, 1))
        _save(fig, path)
    _draw(draw)


def save(exp, out_dir, rows, meta, merge, log=say):
    """results.json (merged with the old one if ``merge``), table.md and the plot into ``out_dir``."""
    from darbgen.report import plain

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    old = json.loads(path.read_text()) if merge and path.is_file() else None
    result = old or {"schema": SCHEMA, "task": exp.name, "title": exp.title, "model": str(exp.int8_model.name),
                     "metric": exp.metric, "higher_is_better": exp.higher_is_better, "target": exp.target,
                     "runs": [], "rows": []}
    result.update(meta.pop("top", {}))
    result["data"] = exp.data
    result["rows"] = merge_rows(result["rows"], rows)
    result["runs"].append(meta)
    result["goal_check"] = goal_check(result)
    fd, tmp = tempfile.mkstemp(prefix=".results.json", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(plain(result), indent=1))
    os.replace(tmp, path)
    return write_report(result, out_dir, log)


def write_report(result, out_dir, log=say):
    """table.md and the plot of a results dict into ``out_dir``; prints the table and the goal check."""
    name = result["task"]
    table = markdown_table(result)
    (Path(out_dir) / "table.md").write_text(f"<!-- written by examples/experiments/{name}.py -->\n{table}\n")
    try:
        plot(result, Path(out_dir) / f"{name}.png")
    except Exception as e:                      # matplotlib missing: the table and JSON still stand
        log(f"plot skipped: {e}")
    log("\n" + table)
    g = result.get("goal_check")
    if g:
        log(f"\ngoal (weights + index <= {g['limit_bytes']:,.0f} B, accuracy >= {g['floor']:.1f} %): "
            f"{'met by ' + ', '.join(g['met']) if g['met'] else 'not met'}; best within the bytes: "
            f"{g['best_within_bytes']}; smallest within the accuracy: {g['smallest_within_accuracy']}")
    return result


def report_only(out_dir):
    """--report-only: the table and plot again from ``out_dir``/results.json, nothing built."""
    result = json.loads((Path(out_dir) / "results.json").read_text())
    result["goal_check"] = goal_check(result)
    write_report(result, out_dir)
    return 0


# ----------------------------------------------------------------------------- KWS: data and Keras

SETS = {"calib": (21, 50), "val": (22, 50), "test": (23, 100), "train": (11, 500)}


def kws_set(data_dir, shared, role, log=say):
    """(x (n, 49, 10, 1) float32, y) of one synthesized set, made with make_kws_set.py when missing."""
    seed, per_class = SETS[role]
    path = Path(data_dir) / f"kws_{role}_seed{seed}_{per_class}.npz"
    if not path.is_file():
        log(f"making {path} ({12 * per_class} clips, seed {seed})")
        path.parent.mkdir(parents=True, exist_ok=True)
        kws_eval.make_set(Path(shared) / "data" / "kws", per_class, seed, path, jobs=2)
    d = np.load(path)
    if [str(s) for s in d["label_names"]] != kws_eval.LABELS:
        raise SystemExit(f"{path}: label order {list(d['label_names'])} is not the model's")
    return d["x"].astype(np.float32)[..., None], d["y"].astype(np.int64), path


def kws_keras(float_tflite):
    """The DS-CNN as a Keras 3 model with the float .tflite's weights (batch norm already folded there):
    conv 10x4 /2, 4 x (depthwise 3x3 + pointwise 1x1), average pool, dense, softmax."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from darbgen.importers.tflite import graph_from_tflite

    g = graph_from_tflite(float_tflite)
    inp = keras.Input(tuple(g.input_shape))
    h = inp
    for n in g.nodes:
        a = n.attrs
        act = {"relu": "relu", "none": None}[a.get("activation", "none")]
        pad = "same" if any(a.get("padding", (0,))) else "valid"
        w = n.params["weight"].real().astype(np.float32) if "weight" in n.params else None
        b = n.params["bias"].real().astype(np.float32) if "bias" in n.params else None
        if n.kind == "conv2d":                          # (out, kh, kw, in) -> (kh, kw, in, out)
            layer = keras.layers.Conv2D(w.shape[0], w.shape[1:3], strides=a["stride"], padding=pad,
                                        activation=act, name=n.name)
            h = layer(h)
            layer.set_weights([w.transpose(1, 2, 3, 0), b])
        elif n.kind == "depthwise_conv2d":              # (kh, kw, c) -> (kh, kw, c, 1)
            layer = keras.layers.DepthwiseConv2D(w.shape[:2], strides=a["stride"], padding=pad, activation=act,
                                                 name=n.name)
            h = layer(h)
            layer.set_weights([w[..., None], b])
        elif n.kind == "avg_pool2d":
            h = keras.layers.AveragePooling2D(a["filter"], strides=a["stride"], name=n.name)(h)
        elif n.kind == "reshape":
            h = keras.layers.Flatten(name=n.name)(h)
        elif n.kind == "fully_connected":
            layer = keras.layers.Dense(w.shape[0], name=n.name)
            h = layer(h)
            layer.set_weights([w.T, b])
        elif n.kind == "softmax":
            h = keras.layers.Softmax(name=n.name)(h)
        else:
            raise SystemExit(f"{float_tflite}: op {n.kind} has no Keras counterpart here")
    return keras.Model(inp, h, name="kws_ds_cnn"), g


def channel_first(x):
    """(n, 49, 10, 1) -> (n, 490) in darbgen's (C, H, W) order, what a .keras model's C takes."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)


def fine_tune_rows(exp, a, harness, make_model, fit, keras_inputs=None, log=say):
    """Keras fine-tuning rows: the Keras model itself (not fine-tuned), a dense fine-tuned control, and DARB at
    each ``a.ft_ratios`` fine-tuned with darbgen.train.PruningCallback (the ratio rising over the first half of
    the steps, the masks fixed for the second). Each model is saved as .keras and .h5 and built from the one
    ``a.ft_build`` names (``from_zeros=True`` when pruned), calibrated on the calibration set.

    ``make_model()``: a fresh compiled Keras model; ``fit(model, callbacks) -> optimizer steps``;
    ``keras_inputs(x)``: the experiment's inputs as a .keras build takes them (darbgen's channel-first order)."""
    import darbgen.train

    work = Path(tempfile.mkdtemp(prefix=f"{exp.name}-ft-"))
    keras_inputs = keras_inputs or (lambda x: x)
    xt, yt = exp.test
    if a.ft_build == "keras":
        build_data = {"calib": keras_inputs(exp.calib), "eval_data": (keras_inputs(xt), yt)}
    else:
        build_data = {"calib": exp.calib}

    def save(model, stem):
        model.save(work / f"{stem}.keras")
        model.save(work / f"{stem}.h5")           # Keras' legacy HDF5: darbgen reads it as a graph
        return work / f"{stem}.{a.ft_build}"

    rows = [build_row(exp, "fine-tuned", "keras", None, "Keras model, not fine-tuned", harness,
                      source=save(make_model(), "keras_model"), log=log, **build_data)]
    for ratio in [1.0] + list(a.ft_ratios):
        t = time.perf_counter()
        model = make_model()
        callbacks = []
        if ratio > 1:
            try:
                cb = darbgen.train.PruningCallback(ratio, "darb", steps=max(1, fit(None, None) // 2))
            except (AttributeError, ImportError) as e:
                rows.append({"key": f"fine-tuned/darb/{ratio}", "label": f"DARB {ratio:g}x fine-tuned",
                             "variant": "fine-tuned", "method": "darb", "requested": ratio,
                             "skipped": f"needs darbgen.train.PruningCallback ({e})"})
                continue
            callbacks = [cb]
        steps = fit(model, callbacks)
        path = save(model, f"ft_{ratio:g}x")
        log(f"  fine-tuned {ratio:g}x: {steps} steps ({time.perf_counter() - t:.0f} s)")
        if ratio == 1:
            row = build_row(exp, "fine-tuned", "dense", 1.0, "dense, fine-tuned (control)", harness, source=path,
                            log=log, **build_data)
        else:
            row = build_row(exp, "fine-tuned", "darb", ratio, f"DARB {ratio:g}x fine-tuned", harness, source=path,
                            from_zeros=True, method="darb", log=log, **build_data)
        row["train_seconds"] = round(time.perf_counter() - t, 1)
        row["fine_tune"] = {"steps": steps, "build_from": a.ft_build}
        rows.append(row)
    return rows


def kws_fine_tune_rows(exp, a, harness, log=say):
    """The DS-CNN rebuilt in Keras from the float .tflite (checked against it), fine-tuned on the training set."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from darbgen.graph_run import run_f64

    base, g = kws_keras(a.shared / "models" / "mlperf_tiny" / "kws_ref_model_float32.tflite")
    xt = exp.test[0][:64]
    diff = np.abs(base.predict(xt, verbose=0) - run_f64(g, xt.astype(np.float64)).reshape(len(xt), -1)).max()
    if diff > 1e-4:
        raise SystemExit(f"the Keras DS-CNN differs from the float .tflite by {diff:.3g}")
    xtr, ytr, path = kws_set(a.data, a.shared, "train", log)
    exp.data["train"] = {"file": str(path), "seed": SETS["train"][0], "clips": int(len(ytr))}
    steps = int(np.ceil(len(xtr) / a.ft_batch)) * a.ft_epochs

    def make_model():
        model = keras.models.clone_model(base)
        model.set_weights(base.get_weights())
        model.compile(optimizer=keras.optimizers.Adam(a.ft_lr), loss="sparse_categorical_crossentropy")
        return model

    def fit(model, callbacks):
        if model is not None:
            keras.utils.set_random_seed(0)
            model.fit(xtr, ytr, batch_size=a.ft_batch, epochs=a.ft_epochs, shuffle=True, verbose=0,
                      callbacks=callbacks)
        return steps

    return fine_tune_rows(exp, a, harness, make_model, fit, channel_first, log)


# ----------------------------------------------------------------------------- command line

def common_args(p, out, methods, ratios, refit_ratios=None):
    """The options both MLPerf scripts share."""
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared",
                   help="folder holding data/kws and models/mlperf_tiny (default: ../shared beside the repository)")
    p.add_argument("--out", type=Path, default=REPO / out, help=f"results folder (default {out})")
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(methods),
                   help=f"comma-separated, of {', '.join(METHODS)} (default {','.join(methods)})")
    p.add_argument("--ratios", type=lambda s: [float(v) for v in s.split(",")], default=list(ratios),
                   help=f"pruning ratios of the fixed-ratio rows (default {','.join(map(str, ratios))})")
    p.add_argument("--skip-one-shot", action="store_true", help="no one-shot grid (run only the variants asked for)")
    p.add_argument("--refit", action="store_true", help="also the grid with refit=True on the calibration set")
    p.add_argument("--refit-ratios", type=lambda s: [float(v) for v in s.split(",")],
                   default=None if refit_ratios is None else list(refit_ratios),
                   help="ratios of the refit grid (default " + ("--ratios" if refit_ratios is None else
                                                                ",".join(map(str, refit_ratios))) + ")")
    p.add_argument("--saliency", default="activation", choices=("activation", "magnitude"),
                   help="saliency of the refit rows (default activation: |w| times its input's norm over the "
                        "calibration set)")
    p.add_argument("--search", action="store_true", help="also the accuracy-budget search (max_drop=, val=)")
    p.add_argument("--objectives", type=lambda s: s.split(","), default=["flash", "instructions"],
                   help="the search's objectives (default flash,instructions)")
    p.add_argument("--fine-tune", action="store_true", help="also Keras fine-tuning (darbgen.train.PruningCallback)")
    p.add_argument("--ft-build", choices=("h5", "keras"), default="h5",
                   help="which saved fine-tuned file darbgen builds: h5 (default; read as a graph, with the "
                        "convolution kernels of the .tflite path) or keras (read as a layer chain)")
    p.add_argument("--merge", action="store_true", help="add this run's rows to the existing results.json")
    p.add_argument("--target", default=CORE, help=f"where instructions are counted (default {CORE}; host: none)")
    p.add_argument("--cmsis-nn", type=Path, default=REPO.parent / "shared" / "third_party" / "CMSIS-NN",
                   help="CMSIS-NN sources for the reference (default ../shared/third_party/CMSIS-NN)")
    p.add_argument("--quick", action="store_true", help="darb and irregular at 2x and 4x only (a smoke test)")
    p.add_argument("--report-only", action="store_true",
                   help="only write table.md and the plot again from --out's results.json")


def check_methods(methods):
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown[0]!r}; choose from {', '.join(METHODS)}")


def run_variants(exp, a, harness, extra_rows=(), log=say):
    """The grid and the variants the flags ask for; returns the rows."""
    rows = list(extra_rows)
    if not a.skip_one_shot:
        rows += grid_rows(exp, "one-shot", a.methods, a.ratios, harness, log)
    if a.refit:
        rows += grid_rows(exp, "refit", a.methods, a.refit_ratios or a.ratios, harness, log, refit=True,
                          calib=exp.calib, saliency=a.saliency)
    if a.search:
        rows += search_rows(exp, a.max_drop, a.objectives, harness, log)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring (examples/experiments/mlperf_kws.py).")
    common_args(p, "docs/results/mlperf_kws", DEFAULT_METHODS, (1.5, 2, 3, 4, 6), (1.5, 2, 3))   # refit: ~1 min a build
    p.add_argument("--data", type=Path, default=Path("/work/data/kws"),
                   help="where the synthesized sets are kept (made there when missing; default /work/data/kws)")
    p.add_argument("--max-drop", type=lambda s: [float(v) for v in s.split(",")], default=[1.0],
                   help="the search's budgets in accuracy points (comma-separated; default 1)")
    p.add_argument("--ft-ratios", type=lambda s: [float(v) for v in s.split(",")], default=[2.0, 4.0, 8.0],
                   help="DARB ratios fine-tuned with --fine-tune (default 2,4,8)")
    p.add_argument("--ft-epochs", type=int, default=6, help="fine-tuning epochs over the training set (default 6)")
    p.add_argument("--ft-batch", type=int, default=64)
    p.add_argument("--ft-lr", type=float, default=1e-3, help="Adam's learning rate for fine-tuning (default 1e-3)")
    a = p.parse_args(argv)
    if a.report_only:
        return report_only(a.out)
    if a.quick:
        a.methods, a.ratios, a.refit_ratios, a.ft_ratios = ["darb", "irregular"], [2.0, 4.0], [2.0], [2.0]
    check_methods(a.methods)
    start = time.perf_counter()
    model = a.shared / "models" / "mlperf_tiny" / "kws_ref_model.tflite"
    if not model.is_file():
        raise SystemExit(f"{model} not found: give --shared, the folder holding models/mlperf_tiny")

    from darbgen.graph_run import quantize_graph
    from darbgen.importers.tflite import graph_from_tflite

    sets = {role: kws_set(a.data, a.shared, role) for role in ("calib", "val", "test")}
    xt, yt, _ = sets["test"]
    say("sets: " + ", ".join(f"{role} {len(s[1])} clips ({s[2].name})" for role, s in sets.items()))
    t = time.perf_counter()
    xq = quantize_graph(graph_from_tflite(model), "int8").quantize_input(xt)
    tflm = kws_eval.tflm_outputs(model, xq).astype(np.float64)
    tflm_pred = tflm.argmax(axis=1)
    say(f"TFLite Micro: {len(yt)} clips in {time.perf_counter() - t:.0f} s")
    exp = Experiment(
        name="mlperf_kws", title="MLPerf Tiny keyword spotting (DS-CNN, int8), synthesized speech test set",
        int8_model=model, metric="accuracy", higher_is_better=True,
        score=lambda out: 100.0 * float(np.mean(out.argmax(axis=1) == yt)),
        test=(xt, yt), calib=sets["calib"][0], val=sets["val"][:2], budget_unit="points", target=a.target,
        data={role: {"file": str(s[2]), "seed": SETS[role][0], "clips": int(len(s[1]))} for role, s in sets.items()},
        agree=lambda out: float(np.mean(out.argmax(axis=1) == tflm_pred)))
    harness = _harness_flash(a.target) if a.target != "host" else 0
    cmsis = cmsis_reference(exp, a.cmsis_nn)
    rows = reference_rows(exp, tflm, cmsis, harness)
    rows = run_variants(exp, a, harness, rows)
    if a.fine_tune:
        rows += kws_fine_tune_rows(exp, a, harness)
    seconds = round(time.perf_counter() - start, 1)
    meta = {"command": "python " + " ".join([os.path.relpath(__file__, REPO)] + (argv or sys.argv[1:])),
            "seconds": seconds, "methods": a.methods, "ratios": a.ratios,
            "variants": [v for v, on in (("one-shot", not a.skip_one_shot), ("refit", a.refit),
                                         ("search", a.search), ("fine-tuned", a.fine_tune)) if on],
            "top": {"goal": {"max_bytes_fraction": 1 / 3, "max_drop_points": 1.0,
                             "variants": ["one-shot", "refit", "search"]}}}
    save(exp, a.out, rows, meta, a.merge)
    say(f"\n{seconds / 60:.1f} min; results in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
