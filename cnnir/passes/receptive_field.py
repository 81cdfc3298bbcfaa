"""``receptive-field``: the receptive field of every node, per axis, relative to the input.

Matches: every node.  Produces ``meta["rf"]``, an :class:`RF`::

    RF(size=(212, 212),      # the largest RF over all paths from the input, in pixels
       min_size=(212, 212),  # the smallest (how much the shallowest path sees)
       stride=(32, 32),      # effective stride: input pixels between adjacent units
       padding=(90, 90),     # effective padding: unit 0's RF starts at -padding
       aligned=True,         # all paths agree on stride and centre offset
       whole=False)          # a global pool / linear layer: the unit sees everything

For a chain with kernel k_l (dilated ``d(k-1)+1``), stride s_l, begin padding p_l:
``r = 1 + sum (k_l - 1) prod_{i<l} s_i``, ``S = prod s_l``, ``P = sum p_l prod_{i<l} s_i``;
the centre of unit x is ``x*S - P + (r-1)/2``.  Stride and padding are reported for
the path with the largest RF.  Where paths meet (concat, add, mul), each path keeps
its own (r, S, P); ``aligned`` says whether all paths share S and the centre offset
``P - (r-1)/2``.  BatchNorm, activations, LRN, dropout and other per-pixel ops leave
the RF as it is.

How each op maps its input's units to its output's units:

* conv / pool: as above.  ``ceil_mode`` changes how many units there are, not the RF.
* transposed conv (stride s): an output unit reads ``((k-1)//s) + 1`` input units
  (for dilation 1); the stride divides by s (it may become a fraction, printed as
  such, until a later stride multiplies it back, as in U-Net).
* upsample (scale s): nearest reads 1 unit, bilinear 2; the stride divides by s
  (``align_corners``: by ``(O-1)/(I-1)``).
* adaptive average pool: an exact pool when the input size is a multiple of the
  output size; otherwise PyTorch's bins differ in size, the largest bin is used and
  ``aligned`` is False (a note says so).
* global average pool, linear layer (and an adaptive pool to 1x1): every output sees
  the whole input; ``whole`` is True and ``size`` is the union of the RFs of all
  units of the input map (``r + (n-1)*S``), padding included.  ``whole`` is also
  set where the geometry says so (a 7x7 pool leaving one unit whose window spans
  the input), and stays set downstream.
* flatten carries the RF of the map it flattens (each element is one map unit).
* a broadcasting merge (add, mul) whose operand is smaller than its output along H
  or W (squeeze-excitation's ``CxHxW * Cx1x1`` gate): the operand is the same for
  every output unit, so it carries no stride and no alignment.  The result keeps
  the spatial operands' size, stride, padding and alignment (the local window
  around each unit) and is ``whole`` where the operand sees the whole input (a
  global pool in the gate), as every unit then does.  An operand that does not see
  the whole input marks the result unaligned, with a note.

Each op declares its geometry (:meth:`cnnir.ops.Op.receptive_field`, in the terms of
:mod:`cnnir.ops.rf`); this pass holds no per-op table.

One forward sweep in topological order.  Each node keeps, per axis, one summary per
distinct effective stride (largest and smallest r, the padding of the largest, the
range of centre offsets), so the sweep is linear in the graph's size however many
paths there are; a merge unions the summaries.  An op kind without a rule raises a
:class:`~cnnir.errors.PassError` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import Graph, Node
from ..ops import BROADCAST, Input, NoRule, TensorShape
from ..ops.rf import norm as _norm
from . import register
from .base import Pass
from .support import no_rule, node_shapes

Num = Any  # int, or Fraction where a transposed conv or upsampling divides the stride


@dataclass(frozen=True, slots=True)
class RF:
    """The receptive field of one node; pairs are ``(height, width)``."""

    size: tuple[Num, Num]
    min_size: tuple[Num, Num]
    stride: tuple[Num, Num]
    padding: tuple[Num, Num]
    aligned: bool
    whole: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: ints stay ints, fractions become floats."""
        def j(p: tuple[Num, Num]) -> list[Any]:
            return [v if isinstance(v, int) else float(v) for v in p]
        return {"size": j(self.size), "min_size": j(self.min_size), "stride": j(self.stride),
                "padding": j(self.padding), "aligned": self.aligned, "whole": self.whole}

    def __str__(self) -> str:
        def v(x: Num) -> str:
            return str(x) if isinstance(x, int) else f"{float(x):g}"

        def f(p: tuple[Num, Num]) -> str:
            return v(p[0]) if p[0] == p[1] else f"{v(p[0])}x{v(p[1])}"
        text = f"{f(self.size)}/{f(self.stride)}/{f(self.padding)}"
        if self.min_size != self.size:
            text += f" (min {f(self.min_size)})"
        if not self.aligned:
            text += " unaligned"
        if self.whole:
            text += " whole"
        return text


