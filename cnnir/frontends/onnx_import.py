"""ONNX import: ``cnnir report model.onnx`` on the files real exporters write.

:func:`load_onnx` reads a ``.onnx`` file (``onnx`` is imported here only) and
returns a :class:`~cnnir.ir.Graph` with the file's weights in
``graph.weights`` (PyTorch layouts, see :mod:`cnnir.weights`), so
ONNX -> IR -> PyTorch module computes what the file computes.

Operators
---------
Conv, ConvTranspose, BatchNormalization, Relu, LeakyRelu, Clip (``[0, 6]`` is
relu6, ``[0, inf)`` relu), Sigmoid, HardSigmoid (PyTorch's ``alpha=1/6``),
HardSwish, Tanh, Softmax (channel / feature axis), Add and Mul of two feature
maps (broadcasting), Concat (channel axis), MaxPool, AveragePool,
GlobalAveragePool, ReduceMean over H and W, Flatten, Reshape / Squeeze used as a
flatten, Gemm and MatMul (+ Add of a bias) as Linear, Identity, Dropout, LRN,
Resize / Upsample by an integer scale (nearest, or bilinear), and Pad with zeros
in front of a Conv (folded into the conv's padding).

Constant subgraphs are evaluated with numpy: Constant, Shape, Gather, Unsqueeze,
Squeeze, Concat, Slice, Cast, arithmetic and Reshape on constants.  This covers
the ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chain exporters emit
for ``x.view(x.size(0), -1)``.  The batch size stays symbolic.

What cannot be mapped is an error, never dropped or counted as zero: every
operator type without a mapping is listed in one message (with a node name
each); a mapped operator whose attributes have no IR equivalent (a Clip to
``[-1, 1]``, a Mul by a constant, an Add of a constant that is no bias, a
reflect Pad) names the node and says why.

Input size comes from the file; ``--input CxHxW`` overrides it and is required
when the file's channel or spatial sizes are symbolic.  Names and scopes come
from node names and, for files written by the dynamo exporter, from its
``pkg.torch.onnx.name_scopes`` metadata (see :mod:`cnnir.frontends.importing`
for the naming rules: ``/layer1/layer1.0/conv1/Conv`` -> ``layer1/0/conv1``).
Every node's location is the file (``SourceLoc(path, 0)``); messages name the
ONNX node.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops as O
from ..errors import CnnirError, FrontendError
from ..ir import Graph, SourceLoc
from ..ops import TensorShape
from .importing import BATCH, Importer, qualified_path, sanitize, scoped_path


def load_onnx(path: str, input: tuple[int, ...] | None = None) -> Graph:
    """Read an ONNX file as an IR graph (shapes not yet inferred by the caller)."""
    model = _read(path)
    return _Converter(model, path, input).run()


def from_onnx_model(model: Any, name: str = "model", input: tuple[int, ...] | None = None
                    ) -> Graph:
    """An in-memory ``onnx.ModelProto`` as an IR graph with shapes inferred.

    ``name`` stands for the file in messages and names the graph.
    """
    from ..passes.infer_shapes import infer_shapes

    return infer_shapes(_Converter(model, name, input).run())


# --------------------------------------------------------------------------- reading


def _read(path: str) -> Any:
    import onnx

    loc = SourceLoc(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FrontendError(f"cannot read {path}: {exc.strerror}", loc=loc) from None
    if not data:
        raise FrontendError("empty file, not an ONNX model", loc=loc)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise FrontendError(f"not a readable ONNX model (truncated or another format): "
                            f"{type(exc).__name__}: {exc}".rstrip(": "), loc=loc) from None
    if model.ir_version < 1 or not model.HasField("graph") or not model.graph.node:
        raise FrontendError("not an ONNX model: no graph or no nodes (truncated or another "
                            "format?)", loc=loc)
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except Exception as exc:
        raise FrontendError(f"cannot load the model's external weight data: {exc}",
                            loc=loc) from None
    return model


# --------------------------------------------------------------------------- values


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


Value = Any  # int (an IR layer id) | np.ndarray (a constant) | _Padded

#: ops evaluated with numpy when all their inputs are constants
_CONST_OPS = {"Constant", "Identity", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
              "Slice", "Cast", "Mul", "Add", "Sub", "Div", "Reshape", "ConstantOfShape",
              "Flatten", "Range", "Size"}


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


class _Converter:
    def __init__(self, model: Any, path: str, input: tuple[int, ...] | None) -> None:
        self.model = model
        self.g = model.graph
        self.path = path
        self.loc = SourceLoc(path)
        self.want_input = input
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        stem = os.path.splitext(os.path.basename(path))[0]
        self.imp = Importer(sanitize(stem) if stem else "model")
        self.values: dict[str, Value] = {}
        self.consumers: dict[str, list[Any]] = {}
        self.graph_outputs = {o.name for o in self.g.output}
        self.file_batch: int | None = None
        self.dynamo = False

    # ------------------------------------------------------------------ driver

    def err(self, node: Any, msg: str) -> FrontendError:
        return FrontendError(f"{node.op_type} node '{node.name or node.output[0]}': {msg}",
                             loc=self.loc)

    def run(self) -> Graph:
        from onnx import numpy_helper

        inits = {}
        for t in self.g.initializer:
            try:
                inits[t.name] = numpy_helper.to_array(t)
            except Exception as exc:
                raise FrontendError(f"initializer '{t.name}' cannot be read: {exc}",
                                    loc=self.loc) from None
        self.values.update(inits)
        real_inputs = [i for i in self.g.input if i.name not in inits]
        order = self._topo_order(set(inits) | {i.name for i in self.g.input})
        for node in order:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.dynamo = any(p.key == "pkg.torch.onnx.name_scopes"
                          for n in order for p in n.metadata_props)
        self._check_supported(order, set(inits))
        if len(real_inputs) != 1:
            names = ", ".join(f"'{i.name}'" for i in real_inputs) or "none"
            raise FrontendError(f"cnnir imports models with one input; this one has {names}",
                                loc=self.loc)
        self._add_input(real_inputs[0])
        for node in order:
            self._convert(node)
        outs = []
        for o in self.g.output:
            v = self.values.get(o.name)
            if not isinstance(v, (int, np.integer)):
                raise FrontendError(f"graph output '{o.name}' is not computed by a layer cnnir "
                                    f"can represent (a constant or a pending Pad)", loc=self.loc)
            outs.append(int(v))
        if not outs:
            raise FrontendError("the model has no outputs", loc=self.loc)
        return self.imp.build(outs, source=self.path)

    def _topo_order(self, known: set[str]) -> list[Any]:
        """Nodes in dependency order; a cycle or a tensor nobody produces is an error."""
        import networkx as nx

        nodes = list(self.g.node)
        producer: dict[str, int] = {}
        for i, n in enumerate(nodes):
            for o in n.output:
                if o:
                    producer[o] = i
        dep = nx.DiGraph()
        dep.add_nodes_from(range(len(nodes)))
        for i, n in enumerate(nodes):
            for name in n.input:
                if not name:
                    continue
                if name in producer:
                    dep.add_edge(producer[name], i)
                elif name not in known:
                    raise FrontendError(
                        f"{n.op_type} node '{n.name or n.output[0]}' reads '{name}', which is "
                        f"neither a graph input, an initializer nor any node's output "
                        f"(a missing initializer?)", loc=self.loc)
        try:
            order = list(nx.lexicographical_topological_sort(dep))
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(dep)
            names = [f"'{nodes[u].name or nodes[u].output[0]}'" for u, _ in cycle]
            raise FrontendError(f"the ONNX graph has a cycle: {' -> '.join(names)} -> {names[0]}",
                                loc=self.loc) from None
        return [nodes[i] for i in order]

    def _check_supported(self, order: list[Any], consts: set[str]) -> None:
        """One error listing every operator type cnnir cannot map (with node names)."""
        known = set(consts)
        missing: dict[str, list[str]] = {}
        for n in order:
            domain = n.domain if n.domain not in ("", "ai.onnx") else ""
            op = f"{domain}.{n.op_type}" if domain else n.op_type
            is_const = n.op_type == "Shape" or all(not i or i in known for i in n.input)
            if not domain and is_const and n.op_type in _CONST_OPS:
                known.update(o for o in n.output if o)
                continue
            if domain or n.op_type not in _HANDLERS:
                missing.setdefault(op, []).append(n.name or n.output[0])
        if missing:
            parts = []
            for op, names in sorted(missing.items()):
                shown = ", ".join(f"'{x}'" for x in names[:2])
                more = f" and {len(names) - 2} more" if len(names) > 2 else ""
                parts.append(f"{op} (node{'s' if len(names) > 1 else ''} {shown}{more})")
            raise FrontendError(
                f"cannot import: unsupported ONNX operator{'s' if len(parts) > 1 else ''} "
                f"{'; '.join(parts)}; cnnir maps {', '.join(sorted(_HANDLERS))}",
                loc=self.loc)

    def _add_input(self, inp: Any) -> None:
        dims: list[int | str] = []
        for d in inp.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or "?")
        if len(dims) not in (2, 4):
            raise FrontendError(
                f"input '{inp.name}' has shape [{', '.join(map(str, dims))}]; cnnir imports "
                f"NxCxHxW (or NxF) inputs", loc=self.loc)
        self.file_batch = dims[0] if isinstance(dims[0], int) else None
        per_sample = dims[1:]
        if self.want_input is not None:
            want = tuple(self.want_input)
            if len(want) != len(per_sample):
                raise FrontendError(f"--input {'x'.join(map(str, want))} does not fit input "
                                    f"'{inp.name}' of shape [{', '.join(map(str, dims))}]",
                                    loc=self.loc)
            if isinstance(per_sample[0], int) and per_sample[0] != want[0]:
                raise FrontendError(f"--input has {want[0]} channels but input '{inp.name}' has "
                                    f"{per_sample[0]}", loc=self.loc)
            shape = want
        else:
            if not all(isinstance(d, int) for d in per_sample):
                raise FrontendError(
                    f"input '{inp.name}' has symbolic size [{', '.join(map(str, dims))}]; give "
                    f"it with --input CxHxW (input=(C, H, W) from Python)", loc=self.loc)
            shape = tuple(int(d) for d in per_sample)  # type: ignore[arg-type]
        self.values[inp.name] = self.imp.add(O.Input(shape), [], (sanitize(inp.name),), "input",
                                             f"input '{inp.name}'", self.loc)

    # ------------------------------------------------------------------ per node

    def _convert(self, node: Any) -> None:
        ins = [self.values.get(i) if i else None for i in node.input]
        if node.op_type == "Shape" and isinstance(ins[0], (int, np.integer)):
            a = _attrs(node)
            dims = np.array([BATCH, *self.imp.shape(int(ins[0]))], dtype=np.int64)
            self.values[node.output[0]] = dims[a.get("start", 0):a.get("end")]
            return
        if all(
                v is None or isinstance(v, np.ndarray) for v, name in zip(ins, node.input)
                if name) and node.op_type in _CONST_OPS:
            try:
                outs = _eval_const(self, node, ins)
            except CnnirError:
                raise
            except Exception as exc:
                raise self.err(node, f"cannot evaluate on constants: {exc}") from None
            for name, v in zip(node.output, outs):
                if name:
                    self.values[name] = np.asarray(v)
            return
        handler = _HANDLERS.get(node.op_type)
        if handler is None:  # pragma: no cover - _check_supported ran first
            raise self.err(node, "unsupported operator")
        try:
            result = handler(self, node, ins, _attrs(node))
        except CnnirError as exc:
            if exc.msg.startswith(f"{node.op_type} node "):
                raise
            raise self.err(node, exc.msg) from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # a malformed node
            raise self.err(node, f"malformed node ({type(exc).__name__}: {exc})") from None
        self.values[node.output[0]] = result
        for extra in node.output[1:]:
            if extra and (self.consumers.get(extra) or extra in self.graph_outputs):
                raise self.err(node, f"its output '{extra}' is used; cnnir maps only the "
                               f"first output of {node.op_type}")

    # ------------------------------------------------------------------ helpers for handlers

    def path_of(self, node: Any, weight: str | None = None) -> tuple[tuple[str, ...], bool]:
        """(module path, whether it is a torch.nn leaf module) of the layer made from ``node``."""
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if scopes:
            try:
                import ast

                parts = [s for s in ast.literal_eval(scopes) if isinstance(s, str)]
                classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
            except (ValueError, SyntaxError):
                parts, classes = [], []
            if weight and re.fullmatch(r"[A-Za-z_][\w.]*\.weight", weight):
                return qualified_path(weight[: -len(".weight")]), True
            modules = parts[1:-1] if len(parts) > 2 else []
            classes = classes[1:len(modules) + 1]
            self._record_classes(modules, classes)
            leaf = bool(classes) and str(classes[-1]).startswith("torch.nn.modules.")
            return (qualified_path(modules[-1]) if modules else ()), leaf
        comps = [c for c in (node.name or "").split("/") if c]
        if comps and re.fullmatch(re.escape(node.op_type) + r"(_\d+)?", comps[-1]):
            comps = comps[:-1]
        return scoped_path(comps), False

    def _record_classes(self, modules: list[str], classes: list[Any]) -> None:
        for mod, cls in zip(modules, classes):
            if isinstance(cls, str):
                self.imp.classes.setdefault(qualified_path(mod), cls.rsplit(".", 1)[-1])

    def add(self, node: Any, op: O.Op, inputs: list[int], hint: str,
            weights: dict[str, Any] | None = None, weight_name: str | None = None) -> int:
        path, leaf = self.path_of(node, weight_name)
        what = f"{node.op_type} node '{node.name or node.output[0]}'"
        if weights:
            weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        return self.imp.add(op, inputs, path, hint, what, self.loc, weights, leaf=leaf)

    def ir(self, node: Any, ins: list[Value], i: int = 0, allow_pad: bool = False) -> Any:
        v = ins[i] if i < len(ins) else None
        if isinstance(v, _RowPooled):
            raise self.err(node, f"reads the output of MatMul '{v.node}', which multiplies a "
                           f"feature map by a pooling matrix; cnnir maps that only when a "
                           f"second MatMul completes an adaptive average pool")
        if isinstance(v, _Padded):
            if allow_pad:
                return v
            raise self.err(node, f"reads the output of Pad '{v.node}'; cnnir folds a zero Pad "
                           f"only into a following Conv (or AveragePool counting the padding)")
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, np.ndarray):
            raise self.err(node, f"input {i} ('{node.input[i]}') is a constant, not a feature "
                           f"map; cnnir has no op for it")
        raise self.err(node, f"input {i} is missing")

    def const(self, node: Any, ins: list[Value], i: int, what: str,
              optional: bool = False) -> np.ndarray | None:
        v = ins[i] if i < len(ins) and node.input[i] else None
        if v is None:
            if optional:
                return None
            raise self.err(node, f"{what} (input {i}) is missing")
        if not isinstance(v, np.ndarray):
            raise self.err(node, f"{what} ('{node.input[i]}') must be a constant (an "
                           f"initializer), but the graph computes it")
        return v

    def shape(self, i: int) -> TensorShape:
        return self.imp.shape(i)

    def only_user(self, node: Any) -> bool:
        out = node.output[0]
        return len(self.consumers.get(out, [])) == 1 and out not in self.graph_outputs


# --------------------------------------------------------------------------- constants


def _eval_const(cv: _Converter, node: Any, ins: list[Any]) -> list[Any]:
    a = _attrs(node)
    op = node.op_type
    x = ins[0] if ins else None
    if op == "Constant":
        from onnx import numpy_helper

        if "value" in a:
            return [numpy_helper.to_array(a["value"])]
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return [np.array(a[key], dtype=dtype)]
        raise cv.err(node, f"unsupported Constant attribute(s) {', '.join(a)}")
    if op == "Identity":
        return [x]
    if op == "Shape":
        return [np.array(x.shape, dtype=np.int64)[a.get("start", 0):a.get("end")]]
    if op == "Size":
        return [np.array(x.size, dtype=np.int64)]
    if op == "Gather":
        return [np.take(x, ins[1], axis=a.get("axis", 0))]
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in np.atleast_1d(ins[1])]
        if op == "Squeeze":
            return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))]
        rank = x.ndim + len(axes)
        out = x
        for ax in sorted(v % rank for v in axes):
            out = np.expand_dims(out, ax)
        return [out]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(v) for v in ins], axis=a.get("axis", 0))]
    if op == "Slice":
        if cv.opset < 10:
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
        else:
            starts, ends = list(ins[1]), list(ins[2])
            axes = list(ins[3]) if len(ins) > 3 and ins[3] is not None else None
            steps = list(ins[4]) if len(ins) > 4 and ins[4] is not None else None
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return [x[tuple(sl)]]
    if op == "Cast":
        from onnx import helper

        return [x.astype(helper.tensor_dtype_to_np_dtype(a["to"]))]
    if op in ("Mul", "Add", "Sub", "Div"):
        if np.any(np.asarray(x) == BATCH) or np.any(np.asarray(ins[1]) == BATCH):
            raise cv.err(node, "arithmetic on the symbolic batch size is not supported")
        if op == "Div" and np.issubdtype(np.asarray(x).dtype, np.integer):
            return [np.trunc(np.asarray(x) / ins[1]).astype(np.asarray(x).dtype)]
        fn = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[op]
        return [fn(x, ins[1])]
    if op == "Reshape":
        target = [int(v) for v in ins[1]]
        target = [x.shape[i] if v == 0 and not a.get("allowzero") else v
                  for i, v in enumerate(target)]
        return [np.reshape(x, target)]
    if op == "Flatten":
        ax = a.get("axis", 1)
        return [np.reshape(x, (int(np.prod(x.shape[:ax])), -1))]
    if op == "ConstantOfShape":
        from onnx import numpy_helper

        fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full([int(v) for v in x], fill.reshape(-1)[0], dtype=fill.dtype)]
    if op == "Range":
        return [np.arange(x, ins[1], ins[2])]
    raise cv.err(node, "cannot evaluate on constants")  # pragma: no cover


# --------------------------------------------------------------------------- handlers


def _spatial(cv: _Converter, node: Any, a: dict[str, Any], key: str, default: int) -> tuple:
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
    xv = cv.ir(node, ins, 0, allow_pad=True)
    extra = (0, 0, 0, 0)
    if isinstance(xv, _Padded):
        xv, extra = xv.src, xv.pads
    s = _map_input(cv, node, xv)
    w = cv.const(node, ins, 1, "the weight")
    b = cv.const(node, ins, 2, "the bias", optional=True)
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
    pads = _pads(cv, node, a, s, kernel, stride, dil)
    pads = tuple(p + e for p, e in zip(pads, extra))
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
    b = cv.const(node, ins, 2, "the bias", optional=True)
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
        lo_a = cv.const(node, ins, 1, "min", optional=True)
        hi_a = cv.const(node, ins, 2, "max", optional=True)
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


def _pool_common(cv: _Converter, node: Any, ins: list[Value], a: dict[str, Any], allow_pad: bool
                 ) -> tuple[int, tuple, tuple, tuple, bool]:
    xv = cv.ir(node, ins, 0, allow_pad=allow_pad)
    extra = (0, 0, 0, 0)
    if isinstance(xv, _Padded):
        xv, extra = xv.src, xv.pads
    s = _map_input(cv, node, xv)
    kernel = _spatial(cv, node, a, "kernel_shape", 1)
    stride = _spatial(cv, node, a, "strides", 1)
    if _spatial(cv, node, a, "dilations", 1) != (1, 1):
        raise cv.err(node, "dilated pooling has no IR op")
    pads = _pads(cv, node, a, s, kernel, stride, (1, 1))
    pads = tuple(p + e for p, e in zip(pads, extra))
    return xv, kernel, stride, pads, bool(a.get("ceil_mode", 0))


def _as_ceil(shape: TensorShape, k: tuple, s: tuple, p: tuple, ceil: bool) -> tuple[tuple, bool]:
    """Extra end padding (how ``ceil_mode`` is often exported) back as ``ceil_mode``.

    Padding ``(t, l, b, r)`` with ``b > t`` or ``r > l`` gives the same windows as
    padding ``(t, l, t, l)`` with ``ceil_mode`` when both give the same output size:
    the extra windows only reach into padding, which a max pool (and an average
    that excludes padding) ignores.  Keeps pool padding within half the kernel.
    """
    if ceil or (p[2] <= p[0] and p[3] <= p[1]):
        return p, ceil
    sym = (p[0], p[1], p[0], p[1])
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
    padded = isinstance(ins[0], _Padded)
    if padded and not a.get("count_include_pad", 0):
        raise cv.err(node, "a zero Pad folds into an AveragePool only with count_include_pad=1")
    x, k, s, p, ceil = _pool_common(cv, node, ins, a, allow_pad=True)
    include = bool(a.get("count_include_pad", 0)) or not any(p)
    if not include:
        p, ceil = _as_ceil(cv.shape(x), k, s, p, ceil)
        include = not any(p)
    return cv.add(node, O.AvgPool2d(k, s, p, ceil, include), [x], "avgpool")


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
    c = cv.const(node, ins, 2, "the bias (C)", optional=True)
    if c is not None:
        if c.size not in (1, w.shape[0]):
            raise cv.err(node, f"bias of shape {list(c.shape)} does not fit {w.shape[0]} outputs")
        weights["bias"] = np.broadcast_to(c.reshape(-1) * beta, (w.shape[0],)).copy()
    name = node.input[1] if a.get("transB", 0) else None
    return cv.add(node, O.Linear(int(w.shape[0]), c is not None), [x], "fc", weights, name)


def bin_matrix(size: int, out: int) -> np.ndarray:
    """``(out, size)``: row i averages PyTorch's adaptive-pool bin i of an axis of ``size``."""
    m = np.zeros((out, size), np.float64)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


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
    scales = sizes = None
    if node.op_type == "Upsample" and "scales" in a:
        scales = list(a["scales"])
    elif node.op_type == "Upsample" or cv.opset < 11:
        scales = list(cv.const(node, ins, 1, "scales"))
    else:
        sc = cv.const(node, ins, 2, "scales", optional=True)
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
        cval = cv.const(node, ins, 2, "constant_value", optional=True)
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


_HANDLERS: dict[str, Callable[..., Any]] = {
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


__all__ = ["load_onnx", "from_onnx_model"]
