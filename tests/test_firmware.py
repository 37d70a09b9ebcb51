"""Generated C in a firmware (issue 16): two models link into one image with
the documented recipe (docs/codegen.md, "Several models in one firmware") and
each computes exactly its reference; the header's scales are float constants;
the same model and options give the same bytes wherever they are written."""
import filecmp
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from darbgen.build import build
from darbgen.cli import main
from darbgen.codegen.banner import banner_command
from darbgen.npzio import load_npz
from darbgen.toolchain import host

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "digits_mlp.npz"
CNN = ROOT / "examples" / "digits_cnn.npz"
N_INPUTS = 24


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Three models of different dtypes and kernels, each in its own folder:
    {folder name: BuildResult}."""
    root = tmp_path_factory.mktemp("firmware")
    built = {
        "mlp": build(MLP, ratio=2, dtype="int8", kernel="packed", out=root / "mlp"),
        "cnn": build(CNN, dtype="int8", kernel="dense", out=root / "cnn"),
        "mlp_f32": build(MLP, ratio=2, dtype="float32", kernel="csr", prefix="digits_f32",
                                 out=root / "mlp_f32"),
    }
    assert all(r.ok for r in built.values())
    return root, built


def _runtime(folder):
    """The runtime files of a folder: darb.h and darb_* (a model prefix may not start with darb_)."""
    return {p.name: p for p in sorted(folder.iterdir()) if p.name == "darb.h" or p.name.startswith("darb_")}


def _recipe_sources(folders):
    """The documented recipe: every model .c file of each folder, and each runtime .c file once."""
    sources, runtime = [], {}
    for folder in folders:
        sources += [p for p in sorted(folder.glob("*.c")) if p.name not in _runtime(folder)]
        for name, path in _runtime(folder).items():
            if name in runtime:   # the same name in two folders: the same bytes
                assert filecmp.cmp(runtime[name], path, shallow=False), name
            else:
                runtime[name] = path
    return sources + [p for n, p in sorted(runtime.items()) if n.endswith(".c")]


MAIN_C = """\
#include <stdio.h>
#include <stdlib.h>
{includes}

static int read_all(const char *path, void *data, size_t bytes)
{{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(data, 1, bytes, f) : 0;
    if (f)
        fclose(f);
    return n == bytes ? 0 : 1;
}}