# An axis summary: one entry per distinct effective stride S,
# (S, largest r, padding of the largest, smallest r, lowest 2c, highest 2c), where
# c = P - (r-1)/2 is the centre offset (doubled to stay integral).  Plain tuples of
# numbers: cheap to make, and invisible to the garbage collector on big graphs.
Class = tuple[Num, Num, Num, Num, Num, Num]
Axis = tuple[Class, ...]
# A node's state: (height axis, width axis, whole, irregular, units per axis of the map)
State = tuple[Axis, Axis, bool, bool, tuple[int, int]]

_ORIGIN: Axis = ((1, 1, 0, 1, 0, 0),)


def _step(axis: Axis, n: Num, f: Num, g: Num) -> Axis:
    """Apply a layer that reads ``n`` units, moves ``f`` units per output unit and
    pads ``g`` units before the first (conv: n = dilated k, f = stride, g = pad)."""
    grow_c = n - 1 - 2 * g
    ints = type(n) is int and type(f) is int and type(g) is int
    out = []
    for s, rmax, pmax, rmin, clo, chi in axis:
        grow = (n - 1) * s
        shift = grow_c * s
        c = (s * f, rmax + grow, pmax + g * s, rmin + grow, clo - shift, chi - shift)
        # integers (convs, pools) keep values exact and integral; fractions (a
        # transposed conv, upsampling) come back to ints once their denominator is 1
        out.append(c if ints and type(s) is int else tuple(_norm(v) for v in c))
    return tuple(out)  # type: ignore[arg-type]


def _merge(axes: list[Axis]) -> Axis:
    by_stride: dict[Num, Class] = {}
    for axis in axes:
        for c in axis:
            a = by_stride.get(c[0])
            if a is None:
                by_stride[c[0]] = c
                continue
            top = a if (a[1], a[2]) >= (c[1], c[2]) else c
            by_stride[c[0]] = (c[0], top[1], top[2], min(a[3], c[3]), min(a[4], c[4]),
                               max(a[5], c[5]))
    return tuple(by_stride.values())


def _top(axis: Axis) -> Class:
    """The class holding the largest RF (ties: the larger stride)."""
    return axis[0] if len(axis) == 1 else max(axis, key=lambda c: (c[1], c[0]))


def _report(st: State) -> RF:
    axes = st[0], st[1]
    size, min_size, stride, padding = [], [], [], []
    aligned = not st[3]
    for axis in axes:
        s_top, rmax, pmax, rmin, clo, chi = _top(axis)
        if len(axis) > 1:
            rmin = min(c[3] for c in axis)
            aligned = False
        elif clo != chi:
            aligned = False
        size.append(rmax)
        stride.append(s_top)
        padding.append(pmax)
        min_size.append(rmin)
    return RF((size[0], size[1]), (min_size[0], min_size[1]), (stride[0], stride[1]),
              (padding[0], padding[1]), aligned, st[2])


def _input_extent(graph: Graph) -> tuple[int, int] | None:
    """H and W of the input (the first one that is a feature map)."""
    for v in graph.walk():
        if type(v.op) is Input:
            shape = v.op.shape
            if len(shape) == 3:
                return (shape[1], shape[2])
    return None


def _covers(st: State, shape: TensorShape, extent: tuple[int, int]) -> bool:
    """Whether every unit of a map sees all of the input (a pool or conv that leaves
    one unit per axis whose window spans the whole input, as GoogLeNet's 7x7 pool)."""
    for axis, size, ext in ((st[0], shape[1], extent[0]), (st[1], shape[2], extent[1])):
        s, r, p = _top(axis)[:3]
        if (size - 1) * s - p > 0 or r - p < ext:
            return False
    return True


