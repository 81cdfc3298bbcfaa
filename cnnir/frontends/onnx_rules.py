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
    bin_matrix,
    f32,
    ints,
    nums,
    rule,
)

ONNX.not_produced(O.Input, "made by the driver for the graph input, not by an operator rule")
ONNX.not_produced(O.SiLU, "exporters write SiLU as Sigmoid and Mul, read back as those two")
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


@rule("Conv", produces=[O.Conv2d],
      handles=("X", "W", "B", "auto_pad", "dilations", "group", "kernel_shape", "pads",
               "strides"),
      refuses={"W": "of rank other than 4 (1-D / 3-D convolutions)",
               "auto_pad": "other than NOTSET, VALID, SAME_UPPER, SAME_LOWER"})
def _conv(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    xv, extra = _unpad(cv.ir_or_pad(node, ins, 0))
    s = _map_input(cv, node, xv)
    w = cv.const(node, ins, 1, "the weight")
    b = cv.opt_const(node, ins, 2, "the bias")
    if w.ndim != 4:
        raise cv.err(node, f"weight of shape {list(w.shape)}: cnnir handles 2-D convolutions")
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
    op = O.Conv2d(int(w.shape[0]), kernel, stride, pads, dil, group, b is not None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    return cv.add(node, op, [xv], "conv", weights, node.input[1])


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
    def handler(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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


@rule("Softmax", produces=[O.Softmax], handles=("input", "axis"),
      refuses={"axis": "other than the channel / feature axis"})
def _softmax(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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
    def handler(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
        consts = [isinstance(v, np.ndarray) for v in ins[:2]]
        if any(consts):
            if op_cls is O.Add:
                return _fold_bias(cv, node, ins)
            raise cv.err(node, f"multiplies a feature map by a constant "
                         f"('{node.input[consts.index(True)]}'); cnnir has no scaling op "
                         f"(Mul maps only the product of two feature maps, as in "
                         f"squeeze-excitation)")
        a_, b_ = cv.ir(node, ins, 0), cv.ir(node, ins, 1)
        return cv.add(node, op_cls(), [a_, b_], hint)
    refused = {"B": "a constant that is no per-channel bias of the Conv / Gemm / MatMul "
                    "right before" if op_cls is O.Add else "a constant (no scaling op)"}
    made = [O.Add, O.Conv2d, O.Linear] if op_cls is O.Add else [op_cls]
    rule(op_type, produces=made, handles=("A", "B"), refuses=refused)(handler)


_elementwise("Add", O.Add, "add")
_elementwise("Mul", O.Mul, "mul")


def _fold_bias(cv: NodeContext, node: Any, ins: list[Value]) -> int:
    """``Add(layer, constant)``: the bias of the Conv / Linear (Gemm, MatMul) right before it."""
    i = 0 if not isinstance(ins[0], np.ndarray) else 1
    src = cv.ir(node, ins, i)
    const = np.asarray(ins[1 - i])
    p = cv.imp.nodes[src]
    c = p.shape[0]
    bias = _bias_vector(const, p.shape)
    tensor = node.input[i]
    users = cv.consumers.get(tensor, [])
    sole = len(users) == 1 and users[0] is node and tensor not in cv.graph_outputs and not any(
        src in q.inputs for q in cv.imp.nodes)
    if not isinstance(p.op, (O.Linear, O.Conv2d)) or bias is None or not sole:
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
def _concat(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    xs = [cv.ir(node, ins, i) for i in range(len(ins))]
    rank = len(cv.shape(xs[0])) + 1
    if int(a.get("axis", 1)) % rank != 1:
        raise cv.err(node, f"concatenates along axis {a.get('axis')}; cnnir concatenates "
                     f"channels (axis 1) only")
    if len(xs) == 1:
        return cv.add(node, O.Identity(), xs, "identity")
    return cv.add(node, O.Concat(), xs, "concat")


def _unpad(v: int | Padded) -> tuple[int, Pads]:
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
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=False)
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


@rule("ReduceMean", produces=[O.GlobalAvgPool, O.Flatten],
      handles=("data", "axes", "keepdims", "noop_with_empty_axes"),
      refuses={"axes": "other than [2, 3] (H and W)"})
def _reduce_mean(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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


@rule("Reshape", produces=[O.Flatten, O.Identity], handles=("data", "shape", "allowzero"),
      refuses={"shape": "other than a flatten [N, -1] or the same shape",
               "allowzero": "=1 with a 0 in the shape"})
def _reshape(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = cv.shape(x)
    target = ints(cv.const(node, ins, 1, "the target shape"))
    if a.get("allowzero", 0) and 0 in target:
        raise cv.err(node, f"allowzero=1 with a 0 in the shape {target} makes an empty tensor")
    batch_ok = {0, BATCH} | ({cv.file_batch} if cv.file_batch else set())
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


@rule("MatMul", produces=[O.Linear, O.AdaptiveAvgPool2d], handles=("A", "B"),
      refuses={"B": "computed by the graph, or a matrix on a feature map that is no "
                    "adaptive-pool bin matrix"})
def _matmul(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
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


@rule("Pad", produces=[],
      handles=("data", "pads", "constant_value", "axes", "mode", "value"),
      refuses={"mode": "other than constant", "value": "other than 0",
               "constant_value": "other than 0", "pads": "negative, or on N or C"})
def _pad(cv: NodeContext, node: Any, ins: list[Value], a: dict[str, Any]) -> Padded:
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
    if mode != "constant" or value != 0.0:
        raise cv.err(node, f"{mode} padding with value {value:g} has no IR op; cnnir folds a "
                     f"zero (constant) Pad into the following Conv only")
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise cv.err(node, f"pads {pads}: cnnir folds non-negative padding of H and W only")
    return Padded(x, (pads[2], pads[3], pads[6], pads[7]), node.name or node.output[0])


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
