"""Masked fine-tuning and one-shot refit of PyTorch models (darbgen.train),
and reading a fine-tuned model's pruning back from its zeros into `build`."""
import copy
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import darbgen
from conftest import slow_except
from darbgen.build import build
from darbgen.errors import DarbgenError
from darbgen.pruning.api import from_zeros

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    message = "torch is not installed: the fine-tuning tests need it (pip install torch)"
    warnings.warn(message)
    pytest.skip("SKIPPED LOUDLY: " + message, allow_module_level=True)

from darbgen import train  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return tuple(torch.from_numpy(a) for a in (x[:1300], y[:1300], x[1300:], y[1300:]))


def mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def loop(digits, seed=0):
    xtr, ytr = digits[0], digits[1]
    gen = torch.Generator().manual_seed(seed)

    def batch():
        i = torch.randint(0, len(xtr), (64,), generator=gen)
        return xtr[i], ytr[i]

    def loss(model, b):
        return F.cross_entropy(model(b[0]), b[1])
    return batch, loss


def accuracy(model, digits):
    with torch.no_grad():
        return 100 * float((model(digits[2]).argmax(1) == digits[3]).double().mean())


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = mlp()
    batch, loss = loop(digits)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(1500):
        opt.zero_grad()
        loss(model, batch()).backward()
        opt.step()
    model.eval()
    assert accuracy(model, digits) > 94
    return model


def pattern(model):
    return {n: (p.detach().numpy().reshape(p.shape[0], -1) != 0) for n, (_, p) in train.prunable(model).items()}


# ----------------------------------------------------------------------------- schedule

def test_cubic_schedule():
    assert train.cubic_ratio(0, 16, 100) == 1.0
    assert train.cubic_ratio(100, 16, 100) == 16.0 and train.cubic_ratio(500, 16, 100) == 16.0
    assert train.cubic_ratio(5, 16, 100, start=10) == 1.0
    ratios = [train.cubic_ratio(t, 16, 100) for t in range(101)]
    assert all(a <= b for a, b in zip(ratios, ratios[1:]))
    # Zhu & Gupta: sparsity s_f + (s_i - s_f)(1 - t/n)^3; half way, 1 - 1/8 of the final sparsity
    s_half = 1 - 1 / train.cubic_ratio(50, 16, 100)
    assert s_half == pytest.approx((1 - 1 / 16) * (1 - 0.5 ** 3))
    assert train.cubic_ratio(7, 16, 0) == 16.0


# ----------------------------------------------------------------------------- fine-tuning

def test_fine_tuning_recovers_what_one_shot_pruning_loses(trained, digits):
    dense = accuracy(trained, digits)
    one_shot = copy.deepcopy(trained)
    train.apply_masks(one_shot, train.prune_masks(one_shot, 8, "darb"))
    lost = accuracy(one_shot, digits)
    assert lost < dense - 20                             # 8x at once, no retraining: badly hurt
    tuned = copy.deepcopy(trained)
    batch, loss = loop(digits, seed=1)
    pruning = train.fine_tune(tuned, batch, loss, 8, "darb", steps=800, lr=1e-3)
    recovered = accuracy(tuned, digits)
    assert recovered > lost + 20
    assert recovered > dense - 3
    assert pruning.done and pruning.ratio == 8
    for name, r in pruning.results.items():              # the model holds exactly the final DARB masks
        assert r.method == "darb" and r.ratio == pytest.approx(8, rel=0.05)
        np.testing.assert_array_equal(pattern(tuned)[name] & ~r.mask, False)


