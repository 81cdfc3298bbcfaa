"""PyTorch import: ``cnnir.from_torch(module, input=(C, H, W))`` and ``file.py:ClassName``.

The module is traced with ``torch.fx`` (nothing is computed) and every fx node is
mapped to an IR layer, weights included (``graph.weights``, PyTorch layouts):

* ``torch.nn`` layers (leaves of the trace): Conv2d, ConvTranspose2d, BatchNorm2d,
  ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, Hardswish, Hardsigmoid, SiLU, Hardtanh
  ``(0, 6)``, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (``1`` is a global pool),
  LocalResponseNorm, Dropout / Dropout2d, Flatten, Linear, Identity, Softmax,
  Upsample.
* the matching calls: ``F.relu`` / ``torch.relu`` / ``x.relu()`` (and the other
  activations), ``torch.cat(..., dim=1)``, ``+`` / ``torch.add``, ``*`` /
  ``torch.mul``, ``torch.flatten(x, 1)``, ``x.view(x.size(0), -1)`` and
  ``reshape``, ``F.adaptive_avg_pool2d``, ``F.max_pool2d``, ``F.avg_pool2d``,
  ``F.interpolate(scale_factor=...)`` or ``size=...`` (any size), ``x.mean((2, 3), keepdim=True)``,
  ``F.dropout``, ``F.softmax(dim=1)``, ``F.local_response_norm``,
  ``x.clamp(0, 6)``, ``F.pad`` (constant, on W, H and C),
  ``torch.stack(xs).mean(0)`` / ``.sum(0)`` (one n-input mean / sum), torchvision's
  ``stochastic_depth`` (drop-path; its ``StochasticDepth`` module calls it), and
  ``+``, ``-``, ``*``, ``/`` of a feature map and a constant -- a number, or a
  parameter or buffer of shape ``(C, 1, 1)`` / ``(1, C, 1, 1)`` (``x * self.gamma``,
  ``x / 6``): a scale layer holding the constant.  ``x.size()``, ``x.shape`` and
  integer arithmetic on them are evaluated (the batch size stays symbolic);
  ``F.conv2d``, ``F.batch_norm`` and ``F.linear`` on the module's own tensors (timm's
  ``BatchNormAct2d``, ``ScaledStdConv2d``).
* timm's attention views (:mod:`cnnir.frontends.torch_rules`): split attention's
  ``view(N, radix, C, H, W)`` / ``torch.stack(xs, dim=1)``, their ``.sum(1)``, products
  and ``softmax(dim=1)``, rSoftMax's ``view(N, card, radix, -1).transpose(1, 2)``
  (a ``radix_softmax``); ECA's ``view(N, 1, C)``, ``nn.Conv1d(1, 1, k)``, ``view(N, C,
  1, 1)`` and ``expand_as`` (a ``channel_conv1d``); space-to-depth's 6-D view and
  ``permute(0, 3, 5, 1, 2, 4)``.
* size reads, folded at the import's input size: ``x.size()``, ``x.size(d)``,
  ``x.shape``, ``x.dim()``, ``x.ndim``, ``len(x)`` (where fx records it); the batch size
  stays symbolic (:data:`BATCH`: a view keeps it as N, arithmetic on it is refused).
  Calls on parameters and buffers alone (weight standardisation) are computed with
  torch at import: their result is a constant.

Anything else is an error, never skipped: every unsupported ``torch.nn`` layer
type is listed in one message; an unsupported call names its source line.  A
model ``torch.fx`` cannot trace (control flow on tensor values, or on sizes in a
``forward``) gets the tracer's message at the user's line where tracing stopped,
the innermost module it was in, and the ``torch.onnx.export`` route as the hint.

Names follow the module tree (:mod:`cnnir.frontends.importing`): the module
``layer1.0.conv1`` becomes the node ``layer1/0/conv1`` in scope
``("layer1", "0")`` whose :class:`~cnnir.ir.BlockInfo` kind is the module's
class name (``BasicBlock``); a functional ``+`` inside it is ``layer1/0/add``.
Identical consecutive blocks of a ``Sequential`` form a repeated group
(``BlockInfo.repeat``), so reports and diagrams say "BasicBlock x 3".
Each node's location is the line of ``forward`` that made it.

This module is the driver: it traces, walks the fx graph, evaluates size
arithmetic, names nodes and records blocks.  What each layer and call becomes is
a rule of :mod:`cnnir.frontends.torch_rules` (``TORCH_IMPORT``, keyed by the
torch name: ``"nn.Conv2d"``, ``"F.relu"``, ``"Tensor.view"``...).

``torch`` is imported inside these functions only: importing this module is light.
"""

