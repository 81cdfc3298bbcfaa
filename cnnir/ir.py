"""The IR: a layer graph, a multigraph of named nodes (networkx on demand).

* One node per layer, keyed by a unique hierarchical name built from DSL scopes
  (``"inception_3a/conv3"``).  Node attributes: ``op`` (a frozen dataclass from
  :mod:`cnnir.ops`), ``loc`` (:class:`SourceLoc` of the DSL call, ONNX node...),
  ``scope`` (tuple of block names), ``inputs`` (ordered tuple of producer names)
  and ``meta`` (analysis results, one namespaced key per analysis:
  ``meta["shape"]``, ``meta["cost"]``, ``meta["rf"]``...).  The op is what is
  serialised; meta is recomputed.
* Edges go producer -> consumer and are keyed by the input position (``port``).
  A multigraph, not a plain ``DiGraph``, because one tensor may feed two ports of
  the same node (``x + x``), which a ``DiGraph`` cannot hold.
* ``graph.nx`` is a read-only view for users who want networkx algorithms, built
  on first use (and again after a change); mutation goes through :class:`Graph`
  so the ordered ``inputs`` tuple and the edges never disagree.  The graph itself
  is plain dicts (node attributes, and each node's users in order): building and
  walking one does not go through networkx, which the sweep's costing of
  thousands of variants would pay for on every layer.
* ``graph.blocks`` describes every scope (the ``@block`` function it came from
  and, for ``repeat``, its group and index), for reports and diagrams.
* ``graph.weights`` optionally maps node names to named numpy arrays
  (``{"conv1": {"weight": ..., "bias": ...}}``), from an imported model or a
  backend; analysis never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import CnnirError
from .ops import Input, Op, TensorShape

if TYPE_CHECKING:  # the shortcuts below return the API's objects
    import networkx as nx

    from .api import Analysis, Diagram, Report, RunResult


@dataclass(frozen=True)
class SourceLoc:
    """Where a node came from: ``file:line`` (a DSL call, or an ONNX node name as file)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def short(self) -> str:
        """``basename:line``, stable across machines (used by the printer)."""
        base = os.path.basename(self.file) or self.file
        return f"{base}:{self.line}" if self.line else base


@dataclass(frozen=True)
class BlockInfo:
    """A scope: the function that opened it, where, its place in a ``repeat``, and the
    stage it belongs to."""

    kind: str
    loc: SourceLoc | None = None
    #: ``(group_id, index, count)`` when made by ``repeat``; index counts from 0
    repeat: tuple[int, int, int] | None = None
    #: for a top-level scope built inside ``with stage(name):``, that name: the
    #: stage groups several top-level scopes (GoogLeNet's inception_4a..4e) without
    #: renaming them; diagrams draw a stage as one box at ``--level stage``
    stage: str | None = None


