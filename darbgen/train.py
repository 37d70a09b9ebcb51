"""Masked fine-tuning and one-shot refit of PyTorch models (``pip install torch``),
and :class:`PruningCallback`, masked fine-tuning for Keras 3 (any backend;
:mod:`darbgen.train_keras`, imported only when asked for).

What is pruned: the weight matrices of ``nn.Linear``, ``nn.Conv1d`` /
``nn.Conv2d`` (ungrouped; a kernel (out, in, k...) is pruned as the matrix
(out, in*k...)) and of ``nn.LSTM`` / ``nn.GRU`` (``weight_ih_l<k>`` and
``weight_hh_l<k>``, one row per gate unit). They are named by their
parameter names (``fc1.weight``, ``rnn.weight_hh_l0``).

Fine-tuning, in your own training loop::

    pruning = darbgen.train.MaskedPruning(model, ratio=16, method="darb", steps=2000, optimizer=opt)
    with pruning:
        for x, y in batches:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()   # masks follow every step

The ratio rises from 1 to 16 over the first 2000 optimizer steps on the
cubic schedule of Zhu and Gupta (2017); every ``every`` steps the pattern is
derived again from the current weights (DARB: irregular pass, per-row block
sizes, block maximum). Between re-derivations the masks are fixed: pruned
weights get zero gradients and are set back to zero after every optimizer
step, so no optimizer state (momentum, Adam) can revive them. Without an
``optimizer=``, call ``pruning.step()`` after each optimizer step. When the
loop ends the model holds zeros where it is pruned; ``darbgen build`` with
``--from-zeros`` (or ``build(..., ratio="zeros")``) takes those zeros as the
mask. :func:`fine_tune` is a ready loop for the common case.

Before any training step, every layer's reachable ratio is checked
(:func:`darbgen.pruning.api.reachable_ratio`): a ratio a small layer cannot
reach is refused at once, naming the layer, what it reaches and the fix.

One-shot, without retraining: :func:`activation_norms` (saliency
|w| * ||x||) and :func:`refit` (least-squares refit of the kept weights on
calibration inputs, :mod:`darbgen.refit`).
"""
import math

import numpy as np

from .errors import DarbgenError
from .pruning import prune_model
from .pruning.api import check_reachable

_RECURRENT = ("LSTM", "GRU")


def _torch():
    try:
        import torch
    except ImportError:
        raise DarbgenError("darbgen.train needs PyTorch: pip install torch") from None
    return torch


# ----------------------------------------------------------------------------- what is pruned

def prunable(model, layers=None):
    """{parameter name: (module, parameter)} of the weight matrices pruned in
    ``model``, in registration order. ``layers``: names to keep (parameter
    names such as ``fc1.weight``, or module names such as ``fc1``)."""
    torch = _torch()
    nn = torch.nn
    out = {}
    for mod_name, mod in model.named_modules():
        prefix = mod_name + "." if mod_name else ""
        if isinstance(mod, nn.Linear):
            out[prefix + "weight"] = (mod, mod.weight)
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            if mod.groups == 1:
                out[prefix + "weight"] = (mod, mod.weight)
        elif type(mod).__name__ in _RECURRENT and isinstance(mod, nn.RNNBase):
            for pname, p in mod.named_parameters(recurse=False):
                if pname.startswith("weight_"):
                    out[prefix + pname] = (mod, p)
    if layers is not None:
        wanted = set(layers)
        chosen = {n: v for n, v in out.items() if n in wanted or n.rsplit(".", 1)[0] in wanted}
        found = {n for n in wanted if n in chosen or any(c.rsplit(".", 1)[0] == n for c in chosen)}
        missing = sorted(wanted - found)
        if missing:
            raise DarbgenError(f"{missing[0]}: no prunable weight of that name; the model has: {', '.join(out)}")
        out = chosen
    if not out:
        raise DarbgenError("the model has no Linear, Conv1d/Conv2d, LSTM or GRU weights to prune")
    return out


def _matrix(param):
    w = param.detach().cpu().double().numpy().astype(np.float32)
    return w.reshape(w.shape[0], -1)


