"""The PyTorch layer plan, and the standalone ``.py`` source emitter.

Both PyTorch emitters -- :func:`cnnir.backends.pytorch.to_module` (a ``torch.fx``
GraphModule) and :func:`to_source` (a readable ``.py`` file) -- are driven by one
:class:`Plan`, built here without importing torch.  Sharing the plan is what makes
the two emit the same submodules, the same ``state_dict`` keys in the same order,
and the same sequence of operations (bit-identical outputs).

The plan, per IR node
---------------------
* a submodule (:class:`Ctor`, e.g. ``nn.Conv2d(64, 128, kernel_size=3, padding=1)``)
  at a dotted module path, for every layer but the pure functions (``input``,
  ``add``, ``mul``, ``concat``, ``flatten``, and an asymmetric average pool that
  needs a divisor map);
* a list of :class:`Call` s computing the node's output from its inputs.

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
  (``F.relu(x, inplace=True)``, ``x.sigmoid_()``...).
* Activations run in place (``nn.ReLU(inplace=True)``, as torchvision does) when
  that is safe: the producer is a conv, BatchNorm, linear, add, concat, pool or
  resize (ops whose backward does not read their output, and which never return
  a view of their input), the activation is its only user, and the producer is
  not a graph output.  Residual adds run in place (``out += identity``) on the
  same condition, when the in-place operand already has the output's shape.
* ``global_avgpool`` is ``nn.AdaptiveAvgPool2d(1)``, ``flatten`` is
  ``torch.flatten(x, 1)``, ``concat`` ``torch.cat([...], 1)``, ``softmax``
  ``nn.Softmax(dim=1)``, ``upsample`` ``nn.Upsample(scale_factor=(sh, sw))``.

An op kind without a rule raises :class:`~cnnir.errors.BackendError`; nothing is
skipped or guessed.

Module names
------------
A node ``"a/b/c"`` lives at module path ``"a.b.c"`` (``state_dict`` key
``"a.b.c.weight"``); the intermediate modules are plain ``nn.Module`` containers.
Each path component is made a usable attribute name by one rule:

1. every character outside ``[A-Za-z0-9_]`` (dots, dashes, spaces...) becomes ``_``;
2. a name starting with a digit gets a leading ``_`` (``3a`` -> ``_3a``), but an
   all-digit name is kept: it is a sequence index, as ``nn.Sequential`` names its
   children, so a model ported from PyTorch keeps its keys (``layer1.0.conv1``;
   the generated code reaches it as ``getattr(self.layer1, "0")``);
3. a Python keyword, or an attribute of ``nn.Module`` / ``torch.fx.GraphModule``
   (``forward``, ``training``, ``graph``, ``code``...), gets a trailing ``_``;
4. two different components that end up with the same name under one parent
   (``a-b`` and ``a_b``, or a layer and a block both named ``stem``) are told
   apart by ``_2``, ``_3``... in the order they first appear in the graph.

Names that need none of this (everything the DSL's own naming produces, such as
``inception_3a.b2_3x3.weight``) are kept as they are.
"""

from __future__ import annotations

import keyword
import linecache
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import ops as O
from ..errors import BackendError
from ..ir import Graph

# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Ref:
    """A reference to an earlier value: an IR node's output or a temporary."""

    value: str


@dataclass(frozen=True)
class Ctor:
    """A layer constructor ``nn.<cls>(*args, **kwargs)`` (arguments at their defaults left out)."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Call:
    """One operation of the forward pass.

    ``kind`` is ``"module"`` (``target`` a module path), ``"function"``
    (``"F.pad"``, ``"torch.cat"``...), ``"method"`` (``"add_"``, ``"sigmoid_"``)
    or ``"operator"`` (``"add"``, ``"mul"``, ``"truediv"``, ``"getitem"``).
    ``inplace`` calls write into their first argument and return it.
    """

    kind: str
    target: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...] = ()
    inplace: bool = False
    #: a name for a temporary result (the source emitter's variable name)
    hint: str = ""


@dataclass
class Step:
    """What one IR node becomes: an optional submodule and the calls computing it."""

    node: str
    calls: list[Call]
    #: the node's submodule, if it has one
    path: str | None = None
    ctor: Ctor | None = None

    def value(self, i: int) -> str:
        """The name of call ``i``'s result: the node itself for the last call."""
        return self.node if i == len(self.calls) - 1 else f"{self.node}#{i}"


