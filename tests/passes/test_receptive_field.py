"""receptive-field: chains by hand (r = 1 + sum (k-1) prod s, S = prod s,
P = sum p prod s), graphs whose paths differ, up-sampling, global layers."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import pytest

from cnnir import load
from cnnir import ops as O
from cnnir.dsl import model
from cnnir.errors import PassError
from cnnir.ir import Graph
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.receptive_field import RF, ReceptiveField


def chain(input_shape, *layers):
    g = Graph("t")
    prev = g.add("input", O.Input(tuple(input_shape)))
    for i, op in enumerate(layers):
        prev = g.add(f"l{i}", op, [prev])
    g.outputs = [prev]
    infer_shapes(g)
    ReceptiveField().run(g)
    return g


def rf(g, n) -> RF:
    return g.meta(n)["rf"]


def srp(g, n):
    """(size, stride, padding) along the height axis."""
    r = rf(g, n)
    return (r.size[0], r.stride[0], r.padding[0])


def test_input_and_stacked_3x3_convs():
    g = chain((3, 32, 32), *[O.Conv2d(4, 3, padding=1) for _ in range(3)])
    assert rf(g, "input") == RF((1, 1), (1, 1), (1, 1), (0, 0), True, False)
    # REFERENCE.md: two stacked 3x3 see 5x5, three see 7x7
    assert [srp(g, f"l{i}") for i in range(3)] == [(3, 1, 1), (5, 1, 2), (7, 1, 3)]
    assert rf(g, "l2").aligned and rf(g, "l2").min_size == (7, 7)


def test_torchvision_alexnet_by_hand():
    g = load("alexnet")
    ReceptiveField().run(g)
    convs = [n for n in g.nodes() if g.op(n).kind in ("conv2d", "maxpool2d")]
    # conv 11/4 p2: 11/4/2; pool 3/2: 11+2*4=19, P 2; conv 5 p2: 19+4*8=51, P 2+2*8=18;
    # pool: 51+2*8=67, S16; conv 3 p1 x3: +32 each, P +16 each; pool: 163+2*16=195, S32
    assert [srp(g, n) for n in convs] == [
        (11, 4, 2), (19, 8, 2), (51, 8, 18), (67, 16, 18), (99, 16, 34), (131, 16, 50),
        (163, 16, 66), (195, 32, 66)]


@model(input=(3, 227, 227))
def alexnet_2012(x):
    """The original AlexNet's feature extractor: 227 input, no padding in conv1."""
    x = x.conv(96, 11, stride=4, name="conv1").relu().lrn().maxpool(3, stride=2, name="pool1")
    x = x.conv(256, 5, padding=2, groups=2, name="conv2").relu().lrn()
    x = x.maxpool(3, stride=2, name="pool2")
    x = x.conv(384, 3, padding=1, name="conv3").relu()
    x = x.conv(384, 3, padding=1, groups=2, name="conv4").relu()
    x = x.conv(256, 3, padding=1, groups=2, name="conv5").relu()
    return x.maxpool(3, stride=2, name="pool5")


def test_original_alexnet_chain_by_hand():
    g = infer_shapes(alexnet_2012.build())
    ReceptiveField().run(g)
    # as torchvision's but with no padding in conv1: every padding is 2 smaller
    # (2 * 1 in input pixels); groups and LRN do not change the RF
    want = {"conv1": (11, 4, 0), "pool1": (19, 8, 0), "conv2": (51, 8, 16), "pool2": (67, 16, 16),
            "conv3": (99, 16, 32), "conv4": (131, 16, 48), "conv5": (163, 16, 64),
            "pool5": (195, 32, 64)}
    assert {n: srp(g, n) for n in want} == want
    assert g.shape("pool5") == (256, 6, 6)


def test_dilation_and_asymmetric_kernels():
    g = chain((3, 32, 32), O.Conv2d(4, 3, dilation=2, padding=2), O.Conv2d(4, (1, 7), padding=(0, 3)))
    assert rf(g, "l0").size == (5, 5) and rf(g, "l0").padding == (2, 2)
    assert rf(g, "l1").size == (5, 11) and rf(g, "l1").padding == (2, 5)


