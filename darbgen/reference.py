"""The NumPy oracle the generated C must equal.

* int8 / int16: the exact integer steps of the C (see :mod:`darbgen.quantize`),
  so C and reference agree bit for bit;
* float32: the C's order of operations (bias first, then each weight in
  increasing column order, one rounding per multiply and per add; the dense
  kernel also adds the zeros), and the C's own exp / sigmoid / tanh, step for
  step, so results agree bit for bit under ``-ffp-contract=off``;
* float64: the exact mathematics, for a tolerance check of the float32 path.

Never imports numba: the oracle stays plain and obviously correct.
"""
import numpy as np

from .errors import DarbgenError
from .quantize import (QuantizedPool, QuantizedRecurrent, QuantizedSoftmax, activate_f64, lut_s16, requantize_s8, requantize_s16,
                       softmax_f64)

_F = np.float32
LOG2E = _F(float.fromhex("0x1.715476p+0"))
LN2_HI = _F(float.fromhex("0x1.62e400p-1"))
LN2_LO = _F(float.fromhex("0x1.7f7d1cp-20"))
EXP_TAYLOR = [_F(float.fromhex(h)) for h in
              ("0x1.a01a02p-13", "0x1.6c16c2p-10", "0x1.111112p-7", "0x1.555556p-5", "0x1.555556p-3",
               "0x1.000000p-1", "0x1p0", "0x1p0")]


#: Float underflow to zero or a subnormal is expected here (as in C); a caller's
#: np.seterr(all="raise") must not turn it into an error.
_QUIET = np.errstate(under="ignore")


@_QUIET
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


@_QUIET
def expm1f(x):
    """darb_expm1f: exp(x) - 1, by its Taylor series for |x| <= ln2 / 2."""
    x = np.asarray(x, _F)
    p = np.full_like(x, EXPM1_TAYLOR[0])
    with np.errstate(over="ignore", invalid="ignore"):    # large x: the series is computed, then not used
        for c in EXPM1_TAYLOR[1:]:
            p = p * x + c
        small = p * x
    return np.where((x > EXPM1_SMALL) | (x < -EXPM1_SMALL), expf(x) - _F(1.0), small).astype(_F)


@_QUIET
def sigmoidf(x):
    """darb_sigmoidf: 1 / (1 + exp(-x)) in float32 steps."""
    return _F(1.0) / (_F(1.0) + expf(-np.asarray(x, _F)))


@_QUIET
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


def _inputs(q, x):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != q.layer.in_size:
        raise DarbgenError(f"{q.name}: inputs must have shape (n, {q.layer.in_size}), got {x.shape}")
    return x


def _patches(q, x, pad):
    """(n, pixels, cols): what each output pixel's row multiplies (one pixel for a dense layer)."""
    patches = getattr(q.layer, "patches", None)
    return x[:, None, :] if patches is None else patches(x, pad)


def _channels_first(acc):
    """(n, pixels, rows) -> (n, rows * pixels): the C's channel-first output order."""
    return acc.transpose(0, 2, 1).reshape(acc.shape[0], -1)


def dense_int(q, x):
    """The int8 / int16 dense or convolution layer on quantized inputs, exactly as the C."""
    x = _inputs(q, x).astype(np.int64)
    pad = q.input.zero_point if q.dtype == "int8" else 0        # real 0 outside the image
    acc = _patches(q, x, pad) @ q.weight.astype(np.int64).T + q.bias.astype(np.int64)
    if q.dtype == "int8":
        v = requantize_s8(acc, q.multiplier, q.shift) + q.output_offset
    else:
        v = requantize_s16(acc, q.multiplier, q.shift)
    v = np.clip(v, q.act_min, q.act_max)
    if q.lut is not None:
        v = q.lut.astype(np.int64)[v + 128] if q.dtype == "int8" else lut_s16(q.lut, v)
    return _channels_first(v).astype(np.int8 if q.dtype == "int8" else np.int16)


@_QUIET
def dense_f32(q, x, all_columns=False):
    """The float32 dense or convolution layer in the C's order of operations.

    ``all_columns``: add every column, zeros included (the dense kernel);
    otherwise only the kept weights (packed, unrolled and CSR kernels).
    """
    x = _inputs(q, x).astype(_F)
    w = q.weight.astype(_F)
    p = _patches(q, x, _F(0.0))
    acc = np.broadcast_to(q.bias.astype(_F), (p.shape[0], p.shape[1], w.shape[0])).copy()
    for j in range(w.shape[1]):
        rows = slice(None) if all_columns else q.layer.mask[:, j]
        acc[:, :, rows] += p[:, :, j:j + 1] * w[rows, j]
    return _channels_first(activate_f32(q.layer.activation, acc))