@dataclass
class Plan:
    """The whole network as submodules and calls, in topological order."""

    name: str
    inputs: list[str]
    outputs: list[str]
    steps: list[Step] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, str]:
        """IR node -> module path, for the nodes that own a submodule."""
        return {s.node: s.path for s in self.steps if s.path is not None}


# --------------------------------------------------------------------------- names

#: attributes of ``nn.Module`` and ``torch.fx.GraphModule`` (torch 2.13) that a
#: submodule must not shadow; a static list, so names do not depend on the torch version
RESERVED = frozenset("""
T_destination _apply _backward_hooks _backward_pre_hooks _boxed_call _buffers _call_impl
_code _compiled_call_impl _create_node_hooks _deepcopy_hooks _deepcopy_init
_erase_node_hooks _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks
_get_backward_pre_hooks _get_name _graph _is_full_backward_hook _lineno_map
_load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set
_parameters _prologue_start _recompile_submodules _register_create_node_hook
_register_deepcopy_hook _register_erase_node_hook _register_load_state_dict_pre_hook
_register_replace_node_hook _register_state_dict_hook _replace_hooks
_replicate_for_data_parallel _save_to_state_dict _set_replace_hook _slow_forward
_state_dict_hooks _state_dict_pre_hooks _tracer_cls _tracer_extras
_unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
_unregister_replace_node_hook _version _wrapped_call _wrapped_call_impl add_module
add_submodule apply bfloat16 buffers call_super_init children code compile cpu cuda
delete_all_unused_submodules delete_submodule double dump_patches eval extra_repr float
forward get_buffer get_extra_state get_parameter get_submodule graph half ipu
load_state_dict meta modules mtia named_buffers named_children named_modules
named_parameters parameters print_readable recompile register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule shape_env share_memory state_dict to to_empty to_folder train training type
xpu zero_grad
""".split())


