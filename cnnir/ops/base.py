"""The op interface: what every op declares, in one place, and the network input.

An op is a frozen dataclass, made by :func:`~cnnir.ops.record.record` (an op from
elsewhere may be a plain ``@dataclass(frozen=True)``).  Its class says what it *means*:

* ``kind`` -- its printer and JSON name; ``prefix`` -- the DSL's auto-name stem
  (``conv`` -> ``conv1``, ``conv2``); ``family`` -- its colour in diagrams;
  ``title`` -- the word a diagram box shows; ``arity`` -- its number of inputs.
* ``traits`` -- a frozenset of what passes may do with it (:data:`ELEMENTWISE`,
  :data:`FUSABLE_ACTIVATION`, :data:`INPLACE_SAFE`, :data:`SHAPE_PRESERVING`,
  :data:`MERGE`, :data:`BROADCAST`).  Passes test traits, never ``isinstance``.
* ``infer(inputs)`` -- its output shape (PyTorch's rule).
* ``params(inputs)`` -- ``{name: shape}`` of the arrays it owns, with PyTorch's names
  and layouts (``weight``, ``bias``, ``running_mean``...); ``buffers`` names the
  non-trainable ones.  The one source for count-params, memory, weight init and
  weight files.
* ``cost(inputs, out)`` -- ``(macs, other_ops)`` per image (see ``count-macs``).
* ``saved(inputs, out, ctx)`` -- the tensors PyTorch's autograd keeps for its backward
  in training (:class:`Saved`: which storage, how many elements, which dtype); ``ctx``
  (:class:`TrainCtx`) says which inputs require a gradient and whether the op runs in
  place (``training-memory``).
* ``backward_cost(inputs, out, needs_input_grad, needs_weight_grad)`` --
  ``(input_grad_macs, weight_grad_macs, other_ops)`` of its backward, per image
  (``backward-cost``).
* ``explain(inputs, out)`` -- the derivation of its shape, arrays and cost as
  :class:`~cnnir.ops.formula.Term` formulas that evaluate to exactly what ``infer``,
  ``params`` and ``cost`` give (``cnnir explain``; :mod:`cnnir.ops.formula`).
* ``receptive_field(inputs, units)`` -- how its output units read its input's units:
  None (the RF is unchanged: per-pixel ops and merges) or ``(h, w, whole, irregular)``
  where ``h`` and ``w`` are ``(n, f, g)``: reads ``n`` units, moves ``f`` units per
  output unit, pads ``g`` units before the first (:mod:`cnnir.ops.rf`).

An op without one of the rules raises :class:`NoRule` from the base method; a pass
turns it into a :class:`~cnnir.errors.PassError` naming the node.  Ops of this
package inherit their family's rules (a ReLU is an activation); a subclass defined
elsewhere does not: it is a new op kind, and an unknown op is never counted as zero,
so its rules and traits start empty until it declares its own.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar

from ..errors import CnnirError
from .formula import Const, Term, dim_names
from .record import Record, record
from .shape import TensorShape

#: output element i depends on input element(s) i alone (activations, BN, add, mul)
ELEMENTWISE = "elementwise"
#: a weightless elementwise activation that a fused conv can absorb
FUSABLE_ACTIVATION = "fusable_activation"
#: PyTorch can run it in place (``inplace=True``) without changing the result
INPLACE_SAFE = "inplace_safe"
#: the output has its input's shape
SHAPE_PRESERVING = "shape_preserving"
#: reads two or more tensors (concat, add, mul)
MERGE = "merge"
#: a merge that broadcasts its operands (a ``Cx1x1`` gate onto a ``CxHxW`` map)
BROADCAST = "broadcast"
#: the output is a view of its (first) input's storage in PyTorch (flatten, identity)
VIEW = "view"

TRAITS = frozenset({ELEMENTWISE, FUSABLE_ACTIVATION, INPLACE_SAFE, SHAPE_PRESERVING, MERGE,
                    BROADCAST, VIEW})
"""Every trait an op may declare."""

#: the rules an op declares (methods); a subclass from outside the package starts
#: without them
RULES = ("params", "cost", "receptive_field", "saved", "backward_cost", "explain")

Num = Any  #: int, or Fraction where a transposed conv or upsampling divides the stride
Geometry = tuple[Num, Num, Num]
#: per-axis ``(n, f, g)`` for height and width, whether every output unit sees the
#: whole input, whether the bins differ in size (adaptive pooling)
RfStep = tuple[Geometry, Geometry, bool, bool]


@record
class Saved(Record):
    """One tensor an op's autograd node keeps for backward (what
    ``torch.autograd.graph.saved_tensors_hooks`` sees), by the storage it lives in.

    ``storage``: ``"input0"``, ``"input1"``... (the storage of that input: counted once
    however many ops save it), ``"output"`` (the op's own output), ``"param"`` (a
    parameter or buffer: part of the parameter memory, not of the activations) or
    ``"new"`` (a tensor made for backward alone: statistics, indices, masks).
    ``numel`` is per image when ``per_image``, else in total.  ``dtype`` is ``"act"``
    (the activation dtype of the run), or a fixed one (``"float32"``, ``"int64"``,
    ``"bool"``)."""

    what: str
    storage: str
    numel: int
    dtype: str = "act"
    per_image: bool = True


@record
class TrainCtx(Record):
    """What an op's :meth:`Op.saved` rule may ask of its place in the graph."""

    #: per input: does it require a gradient (it depends on a trainable parameter)
    requires_grad: tuple[bool, ...] = ()
    #: does the op's trainable weight require a gradient (False: frozen, or none)
    weight_grad: bool = True
    #: does the op run in place (an activation writing into its producer's output)
    inplace: bool = False
    #: where it runs: ``"cuda"`` or ``"cpu"`` (dropout saves a bool mask on CUDA, the
    #: scaled noise in the activation dtype on CPU)
    device: str = "cuda"


