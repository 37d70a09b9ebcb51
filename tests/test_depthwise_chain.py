"""DepthwiseConv2D in the chain pipeline (.npz, .onnx, .keras, PyTorch): its own op and kernel
(darb_depthwise_chw_<t>), never a full convolution."""
import numpy as np
import pytest

from conftest import slow_except
from darbgen.codegen import generate
from darbgen.graph import Conv2D, Dense, DepthwiseConv2D, Flatten, GlobalAveragePool, Model
from darbgen.verify import verify


def model(rng, mult=2, activation="relu6", padding="same", stride=2):
    return Model("dw", (3, 9, 8), [
        Conv2D("c1", rng.standard_normal((4, 3, 3, 3)) * 0.5, rng.standard_normal(4), padding=1,
               activation="relu"),
        DepthwiseConv2D("dw", rng.standard_normal((4 * mult, 1, 3, 3)), rng.standard_normal(4 * mult),
                        stride=stride, padding=padding, dilation=1, activation=activation),
        GlobalAveragePool("gap"), Flatten("flat"),
        Dense("fc", rng.standard_normal((5, 4 * mult)), rng.standard_normal(5)),
    ])


def naive_depthwise(x, w, b, stride, pad, mult):
    """Loops straight from the definition (float64, channel first, padding (top, bottom, left, right))."""
    c, h, wd = x.shape
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    oh = (h + pad[0] + pad[1] - kh) // stride + 1
    ow = (wd + pad[2] + pad[3] - kw) // stride + 1
    out = np.zeros((c * mult, oh, ow))
    for o in range(c * mult):
        for y in range(oh):
            for z in range(ow):
                out[o, y, z] = b[o] + np.sum(xp[o // mult, y * stride:y * stride + kh, z * stride:z * stride + kw]
                                             * w[o, 0])
    return out


def test_depthwise_op_matches_the_definition(rng):
    m = model(rng, activation="none")
    op = m.ops()[1]
    assert op.op_kind == "depthwise" and op.multiplier == 2
    x = rng.standard_normal((3, 4 * 9 * 8))
    got = op.forward_f64(x)[1].reshape(3, 8, *op.out_shape[1:])
    layer = m.layers[1]
    for n in range(3):
        want = naive_depthwise(x[n].reshape(4, 9, 8), layer.weight, layer.bias, 2, op.padding, 2)
        assert np.allclose(got[n], want, rtol=1e-6, atol=1e-6)     # the op keeps float32 weights


# by default each dtype once and each shape once; every pair in the full run
@pytest.mark.parametrize("dtype,mult,padding,stride", slow_except(
    [(dtype, *shape) for dtype in ("int8", "int16", "float32") for shape in ((1, "valid", 1), (2, "same", 2), (3, (1, 2), 1))],
    {("int8", 1, "valid", 1), ("int16", 2, "same", 2), ("float32", 3, (1, 2), 1)}))
def test_depthwise_in_a_chain_verifies_under_sanitizers(rng, gcc, dtype, mult, padding, stride):
    m = model(rng, mult, padding=padding, stride=stride)
    calib = rng.standard_normal((16, 3 * 9 * 8))
    module = generate(m, dtype=dtype, kernel="packed", prefix="dw", calib=calib)
    result = verify(module, sanitize=True)
    assert result.ok, result.describe()
    g = next(u for u in module.layers if u.name == "dw")
    assert g.kernel == "depthwise"
    assert g.data_bytes()["values"] == 4 * mult * 9 * (4 if dtype == "float32" else 1)   # no zeros stored
    assert "darb_depthwise_chw_" in module.files["dw_dw.c"]


def test_depthwise_build_report_names_it(tmp_path, rng, gcc):
    from darbgen.build import build

    m = model(rng)
    r = build(m, ratio=2, layers=["c1", "fc"], calib=rng.standard_normal((16, 3 * 9 * 8))).report
    kinds = {row["name"]: row["kind"] for row in r["layers"]}
    assert kinds["dw"] == "depthwise" and r["verified"]


@pytest.mark.slow
@pytest.mark.parametrize("core", slow_except(["cortex-m0plus", "cortex-m4", "cortex-m55"], {"cortex-m4"}))
def test_depthwise_chain_on_cortex_m(rng, qemu, core):
    m = model(rng, 2)
    calib = rng.standard_normal((16, 3 * 9 * 8))
    for dtype in ("int8", "int16", "float32"):
        module = generate(m, dtype=dtype, kernel="packed", prefix="dw", calib=calib)
        assert verify(module, n_random=4, target=core).ok
