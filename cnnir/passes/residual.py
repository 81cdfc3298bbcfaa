"""``check-residual`` and ``fix-residual``: the shapes meeting at residual adds.

``check-residual`` (analysis)
    Matches every :class:`~cnnir.ops.Add` and :class:`~cnnir.ops.Mul`.  Their two
    inputs must have equal shapes or broadcast (squeeze-excitation's
    ``CxHxW * Cx1x1``).  A mismatch is a :class:`~cnnir.errors.ShapeError` naming
    the add, both inputs' producing layers with their source lines, and what
    differs (channels, height, width), with a hint at the projection that fixes
    it (:func:`cnnir.passes.infer_shapes.residual_mismatch`).  Any other shape
    error met on the way is raised too: a graph with one is not checked.

``fix-residual`` (transform)
    Matches every Add whose inputs do not broadcast and rewrites it as ResNet's
    option B: the *shortcut* (the input the other one is computed from; between
    two sibling branches, the one with the larger map, and the second operand on a
    tie) goes through a ``1x1`` projection conv to the branch's channels with the
    stride that maps its ``HxW`` to the branch's (a 1x1 conv with stride ``s`` and
    no padding gives ``ceil(H / s)``), followed by a ``BatchNorm2d`` when the
    branch uses batch normalisation (the conv then has no bias).  The new layers
    are named ``downsample_conv`` / ``downsample_bn`` in the add's scope (as in
    torchvision and the zoo), take the add's source line, and sit just before the
    add.  Adds are fixed one at a time in topological order, re-inferring shapes
    in between, since a fix makes the shapes after it known.

    Stays an error: a branch larger than its shortcut in height or width (a
    projection only downsamples), sizes that no integral stride maps onto each
    other, flat (non-map) inputs, a mismatched Mul (a gate, not a shortcut), and
    every shape error that is not at an add.

Both passes read shapes with ``InferShapes(strict=False)`` (``needs_valid_shapes
= False`` tells the pass manager not to run strict inference before them), since
strict inference stops at the first mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..errors import CnnirError, ShapeError
from ..ir import Graph
from ..ops import Add, BatchNorm2d, Conv2d, FusedConv2d, Mul, TensorShape, broadcast
from . import register
from .base import Pass
from .infer_shapes import InferShapes, residual_mismatch
from .rewrite import NewNode, insert_before


def _shape(graph: Graph, n: str) -> TensorShape | None:
    shape: TensorShape | None = graph.meta(n).get("shape")
    return shape


def mismatched(graph: Graph, n: str) -> bool:
    """True when ``n`` is an Add/Mul whose known input shapes do not broadcast."""
    if not isinstance(graph.op(n), (Add, Mul)):
        return False
    shapes = [_shape(graph, i) for i in graph.inputs(n)]
    if len(shapes) != 2 or shapes[0] is None or shapes[1] is None:
        return False
    return broadcast(shapes[0], shapes[1]) is None


def _first_of(errors: list[ShapeError]) -> ShapeError:
    """The first error, mentioning how many more there are."""
    first = errors[0]
    if len(errors) == 1:
        return first
    more = ", ".join(f"'{e.node}'" for e in errors[1:])
    return ShapeError(f"{first.msg} (and {len(errors) - 1} more shape error(s), at {more})",
                      loc=first.loc, node=first.node, hint=first.hint)


@register
@dataclass
class CheckResidual(Pass):
    """Check that the inputs of every add and mul have compatible shapes."""

    name = "check-residual"
    kind = "analysis"
    needs_valid_shapes = False

    def run(self, graph: Graph) -> Graph:
        infer = InferShapes(strict=False)
        infer.run(graph)
        if infer.errors:
            raise _first_of(infer.errors)
        merges = [n for n in graph.nodes() if isinstance(graph.op(n), (Add, Mul))]
        self.note(f"{len(merges)} add/mul node(s) checked, every one has compatible inputs")
        return graph


@register
@dataclass
class FixResidual(Pass):
    """Project mismatched residual shortcuts with a 1x1 conv (+ BN), ResNet option B."""

    name = "fix-residual"
    kind = "transform"
    needs_valid_shapes = False

    #: one dict per fixed add: add, shortcut, branch, conv, bn, stride, shapes
    inserted: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def run(self, graph: Graph) -> Graph:
        self.inserted = []
        g = graph.copy()
        for _ in range(len(graph) + 1):
            InferShapes(strict=False).run(g)
            target = next((n for n in g.nodes() if isinstance(g.op(n), Add)
                           and mismatched(g, n)), None)
            if target is None:
                break
            g = self._fix(g, target)
        # what is left (a mul, a conv too large for its input...) is not ours to fix
        gate = next((n for n in g.nodes() if mismatched(g, n)), None)
        if gate is not None:
            raise _unfixable(g, gate, "fix-residual projects the shortcuts of adds; "
                                      "a mul is a gate, not a shortcut")
        InferShapes().run(g)
        if not self.inserted:
            self.note("every residual add already matches; nothing inserted")
            return graph
        self.changed = True
        return g

    def _fix(self, g: Graph, n: str) -> Graph:
        a, b = g.inputs(n)
        sa, sb = _shape(g, a), _shape(g, b)
        assert sa is not None and sb is not None
        if len(sa) != 3 or len(sb) != 3:
            raise _unfixable(g, n, "a projection fixes feature maps, these inputs are flat")
        shortcut = _pick_shortcut(g, a, b, sa, sb)
        branch = b if shortcut == a else a
        src, dst = (sa, sb) if shortcut == a else (sb, sa)
        if dst[1] > src[1] or dst[2] > src[2]:
            raise _unfixable(g, n, f"the branch '{branch}' ({dst}) is larger than its shortcut "
                                   f"'{shortcut}' ({src}), and a projection only downsamples")
        stride = (_stride(src[1], dst[1]), _stride(src[2], dst[2]))
        if stride[0] is None or stride[1] is None:
            raise _unfixable(g, n, f"no integral stride maps the shortcut's {src[1]}x{src[2]} "
                                   f"onto the branch's {dst[1]}x{dst[2]}")
        bn = _branch_bn(g, shortcut, branch)
        scope, loc = g.scope(n), g.loc(n)
        prefix = "/".join(scope) + "/" if scope else ""
        conv_name = g.unique_name(f"{prefix}downsample_conv")
        conv = Conv2d(dst[0], (1, 1), stride=(stride[0], stride[1]), bias=bn is None)
        new = [NewNode(conv_name, conv, (shortcut,), loc, scope)]
        bn_name = None
        if bn is not None:
            bn_name = g.unique_name(f"{prefix}downsample_bn")
            new.append(NewNode(bn_name, BatchNorm2d(bn.eps, bn.momentum), (conv_name,),
                               loc, scope))
        inputs = tuple(new[-1].name if i == shortcut else i for i in g.inputs(n))
        out = insert_before(g, {n: new}, {n: inputs})
        s = f"{stride[0]}" if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
        self.inserted.append({"add": n, "shortcut": shortcut, "branch": branch,
                              "conv": conv_name, "bn": bn_name, "stride": stride,
                              "from": tuple(src), "to": tuple(dst)})
        self.note(f"add '{n}': shortcut '{shortcut}' {src} -> {dst}: inserted 1x1 conv "
                  f"'{conv_name}' (stride {s})"
                  + (f" + batchnorm '{bn_name}'" if bn_name else "")
                  + (f", {loc.short}" if loc is not None else ""))
        return out


def _pick_shortcut(g: Graph, a: str, b: str, sa: TensorShape, sb: TensorShape) -> str:
    view = g.nx
    if nx.has_path(view, a, b):
        return a
    if nx.has_path(view, b, a):
        return b
    if sb[1] >= sa[1] and sb[2] >= sa[2]:
        return b
    if sa[1] >= sb[1] and sa[2] >= sb[2]:
        return a
    return b


def _stride(src: int, dst: int) -> int | None:
    """The smallest stride ``s`` with ``ceil(src / s) == dst`` (None when there is none)."""
    for s in range(1, src + 1):
        if -(-src // s) == dst:
            return s
    return None


def _branch_bn(g: Graph, shortcut: str, branch: str) -> BatchNorm2d | None:
    """The last batchnorm on the branch (the nodes between the split and the add)."""
    view = g.nx
    nodes = (nx.ancestors(view, branch) | {branch}) - (nx.ancestors(view, shortcut) | {shortcut})
    found: BatchNorm2d | None = None
    for n in g.nodes():
        if n not in nodes:
            continue
        op = g.op(n)
        if isinstance(op, BatchNorm2d):
            found = op
        elif isinstance(op, FusedConv2d) and op.bn is not None:
            found = op.bn
    return found


def _unfixable(g: Graph, n: str, why: str) -> CnnirError:
    base = residual_mismatch(g, n)
    return ShapeError(f"{base.msg}; fix-residual cannot fix it: {why}", loc=base.loc, node=n)


__all__ = ["CheckResidual", "FixResidual", "mismatched"]
