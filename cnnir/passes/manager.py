"""Run a pipeline of passes: re-infer shapes after every transform, time each pass,
and optionally print the IR after each one (``--print-after-all``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import PassError
from ..ir import Graph
from . import parse_pipeline
from .base import Pass
from .infer_shapes import InferShapes


@dataclass
class PassRecord:
    name: str
    kind: str
    seconds: float
    changed: bool
    notes: list[str]


@dataclass
class PassManager:
    passes: list[Pass]
    print_after_all: bool = False
    printer: Callable[[str], None] = print
    records: list[PassRecord] = field(default_factory=list)
    #: passes whose results are valid on the current graph
    _fresh: set[str] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def from_string(cls, pipeline: str, **kwargs: object) -> PassManager:
        return cls(parse_pipeline(pipeline), **kwargs)  # type: ignore[arg-type]

    def run(self, graph: Graph) -> Graph:
        """Run every pass in order; the graph's shapes are valid after each one.

        A pass's ``requires`` run first (once, recorded like the others) unless an
        earlier pass already produced them on the current graph; a transform makes
        every earlier analysis stale.
        """
        strict = not self.passes or self.passes[0].needs_valid_shapes
        if any("shape" not in graph.meta(n) for n in graph.nodes()):
            # a repair pass first (fix-residual) reads a graph that may not infer
            graph = InferShapes(strict=strict).run(graph)
        self._fresh = {InferShapes.name} if strict else set()
        for p in self.passes:
            graph = self._run_with_requirements(p, graph, ())
        return graph

    def _run_with_requirements(self, p: Pass, graph: Graph, chain: tuple[str, ...]) -> Graph:
        from . import get_pass

        if p.name in chain:
            raise PassError(f"passes require each other in a cycle: "
                            f"{' -> '.join((*chain, p.name))}")
        for req in p.requires:
            if req not in self._fresh:
                graph = self._run_with_requirements(get_pass(req), graph, (*chain, p.name))
        return self._run_one(p, graph)

    def _run_one(self, p: Pass, graph: Graph) -> Graph:
        t0 = time.perf_counter()
        out = p.run(graph)
        if p.kind == "transform":
            out = InferShapes().run(out)
            self._fresh = {InferShapes.name}
        self._fresh.add(p.name)
        dt = time.perf_counter() - t0
        self.records.append(PassRecord(p.name, p.kind, dt, p.changed, list(p.notes)))
        if self.print_after_all:
            self.printer(f"// IR after {p.name}\n{out.format()}")
        return out

    def timing_table(self) -> str:
        rows = [f"{'pass':<28} {'kind':<10} {'ms':>9}  changed"]
        for r in self.records:
            changed = "yes" if r.changed else "no"
            rows.append(f"{r.name:<28} {r.kind:<10} {r.seconds * 1e3:9.2f}  {changed}")
        return "\n".join(rows)


def run_pipeline(graph: Graph, pipeline: str | list[Pass]) -> Graph:
    """Convenience: run a pipeline string (or list of passes) on ``graph``."""
    passes = parse_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    return PassManager(passes).run(graph)
