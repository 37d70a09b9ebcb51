"""The PyTorch importer: modules built (and for int8, trained) here, each
checked against torch itself (darbgen's float64 forward within 1e-5, the
generated float32 C within 1e-4, recurrent models also streamed step by
step), an int8 digits classifier through build, and the refusals."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

from darbgen.codegen import generate
from darbgen.errors import DarbgenError
from darbgen.graph import GRU, LSTM, Conv1D, Conv2D, DepthwiseConv2D, GlobalAveragePool, Pool1D, Pool2D
from darbgen.verify import verify

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    message = "torch is not installed: the PyTorch importer tests need it (pip install torch)"
    warnings.warn(message)
    pytest.skip("SKIPPED LOUDLY: " + message, allow_module_level=True)

from darbgen.importers.torch import model_from_torch  # noqa: E402
from test_recurrent import stream  # noqa: E402

torch.set_num_threads(1)


def close(got, want, rel):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= rel, err


def randomize_bn(module):
    """Non-trivial running statistics and affine parameters in every batch norm."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                if m.affine:
                    m.weight.copy_(1 + 0.3 * torch.randn(m.num_features, generator=g))
                    m.bias.copy_(0.3 * torch.randn(m.num_features, generator=g))
    return module.eval()


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(np.asarray(x, np.float32))).double().numpy()


def check(module, input_shape, x, gcc, seq_first=False):
    """torch vs darbgen's forward (1e-5) and its float32 C (1e-4); the model.
    ``x`` is torch's batch; ``seq_first``: (T, N, F), else batch first."""
    module = randomize_bn(module)
    want = run_torch(module, x)
    if seq_first and want.ndim == 3:                         # a (T, N, H) output sequence
        want = want.transpose(1, 0, 2)
    xs = (x.transpose(1, 0, 2) if seq_first else x).reshape(len(x[0] if seq_first else x), -1)
    want = want.reshape(len(xs), -1)
    model = model_from_torch(module, input_shape)
    close(model.forward(xs), want, 1e-5)
    module_c = generate(model, dtype="float32", kernel="dense", prefix="torchm")
    result = verify(module_c, inputs={"(model)": xs.astype(np.float32)}, cc=gcc, n_random=2)
    assert result.ok, result.describe()
    close(result.outputs["(model)"][:len(xs)], want, 1e-4)
    return model


def kinds(model):
    return [type(layer).__name__ for layer in model.layers]


# ----------------------------------------------------------------------------- feed-forward layers

def test_mlp_sequential_bn_dropout_activations(rng, gcc):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                        nn.Sequential(nn.Linear(16, 10), nn.Tanh(), nn.Identity()),
                        nn.Linear(10, 8), nn.ReLU6(), nn.Linear(8, 6), nn.Sigmoid(), nn.Linear(6, 4),
                        nn.Softmax(dim=1))
    model = check(net, (12,), 3 * rng.standard_normal((9, 12)), gcc)
    assert kinds(model) == ["Dense", "Activation"] * 5                 # batch norm folded, dropout skipped
    assert [layer.name for layer in model.layers][:4] == ["layer0", "layer2", "layer4.0", "layer4.1"]


def test_cnn_conv_bn_relu_maxpool_flatten_linear_softmax(rng, gcc):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, stride=2, padding=(1, 0), dilation=(1, 1), bias=False), nn.ReLU(),
                        nn.Flatten(), nn.Linear(5 * 2 * 1, 3), nn.Softmax(dim=-1))
    model = check(net, (2, 8, 6), rng.standard_normal((6, 2, 8, 6)), gcc)
    assert kinds(model)[0] == "Conv2D" and "Flatten" in kinds(model) and model.input_shape == (2, 8, 6)


