"""Hostile input files: each must end in one `darbgen: error: ...` line and exit
status 2, never a traceback, a MemoryError or a silently wrong model.

CASES is the table: (id, a function that writes the file into tmp_path and
returns the CLI argv, a regexp the error line must match, environment
variables to set). The models are tiny, so the whole file runs in seconds.
"""
import io
import json
import re
import warnings
import zipfile
from typing import Callable, NamedTuple

import numpy as np
import pytest
from conftest import cli_error_line, need_module

from darbgen.cli import main
from darbgen.errors import DarbgenError
from darbgen.importers.npz import model_from_npz
from darbgen.npzio import load_npz

MLP = {"format": "darbgen-npz", "version": 1, "name": "tiny", "input_shape": [4],
       "layers": [{"name": "fc1", "kind": "dense", "activation": "relu"},
                  {"name": "fc2", "kind": "dense", "activation": "softmax"}]}
CNN = {"format": "darbgen-npz", "version": 1, "name": "tinycnn", "input_shape": [1, 4, 4],
       "layers": [{"name": "conv1", "kind": "conv2d", "padding": "same", "activation": "relu"},
                  {"name": "flatten", "kind": "flatten"},
                  {"name": "fc", "kind": "dense"}]}
RNN = {"format": "darbgen-npz", "version": 1, "name": "tinyrnn", "input_shape": [5, 3],
       "layers": [{"name": "lstm", "kind": "lstm"}, {"name": "fc", "kind": "dense"}]}


def mlp_arrays(model=MLP):
    rng = np.random.default_rng(0)
    return {"fc1.weight": rng.standard_normal((8, 4)).astype(np.float32), "fc1.bias": np.zeros(8, np.float32),
            "fc2.weight": rng.standard_normal((3, 8)).astype(np.float32), "fc2.bias": np.zeros(3, np.float32),
            "__model__": np.array(model if isinstance(model, str) else json.dumps(model))}


def cnn_arrays():
    rng = np.random.default_rng(1)
    return {"conv1.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
            "conv1.bias": np.zeros(2, np.float32), "fc.weight": rng.standard_normal((3, 32)).astype(np.float32),
            "__model__": np.array(json.dumps(CNN))}


def rnn_arrays():
    rng = np.random.default_rng(2)
    return {"lstm.w_ih": rng.standard_normal((16, 3)).astype(np.float32),
            "lstm.w_hh": rng.standard_normal((16, 4)).astype(np.float32),
            "fc.weight": rng.standard_normal((2, 4)).astype(np.float32), "__model__": np.array(json.dumps(RNN))}


def build(path, tmp_path):
    return ["build", path, "--out", tmp_path / "out"]


def prune(path, tmp_path):
    return ["prune", path, "--ratio", 2, "-o", tmp_path / "pruned.npz"]


