"""ONNX operator -> IR layer rules, registered in :data:`~cnnir.frontends.onnx_support.ONNX`.

One function per ONNX operator: ``rule(ctx, node, inputs, attrs)`` returns the id of
the IR layer it added (through ``ctx.add``), or a pending value that the next node
completes: a zero :class:`Padded` waiting to fold into a conv's padding, or the first
half of an adaptive pool written as two ``MatMul`` with bin matrices (how cnnir's ONNX
backend writes overlapping adaptive bins).  Each rule declares the cnnir ops it can
produce and every attribute and input the ONNX spec gives its operator (opsets 7 and
later): handled exactly, or refused by name with an error naming the node
(``ctx.err``).  The driver is :mod:`cnnir.frontends.onnx_import`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops as O
from ..errors import CnnirError
from ..ops import Pads, Pair, TensorShape
from .importing import BATCH
from .onnx_support import (
    ONNX,
    NodeContext,
    Padded,
    RowPooled,
    Value,
    attrs,
    bin_matrix,
    f32,
    ints,
    nums,
    rule,
)

ONNX.not_produced(O.Input, "made by the driver for the graph input, not by an operator rule")
ONNX.not_produced(O.SiLU, "exporters write SiLU as Sigmoid and Mul, read back as those two")
ONNX.not_produced(O.DropPath, "stochastic depth is the identity at inference; cnnir exports "
                              "it as nothing (or Identity), which reads back as identity")
ONNX.not_produced(O.FusedConv2d, "made by the fuse-conv-bn-relu pass; ONNX files hold the "
                                 "separate Conv, BatchNormalization and activation")


def _spatial(cv: NodeContext, node: Any, a: dict[str, Any], key: str, default: int) -> Pair:
    v = a.get(key)
    if v is None:
        return (default, default)
    if len(v) != 2:
        raise cv.err(node, f"{key} {list(v)}: cnnir handles 2-D (NCHW) layers only")
    return (int(v[0]), int(v[1]))


def _pads(cv: NodeContext, node: Any, a: dict[str, Any], in_shape: TensorShape,
          kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
          ) -> tuple[int, int, int, int]:
    """ONNX ``pads`` ``[top, left, bottom, right]``, or the ``auto_pad`` rule."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        p = a.get("pads", [0, 0, 0, 0])
        if len(p) != 4:
            raise cv.err(node, f"pads {list(p)}: cnnir handles 2-D layers only")
        return (int(p[0]), int(p[1]), int(p[2]), int(p[3]))
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for ax in range(2):
            size = in_shape[1 + ax]
            out = -(-size // stride[ax])
            total = max((out - 1) * stride[ax] + (kernel[ax] - 1) * dilation[ax] + 1 - size, 0)
            small = total // 2
            begin.append(small if auto == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
        return (begin[0], begin[1], end[0], end[1])
    raise cv.err(node, f"unknown auto_pad {auto!r}")


def _map_input(cv: NodeContext, node: Any, x: int, rank: int = 3) -> TensorShape:
    s = cv.shape(x)
    if len(s) != rank:
        raise cv.err(node, f"expects a {'CxHxW feature map' if rank == 3 else 'flat tensor'}, "
                     f"got {s}")
    return s


@rule("Conv", produces=[O.Conv2d, O.ChannelConv1d],
      handles=("X", "W", "B", "auto_pad", "dilations", "group", "kernel_shape", "pads",
               "strides"),
      refuses={"W": "of rank other than 4 (3-D convolutions; 1-D ones except ECA's "
                    "[1, 1, k] on the [N, 1, C] view of pooled channels)",
               "auto_pad": "other than NOTSET, VALID, SAME_UPPER, SAME_LOWER"})
def _conv(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if type(ins[0]) is _Seq:
        return _seq_conv(cv, node, ins, a)
    xv, extra = _unpad(cv.ir_or_pad(node, ins, 0))
    s = _map_input(cv, node, xv)
    w = cv.const(node, ins, 1, "the weight", exact=False)
    b = cv.opt_const(node, ins, 2, "the bias")
    if w.ndim != 4:
        raise cv.err(node, f"weight of shape {list(w.shape)}: cnnir handles 2-D convolutions")
    gain = None
    try:
        cv.check_exact(node, 1, "the weight")
    except CnnirError:
        split = _gain_split(cv, node.input[1], w)
        if split is None:
            raise
        w, gain = split
    kernel = _spatial(cv, node, a, "kernel_shape", 0)
    if "kernel_shape" in a and kernel != tuple(w.shape[2:]):
        raise cv.err(node, f"kernel_shape {list(kernel)} disagrees with the weight "
                     f"{list(w.shape)}")
    kernel = (int(w.shape[2]), int(w.shape[3]))
    stride = _spatial(cv, node, a, "strides", 1)
    dil = _spatial(cv, node, a, "dilations", 1)
    group = int(a.get("group", 1))
    pads = _add_pads(_pads(cv, node, a, s, kernel, stride, dil), extra)
    if w.shape[1] * group != s[0]:
        raise cv.err(node, f"weight {list(w.shape)} with group={group} expects "
                     f"{w.shape[1] * group} input channels, the input has {s[0]}")
    if b is not None and b.size != w.shape[0]:
        raise cv.err(node, f"bias of shape {list(b.shape)} does not fit {w.shape[0]} output "
                     f"channels")
    out = int(w.shape[0])
    if gain is not None:  # the standardised weight, then the gain (and the bias)
        conv = cv.add(node, O.Conv2d(out, kernel, stride, pads, dil, group, False), [xv],
                      "conv", {"weight": w}, node.input[1])
        arrays = {"weight": gain.reshape(out, 1, 1)}
        if b is not None:
            arrays["bias"] = b.reshape(out, 1, 1)
        return cv.add(node, O.Scale(True, bias=b is not None), [conv], "gain", arrays)
    op = O.Conv2d(out, kernel, stride, pads, dil, group, b is not None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    return cv.add(node, op, [xv], "conv", weights, node.input[1])


def _gain_split(cv: NodeContext, name: str, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """A conv weight computed in the graph as ``f(W) * g``, with ``g`` an initializer of one
    value per output channel (NFNet's ScaledStdConv2d: weight standardisation times
    ``gain * scale``, which the exporter folds into one initializer): ``(f(W), g)``, or
    None.  The other distinct initializers must hold exactly ``W``'s values; the weight
    is computed again with ``g`` replaced by ones and by another vector, and must scale
    with ``g`` channel by channel."""
    srcs = cv.distinct_sources(name)
    out = int(w.shape[0])
    per = (-1,) + (1,) * (w.ndim - 1)
    for key, g in srcs.items():
        if g.size != out or g.size == w.size or \
                sum(int(v.size) for k, v in srcs.items() if k != key) != w.size:
            continue
        try:
            w1 = cv.recompute(name, {key: np.ones_like(g)})
            probe = np.linspace(0.5, 2.0, out, dtype=g.dtype).reshape(g.shape)
            w2 = cv.recompute(name, {key: probe})
        except CnnirError:
            return None
        if w1.shape == w.shape and np.allclose(w2, w1 * probe.reshape(per), rtol=1e-5,
                                               atol=1e-6) \
                and np.allclose(w, w1 * g.reshape(per), rtol=1e-5, atol=1e-6):
            return w1, g.reshape(-1)
    return None


@rule("ConvTranspose", produces=[O.ConvTranspose2d],
      handles=("X", "W", "B", "auto_pad", "dilations", "group", "kernel_shape",
               "output_padding", "pads", "strides"),
      refuses={"output_shape": "always (export explicit pads and output_padding)",
               "auto_pad": "SAME_UPPER / SAME_LOWER",
               "pads": "asymmetric", "W": "of rank other than 4"})
def _conv_transpose(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x)
    w = cv.const(node, ins, 1, "the weight")
    b = cv.opt_const(node, ins, 2, "the bias")
    if w.ndim != 4:
        raise cv.err(node, f"weight of shape {list(w.shape)}: cnnir handles 2-D convolutions")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID") or "output_shape" in a:
        raise cv.err(node, "auto_pad / output_shape are not supported; export explicit pads "
                     "and output_padding")
    group = int(a.get("group", 1))
    kernel = (int(w.shape[2]), int(w.shape[3]))
    if "kernel_shape" in a and _spatial(cv, node, a, "kernel_shape", 0) != kernel:
        raise cv.err(node, f"kernel_shape {ints(a['kernel_shape'])} disagrees with the weight "
                     f"{list(w.shape)}")
    if b is not None and b.size != w.shape[1] * group:
        raise cv.err(node, f"bias of shape {list(b.shape)} does not fit {w.shape[1] * group} "
                     f"output channels")
    if w.shape[0] != s[0]:
        raise cv.err(node, f"weight {list(w.shape)} expects {w.shape[0]} input channels, "
                     f"the input has {s[0]}")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
        raise cv.err(node, f"pads {p}: cnnir's transposed conv takes symmetric padding only")
    op = O.ConvTranspose2d(int(w.shape[1]) * group, kernel,
                           _spatial(cv, node, a, "strides", 1), (p[0], p[1]),
                           _spatial(cv, node, a, "output_padding", 0),
                           _spatial(cv, node, a, "dilations", 1), group, b is not None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    return cv.add(node, op, [x], "upconv", weights, node.input[1])


@rule("BatchNormalization", produces=[O.BatchNorm2d],
      handles=("X", "scale", "B", "mean", "var", "input_mean", "input_var", "epsilon",
               "momentum", "spatial", "training_mode"),
      refuses={"training_mode": "=1 (normalises by batch statistics)",
               "spatial": "=0 (per-activation statistics)"})
def _batchnorm(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    if int(a.get("training_mode", 0)):
        raise cv.err(node, "training_mode=1 normalises by the batch's own statistics; cnnir's "
                     "batchnorm2d is the inference one (running statistics)")
    if cv.opset < 9 and not int(a.get("spatial", 1)):
        raise cv.err(node, "spatial=0 (statistics per activation, not per channel) has no IR op")
    x = cv.ir(node, ins)
    c = _map_input(cv, node, x)[0]
    arrays = {}
    for i, key in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
        v = cv.const(node, ins, i, key)
        if v.size != c:
            raise cv.err(node, f"{key} has {v.size} values for {c} channels")
        arrays[key] = v.reshape(-1)
    momentum = round(1.0 - float(a.get("momentum", 0.9)), 6)
    op = O.BatchNorm2d(f32(a.get("epsilon", 1e-5)), momentum)
    return cv.add(node, op, [x], "bn", arrays, node.input[1])


def _simple(op_type: str, op_cls: type[O.Op], hint: str, arg: str = "X") -> None:
    def handler(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
        got = _claimed(cv, node, ins)  # the Tanh of GELU's tanh form
        if got is not None:
            return got
        if ins and type(ins[0]) is _Seq:  # ECA's gate on the [N, 1, C] sequence
            return _Seq(cv.add(node, op_cls(), [ins[0].map], hint))
        return cv.add(node, op_cls(), [cv.ir(node, ins)], hint)
    rule(op_type, produces=[op_cls], handles=(arg,))(handler)


_simple("Relu", O.ReLU, "relu")
_simple("Sigmoid", O.Sigmoid, "sigmoid")
_simple("HardSwish", O.HardSwish, "hswish")
_simple("Tanh", O.Tanh, "tanh", "input")


@rule("LeakyRelu", produces=[O.LeakyReLU], handles=("X", "alpha"))
def _leaky(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    return cv.add(node, O.LeakyReLU(f32(a.get("alpha", 0.01))), [cv.ir(node, ins)], "lrelu")


@rule("Clip", produces=[O.ReLU, O.ReLU6], handles=("input", "min", "max"),
      refuses={"min": "other than 0", "max": "other than 6 or none",
               "input": "min / max computed by the graph"})
def _clip(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    if cv.opset < 11:
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_a = cv.opt_const(node, ins, 1, "min")
        hi_a = cv.opt_const(node, ins, 2, "max")
        for v, what in ((lo_a, "min"), (hi_a, "max")):
            if v is not None and v.size != 1:
                raise cv.err(node, f"{what} must be a single value, got shape {list(v.shape)}")
        lo = -np.inf if lo_a is None else float(lo_a.reshape(-1)[0])
        hi = np.inf if hi_a is None else float(hi_a.reshape(-1)[0])
    if lo == 0 and hi == 6:
        return cv.add(node, O.ReLU6(), [x], "relu6")
    if lo == 0 and hi == np.inf:
        return cv.add(node, O.ReLU(), [x], "relu")
    raise cv.err(node, f"Clip to [{lo:g}, {hi:g}] has no IR op (cnnir maps [0, 6] to relu6 "
                 f"and [0, inf) to relu)")


@rule("HardSigmoid", produces=[O.HardSigmoid], handles=("X", "alpha", "beta"),
      refuses={"alpha": "other than 1/6", "beta": "other than 0.5"})
def _hardsigmoid(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
        raise cv.err(node, f"HardSigmoid(alpha={alpha:g}, beta={beta:g}) differs from "
                     f"PyTorch's hardsigmoid (alpha=1/6, beta=0.5), the only one cnnir has")
    return cv.add(node, O.HardSigmoid(), [cv.ir(node, ins)], "hsigmoid")


@rule("Softmax", produces=[O.Softmax, O.RadixSoftmax], handles=("input", "axis"),
      refuses={"axis": "other than the channel / feature axis (or axis 1 of a radix view)"})
def _softmax(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if ins and type(ins[0]) in (*_GROUPS, _RadixT):
        return _radix_softmax(cv, node, ins[0], a)
    x = cv.ir(node, ins)
    s = cv.shape(x)
    rank = len(s) + 1
    axis = int(a.get("axis", -1 if cv.opset >= 13 else 1)) % rank
    trailing_ones = all(d == 1 for d in s[1:])
    if axis != 1 or (cv.opset < 13 and not trailing_ones):
        raise cv.err(node, f"softmax over axis {a.get('axis')} of an N x {s} tensor; cnnir's "
                     f"softmax runs over the channel / feature axis only")
    return cv.add(node, O.Softmax(), [x], "softmax")


def _elementwise(op_type: str, op_cls: type[O.Op], hint: str) -> None:
    def handler(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
        got = _claimed(cv, node, ins)  # a step of a GELU / LayerNorm decomposition
        if got is not None:
            return got
        if len(ins) == 2 and any(type(v) in (_Expanded, *_GROUPS) for v in ins):
            ins = [_unexpand(cv, node, ins[0], ins[1]), _unexpand(cv, node, ins[1], ins[0])]
            if any(type(v) in _GROUPS for v in ins):
                return _grouped_binary(cv, node, op_cls, hint, ins[0], ins[1])
        consts = [isinstance(v, np.ndarray) for v in ins[:2]]
        lasts = [isinstance(v, ChannelsLast) for v in ins[:2]]
        if op_cls is O.Add and any(consts) and any(lasts):
            return _channels_last_bias(cv, node, ins)
        if op_cls is O.Mul and len(ins) == 2 and node.input[0] == node.input[1]:
            # x * x: the start of GELU's tanh form, else a product of two feature maps
            claim = _claim(cv, node, GELU_TANH, _feature(cv, node, ins), _MAKE[GELU_TANH.name])
            if isinstance(claim, Claimed):
                return claim
        if any(consts):
            if op_cls is O.Add and _foldable_bias(cv, node, ins):
                return _fold_bias(cv, node, ins)
            return _scale_by_constant(cv, node, ins)
        a_, b_ = cv.ir(node, ins, 0), cv.ir(node, ins, 1)
        return cv.add(node, op_cls(), [a_, b_], hint)
    refused = {"B": "a constant that varies along an axis other than the channel axis "
                    "(by ONNX broadcasting)"}
    made = [O.Add, O.Conv2d, O.Linear, O.Scale] if op_cls is O.Add else [op_cls, O.Scale]
    made += [O.GELU, O.LayerNorm2d]  # steps of their decompositions
    rule(op_type, produces=made, handles=("A", "B"), refuses=refused)(handler)


_elementwise("Add", O.Add, "add")
_elementwise("Mul", O.Mul, "mul")


#: what Sub and Div refuse (a step of a GELU / LayerNorm decomposition is claimed first)
_SUB_DIV_REFUSES = {"A": "a feature map, when B is one too (no IR op for the difference or "
                         "quotient of two feature maps)",
                    "B": "a feature map divided into a constant (c / x)"}


def _sub_div(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """``x - c``, ``c - x``, ``x / c``: a :class:`~cnnir.ops.Scale` by the constant."""
    if not any(isinstance(v, np.ndarray) for v in ins[:2]):
        raise cv.err(node, f"{node.op_type} of two feature maps has no IR op (cnnir maps "
                     f"{node.op_type} of a feature map and a constant, and {node.op_type} "
                     f"inside a LayerNorm decomposition)")
    return _scale_by_constant(cv, node, ins)


def _foldable_bias(cv: NodeContext, node: Any, ins: list[Value]) -> bool:
    """Whether ``Add(layer, constant)`` folds into the bias of the Conv / Linear before it."""
    i = 0 if not isinstance(ins[0], np.ndarray) else 1
    if isinstance(ins[i], np.ndarray) or not isinstance(ins[i], (int, np.integer)):
        return False
    p = cv.imp.nodes[int(ins[i])]
    const = np.asarray(ins[1 - i])
    # exact counts: a learned per-channel vector becomes the bias a bias-less layer lacks
    # (a fixed constant, a scalar, or a second bias stays a Scale of its own)
    return (isinstance(p.op, (O.Linear, O.Conv2d)) and not p.op.bias
            and not cv.fixed(node, 1 - i) and const.size == p.shape[0]
            and _sole_user(cv, node, i, int(ins[i]))
            and _bias_vector(const, p.shape) is not None)


def _sole_user(cv: NodeContext, node: Any, i: int, src: int) -> bool:
    """Whether ``node`` is the only reader of its input ``i`` (the layer ``src``)."""
    tensor = node.input[i]
    users = cv.consumers.get(tensor, [])
    return len(users) == 1 and users[0] is node and tensor not in cv.graph_outputs and not any(
        src in q.inputs for q in cv.imp.nodes)


def _scale_by_constant(cv: NodeContext, node: Any, ins: list[Value]) -> int:
    """``Mul`` / ``Add`` / ``Sub`` / ``Div`` of a feature map by a scalar or per-channel
    constant (by ONNX broadcasting: it varies along axis 1 alone): a Scale.  An ``Add``
    (or ``Sub``) right after a Mul- or Div-made Scale that is its only user becomes that
    Scale's bias (Caffe2's Mul-Add pairs; cnnir's own export of a scale with a bias).

    Learned or fixed (:meth:`NodeContext.fixed`): a constant computed from initializers
    is model data, counted as parameters; one made of ``Constant`` nodes alone (what
    ``torch.onnx.export`` writes for a number in the code, ``x * 0.17``) is a ``fixed``
    Scale, counted as buffers, and ``+ 0`` / ``* 1`` by such a constant is no layer."""
    i = 0 if not isinstance(ins[0], np.ndarray) else 1
    if isinstance(ins[i], np.ndarray):
        raise cv.err(node, f"{node.op_type} of two constants was not folded")
    x = cv.ir(node, ins, i)
    shape = cv.shape(x)
    cv.check_exact(node, 1 - i, "the constant")
    const = np.asarray(ins[1 - i], np.float64)
    vec = _bias_vector(const, shape)
    if vec is None:
        raise cv.err(node, f"{node.op_type} of a constant ('{node.input[1 - i]}', shape "
                     f"{list(const.shape)}) and an N x {shape} tensor; cnnir maps a constant "
                     f"that varies along the channel axis alone (by ONNX broadcasting: "
                     f"[C, 1, 1], [1, C, 1, 1] or a single value) as a scale layer")
    per_channel = vec.size > 1
    arr_shape = ((shape[0], 1, 1) if shape.is_map else (shape[0],)) if per_channel else (1,)
    vec = vec.astype(np.float64).reshape(arr_shape)
    op_type = node.op_type
    if op_type == "Div" and i == 1:
        raise cv.err(node, f"divides the constant '{node.input[0]}' by a feature map (c / x); "
                     f"cnnir's scale layer divides a feature map by a constant only")
    fixed = cv.fixed(node, 1 - i)
    neutral = 1.0 if op_type in ("Mul", "Div") else 0.0
    if fixed and not (op_type == "Sub" and i == 1) and np.all(vec == neutral):
        return x  # ``x + 0`` (MobileOne's ``out += identity_out`` with no identity), ``x * 1``
    if op_type == "Mul":
        return cv.add(node, O.Scale(per_channel, fixed=fixed), [x], "scale", {"weight": vec})
    if op_type == "Div":
        return cv.add(node, O.Scale(per_channel, divide=True, fixed=fixed), [x], "scale",
                      {"weight": vec})
    bias = -vec if op_type == "Sub" and i == 0 else vec
    if op_type == "Sub" and i == 1:  # c - x = (-1) * x + c, exact in float32
        if fixed:
            return cv.add(node, O.Scale(per_channel, bias=True, fixed=True), [x], "scale",
                          {"weight": -np.ones(arr_shape), "bias": bias})
        # a learned c: the -1 is no parameter, so it is a fixed Scale of its own
        neg = cv.add(node, O.Scale(False, fixed=True), [x], "neg", {"weight": -np.ones((1,))})
        return cv.add(node, O.Scale(per_channel, scale=False, bias=True), [neg], "scale",
                      {"bias": bias})
    p = cv.imp.nodes[x]
    if (isinstance(p.op, O.Scale) and p.op.scale and not p.op.bias and p.op.fixed == fixed
            and p.op.per_channel == per_channel and _sole_user(cv, node, i, x)):
        p.op = O.Scale(per_channel, bias=True, divide=p.op.divide, fixed=fixed)
        p.weights = {**(p.weights or {}), "bias": bias.astype(np.float32)}
        return x
    return cv.add(node, O.Scale(per_channel, scale=False, bias=True, fixed=fixed), [x],
                  "scale", {"bias": bias})


@rule("Sum", produces=[O.Identity, O.Add, O.Sum], handles=("data_0",),
      refuses={"data_0": "a constant operand"})
def _sum(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """One input: the identity; two: an Add; more: one n-input Sum (broadcasting)."""
    xs = [cv.ir(node, ins, i) for i in range(len(ins))]
    if len(xs) == 1:
        return cv.add(node, O.Identity(), xs, "identity")
    return cv.add(node, O.Add() if len(xs) == 2 else O.Sum(), xs,
                  "add" if len(xs) == 2 else "sum")


@rule("Mean", produces=[O.Identity, O.Mean], handles=("data_0",),
      refuses={"data_0": "a constant operand"})
def _mean_n(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """One input: the identity; more: one n-input Mean (broadcasting)."""
    xs = [cv.ir(node, ins, i) for i in range(len(ins))]
    if len(xs) == 1:
        return cv.add(node, O.Identity(), xs, "identity")
    return cv.add(node, O.Mean(), xs, "mean")


def _fold_bias(cv: NodeContext, node: Any, ins: list[Value]) -> int:
    """``Add(layer, constant)``: the bias of the Conv / Linear (Gemm, MatMul) right before it."""
    i = 0 if not isinstance(ins[0], np.ndarray) else 1
    src = cv.ir(node, ins, i)
    const = np.asarray(ins[1 - i])
    p = cv.imp.nodes[src]
    c = p.shape[0]
    bias = _bias_vector(const, p.shape)
    if not isinstance(p.op, (O.Linear, O.Conv2d)) or bias is None or not _sole_user(
            cv, node, i, src):
        raise cv.err(node, f"adds a constant ('{node.input[1 - i]}', shape {list(const.shape)}) "
                     f"to an N x {p.shape} tensor; cnnir folds a constant Add only as the "
                     f"per-channel bias of the Conv / MatMul / Gemm right before it (a constant "
                     f"that varies along the channel axis alone, by ONNX broadcasting)")
    old = p.weights.get("bias") if p.weights else None
    bias = np.broadcast_to(bias, (c,)).astype(np.float32)
    p.weights = dict(p.weights or {})
    p.weights["bias"] = bias if old is None else (old + bias).astype(np.float32)
    if isinstance(p.op, O.Linear):
        p.op = O.Linear(p.op.out_features, True)
    else:
        p.op = O.Conv2d(p.op.out_channels, p.op.kernel, p.op.stride, p.op.padding,
                        p.op.dilation, p.op.groups, True)
    return src


def _bias_vector(const: np.ndarray, shape: TensorShape) -> np.ndarray | None:
    """The per-channel values of a constant added to an ``N x shape`` tensor, or None.

    By ONNX (numpy) broadcasting the constant's axes align with the tensor's trailing
    axes; it is a bias when it keeps the tensor's rank and shape and varies along the
    channel / feature axis (axis 1) alone: ``[C]`` or ``[1, C]`` after a Gemm,
    ``[C, 1, 1]`` or ``[1, C, 1, 1]`` after a Conv, a single value after either.
    """
    rank = len(shape) + 1
    if const.ndim > rank:
        return None
    dims = [1] * (rank - const.ndim) + list(const.shape)
    if dims[0] != 1 or any(d != 1 for d in dims[2:]) or dims[1] not in (1, shape[0]):
        return None
    return const.reshape(-1).astype(np.float32)


@rule("Concat", produces=[O.Concat, O.Identity], handles=("inputs", "axis"),
      refuses={"axis": "other than 1 (channels)", "inputs": "constant"})
def _concat(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if ins and all(type(v) is _Unsqueezed for v in ins):
        return _stack_groups(cv, node, ins, a)
    xs = [cv.ir(node, ins, i) for i in range(len(ins))]
    rank = len(cv.shape(xs[0])) + 1
    if int(a.get("axis", 1)) % rank != 1:
        raise cv.err(node, f"concatenates along axis {a.get('axis')}; cnnir concatenates "
                     f"channels (axis 1) only")
    if len(xs) == 1:
        return cv.add(node, O.Identity(), xs, "identity")
    return cv.add(node, O.Concat(), xs, "concat")


def _unpad(v: int | Padded) -> tuple[int, Pads]:
    """A pending Pad's input and pads (a -inf Pad is read by MaxPools alone, a zero Pad
    by Convs and AveragePools alone: :func:`_pad` checked the readers)."""
    return (v.src, v.pads) if isinstance(v, Padded) else (v, (0, 0, 0, 0))


def _add_pads(a: Pads, b: Pads) -> Pads:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _pool_common(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any], allow_pad: bool
                 ) -> tuple[int, Pair, Pair, Pads, bool]:
    xv, extra = _unpad(cv.ir_or_pad(node, ins, 0) if allow_pad else cv.ir(node, ins, 0))
    s = _map_input(cv, node, xv)
    kernel = _spatial(cv, node, a, "kernel_shape", 1)
    stride = _spatial(cv, node, a, "strides", 1)
    if _spatial(cv, node, a, "dilations", 1) != (1, 1):
        raise cv.err(node, "dilated pooling has no IR op")
    pads = _add_pads(_pads(cv, node, a, s, kernel, stride, (1, 1)), extra)
    return xv, kernel, stride, pads, bool(a.get("ceil_mode", 0))


def _as_ceil(shape: TensorShape, k: Pair, s: Pair, p: Pads, ceil: bool) -> tuple[Pads, bool]:
    """Extra end padding (how ``ceil_mode`` is often exported) back as ``ceil_mode``.

    Padding ``(t, l, b, r)`` with ``b > t`` or ``r > l`` gives the same windows as
    padding ``(t, l, t, l)`` with ``ceil_mode`` when both give the same output size:
    the extra windows only reach into padding, which a max pool (and an average
    that excludes padding) ignores.  Keeps pool padding within half the kernel.
    """
    if ceil or (p[2] <= p[0] and p[3] <= p[1]):
        return p, ceil
    sym: Pads = (p[0], p[1], p[0], p[1])
    try:
        same = (O.MaxPool2d(k, s, sym, True).infer([shape])
                == O.MaxPool2d(k, s, (0, 0, 0, 0), False).infer(
                    [TensorShape((shape[0], shape[1] + p[0] + p[2], shape[2] + p[1] + p[3]))]))
    except CnnirError:
        return p, ceil
    return (sym, True) if same else (p, ceil)


_POOL = ("X", "auto_pad", "ceil_mode", "kernel_shape", "pads", "strides", "dilations")


@rule("MaxPool", produces=[O.MaxPool2d], handles=(*_POOL, "storage_order"),
      refuses={"dilations": "other than 1", "storage_order": "=1"})
def _maxpool(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=True)
    if a.get("storage_order", 0):
        raise cv.err(node, "storage_order=1 is not supported")
    p, ceil = _as_ceil(cv.shape(x), k, s, p, ceil)
    return cv.add(node, O.MaxPool2d(k, s, p, ceil), [x], "maxpool")


@rule("AveragePool", produces=[O.AvgPool2d], handles=(*_POOL, "count_include_pad"),
      refuses={"dilations": "other than 1"})
def _avgpool(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    padded = ins[0] if isinstance(ins[0], Padded) else None
    if padded is not None and not a.get("count_include_pad", 0):
        return _padded_avgpool(cv, node, padded, a)
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=True)
    include = bool(a.get("count_include_pad", 0)) or not any(p)
    if not include:
        p, ceil = _as_ceil(cv.shape(x), k, s, p, ceil)
        include = not any(p)
    return cv.add(node, O.AvgPool2d(k, s, p, ceil, include), [x], "avgpool")


def _padded_avgpool(cv: NodeContext, node: Any, padded: Padded, a: dict[str, Any]) -> int:
    """Zero ``Pad`` p, then ``AveragePool(count_include_pad=0)`` with extra end pads only.

    The padded zeros are data to the pool (counted) and the extra end pads are not:
    PyTorch's ``avg_pool2d(padding=p, ceil_mode=True, count_include_pad=True)``, which
    divides a window that overhangs the end by its cells inside the padded input
    (how cnnir's ONNX backend writes it).  Without end pads it is the same pool
    without ``ceil_mode``.  Taken when the output sizes agree; else an error.
    """
    x = padded.src
    shape = _map_input(cv, node, x)
    k = _spatial(cv, node, a, "kernel_shape", 1)
    st = _spatial(cv, node, a, "strides", 1)
    if _spatial(cv, node, a, "dilations", 1) != (1, 1):
        raise cv.err(node, "dilated pooling has no IR op")
    e = padded.pads
    grown = TensorShape((shape[0], shape[1] + e[0] + e[2], shape[2] + e[1] + e[3]))
    own = _pads(cv, node, a, grown, k, st, (1, 1))
    target = O.AvgPool2d(k, st, (0, 0, 0, 0), bool(a.get("ceil_mode", 0))).infer([TensorShape(
        (grown[0], grown[1] + own[0] + own[2], grown[2] + own[1] + own[3]))])
    for ceil in (False, True):
        if own[0] or own[1] or (not ceil and (own[2] or own[3])):
            continue
        try:
            op = O.AvgPool2d(k, st, e, ceil, True)
            if op.infer([shape]) == target:
                return cv.add(node, op, [x], "avgpool")
        except CnnirError:
            continue
    raise cv.err(node, f"averages the output of Pad '{padded.node}' without counting its own "
                 f"padding {list(own)}; no IR average pool computes that")


@rule("GlobalAveragePool", produces=[O.GlobalAvgPool], handles=("X",))
def _gap(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    return cv.add(node, O.GlobalAvgPool(), [x], "gap")


@rule("ReduceMean", produces=[O.GlobalAvgPool, O.Flatten, O.LayerNorm2d],
      handles=("data", "axes", "keepdims", "noop_with_empty_axes"),
      refuses={"axes": "other than [2, 3] (H and W)"})
def _reduce_mean(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    got = _claimed(cv, node, ins)  # the variance of a LayerNorm decomposition
    if got is not None:
        return got
    if isinstance(ins[0], ChannelsLast):
        return _start(cv, node, ins, (LAYER_NORM,), "cnnir maps ReduceMean of a channels-last "
                      "view only as the mean of a LayerNorm decomposition over the channels")
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = ints(cv.const(node, ins, 1, "axes"))
    if axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
        shown = "all" if axes is None else ints(axes)
        raise cv.err(node, f"averages over axes {shown}; cnnir maps a mean over H and W "
                     f"(axes 2, 3) only, as a global average pool")
    g = cv.add(node, O.GlobalAvgPool(), [x], "gap")
    if a.get("keepdims", 1):
        return g
    return cv.add(node, O.Flatten(), [g], "flatten")


@rule("Flatten", produces=[O.Flatten], handles=("input", "axis"),
      refuses={"axis": "other than 1"})
def _flatten(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    if int(a.get("axis", 1)) % (len(cv.shape(x)) + 1) != 1:
        raise cv.err(node, f"flattens from axis {a.get('axis')}; cnnir's flatten keeps the batch "
                     f"axis (axis=1) only")
    return cv.add(node, O.Flatten(), [x], "flatten")


@rule("Reshape", produces=[O.Flatten, O.Identity, O.ChannelShuffle, O.SpaceToDepth],
      handles=("data", "shape", "allowzero"),
      refuses={"shape": "other than a flatten [N, -1], the same shape, channel shuffle's "
                        "[N, g, C/g, H, W] and back, the radix views of split attention, "
                        "ECA's [N, 1, C] and back, space-to-depth's 6-D view and back",
               "allowzero": "=1 with a 0 in the shape"})
def _reshape(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    target = ints(cv.const(node, ins, 1, "the target shape"))
    if a.get("allowzero", 0) and 0 in target:
        raise cv.err(node, f"allowzero=1 with a 0 in the shape {target} makes an empty tensor")
    batch_ok = {0, BATCH} | ({cv.file_batch} if cv.file_batch else set())
    if isinstance(ins[0], _Shuffled) and len(target) == 5:
        # an optimiser merged one shuffle's Reshape back with the next one's to 5-D
        x = _unshuffle(cv, node, ins[0], [0, *cv.shape(ins[0].src)], batch_ok)
        return _grouped(cv, node, x, cv.shape(x), target, batch_ok)
    if isinstance(ins[0], _Shuffled):
        return _unshuffle(cv, node, ins[0], target, batch_ok)
    if type(ins[0]) in (_Seq, _RadixOut, _BlocksT):
        return _reshape_pending(cv, node, ins[0], target, batch_ok)
    x = cv.ir(node, ins)
    s = cv.shape(x)
    if len(target) == 5 and len(s) == 3:
        return _grouped(cv, node, x, s, target, batch_ok)
    n = s.numel
    readable = [("N" if v == BATCH else v) for v in target]
    if len(target) == 2 and ((target[0] in batch_ok and target[1] in (-1, n))
                             or (target[0] == -1 and target[1] == n)):
        if len(s) == 1:
            return cv.add(node, O.Identity(), [x], "identity")
        return cv.add(node, O.Flatten(), [x], "flatten")
    if len(target) == len(s) + 1 and target[0] in batch_ok | {-1} and \
            [d if v == 0 else v for v, d in zip(target[1:], s)] == list(s):
        return cv.add(node, O.Identity(), [x], "identity")
    special = _reshape_special(cv, node, x, s, target, batch_ok)
    if special is not None:
        return special
    raise cv.err(node, f"reshapes N x {s} to {readable}; cnnir maps a Reshape only as a "
                 f"flatten to [N, {n}]")


@rule("Squeeze", produces=[O.Flatten], handles=("data", "axes"),
      refuses={"axes": "other than [2, 3] of an N x C x 1 x 1 map"})
def _squeeze(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = cv.shape(x)
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = ints(cv.const(node, ins, 1, "axes"))
    axes = None if axes is None else ints(axes)
    if len(s) == 3 and s[1] == s[2] == 1 and (axes is None and s[0] != 1 or axes is not None
                                               and sorted(v % 4 for v in axes) == [2, 3]):
        return cv.add(node, O.Flatten(), [x], "flatten")
    raise cv.err(node, f"squeezes axes {axes} of N x {s}; cnnir maps a Squeeze only as the "
                 f"flatten of an N x C x 1 x 1 map")


@rule("Gemm", produces=[O.Linear], handles=("A", "B", "C", "alpha", "beta", "transA", "transB"),
      refuses={"transA": "=1", "B": "computed by the graph",
               "C": "that is no per-output bias ([N] / [1, N] / one value)"})
def _gemm(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x, rank=1)
    if a.get("transA", 0):
        raise cv.err(node, "transA=1 has no IR op")
    w = cv.const(node, ins, 1, "the weight (B)")
    if w.ndim != 2:
        raise cv.err(node, f"weight of shape {list(w.shape)} is not a matrix")
    w = w if a.get("transB", 0) else w.T
    if w.shape[1] != s[0]:
        raise cv.err(node, f"weight {list(w.shape)} (out, in) does not fit {s[0]} input features")
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    weights = {"weight": w * alpha if alpha != 1.0 else w}
    c = cv.opt_const(node, ins, 2, "the bias (C)")
    if c is not None:
        per_out = _bias_vector(c, TensorShape((int(w.shape[0]),)))
        if per_out is None:
            raise cv.err(node, f"C of shape {list(c.shape)} is no per-output bias of the M x "
                         f"{w.shape[0]} product (one value per output: [{w.shape[0]}] or "
                         f"[1, {w.shape[0]}]); cnnir's linear has no other addend")
        weights["bias"] = np.broadcast_to(per_out * beta, (w.shape[0],)).copy()
    name = node.input[1] if a.get("transB", 0) else None
    return cv.add(node, O.Linear(int(w.shape[0]), c is not None), [x], "fc", weights, name)


def _is_bins(m: Any, size: int) -> int | None:
    """The output size if ``m`` (``out x size``) is the bin matrix of ``size``, else None."""
    if not isinstance(m, np.ndarray) or m.ndim != 2 or m.shape[1] != size:
        return None
    out = m.shape[0]
    return out if np.allclose(m, bin_matrix(size, out), atol=1e-6) else None


@rule("MatMul", produces=[O.Linear, O.AdaptiveAvgPool2d, O.Conv2d], handles=("A", "B"),
      refuses={"B": "computed by the graph, or a matrix on a feature map that is no "
                    "adaptive-pool bin matrix"})
def _matmul(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if isinstance(ins[0], ChannelsLast):  # a Linear on the channels of a map
        return _channels_last_matmul(cv, node, ins)
    if isinstance(ins[1], RowPooled):  # A_h @ (x @ A_w^T): an adaptive average pool
        half = ins[1]
        s = cv.shape(half.src)
        oh = _is_bins(ins[0], s[1])
        if oh is None:
            raise cv.err(node, "multiplies a feature map by a matrix that is no adaptive-pool "
                         "bin matrix; cnnir has no op for it")
        return cv.add(node, O.AdaptiveAvgPool2d((oh, half.out_w)), [half.src], "adaptpool")
    if isinstance(ins[0], (int, np.integer)) and len(cv.shape(int(ins[0]))) == 3:
        s = cv.shape(int(ins[0]))
        w = ins[1]
        ow = _is_bins(w.T, s[2]) if isinstance(w, np.ndarray) and w.ndim == 2 else None
        if ow is None:
            raise cv.err(node, "multiplies a feature map by a matrix; cnnir maps MatMul as a "
                         "Linear layer on a flat input (or an adaptive pool)")
        if not cv.only_user(node):
            raise cv.err(node, "half an adaptive pool whose result is used elsewhere")
        return RowPooled(int(ins[0]), ow, node.name or node.output[0])
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x, rank=1)
    w = cv.const(node, ins, 1, "the weight")
    if w.ndim != 2 or w.shape[0] != s[0]:
        raise cv.err(node, f"weight of shape {list(w.shape)} does not fit {s[0]} input features")
    return cv.add(node, O.Linear(int(w.shape[1]), False), [x], "fc", {"weight": w.T})


@rule("Identity", produces=[O.Identity], handles=("input",))
def _identity(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    return cv.add(node, O.Identity(), [cv.ir(node, ins)], "identity")


@rule("Dropout", produces=[O.Dropout],
      handles=("data", "ratio", "training_mode", "seed"),
      refuses={"training_mode": "true or computed by the graph (random)",
               "ratio": "computed by the graph"})
def _dropout(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """Inference dropout (the identity); ``seed`` only matters in training mode."""
    x = cv.ir(node, ins)
    p = a.get("ratio", 0.5)
    if cv.opset >= 12 and len(ins) > 1 and node.input[1]:
        p = float(np.asarray(cv.const(node, ins, 1, "ratio")).reshape(-1)[0])
    if cv.opset >= 12 and len(ins) > 2 and node.input[2]:
        train = cv.const(node, ins, 2, "training_mode")
        if bool(np.asarray(train).reshape(-1)[0]):
            raise cv.err(node, "training_mode is true: the dropout zeroes random elements; "
                         "cnnir imports inference models (dropout is the identity)")
    return cv.add(node, O.Dropout(f32(p)), [x], "dropout")


@rule("LRN", produces=[O.LocalResponseNorm], handles=("X", "alpha", "beta", "bias", "size"),
      refuses={"size": "even (ONNX's window is the mirror of PyTorch's)"})
def _lrn(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """Odd ``size`` only: ONNX sums channels ``c - floor((size-1)/2) .. c + ceil((size-1)/2)``,
    cnnir's lrn (PyTorch's) ``c - size//2 .. c + (size-1)//2``; they agree for odd sizes."""
    x = cv.ir(node, ins)
    size = int(a["size"])
    if size % 2 == 0:
        lo, hi = (size - 1) // 2, size // 2
        raise cv.err(node, f"size={size}: ONNX sums the squares of channels c-{lo}..c+{hi}, "
                     f"cnnir's lrn (PyTorch's) channels c-{hi}..c+{lo}; no IR op sums "
                     f"ONNX's window of an even size")
    op = O.LocalResponseNorm(size, f32(a.get("alpha", 1e-4)), f32(a.get("beta", 0.75)),
                             f32(a.get("bias", 1.0)))
    return cv.add(node, op, [x], "lrn")


_RESIZE = ("X", "roi", "scales", "sizes", "mode", "coordinate_transformation_mode",
           "nearest_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value",
           "antialias", "axes", "keep_aspect_ratio_policy")


@rule("Upsample", produces=[O.Upsample], handles=("X", "scales", "mode"),
      refuses={"scales": "other than integers >= 1 on H and W (1 on N and C)",
               "mode": "other than nearest (linear is asymmetric, not PyTorch's)"})
@rule("Resize", produces=[O.Upsample], handles=_RESIZE,
      refuses={"scales": "other than integers >= 1 on H and W (1 on N and C)",
               "sizes": "that resize N or C",
               "mode": "cubic", "coordinate_transformation_mode": "that picks other pixels "
               "than PyTorch (asymmetric linear, tf_crop_and_resize, ...)",
               "exclude_outside": "=1 with linear mode"})
def _resize(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """Integer upsampling of H and W, nearest or bilinear, as PyTorch computes it.

    ``roi`` and ``extrapolation_value`` only act with ``tf_crop_and_resize``, ``cubic_coeff_a``
    with ``cubic`` and ``antialias`` when downscaling, all refused or impossible here.
    """
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x)
    scale, size = _resize_factors(cv, node, ins, a, s)
    if a.get("exclude_outside", 0) and a.get("mode", "nearest") != "nearest":
        raise cv.err(node, "exclude_outside=1 reweights the edge samples of a linear resize; "
                     "PyTorch's bilinear upsampling does not")
    mode = a.get("mode", "nearest")
    coord = a.get("coordinate_transformation_mode", "half_pixel" if cv.opset >= 11 else
                  "asymmetric")
    if node.op_type == "Upsample" or cv.opset < 11:
        coord = "asymmetric"
    # for an integer scale the symmetric variant's centre offset is 0: it is half_pixel
    half = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric")
    if size is not None:
        return _resize_to(cv, node, x, size, mode, coord, a)
    if mode == "nearest":
        near = a.get("nearest_mode", "round_prefer_floor")
        # for integer scales these coordinate rules pick PyTorch's nearest source pixel
        if (coord, near) == ("asymmetric", "floor") or node.op_type == "Upsample" or \
                cv.opset < 11 or (coord in half and
                                  near in ("round_prefer_floor", "round_prefer_ceil")):
            return cv.add(node, O.Upsample(scale, "nearest"), [x], "upsample")
        raise cv.err(node, f"nearest resize with coordinate_transformation_mode={coord!r}, "
                     f"nearest_mode={near!r} picks other pixels than PyTorch's nearest")
    if mode in ("linear", "bilinear"):
        if coord in half:
            return cv.add(node, O.Upsample(scale, "bilinear", False), [x], "upsample")
        if coord == "align_corners":
            return cv.add(node, O.Upsample(scale, "bilinear", True), [x], "upsample")
        raise cv.err(node, f"linear resize with coordinate_transformation_mode={coord!r} has "
                     f"no IR op")
    raise cv.err(node, f"resize mode {mode!r} has no IR op (nearest or bilinear)")


def _resize_to(cv: NodeContext, node: Any, x: int, size: Pair, mode: str, coord: str,
               a: dict[str, Any]) -> int:
    """A Resize to ``sizes`` that are no integer multiples: ``Upsample(size=...)`` where
    the file's pixels are PyTorch's for that size (``F.interpolate(x, size=...)``)."""
    if mode == "nearest":
        near = a.get("nearest_mode", "round_prefer_floor")
        if (coord, near) == ("asymmetric", "floor"):
            return cv.add(node, O.Upsample((1, 1), "nearest", size=size), [x], "upsample")
        raise cv.err(node, f"nearest resize to {size[0]}x{size[1]} with coordinate_"
                     f"transformation_mode={coord!r}, nearest_mode={near!r} picks other pixels "
                     f"than PyTorch's nearest (asymmetric, floor)")
    if mode in ("linear", "bilinear"):
        # half_pixel is pytorch_half_pixel unless an output side is 1
        if coord == "pytorch_half_pixel" or (coord == "half_pixel" and min(size) > 1):
            return cv.add(node, O.Upsample((1, 1), "bilinear", False, size=size), [x],
                          "upsample")
        if coord == "align_corners":
            return cv.add(node, O.Upsample((1, 1), "bilinear", True, size=size), [x],
                          "upsample")
        raise cv.err(node, f"linear resize to {size[0]}x{size[1]} with coordinate_"
                     f"transformation_mode={coord!r} has no IR op")
    raise cv.err(node, f"resize mode {mode!r} has no IR op (nearest or bilinear)")


def _resize_factors(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any],
                    s: TensorShape) -> tuple[Pair, Pair | None]:
    """The integer H and W factors of a Resize / Upsample, by ``scales`` or ``sizes``, and
    the output size where ``sizes`` are no integer multiples (factors ``(1, 1)`` then).

    ``axes`` (opset 18) lists the axes ``scales`` / ``sizes`` give, the others keep their
    size; ``keep_aspect_ratio_policy`` ``not_larger`` / ``not_smaller`` turns ``sizes`` into
    one scale for all those axes (the smallest / largest ratio), as the spec says.
    """
    sizes: list[int] | None = None
    if node.op_type == "Upsample" and "scales" in a:
        given: list[float] = [float(v) for v in a["scales"]]
    elif node.op_type == "Upsample" or cv.opset < 11:
        given = [float(v) for v in np.atleast_1d(cv.const(node, ins, 1, "scales"))]
    else:
        sc = cv.opt_const(node, ins, 2, "scales")
        if sc is not None and sc.size:
            given = [float(v) for v in np.atleast_1d(sc)]
        else:
            sizes = ints(cv.const(node, ins, 3, "sizes"))
            given = [float(v) for v in sizes]
    axes = ints(a["axes"]) if cv.opset >= 18 and "axes" in a else list(range(4))
    if len(given) != len(axes) or len({v % 4 for v in axes}) != len(axes) or any(
            not -4 <= v < 4 for v in axes):
        raise cv.err(node, f"{'sizes' if sizes is not None else 'scales'} {nums(given)} for "
                     f"axes {axes}: cnnir resizes NCHW maps only")
    axes = [v % 4 for v in axes]
    in_size = [0, *s]  # the batch never changes size: its ratio is checked apart
    factors = [1.0, 1.0, 1.0, 1.0]
    if sizes is None:
        for ax, v in zip(axes, given):
            factors[ax] = v
    else:
        batch = {BATCH} | ({cv.file_batch} if cv.file_batch else set())
        if 0 in axes and sizes[axes.index(0)] not in batch:
            raise cv.err(node, f"sizes {nums([('N' if v == BATCH else v) for v in sizes])} "
                         f"resize the batch axis; cnnir resizes H and W only")
        ratios = {ax: (1.0 if ax == 0 else v / in_size[ax]) for ax, v in zip(axes, sizes)}
        policy = a.get("keep_aspect_ratio_policy", "stretch") if cv.opset >= 18 else "stretch"
        if policy in ("not_larger", "not_smaller"):
            one = (min if policy == "not_larger" else max)(ratios.values())
            if one != math.floor(one):
                raise cv.err(node, f"keep_aspect_ratio_policy={policy!r} gives the scale "
                             f"{one:g} for sizes {nums(sizes)}; cnnir upsamples by integer "
                             f"factors only")
            ratios = {ax: one for ax in axes}
            if 0 in axes and one != 1:
                raise cv.err(node, f"keep_aspect_ratio_policy={policy!r} scales the batch "
                             f"axis by {one:g}; cnnir resizes H and W only")
        elif policy != "stretch":
            raise cv.err(node, f"unknown keep_aspect_ratio_policy {policy!r}")
        for ax, r in ratios.items():
            factors[ax] = r
    if sizes is not None and factors[0] == 1 and factors[1] == 1 and any(
            v != math.floor(v) or v < 1 for v in factors[2:]):
        out = [in_size[ax] for ax in range(4)]
        for ax, v in zip(axes, sizes):
            out[ax] = v
        if policy == "stretch":
            return (1, 1), (int(out[2]), int(out[3]))
    if factors[0] != 1 or factors[1] != 1 or any(v < 1 or v != math.floor(v)
                                                 for v in factors[2:]):
        what = (f"sizes {nums(sizes)} of an N x {s} map" if sizes is not None else
                f"scales {nums(given)}")
        raise cv.err(node, f"{what}{f' (axes {axes})' if len(axes) != 4 else ''}: cnnir "
                     f"upsamples H and W by integer factors only")
    return (int(factors[2]), int(factors[3])), None


@rule("Pad", produces=[O.Pad],
      handles=("data", "pads", "constant_value", "axes", "mode", "value"),
      refuses={"mode": "edge or wrap", "pads": "on N"})
def _pad(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Padded | int:
    """A zero Pad of H and W read only by Convs (or AveragePools) waits to fold into their
    padding (:class:`Padded`); any other constant Pad is a :class:`~cnnir.ops.Pad` layer."""
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    mode = a.get("mode", "constant")
    if cv.opset < 11:
        pads = [int(v) for v in a.get("pads", [])]
        value = float(a.get("value", 0.0))
    else:
        pads = [int(v) for v in np.atleast_1d(cv.const(node, ins, 1, "pads"))]
        cval = cv.opt_const(node, ins, 2, "constant_value")
        value = 0.0 if cval is None or cval.size == 0 else float(cval.reshape(-1)[0])
        if len(ins) > 3 and node.input[3]:
            axes = [int(v) % 4 for v in cv.const(node, ins, 3, "axes")]
            full = [0] * 8
            for k, ax in enumerate(axes):
                full[ax], full[4 + ax] = pads[k], pads[len(axes) + k]
            pads = full
    if mode not in ("constant", "reflect"):
        raise cv.err(node, f"{mode} padding has no IR op; cnnir maps constant and reflect "
                     f"padding only")
    if len(pads) != 8 or pads[0] or pads[4]:
        raise cv.err(node, f"pads {pads}: cnnir pads C, H and W of an NCHW map only")
    if min(pads) < 0:  # a negative pad crops (NASNet's pad-pool-crop): a Slice first
        shape = cv.shape(x)
        ranges = []
        for ax in range(1, 4):
            lo, hi = max(0, -pads[ax]), shape[ax - 1] - max(0, -pads[4 + ax])
            if lo >= hi:
                raise cv.err(node, f"pads {pads} crop axis {ax} of an N x {shape} map to "
                             f"nothing")
            ranges.append((lo, hi) if (lo, hi) != (0, shape[ax - 1]) else None)
        x = cv.add(node, O.Slice(*ranges), [x], "crop")
        pads = [max(0, v) for v in pads]
        if not any(pads):
            return x
    spatial = (pads[2], pads[3], pads[6], pads[7])
    if mode == "reflect":
        if pads[1] or pads[5]:
            raise cv.err(node, f"pads {pads}: a reflect pad of the channels has no IR op; "
                         f"cnnir mirrors H and W only")
        return cv.add(node, O.Pad(spatial, mode="reflect"), [x], "pad")
    readers = cv.consumers.get(node.output[0], [])
    only = (not pads[1] and not pads[5] and readers and node.output[0] not in cv.graph_outputs)
    if only and value == 0.0 and all(r.op_type in ("Conv", "AveragePool") for r in readers):
        return Padded(x, spatial, node.name or node.output[0])
    if only and value == float("-inf") and all(r.op_type == "MaxPool" for r in readers):
        # TF "same" max pooling (timm's MaxPool2dSame): the pool's own padding
        return Padded(x, spatial, node.name or node.output[0], value)
    return cv.add(node, O.Pad(spatial, (pads[1], pads[5]), f32(value)), [x], "pad")


# --------------------------------------------------------------------------- slice, split


#: an ``ends`` this large means "to the end of the axis" (exporters write INT64_MAX)
_TO_END = 2 ** 31 - 1


def _bounds(cv: NodeContext, node: Any, size: int, start: int, end: int, axis: int
            ) -> tuple[int, int]:
    """ONNX's clamped ``[start, end)`` of an axis of ``size`` (negative from the end)."""
    start = start + size if start < 0 else start
    end = size if end >= _TO_END else (end + size if end < 0 else end)
    start, end = min(max(start, 0), size), min(max(end, 0), size)
    if start >= end:
        raise cv.err(node, f"slices axis {axis} to [{start}, {end}): an empty tensor")
    return start, end


@rule("Slice", produces=[O.Slice, O.Identity],
      handles=("data", "starts", "ends", "axes", "steps"),
      refuses={"steps": "other than 1", "axes": "the batch axis 0 (unless whole)",
               "starts": "computed by the graph", "ends": "computed by the graph"})
def _slice(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """A constant range of the C, H, W axes (opset 7-9 attributes, 10+ inputs)."""
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x)
    if cv.opset < 10:
        starts, ends = ints(a["starts"]), ints(a["ends"])
        axes = ints(a["axes"]) if "axes" in a else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts = ints(cv.const(node, ins, 1, "starts"))
        ends = ints(cv.const(node, ins, 2, "ends"))
        ax = cv.opt_const(node, ins, 3, "axes")
        st = cv.opt_const(node, ins, 4, "steps")
        axes = list(range(len(starts))) if ax is None else ints(ax)
        steps = [1] * len(starts) if st is None else ints(st)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise cv.err(node, f"starts {starts}, ends {ends}, axes {axes}, steps {steps} differ "
                     f"in length")
    ranges: list[tuple[int, int] | None] = [None, None, None]
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis % 4 if -4 <= axis < 4 else axis
        if axis not in (0, 1, 2, 3):
            raise cv.err(node, f"axis {axis} of an N x {s} map")
        if step != 1:
            raise cv.err(node, f"step {step} on axis {axis}; cnnir's slice takes a contiguous "
                         f"range (step 1) only")
        if axis == 0:
            if start in (0, -_TO_END) or start < -_TO_END:
                if end >= _TO_END:
                    continue  # the whole batch
            raise cv.err(node, f"slices the batch axis [{start}, {end}); cnnir's slice "
                         f"takes channels, height and width")
        r = _bounds(cv, node, s[axis - 1], start, end, axis)
        ranges[axis - 1] = None if r == (0, s[axis - 1]) else r
    if ranges == [None, None, None]:
        return cv.add(node, O.Identity(), [x], "identity")
    return cv.add(node, O.Slice(*ranges), [x], "slice")


@rule("Split", produces=[O.Slice], handles=("input", "split", "axis", "num_outputs"),
      refuses={"axis": "other than 1 (channels)", "split": "computed by the graph"})
def _split(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> tuple[Any, ...]:
    """Split of the channels: one slice per output that is used (a tuple of values)."""
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x)
    axis = int(a.get("axis", 0))
    if axis % 4 != 1 or not -4 <= axis < 4:
        raise cv.err(node, f"splits axis {axis}; cnnir splits channels (axis 1) only")
    c, n = s[0], len(node.output)
    if cv.opset < 13:
        sizes = ints(a["split"]) if "split" in a else None
    else:
        given = cv.opt_const(node, ins, 1, "split")
        sizes = ints(given) if given is not None else None
    if sizes is None:
        if "num_outputs" in a and int(a["num_outputs"]) != n:
            raise cv.err(node, f"num_outputs={a['num_outputs']} with {n} outputs")
        part = -(-c // n)
        if "num_outputs" not in a and c % n:
            raise cv.err(node, f"{c} channels do not split into {n} equal parts")
        sizes = [min(part, c - k * part) for k in range(n)]
    if len(sizes) != n or sum(sizes) != c or min(sizes) < 1:
        raise cv.err(node, f"split sizes {sizes} for {n} outputs of {c} channels")
    out: list[Any] = []
    start = 0
    for name, size in zip(node.output, sizes):
        used = bool(name) and (bool(cv.consumers.get(name)) or name in cv.graph_outputs)
        out.append(cv.add(node, O.Slice((start, start + size)), [x], "slice") if used
                   else None)
        start += size
    return tuple(out)


# --------------------------------------------------------------------------- channel shuffle


@dataclass
class _Grouped:
    """``Reshape`` of ``N x C x H x W`` to ``[N, g, C/g, H, W]``: the first step of a
    channel shuffle, waiting for its Transpose."""

    src: int
    groups: int
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the 5-D output of Reshape '{self.node}'; cnnir maps a 5-D Reshape "
                f"only as the start of a channel shuffle (Reshape [N, g, C/g, H, W], "
                f"Transpose [0, 2, 1, 3, 4], Reshape [N, C, H, W])")


@dataclass
class _Shuffled(_Grouped):
    """The Transpose ``[0, 2, 1, 3, 4]`` of a :class:`_Grouped`: waits for the Reshape back."""

    @property
    def refusal(self) -> str:
        return (f"reads the 5-D output of Transpose '{self.node}'; cnnir maps it only when a "
                f"Reshape to [N, C, H, W] completes a channel shuffle")


def _grouped(cv: NodeContext, node: Any, x: int, s: TensorShape, target: list[int],
             batch_ok: set[int]) -> _Grouped:
    c, h, w = s
    dims = list(target[1:])
    if dims.count(-1) == 1 and (dims[0] == -1 or dims[1] == -1):
        known = dims[1] if dims[0] == -1 else dims[0]
        if known > 0 and c % known == 0:
            dims[dims.index(-1)] = c // known
    g, n = dims[0], dims[1]
    if target[0] not in batch_ok | {-1} or dims[2:] != [h, w] or g < 1 or n < 1 or g * n != c:
        readable = [("N" if v == BATCH else v) for v in target]
        raise cv.err(node, f"reshapes N x {s} to {readable}; cnnir maps a 5-D Reshape only "
                     f"as channel shuffle's [N, g, C/g, H, W]")
    return _Grouped(x, g, node.name or node.output[0])


def _unshuffle(cv: NodeContext, node: Any, v: _Shuffled, target: list[int],
               batch_ok: set[int]) -> int:
    s = cv.shape(v.src)
    dims = list(target[1:])
    if dims.count(-1) == 1 and len(dims) == 3:
        dims[dims.index(-1)] = s.numel // max(1, -int(np.prod(dims)))
    if len(target) != 4 or target[0] not in batch_ok | {-1} or dims != list(s):
        readable = [("N" if x == BATCH else x) for x in target]
        raise cv.err(node, f"reshapes the channel-shuffled 5-D tensor of '{v.node}' to "
                     f"{readable}; a channel shuffle of N x {s} reshapes back to [N, "
                     f"{', '.join(map(str, s))}]")
    return cv.add(node, O.ChannelShuffle(v.groups), [v.src], "shuffle")


@rule("Cast", produces=[], handles=("input", "to", "saturate", "round_mode"),
      refuses={"to": "other than float32 (cnnir computes in float32)"})
def _cast(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    from onnx import TensorProto

    if a.get("to") != TensorProto.FLOAT:
        name = TensorProto.DataType.Name(int(a.get("to", 0))).lower()
        raise cv.err(node, f"a Cast of a feature map to {name} has no IR op; cnnir computes "
                     f"(and re-emits) float32 tensors, where only a Cast to float is the "
                     f"identity (saturate and round_mode act on float8 targets only)")
    return cv.ir(node, ins)


__all__ = ["bin_matrix"]


# --------------------------------------------------------------------------- channels last,
# GELU and LayerNorm: ConvNeXt's Transpose / LayerNormalization / MatMul and the
# decompositions exporters write for GELU (before opset 20) and LayerNorm (before 17)


#: GELU's constants (PyTorch's): sqrt(2), sqrt(2 / pi) and the cubic's coefficient
SQRT2 = math.sqrt(2.0)
GELU_BETA = math.sqrt(2.0 / math.pi)
GELU_KAPPA = 0.044715


class ChannelsLast:
    """``Transpose(perm=[0, 2, 3, 1])`` of the ``CxHxW`` map of layer ``id``: pending until
    ``Transpose(perm=[0, 3, 1, 2])`` turns it back.  In between cnnir maps what ConvNeXt
    runs channels-last -- LayerNormalization over the last axis (a ``layernorm2d``),
    MatMul by a constant ``C x K`` matrix plus a bias (a 1x1 ``conv2d``), GELU -- each
    applied to the NCHW map itself."""

    def __init__(self, i: int, node: str) -> None:
        self.id = i
        self.node = node

    def misread(self) -> str:
        return (f"reads the channels-last output of Transpose '{self.node}'; cnnir maps "
                f"LayerNormalization (last axis), MatMul by a constant, an Add of its bias "
                f"and GELU there, until a Transpose(perm=[0, 3, 1, 2]) turns it back")


#: a pattern operand: "x" (the pattern's input), an int (that step's output), a float
#: (a constant of that value), or a string "=name" (any constant, captured as ``name``)
Operand = Any


@dataclass(frozen=True)
class Pattern:
    """A decomposition exporters write for one cnnir op: steps ``(op_type, operands)``
    from the input ``x``; Add and Mul match either operand order."""

    name: str
    steps: tuple[tuple[str, tuple[Operand, ...]], ...]

    def text(self) -> str:
        return " -> ".join(op for op, _ in self.steps)


#: ``x * 0.5 * (1 + erf(x / sqrt(2)))`` as torch.onnx.export writes GELU before opset 20
GELU_ERF = Pattern("GELU (erf form)", (
    ("Div", ("x", SQRT2)), ("Erf", (0,)), ("Add", (1, 1.0)), ("Mul", ("x", 2)),
    ("Mul", (3, 0.5))))
#: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``, PyTorch's (and cnnir's) spelling
GELU_TANH = Pattern("GELU (tanh form)", (
    ("Mul", ("x", "x")), ("Mul", ("x", 0)), ("Mul", (1, GELU_KAPPA)), ("Add", ("x", 2)),
    ("Mul", (3, GELU_BETA)), ("Tanh", (4,)), ("Add", (5, 1.0)), ("Mul", ("x", 6)),
    ("Mul", (7, 0.5))))
#: the same as the dynamo exporter (onnxscript) writes them: ``x * (0.5 * (...))``, the cube
#: as ``Pow(x, 3)``
GELU_ERF_HALF_FIRST = Pattern("GELU (erf form, half first)", (
    ("Div", ("x", SQRT2)), ("Erf", (0,)), ("Add", (1, 1.0)), ("Mul", (2, 0.5)),
    ("Mul", ("x", 3))))
GELU_TANH_POW = Pattern("GELU (tanh form, Pow)", (
    ("Pow", ("x", 3.0)), ("Mul", (0, GELU_KAPPA)), ("Add", ("x", 1)), ("Mul", (2, GELU_BETA)),
    ("Tanh", (3,)), ("Add", (4, 1.0)), ("Mul", (5, 0.5)), ("Mul", ("x", 6))))
#: LayerNorm over the last axis as exporters write it before LayerNormalization (opset 17)
LAYER_NORM = Pattern("LayerNorm", (
    ("ReduceMean", ("x",)), ("Sub", ("x", 0)), ("Pow", (1, 2.0)), ("ReduceMean", (2,)),
    ("Add", (3, "=eps")), ("Sqrt", (4,)), ("Div", (1, 5)), ("Mul", (6, "=weight")),
    ("Add", (7, "=bias"))))


@dataclass
class Claimed:
    """The nodes of a matched :class:`Pattern`: each checks its constants as it comes
    (they may be computed by ``Constant`` nodes later in the file's order) and passes the
    claim on; the last one adds the layer (``finish(cv, node, caps) -> value``)."""

    pat: Pattern
    nodes: list[Any]
    x_name: str
    finish: Any
    caps: dict[str, np.ndarray] = field(default_factory=dict)

    def misread(self) -> str:
        return f"reads a value inside the {self.pat.name} decomposition"


def _close(v: Any, c: float) -> bool:
    a = np.asarray(v, dtype=np.float64)
    return a.size == 1 and abs(float(a.reshape(-1)[0]) - c) <= 1e-6 * max(1.0, abs(c))


def _fits(values: dict[str, Any], node: Any, operands: tuple[Operand, ...], x_name: str,
          nodes: list[Any], final: bool) -> dict[str, np.ndarray] | None:
    """The constants ``node`` captures if its inputs are ``operands`` (either order for
    Add and Mul), else None.  Not ``final``: a constant not computed yet may match."""
    ins = list(node.input)
    if node.op_type == "ReduceMean":  # over the last axis, keeping it
        if not _last_axis_mean(node, values):
            return None
        ins = ins[:1]
    if len(ins) != len(operands):
        return None
    orders = [ins] if len(ins) < 2 or node.op_type not in ("Add", "Mul") else [ins, ins[::-1]]
    steps = {n.output[0] for n in nodes}
    for order in orders:
        got: dict[str, np.ndarray] = {}
        for name, want in zip(order, operands):
            v = values.get(name)
            if want == "x":
                ok = name == x_name
            elif isinstance(want, int):
                ok = want < len(nodes) and name == nodes[want].output[0]
            elif name == x_name or name in steps or not (
                    isinstance(v, np.ndarray) or (v is None and not final)):
                ok = False
            elif v is None:
                ok = True  # checked when the node comes
            elif isinstance(want, float):
                ok = _close(v, want)
            else:
                ok = True
                got[want[1:]] = v
            if not ok:
                break
        else:
            return got
    return None


def _match(cv: NodeContext, first: Any, pat: Pattern, x_name: str) -> list[Any] | str:
    """The nodes ``first, ...`` computing ``pat`` from tensor ``x_name`` (their
    intermediate outputs read by no other node); or why not, naming the node."""
    nodes: list[Any] = []
    values = cv.values
    for k, (op_type, operands) in enumerate(pat.steps):
        if k == 0:
            cands = [first]
        else:
            reads = [nodes[o].output[0] for o in operands if isinstance(o, int)]
            cands = [c for r in reads for c in cv.consumers.get(r, [])
                     if c.op_type == op_type]
        found = next((c for c in cands
                      if _fits(values, c, operands, x_name, nodes, False) is not None), None)
        if found is None:
            prev = nodes[-1] if nodes else first
            return (f"after {prev.op_type} '{prev.name or prev.output[0]}' there is no "
                    f"{op_type} of step {k + 1} of the {pat.name} decomposition "
                    f"{pat.text()}")
        nodes.append(found)
    inside = {id(n) for n in nodes}
    for n in nodes[:-1]:
        out = n.output[0]
        others = [c for c in cv.consumers.get(out, []) if id(c) not in inside]
        if others or out in cv.graph_outputs:
            who = (f"{others[0].op_type} '{others[0].name or others[0].output[0]}'" if others
                   else "a graph output")
            return (f"the {pat.name} decomposition's {n.op_type} '{n.name or out}' is also "
                    f"read by {who}")
    return nodes


def _last_axis_mean(node: Any, values: dict[str, Any]) -> bool:
    """Whether a ReduceMean averages the last axis of a 4-D tensor and keeps it."""
    a = attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        v = values.get(node.input[1])
        axes = ints(v) if isinstance(v, np.ndarray) else None
    return axes is not None and [int(x) % 4 for x in axes] == [3] and \
        int(a.get("keepdims", 1)) == 1


def _claim(cv: NodeContext, node: Any, pat: Pattern, src: Any, make: Any
           ) -> Claimed | str:
    """Match ``pat`` from ``node`` on its input ``src`` (a layer or a channels-last view):
    the claim, or why the nodes differ.  ``make(caps)`` gives ``(op, weights, hint)``."""
    got = _match(cv, node, pat, node.input[0])
    if isinstance(got, str):
        return got

    def finish(cv: NodeContext, last: Any, caps: dict[str, np.ndarray]) -> Any:
        op, weights, hint = make(caps)
        if isinstance(src, ChannelsLast):
            return ChannelsLast(cv.add(last, op, [src.id], hint, weights), src.node)
        return cv.add(last, op, [src], hint, weights)

    claim = Claimed(pat, got, node.input[0], finish)
    return _claimed(cv, node, [claim])


def _claimed(cv: NodeContext, node: Any, ins: list[Value]) -> Any:
    """The value of a node inside a matched decomposition (its constants checked), or
    None; a constant that differs from the decomposition's is an error naming it."""
    for v in ins:
        if not isinstance(v, Claimed) or not any(n is node for n in v.nodes):
            continue
        k = next(i for i, n in enumerate(v.nodes) if n is node)
        op_type, operands = v.pat.steps[k]
        got = _fits(cv.values, node, operands, v.x_name, v.nodes, True)
        if got is None:
            want = [o if isinstance(o, (float, str)) else f"step {o + 1}" for o in operands]
            raise cv.err(node, f"step {k + 1} of what looks like the {v.pat.name} "
                         f"decomposition {v.pat.text()}, but its operands are not "
                         f"{want}; refused rather than read as another op")
        v.caps.update(got)
        return v.finish(cv, node, v.caps) if node is v.nodes[-1] else v
    return None


def _feature(cv: NodeContext, node: Any, ins: list[Value], i: int = 0) -> Any:
    """Input ``i``: a layer id or a channels-last view."""
    v = ins[i] if i < len(ins) else None
    return v if isinstance(v, ChannelsLast) else cv.ir(node, ins, i)


@rule("Transpose", produces=[], handles=("data", "perm"),
      refuses={"perm": "other than [0, 2, 3, 1] of a map and [0, 3, 1, 2] back, "
                       "[0, 2, 1, 3, 4] after channel shuffle's 5-D Reshape, [0, 2, 1, 3] in "
                       "rSoftMax, [0, 3, 5, 1, 2, 4] in space-to-depth"})
def _transpose(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    """The middle of a channel shuffle, or ConvNeXt's channels-last view and back."""
    perm = ints(a["perm"]) if "perm" in a else None
    v = ins[0] if ins else None
    if type(v) is _RadixView and perm == [0, 2, 1, 3]:
        return _RadixT(v.src, v.cardinality, v.radix, node.name or node.output[0])
    if type(v) is _Blocks and perm == [0, 3, 5, 1, 2, 4]:
        return _BlocksT(v.src, v.block, node.name or node.output[0])
    if type(v) is _Grouped:
        if perm == [0, 2, 1, 3, 4]:
            return _Shuffled(v.src, v.groups, node.name or node.output[0])
        raise cv.err(node, f"Transpose perm={perm}: cnnir maps Transpose only as the "
                     f"middle of a channel shuffle (Reshape [N, g, C/g, H, W], "
                     f"Transpose [0, 2, 1, 3, 4], Reshape [N, C, H, W])")
    if isinstance(v, ChannelsLast) and perm == [0, 3, 1, 2]:
        return v.id
    if not isinstance(v, ChannelsLast):
        x = cv.ir(node, ins)
        if len(cv.shape(x)) == 3 and perm == [0, 2, 3, 1]:
            return ChannelsLast(x, node.name or node.output[0])
    what = "a channels-last view" if isinstance(v, ChannelsLast) else "a feature map"
    raise cv.err(node, f"transposes {what} with perm {perm}; cnnir maps Transpose only as "
                 f"perm [0, 2, 3, 1] of a map and perm [0, 3, 1, 2] back (ConvNeXt's "
                 f"channels-last LayerNorm / Linear), and as the middle of a channel shuffle")


@rule("LayerNormalization", produces=[O.LayerNorm2d],
      handles=("X", "Scale", "B", "axis", "epsilon", "stash_type"),
      refuses={"axis": "other than the last axis of a channels-last view",
               "B": "absent (cnnir's layernorm2d has a bias)"})
def _layer_normalization(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]
                         ) -> ChannelsLast:
    """Over the channels of a channels-last view; ``stash_type`` only sets the precision
    of the statistics of a float16 input (the input is float32)."""
    v = ins[0] if ins else None
    if not isinstance(v, ChannelsLast):
        raise cv.err(node, "normalises a tensor that is no Transpose(perm=[0, 2, 3, 1]) of a "
                     "feature map; cnnir maps LayerNormalization over the channels only")
    axis = int(a.get("axis", -1))
    if axis % 4 != 3:
        raise cv.err(node, f"axis={axis} normalises more than the channels; cnnir maps "
                     f"axis=-1 of a channels-last view only")
    c = cv.shape(v.id)[0]
    scale = cv.const(node, ins, 1, "Scale")
    bias = cv.opt_const(node, ins, 2, "B")
    if bias is None:
        raise cv.err(node, "has no bias B; cnnir's layernorm2d always has one")
    if scale.size != c or bias.size != c:
        raise cv.err(node, f"Scale / B of {scale.size} / {bias.size} values for {c} channels")
    op = O.LayerNorm2d(f32(a.get("epsilon", 1e-5)))
    w = {"weight": scale.reshape(-1), "bias": bias.reshape(-1)}
    return ChannelsLast(cv.add(node, op, [v.id], "ln", w, node.input[1]), v.node)


@rule("Gelu", produces=[O.GELU], handles=("X", "approximate"),
      refuses={"approximate": "other than none and tanh"})
def _gelu(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    approx = a.get("approximate", "none")
    if approx not in ("none", "tanh"):
        raise cv.err(node, f"approximate={approx!r} is not PyTorch's none or tanh")
    v = _feature(cv, node, ins)
    if isinstance(v, ChannelsLast):
        return ChannelsLast(cv.add(node, O.GELU(approx), [v.id], "gelu"), v.node)
    return cv.add(node, O.GELU(approx), [v], "gelu")


def _start(cv: NodeContext, node: Any, ins: list[Value], pats: tuple[Pattern, ...],
           refusal: str) -> Any:
    """The claim of the first of ``pats`` that matches from ``node``; else the error
    ``refusal`` with the first pattern's reason."""
    src = _feature(cv, node, ins)
    why = ""
    for pat in pats:
        made = _MAKE[pat.name]
        got = _claim(cv, node, pat, src, made)
        if isinstance(got, Claimed):
            return got
        why = why or got
    raise cv.err(node, f"{refusal}; here {why}")


_MAKE: dict[str, Any] = {
    **{p.name: (lambda caps: (O.GELU("none"), None, "gelu")) for p in (GELU_ERF,
                                                                     GELU_ERF_HALF_FIRST)},
    **{p.name: (lambda caps: (O.GELU("tanh"), None, "gelu")) for p in (GELU_TANH,
                                                                     GELU_TANH_POW)},
}


def _layer_norm_parts(caps: dict[str, np.ndarray]) -> tuple[O.Op, dict[str, Any], str]:
    eps = caps["eps"]
    if eps.size != 1 or not float(eps.reshape(-1)[0]) > 0:
        raise CnnirError(f"the LayerNorm decomposition adds {nums(eps)} to the variance, "
                         f"not one positive eps")
    return (O.LayerNorm2d(f32(float(eps.reshape(-1)[0]))),
            {"weight": caps["weight"].reshape(-1), "bias": caps["bias"].reshape(-1)}, "ln")


_MAKE[LAYER_NORM.name] = _layer_norm_parts


@rule("Div", produces=[O.Scale, O.GELU, O.LayerNorm2d], handles=("A", "B"),
      refuses=_SUB_DIV_REFUSES)
def _div(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    """A step of a LayerNorm decomposition, the start of GELU's erf form, else ``x / c``."""
    got = _claimed(cv, node, ins)
    if got is not None:
        return got
    try:
        return _start(cv, node, ins, (GELU_ERF, GELU_ERF_HALF_FIRST), "cnnir maps Div only "
                      "inside GELU's x * 0.5 * (1 + erf(x / sqrt(2))) and a LayerNorm "
                      "decomposition")
    except CnnirError:
        # a Div that feeds an Erf is a GELU that does not match: say where it differs
        if any(u.op_type == "Erf" for u in cv.consumers.get(node.output[0], [])):
            raise
        return _sub_div(cv, node, ins, a)


@rule("Erf", produces=[O.GELU], handles=("input",))
def _erf(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    got = _claimed(cv, node, ins)
    if got is not None:
        return got
    raise cv.err(node, "cnnir maps Erf only inside GELU's x * 0.5 * (1 + erf(x / sqrt(2))), "
                 "as Div -> Erf -> Add -> Mul -> Mul")


def _inside(op_type: str, what: str, *handles: str) -> None:
    """``op_type`` only as a step of a decomposition (``what`` names them)."""

    def handler(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
        got = _claimed(cv, node, ins)
        if got is not None:
            return got
        raise cv.err(node, f"cnnir maps {op_type} only inside {what}")

    rule(op_type, produces=[O.LayerNorm2d], handles=handles)(handler)


@rule("Sub", produces=[O.Scale, O.LayerNorm2d], handles=("A", "B"),
      refuses=_SUB_DIV_REFUSES)
def _sub(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    """A step of a LayerNorm decomposition, else ``x - c`` / ``c - x``."""
    got = _claimed(cv, node, ins)
    if got is not None:
        return got
    return _sub_div(cv, node, ins, a)


@rule("Pow", produces=[O.GELU, O.LayerNorm2d], handles=("X", "Y"),
      refuses={"Y": "other than 3 (GELU's cube) or 2 (a LayerNorm's square)"})
def _pow(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    got = _claimed(cv, node, ins)  # the square of a LayerNorm decomposition
    if got is not None:
        return got
    return _start(cv, node, ins, (GELU_TANH_POW,), "cnnir maps Pow only inside GELU's tanh "
                  "form (the cube of x) and a LayerNorm decomposition (the square of x - mean)")


_inside("Sqrt", "a LayerNorm decomposition (the deviation)", "X")


def _bias_last_axis(const: np.ndarray, k: int) -> np.ndarray | None:
    """The per-channel values of a constant added to a channels-last ``N x H x W x k``
    tensor (ONNX broadcasting: it varies along the last axis alone), or None."""
    if const.ndim > 4 or any(d != 1 for d in const.shape[:-1]) or \
            (const.ndim and const.shape[-1] not in (1, k)):
        return None
    return np.broadcast_to(const.reshape(-1), (k,)).astype(np.float32)


def _channels_last_bias(cv: NodeContext, node: Any, ins: list[Value]) -> ChannelsLast:
    """``Add(MatMul on a channels-last view, constant)``: the bias of that 1x1 conv."""
    i = 0 if isinstance(ins[0], ChannelsLast) else 1
    v = ins[i]
    const = np.asarray(ins[1 - i])
    p = cv.imp.nodes[v.id]
    bias = _bias_last_axis(const, p.shape[0])
    tensor = node.input[i]
    users = cv.consumers.get(tensor, [])
    sole = len(users) == 1 and tensor not in cv.graph_outputs
    if not isinstance(p.op, O.Conv2d) or p.op.kernel != (1, 1) or p.op.bias or bias is None \
            or not sole:
        raise cv.err(node, f"adds a constant ('{node.input[1 - i]}', shape "
                     f"{list(const.shape)}) to a channels-last view; cnnir folds it only as "
                     f"the per-channel bias of the MatMul right before it")
    p.weights = {**(p.weights or {}), "bias": bias}
    p.op = O.Conv2d(p.op.out_channels, (1, 1), bias=True)
    return ChannelsLast(v.id, v.node)


def _channels_last_matmul(cv: NodeContext, node: Any, ins: list[Value]) -> ChannelsLast:
    """``MatMul(channels-last view, W)`` with a constant ``C x K`` ``W``: a 1x1 conv with K
    filters, its weight ``W^T`` as ``(K, C, 1, 1)`` (a Linear on the last axis)."""
    v = ins[0]
    c = cv.shape(v.id)[0]
    w = cv.const(node, ins, 1, "the weight")
    if w.ndim != 2 or w.shape[0] != c:
        raise cv.err(node, f"weight of shape {list(w.shape)} does not fit the {c} channels of "
                     f"the channels-last view")
    k = int(w.shape[1])
    op = O.Conv2d(k, (1, 1), bias=False)
    conv = cv.add(node, op, [v.id], "conv", {"weight": w.T.reshape(k, c, 1, 1)})
    return ChannelsLast(conv, v.node)


# --------------------------------------------------------------------------- timm's attention
# views: split attention's radix groups (ResNeSt: Reshape to 5-D, ReduceSum, rSoftMax's
# Reshape / Transpose / Softmax; SKNet: Unsqueeze + Concat, Softmax over axis 1), ECA's
# [N, 1, C] sequence and its Expand, space-to-depth (TResNet)


def _batch_dim(cv: NodeContext, v: int, batch_ok: set[int]) -> bool:
    return v in batch_ok | {-1}


def _fill(dims: list[int], total: int) -> list[int] | None:
    """``dims`` (after the batch) with one ``-1`` resolved to make ``total`` elements."""
    rest = list(dims)
    if rest.count(-1) > 1 or 0 in rest:
        return None
    if -1 in rest:
        known = int(np.prod([d for d in rest if d != -1]))
        if known <= 0 or total % known:
            return None
        rest[rest.index(-1)] = total // known
    return rest if int(np.prod(rest)) == total else None


@dataclass
class _Unsqueezed:
    """``Unsqueeze(axes=[1])`` of a map: waits for the Concat along axis 1 that stacks
    it with others (``torch.stack(xs, dim=1)``, SKNet)."""

    src: int
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the 5-D output of Unsqueeze '{self.node}'; cnnir maps an Unsqueeze "
                f"of a feature map only as a stack along axis 1 (Unsqueeze axes [1], "
                f"Concat axis 1) of split attention's radix groups")


@dataclass
class _Stacked1:
    """A Concat along axis 1 of unsqueezed maps of one shape: the ``(N, n, C, H, W)``
    tensor whose memory is the channel concat of the maps.  A ReduceSum over axis 1 is
    the sum of the maps; the concat is made when a Mul with the attention needs it."""

    parts: list[int]
    node: str
    made: int | None = None

    @property
    def refusal(self) -> str:
        return (f"reads the 5-D stack of Concat '{self.node}'; cnnir maps it as split "
                f"attention's radix groups: ReduceSum over axis 1, Mul by a [N, n, C, 1, 1] "
                f"attention, Softmax over axis 1")


_GROUPS: tuple[type, ...] = (_Grouped, _Stacked1)


def _as_grouped(cv: NodeContext, node: Any, v: Any) -> _Grouped:
    if type(v) is _Stacked1:
        if v.made is None:
            v.made = cv.add(node, O.Concat(), v.parts, "concat")
        return _Grouped(v.made, len(v.parts), v.node)
    return v


@rule("Unsqueeze", produces=[], handles=("data", "axes"),
      refuses={"axes": "other than [1] of a feature map (a stack's first step)"})
def _unsqueeze(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    x = cv.ir(node, ins)
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = ints(cv.const(node, ins, 1, "axes"))
    if len(cv.shape(x)) != 3 or axes is None or [int(v) % 5 for v in ints(axes)] != [1]:
        raise cv.err(node, f"unsqueezes axes {axes} of N x {cv.shape(x)}; cnnir maps an "
                     f"Unsqueeze only as axis 1 of a feature map stacked by a Concat "
                     f"(torch.stack(xs, dim=1))")
    return _Unsqueezed(x, node.name or node.output[0])


def _stack_groups(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if int(a.get("axis", 1)) % 5 != 1:
        raise cv.err(node, f"concatenates unsqueezed maps along axis {a.get('axis')}; cnnir "
                     f"maps a stack along axis 1 only")
    parts = [v.src for v in ins]
    if len({tuple(cv.shape(p)) for p in parts}) != 1:
        raise cv.err(node, "stacks maps of different shapes; a stack along axis 1 needs "
                     "maps of one shape")
    return parts[0] if len(parts) == 1 else _Stacked1(parts, node.name or node.output[0])


def _groups_of(cv: NodeContext, node: Any, v: Any) -> list[int]:
    if type(v) is _Stacked1:
        return list(v.parts)
    c = cv.shape(v.src)[0] // v.groups
    return [cv.add(node, O.Slice((k * c, (k + 1) * c)), [v.src], "slice")
            for k in range(v.groups)]


@rule("ReduceSum", produces=[O.Add, O.Sum, O.Slice],
      handles=("data", "axes", "keepdims", "noop_with_empty_axes"),
      refuses={"axes": "other than [1] of a 5-D radix view", "keepdims": "=1"})
def _reduce_sum(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    """ReduceSum over axis 1 of ``(N, radix, C, H, W)`` (a Reshape to 5-D or a stack):
    the sum of the radix groups, one Add of two, one Sum of more."""
    v = ins[0] if ins else None
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = ints(cv.const(node, ins, 1, "axes"))
    if type(v) not in _GROUPS:
        cv.ir(node, ins)  # a pending value's own refusal first
        raise cv.err(node, "sums the elements of a feature map, which has no IR op; cnnir "
                     "maps ReduceSum over axis 1 of split attention's 5-D radix view")
    if axes is None or [int(x) % 5 for x in ints(axes)] != [1] or a.get("keepdims", 1):
        raise cv.err(node, f"ReduceSum over axes {axes} (keepdims={a.get('keepdims', 1)}) "
                     f"of a 5-D radix view; cnnir maps the sum over axis 1, keepdims=0")
    parts = _groups_of(cv, node, v)
    op: O.Op = O.Add() if len(parts) == 2 else O.Sum()
    return cv.add(node, op, parts, "add" if len(parts) == 2 else "sum")


def _grouped_binary(cv: NodeContext, node: Any, op_cls: type[O.Op], hint: str, a: Any,
                    b: Any) -> _Grouped:
    """Mul / Add of two ``(N, radix, C, ...)`` views of the same radix and ``C``: the
    op on the grouped maps (broadcast as the 5-D tensors are), still grouped."""
    if type(a) not in _GROUPS or type(b) not in _GROUPS:
        raise cv.err(node, f"{node.op_type} of a 5-D radix view and another tensor; cnnir "
                     f"maps the {node.op_type} of two radix views only")
    ga, gb = _as_grouped(cv, node, a), _as_grouped(cv, node, b)
    ca, cb = cv.shape(ga.src)[0], cv.shape(gb.src)[0]
    if ga.groups != gb.groups or ca != cb:
        raise cv.err(node, f"{node.op_type} of radix views ({ga.groups} x {ca // ga.groups}) "
                     f"and ({gb.groups} x {cb // gb.groups}); cnnir maps views of the same "
                     f"radix and channels only")
    return _Grouped(cv.add(node, op_cls(), [ga.src, gb.src], hint), ga.groups,
                    node.name or node.output[0])


@dataclass
class _RadixView:
    """Reshape of a map to ``[N, card, radix, -1]``: the start of timm's rSoftMax."""

    src: int
    cardinality: int
    radix: int
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the 4-D output of Reshape '{self.node}'; cnnir maps a Reshape to "
                f"[N, card, radix, -1] only as the start of rSoftMax (Transpose [0, 2, 1, 3], "
                f"Softmax axis 1, Reshape back)")


@dataclass
class _RadixT(_RadixView):
    """The Transpose ``[0, 2, 1, 3]`` of a :class:`_RadixView`: waits for the Softmax."""

    @property
    def refusal(self) -> str:
        return (f"reads the transposed rSoftMax view of '{self.node}'; cnnir maps it only "
                f"when a Softmax over axis 1 follows")


@dataclass
class _RadixOut:
    """The radix softmax (layer ``layer``) as the 4-D ``[N, radix, card, -1]`` tensor."""

    layer: int
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the 4-D Softmax '{self.node}'; cnnir maps it when a Reshape to "
                f"[N, -1] or [N, C, H, W] completes the radix softmax")


def _radix_softmax(cv: NodeContext, node: Any, v: Any, a: dict[str, Any]) -> Any:
    """Softmax over axis 1 of a 5-D radix view (SKNet) or of rSoftMax's transposed view
    (ResNeSt): a :class:`~cnnir.ops.RadixSoftmax`.  Before opset 13 Softmax normalises
    everything from ``axis`` on together, which is another function: refused."""
    rank = 4 if type(v) is _RadixT else 5
    axis = int(a.get("axis", -1 if cv.opset >= 13 else 1)) % rank
    if axis != 1 or cv.opset < 13:
        raise cv.err(node, f"Softmax over axis {a.get('axis')} (opset {cv.opset}) of a radix "
                     f"view; cnnir maps the softmax over the radix axis 1, opset 13 or later "
                     f"(before 13 it normalises the trailing axes together)")
    if type(v) is _RadixT:
        op = O.RadixSoftmax(v.radix, v.cardinality)
        return _RadixOut(cv.add(node, op, [v.src], "rsoftmax"), node.name or node.output[0])
    g = _as_grouped(cv, node, v)
    return _Grouped(cv.add(node, O.RadixSoftmax(g.groups), [g.src], "rsoftmax"), g.groups,
                    node.name or node.output[0])


@dataclass
class _Seq:
    """Reshape of the pooled ``Cx1x1`` map ``map`` to ``[N, 1, C]`` (ECA): a 1-D Conv
    on it is a :class:`~cnnir.ops.ChannelConv1d`, an activation stays on it, and the
    Reshape to ``[N, C, 1, 1]`` is the map again."""

    map: int

    @property
    def refusal(self) -> str:
        return ("reads ECA's [N, 1, C] view of pooled channels; cnnir maps a 1-D Conv with "
                "one filter and activations on it, and the Reshape back to [N, C, 1, 1]")


def _seq_conv(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    w = cv.const(node, ins, 1, "the weight")
    b = cv.opt_const(node, ins, 2, "the bias")
    if w.shape[:2] != (1, 1) or w.ndim != 3:
        raise cv.err(node, f"weight of shape {list(w.shape)} on ECA's [N, 1, C] sequence; "
                     f"cnnir maps a 1-D Conv with one filter of one channel ([1, 1, k])")
    k = int(w.shape[2])
    pads = ints(a.get("pads", [0, 0]))
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "") or len(pads) != 2 or \
            pads[0] != pads[1] or ints(a.get("strides", [1])) != [1] or \
            ints(a.get("dilations", [1])) != [1] or int(a.get("group", 1)) != 1 or \
            ints(a.get("kernel_shape", [k])) != [k]:
        raise cv.err(node, f"1-D Conv with pads {pads}, strides {a.get('strides')}, "
                     f"dilations {a.get('dilations')}, auto_pad {a.get('auto_pad')}; cnnir's "
                     f"channel conv pads both ends alike, stride 1, dilation 1")
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    op = O.ChannelConv1d(k, pads[0], b is not None)
    return _Seq(cv.add(node, op, [ins[0].map], "conv", weights, node.input[1]))


@dataclass
class _Expanded:
    """``Expand`` of a map to a shape it broadcasts to: a broadcasting Mul / Add with a
    tensor of that shape reads the map itself (the same result)."""

    src: int
    shape: tuple[int, ...]
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the output of Expand '{self.node}'; cnnir maps an Expand only as an "
                f"operand of a broadcasting Mul / Add with a tensor of the expanded shape")


@rule("Expand", produces=[], handles=("input", "shape"),
      refuses={"shape": "that does not broadcast the map to another operand's shape"})
def _expand(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    x = cv.ir(node, ins)
    s = tuple(cv.shape(x))
    target = ints(cv.const(node, ins, 1, "the target shape"))
    if len(target) != len(s) + 1 or target[0] not in (BATCH, 1) or any(
            t != d and d != 1 and t != 1 for t, d in zip(target[1:], s)):
        raise cv.err(node, f"expands N x {'x'.join(map(str, s))} to {target}; cnnir maps an "
                     f"Expand that broadcasts a map along its axes of size 1")
    out = tuple(max(t, d) for t, d in zip(target[1:], s))
    return x if out == s else _Expanded(x, out, node.name or node.output[0])


def _unexpand(cv: NodeContext, node: Any, v: Any, other: Any) -> Any:
    if type(v) is not _Expanded:
        return v
    if isinstance(other, (int, np.integer)) and tuple(cv.shape(int(other))) == v.shape:
        return v.src
    raise cv.err(node, v.refusal)


@dataclass
class _Blocks:
    """Reshape of a map to ``[N, C, H/b, b, W/b, b]``: space-to-depth's first step."""

    src: int
    block: int
    node: str

    @property
    def refusal(self) -> str:
        return (f"reads the 6-D output of Reshape '{self.node}'; cnnir maps it only as "
                f"space-to-depth: Transpose [0, 3, 5, 1, 2, 4], Reshape [N, C*b*b, H/b, W/b]")


@dataclass
class _BlocksT(_Blocks):
    """The Transpose ``[0, 3, 5, 1, 2, 4]`` of a :class:`_Blocks`."""

    @property
    def refusal(self) -> str:
        return (f"reads the permuted 6-D blocks of '{self.node}'; cnnir maps them only when a "
                f"Reshape to [N, C*b*b, H/b, W/b] completes a space-to-depth")


@rule("SpaceToDepth", produces=[O.SpaceToDepth], handles=("input", "blocksize", "mode"),
      refuses={"mode": "CRD (PyTorch's pixel_unshuffle order; cnnir's op is DCR, timm's)"})
def _space_to_depth(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    if a.get("mode", "DCR") != "DCR":
        raise cv.err(node, f"mode {a.get('mode')!r} orders the channels as pixel_unshuffle "
                     f"does; cnnir's space_to_depth is the DCR order (timm's, ONNX's default)")
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    return cv.add(node, O.SpaceToDepth(int(a["blocksize"])), [x], "s2d")


def _flat_source(cv: NodeContext, node: Any, x: int) -> int | None:
    """The ``Fx1x1`` map the flat layer ``x`` flattened (ReduceMean keepdims=0, Flatten),
    or None; the Flatten is dropped when it is the last layer and this node its only
    reader, so that reshaping it back leaves no dead layer."""
    p = cv.imp.nodes[x]
    if not isinstance(p.op, O.Flatten) or tuple(cv.shape(p.inputs[0]))[1:] != (1, 1):
        return None
    users = cv.consumers.get(node.input[0], [])
    if x == len(cv.imp.nodes) - 1 and users == [node] and \
            node.input[0] not in cv.graph_outputs:
        cv.imp.nodes.pop()
    return p.inputs[0]


def _reshape_special(cv: NodeContext, node: Any, x: int, s: TensorShape, target: list[int],
                     batch_ok: set[int]) -> Any:
    """The Reshapes of timm's attention blocks, or None: ``[N, 1, C]`` of pooled channels
    (ECA), ``[N, F, 1, 1]`` of a flattened ``Fx1x1`` map (the map again), ``[N, card,
    radix, -1]`` (rSoftMax), ``[N, C, H/b, b, W/b, b]`` (space-to-depth)."""
    if not target or not _batch_dim(cv, target[0], batch_ok):
        return None
    rest = list(target[1:])
    n = s.numel
    if len(rest) == 2 and rest[0] == 1 and rest[1] in (-1, s[0]) and (
            len(s) == 1 or tuple(s[1:]) == (1, 1)):
        src = x if len(s) == 3 else _flat_source(cv, node, x)
        return None if src is None else _Seq(src)
    if len(s) == 1 and len(rest) == 3 and rest[1:] == [1, 1] and rest[0] in (-1, n):
        return _flat_source(cv, node, x)
    if len(s) == 3 and len(rest) == 3 and rest[0] >= 1 and rest[1] >= 2 and \
            s[0] % (rest[0] * rest[1]) == 0 and rest[2] in (-1, n // (rest[0] * rest[1])):
        return _RadixView(x, rest[0], rest[1], node.name or node.output[0])
    if len(s) == 3 and len(rest) == 5:
        c, h, w = s
        b = rest[2]
        if b >= 1 and h % b == 0 and w % b == 0 and rest[4] in (b, -1) and \
                _fill(rest, n) == [c, h // b, b, w // b, b]:
            return _Blocks(x, b, node.name or node.output[0])
    return None


def _reshape_pending(cv: NodeContext, node: Any, v: Any, target: list[int],
                     batch_ok: set[int]) -> Any:
    """A Reshape of one of the pending values above (see :func:`_reshape_special`)."""
    readable = [("N" if t == BATCH else t) for t in target]
    ok = bool(target) and _batch_dim(cv, target[0], batch_ok)
    if type(v) is _Seq:
        c = cv.shape(v.map)[0]
        if ok and _fill(target[1:], c) == [c, 1, 1]:
            return v.map
        raise cv.err(node, f"reshapes ECA's [N, 1, {c}] sequence to {readable}; cnnir maps "
                     f"the Reshape back to [N, {c}, 1, 1]")
    if type(v) is _RadixOut:
        s = cv.shape(v.layer)
        if ok and _fill(target[1:], s.numel) == [s.numel]:
            return cv.add(node, O.Flatten(), [v.layer], "flatten")
        if ok and _fill(target[1:], s.numel) == list(s):
            return v.layer
        raise cv.err(node, f"reshapes the 4-D radix softmax to {readable}; cnnir maps the "
                     f"Reshape back to [N, -1] or [N, {', '.join(map(str, s))}]")
    c, h, w = cv.shape(v.src)
    b = v.block
    want = [c * b * b, h // b, w // b]
    if ok and _fill(target[1:], c * h * w) == want:
        return cv.add(node, O.SpaceToDepth(b), [v.src], "s2d")
    raise cv.err(node, f"reshapes space-to-depth's permuted blocks to {readable}; they "
                 f"reshape back to [N, {', '.join(map(str, want))}]")
