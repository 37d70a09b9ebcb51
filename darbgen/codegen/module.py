"""What :func:`darbgen.codegen.generate` returns: the generated files in memory
(:class:`CModule`, written atomically by :meth:`CModule.write`), and the units
the test harness runs (:class:`GeneratedLayer` per op or weight matrix,
:class:`ModelUnit` for the whole chain), each with its reference (through
:func:`darbgen.reference.run` / :func:`~darbgen.reference.exact`) and its
verification inputs (from its kind, :mod:`darbgen.layers`).
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import reference
from ..files import write_folder
from ..layers import kind_of
from ..layers.dense import QuantizedDense
from .cformat import CTYPES, ITEMSIZE, ROLES


@dataclass
class GeneratedLayer:
    """What was generated for one layer."""

    quantized: QuantizedDense
    symbol: str
    kernel: str
    header: str
    source: str
    arrays: list
    description: str = ""
    parts: list = field(default_factory=list)     # a recurrent layer's two matrices (verified on their own)
    state_bytes: int = 0                          # static RAM the layer keeps (recurrent state, gate buffers)

    @property
    def name(self):
        return self.quantized.name

    @property
    def layer(self):
        return self.quantized.layer

    @property
    def in_ctype(self):
        return CTYPES[self.quantized.dtype][0]

    out_ctype = in_ctype

    @property
    def in_bytes(self):
        return self.layer.in_size * ITEMSIZE[self.in_ctype]

    @property
    def out_bytes(self):
        return self.layer.out_size * ITEMSIZE[self.in_ctype]

    @property
    def dtype(self):
        return self.quantized.dtype

    @property
    def run_function(self):
        return f"{self.symbol}_run"

    #: float32 tolerance against float64 (relative to the rounding scale)
    rtol = 1e-5

    def data_bytes(self):
        """Bytes of const data by role (values, index, metadata, params) and total."""
        out = dict.fromkeys(ROLES, 0)
        for a in self.arrays + [a for p in self.parts for a in p.arrays]:
            out[a.role] += a.nbytes
        out["total"] = sum(out[r] for r in ROLES)
        return out

    def reference(self, x):
        """What the C must output for inputs ``x`` (bit for bit)."""
        return reference.run(self.quantized, x, self.kernel)

    def exact(self, x):
        """float32 ops: the float64 result and the scale of rounding errors."""
        return reference.exact(self.quantized, x)

    def make_inputs(self, n_random, seed):
        """Random and edge-case inputs in the C's input type (see :func:`darbgen.verify.make_inputs`)."""
        return kind_of(self.quantized).make_inputs(self.quantized, n_random, seed)


@dataclass
class ModelUnit:
    """The whole chain of a module as one run function, ``<prefix>_run``."""

    prefix: str
    ops: list                # the GeneratedLayer of every op, in order
    plan: dict               # memory plan (see plan_memory)
    calib_inputs: np.ndarray = None

    name = "(model)"
    rtol = 1e-4
    kernel = "model"

    @property
    def symbol(self):
        return self.prefix

    @property
    def run_function(self):
        return f"{self.prefix}_run"

    @property
    def dtype(self):
        return self.ops[0].dtype

    @property
    def in_ctype(self):
        return self.ops[0].in_ctype

    out_ctype = in_ctype

    @property
    def layer(self):
        """Shape information (rows = outputs, cols = inputs) like a layer's."""
        return _Shape(self.ops[-1].layer.out_size, self.ops[0].layer.in_size)

    @property
    def in_bytes(self):
        return self.ops[0].in_bytes

    @property
    def out_bytes(self):
        return self.ops[-1].out_bytes

    @property
    def arena_bytes(self):
        return self.plan["arena"] * ITEMSIZE[self.in_ctype]

    def reference(self, x):
        for g in self.ops:
            x = g.reference(x)
        return x

    @np.errstate(under="ignore")
    def exact(self, x):
        """The float64 model, and the scale of the float32 rounding errors it
        accumulates, propagated op by op by each op's kind
        (:meth:`~darbgen.layers.base.LayerKind.propagate_exact`): as |W| (|x| +
        scale) + |b| through dense and convolution layers (whose activations are
        1-Lipschitz), pooled with the values through pooling, and relative to
        the output (times the incoming scale) through softmax."""
        y = np.asarray(x, np.float64)
        scale = np.zeros_like(y)
        for g in self.ops:
            y, scale = kind_of(g.quantized).propagate_exact(g.quantized, y, scale)
        return y, scale

    def make_inputs(self, n_random, seed):
        x = self.ops[0].make_inputs(n_random, seed)
        if self.calib_inputs is not None:
            x = np.concatenate([x, self.calib_inputs.astype(x.dtype)])
        return x


@dataclass
class _Shape:
    out_size: int
    in_size: int


@dataclass
class CModule:
    """Generated C, in memory. ``files`` maps file names to their text."""

    prefix: str
    dtype: str
    kernel: str
    layers: list
    files: dict
    runtime_sources: list
    command: str = ""
    model: ModelUnit = None
    extra: dict = field(default_factory=dict)

    @property
    def units(self):
        """What the test harness runs: every op (a recurrent layer's matrices first), then the whole model."""
        units = [u for g in self.layers for u in g.parts + [g]]
        return units + ([self.model] if self.model is not None else [])

    @property
    def sources(self):
        """The .c files to compile (generated layers and runtime)."""
        return sorted(n for n in self.files if n.endswith(".c"))

    def write(self, out_dir, force=False):
        """Write every file to ``out_dir`` through a temporary folder moved into place whole.

        The folder also gets darbgen's marker file (:data:`darbgen.files.MARKER`).
        An existing non-empty ``out_dir`` is replaced only with ``force``, and
        only if darbgen wrote it (it holds the marker); any other is refused.
        """
        return write_folder(out_dir, self.write_files, force=force)

    def write_files(self, folder):
        """Write every file into an existing folder (no atomicity; used for build folders)."""
        folder = Path(folder)
        for name, text in sorted(self.files.items()):
            (folder / name).write_text(text, encoding="ascii")
