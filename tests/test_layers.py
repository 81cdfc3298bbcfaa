"""The package's layers hold: every import (function-level ones included, read with ``ast``)
runs down the flow errors < ops < ir < passes < frontends | backends < api < cli, and no
module sits in an import circle.

The flow is the one in DESIGN.md: a frontend never imports a backend, a backend never
imports a frontend (it reads the graph and the analyses), a pass imports neither.  Inside
one layer (two passes, two backends) imports are fine as long as they make no circle.

Named exceptions, each with its reason:

* ``cnnir`` (the package's ``__init__``) is the public face: it re-exports from every layer.
* ``cnnir.ir`` -> ``cnnir.api``: ``Graph.analyze()``, ``.report()``, ``.compile()`` ... are
  one-line conveniences that call the API (imported inside the method, so loading the IR
  loads nothing above it).  They are the only upward edge.
"""

from __future__ import annotations

import ast
import pathlib

import networkx as nx
import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "cnnir"

#: module (or package prefix) -> rank; a module may import only lower ranks (or its own layer)
LAYERS: list[tuple[str, ...]] = [
    ("cnnir._version", "cnnir.errors", "cnnir.util", "cnnir.rules", "cnnir.extras"),
    ("cnnir.ops",),
    ("cnnir.ir",),
    ("cnnir.passes", "cnnir.weights", "cnnir.analysis"),
    ("cnnir.frontends", "cnnir.dsl", "cnnir.zoo", "cnnir.backends"),
    ("cnnir.api", "cnnir.sweep", "cnnir.sweep_space", "cnnir.sweep_plot"),
    ("cnnir.cli", "cnnir.__main__"),
]
#: the two halves of the frontends | backends layer never import each other
SIDES = {"cnnir.frontends": "front", "cnnir.dsl": "front", "cnnir.zoo": "front",
         "cnnir.backends": "back"}
EXCEPTIONS = {("cnnir.ir", "cnnir.api")}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> tuple[int, str]:
    if module == "cnnir":  # the package face sits above everything
        return len(LAYERS), "cnnir"
    best: tuple[int, str, int] | None = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[2]:
                    best = (rank, prefix, len(prefix))
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best[0], best[1]


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".") if is_pkg else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from .. import ops`` imports cnnir.ops, not the package's __init__
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("cnnir"):
                found.add(name)
    return found


def _graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for module in MODULES:
        g.add_node(module)
        for target in _imports(module):
            g.add_edge(module, target)
    return g


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != "cnnir":
            _layer(module)


def test_imports_run_down_the_flow() -> None:
    wrong = []
    for a, b in _graph().edges:
        if a == "cnnir" or (a, b) in EXCEPTIONS:
            continue
        (ra, pa), (rb, pb) = _layer(a), _layer(b)
        side_a, side_b = SIDES.get(pa), SIDES.get(pb)
        if rb > ra or (side_a and side_b and side_a != side_b):
            wrong.append(f"{a} imports {b}")
    assert not wrong, "imports against the flow:\n  " + "\n  ".join(sorted(wrong))


def test_no_import_circle() -> None:
    g = _graph()
    g.remove_edges_from([e for e in list(g.edges) if e[0] == "cnnir" or e in EXCEPTIONS])
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not circles, "import circles:\n  " + "\n  ".join(", ".join(c) for c in circles)


def test_no_argparse_below_the_cli() -> None:
    users = sorted(m for m in MODULES if "argparse" in {
        n.names[0].name if isinstance(n, ast.Import) else (n.module or "")
        for n in ast.walk(ast.parse(MODULES[m].read_text()))
        if isinstance(n, (ast.Import, ast.ImportFrom))} and not m.startswith("cnnir.cli"))
    assert not users, f"argparse outside cnnir.cli: {users}"


@pytest.mark.parametrize("bad", [("cnnir.passes.fuse", "cnnir.backends.dot"),
                                 ("cnnir.backends.dot", "cnnir.frontends.dsl"),
                                 ("cnnir.ops", "cnnir.ir")])
def test_the_check_catches_a_wrong_import(bad: tuple[str, str]) -> None:
    """The rule itself: each of these edges would be reported."""
    (ra, pa), (rb, pb) = _layer(bad[0]), _layer(bad[1])
    side_a, side_b = SIDES.get(pa), SIDES.get(pb)
    assert rb > ra or (side_a and side_b and side_a != side_b)
