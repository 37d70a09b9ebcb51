"""What pruning returns."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PruneResult:
    """The outcome of pruning one weight matrix.

    Attributes:
        mask: bool array, same shape as the weights; True where a weight is kept.
        ratio: achieved pruning ratio, ``mask.size / kept``.
        requested_ratio: the ratio asked for (None when the structure fixed it,
            e.g. ``bmwm`` with ``block=``).
        block_sizes: int64 array, one block size per row, for ``bmwm`` and
            ``darb``; None for the other methods.
        method: the method name.
        options: the resolved options (block, tile, banks, n, m, candidates...).
        densities: for ``darb``, the row densities of the irregular pass it
            started from; None otherwise.
        name: the matrix's name, used in messages and reports.
        kept: number of kept weights (counted from the mask when not given).
    """

    mask: np.ndarray
    ratio: float
    requested_ratio: float
    block_sizes: np.ndarray
    method: str
    options: dict = field(default_factory=dict)
    densities: np.ndarray = None
    name: str = "weights"
    kept: int = None

    def __post_init__(self):
        if self.kept is None:
            self.kept = int(np.count_nonzero(self.mask))

    @property
    def shape(self):
        return self.mask.shape

    def apply(self, weights):
        """A copy of ``weights`` with the pruned entries set to zero."""
        weights = np.asarray(weights)
        if weights.shape != self.mask.shape:
            raise ValueError(f"{self.name}: weights of shape {weights.shape} do not match the mask {self.mask.shape}")
        return np.where(self.mask, weights, np.zeros((), dtype=weights.dtype))

    def __repr__(self):
        req = "" if self.requested_ratio is None else f" (requested {self.requested_ratio:g})"
        return (f"PruneResult({self.name!r}, method={self.method!r}, shape={self.mask.shape}, "
                f"kept={self.kept}, ratio={self.ratio:.3f}{req})")


@dataclass
class ModelPruneResult:
    """The outcome of pruning several matrices together (:func:`darbgen.prune_model`).

    Behaves like a read-only mapping from matrix name to :class:`PruneResult`.
    """

    layers: dict
    ratio: float
    requested_ratio: float
    method: str
    scope: str

    @property
    def kept(self):
        return sum(r.kept for r in self.layers.values())

    def __getitem__(self, name):
        return self.layers[name]

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def keys(self):
        return self.layers.keys()

    def values(self):
        return self.layers.values()

    def items(self):
        return self.layers.items()
