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

Each op declares its cost (:meth:`cnnir.ops.Op.cost`); an op kind without one raises a
:class:`~cnnir.errors.PassError` naming the node, it is never counted as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PassError
from ..ir import Graph
from ..ops import NoRule, TensorShape
from . import register
from .base import Pass
from .support import adaptive_bins, no_rule, node_shapes

__all__ = ["CountMacs", "count_macs", "adaptive_bins"]


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
        known: dict[str, TensorShape] = {}
        for v in graph.walk():
            op = v.op
            ins = node_shapes(v, known, "count-macs")
            out = v.meta["shape"]
            try:
                macs, other = op.cost(ins, out)
            except NoRule as exc:
                if exc.op is op:
                    raise no_rule(graph, v.name, "count-macs") from None
                raise PassError(f"count-macs: no rule for the fused activation "
                                f"'{exc.op.kind}'", loc=v.loc, node=v.name) from None
            known[v.name] = out
            macs *= batch
            other *= batch
            v.meta["cost"] = {"macs": macs, "flops": 2 * macs, "other_ops": other}
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