from __future__ import annotations

import inspect
import operator
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import ops as O
from ..errors import CnnirError, FrontendError
from ..extras import require
from ..ir import Graph, SourceLoc
from .importing import BATCH, Importer, first_user_frame, qualified_path, sanitize
from .torch_rules import (
    TORCH_IMPORT,
    ChannelsLast,
    Layer,
    MaxPadded,
    Stacked,
    TensorAttr,
    attr_params,
    channels_last_module,
    describe,
    function_key,
    module_key,
    pending_shape,
    seq_module,
)

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def from_torch(module: Any, input: Sequence[int] | None = None, name: str | None = None,
               infer: bool = True) -> Graph:
    """Trace an ``nn.Module`` (an instance, or a class built without arguments) into a graph.

    ``input`` is the per-sample input shape ``(C, H, W)`` (or ``(F,)``); without
    it, a class attribute ``input_shape`` (or ``input_size``) of the module is used.
    """
    require("torch", "from_torch")
    import torch

    if isinstance(module, type):
        if not issubclass(module, torch.nn.Module):
            raise FrontendError(f"{module.__name__} is not a torch.nn.Module subclass")
        module = _instantiate(module)
    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"from_torch needs an nn.Module, got {type(module).__name__}")
    shape = _input_shape(module, input)
    training = module.training
    module.eval()  # Dropout / BatchNorm as in inference; restored below
    try:
        gm_graph = _trace(module, shape)
        graph = _Mapper(module, name or sanitize(type(module).__name__), shape).run(gm_graph)
    finally:
        module.train(training)
    if infer:
        from ..passes.infer_shapes import infer_shapes

        infer_shapes(graph)
    return graph


def torch_object(namespace: dict[str, Any], name: str | None, path: str) -> Any:
    """The ``nn.Module`` class or instance ``name`` of an executed file's namespace.

    Without ``name``: the one module instance, or the one ``nn.Module`` subclass the
    file defines.  None when the file uses no torch (so nothing imports torch here).
    """
    if "torch" not in sys.modules:
        return None
    import torch

    def is_mod(v: Any) -> bool:
        return isinstance(v, torch.nn.Module) or (
            isinstance(v, type) and issubclass(v, torch.nn.Module))

    if name is not None:
        obj = namespace.get(name)
        return obj if is_mod(obj) else None
    mod_name = namespace.get("__name__")
    instances = {k: v for k, v in namespace.items()
                 if isinstance(v, torch.nn.Module) and not k.startswith("_")}
    classes = {k: v for k, v in namespace.items() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == mod_name}
    found = instances or classes
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        raise FrontendError(f"{path} defines several nn.Modules ({', '.join(sorted(found))}); "
                            f"pick one with {path}:NAME")
    return None


# --------------------------------------------------------------------------- tracing


def _skip_frame(fname: str) -> bool:
    """Frames that are not the user's: torch, cnnir, the standard library."""
    import torch

    ab = os.path.abspath(fname)
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__))
    if fname.startswith("<") or ab.startswith(torch_dir + os.sep) or \
            ab.startswith(_PKG_DIR + os.sep):
        return True
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return any(ab.startswith(os.path.join(p, "lib") + os.sep) for p in prefixes)


