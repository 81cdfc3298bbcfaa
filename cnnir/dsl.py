"""The DSL users import: ``from cnnir.dsl import model, block, repeat, scope, concat``.

See :mod:`cnnir.frontends.dsl` for the full description.
"""

from .frontends.dsl import Model, Tensor, add, block, concat, mean, model, mul, repeat, scope

__all__ = ["model", "block", "repeat", "scope", "concat", "add", "mul", "mean", "Tensor", "Model"]
