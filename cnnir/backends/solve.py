"""``cnnir explain --solve``: the inverse questions a designer asks, each answer derived.

* ``padding``: which padding keeps the size (``--kernel F [--dilation D] [--stride S]
  [--size I]``): stride 1, ``P_begin + P_end = D*(F-1)``; stride S, the output
  ``ceil(I/S)`` ("same" as TensorFlow pads);
* ``output``: which kernel, stride and padding give a target output size (``--size I
  --out O [--kernel F] [--stride S]``), exact fits (no input row left over) first;
* ``rf``: which kernel gives a target receptive field in one layer, and how many
  stacked ``k x k`` stride-1 layers reach it (``--rf R [--kernel k] [--r-in r --j-in j]``,
  or ``r_in`` and ``j_in`` of ``--layer`` of a model);
* ``bottleneck``: what a 1x1 reduction saves in front of a conv (``--size CxHxW
  --filters K --kernel F --reduce R``, or the conv ``--layer`` of a model).

Every answer is a set of :class:`~cnnir.ops.formula.Term` formulas evaluated with the
ops' own rules (the bottleneck's costs come from :meth:`Conv2d.explain`), rendered like
``cnnir explain``'s layers in text, Markdown, LaTeX or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CnnirError, UsageError
from ..ops import Conv2d, TensorShape
from ..ops.formula import Const, Sym, Term, ceil, floor, paren, total, window_size
from .explain import Explanation, Layer

QUESTIONS = ("padding", "output", "rf", "bottleneck")


@dataclass
class Question:
    """The options of one question (None: not given)."""

    what: str
    size: tuple[int, ...] | None = None
    kernel: int | None = None
    stride: int | None = None
    dilation: int = 1
    out: int | None = None
    rf: int | None = None
    r_in: Any = 1
    j_in: Any = 1
    filters: int | None = None
    reduce: int | None = None
    bias: bool = False


def _need(q: Question, *names: str) -> None:
    missing = [n for n in names if getattr(q, n) is None]
    if missing:
        flags = ", ".join("--" + n.replace("_", "-") for n in missing)
        raise UsageError(f"--solve {q.what} needs {flags}")


def _answer(title: str, op: str, terms: list[Term], note: str = "") -> Layer:
    return Layer(name=title, op=op, attrs=note, loc="", inputs=[], output="", terms=terms)


def solve_padding(q: Question) -> list[Layer]:
    _need(q, "kernel")
    f, d, s = q.kernel, q.dilation, q.stride or 1
    size = q.size[-1] if q.size else 224
    assert f is not None
    if s == 1:
        tot = Sym("D", d) * paren(Sym("F", f) - 1)
        p_total = tot.value()
        begin, end = p_total // 2, p_total - p_total // 2
        terms = [Term("solve", "P_begin + P_end", tot, "stride 1: the window's reach"),
                 Term("solve", "P_begin", floor(tot / 2)),
                 Term("solve", "P_end", tot - floor(tot / 2),
                      "the extra pixel at the end (PyTorch's 'same')" if begin != end else "")]
    else:
        out = ceil(Sym("I", size) / Sym("S", s))
        reach = paren(out - 1) * Sym("S", s) + Sym("D", d) * paren(Sym("F", f) - 1) + 1
        need = reach - Sym("I", size)
        p_total = max(need.value(), 0)
        begin, end = p_total // 2, p_total - p_total // 2
        terms = [Term("solve", "O", out, "'same' with a stride: the output is ceil(I/S)"),
                 Term("solve", "P_begin + P_end", need, "clipped at 0" if need.value() < 0
                      else ""),
                 Term("solve", "P_begin", Const(begin)), Term("solve", "P_end", Const(end))]
    check = window_size("H", size, f, s, begin, end, d)
    terms.append(Term("solve", "check: H_out", check.expr, f"the size kept at I = {size}"))
    return [_answer(f"padding that keeps the size, F={f}, S={s}, D={d}", "solve padding", terms)]


def solve_output(q: Question) -> list[Layer]:
    _need(q, "size", "out")
    assert q.size is not None and q.out is not None
    size, target = q.size[-1], q.out
    kernels = [q.kernel] if q.kernel else range(1, 12)
    found: list[tuple[bool, int, int, int]] = []
    for f in kernels:
        strides = [q.stride] if q.stride else range(1, 9)
        for s in strides:
            for p in range(0, max(f, 1)):
                padded = size + 2 * p - q.dilation * (f - 1) - 1
                if padded >= 0 and padded // s + 1 == target:
                    found.append((padded % s != 0, f, s, p))
    if not found:
        raise CnnirError(f"--solve output: no kernel (1-11), stride (1-8) and padding "
                         f"(below the kernel) maps {size} to {target}")
    found.sort()
    layers = []
    for left_over, f, s, p in found[:8]:
        term = window_size("H", size, f, s, p, p, q.dilation)
        note = "exact: every input row is used" if not left_over else (
            "the last rows are not read by any window")
        layers.append(_answer(f"F={f}, S={s}, P={p}", "solve output", [term], note))
    return layers


def solve_rf(q: Question) -> list[Layer]:
    _need(q, "rf")
    assert q.rf is not None
    k = q.kernel or 3
    r_in, j_in = Sym("r_in", q.r_in), Sym("j_in", q.j_in)
    target = Sym("R", q.rf)
    if q.rf <= q.r_in:
        raise CnnirError(f"--solve rf: the input already sees {q.r_in} >= {q.rf}")
    one = paren(target - r_in) / j_in + 1
    terms = [Term("solve", "k (one layer)", one,
                  "from R = r_in + (k-1)*j_in" + ("" if isinstance(one.value(), int) else
                                                  ": not whole, round up"))]
    n = ceil(paren(target - r_in) / paren(paren(Sym("k", k) - 1) * j_in))
    terms.append(Term("solve", f"layers of {k}x{k}, stride 1", n,
                      "from R <= r_in + n*(k-1)*j_in"))
    reached = r_in + Sym("n", n.value()) * paren(Sym("k", k) - 1) * j_in
    terms.append(Term("solve", "r after them", reached))
    if k == 3 and q.r_in == 1 and q.j_in == 1:
        terms.append(Term("solve", "weights / C*C, the stack", Sym("n", n.value()) * Const(9),
                          "VGG's argument: n 3x3 layers vs one large kernel"))
        terms.append(Term("solve", "weights / C*C, one layer", paren(one) * paren(one)))
    return [_answer(f"receptive field {q.rf}", "solve rf", terms)]


def _conv_cost(name: str, op: Conv2d, x: TensorShape) -> tuple[list[Term], TensorShape]:
    out = op.infer([x])
    terms = [Term(t.kind, f"{name} {t.name}", t.expr, t.note) for t in op.explain([x], out)
             if t.kind in ("param", "macs")]
    return terms, out


def solve_bottleneck(q: Question, layer_op: Conv2d | None = None) -> list[Layer]:
    if layer_op is None:
        _need(q, "size", "filters", "kernel", "reduce")
        assert q.size is not None and q.filters is not None and q.kernel is not None
        if len(q.size) != 3:
            raise UsageError("--solve bottleneck needs --size CxHxW (e.g. 192x28x28)")
        p = q.kernel // 2
        layer_op = Conv2d(q.filters, (q.kernel, q.kernel), padding=(p, p, p, p), bias=q.bias)
    _need(q, "size", "reduce")
    assert q.size is not None and q.reduce is not None
    x = TensorShape(q.size)
    direct, _ = _conv_cost("direct", layer_op, x)
    reduce = Conv2d(q.reduce, (1, 1), bias=layer_op.bias)
    first, mid = _conv_cost("1x1", reduce, x)
    then, _ = _conv_cost(f"{layer_op.kernel[0]}x{layer_op.kernel[1]}", layer_op, mid)
    d_macs = sum(t.value() for t in direct if t.kind == "macs")
    b_macs = [t for t in first + then if t.kind == "macs"]
    via = sum(t.value() for t in b_macs)
    summary = [Term("solve", "MACs with the 1x1 first",
                    total(*(Sym(t.name.split()[0], t.value()) for t in b_macs))),
               Term("solve", "saving", Sym("direct", d_macs) / Sym("reduced", via),
                    f"{d_macs / via:.1f} times fewer MACs")]
    shape = "x".join(str(d) for d in q.size)
    return [_answer(f"direct {layer_op.attrs()} on {shape}", "solve bottleneck", direct),
            _answer(f"1x1 to {q.reduce} channels first", "solve bottleneck",
                    first + then + summary)]


def solve(q: Question, layer_op: Any = None) -> Explanation:
    """Answer one question (``q.what`` in :data:`QUESTIONS`)."""
    if q.what not in QUESTIONS:
        raise UsageError(f"unknown --solve question {q.what!r}; questions: {', '.join(QUESTIONS)}")
    if q.what == "bottleneck":
        layers = solve_bottleneck(q, layer_op)
    else:
        layers = {"padding": solve_padding, "output": solve_output, "rf": solve_rf}[q.what](q)
    return Explanation(model=f"solve {q.what}", layers=layers,
                       title=f"cnnir explain --solve {q.what}")


__all__ = ["Question", "QUESTIONS", "solve"]