def two_path(path_a, path_b, merge=O.Concat):
    g = Graph("t")
    g.add("input", O.Input((3, 16, 16)))
    prev = "input"
    for i, op in enumerate(path_a):
        prev = g.add(f"a{i}", op, [prev])
    a = prev
    prev = "input"
    for i, op in enumerate(path_b):
        prev = g.add(f"b{i}", op, [prev])
    g.add("merge", merge(), [a, prev])
    g.outputs = ["merge"]
    infer_shapes(g)
    ReceptiveField().run(g)
    return g


def test_two_paths_that_disagree_are_flagged():
    # path a: 2x2/2 pool: r=2, S=2, P=0, centre offset P-(r-1)/2 = -1/2
    # path b: 3x3/2 conv p1: r=3, S=2, P=1, centre offset 0   -> not aligned
    g = two_path([O.MaxPool2d(2)], [O.Conv2d(3, 3, stride=2, padding=1)])
    assert g.shape("a0") == g.shape("b0") == (3, 8, 8)
    assert rf(g, "merge") == RF((3, 3), (2, 2), (2, 2), (1, 1), False, False)
    # downstream of the merge, both paths grow: another 3x3 conv adds 2*S = 4
    g2 = two_path([O.MaxPool2d(2)], [O.Conv2d(3, 3, stride=2, padding=1)])
    g2.add("after", O.Conv2d(3, 3, padding=1), ["merge"])
    g2.outputs = ["after"]
    infer_shapes(g2)
    ReceptiveField().run(g2)
    assert rf(g2, "after") == RF((7, 7), (6, 6), (2, 2), (3, 3), False, False)


def test_two_centred_paths_are_aligned_with_min_and_max():
    g = two_path([O.Conv2d(3, 3, padding=1)], [O.Conv2d(3, 5, padding=2), O.Conv2d(3, 3, padding=1)],
                 merge=O.Add)
    assert rf(g, "merge") == RF((7, 7), (3, 3), (1, 1), (3, 3), True, False)


def test_a_path_down_and_up_again_is_offset_from_a_direct_one():
    # a: 3x3/2 conv then x2 nearest upsampling (stride back to 1); b: a 1x1 conv.
    # Output y of a reads the conv unit y//2 centred at 2*(y//2): y - 1/2 on average
    g = two_path([O.Conv2d(3, 3, stride=2, padding=1), O.Upsample(2)], [O.Conv2d(3, 1)],
                 merge=O.Add)
    assert srp(g, "a1") == (3, 1, Fraction(3, 2))  # the phase-averaged padding
    assert rf(g, "merge").size == (3, 3) and rf(g, "merge").min_size == (1, 1)
    assert not rf(g, "merge").aligned


def test_a_ladder_of_two_billion_paths_in_one_sweep():
    # 31 stages of (3x3 conv | 1x1 conv) -> add: 2**31 paths from input to output;
    # the largest RF takes the 3x3 everywhere (1 + 2*31), the smallest never (1)
    g = Graph("ladder")
    prev = g.add("input", O.Input((2, 8, 8)))
    for i in range(31):
        a = g.add(f"s{i}/a", O.Conv2d(2, 3, padding=1), [prev])
        b = g.add(f"s{i}/b", O.Conv2d(2, 1), [prev])
        prev = g.add(f"s{i}/add", O.Add(), [a, b])
    g.outputs = [prev]
    infer_shapes(g)
    ReceptiveField().run(g)
    # (every unit's 63-pixel field, from 31 before it, covers the 8x8 input: whole)
    assert rf(g, prev) == RF((63, 63), (1, 1), (1, 1), (31, 31), True, True)
    assert not rf(g, "s2/add").whole  # 7 pixels: not yet


def test_unet_like_down_up_skip_is_aligned():
    # skip: conv3 p1 -> r=3, S=1, P=1.  deep: conv3 p1 (3,1,1) -> pool2 (4,2,1)
    # -> conv3 p1 (4+2*2=8, 2, 1+2=3) -> 2x2/2 up-conv: reads one unit, S=2/2=1,
    # P = 3 + 2*(1/4) = 7/2, centre offset 7/2 - 7/2 = 0 = the skip's 1 - 1
    g = Graph("unet")
    g.add("input", O.Input((1, 16, 16)))
    g.add("skip", O.Conv2d(4, 3, padding=1), ["input"])
    g.add("pool", O.MaxPool2d(2), ["skip"])
    g.add("deep", O.Conv2d(8, 3, padding=1), ["pool"])
    g.add("up", O.ConvTranspose2d(4, kernel=2, stride=2), ["deep"])
    g.add("cat", O.Concat(), ["skip", "up"])
    g.outputs = ["cat"]
    infer_shapes(g)
    ReceptiveField().run(g)
    assert srp(g, "up") == (8, 1, Fraction(7, 2))
    assert rf(g, "cat") == RF((8, 8), (3, 3), (1, 1), (Fraction(7, 2),) * 2, True, False)
    assert rf(g, "cat").to_dict()["padding"] == [3.5, 3.5]


