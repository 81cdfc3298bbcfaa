"""What the ONNX import driver and its per-operator rules share.

* :data:`ONNX`, the ``RuleTable("onnx-import", reads=True)`` the rules of
  :mod:`cnnir.frontends.onnx_rules` register in, one per ONNX ``op_type``, each
  naming the cnnir ops it can produce;
* :data:`SPECS`: for every registered ``op_type``, the attributes and inputs the ONNX
  spec gives it (all opsets from 7) that its rule handles exactly, and those it
  refuses by name (always, or for the values it names).  The driver refuses any
  attribute outside this list, so an attribute a later opset adds is an error until
  a rule reads it; ``tests/frontends/test_onnx_spec.py`` walks ``onnx.defs`` to keep
  the list complete, and :func:`spec_table` writes it for ``docs/frontends.md``;
* :class:`NodeContext`, the per-node helpers a rule calls (``err``, ``add``, ``ir``,
  ``const`` ...); the driver's converter is one;
* the pending values a rule may return (:class:`Padded`, :class:`RowPooled`) and
  small readers (:func:`attrs`, :func:`f32`, :func:`ints`, :func:`bin_matrix`).

The driver imports the rules and this module; the rules import only this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops as O
from ..errors import FrontendError
from ..ir import SourceLoc
from ..ops import TensorShape
from ..passes.support import bin_matrix
from ..rules import RuleTable
from .importing import Importer, qualified_path, scoped_path

Value = Any  # int (an IR layer id) | np.ndarray (a constant) | a pending value

#: ONNX op_type -> rule ``(ctx, node, inputs, attrs) -> value``
ONNX: RuleTable[Callable[..., Any]] = RuleTable("onnx-import", reads=True)


@dataclass(frozen=True)
class OpSpec:
    """The ONNX attributes and inputs of one op type: handled exactly, or refused."""

    handled: tuple[str, ...]
    #: name -> when it is refused ("always", "=1", "non-constant" ...)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def known(self) -> set[str]:
        return set(self.handled) | set(self.refused)


#: op_type -> its attributes / inputs, handled or refused (see the module docstring)
SPECS: dict[str, OpSpec] = {}


def rule(*op_types: str, produces: Iterable[type[O.Op]], handles: Iterable[str] = (),
         refuses: dict[str, str] | None = None) -> Callable[[Any], Any]:
    """Register an import rule for ``op_types``, with what it produces and reads."""
    spec = OpSpec(tuple(handles), dict(refuses or {}))
    register = ONNX.rule(*op_types, produces=produces)

    def deco(fn: Any) -> Any:
        for t in op_types:
            SPECS[t] = spec
        return register(fn)

    return deco


def spec_table() -> str:
    """The Markdown table of :data:`SPECS` (op, handled, refused) for the docs."""
    rows = ["| ONNX op | attributes / inputs handled | refused |", "|---|---|---|"]
    for op in sorted(SPECS):
        s = SPECS[op]
        refused = "; ".join(f"`{k}` {v}" for k, v in s.refused.items()) or "-"
        rows.append(f"| {op} | {', '.join(f'`{h}`' for h in s.handled) or '-'} | {refused} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- pending values


@dataclass
class Padded:
    """The output of a zero ``Pad``: waits to be folded into the next conv's padding (a
    ``-inf`` one into the next max pool's)."""

    src: int
    pads: tuple[int, int, int, int]
    node: str
    #: 0, or -inf for a Pad read by MaxPools alone (TF "same" max pooling)
    value: float = 0.0


@dataclass
class RowPooled:
    """``MatMul(x, A_w^T)`` with PyTorch's adaptive-pool bin matrix: half an adaptive pool.

    cnnir's ONNX backend writes an adaptive average pool whose input size is not a
    multiple of the output size as ``A_h @ x @ A_w^T``; the second MatMul completes it.
    """

    src: int
    out_w: int
    node: str


# --------------------------------------------------------------------------- readers


