"""The zoo's computed figures, and docs/zoo.md generated from the registry.

``figures(name)`` builds and analyses one zoo model at its declared input (batch 1)
and returns its exact parameter, buffer and MAC counts; ``markdown()`` is the whole
of docs/zoo.md (``python -m cnnir.zoo.catalog > docs/zoo.md``), and a test keeps the
file equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import Entry, entry, names


@dataclass(frozen=True)
class Figures:
    """Exact counts of one zoo model at its declared input, batch 1."""

    params: int       #: trainable parameters, biases included
    buffers: int      #: BatchNorm running statistics (not parameters)
    macs: int         #: multiply-accumulates of one image

    @property
    def flops(self) -> int:
        return 2 * self.macs


def figures(name: str) -> Figures:
    """Build and analyse zoo model ``name``: its params, buffers and MACs, exact."""
    from ..api import analyze

    a = analyze(name)
    return Figures(a.params, a.buffers, a.macs)


#: ``module:attribute`` of the zoo's unregistered models, and what they are
BUILDERS = (
    ("googlenet:googlenet_aux",
     "GoogLeNet as trained, three outputs (the main and the two auxiliary classifiers)."),
    ("resnet_cifar:resnet_cifar_n", "the CIFAR ResNet of any depth 6n + 2 (`build(depth=1202)`)."),
    ("densenet_cifar:densenet_cifar",
     "any row of the DenseNet paper's CIFAR table (`build(depth=40, growth=12, bc=False)`)."),
    ("mobilenet_v1:mobilenet_v1_any", "MobileNet v1 at any width (`build(width=0.5)`)."),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(e: Entry, f: Figures, refs: dict[str, int]) -> str:
    paper = (f"{e.paper.short} [{refs[e.paper.family]}]" if e.paper else "none (teaching example)")
    return (f"| `{e.name}` | {_cell(e.summary)} | {paper} | {e.input_size} "
            f"| {f.params:,} | {f.macs:,} |")


def markdown() -> str:
    """docs/zoo.md: every registered model, its paper, input and exact figures."""
    entries = [entry(n) for n in names()]
    families = sorted({e.paper.family: e.paper for e in entries if e.paper}.values(),
                      key=lambda p: (p.year, p.family))
    refs = {p.family: i for i, p in enumerate(families, start=1)}
    out = [
        "# The model zoo", "",
        f"{len(entries)} networks written in the DSL (`cnnir/zoo/`), usable by name "
        "wherever a command or function takes a model: `cnnir report resnet50`, "
        "`cnnir draw googlenet`, `cnnir.load(\"vgg16\")`. `cnnir zoo` lists them.", "",
        "This page is generated from the registry (`python -m cnnir.zoo.catalog > docs/zoo.md`) "
        "and a test fails when it is out of date. The figures are computed by cnnir's own "
        "analysis at the model's declared input, batch 1: **params** are the trainable "
        "parameters, biases included (BatchNorm running statistics are buffers, not "
        "parameters); **MACs** are the multiply-accumulates of one image (FLOPs = 2 x MACs). "
        "The year is that of the paper's first public version (arXiv where there is one).", "",
        "| model | what it is | paper | input | params | MACs |",
        "|---|---|---|---|--:|--:|",
    ]
    out += [_row(e, figures(e.name), refs) for e in entries]
    out += ["", "## Papers", ""]
    for p in families:
        where = f"[{p.where}]({p.url})" if p.url else p.where
        out.append(f"{refs[p.family]}. {p.family}: {p.authors}, *{p.title}*, {where}.")
    out += ["", "## Builders not in the registry", "",
            "Parametrised or multi-output variants, imported from their module:", ""]
    out += [f"- `cnnir.zoo.{target.replace(':', '.')}`: {text}" for target, text in BUILDERS]
    return "\n".join([*out, ""])


if __name__ == "__main__":
    print(markdown(), end="")
