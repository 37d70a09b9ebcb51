"""A PyTorch ``nn.Module`` into darbgen's layer graph (docs/torch.md).

The module is traced with ``torch.fx.symbolic_trace`` (an ``nn.Sequential``,
nested ones included, traces into the same straight chain of calls), its
shapes are propagated on an example input, and each call on the chain from
the input to the output is mapped onto a layer of :mod:`darbgen.graph`.
Batch normalisation is folded into the layer before it, dropout and
identities are skipped. At the end the imported model is run against the
module on random inputs, so an import that would compute something else is
refused rather than returned.

Saved files: darbgen reads ``.pt`` / ``.pth`` only with
``torch.load(path, weights_only=True)`` (it never unpickles arbitrary
objects). Such a file holds weights (a state_dict) but no architecture, so it
is refused with a message explaining how to import it through the Python API.
``.pt2`` files (``torch.export``) are refused unopened: ``torch.export.load``
unpickles parts of the archive with ``weights_only=False``.

``torch`` is imported only when a module or file is read.
"""
import contextlib
import io
import operator
import os

import numpy as np

from ..codegen.names import LayerNames
from ..errors import DarbgenError
from ..graph import (GRU, LSTM, Activation, Conv1D, Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePool,
                     Model, Pool1D, Pool2D, fold_batchnorm)

#: the torch.nn modules ``model_from_torch`` maps onto layers
SUPPORTED_MODULES = ("Linear", "Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "Sigmoid", "Tanh",
                     "Softmax", "Flatten", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
                     "AdaptiveAvgPool2d", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Identity", "LSTM",
                     "GRU")
#: functions and tensor methods understood in traced forward() code
SUPPORTED_CALLS = ("F.relu", "torch.relu", "F.relu6", "torch.sigmoid", "F.sigmoid", "torch.tanh", "F.tanh",
                   "F.softmax", "torch.softmax", "torch.flatten", "F.dropout", "x.relu()", "x.sigmoid()",
                   "x.tanh()", "x.softmax(dim)", "x.flatten(1)", "x.view(x.size(0), -1)", "x.reshape(...)",
                   "x.contiguous()", "x.size(0)", "x.shape[0]", "out[:, -1]", "h[-1]", "h.squeeze(0)")

_WEIGHT_LAYERS = (Dense, Conv1D, Conv2D, DepthwiseConv2D)
_EXAMPLE_BATCH = 3


def _import_torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:
        raise DarbgenError("reading PyTorch models needs the torch package: pip install torch") from None
    return torch


def _np(t):
    return None if t is None else t.detach().cpu().double().numpy().astype(np.float32)


def _squeezed(shape):
    return tuple(int(d) for d in shape if d != 1)


class _Rnn:
    """The value of a recurrent call before it is indexed: ``part`` is "call"
    (the (output, state) tuple), "state" (LSTM's (h, c)), "h" or "c"."""

    def __init__(self, index, module, part, batch_first):
        self.index, self.module, self.part, self.batch_first = index, module, part, batch_first


class _Batch:
    """x.size(0) / x.shape[0] (or x.shape itself: ``shape`` True)."""

    def __init__(self, shape=False):
        self.shape = shape


