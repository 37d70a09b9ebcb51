"""`darbgen build` for op graphs (.tflite, Keras .h5): prune -> quantize -> generate -> verify -> report.

The graph twin of :func:`darbgen.build.build`: :func:`darbgen.build.build`
hands a loaded :class:`~darbgen.ir.Graph` here. Pruning asks each op kind for
its weight matrix (:attr:`OpKind.prunable`); an int8 model keeps its integer
weights and quantization (pruning only zeroes weights, by saliency |q| x
scale), a float model is calibrated.
"""
import os
import time

import numpy as np

from .errors import DarbgenError
from .ir import Node
from .ops import op_kind


def graph_weights(graph, layers=None):
    """{op name: weight matrix} of the prunable ops (``layers``: only these, checked)."""
    weights = {n.name: op_kind(n).pruning_matrix(n) for n in graph.weight_nodes()}
    if layers is not None:
        unknown = [n for n in layers if n not in weights]
        if unknown:
            raise DarbgenError(f"{unknown[0]}: no convolution or fully connected op of that name; the model has: "
                               f"{', '.join(weights)}")
        weights = {n: w for n, w in weights.items() if n in layers}
    if not weights:
        raise DarbgenError(f"{graph.name}: nothing to prune (no convolution or fully connected op)")
    return weights


def with_masks(graph, results):
    """A copy of ``graph`` whose ops named in ``results`` carry their masks and block sizes."""
    nodes = []
    for node in graph.nodes:
        r = results.get(node.name)
        if r is not None:
            attrs = dict(node.attrs, mask=np.asarray(r.mask, bool), block_sizes=r.block_sizes)
            node = Node(node.kind, node.name, node.inputs, node.outputs, node.params, attrs, node.source_name)
        nodes.append(node)
    return graph.replace(nodes=nodes)


def prune_graph(graph, ratio, method="darb", scope="layer", layers=None, prune_options=None, input_norms=None):
    """A copy of ``graph`` whose prunable nodes carry masks (and DARB block sizes): (graph, {name: PruneResult}).

    ``input_norms``: {op name: per-column input norms} for activation-aware saliency
    (:func:`darbgen.graph_refit.graph_input_norms`)."""
    from .pruning import prune_model

    weights = graph_weights(graph, layers)
    norms = None if input_norms is None else {n: v for n, v in input_norms.items() if n in weights}
    results = dict(prune_model(weights, ratio, method, scope=scope, input_norms=norms,
                               **(prune_options or {})).items())
    return with_masks(graph, results), results


def zeros_graph(graph, method="darb", layers=None, prune_options=None):
    """The pruning a graph's weights carry in their zeros (a fine-tuned model): (graph, {name: PruneResult})."""
    from .pruning import from_zeros

    cands = (prune_options or {}).get("candidates")
    weights = graph_weights(graph, layers)
    results = {n: from_zeros(w, method, name=n, candidates=cands) for n, w in weights.items()
               if np.any(w == 0)}
    if not results:
        raise DarbgenError(f"{graph.name}: no weight is zero, so the model carries no pruning; drop --from-zeros "
                           f"and give a --ratio")
    return with_masks(graph, results), results


def search_note(rep):
    """The report's line on an accuracy-budget search (:func:`darbgen.search.search_graph`'s report)."""
    pruned = {n: l for n, l in rep["layers"].items() if l["ratio"] > 1}
    what = ", ".join(f"{n} {l['ratio']:g}x" for n, l in pruned.items()) or "nothing (no pruning within the budget makes the model smaller or faster)"
    saved = 1 - rep["cost_chosen"] / rep["cost_unpruned"] if rep["cost_unpruned"] else 0.0
    return (f"search within {rep['budget']:g} {rep['unit']} on the validation set: pruned {what}; "
            f"{rep['metric']} {rep['chosen']:.4g} against {rep['unpruned']:.4g} unpruned (uses {rep['loss']:.3g} of "
            f"the budget); {rep['objective']} {saved:.0%} smaller than unpruned ({rep['cost_unit']}), "
            f"{rep['evaluations']} evaluations in {rep['seconds']:.0f} s")


