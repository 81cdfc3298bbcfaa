"""Helpers every analysis pass shares: the no-rule error, input shapes, adaptive bins.

The per-op knowledge (parameters, cost, receptive field) lives on the ops
(:mod:`cnnir.ops`); a pass walks the graph and asks each op.  An op that lacks a
rule raises :class:`~cnnir.ops.NoRule`; :func:`no_rule` turns it into the
:class:`~cnnir.errors.PassError` that names the node and its source line.
"""

from __future__ import annotations

from typing import Any

from ..errors import PassError
from ..ir import Graph, Node
from ..ops import TensorShape, adaptive_bins


def no_rule(graph: Graph, n: str, what: str) -> PassError:
    """The error for an op kind that an analysis has no rule for."""
    op = graph.op(n)
    return PassError(
        f"{what}: no rule for op kind '{op.kind}' ({type(op).__name__}) at node '{n}'; "
        f"an unknown op is never counted as zero: add a rule for it",
        loc=graph.loc(n), node=n)


def _unknown_shape(node: Node, what: str) -> PassError:
    return PassError(f"{what}: the shape of '{node.name}' or of its inputs is unknown; "
                     f"run infer-shapes first (and fix its errors)",
                     loc=node.loc, node=node.name)


def node_shapes(node: Node, known: dict[str, Any], what: str) -> list[TensorShape]:
    """The shapes of ``node``'s inputs, from ``known`` (producer name -> shape, filled by
    the walk so far); raises when shapes were not inferred."""
    try:
        shapes = [known[i] for i in node.inputs]
        if node.meta["shape"] is None or None in shapes:
            raise KeyError(node.name)
    except KeyError:
        raise _unknown_shape(node, what) from None
    return shapes


def input_shapes(graph: Graph, n: str, what: str) -> list[TensorShape]:
    """The shapes of node ``n``'s inputs; raises when shapes were not inferred."""
    node = graph.node(n)
    return node_shapes(node, {i: graph.meta(i).get("shape") for i in node.inputs}, what)


def bin_matrix(size: int, out: int) -> Any:
    """``(out, size)`` numpy matrix: row i averages PyTorch's adaptive-pool bin i of an
    axis of ``size`` (:func:`adaptive_bins`).  What the ONNX exporter emits for an
    adaptive pool and what the importer recognises."""
    import numpy as np  # only the ONNX targets need the matrix

    m = np.zeros((out, size), np.float64)
    for i, (start, end) in enumerate(adaptive_bins(size, out)):
        m[i, start:end] = 1.0 / (end - start)
    return m


__all__ = ["no_rule", "node_shapes", "input_shapes", "adaptive_bins", "bin_matrix"]