def npz(tmp_path, arrays, name="model.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def described(change, command=build):
    """A case: the tiny MLP with its description changed by ``change`` (a dict -> JSON value)."""
    def make(tmp_path):
        model = json.loads(json.dumps(MLP))
        model = change(model)
        return command(npz(tmp_path, mlp_arrays(model)), tmp_path)
    return make


def layer_field(index, **fields):
    def change(model):
        model["layers"][index].update(fields)
        return model
    return change


def npy_bytes(array=None, shape=None, dtype="<f4", tail=b""):
    """An .npy file's bytes; with ``shape``, a header declaring it followed by ``tail`` only."""
    if array is not None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=True)
        return buf.getvalue()
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (dtype, tuple(shape))
    header += " " * (64 - (len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + tail


def zipped(members, compression=zipfile.ZIP_STORED):
    """A case: an .npz written member by member ({member name: bytes or array}), in order."""
    def make(tmp_path, command=build):
        path = tmp_path / "model.npz"
        with zipfile.ZipFile(path, "w", compression=compression) as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)         # the duplicate-name case
            for name, data in members().items() if callable(members) else members.items():
                zf.writestr(name.split("#")[0], data if isinstance(data, bytes) else npy_bytes(data))
        return command(path, tmp_path)
    return make


def members_with(**replaced):
    """The tiny MLP's members, with some replaced or added ("name.npy": bytes or array)."""
    def members():
        out = {f"{k}.npy": v for k, v in mlp_arrays().items()}
        out.update({k.replace("__npy", ".npy").replace("__hash", "#"): v for k, v in replaced.items()})
        return out
    return members


def with_arrays(base, **extra):
    def make(tmp_path):
        arrays = base()
        arrays.update({k.replace("__dot__", "."): v(arrays) if callable(v) else v for k, v in extra.items()})
        return build(npz(tmp_path, arrays), tmp_path)
    return make


def raw_file(data, name="model.npz"):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(data() if callable(data) else data)
        return build(path, tmp_path)
    return make


def renamed_npy(tmp_path):
    path = tmp_path / "weights.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))
    return build(path, tmp_path)


def zip_bomb(tmp_path):
    """8 MiB of zeros deflated to a few KiB, against a 1 MiB cap (the same check as the default 1 GiB)."""
    big = npy_bytes(shape=(2048, 1024), tail=b"\0" * (2048 * 1024 * 4))
    return zipped(members_with(**{"fc1.weight__npy": big}), zipfile.ZIP_DEFLATED)(tmp_path)


def many_members(tmp_path):
    """10,001 tiny arrays: more members than an .npz darbgen reads may hold."""
    path = tmp_path / "many.npz"
    header = npy_bytes(shape=(1,), tail=b"\0" * 4)
    with zipfile.ZipFile(path, "w") as z:
        for k in range(10_001):
            z.writestr(f"a{k}.npy", header)
    return build(path, tmp_path)


def prune_of(make):
    return lambda tmp_path: make(tmp_path, command=prune)


# ------------------------------------------------------------------------------ ONNX files

def _onnx():
    return need_module("onnx", "the hostile ONNX cases need it", "onnx")


def onnx_file(op, weight_dtype=np.int8, declared_out=3, weight_shape=(4, 3), **attrs):
    """A one-layer ONNX model (x (N, 4) -> op with constant weights -> y (N, declared_out))."""
    def make(tmp_path):
        onnx = _onnx()
        from onnx import TensorProto, helper, numpy_helper

        inputs = ["x", "W"] + (["B"] if op == "Gemm" else [])
        inits = [numpy_helper.from_array(np.ones(weight_shape, weight_dtype), "W"),
                 numpy_helper.from_array(np.zeros(3, np.float32), "B")]
        g = helper.make_graph([helper.make_node(op, inputs, ["y"], name="fc", **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", declared_out])],
                              inits[:len(inputs) - 1])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 9
        path = tmp_path / "model.onnx"
        onnx.save(model, str(path))
        return build(path, tmp_path)
    return make


def onnx_int8_conv(tmp_path):
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 2, 2])],
                          [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.int8), "W")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    return build(path, tmp_path)


class Case(NamedTuple):
    id: str
    make: Callable
    error: str
    env: dict = {}


INT8_WEIGHTS = r"holds int8 integers used directly as float weights .*export float weights, or a QDQ model"

