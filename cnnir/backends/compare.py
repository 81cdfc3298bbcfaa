"""``cnnir report MODEL --compare PIPELINE``: what a pass pipeline changes, in numbers.

The model (after ``--passes``, when given) is the *before* graph; the *after*
graph is before + ``PIPELINE``.  Both are measured by the analysis passes
``count-params``, ``count-macs`` and ``memory`` (with ``--dtype`` and ``--batch``):

=====================  ===========================================================
metric                 meaning
=====================  ===========================================================
layers                 nodes other than the input
params                 trainable parameters, biases and BN affine parameters included
buffers                non-trainable state (BatchNorm running statistics)
macs                   multiply-accumulates (conv, transposed conv, linear)
other_ops              elementwise arithmetic (bias, BN, activations, pools...)
param_bytes            parameters and buffers at ``--dtype``
activation_bytes       every layer's output, summed (batch included)
peak_activation_bytes  the peak of an inference pass that frees after last use
=====================  ===========================================================

Formats: ``table`` (human numbers, delta and percentage), ``md``, ``latex``, and for
scripts ``json`` (exact integers)::

    {"model": str, "pipeline": str, "input": [C,H,W], "batch": int, "dtype": str,
     "before": {metric: int}, "after": {metric: int}, "delta": {metric: int}}

and ``csv`` (``metric,before,after,delta``).  ``--explain`` prints what each pass of
the pipeline did (stderr); ``-o`` writes atomically.  Light: no torch, no onnx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..analysis import layer_count
from ..errors import UsageError
from ..ir import Graph
from ..passes import get_pass
from ..passes.manager import PassManager, PassRecord
from ..util import human, human_bytes
from .tables import (
    csv_text,
    md_escape,
    md_row,
    md_rule,
    tex_document,
    tex_escape,
    tex_row,
    tex_spec,
    text_table,
)

#: metric id -> (label, kind: "count" or "bytes")
METRICS: dict[str, tuple[str, str]] = {
    "layers": ("layers", "count"),
    "params": ("params", "count"),
    "buffers": ("buffers", "count"),
    "macs": ("MACs", "count"),
    "other_ops": ("other ops", "count"),
    "param_bytes": ("param memory", "bytes"),
    "activation_bytes": ("activations (sum)", "bytes"),
    "peak_activation_bytes": ("peak activations", "bytes"),
}


def measure(graph: Graph, dtype: str = "float32", batch: int = 1) -> dict[str, int]:
    """The :data:`METRICS` of ``graph`` (shapes inferred), by the analysis passes."""
    params = get_pass("count-params")
    params.run(graph)
    macs = get_pass("count-macs", batch=batch)
    macs.run(graph)
    mem = get_pass("memory", dtype=dtype, batch=batch)
    mem.run(graph)
    return {
        "layers": layer_count(graph),
        "params": params.total_params,  # type: ignore[attr-defined]
        "buffers": params.total_buffers,  # type: ignore[attr-defined]
        "macs": macs.total_macs,  # type: ignore[attr-defined]
        "other_ops": macs.total_other_ops,  # type: ignore[attr-defined]
        "param_bytes": mem.param_bytes,  # type: ignore[attr-defined]
        "activation_bytes": mem.activation_bytes,  # type: ignore[attr-defined]
        "peak_activation_bytes": mem.peak_bytes,  # type: ignore[attr-defined]
    }


@dataclass
class Comparison:
    """Before / after figures of one pipeline on one model."""

    model: str
    pipeline: str
    input: tuple[int, ...]
    batch: int
    dtype: str
    before: dict[str, int]
    after: dict[str, int]
    records: list[PassRecord] = field(default_factory=list)
    graph: Graph | None = None  #: the graph after the pipeline
    format: str = "table"  #: the format ``str(c)`` renders
    standalone: bool = False  #: LaTeX: a whole document rather than the table fragment

    def render(self, fmt: str | None = None) -> str:
        """The comparison as text in ``fmt`` (default: :attr:`format`)."""
        return render(self, self.format if fmt is None else fmt)

    def __str__(self) -> str:
        return self.render()

    @property
    def delta(self) -> dict[str, int]:
        return {k: self.after[k] - self.before[k] for k in METRICS}


def compare(graph: Graph, pipeline: str, dtype: str = "float32", batch: int = 1) -> Comparison:
    """Run ``pipeline`` on ``graph`` and measure both (``graph`` itself is not rewritten)."""
    pm = PassManager.from_string(pipeline)
    after = pm.run(graph)
    before_figures = measure(graph, dtype, batch)
    after_figures = measure(after, dtype, batch)
    return Comparison(graph.name, pipeline, tuple(graph.input_shape), batch, dtype,
                      before_figures, after_figures, list(pm.records), after)


# --------------------------------------------------------------------------- rendering


def _fmt(metric: str, value: int, signed: bool = False) -> str:
    kind = METRICS[metric][1]
    text = human_bytes(abs(value)) if kind == "bytes" else human(abs(value))
    if value < 0:
        return "-" + text
    return ("+" + text) if signed and value > 0 else text


def _percent(before: int, after: int) -> str:
    if before == after:
        return "0%"
    if before == 0:
        return "new"
    pct = (after - before) / before * 100
    return f"{pct:+.2f}%" if abs(pct) < 0.1 else f"{pct:+.1f}%"


def _rows(c: Comparison) -> list[list[str]]:
    d = c.delta
    return [[METRICS[k][0], _fmt(k, c.before[k]), _fmt(k, c.after[k]), _fmt(k, d[k], True),
             _percent(c.before[k], c.after[k])] for k in METRICS]


HEADERS = ["metric", "before", "after", "delta", "change"]
_RIGHT = [False, True, True, True, True]  # the metric's name left, its numbers right


def _title(c: Comparison) -> str:
    shape = "x".join(map(str, c.input))
    return f"{c.model} + {c.pipeline}: input {shape}, batch {c.batch}, {c.dtype}"


def render_table(c: Comparison) -> str:
    lines = text_table(HEADERS, _RIGHT, _rows(c))
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if c.before == c.after:  # an all-zero delta table says nothing by itself
        lines.append("no change (see --explain)")
    return "\n".join([_title(c), *lines]) + "\n"


def to_json(c: Comparison) -> dict[str, Any]:
    return {"model": c.model, "pipeline": c.pipeline, "input": list(c.input),
            "batch": c.batch, "dtype": c.dtype, "before": dict(c.before),
            "after": dict(c.after), "delta": c.delta}


def render_json(c: Comparison) -> str:
    return json.dumps(to_json(c), indent=2) + "\n"


def render_csv(c: Comparison) -> str:
    d = c.delta
    return csv_text([["metric", "before", "after", "delta"],
                     *([k, c.before[k], c.after[k], d[k]] for k in METRICS)])


def render_md(c: Comparison) -> str:
    lines = [f"**{_title(c)}**", "", md_row(HEADERS), md_rule(_RIGHT)]
    lines += [md_row(md_escape(cell) for cell in row) for row in _rows(c)]
    return "\n".join(lines) + "\n"


def render_latex(c: Comparison) -> str:
    body = [r"\begin{table}", r"\centering", rf"\caption{{{tex_escape(_title(c))}}}",
            rf"\begin{{tabular}}{{{tex_spec(_RIGHT)}}}", r"\toprule", tex_row(HEADERS),
            r"\midrule"]
    body += [tex_row(tex_escape(cell) for cell in row) for row in _rows(c)]
    body += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return tex_document(["booktabs"], body, c.standalone)


# --------------------------------------------------------------------------- models side by side


@dataclass
class Models:
    """``cnnir compare A B [C ...]``: the :data:`METRICS` of several models side by side."""

    names: list[str]
    inputs: list[tuple[int, ...]]
    figures: list[dict[str, int]]
    batch: int = 1
    dtype: str = "float32"
    format: str = "table"  #: the format ``str(m)`` renders
    standalone: bool = False  #: LaTeX: a whole document rather than the table fragment

    def render(self, fmt: str | None = None) -> str:
        fmt = self.format if fmt is None else fmt
        if fmt not in MODEL_RENDERERS:
            raise UsageError(f"unknown format {fmt!r}; formats: {', '.join(MODEL_RENDERERS)}")
        return MODEL_RENDERERS[fmt](self)

    def __str__(self) -> str:
        return self.render()

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "dtype": self.dtype,
                "models": [{"name": n, "input": list(i), **f}
                           for n, i, f in zip(self.names, self.inputs, self.figures)]}


def compare_models(graphs: list[Graph], dtype: str = "float32", batch: int = 1) -> Models:
    """Measure each graph (shapes inferred) by the analysis passes."""
    return Models([g.name for g in graphs], [tuple(g.input_shape) for g in graphs],
                  [measure(g, dtype, batch) for g in graphs], batch, dtype)


def _model_rows(m: Models) -> list[list[str]]:
    rows = [["input", *("x".join(map(str, i)) for i in m.inputs)]]
    rows += [[METRICS[k][0], *(_fmt(k, f[k]) for f in m.figures)] for k in METRICS]
    return rows


def _model_title(m: Models) -> str:
    return f"{' vs '.join(m.names)}: batch {m.batch}, {m.dtype}"


def _models_table(m: Models) -> str:
    right = [False] + [True] * len(m.names)
    lines = text_table(["metric", *m.names], right, _model_rows(m))
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join([_model_title(m), *lines]) + "\n"


def _models_csv(m: Models) -> str:
    return csv_text([["metric", *m.names],
                     ["input", *("x".join(map(str, i)) for i in m.inputs)],
                     *([k, *(f[k] for f in m.figures)] for k in METRICS)])


def _models_md(m: Models) -> str:
    right = [False] + [True] * len(m.names)
    lines = [f"**{md_escape(_model_title(m))}**", "", md_row(md_escape(h) for h in
                                                             ["metric", *m.names]),
             md_rule(right)]
    lines += [md_row(md_escape(c) for c in row) for row in _model_rows(m)]
    return "\n".join(lines) + "\n"


def _models_latex(m: Models) -> str:
    right = [False] + [True] * len(m.names)
    body = [r"\begin{table}", r"\centering", rf"\caption{{{tex_escape(_model_title(m))}}}",
            rf"\begin{{tabular}}{{{tex_spec(right)}}}", r"\toprule",
            tex_row(tex_escape(h) for h in ["metric", *m.names]), r"\midrule"]
    body += [tex_row(tex_escape(c).replace("x", r"$\times$") if i == 0 and j else
                     tex_escape(c) for j, c in enumerate(row))
             for i, row in enumerate(_model_rows(m))]
    body += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return tex_document(["booktabs"], body, m.standalone)


MODEL_RENDERERS: dict[str, Callable[[Models], str]] = {
    "table": _models_table, "json": lambda m: json.dumps(m.to_dict(), indent=2) + "\n",
    "csv": _models_csv, "md": _models_md, "latex": _models_latex,
}


RENDERERS: dict[str, Callable[[Comparison], str]] = {
    "table": render_table, "json": render_json, "csv": render_csv, "md": render_md,
    "latex": render_latex,
}


def render(c: Comparison, fmt: str = "table") -> str:
    if fmt not in RENDERERS:
        raise UsageError(f"unknown format {fmt!r}; formats: {', '.join(RENDERERS)}")
    return RENDERERS[fmt](c)


__all__ = ["METRICS", "Comparison", "Models", "measure", "compare", "compare_models",
           "render"]
