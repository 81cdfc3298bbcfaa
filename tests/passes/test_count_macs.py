"""count-macs on tiny hand-built graphs: MACs from first principles, FLOPs = 2 MACs,
the other_ops table, batch scaling, and unknown ops failing loudly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from cnnir import ops as O
from cnnir.errors import PassError
from cnnir.ir import Graph
from cnnir.passes import get_pass
from cnnir.passes.count_macs import CountMacs, adaptive_bins, count_macs
from cnnir.passes.count_params import CountParams
from cnnir.passes.infer_shapes import infer_shapes


def chain(input_shape, *layers):
    g = Graph("t")
    prev = g.add("input", O.Input(tuple(input_shape)))
    for i, op in enumerate(layers):
        prev = g.add(f"l{i}", op, [prev])
    g.outputs = [prev]
    return infer_shapes(g)


def cost(g, n):
    return g.meta(n)["cost"]


def test_conv_macs_flops_and_bias_adds():
    g = chain((3, 8, 8), O.Conv2d(4, 3, padding=1), O.Conv2d(6, 3, stride=2, bias=False))
    CountMacs().run(g)
    # Hout * Wout * Cout * Cin * kh * kw
    assert cost(g, "l0") == {"macs": 8 * 8 * 4 * 3 * 9, "flops": 2 * 8 * 8 * 4 * 3 * 9,
                             "other_ops": 4 * 8 * 8}
    assert cost(g, "l1") == {"macs": 3 * 3 * 6 * 4 * 9, "flops": 2 * 3 * 3 * 6 * 4 * 9,
                             "other_ops": 0}


def test_grouped_and_dilated_conv():
    g = chain((16, 10, 10), O.Conv2d(32, 3, groups=8, bias=False),
              O.Conv2d(32, 3, dilation=2, groups=32, bias=False))
    CountMacs().run(g)
    assert cost(g, "l0")["macs"] == 8 * 8 * 32 * (16 // 8) * 9
    # dilation widens the window (8 -> 4), not the number of taps
    assert cost(g, "l1")["macs"] == 4 * 4 * 32 * 1 * 9


def test_the_1x1_bottleneck_of_the_reference():
    # REFERENCE.md: a 5x5 conv with 32 filters on 28x28x192 is 153,600 weights and
    # 120.4M MACs; a 1x1 conv to 16 channels in front makes it 15,872 weights, 12.4M MACs
    direct = chain((192, 28, 28), O.Conv2d(32, 5, padding=2, bias=False))
    reduced = chain((192, 28, 28), O.Conv2d(16, 1, bias=False),
                    O.Conv2d(32, 5, padding=2, bias=False))
    assert count_macs(direct) == 120_422_400
    assert count_macs(reduced) == 2_408_448 + 10_035_200
    p = CountParams()
    p.run(direct)
    assert p.total_params == 153_600
    p.run(reduced)
    assert p.total_params == 3_072 + 12_800


def test_naive_and_reduced_inception_modules_of_the_reference():
    from cnnir.dsl import concat, model

    @model(input=(256, 28, 28))
    def naive(x):
        return concat(x.conv(128, 1), x.conv(192, 3, padding=1), x.conv(96, 5, padding=2),
                      x.maxpool(3, stride=1, padding=1))

    @model(input=(256, 28, 28))
    def reduced(x):
        return concat(x.conv(128, 1), x.conv(64, 1).conv(192, 3, padding=1),
                      x.conv(64, 1).conv(96, 5, padding=2),
                      x.maxpool(3, stride=1, padding=1).conv(64, 1))

    # 28*28 * (256*128 + 256*9*192 + 256*25*96) = 784 * 1,089,536
    assert count_macs(infer_shapes(naive.build())) == 854_196_224
    # 28*28 * (256*128 + 256*64 + 64*9*192 + 256*64 + 64*25*96 + 256*64) = 784 * 346,112
    assert count_macs(infer_shapes(reduced.build())) == 271_351_808


def test_transposed_conv_macs_equal_those_of_its_adjoint_conv():
    # every input pixel scatters a Cout/groups x kh x kw kernel per input channel
    up = chain((4, 3, 3), O.ConvTranspose2d(2, kernel=2, stride=2))
    CountMacs().run(up)
    assert cost(up, "l0")["macs"] == 3 * 3 * 4 * 2 * 4
    assert cost(up, "l0")["other_ops"] == 2 * 6 * 6  # its bias
    # the conv it is the gradient of (2 -> 4 channels, k2 s2 on 6x6) does the same work
    down = chain((2, 6, 6), O.Conv2d(4, 2, stride=2, bias=False))
    assert count_macs(down) == count_macs(up)


def test_linear_and_fused_conv():
    g = chain((3, 6, 6), O.FusedConv2d(O.Conv2d(5, 3, bias=False), O.BatchNorm2d(), O.ReLU6()),
              O.Flatten(), O.Linear(7))
    CountMacs().run(g)
    assert cost(g, "l0") == {"macs": 4 * 4 * 5 * 3 * 9, "flops": 2 * 4 * 4 * 5 * 3 * 9,
                             "other_ops": (1 + 2) * 5 * 4 * 4}  # bias add + relu6's 2 compares
    assert cost(g, "l2") == {"macs": 80 * 7, "flops": 2 * 80 * 7, "other_ops": 7}


@pytest.mark.parametrize("op, per_element", [
    (O.BatchNorm2d(), 2), (O.ReLU(), 1), (O.Tanh(), 1), (O.Sigmoid(), 1), (O.LeakyReLU(), 2),
    (O.ReLU6(), 2), (O.SiLU(), 2), (O.HardSigmoid(), 4), (O.HardSwish(), 5), (O.Softmax(), 3),
    (O.LocalResponseNorm(size=5), 13), (O.Dropout(), 0), (O.Identity(), 0),
])
def test_elementwise_ops_per_output_element(op, per_element):
    g = chain((6, 5, 7), op)
    CountMacs().run(g)
    assert cost(g, "l0") == {"macs": 0, "flops": 0, "other_ops": per_element * 6 * 5 * 7}


def test_pooling_and_resizing():
    g = chain((3, 8, 8), O.MaxPool2d(3, stride=1, padding=1))
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 8 * 3 * 8 * 8  # 9 - 1 compares per output
    g = chain((3, 8, 8), O.AvgPool2d(2))
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 4 * 3 * 4 * 4  # 3 adds and a divide
    g = chain((3, 5, 6), O.GlobalAvgPool())
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 3 * 5 * 6
    g = chain((2, 4, 4), O.Upsample(2), O.Upsample(3, mode="bilinear"))
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 0  # nearest: a gather
    assert cost(g, "l1")["other_ops"] == 7 * 2 * 24 * 24  # 4 multiplies, 3 adds


def test_adaptive_pool_counts_pytorch_bins_exactly():
    # 5 -> 3: bins [0,2) [1,4) [3,5), sizes 2 + 3 + 2 = 7 per axis
    assert adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    g = chain((4, 5, 5), O.AdaptiveAvgPool2d(3))
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 4 * 7 * 7
    # divisible sizes are plain pooling: 6 -> 2 is a 3x3 window per output
    g = chain((4, 6, 6), O.AdaptiveAvgPool2d(2))
    CountMacs().run(g)
    assert cost(g, "l0")["other_ops"] == 4 * 2 * 2 * 9


def test_merges():
    g = Graph("t")
    g.add("input", O.Input((4, 3, 3)))
    g.add("a", O.Conv2d(4, 1, bias=False), ["input"])
    g.add("gap", O.GlobalAvgPool(), ["a"])
    g.add("add", O.Add(), ["a", "input"])
    g.add("mul", O.Mul(), ["add", "gap"])  # broadcast 4x3x3 * 4x1x1
    g.add("cat", O.Concat(), ["mul", "a"])
    g.outputs = ["cat"]
    infer_shapes(g)
    CountMacs().run(g)
    assert cost(g, "add")["other_ops"] == 36
    assert cost(g, "mul")["other_ops"] == 36
    assert cost(g, "cat")["other_ops"] == 0


def test_batch_scales_every_count():
    g = chain((3, 8, 8), O.Conv2d(4, 3), O.ReLU(), O.Flatten(), O.Linear(2))
    one = CountMacs()
    one.run(g)
    single = {n: dict(cost(g, n)) for n in g.nodes()}
    eight = CountMacs(batch=8)
    eight.run(g)
    for n in g.nodes():
        assert cost(g, n) == {k: 8 * v for k, v in single[n].items()}
    assert eight.total_macs == 8 * one.total_macs
    assert eight.total_other_ops == 8 * one.total_other_ops
    with pytest.raises(PassError, match="batch"):
        CountMacs(batch=0).run(g)


@dataclass(frozen=True)
class Mystery(O.Op):
    kind: ClassVar[str] = "mystery"

    def infer(self, inputs):
        return inputs[0]


@dataclass(frozen=True)
class Gelu(O.Activation):
    kind: ClassVar[str] = "gelu_test"


def test_an_op_without_a_cost_rule_raises():
    g = chain((3, 4, 4), O.Conv2d(2, 1), Mystery())
    with pytest.raises(PassError) as info:
        CountMacs().run(g)
    assert info.value.node == "l1" and "'mystery'" in str(info.value)


def test_a_fused_activation_without_a_rule_raises_naming_the_node():
    g = chain((3, 4, 4), O.FusedConv2d(O.Conv2d(2, 1), None, Gelu()))
    with pytest.raises(PassError, match="gelu_test") as info:
        CountMacs().run(g)
    assert info.value.node == "l0"


def test_pipeline_option():
    p = get_pass("count-macs", batch="4")
    assert isinstance(p, CountMacs) and p.batch == 4
