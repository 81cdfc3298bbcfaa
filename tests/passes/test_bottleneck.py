"""insert-bottleneck: the two bottleneck figures of REFERENCE.md from first principles,
the IR after the pass, the copied BN/activation pattern, and the convs it must skip.

The reference figures count weights without biases ("153,600 weights"), so the
convs here are declared ``bias=False`` and the 1x1 reductions inherit that.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cnnir.errors import PassError
from cnnir.frontends.dsl import concat, model
from cnnir.passes import get_pass
from cnnir.passes.count_macs import count_macs
from cnnir.passes.count_params import count_params
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import PassManager
from cnnir.weights import init_weights


def run(net, pipeline):
    pm = PassManager.from_string(pipeline)
    g = pm.run(net.build())
    return g, pm.passes[-1]


def ir(text: str) -> str:
    return textwrap.dedent(text).strip()


# --------------------------------------------------------------------------- REFERENCE.md 1


@model(input=(192, 28, 28))
def five_by_five(x):
    return x.conv(32, 5, padding=2, bias=False).relu()


def test_reference_5x5_conv_on_28x28x192_with_a_16_channel_reduction():
    before = infer_shapes(five_by_five.build())
    # 32 filters of 5x5x192; every one of the 28x28x32 outputs costs 5*5*192 MACs
    assert count_params(before) == 32 * 5 * 5 * 192 == 153_600
    assert count_macs(before) == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400  # 120.4M

    g, p = run(five_by_five, "insert-bottleneck{channels=16}")
    assert g.format(locs=False) == ir("""
        graph five_by_five {
          %input = input() : 192x28x28
          %conv1_reduce = conv2d[k=1x1,s=1,p=0,nobias](%input) : 16x28x28
          %conv1_reduce_relu = relu(%conv1_reduce) : 16x28x28
          %conv1 = conv2d[k=5x5,s=1,p=2,nobias](%conv1_reduce_relu) : 32x28x28
          %relu1 = relu(%conv1) : 32x28x28
          return %relu1
        }""")
    w_reduce, w_conv = 16 * 192, 32 * 5 * 5 * 16
    assert (w_reduce, w_conv) == (3_072, 12_800)
    m_reduce, m_conv = 28 * 28 * 16 * 192, 28 * 28 * 32 * 5 * 5 * 16
    assert (m_reduce, m_conv) == (2_408_448, 10_035_200)  # 2.4M + 10.0M
    assert count_params(g) == w_reduce + w_conv == 15_872
    assert count_macs(g) == m_reduce + m_conv == 12_443_648  # 12.4M
    (r,) = p.rewritten
    assert (r["params_before"], r["params_after"]) == (153_600, 15_872)
    assert (r["macs_before"], r["macs_after"]) == (120_422_400, 12_443_648)
    assert p.model_totals == {"params": (153_600, 15_872), "macs": (120_422_400, 12_443_648)}
    assert p.notes == [
        "'conv1' (5x5, 192->32 channels): inserted 1x1 conv 'conv1_reduce' to 16 channels + "
        "relu; params 153,600 -> 15,872, MACs 120,422,400 (120.42M) -> 12,443,648 (12.44M)",
        "total over 1 conv(s): params 153,600 -> 15,872, MACs 120,422,400 (120.42M) -> "
        "12,443,648 (12.44M)",
        "model: params 153,600 -> 15,872, MACs 120,422,400 (120.42M) -> 12,443,648 (12.44M)",
    ]


def test_ratio_reaches_the_same_16_channels():
    g, _ = run(five_by_five, "insert-bottleneck{ratio=12}")  # 192 // 12 == 16
    assert g.shape("conv1_reduce") == (16, 28, 28)
    assert count_macs(g) == 12_443_648


# --------------------------------------------------------------------------- REFERENCE.md 2


@model(input=(256, 28, 28))
def naive_inception(x):
    b1 = x.conv(128, 1, bias=False).relu()
    b2 = x.conv(192, 3, padding=1, bias=False).relu()
    b3 = x.conv(96, 5, padding=2, bias=False).relu()
    b4 = x.maxpool(3, stride=1, padding=1)
    return concat(b1, b2, b3, b4)


@model(input=(256, 28, 28))
def inception_with_pool_projection(x):
    b1 = x.conv(128, 1, bias=False).relu()
    b2 = x.conv(64, 1, bias=False).relu().conv(192, 3, padding=1, bias=False).relu()
    b3 = x.conv(64, 1, bias=False).relu().conv(96, 5, padding=2, bias=False).relu()
    b4 = x.maxpool(3, stride=1, padding=1).conv(64, 1, bias=False).relu()
    return concat(b1, b2, b3, b4)


HW = 28 * 28


def test_reference_naive_inception_on_28x28x256():
    naive = HW * 128 * 256 + HW * 192 * 3 * 3 * 256 + HW * 96 * 5 * 5 * 256
    assert (HW * 128 * 256, HW * 192 * 9 * 256, HW * 96 * 25 * 256) == (
        25_690_112, 346_816_512, 481_689_600)
    assert naive == 854_196_224  # the 854M of the course notes
    assert count_macs(infer_shapes(naive_inception.build())) == naive

    g, p = run(naive_inception, "insert-bottleneck{channels=64}")
    # 1x1 reductions to 64 in front of the 3x3 and the 5x5:
    #   1x1 branch          28*28*128*256        =  25,690,112
    #   3x3 reduce          28*28*64*256         =  12,845,056
    #   3x3 on 64           28*28*192*9*64       =  86,704,128
    #   5x5 reduce          28*28*64*256         =  12,845,056
    #   5x5 on 64           28*28*96*25*64       = 120,422,400
    #                                       total = 258,506,752  (3.3x fewer)
    reduced = (HW * 128 * 256 + 2 * HW * 64 * 256 + HW * 192 * 9 * 64 + HW * 96 * 25 * 64)
    assert reduced == 258_506_752
    assert count_macs(g) == reduced
    assert p.model_totals["macs"] == (854_196_224, 258_506_752)
    # the module's output is unchanged: 128 + 192 + 96 + 256 channels
    assert g.shape(g.outputs[0]) == (672, 28, 28)
    assert [r["conv"] for r in p.rewritten] == ["conv2", "conv3"]


def test_reference_inception_with_the_pool_projection_too():
    # GoogLeNet also follows the pool with a 1x1 to 64, which the pass cannot do (it
    # changes the module's output from 672 to 480 channels); built by hand it adds
    # 28*28*64*256 = 12,845,056 MACs to the pass's result: 271,351,808 (~271M), not
    # the "few hundred million" some notes miscompute.
    g = infer_shapes(inception_with_pool_projection.build())
    assert count_macs(g) == 258_506_752 + HW * 64 * 256 == 271_351_808
    assert g.shape(g.outputs[0]) == (480, 28, 28)


# --------------------------------------------------------------------------- pattern


@model(input=(128, 14, 14))
def bn_net(x):
    return x.conv(64, 3, padding=1, bias=False).bn(eps=1e-3).leaky_relu(0.1).conv(10, 1)


def test_the_conv_own_bn_and_activation_follow_the_reduction():
    g, p = run(bn_net, "insert-bottleneck")  # defaults: min_channels=64, ratio=4
    assert g.format(locs=False) == ir("""
        graph bn_net {
          %input = input() : 128x14x14
          %conv1_reduce = conv2d[k=1x1,s=1,p=0,nobias](%input) : 32x14x14
          %conv1_reduce_bn = batchnorm2d[eps=0.001](%conv1_reduce) : 32x14x14
          %conv1_reduce_leaky_relu = leaky_relu[slope=0.1](%conv1_reduce_bn) : 32x14x14
          %conv1 = conv2d[k=3x3,s=1,p=1,nobias](%conv1_reduce_leaky_relu) : 64x14x14
          %bn1 = batchnorm2d[eps=0.001](%conv1) : 64x14x14
          %lrelu1 = leaky_relu[slope=0.1](%bn1) : 64x14x14
          %conv2 = conv2d[k=1x1,s=1,p=0](%lrelu1) : 10x14x14
          return %conv2
        }""")
    before = infer_shapes(bn_net.build())
    assert g.loc("conv1_reduce") == g.loc("conv1_reduce_bn") == before.loc("conv1")
    (r,) = p.rewritten
    # params include the new BN's gamma and beta (count-params), 2 * 32
    assert r["params_after"] == 32 * 128 + 2 * 32 + 64 * 9 * 32
    assert r["macs_after"] == 14 * 14 * (32 * 128 + 64 * 9 * 32)


@model(input=(64, 8, 8))
def bare(x):
    return x.conv(8, 3, padding=1)


def test_a_conv_followed_by_nothing_gets_a_bare_1x1_with_its_bias_setting():
    g, _ = run(bare, "insert-bottleneck")
    assert g.format(locs=False) == ir("""
        graph bare {
          %input = input() : 64x8x8
          %conv1_reduce = conv2d[k=1x1,s=1,p=0](%input) : 16x8x8
          %conv1 = conv2d[k=3x3,s=1,p=1](%conv1_reduce) : 8x8x8
          return %conv1
        }""")


# --------------------------------------------------------------------------- must not fire


@model(input=(96, 16, 16))
def skipped(x):
    a = x.conv(32, 1).relu()                     # 1x1: nothing to reduce
    b = x.conv(32, 7, padding=3).relu()          # 7x7 not in kernels
    c = x.conv(96, 3, padding=1, groups=96)      # depthwise
    d = x.conv(24, 1).relu().conv(32, 3, padding=1).relu()  # already a bottleneck
    e = x.conv(16, 3, padding=1).conv(8, 3, padding=1)  # second conv: 16 < 64 channels
    return concat(a, b, c, d, e)


def test_convs_it_must_skip_and_why():
    before = infer_shapes(skipped.build())
    g, p = run(skipped, "insert-bottleneck")
    assert [n for n in g.nodes() if n not in before] == ["conv6_reduce"]
    assert g.inputs("conv6") == ("conv6_reduce",)
    assert g.shape(g.outputs[0]) == before.shape(before.outputs[0])
    _, p = run(skipped, "insert-bottleneck")
    assert p.notes[0] == "skip 'conv2': kernel 7x7 is not in kernels=3,5"
    assert p.notes[1] == "skip 'conv3': grouped conv (groups=96)"
    assert p.notes[2] == "skip 'conv5': already preceded by the 1x1 conv 'conv4'"
    # 96 -> 24 channels, then the 3x3 to 16: 96*24 + 24 + 16*9*24 + 16 params
    assert p.notes[3] == (
        "'conv6' (3x3, 96->16 channels): inserted 1x1 conv 'conv6_reduce' to 24 channels; "
        f"params {16 * 9 * 96 + 16:,} -> {96 * 24 + 24 + 16 * 9 * 24 + 16:,}, "
        f"MACs {256 * 16 * 9 * 96:,} (3.54M) -> {256 * (24 * 96 + 16 * 9 * 24):,} (1.47M)")
    assert p.notes[4] == "skip 'conv7': 16 input channels < min_channels=64"


def test_kernels_option_and_idempotence():
    g, p = run(skipped, "insert-bottleneck{kernels=7}")
    assert [r["conv"] for r in p.rewritten] == ["conv2"]
    assert g.shape("conv2_reduce") == (24, 16, 16)
    pm = PassManager.from_string("insert-bottleneck{kernels=7}")
    again = pm.run(g)
    assert again.format() == g.format() and not pm.records[-1].changed
    assert "skip 'conv2': already preceded by the 1x1 conv 'conv2_reduce'" in pm.records[-1].notes


def test_a_width_that_does_not_reduce_is_skipped():
    g, p = run(five_by_five, "insert-bottleneck{channels=192}")
    assert not p.changed and len(g) == 3
    assert p.notes == ["skip 'conv1': a reduction to 192 channels does not reduce its 192 "
                       "input channels", "no conv rewritten"]


def test_weights_of_a_rewritten_conv_are_dropped_the_others_kept():
    g = infer_shapes(bn_net.build())
    g.weights = init_weights(g, seed=0, mode="random")
    out = PassManager.from_string("insert-bottleneck").run(g)
    assert set(out.weights) == {"bn1", "conv2"}
    assert np.array_equal(out.weights["conv2"]["weight"], g.weights["conv2"]["weight"])


@pytest.mark.parametrize("opts, msg", [
    ("ratio=0", "ratio must be at least 1"),
    ("channels=0", "channels must be at least 1"),
    ("kernels=0", "kernels must be positive sizes"),
])
def test_bad_options(opts, msg):
    with pytest.raises(PassError, match=msg):
        PassManager.from_string(f"insert-bottleneck{{{opts}}}")


def test_options_parse_from_a_pipeline_string():
    p = get_pass("insert-bottleneck", min_channels="128", ratio="2", kernels="3,5,7",
                 channels="none")
    assert (p.min_channels, p.ratio, p.kernels, p.channels) == (128, 2, (3, 5, 7), None)
