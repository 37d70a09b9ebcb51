"""Dense layers from a darbgen ``.npz`` file (docs/npz.md), pruned or not.

A file written by ``darbgen prune`` carries each pruned array's mask
(``NAME__mask``) and, for DARB / BMWM, its block sizes
(``NAME__block_sizes``); they come along so the packed kernel can use them.
"""
import os

import numpy as np

from ..errors import DarbgenError
from ..graph import ACTIVATIONS, Dense
from ..npzio import BLOCKS_SUFFIX, MASK_SUFFIX, RESULT_KEY, model_description

#: Arrays a model file may bundle as calibration inputs, in order of preference.
CALIBRATION_KEYS = ("calib.x", "test.x")


def pruning_mask(arrays, weight_key, source="the file", flat_ok=False):
    """The ``NAME__mask`` of ``weight_key`` as a bool array, None when absent.

    A mask is bool, or numbers that are all 0 or 1 (converted); its shape is
    the weight's (``flat_ok``: or the weight flattened to (out, rest), as for
    convolutions). Anything else is a DarbgenError naming the array."""
    key = weight_key + MASK_SUFFIX
    if key not in arrays:
        return None
    mask, w = np.asarray(arrays[key]), np.asarray(arrays[weight_key])
    shapes = [w.shape] + ([(w.shape[0], int(np.prod(w.shape[1:], dtype=np.int64)))] if flat_ok and w.ndim > 2 else [])
    if mask.shape not in shapes:
        raise DarbgenError(f"{source}: {key} has shape {mask.shape} but {weight_key} is {w.shape}; a mask has its "
                           f"weight's shape (True where a weight is kept): save it again or drop it")
    if mask.dtype == np.bool_:
        return mask
    if mask.dtype.kind not in "iuf":
        raise DarbgenError(f"{source}: {key} has dtype {mask.dtype}; a mask must be bool (True where a weight is "
                           f"kept), or numbers 0 / 1")
    bad = ~((mask == 0) | (mask == 1))       # NaN is neither
    if np.any(bad):
        value, at = mask[bad].flat[0].item(), tuple(int(i) for i in np.argwhere(bad)[0])
        raise DarbgenError(f"{source}: {key} ({mask.dtype}) holds {value!r} at {at}; "
                           f"a mask holds only 0 / 1 (best: bool, True where a weight is kept): save it as "
                           f"mask.astype(bool) or drop it")
    return mask != 0


def block_sizes(arrays, weight_key, source="the file"):
    """The ``NAME__block_sizes`` of ``weight_key`` (int64, one positive size per
    output row), None when absent; anything else is a DarbgenError."""
    key = weight_key + BLOCKS_SUFFIX
    if key not in arrays:
        return None
    bs, rows = np.asarray(arrays[key]), np.asarray(arrays[weight_key]).shape[0]
    if bs.dtype.kind not in "iu":
        raise DarbgenError(f"{source}: {key} has dtype {bs.dtype}; block sizes are integers (int64), one per row of "
                           f"{weight_key}: save them again or drop the array")
    if bs.shape != (rows,):
        raise DarbgenError(f"{source}: {key} has shape {bs.shape}; it needs one block size per row of {weight_key} "
                           f"({rows},): save it again or drop the array")
    if np.any(bs < 1) or np.any(bs > np.iinfo(np.int32).max):
        bad = bs[(bs < 1) | (bs > np.iinfo(np.int32).max)][0]
        raise DarbgenError(f"{source}: {key} holds the block size {int(bad)}; block sizes are positive integers "
                           f"(below 2**31): save them again or drop the array")
    return bs.astype(np.int64)


def _dense(arrays, name, weight_key, activation, source="the file"):
    w = arrays[weight_key]
    if w.ndim != 2:
        raise DarbgenError(f"{name}: {weight_key} has shape {w.shape}; a dense layer needs (out, in). "
                           f"Convolutions come with `darbgen build`")
    bias_key = weight_key[:-len(".weight")] + ".bias" if weight_key.endswith(".weight") else None
    bias = arrays.get(bias_key) if bias_key else None
    mask = pruning_mask(arrays, weight_key, source)
    blocks = block_sizes(arrays, weight_key, source)
    return Dense(name, w, bias, mask, blocks, activation)


