"""conv2d and fully_connected: the ops with a weight matrix, the ones darbgen prunes.

Both run as a matrix times a vector per output position: a fully connected
layer on its (flattened) input, a convolution on each output pixel's input
patch, gathered in NHWC order (ky, kx, c) - the column order of TFLite's (O,
KH, KW, I) kernel flattened to (O, KH * KW * I). So both reuse the dense-layer
machinery of the chain pipeline: :class:`darbgen.graph.Dense` for the pruned
matrix, :class:`darbgen.quantize.QuantizedDense` for its int8 output stage,
the dense / packed / csr / unrolled kernels for its C.

int8 follows TFLite Micro: per-channel (or per-tensor) int8 weights with zero
point 0, int32 bias at input scale x weight scale, multipliers computed as
TFLite's Prepare computes them, the fused activation as a clamp. The input
zero point is folded into the bias; padded taps read the input zero point,
so they add nothing, as TFLite skips them.
"""
from dataclasses import dataclass

import numpy as np

from .. import reference
from ..errors import DarbgenError
from ..graph import Dense
from ..quantize import INT32_MAX, QuantizedDense, round_half_away
from . import register
from .base import OpKind, activation_range, activation_range_f32, multiplier_of


@dataclass(frozen=True)
class Window:
    """Geometry of a sliding window over an (H, W, C) input."""

    in_h: int
    in_w: int
    in_c: int
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    @property
    def out_h(self):
        return (self.in_h + self.pad_top + self.pad_bottom - self.dil_h * (self.kh - 1) - 1) // self.stride_h + 1

    @property
    def out_w(self):
        return (self.in_w + self.pad_left + self.pad_right - self.dil_w * (self.kw - 1) - 1) // self.stride_w + 1

    def taps(self):
        """(out_h * out_w, kh * kw) input row and column of every tap (may lie outside the image)."""
        oy, ox = np.meshgrid(np.arange(self.out_h), np.arange(self.out_w), indexing="ij")
        ky, kx = np.meshgrid(np.arange(self.kh), np.arange(self.kw), indexing="ij")
        iy = oy.reshape(-1, 1) * self.stride_h + ky.reshape(1, -1) * self.dil_h - self.pad_top
        ix = ox.reshape(-1, 1) * self.stride_w + kx.reshape(1, -1) * self.dil_w - self.pad_left
        return iy, ix

    def patches(self, x, pad_value):
        """(n, out_h * out_w, kh * kw * in_c) patches of NHWC ``x``, column (ky, kx, c); outside reads pad_value."""
        x = np.asarray(x)
        n = x.shape[0]
        x = x.reshape(n, self.in_h, self.in_w, self.in_c)
        iy, ix = self.taps()
        inside = (iy >= 0) & (iy < self.in_h) & (ix >= 0) & (ix < self.in_w)
        v = x[:, np.clip(iy, 0, self.in_h - 1), np.clip(ix, 0, self.in_w - 1), :]
        v = np.where(inside[None, :, :, None], v, np.asarray(pad_value, x.dtype))
        return v.reshape(n, iy.shape[0], -1)


def window_of(node, in_shape, kernel_hw):
    """The Window of a conv / pool node on an (H, W, C) input."""
    if len(in_shape) != 3:
        raise DarbgenError(f"{node.name}: needs an (H, W, C) input, got shape {tuple(in_shape)}")
    stride = tuple(node.attrs.get("stride", (1, 1)))
    dilation = tuple(node.attrs.get("dilation", (1, 1)))
    pad = tuple(node.attrs.get("padding", (0, 0, 0, 0)))
    if len(stride) != 2 or len(dilation) != 2 or len(pad) != 4 or min(stride + dilation) < 1 or min(pad) < 0:
        raise DarbgenError(f"{node.name}: stride {stride}, dilation {dilation} or padding {pad} is not valid")
    w = Window(*in_shape, *kernel_hw, *stride, *dilation, *pad)
    if w.out_h < 1 or w.out_w < 1:
        raise DarbgenError(f"{node.name}: a {kernel_hw[0]} x {kernel_hw[1]} window does not fit the "
                           f"{in_shape[0]} x {in_shape[1]} input (with padding {pad})")
    return w


# ----------------------------------------------------------------------------- shared matrix code

def weight_matrix(node):
    """The (rows, cols) real weight matrix the node prunes and multiplies."""
    w = node.params["weight"]
    return w.real().reshape(w.shape[0], -1)


def node_mask(node, shape):
    mask = node.attrs.get("mask")
    return np.ones(shape, bool) if mask is None else np.asarray(mask, bool)


def _bias_real(node, rows):
    b = node.params.get("bias")
    return np.zeros(rows) if b is None else b.real().reshape(-1)


def _dense_f32(node):
    """The pruned float matrix as a Dense (activation none: the clamp follows)."""
    w = weight_matrix(node)
    mask = node_mask(node, w.shape)
    act = node.attrs.get("activation", "none")
    if act not in ("none", "relu", "relu6"):
        raise DarbgenError(f"{node.name}: fused activation {act} runs in int8 only (the float32 kernels apply none, "
                           f"relu and relu6); generate int8")
    return Dense(node.name, w, _bias_real(node, w.shape[0]), mask, node.attrs.get("block_sizes"), act)


