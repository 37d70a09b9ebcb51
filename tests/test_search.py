"""The accuracy-budget search (darbgen.search, darbgen build --max-drop)."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from darbgen.build import build, load
from darbgen.errors import DarbgenError
from darbgen.graph_run import quantize_graph, run_f64
from darbgen.search import Choice, Metric, _knapsack, search_graph
from test_graph import MLPERF, need_mlperf, toy_graph


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 100)), min_size=1, max_size=4), min_size=1,
                max_size=4), st.floats(0.1, 5))
def test_knapsack_is_optimal_and_within_the_allowance(ops, allowance):
    options = {f"op{i}": [Choice(1.0, cost=200.0)] + [Choice(2.0, loss=l, cost=c) for l, c in opts]
               for i, opts in enumerate(ops)}
    pick = _knapsack(options, allowance)
    loss = sum(options[n][i].loss for n, i in pick.items())
    cost = sum(options[n][i].cost for n, i in pick.items())
    assert loss <= allowance + 1e-9
    best = min(sum(options[n][i].cost for n, i in zip(options, combo))
               for combo in itertools.product(*[range(len(o)) for o in options.values()])
               if sum(options[n][i].loss for n, i in zip(options, combo)) <= allowance * (1 - 1 / 400))
    assert cost <= best + 1e-9          # optimal up to the grid's rounding of losses


def test_metric_kinds_and_errors():
    m = Metric.of(np.array([0.0, 2.0, 1.0]), 3, 3)        # whole-number floats are labels
    assert m.kind == "accuracy" and m.score(np.eye(3)[[0, 2, 2]]) == pytest.approx(200 / 3)
    assert m.loss(90.0, 88.5) == pytest.approx(1.5)
    r = Metric.of(np.ones((4, 5)), 5, 4)
    assert r.kind == "mse" and r.loss(2.0, 2.2) == pytest.approx(10.0)
    for y, match in [(np.array([0.5, 1, 2]), "have fractions"), (np.array([0, 1, 7]), "must be 0..2"),
                     (np.array([0, 1]), "3 inputs but 2 labels"), (np.array([0, np.nan, 1]), "NaN"),
                     (np.ones((3, 4)), r"shape \(3, 4\), which fits neither")]:
        with pytest.raises(DarbgenError, match=match):
            Metric.of(y, 3, 3)


def _accuracy(graph, x, y):
    return 100 * np.mean(np.argmax(run_f64(graph, x).reshape(len(x), -1), axis=1) == y)


@pytest.mark.parametrize("budget", [0.0, 15.0])
def test_search_on_a_float_graph_stays_within_budget(rng, budget):
    g = toy_graph(rng)
    xv = rng.standard_normal((120, 8, 6, 3))
    yv = np.argmax(run_f64(g, xv).reshape(120, -1), axis=1)       # the dense model scores 100%
    found = search_graph(g, max_drop=budget, val=(xv, yv), calib=rng.standard_normal((64, 8, 6, 3)),
                         dtype="float32", count_code=False)     # weights alone: the toy's are too small to
    rep = found.report                                           # pay for kernel code (next test)
    assert rep["metric"] == "accuracy" and rep["within_budget"]
    # measured independently on the graph the search returns
    assert 100.0 - _accuracy(found.graph, xv, yv) <= budget + 1e-9
    assert set(rep["layers"]) == {"c1", "pw", "fc"}
    assert rep["cost_chosen"] <= rep["cost_unpruned"]
    for name, layer in rep["layers"].items():
        if layer["ratio"] > 1:
            assert name in found.results
            assert layer["loss_alone"] <= budget + 1e-9
    if budget > 0:
        assert found.results                                       # something pays within 15 points


def test_flash_objective_counts_the_kernel_code(rng, gcc):
    """With kernel code counted (the default), the chosen model's weights plus the runtime kernels it links are
    never more than the unpruned model's; the code figures are those of the two models as built. The toy's
    weights (a few hundred bytes) cannot pay for sparse kernels, so it stays dense."""
    from darbgen.codegen.graph_emit import generate_graph
    from darbgen.evaluation import size_target
    from darbgen.verify import measure

    g = toy_graph(rng)
    xv = rng.standard_normal((120, 8, 6, 3))
    yv = np.argmax(run_f64(g, xv).reshape(120, -1), axis=1)
    found = search_graph(g, max_drop=15.0, val=(xv, yv), calib=rng.standard_normal((64, 8, 6, 3)),
                         dtype="float32")
    rep = found.report
    assert rep["cost_chosen"] <= rep["cost_unpruned"] and rep["code_target"] == size_target("host")

    def code(graph):
        module = generate_graph(quantize_graph(graph, "float32"), kernel="packed", prefix="m")
        return measure(module, size_target("host"))["runtime"]["code"]
    assert rep["code_unpruned"] == code(g) > 0 and rep["code_chosen"] == code(found.graph)
    assert not found.results and rep["cost_chosen"] == rep["cost_unpruned"]


@pytest.mark.slow          # the search on a real model; test_search_on_a_float_graph_stays_within_budget is the fast one
def test_search_regression_on_the_ad_autoencoder():
    need_mlperf()
    g = load(str(MLPERF / "ad01_int8.tflite"), False).model
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    xv, xc = x[::2], x[1::2]
    found = search_graph(g, max_drop=10, val=(xv, xv), calib=xc, ladder=(4.0,))
    rep = found.report
    assert rep["metric"] == "mse" and rep["within_budget"] and found.results

    def mse(graph):
        qg = quantize_graph(graph, "int8")
        y = qg.dequantize_output(qg.run(qg.quantize_input(xv))).reshape(len(xv), -1)
        return float(np.mean(np.square(y - xv)))
    base, chosen = mse(g), mse(found.graph)
    assert chosen == pytest.approx(rep["chosen"]) and base == pytest.approx(rep["unpruned"])
    assert 100 * (chosen - base) / base <= 10 + 1e-9
    assert rep["cost_chosen"] < 0.8 * rep["cost_unpruned"]


@pytest.mark.slow          # build --max-drop end to end on a real model (a minute)
def test_build_with_a_budget(gcc, monkeypatch):
    need_mlperf()
    import darbgen.search

    monkeypatch.setattr(darbgen.search, "LADDER", (4.0,))       # one ratio per op keeps the test short
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    r = build(str(MLPERF / "ad01_int8.tflite"), max_drop=10, val=(x[::2], x[::2]), calib=x[1::2],
              objective="instructions", target="host")
    assert r.report["verified"] and r.report["search"]["objective"] == "instructions"
    assert r.report["search"]["within_budget"]
    assert any(n.startswith("search within 10 % of the unpruned error") for n in r.report["notes"])
    assert r.report["kept"] < r.report["weights"]


def test_budget_errors(rng, tmp_path):
    need_mlperf()
    model = str(MLPERF / "ad01_int8.tflite")
    x = np.load(MLPERF / "ad01_normal_id01_sample.npy")
    with pytest.raises(DarbgenError, match="give val=\\(X, y\\)"):
        build(model, max_drop=1)
    with pytest.raises(DarbgenError, match="drop ratio"):
        build(model, max_drop=1, ratio=2, val=(x, x))
    with pytest.raises(DarbgenError, match="give max_drop"):
        build(model, val=(x, x))
    with pytest.raises(DarbgenError, match="works on .tflite and Keras .h5"):
        build("examples/digits_mlp.npz", max_drop=1, val=(np.zeros((4, 64)), np.zeros(4)))
    g = load(model, False).model
    with pytest.raises(DarbgenError, match="finite number >= 0"):
        search_graph(g, max_drop=-1, val=(x, x))
    with pytest.raises(DarbgenError, match="unknown objective"):
        search_graph(g, max_drop=1, val=(x, x), objective="speed")
    with pytest.raises(DarbgenError, match=r"validation inputs \(val\) of shape"):
        search_graph(g, max_drop=1, val=(x[:, :10], x))


def test_cli_budget_option(tmp_path):
    import subprocess
    import sys

    from darbgen.cli import _budget
    assert _budget("10%") == 10 and _budget(" 1.5 ") == 1.5
    import argparse
    for bad in ("x", "-1", "inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            _budget(bad)
    out = subprocess.run([sys.executable, "-m", "darbgen", "build", "--help"], capture_output=True, text=True)
    assert "--max-drop" in out.stdout and "--val" in out.stdout and "--objective" in out.stdout