def prune_masks(model, ratio, method="darb", *, layers=None, input_norms=None, scope="layer", **options):
    """Masks for the model's current weights, without changing them.

    Args:
        model: a torch.nn.Module.
        ratio, method, scope, **options: as :func:`darbgen.prune_model`.
        layers: which weights (see :func:`prunable`; default all).
        input_norms: {parameter name: per-column norms} for activation-aware
            saliency (see :func:`activation_norms`).

    Returns:
        {parameter name: PruneResult} (masks as 2-D matrices, rows = outputs).
    """
    params = prunable(model, layers)
    matrices = {n: _matrix(p) for n, (_, p) in params.items()}
    norms = None if input_norms is None else {n: v for n, v in input_norms.items() if n in matrices}
    return dict(prune_model(matrices, ratio, method, scope=scope, input_norms=norms, **options).items())


def apply_masks(model, results):
    """Set the pruned weights of ``model`` to zero, in place; ``results``
    maps parameter names to PruneResults or bool arrays."""
    torch = _torch()
    params = prunable(model)
    with torch.no_grad():
        for name, r in results.items():
            if name not in params:
                raise DarbgenError(f"{name}: no prunable weight of that name in the model")
            p = params[name][1]
            mask = _mask_tensor(r, p)
            p.mul_(mask)


def _mask_tensor(result, param):
    torch = _torch()
    mask = np.asarray(getattr(result, "mask", result), bool)
    if mask.size != param.numel():
        raise DarbgenError(f"mask of {mask.size} entries does not fit a weight of shape {tuple(param.shape)}")
    return torch.from_numpy(mask.reshape(tuple(param.shape)).copy()).to(param.device, param.dtype)


# ----------------------------------------------------------------------------- schedule

def cubic_ratio(step, final_ratio, steps, start=0, initial_ratio=1.0):
    """The pruning ratio at optimizer step ``step`` on Zhu and Gupta's cubic
    schedule: sparsity s(t) = s_f + (s_i - s_f) (1 - (t - start) / steps)^3,
    rising fast at first and levelling off; ratio = 1 / (1 - s). Before
    ``start`` the ratio is ``initial_ratio``, from ``start + steps`` on it is
    ``final_ratio``."""
    if steps <= 0 or step >= start + steps:
        return float(final_ratio)
    if step <= start:
        return float(initial_ratio)
    s_i, s_f = 1 - 1 / initial_ratio, 1 - 1 / final_ratio
    s = s_f + (s_i - s_f) * (1 - (step - start) / steps) ** 3
    return 1 / (1 - s)


def first_ratio(final_ratio, steps, start=0, every=1, initial_ratio=1.0):
    """The first (so the smallest) ratio above 1 the gradual schedule prunes
    at: what the reachable-ratio check tests at the low end."""
    if steps <= 0:
        return float(final_ratio)
    if initial_ratio > 1 + 1e-9:
        return float(initial_ratio)
    for step in range(start + every, start + steps, every):
        r = cubic_ratio(step, final_ratio, steps, start, initial_ratio)
        if r > 1 + 1e-9:
            return r
    return float(final_ratio)


def schedule_due(step, ratio, final_ratio, steps, start, every):
    """Whether the masks are derived again after optimizer step ``step``
    (``ratio``: the current masks' ratio): every ``every`` steps from
    ``start`` while the ratio rises, once more at the end, then never."""
    if step < start:
        return False
    if step >= start + steps:
        return ratio != final_ratio
    return (step - start) % every == 0


