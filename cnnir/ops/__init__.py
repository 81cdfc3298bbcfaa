"""Layer kinds of the IR: one frozen dataclass per op, by family, each carrying its rules.

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

What an op declares (its shape, parameters, cost, receptive field, traits, name
prefix, diagram title) is described in :mod:`cnnir.ops.base`.  The modules:
``shape`` (TensorShape and attribute helpers), ``base`` (the interface, Input),
``rf`` (RF geometry), ``conv``, ``norm``, ``activation``, ``pool``, ``dense``,
``merge``, ``fused``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..errors import CnnirError

# each family module lists its public names (``__all__``) and its concrete ops (``OPS``):
# a new op is written in its family's module alone, and appears here by itself
from . import activation, conv, dense, fused, merge, norm, pool
from .activation import *  # noqa: F403
from .base import (
    BROADCAST,
    ELEMENTWISE,
    FUSABLE_ACTIVATION,
    INPLACE_SAFE,
    MERGE,
    SHAPE_PRESERVING,
    TRAITS,
    VIEW,
    Geometry,
    Input,
    NoRule,
    Op,
    RfStep,
    Saved,
    TrainCtx,
    Weightless,
)
from .conv import *  # noqa: F403
from .conv import _conv_attrs
from .dense import *  # noqa: F403
from .fused import *  # noqa: F403
from .merge import *  # noqa: F403
from .merge import _Elementwise
from .norm import *  # noqa: F403
from .pool import *  # noqa: F403
from .pool import _Pool
from .shape import (
    Pads,
    Pair,
    TensorShape,
    _check_channels,
    _flag,
    _fmt_pads,
    _fmt_pair,
    _need_map,
    _number,
    _pads,
    _pair,
    _positive,
    _window_out,
    _window_shape,
    broadcast,
    describe_mismatch,
    numel,
    same_padding,
)

ALL_OPS: tuple[type[Op], ...] = (Input,) + tuple(
    cls for family in (conv, norm, activation, pool, dense, merge, fused) for cls in family.OPS)
"""Every concrete op class (what the coverage tests walk)."""

OP_TYPES: dict[str, type[Op]] = {cls.kind: cls for cls in ALL_OPS}
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
    "TensorShape", "Op", "Input", "OP_TYPES", "ALL_OPS", "op_from_dict",
    *(name for family in (activation, conv, dense, fused, merge, norm, pool)
      for name in family.__all__ if name != "OPS"),
    "same_padding", "broadcast", "describe_mismatch", "numel",
    "NoRule", "Weightless", "RfStep", "Geometry", "Pair", "Pads", "TRAITS", "ELEMENTWISE",
    "FUSABLE_ACTIVATION", "INPLACE_SAFE", "SHAPE_PRESERVING", "MERGE", "BROADCAST", "VIEW",
    "Saved", "TrainCtx",
    # helpers other modules use by their private names
    "_pair", "_pads", "_Pool", "_Elementwise", "_conv_attrs", "_fmt_pair", "_fmt_pads",
    "_positive", "_need_map", "_number", "_flag", "_check_channels", "_window_out",
    "_window_shape",
]
