"""The smallest (or fastest) pruned model within an accuracy budget, without training: ``darbgen build --max-drop``.

Users should not have to guess ratios layer by layer. Given validation data
``(X, y)`` and a budget, :func:`search_graph`

1. measures the unpruned model's metric on the validation set, through the
   pipeline the C computes (the int8 reference for a quantized model);
2. measures every prunable op's sensitivity alone: the op pruned at each
   ratio of :data:`LADDER` (as far as the method reaches and the op's own
   loss stays within the budget), with each variant of :data:`VARIANTS`
   (magnitude or activation-aware saliency, with or without the safe
   least-squares refit) - the best variant per ratio is kept;
3. chooses a ratio per op (dense included) minimising the objective - the
   bytes of weights, index and metadata (``flash``) or estimated Cortex-M
   instructions (``instructions``, :data:`INSTRUCTIONS`) - under the budget,
   with the ops' losses taken as additive (an exact knapsack over a fine grid
   of the budget). Ops that do not pay - whose pruning saves less than it
   costs in budget, or whose packed kernel would be slower than the dense one
   - stay dense by themselves;
4. builds the chosen model (the refit sequential over the ops that chose it)
   and measures it on the validation set again. Losses are not exactly
   additive, so while the whole model misses the budget the allowance is
   shrunk and step 3 repeats; the unpruned model (loss 0) always fits. The
   result is therefore within the budget on the validation set, measured on
   the model that is built, never estimated.

Metrics: classification (integer labels, one per input; float labels that
are whole numbers are accepted) takes the top-1 accuracy and a budget in
percentage points; regression (targets with the output's shape, an
autoencoder's inputs say) takes the mean squared error and a relative budget,
in percent of the unpruned model's error.
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import DarbgenError
from .evaluation import size_target

#: the pruning ratios tried per op
LADDER = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
#: (saliency, refit) variants tried at each ratio
VARIANTS = (("magnitude", False), ("magnitude", True), ("activation", True))
OBJECTIVES = ("flash", "instructions")
#: Estimated instructions per output pixel of an int8 matrix op, from the kernels' measured costs
#: (docs/benchmarks.md): dense per multiply-add; packed per kept weight and per row (output stage), for
#: convolutions (tiles of pixels) and fully connected layers. Only the ranking of choices depends on these;
#: a build with --target counts the real instructions.
INSTRUCTIONS = {
    "dsp": {"dense_conv": 1.47, "dense_fc": 1.96, "kept_conv": 2.5, "row_conv": 13.0, "kept_fc": 4.5,
            "row_fc": 15.0},
    "mve": {"dense_conv": 0.31, "dense_fc": 0.4, "kept_conv": 1.0, "row_conv": 7.5, "kept_fc": 1.0,
            "row_fc": 10.0},
    "plain": {"dense_conv": 4.0, "dense_fc": 4.0, "kept_conv": 5.5, "row_conv": 15.0, "kept_fc": 5.5,
              "row_fc": 15.0},
}
_FAMILY = {"cortex-m55": "mve", "cortex-m4": "dsp", "cortex-m7": "dsp", "cortex-m33": "dsp"}
#: the refit's ridge strengths tried while measuring each op alone (the chosen model's refit tries all of
#: :data:`darbgen.refit.ALPHAS`)
SEARCH_ALPHAS = (1e-3, 1e-1)
#: the budget is split into this many steps for the knapsack
GRID = 400


@dataclass
class Metric:
    """How outputs are scored against the validation targets, and how a loss is counted."""

    kind: str                 # "accuracy" or "mse"
    y: np.ndarray

    @classmethod
    def of(cls, y, outputs_per_input, n, what="validation labels (val)"):
        """The metric of labels (accuracy) or regression targets (mse) ``y``, checked
        (:func:`darbgen.datacheck.targets`)."""
        from .datacheck import targets

        kind, y = targets(y, n, outputs_per_input, what)
        return cls(kind, y)

    @property
    def unit(self):
        return "points" if self.kind == "accuracy" else "% of the unpruned error"

    def score(self, out):
        out = np.asarray(out, np.float64).reshape(len(self.y), -1)
        if self.kind == "accuracy":
            return 100.0 * float(np.mean(np.argmax(out, axis=1) == self.y))
        return float(np.mean(np.square(out - self.y)))

    def loss(self, base, value):
        """The budget a score uses against the unpruned score (points, or percent of the error)."""
        if self.kind == "accuracy":
            return base - value
        return 100.0 * (value - base) / base if base > 0 else (0.0 if value <= 0 else math.inf)


@dataclass
class Choice:
    """One op's option: its ratio (1: dense) and variant, its loss alone and its cost."""

    ratio: float
    saliency: str = None
    refit: bool = False
    loss: float = 0.0
    cost: float = 0.0
    result: object = None


