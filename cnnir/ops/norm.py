"""Normalisation: :class:`BatchNorm2d` and :class:`LocalResponseNorm` (per pixel: RF unchanged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import ELEMENTWISE, SHAPE_PRESERVING, Op, RfStep, Weightless
from .formula import Const, Sym, Term, elements, paren, same_shape
from .shape import TensorShape, _check_channels, _need_map, _number, numel


@dataclass(frozen=True)
class _PerPixel(Op):
    """Normalisations read one pixel across channels: the RF stays as it is."""

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@dataclass(frozen=True)
class BatchNorm2d(_PerPixel):
    """Batch normalisation over channels.

    Params: ``weight`` and ``bias`` ``(C)`` (trainable), ``running_mean`` and
    ``running_var`` ``(C)`` (buffers).  Cost: 2 per output (``x * scale + shift``)."""

    eps: float = 1e-5
    momentum: float = 0.1
    kind: ClassVar[str] = "batchnorm2d"
    family: ClassVar[str] = "norm"
    prefix: ClassVar[str | None] = "bn"
    title: ClassVar[str | None] = "BN"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})
    buffers: ClassVar[frozenset[str]] = frozenset({"running_mean", "running_var"})
    init: ClassVar[str | None] = "affine"

    def __post_init__(self) -> None:
        _number(self.eps, "eps", 0.0, low_open=True)
        _number(self.momentum, "momentum", 0.0, 1.0)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        return x

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        c = (inputs[0][0],)
        return {"weight": c, "bias": c, "running_mean": c, "running_var": c}

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 2 * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        c = Sym("C", inputs[0][0])
        return same_shape(inputs[0]) + [
            Term("param", "weight", c, "gamma, the learned scale: one per channel"),
            Term("param", "bias", c, "beta, the learned shift: one per channel"),
            Term("buffer", "running_mean", c, "running statistic, not trained"),
            Term("buffer", "running_var", c, "running statistic, not trained"),
            Term("other", "scale and shift", Const(2) * elements(out),
                 "x*scale + shift per output element (statistics folded at inference)"),
        ]

    def attrs(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"


@dataclass(frozen=True)
class LocalResponseNorm(_PerPixel, Weightless):
    """AlexNet's LRN across ``size`` neighbouring channels.

    Cost: ``2 * size + 3`` per output (size squares, size-1 adds, scale, offset,
    power, divide)."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    kind: ClassVar[str] = "lrn"
    family: ClassVar[str] = "norm"
    prefix: ClassVar[str | None] = "lrn"
    title: ClassVar[str | None] = "LRN"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})

    def __post_init__(self) -> None:
        _check_channels(self.size, "size")
        _number(self.alpha, "alpha")
        _number(self.beta, "beta")
        _number(self.k, "k")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        return x

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, (2 * self.size + 3) * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        per = Const(2) * Sym("n", self.size) + 3
        return same_shape(inputs[0]) + [Term(
            "other", "normalise", paren(per) * elements(out),
            "per output: n squares, n-1 adds, scale, offset, power, divide")]

    def attrs(self) -> str:
        return f"size={self.size}"


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (BatchNorm2d, LocalResponseNorm,)

__all__ = ["BatchNorm2d", "LocalResponseNorm", "OPS"]
