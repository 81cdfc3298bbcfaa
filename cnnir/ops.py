"""Layer kinds of the IR: one frozen dataclass per op, each with its shape rule.

Conventions
-----------
* Shapes exclude the batch axis (symbolic N): ``(C, H, W)`` for feature maps,
  ``(F,)`` after :class:`Flatten` / :class:`Linear`.  They are
  :class:`TensorShape` tuples, which print as ``64x112x112``.
* Pairs are ``(height, width)``.  Paddings of convs and pools are stored per side
  in ONNX order ``(top, left, bottom, right)``, so asymmetric padding ("same" with
  an even kernel) is exact.
* Shape rules follow PyTorch exactly (floor division, ``ceil_mode`` dropping a
  window that would start in the end padding, transposed conv output size).
* A rule that cannot hold raises :class:`~cnnir.errors.ShapeError` with a message
  about the op; shape inference adds the node name and the DSL ``file:line``.
* Invalid attributes (zero stride, negative padding...) raise
  :class:`~cnnir.errors.CnnirError` from ``__post_init__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .errors import CnnirError, ShapeError


class TensorShape(tuple):
    """Per-sample tensor shape (batch excluded); prints as ``64x112x112``."""

    def __new__(cls, dims: Sequence[int]) -> TensorShape:
        return super().__new__(cls, (int(d) for d in dims))

    def __str__(self) -> str:
        return "x".join(str(d) for d in self)

    def __repr__(self) -> str:
        return f"TensorShape({tuple(self)!r})"

    @property
    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    @property
    def is_map(self) -> bool:
        """True for a ``(C, H, W)`` feature map."""
        return len(self) == 3


Pair = tuple[int, int]
Pads = tuple[int, int, int, int]


def _pair(value: Any, what: str) -> Pair:
    if isinstance(value, bool):
        raise CnnirError(f"{what} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise CnnirError(f"{what} must be an int or a pair of ints, got {value!r}")


def _pads(value: Any, what: str = "padding") -> Pads:
    """Normalise a padding to ``(top, left, bottom, right)``.

    Accepts an int (all sides), ``(ph, pw)`` (symmetric per axis) or four ints.
    """
    if isinstance(value, (tuple, list)) and len(value) == 4 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        pads = tuple(int(v) for v in value)
    elif isinstance(value, (tuple, list)) and len(value) not in (2, 4):
        raise CnnirError(f"{what} must be an int, a pair (h, w) or four ints "
                         f"(top, left, bottom, right), got {value!r}")
    else:
        ph, pw = _pair(value, what)
        pads = (ph, pw, ph, pw)
    if any(p < 0 for p in pads):
        raise CnnirError(f"{what} must not be negative, got {value!r}")
    return pads  # type: ignore[return-value]


def same_padding(kernel: Pair, dilation: Pair = (1, 1)) -> Pads:
    """PyTorch's ``padding="same"`` for stride 1: total ``d*(k-1)``, the extra pixel at the end."""
    tot_h = dilation[0] * (kernel[0] - 1)
    tot_w = dilation[1] * (kernel[1] - 1)
    return (tot_h // 2, tot_w // 2, tot_h - tot_h // 2, tot_w - tot_w // 2)


def _positive(value: Pair, what: str) -> None:
    if value[0] < 1 or value[1] < 1:
        raise CnnirError(f"{what} must be at least 1, got {_fmt_pair(value)}")


def _fmt_pair(p: Sequence[int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _fmt_pads(p: Pads) -> str:
    if p[0] == p[1] == p[2] == p[3]:
        return str(p[0])
    if p[0] == p[2] and p[1] == p[3]:
        return f"{p[0]}x{p[1]}"
    return ",".join(str(v) for v in p)


def _need_map(shape: TensorShape, kind: str) -> None:
    if not shape.is_map:
        raise ShapeError(
            f"expects a CxHxW feature map, got a flat tensor of shape {shape}"
        )


def _window_out(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int,
    ceil_mode: bool, axis: str, kind: str,
) -> int:
    eff = dilation * (kernel - 1) + 1
    padded = size + pad_begin + pad_end
    if ceil_mode:
        # ceil((padded - eff) / stride) + 1, as PyTorch computes it even when the kernel
        # overhangs the padded input by less than a stride (the window is clipped)
        out = -(-(padded - eff) // stride) + 1
        # PyTorch/ONNX: the last window must start inside the input or left padding.
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
    else:
        out = (padded - eff) // stride + 1 if eff <= padded else 0
    if out < 1:
        dilated = f" (dilated to {eff})" if dilation > 1 else ""
        raise ShapeError(
            f"kernel {kernel}{dilated} is larger than the padded input {padded} "
            f"along {axis} (input {size}, padding {pad_begin}+{pad_end})"
        )
    return out


def _window_shape(
    shape: TensorShape, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair,
    ceil_mode: bool, kind: str,
) -> tuple[int, int]:
    h = _window_out(shape[1], kernel[0], stride[0], padding[0], padding[2], dilation[0],
                    ceil_mode, "height", kind)
    w = _window_out(shape[2], kernel[1], stride[1], padding[1], padding[3], dilation[1],
                    ceil_mode, "width", kind)
    return h, w


@dataclass(frozen=True)
class Op:
    """Base of every op.  ``kind`` is the op's printer and JSON name."""

    kind: ClassVar[str] = "op"
    #: number of inputs: an int, or -1 for "two or more"
    arity: ClassVar[int] = 1
    #: the family used by diagrams and reports ("conv", "norm", "act", "pool", ...)
    family: ClassVar[str] = "other"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} has no shape rule")

    def attrs(self) -> str:
        """Short attribute string for the printer, e.g. ``k=3x3,s=1,p=1``."""
        return ""

    def to_dict(self) -> dict[str, Any]:
        """Field values as JSON-friendly data (tuples become lists, nested ops dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Op):
                v = {"op": v.kind, **v.to_dict()}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Input(Op):
    """The network input: ``shape`` is ``(C, H, W)`` (or ``(F,)``), batch excluded."""

    shape: tuple[int, ...] = (3, 224, 224)
    kind: ClassVar[str] = "input"
    arity: ClassVar[int] = 0
    family: ClassVar[str] = "io"

    def __post_init__(self) -> None:
        if not self.shape or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in self.shape
        ):
            raise CnnirError(f"input shape must be positive integers, got {self.shape!r}")
        if len(self.shape) not in (1, 3):
            raise CnnirError(
                f"input shape must be (C, H, W) or (F,), without the batch axis, "
                f"got {self.shape!r}"
            )
        object.__setattr__(self, "shape", tuple(self.shape))

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        return TensorShape(self.shape)

    def attrs(self) -> str:
        return ""


# --------------------------------------------------------------------------- convolutions


@dataclass(frozen=True)
class Conv2d(Op):
    """2-D convolution.  Input channels come from the input shape."""

    out_channels: int
    kernel: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Pads = (0, 0, 0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    kind: ClassVar[str] = "conv2d"
    family: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        _check_channels(self.out_channels, "out_channels")
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "dilation", _pair(self.dilation, "dilation"))
        object.__setattr__(self, "padding", _pads(self.padding))
        _positive(self.kernel, "kernel")
        _positive(self.stride, "stride")
        _positive(self.dilation, "dilation")
        _check_channels(self.groups, "groups")
        _flag(self.bias, "bias")
        if self.out_channels % self.groups:
            raise CnnirError(
                f"groups={self.groups} does not divide out_channels={self.out_channels}"
            )

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        if x[0] % self.groups:
            raise ShapeError(
                f"groups={self.groups} does not divide the {x[0]} input channels"
            )
        h, w = _window_shape(x, self.kernel, self.stride, self.padding, self.dilation,
                             False, self.kind)
        return TensorShape((self.out_channels, h, w))

    def attrs(self) -> str:
        return _conv_attrs(self)


def _number(value: Any, what: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> None:
    """A finite real number, optionally within bounds; else a CnnirError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or value in (float("inf"), float("-inf")):
        raise CnnirError(f"{what} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise CnnirError(f"{what} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise CnnirError(f"{what} must be {'<' if high_open else '<='} {high:g}, got {value!r}")


def _flag(value: Any, what: str) -> None:
    if not isinstance(value, bool):
        raise CnnirError(f"{what} must be True or False, got {value!r}")


def _check_channels(value: Any, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CnnirError(f"{what} must be a positive integer, got {value!r}")


def _conv_attrs(op: Any, extra: str = "") -> str:
    parts = [f"k={op.kernel[0]}x{op.kernel[1]}", f"s={_fmt_pair(op.stride)}",
             f"p={_fmt_pads(op.padding) if len(op.padding) == 4 else _fmt_pair(op.padding)}"]
    if op.dilation != (1, 1):
        parts.append(f"d={_fmt_pair(op.dilation)}")
    if op.groups != 1:
        parts.append(f"g={op.groups}")
    if extra:
        parts.append(extra)
    if not op.bias:
        parts.append("nobias")
    return ",".join(parts)


@dataclass(frozen=True)
class ConvTranspose2d(Op):
    """Transposed convolution ("up-convolution"); padding is symmetric per axis ``(ph, pw)``.

    Output size: ``(I - 1) * s - 2p + d * (k - 1) + output_padding + 1`` (PyTorch).
    """

    out_channels: int
    kernel: Pair = (2, 2)
    stride: Pair = (2, 2)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    kind: ClassVar[str] = "conv_transpose2d"
    family: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        _check_channels(self.out_channels, "out_channels")
        for name in ("kernel", "stride", "padding", "output_padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        _positive(self.kernel, "kernel")
        _positive(self.stride, "stride")
        _positive(self.dilation, "dilation")
        if min(self.padding) < 0 or min(self.output_padding) < 0:
            raise CnnirError("padding and output_padding must not be negative")
        for a in range(2):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise CnnirError(
                    f"output_padding {_fmt_pair(self.output_padding)} must be smaller than "
                    f"the stride or the dilation"
                )
        _check_channels(self.groups, "groups")
        _flag(self.bias, "bias")
        if self.out_channels % self.groups:
            raise CnnirError(
                f"groups={self.groups} does not divide out_channels={self.out_channels}"
            )

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        if x[0] % self.groups:
            raise ShapeError(f"groups={self.groups} does not divide the {x[0]} input channels")
        dims = []
        for a, axis in ((0, "height"), (1, "width")):
            out = ((x[1 + a] - 1) * self.stride[a] - 2 * self.padding[a]
                   + self.dilation[a] * (self.kernel[a] - 1) + self.output_padding[a] + 1)
            if out < 1:
                raise ShapeError(f"output {axis} would be {out}: padding too large")
            dims.append(out)
        return TensorShape((self.out_channels, dims[0], dims[1]))

    def attrs(self) -> str:
        extra = "" if self.output_padding == (0, 0) else f"op={_fmt_pair(self.output_padding)}"
        return _conv_attrs(self, extra)


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class BatchNorm2d(Op):
    """Batch normalisation over channels: 2C parameters and 2C running statistics."""

    eps: float = 1e-5
    momentum: float = 0.1
    kind: ClassVar[str] = "batchnorm2d"
    family: ClassVar[str] = "norm"

    def __post_init__(self) -> None:
        _number(self.eps, "eps", 0.0, low_open=True)
        _number(self.momentum, "momentum", 0.0, 1.0)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        return x

    def attrs(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"


@dataclass(frozen=True)
class LocalResponseNorm(Op):
    """AlexNet's LRN across ``size`` neighbouring channels."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    kind: ClassVar[str] = "lrn"
    family: ClassVar[str] = "norm"

    def __post_init__(self) -> None:
        _check_channels(self.size, "size")
        _number(self.alpha, "alpha")
        _number(self.beta, "beta")
        _number(self.k, "k")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        return x

    def attrs(self) -> str:
        return f"size={self.size}"


# --------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Activation(Op):
    """Elementwise activation; subclasses name the function."""

    family: ClassVar[str] = "act"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x


@dataclass(frozen=True)
class ReLU(Activation):
    kind: ClassVar[str] = "relu"


@dataclass(frozen=True)
class LeakyReLU(Activation):
    negative_slope: float = 0.01
    kind: ClassVar[str] = "leaky_relu"

    def __post_init__(self) -> None:
        _number(self.negative_slope, "negative_slope")

    def attrs(self) -> str:
        return f"slope={self.negative_slope:g}"


@dataclass(frozen=True)
class ReLU6(Activation):
    kind: ClassVar[str] = "relu6"


@dataclass(frozen=True)
class Sigmoid(Activation):
    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True)
class HardSigmoid(Activation):
    """``relu6(x + 3) / 6`` (PyTorch's definition)."""

    kind: ClassVar[str] = "hardsigmoid"


@dataclass(frozen=True)
class Tanh(Activation):
    kind: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class HardSwish(Activation):
    kind: ClassVar[str] = "hardswish"


@dataclass(frozen=True)
class SiLU(Activation):
    kind: ClassVar[str] = "silu"


@dataclass(frozen=True)
class Softmax(Op):
    """Softmax over the channel / feature axis."""

    kind: ClassVar[str] = "softmax"
    family: ClassVar[str] = "act"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x


# --------------------------------------------------------------------------- pooling


@dataclass(frozen=True)
class _Pool(Op):
    kernel: Pair = (2, 2)
    stride: Pair = (2, 2)
    padding: Pads = (0, 0, 0, 0)
    ceil_mode: bool = False
    family: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "padding", _pads(self.padding))
        _positive(self.kernel, "kernel")
        _positive(self.stride, "stride")
        _flag(self.ceil_mode, "ceil_mode")
        if hasattr(self, "count_include_pad"):
            _flag(self.count_include_pad, "count_include_pad")
        p = self.padding
        if max(p[0], p[2]) > self.kernel[0] // 2 or max(p[1], p[3]) > self.kernel[1] // 2:
            raise CnnirError(
                f"pool padding {_fmt_pads(p)} must be at most half the kernel "
                f"{self.kernel[0]}x{self.kernel[1]}"
            )

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        h, w = _window_shape(x, self.kernel, self.stride, self.padding, (1, 1),
                             self.ceil_mode, self.kind)
        return TensorShape((x[0], h, w))

    def attrs(self) -> str:
        s = f"k={self.kernel[0]}x{self.kernel[1]},s={_fmt_pair(self.stride)}"
        if any(self.padding):
            s += f",p={_fmt_pads(self.padding)}"
        if self.ceil_mode:
            s += ",ceil"
        return s


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    kind: ClassVar[str] = "maxpool2d"


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    count_include_pad: bool = True
    kind: ClassVar[str] = "avgpool2d"

    def attrs(self) -> str:
        s = super().attrs()
        if any(self.padding) and not self.count_include_pad:
            s += ",exclude_pad"
        return s


@dataclass(frozen=True)
class AdaptiveAvgPool2d(Op):
    """Average pooling to a fixed ``output_size`` (PyTorch's adaptive bins)."""

    output_size: Pair = (1, 1)
    kind: ClassVar[str] = "adaptive_avgpool2d"
    family: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_size", _pair(self.output_size, "output_size"))
        _positive(self.output_size, "output_size")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        return TensorShape((x[0], *self.output_size))

    def attrs(self) -> str:
        return f"out={self.output_size[0]}x{self.output_size[1]}"


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Average over the whole spatial extent: ``CxHxW -> Cx1x1``."""

    kind: ClassVar[str] = "global_avgpool"
    family: ClassVar[str] = "pool"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        return TensorShape((x[0], 1, 1))


@dataclass(frozen=True)
class Upsample(Op):
    """Resize by an integer ``scale`` per axis, ``nearest`` or ``bilinear``."""

    scale: Pair = (2, 2)
    mode: str = "nearest"
    align_corners: bool = False
    kind: ClassVar[str] = "upsample"
    family: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _pair(self.scale, "scale"))
        _positive(self.scale, "scale")
        _flag(self.align_corners, "align_corners")
        if self.mode not in ("nearest", "bilinear"):
            raise CnnirError(f"upsample mode must be 'nearest' or 'bilinear', got {self.mode!r}")
        if self.align_corners and self.mode == "nearest":
            raise CnnirError("align_corners applies to bilinear upsampling only")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x, self.kind)
        return TensorShape((x[0], x[1] * self.scale[0], x[2] * self.scale[1]))

    def attrs(self) -> str:
        s = f"x{_fmt_pair(self.scale)},{self.mode}"
        return s + (",align_corners" if self.align_corners else "")


# --------------------------------------------------------------------------- shape-only / dense


@dataclass(frozen=True)
class Dropout(Op):
    p: float = 0.5
    kind: ClassVar[str] = "dropout"
    family: ClassVar[str] = "reg"

    def __post_init__(self) -> None:
        _number(self.p, "dropout p", 0.0, 1.0, high_open=True)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x

    def attrs(self) -> str:
        return f"p={self.p:g}"


@dataclass(frozen=True)
class Identity(Op):
    kind: ClassVar[str] = "identity"
    family: ClassVar[str] = "other"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return x


@dataclass(frozen=True)
class Flatten(Op):
    """``CxHxW -> (C*H*W,)`` (PyTorch ``flatten(1)``)."""

    kind: ClassVar[str] = "flatten"
    family: ClassVar[str] = "other"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        return TensorShape((x.numel,))


@dataclass(frozen=True)
class Linear(Op):
    """Fully connected layer on a flat input: ``in * out`` weights (+ ``out`` biases)."""

    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "linear"
    family: ClassVar[str] = "linear"

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

    def attrs(self) -> str:
        return f"out={self.out_features}" + ("" if self.bias else ",nobias")


# --------------------------------------------------------------------------- multi-input


@dataclass(frozen=True)
class Concat(Op):
    """Concatenation along channels; all inputs share H and W."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int] = -1
    family: ClassVar[str] = "merge"

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


def broadcast(a: TensorShape, b: TensorShape) -> TensorShape | None:
    """NumPy broadcasting of two per-sample shapes of equal rank; None if incompatible."""
    if len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return TensorShape(out)


def describe_mismatch(a: TensorShape, b: TensorShape) -> str:
    """Say what differs between two shapes: channels, height, width."""
    if len(a) != len(b):
        return "ranks differ"
    names = ["channels", "height", "width"] if len(a) == 3 else [f"dim {i}" for i in range(len(a))]
    diff = [n for n, x, y in zip(names, a, b) if x != y and x != 1 and y != 1]
    if diff[:3] == ["channels", "height", "width"]:
        return "channels and spatial size differ"
    if not diff:
        return "they do not broadcast"
    plural = len(diff) > 1 or diff[0] == "channels"
    return " and ".join(diff) + (" differ" if plural else " differs")


@dataclass(frozen=True)
class _Elementwise(Op):
    arity: ClassVar[int] = 2
    family: ClassVar[str] = "merge"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        a, b = inputs
        out = broadcast(a, b)
        if out is None:
            raise ShapeError(
                f"{self.kind} got {a} and {b} ({describe_mismatch(a, b)})"
            )
        return out


@dataclass(frozen=True)
class Add(_Elementwise):
    """Elementwise sum (residual connections), NumPy broadcasting."""

    kind: ClassVar[str] = "add"


@dataclass(frozen=True)
class Mul(_Elementwise):
    """Elementwise product, broadcasting (squeeze-excitation's ``CxHxW * Cx1x1``)."""

    kind: ClassVar[str] = "mul"


# --------------------------------------------------------------------------- fused


@dataclass(frozen=True)
class FusedConv2d(Op):
    """A convolution with a folded BatchNorm and an optional activation.

    Produced by the ``fuse-conv-bn-relu`` pass.  ``conv`` keeps the original conv
    attributes; the fused conv always has a bias (the folded BN shift), and its
    weights, where the graph carries weights, are already folded.
    """

    conv: Conv2d
    bn: BatchNorm2d | None = None
    act: Activation | None = None
    kind: ClassVar[str] = "fused_conv2d"
    family: ClassVar[str] = "conv"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        return self.conv.infer(inputs)

    @property
    def has_bias(self) -> bool:
        """Always True: the fused conv carries the folded BN shift, or the conv's
        own bias, or (conv + activation alone) a zero bias, as ``cnnir.weights`` does."""
        return True

    def attrs(self) -> str:
        parts = [_conv_attrs(self.conv).replace(",nobias", "")]
        if self.bn is not None:
            parts.append("+bn")
        if self.act is not None:
            parts.append(f"+{self.act.kind}")
        return ",".join(parts)


# --------------------------------------------------------------------------- registry

OP_TYPES: dict[str, type[Op]] = {
    cls.kind: cls
    for cls in (
        Input, Conv2d, ConvTranspose2d, BatchNorm2d, LocalResponseNorm,
        ReLU, LeakyReLU, ReLU6, Sigmoid, HardSigmoid, Tanh, HardSwish, SiLU, Softmax,
        MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool, Upsample,
        Dropout, Identity, Flatten, Linear, Concat, Add, Mul, FusedConv2d,
    )
}
"""Every op kind by its printer/JSON name."""


def op_from_dict(kind: str, data: dict[str, Any]) -> Op:
    """Rebuild an op from :meth:`Op.to_dict` output; raises CnnirError on bad data."""
    cls = OP_TYPES.get(kind)
    if cls is None:
        raise CnnirError(f"unknown op kind {kind!r}; known: {', '.join(sorted(OP_TYPES))}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise CnnirError(f"op {kind!r} has no field(s) {', '.join(sorted(unknown))}")
    args: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and "op" in value:
            sub = dict(value)
            value = op_from_dict(sub.pop("op"), sub)
        elif isinstance(value, list):
            value = tuple(value)
        args[name] = value
    try:
        return cls(**args)
    except TypeError as exc:
        raise CnnirError(f"op {kind!r}: {exc}") from None


__all__ = [
    "TensorShape", "Op", "Input", "Conv2d", "ConvTranspose2d", "BatchNorm2d",
    "LocalResponseNorm", "Activation", "ReLU", "LeakyReLU", "ReLU6", "Sigmoid",
    "HardSigmoid", "Tanh", "HardSwish", "SiLU", "Softmax", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "GlobalAvgPool", "Upsample", "Dropout", "Identity", "Flatten",
    "Linear", "Concat", "Add", "Mul", "FusedConv2d", "OP_TYPES", "op_from_dict",
    "same_padding", "broadcast", "describe_mismatch",
]
