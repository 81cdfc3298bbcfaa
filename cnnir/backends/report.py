"""Reports: one data model (rows + totals) rendered as a table, JSON, CSV, Markdown, LaTeX.

:func:`build_report` runs every analysis (:func:`cnnir.analysis.analyze`) and makes
a :class:`Report`: one :class:`Row` per layer in topological order, or, with
``depth=N``, rows grouped by block like torchinfo's depth: blocks down to ``N``
levels deep become subtotal rows, layers in scopes shallower than ``N`` keep a row
of their own, and everything deeper is folded into its block's subtotal.
``depth=0`` leaves the totals alone.

Formats (:func:`render`):

* ``table``: a terminal table (rich), numbers for humans (``25.56M``, ``4.09G``,
  ``97.49 MiB``), totals and a summary below.
* ``json``: the contract for scripts, exact integers::

    {"model": str, "input": [C,H,W], "batch": int,
     "totals": {"params", "buffers", "macs", "flops", "other_ops", "param_bytes",
                "activation_bytes", "peak_activation_bytes"},
     "layers": [{"name", "op", "attrs", "scope": [str], "loc": "file:line",
                 "output_shape", "params", "buffers", "macs", "flops", "other_ops",
                 "activation_bytes", "param_bytes",
                 "rf": {"size": [h,w], "min_size", "stride", "padding", "aligned", "whole"}}]}

  Every column of the table and the CSV is a field here (``docs/json-schema.md``).
  With ``--symbolic`` (``Report.symbolic``) the key ``"symbolic"`` holds the costs as
  polynomials in H, W and N (:mod:`cnnir.backends.symbolic_report`), and the table,
  Markdown and LaTeX append them after the totals.

  With ``--depth`` a block's row has ``"op": "block:<kind>"`` and subtotals; its
  output shape and RF are those of the block's last layer.  A stride that a
  transposed conv or upsampling made fractional is a float.
* ``csv``: one header line of column names, exact integers, shapes and RF pairs
  as ``HxW``, and a last row named ``total``.
* ``md``: a GitHub table, human numbers, the totals row in bold.
* ``latex``: a fragment to ``\\input{}`` in a paper (a ``booktabs`` ``longtable``, so a
  long network breaks across pages; its first line names the packages), or with
  ``standalone`` (``--standalone``) a complete document that compiles as is.

``--columns`` picks and orders columns (:data:`COLUMNS`) for every format but
JSON, whose layout is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..analysis import analyze
from ..errors import UsageError
from ..ir import Graph
from ..passes.receptive_field import RF
from ..util import human, human_bytes
from .jsontext import json_text
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

FORMATS = ("table", "json", "csv", "md", "latex")

#: column id -> (header, kind); kind says how a value is rendered
COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("Layer", "text"),
    "op": ("Op", "text"),
    "attrs": ("Attributes", "text"),
    "scope": ("Scope", "text"),
    "output": ("Output", "shape"),
    "params": ("Params", "count"),
    "buffers": ("Buffers", "count"),
    "macs": ("MACs", "count"),
    "flops": ("FLOPs", "count"),
    "other_ops": ("Other ops", "count"),
    "activations": ("Activations", "bytes"),
    "param_bytes": ("Param bytes", "bytes"),
    "rf": ("RF size/stride/pad", "text"),
    "rf_size": ("RF size", "pair"),
    "rf_min_size": ("RF min", "pair"),
    "rf_stride": ("RF stride", "pair"),
    "rf_padding": ("RF padding", "pair"),
    "rf_aligned": ("RF aligned", "bool"),
    "rf_whole": ("RF whole", "bool"),
    "loc": ("Source", "text"),
}

#: other spellings accepted by ``--columns``
ALIASES = {"output_shape": "output", "shape": "output", "activation_bytes": "activations",
           "memory": "activations", "layer": "name", "source": "loc", "other": "other_ops"}

DEFAULT_COLUMNS = {
    "table": ["name", "op", "output", "params", "macs", "flops", "other_ops", "activations",
              "rf", "loc"],
    "md": ["name", "op", "output", "params", "macs", "flops", "activations", "rf"],
    "latex": ["name", "op", "output", "params", "macs", "activations", "rf"],
    "csv": ["name", "op", "scope", "loc", "output", "params", "buffers", "macs", "flops",
            "other_ops", "activations", "param_bytes", "rf_size", "rf_min_size", "rf_stride",
            "rf_padding", "rf_aligned", "rf_whole"],
}


# --------------------------------------------------------------------------- data model


@dataclass
class Row:
    """One report row: a layer, or (with ``depth``) a block with subtotals."""

    name: str
    op: str
    attrs: str
    scope: tuple[str, ...]
    loc: str
    output_shape: tuple[int, ...]
    rf: RF | None
    indent: int = 0
    is_block: bool = False
    params: int = 0
    buffers: int = 0
    macs: int = 0
    flops: int = 0
    other_ops: int = 0
    activation_bytes: int = 0
    param_bytes: int = 0
    #: the layer's op and its input channels, for the words of a paper table
    #: (:func:`op_words`); None for a block
    layer_op: Any = field(default=None, repr=False, compare=False)
    in_channels: int | None = field(default=None, repr=False, compare=False)

    def add(self, meta: dict[str, Any]) -> None:
        p, c, m = meta["params"], meta["cost"], meta["memory"]
        self.params += p["params"]
        self.buffers += p["buffers"]
        self.macs += c["macs"]
        self.flops += c["flops"]
        self.other_ops += c["other_ops"]
        self.activation_bytes += m["activation_bytes"]
        self.param_bytes += m["param_bytes"]


@dataclass
class Report:
    """What every format renders: the model, its rows and its totals."""

    model: str
    input: tuple[int, ...]
    batch: int
    dtype: str
    rows: list[Row]
    totals: dict[str, int]
    notes: list[str] = field(default_factory=list)
    #: the columns :meth:`render` uses when given none (the format's default if None)
    columns: list[str] | None = None
    #: the format ``str(report)`` renders
    format: str = "table"
    #: the terminal's width: the table drops columns to fit it (:data:`DROP_TO_FIT`)
    width: int | None = None
    #: LaTeX: the fragment to ``\input{}`` (False) or a whole document (True)
    standalone: bool = False
    #: ``--symbolic``: the costs as formulas of H, W, N (:class:`cnnir.passes.symbolic.Symbolic`)
    symbolic: Any = None

    def render(self, fmt: str = "table", columns: str | list[str] | None = None) -> str:
        """The report as text: ``fmt`` one of :data:`FORMATS`; ``columns`` as ``--columns``
        (a comma-separated string or a list), else those the report was made with."""
        if fmt == "json":
            return render(self, "json")
        if columns is None and self.columns is not None:
            return render(self, fmt, list(self.columns))
        text = columns if columns is None or isinstance(columns, str) else ",".join(columns)
        return render(self, fmt, parse_columns(text, fmt))

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract as a dict (exact integers)."""
        return to_json(self)

    def __str__(self) -> str:
        return self.render(self.format)

    def _repr_html_(self) -> str:
        """Jupyter shows a report as an HTML table (human numbers, totals in bold)."""
        cols = list(self.columns) if self.columns else parse_columns(None, "md")
        return render_html(self, cols)


