"""What every op kind declares, in one place: :class:`OpKind`.

The graph pipeline (:mod:`darbgen.graph_build`) never asks what kind an op is:
it looks the kind up in :data:`darbgen.ops.OPS` and calls these methods. A new
op is one module under ``darbgen/ops`` with one registered subclass.
"""
import numpy as np

from ..errors import DarbgenError
from ..quantize import TensorQuant, quantize_multiplier, round_half_away

QMIN, QMAX = -128, 127


class OpKind:
    """One op kind. Subclasses set ``kind`` and override what applies.

    Batched arrays: every method takes and returns arrays with the batch
    first, ``(n, *shape)`` in the node's own layout (NHWC).
    """

    kind = None
    #: the name reports and headers use
    title = None
    #: has a weight matrix darbgen prunes
    prunable = False
    #: int8 output quantization equals the input's (pooling, reshape, pad, max)
    keeps_quant = False

    # ------------------------------------------------------------- shapes
    def output_shapes(self, node, in_shapes):
        """Output shapes from input shapes; raises DarbgenError naming the node when they do not fit."""
        raise NotImplementedError

    # ------------------------------------------------------------- float
    def forward_f64(self, node, xs):
        """The exact float64 result (what the model computes)."""
        raise NotImplementedError

    def forward_f32(self, node, p, xs):
        """The float32 result, in the generated C's order of operations (bit for bit)."""
        raise NotImplementedError

    # ------------------------------------------------------------- int8
    def calibrated_quant(self, node, in_quants, low, high):
        """The int8 output quantization of a float model's node, from its calibrated range."""
        if self.keeps_quant:
            return in_quants[0]
        return tensor_quant_int8(low, high)

    def prepare(self, node, ctx):
        """Everything the reference and the C need, from the node's tensors (``ctx``: a PrepareContext)."""
        return None

    def forward_int8(self, node, p, xs):
        """The int8 result, bit for bit what the C (and TFLite Micro) compute."""
        raise NotImplementedError

    # ------------------------------------------------------------- C
    def emit(self, node, p, e):
        """Write the node's C through the emitter ``e`` (see darbgen.codegen.graph_emit)."""
        raise NotImplementedError

    def describe(self, node, ctx):
        """One line for the report and the header."""
        return self.title or self.kind


def tensor_quant_int8(low, high):
    """Asymmetric int8 quantization covering [low, high] and 0 (TFLite's converter)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    width = high - low
    scale = np.float32(width / 255.0 if width > 0 else 1.0 / 255.0)
    zero_point = int(np.clip(round_half_away(-128 - low / float(scale)), -128, 127))
    return TensorQuant("int8", float(scale), zero_point)


def activation_range(activation, quant, what):
    """TFLite's CalculateActivationRangeQuantized: the int8 clamp of a fused activation.

    Quantizes the bounds as TFLite does: ``zero_point + round(f / scale)`` in float32."""
    scale = np.float32(quant.scale)

    def q(f):
        return int(quant.zero_point) + int(round_half_away(np.float32(np.float32(f) / scale)))

    if activation == "none":
        return QMIN, QMAX
    if activation == "relu":
        return max(QMIN, q(0.0)), QMAX
    if activation == "relu6":
        return max(QMIN, q(0.0)), min(QMAX, q(6.0))
    if activation == "relu_n1_to_1":
        return max(QMIN, q(-1.0)), min(QMAX, q(1.0))
    raise DarbgenError(f"{what}: fused activation {activation!r} is not supported; darbgen fuses none, relu, relu6 "
                       f"and relu_n1_to_1")


def activation_range_f32(activation, what):
    """The float32 clamp of a fused activation (TFLite's CalculateActivationRange)."""
    bounds = {"none": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}
    if activation not in bounds:
        raise DarbgenError(f"{what}: fused activation {activation!r} is not supported; darbgen fuses none, relu, "
                           f"relu6 and relu_n1_to_1")
    lo, hi = bounds[activation]
    return np.float32(lo), np.float32(hi)


def multiplier_of(real, what):
    """TFLite's QuantizeMultiplier of a double multiplier: (Q31 int, shift)."""
    if not np.isfinite(real) or real < 0:
        raise DarbgenError(f"{what}: requantization multiplier {real} is not a finite non-negative number; check "
                           f"the model's scales")
    return quantize_multiplier(float(real))


def apply_clamp_f32(y, lo, hi):
    """Clamp in float32 as the C does (max then min)."""
    return np.minimum(np.maximum(y, lo), hi).astype(np.float32)
