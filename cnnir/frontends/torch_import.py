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
  ``F.interpolate(scale_factor=...)``, ``x.mean((2, 3), keepdim=True)``,
  ``F.dropout``, ``F.softmax(dim=1)``, ``F.local_response_norm``,
  ``x.clamp(0, 6)``.  ``x.size()``, ``x.shape`` and integer arithmetic on them
  are evaluated (the batch size stays symbolic).

Anything else is an error, never skipped: every unsupported ``torch.nn`` layer
type is listed in one message; an unsupported call names its source line.  A
model ``torch.fx`` cannot trace (control flow on tensor values...) gets the
tracer's message at the user's line where tracing stopped.

Names follow the module tree (:mod:`cnnir.frontends.importing`): the module
``layer1.0.conv1`` becomes the node ``layer1/0/conv1`` in scope
``("layer1", "0")`` whose :class:`~cnnir.ir.BlockInfo` kind is the module's
class name (``BasicBlock``); a functional ``+`` inside it is ``layer1/0/add``.
Identical consecutive blocks of a ``Sequential`` form a repeated group
(``BlockInfo.repeat``), so reports and diagrams say "BasicBlock x 3".
Each node's location is the line of ``forward`` that made it.

``torch`` is imported inside these functions only: importing this module is light.
"""

from __future__ import annotations

import inspect
import operator
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import ops as O
from ..errors import CnnirError, FrontendError
from ..extras import require
from ..ir import Graph, SourceLoc
from .importing import BATCH, Importer, first_user_frame, qualified_path, sanitize

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
        gm_graph = _trace(module)
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


def _trace(module: Any) -> Any:
    import torch.fx

    class Tracer(torch.fx.Tracer):
        """Records the user's ``forward`` line on every node."""

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
        return Tracer().trace(module, concrete_args=concrete or None)
    except Exception as exc:
        err = _user_error(exc, f"torch.fx cannot trace {type(module).__name__}",
                          _class_loc(type(module)))
        err.hint = ("torch.fx traces without values: control flow on tensor values, "
                    "data-dependent shapes and non-torch calls on tensors stop it")
        raise err from None


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
                self.values[node] = _Layer(self.imp.add(
                    O.Input(self.shape), [], (sanitize(str(node.target)),), "input",
                    f"input '{node.name}'", loc or _class_loc(type(self.root))))
            elif node.op == "get_attr":
                self.values[node] = _Tensor(node.target)
            elif node.op == "output":
                outputs = [self.ir(node, v, "output") for v in _flat(node.args[0])]
            else:
                try:
                    self.values[node] = self.convert(node)
                except CnnirError as exc:
                    if exc.loc is None:
                        exc.loc = loc
                    raise
        if not outputs:
            raise FrontendError(f"{self.imp.name} returns no tensor")
        for n in self.imp.nodes:  # block kinds and locations from the module classes
            for k in range(1, len(n.path) + 1):
                self._record_scope(n.path[:k])
        self._record_repeats()
        root_loc = _class_loc(type(self.root))
        return self.imp.build(outputs, source=root_loc.file if root_loc else None)

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
                if cls not in _MODULES:
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
        if isinstance(val, _Layer):
            return val.id
        raise FrontendError(f"{what} '{node.name}' expects a feature map, got {_describe(val)}",
                            loc=node.meta.get("cnnir_loc"))

    def arg(self, node: Any, i: int, name: str, default: Any = None) -> Any:
        if i < len(node.args):
            return self.resolve(node.args[i])
        return self.resolve(node.kwargs.get(name, default))

    def add(self, node: Any, op: O.Op, inputs: Sequence[int], hint: str,
            path: tuple[str, ...] | None = None, weights: dict[str, Any] | None = None,
            leaf: bool = False) -> _Layer:
        if path is None:
            stack = node.meta.get("nn_module_stack") or {}
            path = qualified_path(next(reversed(stack))) if stack else ()
        what = f"{node.op} '{node.target if node.op == 'call_module' else node.name}'"
        return _Layer(self.imp.add(op, inputs, path, hint, what, node.meta.get("cnnir_loc"),
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
            x = self.ir(node, node.args[0], type(mod).__name__)
            try:
                op, weights, hint = _MODULES[type(mod)](mod, self.imp.shape(x))
            except CnnirError as exc:
                raise FrontendError(f"{type(mod).__name__} '{node.target}': {exc.msg}",
                                    loc=node.meta.get("cnnir_loc")) from None
            return self.add(node, op, [x], hint, qualified_path(node.target), weights, leaf=True)
        args = [self.resolve(a) for a in node.args]
        kwargs = {k: self.resolve(v) for k, v in node.kwargs.items()}
        layers = [a for a in _flat(args) + _flat(list(kwargs.values())) if isinstance(a, _Layer)]
        target = node.target
        if node.op == "call_function" and getattr(target, "__name__", "") in (
                "_assert", "_assert_is_none"):
            return None  # torch.fx's guards on the default arguments it specialised
        if not layers:  # arithmetic on sizes, tuple indexing: evaluate
            if node.op == "call_function" and target in _CONST_FUNCS:
                return _const_eval(self, node, target, args, kwargs)
            if node.op == "call_method" and target in ("size", "dim"):
                raise self.fail(node, "called on a constant")
            raise self.fail(node, "has no IR op (it computes on constants, not on the input)")
        key = target if node.op == "call_function" else f"Tensor.{target}"
        if node.op == "call_method" and target in ("size", "dim"):
            shape = self.imp.shape(args[0].id)
            full = (BATCH, *shape)
            if target == "dim":
                return len(full)
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            return tuple(full) if dim is None else full[dim]
        if node.op == "call_function" and target is getattr and args[1] == "shape":
            return (BATCH, *self.imp.shape(args[0].id))
        handler = _FUNCS.get(key)
        if handler is None:
            raise self.fail(node, "has no IR op; cnnir maps the calls listed in "
                            "cnnir.frontends.torch_import's docstring")
        try:
            return handler(self, node, args, kwargs)
        except CnnirError as exc:
            if isinstance(exc, FrontendError) and exc.loc is not None:
                raise
            raise self.fail(node, exc.msg) from None


class _Layer:
    """An fx value that is the output of an IR layer."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i


class _Tensor:
    """A parameter or buffer read with ``get_attr`` (no IR op consumes it)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"the tensor attribute '{self.target}'"


def _flat(v: Any) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return [x for item in v for x in _flat(item)]
    if isinstance(v, dict):
        return [x for item in v.values() for x in _flat(item)]
    return [v]


def _describe(v: Any) -> str:
    if isinstance(v, _Tensor):
        return repr(v)
    return f"the constant {v!r}"


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


# --------------------------------------------------------------------------- nn modules


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pads(v: Any) -> tuple[int, int, int, int]:
    """PyTorch's symmetric ``padding`` as the IR's ``(top, left, bottom, right)``."""
    h, w = _pair(v)
    return (h, w, h, w)


def _m_conv(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    if mod.padding_mode != "zeros":
        raise CnnirError(f"padding_mode={mod.padding_mode!r} has no IR op (zeros only)")
    padding: Any = mod.padding
    if padding == "same":
        padding = O.same_padding(_pair(mod.kernel_size), _pair(mod.dilation))
    elif padding == "valid":
        padding = 0
    else:
        padding = _pair(padding)
    op = O.Conv2d(mod.out_channels, _pair(mod.kernel_size), _pair(mod.stride), padding,
                  _pair(mod.dilation), mod.groups, mod.bias is not None)
    return op, _weights(mod), "conv"


def _m_conv_t(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    if mod.padding_mode != "zeros":
        raise CnnirError(f"padding_mode={mod.padding_mode!r} has no IR op (zeros only)")
    op = O.ConvTranspose2d(mod.out_channels, _pair(mod.kernel_size), _pair(mod.stride),
                           _pair(mod.padding), _pair(mod.output_padding), _pair(mod.dilation),
                           mod.groups, mod.bias is not None)
    return op, _weights(mod), "upconv"


def _weights(mod: Any) -> dict[str, Any]:
    out = {"weight": _np(mod.weight)}
    if getattr(mod, "bias", None) is not None:
        out["bias"] = _np(mod.bias)
    return out


def _m_bn(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    if not mod.affine or not mod.track_running_stats:
        raise CnnirError("BatchNorm2d without affine parameters or running statistics has "
                         "no IR op")
    momentum = 0.1 if mod.momentum is None else float(mod.momentum)
    arrays = {"weight": _np(mod.weight), "bias": _np(mod.bias),
              "running_mean": _np(mod.running_mean), "running_var": _np(mod.running_var)}
    return O.BatchNorm2d(float(mod.eps), momentum), arrays, "bn"


def _m_linear(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    return O.Linear(mod.out_features, mod.bias is not None), _weights(mod), "fc"


def _m_pool(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any] | None, str]:
    import torch

    stride = mod.stride if mod.stride is not None else mod.kernel_size
    if isinstance(mod, torch.nn.MaxPool2d):
        if _pair(mod.dilation) != (1, 1) or mod.return_indices:
            raise CnnirError("dilation and return_indices have no IR op")
        return O.MaxPool2d(_pair(mod.kernel_size), _pair(stride), _pads(mod.padding),
                           bool(mod.ceil_mode)), None, "maxpool"
    if mod.divisor_override is not None:
        raise CnnirError("divisor_override has no IR op")
    return O.AvgPool2d(_pair(mod.kernel_size), _pair(stride), _pads(mod.padding),
                       bool(mod.ceil_mode), bool(mod.count_include_pad)), None, "avgpool"


def _adaptive(size: Any) -> O.Op:
    if size is None or (isinstance(size, (tuple, list)) and None in size):
        raise CnnirError(f"output_size {size!r} with None has no IR op")
    out = _pair(size)
    return O.GlobalAvgPool() if out == (1, 1) else O.AdaptiveAvgPool2d(out)


def _m_adaptive(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    op = _adaptive(mod.output_size)
    return op, None, "gap" if isinstance(op, O.GlobalAvgPool) else "adaptpool"


def _upsample(shape: Any, size: Any, scale: Any, mode: str, align: Any) -> O.Op:
    if mode not in ("nearest", "bilinear"):
        raise CnnirError(f"mode {mode!r} has no IR op (nearest or bilinear)")
    if scale is None:
        if size is None:
            raise CnnirError("needs size or scale_factor")
        sizes = _pair(size)
        if sizes[0] % shape[1] or sizes[1] % shape[2]:
            raise CnnirError(f"size {sizes} is no integer multiple of {shape[1]}x{shape[2]}")
        factors = (sizes[0] // shape[1], sizes[1] // shape[2])
    else:
        sc = scale if isinstance(scale, (tuple, list)) else (scale, scale)
        if any(float(s) != int(s) or s < 1 for s in sc):
            raise CnnirError(f"scale_factor {scale!r}: cnnir upsamples by integer factors only")
        factors = (int(sc[0]), int(sc[1]))
    return O.Upsample(factors, mode, bool(align) if mode == "bilinear" else False)


def _m_upsample(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    return _upsample(shape, mod.size, mod.scale_factor, mod.mode, mod.align_corners), None, \
        "upsample"


def _m_softmax(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    _softmax_dim(mod.dim, shape)
    return O.Softmax(), None, "softmax"


def _softmax_dim(dim: Any, shape: Any) -> None:
    rank = len(shape) + 1
    if dim is None or int(dim) % rank != 1:
        raise CnnirError(f"softmax over dim={dim} of an N x {shape} tensor; cnnir's softmax "
                         f"runs over the channel / feature axis (dim=1)")


def _m_flatten(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    if mod.start_dim != 1 or mod.end_dim != -1:
        raise CnnirError(f"Flatten({mod.start_dim}, {mod.end_dim}) has no IR op (only "
                         f"start_dim=1, end_dim=-1)")
    return O.Flatten(), None, "flatten"


def _m_hardtanh(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    return _hardtanh(mod.min_val, mod.max_val), None, "relu6"


def _hardtanh(lo: float, hi: float) -> O.Op:
    if (lo, hi) == (0, 6):
        return O.ReLU6()
    raise CnnirError(f"hardtanh to [{lo:g}, {hi:g}] has no IR op (only [0, 6], relu6)")


def _plain(op: Callable[[Any], O.Op], hint: str) -> Callable[..., tuple[O.Op, None, str]]:
    return lambda mod, shape: (op(mod), None, hint)


def _module_table() -> dict[type, Callable[..., Any]]:
    import torch.nn as nn

    return {
        nn.Conv2d: _m_conv, nn.ConvTranspose2d: _m_conv_t, nn.BatchNorm2d: _m_bn,
        nn.Linear: _m_linear, nn.MaxPool2d: _m_pool, nn.AvgPool2d: _m_pool,
        nn.AdaptiveAvgPool2d: _m_adaptive, nn.Upsample: _m_upsample, nn.Softmax: _m_softmax,
        nn.Flatten: _m_flatten, nn.Hardtanh: _m_hardtanh,
        nn.ReLU: _plain(lambda m: O.ReLU(), "relu"),
        nn.ReLU6: _plain(lambda m: O.ReLU6(), "relu6"),
        nn.LeakyReLU: _plain(lambda m: O.LeakyReLU(float(m.negative_slope)), "lrelu"),
        nn.Sigmoid: _plain(lambda m: O.Sigmoid(), "sigmoid"),
        nn.Tanh: _plain(lambda m: O.Tanh(), "tanh"),
        nn.Hardswish: _plain(lambda m: O.HardSwish(), "hswish"),
        nn.Hardsigmoid: _plain(lambda m: O.HardSigmoid(), "hsigmoid"),
        nn.SiLU: _plain(lambda m: O.SiLU(), "silu"),
        nn.LocalResponseNorm: _plain(lambda m: O.LocalResponseNorm(
            int(m.size), float(m.alpha), float(m.beta), float(m.k)), "lrn"),
        nn.Dropout: _plain(lambda m: O.Dropout(float(m.p)), "dropout"),
        nn.Dropout2d: _plain(lambda m: O.Dropout(float(m.p)), "dropout"),
        nn.Identity: _plain(lambda m: O.Identity(), "identity"),
    }


class _LazyTable(dict):  # type: ignore[type-arg]
    """A dict filled on first use (it needs torch, imported only when importing a module)."""

    def __init__(self, fill: Callable[[], dict[Any, Any]]) -> None:
        super().__init__()
        self._fill = fill

    def _load(self) -> None:
        if self._fill is not None:
            self.update(self._fill())
            self._fill = None  # type: ignore[assignment]

    def __contains__(self, key: object) -> bool:
        self._load()
        return super().__contains__(key)

    def __getitem__(self, key: Any) -> Any:
        self._load()
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)


_MODULES: dict[type, Callable[..., Any]] = _LazyTable(_module_table)


# --------------------------------------------------------------------------- calls


def _unary(make: Callable[..., O.Op], hint: str) -> Callable[..., _Layer]:
    def handler(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
        x = args[0] if args else kwargs.get("input")
        return m.add(node, make(node, args, kwargs), [m.ir(node, x, hint)], hint)
    return handler


def _opt(node: Any, args: list[Any], kwargs: dict[str, Any], i: int, name: str,
         default: Any = None) -> Any:
    return args[i] if i < len(args) else kwargs.get(name, default)


def _binary(op_cls: type[O.Op], hint: str) -> Callable[..., _Layer]:
    def handler(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if _opt(node, args, kwargs, 2, "alpha", 1) != 1:
            raise CnnirError("alpha != 1 has no IR op")
        if not isinstance(a, _Layer) or not isinstance(b, _Layer):
            other = b if isinstance(a, _Layer) else a
            raise CnnirError(f"{hint} of a feature map and {_describe(other)} has no IR op "
                             f"(only of two feature maps)")
        return m.add(node, op_cls(), [a.id, b.id], hint)
    return handler


def _cat(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    xs = args[0] if args else kwargs["tensors"]
    dim = _opt(node, args, kwargs, 1, "dim", 0)
    ids = [m.ir(node, x, "cat") if isinstance(x, _Layer) else -1 for x in xs]
    if -1 in ids:
        raise CnnirError("concatenates a constant; cnnir concatenates feature maps only")
    rank = len(m.imp.shape(ids[0])) + 1
    if int(dim) % rank != 1:
        raise CnnirError(f"concatenates along dim={dim}; cnnir concatenates channels (dim=1)")
    if len(ids) == 1:
        return _Layer(ids[0])
    return m.add(node, O.Concat(), ids, "concat")


def _flatten(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    start = _opt(node, args, kwargs, 1, "start_dim", 0)
    end = _opt(node, args, kwargs, 2, "end_dim", -1)
    if start != 1 or end != -1:
        raise CnnirError(f"flatten(start_dim={start}, end_dim={end}) has no IR op; use "
                         f"flatten(x, 1)")
    return m.add(node, O.Flatten(), [m.ir(node, args[0], "flatten")], "flatten")


def _view(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    x = m.ir(node, args[0], "view")
    dims = args[1:] if len(args) > 1 else [kwargs.get("shape", kwargs.get("size"))]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = list(dims[0])
    if any(not isinstance(d, int) for d in dims):
        raise CnnirError(f"reshape to {dims!r}: the sizes must be known when tracing")
    s = m.imp.shape(x)
    full = [BATCH, *s]
    resolved = [full[i] if d == BATCH else d for i, d in enumerate(dims)]
    readable = ["N" if d == BATCH else d for d in dims]
    n = s.numel
    if len(dims) == 2 and ((dims[0] == BATCH and dims[1] in (-1, n)) or
                           (dims[0] == -1 and dims[1] == n)):
        return m.add(node, O.Flatten(), [x], "flatten") if len(s) > 1 else _Layer(x)
    if resolved[0] in (BATCH, -1) and resolved[1:] == list(s):
        return _Layer(x)
    raise CnnirError(f"reshape of N x {s} to {readable}; cnnir maps a reshape only as a "
                     f"flatten to (N, {n})")


def _mean(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    x = m.ir(node, args[0], "mean")
    dims = _opt(node, args, kwargs, 1, "dim")
    keep = _opt(node, args, kwargs, 2, "keepdim", False)
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if sorted(d % 4 for d in dims) != [2, 3] or len(m.imp.shape(x)) != 3:
        raise CnnirError(f"mean over dims {dims}; cnnir maps a mean over H and W (2, 3) only")
    g = m.add(node, O.GlobalAvgPool(), [x], "gap")
    return g if keep else m.add(node, O.Flatten(), [g.id], "flatten")


def _pool_fn(kind: str) -> Callable[..., _Layer]:
    def handler(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
        x = m.ir(node, args[0], kind)
        k = _opt(node, args, kwargs, 1, "kernel_size")
        s = _opt(node, args, kwargs, 2, "stride") or k
        p = _opt(node, args, kwargs, 3, "padding", 0)
        if kind == "maxpool":
            if _pair(_opt(node, args, kwargs, 4, "dilation", 1)) != (1, 1) or \
                    _opt(node, args, kwargs, 6, "return_indices", False):
                raise CnnirError("dilation and return_indices have no IR op")
            ceil = _opt(node, args, kwargs, 5, "ceil_mode", False)
            return m.add(node, O.MaxPool2d(_pair(k), _pair(s), _pads(p), bool(ceil)), [x], kind)
        ceil = _opt(node, args, kwargs, 4, "ceil_mode", False)
        include = _opt(node, args, kwargs, 5, "count_include_pad", True)
        if _opt(node, args, kwargs, 6, "divisor_override") is not None:
            raise CnnirError("divisor_override has no IR op")
        return m.add(node, O.AvgPool2d(_pair(k), _pair(s), _pads(p), bool(ceil), bool(include)),
                     [x], kind)
    return handler


def _adaptive_fn(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    op = _adaptive(_opt(node, args, kwargs, 1, "output_size"))
    hint = "gap" if isinstance(op, O.GlobalAvgPool) else "adaptpool"
    return m.add(node, op, [m.ir(node, args[0], hint)], hint)


def _interpolate(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    x = m.ir(node, args[0], "interpolate")
    op = _upsample(m.imp.shape(x), _opt(node, args, kwargs, 1, "size"),
                   _opt(node, args, kwargs, 2, "scale_factor"),
                   _opt(node, args, kwargs, 3, "mode", "nearest"),
                   _opt(node, args, kwargs, 4, "align_corners"))
    return m.add(node, op, [x], "upsample")


def _softmax_fn(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    x = m.ir(node, args[0], "softmax")
    _softmax_dim(_opt(node, args, kwargs, 1, "dim"), m.imp.shape(x))
    return m.add(node, O.Softmax(), [x], "softmax")


def _dropout_fn(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    p = _opt(node, args, kwargs, 1, "p", 0.5)
    return m.add(node, O.Dropout(float(p)), [m.ir(node, args[0], "dropout")], "dropout")


def _clamp(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    lo = _opt(node, args, kwargs, 1, "min")
    hi = _opt(node, args, kwargs, 2, "max")
    x = m.ir(node, args[0], "clamp")
    if lo == 0 and hi is None:
        return m.add(node, O.ReLU(), [x], "relu")
    return m.add(node, _hardtanh(lo, hi), [x], "relu6")


def _contiguous(m: _Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Layer:
    return _Layer(m.ir(node, args[0], str(node.target)))


def _func_table() -> dict[Any, Callable[..., Any]]:
    import torch
    import torch.nn.functional as F

    act = {
        "relu": (lambda n, a, k: O.ReLU(), "relu"),
        "relu6": (lambda n, a, k: O.ReLU6(), "relu6"),
        "sigmoid": (lambda n, a, k: O.Sigmoid(), "sigmoid"),
        "tanh": (lambda n, a, k: O.Tanh(), "tanh"),
        "hardswish": (lambda n, a, k: O.HardSwish(), "hswish"),
        "hardsigmoid": (lambda n, a, k: O.HardSigmoid(), "hsigmoid"),
        "silu": (lambda n, a, k: O.SiLU(), "silu"),
        "leaky_relu": (lambda n, a, k: O.LeakyReLU(float(_opt(n, a, k, 1, "negative_slope",
                                                               0.01))), "lrelu"),
    }
    table: dict[Any, Callable[..., Any]] = {}
    for name, (make, hint) in act.items():
        h = _unary(make, hint)
        for obj in (getattr(F, name, None), getattr(torch, name, None),
                    getattr(torch, name + "_", None), getattr(F, name + "_", None)):
            if obj is not None:
                table[obj] = h
        table[f"Tensor.{name}"] = h
        table[f"Tensor.{name}_"] = h
    table[F.hardtanh] = lambda m, n, a, k: m.add(n, _hardtanh(
        _opt(n, a, k, 1, "min_val", -1.0), _opt(n, a, k, 2, "max_val", 1.0)),
        [m.ir(n, a[0], "hardtanh")], "relu6")
    add, mul = _binary(O.Add, "add"), _binary(O.Mul, "mul")
    for obj in (operator.add, operator.iadd, torch.add, "Tensor.add", "Tensor.add_"):
        table[obj] = add
    for obj in (operator.mul, operator.imul, torch.mul, "Tensor.mul", "Tensor.mul_"):
        table[obj] = mul
    for obj in (torch.cat, torch.concat, getattr(torch, "concatenate", torch.cat)):
        table[obj] = _cat
    for obj in (torch.flatten, "Tensor.flatten"):
        table[obj] = _flatten
    for obj in ("Tensor.view", "Tensor.reshape", torch.reshape):
        table[obj] = _view
    for obj in (torch.mean, "Tensor.mean"):
        table[obj] = _mean
    for obj in (F.softmax, torch.softmax, "Tensor.softmax"):
        table[obj] = _softmax_fn
    for obj in (F.dropout, F.dropout2d):
        table[obj] = _dropout_fn
    for obj in ("Tensor.clamp", torch.clamp, "Tensor.clip", torch.clip):
        table[obj] = _clamp
    table[F.max_pool2d] = _pool_fn("maxpool")
    table[torch.max_pool2d] = _pool_fn("maxpool")
    table[F.avg_pool2d] = _pool_fn("avgpool")
    table[F.adaptive_avg_pool2d] = _adaptive_fn
    table[F.interpolate] = _interpolate
    table[F.local_response_norm] = _unary(lambda n, a, k: O.LocalResponseNorm(
        int(_opt(n, a, k, 1, "size")), float(_opt(n, a, k, 2, "alpha", 1e-4)),
        float(_opt(n, a, k, 3, "beta", 0.75)), float(_opt(n, a, k, 4, "k", 1.0))), "lrn")
    table["Tensor.contiguous"] = _contiguous
    return table


_FUNCS: dict[Any, Callable[..., Any]] = _LazyTable(_func_table)


__all__ = ["from_torch", "torch_object"]
