"""Normalisation: :class:`BatchNorm2d`, :class:`LocalResponseNorm` and :class:`LayerNorm2d`
(per pixel: RF unchanged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import ELEMENTWISE, SHAPE_PRESERVING, Op, RfStep, Weightless
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

    def attrs(self) -> str:
        return f"size={self.size}"


@dataclass(frozen=True)
class LayerNorm2d(_PerPixel):
    """LayerNorm over the channels of each pixel of a ``CxHxW`` map (ConvNeXt's
    ``LayerNorm2d``; ``nn.LayerNorm(C)`` between ``permute(0, 2, 3, 1)`` and
    ``permute(0, 3, 1, 2)``): ``(x - mean_c) / sqrt(var_c + eps) * weight + bias``,
    with the biased variance over the ``C`` channels of the pixel.

    Params: ``weight`` and ``bias`` ``(C)`` (trainable).  Cost: per output element 7
    (accumulate for the mean, subtract it, square, accumulate for the variance,
    divide by the deviation, multiply by the weight, add the bias) and per pixel 4
    (divide the sum by C, divide the sum of squares by C, add eps, square root):
    ``(7 * C + 4) * H * W``.  Not elementwise: each output reads every channel."""

    eps: float = 1e-5
    kind: ClassVar[str] = "layernorm2d"
    family: ClassVar[str] = "norm"
    prefix: ClassVar[str | None] = "ln"
    title: ClassVar[str | None] = "LayerNorm"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})
    init: ClassVar[str | None] = "affine"

    def __post_init__(self) -> None:
        _number(self.eps, "eps", 0.0, low_open=True)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        return x

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        c = (inputs[0][0],)
        return {"weight": c, "bias": c}

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        c, h, w = out
        return 0, (7 * c + 4) * h * w

    def attrs(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (BatchNorm2d, LocalResponseNorm, LayerNorm2d,)

__all__ = ["BatchNorm2d", "LocalResponseNorm", "LayerNorm2d", "OPS"]