int main(int argc, char **argv)
{{
    FILE *out;
    int i;
{declarations}
    if (argc != {argc})
        return 2;
{reads}
    out = fopen(argv[{argc_out}], "wb");
    if (!out)
        return 3;
    for (i = 0; i < {n}; ++i) {{
{runs}
    }}
    fclose(out);
    return 0;
}}
"""


def _main_c(built):
    """A firmware main running every model on its inputs (one file per model) and writing the outputs in turn."""
    includes, declarations, reads, runs = [], [], [], []
    for k, (name, r) in enumerate(built.items()):
        m = r.module
        unit, p = m.model, m.prefix
        t_in, t_out = unit.in_ctype, unit.out_ctype
        P = p.upper()
        includes.append(f'#include "{p}.h"')
        declarations.append(f"    static {t_in} in_{k}[{N_INPUTS}][{P}_INPUT_SIZE];\n"
                            f"    static {t_out} out_{k}[{P}_OUTPUT_SIZE];")
        reads.append(f"    if (read_all(argv[{k + 1}], in_{k}, sizeof in_{k}))\n        return 4;")
        runs.append(f"        {p}_run(in_{k}[i], out_{k});\n"
                    f"        fwrite(out_{k}, sizeof out_{k}, 1, out);")
    return MAIN_C.format(includes="\n".join(includes), declarations="\n".join(declarations), reads="\n".join(reads),
                         runs="\n".join(runs), n=N_INPUTS, argc=len(built) + 2, argc_out=len(built) + 1)


def test_two_folders_compiled_whole_clash_but_recipe_links_once(models, tmp_path, gcc):
    root, built = models
    pair = {k: built[k] for k in ("mlp", "cnn")}
    (tmp_path / "main.c").write_text(_main_c(pair))
    incs = [f"-I{root / k}" for k in pair]
    # every .c of both folders: the runtime twice (what issue 16 hit)
    naive = [str(p) for k in pair for p in sorted((root / k).glob("*.c"))]
    r = subprocess.run([gcc, *host.STRICT_FLAGS, *incs, "main.c", *naive, "-o", "naive"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "multiple definition of `darb_output_s8'" in r.stderr
    # the recipe: each runtime file once
    sources = [str(p) for p in _recipe_sources([root / k for k in pair])]
    subprocess.run([gcc, *host.STRICT_FLAGS, *incs, "main.c", *sources, "-o", "fw"], cwd=tmp_path, check=True)


def test_three_models_in_one_firmware_each_match_their_reference(models, tmp_path, gcc):
    """int8 packed (DARB), int8 dense convolutions and float32 CSR in one program,
    built with strict flags, each bit for bit its reference."""
    root, built = models
    (tmp_path / "main.c").write_text(_main_c(built))
    incs = [f"-I{root / k}" for k in built]
    sources = [str(p) for p in _recipe_sources([root / k for k in built])]
    subprocess.run([gcc, *host.STRICT_FLAGS, *incs, "main.c", *sources, "-o", "fw"], cwd=tmp_path, check=True)
    inputs, expected = [], []
    for k, r in enumerate(built.values()):
        unit = r.module.model
        x = unit.make_inputs(N_INPUTS, seed=k)[:N_INPUTS]
        assert len(x) == N_INPUTS
        x = x.astype(np.float32 if unit.dtype == "float32" else np.int8)
        (tmp_path / f"in{k}.bin").write_bytes(x.tobytes())
        inputs.append(f"in{k}.bin")
        expected.append(np.asarray(unit.reference(x)).astype(x.dtype))
    subprocess.run(["./fw", *inputs, "out.bin"], cwd=tmp_path, check=True, timeout=60)
    raw = (tmp_path / "out.bin").read_bytes()
    row = sum(e.shape[1] * e.itemsize for e in expected)
    assert len(raw) == N_INPUTS * row
    offset = 0
    got = [[] for _ in expected]
    for _ in range(N_INPUTS):
        for j, e in enumerate(expected):
            n = e.shape[1] * e.itemsize
            got[j].append(np.frombuffer(raw[offset:offset + n], e.dtype))
            offset += n
    for name, e, g in zip(built, expected, got):
        np.testing.assert_array_equal(np.stack(g), e, err_msg=name)
    # the models really differ (a mix-up of the two int8 models would not pass unnoticed)
    assert expected[0].shape[1] == expected[1].shape[1] and not np.array_equal(expected[0], expected[1])


def test_every_global_symbol_is_the_models_or_the_runtimes(models, tmp_path, gcc):
    """Model files define only <prefix>_* symbols and the runtime only darb_* ones, so
    models of different prefixes never clash and the runtime links once."""
    root, built = models
    for k, r in built.items():
        folder = root / k
        runtime = _runtime(folder)
        for c in sorted(folder.glob("*.c")):
            obj = tmp_path / f"{k}_{c.stem}.o"
            subprocess.run([gcc, *host.STRICT_FLAGS, f"-I{folder}", "-c", str(c), "-o", str(obj)], check=True)
            nm = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True,
                                check=True).stdout.split()
            symbols = nm[2::3]
            want = "darb_" if c.name in runtime else r.module.prefix + "_"
            assert symbols and all(s.startswith(want) for s in symbols), (c.name, symbols)


def test_firmware_links_for_cortex_m4(models, tmp_path, arm_gcc):
    root, built = models
    (tmp_path / "main.c").write_text(_main_c(built))
    incs = [f"-I{root / k}" for k in built]
    sources = [str(p) for p in _recipe_sources([root / k for k in built])]
    # a whole image (newlib's nosys stubs for the file calls): every symbol defined once
    subprocess.run([arm_gcc, *host.STRICT_FLAGS, *host.CORTEX_M4_FLAGS, *incs, "main.c", *sources,
                    "--specs=nosys.specs", "-o", "fw.elf"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "fw.elf").stat().st_size > 0


SCALE_USER_C = """\
#include <stdint.h>
#include "{h}"

int8_t quantize(float x);
float dequantize(int8_t q);

int8_t quantize(float x)
{{
    float y = x / {P}_INPUT_SCALE;
    int32_t q = (int32_t)(y >= 0.0f ? y + 0.5f : y - 0.5f) + {P}_INPUT_ZERO_POINT;
    return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}}

