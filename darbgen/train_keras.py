"""Masked fine-tuning of Keras 3 models: :class:`PruningCallback` (any backend).

Reach it as ``darbgen.train.PruningCallback``; importing :mod:`darbgen.train`
does not import keras, this module does (with ``KERAS_BACKEND=jax`` unless
keras is imported already or the variable is set)::

    cb = darbgen.train.PruningCallback(ratio=4, method="darb", steps=2000)
    model.fit(x, y, epochs=10, callbacks=[cb])
    model.save("pruned.keras")            # then: darbgen build pruned.keras --from-zeros ...

What is pruned: the kernels of ``Dense``, ``Conv1D`` and ``Conv2D``
(ungrouped) and the input and recurrent kernels of ``LSTM`` / ``GRU``, as
the matrices darbgen's Keras importer (:mod:`darbgen.importers.keras`) makes
of them: rows = outputs, a convolution kernel as (out, in*kh*kw) in
darbgen's channel-first column order, and the Dense after a Flatten of a
multi-channel tensor with its columns in darbgen's (C, H, W) order, so DARB's
blocks are the blocks the generated C stores. ``DepthwiseConv2D`` is not
pruned: darbgen keeps depthwise kernels dense (they hold few weights and its
depthwise kernel stores every one).

The schedule is :class:`darbgen.train.MaskedPruning`'s: the ratio rises on
the cubic schedule over ``steps`` optimizer steps, the pattern is derived
again every ``every`` steps, and once the final ratio is reached the masks
never change. The masks are re-applied after every optimizer step (train
batch end) and at the end of training, so the pruned weights are exactly zero
whenever the model is observed: in callbacks, validation, ``model.save``.
Keras gives callbacks no gradient hook, so between two steps a pruned weight
is updated by the optimizer and then set back to zero; each step starts from
the masked weights, so the kept weights train exactly as under fixed masks
(only a global-norm gradient clip would see the pruned weights' gradients).

The callback adds nothing to the model: no constraint, layer or variable, so
``model.save("m.keras")`` writes a plain Keras model.
"""
import warnings

import numpy as np

from .errors import DarbgenError
from .importers.keras import _RECURRENT, _SPATIAL_1D, GRU_ORDER, _import_keras, _Importer
from .pruning import prune_model
from .pruning.api import SCOPES, _check_options, check_reachable
from .train import check_every, check_schedule, cubic_ratio, first_ratio, schedule_due

keras = _import_keras()

_KINDS = "Dense, Conv1D, Conv2D, LSTM or GRU"


class _Matrix:
    """One pruned matrix: its Keras variable and the maps between the
    variable's layout and darbgen's (rows = outputs) matrix."""

    def __init__(self, name, layer, variable, to_matrix, to_kernel):
        self.name, self.layer, self.variable = name, layer, variable
        self.to_matrix, self.to_kernel = to_matrix, to_kernel
        shape = tuple(int(d) for d in variable.shape)
        self.shape = to_matrix(np.zeros(shape, bool)).shape

    def matrix(self):
        return self.to_matrix(np.asarray(keras.ops.convert_to_numpy(self.variable.value), np.float32))


def _dense(name, layer, perm):
    def to_matrix(k):
        return (k if perm is None else k[perm]).T

    def to_kernel(mask):
        if perm is None:
            return mask.T
        out = np.empty(mask.T.shape, bool)
        out[perm] = mask.T
        return out
    return [_Matrix(name, layer, layer.kernel, to_matrix, to_kernel)]


def _conv(name, layer):
    spatial = len(layer.kernel.shape) - 2                  # (k..., in, out)
    to_first = (spatial + 1, spatial) + tuple(range(spatial))  # -> (out, in, k...)
    back = tuple(np.argsort(to_first))

    def to_matrix(k):
        return k.transpose(to_first).reshape(k.shape[-1], -1)

    def to_kernel(mask):
        shape = tuple(int(d) for d in layer.kernel.shape)
        return mask.reshape(tuple(shape[i] for i in to_first)).transpose(back)
    return [_Matrix(name, layer, layer.kernel, to_matrix, to_kernel)]


def _recurrent(name, layer):
    hidden = int(layer.cell.units)
    gates = int(layer.cell.kernel.shape[1]) // hidden
    order = GRU_ORDER if type(layer).__name__ == "GRU" else tuple(range(gates))
    rows = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in order])   # darbgen's gate order

    def to_matrix(k):
        return k.T[rows]

    def to_kernel(mask):
        out = np.empty(mask.shape, bool)
        out[rows] = mask
        return out.T
    return [_Matrix(f"{name}.w_ih", layer, layer.cell.kernel, to_matrix, to_kernel),
            _Matrix(f"{name}.w_hh", layer, layer.cell.recurrent_kernel, to_matrix, to_kernel)]


