"""``count-params``: parameters per node, trainable weights and buffers apart.

Matches: every node.  Produces ``meta["params"]``, a dict of ints::

    {"params": 9408,      # trainable elements, weights + biases (what torchvision's
                          # num_params and sum(p.numel() for p in parameters()) count)
     "bias": 0,           # the part of "params" that is biases (included above)
     "buffers": 0}        # non-trainable state: BatchNorm running mean and variance

=================  =========================================================
op                 params (bias)                              buffers
=================  =========================================================
conv2d             ``Cout * Cin/groups * kh * kw`` (+ ``Cout``)   0
conv_transpose2d   ``Cin * Cout/groups * kh * kw`` (+ ``Cout``)   0
fused_conv2d       conv weights + ``Cout`` (always: the folded    0
                   BN shift or the conv bias, as in the weights)
batchnorm2d        ``2C`` (gamma; beta counted as bias)           ``2C``
linear             ``in * out`` (+ ``out``)                       0
everything else    0 (no weights: activations, pools, LRN, ...)   0
=================  =========================================================

BatchNorm's ``num_batches_tracked`` counter (one int64 in PyTorch's state_dict)
is training bookkeeping, not model state, and is not counted.

The rules are a table keyed by op type: an op kind without a rule raises a
:class:`~cnnir.errors.PassError` naming the node, never counts as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import ops as O
from ..errors import PassError
from ..ir import Graph
from ..ops import Op, TensorShape
from . import register
from .base import Pass

#: (params, bias, buffers) of one node given its op and its input shapes
Rule = Callable[[Op, list[TensorShape]], tuple[int, int, int]]


def _none(op: Op, ins: list[TensorShape]) -> tuple[int, int, int]:
    return (0, 0, 0)


def _conv(op: O.Conv2d, ins: list[TensorShape]) -> tuple[int, int, int]:
    cin = ins[0][0]
    w = op.out_channels * (cin // op.groups) * op.kernel[0] * op.kernel[1]
    b = op.out_channels if op.bias else 0
    return (w + b, b, 0)


def _conv_t(op: O.ConvTranspose2d, ins: list[TensorShape]) -> tuple[int, int, int]:
    cin = ins[0][0]
    w = cin * (op.out_channels // op.groups) * op.kernel[0] * op.kernel[1]
    b = op.out_channels if op.bias else 0
    return (w + b, b, 0)


def _fused(op: O.FusedConv2d, ins: list[TensorShape]) -> tuple[int, int, int]:
    c = op.conv
    w = c.out_channels * (ins[0][0] // c.groups) * c.kernel[0] * c.kernel[1]
    return (w + c.out_channels, c.out_channels, 0)


def _bn(op: O.BatchNorm2d, ins: list[TensorShape]) -> tuple[int, int, int]:
    c = ins[0][0]
    return (2 * c, c, 2 * c)


def _linear(op: O.Linear, ins: list[TensorShape]) -> tuple[int, int, int]:
    b = op.out_features if op.bias else 0
    return (ins[0][0] * op.out_features + b, b, 0)


RULES: dict[type[Op], Rule] = {
    O.Conv2d: _conv,  # type: ignore[dict-item]
    O.ConvTranspose2d: _conv_t,  # type: ignore[dict-item]
    O.FusedConv2d: _fused,  # type: ignore[dict-item]
    O.BatchNorm2d: _bn,  # type: ignore[dict-item]
    O.Linear: _linear,  # type: ignore[dict-item]
    **{t: _none for t in (
        O.Input, O.LocalResponseNorm, O.ReLU, O.LeakyReLU, O.ReLU6, O.Sigmoid,
        O.HardSigmoid, O.Tanh, O.HardSwish, O.SiLU, O.Softmax, O.MaxPool2d, O.AvgPool2d,
        O.AdaptiveAvgPool2d, O.GlobalAvgPool, O.Upsample, O.Dropout, O.Identity, O.Flatten,
        O.Concat, O.Add, O.Mul,
    )},
}
"""Parameter rule per op type (exact type: a new op kind needs its own rule)."""


def no_rule(graph: Graph, n: str, what: str) -> PassError:
    """The error for an op kind that an analysis has no rule for."""
    op = graph.op(n)
    return PassError(
        f"{what}: no rule for op kind '{op.kind}' ({type(op).__name__}) at node '{n}'; "
        f"an unknown op is never counted as zero: add a rule for it",
        loc=graph.loc(n), node=n)


def input_shapes(graph: Graph, n: str, attrs: dict[str, Any], what: str) -> list[TensorShape]:
    """The shapes of node ``n``'s inputs; raises when shapes were not inferred."""
    nodes = graph._g.nodes
    try:
        shapes = [nodes[i]["meta"]["shape"] for i in attrs["inputs"]]
        if attrs["meta"]["shape"] is None or None in shapes:
            raise KeyError(n)
    except KeyError:
        raise PassError(f"{what}: the shape of '{n}' or of its inputs is unknown; "
                        f"run infer-shapes first (and fix its errors)",
                        loc=attrs["loc"], node=n) from None
    return shapes


def node_params(graph: Graph, n: str) -> tuple[int, int, int]:
    """``(params, bias, buffers)`` of node ``n`` (shapes must be inferred)."""
    attrs = graph._attrs(n)
    rule = RULES.get(type(attrs["op"]))
    if rule is None:
        raise no_rule(graph, n, "count-params")
    return rule(attrs["op"], input_shapes(graph, n, attrs, "count-params"))


@register
@dataclass
class CountParams(Pass):
    """Count parameters per node: trainable (bias included) and buffers apart."""

    name = "count-params"
    kind = "analysis"

    #: totals of the last run
    total_params: int = field(default=0, init=False, repr=False)
    total_buffers: int = field(default=0, init=False, repr=False)

    def run(self, graph: Graph) -> Graph:
        params = buffers = 0
        node_attrs = graph._g.nodes
        for n in graph.nodes():
            attrs = node_attrs[n]
            op = attrs["op"]
            rule = RULES.get(type(op))
            if rule is None:
                raise no_rule(graph, n, "count-params")
            p, b, buf = rule(op, input_shapes(graph, n, attrs, "count-params"))
            attrs["meta"]["params"] = {"params": p, "bias": b, "buffers": buf}
            params += p
            buffers += buf
        self.total_params = params
        self.total_buffers = buffers
        return graph


def count_params(graph: Graph) -> int:
    """Run :class:`CountParams` and return the total trainable parameters."""
    p = CountParams()
    p.run(graph)
    return p.total_params
