"""cnnir: a graph-IR compiler and analyzer for convolutional neural networks.

Declare a network in the DSL (:mod:`cnnir.dsl`), load one (:func:`load`), analyse it
with passes, and emit PyTorch, ONNX, Graphviz or reports.  Heavy libraries
(torch, onnx, onnxruntime, graphviz) are imported only by the backends that need them.
"""

from __future__ import annotations

from ._version import __version__  # noqa: E402
from .api import (  # noqa: E402
    Diagram,
    RunResult,
    analyze,
    check,
    compare,
    compile,
    draw,
    load,
    report,
    run,
)
from .errors import (  # noqa: E402
    BackendError,
    CnnirError,
    DslError,
    FrontendError,
    PassError,
    ShapeError,
    UsageError,
)
from .ir import BlockInfo, Graph, Node, SourceLoc  # noqa: E402
from .ops import TensorShape  # noqa: E402
from .passes import get_pass, parse_pipeline  # noqa: E402
from .passes.infer_shapes import infer_shapes  # noqa: E402
from .passes.manager import PassManager, run_pipeline  # noqa: E402

__all__ = [
    "__version__", "load", "check", "analyze", "report", "compare", "compile", "draw", "run",
    "Diagram",
    "RunResult", "Graph", "Node", "SourceLoc", "BlockInfo", "TensorShape",
    "infer_shapes", "get_pass", "parse_pipeline", "PassManager", "run_pipeline",
    "CnnirError", "DslError", "ShapeError", "PassError", "FrontendError", "BackendError",
    "UsageError", "from_torch",
]


def __getattr__(name: str) -> object:
    """``cnnir.from_torch`` without importing torch until it is used."""
    if name == "from_torch":
        from .frontends.torch_import import from_torch

        return from_torch
    raise AttributeError(f"module 'cnnir' has no attribute {name!r}")
