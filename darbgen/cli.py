"""The ``darbgen`` command.

    darbgen demo                                   build the bundled digits network and report
    darbgen build MODEL --ratio 16 --out DIR       a trained model in, verified C out
    darbgen prune IN.npz --ratio 16 -o OUT.npz     prune every weight matrix in a file
    darbgen generate OUT.npz --dtype int8 --out DIR --verify
                                                   write C for the pruned layers, and prove it
    darbgen bench prune --json                     time DARB against NumPy and a copy

Run ``darbgen COMMAND --help`` for the options of each command. Errors in the
input (a missing or broken file, NaN weights, an impossible ratio...) are
printed on one line naming the array at fault, with exit status 2.
"""
import argparse
import json
import os
import sys
import time

from . import __version__
from .errors import DarbgenError
from .files import check_out_dir
from .toolchain.cortex_m import TARGETS

EXAMPLES = """examples:
  darbgen demo
  darbgen build examples/digits_mlp.npz --ratio 2 --dtype int8 --out /tmp/digits_c
  darbgen prune examples/digits_mlp.npz --ratio 8 -o /tmp/pruned.npz
  darbgen prune model.npz --ratio 16 --scope global -o pruned.npz --json
  darbgen prune model.npz --method nm --n 2 --m 8 -o nm.npz
  darbgen generate /tmp/pruned.npz --dtype int8 --kernel packed --out /tmp/digits_c --verify
  darbgen bench prune --rows 4096 --cols 4096 --ratio 16 --json
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="darbgen",
        description="Prune neural-network weights with DARB (density-adaptive regular blocks) "
                    "and generate verified C for microcontrollers.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"darbgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pr = sub.add_parser(
        "prune", help="prune the weight matrices of an .npz file",
        description="Prune every weight matrix in an .npz file (2-D matrices, and 3-D/4-D convolution kernels "
                    "with output channels first, flattened to (out, rest)). Writes the masked weights, the masks "
                    "(NAME__mask) and DARB block sizes (NAME__block_sizes) to OUT, keeps every other array as it "
                    "is, and prints a per-layer table. Exact semantics: docs/pruning.md.",
        epilog="example:\n  darbgen prune examples/digits_mlp.npz --ratio 8 -o /tmp/pruned.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("input", metavar="IN.npz", help="weights (numpy .npz; never unpickled)")
    pr.add_argument("-o", "--out", required=True, metavar="OUT.npz", help="where to write the pruned weights")
    pr.add_argument("--ratio", type=float, help="total weights / kept weights, > 1 (16 keeps 1 in 16)")
    pr.add_argument("--method", default="darb",
                    choices=("darb", "irregular", "bmwm", "block", "bank_balanced", "nm"),
                    help="pruning method (default: darb)")
    pr.add_argument("--scope", default="layer", choices=("layer", "global"),
                    help="layer: the ratio for every matrix; global: one ratio over the whole model, "
                         "spread by saliency (default: layer)")
    pr.add_argument("--layers", metavar="A,B", help="comma-separated array names to prune (default: every "
                    "layer's weight, or every array with 2+ dimensions)")
    pr.add_argument("--candidates", metavar="1,2,4,...", help="darb: allowed block sizes "
                    "(default: powers of two up to the column count)")
    pr.add_argument("--block", type=int, help="bmwm: block size (default: the ratio)")
    pr.add_argument("--tile", type=int, nargs=2, metavar=("R", "C"), help="block: tile shape (default 4 4)")
    pr.add_argument("--banks", type=int, help="bank_balanced: banks per row")
    pr.add_argument("--n", type=int, help="nm: weights kept per group (default 1)")
    pr.add_argument("--m", type=int, help="nm: group size (default n * ratio)")
    pr.add_argument("--input-norms", metavar="NORMS.npz", help="per-column input norms from calibration data, "
                    "one 1-D array per pruned array name; saliency becomes |w| * norm")
    pr.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    pr.add_argument("--force", action="store_true", help="replace OUT if it exists")

    ge = sub.add_parser(
        "generate", help="write C for the dense layers of an .npz file (and verify it)",
        description="Quantize the dense layers of an .npz file (usually the output of `darbgen prune`) and write "
                    "C: one <prefix>_<layer>.c/.h pair per layer, <prefix>.h listing them, and the runtime files "
                    "they need, into DIR (written whole through a temporary folder). Prints per layer the bytes "
                    "of values, index, metadata and parameters, the code bytes from the compiled object, and "
                    "with --verify the comparison of the compiled C with darbgen's reference. "
                    "How to call the code from firmware: docs/codegen.md.",
        epilog="example:\n  darbgen prune examples/digits_mlp.npz --ratio 8 -o /tmp/pruned.npz\n"
               "  darbgen generate /tmp/pruned.npz --dtype int8 --kernel packed --out /tmp/digits_c --verify",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ge.add_argument("input", metavar="PRUNED.npz", help="weights (from `darbgen prune`, or any .npz of dense layers)")
    ge.add_argument("--out", required=True, metavar="DIR", help="folder to write the C into")
    _codegen_options(ge)
    ge.add_argument("--prefix", help="C name prefix of every symbol (default: the model's name or the file name)")
    ge.add_argument("--layers", metavar="A,B", help="comma-separated layer names to generate (default: all)")
    ge.add_argument("--verify", action="store_true", help="compile with the host gcc, run on random and edge "
                    "inputs and compare with the reference bit for bit; exit 1 on any difference")
    ge.add_argument("--target", default="host", choices=TARGETS, help="with --verify: where the C runs, host "
                    "(gcc) or a Cortex-M core (arm-none-eabi-gcc, in QEMU) (default: host)")
    ge.add_argument("--sanitize", action="store_true", help="with --verify: build with "
                    "-fsanitize=address,undefined")
    ge.add_argument("--size-target", choices=TARGETS,
                    help="compile for this target to count code bytes (default: the --target core, else "
                         "cortex-m4 when arm-none-eabi-gcc is installed, else host)")
    ge.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ge.add_argument("--force", action="store_true", help="replace DIR if darbgen wrote it (it holds .darbgen-output)")

    bu = sub.add_parser(
        "build", help="a trained model in, verified C out (prune, quantize, generate, compile, verify, report)",
        description="Load a trained model (.tflite, float32 or int8, docs/tflite.md; Keras 2 .h5, "
                    "docs/keras_h5.md; Keras 3 .keras; .onnx; .npz with a __model__ description, docs/npz.md; or a "
                    "scikit-learn MLP pickle with --allow-pickle), prune it, quantize it, generate C, compile it with gcc, run "
                    "it against the NumPy reference and report per layer: kind, shape, ratio, block sizes, bytes, "
                    "code and the largest difference; totals for flash and RAM; with test data, the accuracy of "
                    "the original model, the pruned float model and the generated C. Exit 1 if the C does not "
                    "match the reference. docs/build.md.",
        epilog="examples:\n  darbgen build examples/digits_mlp.npz --ratio 2 --out /tmp/digits_c\n"
               "  darbgen build kws_ref_model.tflite --ratio 2 --target cortex-m4   # int8 TFLite, its own quantization\n"
               "  darbgen build ad01.h5 --calib x.npy --out c   # Keras 2 HDF5; calibration inputs in its layout\n"
               "  darbgen build model.npz --ratio 16 --dtype int16 --calib x.npy --eval x_test.npy y_test.npy "
               "--out c --json\n"
               "  darbgen build examples/digits_mlp.npz --ratio 8 --refit --out /tmp/digits_8x   # no retraining\n"
               "  darbgen build finetuned.onnx --from-zeros --calib x.npy --out c   # fine-tuned with darbgen.train",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    bu.add_argument("model", metavar="MODEL", help="the trained model: .tflite (float32 or int8; docs/tflite.md), "
                    ".h5 (Keras 2; docs/keras_h5.md), .keras (Keras 3; docs/keras.md), .onnx (docs/onnx.md), .npz "
                    "(docs/npz.md) or .pkl/.joblib (scikit-learn MLP, needs --allow-pickle)")
    bu.add_argument("--ratio", type=float, help="pruning ratio, > 1 (default: no pruning)")
    bu.add_argument("--method", default="darb", choices=("darb", "irregular", "bmwm", "block", "bank_balanced",
                                                          "nm"), help="pruning method (default: darb)")
    bu.add_argument("--scope", default="layer", choices=("layer", "global"), help="pruning scope (default: layer)")
    bu.add_argument("--layers", metavar="A,B", help="prune only these layers (default: every dense and "
                    "convolution layer); small first layers are often best left dense")
    bu.add_argument("--from-zeros", action="store_true", help="the model is already pruned (fine-tuned with "
                    "darbgen.train, say): take its zeros as the mask; with --method darb each row gets the largest "
                    "block size that drops no non-zero (no --ratio)")
    bu.add_argument("--saliency", default="magnitude", choices=("magnitude", "activation"), help="rank weights "
                    "by |w| (default) or by |w| times the norm of its input over the calibration inputs")
    bu.add_argument("--refit", action="store_true", help="after pruning, refit the kept weights and biases by "
                    "least squares so each layer reproduces the dense layer's outputs on the calibration inputs "
                    "(no retraining; often wins back most of the accuracy one-shot pruning loses); a quarter of "
                    "the inputs is held out, and rows whose refit is worse there keep their pruned values")
    bu.add_argument("--refit-alpha", type=float, metavar="A", help="with --refit: the ridge strength (relative "
                    "to each input column's squared norm; default: the best of 1e-4 ... 10 on the held-out inputs)")
    bu.add_argument("--max-drop", type=_budget, metavar="POINTS", help="instead of --ratio: search for the "
                    "smallest model (see --objective) whose accuracy on --val stays within POINTS percentage points "
                    "of the unpruned model's; for regression targets (an autoencoder's inputs, say) POINTS is a "
                    "percentage of the unpruned error (`10` or `10%%`). Per layer it measures the loss at each ratio "
                    "with magnitude or activation saliency, with and without --refit (with --calib), leaves layers "
                    "that do not pay dense, and checks the chosen model on --val (.tflite and .h5 models)")
    bu.add_argument("--val", nargs=2, metavar=("X.npy", "Y.npy"), help="with --max-drop: validation inputs and "
                    "labels (or regression targets) the budget is measured on; keep them apart from --eval")
    bu.add_argument("--objective", choices=("flash", "instructions"), help="with --max-drop: "
                    "minimise the bytes of weights, index and metadata plus the runtime kernels' code (flash, default) or "
                    "the instructions per "
                    "inference on --target (estimated from the kernels' measured costs)")
    _codegen_options(bu)
    bu.add_argument("--eval", nargs=2, metavar=("X.npy", "Y.npy"), help="test inputs and labels for accuracy "
                    "(default: test.x / test.y bundled in the file)")
    bu.add_argument("--target", default="host", choices=TARGETS, help="where the C is verified: host (gcc), or a "
                    "Cortex-M core: also cross-compiled with arm-none-eabi-gcc and run in QEMU on a sample of the "
                    "host's test vectors, with instructions per layer counted and the stack measured (default: host)")
    bu.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds each run of the compiled C may take "
                    "(default: 120 on the host; in QEMU in proportion to the host's run time of the same work)")
    bu.add_argument("--out", metavar="DIR", help="folder to write the C into (default: do not write)")
    bu.add_argument("--prefix", help="C name prefix (default: the model's name)")
    bu.add_argument("--allow-pickle", action="store_true", help="allow loading a pickled scikit-learn model "
                    "(a pickle can run any code: only for files you trust)")
    bu.add_argument("--json", action="store_true", help="print the report as one JSON object")
    bu.add_argument("--force", action="store_true", help="replace DIR if darbgen wrote it (it holds .darbgen-output)")

    de = sub.add_parser(
        "demo", help="build the bundled digits network: prune 2x, int8, verify, report accuracy",
        description="Run `darbgen build` on the bundled handwritten-digits MLP (examples/digits_mlp.npz) with "
                    "DARB at 2x, int8, the packed kernel, calibration and test data from the file, and print the "
                    "report. The C goes to a new temporary folder (or --out).")
    de.add_argument("--ratio", type=float, default=2.0, help="pruning ratio (default: 2)")
    de.add_argument("--target", default="host", choices=TARGETS, help="also run and count it on this Cortex-M "
                    "core in QEMU (default: host only)")
    de.add_argument("--out", metavar="DIR", help="folder to write the C into (default: a new temporary folder)")
    de.add_argument("--json", action="store_true", help="print the report as one JSON object")
    de.add_argument("--force", action="store_true", help="replace DIR if darbgen wrote it (it holds .darbgen-output)")

    rp = sub.add_parser(
        "report", help="a Markdown report with PNG figures from experiment results and/or weights",
        description="Write DIR/report.md and its PNG figures. From experiment results (JSON, schema "
                    "darbgen-experiment/1): the highest pruning ratio each method and variant reaches within "
                    "tolerance of the dense model, DARB against its goals (2x block 4x4, 0.8x irregular), every "
                    "run, and a metric-versus-ratio plot. From weights (.npz, read as `darbgen prune` reads it): "
                    "per matrix, the row densities after irregular pruning at --ratio, DARB's block size per row, "
                    "and the masks of irregular, DARB and 4x4 block pruning. Without --weights, the file named by "
                    "a results file's \"weights\" field is used. Needs matplotlib (pip install "
                    "'darbgen[report]'). The same inputs give byte-identical files. docs/report.md.",
        epilog="examples:\n  darbgen report --results docs/results/digits_mlp/results.json "
               "--weights examples/digits_mlp.npz --out /tmp/report\n"
               "  darbgen report --weights examples/digits_mlp.npz --ratio 8 --out /tmp/report --force",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("--results", nargs="+", action="extend", metavar="R.json",
                    help="experiment results (JSON, docs/report.md); several files, or the option repeated, "
                         "give one section each")
    rp.add_argument("--weights", metavar="W.npz", help="dense weight matrices for the per-matrix figures")
    rp.add_argument("--ratio", type=float, default=16.0, help="pruning ratio of the per-matrix figures "
                    "(default: 16)")
    rp.add_argument("--out", required=True, metavar="DIR", help="folder to write report.md and the PNGs into "
                    "(written whole through a temporary folder)")
    rp.add_argument("--force", action="store_true", help="replace DIR if darbgen wrote it (it holds .darbgen-output)")
    rp.add_argument("--title", help="the report's heading (default: the results' title)")

    be = sub.add_parser("bench", help="benchmarks (prints figures; see docs/benchmarks.md)",
                        description="Benchmarks. `darbgen bench prune --help` for the pruning benchmark, "
                                    "`darbgen bench mcu --help` for the Cortex-M kernels, `darbgen bench model "
                                    "--help` for a whole int8 model against CMSIS-NN.")
    be.add_argument("which", choices=("prune", "mcu", "model"), help="which benchmark: prune (pruning speed and "
                    "memory), mcu (kernels on a Cortex-M core in QEMU) or model (a whole int8 .tflite model through "
                    "CMSIS-NN and through darbgen, side by side in QEMU)")
    be.add_argument("args", nargs=argparse.REMAINDER, help="options of that benchmark")
    return p


def _codegen_options(p):
    """The options `generate` and `build` share: number type, kernel, calibration."""
    p.add_argument("--dtype", default="int8", choices=("int8", "int16", "float32"),
                   help="int8 (TFLite int8), int16 (16x8: int16 activations, int8 weights) or float32 "
                        "(default: int8)")
    p.add_argument("--kernel", default="packed", choices=("packed", "unrolled", "dense", "csr"),
                   help="packed: DARB kernel over bit-packed offsets (layers with other masks fall back to csr); "
                        "unrolled: straight-line code, no index storage; dense, csr: baselines (default: packed)")
    p.add_argument("--calib", metavar="X.npy", help="calibration inputs of the first layer, shape (n, inputs), "
                   "for int8/int16 (default: calib.x, else test.x, bundled in the file); an .npz gives inputs "
                   "per layer name")
    p.add_argument("--percentile", type=float, metavar="P", help="activation ranges from the P-th percentiles "
                   "(e.g. 99.99) instead of min/max")


def _split(text, convert=str, flag="--layers"):
    """A comma-separated option as a list (None when not given); given but naming nothing is an error."""
    if text is None:
        return None
    items = [convert(t.strip()) for t in text.split(",") if t.strip()]
    if not items:
        raise DarbgenError(f"{flag} {text!r} names nothing; give comma-separated values, or leave {flag} out")
    return items


def _options(args):
    opts = {}
    if args.candidates is not None:
        try:
            opts["candidates"] = _split(args.candidates, int, "--candidates")
        except ValueError:
            raise DarbgenError(f"--candidates must be comma-separated whole numbers, got {args.candidates!r}") from None
    for key in ("block", "banks", "n", "m"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.tile:
        opts["tile"] = tuple(args.tile)
    return opts


def _progress(message):
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


def cmd_prune(args):
    """`darbgen prune`: load, prune, save atomically, report."""
    import numpy as np

    from . import npzio
    from .pruning import prune_model
    from .report import plain, to_json
    from .stats import matrix_stats

    npzio.check_writable(args.out, args.force, inputs=(args.input, args.input_norms))
    arrays = npzio.load_npz(args.input)
    names = npzio.weight_names(arrays, _split(args.layers))
    matrices = {n: npzio.as_matrix(n, arrays[n]) for n in names}
    norms = None
    if args.input_norms:
        norm_arrays = npzio.load_npz(args.input_norms)
        missing = [n for n in names if n not in norm_arrays]
        if missing:
            raise DarbgenError(f"{args.input_norms}: has no norms for {', '.join(missing[:3])}"
                               f"{' ...' if len(missing) > 3 else ''} (--input-norms needs an array per pruned "
                               f"matrix, named as the matrix, one norm per column; it has: "
                               f"{', '.join(sorted(norm_arrays)[:5]) or 'nothing'})")
        norms = {n: norm_arrays[n] for n in names}
    start = time.perf_counter()
    _progress(f"pruning {len(matrices)} matrices ({args.method}, scope {args.scope})...")
    result = prune_model(matrices, args.ratio, args.method, scope=args.scope, input_norms=norms,
                         **_options(args))
    seconds = time.perf_counter() - start
    out = dict(arrays)
    layers = []
    for i, (name, r) in enumerate(result.items()):
        _progress(f"  statistics {i + 1}/{len(result)}: {name}")
        original = arrays[name]
        masked = np.where(r.mask.reshape(original.shape), original, np.zeros((), original.dtype))
        out[name] = masked
        out[name + npzio.MASK_SUFFIX] = r.mask.reshape(original.shape)
        if r.block_sizes is not None:
            out[name + npzio.BLOCKS_SUFFIX] = r.block_sizes
        stats = matrix_stats(matrices[name], r, None if norms is None else norms.get(name))
        stats["original_shape"] = list(original.shape)
        layers.append(stats)
    summary = {
        "input": args.input, "output": args.out, "method": args.method, "scope": args.scope,
        "requested_ratio": result.requested_ratio, "ratio": result.ratio,
        "weights": sum(int(np.prod(s["shape"])) for s in layers), "kept": result.kept,
        "prune_seconds": seconds, "layers": layers, "darbgen_version": __version__,
    }
    # stored: the same bytes for the same input and options (no path, no run time)
    stored = {k: v for k, v in summary.items() if k not in ("output", "prune_seconds")}
    stored.update(input=os.path.basename(args.input),
                  layers=[{"name": s["name"], "ratio": s["ratio"], "options": s["options"]} for s in layers])
    out[npzio.RESULT_KEY] = np.array(json.dumps(plain(stored)))
    npzio.save_npz(args.out, out, force=args.force, inputs=(args.input, args.input_norms))
    print(to_json(summary) if args.json else _prune_table(summary))
    return 0


def _prune_table(summary):
    from .report import human_bytes, table

    rows = []
    totals = {"darb": 0, "csr": 0, "dense": 0}
    for s in summary["layers"]:
        spread = s["irregular_density"]
        mom = spread["max_over_min"]
        blocks = " ".join(f"{b}:{c}" for b, c in s.get("block_sizes", {}).items()) or "-"
        f = s["formats"]
        best = "darb" if "darb" in f else ("bsr" if "bsr" in f else "csr")
        for k in totals:
            totals[k] += f.get(k if k in f else best, f["csr"])["int8"]["total"]
        rows.append([
            s["name"], "x".join(map(str, s["original_shape"])), f"{s['ratio']:.2f}",
            f"{s['kept']}", f"{100 * s['saliency_kept']:.1f}%",
            "-" if mom is None else f"{mom:.1f}", blocks,
            f"{f[best]['int8']['bits_per_kept']:.1f} ({best})", f"{f['csr']['int8']['bits_per_kept']:.1f}",
        ])
    head = (f"{summary['method']} pruning of {summary['input']} (scope {summary['scope']}): "
            f"requested ratio {summary['requested_ratio'] if summary['requested_ratio'] is not None else '-'}, "
            f"achieved {summary['ratio']:.2f} ({summary['kept']} of {summary['weights']} weights kept) "
            f"in {summary['prune_seconds']:.2f} s")
    body = table(["layer", "shape", "ratio", "kept", "saliency kept", "density max/min",
                  "block sizes (size:rows)", "int8 bits/kept", "csr bits/kept"], rows)
    foot = (f"int8 storage: {human_bytes(totals['dense'])} dense, {human_bytes(totals['csr'])} CSR, "
            f"{human_bytes(totals['darb'])} {'DARB packed' if summary['method'] in ('darb', 'bmwm') else 'best format'}. "
            f"Wrote {summary['output']}.")
    return "\n".join([head, "", body, "", foot])


def _no_ranges_for_float32(args, calib_feeds=None):
    """Refuse --calib and --percentile with --dtype float32, where they would be ignored: they set int8 / int16
    activation ranges. ``calib_feeds``: (the options --calib also feeds, whether one of them is given)."""
    if args.dtype != "float32":
        return
    calib_used = calib_feeds is not None and calib_feeds[1]
    if args.calib and not calib_used:
        feeds = f" (and feeds {calib_feeds[0]})" if calib_feeds else ""
        without = " without those" if calib_feeds else ""
        raise DarbgenError(f"--calib sets int8 / int16 activation ranges{feeds}; float32{without} needs none: drop "
                           f"it, or choose --dtype int8 or int16")
    if args.percentile is not None:
        raise DarbgenError("--percentile sets int8 / int16 activation ranges; float32 needs none: drop it, or "
                           "choose --dtype int8 or int16")


def _load_calibration(path):
    from . import npzio

    if path.endswith(".npz"):
        return npzio.load_npz(path)
    return npzio.load_npy(path, "--calib")


def cmd_generate(args):
    """`darbgen generate`: load, quantize, generate, measure, verify, write, report."""
    import os
    import shutil

    from . import npzio
    from .codegen import generate
    from .importers.npz import bundled_calibration, default_prefix, dense_layers
    from .report import to_json
    from .verify import measure, verify

    check_out_dir(args.out, args.force, "--force", inputs=(args.input, args.calib))
    if args.sanitize and not args.verify:
        raise DarbgenError("--sanitize builds the verification with -fsanitize=address,undefined; add --verify")
    _no_ranges_for_float32(args)
    arrays = npzio.load_npz(args.input)
    model_name, layers, notes = dense_layers(arrays, args.input)
    wanted = _split(args.layers)
    if wanted:
        known = {layer.name for layer in layers}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise DarbgenError(f"{missing[0]}: no such layer; the file has: {', '.join(sorted(known))}")
        layers = [layer for layer in layers if layer.name in wanted]
    calib = None
    if args.dtype != "float32":
        if args.calib:
            calib = _load_calibration(args.calib)
        else:
            key, calib = bundled_calibration(arrays)
            if key is None:
                raise DarbgenError(f"{args.dtype} needs calibration inputs: pass --calib X.npy (inputs of the first "
                                   f"layer, shape (n, {layers[0].cols})) or generate --dtype float32")
            notes.append(f"calibrated on {key} bundled in {os.path.basename(args.input)} ({len(calib)} inputs)")
    from .codegen.banner import banner_command

    command = banner_command(args.argv)   # no output path: the same bytes wherever written
    _progress(f"generating {args.dtype} {args.kernel} C for {len(layers)} layers...")
    # only a described network (__model__) is a chain; bare arrays are independent layers
    module = generate(layers, dtype=args.dtype, kernel=args.kernel, prefix=args.prefix or default_prefix(
        args.input, model_name), calib=calib, percentile=args.percentile, command=command,
        chain=model_name is not None and not isinstance(calib, dict))
    if args.target != "host" and not args.verify:
        raise DarbgenError("--target chooses where --verify runs the C; add --verify (or use --size-target for "
                           "code sizes only)")
    if args.sanitize and args.target != "host":
        raise DarbgenError("--sanitize runs on the host only; verify with --sanitize on the host, then with "
                           "--target on the core")
    target = args.size_target or (args.target if args.target != "host" else None)
    if target is None:
        target = "cortex-m4" if shutil.which("arm-none-eabi-gcc") else "host"
        if target == "host":
            notes.append("code bytes are for the host: install arm-none-eabi-gcc (bash scripts/setup.sh) "
                         "for Cortex-M4 figures")
    notes += module.extra.get("notes", [])
    _progress(f"compiling for {target} to measure code size...")
    sizes = measure(module, target)
    result = None
    if args.verify:
        where = "the host gcc" if args.target == "host" else f"{args.target} in QEMU"
        _progress(f"verifying on {where} against the reference...")
        result = verify(module, sanitize=args.sanitize, raise_on_mismatch=False, target=args.target)
    module.write(args.out, force=args.force)
    summary = generate_summary(module, sizes, result, args.out, notes)
    print(to_json(summary) if args.json else _generate_table(summary))
    if result is not None and not result.ok:
        print(f"darbgen: error: verification FAILED; the C was written, but {result.headline}:\n"
              + result.describe(), file=sys.stderr)
        return 1
    return 0


def generate_summary(module, sizes, result, out, notes=()):
    """The report of `darbgen generate` as plain data."""
    checks = {c.symbol: c for c in result.layers} if result is not None else {}
    layers = []
    for g in module.layers:
        obj = sizes["layers"][g.symbol]
        row = {
            "name": g.name, "symbol": g.symbol, "shape": [g.layer.rows, g.layer.cols], "kernel": g.kernel,
            "activation": g.layer.activation, "kept": g.layer.kept, "ratio": g.layer.ratio,
            "bytes": g.data_bytes(), "code_bytes": obj["code"], "flash_bytes": obj["code"] + obj["rodata"],
        }
        q = g.quantized
        if q.dtype != "float32":
            row["accumulator_headroom_bits"] = q.headroom_bits
            row["input"] = {"scale": q.input.scale, "zero_point": q.input.zero_point}
            row["output"] = {"scale": q.output.scale, "zero_point": q.output.zero_point}
        c = checks.get(g.symbol)
        if c is not None:
            row["verify"] = {"ok": c.ok, "vectors": c.vectors, "mismatches": c.mismatches,
                             "max_abs_diff": c.max_abs_diff, "max_rel_f64": c.max_rel_f64}
        layers.append(row)
    return {
        "output": out, "prefix": module.prefix, "dtype": module.dtype, "kernel": module.kernel,
        "size_target": sizes["target"], "runtime_code_bytes": sizes["runtime"]["code"],
        "flash_bytes": sum(r["flash_bytes"] for r in layers) + sizes["runtime"]["code"] + sizes["runtime"]["rodata"],
        "verified": None if result is None else result.ok,
        "compiler": None if result is None else {"cc": result.compiler, "flags": result.flags},
        "layers": layers, "notes": list(notes), "files": sorted(module.files),
    }


def _generate_table(summary):
    from .report import human_bytes, table

    rows = []
    for r in summary["layers"]:
        b = r["bytes"]
        v = r.get("verify")
        check = "-" if v is None else (f"ok ({v['vectors']} vectors, max diff {v['max_abs_diff']:g})" if v["ok"]
                                       else f"FAILED ({v['mismatches']} outputs differ)" if v["mismatches"]
                                       else "FAILED (float64 check)")
        rows.append([r["name"], "x".join(map(str, r["shape"])), r["activation"], f"{r['ratio']:.2f}",
                     str(b["values"]), str(b["index"]), str(b["metadata"]), str(b["params"]),
                     str(r["code_bytes"]), check])
    head = (f"{summary['dtype']} C, kernel {summary['kernel']}, prefix {summary['prefix']} "
            f"-> {summary['output']} ({len(summary['files'])} files)")
    body = table(["layer", "shape", "activation", "ratio", "values B", "index B", "metadata B", "params B",
                  f"code B ({summary['size_target']})", "verified against reference"], rows)
    verdict = {None: "not verified (add --verify)", True: "verified: every output bit-identical to the reference",
               False: "VERIFICATION FAILED"}[summary["verified"]]
    foot = [f"flash for {summary['size_target']}: {human_bytes(summary['flash_bytes'])} "
            f"(runtime kernels {summary['runtime_code_bytes']} B of code); {verdict}."]
    foot += [f"note: {n}" for n in summary["notes"]]
    return "\n".join([head, "", body, ""] + foot)


def cmd_build(args):
    """`darbgen build`: the whole pipeline, then the report."""
    from .build import build

    inputs = [args.model, args.calib] + list(args.eval or ()) + list(args.val or ())
    check_out_dir(args.out, args.force, "--force", inputs=inputs)
    if args.objective is not None and args.max_drop is None:
        raise DarbgenError("--objective chooses what the search under a budget minimises: give --max-drop with it")
    _no_ranges_for_float32(args, calib_feeds=("--refit, --saliency activation and --max-drop", args.refit or
                                              args.saliency == "activation" or args.max_drop is not None))
    from .npzio import load_npy

    calib = _load_calibration(args.calib) if args.calib else None
    eval_data = None
    if args.eval:
        eval_data = (load_npy(args.eval[0], "--eval inputs"), load_npy(args.eval[1], "--eval labels"))
    val = None
    if args.val:
        val = (load_npy(args.val[0], "--val inputs"), load_npy(args.val[1], "--val labels"))
    from .codegen.banner import banner_command

    command = banner_command(args.argv)   # no output path: the same bytes wherever written
    result = build(args.model, ratio=args.ratio, method=args.method, scope=args.scope, dtype=args.dtype,
                   kernel=args.kernel, calib=calib, percentile=args.percentile, eval_data=eval_data,
                   out=args.out, force=args.force, target=args.target, prefix=args.prefix,
                   allow_pickle=args.allow_pickle, progress=sys.stderr.isatty(), command=command,
                   layers=_split(args.layers), from_zeros=args.from_zeros, saliency=args.saliency,
                   refit=args.refit, refit_alpha=args.refit_alpha, timeout=args.timeout,
                   max_drop=args.max_drop, val=val, objective=args.objective or "flash")
    return _print_build(result, args.json)


def _budget(text):
    """--max-drop's value: a number >= 0, with an optional trailing %."""
    t = str(text).strip().rstrip("%").strip()
    try:
        v = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (points, or a percentage such as 10%)") from None
    if not (v >= 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: the budget must be a finite number >= 0")
    return v


def _print_build(result, as_json):
    from .report import to_json

    print(to_json(result.report) if as_json else build_table(result.report))
    if not result.ok:
        bad = result.verification if not result.verification.ok else result.host_verification
        print(f"darbgen: error: verification FAILED: {bad.headline}:\n" + bad.describe(), file=sys.stderr)
        return 1
    return 0


def cmd_demo(args):
    """`darbgen demo`: build the bundled digits MLP with sensible defaults."""
    import tempfile

    from .build import build
    from .resources import examples_dir

    out = args.out or tempfile.mkdtemp(prefix="darbgen-demo-")
    check_out_dir(args.out, args.force, "--force")
    result = build(examples_dir() / "digits_mlp.npz", ratio=args.ratio, method="darb", dtype="int8",
                   kernel="packed", out=out, force=True, progress=sys.stderr.isatty(), target=args.target,
                   command="darbgen demo" + (f" --ratio {args.ratio:g}" if args.ratio != 2.0 else ""))
    return _print_build(result, args.json)


def build_table(report):
    """The build report as text tables."""
    from .report import human_bytes, table

    rows = []
    on_core = "instructions" in report
    for r in report["layers"]:
        b = r["bytes"]
        v = r["verify"]
        blocks = " ".join(f"{k}:{n}" for k, n in r.get("block_sizes", {}).items()) or "-"
        diff = (f"{v['max_abs_diff']:g}" if v["ok"] else f"FAILED ({v['mismatches']} differ)" if v["mismatches"]
                else "FAILED (float64 check)")
        rows.append([r["name"], r["kind"] + (f" {r['activation']}" if r.get("activation", "none") != "none" else ""),
                     "x".join(map(str, r["shape"])), f"{r['ratio']:.2f}" if "ratio" in r else "-", blocks,
                     str(b["values"]), str(b["index"]), str(b["metadata"]), str(b["params"]), str(r["code_bytes"])]
                    + ([f"{r['instructions']:,}" if "instructions" in r else "-", str(r.get("stack_bytes", "-"))]
                       if on_core else []) + [diff])
    head = (f"{report['model']}: {report['dtype']} C, kernel {report['kernel']}"
            + (f", {report['method']} pruning at {report['ratio']:.2f}x ({report['kept']} of {report['weights']} "
               f"weights kept)" if report["method"] else ", not pruned")
            + f", built in {report['seconds']:.1f} s")
    body = table(["layer", "kind", "shape", "ratio", "block sizes (size:rows)", "values B", "index B",
                  "metadata B", "params B", f"code B ({report['size_target']})"]
                 + (["instructions", "stack B"] if on_core else []) + ["max |C - ref|"], rows)
    mc = report["model_check"]
    if on_core:
        memory = (f"on {report['target']}: flash {human_bytes(report['flash_bytes'])} (code "
                  f"{human_bytes(report['code_bytes'])}, weights and tables {human_bytes(report['weight_bytes'])}, "
                  f"runtime kernels included), RAM {human_bytes(report['ram_bytes'])} (static "
                  f"{human_bytes(report['static_ram_bytes'])} + stack {report['stack_bytes']} B), "
                  f"{report['instructions']:,} instructions per inference (counted in QEMU).")
    else:
        memory = (f"flash {human_bytes(report['flash_bytes'])} (code for {report['size_target']}, runtime kernels "
                  f"included), RAM {human_bytes(report['ram_bytes'])} of activations (one static arena; stack not "
                  f"counted: build with --target cortex-m4 to measure it).")
    lines = [head, "", body, "", memory]
    if mc is not None:
        if on_core and "host_vectors" in mc:
            where = f"{mc['host_vectors']} input vectors on the host and a sample of {mc['vectors']} on " \
                    f"{report['target']} (QEMU)"
        elif on_core:
            where = f"{mc['vectors']} input vectors on {report['target']} (QEMU) and the host"
        else:
            where = f"{mc['vectors']} input vectors on the host"
        lines.append(f"whole model: {'bit-identical to the reference' if mc['ok'] else 'MISMATCH'} on "
                     f"{where}; every layer: {'verified' if report['verified'] else 'FAILED'}.")
    acc = report.get("accuracy")
    if acc:
        if acc["metric"] == "accuracy":
            lines.append(f"accuracy on {acc['vectors']} test inputs: original {100 * acc['original']:.2f}%, pruned "
                         f"float {100 * acc['pruned']:.2f}%, generated C {100 * acc['c']:.2f}% (the C picks the "
                         f"pruned float model's class on {100 * acc['c_agrees_with_pruned']:.2f}%).")
        else:
            lines.append(f"mean squared error on {acc['vectors']} test inputs: original {acc['original']:.4g}, "
                         f"pruned float {acc['pruned']:.4g}, generated C {acc['c']:.4g}.")
    if report.get("search"):
        lines += ["", search_table(report["search"])]
    if report["output"]:
        lines.append(f"C written to {report['output']} ({len(report['files'])} files; call {report['prefix']}_run, "
                     f"see {report['prefix']}.h).")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def search_table(rep):
    """The accuracy-budget search's choices as a text table."""
    from .report import table

    rows = []
    for name, l in rep["layers"].items():
        how = "-" if l["ratio"] <= 1 else f"{l['saliency']}{' + refit' if l['refit'] else ''}"
        tried = max((t["ratio"] for t in l["tried"]), default=1.0)
        rows.append([name, "dense" if l["ratio"] <= 1 else f"{l['ratio']:g}x", how,
                     f"{l['loss_alone']:.3g}" if l["ratio"] > 1 else "-", f"{tried:g}x",
                     f"{l['cost']:,.0f}", f"{l['cost_dense']:,.0f}"])
    unit = "B" if rep["objective"] == "flash" else "instr."
    head = (f"search: the smallest model by {rep['objective']} within {rep['budget']:g} {rep['unit']} on the "
            f"validation set: {rep['metric']} {rep['chosen']:.4g} against {rep['unpruned']:.4g} unpruned (loss "
            f"{rep['loss']:.3g}); {rep['cost_chosen']:,.0f} against {rep['cost_unpruned']:,.0f} {rep['cost_unit']}")
    return head + "\n" + table(["layer", "chosen", "saliency", "loss alone", "highest tried",
                                f"cost ({unit})", f"dense ({unit})"], rows)


def cmd_report(args):
    """`darbgen report`: write the Markdown report, print the files and the headline table."""
    from .reporting import headline_text, load_results, write_report

    if not args.results and not args.weights:
        raise DarbgenError("report needs experiment results (--results R.json) and/or weights (--weights W.npz)")
    check_out_dir(args.out, args.force, "--force", inputs=list(args.results or ()) + [args.weights])
    _progress("writing the report...")
    paths = write_report(args.out, results=args.results or (), weights=args.weights, ratio=args.ratio,
                         force=args.force, title=args.title)
    print("\n".join(paths))
    if args.results:
        print()
        print("highest ratio within tolerance of the dense model:")
        print(headline_text([load_results(p) for p in args.results]))
    return 0


def cmd_bench(args):
    if args.which == "prune":
        from .bench.prune import main as bench_main
        return bench_main(args.args)
    if args.which == "mcu":
        from .bench.mcu import main as bench_main
        return bench_main(args.args)
    if args.which == "model":
        from .bench.model import main as bench_main
        return bench_main(args.args)
    return 2


#: the commands and what runs them, in the order --help lists them
COMMANDS = {"prune": cmd_prune, "generate": cmd_generate, "build": cmd_build, "demo": cmd_demo,
            "report": cmd_report, "bench": cmd_bench}


def main(argv=None):
    """Entry point of the ``darbgen`` console script."""
    console = argv is None
    try:
        return _main(sys.argv[1:] if console else list(argv))
    finally:
        if console:
            # the work is done (or ended): a Ctrl-C during the interpreter's shutdown, which resets the signal's
            # handler, would kill the process with no message and hide the exit status; ignore it from here on
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command is None:
        parser.print_help(sys.stderr)
        print(f"darbgen: error: give a command: {', '.join(COMMANDS)} (darbgen COMMAND --help for its options)",
              file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except DarbgenError as exc:
        import re

        message = str(exc)
        if args.command in ("prune", "build", "demo"):       # the API names its arguments; here they are flags
            message = re.sub(r"\b(ratio|candidates|layers|prefix|n|m|block|banks|timeout)=(?=[\s,.;)]|$)", r"--\1",
                             message)
            message = message.replace("refit_alpha=", "--refit-alpha")
            message = re.sub(r"\b(ratio)=(?=[0-9])", r"--\1 ", message)
        # the data's API arguments, named in brackets (darbgen.datacheck), are flags here
        message = re.sub(r"\((eval_data|calib|val)\)", lambda m: f"(--{m.group(1).replace('_data', '')})", message)
        print(f"darbgen: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"darbgen: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("darbgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
