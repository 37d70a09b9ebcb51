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


FLT_MAX = float(np.finfo(np.float32).max)
_FUSED = ("none", "relu", "relu6", "relu_n1_to_1")


def activation_range_s8(activation, scale, zero_point, what="activation range"):
    """TFLite's CalculateActivationRangeQuantized for an int8 output: (act_min, act_max).

    ``activation``: None / "none" / "linear", "relu", "relu6" or "relu_n1_to_1".
    The bounds are quantized as TFLite does, in float32: ``zero_point + round(f / scale)``."""
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        raise DarbgenError(f"{what}: the output scale must be finite and > 0, got {scale!r}")
    zp = int(zero_point)
    if not QMIN <= zp <= QMAX:
        raise DarbgenError(f"{what}: the int8 zero point must be in -128..127, got {zero_point!r}")

    def q(f):
        with np.errstate(over="ignore"):
            t = round_half_away(np.float32(np.float32(f) / s))
        if not -2.0 ** 31 <= float(t) <= 2.0 ** 31 - 1:
            raise DarbgenError(f"{what}: {f} / {float(s)} overflows int32; the output scale is too small")
        return zp + int(t)

    if activation in (None, "none", "linear"):
        return QMIN, QMAX
    if activation == "relu":
        return max(QMIN, q(0.0)), QMAX
    if activation == "relu6":
        return max(QMIN, q(0.0)), min(QMAX, q(6.0))
    if activation == "relu_n1_to_1":
        return max(QMIN, q(-1.0)), min(QMAX, q(1.0))
    raise DarbgenError(f"{what}: fused activation {activation!r} is not supported; darbgen fuses "
                       f"{', '.join(_FUSED)}")


def activation_range_f32(activation, what="activation range"):
    """TFLite's CalculateActivationRange for float32: (act_min, act_max), +-FLT_MAX for none (as TFLite)."""
    ranges = {"none": (-FLT_MAX, FLT_MAX), "relu": (0.0, FLT_MAX), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}
    key = "none" if activation in (None, "linear") else activation
    if key not in ranges:
        raise DarbgenError(f"{what}: fused activation {activation!r} is not supported; darbgen fuses "
                           f"{', '.join(_FUSED)}")
    return ranges[key]


def activation_range(activation, quant, what):
    """The int8 clamp of a node's fused activation, for its output quantization ``quant`` (a TensorQuant)."""
    return activation_range_s8(activation, quant.scale, quant.zero_point, what)


def multiplier_of(real, what):
    """TFLite's QuantizeMultiplier of a double multiplier: (Q31 int, shift)."""
    if not np.isfinite(real) or real < 0:
        raise DarbgenError(f"{what}: requantization multiplier {real} is not a finite non-negative number; check "
                           f"the model's scales")
    return quantize_multiplier(float(real))