def test_masks_are_unchanged_by_training_in_the_users_own_loop(trained, digits):
    model = copy.deepcopy(trained)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    batch, loss = loop(digits, seed=2)
    pruning = train.MaskedPruning(model, 8, "darb", steps=40, every=10, optimizer=opt)
    seen_ratios = []
    with pruning:
        for step in range(120):
            opt.zero_grad()
            loss(model, batch()).backward()
            opt.step()                                      # the hook re-applies the masks
            seen_ratios.append(pruning.ratio)
            if step == 40:
                fixed = {n: r.mask.copy() for n, r in pruning.results.items()}
                values = {n: p.detach().clone() for n, (_, p) in train.prunable(model).items()}
            if step > 40:
                for n, (_, p) in train.prunable(model).items():
                    assert torch.all(p.grad.reshape(p.shape[0], -1)[~torch.from_numpy(fixed[n])] == 0)
    assert seen_ratios[0] == 1 and seen_ratios[9] > 1 and seen_ratios[39] == 8 and seen_ratios == sorted(seen_ratios)
    for n, (_, p) in train.prunable(model).items():
        w = p.detach().numpy().reshape(p.shape[0], -1)
        np.testing.assert_array_equal(pruning.results[n].mask, fixed[n])     # never re-derived after the end
        assert np.all(w[~fixed[n]] == 0)                                     # momentum did not revive them
        assert not torch.equal(p.detach(), values[n])                        # yet the kept weights trained


@pytest.mark.parametrize("method,options", slow_except(
    [("irregular", {}), ("block", {"tile": (4, 4)}), ("bank_balanced", {}), ("nm", {"n": 1}), ("bmwm", {})],
    [("block", {"tile": (4, 4)}), ("nm", {"n": 1})]), ids=["irregular", "block", "bank_balanced", "nm", "bmwm"])
def test_manual_step_and_every_method(trained, digits, method, options):
    model = copy.deepcopy(trained)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batch, loss = loop(digits)
    with train.MaskedPruning(model, 4, method, steps=20, **options) as pruning:
        for _ in range(30):
            opt.zero_grad()
            loss(model, batch()).backward()
            opt.step()
            pruning.step()
    assert pruning.done
    for n, r in pruning.results.items():
        assert r.method == method
        assert np.all(pattern(model)[n] <= r.mask)


def test_recurrent_weights_are_pruned_and_refit(rng):
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(12, 16, batch_first=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    net = Net().eval()
    assert list(train.prunable(net)) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "fc.weight"]
    x = torch.from_numpy((rng.standard_normal((48 * 25, 2)) @ rng.standard_normal((2, 12))).reshape(48, 25, 12)).float()
    with torch.no_grad():
        want = net(x)
    results = train.prune_masks(net, 4)
    plain = copy.deepcopy(net)
    train.apply_masks(plain, results)
    refit = train.refit(copy.deepcopy(net), results, x)
    with torch.no_grad():
        before = float(((plain(x) - want) ** 2).mean())
        after = float(((refit(x) - want) ** 2).mean())
    assert after < 0.7 * before
    for n, (_, p) in train.prunable(refit).items():
        assert np.all(p.detach().numpy()[~results[n].mask] == 0)


def test_torch_refit_and_norms_agree_with_the_numpy_model(rng):
    """The torch hooks (unfold for convolutions) and darbgen.refit on the
    imported model see the same inputs: same norms, same refit weights."""
    from darbgen.importers.torch import model_from_torch
    from darbgen.refit import input_norms, refit_model

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 3 * 3, 4)).double().eval()
    x = rng.standard_normal((40, 2, 7, 7))
    model = model_from_torch(net, (2, 7, 7))
    names = dict(zip(train.prunable(net), model.pruning_matrices()))
    want = input_norms(model, x)
    got = train.activation_norms(net, torch.from_numpy(x))
    for tn, dn in names.items():
        np.testing.assert_allclose(got[tn], want[dn], rtol=1e-5)
    results = train.prune_masks(net, 4)
    refit_np = refit_model(model, {names[n]: r for n, r in results.items()}, x, holdout=False)
    train.refit(net, results, torch.from_numpy(x), holdout=False)
    for tn, (_, p) in train.prunable(net).items():
        layer = {lay.name: lay for lay in refit_np.weight_layers()}[names[tn]]
        np.testing.assert_allclose(p.detach().numpy().reshape(p.shape[0], -1), layer.pruning_matrix,
                                   rtol=1e-3, atol=1e-4)


