"""The pass interface: a named unit of work over a :class:`~cnnir.ir.Graph`.

A pass is a dataclass whose fields are its options (parsed from pipeline strings
such as ``insert-bottleneck{ratio=4,kernels=3,5}``).  ``kind`` is ``"analysis"``
(annotates ``meta`` and returns the same graph) or ``"transform"`` (returns a new
graph and sets ``changed``).  ``notes`` collects human-readable lines: what a
transform did, and why a candidate was skipped (shown by ``--explain``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..ir import Graph


@dataclass
class Pass:
    name: ClassVar[str] = "pass"
    kind: ClassVar[str] = "analysis"
    #: passes whose results this one reads; the manager runs them first if missing
    requires: ClassVar[tuple[str, ...]] = ()
    #: False for passes that read a graph whose shapes may not infer (check-residual,
    #: fix-residual): the manager then infers non-strictly before them
    needs_valid_shapes: ClassVar[bool] = True

    changed: bool = field(default=False, init=False, repr=False, compare=False)
    notes: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def run(self, graph: Graph) -> Graph:  # pragma: no cover - interface
        raise NotImplementedError

    def note(self, text: str) -> None:
        self.notes.append(text)

    @classmethod
    def summary(cls) -> str:
        """First line of the docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
