"""`darbgen build`: a trained model in, verified C out, in one call.

load -> prune -> quantize -> generate -> compile -> verify -> report. Each
stage is the public function of its module; this one only strings them
together, evaluates accuracy when given test data, and assembles the report.
"""
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import DarbgenError
from .evaluation import BuildResult, check, eval_outputs, is_classification, predict, score, size_target  # noqa: F401 (re-exported)
from .evaluation import accuracy as score_accuracy
from .layers import kind_of
from .toolchain.cortex_m import TARGETS


@dataclass
class Source:
    """A loaded model and the data its file bundles (calibration, test set)."""

    model: object
    calib: np.ndarray = None
    eval_x: np.ndarray = None
    eval_y: np.ndarray = None
    path: str = None
    notes: list = field(default_factory=list)


#: the longest a compiled run may be given (seconds): a week
MAX_TIMEOUT = 7 * 24 * 3600.0


def load(source, allow_pickle=False):
    """A :class:`Source` from a Model, a fitted scikit-learn MLP, a PyTorch
    nn.Module with a ``darbgen_input_shape`` attribute (docs/torch.md), a
    Keras model (docs/keras.md), an .npz file (docs/npz.md), an .onnx file
    (docs/onnx.md), a .keras file, or (with ``allow_pickle``) a pickled
    scikit-learn MLP. ``.pt`` / ``.pth`` / ``.pt2`` files are refused with a
    message saying how to import them (a weights-only file has no
    architecture)."""
    from .graph import Model
    from .importers.sklearn import from_sklearn, is_sklearn_mlp

    if isinstance(source, Model):
        return Source(source)
    if is_sklearn_mlp(source):
        return Source(from_sklearn(source))
    keras = sys.modules.get("keras")           # never imported here: a module object means it is loaded
    if keras is not None and isinstance(source, keras.Model):
        # first: on Keras' torch backend a keras.Model is also a torch.nn.Module
        from .importers.keras import model_from_keras

        return Source(model_from_keras(source))
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(source, torch.nn.Module):
        from .importers.torch import model_from_torch

        shape = getattr(source, "darbgen_input_shape", None)
        if shape is None:
            raise DarbgenError(f"a PyTorch {type(source).__name__} does not say its input shape: call "
                               f"darbgen.importers.torch.model_from_torch(module, input_shape) and build the Model "
                               f"it returns (or set module.darbgen_input_shape, without the batch)")
        return Source(model_from_torch(source, shape))
    if not isinstance(source, (str, os.PathLike)):
        raise DarbgenError(f"cannot build from a {type(source).__name__}: give a darbgen Model, a fitted "
                           f"scikit-learn MLPClassifier / MLPRegressor, or a model file")
    path = os.fspath(source)
    ext = os.path.splitext(path)[1].lower()
    if os.path.exists(path):
        from .npzio import check_readable

        check_readable(path, "the model file")      # a pipe or device would block, or never end
    if ext == ".npz":
        from .importers.npz import model_from_npz
        from .npzio import load_npz

        arrays = load_npz(path)
        model = model_from_npz(arrays, path)
        src = Source(model, path=path)
        if "calib.x" in arrays:
            src.calib = arrays["calib.x"]
        if "test.x" in arrays and "test.y" in arrays:
            src.eval_x, src.eval_y = arrays["test.x"], arrays["test.y"]
        return src
    if ext == ".onnx":
        from .importers.onnx import model_from_onnx

        return Source(model_from_onnx(path), path=path)
    if ext == ".keras":
        from .importers.keras import model_from_keras

        return Source(model_from_keras(path), path=path)
    if ext == ".tflite":
        from .importers.tflite import graph_from_tflite

        return Source(graph_from_tflite(path), path=path)
    if ext in (".h5", ".hdf5"):
        from .importers.keras_h5 import graph_from_h5

        return Source(graph_from_h5(path), path=path)
    if ext in (".pt", ".pth", ".pt2"):
        from .importers.torch import model_from_torch_file

        return Source(model_from_torch_file(path), path=path)
    if ext in (".pkl", ".pickle", ".joblib"):
        if not allow_pickle:
            raise DarbgenError(f"{path}: loading a pickle runs any code it contains; if you trust this file, pass "
                               f"--allow-pickle (API: allow_pickle=True)")
        if not os.path.isfile(path):
            raise DarbgenError(f"{path}: no such file")
        try:
            if ext == ".joblib":
                import joblib

                obj = joblib.load(path)
            else:
                import pickle

                with open(path, "rb") as f:
                    obj = pickle.load(f)
        except ImportError as exc:
            raise DarbgenError(f"{path}: needs {exc.name} to load; pip install scikit-learn") from None
        except Exception as exc:  # a broken pickle can raise almost anything
            raise DarbgenError(f"{path}: not a readable pickle ({exc.__class__.__name__}: {exc})") from None
        if not is_sklearn_mlp(obj):
            raise DarbgenError(f"{path}: holds a {type(obj).__name__}; darbgen builds fitted scikit-learn "
                               f"MLPClassifier / MLPRegressor models from pickles")
        return Source(from_sklearn(obj), path=path)
    raise DarbgenError(f"{path}: unknown model format {ext or '(no extension)'}; darbgen reads .tflite "
                       f"(docs/tflite.md), Keras 2 .h5 (docs/keras_h5.md), .keras (docs/keras.md), .onnx "
                       f"(docs/onnx.md), .npz (docs/npz.md) and, with --allow-pickle, scikit-learn .pkl / .joblib; "
                       f"PyTorch modules through the Python API (docs/torch.md)")


