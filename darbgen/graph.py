"""The layer graph: small dataclasses describing what darbgen turns into C.

For now one layer kind, :class:`Dense` (a fully connected layer, possibly
pruned). Whole networks (convolutions, recurrent layers, pooling) join this
module as the code generator learns them.
"""
from dataclasses import dataclass

import numpy as np

from .errors import DarbgenError

ACTIVATIONS = ("none", "relu", "relu6", "sigmoid", "tanh")


@dataclass
class Dense:
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

    @property
    def rows(self):
        return self.weight.shape[0]

    @property
    def cols(self):
        return self.weight.shape[1]

    @property
    def in_size(self):
        """Values in one input tensor."""
        return self.weight.shape[1]

    @property
    def out_size(self):
        """Values in one output tensor."""
        return self.weight.shape[0]

    @property
    def kept(self):
        return int(np.count_nonzero(self.mask))

    @property
    def ratio(self):
        return self.mask.size / max(self.kept, 1)


@dataclass
class Activation:
    """An activation on its own: relu, relu6, sigmoid, tanh or softmax (over the
    last axis). Element-wise ones are fused into the layer before them."""

    name: str
    kind: str

    def __post_init__(self):
        if self.kind not in ACTIVATIONS + ("softmax",):
            raise DarbgenError(f"{self.name}: activation {self.kind!r} is not supported; choose one of "
                               f"{', '.join(ACTIVATIONS + ('softmax',))}")


@dataclass
class Flatten:
    """Reshape to one dimension (a no-op on the contiguous buffer)."""

    name: str


@dataclass
class Softmax:
    """softmax over a vector of ``size`` values (a lowered Activation)."""

    name: str
    size: int

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
        for layer in self.layers:
            if isinstance(layer, Dense):
                size = int(np.prod(shape))
                if len(shape) != 1 or size != layer.cols:
                    raise DarbgenError(f"{layer.name}: a dense layer with {layer.cols} inputs cannot take a tensor "
                                       f"of shape {shape}" + (" (add a flatten layer before it)"
                                                              if size == layer.cols else ""))
                shape = (layer.rows,)
            elif isinstance(layer, Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, Activation):
                if layer.kind == "softmax" and len(shape) != 1:
                    raise DarbgenError(f"{layer.name}: softmax needs a vector, got shape {shape}")
            else:
                raise DarbgenError(f"{getattr(layer, 'name', layer)}: layer kind {type(layer).__name__} is not "
                                   f"supported")
            out.append(shape)
        return out

    @property
    def output_shape(self):
        return self.shapes()[-1]

    def weight_layers(self):
        """The layers whose weights are pruned, in order."""
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def ops(self):
        """The lowered op list: Dense (activation fused) and Softmax."""
        ops = []
        shape = self.input_shape
        for layer, out_shape in zip(self.layers, self.shapes()):
            if isinstance(layer, Dense):
                ops.append(layer)
            elif isinstance(layer, Activation):
                if layer.kind == "softmax":
                    ops.append(Softmax(layer.name, int(np.prod(out_shape))))
                elif ops and isinstance(ops[-1], Dense) and ops[-1].activation == "none":
                    prev = ops[-1]
                    ops[-1] = Dense(prev.name, prev.weight, prev.bias, prev.mask, prev.block_sizes, layer.kind)
                elif layer.kind != "none":
                    raise DarbgenError(f"{layer.name}: a {layer.kind} that does not follow a dense layer without "
                                       f"activation is not supported yet")
            shape = out_shape
        if not ops:
            raise DarbgenError(f"{self.name}: nothing to compute (no dense layer or softmax)")
        return ops

    def with_pruning(self, results):
        """A copy whose dense layers carry the masks (and block sizes) of
        ``results`` ({layer name: PruneResult}), pruned weights set to zero."""
        layers = []
        for layer in self.layers:
            if isinstance(layer, Dense) and layer.name in results:
                r = results[layer.name]
                layer = Dense(layer.name, r.apply(layer.weight), layer.bias, r.mask, r.block_sizes, layer.activation)
            layers.append(layer)
        return Model(self.name, self.input_shape, layers, self.classes)

    def forward(self, x):
        """The float64 forward pass (the model as trained, or pruned)."""
        from .quantize import activate_f64, softmax_f64

        y = np.asarray(x, np.float64).reshape(len(x), -1)
        for layer in self.layers:
            if isinstance(layer, Dense):
                y = y @ layer.weight.astype(np.float64).T + layer.bias.astype(np.float64)
                y = activate_f64(layer.activation, y)
            elif isinstance(layer, Activation):
                y = softmax_f64(y) if layer.kind == "softmax" else activate_f64(layer.kind, y)
        return y