def _flatten_permutations(model):
    """{id(Dense layer): permutation} for each Dense that darbgen's importer
    reads with its columns permuted (after a Flatten of a multi-channel
    tensor): the same walk as the importer's. Models the importer does not
    read (branches, nested models) get none."""
    try:
        chain = _Importer(keras, model, "", model.name).chain()
        kshape = tuple(int(d) for d in tuple(model.inputs[0].shape)[1:])
    except Exception:     # not one chain: darbgen build refuses it anyway, the masks stay in Keras' order
        return {}
    kinds = [type(layer).__name__ for layer in chain]
    first = next((k for k in kinds if k in _SPATIAL_1D or k in _RECURRENT), None)
    layout = "channels" if len(kshape) == 3 or (len(kshape) == 2 and first in _SPATIAL_1D) else \
        "vector" if len(kshape) == 1 else "sequence"
    perms, perm = {}, None
    for layer in chain:
        kind = type(layer).__name__
        if kind == "Flatten" and len(kshape) > 1:
            if layout == "channels" and kshape[-1] != 1:
                rank = len(kshape)
                perm = np.arange(int(np.prod(kshape))).reshape(kshape).transpose(
                    (rank - 1,) + tuple(range(rank - 1))).ravel()
            layout = "vector"
        elif kind == "Dense" and perm is not None:
            perms[id(layer)] = perm
            perm = None
        try:
            kshape = tuple(int(d) for d in layer.compute_output_shape((None,) + kshape)[1:])
        except Exception:
            return perms
    return perms