def build_report(graph: Graph, dtype: str = "float32", batch: int = 1,
                 depth: int | None = None) -> Report:
    """Analyse ``graph`` and collect its rows (grouped by block with ``depth``)."""
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    result = analyze(graph, dtype=dtype, batch=batch)
    rows: list[Row] = []
    blocks: dict[tuple[str, ...], Row] = {}
    for v in graph.walk():
        n, meta, scope = v.name, v.meta, v.scope
        if depth is not None:
            for level in range(1, min(len(scope), depth) + 1):
                path = scope[:level]
                row = blocks.get(path)
                if row is None:
                    info = graph.blocks.get(path)
                    loc = info.loc if info is not None else None
                    row = Row(name="/".join(path),
                              op=f"block:{info.kind if info is not None else 'scope'}",
                              attrs=_repeat_text(info), scope=path[:-1],
                              loc=str(loc) if loc else "", output_shape=meta["shape"],
                              rf=meta["rf"], indent=level - 1, is_block=True)
                    blocks[path] = row
                    rows.append(row)
                row.output_shape = meta["shape"]  # the block's last layer
                row.rf = meta["rf"]
                row.add(meta)
            if len(scope) >= depth:
                continue
        op, loc = v.op, v.loc
        ins = v.inputs
        first = graph.meta(ins[0]).get("shape") if ins else None
        row = Row(name=n, op=op.kind, attrs=op.attrs(), scope=scope,
                  loc=str(loc) if loc else "", output_shape=meta["shape"], rf=meta["rf"],
                  indent=len(scope) if depth is not None else 0, layer_op=op,
                  in_channels=first[0] if first else None)
        row.add(meta)
        rows.append(row)
    return Report(model=graph.name, input=tuple(graph.input_shape), batch=batch, dtype=dtype,
                  rows=rows, totals=result.totals(), notes=list(result.notes))


