"""The safe least-squares refit and activation-aware saliency for op graphs (.tflite, Keras .h5).

The graph twin of :func:`darbgen.refit.refit_model`: the pruned convolution
and fully connected ops are refit in graph order, each on the inputs the
already refit pruned graph gives it (``Xp``) against the dense graph's
(``Xd``), with a quarter of the calibration inputs held out to choose the
ridge strength and to keep the pruned values of every row the refit does not
improve there (:func:`darbgen.refit.refit_rows`).

A float graph is refit in float64 and quantized afterwards as usual. A
quantized (int8) graph keeps its activation quantization: its inputs are the
dequantized int8 activations its own integer pipeline (:class:`QGraph`)
computes, and refit rows are stored back as int8 weights and int32 biases.
Per-channel rows keep their scale, or a larger one when a refit weight needs
it; a per-tensor matrix keeps its one scale and clips. The held-out check is
made on the rounded values the C will hold, so on held-out inputs a refit op
is never worse than the pruned op, row by row, in the values it stores.
"""
import numpy as np

from .errors import DarbgenError
from .ir import Node, Quant, Tensor
from .ops.conv import weight_matrix
from .refit import ALPHAS, CHUNK, HOLDOUT_EVERY, Gram, check_alpha, refit_rows

INT32_MAX = (1 << 31) - 1


def check_calib(graph, calib, what="calibration inputs (calib)"):
    """``calib`` as float64 (n, *input shape), or a DarbgenError naming the fix
    (:func:`darbgen.datacheck.real_inputs`)."""
    from .datacheck import real_inputs

    return real_inputs(calib, graph.input_shape, f"{graph.name}: {what}")


class _Runner:
    """The real-valued input of any node of a graph on real inputs, through the pipeline that defines the model:
    float64 for a float graph, the int8 reference (dequantized) for a quantized one."""

    def __init__(self, graph):
        self.graph = graph
        self.qg = None
        if graph.quantized:
            from .graph_run import quantize_graph

            self.qg = quantize_graph(graph, "int8")

    def values(self, x):
        """Every tensor's values for real inputs ``x``, as the pipeline holds them (for ``given``)."""
        from .graph_run import run_f64

        return run_f64(self.graph, x, keep=True) if self.qg is None else \
            self.qg.run(self.qg.quantize_input(x), keep=True)

    def inputs(self, x, node, given=None):
        """(rows, cols) of what ``node``'s matrix multiplies, for real inputs ``x`` (``given``: tensor values
        already known for these inputs, as :meth:`values` returns them)."""
        return self.inputs_and_values(x, node, given)[0]

    def inputs_and_values(self, x, node, given=None):
        """(:meth:`inputs`, every tensor's values computed before ``node``)."""
        from .graph_run import run_f64

        t = node.inputs[0]
        if self.qg is None:
            vals = run_f64(self.graph, x, keep=True, until=node.name, given=given)
            v = vals[t]
        else:
            vals = self.qg.run(self.qg.quantize_input(x), keep=True, until=node.name, given=given)
            q = vals[t]
            v = self.qg.quants[t].dequantize(q) if self.qg.types[t] == "int8" else np.asarray(q, np.float64)
        return matrix_inputs(node, np.asarray(v, np.float64)), vals


def matrix_inputs(node, v):
    """The (rows, cols) rows ``node``'s weight matrix multiplies, from its real input ``v`` (n, *shape)."""
    if node.kind == "conv2d":
        kh, kw = node.params["weight"].shape[1:3]
        from .ops.conv import window_of

        p = window_of(node, v.shape[1:], (kh, kw)).patches(v, 0.0)
        return p.reshape(-1, p.shape[-1])
    if node.kind == "fully_connected":
        return v.reshape(len(v), -1)
    raise DarbgenError(f"{node.name}: a {node.kind} op has no weight matrix to refit")


def graph_input_norms(graph, calib, names=None):
    """Activation-aware saliency factors for a graph: {op name: L2 norm of each input column over the
    calibration inputs} (:func:`darbgen.prune_model`'s ``input_norms``)."""
    x = check_calib(graph, calib)
    runner = _Runner(graph)
    nodes = [n for n in graph.weight_nodes() if names is None or n.name in names]
    out = {}
    for node in nodes:
        total = None
        for start in range(0, len(x), CHUNK):
            rows = runner.inputs(x[start:start + CHUNK], node)
            sq = np.sum(np.square(rows), axis=0)
            total = sq if total is None else total + sq
        out[node.name] = np.sqrt(total)
    return out


