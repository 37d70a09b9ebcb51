"""The op kinds whose arithmetic lives in its own module (depthwise.py, pool.py,
elementwise.py, softmax.py, shape_ops.py): shapes, quantization, references and C.

Each class here is the table entry of one kind; the NumPy arithmetic it calls
is TFLite Micro's, bit for bit, and the C it writes calls the runtime kernels
declared in runtime_c/include/darb_ops_spatial.h and darb_ops_elementwise.h.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import DarbgenError
from ..quantize import round_half_away
from . import register
from .base import OpKind, activation_range, activation_range_f32
from .conv import window_of

FLT_MAX = "3.40282347e+38f"
SPATIAL = ("include/darb_ops_spatial.h",)
ELEMENTWISE = ("include/darb_ops_elementwise.h", "src/darb_elementwise.c")


def _flt(v):
    v = float(v)
    if np.isinf(v):
        return FLT_MAX if v > 0 else "-" + FLT_MAX
    from ..codegen.emit import c_literal

    return c_literal(v, "float")


def _clamp_f32(node):
    return activation_range_f32(node.attrs.get("activation", "none"), node.name)


def _act_int8(node, ctx):
    return activation_range(node.attrs.get("activation", "none"), ctx.quant(node.outputs[0]), node.name)


# ----------------------------------------------------------------------------- depthwise

@dataclass
class DepthwiseParams:
    geom: object
    weight: np.ndarray                 # int8 (kh, kw, C*M) or float32
    bias: np.ndarray                   # int32 or float32
    in_zp: int = 0
    out_zp: int = 0
    multiplier: np.ndarray = None
    shift: np.ndarray = None
    act_min: object = None
    act_max: object = None


@register
class DepthwiseConv2D(OpKind):
    kind = "depthwise_conv2d"
    title = "depthwise"

    def _geom(self, node, in_shape):
        from .depthwise import DepthwiseGeometry

        kh, kw, out_c = node.params["weight"].shape
        mult = int(node.attrs.get("multiplier", 1))
        if len(in_shape) != 3 or in_shape[2] * mult != out_c:
            raise DarbgenError(f"{node.name}: a depthwise kernel with {out_c} output channels (multiplier {mult}) "
                               f"cannot take shape {tuple(in_shape)}")
        w = window_of(node, in_shape, (kh, kw))
        return DepthwiseGeometry(w.in_h, w.in_w, w.in_c, mult, kh, kw, w.stride_h, w.stride_w, w.dil_h, w.dil_w,
                                 w.pad_top, w.pad_left, w.out_h, w.out_w)

    def output_shapes(self, node, in_shapes):
        g = self._geom(node, in_shapes[0])
        return [(g.out_h, g.out_w, g.in_c * g.mult)]

    def _float_params(self, node):
        w = node.params["weight"].real()
        b = node.params.get("bias")
        return w, (np.zeros(w.shape[-1]) if b is None else b.real().reshape(-1))

    def forward_f64(self, node, xs):
        from .depthwise import depthwise_f64

        x = np.asarray(xs[0], np.float64)
        w, b = self._float_params(node)
        lo, hi = _clamp_f32(node)
        return [depthwise_f64(x, w, b, self._geom(node, x.shape[1:]), float(lo), float(hi))]

    def prepare(self, node, ctx):
        from .depthwise import depthwise_multipliers

        geom = self._geom(node, ctx.shape(node.inputs[0]))
        if ctx.dtype == "float32":
            w, b = self._float_params(node)
            lo, hi = _clamp_f32(node)
            return DepthwiseParams(geom, w.astype(np.float32), b.astype(np.float32), act_min=lo, act_max=hi)
        in_q, out_q = ctx.quant(node.inputs[0]), ctx.quant(node.outputs[0])
        wt = node.params["weight"]
        out_c = wt.shape[-1]
        if wt.dtype == "int8":
            if np.any(wt.quant.zero_point != 0):
                raise DarbgenError(f"{node.name}: int8 weights must be symmetric (zero point 0)")
            w_q = np.asarray(wt.data, np.int8)
            w_scale = np.broadcast_to(wt.quant.scale.astype(np.float32), (out_c,))
        else:
            w = wt.real()
            peak = np.abs(w).reshape(-1, out_c).max(axis=0)
            w_scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            w_q = np.clip(round_half_away(w / w_scale.astype(np.float64)), -127, 127).astype(np.int8)
        bt = node.params.get("bias")
        if bt is not None and bt.dtype == "int32":
            bias_q = np.asarray(bt.data, np.int64).reshape(-1)
        else:
            b = np.zeros(out_c) if bt is None else bt.real().reshape(-1)
            bias_q = round_half_away(b / (np.float32(in_q.scale) * w_scale).astype(np.float64)).astype(np.int64)
        mult, shift = depthwise_multipliers(in_q.scale, w_scale, out_q.scale)
        lo, hi = _act_int8(node, ctx)
        return DepthwiseParams(geom, w_q, bias_q, int(in_q.zero_point), int(out_q.zero_point), mult, shift, lo, hi)

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .depthwise import depthwise_f32

        return [depthwise_f32(np.asarray(xs[0], np.float32), p.weight, p.bias, p.geom, p.act_min, p.act_max)]

    def forward_int8(self, node, p, xs):
        from .depthwise import depthwise_int8

        return [depthwise_int8(np.asarray(xs[0], np.int8), p.weight, p.bias, p.geom, p.in_zp, p.out_zp,
                               p.multiplier, p.shift, p.act_min, p.act_max)]

    def describe(self, node, ctx):
        kh, kw, out_c = node.params["weight"].shape
        s = node.attrs.get("stride", (1, 1))
        return f"depthwise {kh} x {kw} x {out_c}, stride {s[0]}x{s[1]}"

    def emit(self, node, p, e):
        sym = e.sym(node)
        g = p.geom
        fields = [g.in_h, g.in_w, g.in_c, g.mult, g.kh, g.kw, g.stride_h, g.stride_w, g.dil_h, g.dil_w, g.pad_top,
                  g.pad_left, g.out_h, g.out_w]
        e.block(f"static const darb_dw_geometry {sym}_geometry = {{ {', '.join(map(str, fields))} }};\n")
        if isinstance(p.multiplier, np.ndarray):
            w = e.array(f"{sym}_weights", "int8_t", p.weight, "values")
            b = e.array(f"{sym}_bias", "int32_t", p.bias, "params")
            m = e.array(f"{sym}_multiplier", "int32_t", p.multiplier, "params")
            s = e.array(f"{sym}_shift", "int8_t", p.shift, "params")
            e.block(f"static const darb_dw_quant_s8 {sym}_quant = {{ {b}, {m}, {s}, {-p.in_zp}, {p.out_zp}, "
                    f"{p.act_min}, {p.act_max} }};\n")
            call = "darb_depthwise_s8"
        else:
            w = e.array(f"{sym}_weights", "float", p.weight, "values")
            b = e.array(f"{sym}_bias", "float", p.bias, "params")
            e.block(f"static const darb_dw_quant_f32 {sym}_quant = {{ {b}, {_flt(p.act_min)}, {_flt(p.act_max)} }};\n")
            call = "darb_depthwise_f32"
        e.function(node, f"    {call}(&{sym}_geometry, {w}, &{sym}_quant, in, out);",
                   runtime=SPATIAL + ("src/darb_depthwise.c",))


# ----------------------------------------------------------------------------- pooling and mean

@dataclass
class PoolParams:
    geom: object
    act_min: object
    act_max: object


class _Pool(OpKind):
    keeps_quant = True
    which = None

    def _geom(self, node, in_shape):
        from .pool import PoolGeometry

        kh, kw = tuple(node.attrs["filter"])
        w = window_of(node, in_shape, (kh, kw))
        return PoolGeometry(w.in_h, w.in_w, w.in_c, kh, kw, w.stride_h, w.stride_w, w.pad_top, w.pad_left,
                            w.out_h, w.out_w)

    def output_shapes(self, node, in_shapes):
        g = self._geom(node, in_shapes[0])
        return [(g.out_h, g.out_w, g.in_c)]

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64)
        lo, hi = _clamp_f32(node)
        g = self._geom(node, x.shape[1:])
        # exact: the same windows in float64
        iy = np.arange(g.out_h)[:, None] * g.stride_h - g.pad_top + np.arange(g.kh)[None, :]
        ix = np.arange(g.out_w)[:, None] * g.stride_w - g.pad_left + np.arange(g.kw)[None, :]
        out = np.empty((len(x), g.out_h, g.out_w, g.in_c))
        for oy in range(g.out_h):
            ys = [r for r in iy[oy] if 0 <= r < g.in_h]
            for ox in range(g.out_w):
                xs_ = [c for c in ix[ox] if 0 <= c < g.in_w]
                win = x[:, ys][:, :, xs_]
                out[:, oy, ox] = win.max(axis=(1, 2)) if self.which == "max" else win.mean(axis=(1, 2))
        return [np.clip(out, float(lo), float(hi))]

    def prepare(self, node, ctx):
        g = self._geom(node, ctx.shape(node.inputs[0]))
        if ctx.dtype == "float32":
            return PoolParams(g, *_clamp_f32(node))
        if not ctx.quant(node.inputs[0]) == ctx.quant(node.outputs[0]):
            raise DarbgenError(f"{node.name}: int8 pooling needs the same input and output quantization (TFLite's "
                               f"rule); this model's differ")
        return PoolParams(g, *_act_int8(node, ctx))

    def forward_f32(self, node, p, xs, kernel="packed"):
        from . import pool

        return [getattr(pool, f"{self.which}_pool_f32")(np.asarray(xs[0], np.float32), p.geom, p.act_min,
                                                         p.act_max)]

    def forward_int8(self, node, p, xs):
        from . import pool

        return [getattr(pool, f"{self.which}_pool_int8")(np.asarray(xs[0], np.int8), p.geom, p.act_min, p.act_max)]

    def describe(self, node, ctx):
        kh, kw = node.attrs["filter"]
        s = node.attrs.get("stride", (1, 1))
        return f"{self.which} pool {kh} x {kw}, stride {s[0]}x{s[1]}"

    def emit(self, node, p, e):
        sym = e.sym(node)
        g = p.geom
        fields = [g.in_h, g.in_w, g.in_c, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h,
                  g.out_w]
        e.block(f"static const darb_pool_geometry {sym}_geometry = {{ {', '.join(map(str, fields))} }};\n")
        if isinstance(p.act_min, (int, np.integer)):
            call = f"darb_{self.which}pool_nhwc_s8(&{sym}_geometry, {p.act_min}, {p.act_max}, in, out);"
        else:
            call = f"darb_{self.which}pool_nhwc_f32(&{sym}_geometry, {_flt(p.act_min)}, {_flt(p.act_max)}, in, out);"
        e.function(node, "    " + call, runtime=SPATIAL + ("src/darb_pool_nhwc.c",))


@register
class AvgPool2D(_Pool):
    kind = "avg_pool2d"
    title = "avgpool"
    which = "avg"


@register
class MaxPool2D(_Pool):
    kind = "max_pool2d"
    title = "maxpool"
    which = "max"


@register
class Mean(OpKind):
    kind = "mean"
    title = "mean"
    keeps_quant = True

    def _check(self, node, in_shape):
        axes = tuple(sorted(int(a) % len(in_shape) for a in node.attrs.get("axes", (0, 1))))
        if len(in_shape) != 3 or axes != (0, 1):
            raise DarbgenError(f"{node.name}: darbgen computes a mean over height and width of an (H, W, C) tensor; "
                               f"got axes {node.attrs.get('axes')} of shape {tuple(in_shape)}")
        return in_shape

    def output_shapes(self, node, in_shapes):
        h, w, c = self._check(node, in_shapes[0])
        return [(1, 1, c) if node.attrs.get("keep_dims", False) else (c,)]

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64)
        y = x.mean(axis=(1, 2))
        return [y[:, None, None, :] if node.attrs.get("keep_dims", False) else y]

    def prepare(self, node, ctx):
        shape = self._check(node, ctx.shape(node.inputs[0]))
        if ctx.dtype == "float32":
            return {"shape": shape}
        from .pool import mean_params_int8

        i, o = ctx.quant(node.inputs[0]), ctx.quant(node.outputs[0])
        m, s = mean_params_int8(i.scale, o.scale, shape[0] * shape[1])
        return {"shape": shape, "in": i, "out": o, "multiplier": m, "shift": s}

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .pool import mean_f32

        return [mean_f32(np.asarray(xs[0], np.float32), (1, 2), node.attrs.get("keep_dims", False))]

    def forward_int8(self, node, p, xs):
        from .pool import mean_int8

        return [mean_int8(np.asarray(xs[0], np.int8), p["in"].zero_point, p["in"].scale, p["out"].zero_point,
                          p["out"].scale, (1, 2), node.attrs.get("keep_dims", False))]

    def emit(self, node, p, e):
        sym = e.sym(node)
        h, w, c = p["shape"]
        e.block(f"static const darb_mean_geometry {sym}_geometry = {{ {h}, {w}, {c} }};\n")
        if "in" in p:
            e.block(f"static const darb_mean_quant_s8 {sym}_quant = {{ {p['in'].zero_point}, {p['out'].zero_point}, "
                    f"{p['multiplier']}, {p['shift']} }};\n")
            call = f"darb_mean_s8(&{sym}_geometry, &{sym}_quant, in, out);"
        else:
            call = f"darb_mean_f32(&{sym}_geometry, in, out);"
        e.function(node, "    " + call, runtime=SPATIAL + ("src/darb_pool_nhwc.c",))


# ----------------------------------------------------------------------------- add and softmax

@register
class Add(OpKind):
    kind = "add"
    title = "add"

    def output_shapes(self, node, in_shapes):
        if len(in_shapes) != 2 or tuple(in_shapes[0]) != tuple(in_shapes[1]):
            raise DarbgenError(f"{node.name}: add takes two tensors of one shape, got "
                               f"{' and '.join(str(tuple(s)) for s in in_shapes)} (broadcasting is not supported)")
        return [tuple(in_shapes[0])]

    def forward_f64(self, node, xs):
        lo, hi = _clamp_f32(node)
        return [np.clip(np.asarray(xs[0], np.float64) + xs[1], float(lo), float(hi))]

    def prepare(self, node, ctx):
        if ctx.dtype == "float32":
            return _clamp_f32(node)
        from .elementwise import add_params

        a, b, o = (ctx.quant(t) for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
        lo, hi = _act_int8(node, ctx)
        return add_params(a.scale, a.zero_point, b.scale, b.zero_point, o.scale, o.zero_point, lo, hi)

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .elementwise import add_f32

        return [add_f32(np.asarray(xs[0], np.float32), np.asarray(xs[1], np.float32), p[0], p[1])]

    def forward_int8(self, node, p, xs):
        from .elementwise import add_int8

        return [add_int8(np.asarray(xs[0], np.int8), np.asarray(xs[1], np.int8), p)]

    def emit(self, node, p, e):
        sym = e.sym(node)
        n = int(np.prod(e.qg.shapes[node.outputs[0]]))
        if isinstance(p, tuple):
            call = f"darb_add_f32(in0, in1, out, {n}u, {_flt(p[0])}, {_flt(p[1])});"
        else:
            fields = [p.input1_offset, p.input2_offset, p.output_offset, p.left_shift, p.input1_multiplier,
                      p.input1_shift, p.input2_multiplier, p.input2_shift, p.output_multiplier, p.output_shift,
                      p.act_min, p.act_max]
            e.block(f"static const darb_add_s8_params {sym}_params = {{ {', '.join(map(str, fields))} }};\n")
            call = f"darb_add_s8(&{sym}_params, in0, in1, out, {n}u);"
        e.function(node, "    " + call, runtime=ELEMENTWISE)


@register
class Softmax(OpKind):
    kind = "softmax"
    title = "softmax"

    def output_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def calibrated_quant(self, node, in_quants, low, high):
        from ..quantize import TensorQuant

        return TensorQuant("int8", 1.0 / 256, -128)

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64) * float(node.attrs.get("beta", 1.0))
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return [e / e.sum(axis=-1, keepdims=True)]

    def prepare(self, node, ctx):
        beta = float(node.attrs.get("beta", 1.0))
        if ctx.dtype == "float32":
            return beta
        from .softmax import softmax_params

        i, o = ctx.quant(node.inputs[0]), ctx.quant(node.outputs[0])
        return softmax_params(i.scale, beta, o.scale, o.zero_point)

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .softmax import softmax_f32

        return [softmax_f32(np.asarray(xs[0], np.float32), p)]

    def forward_int8(self, node, p, xs):
        from .softmax import softmax_int8

        return [softmax_int8(np.asarray(xs[0], np.int8), p)]

    def emit(self, node, p, e):
        sym = e.sym(node)
        shape = e.qg.shapes[node.outputs[0]]
        depth = int(shape[-1])
        rows = int(np.prod(shape)) // depth
        if isinstance(p, float):
            call = f"darb_softmax_tflm_f32(in, out, {rows}u, {depth}u, {_flt(p)});"
            runtime = ELEMENTWISE + ("src/darb_softmax_tflm.c", "src/darb_math_f32.c")
        else:
            e.block(f"static const darb_softmax_tflm_s8_params {sym}_params = {{ {p.input_multiplier}, "
                    f"{p.input_left_shift}, {p.diff_min} }};\n")
            call = f"darb_softmax_tflm_s8(&{sym}_params, in, out, {rows}u, {depth}u);"
            runtime = ELEMENTWISE + ("src/darb_softmax_tflm.c",)
        e.function(node, "    " + call, runtime=runtime)


# ----------------------------------------------------------------------------- pad, concat, quantize, dequantize

def _requant_fields(r):
    return f"{{ {r.multiplier}, {r.shift}, {r.in_zero_point}, {r.out_zero_point} }}"


@register
class Pad(OpKind):
    kind = "pad"
    title = "pad"
    keeps_quant = True

    def _pads(self, node, in_shape):
        pads = tuple(tuple(int(v) for v in p) for p in node.attrs.get("pads", ()))
        if len(pads) != len(in_shape) or any(len(p) != 2 or min(p) < 0 for p in pads):
            raise DarbgenError(f"{node.name}: pad needs one (before, after) pair of non-negative sizes per axis of "
                               f"shape {tuple(in_shape)}, got {pads}")
        if len(in_shape) > 5:
            raise DarbgenError(f"{node.name}: pad handles at most 5 axes")
        return pads

    def output_shapes(self, node, in_shapes):
        pads = self._pads(node, in_shapes[0])
        return [tuple(d + a + b for d, (a, b) in zip(in_shapes[0], pads))]

    def forward_f64(self, node, xs):
        x = np.asarray(xs[0], np.float64)
        return [np.pad(x, ((0, 0),) + self._pads(node, x.shape[1:]))]

    def prepare(self, node, ctx):
        pads = self._pads(node, ctx.shape(node.inputs[0]))
        if ctx.dtype == "float32":
            return {"pads": pads, "value": 0.0}
        i, o = ctx.quant(node.inputs[0]), ctx.quant(node.outputs[0])
        if not i == o:
            raise DarbgenError(f"{node.name}: int8 pad needs the same input and output quantization (TFLite's rule)")
        return {"pads": pads, "value": int(o.zero_point)}

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .shape_ops import pad_f32

        return [pad_f32(np.asarray(xs[0], np.float32), p["pads"], 0.0)]

    def forward_int8(self, node, p, xs):
        from .shape_ops import pad_int8

        return [pad_int8(np.asarray(xs[0], np.int8), p["pads"], p["value"])]

    def describe(self, node, ctx):
        return f"pad {'/'.join(f'{a}+{b}' for a, b in self._pads(node, ctx.shape(node.inputs[0])))}"

    def emit(self, node, p, e):
        sym = e.sym(node)
        shape = e.qg.shapes[node.inputs[0]]
        pads = p["pads"]

        def five(v):
            v = list(v)
            return ", ".join(map(str, v + [0] * (5 - len(v))))
        e.block(f"static const darb_pad_geometry {sym}_geometry = {{ {len(shape)}u, {{ {five(shape)} }}, "
                f"{{ {five(a for a, _ in pads)} }}, {{ {five(b for _, b in pads)} }} }};\n")
        if isinstance(p["value"], int):
            call = f"darb_pad_s8(&{sym}_geometry, in, out, {p['value']});"
        else:
            call = f"darb_pad_f32(&{sym}_geometry, in, out, 0.0f);"
        e.function(node, "    " + call, runtime=ELEMENTWISE)


@register
class Concat(OpKind):
    kind = "concat"
    title = "concat"

    def _axis(self, node, rank):
        axis = int(node.attrs.get("axis", -1))
        if not -rank <= axis < rank:
            raise DarbgenError(f"{node.name}: concat axis {axis} is outside the {rank} axes of its inputs")
        if node.attrs.get("activation", "none") != "none":
            raise DarbgenError(f"{node.name}: a concat with a fused activation is not supported")
        return axis % rank

    def output_shapes(self, node, in_shapes):
        rank = len(in_shapes[0])
        axis = self._axis(node, rank)
        for s in in_shapes[1:]:
            if len(s) != rank or any(a != b for k, (a, b) in enumerate(zip(s, in_shapes[0])) if k != axis):
                raise DarbgenError(f"{node.name}: cannot concatenate shapes "
                                   f"{', '.join(str(tuple(x)) for x in in_shapes)} along axis {axis}")
        out = list(in_shapes[0])
        out[axis] = sum(s[axis] for s in in_shapes)
        return [tuple(out)]

    def forward_f64(self, node, xs):
        axis = self._axis(node, np.asarray(xs[0]).ndim - 1)
        return [np.concatenate([np.asarray(x, np.float64) for x in xs], axis=axis + 1)]

    def prepare(self, node, ctx):
        shapes = [ctx.shape(t) for t in node.inputs]
        axis = self._axis(node, len(shapes[0]))
        outer = int(np.prod(shapes[0][:axis]))
        sizes = [int(np.prod(s[axis:])) for s in shapes]
        if ctx.dtype == "float32":
            return {"axis": axis, "outer": outer, "sizes": sizes}
        from .shape_ops import concat_params

        qs = [ctx.quant(t) for t in node.inputs]
        out_q = ctx.quant(node.outputs[0])
        return {"axis": axis, "outer": outer, "sizes": sizes, "in": qs, "out": out_q,
                "requant": concat_params(qs, out_q)}

    def forward_f32(self, node, p, xs, kernel="packed"):
        from .shape_ops import concat_f32

        return [concat_f32([np.asarray(x, np.float32) for x in xs], p["axis"] + 1)]

    def forward_int8(self, node, p, xs):
        from .shape_ops import concat_int8

        return [concat_int8([np.asarray(x, np.int8) for x in xs], p["axis"] + 1, p["in"], p["out"])]

    def emit(self, node, p, e):
        sym = e.sym(node)
        n = len(node.inputs)
        sizes = e.array(f"{sym}_sizes", "uint32_t", np.asarray(p["sizes"], np.int64), "params")
        e.block(f"static const darb_concat_shape {sym}_shape = {{ {p['outer']}u, {n}u, {sizes} }};\n")
        ins = ", ".join(f"in{i}" for i in range(n))
        if "requant" in p:
            if all(r.identity for r in p["requant"]):
                req = "0"
            else:
                e.block(f"static const darb_requant_s8 {sym}_requant[{n}] = {{ "
                        f"{', '.join(_requant_fields(r) for r in p['requant'])} }};\n")
                req = f"{sym}_requant"
            body = (f"    const int8_t *const ins[{n}] = {{ {ins} }};\n"
                    f"    darb_concat_s8(&{sym}_shape, {req}, ins, out);")
        else:
            body = (f"    const float *const ins[{n}] = {{ {ins} }};\n"
                    f"    darb_concat_f32(&{sym}_shape, ins, out);")
        e.function(node, body, runtime=ELEMENTWISE)


class _Conversion(OpKind):
    """quantize / dequantize: the same real values in another number type (same shape; identity in float64)."""

    def output_shapes(self, node, in_shapes):
        return [tuple(in_shapes[0])]

    def forward_f64(self, node, xs):
        return [np.asarray(xs[0], np.float64)]

    def check_int8(self, node, ctx):
        if ctx.dtype == "float32":
            raise DarbgenError(f"{node.name}: a {self.kind} op runs in int8 models only")


@register
class Quantize(_Conversion):
    kind = "quantize"
    title = "quantize"

    def prepare(self, node, ctx):
        self.check_int8(node, ctx)
        out_q = ctx.quant(node.outputs[0])
        if ctx.type_of(node.inputs[0]) == "float32":
            return {"out": out_q}
        from .elementwise import requantize_params

        i = ctx.quant(node.inputs[0])
        return {"out": out_q, "requant": requantize_params(i.scale, i.zero_point, out_q.scale, out_q.zero_point)}

    def forward_int8(self, node, p, xs):
        from .elementwise import quantize_f32_to_int8, requantize_int8

        if "requant" in p:
            return [requantize_int8(np.asarray(xs[0], np.int8), p["requant"])]
        return [quantize_f32_to_int8(np.asarray(xs[0], np.float32), p["out"].scale, p["out"].zero_point)]

    def emit(self, node, p, e):
        sym = e.sym(node)
        n = int(np.prod(e.qg.shapes[node.inputs[0]]))
        if "requant" in p:
            e.block(f"static const darb_requant_s8 {sym}_requant = {_requant_fields(p['requant'])};\n")
            call = f"darb_requantize_s8(&{sym}_requant, in, out, {n}u);"
        else:
            call = (f"darb_quantize_f32_s8(in, out, {n}u, {_flt(np.float32(p['out'].scale))}, "
                    f"{p['out'].zero_point});")
        e.function(node, "    " + call, runtime=ELEMENTWISE)


@register
class Dequantize(_Conversion):
    kind = "dequantize"
    title = "dequantize"

    def prepare(self, node, ctx):
        self.check_int8(node, ctx)
        return {"in": ctx.quant(node.inputs[0])}

    def forward_int8(self, node, p, xs):
        from .elementwise import dequantize_int8_to_f32

        return [dequantize_int8_to_f32(np.asarray(xs[0], np.int8), p["in"].scale, p["in"].zero_point)]

    def emit(self, node, p, e):
        n = int(np.prod(e.qg.shapes[node.inputs[0]]))
        e.function(node, f"    darb_dequantize_s8_f32(in, out, {n}u, {_flt(np.float32(p['in'].scale))}, "
                         f"{p['in'].zero_point});", runtime=ELEMENTWISE)