def _outputs_real(qg, x_model, kernel):
    """The reference outputs of a QGraph on model-typed inputs, as real numbers."""
    return qg.dequantize_output(qg.run(x_model, kernel)).reshape(len(x_model), -1)


#: The pruning ratio from which DARB packed int8 layers take fewer instructions than dense ones, measured on the
#: MLPerf Tiny models (docs/benchmarks.md): about 3x; but on the M55, whose dense convolution kernels do 16
#: multiply-adds per instruction, pruned convolutions stay slower at every measured ratio (up to 8x).
PACKED_PAYS_FROM = 3.0
CONV_KINDS = ("conv2d",)


def packed_speed_note(target, ratio, kernel, dtype, convolutions=False):
    """A note for the report when the packed kernels are expected to be slower than dense ones on ``target`` at
    ``ratio`` (they still save flash), else None; ``convolutions``: pruned convolutions are among them."""
    if target == "host" or ratio is None or kernel != "packed" or dtype != "int8":
        return None
    pays = None if (target == "cortex-m55" and convolutions) else PACKED_PAYS_FROM
    if pays is not None and ratio >= pays:
        return None
    when = f"below about {pays:g}x" if pays is not None else "at the ratios measured (up to 8x)"
    what = "DARB packed convolutions" if pays is None else "DARB packed layers"
    return (f"on {target} {what} {when} take more instructions than dense ones (the index costs more "
            f"than the skipped multiply-adds; docs/benchmarks.md): they save flash; --kernel dense keeps every "
            f"weight and the dense speed")