def _stored_as_int8(node, graph):
    """True when the op's weights stay int8 (a quantized model); a float model's ops store float32."""
    return graph.quantized and node.params["weight"].dtype == "int8"


def _store(node, graph, w, b, better):
    """``node`` holding weight matrix ``w`` and bias ``b`` in its own number format; for int8, the rows not
    ``better`` keep their stored integers and scale (``w``, ``b``: values :func:`_int8_snapper` gave)."""
    wt = node.params["weight"]
    bt = node.params.get("bias")
    rows = wt.shape[0]
    bname = bt.name if bt is not None else f"{node.name}_bias"
    if not _stored_as_int8(node, graph):
        wt2 = Tensor(wt.name, wt.shape, "float32", None, np.asarray(w, np.float32).reshape(wt.shape))
        bt2 = Tensor(bname, (rows,), "float32", None, np.asarray(b, np.float32))
    else:
        wq, scale, bq, _, _ = _int8_snapper(node, graph)(w, b, full=True)      # the integers of those values
        old_q = np.asarray(wt.data, np.int64).reshape(rows, -1)
        if node.attrs.get("mask") is not None:
            old_q = old_q * np.asarray(node.attrs["mask"], bool)
        old_b = np.asarray(bt.data, np.int64).reshape(-1) if bt is not None else np.zeros(rows, np.int64)
        wq = np.where(better[:, None], wq, old_q)
        bq = np.where(better, bq, old_b)
        scale_q = wt.quant.scale if wt.quant.per_tensor else \
            np.where(better, scale, wt.quant.scale.astype(np.float32)).astype(np.float32)
        quant = Quant(scale_q, np.zeros(scale_q.shape, np.int64), wt.quant.axis)
        wt2 = Tensor(wt.name, wt.shape, "int8", quant, wq.astype(np.int8).reshape(wt.shape))
        in_s = np.float32(graph.tensors[node.inputs[0]].quant.scale[0])
        bscale = (in_s * np.broadcast_to(quant.scale, (rows,))).astype(np.float32)
        bt2 = Tensor(bname, (rows,), "int32", Quant(bscale, np.zeros(rows, np.int64)), bq.astype(np.int32))
    params = dict(node.params, weight=wt2, bias=bt2)
    return Node(node.kind, node.name, node.inputs, node.outputs, params, dict(node.attrs), node.source_name)


def _int8_snapper(node, graph):
    """``snap(w, b)``: the real values refit weights and bias take once stored as int8 / int32 (TFLite's
    convention: symmetric weights, per-channel scale grown where a refit weight needs it, or the per-tensor scale
    kept and the weights clipped; bias at input scale x weight scale)."""
    wt = node.params["weight"]
    rows = wt.shape[0]
    in_s = np.float32(graph.tensors[node.inputs[0]].quant.scale[0])
    per_tensor = wt.quant.per_tensor
    old_scale = np.broadcast_to(wt.quant.scale.astype(np.float32), (rows,))

    def snap(w, b, full=False):
        from .quantize import round_half_away

        w = np.asarray(w, np.float64)
        if per_tensor:
            scale = old_scale
        else:
            peak = np.abs(w).max(axis=1) / 127.0
            scale = np.maximum(old_scale, peak.astype(np.float32))
        s64 = scale.astype(np.float64)
        wq = np.clip(round_half_away(w / s64[:, None]), -127, 127).astype(np.int64)
        bscale = (in_s * scale).astype(np.float32).astype(np.float64)
        bq = np.clip(round_half_away(np.asarray(b, np.float64) / bscale), -INT32_MAX, INT32_MAX).astype(np.int64)
        w_real, b_real = wq * s64[:, None], bq * bscale
        if full:
            return wq, scale, bq, w_real, b_real
        return w_real, b_real
    return snap


