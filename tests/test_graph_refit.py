"""The safe refit, activation saliency and --from-zeros on op graphs (darbgen.graph_refit, graph_build)."""
import numpy as np
import pytest

from darbgen.build import build
from darbgen.errors import DarbgenError
from darbgen.graph_build import prune_graph, zeros_graph
from darbgen.graph_refit import graph_input_norms, matrix_inputs, refit_graph
from darbgen.graph_run import quantize_graph, run_f64
from darbgen.build import load
from darbgen.ops.conv import weight_matrix
from darbgen.refit import HOLDOUT_EVERY
from test_graph import MLPERF, need_mlperf, toy_graph


def _held(n):
    return np.arange(n) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1


def _inputs(graph, x, node):
    """A node's matrix inputs computed directly: float64 for a float graph, the dequantized int8 run otherwise."""
    if not graph.quantized:
        v = run_f64(graph, x, keep=True)[node.inputs[0]]
    else:
        qg = quantize_graph(graph, "int8")
        q = qg.run(qg.quantize_input(x), keep=True)[node.inputs[0]]
        v = qg.quants[node.inputs[0]].dequantize(q)
    return matrix_inputs(node, np.asarray(v, np.float64))


def _row_errors(graph_in, node_w, x, dense_graph, name):
    """Per row, the squared error over ``x`` of op ``name`` holding ``node_w``'s values, fed by ``graph_in``,
    against the dense op fed by the dense graph."""
    node_d = next(n for n in dense_graph.nodes if n.name == name)
    node_p = next(n for n in graph_in.nodes if n.name == name)
    xd, xp = _inputs(dense_graph, x, node_d), _inputs(graph_in, x, node_p)
    wd = weight_matrix(node_d)
    bd = node_d.params["bias"].real().reshape(-1) if "bias" in node_d.params else 0.0
    w = weight_matrix(node_w) * np.asarray(node_w.attrs["mask"], bool)
    b = node_w.params["bias"].real().reshape(-1) if "bias" in node_w.params else 0.0
    return np.sum(np.square(xp @ w.T + b - (xd @ wd.T + bd)), axis=0)


def _check_never_worse(dense, pruned, refit, x, report):
    """Each refit op, on the held-out inputs, is no worse row by row than the pruned op (fed the same inputs:
    those of the refit graph, whose earlier ops are refit)."""
    h = _held(len(x))
    for name, row in report.items():
        node_r = next(n for n in refit.nodes if n.name == name)
        node_p = next(n for n in pruned.nodes if n.name == name)
        assert np.array_equal(node_r.attrs["mask"], node_p.attrs["mask"])
        assert not np.any(weight_matrix(node_r)[~np.asarray(node_r.attrs["mask"], bool)])
        after = _row_errors(refit, node_r, x[h], dense, name)
        before = _row_errors(refit, node_p, x[h], dense, name)
        assert np.all(after <= before * (1 + 1e-9) + 1e-9), name
        assert row["rows_refit"] == int(np.sum(after < before * (1 - 1e-12)))
        assert after.sum() == pytest.approx(row["heldout_error_refit"], rel=1e-6)
        assert before.sum() == pytest.approx(row["heldout_error_pruned"], rel=1e-6)


def test_float_graph_refit_is_never_worse_on_held_out_inputs(rng):
    g = toy_graph(rng)
    x = rng.standard_normal((64, 8, 6, 3))
    pruned, results = prune_graph(g, 2.0, "darb")
    report = {}
    refit = refit_graph(g, pruned, results, x, report=report)
    assert set(report) == {"c1", "pw", "fc"}
    assert sum(r["rows_refit"] for r in report.values()) > 0
    _check_never_worse(g, pruned, refit, x, report)
    # the op without a bias ("pw") gains one; the refit graph still runs and quantizes
    assert "bias" in next(n for n in refit.nodes if n.name == "pw").params
    quantize_graph(refit, "int8", calib=x)


# by default three of the autoencoder's 128 x 128 layers pruned and refit; every layer in the full run (20 s)
@pytest.mark.parametrize("which", [pytest.param("every", marks=pytest.mark.slow), "hidden"])
def test_int8_graph_refit_stores_int8_and_is_never_worse(which):
    need_mlperf()
    g = load(str(MLPERF / "ad01_int8.tflite"), False).model
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    layers = None if which == "every" else [n.name for n in g.weight_nodes()][1:4]
    pruned, results = prune_graph(g, 4.0, "darb", layers=layers)
    assert len(results) == (10 if which == "every" else 3)
    report = {}
    refit = refit_graph(g, pruned, results, x, report=report)
    assert sum(r["rows_refit"] for r in report.values()) > 0
    _check_never_worse(g, pruned, refit, x, report)
    for node in refit.weight_nodes():
        old = next(n for n in g.nodes if n.name == node.name)
        wt, ow = node.params["weight"], old.params["weight"]
        assert wt.dtype == "int8" and np.abs(np.asarray(wt.data, np.int64)).max() <= 127
        assert node.params["bias"].dtype == "int32"
        assert np.all(wt.quant.scale >= ow.quant.scale)           # a scale only grows (or stays)
    # and the C holds exactly the refit values: bit-exact build on the host
    quantize_graph(refit, "int8")


