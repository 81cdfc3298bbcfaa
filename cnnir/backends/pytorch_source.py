"""The PyTorch source writer: a :class:`~cnnir.backends.torch_plan.Plan` as a standalone ``.py``.

:func:`to_source` renders the plan that :func:`cnnir.backends.torch_rules.make_plan`
makes (the same plan :func:`cnnir.backends.pytorch.to_module` builds its
GraphModule from): ``__init__`` from the layer constructors, ``forward`` from the
calls, formatted as ``ruff format`` (black) would.  Text formatting only: what each
IR op becomes is the rules' business, the module names the plan's
(:mod:`cnnir.backends.torch_plan`).  Torch is not imported.
"""

from __future__ import annotations

import linecache
import math
import os
import re
from collections.abc import Callable
from typing import Any

from ..errors import BackendError
from ..ir import Graph
from .torch_plan import (
    HELPERS,
    RESERVED,
    Call,
    Ctor,
    Plan,
    Ref,
    Step,
    attr_expr,
    identifier,
    module_path,
    sanitize,
)
from .torch_rules import make_plan

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

    The file imports torch (and numpy, to draw seeded weights).  Its submodules,
    ``state_dict`` keys (in order) and operations are those of
    :func:`cnnir.backends.pytorch.to_module`, so the same ``state_dict`` gives
    bit-identical outputs.  The constructor initialises the weights as torchvision
    does (Kaiming-normal fan-out convs, N(0, 0.01) linear layers, zero biases,
    identity BatchNorm) from ``seed`` (the constructor's default, overridable): an int
    draws exactly the arrays :func:`cnnir.weights.init_weights` draws for it (numpy's
    generator, layer by layer in the graph's order), so ``to_module`` and the ONNX
    export with that seed hold the same weights; ``None`` draws from torch's global
    generator.  ``weights_file`` is named in the docstring's loading example.  Every
    statement of ``forward`` follows a comment with the DSL line that made it.
    Formatted as ``ruff format`` (black) would.
    """
    plan = make_plan(graph)
    cls = name or class_name(graph.name)
    uses_f = any(c.target.startswith("F.") for s in plan.steps for c in s.calls)
    init = _init_lines(graph, plan)
    forward = _forward_lines(graph, plan)

    in_shapes = ", ".join(str(graph.shape(i)) for i in plan.inputs)
    out_shapes = ", ".join(str(graph.shape(o)) for o in plan.outputs)
    src = f" from {graph.source}" if graph.source else ""
    from .._version import __version__

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
    lines = [*doc, "", "import math", "", "import torch"]
    if uses_f:
        lines.append("import torch.nn.functional as F")
    lines += ["from torch import nn", ""]
    for helper in dict.fromkeys(st.ctor.cls for st in plan.steps if st.ctor is not None):
        if helper in HELPERS:
            lines += ["", *HELPERS[helper].rstrip().splitlines(), ""]
    lines += ["", f"class {cls}(nn.Module):"]
    lines.append(f'    """{graph.name}, generated by cnnir; see the module docstring."""')
    lines.append("")
    seed_default = "None" if seed is None else str(int(seed))
    lines.append(f"    def __init__(self, seed: int | None = {seed_default}) -> None:")
    lines.append("        super().__init__()")
    lines += init
    lines.append("        self.reset_parameters(seed)")
    lines.append("")
    lines += _reset_lines(graph, plan)
    lines.append("")
    args = ", ".join(f"{a}: torch.Tensor" for a in _input_vars(plan))
    ret = "torch.Tensor" if len(plan.outputs) == 1 else (
        "tuple[" + ", ".join("torch.Tensor" for _ in plan.outputs) + "]")
    lines += _call_text("    ", "", "def forward", ["self", *args.split(", ")], f" -> {ret}:")
    lines += forward
    return "\n".join(lines) + "\n"


_RESET = '''    @torch.no_grad()
    def reset_parameters(self, seed: int | None = 0) -> None:
        """torchvision's initialisation: Kaiming-normal fan-out convs, N(0, 0.01) linear
        layers, zero biases, identity BatchNorm.  An int ``seed`` draws what cnnir
        draws for it (numpy's generator, layer by layer in the graph's order), the
        weights ``cnnir compile --to onnx --seed`` exports; ``None``: torch's own
        global generator."""
        if seed is not None:
            import numpy as np

            rng = np.random.default_rng(seed)
        layers = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, layers) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for m in ORDER:
            if isinstance(m, layers):
                # Kaiming normal: fan out is dim 0 times the kernel (transposed too)
                fan_out = m.weight.shape[0] * m.weight[0][0].numel()
                std = 0.01 if isinstance(m, nn.Linear) else math.sqrt(2.0 / fan_out)
                if seed is None:
                    m.weight.normal_(0.0, std)
                else:
                    w = rng.normal(0.0, std, tuple(m.weight.shape))
                    m.weight.copy_(torch.from_numpy(w.astype(np.float32)))'''

#: the plan's modules whose weights the seed draws (the rest start as PyTorch makes them)
_DRAWN = ("Conv1d", "Conv2d", "ConvTranspose2d", "Linear")  # Conv1d: ECA's channel conv


def _module_order(paths: list[str]) -> list[str]:
    """The order ``nn.Module.modules()`` visits ``paths``, leaves registered in this
    order with their containers registered when first needed (as ``__init__`` does):
    depth first, each level by first registration."""
    first: dict[str, int] = {}
    for i, path in enumerate(paths):
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            first.setdefault(".".join(parts[:k]), i)

    def key(path: str) -> list[int]:
        parts = path.split(".")
        return [first[".".join(parts[:k])] for k in range(1, len(parts) + 1)]

    return sorted(paths, key=key)


def _reset_lines(graph: Graph, plan: Plan) -> list[str]:
    """``reset_parameters``: the weights drawn in the order
    :func:`cnnir.weights.init_weights` draws them (its graph order) -- ``self.modules()``
    where that visits the drawn layers in this order (every zoo model), else the
    layers listed."""
    paths = plan.paths
    drawn = [paths[n] for n in graph.nodes()
             if getattr(graph.op(n), "init", None) in ("kaiming", "linear") and n in paths]
    registered = [st.path for st in plan.steps if st.path is not None and st.ctor is not None]
    layers = {st.path for st in plan.steps if st.ctor is not None and st.ctor.cls in _DRAWN}
    odd = [p for p in drawn if p not in layers]
    if odd:  # an init rule whose layer the source would not draw: the weights would differ
        raise BackendError(f"the PyTorch source cannot draw the seeded weights of {odd[0]}: "
                           f"its layer is none of {', '.join(_DRAWN)}")
    if [p for p in _module_order(registered) if p in layers] == drawn:
        return _RESET.replace("ORDER", "self.modules()").splitlines()
    head, _, tail = _RESET.partition("        for m in ORDER:\n")
    listed = ["        for m in (  # cnnir's order"]
    listed += [f"            {attr_expr(p)}," for p in drawn]
    listed.append("        ):")
    return [*head.splitlines(), *listed, *tail.splitlines()]


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
                    if info.repeat is not None and info.repeat[2] > 1:  # a group of one: no
                        what.append(f"repeat {info.repeat[1] + 1} of {info.repeat[2]}")
                    if info.loc is not None:
                        what.append(info.loc.short)
                    lines.append(f"        # {'/'.join(raw)} ({', '.join(what)})")
                lines += _assign(container, "nn.Module", [])
        c = step.ctor
        args = [_literal(a) for a in c.args] + [f"{k}={_literal(v)}" for k, v in c.kwargs]
        lines += _assign(step.path, c.cls if c.cls in HELPERS else f"nn.{c.cls}", args)
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


#: the plan's names, importable from here as before the split
__all__ = ["Plan", "Step", "Call", "Ctor", "Ref", "make_plan", "module_path", "sanitize",
           "class_name", "to_source", "RESERVED"]
