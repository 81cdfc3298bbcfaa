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

from typing import Any

import numpy as np

from .errors import BackendError
from .ir import Graph
from .ops import BatchNorm2d, Conv2d, ConvTranspose2d, FusedConv2d, Linear

#: names of non-trainable arrays (buffers)
BUFFER_NAMES = ("running_mean", "running_var")


def param_shapes(graph: Graph, name: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays node ``name`` owns (empty for weightless ops)."""
    op = graph.op(name)
    ins = graph.inputs(name)
    if isinstance(op, (Conv2d, FusedConv2d)):
        conv = op.conv if isinstance(op, FusedConv2d) else op
        cin = graph.shape(ins[0])[0]
        out: dict[str, tuple[int, ...]] = {
            "weight": (conv.out_channels, cin // conv.groups, *conv.kernel)}
        if isinstance(op, FusedConv2d) or conv.bias:
            out["bias"] = (conv.out_channels,)
        return out
    if isinstance(op, ConvTranspose2d):
        cin = graph.shape(ins[0])[0]
        out = {"weight": (cin, op.out_channels // op.groups, *op.kernel)}
        if op.bias:
            out["bias"] = (op.out_channels,)
        return out
    if isinstance(op, BatchNorm2d):
        c = graph.shape(ins[0])[0]
        return {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,)}
    if isinstance(op, Linear):
        fin = graph.shape(ins[0])[0]
        out = {"weight": (op.out_features, fin)}
        if op.bias:
            out["bias"] = (op.out_features,)
        return out
    return {}


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
        arrays: dict[str, Any] = {}
        if isinstance(op, BatchNorm2d):
            c = shapes["weight"][0]
            if rand:
                arrays["weight"] = rng.uniform(0.5, 1.5, c)
                arrays["bias"] = rng.normal(0.0, 0.1, c)
                arrays["running_mean"] = rng.normal(0.0, 0.1, c)
                arrays["running_var"] = rng.uniform(0.5, 1.5, c)
            else:
                arrays["weight"] = np.ones(c)
                arrays["bias"] = np.zeros(c)
                arrays["running_mean"] = np.zeros(c)
                arrays["running_var"] = np.ones(c)
        else:
            wshape = shapes["weight"]
            if isinstance(op, Linear):
                std = 0.01 if not rand else 1.0 / np.sqrt(wshape[1])
            elif isinstance(op, ConvTranspose2d):
                # PyTorch computes fan_out of a transposed weight from dim 0
                std = np.sqrt(2.0 / (wshape[0] * wshape[2] * wshape[3]))
            else:
                std = np.sqrt(2.0 / (wshape[0] * wshape[2] * wshape[3]))
            arrays["weight"] = rng.normal(0.0, std, wshape)
            if "bias" in shapes:
                arrays["bias"] = (rng.normal(0.0, 0.05, shapes["bias"]) if rand
                                  else np.zeros(shapes["bias"]))
        weights[n] = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    return weights


def with_weights(graph: Graph, weights: Any) -> Graph:
    """``graph`` carrying ``weights`` (``{node: {name: array}}`` or a module built by the
    PyTorch backend), as a copy that keeps the analysis results; ``graph`` itself if
    ``weights`` is None.  The caller's graph is never changed."""
    if weights is None:
        return graph
    if hasattr(weights, "state_dict"):
        from .backends.pytorch import weights_from_module  # torch only when given a module

        weights = weights_from_module(weights, graph)
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
