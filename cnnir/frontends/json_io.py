"""The IR's own JSON form: ``cnnir compile MODEL --to json``, and ``.json`` as MODEL.

Schema (``version`` 1), one node per line so files diff well::

    {
      "format": "cnnir-ir",
      "version": 1,
      "name": "resnet18",
      "input": [3, 224, 224],
      "source": "cnnir/zoo/resnet.py",
      "nodes": [
        {"name": "input", "op": "input", "attrs": {"shape": [3, 224, 224]}, "inputs": [],
         "scope": [], "loc": "cnnir/zoo/resnet.py:60"},
        {"name": "stem/conv1", "op": "conv2d", "attrs": {"out_channels": 64, "kernel": [7, 7],
         "stride": [2, 2], "padding": [3, 3, 3, 3], ...}, "inputs": ["input"],
         "scope": ["stem"], "loc": "cnnir/zoo/resnet.py:36"},
        ...
      ],
      "outputs": ["fc"],
      "blocks": [{"scope": ["layer1", "basic2"], "kind": "basic",
                  "loc": "cnnir/zoo/resnet.py:45", "repeat": [0, 0, 1]}, ...],
      "weights": {"file": "resnet18.weights.npz", "sha256": "..."}
    }

* ``op`` is an op kind (:data:`cnnir.ops.OP_TYPES`); ``attrs`` are the op
  dataclass's fields (:meth:`cnnir.ops.Op.to_dict`): pairs and paddings as lists,
  a nested op (``fused_conv2d``'s ``conv``) as ``{"op": kind, ...}``.  Attributes
  left out take the dataclass default.  ``input`` repeats the input node's shape.
* ``loc`` is ``"file:line"`` (``"file"`` when the line is unknown) or ``null``.
  Analysis results (shapes, costs) are not stored: they are recomputed on load.
* Weights are not in the JSON.  When the graph carries weights (an imported
  ONNX or PyTorch model), ``cnnir compile --to json`` writes them beside the
  JSON as ``NAME.weights.npz`` (numpy, one array per ``node/param`` key,
  PyTorch layouts) and records its name and SHA-256 under ``"weights"``;
  loading reads it back (``allow_pickle=False``) and checks every array's shape.
  The key is optional: without it the graph has no weights.

Loading never executes code: it is ``json.loads`` plus the op dataclasses'
validation.  Every field is checked and an error names its JSON path
(``nodes[3].attrs.stride: must be at least 1, got [0, 1]``): wrong types,
unknown ops or attributes, negative sizes, dangling or duplicate names, cycles,
missing fields, an unknown format or version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import MISSING, fields
from typing import Any

from .. import ops as O
from ..errors import CnnirError, FrontendError
from ..ir import BlockInfo, Graph, SourceLoc

FORMAT = "cnnir-ir"
VERSION = 1

_TOP_KEYS = {"format", "version", "name", "input", "source", "nodes", "outputs", "blocks",
             "weights"}
_NODE_KEYS = {"name", "op", "attrs", "inputs", "scope", "loc"}
_BLOCK_KEYS = {"scope", "kind", "loc", "repeat", "stage"}


# --------------------------------------------------------------------------- writing


def _loc_str(loc: SourceLoc | None) -> str | None:
    return None if loc is None else str(loc)


def to_dict(graph: Graph, weights: dict[str, str] | None = None) -> dict[str, Any]:
    """The graph as JSON-ready data (see the module docstring)."""
    nodes = []
    for n in graph.nodes():
        op = graph.op(n)
        nodes.append({"name": n, "op": op.kind, "attrs": op.to_dict(),
                      "inputs": list(graph.inputs(n)), "scope": list(graph.scope(n)),
                      "loc": _loc_str(graph.loc(n))})
    ins = graph.input_nodes
    out: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "name": graph.name,
        "input": list(graph.input_shape) if ins else None,
        "source": graph.source, "nodes": nodes, "outputs": list(graph.outputs),
        "blocks": [{"scope": list(scope), "kind": info.kind, "loc": _loc_str(info.loc),
                    "repeat": None if info.repeat is None else list(info.repeat),
                    **({} if info.stage is None else {"stage": info.stage})}
                   for scope, info in graph.blocks.items()],
    }
    if weights is not None:
        out["weights"] = weights
    return out


def to_json(graph: Graph, weights: dict[str, str] | None = None) -> str:
    """The graph as JSON text, one node and one block per line."""
    data = to_dict(graph, weights)
    lines = ["{"]
    items = list(data.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("nodes", "blocks") and value:
            lines.append(f'  "{key}": [')
            for k, item in enumerate(value):
                sep = "," if k < len(value) - 1 else ""
                lines.append("    " + json.dumps(item) + sep)
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def weights_npz(graph: Graph) -> bytes:
    """``graph.weights`` as ``.npz`` bytes, keys ``node/param``."""
    import io

    import numpy as np

    arrays = {f"{n}/{k}": np.asarray(v) for n, d in (graph.weights or {}).items()
              for k, v in d.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


# --------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.loc = SourceLoc(path)

    def fail(self, where: str, msg: str) -> FrontendError:
        return FrontendError(f"{where}: {msg}" if where else msg, loc=self.loc)

    # -- typed field access

    def obj(self, value: Any, where: str, keys: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {_jtype(value)}")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                            f"unknown field; expected {', '.join(sorted(keys))}")
        for key in sorted(required):
            if key not in value:
                raise self.fail(f"{where}.{key}" if where else key, "missing")
        return value

    def string(self, value: Any, where: str, allow_none: bool = False,
               nonempty: bool = True) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or (nonempty and not value):
            raise self.fail(where, f"expected a non-empty string, got {_show(value)}")
        return value

    def strings(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list of strings, got {_jtype(value)}")
        return [self.string(v, f"{where}[{i}]") for i, v in enumerate(value)]  # type: ignore

    def ints(self, value: Any, where: str, n: int | None = None) -> list[int]:
        if not isinstance(value, list) or (n is not None and len(value) != n) or not all(
                _is_int(v) for v in value):
            what = f"a list of {n} integers" if n is not None else "a list of integers"
            raise self.fail(where, f"expected {what}, got {_show(value)}")
        return list(value)

    def loc_of(self, value: Any, where: str) -> SourceLoc | None:
        text = self.string(value, where, allow_none=True)
        if text is None:
            return None
        m = re.fullmatch(r"(.*):(\d+)", text)
        return SourceLoc(m.group(1), int(m.group(2))) if m else SourceLoc(text, 0)

    # -- ops

    def op(self, kind: Any, attrs: Any, where: str, attrs_at: str | None = None) -> O.Op:
        """The op ``kind`` from ``attrs``; ``attrs_at`` is the attributes' JSON path."""
        at = f"{where}.attrs" if attrs_at is None else attrs_at
        if not isinstance(kind, str):
            raise self.fail(f"{where}.op", f"expected an op kind string, got {_show(kind)}")
        cls = O.OP_TYPES.get(kind)
        if cls is None:
            raise self.fail(f"{where}.op", f"unknown op {kind!r}; known: "
                            f"{', '.join(sorted(O.OP_TYPES))}")
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, dict):
            raise self.fail(at, f"expected an object, got {_jtype(attrs)}")
        known = {f.name: f for f in fields(cls)}
        for key in attrs:
            if key not in known:
                raise self.fail(f"{at}.{key}",
                                f"{kind} has no attribute {key!r}"
                                + (f"; it has {', '.join(known)}" if known else
                                   "; it takes none"))
        args: dict[str, Any] = {}
        for name, f in known.items():
            fw = f"{at}.{name}"
            if name not in attrs:
                if f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                    raise self.fail(fw, "missing")
                continue
            args[name] = self.attr(attrs[name], str(f.type), fw)
        try:
            return cls(**args)
        except CnnirError as exc:
            field = next((n for n in known if re.search(rf"\b{n}\b", exc.msg)), None)
            raise self.fail(f"{at}.{field}" if field else at,
                            exc.msg) from None
        except TypeError as exc:  # pragma: no cover - fields are checked above
            raise self.fail(at, str(exc)) from None

    def attr(self, value: Any, typ: str, where: str) -> Any:
        optional = typ.endswith(" | None")
        base = typ[: -len(" | None")] if optional else typ
        if value is None and optional:
            return None
        if base == "int":
            if not _is_int(value):
                raise self.fail(where, f"expected an integer, got {_show(value)}")
            return value
        if base == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise self.fail(where, f"expected a number, got {_show(value)}")
            return float(value)
        if base == "bool":
            if not isinstance(value, bool):
                raise self.fail(where, f"expected true or false, got {_show(value)}")
            return value
        if base == "str":
            return self.string(value, where)
        if base == "Pair":
            if _is_int(value):
                return value
            return tuple(self.ints(value, where, 2))
        if base == "Pads":
            if _is_int(value):
                return value
            if not isinstance(value, list) or len(value) not in (2, 4):
                raise self.fail(where, f"expected 4 integers [top, left, bottom, right], "
                                f"got {_show(value)}")
            return tuple(self.ints(value, where))
        if base == "tuple[int, ...]":
            return tuple(self.ints(value, where))
        sub = getattr(O, base, None)
        if isinstance(sub, type) and issubclass(sub, O.Op):
            if not isinstance(value, dict) or "op" not in value:
                raise self.fail(where, f"expected a nested op object {{\"op\": ..., ...}}, "
                                f"got {_show(value)}")
            inner = dict(value)
            op = self.op(inner.pop("op"), inner, where, attrs_at=where)
            if not isinstance(op, sub):
                raise self.fail(f"{where}.op", f"expected a {base} op, got {op.kind!r}")
            return op
        raise self.fail(where, f"cannot read attributes of type {typ}")  # pragma: no cover

    # -- whole document

    def graph(self, doc: Any, input: tuple[int, ...] | None) -> Graph:
        import networkx as nx

        doc = self.obj(doc, "", _TOP_KEYS, {"format", "version", "name", "nodes", "outputs"})
        if doc["format"] != FORMAT:
            raise self.fail("format", f"expected {FORMAT!r}, got {_show(doc['format'])}")
        version = doc["version"]
        if not _is_int(version) or version < 1:
            raise self.fail("version", f"expected a positive integer, got {_show(version)}")
        if version > VERSION:
            raise self.fail("version", f"version {version} is newer than this cnnir reads "
                            f"(up to {VERSION}); upgrade cnnir")
        name = self.string(doc["name"], "name")
        source = self.string(doc.get("source"), "source", allow_none=True)
        nodes = doc["nodes"]
        if not isinstance(nodes, list) or not nodes:
            raise self.fail("nodes", f"expected a non-empty list, got {_show(nodes)}")

        entries = []
        index: dict[str, int] = {}
        for i, raw in enumerate(nodes):
            w = f"nodes[{i}]"
            nd = self.obj(raw, w, _NODE_KEYS, {"name", "op", "inputs"})
            nm = self.string(nd["name"], f"{w}.name")
            assert nm is not None
            if nm in index:
                raise self.fail(f"{w}.name", f"duplicate node name {nm!r} "
                                f"(also nodes[{index[nm]}])")
            index[nm] = i
            op = self.op(nd["op"], nd.get("attrs"), w)
            ins = self.strings(nd["inputs"], f"{w}.inputs")
            arity = type(op).arity
            if (arity >= 0 and len(ins) != arity) or (arity < 0 and len(ins) < 2):
                want = str(arity) if arity >= 0 else "two or more"
                raise self.fail(f"{w}.inputs", f"{op.kind} takes {want} input(s), got {len(ins)}")
            scope = tuple(self.strings(nd.get("scope", []), f"{w}.scope"))
            loc = self.loc_of(nd.get("loc"), f"{w}.loc")
            entries.append((nm, op, ins, scope, loc))
        for i, (_, _, ins, _, _) in enumerate(entries):
            for k, src in enumerate(ins):
                if src not in index:
                    raise self.fail(f"nodes[{i}].inputs[{k}]", f"unknown node {src!r}")

        dep = nx.DiGraph()
        dep.add_nodes_from(range(len(entries)))
        for i, (_, _, ins, _, _) in enumerate(entries):
            dep.add_edges_from((index[s], i) for s in ins)
        try:
            order = list(nx.lexicographical_topological_sort(dep))
        except nx.NetworkXUnfeasible:
            cycle = [entries[u][0] for u, _ in nx.find_cycle(dep)]
            raise self.fail("nodes", "the graph has a cycle: "
                            + " -> ".join(cycle + cycle[:1])) from None

        inputs = [i for i, e in enumerate(entries) if isinstance(e[1], O.Input)]
        if not inputs:
            raise self.fail("nodes", "no node has op 'input'")
        first = inputs[0]
        first_op = entries[first][1]
        assert isinstance(first_op, O.Input)
        declared = doc.get("input")
        if declared is not None:
            shape = tuple(self.ints(declared, "input"))
            if shape != first_op.shape:
                raise self.fail("input", f"{list(shape)} disagrees with "
                                f"nodes[{first}].attrs.shape {list(first_op.shape)}")
        if input is not None:
            nm, _, ins, scope, loc = entries[first]
            try:
                entries[first] = (nm, O.Input(tuple(input)), ins, scope, loc)
            except CnnirError as exc:
                raise FrontendError(f"--input: {exc.msg}", loc=self.loc) from None

        g = Graph(name)  # type: ignore[arg-type]
        for i in order:
            nm, op, ins, scope, loc = entries[i]
            g.add(nm, op, ins, loc, scope)
        outs = self.strings(doc["outputs"], "outputs")
        if not outs:
            raise self.fail("outputs", "expected at least one output")
        for k, o in enumerate(outs):
            if o not in index:
                raise self.fail(f"outputs[{k}]", f"unknown node {o!r}")
        g.outputs = outs
        g.source = source
        g.blocks = self.blocks(doc.get("blocks", []))
        if doc.get("weights") is not None:
            g.weights = self.weights(doc["weights"], g)
        return g

    def blocks(self, value: Any) -> dict[tuple[str, ...], BlockInfo]:
        if not isinstance(value, list):
            raise self.fail("blocks", f"expected a list, got {_jtype(value)}")
        out: dict[tuple[str, ...], BlockInfo] = {}
        for i, raw in enumerate(value):
            w = f"blocks[{i}]"
            b = self.obj(raw, w, _BLOCK_KEYS, {"scope", "kind"})
            scope = tuple(self.strings(b["scope"], f"{w}.scope"))
            if not scope:
                raise self.fail(f"{w}.scope", "expected a non-empty list of names")
            if scope in out:
                raise self.fail(f"{w}.scope", f"duplicate block {'/'.join(scope)!r}")
            kind = self.string(b["kind"], f"{w}.kind")
            loc = self.loc_of(b.get("loc"), f"{w}.loc")
            rep = b.get("repeat")
            if rep is not None:
                g_, idx, count = self.ints(rep, f"{w}.repeat", 3)
                if g_ < 0 or count < 1 or not 0 <= idx < count:
                    raise self.fail(f"{w}.repeat", f"expected [group >= 0, index, count] with "
                                    f"0 <= index < count, got {rep}")
                rep = (g_, idx, count)
            stage = b.get("stage")
            if stage is not None:
                stage = self.string(stage, f"{w}.stage")
                if len(scope) != 1:
                    raise self.fail(f"{w}.stage", "only a top-level block belongs to a stage")
            out[scope] = BlockInfo(kind, loc, rep, stage)  # type: ignore[arg-type]
        for i, info in enumerate(out.values()):
            if info.stage is not None and (info.stage,) in out:
                raise self.fail(f"blocks[{i}].stage", f"stage {info.stage!r} has the name of "
                                f"a top-level block; a stage needs a name of its own")
        return out

    def weights(self, value: Any, g: Graph) -> dict[str, dict[str, Any]]:
        import numpy as np

        from ..passes.infer_shapes import infer_shapes
        from ..weights import param_shapes

        spec = self.obj(value, "weights", {"file", "sha256"}, {"file"})
        fname = self.string(spec["file"], "weights.file")
        assert fname is not None
        side = os.path.join(os.path.dirname(os.path.abspath(self.path)), fname)
        try:
            with open(side, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise self.fail("weights.file", f"cannot read {side}: {exc.strerror}") from None
        digest = spec.get("sha256")
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise self.fail("weights.sha256", f"{fname} does not match the checksum recorded "
                            f"in the JSON (written by another compile?)")
        import io

        try:
            npz = np.load(io.BytesIO(data), allow_pickle=False)
            arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:
            raise self.fail("weights.file", f"{fname} is not a readable .npz: {exc}") from None
        infer_shapes(g)
        out: dict[str, dict[str, Any]] = {}
        for key, arr in arrays.items():
            node, _, param = key.rpartition("/")
            if node not in g:
                raise self.fail("weights.file", f"{fname}: array {key!r} is for unknown node "
                                f"{node!r}")
            want = param_shapes(g, node)
            if param not in want:
                raise self.fail("weights.file", f"{fname}: node {node!r} "
                                f"({g.op(node).kind}) has no parameter {param!r}")
            if tuple(arr.shape) != want[param]:
                raise self.fail("weights.file", f"{fname}: {key!r} has shape {list(arr.shape)}, "
                                f"the layer needs {list(want[param])}")
            out.setdefault(node, {})[param] = arr
        return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _jtype(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, (set, tuple)) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def load_json(path: str, input: tuple[int, ...] | None = None) -> Graph:
    """Read a cnnir JSON IR file (shapes are inferred by :func:`cnnir.frontends.load`)."""
    reader = _Reader(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise FrontendError("not a JSON text file (not UTF-8)", loc=reader.loc) from None
    except OSError as exc:
        raise FrontendError(f"cannot read {path}: {exc.strerror}", loc=reader.loc) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FrontendError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                            loc=SourceLoc(path, exc.lineno)) from None
    except RecursionError:
        raise FrontendError("invalid JSON: nested too deeply", loc=reader.loc) from None
    return reader.graph(doc, input)


__all__ = ["FORMAT", "VERSION", "to_dict", "to_json", "weights_npz", "load_json"]
