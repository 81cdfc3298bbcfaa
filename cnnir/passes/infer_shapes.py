"""``infer-shapes``: compute every node's output shape (``meta["shape"]``).

Matches: every node, in topological order.  Produces: ``meta["shape"]``, a
:class:`~cnnir.ops.TensorShape` (batch excluded), with PyTorch's exact semantics.
A rule that cannot hold raises :class:`~cnnir.errors.ShapeError` naming the node,
its op and its source ``file:line``.  With ``strict=False`` the pass records the
errors in ``notes`` / ``errors`` instead, leaves the shapes it cannot compute
unset (``None``) and carries on; repair passes such as ``fix-residual`` use that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import networkx as nx

from ..errors import CnnirError, ShapeError
from ..ir import Graph
from ..ops import Add, Concat, Mul, TensorShape, describe_mismatch
from . import register
from .base import Pass


@register
@dataclass
class InferShapes(Pass):
    """Infer the output shape of every node (PyTorch semantics)."""

    name = "infer-shapes"
    kind = "analysis"
    strict: bool = True
    errors: list[ShapeError] = field(default_factory=list, init=False, repr=False)

    def run(self, graph: Graph) -> Graph:
        self.errors = []
        known: dict[str, TensorShape | None] = {}
        for v in graph.walk():
            n, op, ins, meta = v.name, v.op, v.inputs, v.meta
            maybe = [known[i] for i in ins]
            if None in maybe:
                meta["shape"] = known[n] = None  # an upstream node failed (non-strict mode)
                continue
            shapes = cast("list[TensorShape]", maybe)
            try:
                arity = type(op).arity  # type: ignore[attr-defined]
                if arity != len(ins):
                    _check_arity(op, len(ins))
                meta["shape"] = op.infer(shapes)
            except CnnirError as exc:
                err = _error(graph, n, exc, shapes)
                if self.strict:
                    raise err from None
                self.errors.append(err)
                self.note(str(err))
                meta["shape"] = None
            known[n] = meta["shape"]
        return graph


def _check_arity(op: object, count: int) -> None:
    arity = type(op).arity  # type: ignore[attr-defined]
    if arity >= 0 and count != arity:
        raise ShapeError(f"takes {arity} input(s), got {count}")
    if arity < 0 and count < 2:
        raise ShapeError(f"takes two or more inputs, got {count}")


def _error(graph: Graph, n: str, exc: CnnirError, shapes: list[TensorShape]) -> ShapeError:
    op = graph.op(n)
    if isinstance(op, (Add, Mul)) and len(shapes) == 2:
        return residual_mismatch(graph, n)
    if isinstance(op, Concat) and len(shapes) >= 2:
        return concat_mismatch(graph, n, exc)
    return ShapeError(f"{op.kind} '{n}': {exc.msg}", loc=graph.loc(n), node=n, hint=exc.hint)


def residual_mismatch(graph: Graph, n: str) -> ShapeError:
    """The error for an Add/Mul whose inputs cannot broadcast: names both producers,
    their source lines, what differs, and the usual fix."""
    op = graph.op(n)
    a, b = graph.inputs(n)
    sa, sb = graph.shape(a), graph.shape(b)

    def who(p: str) -> str:
        loc = graph.loc(p)
        return f"'{p}'" + (f" ({loc})" if loc else "")

    msg = (f"{op.kind} '{n}' got {sa} from {who(a)} and {sb} from {who(b)} "
           f"({describe_mismatch(sa, sb)})")
    hint = _projection_hint(graph, a, b) if isinstance(op, Add) else None
    return ShapeError(msg, loc=graph.loc(n), node=n, hint=hint)


def _who(graph: Graph, p: str) -> str:
    loc = graph.loc(p)
    return f"'{p}'" + (f" ({loc})" if loc else "")


def concat_mismatch(graph: Graph, n: str, exc: CnnirError) -> ShapeError:
    """The error for a concat whose inputs differ in H/W (or rank): each producer with
    its shape and source line, and how to make the maps agree."""
    ins = graph.inputs(n)
    shapes = [graph.shape(p) for p in ins]
    got = ", ".join(f"{s} from {_who(graph, p)}" for p, s in zip(ins, shapes))
    msg = (f"concat '{n}': inputs must agree on everything but channels: got {got}"
           if shapes else f"concat '{n}': {exc.msg}")
    hint = "make the maps agree before the concat: upsample the smaller, crop or pad the " \
           "larger, or change a stride or padding"
    maps = [s for s in shapes if len(s) == 3]
    if len(maps) == len(shapes):
        big = max(maps, key=lambda s: s[1] * s[2])
        for p, s in zip(ins, shapes):
            if s[1:] != big[1:] and big[1] % s[1] == 0 and big[2] % s[2] == 0 \
                    and big[1] // s[1] == big[2] // s[2]:
                hint = (f"upsample '{p}' by {big[1] // s[1]} to {big[1]}x{big[2]} "
                        f"(.upsample({big[1] // s[1]})), or crop or pad the larger map")
                break
    return ShapeError(msg, loc=graph.loc(n), node=n, hint=hint)


def _projection_hint(graph: Graph, a: str, b: str) -> str | None:
    """How to fix a residual add whose inputs differ: project the shortcut with a 1x1
    conv of the right stride.  None when that cannot help (a Cx1x1 operand, a shortcut
    smaller than the branch, no integer stride).  A mul is never a residual: its fix
    (squeeze-excitation's channel count) is not a projection."""
    sa, sb = graph.shape(a), graph.shape(b)
    if len(sa) != 3 or len(sb) != 3:
        return None
    shortcut = _shortcut(graph, a, b)
    if shortcut is None and sa[1:] != sb[1:]:
        # two sibling branches: the larger map is the one to downsample
        if sa[1] >= sb[1] and sa[2] >= sb[2]:
            shortcut = a
        elif sb[1] >= sa[1] and sb[2] >= sa[2]:
            shortcut = b
    if shortcut is None:
        return None
    src, dst = (sa, sb) if shortcut == a else (sb, sa)
    if dst[1:] == (1, 1) and src[1:] != (1, 1):
        return None  # a Cx1x1 operand: broadcasting gone wrong, not a residual
    # a 1x1 conv with stride s (no padding) maps H to ceil(H / s)
    stride = next((s for s in range(1, max(src[1], src[2]) + 1)
                   if -(-src[1] // s) == dst[1] and -(-src[2] // s) == dst[2]), None)
    if stride is None:
        return None
    return (f"project the shortcut with a 1x1 conv to {dst[0]} channels, stride {stride}, "
            f"or run with --passes fix-residual")


def _shortcut(graph: Graph, a: str, b: str) -> str | None:
    """Which input of a residual add is the shortcut: the one the other is computed from
    (None when neither is)."""
    g = graph.nx
    if a == b:
        return None
    if nx.has_path(g, a, b):
        return a
    if nx.has_path(g, b, a):
        return b
    return None


def infer_shapes(graph: Graph, strict: bool = True) -> Graph:
    """Run :class:`InferShapes` on ``graph`` and return it."""
    return InferShapes(strict=strict).run(graph)
