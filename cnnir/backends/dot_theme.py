"""Themes of the Graphviz backend: colours, fonts and line weights by layer family.

Every op class names its ``family`` (:attr:`cnnir.ops.Op.family`); a diagram colours
each box by family and lists the families it drew in a legend.  Collapsed blocks
are one more family, ``block``.  A family without a style is an error
(:func:`Theme.fill_of`), never a silent grey: a new op family must be added here.

``paper`` (the default) fills boxes with colour-blind-safe tints (hues after Paul
Tol's schemes) chosen so that their CIE L* lightness is spread from 53 (conv) to
100 (input): printed in greyscale, every family keeps its own grey.  The test
suite checks this, and that the fills stay apart (CIELAB distance) under
simulated protanopia, deuteranopia and tritanopia.  ``mono`` (black-and-white
print) uses light greys in the same order, dark enough apart to tell families
and light enough for black text (at least 7:1 contrast), dashed heavy skip edges
with open arrowheads and solid thin grey cluster borders; ``slides`` the saturated
Okabe-Ito colours, larger text and heavier lines for projection.

Fonts: ``Helvetica`` everywhere.  SVG viewers show Helvetica/Arial; PDF and PNG
output go through cairo and fontconfig, which resolve it to an installed sans
face (Liberation Sans, DejaVu Sans, Arial...) and embed a subset of it in the PDF.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BackendError

#: families in legend order, with the words the legend shows
FAMILY_NAMES: dict[str, str] = {
    "io": "input",
    "conv": "convolution",
    "norm": "normalisation",
    "act": "activation",
    "pool": "pooling",
    "linear": "fully connected",
    "merge": "merge",  # the diagram names the merges it drew: addition, concatenation
    "block": "block",
    "reg": "regularisation",
    "other": "other",
}

_PAPER = {
    "io": "#FFFFFF", "conv": "#4A80C0", "block": "#44A899", "pool": "#F39A7A",
    "norm": "#E0B4E0", "linear": "#E2D080", "other": "#E0E0E0", "act": "#F6F3C8",
    "merge": "#FFFFFF", "reg": "#E0E0E0",
}
# light greys in the paper fills' order, for black-and-white print: the darkest
# (conv) still gives black text a contrast of 8:1 (WCAG), each family its own grey
_MONO = {
    "io": "#FFFFFF", "conv": "#A0A0A0", "block": "#B2B2B2", "pool": "#C4C4C4",
    "norm": "#D3D3D3", "linear": "#E0E0E0", "other": "#EBEBEB", "act": "#F5F5F5",
    "merge": "#FFFFFF", "reg": "#EBEBEB",
}
# Okabe & Ito (2008), "Color Universal Design"
_SLIDES = {
    "io": "#FFFFFF", "conv": "#56B4E9", "block": "#009E73", "pool": "#E69F00",
    "norm": "#CC79A7", "linear": "#F0E442", "other": "#BBBBBB", "act": "#F5F5F5",
    "merge": "#FFFFFF", "reg": "#BBBBBB",
}


@dataclass(frozen=True)
class Theme:
    """Everything a diagram's look depends on."""

    name: str
    fills: dict[str, str]
    font: str = "Helvetica"
    fontsize: float = 10.0        #: box titles
    small: float = 8.0            #: shape and cost lines, cluster labels
    text: str = "#000000"
    line: str = "#333333"         #: box borders
    penwidth: float = 0.8
    edge: str = "#444444"
    edge_width: float = 0.8
    skip: str = "#004488"         #: skip connections (Tol's dark blue)
    skip_style: str = "dashed"
    skip_width: float = 0.8
    skip_arrowhead: str = "normal"
    arrowsize: float = 0.6
    cluster_line: str = "#777777"
    cluster_width: float = 0.8
    scope_style: str = "dashed,rounded"  #: plain ``scope()`` clusters (a stem, a stage)
    block_cluster_fill: str = "#F4F8FB"
    badge_fill: str = "#333333"   #: the "x N" badge of folded blocks
    badge_text: str = "#FFFFFF"
    box_width: float = 1.3         #: minimum box width in TB drawings (inches)
    nodesep: float = 0.18
    ranksep: float = 0.22
    extra: dict[str, str] = field(default_factory=dict)

    def fill_of(self, family: str, node: str | None = None) -> str:
        try:
            return self.fills[family]
        except KeyError:
            raise BackendError(
                f"the Graphviz backend has no style for the op family {family!r}"
                + (f" (node '{node}')" if node else "")
                + "; add it to cnnir/backends/dot_theme.py", node=node) from None


THEMES: dict[str, Theme] = {
    "paper": Theme("paper", _PAPER),
    # skips dashed, heavier and with open arrowheads; clusters solid thin grey, so a
    # shortcut never reads as a box border in black and white
    "mono": Theme("mono", _MONO, line="#000000", edge="#000000", skip="#000000",
                  skip_width=1.3, skip_arrowhead="onormal", cluster_line="#888888",
                  cluster_width=0.5, scope_style="rounded",
                  block_cluster_fill="#FFFFFF", badge_fill="#000000"),
    "slides": Theme("slides", _SLIDES, fontsize=16.0, small=12.0, penwidth=1.5, edge="#222222",
                    edge_width=1.6, skip="#D55E00", skip_style="solid", arrowsize=0.8,
                    line="#222222", nodesep=0.3, ranksep=0.35, box_width=2.0),
}


def get_theme(name: str | Theme) -> Theme:
    """A theme by name (``paper``, ``mono``, ``slides``), or a :class:`Theme` as is."""
    if isinstance(name, Theme):
        return name
    try:
        return THEMES[name]
    except KeyError:
        from ..errors import UsageError

        raise UsageError(f"unknown theme {name!r}; themes: {', '.join(THEMES)}") from None


__all__ = ["Theme", "THEMES", "FAMILY_NAMES", "get_theme"]