def _repeat_text(info: Any) -> str:
    if info is None or info.repeat is None:
        return ""
    _, index, count = info.repeat
    return f"{index + 1} of {count}" if count > 1 else ""  # a group of one is no repeat


# --------------------------------------------------------------------------- values


def _pair_text(p: tuple[Any, ...], sep: str = "x") -> str:
    """``(64, 112, 112)`` -> ``64x112x112``; a fractional RF value prints as a decimal."""
    return sep.join(str(v) if isinstance(v, int) else f"{float(v):g}" for v in p)


def _value(row: Row, col: str) -> Any:
    """The exact value of one cell (ints stay ints)."""
    rf = row.rf
    if col == "name":
        return row.name
    if col == "op":
        return row.op
    if col == "attrs":
        return row.attrs
    if col == "scope":
        return "/".join(row.scope)
    if col == "output":
        return _pair_text(tuple(row.output_shape))
    if col == "loc":
        return row.loc
    if col in ("params", "buffers", "macs", "flops", "other_ops", "param_bytes"):
        return getattr(row, col)
    if col == "activations":
        return row.activation_bytes
    if rf is None:
        return ""
    if col == "rf":
        return str(rf)
    if col == "rf_aligned":
        return rf.aligned
    if col == "rf_whole":
        return rf.whole
    return _pair_text(getattr(rf, col[3:]))


def _human(row: Row, col: str) -> str:
    value = _value(row, col)
    kind = COLUMNS[col][1]
    if kind == "count":
        return human(value)
    if kind == "bytes":
        return human_bytes(value)
    if kind == "bool":
        return "yes" if value else "no"
    return str(value)


def _total_cells(report: Report, columns: list[str], fmt: Callable[[str, int], str]) -> list[str]:
    t = report.totals
    by_col = {"params": t["params"], "buffers": t["buffers"], "macs": t["macs"],
              "flops": t["flops"], "other_ops": t["other_ops"],
              "activations": t["activation_bytes"], "param_bytes": t["param_bytes"]}
    cells = []
    for col in columns:
        if col == "name":
            cells.append("total")
        elif col in by_col:
            cells.append(fmt(col, by_col[col]))
        else:
            cells.append("")
    if columns and columns[0] != "name":
        cells[0] = cells[0] or "total"
    return cells


def _human_total(col: str, value: int) -> str:
    return human_bytes(value) if COLUMNS[col][1] == "bytes" else human(value)


def parse_columns(text: str | None, fmt: str) -> list[str]:
    """``--columns`` as column ids (aliases resolved); the format's default if None."""
    if text is None:
        return list(DEFAULT_COLUMNS.get(fmt, DEFAULT_COLUMNS["table"]))
    if fmt == "json":
        raise UsageError("--columns does not apply to --format json: its layout is fixed "
                         "(every layer has every field)")
    cols = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        name = ALIASES.get(name, name)
        if name not in COLUMNS:
            raise UsageError(f"unknown column {raw.strip()!r}; columns: {', '.join(COLUMNS)}")
        cols.append(name)
    if not cols:
        raise UsageError(f"--columns names no column; columns: {', '.join(COLUMNS)}")
    return cols


# --------------------------------------------------------------------------- formats


