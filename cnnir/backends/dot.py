"""Graphviz backend: architecture diagrams for papers (``cnnir draw``).

::

    from cnnir import load
    from cnnir.backends.dot import to_dot, render

    g = load("resnet152")
    text = to_dot(g, level="block", detail="standard", theme="paper", rankdir="TB")
    render(g, "resnet152.pdf", level="block", width="3.3in")

What is drawn (levels, folding of repeated blocks, fused Conv-BN-ReLU boxes, hidden
dropout/flatten, skip edges) is decided by :mod:`cnnir.backends.dot_view`; colours and
fonts come from :mod:`cnnir.backends.dot_theme`.  This module writes the DOT text and
runs Graphviz.

* **Detail**: ``compact`` shows the layer type; ``standard`` adds kernel/stride and
  the output shape C x H x W; ``full`` adds the layer's name, parameters and MACs
  (per copy for a folded block, whose badge says how many copies there are).
* **Legend and title**: ``legend="bottom"`` (default) or ``"top"`` centres the legend
  below or above the drawing, ``"right"`` floats it at the top right (wider figure),
  ``"none"`` leaves it out; ``title`` is a bold line centred on top.
* **Layout**: the main line (from the input, at each fork the longest branch) is one
  Graphviz ``group``, so it is a straight column; edges inside a cluster weigh more,
  so that where ranks must stretch the slack falls between clusters.
* **Determinism**: the DOT text depends only on the graph and the options (order
  from the graph's topological order, no memory addresses, no dates), so the same
  input gives byte-identical DOT, SVG and PNG; the one date Graphviz's PDF writer
  (cairo) stamps is set to 1970-01-01 so PDFs are byte-identical too.
* **Editability**: SVG elements carry ids and classes named after the IR:
  ``node-<ir.node.name>``, ``block-<scope.path>``, ``cluster-<scope.path>``,
  ``edge-<src>--<dst>`` (``/`` becomes ``.``), classes ``layer``/``merge``/``block``,
  ``family-conv``, ``op-conv2d``, ``kind-bottleneck``, ``skip``, ``folded``, ``legend``.
* **Graphviz**: the ``dot`` program is run with :mod:`subprocess` directly rather
  than through the ``graphviz`` Python package: the DOT text is already built here
  (the package would only wrap the same subprocess call), calling ``dot`` directly
  keeps control of stdin/stdout bytes and of the error message when ``dot`` is
  missing, and keeps this module free of a third-party import.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from .. import ops as O
from ..errors import BackendError, UsageError
from ..ir import Graph
from ..util import human, write_atomic
from .dot_theme import FAMILY_NAMES, Theme, get_theme
from .dot_view import Box, Cluster, View, build_view

DETAILS = ("compact", "standard", "full")
RANKDIRS = ("TB", "LR")
FORMATS = ("svg", "pdf", "png", "dot")
#: where the legend goes: centred above or below the drawing, floating at its
#: top right (the old place; widens the figure), or left out
LEGENDS = ("bottom", "top", "right", "none")
#: PNG resolution: crisp on paper and on high-density screens
PNG_DPI = 192
INSTALL_HINT = "install Graphviz (apt-get install graphviz, or brew install graphviz)"

_UNITS = {"in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "pt": 1 / 72, "px": 1 / 96}


def parse_width(width: str | float | None) -> float | None:
    """``"3.3in"``, ``"84mm"``, ``"8.4cm"``, ``"240pt"`` or a number of inches -> inches."""
    if width is None:
        return None
    if isinstance(width, (int, float)) and not isinstance(width, bool):
        value = float(width)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(in|cm|mm|pt|px)?\s*", str(width))
        if not m:
            raise UsageError(f"--width must look like 3.3in, 84mm, 8.4cm or 240pt, got {width!r}")
        value = float(m.group(1)) * _UNITS[m.group(2) or "in"]
    if not 0.5 <= value <= 100:
        raise UsageError(f"--width must be between 0.5in and 100in, got {width!r}")
    return value


# --------------------------------------------------------------------------- text


def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _h(s: str) -> str:
    """Text inside an HTML-like label."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _svg_id(prefix: str, name: str) -> str:
    return prefix + "-" + re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip("/").replace("/", "."))


