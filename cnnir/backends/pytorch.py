"""The PyTorch backend: an IR graph as a ``torch.fx`` GraphModule, and its weights.

* :func:`to_module` builds a ``torch.fx.GraphModule`` whose submodules nest by
  DSL scope (``state_dict`` keys read like the model:
  ``inception_3a.b2_3x3.weight``) and whose generated ``forward`` is plain,
  readable PyTorch code (``print(module.code)``); the calls are compiled once,
  nothing walks the graph per call.  It works with ``torch.compile``,
  ``torch.jit.trace`` and ``torch.jit.script``, ``.to(device)``, ``.half()``
  and training mode (BatchNorm batch statistics, active dropout).
* :func:`weights_from_module` reads trained weights back into the IR's layout
  (``graph.weights``), :func:`state_dict_to_weights` does the same for a
  ``state_dict`` (``--weights file.pt``), checking every key and shape.
* :func:`layer_outputs` runs the module once and returns every IR node's output.
* ``cnnir compile MODEL --to torch`` (:func:`cnnir.compile`) writes the source of
  :func:`~cnnir.backends.pytorch_source.to_source` (the file imports torch, and numpy
  to draw the seeded weights: the same arrays as ``to_module`` and ``--to onnx``).

The layer plan (which PyTorch op each IR op becomes, in-place activations,
asymmetric padding) is made by the per-op rules of :mod:`cnnir.backends.torch_rules`
in the vocabulary and module names of :mod:`cnnir.backends.torch_plan`, shared by
both emitters; this module only builds it as a GraphModule.

``num_batches_tracked``: PyTorch's BatchNorm keeps a step counter in its
``state_dict``.  It is training bookkeeping, not model state, so the IR has no
such array: modules start it at 0, :func:`weights_from_module` drops it and a
``--weights`` file may have it or not.

Weights for ``--to torch``: the emitted source carries no weights.  Its
constructor initialises them as torchvision does from ``--seed``; with
``--weights FILE.pt`` the file is checked against the emitted layout (every key
and shape, exit 2 on a mismatch) and named in the docstring's loading example.
The weights file stays the user's: nothing is copied beside the source.
"""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import fx, nn
except ModuleNotFoundError as _exc:  # the torch extra is not installed: say so in one line
    from ..extras import missing

    raise (missing(_exc, "the PyTorch backend") or _exc) from None

from ..errors import BackendError, UsageError
from ..ir import Graph
from ..weights import BUFFER_NAMES, check_size, ensure_weights, param_shapes
from .pytorch_source import class_name, to_source
from .torch_plan import HELPERS, Call, Plan, Ref
from .torch_rules import make_plan
from .torchvision_names import torchvision_paths

#: ``to_module`` modes: seeded torchvision-like or random weights (see
#: :func:`cnnir.weights.init_weights`), or allocated and left uninitialised
MODES = ("torchvision", "random", "empty")

_OPERATORS = {"add": operator.add, "mul": operator.mul, "truediv": operator.truediv,
              "getitem": operator.getitem}


def _function(target: str) -> Any:
    """``"F.pad"`` -> ``torch.nn.functional.pad``, ``"torch.cat"`` -> ``torch.cat``."""
    mod, _, name = target.partition(".")
    return getattr({"F": F, "torch": torch}[mod], name)


def _fx_graph(plan: Plan) -> fx.Graph:
    """The plan as an fx graph; each fx node remembers its IR node in ``meta``."""
    g = fx.Graph()
    values: dict[str, fx.Node] = {}
    names = ["x"] if len(plan.inputs) == 1 else [n.replace("/", "_") for n in plan.inputs]
    for n, name in zip(plan.inputs, names):
        node = g.placeholder(name)
        node.meta.update(cnnir_node=n, cnnir_out=True)
        values[n] = node

    def arg(a: Any) -> Any:
        if isinstance(a, Ref):
            return values[a.value]
        if isinstance(a, list):
            return [arg(x) for x in a]
        return a

    for step in plan.steps:
        base = step.node.replace("/", "_")
        for i, call in enumerate(step.calls):
            args = tuple(arg(a) for a in call.args)
            kwargs = {k: arg(v) for k, v in call.kwargs}
            target = _target(call)
            kind = {"module": "call_module", "method": "call_method"}.get(
                call.kind, "call_function")
            last = i == len(step.calls) - 1
            node = g.create_node(kind, target, args, kwargs,
                                 name=base if last else
                                 f"{base}_{call.hint or call.target.split('.')[-1]}")
            node.meta.update(cnnir_node=step.node, cnnir_out=last)
            values[step.value(i)] = node
    outs = [values[o] for o in plan.outputs]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    return g