def check_schedule(final_ratio, steps, start, initial_ratio):
    """The schedule's arguments, checked; returns (ratio, steps, start, initial_ratio)."""
    final = float(final_ratio) if isinstance(final_ratio, (int, float, np.integer, np.floating)) and \
        not isinstance(final_ratio, bool) else float("nan")
    if not (math.isfinite(final) and final > 1):
        raise DarbgenError(f"ratio must be a finite number > 1 (16 keeps 1 weight in 16), got {final_ratio!r}")
    for value, what in ((steps, "steps"), (start, "start")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DarbgenError(f"{what} must be a whole number >= 0 (optimizer steps), got {value!r}")
    if not (1.0 <= float(initial_ratio) <= final):
        raise DarbgenError(f"initial_ratio must be between 1 and the final ratio {final:g}, got {initial_ratio!r}")
    return final, int(steps), int(start), float(initial_ratio)


def check_every(every, steps):
    """``every`` (default steps / 16, at least 1), checked."""
    if every is None:
        return max(1, steps // 16)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise DarbgenError(f"every must be a whole number >= 1 (optimizer steps between re-derivations), "
                           f"got {every!r}")
    return int(every)


# ----------------------------------------------------------------------------- masked fine-tuning

class MaskedPruning:
    """Gradual pruning with fixed masks between updates, for any training loop.

    Args:
        model: the torch.nn.Module to prune (changed in place).
        ratio: the final pruning ratio (total / kept weights per matrix).
        method: ``darb`` (default) or any :data:`darbgen.METHODS` entry.
        steps: optimizer steps over which the ratio rises from
            ``initial_ratio`` to ``ratio`` (cubic schedule); 0 prunes to
            ``ratio`` at once, on entering.
        start: the step the schedule starts at (dense training before it).
        every: re-derive the masks every this many steps while the ratio
            rises (default: steps / 16, at least 1). Once the final ratio is
            reached the masks never change again.
        optimizer: if given, masks are re-applied by a hook after each of
            its ``step()`` calls; otherwise call :meth:`step` yourself.
        layers, scope, input_norms, **options: as :func:`prune_masks`.

    Raises:
        DarbgenError, before any training, when a layer cannot reach
        ``ratio`` (or the schedule's first ratio) with ``method``: the
        message names the layer, the ratios it reaches
        (:func:`darbgen.pruning.api.reachable_ratio`) and the fix (leave it
        dense with ``layers=``, or a lower ``ratio=``).

    Attributes:
        results: {parameter name: PruneResult} of the current masks.
        ratio: the ratio of the current masks (the schedule's value).
        step_count: optimizer steps seen.
        reachable: {parameter name: (lo, hi)} ratios each matrix reaches.
    """

    def __init__(self, model, ratio, method="darb", *, steps=0, start=0, every=None, optimizer=None,
                 layers=None, scope="layer", input_norms=None, initial_ratio=1.0, **options):
        self.model, self.method = model, method
        self.final_ratio, self.steps, self.start, self.initial_ratio = check_schedule(ratio, steps, start,
                                                                                     initial_ratio)
        self.every = check_every(every, self.steps)
        self.optimizer, self.scope = optimizer, scope
        self.input_norms, self.options = input_norms, options
        self.params = prunable(model, layers)
        # every layer's reachable ratios, checked before any training step (a ratio out of reach used to fail
        # only when the rising schedule got there)
        shapes = {n: (p.shape[0], int(np.prod(p.shape[1:]))) for n, (_, p) in self.params.items()}
        self.reachable = check_reachable(shapes, self.final_ratio, method, scope=scope, lowest=first_ratio(
            self.final_ratio, self.steps, self.start, self.every, self.initial_ratio), **options)
        self.results, self.ratio, self.step_count = {}, 1.0, 0
        self._masks, self._hooks = {}, []

    # -- masks
    def ratio_at(self, step):
        return cubic_ratio(step, self.final_ratio, self.steps, self.start, self.initial_ratio)

    def prune(self, ratio):
        """Derive the masks from the current weights at ``ratio`` and apply them."""
        if ratio <= 1.0 + 1e-9:
            self.results, self._masks, self.ratio = {}, {}, float(ratio)
            return
        results = prune_masks(self.model, ratio, self.method, layers=list(self.params), scope=self.scope,
                              input_norms=self.input_norms, **self.options)
        self._masks = {n: _mask_tensor(r, self.params[n][1]) for n, r in results.items()}
        self.results, self.ratio = results, float(ratio)
        self.apply()

    def apply(self):
        """Zero the pruned weights (after an optimizer step)."""
        torch = _torch()
        with torch.no_grad():
            for n, m in self._masks.items():
                self.params[n][1].mul_(m)

    def _due(self, step):
        return schedule_due(step, self.ratio, self.final_ratio, self.steps, self.start, self.every)

    def step(self):
        """Advance one optimizer step: re-derive the masks if the schedule
        says so, then re-apply them."""
        self.step_count += 1
        if self._due(self.step_count):
            self.prune(self.ratio_at(self.step_count))
        else:
            self.apply()

    @property
    def done(self):
        """True once the final ratio is in place (masks fixed from then on)."""
        return self.ratio == self.final_ratio

    # -- hooks
    def __enter__(self):
        try:
            self.prune(self.ratio_at(0))
            for name, (_, p) in self.params.items():
                self._hooks.append(p.register_hook(self._grad_hook(name)))
            if self.optimizer is not None:
                self._hooks.append(self.optimizer.register_step_post_hook(lambda *_: self.step()))
        except BaseException:
            self._remove_hooks()
            raise
        return self

    def __exit__(self, exc_type, *exc):
        self._remove_hooks()
        self.apply()
        if exc_type is None and not self.done:
            import warnings

            warnings.warn(f"masked pruning ended at ratio {self.ratio:.3g}, before the final {self.final_ratio:g} "
                          f"(the schedule needs {self.start + self.steps} optimizer steps, {self.step_count} were "
                          f"seen)", stacklevel=2)
        return False

    def _remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _grad_hook(self, name):
        def hook(grad):
            mask = self._masks.get(name)
            return grad if mask is None else grad * mask
        return hook


def fine_tune(model, batches, loss_fn, ratio, method="darb", *, steps=1000, prune_steps=None, lr=1e-3,
              weight_decay=0.0, cosine=False, every=None, layers=None, progress=False, **options):
    """Prune ``model`` gradually while training it, with Adam; returns the
    :class:`MaskedPruning` (its ``results`` are the final masks).

    Args:
        batches: an iterable of batches, iterated again when exhausted (a
            DataLoader, a list of tensors...), or a callable returning one batch.
        loss_fn: ``loss_fn(model, batch)`` -> scalar loss tensor.
        ratio, method, layers, every, **options: as :class:`MaskedPruning`.
        steps: optimizer steps in all.
        prune_steps: steps over which the ratio rises (default: half of ``steps``;
            the rest trains with the final masks fixed).
        lr, weight_decay: Adam's; ``cosine``: decay the learning rate to 0
            over the run on a cosine, else keep it constant (default: measured
            better on the digits CNN, where the steps after the final ratio need
            a learning rate that can still move weights).
    """
    torch = _torch()
    prune_steps = steps // 2 if prune_steps is None else int(prune_steps)
    if prune_steps > steps:
        raise DarbgenError(f"prune_steps ({prune_steps}) must not exceed steps ({steps}): the final ratio would "
                           f"never be reached")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps)) if cosine else None
    pruning = MaskedPruning(model, ratio, method, steps=prune_steps, every=every, optimizer=optimizer,
                            layers=layers, **options)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc=f"fine-tune {method} {ratio:g}x", unit="step", leave=False)
    model.train()
    stream = _batches(batches)
    with pruning:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, next(stream))
            if not torch.isfinite(loss):
                raise DarbgenError(f"fine-tuning diverged (loss {float(loss)}); lower lr (now {lr:g})")
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    return pruning