def _k(p: Sequence[int]) -> str:
    return f"{p[0]}×{p[1]}"


def _s(stride: Sequence[int]) -> str:
    if tuple(stride) == (1, 1):
        return ""
    return f"/{stride[0]}" if stride[0] == stride[1] else f"/{stride[0]}×{stride[1]}"


def op_title(op: O.Op, detail: str, in_channels: int | None = None) -> str:
    """The words a box shows for one op: its type, plus kernel/stride unless compact.

    ``in_channels`` tells a depthwise conv (``groups == in_channels``) from a grouped one.
    """
    std = detail != "compact"
    if isinstance(op, O.FusedConv2d):
        parts = [op_title(op.conv, detail, in_channels)]
        if op.bn is not None:
            parts.append("BN")
        if op.act is not None:
            parts.append(op_title(op.act, detail))
        return " + ".join(parts)
    if isinstance(op, O.Conv2d):
        name = "conv"
        if op.groups > 1:
            name = "dw conv" if op.groups == in_channels else f"conv g{op.groups}"
        if not std:
            return name
        dil = f" d{op.dilation[0]}" if op.dilation != (1, 1) else ""
        return f"{name} {_k(op.kernel)}{_s(op.stride)}{dil}"
    if isinstance(op, O.ConvTranspose2d):
        return f"up-conv {_k(op.kernel)}{_s(op.stride)}" if std else "up-conv"
    if isinstance(op, O.BatchNorm2d):
        return "BN"
    if isinstance(op, O.LocalResponseNorm):
        return "LRN"
    if op.has(O.FUSABLE_ACTIVATION):
        return op.title or op.kind
    if isinstance(op, O.Softmax):
        return "softmax"
    if isinstance(op, (O.MaxPool2d, O.AvgPool2d)):
        name = "max pool" if isinstance(op, O.MaxPool2d) else "avg pool"
        return f"{name} {_k(op.kernel)}{_s(op.stride)}" if std else name
    if isinstance(op, O.AdaptiveAvgPool2d):
        return "adaptive avg pool"
    if isinstance(op, O.GlobalAvgPool):
        return "global avg pool"
    if isinstance(op, O.Upsample):
        return (f"upsample ×{op.scale[0]}" if op.size is None else
                f"upsample to {op.size[0]}×{op.size[1]}") + f" {op.mode}" if std else "upsample"
    if isinstance(op, O.Linear):
        return "FC"
    if isinstance(op, O.Input):
        return "input"
    if isinstance(op, O.Concat):
        return "concat"
    if isinstance(op, O.Add):
        return "+"
    if isinstance(op, O.Mul):
        return "×"
    name = op.title or op.kind  # an op's own diagram word, where no rule above says more
    attrs = op.attrs()
    return f"{name} [{attrs}]" if std and attrs else name


def _shape(shape: Any) -> str:
    return "×".join(str(d) for d in shape) if shape is not None else "?"


def number(n: int) -> str:
    """A count as the report prints it (:func:`cnnir.util.human`): ``156``, ``2.42K``,
    ``117.60K``, ``25.56M``; a figure and its report never disagree in rounding."""
    return human(n)


def _figures(params: int, macs: int, prefix: str = "") -> str:
    parts = []
    if params:
        parts.append(f"{number(params)} params")
    if macs:
        parts.append(f"{number(macs)} MACs")
    return prefix + " · ".join(parts) if parts else ""


def _range_title(first: str, last: str) -> str:
    """The title of a fold whose badge says how many: ``bottleneck2`` ..
    ``bottleneck36`` -> ``bottleneck`` (the badge says x35); names that are not one
    stem and numbers -> ``first … last``."""
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    while i and first[i - 1].isdigit():
        i -= 1
    if i and first[i:].isdigit() and last[i:].isdigit():
        return first[:i].rstrip("_")
    return f"{first} … {last}"