def build_graph(src, *, ratio=None, method="darb", scope="layer", dtype="int8", kernel="packed", calib=None,
                percentile=None, eval_data=None, out=None, force=False, target="host", prefix=None,
                prune_options=None, bar=None, advance=None, command=None, layers=None, start=None, timeout=None,
                from_zeros=False, saliency="magnitude", refit=False, refit_alpha=None, fit_calib=None,
                search=None):
    """Build verified C from a loaded graph (``src``: a :class:`darbgen.build.Source`); returns a BuildResult.

    ``fit_calib``: real-valued inputs for ``saliency="activation"`` and ``refit`` (the refit's report goes to
    ``report["refit"]``). ``search``: keyword arguments of :func:`darbgen.search.search_graph` (max_drop, val,
    objective): the pruning is chosen under that accuracy budget (``report["search"]``)."""
    from .codegen.graph_emit import generate_graph
    from .evaluation import BuildResult, accuracy as score_accuracy, check, eval_outputs, size_target
    from .graph_run import quantize_graph, run_f64
    from .verify import measure

    start = time.perf_counter() if start is None else start
    advance = advance or (lambda bar, label: None)
    graph = src.model
    notes = list(src.notes) + list(graph.notes)
    if graph.quantized and dtype != "int8":
        raise DarbgenError(f"{graph.name}: the model is quantized (int8 weights and activations); it builds as int8 "
                           f"with its own quantization: drop --dtype {dtype}")
    results = {}
    refit_report = {}
    pruned = graph
    search_report = None
    if search is not None:
        from .search import search_graph

        found = search_graph(graph, calib=fit_calib, method=method, target=target, dtype=dtype,
                             percentile=percentile, layers=layers, prune_options=prune_options, kernel=kernel,
                             progress=search.get("progress"),
                             **{k: v for k, v in search.items() if k != "progress"})
        pruned, results, search_report = found.graph, found.results, found.report
        notes.append(search_note(search_report))
    elif from_zeros:
        pruned, results = zeros_graph(graph, method, layers, prune_options)
        notes.append(f"pruning read from the model's zeros ({method})")
    elif ratio is not None:
        norms = None
        if saliency == "activation":
            from .graph_refit import graph_input_norms

            norms = graph_input_norms(graph, fit_calib, None if layers is None else set(layers))
        pruned, results = prune_graph(graph, ratio, method, scope, layers, prune_options, input_norms=norms)
        if refit:
            from .build import refit_note
            from .graph_refit import refit_graph

            # the unpruned ops after the first pruned one are refit too: they learn to make up for it
            pruned = refit_graph(graph, pruned, results, fit_calib, alpha=refit_alpha, report=refit_report,
                                 downstream=True)
            notes.append(refit_note(refit_report, len(fit_calib), refit_alpha))
    elif layers is not None:
        raise DarbgenError("--layers chooses what to prune: give a --ratio with it")
    advance(bar, "pruned")
    if kernel == "packed" and not results:
        notes.append("no --ratio: dense weights, kernel dense")
        kernel = "dense"
    if search_report is not None and results:
        dense = sum(w.size for w in graph_weights(graph).values())
        ratio = dense / max(1, sum(int(np.count_nonzero(r.mask)) for r in results.values()))
    note = packed_speed_note(target, ratio, kernel, dtype,
                             any(n.kind in CONV_KINDS for n in pruned.nodes if n.name in results))
    if note:
        notes.append(note)
    if calib is None and dtype == "int8" and not graph.quantized:
        if src.calib is not None:
            calib = src.calib
        else:
            raise DarbgenError(f"{graph.name}: a float model builds as int8 from calibration inputs: pass --calib "
                               f"X.npy, inputs in the model's own layout, shape (n, "
                               f"{', '.join(map(str, graph.input_shape))}); or --dtype float32")
    if graph.quantized and calib is not None:
        used = ("search's refit and saliency" if search is not None else "refit" if refit else
                "activation saliency" if saliency == "activation" else None)
        notes.append(f"--calib used for the {used} only: the model keeps its own int8 quantization" if used else
                     "--calib ignored: the model keeps its own int8 quantization")
    qg = quantize_graph(pruned, dtype, calib=None if graph.quantized else calib, percentile=percentile)
    module = generate_graph(qg, kernel=kernel, prefix=prefix or graph.name, command=command)
    advance(bar, "generated")
    sizes = measure(module, size_target(target))
    advance(bar, "measured")
    extra, ex = None, None
    if eval_data is not None:
        ex = np.asarray(eval_data[0], np.float64)
        want = int(np.prod(graph.input_shape))
        if ex.ndim < 1 or ex.size % want or (ex.ndim > 1 and int(np.prod(ex.shape[1:])) != want):
            raise DarbgenError(f"evaluation inputs must have shape (n, {', '.join(map(str, graph.input_shape))}), "
                               f"got {ex.shape}")
        ex = ex.reshape((-1,) + tuple(graph.input_shape))
        extra = {"(model)": qg.quantize_input(ex).reshape(len(ex), -1)}
    checked, host_check, count, image = check(module, target, extra, advance, bar, timeout)
    accuracy, c_real = None, None
    if eval_data is not None:
        ey = np.asarray(eval_data[1])
        c_out = eval_outputs(checked, host_check, len(ey))
        c_real = qg.dequantize_output(c_out).reshape(len(ey), -1)
        x_model = qg.quantize_input(ex)
        if graph.quantized:          # no float model: the unpruned int8 model is the original
            original = _outputs_real(quantize_graph(graph, "int8"), x_model, kernel)
            pruned_out = _outputs_real(qg, x_model, kernel)
        else:
            original = run_f64(graph, ex).reshape(len(ex), -1)
            pruned_out = run_f64(pruned, ex).reshape(len(ex), -1)
        accuracy = score_accuracy(original, pruned_out, c_real, ey, graph.classes)
    if out is not None:
        module.write(out, force=force)
    advance(bar, "written" if out else "done")
    report = graph_report(graph, pruned, results, module, sizes, checked, accuracy, notes, out,
                          time.perf_counter() - start, method if results else None, count, host_check, image)
    if refit_report:
        report["refit"] = refit_report      # per op: alpha, rows refit, held-out error before and after
    if search_report is not None:
        report["search"] = search_report    # per op: the ratio, saliency and refit chosen; the budget used
    return BuildResult(graph, pruned, module, checked, report, c_real, host_check)


