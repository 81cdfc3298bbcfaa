"""Helpers shared by the transform passes (no pass is registered here).

:func:`insert_before` builds a new graph with extra nodes placed, in the printer's
order, right before the node they were made for, so a rewritten network still
reads like its source (``graph.add`` alone appends, and the printer's order is
insertion order wherever that is a valid topological order).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, SourceLoc
from ..ops import Op


@dataclass(frozen=True)
class NewNode:
    """A node to insert: name, op, inputs (existing or earlier new nodes), loc, scope."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    loc: SourceLoc | None
    scope: tuple[str, ...]


def insert_before(
    graph: Graph,
    plan: dict[str, list[NewNode]],
    rewire: dict[str, tuple[str, ...]],
) -> Graph:
    """A new graph: ``graph`` with ``plan[target]`` inserted just before ``target`` and
    the nodes of ``rewire`` reading new inputs.

    Keeps blocks, locs, scopes, outputs, weights (a shallow copy of the dict) and
    source; meta is left empty (the pass manager re-infers shapes).
    """
    out = Graph(graph.name)
    for n in graph.nodes():
        for new in plan.get(n, ()):
            out.add(new.name, new.op, new.inputs, new.loc, new.scope)
        node = graph.node(n)
        out.add(n, node.op, rewire.get(n, node.inputs), node.loc, node.scope)
    out.outputs = list(graph.outputs)
    out.blocks = dict(graph.blocks)
    out.weights = None if graph.weights is None else dict(graph.weights)
    out.source = graph.source
    return out


def sole_user(graph: Graph, name: str) -> str | None:
    """The only consumer of ``name`` when it has exactly one and is not a graph output."""
    users = graph.users(name)
    if len(users) != 1 or name in graph.outputs:
        return None
    return users[0]


__all__ = ["NewNode", "insert_before", "sole_user"]
