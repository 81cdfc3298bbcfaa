"""The model zoo: classic architectures written in the DSL.

``get(name)`` returns the :class:`~cnnir.frontends.dsl.Model`; ``names()`` lists
them.  Each entry is ``"module:attribute"`` under ``cnnir.zoo`` and is imported
only when asked for.
"""

from __future__ import annotations

import difflib
import importlib

from ..errors import UsageError
from ..frontends.dsl import Model

MODELS: dict[str, str] = {
    "lenet5": "lenet:lenet5",
    "cifar_small": "lenet:cifar_small",
    "alexnet": "alexnet:alexnet",
    "googlenet": "googlenet:googlenet",
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
}


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
    doc = (get(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


__all__ = ["MODELS", "names", "get", "describe"]