def quantized_matrix(node, in_q, out_q, per_tensor_product):
    """The node's matrix as a QuantizedDense with TFLite's int8 parameters.

    ``per_tensor_product``: TFLite's FULLY_CONNECTED with one weight scale
    computes the multiplier from the float32 product input_scale x
    weight_scale; convolutions (and per-channel FC) in double throughout.
    """
    wt = node.params["weight"]
    rows = wt.shape[0]
    mask = node_mask(node, (rows, int(np.prod(wt.shape[1:]))))
    if wt.dtype == "int8":
        if wt.quant is None or np.any(wt.quant.zero_point != 0):
            raise DarbgenError(f"{node.name}: int8 weights must be symmetric (zero point 0), as TFLite requires")
        w_q = np.asarray(wt.data, np.int64).reshape(rows, -1)
        w_scale = wt.quant.scale.astype(np.float32)
    else:
        w = wt.real().reshape(rows, -1)
        peak = np.abs(np.where(mask, w, 0.0)).max(axis=1)
        w_scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        w_q = np.clip(round_half_away(w / w_scale.astype(np.float64)[:, None]), -127, 127).astype(np.int64)
    if w_scale.size == 1:
        w_scale = np.full(rows, w_scale[0], np.float32)
    if w_scale.size != rows:
        raise DarbgenError(f"{node.name}: {w_scale.size} weight scales for {rows} output channels")
    w_q = np.where(mask, w_q, 0)
    in_s, out_s = np.float32(in_q.scale), np.float32(out_q.scale)
    bt = node.params.get("bias")
    if bt is not None and bt.dtype == "int32":
        bias_q = np.asarray(bt.data, np.int64).reshape(-1)
    else:
        b = _bias_real(node, rows)
        bias_scale = (in_s * w_scale).astype(np.float32)
        bias_q = round_half_away(b / bias_scale.astype(np.float64)).astype(np.int64)
        bias_q = np.clip(bias_q, -INT32_MAX, INT32_MAX)
    mult, shift = [], []
    for s in w_scale:
        if per_tensor_product:
            real = float(np.float32(in_s * s)) / float(out_s)
        else:
            real = float(in_s) * float(s) / float(out_s)
        m, sh = multiplier_of(real, node.name)
        mult.append(m)
        shift.append(sh)
    shift = np.asarray(shift, np.int64)
    if np.any(shift > 30):
        raise DarbgenError(f"{node.name}: a requantization gain of 2^{int(shift.max())} is beyond int8 arithmetic; "
                           f"check the model's scales")
    act_min, act_max = activation_range(node.attrs.get("activation", "none"), out_q, node.name)
    row_sums = w_q.sum(axis=1)
    bias_c = bias_q - int(in_q.zero_point) * row_sums
    abs_w = np.abs(w_q).sum(axis=1)
    acc_bound = np.abs(bias_c) + 128 * abs_w
    worst = acc_bound << np.maximum(shift, 0)
    limit = INT32_MAX - 129
    bad = np.flatnonzero((acc_bound > INT32_MAX) | (worst > limit))
    if bad.size:
        r = int(bad[0])
        raise DarbgenError(f"{node.name}: the int32 accumulator of output channel {r} could overflow "
                           f"(|bias| + 128 x sum|w| = {int(acc_bound[r])}); the model's bias is out of the range "
                           f"TFLite assumes")
    w_real = w_q * w_scale.astype(np.float64)[:, None]
    layer = Dense(node.name, w_real, bias_q * (in_s * w_scale).astype(np.float64), mask,
                  node.attrs.get("block_sizes"), "none")
    return QuantizedDense(layer=layer, dtype="int8", weight=w_q.astype(np.int8), bias=bias_c, input=in_q,
                          output=out_q, weight_scale=w_scale.astype(np.float64), multiplier=np.asarray(mult, np.int64),
                          shift=shift, output_offset=int(out_q.zero_point), act_min=int(act_min),
                          act_max=int(act_max), acc_bound=acc_bound, acc_limit=INT32_MAX, shifted_bound=worst,
                          shifted_limit=limit)


def _float_matrix(node):
    from ..quantize import quantize_dense

    return quantize_dense(_dense_f32(node), "float32")


@dataclass
class MatrixParams:
    """What a conv / fully connected node needs: its matrix (QuantizedDense) and window."""

    q: QuantizedDense
    window: Window = None
    lo: np.float32 = None          # float32 clamp of the fused activation
    hi: np.float32 = None


