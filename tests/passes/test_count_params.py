"""count-params on tiny hand-built graphs: every rule from first principles, and
against PyTorch's own count of the same layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from cnnir import ops as O
from cnnir.errors import PassError
from cnnir.ir import Graph
from cnnir.passes import get_pass
from cnnir.passes.count_params import CountParams, count_params
from cnnir.passes.infer_shapes import infer_shapes


def chain(input_shape, *layers):
    """input -> layer0 -> layer1 ...; returns the graph with shapes inferred."""
    g = Graph("t")
    prev = g.add("input", O.Input(tuple(input_shape)))
    for i, op in enumerate(layers):
        prev = g.add(f"l{i}", op, [prev])
    g.outputs = [prev]
    return infer_shapes(g)


def params_of(g, n):
    return g.meta(n)["params"]


def test_conv_weights_and_bias():
    g = chain((3, 8, 8), O.Conv2d(16, 3, padding=1), O.Conv2d(4, 5, bias=False))
    CountParams().run(g)
    assert params_of(g, "l0") == {"params": 16 * 3 * 3 * 3 + 16, "bias": 16, "buffers": 0}
    assert params_of(g, "l1") == {"params": 4 * 16 * 5 * 5, "bias": 0, "buffers": 0}


def test_grouped_and_depthwise_conv():
    g = chain((32, 8, 8), O.Conv2d(64, 3, groups=4, bias=False),
              O.Conv2d(64, 3, groups=64, bias=True))
    CountParams().run(g)
    assert params_of(g, "l0")["params"] == 64 * (32 // 4) * 9
    assert params_of(g, "l1")["params"] == 64 * 1 * 9 + 64


def test_transposed_conv_layout_is_cin_times_cout_per_group():
    g = chain((8, 4, 4), O.ConvTranspose2d(6, kernel=3, stride=2, groups=2))
    CountParams().run(g)
    assert params_of(g, "l0") == {"params": 8 * (6 // 2) * 9 + 6, "bias": 6, "buffers": 0}


def test_batchnorm_params_and_running_statistics_apart():
    g = chain((10, 4, 4), O.BatchNorm2d())
    p = CountParams()
    p.run(g)
    assert params_of(g, "l0") == {"params": 20, "bias": 10, "buffers": 20}
    assert (p.total_params, p.total_buffers) == (20, 20)


def test_linear():
    g = chain((400,), O.Linear(120), O.Linear(84, bias=False))
    CountParams().run(g)
    assert params_of(g, "l0")["params"] == 400 * 120 + 120
    assert params_of(g, "l1")["params"] == 120 * 84


def test_fused_conv_is_conv_weights_plus_one_bias_per_channel():
    conv = O.Conv2d(16, 3, padding=1, bias=False)
    g = chain((3, 8, 8), O.FusedConv2d(conv, O.BatchNorm2d(), O.ReLU()),
              O.FusedConv2d(O.Conv2d(8, 1, bias=True)),
              O.FusedConv2d(O.Conv2d(8, 1, bias=False)))
    CountParams().run(g)
    # the BN's 2C params and 2C buffers are folded into the conv's weights and one bias
    assert params_of(g, "l0") == {"params": 16 * 27 + 16, "bias": 16, "buffers": 0}
    assert params_of(g, "l1")["params"] == 8 * 16 + 8
    # a fused conv always carries a bias (cnnir.weights gives it one)
    assert params_of(g, "l2")["params"] == 8 * 8 + 8


def test_weightless_ops_count_zero_and_total_is_the_sum():
    g = chain((3, 8, 8), O.Conv2d(4, 3), O.ReLU(), O.MaxPool2d(2), O.LocalResponseNorm(),
              O.Upsample(2), O.AdaptiveAvgPool2d(2), O.Dropout(), O.Flatten(), O.Linear(5),
              O.Softmax())
    p = CountParams()
    p.run(g)
    for n in ("l1", "l2", "l3", "l4", "l5", "l6", "l7", "l9"):
        assert params_of(g, n) == {"params": 0, "bias": 0, "buffers": 0}
    # conv 4x3x3x3 + 4; adaptive pool to 4x2x2 -> linear 16 * 5 + 5
    assert p.total_params == (4 * 27 + 4) + (4 * 2 * 2 * 5 + 5)
    assert count_params(g) == p.total_params


def test_against_pytorch_numel():
    from torch import nn

    cases = [
        ((3, 9, 9), O.Conv2d(12, (3, 5), groups=3, bias=True), nn.Conv2d(3, 12, (3, 5), groups=3)),
        ((6, 5, 5), O.ConvTranspose2d(4, kernel=3, stride=2, groups=2, bias=False),
         nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2, bias=False)),
        ((7, 4, 4), O.BatchNorm2d(), nn.BatchNorm2d(7)),
        ((30,), O.Linear(11), nn.Linear(30, 11)),
    ]
    for shape, op, module in cases:
        g = chain(shape, op)
        CountParams().run(g)
        got = params_of(g, "l0")
        assert got["params"] == sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for name, b in module.named_buffers()
                      if name.endswith(("running_mean", "running_var")))
        assert got["buffers"] == buffers
        bias = module.bias.numel() if getattr(module, "bias", None) is not None else 0
        assert got["bias"] == bias


@dataclass(frozen=True)
class Mystery(O.Op):
    kind: ClassVar[str] = "mystery"

    def infer(self, inputs):
        return inputs[0]


@dataclass(frozen=True)
class PReLULike(O.Activation):
    """An activation with weights: must not silently count as zero."""

    kind: ClassVar[str] = "prelu_like"


@pytest.mark.parametrize("op", [Mystery(), PReLULike()])
def test_an_op_without_a_rule_raises_naming_the_node(op):
    g = chain((3, 4, 4), O.Conv2d(2, 1), op)
    with pytest.raises(PassError) as info:
        CountParams().run(g)
    assert info.value.node == "l1"
    assert f"'{op.kind}'" in str(info.value) and "never counted as zero" in str(info.value)


def test_unknown_shapes_are_an_error_not_a_crash():
    g = Graph("t")
    g.add("input", O.Input((3, 4, 4)))
    g.add("c", O.Conv2d(2, 1), ["input"])
    with pytest.raises(PassError, match="run infer-shapes first"):
        CountParams().run(g)


def test_registered_without_options():
    p = get_pass("count-params")
    assert isinstance(p, CountParams)
    with pytest.raises(PassError, match="takes no options"):
        get_pass("count-params", total_params="3")
