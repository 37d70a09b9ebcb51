"""The layer graph of the chain pipeline: small dataclasses describing what darbgen turns into C.

A :class:`Model` is a sequence of layers (:class:`Dense`, :class:`Conv2D`,
:class:`Conv1D`, :class:`DepthwiseConv2D`, :class:`Pool2D`, :class:`Pool1D`,
:class:`GlobalAveragePool`, :class:`LSTM`, :class:`GRU`, :class:`Activation`,
:class:`Flatten`), each a :class:`Layer` answering for its own shape, lowering,
float64 forward pass and pruning, so the Model never asks a layer's class.
:meth:`Model.ops` lowers it to the ops the C runs: :class:`Dense`,
:class:`ConvOp`, :class:`PoolOp`, :class:`Softmax` and :class:`RecurrentOp`,
whose ``op_kind`` names their entry in :data:`darbgen.layers.KINDS`, where
their quantization, reference and C live.

Only NumPy and the float64 activations (:mod:`darbgen.activations`) are
needed here.
"""
from dataclasses import dataclass

import numpy as np

from .activations import activate_f64, softmax_f64
from .errors import DarbgenError

ACTIVATIONS = ("none", "relu", "relu6", "sigmoid", "tanh")


class Layer:
    """What every layer of a :class:`Model` answers. Subclasses (dataclasses)
    override what applies; the defaults fit a layer that lowers to one op."""

    #: has a weight matrix darbgen prunes (``pruning_matrix``, ``with_mask``)
    prunable = False

    def check_previous(self, previous):
        """Refuse the layer before this one when this one cannot follow it."""

    def output_shape(self, in_shape):
        """The output shape (without batch) for ``in_shape``; raises DarbgenError when the input does not fit."""
        raise NotImplementedError

    def op(self, in_shape):
        """The op the C runs for this layer at ``in_shape``."""
        raise NotImplementedError

    def lower(self, ops, in_shape, out_shape):
        """Add this layer to the op list ``ops`` (see :meth:`Model.ops`)."""
        ops.append(self.op(in_shape))

    def apply_f64(self, x, in_shape):
        """The layer's float64 output for the (n, inputs) array ``x`` of shape ``in_shape``."""
        return self.op(in_shape).forward_f64(x)[1]

    def pruning_matrices(self):
        """{name: matrix} of what is pruned (none unless ``prunable``)."""
        return {self.name: self.pruning_matrix} if self.prunable else {}

    def with_pruning(self, results):
        """A copy pruned by ``results`` ({matrix name: PruneResult}), or the layer itself when nothing applies."""
        if self.prunable and self.name in results:
            return self.with_mask(results[self.name])
        return self


