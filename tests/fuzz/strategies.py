"""Hypothesis strategies that draw random CNNs as small programs.

A *program* is an input shape and a list of steps; :func:`build` turns it into a
cnnir graph through the public DSL, exactly as a user would write it.  Steps:

* ``("conv", out, kernel, stride, pads, dilation, groups, bias)``
* ``("deconv", out, kernel, stride, padding, output_padding, groups)``
* ``("pool", kind, kernel, stride, pads, ceil_mode)``  kind max/avg
* ``("bn",)``, ``("act", name)``, ``("upsample", scale, mode)``
* ``("branch", c1, c2)``: two parallel convs (1x1 and 3x3 "same") concatenated
* ``("residual", stride, out, project)``: conv-bn(-relu)-conv-bn + shortcut
  (identity when shapes allow, else a 1x1 projection), then relu
* ``("se", reduce)``: squeeze-excitation (gap, 1x1, relu, 1x1, sigmoid, mul)
* ``("head", kind, out)``: ``gap`` (global pool + flatten + linear) or ``flatten``

:func:`valid_programs` tracks shapes while drawing (with cnnir's own rules, which
the differential tests then check against PyTorch) so every program is valid.
:func:`invalid_programs` takes a valid program and breaks one step, or feeds a
layer junk arguments; building it must raise a ``CnnirError`` and nothing else.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cnnir.dsl import block, concat, model
from cnnir.errors import CnnirError

#: examples per property: 200 in CI; ``python -m tests.fuzz --examples N`` raises it
EXAMPLES = int(os.environ.get("CNNIR_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

ACTS = ["relu", "leaky_relu", "relu6", "sigmoid", "tanh", "hardswish", "silu", "hardsigmoid",
        "gelu"]
Program = tuple[tuple[int, int, int], list[tuple[Any, ...]]]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _conv_step(draw: st.DrawFn, c: int, h: int, w: int) -> tuple[Any, ...] | None:
    kh = draw(st.integers(1, min(5, h + 4)))
    kw = draw(st.integers(1, min(5, w + 4)))
    dil = draw(st.sampled_from([1, 1, 1, 2]))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    g = draw(st.sampled_from(_divisors(c)))
    out = g * draw(st.integers(1, max(1, 12 // g)))
    bias = draw(st.booleans())
    return ("conv", out, (kh, kw), stride, pads, (dil, dil), g, bias)


@st.composite
def _step(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[Any, ...]:
    c, h, w = shape
    kind = draw(st.sampled_from(
        ["conv", "conv", "conv", "deconv", "pool", "bn", "ln", "act", "act", "upsample",
         "branch", "residual", "residual", "se"]))
    if kind == "conv":
        return draw(_conv_step(c, h, w))
    if kind == "deconv":
        stride = draw(st.integers(1, 2))
        k = draw(st.integers(1, 3))
        pad = draw(st.integers(0, max(0, (k - 1) // 2)))
        outpad = draw(st.integers(0, stride - 1))
        g = draw(st.sampled_from(_divisors(c)))
        out = g * draw(st.integers(1, max(1, 8 // g)))
        return ("deconv", out, k, stride, pad, outpad, g)
    if kind == "pool":
        k = draw(st.integers(1, 3))
        stride = draw(st.integers(1, 3))
        pad = draw(st.integers(0, k // 2))
        return ("pool", draw(st.sampled_from(["max", "avg"])), k, stride, pad, draw(st.booleans()))
    if kind in ("bn", "ln"):
        return (kind,)
    if kind == "act":
        return ("act", draw(st.sampled_from(ACTS)))
    if kind == "upsample":
        return ("upsample", draw(st.integers(1, 2)), draw(st.sampled_from(["nearest", "bilinear"])))
    if kind == "branch":
        return ("branch", draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    if kind == "residual":
        stride = draw(st.integers(1, 2))
        out = draw(st.sampled_from([c, c, 2 * c, max(1, c // 2)]))
        return ("residual", stride, out, draw(st.booleans()))
    return ("se", draw(st.integers(1, 4)))


def shape_after(shape: tuple[int, ...], step: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape after ``step`` by cnnir's rules; raises CnnirError when invalid."""
    graph = build(((shape[0], shape[1], shape[2]), [step]), head=False)
    from cnnir.passes.infer_shapes import infer_shapes

    infer_shapes(graph)
    return tuple(graph.shape(graph.outputs[0]))


@st.composite
def valid_programs(draw: st.DrawFn, max_steps: int = 8, head: bool | None = None) -> Program:
    """A random valid CNN program (see module docstring)."""
    c = draw(st.integers(1, 4))
    h = draw(st.integers(4, 20))
    w = draw(st.integers(4, 20))
    shape: tuple[int, ...] = (c, h, w)
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(_step(shape))
        try:
            new = shape_after(shape, step)
        except CnnirError:
            continue  # that step does not fit here; draw the next
        if new[1] * new[2] * new[0] > 40_000 or new[1] > 64 or new[2] > 64:
            continue  # keep tensors small so the differential runs stay fast
        steps.append(step)
        shape = new
    if not steps:
        steps.append(("act", "relu"))
    if head is None:
        head = draw(st.booleans())
    if head:
        steps.append(("head", draw(st.sampled_from(["gap", "flatten"])), draw(st.integers(1, 10))))
    return (c, h, w), steps