def _layers(model):
    """The model's layers, nested models' layers included, in order."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _layers(layer)
        else:
            out.append(layer)
    return out


def prunable(model, layers=None):
    """{name: matrix} of what :class:`PruningCallback` prunes in the Keras
    ``model``: Dense, Conv1D and Conv2D kernels under the layer's name, LSTM
    and GRU kernels as ``<layer>.w_ih`` and ``<layer>.w_hh`` (darbgen's
    names). ``layers``: layer or matrix names to keep (default all)."""
    if not getattr(model, "built", False):
        raise DarbgenError(f"the Keras model {model.name!r} is not built; give it an input (keras.Input(shape)) "
                           f"or call it on data first")
    perms = _flatten_permutations(model)
    kl = keras.layers
    found, refused = {}, {}
    for layer in _layers(model):
        if isinstance(layer, kl.DepthwiseConv2D):
            refused[layer.name] = ("darbgen keeps depthwise convolutions dense (its depthwise kernel stores every "
                                   "weight, so zeros would save nothing)")
        elif isinstance(layer, (kl.Conv1D, kl.Conv2D)) and getattr(layer, "groups", 1) != 1:
            refused[layer.name] = f"a grouped convolution (groups={layer.groups}), which darbgen has no kernel for"
        elif isinstance(layer, (kl.Conv1D, kl.Conv2D)):
            found[layer.name] = _conv(layer.name, layer)
        elif isinstance(layer, kl.Dense):
            found[layer.name] = _dense(layer.name, layer, perms.get(id(layer)))
        elif isinstance(layer, (kl.LSTM, kl.GRU)):
            found[layer.name] = _recurrent(layer.name, layer)
    everything = {m.name: m for ms in found.values() for m in ms}
    if layers is not None:
        if isinstance(layers, str):
            layers = [layers]
        chosen = {}
        for name in layers:
            if name in refused:
                raise DarbgenError(f"{name}: not prunable: {refused[name]}; leave it out of layers=")
            if name in found:
                chosen.update({m.name: m for m in found[name]})
            elif name in everything:
                chosen[name] = everything[name]
            else:
                raise DarbgenError(f"{name}: no prunable layer of that name (layers=); the model has: "
                                   f"{', '.join(found) or 'none'}")
        everything = {n: m for n, m in everything.items() if n in chosen}
    if not everything:
        raise DarbgenError(f"the Keras model {model.name!r} has no {_KINDS} kernel to prune")
    return everything


class PruningCallback(keras.callbacks.Callback):
    """Gradual masked pruning while ``model.fit`` trains (Keras 3, any backend).

    Args:
        ratio: the final pruning ratio (total / kept weights per matrix).
        method: ``darb`` (default) or any :data:`darbgen.METHODS` entry.
        steps: optimizer steps (train batches) over which the ratio rises
            from ``initial_ratio`` to ``ratio`` on the cubic schedule; 0
            prunes to ``ratio`` at once, when training begins.
        start: the step the schedule starts at (dense training before it).
        every: re-derive the masks every this many steps while the ratio
            rises (default: steps / 16, at least 1); once the final ratio is
            reached they never change again.
        layers: Keras layer names (or ``<layer>.w_ih`` / ``.w_hh``) to prune
            (default: every Dense, Conv1D, Conv2D, LSTM and GRU).
        scope, **options: as :func:`darbgen.prune_model` (``candidates``,
            ``block``, ``tile``, ``banks``, ``n``, ``m``; ``input_norms``
            {name: column norms} for activation-aware saliency).
        initial_ratio: the ratio before and at the schedule's start.

    Raises:
        DarbgenError when training begins, before any step: a layer cannot
        reach ``ratio`` (or the schedule's first ratio), naming the layer, the
        ratios it reaches and the fix (``layers=`` or a lower ``ratio=``); a
        model compiled with ``steps_per_execution`` > 1 (the masks are re-applied
        after every step, which needs a callback call per step).

    Attributes:
        results: {name: PruneResult} of the current masks (darbgen's matrix
            layout: rows = outputs, columns in the order of darbgen's import).
        ratio: the ratio of the current masks (the schedule's value).
        step_count: optimizer steps seen (over every ``fit`` it was used in).
        done: True once the final ratio is in place.
        reachable: {name: (lo, hi)} ratios each matrix reaches.
    """

    def __init__(self, ratio, method="darb", *, steps=0, start=0, every=None, layers=None, scope="layer",
                 initial_ratio=1.0, **options):
        super().__init__()
        self.final_ratio, self.steps, self.start, self.initial_ratio = check_schedule(ratio, steps, start,
                                                                                     initial_ratio)
        self.every = check_every(every, self.steps)
        if scope not in SCOPES:
            raise DarbgenError(f"unknown scope {scope!r}; choose 'layer' or 'global'")
        self.input_norms = options.pop("input_norms", None)
        _check_options(method, options, "PruningCallback")
        self.method, self.scope, self.layers, self.options = method, scope, layers, options
        self.results, self.reachable, self.ratio, self.step_count = {}, {}, 1.0, 0
        self.matrices, self._masks, self._for = None, {}, None

    # -- schedule and masks
    def ratio_at(self, step):
        """The schedule's ratio after ``step`` optimizer steps."""
        return cubic_ratio(step, self.final_ratio, self.steps, self.start, self.initial_ratio)

    @property
    def done(self):
        """True once the final ratio is in place (masks fixed from then on)."""
        return self.ratio == self.final_ratio

    def setup(self, model):
        """Find the matrices to prune in ``model`` and check each one's
        reachable ratio (done when training begins; call it to check
        earlier)."""
        self.matrices = prunable(model, self.layers)
        shapes = {n: m.shape for n, m in self.matrices.items()}
        lowest = first_ratio(self.final_ratio, self.steps, self.start, self.every, self.initial_ratio)
        self.reachable = check_reachable(shapes, self.final_ratio, self.method, scope=self.scope, lowest=lowest,
                                         **self.options)
        self._for = model

    def prune(self, ratio):
        """Derive the masks from the current weights at ``ratio`` and apply them."""
        if ratio <= 1.0 + 1e-9:
            self.results, self._masks, self.ratio = {}, {}, float(ratio)
            return
        matrices = {n: m.matrix() for n, m in self.matrices.items()}
        norms = None if self.input_norms is None else {n: v for n, v in self.input_norms.items() if n in matrices}
        results = dict(prune_model(matrices, ratio, self.method, scope=self.scope, input_norms=norms,
                                   **self.options).items())
        self._masks = {n: keras.ops.convert_to_tensor(self.matrices[n].to_kernel(np.asarray(r.mask, bool)))
                       for n, r in results.items()}
        self.results, self.ratio = results, float(ratio)
        self.apply()

    def apply(self):
        """Set the pruned weights to zero (+0.0) in the model."""
        for n, mask in self._masks.items():
            v = self.matrices[n].variable
            value = v.value
            v.assign(keras.ops.where(mask, value, keras.ops.zeros_like(value)))

    # -- Keras hooks
    def on_train_begin(self, logs=None):
        model = self.model
        if int(getattr(model, "steps_per_execution", 1) or 1) != 1:
            raise DarbgenError(f"PruningCallback re-applies the masks after every optimizer step, which a callback "
                               f"can only do with steps_per_execution=1 (the model was compiled with "
                               f"{model.steps_per_execution}): compile it with steps_per_execution=1")
        if self._for is not model:
            self.setup(model)
            self.prune(self.ratio_at(self.step_count))
        else:                             # another fit(): the schedule goes on where it was
            self.apply()

    def on_train_batch_end(self, batch, logs=None):
        self.model                        # noqa: B018  (on JAX, puts the trained state back into the variables)
        self.step_count += 1
        if schedule_due(self.step_count, self.ratio, self.final_ratio, self.steps, self.start, self.every):
            self.prune(self.ratio_at(self.step_count))
        else:
            self.apply()

    def on_train_end(self, logs=None):
        self.model                        # noqa: B018
        self.apply()
        if not self.done:
            warnings.warn(f"masked pruning ended at ratio {self.ratio:.3g}, before the final {self.final_ratio:g} "
                          f"(the schedule needs {self.start + self.steps} optimizer steps, {self.step_count} were "
                          f"seen): train longer or lower steps=", stacklevel=2)