@dataclass(slots=True)
class Node:
    """A read-mostly view of one node (``graph.node(name)``)."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    loc: SourceLoc | None
    scope: tuple[str, ...]
    meta: dict[str, Any]

    @property
    def shape(self) -> TensorShape | None:
        return self.meta.get("shape")


class Graph:
    """A CNN as a layer graph; see the module docstring."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        #: node name -> attributes (op, loc, scope, inputs, meta), in insertion order
        self._nodes: dict[str, dict[str, Any]] = {}
        #: node name -> its users, each once, in the order their edges were made
        self._succ: dict[str, dict[str, None]] = {}
        self._nx: nx.MultiDiGraph | None = None
        self.outputs: list[str] = []
        self.blocks: dict[tuple[str, ...], BlockInfo] = {}
        self.weights: dict[str, dict[str, Any]] | None = None
        #: where the model came from (a DSL file, an ONNX file, a zoo name)
        self.source: str | None = None
        self._order: list[str] | None = None
        self._walk: list[Node] | None = None

    # ------------------------------------------------------------------ building

    def add(
        self,
        name: str,
        op: Op,
        inputs: Iterable[str] = (),
        loc: SourceLoc | None = None,
        scope: tuple[str, ...] = (),
    ) -> str:
        """Add a node fed by ``inputs`` (in port order) and return its name."""
        nodes = self._nodes
        if name in nodes:
            raise CnnirError(f"duplicate node name {name!r}", loc=loc, node=name)
        inputs = tuple(inputs)
        succ = self._succ
        for src in inputs:
            if src not in nodes:
                raise CnnirError(f"node {name!r} reads unknown node {src!r}", loc=loc, node=name)
        nodes[name] = {"op": op, "loc": loc, "scope": tuple(scope), "inputs": inputs, "meta": {}}
        succ[name] = {}
        for src in inputs:
            succ[src][name] = None
        self._order = self._walk = self._nx = None
        return name

    def unique_name(self, base: str) -> str:
        """``base`` if free, else ``base_2``, ``base_3``..."""
        if base not in self._nodes:
            return base
        i = 2
        while f"{base}_{i}" in self._nodes:
            i += 1
        return f"{base}_{i}"

    def set_inputs(self, name: str, inputs: Iterable[str]) -> None:
        """Rewire ``name`` to read ``inputs`` (in port order)."""
        d = self._attrs(name)
        inputs = tuple(inputs)
        for src in inputs:
            if src not in self._nodes:
                raise CnnirError(f"node {name!r} reads unknown node {src!r}", node=name)
        for src in d["inputs"]:  # the edges go, then come back in port order
            self._succ[src].pop(name, None)
        for src in inputs:
            self._succ[src][name] = None
        d["inputs"] = inputs
        self._order = self._walk = self._nx = None

    def replace_uses(self, old: str, new: str, exclude: Iterable[str] = ()) -> None:
        """Make every user of ``old`` (but ``exclude``) read ``new``; outputs follow."""
        skip = set(exclude)
        for user in self.users(old):
            if user in skip:
                continue
            self.set_inputs(user, tuple(new if s == old else s for s in self.inputs(user)))
        self.outputs = [new if o == old else o for o in self.outputs]

    def set_op(self, name: str, op: Op) -> None:
        self._attrs(name)["op"] = op
        self._walk = self._nx = None

    def remove(self, name: str) -> None:
        """Remove a node; it must have no users and not be an output."""
        if self.users(name):
            raise CnnirError(f"cannot remove {name!r}: it still has users", node=name)
        if name in self.outputs:
            raise CnnirError(f"cannot remove {name!r}: it is a graph output", node=name)
        for src in self._nodes[name]["inputs"]:
            self._succ[src].pop(name, None)
        del self._nodes[name], self._succ[name]
        if self.weights is not None:
            self.weights.pop(name, None)
        self._order = self._walk = self._nx = None

    # ------------------------------------------------------------------ access

    @property
    def nx(self) -> nx.MultiDiGraph:
        """A read-only networkx view of the graph: a ``MultiDiGraph`` whose nodes carry
        ``op``, ``loc``, ``scope``, ``inputs`` and ``meta`` (the node's own ``meta``
        dict) and whose edges, producer -> consumer, are keyed by the input ``port``.
        Built when first asked for after a change; a view taken before a change does
        not follow it."""
        if self._nx is None:
            import networkx as nx

            g = nx.MultiDiGraph()
            nodes = self._nodes
            for n, d in nodes.items():
                g.add_node(n, **d)
            for u, users in self._succ.items():  # each node's users in their order
                for v in users:
                    for port, src in enumerate(nodes[v]["inputs"]):
                        if src == u:
                            g.add_edge(u, v, key=port, port=port)
            self._nx = g
        return self._nx.copy(as_view=True)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes())

    def nodes(self) -> list[str]:
        """Node names in a deterministic topological order (cached)."""
        if self._order is None:
            self._order = self._sort()
        return self._order

    def _sort(self) -> list[str]:
        """The lexicographical topological order by insertion index: insertion order
        wherever it is a valid order (DSL programs build layers in order), so printer
        output reads like the source.  When every node comes after its inputs (always,
        until a node is rewired) that order is insertion order itself: the smallest
        unplaced index always has its inputs placed, so one check over the edges
        stands in for the sort."""
        nodes = self._nodes
        placed: set[str] = set()
        in_order = True
        for n, d in nodes.items():
            if not placed.issuperset(d["inputs"]):
                in_order = False
                break
            placed.add(n)
        if in_order:
            return list(nodes)
        import networkx as nx

        g = self.nx
        index = {n: i for i, n in enumerate(nodes)}
        try:
            return list(nx.lexicographical_topological_sort(g, key=index.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = nx.find_cycle(g)
            names = " -> ".join(str(e[0]) for e in cycle) + f" -> {cycle[0][0]}"
            raise CnnirError(f"graph '{self.name}' has a cycle: {names}") from None

    def node(self, name: str) -> Node:
        d = self._attrs(name)
        return Node(name, d["op"], d["inputs"], d["loc"], d["scope"], d["meta"])

    def walk(self) -> list[Node]:
        """Every node as a :class:`Node` view, in the order of :meth:`nodes` (cached
        until the graph changes).  What passes and backends iterate: ``node.meta`` is
        the node's own dict, so an analysis writes its results there."""
        if self._walk is None:
            nodes = self._nodes
            views = []
            for n in self.nodes():
                d = nodes[n]
                views.append(Node(n, d["op"], d["inputs"], d["loc"], d["scope"], d["meta"]))
            self._walk = views
        return self._walk

    def _attrs(self, name: str) -> dict[str, Any]:
        try:
            return self._nodes[name]
        except KeyError:
            raise CnnirError(f"no node named {name!r} in graph '{self.name}'") from None

    def op(self, name: str) -> Op:
        return self._attrs(name)["op"]

    def loc(self, name: str) -> SourceLoc | None:
        return self._attrs(name)["loc"]

    def scope(self, name: str) -> tuple[str, ...]:
        return self._attrs(name)["scope"]

    def meta(self, name: str) -> dict[str, Any]:
        return self._attrs(name)["meta"]

    def inputs(self, name: str) -> tuple[str, ...]:
        return self._attrs(name)["inputs"]

    def users(self, name: str) -> list[str]:
        """Consumers of ``name``, each once, in insertion order."""
        self._attrs(name)
        return list(self._succ[name])

    def shape(self, name: str) -> TensorShape:
        """The inferred output shape; raises if shapes have not been inferred."""
        shape = self._attrs(name)["meta"].get("shape")
        if shape is None:
            raise CnnirError(f"shape of {name!r} is unknown: run infer-shapes first", node=name)
        return shape

    @property
    def input_nodes(self) -> list[str]:
        return [n for n in self.nodes() if isinstance(self.op(n), Input)]

    @property
    def input_shape(self) -> TensorShape:
        """Shape of the (first) input."""
        ins = self.input_nodes
        if not ins:
            raise CnnirError(f"graph '{self.name}' has no input")
        op = self.op(ins[0])
        assert isinstance(op, Input)
        return TensorShape(op.shape)

    def local_name(self, name: str) -> str:
        """The node name without its scope prefix."""
        return name.rsplit("/", 1)[-1]

    # ------------------------------------------------------------------ whole graph

    def copy(self, name: str | None = None) -> Graph:
        """A structural copy: same ops (immutable), fresh meta dicts, same weights."""
        g = Graph(self.name if name is None else name)
        for n in self.nodes():
            d = self._nodes[n]
            g.add(n, d["op"], d["inputs"], d["loc"], d["scope"])
        g.outputs = list(self.outputs)
        g.blocks = dict(self.blocks)
        g.weights = None if self.weights is None else dict(self.weights)
        g.source = self.source
        return g

    def format(self, shapes: bool = True, locs: bool = True) -> str:
        """The IR printer, one line per node::

            %conv1 = conv2d[k=7x7,s=2,p=3](%input) : 64x112x112  # googlenet.py:12
        """
        lines = [f"graph {self.name} {{"]
        for n in self.nodes():
            d = self._nodes[n]
            op = d["op"]
            attrs = op.attrs()
            args = ", ".join(f"%{s}" for s in d["inputs"])
            if isinstance(op, Input):
                args = ""
            line = f"  %{n} = {op.kind}{f'[{attrs}]' if attrs else ''}({args})"
            shape = d["meta"].get("shape")
            if shapes and shape is not None:
                line += f" : {shape}"
            if locs and d["loc"] is not None:
                line += f"  # {d['loc'].short}"
            lines.append(line)
        lines.append("  return " + ", ".join(f"%{o}" for o in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"<cnnir.Graph {self.name!r}: {len(self)} nodes>"

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a graph as its diagram; None (plain repr) without Graphviz."""
        from .api import notebook_svg  # lazy: runs Graphviz only when shown

        return notebook_svg(self)

    # ---------------------------------------------------------------- the Python API
    # One call per CLI command (see cnnir.api); backends are imported when called.

    def analyze(self, dtype: str = "float32", batch: int = 1) -> Analysis:
        """Every analysis (shapes, params, MACs, memory, RF); the totals (``cnnir.api``)."""
        from .api import analyze

        return analyze(self, dtype=dtype, batch=batch)

    def report(self, format: str = "table", depth: int | None = None,
               columns: str | list[str] | None = None, dtype: str = "float32",
               batch: int = 1) -> Report:
        """``cnnir report``: ``str(r)`` is the text, ``r.to_dict()`` the JSON contract."""
        from .api import report

        return report(self, format=format, depth=depth, columns=columns, dtype=dtype,
                      batch=batch)

    def summary(self, depth: int | None = None, dtype: str = "float32",
                batch: int = 1) -> Report:
        """A torchinfo-style summary: layer, op, output shape, params and MACs per row
        (blocks down to ``depth`` with subtotals), then the totals; ``print()`` it, or
        let Jupyter show it as a table (:func:`cnnir.api.summary`)."""
        from .api import summary

        return summary(self, depth=depth, dtype=dtype, batch=batch)

    def passes(self, pipeline: str) -> Graph:
        """A new graph: ``pipeline`` (``"fix-residual,fuse-conv-bn-relu"``) run on this one."""
        from .api import run_passes

        return run_passes(self, pipeline)

    def compile(self, to: str = "onnx", output: str | None = None, **options: Any) -> Any:
        """``cnnir compile --to``: see :func:`cnnir.api.compile`."""
        from .api import compile

        return compile(self, to=to, output=output, **options)

    def draw(self, path: str | None = None, **options: Any) -> Diagram:
        """``cnnir draw``: a Diagram (DOT, SVG, save); see :func:`cnnir.api.draw`."""
        from .api import draw

        return draw(self, path, **options)

    def run(self, provider: str = "auto", batch: int = 1, repeat: int = 20,
            **options: Any) -> RunResult:
        """``cnnir run``: time it on onnxruntime; see :func:`cnnir.api.run`."""
        from .api import run

        return run(self, provider=provider, batch=batch, repeat=repeat, **options)

    def line_for(self, name: str) -> str:
        """The printer line of one node (used in error messages)."""
        for line in self.format().splitlines():
            if line.startswith(f"  %{name} = "):
                return line.strip()
        return name