def test_transposed_conv_and_bilinear_read_two_units():
    # k4 s2 up-conv: each output reads (4-1)//2 + 1 = 2 input units
    g = chain((2, 8, 8), O.Conv2d(2, 3, stride=2, padding=1), O.ConvTranspose2d(2, 4, 2, 1))
    assert rf(g, "l1").size == (3 + 2, 3 + 2) and rf(g, "l1").stride == (1, 1)
    g = chain((2, 8, 8), O.Conv2d(2, 3, stride=2, padding=1), O.Upsample(2, mode="bilinear"))
    assert rf(g, "l1").size == (5, 5) and rf(g, "l1").stride == (1, 1)


def test_global_pool_and_linear_see_the_whole_input():
    g = chain((3, 32, 32), O.Conv2d(4, 3, stride=2, padding=1), O.ReLU(), O.GlobalAvgPool(),
              O.Flatten(), O.Linear(10))
    assert not rf(g, "l1").whole
    # the union of the 16 units' fields: 3 + 15 * 2 = 33 pixels from -1
    assert rf(g, "l2").whole and rf(g, "l2").size == (33, 33) and rf(g, "l2").padding == (1, 1)
    assert rf(g, "l3").whole and rf(g, "l4").whole and rf(g, "l4").size == (33, 33)
    assert "whole" in str(rf(g, "l4"))


def test_linear_on_a_flattened_map_unions_its_units():
    g = chain((1, 6, 6), O.Conv2d(2, 3), O.Flatten(), O.Linear(4))
    assert rf(g, "l1") == rf(g, "l0")  # each element of the flat tensor is one map unit
    assert not rf(g, "l1").whole
    assert rf(g, "l2").whole and rf(g, "l2").size == (6, 6)  # 3 + (4 - 1) * 1


def test_a_pool_that_leaves_one_unit_over_the_whole_map_is_whole():
    g = chain((3, 7, 7), O.AvgPool2d(7, stride=1))
    assert rf(g, "l0").whole and rf(g, "l0").size == (7, 7)
    g = chain((3, 8, 8), O.AvgPool2d(7, stride=1))  # two units, each misses a row
    assert not rf(g, "l0").whole


def test_adaptive_pool():
    g = chain((3, 12, 12), O.AdaptiveAvgPool2d(4))  # an exact 3x3/3 pool
    assert srp(g, "l0") == (3, 3, 0) and rf(g, "l0").aligned
    g = chain((3, 7, 7), O.AdaptiveAvgPool2d(7))  # VGG's and AlexNet's: the identity
    assert srp(g, "l0") == (1, 1, 0)
    g = chain((3, 5, 5), O.AdaptiveAvgPool2d(1))
    assert rf(g, "l0").whole
    p = ReceptiveField()
    g = chain((3, 5, 5), O.AdaptiveAvgPool2d(3))  # bins 2, 3, 2: not a uniform window
    p.run(g)
    assert rf(g, "l0").size == (3, 3) and not rf(g, "l0").aligned
    assert any("unequal size" in note for note in p.notes)


def test_fused_conv_has_the_conv_rf():
    conv = O.Conv2d(4, 5, stride=2, padding=2)
    a = chain((3, 16, 16), conv, O.BatchNorm2d(), O.ReLU())
    b = chain((3, 16, 16), O.FusedConv2d(conv, O.BatchNorm2d(), O.ReLU()))
    assert rf(a, "l2") == rf(b, "l0") == RF((5, 5), (5, 5), (2, 2), (2, 2), True, False)


@dataclass(frozen=True)
class Warp(O.Op):
    kind: ClassVar[str] = "warp"

    def infer(self, inputs):
        return inputs[0]


def test_an_op_without_a_rule_raises():
    g = Graph("t")
    g.add("input", O.Input((3, 4, 4)))
    g.add("w", Warp(), ["input"])
    g.outputs = ["w"]
    infer_shapes(g)
    with pytest.raises(PassError, match="'warp'") as info:
        ReceptiveField().run(g)
    assert info.value.node == "w"
