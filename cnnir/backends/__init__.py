"""Backends: read a graph (and its analysis results) and emit something.

``TARGETS`` maps each ``cnnir compile --to`` target to ``"module:function"``;
the function has the signature ``emit(graph, args) -> (data, suffix)`` where
``data`` is ``str`` or ``bytes`` and ``suffix`` the default file suffix.
Backends are imported only when used, so heavy libraries stay off the report path.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..util import write_atomic

TARGETS: dict[str, str] = {
    "onnx": "cnnir.backends.onnx_export:emit_cli",
    "torch": "cnnir.backends.pytorch:emit_cli",
    "json": "cnnir.frontends.json_io:emit_cli",
}


def compile_cli(args: argparse.Namespace, load_graph: Callable[[argparse.Namespace], Any]) -> int:
    """``cnnir compile``: load, run passes, emit, write atomically, say where."""
    target = TARGETS.get(args.to)
    if target is None:
        raise UsageError(f"unknown target {args.to!r}; targets: {', '.join(TARGETS)}")
    mod_name, func = target.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("cnnir"):
            raise UsageError(f"the {args.to} target is not available in this build") from None
        raise
    graph = load_graph(args)
    data, suffix = getattr(mod, func)(graph, args)
    out = args.output or f"{graph.name}{suffix}"
    if data is not None:  # a backend that wrote its own files (external data) returns None
        write_atomic(out, data)
    print(f"wrote {out}", file=sys.stderr)
    return 0
