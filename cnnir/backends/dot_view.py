"""What a diagram shows: the boxes, clusters and edges drawn for a graph.

Pure Python over networkx; :mod:`cnnir.backends.dot` turns a :class:`View` into DOT.
The steps, in order:

1. **Hide** dropout, flatten and identity nodes: they change nothing a reader of an
   architecture figure needs; their edges pass through them.
2. **Fold** repeated blocks: sibling scopes that follow each other as a pure chain
   (the only inputs of the second come from the first, and the first feeds nothing
   else) and are identical (same ops, same wiring, same input and output shapes of
   every node) are drawn once, with an "x N" badge; so are hand-written loops of
   one block.  Blocks of one ``repeat`` group fold when their ops and wiring agree
   even if shapes differ (DenseNet layers widen): the diagram then shows the first
   and last shapes and the figures of all copies together.
3. **Collapse** scopes into one box.  ``level="layer"`` collapses nothing;
   ``"block"`` collapses every ``@block`` scope with no ``@block`` inside
   (plain ``scope()`` groups such as a stem stay clusters of layers); ``"stage"``
   collapses every top-level scope, and block rules apply inside a stage the user
   expands.  ``collapse`` / ``expand`` name block kinds (``bottleneck``), scope
   paths (``layer3``, ``layer3/bottleneck1``) or local names, and win over the level.
4. **Fuse** conv -> BatchNorm -> activation (and linear -> activation, and a
   BatchNorm -> activation left over, as in pre-activation blocks) into one box when
   each feeds only the next; a ``FusedConv2d`` node is one box already.
5. **Skips**: an edge is a skip when another, longer path joins the same two boxes
   (identity shortcuts, U-Net and DenseNet concatenations), and at an add or
   multiply the strictly shortest branch is the shortcut (a 1x1 projection).  A
   skip across a path that goes to a coarser resolution and back (an encoder-
   decoder's long skips) is marked ``level``: the diagram puts both its ends on one
   rank, and the edges climbing back from the coarsest resolution are marked
   ``rising`` and laid out upwards, so a U-Net is drawn as a U, the decoder rising
   beside the encoder (and a short tail after the top of the decoder, up to the
   output, stays on the top row, as in the U-Net paper's figure).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .. import ops as O
from ..errors import UsageError
from ..ir import BlockInfo, Graph

LEVELS = ("layer", "block", "stage")
HIDDEN_OPS = (O.Dropout, O.DropPath, O.Flatten, O.Identity)

Scope = tuple[str, ...]


def _is(op: O.Op, want: type[O.Op]) -> bool:
    """``want`` is an op class; ``Activation`` stands for the fusable-activation trait."""
    return op.has(O.FUSABLE_ACTIVATION) if want is O.Activation else isinstance(op, want)


@dataclass
class Box:
    """One drawn box: a layer (possibly fused), a merge node or a collapsed block."""

    id: str                     #: DOT node name: the IR node, or the scope path + "/"
    kind: str                   #: "input", "layer", "merge" or "block"
    family: str                 #: op family, or "block"
    nodes: list[str]            #: the IR nodes it stands for (first copy of a fold)
    cluster: Scope              #: the scope of the cluster it sits in (() = none)
    scope: Scope | None = None  #: a block's scope
    fold: int = 1               #: a folded block: how many copies it stands for
    copy_paths: list[Scope] = field(default_factory=list)  #: a fold's copies, in order


@dataclass
class Cluster:
    path: Scope
    info: BlockInfo
    fold: int = 1
    copy_paths: list[Scope] = field(default_factory=list)  #: a fold's copies, in order


@dataclass
class Edge:
    src: str
    dst: str
    skip: bool = False
    #: a long skip across a down- and up-sampling path (U-Net): both ends on one rank
    level: bool = False
    #: on the way back up from the coarsest resolution under a ``level`` skip
    rising: bool = False


@dataclass
class View:
    graph: Graph
    boxes: dict[str, Box]
    clusters: dict[Scope, Cluster]
    edges: list[Edge]
    #: canonical node -> its copies across a fold (itself first)
    copies: dict[str, list[str]] = field(default_factory=dict)
    box_of: dict[str, str] = field(default_factory=dict)
    succ: dict[str, list[str]] = field(default_factory=dict)
    #: boxes to draw on one rank: the ends of ``level`` skips
    ranks: list[tuple[str, ...]] = field(default_factory=list)
    #: the top of a decoder and its short tail to the output, drawn as a row in TB
    rows: list[tuple[str, ...]] = field(default_factory=list)
    #: every drawn scope path (stage names in front) -> its BlockInfo
    blocks: dict[Scope, BlockInfo] = field(default_factory=dict)
    #: node -> its drawn scope path (its IR scope, its stage's name in front)
    scope_of: dict[str, Scope] = field(default_factory=dict)
    #: the names of the graph's stages
    stages: set[str] = field(default_factory=set)

    def outputs_of(self, box: Box) -> list[str]:
        """The box's nodes whose value leaves it (or is a graph output)."""
        members = set(box.nodes)
        outs = [n for n in box.nodes
                if n in self.graph.outputs or any(s not in members for s in self.succ.get(n, ()))]
        return outs or box.nodes[-1:]


