"""One call for every analysis: shapes, params, MACs, memory, receptive fields.

::

    from cnnir import load
    from cnnir.analysis import analyze

    result = analyze(load("resnet50"))
    result.params, result.macs          # 25557032, 4089184256
    result.graph.meta("fc")["cost"]     # {"macs": 2048000, "flops": 4096000, ...}

Every node ends up with ``meta["shape"]``, ``meta["params"]``, ``meta["cost"]``,
``meta["memory"]`` and ``meta["rf"]`` (see the passes' docstrings for their
layouts); :class:`Analysis` holds the whole-graph totals.  Light: imports neither
torch nor onnx.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph
from .ops import Input
from .passes.count_macs import CountMacs
from .passes.count_params import CountParams
from .passes.infer_shapes import InferShapes
from .passes.memory import Memory
from .passes.receptive_field import ReceptiveField


def layer_count(graph: Graph) -> int:
    """The layers of ``graph``: every node but the input(s), the one definition that
    ``cnnir check``, ``report --compare`` and ``cnnir compare`` print."""
    return sum(not isinstance(v.op, Input) for v in graph.walk())


class Totals(dict):  # type: ignore[type-arg]
    """The totals as a dict; calling it returns itself (``a.totals()`` was a method)."""

    def __call__(self) -> Totals:
        return self


@dataclass(frozen=True)
class Analysis:
    """Whole-graph totals of :func:`analyze` (the graph carries the per-node results)."""

    graph: Graph
    dtype: str
    batch: int
    params: int            #: trainable parameters, biases included
    buffers: int           #: non-trainable state (BatchNorm running statistics)
    macs: int              #: multiply-accumulates (conv, transposed conv, linear)
    flops: int             #: 2 * macs
    other_ops: int         #: elementwise arithmetic (bias, BN, activations, pools...)
    param_bytes: int       #: parameters and buffers at ``dtype``
    activation_bytes: int  #: every node's output, summed
    peak_activation_bytes: int  #: peak of an inference pass freeing after last use
    notes: tuple[str, ...] = ()

    @property
    def layers(self) -> int:
        """Every node but the input (:func:`layer_count`)."""
        return layer_count(self.graph)

    @property
    def totals(self) -> Totals:
        """The totals in the report's JSON layout, an attribute like its siblings
        (``a.totals["macs"]``; ``a.totals()`` still works)."""
        return Totals({
            "params": self.params, "buffers": self.buffers, "macs": self.macs,
            "flops": self.flops, "other_ops": self.other_ops, "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
        })


def analyze(graph: Graph, dtype: str = "float32", batch: int = 1) -> Analysis:
    """Run every analysis pass on ``graph`` (shapes first where missing); return totals."""
    if any(v.meta.get("shape") is None for v in graph.walk()):
        InferShapes().run(graph)
    params = CountParams()
    params.run(graph)
    macs = CountMacs(batch=batch)
    macs.run(graph)
    mem = Memory(dtype=dtype, batch=batch)
    mem.run(graph, params_fresh=True)
    rf = ReceptiveField()
    rf.run(graph)
    return Analysis(
        graph=graph, dtype=dtype, batch=batch,
        params=params.total_params, buffers=params.total_buffers,
        macs=macs.total_macs, flops=2 * macs.total_macs, other_ops=macs.total_other_ops,
        param_bytes=mem.param_bytes, activation_bytes=mem.activation_bytes,
        peak_activation_bytes=mem.peak_bytes, notes=tuple(rf.notes),
    )


__all__ = ["Analysis", "Totals", "analyze", "layer_count"]
