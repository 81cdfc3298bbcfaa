"""Optional dependencies ("extras"): import one, or say in one line which extra installs it.

The core install (networkx, numpy, rich, onnx, graphviz) builds, analyses, reports,
draws, checks and reads/writes ONNX and JSON.  Two libraries are extras, because they
are large and because users often hold their own build of them:

- ``torch``: ``pip install 'cnnir[torch]'``, for ``compile --to torch``,
  ``compile(to="module")``, ``from_torch``, ``.pt`` weights and ``run --check``;
- ``onnxruntime``: ``pip install 'cnnir[run]'`` (CPU) or ``'cnnir[gpu]'``
  (onnxruntime-gpu, which carries the CPU provider too; never both), for ``cnnir run``.

:func:`require` is what a backend calls where it would ``import torch``: it returns
the module, or raises :class:`MissingExtra` (a :class:`~cnnir.errors.UsageError`, so
the CLI prints one line and exits 2) naming the extra.  :func:`missing` turns a
``ModuleNotFoundError`` already raised into the same error, for module-level imports.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UsageError

#: top-level module -> (extra, how to install it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "pip install 'cnnir[torch]'"),
    "onnxruntime": ("run", "pip install 'cnnir[run]' (CPU) or 'cnnir[gpu]' (CUDA), not both"),
    "distributed": ("sweep", "pip install 'cnnir[sweep]'"),
    "matplotlib": ("sweep", "pip install 'cnnir[sweep]'"),
}


class MissingExtra(UsageError):
    """An optional library that is not installed; the message says which extra brings it."""

    def __init__(self, module: str, what: str = "this") -> None:
        top = module.split(".")[0]
        self.module = top
        self.extra, how = EXTRAS[top]
        super().__init__(f"{what} needs {top}, which is not installed: {how}")


def missing(exc: ModuleNotFoundError, what: str = "this") -> MissingExtra | None:
    """The :class:`MissingExtra` for an import that failed because an extra is not
    installed (``exc.name`` is one of :data:`EXTRAS` or below it); None for any other
    missing module, which is a broken install rather than a choice."""
    top = (exc.name or "").split(".")[0]
    return MissingExtra(top, what) if top in EXTRAS else None


def require(module: str, what: str = "this") -> ModuleType:
    """``importlib.import_module(module)``, or :class:`MissingExtra` naming the extra.

    ``what`` names the feature in the message (``"cnnir run"``,
    ``"the PyTorch backend"``).  A module missing *inside* an installed extra (torch
    present but one of its own dependencies absent) is re-raised as it is.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        err = missing(exc, what)
        if err is None:
            raise
        raise err from None