def _split(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n and n.strip()]


def _in_scope(scope: Scope, path: Scope) -> bool:
    return scope[:len(path)] == path


class _Builder:
    def __init__(self, graph: Graph, level: str, collapse: Sequence[str],
                 expand: Sequence[str], fuse: bool, fold: bool) -> None:
        if level not in LEVELS:
            raise UsageError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
        self.g = graph
        self.level = level
        self.fuse = fuse
        self.order = graph.nodes()
        self.pos = {n: i for i, n in enumerate(self.order)}
        # stages (``BlockInfo.stage`` on top-level blocks) are drawn as one more scope
        # level above their blocks: scope paths here start with the stage's name
        self.stage_of = {p[0]: b.stage for p, b in graph.blocks.items()
                         if len(p) == 1 and b.stage is not None}
        self.stages = set(self.stage_of.values())
        clash = sorted(self.stages & {p[0] for p in graph.blocks})
        if clash:
            raise UsageError(f"stage {clash[0]!r} of '{graph.name}' has the name of a "
                             f"top-level block; a stage needs a name of its own")
        self.scope_of = {n: self._virtual(graph.scope(n)) for n in self.order}
        self.blocks = {self._virtual(p): b for p, b in graph.blocks.items()}
        for name in sorted(self.stages):
            self.blocks[(name,)] = BlockInfo("scope", stage=name)
        for n in self.order:  # scopes without a BlockInfo (imported graphs): plain scopes
            s = self.scope_of[n]
            for k in range(1, len(s) + 1):
                self.blocks.setdefault(s[:k], BlockInfo("scope"))
        self.collapse = set(_split(collapse))
        self.expand = set(_split(expand))
        self._check_names()
        self.hidden = {n for n in self.order if isinstance(graph.op(n), HIDDEN_OPS)}
        self.trivial: set[Scope] = set()
        self.runs = self._find_runs() if fold else []

    def _virtual(self, s: Scope) -> Scope:
        """A scope path with its stage in front (``inception4/inception_4a``)."""
        return (self.stage_of[s[0]], *s) if s and s[0] in self.stage_of else s

    def _real(self, path: Scope) -> Scope:
        """The IR's scope path of a drawn one: the stage taken off; nodes are named
        after this one."""
        return path[1:] if path and path[0] in self.stages else path

    # ------------------------------------------------------------------ names

    def _check_names(self) -> None:
        kinds = sorted({b.kind for b in self.blocks.values()})
        known = (set(kinds) | {"/".join(p) for p in self.blocks} | {p[-1] for p in self.blocks}
                 | {"/".join(self._real(p)) for p in self.blocks})
        for flag, names in (("--collapse", self.collapse), ("--expand", self.expand)):
            bad = sorted(names - known)
            if bad:
                raise UsageError(
                    f"{flag}: no block kind or scope named {', '.join(map(repr, bad))} in "
                    f"'{self.g.name}'; block kinds: {', '.join(kinds) or '(none)'}")
        both = sorted(self.collapse & self.expand)
        if both:
            raise UsageError(f"{', '.join(both)} given to both --collapse and --expand")

    def _named(self, path: Scope, names: set[str]) -> bool:
        return bool(names) and (self.blocks[path].kind in names or "/".join(path) in names
                                or "/".join(self._real(path)) in names
                                or path[-1] in names)

    # ------------------------------------------------------------------ folding

    def _members(self, path: Scope) -> list[str]:
        return [n for n in self.order if _in_scope(self.scope_of[n], path)]

    def _signature(self, path: Scope, members: list[str]) -> tuple[Any, Any] | None:
        """(structure, shapes) of a scope: names relative to it, ops, internal wiring;
        the input and output shapes of every node apart.  None if names do not nest."""
        prefix = "/".join(self._real(path)) + "/"
        inside = set(members)
        sig: list[Any] = []
        shapes: list[Any] = []
        for n in members:
            if not n.startswith(prefix):
                return None
            ins: list[Any] = []
            for u in self.g.inputs(n):
                ins.append(u[len(prefix):] if u in inside else None)
                shapes.append(self.g.meta(u).get("shape"))
            sub = self.scope_of[n][len(path):]
            kinds = tuple(self.blocks[path + sub[:k]].kind for k in range(1, len(sub) + 1))
            sig.append((n[len(prefix):], sub, kinds, self.g.op(n), tuple(ins)))
            shapes.append(self.g.meta(n).get("shape"))
        return tuple(sig), tuple(shapes)

    def _chained(self, a: list[str], b: list[str]) -> bool:
        sa, sb = set(a), set(b)
        if any(n in self.g.outputs for n in a):
            return False
        ext_in = {u for n in b for u in self.g.inputs(n) if u not in sb}
        ext_out = {v for n in a for v in self.g.users(n) if v not in sa}
        return bool(ext_in) and ext_in <= sa and ext_out <= sb

    def _find_runs(self) -> list[list[Scope]]:
        """Maximal chains of identical sibling scopes, shallowest first."""
        children: dict[Scope, list[Scope]] = {}
        for path in self.blocks:
            children.setdefault(path[:-1], []).append(path)
        runs: list[list[Scope]] = []
        for parent in sorted(children, key=lambda p: (len(p), p)):
            sibs = children[parent]
            members = {p: self._members(p) for p in sibs}
            sigs = {p: self._signature(p, members[p]) for p in sibs}
            run = [sibs[0]]
            for prev, cur in zip(sibs, sibs[1:]):
                a, b = sigs[prev], sigs[cur]
                rep_a, rep_b = self.blocks[prev].repeat, self.blocks[cur].repeat
                # identical shapes, or one repeat() group (DenseNet layers widen)
                same = (a is not None and b is not None and a[0] == b[0]
                        and (a[1] == b[1] or (rep_a is not None and rep_b is not None
                                              and rep_a[0] == rep_b[0]))
                        and self.blocks[cur].kind == self.blocks[prev].kind
                        and self._chained(members[prev], members[cur]))
                if same:
                    run.append(cur)
                    continue
                if len(run) > 1:
                    runs.append(run)
                run = [cur]
            if len(run) > 1:
                runs.append(run)
        return sorted(runs, key=lambda r: (len(r[0]), min(
            (self.pos[n] for n in self._members(r[0])), default=0)))

    # ------------------------------------------------------------------ build

    def build(self) -> View:
        g = self.g
        # canonical names: nodes of copy i >= 1 of a run map onto copy 0 (then onto
        # copy 0 of a run nested in it: ``step`` applied until nothing changes)
        step: dict[str, str] = {n: n for n in self.order}
        copy_of: dict[str, list[tuple[int, int]]] = {n: [] for n in self.order}
        folds: dict[Scope, list[Scope]] = {}
        dropped: set[Scope] = set()
        for r, run in enumerate(self.runs):
            if any(_in_scope(run[0], d) for d in dropped):
                continue
            folds[run[0]] = run
            head = "/".join(self._real(run[0])) + "/"
            for i, path in enumerate(run):
                prefix = "/".join(self._real(path)) + "/"
                for n in self._members(path):
                    copy_of[n].append((r, i))
                    if i:
                        step[n] = head + n[len(prefix):]
                if i:
                    dropped.add(path)

        def canonical(n: str) -> str:
            while step[n] != n:
                n = step[n]
            return n

        canon = {n: canonical(n) for n in self.order}

        def resolve(n: str) -> str:
            while n in self.hidden and g.inputs(n):
                n = g.inputs(n)[0]
            return n

        def crosses(u: str, v: str) -> bool:
            """u and v lie in different copies of one fold (at any nesting)."""
            while True:
                cu = dict(copy_of[u])
                if any(r in cu and cu[r] != i for r, i in copy_of[v]):
                    return True
                if step[u] == u and step[v] == v:
                    return False
                u, v = step[u], step[v]

        shown = [n for n in self.order if canon[n] == n and n not in self.hidden]
        copies: dict[str, list[str]] = {n: [] for n in shown}
        for n in self.order:
            if canon[n] in copies and n not in self.hidden:
                copies[canon[n]].append(n)
        cg = nx.DiGraph()
        cg.add_nodes_from(shown)
        for v in self.order:
            if v in self.hidden:
                continue
            for u in g.inputs(v):
                u = resolve(u)
                if crosses(u, v) or canon[u] == canon[v]:
                    continue
                cg.add_edge(canon[u], canon[v])
        outputs = {canon[resolve(o)] for o in g.outputs}

        # fusion stays within one scope, so it does not depend on what is collapsed
        fused_into = self._fusion(shown, cg, outputs) if self.fuse else {}
        # a scope that draws as one box (a conv-BN-ReLU wrapper block) is not framed
        # as a cluster and does not count as a block inside its parent
        heads: dict[Scope, set[str]] = {}
        for n in shown:
            s = self.scope_of[n]
            for k in range(1, len(s) + 1):
                heads.setdefault(s[:k], set()).add(fused_into.get(n, n))
        self.trivial = {p for p, h in heads.items() if len(h) <= 1}

        def frame(s: Scope) -> Scope:
            """The cluster a box of scope ``s`` sits in: trivial scopes stripped."""
            k = len(s)
            while k and s[:k] in self.trivial:
                k -= 1
            return s[:k]

        collapsed: dict[Scope, bool] = {}

        def rep_scope(n: str) -> Scope | None:
            s = self.scope_of[n]
            for k in range(1, len(s) + 1):
                if s[:k] not in collapsed:
                    collapsed[s[:k]] = self._collapsed(s[:k])
                if collapsed[s[:k]]:
                    return s[:k]
            return None

        boxes: dict[str, Box] = {}
        box_of: dict[str, str] = {}
        for n in shown:
            rscope = rep_scope(n)
            if rscope is not None:
                bid = "/".join(rscope) + "/"
                if bid not in boxes:
                    run = folds.get(rscope, [])
                    boxes[bid] = Box(bid, "block", "block", [], frame(rscope[:-1]), rscope,
                                     max(len(run), 1), run)
            elif n in fused_into:
                bid = fused_into[n]
            else:
                bid = n
                op = g.op(n)
                kind = ("input" if isinstance(op, O.Input)
                        else "merge" if op.has(O.MERGE) else "layer")
                s = self.scope_of[n]
                box = boxes[bid] = Box(bid, kind, op.family, [], frame(s))
                for k in range(len(box.cluster) + 1, len(s) + 1):
                    if s[:k] in folds:  # a repeated one-box block: the box gets the badge
                        box.fold, box.copy_paths = len(folds[s[:k]]), folds[s[:k]]
                        break
            boxes[bid].nodes.append(n)
            box_of[n] = bid

        dg = nx.DiGraph()
        dg.add_nodes_from(boxes)
        edges: list[Edge] = []
        for v in shown:
            preds = sorted(cg.predecessors(v), key=self.pos.__getitem__)
            for u in preds:
                a, b = box_of[u], box_of[v]
                if a != b and not dg.has_edge(a, b):
                    dg.add_edge(a, b)
                    edges.append(Edge(a, b))
        skips = _skip_edges(dg, boxes, g)
        for e in edges:
            e.skip = (e.src, e.dst) in skips

        clusters: dict[Scope, Cluster] = {}
        for box in boxes.values():
            for k in range(1, len(box.cluster) + 1):
                path = box.cluster[:k]
                if path not in clusters:
                    run = folds.get(path, [])
                    clusters[path] = Cluster(path, self.blocks[path], max(len(run), 1), run)
        clusters = dict(sorted(clusters.items(), key=lambda kv: (len(kv[0]),)))
        succ = {n: list(cg.successors(n)) for n in shown}
        view = View(g, boxes, clusters, edges, copies, box_of, succ, blocks=self.blocks,
                    scope_of=self.scope_of, stages=self.stages)
        _level_skips(view, dg)
        return view

    def _fusion(self, shown: list[str], cg: nx.DiGraph, outputs: set[str]) -> dict[str, str]:
        """Node -> the head of the box it is drawn in (conv -> BN -> act and the like)."""
        g = self.g
        fused_into: dict[str, str] = {}
        for n in shown:
            op = g.op(n)
            if n in fused_into:
                continue
            chain: tuple[type[O.Op], ...]
            if isinstance(op, (O.Conv2d, O.ConvTranspose2d)):
                chain = (O.BatchNorm2d, O.Activation)
            elif isinstance(op, (O.Linear, O.BatchNorm2d)):
                chain = (O.Activation,)
            else:
                continue
            cur = n
            for want in chain:
                nxt = list(cg.successors(cur))
                if (cur in outputs or len(nxt) != 1 or not _is(g.op(nxt[0]), want)
                        or cg.in_degree(nxt[0]) != 1 or g.scope(nxt[0]) != g.scope(n)):
                    if want is O.BatchNorm2d:
                        continue  # conv -> activation without a BatchNorm
                    break
                fused_into[nxt[0]] = n
                cur = nxt[0]
        return fused_into

    def _collapsed(self, path: Scope) -> bool:
        if self._named(path, self.collapse):
            return True
        if self._named(path, self.expand) or path in self.trivial:
            return False
        if self.level == "stage" and len(path) == 1:
            return True
        if self.level in ("block", "stage") and self.blocks[path].kind != "scope":
            return not any(len(p) > len(path) and _in_scope(p, path) and b.kind != "scope"
                           and p not in self.trivial for p, b in self.blocks.items())
        return False


