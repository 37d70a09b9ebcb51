"""darbgen against emlearn on the bundled digits MLP, on a Cortex-M4 in QEMU.

emlearn (https://emlearn.org) turns a scikit-learn MLP into plain float32 C
that runs every weight: no pruning, no quantization. This script measures it
and darbgen on the same network (``examples/digits_mlp.npz``: 64 -> 256 relu
-> 128 relu -> 10 softmax, 50,432 weights) and prints model flash,
instructions per inference on a Cortex-M4 and accuracy on the bundled test
set (450 digits), and how darbgen's int8 C compares with emlearn against two
goals: at the highest pruning ratio that keeps the int8 C's accuracy within
0.5 percentage points of the original float model, at most 1/4 of emlearn's
model flash and at most 1/5 of its instructions.

Run it from the repository root (about 2 minutes on two cores)::

    .venv/bin/python examples/compare_emlearn.py            # a table
    .venv/bin/python examples/compare_emlearn.py --json     # one JSON object on stdout

It needs ``emlearn`` and ``scikit-learn`` (``pip install emlearn==0.23.2
scikit-learn``), gcc, arm-none-eabi-gcc with newlib and qemu-system-arm.

emlearn's side
--------------
1. A scikit-learn ``MLPClassifier`` with exactly the file's weights (float64
   copies of the float32 arrays, so nothing is rounded) is built by hand and
   checked: its ``predict_proba`` equals darbgen's ``Model.forward`` on the
   test set to 1e-6, and it picks the same classes.
2. ``emlearn.convert(clf, method="loadable")`` makes the C. ``loadable`` is
   emlearn's default for networks (generic ``eml_net_*`` functions walking a
   table of layers); ``inline`` fails in emlearn 0.23.2 (its code generator
   raises a ValueError; the script reports what it says). emlearn writes every
   weight with six decimals (``"{:.6f}f"``), so its weights are not exactly
   the model's: the script counts how many change.
3. On the host (gcc -O2 -ffp-contract=off) the C classifies the whole test
   set: its accuracy, its classes against scikit-learn's, and the largest
   difference of its probabilities.
4. For the Cortex-M4, emlearn's C is compiled on its own with darbgen's flags
   (-std=c99 -O2 -ffp-contract=off, the core's flags) without -Werror
   (emlearn's headers warn about unused statics and a comparison that is always
   true), with -ffunction-sections -fdata-sections, and linked with darbgen's
   start-up code (:func:`darbgen.toolchain.cortex_m.link_image`) and newlib's
   libm (``expf`` / ``logf`` of the softmax). ``bench_emlearn_run()`` (never
   inlined) calls emlearn's ``<prefix>_predict`` once on a real test digit
   embedded as a ``const float`` array; QEMU logs every instruction, and the
   count runs from the entry of ``<prefix>_predict`` to the first
   instruction back in ``bench_emlearn_run``
   (:func:`darbgen.toolchain.cortex_m.count_calls`), callees included. The
   image writes the input, the class and (from a second, uncounted call of
   ``<prefix>_regress``) the probabilities back over semihosting; the class
   must be scikit-learn's.

emlearn's model flash, as counted here: the model's constant data kept in the
linked image (the weight and bias arrays, the layer table, the ``EmlNet``
struct's flash image) plus the machine code of the emlearn functions that run
during the counted call (``<prefix>_predict``, ``eml_net_predict``,
``eml_net_infer``, ...; sizes from ``arm-none-eabi-nm -S`` of the image).
The C library code and tables the call pulls in besides (newlib's ``expf``,
``logf``, ...) are not in that figure; the script reports them separately, as
the growth of the image over the same image with the call left out.

darbgen's side
--------------
:func:`darbgen.build.build` at dtype int8 for ``cortex-m4``: its report's
``flash_bytes`` (code and constant data of every layer, the model function
and the runtime kernels, compiled with -O2 for the core), ``instructions``
(one whole-model call in QEMU, on a calibration input) and the test accuracy
of the C run in QEMU. The pruning sweep (DARB, one-shot: no retraining; the
fine-tuning with the mask fixed comes in a later issue) runs on the host with
kernel ``packed``: the int8 C is verified bit for bit against the same
reference whatever the kernel and the machine, so its accuracy is the
kernel's and the core's too (the script checks this on the Cortex-M4 builds).
It sweeps the ratios with every layer pruned (``scope="layer"``), with fc1
left dense (``layers=["fc2", "fc3"]``) and with ``scope="global"``, and picks
the highest model-wide ratio (all weights / kept weights) whose int8 C
accuracy is within 0.5 points of the original float model's.
"""
import argparse
import bisect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "digits_mlp.npz"
#: What the figures in this script were measured with (pip requirement).
EMLEARN_REQUIREMENT = "emlearn==0.23.2"
CORE = "cortex-m4"
PREFIX = "eml_digits"
RATIOS = (1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
#: (label, build options) of the pruning variants swept
VARIANTS = (("all layers", {}), ("fc1 dense", {"layers": ["fc2", "fc3"]}), ("global", {"scope": "global"}))
TOLERANCE = 0.005           # 0.5 percentage points of accuracy
FLASH_GOAL = 1 / 4          # darbgen's model flash at most 1/4 of emlearn's
INSTRUCTIONS_GOAL = 1 / 5   # and at most 1/5 of its instructions
ONE_SHOT_NOTE = ("darbgen prunes one-shot (no retraining) so far; fine-tuning with the mask fixed comes in a later "
                 "issue and should move the accuracy limit to higher ratios.")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- scikit-learn


def sklearn_twin(model):
    """A fitted ``MLPClassifier`` with exactly ``model``'s weights: Dense
    layers with ReLU between them and softmax at the end (darbgen's (out, in)
    weights become scikit-learn's (in, out), as float64 copies)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import LabelBinarizer

    from darbgen.graph import Activation, Dense

    dense, acts = [], []
    for layer in model.layers:
        if isinstance(layer, Dense):
            dense.append(layer)
            acts.append(layer.activation)
        elif isinstance(layer, Activation) and dense and acts[-1] == "none":
            acts[-1] = layer.kind
        else:
            acts = None
            break
    if acts is None or len(dense) < 2 or acts != ["relu"] * (len(dense) - 1) + ["softmax"]:
        raise SystemExit(f"{model.name}: compare_emlearn.py takes dense layers with ReLU between them and a "
                         f"softmax at the end")
    clf = MLPClassifier(hidden_layer_sizes=tuple(int(d.weight.shape[0]) for d in dense[:-1]), activation="relu")
    clf.coefs_ = [np.array(d.weight, np.float64).T.copy() for d in dense]
    clf.intercepts_ = [np.zeros(d.weight.shape[0]) if d.bias is None else np.array(d.bias, np.float64)
                       for d in dense]
    n_out = int(clf.coefs_[-1].shape[1])
    classes = np.asarray(model.classes) if getattr(model, "classes", None) is not None else np.arange(n_out)
    clf.classes_ = classes
    clf.n_layers_ = len(dense) + 1
    clf.n_outputs_ = n_out
    clf.n_features_in_ = int(clf.coefs_[0].shape[0])
    clf.out_activation_ = "softmax"
    binarizer = LabelBinarizer()
    binarizer.fit(classes)
    clf._label_binarizer = binarizer
    return clf


def check_twin(clf, model, x, tol=1e-6):
    """Largest |predict_proba - Model.forward| on ``x``; raises when over ``tol``
    or when a class differs."""
    proba = clf.predict_proba(x)
    forward = model.forward(np.asarray(x, np.float64))
    diff = float(np.max(np.abs(proba - forward)))
    if diff > tol:
        raise RuntimeError(f"the scikit-learn twin differs from darbgen's forward by {diff:.3g} (> {tol:g})")
    if not np.array_equal(proba.argmax(axis=1), forward.argmax(axis=1)):
        raise RuntimeError("the scikit-learn twin picks other classes than darbgen's forward")
    return diff


# ------------------------------------------------------------------- emlearn


@contextmanager
def _cwd(folder):
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def import_emlearn():
    """emlearn, imported without its side effect on NumPy: importing it calls
    ``np.seterr(all="raise")`` for the whole process (emlearn 0.23.2), after
    which any float underflow, anywhere, raises. The error state is restored."""
    state = np.geterr()
    try:
        import emlearn
    finally:
        np.seterr(**state)
    return emlearn


def emlearn_include_dir():
    emlearn = import_emlearn()

    return getattr(emlearn, "includedir", None) or os.path.dirname(emlearn.__file__)


def emlearn_version():
    try:
        from importlib.metadata import version

        return version("emlearn")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


def emlearn_convert(clf, folder, name=PREFIX):
    """emlearn's C for ``clf`` (method ``loadable``) and its Python wrapper.
    ``emlearn.convert`` compiles the C on the host into ``./tmp``: it runs in
    ``folder`` so nothing lands in the caller's folder."""
    emlearn = import_emlearn()

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _cwd(folder), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # emlearn imports distutils
        wrapper = emlearn.convert(clf, method="loadable")
        code = wrapper.save(name=name, inference=["loadable"])
    return code, wrapper


def emlearn_inline_status(clf):
    """None when emlearn's ``inline`` method generates C for ``clf``, else its error."""
    import_emlearn()
    from emlearn import net

    activations = [clf.activation] * (len(clf.coefs_) - 1) + [clf.out_activation_]
    try:
        net.c_generate_net_inline(activations, clf.coefs_, clf.intercepts_, prefix="probe")
    except Exception as exc:  # emlearn's bug, whatever it raises
        return f"{type(exc).__name__}: {exc}"
    return None


def six_decimal_changes(clf):
    """(changed, zeroed, total, largest change): weights and biases whose
    float32 value emlearn's ``"{:.6f}f"`` literals change, those it turns
    into 0, how many there are, and the largest absolute change."""
    changed = zeroed = total = 0
    largest = 0.0
    for w in list(clf.coefs_) + list(clf.intercepts_):
        flat = np.asarray(w, np.float64).ravel()
        written = np.array([float(f"{v:.6f}") for v in flat], np.float32)
        exact = flat.astype(np.float32)
        changed += int(np.count_nonzero(written != exact))
        zeroed += int(np.count_nonzero((written == 0) & (exact != 0)))
        total += flat.size
        largest = max(largest, float(np.max(np.abs(written.astype(np.float64) - exact))))
    return changed, zeroed, total, largest


def _relaxed_flags():
    """darbgen's strict flags without -Werror (emlearn's headers are third-party code)."""
    from darbgen.toolchain import host

    return tuple(f for f in host.STRICT_FLAGS if f != "-Werror")


HOST_MAIN = """/* compare_emlearn.py: emlearn's C over a file of float32 inputs */
#include <stdint.h>
#include <stdio.h>

#define N_FEATURES {n_in}
#define N_CLASSES {n_out}

int32_t {prefix}_predict(const float *features, int32_t n_features);
int32_t {prefix}_regress(const float *features, int32_t n_features, float *out, int32_t out_length);

int main(int argc, char **argv)
{{
    float x[N_FEATURES];
    float p[N_CLASSES];
    FILE *in, *out;
    if (argc != 3) {{
        return 2;
    }}
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (!in || !out) {{
        return 2;
    }}
    while (fread(x, sizeof(float), N_FEATURES, in) == N_FEATURES) {{
        int32_t c = {prefix}_predict(x, N_FEATURES);
        if ({prefix}_regress(x, N_FEATURES, p, N_CLASSES) != 0) {{
            return 3;
        }}
        if (fwrite(&c, sizeof c, 1, out) != 1 || fwrite(p, sizeof(float), N_CLASSES, out) != N_CLASSES) {{
            return 4;
        }}
    }}
    return (fclose(in) == 0 && fclose(out) == 0) ? 0 : 5;
}}
"""


def host_emlearn(code, folder, x, n_classes, cc="gcc"):
    """Run emlearn's C on the host over every row of ``x``; returns (classes, probabilities)."""
    from darbgen.toolchain import host

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.ascontiguousarray(x, np.float32)
    (folder / f"{PREFIX}.c").write_text(code)
    (folder / "host_main.c").write_text(HOST_MAIN.format(n_in=x.shape[1], n_out=n_classes, prefix=PREFIX))
    host.run_compiler([host.host_compiler(cc), *_relaxed_flags(), "-I", emlearn_include_dir(),
                       "host_main.c", f"{PREFIX}.c", "-o", "emlearn_host", "-lm"], cwd=folder)
    (folder / "inputs.f32").write_bytes(x.tobytes())
    subprocess.run(["./emlearn_host", "inputs.f32", "outputs.bin"], cwd=folder, check=True, timeout=300)
    raw = (folder / "outputs.bin").read_bytes()
    rec = np.dtype([("c", "<i4"), ("p", "<f4", (n_classes,))])
    out = np.frombuffer(raw, dtype=rec)
    if len(out) != len(x):
        raise RuntimeError(f"emlearn's host run gave {len(out)} outputs for {len(x)} inputs")
    return out["c"].astype(np.int64), out["p"].astype(np.float64)


BENCH_MAIN = """/* compare_emlearn.py: one inference of emlearn's C on {core}, counted in QEMU.
 * BENCH_MODE 0: the call left out (the image's baseline); 1: the counted
 * call; 2: the counted call, then the probabilities from an uncounted call. */
#include <stdint.h>

#include "darb_semihost.h"

#ifndef BENCH_MODE
#define BENCH_MODE 2
#endif
#define N_FEATURES {n_in}
#define N_CLASSES {n_out}

int32_t {prefix}_predict(const float *features, int32_t n_features);
int32_t {prefix}_regress(const float *features, int32_t n_features, float *out, int32_t out_length);
void bench_emlearn_run(void);

/* test digit {index} (label {label}) */
static const float bench_input[N_FEATURES] = {{
{values}
}};
static volatile int32_t bench_class = -1;
static float bench_proba[N_CLASSES];

/* the one counted call; the store after it keeps it from being a tail call */
__attribute__((noinline)) void bench_emlearn_run(void)
{{
#if BENCH_MODE > 0
    bench_class = {prefix}_predict(bench_input, N_FEATURES);
#else
    bench_class = -2;
#endif
}}

int main(void)
{{
    int32_t out, c;
    bench_emlearn_run();
#if BENCH_MODE > 1
    if ({prefix}_regress(bench_input, N_FEATURES, bench_proba, N_CLASSES) != 0) {{
        return 5;
    }}
#endif
    c = bench_class;
    out = darb_sh_open("outputs.bin", DARB_SH_OPEN_WB);
    if (out < 0) {{
        return 1;
    }}
    if (!darb_sh_write(out, bench_input, sizeof bench_input) || !darb_sh_write(out, &c, sizeof c)
        || !darb_sh_write(out, bench_proba, sizeof bench_proba)) {{
        (void)darb_sh_close(out);
        return 2;
    }}
    return darb_sh_close(out) ? 0 : 4;
}}
"""


def _c_floats(values, per_line=8):
    items = [f"{float(v):.8e}f" for v in np.asarray(values, np.float32).ravel()]
    return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def _flash_of(elf):
    from darbgen.toolchain import cortex_m

    sections = cortex_m.elf_sections(elf)
    return sum(v for k, v in sections.items()
               if k in (".text", ".rodata", ".data", ".ARM.exidx") or k.startswith((".text.", ".rodata.")))


def _object_symbols(obj):
    """{name: (type letter, size)} of the symbols an object file defines."""
    nm = shutil.which("arm-none-eabi-nm")
    proc = subprocess.run([nm, "-S", "--defined-only", str(obj)], capture_output=True, text=True, check=True)
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = (parts[2], int(parts[1], 16))
    return out


def _functions_run(trace, entry, caller, syms):
    """Names of the functions whose code runs between ``entry`` and the return to ``caller``."""
    from darbgen.toolchain import cortex_m

    table = sorted((a, a + n, name) for name, (a, n) in syms.items() if n > 0)
    starts = [t[0] for t in table]
    names, inside = set(), False
    with open(trace, "rb") as f:
        for line in f:
            m = cortex_m._TRACE.match(line)
            if m is None:
                continue
            pc = int(m.group(1), 16)
            if inside and caller[0] <= pc < caller[1]:
                break
            if not inside and pc == entry:
                inside = True
            if inside:
                i = bisect.bisect_right(starts, pc) - 1
                if i >= 0 and table[i][0] <= pc < table[i][1]:
                    names.add(table[i][2])
    return names


def target_emlearn(code, folder, x, index, label, n_classes, core_name=CORE):
    """emlearn's C on ``core_name`` in QEMU: instructions of one predict call
    on ``x``, its class and probabilities, and the flash it needs."""
    from darbgen.toolchain import cortex_m, host

    core = cortex_m.core(core_name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PREFIX}.c").write_text(code)
    obj = f"{PREFIX}.o"
    host.run_compiler([cortex_m.compiler(), *_relaxed_flags(), *core.flags, "-ffunction-sections", "-fdata-sections",
                       "-I", emlearn_include_dir(), "-c", f"{PREFIX}.c", "-o", obj], cwd=folder)
    (folder / "bench_emlearn.c").write_text(BENCH_MAIN.format(
        core=core.name, n_in=len(x), n_out=n_classes, prefix=PREFIX, index=index, label=label,
        values=_c_floats(x)))
    elfs = {}
    for mode in (0, 1, 2):
        elfs[mode] = cortex_m.link_image(folder, ["bench_emlearn.c", obj, "-lm"], core,
                                         output=f"bench_emlearn_{mode}.elf", extra_flags=(f"-DBENCH_MODE={mode}",))
    trace = folder / "trace.log"
    cortex_m.run_image(elfs[2], core, folder, trace=trace)
    syms = cortex_m.symbols(elfs[2])
    entry = syms[f"{PREFIX}_predict"][0]
    start, size = syms["bench_emlearn_run"]
    (instructions,) = cortex_m.count_calls(trace, [entry], [(start, start + size)])
    ran = _functions_run(trace, entry, (start, start + size), syms)
    trace.unlink()
    raw = (folder / "outputs.bin").read_bytes()
    n_in = len(x)
    echo = np.frombuffer(raw, np.float32, count=n_in)
    if not np.array_equal(echo, np.asarray(x, np.float32)):
        raise RuntimeError("the Cortex-M image did not get the input it was built with")
    cls = int(np.frombuffer(raw, np.int32, count=1, offset=4 * n_in)[0])
    proba = np.frombuffer(raw, np.float32, count=n_classes, offset=4 * n_in + 4).astype(np.float64)

    # flash: the model's constant data kept in the predict-only image + the emlearn code that ran
    own = _object_symbols(folder / obj)
    kept = cortex_m.symbols(elfs[1])
    data = {n: kept[n][1] for n, (t, _) in own.items() if t in "rRdD" and n in kept}
    code_run = {n: kept[n][1] for n in sorted(ran) if n in own and own[n][0] in "tT"}
    libc_run = sorted(n for n in ran if n not in own)
    growth = _flash_of(elfs[1]) - _flash_of(elfs[0])
    model_flash = sum(data.values()) + sum(code_run.values())
    obj_sizes = host.section_sizes(folder / obj, "arm-none-eabi-size")
    return {
        "core": core.name, "input_index": int(index), "class": cls, "probabilities": proba.tolist(),
        "instructions": int(instructions),
        "flash_bytes": int(model_flash),
        "weight_bytes": int(sum(data.values())), "code_bytes": int(sum(code_run.values())),
        "data_symbols": data, "functions": code_run, "library_functions_run": libc_run,
        "library_bytes": int(growth - model_flash),
        "image_growth_bytes": int(growth),
        "object_bytes": int(host.code_bytes(obj_sizes) + host.data_bytes(obj_sizes)
                            + host.sections_bytes(obj_sizes, ".data")),
        "ram_bytes": int(host.sections_bytes(obj_sizes, ".bss") + host.sections_bytes(obj_sizes, ".data")),
    }


def run_emlearn(src, folder, index=0, core_name=CORE):
    """Everything on emlearn's side (see the module docstring)."""
    model = src.model
    x, y = np.asarray(src.eval_x), np.asarray(src.eval_y)
    clf = sklearn_twin(model)
    twin_diff = check_twin(clf, model, x)
    sk_classes = clf.predict(x)
    sk_proba = clf.predict_proba(x)
    n_classes = len(clf.classes_)
    log("emlearn: converting (emlearn.convert compiles its own host build)")
    code, wrapper = emlearn_convert(clf, Path(folder) / "convert")
    inline_error = emlearn_inline_status(clf)
    changed, zeroed, total, largest = six_decimal_changes(clf)
    with _cwd(Path(folder) / "convert"):   # the wrapper's host build lives in ./tmp there
        wrapper_classes = np.asarray(wrapper.predict(x))
    log("emlearn: the whole test set on the host")
    h_classes, h_proba = host_emlearn(code, Path(folder) / "host", x, n_classes)
    h_labels = np.asarray(clf.classes_)[h_classes]
    log(f"emlearn: one inference on {core_name} in QEMU, every instruction logged")
    target = target_emlearn(code, Path(folder) / core_name, x[index], index, y[index], n_classes, core_name)
    if target["class"] != int(np.flatnonzero(clf.classes_ == sk_classes[index])[0]):
        raise RuntimeError(f"emlearn's C on {core_name} picks class {target['class']} for test digit {index}; "
                           f"scikit-learn picks {sk_classes[index]}")
    return {
        "emlearn": emlearn_version(), "method": "loadable", "inline_error": inline_error,
        "dtype": "float32", "c_bytes": len(code),
        "twin_max_abs_diff": twin_diff,
        "weights_changed_by_six_decimals": changed, "weights_zeroed_by_six_decimals": zeroed,
        "weights_and_biases": total, "largest_six_decimal_change": largest,
        "accuracy": {"sklearn": float(np.mean(sk_classes == y)), "c_host": float(np.mean(h_labels == y)),
                     "original": float(np.mean(model.forward(x.astype(np.float64)).argmax(1) == y))},
        "c_agrees_with_sklearn": float(np.mean(h_labels == sk_classes)),
        "wrapper_agrees_with_sklearn": float(np.mean(wrapper_classes == sk_classes)),
        "max_abs_proba_diff": float(np.max(np.abs(h_proba - sk_proba))),
        "target_proba_vs_host": float(np.max(np.abs(np.asarray(target["probabilities"]) - h_proba[index]))),
        "target": target,
    }


# ------------------------------------------------------------------- darbgen


def _row(report, label, options):
    acc = report["accuracy"]
    row = {"label": label, "kernel": report["kernel"], "dtype": report["dtype"],
           "ratio": float(report["ratio"]), "kept": int(report["kept"]), "weights": int(report["weights"]),
           "flash_bytes": int(report["flash_bytes"]), "accuracy": float(acc["c"]),
           "accuracy_pruned_float": float(acc["pruned"]), "accuracy_original": float(acc["original"]),
           "verified": bool(report["verified"]), "target": report["target"], "options": options}
    if "instructions" in report:
        row["instructions"] = int(report["instructions"])
        row["layers"] = {layer["name"]: {"kernel": layer["kernel"], "instructions": layer.get("instructions"),
                                         "flash_bytes": layer["flash_bytes"], "ratio": layer.get("ratio")}
                         for layer in report["layers"]}
    return row


def sweep(path, ratios=RATIOS, variants=VARIANTS):
    """Host builds (int8, packed) over ``ratios`` x ``variants``: accuracy and flash of each."""
    from darbgen.build import build

    rows = []
    for label, options in variants:
        for r in ratios:
            result = build(path, ratio=r, dtype="int8", kernel="packed", **options)
            if not result.ok:
                raise RuntimeError(f"darbgen's C does not match its reference at ratio {r} ({label})")
            row = _row(result.report, label, dict(options, ratio=r))
            rows.append(row)
            log(f"  sweep {label:>10} r={r:<5g} model {row['ratio']:.3f}x  int8 C {100 * row['accuracy']:.2f}%")
    return rows


def choose(rows, original, tolerance=TOLERANCE):
    """The row of the highest model-wide ratio whose int8 C accuracy is within
    ``tolerance`` of ``original`` (ties: the smaller flash), or None."""
    ok = [r for r in rows if r["accuracy"] >= original - tolerance - 1e-12]
    if not ok:
        return None
    return max(ok, key=lambda r: (round(r["ratio"], 6), -r["flash_bytes"]))


def target_build(path, label, kernel, ratio=None, core_name=CORE, **options):
    from darbgen.build import build

    t = time.perf_counter()
    result = build(path, ratio=ratio, dtype="int8", kernel=kernel, target=core_name, **options)
    if not result.ok:
        raise RuntimeError(f"darbgen's C on {core_name} does not match its reference ({label}, {kernel})")
    row = _row(result.report, label, dict(options, ratio=ratio))
    log(f"  {core_name} {label} {kernel}: {row['flash_bytes']} B, {row['instructions']} instructions, "
        f"{100 * row['accuracy']:.2f}% ({time.perf_counter() - t:.0f} s)")
    return row


# --------------------------------------------------------------------- report


def _goal(value, reference, goal):
    share = value / reference
    return {"share": share, "goal": goal, "met": share <= goal,
            "limit": reference * goal, "over_by": max(0.0, value / (reference * goal) - 1.0)}


def _tree_state():
    """The git commit and locally modified files of the darbgen checkout, when there is one."""
    root = HERE.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=30).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "modified": [s[3:] for s in status if s.strip()]}


