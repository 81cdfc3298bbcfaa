"""Multi-input ops: :class:`Concat` and the broadcasting :class:`Add` / :class:`Mul`.

A merge leaves each path's RF as it is; the receptive-field pass unions the paths,
and where an operand is broadcast (a ``Cx1x1`` gate onto a ``CxHxW`` map) it keeps
the spatial paths and marks the result ``whole``."""

from __future__ import annotations

from typing import ClassVar

from ..errors import ShapeError
from .base import (
    BROADCAST,
    ELEMENTWISE,
    MERGE,
    Op,
    RfStep,
    Saved,
    TrainCtx,
    Weightless,
    keeps_nothing,
    no_backward,
)
from .formula import Sym, Term, dim_names, elements, maximum, total
from .record import record
from .shape import TensorShape, broadcast, describe_mismatch, numel


@record
class _Merge(Weightless):
    family: ClassVar[str] = "merge"

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@record
class Concat(_Merge):
    """Concatenation along channels; all inputs share H and W (no arithmetic)."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int] = -1
    prefix: ClassVar[str | None] = "concat"
    title: ClassVar[str | None] = "concat"
    traits: ClassVar[frozenset[str]] = frozenset({MERGE})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        if len(inputs) < 2:
            raise ShapeError("needs at least two inputs")
        first = inputs[0]
        for i, s in enumerate(inputs[1:], start=1):
            if len(s) != len(first) or tuple(s[1:]) != tuple(first[1:]):
                raise ShapeError(
                    "inputs must agree on everything but channels: "
                    + ", ".join(f"input {k} is {t}" for k, t in enumerate(inputs))
                    + f" (input {i} differs)"
                )
        return TensorShape((sum(s[0] for s in inputs), *first[1:]))

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 0

    saved = keeps_nothing  # ``cat`` keeps the sizes; its backward slices the gradient
    backward_cost = no_backward

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        names = dim_names(out)
        terms = [Term("shape", names[0], total(*(Sym(f"{names[0]}_{k + 1}", s[0])
                                                  for k, s in enumerate(inputs))),
                      "the inputs side by side")]
        terms += [Term("shape", n, Sym(f"{n}_1", d)) for n, d in zip(names[1:], inputs[0][1:])]
        return terms


@record
class _Elementwise(_Merge):
    """Two operands, NumPy broadcasting, one operation per output."""

    arity: ClassVar[int] = 2
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, ELEMENTWISE, BROADCAST})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        a, b = inputs
        out = broadcast(a, b)
        if out is None:
            raise ShapeError(
                f"{self.kind} got {a} and {b} ({describe_mismatch(a, b)})"
            )
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        a, b = inputs
        terms = []
        for n, x, y in zip(dim_names(out), a, b):
            sa, sb = Sym(f"{n}_1", x), Sym(f"{n}_2", y)
            terms.append(Term("shape", n, sa) if x == y else Term(
                "shape", n, maximum(sa, sb), "broadcast: the operand of size 1 is repeated"))
        terms.append(Term("other", self.kind, elements(out), "one per output element"))
        return terms


def _reduced(inputs: list[TensorShape], out: TensorShape, grads: tuple[bool, ...]) -> int:
    """Adds that sum a broadcast operand's gradient back to its shape."""
    return sum(numel(out) for s, g in zip(inputs, grads) if g and numel(s) < numel(out))


@record
class Add(_Elementwise):
    """Elementwise sum (residual connections), NumPy broadcasting."""

    kind: ClassVar[str] = "add"
    prefix: ClassVar[str | None] = "add"
    title: ClassVar[str | None] = "+"

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """The gradient passes through: nothing kept."""
        return []

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """A broadcast operand's gradient is summed back: one add per output."""
        return 0, 0, (_reduced(inputs, out, (True, True)) if needs_input_grad else 0)


