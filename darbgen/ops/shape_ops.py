"""CONCATENATION and PAD, as TensorFlow Lite Micro's reference kernels.

Batched NumPy pure functions on (n, ...) arrays. ``axis`` counts the batch
axis as TFLite does (a TFLite tensor's axis 0 is its batch of 1), so an NHWC
channel concatenation is ``axis=3`` or ``axis=-1``; the batch axis itself
cannot be concatenated or padded here. The C twins are in
runtime_c/src/darb_elementwise.c.

* CONCATENATION (micro/kernels/concatenation.cc, reference/concatenation.h):
  a copy, input after input, of each input's block of ``dims[axis] *
  inner`` values for each step over the dimensions before the axis. TFLM
  requires every int8 input to share the output's scale and zero point (the
  TFLite converter makes it so). When they differ we requantize first, each
  input exactly as TFLM's int8 -> int8 QUANTIZE op would
  (:func:`darbgen.ops.elementwise.requantize_int8`), so the result equals the
  TFLM graph QUANTIZE + CONCATENATION bit for bit.
* PAD / PADV2 (micro/kernels/pad.cc, reference/pad.h): a copy into the middle
  of an output filled with the pad value: for int8 the output zero point
  (PAD) or the constant value (PADV2), for float32 0.0 or the constant.
"""
import numpy as np

from ..errors import DarbgenError
from .elementwise import as_int8, batched, quant_s8, requantize_int8, requantize_params

#: Most dimensions per sample the C pad kernel handles (TFLM handles 5 with the batch).
PAD_MAX_DIMS = 5


def _axis(axis, ndim, what):
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise DarbgenError(f"{what}: axis must be an integer, got {axis!r}")
    a = int(axis) + ndim if axis < 0 else int(axis)
    if not 0 <= a < ndim:
        raise DarbgenError(f"{what}: axis {axis} is outside a {ndim}-axis tensor")
    if a == 0:
        raise DarbgenError(f"{what}: axis 0 is the batch axis; concatenate along a feature axis (1..{ndim - 1} "
                           f"or a negative axis)")
    return a


def _check_concat_shapes(xs, axis, what):
    if len(xs) < 1:
        raise DarbgenError(f"{what}: needs at least one input")
    ndim = xs[0].ndim
    batched(xs[0], f"{what} input 0")
    a = _axis(axis, ndim, what)
    for i, x in enumerate(xs):
        if x.ndim != ndim or x.shape[:a] != xs[0].shape[:a] or x.shape[a + 1:] != xs[0].shape[a + 1:]:
            raise DarbgenError(f"{what}: input {i} has shape {x.shape}, which does not match input 0's "
                               f"{xs[0].shape} except along axis {a}")
    return a


def concat_params(in_quants, out_quant):
    """Per-input :class:`~darbgen.ops.elementwise.RequantParams` (identity
    where an input already has the output's quantization)."""
    so, zpo = quant_s8(out_quant, "CONCATENATION output")
    return tuple(requantize_params(*quant_s8(q, f"CONCATENATION input {i}"), so, zpo, f"CONCATENATION input {i}")
                 for i, q in enumerate(in_quants))


def concat_int8(xs, axis, in_quants, out_quant):
    """TFLM int8 Concatenation of (n, ...) arrays along ``axis`` (see the module doc)."""
    vs = [as_int8(x, f"CONCATENATION input {i}") for i, x in enumerate(xs)]
    if len(in_quants) != len(vs):
        raise DarbgenError(f"CONCATENATION: {len(vs)} inputs but {len(in_quants)} input quantizations")
    a = _check_concat_shapes(vs, axis, "CONCATENATION")
    params = concat_params(in_quants, out_quant)
    parts = [v.astype(np.int8) if p.identity else requantize_int8(v, p) for v, p in zip(vs, params)]
    return np.concatenate(parts, axis=a).astype(np.int8)


def concat_f32(xs, axis):
    """TFLM float32 Concatenation (a copy) of (n, ...) arrays along ``axis``."""
    vs = [np.asarray(x, np.float32) for x in xs]
    a = _check_concat_shapes(vs, axis, "CONCATENATION")
    return np.concatenate(vs, axis=a).astype(np.float32)


def _check_pads(x, pads, what):
    batched(x, f"{what} input")
    try:
        pairs = [(int(b), int(e)) for b, e in pads]
    except (TypeError, ValueError):
        raise DarbgenError(f"{what}: pads must be ((before, after), ...) per non-batch axis, got {pads!r}") from None
    if len(pairs) != x.ndim - 1:
        raise DarbgenError(f"{what}: input of shape {x.shape} needs {x.ndim - 1} (before, after) pairs, one per "
                           f"non-batch axis; got {len(pairs)}")
    if any(b < 0 or e < 0 for b, e in pairs):
        raise DarbgenError(f"{what}: pads must be >= 0 (TFLite PAD does not crop), got {pairs}")
    if x.ndim - 1 > PAD_MAX_DIMS:
        raise DarbgenError(f"{what}: at most {PAD_MAX_DIMS} axes per sample are supported, got {x.ndim - 1}")
    return [(0, 0)] + pairs


def pad_int8(x, pads, pad_value):
    """TFLM int8 Pad: ``pad_value`` is the output zero point (PAD) or PADV2's constant."""
    v = as_int8(x, "PAD input")
    width = _check_pads(v, pads, "PAD")
    if not -128 <= int(pad_value) <= 127:
        raise DarbgenError(f"PAD: the int8 pad value must be in -128..127, got {pad_value}")
    return np.pad(v, width, constant_values=int(pad_value)).astype(np.int8)


def pad_f32(x, pads, pad_value=0.0):
    """TFLM float32 Pad (0.0, or PADV2's constant)."""
    v = np.asarray(x, np.float32)
    width = _check_pads(v, pads, "PAD")
    return np.pad(v, width, constant_values=np.float32(pad_value)).astype(np.float32)


__all__ = ["PAD_MAX_DIMS", "concat_f32", "concat_int8", "concat_params", "pad_f32", "pad_int8"]