def _skip_edges(dg: nx.DiGraph, boxes: dict[str, Box], g: Graph) -> set[tuple[str, str]]:
    """Transitive edges, plus the shortest branch into an add or a multiply."""
    reduced = nx.transitive_reduction(dg)
    skips = {e for e in dg.edges if not reduced.has_edge(*e)}
    for bid, box in boxes.items():
        if box.kind != "merge" or not g.op(box.nodes[0]).has(O.ELEMENTWISE):
            continue
        branches = []
        for src in dg.predecessors(bid):
            path = [(src, bid)]
            cur = src
            while dg.in_degree(cur) == 1 and dg.out_degree(cur) == 1:
                prev = next(iter(dg.predecessors(cur)))
                path.append((prev, cur))
                cur = prev
            branches.append((len(path), cur, path))
        if len(branches) < 2:
            continue
        branches.sort(key=lambda b: b[0])
        length, fork, path = branches[0]
        if length == branches[1][0]:
            continue
        others = [b[2][0][0] for b in branches[1:]]
        if all(o == fork or nx.has_path(dg, fork, o) for o in others):
            skips.update(path)
    return skips


def _level_skips(view: View, dg: nx.DiGraph) -> None:
    """Mark skips whose path in between goes to a coarser resolution and back (U-Net):
    drawn with both ends on one rank, the encoder and decoder face each other."""
    area: dict[str, int | None] = {}
    for bid, box in view.boxes.items():
        shape = view.graph.meta(view.outputs_of(box)[-1]).get("shape")
        area[bid] = shape[1] * shape[2] if shape is not None and len(shape) == 3 else None
    rising: set[str] = set()
    for e in view.edges:
        a = area[e.src]
        if not e.skip or a is None or area[e.dst] is None:
            continue
        between = nx.descendants(dg, e.src) & nx.ancestors(dg, e.dst)
        areas = [v for x in between if (v := area[x]) is not None]
        low = min(areas, default=a)
        e.level = low < a
        if e.level:
            bottom = {x for x in between if area[x] == low}
            after = set().union(*(nx.descendants(dg, x) for x in bottom))
            rising |= {x for x in (between | {e.dst}) & after if area[x] != low}
    for e in view.edges:
        e.rising = not e.level and e.dst in rising
    for e in view.edges:
        if not e.level:
            continue
        climbs_on = any(f.rising and f.src == e.dst for f in view.edges)
        ups = [f.src for f in view.edges if f.rising and f.dst == e.dst]
        if climbs_on and len(ups) == 1 and dg.out_degree(ups[0]) == 1:
            # the up-sampling step arrives beside its skip, as in the U-Net figure
            view.ranks.append((e.src, e.dst, ups[0]))
        else:
            view.ranks.append((e.src, e.dst))
        if not climbs_on:  # the top of the decoder: a short tail stays on its row
            tail, cur = [e.dst], e.dst
            while (len(tail) < 5 and dg.out_degree(cur) == 1
                   and dg.in_degree(nxt := next(iter(dg.successors(cur)))) == 1):
                tail.append(nxt)
                cur = nxt
            if len(tail) > 1 and dg.out_degree(cur) == 0:
                view.rows.append(tuple(tail))


def build_view(graph: Graph, level: str = "layer", collapse: Sequence[str] | str = (),
               expand: Sequence[str] | str = (), fuse: bool = True, fold: bool = True) -> View:
    """The boxes, clusters and edges of ``graph``'s diagram; see the module docstring."""
    return _Builder(graph, level, _split(collapse), _split(expand), fuse, fold).build()


__all__ = ["View", "Box", "Cluster", "Edge", "build_view", "LEVELS", "HIDDEN_OPS"]
