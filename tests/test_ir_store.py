"""The IR's own store (plain dicts) against networkx, which it replaced: random builds
and rewirings must give the same topological order, users, edges and cycle errors as a
``networkx.MultiDiGraph`` mirrored step by step (the old store, the oracle here); and
``memory`` reading the parameters ``count-params`` just wrote gives the figures it
counts itself."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from cnnir import ops as O
from cnnir import zoo
from cnnir.analysis import analyze
from cnnir.errors import CnnirError
from cnnir.ir import Graph
from cnnir.passes.memory import Memory


class Mirror:
    """What the IR did with networkx: edges keyed by port, in the same order of calls."""

    def __init__(self) -> None:
        self.g = nx.MultiDiGraph()

    def add(self, name: str, inputs: tuple[str, ...]) -> None:
        self.g.add_node(name, inputs=inputs)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, name, key=port, port=port)

    def set_inputs(self, name: str, inputs: tuple[str, ...]) -> None:
        for u, _, k in list(self.g.in_edges(name, keys=True)):
            self.g.remove_edge(u, name, key=k)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, name, key=port, port=port)
        self.g.nodes[name]["inputs"] = inputs

    def remove(self, name: str) -> None:
        self.g.remove_node(name)

    def order(self) -> list[str]:
        index = {n: i for i, n in enumerate(self.g.nodes)}
        return list(nx.lexicographical_topological_sort(self.g, key=index.__getitem__))

    def users(self, name: str) -> list[str]:
        return list(dict.fromkeys(self.g.successors(name)))


def _edges(g: nx.MultiDiGraph) -> list[tuple[str, str, int]]:
    return sorted((u, v, d["port"]) for u, v, d in g.edges(data=True))


def _agree(g: Graph, m: Mirror) -> None:
    assert g.nodes() == m.order()
    assert len(g) == m.g.number_of_nodes()
    for n in g.nodes():
        assert g.users(n) == m.users(n), n
        assert g.inputs(n) == m.g.nodes[n]["inputs"]
    assert _edges(g.nx) == _edges(m.g)
    assert list(g.nx.nodes) == list(m.g.nodes)


@pytest.mark.parametrize("seed", range(12))
def test_random_builds_and_rewirings_agree_with_networkx(seed):
    rng = random.Random(seed)
    g, m = Graph(f"r{seed}"), Mirror()
    g.add("input", O.Input((2, 4, 4)))
    m.add("input", ())
    names = ["input"]
    for i in range(40):
        action = rng.random()
        if action < 0.6 or len(names) < 4:
            ins = tuple(rng.choice(names) for _ in range(rng.choice((1, 1, 2, 3))))
            n = f"n{i}"
            g.add(n, O.Add() if len(ins) == 2 else O.ReLU(), ins)
            m.add(n, ins)
            names.append(n)
        elif action < 0.9:
            # rewire a node to read anything that does not depend on it (no cycle)
            n = rng.choice(names[1:])
            below = nx.descendants(m.g, n) | {n}
            choices = [c for c in names if c not in below]
            ins = tuple(rng.choice(choices) for _ in range(rng.choice((1, 2))))
            g.set_inputs(n, ins)
            m.set_inputs(n, ins)
        else:
            idle = [n for n in names[1:] if not m.users(n)]
            if idle:
                n = rng.choice(idle)
                g.remove(n)
                m.remove(n)
                names.remove(n)
        _agree(g, m)


def test_insertion_order_is_kept_until_a_rewiring_needs_the_sort():
    g = Graph()
    g.add("input", O.Input((3, 8, 8)))
    g.add("a", O.ReLU(), ["input"])
    g.add("b", O.ReLU(), ["input"])
    assert g.nodes() == ["input", "a", "b"]
    g.set_inputs("a", ["b"])  # a now reads b, inserted after it
    assert g.nodes() == ["input", "b", "a"]
    g.add("c", O.ReLU(), ["a"])
    assert g.nodes() == ["input", "b", "a", "c"]


def test_a_cycle_is_named_as_networkx_finds_it():
    g, m = Graph("loop"), Mirror()
    for n, ins in (("input", ()), ("a", ("input",)), ("b", ("a",)), ("c", ("b",))):
        g.add(n, O.Input((3, 8, 8)) if not ins else O.ReLU(), ins)
        m.add(n, ins)
    g.set_inputs("a", ["c"])
    m.set_inputs("a", ("c",))
    cycle = nx.find_cycle(m.g)
    names = " -> ".join(str(e[0]) for e in cycle) + f" -> {cycle[0][0]}"
    assert names == "a -> b -> c -> a"
    with pytest.raises(CnnirError, match=f"graph 'loop' has a cycle: {names}$"):
        g.nodes()


def test_the_nx_view_follows_a_change_once_asked_again():
    g = Graph()
    g.add("input", O.Input((3, 8, 8)))
    g.add("a", O.ReLU(), ["input"])
    before = g.nx
    g.add("b", O.Sigmoid(), ["a"])
    assert "b" not in before and "b" in g.nx
    assert g.nx.nodes["b"]["meta"] is g.meta("b")  # the node's own meta dict
    assert list(g.nx.predecessors("b")) == ["a"]


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "densenet121", "mobilenet_v2"])
def test_memory_reading_the_counted_params_matches_counting_them(name):
    g = zoo.get(name).build()
    a = analyze(g)  # count-params, then memory with params_fresh
    fresh = {n: dict(g.meta(n)["memory"]) for n in g.nodes()}
    m = Memory()
    m.run(g)  # counts the parameters itself
    assert {n: g.meta(n)["memory"] for n in g.nodes()} == fresh
    assert (m.param_bytes, m.peak_bytes, m.activation_bytes) == (
        a.param_bytes,
        a.peak_activation_bytes,
        a.activation_bytes,
    )
    assert a.param_bytes == 4 * (a.params + a.buffers)
