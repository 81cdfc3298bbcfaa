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


@dataclass(frozen=True)
class Published:
    """A figure a paper or torchvision prints for a zoo model, exactly as printed.

    ``params`` / ``macs`` are an exact integer (``"25,557,032"``) or rounded millions or
    billions (``"0.27M"``, ``"4.089G"``); cnnir's count rounded the same way must read
    the same unless ``note`` says why it does not.
    """

    source: str
    params: str = ""
    macs: str = ""
    note: str = ""


#: torchvision.models.*_Weights.IMAGENET1K_V1.meta: num_params, _ops (its "GFLOPS" are MACs)
_TORCHVISION = {
    "alexnet": ("61,100,840", "0.714G"), "vgg11": ("132,863,336", "7.609G"),
    "vgg13": ("133,047,848", "11.308G"), "vgg16": ("138,357,544", "15.470G"),
    "vgg19": ("143,667,240", "19.632G"), "vgg11_bn": ("132,868,840", "7.609G"),
    "vgg13_bn": ("133,053,736", "11.308G"), "vgg16_bn": ("138,365,992", "15.470G"),
    "vgg19_bn": ("143,678,248", "19.632G"), "resnet18": ("11,689,512", "1.814G"),
    "resnet34": ("21,797,672", "3.664G"), "resnet50": ("25,557,032", "4.089G"),
    "resnet101": ("44,549,160", "7.801G"), "resnet152": ("60,192,808", "11.514G"),
    "densenet121": ("7,978,856", "2.834G"), "densenet161": ("28,681,000", "7.728G"),
    "densenet169": ("14,149,480", "3.360G"), "densenet201": ("20,013,928", "4.291G"),
    "squeezenet1_0": ("1,248,424", "0.819G"), "squeezenet1_1": ("1,235,496", "0.349G"),
    "mobilenet_v2": ("3,504,872", "0.301G"), "wide_resnet50_2": ("68,883,240", "11.398G"),
    "wide_resnet101_2": ("126,886,696", "22.753G"),
    "resnext50_32x4d": ("25,028,904", "4.230G"), "resnext101_32x8d": ("88,791,336", "16.414G"),
    "inception_v3": ("27,161,264", "5.713G"),
}
_OPTION_A = ("the paper counts option A (zero-padded shortcuts); the zoo's option B "
             "projections add 2,752")

_FRACTAL_20 = ("Table 1 prints 38.6M; the paper's own description (5 blocks of 3 columns, "
               "64-128-256-512-512 filters, 3x3 conv-BN-ReLU) gives 33,724,618, as do "
               "independent re-implementations (pytorchcv 33,724,618; khanrc 33.7M)")

_SHUFFLE_V1_FC = ("Table 1's complexity counts the convolutions only: cnnir's MACs less the "
                  "FC layer's (C x 1000) read as printed for every g")

