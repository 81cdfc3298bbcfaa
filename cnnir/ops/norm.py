"""Normalisation: :class:`BatchNorm2d`, :class:`LocalResponseNorm`, :class:`LayerNorm2d`
and the affine :class:`Scale` (per pixel: RF unchanged)."""

from __future__ import annotations

from typing import ClassVar

from ..errors import CnnirError
from .base import ELEMENTWISE, SHAPE_PRESERVING, Op, RfStep, Saved, TrainCtx, Weightless
from .formula import Const, Sym, Term, elements, paren, same_shape
from .record import record
from .shape import TensorShape, _check_channels, _flag, _need_map, _number, numel


@record
class _PerPixel(Op):
    """Normalisations read one pixel across channels: the RF stays as it is."""

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@record
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

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """Training-mode BN keeps its input, its weight and running statistics (the
        module's own arrays) and the batch mean and inverse std it computed (float32)."""
        c = inputs[0][0]
        return [Saved("input", "input0", numel(inputs[0])),
                Saved("weight", "param", 3 * c, per_image=False),
                Saved("mean", "new", c, "float32", per_image=False),
                Saved("invstd", "new", c, "float32", per_image=False)]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """Per element: ``x_hat`` (2), the sums of the gradient and of gradient times
        ``x_hat`` (3: the weight and bias gradients), and the input gradient
        ``scale * (g - sum_g/M - x_hat * sum_gx/M)`` (4)."""
        n = numel(out)
        if needs_input_grad:
            return 0, 0, 9 * n
        return 0, 0, (5 * n if needs_weight_grad else 0)

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


