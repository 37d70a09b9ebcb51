"""A legacy Keras HDF5 model file (``model.save('m.h5')``) into the op graph (docs/keras_h5.md).

The file holds the architecture as JSON in its ``model_config`` attribute and
the weights under ``model_weights/<layer>/``. Both are read with h5py alone:
no Keras, no TensorFlow, nothing unpickled, no Lambda code ever run (a Lambda
layer is refused by its class name before anything else is looked at).

Keras 2 files (``inbound_nodes`` as nested lists, ``batch_input_shape``) are
the target (the MLPerf Tiny reference models are such files); the same reader
also takes the ``.h5`` files Keras 3 still writes (``inbound_nodes`` as
``args`` dicts, ``batch_shape``).

Tensors keep Keras' own layout (NHWC images, no batch axis). Weights are put
into the canonical layouts of :mod:`darbgen.ir`. Batch normalisation is
folded into the Dense / convolution before it and ReLU / ReLU6 are fused into
the op before them; a ReLU that cannot be fused becomes a 1x1 max pool with
the activation (exact: the max over one element is that element).
"""
import json
import os

import numpy as np

from ..codegen.names import short_name
from ..errors import DarbgenError
from ..ir import Graph, Node, Tensor

#: Keras layer classes graph_from_h5 reads
SUPPORTED_LAYERS = ("InputLayer", "Dense", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization",
                    "Activation", "ReLU", "Softmax", "Add", "Concatenate", "AveragePooling2D", "MaxPooling2D",
                    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "ZeroPadding2D", "Dropout",
                    "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
#: the same classes under the aliases older Keras versions wrote
ALIASES = {"Convolution2D": "Conv2D", "SeparableConvolution2D": "SeparableConv2D", "MaxPool2D": "MaxPooling2D",
           "AvgPool2D": "AveragePooling2D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
           "GlobalMaxPool2D": "GlobalMaxPooling2D", "Concat": "Concatenate"}
#: layers that compute nothing at inference
IDENTITY_LAYERS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
#: Keras activation names darbgen runs ("linear": none; softmax as its own op)
ACTIVATIONS = ("linear", "relu", "relu6", "softmax")
#: op kinds with a fused activation
_FUSABLE = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d", "concat")
#: op kinds a batch normalisation folds into
_FOLDABLE = ("conv2d", "depthwise_conv2d", "fully_connected")
_NESTED_MODELS = ("Functional", "Sequential", "Model")
# pseudo ops that exist only while importing (folded or replaced before the graph is made)
_BN, _ACT = "_batchnorm", "_activation"


class _Layer:
    """One Keras layer of the config: class, name, config and (functional models) its calls."""

    def __init__(self, cls, name, config, calls):
        self.cls, self.name, self.config, self.calls = cls, name, config, calls


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _pair(value, what):
    """A Keras int-or-pair setting as a pair of ints."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = (value[0], value[0])
        if len(value) != 2:
            raise ValueError(f"{what} {value} is not one or two numbers")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _same_or_valid(size, kernel, stride, dilation, padding):
    """(output size, (before, after)) of one spatial axis, as TensorFlow pads (the extra one after)."""
    eff = (kernel - 1) * dilation + 1
    if padding == "valid":
        if size < eff:
            return 0, (0, 0)
        return (size - eff) // stride + 1, (0, 0)
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return out, (total // 2, total - total // 2)


class _Importer:
    def __init__(self, where, name, h5file):
        self.where, self.name, self.file = where, name, h5file
        self.nodes, self.tensors = [], {}
        self.node_names, self.tensor_names = set(), set()
        self.value = {}          # Keras tensor key (layer, node index, tensor index) -> our tensor name
        self.keras_class = {}    # our node name -> the Keras class it came from (for messages)
        self.counts = {"folded": 0, "fused": 0, "relu_pool": 0}

    # ------------------------------------------------------------------ helpers
    def fail(self, layer, message):
        raise DarbgenError(f"{self.where}: layer {layer.name!r} ({layer.cls}): {message}")

    def fail_file(self, message):
        raise DarbgenError(f"{self.where}: {message}")

    @staticmethod
    def _unique(base, used):
        name, k = base, 2
        while name.upper() in used:
            suffix = f"_{k}"
            name, k = short_name(base, 32 - len(suffix)) + suffix, k + 1
        used.add(name.upper())
        return name

    def node_name(self, keras_name):
        return self._unique(short_name(keras_name), self.node_names)

    def new_tensor(self, keras_name, shape):
        name = self._unique(short_name(keras_name), self.tensor_names)
        self.tensors[name] = Tensor(name, shape)
        return name

    def shape(self, tensor):
        return self.tensors[tensor].shape

    def add_node(self, layer, kind, inputs, shape, base=None, params=None, attrs=None):
        """A node of ``kind`` for ``layer`` (named ``base`` or the layer's name) writing a new tensor of ``shape``
        (named alike); returns the tensor's name."""
        name = self.node_name(base or layer.name)
        out = self.new_tensor(base or layer.name, shape)
        node = Node(kind, name, inputs, [out], params or {}, attrs or {}, source_name=layer.name)
        self.nodes.append(node)
        self.keras_class[name] = layer.cls
        return out

    @staticmethod
    def const(node_name, key, array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        return Tensor(f"{node_name}.{key}", array.shape, data=array)

    def weights(self, layer, required, optional=()):
        """{short weight name: float64 array} of a layer from ``model_weights/<layer>``."""
        root = self.file["model_weights"] if "model_weights" in self.file else self.file
        group = root.get(layer.name)
        found = {}
        if group is not None:
            names = [_decode(n) for n in np.atleast_1d(group.attrs.get("weight_names", []))]
            for full in names:
                key = full.rsplit("/", 1)[-1].split(":")[0]
                data = group.get(full)
                if data is None:
                    self.fail(layer, f"weight {full!r} is listed but not in the file; the file is damaged, re-save "
                                     f"the model")
                found[key] = np.asarray(data[()], np.float64)
        missing = [k for k in required if k not in found]
        if missing:
            have = ", ".join(sorted(found)) or "none"
            self.fail(layer, f"weights {', '.join(missing)} are missing from model_weights/{layer.name} (it has "
                             f"{have}); the file is damaged or holds another model's weights, re-save the model")
        return {k: found[k] for k in tuple(required) + tuple(optional) if k in found}

    def activation_of(self, layer):
        """The Keras activation name of a layer (its 'activation' setting), checked."""
        act = layer.config.get("activation", "linear")
        if isinstance(act, dict):             # Keras 3 may serialise a function as {"config": "relu", ...}
            act = act.get("config") if isinstance(act.get("config"), str) else act.get("class_name")
        act = "linear" if act is None else str(act)
        if act not in ACTIVATIONS:
            self.fail(layer, f"activation {act!r} is not supported; darbgen runs "
                             f"{', '.join(ACTIVATIONS)} (relu and relu6 fused into the op before them)")
        return act

    def activate(self, layer, tensor, act, base):
        """Apply a Keras activation to ``tensor``: nothing, a pseudo activation (fused later) or a softmax."""
        if act == "linear":
            return tensor
        shape = self.shape(tensor)
        if act == "softmax":
            return self.add_node(layer, "softmax", [tensor], shape, base=base, attrs={"beta": 1.0})
        return self.add_node(layer, _ACT, [tensor], shape, base=base, attrs={"activation": act})

    def channels_last(self, layer):
        fmt = layer.config.get("data_format") or "channels_last"
        if fmt != "channels_last":
            self.fail(layer, f"data_format {fmt!r} is not supported; darbgen reads channels_last (NHWC) models, "
                             f"Keras' default")

    def need_image(self, layer, shape):
        if len(shape) != 3:
            self.fail(layer, f"needs an image (H, W, C) input, got shape {shape}")

    def padding_of(self, layer):
        padding = str(layer.config.get("padding", "valid")).lower()
        if padding not in ("valid", "same"):
            self.fail(layer, f"padding {padding!r} is not supported; use 'valid' or 'same'")
        return padding

    def window(self, layer, shape, kernel, stride, dilation):
        """Output (H, W) and explicit (top, bottom, left, right) padding of a sliding window."""
        padding = self.padding_of(layer)
        oh, ph = _same_or_valid(shape[0], kernel[0], stride[0], dilation[0], padding)
        ow, pw = _same_or_valid(shape[1], kernel[1], stride[1], dilation[1], padding)
        if oh < 1 or ow < 1:
            self.fail(layer, f"its {kernel[0]}x{kernel[1]} window (dilation {dilation}) does not fit the "
                             f"{shape[0]}x{shape[1]} input with padding 'valid'")
        return (oh, ow), ph + pw

    # ------------------------------------------------------------------ layers
    def layer_dense(self, layer, x):
        shape = self.shape(x)
        units = int(layer.config["units"])
        use_bias = layer.config.get("use_bias", True)
        w = self.weights(layer, ("kernel", "bias") if use_bias else ("kernel",))
        kernel = w["kernel"]
        if kernel.shape != (shape[-1], units):
            self.fail(layer, f"kernel has shape {kernel.shape}, the config and its input {shape} need "
                             f"{(shape[-1], units)}")
        if len(shape) > 1 and int(np.prod(shape[:-1])) != 1:
            self.fail(layer, f"a Dense on a {shape} tensor applies to the last axis at every position; darbgen's "
                             f"fully_connected flattens its input: put a Flatten before the Dense")
        act = self.activation_of(layer)
        out = self.add_node(layer, "fully_connected", [x], (units,), attrs={"activation": "none"})
        node = self.nodes[-1]
        node.params = {"weight": self.const(node.name, "weight", kernel.T),
                       "bias": self.const(node.name, "bias", w.get("bias", np.zeros(units)))}
        if act in ("relu", "relu6"):          # fused before the reshape below
            out = self.activate(layer, out, act, f"{layer.name}_{act}")
        if len(shape) > 1:                    # (1, ..., 1, C) in: Keras keeps the leading ones
            out = self.add_node(layer, "reshape", [out], shape[:-1] + (units,), base=f"{layer.name}_reshape",
                                attrs={"shape": shape[:-1] + (units,)})
        return self.activate(layer, out, act, f"{layer.name}_{act}") if act == "softmax" else out

    def layer_conv2d(self, layer, x):
        cfg = layer.config
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        if int(cfg.get("groups", 1) or 1) != 1:
            self.fail(layer, f"groups = {cfg['groups']} is not supported (darbgen has no grouped convolution)")
        filters, kernel_size = int(cfg["filters"]), _pair(cfg["kernel_size"], "kernel_size")
        stride, dilation = _pair(cfg.get("strides", 1), "strides"), _pair(cfg.get("dilation_rate", 1), "dilation")
        use_bias = cfg.get("use_bias", True)
        w = self.weights(layer, ("kernel", "bias") if use_bias else ("kernel",))
        kernel = w["kernel"]
        if kernel.shape != kernel_size + (shape[2], filters):
            self.fail(layer, f"kernel has shape {kernel.shape}, the config and its input {shape} need "
                             f"{kernel_size + (shape[2], filters)}")
        act = self.activation_of(layer)
        out_hw, pads = self.window(layer, shape, kernel_size, stride, dilation)
        out = self.add_node(layer, "conv2d", [x], out_hw + (filters,),
                            attrs={"stride": stride, "dilation": dilation, "padding": pads, "activation": "none"})
        node = self.nodes[-1]
        node.params = {"weight": self.const(node.name, "weight", kernel.transpose(3, 0, 1, 2)),
                       "bias": self.const(node.name, "bias", w.get("bias", np.zeros(filters)))}
        return self.activate(layer, out, act, f"{layer.name}_{act}")

    def depthwise(self, layer, x, kernel, bias, base):
        """A depthwise_conv2d node from a (KH, KW, C, M) kernel; returns its output tensor."""
        cfg = layer.config
        shape = self.shape(x)
        kh, kw, channels, mult = kernel.shape
        stride, dilation = _pair(cfg.get("strides", 1), "strides"), _pair(cfg.get("dilation_rate", 1), "dilation")
        out_hw, pads = self.window(layer, shape, (kh, kw), stride, dilation)
        out = self.add_node(layer, "depthwise_conv2d", [x], out_hw + (channels * mult,), base=base,
                            attrs={"multiplier": int(mult), "stride": stride, "dilation": dilation, "padding": pads,
                                   "activation": "none"})
        node = self.nodes[-1]
        # output channel c * M + m, TFLite's order: the last two axes flattened row-major
        node.params = {"weight": self.const(node.name, "weight", kernel.reshape(kh, kw, channels * mult)),
                       "bias": self.const(node.name, "bias", np.zeros(channels * mult) if bias is None else bias)}
        return out

    def layer_depthwiseconv2d(self, layer, x):
        cfg = layer.config
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        # old configs carry keys such as "groups" or "filters" that Keras 3 rejects; they mean nothing here
        kernel_size, mult = _pair(cfg["kernel_size"], "kernel_size"), int(cfg.get("depth_multiplier", 1))
        use_bias = cfg.get("use_bias", True)
        w = self.weights(layer, ("bias",) if use_bias else (), ("depthwise_kernel", "kernel"))
        kernel = w.get("depthwise_kernel", w.get("kernel"))
        if kernel is None:
            self.fail(layer, f"the depthwise kernel is missing from model_weights/{layer.name}; the file is damaged, "
                             f"re-save the model")
        if kernel.shape != kernel_size + (shape[2], mult):
            self.fail(layer, f"kernel has shape {kernel.shape}, the config and its input {shape} need "
                             f"{kernel_size + (shape[2], mult)}")
        act = self.activation_of(layer)
        out = self.depthwise(layer, x, kernel, w.get("bias"), layer.name)
        return self.activate(layer, out, act, f"{layer.name}_{act}")

    def layer_separableconv2d(self, layer, x):
        """A depthwise convolution (no bias) and a 1x1 convolution, as TensorFlow computes it."""
        cfg = layer.config
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        filters, kernel_size = int(cfg["filters"]), _pair(cfg["kernel_size"], "kernel_size")
        mult = int(cfg.get("depth_multiplier", 1))
        use_bias = cfg.get("use_bias", True)
        w = self.weights(layer, ("depthwise_kernel", "pointwise_kernel") + (("bias",) if use_bias else ()))
        dk, pk = w["depthwise_kernel"], w["pointwise_kernel"]
        if dk.shape != kernel_size + (shape[2], mult) or pk.shape != (1, 1, shape[2] * mult, filters):
            self.fail(layer, f"kernels have shapes {dk.shape} and {pk.shape}, the config and its input {shape} need "
                             f"{kernel_size + (shape[2], mult)} and {(1, 1, shape[2] * mult, filters)}")
        act = self.activation_of(layer)
        mid = self.depthwise(layer, x, dk, None, f"{layer.name}_depthwise")
        mshape = self.shape(mid)
        out = self.add_node(layer, "conv2d", [mid], mshape[:2] + (filters,),
                            attrs={"stride": (1, 1), "dilation": (1, 1), "padding": (0, 0, 0, 0),
                                   "activation": "none"})
        node = self.nodes[-1]
        node.params = {"weight": self.const(node.name, "weight", pk.transpose(3, 0, 1, 2)),
                       "bias": self.const(node.name, "bias", w.get("bias", np.zeros(filters)))}
        return self.activate(layer, out, act, f"{layer.name}_{act}")

    def layer_batchnormalization(self, layer, x):
        cfg = layer.config
        shape = self.shape(x)
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if axis not in (-1, len(shape)):
            self.fail(layer, f"axis {axis} is not supported; darbgen folds a normalisation over the channels (the "
                             f"last axis, Keras' default)")
        w = self.weights(layer, ("moving_mean", "moving_variance"), ("gamma", "beta"))
        channels = shape[-1]
        gamma = w.get("gamma", np.ones(channels)) if cfg.get("scale", True) else np.ones(channels)
        beta = w.get("beta", np.zeros(channels)) if cfg.get("center", True) else np.zeros(channels)
        if cfg.get("scale", True) and "gamma" not in w or cfg.get("center", True) and "beta" not in w:
            self.fail(layer, f"gamma / beta are missing from model_weights/{layer.name}; the file is damaged, "
                             f"re-save the model")
        for key, v in (("gamma", gamma), ("beta", beta), ("moving_mean", w["moving_mean"]),
                       ("moving_variance", w["moving_variance"])):
            if v.shape != (channels,):
                self.fail(layer, f"{key} has shape {v.shape}, its input {shape} needs ({channels},)")
        scale = gamma / np.sqrt(w["moving_variance"] + float(cfg.get("epsilon", 1e-3)))
        if not np.all(np.isfinite(scale)):
            self.fail(layer, "its scale gamma / sqrt(variance + epsilon) is not finite; check the moving variance")
        shift = beta - w["moving_mean"] * scale
        return self.add_node(layer, _BN, [x], shape, attrs={"scale": scale, "shift": shift})

    def layer_activation(self, layer, x):
        act = self.activation_of(layer)
        if act == "softmax":
            return self.layer_softmax(layer, x)
        return self.activate(layer, x, act, layer.name)

    def layer_relu(self, layer, x):
        cfg = layer.config
        max_value = cfg.get("max_value")
        slope, threshold = cfg.get("negative_slope", 0) or 0, cfg.get("threshold", 0) or 0
        if slope or threshold or max_value not in (None, 6, 6.0):
            self.fail(layer, f"only ReLU (max_value None) and ReLU6 (max_value 6) with negative_slope and threshold 0 "
                             f"are supported; got max_value {max_value}, negative_slope {slope}, threshold "
                             f"{threshold}")
        return self.activate(layer, x, "relu" if max_value is None else "relu6", layer.name)

    def layer_softmax(self, layer, x):
        axis = layer.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if axis not in (-1, len(self.shape(x))):
            self.fail(layer, f"softmax over axis {axis} is not supported; darbgen's softmax runs over the last axis")
        return self.add_node(layer, "softmax", [x], self.shape(x), attrs={"beta": 1.0})

    def layer_add(self, layer, *xs):
        if len(xs) < 2:
            self.fail(layer, f"takes {len(xs)} input; Add needs two or more")
        shapes = [self.shape(x) for x in xs]
        if any(s != shapes[0] for s in shapes):
            self.fail(layer, f"adds tensors of shapes {shapes}; darbgen adds tensors of one shape (no broadcasting)")
        out = xs[0]
        for k, x in enumerate(xs[1:]):        # a + b + c as (a + b) + c
            last = k == len(xs) - 2
            out = self.add_node(layer, "add", [out, x], shapes[0], base=layer.name if last else f"{layer.name}_{k}",
                                attrs={"activation": "none"})
        return out

    def layer_concatenate(self, layer, *xs):
        shapes = [self.shape(x) for x in xs]
        rank = len(shapes[0])
        axis = int(layer.config.get("axis", -1))
        axis = axis + rank if axis < 0 else axis - 1      # Keras counts the batch axis
        if not 0 <= axis < rank or any(len(s) != rank for s in shapes) or any(
                s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
            self.fail(layer, f"cannot concatenate shapes {shapes} along axis {layer.config.get('axis', -1)}")
        if len(xs) == 1:
            return xs[0]
        out_shape = list(shapes[0])
        out_shape[axis] = sum(s[axis] for s in shapes)
        return self.add_node(layer, "concat", list(xs), tuple(out_shape), attrs={"axis": axis, "activation": "none"})

    def pool(self, layer, x, kind):
        cfg = layer.config
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        size = _pair(cfg.get("pool_size", 2), "pool_size")
        stride = _pair(cfg.get("strides") or size, "strides")
        out_hw, pads = self.window(layer, shape, size, stride, (1, 1))
        return self.add_node(layer, kind, [x], out_hw + (shape[2],),
                             attrs={"filter": size, "stride": stride, "padding": pads, "activation": "none"})

    def layer_averagepooling2d(self, layer, x):
        return self.pool(layer, x, "avg_pool2d")

    def layer_maxpooling2d(self, layer, x):
        return self.pool(layer, x, "max_pool2d")

    def layer_globalaveragepooling2d(self, layer, x):
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        keep = bool(layer.config.get("keepdims", False))
        return self.add_node(layer, "mean", [x], (1, 1, shape[2]) if keep else (shape[2],),
                             attrs={"axes": (0, 1), "keep_dims": keep})

    def layer_globalmaxpooling2d(self, layer, x):
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        out = self.add_node(layer, "max_pool2d", [x], (1, 1, shape[2]),
                            base=layer.name if layer.config.get("keepdims") else f"{layer.name}_pool",
                            attrs={"filter": shape[:2], "stride": shape[:2], "padding": (0, 0, 0, 0),
                                   "activation": "none"})
        if layer.config.get("keepdims"):
            return out
        return self.add_node(layer, "reshape", [out], (shape[2],), attrs={"shape": (shape[2],)})

    def reshape_to(self, layer, x, new_shape):
        if tuple(new_shape) == self.shape(x):
            return x
        return self.add_node(layer, "reshape", [x], tuple(new_shape), attrs={"shape": tuple(new_shape)})

    def layer_flatten(self, layer, x):
        if len(self.shape(x)) > 1:            # channels_first would flatten in (C, H, W) order
            self.channels_last(layer)
        # NHWC flattens in (H, W, C) order, as Keras does: a plain reshape, no permutation
        return self.reshape_to(layer, x, (self.tensors[x].size,))

    def layer_reshape(self, layer, x):
        target = [int(d) for d in layer.config["target_shape"]]
        size = self.tensors[x].size
        if target.count(-1) > 1 or any(d == 0 or d < -1 for d in target):
            self.fail(layer, f"target_shape {tuple(target)} is not valid")
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            if known == 0 or size % known:
                self.fail(layer, f"cannot reshape {self.shape(x)} into {tuple(target)}")
            target[target.index(-1)] = size // known
        if int(np.prod(target)) != size:
            self.fail(layer, f"cannot reshape {self.shape(x)} ({size} values) into {tuple(target)}")
        return self.reshape_to(layer, x, target)

    def layer_zeropadding2d(self, layer, x):
        shape = self.shape(x)
        self.need_image(layer, shape)
        self.channels_last(layer)
        pad = layer.config.get("padding", 1)
        if isinstance(pad, (list, tuple)) and len(pad) == 2 and all(isinstance(p, (list, tuple)) for p in pad):
            (top, bottom), (left, right) = _pair(pad[0], "padding"), _pair(pad[1], "padding")
        else:                                 # one number, or one per axis for both sides
            (top, left) = _pair(pad, "padding")
            bottom, right = top, left
        if min(top, bottom, left, right) < 0:
            self.fail(layer, f"negative padding {pad} is not supported")
        if top == bottom == left == right == 0:
            return x
        return self.add_node(layer, "pad", [x], (shape[0] + top + bottom, shape[1] + left + right, shape[2]),
                             attrs={"pads": ((top, bottom), (left, right), (0, 0))})

    # ------------------------------------------------------------------ config
    def read_layers(self, config):
        """(layers, input keys, output keys) of a Functional or Sequential config."""
        cls = config.get("class_name") if isinstance(config, dict) else None
        body = config.get("config") if isinstance(config, dict) else None
        if cls == "Sequential":
            return self.read_sequential(body)
        if cls in ("Functional", "Model"):
            return self.read_functional(body)
        self.fail_file(f"model_config holds a {cls!r}; darbgen reads Sequential and functional (Model / Functional) "
                       f"models")

    def _layer(self, entry, index):
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            self.fail_file(f"layer {index} of model_config is not a layer description; the file is damaged")
        cfg = entry.get("config") or {}
        name = entry.get("name") or cfg.get("name") or f"layer{index}"
        cls = str(entry.get("class_name"))
        return _Layer(ALIASES.get(cls, cls), str(name), cfg, [])

    def read_sequential(self, body):
        entries = body.get("layers") if isinstance(body, dict) else body     # Keras < 2.2.3: a plain list
        if not isinstance(entries, list) or not entries:
            self.fail_file("the Sequential model in model_config has no layers")
        layers = [self._layer(e, k) for k, e in enumerate(entries)]
        if layers[0].cls != "InputLayer":
            cfg = layers[0].config
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if shape is None and isinstance(body, dict):
                shape = body.get("build_input_shape")
            if shape is None:
                self.fail_file("the Sequential model has no input shape (no InputLayer, no batch_input_shape); "
                               "build it with an Input or input_shape before saving")
            name, k = "input", 1
            while any(layer.name == name for layer in layers):
                name, k = f"input_{k}", k + 1
            layers.insert(0, _Layer("InputLayer", name, {"batch_input_shape": shape}, []))
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            self.fail_file("two layers of the Sequential model have the same name; the file is damaged")
        for prev, layer in zip(layers, layers[1:]):
            layer.calls = [[(prev.name, 0, 0)]]
        return layers, [(layers[0].name, 0, 0)], [(layers[-1].name, 0, 0)]

    def _keys(self, value, what):
        """[(layer, node index, tensor index)] from input_layers / output_layers (nested or flat)."""
        if not isinstance(value, list) or not value:
            self.fail_file(f"model_config has no {what}")
        if isinstance(value[0], str):
            value = [value]
        try:
            return [(str(v[0]), int(v[1]), int(v[2])) for v in value]
        except (TypeError, ValueError, IndexError):
            self.fail_file(f"model_config's {what} {value} are not [layer, node, tensor] entries; the file is "
                           f"damaged")

    def _call_inputs(self, layer, call):
        """The Keras tensor keys one call of a layer reads: Keras 2 nested lists or Keras 3 args dicts."""
        keys = []
        if isinstance(call, dict):                      # Keras 3: {"args": [...], "kwargs": {...}}
            def walk(v):
                if isinstance(v, dict):
                    if v.get("class_name") == "__keras_tensor__":
                        h = v.get("config", {}).get("keras_history")
                        keys.append((str(h[0]), int(h[1]), int(h[2])))
                    else:
                        for x in v.values():
                            walk(x)
                elif isinstance(v, (list, tuple)):
                    for x in v:
                        walk(x)
            walk(call.get("args", []))
            return keys
        if not isinstance(call, list):
            self.fail(layer, "its inbound_nodes are not lists of [layer, node, tensor]; the file is damaged")
        for entry in call:
            if not isinstance(entry, list) or len(entry) < 3:
                self.fail(layer, f"inbound entry {entry!r} is not [layer, node, tensor]; the file is damaged")
            keys.append((str(entry[0]), int(entry[1]), int(entry[2])))
        return keys

    def read_functional(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
            self.fail_file("model_config has no layer list; the file is damaged")
        layers = [self._layer(e, k) for k, e in enumerate(body["layers"])]
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            self.fail_file("two layers have the same name; the file is damaged")
        for layer, entry in zip(layers, body["layers"]):
            nodes = entry.get("inbound_nodes") or []
            if not isinstance(nodes, list):
                self.fail(layer, "its inbound_nodes are not a list; the file is damaged")
            layer.calls = [self._call_inputs(layer, call) for call in nodes]
        return layers, self._keys(body.get("input_layers"), "input_layers"), self._keys(body.get("output_layers"),
                                                                                        "output_layers")

    def check_classes(self, layers):
        """Refuse what darbgen cannot read, by class, before any layer is translated."""
        for layer in layers:
            if layer.cls in SUPPORTED_LAYERS:
                continue
            if layer.cls == "Lambda":
                self.fail(layer, "a Lambda layer holds Python code (marshalled bytecode), which darbgen never runs; "
                                 "replace it with built-in layers")
            if layer.cls in _NESTED_MODELS:
                self.fail(layer, "a model nested in the model is not supported; rebuild the model from the inner "
                                 "model's layers (one level of layers)")
            self.fail(layer, f"is not a layer darbgen reads (a custom class, or one darbgen has no op for); "
                             f"supported: {', '.join(SUPPORTED_LAYERS)}")

    # ------------------------------------------------------------------ translation
    def translate(self, layers, inputs, outputs):
        if len(inputs) != 1 or len(outputs) != 1:
            self.fail_file(f"darbgen generates models with one input and one output; this one has {len(inputs)} "
                           f"inputs and {len(outputs)} outputs")
        by_name = {layer.name: layer for layer in layers}
        for key in inputs + outputs:
            if key[0] not in by_name:
                self.fail_file(f"model_config names layer {key[0]!r} as an input or output but has no such layer")
        in_layer = by_name[inputs[0][0]]
        if in_layer.cls != "InputLayer":
            self.fail(in_layer, "the model's input must be an InputLayer")
        shape = in_layer.config.get("batch_input_shape") or in_layer.config.get("batch_shape")
        if not isinstance(shape, list) or len(shape) < 2:
            self.fail(in_layer, f"input shape {shape} has no dimensions besides the batch")
        if any(d is None for d in shape[1:]):
            self.fail(in_layer, f"input shape {tuple(shape[1:])} has an unknown (None) dimension; darbgen needs a "
                                f"fixed input shape: rebuild the model with keras.Input(shape=(...)) and load the "
                                f"weights")
        dtype = in_layer.config.get("dtype", "float32")
        if isinstance(dtype, str) and not dtype.startswith("float"):
            self.fail(in_layer, f"input type {dtype} is not supported; darbgen takes float inputs")
        self.value[(in_layer.name, 0, 0)] = self.new_tensor(in_layer.name, tuple(int(d) for d in shape[1:]))
        input_tensor = self.value[(in_layer.name, 0, 0)]

        # every call of every layer, in dependency order (Keras lists layers in order, except reused ones)
        pending = [(layer, k, call) for layer in layers if layer.cls != "InputLayer"
                   for k, call in enumerate(layer.calls)]
        while pending:
            progress = []
            for item in pending:
                layer, k, call = item
                if all(key in self.value for key in call):
                    self.call(layer, k, call)
                    progress.append(item)
            if not progress:
                layer, _, call = pending[0]
                missing = [key[0] for key in call if key not in self.value]
                self.fail(layer, f"its input from layer {missing[0]!r} is never computed (a cycle, a missing "
                                 f"layer or another model input); the file is damaged or has several inputs")
            pending = [item for item in pending if item not in progress]
        if outputs[0] not in self.value:
            self.fail_file(f"the output layer {outputs[0][0]!r} is never computed; the file is damaged")
        return input_tensor, self.value[outputs[0]]

    def call(self, layer, index, keys):
        xs = [self.value[key] for key in keys]
        if layer.cls in IDENTITY_LAYERS:
            out = xs[0]
        else:
            if layer.cls not in ("Add", "Concatenate") and len(xs) != 1:
                self.fail(layer, f"takes {len(xs)} inputs; darbgen reads it with one")
            if index:                         # a shared layer: its second call gets its own names
                layer = _Layer(layer.cls, layer.name, layer.config, layer.calls)
            out = getattr(self, f"layer_{layer.cls.lower()}")(layer, *xs)
        self.value[(layer.name, index, 0)] = out

    # ------------------------------------------------------------------ fusion
    def consumers(self):
        out = {}
        for node in self.nodes:
            for t in node.inputs:
                out.setdefault(t, []).append(node)
        return out

    def prune(self, output):
        """Drop ops the output does not depend on."""
        live, keep = {output}, []
        for node in reversed(self.nodes):
            if any(t in live for t in node.outputs):
                keep.append(node)
                live.update(node.inputs)
        self.nodes = keep[::-1]

    def fold_and_fuse(self, input_tensor, output):
        for pseudo in [n for n in self.nodes if n.kind in (_BN, _ACT)]:
            producer = {t: n for n in self.nodes for t in n.outputs}
            readers = self.consumers()
            t = pseudo.inputs[0]
            p = producer.get(t)
            others = [n.source_name for n in readers.get(t, []) if n is not pseudo]
            shared = bool(others) or t == output
            if pseudo.kind == _BN:
                self.fold_bn(pseudo, p, t == input_tensor, others)
            elif p is not None and p.kind in _FUSABLE and not shared:
                act = pseudo.attrs["activation"]
                have = p.attrs["activation"]
                if have not in ("none", "relu", "relu6"):
                    self.relu_as_pool(pseudo)
                    continue
                p.attrs["activation"] = "relu6" if "relu6" in (act, have) else act   # relu(relu6(x)) = relu6(x)
                self.take_over(p, pseudo)
                self.counts["fused"] += 1
            else:
                self.relu_as_pool(pseudo)

    def take_over(self, p, pseudo):
        """``p`` writes what ``pseudo`` wrote; ``pseudo`` and ``p``'s old output go."""
        del self.tensors[p.outputs[0]]
        p.outputs = list(pseudo.outputs)
        self.nodes.remove(pseudo)

    def fold_bn(self, bn, p, from_input, others):
        def refuse(why):
            raise DarbgenError(f"{self.where}: layer {bn.source_name!r} (BatchNormalization): cannot be folded: "
                               f"{why}. darbgen folds a batch normalisation into the Dense / Conv2D / "
                               f"DepthwiseConv2D right before it (linear activation, output read by nothing "
                               f"else) and has no standalone per-channel scale-and-shift op; move it there")

        if from_input or p is None:
            refuse("its input is the model's input")
        what = f"{p.source_name!r} ({self.keras_class.get(p.name, p.kind)})"
        if others:
            refuse(f"the output of {what} also feeds {', '.join(repr(o) for o in others)} (a branch point)")
        if p.kind not in _FOLDABLE:
            refuse(f"it follows {what}, which is not a Dense or convolution")
        if p.attrs["activation"] != "none":
            refuse(f"{what} applies its activation ({p.attrs['activation']}) before the normalisation")
        scale, shift = bn.attrs["scale"], bn.attrs["shift"]
        w = p.params["weight"].data.astype(np.float64)
        b = p.params["bias"].data.astype(np.float64)
        if p.kind == "depthwise_conv2d":
            w = w * scale                                  # (KH, KW, C * M): channels last
        else:
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))   # (O, ...): channels first
        p.params = {"weight": self.const(p.name, "weight", w), "bias": self.const(p.name, "bias", b * scale + shift)}
        self.take_over(p, bn)
        self.counts["folded"] += 1

    def relu_as_pool(self, pseudo):
        """A standalone ReLU / ReLU6 as a 1x1 max pool with that activation (reshaped to an image and back)."""
        shape = self.tensors[pseudo.inputs[0]].shape
        if len(shape) > 3:
            raise DarbgenError(f"{self.where}: layer {pseudo.source_name!r}: a standalone "
                               f"{pseudo.attrs['activation']} on a {shape} tensor is not supported")
        image = (1,) * (3 - len(shape)) + shape
        k = self.nodes.index(pseudo)
        new, x = [], pseudo.inputs[0]
        if image != shape:
            mid = self.new_tensor(f"{pseudo.source_name}_image", image)
            new.append(Node("reshape", self.node_name(f"{pseudo.source_name}_image"), [x], [mid],
                            attrs={"shape": image}, source_name=pseudo.source_name))
            x = mid
        out = pseudo.outputs[0]
        pooled = self.new_tensor(f"{pseudo.source_name}_pool", image) if image != shape else out
        new.append(Node("max_pool2d", pseudo.name, [x], [pooled],
                        attrs={"filter": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0),
                               "activation": pseudo.attrs["activation"]}, source_name=pseudo.source_name))
        if image != shape:
            self.tensors[out] = Tensor(out, shape)
            new.append(Node("reshape", self.node_name(f"{pseudo.source_name}_back"), [pooled], [out],
                            attrs={"shape": shape}, source_name=pseudo.source_name))
        self.nodes[k:k + 1] = new
        self.counts["relu_pool"] += 1

    def run(self, config):
        layers, inputs, outputs = self.read_layers(config)
        self.check_classes(layers)
        input_tensor, output = self.translate(layers, inputs, outputs)
        if output == input_tensor:
            self.fail_file("the model computes nothing (its output is its input)")
        self.prune(output)
        self.fold_and_fuse(input_tensor, output)
        used = {input_tensor} | {t for n in self.nodes for t in n.inputs + n.outputs}
        tensors = {k: v for k, v in self.tensors.items() if k in used}
        c = self.counts
        notes = [f"read from a Keras {config.get('class_name')} model in an HDF5 file: {len(layers)} layers, "
                 f"{len(self.nodes)} ops"]
        if c["folded"]:
            notes.append(f"{c['folded']} BatchNormalization layer(s) folded into the op before them")
        if c["fused"]:
            notes.append(f"{c['fused']} ReLU / ReLU6 activation(s) fused into the op before them")
        if c["relu_pool"]:
            notes.append(f"{c['relu_pool']} standalone ReLU / ReLU6 run as a 1x1 max pool with that activation")
        return Graph(self.name, tensors, self.nodes, [input_tensor], [output], layout="NHWC", source="keras-h5",
                     notes=notes)


def graph_from_h5(path):
    """The :class:`~darbgen.ir.Graph` of a legacy Keras HDF5 model file (``model.save('m.h5')``).

    Reads the architecture (the ``model_config`` attribute) and the weights
    (``model_weights/``) with h5py alone: no Keras or TensorFlow, nothing
    unpickled, no Lambda code run. Tensors are NHWC as in Keras, without the
    batch axis. The graph is named after the file. Needs h5py."""
    try:
        import h5py
    except ImportError:
        raise DarbgenError("reading Keras .h5 model files needs h5py: pip install h5py") from None
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise DarbgenError(f"{where}: no such file")
    try:
        h5file = h5py.File(where, "r")
    except (OSError, ValueError) as exc:
        raise DarbgenError(f"{where}: is not an HDF5 file ({' '.join(str(exc).split())[:200]}); give a Keras model "
                           f"saved with model.save('model.h5')") from None
    name = os.path.splitext(os.path.basename(where))[0] or "model"
    with h5file:
        raw = h5file.attrs.get("model_config")
        if raw is None:
            what = ("holds only weights (model.save_weights)" if "layer_names" in h5file.attrs
                    or "model_weights" in h5file else "has no model_config (it is not a Keras model file)")
            raise DarbgenError(f"{where}: {what}; darbgen needs the architecture too: save the whole model with "
                               f"model.save('model.h5')")
        try:
            config = json.loads(_decode(raw if not isinstance(raw, np.ndarray) else raw.item()))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DarbgenError(f"{where}: its model_config is not valid JSON ({exc}); the file is damaged") from None
        if "model_weights" not in h5file:
            raise DarbgenError(f"{where}: has a model_config but no model_weights; save the model with its weights "
                               f"(model.save('model.h5'))")
        importer = _Importer(where, name, h5file)
        try:
            return importer.run(config)
        except DarbgenError:
            raise
        except Exception as exc:   # an inconsistent config (a missing key, a wrong type ...)
            raise DarbgenError(f"{where}: cannot be imported ({exc.__class__.__name__}: {exc}); the model_config is "
                               f"damaged or from an unsupported Keras version") from None