def _checked_data(src, calib, eval_data, val):
    """The user's data (and what the model file bundles) checked before any work
    (:mod:`darbgen.datacheck`): evaluation and validation inputs of the model's input shape with labels or
    targets that fit its outputs, calibration inputs that vary and lie on the scale of the model's real
    inputs. Returns (calib, eval_data, val) with labels as class numbers where they are whole numbers."""
    from . import datacheck
    from .ir import Graph

    model = src.model
    shape = tuple(model.input_shape)
    if isinstance(model, Graph):
        from .graph_run import infer_shapes

        outputs = int(np.prod(infer_shapes(model)[model.outputs[0]]))
    else:
        outputs = int(np.prod(model.shapes()[-1]))
    classes = getattr(model, "classes", None)
    name = os.path.basename(src.path) if src.path else "the model"

    def pair(data, what, arg):
        if data is None:
            return None
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise DarbgenError(f"{what} data ({arg}) must be a pair (inputs, labels)")
        x = datacheck.real_inputs(data[0], shape, f"{what} inputs ({arg})")
        _kind, y = datacheck.targets(data[1], len(x), outputs, f"{what} labels ({arg})", classes)
        return x, y

    eval_data = pair(eval_data, "evaluation", "eval_data")
    val = pair(val, "validation", "val")
    if src.eval_x is not None and src.eval_y is not None:
        src.eval_x, src.eval_y = pair((src.eval_x, src.eval_y), f"{name}'s bundled test", "test.x, test.y")
    if src.calib is not None:
        src.calib = datacheck.calibration(src.calib, shape, f"{name}'s bundled calibration inputs (calib.x)")
    if calib is not None and not isinstance(calib, dict):
        reference, ref_what = None, None
        for data, what in ((eval_data, "the evaluation inputs (eval_data)"),
                           (val, "the validation inputs (val)"),
                           ((src.eval_x, None), f"the test inputs bundled in {name} (test.x)"),
                           ((src.calib, None), f"the calibration inputs bundled in {name} (calib.x)")):
            if data is not None and data[0] is not None:
                reference, ref_what = data[0], what
                break
        if reference is None and isinstance(model, Graph) and model.quantized:
            q = model.input.quant
            if q is not None and np.size(q.scale) == 1:
                s, z = float(np.ravel(q.scale)[0]), float(np.ravel(q.zero_point)[0])
                reference, ref_what = np.array([s * (-128 - z), s * (127 - z)]), \
                    "the values the model's int8 input can hold"
        calib = datacheck.calibration(calib, shape, "calibration inputs (calib)", reference, ref_what)
    return calib, eval_data, val