def graph_report(graph, pruned, results, module, sizes, checked, accuracy, notes, out, seconds, method,
                 count=None, host_check=None, image=None):
    """The build report of a graph model, in the same form as :func:`darbgen.build.build_report`."""
    qg = module.extra["graph"]
    checks = {c.symbol: c for c in checked.layers}
    layers = []
    for op in module.extra["ops"]:
        node = op.node
        kind = op_kind(node)
        obj = sizes["layers"].get(op.symbol, {"code": 0, "rodata": 0, "data": 0})
        c = checks.get(op.symbol)
        row = {"name": node.name, "source_name": node.source_name, "symbol": op.symbol,
               "kind": kind.title or node.kind, "kernel": op.matrices[0].kernel if op.matrices else node.kind,
               "shape": list(qg.shapes[node.outputs[0]]), "bytes": op.data_bytes(),
               "code_bytes": obj["code"], "description": op.description,
               "flash_bytes": obj["code"] + obj["rodata"] + obj["data"],
               "verify": ({"ok": c.ok, "vectors": c.vectors, "mismatches": c.mismatches,
                           "max_abs_diff": c.max_abs_diff, "max_rel_f64": c.max_rel_f64} if c is not None else
                          {"ok": True, "vectors": 0, "mismatches": 0, "max_abs_diff": 0.0, "max_rel_f64": None,
                           "note": "checked within the whole model"})}
        act = node.attrs.get("activation")
        if act:
            row["activation"] = act
        if op.matrices:
            layer = op.matrices[0].layer
            row["kept"], row["ratio"] = layer.kept, layer.ratio
            bs = layer.block_sizes            # rows per block size
            row["block_sizes"] = {} if bs is None else {int(b): int(c) for b, c in zip(*np.unique(bs, return_counts=True))}
        if count is not None and c is not None:
            row["instructions"] = count.instructions.get(node.name, 0)
            row["stack_bytes"] = count.stack.get(node.name, 0)
        layers.append(row)
    model_check = checks.get(module.prefix)
    objects = list(sizes["layers"].values()) + [sizes["runtime"], sizes["model"]]
    if image is not None:
        objects = [image]
    flash = sum(o["code"] + o["rodata"] + o["data"] for o in objects)
    static_ram = module.extra["arena_bytes"]
    if image is not None:
        static_ram = image["data"] + image["bss"]
    stack = None
    if count is not None:
        stack = max(count.stack.get("(model)", 0), (checked.stack or {}).get("(model)", 0))
    dense = sum(op_kind(n).pruning_matrix(n).size for n in graph.weight_nodes())
    kept = sum(m.layer.kept for op in module.extra["ops"] for m in op.matrices)
    data = {k: sum(op.data_bytes()[k] for op in module.extra["ops"]) for k in ("values", "index", "metadata",
                                                                             "params", "total")}
    report = {
        "model": graph.name, "source": graph.source, "prefix": module.prefix, "dtype": module.dtype,
        "kernel": module.kernel, "method": method, "ratio": dense / max(kept, 1), "weights": dense, "kept": kept,
        "verified": checked.ok and (host_check is None or host_check.ok), "target": checked.target,
        "flash_bytes": flash, "code_bytes": sum(o["code"] for o in objects),
        "weight_bytes": sum(o["rodata"] + o["data"] for o in objects), "data_bytes": data,
        "ram_bytes": static_ram + (stack or 0), "static_ram_bytes": static_ram,
        "size_target": sizes["target"], "runtime_code_bytes": sizes["runtime"]["code"],
        "input": {"shape": list(qg.shapes[graph.inputs[0]]), "type": qg.input_type, "layout": graph.layout},
        "output": None if out is None else os.fspath(out),
        "model_check": None if model_check is None else {
            "ok": model_check.ok, "vectors": model_check.vectors, "mismatches": model_check.mismatches,
            "max_abs_diff": model_check.max_abs_diff, "max_rel_f64": model_check.max_rel_f64},
        "layers": layers, "notes": notes, "files": sorted(module.files), "seconds": seconds,
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
