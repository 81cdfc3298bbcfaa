"""Dense and shape-only ops: Linear, Flatten, Dropout, Identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ShapeError
from .base import ELEMENTWISE, SHAPE_PRESERVING, Op, RfStep, Weightless
from .formula import Const, Sym, Term, dims, product, same_shape
from .shape import TensorShape, _check_channels, _flag, _number


@dataclass(frozen=True)
class _PassThrough(Weightless):
    """Data movement without arithmetic: no cost, the RF of its input."""

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 0

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        """The shape of the input; no arrays, no arithmetic (Flatten: its own shape)."""
        return same_shape(inputs[0])


@dataclass(frozen=True)
class Dropout(_PassThrough):
    """Dropout: the identity at inference."""

    p: float = 0.5
    kind: ClassVar[str] = "dropout"
    family: ClassVar[str] = "reg"
    prefix: ClassVar[str | None] = "dropout"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})

    def __post_init__(self) -> None:
        _number(self.p, "dropout p", 0.0, 1.0, high_open=True)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def attrs(self) -> str:
        return f"p={self.p:g}"


@dataclass(frozen=True)
class Identity(_PassThrough):
    kind: ClassVar[str] = "identity"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "identity"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x


@dataclass(frozen=True)
class Flatten(_PassThrough):
    """``CxHxW -> (C*H*W,)`` (PyTorch ``flatten(1)``); carries the RF of the map it
    flattens (each element is one map unit)."""

    kind: ClassVar[str] = "flatten"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "flatten"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return TensorShape((x.numel,))

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return [Term("shape", "F", product(*dims(inputs[0], "in")), "every element, in a row")]


@dataclass(frozen=True)
class Linear(Op):
    """Fully connected layer on a flat input.

    Params: ``weight`` ``(out, in)``, ``bias`` ``(out)`` if bias.  Cost: ``in * out``
    MACs, one add per output for the bias.  RF: every output sees the whole input."""

    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "linear"
    family: ClassVar[str] = "linear"
    prefix: ClassVar[str | None] = "fc"
    init: ClassVar[str | None] = "linear"
    title: ClassVar[str | None] = "FC"

    def __post_init__(self) -> None:
        _check_channels(self.out_features, "out_features")
        _flag(self.bias, "bias")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        if len(x) != 1:
            raise ShapeError(
                f"expects a flat input, got {x}; add .flatten() (or a global "
                f"pool and .flatten()) before it"
            )
        return TensorShape((self.out_features,))

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {"weight": (self.out_features, inputs[0][0])}
        if self.bias:
            out["bias"] = (self.out_features,)
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return inputs[0][0] * self.out_features, (self.out_features if self.bias else 0)

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return (units[0], units[0], 0), (units[1], units[1], 0), True, False

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        f_in, f_out = Sym("F_in", inputs[0][0]), Sym("F_out", self.out_features)
        terms = [Term("shape", "F", Const(self.out_features), "out_features"),
                 Term("param", "weight", f_in * f_out, "every input to every output")]
        if self.bias:
            terms.append(Term("param", "bias", f_out, "one per output"))
        terms.append(Term("macs", "linear", f_in * f_out, "one MAC per weight"))
        if self.bias:
            terms.append(Term("other", "bias adds", f_out, "one per output"))
        return terms

    def attrs(self) -> str:
        return f"out={self.out_features}" + ("" if self.bias else ",nobias")


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Dropout, Identity, Flatten, Linear,)

__all__ = ["Dropout", "Identity", "Flatten", "Linear", "OPS"]
