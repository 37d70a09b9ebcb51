"""Write a float darbgen op graph back as a float .tflite (test helper), so that LiteRT can run the very
model darbgen imported: a Keras 2 .h5, or a .tflite whose int8-stored weights darbgen dequantized (which
LiteRT itself would run with hybrid kernels). Padding that is not TFLite's SAME or VALID becomes a PAD op."""
import numpy as np

from tflite_build_import import ModelBuilder

ACT = {"none": "none", "relu": "relu", "relu6": "relu6", "relu_n1_to_1": "relu_n1_to_1"}


def _same(in_size, k, stride, dilation):
    out = -(-in_size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def _padding(node, in_shape, kh, kw):
    """"same", "valid", or None (explicit padding: a PAD op goes first)."""
    pad = tuple(node.attrs.get("padding", (0, 0, 0, 0)))
    if pad == (0, 0, 0, 0):
        return "valid"
    s, d = node.attrs.get("stride", (1, 1)), node.attrs.get("dilation", (1, 1))
    if pad == _same(in_shape[0], kh, s[0], d[0]) + _same(in_shape[1], kw, s[1], d[1]):
        return "same"
    return None


def graph_to_tflite(graph, shapes):
    m = ModelBuilder()
    t = {}

    def act(name):
        if name not in t:
            t[name] = m.tensor(name, (1,) + tuple(shapes[name]), "float32")
        return t[name]

    def const(name, data, dtype="float32"):
        return m.tensor(name, np.shape(data), dtype, data=data)

    for k, node in enumerate(graph.nodes):
        x = [act(i) for i in node.inputs]
        y = act(node.outputs[0])
        a = ACT[node.attrs.get("activation", "none")]
        if node.kind in ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"):
            if node.kind == "conv2d":
                kh, kw = node.params["weight"].shape[1:3]
            elif node.kind == "depthwise_conv2d":
                kh, kw = node.params["weight"].shape[:2]
            else:
                kh, kw = node.attrs["filter"]
            padding = _padding(node, shapes[node.inputs[0]], kh, kw)
            if padding is None:                              # explicit padding: PAD, then VALID
                top, bottom, left, right = node.attrs["padding"]
                h, w, c = shapes[node.inputs[0]]
                padded = m.tensor(f"padded{k}", (1, h + top + bottom, w + left + right, c), "float32")
                pads = const(f"pads{k}", np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32), "int32")
                m.op("PAD", [x[0], pads], [padded])
                x[0], padding = padded, "valid"
            s = node.attrs.get("stride", (1, 1))
        if node.kind == "conv2d":
            w = const(f"w{k}", node.params["weight"].real().astype(np.float32))
            b = const(f"b{k}", node.params["bias"].real().astype(np.float32).reshape(-1))
            d = node.attrs.get("dilation", (1, 1))
            m.op("CONV_2D", [x[0], w, b], [y], ("Conv2DOptions", {
                "padding": padding, "stride_h": s[0], "stride_w": s[1], "dilation_h_factor": d[0],
                "dilation_w_factor": d[1], "fused_activation_function": a}))
        elif node.kind == "depthwise_conv2d":
            wt = node.params["weight"].real().astype(np.float32)
            w = const(f"w{k}", wt[None])
            b = const(f"b{k}", node.params["bias"].real().astype(np.float32).reshape(-1))
            d = node.attrs.get("dilation", (1, 1))
            m.op("DEPTHWISE_CONV_2D", [x[0], w, b], [y], ("DepthwiseConv2DOptions", {
                "padding": padding, "stride_h": s[0], "stride_w": s[1], "dilation_h_factor": d[0],
                "dilation_w_factor": d[1], "depth_multiplier": node.attrs.get("multiplier", 1),
                "fused_activation_function": a}))
        elif node.kind in ("avg_pool2d", "max_pool2d"):
            m.op("AVERAGE_POOL_2D" if node.kind == "avg_pool2d" else "MAX_POOL_2D", [x[0]], [y], ("Pool2DOptions", {
                "padding": padding, "stride_h": s[0], "stride_w": s[1], "filter_height": kh, "filter_width": kw,
                "fused_activation_function": a}))
        elif node.kind == "fully_connected":
            w = const(f"w{k}", node.params["weight"].real().astype(np.float32).reshape(
                node.params["weight"].shape[0], -1))
            b = const(f"b{k}", node.params["bias"].real().astype(np.float32).reshape(-1))
            m.op("FULLY_CONNECTED", [x[0], w, b], [y], ("FullyConnectedOptions", {"fused_activation_function": a}))
        elif node.kind == "add":
            m.op("ADD", x, [y], ("AddOptions", {"fused_activation_function": a}))
        elif node.kind == "reshape":
            shape = const(f"shape{k}", np.array((1,) + tuple(shapes[node.outputs[0]]), np.int32), "int32")
            m.op("RESHAPE", [x[0], shape], [y])
        elif node.kind == "softmax":
            m.op("SOFTMAX", x, [y], ("SoftmaxOptions", {"beta": node.attrs.get("beta", 1.0)}))
        elif node.kind == "mean":
            axes = const(f"axes{k}", np.array([1, 2], np.int32), "int32")
            m.op("MEAN", [x[0], axes], [y], ("ReducerOptions", {"keep_dims": node.attrs.get("keep_dims", False)}))
        elif node.kind == "pad":
            pads = const(f"pads{k}", np.array(((0, 0),) + tuple(node.attrs["pads"]), np.int32), "int32")
            m.op("PAD", [x[0], pads], [y])
        elif node.kind == "concat":
            m.op("CONCATENATION", x, [y], ("ConcatenationOptions", {"axis": node.attrs["axis"] + 1}))
        else:
            raise ValueError(f"graph_to_tflite: {node.kind} is not written back")
    return m.build(inputs=[act(graph.inputs[0])], outputs=[act(graph.outputs[0])])
