"""``cnnir explain``: every number of the report with its derivation, numbers substituted.

Matches: every node of an analysed graph (or one layer, a block, or the blocks down
to a depth).  Produces :class:`Explanation`, which renders as text, Markdown, LaTeX
(``\\frac``, ``\\lfloor``: for course notes) or JSON (each formula as a tree of terms).

Per layer:

* output size, arrays, MACs and other operations: the op's own ``explain`` rule
  (:mod:`cnnir.ops.formula`), next to its ``infer``, ``params`` and ``cost`` rules;
  with ``batch`` N the costs are multiplied by N as ``count-macs`` does;
* receptive field: the recursion ``r_out = r_in + (k-1)*j_in``, ``j_out = j_in*s``
  on the op's geometry (``k`` the dilated kernel ``D*(F-1)+1``), with the input
  layer's ``r_in``, ``j_in`` from the ``receptive-field`` pass; where paths meet,
  ``r = max(...)`` and ``r_min = min(...)`` over the inputs, naming the branch
  that sets each;
* memory: ``C*H*W * bytes`` (times the batch) of the output.

Every formula evaluates to exactly the number the analysis passes computed (the
tests check it on every zoo model); :func:`check_explanation` does so at run time
and raises if one ever disagrees, so an explanation is never printed wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CnnirError
from ..ir import Graph, Node
from ..ops import BROADCAST, Input, NoRule, TensorShape
from ..ops.formula import (
    Const,
    Expr,
    Sym,
    Term,
    group,
    maximum,
    minimum,
    paren,
    product,
    render,
    total,
)
from ..passes.memory import dtype_bytes

FORMATS = ("text", "md", "latex", "json")

#: the kinds of term of a layer, in the order they print, and their labels
KIND_LABELS = {"shape": "output", "param": "params", "buffer": "buffers", "macs": "MACs",
               "other": "other ops", "rf": "RF", "memory": "memory", "solve": "answer"}


@dataclass
class Layer:
    """The derivation of one node (or one block: ``terms`` then sum its layers)."""

    name: str
    op: str
    attrs: str
    loc: str
    inputs: list[str]
    output: str
    terms: list[Term] = field(default_factory=list)
    block: bool = False

    def sums(self) -> dict[str, Any]:
        """The figure of every kind of term, summed (``shape``: the dims in order)."""
        out: dict[str, Any] = {}
        for t in self.terms:
            if t.kind in ("shape", "rf", "solve"):
                continue
            out[t.kind] = out.get(t.kind, 0) + t.value()
        return out


@dataclass
class Explanation:
    """The layers explained; ``render(fmt)`` prints them, ``to_dict()`` is the JSON."""

    model: str
    layers: list[Layer]
    dtype: str = "float32"
    batch: int = 1
    format: str = "text"
    #: the first line of the text (None: the model, the batch and the dtype)
    title: str | None = None

    def render(self, fmt: str = "text") -> str:
        if fmt not in FORMATS:
            raise CnnirError(f"unknown explain format {fmt!r}; formats: {', '.join(FORMATS)}")
        return {"text": render_text, "md": render_md, "latex": render_latex,
                "json": render_json}[fmt](self)

    def to_dict(self) -> dict[str, Any]:
        return to_json(self)

    def __str__(self) -> str:
        return self.render(self.format)


# --------------------------------------------------------------------------- building


def _rf_terms(v: Node, graph: Graph, ins: list[TensorShape], out: TensorShape) -> list[Term]:
    """The receptive-field recursion of one node, per axis, on its inputs' RFs."""
    op = v.op
    if type(op) is Input:
        return [Term("rf", f"{q}_{ax}", Const(1), "the input: each unit sees itself")
                for ax in "HW" for q in ("r", "j")]
    units = (1, 1)
    if v.inputs:
        units = _units_before(graph, v.inputs[0])
    step = op.receptive_field(ins, units)
    terms: list[Term] = []
    if step is None and len(v.inputs) == 1:
        prev = graph.meta(v.inputs[0])["rf"]
        for a, ax in enumerate("HW"):
            terms.append(Term("rf", f"r_{ax}", Sym("r_in", prev.size[a]), "per pixel: unchanged"))
            terms.append(Term("rf", f"j_{ax}", Sym("j_in", prev.stride[a])))
            if prev.min_size[a] != prev.size[a]:
                terms.append(Term("rf", f"rmin_{ax}", Sym("rmin_in", prev.min_size[a])))
        return terms
    if step is None:
        paths = list(v.inputs)
        if op.has(BROADCAST) and len(out) == 3:
            spatial = [i for i, s in zip(v.inputs, ins) if tuple(s[1:]) == tuple(out[1:])]
            paths = spatial or paths
        rfs = [graph.meta(i)["rf"] for i in paths]
        for a, ax in enumerate("HW"):
            sizes = [Sym(f"r_{_short(i)}", r.size[a]) for i, r in zip(paths, rfs)]
            top = max(range(len(rfs)), key=lambda k: (rfs[k].size[a], rfs[k].stride[a]))
            low = min(range(len(rfs)), key=lambda k: rfs[k].min_size[a])
            terms.append(Term("rf", f"r_{ax}", maximum(*sizes), f"the largest: '{paths[top]}'"))
            terms.append(Term("rf", f"j_{ax}", Sym(f"j_{_short(paths[top])}", rfs[top].stride[a]),
                              f"the stride of '{paths[top]}'"))
            mins = [Sym(f"rmin_{_short(i)}", r.min_size[a]) for i, r in zip(paths, rfs)]
            terms.append(Term("rf", f"rmin_{ax}", minimum(*mins),
                              f"the smallest: '{paths[low]}'"))
        return terms
    prev = graph.meta(v.inputs[0])["rf"]
    for a, ax in enumerate("HW"):
        n, f, _ = step[0] if a == 0 else step[1]
        j_in = Sym("j_in", prev.stride[a])
        k = Sym("k", n)
        note = "k = D*(F-1)+1" if getattr(op, "dilation", (1, 1))[a] != 1 else ""
        if step[2]:
            note = "every unit of the input map: k = its size"
        terms.append(Term("rf", f"r_{ax}", Sym("r_in", prev.size[a]) + paren(k - 1) * j_in,
                          note))
        terms.append(Term("rf", f"j_{ax}", j_in * Sym("s", f)))
        if prev.min_size[a] != prev.size[a]:
            terms.append(Term("rf", f"rmin_{ax}", Sym("rmin_in", prev.min_size[a])
                              + paren(k - 1) * j_in))
    return terms


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _units_before(graph: Graph, name: str) -> tuple[int, int]:
    """Units per axis of the map a node's output is made of, as the receptive-field pass
    counts them: a flat tensor carries its map's units, until a layer that sees the
    whole input (a linear layer) makes it one unit."""
    while True:
        shape = graph.meta(name)["shape"]
        if len(shape) == 3:
            return (shape[1], shape[2])
        ins = graph.inputs(name)
        if not ins:
            return (1, 1)
        step = graph.op(name).receptive_field([graph.meta(i)["shape"] for i in ins], (1, 1))
        if step is not None and step[2]:
            return (1, 1)
        name = ins[0]


