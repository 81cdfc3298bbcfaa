"""ShuffleNet v1 / v2 and the paper's U-Net against their papers, torchvision and first
principles.

* ShuffleNet v1, Table 1: the complexities 143 / 140 / 137 / 133 / 137 MFLOPs for
  g = 1, 2, 3, 4, 8 are the *convolutions'* multiply-adds: cnnir's MACs less the FC
  layer's (C x 1000) round to them for every g, while the totals with the FC layer
  do not (140.8, 134.3, 138.4 for g = 2, 4, 8).  The 0.5x and 2x models (g = 3) of
  Tables 2 and 5 (38 and 524 MFLOPs) are the totals.  Every stage's output size and
  width is Table 1's.
* ShuffleNet v2: params equal torchvision's ``num_params`` exactly and MACs its
  ``_ops`` GFLOPS as printed; Table 5 of the paper rounds the params to 1.4 / 2.3 /
  3.5 / 7.4M, which cnnir's read as, but prints 41 / 146 / 299 / 591 MFLOPs, 1.3 to
  1.8% above the conv + FC count that torchvision's figures confirm; the test pins
  the gap (the paper does not say what else it counts).
* U-Net as published: Figure 1's sizes at every level (572 in, 388 out; crops of
  568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56), the padded variant's weights, and
  MACs from the textbook formulas.
"""

from __future__ import annotations

import pytest

from cnnir import ops as O
from cnnir import zoo
from cnnir.analysis import analyze


def macs_less_fc(name: str) -> tuple[int, int]:
    g = zoo.get(name).build()
    a = analyze(g)
    fc = [n for n in g.nodes() if isinstance(g.op(n), O.Linear)]
    return a.macs, a.macs - sum(g.shape(g.inputs(n)[0])[0] * 1000 for n in fc)


@pytest.mark.parametrize("groups,mflops,total", [
    (1, 143, 143.079), (2, 140, 140.837), (3, 137, 137.461), (4, 133, 134.340),
    (8, 137, 138.366)])
def test_shufflenet_v1_table_1_counts_the_convolutions(groups, mflops, total):
    macs, convs = macs_less_fc(f"shufflenet_v1_g{groups}")
    assert round(convs / 1e6) == mflops
    assert round(macs / 1e6, 3) == total


@pytest.mark.parametrize("name,mflops", [("shufflenet_v1_x0_5", 38), ("shufflenet_v1_x2_0", 524)])
def test_shufflenet_v1_scaled_models_tables_2_and_5(name, mflops):
    assert round(analyze(zoo.get(name).build()).macs / 1e6) == mflops


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_v1_table_1_output_sizes(groups):
    g = zoo.get(f"shufflenet_v1_g{groups}").build()
    analyze(g)
    widths = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
              8: (384, 768, 1536)}[groups]
    assert g.shape("stem/pool") == (24, 56, 56)
    for stage, (c, side, units) in enumerate(zip(widths, (28, 14, 7), (4, 8, 4)), start=2):
        assert g.shape(f"stage{stage}/shuffle_unit_{units}/relu") == (c, side, side)
        assert f"stage{stage}/shuffle_unit_{units + 1}/relu" not in g
    # the first pointwise conv of Stage 2 is not grouped; every other one is
    assert g.op("stage2/shuffle_unit_1/gconv1").groups == 1
    assert g.op("stage2/shuffle_unit_2/gconv1").groups == groups
    shuffles = [n for n in g.nodes() if isinstance(g.op(n), O.ChannelShuffle)]
    assert len(shuffles) == 16 and {g.op(n).groups for n in shuffles} == {groups}


TORCHVISION_V2 = {"0_5": (1_366_792, "0.04"), "1_0": (2_278_604, "0.145"),
                  "1_5": (3_503_624, "0.296"), "2_0": (7_393_996, "0.583")}


@pytest.mark.parametrize("scale", sorted(TORCHVISION_V2))
def test_shufflenet_v2_equals_torchvision(scale):
    params, gflops = TORCHVISION_V2[scale]
    a = analyze(zoo.get(f"shufflenet_v2_x{scale}").build())
    assert a.params == params
    digits = len(gflops.partition(".")[2])
    assert f"{a.macs / 1e9:.{digits}f}" == gflops


@pytest.mark.parametrize("scale,params,mflops,gap", [
    ("0_5", 1.4, 41, 0.524), ("1_0", 2.3, 146, 1.092), ("1_5", 3.5, 299, 3.241),
    ("2_0", 7.4, 591, 7.747)])
def test_shufflenet_v2_paper_table_5(scale, params, mflops, gap):
    a = analyze(zoo.get(f"shufflenet_v2_x{scale}").build())
    assert round(a.params / 1e6, 1) == params
    # the paper's MFLOPs exceed the conv + FC multiply-adds (torchvision's GFLOPS) by
    # this much; the architecture is the same (the params agree exactly)
    assert round(mflops - a.macs / 1e6, 3) == gap


def test_shufflenet_v2_unit_structure():
    g = zoo.get("shufflenet_v2_x1_0").build()
    analyze(g)
    split = [n for n in g.nodes() if n.startswith("stage2/inverted_residual_2/split")]
    assert [g.op(n).attrs() for n in split] == ["c=0:58", "c=58:116"]
    assert g.shape("stage4/inverted_residual_4/shuffle") == (464, 7, 7)
    assert g.shape("conv5/bn") == (1024, 7, 7)


def test_unet_original_figure_1_sizes():
    g = zoo.get("unet_original").build()
    a = analyze(g)
    side = {f"contract_valid_{k}/relu2": s for k, s in
            (("1", 568), ("2", 280), ("3", 136), ("4", 64), ("5", 28))}
    for n, s in side.items():
        assert g.shape(n)[1:] == (s, s), n
    for level, (big, small, c) in {"4": (64, 56, 512), "3": (136, 104, 256),
                                   "2": (280, 200, 128), "1": (568, 392, 64)}.items():
        crop = g.op(f"expand_valid_{level}/crop")
        m = (big - small) // 2
        assert crop == O.Slice(None, (m, m + small), (m, m + small))
        assert g.shape(f"expand_valid_{level}/concat") == (2 * c, small, small)
    assert g.shape(g.outputs[0]) == (2, 388, 388)
    # the padded variant has the same weights
    assert a.params == analyze(zoo.get("unet").build()).params == 31_030_658
    # MACs from the formulas: out_h * out_w * out_c * in_c * k * k for every conv
    macs = 0
    for n in g.nodes():
        op = g.op(n)
        if isinstance(op, O.Conv2d):
            _, h, w = g.shape(n)
            macs += h * w * op.out_channels * g.shape(g.inputs(n)[0])[0] * op.kernel[0] ** 2
        elif isinstance(op, O.ConvTranspose2d):
            c, h, w = g.shape(g.inputs(n)[0])
            macs += h * w * c * op.out_channels * op.kernel[0] ** 2
    assert a.macs == macs == 150_428_424_448
    # output unit 0 is centred on input pixel (572 - 388) / 2 = 92
    rf = g.meta(g.outputs[0])["rf"]
    assert rf.stride == (1, 1) and -rf.padding[0] + (rf.size[0] - 1) / 2 == 92
