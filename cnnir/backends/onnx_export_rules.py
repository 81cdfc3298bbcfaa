"""ONNX export rules: the ONNX node(s) each IR op becomes, one rule per op class.

:data:`EXPORT` (``RuleTable("onnx-export")``) maps every op class to a rule
``rule(e, node, op, inputs, doc) -> tensor``: it appends nodes to the
:class:`~cnnir.backends.onnx_builder.Emitter` ``e`` with ``onnx.helper`` (weights
through ``e.param``), reading the input tensors ``inputs``, and returns the tensor
that holds the node's output (named like the node).  The driver,
:func:`cnnir.backends.onnx_export.to_onnx`, walks the graph and assembles the model.

The mapping (the IR's PyTorch semantics, checked numerically against PyTorch):

=====================  ==================================================================
input                  a graph input, batch first (``N`` or a fixed size)
conv2d                 ``Conv`` (pads per side, dilations, group)
conv_transpose2d       ``ConvTranspose`` (weight layout Cin, Cout/groups, kh, kw)
fused_conv2d           ``Conv`` with the folded weights and bias, then the activation
batchnorm2d            ``BatchNormalization`` (inference)
lrn                    ``LRN`` for an odd size; for an even size PyTorch's window is
                       asymmetric (``size//2`` before, ``(size-1)//2`` after), which
                       ``LRN`` cannot express: square, 1x1 ``Conv`` with a banded
                       ``alpha/size`` matrix, add ``k``, ``Pow`` beta, ``Div``
relu / sigmoid / tanh  ``Relu`` / ``Sigmoid`` / ``Tanh``
leaky_relu             ``LeakyRelu``
relu6                  ``Clip`` with min 0 and max 6 as inputs
hardsigmoid            ``HardSigmoid(alpha=1/6, beta=1/2)``
hardswish              ``HardSwish``
silu                   ``Sigmoid`` then ``Mul``
gelu                   ``Gelu`` (opset 20+); before: ``Div``/``Erf``/``Add``/``Mul`` (erf
                       form) or ``Mul``/``Add``/``Tanh`` (tanh form), PyTorch's spelling
layernorm2d            ``Transpose`` to NHWC, ``LayerNormalization(axis=-1)``, ``Transpose``
softmax                ``Softmax(axis=1)`` (channels or features)
maxpool2d / avgpool2d  ``MaxPool`` / ``AveragePool``; ``ceil_mode`` as extra end padding
                       (see :func:`_pool_pads`); an averaging ceil-mode pool that counts
                       padding pads with zeros first (``Pad``)
adaptive_avgpool2d     1x1: ``GlobalAveragePool``; input divisible by the output:
                       ``AveragePool``; otherwise PyTorch's overlapping bins as two
                       ``MatMul`` with bin-averaging matrices (exact, not approximated)
global_avgpool         ``GlobalAveragePool``
upsample               ``Resize``: nearest = ``asymmetric`` + ``floor`` (PyTorch's
                       nearest); bilinear = ``linear`` with ``align_corners`` or
                       ``half_pixel`` (``pytorch_half_pixel`` and a ``sizes`` input
                       for an explicit output size)
flatten                ``Flatten(axis=1)``
linear                 ``Gemm(transB=1)``
concat / add / mul     ``Concat(axis=1)`` / ``Add`` / ``Mul``
sum / mean             ``Sum`` / ``Mean`` of the n inputs
scale                  ``Mul`` (``Div`` with ``divide``) by the ``weight`` initializer, then
                       ``Add`` of the ``bias`` initializer (shapes ``C x 1 x 1`` or ``1``)
pad                    ``Pad`` (constant) with ``[0, c0, t, l, 0, c1, b, r]``
dropout / identity /   nothing (the consumers read the input tensor); an ``Identity``
drop_path              where the node is a graph output
slice                  ``Slice`` with int64 ``starts`` / ``ends`` / ``axes`` inputs (the
                       sliced axes only, steps 1)
channel_shuffle        ``Reshape`` to ``[0, g, C/g, H, W]``, ``Transpose`` ``[0, 2, 1, 3, 4]``,
                       ``Reshape`` to ``[0, C, H, W]`` (as exporters write PyTorch's)
space_to_depth         ``SpaceToDepth(blocksize)`` (ONNX's order is timm's)
channel_conv1d         ``Reshape`` to ``[0, 1, -1]``, a 1-D ``Conv``, ``Reshape`` to
                       ``[0, -1, 1, 1]`` (as exporters write ECA's)
radix_softmax          ``Reshape`` to ``[0, card, radix, -1]``, ``Transpose [0, 2, 1, 3]``,
                       ``Softmax(axis=1)``, ``Reshape`` to ``[0, C, H, W]`` (timm's rSoftMax)
=====================  ==================================================================

Rules are looked up by exact class: a new op needs its own rule (or a deliberate
``EXPORT.refuse``); without one the driver raises a BackendError naming the layer.
Activation rules take an optional ``name`` for their node, so that a fused conv can
apply one to its own output (``"conv1:relu"``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, cast

import numpy as np

from .. import ops as O
from ..errors import BackendError
from ..passes.support import bin_matrix
from ..rules import RuleTable
from .onnx_builder import Emitter

#: ``rule(emitter, node, op, input tensors, doc string) -> output tensor``
Rule = Callable[..., str]

EXPORT: RuleTable[Rule] = RuleTable("onnx-export")


def key(op_type: type) -> Hashable:
    """An op class as a table key (mypy does not take a ``type[Op]`` as Hashable)."""
    return cast(Hashable, op_type)


def rule(*op_types: type[O.Op]) -> Callable[[Rule], Rule]:
    """Decorator: ``fn`` is the ONNX rule of each of ``op_types``."""
    return EXPORT.rule(*(key(t) for t in op_types))


# --------------------------------------------------------------------------- io, conv, norm


@rule(O.Input)
def _input(e: Emitter, n: str, op: O.Input, ins: list[str], doc: str) -> str:
    return e.add_input(n, op.shape)


def _conv_attrs(conv: O.Conv2d) -> dict[str, Any]:
    return dict(kernel_shape=list(conv.kernel), strides=list(conv.stride),
                pads=list(conv.padding), dilations=list(conv.dilation), group=conv.groups)


@rule(O.Conv2d)
def _conv(e: Emitter, n: str, op: O.Conv2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    return e.emit("Conv", args, n, n, doc, **_conv_attrs(op))


@rule(O.FusedConv2d)
def _fused(e: Emitter, n: str, op: O.FusedConv2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if "bias" in e.weights[n]:
        args.append(e.param(n, "bias"))
    if op.act is None:
        return e.emit("Conv", args, n, n, doc, **_conv_attrs(op.conv))
    y = e.emit("Conv", args, f"{n}:conv", n, doc, **_conv_attrs(op.conv))
    act_rule = EXPORT.get(key(type(op.act)))
    if act_rule is None:
        raise BackendError(f"onnx: no rule for the activation '{op.act.kind}'")
    return act_rule(e, n, op.act, [y], doc, name=f"{n}:{op.act.kind}")


@rule(O.ConvTranspose2d)
def _conv_t(e: Emitter, n: str, op: O.ConvTranspose2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    ph, pw = op.padding
    return e.emit("ConvTranspose", args, n, n, doc, kernel_shape=list(op.kernel),
                  strides=list(op.stride), pads=[ph, pw, ph, pw],
                  output_padding=list(op.output_padding), dilations=list(op.dilation),
                  group=op.groups)


@rule(O.BatchNorm2d)
def _bn(e: Emitter, n: str, op: O.BatchNorm2d, ins: list[str], doc: str) -> str:
    args = [ins[0]] + [e.param(n, k) for k in ("weight", "bias", "running_mean", "running_var")]
    # ONNX momentum weighs the running statistic, PyTorch's the new batch statistic
    return e.emit("BatchNormalization", args, n, n, doc, epsilon=float(op.eps),
                  momentum=1.0 - float(op.momentum))


@rule(O.LocalResponseNorm)
def _lrn(e: Emitter, n: str, op: O.LocalResponseNorm, ins: list[str], doc: str) -> str:
    if op.size % 2:
        return e.emit("LRN", [ins[0]], n, n, doc, size=op.size, alpha=float(op.alpha),
                      beta=float(op.beta), bias=float(op.k))
    # PyTorch sums channels [c - size//2, c + (size-1)//2]; ONNX LRN the mirror window
    c = e.graph.shape(n)[0]
    band = np.zeros((c, c, 1, 1), np.float32)
    for i in range(c):
        lo, hi = max(0, i - op.size // 2), min(c - 1, i + (op.size - 1) // 2)
        band[i, lo:hi + 1] = op.alpha / op.size
    sq = e.emit("Mul", [ins[0], ins[0]], f"{n}:square", f"{n}:square", doc)
    s = e.emit("Conv", [sq, e.add_init(f"{n}:window", band)], f"{n}:window", f"{n}:window",
               doc, kernel_shape=[1, 1])
    d = e.emit("Add", [s, e.const(op.k)], f"{n}:offset", f"{n}:offset", doc)
    p = e.emit("Pow", [d, e.const(op.beta)], f"{n}:pow", f"{n}:pow", doc)
    return e.emit("Div", [ins[0], p], n, n, doc)


# --------------------------------------------------------------------------- activations
# each takes ``name`` (the ONNX node's name, the IR node's by default): a fused conv
# applies the activation to its own output under "<node>:<kind>"


def _simple(op_type: type[O.Op], onnx_op: str, **attrs: Any) -> None:
    """Register a one-node activation ``onnx_op`` with fixed attributes."""

    def act(e: Emitter, n: str, op: Any, ins: list[str], doc: str,
            name: str | None = None) -> str:
        return e.emit(onnx_op, [ins[0]], n, name or n, doc, **attrs)

    EXPORT.add(key(op_type), act)


_simple(O.ReLU, "Relu")
_simple(O.Sigmoid, "Sigmoid")
_simple(O.Tanh, "Tanh")
_simple(O.HardSigmoid, "HardSigmoid", alpha=1.0 / 6.0, beta=0.5)
_simple(O.HardSwish, "HardSwish")


@rule(O.LeakyReLU)
def _leaky(e: Emitter, n: str, op: O.LeakyReLU, ins: list[str], doc: str,
           name: str | None = None) -> str:
    return e.emit("LeakyRelu", [ins[0]], n, name or n, doc, alpha=float(op.negative_slope))


@rule(O.ReLU6)
def _relu6(e: Emitter, n: str, op: O.ReLU6, ins: list[str], doc: str,
           name: str | None = None) -> str:
    return e.emit("Clip", [ins[0], e.const(0.0), e.const(6.0)], n, name or n, doc)


@rule(O.SiLU)
def _silu(e: Emitter, n: str, op: O.SiLU, ins: list[str], doc: str,
          name: str | None = None) -> str:
    name = name or n
    s = e.emit("Sigmoid", [ins[0]], f"{name}:sigmoid", f"{name}:sigmoid", doc)
    return e.emit("Mul", [ins[0], s], n, name, doc)


#: GELU's constants as PyTorch's ONNX exporter writes them
SQRT2 = 1.4142135623730951
GELU_BETA = 0.7978845608028654  # sqrt(2 / pi)
GELU_KAPPA = 0.044715


@rule(O.GELU)
def _gelu(e: Emitter, n: str, op: O.GELU, ins: list[str], doc: str,
          name: str | None = None) -> str:
    """``Gelu`` from opset 20; before it the decomposition PyTorch's exporter writes:
    ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)``, and for ``tanh``
    ``Mul(Mul(x, Add(Tanh(Mul(Add(x, Mul(Mul(x, Mul(x, x)), kappa)), beta)), 1)), 0.5)``."""
    name = name or n
    x = ins[0]
    if e.opset >= 20:
        return e.emit("Gelu", [x], n, name, doc, approximate=op.approximate)

    def step(op_type: str, args: list[str], what: str) -> str:
        return e.emit(op_type, args, f"{name}:{what}", f"{name}:{what}", doc)

    if op.approximate == "none":
        d = step("Div", [x, e.const(SQRT2)], "div")
        erf = step("Erf", [d], "erf")
        one = step("Add", [erf, e.const(1.0)], "add")
        xm = step("Mul", [x, one], "mul")
        return e.emit("Mul", [xm, e.const(0.5)], n, name, doc)
    sq = step("Mul", [x, x], "square")
    cube = step("Mul", [x, sq], "cube")
    inner = step("Add", [x, step("Mul", [cube, e.const(GELU_KAPPA)], "kappa")], "inner")
    t = step("Tanh", [step("Mul", [inner, e.const(GELU_BETA)], "beta")], "tanh")
    xm = step("Mul", [x, step("Add", [t, e.const(1.0)], "add")], "mul")
    return e.emit("Mul", [xm, e.const(0.5)], n, name, doc)


@rule(O.LayerNorm2d)
def _layernorm2d(e: Emitter, n: str, op: O.LayerNorm2d, ins: list[str], doc: str) -> str:
    """``Transpose(0, 2, 3, 1)``, ``LayerNormalization(axis=-1)``, ``Transpose(0, 3, 1, 2)``
    (LayerNormalization is opset 17, the exporter's minimum)."""
    t = e.emit("Transpose", [ins[0]], f"{n}:nhwc", f"{n}:nhwc", doc, perm=[0, 2, 3, 1])
    y = e.emit("LayerNormalization", [t, e.param(n, "weight"), e.param(n, "bias")],
               f"{n}:ln", f"{n}:ln", doc, axis=-1, epsilon=float(op.eps))
    return e.emit("Transpose", [y], n, n, doc, perm=[0, 3, 1, 2])


@rule(O.Softmax)
def _softmax(e: Emitter, n: str, op: O.Softmax, ins: list[str], doc: str) -> str:
    return e.emit("Softmax", [ins[0]], n, n, doc, axis=1)


# --------------------------------------------------------------------------- pooling


def _pool_pads(e: Emitter, n: str, op: O.MaxPool2d | O.AvgPool2d) -> tuple[list[int], bool]:
    """Pads that give PyTorch's output size without ``ceil_mode``; True if they grew.

    ``ceil_mode`` is never emitted: onnx's shape inference does not drop a last window
    that would start in the end padding (PyTorch does), so the extra windows of ceil
    mode become extra end padding, which pooling ignores (``-inf`` for max; not counted
    by an average that excludes padding).
    """
    _, h, w = e.graph.shape(e.graph.inputs(n)[0])
    _, oh, ow = e.graph.shape(n)
    pads = list(op.padding)
    grown = False
    for axis, (size, out) in enumerate(((h, oh), (w, ow))):
        k, s = op.kernel[axis], op.stride[axis]
        end = (out - 1) * s + k - size - pads[axis]  # end padding the last window needs
        if end > pads[axis + 2]:
            pads[axis + 2] = end
            grown = True
    return pads, grown


@rule(O.MaxPool2d)
def _maxpool(e: Emitter, n: str, op: O.MaxPool2d, ins: list[str], doc: str) -> str:
    pads, _ = _pool_pads(e, n, op)
    return e.emit("MaxPool", [ins[0]], n, n, doc, kernel_shape=list(op.kernel),
                  strides=list(op.stride), pads=pads)


@rule(O.AvgPool2d)
def _avgpool(e: Emitter, n: str, op: O.AvgPool2d, ins: list[str], doc: str) -> str:
    pads, grown = _pool_pads(e, n, op)
    attrs = dict(kernel_shape=list(op.kernel), strides=list(op.stride))
    if not op.count_include_pad or not grown:
        return e.emit("AveragePool", [ins[0]], n, n, doc, pads=pads,
                      count_include_pad=int(op.count_include_pad), **attrs)
    # PyTorch divides a ceil-mode window by its cells inside the *padded* input: pad
    # the input with zeros explicitly, then average over what is not the extra padding
    x = ins[0]
    if any(op.padding):
        t, left, b, r = op.padding
        pad = e.add_init(f"{n}:pads", [0, 0, t, left, 0, 0, b, r], np.int64)
        x = e.emit("Pad", [x, pad], f"{n}:padded", f"{n}:pad", doc)
    extra = [0, 0, pads[2] - op.padding[2], pads[3] - op.padding[3]]
    return e.emit("AveragePool", [x], n, n, doc, pads=extra, count_include_pad=0, **attrs)



@rule(O.AdaptiveAvgPool2d)
def _adaptive(e: Emitter, n: str, op: O.AdaptiveAvgPool2d, ins: list[str], doc: str) -> str:
    _, h, w = e.graph.shape(e.graph.inputs(n)[0])
    oh, ow = op.output_size
    if (oh, ow) == (1, 1):
        return e.emit("GlobalAveragePool", [ins[0]], n, n, doc)
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return e.emit("AveragePool", [ins[0]], n, n, doc, kernel_shape=k, strides=k)
    # overlapping (or repeating) bins: out = A_h @ x @ A_w^T, exactly PyTorch's bins
    aw = e.add_init(f"{n}:bins_w", bin_matrix(w, ow).T)
    ah = e.add_init(f"{n}:bins_h", bin_matrix(h, oh))
    y = e.emit("MatMul", [ins[0], aw], f"{n}:pool_w", f"{n}:pool_w", doc)
    return e.emit("MatMul", [ah, y], n, n, doc)


@rule(O.GlobalAvgPool)
def _global(e: Emitter, n: str, op: O.GlobalAvgPool, ins: list[str], doc: str) -> str:
    return e.emit("GlobalAveragePool", [ins[0]], n, n, doc)


@rule(O.Upsample)
def _upsample(e: Emitter, n: str, op: O.Upsample, ins: list[str], doc: str) -> str:
    if op.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        # integer scales: half_pixel equals PyTorch's pytorch_half_pixel (sizes > 1)
        attrs = dict(mode="linear", coordinate_transformation_mode=(
            "align_corners" if op.align_corners else
            "half_pixel" if op.size is None else "pytorch_half_pixel"))
    if op.size is None:
        scales = e.add_init(f"{n}:scales", np.array([1, 1, *op.scale], np.float32))
        return e.emit("Resize", [ins[0], "", scales], n, n, doc, **attrs)
    # an explicit output size: ``sizes`` = the input's N and C (Shape, Slice) with H and W
    shape = e.emit("Shape", [ins[0]], f"{n}:shape", f"{n}:shape", doc)
    nc = e.emit("Slice", [shape, e.add_init(f"{n}:zero", np.array([0], np.int64), np.int64),
                          e.add_init(f"{n}:two", np.array([2], np.int64), np.int64)],
                f"{n}:nc", f"{n}:nc", doc)
    hw = e.add_init(f"{n}:hw", np.array(op.size, np.int64), np.int64)
    sizes = e.emit("Concat", [nc, hw], f"{n}:sizes", f"{n}:sizes", doc, axis=0)
    return e.emit("Resize", [ins[0], "", "", sizes], n, n, doc, **attrs)


# --------------------------------------------------------------------------- shape-only, dense


@rule(O.Flatten)
def _flatten(e: Emitter, n: str, op: O.Flatten, ins: list[str], doc: str) -> str:
    return e.emit("Flatten", [ins[0]], n, n, doc, axis=1)


@rule(O.Linear)
def _linear(e: Emitter, n: str, op: O.Linear, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    return e.emit("Gemm", args, n, n, doc, transB=1)


@rule(O.Slice)
def _slice(e: Emitter, n: str, op: O.Slice, ins: list[str], doc: str) -> str:
    axes = [ax for ax, r in enumerate(op.ranges, start=1) if r is not None]
    given = [r for r in op.ranges if r is not None]
    if not given:  # the whole map
        return e.emit("Identity", [ins[0]], n, n, doc)
    starts = e.add_init(f"{n}:starts", [r[0] for r in given], np.int64)
    ends = e.add_init(f"{n}:ends", [r[1] for r in given], np.int64)
    axes_t = e.add_init(f"{n}:axes", axes, np.int64)
    return e.emit("Slice", [ins[0], starts, ends, axes_t], n, n, doc)


@rule(O.ChannelShuffle)
def _channel_shuffle(e: Emitter, n: str, op: O.ChannelShuffle, ins: list[str], doc: str) -> str:
    c, h, w = e.graph.shape(n)
    g = op.groups
    grouped = e.add_init(f"{n}:grouped", [0, g, c // g, h, w], np.int64)
    flat = e.add_init(f"{n}:shape", [0, c, h, w], np.int64)
    y = e.emit("Reshape", [ins[0], grouped], f"{n}:grouped", f"{n}:reshape", doc)
    y = e.emit("Transpose", [y], f"{n}:transposed", f"{n}:transpose", doc, perm=[0, 2, 1, 3, 4])
    return e.emit("Reshape", [y, flat], n, n, doc)


@rule(O.SpaceToDepth)
def _space_to_depth(e: Emitter, n: str, op: O.SpaceToDepth, ins: list[str], doc: str) -> str:
    return e.emit("SpaceToDepth", [ins[0]], n, n, doc, blocksize=op.block)


@rule(O.ChannelConv1d)
def _channel_conv1d(e: Emitter, n: str, op: O.ChannelConv1d, ins: list[str], doc: str) -> str:
    seq = e.add_init(f"{n}:seq", [0, 1, -1], np.int64)
    back = e.add_init(f"{n}:shape", [0, -1, 1, 1], np.int64)
    y = e.emit("Reshape", [ins[0], seq], f"{n}:seq", f"{n}:reshape", doc)
    args = [y, e.param(n, "weight")] + ([e.param(n, "bias")] if op.bias else [])
    y = e.emit("Conv", args, f"{n}:conv", f"{n}:conv", doc, kernel_shape=[op.kernel],
               strides=[1], pads=[op.padding, op.padding], dilations=[1], group=1)
    return e.emit("Reshape", [y, back], n, n, doc)


@rule(O.RadixSoftmax)
def _radix_softmax(e: Emitter, n: str, op: O.RadixSoftmax, ins: list[str], doc: str) -> str:
    c, h, w = e.graph.shape(n)
    r, g = op.radix, op.cardinality
    grouped = e.add_init(f"{n}:grouped", [0, g, r, -1], np.int64)
    back = e.add_init(f"{n}:shape", [0, c, h, w], np.int64)
    y = e.emit("Reshape", [ins[0], grouped], f"{n}:grouped", f"{n}:reshape", doc)
    y = e.emit("Transpose", [y], f"{n}:transposed", f"{n}:transpose", doc, perm=[0, 2, 1, 3])
    y = e.emit("Softmax", [y], f"{n}:softmax", f"{n}:softmax", doc, axis=1)
    return e.emit("Reshape", [y, back], n, n, doc)


@rule(O.Dropout, O.Identity, O.DropPath)
def _alias(e: Emitter, n: str, op: O.Op, ins: list[str], doc: str) -> str:
    """No node: the consumers read the input tensor (the driver adds an ``Identity``
    where such a node is a graph output)."""
    return ins[0]


# --------------------------------------------------------------------------- merges


@rule(O.Concat)
def _concat(e: Emitter, n: str, op: O.Concat, ins: list[str], doc: str) -> str:
    return e.emit("Concat", ins, n, n, doc, axis=1)


@rule(O.Add)
def _add(e: Emitter, n: str, op: O.Add, ins: list[str], doc: str) -> str:
    return e.emit("Add", ins, n, n, doc)


@rule(O.Mul)
def _mul(e: Emitter, n: str, op: O.Mul, ins: list[str], doc: str) -> str:
    return e.emit("Mul", ins, n, n, doc)


# --------------------------------------------------------------------------- sum, mean, scale, pad


@rule(O.Sum)
def _sum(e: Emitter, n: str, op: O.Sum, ins: list[str], doc: str) -> str:
    return e.emit("Sum", ins, n, n, doc)


@rule(O.Mean)
def _mean(e: Emitter, n: str, op: O.Mean, ins: list[str], doc: str) -> str:
    return e.emit("Mean", ins, n, n, doc)


@rule(O.Scale)
def _scale(e: Emitter, n: str, op: O.Scale, ins: list[str], doc: str) -> str:
    """Mul / Div by the weight, Add of the bias: initializers (model data, parameters),
    or for a ``fixed`` scale ``Constant`` nodes (what torch.onnx.export writes for a
    number in the code, and what cnnir's importer reads back as fixed)."""
    def operand(key: str) -> str:
        if not op.fixed:
            return e.param(n, key)
        from onnx import numpy_helper

        value = numpy_helper.from_array(np.asarray(e.weights[n][key], np.float32))
        return e.emit("Constant", [], f"{n}.{key}", f"{n}:{key}", doc, value=value)

    x = ins[0]
    if op.scale:
        # the product's node carries the layer's name (an importer names the layer by it)
        x = e.emit("Div" if op.divide else "Mul", [x, operand("weight")],
                   n if not op.bias else f"{n}:scaled", n, doc)
    if op.bias:
        x = e.emit("Add", [x, operand("bias")], n, n if not op.scale else f"{n}:bias", doc)
    return x


@rule(O.Pad)
def _pad(e: Emitter, n: str, op: O.Pad, ins: list[str], doc: str) -> str:
    t, left, b, r = op.padding
    c0, c1 = op.channels
    pads = e.add_init(f"{n}:pads", [0, c0, t, left, 0, c1, b, r], np.int64)
    if op.mode != "constant":
        return e.emit("Pad", [ins[0], pads], n, n, doc, mode=op.mode)
    value = e.add_init(f"{n}:value", np.array(op.value, np.float32))
    return e.emit("Pad", [ins[0], pads, value], n, n, doc, mode="constant")


__all__ = ["EXPORT", "Rule", "rule", "bin_matrix"]
