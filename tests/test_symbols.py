"""Every C symbol a generated model defines is defined once (darbgen.codegen.symbols): the scanner against
hand-written C and against what gcc and nm find in generated C, and the collisions a layer's name can cause
(an LSTM's _ih / _hh parts beside a layer named l_ih, a layer named step in a streaming model) refused with a
one-line error naming the layer, through the API and the CLI, for every dtype."""
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from darbgen.build import build
from darbgen.cli import main
from darbgen.codegen.symbols import check_symbols, definitions
from darbgen.errors import DarbgenError

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"


def test_scanner_reads_definitions_not_declarations():
    text = r'''
/* a comment with int m_fake(void) { } and #define M_FAKE 1 */
#ifndef M_X_H
#define M_X_H
#define M_X_SIZE 4 // trailing comment
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
extern const int8_t m_x_declared[4];
void m_x_proto(const int8_t *in, int8_t *out);
static const int8_t m_x_weight[4] = {1, 2, 3, 4};
static const char m_x_text[] = "not } a brace; int m_fake2;";
typedef struct { int a; int b[2]; } m_x_type;
static inline int32_t __attribute__((always_inline)) m_x_inline(int32_t v) { if (v) { return v; } return 0; }
void m_x_run(const int8_t *in, int8_t *out)
{
    int m_local = 0;
    out[0] = in[0] + m_local;
}
#if defined(DARB_SPARSE_PER_PIXEL)
void m_x_alt(void) { }
#else
void m_x_alt(void) { }
#endif
#ifdef __cplusplus
}
#endif
#endif
'''
    found = [(d.name, d.what) for d in definitions("m_x.h", text)]
    assert found == [("M_X_H", "macro"), ("M_X_SIZE", "macro"), ("m_x_weight", "symbol"), ("m_x_text", "symbol"),
                     ("m_x_type", "symbol"), ("m_x_inline", "symbol"), ("m_x_run", "symbol"),
                     ("m_x_alt", "symbol"), ("m_x_alt", "symbol")]
    check_symbols({"m_x.h": text}, "m")              # the #if / #else pair are alternatives, not a clash


@pytest.mark.parametrize("a, b, clash", [
    ("#define M_A 1\n", "#define M_A 1\n", "M_A"),                          # even an identical redefinition
    ("void m_f(void) { }\n", "int m_f(void) { return 0; }\n", "m_f"),
    ("static const int m_t[2] = {1, 2};\n", "const int m_t[1] = {3};\n", "m_t"),
    ("#define M_A 1\n", "#define M_B 1\nvoid m_a(void) { }\n", None),        # different identifiers
    ("void m_f(void);\n", "void m_f(void) { }\n", None),                    # a prototype and its definition
    ("void other_f(void) { }\n", "void other_f(void) { }\n", None),         # not the model's (prefix m)
])
def test_check_symbols_across_files(a, b, clash):
    files = {"m_a.c": a, "m_b.c": b}
    if clash is None:
        check_symbols(files, "m")
    else:
        with pytest.raises(DarbgenError, match=f"the C name '{clash}', defined twice"):
            check_symbols(files, "m")


def _lstm_npz(path, dense_name, lstm_name="l", rng=None):
    """An LSTM (4 steps of 5 inputs, 8 hidden) and a dense layer over its last state, calibration bundled."""
    rng = rng or np.random.default_rng(0)
    hidden, inputs, steps = 8, 5, 4
    arrays = {f"{lstm_name}.w_ih": (rng.standard_normal((4 * hidden, inputs)) * 0.3).astype(np.float32),
              f"{lstm_name}.w_hh": (rng.standard_normal((4 * hidden, hidden)) * 0.3).astype(np.float32),
              f"{lstm_name}.b_ih": np.zeros(4 * hidden, np.float32),
              f"{lstm_name}.b_hh": np.zeros(4 * hidden, np.float32),
              f"{dense_name}.weight": rng.standard_normal((3, hidden)).astype(np.float32),
              f"{dense_name}.bias": np.zeros(3, np.float32),
              "calib.x": rng.standard_normal((32, steps, inputs)).astype(np.float32)}
    desc = {"format": "darbgen-npz", "version": 1, "name": "m", "input_shape": [steps, inputs],
            "layers": [{"name": lstm_name, "kind": "lstm"}, {"name": dense_name, "kind": "dense"}]}
    arrays["__model__"] = np.array(json.dumps(desc))
    np.savez(path, **arrays)
    return path