@dataclass
class SearchResult:
    graph: object               # the chosen pruned (and refit) graph
    results: dict               # {op name: PruneResult}
    report: dict = field(default_factory=dict)


def _matrix_bytes(result, shape):
    """Bytes of values + index + metadata of a pruned int8 matrix in the kernel it will use."""
    from .formats import encode

    rows, cols = shape
    if result is None:
        return float(rows * cols)
    if result.block_sizes is not None:
        enc = encode(np.ones(shape, np.int8), "darb", mask=result.mask,
                     block_sizes=np.minimum(result.block_sizes, cols))
        a = enc.arrays
        return float(a["values"].size + a["offsets"].size + 3 + 2 * a["class_block"].size
                     + 2 * a["class_rows"].size + 4 * a["class_start"].size + 2 * a["row_order"].size)
    kept = int(np.count_nonzero(result.mask))
    return float(kept * (1 + (1 if cols <= 256 else 2)) + 2 * (rows + 1))


def _instructions(node, pixels, result, family):
    c = INSTRUCTIONS[family]
    rows, cols = node.params["weight"].shape[0], int(np.prod(node.params["weight"].shape[1:]))
    conv = node.kind == "conv2d"
    if result is None:
        return pixels * rows * cols * c["dense_conv" if conv else "dense_fc"]
    kept = int(np.count_nonzero(result.mask))
    return pixels * (kept * c["kept_conv" if conv else "kept_fc"] + rows * c["row_conv" if conv else "row_fc"])


class _GraphEval:
    """Scores candidate graphs on the validation inputs through the model's own pipeline, reusing the dense
    model's tensors up to the first changed op."""

    def __init__(self, graph, xv, calib, dtype, percentile):
        from .graph_run import quantize_graph, run_f64

        self.graph, self.dtype, self.calib, self.percentile = graph, dtype, calib, percentile
        self.order = {n.name: i for i, n in enumerate(graph.nodes)}
        self.xv = xv
        if graph.quantized:
            self.qg = quantize_graph(graph, "int8")
            self.xin = self.qg.quantize_input(xv)
            self.vals = self.qg.run(self.xin, keep=True)
        else:
            self.qg = None
            self.vals = run_f64(graph, xv, keep=True)
        self.evaluations = 0

    def outputs(self, candidate, changed):
        """Real outputs of ``candidate`` (the dense graph with the ops named in ``changed`` replaced)."""
        from .graph_run import quantize_graph, run_f64

        first = min(self.order[n] for n in changed) if changed else len(self.graph.nodes)
        given = {t: v for n in self.graph.nodes[:first] for t, v in ((t, self.vals[t]) for t in n.outputs)}
        self.evaluations += 1
        if self.qg is not None:
            qg = quantize_graph(candidate, "int8")
            y = qg.run(self.xin, given=given)
            return qg.dequantize_output(y).reshape(len(self.xv), -1)
        return run_f64(candidate, self.xv, given=given).reshape(len(self.xv), -1)

    def quantized(self, candidate):
        """``candidate`` quantized as it will be built."""
        from .graph_run import quantize_graph

        if self.graph.quantized:
            return quantize_graph(candidate, "int8")
        if self.dtype == "float32":
            return quantize_graph(candidate, "float32")
        return quantize_graph(candidate, "int8", calib=self.calib, percentile=self.percentile)

    def final_outputs(self, candidate):
        """Real outputs of the model as it will be built (a float model quantized as it will be)."""
        from .graph_run import quantize_graph

        if self.qg is not None:         # a quantized model: its own int8 pipeline, as in the search
            return self.outputs(candidate, [n.name for n in candidate.weight_nodes()])
        if self.dtype == "float32":
            qg = quantize_graph(candidate, "float32")
        else:
            qg = quantize_graph(candidate, "int8", calib=self.calib, percentile=self.percentile)
        return qg.dequantize_output(qg.run(qg.quantize_input(self.xv))).reshape(len(self.xv), -1)


