"""The ``darbgen`` command.

    darbgen prune IN.npz --ratio 16 -o OUT.npz     prune every weight matrix in a file
    darbgen bench prune --json                     time DARB against NumPy and a copy

Run ``darbgen COMMAND --help`` for the options of each command. Errors in the
input (a missing or broken file, NaN weights, an impossible ratio...) are
printed on one line naming the array at fault, with exit status 2.
"""
import argparse
import json
import sys
import time

from . import __version__
from .errors import DarbgenError

EXAMPLES = """examples:
  darbgen prune examples/digits_mlp.npz --ratio 8 -o /tmp/pruned.npz
  darbgen prune model.npz --ratio 16 --scope global -o pruned.npz --json
  darbgen prune model.npz --method nm --n 2 --m 8 -o nm.npz
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

    be = sub.add_parser("bench", help="benchmarks (prints figures; see docs/benchmarks.md)",
                        description="Benchmarks. `darbgen bench prune --help` for the pruning benchmark.")
    be.add_argument("which", choices=("prune",), help="which benchmark")
    be.add_argument("args", nargs=argparse.REMAINDER, help="options of that benchmark")
    return p


def _split(text, convert=str):
    return [convert(t.strip()) for t in text.split(",") if t.strip()] if text else None


def _options(args):
    opts = {}
    if args.candidates:
        try:
            opts["candidates"] = _split(args.candidates, int)
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

    npzio.check_writable(args.out, args.force)
    arrays = npzio.load_npz(args.input)
    names = npzio.weight_names(arrays, _split(args.layers))
    matrices = {n: npzio.as_matrix(n, arrays[n]) for n in names}
    norms = None
    if args.input_norms:
        norm_arrays = npzio.load_npz(args.input_norms)
        norms = {n: norm_arrays[n] for n in names if n in norm_arrays}
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
    stored = dict(summary, layers=[{"name": s["name"], "ratio": s["ratio"], "options": s["options"]}
                                   for s in layers])
    out[npzio.RESULT_KEY] = np.array(json.dumps(plain(stored)))
    npzio.save_npz(args.out, out, force=args.force)
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


def cmd_bench(args):
    if args.which == "prune":
        from .bench.prune import main as bench_main
        return bench_main(args.args)
    return 2


def main(argv=None):
    """Entry point of the ``darbgen`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"prune": cmd_prune, "bench": cmd_bench}[args.command](args)
    except DarbgenError as exc:
        print(f"darbgen: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"darbgen: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("darbgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
