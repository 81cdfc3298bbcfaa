"""Dense and shape-only ops: Linear, Flatten, Dropout, DropPath, Identity, Pad, Slice,
ChannelShuffle, SpaceToDepth."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import CnnirError, ShapeError
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
from .formula import Const, Sym, Term, dims, product, same_shape
from .record import record
from .rf import window as rf_window
from .shape import (
    Pads,
    Pair,
    TensorShape,
    _check_channels,
    _flag,
    _fmt_pads,
    _need_map,
    _number,
    _pads,
    numel,
)


@record
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


@record
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


@record
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


@record
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

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return [Term("shape", "F", product(*dims(inputs[0], "in")), "every element, in a row")]


@record
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


@record
class DropPath(_PassThrough):
    """Stochastic depth (drop-path, FractalNet / EfficientNet / timm's ``DropPath``):
    in training it zeroes a whole sample's branch with probability ``p`` and scales the
    survivors by ``1/(1-p)``; at inference, which is what cnnir computes and counts, it
    is the identity (no cost).  It stays in the IR so that a training-time analysis
    sees it, as :class:`Dropout` does."""

    p: float = 0.0
    kind: ClassVar[str] = "drop_path"
    family: ClassVar[str] = "reg"
    prefix: ClassVar[str | None] = "drop_path"
    title: ClassVar[str | None] = "drop-path"
    traits: ClassVar[frozenset[str]] = frozenset({ELEMENTWISE, SHAPE_PRESERVING})

    def __post_init__(self) -> None:
        _number(self.p, "drop-path p", 0.0, 1.0, high_open=True)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def attrs(self) -> str:
        return f"p={self.p:g}"

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """In training, torchvision's ``stochastic_depth`` and timm's ``DropPath`` keep
        their per-sample noise (``N x 1 x 1 x 1``, the activation dtype) for the
        multiply's backward; with ``p == 0`` they return the input untouched."""
        return [Saved("noise", "new", 1)] if self.p > 0 else []

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The gradient times the noise: one multiply per output (none when ``p == 0``)."""
        return 0, 0, (numel(out) if needs_input_grad and self.p > 0 else 0)


@record
class Pad(Weightless):
    """Padding of a feature map: ``padding`` ``(top, left, bottom, right)`` on H and W,
    ``channels`` ``(before, after)`` on C (ResNet-CIFAR's option-A shortcut zero-pads
    channels), filled with ``value`` (``mode="constant"``) or mirrored without repeating
    the edge (``mode="reflect"``: PyTorch's ``ReflectionPad2d`` and ONNX's ``reflect``,
    H and W only, each pad smaller than its axis; TResNet's BlurPool).

    A zero pad right before a conv or pool is that layer's own padding; this op is for
    a pad that is not.  Cost: none (data movement).  RF: one unit per unit, the begin
    padding shifts it as a conv's padding does."""

    padding: Pads = (0, 0, 0, 0)
    #: ``(before, after)``; one int pads both sides
    channels: Pair = (0, 0)
    value: float = 0.0
    #: ``"constant"`` or ``"reflect"``
    mode: str = "constant"
    kind: ClassVar[str] = "pad"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "pad"
    title: ClassVar[str | None] = "pad"

    def __post_init__(self) -> None:
        object.__setattr__(self, "padding", _pads(self.padding))
        ch = self.channels
        if isinstance(ch, int) and not isinstance(ch, bool):
            ch = (ch, ch)
        if not (isinstance(ch, (tuple, list)) and len(ch) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ch)):
            raise CnnirError(f"pad channels must be two non-negative ints (before, after), "
                             f"got {ch!r}")
        object.__setattr__(self, "channels", (int(ch[0]), int(ch[1])))
        _number(self.value, "pad value")
        if self.mode not in ("constant", "reflect"):
            raise CnnirError(f"pad mode must be 'constant' or 'reflect', got {self.mode!r}")
        if self.mode == "reflect" and (any(self.channels) or self.value != 0):
            raise CnnirError("a reflect pad mirrors H and W: no channel pads, no value")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        t, left, b, r = self.padding
        if self.mode == "reflect" and (max(t, b) >= x[1] or max(left, r) >= x[2]):
            raise ShapeError(f"reflect pad {_fmt_pads(self.padding)} of a {x} map: each pad "
                             f"must be smaller than its axis ({x[1]}x{x[2]})")
        return TensorShape((x[0] + sum(self.channels), x[1] + t + b, x[2] + left + r))

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 0

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        if not any(self.padding):
            return None
        return rf_window(1, 1, self.padding[0]), rf_window(1, 1, self.padding[1]), False, False

    saved = keeps_nothing  # its backward slices the gradient
    backward_cost = no_backward

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        """Each axis grows by its two pads; no arrays, no arithmetic (a copy)."""
        c, h, w = inputs[0]
        t, left, b, r = self.padding
        return [Term("shape", "C", Sym("C_in", c) + Sym("P_before", self.channels[0])
                     + Sym("P_after", self.channels[1])),
                Term("shape", "H", Sym("H_in", h) + Sym("P_top", t) + Sym("P_bottom", b)),
                Term("shape", "W", Sym("W_in", w) + Sym("P_left", left) + Sym("P_right", r))]

    def attrs(self) -> str:
        out = []
        if any(self.padding):
            out.append(f"p={_fmt_pads(self.padding)}")
        if any(self.channels):
            out.append(f"c={self.channels[0]},{self.channels[1]}")
        if self.value != 0:
            out.append(f"value={self.value:g}")
        if self.mode != "constant":
            out.append(f"mode={self.mode}")
        return ",".join(out)


Range = tuple[int, int]


def _range(value: Any, axis: str) -> Range | None:
    """A ``(start, stop)`` of one axis (None: the whole axis), validated."""
    if value is None:
        return None
    try:
        start, stop = value
    except (TypeError, ValueError):
        raise CnnirError(f"slice {axis} must be (start, stop), got {value!r}") from None
    for v in (start, stop):
        if not isinstance(v, int) or isinstance(v, bool):
            raise CnnirError(f"slice {axis} bounds must be integers, got {value!r}")
    if not 0 <= start < stop:
        raise CnnirError(f"slice {axis} ({start}, {stop}) must have 0 <= start < stop")
    return (start, stop)


@record
class Slice(_PassThrough):
    """A constant range of the channel, height and width axes of a ``CxHxW`` map:
    ``x[:, c0:c1, h0:h1, w0:w1]``, each ``(start, stop)`` or None for the whole axis.

    Channel split (ShuffleNet v2's ``chunk``, ``torch.split``) and spatial crop
    (U-Net's crop-and-copy) are both slices.  Params: none.  Cost: 0 MACs and 0 other
    ops: it copies (or views) elements and computes nothing.  RF: a channel slice
    leaves it unchanged; a crop starting at ``h0`` / ``w0`` maps output unit ``y`` to
    input unit ``y + h0``: it reads 1 unit, moves 1 unit per output unit and "pads"
    ``-h0`` units, so the effective padding drops by ``h0 * S`` (the RF's centre moves
    into the map) while size and stride stay."""

    # ``tuple[int, ...]`` for the JSON reader; ``__post_init__`` checks it is a pair
    channels: tuple[int, ...] | None = None
    height: tuple[int, ...] | None = None
    width: tuple[int, ...] | None = None
    kind: ClassVar[str] = "slice"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "slice"
    title: ClassVar[str | None] = "slice"
    traits: ClassVar[frozenset[str]] = frozenset({VIEW})

    def __post_init__(self) -> None:
        for f in ("channels", "height", "width"):
            object.__setattr__(self, f, _range(getattr(self, f), f))

    @property
    def ranges(self) -> tuple[tuple[int, ...] | None, ...]:
        """``(channels, height, width)``."""
        return self.channels, self.height, self.width

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        out = []
        for axis, size, r in zip(("channels", "height", "width"), x, self.ranges):
            if r is None:
                out.append(size)
                continue
            if r[1] > size:
                raise ShapeError(f"slices {axis} {r[0]}:{r[1]} of a {x} map ({size} {axis})")
            out.append(r[1] - r[0])
        return TensorShape(tuple(out))

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        if self.height is None and self.width is None:
            return None
        top = self.height[0] if self.height else 0
        left = self.width[0] if self.width else 0
        return (1, 1, -top), (1, 1, -left), False, False

    saved = keeps_nothing  # a view of its input; its backward pads the gradient back
    backward_cost = no_backward

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        """Each sliced axis is ``stop - start``; the others are the input's."""
        terms = []
        for name, size, r in zip(("C", "H", "W"), inputs[0], self.ranges):
            if r is None:
                terms.append(Term("shape", name, Sym(f"{name}_in", size)))
            else:
                terms.append(Term("shape", name, Sym("stop", r[1]) - Sym("start", r[0]),
                                  f"{name} {r[0]}:{r[1]} of {size}"))
        return terms

    def attrs(self) -> str:
        return ",".join(f"{a}={r[0]}:{r[1]}" for a, r in zip("chw", self.ranges) if r)


@record
class ChannelShuffle(_PassThrough):
    """ShuffleNet's channel shuffle: ``C = g * n`` channels viewed as ``(g, n)``,
    transposed to ``(n, g)`` and flattened back (output channel ``i*g + j`` is input
    channel ``j*n + i``).  Shape-preserving; params: none; cost: 0 MACs and 0 other ops
    (a permutation of elements, no arithmetic); RF unchanged (per pixel)."""

    groups: int = 2
    kind: ClassVar[str] = "channel_shuffle"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "shuffle"
    title: ClassVar[str | None] = "shuffle"
    traits: ClassVar[frozenset[str]] = frozenset({SHAPE_PRESERVING})

    def __post_init__(self) -> None:
        _check_channels(self.groups, "channel shuffle groups")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        if x[0] % self.groups:
            raise ShapeError(f"{x[0]} channels do not split into {self.groups} groups")
        return x

    saved = keeps_nothing  # a reshape copy: its backward permutes the gradient back
    backward_cost = no_backward

    def attrs(self) -> str:
        return f"g={self.groups}"


@record
class SpaceToDepth(_PassThrough):
    """Space-to-depth (TResNet's stem, ONNX ``SpaceToDepth``): each ``b x b`` block of
    pixels becomes ``b*b`` channel groups, ``C x H x W`` -> ``C*b*b x H/b x W/b``.
    Output channel ``(i*b + j)*C + c`` at ``(y, x)`` is input channel ``c`` at
    ``(y*b + i, x*b + j)``: timm's ``view(N, C, H/b, b, W/b, b)``,
    ``permute(0, 3, 5, 1, 2, 4)``, ``reshape``, which is ONNX's definition (PyTorch's
    ``pixel_unshuffle`` orders ``c*b*b + i*b + j`` instead: another op).

    Params: none.  Cost: 0 MACs and 0 other ops (a permutation of elements).  RF: an
    output unit reads ``b x b`` input units, ``b`` apart (a ``b``-window of stride
    ``b``)."""

    block: int = 4
    kind: ClassVar[str] = "space_to_depth"
    family: ClassVar[str] = "other"
    prefix: ClassVar[str | None] = "s2d"
    title: ClassVar[str | None] = "space to depth"
    traits: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        _check_channels(self.block, "space-to-depth block")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        b = self.block
        if x[1] % b or x[2] % b:
            raise ShapeError(f"a {x[1]}x{x[2]} map does not split into {b}x{b} blocks")
        return TensorShape((x[0] * b * b, x[1] // b, x[2] // b))

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        b = self.block
        return rf_window(b, b, 0), rf_window(b, b, 0), False, False

    saved = keeps_nothing  # a reshape copy: its backward permutes the gradient back
    backward_cost = no_backward

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        c, h, w = inputs[0]
        b = Sym("b", self.block)
        return [Term("shape", "C", Sym("C_in", c) * b * b, "b*b channel groups"),
                Term("shape", "H", Sym("H_in", h) / b, "one row per block"),
                Term("shape", "W", Sym("W_in", w) / b, "one column per block")]

    def attrs(self) -> str:
        return f"b={self.block}"


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Dropout, Identity, Flatten, Linear, DropPath, Pad, Slice,
                             ChannelShuffle, SpaceToDepth,)

__all__ = ["Dropout", "Identity", "Flatten", "Linear", "DropPath", "Pad", "Slice",
           "ChannelShuffle", "SpaceToDepth", "OPS"]
