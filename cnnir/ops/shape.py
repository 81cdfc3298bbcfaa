"""Shape vocabulary shared by every op: :class:`TensorShape`, attribute normalisers
(pairs, paddings, numbers), the window-size rule of convs and pools, and NumPy
broadcasting of per-sample shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import CnnirError, ShapeError


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


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a shape (of any sequence of dims)."""
    n = 1
    for d in shape:
        n *= d
    return n


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


def _need_map(shape: TensorShape) -> None:
    if not shape.is_map:
        raise ShapeError(
            f"expects a CxHxW feature map, got a flat tensor of shape {shape}"
        )


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


def _window_out(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int,
    ceil_mode: bool, axis: str,
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
    ceil_mode: bool,
) -> tuple[int, int]:
    h = _window_out(shape[1], kernel[0], stride[0], padding[0], padding[2], dilation[0],
                    ceil_mode, "height")
    w = _window_out(shape[2], kernel[1], stride[1], padding[1], padding[3], dilation[1],
                    ceil_mode, "width")
    return h, w


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
