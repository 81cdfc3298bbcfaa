"""PyTorch lowering rules: what each IR op becomes, one :class:`TorchRule` per op class.

:data:`TORCH` (``RuleTable("pytorch")``) maps every op class to its rule; a rule
gives everything both emitters need -- the layer constructor (:class:`Ctor`, whose
``state_dict`` keys are the op's parameter names), the calls of the forward pass
(:class:`Call`: module, ``F.``/``torch.`` function, tensor method or operator),
and two facts the plan asks of a producer (``overwritable``) or of an activation
(``inplace``).  :func:`make_plan` walks the graph and asks each node's rule; the
module builder (:mod:`cnnir.backends.pytorch`) and the source writer
(:mod:`cnnir.backends.pytorch_source`) only render the plan.  Torch is not imported.

Op by op:

* Convolutions with asymmetric padding (``"same"`` with an even kernel) get an
  explicit zero pad, ``F.pad(x, (left, right, top, bottom))``, before a conv with
  ``padding=0``; symmetric padding stays in the conv.
* Max pooling with asymmetric padding: ``F.pad(x, ..., value=-inf)`` and a pool
  with no padding, in floor mode, with the end padding extended so that the
  output has the IR's size.  That is exact in ``ceil_mode`` too: PyTorch clips a
  ceil-mode window at the input's end, and ``-inf`` never wins a max; every window
  the IR keeps starts inside the input or the begin padding, so none is all pad.
* Average pooling with asymmetric padding.  PyTorch's divisor is the window's
  overlap with the padded extent ``[-begin, size + end)`` with
  ``count_include_pad=True`` (a ceil-mode window hanging over the end is not
  counted past the padding), and its overlap with the input ``[0, size)`` with
  ``count_include_pad=False``; cnnir keeps those semantics for asymmetric
  padding.  When every divisor is the whole kernel (padding counted, no ceil
  overhang), it is ``F.pad`` then ``nn.AvgPool2d(k, s)``.  Otherwise the output
  is a window *sum* (``F.avg_pool2d(..., divisor_override=1)`` of the
  zero-padded input) divided by a window *count* computed the same way from a
  ones map padded with ones (padding counted) or zeros (not counted).
* ``fused_conv2d`` (from ``fuse-conv-bn-relu``): one ``nn.Conv2d`` with a bias
  (the folded BatchNorm shift) followed by the activation applied in place
  (``F.relu(x, inplace=True)``, ``x.sigmoid_()``...): the activation rule's
  ``inplace`` form.
* Activations run in place (``nn.ReLU(inplace=True)``, as torchvision does) when
  that is safe: the producer's rule is ``overwritable`` (a conv, BatchNorm, scale,
  linear, add, sum, mean, concat, pool or resize: ops whose backward does not read their
  output, and which never return a view of their input), the activation is its
  only user, and the producer is not a graph output.  Residual adds run in place
  (``out += identity``) on the same condition, when the in-place operand already
  has the output's shape.
* ``sum`` / ``mean`` of n inputs are ``a + b + c ...`` (``/ n``); ``pad`` is ``F.pad``
  (channels and H/W, with its value); ``drop_path`` is ``nn.Identity`` (torch.nn has
  no stochastic depth; the inference identity); ``scale`` is the helper layer
  ``Scale`` (:data:`~cnnir.backends.torch_plan.HELPERS`, written into the emitted
  source) holding ``weight`` / ``bias`` as the op declares them.
* ``global_avgpool`` is ``nn.AdaptiveAvgPool2d(1)``, ``flatten`` is
  ``torch.flatten(x, 1)``, ``concat`` ``torch.cat([...], 1)``, ``softmax``
  ``nn.Softmax(dim=1)``, ``upsample`` ``nn.Upsample(scale_factor=(sh, sw))``.
* ``slice`` is tensor indexing ``x[:, c0:c1, h0:h1]`` (a view: nothing writes into
  it in place); ``channel_shuffle`` is torchvision's view / transpose / reshape,
  ``space_to_depth`` timm's view / permute / reshape, ``radix_softmax`` timm's
  ``rSoftMax`` (view / transpose / softmax / reshape), ``channel_conv1d`` ECA's
  ``view(N, 1, C)``, ``nn.Conv1d``, ``view(N, C, 1, 1)``.

An op class without a rule raises :class:`~cnnir.errors.BackendError`; nothing is
skipped or guessed (rules are looked up by exact class: a new op needs its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, cast

from .. import ops as O
from ..errors import BackendError
from ..ir import Graph
from ..rules import RuleTable
from .torch_plan import Call, Ctor, Lowering, Plan, Ref, Step, kw, pair_arg

Lower = Callable[[Lowering, str, Any], Step]
InPlace = Callable[[Any, Ref], Call]


@dataclass(frozen=True)
class TorchRule:
    """How one op class becomes PyTorch."""

    #: ``lower(lowering, node, op)``: the node's :class:`Step` (submodule and calls)
    lower: Lower
    #: ``overwritable(op)``: may an in-place user (activation, ``+=``) that is the
    #: node's only user write into its output?  Only for ops whose backward does
    #: not read their output and that never return a view of their input.
    overwritable: Callable[[Any], bool]
    #: activations: the in-place functional form applied after a fused conv
    inplace: InPlace | None = None


TORCH: RuleTable[TorchRule] = RuleTable("pytorch")


def key(op_type: type) -> Hashable:
    """An op class as a table key (mypy does not take a ``type[Op]`` as Hashable)."""
    return cast(Hashable, op_type)


def _never(op: Any) -> bool:
    return False


def _always(op: Any) -> bool:
    return True


def lowering(*op_types: type[O.Op], overwritable: bool | Callable[[Any], bool] = False,
             inplace: InPlace | None = None) -> Callable[[Lower], Lower]:
    """Decorator: ``fn`` lowers each of ``op_types`` (see :class:`TorchRule`)."""
    over = overwritable if callable(overwritable) else (_always if overwritable else _never)

    def register(fn: Lower) -> Lower:
        for t in op_types:
            TORCH.add(key(t), TorchRule(fn, over, inplace))
        return fn

    return register


# --------------------------------------------------------------------------- io, conv, norm


@lowering(O.Input)
def _input(p: Lowering, n: str, op: O.Input) -> Step:
    return Step(n, [])


def _conv_calls(p: Lowering, n: str, conv: O.Conv2d, bias: bool) -> tuple[list[Call], Ctor]:
    """``nn.Conv2d`` (and an ``F.pad`` first for asymmetric padding)."""
    (src,) = p.g.inputs(n)
    t, left, b, r = conv.padding
    symmetric = t == b and left == r
    kwargs: dict[str, Any] = {"kernel_size": pair_arg(conv.kernel)}
    if conv.stride != (1, 1):
        kwargs["stride"] = pair_arg(conv.stride)
    if symmetric and (t or left):
        kwargs["padding"] = pair_arg((t, left))
    if conv.dilation != (1, 1):
        kwargs["dilation"] = pair_arg(conv.dilation)
    if conv.groups != 1:
        kwargs["groups"] = conv.groups
    if not bias:
        kwargs["bias"] = False
    ctor = Ctor("Conv2d", (p.shape(src)[0], conv.out_channels), tuple(kwargs.items()))
    calls = []
    x: Any = Ref(src)
    if not symmetric:
        calls.append(Call("function", "F.pad", (x, (left, r, t, b))))
        x = Ref(f"{n}#0")
    calls.append(Call("module", "", (x,)))
    return calls, ctor


@lowering(O.Conv2d, overwritable=True)
def _conv(p: Lowering, n: str, op: O.Conv2d) -> Step:
    calls, ctor = _conv_calls(p, n, op, op.bias)
    return p.step(n, calls, ctor)


def _fused_overwritable(op: O.FusedConv2d) -> bool:
    return op.act is None  # the activation ran in place already


@lowering(O.FusedConv2d, overwritable=_fused_overwritable)
def _fused(p: Lowering, n: str, op: O.FusedConv2d) -> Step:
    calls, ctor = _conv_calls(p, n, op.conv, True)
    act = op.act
    if act is not None:
        rule = TORCH.get(key(type(act)))
        if rule is None or rule.inplace is None:
            raise BackendError(f"the PyTorch backend has no in-place form of the fused "
                               f"activation '{act.kind}'")
        calls.append(rule.inplace(act, Ref(f"{n}#{len(calls) - 1}")))
    return p.step(n, calls, ctor)


@lowering(O.ConvTranspose2d, overwritable=True)
def _conv_t(p: Lowering, n: str, op: O.ConvTranspose2d) -> Step:
    (src,) = p.g.inputs(n)
    kwargs: dict[str, Any] = {"kernel_size": pair_arg(op.kernel)}
    if op.stride != (1, 1):
        kwargs["stride"] = pair_arg(op.stride)
    if op.padding != (0, 0):
        kwargs["padding"] = pair_arg(op.padding)
    if op.output_padding != (0, 0):
        kwargs["output_padding"] = pair_arg(op.output_padding)
    if op.groups != 1:
        kwargs["groups"] = op.groups
    if not op.bias:
        kwargs["bias"] = False
    if op.dilation != (1, 1):
        kwargs["dilation"] = pair_arg(op.dilation)
    ctor = Ctor("ConvTranspose2d", (p.shape(src)[0], op.out_channels), tuple(kwargs.items()))
    return p.module_step(n, ctor)


@lowering(O.BatchNorm2d, overwritable=True)
def _bn(p: Lowering, n: str, op: O.BatchNorm2d) -> Step:
    (src,) = p.g.inputs(n)
    kwargs = {}
    if op.eps != 1e-5:
        kwargs["eps"] = op.eps
    if op.momentum != 0.1:
        kwargs["momentum"] = op.momentum
    return p.module_step(n, Ctor("BatchNorm2d", (p.shape(src)[0],), tuple(kwargs.items())))


@lowering(O.LocalResponseNorm)
def _lrn(p: Lowering, n: str, op: O.LocalResponseNorm) -> Step:
    kwargs = {"alpha": op.alpha, "beta": op.beta, "k": op.k}
    return p.module_step(n, Ctor("LocalResponseNorm", (op.size,), tuple(kwargs.items())))


# --------------------------------------------------------------------------- activations


def activation(op_type: type[O.Op], module: str, inplace: InPlace, *,
               takes_inplace: bool = True,
               args: Callable[[Any], tuple[Any, ...]] | None = None) -> None:
    """Register activation ``op_type``: ``nn.<module>(*args(op))``, with
    ``inplace=True`` where the module takes it and the producer may be overwritten;
    ``inplace`` is the functional form used after a fused conv."""

    def lower(p: Lowering, n: str, op: Any) -> Step:
        (src,) = p.g.inputs(n)
        run_inplace = takes_inplace and p.can_overwrite(src, n)
        ctor = Ctor(module, args(op) if args else (), kw(inplace=True) if run_inplace else ())
        return p.module_step(n, ctor, run_inplace)

    TORCH.add(key(op_type), TorchRule(lower, _never, inplace))


def _function(name: str) -> InPlace:
    """``F.relu(x, inplace=True)``."""
    return lambda op, x: Call("function", name, (x,), kw(inplace=True), inplace=True)


def _method(name: str) -> InPlace:
    """``x.sigmoid_()``."""
    return lambda op, x: Call("method", name, (x,), inplace=True)


def _leaky_inplace(op: O.LeakyReLU, x: Ref) -> Call:
    return Call("function", "F.leaky_relu", (x, op.negative_slope), kw(inplace=True),
                inplace=True)


activation(O.ReLU, "ReLU", _function("F.relu"))
activation(O.LeakyReLU, "LeakyReLU", _leaky_inplace, args=lambda op: (op.negative_slope,))
activation(O.ReLU6, "ReLU6", _function("F.relu6"))
activation(O.Sigmoid, "Sigmoid", _method("sigmoid_"), takes_inplace=False)
activation(O.HardSigmoid, "Hardsigmoid", _function("F.hardsigmoid"))
activation(O.Tanh, "Tanh", _method("tanh_"), takes_inplace=False)
activation(O.HardSwish, "Hardswish", _function("F.hardswish"))
activation(O.SiLU, "SiLU", _function("F.silu"))


@lowering(O.GELU)
def _gelu(p: Lowering, n: str, op: O.GELU) -> Step:
    """``nn.GELU()`` / ``nn.GELU(approximate="tanh")``; never in place (it has no such form)."""
    kwargs = () if op.approximate == "none" else kw(approximate=op.approximate)
    return p.module_step(n, Ctor("GELU", (), kwargs))


@lowering(O.LayerNorm2d)
def _layernorm2d(p: Lowering, n: str, op: O.LayerNorm2d) -> Step:
    """``x.permute(0, 2, 3, 1)``, ``nn.LayerNorm(C, eps)``, ``.permute(0, 3, 1, 2)``:
    torchvision's ConvNeXt form (state_dict ``weight`` and ``bias``)."""
    (src,) = p.g.inputs(n)
    kwargs = () if op.eps == 1e-5 else kw(eps=op.eps)
    calls = [Call("method", "permute", (Ref(src), 0, 2, 3, 1), hint="nhwc"),
             Call("module", "", (Ref(f"{n}#0"),)),
             Call("method", "permute", (Ref(f"{n}#1"), 0, 3, 1, 2))]
    return p.step(n, calls, Ctor("LayerNorm", (p.shape(src)[0],), kwargs))