def compare(path=DEFAULT_MODEL, folder=None, ratios=RATIOS, index=0, core_name=CORE):
    """Run the whole comparison; returns the result as plain data."""
    import darbgen
    from darbgen.build import load

    start = time.perf_counter()
    src = load(path)
    if src.eval_x is None:
        raise SystemExit(f"{path}: bundles no test set (test.x / test.y)")
    with tempfile.TemporaryDirectory(prefix="darbgen-emlearn-") as tmp:
        work = Path(folder) if folder else Path(tmp)
        eml = run_emlearn(src, work / "emlearn", index, core_name)
    et = eml["target"]
    log(f"emlearn: {et['flash_bytes']} B model flash, {et['instructions']} instructions "
        f"({time.perf_counter() - start:.0f} s)")

    log("darbgen: one-shot DARB sweep, int8 C on the host (kernel packed)")
    rows = sweep(path, ratios)
    original = rows[0]["accuracy_original"]
    best = choose(rows, original)
    log(f"darbgen: builds for {core_name} in QEMU")
    builds = {"dense": target_build(path, "unpruned", "dense", None, core_name)}
    if best is not None:
        opts = {k: v for k, v in best["options"].items() if k != "ratio"}
        for kernel in ("packed", "unrolled"):
            builds[f"best_{kernel}"] = target_build(path, f"best: {best['label']} r={best['options']['ratio']:g}",
                                                    kernel, best["options"]["ratio"], core_name, **opts)
    for kernel in ("packed", "unrolled"):
        builds[f"2x_{kernel}"] = target_build(path, "all layers r=2", kernel, 2.0, core_name)
    notes = []
    for key in ("best_packed", "best_unrolled"):
        if key in builds and abs(builds[key]["accuracy"] - best["accuracy"]) > 1e-12:
            notes.append(f"{key}: accuracy on {core_name} {builds[key]['accuracy']:.4f} differs from the host "
                         f"sweep's {best['accuracy']:.4f}")

    ref_flash, ref_instr = et["flash_bytes"], et["instructions"]
    for b in builds.values():
        b["flash_vs_emlearn"] = b["flash_bytes"] / ref_flash
        b["instructions_vs_emlearn"] = b["instructions"] / ref_instr
        b["accuracy_drop_points"] = 100 * (original - b["accuracy"])
    goals = {}
    for key in ("best_packed", "best_unrolled"):
        if key in builds:
            b = builds[key]
            goals[key] = {"flash": _goal(b["flash_bytes"], ref_flash, FLASH_GOAL),
                          "instructions": _goal(b["instructions"], ref_instr, INSTRUCTIONS_GOAL)}
            goals[key]["both_met"] = goals[key]["flash"]["met"] and goals[key]["instructions"]["met"]
    return {
        "model": os.fspath(path), "core": core_name, "test_vectors": int(len(src.eval_y)),
        "darbgen": getattr(darbgen, "__version__", "unknown"), "tree": _tree_state(),
        "emlearn": eml, "original_accuracy": original, "tolerance_points": 100 * TOLERANCE,
        "sweep": rows, "chosen": best, "builds": builds, "goals": goals,
        "goal_definition": {"flash_share_max": FLASH_GOAL, "instructions_share_max": INSTRUCTIONS_GOAL},
        "notes": notes + [ONE_SHOT_NOTE], "seconds": time.perf_counter() - start,
    }