def _kernel_code(qg, kernel, target, cache):
    """Bytes of runtime kernel code (.text) the C of the quantized graph ``qg`` links, compiled for the core
    flash is measured on (:func:`darbgen.evaluation.size_target`); ``cache``: {runtime files: bytes}."""
    from .codegen.graph_emit import generate_graph
    from .verify import measure

    module = generate_graph(qg, kernel=kernel, prefix="search")
    key = tuple(module.runtime_sources)
    if key not in cache:
        cache[key] = int(measure(module, size_target(target))["runtime"]["code"])
    return cache[key]


def _knapsack(options, allowance):
    """Per op the option index minimising the total cost with the summed losses within ``allowance``."""
    names = list(options)
    if allowance <= 0:
        return {n: 0 for n in names}
    step = allowance / GRID
    inf = math.inf
    best = np.full(GRID + 1, inf)
    best[0] = 0.0
    picks = []
    for n in names:
        new = np.full(GRID + 1, inf)
        pick = np.zeros(GRID + 1, np.int64)
        for i, ch in enumerate(options[n]):
            units = 0 if ch.loss <= 0 else math.ceil(ch.loss / step - 1e-9)
            if units > GRID:
                continue
            cand = np.full(GRID + 1, inf)
            cand[units:] = best[:GRID + 1 - units] + ch.cost
            better = cand < new
            new[better] = cand[better]
            pick[better] = i
        picks.append(pick)
        best = new
    u = int(np.argmin(best))
    choice = {}
    for n, pick in zip(reversed(names), reversed(picks)):
        i = int(pick[u])
        choice[n] = i
        ch = options[n][i]
        u -= 0 if ch.loss <= 0 else math.ceil(ch.loss / step - 1e-9)
    return choice


