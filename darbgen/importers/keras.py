"""A Keras 3 model into darbgen's layer graph (docs/keras.md).

Reads a ``keras.Sequential`` or functional ``keras.Model`` (in memory, or a
``.keras`` file loaded with ``safe_mode=True``) that is a single chain of
layers from one input to one output, and maps each layer onto a layer of
:mod:`darbgen.graph`.

Keras is channels-last, darbgen channel-first: convolution kernels are
transposed to (out, in, kh, kw), the model's ``input_shape`` is channel first
((C, H, W) for an (H, W, C) Keras input, (C, L) for an (L, C) one feeding a
1-D convolution) and the first Dense after a Flatten of a multi-channel tensor
has its weight columns permuted, because Keras flattens in (H, W, C) order and
darbgen in (C, H, W) order. Users feed ``x.transpose(0, 3, 1, 2)`` (2-D) or
``x.transpose(0, 2, 1)`` (1-D) to the darbgen model and its C. Sequences for
LSTM / GRU keep Keras' (steps, features) layout.

``keras`` is imported only when a model is read. Before that, the
environment variable ``KERAS_BACKEND`` is set to ``jax`` if the user has not
set it (it only matters if keras is not imported yet).
"""
import json
import os
import zipfile

import numpy as np

from ..codegen.names import LayerNames
from ..errors import DarbgenError
from ..graph import (GRU, LSTM, Activation, Conv1D, Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePool,
                     Model, Pool1D, Pool2D, fold_batchnorm)

#: the Keras layer classes ``model_from_keras`` maps onto layers
SUPPORTED_LAYERS = ("InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D",
                    "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
                    "BatchNormalization", "Activation", "ReLU", "Softmax", "Dropout", "SpatialDropout1D",
                    "SpatialDropout2D", "Flatten", "LSTM", "GRU")
#: Keras activation names and what darbgen calls them
ACTIVATIONS = {"linear": "none", "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
               "softmax": "softmax"}
#: Keras gate order -> PyTorch's (darbgen's): LSTM i, f, c, o is already i, f, g, o; GRU z, r, h -> r, z, n.
GRU_ORDER = (1, 0, 2)