def test_depthwise_bn_relu6_global_average_pool(rng, gcc):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, groups=3, padding="same"), nn.BatchNorm2d(6), nn.ReLU6(),
                        nn.Conv2d(6, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 3))
    model = check(net, (3, 9, 9), 4 * rng.standard_normal((5, 3, 9, 9)), gcc)      # large enough that relu6 clips
    assert type(model.layers[0]) is DepthwiseConv2D and GlobalAveragePool in map(type, model.layers)


class Conv1dNet(nn.Module):
    """fx: F.relu, pools, x.view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=2, dilation=2)
        self.bn = nn.BatchNorm1d(4)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(4, 5, 3, stride=2, padding="valid")
        self.avg = nn.AvgPool1d(2, stride=1)
        self.fc = nn.Linear(5 * 3, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        x = self.avg(torch.tanh(self.conv2(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Conv2dNet(nn.Module):
    """fx: torch.relu after a max pool, padded average pool without the pads, x.relu(),
    AdaptiveAvgPool2d(1) + torch.flatten, x.flatten(1), softmax as a function."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.pool = nn.MaxPool2d(2, stride=1)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv2 = nn.Conv2d(4, 6, (3, 1), padding=(1, 0))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.pool(self.conv(x)))
        x = self.avg(x)
        x = self.conv2(x).relu()
        x = torch.flatten(self.gap(x), 1)
        return F.softmax(self.fc(x.flatten(1)), dim=-1)


@pytest.mark.parametrize("cls,shape", [(Conv1dNet, (3, 20)), (Conv2dNet, (2, 9, 9))])
def test_fx_traced_modules(rng, gcc, cls, shape):
    torch.manual_seed(3)
    model = check(cls(), shape, rng.standard_normal((4,) + shape), gcc)
    assert type(model.layers[0]) in (Conv1D, Conv2D)
    assert any(isinstance(layer, (Pool1D, Pool2D)) for layer in model.layers)


def test_average_pool_count_include_pad_without_padding(rng, gcc):
    net = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
    check(net, (2, 6, 7), rng.standard_normal((3, 2, 6, 7)), gcc)


# ----------------------------------------------------------------------------- recurrent layers

class LastStep(nn.Module):
    """out, _ = rnn(x); fc(out[:, -1]) (batch first) or fc(out[-1])."""

    def __init__(self, cls, inputs, hidden, batch_first=True, bias=True):
        super().__init__()
        self.rnn = cls(inputs, hidden, batch_first=batch_first, bias=bias)
        self.fc = nn.Linear(hidden, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1] if self.rnn.batch_first else out[-1])


class LastState(nn.Module):
    """_, (h, c) = lstm(x) / _, h = gru(x); fc(h[-1])."""

    def __init__(self, cls, inputs, hidden, batch_first=False, layers=1):
        super().__init__()
        self.rnn = cls(inputs, hidden, num_layers=layers, batch_first=batch_first)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x):
        if isinstance(self.rnn, nn.LSTM):
            _, (h, c) = self.rnn(x)
        else:
            _, h = self.rnn(x)
        return torch.sigmoid(self.fc(h[-1]))


class Sequence(nn.Module):
    """The whole output sequence: return_sequences."""

    def __init__(self, cls, inputs, hidden, batch_first=True):
        super().__init__()
        self.rnn = cls(inputs, hidden, batch_first=batch_first)

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_recurrent_last_step_batch_first_streams_like_torch(rng, tmp_path, gcc, cls):
    """120 steps: whole-sequence C against torch, and the C's <model>_step
    called step by step against torch's fc(out[:, t]) at every step."""
    torch.manual_seed(4)
    net = LastStep(cls, 4, 6)
    x = rng.standard_normal((3, 120, 4))
    model = check(net, (120, 4), x, gcc)
    assert type(model.layers[0]) is (LSTM if cls is nn.LSTM else GRU)
    assert not model.layers[0].return_sequences and model.input_shape == (120, 4)
    module = generate(model, dtype="float32", kernel="dense", prefix="strm")
    _, run, steps = stream(module, tmp_path, gcc, x.reshape(3, -1), 120)
    with torch.no_grad():
        out, _ = net.rnn(torch.from_numpy(x.astype(np.float32)))
        every = net.fc(out).double().numpy()                     # (n, T, 3): the head on every step's state
    close(steps, every, 1e-4)
    close(run, every[:, -1], 1e-4)


