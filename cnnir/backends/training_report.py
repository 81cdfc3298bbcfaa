"""The training report (``cnnir report --training``): per layer what autograd keeps and
what its backward computes, and the memory of one training step; the ``--memory``
budget check.

:func:`build_training` runs ``training-memory`` and ``backward-cost``
(:mod:`cnnir.passes.training`) and the forward ``count-macs``, and makes a
:class:`TrainingReport`, rendered as a table, JSON, CSV, Markdown or LaTeX.  JSON, the
contract for scripts, has exact integers::

    {"model", "input", "batch", "dtype", "amp", "optimizer", "device",
     "totals": {"saved_bytes", "weight_copy_bytes", "param_bytes", "grad_bytes",
                "optimizer_bytes", "forward_peak_bytes", "backward_peak_bytes",
                "peak_bytes", "forward_macs", "input_grad_macs", "weight_grad_macs",
                "backward_macs", "backward_other_ops"},
     "layers": [{"name", "op", "saved_bytes", "saved": [[what, bytes]],
                 "input_grad_macs", "weight_grad_macs", "backward_other_ops"}]}

:func:`largest_batch` finds the largest batch whose peak fits a memory budget (the
peak grows with the batch, so a doubling then a bisection finds it exactly).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..ir import Graph
from ..passes.count_macs import CountMacs
from ..passes.training import BackwardCost, TrainingMemory
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

_HEAD = [("name", "Layer", False), ("op", "Op", False), ("saved_bytes", "Saved", True),
         ("input_grad_macs", "dInput MACs", True), ("weight_grad_macs", "dWeight MACs", True),
         ("backward_other_ops", "Bwd other", True)]


@dataclass
class TrainingReport:
    """One training step of a model: rows per layer, totals, the options it ran with."""

    model: str
    input: tuple[int, ...]
    options: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    format: str = "table"

    def to_dict(self) -> dict[str, Any]:
        opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.options.items()}
        return {"model": self.model, "input": list(self.input), **opts,
                "totals": dict(self.totals), "layers": [dict(r) for r in self.rows]}

    def render(self, fmt: str = "table") -> str:
        if fmt not in RENDERERS:
            raise UsageError(f"unknown report format {fmt!r}; formats: {', '.join(RENDERERS)}")
        return RENDERERS[fmt](self)

    def summary(self) -> list[str]:
        t, o = self.totals, self.options
        amp = " with AMP (float32 master weights)" if o["amp"] else ""
        return [
            f"training step, batch {o['batch']}, {o['dtype']}{amp}, {o['optimizer']}, "
            f"{o['device']}: peak {human_bytes(t['peak_bytes'])}",
            f"kept for backward: {human_bytes(t['saved_bytes'])}"
            + (f" (low-precision weight copies {human_bytes(t['weight_copy_bytes'])})"
               if t["weight_copy_bytes"] else ""),
            f"parameters {human_bytes(t['param_bytes'])}, gradients "
            f"{human_bytes(t['grad_bytes'])}, optimizer state {human_bytes(t['optimizer_bytes'])}",
            f"peak in forward {human_bytes(t['forward_peak_bytes'])}, in backward "
            f"{human_bytes(t['backward_peak_bytes'])}",
            f"MACs: forward {human(t['forward_macs'])}, backward {human(t['backward_macs'])} "
            f"(input gradients {human(t['input_grad_macs'])}, weight gradients "
            f"{human(t['weight_grad_macs'])}); backward other ops "
            f"{human(t['backward_other_ops'])}",
        ]

    def __str__(self) -> str:
        return self.render(self.format)


def build_training(graph: Graph, batch: int = 1, dtype: str = "float32", amp: bool = False,
                   optimizer: str = "sgd", device: str = "cuda",
                   frozen: tuple[str, ...] = ()) -> TrainingReport:
    """Run the training analyses on ``graph`` (shapes inferred) and gather the report."""
    mem = TrainingMemory(batch=batch, dtype=dtype, amp=amp, optimizer=optimizer,
                         device=device, frozen=tuple(frozen))
    mem.run(graph)
    bwd = BackwardCost(batch=batch, frozen=tuple(frozen))
    bwd.run(graph)
    fwd = CountMacs(batch=batch)
    fwd.run(graph)
    rep = TrainingReport(graph.name, tuple(graph.input_shape),
                         {"batch": batch, "dtype": dtype, "amp": amp, "optimizer": optimizer,
                          "device": device, "frozen": tuple(frozen)})
    for v in graph.walk():
        t, b = v.meta["training"], v.meta["backward"]
        rep.rows.append({"name": v.name, "op": v.op.kind, "saved_bytes": t["saved_bytes"],
                         "saved": [list(s) for s in t["saved"]],
                         "input_grad_macs": b["input_grad_macs"],
                         "weight_grad_macs": b["weight_grad_macs"],
                         "backward_other_ops": b["other_ops"]})
    rep.totals = {
        "saved_bytes": mem.saved_bytes, "weight_copy_bytes": mem.weight_copy_bytes,
        "param_bytes": mem.param_bytes, "grad_bytes": mem.grad_bytes,
        "optimizer_bytes": mem.optimizer_bytes, "forward_peak_bytes": mem.forward_peak_bytes,
        "backward_peak_bytes": mem.backward_peak_bytes, "peak_bytes": mem.peak_bytes,
        "forward_macs": fwd.total_macs, "input_grad_macs": bwd.total_input_grad_macs,
        "weight_grad_macs": bwd.total_weight_grad_macs,
        "backward_macs": bwd.total_input_grad_macs + bwd.total_weight_grad_macs,
        "backward_other_ops": bwd.total_other_ops}
    return rep


def peak_at(graph: Graph, batch: int, **options: Any) -> int:
    """The peak bytes of one training step at ``batch``."""
    mem = TrainingMemory(batch=batch, **options)
    mem.run(graph)
    return mem.peak_bytes


def largest_batch(graph: Graph, memory: int, limit: int = 1 << 20, **options: Any) -> int:
    """The largest batch whose training peak is at most ``memory`` bytes (0: none)."""
    if peak_at(graph, 1, **options) > memory:
        return 0
    lo = 1
    hi = 2
    while hi <= limit and peak_at(graph, hi, **options) <= memory:
        lo, hi = hi, hi * 2
    if hi > limit:
        return lo
    while hi - lo > 1:  # peak(lo) fits, peak(hi) does not
        mid = (lo + hi) // 2
        if peak_at(graph, mid, **options) <= memory:
            lo = mid
        else:
            hi = mid
    return lo


# --------------------------------------------------------------------------- renderers


def _cell(key: str, value: Any) -> str:
    if key == "saved_bytes":
        return human_bytes(value)
    return human(value) if isinstance(value, int) else str(value)


def _rows(rep: TrainingReport) -> list[list[str]]:
    return [[_cell(k, r[k]) for k, _, _ in _HEAD] for r in rep.rows]


def _total(rep: TrainingReport) -> list[str]:
    t = rep.totals
    return ["total", "", human_bytes(t["saved_bytes"]), human(t["input_grad_macs"]),
            human(t["weight_grad_macs"]), human(t["backward_other_ops"])]


def _title(rep: TrainingReport) -> str:
    return (f"{rep.model}: training, input {'x'.join(map(str, rep.input))}, "
            f"batch {rep.options['batch']}")


def render_table(rep: TrainingReport) -> str:
    lines = text_table([h for _, h, _ in _HEAD], [r for _, _, r in _HEAD], _rows(rep),
                       title=_title(rep), footer=_total(rep))
    return "\n".join(lines + rep.summary()) + "\n"


def render_json(rep: TrainingReport) -> str:
    return json.dumps(rep.to_dict(), indent=2) + "\n"


def render_csv(rep: TrainingReport) -> str:
    keys = [k for k, _, _ in _HEAD]
    rows: list[list[Any]] = [keys] + [[r[k] for k in keys] for r in rep.rows]
    t = rep.totals
    rows.append(["total", "", t["saved_bytes"], t["input_grad_macs"], t["weight_grad_macs"],
                 t["backward_other_ops"]])
    return csv_text(rows)


def render_md(rep: TrainingReport) -> str:
    lines = [f"**{md_escape(_title(rep))}**", "", md_row(h for _, h, _ in _HEAD),
             md_rule(r for _, _, r in _HEAD)]
    lines += [md_row(md_escape(c) for c in cells) for cells in _rows(rep)]
    lines += [md_row(f"**{c}**" if c else "" for c in _total(rep)), ""]
    lines += [f"- {md_escape(s)}" for s in rep.summary()]
    return "\n".join(lines) + "\n"


def render_latex(rep: TrainingReport) -> str:
    header = tex_row(tex_escape(h) for _, h, _ in _HEAD)
    body = [r"{\small", rf"\begin{{longtable}}{{{tex_spec(r for _, _, r in _HEAD)}}}",
            rf"\caption{{{tex_escape(_title(rep))}}}\\", r"\toprule", header, r"\midrule",
            r"\endfirsthead", r"\toprule", header, r"\midrule", r"\endhead",
            r"\bottomrule", r"\endlastfoot"]
    body += [tex_row(tex_escape(c) for c in cells) for cells in _rows(rep)]
    body += [r"\midrule", tex_row(tex_escape(c) for c in _total(rep)), r"\end{longtable}", "}"]
    body += [tex_escape(s) + r"\par" for s in rep.summary()]
    return tex_document(["booktabs", "longtable"], body)


RENDERERS: dict[str, Callable[[TrainingReport], str]] = {
    "table": render_table, "json": render_json, "csv": render_csv, "md": render_md,
    "latex": render_latex}

__all__ = ["TrainingReport", "build_training", "largest_batch", "peak_at", "RENDERERS"]
