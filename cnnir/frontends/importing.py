"""Shared by the ONNX and PyTorch importers: collect layers, then name them and build the graph.

An importer walks the foreign graph once and calls :meth:`Importer.add` for every
layer it maps, with the layer's *module path* (the PyTorch module it came from,
as a tuple of components) and a *hint* (a local name such as ``"add"`` used when
the path names a block rather than a layer).  Shapes are inferred as layers are
added, so a mapping can look at its input's shape (flatten patterns, weight
checks) and a shape rule that cannot hold is reported at the foreign node.

Naming (:meth:`Importer.build`), the same for both importers:

* A module path component is a PyTorch qualified name split on dots:
  ``layer1.0.conv1`` -> ``("layer1", "0", "conv1")``.  The TorchScript ONNX
  exporter's node name ``/layer1/layer1.0/conv1/Conv`` gives the same path: the
  trailing op type is dropped and a component that repeats its parent's dotted
  prefix (``layer1.0`` under ``layer1``) keeps only the rest.  So dots are module
  nesting and never appear in cnnir names; any other character outside
  ``[A-Za-z0-9_-]`` becomes ``_``.  Node names read like ``state_dict`` keys with
  ``/`` for ``.`` (``layer1/0/conv1``), and the PyTorch backend nests them back
  into the same modules.
* A path that only one layer has, and that is no prefix of another layer's path,
  is that layer's name (``layer1/0/conv1``, scope ``("layer1", "0")``).  So is
  the path of a ``torch.nn`` layer module called several times (one ``ReLU``
  reused in a block): ``layer1/0/relu``, ``layer1/0/relu_2``.
* A path that is a prefix of other paths, or that several layers share, is a
  block: its layers are named ``path/hint`` (``layer1/0/add``), numbered on
  collision (``add_2``).
* Every proper prefix of a node name is a scope and gets a
  :class:`~cnnir.ir.BlockInfo` whose ``kind`` is the module's class name where
  the importer knows it, else the scope's name without trailing digits
  (``layer1`` -> ``layer``; a bare index such as ``0`` -> ``module``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CnnirError, FrontendError
from ..ir import BlockInfo, Graph, SourceLoc
from ..ops import Op, TensorShape

#: the symbolic batch size inside constant shape arithmetic (``x.size(0)``, ONNX
#: ``Shape``): a value no real tensor dimension takes
BATCH = 2**62 + 1

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-]")


def sanitize(component: str) -> str:
    """One name component: characters outside ``[A-Za-z0-9_-]`` become ``_``."""
    out = _BAD_CHARS.sub("_", component.strip())
    return out or "_"


def qualified_path(name: str) -> tuple[str, ...]:
    """``"layer1.0.conv1"`` -> ``("layer1", "0", "conv1")`` (sanitised components)."""
    return tuple(sanitize(c) for c in name.split(".") if c)


def scoped_path(components: Sequence[str]) -> tuple[str, ...]:
    """Exporter scope components (``["layer1", "layer1.0", "conv1"]``) -> a module path.

    A component that starts with its parent's dotted qualified name (``layer1.0``
    under ``layer1``) or with the parent component as written (``downsample.0``
    under ``layer2/layer2.0/downsample``) keeps only the rest; what remains is
    split on dots.
    """
    out: list[str] = []
    raw: list[str] = []  # the qualified names as written, to match prefixes
    prev = ""
    for comp in components:
        if not comp:
            continue
        rest = comp
        for prefix in (".".join(raw), prev):
            if prefix and comp.startswith(prefix + "."):
                rest = comp[len(prefix) + 1:]
                break
        parts = [p for p in rest.split(".") if p]
        raw.extend(parts)
        out.extend(sanitize(p) for p in parts)
        prev = comp
    return tuple(out)


@dataclass
class Pending:
    """A layer collected by an importer, not yet named."""

    op: Op
    inputs: list[int]
    path: tuple[str, ...]
    hint: str
    what: str
    loc: SourceLoc | None
    shape: TensorShape
    weights: dict[str, Any] | None = None
    #: the path is a leaf module (a torch.nn layer) that may be called several times
    leaf: bool = False


class Importer:
    """Collects layers (:meth:`add`) and turns them into a named :class:`Graph` (:meth:`build`)."""

    def __init__(self, name: str, error: type[CnnirError] = FrontendError) -> None:
        self.name = name
        self.nodes: list[Pending] = []
        self.error = error
        #: class name of a module path, where the importer knows it (BlockInfo kinds)
        self.classes: dict[tuple[str, ...], str] = {}
        #: where a module's code lives, where the importer knows it (BlockInfo locs)
        self.class_locs: dict[tuple[str, ...], SourceLoc] = {}
        #: ``(group, index, count)`` of blocks the importer knows are repeats of one another
        self.repeats: dict[tuple[str, ...], tuple[int, int, int]] = {}

    def add(self, op: Op, inputs: Sequence[int], path: tuple[str, ...], hint: str, what: str,
            loc: SourceLoc | None = None, weights: dict[str, Any] | None = None,
            leaf: bool = False) -> int:
        """Add a layer reading ``inputs`` (ids from earlier calls); returns its id.

        ``what`` names the foreign node in messages (``"Conv node '/conv1/Conv'"``).
        """
        shapes = [self.nodes[i].shape for i in inputs]
        arity = type(op).arity
        if (arity >= 0 and len(inputs) != arity) or (arity < 0 and len(inputs) < 2):
            raise self.error(f"{what}: {op.kind} takes {arity if arity >= 0 else 'two or more'} "
                             f"input(s), got {len(inputs)}", loc=loc)
        try:
            shape = op.infer(shapes)
        except CnnirError as exc:
            raise self.error(f"{what}: {op.kind} on {', '.join(map(str, shapes))}: {exc.msg}",
                             loc=loc) from None
        self.nodes.append(Pending(op, list(inputs), path, hint, what, loc, shape, weights, leaf))
        return len(self.nodes) - 1

    def shape(self, i: int) -> TensorShape:
        return self.nodes[i].shape

    def fail(self, what: str, msg: str, loc: SourceLoc | None = None) -> CnnirError:
        return self.error(f"{what}: {msg}", loc=loc)

    # ------------------------------------------------------------------ naming

    def _names(self) -> list[tuple[str, tuple[str, ...]]]:
        counts: dict[tuple[str, ...], int] = {}
        prefixes: set[tuple[str, ...]] = set()
        for p in self.nodes:
            counts[p.path] = counts.get(p.path, 0) + 1
            for k in range(1, len(p.path)):
                prefixes.add(p.path[:k])
        taken: set[str] = set()
        out = []
        for p in self.nodes:
            if p.path and p.path not in prefixes and (counts[p.path] == 1 or p.leaf):
                scope, local = p.path[:-1], p.path[-1]  # a leaf module called k times: x, x_2
            else:
                scope, local = p.path, sanitize(p.hint)
            base = "/".join((*scope, local))
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            out.append((name, scope))
        return out

    def _kind(self, scope: tuple[str, ...]) -> str:
        cls = self.classes.get(scope)
        if cls:
            return cls
        stem = re.sub(r"[_\-]?\d+$", "", scope[-1])
        return stem if stem and not stem.isdigit() else "module"

    def build(self, outputs: Sequence[int], source: str | None = None) -> Graph:
        """The named graph: nodes in the order they were added, blocks, weights."""
        graph = Graph(self.name)
        names = self._names()
        weights: dict[str, dict[str, Any]] = {}
        for p, (name, scope) in zip(self.nodes, names):
            graph.add(name, p.op, [names[i][0] for i in p.inputs], p.loc, scope)
            if p.weights:
                weights[name] = p.weights
            for k in range(1, len(scope) + 1):
                sc = scope[:k]
                if sc not in graph.blocks:
                    graph.blocks[sc] = BlockInfo(self._kind(sc), self.class_locs.get(sc, p.loc),
                                                 self.repeats.get(sc))
        graph.outputs = list(dict.fromkeys(names[i][0] for i in outputs))
        graph.weights = weights or None
        graph.source = source
        return graph


def first_user_frame(tb: Any, skip: Callable[[str], bool]) -> tuple[str, int] | None:
    """The innermost traceback frame whose file ``skip`` does not reject."""
    found = None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if not skip(fname):
            found = (fname, tb.tb_lineno)
        tb = tb.tb_next
    return found


__all__ = ["BATCH", "Importer", "Pending", "sanitize", "qualified_path", "scoped_path",
           "first_user_frame"]