def _display(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _instantiate(cls: type) -> Any:
    try:
        return cls()
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            raise FrontendError(f"cannot build {cls.__name__}() without arguments ({exc}); "
                                f"pass an instance to from_torch instead",
                                loc=_class_loc(cls)) from None
        raise _user_error(exc, f"building {cls.__name__}()", _class_loc(cls)) from None
    except Exception as exc:
        raise _user_error(exc, f"building {cls.__name__}()", _class_loc(cls)) from None


def _class_loc(cls: type) -> SourceLoc | None:
    """Where the user wrote ``cls``: its ``forward`` (or the class); None for torch's own."""
    fn = cls.__dict__.get("forward") or cls.__dict__.get("__init__")
    code = getattr(fn, "__code__", None)
    if code is not None:
        file, line = code.co_filename, code.co_firstlineno
    else:
        try:
            file, line = inspect.getsourcefile(cls) or "", inspect.getsourcelines(cls)[1]
        except (OSError, TypeError):
            return None
    if not file or _skip_frame(file):
        return None
    return SourceLoc(_display(file), line)


def _user_error(exc: BaseException, what: str, fallback: SourceLoc | None) -> FrontendError:
    frame = first_user_frame(exc.__traceback__, _skip_frame)
    loc = SourceLoc(_display(frame[0]), frame[1]) if frame else fallback
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return FrontendError(f"{what}: {type(exc).__name__}: {msg}".rstrip(": "), loc=loc)


def _input_shape(module: Any, input: Sequence[int] | None) -> tuple[int, ...]:
    if input is None:
        input = getattr(module, "input_shape", None) or getattr(module, "input_size", None)
    if input is None:
        raise FrontendError(f"{type(module).__name__}: the input size is unknown; give it with "
                            f"--input CxHxW (input=(C, H, W) from Python)",
                            loc=_class_loc(type(module)))
    try:
        return O.Input(tuple(int(d) for d in input)).shape
    except (CnnirError, TypeError, ValueError) as exc:
        raise FrontendError(f"input {tuple(input)!r}: {getattr(exc, 'msg', exc)}") from None


def _trace(module: Any, shape: tuple[int, ...]) -> Any:
    import torch.fx

    failed_in: list[str] = []  # the innermost submodule whose forward stopped the trace

    class Tracer(torch.fx.Tracer):
        """Records the user's ``forward`` line on every node, and the submodule it is in."""

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            path = self.path_of_module(m)
            try:
                return super().call_module(m, forward, args, kwargs)
            except Exception:
                if not failed_in:
                    failed_in.append(path)  # the innermost module: the first to see it
                raise

        def create_node(self, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(*args, **kwargs)
            f = sys._getframe(1)
            while f is not None and _skip_frame(f.f_code.co_filename):
                f = f.f_back  # type: ignore[assignment]
            if f is not None:
                node.meta["cnnir_loc"] = SourceLoc(_display(f.f_code.co_filename), f.f_lineno)
            return node

    # optional forward arguments keep their defaults (``forward(self, x, mask=None)``)
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    concrete = {p.name: p.default for p in params[1:]
                if p.default is not inspect.Parameter.empty}
    try:
        return Tracer(autowrap_functions=_leaf_functions()).trace(
            module, concrete_args=concrete or None)
    except Exception as exc:
        err = _user_error(exc, f"torch.fx cannot trace {type(module).__name__}",
                          _class_loc(type(module)))
        if failed_in and failed_in[0]:
            sub = module.get_submodule(failed_in[0])
            err.msg += f" in module '{failed_in[0]}' ({type(sub).__name__})"
        size = ", ".join(str(d) for d in shape)
        err.hint = ("torch.fx traces without values: control flow on tensor values, "
                    "data-dependent shapes and non-torch calls on tensors stop it; "
                    f"export to ONNX instead: torch.onnx.export(model, torch.randn(1, {size}), "
                    "'model.onnx'), then `cnnir report model.onnx`")
        raise err from None


def _leaf_functions() -> tuple[Any, ...]:
    """Functions outside torch that the rules map (keys ``"pkg.module.function"``), from
    the modules already imported: torch.fx records each call as one node instead of
    tracing into it.  timm's ``pad_same`` reads ``x.size()`` into Python arithmetic,
    which fx cannot trace; as a leaf, its rule computes the pad at the import's size."""
    out = []
    for key in TORCH_IMPORT.keys():
        mod, _, fn = str(key).rpartition(".")
        if mod.split(".")[0] in ("F", "torch", "operator", "Tensor", "nn"):
            continue
        obj = getattr(sys.modules.get(mod), fn, None)
        if callable(obj):
            out.append(obj)
    return tuple(out)


# --------------------------------------------------------------------------- mapping


class _Mapper:
    def __init__(self, root: Any, name: str, shape: tuple[int, ...]) -> None:
        self.root = root
        self.imp = Importer(name)
        self.shape = shape
        self.values: dict[Any, Any] = {}
        self.class_locs: dict[type, SourceLoc | None] = {}

    def run(self, fx_graph: Any) -> Graph:
        self._check_modules(fx_graph)
        outputs: list[int] = []
        seen_input = False
        for node in fx_graph.nodes:
            loc = node.meta.get("cnnir_loc")
            if node.op == "placeholder":
                if seen_input and node.args:  # an optional argument: its default value
                    self.values[node] = node.args[0]
                    continue
                if seen_input:
                    raise FrontendError(f"forward takes several inputs ({node.name!r} is the "
                                        f"second); cnnir imports one-input models", loc=loc)
                seen_input = True
                self.values[node] = Layer(self.imp.add(
                    O.Input(self.shape), [], (sanitize(str(node.target)),), "input",
                    f"input '{node.name}'", loc or _class_loc(type(self.root))))
            elif node.op == "get_attr":
                self.values[node] = TensorAttr(node.target)
            elif node.op == "output":
                outputs = [self.ir(node, v, "output") for v in _flat(node.args[0])]
            else:
                try:
                    self.values[node] = self.convert(node)
                except CnnirError as exc:
                    if exc.loc is None:
                        exc.loc = loc
                    raise
                self._in_place(node)
        if not outputs:
            raise FrontendError(f"{self.imp.name} returns no tensor")
        for n in self.imp.nodes:  # block kinds and locations from the module classes
            for k in range(1, len(n.path) + 1):
                self._record_scope(n.path[:k])
        self._record_repeats()
        root_loc = _class_loc(type(self.root))
        return self.imp.build(outputs, source=root_loc.file if root_loc else None)

    def _in_place(self, node: Any) -> None:
        """An in-place call (``out.mul_(g)``, ``out += y``, ``F.relu(x, inplace=True)``, an
        ``inplace=True`` module) changes its first argument: later readers of that
        argument read the result (NF-ResNet's ``out.mul_(self.skipinit_gain)`` whose
        return value is dropped)."""
        import torch.fx

        src = node.args[0] if node.args else None
        if not isinstance(src, torch.fx.Node) or not isinstance(self.values.get(node), Layer) \
                or not isinstance(self.values.get(src), Layer):
            return
        if node.op == "call_method":
            inplace = str(node.target).endswith("_") and not str(node.target).startswith("_")
        elif node.op == "call_module":
            inplace = getattr(self.root.get_submodule(node.target), "inplace", False) is True
        else:
            inplace = node.target in _IN_PLACE or node.kwargs.get("inplace") is True
        if inplace:
            self.values[src] = self.values[node]

    def _record_scope(self, path: tuple[str, ...]) -> None:
        if path in self.imp.classes:
            return
        try:
            mod = self.root.get_submodule(".".join(path))
        except AttributeError:
            return
        cls = type(mod)
        self.imp.classes[path] = cls.__name__
        if cls not in self.class_locs:
            self.class_locs[cls] = _class_loc(cls)
        loc = self.class_locs[cls]
        if loc is not None:
            self.imp.class_locs[path] = loc

    def _record_repeats(self) -> None:
        """Runs of identical children of a Sequential / ModuleList are one repeated group.

        Identical means the same module tree (``repr``: classes and every layer's
        arguments), as in ResNet's ``layer1 = Sequential(BasicBlock(64), BasicBlock(64))``;
        reports and diagrams then say "BasicBlock x 2".
        """
        import torch

        group = 0
        for name, mod in self.root.named_modules():
            if not isinstance(mod, (torch.nn.Sequential, torch.nn.ModuleList)):
                continue
            runs: list[list[tuple[str, ...]]] = []
            last = None
            for child_name, child in mod.named_children():
                path = (*qualified_path(name), *qualified_path(child_name))
                if path not in self.imp.classes or not list(child.children()):
                    last = None  # a plain layer, or a block nothing was imported from
                    continue
                text = repr(child)
                if text == last:
                    runs[-1].append(path)
                else:
                    runs.append([path])
                last = text
            for run in runs:
                if len(run) > 1:
                    for i, path in enumerate(run):
                        self.imp.repeats[path] = (group, i, len(run))
                    group += 1

    def _check_modules(self, fx_graph: Any) -> None:
        """One error listing every torch.nn layer type without a mapping."""
        missing: dict[str, list[str]] = {}
        for node in fx_graph.nodes:
            if node.op == "call_module":
                cls = type(self.root.get_submodule(node.target))
                if module_key(cls) not in TORCH_IMPORT:
                    missing.setdefault(cls.__name__, []).append(node.target)
        if missing:
            parts = [f"{k} ({', '.join(repr(t) for t in v[:2])}"
                     f"{f' and {len(v) - 2} more' if len(v) > 2 else ''})"
                     for k, v in sorted(missing.items())]
            raise FrontendError(
                f"cannot import {type(self.root).__name__}: unsupported layer "
                f"type{'s' if len(parts) > 1 else ''} {'; '.join(parts)}",
                loc=_class_loc(type(self.root)))

    # ------------------------------------------------------------------ values

    def resolve(self, v: Any) -> Any:
        """fx arguments with nodes replaced by their values (IR ids stay ids)."""
        import torch.fx

        if isinstance(v, torch.fx.Node):
            return self.values[v]
        if isinstance(v, (list, tuple)):
            return type(v)(self.resolve(x) for x in v)
        if isinstance(v, dict):
            return {k: self.resolve(x) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(self.resolve(v.start), self.resolve(v.stop), self.resolve(v.step))
        return v

    def ir(self, node: Any, v: Any, what: str) -> int:
        import torch.fx

        val = self.values.get(v) if isinstance(v, torch.fx.Node) else v
        if isinstance(val, Layer):
            return val.id
        raise FrontendError(f"{what} '{node.name}' expects a feature map, got {describe(val)}",
                            loc=node.meta.get("cnnir_loc"))

    def arg(self, node: Any, i: int, name: str, default: Any = None) -> Any:
        if i < len(node.args):
            return self.resolve(node.args[i])
        return self.resolve(node.kwargs.get(name, default))

    def add(self, node: Any, op: O.Op, inputs: Sequence[int], hint: str,
            path: tuple[str, ...] | None = None, weights: dict[str, Any] | None = None,
            leaf: bool = False) -> Layer:
        if path is None:
            stack = node.meta.get("nn_module_stack") or {}
            path = qualified_path(next(reversed(stack))) if stack else ()
        what = f"{node.op} '{node.target if node.op == 'call_module' else node.name}'"
        return Layer(self.imp.add(op, inputs, path, hint, what, node.meta.get("cnnir_loc"),
                                   weights, leaf=leaf))

    def fail(self, node: Any, msg: str) -> FrontendError:
        t = node.target
        if isinstance(t, str):
            target = f"{'.' if node.op == 'call_method' else ''}{t}()"
        else:
            mod = (getattr(t, "__module__", None) or "").lstrip("_")
            mod = "torch" if mod.startswith("torch") and mod != "torch.nn.functional" else mod
            target = f"{mod + '.' if mod else ''}{getattr(t, '__name__', t)}()"
        return FrontendError(f"{target}: {msg}", loc=node.meta.get("cnnir_loc"))

    # ------------------------------------------------------------------ nodes

    def convert(self, node: Any) -> Any:
        if node.op == "call_module":
            mod = self.root.get_submodule(node.target)
            if isinstance(self.values.get(node.args[0]), ChannelsLast):
                try:  # ConvNeXt's LayerNorm / Linear / GELU between permutes
                    return channels_last_module(self, node, mod, self.values[node.args[0]])
                except CnnirError as exc:
                    raise FrontendError(f"{type(mod).__name__} '{node.target}': {exc.msg}",
                                        loc=node.meta.get("cnnir_loc")) from None
            if type(self.values.get(node.args[0])).__name__ == "_Seq":
                try:  # ECA's Conv1d / gate on the view(N, 1, C) of pooled channels
                    return seq_module(self, node, mod, self.values[node.args[0]])
                except CnnirError as exc:
                    raise FrontendError(f"{type(mod).__name__} '{node.target}': {exc.msg}",
                                        loc=node.meta.get("cnnir_loc")) from None
            x = self.ir(node, node.args[0], type(mod).__name__)
            try:
                rule = TORCH_IMPORT.lookup(module_key(type(mod)))  # checked by _check_modules
                op, weights, hint = rule(mod, self.imp.shape(x))
            except CnnirError as exc:
                raise FrontendError(f"{type(mod).__name__} '{node.target}': {exc.msg}",
                                    loc=node.meta.get("cnnir_loc")) from None
            return self.add(node, op, [x], hint, qualified_path(node.target), weights, leaf=True)
        args = [self.resolve(a) for a in node.args]
        kwargs = {k: self.resolve(v) for k, v in node.kwargs.items()}
        layers = [a for a in _flat(args) + _flat(list(kwargs.values()))
                  if isinstance(a, (Layer, Stacked, ChannelsLast, MaxPadded))]
        target = node.target
        if node.op == "call_function" and getattr(target, "__name__", "") in (
                "_assert", "_assert_is_none"):
            return None  # torch.fx's guards on the default arguments it specialised
        if not layers:  # arithmetic on sizes, tuple indexing: evaluate
            if any(isinstance(a, TensorAttr) for a in _flat(args) + _flat(list(kwargs.values()))):
                return self.fold(node, args, kwargs)
            if node.op == "call_function" and target in _CONST_FUNCS:
                return _const_eval(self, node, target, args, kwargs)
            if node.op == "call_method" and target in ("size", "dim"):
                raise self.fail(node, "called on a constant")
            raise self.fail(node, "has no IR op (it computes on constants, not on the input)")
        read = self.shape_read(node, args, kwargs)
        if read is not _NOT_A_READ:
            return read
        key = function_key(target) if node.op == "call_function" else f"Tensor.{target}"
        handler = TORCH_IMPORT.get(key)
        if handler is None:
            raise self.fail(node, "has no IR op; cnnir maps the calls listed in "
                            "cnnir.frontends.torch_import's docstring")
        try:
            return handler(self, node, args, kwargs)
        except CnnirError as exc:
            if isinstance(exc, FrontendError) and exc.loc is not None:
                raise
            raise self.fail(node, exc.msg) from None


    def shape_read(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A read of a feature map's size, folded to constants at the import's input size.

        ``x.shape``, ``x.size()``, ``x.size(d)``, ``x.dim()``, ``x.ndim``, ``len(x)``;
        the batch dimension is :data:`BATCH` (symbolic: a flatten or view keeps it as N).
        Anything else is ``_NOT_A_READ``.
        """
        target = node.target
        if not args:
            return _NOT_A_READ
        if type(args[0]) is Layer:
            full: tuple[int, ...] = (BATCH, *self.imp.shape(args[0].id))
        else:  # a pending view: the radix views and ECA's sequence have a size
            pending = pending_shape(self, args[0])
            if pending is None:
                return _NOT_A_READ
            full = pending
        if node.op == "call_method" and target == "size":
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            return tuple(full) if dim is None else full[dim]
        if node.op == "call_method" and target in ("dim", "ndimension"):
            return len(full)
        if node.op == "call_function" and target is len:
            return BATCH
        if node.op == "call_function" and target is getattr:
            attr = args[1]
            if attr == "shape":
                return tuple(full)
            if attr == "ndim":
                return len(full)
            raise self.fail(node, f"reads the tensor attribute {attr!r}; cnnir folds only "
                            f"the size reads (x.shape, x.size(), x.ndim) when tracing")
        return _NOT_A_READ

    def tensor(self, v: Any) -> Any:
        """The torch tensor of a :class:`TensorAttr` (a parameter, buffer or folded value)."""
        if v.value is None:
            path, _, leaf = v.target.rpartition(".")
            v.value = getattr(self.root.get_submodule(path) if path else self.root, leaf)
        return v.value

    def fold(self, node: Any, args: list[Any], kwargs: dict[str, Any]
             ) -> TensorAttr | tuple[int, ...] | int | float:
        """A call on parameters / buffers only (weight standardisation, ``gain * scale``):
        computed now with torch, the result a constant tensor for the calls that use it."""
        import torch

        try:
            out = self.evaluate(node, args, kwargs, {})
        except Exception as exc:
            raise self.fail(node, f"cannot evaluate on the module's tensors: {exc}") from None
        if isinstance(out, torch.Size):  # ``self.weight.shape``: plain sizes
            return tuple(out)
        if isinstance(out, (int, float, bool)):
            return out
        if not isinstance(out, torch.Tensor):
            raise self.fail(node, f"computes {type(out).__name__} from the module's tensors")
        params: dict[str, Any] = {}
        for v in _flat(args) + _flat(list(kwargs.values())):
            params.update(attr_params(self.root, v))
        return TensorAttr(f"{node.name} (computed)", out, (node, args, kwargs), params)

    def evaluate(self, node: Any, args: list[Any], kwargs: dict[str, Any],
                 subst: dict[str, Any]) -> Any:
        """``node``'s call on its arguments' tensors, each parameter named in ``subst``
        replaced by the tensor given there (computed tensors computed again)."""
        import torch

        def real(v: Any) -> Any:
            if isinstance(v, TensorAttr):
                if v.recipe is not None:
                    if not subst or not set(subst) & set(attr_params(self.root, v)):
                        return self.tensor(v)
                    node_, args_, kwargs_ = v.recipe
                    return self.evaluate(node_, args_, kwargs_, subst)
                return subst[v.target] if v.target in subst else self.tensor(v)
            if isinstance(v, (list, tuple)):
                return type(v)(real(x) for x in v)
            return v

        a, k = real(args), {key: real(v) for key, v in kwargs.items()}
        with torch.no_grad():
            if node.op == "call_method":
                return getattr(a[0], node.target)(*a[1:], **k)
            return node.target(*a, **k)

    def recompute(self, v: TensorAttr, subst: dict[str, Any]) -> Any:
        """The tensor ``v`` with the parameters in ``subst`` replaced (see :meth:`evaluate`)."""
        if v.recipe is None:
            return subst.get(v.target, self.tensor(v))
        node, args, kwargs = v.recipe
        return self.evaluate(node, args, kwargs, subst)


_NOT_A_READ = object()


def _flat(v: Any) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return [x for item in v for x in _flat(item)]
    if isinstance(v, dict):
        return [x for item in v.values() for x in _flat(item)]
    return [v]


_IN_PLACE = {operator.iadd, operator.isub, operator.imul, operator.itruediv}

_CONST_FUNCS = {operator.getitem, operator.add, operator.mul, operator.sub, operator.floordiv,
                operator.truediv, operator.neg, operator.eq, operator.ne, operator.not_,
                getattr, len}


def _const_eval(m: _Mapper, node: Any, fn: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if fn in (operator.add, operator.mul, operator.sub, operator.floordiv, operator.truediv,
              operator.neg) and BATCH in _flat(args):
        raise m.fail(node, "arithmetic on the batch size (x.size(0)) is not supported")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise m.fail(node, f"cannot evaluate: {exc}") from None


__all__ = ["from_torch", "torch_object"]