class _Importer:
    def __init__(self, torch, gm, input_shape, name):
        self.torch, self.gm, self.name = torch, gm, name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.layers = []
        self.names = LayerNames()
        self.values = {}          # fx node -> "tensor" (the chain), _Rnn or _Batch
        self.batch_axis = {}      # tensor node -> axis of the batch in torch's shape
        self.current = None
        self.modules = dict(gm.named_modules())

    # ------------------------------------------------------------------ helpers

    def fail(self, node, message):
        what = node.target if node.op == "call_module" else getattr(node.target, "__name__", node.target)
        kind = f" ({type(self.modules[node.target]).__name__})" if node.op == "call_module" else ""
        raise DarbgenError(f"{self.name}: {node.op.replace('_', ' ')} {what!s}{kind}: {message}")

    def unique(self, base, extra=()):
        """A layer name from ``base``, unique also as a C identifier (:class:`LayerNames`)."""
        return self.names.unique(base, extra)

    def darb_shape(self):
        if not self.layers:
            return self.input_shape
        return Model(self.name, self.input_shape, self.layers).shapes()[-1]

    def add(self, layer):
        self.layers.append(layer)
        self.darb_shape()

    def torch_shape(self, node):
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            self.fail(node, "does not produce a single tensor")
        return tuple(int(d) for d in meta.shape)

    def sample(self, node, axis=0):
        shape = self.torch_shape(node)
        return tuple(d for i, d in enumerate(shape) if i != axis)

    def advance(self, node, axis=0):
        """The chain moves on to ``node``'s tensor; its shape must be what darbgen computes."""
        want = self.sample(node, axis)
        if _squeezed(want) != _squeezed(self.darb_shape()):
            self.fail(node, f"gives a sample of shape {want} in PyTorch, but {tuple(self.darb_shape())} in darbgen's "
                            f"graph; this use is not supported")
        self.values[node] = "tensor"
        self.batch_axis[node] = axis
        self.current = node

    def chain_input(self, node):
        """The one tensor argument of ``node``: the chain's current tensor."""
        from torch.fx import Node

        tensors = []

        def collect(a):
            if isinstance(a, Node):
                tensors.append(a)
            elif isinstance(a, (list, tuple)):
                for v in a:
                    collect(v)
            elif isinstance(a, dict):
                for v in a.values():
                    collect(v)
        collect(node.args)
        collect(node.kwargs)
        chain = [t for t in tensors if not isinstance(self.values.get(t), _Batch)]
        if len(chain) != 1:
            self.fail(node, f"takes {len(chain)} computed tensors; darbgen imports sequential networks (one chain "
                            f"of layers from input to output, no branches, residual connections or parameters used "
                            f"in forward())")
        src = chain[0]
        if src not in self.values:
            self.fail(node, f"reads {src.name!r}, which is not on the chain of layers from the input")
        users = [u for u in src.users if u in self.needed and not isinstance(self.values.get(u), _Batch)
                 and not self.reads_batch(u)]
        if len(users) > 1:
            self.fail(node, f"its input {src.name!r} is used {len(users)} times; darbgen imports a single chain of "
                            f"layers (no branches or residual connections)")
        return src

    def reads_batch(self, node):
        return (node.op == "call_method" and node.target == "size") or (
            node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",))

    def need_tensor(self, node, src):
        if self.values[src] != "tensor":
            self.fail(node, "its input is a recurrent layer's output tuple; index it first (out, _ = lstm(x); "
                            "out[:, -1] or h[-1])")
        if src is not self.current:
            self.fail(node, "does not read the output of the layer before it")

    def activation(self, node, kind):
        src = self.chain_input(node)
        self.need_tensor(node, src)
        name = self.unique(node.target if node.op == "call_module" else node.name)
        prev = self.layers[-1] if self.layers else None
        before = self.layers[-2] if len(self.layers) > 1 else None
        is_max = (isinstance(prev, Pool2D) and prev.kind == "max") or (isinstance(prev, Pool1D)
                                                                      and prev.as_2d.kind == "max")
        if kind != "softmax" and is_max and isinstance(before, _WEIGHT_LAYERS) and before.activation == "none":
            # a monotone activation commutes with max pooling: run it before the pool, fused into the layer
            self.layers.insert(len(self.layers) - 1, Activation(name, kind))
        else:
            if kind == "softmax" and len(self.darb_shape()) != 1:
                self.fail(node, f"softmax over a sample of shape {tuple(self.darb_shape())}: darbgen's softmax runs "
                                f"over a vector (flatten first)")
            self.add(Activation(name, kind))
        self.advance(node, self.batch_axis[src])

    # ------------------------------------------------------------------ the walk

    def run(self, example):
        from torch.fx.passes.shape_prop import ShapeProp

        graph = self.gm.graph
        nodes = list(graph.nodes)
        inputs = [n for n in nodes if n.op == "placeholder"]
        outputs = [n for n in nodes if n.op == "output"]
        if len(inputs) != 1:
            raise DarbgenError(f"{self.name}: forward() must take exactly one input tensor, it takes {len(inputs)} "
                               f"({', '.join(n.name for n in inputs)})")
        self.needed = set()
        stack = list(outputs)
        while stack:                               # what the output depends on (unused unpacked values are not)
            n = stack.pop()
            if n not in self.needed:
                self.needed.add(n)
                stack.extend(n.all_input_nodes)
        try:
            with contextlib.redirect_stderr(io.StringIO()):          # ShapeProp prints the traceback
                ShapeProp(self.gm).propagate(example)
        except Exception as exc:
            exc = exc.__cause__ or exc
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DarbgenError(f"{self.name}: running the module on samples of shape {self.input_shape} failed "
                               f"({exc.__class__.__name__}: {text}); check input_shape (without the batch)") from None
        x = inputs[0]
        self.values[x], self.batch_axis[x], self.current = "tensor", self.input_batch_axis, x
        for node in nodes:
            if node.op == "placeholder" or node not in self.needed:
                continue
            if node.op == "output":
                self.finish(node)
            elif node.op == "call_module":
                self.call_module(node, self.modules[node.target])
            elif node.op == "call_function" and node.target is operator.getitem:
                self.getitem(node)
            elif node.op in ("call_function", "call_method"):
                self.call(node)
            else:
                self.fail(node, "reads a parameter or buffer in forward(); darbgen maps calls of nn modules "
                                f"(supported: {', '.join(SUPPORTED_MODULES)})")
        if not self.layers:
            raise DarbgenError(f"{self.name}: the module computes nothing darbgen can generate code for")
        model = Model(self.name, self.input_shape, self.layers)
        model.ops()
        return model

    def finish(self, node):
        out = node.args[0]
        from torch.fx import Node

        if not isinstance(out, Node):
            raise DarbgenError(f"{self.name}: forward() must return a single tensor, it returns a "
                               f"{type(out).__name__}")
        value = self.values.get(out)
        if isinstance(value, _Rnn):
            self.fail(out, "the model returns a recurrent layer's output tuple; return out (every step) or "
                           "out[:, -1] / h[-1] (the last state)")
        if out is not self.current:
            raise DarbgenError(f"{self.name}: the module's output is not the end of the chain of layers from the "
                               f"input")
        self.output_axis = self.batch_axis[out]

    # ------------------------------------------------------------------ modules

    def call_module(self, node, m):
        nn = self.torch.nn
        kind = type(m).__name__
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)):
            src = self.chain_input(node)
            self.need_tensor(node, src)
            self.advance(node, self.batch_axis[src])
            return
        acts = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
        if type(m) in acts:
            self.activation(node, acts[type(m)])
            return
        if isinstance(m, nn.Softmax):
            self.softmax(node, m.dim)
            return
        if isinstance(m, (nn.LSTM, nn.GRU)) and type(m) in (nn.LSTM, nn.GRU):
            self.recurrent(node, m)
            return
        handler = getattr(self, "mod_" + kind.lower(), None)
        if handler is None or type(m).__module__.split(".")[0] != "torch":
            self.fail(node, f"module {kind} is not supported; supported modules: {', '.join(SUPPORTED_MODULES)} "
                            f"(and in forward(): {', '.join(SUPPORTED_CALLS)})")
        src = self.chain_input(node)
        self.need_tensor(node, src)
        if len(node.args) != 1 or node.kwargs:
            self.fail(node, "must be called with the one input tensor only")
        if self.batch_axis[src] != 0:
            self.fail(node, "its input is sequence first (time, batch, ...); only a recurrent layer can read that")
        handler(node, m)
        self.advance(node, 0)

    def mod_linear(self, node, m):
        if len(self.darb_shape()) != 1:
            self.fail(node, f"applies to the last axis of a sample of shape {tuple(self.darb_shape())}; darbgen's "
                            f"dense layers read vectors (flatten before it)")
        self.add(Dense(self.unique(node.target), _np(m.weight), _np(m.bias)))

    def conv_checks(self, node, m):
        if m.padding_mode != "zeros":
            self.fail(node, f"padding_mode {m.padding_mode!r} is not supported (only 'zeros')")
        return m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)

    def mod_conv2d(self, node, m):
        pad = self.conv_checks(node, m)
        name = self.unique(node.target)
        if m.groups == 1:
            self.add(Conv2D(name, _np(m.weight), _np(m.bias), m.stride, pad, m.dilation))
        elif m.groups == m.in_channels and m.out_channels % m.in_channels == 0:
            self.add(DepthwiseConv2D(name, _np(m.weight), _np(m.bias), m.stride, pad, m.dilation))
        else:
            self.fail(node, f"groups = {m.groups} is not supported (only 1, or groups = in_channels for a depthwise "
                            f"convolution); darbgen has no grouped kernel")

    def mod_conv1d(self, node, m):
        pad = self.conv_checks(node, m)
        if m.groups != 1:
            self.fail(node, f"groups = {m.groups} is not supported for 1-D convolutions (only 1)")
        pad = pad if isinstance(pad, str) else pad[0]
        self.add(Conv1D(self.unique(node.target), _np(m.weight), _np(m.bias), m.stride[0], pad, m.dilation[0]))

    def batchnorm(self, node, m):
        if m.running_mean is None or m.running_var is None:
            self.fail(node, "has no running statistics (track_running_stats = False), so it cannot be folded")
        prev = self.layers[-1] if self.layers else None
        if not isinstance(prev, _WEIGHT_LAYERS) or self.current.op != "call_module" or not isinstance(
                self.modules[self.current.target], (self.torch.nn.Linear, self.torch.nn.Conv1d,
                                                    self.torch.nn.Conv2d)):
            self.fail(node, "batch normalisation must come straight after a Linear or Conv layer (it is folded "
                            "into it)")
        c = m.num_features
        gamma = _np(m.weight) if m.affine else np.ones(c, np.float32)
        beta = _np(m.bias) if m.affine else np.zeros(c, np.float32)
        self.layers[-1] = fold_batchnorm(prev, gamma, beta, m.running_mean.detach().double().numpy(),
                                         m.running_var.detach().double().numpy(), m.eps, name=str(node.target))

    mod_batchnorm1d = mod_batchnorm2d = batchnorm

    def mod_flatten(self, node, m):
        if m.start_dim not in (1, -len(self.torch_shape(self.current)) + 1) or m.end_dim != -1:
            self.fail(node, f"only Flatten(start_dim=1, end_dim=-1) is supported (got {m.start_dim}, {m.end_dim})")
        if len(self.darb_shape()) != 1:
            self.add(Flatten(self.unique(node.target)))

    def pool(self, node, m, kind, dims):
        def tup(v):
            return (int(v),) * dims if isinstance(v, int) else tuple(int(a) for a in v)

        if getattr(m, "return_indices", False):
            self.fail(node, "return_indices is not supported")
        if tup(getattr(m, "dilation", 1)) != (1,) * dims:
            self.fail(node, "dilated pooling is not supported")
        size, pad = tup(m.kernel_size), tup(m.padding)
        stride = size if m.stride is None or (not isinstance(m.stride, int) and not len(m.stride)) else tup(m.stride)
        if kind == "avg":
            if getattr(m, "divisor_override", None):
                self.fail(node, "divisor_override is not supported")
            if m.count_include_pad and any(pad):
                self.fail(node, "count_include_pad = True with padding is not supported: darbgen's average divides "
                                "by the real (unpadded) positions; use count_include_pad=False or no padding")
        name = self.unique(node.target)
        if dims == 2:
            self.add(Pool2D(name, kind, size, stride, pad))
        else:
            self.add(Pool1D(name, kind, size[0], stride[0], pad[0]))
        if m.ceil_mode and _squeezed(self.sample(node)) != _squeezed(self.darb_shape()):
            self.fail(node, "ceil_mode that adds a partial window is not supported")

    def mod_maxpool2d(self, node, m):
        self.pool(node, m, "max", 2)

    def mod_maxpool1d(self, node, m):
        self.pool(node, m, "max", 1)

    def mod_avgpool2d(self, node, m):
        self.pool(node, m, "avg", 2)

    def mod_avgpool1d(self, node, m):
        self.pool(node, m, "avg", 1)

    def adaptive(self, node, m, dims):
        size = m.output_size
        size = (size,) * dims if isinstance(size, int) or size is None else tuple(size)
        if size != (1,) * dims:
            self.fail(node, f"only output size 1 (global average pooling) is supported, got {m.output_size}")
        self.add(GlobalAveragePool(self.unique(node.target)))

    def mod_adaptiveavgpool2d(self, node, m):
        self.adaptive(node, m, 2)

    def mod_adaptiveavgpool1d(self, node, m):
        self.adaptive(node, m, 1)

    # ------------------------------------------------------------------ recurrent layers

    def recurrent(self, node, m):
        src = self.chain_input(node)
        self.need_tensor(node, src)
        if len(node.args) != 1 or node.kwargs:
            self.fail(node, "an initial state is not supported (call it with the input sequence only)")
        if m.bidirectional:
            self.fail(node, "bidirectional = True is not supported (forward only)")
        if getattr(m, "proj_size", 0):
            self.fail(node, "proj_size is not supported")
        if type(m).__name__ == "GRU" or m.mode == "GRU":
            cls = GRU
        else:
            cls = LSTM
        want = 0 if m.batch_first else 1
        if self.batch_axis[src] != want or len(self.torch_shape(src)) != 3:
            self.fail(node, f"with batch_first = {m.batch_first} needs a "
                            f"{'(batch, steps, features)' if m.batch_first else '(steps, batch, features)'} input, "
                            f"got shape {self.torch_shape(src)}")
        base = self.unique(node.target, (".w_ih", ".w_hh") if m.num_layers == 1 else ())
        first = len(self.layers)
        for k in range(m.num_layers):
            name = base if m.num_layers == 1 else self.unique(f"{base}.l{k}", (".w_ih", ".w_hh"))
            get = (lambda p: _np(getattr(m, f"{p}_l{k}"))) if m.bias else None
            layer = cls(name, _np(getattr(m, f"weight_ih_l{k}")), _np(getattr(m, f"weight_hh_l{k}")),
                        get("bias_ih") if m.bias else None, get("bias_hh") if m.bias else None,
                        return_sequences=True)
            self.add(layer)
        self.values[node] = _Rnn(first + m.num_layers - 1, m, "call", m.batch_first)

    def last_state(self, node, rnn):
        self.layers[rnn.index].return_sequences = False
        self.advance(node, 0)

    def getitem(self, node):
        src, index = node.args
        value = self.values.get(src)
        if isinstance(value, _Batch):
            if not value.shape or index != 0:
                self.fail(node, "only x.shape[0] (the batch size) is supported")
            self.values[node] = _Batch()
            return
        if value == "tensor" and self.sequence_last(node, src, index):
            return
        if not isinstance(value, _Rnn):
            self.fail(node, "indexing is supported only on recurrent layers' outputs (out[:, -1], h[-1]) and "
                            "x.shape[0]")
        other = [u for u in src.users if u in self.needed and u is not node]
        if value.part == "call" and index == 0:
            if other:
                self.fail(node, "uses both the output sequence and the state of a recurrent layer; use one of them")
            self.advance(node, 0 if value.batch_first else 1)        # every step: return_sequences
            self.sequence_of = getattr(self, "sequence_of", {})
            self.sequence_of[node] = value
        elif value.part == "call" and index == 1:
            if other:
                self.fail(node, "uses both the output sequence and the state of a recurrent layer; use one of them")
            part = "state" if isinstance(value.module, self.torch.nn.LSTM) else "h"
            self.values[node] = _Rnn(value.index, value.module, part, value.batch_first)
        elif value.part == "state" and index in (0, 1):
            if index == 1:
                self.fail(node, "the LSTM's cell state c is used; darbgen outputs the hidden state h only")
            self.values[node] = _Rnn(value.index, value.module, "h", value.batch_first)
        elif value.part == "h" and index in (-1, value.module.num_layers - 1):
            self.last_state(node, value)
        else:
            self.fail(node, f"index {index!r} of a recurrent layer's output is not supported (use out[:, -1] or "
                            f"h[-1])")

    def sequence_last(self, node, src, index):
        """out[:, -1] (batch first) or out[-1] (sequence first) on a recurrent layer's output."""
        rnn = getattr(self, "sequence_of", {}).get(src)
        if rnn is None or src is not self.current:
            return False
        if isinstance(index, tuple):
            index = tuple(i for i in index if i is not Ellipsis) if index[-1:] == (Ellipsis,) else index
            while index and index[-1] == slice(None):
                index = index[:-1]
        steps = self.torch_shape(src)[1 if rnn.batch_first else 0]
        last = (-1, steps - 1)
        if rnn.batch_first:
            ok = isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and index[1] in last
        else:
            ok = (index in last) if not isinstance(index, tuple) else (len(index) == 1 and index[0] in last)
        if not ok:
            return False
        self.last_state(node, rnn)
        return True

    # ------------------------------------------------------------------ functions and methods

    def call(self, node):
        import torch.nn.functional as F

        torch = self.torch
        t = node.target
        if node.op == "call_method" and t == "size":
            if node.args[1:] not in ((0,),) and node.kwargs.get("dim") != 0:
                self.fail(node, "only x.size(0) (the batch size) is supported")
            self.values[node] = _Batch()
            return
        if node.op == "call_function" and t is getattr:
            if node.args[1] != "shape":
                self.fail(node, f"attribute {node.args[1]!r} is not supported")
            self.values[node] = _Batch(shape=True)
            return
        acts = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", torch.sigmoid: "sigmoid",
                F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh"}
        methods = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
        fn = t if node.op == "call_function" else None
        if (fn is not None and fn in acts) or (node.op == "call_method" and t in methods):
            self.activation(node, acts[fn] if fn is not None else methods[t])
            return
        if fn in (F.softmax, torch.softmax) or (node.op == "call_method" and t == "softmax"):
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            self.softmax(node, dim)
            return
        src = self.chain_input(node)
        if fn is F.dropout or (node.op == "call_method" and t == "contiguous"):
            self.need_tensor(node, src)
            self.advance(node, self.batch_axis[src])
            return
        if node.op == "call_method" and t == "squeeze" and isinstance(self.values.get(src), _Rnn):
            value = self.values[src]
            if value.part == "h" and value.module.num_layers == 1 and node.args[1:] in ((0,), ()):
                self.last_state(node, value)
                return
        if fn is torch.squeeze and isinstance(self.values.get(src), _Rnn):
            value = self.values[src]
            if value.part == "h" and value.module.num_layers == 1 and node.args[1:] in ((0,), ()):
                self.last_state(node, value)
                return
        flat = (fn is torch.flatten or (node.op == "call_method" and t in ("flatten", "view", "reshape"))
                or fn is torch.reshape)
        if flat:
            self.need_tensor(node, src)
            shape = self.torch_shape(node)
            if self.batch_axis[src] != 0 or len(shape) != 2 or shape[0] != _EXAMPLE_BATCH:
                self.fail(node, f"reshapes to {shape} (with a batch of {_EXAMPLE_BATCH}); darbgen supports "
                                f"flattening each sample to (batch, -1) only")
            if len(self.darb_shape()) != 1:
                self.add(Flatten(self.unique(node.name)))
            self.advance(node, 0)
            return
        name = f"{getattr(t, '__module__', '') or ''}.{getattr(t, '__name__', t)}" if fn is not None else f".{t}()"
        self.fail(node, f"{name} is not supported; supported in forward(): {', '.join(SUPPORTED_CALLS)} and the "
                        f"modules {', '.join(SUPPORTED_MODULES)}")

    def softmax(self, node, dim):
        src = self.chain_input(node)
        rank = len(self.torch_shape(src))
        if dim is None or rank != 2 or self.batch_axis[src] != 0 or int(dim) % rank != 1:
            self.fail(node, f"softmax over dim {dim} of a tensor of shape {self.torch_shape(src)} is not supported: "
                            f"darbgen's softmax runs over the features of a (batch, features) tensor (dim = 1 or -1)")
        self.activation(node, "softmax")


