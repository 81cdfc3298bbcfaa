"""Frontends: turn a model reference into an IR :class:`~cnnir.ir.Graph`.

:func:`load` reads a model file:

* a DSL file ``net.py`` or ``net.py:name`` when the file defines several models,
  or a file defining a PyTorch ``nn.Module`` (``net.py:ClassName``, a class that
  builds without arguments, or an instance), imported with ``torch.fx``,
* a ``.onnx`` file or a ``.json`` IR file (when those frontends are present).

The returned graph has its shapes inferred.  A zoo name (``resnet50``) is not a
file: :func:`cnnir.load` (the command layer, :mod:`cnnir.api`) resolves it, so the
frontends never import the zoo (models written in the DSL sit above the DSL).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import DslError, FrontendError, MissingFileError, UsageError
from ..ir import Graph
from ..passes.infer_shapes import infer_shapes

#: loaders by file suffix; other frontends register here (".onnx", ".json")
FILE_LOADERS: dict[str, str] = {
    ".onnx": "cnnir.frontends.onnx_import:load_onnx",
    ".json": "cnnir.frontends.json_io:load_json",
}


def parse_input(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"3x299x299"`` (or ``"3,299,299"``) -> ``(3, 299, 299)``; None passes through."""
    if text is None:
        return None
    if not isinstance(text, str):
        dims = tuple(text)
    else:
        parts = text.lower().replace(",", "x").split("x")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            raise UsageError(f"--input must look like 3x224x224, got {text!r}") from None
    if not dims or any(not isinstance(d, int) or d < 1 for d in dims):
        raise UsageError(f"--input needs positive sizes such as 3x224x224, got {text!r}")
    if len(dims) not in (1, 3):
        raise UsageError(f"--input must be CxHxW such as 3x224x224 (or F for a flat input), "
                         f"without the batch size, got {text!r}")
    return dims


class ForcedInput(tuple):  # type: ignore[type-arg]
    """An ``--input`` size given with ``--force``: used as given, even where it looks
    channels-last (:func:`check_input_layout`)."""


def check_input_layout(dims: tuple[int, ...] | None, declared: Sequence[int] | None = None,
                       model: str = "the model") -> str | None:
    """Refuse an ``--input`` that looks like the channels-last habit (``224x224x3``).

    ``dims`` is CxHxW; when C is at least H and larger than W (``224x224x3``), or larger
    than both, the user most likely wrote HxWxC: a :class:`UsageError` asks "did you
    mean 3x224x224?" (``--force`` uses it as given).  Otherwise, when ``declared``
    (the model's own input) has other channels, returns a note saying so; else None.
    """
    if dims is None or isinstance(dims, ForcedInput) or len(dims) != 3:
        return None
    c, h, w = dims
    text = "x".join(map(str, dims))
    change = ""
    if declared is not None and len(declared) == 3 and declared[0] != c:
        change = (f"{model} declares {declared[0]} input channel"
                  f"{'s' if declared[0] != 1 else ''} "
                  f"({'x'.join(map(str, declared))}); ")
    if (c >= h and c > w) or (c > h and c >= w):
        guess = f"{w}x{c}x{h}" if w < h else f"{h}x{c}x{w}"
        raise UsageError(f"--input {text} gives {c} input channels: {change}did you mean "
                         f"{guess}? (--input is CxHxW, channels first)",
                         hint="add --force to use it as given")
    if change:
        return (f"note: --input {text} changes the input channels: {change}the first "
                f"layer's weights change with them")
    return None


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"net.py:resnet"`` -> ``("net.py", "resnet")``; a plain path -> ``(path, None)``."""
    base, sep, name = spec.rpartition(":")
    if sep and base and name and not name.startswith(("\\", "/")) and os.path.splitext(base)[1]:
        return base, name
    return spec, None


def is_file_spec(spec: str) -> bool:
    """Whether MODEL names a file (it has a suffix or a directory part), not a zoo model."""
    path, _ = split_spec(spec)
    return bool(os.path.splitext(path)[1]) or os.sep in spec


def load(spec: str, input: str | Sequence[int] | None = None, infer: bool = True) -> Graph:
    """Load a model file (DSL ``.py[:NAME]``, ``.onnx``, ``.json``) as a graph with shapes
    inferred; :func:`cnnir.load` takes zoo names too."""
    from . import dsl

    shape = parse_input(input)
    check_input_layout(input if isinstance(input, ForcedInput) else shape)
    path, name = split_spec(spec)
    ext = os.path.splitext(path)[1].lower()
    if ext in FILE_LOADERS:
        if not os.path.isfile(path):
            raise MissingFileError(path)
        mod_name, func = FILE_LOADERS[ext].split(":")
        import importlib

        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            raise FrontendError(f"cannot read {ext} files: {exc}") from None
        graph = getattr(mod, func)(path, input=shape)
    elif ext == ".py":
        if not os.path.isfile(path):
            raise MissingFileError(path)
        namespace: dict = {}
        try:
            m = dsl.load_file(path, name, namespace)
        except DslError as exc:
            # not a DSL model: an nn.Module class or instance goes through torch.fx
            from .torch_import import torch_object

            obj = torch_object(namespace, name, path) if namespace else None
            if obj is None:
                raise
            not_dsl: DslError | None = exc
        else:
            not_dsl = None
            with dsl.user_code(path):
                graph = m.build(shape)
        if not_dsl is not None:
            from .torch_import import from_torch

            graph = from_torch(obj, input=shape, infer=False)
    else:
        if is_file_spec(spec) and not os.path.exists(path):
            raise MissingFileError(path)
        raise UsageError(f"cannot read {path}: MODEL must be a zoo name, a .py DSL file, "
                         f"a .onnx or a .json file")
    return infer_shapes(graph) if infer else graph


__all__ = ["load", "is_file_spec", "parse_input", "split_spec", "check_input_layout",
           "ForcedInput", "FILE_LOADERS"]