@dataclass
class Dense(Layer):
    """A fully connected layer ``out = activation(weight @ in + bias)``.

    Attributes:
        name: the layer's name (becomes part of the C identifiers).
        weight: (out, in) weights; pruned entries are zero.
        bias: (out,) bias, or None for none (zeros).
        mask: (out, in) bool, True where a weight is kept (default: the
            non-zero weights). Kept weights stay in the pattern even when their
            value is zero.
        block_sizes: (out,) DARB / BMWM block size of every row (needed by the
            ``packed`` kernel), or None.
        activation: one of ``ACTIVATIONS``.
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray = None
    mask: np.ndarray = None
    block_sizes: np.ndarray = None
    activation: str = "none"

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 2 or w.size == 0:
            raise DarbgenError(f"{self.name}: a dense layer needs a non-empty (out, in) matrix, got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
            raise DarbgenError(f"{self.name}: weights must be real numbers, got dtype {w.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            w32 = w.astype(np.float32)
        if not np.all(np.isfinite(w32)):
            raise DarbgenError(f"{self.name}: weights hold NaN or inf (or values beyond float32); fix the model "
                               f"before generating code")
        if self.mask is None:
            mask = w32 != 0
        else:
            mask = np.asarray(self.mask)
            if mask.shape != w.shape:
                raise DarbgenError(f"{self.name}: mask shape {mask.shape} does not match the weights {w.shape}")
            mask = mask.astype(bool)
        self.mask = mask
        self.weight = np.where(mask, w32, np.float32(0))
        rows = w.shape[0]
        if self.bias is None:
            self.bias = np.zeros(rows, np.float32)
        else:
            b = np.asarray(self.bias)
            if b.shape != (rows,):
                raise DarbgenError(f"{self.name}: bias shape {b.shape} does not match {rows} outputs")
            with np.errstate(over="ignore", invalid="ignore"):
                b = b.astype(np.float32)
            if not np.all(np.isfinite(b)):
                raise DarbgenError(f"{self.name}: bias holds NaN or inf; fix the model before generating code")
            self.bias = b
        if self.block_sizes is not None:
            bs = np.asarray(self.block_sizes)
            if bs.shape != (rows,) or not np.issubdtype(bs.dtype, np.integer) or np.any(bs < 1):
                raise DarbgenError(f"{self.name}: block_sizes must be {rows} positive integers, one per row")
            self.block_sizes = bs.astype(np.int64)
        if self.activation not in ACTIVATIONS:
            raise DarbgenError(f"{self.name}: activation {self.activation!r} is not supported by the dense kernels; "
                               f"choose one of {', '.join(ACTIVATIONS)}")

    op_kind = "dense"
    prunable = True
    #: a following Activation fuses into it (:meth:`with_activation`)
    fuses_activation = True

    rows = property(lambda self: self.weight.shape[0], doc="outputs (matrix rows)")
    cols = property(lambda self: self.weight.shape[1], doc="inputs (matrix columns)")
    #: values in one output / input tensor (what chains ops together)
    out_size, in_size = rows, cols

    def output_shape(self, in_shape):
        size = int(np.prod(in_shape))
        if len(in_shape) != 1 or size != self.cols:
            raise DarbgenError(f"{self.name}: a dense layer with {self.cols} inputs cannot take a tensor "
                               f"of shape {in_shape}" + (" (add a flatten layer before it)"
                                                         if size == self.cols else ""))
        return (self.rows,)

    def op(self, in_shape):
        return self

    def with_activation(self, activation):
        return Dense(self.name, self.weight, self.bias, self.mask, self.block_sizes, activation)

    def with_parameters(self, weight, bias):
        """The same layer with other weights and bias (and no activation; see :func:`fold_batchnorm`)."""
        return Dense(self.name, weight, bias, self.mask, self.block_sizes, "none")

    @property
    def kept(self):
        return int(np.count_nonzero(self.mask))

    @property
    def ratio(self):
        return self.mask.size / max(self.kept, 1)

    @property
    def pruning_matrix(self):
        return self.weight

    def with_mask(self, result):
        """A copy pruned by ``result`` (a PruneResult): masked weights, mask, block sizes."""
        return Dense(self.name, result.apply(self.weight), self.bias, result.mask, result.block_sizes,
                     self.activation)

    def patches(self, x, pad_value):
        """(n, 1, cols): what the matrix multiplies, one "pixel" per input (as :meth:`ConvOp.patches`)."""
        return x[:, None, :]

    def forward_f64(self, x):
        pre = np.asarray(x, np.float64) @ self.weight.astype(np.float64).T + self.bias.astype(np.float64)
        return pre, activate_f64(self.activation, pre)


@dataclass
class Activation(Layer):
    """An activation on its own: relu, relu6, sigmoid, tanh or softmax (over the
    last axis). Element-wise ones are fused into the layer before them."""

    name: str
    kind: str

    def __post_init__(self):
        if self.kind not in ACTIVATIONS + ("softmax",):
            raise DarbgenError(f"{self.name}: activation {self.kind!r} is not supported; choose one of "
                               f"{', '.join(ACTIVATIONS + ('softmax',))}")

    def output_shape(self, in_shape):
        if self.kind == "softmax" and len(in_shape) != 1:
            raise DarbgenError(f"{self.name}: softmax needs a vector, got shape {in_shape}")
        return in_shape

    def lower(self, ops, in_shape, out_shape):
        """softmax becomes a :class:`Softmax` op; the others fuse into the dense or
        convolution op before them (when it has no activation yet)."""
        if self.kind == "softmax":
            ops.append(Softmax(self.name, int(np.prod(out_shape))))
        elif ops and ops[-1].fuses_activation and ops[-1].activation == "none":
            ops[-1] = ops[-1].with_activation(self.kind)
        elif self.kind != "none":
            raise DarbgenError(f"{self.name}: a {self.kind} that does not follow a dense layer without "
                               f"activation is not supported yet")

    def apply_f64(self, x, in_shape):
        return softmax_f64(x) if self.kind == "softmax" else activate_f64(self.kind, x)


@dataclass
class Flatten(Layer):
    """Reshape to one dimension (a no-op on the contiguous buffer)."""

    name: str

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def lower(self, ops, in_shape, out_shape):
        pass

    def apply_f64(self, x, in_shape):
        return x


@dataclass
class Softmax:
    """softmax over a vector of ``size`` values (a lowered Activation)."""

    name: str
    size: int

    op_kind = "softmax"
    fuses_activation = False

    @property
    def rows(self):
        return self.size

    @property
    def cols(self):
        return self.size

    in_size = out_size = property(lambda self: self.size)


@dataclass
class Model:
    """A sequential network: ``input_shape`` (without batch) and its layers in order.

    :meth:`ops` lowers it to what the C runs: element-wise activations fused
    into the dense layer before them, flattens dropped, softmax kept as an op.
    """

    name: str
    input_shape: tuple
    layers: list
    #: for classifiers: the label of each output (None: the output index is the class)
    classes: np.ndarray = None

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in self.input_shape)
        if not self.layers:
            raise DarbgenError(f"{self.name}: the model has no layers")
        names = [layer.name for layer in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DarbgenError(f"{self.name}: layer name {dup[0]!r} is used twice; layer names must be unique")
        self.shapes()

    def shapes(self):
        """The output shape of every layer, checking that each fits the one before."""
        shape = self.input_shape
        out = []
        for k, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise DarbgenError(f"{getattr(layer, 'name', layer)}: layer kind {type(layer).__name__} is not "
                                   f"supported")
            if k:
                layer.check_previous(self.layers[k - 1])
            shape = layer.output_shape(shape)
            out.append(shape)
        return out

    @property
    def output_shape(self):
        return self.shapes()[-1]

    def weight_layers(self):
        """The layers whose weights are pruned, in order."""
        return [layer for layer in self.layers if layer.prunable]

    def pruning_matrices(self):
        """{name: matrix} of everything pruned (an LSTM / GRU gives two: name.w_ih, name.w_hh)."""
        out = {}
        for layer in self.weight_layers():
            out.update(layer.pruning_matrices())
        return out

    def ops(self):
        """The lowered op list: Dense, ConvOp (activations fused), PoolOp, Softmax, RecurrentOp."""
        ops = []
        shape = self.input_shape
        for layer, out_shape in zip(self.layers, self.shapes()):
            layer.lower(ops, shape, out_shape)
            shape = out_shape
        if not ops:
            raise DarbgenError(f"{self.name}: nothing to compute (no dense layer or softmax)")
        return ops

    def with_pruning(self, results):
        """A copy whose dense layers carry the masks (and block sizes) of
        ``results`` ({layer name: PruneResult}), pruned weights set to zero."""
        layers = [layer.with_pruning(results) for layer in self.layers]
        return Model(self.name, self.input_shape, layers, self.classes)

    @np.errstate(under="ignore")
    def forward(self, x):
        """The float64 forward pass (the model as trained, or pruned)."""
        for _, _, y in self.walk(x):
            pass
        return y

    def walk(self, x):
        """The float64 forward pass layer by layer: yields (layer, input
        shape, input) for every layer, then (None, output shape, output).
        (A generator: callers set ``np.errstate`` around the loop.)"""
        y = np.asarray(x, np.float64).reshape(len(x), -1)
        shape = self.input_shape
        for layer, out_shape in zip(self.layers, self.shapes()):
            yield layer, shape, y
            y = layer.apply_f64(y, shape)
            shape = out_shape
        yield None, shape, y


# ----------------------------------------------------------------------------- convolutions

def _pair(value, what, name):
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise DarbgenError(f"{name}: {what} must be a positive integer or a pair of them, got {value}")
    return value


def _single(value, what, name):
    """A positive int from an int or a one-element list (JSON often has [2])."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise DarbgenError(f"{name}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _padding_1d(padding):
    """A 1-D padding ('valid', 'same', an int, or (left, right)) as the 2-D
    (top, bottom, left, right) of the height-1 form (strings pass through)."""
    if isinstance(padding, str):
        return padding
    p = (padding,) if isinstance(padding, (int, np.integer)) else tuple(padding)
    return (0, 0) + (p[0], p[-1])