def search_graph(graph, *, max_drop, val, calib=None, objective="flash", method="darb", target="host",
                 dtype="int8", percentile=None, layers=None, scope="layer", prune_options=None, ladder=None,
                 variants=None, progress=None, kernel="packed", count_code=True):
    """The smallest (``objective="flash"``) or fastest (``"instructions"``) pruning of ``graph`` whose metric on
    the validation set ``val`` stays within ``max_drop`` of the unpruned model's (module docstring).

    Args:
        graph: a :class:`darbgen.ir.Graph` (.tflite, Keras .h5).
        max_drop: the budget: accuracy points (classification) or percent of the unpruned error (regression).
        val: (X, y): validation inputs in the model's layout and labels (or regression targets).
        calib: calibration inputs for the refit and activation saliency (and a float model's int8 ranges);
            None: the refit and activation variants are skipped.
        objective: "flash" (bytes of weights + index + metadata) or "instructions" (estimated for ``target``).
        method: the pruning method of every pruned op.
        target: the core whose instruction costs rank the choices (objective "instructions").
        layers: names of the ops that may be pruned (default: every convolution and fully connected op).
        ladder, variants: the ratios and (saliency, refit) variants tried (default: :data:`LADDER`,
            :data:`VARIANTS`).
        progress: optional callable(str) told of each step.
        kernel: the kernel the model will be built with (``darbgen build --kernel``).
        count_code: with objective "flash", also count the runtime kernels' code the chosen model links
            (measured with the target's compiler): pruned ops need sparse kernels beside the dense ones, which
            can outweigh the weights saved on a small model. Choices where whole kinds of op stay dense are
            compared too, so the result is never larger than the unpruned model by this count.

    Returns:
        A :class:`SearchResult`: the graph with masks (and refit values), {op: PruneResult}, and a report.
    """
    from .graph_build import graph_weights, with_masks
    from .graph_refit import _Runner, check_calib, graph_input_norms, refit_graph, refit_node
    from .graph_run import infer_shapes
    from .pruning import prune_model
    from .refit import HOLDOUT_EVERY, Gram

    start = time.perf_counter()
    ladder = LADDER if ladder is None else tuple(ladder)
    variants = VARIANTS if variants is None else tuple(variants)
    say = progress or (lambda s: None)
    if objective not in OBJECTIVES:
        raise DarbgenError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    try:
        budget = float(max_drop)
    except (TypeError, ValueError):
        raise DarbgenError(f"the budget (max_drop) must be a number, got {max_drop!r}") from None
    if not (math.isfinite(budget) and budget >= 0):
        raise DarbgenError(f"the budget (max_drop) must be a finite number >= 0, got {max_drop!r}")
    if val is None or len(val) != 2:
        raise DarbgenError("the search needs validation data: val=(X, y)")
    xv = check_calib(graph, val[0], "validation inputs (val)")
    if graph.quantized and dtype != "int8":
        raise DarbgenError(f"{graph.name}: the model is quantized; it builds as int8")
    shapes = infer_shapes(graph)
    outs = int(np.prod(shapes[graph.outputs[0]]))
    metric = Metric.of(val[1], outs, len(xv), "validation labels (val)")
    xc = None
    if calib is not None:
        xc = check_calib(graph, calib)
        if len(xc) < 2 * HOLDOUT_EVERY:
            xc = None
    if xc is None:
        variants = tuple(v for v in variants if v == ("magnitude", False))
    if not graph.quantized and dtype == "int8" and calib is None:
        raise DarbgenError(f"{graph.name}: a float model builds as int8 from calibration inputs: give calib")
    weights = graph_weights(graph, layers)
    nodes = {n.name: n for n in graph.nodes}
    family = _FAMILY.get(target, "plain")
    pixels = {}
    for name in weights:
        node = nodes[name]
        out = shapes[node.outputs[0]]
        pixels[name] = int(np.prod(out[:-1])) if node.kind == "conv2d" else 1

    def cost(name, result):
        if objective == "flash":
            return _matrix_bytes(result, weights[name].shape)
        return _instructions(nodes[name], pixels[name], result, family)

    ev = _GraphEval(graph, xv, calib, dtype, percentile)
    say("measuring the unpruned model")
    base = metric.score(ev.outputs(graph, []))
    final_base = metric.score(ev.final_outputs(graph))
    norms = graph_input_norms(graph, xc, set(weights)) if any(s == "activation" for s, _ in variants) else None
    grams, dense_rows, dense_vals = {}, {}, None
    order = [n.name for n in graph.nodes]
    matrix_ops = [n.name for n in graph.weight_nodes()]
    after = {name: next((m for m in matrix_ops if order.index(m) > order.index(name)), None) for name in weights}
    if any(r for _, r in variants):
        say("reading the calibration inputs of every op")
        dense = _Runner(graph)
        dense_vals = dense.values(xc)
        held = (np.arange(len(xc)) % HOLDOUT_EVERY) == HOLDOUT_EVERY - 1
        for name in matrix_ops:
            rows = dense.inputs(xc, nodes[name], given=dense_vals)
            h = np.repeat(held, len(rows) // len(xc))
            dense_rows[name] = (rows, h)
            grams[name] = (Gram(rows.shape[1]).add(rows[~h]), Gram(rows.shape[1]).add(rows[h]))

    def refit_alone(cand, name):
        """The op ``name`` (the only pruned one) refit, and the next matrix op refit on what it now receives."""
        node = next(n for n in cand.nodes if n.name == name)
        node, _row = refit_node(graph, nodes[name], node, *grams[name], SEARCH_ALPHAS)
        cand = cand.replace(nodes=[node if n.name == name else n for n in cand.nodes])
        nxt = after[name]
        if nxt is None:
            return cand
        first = order.index(name)
        given = {t: dense_vals[t] for n in graph.nodes[:first] for t in n.outputs}
        given[graph.inputs[0]] = dense_vals[graph.inputs[0]]
        xp = _Runner(cand).inputs(xc, nodes[nxt], given=given)
        xd, h = dense_rows[nxt]
        fit, hold = Gram(xd.shape[1]).add(xp[~h], xd[~h]), Gram(xd.shape[1]).add(xp[h], xd[h])
        node2, _row = refit_node(graph, nodes[nxt], nodes[nxt], fit, hold, SEARCH_ALPHAS)
        return cand.replace(nodes=[node2 if n.name == nxt else n for n in cand.nodes])
    options = {}
    for k, name in enumerate(weights, 1):
        opts = [Choice(1.0, cost=cost(name, None))]
        for ratio in ladder:
            best = None
            for saliency, refit in variants:
                try:
                    r = prune_model({name: weights[name]}, ratio, method, scope="layer",
                                    input_norms={name: norms[name]} if saliency == "activation" else None,
                                    **(prune_options or {}))[name]
                except DarbgenError:
                    break                      # beyond what the method reaches on this op
                cand = with_masks(graph, {name: r})
                if refit:
                    cand = refit_alone(cand, name)
                loss = metric.loss(base, metric.score(ev.outputs(cand, [name])))
                if best is None or loss < best.loss:
                    best = Choice(ratio, saliency, refit, loss, cost(name, r), r)
            if best is None:
                break
            opts.append(best)
            say(f"op {k}/{len(weights)} {name}: {ratio:g}x loses {best.loss:.3g} {metric.unit}")
            if best.loss > budget:
                break                          # alone over the whole budget: higher ratios will not do
        options[name] = opts
    code_cache = {}

    def code_of(results):
        return _kernel_code(ev.quantized(with_masks(graph, results)), kernel, target, code_cache)

    def choose(allowance):
        """The knapsack's pick; for flash with code counted, the best of the picks with whole kinds of op
        kept dense (the sparse kernels they would need cost code), by weights + kernel code."""
        if objective != "flash" or not count_code:
            return _knapsack(options, allowance), None
        kinds = sorted({nodes[n].kind for n in options})
        best = None
        for mask in range(1 << len(kinds)):
            dense_kinds = {k for i, k in enumerate(kinds) if mask >> i & 1}
            opts = {n: (o[:1] if nodes[n].kind in dense_kinds else o) for n, o in options.items()}
            pick = _knapsack(opts, allowance)
            results = {n: options[n][i].result for n, i in pick.items() if options[n][i].result is not None}
            code = code_of(results)
            total = sum(options[n][i].cost for n, i in pick.items()) + code
            if best is None or (total, len(results)) < (best[0], best[1]):
                best = (total, len(results), pick, code)
        return best[2], best[3]

    # choose, build, measure; shrink the allowance while the whole model misses the budget
    allowance = budget
    tries = []
    code_chosen = None
    for attempt in range(12):
        pick, code_chosen = choose(allowance)
        chosen = {n: options[n][i] for n, i in pick.items() if options[n][i].result is not None}
        results = {n: c.result for n, c in chosen.items()}
        cand = with_masks(graph, results)
        refit_ops = {n: r for n, r in results.items() if chosen[n].refit}
        if refit_ops:
            cand = refit_graph(graph, cand, refit_ops, xc, downstream=True,
                               progress=lambda n: say(f"refit {n}"))
        score = metric.score(ev.final_outputs(cand)) if chosen else final_base
        loss = metric.loss(final_base, score)
        tries.append({"allowance": allowance, "loss": loss, "ops_pruned": len(chosen)})
        say(f"chosen model: {len(chosen)} ops pruned, loses {loss:.3g} {metric.unit} (budget {budget:g})")
        if loss <= budget or not chosen:
            break
        allowance = allowance * min(0.8, max(0.3, budget / loss if loss > 0 else 0.8))
    else:
        chosen, results, cand, score, loss = {}, {}, graph, final_base, 0.0
        code_chosen = None
    dense_cost = sum(o[0].cost for o in options.values())
    total_cost = sum(options[n][0].cost if n not in chosen else chosen[n].cost for n in options)
    code = {}
    if objective == "flash" and count_code:
        code = {"code_unpruned": code_of({}), "code_chosen": code_chosen if code_chosen is not None
                else code_of(results), "code_target": size_target(target)}
        dense_cost += code["code_unpruned"]
        total_cost += code["code_chosen"]
    report = {
        "metric": metric.kind, "unit": metric.unit, "budget": budget, "objective": objective, "method": method,
        "unpruned": final_base, "chosen": score, "loss": loss, "within_budget": loss <= budget,
        "cost_unpruned": dense_cost, "cost_chosen": total_cost,
        "cost_unit": ("bytes" + (f" (weights, index, metadata and kernel code on {code['code_target']})" if code
                               else "") if objective == "flash" else f"instructions (estimated, {family} core)"),
        **code,
        "evaluations": ev.evaluations, "rounds": tries, "seconds": time.perf_counter() - start,
        "layers": {n: {"ratio": (chosen[n].ratio if n in chosen else 1.0),
                       "saliency": chosen[n].saliency if n in chosen else None,
                       "refit": bool(chosen[n].refit) if n in chosen else False,
                       "loss_alone": chosen[n].loss if n in chosen else 0.0,
                       "cost": chosen[n].cost if n in chosen else options[n][0].cost,
                       "cost_dense": options[n][0].cost,
                       "tried": [{"ratio": c.ratio, "saliency": c.saliency, "refit": c.refit, "loss": c.loss,
                                  "cost": c.cost} for c in options[n][1:]]}
                   for n in options},
    }
    return SearchResult(cand, results, report)
