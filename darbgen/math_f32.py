"""NumPy twins of runtime_c/src/darb_math_f32.c: the C's own float32 exp, expm1,
sigmoid and tanh, operation for operation, and its output stage
(:func:`activate_f32`, darb_output_f32).

With ``-ffp-contract=off`` the C and these agree bit for bit. Used by the
float32 references of every layer kind (:mod:`darbgen.layers`) and of the op
graph (:mod:`darbgen.ops`); :mod:`darbgen.reference` re-exports them. Never
imports numba.
"""
import numpy as np

_F = np.float32
LOG2E = _F(float.fromhex("0x1.715476p+0"))
LN2_HI = _F(float.fromhex("0x1.62e400p-1"))
LN2_LO = _F(float.fromhex("0x1.7f7d1cp-20"))
EXP_TAYLOR = [_F(float.fromhex(h)) for h in
              ("0x1.a01a02p-13", "0x1.6c16c2p-10", "0x1.111112p-7", "0x1.555556p-5", "0x1.555556p-3",
               "0x1.000000p-1", "0x1p0", "0x1p0")]


#: Float underflow to zero or a subnormal is expected here (as in C); a caller's
#: np.seterr(all="raise") must not turn it into an error.
QUIET = np.errstate(under="ignore")


@QUIET
def expf(x):
    """darb_expf from runtime_c/src/darb_math_f32.c, operation for operation."""
    x_in = np.asarray(x, _F)
    nan = np.isnan(x_in)
    x = np.clip(np.where(nan, _F(0.0), x_in), _F(-87.0), _F(88.0))
    t = x * LOG2E
    t = np.where(t >= 0, t + _F(0.5), t - _F(0.5))
    k = np.trunc(t).astype(np.int32)
    kf = k.astype(_F)
    r = x - kf * LN2_HI
    r = r - kf * LN2_LO
    p = np.full_like(r, EXP_TAYLOR[0])
    for c in EXP_TAYLOR[1:]:
        p = p * r + c
    scale = ((k + 127).astype(np.uint32) << np.uint32(23)).view(_F)
    return np.where(nan, x_in, p * scale).astype(_F)


EXPM1_TAYLOR = [_F(float.fromhex(h)) for h in
                ("0x1.71de3ap-19", "0x1.a01a02p-16", "0x1.a01a02p-13", "0x1.6c16c2p-10", "0x1.111112p-7",
                 "0x1.555556p-5", "0x1.555556p-3", "0x1.000000p-1", "0x1p0")]
EXPM1_SMALL = _F(float.fromhex("0x1.62e430p-2"))


@QUIET
def expm1f(x):
    """darb_expm1f: exp(x) - 1, by its Taylor series for |x| <= ln2 / 2."""
    x = np.asarray(x, _F)
    p = np.full_like(x, EXPM1_TAYLOR[0])
    with np.errstate(over="ignore", invalid="ignore"):    # large x: the series is computed, then not used
        for c in EXPM1_TAYLOR[1:]:
            p = p * x + c
        small = p * x
    return np.where((x > EXPM1_SMALL) | (x < -EXPM1_SMALL), expf(x) - _F(1.0), small).astype(_F)


@QUIET
def sigmoidf(x):
    """darb_sigmoidf: 1 / (1 + exp(-x)) in float32 steps."""
    return _F(1.0) / (_F(1.0) + expf(-np.asarray(x, _F)))


@QUIET
def tanhf(x):
    """darb_tanhf: expm1(2x) / (expm1(2x) + 2) in float32 steps."""
    em1 = expm1f(_F(2.0) * np.asarray(x, _F))
    return em1 / (em1 + _F(2.0))


def activate_f32(activation, acc):
    """darb_output_f32."""
    if activation == "relu":
        return np.where(acc > 0, acc, _F(0.0)).astype(_F)
    if activation == "relu6":
        return np.where(acc > 0, np.where(acc < 6, acc, _F(6.0)), _F(0.0)).astype(_F)
    if activation == "sigmoid":
        return sigmoidf(acc)
    if activation == "tanh":
        return tanhf(acc)
    return acc


FLT_MAX = _F(np.finfo(np.float32).max)
#: float32's smallest normal number, 2^-126. One float32 rounding errs by at most
#: eps / 2 * max(|value|, FLT_TINY): below FLT_TINY (the subnormals) the spacing
#: stays 2^-149, so the error no longer shrinks with the value.
FLT_TINY = float(np.finfo(np.float32).tiny)


def subnormal_floor(terms):
    """The least error scale the float64 check may use for a float32 result
    summed from ``terms`` products: ``(terms + 2) * FLT_TINY`` (two more
    roundings for the bias and the activation). Each rounding errs by at most
    eps / 2 * max(|value|, FLT_TINY), so products in the subnormal range err
    absolutely, not relative to their (tiny) values: without this floor a layer
    with denormal weights fails a check its float32 C passes as well as float32
    can."""
    return (np.asarray(terms, np.float64) + 2.0) * FLT_TINY