def layer_terms(graph: Graph, v: Node, batch: int = 1, dtype: str = "float32") -> list[Term]:
    """Every term of one node: the op's rule, scaled by the batch, then RF and memory."""
    ins = [graph.meta(i)["shape"] for i in v.inputs]
    out = v.meta["shape"]
    try:
        terms = v.op.explain(ins, out)
    except NoRule:
        raise CnnirError(f"explain: no explain rule for op kind '{v.op.kind}' "
                         f"({type(v.op).__name__}) of node '{v.name}'",
                         loc=v.loc, node=v.name) from None
    if batch != 1:
        n = Sym("N", batch)
        terms = [Term(t.kind, t.name, n * t.expr, t.note) if t.kind in ("macs", "other")
                 else t for t in terms]
    terms += _rf_terms(v, graph, ins, out)
    size = dtype_bytes(dtype)
    factors: list[Expr] = [Sym("N", batch)] if batch != 1 else []
    names = ("C", "H", "W") if len(out) == 3 else ("F",)
    factors += [Sym(f"{n}_out", d) for n, d in zip(names, out)]
    factors.append(Sym("bytes", size))
    terms.append(Term("memory", "activation", product(*factors),
                      f"the output tensor at {dtype} ({size} bytes per element)"))
    return terms


def check_explanation(graph: Graph, layer: Layer) -> None:
    """Raise if any term of ``layer`` disagrees with the analysis passes' figure."""
    meta = graph.meta(layer.name)
    got = layer.sums()
    shape = [t.value() for t in layer.terms if t.kind == "shape"]
    want = {"param": meta["params"]["params"], "buffer": meta["params"]["buffers"],
            "macs": meta["cost"]["macs"], "other": meta["cost"]["other_ops"],
            "memory": meta["memory"]["activation_bytes"]}
    bad = [f"{k}: formula {got.get(k, 0)} vs {w}" for k, w in want.items() if got.get(k, 0) != w]
    if shape != list(meta["shape"]):
        bad.append(f"shape: formula {shape} vs {list(meta['shape'])}")
    rf = meta["rf"]
    for t in layer.terms:
        if t.kind != "rf":
            continue
        q, ax = t.name.split("_")
        a = "HW".index(ax)
        ref = {"r": rf.size, "j": rf.stride, "rmin": rf.min_size}[q][a]
        if t.value() != ref:
            bad.append(f"receptive field {t.name}: formula {t.value()} vs {ref}")
    if bad:
        raise CnnirError(f"explain: the derivation of '{layer.name}' disagrees with the "
                         f"analysis ({'; '.join(bad)}); please report this bug",
                         loc=graph.loc(layer.name), node=layer.name)