def attrs(node: Any) -> dict[str, Any]:
    """A node's attributes by name (strings decoded)."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[a.name] = v
    return out


def f32(x: float) -> float:
    """A float attribute as written (float32 0.01 reads back as 0.01, not 0.009999...)."""
    return float(str(np.float32(x)))


def ints(values: Any) -> list[int]:
    """Plain ints for messages and arithmetic (never ``np.int64(3)``)."""
    return [int(v) for v in np.atleast_1d(np.asarray(values)).reshape(-1)]


def nums(values: Any) -> list[int | float]:
    """Plain numbers for messages: ints where integral, else floats."""
    out: list[int | float] = []
    for v in np.atleast_1d(np.asarray(values, dtype=np.float64)).reshape(-1):
        out.append(int(v) if float(v).is_integer() else float(v))
    return out



# --------------------------------------------------------------------------- per-node helpers


class NodeContext:
    """The helpers a rule calls: errors naming the node, adding layers, reading inputs."""

    def __init__(self, path: str, opset: int, imp: Importer) -> None:
        self.path = path
        self.loc = SourceLoc(path)
        self.opset = opset
        self.imp = imp
        self.consumers: dict[str, list[Any]] = {}
        self.graph_outputs: set[str] = set()
        self.file_batch: int | None = None
        #: tensor name -> value (layer id, constant or pending), filled by the driver
        self.values: dict[str, Value] = {}
        #: constants computed from at least one initializer (model data), by the driver
        self.learned: set[str] = set()
        #: the initializers; constant name -> (the node that computed it, output index)
        self.inits: dict[str, np.ndarray] = {}
        self.recipes: dict[str, tuple[Any, int]] = {}

    def err(self, node: Any, msg: str) -> FrontendError:
        return FrontendError(f"{node.op_type} node '{node.name or node.output[0]}': {msg}",
                             loc=self.loc)

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

    def ir_or_pad(self, node: Any, ins: list[Value], i: int = 0) -> int | Padded:
        """Input ``i``: a layer, or a pending zero Pad to fold into this node."""
        v = ins[i] if i < len(ins) else None
        return v if isinstance(v, Padded) else self.ir(node, ins, i)

    def ir(self, node: Any, ins: list[Value], i: int = 0) -> int:
        v = ins[i] if i < len(ins) else None
        if isinstance(v, RowPooled):
            raise self.err(node, f"reads the output of MatMul '{v.node}', which multiplies a "
                           f"feature map by a pooling matrix; cnnir maps that only when a "
                           f"second MatMul completes an adaptive average pool")
        if isinstance(v, Padded):
            raise self.err(node, f"reads the output of Pad '{v.node}'; cnnir folds a zero Pad "
                           f"only into a following Conv (or AveragePool counting the padding)")
        if isinstance(v, (int, np.integer)):
            return int(v)
        misread = getattr(v, "misread", None)
        if misread is not None:  # another rule's pending value says what it is
            raise self.err(node, misread())
        refusal = getattr(v, "refusal", None)  # a rule's pending value: what it waits for
        if isinstance(refusal, str):
            raise self.err(node, refusal)
        if isinstance(v, np.ndarray):
            raise self.err(node, f"input {i} ('{node.input[i]}') is a constant, not a feature "
                           f"map; cnnir has no op for it")
        raise self.err(node, f"input {i} is missing")

    def opt_const(self, node: Any, ins: list[Value], i: int, what: str, exact: bool = True
                  ) -> np.ndarray | None:
        """Input ``i`` as a constant array, or None where the node leaves it out."""
        v = ins[i] if i < len(ins) and node.input[i] else None
        if v is None:
            return None
        if not isinstance(v, np.ndarray):
            raise self.err(node, f"{what} ('{node.input[i]}') must be a constant (an "
                           f"initializer), but the graph computes it")
        if exact:
            self.check_exact(node, i, what)
        return v

    def const(self, node: Any, ins: list[Value], i: int, what: str, exact: bool = True
              ) -> np.ndarray:
        """Input ``i`` as a constant array (an initializer or a folded constant); with
        ``exact``, refused where :meth:`check_exact` refuses it."""
        v = self.opt_const(node, ins, i, what, exact)
        if v is None:
            raise self.err(node, f"{what} (input {i}) is missing")
        return v

    def fixed(self, node: Any, i: int) -> bool:
        """Whether constant input ``i`` is fixed: made of ``Constant`` nodes (and shape
        reads) alone, no initializer.  ONNX has no trainable flag; the rule follows the
        exporters: ``torch.onnx.export`` writes parameters and buffers as initializers
        (and what constant folding computes from them) and a number of the code as a
        ``Constant`` node, so an initializer counts as a parameter, a Constant does not."""
        return node.input[i] not in self.learned

    def sources(self, name: str) -> dict[str, np.ndarray]:
        """The float initializers the constant ``name`` is computed from (itself if one)."""
        if name in self.inits:
            v = self.inits[name]
            return {name: v} if np.issubdtype(v.dtype, np.floating) else {}
        recipe = self.recipes.get(name)
        out: dict[str, np.ndarray] = {}
        if recipe is not None:
            for i in recipe[0].input:
                if i:
                    out.update(self.sources(i))
        return out

    def distinct_sources(self, name: str) -> dict[str, np.ndarray]:
        """:meth:`sources` less copies: an initializer holding the same values as another
        (torch.onnx.export's constant folding may store a weight twice, reshaped and
        transposed for its statistics) is one parameter."""
        out: dict[str, np.ndarray] = {}
        seen: set[tuple[int, bytes]] = set()
        for k, v in sorted(self.sources(name).items()):
            key = (v.size, np.sort(v.reshape(-1)).tobytes())
            if key not in seen:
                seen.add(key)
                out[k] = v
        return out

    def check_exact(self, node: Any, i: int, what: str) -> None:
        """Refuse constant input ``i`` when it is computed from initializers holding more
        (distinct) values than it has: counted as one layer's arrays, they would be
        miscounted.  An initializer, a reshape or transpose of one, a fixed constant or a
        standardisation of one weight passes."""
        name = node.input[i]
        v = self.values.get(name)
        if name in self.inits or name not in self.learned or not isinstance(v, np.ndarray) \
                or not np.issubdtype(v.dtype, np.floating):
            return
        srcs = self.distinct_sources(name)
        have = sum(int(s.size) for s in srcs.values())
        if have != v.size:
            raise self.err(node, f"{what} ('{name}', {v.size} values) is computed from the "
                           f"initializers {', '.join(sorted(srcs))} ({have} values); cnnir "
                           f"counts a layer's arrays as its parameters, so it maps such a "
                           f"constant only when it holds as many values as it is made of")

    def recompute(self, name: str, subst: dict[str, np.ndarray]) -> np.ndarray:
        """The constant ``name`` with the initializers in ``subst`` replaced (the driver)."""
        raise NotImplementedError

    def shape(self, i: int) -> TensorShape:
        return self.imp.shape(i)

    def only_user(self, node: Any) -> bool:
        out = node.output[0]
        return len(self.consumers.get(out, [])) == 1 and out not in self.graph_outputs


__all__ = ["ONNX", "SPECS", "OpSpec", "rule", "spec_table", "Padded", "RowPooled", "Value",
           "attrs", "f32", "ints", "nums", "bin_matrix", "NodeContext"]
