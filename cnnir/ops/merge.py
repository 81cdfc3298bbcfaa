"""Multi-input ops: :class:`Concat` and the broadcasting :class:`Add` / :class:`Mul`.

A merge leaves each path's RF as it is; the receptive-field pass unions the paths,
and where an operand is broadcast (a ``Cx1x1`` gate onto a ``CxHxW`` map) it keeps
the spatial paths and marks the result ``whole``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ShapeError
from .base import BROADCAST, ELEMENTWISE, MERGE, Op, RfStep, Weightless
from .formula import Sym, Term, dim_names, elements, maximum, total
from .shape import TensorShape, broadcast, describe_mismatch, numel


@dataclass(frozen=True)
class _Merge(Weightless):
    family: ClassVar[str] = "merge"

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@dataclass(frozen=True)
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

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        names = dim_names(out)
        terms = [Term("shape", names[0], total(*(Sym(f"{names[0]}_{k + 1}", s[0])
                                                  for k, s in enumerate(inputs))),
                      "the inputs side by side")]
        terms += [Term("shape", n, Sym(f"{n}_1", d)) for n, d in zip(names[1:], inputs[0][1:])]
        return terms


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Add(_Elementwise):
    """Elementwise sum (residual connections), NumPy broadcasting."""

    kind: ClassVar[str] = "add"
    prefix: ClassVar[str | None] = "add"
    title: ClassVar[str | None] = "+"


@dataclass(frozen=True)
class Mul(_Elementwise):
    """Elementwise product, broadcasting (squeeze-excitation's ``CxHxW * Cx1x1``)."""

    kind: ClassVar[str] = "mul"
    prefix: ClassVar[str | None] = "mul"
    title: ClassVar[str | None] = "×"


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Concat, Add, Mul,)

__all__ = ["Concat", "Add", "Mul", "OPS"]