def _select(graph: Graph, layer: str | None) -> list[Node]:
    nodes = graph.walk()
    if layer is None:
        return nodes
    picked = [v for v in nodes if v.name == layer or v.name.startswith(layer + "/")
              or v.scope[:len(layer.split("/"))] == tuple(layer.split("/"))]
    if not picked:
        near = [v.name for v in nodes if layer.lower() in v.name.lower()][:5]
        hint = f"; did you mean {', '.join(near)}?" if near else \
            " (cnnir check MODEL --print lists the layers)"
        raise CnnirError(f"explain: no layer or block named '{layer}' in {graph.name}{hint}")
    return picked


def _block(graph: Graph, path: tuple[str, ...], members: list[Layer]) -> Layer:
    """A block at ``--depth``: each figure the sum of its layers' (named as terms)."""
    last = members[-1]
    terms: list[Term] = [t for t in last.terms if t.kind in ("shape", "rf")]
    for kind in ("param", "buffer", "macs", "other", "memory"):
        parts = [Sym(m.name.rsplit("/", 1)[-1], m.sums()[kind]) for m in members
                 if m.sums().get(kind)]
        if parts:
            terms.append(Term(kind, "sum", total(*parts),
                              f"the sum over the block's {len(members)} layers"))
    return Layer(name="/".join(path), op="block", attrs=f"{len(members)} layers",
                 loc=members[0].loc, inputs=members[0].inputs, output=last.output,
                 terms=terms, block=True)


def explain(graph: Graph, layer: str | None = None, depth: int | None = None,
            dtype: str = "float32", batch: int = 1) -> Explanation:
    """Explain an analysed graph: every node, those of ``layer`` (a node or a block
    name), or with ``depth`` the blocks down to that depth as sums of their layers."""
    layers: list[Layer] = []
    for v in _select(graph, layer):
        ins = [graph.meta(i)["shape"] for i in v.inputs]
        item = Layer(name=v.name, op=v.op.kind, attrs=v.op.attrs(),
                     loc=str(v.loc) if v.loc else "", inputs=[str(s) for s in ins],
                     output=str(v.meta["shape"]), terms=layer_terms(graph, v, batch, dtype))
        check_explanation(graph, item)
        layers.append(item)
    if depth is not None:
        scopes = {v.name: v.scope for v in graph.walk()}
        grouped: list[Layer] = []
        seen: dict[tuple[str, ...], list[Layer]] = {}
        for item in layers:
            path = scopes[item.name][:depth]
            if not path:
                grouped.append(item)
                continue
            if path not in seen:
                seen[path] = []
                grouped.append(Layer(name="/".join(path), op="", attrs="", loc="",
                                     inputs=[], output=""))
            seen[path].append(item)
        layers = [_block(graph, tuple(g.name.split("/")), seen[tuple(g.name.split("/"))])
                  if g.op == "" else g for g in grouped]
    return Explanation(model=graph.name, layers=layers, dtype=dtype, batch=batch)