def refit_note(report, n, alpha):
    """The report's line on a safe refit (:func:`darbgen.refit.refit_model`'s ``report``)."""
    rows = sum(r["rows"] for r in report.values())
    done = sum(r["rows_refit"] for r in report.values())
    before = sum(r["heldout_error_pruned"] for r in report.values())
    after = sum(r["heldout_error_refit"] for r in report.values())
    alphas = sorted({r["alpha"] for r in report.values()})
    how = f"alpha {alpha:g}" if alpha is not None else "alpha " + "/".join(f"{a:g}" for a in alphas) + \
        " chosen on held-out inputs"
    return (f"kept weights refit by least squares on {n} calibration inputs ({how}): {done} of {rows} rows refit, "
            f"the others kept as pruned (refitting them was worse on the held-out quarter); held-out output error "
            f"{after:.4g} against {before:.4g} unrefit")


def _steps(show, total=7):
    """A progress bar over the build steps (tqdm), quiet when not on a terminal."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc="darbgen build", unit="step", file=sys.stderr, disable=not show, leave=False,
                bar_format="{desc}: {n_fmt}/{total_fmt} {postfix}")


def _search_progress(show):
    """A progress callback for the search: its steps on stderr when ``show``."""
    if not show:
        return None

    def say(message):
        print(f"darbgen build: search: {message}", file=sys.stderr, flush=True)
    return say


def _advance(bar, label):
    if bar is not None:
        bar.set_postfix_str(label)
        bar.update(1)


def build(source, *, ratio=None, method="darb", scope="layer", dtype="int8", kernel="packed", calib=None,
          percentile=None, eval_data=None, out=None, force=False, target="host", prefix=None, allow_pickle=False,
          prune_options=None, progress=False, command=None, layers=None, from_zeros=False, saliency="magnitude",
          refit=False, refit_alpha=None, timeout=None, max_drop=None, val=None, objective="flash"):
    """Build verified C from a trained model; returns a :class:`BuildResult`.

    Args:
        source: a model file (.npz, or a scikit-learn pickle with
            ``allow_pickle``), a fitted scikit-learn MLP, or a graph.Model.
        ratio: pruning ratio (None: no pruning, dense weights).
        from_zeros: the model is already pruned (fine-tuned with
            :mod:`darbgen.train`, say): its zeros are the mask, read with
            :func:`darbgen.from_zeros` for ``method`` darb or irregular
            (no ``ratio``).
        saliency: "magnitude" (|w|) or "activation" (|w| * the norm of its
            input over the calibration inputs, :func:`darbgen.refit.input_norms`).
        refit: after pruning, refit the kept weights and biases by least
            squares to the dense model's outputs on the calibration inputs,
            never worse than unrefit on a held-out quarter of them
            (:func:`darbgen.refit.refit_model`; ``refit_alpha`` its ridge
            strength, default: chosen on the held-out inputs).
        layers: names of the layers to prune (default: every dense and
            convolution layer); the others keep every weight.
        method, scope, prune_options: as :func:`darbgen.prune_model`.
        dtype, kernel: as :func:`darbgen.generate` (kernel ``packed`` needs
            darb or bmwm; other methods fall back to ``csr``).
        calib: calibration inputs (default: the ones the file bundles).
        eval_data: (X, y) to measure accuracy (default: the bundled test set).
        out: folder to write the C into (None: do not write).
        target: where the C is verified: "host" (gcc), or a Cortex-M core
            ("cortex-m0plus" ... "cortex-m55": arm-none-eabi-gcc, run in
            QEMU on a sample of the host's vectors, instructions counted and
            the stack measured; the host check runs every vector and the
            test set).
        max_drop: search, instead of a fixed ``ratio``, for the smallest (``objective="flash"``) or fastest
            (``"instructions"``) pruning whose metric on the validation data ``val`` = (X, y) stays within this
            budget of the unpruned model's: accuracy points, or for regression targets percent of the unpruned
            error (:mod:`darbgen.search`; .tflite and .h5 models; ``calib`` enables its refit and activation
            saliency).
        timeout: seconds each compiled run may take (default: 120 on the
            host; in QEMU in proportion to the host's run time of the same
            work, :func:`darbgen.toolchain.cortex_m.run_timeout`).
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT):
        raise DarbgenError(f"timeout= must be a number of seconds above 0 and at most {MAX_TIMEOUT:g} (a week), "
                           f"got {timeout!r}")
    if out is not None:                 # a bad output folder fails now, not after the build
        from .files import check_out_dir

        check_out_dir(out, force, "force=True",
                      inputs=[source] if isinstance(source, (str, os.PathLike)) else [])
    if refit_alpha is not None:
        from .refit import check_alpha

        check_alpha(refit_alpha, "refit_alpha=")
    if prefix is not None:
        from .codegen import c_identifier

        c_identifier(prefix, "prefix=")
    from .codegen import generate
    from .pruning import prune_model
    from .verify import measure

    if isinstance(calib, dict):
        raise DarbgenError("build calibrates the whole network from inputs of its first layer: give --calib an "
                           ".npy array of shape (n, inputs), not an .npz of per-layer inputs")
    if target not in TARGETS:
        raise DarbgenError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    if saliency not in ("magnitude", "activation"):
        raise DarbgenError(f"unknown saliency {saliency!r}; choose 'magnitude' or 'activation'")
    if from_zeros and ratio is not None:
        raise DarbgenError("--from-zeros reads the ratio from the model's zeros; do not give --ratio with it")
    if from_zeros and (refit or saliency == "activation"):
        raise DarbgenError("--refit and --saliency activation prune afresh; they do not apply to --from-zeros "
                           "(a fine-tuned model is already refit by its training)")
    if refit_alpha is not None and not refit:
        raise DarbgenError("--refit-alpha sets the refit's ridge strength: give --refit with it")
    if (refit or saliency == "activation") and ratio is None:
        raise DarbgenError("--refit and --saliency activation need a pruning --ratio")
    if max_drop is not None:
        if ratio is not None or from_zeros or refit or saliency != "magnitude":
            raise DarbgenError("a budget (max_drop, --max-drop) chooses the ratio, saliency and refit of every layer "
                               "itself: drop ratio, from_zeros, refit and saliency (--ratio, --from-zeros, --refit, "
                               "--saliency)")
        if val is None:
            raise DarbgenError("a budget (max_drop, --max-drop) is measured on validation data: give val=(X, y) "
                               "(--val X.npy Y.npy), kept apart from the evaluation data")
    elif val is not None:
        raise DarbgenError("validation data (val, --val) is for the search under a budget: give max_drop "
                           "(--max-drop) with it")
    on_core = target != "host"
    start = time.perf_counter()
    bar = _steps(progress, 9 if on_core else 7)
    src = load(source, allow_pickle)
    model = src.model
    notes = list(src.notes)
    calib, eval_data, val = _checked_data(src, calib, eval_data, val)
    _advance(bar, "loaded")
    from .ir import Graph

    if isinstance(model, Graph):
        from .graph_build import build_graph

        fit_calib = None
        if max_drop is not None:
            fit_calib = calib if calib is not None else src.calib
        if refit or saliency == "activation":
            fit_calib = calib if calib is not None else src.calib
            if fit_calib is None:
                raise DarbgenError("--refit and --saliency activation need calibration inputs: give --calib X.npy "
                                   "(inputs from the training set, in the model's own layout)")

        result = build_graph(src, ratio=ratio, method=method, scope=scope, dtype=dtype, kernel=kernel, calib=calib,
                             percentile=percentile, eval_data=eval_data, out=out, force=force, target=target,
                             prefix=prefix, prune_options=prune_options, bar=bar, advance=_advance,
                             command=command, layers=layers, start=start, timeout=timeout,
                             from_zeros=from_zeros, saliency=saliency, refit=refit, refit_alpha=refit_alpha,
                             fit_calib=fit_calib,
                             search=None if max_drop is None else {
                                 "max_drop": max_drop, "val": val, "objective": objective,
                                 "progress": _search_progress(progress)})
        if bar is not None:
            bar.close()
        return result
    if max_drop is not None:
        raise DarbgenError(f"{model.name}: the search under a budget (--max-drop) works on .tflite and Keras .h5 "
                           f"models so far; for this model give a --ratio (with --refit) and --layers")
    weights = model.pruning_matrices()
    if layers is not None:
        unknown = [n for n in layers if n not in weights]
        if unknown:
            raise DarbgenError(f"{unknown[0]}: no dense or convolution layer of that name; the model has: "
                               f"{', '.join(weights)}")
        weights = {n: w for n, w in weights.items() if n in layers}
    fit_inputs = None
    if refit or saliency == "activation":
        fit_inputs = calib if calib is not None else src.calib if src.calib is not None else None
        if fit_inputs is None:
            raise DarbgenError("--refit and --saliency activation need calibration inputs: give --calib X.npy "
                               "(inputs from the training set) or bundle calib.x in the model file")
    results = {}
    refit_report = {}           # filled by a --refit (darbgen.refit.refit_model)
    if from_zeros:
        from .pruning import from_zeros as read_zeros

        cands = (prune_options or {}).get("candidates")
        results = {n: read_zeros(w, method, name=n, candidates=cands) for n, w in weights.items()}
        pruned = model.with_pruning(results)
        notes.append(f"pruning read from the model's zeros ({method})")
    elif ratio is not None:
        norms = None
        if saliency == "activation":
            from .refit import input_norms

            norms = {n: v for n, v in input_norms(model, fit_inputs).items() if n in weights}
        results = dict(prune_model(weights, ratio, method, scope=scope, input_norms=norms,
                                   **(prune_options or {})).items())
        if refit:
            from .refit import refit_model

            pruned = refit_model(model, results, fit_inputs, alpha=refit_alpha, report=refit_report)
            notes.append(refit_note(refit_report, len(fit_inputs), refit_alpha))
        else:
            pruned = model.with_pruning(results)
    else:
        pruned = model
    _advance(bar, "pruned")
    if kernel == "packed" and not results:
        notes.append("no --ratio: dense weights, kernel dense")
        kernel = "dense"
    if calib is None and dtype != "float32":
        if src.calib is not None:
            calib = src.calib
            notes.append(f"calibrated on calib.x bundled in {os.path.basename(src.path)} ({len(calib)} inputs)")
        elif src.eval_x is not None and eval_data is None:
            calib = src.eval_x
            notes.append("calibrated on the bundled test set (no calib.x in the file)")
    if eval_data is None and src.eval_x is not None:
        eval_data = (src.eval_x, src.eval_y)
    module = generate(pruned, dtype=dtype, kernel=kernel, prefix=prefix or model.name, calib=calib,
                      percentile=percentile, command=command)
    notes += module.extra.get("notes", [])
    _advance(bar, "generated")
    sizes = measure(module, size_target(target))
    _advance(bar, "measured")
    extra = None
    if eval_data is not None:
        ex = np.asarray(eval_data[0], np.float64).reshape(len(eval_data[0]), -1)
        first = module.layers[0].quantized
        extra = {"(model)": ex.astype(np.float32) if dtype == "float32" else first.input.quantize(ex)}
    checked, host_check, count, image = check(module, target, extra, _advance, bar, timeout)
    accuracy = None
    c_real = None
    if eval_data is not None:
        ey = eval_data[1]
        c_out = eval_outputs(checked, host_check, len(ey))
        last = module.layers[-1].quantized
        c_real = c_out.astype(np.float64) if dtype == "float32" else last.output.dequantize(c_out)
        accuracy = score_accuracy(model.forward(ex), pruned.forward(ex), c_real, ey, model.classes)
    if out is not None:
        module.write(out, force=force)
    _advance(bar, "written" if out else "done")
    if bar is not None:
        bar.close()
    report = build_report(model, pruned, results, module, sizes, checked, accuracy, notes, out,
                          time.perf_counter() - start, method if results else None, count, host_check, image)
    if refit_report:
        report["refit"] = refit_report      # per matrix: alpha, rows refit, held-out error before and after
    return BuildResult(model, pruned, module, checked, report, c_real, host_check)