def keeps_nothing(op: Op, inputs: list[TensorShape], out: TensorShape,
                  ctx: TrainCtx) -> list[Saved]:
    """A ``saved`` rule for an op whose backward needs only shapes (a view, a concat)."""
    return []


def no_backward(op: Op, inputs: list[TensorShape], out: TensorShape, needs_input_grad: bool,
                needs_weight_grad: bool) -> tuple[int, int, int]:
    """A ``backward_cost`` rule for an op whose gradient only moves data."""
    return 0, 0, 0


class NoRule(CnnirError):
    """Raised by an op that lacks a rule; the pass adds the node's name and location."""

    def __init__(self, op: Op, rule: str) -> None:
        super().__init__(f"op kind '{op.kind}' ({type(op).__name__}) has no {rule} rule")
        self.op = op
        self.rule = rule


@record
class Op(Record):
    """Base of every op.  ``kind`` is the op's printer and JSON name."""

    kind: ClassVar[str] = "op"
    #: number of inputs: an int, or -1 for "two or more"
    arity: ClassVar[int] = 1
    #: the family used by diagrams and reports ("conv", "norm", "act", "pool", ...)
    family: ClassVar[str] = "other"
    #: the DSL's auto-name stem (``conv`` -> ``conv1``); None where the DSL has no method
    prefix: ClassVar[str | None] = None
    #: the word a diagram box shows (None: the kind)
    title: ClassVar[str | None] = None
    #: what passes may do with the op (see the module docstring)
    traits: ClassVar[frozenset[str]] = frozenset()
    #: names in :meth:`params` that are non-trainable state
    buffers: ClassVar[frozenset[str]] = frozenset()
    #: how :mod:`cnnir.weights` initialises the arrays: "kaiming" (convs), "linear",
    #: "affine" (normalisations); None for an op without arrays
    init: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith(__package__ + "."):
            # a new op kind from elsewhere: it inherits no rule and no trait
            for name in RULES:
                if name not in cls.__dict__:
                    setattr(cls, name, getattr(Op, name))
            if "traits" not in cls.__dict__:
                cls.traits = frozenset()
        unknown = cls.traits - TRAITS
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown trait(s) {', '.join(sorted(unknown))}")

    def infer(self, inputs: list[TensorShape]) -> TensorShape:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} has no shape rule")

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` of the arrays the op owns (PyTorch's names and layouts)."""
        raise NoRule(self, "parameter")

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        """``(macs, other_ops)`` for one image."""
        raise NoRule(self, "cost")

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        """How output units read input units (None: unchanged); ``units`` is the
        number of units per axis of the map the op reads."""
        raise NoRule(self, "receptive-field")

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """The tensors autograd keeps for the op's backward (see :class:`Saved`)."""
        raise NoRule(self, "saved-tensors")

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """``(input_grad_macs, weight_grad_macs, other_ops)`` of the backward, per image."""
        raise NoRule(self, "backward-cost")

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        """The derivation of the output shape (one ``shape`` term per dimension), the
        arrays (``param`` / ``buffer``, one per array of :meth:`params`) and the cost
        (``macs``, ``other``: each kind of operation named apart), per image."""
        raise NoRule(self, "explain")

    def has(self, trait: str) -> bool:
        """Whether the op declares ``trait``."""
        return trait in self.traits

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


@record
class Weightless(Op):
    """Base of ops that own no arrays (activations, pools, merges, reshapes)."""

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        return {}


@record
class Input(Weightless):
    """The network input: ``shape`` is ``(C, H, W)`` (or ``(F,)``), batch excluded.

    It starts the receptive-field sweep (each unit sees itself)."""

    shape: tuple[int, ...] = (3, 224, 224)
    kind: ClassVar[str] = "input"
    arity: ClassVar[int] = 0
    family: ClassVar[str] = "io"
    title: ClassVar[str | None] = "input"

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

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        return 0, 0

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return None

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        return keeps_nothing(self, inputs, out, ctx)

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        return no_backward(self, inputs, out, needs_input_grad, needs_weight_grad)

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        return [Term("shape", n, Const(d), "the input") for n, d in zip(dim_names(out), out)]

    def attrs(self) -> str:
        return ""