@_QUIET
def dense_f64(q, x):
    """The float32 layer computed exactly (float64), for the tolerance check;
    also returns sum |w| |x| + |b| per output, the scale of rounding errors."""
    x = _inputs(q, x).astype(np.float64)
    p = _patches(q, x, 0.0)
    w = q.weight.astype(np.float64)
    b = q.bias.astype(np.float64)
    pre = p @ w.T + b
    magnitude = np.abs(p) @ np.abs(w).T + np.abs(b)
    return _channels_first(activate_f64(q.layer.activation, pre)), _channels_first(magnitude)


def softmax_int(q, x):
    """darb_softmax_s8 / _s16: integer softmax through the exp table."""
    x = _inputs(q, x).astype(np.int64)
    d = x.max(axis=1, keepdims=True) - x
    table = q.table.astype(np.int64)
    if q.dtype == "int8":
        e = table[d]
        total = e.sum(axis=1, keepdims=True)
        v = (e * 256 + total // 2) // total - 128
        return np.minimum(v, 127).astype(np.int8)
    index = d >> 7
    frac = d & 127
    lo, hi = table[index], table[index + 1]          # d <= 65535: index + 1 <= 512
    e = lo + (((hi - lo) * frac + 64) >> 7)
    total = e.sum(axis=1, keepdims=True)
    v = (e * 32768 + total // 2) // total
    return np.minimum(v, 32767).astype(np.int16)


@_QUIET
def softmax_f32(x):
    """darb_softmax_f32: max, exp(x - max) with darb_expf, a running sum, one division each."""
    x = np.asarray(x, _F)
    e = expf(x - x.max(axis=1, keepdims=True))
    total = np.zeros(x.shape[0], _F)
    for j in range(x.shape[1]):
        total = total + e[:, j]
    return (e / total[:, None]).astype(_F)


FLT_MAX = _F(np.finfo(np.float32).max)


def pool(q, x):
    """darb_maxpool_<t> / darb_avgpool_<t>: each window in (ky, kx) order,
    padded positions skipped; int averages rounded half away from zero."""
    x = _inputs(q, x)
    layer = q.layer
    n = x.shape[0]
    if q.dtype == "float32":
        v, real = layer.windows(x.astype(_F), _F(0.0))
        if layer.kind == "max":
            acc = np.full(v.shape[:-1], -FLT_MAX, _F)
            for k in range(v.shape[-1]):
                acc = np.where(real[:, k] & (v[..., k] > acc), v[..., k], acc)
            return acc.reshape(n, -1)
        acc = np.zeros(v.shape[:-1], _F)
        for k in range(v.shape[-1]):
            acc = np.where(real[:, k], acc + v[..., k], acc)
        return (acc / real.sum(axis=-1).astype(_F)).astype(_F).reshape(n, -1)
    v, real = layer.windows(x.astype(np.int64), 0)
    out_t = np.int8 if q.dtype == "int8" else np.int16
    if layer.kind == "max":
        return np.where(real, v, np.iinfo(np.int64).min).max(axis=-1).astype(out_t).reshape(n, -1)
    total = np.where(real, v, 0).sum(axis=-1)
    count = real.sum(axis=-1)
    avg = np.where(total > 0, (total + count // 2) // count, -((-total + count // 2) // count))
    return avg.astype(out_t).reshape(n, -1)


def _sequence_output(q, hs):
    """The op's output from every step's hidden state (T, n, H): all of them
    time first, or the last."""
    return np.concatenate(hs, axis=1) if q.layer.sequences else hs[-1]


@_QUIET
def recurrent_f32(q, x, kernel="packed"):
    """An LSTM / GRU over whole sequences, step by step as the C: the two
    matrices through dense_f32, then the cell in float32 operations."""
    x = _inputs(q, x).astype(_F)
    layer = q.layer.layer
    steps, hidden = q.layer.steps, layer.hidden
    xs = x.reshape(len(x), steps, -1)
    h = np.zeros((len(x), hidden), _F)
    c = np.zeros_like(h)
    dense_cols = kernel == "dense"
    hs = []
    for t in range(steps):
        gx = dense_f32(q.ih, xs[:, t], dense_cols)
        gh = dense_f32(q.hh, h, dense_cols)
        g = [slice(k * hidden, (k + 1) * hidden) for k in range(layer.gates)]
        if layer.kind == "lstm":
            i = sigmoidf(gx[:, g[0]] + gh[:, g[0]])
            f = sigmoidf(gx[:, g[1]] + gh[:, g[1]])
            cand = tanhf(gx[:, g[2]] + gh[:, g[2]])
            o = sigmoidf(gx[:, g[3]] + gh[:, g[3]])
            c = f * c + i * cand
            h = o * tanhf(c)
        else:
            r = sigmoidf(gx[:, g[0]] + gh[:, g[0]])
            z = sigmoidf(gx[:, g[1]] + gh[:, g[1]])
            n = tanhf(gx[:, g[2]] + r * gh[:, g[2]])
            h = (_F(1.0) - z) * n + z * h
        hs.append(h)
    return _sequence_output(q, hs).astype(_F)


def recurrent_int(q, x):
    """darb_lstm_cell_s16 / darb_gru_cell_s16 over whole sequences, with the
    two matrices through dense_int; for int8, the input widened to int16
    (darb_widen_s8) and the hidden states requantized to int8 (darb_narrow_s8)."""
    x = _inputs(q, x).astype(np.int64)
    if q.dtype == "int8":
        x = x - q.input.zero_point
    layer = q.layer.layer
    steps, hidden = q.layer.steps, layer.hidden
    xs = x.reshape(len(x), steps, -1)
    h = np.zeros((len(x), hidden), np.int64)
    c = np.zeros_like(h)

    def sat(v):
        return np.clip(v, -32768, 32767)

    def mul_q15(a, b):
        return (a * b + (1 << 14)) >> 15

    def table(lut, v):
        return lut_s16(lut, v)

    g = [slice(k * hidden, (k + 1) * hidden) for k in range(layer.gates)]
    hs = []
    for t in range(steps):
        gx = dense_int(q.ih, xs[:, t]).astype(np.int64)
        gh = dense_int(q.hh, h).astype(np.int64)
        if layer.kind == "lstm":
            i = table(q.sigmoid, sat(gx[:, g[0]] + gh[:, g[0]]))
            f = table(q.sigmoid, sat(gx[:, g[1]] + gh[:, g[1]]))
            cand = table(q.tanh, sat(gx[:, g[2]] + gh[:, g[2]]))
            o = table(q.sigmoid, sat(gx[:, g[3]] + gh[:, g[3]]))
            c = sat(mul_q15(f, c) + requantize_s8(i * cand, q.ig_multiplier, q.ig_shift))
            h = sat(mul_q15(o, table(q.tanh_c, c)))
        else:
            r = table(q.sigmoid, sat(gx[:, g[0]] + gh[:, g[0]]))
            z = table(q.sigmoid, sat(gx[:, g[1]] + gh[:, g[1]]))
            n = table(q.tanh, sat(gx[:, g[2]] + mul_q15(r, gh[:, g[2]])))
            h = sat(((32768 - z) * n + z * h + (1 << 14)) >> 15)
        hs.append(h)
    y = _sequence_output(q, hs)
    if q.dtype == "int8":
        return np.clip(requantize_s8(y, q.out_multiplier, q.out_shift), -128, 127).astype(np.int8)
    return y.astype(np.int16)


@_QUIET
def run(q, x, kernel="packed"):
    """The output the generated C must produce for op ``q`` with ``kernel`` on
    inputs ``x`` (quantized integers for int8 / int16, float32 otherwise)."""
    if isinstance(q, QuantizedSoftmax):
        return softmax_f32(x) if q.dtype == "float32" else softmax_int(q, x)
    if isinstance(q, QuantizedPool):
        return pool(q, x)
    if isinstance(q, QuantizedRecurrent):
        return recurrent_f32(q, x, kernel) if q.dtype == "float32" else recurrent_int(q, x)
    if q.dtype == "float32":
        return dense_f32(q, x, all_columns=(kernel == "dense"))
    return dense_int(q, x)


@_QUIET
def exact(q, x):
    """The float64 result of a float32 op and the scale its rounding errors
    are measured against (see :func:`dense_f64`)."""
    if isinstance(q, QuantizedSoftmax):
        y = softmax_f64(np.asarray(x, np.float64))
        return y, np.broadcast_to(np.abs(y).max(axis=1, keepdims=True), y.shape)
    if isinstance(q, QuantizedPool):
        x = np.asarray(x, np.float64)
        return q.layer.forward_f64(x)[1], q.layer.forward_f64(np.abs(x))[1]
    if isinstance(q, QuantizedRecurrent):
        y = q.layer.forward_f64(x)[1]
        return y, np.ones_like(y)                 # hidden states live in (-1, 1)
    return dense_f64(q, x)

