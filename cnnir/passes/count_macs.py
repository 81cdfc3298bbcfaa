"""``count-macs``: multiply-accumulates, FLOPs and the other arithmetic of every node.

Matches: every node.  Produces ``meta["cost"]``, a dict of ints for ``batch``
images (option, default 1)::

    {"macs": 118013952,    # multiply-accumulates of conv, transposed conv, linear
     "flops": 236027904,   # 2 * macs (one multiply + one add), named apart
     "other_ops": 802816}  # elementwise arithmetic: bias, BN, activations, pools...

``macs`` follows the papers' and torchvision's convention (torchvision's "GFLOPS"
metadata and the ResNet/GoogLeNet "FLOPs" columns are these MACs):

=================  ==========================================================
conv2d             ``Hout * Wout * Cout * Cin/groups * kh * kw``
conv_transpose2d   ``Hin * Win * Cin * Cout/groups * kh * kw`` (every input
                   pixel scatters one kernel)
fused_conv2d       the conv's MACs (the BN is folded into weights and bias)
linear             ``in * out``
=================  ==========================================================

``other_ops`` counts elementary operations per *output* element (an add, a
multiply, a compare, or one evaluation of exp/tanh/sigmoid each count one):

=====================  ====================================================
bias (conv, linear)    1 (the add), also for a fused conv's folded BN shift
batchnorm2d            2 (inference form ``x * scale + shift``)
relu / tanh / sigmoid  1
leaky_relu, relu6      2 (compare + multiply; two compares)
silu                   2 (sigmoid, multiply)
hardsigmoid            4 (add 3, two clamps, multiply by 1/6)
hardswish              5 (hardsigmoid, multiply)
fused activation       as the activation above
softmax                3 (exp, accumulate, divide)
lrn                    ``2 * size + 3`` (size squares, size-1 adds, scale,
                       offset, power, divide)
maxpool2d              ``kh * kw - 1`` compares
avgpool2d              ``kh * kw`` (adds and one divide)
adaptive_avgpool2d     the size of its bin (PyTorch's bins, summed exactly)
global_avgpool         ``H * W`` of its input
upsample               nearest: 0 (a gather); bilinear: 7 (4 mul, 3 add)
add, mul               1
concat, flatten,       0 (data movement, no arithmetic; dropout is the
dropout, identity,     identity at inference)
input
=====================  ====================================================

The rules are a table keyed by op type; an op kind without one raises a
:class:`~cnnir.errors.PassError`, it is never counted as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import ops as O
from ..errors import PassError
from ..ir import Graph
from ..ops import Op, TensorShape
from . import register
from .base import Pass
from .count_params import input_shapes, no_rule

#: (macs, other_ops) per image given the op, the input shapes and the output shape
CostRule = Callable[[Op, list[TensorShape], TensorShape], tuple[int, int]]


def _numel(shape: TensorShape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _conv(op: O.Conv2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    c, h, w = out
    macs = h * w * c * (ins[0][0] // op.groups) * op.kernel[0] * op.kernel[1]
    return macs, (c * h * w if op.bias else 0)


def _conv_t(op: O.ConvTranspose2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    cin, h, w = ins[0]
    macs = h * w * cin * (op.out_channels // op.groups) * op.kernel[0] * op.kernel[1]
    return macs, (_numel(out) if op.bias else 0)


#: elementwise ops per output element of each activation
ACT_OPS: dict[type[Op], int] = {
    O.ReLU: 1, O.Tanh: 1, O.Sigmoid: 1, O.LeakyReLU: 2, O.ReLU6: 2, O.SiLU: 2,
    O.HardSigmoid: 4, O.HardSwish: 5,
}


def _fused(op: O.FusedConv2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    macs, _ = _conv(op.conv, ins, out)
    per = 1  # the bias: the conv's own or the folded BN shift (weights always carry one)
    if op.act is not None:
        act = ACT_OPS.get(type(op.act))
        if act is None:
            raise PassError(f"count-macs: no rule for the fused activation '{op.act.kind}'")
        per += act
    return macs, per * _numel(out)


def _linear(op: O.Linear, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return ins[0][0] * op.out_features, (op.out_features if op.bias else 0)


def _per_element(k: int) -> CostRule:
    def rule(op: Op, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, k * _numel(out)
    return rule


def _lrn(op: O.LocalResponseNorm, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return 0, (2 * op.size + 3) * _numel(out)


def _maxpool(op: O.MaxPool2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return 0, (op.kernel[0] * op.kernel[1] - 1) * _numel(out)


def _avgpool(op: O.AvgPool2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return 0, op.kernel[0] * op.kernel[1] * _numel(out)


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins ``[start, end)`` along one axis."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive(op: O.AdaptiveAvgPool2d, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    c, h, w = ins[0]
    sum_h = sum(e - s for s, e in adaptive_bins(h, op.output_size[0]))
    sum_w = sum(e - s for s, e in adaptive_bins(w, op.output_size[1]))
    return 0, c * sum_h * sum_w


def _global(op: O.GlobalAvgPool, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return 0, _numel(ins[0])


def _upsample(op: O.Upsample, ins: list[TensorShape], out: TensorShape) -> tuple[int, int]:
    return 0, (7 * _numel(out) if op.mode == "bilinear" else 0)


RULES: dict[type[Op], CostRule] = {
    O.Conv2d: _conv,  # type: ignore[dict-item]
    O.ConvTranspose2d: _conv_t,  # type: ignore[dict-item]
    O.FusedConv2d: _fused,  # type: ignore[dict-item]
    O.Linear: _linear,  # type: ignore[dict-item]
    O.BatchNorm2d: _per_element(2),
    O.LocalResponseNorm: _lrn,  # type: ignore[dict-item]
    **{t: _per_element(k) for t, k in ACT_OPS.items()},
    O.Softmax: _per_element(3),
    O.MaxPool2d: _maxpool,  # type: ignore[dict-item]
    O.AvgPool2d: _avgpool,  # type: ignore[dict-item]
    O.AdaptiveAvgPool2d: _adaptive,  # type: ignore[dict-item]
    O.GlobalAvgPool: _global,  # type: ignore[dict-item]
    O.Upsample: _upsample,  # type: ignore[dict-item]
    O.Add: _per_element(1),
    O.Mul: _per_element(1),
    **{t: _per_element(0) for t in (O.Input, O.Concat, O.Flatten, O.Dropout, O.Identity)},
}
"""Cost rule per op type (exact type: a new op kind needs its own rule)."""


@register
@dataclass
class CountMacs(Pass):
    """Count MACs (conv, transposed conv, linear), FLOPs = 2 MACs, and other ops."""

    name = "count-macs"
    kind = "analysis"
    batch: int = 1

    #: totals of the last run
    total_macs: int = field(default=0, init=False, repr=False)
    total_other_ops: int = field(default=0, init=False, repr=False)

    def run(self, graph: Graph) -> Graph:
        if self.batch < 1:
            raise PassError(f"count-macs: batch must be at least 1, got {self.batch}")
        batch = self.batch
        macs_total = other_total = 0
        node_attrs = graph._g.nodes
        for n in graph.nodes():
            attrs = node_attrs[n]
            op = attrs["op"]
            rule = RULES.get(type(op))
            if rule is None:
                raise no_rule(graph, n, "count-macs")
            ins = input_shapes(graph, n, attrs, "count-macs")
            try:
                macs, other = rule(op, ins, attrs["meta"]["shape"])
            except PassError as exc:
                raise exc.with_context(attrs["loc"], n) from None
            macs *= batch
            other *= batch
            attrs["meta"]["cost"] = {"macs": macs, "flops": 2 * macs, "other_ops": other}
            macs_total += macs
            other_total += other
        self.total_macs = macs_total
        self.total_other_ops = other_total
        return graph


def count_macs(graph: Graph, batch: int = 1) -> int:
    """Run :class:`CountMacs` and return the total MACs."""
    p = CountMacs(batch=batch)
    p.run(graph)
    return p.total_macs
