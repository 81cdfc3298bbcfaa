"""Dense and shape-only ops: Linear, Flatten, Dropout, Identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ShapeError
from .base import (
    ELEMENTWISE,
    SHAPE_PRESERVING,
    VIEW,
    Op,
    RfStep,
    Saved,
    TrainCtx,
    Weightless,
    keeps_nothing,
    no_backward,
)
from .shape import TensorShape, _check_channels, _flag, _number, numel


@dataclass(frozen=True)
class _PassThrough(Weightless):
    """Data movement without arithmetic: no cost, the RF of its input."""

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 0

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


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

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """In training: on CUDA ``native_dropout`` keeps a bool mask; on CPU PyTorch
        multiplies by a scaled noise tensor of the input's dtype and keeps that."""
        if ctx.device == "cpu":
            return [Saved("noise", "new", numel(out))]
        return [Saved("mask", "new", numel(out), "bool")]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """One multiply by the mask per element."""
        return 0, 0, (numel(out) if needs_input_grad else 0)


@dataclass(frozen=True)
class Identity(_PassThrough):
    kind: ClassVar[str] = "identity"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "identity"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING, VIEW})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    # declared per class, not on _PassThrough: a new data-movement op (a slice, a
    # drop-path) must say what it keeps, not inherit "nothing"
    saved = keeps_nothing  # a view of its input
    backward_cost = no_backward  # the gradient passes through


@dataclass(frozen=True)
class Flatten(_PassThrough):
    """``CxHxW -> (C*H*W,)`` (PyTorch ``flatten(1)``); carries the RF of the map it
    flattens (each element is one map unit)."""

    kind: ClassVar[str] = "flatten"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "flatten"
    traits: ClassVar[frozenset[str]] = frozenset({VIEW})

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return TensorShape((x.numel,))

    saved = keeps_nothing  # a view of its input
    backward_cost = no_backward


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

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``addmm`` keeps its input where the weight needs a gradient and the
        (transposed) weight where the input does."""
        out_: list[Saved] = []
        if ctx.weight_grad:
            out_.append(Saved("input", "input0", numel(inputs[0])))
        if ctx.requires_grad and ctx.requires_grad[0]:
            out_.append(Saved("weight", "param", inputs[0][0] * self.out_features,
                              per_image=False))
        return out_

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """Input gradient ``g @ W`` and weight gradient ``g.T @ x``: ``in * out``
        MACs each; the bias gradient one add per output."""
        macs = inputs[0][0] * self.out_features
        return (macs if needs_input_grad else 0, macs if needs_weight_grad else 0,
                self.out_features if self.bias and needs_weight_grad else 0)

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return (units[0], units[0], 0), (units[1], units[1], 0), True, False

    def attrs(self) -> str:
        return f"out={self.out_features}" + ("" if self.bias else ",nobias")


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Dropout, Identity, Flatten, Linear,)

__all__ = ["Dropout", "Identity", "Flatten", "Linear", "OPS"]
