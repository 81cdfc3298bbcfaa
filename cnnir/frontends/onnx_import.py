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
ONNX node.  A file cnnir wrote also carries its blocks' kinds and repeats
(``cnnir_blocks`` metadata), restored here: the round trip reports the DSL's blocks.

This module reads the file, orders and checks the graph, evaluates constants and
drives the conversion; the per-operator rules are :mod:`cnnir.frontends.onnx_rules`,
registered in the ``onnx-import`` rule table of :mod:`cnnir.frontends.onnx_support`
with every attribute and input each operator has in the ONNX spec (opsets 7 and
later), handled or refused: an attribute outside that list is refused by name.  The
input must be float32 (cnnir computes, and re-emits, float32 tensors).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import ops as O
from ..errors import CnnirError, FrontendError
from ..ir import Graph, SourceLoc
from . import onnx_rules  # noqa: F401  (registers the rules in ONNX)
from .importing import BATCH, Importer, sanitize
from .onnx_support import ONNX, SPECS, NodeContext, OpSpec, Value, attrs


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


#: the newest opset whose spec the rules' attribute lists were checked against
_LATEST = 28

#: ops evaluated with numpy when all their inputs are constants, with the attributes and
#: inputs the evaluation reads (every one the ONNX spec gives them, opsets 7 and later)
#: or refuses (checked by tests/frontends/test_onnx_spec.py like the rules' lists)
CONST_SPECS: dict[str, OpSpec] = {
    "Constant": OpSpec(("value", "value_float", "value_floats", "value_int", "value_ints"),
                       {"sparse_value": "always", "value_string": "always",
                        "value_strings": "always"}),
    "Identity": OpSpec(("input",)),
    "Shape": OpSpec(("data", "start", "end")),
    "Size": OpSpec(("data",)),
    "Gather": OpSpec(("data", "indices", "axis")),
    "Unsqueeze": OpSpec(("data", "axes")),
    "Squeeze": OpSpec(("data", "axes")),
    "Concat": OpSpec(("inputs", "axis")),
    "Slice": OpSpec(("data", "starts", "ends", "axes", "steps")),
    # saturate and round_mode act on float8 targets only, which numpy has not
    "Cast": OpSpec(("input", "to", "saturate", "round_mode")),
    **{op: OpSpec(("A", "B")) for op in ("Mul", "Add", "Sub", "Div")},
    "Reshape": OpSpec(("data", "shape", "allowzero")),
    "ConstantOfShape": OpSpec(("input", "value")),
    "Flatten": OpSpec(("input", "axis")),
    # stash_type: the precision of float16 ranges (shape arithmetic is int64)
    "Range": OpSpec(("start", "limit", "delta", "stash_type")),
    # the shape arithmetic of TF "same" padding (timm's pad_same: ceil, clamp, // 2)
    **{op: OpSpec(("X",)) for op in ("Ceil", "Floor", "Neg", "Abs", "Sqrt", "Reciprocal")},
    "Clip": OpSpec(("input", "min", "max")),
    **{op: OpSpec(("data_0",)) for op in ("Max", "Min")},
    "Pow": OpSpec(("X", "Y")),
    "Transpose": OpSpec(("data", "perm")),
    # weight standardisation computed in the graph from initializers (NFNet's
    # ScaledStdConv2d): the statistics and the normalisation of the weight
    **{op: OpSpec(("data", "axes", "keepdims", "noop_with_empty_axes"))
       for op in ("ReduceMean", "ReduceSum")},
    "BatchNormalization": OpSpec(
        ("X", "scale", "B", "mean", "var", "input_mean", "input_var", "epsilon", "momentum",
         "training_mode"), {"spatial": "=0 (per-activation statistics)"}),
}
_CONST_OPS = set(CONST_SPECS)


