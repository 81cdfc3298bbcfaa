"""A sweep's figures (matplotlib, Agg): a metric-vs-metric scatter with the Pareto front
highlighted, and empirical distribution functions of a metric across the space, one
curve per value of a grouping parameter (as the RegNet paper compares design spaces).

Sized for a paper column (3.4 x 2.6 in), 8-9 pt text; an axis spanning more than
30x is logarithmic.  Written atomically, format from the suffix (PNG at 200 dpi, SVG, PDF).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

#: axis labels of the metrics
LABELS = {"params": "parameters", "macs": "MACs", "activation_bytes": "activations (bytes)",
          "peak_activation_bytes": "peak activation memory (bytes)", "rf": "receptive field (px)",
          "layers": "layers", "latency_ms": "latency (ms)",
          "training_bytes": "training memory (bytes)"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
                         "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
                         "svg.hashsalt": "cnnir", "figure.dpi": 100})
    return plt


def _save(fig: Any, path: str) -> str:
    from .util import write_atomic

    buf = io.BytesIO()
    fmt = os.path.splitext(path)[1].lstrip(".")
    meta = {"Software": None} if fmt == "png" else ({"Date": None} if fmt == "svg" else None)
    fig.savefig(buf, format=fmt, dpi=200, bbox_inches="tight", metadata=meta)
    write_atomic(path, buf.getvalue())
    return path


#: metrics labelled with SI prefixes (4 G rather than 4e9)
_ENG = {"params", "macs", "activation_bytes", "peak_activation_bytes", "training_bytes"}


def _scale(ax: Any, axis: str, values: Sequence[float], metric: str = "") -> None:
    from matplotlib.ticker import EngFormatter

    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if metric in _ENG:
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(EngFormatter(sep=" "))


def _groups(rows: Sequence[dict[str, Any]], group: str | None) -> list[tuple[Any, list[int]]]:
    if group is None:
        return [(None, list(range(len(rows))))]
    out: dict[Any, list[int]] = {}
    for i, r in enumerate(rows):
        out.setdefault(r.get(group), []).append(i)
    return sorted(out.items(), key=lambda kv: (str(type(kv[0])), kv[0]))


def scatter(rows: Sequence[dict[str, Any]], x: str, y: str, front: Sequence[int], path: str,
            group: str | None = None, title: str | None = None) -> str:
    """``y`` against ``x`` for every costed row, the front's points joined and ringed."""
    plt = _plt()
    ok = [i for i, r in enumerate(rows) if r.get(x) is not None and r.get(y) is not None]
    fig, ax = plt.subplots(figsize=(3.4, 2.6))
    sub = [rows[i] for i in ok]
    for label, members in _groups(sub, group):
        ax.scatter([sub[i][x] for i in members], [sub[i][y] for i in members], s=9,
                   alpha=0.55, linewidths=0, label=None if group is None else f"{group}={label}")
    pts = sorted((rows[i][x], rows[i][y]) for i in front if i in set(ok))
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="black", lw=0.9,
                zorder=3)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, facecolors="none",
                   edgecolors="crimson", linewidths=1.0, zorder=4,
                   label=f"Pareto front ({len(pts)})")
    _scale(ax, "x", [sub[i][x] for i in range(len(sub))], x)
    _scale(ax, "y", [sub[i][y] for i in range(len(sub))], y)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{len(sub)} variants")
    ax.grid(True, which="major", lw=0.3, alpha=0.5)
    ax.legend(frameon=False, loc="best")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def edf(rows: Sequence[dict[str, Any]], metric: str, path: str, group: str | None = None,
        title: str | None = None) -> str:
    """The empirical distribution function of ``metric``: the fraction of variants at or
    below each value; one curve per value of ``group``."""
    import numpy as np

    plt = _plt()
    sub = [r for r in rows if r.get(metric) is not None]
    fig, ax = plt.subplots(figsize=(3.4, 2.6))
    for label, members in _groups(sub, group):
        v = np.sort(np.array([float(sub[i][metric]) for i in members]))
        frac = np.arange(0, len(v) + 1) / len(v)
        name = "all" if group is None else f"{group}={label}"
        ax.step(np.concatenate([v[:1], v]), frac, where="post", lw=1.1,
                label=f"{name} (n={len(v)})")
    _scale(ax, "x", [float(r[metric]) for r in sub], metric)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(LABELS.get(metric, metric))
    ax.set_ylabel("cumulative prob.")
    ax.set_title(title or f"EDF of {LABELS.get(metric, metric)}")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(frameon=False, loc="upper left")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def draw_all(res: Any, formats: Sequence[str], edf_metrics: Sequence[str],
             group: str | None) -> list[str]:
    """Every figure of a :class:`~cnnir.sweep.SweepResult` in every format; the paths."""
    ok = [r for r in res.rows if r.get("error") is None]
    front_metrics = list(res.pareto_metrics) or ["macs", "params"]
    x, y = (front_metrics + ["params"])[:2] if len(front_metrics) < 2 else front_metrics[:2]
    if x == y:
        y = "params" if x != "params" else "macs"
    front = res.pareto if res.pareto_metrics[:2] == [x, y] else []
    ok_index = [i for i, r in enumerate(res.rows) if r.get("error") is None]
    remap = {old: new for new, old in enumerate(ok_index)}
    front_ok = [remap[i] for i in front if i in remap]
    files = []
    for fmt in formats:
        files.append(scatter(ok, x, y, front_ok, os.path.join(res.output, f"scatter_{x}_{y}.{fmt}"),
                             group=group))
        for m in edf_metrics or [x]:
            files.append(edf(ok, m, os.path.join(res.output, f"edf_{m}.{fmt}"), group=group))
    return files


__all__ = ["scatter", "edf", "draw_all", "LABELS"]
