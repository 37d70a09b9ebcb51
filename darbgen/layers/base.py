"""What every op kind of the chain pipeline declares, in one place: :class:`LayerKind`.

The stages never ask what kind an op is: quantization
(:func:`darbgen.quantize.quantize_network`), the reference
(:func:`darbgen.reference.run` / :func:`~darbgen.reference.exact`), code
generation (:func:`darbgen.codegen.generate`), verification
(:func:`darbgen.verify.make_inputs`) and the build report
(:mod:`darbgen.build`) look the op's kind up with
:func:`darbgen.layers.kind_of` and call these methods.

Also here, because every kind uses them: :func:`check_inputs` (the shape check
of a reference's inputs), :func:`make_inputs` (verification inputs) and
:func:`block_size_histogram` (the report's block sizes).
"""
import numpy as np

from ..errors import DarbgenError

_NP = {"int8": np.int8, "int16": np.int16, "float32": np.float32}
#: the largest |input| of float32 verification inputs (:func:`make_inputs`); a float32 layer whose sums
#: could leave float32's range on such inputs is refused (:func:`darbgen.layers.dense.check_float32_range`)
F32_INPUT_MAX = 100.0


class LayerKind:
    """One op kind of the chain pipeline. Subclasses set ``kind`` (the key of
    :data:`darbgen.layers.KINDS`, which the op classes of :mod:`darbgen.graph`
    name in their ``op_kind``) and override what applies.

    ``op`` is a lowered op (:meth:`darbgen.graph.Model.ops`), ``q`` its
    quantized form, ``g`` the :class:`~darbgen.codegen.module.GeneratedLayer`
    written for it.
    """

    kind = None
    #: the op classes of this kind and their quantized forms (what generate accepts)
    op_classes = ()
    quantized_classes = ()
    #: the op writes its output over its input (the memory plan shares their buffer)
    in_place = False
    #: leading ops of this kind run step by step in ``<model>_step`` (recurrent layers)
    streaming = False

    # ------------------------------------------------------------- float and quantization
    def forward_f64(self, op, x):
        """The op in float64 on (n, in_size) inputs: (pre-activation, output), for calibration."""
        return op.forward_f64(x)

    def quantize(self, op, dtype, in_q, out_range, pre_range, calib=None, percentile=None):
        """The quantized op: ``in_q`` its input quantization (None for float32),
        ``out_range`` / ``pre_range`` the calibrated (low, high) of its output and
        pre-activation, ``calib`` its calibration inputs."""
        raise NotImplementedError

    # ------------------------------------------------------------- reference
    def run(self, q, x, kernel="packed"):
        """What the generated C outputs for ``x`` with ``kernel``, bit for bit."""
        raise NotImplementedError

    def exact(self, q, x):
        """float32 ops: the float64 result and the scale its rounding errors are measured against."""
        raise NotImplementedError

    def propagate_exact(self, q, y, scale):
        """One step of the whole model's float64 check: the exact output of the
        op on ``y`` and the scale of the float32 rounding errors accumulated so
        far (``scale`` coming in). By default as a dense layer, whose activations
        are 1-Lipschitz: ``|W| (|y| + scale) + |b|``."""
        return self.exact(q, y)[0], self.exact(q, np.abs(y) + scale)[1]

    # ------------------------------------------------------------- C
    def emit(self, q, sym, e):
        """Write the op's C through the emitter ``e`` (:class:`darbgen.codegen.emit.ChainEmitter`)
        and return its GeneratedLayer (made by ``e.layer``)."""
        raise NotImplementedError

    def runtime(self, g):
        """The runtime_c kernels the generated layer ``g`` calls: (kernel, dtype) pairs
        (see :func:`darbgen.codegen.sources.runtime_files`)."""
        return {(g.kernel, g.dtype)}

    # ------------------------------------------------------------- report
    def report_kind(self, g):
        """The layer's ``kind`` in the build report."""
        return self.kind

    def report_shape(self, g):
        """The layer's ``shape`` in the build report."""
        return list(g.layer.out_shape)

    def report_fields(self, g):
        """More fields of the layer's row in the build report (kept weights, block sizes...)."""
        return {}

    # ------------------------------------------------------------- verification
    def sign_matrix(self, q):
        """A matrix whose rows' sign patterns drive outputs to their extreme
        accumulators (one column per input), or None."""
        return None

    def make_inputs(self, q, n_random=32, seed=0):
        """Verification inputs for the op in its C input type (see :func:`make_inputs`)."""
        return make_inputs(q, n_random, seed, self.sign_matrix(q))


def check_inputs(q, x):
    """``x`` as an array, checked to be (n, inputs of the op ``q``)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != q.layer.in_size:
        raise DarbgenError(f"{q.name}: inputs must have shape (n, {q.layer.in_size}), got {x.shape}")
    return x


def _sign_patterns(w, lo, hi, rows):
    """Inputs that drive chosen rows to their extreme accumulators (saturation)."""
    out = []
    for r in rows:
        out.append(np.where(w[r] > 0, hi, lo))
        out.append(np.where(w[r] > 0, lo, hi))
    return out


def make_inputs(q, n_random=32, seed=0, w=None):
    """Inputs for one op in its C input type: random, then edge cases (type
    minimum, maximum, zero, zero point, and, from the rows of ``w`` (one column
    per input; default none), sign patterns that push rows to their largest
    and smallest accumulators)."""
    rng = np.random.default_rng(seed)
    cols = q.layer.in_size
    if w is None or w.shape[1] != cols:
        w = np.ones((1, cols))
    rows = sorted({0, w.shape[0] - 1, int(rng.integers(w.shape[0]))})
    if q.dtype == "float32":
        vecs = [rng.standard_normal(cols) for _ in range(n_random // 2)]
        vecs += [rng.uniform(-1, 1, cols) for _ in range(n_random - n_random // 2)]
        vecs += [np.zeros(cols), np.ones(cols), -np.ones(cols), np.full(cols, F32_INPUT_MAX),
                 np.full(cols, -F32_INPUT_MAX)]
        vecs += _sign_patterns(w, -3.0, 3.0, rows) + _sign_patterns(w, -F32_INPUT_MAX, F32_INPUT_MAX, rows[:1])
        return np.asarray(vecs, np.float32)
    lo, hi = q.input.qmin, q.input.qmax
    zp = q.input.zero_point
    vecs = [rng.integers(lo, hi + 1, cols) for _ in range(n_random // 2)]
    spread = max(1, (hi - lo) // 16)
    vecs += [np.clip(zp + rng.integers(-spread, spread + 1, cols), lo, hi) for _ in range(n_random - n_random // 2)]
    vecs += [np.full(cols, lo), np.full(cols, hi), np.zeros(cols), np.full(cols, zp)]
    vecs += _sign_patterns(w, lo, hi, rows)
    return np.asarray(vecs).astype(_NP[q.dtype])


def block_size_histogram(block_sizes):
    """{block size: rows} of a layer's DARB block sizes ({} when it has none)."""
    if block_sizes is None:
        return {}
    sizes, counts = np.unique(block_sizes, return_counts=True)
    return {int(b): int(c) for b, c in zip(sizes, counts)}