float dequantize(int8_t q)
{{
    return {P}_OUTPUT_SCALE * (float)(q - {P}_OUTPUT_ZERO_POINT);
}}
"""


def test_scale_macros_are_float_constants(models, tmp_path, gcc, arm_gcc):
    """`float y = x / <P>_INPUT_SCALE;` compiles under -Wdouble-promotion -Wconversion,
    and pulls no double routine into a Cortex-M4F object."""
    root, built = models
    for k in ("mlp", "cnn"):
        m = built[k].module
        for header, P in [(f"{m.prefix}.h", m.prefix.upper()),
                          (m.layers[0].header, m.layers[0].symbol.upper())]:
            text = (root / k / header).read_text()
            assert f"#define {P}_INPUT_SCALE_DOUBLE " in text
            scale = text.split(f"#define {P}_INPUT_SCALE ")[1].split()[0]
            assert scale.endswith("f"), scale
            double = float(text.split(f"#define {P}_INPUT_SCALE_DOUBLE ")[1].split()[0])
            assert np.float32(scale[:-1]) == np.float32(double)
            (tmp_path / "user.c").write_text(SCALE_USER_C.format(h=header, P=P))
            flags = [*host.STRICT_FLAGS, "-Wconversion", "-Wdouble-promotion", f"-I{root / k}", "-c", "user.c"]
            subprocess.run([gcc, *flags, "-o", "user.o"], cwd=tmp_path, check=True)
            subprocess.run([arm_gcc, *flags, *host.CORTEX_M4_FLAGS, "-o", "user_m4.o"], cwd=tmp_path, check=True)
            undefined = subprocess.run(["arm-none-eabi-nm", "-u", "user_m4.o"], cwd=tmp_path, capture_output=True,
                                       text=True, check=True).stdout
            assert "__aeabi_d" not in undefined, undefined
    header = (root / "cnn" / "digits_cnn.h").read_text()
    assert "Input: int8_t[1][8][8], channel first (C, H, W)" in header
    assert "Output: int8_t[10], a vector" in header


def test_same_model_and_options_give_the_same_bytes_in_any_folder(tmp_path, capsys):
    a, b = tmp_path / "first" / "out_a", tmp_path / "elsewhere" / "c_code"
    for out in (a, b):
        out.parent.mkdir()
        _cli(["generate", MLP, "--dtype", "int8", "--size-target", "host", "--out", out, "--json"], capsys)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) > 8
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    banner = (a / "digits_mlp.h").read_text()
    assert "Command: darbgen generate digits_mlp.npz --dtype int8 --size-target host\n" in banner
    assert "out_a" not in banner and str(ROOT) not in banner
    # build (prune, quantize, generate, verify): the same, --force or not
    c, d = tmp_path / "first" / "build", tmp_path / "elsewhere" / "build_again"
    _cli(["build", MLP, "--ratio", "2", "--out", c, "--json"], capsys)
    _cli(["build", MLP, "--ratio", "2", "--out", d, "--json", "--force"], capsys)
    names = sorted(p.name for p in c.iterdir())
    assert names == sorted(p.name for p in d.iterdir())
    for name in names:
        assert (c / name).read_bytes() == (d / name).read_bytes(), name
    assert "Command: darbgen build digits_mlp.npz --ratio 2\n" in (c / "digits_mlp.c").read_text()


def test_prune_twice_gives_identical_files(tmp_path, capsys):
    outs = [tmp_path / "one" / "p.npz", tmp_path / "two" / "q.npz"]
    for out in outs:
        out.parent.mkdir()
        _cli(["prune", MLP, "--ratio", "2", "-o", out], capsys)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    stored = load_npz(outs[0])
    result = json.loads(str(stored["__darbgen__"]))
    assert result["input"] == "digits_mlp.npz" and "prune_seconds" not in result and "output" not in result


@pytest.mark.parametrize("argv, want", [
    (["build", "/home/me/m.tflite", "--out", "/tmp/x", "--force", "--ratio", "2"], "darbgen build m.tflite --ratio 2"),
    (["build", "m.npz", "--out=/tmp/x", "--json", "--calib", "data/c.npy"], "darbgen build m.npz --calib c.npy"),
    (["generate", "a/b.npz", "-o", "x", "--ou", "y", "--fo", "--prefix", "kws"], "darbgen generate b.npz --prefix kws"),
    (["build", "models/my model.npz", "--eval", "d/x.npy", "d/y.npy"],
     "darbgen build 'my model.npz' --eval x.npy y.npy"),
])
def test_banner_command_names_no_paths_and_no_output_options(argv, want):
    assert banner_command(argv) == want
