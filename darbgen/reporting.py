"""`darbgen report`: experiment results and weight matrices in, a Markdown report with PNG figures out.

Two inputs, either or both:

* experiment results, JSON files of schema ``darbgen-experiment/1`` (written
  by the experiment scripts, described in docs/report.md): the headline table
  (highest ratio within tolerance of the dense model, per method and
  variant), DARB against its goals, every run, and a metric-versus-ratio plot;
* an .npz of dense weight matrices: per matrix, the row densities after an
  irregular pass, DARB's block size per row and the masks of irregular, DARB
  and 4x4 block pruning at one ratio.

This module is plain Python and NumPy; matplotlib is imported by
:mod:`darbgen.plots` only when a figure is drawn. The same inputs give the
same bytes: no timestamps, fixed figure sizes and resolution.
"""
import json
import math
import os
import re

import numpy as np

from .errors import DarbgenError

SCHEMA = "darbgen-experiment/1"
METHODS = ("irregular", "block4x4", "block1x4", "bank_balanced", "bmwm", "darb")
METHOD_NAMES = {"irregular": "irregular", "block4x4": "block 4x4", "block1x4": "block 1x4",
                "bank_balanced": "bank-balanced", "bmwm": "BMWM (1:M)", "darb": "DARB"}
VARIANTS = ("one-shot", "refit", "fine-tuned")
METRICS = {"accuracy": "accuracy (%)", "bpc": "bits per character"}
TOLERANCE_KINDS = ("points", "relative")
# DARB's headline ratio over each baseline's, and the factor it should reach.
GOALS = (("block4x4", 2.0), ("irregular", 0.8))
# Exactly at the limit counts as within; the slack absorbs decimal rounding (96.6 vs 97.1 - 0.5).
_SLACK = 1e-9
MAX_PIXELS = 256          # mask images larger than this (rows or columns) are downsampled
MASK_DTYPE = "int8"       # value type of the per-matrix bits-per-kept-weight figures

_TOP_REQUIRED = ("schema", "task", "title", "metric", "higher_is_better", "dense_metric", "tolerance", "runs")
_RUN_REQUIRED = ("method", "variant", "requested_ratio", "ratio", "metric")


# ----------------------------------------------------------------------------- loading

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(text, limit=80):
    """``text`` cut to ``limit`` characters, so one wrong field cannot flood the error line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value):
    """A field's value as an error message quotes it: its repr, clipped."""
    return _clip(repr(value))


def _number(where, value, field, *, low=None, above=None, high=None, optional=False):
    """``value`` as a finite float, or a DarbgenError naming ``field``."""
    if value is None and optional:
        return None
    try:
        finite = _is_number(value) and math.isfinite(value)
    except OverflowError:              # an integer beyond float
        finite = False
    if not finite:
        raise DarbgenError(f"{where}: field {field!r} must be a finite number, got {_shown(value)}")
    value = float(value)
    if low is not None and value < low:
        raise DarbgenError(f"{where}: field {field!r} must be >= {low:g}, got {value:g}")
    if above is not None and value <= above:
        raise DarbgenError(f"{where}: field {field!r} must be > {above:g}, got {value:g}")
    if high is not None and value > high:
        raise DarbgenError(f"{where}: field {field!r} must be <= {high:g}, got {value:g}")
    return value