@register
@dataclass
class ReceptiveField(Pass):
    """Receptive field per node and axis: max/min size, stride, padding, alignment."""

    name = "receptive-field"
    kind = "analysis"

    def run(self, graph: Graph) -> Graph:
        states: dict[str, State] = {}
        reports: dict[str, RF] = {}
        known: dict[str, TensorShape] = {}
        extent = _input_extent(graph)
        for v in graph.walk():
            n = v.name
            op = v.op
            meta = v.meta
            inputs = v.inputs
            shape: TensorShape | None = meta.get("shape")
            if shape is None:
                node_shapes(v, known, "receptive-field")  # raises the clear error
                raise AssertionError(n)  # pragma: no cover
            # infer-shapes leaves a node unset when an input is: these are known
            ins = [known[i] for i in inputs]
            known[n] = shape
            if type(op) is Input:
                units = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
                st: State = (_ORIGIN, _ORIGIN, False, False, units)
                states[n] = st
                meta["rf"] = reports[n] = _report(st)
                continue
            if len(inputs) == 1:
                prev = states[inputs[0]]
            else:
                prev = self._merge(v, ins, states)
            try:
                step = op.receptive_field(ins, prev[4])
            except NoRule:
                raise no_rule(graph, n, "receptive-field") from None
            if step is None and len(inputs) == 1:
                # BN, activations, dropout...: the RF of the input, as it is
                units = (shape[1], shape[2]) if len(shape) == 3 else prev[4]
                states[n] = (prev[0], prev[1], prev[2], prev[3], units)
                meta["rf"] = reports[n] = reports[inputs[0]]
                continue
            if step is None:
                st = (prev[0], prev[1], prev[2], prev[3],
                      (shape[1], shape[2]) if len(shape) == 3 else prev[4])
            else:
                geo_h, geo_w, whole, irregular = step
                units = (shape[1], shape[2]) if len(shape) == 3 else (
                    (1, 1) if whole else prev[4])
                st = (_step(prev[0], *geo_h), _step(prev[1], *geo_w),
                      prev[2] or whole, prev[3] or irregular, units)
                if irregular and not prev[3] and geo_h[0] == geo_w[0] == 1:
                    # an input smaller than the output: every bin is one unit, repeated
                    self.note(f"'{n}': adaptive pooling to an output larger than its input "
                              f"({'x'.join(map(str, ins[0][1:]))}): each bin is one input "
                              f"unit, repeated; the RF is marked unaligned")
                elif irregular and not prev[3]:
                    self.note(f"'{n}': adaptive pooling bins of unequal size; the RF uses "
                              f"the largest bin and is marked unaligned")
            if not st[2] and extent is not None and len(shape) == 3 and _covers(
                    st, shape, extent):
                st = (st[0], st[1], True, st[3], st[4])
            states[n] = st
            meta["rf"] = reports[n] = _report(st)
        return graph

    def _merge(self, v: Node, ins: list[TensorShape], states: dict[str, State]) -> State:
        """The state where paths meet: the union of their summaries.  A broadcast
        operand (smaller than the output along H or W) is the same for every unit:
        it adds no stride class; it makes the result whole if it sees everything."""
        olds = [states[i] for i in v.inputs]
        out = v.meta["shape"]
        spatial = olds
        if v.op.has(BROADCAST) and len(out) == 3:
            spatial = [s for s, shape in zip(olds, ins) if tuple(shape[1:]) == tuple(out[1:])]
            gates = [(i, s) for i, s, shape in zip(v.inputs, olds, ins)
                     if tuple(shape[1:]) != tuple(out[1:])]
            if not spatial:  # nothing has the output's extent: an ordinary union
                spatial = olds
            elif gates:
                local = [s for _, s in gates if not s[2]]
                for i, _ in gates:
                    if states[i][2]:
                        continue
                    self.note(f"'{v.name}': broadcasts '{i}', which does not see the whole "
                              f"input; the RF shows the spatial path only, marked unaligned")
                return (_merge([s[0] for s in spatial]), _merge([s[1] for s in spatial]),
                        any(s[2] for s in olds), any(s[3] for s in spatial) or bool(local),
                        spatial[0][4])
        return (_merge([s[0] for s in spatial]), _merge([s[1] for s in spatial]),
                any(s[2] for s in olds), any(s[3] for s in olds), spatial[0][4])
