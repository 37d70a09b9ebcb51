"""The NumPy oracle the generated C must equal.

* int8 / int16: the exact integer steps of the C (see :mod:`darbgen.quantize`),
  so C and reference agree bit for bit;
* float32: the C's order of operations (bias first, then each weight in
  increasing column order, one rounding per multiply and per add; the dense
  kernel also adds the zeros), and the C's own exp / sigmoid / tanh, step for
  step, so results agree bit for bit under ``-ffp-contract=off``;
* float64: the exact mathematics, for a tolerance check of the float32 path.

Where things live: :func:`run` and :func:`exact` here look the op's kind up
(:data:`darbgen.layers.KINDS`) and call its reference. Each kind's reference
is in its module, re-exported here under its historical name:
:func:`dense_int`, :func:`dense_f32`, :func:`dense_f64` (dense and
convolution, :mod:`darbgen.layers.dense`), :func:`softmax_int`,
:func:`softmax_f32` (:mod:`darbgen.layers.softmax`), :func:`pool`
(:mod:`darbgen.layers.pool`), :func:`recurrent_f32`, :func:`recurrent_int`
(:mod:`darbgen.layers.recurrent`); the float32 math (:func:`expf`,
:func:`sigmoidf`, :func:`tanhf`, :func:`activate_f32`) is
:mod:`darbgen.math_f32`.

Never imports numba: the oracle stays plain and obviously correct.
"""
from .activations import activate_f64, softmax_f64
from .layers import kind_of
from .layers.dense import dense_f32, dense_f64, dense_int
from .layers.pool import pool
from .layers.recurrent import recurrent_f32, recurrent_int
from .layers.softmax import softmax_f32, softmax_int
from .math_f32 import (EXP_TAYLOR, EXPM1_SMALL, EXPM1_TAYLOR, FLT_MAX, FLT_TINY, LN2_HI, LN2_LO, LOG2E, QUIET,
                       activate_f32, expf, expm1f, sigmoidf, subnormal_floor, tanhf)
from .qmath import lut_s16, requantize_s8, requantize_s16


@QUIET
def run(q, x, kernel="packed"):
    """The output the generated C must produce for op ``q`` with ``kernel`` on
    inputs ``x`` (quantized integers for int8 / int16, float32 otherwise)."""
    return kind_of(q).run(q, x, kernel)


@QUIET
def exact(q, x):
    """The float64 result of a float32 op and the scale its rounding errors
    are measured against (see :func:`dense_f64`)."""
    return kind_of(q).exact(q, x)


__all__ = ["EXP_TAYLOR", "EXPM1_SMALL", "EXPM1_TAYLOR", "FLT_MAX", "FLT_TINY", "LN2_HI", "LN2_LO", "LOG2E",
           "activate_f32", "activate_f64", "dense_f32", "dense_f64", "dense_int", "exact", "expf", "expm1f", "lut_s16",
           "pool", "recurrent_f32", "recurrent_int", "requantize_s8", "requantize_s16", "run", "sigmoidf",
           "softmax_f32", "softmax_f64", "softmax_int", "subnormal_floor", "tanhf"]