def _target(call: Call) -> Any:
    if call.kind in ("module", "method"):
        return call.target
    if call.kind == "operator":
        return _OPERATORS[call.target]
    return _function(call.target)


def _root(plan: Plan) -> nn.Module:
    """The nested module tree of the plan (containers are plain ``nn.Module`` s)."""
    root = nn.Module()
    for step in plan.steps:
        if step.path is None or step.ctor is None:
            continue
        *parents, leaf = step.path.split(".")
        mod = root
        for p in parents:
            if not hasattr(mod, p):
                mod.add_module(p, nn.Module())
            mod = getattr(mod, p)
        c = step.ctor
        mod.add_module(leaf, _layer_class(c.cls)(*c.args, **dict(c.kwargs)))
    return root


_HELPER_CLASSES: dict[str, type] = {}


def _layer_class(name: str) -> Any:
    """``nn.<name>``, or the helper layer of that name (:data:`torch_plan.HELPERS`)."""
    if name not in HELPERS:
        return getattr(nn, name)
    if name not in _HELPER_CLASSES:
        space: dict[str, Any] = {"torch": torch, "nn": nn, "__name__": __name__}
        exec(HELPERS[name], space)  # noqa: S102 - our own class text, as the source writer emits it
        _HELPER_CLASSES[name] = space[name]
    return _HELPER_CLASSES[name]


