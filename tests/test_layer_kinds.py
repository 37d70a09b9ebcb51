"""The chain pipeline's table of op kinds (darbgen.layers): every op of every
layer kind finds its kind, the stages dispatch through it, and the modules
import without cycles."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import darbgen
from darbgen.build import _kind, _shape
from darbgen.codegen import generate
from darbgen.errors import DarbgenError
from darbgen.graph import (GRU, LSTM, Activation, Conv1D, Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePool,
                           Model, Pool1D, Pool2D)
from darbgen.layers import KINDS, kind_of, op_classes, quantized_classes
from darbgen.quantize import quantize_network

PACKAGE = Path(darbgen.__file__).parent


def models(rng):
    n = rng.standard_normal
    img = Model("img", (2, 6, 6), [
        Conv2D("c", 0.5 * n((4, 2, 3, 3)), 0.1 * n(4), padding="same"), Activation("r", "relu"),
        DepthwiseConv2D("dw", 0.5 * n((4, 1, 3, 3)), None), Pool2D("p", "max", 2), GlobalAveragePool("g"),
        Dense("d", 0.5 * n((3, 4)), 0.1 * n(3)), Activation("s", "softmax")])
    seq = Model("seq", (2, 8), [
        Conv1D("k", 0.5 * n((3, 2, 3)), 0.1 * n(3)), Pool1D("a", "avg", 2), Flatten("f"),
        Dense("d", 0.5 * n((2, 9)), 0.1 * n(2), activation="tanh")])
    rnn = Model("rnn", (3, 2), [
        GRU("g", n((9, 2)), n((9, 3)), return_sequences=True), LSTM("l", n((8, 3)), n((8, 2))),
        Dense("d", n((2, 2)), activation="sigmoid")])
    return [img, seq, rnn]


def test_every_op_and_quantized_op_has_its_kind(rng):
    seen = set()
    for model in models(rng):
        ops = model.ops()
        calib = rng.uniform(-1, 1, (16, int(np.prod(model.input_shape))))
        for op, q in zip(ops, quantize_network(ops, "int8", calib)):
            kind = kind_of(op)
            assert kind is kind_of(q) and kind.kind == op.op_kind
            assert isinstance(op, kind.op_classes) and isinstance(q, kind.quantized_classes)
            seen.add(kind.kind)
    assert seen == set(KINDS) == {"dense", "conv", "depthwise", "pool", "softmax", "recurrent"}
    assert len(op_classes()) == 6 and len(quantized_classes()) == 4


def test_generated_layers_report_through_their_kinds(rng):
    img, _, rnn = models(rng)
    module = generate(img, dtype="float32", kernel="csr")
    assert [_kind(g) for g in module.layers] == ["conv", "depthwise", "maxpool", "avgpool", "dense", "softmax"]
    assert _shape(module.layers[0]) == [4, 6, 6] and _shape(module.layers[-2]) == [3, 4]
    assert _shape(module.layers[-1]) == [3]
    module = generate(rnn, dtype="float32", kernel="dense")
    assert [_kind(g) for g in module.layers] == ["gru", "lstm", "dense"]
    assert _shape(module.layers[0]) == [3, 2, 3]
    assert [p.symbol for p in module.layers[0].parts] == ["model_g_ih", "model_g_hh"]


def test_an_unknown_op_is_named():
    with pytest.raises(DarbgenError, match="a Flatten is not an op the chain pipeline runs; it runs dense, conv"):
        kind_of(Flatten("flat"))
    with pytest.raises(DarbgenError, match="generate takes a darbgen.graph.Model"):
        generate([Flatten("flat")], dtype="float32")


def _imports(path):
    """The darbgen modules a file imports (absolute names), anywhere in it."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[:len(package) - node.level + 1]) + ([node.module] if node.module else [])
            out.add(".".join(base))
            out.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("darbgen")}


def test_the_stages_sit_above_the_kinds_without_cycles():
    """graph and the arithmetic below the kinds; the kinds below the stages
    that look them up (quantize, reference, codegen.emit / module, verify)."""
    stages = {"darbgen.quantize", "darbgen.reference", "darbgen.verify", "darbgen.build", "darbgen.codegen.emit",
              "darbgen.codegen.module", "darbgen.codegen.memory", "darbgen.layers"}
    low = ["graph.py", "activations.py", "qmath.py", "math_f32.py", "codegen/cformat.py", "codegen/layer.py",
           "codegen/sources.py", "codegen/harness.py", "layers/base.py", "layers/dense.py", "layers/conv.py",
           "layers/pool.py", "layers/softmax.py", "layers/recurrent.py"]
    for name in low:
        assert not _imports(PACKAGE / name) & stages, name
    assert not _imports(PACKAGE / "graph.py") & {"darbgen.quantize", "darbgen.qmath", "darbgen.layers"}
    for path in (PACKAGE / "codegen").glob("*.py"):
        assert "darbgen.verify" not in _imports(path), path.name


@pytest.mark.parametrize("module", ["darbgen.layers.recurrent", "darbgen.codegen.layer", "darbgen.codegen.module",
                                    "darbgen.reference", "darbgen.verify", "darbgen.codegen.emit"])
def test_each_module_imports_first(module):
    """No partial initialisation: any of them can be the first darbgen module imported."""
    code = f"import {module}, sys; print('numba' in sys.modules, 'jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