_WEIGHT_LAYERS = (Dense, Conv1D, Conv2D, DepthwiseConv2D)
_SPATIAL_1D = ("Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "SpatialDropout1D")
_RECURRENT = ("LSTM", "GRU")
_SKIPPED = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D")
_INSTALL = 'pip install keras "jax[cpu]"'


def _import_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as exc:
        raise DarbgenError(f"reading Keras models needs Keras 3 and a backend ({exc.name or 'keras'} is missing): "
                           f"{_INSTALL}") from None
    version = getattr(keras, "__version__", "0")
    if int(version.split(".")[0]) < 3:
        raise DarbgenError(f"reading Keras models needs Keras 3, this is keras {version}: {_INSTALL}")
    return keras


def _find_class(config, class_name):
    """The name of the first layer of ``class_name`` in a saved model's config (None if there is none)."""
    if isinstance(config, dict):
        if config.get("class_name") == class_name:
            inner = config.get("config")
            return (inner.get("name") if isinstance(inner, dict) else None) or "(unnamed)"
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for v in values:
        found = _find_class(v, class_name)
        if found is not None:
            return found
    return None


def _find_custom(config):
    """(name, class) of the first object in a saved model's config that is not one of Keras' own (None if none)."""
    if isinstance(config, dict):
        module = config.get("module")
        if "class_name" in config and config.get("registered_name") and not str(module or "").startswith("keras"):
            inner = config.get("config")
            return (inner.get("name") if isinstance(inner, dict) else None) or "(unnamed)", config["registered_name"]
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for v in values:
        found = _find_custom(v)
        if found is not None:
            return found
    return None


def _read(keras, source):
    """(keras.Model, where) from a path or a model; every failure a DarbgenError."""
    if isinstance(source, keras.Model):
        return source, f"the Keras model {source.name!r}"
    if not isinstance(source, (str, os.PathLike)):
        raise DarbgenError(f"cannot read a Keras model from a {type(source).__name__}: give a keras.Model or the "
                           f"path of a .keras file")
    where = os.fspath(source)
    if not os.path.isfile(where):
        raise DarbgenError(f"{where}: no such file")
    if os.path.splitext(where)[1].lower() != ".keras":
        raise DarbgenError(f"{where}: darbgen reads Keras 3 models saved as .keras files (model.save('m.keras')); "
                           f"re-save legacy .h5 / SavedModel files in that format")
    try:
        with zipfile.ZipFile(where) as archive:
            config = json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise DarbgenError(f"{where}: is not a valid .keras file ({exc.__class__.__name__}: {exc})") from None
    lam = _find_class(config, "Lambda")
    if lam is not None:
        raise DarbgenError(f"{where}: layer {lam!r} is a Lambda layer, whose Python code darbgen never loads "
                           f"(Keras safe_mode); replace it with built-in layers")
    custom = _find_custom(config)
    if custom is not None:
        raise DarbgenError(f"{where}: {custom[0]!r} is a custom object ({custom[1]}); darbgen loads only Keras' "
                           f"built-in layers, never custom objects")
    try:
        model = keras.saving.load_model(where, compile=False, safe_mode=True)
    except Exception as exc:  # a broken archive or config can raise almost anything
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        # Keras puts the cause (e.g. "Received: value.shape=...") on later lines
        text = " ".join(lines[:1] + [line for line in lines[1:] if "shape" in line.lower()][:2])[:600]
        hint = ""
        if "Could not locate" in text or "custom" in text.lower():
            hint = "; darbgen loads only Keras' built-in layers, never custom objects"
        elif "safe_mode" in text or "unsafe" in text.lower():
            hint = "; darbgen loads with safe_mode=True and never runs code from a file"
        raise DarbgenError(f"{where}: cannot be loaded as a Keras model ({exc.__class__.__name__}: {text}){hint}"
                           ) from None
    if not isinstance(model, keras.Model):
        raise DarbgenError(f"{where}: holds a {type(model).__name__}, not a Keras model")
    return model, where


def _np(keras, value):
    if value is None:
        return None
    if hasattr(value, "value"):          # a keras.Variable: read its backend tensor (no __array__ round trip)
        value = value.value
    return np.asarray(keras.ops.convert_to_numpy(value), np.float64)


class _Importer:
    def __init__(self, keras, model, where, name):
        self.keras, self.model, self.where, self.name = keras, model, where, name
        self.layers = []
        self.names = LayerNames()
        self.perm = None             # Keras flat index of each darbgen flat position, for the next Dense

    # ------------------------------------------------------------------ helpers

    def fail(self, layer, message):
        raise DarbgenError(f"{self.where}: layer {layer.name!r} ({type(layer).__name__}): {message}")

    def unique(self, base, extra=()):
        """A layer name from ``base``, unique also as a C identifier (:class:`LayerNames`)."""
        return self.names.unique(base, extra)

    def darb_shape(self):
        return Model(self.name, self.input_shape, self.layers).output_shape if self.layers else self.input_shape

    def add(self, layer):
        self.layers.append(layer)
        self.darb_shape()      # checks the layer fits

    def chain(self):
        """The model's layers from its input to its output, checking it is one chain."""
        model = self.model
        if not model.built or not getattr(model, "inputs", None):
            raise DarbgenError(f"{self.where}: the model is not built; give it an input (keras.Input(shape)) or "
                               f"call it on data first")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise DarbgenError(f"{self.where}: darbgen needs a model with exactly one input and one output, this one "
                               f"has {len(model.inputs)} and {len(model.outputs)}")
        if type(model).__name__ == "Sequential":
            return list(model.layers)
        ops, tensor = [], model.outputs[0]
        start = model.inputs[0]
        while tensor is not start:
            history = getattr(tensor, "_keras_history", None)
            if history is None:
                raise DarbgenError(f"{self.where}: cannot follow the graph from the output to the input")
            op = history.operation
            if type(op).__name__ == "InputLayer":
                raise DarbgenError(f"{self.where}: the output does not depend on the model's input")
            node = op._inbound_nodes[history.node_index]
            inputs = list(node.input_tensors)
            if len(inputs) != 1 or len(node.output_tensors) != 1:
                raise DarbgenError(f"{self.where}: layer {op.name!r} ({type(op).__name__}) takes {len(inputs)} "
                                   f"inputs and gives {len(node.output_tensors)} outputs; darbgen imports a single "
                                   f"chain of layers (no branches or residual connections)")
            ops.append(op)
            tensor = inputs[0]
        return ops[::-1]

    def activation(self, layer, kind, name):
        """An activation after the last layer: fused into the dense / convolution layer before it (or in front
        of a max pool, with which a monotone activation commutes)."""
        if kind == "none":
            return
        if kind == "softmax":
            if self.perm is not None:
                self.fail(layer, "a softmax over a flattened multi-channel tensor is not supported (darbgen "
                                 "flattens channel first); put a Dense before it")
            if len(self.darb_shape()) != 1:
                self.fail(layer, f"darbgen's softmax runs over a vector, this input has shape {self.kshape}")
            self.add(Activation(self.unique(name), "softmax"))
            return
        k = len(self.layers) - 1
        while k >= 0 and isinstance(self.layers[k], Flatten):
            k -= 1
        prev = self.layers[k] if k >= 0 else None
        before = self.layers[k - 1] if k >= 1 else None
        is_max = (isinstance(prev, Pool2D) and prev.kind == "max") or (isinstance(prev, Pool1D)
                                                                      and prev.as_2d.kind == "max")
        if isinstance(prev, _WEIGHT_LAYERS) and prev.activation == "none":
            self.add(Activation(self.unique(name), kind))
        elif is_max and isinstance(before, _WEIGHT_LAYERS) and before.activation == "none":
            self.layers.insert(k, Activation(self.unique(name), kind))
            self.darb_shape()
        else:
            self.fail(layer, f"a {kind} here cannot be fused: darbgen's C applies element-wise activations in the "
                             f"dense or convolution layer right before them (one per layer)")

    def keras_activation(self, layer, config):
        act = config.get("activation", "linear")
        if act is None:
            return "none"
        if not isinstance(act, str) or act not in ACTIVATIONS:
            self.fail(layer, f"activation {act!r} is not supported; supported: {', '.join(ACTIVATIONS)}")
        return ACTIVATIONS[act]

    def channels_last(self, layer, config):
        if config.get("data_format", "channels_last") != "channels_last":
            self.fail(layer, f"data_format {config['data_format']!r} is not supported; darbgen reads channels_last "
                             f"Keras models (the default)")

    def need(self, layer, layout, rank):
        if len(self.kshape) != rank or (rank > 1 and self.layout != layout):
            if self.layout == "sequence" and layout == "channels":
                self.fail(layer, "a convolution or pooling over the output of a recurrent layer is not supported "
                                 "(it would need the sequence transposed)")
            if self.layout == "channels" and layout == "sequence":
                self.fail(layer, "a recurrent layer after a convolution or pooling is not supported (it would need "
                                 "the (C, L) tensor transposed)")
            self.fail(layer, f"needs a rank-{rank} input (without the batch), got shape {self.kshape}")

    def padding(self, layer, config, allowed=("valid", "same")):
        pad = config.get("padding", "valid")
        if pad not in allowed:
            self.fail(layer, f"padding {pad!r} is not supported; supported: {', '.join(allowed)}")
        return pad

    # ------------------------------------------------------------------ the walk

    def run(self):
        chain = self.chain()
        in_shape = tuple(self.model.inputs[0].shape)[1:]
        if not in_shape or len(in_shape) > 3 or any(d is None for d in in_shape):
            raise DarbgenError(f"{self.where}: the input has shape {tuple(self.model.inputs[0].shape)}; darbgen "
                               f"needs a batch axis and 1 to 3 more of fixed size")
        self.kshape = tuple(int(d) for d in in_shape)
        # darbgen is channel first: (H, W, C) -> (C, H, W); (L, C) -> (C, L) for 1-D convolutions, while
        # sequences for LSTM / GRU stay (steps, features)
        kinds = [type(layer).__name__ for layer in chain]
        first = next((k for k in kinds if k in _SPATIAL_1D or k in _RECURRENT), None)
        if len(self.kshape) == 3:
            self.layout = "channels"
        elif len(self.kshape) == 2:
            self.layout = "channels" if first in _SPATIAL_1D else "sequence"
        else:
            self.layout = "vector"
        ks = self.kshape
        self.input_shape = (ks[-1],) + ks[:-1] if self.layout == "channels" else ks
        for layer in chain:
            kind = type(layer).__name__
            method = getattr(self, "layer_" + kind.lower(), None)
            if method is None or kind not in SUPPORTED_LAYERS:
                if isinstance(layer, self.keras.Model):
                    raise DarbgenError(f"{self.where}: layer {layer.name!r} is a nested model ({kind}); darbgen "
                                       f"reads one flat model: build it from the inner model's layers")
                raise DarbgenError(f"{self.where}: layer {layer.name!r} has class {kind}, which darbgen does not "
                                   f"support; supported layers: {', '.join(SUPPORTED_LAYERS)}")
            if getattr(layer, "quantization_mode", None):
                self.fail(layer, "Keras-quantized layers are not supported; import the float model (darbgen "
                                 "quantizes it itself)")
            config = layer.get_config()
            out_shape = tuple(layer.compute_output_shape((None,) + self.kshape))
            method(layer, config)
            self.kshape = tuple(int(d) for d in out_shape[1:])
        if self.perm is not None:
            raise DarbgenError(f"{self.where}: the model ends with a flattened multi-channel tensor, which darbgen "
                               f"flattens channel first, in another order than Keras; end with a Dense layer")
        if not self.layers:
            raise DarbgenError(f"{self.where}: the model computes nothing darbgen can generate code for")
        model = Model(self.name, self.input_shape, self.layers)
        model.ops()
        return model

    # ------------------------------------------------------------------ layers

    def layer_inputlayer(self, layer, config):
        pass

    def layer_dropout(self, layer, config):
        pass

    layer_spatialdropout1d = layer_spatialdropout2d = layer_dropout

    def layer_dense(self, layer, config):
        if len(self.kshape) != 1:
            self.fail(layer, f"a Dense over an input of shape {self.kshape} (applied along the last axis) is not "
                             f"supported; add a Flatten before it")
        kernel = _np(self.keras, layer.kernel)                          # (in, out)
        if self.perm is not None:
            kernel = kernel[self.perm]                                  # rows in darbgen's (C, H, W) order
            self.perm = None
        act = self.keras_activation(layer, config)
        name = self.unique(layer.name)
        self.add(Dense(name, kernel.T, _np(self.keras, layer.bias)))
        self.activation(layer, act, f"{name}.{act}")

    def layer_conv2d(self, layer, config):
        self.need(layer, "channels", 3)
        self.channels_last(layer, config)
        if config.get("groups", 1) != 1:
            self.fail(layer, f"groups = {config['groups']} is not supported (darbgen has no grouped kernel)")
        act = self.keras_activation(layer, config)
        name = self.unique(layer.name)
        kernel = _np(self.keras, layer.kernel).transpose(3, 2, 0, 1)   # (kh, kw, in, out) -> (out, in, kh, kw)
        self.add(Conv2D(name, kernel, _np(self.keras, layer.bias), tuple(config["strides"]),
                        self.padding(layer, config), tuple(config["dilation_rate"])))
        self.activation(layer, act, f"{name}.{act}")

    def layer_conv1d(self, layer, config):
        self.need(layer, "channels", 2)
        self.channels_last(layer, config)
        if config.get("groups", 1) != 1:
            self.fail(layer, f"groups = {config['groups']} is not supported (darbgen has no grouped kernel)")
        act = self.keras_activation(layer, config)
        name = self.unique(layer.name)
        kernel = _np(self.keras, layer.kernel).transpose(2, 1, 0)      # (k, in, out) -> (out, in, k)
        stride, dilation = int(config["strides"][0]), int(config["dilation_rate"][0])
        pad = self.padding(layer, config, ("valid", "same", "causal"))
        if pad == "causal":
            pad = (dilation * (kernel.shape[2] - 1), 0)
        self.add(Conv1D(name, kernel, _np(self.keras, layer.bias), stride, pad, dilation))
        self.activation(layer, act, f"{name}.{act}")

    def layer_depthwiseconv2d(self, layer, config):
        self.need(layer, "channels", 3)
        self.channels_last(layer, config)
        act = self.keras_activation(layer, config)
        name = self.unique(layer.name)
        k = _np(self.keras, layer.kernel)                                # (kh, kw, in, multiplier)
        kh, kw, cin, mult = k.shape
        kernel = k.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)  # output channel c * mult + m
        bias = _np(self.keras, layer.bias) if config.get("use_bias", True) else None
        self.add(DepthwiseConv2D(name, kernel, bias, tuple(config["strides"]), self.padding(layer, config),
                                 tuple(config["dilation_rate"])))
        self.activation(layer, act, f"{name}.{act}")

    def pool(self, layer, config, kind, rank):
        self.need(layer, "channels", rank + 1)
        self.channels_last(layer, config)
        pad = self.padding(layer, config)
        size = tuple(config["pool_size"])
        strides = tuple(config["strides"] or size)
        name = self.unique(layer.name)
        if rank == 1:
            self.add(Pool1D(name, kind, size[0], strides[0], pad))
        else:
            self.add(Pool2D(name, kind, size, strides, pad))

    def layer_maxpooling2d(self, layer, config):
        self.pool(layer, config, "max", 2)

    def layer_averagepooling2d(self, layer, config):
        self.pool(layer, config, "avg", 2)

    def layer_maxpooling1d(self, layer, config):
        self.pool(layer, config, "max", 1)

    def layer_averagepooling1d(self, layer, config):
        self.pool(layer, config, "avg", 1)

    def global_pool(self, layer, config, rank):
        self.need(layer, "channels", rank + 1)
        self.channels_last(layer, config)
        if config.get("keepdims"):
            self.fail(layer, "keepdims = True is not supported")
        self.add(GlobalAveragePool(self.unique(layer.name)))

    def layer_globalaveragepooling2d(self, layer, config):
        self.global_pool(layer, config, 2)

    def layer_globalaveragepooling1d(self, layer, config):
        self.global_pool(layer, config, 1)

    def layer_batchnormalization(self, layer, config):
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if axis not in (-1, len(self.kshape)):
            self.fail(layer, f"axis {axis} is not supported; darbgen folds a normalisation over the channels (the "
                             f"last axis, Keras' default)")
        prev = self.layers[-1] if self.layers else None
        if isinstance(prev, Activation) and len(self.layers) > 1 and isinstance(self.layers[-2], _WEIGHT_LAYERS):
            self.fail(layer, f"cannot fold into {self.layers[-2].name!r}, whose activation ({prev.kind}) comes "
                             f"before the normalisation; use a linear layer, then the normalisation, then the "
                             f"activation")
        if not isinstance(prev, _WEIGHT_LAYERS):
            self.fail(layer, "batch normalisation must follow a Dense or convolution layer (it is folded into it)")
        channels = self.kshape[-1]
        gamma = _np(self.keras, layer.gamma) if config.get("scale", True) else np.ones(channels)
        beta = _np(self.keras, layer.beta) if config.get("center", True) else np.zeros(channels)
        self.layers[-1] = fold_batchnorm(prev, gamma, beta, _np(self.keras, layer.moving_mean),
                                         _np(self.keras, layer.moving_variance), float(config["epsilon"]),
                                         name=f"{self.where}: layer {layer.name!r} (BatchNormalization)")

    def layer_activation(self, layer, config):
        self.activation(layer, self.keras_activation(layer, config), layer.name)

    def layer_relu(self, layer, config):
        max_value = config.get("max_value")
        if config.get("negative_slope", 0) or config.get("threshold", 0) or max_value not in (None, 6, 6.0):
            self.fail(layer, f"only ReLU (max_value None) and ReLU6 (max_value 6) are supported, with negative_slope "
                             f"and threshold 0; got max_value {max_value}, negative_slope "
                             f"{config.get('negative_slope')}, threshold {config.get('threshold')}")
        self.activation(layer, "relu" if max_value is None else "relu6", layer.name)

    def layer_softmax(self, layer, config):
        axis = config.get("axis", -1)
        if axis not in (-1, [-1], 1, [1]):
            self.fail(layer, f"softmax over axis {axis} is not supported; darbgen's softmax runs over a vector")
        self.activation(layer, "softmax", layer.name)

    def layer_flatten(self, layer, config):
        if len(self.kshape) > 1:
            if self.layout == "channels":
                # Keras flattens (H, W, C) / (L, C); darbgen (C, H, W) / (C, L): the next Dense reads its
                # weight rows in darbgen's order
                rank = len(self.kshape)
                order = np.arange(int(np.prod(self.kshape))).reshape(self.kshape)
                self.perm = order.transpose((rank - 1,) + tuple(range(rank - 1))).ravel()
                if self.kshape[-1] == 1:
                    self.perm = None
            self.add(Flatten(self.unique(layer.name)))
            self.layout = "vector"

    def layer_lstm(self, layer, config):
        self.recurrent(layer, config, LSTM, None)

    def layer_gru(self, layer, config):
        if not config.get("reset_after", True):
            self.fail(layer, "reset_after = False is not supported: darbgen's GRU is PyTorch's, which applies the "
                             "reset gate after the recurrent product (Keras' default, reset_after = True)")
        self.recurrent(layer, config, GRU, GRU_ORDER)

    def recurrent(self, layer, config, cls, order):
        self.need(layer, "sequence", 2)
        for flag in ("go_backwards", "stateful", "return_state"):
            if config.get(flag):
                self.fail(layer, f"{flag} = True is not supported")
        if config.get("activation") != "tanh" or config.get("recurrent_activation") != "sigmoid":
            self.fail(layer, f"activation {config.get('activation')!r} / recurrent_activation "
                             f"{config.get('recurrent_activation')!r} are not supported; only the defaults tanh / "
                             f"sigmoid")
        if self.layers and not isinstance(self.layers[-1], LSTM):
            self.fail(layer, f"a recurrent layer after {type(self.layers[-1]).__name__} "
                             f"{self.layers[-1].name!r} is not supported; it must take the model's input or the "
                             f"sequence of the recurrent layer before it")
        cell = layer.cell
        hidden = int(config["units"])
        kernel, recurrent = _np(self.keras, cell.kernel), _np(self.keras, cell.recurrent_kernel)
        bias = _np(self.keras, cell.bias) if config.get("use_bias", True) else None
        gates = kernel.shape[1] // hidden
        if bias is None:
            b_ih = b_hh = np.zeros(gates * hidden)
        elif cls is GRU:
            bias = bias.reshape(2, gates * hidden)               # reset_after: input and recurrent biases
            b_ih, b_hh = bias[0], bias[1]
        else:
            b_ih, b_hh = bias.reshape(-1), np.zeros(gates * hidden)

        def reorder(m):                                          # (gates * H, ...) rows into darbgen's order
            if order is None:
                return m
            return np.concatenate([m[g * hidden:(g + 1) * hidden] for g in order])

        self.add(cls(self.unique(layer.name), reorder(kernel.T), reorder(recurrent.T), reorder(b_ih),
                     reorder(b_hh), return_sequences=bool(config.get("return_sequences"))))


def model_from_keras(model_or_path, name=None):
    """A :class:`~darbgen.graph.Model` computing what the Keras 3 model
    ``model_or_path`` (a ``keras.Model`` or the path of a ``.keras`` file,
    loaded with ``safe_mode=True``) computes, for one sample without the batch
    axis. Inputs are channel first (docs/keras.md): feed the darbgen model
    ``x.transpose(0, 3, 1, 2)`` for (N, H, W, C) images and ``x.transpose(0,
    2, 1)`` for (N, L, C) signals into 1-D convolutions. ``name``: the model's
    name (default: the file name, else the Keras model's name). Needs keras
    (with ``KERAS_BACKEND=jax`` by default)."""
    keras = _import_keras()
    model, where = _read(keras, model_or_path)
    if name is None:
        if isinstance(model_or_path, (str, os.PathLike)):
            name = os.path.splitext(os.path.basename(os.fspath(model_or_path)))[0]
        else:
            name = model.name or "model"
    try:
        return _Importer(keras, model, where, name).run()
    except DarbgenError:
        raise
    except Exception as exc:   # an inconsistent model (odd configs, shapes ...)
        raise DarbgenError(f"{where}: cannot be imported ({exc.__class__.__name__}: {exc})") from None