class _Converter(NodeContext):
    def __init__(self, model: Any, path: str, input: tuple[int, ...] | None) -> None:
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        stem = os.path.splitext(os.path.basename(path))[0]
        super().__init__(path, opset, Importer(sanitize(stem) if stem else "model"))
        self.model = model
        self.g = model.graph
        self.want_input = input
        self.values: dict[str, Value] = {}
        self.graph_outputs = {o.name for o in self.g.output}
        self._schemas: dict[str, set[str] | None] = {}

    # ------------------------------------------------------------------ driver

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
        # model data: the float initializers (an int64 one holds shapes, axes, pads)
        self.learned.update(k for k, v in inits.items() if np.issubdtype(v.dtype, np.floating))
        self.inits = inits
        real_inputs = [i for i in self.g.input if i.name not in inits]
        order = self._topo_order(set(inits) | {i.name for i in self.g.input})
        for node in order:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
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
        self._read_blocks()
        return self.imp.build(outs, source=self.path)

    def _read_blocks(self) -> None:
        """Block kinds and repeats from a cnnir-written file's ``cnnir_blocks``
        metadata (see :func:`cnnir.backends.onnx_export.blocks_json`), so that a
        round trip reports the DSL's block rows (``block:scope``, ``basic x 2``)
        instead of kinds guessed from the scope names."""
        import json

        text = next((p.value for p in self.model.metadata_props if p.key == "cnnir_blocks"),
                    None)
        if text is None:
            return
        bad = FrontendError("model metadata 'cnnir_blocks' is not the list of blocks cnnir "
                            "writes ({\"scope\": ..., \"kind\": ..., \"repeat\": ...})",
                            loc=self.loc)
        try:
            entries = json.loads(text)
        except ValueError:
            raise bad from None
        if not isinstance(entries, list):
            raise bad
        for e in entries:
            if not (isinstance(e, dict) and isinstance(e.get("scope"), str)
                    and isinstance(e.get("kind"), str)):
                raise bad
            scope = tuple(sanitize(c) for c in e["scope"].split("/") if c)
            self.imp.classes[scope] = e["kind"]
            rep = e.get("repeat")
            if rep is not None:
                if not (isinstance(rep, list) and len(rep) == 3
                        and all(isinstance(v, int) for v in rep)):
                    raise bad
                self.imp.repeats[scope] = (rep[0], rep[1], rep[2])

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
            if domain or n.op_type not in ONNX:
                missing.setdefault(op, []).append(n.name or n.output[0])
        if missing:
            parts = []
            for op, names in sorted(missing.items()):
                shown = ", ".join(f"'{x}'" for x in names[:2])
                more = f" and {len(names) - 2} more" if len(names) > 2 else ""
                parts.append(f"{op} (node{'s' if len(names) > 1 else ''} {shown}{more})")
            raise FrontendError(
                f"cannot import: unsupported ONNX operator{'s' if len(parts) > 1 else ''} "
                f"{'; '.join(parts)}; cnnir maps {', '.join(sorted(map(str, ONNX.keys())))}",
                loc=self.loc)

    def _add_input(self, inp: Any) -> None:
        from onnx import TensorProto

        elem = inp.type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            name = TensorProto.DataType.Name(elem).lower() if elem in \
                TensorProto.DataType.values() else str(elem)
            raise FrontendError(
                f"input '{inp.name}' is {name}; cnnir imports float32 inputs only (it "
                f"computes, and re-emits, float32 tensors)", loc=self.loc)
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

    def recompute(self, name: str, subst: dict[str, np.ndarray]) -> np.ndarray:
        """The constant ``name`` with the initializers in ``subst`` replaced."""
        if name in subst:
            return subst[name]
        recipe = self.recipes.get(name)
        if recipe is None or not set(subst) & set(self.sources(name)):
            return np.asarray(self.values[name])
        node, k = recipe
        ins = [self.recompute(i, subst) if i else None for i in node.input]
        return np.asarray(_eval_const(self, node, ins)[k])

    # ------------------------------------------------------------------ per node

    def _schema_attributes(self, op_type: str) -> set[str] | None:
        """The attribute names of ``op_type`` at the model's opset (None: no such schema)."""
        if op_type not in self._schemas:
            import onnx.defs

            try:
                names: set[str] | None = set(
                    onnx.defs.get_schema(op_type, self.opset).attributes)
            except onnx.defs.SchemaError:
                names = None
            self._schemas[op_type] = names
        return self._schemas[op_type]

    def _check_attributes(self, node: Any, spec: OpSpec, what: str) -> None:
        """Refuse an attribute the op's rule does not list (a newer opset's, or a typo)."""
        unknown = [x.name for x in node.attribute if x.name not in spec.known]
        if not unknown:
            schema = self._schema_attributes(node.op_type)
            late = [x.name for x in node.attribute if schema is not None and x.name not in schema]
            if late:
                raise self.err(node, f"attribute{'s' if len(late) > 1 else ''} "
                               f"{', '.join(repr(u) for u in late)} not in {node.op_type}'s "
                               f"spec at the model's opset {self.opset}; refused rather "
                               f"than read with another opset's meaning")
        if unknown:
            raise self.err(node, f"attribute{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(repr(u) for u in unknown)} unknown to cnnir's "
                           f"{node.op_type} {what} (not in the ONNX spec of opsets 7 to "
                           f"{_LATEST}); refused rather than ignored")

    def _convert(self, node: Any) -> None:
        ins = [self.values.get(i) if i else None for i in node.input]
        if node.op_type == "Shape" and isinstance(ins[0], (int, np.integer)):
            a = attrs(node)
            dims = np.array([BATCH, *self.imp.shape(int(ins[0]))], dtype=np.int64)
            self.values[node.output[0]] = dims[a.get("start", 0):a.get("end")]
            return
        if all(
                v is None or isinstance(v, np.ndarray) for v, name in zip(ins, node.input)
                if name) and node.op_type in _CONST_OPS:
            self._check_attributes(node, CONST_SPECS[node.op_type], "constant evaluation")
            try:
                outs = _eval_const(self, node, ins)
            except CnnirError:
                raise
            except Exception as exc:
                raise self.err(node, f"cannot evaluate on constants: {exc}") from None
            learned = any(name in self.learned for name in node.input if name)
            for k, (name, v) in enumerate(zip(node.output, outs)):
                if name:
                    self.values[name] = np.asarray(v)
                    self.recipes[name] = (node, k)
                    if learned:
                        self.learned.add(name)
            return
        handler = ONNX.get(node.op_type)
        if handler is None:  # pragma: no cover - _check_supported ran first
            raise self.err(node, "unsupported operator")
        self._check_attributes(node, SPECS[node.op_type], "rule")
        try:
            result = handler(self, node, ins, attrs(node))
        except CnnirError as exc:
            if exc.msg.startswith(f"{node.op_type} node "):
                raise
            raise self.err(node, exc.msg) from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # a malformed node
            raise self.err(node, f"malformed node ({type(exc).__name__}: {exc})") from None
        if isinstance(result, tuple):  # one value per output (Split)
            self.values.update((o, v) for o, v in zip(node.output, result) if o)
            return
        self.values[node.output[0]] = result
        for extra in node.output[1:]:
            if extra and (self.consumers.get(extra) or extra in self.graph_outputs):
                raise self.err(node, f"its output '{extra}' is used; cnnir maps only the "
                               f"first output of {node.op_type}")