def _input_axis(torch, gm):
    """0, or 1 when the input goes straight into a sequence-first (batch_first = False) LSTM / GRU."""
    x = next((n for n in gm.graph.nodes if n.op == "placeholder"), None)
    users = [] if x is None else list(x.users)
    if len(users) == 1 and users[0].op == "call_module":
        m = gm.get_submodule(users[0].target)
        if isinstance(m, (torch.nn.LSTM, torch.nn.GRU)) and not m.batch_first:
            return 1
    return 0


def model_from_torch(module, input_shape, name=None, check=True):
    """A :class:`~darbgen.graph.Model` computing what the PyTorch module
    ``module`` computes in eval mode, for one sample of ``input_shape`` (without
    the batch: (features,), (C, L), (C, H, W) or (steps, features) for a
    recurrent model, batch first or not). ``name``: the model's name (default:
    the module's class name in lower case). ``check``: run the module and the
    imported model on random inputs and refuse the import if they differ.

    Needs the ``torch`` package. A state_dict saved in a file is imported by
    loading it into the module first (``module.load_state_dict(torch.load(path,
    weights_only=True))``)."""
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise DarbgenError(f"model_from_torch needs a torch.nn.Module, got a {type(module).__name__}")
    try:
        input_shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise DarbgenError(f"input_shape must be a tuple of positive integers without the batch, got "
                           f"{input_shape!r}") from None
    if not 1 <= len(input_shape) <= 3 or min(input_shape) < 1:
        raise DarbgenError(f"input_shape must be 1 to 3 positive sizes without the batch ((features,), (C, L), "
                           f"(C, H, W) or (steps, features)), got {input_shape}")
    name = name or type(module).__name__.lower()
    was_training = {m: m.training for m in module.modules()}      # each flag, not only the top one
    module.eval()
    try:
        try:
            gm = torch.fx.symbolic_trace(module)
        except Exception as exc:
            raise DarbgenError(f"{name}: torch.fx cannot trace the module ({exc.__class__.__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); darbgen imports "
                               f"nn.Sequential and modules whose forward() is a straight chain of calls") from None
        axis = _input_axis(torch, gm)
        shape = list(input_shape)
        shape.insert(axis, _EXAMPLE_BATCH)
        gen = torch.Generator().manual_seed(0)
        param = next(iter(module.parameters()), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        example = torch.randn(*shape, generator=gen).to(dtype)
        importer = _Importer(torch, gm, input_shape, name)
        importer.input_batch_axis = axis
        model = importer.run(example)
        if check:
            _check(torch, module, model, example, axis, importer.output_axis, name)
        return model
    finally:
        for m, flag in was_training.items():
            m.training = flag


def _check(torch, module, model, example, axis, out_axis, name):
    """The imported model must compute what the module computes."""
    with torch.no_grad():
        want = module(example)
    want = want.detach().double().numpy()
    if out_axis:
        want = np.moveaxis(want, out_axis, 0)
    want = want.reshape(len(want), -1)
    x = example.double().numpy()
    if axis:
        x = np.moveaxis(x, axis, 0)
    got = model.forward(x.reshape(len(x), -1))
    if got.shape != want.shape:
        raise DarbgenError(f"{name}: the imported model gives {got.shape[1]} outputs per sample, the module "
                           f"{want.shape[1]}; this module is not supported")
    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12)
    if not err <= 1e-4:
        raise DarbgenError(f"{name}: the imported model does not compute what the module computes (largest "
                           f"relative difference {err:.3g}); this module uses something darbgen does not map "
                           f"faithfully")


