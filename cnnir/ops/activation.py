"""Activations: elementwise functions (RF unchanged, no weights) and softmax.

Each activation declares ``per_element``, its elementary operations per output
element (``count-macs``), and whether it is a :data:`FUSABLE_ACTIVATION` (a fused
conv may absorb it: weightless and elementwise).  An activation with weights (a
PReLU) would own ``params`` and must not declare that trait.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import CnnirError, ShapeError
from .base import (
    ELEMENTWISE,
    FUSABLE_ACTIVATION,
    INPLACE_SAFE,
    SHAPE_PRESERVING,
    NoRule,
    Op,
    RfStep,
    Saved,
    TrainCtx,
    Weightless,
)
from .formula import Sym, Term, elements, same_shape
from .record import record
from .shape import TensorShape, _number, numel

_FUSABLE = frozenset({ELEMENTWISE, SHAPE_PRESERVING, FUSABLE_ACTIVATION})
_FUSABLE_INPLACE = _FUSABLE | {INPLACE_SAFE}


@record
class Activation(Weightless):
    """Elementwise activation; subclasses name the function and its cost."""

    family: ClassVar[str] = "act"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})
    #: elementary operations per output element; None: no cost rule
    per_element: ClassVar[int | None] = None
    #: what its autograd node keeps: ``"output"`` (ReLU, sigmoid, tanh: the derivative
    #: reads the result) or ``"input"``; None: no saved-tensors rule
    saves: ClassVar[str | None] = None
    #: what it keeps when it runs in place: ``"output"`` (the result, which now lives
    #: in the producer's storage) or ``"new"`` (PyTorch clones the input first)
    saves_inplace: ClassVar[str | None] = None

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        if self.per_element is None:
            raise NoRule(self, "cost")
        return 0, self.per_element * numel(out)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        where = self.saves_inplace if ctx.inplace else self.saves
        if where is None:
            raise NoRule(self, "saved-tensors")
        return [Saved("output" if where == "output" else "input",
                      "input0" if where == "input" else where, numel(out))]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The derivative costs what the function costs, plus one multiply by the
        incoming gradient, per element (by convention)."""
        if self.per_element is None:
            raise NoRule(self, "backward-cost")
        return 0, 0, ((self.per_element + 1) * numel(out) if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        if self.per_element is None:
            raise NoRule(self, "explain")
        return same_shape(inputs[0]) + [Term(
            "other", self.kind, Sym("ops", self.per_element) * elements(out),
            f"{self.per_element} operation(s) per output element")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@record
class ReLU(Activation):
    kind: ClassVar[str] = "relu"
    prefix: ClassVar[str | None] = "relu"
    title: ClassVar[str | None] = "ReLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 1
    saves: ClassVar[str | None] = "output"
    saves_inplace: ClassVar[str | None] = "output"


@record
class LeakyReLU(Activation):
    negative_slope: float = 0.01
    kind: ClassVar[str] = "leaky_relu"
    prefix: ClassVar[str | None] = "lrelu"
    title: ClassVar[str | None] = "LeakyReLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # compare + multiply
    saves: ClassVar[str | None] = "input"
    saves_inplace: ClassVar[str | None] = "output"

    def __post_init__(self) -> None:
        _number(self.negative_slope, "negative_slope")

    def attrs(self) -> str:
        return f"slope={self.negative_slope:g}"


@record
class ReLU6(Activation):
    kind: ClassVar[str] = "relu6"
    prefix: ClassVar[str | None] = "relu6_"
    title: ClassVar[str | None] = "ReLU6"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # two compares
    saves: ClassVar[str | None] = "input"
    saves_inplace: ClassVar[str | None] = "new"


@record
class Sigmoid(Activation):
    kind: ClassVar[str] = "sigmoid"
    prefix: ClassVar[str | None] = "sigmoid"
    title: ClassVar[str | None] = "sigmoid"
    traits: ClassVar[frozenset[str]] = _FUSABLE
    per_element: ClassVar[int | None] = 1
    saves: ClassVar[str | None] = "output"
    saves_inplace: ClassVar[str | None] = "output"


@record
class HardSigmoid(Activation):
    """``relu6(x + 3) / 6`` (PyTorch's definition)."""

    kind: ClassVar[str] = "hardsigmoid"
    prefix: ClassVar[str | None] = "hsigmoid"
    title: ClassVar[str | None] = "hard sigmoid"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 4  # add 3, two clamps, multiply by 1/6
    saves: ClassVar[str | None] = "input"
    saves_inplace: ClassVar[str | None] = "new"


@record
class Tanh(Activation):
    kind: ClassVar[str] = "tanh"
    prefix: ClassVar[str | None] = "tanh"
    title: ClassVar[str | None] = "tanh"
    traits: ClassVar[frozenset[str]] = _FUSABLE
    per_element: ClassVar[int | None] = 1
    saves: ClassVar[str | None] = "output"
    saves_inplace: ClassVar[str | None] = "output"


@record
class HardSwish(Activation):
    kind: ClassVar[str] = "hardswish"
    prefix: ClassVar[str | None] = "hswish"
    title: ClassVar[str | None] = "hard swish"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 5  # hardsigmoid, multiply
    saves: ClassVar[str | None] = "input"
    saves_inplace: ClassVar[str | None] = "new"


@record
class SiLU(Activation):
    kind: ClassVar[str] = "silu"
    prefix: ClassVar[str | None] = "silu"
    title: ClassVar[str | None] = "SiLU"
    traits: ClassVar[frozenset[str]] = _FUSABLE_INPLACE
    per_element: ClassVar[int | None] = 2  # sigmoid, multiply
    saves: ClassVar[str | None] = "input"
    saves_inplace: ClassVar[str | None] = "new"


@record
class GELU(Activation):
    """Gaussian error linear unit (PyTorch's ``F.gelu``): ``approximate="none"`` is the
    exact ``x * 0.5 * (1 + erf(x / sqrt(2)))``, ``"tanh"`` PyTorch's approximation
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.

    Cost per output: erf form 5 (divide, erf, add 1, multiply by x, multiply by 0.5);
    tanh form 9 (x**3 as two multiplies, multiply by 0.044715, add x, multiply by
    sqrt(2/pi), tanh, add 1, multiply by x, multiply by 0.5).  Not a
    :data:`FUSABLE_ACTIVATION`: a fused conv applies its activation in place, and
    PyTorch's ``gelu`` has no in-place form (nor ``nn.GELU`` an ``inplace`` flag)."""

    approximate: str = "none"
    kind: ClassVar[str] = "gelu"
    prefix: ClassVar[str | None] = "gelu"
    title: ClassVar[str | None] = "GELU"
    saves: ClassVar[str | None] = "input"  # gelu_backward reads x
    saves_inplace: ClassVar[str | None] = "input"  # never in place: as out of place

    def __post_init__(self) -> None:
        if self.approximate not in ("none", "tanh"):
            raise CnnirError(f"gelu approximate must be 'none' or 'tanh', got "
                             f"{self.approximate!r}")

    @property
    def per_element(self) -> int:  # type: ignore[override]
        return 9 if self.approximate == "tanh" else 5

    def attrs(self) -> str:
        return "" if self.approximate == "none" else "approximate=tanh"


@record
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

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``softmax_backward_data`` reads the result."""
        return [Saved("output", "output", numel(out))]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """``y * (g - sum(g * y))``: 4 per element."""
        return 0, 0, (4 * numel(out) if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return same_shape(inputs[0]) + [Term(
            "other", "softmax", Sym("ops", 3) * elements(out),
            "exp, accumulate, divide per output element")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None


@record
class RadixSoftmax(Weightless):
    """Split attention's softmax across radix groups (ResNeSt's ``rSoftMax``, SKNet's
    attention): at every pixel the ``C`` channels are read as ``(cardinality, radix,
    C')`` with ``C' = C / (cardinality * radix)``, normalised by a softmax over the
    radix axis, and written in ``(radix, cardinality, C')`` order -- timm's
    ``x.view(N, card, radix, -1).transpose(1, 2)``, ``softmax(dim=1)``, ``reshape``.
    With cardinality 1 the order stays: output channel ``r*C' + c`` is the softmax of
    channels ``c, C' + c, ...`` (SK's ``view(N, radix, C/radix, H, W).softmax(1)``).

    Params: none.  Cost: 3 per output (exp, accumulate, divide), as :class:`Softmax`.
    RF unchanged (per pixel)."""

    radix: int = 2
    cardinality: int = 1
    kind: ClassVar[str] = "radix_softmax"
    family: ClassVar[str] = "act"
    prefix: ClassVar[str | None] = "rsoftmax"
    title: ClassVar[str | None] = "radix softmax"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})

    def __post_init__(self) -> None:
        for what, v in (("radix", self.radix), ("cardinality", self.cardinality)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise CnnirError(f"radix softmax {what} must be a positive integer, got {v!r}")
        if self.radix < 2:
            raise CnnirError(f"radix softmax radix must be at least 2, got {self.radix} "
                             f"(a softmax over one group is 1 everywhere)")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        if not x.is_map:
            raise ShapeError(f"expects a CxHxW feature map, got a flat tensor of shape {x}")
        if x[0] % (self.radix * self.cardinality):
            raise ShapeError(f"{x[0]} channels do not split into cardinality "
                             f"{self.cardinality} x radix {self.radix} groups")
        return x

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 3 * numel(out)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``softmax_backward_data`` reads the result (the transposes keep nothing)."""
        return [Saved("output", "output", numel(out))]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """``y * (g - sum(g * y))``: 4 per element, as :class:`Softmax`."""
        return 0, 0, (4 * numel(out) if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return same_shape(inputs[0]) + [Term(
            "other", "softmax", Sym("ops", 3) * elements(out),
            f"exp, accumulate, divide per output element (over {self.radix} radix groups)")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None

    def attrs(self) -> str:
        return f"radix={self.radix}" + (f",card={self.cardinality}"
                                        if self.cardinality != 1 else "")


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (
    ReLU, LeakyReLU, ReLU6, Sigmoid, HardSigmoid, Tanh, HardSwish, SiLU, GELU, Softmax,
    RadixSoftmax,
)

__all__ = [
    "Activation", "ReLU", "LeakyReLU", "ReLU6", "Sigmoid", "HardSigmoid", "Tanh", "HardSwish",
    "SiLU", "GELU", "Softmax", "RadixSoftmax", "OPS",
]