@pytest.mark.parametrize("cls,layers", [(nn.LSTM, 1), (nn.GRU, 1), (nn.LSTM, 2)])
def test_recurrent_last_state_sequence_first(rng, gcc, cls, layers):
    torch.manual_seed(5)
    x = rng.standard_normal((100, 3, 5))                      # (T, N, F)
    model = check(LastState(cls, 5, 7, layers=layers), (100, 5), x, gcc, seq_first=True)
    assert [getattr(layer, "return_sequences", None) for layer in model.layers[:layers]] == \
        [True] * (layers - 1) + [False]


def test_recurrent_without_bias_and_whole_sequence(rng, gcc):
    torch.manual_seed(6)
    x = rng.standard_normal((2, 100, 3))
    model = check(LastStep(nn.LSTM, 3, 5, bias=False), (100, 3), x, gcc)
    assert not np.any(model.layers[0].b_ih)
    model = check(Sequence(nn.GRU, 3, 4), (100, 3), x, gcc)
    assert model.layers[0].return_sequences and model.output_shape == (100, 4)
    xs = x.transpose(1, 0, 2)
    model = check(Sequence(nn.LSTM, 3, 4, batch_first=False), (100, 3), xs, gcc, seq_first=True)
    assert model.output_shape == (100, 4)


# ----------------------------------------------------------------------------- int8 through darbgen build

@pytest.mark.slow          # a framework round trip with training; the importer tests above are the fast ones
def test_digits_int8_build_agrees_with_torch():
    from sklearn.datasets import load_digits

    from darbgen.build import build

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1300], y[:1300], x[1300:], y[1300:]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for epoch in range(30):                                  # about a second on one CPU thread
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            F.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    want = run_torch(net, x_test).argmax(axis=1)
    assert np.mean(want == y_test) > 0.9
    net.darbgen_input_shape = (64,)                          # build() reads a module with its input shape
    r = build(net, dtype="int8", calib=x_train[:200], eval_data=(x_test, y_test))
    assert r.ok
    agree = np.mean(r.eval_outputs.argmax(axis=1) == want)
    assert agree >= 0.99, agree
    r2 = build(model_from_torch(net, (64,), name="digits"), ratio=2, dtype="int8", calib=x_train[:200],
               eval_data=(x_test, y_test))
    assert r2.ok and r2.model.name == "digits" and r2.report["accuracy"]["c_agrees_with_pruned"] >= 0.97


# ----------------------------------------------------------------------------- refusals

class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


class DenseOnSequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(3, 4, batch_first=True), nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out)                                 # per step in torch: not darbgen's dense layer


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + x


@pytest.mark.parametrize("case", ["unsupported", "groups", "bidirectional", "residual", "count_pad", "softmax_dim",
                                  "cell_state", "untraceable", "dense_on_sequence", "wrong_shape", "not_module"])
