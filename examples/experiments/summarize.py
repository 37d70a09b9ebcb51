"""Print the cross-task tables of docs/results.md from the experiments'
results files (docs/results/<task>/results.json):

    .venv/bin/python examples/experiments/summarize.py [RESULTS.json ...]

1. the headline: per task and method, the highest ratio within tolerance for
   each variant, and the bits per kept weight (int8 values) of the best one;
2. DARB against its goals (2x block 4x4's ratio, 0.8x irregular's) per task
   and variant;
3. what the refit wins back: at each ratio, the share of the metric lost to
   one-shot pruning that the refit recovers (median over methods);
4. the metric at equal ratios (fine-tuned), where headlines tie.
"""
import glob
import os
import sys

import numpy as np

from darbgen.reporting import METHOD_NAMES, goal_check, headline, load_results, markdown_table

VARIANTS = ("one-shot", "refit", "fine-tuned")


def _ratio(r):
    return "-" if r is None else f"{r:.1f}x"


def headline_table(results_list):
    rows = []
    for res in results_list:
        by = {(h["method"], h["variant"]): h for h in headline(res)}
        for method in METHOD_NAMES:
            if not any((method, v) in by for v in VARIANTS):
                continue
            cells = [by.get((method, v), {}).get("ratio") for v in VARIANTS]
            best = max((by[(method, v)] for v in VARIANTS if (method, v) in by and by[(method, v)]["ratio"]),
                       key=lambda h: h["ratio"], default=None)
            rows.append([res["task"], METHOD_NAMES[method]] + [_ratio(c) for c in cells]
                        + ["-" if best is None else f"{best['bits_per_kept']:.1f}"])
    return markdown_table(["task", "method", "one-shot", "refit", "fine-tuned", "bits per kept weight (best)"],
                          rows, "llrrrr")


def goal_table(results_list):
    rows = []
    for res in results_list:
        for g in goal_check(res):
            cells = []
            for c in g["checks"]:
                if c["factor"] is None:
                    cells.append("- (no ratio within tolerance)" if c["baseline_ratio"] is None or
                                 g["darb_ratio"] is None else "-")
                else:
                    cells.append(f"{c['factor']:.2f} ({'met' if c['met'] else 'missed'})")
            rows.append([res["task"], g["variant"], _ratio(g["darb_ratio"])] + cells)
    return markdown_table(["task", "variant", "DARB", "DARB / block 4x4 (goal >= 2)",
                           "DARB / irregular (goal >= 0.8)"], rows, "llrrr")


def refit_table(results_list):
    """Median over methods of (refit - one-shot) / (dense - one-shot), per ratio."""
    for res in results_list:
        sign = 1 if res["higher_is_better"] else -1
        dense = res["dense_metric"]
        runs = {(r["method"], r["variant"], r["requested_ratio"]): r["metric"] for r in res["runs"]}
        ratios = sorted({r["requested_ratio"] for r in res["runs"]})
        cells = []
        for ratio in ratios:
            shares = []
            for method in METHOD_NAMES:
                one, fit = runs.get((method, "one-shot", ratio)), runs.get((method, "refit", ratio))
                if one is None or fit is None:
                    continue
                lost = sign * (dense - one)
                if lost > 0:
                    shares.append(sign * (fit - one) / lost)
            cells.append("-" if not shares else f"{100 * np.median(shares):.0f}%")
        header = ["task"] + [f"{r:g}x" for r in ratios]
        yield markdown_table(header, [[res["task"]] + cells], "l" + "r" * len(ratios))


def equal_ratio_table(res, variant="fine-tuned"):
    ratios = sorted({r["requested_ratio"] for r in res["runs"]})
    runs = {(r["method"], r["variant"], r["requested_ratio"]): r for r in res["runs"]}
    unit = "%" if res["metric"] == "accuracy" else " bpc"
    rows = []
    for method in METHOD_NAMES:
        cells = [runs.get((method, variant, r)) for r in ratios]
        if any(cells):
            rows.append([METHOD_NAMES[method]] + ["-" if c is None else f"{c['metric']:.3g}{unit}" for c in cells])
    return markdown_table(["method"] + [f"{r:g}x" for r in ratios], rows, "l" + "r" * len(ratios))


def main(paths):
    here = os.path.dirname(os.path.abspath(__file__))
    paths = paths or sorted(glob.glob(os.path.join(here, "..", "..", "docs", "results", "*", "results.json")))
    results_list = [load_results(p) for p in paths]
    print("## Highest ratio within tolerance\n")
    print(headline_table(results_list))
    print("\n## DARB against its goals\n")
    print(goal_table(results_list))
    print("\n## Share of the one-shot loss the refit wins back (median over methods)\n")
    for t in refit_table(results_list):
        print(t + "\n")
    for res in results_list:
        print(f"## {res['title']}: {res['metric']} at equal ratios, fine-tuned (dense {res['dense_metric']:.4g})\n")
        print(equal_ratio_table(res) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