CASES = [
    # ---- the __model__ description
    Case("model_is_a_list", described(lambda m: [1, 2]),
         r"model\.npz: __model__: the description is a list; it must be a JSON object"),
    Case("model_is_a_number", described(lambda m: 3), r"__model__: the description is a number"),
    Case("model_not_json", with_arrays(mlp_arrays, __model__=np.array("{'layers': ")), r"__model__: not valid JSON"),
    Case("model_not_a_string", with_arrays(mlp_arrays, __model__=np.zeros(3)),
         r"__model__: must be a 0-d string array holding JSON .*float64 array of shape \(3,\)"),
    Case("model_deeply_nested", with_arrays(mlp_arrays, __model__=np.array("[" * 100000 + "]" * 100000)),
         r"__model__: the JSON is nested too deeply"),
    Case("input_shape_number", described(lambda m: {**m, "input_shape": 64}),
         r"__model__: input_shape must be a list of positive integers .*got 64$"),
    Case("input_shape_zero", described(lambda m: {**m, "input_shape": [0]}), r"input_shape must be .*got \[0\]"),
    Case("input_shape_bool", described(lambda m: {**m, "input_shape": [True]}), r"input_shape must be .*\[True\]"),
    Case("layers_number", described(lambda m: {**m, "layers": 5}),
         r"__model__: layers must be a list of layer objects, got a number"),
    Case("layers_null", described(lambda m: {**m, "layers": None}),
         r"layers must be a list of layer objects, got null"),
    Case("layers_object", described(lambda m: {**m, "layers": {"fc1": "dense"}}), r"layers must be a list"),
    Case("layer_is_number", described(lambda m: {**m, "layers": [5]}),
         r"__model__: layers\[0\] is a number; each layer must be an object"),
    Case("layer_without_name", described(lambda m: {**m, "layers": [{"kind": "dense"}]}),
         r'layers\[0\] needs a "name" that is a non-empty string, got None'),
    Case("layer_name_number", described(layer_field(1, name=7)), r'layers\[1\] needs a "name" .*got 7'),
    Case("layer_kind_list", described(layer_field(0, kind=["dense"])),
         r"""layer 'fc1': needs a "kind" that is a string .*got \['dense'\]"""),
    Case("activation_number", described(layer_field(0, activation=1)), r"layer 'fc1': activation must be a string"),
    Case("stride_string", described(layer_field(0, stride="2")),
         r"layer 'fc1': stride must be a positive integer or a list of 1 or 2 of them, got '2'"),
    Case("size_zero", described(layer_field(0, size=[0, 2])), r"layer 'fc1': size must be a positive integer"),
    Case("dilation_float", described(layer_field(0, dilation=1.5)), r"dilation must be a positive integer"),
    Case("stride_huge", described(layer_field(0, stride=2 ** 40)), r"stride must be a positive integer"),
    Case("padding_object", described(layer_field(0, padding={"top": 1})),
         r"layer 'fc1': padding must be \"valid\", \"same\", a non-negative integer"),
    Case("padding_negative", described(layer_field(0, padding=[-1, 0])), r"padding must be .*got \[-1, 0\]"),
    Case("eps_string", described(layer_field(0, eps="1e-5")), r"layer 'fc1': eps must be a positive number"),
    Case("return_sequences_string", described(layer_field(0, return_sequences="yes")),
         r"layer 'fc1': return_sequences must be true or false, got 'yes'"),
    Case("prune_model_is_a_list", described(lambda m: [1, 2], command=prune),
         r"model\.npz: __model__: the description is a list"),
    # ---- the archive itself
    Case("npy_renamed_npz", renamed_npy, r"weights\.npz: is a single \.npy array, not an \.npz archive"),
    Case("not_a_zip", raw_file(b"PK-not-really" + bytes(200)), r"model\.npz: not a readable \.npz file \(not a zip"),
    Case("huge_declared_shape", zipped(members_with(**{"fc1.weight__npy": npy_bytes(shape=(100000, 100000))})),
         r"array 'fc1\.weight' declares shape \(100000, 100000\) float32 \(37\.3 GiB; 37\.3 GiB in all\), over the "
         r"1 GiB limit .*DARBGEN_MAX_NPZ_BYTES"),
    Case("huge_shape_overflowing_int64", zipped(members_with(**{"fc1.weight__npy": npy_bytes(shape=(2 ** 40,) * 3)})),
         r"array 'fc1\.weight' declares shape .* over the 1 GiB limit"),
    Case("prune_huge_declared_shape",
         prune_of(zipped(members_with(**{"fc1.weight__npy": npy_bytes(shape=(100000, 100000))}))),
         r"array 'fc1\.weight' declares shape \(100000, 100000\)"),
    Case("zip_bomb", zip_bomb,
         r"array 'fc1\.weight' declares shape \(2048, 1024\) float32 \(8 MiB; 8 MiB in all\), over the 1 MiB limit",
         {"DARBGEN_MAX_NPZ_BYTES": "1M"}),
    Case("too_many_members", many_members, r"many\.npz: holds 10,001 members, more than the 10,000 arrays"),
    Case("bad_cap_variable", lambda tmp_path: build(npz(tmp_path, mlp_arrays()), tmp_path),
         r"DARBGEN_MAX_NPZ_BYTES='lots': expected a number of bytes", {"DARBGEN_MAX_NPZ_BYTES": "lots"}),
    Case("duplicate_member", zipped(members_with(**{"fc1.weight__npy__hash2": np.ones((8, 4), np.float32)})),
         r"holds the array 'fc1\.weight' twice"),
    Case("member_not_npy", zipped(members_with(**{"notes.txt": b"hello"})),
         r"member 'notes\.txt' is not a \.npy array"),
    Case("object_array", zipped(members_with(**{"fc1.bias__npy": np.array([{"a": 1}], dtype=object)})),
         r"array 'fc1\.bias' holds Python objects \(pickled\); darbgen never unpickles"),
    Case("truncated_member", zipped(members_with(**{"fc1.weight__npy": npy_bytes(shape=(8, 4), tail=b"\0" * 20)})),
         r"model\.npz: not a readable \.npz file \("),
    Case("bad_npy_header", zipped(members_with(**{"fc1.weight__npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}   \n"})),
         r"array 'fc1\.weight' has no valid \.npy header"),
    # ---- masks and block sizes of pruned layers
    Case("mask_values_2", with_arrays(mlp_arrays, fc1__dot__weight__mask=np.full((8, 4), 2, np.int64)),
         r"fc1\.weight__mask \(int64\) holds 2 at \(0, 0\); a mask holds only 0 / 1 .*mask\.astype\(bool\)"),
    Case("mask_fractions", with_arrays(mlp_arrays, fc1__dot__weight__mask=np.full((8, 4), 0.5, np.float32)),
         r"fc1\.weight__mask \(float32\) holds 0\.5 at \(0, 0\)"),
    Case("mask_nan", with_arrays(mlp_arrays, fc2__dot__weight__mask=np.where(np.eye(3, 8) > 0, np.nan, 1.0)),
         r"fc2\.weight__mask \(float64\) holds nan at \(0, 0\)"),
    Case("mask_strings", with_arrays(mlp_arrays, fc1__dot__weight__mask=np.full((8, 4), "y")),
         r"fc1\.weight__mask has dtype <U1; a mask must be bool"),
    Case("mask_wrong_shape", with_arrays(mlp_arrays, fc1__dot__weight__mask=np.ones((4, 8), bool)),
         r"fc1\.weight__mask has shape \(4, 8\) but fc1\.weight is \(8, 4\)"),
    Case("conv_mask_values", with_arrays(cnn_arrays, conv1__dot__weight__mask=np.full((2, 1, 3, 3), 3, np.uint8)),
         r"conv1\.weight__mask \(uint8\) holds 3"),
    Case("lstm_mask_values", with_arrays(rnn_arrays, lstm__dot__w_hh__mask=np.full((16, 4), -1, np.int8)),
         r"lstm\.w_hh__mask \(int8\) holds -1"),
    Case("block_sizes_float", with_arrays(mlp_arrays, fc1__dot__weight__block_sizes=np.full(8, 2.0)),
         r"fc1\.weight__block_sizes has dtype float64; block sizes are integers"),
    Case("block_sizes_length", with_arrays(mlp_arrays, fc1__dot__weight__block_sizes=np.full(3, 2)),
         r"fc1\.weight__block_sizes has shape \(3,\); it needs one block size per row of fc1\.weight \(8,\)"),
    Case("block_sizes_zero", with_arrays(mlp_arrays, fc1__dot__weight__block_sizes=np.arange(8)),
         r"fc1\.weight__block_sizes holds the block size 0; block sizes are positive integers"),
    Case("lstm_block_sizes", with_arrays(rnn_arrays, lstm__dot__w_ih__block_sizes=np.full(16, -4)),
         r"lstm\.w_ih__block_sizes holds the block size -4"),
    # ---- ONNX
    Case("onnx_int8_matmul", onnx_file("MatMul"), r"model\.onnx: node 'fc' \(MatMul\): its input 'W' " + INT8_WEIGHTS),
    Case("onnx_int8_gemm", onnx_file("Gemm", weight_shape=(3, 4), transB=1),
         r"model\.onnx: node 'fc' \(Gemm\): its input 'W' " + INT8_WEIGHTS),
    Case("onnx_int32_gemm", onnx_file("Gemm", np.int32), r"node 'fc' \(Gemm\): its input 'W' holds int32 integers"),
    Case("onnx_int8_conv", onnx_int8_conv, r"conv\.onnx: node 'conv' \(Conv\): its input 'W' " + INT8_WEIGHTS),
    Case("onnx_checker_rejects", onnx_file("MatMul", np.float32, declared_out=5),
         r"model\.onnx: is not a valid ONNX model \(onnx\.checker\): InferenceError: .*MatMul.*differ"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file_is_one_clear_error(case, tmp_path, capsys, monkeypatch):
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    argv = case.make(tmp_path)
    line = cli_error_line(argv, capsys)
    assert re.search(case.error, line), line
    assert not (tmp_path / "out").exists() and not (tmp_path / "pruned.npz").exists()


def test_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------ API level

def test_example_archives_and_prune_outputs_still_load(tmp_path, capsys):
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    assert load_npz(examples / "char_lstm.npz")
    for name in ("digits_mlp.npz", "digits_cnn.npz"):
        arrays = load_npz(examples / name)
        assert model_from_npz(arrays, name).layers
        out = tmp_path / f"pruned_{name}"
        assert main(["prune", str(examples / name), "--ratio", "4", "--method", "darb", "-o", str(out)]) == 0
        pruned = load_npz(out)
        model = model_from_npz(pruned, str(out))
        first = next(layer for layer in model.layers if getattr(layer, "block_sizes", None) is not None)
        key = next(k for k in pruned if k.endswith("__block_sizes"))
        np.testing.assert_array_equal(first.block_sizes, pruned[key])
        assert first.mask.dtype == np.bool_ and 3.5 < first.mask.size / first.mask.sum() < 4.5


def test_numeric_zero_one_masks_are_accepted_as_bool(tmp_path):
    base = mlp_arrays()
    keep = np.random.default_rng(3).random((8, 4)) < 0.5
    ref = model_from_npz(load_npz(npz(tmp_path, {**base, "fc1.weight__mask": keep}, "bool.npz")))
    for dtype in (np.float32, np.int64, np.uint8):
        got = model_from_npz(load_npz(npz(tmp_path, {**base, "fc1.weight__mask": keep.astype(dtype)}, "n.npz")))
        assert got.layers[0].mask.dtype == np.bool_
        np.testing.assert_array_equal(got.layers[0].mask, keep)
        np.testing.assert_array_equal(got.layers[0].weight, ref.layers[0].weight)
    assert np.count_nonzero(ref.layers[0].weight) == np.count_nonzero(keep & (base["fc1.weight"] != 0))


def test_conv_mask_may_be_flattened(tmp_path):
    arrays = cnn_arrays()
    keep = np.arange(18).reshape(2, 9) % 2 == 0
    model = model_from_npz({**arrays, "conv1.weight__mask": keep})
    np.testing.assert_array_equal(model.layers[0].mask, keep)


def test_cap_variable_raises_and_lowers_the_limit(tmp_path, monkeypatch):
    path = npz(tmp_path, {"w": np.zeros((256, 1024), np.float32)})          # 1 MiB
    monkeypatch.setenv("DARBGEN_MAX_NPZ_BYTES", "1048575")
    with pytest.raises(DarbgenError, match=r"array 'w' declares shape \(256, 1024\) float32 \(1 MiB"):
        load_npz(path)
    monkeypatch.setenv("DARBGEN_MAX_NPZ_BYTES", "2M")
    assert load_npz(path)["w"].shape == (256, 1024)
    monkeypatch.delenv("DARBGEN_MAX_NPZ_BYTES")
    assert load_npz(path)["w"].shape == (256, 1024)


def test_a_member_longer_than_its_header_is_read_only_as_far_as_declared(tmp_path):
    """The header, not the zip's sizes, says how much is read: trailing bytes are ignored."""
    path = tmp_path / "long.npz"
    body = np.arange(3, dtype="<f4").tobytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w.npy", npy_bytes(shape=(3,), tail=body + b"\0" * (4 << 20)))
    np.testing.assert_array_equal(load_npz(path)["w"], [0, 1, 2])


def test_onnx_importer_refuses_computed_integer_weights_the_checker_would_miss():
    """Behind onnx.checker, the importer itself refuses integer values reaching a layer's weights
    (here int8 made by a Cast that is folded to a constant), naming the tensor and the node."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    from darbgen.importers.onnx import _Importer

    nodes = [helper.make_node("Cast", ["Wf"], ["Wq"], to=TensorProto.INT8, name="cast"),
             helper.make_node("MatMul", ["x", "Wq"], ["y"], name="fc")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                          [numpy_helper.from_array(np.full((4, 3), 3.0, np.float32), "Wf")])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(DarbgenError, match=r"m\.onnx: node 'fc' \(MatMul\): its input 'Wq' holds int8 integers"):
        _Importer(onnx, proto, "m.onnx", "net").run()
    from darbgen.importers.onnx import model_from_onnx

    with pytest.raises(DarbgenError, match=r"is not a valid ONNX model \(onnx\.checker\)"):
        model_from_onnx(proto)


def test_onnx_integer_shape_arithmetic_is_not_mistaken_for_weights():
    """Integer constants combined with each other (shape computations) are not layer weights."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    from darbgen.importers.onnx import model_from_onnx

    nodes = [helper.make_node("MatMul", ["a", "b"], ["shape2d"], name="ints"),
             helper.make_node("Reshape", ["x", "flat"], ["xf"], name="reshape"),
             helper.make_node("MatMul", ["xf", "W"], ["y"], name="fc")]
    inits = [numpy_helper.from_array(np.ones((1, 1), np.int64), "a"),
             numpy_helper.from_array(np.ones((1, 1), np.int64), "b"),
             numpy_helper.from_array(np.array([-1, 4], np.int64), "flat"),
             numpy_helper.from_array(np.ones((4, 3), np.float32), "W")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto, full_check=True)
    model = model_from_onnx(proto)
    np.testing.assert_allclose(model.forward(np.ones((2, 4))), np.full((2, 3), 4.0))
