"""ONNX operator -> IR layer rules, used by :mod:`cnnir.frontends.onnx_import`.

One function per ONNX operator: ``rule(converter, node, inputs, attrs)`` returns the
id of the IR layer it added (through ``converter.add``), or a pending value that
the next node completes: a zero :class:`Pad` waiting to fold into a conv's padding,
or the first half of an adaptive pool written as two ``MatMul`` with bin matrices
(how cnnir's ONNX backend writes overlapping adaptive bins).  A rule that meets
attributes with no IR equivalent raises an error naming the node (``converter.err``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ops as O
from ..errors import CnnirError
from ..ops import Pads, Pair, TensorShape
from ..passes.support import bin_matrix
from .importing import BATCH

if TYPE_CHECKING:
    from .onnx_import import _Converter

@dataclass
class _Padded:
    """The output of a zero ``Pad``: waits to be folded into the next conv's padding."""

    src: int
    pads: tuple[int, int, int, int]
    node: str


@dataclass
class _RowPooled:
    """``MatMul(x, A_w^T)`` with PyTorch's adaptive-pool bin matrix: half an adaptive pool.

    cnnir's ONNX backend writes an adaptive average pool whose input size is not a
    multiple of the output size as ``A_h @ x @ A_w^T``; the second MatMul completes it.
    """

    src: int
    out_w: int
    node: str


Value = Any  # int (an IR layer id) | np.ndarray (a constant) | a pending value


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[a.name] = v
    return out


def _f32(x: float) -> float:
    """A float attribute as written (float32 0.01 reads back as 0.01, not 0.009999...)."""
    return float(str(np.float32(x)))


def _spatial(cv: _Converter, node: Any, a: dict[str, Any], key: str, default: int) -> Pair:
    v = a.get(key)
    if v is None:
        return (default, default)
    if len(v) != 2:
        raise cv.err(node, f"{key} {list(v)}: cnnir handles 2-D (NCHW) layers only")
    return (int(v[0]), int(v[1]))