class _Writer:
    def __init__(self, view: View, detail: str, theme: Theme, rankdir: str,
                 width: float | None, legend: str, title: str | None = None) -> None:
        self.v = view
        self.g = view.graph
        self.detail = detail
        self.t = theme
        self.rankdir = rankdir
        self.width = width
        self.legend = legend
        self.title = title
        self.lines: list[str] = []
        self.ids: set[str] = set()
        self.spine = self._spine()

    def uid(self, prefix: str, name: str) -> str:
        base = _svg_id(prefix, name)
        out, i = base, 2
        while out in self.ids:
            out, i = f"{base}-{i}", i + 1
        self.ids.add(out)
        return out

    def _spine(self) -> set[str]:
        """The boxes of the drawing's main line, drawn as one straight column (a
        Graphviz ``group``): from the first source along forward, non-skip edges, at
        each fork the branch with the longest way on (the middle one of equals), so
        that every inception module of a GoogLeNet hangs from the same column
        instead of zig-zagging, and a U-Net's encoder runs straight down."""
        succ: dict[str, list[str]] = {b: [] for b in self.v.boxes}
        has_in: set[str] = set()
        for e in self.v.edges:
            if not e.skip and not e.rising:
                succ[e.src].append(e.dst)
                has_in.add(e.dst)
        longest: dict[str, int] = {}
        for b in reversed(list(self.v.boxes)):  # boxes are in topological order
            longest[b] = 1 + max((longest.get(s, 0) for s in succ[b]), default=0)
        sources = [b for b in self.v.boxes if b not in has_in]
        if not sources:
            return set()
        spine, cur = [sources[0]], sources[0]
        while succ[cur]:
            best = max(longest[s] for s in succ[cur])
            ties = [s for s in succ[cur] if longest[s] == best]
            cur = ties[(len(ties) - 1) // 2]
            spine.append(cur)
        return set(spine) if len(spine) > 2 else set()

    # ------------------------------------------------------------------ labels

    def _small(self, text: str) -> str:
        return f'<font point-size="{self.t.small:g}">{_h(text)}</font>'

    def _badge(self, n: int) -> str:
        return (f'<td bgcolor="{self.t.badge_fill}" cellpadding="2"><font '
                f'color="{self.t.badge_text}" point-size="{self.t.small:g}">'
                f'<b>×{n}</b></font></td>')

    def _label(self, title: str, sub: list[str], fold: int = 1, bold: bool = True,
               badge_below: bool = False, name: str = "") -> str:
        """Title (after the layer's ``name:`` where given), an optional "x N" badge
        (beside it, or below it for cluster labels, which must stay narrow so that
        edges entering a TB cluster miss them), and smaller lines under it."""
        head = f"<b>{_h(title)}</b>" if bold else _h(title)
        if name:
            head = f"{_h(name)}: {head}"
        if fold <= 1 and not sub:
            return f"<{head}>"
        if fold > 1 and badge_below:
            rows = [f'<tr><td colspan="2" align="left">{head}</td></tr>',
                    f'<tr>{self._badge(fold)}<td width="60"></td></tr>']
            span = ' colspan="2"'
        else:
            # a gap between the title and its badge (in every theme's font size)
            gap = f'<td width="{max(3, round(self.t.fontsize * 0.4))}"></td>'
            rows = [f"<tr><td>{head}</td>{gap + self._badge(fold) if fold > 1 else ''}</tr>"]
            span = ' colspan="3"' if fold > 1 else ""
        rows += [f"<tr><td{span}>{self._small(s)}</td></tr>" for s in sub]
        return ('<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
                + "".join(rows) + "</table>>")

    def _in_channels(self, node: str) -> int | None:
        ins = self.g.inputs(node)
        shape = self.g.meta(ins[0]).get("shape") if ins else None
        return shape[0] if shape else None

    def _copy_groups(self, box: Box) -> list[list[str]]:
        """The IR nodes of each copy a box stands for (one group when not folded)."""
        g = self.g
        if box.kind == "block":
            assert box.scope is not None
            return [[n for n in g.nodes() if self.v.scope_of[n][:len(p)] == p]
                    for p in (box.copy_paths or [box.scope])]
        k = min(len(self.v.copies[n]) for n in box.nodes)
        return [[self.v.copies[n][i] for n in box.nodes] for i in range(k)]

    def _sub(self, box: Box) -> list[str]:
        """Output shape (first ... last copy where they differ); params and MACs, per
        copy when every copy has the same, else the total of all copies."""
        if self.detail == "compact":
            return []
        g = self.g
        outs = self.v.outputs_of(box)
        first = ", ".join(dict.fromkeys(_shape(g.meta(n).get("shape")) for n in outs))
        last = ", ".join(dict.fromkeys(_shape(g.meta(self.v.copies[n][-1]).get("shape"))
                                       for n in outs))
        sub = [first if first == last else f"{first} … {last}"]
        if self.detail == "full":
            figs = [(sum(g.meta(n)["params"]["params"] for n in grp),
                     sum(g.meta(n)["cost"]["macs"] for n in grp)) for grp in self._copy_groups(box)]
            if len(set(figs)) == 1:
                fig = _figures(*figs[0])
            else:
                fig = _figures(sum(f[0] for f in figs), sum(f[1] for f in figs), "total ")
            if fig:
                sub.append(fig)
        return sub

    def block_title(self, path: tuple[str, ...], copy_paths: list[tuple[str, ...]]) -> str:
        local = path[-1]
        if len(copy_paths) > 1:
            return _range_title(local, copy_paths[-1][-1])
        kind = self.v.blocks[path].kind if path in self.v.blocks else "scope"
        if kind != "scope" and kind not in local:
            return f"{local} ({kind})"
        return local

    def box_attrs(self, box: Box) -> dict[str, str]:
        t = self.t
        g = self.g
        ops = [g.op(n) for n in box.nodes]
        classes = [box.kind, f"family-{box.family}"]
        if box.kind == "block":
            path = box.scope
            assert path is not None
            kind = self.v.blocks[path].kind if path in self.v.blocks else "scope"
            classes.append(f"kind-{kind}")
            if path == (path[0],) and path[0] in self.v.stages:
                classes.append("stage")
            if box.fold > 1:
                classes.append("folded")
            title = self.block_title(path, box.copy_paths)
            sub = self._sub(box)
            kinds = [b.kind for p, b in self.v.blocks.items() if p[:-1] == path]
            if sub and kinds and len(set(kinds)) == 1 and kinds[0] != "scope":
                sub.insert(0, f"{len(kinds)} × {kinds[0]}")  # what a stage is made of
            label = self._label(title, sub, box.fold)
            attrs = {"id": self.uid("block", box.id), "shape": "box",
                     "style": "rounded,filled", "penwidth": f"{t.penwidth * 1.6:g}"}
        else:
            classes += [f"op-{k}" for k in dict.fromkeys(op.kind for op in ops)]
            title = " + ".join(op_title(g.op(n), self.detail, self._in_channels(n))
                               for n in box.nodes)
            attrs = {"id": self.uid("node", box.id)}
            if box.kind == "merge" and isinstance(ops[0], (O.Add, O.Mul)):
                attrs.update(shape="circle", style="filled", width="0.26", fixedsize="true",
                             fontsize=f"{t.fontsize * 1.3:g}")
                label = f"<{_h(title)}>"
            else:
                sub = self._sub(box)
                # full detail names the layer, to match it with reports and the text
                name = g.local_name(box.id) if self.detail == "full" and box.kind == "layer" \
                    else ""
                label = self._label(title, sub, box.fold, bold=box.kind != "merge", name=name)
                if box.fold > 1:
                    classes.append("folded")
                attrs.update(shape="box", style="rounded,filled" if box.kind != "layer"
                             else "filled")
                if box.kind == "input":
                    attrs["penwidth"] = f"{t.penwidth * 1.6:g}"
                if box.kind == "merge":  # concat: as small as its label
                    attrs["width"] = "0.4"
        if box.kind == "merge":
            # inputs left to right in port order: a concat's branches in channel order
            # (a graph-wide ordering=out is ignored inside clusters by Graphviz 2.4x)
            attrs["ordering"] = "in"
        if box.id in self.spine:
            attrs["group"] = "spine"
        attrs["fillcolor"] = t.fill_of(box.family, box.nodes[0])
        attrs["class"] = " ".join(classes)
        attrs["label"] = label
        return attrs

    # ------------------------------------------------------------------ emit

    def _attrs(self, attrs: dict[str, str]) -> str:
        out = []
        for k, v in attrs.items():
            out.append(f"{k}={v}" if v.startswith("<") and k == "label" else f"{k}={_q(v)}")
        return "[" + ", ".join(out) + "]"

    def emit(self) -> str:
        t = self.t
        v = self.v
        L = self.lines
        L.append(f"digraph {_q(self.g.name)} {{")
        gattrs = {
            "rankdir": self.rankdir, "newrank": "true",
            "nodesep": f"{t.nodesep:g}", "ranksep": f"{t.ranksep:g}", "pad": "0.05",
            "margin": "0",  # PDF otherwise gets Graphviz's 0.5in page margin
            "fontname": t.font, "fontsize": f"{t.small:g}", "bgcolor": "white",
            "outputorder": "edgesfirst", "id": _svg_id("graph", self.g.name),
            "class": f"cnnir theme-{t.name}",
        }
        if self.width is not None:
            gattrs["size"] = f"{self.width:.4g},1000!"
        if self.title:  # centred above the drawing (and above a top legend)
            gattrs.update(label=f"<<b>{_h(self.title)}</b>>", labelloc="t", labeljust="c",
                          fontsize=f"{t.fontsize * 1.2:g}")
        L.append(f"  graph {self._attrs(gattrs)};")
        L.append("  node " + self._attrs({
            "fontname": t.font, "fontsize": f"{t.fontsize:g}", "fontcolor": t.text,
            "color": t.line, "penwidth": f"{t.penwidth:g}", "height": "0.3",
            # TB: one minimum width, so a column of boxes lines up (most labels fit it)
            "width": f"{t.box_width:g}" if self.rankdir == "TB" else "0.4",
            "margin": "0.08,0.03"}) + ";")
        L.append("  edge " + self._attrs({
            "color": t.edge, "penwidth": f"{t.edge_width:g}",
            "arrowsize": f"{t.arrowsize:g}"}) + ";")
        # cluster tree, children in order of first appearance
        order = {b: i for i, b in enumerate(v.boxes)}
        first: dict[tuple[str, ...], int] = {}
        for box in v.boxes.values():
            for k in range(len(box.cluster) + 1):
                first.setdefault(box.cluster[:k], order[box.id])
        kids: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for path in sorted(v.clusters, key=lambda p: (first[p], len(p))):
            kids.setdefault(path[:-1], []).append(path)
        direct: dict[tuple[str, ...], list[Box]] = {}
        for box in v.boxes.values():
            direct.setdefault(box.cluster, []).append(box)
        self._emit_scope((), kids, direct, 1)
        for e in v.edges:
            attrs = {"id": self.uid("edge", f"{e.src}--{e.dst}")}
            bs, bd = v.boxes[e.src], v.boxes[e.dst]
            if not e.skip and bs.cluster == bd.cluster and bs.cluster:
                # kept short: where ranks must stretch (a U-Net level whose decoder
                # side is taller), the slack goes between clusters, not inside one
                attrs["weight"] = "2"
            if e.skip:
                attrs.update({"class": "skip", "color": t.skip, "style": t.skip_style,
                              "weight": "0"})
                if t.skip_width != t.edge_width:
                    attrs["penwidth"] = f"{t.skip_width:g}"
                if t.skip_arrowhead != "normal":
                    attrs["arrowhead" if not e.rising else "arrowtail"] = t.skip_arrowhead
            if e.rising:  # laid out upwards: reversed for ranking, arrow kept
                attrs["dir"] = "back"
                L.append(f"  {_q(e.dst)} -> {_q(e.src)} {self._attrs(attrs)};")
            else:
                L.append(f"  {_q(e.src)} -> {_q(e.dst)} {self._attrs(attrs)};")
        # U-Net: skip ends face each other; in TB the decoder's top row runs to the
        # output as in the paper's figure (in LR such a row would be a column
        # crossing the encoder, so the tail keeps its rank there)
        for row in v.ranks + (v.rows if self.rankdir == "TB" else []):
            L.append("  {rank=same; " + "; ".join(_q(b) for b in row) + ";}")
        if self.legend != "none":
            self._emit_legend()
        L.append("}")
        return "\n".join(L) + "\n"

    def _emit_scope(self, path: tuple[str, ...], kids: dict, direct: dict, depth: int) -> None:
        pad = "  " * depth
        items: list[tuple[int, Any]] = []
        order = {b: i for i, b in enumerate(self.v.boxes)}
        for box in direct.get(path, []):
            items.append((order[box.id], box))
        for child in kids.get(path, []):
            first = min(order[b.id] for b in self.v.boxes.values()
                        if b.cluster[:len(child)] == child)
            items.append((first, child))
        items.sort(key=lambda it: (it[0], isinstance(it[1], Box)))
        for _, item in items:
            if isinstance(item, Box):
                self.lines.append(f"{pad}{_q(item.id)} {self._attrs(self.box_attrs(item))};")
            else:
                self._emit_cluster(item, kids, direct, depth)

    def _emit_cluster(self, path: tuple[str, ...], kids: dict, direct: dict, depth: int) -> None:
        t = self.t
        c: Cluster = self.v.clusters[path]
        pad = "  " * depth
        name = "/".join(path)
        title = self.block_title(path, c.copy_paths)
        classes = ["scope" if c.info.kind == "scope" else "block", f"kind-{c.info.kind}"]
        if len(path) == 1 and path[0] in self.v.stages:
            classes.append("stage")
        if c.fold > 1:
            classes.append("folded")
        attrs = {
            "id": self.uid("cluster", name), "class": " ".join(classes),
            "label": self._label(title, [], c.fold, bold=False, badge_below=True),
            "labeljust": "l",
            "fontsize": f"{t.small:g}", "fontname": t.font, "color": t.cluster_line,
            "penwidth": f"{t.cluster_width:g}", "margin": "6",
        }
        if c.info.kind == "scope":
            attrs["style"] = t.scope_style
        else:
            attrs.update(style="rounded,filled", fillcolor=t.block_cluster_fill)
        self.lines.append(f"{pad}subgraph {_q('cluster_' + name)} {{")
        for k, val in attrs.items():
            val_s = val if (k == "label" and val.startswith("<")) else _q(val)
            self.lines.append(f"{pad}  {k}={val_s};")
        self._emit_scope(path, kids, direct, depth + 1)
        self.lines.append(f"{pad}}}")

    def _emit_legend(self) -> None:
        t = self.t
        drawn = {b.family for b in self.v.boxes.values()}
        resizes = any(isinstance(self.g.op(n), O.Upsample) for b in self.v.boxes.values()
                      if b.kind != "block" for n in b.nodes)
        words_of = {"add": "addition", "mul": "multiplication", "concat": "concatenation"}
        merges = {self.g.op(b.nodes[0]).kind: words_of.get(self.g.op(b.nodes[0]).kind, "merge")
                  for b in self.v.boxes.values() if b.kind == "merge"}
        rows = []
        for fam, words in FAMILY_NAMES.items():
            if fam not in drawn:
                continue
            if fam == "pool" and resizes:
                words = "pooling / upsampling"
            if fam == "merge":
                words = " / ".join(merges[k] for k in ("add", "mul", "concat") if k in merges)
            sym = ("+" if "add" in merges else "×" if "mul" in merges else "C") \
                if fam == "merge" else " "
            rows.append(
                f'<tr><td width="16" height="10" border="1" bgcolor="{t.fill_of(fam)}">'
                f'<font point-size="{t.small:g}">{sym}</font></td>'
                f'<td align="left"><font point-size="{t.small:g}">{_h(words)}</font></td></tr>')
        cells = [r[4:-5] for r in rows]
        if self.rankdir == "LR":  # a wide figure: the legend is one or two rows
            per_row = len(cells) if self.legend == "right" else -(-len(cells) // 2)
        elif self.legend == "right":
            per_row = 1
        else:  # above or below a column: rows of two or three entries, about its width
            per_row = 2 if len(cells) <= 4 else 3
        rows = ["<tr>" + "".join(cells[i:i + per_row]) + "</tr>"
                for i in range(0, len(cells), per_row)]
        label = ('<<table border="0" cellborder="0" cellspacing="2" cellpadding="1" '
                 f'color="{t.line}">' + "".join(rows) + "</table>>")
        self.lines.append(f'  "legend" [id="legend", class="legend", shape="plain", '
                          f'label={label}];')
        if self.legend == "right":
            return
        if self.rankdir == "LR":
            # below (above) the box in the middle of the row: on its rank, after it
            order = [b for b in self.v.boxes if b in self.spine] or list(self.v.boxes)
            mid = _q(order[(len(order) - 1) // 2])
            pair = f"{mid} -> \"legend\"" if self.legend == "bottom" else f"\"legend\" -> {mid}"
            self.lines.append(f'  {pair} [style="invis"];')
            self.lines.append(f'  {{rank=same; {mid}; "legend";}}')
            return
        # its own first or last rank, tied (invisibly) to the boxes that start or end
        # the drawing, so that it sits centred on them rather than beside the figure
        # (a rising edge is written reversed: its DOT direction counts here)
        has_in = {e.src if e.rising else e.dst for e in self.v.edges}
        has_out = {e.dst if e.rising else e.src for e in self.v.edges}
        if self.legend == "top":
            ends = [b for b in self.v.boxes if b not in has_in]
            edges = [f'"legend" -> {_q(b)}' for b in ends]
        else:
            ends = [b for b in self.v.boxes if b not in has_out]
            edges = [f'{_q(b)} -> "legend"' for b in ends]
        for e in edges:
            self.lines.append(f'  {e} [style="invis", weight="4"];')
        self.lines.append(f'  {{rank={"source" if self.legend == "top" else "sink"}; '
                          f'"legend";}}')


def _prepare(graph: Graph, detail: str) -> None:
    """Run the analyses a detail level needs, where their results are missing."""
    nodes = graph.nodes()
    if any(graph.meta(n).get("shape") is None for n in nodes):
        from ..passes.infer_shapes import InferShapes

        InferShapes().run(graph)
    if detail == "full":
        if any("params" not in graph.meta(n) for n in nodes):
            from ..passes.count_params import CountParams

            CountParams().run(graph)
        if any("cost" not in graph.meta(n) for n in nodes):
            from ..passes.count_macs import CountMacs

            CountMacs().run(graph)


def to_dot(graph: Graph, level: str = "layer", detail: str = "standard",
           theme: str | Theme = "paper", rankdir: str = "TB", width: str | float | None = None,
           collapse: Sequence[str] | str = (), expand: Sequence[str] | str = (),
           fuse: bool = True, fold: bool = True, legend: str | bool = "bottom",
           title: str | None = None) -> str:
    """The DOT text of ``graph``'s diagram (see the module docstring for the options)."""
    legend = check_legend(legend)
    if detail not in DETAILS:
        raise UsageError(f"unknown detail {detail!r}; details: {', '.join(DETAILS)}")
    if rankdir not in RANKDIRS:
        raise UsageError(f"unknown rankdir {rankdir!r}; use TB or LR")
    th = get_theme(theme)
    inches = parse_width(width)
    _prepare(graph, detail)
    view = build_view(graph, level, collapse, expand, fuse=fuse, fold=fold)
    return _Writer(view, detail, th, rankdir, inches, legend, title or None).emit()


def check_legend(legend: str | bool) -> str:
    """``legend`` as one of :data:`LEGENDS` (True: the default, ``bottom``; False: ``none``)."""
    if legend is True:
        return "bottom"
    if legend is False or legend is None:
        return "none"
    if legend not in LEGENDS:
        raise UsageError(f"unknown legend place {legend!r}; use {', '.join(LEGENDS)}")
    return legend


# --------------------------------------------------------------------------- running dot


def find_dot() -> str | None:
    """The path of Graphviz's ``dot`` program, or None."""
    return shutil.which("dot")


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) \(D:\d{14}")


def run_dot(text: str, fmt: str, dpi: int = PNG_DPI) -> bytes:
    """Lay out ``text`` with ``dot`` and return the ``fmt`` (svg, pdf, png) bytes."""
    if fmt not in ("svg", "pdf", "png"):
        raise UsageError(f"unknown image format {fmt!r}; formats: svg, pdf, png")
    exe = find_dot()
    if exe is None:
        raise BackendError(f"Graphviz's 'dot' program was not found; {INSTALL_HINT}")
    cmd = [exe, f"-T{fmt}"]
    if fmt == "png":
        cmd.append(f"-Gdpi={dpi}")
    try:
        proc = subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=600,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"running Graphviz failed: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BackendError(f"Graphviz 'dot -T{fmt}' failed: {err[-1] if err else 'no output'}")
    data = proc.stdout
    if fmt == "pdf":  # cairo stamps the time; same-length digits keep the xref table valid
        data = _PDF_DATE.sub(lambda m: b"/" + m.group(1) + b" (D:19700101000000", data)
    return data


def _format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    fmt = "dot" if ext == "gv" else ext
    if fmt not in FORMATS:
        raise UsageError(f"cannot tell the image format of {path!r}: use a .svg, .pdf, .png "
                         f"or .dot file name")
    return fmt


def render(graph: Graph, path: str, dpi: int = PNG_DPI, **options: Any) -> str:
    """Draw ``graph`` into ``path`` (.svg, .pdf, .png or .dot), atomically; returns ``path``.

    ``options`` are those of :func:`to_dot`.  Raises :class:`BackendError` when an
    image is asked for and Graphviz is not installed.
    """
    fmt = _format_of(path)
    text = to_dot(graph, **options)
    write_atomic(path, text if fmt == "dot" else run_dot(text, fmt, dpi))
    return path


def to_svg(graph: Graph, **options: Any) -> str:
    """The SVG text of ``graph``'s diagram (options of :func:`to_dot`)."""
    return run_dot(to_dot(graph, **options), "svg").decode()


def notebook_svg(graph: Graph, max_boxes: int = 80) -> str | None:
    """The SVG a notebook shows for ``graph``: layers, or blocks when there are more
    than ``max_boxes`` layer boxes; None when Graphviz is missing or the graph
    cannot be drawn (the notebook then shows the plain repr)."""
    from ..errors import CnnirError

    try:
        _prepare(graph, "standard")
        level = "layer" if len(build_view(graph, "layer").boxes) <= max_boxes else "block"
        return to_svg(graph, level=level)
    except CnnirError:
        return None


def svg_size_and_scale(svg: str) -> tuple[float, float, float]:
    """Width and height (inches) of a Graphviz SVG and the scale it was drawn at."""
    m = re.search(r'<svg width="([0-9.]+)pt" height="([0-9.]+)pt"', svg)
    s = re.search(r'transform="scale\(([0-9.]+)', svg)
    if not m:
        raise BackendError("cannot read the size of Graphviz's SVG output")
    return float(m.group(1)) / 72, float(m.group(2)) / 72, float(s.group(1)) if s else 1.0


__all__ = ["to_dot", "to_svg", "render", "run_dot", "find_dot", "parse_width",
           "op_title", "number", "notebook_svg", "DETAILS", "FORMATS", "svg_size_and_scale"]
