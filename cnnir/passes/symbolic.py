"""Costs as formulas of the input size: params, MACs and memory as exact polynomials
in ``H``, ``W`` and the batch ``N``.

Matches: a model with a ``CxHxW`` input that can be rebuilt at other sizes (a zoo
name, a DSL file: ``--input`` sizes; a graph whose layers take their sizes from their
inputs).  Produces a :class:`Symbolic`: each figure of the report's totals as a
:class:`Poly` with :class:`~fractions.Fraction` coefficients, the sizes for which
it holds, and the sizes it was checked at.

Why a residue class.  Every size rule of a conv or pool is
``floor((I + p - d(k-1) - 1)/s) + 1`` (ceil with ``ceil_mode``); a transposed conv,
an upsample by an integer scale, a pad and a flatten are affine without a floor; an
adaptive pool and an upsample to a fixed size give a constant.  So the size of each
map is affine in ``H`` on each class ``H = r (mod L)`` where ``L`` makes every
division exact, and a product of an ``H``-affine and a ``W``-affine factor (a conv's
MACs, an activation's elements, a linear layer's weights after a flatten) is
bilinear: terms ``1, H, W, H*W``.  MACs and activation memory are ``N`` times that
(the passes multiply by the batch); parameters do not depend on ``N``.

How it is found, from the numeric analysis only (the ``infer-shapes``,
``count-params``, ``count-macs`` and ``memory`` passes; nothing is re-derived here):

1. the period: the shapes at ``H0`` and ``H0 + D`` (``D`` = 2^8 3^3 5^2 7, a
   multiple of any stride product of 2s, 3s, 5s and 7s up to 256, 27, 25, 7) give
   each map's slope along ``H`` exactly; ``L_H`` is the least ``L`` for which
   ``L * slope`` is whole for every size of every node (likewise ``W``);
2. the fit: the figures at the 3x3 grid ``H0 + i L_H, W0 + j L_W`` (``i, j`` in
   0..2) interpolated exactly (Lagrange, rational arithmetic): degree up to 2 per
   axis, so a wrong degree bound would show as a failed check;
3. the check: the formula against the analysis at sizes the fit did not use (far
   ones: ``H0 + D``; grid points beyond; another batch), and down the class to the
   smallest size where the model is valid (``H_min``).  Any difference raises.

The peak activation memory is a maximum over the schedule's steps, each a bilinear
polynomial: the node whose live set dominates every other on the whole domain is
found exactly (a bilinear ``q`` is >= 0 on ``H >= H0, W >= W0`` iff ``q(H0, W0)``,
``dq/dH`` at ``W0``, ``dq/dW`` at ``H0`` and the ``H*W`` coefficient are >= 0); where
none does the peak is the maximum of the few that can be largest.

Other ops (bias adds, pools, an adaptive pool's bins) are not fitted: an adaptive
pool's bin sizes depend on its input modulo its output size, a period of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd
from typing import Any

from ..errors import CnnirError
from ..ir import Graph
from .count_macs import CountMacs
from .count_params import CountParams
from .memory import Memory

#: a monomial: the exponents of H, W and N
Mono = tuple[int, int, int]
VARS = ("H", "W", "N")

#: the period search step: a multiple of every stride product of 2s, 3s, 5s, 7s seen in CNNs
PERIOD_PROBE = 2**8 * 3**3 * 5**2 * 7

#: the figures fitted, in the report's totals' names; those scaled by the batch
FIGURES = ("params", "buffers", "param_bytes", "macs", "activation_bytes")
PER_IMAGE = frozenset({"macs", "activation_bytes", "peak_activation_bytes"})


def _lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


class Poly:
    """A polynomial in ``H``, ``W``, ``N`` with exact rational coefficients.

    ``Poly.var("H") * Poly.var("W") * 9 + 1``; ``p(H=224, W=224, N=1)`` is a Fraction,
    ``p.value(...)`` an int (raises if it is not whole).  ``str(p)`` is the text form
    with one common denominator: ``(3*H*W + 2*H) / 4``."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Mono, Fraction | int] | None = None) -> None:
        self.terms: dict[Mono, Fraction] = {
            m: Fraction(c) for m, c in (terms or {}).items() if c != 0
        }

    @classmethod
    def const(cls, c: Fraction | int) -> Poly:
        return cls({(0, 0, 0): c})

    @classmethod
    def var(cls, name: str) -> Poly:
        e = [0, 0, 0]
        e[VARS.index(name)] = 1
        return cls({(e[0], e[1], e[2]): 1})

    def _coerce(self, other: Poly | Fraction | int) -> Poly:
        return other if isinstance(other, Poly) else Poly.const(other)

    def __add__(self, other: Poly | Fraction | int) -> Poly:
        out = dict(self.terms)
        for m, c in self._coerce(other).terms.items():
            out[m] = out.get(m, Fraction(0)) + c
        return Poly(out)

    __radd__ = __add__

    def __neg__(self) -> Poly:
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: Poly | Fraction | int) -> Poly:
        return self + (-self._coerce(other))

    def __mul__(self, other: Poly | Fraction | int) -> Poly:
        out: dict[Mono, Fraction] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in self._coerce(other).terms.items():
                m = (m1[0] + m2[0], m1[1] + m2[1], m1[2] + m2[2])
                out[m] = out.get(m, Fraction(0)) + c1 * c2
        return Poly(out)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (int, Fraction)):
            other = Poly.const(other)
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def __call__(self, H: int = 0, W: int = 0, N: int = 1) -> Fraction:
        total = Fraction(0)
        for (a, b, n), c in self.terms.items():
            total += c * H**a * W**b * N**n
        return total

    def value(self, H: int = 0, W: int = 0, N: int = 1) -> int:
        """The polynomial at a size, as an int (a figure is always whole)."""
        v = self(H, W, N)
        if v.denominator != 1:
            raise ValueError(f"{self} is not whole at H={H}, W={W}, N={N}: {v}")
        return v.numerator

    def degree(self, name: str) -> int:
        i = VARS.index(name)
        return max((m[i] for m in self.terms), default=0)

    def depends_on(self, name: str) -> bool:
        return self.degree(name) > 0

    def coefficient(self, h: int = 0, w: int = 0, n: int = 0) -> Fraction:
        return self.terms.get((h, w, n), Fraction(0))

    @property
    def denominator(self) -> int:
        """The least common denominator of the coefficients."""
        d = 1
        for c in self.terms.values():
            d = _lcm(d, c.denominator)
        return d

    def monomials(self) -> list[tuple[Mono, Fraction]]:
        """The terms, highest degree first (``N*H*W, N*H, N*W, N``)."""
        return sorted(self.terms.items(), key=lambda t: (-sum(t[0]), -t[0][0], -t[0][1], -t[0][2]))

    @staticmethod
    def monomial_name(m: Mono, sep: str = "*") -> str:
        parts = []
        for name, e in zip(("N", "H", "W"), (m[2], m[0], m[1])):
            parts += [name] * e if e <= 2 else [f"{name}^{e}"]
        return sep.join(parts) or "1"

    def format(self, sep: str = "*", thousands: bool = True, factor_n: bool = True) -> str:
        """Text: one denominator for all terms, ``N`` taken out where every term has it
        (``N * (81*H*W + 2*H) / 4``)."""
        if not self.terms:
            return "0"
        terms = self.terms
        n_out = factor_n and all(m[2] >= 1 for m in terms)
        if n_out:
            terms = {(m[0], m[1], m[2] - 1): c for m, c in terms.items()}
        inner = Poly(terms)
        den = inner.denominator
        parts: list[str] = []
        for m, c in inner.monomials():
            num = c * den
            assert num.denominator == 1
            k = num.numerator
            mono = Poly.monomial_name(m, sep)
            mag = f"{abs(k):,}" if thousands else str(abs(k))
            body = mag if mono == "1" else (mono if abs(k) == 1 else f"{mag}{sep}{mono}")
            sign = "-" if k < 0 else "+"
            parts.append(
                body if not parts and k > 0 else (f"-{body}" if not parts else f"{sign} {body}")
            )
        text = " ".join(parts)
        if den != 1:
            text = f"({text}) / {den:,}" if thousands else f"({text}) / {den}"
        elif len(parts) > 1 and n_out:
            text = f"({text})"
        return f"N{sep}{text}" if n_out else text

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Poly({self.format(thousands=False)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON: exact integer numerators over one denominator, by monomial name."""
        den = self.denominator
        return {
            "denominator": den,
            "numerators": {Poly.monomial_name(m): (c * den).numerator for m, c in self.monomials()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Poly:
        den = d["denominator"]
        terms: dict[Mono, Fraction] = {}
        for name, num in d["numerators"].items():
            e = [0, 0, 0]
            if name != "1":
                for f in name.split("*"):
                    e[{"H": 0, "W": 1, "N": 2}[f]] += 1
            terms[(e[0], e[1], e[2])] = Fraction(num, den)
        return cls(terms)


def lagrange(points: list[int], var: str) -> list[Poly]:
    """The Lagrange basis over ``points`` in ``var``: ``L_i(points[j]) = [i == j]``."""
    x = Poly.var(var)
    basis = []
    for i, xi in enumerate(points):
        p = Poly.const(1)
        for j, xj in enumerate(points):
            if j != i:
                p = p * (x - xj) * Fraction(1, xi - xj)
        basis.append(p)
    return basis


def interpolate(hs: list[int], ws: list[int], values: Mapping[tuple[int, int], int]) -> Poly:
    """The polynomial of degree < len(hs) in H and < len(ws) in W through
    ``values[(h, w)]`` on the grid ``hs x ws`` (exact)."""
    lh, lw = lagrange(hs, "H"), lagrange(ws, "W")
    out = Poly()
    for i, h in enumerate(hs):
        for j, w in enumerate(ws):
            v = values[(h, w)]
            if v:
                out = out + lh[i] * lw[j] * v
    return out


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    """The numeric analysis at one size: the totals, each node's live bytes, each
    top-level stage's figures (all per ``batch`` images)."""

    h: int
    w: int
    batch: int
    totals: dict[str, int]
    live: dict[str, int]
    stages: dict[str, dict[str, int]]
    shapes: dict[str, tuple[int, ...]]


def stage_of(graph: Graph, name: str) -> str:
    """A node's top-level stage: its outermost block, or the node itself."""
    scope = graph.scope(name)
    return scope[0] if scope else name


def measure(graph: Graph, dtype: str = "float32", batch: int = 1) -> Sample:
    """Run ``count-params``, ``count-macs`` and ``memory`` on ``graph`` (shapes inferred)."""
    params, macs, mem = CountParams(), CountMacs(batch=batch), Memory(dtype=dtype, batch=batch)
    params.run(graph)
    macs.run(graph)
    mem.run(graph)
    live: dict[str, int] = {}
    stages: dict[str, dict[str, int]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for v in graph.walk():
        meta = v.meta
        live[v.name] = meta["memory"]["live_bytes"]
        shapes[v.name] = tuple(meta["shape"])
        st = stages.setdefault(
            stage_of(graph, v.name), {"params": 0, "macs": 0, "activation_bytes": 0}
        )
        st["params"] += meta["params"]["params"]
        st["macs"] += meta["cost"]["macs"]
        st["activation_bytes"] += meta["memory"]["activation_bytes"]
    h, w = graph.input_shape[1:3]
    totals = {
        "params": params.total_params,
        "buffers": params.total_buffers,
        "param_bytes": mem.param_bytes,
        "macs": macs.total_macs,
        "activation_bytes": mem.activation_bytes,
        "peak_activation_bytes": mem.peak_bytes,
    }
    return Sample(h, w, batch, totals, live, stages, shapes)


# --------------------------------------------------------------------------- the result


@dataclass
class Symbolic:
    """The figures of a model as polynomials in ``H``, ``W`` (the input's height and
    width) and ``N`` (the batch), and where they hold.

    ``formulas`` maps ``params``, ``buffers``, ``param_bytes``, ``macs`` and
    ``activation_bytes`` (every node's output, summed; at ``dtype``) to a :class:`Poly`;
    ``peak`` is the peak activation memory as the maximum of its polynomials (one
    where a single step of the schedule dominates everywhere, ``peak_nodes``).  They
    hold for ``H = residue[0] (mod modulus[0])``, ``H >= minimum[0]``, and likewise
    ``W``; ``checked`` lists the ``(H, W, N)`` where each was compared with the
    numeric analysis and agreed exactly."""

    model: str
    channels: int
    input: tuple[int, int]  #: the size the model declares (H0, W0)
    dtype: str
    batch: int  #: the batch the report was made for
    modulus: tuple[int, int]
    residue: tuple[int, int]
    minimum: tuple[int, int]
    formulas: dict[str, Poly]
    peak: list[Poly]
    peak_nodes: list[str]
    stages: list[tuple[str, dict[str, Poly]]] = field(default_factory=list)
    checked: list[tuple[int, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def holds(self, H: int, W: int) -> bool:
        """Whether ``(H, W)`` is in the domain of the formulas."""
        (lh, lw), (rh, rw), (mh, mw) = self.modulus, self.residue, self.minimum
        return H % lh == rh and W % lw == rw and H >= mh and W >= mw

    def peak_at(self, H: int, W: int, N: int = 1) -> int:
        return max(p.value(H, W, N) for p in self.peak)

    def evaluate(self, H: int, W: int, N: int = 1) -> dict[str, int]:
        """Every figure at a size of the domain (raises outside it)."""
        if not self.holds(H, W):
            raise CnnirError(
                f"{self.model}: {H}x{W} is outside the formulas' domain ({self.domain_text()})"
            )
        out = {k: p.value(H, W, N) for k, p in self.formulas.items()}
        out["peak_activation_bytes"] = self.peak_at(H, W, N)
        return out

    def domain_text(self) -> str:
        """``H = 0 (mod 32), H >= 32; W = 0 (mod 32), W >= 32``."""
        parts = []
        for axis, m, r, lo in zip("HW", self.modulus, self.residue, self.minimum):
            cls = "every " + axis if m == 1 else f"{axis} \u2261 {r} (mod {m})"
            parts.append(f"{cls}, {axis} \u2265 {lo}")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The text form: the domain, each formula, the check."""
        f = self.formulas
        h0, w0 = self.input
        n = self.batch
        out = [
            f"{self.model}: costs as formulas of H, W (input {self.channels}xHxW) and "
            f"the batch N, {self.dtype}",
            f"  holds for {self.domain_text()}",
        ]
        rows = [
            ("params", f["params"], "count"),
            ("buffers", f["buffers"], "count"),
            ("MACs", f["macs"], "count"),
            ("activation bytes", f["activation_bytes"], "bytes"),
        ]
        if len(self.peak) == 1:
            rows.append(("peak activation bytes", self.peak[0], "bytes"))
        for label, p, _ in rows:
            out.append(f"  {label} = {p}")
        if len(self.peak) > 1:
            out.append(f"  peak activation bytes = max of {len(self.peak)}:")
            out.extend(f"    {p}   (at '{name}')" for p, name in zip(self.peak, self.peak_nodes))
        elif self.peak_nodes:
            out.append(f"    (the peak is at '{self.peak_nodes[0]}' for every size of the domain)")
        out.append(
            f"  at {h0}x{w0}, N={n}: params {f['params'].value(h0, w0, n):,}, "
            f"MACs {f['macs'].value(h0, w0, n):,}, activation bytes "
            f"{f['activation_bytes'].value(h0, w0, n):,}, peak "
            f"{self.peak_at(h0, w0, n):,}"
        )
        out.append(f"  {self.checked_text()}")
        out.extend(f"  note: {t}" for t in self.notes)
        return out

    def checked_text(self) -> str:
        """``checked against the numeric analysis at 30 sizes (H 32..1209824, ...): exact``."""
        c = self.checked
        return (
            f"checked against the numeric analysis at {len(c)} sizes "
            f"(H {min(x[0] for x in c)}..{max(x[0] for x in c)}, "
            f"W {min(x[1] for x in c)}..{max(x[1] for x in c)}, "
            f"N {', '.join(map(str, sorted({x[2] for x in c})))}): exact"
        )

    def __str__(self) -> str:
        return "\n".join(self.lines()) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON: every polynomial as numerators over a denominator, by monomial."""
        return {
            "variables": {"H": "input height", "W": "input width", "N": "batch"},
            "domain": {
                "modulus": list(self.modulus),
                "residue": list(self.residue),
                "minimum": list(self.minimum),
            },
            "formulas": {k: p.to_dict() for k, p in self.formulas.items()},
            "peak_activation_bytes": {
                "max_of": [p.to_dict() for p in self.peak],
                "at": list(self.peak_nodes),
            },
            "stages": [
                {"name": name, **{k: p.to_dict() for k, p in polys.items()}}
                for name, polys in self.stages
            ],
            "checked": [list(c) for c in self.checked],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- fitting

Sampler = Callable[[int, int], Graph]


class _Fit:
    """One run of the fit: the sampler, memoised measurements."""

    def __init__(self, sample: Sampler, dtype: str, model: str) -> None:
        self.sample, self.dtype, self.model = sample, dtype, model
        self.cache: dict[tuple[int, int, int], Sample] = {}

    def at(self, h: int, w: int, batch: int = 1) -> Sample:
        key = (h, w, batch)
        if key not in self.cache:
            self.cache[key] = measure(self.sample(h, w), self.dtype, batch)
        return self.cache[key]

    def try_at(self, h: int, w: int) -> Sample | CnnirError:
        try:
            return self.at(h, w)
        except CnnirError as exc:
            return exc


def _period(base: Sample, moved: Sample, axis: str, model: str) -> int:
    """The least L with ``L * slope`` whole for every dimension of every node."""
    if set(base.shapes) != set(moved.shapes):
        raise CnnirError(
            f"{model} cannot be made symbolic: its layers change with the input "
            f"{axis} (at {moved.h}x{moved.w} the graph has other nodes)"
        )
    period = 1
    for name, dims in base.shapes.items():
        other = moved.shapes[name]
        if len(other) != len(dims):
            raise CnnirError(
                f"{model} cannot be made symbolic: '{name}' changes rank with the input {axis}"
            )
        for a, b in zip(dims, other):
            if b != a:
                period = _lcm(period, PERIOD_PROBE // gcd(PERIOD_PROBE, b - a))
    return period


def _dominates(p: Poly, q: Poly, h0: int, w0: int) -> bool:
    """Whether ``p >= q`` for every ``H >= h0, W >= w0`` (both at most bilinear)."""
    d = p - q
    b, c, e = d.coefficient(1, 0), d.coefficient(0, 1), d.coefficient(1, 1)
    return d(h0, w0) >= 0 and b + e * w0 >= 0 and c + e * h0 >= 0 and e >= 0


def _peak(live: dict[str, Poly], h0: int, w0: int) -> tuple[list[Poly], list[str]]:
    """The steps whose live bytes can be the largest (those no other step dominates)."""
    order = sorted(live, key=lambda n: -live[n](h0 * 1000 + 1, w0 * 1000 + 1))
    cands: list[str] = []
    for n in order:
        p = live[n]
        if any(_dominates(live[c], p, h0, w0) for c in cands):
            continue
        cands = [c for c in cands if not _dominates(p, live[c], h0, w0)]
        cands.append(n)
    return [live[n] for n in cands], cands


def fit(
    sample: Sampler,
    input: tuple[int, int, int],
    *,
    model: str = "model",
    dtype: str = "float32",
    batch: int = 1,
) -> Symbolic:
    """Fit the formulas of the model that ``sample(h, w)`` builds (a graph with shapes
    inferred at input ``C x h x w``; a :class:`~cnnir.errors.CnnirError` where that size
    is not valid), declared at ``input = (C, H0, W0)``.  ``batch`` is the batch the
    figures are shown for (``N`` stays a variable).  Raises a :class:`CnnirError` where
    the model cannot be made symbolic or a formula disagrees with the analysis."""
    c, h0, w0 = input
    run = _Fit(sample, dtype, model)
    base = run.at(h0, w0)
    far: dict[str, Sample] = {}
    for axis, (h, w) in (("height", (h0 + PERIOD_PROBE, w0)), ("width", (h0, w0 + PERIOD_PROBE))):
        got = run.try_at(h, w)
        if isinstance(got, CnnirError):
            raise CnnirError(
                f"{model} cannot be made symbolic: it takes only its own input "
                f"{axis} ({c}x{h0}x{w0}); at {c}x{h}x{w}: {got.msg}",
                loc=got.loc,
                node=got.node,
            )
        far[axis] = got
    lh = _period(base, far["height"], "height", model)
    lw = _period(base, far["width"], "width", model)
    if PERIOD_PROBE in (lh, lw):
        raise CnnirError(
            f"{model} cannot be made symbolic: its sizes have no period "
            f"dividing {PERIOD_PROBE:,} (a stride other than 2, 3, 5, 7?)"
        )
    hs = [h0 + i * lh for i in range(3)]
    ws = [w0 + j * lw for j in range(3)]
    grid = {(h, w): run.at(h, w) for h in hs for w in ws}
    names = list(base.live)
    stage_names = list(base.stages)
    for s in grid.values():
        if list(s.live) != names:
            raise CnnirError(
                f"{model} cannot be made symbolic: its layers change with the "
                f"input size (at {s.h}x{s.w})"
            )
    formulas: dict[str, Poly] = {}
    nvar = Poly.var("N")
    for key in FIGURES:
        p = interpolate(hs, ws, {k: s.totals[key] for k, s in grid.items()})
        formulas[key] = p * nvar if key in PER_IMAGE else p
    live = {n: interpolate(hs, ws, {k: s.live[n] for k, s in grid.items()}) for n in names}
    notes: list[str] = []
    bilinear = all(p.degree("H") <= 1 and p.degree("W") <= 1 for p in live.values())
    stages: list[tuple[str, dict[str, Poly]]] = []
    if len(stage_names) > 1 and all(list(s.stages) == stage_names for s in grid.values()):
        for st in stage_names:
            polys = {
                k: interpolate(hs, ws, {g: s.stages[st][k] for g, s in grid.items()})
                for k in ("params", "macs", "activation_bytes")
            }
            stages.append((st, {k: p * nvar if k in PER_IMAGE else p for k, p in polys.items()}))

    def agrees(s: Sample, peak: list[Poly] | None) -> str | None:
        """The first figure that differs at ``s`` (None: all agree)."""
        for key in FIGURES:
            if formulas[key](s.h, s.w, s.batch) != s.totals[key]:
                return key
        if (
            peak is not None
            and max(p(s.h, s.w, s.batch) for p in peak) != s.totals["peak_activation_bytes"]
        ):
            return "peak_activation_bytes"
        for n in names if peak is None else ():
            if live[n](s.h, s.w) * s.batch != s.live.get(n):
                return f"the live bytes at '{n}'"
        return None

    checked: list[tuple[int, int, int]] = []

    def check(s: Sample, peak: list[Poly] | None = None) -> None:
        bad = agrees(s, peak)
        if bad is not None:
            raise CnnirError(
                f"{model}: the formula for {bad} does not match the analysis at "
                f"{c}x{s.h}x{s.w} (batch {s.batch}); the costs are not "
                f"polynomial on H \u2261 {h0 % lh} (mod {lh}), "
                f"W \u2261 {w0 % lw} (mod {lw})"
            )
        checked.append((s.h, s.w, s.batch))

    for h, w in grid:
        checked.append((h, w, 1))
    extra = [
        (h0 + 3 * lh, w0 + 4 * lw),
        (h0 + 5 * lh, w0 + lw),
        (h0 + 7 * lh, w0 + 6 * lw),
        (h0 + PERIOD_PROBE, w0 + PERIOD_PROBE),
    ]
    for s in (*far.values(), *(run.at(h, w) for h, w in extra)):
        check(s)
    # down the class to the smallest valid size, each axis alone, then both together
    low = {}
    for axis in ("H", "W"):
        step = lh if axis == "H" else lw
        size = h0 if axis == "H" else w0
        while size - step >= 1:
            got = run.try_at(size - step, w0) if axis == "H" else run.try_at(h0, size - step)
            if isinstance(got, CnnirError):
                break
            if agrees(got, None) is not None:
                notes.append(
                    f"at {axis} = {size - step} the model is valid but the formulas "
                    f"do not hold; they start at {size}"
                )
                break
            check(got)
            size -= step
        low[axis] = size
    hmin, wmin = low["H"], low["W"]
    corner = run.try_at(hmin, wmin)
    if isinstance(corner, CnnirError):
        raise CnnirError(
            f"{model} cannot be made symbolic on a rectangle of sizes: valid at "
            f"{hmin}x{w0} and {h0}x{wmin} but not at {hmin}x{wmin}: {corner.msg}"
        )
    check(corner)
    if bilinear:
        peak, peak_nodes = _peak(live, hmin, wmin)
        peak = [p * nvar for p in peak]
    else:
        # beyond bilinear: the exact dominance test does not apply; keep every step
        peak, peak_nodes = [p * nvar for p in live.values()], names
        notes.append(
            "the live bytes are not bilinear in H and W: the peak is the maximum "
            "over every step of the schedule"
        )
    for s in list(run.cache.values()):
        if s.batch == 1 and agrees(s, peak) is not None and s.h >= hmin and s.w >= wmin:
            raise CnnirError(
                f"{model}: the peak formula does not match the analysis at {s.h}x{s.w}"
            )
    nb = batch if batch > 1 else 3
    check(run.at(h0 + lh, w0 + 2 * lw, nb), peak)
    check(run.at(hmin, wmin, nb), peak)
    for axis in ("H", "W"):
        if not any(p.depends_on(axis) for p in formulas.values()):
            notes.append(f"no figure depends on {axis} (a fixed-size layer fixes it)")
    if formulas["params"].depends_on("H") or formulas["params"].depends_on("W"):
        notes.append(
            "the parameter count grows with the input size: a linear layer reads "
            "a flattened map whose size follows H and W"
        )
    uniq = list(dict.fromkeys(checked))
    return Symbolic(
        model=model,
        channels=c,
        input=(h0, w0),
        dtype=dtype,
        batch=batch,
        modulus=(lh, lw),
        residue=(h0 % lh, w0 % lw),
        minimum=(hmin, wmin),
        formulas=formulas,
        peak=peak,
        peak_nodes=peak_nodes,
        stages=stages,
        checked=uniq,
        notes=notes,
    )


def poly_sum(polys: Iterable[Poly]) -> Poly:
    out = Poly()
    for p in polys:
        out = out + p
    return out


__all__ = [
    "Poly",
    "Symbolic",
    "Sample",
    "fit",
    "interpolate",
    "lagrange",
    "measure",
    "FIGURES",
    "PERIOD_PROBE",
    "poly_sum",
    "stage_of",
]
