"""The PNG figures of `darbgen report`, drawn with matplotlib.

matplotlib is an optional dependency (``pip install 'darbgen[report]'``), so it
is imported only when a figure is drawn, by :func:`_pyplot`. Figures are drawn
on their own Agg canvas, never through pyplot's global figure list: the
session's backend (a notebook's, say) is left alone and nothing leaks between
calls. For byte-identical files the style is reset to matplotlib's defaults
while drawing, the resolution is fixed and the PNG carries no "Software"
stamp.
"""
from types import SimpleNamespace

import numpy as np

from .errors import DarbgenError

DPI = 100
# One colour per method, one line style and marker per variant: the same in every figure.
METHOD_COLORS = {"irregular": "#1f77b4", "block4x4": "#d62728", "block1x4": "#ff7f0e",
                 "bank_balanced": "#9467bd", "bmwm": "#8c564b", "darb": "#2ca02c"}
VARIANT_STYLES = {"one-shot": (":", "o"), "refit": ("--", "s"), "fine-tuned": ("-", "^")}


def _pyplot():
    """matplotlib's figure, Agg canvas and style modules, or a DarbgenError saying how to install it."""
    try:
        import matplotlib
        from matplotlib import style, ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DarbgenError("the report's figures need matplotlib: pip install 'darbgen[report]' (matplotlib)") from None
    return SimpleNamespace(matplotlib=matplotlib, Figure=Figure, FigureCanvasAgg=FigureCanvasAgg, style=style,
                           ticker=ticker)


def _figure(mpl, size):
    fig = mpl.Figure(figsize=size, dpi=DPI)
    mpl.FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})


def _draw(draw):
    """Run ``draw(mpl)`` with matplotlib's default style, whatever the user's matplotlibrc says."""
    mpl = _pyplot()
    with mpl.style.context("default"):
        draw(mpl)


def _log2_axis(mpl, axis, values):
    """Ticks at the powers of two that span ``values``, labelled 1, 2, 4, ..."""
    lo, hi = float(np.min(values)), float(np.max(values))
    ticks = [2.0 ** e for e in range(int(np.floor(np.log2(lo))), int(np.ceil(np.log2(hi))) + 1)]
    axis.set_major_locator(mpl.ticker.FixedLocator(ticks))
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(mpl.ticker.NullLocator())


def metric_vs_ratio(path, lines, *, title, ylabel, dense, limit):
    """Metric against achieved ratio, one line per (method, variant).

    Args:
        path: the PNG to write.
        lines: list of dicts with ``method``, ``variant``, ``label``, ``ratios``
            and ``metrics`` (sorted by requested ratio).
        dense: the dense model's metric (a solid grey line).
        limit: the tolerance limit (a dashed line; the band between it and
            ``dense`` is shaded).
    """
    def draw(mpl):
        fig = _figure(mpl, (9.6, 4.8))
        ax = fig.add_subplot()
        ax.axhspan(min(dense, limit), max(dense, limit), color="#2ca02c", alpha=0.12, lw=0,
                   label="within tolerance")
        ax.axhline(dense, color="0.4", lw=1, label=f"dense {dense:g}")
        ax.axhline(limit, color="#d62728", lw=1, ls="--", label=f"tolerance limit {limit:.4g}")
        for line in lines:
            ls, marker = VARIANT_STYLES[line["variant"]]
            ax.plot(line["ratios"], line["metrics"], ls=ls, marker=marker, ms=4, lw=1.5,
                    color=METHOD_COLORS[line["method"]], label=f"{line['label']} ({line['variant']})")
        ax.set_xscale("log", base=2)
        _log2_axis(mpl, ax.xaxis, [r for line in lines for r in line["ratios"]])
        ax.set_xlabel("pruning ratio achieved (total / kept weights, log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        _save(fig, path)
    _draw(draw)


def density_histogram(path, densities, *, name, ratio):
    """Histogram of row densities (kept / columns) after the irregular pass."""
    d = np.asarray(densities, dtype=np.float64)

    def draw(mpl):
        fig = _figure(mpl, (6.4, 4.0))
        ax = fig.add_subplot()
        bins = int(min(40, max(10, d.size // 4)))
        ax.hist(d, bins=bins, range=(0.0, max(float(d.max()), 1.0 / ratio) * 1.05 or 1.0), color="#1f77b4")
        ax.axvline(1.0 / ratio, color="#d62728", ls="--", lw=1, label=f"matrix density 1/{ratio:g}")
        ax.set_xlabel("row density after irregular pruning (kept / columns)")
        ax.set_ylabel("rows")
        ax.set_title(f"{name}: row densities at {ratio:g}x", fontsize="medium")
        ax.legend(fontsize="small")
        fig.tight_layout()
        _save(fig, path)
    _draw(draw)


def block_sizes(path, sizes, *, name, ratio):
    """DARB block size of every row (left) and how many rows use each size (right)."""
    b = np.asarray(sizes, dtype=np.int64)
    values, counts = np.unique(b, return_counts=True)

    def draw(mpl):
        fig = _figure(mpl, (9.6, 3.8))
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
        left.plot(np.arange(b.size), b, ls="none", marker=".", ms=3, color="#2ca02c")
        left.set_yscale("log", base=2)
        _log2_axis(mpl, left.yaxis, b)
        left.set_xlabel("row")
        left.set_ylabel("block size")
        left.set_title(f"{name}: DARB block size per row at {ratio:g}x", fontsize="medium")
        left.grid(True, alpha=0.3)
        labels = [str(int(v)) for v in values]
        right.bar(labels, counts, color="#2ca02c")
        right.set_xlabel("block size")
        right.set_ylabel("rows")
        right.set_title("rows per block size", fontsize="medium")
        fig.tight_layout()
        _save(fig, path)
    _draw(draw)


def mask_images(path, images, *, name):
    """Masks side by side. ``images``: list of (title, 2-D array in [0, 1], (rows, cols) of the matrix);
    1 (black) = kept. A downsampled image is stretched over the matrix's own row and column numbers."""
    def draw(mpl):
        fig = _figure(mpl, (4.0 * len(images), 4.0))
        axes = fig.subplots(1, len(images), squeeze=False)[0]
        for ax, (title, image, (rows, cols)) in zip(axes, images):
            ax.imshow(np.asarray(image, dtype=np.float64), cmap="Greys", vmin=0.0, vmax=1.0,
                      interpolation="nearest", aspect="auto", extent=(0, cols, rows, 0))
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel("column")
            ax.set_ylabel("row")
        fig.suptitle(f"{name}: kept weights (black)", fontsize="medium")
        fig.tight_layout()
        _save(fig, path)
    _draw(draw)
