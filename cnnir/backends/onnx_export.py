"""ONNX backend: build a ``ModelProto`` from the IR with ``onnx.helper``.

:func:`to_onnx` emits one ONNX node per IR node (named like the IR node, its output
tensor too), the DSL ``file:line`` and source text in each node's ``doc_string``,
the weights as initializers (``"<node>.weight"``, ``"<node>.bias"``...), a dynamic
(``N``) or fixed batch axis, and model metadata (cnnir version, source, model name).

Op mapping (the IR's PyTorch semantics, checked numerically against PyTorch):

=====================  ==================================================================
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
                       ``half_pixel``
flatten                ``Flatten(axis=1)``
linear                 ``Gemm(transB=1)``
concat / add / mul     ``Concat(axis=1)`` / ``Add`` / ``Mul``
dropout / identity     nothing (the consumers read the input tensor); an ``Identity``
                       where the node is a graph output
=====================  ==================================================================

An op kind without a rule raises a :class:`~cnnir.errors.BackendError` naming the
layer; nothing is ever approximated silently.

:func:`save` writes a model atomically; the weights go to ``FILE.onnx.data`` beside
it (ONNX external data) when asked, or when the file would pass protobuf's 2 GB limit.
"""

from __future__ import annotations

import linecache
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .. import __version__
from .. import ops as O
from ..errors import BackendError, UsageError
from ..ir import Graph
from ..util import check_writable
from ..weights import ensure_weights, with_weights

#: the opset emitted by default (HardSwish needs 14, Softmax on one axis 13)
DEFAULT_OPSET = 17
MIN_OPSET = 17
#: weights from this many bytes go to external data: protobuf refuses to serialise a
#: message of 2 GiB or more, and the graph itself needs a margin
EXTERNAL_THRESHOLD = 1_900_000_000

Weights = dict[str, dict[str, Any]]


# --------------------------------------------------------------------------- emitter