#: zoo name -> what its paper or torchvision prints (tests/test_published_costs.py and
#: tests/test_zoo_course.py derive each from first principles as well)
PUBLISHED: dict[str, Published] = {
    **{n: Published("torchvision", p, m) for n, (p, m) in _TORCHVISION.items()},
    "inception_v3": Published("torchvision", *_TORCHVISION["inception_v3"],
                              note="torchvision counts the training-only auxiliary "
                                   "classifier (3,326,696 params); the zoo leaves it out"),
    "alexnet_original": Published("Caffe bvlc_alexnet", "60,965,224"),
    "vgg11_lrn": Published("paper, Table 2", "133M"),
    "vgg16_c": Published("paper, Table 2", "134M"),
    **{f"resnet{d}_cifar": Published("paper, Section 4.2", p, note=_OPTION_A)
       for d, p in ((20, "0.27M"), (32, "0.46M"), (44, "0.66M"), (56, "0.85M"), (110, "1.7M"))},
    **{f"resnet{d}_cifar_a": Published("paper, Section 4.2", p)
       for d, p in ((20, "0.27M"), (32, "0.46M"), (44, "0.66M"), (56, "0.85M"), (110, "1.7M"))},
    "densenet_bc100_cifar": Published("paper, Table 2", "0.8M"),
    "fractalnet20_cifar": Published("paper, Table 1", "38.6M", note=_FRACTAL_20),
    **{f"mobilenet_v1{w}": Published("paper, Table 6", p, m)
       for w, p, m in (("", "4.2M", "569M"), ("_075", "2.6M", "325M"),
                       ("_050", "1.3M", "149M"), ("_025", "0.5M", "41M"))},
    **{f"shufflenet_v1_g{g}": Published("paper, Table 1", macs=m, note=_SHUFFLE_V1_FC)
       for g, m in ((1, "143M"), (2, "140M"), (3, "137M"), (4, "133M"), (8, "137M"))},
    "shufflenet_v1_x0_5": Published("paper, Table 2", macs="38M"),
    "shufflenet_v1_x2_0": Published("paper, Table 5", macs="524M"),
    **{f"shufflenet_v2_x{s}": Published("torchvision", p, m)
       for s, p, m in (("0_5", "1,366,792", "0.04G"), ("1_0", "2,278,604", "0.145G"),
                       ("1_5", "3,503,624", "0.296G"), ("2_0", "7,393,996", "0.583G"))},
}


def as_printed(value: int, printed: str) -> str:
    """``value`` written the way ``printed`` is: exact with commas, or rounded M / G."""
    if printed[-1] in "MG":
        scale = 1e6 if printed[-1] == "M" else 1e9
        digits = len(printed[:-1].partition(".")[2])
        return f"{value / scale:.{digits}f}{printed[-1]}"
    return f"{value:,}"


def agrees(pub: Published, fig: Figures) -> bool:
    """Whether cnnir's figures, rounded as the source prints them, read the same."""
    return all(as_printed(v, s) == s for v, s in ((fig.params, pub.params), (fig.macs, pub.macs))
               if s)


def figures(name: str) -> Figures:
    """Build and analyse zoo model ``name``: its params, buffers and MACs, exact."""
    from ..analysis import analyze
    from . import get

    a = analyze(get(name).build())
    return Figures(a.params, a.buffers, a.macs)


#: ``module:attribute`` of the zoo's unregistered models, and what they are
BUILDERS = (
    ("resnet_cifar:resnet_cifar_n", "the CIFAR ResNet of any depth 6n + 2 (`build(depth=1202)`)."),
    ("fractalnet:fractalnet_cifar",
     "FractalNet for CIFAR with any number of columns (`build(columns=2, dropout=False)`)."),
    ("densenet_cifar:densenet_cifar",
     "any row of the DenseNet paper's CIFAR table (`build(depth=40, growth=12, bc=False)`)."),
    ("mobilenet_v1:mobilenet_v1_any", "MobileNet v1 at any width (`build(width=0.5)`)."),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _published(name: str) -> str:
    """The published and note cells of ``name``'s row."""
    pub = PUBLISHED.get(name)
    if pub is None:
        return "| |"
    figs = [f"{pub.params} params"] if pub.params else []
    figs += [f"{pub.macs} MACs"] if pub.macs else []
    return f"{', '.join(figs)} ({pub.source}) | {_cell(pub.note)} |"


def _row(e: Entry, f: Figures, refs: dict[str, int]) -> str:
    paper = (f"{e.paper.short} [{refs[e.paper.family]}]" if e.paper else "none (teaching example)")
    return (f"| `{e.name}` | {_cell(e.summary)} | {paper} | {e.input_size} "
            f"| {f.params:,} | {f.macs:,} | {_published(e.name)}")


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
        "The year is that of the paper's first public version (arXiv where there is one). "
        "**published** is what the paper or torchvision's weights metadata prints, as "
        "printed (torchvision's \"GFLOPS\" are MACs); cnnir's figures rounded the same way "
        "read the same unless a note says why not (a test checks each).", "",
        "| model | what it is | paper | input | params | MACs | published | note |",
        "|---|---|---|---|--:|--:|---|---|",
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
