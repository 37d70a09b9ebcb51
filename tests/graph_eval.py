"""A plain NumPy float64 forward pass of a darbgen.ir.Graph, for tests.

Written straight from the definitions of the canonical node kinds in
darbgen/ir.py (NHWC, TensorFlow's conventions), independent of darbgen's own
op implementations, so importers can be checked against the source framework.
Arrays carry the batch first: (n, *shape).
"""
import numpy as np

CLAMP = {"none": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}


def activate(y, node):
    lo, hi = CLAMP[node.attrs.get("activation", "none")]
    return np.clip(y, lo, hi)


def _pad_hw(x, padding, value):
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(x, kh, kw, stride, dilation):
    """[(i, j, view)]: for each kernel tap, the (n, OH, OW, C) input values it meets."""
    (sh, sw), (dh, dw) = stride, dilation
    oh = (x.shape[1] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (x.shape[2] - ((kw - 1) * dw + 1)) // sw + 1
    return [(i, j, x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw, :])
            for i in range(kh) for j in range(kw)]


def conv2d(node, x):
    w = node.params["weight"].real()                 # (O, KH, KW, I)
    xp = _pad_hw(x, node.attrs["padding"], 0.0)
    acc = 0.0
    for i, j, view in _windows(xp, w.shape[1], w.shape[2], node.attrs["stride"], node.attrs["dilation"]):
        acc = acc + view @ w[:, i, j, :].T
    return activate(acc + node.params["bias"].real(), node)


def depthwise_conv2d(node, x):
    w = node.params["weight"].real()                 # (KH, KW, C * M), channel c * M + m reads input c
    x = np.repeat(x, node.attrs["multiplier"], axis=-1)
    xp = _pad_hw(x, node.attrs["padding"], 0.0)
    acc = 0.0
    for i, j, view in _windows(xp, w.shape[0], w.shape[1], node.attrs["stride"], node.attrs["dilation"]):
        acc = acc + view * w[i, j]
    return activate(acc + node.params["bias"].real(), node)


def fully_connected(node, x):
    x = x.reshape(x.shape[0], -1)
    return activate(x @ node.params["weight"].real().T + node.params["bias"].real(), node)


def add(node, a, b):
    return activate(a + b, node)


def avg_pool2d(node, x):
    # TensorFlow averages over the window's inputs inside the image (padding is not counted)
    fh, fw = node.attrs["filter"]
    xp = _pad_hw(x, node.attrs["padding"], 0.0)
    ones = _pad_hw(np.ones_like(x[:1, :, :, :1]), node.attrs["padding"], 0.0)
    total = sum(v for _, _, v in _windows(xp, fh, fw, node.attrs["stride"], (1, 1)))
    count = sum(v for _, _, v in _windows(ones, fh, fw, node.attrs["stride"], (1, 1)))
    return activate(total / count, node)


def max_pool2d(node, x):
    fh, fw = node.attrs["filter"]
    xp = _pad_hw(x, node.attrs["padding"], -np.inf)
    views = [v for _, _, v in _windows(xp, fh, fw, node.attrs["stride"], (1, 1))]
    return activate(np.max(np.stack(views), axis=0), node)


def mean(node, x):
    return x.mean(axis=tuple(a + 1 for a in node.attrs["axes"]), keepdims=bool(node.attrs["keep_dims"]))


def reshape(node, x):
    return x.reshape((x.shape[0],) + tuple(node.attrs["shape"]))


def softmax(node, x):
    z = node.attrs["beta"] * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def pad(node, x):
    return np.pad(x, ((0, 0),) + tuple(tuple(p) for p in node.attrs["pads"]))


def concat(node, *xs):
    return activate(np.concatenate(xs, axis=node.attrs["axis"] + 1), node)


EVAL = {f.__name__: f for f in (conv2d, depthwise_conv2d, fully_connected, add, avg_pool2d, max_pool2d, mean,
                                reshape, softmax, pad, concat)}


def run_graph(graph, x):
    """The graph's float64 output for a batch ``x`` of shape (n, *graph.input_shape)."""
    x = np.asarray(x, np.float64)
    assert x.shape[1:] == graph.input_shape, (x.shape, graph.input_shape)
    values = {graph.inputs[0]: x}
    for node in graph.nodes:
        y = EVAL[node.kind](node, *[values[t] for t in node.inputs])
        expect = graph.tensors[node.outputs[0]].shape
        assert y.shape[1:] == expect, f"{node.name} ({node.kind}): computed {y.shape[1:]}, graph says {expect}"
        values[node.outputs[0]] = y
    return values[graph.outputs[0]]