def to_json(report: Report) -> dict[str, Any]:
    """The JSON contract (see the module docstring)."""
    layers = []
    for r in report.rows:
        rf = r.rf.to_dict() if r.rf is not None else None
        layers.append({
            "name": r.name, "op": r.op, "attrs": r.attrs, "scope": list(r.scope), "loc": r.loc,
            "output_shape": list(r.output_shape), "params": r.params, "buffers": r.buffers,
            "macs": r.macs, "flops": r.flops, "other_ops": r.other_ops,
            "activation_bytes": r.activation_bytes, "param_bytes": r.param_bytes, "rf": rf,
        })
    out = {"model": report.model, "input": list(report.input), "batch": report.batch,
           "totals": dict(report.totals), "layers": layers}
    if report.symbolic is not None:
        out["symbolic"] = report.symbolic.to_dict()
    return out


def render_json(report: Report, columns: list[str] | None = None) -> str:
    return json_text(to_json(report)) + "\n"


def render_csv(report: Report, columns: list[str]) -> str:
    return csv_text([columns, *([_csv_cell(_value(r, c)) for c in columns] for r in report.rows),
                     _total_cells(report, columns, lambda c, v: str(v))])


def _csv_cell(v: Any) -> Any:
    return ("true" if v else "false") if isinstance(v, bool) else v


def _summary(report: Report) -> list[str]:
    t = report.totals
    return [
        f"params: {human(t['params'])} trainable ({t['params']:,}, biases included), "
        f"{human(t['buffers'])} buffers (BatchNorm running statistics)",
        f"MACs: {human(t['macs'])} ({t['macs']:,}); FLOPs = 2 x MACs: {human(t['flops'])}; "
        f"other ops: {human(t['other_ops'])}",
        f"memory ({report.dtype}, batch {report.batch}): parameters "
        f"{human_bytes(t['param_bytes'])}, activations {human_bytes(t['activation_bytes'])} "
        f"in all, peak {human_bytes(t['peak_activation_bytes'])} (freeing after last use)",
    ]


def _title(report: Report) -> str:
    return (f"{report.model}: input {_pair_text(report.input)}, batch {report.batch}, "
            f"{report.dtype}")


def _right(columns: list[str]) -> list[bool]:
    """Numbers and shapes right-aligned."""
    return [COLUMNS[c][1] in ("count", "bytes", "shape") for c in columns]


def _cells(report: Report, columns: list[str], indent: str,
           escape: Callable[[str, str], str] | None = None) -> list[list[str]]:
    """Each row's human cells (``escape``d for the format), the first indented by
    block depth when it is the name."""
    rows = []
    for r in report.rows:
        cells = [_human(r, c) if escape is None else escape(c, _human(r, c)) for c in columns]
        if columns[0] == "name" and r.indent:
            cells[0] = indent * r.indent + cells[0]
        rows.append(cells)
    return rows


#: the columns a table too wide for ``Report.width`` drops, first to last; the name,
#: op, output, params and MACs always stay
DROP_TO_FIT = ("loc", "scope", "attrs", "other_ops", "flops", "param_bytes", "buffers",
               "rf_min_size", "rf_padding", "rf_aligned", "rf_whole", "rf_stride", "rf",
               "rf_size", "activations")


def render_table(report: Report, columns: list[str]) -> str:
    """The terminal table; with :attr:`Report.width`, columns of :data:`DROP_TO_FIT`
    are dropped until it fits (then long layer names lose their start to an
    ellipsis), a last line names what was left out, and the summary is wrapped."""
    if not report.rows:  # --depth 0: the totals alone, no empty table
        return "\n".join([_title(report), "", *_summary(report), *report.notes]) + "\n"
    lines = _table_lines(report, columns)
    tail = [*_summary(report), *report.notes]
    width = report.width
    if width is None:
        return "\n".join([*lines, *tail]) + "\n"
    dropped: list[str] = []
    for col in DROP_TO_FIT:
        if _widest(lines) <= width:
            break
        if col in columns and len(columns) > 1:
            columns = [c for c in columns if c != col]
            dropped.append(col)
            lines = _table_lines(report, columns)
    cut = ""
    if _widest(lines) > width and columns[0] == "name":
        longest = max(len(r.name) + 2 * r.indent for r in report.rows)
        keep = max(12, longest - (_widest(lines) - width))
        if keep < longest:
            lines = _table_lines(report, columns, name_width=keep)
            cut = f"layer names cut to their last {keep - 1} characters"
    said = []
    if dropped:
        said.append("not shown: " + ", ".join(COLUMNS[c][0] for c in dropped))
    if cut:
        said.append(cut)
    if said:
        tail.append(f"(to fit {width} columns, {'; '.join(said)}; --columns or a wider "
                    f"terminal shows them)")
    import textwrap

    tail = [w for t in tail for w in (textwrap.wrap(t, width, subsequent_indent="  ")
                                       or [""])]
    return "\n".join([*lines, *tail]) + "\n"


