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
    def kept(self):
        return int(np.count_nonzero(self.mask))

    @property
    def ratio(self):
        return self.mask.size / max(self.kept, 1)