def test_fine_tuned_model_goes_straight_into_build(trained, digits, gcc):
    model = copy.deepcopy(trained)
    batch, loss = loop(digits, seed=3)
    pruning = train.fine_tune(model, batch, loss, 8, "darb", steps=300)
    model.darbgen_input_shape = (64,)
    x_test, y_test = digits[2].numpy(), digits[3].numpy()
    r = build(model, from_zeros=True, method="darb", dtype="int8", calib=digits[0][:256].numpy(),
                            eval_data=(x_test, y_test))
    assert r.ok
    for layer, (name, res) in zip(r.pruned.weight_layers(), pruning.results.items()):
        # the zeros give back the trained block sizes or larger ones, and drop no weight
        assert np.all(layer.block_sizes >= res.block_sizes)
        assert np.all(layer.mask[pattern(model)[name]])
        assert layer.ratio >= res.ratio * 0.999
    assert r.report["accuracy"]["pruned"] == pytest.approx(accuracy(model, digits) / 100, abs=0.005)
    assert r.report["accuracy"]["c"] > r.report["accuracy"]["pruned"] - 0.02


# ----------------------------------------------------------------------------- from_zeros and errors

def test_from_zeros_recovers_darb_block_sizes(rng):
    w = rng.standard_normal((30, 64)).astype(np.float32)
    truth = darbgen.prune(w, 8)
    got = from_zeros(truth.apply(w))
    assert np.all(got.block_sizes >= truth.block_sizes)
    assert np.all(got.mask[truth.mask])                          # no kept weight lost
    for r in range(30):                                          # a block twice as large would hold two
        b = int(got.block_sizes[r])
        if 2 * b <= 64:
            nz = np.flatnonzero(truth.apply(w)[r])
            assert np.any(np.bincount(nz // (2 * b)) > 1)
    irr = from_zeros(truth.apply(w), "irregular")
    np.testing.assert_array_equal(irr.mask, truth.apply(w) != 0)
    with pytest.raises(DarbgenError, match="row 0 has two non-zeros closer"):
        from_zeros(np.ones((2, 8)), candidates=[2, 4])
    with pytest.raises(DarbgenError, match="every weight is zero"):
        from_zeros(np.zeros((2, 8)), "irregular")
    with pytest.raises(DarbgenError, match="'darb' and 'irregular'"):
        from_zeros(w, "block")


def test_train_errors(trained):
    with pytest.raises(DarbgenError, match="ratio must be a finite number > 1"):
        train.MaskedPruning(trained, 1)
    with pytest.raises(DarbgenError, match="nope: no prunable weight"):
        train.prune_masks(trained, 4, layers=["nope"])
    with pytest.raises(DarbgenError, match="no Linear, Conv1d/Conv2d, LSTM or GRU"):
        train.prunable(nn.Sequential(nn.ReLU()))
    deep = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    with pytest.raises(DarbgenError, match="one-layer"):
        train.activation_norms(deep, torch.zeros(2, 5, 4))
    with pytest.raises(DarbgenError, match="from the model's zeros; do not give --ratio"):
        build(copy.deepcopy(trained), ratio=4, from_zeros=True)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("conv", [
    lambda: nn.Conv1d(3, 5, 4, padding="same"),
    lambda: nn.Conv1d(3, 5, 3, stride=2, dilation=2, padding=2, padding_mode="circular"),
    lambda: nn.Conv2d(2, 4, (3, 4), padding="same"),
    lambda: nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"),
    lambda: nn.Conv2d(2, 4, 3, padding=(2, 1), stride=(2, 1), padding_mode="replicate"),
])
def test_captured_conv_inputs_rebuild_the_convolution(rng, conv):
    """The patches the hooks capture, times the weight matrix, are the layer's
    output, whatever the padding (so norms and refit see what the layer sees)."""
    torch.manual_seed(0)
    layer = conv().double()
    shape = (6, 3, 11) if isinstance(layer, nn.Conv1d) else (6, 2, 7, 9)
    x = torch.from_numpy(rng.standard_normal(shape))
    patches = train._capture(layer, [x], ["weight"])["weight"]
    with torch.no_grad():
        out = layer(x)
        unbatched = layer(x[0])
    w = layer.weight.detach().numpy().reshape(layer.out_channels, -1)
    got = patches @ w.T + layer.bias.detach().numpy()
    want = out.numpy().reshape(6, layer.out_channels, -1).transpose(0, 2, 1).reshape(-1, layer.out_channels)
    np.testing.assert_allclose(got, want, atol=1e-10)
    single = train._capture(layer, [x[0]], ["weight"])["weight"]
    np.testing.assert_allclose(single @ w.T + layer.bias.detach().numpy(),
                               unbatched.numpy().reshape(layer.out_channels, -1).T, atol=1e-10)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [True, False])
def test_captured_recurrent_inputs(rng, cls, batch_first):
    torch.manual_seed(0)
    rnn = cls(3, 5, batch_first=batch_first).double()
    x = torch.from_numpy(rng.standard_normal((4, 6, 3)))               # (batch, time, features)
    with torch.no_grad():
        hs = rnn(x if batch_first else x.transpose(0, 1))[0]
    hs = hs if batch_first else hs.transpose(0, 1)
    got = train._capture(rnn, [x if batch_first else x.transpose(0, 1)], ["weight_ih_l0", "weight_hh_l0"])
    np.testing.assert_allclose(got["weight_ih_l0"], x.numpy().reshape(-1, 3))
    prev = np.concatenate([np.zeros((4, 1, 5)), hs.numpy()[:, :-1]], axis=1)
    np.testing.assert_allclose(got["weight_hh_l0"], prev.reshape(-1, 5), atol=1e-12)
    one = train._capture(rnn, [x[0]], ["weight_ih_l0", "weight_hh_l0"])       # unbatched (time, features)
    np.testing.assert_allclose(one["weight_ih_l0"], x.numpy()[0])
    np.testing.assert_allclose(one["weight_hh_l0"], prev[0], atol=1e-12)


def test_masked_pruning_guards(trained, digits):
    model = copy.deepcopy(trained)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    with pytest.raises(DarbgenError, match="ratio 4 and m=8 disagree"):
        with train.MaskedPruning(model, 4, "nm", m=8, optimizer=opt):
            pass
    assert all(not p._backward_hooks for _, (_, p) in train.prunable(model).items())
    assert not opt._optimizer_step_post_hooks                          # nothing left behind
    with pytest.raises(DarbgenError, match="initial_ratio must be between 1"):
        train.MaskedPruning(model, 4, initial_ratio=8)
    batch, loss = loop(digits)
    with pytest.raises(DarbgenError, match="prune_steps .* must not exceed steps"):
        train.fine_tune(model, batch, loss, 4, steps=10, prune_steps=20)
    with pytest.warns(UserWarning, match="before the final 4"):
        with train.MaskedPruning(model, 4, steps=100, optimizer=opt):
            for _ in range(3):
                opt.zero_grad()
                loss(model, batch()).backward()
                opt.step()
    with pytest.warns(UserWarning, match="ended at ratio 2"):
        with train.MaskedPruning(copy.deepcopy(trained), 4, steps=10, start=5, initial_ratio=2) as p:
            assert p.ratio == 2                                # the initial ratio holds before the start


def test_torch_refit_is_never_worse_on_held_out_rows(rng):
    """darbgen.train.refit holds out every fourth input row of each matrix: per matrix and row the refit's
    held-out output error is at most the pruned layer's, and the report says so."""
    torch = pytest.importorskip("torch")
    from darbgen.refit import HOLDOUT_EVERY

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(48, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
    x = torch.from_numpy(rng.standard_normal((12, 48)))
    dense = [p.detach().clone() for p in net.parameters()]
    results = {n: darbgen.prune(p.detach().numpy(), 4, name=n) for n, (_, p) in train.prunable(net).items()}
    report = {}
    train.refit(net, results, x, report=report, sequential=False)
    assert set(report) == set(results)
    for r in report.values():
        assert r["heldout_error_refit"] <= r["heldout_error_pruned"] and 0 <= r["rows_refit"] <= r["rows"]
    held = np.arange(len(x)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    w0, b0 = dense[0].numpy(), dense[1].numpy()
    xs = x.numpy()[held]
    mask = results["0.weight"].mask
    before = np.sum((xs @ np.where(mask, w0, 0).T + b0 - (xs @ w0.T + b0)) ** 2, axis=0)
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    after = np.sum((xs @ w1.T + b1 - (xs @ w0.T + b0)) ** 2, axis=0)
    assert np.all(after <= before * (1 + 1e-9) + 1e-9)


# ----------------------------------------------------------------------------- reachable ratios

SMALL_FIRST = "0.weight (8 x 9)"        # Conv2d(1, 8, 3): 9 columns, DARB reaches 9 / ceil(9 / 8) = 4.5 at most


def small_first_layer_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 32), nn.ReLU(),
                         nn.Linear(32, 4))


def test_an_unreachable_layer_is_refused_before_any_training_step():
    import time

    model = small_first_layer_cnn()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    calls = []

    def loss(m, batch):
        calls.append(1)
        return m(batch).square().mean()

    t0 = time.perf_counter()
    with pytest.raises(DarbgenError) as info:
        train.fine_tune(model, lambda: torch.randn(4, 1, 8, 8), loss, 8, "darb", steps=2000)
    assert time.perf_counter() - t0 < 2
    message = str(info.value)
    assert message.startswith(SMALL_FIRST) and "reaches 1 to 4.5" in message
    assert "layers=['3.weight', '5.weight']" in message and "ratio= to at most 4.5" in message
    assert "--" not in message
    assert calls == []                                       # refused before the first step
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    with pytest.raises(DarbgenError, match=r"0\.weight \(8 x 9\): ratio=8 cannot be reached"):
        train.MaskedPruning(model, 8, steps=100)
    # the fix the message gives works: the small layer left dense, or a ratio it reaches
    with train.MaskedPruning(model, 8, layers=["3.weight", "5.weight"]) as p:
        assert set(p.results) == {"3.weight", "5.weight"} and p.done
    with train.MaskedPruning(small_first_layer_cnn(), 4.5) as p:
        assert p.results["0.weight"].ratio == pytest.approx(4.5)
    assert train.MaskedPruning(small_first_layer_cnn(), 4.5).reachable["0.weight"] == (1.0, 4.5)


def test_every_ratio_of_the_schedule_is_checked_not_only_the_final_one():
    model = small_first_layer_cnn()
    # candidates from 2: DARB reaches ratios from 9 / 5 = 1.8 on the first layer (2 on the others); the
    # schedule's first ratio (step 6 of 100) is 1.146
    cands = [2, 4, 8, 16, 32, 64, 128, 256]
    with pytest.raises(DarbgenError, match=r"reaches ratios from 1\.8 on this layer .*schedule starts at ratio "
                                           r"1\.146.*initial_ratio=1\.8"):
        train.MaskedPruning(model, 4, steps=100, candidates=cands)
    with pytest.warns(UserWarning, match="ended at ratio 2"), \
            train.MaskedPruning(model, 4, steps=100, initial_ratio=2, candidates=cands) as p:
        assert p.ratio == 2 and set(p.reachable.values()) == {(1.8, 9.0), (2.0, 144.0), (2.0, 32.0)}
    with pytest.raises(DarbgenError, match="drop m= .* steps=0"):      # a fixed N:M cannot follow a schedule
        train.MaskedPruning(model, 4, "nm", m=4, steps=100)
    with pytest.raises(DarbgenError, match=r"the model: ratio=900 cannot be reached by method 'darb' over its 3 "
                                           r"matrices together \(scope='global'\)"):
        train.MaskedPruning(model, 900, scope="global")
    with train.MaskedPruning(small_first_layer_cnn(), 8, scope="global") as p:    # globally the small layer is fine
        assert p.done


def test_api_errors_name_arguments_not_command_line_flags(rng):
    w = rng.standard_normal((10, 27)).astype(np.float32)
    with pytest.raises(DarbgenError) as info:
        darbgen.prune_model({"a": w}, 16)
    assert "ratio 16 cannot be reached" in str(info.value) and "Lower ratio= or allow larger candidates=" in \
        str(info.value) and "--" not in str(info.value)
    with pytest.raises(DarbgenError) as info:
        darbgen.prune(w, 1.5, candidates=[8, 16])
    assert "Raise ratio= or allow smaller candidates=" in str(info.value) and "--" not in str(info.value)
    model = small_first_layer_cnn()
    for call in (lambda: train.MaskedPruning(model, 8), lambda: train.MaskedPruning(model, 0.5),
                 lambda: train.MaskedPruning(model, 4, every=0), lambda: train.MaskedPruning(model, 4, steps=-1),
                 lambda: train.MaskedPruning(model, 4, "magic"), lambda: train.prune_masks(model, 4, layers=["x"]),
                 lambda: train.refit(model, {}, torch.zeros(8, 1, 8, 8), alpha=-1)):
        with pytest.raises(DarbgenError) as info:
            call()
        assert "--" not in str(info.value), str(info.value)


_SHAPES = st.tuples(st.integers(1, 12), st.integers(1, 40))
_METHODS = st.sampled_from([("darb", {}), ("darb", {"candidates": [2, 3, 8]}), ("irregular", {}), ("bmwm", {}),
                            ("bmwm", {"block": 4}), ("nm", {}), ("nm", {"n": 2}), ("nm", {"n": 1, "m": 4}),
                            ("bank_balanced", {}), ("bank_balanced", {"banks": 3}), ("block", {}),
                            ("block", {"tile": (2, 8)})])


@given(shape=_SHAPES, spec=_METHODS, seed=st.integers(0, 2 ** 16))
def test_reachable_ratio_is_where_prune_saturates(shape, spec, seed):
    """Within [lo, hi] prune accepts the ratio; above hi it raises or keeps what it keeps at hi (the
    method's limit on this shape); below lo (darb with large candidates) it raises."""
    from darbgen.pruning.api import reachable_ratio

    method, options = spec
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if method == "bank_balanced" and options.get("banks", 0) > shape[1]:
        with pytest.raises(DarbgenError, match="banks do not fit"):
            reachable_ratio(shape, method, **options)
        return
    lo, hi = reachable_ratio(shape, method, **options)
    if lo > hi:                                     # bmwm block=4 / nm m=4 wider than the row: nothing agrees
        assert method in ("bmwm", "nm") and shape[1] < 4
        return
    if hi <= 1:                                     # nothing to prune (one column, say)
        return
    at_hi = darbgen.prune(w, hi, method, **options)
    try:
        beyond = darbgen.prune(w, hi * 3, method, **{k: v for k, v in options.items() if k not in ("block", "m")})
        if not ("block" in options or "m" in options):
            assert beyond.kept == at_hi.kept, (beyond, at_hi)
    except DarbgenError as exc:
        assert "cannot be reached" in str(exc) or "keeps no weight" in str(exc)
    darbgen.prune(w, max(lo, 1.0001), method, **options)
    if method == "darb" and lo > 1:
        with pytest.raises(DarbgenError, match="cannot be reached"):
            darbgen.prune(w, lo * 0.99 if lo * 0.99 > 1 else 1.0001, method, **options)
