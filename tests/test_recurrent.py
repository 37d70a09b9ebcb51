"""LSTM and GRU: the float64 forward against PyTorch's equations written out
step by step, and the generated C (whole sequence and streaming) against the
reference."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

import darbgen
from conftest import slow_except
from darbgen.codegen import KERNELS, generate
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Activation, Dense, Flatten, Model
from darbgen.toolchain import host
from darbgen.verify import verify


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def lstm_loops(x, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's nn.LSTM equations, one unit at a time."""
    hidden = w_hh.shape[1]
    h, c = np.zeros(hidden), np.zeros(hidden)
    for x_t in x:
        new_h, new_c = np.zeros(hidden), np.zeros(hidden)
        for j in range(hidden):
            pre = [w_ih[k * hidden + j] @ x_t + b_ih[k * hidden + j] + w_hh[k * hidden + j] @ h + b_hh[k * hidden + j]
                   for k in range(4)]
            i, f, g, o = sigmoid(pre[0]), sigmoid(pre[1]), np.tanh(pre[2]), sigmoid(pre[3])
            new_c[j] = f * c[j] + i * g
            new_h[j] = o * np.tanh(new_c[j])
        h, c = new_h, new_c
    return h


def gru_loops(x, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's nn.GRU equations, one unit at a time."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    for x_t in x:
        new_h = np.zeros(hidden)
        for j in range(hidden):
            xs = [w_ih[k * hidden + j] @ x_t + b_ih[k * hidden + j] for k in range(3)]
            hs = [w_hh[k * hidden + j] @ h + b_hh[k * hidden + j] for k in range(3)]
            r, z = sigmoid(xs[0] + hs[0]), sigmoid(xs[1] + hs[1])
            n = np.tanh(xs[2] + r * hs[2])
            new_h[j] = (1 - z) * n + z * h[j]
        h = new_h
    return h


def make(cls, rng, hidden=7, inputs=4, name="rnn"):
    gates = 4 if cls is LSTM else 3
    return cls(name, 0.6 * rng.standard_normal((gates * hidden, inputs)),
               0.6 * rng.standard_normal((gates * hidden, hidden)), 0.1 * rng.standard_normal(gates * hidden),
               0.1 * rng.standard_normal(gates * hidden))


@pytest.mark.parametrize("cls,loops", [(LSTM, lstm_loops), (GRU, gru_loops)])
def test_forward_matches_the_equations(rng, cls, loops):
    rnn = make(cls, rng)
    x = rng.standard_normal((3, 9, 4))
    got = rnn.op((9, 4)).forward_f64(x.reshape(3, -1))[1]
    for n in range(3):
        want = loops(x[n], *(np.asarray(a, np.float64) for a in (rnn.w_ih, rnn.w_hh, rnn.b_ih, rnn.b_hh)))
        np.testing.assert_allclose(got[n], want, rtol=1e-10, atol=1e-12)


# by default one cell in int8 and the other in float32 (int16: the streaming and stacked tests below)
@pytest.mark.parametrize("cls,dtype", slow_except([(cls, dtype) for dtype in ("float32", "int16", "int8")
                                                   for cls in (LSTM, GRU)], {(LSTM, "int8"), (GRU, "float32")}))
def test_c_matches_the_reference_in_every_kernel(rng, gcc, cls, dtype):
    model = Model("seq", (24, 4), [make(cls, rng), Dense("head", rng.standard_normal((3, 7)).astype(np.float32)),
                                   Activation("s", "softmax")])
    pruned = model.with_pruning(dict(darbgen.prune_model(model.pruning_matrices(), 2).items()))
    assert set(model.pruning_matrices()) == {"rnn.w_ih", "rnn.w_hh", "head"}
    calib = rng.standard_normal((64, 96))
    for kernel in KERNELS:
        module = generate(pruned, dtype=dtype, kernel=kernel, calib=calib)
        result = verify(module, cc=gcc, n_random=8)
        assert result.ok, result.describe()
        assert [c.name for c in result.layers] == ["rnn.w_ih", "rnn.w_hh", "rnn", "head", "s", "(model)"]
    assert verify(module, cc=gcc, n_random=4, sanitize=True).ok


ELEM = {"float32": "float", "int16": "int16_t", "int8": "int8_t"}


def stream(module, tmp_path, gcc, x, steps):
    """Run the model's C whole (<model>_run) and step by step (_reset, _step):
    (run outputs, step outputs (n, steps, step output size))."""
    prefix, dtype = module.prefix, module.dtype
    h = module.files[f"{prefix}.h"]
    macro = {line.split()[1]: int(line.split()[2]) for line in h.splitlines()
             if line.startswith(f"#define {prefix.upper()}_") and line.split()[2:3] and line.split()[2].isdigit()}
    n_in, n_out = macro[f"{prefix.upper()}_INPUT_SIZE"], macro[f"{prefix.upper()}_OUTPUT_SIZE"]
    n_step, n_step_out = macro[f"{prefix.upper()}_STEP_SIZE"], macro[f"{prefix.upper()}_STEP_OUTPUT_SIZE"]
    assert n_in == steps * n_step
    module.write_files(tmp_path)
    probe = Path(__file__).parent / "c" / "stream_probe.c"
    defines = [f'-DMODEL_HEADER="{prefix}.h"', f"-DRUN={prefix}_run", f"-DRESET={prefix}_reset",
               f"-DSTEP={prefix}_step", f"-DN_IN={n_in}", f"-DN_STEP={n_step}", f"-DN_OUT={n_out}",
               f"-DN_STEP_OUT={n_step_out}", f"-DELEM={ELEM[dtype]}"]
    subprocess.run([gcc, *host.STRICT_FLAGS, *defines, "-I.", *module.sources, str(probe), "-o", "probe"],
                   cwd=tmp_path, check=True)
    xin = x.astype(np.float32) if dtype == "float32" else module.layers[0].quantized.input.quantize(x)
    (tmp_path / "in.bin").write_bytes(xin.tobytes())
    subprocess.run(["./probe", "in.bin", "out.bin"], cwd=tmp_path, check=True)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), xin.dtype).reshape(len(x), -1)
    return xin, got[:, :n_out], got[:, n_out:].reshape(len(x), steps, n_step_out)


