"""Weights as numpy arrays, shared by every backend (numpy only, no torch).

A graph's weights are ``{node_name: {param_name: np.ndarray}}`` with PyTorch's
parameter names and layouts, so the PyTorch and ONNX backends read the same
numbers:

=================  ==========================================================
op                 arrays
=================  ==========================================================
Conv2d             ``weight`` (Cout, Cin/groups, kh, kw), ``bias`` (Cout) if bias
ConvTranspose2d    ``weight`` (Cin, Cout/groups, kh, kw), ``bias`` (Cout) if bias
BatchNorm2d        ``weight``, ``bias`` (C); buffers ``running_mean``, ``running_var``
Linear             ``weight`` (out, in), ``bias`` (out) if bias
FusedConv2d        ``weight`` (Cout, Cin/groups, kh, kw), ``bias`` (Cout), BN folded
=================  ==========================================================

:func:`init_weights` draws them from a seed: ``mode="torchvision"`` follows
torchvision's initialisation (Kaiming-normal fan-out for convs, N(0, 0.01) for
linear layers, zero biases, identity BatchNorm); ``mode="random"`` also draws
biases and BatchNorm statistics, which numerical tests need (identity BN would
make a folding bug invisible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import BackendError
from .ir import Graph
from .ops import ALL_OPS, NoRule

#: names of non-trainable arrays (buffers), as the ops declare them
BUFFER_NAMES = tuple(dict.fromkeys(b for cls in ALL_OPS for b in sorted(cls.buffers)))


def param_shapes(graph: Graph, name: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays node ``name`` owns (empty for weightless ops), as the op
    declares them (:meth:`cnnir.ops.Op.params`).  An op without a parameter rule owns
    none here: each target refuses such an op by its own rules."""
    op = graph.op(name)
    inputs = graph.inputs(name)
    ins: list[Any] = [graph.meta(i).get("shape") for i in inputs]
    try:
        return op.params(ins)
    except NoRule:
        return {}
    except TypeError:
        for i in inputs:
            graph.shape(i)  # an input shape is unknown: say so
        raise


def total_params(graph: Graph) -> int:
    """Number of weight elements a backend would materialise (params + buffers)."""
    total = 0
    for n in graph.nodes():
        for shape in param_shapes(graph, n).values():
            size = 1
            for d in shape:
                size *= d
            total += size
    return total


def check_size(graph: Graph, max_params: float = 2e9) -> None:
    """Refuse to materialise weights for a model above ``max_params`` elements."""
    total = total_params(graph)
    if total > max_params:
        raise BackendError(
            f"model '{graph.name}' has {total:,} weights, above --max-params "
            f"{int(max_params):,}; refusing to allocate them (raise --max-params to force)")


