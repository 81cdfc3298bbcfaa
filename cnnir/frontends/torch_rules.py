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
from .importing import BATCH, qualified_path

# --------------------------------------------------------------------------- values


class Layer:
    """An fx value that is the output of an IR layer."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i


class TensorAttr:
    """A parameter or buffer read with ``get_attr``, or a tensor computed from them
    (``value``, filled when a rule such as ``F.batch_norm`` reads it).

    A computed one keeps its ``recipe`` (the fx node and its arguments, tensor
    attributes among them), so it can be computed again with a parameter replaced
    (:func:`recompute`), and ``params``: the parameters it was computed from (target ->
    tensor), whose elements are the model's parameters the value stands for."""

    def __init__(self, target: str, value: Any = None, recipe: Any = None,
                 params: dict[str, Any] | None = None) -> None:
        self.target = target
        self.value = value
        self.recipe = recipe
        self.params = params

    def __repr__(self) -> str:
        return f"the tensor attribute '{self.target}'"


class Stacked:
    """``torch.stack`` of feature maps along dim 0: a ``.mean(0)`` / ``.sum(0)`` that
    follows makes it one n-input Mean / Sum; nothing else reads it."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __repr__(self) -> str:
        return ("a torch.stack of feature maps (cnnir maps it only when .mean(0) or .sum(0) "
                "reduces it right away)")


class ChannelsLast:
    """``x.permute(0, 2, 3, 1)`` of the ``CxHxW`` map of layer ``id``: pending until
    ``permute(0, 3, 1, 2)`` turns it back.  In between, cnnir maps what ConvNeXt runs
    on the channels-last view -- ``nn.LayerNorm(C)`` / ``F.layer_norm`` (a
    ``layernorm2d``), ``nn.Linear`` (a 1x1 conv) and weightless elementwise
    activations (GELU) -- each applied to the NCHW map itself."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i

    def __repr__(self) -> str:
        return ("a channels-last view (permute(0, 2, 3, 1)) of a feature map; cnnir maps "
                "LayerNorm, Linear and elementwise activations on it, until "
                "permute(0, 3, 1, 2) turns it back")


class MaxPadded:
    """timm's ``pad_same(x, ..., value=-inf)`` of layer ``id``: pending until the
    ``F.max_pool2d`` that follows takes ``pads`` ``(top, left, bottom, right)`` as its own
    padding (a max pool pads with -inf), as ``MaxPool2dSame`` does."""

    __slots__ = ("id", "pads")

    def __init__(self, i: int, pads: tuple[int, int, int, int]) -> None:
        self.id = i
        self.pads = pads

    def __repr__(self) -> str:
        return ("a feature map padded with -inf (pad_same); cnnir maps it only as the "
                "padding of the F.max_pool2d right after it")


def describe(v: Any) -> str:
    """A value that is not a feature map, as an error message names it."""
    if isinstance(v, (TensorAttr, Stacked, ChannelsLast, MaxPadded)):
        return repr(v)
    return f"the constant {v!r}"


def attr_params(root: Any, v: Any) -> dict[str, Any]:
    """The ``nn.Parameter`` s a constant stands for: a parameter read, or those a computed
    tensor was made from (target -> tensor); none for a number or a buffer."""
    if not isinstance(v, TensorAttr):
        return {}
    if v.params is not None:
        return v.params
    path, _, leaf = v.target.rpartition(".")
    try:
        owner = root.get_submodule(path) if path else root
    except AttributeError:
        return {}
    p = owner._parameters.get(leaf) if hasattr(owner, "_parameters") else None
    return {} if p is None else {v.target: p}


def attr_numel(params: dict[str, Any]) -> int:
    return sum(int(t.numel()) for t in params.values())


class Mapper(Protocol):
    """What a call rule uses of the driver (:class:`cnnir.frontends.torch_import._Mapper`)."""

    imp: Any  # the Importer: ``imp.shape(id)`` is a layer's output shape
    root: Any  # the traced module (its parameters and buffers, read by ``get_attr``)

    def ir(self, node: Any, v: Any, what: str) -> int: ...

    def add(self, node: Any, op: O.Op, inputs: Sequence[int], hint: str,
            path: tuple[str, ...] | None = None, weights: dict[str, Any] | None = None,
            leaf: bool = False) -> Layer: ...

    def tensor(self, v: TensorAttr) -> Any: ...

    def recompute(self, v: TensorAttr, subst: dict[str, Any]) -> Any: ...


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
        key = _FUNCTION_KEYS.get(target)
    except TypeError:  # an unhashable target
        return None
    if key is None:  # a function outside torch wrapped as a leaf (torchvision's ops)
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}"
        key = name if name in TORCH_IMPORT else None
    return key


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
_layer("GELU", O.GELU, lambda m: O.GELU(str(m.approximate)), "gelu")