def refit_node(graph, dense_node, node, fit, held, alphas=ALPHAS, holdout=True):
    """One pruned op refit from its Gram matrices (``fit``, ``held``: :class:`darbgen.refit.Gram` of its inputs in
    the pruned graph against the dense one): (the op holding the refit values, report row)."""
    w0 = weight_matrix(dense_node)
    bias = dense_node.params.get("bias")
    b0 = None if bias is None else bias.real().reshape(-1)
    snap = _int8_snapper(node, graph) if _stored_as_int8(node, graph) else \
        (lambda w, b: (np.asarray(w, np.float32).astype(np.float64), np.asarray(b, np.float32).astype(np.float64)))
    mask = np.asarray(node.attrs["mask"], bool) if node.attrs.get("mask") is not None else \
        np.ones(w0.shape, bool)            # an unpruned op refit to make up for the pruned ops before it
    w, b, row = refit_rows(w0, b0, mask, fit, held, alphas, holdout, node.name, snap=snap)
    pw = np.where(mask, w0, 0.0)
    better = np.any(w != pw, axis=1) | (b != (np.zeros(len(b)) if b0 is None else b0))
    return _store(node, graph, w, b, better), row


def refit_graph(graph, pruned, results, calib, *, alpha=None, report=None, holdout=True, progress=None,
                downstream=False):
    """The pruned graph with its pruned ops' kept weights and biases refit, never worse than unrefit on held-out
    calibration inputs (see the module docstring).

    Args:
        graph: the dense :class:`darbgen.ir.Graph`.
        pruned: the same graph with masks (:func:`darbgen.graph_build.prune_graph`).
        results: {op name: PruneResult} of the pruned ops.
        calib: real-valued calibration inputs in the model's layout, (n, *input shape), n >= 8.
        alpha: the ridge strength; None: the best of :data:`darbgen.refit.ALPHAS` on the held-out inputs.
        report: a dict to fill with {op name: {"alpha", "rows", "rows_refit", "heldout_error_pruned",
            "heldout_error_refit"}}.
        holdout: False: the plain refit on every input (no held-out check).
        downstream: also refit every unpruned convolution and fully connected op after the first pruned one
            (all its weights kept): it learns to make up for the error the pruned ops before it leave.
        progress: optional callable(op name) called as each op is done.

    Returns:
        A graph like ``pruned`` (same masks and block sizes) whose refit ops hold the new values.
    """
    x = check_calib(graph, calib)
    if holdout and len(x) < 2 * HOLDOUT_EVERY:
        raise DarbgenError(f"{graph.name}: a refit needs at least {2 * HOLDOUT_EVERY} calibration inputs (a "
                           f"quarter is held out to check it), got {len(x)}; pass more calibration inputs")
    if alpha is not None:
        check_alpha(alpha, f"{graph.name}: the refit's alpha")
    alphas = ALPHAS if alpha is None else (float(alpha),)
    if not holdout and alpha is None:
        from .refit import DEFAULT_ALPHA

        alphas = (DEFAULT_ALPHA,)
    dense = _Runner(graph)
    current = pruned
    held_rows = (np.arange(len(x)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) & holdout
    order = [n.name for n in pruned.nodes]
    first = min((order.index(n) for n in results), default=len(order))
    todo = set(results)
    if downstream:
        todo |= {n.name for n in pruned.weight_nodes() if order.index(n.name) > first}
    for index, node in enumerate(pruned.nodes):
        if node.name not in todo:
            continue
        runner = _Runner(current)
        cols = weight_matrix(graph.nodes[index]).shape[1]
        fit, held = Gram(cols), Gram(cols)
        for start in range(0, len(x), CHUNK):
            chunk = x[start:start + CHUNK]
            xd = dense.inputs(chunk, node)
            xp = runner.inputs(chunk, node)
            per = len(xd) // len(chunk)
            h = np.repeat(held_rows[start:start + CHUNK], per)
            fit.add(xp[~h], xd[~h])
            if h.any():
                held.add(xp[h], xd[h])
        new_node, row = refit_node(graph, graph.nodes[index], node, fit, held, alphas, holdout)
        nodes = list(current.nodes)
        nodes[index] = new_node
        current = current.replace(nodes=nodes)
        if report is not None:
            report[node.name] = row
        if progress is not None:
            progress(node.name)
    return current