# --------------------------------------------------------------------------- constants


def _eval_const(cv: _Converter, node: Any, ins: list[Any]) -> list[Any]:
    a = attrs(node)
    op = node.op_type
    x: Any = ins[0] if ins else None
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
        if axes is None:
            raise cv.err(node, "Unsqueeze without axes")
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
    if any(np.issubdtype(np.asarray(v).dtype, np.integer) and np.any(np.asarray(v) == BATCH)
           for v in ins if v is not None):
        raise cv.err(node, "arithmetic on the symbolic batch size is not supported")
    unary = {"Ceil": np.ceil, "Floor": np.floor, "Neg": np.negative, "Abs": np.abs,
             "Sqrt": np.sqrt, "Reciprocal": np.reciprocal}
    if op in unary:
        return [unary[op](x).astype(np.asarray(x).dtype)]
    if op == "Clip":
        lo = a.get("min") if cv.opset < 11 else (ins[1] if len(ins) > 1 else None)
        hi = a.get("max") if cv.opset < 11 else (ins[2] if len(ins) > 2 else None)
        out = np.asarray(x)
        if lo is not None:
            out = np.maximum(out, np.asarray(lo, out.dtype))
        if hi is not None:
            out = np.minimum(out, np.asarray(hi, out.dtype))
        return [out]
    if op in ("Max", "Min"):
        fn2 = np.maximum if op == "Max" else np.minimum
        out = np.asarray(ins[0])
        for v in ins[1:]:
            out = fn2(out, v)
        return [out]
    if op == "Pow":
        return [np.power(x, ins[1]).astype(np.asarray(x).dtype)]
    if op == "Transpose":
        perm = a.get("perm")
        return [np.transpose(x, None if perm is None else [int(v) for v in perm])]
    if op in ("ReduceMean", "ReduceSum"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in np.atleast_1d(ins[1])]
        if not axes and a.get("noop_with_empty_axes", 0):
            return [x]
        fn3 = np.mean if op == "ReduceMean" else np.sum
        axis = None if not axes else tuple(int(v) % x.ndim for v in axes)
        out = fn3(np.asarray(x, np.float64), axis=axis, keepdims=bool(a.get("keepdims", 1)))
        return [np.asarray(out, np.asarray(x).dtype)]
    if op == "BatchNormalization":
        return _batch_norm_const(cv, node, a, ins)
    raise cv.err(node, "cannot evaluate on constants")  # pragma: no cover


def _batch_norm_const(cv: _Converter, node: Any, a: dict[str, Any], ins: list[Any]
                     ) -> list[Any]:
    """BatchNormalization of a constant: with ``training_mode=1`` by the constant's own
    statistics over every axis but 1 (the biased variance), as ``F.batch_norm(...,
    training=True)`` standardises a weight; else by the given mean and variance.  Only
    the first output (the normalised tensor) may be read."""
    x = np.asarray(ins[0], np.float64)
    if cv.opset < 9 and not int(a.get("spatial", 1)):
        raise cv.err(node, "spatial=0 (statistics per activation) is not supported")
    if any(o and (cv.consumers.get(o) or o in cv.graph_outputs) for o in node.output[1:]):
        raise cv.err(node, "its running-statistics outputs are read; cnnir evaluates only "
                     "the normalised output of a BatchNormalization of a constant")
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if int(a.get("training_mode", 0)):
        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    else:
        mean = np.asarray(ins[3], np.float64).reshape(shape)
        var = np.asarray(ins[4], np.float64).reshape(shape)
    eps = float(a.get("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps) * np.asarray(ins[1], np.float64).reshape(shape) \
        + np.asarray(ins[2], np.float64).reshape(shape)
    return [y.astype(np.asarray(ins[0]).dtype)]


__all__ = ["load_onnx", "from_onnx_model", "CONST_SPECS"]