def _batches(batches):
    if callable(batches):
        while True:
            yield batches()
    while True:
        empty = True
        for b in batches:
            empty = False
            yield b
        if empty:
            raise DarbgenError("fine_tune got no batches")


# ----------------------------------------------------------------------------- calibration inputs

def _inputs_of(module, args, kwargs, output):
    """{suffix: (rows, cols) inputs each weight of ``module`` multiplies}, as
    the module saw them in this call."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional
    x = args[0] if args else kwargs.get("input")
    if isinstance(module, nn.Linear):
        return {"weight": x.reshape(-1, module.in_features)}
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        two_d = isinstance(module, nn.Conv2d)
        if x.dim() == (2 if not two_d else 3):                  # unbatched
            x = x.unsqueeze(0)
        # the padding exactly as the module applies it (zeros, 'same', reflect, replicate, circular)
        pads = list(module._reversed_padding_repeated_twice)
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        x = F.pad(x, pads, mode=mode) if any(pads) else x
        if not two_d:
            x = x.unsqueeze(2)
        k = module.kernel_size if two_d else (1,) + tuple(module.kernel_size)
        st = module.stride if two_d else (1,) + tuple(module.stride)
        dil = module.dilation if two_d else (1,) + tuple(module.dilation)
        cols = F.unfold(x, k, dilation=dil, stride=st)          # (n, C*kh*kw, L)
        return {"weight": cols.transpose(1, 2).reshape(-1, cols.shape[1])}
    # recurrent, one layer, h0 = 0
    name = type(module).__name__
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise DarbgenError(f"{name}: refit and activation norms need padded tensors, not PackedSequence inputs")
    if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
        raise DarbgenError(f"{name}: refit and activation norms take one-layer, one-direction recurrent layers "
                           f"(stack nn.{name} modules instead of num_layers)")
    if (len(args) > 1 and args[1] is not None) or kwargs.get("hx") is not None:
        raise DarbgenError(f"{name}: calibration runs must start from a zero state (no hx)")
    seq = output[0]
    if x.dim() == 2:                                            # unbatched (T, F)
        x, seq = x.unsqueeze(0), seq.unsqueeze(0)
    elif not module.batch_first:
        x, seq = x.transpose(0, 1), seq.transpose(0, 1)
    prev = torch.cat([torch.zeros_like(seq[:, :1]), seq[:, :-1]], dim=1)
    return {"weight_ih_l0": x.reshape(-1, x.shape[-1]), "weight_hh_l0": prev.reshape(-1, prev.shape[-1])}


def _capture(model, batches, names):
    """{parameter name: float64 inputs} for the named weights over the
    calibration batches, in the order the forward pass reaches them."""
    torch = _torch()
    params = prunable(model)
    modules = {}
    for n in names:
        mod, _ = params[n]
        modules.setdefault(id(mod), (mod, n.rsplit(".", 1)[0] if "." in n else ""))
    got = {}

    def make(prefix):
        def hook(module, args, kwargs, output):
            for suffix, v in _inputs_of(module, args, kwargs, output).items():
                key = f"{prefix}.{suffix}" if prefix else suffix
                if key in names:
                    got.setdefault(key, []).append(v.detach().cpu().double().numpy())
        return hook

    handles = [mod.register_forward_hook(make(prefix), with_kwargs=True) for mod, prefix in modules.values()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(*batch) if isinstance(batch, tuple) else model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    missing = [n for n in names if n not in got]
    if missing:
        raise DarbgenError(f"{missing[0]}: its layer never ran on the calibration inputs")
    return {n: np.concatenate(v) for n, v in got.items()}


def _calib_batches(model, calib):
    """The calibration inputs as a list of batches (a tensor or array is one
    batch; a tuple or list inside an iterable is the model's positional
    arguments), floating inputs cast to the model's parameter dtype."""
    torch = _torch()
    dtype = next(model.parameters()).dtype

    def cast(t):
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(t)
        return t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    if isinstance(calib, (torch.Tensor, np.ndarray)):
        return [cast(calib)]
    batches = [tuple(cast(t) for t in b) if isinstance(b, (tuple, list)) else cast(b) for b in calib]
    if not batches:
        raise DarbgenError("no calibration inputs (an empty iterable)")
    return batches