def dense_layers(arrays, source="the file"):
    """(model name or None, [Dense], notes) from the arrays of an .npz file.

    With a ``__model__`` description, its layers in order (all must be
    ``dense``); a final softmax is left out (it does not change the predicted
    class; ``notes`` says so). Without one, every 2-D array other than masks,
    as independent layers without activation.
    """
    model = model_description(arrays, source)
    notes = []
    if model is None:
        keys = [k for k, a in arrays.items()
                if k != RESULT_KEY and not k.endswith((MASK_SUFFIX, BLOCKS_SUFFIX)) and k not in CALIBRATION_KEYS
                and np.issubdtype(a.dtype, np.number) and a.ndim == 2]
        if not keys:
            raise DarbgenError(f"{source}: holds no 2-D weight matrix to generate code for")
        names = [k[:-len(".weight")] if k.endswith(".weight") else k for k in keys]
        return None, [_dense(arrays, n, k, "none", source) for n, k in zip(names, keys)], notes
    layers = []
    described = model.get("layers") or []
    if not described:
        raise DarbgenError(f"{source}: __model__ lists no layers")
    for i, spec in enumerate(described):
        name = spec.get("name")
        kind = spec.get("kind")
        if kind != "dense":
            raise DarbgenError(f"{source}: layer {name!r} is {kind!r}; `darbgen generate` handles dense layers only "
                               f"(whole networks with other layers: `darbgen build`)")
        key = f"{name}.weight"
        if key not in arrays:
            raise DarbgenError(f"{source}: layer {name!r} has no array {key!r}")
        act = spec.get("activation") or "none"
        if act == "softmax":
            if i != len(described) - 1:
                raise DarbgenError(f"{source}: layer {name!r}: softmax is supported on the last layer only")
            notes.append(f"{name}: softmax left out; the C returns the logits (same predicted class)")
            act = "none"
        if act not in ACTIVATIONS:
            raise DarbgenError(f"{source}: layer {name!r}: activation {act!r} is not supported; choose one of "
                               f"{', '.join(ACTIVATIONS)}")
        layers.append(_dense(arrays, name, key, act, source))
    shape = model.get("input_shape")
    if shape is not None and int(np.prod(shape)) != layers[0].cols:
        raise DarbgenError(f"{source}: __model__ input_shape {list(shape)} holds {int(np.prod(shape))} values, but "
                           f"layer {layers[0].name!r} takes {layers[0].cols} inputs; fix input_shape or the weights")
    for a, b in zip(layers, layers[1:]):
        if a.rows != b.cols:
            raise DarbgenError(f"{source}: layer {a.name!r} has {a.rows} outputs, but the next layer {b.name!r} "
                               f"takes {b.cols} inputs; fix the weights or the order of __model__'s layers")
    return model.get("name"), layers, notes


def bundled_calibration(arrays):
    """(key, inputs) of calibration data bundled in the file, or (None, None)."""
    for key in CALIBRATION_KEYS:
        if key in arrays:
            return key, arrays[key]
    return None, None


def default_prefix(path, model_name):
    """The C prefix for a model: its described name, else the file name."""
    if model_name:
        return model_name
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


#: Layer kinds `model_from_npz` reads (more join as darbgen learns them).
SUPPORTED_KINDS = ("dense", "conv1d", "conv2d", "depthwiseconv2d", "maxpool1d", "avgpool1d", "maxpool2d", "avgpool2d",
                   "globalavgpool", "batchnorm", "lstm", "gru", "flatten", "activation", "softmax", "dropout")


