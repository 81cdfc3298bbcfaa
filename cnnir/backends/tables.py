"""One table renderer for every tabular output (``cnnir report``, ``report --compare``).

A table here is headers, one alignment per column (``right``: numbers and shapes
are right-aligned), rows of cells already formatted as text, and optionally a
title and a footer.  Each format is a few functions that know only that format's
syntax: the terminal table (rich, natural width, never cut), Markdown rows and
rule, LaTeX escaping, rows and document, CSV.  What goes in the cells (human or
exact numbers, bold block rows, indentation) is the caller's: :mod:`.report` and
:mod:`.compare` build their cells and hand them here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

# --------------------------------------------------------------------------- terminal


def text_table(headers: Sequence[str], right: Sequence[bool], rows: Iterable[Sequence[str]],
               *, title: str | None = None, footer: Sequence[str] | None = None,
               bold: Sequence[bool] | None = None) -> list[str]:
    """The terminal table's lines (rich's ``SIMPLE_HEAD`` box), trailing blanks stripped.

    ``title`` is printed left-aligned above (wrapped to the table's width), ``footer``
    below a blank line.  ``bold`` is accepted for the callers' sake: plain text has no
    bold.  Written out here rather than drawn by rich (whose layout it reproduces
    line for line): rich took 1.5 s for ResNet-152's 500 rows, this takes as long
    as the JSON (``benchmarks/bench_report.py``).
    """
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for r in [*body, *([footer] if footer is not None else [])]:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return (" " + " ".join(" " + (c.rjust(w) if r else c.ljust(w)) + " "
                               for c, w, r in zip(cells, widths, right))).rstrip()

    inner = sum(w + 2 for w in widths) + len(widths) - 1
    out: list[str] = []
    if title is not None:
        import textwrap

        out += [t.rstrip() for t in textwrap.wrap(title, inner + 2)] or [""]
    out += ["", line(headers), " " + "\u2500" * inner]
    out += [line(r) for r in body]
    if footer is not None:
        out += ["", line(footer)]
    out.append("")
    return out


def text_table_rich(headers: Sequence[str], right: Sequence[bool],
                    rows: Iterable[Sequence[str]], *, title: str | None = None,
                    footer: Sequence[str] | None = None,
                    bold: Sequence[bool] | None = None) -> list[str]:
    """:func:`text_table` as rich draws it (the reference the tests hold it to)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  show_footer=footer is not None)
    feet = footer if footer is not None else [""] * len(headers)
    for header, r, foot in zip(headers, right, feet):
        table.add_column(header, justify="right" if r else "left", footer=foot)
    for i, row in enumerate(rows):
        table.add_row(*row, style="bold" if bold is not None and bold[i] else None)
    buf = io.StringIO()
    # the table's natural width, never cut: a wide console, trailing blanks stripped
    Console(file=buf, width=1000, force_terminal=False, color_system=None,
            highlight=False).print(table)
    return [line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines()]


# --------------------------------------------------------------------------- Markdown


def md_escape(text: str) -> str:
    """A Markdown table cell's text: backslashes and pipes escaped."""
    return text.replace("\\", "\\\\").replace("|", "\\|")


def md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def md_rule(right: Iterable[bool]) -> str:
    """The header rule, carrying each column's alignment."""
    return "|" + "|".join("---:" if r else ":---" for r in right) + "|"


# --------------------------------------------------------------------------- LaTeX

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def tex_row(cells: Iterable[str]) -> str:
    return " & ".join(cells) + r" \\"


def tex_spec(right: Iterable[bool]) -> str:
    """The tabular column spec: ``r`` or ``l`` per column."""
    return "".join("r" if r else "l" for r in right)


def tex_document(packages: Sequence[str], body: Iterable[str], standalone: bool = True) -> str:
    """A complete LaTeX document (``article``) around ``body``'s lines; compiles as is.
    ``standalone=False``: the fragment alone, for ``\\input{}`` in a paper (a first
    comment line names the packages its preamble needs)."""
    if not standalone:
        return "\n".join([f"% needs \\usepackage{{{','.join(packages)}}}", *body]) + "\n"
    lines = [r"\documentclass{article}", *(rf"\usepackage{{{p}}}" for p in packages),
             r"\begin{document}", *body, r"\end{document}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CSV


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV (``\\n`` line ends; the first row is the header)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


__all__ = ["text_table", "md_escape", "md_row", "md_rule", "tex_escape", "tex_row",
           "tex_spec", "tex_document", "csv_text"]