def _pads(cv: _Converter, node: Any, a: dict[str, Any], in_shape: TensorShape,
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


def _map_input(cv: _Converter, node: Any, x: int, rank: int = 3) -> TensorShape:
    s = cv.shape(x)
    if len(s) != rank:
        raise cv.err(node, f"expects a {'CxHxW feature map' if rank == 3 else 'flat tensor'}, "
                     f"got {s}")
    return s


def _conv(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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
    op = O.Conv2d(int(w.shape[0]), kernel, stride, pads, dil, group, b is not None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b.reshape(-1)
    return cv.add(node, op, [xv], "conv", weights, node.input[1])


def _conv_transpose(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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
    if w.shape[0] != s[0]:
        raise cv.err(node, f"weight {list(w.shape)} expects {w.shape[0]} input channels, "
                     f"the input has {s[0]}")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
        raise cv.err(node, f"pads {p}: cnnir's transposed conv takes symmetric padding only")
    op = O.ConvTranspose2d(int(w.shape[1]) * group, (int(w.shape[2]), int(w.shape[3])),
                           _spatial(cv, node, a, "strides", 1), (p[0], p[1]),
                           _spatial(cv, node, a, "output_padding", 0),
                           _spatial(cv, node, a, "dilations", 1), group, b is not None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b
    return cv.add(node, op, [x], "upconv", weights, node.input[1])


def _batchnorm(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    c = _map_input(cv, node, x)[0]
    arrays = {}
    for i, key in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
        v = cv.const(node, ins, i, key)
        if v.size != c:
            raise cv.err(node, f"{key} has {v.size} values for {c} channels")
        arrays[key] = v.reshape(-1)
    momentum = round(1.0 - float(a.get("momentum", 0.9)), 6)
    op = O.BatchNorm2d(_f32(a.get("epsilon", 1e-5)), momentum)
    return cv.add(node, op, [x], "bn", arrays, node.input[1])


def _simple(op_cls: type[O.Op], hint: str) -> Callable[..., int]:
    def handler(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
        return cv.add(node, op_cls(), [cv.ir(node, ins)], hint)
    return handler


def _leaky(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    return cv.add(node, O.LeakyReLU(_f32(a.get("alpha", 0.01))), [cv.ir(node, ins)], "lrelu")


def _clip(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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


def _hardsigmoid(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
        raise cv.err(node, f"HardSigmoid(alpha={alpha:g}, beta={beta:g}) differs from "
                     f"PyTorch's hardsigmoid (alpha=1/6, beta=0.5), the only one cnnir has")
    return cv.add(node, O.HardSigmoid(), [cv.ir(node, ins)], "hsigmoid")


def _softmax(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = cv.shape(x)
    rank = len(s) + 1
    axis = int(a.get("axis", -1 if cv.opset >= 13 else 1)) % rank
    trailing_ones = all(d == 1 for d in s[1:])
    if axis != 1 or (cv.opset < 13 and not trailing_ones):
        raise cv.err(node, f"softmax over axis {a.get('axis')} of an N x {s} tensor; cnnir's "
                     f"softmax runs over the channel / feature axis only")
    return cv.add(node, O.Softmax(), [x], "softmax")


def _elementwise(op_cls: type[O.Op], hint: str) -> Callable[..., int]:
    def handler(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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
    return handler


def _fold_bias(cv: _Converter, node: Any, ins: list[Value]) -> int:
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
                     f"to a feature map; cnnir folds a constant Add only as the per-channel "
                     f"bias of the Conv / MatMul / Gemm right before it")
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
    """A constant that adds one value per channel / feature (``(C,)``, ``(1, C, 1, 1)``...)."""
    c = shape[0]
    if const.size == 1:
        return const.reshape(1).astype(np.float32)
    dims = list(const.shape)
    while dims and dims[0] == 1 and len(dims) > len(shape):
        dims.pop(0)
    want = [c] if len(shape) == 1 else [c, 1, 1]
    if dims == want or (len(shape) == 3 and dims == [c, 1]):
        return const.reshape(c).astype(np.float32)
    return None


def _concat(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    xs = [cv.ir(node, ins, i) for i in range(len(ins))]
    rank = len(cv.shape(xs[0])) + 1
    if int(a.get("axis", 1)) % rank != 1:
        raise cv.err(node, f"concatenates along axis {a.get('axis')}; cnnir concatenates "
                     f"channels (axis 1) only")
    if len(xs) == 1:
        return cv.add(node, O.Identity(), xs, "identity")
    return cv.add(node, O.Concat(), xs, "concat")


def _unpad(v: int | _Padded) -> tuple[int, Pads]:
    return (v.src, v.pads) if isinstance(v, _Padded) else (v, (0, 0, 0, 0))


def _add_pads(a: Pads, b: Pads) -> Pads:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _pool_common(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any], allow_pad: bool
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


def _maxpool(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=False)
    if a.get("storage_order", 0):
        raise cv.err(node, "storage_order=1 is not supported")
    p, ceil = _as_ceil(cv.shape(x), k, s, p, ceil)
    return cv.add(node, O.MaxPool2d(k, s, p, ceil), [x], "maxpool")


def _avgpool(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    padded = ins[0] if isinstance(ins[0], _Padded) else None
    if padded is not None and not a.get("count_include_pad", 0):
        return _padded_avgpool(cv, node, padded, a)
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=True)
    include = bool(a.get("count_include_pad", 0)) or not any(p)
    if not include:
        p, ceil = _as_ceil(cv.shape(x), k, s, p, ceil)
        include = not any(p)
    return cv.add(node, O.AvgPool2d(k, s, p, ceil, include), [x], "avgpool")


def _padded_avgpool(cv: _Converter, node: Any, padded: _Padded, a: dict[str, Any]) -> int:
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


def _gap(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    return cv.add(node, O.GlobalAvgPool(), [x], "gap")


def _reduce_mean(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    _map_input(cv, node, x)
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = [int(v) for v in np.atleast_1d(cv.const(node, ins, 1, "axes"))]
    if axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
        raise cv.err(node, f"averages over axes {axes}; cnnir maps a mean over H and W "
                     f"(axes 2, 3) only, as a global average pool")
    g = cv.add(node, O.GlobalAvgPool(), [x], "gap")
    if a.get("keepdims", 1):
        return g
    return cv.add(node, O.Flatten(), [g], "flatten")


def _flatten(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    if int(a.get("axis", 1)) % (len(cv.shape(x)) + 1) != 1:
        raise cv.err(node, f"flattens from axis {a.get('axis')}; cnnir's flatten keeps the batch "
                     f"axis (axis=1) only")
    return cv.add(node, O.Flatten(), [x], "flatten")


def _reshape(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = cv.shape(x)
    target = [int(v) for v in np.atleast_1d(cv.const(node, ins, 1, "the target shape"))]
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


def _squeeze(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = cv.shape(x)
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and node.input[1]:
        axes = [int(v) for v in np.atleast_1d(cv.const(node, ins, 1, "axes"))]
    if len(s) == 3 and s[1] == s[2] == 1 and (axes is None and s[0] != 1 or axes is not None
                                               and sorted(v % 4 for v in axes) == [2, 3]):
        return cv.add(node, O.Flatten(), [x], "flatten")
    raise cv.err(node, f"squeezes axes {axes} of N x {s}; cnnir maps a Squeeze only as the "
                 f"flatten of an N x C x 1 x 1 map")


def _gemm(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
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
        if c.size not in (1, w.shape[0]):
            raise cv.err(node, f"bias of shape {list(c.shape)} does not fit {w.shape[0]} outputs")
        weights["bias"] = np.broadcast_to(c.reshape(-1) * beta, (w.shape[0],)).copy()
    name = node.input[1] if a.get("transB", 0) else None
    return cv.add(node, O.Linear(int(w.shape[0]), c is not None), [x], "fc", weights, name)


def _is_bins(m: Any, size: int) -> int | None:
    """The output size if ``m`` (``out x size``) is the bin matrix of ``size``, else None."""
    if not isinstance(m, np.ndarray) or m.ndim != 2 or m.shape[1] != size:
        return None
    out = m.shape[0]
    return out if np.allclose(m, bin_matrix(size, out), atol=1e-6) else None


def _matmul(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> Any:
    if isinstance(ins[1], _RowPooled):  # A_h @ (x @ A_w^T): an adaptive average pool
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
        return _RowPooled(int(ins[0]), ow, node.name or node.output[0])
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x, rank=1)
    w = cv.const(node, ins, 1, "the weight")
    if w.ndim != 2 or w.shape[0] != s[0]:
        raise cv.err(node, f"weight of shape {list(w.shape)} does not fit {s[0]} input features")
    return cv.add(node, O.Linear(int(w.shape[1]), False), [x], "fc", {"weight": w.T})


def _identity(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    return cv.add(node, O.Identity(), [cv.ir(node, ins)], "identity")


def _dropout(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    p = a.get("ratio", 0.5)
    if cv.opset >= 12 and len(ins) > 1 and node.input[1]:
        p = float(np.asarray(cv.const(node, ins, 1, "ratio")).reshape(-1)[0])
    return cv.add(node, O.Dropout(_f32(p)), [x], "dropout")


def _lrn(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    op = O.LocalResponseNorm(int(a["size"]), _f32(a.get("alpha", 1e-4)),
                             _f32(a.get("beta", 0.75)), _f32(a.get("bias", 1.0)))
    return cv.add(node, op, [x], "lrn")


def _resize(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    x = cv.ir(node, ins)
    s = _map_input(cv, node, x)
    scales: list[Any] = []
    sizes: list[Any] | None = None
    if node.op_type == "Upsample" and "scales" in a:
        scales = list(a["scales"])
    elif node.op_type == "Upsample" or cv.opset < 11:
        scales = list(cv.const(node, ins, 1, "scales"))
    else:
        sc = cv.opt_const(node, ins, 2, "scales")
        if sc is not None and sc.size:
            scales = list(sc)
        else:
            sizes = list(cv.const(node, ins, 3, "sizes"))
    if sizes is not None:
        if len(sizes) != 4:
            raise cv.err(node, f"sizes {sizes}: cnnir resizes NCHW maps only")
        scales = [1.0, 1.0, sizes[2] / s[1], sizes[3] / s[2]]
    if len(scales) != 4 or scales[0] != 1 or scales[1] != 1 or any(
            v < 1 or v != math.floor(v) for v in scales[2:]):
        raise cv.err(node, f"scales {[float(v) for v in scales]}: cnnir upsamples H and W by "
                     f"integer factors only")
    scale = (int(scales[2]), int(scales[3]))
    mode = a.get("mode", "nearest")
    coord = a.get("coordinate_transformation_mode", "half_pixel" if cv.opset >= 11 else
                  "asymmetric")
    if node.op_type == "Upsample" or cv.opset < 11:
        coord = "asymmetric"
    if mode == "nearest":
        near = a.get("nearest_mode", "round_prefer_floor")
        # for integer scales these coordinate rules pick PyTorch's nearest source pixel
        if (coord, near) == ("asymmetric", "floor") or node.op_type == "Upsample" or \
                cv.opset < 11 or (coord in ("half_pixel", "pytorch_half_pixel") and
                                  near in ("round_prefer_floor", "round_prefer_ceil")):
            return cv.add(node, O.Upsample(scale, "nearest"), [x], "upsample")
        raise cv.err(node, f"nearest resize with coordinate_transformation_mode={coord!r}, "
                     f"nearest_mode={near!r} picks other pixels than PyTorch's nearest")
    if mode in ("linear", "bilinear"):
        if coord in ("half_pixel", "pytorch_half_pixel"):
            return cv.add(node, O.Upsample(scale, "bilinear", False), [x], "upsample")
        if coord == "align_corners":
            return cv.add(node, O.Upsample(scale, "bilinear", True), [x], "upsample")
        raise cv.err(node, f"linear resize with coordinate_transformation_mode={coord!r} has "
                     f"no IR op")
    raise cv.err(node, f"resize mode {mode!r} has no IR op (nearest or bilinear)")


def _pad(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> _Padded:
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
    return _Padded(x, (pads[2], pads[3], pads[6], pads[7]), node.name or node.output[0])


def _cast(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any]) -> int:
    from onnx import TensorProto

    if a.get("to") not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
        raise cv.err(node, "a Cast of a feature map to a non-float type has no IR op")
    return cv.ir(node, ins)


HANDLERS: dict[str, Callable[..., Any]] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batchnorm,
    "Relu": _simple(O.ReLU, "relu"), "LeakyRelu": _leaky, "Clip": _clip,
    "Sigmoid": _simple(O.Sigmoid, "sigmoid"), "HardSigmoid": _hardsigmoid,
    "HardSwish": _simple(O.HardSwish, "hswish"), "Tanh": _simple(O.Tanh, "tanh"),
    "Softmax": _softmax, "Add": _elementwise(O.Add, "add"), "Mul": _elementwise(O.Mul, "mul"),
    "Concat": _concat, "MaxPool": _maxpool, "AveragePool": _avgpool,
    "GlobalAveragePool": _gap, "ReduceMean": _reduce_mean, "Flatten": _flatten,
    "Reshape": _reshape, "Squeeze": _squeeze, "Gemm": _gemm, "MatMul": _matmul,
    "Identity": _identity, "Dropout": _dropout, "LRN": _lrn, "Resize": _resize,
    "Upsample": _resize, "Pad": _pad, "Cast": _cast,
}
"""ONNX operator -> handler building the IR layer(s) (see the module docstring)."""


__all__ = ["HANDLERS", "bin_matrix"]
