"""``cnnir report --symbolic``: the :class:`~cnnir.passes.symbolic.Symbolic` formulas
rendered after the report's totals, in each report format.

* ``table``: the formulas as text (one common denominator per formula, ``N`` taken
  out), the domain, the value at the report's size, how many sizes were checked, and
  each top-level stage's MACs;
* ``md``: the same as a Markdown table of figure / formula;
* ``latex``: a ``booktabs`` tabular of the formulas in math mode and the domain
  (``H \\equiv 0 \\pmod{32}``), appended to the report's body;
* ``json``: the key ``"symbolic"`` (:meth:`Symbolic.to_dict`): each polynomial as
  ``{"denominator": d, "numerators": {"N*H*W": a, "N*H": b, "N": c, "1": e}}``, exact
  integers (the coefficient of a monomial is its numerator over ``d``), the domain
  ``{"modulus": [L_H, L_W], "residue": [r_H, r_W], "minimum": [H_min, W_min]}``, the
  peak as ``max_of`` its polynomials, per-stage formulas and the sizes checked.
"""

from __future__ import annotations

from typing import Any

from ..passes.symbolic import Poly, Symbolic
from .tables import md_escape, md_row, md_rule, tex_escape

#: the rows shown: (label, formula key)
ROWS = (
    ("params", "params"),
    ("buffers", "buffers"),
    ("MACs", "macs"),
    ("activation bytes (all outputs)", "activation_bytes"),
)


def _rows(sym: Symbolic) -> list[tuple[str, list[Poly]]]:
    rows = [(label, [sym.formulas[key]]) for label, key in ROWS]
    rows.append(("peak activation bytes", sym.peak))
    return rows


def _stages(sym: Symbolic) -> list[tuple[str, dict[str, Poly]]]:
    """The top-level stages that do MACs (the JSON keeps them all)."""
    return [(name, polys) for name, polys in sym.stages if polys["macs"].terms]


def text_lines(sym: Symbolic, stages: bool = True) -> list[str]:
    """The text section (``table`` format)."""
    out = ["", *sym.lines()]
    if stages and _stages(sym):
        out.append("  MACs per top-level stage:")
        width = max(len(name) for name, _ in _stages(sym))
        for name, stage in _stages(sym):
            out.append(f"    {name:<{width}}  {stage['macs']}")
    return out


def md_lines(sym: Symbolic) -> list[str]:
    """The Markdown section: the domain, a figure / formula table, the check."""
    out = [
        "",
        f"**Costs as formulas** of H, W (input {sym.channels}xHxW) and the batch N: "
        f"{md_escape(sym.domain_text())}",
        "",
        md_row(["Figure", "Formula"]),
        md_rule([False, False]),
    ]
    for label, polys in _rows(sym):
        if len(polys) == 1:
            out.append(md_row([label, f"`{polys[0].format()}`"]))
            continue
        out.append(md_row([label, f"the largest of these {len(polys)}:"]))
        out += [md_row(["", f"`{p.format()}`"]) for p in polys]
    for name, stage in _stages(sym):
        out.append(md_row([f"MACs of {md_escape(name)}", f"`{stage['macs'].format()}`"]))
    out += ["", f"- {md_escape(sym.checked_text())}"]
    out += [f"- {md_escape(n)}" for n in sym.notes]
    return out


def tex_number(k: int) -> str:
    """``81456 -> 81{,}456``."""
    return f"{k:,}".replace(",", "{,}")


def tex_poly(p: Poly) -> str:
    """A polynomial in math mode: ``N \\cdot (81{,}456\\,HW + 2{,}048{,}000)``, one
    ``\\frac{...}{d}`` where the coefficients are not whole."""
    if not p.terms:
        return "0"
    terms = p.terms
    n_out = all(m[2] >= 1 for m in terms)
    if n_out:
        terms = {(m[0], m[1], m[2] - 1): c for m, c in terms.items()}
    inner = Poly(terms)
    den = inner.denominator
    parts: list[str] = []
    for m, c in inner.monomials():
        k = (c * den).numerator
        mono = Poly.monomial_name(m, "")
        body = (
            tex_number(abs(k))
            if mono == "1"
            else (mono if abs(k) == 1 else rf"{tex_number(abs(k))}\,{mono}")
        )
        parts.append(
            (("-" if k < 0 else "") + body) if not parts else f"{'-' if k < 0 else '+'} {body}"
        )
    text = " ".join(parts)
    if den != 1:
        text = rf"\frac{{{text}}}{{{tex_number(den)}}}"
    elif n_out and len(parts) > 1:
        text = rf"\left({text}\right)"
    return rf"N \cdot {text}" if n_out else text


def tex_domain(sym: Symbolic) -> str:
    parts = []
    for axis, m, r, lo in zip("HW", sym.modulus, sym.residue, sym.minimum):
        cls = "" if m == 1 else rf"{axis} \equiv {r} \pmod{{{m}}},\ "
        parts.append(rf"${cls}{axis} \geq {lo}$")
    return "; ".join(parts)


def latex_lines(sym: Symbolic) -> list[str]:
    """The LaTeX section: a heading line with the domain, a tabular of the formulas."""
    out = [
        rf"\medskip\noindent Costs as formulas of the input size $H \times W$ "
        rf"(input ${sym.channels} \times H \times W$) and the batch $N$, for "
        rf"{tex_domain(sym)}:\par",
        r"\begin{tabular}{ll}",
        r"\toprule",
        r"Figure & Formula\\",
        r"\midrule",
    ]
    for label, polys in _rows(sym):
        if len(polys) == 1:
            out.append(rf"{tex_escape(label)} & ${tex_poly(polys[0])}$\\")
            continue
        out.append(rf"{tex_escape(label)} & the largest of these {len(polys)}:\\")
        out += [rf" & ${tex_poly(p)}$\\" for p in polys]
    if _stages(sym):
        out.append(r"\midrule")
        for name, stage in _stages(sym):
            out.append(rf"MACs of {tex_escape(name)} & ${tex_poly(stage['macs'])}$\\")
    out += [r"\bottomrule", r"\end{tabular}\par", tex_escape(sym.checked_text()) + r"\par"]
    out += [tex_escape(f"note: {n}") + r"\par" for n in sym.notes]
    return out


def to_json(sym: Symbolic) -> dict[str, Any]:
    """The ``"symbolic"`` key of the report's JSON."""
    return sym.to_dict()


__all__ = ["text_lines", "md_lines", "latex_lines", "tex_poly", "to_json"]