class _Emitter:
    """Collects nodes and initializers; maps IR node names to ONNX tensor names."""

    def __init__(self, graph: Graph, weights: Weights) -> None:
        self.graph = graph
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        #: initializers go straight into the model's graph (no copies of the weights)
        self.model = onnx.ModelProto()
        self.tensor: dict[str, str] = {}  # IR node -> ONNX tensor holding its output
        self.tensors: set[str] = set()  # tensor names in use
        self._node_names: set[str] = set()
        self._consts: dict[tuple[str, bytes], str] = {}

    @staticmethod
    def _unique(used: set[str], base: str) -> str:
        name, i = base, 2
        while name in used:
            name = f"{base}_{i}"
            i += 1
        used.add(name)
        return name

    def add_init(self, name: str, array: Any, dtype: Any = np.float32) -> str:
        name = self._unique(self.tensors, name)
        arr = np.ascontiguousarray(array, np.dtype(dtype).newbyteorder("<"))
        t = self.model.graph.initializer.add()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()
        return name

    def const(self, value: float) -> str:
        """A shared scalar float32 initializer."""
        arr = np.asarray(value, np.float32)
        key = ("f32", arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.add_init(f"const:{float(value):g}", arr)
        return self._consts[key]

    def param(self, node: str, key: str) -> str:
        return self.add_init(f"{node}.{key}", self.weights[node][key])

    def emit(self, op_type: str, inputs: list[str], output: str, name: str, doc: str,
             **attrs: Any) -> str:
        """Append a node; ``output`` and ``name`` are used as given when free."""
        out = self._unique(self.tensors, output)
        self.nodes.append(helper.make_node(
            op_type, inputs, [out], name=self._unique(self._node_names, name),
            doc_string=doc, **attrs))
        return out


def _doc(graph: Graph, n: str) -> str:
    """``file:line: source text`` of the DSL call that made node ``n``."""
    loc = graph.loc(n)
    if loc is None:
        return ""
    text = ""
    if loc.line:
        # zoo locations read "cnnir/zoo/vgg.py", relative to the package's parent
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for path in (loc.file, os.path.join(pkg_parent, loc.file)):
            text = linecache.getline(path, loc.line).strip()
            if text:
                break
    return f"{loc}: {text}" if text else str(loc)


# --------------------------------------------------------------------------- op rules

Rule = Callable[[_Emitter, str, Any, list[str], str], str]


def _conv_attrs(conv: O.Conv2d) -> dict[str, Any]:
    return dict(kernel_shape=list(conv.kernel), strides=list(conv.stride),
                pads=list(conv.padding), dilations=list(conv.dilation), group=conv.groups)


def _conv(e: _Emitter, n: str, op: O.Conv2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    return e.emit("Conv", args, n, n, doc, **_conv_attrs(op))


def _fused(e: _Emitter, n: str, op: O.FusedConv2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if "bias" in e.weights[n]:
        args.append(e.param(n, "bias"))
    if op.act is None:
        return e.emit("Conv", args, n, n, doc, **_conv_attrs(op.conv))
    y = e.emit("Conv", args, f"{n}:conv", n, doc, **_conv_attrs(op.conv))
    return _activation(e, n, op.act, y, doc, name=f"{n}:{op.act.kind}")


def _conv_t(e: _Emitter, n: str, op: O.ConvTranspose2d, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    ph, pw = op.padding
    return e.emit("ConvTranspose", args, n, n, doc, kernel_shape=list(op.kernel),
                  strides=list(op.stride), pads=[ph, pw, ph, pw],
                  output_padding=list(op.output_padding), dilations=list(op.dilation),
                  group=op.groups)


def _bn(e: _Emitter, n: str, op: O.BatchNorm2d, ins: list[str], doc: str) -> str:
    args = [ins[0]] + [e.param(n, k) for k in ("weight", "bias", "running_mean", "running_var")]
    # ONNX momentum weighs the running statistic, PyTorch's the new batch statistic
    return e.emit("BatchNormalization", args, n, n, doc, epsilon=float(op.eps),
                  momentum=1.0 - float(op.momentum))


def _lrn(e: _Emitter, n: str, op: O.LocalResponseNorm, ins: list[str], doc: str) -> str:
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


def _activation(e: _Emitter, n: str, act: O.Op, x: str, doc: str, name: str | None = None
                ) -> str:
    """Emit activation ``act`` on tensor ``x``; the result tensor is named ``n``."""
    name = name or n
    if isinstance(act, O.SiLU):
        s = e.emit("Sigmoid", [x], f"{name}:sigmoid", f"{name}:sigmoid", doc)
        return e.emit("Mul", [x, s], n, name, doc)
    if isinstance(act, O.ReLU6):
        return e.emit("Clip", [x, e.const(0.0), e.const(6.0)], n, name, doc)
    simple: dict[type[O.Op], tuple[str, dict[str, Any]]] = {
        O.ReLU: ("Relu", {}),
        O.Sigmoid: ("Sigmoid", {}),
        O.Tanh: ("Tanh", {}),
        O.HardSigmoid: ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
        O.HardSwish: ("HardSwish", {}),
    }
    if isinstance(act, O.LeakyReLU):
        return e.emit("LeakyRelu", [x], n, name, doc, alpha=float(act.negative_slope))
    if type(act) in simple:
        op_type, attrs = simple[type(act)]
        return e.emit(op_type, [x], n, name, doc, **attrs)
    raise BackendError(f"onnx: no rule for the activation '{act.kind}'")


def _act_rule(e: _Emitter, n: str, op: O.Op, ins: list[str], doc: str) -> str:
    return _activation(e, n, op, ins[0], doc)


def _pool_pads(e: _Emitter, n: str, op: O.MaxPool2d | O.AvgPool2d) -> tuple[list[int], bool]:
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


def _maxpool(e: _Emitter, n: str, op: O.MaxPool2d, ins: list[str], doc: str) -> str:
    pads, _ = _pool_pads(e, n, op)
    return e.emit("MaxPool", [ins[0]], n, n, doc, kernel_shape=list(op.kernel),
                  strides=list(op.stride), pads=pads)


def _avgpool(e: _Emitter, n: str, op: O.AvgPool2d, ins: list[str], doc: str) -> str:
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


def bin_matrix(size: int, out: int) -> np.ndarray:
    """``(out, size)`` matrix averaging PyTorch's adaptive pooling bins along one axis."""
    m = np.zeros((out, size), np.float64)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _adaptive(e: _Emitter, n: str, op: O.AdaptiveAvgPool2d, ins: list[str], doc: str) -> str:
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


def _global(e: _Emitter, n: str, op: O.GlobalAvgPool, ins: list[str], doc: str) -> str:
    return e.emit("GlobalAveragePool", [ins[0]], n, n, doc)


def _upsample(e: _Emitter, n: str, op: O.Upsample, ins: list[str], doc: str) -> str:
    scales = e.add_init(f"{n}:scales", np.array([1, 1, *op.scale], np.float32))
    if op.mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    else:
        # integer scales: half_pixel equals PyTorch's pytorch_half_pixel (sizes > 1)
        attrs = dict(mode="linear", coordinate_transformation_mode=(
            "align_corners" if op.align_corners else "half_pixel"))
    return e.emit("Resize", [ins[0], "", scales], n, n, doc, **attrs)


def _flatten(e: _Emitter, n: str, op: O.Flatten, ins: list[str], doc: str) -> str:
    return e.emit("Flatten", [ins[0]], n, n, doc, axis=1)


def _linear(e: _Emitter, n: str, op: O.Linear, ins: list[str], doc: str) -> str:
    args = [ins[0], e.param(n, "weight")]
    if op.bias:
        args.append(e.param(n, "bias"))
    return e.emit("Gemm", args, n, n, doc, transB=1)


def _softmax(e: _Emitter, n: str, op: O.Softmax, ins: list[str], doc: str) -> str:
    return e.emit("Softmax", [ins[0]], n, n, doc, axis=1)


def _concat(e: _Emitter, n: str, op: O.Concat, ins: list[str], doc: str) -> str:
    return e.emit("Concat", ins, n, n, doc, axis=1)


def _binary(op_type: str) -> Rule:
    def rule(e: _Emitter, n: str, op: O.Op, ins: list[str], doc: str) -> str:
        return e.emit(op_type, ins, n, n, doc)
    return rule


def _alias(e: _Emitter, n: str, op: O.Op, ins: list[str], doc: str) -> str:
    return ins[0]


RULES: dict[type[O.Op], Rule] = {
    O.Conv2d: _conv,
    O.ConvTranspose2d: _conv_t,
    O.FusedConv2d: _fused,
    O.BatchNorm2d: _bn,
    O.LocalResponseNorm: _lrn,
    **{t: _act_rule for t in (O.ReLU, O.LeakyReLU, O.ReLU6, O.Sigmoid, O.HardSigmoid,
                              O.Tanh, O.HardSwish, O.SiLU)},
    O.Softmax: _softmax,
    O.MaxPool2d: _maxpool,
    O.AvgPool2d: _avgpool,
    O.AdaptiveAvgPool2d: _adaptive,
    O.GlobalAvgPool: _global,
    O.Upsample: _upsample,
    O.Flatten: _flatten,
    O.Linear: _linear,
    O.Concat: _concat,
    O.Add: _binary("Add"),
    O.Mul: _binary("Mul"),
    O.Dropout: _alias,
    O.Identity: _alias,
}  # type: ignore[dict-item]
"""ONNX rule per op type (exact type: a new op kind needs its own rule)."""


# --------------------------------------------------------------------------- to_onnx


def _batch_dim(batch: int | str) -> int | str:
    if batch == "dynamic":
        return "N"
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch must be 'dynamic' or a positive integer, got {batch!r}")
    return batch


def resolve_weights(graph: Graph, weights: Any = None, seed: int = 0, mode: str = "torchvision",
                    max_params: float = 2e9) -> Weights:
    """The arrays to export: a dict, a PyTorch module's state, or ``graph.weights``/seeded."""
    return ensure_weights(with_weights(graph, weights), seed, mode, max_params)


def to_onnx(graph: Graph, weights: Any = None, seed: int = 0, batch: int | str = "dynamic",
            opset: int = DEFAULT_OPSET, mode: str = "torchvision",
            max_params: float = 2e9) -> onnx.ModelProto:
    """The graph as an ONNX model (see the module docstring for the op mapping).

    ``weights``: ``{node: {name: array}}`` in PyTorch layouts, a ``torch.nn.Module``
    built by the PyTorch backend, or None for ``graph.weights`` completed with the
    seeded initialiser (``seed``, ``mode`` as in :func:`cnnir.weights.init_weights`).
    ``batch``: ``"dynamic"`` (a symbolic ``N``) or a fixed size.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise UsageError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    if opset > onnx.defs.onnx_opset_version():
        raise UsageError(f"opset {opset} is newer than this onnx package supports "
                         f"({onnx.defs.onnx_opset_version()})")
    bdim = _batch_dim(batch)
    arrays = resolve_weights(graph, weights, seed, mode, max_params)
    e = _Emitter(graph, arrays)
    inputs: list[onnx.ValueInfoProto] = []
    for n in graph.nodes():
        op = graph.op(n)
        if isinstance(op, O.Input):
            inputs.append(helper.make_tensor_value_info(
                n, TensorProto.FLOAT, [bdim, *op.shape]))
            e.tensors.add(n)
            e.tensor[n] = n
            continue
        rule = RULES.get(type(op))
        if rule is None:
            raise BackendError(
                f"onnx: no ONNX rule for op '{op.kind}' of layer '{n}'",
                loc=graph.loc(n), node=n)
        ins = [e.tensor[s] for s in graph.inputs(n)]
        try:
            e.tensor[n] = rule(e, n, op, ins, _doc(graph, n))
        except BackendError as exc:
            raise exc.with_context(graph.loc(n), n) from None
    outputs: list[onnx.ValueInfoProto] = []
    done: set[str] = set()
    for o in graph.outputs:
        t = e.tensor[o]
        if t != o or o in (v.name for v in inputs) or o in done:
            t = e.emit("Identity", [t], o if o not in e.tensors else f"{o}:output",
                       f"{o}:output", _doc(graph, o))
        done.add(t)
        outputs.append(helper.make_tensor_value_info(
            t, TensorProto.FLOAT, [bdim, *graph.shape(o)]))
    model = e.model
    g = model.graph
    g.name = graph.name
    g.doc_string = f"cnnir graph '{graph.name}'"
    g.node.extend(e.nodes)
    g.input.extend(inputs)
    g.output.extend(outputs)
    opsets = [helper.make_opsetid("", opset)]
    model.opset_import.extend(opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.producer_name = "cnnir"
    model.producer_version = __version__
    model.doc_string = (f"{graph.name}, compiled by cnnir {__version__}"
                        + (f" from {graph.source}" if graph.source else ""))
    helper.set_model_props(model, {
        "cnnir_version": __version__,
        "source": graph.source or "",
        "model": graph.name,
        "input_shape": "x".join(str(d) for d in graph.input_shape),
    })
    return model


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers (what pushes a model past protobuf's 2 GB)."""
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data) if t.raw_data else np.dtype(
            helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize * int(np.prod(t.dims))
    return total


def needs_external(model: onnx.ModelProto, threshold: int | None = None) -> bool:
    """True when the weights alone come near protobuf's 2 GB limit."""
    return tensor_bytes(model) >= (EXTERNAL_THRESHOLD if threshold is None else threshold)


def save(model: onnx.ModelProto, path: str, external_data: bool | None = None,
         threshold: int | None = None) -> list[str]:
    """Write ``model`` to ``path`` atomically; returns the files written.

    ``external_data``: True puts the weights in ``path + ".data"``; None does so only
    when the initializers reach ``threshold`` bytes (default :data:`EXTERNAL_THRESHOLD`,
    below protobuf's 2 GB limit).  Both
    files are written under temporary names beside ``path`` and renamed into place.
    """
    check_writable(path)
    if external_data is None:
        external_data = needs_external(model, threshold)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmpdir = tempfile.mkdtemp(prefix=".cnnir-", dir=directory)
    try:
        tmp = os.path.join(tmpdir, base)
        if external_data:
            data_name = base + ".data"
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            onnx.save_model(copy, tmp, save_as_external_data=True,
                            all_tensors_to_one_file=True, location=data_name,
                            size_threshold=0)
            os.replace(os.path.join(tmpdir, data_name), os.path.join(directory, data_name))
            os.replace(tmp, path)
            return [path, os.path.join(os.path.dirname(path), data_name)]
        with open(tmp, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, path)
        return [path]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------- batch


def parse_batch(text: Any) -> int | str:
    """``--batch``: ``"dynamic"`` or a positive integer."""
    if text is None or text == "dynamic":
        return "dynamic"
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text))
        except ValueError:
            value = 0
    if value < 1:
        raise UsageError(f"--batch must be 'dynamic' or a positive integer, got {text!r}")
    return value


__all__ = ["to_onnx", "save", "resolve_weights", "bin_matrix", "tensor_bytes",
           "needs_external", "parse_batch", "RULES", "DEFAULT_OPSET", "EXTERNAL_THRESHOLD"]
