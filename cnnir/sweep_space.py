"""A sweep's design space: parameter specs, the grid or a seeded sample, ``--where`` filters.

A spec is ``NAME=VALUES`` (what ``cnnir sweep --grid`` takes):

* ``width=32,64,96``: those values (ints, floats, ``true``/``false``, or words);
* ``width=16..128:step8``: 16, 24, ..., 128 (an integer range without a step has step 1);
* ``lr=1e-4..1e-1:log``: a range drawn log-uniformly (only with ``--sample``; a float
  range without a step cannot be enumerated).

:func:`grid` is the product of the specs, in the order given (the last spec varies
fastest); :func:`sample` draws ``n`` distinct variants with ``random.Random(seed)``,
uniformly from lists and ranges, log-uniformly where ``:log`` says so (a stepped log
range snaps to the nearest step).  Both are pure functions of their arguments, so a
rerun (or a cluster) sees the same variants in the same order.

:class:`Where` is a filter expression (``macs < 600e6 and depth != 34``) read with
``ast`` and evaluated on a row without ``eval``: names, numbers, strings, arithmetic,
comparisons (``in`` a tuple included), ``and``/``or``/``not``.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import operator
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

Value = Any  # int, float, bool, None or str


def parse_value(text: str) -> Value:
    """``"64"`` -> 64, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


_RANGE = re.compile(r"^(?P<lo>[^.:][^:]*?)\.\.(?P<hi>[^:]+)(?P<opts>(:[a-z]+[^:]*)*)$")


@dataclass(frozen=True)
class Spec:
    """One parameter's values: a list, or a range ``lo..hi`` (with ``step`` and/or ``log``)."""

    name: str
    values: tuple[Value, ...] | None = None  #: a list spec
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    log: bool = False
    integer: bool = False  #: the range's ends (and step) are integers

    def enumerate(self) -> list[Value]:
        """Every value, for ``--grid``."""
        if self.values is not None:
            return list(self.values)
        assert self.lo is not None and self.hi is not None
        step = self.step if self.step is not None else (1 if self.integer else None)
        if step is None:
            raise UsageError(f"--grid {self.name}={self._text()}: a float range cannot be "
                             f"enumerated; give it a :stepS, or draw from it with --sample")
        n = int(math.floor((self.hi - self.lo) / step + 1e-9)) + 1
        out = [self.lo + i * step for i in range(n)]
        return [int(round(v)) for v in out] if self.integer else [round(v, 12) for v in out]

    def draw(self, rng: random.Random) -> Value:
        """One value, for ``--sample``."""
        if self.values is not None:
            return self.values[rng.randrange(len(self.values))]
        assert self.lo is not None and self.hi is not None
        if self.step is not None and not self.log:
            vals = self.enumerate()
            return vals[rng.randrange(len(vals))]
        if self.log:
            v = math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        else:
            v = rng.uniform(self.lo, self.hi)
        if self.step is not None:  # snap a log draw onto the step grid
            vals = self.enumerate()
            return min(vals, key=lambda s: abs(s - v))
        if self.integer:
            return min(max(int(round(v)), int(self.lo)), int(self.hi))
        return v

    def _text(self) -> str:
        if self.values is not None:
            return ",".join(map(str, self.values))
        text = f"{self.lo:g}..{self.hi:g}"
        text += f":step{self.step:g}" if self.step is not None else ""
        return text + (":log" if self.log else "")


def parse_spec(text: str) -> Spec:
    """``"width=16..128:step8"`` -> a :class:`Spec`; a malformed one is a UsageError."""
    name, sep, rhs = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or not rhs.strip():
        raise UsageError(f"--grid expects NAME=VALUES such as width=32,64 or "
                         f"width=16..128:step8, got {text!r}")
    m = _RANGE.match(rhs.strip())
    if m is None:
        vals = tuple(parse_value(v) for v in rhs.split(","))
        if any(v == "" for v in vals):
            raise UsageError(f"--grid {text}: an empty value")
        return Spec(name, values=vals)
    lo, hi = parse_value(m["lo"]), parse_value(m["hi"])
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
        raise UsageError(f"--grid {text}: a range needs numbers at both ends")
    step: float | None = None
    log = False
    for opt in filter(None, m["opts"].split(":")):
        if opt == "log":
            log = True
        elif opt.startswith("step") and isinstance(parse_value(opt[4:]), (int, float)):
            step = parse_value(opt[4:])
        else:
            raise UsageError(f"--grid {text}: unknown range option {opt!r} "
                             f"(options: :stepS, :log)")
    if hi < lo or (step is not None and step <= 0) or (log and lo <= 0):
        raise UsageError(f"--grid {text}: need lo <= hi, a positive step, and lo > 0 for :log")
    integer = all(isinstance(v, int) for v in (lo, hi)) and (step is None or isinstance(step, int))
    return Spec(name, lo=lo, hi=hi, step=step, log=log, integer=integer)


def parse_specs(texts: Iterable[str | Spec]) -> list[Spec]:
    specs = [t if isinstance(t, Spec) else parse_spec(t) for t in texts]
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise UsageError(f"--grid names {s.name!r} twice")
        seen.add(s.name)
    return specs


def grid(specs: Sequence[Spec]) -> list[dict[str, Value]]:
    """The product of the specs' values (the last spec varies fastest)."""
    names = [s.name for s in specs]
    return [dict(zip(names, combo)) for combo in itertools.product(*(s.enumerate() for s in specs))]


def sample(specs: Sequence[Spec], n: int, seed: int = 0) -> list[dict[str, Value]]:
    """``n`` distinct variants drawn with ``random.Random(seed)`` (fewer when the space
    holds fewer: drawing stops after ``100 n`` tries)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, Value]] = {}
    for _ in range(100 * n):
        if len(out) == n:
            break
        v = {s.name: s.draw(rng) for s in specs}
        out.setdefault(key(v), v)
    return list(out.values())


def key(params: Mapping[str, Value]) -> str:
    """A variant's identity (what a resumed sweep matches finished rows by)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- --where

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne,
        ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}


class Where:
    """A ``--where`` expression; ``w(row)`` is whether ``row`` (a dict) passes.

    A row lacking a name the expression uses (a failed variant has no metrics) does
    not pass.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise UsageError(f"--where {text!r}: not an expression ({exc.msg})") from None
        self.names: set[str] = set()
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        ok = (ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
              ast.Compare, ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List,
              *_BIN, *_CMP)
        if not isinstance(node, ok):
            raise UsageError(f"--where {self.text!r}: {type(node).__name__} is not allowed "
                             f"(names, numbers, arithmetic, comparisons, and/or/not)")
        if isinstance(node, ast.Name):
            self.names.add(node.id)
        for child in ast.iter_child_nodes(node):
            self._check(child)

    def __call__(self, row: Mapping[str, Any]) -> bool:
        if any(row.get(n) is None for n in self.names):
            return False
        try:
            return bool(self._eval(self.tree, row))
        except (TypeError, ZeroDivisionError, OverflowError):
            return False

    def _eval(self, node: ast.AST, row: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return row[node.id]
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self._eval(e, row) for e in node.elts)
        if isinstance(node, ast.BoolOp):
            vals = (self._eval(v, row) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, row)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(
                node.op, ast.USub) else +v)
        if isinstance(node, ast.BinOp):
            return _BIN[type(node.op)](self._eval(node.left, row), self._eval(node.right, row))
        assert isinstance(node, ast.Compare)
        left = self._eval(node.left, row)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._eval(right_node, row)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True


__all__ = ["Spec", "parse_spec", "parse_specs", "parse_value", "grid", "sample", "key", "Where"]