@pytest.mark.slow   # build(refit=True) is covered fast on npz models (test_refit), the int8 graph refit above
def test_build_refits_a_tflite_graph(gcc):
    need_mlperf()
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    model = str(MLPERF / "ad01_int8.tflite")
    plain = build(model, ratio=4)
    r = build(model, ratio=4, refit=True, saliency="activation", calib=x)
    assert r.report["verified"]
    assert set(r.report["refit"]) == {n["name"] for n in r.report["layers"] if n.get("ratio")}
    assert any("refit by least squares" in n for n in r.report["notes"])
    assert any("--calib used for the refit" in n for n in r.report["notes"])
    # the refit lowers the reconstruction error of the pruned autoencoder on held-out frames
    h = _held(len(x))
    from darbgen.graph_run import quantize_graph as qgraph

    def err(graph):
        qg = qgraph(graph, "int8")
        y = qg.dequantize_output(qg.run(qg.quantize_input(x[h])))
        return float(np.mean(np.square(y.reshape(len(y), -1) - x[h])))
    assert err(r.pruned) < err(plain.pruned)


def test_graph_refit_and_saliency_errors(rng):
    g = toy_graph(rng)
    x = rng.standard_normal((6, 8, 6, 3))
    pruned, results = prune_graph(g, 2.0, "darb")
    with pytest.raises(DarbgenError, match="at least 8 calibration inputs"):
        refit_graph(g, pruned, results, x)
    with pytest.raises(DarbgenError, match="do not match the model's input"):
        refit_graph(g, pruned, results, rng.standard_normal((16, 5)))
    bad = rng.standard_normal((16, 8, 6, 3))
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(DarbgenError, match="NaN or inf"):
        graph_input_norms(g, bad)
    with pytest.raises(DarbgenError, match="alpha must be a finite number"):
        refit_graph(g, pruned, results, rng.standard_normal((16, 8, 6, 3)), alpha=-1)


def test_activation_saliency_norms_are_input_column_norms(rng):
    g = toy_graph(rng)
    x = rng.standard_normal((40, 8, 6, 3))
    norms = graph_input_norms(g, x)
    vals = run_f64(g, x, keep=True)
    fc = next(n for n in g.nodes if n.name == "fc")
    np.testing.assert_allclose(norms["fc"], np.sqrt(np.sum(np.square(vals["y3"].reshape(40, -1)), axis=0)))
    assert norms["c1"].shape == (27,)


def test_from_zeros_reads_a_graphs_pruning(rng):
    from darbgen.ir import Node, Tensor

    g = toy_graph(rng)
    pruned, results = prune_graph(g, 4.0, "darb")
    nodes = []
    for node in pruned.nodes:           # a "fine-tuned" model: the zeros are in the weights, no mask attribute
        if node.name in results:
            w = node.params["weight"]
            data = (w.real().reshape(w.shape[0], -1) * results[node.name].mask).reshape(w.shape)
            params = dict(node.params, weight=Tensor(w.name, w.shape, data=data.astype(np.float32)))
            attrs = {k: v for k, v in node.attrs.items() if k not in ("mask", "block_sizes")}
            node = Node(node.kind, node.name, node.inputs, node.outputs, params, attrs)
        nodes.append(node)
    zeroed = g.replace(nodes=nodes)
    again, found = zeros_graph(zeroed, "darb")
    for name, r in results.items():
        assert found[name].kept == r.kept                      # every non-zero kept, nothing more
        assert not np.any(weight_matrix(next(n for n in zeroed.nodes if n.name == name))[~found[name].mask])
    with pytest.raises(DarbgenError, match="no weight is zero"):
        zeros_graph(g, "darb")


def test_refit_downstream_refits_the_unpruned_ops_after_the_first_pruned_one(rng):
    g = toy_graph(rng)
    x = rng.standard_normal((64, 8, 6, 3))
    pruned, results = prune_graph(g, 2.0, "darb", layers=["c1"])
    report = {}
    refit = refit_graph(g, pruned, results, x, report=report, downstream=True)
    assert set(report) == {"c1", "pw", "fc"}
    for name in ("pw", "fc"):                 # unpruned: every weight kept, none removed
        node = next(n for n in refit.nodes if n.name == name)
        assert node.attrs.get("mask") is None
    # the model's output on held-out inputs moves towards the dense one
    h = np.arange(64) % 4 == 3
    dense = run_f64(g, x[h])
    alone = refit_graph(g, pruned, results, x)
    err = lambda graph: float(np.sum(np.square(run_f64(graph, x[h]) - dense)))
    assert err(refit) <= err(alone) * (1 + 1e-9)
    assert err(refit) < err(pruned)