@record
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

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """PyTorch's ``F.local_response_norm`` is a chain of ops: the squares padded
        along channels (kept by the average pool), ``k + alpha * avg`` (kept by
        ``pow``), its power (kept by the divide) and the input (kept by the divide)."""
        c, h, w = inputs[0]
        n = numel(out)
        return [Saved("input", "input0", numel(inputs[0])),
                Saved("padded squares", "new", (c + self.size - 1) * h * w),
                Saved("k + alpha * avg", "new", n), Saved("denominator", "new", n)]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """Twice the forward arithmetic (the chain rule through each step), by convention."""
        return 0, 0, (2 * self.cost(inputs, out)[1] if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        per = Const(2) * Sym("n", self.size) + 3
        return same_shape(inputs[0]) + [Term(
            "other", "normalise", paren(per) * elements(out),
            "per output: n squares, n-1 adds, scale, offset, power, divide")]

    def attrs(self) -> str:
        return f"size={self.size}"


@record
class Scale(_PerPixel):
    """``y = x * weight + bias`` (or ``x / weight + bias`` with ``divide``) by a stored
    scalar or per-channel array: a learned layer scale (ConvNeXt's and CaiT's ``gamma``),
    Caffe's Scale layer, or an ONNX ``Mul`` / ``Add`` / ``Sub`` / ``Div`` of a feature map
    by a constant.  ``scale=False`` is a bias alone (``x + b``), ``bias=False`` a product
    alone.

    Params: ``weight`` and ``bias`` (those present) of shape ``(C, 1, 1)`` on a CxHxW
    map (``(F,)`` on a flat tensor) with ``per_channel``, else ``(1,)``: the shapes that
    broadcast onto NCHW by PyTorch's and ONNX's rule (trailing axes aligned).  They are
    counted as parameters however they came (learned, or an ONNX initializer: stored
    model data, as a conv's weight is) -- except with ``fixed``: the arrays are constants
    of the model's code, not learned (``x * 0.17`` with a Python number, ``x + 0`` , a
    registered buffer, an ONNX ``Constant`` node's value), and count as buffers.  Cost:
    one other op per output for the product (or quotient) and one for the bias, as
    BatchNorm's ``x * scale + shift`` counts 2."""

    per_channel: bool = True
    scale: bool = True
    bias: bool = False
    divide: bool = False
    fixed: bool = False
    kind: ClassVar[str] = "scale"
    family: ClassVar[str] = "norm"
    prefix: ClassVar[str | None] = "scale"
    title: ClassVar[str | None] = "scale"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})
    init: ClassVar[str | None] = "scale"

    def __post_init__(self) -> None:
        for name in ("per_channel", "scale", "bias", "divide", "fixed"):
            _flag(getattr(self, name), f"scale {name}")
        if self.fixed:  # this instance's arrays are non-trainable state
            object.__setattr__(self, "buffers", frozenset({"weight", "bias"}))
        if not (self.scale or self.bias):
            raise CnnirError("a scale needs a weight, a bias or both")
        if self.divide and not self.scale:
            raise CnnirError("divide needs a weight to divide by")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        x = inputs[0]
        shape: tuple[int, ...] = (1,)
        if self.per_channel:
            shape = (x[0], 1, 1) if x.is_map else (x[0],)
        out: dict[str, tuple[int, ...]] = {}
        if self.scale:
            out["weight"] = shape
        if self.bias:
            out["bias"] = shape
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, (int(self.scale) + int(self.bias)) * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        x = inputs[0]
        size = Sym("C", x[0]) if self.per_channel else Const(1)
        where = "one per channel" if self.per_channel else "one scalar"
        terms = same_shape(x)
        kind = "buffer" if self.fixed else "param"
        if self.scale:
            terms.append(Term(kind, "weight", size, where))
        if self.bias:
            terms.append(Term(kind, "bias", size, where))
        if self.scale:
            terms.append(Term("other", "divide" if self.divide else "multiply", elements(out),
                              "one per output element"))
        if self.bias:
            terms.append(Term("other", "bias adds", elements(out), "one per output element"))
        return terms

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``mul`` / ``div`` keep the input where the weight needs a gradient and the
        weight where the input does; an add of a bias keeps nothing."""
        if not self.scale:
            return []
        kept = []
        if ctx.weight_grad:
            kept.append(Saved("input", "input0", numel(inputs[0])))
        if not ctx.requires_grad or ctx.requires_grad[0] or self.divide:
            kept.append(Saved("weight", "param", numel(self.params(inputs)["weight"]),
                              per_image=False))
        return kept

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """Input gradient ``g * w``: one op per output; weight gradient ``sum(g * x)``:
        two per output; bias gradient ``sum(g)``: one per output (all other ops)."""
        n = numel(out)
        other = n if self.scale and needs_input_grad else 0
        if needs_weight_grad:
            other += (2 * n if self.scale else 0) + (n if self.bias else 0)
        return 0, 0, other

    def attrs(self) -> str:
        parts = ["per-channel" if self.per_channel else "scalar"]
        if self.scale and self.divide:
            parts.append("div")
        elif not self.scale:
            parts.append("bias-only")
        elif self.bias:
            parts.append("bias")
        if self.fixed:
            parts.append("fixed")
        return ",".join(parts)


@record
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

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        c, h, w = out
        cs, hs, ws = Sym("C", c), Sym("H", h), Sym("W", w)
        return same_shape(inputs[0]) + [
            Term("param", "weight", cs, "the learned scale: one per channel"),
            Term("param", "bias", cs, "the learned shift: one per channel"),
            Term("other", "normalise", Const(7) * elements(out),
                 "per output: 2 accumulates, subtract, square, divide, scale, shift"),
            Term("other", "statistics", Const(4) * hs * ws,
                 "per pixel: mean and variance divides, + eps, square root")]

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``native_layer_norm`` keeps its input, the weight and bias, and the per-pixel
        mean and reciprocal deviation (float32, ``H * W`` each)."""
        c, h, w = inputs[0]
        return [Saved("input", "input0", numel(inputs[0])),
                Saved("weight", "param", c, per_image=False),
                Saved("bias", "param", c, per_image=False),
                Saved("mean", "new", h * w, dtype="float32"),
                Saved("rstd", "new", h * w, dtype="float32")]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """By convention (as BatchNorm's): the input gradient twice the forward's other
        ops; the weight and bias gradients ``sum(g * x_hat)``, ``sum(g)``: 3 per output."""
        other = 2 * self.cost(inputs, out)[1] if needs_input_grad else 0
        return 0, 0, other + (3 * numel(out) if needs_weight_grad else 0)

    def attrs(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (BatchNorm2d, LocalResponseNorm, LayerNorm2d, Scale,)

__all__ = ["BatchNorm2d", "LocalResponseNorm", "LayerNorm2d", "Scale", "OPS"]
