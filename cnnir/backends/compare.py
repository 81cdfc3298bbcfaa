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

``cnnir compare A B [C ...]`` (:func:`compare_models`) puts models side by side:
the metrics, the receptive field of each output (``RF (output)``), and one group of
rows per stage position (``stage 1``: each model's first stage, its params, MACs and
output; a model with fewer stages is blank there), then the layers outside every
stage, so the stage rows add up to the totals.  A stage is a top-level block
(:func:`stage_of`).  JSON adds ``rf``, ``stages`` and ``outside_stages`` to each
model; CSV rows are ``rf``, ``stages``, ``stage<i>``, ``stage<i>.params``,
``stage<i>.macs``, ``stage<i>.output``, ``outside.params``, ``outside.macs`` (exact).
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


@dataclass(frozen=True)
class Stage:
    """One stage of a model: its layers' params, buffers and MACs, and its output."""

    name: str
    kind: str
    params: int
    buffers: int
    macs: int
    output: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": self.params,
                "buffers": self.buffers, "macs": self.macs, "output": list(self.output)}


def stage_of(graph: Graph, scope: tuple[str, ...]) -> tuple[str, ...] | None:
    """The stage a layer of ``scope`` belongs to: the ``stage`` its top-level block
    was built in (DSL ``with stage(...)``: GoogLeNet's ``inception4`` holds 4a..4e),
    else the top-level block itself (None: a layer outside every block, such as the
    input or a classifier written at top level).  The one place that decides it."""
    if not scope:
        return None
    info = graph.blocks.get(scope[:1])
    if info is not None and info.stage:
        return (info.stage,)
    return scope[:1]


def stages(graph: Graph) -> tuple[list[Stage], Stage]:
    """The stages of ``graph`` in the order their first layer runs, and the layers
    outside every stage summed as one ``Stage`` (name ``""``), so that the stages
    plus the rest add up to the model's totals.  Reads ``count-params`` and
    ``count-macs`` results (:func:`measure` runs them)."""
    acc: dict[tuple[str, ...] | None, list[Any]] = {}
    for v in graph.walk():
        key = stage_of(graph, v.scope)
        a = acc.setdefault(key, [0, 0, 0, ()])
        p, c = v.meta["params"], v.meta["cost"]
        a[0] += p["params"]
        a[1] += p["buffers"]
        a[2] += c["macs"]
        a[3] = tuple(v.meta["shape"])
    out = []
    for key, (params, buffers, macs, shape) in acc.items():
        if key is None:
            continue
        info = graph.blocks.get(key)
        is_stage = info is None and any(b.stage == key[0] for b in graph.blocks.values())
        out.append(Stage("/".join(key), "stage" if is_stage else
                         info.kind if info is not None else "scope",
                         params, buffers, macs, shape))
    rest = acc.get(None, [0, 0, 0, ()])
    return out, Stage("", "", rest[0], rest[1], rest[2], tuple(rest[3]))


@dataclass
class Models:
    """``cnnir compare A B [C ...]``: the :data:`METRICS` of several models side by side,
    the receptive field of each model's output, and the models' stages (their
    top-level blocks, :func:`stages`) row by row, aligned by position."""

    names: list[str]
    inputs: list[tuple[int, ...]]
    figures: list[dict[str, int]]
    batch: int = 1
    dtype: str = "float32"
    format: str = "table"  #: the format ``str(m)`` renders
    standalone: bool = False  #: LaTeX: a whole document rather than the table fragment
    #: each model's receptive field at its (first) output; None where unknown
    rfs: list[Any] = field(default_factory=list)
    #: each model's stages, and the layers outside them
    stages: list[list[Stage]] = field(default_factory=list)
    rests: list[Stage] = field(default_factory=list)

    def render(self, fmt: str | None = None) -> str:
        fmt = self.format if fmt is None else fmt
        if fmt not in MODEL_RENDERERS:
            raise UsageError(f"unknown format {fmt!r}; formats: {', '.join(MODEL_RENDERERS)}")
        return MODEL_RENDERERS[fmt](self)

    def __str__(self) -> str:
        return self.render()

    def to_dict(self) -> dict[str, Any]:
        models = []
        for i, (n, inp, f) in enumerate(zip(self.names, self.inputs, self.figures)):
            d: dict[str, Any] = {"name": n, "input": list(inp), **f}
            if i < len(self.rfs):
                rf = self.rfs[i]
                d["rf"] = rf.to_dict() if rf is not None else None
            if i < len(self.stages):
                d["stages"] = [st.to_dict() for st in self.stages[i]]
                d["outside_stages"] = {k: v for k, v in self.rests[i].to_dict().items()
                                       if k in ("params", "buffers", "macs")}
            models.append(d)
        return {"batch": self.batch, "dtype": self.dtype, "models": models}