def _widest(lines: list[str]) -> int:
    return max((len(line) for line in lines), default=0)


def _table_lines(report: Report, columns: list[str], name_width: int | None = None
                 ) -> list[str]:
    cells = _cells(report, columns, "  ")
    if name_width is not None:
        for row in cells:
            if len(row[0]) > name_width:
                row[0] = "\u2026" + row[0][-(name_width - 1):]
    return text_table([COLUMNS[c][0] for c in columns], _right(columns), cells,
                      title=_title(report),
                      footer=_total_cells(report, columns, _human_total),
                      bold=[r.is_block for r in report.rows])


def render_md(report: Report, columns: list[str]) -> str:
    lines = [f"**{md_escape(report.model)}**: input {_pair_text(report.input)}, "
             f"batch {report.batch}, {report.dtype}", "",
             md_row(COLUMNS[c][0] for c in columns), md_rule(_right(columns))]
    for r, cells in zip(report.rows, _cells(report, columns, "&emsp;", lambda c, t: md_escape(t))):
        lines.append(md_row(f"**{c}**" if c and r.is_block else c for c in cells))
    totals = _total_cells(report, columns, _human_total)
    lines.append(md_row(f"**{c}**" if c else "" for c in totals))
    lines.append("")
    lines.extend(f"- {md_escape(s)}" for s in _summary(report))
    return "\n".join(lines) + "\n"


def render_html(report: Report, columns: list[str]) -> str:
    """An HTML table (for notebooks): the Markdown report's cells, escaped."""
    from html import escape

    def cell(tag: str, text: str, col: str, bold: bool = False) -> str:
        right = _right([col])[0]
        style = ' style="text-align:right"' if right else ' style="text-align:left"'
        body = escape(text)
        return f"<{tag}{style}>{'<b>' + body + '</b>' if bold and body else body}</{tag}>"

    out = [f"<p><b>{escape(report.model)}</b>: input {_pair_text(report.input)}, "
           f"batch {report.batch}, {report.dtype}</p>", "<table>",
           "<thead><tr>" + "".join(cell("th", COLUMNS[c][0], c) for c in columns)
           + "</tr></thead>", "<tbody>"]
    for r in report.rows:
        cells = [_human(r, c) for c in columns]
        html_cells = [cell("td", v, c, r.is_block) for v, c in zip(cells, columns)]
        if columns[0] == "name" and r.indent:
            html_cells[0] = html_cells[0].replace(">", ">" + "&emsp;" * r.indent, 1)
        out.append("<tr>" + "".join(html_cells) + "</tr>")
    totals = _total_cells(report, columns, _human_total)
    out.append("<tr>" + "".join(cell("td", v, c, True) for v, c in zip(totals, columns))
               + "</tr>")
    out += ["</tbody>", "</table>", "<ul>"]
    out += [f"<li>{escape(s)}</li>" for s in _summary(report)]
    out.append("</ul>")
    return "\n".join(out) + "\n"


def _tex_cell(col: str, text: str) -> str:
    out = tex_escape(text)
    if COLUMNS[col][1] in ("shape", "pair"):
        out = out.replace("x", r"$\times$")
    return out