def init_weights(
    graph: Graph, seed: int = 0, mode: str = "torchvision"
) -> dict[str, dict[str, Any]]:
    """Seeded weights for every node that has parameters (see module docstring)."""
    if mode not in ("torchvision", "random"):
        raise ValueError(f"mode must be 'torchvision' or 'random', got {mode!r}")
    rng = np.random.default_rng(seed)
    rand = mode == "random"
    weights: dict[str, dict[str, Any]] = {}
    for n in graph.nodes():
        shapes = param_shapes(graph, n)
        if not shapes:
            continue
        op = graph.op(n)
        scheme = _SCHEMES.get(op.init)  # type: ignore[attr-defined]
        if scheme is None:
            raise BackendError(f"'{n}': op kind '{op.kind}' declares no weight "
                               f"initialisation (init={op.init!r})", node=n)  # type: ignore
        arrays = scheme(rng, shapes, rand)
        weights[n] = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()
                      if k in shapes}  # a LayerNorm has no running statistics
    return weights


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of any rank >= 1, as PyTorch computes them
    (dim 1 and dim 0 times the receptive field ``prod(shape[2:])``; a vector: its size)."""
    if len(shape) < 2:
        return shape[0], shape[0]
    field = 1
    for d in shape[2:]:
        field *= d
    return shape[1] * field, shape[0] * field


def _bias(rng: Any, shapes: dict[str, tuple[int, ...]], rand: bool, out: dict[str, Any]) -> None:
    if "bias" in shapes:
        out["bias"] = rng.normal(0.0, 0.05, shapes["bias"]) if rand else np.zeros(shapes["bias"])


def _kaiming(rng: Any, shapes: dict[str, tuple[int, ...]], rand: bool) -> dict[str, Any]:
    """Convolutions: Kaiming-normal fan-out (PyTorch takes a transposed weight's
    fan-out from dim 0 too), zero biases."""
    wshape = shapes["weight"]
    out = {"weight": rng.normal(0.0, np.sqrt(2.0 / _fans(wshape)[1]), wshape)}
    _bias(rng, shapes, rand, out)
    return out


def _linear(rng: Any, shapes: dict[str, tuple[int, ...]], rand: bool) -> dict[str, Any]:
    """Linear layers: N(0, 0.01) (random mode: N(0, 1/fan_in)), zero biases."""
    wshape = shapes["weight"]
    std = 0.01 if not rand else 1.0 / np.sqrt(_fans(wshape)[0])
    out = {"weight": rng.normal(0.0, std, wshape)}
    _bias(rng, shapes, rand, out)
    return out


def _affine(rng: Any, shapes: dict[str, tuple[int, ...]], rand: bool) -> dict[str, Any]:
    """Normalisations: identity (scale 1, shift 0, mean 0, variance 1); random mode
    draws them, so that a folding bug cannot hide behind an identity."""
    c = shapes["weight"][0]
    if rand:
        return {"weight": rng.uniform(0.5, 1.5, c), "bias": rng.normal(0.0, 0.1, c),
                "running_mean": rng.normal(0.0, 0.1, c),
                "running_var": rng.uniform(0.5, 1.5, c)}
    return {"weight": np.ones(c), "bias": np.zeros(c), "running_mean": np.zeros(c),
            "running_var": np.ones(c)}


def _scale(rng: Any, shapes: dict[str, tuple[int, ...]], rand: bool) -> dict[str, Any]:
    """Scale layers: the identity (weight 1, bias 0); random mode draws them."""
    out: dict[str, Any] = {}
    if "weight" in shapes:
        w = shapes["weight"]
        out["weight"] = rng.uniform(0.5, 1.5, w) if rand else np.ones(w)
    if "bias" in shapes:
        b = shapes["bias"]
        out["bias"] = rng.normal(0.0, 0.1, b) if rand else np.zeros(b)
    return out


#: initialisation scheme by the name an op declares in ``init``
_SCHEMES: dict[str | None, Callable[[Any, dict[str, tuple[int, ...]], bool], dict[str, Any]]] = {
    "kaiming": _kaiming, "linear": _linear, "affine": _affine, "scale": _scale,
}


def with_weights(graph: Graph, weights: Any,
                 read_module: Callable[[Any, Graph], Any] | None = None) -> Graph:
    """``graph`` carrying ``weights`` (``{node: {name: array}}``), as a copy that keeps
    the analysis results; ``graph`` itself if ``weights`` is None.  The caller's graph
    is never changed.  A torch module is read into arrays by ``read_module`` (the
    PyTorch backend's ``weights_from_module``): this module imports no backend."""
    if weights is None:
        return graph
    if hasattr(weights, "state_dict"):
        if read_module is None:
            raise TypeError("with_weights: read a torch module into arrays first, e.g. "
                            "with read_module=cnnir.backends.pytorch.weights_from_module")
        weights = read_module(weights, graph)
    g = graph.copy()
    g.weights = dict(weights)
    for n in graph.nodes():
        g.meta(n).update(graph.meta(n))
    return g


def ensure_weights(graph: Graph, seed: int = 0, mode: str = "torchvision",
                   max_params: float = 2e9) -> dict[str, dict[str, Any]]:
    """``graph.weights`` completed with seeded arrays where missing, shapes checked."""
    check_size(graph, max_params)
    have = graph.weights or {}
    fresh: dict[str, dict[str, Any]] | None = None
    out: dict[str, dict[str, Any]] = {}
    for n in graph.nodes():
        shapes = param_shapes(graph, n)
        if not shapes:
            continue
        arrays = have.get(n)
        if arrays is None:
            if fresh is None:
                fresh = init_weights(graph, seed, mode)
            arrays = fresh[n]
        for key, shape in shapes.items():
            if key not in arrays:
                raise BackendError(f"weights of '{n}' lack '{key}'", node=n)
            if tuple(arrays[key].shape) != shape:
                raise BackendError(
                    f"weights of '{n}': '{key}' has shape {tuple(arrays[key].shape)}, "
                    f"the layer needs {shape}", node=n)
        out[n] = arrays
    return out


def fold_batchnorm(
    weight: Any, bias: Any | None, gamma: Any, beta: Any, mean: Any, var: Any, eps: float,
) -> tuple[Any, Any]:
    """Fold an inference BatchNorm into the preceding conv (weight layout Cout first).

    ``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``;
    computed in float64 and returned as float32.
    """
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    w = np.asarray(weight, np.float64) * scale.reshape(-1, *([1] * (np.ndim(weight) - 1)))
    b0 = np.zeros_like(scale) if bias is None else np.asarray(bias, np.float64)
    b = (b0 - np.asarray(mean, np.float64)) * scale + np.asarray(beta, np.float64)
    return w.astype(np.float32), b.astype(np.float32)


__all__ = ["BUFFER_NAMES", "param_shapes", "total_params", "check_size", "init_weights",
           "ensure_weights", "fold_batchnorm"]
