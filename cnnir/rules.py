"""Per-target rule tables: how each target (a backend or a frontend) lowers or reads ops.

An op says what it *means* in :mod:`cnnir.ops` (shape, parameters, cost, receptive
field, traits).  How a *target* spells it -- an ``nn.Module`` call, an ONNX node, an
ONNX or torch.fx pattern read back -- stays with that target, registered per key in a
:class:`RuleTable`, so a target's module reads as its list of rules (as MLIR keeps
its conversions apart from the ops)::

    TORCH = RuleTable("pytorch")

    @TORCH.rule(O.Conv2d)
    def _conv(op, ...): ...

    TORCH.refuse(O.Crop, "cropping is not emitted to PyTorch yet")

Keys are op classes for the targets that *emit* (PyTorch, ONNX export, diagrams)
and foreign names for the targets that *read* (an ONNX ``op_type``, a torch module
class name); a reading rule names the cnnir ops it can produce with ``produces=``,
so the coverage test (``tests/test_rule_coverage.py``) can name every op that some
target neither handles nor refuses on purpose.  A deliberate refusal is a rule: it
gives the user a clear error instead of a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from .errors import CnnirError

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


def _name(key: Hashable) -> str:
    return getattr(key, "kind", None) or getattr(key, "__name__", None) or str(key)


class RuleTable(Generic[R]):
    """The rules of one target, keyed by op class (emitters) or foreign name (readers)."""

    #: every table made, by target name: what the coverage test walks
    ALL: dict[str, RuleTable[Any]] = {}

    def __init__(self, target: str, *, reads: bool = False) -> None:
        self.target = target
        #: True for a frontend table (keys are foreign names; ``produces`` counts)
        self.reads = reads
        self._rules: dict[Hashable, R] = {}
        self._refused: dict[Hashable, str] = {}
        self._produces: dict[Hashable, tuple[type, ...]] = {}
        self._not_produced: dict[type, str] = {}
        RuleTable.ALL[target] = self

    # -- registering -------------------------------------------------------------------
    def rule(self, *keys: Hashable, produces: Iterable[type] = ()) -> Callable[[F], F]:
        """Decorator: ``fn`` is this target's rule for each of ``keys``."""
        made = tuple(produces)

        def register(fn: F) -> F:
            for key in keys:
                if key in self._rules or key in self._refused:
                    raise ValueError(f"{self.target}: a rule for {_name(key)} exists already")
                self._rules[key] = fn  # type: ignore[assignment]
                self._produces[key] = made
            return fn

        return register

    def add(self, key: Hashable, rule: R, produces: Iterable[type] = ()) -> None:
        """Register a rule that is a value (a class, a tuple) rather than a function."""
        if key in self._rules or key in self._refused:
            raise ValueError(f"{self.target}: a rule for {_name(key)} exists already")
        self._rules[key] = rule
        self._produces[key] = tuple(produces)

    def refuse(self, key: Hashable, reason: str) -> None:
        """Declare on purpose that this target does not handle ``key``, and why."""
        if key in self._rules:
            raise ValueError(f"{self.target}: {_name(key)} has a rule; it cannot be refused")
        self._refused[key] = reason

    def not_produced(self, op_type: type, reason: str) -> None:
        """A reading target: declare on purpose that no foreign pattern yields ``op_type``."""
        self._not_produced[op_type] = reason

    # -- looking up --------------------------------------------------------------------
    def __contains__(self, key: Hashable) -> bool:
        return key in self._rules

    def get(self, key: Hashable) -> R | None:
        """The rule for ``key``, or None (refused or unknown)."""
        return self._rules.get(key)

    def lookup(self, key: Hashable, what: str = "") -> R:
        """The rule for ``key``; a refusal or a missing rule is a :class:`CnnirError`."""
        if key in self._rules:
            return self._rules[key]
        subject = what or _name(key)
        if key in self._refused:
            raise CnnirError(f"{self.target}: {subject}: {self._refused[key]}")
        raise CnnirError(f"{self.target} has no rule for {subject}")

    def keys(self) -> list[Hashable]:
        return list(self._rules)

    def refused(self) -> dict[Hashable, str]:
        return dict(self._refused)

    def handles(self, key: Hashable) -> bool:
        """True when ``key`` has a rule or a deliberate refusal."""
        return key in self._rules or key in self._refused

    def produced(self) -> set[type]:
        """Reading targets: the cnnir op classes some rule can produce, or declared not to."""
        out: set[type] = set(self._not_produced)
        for made in self._produces.values():
            out.update(made)
        return out