def op_words(row: Row) -> str:
    """What a paper table's op column says: a layer's words as the diagrams write
    them (``conv 3×3/2``, ``global avg pool``, ``BN``, ``FC``), a block's kind in
    words (``inverted residual``; a plain ``scope`` block: its own name without the
    number, ``layer1`` -> ``layer``)."""
    if row.layer_op is None:
        kind = row.op[len("block:"):] if row.op.startswith("block:") else row.op
        if kind == "scope":
            leaf = row.name.rsplit("/", 1)[-1]
            kind = re.sub(r"[_\-]?\d+$", "", leaf) or leaf
        return kind.replace("_", " ")
    from .dot import op_title  # the diagram's words; imported only for paper tables

    return op_title(row.layer_op, "standard", row.in_channels).replace("_", " ")


def _tex_words(text: str) -> str:
    return tex_escape(text).replace("×", r"$\times$")


def render_latex(report: Report, columns: list[str]) -> str:
    shape = _pair_text(report.input)  # the caption writes 3$\times$224$\times$224 as the cells
    caption = tex_escape(_title(report)).replace(shape, _tex_cell("output", shape), 1)
    header = tex_row(tex_escape(COLUMNS[c][0]) for c in columns)
    body = [
        r"{\small",
        rf"\begin{{longtable}}{{{tex_spec(_right(columns))}}}",
        rf"\caption{{{caption}}}\\",
        r"\toprule", header, r"\midrule", r"\endfirsthead",
        r"\toprule", header, r"\midrule", r"\endhead",
        r"\midrule",
        rf"\multicolumn{{{len(columns)}}}{{r}}{{continued on the next page}}\\",
        r"\endfoot",
        r"\bottomrule",
        r"\endlastfoot",
    ]
    op_col = columns.index("op") if "op" in columns else None
    for r, cells in zip(report.rows, _cells(report, columns, r"\quad ", _tex_cell)):
        if op_col is not None:
            cells[op_col] = _tex_words(op_words(r))
        body.append(tex_row(rf"\textbf{{{c}}}" if c and r.is_block else c for c in cells))
    body.append(r"\midrule")
    body.append(tex_row(tex_escape(c) for c in _total_cells(report, columns, _human_total)))
    body += [r"\end{longtable}", "}"]
    body.extend(tex_escape(s).replace(" 2 x MACs", r" 2 $\times$ MACs") + r"\par"
                for s in _summary(report))
    return tex_document(["booktabs", "longtable"], body, report.standalone)


RENDERERS: dict[str, Callable[[Report, list[str]], str]] = {
    "table": render_table, "json": render_json, "csv": render_csv, "md": render_md,
    "latex": render_latex,
}


def render(report: Report, fmt: str = "table", columns: list[str] | None = None) -> str:
    """The report as text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in RENDERERS:
        raise UsageError(f"unknown report format {fmt!r}; formats: {', '.join(FORMATS)}")
    cols = parse_columns(None, fmt) if columns is None else columns
    text = RENDERERS[fmt](report, cols)
    if report.symbolic is not None and fmt in ("table", "md", "latex"):
        text = _with_symbolic(report, fmt, text)
    return text


def _with_symbolic(report: Report, fmt: str, text: str) -> str:
    """``--symbolic``: the formulas after the totals (:mod:`.symbolic_report`)."""
    from . import symbolic_report as sr

    sym = report.symbolic
    if fmt == "latex":
        lines = sr.latex_lines(sym)
        end = "\\end{document}\n"
        if text.endswith(end):
            return text[: -len(end)] + "\n".join(lines) + "\n" + end
        return text + "\n".join(lines) + "\n"
    lines = sr.md_lines(sym) if fmt == "md" else sr.text_lines(sym)
    return text + "\n".join(lines) + "\n"


def report(graph: Graph, fmt: str = "table", depth: int | None = None,
           columns: str | None = None, dtype: str = "float32", batch: int = 1) -> str:
    """Analyse ``graph`` and render it: the library face of ``cnnir report``."""
    cols = parse_columns(columns, fmt)
    return render(build_report(graph, dtype=dtype, batch=batch, depth=depth), fmt, cols)


__all__ = ["DROP_TO_FIT", "Row", "Report", "build_report", "render", "render_html", "report",
           "to_json", "parse_columns", "COLUMNS", "FORMATS", "tex_escape"]