@record
class Mul(_Elementwise):
    """Elementwise product, broadcasting (squeeze-excitation's ``CxHxW * Cx1x1``)."""

    kind: ClassVar[str] = "mul"
    prefix: ClassVar[str | None] = "mul"
    title: ClassVar[str | None] = "×"

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """Each operand's gradient needs the other operand: ``mul`` keeps ``b`` when
        ``a`` requires a gradient and ``a`` when ``b`` does."""
        rg = ctx.requires_grad or (True, True)
        kept = []
        if rg[0]:
            kept.append(Saved("other", "input1", numel(inputs[1])))
        if rg[1]:
            kept.append(Saved("self", "input0", numel(inputs[0])))
        return kept

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """One multiply per output and operand, plus the sum of a broadcast one."""
        if not needs_input_grad:
            return 0, 0, 0
        return 0, 0, 2 * numel(out) + _reduced(inputs, out, (True, True))


def _nary_shape(inputs: list[TensorShape], out: TensorShape) -> list[Term]:
    """Shape terms of an n-input broadcasting merge: the largest operand per axis."""
    terms = []
    for k, n in enumerate(dim_names(out)):
        syms = [Sym(f"{n}_{i + 1}", s[k]) for i, s in enumerate(inputs)]
        same = len({s[k] for s in inputs}) == 1
        terms.append(Term("shape", n, syms[0]) if same else Term(
            "shape", n, maximum(*syms), "broadcast: an operand of size 1 is repeated"))
    return terms


@record
class _NAry(_Merge):
    """Two or more operands of equal shape, or shapes that broadcast as :class:`Add`'s do
    (one pairwise rule folded over the inputs)."""

    arity: ClassVar[int] = -1
    traits: ClassVar[frozenset[str]] = frozenset({MERGE, ELEMENTWISE, BROADCAST})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        if len(inputs) < 2:
            raise ShapeError("needs at least two inputs")
        out = inputs[0]
        for s in inputs[1:]:
            nxt = broadcast(out, s)
            if nxt is None:
                raise ShapeError(
                    f"{self.kind} got " + ", ".join(str(t) for t in inputs)
                    + f" ({describe_mismatch(out, s)})")
            out = nxt
        return out


@record
class Sum(_NAry):
    """Elementwise sum of n inputs (ONNX ``Sum``).  Cost: ``n - 1`` adds per output,
    counted as other ops like :class:`Add` (a two-input Sum costs what an Add does)."""

    kind: ClassVar[str] = "sum"
    prefix: ClassVar[str | None] = "sum"
    title: ClassVar[str | None] = "Σ"

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, (len(inputs) - 1) * numel(out)

    saved = keeps_nothing  # chained adds: the gradient passes through

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return _nary_shape(inputs, out) + [Term(
            "other", "adds", (Sym("n", len(inputs)) - 1) * elements(out),
            "n - 1 adds per output element")]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """As :class:`Add`: a broadcast operand's gradient is summed back."""
        return 0, 0, (_reduced(inputs, out, (True,) * len(inputs)) if needs_input_grad else 0)


@record
class Mean(_NAry):
    """Elementwise mean of n inputs (ONNX ``Mean``; FractalNet's join).  Cost: ``n - 1``
    adds and one multiply by ``1/n`` per output: ``n`` other ops."""

    kind: ClassVar[str] = "mean"
    prefix: ClassVar[str | None] = "mean"
    title: ClassVar[str | None] = "mean"

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, len(inputs) * numel(out)

    saved = keeps_nothing  # a sum divided by an int keeps no tensor

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return _nary_shape(inputs, out) + [
            Term("other", "adds", (Sym("n", len(inputs)) - 1) * elements(out),
                 "n - 1 adds per output element"),
            Term("other", "divide", elements(out), "one multiply by 1/n per output element")]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The gradient times ``1/n`` (one multiply per output), plus the sums of
        broadcast operands."""
        if not needs_input_grad:
            return 0, 0, 0
        return 0, 0, numel(out) + _reduced(inputs, out, (True,) * len(inputs))


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Concat, Add, Mul, Sum, Mean,)

__all__ = ["Concat", "Add", "Mul", "Sum", "Mean", "OPS"]