def test_refusals_are_clear(case):
    shape = (4,)
    if case == "unsupported":
        net, match = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU()), r"'?1'? \(LeakyReLU\).*supported modules: Linear"
    elif case == "groups":
        net, shape = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), (4, 6, 6)
        match = r"groups = 2 is not supported"
    elif case == "bidirectional":
        net, shape = LastStep(nn.LSTM, 3, 4), (10, 3)
        net.rnn, net.fc = nn.LSTM(3, 4, batch_first=True, bidirectional=True), nn.Linear(8, 3)
        match = "bidirectional = True is not supported"
    elif case == "residual":
        net, match = Residual(), "single chain of layers"
    elif case == "count_pad":
        net, shape = nn.Sequential(nn.AvgPool2d(2, padding=1)), (1, 4, 4)
        match = "count_include_pad = True with padding is not supported"
    elif case == "softmax_dim":
        net, shape = nn.Sequential(nn.Conv1d(2, 2, 1), nn.Softmax(dim=1)), (2, 5)
        match = "softmax over dim 1"
    elif case == "cell_state":
        class Cell(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4)

            def forward(self, x):
                _, (h, c) = self.lstm(x)
                return c[-1]
        net, shape, match = Cell(), (10, 3), "cell state c is used"
    elif case == "untraceable":
        net, match = Untraceable(), "torch.fx cannot trace the module"
    elif case == "dense_on_sequence":
        net, shape, match = DenseOnSequence(), (5, 3), r"fc \(Linear\): applies to the last axis"
    elif case == "wrong_shape":
        net, shape = nn.Sequential(nn.Linear(4, 3)), (5,)
        match = r"running the module on samples of shape \(5,\) failed.*check input_shape"
    else:
        with pytest.raises(DarbgenError, match="needs a torch.nn.Module"):
            model_from_torch(object(), (4,))
        return
    with pytest.raises(DarbgenError, match=match):
        model_from_torch(net, shape)


class Custom:
    """Not something torch.load(weights_only=True) may unpickle."""

    def __init__(self):
        self.w = torch.ones(3)


def test_files_are_read_weights_only_and_refused_clearly(tmp_path):
    from darbgen.build import build, load

    net = nn.Sequential(nn.Linear(4, 3))
    state = tmp_path / "net.pt"
    torch.save(net.state_dict(), state)
    with pytest.raises(DarbgenError, match=r"holds a state_dict \(2 tensors\) but no architecture.*model_from_torch"):
        build(state)
    pickled = tmp_path / "custom.pth"
    torch.save(Custom(), pickled)
    whole = tmp_path / "whole.pt"
    torch.save(net, whole)                                  # a whole pickled module: refused as well
    data = state.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:len(data) // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (pickled, whole, cut, empty):
        with pytest.raises(DarbgenError, match="not a weights-only PyTorch file.*never unpickles"):
            load(path)
    with pytest.raises(DarbgenError, match="no such file"):
        load(tmp_path / "missing.pt")
    ep = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net.eval(), (torch.zeros(2, 4),)), ep)
    with pytest.raises(DarbgenError, match=r"\.pt2\) programs are not read: .*weights_only=False.*model_from_torch"):
        load(ep)
    with pytest.raises(DarbgenError, match=r"does not say its input shape.*model_from_torch\(module, input_shape\)"):
        load(net)


def test_cli_refuses_a_state_dict_in_one_line(tmp_path):
    path = tmp_path / "net.pth"
    torch.save(nn.Linear(4, 3).state_dict(), path)
    proc = subprocess.run([sys.executable, "-m", "darbgen", "build", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no architecture" in proc.stderr and "Traceback" not in proc.stderr


def test_import_darbgen_does_not_import_torch():
    code = "import sys, darbgen, darbgen.build, darbgen.importers.torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_missing_torch_package_is_a_clear_error(monkeypatch):
    import darbgen.importers.torch as imp

    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` now raises ImportError
    with pytest.raises(DarbgenError, match="pip install torch"):
        imp.model_from_torch(object(), (4,))


def test_training_flags_and_float64_modules_survive_import():
    """Every submodule's train/eval flag comes back as it was, and a float64
    module is imported (not refused as a shape error)."""
    torch = pytest.importorskip("torch")
    from darbgen.importers.torch import model_from_torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU())
    net.train()
    net[1].eval()                                   # a frozen BatchNorm inside a training model
    model_from_torch(net, (4,))
    assert net.training and net[0].training and not net[1].training
    double = torch.nn.Sequential(torch.nn.Linear(4, 3)).double()
    x = np.random.default_rng(0).standard_normal((5, 4))
    model = model_from_torch(double, (4,))
    np.testing.assert_allclose(model.forward(x), double(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
