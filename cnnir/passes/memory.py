"""``memory``: activation and parameter bytes per node, and the peak of an inference pass.

Matches: every node.  Options: ``dtype`` (``float32`` 4 bytes, ``float16`` and ``bfloat16`` 2,
``int8`` 1 per element) and ``batch``.  Produces ``meta["memory"]``, a dict of ints::

    {"activation_bytes": 3211264,  # the node's output tensor, batch included
     "param_bytes": 37632,         # its parameters and buffers (BN statistics)
     "live_bytes": 4816896}        # activations alive while the node runs

``live_bytes`` comes from the schedule of an inference pass in topological order
(``graph.nodes()``) that allocates each node's output when the node runs and frees
a tensor right after its last user has run; the graph outputs stay alive to the
end.  While a node runs, its inputs and its output are alive together.  The peak
activation memory is the largest ``live_bytes`` (also :attr:`Memory.peak_bytes`).
The schedule does not run layers in place and does not alias views (flatten,
dropout, identity get buffers of their own): the figure is what a runtime without
those optimisations needs, an upper bound for one with them.  Parameter bytes are
not batch dependent and are not part of the activation peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PassError
from ..ir import Graph
from ..ops import TensorShape
from . import register
from .base import Pass
from .count_params import params_at

#: bytes per element of each supported dtype
DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of ``dtype``; raises for an unknown one."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise PassError(f"memory: unknown dtype {dtype!r}; "
                        f"supported: {', '.join(DTYPE_BYTES)}") from None


@register
@dataclass
class Memory(Pass):
    """Activation bytes per node, parameter bytes, peak activation memory of inference."""

    name = "memory"
    kind = "analysis"
    dtype: str = "float32"
    batch: int = 1

    #: totals of the last run
    peak_bytes: int = field(default=0, init=False, repr=False)
    activation_bytes: int = field(default=0, init=False, repr=False)
    param_bytes: int = field(default=0, init=False, repr=False)

    def run(self, graph: Graph, params_fresh: bool = False) -> Graph:
        """``params_fresh``: every node's ``meta["params"]`` was just written by
        :class:`~cnnir.passes.count_params.CountParams` on this very graph (what
        :func:`cnnir.analysis.analyze` does), so it is read rather than counted again."""
        size = dtype_bytes(self.dtype)
        if self.batch < 1:
            raise PassError(f"memory: batch must be at least 1, got {self.batch}")
        act_elem = size * self.batch
        views = graph.walk()
        n_nodes = len(views)

        # last user of every tensor, by position in the schedule
        last: dict[str, int] = {}
        for idx, v in enumerate(views):
            last[v.name] = idx
            for i in v.inputs:
                last[i] = idx
        for o in graph.outputs:
            last[o] = n_nodes

        live = peak = act_total = param_total = 0
        nbytes: dict[str, int] = {}
        known: dict[str, TensorShape] = {}
        for idx, v in enumerate(views):
            n = v.name
            meta = v.meta
            if params_fresh:
                counted = meta["params"]
                p, buf = counted["params"], counted["buffers"]
            else:
                p, _, buf = params_at(graph, v, known, "memory")
            shape = meta["shape"]
            known[n] = shape
            numel = 1
            for d in shape:
                numel *= d
            out = numel * act_elem
            nbytes[n] = out
            live += out
            pbytes = (p + buf) * size
            meta["memory"] = {
                "activation_bytes": out, "param_bytes": pbytes, "live_bytes": live}
            if live > peak:
                peak = live
            act_total += out
            param_total += pbytes
            inputs = v.inputs
            for i in (set(inputs) if len(inputs) > 1 else inputs):
                if last[i] == idx:
                    live -= nbytes[i]
            if last[n] == idx:  # nobody reads it and it is not an output
                live -= out
        self.peak_bytes = peak
        self.activation_bytes = act_total
        self.param_bytes = param_total
        return graph


def peak_activation_bytes(graph: Graph, dtype: str = "float32", batch: int = 1) -> int:
    """Run :class:`Memory` and return the peak activation bytes."""
    p = Memory(dtype=dtype, batch=batch)
    p.run(graph)
    return p.peak_bytes