def _kind(g):
    """A generated layer's kind in the report (dense, conv, maxpool, avgpool, softmax, lstm, gru), from its op kind."""
    return kind_of(g.quantized).report_kind(g)


def _shape(g):
    """Weight matrix shape (out, in) of dense layers; (steps, inputs, hidden) of
    recurrent ones; output shape otherwise."""
    return kind_of(g.quantized).report_shape(g)


def build_report(model, pruned, results, module, sizes, checked, accuracy, notes, out, seconds, method,
                 count=None, host_check=None, image=None):
    """The build report as plain data (what --json prints). ``count``: an
    :class:`~darbgen.verify.InstructionCount` when built for a Cortex-M core,
    ``image``: the model's bytes in the linked image (code, rodata, data,
    bss; see :func:`darbgen.toolchain.cortex_m.image_sizes`)."""
    checks = {c.symbol: c for c in checked.layers}
    layers = []
    for g in module.layers:
        obj = sizes["layers"][g.symbol]
        c = checks[g.symbol]
        row = {"name": g.name, "symbol": g.symbol, "kind": _kind(g), "kernel": g.kernel, "shape": _shape(g),
               "bytes": g.data_bytes(),
               "code_bytes": obj["code"], "description": g.description,
               "flash_bytes": obj["code"] + obj["rodata"] + obj["data"],
               "verify": {"ok": c.ok, "vectors": c.vectors, "mismatches": c.mismatches,
                          "max_abs_diff": c.max_abs_diff, "max_rel_f64": c.max_rel_f64}}
        row.update(kind_of(g.quantized).report_fields(g))      # kept weights, block sizes, state...
        if count is not None:
            row["instructions"] = count.instructions[g.name]
            row["stack_bytes"] = count.stack[g.name]
        layers.append(row)
    model_check = checks.get(module.prefix)
    objects = list(sizes["layers"].values()) + [sizes["runtime"], sizes["model"]]
    if image is not None:              # the linked image: what the core really holds, library routines included
        objects = [image]
    flash = sum(o["code"] + o["rodata"] + o["data"] for o in objects)
    static_ram = ((module.model.arena_bytes if module.model is not None else 0)
                  + sum(g.state_bytes for g in module.layers))
    if image is not None:
        static_ram = image["data"] + image["bss"]
    stack = None
    if count is not None:
        stack = max(count.stack.get("(model)", max(count.stack.values())),
                    (checked.stack or {}).get("(model)", 0))
    dense_weights = sum(m.size for m in model.pruning_matrices().values())
    kept = sum(int(np.count_nonzero(m)) for m in pruned.pruning_matrices().values())
    report = {
        "model": model.name, "prefix": module.prefix, "dtype": module.dtype, "kernel": module.kernel,
        "method": method, "ratio": dense_weights / max(kept, 1), "weights": dense_weights, "kept": kept,
        "verified": checked.ok and (host_check is None or host_check.ok), "target": checked.target,
        "flash_bytes": flash, "code_bytes": sum(o["code"] for o in objects),
        "weight_bytes": sum(o["rodata"] + o["data"] for o in objects),
        "ram_bytes": static_ram + (stack or 0),
        "static_ram_bytes": static_ram,
        "size_target": sizes["target"], "runtime_code_bytes": sizes["runtime"]["code"],
        "model_check": None if model_check is None else {
            "ok": model_check.ok, "vectors": model_check.vectors, "mismatches": model_check.mismatches,
            "max_abs_diff": model_check.max_abs_diff, "max_rel_f64": model_check.max_rel_f64},
        "layers": layers, "notes": notes, "output": None if out is None else os.fspath(out),
        "files": sorted(module.files), "seconds": seconds,
        "compiler": {"cc": checked.compiler, "flags": checked.flags},
    }
    if count is not None:
        report["instructions"] = count.total
        report["stack_bytes"] = stack
        report["host_verified"] = host_check.ok
        host_model = {c.symbol: c for c in host_check.layers}.get(module.prefix)
        if report["model_check"] is not None and host_model is not None:
            report["model_check"]["host_vectors"] = host_model.vectors
    if accuracy is not None:
        report["accuracy"] = accuracy
    return report