@pytest.mark.parametrize("dtype", ["float32", "int16", "int8"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_streaming_equals_the_whole_sequence(rng, tmp_path, gcc, cls, dtype):
    model = Model("kws", (120, 5), [make(cls, rng, inputs=5), Dense("head", rng.standard_normal((2, 7)))])
    x = rng.standard_normal((6, 600))
    module = generate(model, dtype=dtype, kernel="packed", prefix="kws", calib=x)
    assert f"void kws_step(const {ELEM[dtype]} *in, {ELEM[dtype]} *out);" in module.files["kws.h"]
    xin, run, steps = stream(module, tmp_path, gcc, x, 120)
    assert np.array_equal(run, steps[:, -1])                         # streaming gives the same bits
    np.testing.assert_array_equal(run, module.model.reference(xin))   # over 120 steps


def stacked(rng, dtype_head=True):
    first = make(LSTM, rng, hidden=6, inputs=4)
    first.return_sequences = True
    second = make(GRU, rng, hidden=5, inputs=6, name="gru")
    layers = [first, second]
    if dtype_head:
        layers += [Dense("head", rng.standard_normal((3, 5))), Activation("s", "softmax")]
    return Model("deep", (30, 4), layers)


def test_stacked_layers_match_the_equations(rng):
    model = stacked(rng, dtype_head=False)
    x = rng.standard_normal((3, 30, 4))
    lstm, gru = model.layers
    for n in range(3):
        hs, h = [], None
        for t in range(1, 31):                      # the LSTM's state after every step
            hs.append(lstm_loops(x[n, :t], *(np.asarray(a, np.float64) for a in (lstm.w_ih, lstm.w_hh, lstm.b_ih,
                                                                                  lstm.b_hh))))
        h = gru_loops(np.array(hs), *(np.asarray(a, np.float64) for a in (gru.w_ih, gru.w_hh, gru.b_ih, gru.b_hh)))
        np.testing.assert_allclose(model.forward(x[n].reshape(1, -1))[0], h, rtol=1e-10, atol=1e-12)
        seq = lstm.op((30, 4)).forward_f64(x[n].reshape(1, -1))[1]
        np.testing.assert_allclose(seq.reshape(30, 6), np.array(hs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "int16", "int8"])
def test_stacked_recurrent_layers_in_c(rng, tmp_path, gcc, dtype):
    """An LSTM returning its sequence into a GRU, then a classifier head:
    verified per layer and whole, and streaming step by step."""
    model = stacked(rng)
    pruned = model.with_pruning(dict(darbgen.prune_model(model.pruning_matrices(), 2).items()))
    x = rng.standard_normal((8, 120))
    module = generate(pruned, dtype=dtype, kernel="packed", prefix="deep", calib=x)
    assert module.layers[0].layer.out_size == 30 * 6
    result = verify(module, cc=gcc, n_random=6)
    assert result.ok, result.describe()
    assert [c.name for c in result.layers] == ["rnn.w_ih", "rnn.w_hh", "rnn", "gru.w_ih", "gru.w_hh", "gru",
                                               "head", "s", "(model)"]
    xin, run, steps = stream(module, tmp_path, gcc, x, 30)
    assert np.array_equal(run, steps[:, -1])
    np.testing.assert_array_equal(run, module.model.reference(xin))


def test_model_ending_in_a_sequence_streams_every_step(rng, tmp_path, gcc):
    first = make(GRU, rng, hidden=5, inputs=3)
    first.return_sequences = True
    model = Model("seq", (12, 3), [first])
    x = rng.standard_normal((4, 36))
    module = generate(model, dtype="int8", kernel="csr", prefix="seqm", calib=x)
    assert "#define SEQM_OUTPUT_SIZE 60" in module.files["seqm.h"]
    assert "#define SEQM_STEP_OUTPUT_SIZE 5" in module.files["seqm.h"]
    xin, run, steps = stream(module, tmp_path, gcc, x, 12)
    assert np.array_equal(run, steps.reshape(4, -1))                 # every step's state, time first
    np.testing.assert_array_equal(run, module.model.reference(xin))


def test_no_streaming_when_a_sequence_feeds_more_layers(rng, gcc):
    first = make(LSTM, rng, hidden=5, inputs=3)
    first.return_sequences = True
    model = Model("m", (4, 3), [first, Flatten("f"), Dense("d", rng.standard_normal((2, 20)))])
    module = generate(model, dtype="int8", prefix="m", calib=rng.standard_normal((8, 12)))
    assert "m_step" not in module.files["m.h"] and "void m_run" in module.files["m.h"]
    result = verify(module, cc=gcc, n_random=4)
    assert result.ok, result.describe()


@pytest.mark.parametrize("dtype,tol", [("int16", 0.02), ("int8", 0.05)])
def test_integer_cell_stays_close_to_float(rng, dtype, tol):
    for cls in (LSTM, GRU):
        rnn = make(cls, rng, hidden=16, inputs=6)
        model = Model("m", (50, 6), [rnn])
        x = rng.standard_normal((40, 300))
        module = generate(model, dtype=dtype, kernel="dense", calib=x)
        q = module.layers[0].quantized
        h_int = q.output.dequantize(module.layers[0].reference(q.input.quantize(x)))
        h_float = model.forward(x)
        assert np.abs(h_int - h_float).max() < tol, cls.__name__


def test_recurrent_errors(rng):
    with pytest.raises(DarbgenError, match="w_hh must be"):
        LSTM("l", np.ones((8, 3)), np.ones((8, 3)))
    with pytest.raises(DarbgenError, match=r"needs a \(steps, 4\) sequence"):
        Model("m", (4,), [make(LSTM, rng)])
    with pytest.raises(DarbgenError, match=r"rnn: a recurrent layer takes the model's \(steps, features\) input"):
        Model("m", (4,), [Dense("d", np.ones((4, 4))), make(GRU, rng)])
    with pytest.raises(DarbgenError, match="returns only its last state; set return_sequences"):
        Model("m", (5, 4), [make(GRU, rng, inputs=4), make(LSTM, rng, inputs=7, name="second")])


def test_npz_lstm_builds_with_a_report(tmp_path, rng, gcc):
    import json

    from darbgen.build import build

    rnn = make(LSTM, rng, hidden=16, inputs=6)
    spec = {"format": "darbgen-npz", "version": 1, "name": "kws", "input_shape": [20, 6],
            "layers": [{"name": "lstm", "kind": "lstm"}, {"name": "fc", "kind": "dense", "activation": "softmax"}]}
    path = tmp_path / "kws.npz"
    np.savez(path, **{"__model__": np.array(json.dumps(spec)), "lstm.w_ih": rnn.w_ih, "lstm.w_hh": rnn.w_hh,
                      "lstm.b_ih": rnn.b_ih, "lstm.b_hh": rnn.b_hh,
                      "fc.weight": rng.standard_normal((4, 16)).astype(np.float32),
                      "test.x": rng.standard_normal((30, 120)).astype(np.float32), "test.y": rng.integers(0, 4, 30)})
    r = build(path, ratio=2, dtype="float32")
    assert r.ok
    row = r.report["layers"][0]
    assert row["kind"] == "lstm" and row["shape"] == [20, 6, 16] and row["ratio"] == pytest.approx(2, rel=0.1)
    assert row["state_bytes"] == (16 * 2 + 2 * 64) * 4
    assert r.report["ram_bytes"] >= row["state_bytes"]
    assert r.report["accuracy"]["c"] == pytest.approx(r.report["accuracy"]["pruned"])


def test_npz_stacked_int8_build(tmp_path, rng, gcc):
    """A stacked LSTM -> GRU classifier from .npz through build in int8: verified,
    and the C classifies like the pruned float model."""
    import json

    from darbgen.build import build

    lstm, gru = make(LSTM, rng, hidden=8, inputs=4, name="l1"), make(GRU, rng, hidden=6, inputs=8, name="l2")
    spec = {"format": "darbgen-npz", "version": 1, "name": "deep", "input_shape": [16, 4],
            "layers": [{"name": "l1", "kind": "lstm", "return_sequences": True}, {"name": "l2", "kind": "gru"},
                       {"name": "fc", "kind": "dense", "activation": "softmax"}]}
    arrays = {"__model__": np.array(json.dumps(spec)), "fc.weight": 2 * rng.standard_normal((3, 6)),
              "calib.x": rng.standard_normal((64, 64)), "test.x": rng.standard_normal((200, 64)),
              "test.y": rng.integers(0, 3, 200)}
    for rnn in (lstm, gru):
        arrays.update({f"{rnn.name}.{p}": getattr(rnn, p) for p in ("w_ih", "w_hh", "b_ih", "b_hh")})
    np.savez(tmp_path / "deep.npz", **arrays)
    r = build(tmp_path / "deep.npz", ratio=2, dtype="int8")
    assert r.ok
    assert [row["kind"] for row in r.report["layers"]] == ["lstm", "gru", "dense", "softmax"]
    assert r.report["layers"][0]["shape"] == [16, 4, 8]
    assert r.report["accuracy"]["c_agrees_with_pruned"] >= 0.95
    spec["layers"][0]["return_sequences"] = "yes"
    arrays["__model__"] = np.array(json.dumps(spec))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DarbgenError, match="l1.*return_sequences must be true or false"):
        build(tmp_path / "bad.npz", ratio=2, dtype="int8")
