"""The one exception family of cnnir.

Every error a user can cause is a :class:`CnnirError`.  It carries the message,
the source location (``file:line`` of the DSL call, the ONNX node, the JSON
field...) and the IR node it is about, and renders as one compiler-style line::

    googlenet.py:57: error: add 'res3a/add' got 256x56x56 and 512x28x28 ...

The CLI prints ``str(err)`` and exits with code 2; anything that is not a
``CnnirError`` is a bug in cnnir and exits 1 with its traceback.
"""

from __future__ import annotations

from typing import Any


class CnnirError(Exception):
    """A user-facing error: bad model, bad input file, bad option."""

    def __init__(
        self,
        msg: str,
        loc: Any = None,
        node: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc = loc
        self.node = node
        self.hint = hint

    def with_context(self, loc: Any = None, node: str | None = None) -> CnnirError:
        """Fill in the location and node where they are still unknown; returns self."""
        if self.loc is None and loc is not None:
            self.loc = loc
        if self.node is None and node is not None:
            self.node = node
        return self

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        text = f"{where}error: {self.msg}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class DslError(CnnirError):
    """A mistake in a DSL program (wrong argument, tensor misuse, no output...)."""


class ShapeError(CnnirError):
    """A shape rule that cannot hold (kernel larger than input, channel mismatch...)."""


class PassError(CnnirError):
    """A bad pipeline string, an unknown pass or option, or a pass that cannot apply."""


class FrontendError(CnnirError):
    """A model file that cannot be read: not found, malformed, unsupported operator."""


class MissingFileError(FrontendError, FileNotFoundError):
    """A model (or other input) file that does not exist: a :class:`CnnirError` for the
    CLI (exit 2, one line) and a :class:`FileNotFoundError` for ``except`` clauses."""

    def __init__(self, path: str, msg: str | None = None, **kwargs: Any) -> None:
        super().__init__(msg or f"no such file: {path}", **kwargs)
        self.filename = path


class BackendError(CnnirError):
    """A backend that cannot emit or run the graph (missing tool, unusable provider)."""


class UsageError(CnnirError):
    """A bad command line: unknown model name, malformed --input, unwritable output."""
