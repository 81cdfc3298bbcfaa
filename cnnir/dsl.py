"""The DSL users import: ``from cnnir.dsl import model, block, repeat, scope, stage, concat``.

See :mod:`cnnir.frontends.dsl` for the full description.
"""

from .frontends.dsl import (
    Model,
    Tensor,
    add,
    block,
    concat,
    mean,
    model,
    mul,
    repeat,
    scope,
    stage,
)

__all__ = [
    "model",
    "block",
    "repeat",
    "scope",
    "stage",
    "concat",
    "add",
    "mul",
    "mean",
    "Tensor",
    "Model",
]