def model_from_torch_file(path):
    """Read a saved PyTorch file as far as darbgen safely can, and explain.

    ``.pt`` / ``.pth`` are opened only with ``torch.load(path,
    weights_only=True)``: arbitrary pickled objects are refused. Such a file
    holds weights (a state_dict) without the architecture, so darbgen cannot
    build a model from it alone; the error says how to import it through the
    Python API. ``.pt2`` (``torch.export``) files are refused unopened:
    ``torch.export.load`` unpickles parts of them with ``weights_only=False``."""
    where = os.fspath(path)
    ext = os.path.splitext(where)[1].lower()
    if not os.path.isfile(where):
        raise DarbgenError(f"{where}: no such file")
    api = ("build the module in Python, load the weights into it "
           "(module.load_state_dict(torch.load(path, weights_only=True))), then call "
           "darbgen.importers.torch.model_from_torch(module, input_shape) and pass the Model it returns to "
           "darbgen.build.build; or export the module to ONNX (torch.onnx.export) and build the .onnx file")
    if ext == ".pt2":
        _import_torch()
        raise DarbgenError(f"{where}: torch.export (.pt2) programs are not read: torch.export.load unpickles parts "
                           f"of the archive with weights_only=False, and darbgen never unpickles arbitrary objects; "
                           f"{api}")
    torch = _import_torch()
    try:
        obj = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as exc:   # UnpicklingError for arbitrary objects, RuntimeError / EOFError for broken files
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DarbgenError(f"{where}: not a weights-only PyTorch file (torch.load(weights_only=True) refused it: "
                           f"{exc.__class__.__name__}: {text[:300]}); darbgen never unpickles arbitrary objects, "
                           f"so a whole pickled module (torch.save(model)) is refused too. Save "
                           f"model.state_dict() instead, and {api}") from None
    if isinstance(obj, dict):
        raise DarbgenError(f"{where}: holds a state_dict ({len(obj)} tensors) but no architecture, so darbgen cannot "
                           f"build a model from it alone: {api}")
    raise DarbgenError(f"{where}: holds a {type(obj).__name__}, not a model darbgen can read; {api}")
