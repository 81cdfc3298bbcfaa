"""Ops carry what they mean (issue 15): every op in ``ALL_OPS`` declares its parameters,
cost and receptive-field rule, its traits and its DSL name prefix; an op kind from
elsewhere inherits none of them; the analysis passes hold no per-op tables and touch
no private graph storage; weights come from the declared shapes, of any rank."""

from __future__ import annotations

import ast
import pathlib
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from cnnir import ops as O
from cnnir.dsl import add, concat, mean, model, mul
from cnnir.ir import Graph
from cnnir.ops import TensorShape as T
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.weights import BUFFER_NAMES, init_weights, param_shapes

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: one instance of every op, with the input shapes it reads
SAMPLES: dict[type[O.Op], tuple[O.Op, list[T]]] = {
    O.Input: (O.Input((3, 8, 8)), []),
    O.Conv2d: (O.Conv2d(4, 3, padding=1), [T((2, 8, 8))]),
    O.ConvTranspose2d: (O.ConvTranspose2d(4), [T((2, 8, 8))]),
    O.BatchNorm2d: (O.BatchNorm2d(), [T((2, 8, 8))]),
    O.LocalResponseNorm: (O.LocalResponseNorm(), [T((2, 8, 8))]),
    **{cls: (cls(), [T((2, 8, 8))]) for cls in (
        O.ReLU, O.LeakyReLU, O.ReLU6, O.Sigmoid, O.HardSigmoid, O.Tanh, O.HardSwish,
        O.SiLU, O.GELU, O.LayerNorm2d, O.Softmax, O.MaxPool2d, O.AvgPool2d, O.GlobalAvgPool, O.Upsample,
        O.Dropout, O.Identity, O.Flatten)},
    O.AdaptiveAvgPool2d: (O.AdaptiveAvgPool2d(3), [T((2, 8, 8))]),
    O.Linear: (O.Linear(5), [T((7,))]),
    O.Concat: (O.Concat(), [T((2, 8, 8)), T((3, 8, 8))]),
    O.Add: (O.Add(), [T((2, 8, 8)), T((2, 1, 1))]),
    O.Mul: (O.Mul(), [T((2, 8, 8)), T((2, 1, 1))]),
    O.Sum: (O.Sum(), [T((2, 8, 8)), T((2, 8, 8)), T((2, 1, 1))]),
    O.Mean: (O.Mean(), [T((2, 8, 8)), T((2, 8, 8))]),
    O.Scale: (O.Scale(bias=True), [T((2, 8, 8))]),
    O.Pad: (O.Pad(1, (2, 2)), [T((2, 8, 8))]),
    O.DropPath: (O.DropPath(0.2), [T((2, 8, 8))]),
    O.FusedConv2d: (O.FusedConv2d(O.Conv2d(4, 3), O.BatchNorm2d(), O.ReLU()), [T((2, 8, 8))]),
    O.Slice: (O.Slice((0, 1), (2, 6)), [T((2, 8, 8))]),
    O.ChannelShuffle: (O.ChannelShuffle(2), [T((2, 8, 8))]),
    O.SpaceToDepth: (O.SpaceToDepth(2), [T((2, 8, 8))]),
    O.ChannelConv1d: (O.ChannelConv1d(3, 1), [T((8, 1, 1))]),
    O.RadixSoftmax: (O.RadixSoftmax(2, 2), [T((8, 2, 2))]),
}


def test_all_ops_is_every_op_kind_and_every_one_has_a_sample():
    assert set(O.ALL_OPS) == set(O.OP_TYPES.values()) == set(SAMPLES)


@pytest.mark.parametrize("cls", O.ALL_OPS, ids=lambda c: c.kind)
def test_every_op_declares_params_cost_and_receptive_field(cls):
    op, ins = SAMPLES[cls]
    out = op.infer(ins)
    shapes = op.params(ins)
    assert all(isinstance(k, str) and all(type(d) is int for d in s) for k, s in shapes.items())
    assert op.buffers <= set(shapes) and (not shapes or op.init is not None)
    macs, other = op.cost(ins, out)
    assert type(macs) is int and type(other) is int and macs >= 0 and other >= 0
    step = op.receptive_field(ins, (8, 8))
    assert step is None or (len(step) == 4 and len(step[0]) == 3 and len(step[1]) == 3)
    assert op.traits <= O.TRAITS
    for inplace in (False, True):
        kept = op.saved(ins, out, O.TrainCtx(tuple(True for _ in ins), True, inplace))
        assert all(isinstance(k, O.Saved) and type(k.numel) is int and k.numel >= 0
                   and (k.storage in ("output", "param", "new")
                        or int(k.storage[5:]) < len(ins)) for k in kept)
    for needs in ((True, True), (False, True), (True, False)):
        grads = op.backward_cost(ins, out, *needs)
        assert len(grads) == 3 and all(type(g) is int and g >= 0 for g in grads)
        assert (grads[0] == 0 or needs[0]) and (grads[1] == 0 or needs[1])
    # the derivation evaluates to the rules' own figures (cnnir explain)
    terms = op.explain(ins, out)
    assert [t.value() for t in terms if t.kind == "shape"] == list(out)
    arrays = {t.name: t.value() for t in terms if t.kind in ("param", "buffer")}
    assert arrays == {k: O.numel(s) for k, s in shapes.items()}
    assert {t.name for t in terms if t.kind == "buffer"} == set(op.buffers)
    assert sum(t.value() for t in terms if t.kind == "macs") == macs
    assert sum(t.value() for t in terms if t.kind == "other") == other