def _same_padding(size, k, stride, dilation):
    """TensorFlow's 'same': output ceil(size / stride), extra padding at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass
class Conv2D(Layer):
    """A 2-D convolution over channel-first tensors (C, H, W).

    ``weight`` is (out, in, kh, kw) (PyTorch's layout); it is pruned as the
    (out, in * kh * kw) matrix, column (c, ky, kx) at ``(c * kh + ky) * kw +
    kx``. ``padding``: "valid", "same" (TensorFlow's: extra at the end), an
    int, a pair (top/bottom, left/right) or four (top, bottom, left, right).
    ``mask`` is (out, in * kh * kw) or the weight's shape.
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray = None
    stride: tuple = (1, 1)
    padding: object = "valid"
    dilation: tuple = (1, 1)
    mask: np.ndarray = None
    block_sizes: np.ndarray = None
    activation: str = "none"

    prunable = True

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 4 or w.size == 0:
            raise DarbgenError(f"{self.name}: a Conv2D kernel must be (out, in, kh, kw), got shape {w.shape}")
        mask = None if self.mask is None else np.asarray(self.mask).reshape(w.shape[0], -1)
        self.matrix = Dense(self.name, w.reshape(w.shape[0], -1), self.bias, mask, self.block_sizes,
                            self.activation)
        self.weight = self.matrix.weight.reshape(w.shape)
        self.bias, self.mask, self.block_sizes = self.matrix.bias, self.matrix.mask, self.matrix.block_sizes
        self.stride = _pair(self.stride, "stride", self.name)
        self.dilation = _pair(self.dilation, "dilation", self.name)
        if isinstance(self.padding, str):
            self.padding = self.padding.lower()
            if self.padding not in ("valid", "same"):
                raise DarbgenError(f"{self.name}: padding must be 'valid', 'same' or integers, got "
                                   f"{self.padding!r}")
        else:
            try:
                p = (self.padding,) if isinstance(self.padding, (int, np.integer)) else tuple(self.padding)
                p = tuple(int(v) for v in p)
            except (TypeError, ValueError):
                raise DarbgenError(f"{self.name}: padding must be 'valid', 'same' or integers, got "
                                   f"{self.padding!r}") from None
            if len(p) == 1:
                p = p * 4
            elif len(p) == 2:
                p = (p[0], p[0], p[1], p[1])
            if len(p) != 4 or min(p) < 0:
                raise DarbgenError(f"{self.name}: padding must be 'valid', 'same', or 1, 2 or 4 non-negative "
                                   f"integers, got {self.padding!r}")
            self.padding = p

    @property
    def kernel_size(self):
        return self.weight.shape[2:]

    def resolved_padding(self, in_h, in_w):
        """(top, bottom, left, right) for an input of in_h x in_w."""
        kh, kw = self.kernel_size
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            return (_same_padding(in_h, kh, self.stride[0], self.dilation[0])
                    + _same_padding(in_w, kw, self.stride[1], self.dilation[1]))
        return self.padding

    def output_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[0] != self.weight.shape[1]:
            raise DarbgenError(f"{self.name}: a Conv2D with {self.weight.shape[1]} input channels needs a (C, H, W) "
                               f"input with C = {self.weight.shape[1]}, got shape {tuple(in_shape)}")
        _, h, w = in_shape
        kh, kw = self.kernel_size
        top, bottom, left, right = self.resolved_padding(h, w)
        oh = (h + top + bottom - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + left + right - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if oh < 1 or ow < 1:
            raise DarbgenError(f"{self.name}: the kernel does not fit the {h} x {w} input (with padding "
                               f"{(top, bottom, left, right)})")
        return (self.weight.shape[0], oh, ow)

    def op(self, in_shape):
        return ConvOp(self, tuple(in_shape))

    @property
    def pruning_matrix(self):
        return self.matrix.weight

    def with_mask(self, result):
        return Conv2D(self.name, result.apply(self.matrix.weight).reshape(self.weight.shape), self.bias,
                      self.stride, self.padding, self.dilation, result.mask, result.block_sizes, self.activation)

    def with_parameters(self, weight, bias):
        """The same layer with other weights and bias (and no activation; see :func:`fold_batchnorm`)."""
        return type(self)(self.name, weight, bias, self.stride, self.padding, self.dilation, self.mask,
                          self.block_sizes, "none")


@dataclass
class Conv1D(Layer):
    """A 1-D convolution over (C, L) tensors; ``weight`` (out, in, k). Runs as a
    Conv2D with height 1."""

    name: str
    weight: np.ndarray
    bias: np.ndarray = None
    stride: int = 1
    padding: object = "valid"
    dilation: int = 1
    mask: np.ndarray = None
    block_sizes: np.ndarray = None
    activation: str = "none"

    prunable = True

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 3 or w.size == 0:
            raise DarbgenError(f"{self.name}: a Conv1D kernel must be (out, in, k), got shape {w.shape}")
        pad = _padding_1d(self.padding)
        stride, dilation = _single(self.stride, "stride", self.name), _single(self.dilation, "dilation", self.name)
        self.as_2d = Conv2D(self.name, w[:, :, None, :], self.bias, (1, stride), pad, (1, dilation), self.mask,
                            self.block_sizes, self.activation)
        self.weight = self.as_2d.weight[:, :, 0, :]
        self.bias, self.mask, self.block_sizes = self.as_2d.bias, self.as_2d.mask, self.as_2d.block_sizes

    def output_shape(self, in_shape):
        if len(in_shape) != 2:
            raise DarbgenError(f"{self.name}: a Conv1D needs a (C, L) input, got shape {tuple(in_shape)}")
        c, h, w = self.as_2d.output_shape((in_shape[0], 1, in_shape[1]))
        return (c, w)

    def op(self, in_shape):
        return ConvOp(self.as_2d, (in_shape[0], 1, in_shape[1]))

    @property
    def pruning_matrix(self):
        return self.as_2d.matrix.weight

    def with_mask(self, result):
        return Conv1D(self.name, result.apply(self.pruning_matrix).reshape(self.weight.shape), self.bias,
                      self.stride, self.padding, self.dilation, result.mask, result.block_sizes, self.activation)

    def with_parameters(self, weight, bias):
        """The same layer with other weights and bias (and no activation; see :func:`fold_batchnorm`)."""
        return type(self)(self.name, weight, bias, self.stride, self.padding, self.dilation, self.mask,
                          self.block_sizes, "none")


def gather_windows(op, x, fill):
    """For the references: the input values under every output pixel's window
    of a convolution or pooling op (its in_shape, padding, kernel_size,
    stride, dilation, out_shape), as (n, C, pixels, kh * kw) with positions
    outside the input reading ``fill``, and the (pixels, kh * kw) mask of the
    real (unpadded) positions."""
    c, h, w = op.in_shape
    top, bottom, left, right = op.padding
    hp, wp = h + top + bottom, w + left + right
    kh, kw = op.kernel_size
    oh, ow = op.out_shape[1:]
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    iy = oy.ravel()[:, None] * op.stride[0] + ky.ravel()[None, :] * op.dilation[0]
    ix = ox.ravel()[:, None] * op.stride[1] + kx.ravel()[None, :] * op.dilation[1]
    index = iy * wp + ix
    x = np.asarray(x)
    padded = np.full((x.shape[0], c, hp, wp), fill, dtype=x.dtype)
    padded[:, :, top:top + h, left:left + w] = x.reshape(-1, c, h, w)
    real = np.zeros((hp, wp), bool)
    real[top:top + h, left:left + w] = True
    return padded.reshape(x.shape[0], c, -1)[:, :, index], real.ravel()[index]


class ConvOp:
    """A convolution at a known input shape, as the C runs it: the pruned
    (out, in * kh * kw) matrix (``weight``, ``mask``, ``block_sizes``, like a
    Dense) plus the geometry."""

    op_kind = "conv"
    fuses_activation = True

    def __init__(self, conv, in_shape, activation=None):
        self.conv = conv
        self.name = conv.name
        m = conv.matrix
        self.weight, self.bias, self.mask, self.block_sizes = m.weight, m.bias, m.mask, m.block_sizes
        self.activation = conv.activation if activation is None else activation
        self.in_shape = tuple(in_shape)
        self.out_shape = conv.output_shape(self.in_shape)
        self.kernel_size = tuple(conv.kernel_size)
        self.stride, self.dilation = conv.stride, conv.dilation
        self.padding = conv.resolved_padding(*self.in_shape[1:])

    rows = property(lambda self: self.weight.shape[0])
    cols = property(lambda self: self.weight.shape[1])
    in_size = property(lambda self: int(np.prod(self.in_shape)))
    out_size = property(lambda self: int(np.prod(self.out_shape)))
    kept = property(lambda self: int(np.count_nonzero(self.mask)))
    ratio = property(lambda self: self.mask.size / max(self.kept, 1))

    def with_activation(self, activation):
        return ConvOp(self.conv, self.in_shape, activation)

    def patches(self, x, pad_value):
        """(n, pixels, cols) input patches (an im2col, for the reference only),
        column (c, ky, kx) as in the weight matrix."""
        v, _ = gather_windows(self, x, pad_value)
        n, c, pixels, taps = v.shape
        return v.transpose(0, 2, 1, 3).reshape(n, pixels, c * taps)

    def forward_f64(self, x):
        p = self.patches(np.asarray(x, np.float64), 0.0)
        pre = (p @ self.weight.astype(np.float64).T + self.bias.astype(np.float64)).transpose(0, 2, 1)
        pre = pre.reshape(len(x), -1)
        return pre, activate_f64(self.activation, pre)


# ----------------------------------------------------------------------------- pooling

@dataclass
class Pool2D(Layer):
    """Max or average pooling over (C, H, W). Padded positions are ignored
    (an average divides by the number of real inputs in the window, as TFLite).
    ``stride`` defaults to the window size."""

    name: str
    kind: str
    size: tuple
    stride: tuple = None
    padding: object = "valid"

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise DarbgenError(f"{self.name}: pooling kind must be 'max' or 'avg', got {self.kind!r}")
        self.size = _pair(self.size, "pool size", self.name)
        self.stride = self.size if self.stride is None else _pair(self.stride, "stride", self.name)
        # the geometry (and its checks) of a convolution with the same window
        self._window = Conv2D(self.name, np.zeros((1, 1) + self.size, np.float32), stride=self.stride,
                              padding=self.padding)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise DarbgenError(f"{self.name}: 2-D pooling needs a (C, H, W) input, got shape {tuple(in_shape)}")
        top, bottom, left, right = self._window.resolved_padding(*in_shape[1:])
        if max(top, bottom) >= self.size[0] or max(left, right) >= self.size[1]:
            raise DarbgenError(f"{self.name}: padding {(top, bottom, left, right)} is as wide as the {self.size} "
                               f"window, so some windows would hold only padding; use less padding")
        _, oh, ow = self._window.output_shape((1,) + tuple(in_shape[1:]))
        return (in_shape[0], oh, ow)

    def op(self, in_shape):
        return PoolOp(self.name, self.kind, tuple(in_shape), self.size, self.stride,
                      self._window.resolved_padding(*in_shape[1:]), self.output_shape(in_shape))


@dataclass
class Pool1D(Layer):
    """Max or average pooling over (C, L); runs as a Pool2D of height 1."""

    name: str
    kind: str
    size: int
    stride: int = None
    padding: object = "valid"

    def __post_init__(self):
        pad = _padding_1d(self.padding)
        self.as_2d = Pool2D(self.name, self.kind, (1, _single(self.size, "size", self.name)),
                            None if self.stride is None else (1, _single(self.stride, "stride", self.name)), pad)

    def output_shape(self, in_shape):
        if len(in_shape) != 2:
            raise DarbgenError(f"{self.name}: 1-D pooling needs a (C, L) input, got shape {tuple(in_shape)}")
        c, _, w = self.as_2d.output_shape((in_shape[0], 1, in_shape[1]))
        return (c, w)

    def op(self, in_shape):
        return self.as_2d.op((in_shape[0], 1, in_shape[1]))


@dataclass
class GlobalAveragePool(Layer):
    """The average of each channel: (C, H, W) or (C, L) to (C,)."""

    name: str

    def output_shape(self, in_shape):
        if len(in_shape) not in (2, 3):
            raise DarbgenError(f"{self.name}: global pooling needs a (C, H, W) or (C, L) input, got {in_shape}")
        return (in_shape[0],)

    def op(self, in_shape):
        shape = tuple(in_shape) if len(in_shape) == 3 else (in_shape[0], 1, in_shape[1])
        return PoolOp(self.name, "avg", shape, shape[1:], shape[1:], (0, 0, 0, 0), (shape[0], 1, 1))


class PoolOp:
    """A pooling at a known input shape, as the C runs it."""

    op_kind = "pool"
    fuses_activation = False

    def __init__(self, name, kind, in_shape, size, stride, padding, out_shape):
        self.name, self.kind = name, kind
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if len(self.out_shape) == 2:
            self.out_shape = (self.out_shape[0], 1, self.out_shape[1])
        self.kernel_size, self.stride, self.padding = tuple(size), tuple(stride), tuple(padding)
        self.dilation = (1, 1)

    in_size = property(lambda self: int(np.prod(self.in_shape)))
    out_size = property(lambda self: int(np.prod(self.out_shape)))
    rows = property(lambda self: self.in_shape[0])

    def windows(self, x, fill):
        """(n, C, pixels, window) values and a (pixels, window) mask of real (unpadded) positions."""
        return gather_windows(self, x, fill)

    def forward_f64(self, x):
        v, real = self.windows(np.asarray(x, np.float64), np.nan)
        if self.kind == "max":
            y = np.where(real, v, -np.inf).max(axis=-1)
        else:
            y = np.where(real, v, 0.0).sum(axis=-1) / real.sum(axis=-1)
        y = y.reshape(len(x), -1)
        return y, y


# ----------------------------------------------------------------------------- batch normalisation

def fold_batchnorm(layer, gamma, beta, mean, var, eps=1e-5, name="batchnorm"):
    """``layer`` (Dense, Conv1D or Conv2D, no activation yet) followed by a
    batch normalisation, as one layer: each output row scaled by
    ``gamma / sqrt(var + eps)`` and its bias shifted."""
    if not isinstance(layer, (Dense, Conv1D, Conv2D, DepthwiseConv2D)):
        raise DarbgenError(f"{name}: batch normalisation must follow a dense or convolution layer, not "
                           f"{type(layer).__name__}")
    if layer.activation != "none":
        raise DarbgenError(f"{name}: cannot fold into {layer.name}, whose activation ({layer.activation}) comes "
                           f"before the normalisation")
    rows = layer.weight.shape[0]
    if layer.bias is None:                   # a depthwise layer may have none
        layer.bias = np.zeros(rows, np.float32)
    params = [np.asarray(p, np.float64).reshape(-1) for p in (gamma, beta, mean, var)]
    if any(p.shape != (rows,) for p in params):
        raise DarbgenError(f"{name}: gamma, beta, mean and var must have {rows} values (the channels of "
                           f"{layer.name})")
    gamma, beta, mean, var = params
    if np.any(var + eps <= 0) or not all(np.all(np.isfinite(p)) for p in params):
        raise DarbgenError(f"{name}: needs finite parameters and var + eps > 0")
    scale = gamma / np.sqrt(var + eps)
    w = layer.weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
    b = (layer.bias.astype(np.float64) - mean) * scale + beta
    return layer.with_parameters(w, b)


@dataclass
class DepthwiseConv2D(Layer):
    """A depthwise 2-D convolution: output channel o filters input channel
    ``o // multiplier`` only. ``weight`` is (channels * multiplier, 1, kh, kw)
    (PyTorch's layout for groups = channels). It is kept dense (not pruned)
    and runs as its own op (:class:`DepthwiseOp`, darb_depthwise_chw_<t>):
    only its channels x multiplier x kh x kw weights are stored."""

    name: str
    weight: np.ndarray
    bias: np.ndarray = None
    stride: tuple = (1, 1)
    padding: object = "valid"
    dilation: tuple = (1, 1)
    activation: str = "none"

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 4 or w.shape[1] != 1 or w.size == 0:
            raise DarbgenError(f"{self.name}: a depthwise kernel must be (channels * multiplier, 1, kh, kw), got "
                               f"shape {w.shape}")
        self.weight = w

    def multiplier(self, channels):
        """Output channels per input channel, for ``channels`` input channels."""
        out = self.weight.shape[0]
        if out % channels:
            raise DarbgenError(f"{self.name}: {out} depthwise filters do not divide among {channels} input "
                               f"channels")
        return out // channels

    def window(self):
        """A one-channel convolution with this layer's kernel size, stride, padding and dilation (its geometry)."""
        return Conv2D(self.name, np.zeros((1, 1) + self.weight.shape[2:], np.float32), None, self.stride,
                      self.padding, self.dilation)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise DarbgenError(f"{self.name}: a depthwise convolution needs a (C, H, W) input, got {in_shape}")
        _, oh, ow = self.window().output_shape((1,) + tuple(in_shape[1:]))
        return (in_shape[0] * self.multiplier(in_shape[0]), oh, ow)

    def op(self, in_shape):
        return DepthwiseOp(self, tuple(in_shape))

    def with_parameters(self, weight, bias):
        """The same layer with other weights and bias (and no activation; see :func:`fold_batchnorm`)."""
        return DepthwiseConv2D(self.name, weight, bias, self.stride, self.padding, self.dilation, "none")


class DepthwiseOp:
    """A depthwise convolution at a known input shape, as the C runs it:
    output channel o applies row o of ``matrix`` (a (channels * multiplier,
    kh * kw) :class:`Dense`, its bias and activation) to the kh x kw window of
    input channel ``o // multiplier``; outputs channel first."""

    op_kind = "depthwise"
    fuses_activation = True

    def __init__(self, layer, in_shape, activation=None):
        self.layer, self.name = layer, layer.name
        self.activation = layer.activation if activation is None else activation
        self.in_shape = tuple(in_shape)
        self.multiplier = layer.multiplier(self.in_shape[0])
        out, _, kh, kw = layer.weight.shape
        self.matrix = Dense(layer.name, np.asarray(layer.weight).reshape(out, kh * kw), layer.bias, None, None,
                            self.activation)
        window = layer.window()
        self.out_shape = layer.output_shape(self.in_shape)
        self.kernel_size, self.stride, self.dilation = (kh, kw), window.stride, window.dilation
        self.padding = window.resolved_padding(*self.in_shape[1:])

    weight = property(lambda self: self.matrix.weight)
    bias = property(lambda self: self.matrix.bias)
    mask = property(lambda self: self.matrix.mask)
    block_sizes = None
    rows = property(lambda self: self.matrix.rows)
    cols = property(lambda self: self.matrix.cols)
    in_size = property(lambda self: int(np.prod(self.in_shape)))
    out_size = property(lambda self: int(np.prod(self.out_shape)))
    kept = property(lambda self: self.matrix.kept)
    ratio = property(lambda self: 1.0)

    def with_activation(self, activation):
        return DepthwiseOp(self.layer, self.in_shape, activation)

    def windows(self, x, fill):
        """(n, out channels, pixels, kh * kw): each output channel's input windows (``fill`` outside)."""
        v, _ = gather_windows(self, x, fill)
        return np.repeat(v, self.multiplier, axis=1)

    def forward_f64(self, x):
        v = self.windows(np.asarray(x, np.float64), 0.0)
        w = self.weight.astype(np.float64)
        pre = np.einsum("ncpt,ct->ncp", v, w) + self.bias.astype(np.float64)[None, :, None]
        pre = pre.reshape(len(x), -1)
        return pre, activate_f64(self.activation, pre)


# ----------------------------------------------------------------------------- recurrent layers

@dataclass
class LSTM(Layer):
    """An LSTM over a (T, inputs) sequence, PyTorch's layout: ``w_ih`` (4H,
    inputs) and ``w_hh`` (4H, H) with the gates in the order i, f, g, o;
    ``b_ih``, ``b_hh`` (4H,). Its output is the last hidden state (H,); the
    C also offers ``<layer>_reset()`` and ``<layer>_step(x_t, h)`` to stream.
    Both matrices are pruned (every gate row gets its own block size).
    ``masks`` / ``block_sizes``: optional {"w_ih": ..., "w_hh": ...}.
    ``return_sequences``: output every step's hidden state, (T, H), as
    Keras' flag of that name and PyTorch's ``output`` (to stack layers);
    otherwise only the last one, (H,)."""

    name: str
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray = None
    b_hh: np.ndarray = None
    masks: dict = None
    block_sizes: dict = None
    return_sequences: bool = False

    gates = 4
    kind = "lstm"
    prunable = True

    def __post_init__(self):
        w_ih, w_hh = np.asarray(self.w_ih), np.asarray(self.w_hh)
        if w_hh.ndim != 2 or w_hh.shape[0] != self.gates * w_hh.shape[1]:
            raise DarbgenError(f"{self.name}: w_hh must be ({self.gates} * hidden, hidden), got shape {w_hh.shape}")
        if w_ih.ndim != 2 or w_ih.shape[0] != w_hh.shape[0]:
            raise DarbgenError(f"{self.name}: w_ih must be ({w_hh.shape[0]}, inputs), got shape {w_ih.shape}")
        masks, blocks = self.masks or {}, self.block_sizes or {}
        self.ih = Dense(f"{self.name}.w_ih", w_ih, self.b_ih, masks.get("w_ih"), blocks.get("w_ih"))
        self.hh = Dense(f"{self.name}.w_hh", w_hh, self.b_hh, masks.get("w_hh"), blocks.get("w_hh"))
        self.w_ih, self.w_hh = self.ih.weight, self.hh.weight
        self.b_ih, self.b_hh = self.ih.bias, self.hh.bias

    @property
    def hidden(self):
        return self.w_hh.shape[1]

    def check_previous(self, previous):
        if not isinstance(previous, LSTM):
            raise DarbgenError(f"{self.name}: a recurrent layer takes the model's (steps, features) input or "
                               f"the sequence of the recurrent layer before it (return_sequences), not the "
                               f"output of {type(previous).__name__} {previous.name!r}")
        if not previous.return_sequences:
            raise DarbgenError(f"{self.name}: the recurrent layer before it, {previous.name!r}, "
                               f"returns only its last state; set return_sequences on it to stack them")

    def output_shape(self, in_shape):
        if len(in_shape) != 2 or in_shape[1] != self.w_ih.shape[1]:
            raise DarbgenError(f"{self.name}: needs a (steps, {self.w_ih.shape[1]}) sequence, got shape "
                               f"{tuple(in_shape)}")
        return (int(in_shape[0]), self.hidden) if self.return_sequences else (self.hidden,)

    def pruning_matrices(self):
        return {self.ih.name: self.ih.weight, self.hh.name: self.hh.weight}

    def with_pruning(self, results):
        return self.with_masks(results)

    def with_masks(self, results):
        def pick(part, dense):
            r = results.get(dense.name)
            return (dense.weight if r is None else r.apply(dense.weight), None if r is None else r.mask,
                    None if r is None else r.block_sizes)
        wi, mi, bi = pick("w_ih", self.ih)
        wh, mh, bh = pick("w_hh", self.hh)
        return type(self)(self.name, wi, wh, self.b_ih, self.b_hh, {"w_ih": mi, "w_hh": mh},
                          {"w_ih": bi, "w_hh": bh}, self.return_sequences)

    def op(self, in_shape):
        return RecurrentOp(self, int(in_shape[0]))

    def cell_f64(self, gx, gh, h, c):
        """One step in float64 (PyTorch's equations)."""
        H = self.hidden
        g = gx + gh
        i, f = activate_f64("sigmoid", g[:, :H]), activate_f64("sigmoid", g[:, H:2 * H])
        cand, o = np.tanh(g[:, 2 * H:3 * H]), activate_f64("sigmoid", g[:, 3 * H:])
        c = f * c + i * cand
        return o * np.tanh(c), c


@dataclass
class GRU(LSTM):
    """A GRU, PyTorch's layout: ``w_ih`` (3H, inputs), ``w_hh`` (3H, H), gates
    r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h = (1 - z) n + z h."""

    gates = 3
    kind = "gru"

    def cell_f64(self, gx, gh, h, c):
        H = self.hidden
        r = activate_f64("sigmoid", gx[:, :H] + gh[:, :H])
        z = activate_f64("sigmoid", gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, c


class RecurrentOp:
    """A recurrent layer run over a whole sequence of ``steps`` inputs: in the
    op chain its input is the flattened (steps, inputs) sequence and its output
    the last hidden state."""

    def __init__(self, layer, steps):
        self.layer, self.name, self.steps = layer, layer.name, steps
        self.activation = "none"

    op_kind = "recurrent"
    fuses_activation = False

    in_size = property(lambda self: self.steps * self.layer.w_ih.shape[1])
    out_size = property(lambda self: self.layer.hidden * (self.steps if self.sequences else 1))
    rows = property(lambda self: self.layer.hidden)
    sequences = property(lambda self: self.layer.return_sequences)

    def trace_f64(self, x):
        """Gate pre-activations (input and recurrent parts) and cell states
        over every step of the sequences ``x``, for calibration."""
        x = np.asarray(x, np.float64).reshape(len(x), self.steps, -1)
        layer = self.layer
        h = np.zeros((len(x), layer.hidden))
        c = np.zeros_like(h)
        gxs, ghs, cs, hs = [], [], [], []
        for t in range(self.steps):
            gx = x[:, t] @ layer.w_ih.astype(np.float64).T + layer.b_ih
            gh = h @ layer.w_hh.astype(np.float64).T + layer.b_hh
            h, c = layer.cell_f64(gx, gh, h, c)
            gxs.append(gx)
            ghs.append(gh)
            cs.append(c)
            hs.append(h)
        return np.stack(gxs), np.stack(ghs), np.stack(cs) if layer.kind == "lstm" else None, np.stack(hs)

    def forward_f64(self, x):
        """(outputs, outputs): the last hidden state, or every step's (n, T * H) time first."""
        hs = self.trace_f64(x)[3]
        y = hs.transpose(1, 0, 2).reshape(hs.shape[1], -1) if self.sequences else hs[-1]
        return y, y
