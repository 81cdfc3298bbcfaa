"""``fuse-conv-bn-relu``: fold an inference BatchNorm (and an activation) into its conv.

Matches
    ``Conv2d -> BatchNorm2d [-> activation]`` and, with ``act_only=True`` (the
    default), ``Conv2d -> activation``, where the activation is any op with the
    ``fusable_activation`` trait (weightless and elementwise: relu, relu6,
    leaky_relu, sigmoid, tanh, hardsigmoid, hardswish, silu).  An activation with
    weights (a PReLU) does not declare the trait and is never folded.

Checks (a candidate that fails one is skipped, and ``--explain`` says why)
    * the conv's output has exactly one user, the BN (or the activation), and is not
      a graph output: another reader needs the un-normalised tensor;
    * the activation is absorbed only when the BN's output likewise feeds nothing
      but the activation and is not a graph output; otherwise conv + BN still fuse
      and the activation stays a node of its own;
    * ``Conv2d -> activation`` alone fuses only when the conv has a bias: a fused
      conv always carries one (:mod:`cnnir.weights`, ``count-params``), so fusing a
      bias-free conv would add parameters that were not in the network;
    * where ``graph.weights`` holds arrays, the conv's and the BN's must both be there.

Produces
    one :class:`~cnnir.ops.FusedConv2d` node named after the conv, with the conv's
    source location and scope; the BN and activation nodes disappear and their
    users read the fused node.  When the graph carries weights, the BN is folded
    with :func:`cnnir.weights.fold_batchnorm` into ``weights[conv] = {"weight",
    "bias"}`` and the BN's arrays are dropped, so the fused network computes the
    same function in inference mode.

Not matched: a transposed conv before a BN (``FusedConv2d`` holds a ``Conv2d``),
and ``Linear -> BatchNorm1d``: the op set has no BatchNorm1d (``BatchNorm2d``
needs a ``CxHxW`` map), so there is nothing to fold after a linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ..errors import PassError
from ..ir import Graph
from ..ops import (
    FUSABLE_ACTIVATION,
    Activation,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    FusedConv2d,
    Op,
)
from ..weights import fold_batchnorm
from . import register
from .base import Pass
from .rewrite import sole_user


def _fusable(op: Op) -> bool:
    return op.has(FUSABLE_ACTIVATION)


def _follows(op: Op) -> bool:
    """What a conv may absorb: a BatchNorm2d or a fusable activation."""
    return isinstance(op, BatchNorm2d) or op.has(FUSABLE_ACTIVATION)


@dataclass
class _Match:
    conv: str
    bn: str | None
    act: str | None


@register
@dataclass
class FuseConvBnRelu(Pass):
    """Fuse Conv2d -> BatchNorm2d (-> activation) into one fused conv, folding weights."""

    name = "fuse-conv-bn-relu"
    kind = "transform"
    #: also fuse ``Conv2d -> activation`` without a BN (conv with a bias only)
    act_only: bool = True

    def run(self, graph: Graph) -> Graph:
        matches = [m for n in graph.nodes() if (m := self._match(graph, n)) is not None]
        if not matches:
            self.note("nothing fused")
            return graph
        out = graph.copy()
        for m in matches:
            self._rewrite(out, m)
        self.changed = True
        n_bn = sum(m.bn is not None for m in matches)
        n_act = sum(m.act is not None for m in matches)
        self.note(f"fused {len(matches)} conv(s): {n_bn} batchnorm(s) and {n_act} "
                  f"activation(s) folded, {n_bn + n_act} node(s) removed")
        return out

    # -- match / check

    def _match(self, graph: Graph, n: str) -> _Match | None:
        op = graph.op(n)
        if isinstance(op, ConvTranspose2d):
            user = sole_user(graph, n)
            if user is not None and isinstance(graph.op(user), BatchNorm2d):
                self.note(f"skip '{n}': a transposed conv is not fused (a fused conv "
                          f"holds a conv2d)")
            return None
        if not isinstance(op, Conv2d):
            return None
        users = graph.users(n)
        follow = [u for u in users if _follows(graph.op(u))]
        if not follow:
            return None
        nxt = sole_user(graph, n)
        if nxt is None:
            why = ("it is a graph output" if n in graph.outputs
                   else f"it has {len(users)} users ({', '.join(users)})")
            self.note(f"skip '{n}': its output also feeds something else than "
                      f"'{follow[0]}' ({why})")
            return None
        nxt_op = graph.op(nxt)
        if _fusable(nxt_op):
            if not self.act_only:
                return None
            if not op.bias:
                self.note(f"skip '{n}' -> '{nxt}': the conv has no bias and no BN follows; "
                          f"a fused conv always has a bias, fusing would add "
                          f"{op.out_channels} parameters")
                return None
            return self._checked(graph, _Match(n, None, nxt))
        # nxt is a BatchNorm2d
        act = None
        after = sole_user(graph, nxt)
        if after is not None and _fusable(graph.op(after)):
            act = after
        elif any(_fusable(graph.op(u)) for u in graph.users(nxt)):
            why = ("it is a graph output" if nxt in graph.outputs
                   else f"it has {len(graph.users(nxt))} users")
            self.note(f"'{n}': fused with '{nxt}' only; the activation stays apart because "
                      f"the batchnorm's output is needed unactivated ({why})")
        return self._checked(graph, _Match(n, nxt, act))

    def _checked(self, graph: Graph, m: _Match) -> _Match:
        w = graph.weights
        if w is not None and m.bn is not None and (m.conv in w) != (m.bn in w):
            have, lack = (m.conv, m.bn) if m.conv in w else (m.bn, m.conv)
            raise PassError(f"fuse-conv-bn-relu: the graph has weights for '{have}' but none "
                            f"for '{lack}', so the batchnorm cannot be folded",
                            loc=graph.loc(m.conv), node=m.conv)
        return m

    # -- rewrite

    def _rewrite(self, g: Graph, m: _Match) -> None:
        conv = g.op(m.conv)
        assert isinstance(conv, Conv2d)
        bn = g.op(m.bn) if m.bn is not None else None
        # matched by its trait; a FusedConv2d keeps it as its activation
        act = cast("Activation | None", g.op(m.act) if m.act is not None else None)
        assert bn is None or isinstance(bn, BatchNorm2d)
        assert act is None or act.has(FUSABLE_ACTIVATION)
        last = m.act or m.bn
        assert last is not None
        if g.weights is not None and bn is not None and m.conv in g.weights:
            cw = g.weights[m.conv]
            bw = g.weights[m.bn]  # type: ignore[index]
            weight, bias = fold_batchnorm(cw["weight"], cw.get("bias"), bw["weight"],
                                          bw["bias"], bw["running_mean"], bw["running_var"],
                                          bn.eps)
            g.weights[m.conv] = {"weight": weight, "bias": bias}
        g.set_op(m.conv, FusedConv2d(conv, bn, act))
        g.replace_uses(last, m.conv)
        for gone in (m.act, m.bn):
            if gone is not None:
                g.remove(gone)
                if g.weights is not None:  # Graph.remove drops them too; say it here
                    g.weights.pop(gone, None)
        parts = [p for p in (m.bn, m.act) if p is not None]
        self.note(f"'{m.conv}' <- {' + '.join(repr(p) for p in parts)}")


__all__ = ["FuseConvBnRelu"]