def _output_rf(graph: Graph) -> Any:
    from ..errors import CnnirError

    try:
        get_pass("receptive-field").run(graph)
    except CnnirError:  # an op without an RF rule: the row says so, nothing is guessed
        return None
    return graph.meta(graph.outputs[0]).get("rf") if graph.outputs else None


def compare_models(graphs: list[Graph], dtype: str = "float32", batch: int = 1) -> Models:
    """Measure each graph (shapes inferred) by the analysis passes; its stages too."""
    figures = [measure(g, dtype, batch) for g in graphs]
    split = [stages(g) for g in graphs]
    return Models([g.name for g in graphs], [tuple(g.input_shape) for g in graphs],
                  figures, batch, dtype, rfs=[_output_rf(g) for g in graphs],
                  stages=[s for s, _ in split], rests=[r for _, r in split])


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _stage_rows(m: Models, exact: bool) -> list[tuple[str, list[str]]]:
    """(metric id, cells): per stage position a name row, then params and MACs (and
    the output), then the layers outside every stage.  ``exact``: plain integers."""
    def num(metric: str, v: int) -> str:
        return str(v) if exact else _fmt(metric, v)

    rows: list[tuple[str, list[str]]] = []
    if not any(m.stages):
        return rows
    rows.append(("stages", [str(len(st)) for st in m.stages]))
    for i in range(max(len(st) for st in m.stages)):
        at = [st[i] if i < len(st) else None for st in m.stages]
        rows.append((f"stage{i + 1}", [s.name if s else "" for s in at]))
        rows.append((f"stage{i + 1}.params", [num("params", s.params) if s else "" for s in at]))
        rows.append((f"stage{i + 1}.macs", [num("macs", s.macs) if s else "" for s in at]))
        rows.append((f"stage{i + 1}.output", [_shape_text(s.output) if s else "" for s in at]))
    rows.append(("outside.params", [num("params", r.params) for r in m.rests]))
    rows.append(("outside.macs", [num("macs", r.macs) for r in m.rests]))
    return rows


def _stage_label(metric: str) -> str:
    """``stage2`` -> ``stage 2``, ``stage2.params`` -> ``  params``."""
    if metric == "stages":
        return "stages"
    head, _, what = metric.partition(".")
    if head == "outside":
        return f"outside stages: {METRICS[what][0]}"
    return f"  {METRICS[what][0]}" if what in METRICS else (
        "  output" if what == "output" else f"stage {head[len('stage'):]}")


def _model_rows(m: Models) -> list[list[str]]:
    rows = [["input", *("x".join(map(str, i)) for i in m.inputs)]]
    rows += [[METRICS[k][0], *(_fmt(k, f[k]) for f in m.figures)] for k in METRICS]
    if m.rfs:
        rows.append(["RF (output)", *(str(rf) if rf is not None else "n/a" for rf in m.rfs)])
    rows += [[_stage_label(k), *cells] for k, cells in _stage_rows(m, exact=False)]
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
    rf = [["rf", *(str(r) if r is not None else "" for r in m.rfs)]] if m.rfs else []
    return csv_text([["metric", *m.names],
                     ["input", *("x".join(map(str, i)) for i in m.inputs)],
                     *([k, *(f[k] for f in m.figures)] for k in METRICS),
                     *rf, *([k, *cells] for k, cells in _stage_rows(m, exact=True))])


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
    shapes = {0} | {i for i, row in enumerate(_model_rows(m))
                    if row[0] == "  output" or row[0] == "RF (output)"}
    body += [tex_row((tex_escape(c).replace("x", r"$\times$") if i in shapes and j else
                      tex_escape(c).replace("  ", r"\quad ", 1) if j == 0 else tex_escape(c))
                     for j, c in enumerate(row))
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


__all__ = ["METRICS", "Comparison", "Models", "Stage", "stages", "stage_of", "measure",
           "compare", "compare_models", "render"]