@dataclass(frozen=True)
class PReLU(O.Activation):
    """A new activation with a weight, defined outside the package."""

    kind: ClassVar[str] = "prelu_test"


@pytest.mark.parametrize("rule, args", [
    ("params", ([T((2, 4, 4))],)), ("cost", ([T((2, 4, 4))], T((2, 4, 4)))),
    ("receptive_field", ([T((2, 4, 4))], (4, 4))),
    ("saved", ([T((2, 4, 4))], T((2, 4, 4)), O.TrainCtx())),
    ("backward_cost", ([T((2, 4, 4))], T((2, 4, 4)), True, True)),
    ("explain", ([T((2, 4, 4))], T((2, 4, 4))))])
def test_an_op_kind_from_elsewhere_inherits_no_rule(rule, args):
    with pytest.raises(O.NoRule, match="'prelu_test'"):
        getattr(PReLU(), rule)(*args)


def test_an_op_kind_from_elsewhere_inherits_no_trait_so_it_is_never_fused():
    assert O.ReLU().has(O.FUSABLE_ACTIVATION) and not PReLU().traits
    from cnnir.passes.fuse import FuseConvBnRelu

    g = Graph("t")
    g.add("input", O.Input((3, 4, 4)))
    g.add("conv", O.Conv2d(2, 1), ["input"])
    g.add("act", PReLU(), ["conv"])
    g.outputs = ["act"]
    infer_shapes(g)
    assert FuseConvBnRelu().run(g) is g  # nothing fused


def test_traits_say_what_passes_may_do():
    fusable = {c for c in O.ALL_OPS if O.FUSABLE_ACTIVATION in c.traits}
    assert fusable == {O.ReLU, O.LeakyReLU, O.ReLU6, O.Sigmoid, O.HardSigmoid, O.Tanh,
                       O.HardSwish, O.SiLU}
    assert {c for c in O.ALL_OPS if O.MERGE in c.traits} == {O.Concat, O.Add, O.Mul, O.Sum,
                                                             O.Mean}
    assert {c for c in O.ALL_OPS if O.BROADCAST in c.traits} == {O.Add, O.Mul, O.Sum, O.Mean}
    assert O.SHAPE_PRESERVING in O.BatchNorm2d.traits and O.Softmax.traits.isdisjoint(
        {O.ELEMENTWISE, O.FUSABLE_ACTIVATION})
    with pytest.raises(TypeError, match="unknown trait"):
        type("Bad", (O.Op,), {"traits": frozenset({"fast"})})


def test_dsl_auto_names_use_the_op_prefix():
    @model(input=(3, 16, 16))
    def every(x):
        a = x.conv(4, 3, padding=1).bn().relu().relu6().leaky_relu().sigmoid().tanh()
        a = a.hardswish().hardsigmoid().silu().lrn().maxpool(2).avgpool(1).upsample(2)
        a = a.gelu().layernorm2d()
        a = a.conv_transpose(4, 2, stride=1)
        b = x.conv(4, 1)
        c = concat(mul(add(a, b), b), b).adaptive_avgpool(2).dropout().identity()
        c = mean(add(c, c, c), c).scale().pad(1).drop_path(0.1)
        c = c.slice(c=(0, 8)).channel_shuffle(2).space_to_depth(2).radix_softmax(2, 2)
        return c.global_avgpool().channel_conv1d(3).flatten().linear(3).softmax()

    g = every.build()
    kinds = set()
    for n in g.nodes()[1:]:
        op = g.op(n)
        assert op.prefix is not None and re.fullmatch(re.escape(op.prefix) + r"\d+", n), n
        kinds.add(type(op))
    assert kinds == set(O.ALL_OPS) - {O.Input, O.FusedConv2d}


def test_buffers_are_what_the_ops_declare():
    assert BUFFER_NAMES == ("running_mean", "running_var")


def test_init_weights_reads_fan_in_from_the_declared_shape_of_any_rank():
    g = Graph("t")
    g.add("input", O.Input((7,)))
    g.add("fc", O.Linear(5), ["input"])
    g.outputs = ["fc"]
    infer_shapes(g)
    assert param_shapes(g, "fc") == {"weight": (5, 7), "bias": (5,)}
    for mode in ("torchvision", "random"):
        w = init_weights(g, seed=1, mode=mode)["fc"]
        assert w["weight"].shape == (5, 7) and w["weight"].dtype == np.float32
    # random mode: N(0, 1/fan_in) with fan_in = 7 (dim 1 of a rank-2 weight)
    big = Graph("t")
    big.add("input", O.Input((400,)))
    big.add("fc", O.Linear(300), ["input"])
    big.outputs = ["fc"]
    infer_shapes(big)
    std = init_weights(big, seed=0, mode="random")["fc"]["weight"].std()
    assert abs(std - 1 / np.sqrt(400)) < 0.002


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_weights_imports_no_backend_or_frontend():
    mods = _imports(ROOT / "cnnir" / "weights.py")
    assert not any("backends" in m or "frontends" in m or m.startswith("torch") for m in mods)


def test_analysis_passes_hold_no_rule_tables_and_no_private_graph_access():
    for path in sorted((ROOT / "cnnir" / "passes").glob("*.py")) + [ROOT / "cnnir/analysis.py"]:
        text = path.read_text()
        assert "._g" not in text and "._attrs(" not in text, path.name
        assert not re.search(r"^RULES\b", text, re.M), path.name
        assert "isinstance(" not in text or "Activation)" not in text, path.name