# -------------------------------------------------------------------------- rendering


def _label(t: Term) -> str:
    if t.kind == "shape":
        return f"{t.name}_out"
    if t.kind == "rf":
        return t.name
    return t.name


def _merge_axes(terms: list[Term], latex: bool) -> list[tuple[str, Term]]:
    """Pairs (label, term); an H and a W term with the same numbers print once."""
    out: list[tuple[str, Term]] = []
    skip: set[int] = set()
    for k, t in enumerate(terms):
        if k in skip:
            continue
        label = _label(t)
        if t.kind in ("shape", "rf") and t.name.endswith("H"):
            w_name = t.name[:-1] + "W"
            for m in range(k + 1, len(terms)):
                u = terms[m]
                if u.kind == t.kind and u.name == w_name:
                    if render(u.expr, True, latex) == render(t.expr, True, latex):
                        skip.add(m)
                        label = f"{label} = {_label(u)}"
                    break
        out.append((label, t))
    return out


def _line(t: Term, latex: bool = False) -> str:
    """``symbolic = substituted = value`` (dropping what repeats)."""
    sym, num = render(t.expr, False, latex), render(t.expr, True, latex)
    val = group(t.value(), latex)
    parts = [sym]
    if num != sym:
        parts.append(num)
    if num != val.replace(",", "").replace("{,}", ""):
        parts.append(val)
    return " = ".join(parts)


def _shown(layer: Layer) -> list[Term]:
    """What the human formats print: trivial shape terms (a dimension copied) are left
    to JSON, except where the layer changes nothing else."""
    return [t for t in layer.terms if not (t.kind == "shape" and isinstance(t.expr, (Sym, Const))
                                           and not t.note)]


def _heading(layer: Layer) -> str:
    where = f"  ({layer.loc})" if layer.loc else ""
    arrow = f"{', '.join(layer.inputs)} -> {layer.output}" if layer.inputs else layer.output
    if not layer.output:  # an answer of --solve
        return f"{layer.name}" + (f"  ({layer.attrs})" if layer.attrs else "")
    return f"{layer.name}: {layer.op} {layer.attrs}".rstrip() + f"  {arrow}{where}"


def _totals_line(layer: Layer, kind: str) -> str:
    terms = [t for t in layer.terms if t.kind == kind]
    if kind not in ("param", "buffer", "other") or len(terms) < 2:
        return ""
    return f"{KIND_LABELS[kind]} total = " + group(sum(t.value() for t in terms))


def _body(layer: Layer, item: Any, tot_line: Any) -> list[str]:
    """The lines of one layer: ``item(kind_label, label, term)`` per term shown, in the
    order of :data:`KIND_LABELS`, and ``tot_line(text)`` after kinds with several terms."""
    lines = []
    for kind in KIND_LABELS:
        terms = [t for t in _shown(layer) if t.kind == kind]
        for label, t in _merge_axes(terms, False):
            lines.append(item(KIND_LABELS[kind], label, t))
        tot = _totals_line(layer, kind)
        if tot:
            lines.append(tot_line(tot))
    return lines


def render_text(ex: Explanation) -> str:
    lines = [ex.title or f"{ex.model}: the derivation of every figure "
             f"(batch {ex.batch}, {ex.dtype})", ""]
    for layer in ex.layers:
        lines.append(_heading(layer))
        lines += _body(layer, lambda kind, label, t: f"  {kind:<9} {label}: {_line(t)}"
                       + (f"   [{t.note}]" if t.note else ""), lambda tot: f"  {'':<9} {tot}")
        lines.append("")
    return "\n".join(lines)