def activation_norms(model, calib, layers=None):
    """{parameter name: L2 norm of each input column over the calibration
    inputs} (``calib``: a tensor, or an iterable of batches), for
    activation-aware saliency |w| * ||x||."""
    names = list(prunable(model, layers))
    captured = _capture(model, _calib_batches(model, calib), names)
    return {n: np.sqrt(np.sum(np.square(v), axis=0)) for n, v in captured.items()}


def refit(model, results, calib, *, alpha=None, sequential=True, holdout=True, report=None):
    """Prune ``model`` (dense, changed in place) with the masks of
    ``results`` and refit every pruned matrix's kept weights and bias by
    least squares so its outputs match the dense layer's on ``calib``
    (:mod:`darbgen.refit`). ``sequential``: fit each layer on the inputs the
    already refit layers before it produce. ``holdout`` (default): every
    fourth row of each matrix's inputs is held out, the ridge strength is the
    best of :data:`darbgen.refit.ALPHAS` on them (or ``alpha``), and rows
    whose refit is not better there keep their pruned values, as
    :func:`darbgen.refit.refit_model` does; ``report`` gets the same figures.
    ``holdout=False``: the plain refit on every row at ``alpha`` (default
    :data:`darbgen.refit.DEFAULT_ALPHA`). Returns the model."""
    import copy

    from .refit import ALPHAS, DEFAULT_ALPHA, HOLDOUT_EVERY, Gram, check_alpha, refit_matrix

    torch = _torch()
    if alpha is not None:
        check_alpha(alpha, "refit: alpha")
    alphas = (DEFAULT_ALPHA if alpha is None else alpha,) if not holdout else (ALPHAS if alpha is None else (alpha,))
    params = prunable(model)
    unknown = [n for n in results if n not in params]
    if unknown:
        raise DarbgenError(f"{unknown[0]}: no prunable weight of that name in the model")
    batches = _calib_batches(model, calib)
    dense_model = copy.deepcopy(model)
    dense_inputs = _capture(dense_model, batches, list(results))     # in forward order
    dense_params = prunable(dense_model)
    apply_masks(model, results)
    groups = {}                                   # the matrices of one module are fit from one capture
    for name in dense_inputs:
        groups.setdefault(id(params[name][0]), []).append(name)
    for names in groups.values():
        pruned_inputs = _capture(model, batches, names) if sequential else dense_inputs
        for name in names:
            mod, p = params[name]
            bias_suffix = name.rsplit(".", 1)[-1].replace("weight", "bias", 1)
            bias = dict(mod.named_parameters(recurse=False)).get(bias_suffix)
            dense_mod, dense_p = dense_params[name]
            dense_bias = dict(dense_mod.named_parameters(recurse=False)).get(bias_suffix)
            matrix = _matrix(dense_p)
            xp, xd = np.asarray(pruned_inputs[name], np.float64), np.asarray(dense_inputs[name], np.float64)
            held = (np.arange(len(xp)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) & holdout
            if holdout and (held.sum() == 0 or (~held).sum() == 0):
                raise DarbgenError(f"{name}: a refit needs at least {HOLDOUT_EVERY} rows of calibration inputs "
                                   f"(a quarter is held out to check it), got {len(xp)}")
            gram = Gram(matrix.shape[1]).add(xp[~held], xd[~held])
            b = None if dense_bias is None else dense_bias.detach().cpu().double().numpy()
            mask = np.asarray(getattr(results[name], "mask", results[name]), bool).reshape(matrix.shape)
            b0 = np.zeros(matrix.shape[0]) if b is None else b
            pw = np.where(mask, matrix, 0.0)
            held_gram = Gram(matrix.shape[1]).add(xp[held], xd[held]) if holdout else None
            best = None
            for a in alphas:
                w_a, b_a = refit_matrix(matrix, b, mask, gram, a, name, fit_bias=bias is not None)
                if not holdout:
                    best = (None, w_a, b_a, a)
                    break
                err = held_gram.row_errors(w_a, b_a, matrix, b0)
                if best is None or err.sum() < best[0].sum():
                    best = (err, w_a, b_a, a)
            err, new_w, new_b, chosen = best
            if holdout:
                before = held_gram.row_errors(pw, b0, matrix, b0)
                better = err < before
                new_w = np.where(better[:, None], new_w, pw).astype(np.float32)
                new_b = np.where(better, new_b, b0).astype(np.float32)
                if report is not None:
                    report[name] = {"alpha": chosen, "rows": int(len(better)), "rows_refit": int(better.sum()),
                                    "heldout_error_pruned": float(before.sum()),
                                    "heldout_error_refit": float(np.where(better, err, before).sum())}
            with torch.no_grad():
                p.copy_(torch.from_numpy(new_w.reshape(tuple(p.shape))).to(p.dtype))
                if bias is not None:
                    bias.copy_(torch.from_numpy(new_b).to(bias.dtype))
    return model


# ----------------------------------------------------------------------------- Keras

def __getattr__(name):
    # PruningCallback subclasses keras.callbacks.Callback: keras is imported only when it is asked for.
    if name == "PruningCallback":
        from .train_keras import PruningCallback

        return PruningCallback
    raise AttributeError(f"module 'darbgen.train' has no attribute {name!r}")