def build(program: Program, head: bool = True, name: str = "fuzz"):
    """Build ``program`` with the DSL; returns the graph (shapes not inferred)."""
    (c, h, w), steps = program

    @block
    def residual(x, stride, out, project):
        y = x.conv(out, 3, stride=stride, padding=1, bias=False).bn().relu()
        y = y.conv(out, 3, padding=1, bias=False).bn()
        if project:
            x = x.conv(out, 1, stride=stride, bias=False).bn()
        return (y + x).relu()

    @block
    def branch(x, c1, c2):
        return concat(x.conv(c1, 1).relu(), x.conv(c2, 3, padding=1).relu())

    @block
    def se(x, reduce):
        ch = x_channels[0]
        s = x.global_avgpool().conv(max(1, ch // reduce), 1).relu().conv(ch, 1).sigmoid()
        return x * s

    x_channels = [c]

    def net(x):
        for step in steps:
            kind, args = step[0], step[1:]
            if kind == "conv":
                out, k, s, p, d, g, b = args
                x = x.conv(out, k, stride=s, padding=p, dilation=d, groups=g, bias=b)
                x_channels[0] = out
            elif kind == "deconv":
                out, k, s, p, op, g = args
                x = x.conv_transpose(out, k, stride=s, padding=p, output_padding=op, groups=g)
                x_channels[0] = out
            elif kind == "pool":
                pk, k, s, p, ceil = args
                pool = x.maxpool if pk == "max" else x.avgpool
                x = pool(k, stride=s, padding=p, ceil_mode=ceil)
            elif kind == "bn":
                x = x.bn()
            elif kind == "ln":
                x = x.layernorm2d()
            elif kind == "act":
                x = getattr(x, args[0])()
            elif kind == "upsample":
                x = x.upsample(args[0], mode=args[1])
            elif kind == "branch":
                x = branch(x, *args)
                x_channels[0] = args[0] + args[1]
            elif kind == "residual":
                x = residual(x, *args)
                x_channels[0] = args[1]
            elif kind == "se":
                x = se(x, *args)
            elif kind == "head" and head:
                x = x.global_avgpool().flatten() if args[0] == "gap" else x.flatten()
                x = x.linear(args[1])
            elif kind == "junk":
                method, a, kw = args
                x = getattr(x, method)(*a, **kw)
            elif kind != "head":
                raise AssertionError(f"unknown step {kind}")
        return x

    net.__name__ = name
    return model(net, input=(c, h, w)).build()


# --------------------------------------------------------------------------- invalid

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 0), st.integers(10**6, 10**7),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
    st.tuples(st.integers(-2, 3)), st.tuples(st.integers(-2, 3), st.integers(-2, 3),
                                                st.integers(-2, 3)),
    st.lists(st.integers(-1, 2), max_size=5),
)

#: each layer method with valid keyword arguments; one of them is replaced by junk
_CALLS: dict[str, dict[str, Any]] = {
    "conv": {"out_channels": 4, "kernel": 3, "stride": 1, "padding": 1, "dilation": 1,
             "groups": 1},
    "conv_transpose": {"out_channels": 4, "kernel": 2, "stride": 2, "padding": 0,
                       "output_padding": 0, "dilation": 1, "groups": 1},
    "maxpool": {"kernel": 2, "stride": 2, "padding": 0},
    "avgpool": {"kernel": 2, "stride": 2, "padding": 0},
    "adaptive_avgpool": {"output_size": 2},
    "upsample": {"scale": 2, "mode": "nearest"},
    "dropout": {"p": 0.5},
    "lrn": {"size": 5},
    "leaky_relu": {"negative_slope": 0.01},
}


@st.composite
def junk_step(draw: st.DrawFn) -> tuple[Any, ...]:
    """A layer call with one argument replaced by junk (it may still be valid)."""
    method = draw(st.sampled_from(sorted(_CALLS)))
    kwargs = dict(_CALLS[method])
    kwargs[draw(st.sampled_from(sorted(kwargs)))] = draw(JUNK)
    return ("junk", method, (), kwargs)


_BREAKERS = [
    ("conv", 4, (99, 99), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),   # kernel > input
    ("conv", 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, True),     # groups vs channels
    ("pool", "max", 99, 1, 0, False),                              # window > input
    ("head", "flatten", 3),                                        # then more conv layers
    ("junk", "linear", (5,), {}),                                  # linear on a map
]
#: steps that can never hold, wherever they are inserted
BREAKERS = _BREAKERS


@st.composite
def invalid_programs(draw: st.DrawFn) -> Program:
    """A valid program with one bad step inserted: a breaker (must fail) or junk (may not)."""
    (c, h, w), steps = draw(valid_programs(max_steps=4, head=False))
    bad = draw(st.one_of(st.sampled_from(BREAKERS), junk_step()))
    pos = draw(st.integers(0, len(steps)))
    steps = [*steps[:pos], bad, *steps[pos:]]
    if bad[0] == "head":  # a flatten followed by a conv layer
        steps.append(("conv", 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True))
    return (c, h, w), steps


__all__ = ["FUZZ", "EXAMPLES", "valid_programs", "invalid_programs", "junk_step", "build", "shape_after", "BREAKERS"]