def sanitize(name: str) -> str:
    """Rules 1-3 of the module docstring: a component made a safe module name."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    if out.isdigit():
        return out  # a sequence index, as nn.Sequential names it ("layer1.0.conv1")
    if out[0].isdigit():
        out = "_" + out
    if keyword.iskeyword(out) or keyword.issoftkeyword(out) or out in RESERVED:
        out += "_"
    return out


def identifier(name: str) -> str:
    """A Python variable name for ``name`` (an all-digit name gets a leading ``_``)."""
    out = sanitize(name)
    return "_" + out if out.isdigit() else out


def attr_expr(path: str, root: str = "self") -> str:
    """Source text reaching module ``path``: ``self.a.b``, ``getattr(self.layer1, "0")``."""
    out = root
    for c in path.split("."):
        out = f"{out}.{c}" if c.isidentifier() else f'getattr({out}, "{c}")'
    return out


class _Names:
    """Unique sanitised names per parent path (rule 4)."""

    def __init__(self) -> None:
        self._given: dict[tuple[tuple[str, ...], str, bool], str] = {}
        self._taken: dict[tuple[str, ...], set[str]] = {}

    def get(self, parent: tuple[str, ...], raw: str, container: bool) -> str:
        key = (parent, raw, container)
        if key not in self._given:
            taken = self._taken.setdefault(parent, set())
            base = sanitize(raw)
            name, i = base, 2
            while name in taken:
                name, i = f"{base}_{i}", i + 1
            taken.add(name)
            self._given[key] = name
        return self._given[key]


def module_path(names: _Names, node: str) -> str:
    """The dotted module path of IR node ``node`` (``"a/b/c"`` -> ``"a.b.c"``)."""
    parts = node.split("/")
    parent: tuple[str, ...] = ()
    for raw in parts[:-1]:
        parent = (*parent, names.get(parent, raw, True))
    return ".".join((*parent, names.get(parent, parts[-1], False)))


# --------------------------------------------------------------------------- op rules

#: producers whose output an activation or an add may overwrite: their backward
#: does not read their output and they never return a view of their input
_INPLACE_SAFE: tuple[type[O.Op], ...] = (
    O.Conv2d, O.ConvTranspose2d, O.BatchNorm2d, O.Linear, O.Add, O.Concat,
    O.MaxPool2d, O.AvgPool2d, O.AdaptiveAvgPool2d, O.GlobalAvgPool, O.Upsample,
)

#: activation op -> (nn class, whether it takes ``inplace``, extra constructor args)
_ACT_MODULES: dict[type[O.Op], tuple[str, bool]] = {
    O.ReLU: ("ReLU", True), O.LeakyReLU: ("LeakyReLU", True), O.ReLU6: ("ReLU6", True),
    O.Sigmoid: ("Sigmoid", False), O.HardSigmoid: ("Hardsigmoid", True),
    O.Tanh: ("Tanh", False), O.HardSwish: ("Hardswish", True), O.SiLU: ("SiLU", True),
}


def _pair_arg(p: tuple[int, int]) -> Any:
    """``(3, 3) -> 3`` (PyTorch accepts an int for a square pair), else the tuple."""
    return p[0] if p[0] == p[1] else tuple(p)


def _kw(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(kwargs.items())


class _Planner:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.names = _Names()
        self.outputs = set(graph.outputs)

    # -- helpers

    def shape(self, n: str) -> tuple[int, ...]:
        return tuple(self.g.shape(n))

    def can_overwrite(self, producer: str, user: str) -> bool:
        """May ``user`` write its result into ``producer``'s output tensor?"""
        op = self.g.op(producer)
        if isinstance(op, O.FusedConv2d):
            safe = op.act is None
        else:
            safe = type(op) in _INPLACE_SAFE
        return safe and self.g.users(producer) == [user] and producer not in self.outputs

    def step(self, n: str, calls: list[Call], ctor: Ctor | None = None) -> Step:
        if ctor is None:
            return Step(n, calls)
        path = module_path(self.names, n)
        # the module call is the one that names the path
        calls = [Call(c.kind, path, c.args, c.kwargs, c.inplace, c.hint)
                 if c.kind == "module" else c for c in calls]
        return Step(n, calls, path, ctor)

    def module_step(self, n: str, ctor: Ctor, inplace: bool = False) -> Step:
        (src,) = self.g.inputs(n)
        return self.step(n, [Call("module", "", (Ref(src),), inplace=inplace)], ctor)

    # -- rules

    def plan(self, n: str) -> Step:
        op = self.g.op(n)
        rule = _RULES.get(type(op))
        if rule is None:
            raise BackendError(
                f"the PyTorch backend has no rule for op kind '{op.kind}' "
                f"({type(op).__name__}) at node '{n}'", loc=self.g.loc(n), node=n)
        return rule(self, n, op)

    def conv_calls(self, n: str, conv: O.Conv2d, bias: bool) -> tuple[list[Call], Ctor]:
        (src,) = self.g.inputs(n)
        t, left, b, r = conv.padding
        symmetric = t == b and left == r
        kwargs: dict[str, Any] = {"kernel_size": _pair_arg(conv.kernel)}
        if conv.stride != (1, 1):
            kwargs["stride"] = _pair_arg(conv.stride)
        if symmetric and (t or left):
            kwargs["padding"] = _pair_arg((t, left))
        if conv.dilation != (1, 1):
            kwargs["dilation"] = _pair_arg(conv.dilation)
        if conv.groups != 1:
            kwargs["groups"] = conv.groups
        if not bias:
            kwargs["bias"] = False
        ctor = Ctor("Conv2d", (self.shape(src)[0], conv.out_channels), tuple(kwargs.items()))
        calls = []
        x: Any = Ref(src)
        if not symmetric:
            calls.append(Call("function", "F.pad", (x, (left, r, t, b))))
            x = Ref(f"{n}#0")
        calls.append(Call("module", "", (x,)))
        return calls, ctor

    def window_end_pads(self, n: str, op: O._Pool) -> tuple[int, int]:
        """End paddings that make a floor-mode pool over the explicitly padded input
        produce the IR's output size (extends the padding for ``ceil_mode``)."""
        (src,) = self.g.inputs(n)
        _, h, w = self.shape(src)
        _, oh, ow = self.shape(n)
        t, left, b, r = op.padding
        kh, kw = op.kernel
        sh, sw = op.stride
        end_h = max(b, (oh - 1) * sh + kh - h - t)
        end_w = max(r, (ow - 1) * sw + kw - w - left)
        return end_h, end_w


def _rule_input(p: _Planner, n: str, op: O.Input) -> Step:
    return Step(n, [])


def _rule_conv(p: _Planner, n: str, op: O.Conv2d) -> Step:
    calls, ctor = p.conv_calls(n, op, op.bias)
    return p.step(n, calls, ctor)


def _rule_fused(p: _Planner, n: str, op: O.FusedConv2d) -> Step:
    calls, ctor = p.conv_calls(n, op.conv, True)
    act = op.act
    if act is not None:
        x = Ref(f"{n}#{len(calls) - 1}")
        calls.append(_inplace_act(act, x))
    return p.step(n, calls, ctor)