def to_module(graph: Graph, weights: dict[str, dict[str, Any]] | None = None, seed: int = 0,
              mode: str = "torchvision", max_params: float = 2e9,
              device: str | torch.device | None = None) -> fx.GraphModule:
    """``graph`` as a ``torch.fx.GraphModule`` (see the module docstring).

    Weights come from ``weights`` (``{node: {"weight": array, ...}}`` in PyTorch
    layouts), else ``graph.weights``, completed where missing by the seeded
    initialisation :func:`cnnir.weights.init_weights` (``mode="torchvision"`` or
    ``"random"``); ``mode="empty"`` loads only the arrays given and leaves the
    others uninitialised (to load a ``state_dict`` next, or for shape checks).
    ``device="meta"`` allocates nothing at all.  Models above ``max_params``
    weights are refused.  The module is returned in training mode, as
    ``nn.Module`` s are; call ``.eval()`` for inference.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    plan = make_plan(graph)
    check_size(graph, max_params)
    with torch.device("meta"):
        root = _root(plan)
    gm = fx.GraphModule(root, _fx_graph(plan), class_name=class_name(graph.name))
    target = torch.device(device) if device is not None else torch.device("cpu")
    if target.type == "meta":
        return gm
    gm = gm.to_empty(device=target)
    with torch.no_grad():
        for m in gm.modules():
            if isinstance(m, nn.BatchNorm2d) and m.num_batches_tracked is not None:
                m.num_batches_tracked.zero_()
        given = weights if weights is not None else graph.weights
        if mode == "empty":
            # only what was given is loaded (shapes checked); the rest stays uninitialised
            arrays = {n: a for n, a in (given or {}).items() if param_shapes(graph, n)}
            _check_shapes(graph, arrays)
        else:
            if weights is not None:
                shapes = {n: graph.meta(n)["shape"] for n in graph.nodes()}
                graph = graph.copy()  # fresh meta: carry the shapes over
                for n, shape in shapes.items():
                    graph.meta(n)["shape"] = shape
                graph.weights = weights
            arrays = ensure_weights(graph, seed, mode, max_params)
        _load_arrays(gm, plan, arrays)
    return gm


def _check_shapes(graph: Graph, arrays: dict[str, dict[str, Any]]) -> None:
    for n, named in arrays.items():
        for key, shape in param_shapes(graph, n).items():
            if key in named and tuple(named[key].shape) != shape:
                raise BackendError(
                    f"weights of '{n}': '{key}' has shape {tuple(named[key].shape)}, "
                    f"the layer needs {shape}", node=n)


def _load_arrays(module: nn.Module, plan: Plan, arrays: dict[str, dict[str, Any]]) -> None:
    paths = plan.paths
    for node, named in arrays.items():
        sub = module.get_submodule(paths[node])
        for key, arr in named.items():
            t = getattr(sub, key)
            arr = np.ascontiguousarray(arr)
            if not arr.flags.writeable:  # an ONNX file's weights are read-only views
                arr = arr.copy()
            t.copy_(torch.from_numpy(arr))


# --------------------------------------------------------------------------- weights


def _owners(module: nn.Module, graph: Graph | None) -> dict[str, str]:
    """IR node -> module path for the nodes that have weights."""
    if graph is not None:
        paths = make_plan(graph).paths
        return {n: paths[n] for n in graph.nodes() if param_shapes(graph, n)}
    if not isinstance(module, fx.GraphModule):
        raise BackendError("weights_from_module needs the graph for a module that "
                           "to_module did not build (e.g. one from to_source)")
    out = {}
    for node in module.graph.nodes:
        if node.op == "call_module" and "cnnir_node" in node.meta:
            sub = module.get_submodule(node.target)
            buffers = dict(sub.named_buffers(recurse=False))
            if any(True for _ in sub.parameters(recurse=False)) or any(
                    k in buffers for k in (*BUFFER_NAMES, "weight", "bias")):  # fixed Scale
                out[node.meta["cnnir_node"]] = node.target
    return out


def weights_from_module(module: nn.Module, graph: Graph | None = None
                        ) -> dict[str, dict[str, np.ndarray]]:
    """The module's weights in the IR's layout: ``{node: {"weight": array, ...}}``.

    Arrays are float32 numpy copies, ready for ``graph.weights`` (and so for the
    transform passes, such as BatchNorm folding, and the ONNX backend).
    ``num_batches_tracked`` is left out.  ``graph`` is needed for a module that
    :func:`to_module` did not build (one made from :func:`to_source`'s file).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for node, path in _owners(module, graph).items():
        sub = module.get_submodule(path)
        arrays = {}
        for key, t in sub.state_dict().items():
            if key == "num_batches_tracked":
                continue
            arrays[key] = t.detach().to("cpu", torch.float32).numpy().copy()
        out[node] = arrays
    return out


def expected_state_dict(graph: Graph) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` keys and shapes the emitted module has (without
    ``num_batches_tracked``), in ``state_dict`` order."""
    plan = make_plan(graph)
    out = {}
    for step in plan.steps:
        if step.path is None:
            continue
        for key, shape in param_shapes(graph, step.node).items():
            out[f"{step.path}.{key}"] = shape
    return out


def state_dict_to_weights(graph: Graph, state: dict[str, Any], source: str = "state_dict"
                          ) -> dict[str, dict[str, np.ndarray]]:
    """A ``state_dict`` (from ``to_module`` or ``to_source``'s class) as IR weights.

    For a zoo model that mirrors torchvision (:mod:`cnnir.backends.torchvision_names`)
    torchvision's own ``state_dict`` (``layer1.0.conv1.weight``) is read too: the
    key style is detected (the one more of the keys belong to) and the whole file
    is then checked in that style.  Every key and shape is checked; a missing or
    unexpected key or a wrong shape raises :class:`~cnnir.errors.BackendError`
    listing them.  BatchNorm's ``num_batches_tracked`` may be present or not.
    """
    plan = make_plan(graph)
    paths = plan.paths
    tv = torchvision_paths(graph, paths)
    if tv is not None and _key_style(graph, paths, tv, state) == "torchvision":
        paths = {**paths, **tv}
    expected: dict[str, tuple[str, str, tuple[int, ...]]] = {}
    optional = set()
    for step in plan.steps:
        if step.path is None:
            continue
        path = paths[step.node]
        shapes = param_shapes(graph, step.node)
        for key, shape in shapes.items():
            expected[f"{path}.{key}"] = (step.node, key, shape)
        if "running_mean" in shapes:
            optional.add(f"{path}.num_batches_tracked")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and k not in optional]
    wrong = []
    for k, (node, _, shape) in expected.items():
        if k in state:
            got = tuple(getattr(state[k], "shape", ()))
            if got != shape:
                wrong.append(f"{k} is {'x'.join(map(str, got)) or 'a scalar'}, "
                             f"layer '{node}' needs {'x'.join(map(str, shape))}")
    if missing or unexpected or wrong:
        parts = []
        for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("wrong shapes", wrong)):
            if items:
                more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{what}: {', '.join(items[:5])}{more}")
        raise BackendError(f"{source} does not fit model '{graph.name}': " + "; ".join(parts))
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, (node, key, _) in expected.items():
        t = state[k]
        if not torch.is_floating_point(t):
            raise BackendError(f"{source}: {k} holds {t.dtype} values, expected floats")
        out.setdefault(node, {})[key] = t.detach().to("cpu", torch.float32).numpy().copy()
    return out


def _key_style(graph: Graph, paths: dict[str, str], tv: dict[str, str],
               state: dict[str, Any]) -> str:
    """``"torchvision"`` when more of ``state``'s keys are torchvision's names than
    cnnir's (ties: cnnir's)."""
    def keys(p: dict[str, str]) -> set[str]:
        return {f"{p[n]}.{k}" for n in tv for k in param_shapes(graph, n)}

    ours = len(keys(paths) & set(state))
    theirs = len(keys(tv) & set(state))
    return "torchvision" if theirs > ours else "cnnir"


def torchvision_state_dict(graph: Graph, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (the ``state_dict`` of :func:`to_module`'s module, or of the class
    :func:`to_source` writes) under torchvision's key names, ready for
    ``torchvision.models.<name>().load_state_dict``; BatchNorm's
    ``num_batches_tracked`` is renamed with its layer.  Raises
    :class:`~cnnir.errors.BackendError` for a model without torchvision names."""
    paths = make_plan(graph).paths
    tv = torchvision_paths(graph, paths)
    if tv is None:
        raise BackendError(f"model '{graph.name}' has no torchvision names (only the zoo "
                           f"models that mirror torchvision have them)")
    rename = {paths[n]: p for n, p in tv.items()}
    out = {}
    for key, value in state.items():
        path, _, leaf = key.rpartition(".")
        if path not in rename:
            raise BackendError(f"'{key}' is not a weight of model '{graph.name}'")
        out[f"{rename[path]}.{leaf}"] = value
    return out


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``, with user-facing errors."""
    if not os.path.isfile(path):
        raise UsageError(f"--weights: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors vary by version
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"cannot read {path} as a PyTorch state_dict: {first}") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise BackendError(f"{path} is not a state_dict (a dict of names to tensors); "
                           f"save one with torch.save(model.state_dict(), path)")
    return state


# --------------------------------------------------------------------------- running


def layer_outputs(module: fx.GraphModule, *inputs: torch.Tensor, clone: bool = True
                  ) -> dict[str, torch.Tensor]:
    """Run ``module`` (from :func:`to_module`) once; every IR node's output by name.

    With ``clone`` each output is copied as it is produced, so later in-place
    activations do not change the recorded values.
    """
    seen: dict[str, torch.Tensor] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if n.meta.get("cnnir_out"):
                seen[n.meta["cnnir_node"]] = out.clone() if clone else out
            return out

    with torch.no_grad():
        _Recorder(module).run(*inputs)
    return seen


__all__ = ["to_module", "to_source", "weights_from_module", "state_dict_to_weights",
           "torchvision_state_dict",
           "expected_state_dict", "load_state_dict_file", "layer_outputs",
           "MODES"]