@TORCH_IMPORT.rule("nn.LayerNorm", produces=[O.LayerNorm2d])
def _m_layernorm(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    """On an NCHW map it would normalise the last axis (W): refused.  The channels-last
    form (after ``permute(0, 2, 3, 1)``) is :func:`channels_last_module`'s."""
    raise CnnirError(f"LayerNorm{tuple(mod.normalized_shape)} on an N x {shape} map "
                     f"normalises its last axes, which cnnir has no op for; cnnir maps "
                     f"LayerNorm(C) over the channels of a permute(0, 2, 3, 1) view "
                     f"(ConvNeXt's layernorm2d)")


def _layernorm_op(normalized: Any, weight: Any, bias: Any, eps: float, shape: Any
                  ) -> tuple[O.Op, dict[str, Any]]:
    """``layer_norm(normalized_shape, weight, bias, eps)`` over the channels of a map."""
    c = shape[0]
    if [int(v) for v in normalized] != [c]:
        raise CnnirError(f"layer_norm over {list(normalized)} of a channels-last view of an "
                         f"N x {shape} map; cnnir normalises the channels ([{c}]) only")
    if weight is None or bias is None:
        raise CnnirError("layer_norm without a weight and a bias (elementwise_affine=False "
                         "or bias=False) has no IR op; cnnir's layernorm2d has both")
    return O.LayerNorm2d(float(eps)), {"weight": _np(weight), "bias": _np(bias)}


def channels_last_module(m: Mapper, node: Any, mod: Any, v: ChannelsLast) -> ChannelsLast:
    """A ``torch.nn`` layer applied to a channels-last view: ``nn.LayerNorm(C)`` is a
    ``layernorm2d``; ``nn.Linear(C, K)`` a 1x1 ``conv2d`` with ``K`` filters, the
    weight ``(K, C)`` as ``(K, C, 1, 1)`` (same parameters, ``H * W * C * K`` MACs);
    a weightless elementwise layer (GELU, ReLU...) is itself.  The result stays
    channels-last."""
    import torch.nn as nn

    shape = m.imp.shape(v.id)
    if type(mod) is nn.LayerNorm:
        op, weights = _layernorm_op(mod.normalized_shape, mod.weight, mod.bias, mod.eps, shape)
        hint = "ln"
    elif type(mod) is nn.Linear:
        if mod.in_features != shape[0]:
            raise CnnirError(f"Linear({mod.in_features}, {mod.out_features}) on a "
                             f"channels-last view of {shape[0]} channels")
        weights = {"weight": _np(mod.weight).reshape(mod.out_features, mod.in_features, 1, 1)}
        if mod.bias is not None:
            weights["bias"] = _np(mod.bias)
        op, hint = O.Conv2d(mod.out_features, (1, 1), bias=mod.bias is not None), "conv"
    else:
        rule = TORCH_IMPORT.lookup(module_key(type(mod)))
        op, arrays, hint = rule(mod, shape)
        if arrays or not op.has(O.ELEMENTWISE):
            raise CnnirError(f"{type(mod).__name__} on a channels-last view "
                             f"(permute(0, 2, 3, 1)); cnnir maps LayerNorm, Linear and "
                             f"weightless elementwise layers there")
        weights = {}
    return ChannelsLast(m.add(node, op, [v.id], hint, qualified_path(str(node.target)),
                              weights or None, leaf=True).id)


# --------------------------------------------------------------------------- calls

Call = Callable[[Mapper, Any, list[Any], dict[str, Any]], Any]


def _unary(op_type: type[O.Op], make: Callable[..., O.Op], hint: str, *keys: str) -> None:
    """Register ``keys``: a call on one feature map whose op is ``make(node, args, kwargs)``."""

    def rule(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
        x = args[0] if args else kwargs.get("input")
        if type(x) is _Seq:  # ECA's gate on the view(N, 1, C) of the pooled channels
            return _Seq(m.add(node, make(node, args, kwargs), [x.map], hint).id)
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
    """Register ``keys``: an elementwise op of two feature maps (``alpha`` 1 only), or of a
    feature map and a constant (a number, a parameter or buffer): a Scale."""

    def rule(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if opt(node, args, kwargs, 2, "alpha", 1) != 1:
            raise CnnirError("alpha != 1 has no IR op")
        a, b = _unexpand(m, a, b), _unexpand(m, b, a)
        if type(a) in _GROUPS or type(b) in _GROUPS:
            return _grouped_binary(m, node, op_type, hint, a, b)
        if not isinstance(a, Layer) or not isinstance(b, Layer):
            return _scale_by(m, node, hint, a, b)
        return m.add(node, op_type(), [a.id, b.id], hint)

    TORCH_IMPORT.rule(*keys, produces=[op_type, O.Scale])(rule)


_binary(O.Add, "add", "operator.add", "operator.iadd", "torch.add", "Tensor.add",
        "Tensor.add_")
_binary(O.Mul, "mul", "operator.mul", "operator.imul", "torch.mul", "Tensor.mul",
        "Tensor.mul_")


@TORCH_IMPORT.rule("operator.sub", "operator.isub", "torch.sub", "Tensor.sub", "Tensor.sub_",
                   "operator.truediv", "operator.itruediv", "torch.div", "Tensor.div",
                   "Tensor.div_", produces=[O.Scale])
def _sub_div(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """``x - c``, ``c - x``, ``x / c``: a Scale (of two feature maps: no IR op)."""
    name = getattr(node.target, "__name__", str(node.target)).strip("_")
    hint = "sub" if "sub" in name else "div"
    a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
    if hint == "div" and opt(node, args, kwargs, 2, "rounding_mode") is not None:
        raise CnnirError("rounding_mode has no IR op")
    if hint == "sub" and opt(node, args, kwargs, 2, "alpha", 1) != 1:
        raise CnnirError("alpha != 1 has no IR op")
    if isinstance(a, Layer) and isinstance(b, Layer):
        raise CnnirError(f"{hint} of two feature maps has no IR op (only of a feature map and "
                         f"a constant, as a scale layer)")
    return _scale_by(m, node, hint, a, b)


def _constant(m: Mapper, v: Any) -> tuple[np.ndarray, bool]:
    """The constant operand of a scale and whether it is learned: a parameter (or a
    tensor computed from parameters alone, ``self.gamma.reshape(1, -1, 1, 1)``) is; a
    Python number or a buffer is fixed (no parameter).  A tensor computed from
    parameters with more elements than it has is refused: its count would be wrong."""
    if isinstance(v, TensorAttr):
        arr = _np(m.tensor(v)).astype(np.float64)
        params = attr_params(m.root, v)
        if params and attr_numel(params) != arr.size:
            raise CnnirError(f"{describe(v)} is computed from the parameters "
                             f"{', '.join(sorted(params))} ({attr_numel(params)} values) into "
                             f"{arr.size} values; cnnir cannot count them as one layer's "
                             f"parameters exactly")
        return arr, bool(params)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return np.array(float(v)), False
    raise CnnirError(f"has no IR op for {describe(v)}")


def _scale_by(m: Mapper, node: Any, hint: str, a: Any, b: Any) -> Layer:
    """A feature map and a constant: ``x * c``, ``x + c``, ``x - c``, ``c - x``, ``x / c``
    with ``c`` a number or a tensor attribute of shape ``()``, ``(1,)``, ``(C, 1, 1)`` or
    ``(1, C, 1, 1)`` (on a flat tensor ``(F,)``): PyTorch broadcasting aligns trailing
    axes, so a ``(C,)`` tensor against NCHW varies along W and is refused."""
    first = isinstance(a, Layer)
    if not first and not isinstance(b, Layer):
        raise CnnirError(f"{hint} of {describe(a)} and {describe(b)} has no IR op")
    x = a if first else b
    const, learned = _constant(m, b if first else a)
    fixed = not learned
    shape = m.imp.shape(x.id)
    rank = len(shape) + 1
    dims = [1] * (rank - const.ndim) + list(const.shape) if const.ndim <= rank else None
    if dims is None or dims[0] != 1 or any(d != 1 for d in dims[2:]) or \
            dims[1] not in (1, shape[0]):
        raise CnnirError(f"{hint} of an N x {shape} feature map and {describe(b if first else a)}"
                         f" of shape {list(const.shape)}; cnnir maps a constant that varies "
                         f"along the channel axis alone (a number, (C, 1, 1) or (1, C, 1, 1)"
                         f" by broadcasting) as a scale layer")
    vec = const.reshape(-1)
    per_channel = vec.size > 1
    arr = vec.reshape(((shape[0], 1, 1) if shape.is_map else (shape[0],)) if per_channel
                      else (1,))
    if hint == "div" and not first:
        raise CnnirError("divides a constant by a feature map (c / x); cnnir's scale layer "
                         "divides a feature map by a constant only")
    neutral = 1.0 if hint in ("mul", "div") else 0.0
    if fixed and not (hint == "sub" and not first) and np.all(vec == neutral):
        return x  # ``sum([a, b])`` starts with ``0 + a``; ``x * 1``
    if hint == "mul":
        op, w = O.Scale(per_channel, fixed=fixed), {"weight": arr}
    elif hint == "div":
        op, w = O.Scale(per_channel, divide=True, fixed=fixed), {"weight": arr}
    elif hint == "sub" and not first and fixed:  # c - x = (-1) * x + c
        op = O.Scale(per_channel, bias=True, fixed=True)
        w = {"weight": -np.ones_like(arr), "bias": arr}
    elif hint == "sub" and not first:  # a learned c: the -1 is a fixed scale of its own
        neg = m.add(node, O.Scale(False, fixed=True), [x.id], "neg", None,
                    {"weight": -np.ones((1,), np.float32)})
        return m.add(node, O.Scale(per_channel, scale=False, bias=True), [neg.id], "scale",
                     None, {"bias": arr.astype(np.float32)})
    else:
        op = O.Scale(per_channel, scale=False, bias=True, fixed=fixed)
        w = {"bias": -arr if hint == "sub" else arr}
    return m.add(node, op, [x.id], "scale", None,
                 {k: v.astype(np.float32) for k, v in w.items()})


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


@TORCH_IMPORT.rule("Tensor.view", "Tensor.reshape", "torch.reshape",
                   produces=[O.Flatten, O.ChannelShuffle, O.SpaceToDepth])
def _view(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    dims: list[Any] = args[1:] if len(args) > 1 else [kwargs.get("shape", kwargs.get("size"))]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = list(dims[0])
    if any(not isinstance(d, int) for d in dims):
        raise CnnirError(f"reshape to {dims!r}: the sizes must be known when tracing")
    if isinstance(args[0], _Shuffled):
        return _unshuffle(m, node, args[0], list(dims))
    if type(args[0]) in (_Seq, _RadixOut, _Blocks, _BlocksT):
        return _view_pending(m, node, args[0], list(dims))
    x = m.ir(node, args[0], "view")
    if len(dims) == 5 and len(m.imp.shape(x)) == 3:
        return _grouped(m, node, x, list(dims))
    special = _view_special(m, node, x, list(dims))
    if special is not None:
        return special
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


@TORCH_IMPORT.rule("torch.stack", produces=[O.Concat])
def _stack(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Stacked:
    """Pending: a ``.mean(0)`` / ``.sum(0)`` of it is a Mean / Sum (see :class:`Stacked`)."""
    xs = args[0] if args else kwargs["tensors"]
    if int(opt(node, args, kwargs, 1, "dim", 0)) == 1:
        return _stack_groups(m, node, xs)
    if int(opt(node, args, kwargs, 1, "dim", 0)) != 0:
        raise CnnirError("stacks along a dim other than 0; cnnir maps torch.stack(xs) only "
                         "when .mean(0) or .sum(0) reduces it")
    return Stacked([m.ir(node, x, "stack") for x in xs])


def _reduce_stack(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any],
                  op: type[O.Op], hint: str) -> Layer:
    """``torch.stack(xs).mean(0)`` / ``.sum(0)``: one n-input Mean / Sum (one input: itself)."""
    st = args[0]
    dim = opt(node, args, kwargs, 1, "dim")
    keep = opt(node, args, kwargs, 2, "keepdim", False)
    if dim not in (0, (0,), [0]) or keep or kwargs.get("dtype") is not None:
        raise CnnirError(f"{hint} of a torch.stack over dim={dim}; cnnir maps the {hint} over "
                         f"the stacked dim 0 only (without keepdim / dtype)")
    if len(st.ids) == 1:
        return Layer(st.ids[0])
    return m.add(node, op(), st.ids, hint)


@TORCH_IMPORT.rule("torch.sum", "Tensor.sum", produces=[O.Sum, O.Add, O.Slice])
def _sum(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    if type(args[0]) in _GROUPS:
        return _sum_groups(m, node, args, kwargs)
    if not isinstance(args[0], Stacked):
        raise CnnirError("a sum of a feature map's elements has no IR op (cnnir maps "
                         "torch.stack(xs).sum(0), the sum of n feature maps)")
    return _reduce_stack(m, node, args, kwargs, O.Sum, "sum")


@TORCH_IMPORT.rule("torch.mean", "Tensor.mean", produces=[O.GlobalAvgPool, O.Flatten, O.Mean])
def _mean(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    if isinstance(args[0], Stacked):
        return _reduce_stack(m, node, args, kwargs, O.Mean, "mean")
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
    """``F.max_pool2d``; of a :class:`MaxPadded` map, with its padding as the pool's."""
    pending = args[0] if isinstance(args[0], MaxPadded) else None
    x = pending.id if pending is not None else m.ir(node, args[0], "maxpool")
    k = opt(node, args, kwargs, 1, "kernel_size")
    s = opt(node, args, kwargs, 2, "stride") or k
    p = _pads(opt(node, args, kwargs, 3, "padding", 0))
    if _pair(opt(node, args, kwargs, 4, "dilation", 1)) != (1, 1) or \
            opt(node, args, kwargs, 6, "return_indices", False):
        raise CnnirError("dilation and return_indices have no IR op")
    if pending is not None:
        if any(p):
            raise CnnirError("max_pool2d with its own padding of a pad_same(-inf) map; cnnir "
                             "maps one padding")
        p = pending.pads
    ceil = opt(node, args, kwargs, 5, "ceil_mode", False)
    return m.add(node, O.MaxPool2d(_pair(k), _pair(s), p, bool(ceil)), [x], "maxpool")


def same_pads(size: tuple[int, int], kernel: Any, stride: Any, dilation: Any = 1
              ) -> tuple[int, int, int, int]:
    """TensorFlow's "SAME" padding of an ``H x W`` input as ``(top, left, bottom, right)``:
    the total ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` per axis, the
    smaller half first (timm's ``get_same_padding`` and ``pad_same``)."""
    total = []
    for n, k, s, d in zip(size, _pair(tuple(kernel) if not isinstance(kernel, int) else kernel),
                          _pair(tuple(stride) if not isinstance(stride, int) else stride),
                          _pair(tuple(dilation) if not isinstance(dilation, int) else dilation)):
        total.append(max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0))
    ph, pw = total
    return (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2)


@TORCH_IMPORT.rule("timm.layers.padding.pad_same", produces=[O.Pad, O.MaxPool2d])
def _pad_same(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """timm's ``pad_same(x, kernel_size, stride, dilation, value)`` (an fx leaf: it
    computes the pad from ``x.size()``), at the import's input size: TF "same" padding
    of the conv or pool that follows (Conv2dSame, MaxPool2dSame, AvgPool2dSame,
    ScaledStdConv2dSame).  A zero pad is a Pad layer; a -inf pad is pending
    (:class:`MaxPadded`) until the max pool after it takes it as its padding."""
    x = m.ir(node, args[0], "pad_same")
    shape = m.imp.shape(x)
    if len(shape) != 3:
        raise CnnirError(f"pad_same of an N x {shape} tensor; cnnir pads NCHW maps")
    pads = same_pads((shape[1], shape[2]), opt(node, args, kwargs, 1, "kernel_size"),
                     opt(node, args, kwargs, 2, "stride"),
                     opt(node, args, kwargs, 3, "dilation", (1, 1)))
    value = float(opt(node, args, kwargs, 4, "value", 0))
    if value == float("-inf"):
        return MaxPadded(x, pads)
    if not any(pads):
        return Layer(x)
    return m.add(node, O.Pad(pads, (0, 0), value), [x], "pad")


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


@TORCH_IMPORT.rule("F.softmax", "torch.softmax", "Tensor.softmax",
                   produces=[O.Softmax, O.RadixSoftmax])
def _softmax_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    if type(args[0]) in (*_GROUPS, _RadixT):
        return _radix_softmax(m, node, args[0], opt(node, args, kwargs, 1, "dim"))
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


@TORCH_IMPORT.rule("F.pad", produces=[O.Pad])
def _pad_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """``F.pad(x, (l, r, t, b[, c0, c1]), mode="constant", value=v)``."""
    x = m.ir(node, args[0], "pad")
    pad = list(opt(node, args, kwargs, 1, "pad"))
    mode = opt(node, args, kwargs, 2, "mode", "constant")
    value = opt(node, args, kwargs, 3, "value", None)
    if mode not in ("constant", "reflect"):
        raise CnnirError(f"{mode} padding has no IR op; cnnir pads with a constant or a "
                         f"reflection only")
    if mode == "reflect":
        if len(pad) != 4 or any(not isinstance(p, int) or p < 0 for p in pad):
            raise CnnirError(f"reflect pad {pad}: cnnir mirrors W and H by non-negative "
                             f"amounts only")
        left, r, t, b = pad
        return m.add(node, O.Pad((t, left, b, r), mode="reflect"), [x], "pad")
    if len(pad) % 2 or len(pad) > 6 or any(not isinstance(p, int) for p in pad):
        raise CnnirError(f"pad {pad}: cnnir pads W, H and C by whole amounts only")
    pad += [0] * (6 - len(pad))
    if min(pad) < 0:  # a negative amount crops: a Slice, then the positive rest
        shape = m.imp.shape(x)
        ranges = []
        for k, size in enumerate(shape):  # C, H, W: pad pairs 4-5, 2-3, 0-1
            lo, hi = max(0, -pad[4 - 2 * k]), size - max(0, -pad[5 - 2 * k])
            if lo >= hi:
                raise CnnirError(f"pad {pad} crops an N x {shape} map to nothing")
            ranges.append((lo, hi) if (lo, hi) != (0, size) else None)
        x = m.add(node, O.Slice(*ranges), [x], "crop").id
        pad = [max(0, p) for p in pad]
        if not any(pad):
            return Layer(x)
    left, r, t, b, c0, c1 = pad
    return m.add(node, O.Pad((t, left, b, r), (c0, c1), float(value or 0.0)), [x], "pad")


@TORCH_IMPORT.rule("nn.ReflectionPad2d", produces=[O.Pad])
def _m_reflect_pad(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    """``nn.ReflectionPad2d((l, r, t, b))``: a reflect Pad layer."""
    left, r, t, b = (int(v) for v in mod.padding)
    return O.Pad((t, left, b, r), mode="reflect"), None, "pad"


@TORCH_IMPORT.rule("nn.ZeroPad2d", "nn.ConstantPad2d", produces=[O.Pad])
def _m_pad(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    """``nn.ZeroPad2d((l, r, t, b))`` / ``nn.ConstantPad2d(p, value)`` (NASNet's
    pad-pool-crop): a Pad layer; a negative amount (a crop) is ``F.pad``'s to map."""
    left, r, t, b = (int(v) for v in mod.padding)
    if min(left, r, t, b) < 0:
        raise CnnirError(f"{type(mod).__name__}{mod.padding}: a negative pad crops; cnnir "
                         f"maps it as F.pad(x, pads) or x[:, :, t:b, l:r]")
    return O.Pad((t, left, b, r), (0, 0), float(getattr(mod, "value", 0.0))), None, "pad"


@TORCH_IMPORT.rule("torchvision.ops.stochastic_depth.stochastic_depth",
                   "torch.stochastic_depth", produces=[O.DropPath])
def _stochastic_depth(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """torchvision's ``stochastic_depth(x, p, mode, training)`` (an fx leaf; its
    ``StochasticDepth`` module calls it): the identity at inference, kept as drop-path."""
    x = m.ir(node, args[0], "stochastic_depth")
    p = float(opt(node, args, kwargs, 1, "p", 0.0))
    if opt(node, args, kwargs, 3, "training", True):
        raise CnnirError("stochastic depth in training mode drops random samples; cnnir "
                         "imports inference models (call .eval() first)")
    return m.add(node, O.DropPath(p), [x], "drop_path")


@TORCH_IMPORT.rule("torch.permute", "Tensor.permute", produces=[])
def _permute(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``permute(0, 2, 3, 1)`` of a map: a pending :class:`ChannelsLast`;
    ``permute(0, 3, 1, 2)`` of one: the map again.  Any other permutation is refused."""
    x = args[0] if args else kwargs.get("input")
    dims = list(args[1:]) if len(args) > 1 else [kwargs.get("dims")]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = list(dims[0])
    if type(x) is _Blocks and [d % 6 if isinstance(d, int) else d for d in dims] == [
            0, 3, 5, 1, 2, 4]:
        return _BlocksT(x.src, x.block, node.name)
    dims = [int(d) % 4 if isinstance(d, int) else d for d in dims]
    if isinstance(x, Layer) and len(m.imp.shape(x.id)) == 3 and dims == [0, 2, 3, 1]:
        return ChannelsLast(x.id)
    if isinstance(x, ChannelsLast) and dims == [0, 3, 1, 2]:
        return Layer(x.id)
    what = "a channels-last view" if isinstance(x, ChannelsLast) else describe(x) \
        if not isinstance(x, Layer) else f"an N x {m.imp.shape(x.id)} tensor"
    raise CnnirError(f"permute{tuple(dims)} of {what}; cnnir maps permute(0, 2, 3, 1) of a "
                     f"feature map and permute(0, 3, 1, 2) back (ConvNeXt's channels-last "
                     f"LayerNorm / Linear) only")


@TORCH_IMPORT.rule("F.gelu", "torch.gelu", produces=[O.GELU])
def _gelu_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``F.gelu(x, approximate=...)``, on a map or on a channels-last view."""
    x = args[0] if args else kwargs.get("input")
    op = O.GELU(str(opt(node, args, kwargs, 1, "approximate", "none")))
    if isinstance(x, ChannelsLast):
        return ChannelsLast(m.add(node, op, [x.id], "gelu").id)
    return m.add(node, op, [m.ir(node, x, "gelu")], "gelu")


@TORCH_IMPORT.rule("F.layer_norm", "torch.layer_norm", produces=[O.LayerNorm2d])
def _layer_norm_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``F.layer_norm(x, (C,), weight, bias, eps)`` on a channels-last view (torchvision's
    ``LayerNorm2d.forward``); the weight and bias are the module's own tensors."""
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, ChannelsLast):
        what = describe(x) if not isinstance(x, Layer) else "an NCHW map"
        raise CnnirError(f"layer_norm of {what}; cnnir maps layer_norm over the channels "
                         f"of a permute(0, 2, 3, 1) view only")
    arrays = []
    for i, key in ((2, "weight"), (3, "bias")):
        t = opt(node, args, kwargs, i, key)
        if isinstance(t, TensorAttr):
            _exact(m, f"layer_norm's {key}", [t], [_np(m.tensor(t))])
            t = m.tensor(t)
        elif t is not None:
            raise CnnirError(f"layer_norm's {key} is {describe(t)}, not a parameter")
        arrays.append(t)
    op, weights = _layernorm_op(opt(node, args, kwargs, 1, "normalized_shape"), arrays[0],
                                arrays[1], float(opt(node, args, kwargs, 4, "eps", 1e-5)),
                                m.imp.shape(x.id))
    return ChannelsLast(m.add(node, op, [x.id], "ln", weights=weights).id)


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
    _exact(m, "batch_norm", [opt(node, args, kwargs, i, k) for i, k in ((3, "weight"),
                                                                       (4, "bias"))],
           [arrays["weight"], arrays["bias"]])
    if any(v.shape != (c,) for v in arrays.values() if v is not None):
        raise CnnirError(f"batch_norm tensors do not have {c} channels")
    momentum = opt(node, args, kwargs, 6, "momentum", 0.1)
    op = O.BatchNorm2d(float(opt(node, args, kwargs, 7, "eps", 1e-5)),
                       0.1 if momentum is None else float(momentum))
    return m.add(node, op, [x], "bn", weights=arrays)


def _exact(m: Mapper, what: str, tensors: Sequence[Any], arrays: Sequence[Any]) -> None:
    """Refuse a functional layer whose parameter arrays are not the model's parameters
    one for one: a buffer as a conv's weight, or a weight computed from more parameters
    than it holds (counted as the layer's own, they would be miscounted)."""
    params: dict[str, Any] = {}
    for t in tensors:
        params.update(attr_params(m.root, t))
    want = sum(int(a.size) for a in arrays if a is not None)
    have = attr_numel(params)
    if have != want:
        names = ", ".join(sorted(params)) or "no parameter"
        raise CnnirError(f"{what}'s arrays ({want} values) are computed from {names} "
                         f"({have} parameter values); cnnir counts a layer's arrays as its "
                         f"parameters, so it maps them only when they are the parameters "
                         f"(or computed from exactly as many)")


def _gain_split(m: Mapper, wv: Any, weight: np.ndarray) -> tuple[Any, Any] | None:
    """``weight = f(W) * g`` with ``g`` a parameter of one value per output channel (NFNet's
    ``ScaledStdConv2d``: weight standardisation times a learned ``gain``): ``(f(W), g)``,
    or None.  Checked by computing the weight again with ``g`` replaced by ones and by
    another vector: the weight must scale with ``g`` channel by channel."""
    import torch

    if not isinstance(wv, TensorAttr) or wv.recipe is None:
        return None
    params = attr_params(m.root, wv)
    out = int(weight.shape[0])
    for key, g in params.items():
        if int(g.numel()) != out or out == weight.size or \
                attr_numel(params) - out != weight.size:
            continue
        probe = torch.linspace(0.5, 2.0, out, dtype=g.dtype).reshape(g.shape)
        w1 = m.recompute(wv, {key: torch.ones_like(g)})
        w2 = m.recompute(wv, {key: probe})
        per = (-1,) + (1,) * (weight.ndim - 1)
        with torch.no_grad():
            if not isinstance(w1, torch.Tensor) or tuple(w1.shape) != weight.shape:
                continue
            if torch.allclose(w2, w1 * probe.reshape(per), rtol=1e-5, atol=1e-6) and \
                    np.allclose(weight, _np(w1 * g.reshape(per)), rtol=1e-5, atol=1e-6):
                return w1, g
    return None


@TORCH_IMPORT.rule("F.conv2d", "torch.conv2d", produces=[O.Conv2d, O.Scale])
def _conv2d_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """``F.conv2d`` with the module's tensors: a conv.  A weight computed from its own
    parameter and a per-output-channel gain parameter (``ScaledStdConv2d``) is a conv
    with the gain-free weight, then a per-channel Scale by the gain (and the bias):
    each parameter counted once, in the layer that holds it."""
    x = m.ir(node, args[0], "conv2d")
    wv, bv = opt(node, args, kwargs, 1, "weight"), opt(node, args, kwargs, 2, "bias")
    weight = _const(m, wv, "weight")
    bias = _const(m, bv, "bias")
    assert weight is not None
    split = None
    try:
        _exact(m, "conv2d", [wv, bv], [weight, bias])
    except CnnirError:
        split = _gain_split(m, wv, weight)
        if split is None:
            raise
        _exact(m, "conv2d", [bv], [bias])
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
    out = int(weight.shape[0])
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    if split is not None:
        w1, gain = split
        conv = m.add(node, O.Conv2d(out, kernel, stride, padding, dilation, groups, False),
                     [x], "conv", weights={"weight": _np(w1)})
        arrays = {"weight": _np(gain).reshape(out, 1, 1)}
        if bias is not None:
            arrays["bias"] = bias.reshape(out, 1, 1)
        return m.add(node, O.Scale(True, bias=bias is not None), [conv.id], "gain",
                     weights=arrays)
    op = O.Conv2d(out, kernel, stride, padding, dilation, groups, bias is not None)
    arrays = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return m.add(node, op, [x], "conv", weights=arrays)


@TORCH_IMPORT.rule("F.linear", "torch.linear", produces=[O.Linear])
def _linear_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "linear")
    wv, bv = opt(node, args, kwargs, 1, "weight"), opt(node, args, kwargs, 2, "bias")
    weight = _const(m, wv, "weight")
    bias = _const(m, bv, "bias")
    assert weight is not None
    _exact(m, "linear", [wv, bv], [weight, bias])
    if len(m.imp.shape(x)) != 1:
        raise CnnirError(f"linear of an N x {m.imp.shape(x)} tensor; cnnir's takes (N, F)")
    arrays = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return m.add(node, O.Linear(int(weight.shape[0]), bias is not None), [x], "fc",
                 weights=arrays)


@TORCH_IMPORT.rule("Tensor.contiguous")
def _contiguous(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]
                ) -> Layer | ChannelsLast:
    """A no-op on a feature map, on a channels-last view and on a channel shuffle's 5-D
    step: the value is its input's."""
    if isinstance(args[0], (ChannelsLast, _Grouped, _Stacked1, _Seq, _RadixOut, _Blocks)):
        return args[0]
    return Layer(m.ir(node, args[0], str(node.target)))


# --------------------------------------------------------------------------- slice, split


def _dim(node: Any, args: list[Any], kwargs: dict[str, Any], i: int, default: int,
         allowed: tuple[int, ...] = (1,)) -> int:
    """Argument ``dim`` of an N x C x H x W call, as 1..3; others refused."""
    dim = opt(node, args, kwargs, i, "dim", default)
    if not isinstance(dim, int) or not -4 <= dim < 4 or dim % 4 not in allowed:
        names = {0: "the batch", 1: "channels", 2: "height", 3: "width"}
        what = names.get(dim % 4, str(dim)) if isinstance(dim, int) else repr(dim)
        raise CnnirError(f"dim={dim} ({what}); cnnir slices "
                         f"{' / '.join(names[a] for a in allowed)} (dim "
                         f"{', '.join(map(str, allowed))}) of an N x C x H x W map only")
    return dim % 4


def _parts(m: Mapper, node: Any, x: int, sizes: list[int]) -> tuple[Layer, ...]:
    """One channel slice per size, in order."""
    out, start = [], 0
    for size in sizes:
        out.append(m.add(node, O.Slice((start, start + size)), [x], "slice"))
        start += size
    return tuple(out)


def _map(m: Mapper, node: Any, v: Any, what: str) -> tuple[int, Any]:
    x = m.ir(node, v, what)
    s = m.imp.shape(x)
    if len(s) != 3:
        raise CnnirError(f"{what} of a flat N x {s} tensor; cnnir slices CxHxW maps only")
    return x, s


@TORCH_IMPORT.rule("torch.split", "Tensor.split", produces=[O.Slice])
def _split(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> tuple[Layer, ...]:
    """``torch.split(x, size or sizes, dim=1)``: one slice per part."""
    x, s = _map(m, node, args[0] if args else kwargs.get("tensor"), "split")
    sizes = opt(node, args, kwargs, 1, "split_size_or_sections",
                kwargs.get("split_size"))
    _dim(node, args, kwargs, 2, 0)
    c = s[0]
    if isinstance(sizes, int):
        if sizes < 1:
            raise CnnirError(f"split size {sizes} must be at least 1")
        parts = [min(sizes, c - a) for a in range(0, c, sizes)]
    else:
        parts = [int(v) for v in sizes]
        if sum(parts) != c or min(parts, default=0) < 1:
            raise CnnirError(f"split sizes {parts} must be positive and sum to {c} channels")
    return _parts(m, node, x, parts)


@TORCH_IMPORT.rule("torch.chunk", "Tensor.chunk", produces=[O.Slice])
def _chunk(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> tuple[Layer, ...]:
    """``torch.chunk(x, n, dim=1)``: parts of ``ceil(C / n)`` channels (the last smaller,
    and fewer than ``n`` parts where ``n`` does not fit, as torch does)."""
    x, s = _map(m, node, args[0] if args else kwargs.get("input"), "chunk")
    n = int(opt(node, args, kwargs, 1, "chunks"))
    _dim(node, args, kwargs, 2, 0)
    if n < 1:
        raise CnnirError(f"chunks={n} must be at least 1")
    size = -(-s[0] // n)
    return _parts(m, node, x, [min(size, s[0] - a) for a in range(0, s[0], size)])


@TORCH_IMPORT.rule("torch.narrow", "Tensor.narrow", produces=[O.Slice])
def _narrow(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """``torch.narrow(x, dim, start, length)`` on channels, height or width."""
    x, s = _map(m, node, args[0] if args else kwargs.get("input"), "narrow")
    dim = _dim(node, args, kwargs, 1, 0, (1, 2, 3))
    start = int(opt(node, args, kwargs, 2, "start"))
    length = int(opt(node, args, kwargs, 3, "length"))
    size = s[dim - 1]
    start = start + size if start < 0 else start
    if length < 1 or not 0 <= start <= size - length:
        raise CnnirError(f"narrow(dim={dim}, start={start}, length={length}) of {size}")
    ranges: list[tuple[int, int] | None] = [None, None, None]
    ranges[dim - 1] = (start, start + length)
    return m.add(node, O.Slice(*ranges), [x], "slice")


@TORCH_IMPORT.rule("operator.getitem", produces=[O.Slice])
def _getitem(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``parts[i]`` of a split / chunk (the part itself), or ``x[:, a:b]`` /
    ``x[:, :, t:b, l:r]`` / ``x[..., t:b, l:r]`` on a feature map: a slice."""
    v, index = args[0], args[1]
    if isinstance(v, (tuple, list)):
        return v[index]
    x, s = _map(m, node, v, "indexing")
    idx = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + [slice(None)] * (4 - len(idx) + 1) + idx[k + 1:]
    if len(idx) > 4 or any(not isinstance(i, slice) for i in idx):
        raise CnnirError(f"index {index!r}: cnnir maps slices with ':' (start:stop) only, "
                         f"no integer, None or tensor index")
    idx += [slice(None)] * (4 - len(idx))
    if idx[0] != slice(None):
        raise CnnirError(f"index {index!r} slices the batch axis; cnnir slices channels, "
                         f"height and width")
    ranges: list[tuple[int, int] | None] = [None, None, None]
    for axis, (sl, size) in enumerate(zip(idx[1:], s)):
        start, stop, step = sl.indices(size)
        if step != 1:
            raise CnnirError(f"index {index!r} has step {sl.step}; cnnir's slice takes "
                             f"contiguous ranges (step 1)")
        if start >= stop:
            raise CnnirError(f"index {index!r} gives an empty axis {axis + 1}")
        ranges[axis] = None if (start, stop) == (0, size) else (start, stop)
    if ranges == [None, None, None]:
        return Layer(x)
    return m.add(node, O.Slice(*ranges), [x], "slice")


# --------------------------------------------------------------------------- channel shuffle


@TORCH_IMPORT.rule("nn.ChannelShuffle", produces=[O.ChannelShuffle])
def _m_shuffle(mod: Any, shape: Any) -> tuple[O.Op, None, str]:
    return O.ChannelShuffle(int(mod.groups)), None, "shuffle"


@TORCH_IMPORT.rule("F.channel_shuffle", "torch.channel_shuffle",
                   "torch.native_channel_shuffle", produces=[O.ChannelShuffle])
def _shuffle_fn(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    x = m.ir(node, args[0], "channel_shuffle")
    groups = int(opt(node, args, kwargs, 1, "groups"))
    return m.add(node, O.ChannelShuffle(groups), [x], "shuffle")


class _Grouped(Layer):
    """``x.view(N, g, C/g, H, W)`` of a feature map: the first step of torchvision's
    ``channel_shuffle``, waiting for ``transpose(1, 2)``.  A pending value, not a layer:
    any other consumer reading it as a feature map gets an error naming the view."""

    __slots__ = ("src", "groups", "where")

    def __init__(self, src: int, groups: int, where: str) -> None:  # no layer id
        self.src, self.groups, self.where = src, groups, where

    @property
    def id(self) -> int:  # type: ignore[override]
        raise CnnirError(f"reads the 5-D view '{self.where}'; cnnir maps a 5-D view only as "
                         f"a channel shuffle: view(N, g, C/g, H, W), transpose(1, 2), "
                         f"view(N, C, H, W)")


class _Shuffled(_Grouped):
    """The ``transpose(1, 2)`` of a :class:`_Grouped`: waits for the view back to 4-D."""

    __slots__ = ()


def _grouped(m: Mapper, node: Any, x: int, dims: list[int]) -> _Grouped:
    c, h, w = m.imp.shape(x)
    g, n = dims[1], dims[2]
    if g == -1 and n > 0 and c % n == 0:
        g = c // n
    elif n == -1 and g > 0 and c % g == 0:
        n = c // g
    if dims[0] not in (BATCH, -1) or dims[3:] != [h, w] or g < 1 or n < 1 or g * n != c:
        readable = ["N" if d == BATCH else d for d in dims]
        raise CnnirError(f"reshape of N x {c}x{h}x{w} to {readable}; cnnir maps a 5-D view "
                         f"only as channel shuffle's (N, g, C/g, H, W)")
    return _Grouped(x, g, node.name)


@TORCH_IMPORT.rule("torch.transpose", "Tensor.transpose", "torch.swapaxes", "Tensor.swapaxes",
                   "torch.swapdims", "Tensor.swapdims", produces=[])
def _transpose(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    v = args[0]
    d0, d1 = (opt(node, args, kwargs, 1, "dim0"), opt(node, args, kwargs, 2, "dim1"))
    if type(v) is _Grouped and {d0 % 5, d1 % 5} == {1, 2}:
        return _Shuffled(v.src, v.groups, node.name)
    if type(v) is _RadixView and {d0 % 4, d1 % 4} == {1, 2}:
        return _RadixT(v.src, v.cardinality, v.radix, node.name)
    raise CnnirError(f"transpose({d0}, {d1}) has no IR op; cnnir maps a transpose only as the "
                     f"middle of a channel shuffle (view(N, g, C/g, H, W), transpose(1, 2), "
                     f"view(N, C, H, W))")


def _unshuffle(m: Mapper, node: Any, v: _Shuffled, dims: list[int]) -> Layer:
    s = m.imp.shape(v.src)
    rest = list(dims[1:])
    if rest.count(-1) == 1 and len(rest) == 3:
        known = int(np.prod([d for d in rest if d != -1]))
        rest[rest.index(-1)] = s.numel // known if known else -1
    if len(dims) != 4 or dims[0] not in (BATCH, -1) or rest != list(s):
        readable = ["N" if d == BATCH else d for d in dims]
        raise CnnirError(f"view of the channel-shuffled 5-D tensor to {readable}; a channel "
                         f"shuffle of N x {s} views back to (N, {', '.join(map(str, s))})")
    return m.add(node, O.ChannelShuffle(v.groups), [v.src], "shuffle")


# --------------------------------------------------------------------------- timm's attention
# views: split attention's radix groups (ResNeSt, SKNet), ECA's channel sequence,
# space-to-depth (TResNet)


class _Pending(Layer):
    """A value between views that cnnir maps only as a whole pattern: not a layer; a
    consumer that reads it as a feature map gets an error naming the pattern."""

    __slots__ = ()

    @property
    def id(self) -> int:  # type: ignore[override]
        raise CnnirError(self.refusal())

    def refusal(self) -> str:  # pragma: no cover - every subclass says its own
        raise NotImplementedError


class _Stacked1(_Pending):
    """``torch.stack(xs, dim=1)`` of n maps of one shape: the ``(N, n, C, H, W)`` tensor
    whose memory is ``torch.cat(xs, 1)``'s (SKNet).  ``.sum(1)`` of it is the sum of
    the maps; the concat is made when a product with the attention needs it."""

    __slots__ = ("parts", "where", "made")

    def __init__(self, parts: list[int], where: str) -> None:  # no layer id
        self.parts, self.where = parts, where
        self.made: int | None = None

    def refusal(self) -> str:
        return (f"reads the stack '{self.where}' (dim=1) as a feature map; cnnir maps a "
                f"stack along dim 1 as the radix groups of split attention: its .sum(1), "
                f"its product with a (N, n, C, 1, 1) attention, softmax(dim=1)")


_GROUPS: tuple[type, ...] = (_Grouped, _Stacked1)


def _as_grouped(m: Mapper, node: Any, v: Any) -> _Grouped:
    """A 5-D radix view: a :class:`_Grouped` as it is, a :class:`_Stacked1` as the
    concat of its maps (made once)."""
    if type(v) is _Stacked1:
        if v.made is None:
            v.made = m.add(node, O.Concat(), v.parts, "concat").id
        made: int = v.made
        return _Grouped(made, len(v.parts), v.where)
    return v


def _stack_groups(m: Mapper, node: Any, xs: Any) -> Any:
    ids = [m.ir(node, x, "stack") for x in xs]
    shapes = {tuple(m.imp.shape(i)) for i in ids}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise CnnirError(f"stacks tensors of shapes {sorted(shapes)} along dim 1; cnnir maps "
                         f"a stack along dim 1 of feature maps of one shape only")
    return Layer(ids[0]) if len(ids) == 1 else _Stacked1(ids, node.name)


def _groups_of(m: Mapper, node: Any, v: Any) -> list[int]:
    """The ``n`` maps of a 5-D radix view, in order: a stack's maps, else channel slices."""
    if type(v) is _Stacked1:
        return list(v.parts)
    c = m.imp.shape(v.src)[0] // v.groups
    return [m.add(node, O.Slice((k * c, (k + 1) * c)), [v.src], "slice").id
            for k in range(v.groups)]


def _sum_groups(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    """``x.sum(1)`` of ``(N, radix, C, H, W)``: the sum of the radix groups (one Add of
    two, one Sum of more), each a channel slice of the grouped map."""
    dim = opt(node, args, kwargs, 1, "dim")
    keep = opt(node, args, kwargs, 2, "keepdim", False)
    if dim not in (1, -4, (1,), [1], (-4,), [-4]) or keep or kwargs.get("dtype") is not None:
        raise CnnirError(f"sum over dim={dim} of a 5-D (N, radix, C, H, W) view; cnnir maps "
                         f"the sum over the radix groups (dim 1, without keepdim / dtype) only")
    parts = _groups_of(m, node, args[0])
    op: O.Op = O.Add() if len(parts) == 2 else O.Sum()
    return m.add(node, op, parts, "add" if len(parts) == 2 else "sum")


def _grouped_binary(m: Mapper, node: Any, op_type: type[O.Op], hint: str, a: Any, b: Any
                    ) -> _Grouped:
    """``x * attn`` of two ``(N, radix, C, ...)`` views with the same radix and ``C``: the
    product of the grouped maps (``radix*C`` channels, broadcast as the 5-D tensors are),
    still grouped."""
    if type(a) not in _GROUPS or type(b) not in _GROUPS:
        other = b if type(a) in _GROUPS else a
        raise CnnirError(f"{hint} of a 5-D (N, radix, C, H, W) view and {describe(other)}; "
                         f"cnnir maps the {hint} of two radix views only")
    ga, gb = _as_grouped(m, node, a), _as_grouped(m, node, b)
    ca, cb = m.imp.shape(ga.src)[0], m.imp.shape(gb.src)[0]
    if ga.groups != gb.groups or ca != cb:
        raise CnnirError(f"{hint} of a ({ga.groups}, {ca // ga.groups}, ...) and a "
                         f"({gb.groups}, {cb // gb.groups}, ...) radix view; cnnir maps the "
                         f"{hint} of radix views of the same radix and channels only")
    return _Grouped(m.add(node, op_type(), [ga.src, gb.src], hint).id, ga.groups, node.name)


class _RadixView(_Pending):
    """``x.view(N, card, radix, -1)`` of a map: the first step of timm's ``rSoftMax``,
    waiting for ``transpose(1, 2)``."""

    __slots__ = ("src", "cardinality", "radix", "where")

    def __init__(self, src: int, cardinality: int, radix: int, where: str) -> None:
        self.src, self.cardinality, self.radix, self.where = src, cardinality, radix, where

    def refusal(self) -> str:
        return (f"reads the 4-D view '{self.where}'; cnnir maps view(N, card, radix, -1) "
                f"only as the start of timm's rSoftMax: transpose(1, 2), softmax(dim=1), "
                f"reshape(N, -1)")


class _RadixT(_RadixView):
    """The ``transpose(1, 2)`` of a :class:`_RadixView`: waits for ``softmax(dim=1)``."""

    __slots__ = ()


class _RadixOut(_Pending):
    """The radix softmax of layer ``layer`` as the 4-D ``(N, radix, card, -1)`` tensor:
    waits for the reshape back to ``(N, -1)`` or ``(N, C, H, W)``."""

    __slots__ = ("layer", "where")

    def __init__(self, layer: int, where: str) -> None:
        self.layer, self.where = layer, where

    def refusal(self) -> str:
        return (f"reads the 4-D softmax '{self.where}'; cnnir maps it when a reshape to "
                f"(N, -1) or (N, C, H, W) completes the radix softmax")


def _radix_softmax(m: Mapper, node: Any, v: Any, dim: Any) -> Layer:
    """``softmax(dim=1)`` of a ``(N, radix, C, H, W)`` view (SKNet) or of rSoftMax's
    transposed ``(N, radix, card, -1)`` view (ResNeSt): a :class:`~cnnir.ops.RadixSoftmax`."""
    if type(v) is _RadixT:
        if not isinstance(dim, int) or dim % 4 != 1:
            raise CnnirError(f"softmax over dim={dim} of rSoftMax's (N, radix, card, -1) "
                             f"view; cnnir maps the softmax over the radix (dim 1)")
        op = O.RadixSoftmax(v.radix, v.cardinality)
        return _RadixOut(m.add(node, op, [v.src], "rsoftmax").id, node.name)
    g = _as_grouped(m, node, v)
    if not isinstance(dim, int) or dim % 5 != 1:
        raise CnnirError(f"softmax over dim={dim} of a 5-D (N, radix, C, H, W) view; cnnir "
                         f"maps the softmax over the radix groups (dim 1)")
    return _Grouped(m.add(node, O.RadixSoftmax(g.groups), [g.src], "rsoftmax").id, g.groups,
                    node.name)


class _Seq(_Pending):
    """``y.view(N, 1, C)`` of the pooled ``Cx1x1`` map ``map`` (ECA): ``nn.Conv1d(1, 1, k)``
    on it is a :class:`~cnnir.ops.ChannelConv1d`, an elementwise gate stays on it, and
    ``view(N, C, 1, 1)`` is the map again."""

    __slots__ = ("map",)

    def __init__(self, i: int) -> None:
        self.map = i

    def refusal(self) -> str:
        return ("reads ECA's view(N, 1, C) of the pooled channels; cnnir maps nn.Conv1d(1, 1, "
                "k) and elementwise activations on it, and view(N, C, 1, 1) back")


def seq_module(m: Mapper, node: Any, mod: Any, v: _Seq) -> _Seq:
    """A ``torch.nn`` layer on ECA's channel sequence: ``nn.Conv1d(1, 1, k, padding=p)``
    is a ``channel_conv1d``; a weightless elementwise layer (the sigmoid gate) is itself."""
    import torch.nn as nn

    shape = m.imp.shape(v.map)
    if type(mod) is nn.Conv1d:
        if (mod.in_channels, mod.out_channels, mod.groups) != (1, 1, 1) or \
                tuple(mod.stride) != (1,) or tuple(mod.dilation) != (1,) or \
                mod.padding_mode != "zeros":
            raise CnnirError(f"{mod!r} on ECA's channel sequence; cnnir maps Conv1d(1, 1, k, "
                             f"padding=p) with stride 1, dilation 1 and zero padding")
        k = int(mod.kernel_size[0])
        pad: Any = mod.padding
        pad = (k - 1) // 2 if pad == "same" else 0 if pad == "valid" else int(pad[0])
        if mod.padding == "same" and (k - 1) % 2:
            raise CnnirError(f"Conv1d kernel {k} with padding='same' pads unevenly; cnnir's "
                             f"channel conv pads both ends alike")
        op: O.Op = O.ChannelConv1d(k, pad, mod.bias is not None)
        weights = _weights(mod)
        hint = "conv"
    else:
        rule = TORCH_IMPORT.lookup(module_key(type(mod)))
        op, arrays, hint = rule(mod, shape)
        if arrays or not op.has(O.ELEMENTWISE):
            raise CnnirError(f"{type(mod).__name__} on ECA's view(N, 1, C); cnnir maps "
                             f"Conv1d(1, 1, k) and weightless elementwise layers there")
        weights = {}
    return _Seq(m.add(node, op, [v.map], hint, qualified_path(str(node.target)),
                      weights or None, leaf=True).id)


@TORCH_IMPORT.rule("nn.Conv1d", produces=[O.ChannelConv1d])
def _m_conv1d(mod: Any, shape: Any) -> tuple[O.Op, dict[str, Any], str]:
    """On a feature map: refused (``seq_module`` maps it on ECA's channel sequence)."""
    raise CnnirError(f"Conv1d on an N x {shape} tensor has no IR op; cnnir maps "
                     f"nn.Conv1d(1, 1, k) on ECA's view(N, 1, C) of pooled channels "
                     f"(a channel_conv1d)")


class _Expanded(_Pending):
    """``y.expand_as(x)`` of a map that broadcasts to ``x``: a broadcasting ``*`` / ``+``
    with ``x`` reads ``y`` itself (the same result); nothing else reads it."""

    __slots__ = ("src", "shape")

    def __init__(self, src: int, shape: Any) -> None:
        self.src, self.shape = src, shape

    def refusal(self) -> str:
        return (f"reads an expand_as of a feature map to {self.shape}; cnnir maps it only as "
                f"an operand of a broadcasting * or + with a tensor of that shape")


@TORCH_IMPORT.rule("Tensor.expand_as", produces=[])
def _expand_as(m: Mapper, node: Any, args: list[Any], kwargs: dict[str, Any]) -> Layer:
    from ..ops import broadcast

    y = m.ir(node, args[0], "expand_as")
    x = m.ir(node, args[1] if len(args) > 1 else kwargs.get("other"), "expand_as")
    sy, sx = m.imp.shape(y), m.imp.shape(x)
    if sy == sx:
        return Layer(y)
    if broadcast(sy, sx) != sx:
        raise CnnirError(f"expand_as of an N x {sy} map to N x {sx}: they do not broadcast")
    return _Expanded(y, sx)


def _unexpand(m: Mapper, v: Any, other: Any) -> Any:
    if type(v) is not _Expanded:
        return v
    if type(other) is Layer and m.imp.shape(other.id) == v.shape:
        return Layer(v.src)
    raise CnnirError(v.refusal())


class _Blocks(_Pending):
    """``x.view(N, C, H/b, b, W/b, b)`` of map ``src``: space-to-depth's first step,
    waiting for ``permute(0, 3, 5, 1, 2, 4)``."""

    __slots__ = ("src", "block", "where")

    def __init__(self, src: int, block: int, where: str) -> None:
        self.src, self.block, self.where = src, block, where

    def refusal(self) -> str:
        return (f"reads the 6-D view '{self.where}'; cnnir maps a 6-D view only as "
                f"space-to-depth: view(N, C, H/b, b, W/b, b), permute(0, 3, 5, 1, 2, 4), "
                f"view(N, C*b*b, H/b, W/b)")


class _BlocksT(_Blocks):
    """The ``permute(0, 3, 5, 1, 2, 4)`` of a :class:`_Blocks`: waits for the view to 4-D."""

    __slots__ = ()


def _readable(dims: list[int]) -> list[Any]:
    return ["N" if d == BATCH else d for d in dims]


def _fill(dims: list[int], total: int) -> list[int] | None:
    """``dims`` (after the batch) with one ``-1`` resolved to make ``total`` elements."""
    rest = list(dims)
    if rest.count(-1) > 1:
        return None
    if -1 in rest:
        known = int(np.prod([d for d in rest if d != -1]))
        if known <= 0 or total % known:
            return None
        rest[rest.index(-1)] = total // known
    return rest if int(np.prod(rest)) == total else None


def _flat_source(m: Mapper, node: Any, x: int) -> int | None:
    """The ``Fx1x1`` map the flat ``(F,)`` layer ``x`` flattened (``x.mean((2, 3))``,
    ``torch.flatten``), or None; the Flatten is dropped when it is the last layer and
    this view its only reader, so viewing it back leaves no dead layer."""
    p = m.imp.nodes[x]
    if not isinstance(p.op, O.Flatten):
        return None
    src = p.inputs[0]
    if tuple(m.imp.shape(src))[1:] != (1, 1):
        return None
    arg = node.args[0] if node.args else None
    if x == len(m.imp.nodes) - 1 and len(getattr(arg, "users", ())) == 1:
        m.imp.nodes.pop()
    return src


def _view_special(m: Mapper, node: Any, x: int, dims: list[int]) -> Any:
    """The views of timm's attention blocks, or None: ``(N, 1, C)`` of pooled channels
    (ECA), ``(N, F, 1, 1)`` of a flattened ``Fx1x1`` map (the map again),
    ``(N, card, radix, -1)`` (rSoftMax), ``(N, C, H/b, b, W/b, b)`` (space-to-depth)."""
    s = tuple(m.imp.shape(x))
    if not dims or dims[0] not in (BATCH, -1):
        return None
    rest = dims[1:]
    n = int(np.prod(s))
    if len(rest) == 2 and rest[0] == 1 and rest[1] in (-1, s[0]) and (
            len(s) == 1 or s[1:] == (1, 1)):
        src = x if len(s) == 3 else _flat_source(m, node, x)
        return None if src is None else _Seq(src)
    if len(s) == 1 and len(rest) == 3 and rest[1:] == [1, 1] and rest[0] in (-1, n):
        src = _flat_source(m, node, x)
        return None if src is None else Layer(src)
    if len(s) == 3 and len(rest) == 3 and rest[0] >= 1 and rest[1] >= 2 and \
            s[0] % (rest[0] * rest[1]) == 0 and rest[2] in (-1, n // (rest[0] * rest[1])):
        return _RadixView(x, rest[0], rest[1], node.name)
    if len(s) == 3 and len(rest) == 5:
        c, h, w = s
        b = rest[2]
        if b >= 1 and h % b == 0 and w % b == 0 and \
                _fill(rest, n) == [c, h // b, b, w // b, b] and rest[4] in (b, -1):
            return _Blocks(x, b, node.name)
    return None


def _view_pending(m: Mapper, node: Any, v: Any, dims: list[int]) -> Any:
    """A view of one of the pending values above (see :func:`_view_special`)."""
    if type(v) is _Seq:
        s = m.imp.shape(v.map)
        if dims[0] in (BATCH, -1) and _fill(dims[1:], s[0]) == [s[0], 1, 1]:
            return Layer(v.map)
        if dims[0] in (BATCH, -1) and _fill(dims[1:], s[0]) == [1, s[0]]:
            return v
        raise CnnirError(f"view of ECA's (N, 1, {s[0]}) sequence to {_readable(dims)}; "
                         f"cnnir maps the view back to (N, {s[0]}, 1, 1)")
    if type(v) is _RadixOut:
        s = m.imp.shape(v.layer)
        if dims[0] in (BATCH, -1) and _fill(dims[1:], s.numel) == [s.numel]:
            return m.add(node, O.Flatten(), [v.layer], "flatten") if len(s) > 1 else \
                Layer(v.layer)
        if dims[0] in (BATCH, -1) and _fill(dims[1:], s.numel) == list(s):
            return Layer(v.layer)
        raise CnnirError(f"reshape of rSoftMax's 4-D softmax to {_readable(dims)}; cnnir "
                         f"maps the reshape back to (N, -1) or (N, {', '.join(map(str, s))})")
    if type(v) is _BlocksT:
        c, h, w = m.imp.shape(v.src)
        b = v.block
        want = [c * b * b, h // b, w // b]
        if dims[0] in (BATCH, -1) and _fill(dims[1:], c * h * w) == want:
            return m.add(node, O.SpaceToDepth(b), [v.src], "s2d")
        raise CnnirError(f"view of space-to-depth's permuted 6-D tensor to {_readable(dims)}; "
                         f"it views back to (N, {', '.join(map(str, want))})")
    raise CnnirError(v.refusal())


def pending_shape(m: Mapper, v: Any) -> tuple[int, ...] | None:
    """The full shape (batch first) of a pending view, for ``x.shape`` reads; None for
    any other value."""
    if type(v) is _Stacked1:
        return (BATCH, len(v.parts), *m.imp.shape(v.parts[0]))
    if type(v) is _Grouped:
        c, h, w = m.imp.shape(v.src)
        return (BATCH, v.groups, c // v.groups, h, w)
    if type(v) is _Seq:
        return (BATCH, 1, m.imp.shape(v.map)[0])
    if type(v) is _Expanded:
        return (BATCH, *v.shape)
    return None


__all__ = ["TORCH_IMPORT", "Layer", "TensorAttr", "Stacked", "ChannelsLast", "Mapper",
           "describe", "opt", "module_key", "function_key", "channels_last_module",
           "seq_module", "pending_shape"]


__all__ = ["TORCH_IMPORT", "Layer", "TensorAttr", "Stacked", "ChannelsLast", "MaxPadded",
           "Mapper", "attr_params", "attr_numel", "same_pads",
           "describe", "opt", "module_key", "function_key", "channels_last_module"]
