"""The model zoo: classic architectures written in the DSL.

``get(name)`` returns the :class:`~cnnir.frontends.dsl.Model`; ``names()`` lists
them.  Each entry is ``"module:attribute"`` under ``cnnir.zoo`` and is imported
only when asked for.  ``entry(name)`` says what a model is without building it
(description, declared input, the paper it follows); ``cnnir.zoo.catalog`` adds
the computed figures and writes docs/zoo.md.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from ..errors import UsageError
from ..frontends.dsl import Model

MODELS: dict[str, str] = {
    "lenet5": "lenet:lenet5",
    "cifar_small": "lenet:cifar_small",
    "alexnet": "alexnet:alexnet",
    "googlenet": "googlenet:googlenet",
    "googlenet_aux": "googlenet:googlenet_aux",
    **{f"vgg{d}{bn}": f"vgg:vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{d}": f"resnet:resnet{d}" for d in (18, 34, 50, 101, 152)},
    "zfnet": "zfnet:zfnet",
    "nin": "nin:nin",
    "nin_cifar10": "nin:nin_cifar10",
    "vgg11_lrn": "vgg_variants:vgg11_lrn",
    "vgg16_c": "vgg_variants:vgg16_c",
    **{f"preact_resnet{d}": f"resnet_variants:preact_resnet{d}"
       for d in (18, 34, 50, 101, 152)},
    **{m: f"resnet_variants:{m}" for m in ("wide_resnet50_2", "wide_resnet101_2",
                                            "resnext50_32x4d", "resnext101_32x8d")},
    **{f"densenet{d}": f"densenet:densenet{d}" for d in (121, 161, 169, 201)},
    "squeezenet1_0": "squeezenet:squeezenet1_0",
    "mobilenet_v2": "mobilenet:mobilenet_v2",
    "inception_v3": "inception_v3:inception_v3",
    "unet": "unet:unet",
    "alexnet_original": "alexnet:alexnet_original",
    **{f"resnet{d}_cifar": f"resnet_cifar:resnet{d}_cifar" for d in (20, 32, 44, 56, 110)},
    "densenet_bc100_cifar": "densenet_cifar:densenet_bc100_cifar",
    **{f"mobilenet_v1{w}": f"mobilenet_v1:mobilenet_v1{w}" for w in ("", "_075", "_050", "_025")},
    "squeezenet1_1": "squeezenet:squeezenet1_1",
    "bn_inception": "bn_inception:bn_inception",
    **{f"resnet{d}_cifar_a": f"resnet_cifar:resnet{d}_cifar_a" for d in (20, 32, 44, 56, 110)},
    "fractalnet20_cifar": "fractalnet:fractalnet20_cifar",
    "fractalnet40_cifar": "fractalnet:fractalnet40_cifar",
    # ShuffleNet v1 / v2 and the paper's U-Net (channel split, shuffle and crop)
    **{f"shufflenet_v1_{v}": f"shufflenet:shufflenet_v1_{v}"
       for v in ("g1", "g2", "g3", "g4", "g8", "x0_5", "x2_0")},
    **{f"shufflenet_v2_x{v}": f"shufflenet:shufflenet_v2_x{v}"
       for v in ("0_5", "1_0", "1_5", "2_0")},
    "unet_original": "unet:unet_original",
}


@dataclass(frozen=True)
class Paper:
    """The publication a zoo family follows."""

    family: str      #: the family's name as the README lists it ("ResNet")
    authors: str     #: "He et al."
    year: int        #: the year of the first public version (arXiv where there is one)
    title: str
    where: str       #: "arXiv:1512.03385", or the venue where there is no preprint

    @property
    def short(self) -> str:
        """``"He et al. 2015"``, as the zoo descriptions cite it."""
        return f"{self.authors} {self.year}"

    @property
    def url(self) -> str | None:
        if self.where.startswith("arXiv:"):
            return f"https://arxiv.org/abs/{self.where.removeprefix('arXiv:')}"
        return None


PAPERS: dict[str, Paper] = {p.family: p for p in (
    Paper("LeNet", "LeCun et al.", 1998,
          "Gradient-Based Learning Applied to Document Recognition", "Proc. IEEE 86(11), 1998"),
    Paper("AlexNet", "Krizhevsky et al.", 2012,
          "ImageNet Classification with Deep Convolutional Neural Networks", "NIPS 2012"),
    Paper("ZFNet", "Zeiler & Fergus", 2013,
          "Visualizing and Understanding Convolutional Networks", "arXiv:1311.2901"),
    Paper("NiN", "Lin et al.", 2013, "Network In Network", "arXiv:1312.4400"),
    Paper("VGG", "Simonyan & Zisserman", 2014,
          "Very Deep Convolutional Networks for Large-Scale Image Recognition", "arXiv:1409.1556"),
    Paper("GoogLeNet", "Szegedy et al.", 2014, "Going Deeper with Convolutions",
          "arXiv:1409.4842"),
    Paper("BN-Inception", "Ioffe & Szegedy", 2015,
          "Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
          "Covariate Shift", "arXiv:1502.03167"),
    Paper("Inception v3", "Szegedy et al.", 2015,
          "Rethinking the Inception Architecture for Computer Vision", "arXiv:1512.00567"),
    Paper("ResNet", "He et al.", 2015, "Deep Residual Learning for Image Recognition",
          "arXiv:1512.03385"),
    Paper("pre-activation ResNet", "He et al.", 2016, "Identity Mappings in Deep Residual Networks",
          "arXiv:1603.05027"),
    Paper("Wide ResNet", "Zagoruyko & Komodakis", 2016, "Wide Residual Networks",
          "arXiv:1605.07146"),
    Paper("ResNeXt", "Xie et al.", 2016,
          "Aggregated Residual Transformations for Deep Neural Networks", "arXiv:1611.05431"),
    Paper("FractalNet", "Larsson et al.", 2016,
          "FractalNet: Ultra-Deep Neural Networks without Residuals", "arXiv:1605.07648"),
    Paper("DenseNet", "Huang et al.", 2016, "Densely Connected Convolutional Networks",
          "arXiv:1608.06993"),
    Paper("SqueezeNet", "Iandola et al.", 2016,
          "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
          "arXiv:1602.07360"),
    Paper("MobileNet v1", "Howard et al.", 2017,
          "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
          "arXiv:1704.04861"),
    Paper("MobileNet v2", "Sandler et al.", 2018,
          "MobileNetV2: Inverted Residuals and Linear Bottlenecks", "arXiv:1801.04381"),
    Paper("U-Net", "Ronneberger et al.", 2015,
          "U-Net: Convolutional Networks for Biomedical Image Segmentation", "arXiv:1505.04597"),
    Paper("ShuffleNet", "Zhang et al.", 2017,
          "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
          "arXiv:1707.01083"),
    Paper("ShuffleNet v2", "Ma et al.", 2018,
          "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
          "arXiv:1807.11164"),
)}

#: zoo name prefix -> family in PAPERS, first match wins; a name none matches has no paper
_FAMILY_OF = (("preact_resnet", "pre-activation ResNet"), ("wide_resnet", "Wide ResNet"),
              ("resnext", "ResNeXt"), ("resnet", "ResNet"), ("fractalnet", "FractalNet"),
              ("densenet", "DenseNet"),
              ("mobilenet_v1", "MobileNet v1"), ("mobilenet_v2", "MobileNet v2"),
              ("squeezenet", "SqueezeNet"), ("alexnet", "AlexNet"), ("zfnet", "ZFNet"),
              ("lenet", "LeNet"), ("nin", "NiN"), ("vgg", "VGG"), ("googlenet", "GoogLeNet"),
              ("bn_inception", "BN-Inception"), ("inception_v3", "Inception v3"), ("unet", "U-Net"),
              ("shufflenet_v1", "ShuffleNet"), ("shufflenet_v2", "ShuffleNet v2"))
#: models that follow no paper (teaching examples)
NO_PAPER = frozenset({"cifar_small"})


@dataclass(frozen=True)
class Entry:
    """What the registry knows of a zoo model without building it."""

    name: str
    description: str            #: one line: what it is, paper and year, input size
    input: tuple[int, ...]      #: the declared (C, H, W)
    paper: Paper | None

    @property
    def input_size(self) -> str:
        """``"3x224x224"``."""
        return "x".join(map(str, self.input))

    @property
    def summary(self) -> str:
        """The description without the paper citation and the input size (for table cells)."""
        text = self.description.removesuffix(f"; {self.input_size}.")
        return text.replace(f" ({self.paper.short})", "") if self.paper else text


def names() -> list[str]:
    return sorted(MODELS)


def get(name: str) -> Model:
    """The zoo model ``name``; an unknown name lists close matches."""
    target = MODELS.get(name.lower())
    if target is None:
        close = difflib.get_close_matches(name.lower(), MODELS, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(
            f"'{name}' is neither a file nor a zoo model; {hint}"
            f"'cnnir zoo' lists the {len(MODELS)} zoo models"
        )
    mod, attr = target.split(":")
    model = getattr(importlib.import_module(f"{__name__}.{mod}"), attr)
    assert isinstance(model, Model)
    return model


def describe(name: str) -> str:
    """The first line of the model's docstring: what it is, paper and year, input size."""
    doc = (get(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def paper(name: str) -> Paper | None:
    """The paper zoo model ``name`` follows (None for the teaching examples)."""
    get(name)  # an unknown name: the usual error
    if name.lower() in NO_PAPER:
        return None
    family = next((f for prefix, f in _FAMILY_OF if name.lower().startswith(prefix)), None)
    if family is None:
        raise KeyError(f"zoo model '{name}' has no family in cnnir.zoo._FAMILY_OF")
    return PAPERS[family]


def entry(name: str) -> Entry:
    """Description, declared input and paper of zoo model ``name`` (imports it, builds nothing)."""
    model = get(name)
    return Entry(name.lower(), describe(name), model.input, paper(name))


__all__ = ["MODELS", "PAPERS", "NO_PAPER", "Paper", "Entry", "names", "get", "describe", "paper",
           "entry"]
