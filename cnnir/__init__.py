"""cnnir: a graph-IR compiler and analyzer for convolutional neural networks.

Declare a network in the DSL (:mod:`cnnir.dsl`), load one (:func:`load`), analyse it
with passes, and emit PyTorch, ONNX, Graphviz or reports.  Heavy libraries
(torch, onnx, onnxruntime, graphviz) are imported only by the backends that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:  # what the names below are; at run time each loads on first use
    from .api import (  # noqa: E402
        Diagram,
        RunResult,
        analyze,
        budget,
        check,
        compare,
        compare_models,
        compile,
        draw,
        explain,
        load,
        report,
        run,
        solve,
        symbolic,
        training,
    )
    from .errors import (  # noqa: E402
        BackendError,
        CnnirError,
        DslError,
        FrontendError,
        MissingFileError,
        PassError,
        ShapeError,
        UsageError,
    )
    from .ir import BlockInfo, Graph, Node, SourceLoc  # noqa: E402
    from .ops import TensorShape  # noqa: E402
    from .passes import get_pass, parse_pipeline  # noqa: E402
    from .passes.infer_shapes import infer_shapes  # noqa: E402
    from .passes.manager import PassManager, run_pipeline  # noqa: E402

#: name -> the module it lives in: ``import cnnir`` (and ``cnnir --version``) loads
#: nothing but the version; ``cnnir.load`` loads the command layer when first used
_LAZY = {
    **dict.fromkeys(["Diagram", "RunResult", "analyze", "check", "compare", "compile", "draw",
                     "load", "report", "run", "explain", "solve", "training", "budget",
                     "compare_models", "symbolic"], "api"),
    **dict.fromkeys(["BackendError", "CnnirError", "DslError", "FrontendError", "PassError",
                     "ShapeError", "UsageError", "MissingFileError"], "errors"),
    **dict.fromkeys(["BlockInfo", "Graph", "Node", "SourceLoc"], "ir"),
    "TensorShape": "ops", "get_pass": "passes", "parse_pipeline": "passes",
    "infer_shapes": "passes.infer_shapes", "PassManager": "passes.manager",
    "run_pipeline": "passes.manager", "from_torch": "frontends.torch_import",
}

__all__ = [
    "__version__", "load", "check", "analyze", "report", "compare", "compile", "draw", "run",
    "explain", "solve", "training", "budget", "compare_models", "symbolic", "Diagram",
    "RunResult", "Graph", "Node", "SourceLoc", "BlockInfo", "TensorShape",
    "infer_shapes", "get_pass", "parse_pipeline", "PassManager", "run_pipeline",
    "CnnirError", "DslError", "ShapeError", "PassError", "FrontendError", "BackendError",
    "UsageError", "MissingFileError", "from_torch",
]


def __getattr__(name: str) -> object:
    """A public name (:data:`_LAZY`) or a submodule (``cnnir.zoo``), imported on first use
    (``cnnir.from_torch`` does not import torch until it is used)."""
    where = _LAZY.get(name)
    if where is not None:
        value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'cnnir' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'cnnir' has no attribute {name!r}")
    globals()[name] = value
    return value
