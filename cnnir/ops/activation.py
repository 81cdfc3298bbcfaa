"""Activations: elementwise functions (RF unchanged, no weights) and softmax.

Each activation declares ``per_element``, its elementary operations per output
element (``count-macs``), and whether it is a :data:`FUSABLE_ACTIVATION` (a fused
conv may absorb it: weightless and elementwise).  An activation with weights (a
PReLU) would own ``params`` and must not declare that trait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import (
    ELEMENTWISE,
    FUSABLE_ACTIVATION,
    INPLACE_SAFE,
    SHAPE_PRESERVING,
    NoRule,
    Op,
    RfStep,
    Weightless,
)
from .formula import Sym, Term, elements, same_shape
from .shape import TensorShape, _number, numel

_FUSABLE = frozenset({ELEMENTWISE, SHAPE_PRESERVING, FUSABLE_ACTIVATION})
_FUSABLE_INPLACE = _FUSABLE | {INPLACE_SAFE}


@dataclass(frozen=True)
class Activation(Weightless):
    """Elementwise activation; subclasses name the function and its cost."""

    family: ClassVar[str] = "act"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})
    #: elementary operations per output element; None: no cost rule
    per_element: ClassVar[int | None] = None

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        if self.per_element is None:
            raise NoRule(self, "cost")
        return 0, self.per_element * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        if self.per_element is None:
            raise NoRule(self, "explain")
        return same_shape(inputs[0]) + [Term(
            "other", self.kind, Sym("ops", self.per_element) * elements(out),
            f"{self.per_element} operation(s) per output element")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@dataclass(frozen=True)
class ReLU(Activation):
    kind: ClassVar[str] = "relu"
    prefix: ClassVar[str | None] = "relu"
    title: ClassVar[str | None] = "ReLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 1


@dataclass(frozen=True)
class LeakyReLU(Activation):
    negative_slope: float = 0.01
    kind: ClassVar[str] = "leaky_relu"
    prefix: ClassVar[str | None] = "lrelu"
    title: ClassVar[str | None] = "LeakyReLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # compare + multiply

    def __post_init__(self) -> None:
        _number(self.negative_slope, "negative_slope")

    def attrs(self) -> str:
        return f"slope={self.negative_slope:g}"


@dataclass(frozen=True)
class ReLU6(Activation):
    kind: ClassVar[str] = "relu6"
    prefix: ClassVar[str | None] = "relu6_"
    title: ClassVar[str | None] = "ReLU6"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # two compares


@dataclass(frozen=True)
class Sigmoid(Activation):
    kind: ClassVar[str] = "sigmoid"
    prefix: ClassVar[str | None] = "sigmoid"
    title: ClassVar[str | None] = "sigmoid"
    traits: ClassVar[frozenset[str]] = _FUSABLE
    per_element: ClassVar[int | None] = 1


@dataclass(frozen=True)
class HardSigmoid(Activation):
    """``relu6(x + 3) / 6`` (PyTorch's definition)."""

    kind: ClassVar[str] = "hardsigmoid"
    prefix: ClassVar[str | None] = "hsigmoid"
    title: ClassVar[str | None] = "hard sigmoid"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 4  # add 3, two clamps, multiply by 1/6


@dataclass(frozen=True)
class Tanh(Activation):
    kind: ClassVar[str] = "tanh"
    prefix: ClassVar[str | None] = "tanh"
    title: ClassVar[str | None] = "tanh"
    traits: ClassVar[frozenset[str]] = _FUSABLE
    per_element: ClassVar[int | None] = 1


@dataclass(frozen=True)
class HardSwish(Activation):
    kind: ClassVar[str] = "hardswish"
    prefix: ClassVar[str | None] = "hswish"
    title: ClassVar[str | None] = "hard swish"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 5  # hardsigmoid, multiply


@dataclass(frozen=True)
class SiLU(Activation):
    kind: ClassVar[str] = "silu"
    prefix: ClassVar[str | None] = "silu"
    title: ClassVar[str | None] = "SiLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # sigmoid, multiply


@dataclass(frozen=True)
class Softmax(Weightless):
    """Softmax over the channel / feature axis: 3 per output (exp, accumulate, divide).

    Not elementwise (each output reads every channel), so never fused."""

    kind: ClassVar[str] = "softmax"
    family: ClassVar[str] = "act"
    prefix: ClassVar[str | None] = "softmax"
    title: ClassVar[str | None] = "softmax"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 3 * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return same_shape(inputs[0]) + [Term(
            "other", "softmax", Sym("ops", 3) * elements(out),
            "exp, accumulate, divide per output element")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (
    ReLU, LeakyReLU, ReLU6, Sigmoid, HardSigmoid, Tanh, HardSwish, SiLU, Softmax,
)

__all__ = [
    "Activation", "ReLU", "LeakyReLU", "ReLU6", "Sigmoid", "HardSigmoid", "Tanh", "HardSwish",
    "SiLU", "Softmax", "OPS",
]
