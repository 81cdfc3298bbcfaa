"""The PyTorch lowering plan: its vocabulary (values, layer constructors, calls) and module names.

Both PyTorch emitters -- :func:`cnnir.backends.pytorch.to_module` (a ``torch.fx``
GraphModule) and :func:`cnnir.backends.pytorch_source.to_source` (a readable ``.py``
file) -- are driven by one :class:`Plan`, made without importing torch by the
per-op rules of :mod:`cnnir.backends.torch_rules`.  Sharing the plan is what makes
the two emit the same submodules, the same ``state_dict`` keys in the same order,
and the same sequence of operations (bit-identical outputs).

The plan, per IR node (a :class:`Step`): a submodule (:class:`Ctor`, e.g.
``nn.Conv2d(64, 128, kernel_size=3, padding=1)``) at a dotted module path, for every
layer but the pure functions, and a list of :class:`Call` s computing the node's
output from its inputs.  :class:`Lowering` is what a rule sees of the graph while
the plan is made.

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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


# --------------------------------------------------------------------------- helper layers

#: layers that ``torch.nn`` lacks, by :attr:`Ctor.cls`: their class's source text, which
#: the source writer copies into the file it writes and the module builder executes
#: (so both emit the same class).  A :class:`Ctor` names ``nn.<cls>`` otherwise.
HELPERS: dict[str, str] = {
    "Scale": '''class Scale(nn.Module):
    """``x * weight + bias`` (``divide``: ``x / weight + bias``), cnnir's scale layer
    (``fixed``: ``weight`` and ``bias`` are constants, buffers rather than parameters)."""

    def __init__(
        self, shape: tuple[int, ...], weight: bool = True, bias: bool = False,
        divide: bool = False, fixed: bool = False,
    ) -> None:
        super().__init__()
        self.divide = divide
        for key, on, init in (("weight", weight, torch.ones), ("bias", bias, torch.zeros)):
            if fixed:
                self.register_buffer(key, init(shape) if on else None)
            else:
                setattr(self, key, nn.Parameter(init(shape)) if on else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is not None:
            x = x / self.weight if self.divide else x * self.weight
        if self.bias is not None:
            x = x + self.bias
        return x
''',
}


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


class Names:
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


def module_path(names: Names, node: str) -> str:
    """The dotted module path of IR node ``node`` (``"a/b/c"`` -> ``"a.b.c"``)."""
    parts = node.split("/")
    parent: tuple[str, ...] = ()
    for raw in parts[:-1]:
        parent = (*parent, names.get(parent, raw, True))
    return ".".join((*parent, names.get(parent, parts[-1], False)))


# --------------------------------------------------------------------------- what a rule sees


def pair_arg(p: tuple[int, int]) -> Any:
    """``(3, 3) -> 3`` (PyTorch accepts an int for a square pair), else the tuple."""
    return p[0] if p[0] == p[1] else tuple(p)


def kw(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments as a :class:`Call` / :class:`Ctor` keeps them (in order)."""
    return tuple(kwargs.items())


class Lowering:
    """The graph as a rule sees it while the plan is made, and the steps a rule returns.

    ``overwritable(node)`` says whether a node's output may be written over by an
    in-place user at all (its rule decides); the plan's maker passes it in, so the
    vocabulary does not depend on the rules.
    """

    def __init__(self, graph: Graph, overwritable: Callable[[str], bool]) -> None:
        self.g = graph
        self.names = Names()
        self.outputs = set(graph.outputs)
        self._overwritable = overwritable

    def shape(self, n: str) -> tuple[int, ...]:
        return tuple(self.g.shape(n))

    def can_overwrite(self, producer: str, user: str) -> bool:
        """May ``user`` write its result into ``producer``'s output tensor?"""
        return (self._overwritable(producer) and self.g.users(producer) == [user]
                and producer not in self.outputs)

    def step(self, n: str, calls: list[Call], ctor: Ctor | None = None) -> Step:
        """Node ``n``'s step; with a ``ctor`` the node gets its submodule path, and
        its ``"module"`` call is pointed at that path."""
        if ctor is None:
            return Step(n, calls)
        path = module_path(self.names, n)
        calls = [Call(c.kind, path, c.args, c.kwargs, c.inplace, c.hint)
                 if c.kind == "module" else c for c in calls]
        return Step(n, calls, path, ctor)

    def module_step(self, n: str, ctor: Ctor, inplace: bool = False) -> Step:
        """The common case: one submodule applied to the node's one input."""
        (src,) = self.g.inputs(n)
        return self.step(n, [Call("module", "", (Ref(src),), inplace=inplace)], ctor)

    def window_end_pads(self, n: str, op: Any) -> tuple[int, int]:
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


__all__ = ["HELPERS", "Ref", "Ctor", "Call", "Step", "Plan", "Lowering", "Names", "RESERVED",
           "sanitize",
           "identifier", "attr_expr", "module_path", "pair_arg", "kw"]