@lowering(O.Softmax)
def _softmax(p: Lowering, n: str, op: O.Softmax) -> Step:
    return p.module_step(n, Ctor("Softmax", (), kw(dim=1)))


@lowering(O.RadixSoftmax)
def _radix_softmax(p: Lowering, n: str, op: O.RadixSoftmax) -> Step:
    """timm's ``rSoftMax``: ``x.view(-1, card, radix, C'*H*W)``, ``.transpose(1, 2)``,
    ``.softmax(1)``, ``.reshape(-1, C, H, W)``."""
    (src,) = p.g.inputs(n)
    c, h, w = p.shape(src)
    r, g = op.radix, op.cardinality
    return p.step(n, [Call("method", "view", (Ref(src), -1, g, r, c * h * w // (r * g)),
                           hint="radix"),
                      Call("function", "torch.transpose", (Ref(f"{n}#0"), 1, 2), hint="radix"),
                      Call("method", "softmax", (Ref(f"{n}#1"), 1), hint="radix"),
                      Call("method", "reshape", (Ref(f"{n}#2"), -1, c, h, w))])


# --------------------------------------------------------------------------- pooling


def _pool_kwargs(op: O.MaxPool2d | O.AvgPool2d) -> dict[str, Any]:
    """The pool module's arguments; padding and ``ceil_mode`` only where the padding is
    symmetric (asymmetric padding is an explicit ``F.pad`` before a pool without any)."""
    kwargs: dict[str, Any] = {}
    if op.stride != op.kernel:
        kwargs["stride"] = pair_arg(op.stride)
    t, left, b, r = op.padding
    if t == b and left == r:
        if t or left:
            kwargs["padding"] = pair_arg((t, left))
        if op.ceil_mode:
            kwargs["ceil_mode"] = True
    return kwargs


@lowering(O.MaxPool2d, overwritable=True)
def _maxpool(p: Lowering, n: str, op: O.MaxPool2d) -> Step:
    t, left, b, r = op.padding
    kwargs = _pool_kwargs(op)
    if t == b and left == r:
        return p.module_step(n, Ctor("MaxPool2d", (pair_arg(op.kernel),), tuple(kwargs.items())))
    (src,) = p.g.inputs(n)
    end_h, end_w = p.window_end_pads(n, op)
    pad = Call("function", "F.pad", (Ref(src), (left, end_w, t, end_h)),
               kw(value=-math.inf))
    pool = Call("module", "", (Ref(f"{n}#0"),))
    return p.step(n, [pad, pool], Ctor("MaxPool2d", (pair_arg(op.kernel),),
                                       tuple(kwargs.items())))


@lowering(O.AvgPool2d, overwritable=True)
def _avgpool(p: Lowering, n: str, op: O.AvgPool2d) -> Step:
    t, left, b, r = op.padding
    k = pair_arg(op.kernel)
    kwargs = _pool_kwargs(op)
    if t == b and left == r:
        if not op.count_include_pad and (t or left):
            kwargs["count_include_pad"] = False
        return p.module_step(n, Ctor("AvgPool2d", (k,), tuple(kwargs.items())))
    (src,) = p.g.inputs(n)
    end_h, end_w = p.window_end_pads(n, op)
    over_h, over_w = end_h - b, end_w - r  # ceil-mode overhang past the padding
    if op.count_include_pad and not over_h and not over_w:
        pad = Call("function", "F.pad", (Ref(src), (left, r, t, b)))
        pool = Call("module", "", (Ref(f"{n}#0"),))
        return p.step(n, [pad, pool], Ctor("AvgPool2d", (k,), tuple(kwargs.items())))
    # window sum / window count, both over the explicitly padded extent: the count
    # map pads a ones map with ones (padding counted) or zeros, then zeros past the
    # padding for a ceil-mode overhang
    stride = pair_arg(op.stride)
    pool_kw = kw(divisor_override=1)
    fill = 1.0 if op.count_include_pad else 0.0
    calls: list[Call] = []

    def add(kind: str, target: str, args: tuple[Any, ...], kwargs: Any = (),
            hint: str = "") -> Ref:
        calls.append(Call(kind, target, args, kwargs, hint=hint))
        return Ref(f"{n}#{len(calls) - 1}")

    ones = add("operator", "getitem", (Ref(src), (slice(None, 1), slice(None, 1))),
               hint="count")
    ones = add("function", "torch.ones_like", (ones,), hint="count")
    ones = add("function", "F.pad", (ones, (left, r, t, b)), kw(value=fill), hint="count")
    if over_h or over_w:
        ones = add("function", "F.pad", (ones, (0, over_w, 0, over_h)), hint="count")
    count = add("function", "F.avg_pool2d", (ones, k, stride), pool_kw, hint="count")
    total = add("function", "F.pad", (Ref(src), (left, end_w, t, end_h)))
    total = add("function", "F.avg_pool2d", (total, k, stride), pool_kw)
    add("operator", "truediv", (total, count))
    return p.step(n, calls)


@lowering(O.AdaptiveAvgPool2d, overwritable=True)
def _adaptive(p: Lowering, n: str, op: O.AdaptiveAvgPool2d) -> Step:
    return p.module_step(n, Ctor("AdaptiveAvgPool2d", (pair_arg(op.output_size),)))


@lowering(O.GlobalAvgPool, overwritable=True)
def _gap(p: Lowering, n: str, op: O.GlobalAvgPool) -> Step:
    return p.module_step(n, Ctor("AdaptiveAvgPool2d", (1,)))


@lowering(O.Upsample, overwritable=True)
def _upsample(p: Lowering, n: str, op: O.Upsample) -> Step:
    sh, sw = (float(s) for s in op.scale)
    kwargs: dict[str, Any] = {"scale_factor": sh if sh == sw else (sh, sw), "mode": op.mode}
    if op.size is not None:
        kwargs = {"size": op.size, "mode": op.mode}
    if op.mode == "bilinear":
        kwargs["align_corners"] = op.align_corners
    return p.module_step(n, Ctor("Upsample", (), tuple(kwargs.items())))


# --------------------------------------------------------------------------- shape-only, dense


@lowering(O.Dropout)
def _dropout(p: Lowering, n: str, op: O.Dropout) -> Step:
    return p.module_step(n, Ctor("Dropout", (op.p,) if op.p != 0.5 else ()))


@lowering(O.Identity)
def _identity(p: Lowering, n: str, op: O.Identity) -> Step:
    return p.module_step(n, Ctor("Identity"))


@lowering(O.Flatten)
def _flatten(p: Lowering, n: str, op: O.Flatten) -> Step:
    (src,) = p.g.inputs(n)
    return p.step(n, [Call("function", "torch.flatten", (Ref(src), 1))])


@lowering(O.Linear, overwritable=True)
def _linear(p: Lowering, n: str, op: O.Linear) -> Step:
    (src,) = p.g.inputs(n)
    kwargs = () if op.bias else kw(bias=False)
    return p.module_step(n, Ctor("Linear", (p.shape(src)[0], op.out_features), kwargs))


@lowering(O.Slice)
def _slice(p: Lowering, n: str, op: O.Slice) -> Step:
    """``x[:, c0:c1, h0:h1, w0:w1]`` (whole trailing axes left out): a view of the input,
    so never overwritable."""
    (src,) = p.g.inputs(n)
    index = [slice(None)] + [slice(None) if r is None else slice(*r) for r in op.ranges]
    while index[-1] == slice(None):
        index.pop()
    return p.step(n, [Call("operator", "getitem", (Ref(src), tuple(index)))])


@lowering(O.ChannelShuffle)
def _channel_shuffle(p: Lowering, n: str, op: O.ChannelShuffle) -> Step:
    """torchvision's form: ``x.view(-1, g, C/g, H, W)``, ``torch.transpose(x, 1, 2)``,
    ``.reshape(-1, C, H, W)`` (a copy).  A permutation, so exact; torch.fx traces it and
    both ONNX exporters export it (``nn.ChannelShuffle`` the TorchScript one cannot)."""
    (src,) = p.g.inputs(n)
    c, h, w = p.shape(n)
    g = op.groups
    return p.step(n, [Call("method", "view", (Ref(src), -1, g, c // g, h, w), hint="grouped"),
                      Call("function", "torch.transpose", (Ref(f"{n}#0"), 1, 2),
                           hint="grouped"),
                      Call("method", "reshape", (Ref(f"{n}#1"), -1, c, h, w))])


@lowering(O.SpaceToDepth)
def _space_to_depth(p: Lowering, n: str, op: O.SpaceToDepth) -> Step:
    """timm's form: ``x.view(-1, C, H/b, b, W/b, b)``, ``.permute(0, 3, 5, 1, 2, 4)``,
    ``.reshape(-1, C*b*b, H/b, W/b)`` (a copy): a permutation, so exact; both ONNX
    exporters export it."""
    (src,) = p.g.inputs(n)
    c, h, w = p.shape(src)
    b = op.block
    return p.step(n, [Call("method", "view", (Ref(src), -1, c, h // b, b, w // b, b),
                           hint="blocks"),
                      Call("method", "permute", (Ref(f"{n}#0"), 0, 3, 5, 1, 2, 4),
                           hint="blocks"),
                      Call("method", "reshape", (Ref(f"{n}#1"), -1, c * b * b, h // b, w // b))])


@lowering(O.ChannelConv1d, overwritable=True)
def _channel_conv1d(p: Lowering, n: str, op: O.ChannelConv1d) -> Step:
    """ECA's form: ``x.view(-1, 1, C)``, ``nn.Conv1d(1, 1, k, padding=p)``,
    ``.view(-1, C_out, 1, 1)``."""
    (src,) = p.g.inputs(n)
    c = p.shape(src)[0]
    kwargs = kw(padding=op.padding) if op.padding else ()
    if not op.bias:
        kwargs += kw(bias=False)
    ctor = Ctor("Conv1d", (1, 1, op.kernel), kwargs)
    return p.step(n, [Call("method", "view", (Ref(src), -1, 1, c), hint="seq"),
                      Call("module", "", (Ref(f"{n}#0"),), hint="seq"),
                      Call("method", "view", (Ref(f"{n}#1"), -1, p.shape(n)[0], 1, 1))], ctor)


# --------------------------------------------------------------------------- merges


@lowering(O.Concat, overwritable=True)
def _concat(p: Lowering, n: str, op: O.Concat) -> Step:
    refs = [Ref(s) for s in p.g.inputs(n)]
    return p.step(n, [Call("function", "torch.cat", (refs, 1))])


@lowering(O.Add, overwritable=True)
def _add(p: Lowering, n: str, op: O.Add) -> Step:
    a, b = p.g.inputs(n)
    out = p.shape(n)
    if a != b:
        # add is commutative (bit for bit): write into whichever operand may be overwritten
        for x, y in ((a, b), (b, a)):
            if p.shape(x) == out and p.can_overwrite(x, n):
                return p.step(n, [Call("method", "add_", (Ref(x), Ref(y)), inplace=True)])
    return p.step(n, [Call("operator", "add", (Ref(a), Ref(b)))])


@lowering(O.Mul)
def _mul(p: Lowering, n: str, op: O.Mul) -> Step:
    a, b = p.g.inputs(n)
    return p.step(n, [Call("operator", "mul", (Ref(a), Ref(b)))])


# --------------------------------------------------------------- sum, mean, scale, pad, drop-path


def _chain(n: str, ins: Any) -> list[Call]:
    """``a + b + c ...`` left to right, each sum a temporary of node ``n``."""
    calls = [Call("operator", "add", (Ref(ins[0]), Ref(ins[1])))]
    for x in ins[2:]:
        calls.append(Call("operator", "add", (Ref(f"{n}#{len(calls) - 1}"), Ref(x))))
    return calls


@lowering(O.Sum, overwritable=True)
def _sum(p: Lowering, n: str, op: O.Sum) -> Step:
    return p.step(n, _chain(n, p.g.inputs(n)))


@lowering(O.Mean, overwritable=True)
def _mean(p: Lowering, n: str, op: O.Mean) -> Step:
    ins = p.g.inputs(n)
    calls = _chain(n, ins)
    calls.append(Call("operator", "truediv", (Ref(f"{n}#{len(calls) - 1}"), len(ins))))
    return p.step(n, calls)


@lowering(O.Scale, overwritable=True)
def _scale(p: Lowering, n: str, op: O.Scale) -> Step:
    """The helper layer ``Scale`` (:data:`~cnnir.backends.torch_plan.HELPERS`): its
    ``weight`` / ``bias`` are the op's arrays, ``x * weight + bias``."""
    shapes = op.params([p.g.shape(p.g.inputs(n)[0])])
    shape = next(iter(shapes.values()))
    kwargs = {}
    if not op.scale:
        kwargs["weight"] = False
    if op.bias:
        kwargs["bias"] = True
    if op.divide:
        kwargs["divide"] = True
    if op.fixed:
        kwargs["fixed"] = True
    return p.module_step(n, Ctor("Scale", (shape,), tuple(kwargs.items())))


@lowering(O.Pad)
def _pad(p: Lowering, n: str, op: O.Pad) -> Step:
    (src,) = p.g.inputs(n)
    t, left, b, r = op.padding
    c0, c1 = op.channels
    pads: tuple[int, ...] = (left, r, t, b, c0, c1) if c0 or c1 else (left, r, t, b)
    kwargs = kw(value=op.value) if op.value != 0 else ()
    if op.mode != "constant":
        kwargs = kw(mode=op.mode)
    return p.step(n, [Call("function", "F.pad", (Ref(src), pads), kwargs)])


@lowering(O.DropPath)
def _drop_path(p: Lowering, n: str, op: O.DropPath) -> Step:
    """``nn.Identity``: stochastic depth is the identity at inference (torch.nn has no
    drop-path layer; torchvision's ``StochasticDepth`` lives outside torch)."""
    return p.module_step(n, Ctor("Identity"))


# --------------------------------------------------------------------------- the walk


def rule_for(graph: Graph, n: str) -> TorchRule:
    """Node ``n``'s rule; an op class without one is a located BackendError."""
    op = graph.op(n)
    rule = TORCH.get(key(type(op)))
    if rule is None:
        reason = TORCH.refused().get(key(type(op)))
        if reason is not None:  # declared on purpose: say why
            raise BackendError(f"the PyTorch backend does not emit op kind '{op.kind}' "
                               f"(node '{n}'): {reason}", loc=graph.loc(n), node=n)
        raise BackendError(
            f"the PyTorch backend has no rule for op kind '{op.kind}' "
            f"({type(op).__name__}) at node '{n}'", loc=graph.loc(n), node=n)
    return rule


def make_plan(graph: Graph) -> Plan:
    """The :class:`Plan` of ``graph``; shapes are inferred first where missing (as
    :func:`cnnir.analysis.analyze` does), so ``to_module(model.build())`` works."""
    if any(graph.meta(n).get("shape") is None for n in graph.nodes()):
        from ..passes.infer_shapes import InferShapes

        InferShapes().run(graph)

    def overwritable(n: str) -> bool:
        return rule_for(graph, n).overwritable(graph.op(n))

    low = Lowering(graph, overwritable)
    inputs = [n for n in graph.nodes() if isinstance(graph.op(n), O.Input)]
    plan = Plan(graph.name, inputs, list(graph.outputs))
    for n in graph.nodes():
        plan.steps.append(rule_for(graph, n).lower(low, n, graph.op(n)))
    return plan


__all__ = ["TORCH", "TorchRule", "lowering", "activation", "make_plan", "rule_for"]