# (the dense layer's name beside an LSTM "l", what the error must say)
COLLISIONS = [
    ("l_ih", r"layers 'l' and 'l_ih' both write the C file m_l_ih\.h"),
    ("L_HH", r"layers 'l' and 'L_HH' both write the C file m_l_hh\.h"),
    ("step", r"layer 'step' gives the C name 'M_STEP_OUTPUT_SIZE', defined twice \(m\.h and m_step\.h\)"),
]


@pytest.mark.parametrize("dtype", ["float32", "int16", "int8"])
@pytest.mark.parametrize("name, message", COLLISIONS)
def test_layer_names_that_collide_with_generated_parts_are_refused(tmp_path, name, message, dtype):
    path = _lstm_npz(tmp_path / "m.npz", name)
    with pytest.raises(DarbgenError, match=message):
        build(str(path), dtype=dtype)


def test_collision_through_the_cli_is_one_line(tmp_path, capsys):
    path = _lstm_npz(tmp_path / "m.npz", "l_ih")
    assert main(["build", str(path), "--dtype", "int8", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("darbgen: error: layers 'l' and 'l_ih'") and "rename" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["run", "reset", "l_weight", "l_h", "input", "arena"])
def test_names_near_the_generated_ones_still_build(tmp_path, name, gcc):
    """Names that look like generated parts but define nothing twice build and verify."""
    path = _lstm_npz(tmp_path / "m.npz", name)
    result = build(str(path), dtype="int8")
    assert result.ok


def _nm_symbols(tmp_path, files, prefix):
    """The symbols gcc's objects of the generated (non-runtime) .c files define, starting with the prefix."""
    names = set()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in files:
        if name.endswith(".c") and name.startswith(prefix):
            obj = tmp_path / (name + ".o")
            subprocess.run(["gcc", "-std=c99", "-c", "-I", str(tmp_path), str(tmp_path / name), "-o", str(obj)],
                           check=True)
            out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True,
                                 check=True).stdout
            names |= {line.split()[-1] for line in out.splitlines() if line.split()[-1].startswith(prefix + "_")}
    return names


def _macros(tmp_path, header, prefix):
    out = subprocess.run(["gcc", "-std=c99", "-dM", "-E", "-I", str(tmp_path), str(tmp_path / header)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[1].split("(")[0] for line in out.splitlines()
            if line.startswith("#define") and line.split()[1].startswith(prefix.upper() + "_")}


def _scanned(files, prefix):
    found = {"symbol": set(), "macro": set()}
    for name, text in files.items():
        if name.endswith((".c", ".h")):
            for d in definitions(name, text):
                if d.name.lower().startswith(prefix + "_"):
                    found[d.what].add(d.name)
    return found


@pytest.mark.parametrize("model", ["lstm", "digits_cnn"])
def test_scanner_sees_every_symbol_gcc_and_nm_see(tmp_path, model, gcc):
    """The scanner is only as good as what it sees: every symbol the compiled objects of a generated model
    define, and every macro its header defines, is among the scanner's definitions."""
    if model == "lstm":
        source = _lstm_npz(tmp_path / "m.npz", "fc")
    else:
        source = Path(__file__).resolve().parents[1] / "examples" / "digits_cnn.npz"
    module = build(str(source), dtype="int8", ratio=2).module
    prefix = module.prefix
    files = module.files
    out = tmp_path / "c"
    out.mkdir()
    seen = _scanned(files, prefix)
    defined = _nm_symbols(out, files, prefix)
    assert defined and defined <= seen["symbol"], sorted(defined - seen["symbol"])
    macros = _macros(out, f"{prefix}.h", prefix)
    assert macros and macros <= seen["macro"], sorted(macros - seen["macro"])


def test_scanner_sees_every_symbol_of_a_graph_model(tmp_path, gcc):
    """The same on the graph pipeline's C (one <prefix>.c with every op), from MLPerf Tiny's int8 KWS model."""
    path = MLPERF / "kws_ref_model.tflite"
    if not path.exists():
        warnings.warn(f"{path} is missing: the MLPerf Tiny models live in ../shared")
        pytest.skip(f"SKIPPED LOUDLY: {path} is missing (../shared/models/mlperf_tiny)")
    from darbgen.codegen.graph_emit import generate_graph
    from darbgen.graph_run import quantize_graph
    from darbgen.importers.tflite import graph_from_tflite

    module = generate_graph(quantize_graph(graph_from_tflite(str(path)), "int8"), kernel="dense", prefix="kws")
    out = tmp_path / "c"
    out.mkdir()
    seen = _scanned(module.files, "kws")
    defined = _nm_symbols(out, module.files, "kws")
    assert len(defined) > 5 and defined <= seen["symbol"], sorted(defined - seen["symbol"])
    macros = _macros(out, "kws.h", "kws")
    assert macros and macros <= seen["macro"], sorted(macros - seen["macro"])
