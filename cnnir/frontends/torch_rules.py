"""torch.fx import rules: the IR layer(s) each ``torch.nn`` layer and each call becomes.

:data:`TORCH_IMPORT` (``RuleTable("torch-import", reads=True)``) is keyed by the
torch name, each rule naming with ``produces=`` the cnnir op classes it can yield:

* ``"nn.<Class>"``: a ``torch.nn`` layer (a leaf of the trace), exactly that class
  (a subclass with its own ``forward`` is traced through).  The rule is
  ``rule(module, input_shape) -> (op, weights or None, name hint)``.
* ``"F.<name>"``, ``"torch.<name>"``, ``"operator.<name>"``: a function call;
  ``"Tensor.<name>"``: a method call.  The rule is ``rule(mapper, node, args,
  kwargs) -> value`` (mostly a :class:`Layer`), with fx nodes in ``args`` already
  replaced by their values; it adds IR layers through the :class:`Mapper`.
  A name this torch version lacks is simply never called.

A rule that cannot map the call's arguments raises a :class:`~cnnir.errors.CnnirError`
with the reason; the driver (:mod:`cnnir.frontends.torch_import`) adds the layer or
call and its source line.  Torch is imported only inside functions: importing this
module is light.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .. import ops as O
from ..errors import CnnirError
from ..rules import RuleTable
from .importing import BATCH

# --------------------------------------------------------------------------- values


class Layer:
    """An fx value that is the output of an IR layer."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i


class TensorAttr:
    """A parameter or buffer read with ``get_attr``, or a tensor computed from them
    (``value``, filled when a rule such as ``F.batch_norm`` reads it)."""

    def __init__(self, target: str, value: Any = None) -> None:
        self.target = target
        self.value = value

    def __repr__(self) -> str:
        return f"the tensor attribute '{self.target}'"


def describe(v: Any) -> str:
    """A value that is not a feature map, as an error message names it."""
    if isinstance(v, TensorAttr):
        return repr(v)
    return f"the constant {v!r}"


class Mapper(Protocol):
    """What a call rule uses of the driver (:class:`cnnir.frontends.torch_import._Mapper`)."""

    imp: Any  # the Importer: ``imp.shape(id)`` is a layer's output shape

    def ir(self, node: Any, v: Any, what: str) -> int: ...

    def add(self, node: Any, op: O.Op, inputs: Sequence[int], hint: str,
            path: tuple[str, ...] | None = None, weights: dict[str, Any] | None = None,
            leaf: bool = False) -> Layer: ...

    def tensor(self, v: TensorAttr) -> Any: ...


def opt(node: Any, args: list[Any], kwargs: dict[str, Any], i: int, name: str,
        default: Any = None) -> Any:
    """Argument ``i`` (by position) or ``name`` (by keyword) of a call."""
    return args[i] if i < len(args) else kwargs.get(name, default)


# --------------------------------------------------------------------------- keys

TORCH_IMPORT: RuleTable[Callable[..., Any]] = RuleTable("torch-import", reads=True)
TORCH_IMPORT.not_produced(O.FusedConv2d, "a traced module has separate conv, norm and "
                                         "activation layers; fuse-conv-bn-relu makes it")
TORCH_IMPORT.not_produced(O.Input, "made by the driver from forward's tensor argument, "
                                   "not by a rule")

def module_key(cls: type) -> str | None:
    """``"nn.Conv2d"`` for ``torch.nn.Conv2d`` itself; None for any other class."""
    import torch.nn

    return f"nn.{cls.__name__}" if getattr(torch.nn, cls.__name__, None) is cls else None


_FUNCTION_KEYS: dict[Any, str] = {}


def function_key(target: Any) -> str | None:
    """The key of a called function object (``F.relu`` -> ``"F.relu"``), or None."""
    if not _FUNCTION_KEYS:
        import torch
        import torch.nn.functional as F

        spaces = {"F": F, "torch": torch, "operator": operator}
        for k in TORCH_IMPORT.keys():
            space, _, name = str(k).partition(".")
            obj = getattr(spaces[space], name, None) if space in spaces else None
            if obj is not None:
                _FUNCTION_KEYS.setdefault(obj, str(k))
    try:
        return _FUNCTION_KEYS.get(target)
    except TypeError:  # an unhashable target
        return None


