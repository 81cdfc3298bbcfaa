"""Pooling and resizing: max / average / adaptive / global pools, upsampling."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar

from ..errors import CnnirError
from .base import Geometry, Op, RfStep, Saved, TrainCtx, Weightless
from .formula import Const, Sym, Term, dims, elements, paren, product, window_size
from .record import record
from .rf import norm as rf_norm
from .rf import upsampled as rf_upsampled
from .rf import window as rf_window
from .shape import (
    Pads,
    Pair,
    TensorShape,
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


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins ``[start, end)`` along one axis."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _whole(units: tuple[int, int]) -> RfStep:
    """Every output unit reads every unit of the map: ``whole``."""
    return (units[0], units[0], 0), (units[1], units[1], 0), True, False


@record
class _Pool(Weightless):
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
        _need_map(x)
        h, w = _window_shape(x, self.kernel, self.stride, self.padding, (1, 1), self.ceil_mode)
        return TensorShape((x[0], h, w))

    def _shape_terms(self, inputs: list[TensorShape]) -> list[Term]:
        x = inputs[0]
        return [Term("shape", "C", Sym("C_in", x[0]), "pooling keeps the channels")] + [
            window_size(axis, x[1 + a], self.kernel[a], self.stride[a], self.padding[a],
                        self.padding[a + 2], 1, self.ceil_mode)
            for a, axis in ((0, "H"), (1, "W"))]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        # ceil_mode changes how many units there are, not the RF
        return (rf_window(self.kernel[0], self.stride[0], self.padding[0]),
                rf_window(self.kernel[1], self.stride[1], self.padding[1]), False, False)

    def attrs(self) -> str:
        s = f"k={self.kernel[0]}x{self.kernel[1]},s={_fmt_pair(self.stride)}"
        if any(self.padding):
            s += f",p={_fmt_pads(self.padding)}"
        if self.ceil_mode:
            s += ",ceil"
        return s


@record
class MaxPool2d(_Pool):
    """Max pooling: ``kh * kw - 1`` compares per output."""

    kind: ClassVar[str] = "maxpool2d"
    prefix: ClassVar[str | None] = "maxpool"
    title: ClassVar[str | None] = "max pool"

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, (self.kernel[0] * self.kernel[1] - 1) * numel(out)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``max_pool2d_with_indices`` keeps its input and the argmax indices (int64)."""
        return [Saved("input", "input0", numel(inputs[0])),
                Saved("indices", "new", numel(out), "int64")]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """One add per output: its gradient scattered to the argmax."""
        return 0, 0, (numel(out) if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        window = paren(Sym("F_h", self.kernel[0]) * Sym("F_w", self.kernel[1]) - 1)
        return self._shape_terms(inputs) + [Term(
            "other", "compares", window * elements(out), "F_h*F_w - 1 per output element")]


@record
class AvgPool2d(_Pool):
    """Average pooling: ``kh * kw`` per output (adds and one divide)."""

    count_include_pad: bool = True
    kind: ClassVar[str] = "avgpool2d"
    prefix: ClassVar[str | None] = "avgpool"
    title: ClassVar[str | None] = "avg pool"

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, self.kernel[0] * self.kernel[1] * numel(out)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``avg_pool2d_backward`` is given the input (for its shape and padding)."""
        return [Saved("input", "input0", numel(inputs[0]))]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The forward's windows again: ``kh * kw`` per output (divide, scatter adds)."""
        return 0, 0, (self.cost(inputs, out)[1] if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        window = paren(Sym("F_h", self.kernel[0]) * Sym("F_w", self.kernel[1]))
        return self._shape_terms(inputs) + [Term(
            "other", "adds and divide", window * elements(out),
            "F_h*F_w per output element (F_h*F_w - 1 adds, one divide)")]

    def attrs(self) -> str:
        s = super().attrs()
        if any(self.padding) and not self.count_include_pad:
            s += ",exclude_pad"
        return s


@record
class AdaptiveAvgPool2d(Weightless):
    """Average pooling to a fixed ``output_size`` (PyTorch's adaptive bins).

    Cost: the size of each bin, summed exactly.  RF: an exact pool when the input
    size is a multiple of the output size; otherwise the largest bin, unaligned; to
    1x1 it is a global pool (``whole``)."""

    output_size: Pair = (1, 1)
    kind: ClassVar[str] = "adaptive_avgpool2d"
    family: ClassVar[str] = "pool"
    prefix: ClassVar[str | None] = "adaptpool"
    title: ClassVar[str | None] = "adaptive avg pool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_size", _pair(self.output_size, "output_size"))
        _positive(self.output_size, "output_size")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        return TensorShape((x[0], *self.output_size))

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        c, h, w = inputs[0]
        sum_h = sum(e - s for s, e in adaptive_bins(h, self.output_size[0]))
        sum_w = sum(e - s for s, e in adaptive_bins(w, self.output_size[1]))
        return 0, c * sum_h * sum_w

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """To 1x1 PyTorch computes a mean, which keeps nothing; otherwise
        ``_adaptive_avg_pool2d_backward`` is given the input."""
        if self.output_size == (1, 1):
            return []
        return [Saved("input", "input0", numel(inputs[0]))]

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The forward's bins again, summed exactly."""
        return 0, 0, (self.cost(inputs, out)[1] if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        c, h, w = inputs[0]
        bins_h = adaptive_bins(h, self.output_size[0])
        bins_w = adaptive_bins(w, self.output_size[1])
        sum_h = Sym("B_h", sum(e - s for s, e in bins_h))
        sum_w = Sym("B_w", sum(e - s for s, e in bins_w))
        return [Term("shape", "C", Sym("C_in", c)),
                Term("shape", "H", Const(self.output_size[0]), "output_size"),
                Term("shape", "W", Const(self.output_size[1]), "output_size"),
                Term("other", "adds and divides", product(Sym("C_in", c), sum_h, sum_w),
                     "every bin's size, summed: B_h and B_w are the summed heights and "
                     "widths of PyTorch's bins [floor(i*I/O), ceil((i+1)*I/O))")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        if self.output_size == (1, 1):
            return _whole(units)
        geo: list[Geometry] = []
        irregular = False
        for a in range(2):
            size, out = inputs[0][1 + a], self.output_size[a]
            if size % out == 0:
                geo.append((size // out, size // out, 0))
            else:
                irregular = True
                n = max(e - s for s, e in adaptive_bins(size, out))
                f = Fraction(size, out)
                geo.append((n, f, rf_norm(Fraction(n - 1, 2) - (f - 1) / 2)))
        return geo[0], geo[1], False, irregular

    def attrs(self) -> str:
        return f"out={self.output_size[0]}x{self.output_size[1]}"


@record
class GlobalAvgPool(Weightless):
    """Average over the whole spatial extent: ``CxHxW -> Cx1x1``; ``H * W`` per output.

    RF: every output sees the whole input (``whole``)."""

    kind: ClassVar[str] = "global_avgpool"
    family: ClassVar[str] = "pool"
    prefix: ClassVar[str | None] = "gap"
    title: ClassVar[str | None] = "global avg pool"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        return TensorShape((x[0], 1, 1))

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, numel(inputs[0])

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """A mean: its backward needs only the shape."""
        return []

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """One divide-and-broadcast per input element."""
        return 0, 0, (numel(inputs[0]) if needs_input_grad else 0)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return [Term("shape", "C", Sym("C_in", inputs[0][0])), Term("shape", "H", Const(1)),
                Term("shape", "W", Const(1)),
                Term("other", "adds and divide", product(*dims(inputs[0], "in")),
                     "every input element once (H*W - 1 adds and a divide per channel)")]

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return _whole(units)


@record
class Upsample(Weightless):
    """Resize by an integer ``scale`` per axis, or to an explicit output ``size``
    ``(H, W)``, ``nearest`` or ``bilinear``.

    With ``size`` (``F.interpolate(x, size=...)`` to a size that is no multiple of the
    input's, as DeepLab's head at 520), ``scale`` is ``(1, 1)`` and unused; the pixels
    are PyTorch's: nearest reads input ``floor(y * I/O)``, bilinear samples
    ``(y + 1/2) * I/O - 1/2`` (``align_corners``: ``y * (I-1)/(O-1)``).

    Cost: nearest 0 (a gather), bilinear 7 per output (4 mul, 3 add).  RF: nearest
    reads 1 unit, bilinear 2; the stride divides by the scale (``I/O`` for a size;
    ``align_corners``: ``(I-1)/(O-1)``)."""

    scale: Pair = (2, 2)
    mode: str = "nearest"
    align_corners: bool = False
    size: Pair | None = None
    kind: ClassVar[str] = "upsample"
    family: ClassVar[str] = "pool"
    prefix: ClassVar[str | None] = "upsample"
    title: ClassVar[str | None] = "upsample"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _pair(self.scale, "scale"))
        _positive(self.scale, "scale")
        if self.size is not None:
            object.__setattr__(self, "size", _pair(self.size, "size"))
            _positive(self.size, "size")
            if self.scale != (1, 1):
                raise CnnirError(f"upsample to size {self.size[0]}x{self.size[1]} takes "
                                 f"scale=(1, 1), got {_fmt_pair(self.scale)}")
        _flag(self.align_corners, "align_corners")
        if self.mode not in ("nearest", "bilinear"):
            raise CnnirError(f"upsample mode must be 'nearest' or 'bilinear', got {self.mode!r}")
        if self.align_corners and self.mode == "nearest":
            raise CnnirError("align_corners applies to bilinear upsampling only")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        (x,) = inputs
        _need_map(x)
        if self.size is not None:
            return TensorShape((x[0], *self.size))
        return TensorShape((x[0], x[1] * self.scale[0], x[2] * self.scale[1]))

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, (7 * numel(out) if self.mode == "bilinear" else 0)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """``upsample_*_backward`` needs only the sizes."""
        return []

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """Nearest: one add per output (summed into its source); bilinear: 7."""
        if not needs_input_grad:
            return 0, 0, 0
        return 0, 0, (7 if self.mode == "bilinear" else 1) * numel(out)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        c, h, w = dims(inputs[0], "in")
        terms = [Term("shape", "C", c), Term("shape", "H", h * Sym("s_h", self.scale[0])),
                 Term("shape", "W", w * Sym("s_w", self.scale[1]))]
        if self.mode == "bilinear":
            terms.append(Term("other", "interpolate", Sym("ops", 7) * elements(out),
                              "4 multiplies and 3 adds per output element"))
        return terms

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        geo: list[Geometry] = []
        for a in range(2):
            s, size = self.scale[a], inputs[0][1 + a]
            if self.size is not None:
                geo.append(self._sized_rf(size, self.size[a]))
            elif s == 1:
                geo.append((1, 1, 0))
            elif self.mode == "nearest":
                geo.append(rf_upsampled(s, 1))
            elif self.align_corners and size > 1:
                # output y samples input y * (I-1)/(O-1): two units around it
                f = Fraction(size - 1, size * s - 1)
                geo.append((2, f, Fraction(1, 2)))
            else:
                geo.append(rf_upsampled(s, 2 if size > 1 else 1))
        return geo[0], geo[1], False, False

    def _sized_rf(self, size: int, out: int) -> Geometry:
        """One axis resized from ``size`` to ``out`` units (``rf.upsampled`` for ``I/O``)."""
        if size == out:
            return (1, 1, 0)
        n = 1 if self.mode == "nearest" or size == 1 else 2
        if self.align_corners and n == 2 and out > 1:
            return (2, Fraction(size - 1, out - 1), Fraction(1, 2))
        f = Fraction(size, out)
        return (n, f, Fraction(n - 1, 2) - (f - 1) / 2)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.size is None:
            del out["size"]  # the integer-scale form reads and writes as before
        return out

    def attrs(self) -> str:
        if self.size is not None:
            s = f"to {self.size[0]}x{self.size[1]},{self.mode}"
        else:
            s = f"x{_fmt_pair(self.scale)},{self.mode}"
        return s + (",align_corners" if self.align_corners else "")


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool, Upsample,)

__all__ = [
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool", "Upsample", "adaptive_bins",
    "OPS",
]
