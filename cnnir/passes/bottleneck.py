"""``insert-bottleneck``: put a 1x1 reducing conv in front of expensive convs.

Options
    ``min_channels`` (64): only convs with at least this many input channels;
    ``ratio`` (4): reduce to ``in_channels // ratio`` channels;
    ``channels`` (None): reduce to this absolute width instead of using ``ratio``
    (GoogLeNet's reductions are absolute: 16 in front of a 5x5 on 192 channels);
    ``kernels`` (3,5): kernel sizes to rewrite (a ``kxk`` conv, or ``khxkw`` with
    both sizes in the list).

Matches
    every :class:`~cnnir.ops.Conv2d` whose kernel is larger than 1x1 and made of
    sizes in ``kernels``, with ``in_channels >= min_channels``.

Checks (a skipped candidate is explained in the notes, shown by ``--explain``)
    * the conv is not grouped (a reduction in front of a grouped or depthwise conv
      would change what its groups see);
    * the reduced width is at least 1 and smaller than the input channels;
    * the conv is not already preceded by a 1x1 conv (through normalisation and
      activation layers): the pass is idempotent.

Produces
    ``1x1 conv (reduced width, stride 1, no padding)``, followed by the same
    normalisation and activation that follow the conv itself in the network (its
    own ``Conv2d -> BatchNorm2d -> act`` successor pattern, copied op for op), then
    the original conv reading the reduced tensor.  New nodes are named
    ``<conv>_reduce``, ``<conv>_reduce_bn``, ``<conv>_reduce_<act>``, carry the
    conv's source line and scope, and the 1x1 conv has a bias exactly when the conv
    has one.  The output shape of every conv is unchanged, so the rest of the
    network is untouched; where the graph carries weights, the rewritten conv's
    arrays are dropped (its input width changed) and backends draw fresh ones.

Notes report, per rewritten conv, over all of them, and for the whole model, the
parameters (``count-params``: trainable, biases and BN affine parameters included)
and MACs (``count-macs``) before and after; :attr:`InsertBottleneck.rewritten` and
:attr:`InsertBottleneck.model_totals` hold the same figures for scripts.

The conv's own successors are the template because the network uses them after
that very conv; a conv followed by nothing gets a bare 1x1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import PassError
from ..ir import Graph
from ..ops import FUSABLE_ACTIVATION, BatchNorm2d, Conv2d, FusedConv2d, Op, TensorShape
from ..util import human
from . import register
from .base import Pass
from .count_macs import count_macs
from .count_params import count_params, op_params
from .infer_shapes import InferShapes
from .rewrite import NewNode, insert_before, sole_user


def _cost(op: Op, ins: list[TensorShape]) -> tuple[int, int, TensorShape]:
    """(params, macs, output shape) of ``op`` on ``ins`` by the analysis passes' rules."""
    out = op.infer(ins)
    params = op_params(op, ins)[0]
    macs = op.cost(ins, out)[0]
    return params, macs, out


