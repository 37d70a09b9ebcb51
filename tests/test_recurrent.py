"""LSTM and GRU: the float64 forward against PyTorch's equations written out
step by step, and the generated C (whole sequence and streaming) against the
reference."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

import darbgen
from darbgen.codegen import KERNELS, generate
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Activation, Dense, Model
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


def make(cls, rng, hidden=7, inputs=4):
    gates = 4 if cls is LSTM else 3
    return cls("rnn", 0.6 * rng.standard_normal((gates * hidden, inputs)),
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


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
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


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_streaming_equals_the_whole_sequence(rng, tmp_path, gcc, cls, dtype):
    model = Model("kws", (120, 5), [make(cls, rng, inputs=5), Dense("head", rng.standard_normal((2, 7)))])
    x = rng.standard_normal((6, 600))
    module = generate(model, dtype=dtype, kernel="packed", prefix="kws", calib=x)
    elem = "float" if dtype == "float32" else "int16_t"
    assert f"void kws_step(const {elem} *in, {elem} *out);" in module.files["kws.h"]
    module.write_files(tmp_path)
    probe = Path(__file__).parent / "c" / "stream_probe.c"
    defines = ['-DMODEL_HEADER="kws.h"', "-DRUN=kws_run", "-DRESET=kws_reset", "-DSTEP=kws_step",
               "-DN_IN=600", "-DN_STEP=5", "-DN_OUT=2", f"-DELEM={elem}"]
    subprocess.run([gcc, *host.STRICT_FLAGS, *defines, "-I.", *module.sources, str(probe), "-o", "probe"],
                   cwd=tmp_path, check=True)
    xin = x.astype(np.float32) if dtype == "float32" else module.layers[0].quantized.input.quantize(x)
    (tmp_path / "in.bin").write_bytes(xin.tobytes())
    subprocess.run(["./probe", "in.bin", "out.bin"], cwd=tmp_path, check=True)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), xin.dtype).reshape(6, 2, 2)
    assert np.array_equal(got[:, 0], got[:, 1])                      # streaming gives the same bits
    np.testing.assert_array_equal(got[:, 0], module.model.reference(xin))   # over 120 steps


def test_int16_cell_stays_close_to_float(rng):
    for cls in (LSTM, GRU):
        rnn = make(cls, rng, hidden=16, inputs=6)
        model = Model("m", (50, 6), [rnn])
        x = rng.standard_normal((40, 300))
        module = generate(model, dtype="int16", kernel="dense", calib=x)
        q = module.layers[0].quantized
        h_int = module.layers[0].reference(q.input.quantize(x)) / 32768.0
        h_float = model.forward(x)
        assert np.abs(h_int - h_float).max() < 0.02, cls.__name__


def test_recurrent_errors(rng):
    with pytest.raises(DarbgenError, match="w_hh must be"):
        LSTM("l", np.ones((8, 3)), np.ones((8, 3)))
    with pytest.raises(DarbgenError, match=r"needs a \(steps, 4\) sequence"):
        Model("m", (4,), [make(LSTM, rng)])
    with pytest.raises(DarbgenError, match=r"int16 \(16x8\) and float32"):
        generate(Model("m", (5, 4), [make(GRU, rng)]), dtype="int8", calib=rng.standard_normal((4, 20)))


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