# --------------------------------------------------------------------------- nn layers


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pads(v: Any) -> tuple[int, int, int, int]:
    """PyTorch's symmetric ``padding`` as the IR's ``(top, left, bottom, right)``."""
    h, w = _pair(v)
    return (h, w, h, w)


def _weights(mod: Any) -> dict[str, Any]:
    out = {"weight": _np(mod.weight)}
    if getattr(mod, "bias", None) is not None:
        out["bias"] = _np(mod.bias)
    return out


@TORCH_IMPORT.rule("nn.Conv2d", produces=[O.Conv2d])
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


@TORCH_IMPORT.rule("nn.ConvTranspose2d", produces=[O.ConvTranspose2d])
def _m_conv_t(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    if mod.padding_mode != "zeros":
        raise CnnirError(f"padding_mode={mod.padding_mode!r} has no IR op (zeros only)")
    op = O.ConvTranspose2d(mod.out_channels, _pair(mod.kernel_size), _pair(mod.stride),
                           _pair(mod.padding), _pair(mod.output_padding), _pair(mod.dilation),
                           mod.groups, mod.bias is not None)
    return op, _weights(mod), "upconv"


@TORCH_IMPORT.rule("nn.BatchNorm2d", produces=[O.BatchNorm2d])
def _m_bn(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    if not mod.affine or not mod.track_running_stats:
        raise CnnirError("BatchNorm2d without affine parameters or running statistics has "
                         "no IR op")
    momentum = 0.1 if mod.momentum is None else float(mod.momentum)
    arrays = {"weight": _np(mod.weight), "bias": _np(mod.bias),
              "running_mean": _np(mod.running_mean), "running_var": _np(mod.running_var)}
    return O.BatchNorm2d(float(mod.eps), momentum), arrays, "bn"


@TORCH_IMPORT.rule("nn.Linear", produces=[O.Linear])
def _m_linear(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    return O.Linear(mod.out_features, mod.bias is not None), _weights(mod), "fc"


@TORCH_IMPORT.rule("nn.MaxPool2d", produces=[O.MaxPool2d])
def _m_maxpool(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    stride = mod.stride if mod.stride is not None else mod.kernel_size
    if _pair(mod.dilation) != (1, 1) or mod.return_indices:
        raise CnnirError("dilation and return_indices have no IR op")
    return O.MaxPool2d(_pair(mod.kernel_size), _pair(stride), _pads(mod.padding),
                       bool(mod.ceil_mode)), None, "maxpool"


@TORCH_IMPORT.rule("nn.AvgPool2d", produces=[O.AvgPool2d])
def _m_avgpool(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    stride = mod.stride if mod.stride is not None else mod.kernel_size
    if mod.divisor_override is not None:
        raise CnnirError("divisor_override has no IR op")
    return O.AvgPool2d(_pair(mod.kernel_size), _pair(stride), _pads(mod.padding),
                       bool(mod.ceil_mode), bool(mod.count_include_pad)), None, "avgpool"


def _adaptive(size: Any) -> O.Op:
    if size is None or (isinstance(size, (tuple, list)) and None in size):
        raise CnnirError(f"output_size {size!r} with None has no IR op")
    out = _pair(size)
    return O.GlobalAvgPool() if out == (1, 1) else O.AdaptiveAvgPool2d(out)


@TORCH_IMPORT.rule("nn.AdaptiveAvgPool2d", produces=[O.GlobalAvgPool, O.AdaptiveAvgPool2d])
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
        if sizes[0] % shape[1] or sizes[1] % shape[2]:  # resized to exactly that size
            return O.Upsample((1, 1), mode, bool(align) if mode == "bilinear" else False,
                              size=sizes)
        factors = (sizes[0] // shape[1], sizes[1] // shape[2])
    else:
        sc = scale if isinstance(scale, (tuple, list)) else (scale, scale)
        if any(float(s) != int(s) or s < 1 for s in sc):
            raise CnnirError(f"scale_factor {scale!r}: cnnir upsamples by integer factors only")
        factors = (int(sc[0]), int(sc[1]))
    return O.Upsample(factors, mode, bool(align) if mode == "bilinear" else False)


@TORCH_IMPORT.rule("nn.Upsample", produces=[O.Upsample])
def _m_upsample(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    return _upsample(shape, mod.size, mod.scale_factor, mod.mode, mod.align_corners), None, \
        "upsample"


def _softmax_dim(dim: Any, shape: Any) -> None:
    rank = len(shape) + 1
    if dim is None or int(dim) % rank != 1:
        raise CnnirError(f"softmax over dim={dim} of an N x {shape} tensor; cnnir's softmax "
                         f"runs over the channel / feature axis (dim=1)")


@TORCH_IMPORT.rule("nn.Softmax", produces=[O.Softmax])
def _m_softmax(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    _softmax_dim(mod.dim, shape)
    return O.Softmax(), None, "softmax"


@TORCH_IMPORT.rule("nn.Flatten", produces=[O.Flatten])
def _m_flatten(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    if mod.start_dim != 1 or mod.end_dim != -1:
        raise CnnirError(f"Flatten({mod.start_dim}, {mod.end_dim}) has no IR op (only "
                         f"start_dim=1, end_dim=-1)")
    return O.Flatten(), None, "flatten"


def _hardtanh(lo: float, hi: float) -> O.Op:
    if (lo, hi) == (0, 6):
        return O.ReLU6()
    raise CnnirError(f"hardtanh to [{lo:g}, {hi:g}] has no IR op (only [0, 6], relu6)")


@TORCH_IMPORT.rule("nn.Hardtanh", produces=[O.ReLU6])
def _m_hardtanh(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    return _hardtanh(mod.min_val, mod.max_val), None, "relu6"


def _layer(name: str, op_type: type[O.Op], make: Callable[[Any], O.Op], hint: str) -> None:
    """Register ``nn.<name>``: a weightless layer whose op is ``make(module)``."""
    TORCH_IMPORT.add(f"nn.{name}", lambda mod, shape: (make(mod), None, hint),
                     produces=[op_type])


_layer("ReLU", O.ReLU, lambda m: O.ReLU(), "relu")
_layer("ReLU6", O.ReLU6, lambda m: O.ReLU6(), "relu6")
_layer("LeakyReLU", O.LeakyReLU, lambda m: O.LeakyReLU(float(m.negative_slope)), "lrelu")
_layer("Sigmoid", O.Sigmoid, lambda m: O.Sigmoid(), "sigmoid")
_layer("Tanh", O.Tanh, lambda m: O.Tanh(), "tanh")
_layer("Hardswish", O.HardSwish, lambda m: O.HardSwish(), "hswish")
_layer("Hardsigmoid", O.HardSigmoid, lambda m: O.HardSigmoid(), "hsigmoid")
_layer("SiLU", O.SiLU, lambda m: O.SiLU(), "silu")
_layer("LocalResponseNorm", O.LocalResponseNorm, lambda m: O.LocalResponseNorm(
    int(m.size), float(m.alpha), float(m.beta), float(m.k)), "lrn")
_layer("Dropout", O.Dropout, lambda m: O.Dropout(float(m.p)), "dropout")
_layer("Dropout2d", O.Dropout, lambda m: O.Dropout(float(m.p)), "dropout")
_layer("Identity", O.Identity, lambda m: O.Identity(), "identity")


# --------------------------------------------------------------------------- calls

Call = Callable[[Mapper, Any, list[Any], dict[str, Any]], Any]


def _unary(op_type: type[O.Op], make: Callable[..., O.Op], hint: str, *keys: str) -> None:
    """Register ``keys``: a call on one feature map whose op is ``make(node, args, kwargs)``."""

    def rule(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
        x = args[0] if args else kwargs.get("input")
        return m.add(node, make(node, args, kwargs), [m.ir(node, x, hint)], hint)

    TORCH_IMPORT.rule(*keys, produces=[op_type])(rule)


def _activation(op_type: type[O.Op], name: str, hint: str,
                make: Callable[..., O.Op] | None = None) -> None:
    """``F.<name>``, ``torch.<name>``, their in-place ``_`` forms and the tensor methods."""
    _unary(op_type, make or (lambda n, a, k: op_type()), hint,
           f"F.{name}", f"torch.{name}", f"torch.{name}_", f"F.{name}_",
           f"Tensor.{name}", f"Tensor.{name}_")


_activation(O.ReLU, "relu", "relu")
_activation(O.ReLU6, "relu6", "relu6")
_activation(O.Sigmoid, "sigmoid", "sigmoid")
_activation(O.Tanh, "tanh", "tanh")
_activation(O.HardSwish, "hardswish", "hswish")
_activation(O.HardSigmoid, "hardsigmoid", "hsigmoid")
_activation(O.SiLU, "silu", "silu")
_activation(O.LeakyReLU, "leaky_relu", "lrelu", lambda n, a, k: O.LeakyReLU(
    float(opt(n, a, k, 1, "negative_slope", 0.01))))
_unary(O.LocalResponseNorm, lambda n, a, k: O.LocalResponseNorm(
    int(opt(n, a, k, 1, "size")), float(opt(n, a, k, 2, "alpha", 1e-4)),
    float(opt(n, a, k, 3, "beta", 0.75)), float(opt(n, a, k, 4, "k", 1.0))), "lrn",
    "F.local_response_norm")


@TORCH_IMPORT.rule("F.hardtanh", produces=[O.ReLU6])
def _hardtanh_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    op = _hardtanh(opt(node, args, kwargs, 1, "min_val", -1.0),
                   opt(node, args, kwargs, 2, "max_val", 1.0))
    return m.add(node, op, [m.ir(node, args[0], "hardtanh")], "relu6")


def _binary(op_type: type[O.Op], hint: str, *keys: str) -> None:
    """Register ``keys``: an elementwise op of two feature maps (``alpha`` 1 only)."""

    def rule(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if opt(node, args, kwargs, 2, "alpha", 1) != 1:
            raise CnnirError("alpha != 1 has no IR op")
        if not isinstance(a, Layer) or not isinstance(b, Layer):
            other = b if isinstance(a, Layer) else a
            raise CnnirError(f"{hint} of a feature map and {describe(other)} has no IR op "
                             f"(only of two feature maps)")
        return m.add(node, op_type(), [a.id, b.id], hint)

    TORCH_IMPORT.rule(*keys, produces=[op_type])(rule)


_binary(O.Add, "add", "operator.add", "operator.iadd", "torch.add", "Tensor.add",
        "Tensor.add_")
_binary(O.Mul, "mul", "operator.mul", "operator.imul", "torch.mul", "Tensor.mul",
        "Tensor.mul_")


@TORCH_IMPORT.rule("torch.cat", "torch.concat", "torch.concatenate", produces=[O.Concat])
def _cat(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    xs = args[0] if args else kwargs["tensors"]
    dim = opt(node, args, kwargs, 1, "dim", 0)
    ids = [m.ir(node, x, "cat") if isinstance(x, Layer) else -1 for x in xs]
    if -1 in ids:
        raise CnnirError("concatenates a constant; cnnir concatenates feature maps only")
    rank = len(m.imp.shape(ids[0])) + 1
    if int(dim) % rank != 1:
        raise CnnirError(f"concatenates along dim={dim}; cnnir concatenates channels (dim=1)")
    if len(ids) == 1:
        return Layer(ids[0])
    return m.add(node, O.Concat(), ids, "concat")


@TORCH_IMPORT.rule("torch.flatten", "Tensor.flatten", produces=[O.Flatten])
def _flatten(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    start = opt(node, args, kwargs, 1, "start_dim", 0)
    end = opt(node, args, kwargs, 2, "end_dim", -1)
    if start != 1 or end != -1:
        raise CnnirError(f"flatten(start_dim={start}, end_dim={end}) has no IR op; use "
                         f"flatten(x, 1)")
    return m.add(node, O.Flatten(), [m.ir(node, args[0], "flatten")], "flatten")


@TORCH_IMPORT.rule("Tensor.view", "Tensor.reshape", "torch.reshape", produces=[O.Flatten])
def _view(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
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
        return m.add(node, O.Flatten(), [x], "flatten") if len(s) > 1 else Layer(x)
    if resolved[0] in (BATCH, -1) and resolved[1:] == list(s):
        return Layer(x)
    raise CnnirError(f"reshape of N x {s} to {readable}; cnnir maps a reshape only as a "
                     f"flatten to (N, {n})")


@TORCH_IMPORT.rule("torch.mean", "Tensor.mean", produces=[O.GlobalAvgPool, O.Flatten])
def _mean(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "mean")
    dims = opt(node, args, kwargs, 1, "dim")
    keep = opt(node, args, kwargs, 2, "keepdim", False)
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if sorted(d % 4 for d in dims) != [2, 3] or len(m.imp.shape(x)) != 3:
        raise CnnirError(f"mean over dims {dims}; cnnir maps a mean over H and W (2, 3) only")
    g = m.add(node, O.GlobalAvgPool(), [x], "gap")
    return g if keep else m.add(node, O.Flatten(), [g.id], "flatten")


@TORCH_IMPORT.rule("F.max_pool2d", "torch.max_pool2d", produces=[O.MaxPool2d])
def _maxpool_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "maxpool")
    k = opt(node, args, kwargs, 1, "kernel_size")
    s = opt(node, args, kwargs, 2, "stride") or k
    p = opt(node, args, kwargs, 3, "padding", 0)
    if _pair(opt(node, args, kwargs, 4, "dilation", 1)) != (1, 1) or \
            opt(node, args, kwargs, 6, "return_indices", False):
        raise CnnirError("dilation and return_indices have no IR op")
    ceil = opt(node, args, kwargs, 5, "ceil_mode", False)
    return m.add(node, O.MaxPool2d(_pair(k), _pair(s), _pads(p), bool(ceil)), [x], "maxpool")


@TORCH_IMPORT.rule("F.avg_pool2d", produces=[O.AvgPool2d])
def _avgpool_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "avgpool")
    k = opt(node, args, kwargs, 1, "kernel_size")
    s = opt(node, args, kwargs, 2, "stride") or k
    p = opt(node, args, kwargs, 3, "padding", 0)
    ceil = opt(node, args, kwargs, 4, "ceil_mode", False)
    include = opt(node, args, kwargs, 5, "count_include_pad", True)
    if opt(node, args, kwargs, 6, "divisor_override") is not None:
        raise CnnirError("divisor_override has no IR op")
    return m.add(node, O.AvgPool2d(_pair(k), _pair(s), _pads(p), bool(ceil), bool(include)),
                 [x], "avgpool")


@TORCH_IMPORT.rule("F.adaptive_avg_pool2d", produces=[O.GlobalAvgPool, O.AdaptiveAvgPool2d])
def _adaptive_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    op = _adaptive(opt(node, args, kwargs, 1, "output_size"))
    hint = "gap" if isinstance(op, O.GlobalAvgPool) else "adaptpool"
    return m.add(node, op, [m.ir(node, args[0], hint)], hint)


@TORCH_IMPORT.rule("F.interpolate", produces=[O.Upsample])
def _interpolate(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "interpolate")
    op = _upsample(m.imp.shape(x), opt(node, args, kwargs, 1, "size"),
                   opt(node, args, kwargs, 2, "scale_factor"),
                   opt(node, args, kwargs, 3, "mode", "nearest"),
                   opt(node, args, kwargs, 4, "align_corners"))
    return m.add(node, op, [x], "upsample")


@TORCH_IMPORT.rule("F.softmax", "torch.softmax", "Tensor.softmax", produces=[O.Softmax])
def _softmax_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "softmax")
    _softmax_dim(opt(node, args, kwargs, 1, "dim"), m.imp.shape(x))
    return m.add(node, O.Softmax(), [x], "softmax")


@TORCH_IMPORT.rule("F.dropout", "F.dropout2d", produces=[O.Dropout])
def _dropout_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    p = opt(node, args, kwargs, 1, "p", 0.5)
    return m.add(node, O.Dropout(float(p)), [m.ir(node, args[0], "dropout")], "dropout")


@TORCH_IMPORT.rule("Tensor.clamp", "torch.clamp", "Tensor.clip", "torch.clip",
                   produces=[O.ReLU, O.ReLU6])
def _clamp(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    lo = opt(node, args, kwargs, 1, "min")
    hi = opt(node, args, kwargs, 2, "max")
    x = m.ir(node, args[0], "clamp")
    if lo == 0 and hi is None:
        return m.add(node, O.ReLU(), [x], "relu")
    return m.add(node, _hardtanh(lo, hi), [x], "relu6")


# functional layers whose weights are module tensors (``get_attr``): timm's BatchNormAct2d
# calls F.batch_norm in its own forward, NFNet's ScaledStdConv2d F.conv2d with a weight
# the driver folded from its parameters.


def _const(m: Mapper, v: Any, what: str) -> np.ndarray | None:
    if v is None:
        return None
    if not isinstance(v, TensorAttr):
        raise CnnirError(f"{what} is {describe(v)}, not a module tensor")
    return _np(m.tensor(v))


@TORCH_IMPORT.rule("F.batch_norm", "torch.batch_norm", produces=[O.BatchNorm2d])
def _batch_norm_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "batch_norm")
    if opt(node, args, kwargs, 5, "training", False):
        raise CnnirError("batch_norm with training=True (batch statistics) has no IR op")
    if len(m.imp.shape(x)) != 3:
        raise CnnirError(f"batch_norm of an N x {m.imp.shape(x)} tensor; cnnir's is 2-D")
    c = m.imp.shape(x)[0]
    arrays = {"running_mean": _const(m, opt(node, args, kwargs, 1, "running_mean"),
                                     "running_mean"),
              "running_var": _const(m, opt(node, args, kwargs, 2, "running_var"),
                                    "running_var"),
              "weight": _const(m, opt(node, args, kwargs, 3, "weight"), "weight"),
              "bias": _const(m, opt(node, args, kwargs, 4, "bias"), "bias")}
    if any(v is None for v in arrays.values()):
        raise CnnirError("batch_norm without affine parameters or running statistics has "
                         "no IR op")
    if any(v.shape != (c,) for v in arrays.values() if v is not None):
        raise CnnirError(f"batch_norm tensors do not have {c} channels")
    momentum = opt(node, args, kwargs, 6, "momentum", 0.1)
    op = O.BatchNorm2d(float(opt(node, args, kwargs, 7, "eps", 1e-5)),
                       0.1 if momentum is None else float(momentum))
    return m.add(node, op, [x], "bn", weights=arrays)


@TORCH_IMPORT.rule("F.conv2d", "torch.conv2d", produces=[O.Conv2d])
def _conv2d_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "conv2d")
    weight = _const(m, opt(node, args, kwargs, 1, "weight"), "weight")
    bias = _const(m, opt(node, args, kwargs, 2, "bias"), "bias")
    assert weight is not None
    stride = _pair(opt(node, args, kwargs, 3, "stride", 1))
    dilation = _pair(opt(node, args, kwargs, 5, "dilation", 1))
    padding: Any = opt(node, args, kwargs, 4, "padding", 0)
    if padding == "same":
        padding = O.same_padding(weight.shape[2:], dilation)
    elif padding == "valid":
        padding = 0
    else:
        padding = _pair(padding)
    groups = int(opt(node, args, kwargs, 6, "groups", 1))
    op = O.Conv2d(int(weight.shape[0]), (int(weight.shape[2]), int(weight.shape[3])), stride,
                  padding, dilation, groups, bias is not None)
    arrays = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return m.add(node, op, [x], "conv", weights=arrays)


@TORCH_IMPORT.rule("F.linear", "torch.linear", produces=[O.Linear])
def _linear_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "linear")
    weight = _const(m, opt(node, args, kwargs, 1, "weight"), "weight")
    bias = _const(m, opt(node, args, kwargs, 2, "bias"), "bias")
    assert weight is not None
    if len(m.imp.shape(x)) != 1:
        raise CnnirError(f"linear of an N x {m.imp.shape(x)} tensor; cnnir's takes (N, F)")
    arrays = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return m.add(node, O.Linear(int(weight.shape[0]), bias is not None), [x], "fc",
                 weights=arrays)


@TORCH_IMPORT.rule("Tensor.contiguous")
def _contiguous(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """A no-op on a feature map: the value is its input's."""
    return Layer(m.ir(node, args[0], str(node.target)))


__all__ = ["TORCH_IMPORT", "Layer", "TensorAttr", "Mapper", "describe", "opt", "module_key",
           "function_key"]