def render_md(ex: Explanation) -> str:
    lines = [f"# {ex.title or ex.model + ': derivations'}", ""]
    if ex.title is None:
        lines += [f"Batch {ex.batch}, {ex.dtype}.", ""]
    for layer in ex.layers:
        if layer.output:
            lines.append(f"## `{layer.name}`: {layer.op} `{layer.attrs}`".replace(" ``", ""))
            arrow = f"{', '.join(layer.inputs)} → {layer.output}" if layer.inputs else layer.output
            lines += ["", f"{arrow}" + (f" ({layer.loc})" if layer.loc else ""), ""]
        else:
            lines += [f"## {layer.name}", "", layer.attrs, ""] if layer.attrs else [
                f"## {layer.name}", ""]
        lines += _body(layer, lambda kind, label, t: f"- {kind}, {label}: `{_line(t)}`"
                       + (f" — {t.note}" if t.note else ""), lambda tot: f"- {tot}")
        lines.append("")
    return "\n".join(lines)


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"),
                 ("#", r"\#"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}")):
        text = text.replace(a, b) if a != "\\" else text.replace(a, "\x00")
    return text.replace("\x00", r"\textbackslash{}")


def _tex_label(label: str) -> str:
    out = []
    for part in label.split(" = "):
        if re.fullmatch(r"[A-Za-z]+_[A-Za-z0-9]+", part):
            head, tail = part.split("_", 1)
            out.append(f"{head}_{{\\mathrm{{{tail}}}}}")
        else:
            out.append(rf"\text{{{_tex(part)}}}")
    return " = ".join(out)


def render_latex(ex: Explanation) -> str:
    lines = [f"% {ex.title or ex.model + ': derivations (cnnir explain)'}; needs amsmath"]
    if ex.title is None:
        lines.append(f"% batch {ex.batch}, {ex.dtype}")
    for layer in ex.layers:
        if layer.output:
            attrs = rf" \texttt{{{_tex(layer.attrs)}}}" if layer.attrs else ""
            lines.append(rf"\paragraph{{{_tex(layer.name)}}} {_tex(layer.op)}{attrs}, "
                         + _tex(f"{', '.join(layer.inputs)} -> {layer.output}" if layer.inputs
                                else layer.output).replace("->", r"$\to$"))
        else:
            lines.append(rf"\paragraph{{{_tex(layer.name)}}} {_tex(layer.attrs)}")
        rows = []
        for kind in KIND_LABELS:
            terms = [t for t in _shown(layer) if t.kind == kind]
            for label, t in _merge_axes(terms, True):
                lab = _tex_label(label)
                if kind in ("param", "buffer", "other", "macs", "memory"):
                    lab = rf"\text{{{_tex(KIND_LABELS[kind])} ({_tex(t.name)})}}"
                rows.append(f"  {lab} &= {_line(t, latex=True)}")
        lines.append(r"\begin{align*}")
        lines.append(" \\\\\n".join(rows))
        lines.append(r"\end{align*}")
    return "\n".join(lines) + "\n"


def _term_dict(t: Term) -> dict[str, Any]:
    v = t.value()
    return {"kind": t.kind, "name": t.name, "formula": t.expr.to_dict(),
            "text": render(t.expr), "substituted": render(t.expr, True),
            "latex": render(t.expr, latex=True),
            "value": v if isinstance(v, int) else str(v), "note": t.note}


def to_json(ex: Explanation) -> dict[str, Any]:
    return {"model": ex.model, "batch": ex.batch, "dtype": ex.dtype,
            "layers": [{"name": la.name, "op": la.op, "attrs": la.attrs, "loc": la.loc,
                        "inputs": la.inputs, "output": la.output, "block": la.block,
                        "terms": [_term_dict(t) for t in la.terms]} for la in ex.layers]}


def render_json(ex: Explanation) -> str:
    return json.dumps(to_json(ex), indent=1) + "\n"


__all__ = ["Explanation", "Layer", "explain", "layer_terms", "check_explanation", "FORMATS"]