def _pct(x):
    return f"{100 * x:.2f}%"


def format_text(res):
    eml, et = res["emlearn"], res["emlearn"]["target"]
    orig = res["original_accuracy"]
    lines = [f"{os.path.basename(res['model'])} on {res['core']} (QEMU), {res['test_vectors']} test digits; "
             f"original float model {_pct(orig)}", ""]
    head = ["build", "ratio", "model flash B", "vs emlearn", "instructions", "vs emlearn", "accuracy", "drop pts"]
    table = [[f"emlearn {eml['emlearn']} float32 ({eml['method']})", "1.00", f"{et['flash_bytes']:,}", "1",
              f"{et['instructions']:,}", "1", _pct(eml["accuracy"]["c_host"]),
              f"{100 * (orig - eml['accuracy']['c_host']):.2f}"]]
    names = {"dense": "darbgen int8 dense, unpruned", "best_packed": "darbgen int8 packed, best within 0.5 pts",
             "best_unrolled": "darbgen int8 unrolled, best within 0.5 pts",
             "2x_packed": "darbgen int8 packed, 2x", "2x_unrolled": "darbgen int8 unrolled, 2x"}
    for key, name in names.items():
        if key not in res["builds"]:
            continue
        b = res["builds"][key]
        table.append([name, f"{b['ratio']:.2f}", f"{b['flash_bytes']:,}", f"{b['flash_vs_emlearn']:.3f}",
                      f"{b['instructions']:,}", f"{b['instructions_vs_emlearn']:.3f}", _pct(b["accuracy"]),
                      f"{b['accuracy_drop_points']:.2f}"])
    widths = [max(len(str(r[i])) for r in [head] + table) for i in range(len(head))]

    def fmt(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in table] + [""]

    lines.append(f"instructions per layer on {res['core']} (kernel, ratio):")
    for key in names:
        if key in res["builds"]:
            cells = [f"{n} {v['instructions']:,} ({v['kernel']}" + (f", {v['ratio']:.2f}x)" if v["ratio"] else ")")
                     for n, v in res["builds"][key]["layers"].items()]
            lines.append(f"  {key:>13}: " + ", ".join(cells))
    lines.append("")
    lines.append(f"one-shot DARB sweep, int8 C accuracy on the host (model-wide ratio in brackets); limit "
                 f"{_pct(orig - res['tolerance_points'] / 100)}:")
    for label, _ in VARIANTS:
        cells = [f"r={r['options']['ratio']:g} ({r['ratio']:.2f}x) {_pct(r['accuracy'])}"
                 for r in res["sweep"] if r["label"] == label]
        if cells:
            lines.append(f"  {label:>10}: " + ", ".join(cells))
    best = res["chosen"]
    if best is None:
        lines.append(f"no swept ratio keeps darbgen's int8 C within {res['tolerance_points']:.1f} points of the "
                     f"original: goals not applicable")
    else:
        lines.append(f"highest ratio within {res['tolerance_points']:.1f} points: {best['label']} at r="
                     f"{best['options']['ratio']:g} ({best['kept']:,} of {best['weights']:,} weights kept, "
                     f"{best['ratio']:.3f}x model-wide), int8 C {_pct(best['accuracy'])}")
    for key, g in res["goals"].items():
        kernel = key.split("_", 1)[1]
        parts = []
        for what, label in (("flash", "flash"), ("instructions", "instructions")):
            x = g[what]
            verdict = "met" if x["met"] else f"MISSED: {1 + x['over_by']:.2f}x the limit of {x['limit']:,.0f}"
            parts.append(f"{label} {x['share']:.3f} of emlearn (goal <= {x['goal']:.2f}): {verdict}")
        lines.append(f"goals, {kernel}: " + "; ".join(parts))
    if res["goals"] and not any(g["both_met"] for g in res["goals"].values()):
        lines.append("no single darbgen build meets both goals")
    lines.append("")
    lines.append(f"emlearn model flash = its weight and bias arrays, layer table and EmlNet struct "
                 f"({et['weight_bytes']:,} B) + the code of its functions that run in the call "
                 f"({et['code_bytes']:,} B: {', '.join(et['functions'])}); not counted: the C library code and "
                 f"tables the call pulls into the image ({et['library_bytes']:,} B: "
                 f"{', '.join(et['library_functions_run']) or 'none'}). Its whole object file: "
                 f"{et['object_bytes']:,} B.")
    lines.append(f"emlearn accuracy: its C on the host {_pct(eml['accuracy']['c_host'])}, scikit-learn "
                 f"{_pct(eml['accuracy']['sklearn'])} (same class on {_pct(eml['c_agrees_with_sklearn'])} of the "
                 f"digits; probabilities within {eml['max_abs_proba_diff']:.2g}). On {res['core']}: test digit "
                 f"{et['input_index']} -> class {et['class']}, scikit-learn's.")
    lines.append(f"emlearn writes each weight with 6 decimals: {eml['weights_changed_by_six_decimals']:,} of "
                 f"{eml['weights_and_biases']:,} float32 values change, {eml['weights_zeroed_by_six_decimals']:,} "
                 f"become 0 (by at most {eml['largest_six_decimal_change']:.2g}). Its 'inline' method: "
                 f"{'fails, ' + eml['inline_error'] if eml['inline_error'] else 'works'}.")
    lines.append("darbgen instructions: one whole-model call on a calibration input; emlearn: one "
                 "<prefix>_predict call on the test digit. darbgen's accuracy: its C run in QEMU; emlearn's: "
                 "its C on the host.")
    lines += [f"note: {n}" for n in res["notes"]]
    tree = res.get("tree")
    if tree:
        mods = ", ".join(tree["modified"]) or "none"
        lines.append(f"darbgen checkout {tree['commit'][:12]}, locally modified: {mods}")
    lines.append(f"total time {res['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.fspath(DEFAULT_MODEL), help="a darbgen .npz of a dense MLP with a test set")
    p.add_argument("--ratios", type=lambda s: tuple(float(v) for v in s.split(",")), default=RATIOS,
                   help="pruning ratios to sweep, comma separated (default %(default)s)")
    p.add_argument("--input-index", type=int, default=0, help="the test digit emlearn's C runs on in QEMU")
    p.add_argument("--keep", metavar="DIR", help="build emlearn's C in DIR and keep it")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    try:
        import_emlearn()
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"compare_emlearn.py needs {exc.name}: pip install '{EMLEARN_REQUIREMENT}' scikit-learn")
    res = compare(args.model, args.keep, args.ratios, args.input_index)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(format_text(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