def model_from_npz(arrays, source="the file"):
    """A :class:`~darbgen.graph.Model` from an .npz file that describes its
    network in ``__model__`` (docs/npz.md). Pruning results stored by
    ``darbgen prune`` (masks, block sizes) come along."""
    from ..graph import (GRU, LSTM, Activation, Conv1D, Conv2D, DepthwiseConv2D, Flatten, GlobalAveragePool,
                         Model, Pool1D, Pool2D, fold_batchnorm)

    model = model_description(arrays, source)
    if model is None:
        raise DarbgenError(f"{source}: has no __model__ description, so the network's layer order and activations "
                           f"are unknown; add one (docs/npz.md)")
    described = model.get("layers") or []
    if not described:
        raise DarbgenError(f"{source}: __model__ lists no layers")
    if "input_shape" not in model:
        raise DarbgenError(f"{source}: __model__ has no input_shape (e.g. [64])")
    layers = []
    for spec in described:
        name = spec.get("name")
        kind = spec.get("kind")
        if not name:
            raise DarbgenError(f"{source}: a layer in __model__ has no name")
        if kind not in SUPPORTED_KINDS:
            raise DarbgenError(f"{source}: layer {name!r} is of kind {kind!r}, which darbgen cannot build yet; "
                               f"supported: {', '.join(SUPPORTED_KINDS)}")
        act = spec.get("activation") or "none"
        if kind == "dense":
            key = f"{name}.weight"
            if key not in arrays:
                raise DarbgenError(f"{source}: layer {name!r} has no array {key!r}")
            layers.append(_dense(arrays, name, key, "none", source))
            if act != "none":
                layers.append(Activation(f"{name}.{act}", act))
        elif kind in ("conv1d", "conv2d"):
            key = f"{name}.weight"
            if key not in arrays:
                raise DarbgenError(f"{source}: layer {name!r} has no array {key!r}")
            cls = Conv1D if kind == "conv1d" else Conv2D
            w = arrays[key]
            want = 3 if kind == "conv1d" else 4
            if w.ndim != want:
                raise DarbgenError(f"{source}: {kind} layer {name!r}: {key} has shape {w.shape}; it needs {want} "
                                   f"dimensions ({'(out, in, k)' if want == 3 else '(out, in, kh, kw)'})")
            mask = pruning_mask(arrays, key, source, flat_ok=True)
            layers.append(cls(name, w, arrays.get(f"{name}.bias"), spec.get("stride", 1), spec.get("padding", "valid"),
                              spec.get("dilation", 1), mask, block_sizes(arrays, key, source)))
            if act != "none":
                layers.append(Activation(f"{name}.{act}", act))
        elif kind == "depthwiseconv2d":
            key = f"{name}.weight"
            if key not in arrays:
                raise DarbgenError(f"{source}: layer {name!r} has no array {key!r}")
            layers.append(DepthwiseConv2D(name, arrays[key], arrays.get(f"{name}.bias"), spec.get("stride", 1),
                                          spec.get("padding", "valid"), spec.get("dilation", 1)))
            if act != "none":
                layers.append(Activation(f"{name}.{act}", act))
        elif kind in ("maxpool1d", "avgpool1d", "maxpool2d", "avgpool2d"):
            cls = Pool1D if kind.endswith("1d") else Pool2D
            if "size" not in spec:
                raise DarbgenError(f"{source}: pooling layer {name!r} needs a size")
            layers.append(cls(name, kind[:3], spec["size"], spec.get("stride"), spec.get("padding", "valid")))
        elif kind in ("lstm", "gru"):
            keys = [f"{name}.{p}" for p in ("w_ih", "w_hh", "b_ih", "b_hh")]
            missing = [k for k in keys[:2] if k not in arrays]
            if missing:
                raise DarbgenError(f"{source}: {kind} layer {name!r} has no array {missing[0]!r}")
            bad = next((k for k in keys[:2] if np.asarray(arrays[k]).ndim != 2), None)
            if bad:
                raise DarbgenError(f"{source}: {kind} layer {name!r}: {bad} has shape {arrays[bad].shape}; it needs "
                                   f"a (gates * hidden, inputs or hidden) matrix")
            masks = {p: pruning_mask(arrays, f"{name}.{p}", source) for p in ("w_ih", "w_hh")}
            blocks = {p: block_sizes(arrays, f"{name}.{p}", source) for p in ("w_ih", "w_hh")}
            cls = LSTM if kind == "lstm" else GRU
            sequences = spec.get("return_sequences", False)
            if not isinstance(sequences, bool):
                raise DarbgenError(f"{source}: {kind} layer {name!r}: return_sequences must be true or false, got "
                                   f"{sequences!r}")
            layers.append(cls(name, arrays[keys[0]], arrays[keys[1]], arrays.get(keys[2]), arrays.get(keys[3]),
                              masks, blocks, sequences))
        elif kind == "globalavgpool":
            layers.append(GlobalAveragePool(name))
        elif kind == "batchnorm":
            prev = layers[-1] if layers else None
            missing = [f"{name}.{p}" for p in ("gamma", "beta", "mean", "var") if f"{name}.{p}" not in arrays]
            if missing:
                raise DarbgenError(f"{source}: batchnorm {name!r} needs the array {missing[0]!r}")
            if not isinstance(prev, (Conv1D, Conv2D, DepthwiseConv2D)) and type(prev).__name__ != "Dense":
                raise DarbgenError(f"{source}: batchnorm {name!r} must directly follow a dense or convolution "
                                   f"layer (activation after it) to be folded into it")
            layers[-1] = fold_batchnorm(prev, arrays[f"{name}.gamma"], arrays[f"{name}.beta"],
                                        arrays[f"{name}.mean"], arrays[f"{name}.var"], spec.get("eps", 1e-5), name)
            if act != "none":
                layers.append(Activation(f"{name}.{act}", act))
        elif kind == "flatten":
            layers.append(Flatten(name))
        elif kind in ("activation", "softmax"):
            layers.append(Activation(name, "softmax" if kind == "softmax" else act))
    return Model(model.get("name") or "model", tuple(model["input_shape"]), layers)
