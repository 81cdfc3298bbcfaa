"""Formulas as data: the terms an op's ``explain`` rule returns.

An :class:`Expr` is a small tree -- named quantities with their values (:class:`Sym`,
``H_in = 227``), constants, ``+ - * /`` and ``floor``, ``ceil``, ``max``, ``min`` --
that *evaluates* exactly (ints, and :class:`~fractions.Fraction` where a division or a
transposed conv's stride is not whole) and *renders* symbolically (``floor((H_in +
2*P - F) / S) + 1``) or with the numbers substituted (``floor((227 + 2*0 - 11) / 4) +
1``) as text or LaTeX.  Because the figure a report shows and the formula an
explanation prints are the same tree evaluated, they cannot disagree; the tests
evaluate every term of every zoo model against the analysis passes.

A :class:`Term` is one quantity of one layer: its ``kind`` (``shape`` -- one per
output dimension, named ``C``, ``H``, ``W`` or ``F``; ``param`` and ``buffer`` -- one
per array, named as in :meth:`~cnnir.ops.Op.params`; ``macs``; ``other`` -- the
other arithmetic, each named apart), its expression and a note.  Summing the terms
of one kind gives the figure the pass computes (absent kinds are zero).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .record import Record, record

Num = Any  #: int, or Fraction


def _norm(x: Num) -> Num:
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


class Expr(Record):
    """A formula: ``value()`` evaluates it, :func:`render` prints it."""

    def value(self) -> Num:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # arithmetic sugar so rules read like the formulas they are
    def __add__(self, other: Expr | int) -> Expr:
        return Bin("+", self, lift(other))

    def __radd__(self, other: int) -> Expr:
        return Bin("+", lift(other), self)

    def __sub__(self, other: Expr | int) -> Expr:
        return Bin("-", self, lift(other))

    def __mul__(self, other: Expr | int) -> Expr:
        return Bin("*", self, lift(other))

    def __rmul__(self, other: int) -> Expr:
        return Bin("*", lift(other), self)

    def __truediv__(self, other: Expr | int) -> Expr:
        return Bin("/", self, lift(other))


def _json_num(v: Num) -> Any:
    return v if isinstance(v, int) else str(v)


@record
class Sym(Expr):
    """A named quantity and its value (``Sym("H_in", 227)``)."""

    name: str
    val: Num

    def value(self) -> Num:
        return self.val

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": _json_num(self.val)}


@record
class Const(Expr):
    """A number of the formula itself (the ``1`` of ``+ 1``, the ``2`` of ``2*P``)."""

    val: Num

    def value(self) -> Num:
        return self.val

    def to_dict(self) -> dict[str, Any]:
        return {"const": _json_num(self.val)}


@record
class Bin(Expr):
    """``a op b`` for ``op`` in ``+ - * /`` (``/`` is exact: a Fraction if not whole)."""

    op: str
    a: Expr
    b: Expr

    def value(self) -> Num:
        x, y = self.a.value(), self.b.value()
        if self.op == "+":
            return _norm(x + y)
        if self.op == "-":
            return _norm(x - y)
        if self.op == "*":
            return _norm(x * y)
        return _norm(Fraction(x) / Fraction(y))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "args": [self.a.to_dict(), self.b.to_dict()]}


@record
class Call(Expr):
    """``floor(x)``, ``ceil(x)``, ``max(a, b, ...)``, ``min(a, b, ...)``; ``fn=""`` is a
    pair of parentheses kept for reading (the value of its one argument)."""

    fn: str
    args: tuple[Expr, ...]

    def value(self) -> Num:
        vals = [a.value() for a in self.args]
        if self.fn == "floor":
            return int(Fraction(vals[0]).__floor__())
        if self.fn == "ceil":
            return int(Fraction(vals[0]).__ceil__())
        if self.fn == "max":
            return max(vals)
        if self.fn == "min":
            return min(vals)
        return vals[0]  # "": parentheses the formula keeps (``H*W*C * (F*F*C_in)``)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.fn, "args": [a.to_dict() for a in self.args]}


def lift(x: Expr | int) -> Expr:
    """An Expr as it is; a number as a :class:`Const`."""
    return x if isinstance(x, Expr) else Const(x)


def floor(x: Expr) -> Expr:
    return Call("floor", (x,))


def ceil(x: Expr) -> Expr:
    return Call("ceil", (x,))


def maximum(*xs: Expr) -> Expr:
    return xs[0] if len(xs) == 1 else Call("max", tuple(xs))


def minimum(*xs: Expr) -> Expr:
    return xs[0] if len(xs) == 1 else Call("min", tuple(xs))


def paren(x: Expr) -> Expr:
    """``(x)``, kept for reading."""
    return Call("", (x,))


def total(*xs: Expr | int) -> Expr:
    """``x1 + x2 + ...`` (a single term as it is)."""
    out = lift(xs[0])
    for x in xs[1:]:
        out = Bin("+", out, lift(x))
    return out


def product(*xs: Expr | int) -> Expr:
    """``x1 * x2 * ...`` (a single factor as it is)."""
    out = lift(xs[0])
    for x in xs[1:]:
        out = Bin("*", out, lift(x))
    return out


@record
class Term(Record):
    """One quantity of one layer: ``kind`` (shape, param, buffer, macs, other), ``name``
    (``H``, ``weight``, ``bias adds``...), the formula and a note (``'same' padding``)."""

    kind: str
    name: str
    expr: Expr
    note: str = ""

    def value(self) -> Num:
        return self.expr.value()


#: the kinds of :class:`Term` an op's ``explain`` returns
TERM_KINDS = ("shape", "param", "buffer", "macs", "other")


# ------------------------------------------------------------------------- rendering

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _fmt_num(v: Num, latex: bool) -> str:
    if isinstance(v, Fraction):
        return rf"\frac{{{v.numerator}}}{{{v.denominator}}}" if latex else str(v)
    return str(v)


def _tex_name(name: str) -> str:
    if "_" not in name:
        return name if len(name) == 1 else rf"\mathrm{{{name}}}"
    head, tail = name.split("_", 1)
    tail = tail.replace("_", r"\_")
    return f"{head}_{{\\mathrm{{{tail}}}}}" if len(tail) > 1 else f"{head}_{{{tail}}}"


def render(e: Expr, numbers: bool = False, latex: bool = False) -> str:
    """``e`` as text or LaTeX, with names (``numbers=False``) or values substituted."""
    return _render(e, numbers, latex, 0)


def _render(e: Expr, numbers: bool, latex: bool, outer: int) -> str:
    if isinstance(e, Sym):
        if numbers:
            return _fmt_num(e.val, latex)
        return _tex_name(e.name) if latex else e.name
    if isinstance(e, Const):
        return _fmt_num(e.val, latex)
    if isinstance(e, Call):
        args = ", ".join(_render(a, numbers, latex, 0) for a in e.args)
        if not e.fn:
            return rf"\left({args}\right)" if latex else f"({args})"
        if not latex:
            return f"{e.fn}({args})"
        if e.fn == "floor":
            return rf"\left\lfloor {args} \right\rfloor"
        if e.fn == "ceil":
            return rf"\left\lceil {args} \right\rceil"
        return rf"\{e.fn}({args})"
    assert isinstance(e, Bin)
    prec = _PREC[e.op]
    if latex and e.op == "/":
        # the fraction bar groups: no parentheses kept for reading inside it
        a = e.a.args[0] if isinstance(e.a, Call) and not e.a.fn else e.a
        b = e.b.args[0] if isinstance(e.b, Call) and not e.b.fn else e.b
        return rf"\frac{{{_render(a, numbers, latex, 0)}}}{{{_render(b, numbers, latex, 0)}}}"
    left = _render(e.a, numbers, latex, prec)
    # a - (b + c), a / (b * c): the right operand binds tighter
    right = _render(e.b, numbers, latex, prec + (e.op in "-/"))
    sym = {"*": r" \cdot " if latex else "*", "/": " / ", "+": " + ", "-": " - "}[e.op]
    text = f"{left}{sym}{right}"
    if prec < outer:
        return rf"\left({text}\right)" if latex else f"({text})"
    return text


def group(v: Num, latex: bool = False) -> str:
    """A result with thousands grouped: ``34,944`` (LaTeX ``34{,}944``)."""
    if isinstance(v, Fraction):
        return _fmt_num(v, latex)
    text = f"{v:,}"
    return text.replace(",", "{,}") if latex else text


# ------------------------------------------------------------- shared derivations

_SIDES = {"H": ("top", "bottom"), "W": ("left", "right")}


def window_size(axis: str, size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                dilation: int = 1, ceil_mode: bool = False) -> Term:
    """The output size of a conv or pool window along ``axis`` ("H" or "W"):
    ``floor((I + 2P - D*(F-1) - 1) / S) + 1`` with the padding shown per side where it
    is asymmetric, ``- F`` where there is no dilation, ``ceil`` in ceil mode (and the
    window dropped that would start in the end padding, PyTorch's rule)."""
    i = Sym(f"{axis}_in", size)
    if pad_begin == pad_end:
        padded: Expr = i + Const(2) * Sym("P", pad_begin)
    else:
        b, e = _SIDES[axis]
        padded = i + Sym(f"P_{b}", pad_begin) + Sym(f"P_{e}", pad_end)
    f = Sym("F", kernel)
    reach: Expr = padded - f if dilation == 1 else padded - Sym("D", dilation) * paren(f - 1) - 1
    inner = paren(reach) / Sym("S", stride)
    notes = []
    if stride == 1 and pad_begin + pad_end == dilation * (kernel - 1) and kernel > 1:
        notes.append("'same' padding: P_begin + P_end = D*(F-1)"
                     + (", the extra pixel at the end" if pad_begin != pad_end else ""))
    if not ceil_mode:
        return Term("shape", axis, floor(inner) + 1, "; ".join(notes))
    expr = ceil(inner) + 1
    out = expr.value()
    if (out - 1) * stride >= size + pad_begin:
        expr = expr - 1
        notes.append(f"ceil mode; the last window would start in the end padding "
                     f"(({out} - 1)*{stride} >= {size} + {pad_begin}) and is dropped")
    else:
        notes.append("ceil mode")
    return Term("shape", axis, expr, "; ".join(notes))


def dims(shape: Any, suffix: str) -> list[Sym]:
    """``C_in, H_in, W_in`` (or ``F_in``) of a shape, as symbols."""
    names = ("C", "H", "W") if len(shape) == 3 else ("F",) if len(shape) == 1 else tuple(
        f"d{k}" for k in range(len(shape)))
    return [Sym(f"{n}_{suffix}", int(d)) for n, d in zip(names, shape)]


def dim_names(shape: Any) -> tuple[str, ...]:
    """The names of a shape's dimensions as shape terms use them."""
    return ("C", "H", "W") if len(shape) == 3 else ("F",) if len(shape) == 1 else tuple(
        f"d{k}" for k in range(len(shape)))


def same_shape(shape: Any) -> list[Term]:
    """Shape terms of an op whose output has its input's shape."""
    return [Term("shape", n, s) for n, s in zip(dim_names(shape), dims(shape, "in"))]


def elements(shape: Any, suffix: str = "out") -> Expr:
    """``C_out*H_out*W_out``: the number of elements of a shape."""
    return product(*dims(shape, suffix))


__all__ = ["Expr", "Sym", "Const", "Bin", "Call", "Term", "TERM_KINDS", "lift", "floor", "ceil",
           "maximum", "minimum", "total", "product", "paren", "render", "group",
           "window_size", "dims", "dim_names", "same_shape", "elements"]
