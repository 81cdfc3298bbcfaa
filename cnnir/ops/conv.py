"""Convolutions: :class:`Conv2d`, :class:`ConvTranspose2d` and ECA's :class:`ChannelConv1d`."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import CnnirError, ShapeError
from .base import Op, RfStep, Saved, TrainCtx
from .formula import Const, Expr, Sym, Term, dims, elements, paren, product, window_size
from .record import record
from .rf import transposed as rf_transposed
from .rf import window as rf_window
from .shape import (
    Pads,
    Pair,
    TensorShape,
    _check_channels,
    _flag,
    _fmt_pads,
    _fmt_pair,
    _need_map,
    _pads,
    _pair,
    _positive,
    _window_shape,
    numel,
)


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


def conv_saved(op: Any, inputs: list[TensorShape], weight: tuple[int, ...]) -> list[Saved]:
    """A convolution's autograd node (``convolution_backward``) keeps its input and its
    weight, whichever gradient is wanted (the first conv keeps the image too)."""
    return [Saved("input", "input0", numel(inputs[0])),
            Saved("weight", "param", numel(weight), per_image=False)]


def conv_backward(macs: int, out: TensorShape, bias: bool, needs_input_grad: bool,
                  needs_weight_grad: bool) -> tuple[int, int, int]:
    """A convolution's backward: the input gradient is the transposed convolution of
    the output gradient (the forward MACs), the weight gradient the correlation of input
    and output gradient (the forward MACs again, each weight element once per output
    position: ``Cin/groups``, not ``Cin``); the bias gradient one add per output."""
    return (macs if needs_input_grad else 0, macs if needs_weight_grad else 0,
            numel(out) if bias and needs_weight_grad else 0)
def _per_group(c: int, groups: int) -> Expr:
    """``C`` or ``(C/g)``: the channels one filter reads (or writes) in a grouped conv."""
    return Sym("C_in", c) if groups == 1 else paren(Sym("C_in", c) / Sym("g", groups))


def _conv_terms(op: Any, inputs: list[TensorShape], out: TensorShape,
                bias: bool) -> list[Term]:
    """Shape, arrays and cost of a conv (``Conv2d`` and the conv of ``FusedConv2d``)."""
    x = inputs[0]
    kh, kw = Sym("F_h", op.kernel[0]), Sym("F_w", op.kernel[1])
    c_out = Sym("C_out", op.out_channels)
    terms = [Term("shape", "C", Const(op.out_channels), "the number of filters")]
    for a, axis in ((0, "H"), (1, "W")):
        terms.append(window_size(axis, x[1 + a], op.kernel[a], op.stride[a], op.padding[a],
                                 op.padding[a + 2], op.dilation[a]))
    cin = _per_group(x[0], op.groups)
    note = "one filter per output channel" + (
        f", each reading C_in/g = {x[0] // op.groups} channels" if op.groups != 1 else "")
    terms.append(Term("param", "weight", product(kh, kw, cin, c_out), note))
    if bias:
        terms.append(Term("param", "bias", c_out, "one per output channel"))
    _, h, w = dims(out, "out")
    terms.append(Term("macs", "conv", product(h, w, c_out) * paren(product(kh, kw, cin)),
                      "every output element: one MAC per weight of its filter"))
    if bias:
        terms.append(Term("other", "bias adds", elements(out), "one per output element"))
    return terms


def _check_groups(op: Any) -> None:
    _check_channels(op.groups, "groups")
    _flag(op.bias, "bias")
    if op.out_channels % op.groups:
        raise CnnirError(
            f"groups={op.groups} does not divide out_channels={op.out_channels}"
        )


@record
class Conv2d(Op):
    """2-D convolution.  Input channels come from the input shape.

    Params: ``weight`` ``(Cout, Cin/groups, kh, kw)``, ``bias`` ``(Cout)`` if bias.
    Cost: ``Hout * Wout * Cout * Cin/groups * kh * kw`` MACs, one add per output for
    the bias."""

    out_channels: int
    kernel: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Pads = (0, 0, 0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    kind: ClassVar[str] = "conv2d"
    family: ClassVar[str] = "conv"
    prefix: ClassVar[str | None] = "conv"
    init: ClassVar[str | None] = "kaiming"
    title: ClassVar[str | None] = "conv"

    def __post_init__(self) -> None:
        _check_channels(self.out_channels, "out_channels")
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "dilation", _pair(self.dilation, "dilation"))
        object.__setattr__(self, "padding", _pads(self.padding))
        _positive(self.kernel, "kernel")
        _positive(self.stride, "stride")
        _positive(self.dilation, "dilation")
        _check_groups(self)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        if x[0] % self.groups:
            raise ShapeError(
                f"groups={self.groups} does not divide the {x[0]} input channels"
            )
        h, w = _window_shape(x, self.kernel, self.stride, self.padding, self.dilation, False)
        return TensorShape((self.out_channels, h, w))

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {
            "weight": (self.out_channels, inputs[0][0] // self.groups, *self.kernel)}
        if self.bias:
            out["bias"] = (self.out_channels,)
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        c, h, w = out
        macs = h * w * c * (inputs[0][0] // self.groups) * self.kernel[0] * self.kernel[1]
        return macs, (c * h * w if self.bias else 0)

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return (rf_window(self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
                rf_window(self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]),
                False, False)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        return conv_saved(self, inputs, self.params(inputs)["weight"])

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        return conv_backward(self.cost(inputs, out)[0], out, self.bias, needs_input_grad,
                             needs_weight_grad)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return _conv_terms(self, inputs, out, self.bias)

    def attrs(self) -> str:
        return _conv_attrs(self)


@record
class ConvTranspose2d(Op):
    """Transposed convolution ("up-convolution"); padding is symmetric per axis ``(ph, pw)``.

    Output size: ``(I - 1) * s - 2p + d * (k - 1) + output_padding + 1`` (PyTorch).
    Params: ``weight`` ``(Cin, Cout/groups, kh, kw)``, ``bias`` ``(Cout)`` if bias.
    Cost: ``Hin * Win * Cin * Cout/groups * kh * kw`` MACs (every input pixel scatters
    one kernel).  RF: see :func:`cnnir.ops.rf.transposed`.
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
    prefix: ClassVar[str | None] = "upconv"
    init: ClassVar[str | None] = "kaiming"
    title: ClassVar[str | None] = "up-conv"

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
        _check_groups(self)

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
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

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {
            "weight": (inputs[0][0], self.out_channels // self.groups, *self.kernel)}
        if self.bias:
            out["bias"] = (self.out_channels,)
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        cin, h, w = inputs[0]
        macs = h * w * cin * (self.out_channels // self.groups) * self.kernel[0] * self.kernel[1]
        return macs, (numel(out) if self.bias else 0)

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return (rf_transposed(self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
                rf_transposed(self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]),
                False, False)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        return conv_saved(self, inputs, self.params(inputs)["weight"])

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        return conv_backward(self.cost(inputs, out)[0], out, self.bias, needs_input_grad,
                             needs_weight_grad)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        x = inputs[0]
        terms = [Term("shape", "C", Const(self.out_channels), "the number of filters")]
        for a, axis in ((0, "H"), (1, "W")):
            size: Expr = paren(Sym(f"{axis}_in", x[1 + a]) - 1) * Sym("S", self.stride[a]) \
                - Const(2) * Sym("P", self.padding[a])
            f = Sym("F", self.kernel[a])
            size = size + (f - 1 if self.dilation[a] == 1
                           else Sym("D", self.dilation[a]) * paren(f - 1))
            if self.output_padding[a]:
                size = size + Sym("P_out", self.output_padding[a])
            terms.append(Term("shape", axis, size + 1, "transposed: (I-1)*S - 2P + D*(F-1) + 1"))
        kh, kw = Sym("F_h", self.kernel[0]), Sym("F_w", self.kernel[1])
        cout = Sym("C_out", self.out_channels) if self.groups == 1 else paren(
            Sym("C_out", self.out_channels) / Sym("g", self.groups))
        cin, h, w = dims(x, "in")
        terms.append(Term("param", "weight", product(cin, cout, kh, kw),
                          "one kernel per input channel and output channel"))
        if self.bias:
            terms.append(Term("param", "bias", Sym("C_out", self.out_channels)))
        terms.append(Term("macs", "conv", product(h, w, cin) * paren(product(cout, kh, kw)),
                          "every input pixel scatters one kernel"))
        if self.bias:
            terms.append(Term("other", "bias adds", elements(out), "one per output element"))
        return terms

    def attrs(self) -> str:
        extra = "" if self.output_padding == (0, 0) else f"op={_fmt_pair(self.output_padding)}"
        return _conv_attrs(self, extra)


@record
class ChannelConv1d(Op):
    """ECA's 1-D convolution across the channels of a ``Cx1x1`` map: the pooled
    channels read as a sequence of length ``C`` with one channel, one filter of
    ``kernel`` taps slid along it with stride 1 (``nn.Conv1d(1, 1, kernel,
    padding=padding)`` on ``x.view(N, 1, C)``), viewed back as ``C_out x 1 x 1`` with
    ``C_out = C + 2*padding - kernel + 1``.

    Params: ``weight`` ``(1, 1, kernel)`` (PyTorch's Conv1d layout), ``bias`` ``(1,)`` if
    bias.  Cost: ``C_out * kernel`` MACs (one per tap and output, padding taps
    included, as PyTorch's conv counts them), one add per output for the bias.  RF:
    unchanged (every unit of a 1x1 map already sees the whole input)."""

    kernel: int = 3
    padding: int = 1
    bias: bool = False
    kind: ClassVar[str] = "channel_conv1d"
    family: ClassVar[str] = "conv"
    prefix: ClassVar[str | None] = "cconv"
    init: ClassVar[str | None] = "kaiming"
    title: ClassVar[str | None] = "conv1d over C"

    def __post_init__(self) -> None:
        _check_channels(self.kernel, "channel conv kernel")
        if not isinstance(self.padding, int) or isinstance(self.padding, bool) \
                or self.padding < 0:
            raise CnnirError(f"channel conv padding must be a non-negative integer, got "
                             f"{self.padding!r}")
        _flag(self.bias, "bias")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        if x[1] != 1 or x[2] != 1:
            raise ShapeError(f"convolves the channels of a Cx1x1 map (ECA's pooled "
                             f"channels), got {x}")
        c = x[0] + 2 * self.padding - self.kernel + 1
        if c < 1:
            raise ShapeError(f"kernel {self.kernel} is longer than the {x[0]} channels "
                             f"padded by {self.padding} on each side")
        return TensorShape((c, 1, 1))

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {"weight": (1, 1, self.kernel)}
        if self.bias:
            out["bias"] = (1,)
        return out

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return out[0] * self.kernel, (out[0] if self.bias else 0)

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        return conv_saved(self, inputs, (1, 1, self.kernel))

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        return conv_backward(self.cost(inputs, out)[0], out, self.bias, needs_input_grad,
                             needs_weight_grad)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        k = Sym("F", self.kernel)
        terms = [window_size("C", inputs[0][0], self.kernel, 1, self.padding, self.padding),
                 Term("shape", "H", Const(1), "a Cx1x1 map"),
                 Term("shape", "W", Const(1), "a Cx1x1 map"),
                 Term("param", "weight", k, "one filter of F taps, shared by every channel")]
        if self.bias:
            terms.append(Term("param", "bias", Const(1), "one for the one filter"))
        terms.append(Term("macs", "conv", Sym("C_out", out[0]) * k,
                          "every output channel: one MAC per tap"))
        if self.bias:
            terms.append(Term("other", "bias adds", elements(out), "one per output element"))
        return terms

    def attrs(self) -> str:
        return f"k={self.kernel},p={self.padding}" + ("" if self.bias else ",nobias")


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (Conv2d, ConvTranspose2d, ChannelConv1d,)

__all__ = ["Conv2d", "ConvTranspose2d", "ChannelConv1d", "OPS"]
