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

Each op declares its arrays (:meth:`cnnir.ops.Op.params`, ``{name: shape}``, the
same shapes :mod:`cnnir.weights` initialises and saves); ``bias`` is the size of the
array named ``bias``, ``buffers`` the sizes of the op's ``buffers``.  An op kind
without a parameter rule raises a :class:`~cnnir.errors.PassError` naming the node,
never counts as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node
from ..ops import NoRule, Op, TensorShape, Weightless, numel
from . import register
from .base import Pass
from .support import input_shapes, no_rule, node_shapes

__all__ = ["CountParams", "count_params", "node_params", "op_params", "params_at", "input_shapes",
           "no_rule"]


_WEIGHTLESS = Weightless.params
_ZERO = (0, 0, 0)


def op_params(op: Op, ins: list[TensorShape]) -> tuple[int, int, int]:
    """``(params, bias, buffers)`` of an op given its input shapes (raises NoRule)."""
    if type(op).params is _WEIGHTLESS:
        return _ZERO
    shapes = op.params(ins)
    if not shapes:
        return (0, 0, 0)
    buffers = op.buffers
    p = buf = 0
    for name, shape in shapes.items():
        if name in buffers:
            buf += numel(shape)
        else:
            p += numel(shape)
    bias = shapes.get("bias")
    return (p, 0 if bias is None or "bias" in buffers else numel(bias), buf)


def params_at(graph: Graph, v: Node, known: dict[str, TensorShape],
              what: str) -> tuple[int, int, int]:
    """``(params, bias, buffers)`` of the node ``v`` in a walk; ``known`` maps the nodes
    walked so far to their shapes (``v``'s inputs among them)."""
    if v.meta.get("shape") is None:
        node_shapes(v, known, what)  # raises the clear error
    op = v.op
    if type(op).params is _WEIGHTLESS:
        return _ZERO
    try:
        # a known shape implies known inputs (infer-shapes leaves the rest unset)
        return op_params(op, [known[i] for i in v.inputs])
    except NoRule:
        raise no_rule(graph, v.name, what) from None


def node_params(graph: Graph, n: str) -> tuple[int, int, int]:
    """``(params, bias, buffers)`` of node ``n`` (shapes must be inferred)."""
    v = graph.node(n)
    try:
        return op_params(v.op, input_shapes(graph, n, "count-params"))
    except NoRule:
        raise no_rule(graph, n, "count-params") from None


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
        known: dict[str, TensorShape] = {}
        for v in graph.walk():
            p, b, buf = params_at(graph, v, known, "count-params")
            v.meta["params"] = {"params": p, "bias": b, "buffers": buf}
            known[v.name] = v.meta["shape"]
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