def _text(where, value, field, *, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DarbgenError(f"{where}: field {field!r} must be a non-empty string, got {_shown(value)}")
    return value


def _choice(where, value, field, choices):
    if not isinstance(value, str) or value not in choices:
        raise DarbgenError(f"{where}: field {field!r} is {_shown(value)}; expected one of {', '.join(choices)}")
    return value


def _missing(where, obj, required, prefix=""):
    for key in required:
        if key not in obj:
            raise DarbgenError(f"{where}: missing field {prefix + key!r}")


def _run(where, i, run, metric):
    field = f"runs[{i}]"
    if not isinstance(run, dict):
        raise DarbgenError(f"{where}: {field} must be an object, got {type(run).__name__}")
    _missing(where, run, _RUN_REQUIRED, field + ".")
    method = _choice(where, run["method"], field + ".method", METHODS)
    high = 100.0 if metric == "accuracy" else None
    return {
        "method": method,
        "label": _text(where, run.get("label"), field + ".label", optional=True) or METHOD_NAMES[method],
        "variant": _choice(where, run["variant"], field + ".variant", VARIANTS),
        "requested_ratio": _number(where, run["requested_ratio"], field + ".requested_ratio", low=1.0),
        "ratio": _number(where, run["ratio"], field + ".ratio", low=1.0),
        "metric": _number(where, run["metric"], field + ".metric", low=0.0, high=high),
        "bits_per_kept": _number(where, run.get("bits_per_kept"), field + ".bits_per_kept", above=0.0,
                                 optional=True),
        "format": _text(where, run.get("format"), field + ".format", optional=True),
    }


def check_results(data, where="results"):
    """A validated, normalised copy of an experiment-results dict (see :func:`load_results`)."""
    if not isinstance(data, dict):
        raise DarbgenError(f"{where}: expected a JSON object at the top, got {type(data).__name__}")
    if "schema" not in data:
        raise DarbgenError(f"{where}: missing field 'schema' (expected {SCHEMA!r})")
    if data["schema"] != SCHEMA:
        raise DarbgenError(f"{where}: field 'schema' is {_shown(data['schema'])}; this darbgen reads {SCHEMA!r}")
    _missing(where, data, _TOP_REQUIRED)
    metric = _choice(where, data["metric"], "metric", tuple(METRICS))
    if not isinstance(data["higher_is_better"], bool):
        raise DarbgenError(f"{where}: field 'higher_is_better' must be true or false, got "
                           f"{_shown(data['higher_is_better'])}")
    tol = data["tolerance"]
    if not isinstance(tol, dict):
        raise DarbgenError(f"{where}: field 'tolerance' must be an object like {{\"kind\": \"points\", "
                           f"\"value\": 0.5}}, got {_shown(tol)}")
    _missing(where, tol, ("kind", "value"), "tolerance.")
    runs = data["runs"]
    if not isinstance(runs, list) or not runs:
        raise DarbgenError(f"{where}: field 'runs' must be a non-empty list of runs")
    out = {
        "schema": SCHEMA,
        "task": _text(where, data["task"], "task"),
        "title": _text(where, data["title"], "title"),
        "metric": metric,
        "higher_is_better": data["higher_is_better"],
        "dense_metric": _number(where, data["dense_metric"], "dense_metric", low=0.0,
                                high=100.0 if metric == "accuracy" else None),
        "tolerance": {"kind": _choice(where, tol["kind"], "tolerance.kind", TOLERANCE_KINDS),
                      "value": _number(where, tol["value"], "tolerance.value", low=0.0)},
        "value_dtype": _text(where, data.get("value_dtype"), "value_dtype", optional=True),
        "command": _text(where, data.get("command"), "command", optional=True),
        "seconds": _number(where, data.get("seconds"), "seconds", low=0.0, optional=True),
        "weights": _text(where, data.get("weights"), "weights", optional=True),
        "runs": [_run(where, i, r, metric) for i, r in enumerate(runs)],
    }
    seen = {}
    for i, r in enumerate(out["runs"]):
        key = (r["method"], r["variant"], r["requested_ratio"])
        if key in seen:
            raise DarbgenError(f"{where}: runs[{i}] repeats runs[{seen[key]}] ({r['method']}, {r['variant']}, "
                               f"requested_ratio {r['requested_ratio']:g}); keep one run per ratio")
        seen[key] = i
    return out


def load_results(path):
    """Read and validate an experiment-results JSON file (schema ``darbgen-experiment/1``).

    Returns a normalised copy: optional fields present (None when absent),
    numbers as floats, a run without ``label`` labelled by its method. Raises
    a DarbgenError naming the file and the field at fault (a missing key, a
    wrong schema string, an unknown method or variant, a non-finite metric,
    two runs of one method and variant at the same requested ratio...).
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise DarbgenError(f"{where}: no such file" if not os.path.exists(where) else f"{where}: not a file")
    try:
        with open(where, encoding="utf-8") as fh:
            data = json.load(fh, parse_constant=lambda c: float(c))
    except json.JSONDecodeError as exc:
        raise DarbgenError(f"{where}: not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DarbgenError(f"{where}: not a UTF-8 text file ({exc.reason})") from None
    except RecursionError:
        raise DarbgenError(f"{where}: its JSON nests arrays or objects too deeply to read; an experiment-results "
                           f"file ({SCHEMA}) is an object of a few levels (docs/report.md)") from None
    except ValueError as exc:          # an integer of more digits than Python converts (sys.int_info)
        raise DarbgenError(f"{where}: not readable as JSON ({_clip(str(exc))})") from None
    try:
        return check_results(data, where)
    except RecursionError:             # a deeply nested value where a field is checked or quoted
        raise DarbgenError(f"{where}: a field nests arrays or objects too deeply; see docs/report.md for the "
                           f"fields of {SCHEMA}") from None


# ----------------------------------------------------------------------------- the figures that count

def tolerance_limit(results):
    """The worst metric still within tolerance of the dense model."""
    dense, tol = results["dense_metric"], results["tolerance"]
    margin = tol["value"] if tol["kind"] == "points" else abs(dense) * tol["value"]
    return dense - margin if results["higher_is_better"] else dense + margin


def within_tolerance(results, metric):
    """True when ``metric`` is at least as good as :func:`tolerance_limit` (the limit itself counts)."""
    limit = tolerance_limit(results)
    slack = _SLACK * max(1.0, abs(limit))
    return metric >= limit - slack if results["higher_is_better"] else metric <= limit + slack


def _groups(results):
    """Runs grouped by (method, variant), in METHODS then VARIANTS order, each sorted by requested ratio."""
    groups = {}
    for run in results["runs"]:
        groups.setdefault((run["method"], run["variant"]), []).append(run)
    order = sorted(groups, key=lambda k: (METHODS.index(k[0]), VARIANTS.index(k[1])))
    return [(key, sorted(groups[key], key=lambda r: r["requested_ratio"])) for key in order]


def headline(results):
    """The highest ratio each (method, variant) reaches while staying within tolerance.

    The rule: sort the runs of one method and variant by requested ratio and
    walk up from the lowest; stop at the first run whose metric is outside
    the tolerance of the dense model (accuracy: at least dense - 0.5 points
    for ``{"kind": "points", "value": 0.5}``; bpc: at most dense * 1.02 for
    ``{"kind": "relative", "value": 0.02}``; the direction follows
    ``higher_is_better``, and the limit itself counts as within). Among the
    runs before that stop, the one with the highest achieved ratio is the
    headline. A run that passes above a failing ratio does not count: every
    lower requested ratio must pass too. If even the lowest ratio fails, the
    ratio is None (shown as "-").

    Returns one dict per (method, variant) present, in a fixed order:
    ``method``, ``label``, ``variant``, ``ratio``, ``requested_ratio``,
    ``metric``, ``bits_per_kept``, ``format`` (the last five None when no run
    qualifies) and ``runs`` (how many runs the group has).
    """
    rows = []
    for (method, variant), runs in _groups(results):
        best = None
        for run in runs:
            if not within_tolerance(results, run["metric"]):
                break
            if best is None or run["ratio"] > best["ratio"]:
                best = run
        pick = best or {}
        rows.append({"method": method, "label": runs[0]["label"], "variant": variant,
                     "ratio": pick.get("ratio"), "requested_ratio": pick.get("requested_ratio"),
                     "metric": pick.get("metric"), "bits_per_kept": pick.get("bits_per_kept"),
                     "format": pick.get("format"), "runs": len(runs)})
    return rows


def goal_check(results):
    """DARB's headline ratio against the baselines', per variant.

    For every variant that has runs: DARB's headline ratio divided by
    block4x4's (goal: at least 2) and by irregular's (goal: at least 0.8).
    Returns one dict per variant: ``variant``, ``darb_ratio`` and ``checks``,
    a list of dicts ``baseline``, ``baseline_ratio``, ``factor``, ``goal`` and
    ``met`` (True or False; ``factor`` and ``met`` are None when either ratio
    is missing, that is no run or none within tolerance, or zero).
    """
    ratios = {(r["method"], r["variant"]): r["ratio"] for r in headline(results)}
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in results["runs"])]
    out = []
    for variant in variants:
        darb = ratios.get(("darb", variant))
        checks = []
        for baseline, goal in GOALS:
            other = ratios.get((baseline, variant))
            factor = darb / other if darb and other else None
            checks.append({"baseline": baseline, "baseline_ratio": other, "factor": factor, "goal": goal,
                           "met": None if factor is None else factor >= goal})
        out.append({"variant": variant, "darb_ratio": darb, "checks": checks})
    return out


# ----------------------------------------------------------------------------- tables

def _fmt_metric(results, value):
    if value is None:
        return "-"
    return f"{value:.2f}" if results["metric"] == "accuracy" else f"{value:.3f}"


def _fmt(value, spec=".2f", suffix=""):
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers, rows, align=None):
    """A GitHub-flavoured Markdown table; ``align`` is a string of 'l'/'r' per column."""
    align = align or "l" * len(headers)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [headers, rule] + [list(r) for r in rows]
    return "\n".join("| " + " | ".join(_cell(c) for c in line) + " |" for line in lines)


def _headline_cells(results):
    unit = "%" if results["metric"] == "accuracy" else " bpc"
    return [[r["label"], r["variant"], _fmt(r["ratio"], ".2f", "x"),
             "-" if r["metric"] is None else _fmt_metric(results, r["metric"]) + unit,
             _fmt(r["bits_per_kept"], ".2f")] for r in headline(results)]


HEADLINE_HEADERS = ["method", "variant", "highest ratio within tolerance", "metric there", "bits per kept weight"]


def headline_markdown(results):
    """The headline table in Markdown."""
    return markdown_table(HEADLINE_HEADERS, _headline_cells(results), "llrrr")


def headline_text(results_list):
    """The headline tables of several results as one plain-text table (for the terminal)."""
    from .report import table

    rows = [[res["task"]] + cells for res in results_list for cells in _headline_cells(res)]
    return table(["task"] + HEADLINE_HEADERS, rows, "lllrrr")


def goal_markdown(results):
    """DARB against its goals (x block 4x4, x irregular), per variant, in Markdown."""
    rows = []
    for g in goal_check(results):
        for c in g["checks"]:
            met = {True: "yes", False: "no", None: "-"}[c["met"]]
            rows.append([g["variant"], METHOD_NAMES[c["baseline"]], _fmt(g["darb_ratio"], ".2f", "x"),
                         _fmt(c["baseline_ratio"], ".2f", "x"), _fmt(c["factor"], ".2f", "x"),
                         f">= {c['goal']:g}x", met])
    return markdown_table(["variant", "against", "DARB", "baseline", "DARB / baseline", "goal", "met"], rows,
                          "llrrrrl")


def metric_markdown(results):
    """Every run: rows = method and variant, columns = requested ratios; * marks runs outside tolerance."""
    requested = sorted({r["requested_ratio"] for r in results["runs"]})
    rows = []
    for (method, variant), runs in _groups(results):
        by_ratio = {r["requested_ratio"]: r for r in runs}
        cells = []
        for q in requested:
            run = by_ratio.get(q)
            if run is None:
                cells.append("")
                continue
            mark = "" if within_tolerance(results, run["metric"]) else "*"
            cells.append(f"{_fmt_metric(results, run['metric'])}{mark} ({run['ratio']:.2f}x)")
        rows.append([runs[0]["label"], variant] + cells)
    headers = ["method", "variant"] + [f"{q:g}x" for q in requested]
    return markdown_table(headers, rows, "ll" + "r" * len(requested))


def _describe(results):
    tol = results["tolerance"]
    dense = _fmt_metric(results, results["dense_metric"])
    limit = _fmt_metric(results, tolerance_limit(results))
    if tol["kind"] == "points":
        rule = f"{tol['value']:g} points"
    else:
        rule = f"{100 * tol['value']:g}% of the dense value"
    better = "higher is better" if results["higher_is_better"] else "lower is better"
    if results["metric"] == "accuracy":
        dense, limit = dense + "%", limit + "%"
    what = "accuracy" if results["metric"] == "accuracy" else "bits per character"
    parts = [f"Dense model: {what} {dense} ({better}); tolerance {rule}, so the limit is {limit}."]
    if results["value_dtype"]:
        parts.append(f"Values stored as {results['value_dtype']}.")
    if results["seconds"] is not None:
        parts.append(f"The experiment took {results['seconds']:.0f} s.")
    return " ".join(parts)


# ----------------------------------------------------------------------------- per-matrix figures

def downsample(mask, max_pixels=MAX_PIXELS):
    """A mask as an image of at most ``max_pixels`` per side, and the factor used.

    Each pixel is the share of kept weights in its factor x factor tile (tiles
    at the right and bottom edges may be smaller; they are averaged over their
    own cells). Factor 1 returns the mask as 0/1 floats.
    """
    m = np.asarray(mask, dtype=np.float64)
    factor = max(1, math.ceil(max(m.shape) / max_pixels))
    if factor == 1:
        return m, 1
    rows = np.arange(0, m.shape[0], factor)
    cols = np.arange(0, m.shape[1], factor)
    kept = np.add.reduceat(np.add.reduceat(m, rows, axis=0), cols, axis=1)
    cells = np.outer(np.diff(np.append(rows, m.shape[0])), np.diff(np.append(cols, m.shape[1])))
    return kept / cells, factor


def _file_stem(name, used):
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "matrix"
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return candidate


def _matrix_section(folder, name, w, ratio, used, written):
    """Figures and a table for one weight matrix; returns its Markdown lines."""
    from . import formats, plots
    from .pruning.api import prune_model

    rows, cols = w.shape
    results = {label: prune_model({name: w}, ratio, method, **opts)[name]
               for label, method, opts in (("irregular", "irregular", {}), ("DARB", "darb", {}),
                                           ("block 4x4", "block", {"tile": (4, 4)}))}
    densities = results["irregular"].mask.sum(axis=1) / cols
    live = densities[densities > 0]
    spread = f"{live.max() / live.min():.1f}" if live.size else "-"
    encodings = {"irregular": formats.encode(w, "csr", mask=results["irregular"].mask),
                 "DARB": formats.encode(w, "darb", mask=results["DARB"].mask,
                                        block_sizes=results["DARB"].block_sizes),
                 "block 4x4": formats.encode(w, "bsr", mask=results["block 4x4"].mask, tile=(4, 4))}
    fmt_names = {"irregular": "CSR", "DARB": "DARB packed", "block 4x4": "BSR 4x4"}
    table_rows = [[label, f"{r.ratio:.2f}x", str(r.kept), fmt_names[label],
                   f"{encodings[label].bits_per_kept(MASK_DTYPE):.2f}"] for label, r in results.items()]
    stem = _file_stem(name, used)
    files = {kind: f"{stem}-{kind}.png" for kind in ("density", "blocks", "masks")}
    plots.density_histogram(folder / files["density"], densities, name=name, ratio=ratio)
    plots.block_sizes(folder / files["blocks"], results["DARB"].block_sizes, name=name, ratio=ratio)
    images, factor = [], 1
    for label, r in results.items():
        image, factor = downsample(r.mask)
        images.append((f"{label} ({r.ratio:.2f}x)", image, (rows, cols)))
    plots.mask_images(folder / files["masks"], images, name=name)
    written += [files["density"], files["blocks"], files["masks"]]
    sizes, counts = np.unique(results["DARB"].block_sizes, return_counts=True)
    histogram = ", ".join(f"{int(b)}: {int(c)}" for b, c in zip(sizes, counts))
    shown = ("each pixel" if factor == 1 else
             f"downsampled {factor}x{factor}: each pixel is the share of kept weights in a {factor}x{factor} tile")
    return [
        f"### {name} ({rows} x {cols})", "",
        f"Requested ratio {ratio:g}. After the irregular pass, row densities differ by {spread}x between the "
        f"densest and the sparsest non-empty row ({int(np.count_nonzero(densities == 0))} rows empty). "
        f"DARB block sizes (size: rows): {histogram}.", "",
        markdown_table(["method", "ratio", "kept", "format", f"bits per kept weight ({MASK_DTYPE})"], table_rows,
                       "lrrlr"), "",
        f"![row densities of {name}]({files['density']})", "",
        f"*Row density (kept / columns) after irregular pruning at {ratio:g}x; the dashed line is the matrix "
        f"average 1/{ratio:g}.*", "",
        f"![DARB block sizes of {name}]({files['blocks']})", "",
        "*DARB block size of every row (dense rows get small blocks) and the number of rows per size.*", "",
        f"![masks of {name}]({files['masks']})", "",
        f"*Kept weights (black) of irregular, DARB and 4x4 block pruning at the same requested ratio "
        f"({'one pixel per weight' if factor == 1 else shown}).*", "",
    ]


def _load_matrices(path):
    from . import npzio

    arrays = npzio.load_npz(path)
    return {n: npzio.as_matrix(n, arrays[n]) for n in npzio.weight_names(arrays)}


# ----------------------------------------------------------------------------- the report

def _results_section(folder, path, results, used, written):
    from . import plots

    lines = []
    for (method, variant), runs in _groups(results):
        lines.append({"method": method, "variant": variant, "label": runs[0]["label"],
                      "ratios": [r["ratio"] for r in runs], "metrics": [r["metric"] for r in runs]})
    png = f"{_file_stem(results['task'], used)}-metric.png"
    plots.metric_vs_ratio(folder / png, lines, title=results["title"], ylabel=METRICS[results["metric"]],
                          dense=results["dense_metric"], limit=tolerance_limit(results))
    written.append(png)
    out = [f"## {results['title']}", "",
           f"Task `{results['task']}`, results from `{os.fspath(path)}`."]
    if results["command"]:
        out += ["", f"Produced by `{results['command']}`."]
    out += ["", _describe(results), "",
            "### Highest ratio within tolerance", "",
            "Runs of one method and variant are taken by increasing requested ratio; the headline is the "
            "highest achieved ratio reached before the first run outside the tolerance.", "",
            headline_markdown(results), "",
            "### DARB against its goals", "",
            "DARB's headline ratio over block 4x4's (goal: at least 2x) and over irregular pruning's "
            "(goal: at least 0.8x); \"-\" when a side has no run within tolerance.", "",
            goal_markdown(results), "",
            "### Every run", "",
            f"{METRICS[results['metric']].capitalize()} per requested ratio (achieved ratio in brackets); "
            "* marks a run outside the tolerance.", "",
            metric_markdown(results), "",
            f"![{results['metric']} against ratio]({png})", "",
            f"*{METRICS[results['metric']].capitalize()} against achieved ratio (log scale), one colour per "
            f"method, one line style per variant (dotted one-shot, dashed refit, solid fine-tuned); the shaded "
            f"band runs from the dense model to the tolerance limit.*", ""]
    return out


def _weights_sources(result_paths, loaded, weights):
    """The weight files to draw: ``weights`` if given, else every distinct one the results name."""
    if weights is not None:
        return [os.fspath(weights)]
    sources = []
    for path, res in zip(result_paths, loaded):
        if res["weights"]:
            resolved = os.path.normpath(os.path.join(os.path.dirname(os.fspath(path)), res["weights"]))
            if not os.path.isfile(resolved):
                raise DarbgenError(f"{os.fspath(path)}: field 'weights' names {_shown(res['weights'])}, but "
                                   f"{resolved} does not exist (the path is relative to the JSON file)")
            if resolved not in sources:
                sources.append(resolved)
    return sources


def write_report(out_dir, results=(), weights=None, ratio=16.0, force=False, title=None):
    """Write ``out_dir/report.md`` and its PNG figures.

    Args:
        out_dir: the folder to create. An existing non-empty one is refused
            unless ``force`` and darbgen wrote it (it holds the marker file
            :data:`darbgen.files.MARKER`); then it is replaced whole.
        results: paths of experiment-results JSON files (docs/report.md).
        weights: an .npz of dense weight matrices (read as `darbgen prune`
            reads it). Without it, the files named by the results' ``weights``
            fields are used.
        ratio: the pruning ratio of the per-matrix figures.
        title: the report's heading (default: the results' title, or
            "darbgen report").

    Everything is written to a temporary folder next to ``out_dir`` and moved
    into place when complete; on any error nothing is left behind. The same
    inputs give byte-identical files.

    Returns:
        The paths written (report.md first, then the PNGs), at their final place.
    """
    from . import __version__
    from .files import check_out_dir, write_folder
    from .pruning.api import check_ratio

    if isinstance(results, (str, os.PathLike)):
        results = [results]
    result_paths = list(results or ())
    loaded = [load_results(p) for p in result_paths]
    sources = _weights_sources(result_paths, loaded, weights)
    if not loaded and not sources:
        raise DarbgenError("nothing to report: give experiment results (--results R.json) and/or weights "
                           "(--weights W.npz)")
    if sources:
        ratio = check_ratio(ratio, "report", "darb")
    check_out_dir(out_dir, force)      # before the figures are drawn
    matrices = [(src, _load_matrices(src)) for src in sources]

    if title is None:
        title = loaded[0]["title"] if len(loaded) == 1 else "darbgen report"
    lines = [f"# {title}", "", f"Written by `darbgen report` (darbgen {__version__}).", ""]
    written, used = [], set()

    def fill(tmp):
        nonlocal lines
        if len(loaded) > 1:
            lines += ["## Headline", "", "Highest ratio within tolerance, per task:", ""]
            for res in loaded:
                lines += [f"**{res['title']}**", "", headline_markdown(res), ""]
        for path, res in zip(result_paths, loaded):
            lines += _results_section(tmp, path, res, used, written)
        for src, mats in matrices:
            lines += [f"## Weight matrices of `{src}`", "",
                      f"Each matrix pruned on its own at {ratio:g}x by irregular magnitude pruning, DARB and 4x4 "
                      f"block pruning. Uneven row densities after the irregular pass are what DARB exploits.", ""]
            for name, w in mats.items():
                lines += _matrix_section(tmp, name, w, ratio, used, written)
        (tmp / "report.md").write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")

    out = write_folder(out_dir, fill, force=force)
    return [str(out / "report.md")] + [str(out / name) for name in written]


__all__ = ["SCHEMA", "METHODS", "VARIANTS", "load_results", "check_results", "headline", "goal_check",
           "tolerance_limit", "within_tolerance", "headline_markdown", "headline_text", "goal_markdown",
           "metric_markdown", "markdown_table", "downsample", "write_report"]
