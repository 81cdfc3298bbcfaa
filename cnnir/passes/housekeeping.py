"""Housekeeping transforms a compiler is expected to have.

``remove-dropout``
    Matches every :class:`~cnnir.ops.Dropout`.  Dropout is the identity in
    inference, so each one is removed and its users (and the graph outputs) read
    its input instead.  Training graphs need their dropout: do not run it on them.
``eliminate-dead-code``
    Matches nodes from which no graph output can be reached (networkx
    ``ancestors`` of the outputs): layers whose result nobody reads.  They are
    removed with their weights.  Input nodes stay: they are the model's interface.
``fold-identity``
    Matches nodes that compute the identity and removes them, their users reading
    their input: :class:`~cnnir.ops.Identity`; ``flatten`` of an already flat
    tensor; max/avg pools with a 1x1 kernel, stride 1 and no padding; ``upsample``
    by 1x1; adaptive average pooling to the input's own size; global average
    pooling of a 1x1 map.  A candidate that is a node's only way to a graph
    output is still folded (the output becomes its input).

All three return a new graph and keep blocks, locations and scopes of the nodes
that remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..ir import Graph
from ..ops import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Identity,
    Input,
    MaxPool2d,
    Upsample,
)
from . import register
from .base import Pass


def bypass(graph: Graph, name: str) -> str:
    """Remove single-input node ``name``; its users and the outputs read its input."""
    (src,) = graph.inputs(name)
    graph.replace_uses(name, src)
    graph.remove(name)
    if graph.weights is not None:
        graph.weights.pop(name, None)
    return src


@register
@dataclass
class RemoveDropout(Pass):
    """Remove dropout layers (the identity at inference)."""

    name = "remove-dropout"
    kind = "transform"

    def run(self, graph: Graph) -> Graph:
        found = [n for n in graph.nodes() if isinstance(graph.op(n), Dropout)]
        if not found:
            self.note("no dropout layer")
            return graph
        out = graph.copy()
        for n in found:
            src = bypass(out, n)
            self.note(f"removed '{n}' ({out.op(src).kind} '{src}' feeds its users)")
        self.changed = True
        return out


@register
@dataclass
class EliminateDeadCode(Pass):
    """Remove layers whose output reaches no graph output."""

    name = "eliminate-dead-code"
    kind = "transform"

    def run(self, graph: Graph) -> Graph:
        g = graph.nx
        live: set[str] = set(graph.outputs)
        for o in graph.outputs:
            live |= nx.ancestors(g, o)
        dead = [n for n in graph.nodes()
                if n not in live and not isinstance(graph.op(n), Input)]
        if not dead:
            self.note("no dead code: every layer reaches an output")
            return graph
        out = graph.copy()
        for n in reversed(dead):  # users first
            out.remove(n)
            if out.weights is not None:
                out.weights.pop(n, None)
        for n in dead:
            loc = graph.loc(n)
            self.note(f"removed '{n}' ({graph.op(n).kind}"
                      + (f", {loc.short}" if loc is not None else "")
                      + "): no output reads it")
        self.changed = True
        return out


def identity_reason(graph: Graph, n: str) -> str | None:
    """Why node ``n`` computes the identity, or None when it does not."""
    op = graph.op(n)
    if isinstance(op, Identity):
        return "identity"
    ins = graph.inputs(n)
    if len(ins) != 1:
        return None
    shape = graph.meta(ins[0]).get("shape")
    if shape is None:
        return None
    if isinstance(op, Flatten) and len(shape) == 1:
        return "flatten of a flat tensor"
    if isinstance(op, (MaxPool2d, AvgPool2d)) and op.kernel == (1, 1) \
            and op.stride == (1, 1) and not any(op.padding):
        return f"{op.kind} with a 1x1 kernel, stride 1, no padding"
    if isinstance(op, Upsample) and op.scale == (1, 1) and op.size is None:
        return "upsample by 1"
    if isinstance(op, AdaptiveAvgPool2d) and len(shape) == 3 \
            and tuple(op.output_size) == tuple(shape[1:]):
        return f"adaptive pool to the input's own size {shape[1]}x{shape[2]}"
    if isinstance(op, GlobalAvgPool) and len(shape) == 3 and shape[1:] == (1, 1):
        return "global pool of a 1x1 map"
    return None


@register
@dataclass
class FoldIdentity(Pass):
    """Remove layers that compute the identity (identity, 1x1/1 pools, flat flatten...)."""

    name = "fold-identity"
    kind = "transform"

    def run(self, graph: Graph) -> Graph:
        found = [(n, r) for n in graph.nodes() if (r := identity_reason(graph, n)) is not None]
        if not found:
            self.note("no layer computes the identity")
            return graph
        out = graph.copy()
        for n, reason in found:
            src = bypass(out, n)
            self.note(f"folded '{n}' ({reason}); its users read '{src}'")
        self.changed = True
        return out


__all__ = ["RemoveDropout", "EliminateDeadCode", "FoldIdentity", "bypass", "identity_reason"]