class _MatrixOp(OpKind):
    prunable = True

    def pruning_matrix(self, node):
        return weight_matrix(node)

    def _run_matrix(self, p, x, kernel):
        """(n, pixels, rows) outputs of the matrix on (n, pixels, cols) patches."""
        n, pixels, cols = x.shape
        flat = x.reshape(n * pixels, cols)
        if p.q.dtype == "float32":
            # the dense kernel adds every column (zeros too): the order of its float additions
            y = reference.dense_f32(p.q, flat, all_columns=(self.kernel_of(None, p, kernel) == "dense"))
        else:
            y = reference.dense_int(p.q, flat)
        return y.reshape(n, pixels, -1)

    def prepare(self, node, ctx):
        if ctx.dtype == "float32":
            lo, hi = activation_range_f32(node.attrs.get("activation", "none"), node.name)
            return MatrixParams(_float_matrix(node), self._window(node, ctx.shape(node.inputs[0])), lo, hi)
        q = quantized_matrix(node, ctx.quant(node.inputs[0]), ctx.quant(node.outputs[0]),
                             per_tensor_product=self.per_tensor_product(node))
        return MatrixParams(q, self._window(node, ctx.shape(node.inputs[0])))

    def per_tensor_product(self, node):
        return False

    def _window(self, node, in_shape):
        return None

    def kernel_of(self, node, p, kernel):
        """The matrix kernel: packed needs a DARB / BMWM pattern; unpruned matrices run dense."""
        layer = p.q.layer
        if kernel == "packed" and layer.block_sizes is None:
            return "dense" if layer.mask.all() else "csr"
        return kernel


@register
class FullyConnected(_MatrixOp):
    kind = "fully_connected"
    title = "dense"

    def output_shapes(self, node, in_shapes):
        rows, cols = node.params["weight"].shape[0], int(np.prod(node.params["weight"].shape[1:]))
        size = int(np.prod(in_shapes[0]))
        if size != cols:
            raise DarbgenError(f"{node.name}: a fully connected layer with {cols} inputs cannot take a tensor of "
                               f"shape {tuple(in_shapes[0])} ({size} values)")
        return [(rows,)]

    def per_tensor_product(self, node):
        wt = node.params["weight"]
        return wt.dtype == "int8" and wt.quant is not None and wt.quant.per_tensor

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64).reshape(len(xs[0]), -1)
        w = weight_matrix(node) * node_mask(node, weight_matrix(node).shape)
        y = x @ w.T + _bias_real(node, w.shape[0])
        lo, hi = activation_range_f32(node.attrs.get("activation", "none"), node.name)
        return [np.clip(y, float(lo), float(hi))]

    def forward_f32(self, node, p, xs, kernel="packed"):
        x = np.asarray(xs[0]).reshape(len(xs[0]), 1, -1)
        return [self._run_matrix(p, x, kernel).reshape(len(xs[0]), -1)]

    def forward_int8(self, node, p, xs):
        x = np.asarray(xs[0]).reshape(len(xs[0]), 1, -1)
        return [self._run_matrix(p, x, "packed").reshape(len(xs[0]), -1)]

    def describe(self, node, ctx):
        w = node.params["weight"]
        return f"dense {w.shape[0]} x {int(np.prod(w.shape[1:]))}"

    def emit(self, node, p, e):
        e.matrix(node, p, self.kernel_of(node, p, e.kernel), symbol=e.sym(node), is_function=True)


@register
class Conv2D(_MatrixOp):
    kind = "conv2d"
    title = "conv"

    def _window(self, node, in_shape):
        o, kh, kw, i = node.params["weight"].shape
        if len(in_shape) != 3 or in_shape[2] != i:
            raise DarbgenError(f"{node.name}: a convolution with {i} input channels cannot take shape "
                               f"{tuple(in_shape)} (H, W, C expected)")
        return window_of(node, in_shape, (kh, kw))

    def output_shapes(self, node, in_shapes):
        w = self._window(node, in_shapes[0])
        return [(w.out_h, w.out_w, node.params["weight"].shape[0])]

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64)
        win = self._window(node, x.shape[1:])
        m = weight_matrix(node) * node_mask(node, weight_matrix(node).shape)
        y = win.patches(x, 0.0) @ m.T + _bias_real(node, m.shape[0])
        lo, hi = activation_range_f32(node.attrs.get("activation", "none"), node.name)
        return [np.clip(y, float(lo), float(hi)).reshape(len(x), win.out_h, win.out_w, -1)]

    def _forward(self, node, p, xs, kernel):
        x = np.asarray(xs[0])
        pad = 0 if p.q.dtype == "float32" else p.q.input.zero_point
        y = self._run_matrix(p, p.window.patches(x, pad), kernel)
        return [y.reshape(len(x), p.window.out_h, p.window.out_w, -1)]

    def forward_f32(self, node, p, xs, kernel="packed"):
        return self._forward(node, p, xs, kernel)

    def forward_int8(self, node, p, xs):
        return self._forward(node, p, xs, "packed")

    def describe(self, node, ctx):
        o, kh, kw, i = node.params["weight"].shape
        a = node.attrs
        return (f"conv {o} x {kh} x {kw} x {i}, stride {a.get('stride', (1, 1))[0]}x{a.get('stride', (1, 1))[1]}, "
                f"padding {'/'.join(map(str, a.get('padding', (0, 0, 0, 0))))}")

    def emit(self, node, p, e):
        sym = e.sym(node)
        kernel = self.kernel_of(node, p, e.kernel)
        e.matrix(node, p, kernel, symbol=f"{sym}_w", pixels=True)
        e.conv(node, p, sym, f"{sym}_w", kernel)