@register
@dataclass
class InsertBottleneck(Pass):
    """Insert 1x1 reductions in front of wide 3x3/5x5 convs; report params and MACs."""

    name = "insert-bottleneck"
    kind = "transform"
    min_channels: int = 64
    ratio: int = 4
    channels: int | None = None
    kernels: tuple[int, ...] = (3, 5)

    #: one dict per rewritten conv: conv, reduce, channels, params/macs before and after
    rewritten: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    #: whole-model ``{"params": (before, after), "macs": (before, after)}`` of the last run
    model_totals: dict[str, tuple[int, int]] = field(default_factory=dict, init=False,
                                                     repr=False)

    def __post_init__(self) -> None:
        if self.ratio < 1:
            raise PassError(f"insert-bottleneck: ratio must be at least 1, got {self.ratio}")
        if self.channels is not None and self.channels < 1:
            raise PassError(f"insert-bottleneck: channels must be at least 1, "
                            f"got {self.channels}")
        if not self.kernels or any(k < 1 for k in self.kernels):
            raise PassError(f"insert-bottleneck: kernels must be positive sizes, "
                            f"got {self.kernels}")

    def run(self, graph: Graph) -> Graph:
        self.rewritten = []
        self.model_totals = {}
        plan: dict[str, list[NewNode]] = {}
        rewire: dict[str, tuple[str, ...]] = {}
        taken: set[str] = set()
        for n in graph.nodes():
            width = self._check(graph, n)
            if width is None:
                continue
            nodes = self._build(graph, n, width, taken)
            plan[n] = nodes
            rewire[n] = (nodes[-1].name,)
        if not plan:
            self.note("no conv rewritten")
            return graph
        out = insert_before(graph, plan, rewire)
        if out.weights is not None:
            for n in plan:
                out.weights.pop(n, None)
        self.changed = True
        before_p = sum(r["params_before"] for r in self.rewritten)
        after_p = sum(r["params_after"] for r in self.rewritten)
        before_m = sum(r["macs_before"] for r in self.rewritten)
        after_m = sum(r["macs_after"] for r in self.rewritten)
        self.note(f"total over {len(self.rewritten)} conv(s): params {before_p:,} -> "
                  f"{after_p:,}, MACs {before_m:,} ({human(before_m)}) -> {after_m:,} "
                  f"({human(after_m)})")
        InferShapes().run(out)
        self.model_totals = {"params": (count_params(graph), count_params(out)),
                             "macs": (count_macs(graph), count_macs(out))}
        (p0, p1), (m0, m1) = self.model_totals["params"], self.model_totals["macs"]
        self.note(f"model: params {p0:,} -> {p1:,}, MACs {m0:,} ({human(m0)}) -> {m1:,} "
                  f"({human(m1)})")
        return out

    # -- match / check

    def _check(self, graph: Graph, n: str) -> int | None:
        """The reduced width for conv ``n``, or None (with a note when it is a candidate)."""
        op = graph.op(n)
        if not isinstance(op, Conv2d) or op.kernel == (1, 1):
            return None
        kh, kw = op.kernel
        if kh not in self.kernels or kw not in self.kernels:
            self.note(f"skip '{n}': kernel {kh}x{kw} is not in kernels="
                      f"{','.join(map(str, self.kernels))}")
            return None
        (src,) = graph.inputs(n)
        prev = _preceding_1x1(graph, src)
        if prev is not None:
            self.note(f"skip '{n}': already preceded by the 1x1 conv '{prev}'")
            return None
        cin = graph.shape(src)[0]
        if cin < self.min_channels:
            self.note(f"skip '{n}': {cin} input channels < min_channels={self.min_channels}")
            return None
        if op.groups != 1:
            self.note(f"skip '{n}': grouped conv (groups={op.groups})")
            return None
        width = self.channels if self.channels is not None else cin // self.ratio
        if not 1 <= width < cin:
            self.note(f"skip '{n}': a reduction to {width} channels does not reduce its "
                      f"{cin} input channels")
            return None
        return width

    # -- rewrite

    def _build(self, graph: Graph, n: str, width: int, taken: set[str]) -> list[NewNode]:
        op = graph.op(n)
        assert isinstance(op, Conv2d)
        (src,) = graph.inputs(n)
        loc, scope = graph.loc(n), graph.scope(n)

        def fresh(base: str) -> str:
            name = graph.unique_name(base)
            i = 2
            while name in taken:
                name = graph.unique_name(f"{base}_{i}")
                i += 1
            taken.add(name)
            return name

        reduce_op = Conv2d(width, (1, 1), bias=op.bias)
        nodes = [NewNode(fresh(f"{n}_reduce"), reduce_op, (src,), loc, scope)]
        for follower in _successor_pattern(graph, n):
            suffix = "bn" if isinstance(follower, BatchNorm2d) else follower.kind
            nodes.append(NewNode(fresh(f"{n}_reduce_{suffix}"), follower,
                                 (nodes[-1].name,), loc, scope))

        in_shape = graph.shape(src)
        p_before, m_before, _ = _cost(op, [in_shape])
        p_red, m_red, red_shape = _cost(reduce_op, [in_shape])
        p_after, m_after = p_red, m_red
        for new in nodes[1:]:
            p, m, _ = _cost(new.op, [red_shape])
            p_after += p
            m_after += m
        p_conv, m_conv, _ = _cost(op, [red_shape])
        p_after += p_conv
        m_after += m_conv
        self.rewritten.append({
            "conv": n, "reduce": nodes[0].name, "channels": width,
            "in_channels": in_shape[0], "added": [x.name for x in nodes],
            "params_before": p_before, "params_after": p_after,
            "macs_before": m_before, "macs_after": m_after,
        })
        follow = "".join(f" + {x.op.kind}" for x in nodes[1:])
        self.note(f"'{n}' ({op.kernel[0]}x{op.kernel[1]}, {in_shape[0]}->{op.out_channels} "
                  f"channels): inserted 1x1 conv '{nodes[0].name}' to {width} channels"
                  f"{follow}; params {p_before:,} -> {p_after:,}, MACs {m_before:,} "
                  f"({human(m_before)}) -> {m_after:,} ({human(m_after)})")
        return nodes


def _is_bn(op: Op) -> bool:
    return isinstance(op, BatchNorm2d)


def _is_activation(op: Op) -> bool:
    """A weightless elementwise activation (copied after an inserted 1x1 conv)."""
    return op.has(FUSABLE_ACTIVATION)


def _successor_pattern(graph: Graph, n: str) -> list[Op]:
    """The BatchNorm2d and/or activation that follow conv ``n`` (its only readers)."""
    out: list[Op] = []
    cur = n
    for want in (_is_bn, _is_activation):
        nxt = sole_user(graph, cur)
        if nxt is None or not want(graph.op(nxt)):
            continue
        out.append(graph.op(nxt))
        cur = nxt
    return out


def _preceding_1x1(graph: Graph, src: str) -> str | None:
    """The 1x1 conv that produces ``src``, looking through BN and activations."""
    cur = src
    while True:
        op = graph.op(cur)
        if isinstance(op, FusedConv2d):
            op = op.conv
        if isinstance(op, Conv2d):
            return cur if op.kernel == (1, 1) else None
        if not (_is_bn(op) or _is_activation(op)):
            return None
        (cur,) = graph.inputs(cur)


__all__ = ["InsertBottleneck"]