def _inplace_act(act: O.Activation, x: Ref) -> Call:
    """The in-place functional form of an activation (after a fused conv)."""
    if isinstance(act, O.Sigmoid):
        return Call("method", "sigmoid_", (x,), inplace=True)
    if isinstance(act, O.Tanh):
        return Call("method", "tanh_", (x,), inplace=True)
    if isinstance(act, O.LeakyReLU):
        return Call("function", "F.leaky_relu", (x, act.negative_slope),
                    _kw(inplace=True), inplace=True)
    funcs = {O.ReLU: "F.relu", O.ReLU6: "F.relu6", O.HardSigmoid: "F.hardsigmoid",
             O.HardSwish: "F.hardswish", O.SiLU: "F.silu"}
    func = funcs.get(type(act))
    if func is None:
        raise BackendError(f"the PyTorch backend has no in-place form of the fused "
                           f"activation '{act.kind}'")
    return Call("function", func, (x,), _kw(inplace=True), inplace=True)


def _rule_conv_t(p: _Planner, n: str, op: O.ConvTranspose2d) -> Step:
    (src,) = p.g.inputs(n)
    kwargs: dict[str, Any] = {"kernel_size": _pair_arg(op.kernel)}
    if op.stride != (1, 1):
        kwargs["stride"] = _pair_arg(op.stride)
    if op.padding != (0, 0):
        kwargs["padding"] = _pair_arg(op.padding)
    if op.output_padding != (0, 0):
        kwargs["output_padding"] = _pair_arg(op.output_padding)
    if op.groups != 1:
        kwargs["groups"] = op.groups
    if not op.bias:
        kwargs["bias"] = False
    if op.dilation != (1, 1):
        kwargs["dilation"] = _pair_arg(op.dilation)
    ctor = Ctor("ConvTranspose2d", (p.shape(src)[0], op.out_channels), tuple(kwargs.items()))
    return p.module_step(n, ctor)


def _rule_bn(p: _Planner, n: str, op: O.BatchNorm2d) -> Step:
    (src,) = p.g.inputs(n)
    kwargs = {}
    if op.eps != 1e-5:
        kwargs["eps"] = op.eps
    if op.momentum != 0.1:
        kwargs["momentum"] = op.momentum
    return p.module_step(n, Ctor("BatchNorm2d", (p.shape(src)[0],), tuple(kwargs.items())))


def _rule_lrn(p: _Planner, n: str, op: O.LocalResponseNorm) -> Step:
    kwargs = {"alpha": op.alpha, "beta": op.beta, "k": op.k}
    return p.module_step(n, Ctor("LocalResponseNorm", (op.size,), tuple(kwargs.items())))


def _rule_act(p: _Planner, n: str, op: O.Activation) -> Step:
    cls, has_inplace = _ACT_MODULES[type(op)]
    (src,) = p.g.inputs(n)
    inplace = has_inplace and p.can_overwrite(src, n)
    args: tuple[Any, ...] = (op.negative_slope,) if isinstance(op, O.LeakyReLU) else ()
    return p.module_step(n, Ctor(cls, args, _kw(inplace=True) if inplace else ()), inplace)


def _rule_softmax(p: _Planner, n: str, op: O.Softmax) -> Step:
    return p.module_step(n, Ctor("Softmax", (), _kw(dim=1)))


