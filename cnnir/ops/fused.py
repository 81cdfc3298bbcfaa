"""Fused ops made by transforms: :class:`FusedConv2d` (conv + folded BN + activation)."""

from __future__ import annotations

from typing import ClassVar

from .activation import Activation
from .base import Op, RfStep, Saved, TrainCtx
from .conv import Conv2d, _conv_attrs, _conv_terms, conv_backward, conv_saved
from .formula import Term, elements
from .norm import BatchNorm2d
from .record import record
from .shape import TensorShape, numel


@record
class FusedConv2d(Op):
    """A convolution with a folded BatchNorm and an optional activation.

    Produced by the ``fuse-conv-bn-relu`` pass.  ``conv`` keeps the original conv
    attributes; the fused conv always has a bias (the folded BN shift), and its
    weights, where the graph carries weights, are already folded.

    Params: the conv's ``weight`` and always a ``bias`` ``(Cout)``.  Cost: the conv's
    MACs; per output one add (the bias) plus the activation's operations.  RF: the conv's.
    """

    conv: Conv2d
    bn: BatchNorm2d | None = None
    act: Activation | None = None
    kind: ClassVar[str] = "fused_conv2d"
    family: ClassVar[str] = "conv"
    init: ClassVar[str | None] = "kaiming"

    def infer(self, inputs: list[TensorShape]) -> TensorShape:
        return self.conv.infer(inputs)

    @property
    def has_bias(self) -> bool:
        """Always True: the fused conv carries the folded BN shift, or the conv's
        own bias, or (conv + activation alone) a zero bias, as ``cnnir.weights`` does."""
        return True

    def params(self, inputs: list[TensorShape]) -> dict[str, tuple[int, ...]]:
        c = self.conv
        return {"weight": (c.out_channels, inputs[0][0] // c.groups, *c.kernel),
                "bias": (c.out_channels,)}

    def cost(self, inputs: list[TensorShape], out: TensorShape) -> tuple[int, int]:
        macs, _ = self.conv.cost(inputs, out)
        other = numel(out)  # the bias: the conv's own or the folded BN shift
        if self.act is not None:
            other += self.act.cost([out], out)[1]  # NoRule names the activation
        return macs, other

    def receptive_field(self, inputs: list[TensorShape],
                        units: tuple[int, int]) -> RfStep | None:
        return self.conv.receptive_field(inputs, units)

    def saved(self, inputs: list[TensorShape], out: TensorShape,
              ctx: TrainCtx) -> list[Saved]:
        """The conv's input and weight (the folded BN keeps nothing), and what the
        activation keeps when it runs in place on the conv's output."""
        kept = conv_saved(self.conv, inputs, self.params(inputs)["weight"])
        if self.act is not None:
            kept += self.act.saved([out], out, TrainCtx((True,), inplace=True,
                                                        device=ctx.device))
        return kept

    def backward_cost(self, inputs: list[TensorShape], out: TensorShape,
                      needs_input_grad: bool, needs_weight_grad: bool) -> tuple[int, int, int]:
        """The conv's backward with its bias, and the activation's."""
        macs = self.conv.cost(inputs, out)[0]
        i, w, other = conv_backward(macs, out, True, needs_input_grad, needs_weight_grad)
        if self.act is not None:
            other += self.act.backward_cost([out], out, True, False)[2]  # NoRule names it
        return i, w, other

    def explain(self, inputs: list[TensorShape], out: TensorShape) -> list[Term]:
        terms = [t for t in _conv_terms(self.conv, inputs, out, True) if t.kind != "other"]
        terms.append(Term("other", "bias adds", elements(out),
                          "the folded BN shift or the conv's bias, one per output element"))
        if self.act is not None:
            terms += [Term("other", t.name if t.name == self.act.kind
                           else f"{self.act.kind} {t.name}", t.expr, t.note)
                      for t in self.act.explain([out], out) if t.kind == "other"]
        return terms

    def attrs(self) -> str:
        parts = [_conv_attrs(self.conv).replace(",nobias", "")]
        if self.bn is not None:
            parts.append("+bn")
        if self.act is not None:
            parts.append(f"+{self.act.kind}")
        return ",".join(parts)


#: the concrete ops of this family, in the order reports list them (-> ``ALL_OPS``)
OPS: tuple[type[Op], ...] = (FusedConv2d,)

__all__ = ["FusedConv2d", "OPS"]