def _pool_kwargs(op: O._Pool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if op.stride != op.kernel:
        kwargs["stride"] = _pair_arg(op.stride)
    return kwargs


def _rule_maxpool(p: _Planner, n: str, op: O.MaxPool2d) -> Step:
    t, left, b, r = op.padding
    kwargs = _pool_kwargs(op)
    if t == b and left == r:
        if t or left:
            kwargs["padding"] = _pair_arg((t, left))
        if op.ceil_mode:
            kwargs["ceil_mode"] = True
        return p.module_step(n, Ctor("MaxPool2d", (_pair_arg(op.kernel),), tuple(kwargs.items())))
    (src,) = p.g.inputs(n)
    end_h, end_w = p.window_end_pads(n, op)
    pad = Call("function", "F.pad", (Ref(src), (left, end_w, t, end_h)),
               _kw(value=-math.inf))
    pool = Call("module", "", (Ref(f"{n}#0"),))
    return p.step(n, [pad, pool], Ctor("MaxPool2d", (_pair_arg(op.kernel),),
                                       tuple(kwargs.items())))


def _rule_avgpool(p: _Planner, n: str, op: O.AvgPool2d) -> Step:
    t, left, b, r = op.padding
    k = _pair_arg(op.kernel)
    kwargs = _pool_kwargs(op)
    if t == b and left == r:
        if t or left:
            kwargs["padding"] = _pair_arg((t, left))
        if op.ceil_mode:
            kwargs["ceil_mode"] = True
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
    stride = _pair_arg(op.stride)
    pool_kw = _kw(divisor_override=1)
    fill = 1.0 if op.count_include_pad else 0.0
    calls: list[Call] = []

    def add(kind: str, target: str, args: tuple[Any, ...], kwargs: Any = (),
            hint: str = "") -> Ref:
        calls.append(Call(kind, target, args, kwargs, hint=hint))
        return Ref(f"{n}#{len(calls) - 1}")

    ones = add("operator", "getitem", (Ref(src), (slice(None, 1), slice(None, 1))),
               hint="count")
    ones = add("function", "torch.ones_like", (ones,), hint="count")
    ones = add("function", "F.pad", (ones, (left, r, t, b)), _kw(value=fill), hint="count")
    if over_h or over_w:
        ones = add("function", "F.pad", (ones, (0, over_w, 0, over_h)), hint="count")
    count = add("function", "F.avg_pool2d", (ones, k, stride), pool_kw, hint="count")
    total = add("function", "F.pad", (Ref(src), (left, end_w, t, end_h)))
    total = add("function", "F.avg_pool2d", (total, k, stride), pool_kw)
    add("operator", "truediv", (total, count))
    return p.step(n, calls)


def _rule_adaptive(p: _Planner, n: str, op: O.AdaptiveAvgPool2d) -> Step:
    return p.module_step(n, Ctor("AdaptiveAvgPool2d", (_pair_arg(op.output_size),)))


def _rule_gap(p: _Planner, n: str, op: O.GlobalAvgPool) -> Step:
    return p.module_step(n, Ctor("AdaptiveAvgPool2d", (1,)))


def _rule_upsample(p: _Planner, n: str, op: O.Upsample) -> Step:
    sh, sw = (float(s) for s in op.scale)
    kwargs: dict[str, Any] = {"scale_factor": sh if sh == sw else (sh, sw), "mode": op.mode}
    if op.mode == "bilinear":
        kwargs["align_corners"] = op.align_corners
    return p.module_step(n, Ctor("Upsample", (), tuple(kwargs.items())))


def _rule_dropout(p: _Planner, n: str, op: O.Dropout) -> Step:
    return p.module_step(n, Ctor("Dropout", (op.p,) if op.p != 0.5 else ()))


def _rule_identity(p: _Planner, n: str, op: O.Identity) -> Step:
    return p.module_step(n, Ctor("Identity"))


def _rule_flatten(p: _Planner, n: str, op: O.Flatten) -> Step:
    (src,) = p.g.inputs(n)
    return p.step(n, [Call("function", "torch.flatten", (Ref(src), 1))])


def _rule_linear(p: _Planner, n: str, op: O.Linear) -> Step:
    (src,) = p.g.inputs(n)
    kwargs = () if op.bias else _kw(bias=False)
    return p.module_step(n, Ctor("Linear", (p.shape(src)[0], op.out_features), kwargs))


def _rule_concat(p: _Planner, n: str, op: O.Concat) -> Step:
    refs = [Ref(s) for s in p.g.inputs(n)]
    return p.step(n, [Call("function", "torch.cat", (refs, 1))])


def _rule_add(p: _Planner, n: str, op: O.Add) -> Step:
    a, b = p.g.inputs(n)
    out = p.shape(n)
    if a != b:
        # add is commutative (bit for bit): write into whichever operand may be overwritten
        for x, y in ((a, b), (b, a)):
            if p.shape(x) == out and p.can_overwrite(x, n):
                return p.step(n, [Call("method", "add_", (Ref(x), Ref(y)), inplace=True)])
    return p.step(n, [Call("operator", "add", (Ref(a), Ref(b)))])


def _rule_mul(p: _Planner, n: str, op: O.Mul) -> Step:
    a, b = p.g.inputs(n)
    return p.step(n, [Call("operator", "mul", (Ref(a), Ref(b)))])


_RULES: dict[type[O.Op], Callable[[_Planner, str, Any], Step]] = {
    O.Input: _rule_input,
    O.Conv2d: _rule_conv,
    O.ConvTranspose2d: _rule_conv_t,
    O.FusedConv2d: _rule_fused,
    O.BatchNorm2d: _rule_bn,
    O.LocalResponseNorm: _rule_lrn,
    **{t: _rule_act for t in _ACT_MODULES},
    O.Softmax: _rule_softmax,
    O.MaxPool2d: _rule_maxpool,
    O.AvgPool2d: _rule_avgpool,
    O.AdaptiveAvgPool2d: _rule_adaptive,
    O.GlobalAvgPool: _rule_gap,
    O.Upsample: _rule_upsample,
    O.Dropout: _rule_dropout,
    O.Identity: _rule_identity,
    O.Flatten: _rule_flatten,
    O.Linear: _rule_linear,
    O.Concat: _rule_concat,
    O.Add: _rule_add,
    O.Mul: _rule_mul,
}
"""The rule per op type (exact type: a new op kind needs its own rule)."""


def make_plan(graph: Graph) -> Plan:
    """The :class:`Plan` of ``graph``; shapes are inferred first where missing (as
    :func:`cnnir.analysis.analyze` does), so ``to_module(model.build())`` works."""
    if any(graph.meta(n).get("shape") is None for n in graph.nodes()):
        from ..passes.infer_shapes import InferShapes

        InferShapes().run(graph)
    planner = _Planner(graph)
    inputs = [n for n in graph.nodes() if isinstance(graph.op(n), O.Input)]
    plan = Plan(graph.name, inputs, list(graph.outputs))
    for n in graph.nodes():
        plan.steps.append(planner.plan(n))
    return plan


# --------------------------------------------------------------------------- source text

LINE = 88  # black's and ruff format's default line length


def class_name(name: str) -> str:
    """``"resnet50" -> "Resnet50"``, ``"vgg16_bn" -> "Vgg16Bn"``."""
    parts = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    out = "".join(w[0].upper() + w[1:] for w in parts) or "Model"
    return "Model" + out if out[0].isdigit() else out


def _literal(v: Any) -> str:
    """Python source for a constant argument (as ruff format would print it)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        if math.isinf(v):
            return 'float("-inf")' if v < 0 else 'float("inf")'
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, tuple):
        if len(v) == 1:
            return f"({_literal(v[0])},)"
        return "(" + ", ".join(_literal(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    return repr(v)


def _call_text(indent: str, lhs: str, func: str, args: list[str], tail: str = "") -> list[str]:
    """``lhs = func(args)tail``, split the way black / ruff format split a call."""
    head = f"{indent}{lhs} = {func}(" if lhs else f"{indent}{func}("
    one = head + ", ".join(args) + ")" + tail
    if len(one) <= LINE:
        return [one]
    body = indent + "    " + ", ".join(args)
    if len(body) <= LINE:
        return [head, body, indent + ")" + tail]
    return [head, *(f"{indent}    {a}," for a in args), indent + ")" + tail]


def _dsl_line(loc: Any) -> str | None:
    """The text of the DSL line that made a node (for a comment), if readable."""
    if loc is None or not loc.line:
        return None
    candidates = [loc.file]
    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates.append(os.path.join(pkg_parent, loc.file))
    for path in candidates:
        text = linecache.getline(path, loc.line)
        if text.strip():
            return text.strip()
    return None


class _Vars:
    """Variable names for the forward pass: ``x`` where free, else reuse or hint."""

    #: names the generated code reads (a variable must not shadow them)
    AVOID = frozenset({"self", "torch", "nn", "F", "input", "float", "int", "tuple", "super"})

    def __init__(self) -> None:
        self.live: dict[str, str] = {}  # value -> variable
        self.names: set[str] = set()  # variables holding a live value

    def bind(self, value: str, var: str) -> None:
        self.live[value] = var
        self.names.add(var)

    def release(self, value: str) -> None:
        var = self.live.pop(value)
        if var not in self.live.values():
            self.names.discard(var)

    def fresh(self, hint: str) -> str:
        base = identifier(hint)
        if base in self.AVOID:
            base += "_"
        name, i = base, 2
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        return name


def _render_args(args: tuple[Any, ...], var: Callable[[Any], str]) -> list[str]:
    out = []
    for a in args:
        if isinstance(a, Ref):
            out.append(var(a))
        elif isinstance(a, list) and any(isinstance(x, Ref) for x in a):
            out.append("[" + ", ".join(var(x) for x in a) + "]")
        else:
            out.append(_literal(a))
    return out


def _slice_text(s: Any) -> str:
    if isinstance(s, slice):
        return ("" if s.start is None else str(s.start)) + ":" + (
            "" if s.stop is None else str(s.stop))
    return str(s)


def to_source(graph: Graph, seed: int = 0, weights_file: str | None = None,
              name: str | None = None) -> str:
    """A standalone, readable ``.py`` defining one ``nn.Module`` class for ``graph``.

    The file imports only torch.  Its submodules, ``state_dict`` keys (in order)
    and operations are those of :func:`cnnir.backends.pytorch.to_module`, so the
    same ``state_dict`` gives bit-identical outputs.  The constructor initialises
    the weights as torchvision does (Kaiming-normal fan-out convs, N(0, 0.01)
    linear layers, zero biases, identity BatchNorm) from a ``torch.Generator``
    seeded with ``seed`` (the constructor's default, overridable; ``None`` draws
    from torch's global generator).  ``weights_file`` is named in the docstring's
    loading example.  Every statement of ``forward`` follows a comment with the
    DSL line that made it.  Formatted as ``ruff format`` (black) would.
    """
    plan = make_plan(graph)
    cls = name or class_name(graph.name)
    uses_f = any(c.target.startswith("F.") for s in plan.steps for c in s.calls)
    init = _init_lines(graph, plan)
    forward = _forward_lines(graph, plan)

    in_shapes = ", ".join(str(graph.shape(i)) for i in plan.inputs)
    out_shapes = ", ".join(str(graph.shape(o)) for o in plan.outputs)
    src = f" from {graph.source}" if graph.source else ""
    from .. import __version__

    wfile = weights_file or "weights.pt"
    doc = [
        f'"""{graph.name}: {in_shapes} -> {out_shapes} (batch first), as a PyTorch module.',
        "",
        f"Generated by cnnir {__version__}{src}; regenerate rather than edit.",
        "Usage::",
        "",
        "    import torch",
        "",
        f"    model = {cls}()",
        f'    model.load_state_dict(torch.load("{wfile}", weights_only=True))',
        f"    y = model(torch.randn(1, {', '.join(map(str, graph.shape(plan.inputs[0])))}))",
        '"""',
    ]
    lines = [*doc, "", "import torch"]
    if uses_f:
        lines.append("import torch.nn.functional as F")
    lines += ["from torch import nn", "", "", f"class {cls}(nn.Module):"]
    lines.append(f'    """{graph.name}, generated by cnnir; see the module docstring."""')
    lines.append("")
    seed_default = "None" if seed is None else str(int(seed))
    lines.append(f"    def __init__(self, seed: int | None = {seed_default}) -> None:")
    lines.append("        super().__init__()")
    lines += init
    lines.append("        self.reset_parameters(seed)")
    lines.append("")
    lines += _RESET.splitlines()
    lines.append("")
    args = ", ".join(f"{a}: torch.Tensor" for a in _input_vars(plan))
    ret = "torch.Tensor" if len(plan.outputs) == 1 else (
        "tuple[" + ", ".join("torch.Tensor" for _ in plan.outputs) + "]")
    lines += _call_text("    ", "", "def forward", ["self", *args.split(", ")], f" -> {ret}:")
    lines += forward
    return "\n".join(lines) + "\n"


_RESET = '''    def reset_parameters(self, seed: int | None = 0) -> None:
        """torchvision's initialisation, drawn from a generator seeded with ``seed``."""
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=gen
                )
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)'''


def _input_vars(plan: Plan) -> list[str]:
    if len(plan.inputs) == 1:
        return ["x"]
    return [identifier(i) if identifier(i) not in _Vars.AVOID else identifier(i) + "_"
            for i in plan.inputs]


def _init_lines(graph: Graph, plan: Plan) -> list[str]:
    """``__init__``'s body: containers as first needed, then each layer, in plan order."""
    lines: list[str] = []
    made: set[str] = set()
    for step in plan.steps:
        if step.path is None or step.ctor is None:
            continue
        parts = step.path.split(".")
        for i in range(1, len(parts)):
            container = ".".join(parts[:i])
            if container not in made:
                made.add(container)
                raw = tuple(step.node.split("/")[:i])
                info = graph.blocks.get(raw)
                lines.append("")
                if info is not None:
                    what = [] if info.kind == "scope" else [f"{info.kind} block"]
                    if info.repeat is not None:
                        what.append(f"repeat {info.repeat[1] + 1} of {info.repeat[2]}")
                    if info.loc is not None:
                        what.append(info.loc.short)
                    lines.append(f"        # {'/'.join(raw)} ({', '.join(what)})")
                lines += _assign(container, "nn.Module", [])
        c = step.ctor
        args = [_literal(a) for a in c.args] + [f"{k}={_literal(v)}" for k, v in c.kwargs]
        lines += _assign(step.path, f"nn.{c.cls}", args)
    return lines


def _assign(path: str, func: str, args: list[str]) -> list[str]:
    """``self.a.b = func(args)``; ``parent.add_module("0", func(args))`` for an index."""
    parent, _, leaf = path.rpartition(".")
    target = attr_expr(parent) if parent else "self"
    if leaf.isidentifier():
        return _call_text("        ", f"{target}.{leaf}", func, args)
    return _call_text("        ", "", f"{target}.add_module",
                      [f'"{leaf}"', f"{func}({', '.join(args)})"])


def _forward_lines(graph: Graph, plan: Plan) -> list[str]:
    """``forward``'s body: one statement per call, DSL lines as comments."""
    # the last call reading each value
    order: list[tuple[Step, int]] = [(s, i) for s in plan.steps for i in range(len(s.calls))]
    last: dict[str, int] = {}

    def refs(call: Call) -> list[str]:
        out = []
        for a in call.args:
            if isinstance(a, Ref):
                out.append(a.value)
            elif isinstance(a, list):
                out += [x.value for x in a if isinstance(x, Ref)]
        return out

    for j, (s, i) in enumerate(order):
        for r in refs(s.calls[i]):
            last[r] = j
    for o in plan.outputs:
        last[o] = len(order)

    v = _Vars()
    for name, var in zip(plan.inputs, _input_vars(plan)):
        v.bind(name, var)
        last.setdefault(name, -1)
    lines: list[str] = []
    prev_loc: Any = None
    prev_scope: tuple[str, ...] | None = None
    for j, (step, i) in enumerate(order):
        call = step.calls[i]
        if i == 0:
            loc = graph.loc(step.node)
            scope = graph.scope(step.node)
            if prev_scope is not None and scope != prev_scope and lines:
                lines.append("")
            if loc is not None and loc != prev_loc:
                text = _dsl_line(loc)
                lines.append(f"        # {loc.short}" + (f": {text}" if text else ""))
            prev_loc, prev_scope = loc, scope
        args = _render_args(call.args, lambda r: v.live[r.value])
        first = call.args[0] if call.args and isinstance(call.args[0], Ref) else None
        # free what dies here, then name the result
        dying = [r for r in dict.fromkeys(refs(call)) if last.get(r) == j]
        first_var = v.live[first.value] if first is not None else None
        for r in dying:
            v.release(r)
        value = step.value(i)
        if call.inplace and call.kind != "module":
            # ``a += b``, ``F.relu(a, inplace=True)``: the result is ``a``'s variable
            assert first_var is not None and first is not None and first.value in dying
            out = first_var
        elif "x" not in v.names and len(plan.inputs) == 1:
            out = "x"
        elif first is not None and first.value in dying:
            out = first_var  # type: ignore[assignment]
        else:
            hint = call.hint or step.node.split("/")[-1]
            out = v.fresh(hint)
        if last.get(value, -2) > j:
            v.bind(value, out)
        lines += _statement(out, call, args)
    outs = [v.live[o] for o in plan.outputs]
    lines.append("        return " + ", ".join(outs))
    return lines


_OPERATORS = {"add": "+", "mul": "*", "truediv": "/"}


def _statement(out: str, call: Call, args: list[str]) -> list[str]:
    ind = "        "
    if call.kind == "module":
        return _call_text(ind, out, attr_expr(call.target), args)
    if call.kind == "operator":
        if call.target == "getitem":
            idx = ", ".join(_slice_text(s) for s in call.args[1])
            return [f"{ind}{out} = {args[0]}[{idx}]"]
        return [f"{ind}{out} = {args[0]} {_OPERATORS[call.target]} {args[1]}"]
    kwargs = [f"{k}={_literal(val)}" for k, val in call.kwargs]
    if call.kind == "method":
        if call.target == "add_":
            return [f"{ind}{out} += {args[1]}"]
        text = f"{args[0]}.{call.target}({', '.join(args[1:] + kwargs)})"
        return [f"{ind}{text}"] if call.inplace else [f"{ind}{out} = {text}"]
    if call.inplace:
        return _call_text(ind, "", call.target, args + kwargs)
    return _call_text(ind, out, call.target, args + kwargs)


__all__ = ["Plan", "Step", "Call", "Ctor", "Ref", "make_plan", "module_path", "sanitize",
           "class_name", "to_source", "RESERVED"]
