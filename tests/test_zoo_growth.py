"""The zoo's newer models against published figures and first principles.

* Params and MACs of every model torchvision ships equal its published weights
  metadata (``num_params``; ``GFLOPS``, which is conv + linear MACs, rounded as
  published), counted by a small first-principles helper written here, apart
  from the ``count-params`` / ``count-macs`` passes, which must agree with it.
* Output sizes at each model's canonical input against the papers' tables and
  figures (stage sizes, final channels).
* The models torchvision does not ship (ZFNet, NiN, VGG A-LRN / C, pre-activation
  ResNet, U-Net) are compared with PyTorch modules written inline below from the
  papers (on the meta device: shapes and parameter counts, no arithmetic): same
  parameter count, and the same multiset of (layer kind, output shape, params)
  over every conv, transposed conv, linear and BatchNorm layer.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from cnnir import load, zoo
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.errors import CnnirError

# --------------------------------------------------------------------------- first principles

#: ops that carry no weights and do no multiply-accumulates
WEIGHTLESS = (O.Input, O.ReLU, O.ReLU6, O.MaxPool2d, O.AvgPool2d, O.AdaptiveAvgPool2d,
              O.GlobalAvgPool, O.Concat, O.Add, O.Dropout, O.Flatten, O.Softmax,
              O.LocalResponseNorm)


def layer_cost(g, n):
    """(params, macs) of node ``n`` from the textbook formulas (REFERENCE.md)."""
    op, out = g.op(n), g.shape(n)
    ins = [g.shape(i) for i in g.inputs(n)]
    if isinstance(op, O.Conv2d):
        w = op.out_channels * (ins[0][0] // op.groups) * op.kernel[0] * op.kernel[1]
        return w + (op.out_channels if op.bias else 0), w * out[1] * out[2]
    if isinstance(op, O.ConvTranspose2d):  # every input pixel scatters one kernel
        w = ins[0][0] * (op.out_channels // op.groups) * op.kernel[0] * op.kernel[1]
        return w + (op.out_channels if op.bias else 0), w * ins[0][1] * ins[0][2]
    if isinstance(op, O.BatchNorm2d):  # gamma and beta; running stats are buffers
        return 2 * out[0], 0
    if isinstance(op, O.Linear):
        return ins[0][0] * op.out_features + (op.out_features if op.bias else 0), \
            ins[0][0] * op.out_features
    if isinstance(op, WEIGHTLESS):
        return 0, 0
    raise AssertionError(f"no first-principles rule for {type(op).__name__} ({n})")


def totals(g):
    params = macs = 0
    for n in g.nodes():
        p, m = layer_cost(g, n)
        params += p
        macs += m
    return params, macs


def block_out(g, prefix):
    """Output shape of the block or scope ``prefix`` (its last node: every node of a
    block reaches the block's output, so the output comes last in topological order)."""
    inside = [n for n in g.nodes() if n.startswith(prefix + "/")]
    assert inside, f"no scope {prefix}"
    return tuple(g.shape(inside[-1]))


def of_kind(g, cls):
    return [n for n in g.nodes() if isinstance(g.op(n), cls)]


NEW_MODELS = ["zfnet", "nin", "nin_cifar10", "vgg11_lrn", "vgg16_c",
              *[f"preact_resnet{d}" for d in (18, 34, 50, 101, 152)],
              "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d",
              "densenet121", "densenet161", "densenet169", "densenet201",
              "squeezenet1_0", "mobilenet_v2", "inception_v3", "unet",
              # issue 17: the course-notes architectures (tests/test_zoo_course.py)
              "alexnet_original", *[f"resnet{d}_cifar" for d in (20, 32, 44, 56, 110)],
              "densenet_bc100_cifar", "mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050",
              "mobilenet_v1_025", "squeezenet1_1", "bn_inception"]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_registered_and_passes_agree_with_first_principles(name):
    assert name in zoo.names()
    assert zoo.describe(name)  # the one-line description `cnnir zoo` shows
    g = load(name)
    params, macs = totals(g)
    a = analyze(g)
    assert (a.params, a.macs, a.flops) == (params, macs, 2 * macs)


# --------------------------------------------------------------------------- torchvision

#: torchvision's published weights metadata: (num_params, GFLOPS as printed).  Its
#: GFLOPS are conv + linear MACs at 224 (299 for Inception v3), in eval mode.
TORCHVISION = {
    "wide_resnet50_2": (68_883_240, "11.398"),
    "wide_resnet101_2": (126_886_696, "22.753"),
    "resnext50_32x4d": (25_028_904, "4.23"),
    "resnext101_32x8d": (88_791_336, "16.414"),
    "densenet121": (7_978_856, "2.834"),
    "densenet161": (28_681_000, "7.728"),
    "densenet169": (14_149_480, "3.36"),
    "densenet201": (20_013_928, "4.291"),
    "squeezenet1_0": (1_248_424, "0.819"),
    "squeezenet1_1": (1_235_496, "0.349"),
    "mobilenet_v2": (3_504_872, "0.301"),
    "inception_v3": (27_161_264, "5.713"),
}


def inception_aux_params():
    """torchvision's InceptionAux(768): BasicConv2d 768->128 1x1, BasicConv2d 128->768
    5x5 (conv without bias + BN gamma/beta), Linear 768->1000."""
    return (768 * 128 + 2 * 128) + (128 * 768 * 5 * 5 + 2 * 768) + (768 * 1000 + 1000)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_params_and_macs_equal_torchvision(name):
    published_params, gflops = TORCHVISION[name]
    params, macs = totals(load(name))
    if name == "inception_v3":
        # torchvision's num_params counts the auxiliary classifier (the module keeps
        # it in eval mode too); the zoo leaves it out, as it serves training only.
        # Its GFLOPS are measured in eval mode, where the aux head does not run.
        assert inception_aux_params() == 3_326_696
        assert params == published_params - inception_aux_params() == 23_834_568
    else:
        assert params == published_params
    decimals = len(gflops.split(".")[1])
    assert f"{macs / 1e9:.{decimals}f}" == gflops


# --------------------------------------------------------------------------- shapes


def test_zfnet_matches_figure_3():
    g = load("zfnet")
    want = {"conv1": (96, 110, 110), "pool1": (96, 55, 55), "conv2": (256, 26, 26),
            "pool2": (256, 13, 13), "conv3": (384, 13, 13), "conv4": (384, 13, 13),
            "conv5": (256, 13, 13), "pool5": (256, 6, 6)}
    assert {k: tuple(g.shape(f"features/{k}")) for k in want} == want
    assert tuple(g.shape("classifier/fc6")) == (4096,)
    assert tuple(g.shape(g.outputs[0])) == (1000,)
    # dense connections (one GPU): conv3 sees all 256 maps of conv2
    assert layer_cost(g, "features/conv3")[0] == 384 * 256 * 9 + 384


def test_nin_imagenet_and_cifar():
    g = load("nin")
    assert [block_out(g, f"mlpconv_{i}") for i in (1, 2, 3, 4)] == [
        (96, 54, 54), (256, 27, 27), (384, 13, 13), (1000, 6, 6)]
    assert tuple(g.shape(g.outputs[0])) == (1000,)
    assert not of_kind(g, O.Linear)  # global average pooling replaces the FC layers
    c = load("nin_cifar10")
    assert [block_out(c, f"mlpconv_{i}") for i in (1, 2, 3)] == [
        (96, 32, 32), (192, 16, 16), (10, 8, 8)]
    assert tuple(c.shape(c.outputs[0])) == (10,)
    # every mlpconv: one kxk conv and two 1x1 convs, each followed by a ReLU
    for graph, n in ((g, 4), (c, 3)):
        convs = of_kind(graph, O.Conv2d)
        assert len(convs) == 3 * n
        assert sum(graph.op(x).kernel == (1, 1) for x in convs) == 2 * n
        assert all(isinstance(graph.op(graph.users(x)[0]), O.ReLU) for x in convs)


def test_vgg_a_lrn_and_c():
    a = load("vgg11_lrn")
    (lrn,) = of_kind(a, O.LocalResponseNorm)
    assert a.inputs(lrn) == ("block1/relu1_1",)  # LRN right after the first conv's ReLU
    a_params, a_macs = totals(a)
    # LRN has no weights: A-LRN has configuration A's (torchvision vgg11) 132,863,336
    assert a_params == 132_863_336 and round(a_params / 1e6) == 133
    assert round(a_macs / 1e9, 3) == 7.609  # torchvision vgg11 GFLOPS

    c = load("vgg16_c")
    one_by_one = [n for n in of_kind(c, O.Conv2d) if c.op(n).kernel == (1, 1)]
    assert one_by_one == ["block3/conv3_3", "block4/conv4_3", "block5/conv5_3"]
    assert len(of_kind(c, O.Conv2d)) + len(of_kind(c, O.Linear)) == 16
    assert [block_out(c, f"block{b}") for b in range(1, 6)] == [
        (64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    params, macs = totals(c)
    # configuration D (VGG-16: 138,357,544 params, 15,470,264,320 MACs, torchvision)
    # with the last conv of blocks 3-5 at 1x1 instead of 3x3: 8 weights fewer per pair
    saved = [(256, 56), (512, 28), (512, 14)]
    assert params == 138_357_544 - sum(ch * ch * 8 for ch, _ in saved)
    assert macs == 15_470_264_320 - sum(ch * ch * 8 * hw * hw for ch, hw in saved)
    assert round(params / 1e6) == 134  # Table 2
    # the 1x1s add no context: VGG-16's pool5 sees 212 px with padding 90; a 1x1 in
    # place of a 3x3 (padding 1) at jump j = 4, 8, 16 takes 2j off the size and j off
    # the padding: 212 - 2 * 28 = 156, 90 - 28 = 62
    analyze(c)
    rf = c.meta("block5/pool5")["rf"]
    assert (rf.size, rf.stride, rf.padding) == ((156, 156), (32, 32), (62, 62))


PREACT = {18: ("preact_basic", (2, 2, 2, 2), "1.814"), 34: ("preact_basic", (3, 4, 6, 3), "3.664"),
          50: ("preact_bottleneck", (3, 4, 6, 3), "4.089"),
          101: ("preact_bottleneck", (3, 4, 23, 3), "7.801"),
          152: ("preact_bottleneck", (3, 8, 36, 3), "11.514")}


@pytest.mark.parametrize("depth", sorted(PREACT))
def test_preact_resnet_structure(depth):
    unit, layers, resnet_gflops = PREACT[depth]
    g = load(f"preact_resnet{depth}")
    ref = load(f"resnet{depth}")
    # same convs with the same shapes (only the BatchNorms moved), so the MACs are
    # ResNet's (torchvision's resnet GFLOPS; resnet50: 4,089,184,256)
    assert Counter((g.op(n), tuple(g.shape(n))) for n in of_kind(g, O.Conv2d)) == \
        Counter((ref.op(n), tuple(ref.shape(n))) for n in of_kind(ref, O.Conv2d))
    params, macs = totals(g)
    assert f"{macs / 1e9:.3f}" == resnet_gflops
    if depth == 50:
        assert macs == 4_089_184_256
    assert [block_out(g, f"layer{i}") for i in range(1, 5)] == [
        (64 * (4 if depth >= 50 else 1) * 2**i, 56 // 2**i, 56 // 2**i) for i in range(4)]
    # nothing after the add: no ReLU (or anything but the next unit's BN, its
    # shortcut add, the final BN) reads an add
    adds = of_kind(g, O.Add)
    assert len(adds) == sum(layers)
    for n in adds:
        assert all(isinstance(g.op(u), (O.BatchNorm2d, O.Add)) for u in g.users(n)), n
    # BN-ReLU before every conv: each conv but the stem's reads a ReLU, or the stem's
    # max pool (the first unit uses the stem's activation, as the paper's appendix says)
    for n in of_kind(g, O.Conv2d):
        src = g.inputs(n)[0]
        assert isinstance(g.op(src), O.ReLU) or src == "stem/maxpool" or n == "stem/conv1", n
    # projection shortcuts: 1x1 convs without BN (pre-activated input, nothing after)
    for n in of_kind(g, O.Conv2d):
        if n.endswith("downsample_conv"):
            assert g.op(n).kernel == (1, 1) and not g.op(n).bias
            assert [type(g.op(u)) for u in g.users(n)] == [O.Add]
    # BN params: ResNet's minus the ones that moved or went: ResNet has a BN after
    # every conv; pre-act has one before every conv but the first unit's and the
    # shortcuts', plus the stem's and a final one
    bn = sum(layer_cost(g, n)[0] for n in of_kind(g, O.BatchNorm2d))
    convs_in = [g.shape(g.inputs(n)[0])[0] for n in of_kind(g, O.Conv2d)
                if isinstance(g.op(g.inputs(n)[0]), O.ReLU) and not n.endswith("downsample_conv")
                and n != "stem/conv1"]
    final = 512 * (4 if depth >= 50 else 1)
    assert bn == 2 * (64 + sum(convs_in) + final)


def test_preact_units_are_repeated():
    g = load("preact_resnet152")
    counts = {path[:-1]: info.repeat[2] for path, info in g.blocks.items() if info.repeat}
    assert counts == {("layer1",): 2, ("layer2",): 7, ("layer3",): 35, ("layer4",): 2}


def test_wide_and_resnext_bottlenecks():
    for name, width, groups in (("wide_resnet50_2", 128, 1), ("resnext50_32x4d", 128, 32)):
        g = load(name)
        assert [block_out(g, f"layer{i}") for i in range(1, 5)] == [
            (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
        for i in range(4):  # inner width doubles with each stage, outer is 4 * planes
            conv2 = g.op(f"layer{i + 1}/bottleneck1/conv2")
            assert (conv2.out_channels, conv2.groups) == (width * 2**i, groups)
        assert tuple(g.shape(g.outputs[0])) == (1000,)


def test_densenet121_table_1():
    g = load("densenet121")
    assert tuple(g.shape("stem/conv0")) == (64, 112, 112)
    assert tuple(g.shape("stem/pool0")) == (64, 56, 56)
    # each block adds n * 32 channels; transitions halve them and the map size
    assert [block_out(g, f"denseblock{i}") for i in range(1, 5)] == [
        (64 + 6 * 32, 56, 56), (128 + 12 * 32, 28, 28), (256 + 24 * 32, 14, 14),
        (512 + 16 * 32, 7, 7)]
    assert [block_out(g, f"transition_{i}") for i in range(1, 4)] == [
        (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    counts = {path[:-1]: info.repeat[2] for path, info in g.blocks.items() if info.repeat}
    assert counts == {(f"denseblock{i}",): n for i, n in enumerate((6, 12, 24, 16), 1)}
    # DenseNet-B layers: 1x1 to 4k = 128 maps, 3x3 to k = 32; 6+12+24+16 = 58 of them,
    # plus stem conv and 3 transition convs: 121 = 58 * 2 + 4 + the classifier
    convs = of_kind(g, O.Conv2d)
    layers = [n for n in convs if n.startswith("denseblock")]
    assert sorted((g.op(n).kernel, g.op(n).out_channels) for n in layers) == \
        [((1, 1), 128)] * 58 + [((3, 3), 32)] * 58
    assert len(convs) + len(of_kind(g, O.Linear)) == 121


SQUEEZENET_TABLE_1 = {  # name: (output at the paper's 227 input, params before pruning)
    "features/conv1": ((96, 111, 111), 14_208),
    "features/maxpool1": ((96, 55, 55), 0),
    "features/fire_2": ((128, 55, 55), 11_920),
    "features/fire_3": ((128, 55, 55), 12_432),
    "features/fire_4": ((256, 55, 55), 45_344),
    "features/maxpool4": ((256, 27, 27), 0),
    "features/fire_5": ((256, 27, 27), 49_440),
    "features/fire_6": ((384, 27, 27), 104_880),
    "features/fire_7": ((384, 27, 27), 111_024),
    "features/fire_8": ((512, 27, 27), 188_992),
    "features/maxpool8": ((512, 13, 13), 0),
    "features/fire_9": ((512, 13, 13), 197_184),
    "classifier/conv10": ((1000, 13, 13), 513_000),
    "classifier/avgpool10": ((1000, 1, 1), 0),
}


def test_squeezenet_table_1():
    g = load("squeezenet1_0", input="3x227x227")
    for name, (shape, params) in SQUEEZENET_TABLE_1.items():
        if name in g:
            got_shape = tuple(g.shape(name))
            got_params = layer_cost(g, name)[0]
        else:  # a fire module: its scope
            got_shape = block_out(g, name)
            got_params = sum(layer_cost(g, n)[0] for n in g.nodes() if n.startswith(name + "/"))
        assert (got_shape, got_params) == (shape, params), name
    assert sum(p for _, p in SQUEEZENET_TABLE_1.values()) == 1_248_424
    t = load("squeezenet1_0")  # torchvision's 224: 109, 54, 27, 13
    assert [tuple(t.shape(f"features/{n}")) for n in ("conv1", "maxpool1", "maxpool4",
                                                      "maxpool8")] == [
        (96, 109, 109), (96, 54, 54), (256, 27, 27), (512, 13, 13)]
    assert not of_kind(t, O.Linear)


def test_mobilenet_v2_table_2():
    g = load("mobilenet_v2")
    assert block_out(g, "stem") == (32, 112, 112)
    assert [block_out(g, f"stage{i}") for i in range(1, 8)] == [
        (16, 112, 112), (24, 56, 56), (32, 28, 28), (64, 14, 14), (96, 14, 14),
        (160, 7, 7), (320, 7, 7)]
    assert block_out(g, "head") == (1280, 7, 7)
    # residual adds where stride 1 and channels agree: the n - 1 repeats of each stage
    assert len(of_kind(g, O.Add)) == (2 - 1) + (3 - 1) + (4 - 1) + (3 - 1) + (3 - 1)
    depthwise = [n for n in of_kind(g, O.Conv2d) if g.op(n).groups > 1]
    assert len(depthwise) == 17
    assert all(g.op(n).groups == g.op(n).out_channels == g.shape(g.inputs(n)[0])[0]
               for n in depthwise)
    assert len(of_kind(g, O.ReLU6)) == 2 * 17 - 1 + 2  # first block has no expansion


def test_inception_v3_grids_and_asymmetric_kernels():
    g = load("inception_v3")
    assert tuple(g.input_shape) == (3, 299, 299)
    stem = [tuple(g.shape(f"stem/{n}")) for n in (
        "basic_conv_1a_3x3/relu", "basic_conv_2a_3x3/relu", "basic_conv_2b_3x3/relu",
        "maxpool1", "basic_conv_3b_1x1/relu", "basic_conv_4a_3x3/relu", "maxpool2")]
    assert stem == [(32, 149, 149), (32, 147, 147), (64, 147, 147), (64, 73, 73),
                    (80, 73, 73), (192, 71, 71), (192, 35, 35)]
    modules = [("mixed_5/inception_a1", (256, 35, 35)), ("mixed_5/inception_a2", (288, 35, 35)),
               ("mixed_5/inception_a3", (288, 35, 35)), ("mixed_6/inception_b1", (768, 17, 17)),
               *[(f"mixed_6/inception_c{i}", (768, 17, 17)) for i in (1, 2, 3, 4)],
               ("mixed_7/inception_d1", (1280, 8, 8)), ("mixed_7/inception_e1", (2048, 8, 8)),
               ("mixed_7/inception_e2", (2048, 8, 8))]
    assert [(m, block_out(g, m)) for m, _ in modules] == modules
    kernels = [g.op(n).kernel for n in of_kind(g, O.Conv2d)]
    # 7x7 factorised: 3 + 3 per Inception-C module (x4) and 1 + 1 in the reduction;
    # 3x3 expanded: 2 + 2 per Inception-E module (x2)
    assert (kernels.count((1, 7)), kernels.count((7, 1))) == (13, 13)
    assert (kernels.count((1, 3)), kernels.count((3, 1))) == (4, 4)
    assert len(kernels) == 94
    # BasicConv2d: conv without bias, then BN with eps 0.001, then ReLU
    for n in of_kind(g, O.Conv2d):
        (bn,) = g.users(n)
        assert not g.op(n).bias and g.op(bn) == O.BatchNorm2d(eps=0.001)
    counts = {path[:-1]: info.repeat[2] for path, info in g.blocks.items() if info.repeat}
    assert counts == {("mixed_6",): 2}  # Mixed_6c and Mixed_6d are identical


def test_unet_levels_and_skips():
    g = load("unet")
    assert tuple(g.input_shape) == (1, 256, 256)
    assert [block_out(g, f"contract_{i}") for i in range(1, 6)] == [
        (64, 256, 256), (128, 128, 128), (256, 64, 64), (512, 32, 32), (1024, 16, 16)]
    assert [block_out(g, f"expand_{i}") for i in (4, 3, 2, 1)] == [
        (512, 32, 32), (256, 64, 64), (128, 128, 128), (64, 256, 256)]
    assert tuple(g.shape(g.outputs[0])) == (2, 256, 256)
    ups = of_kind(g, O.ConvTranspose2d)
    assert len(ups) == 4
    assert all(g.op(n).kernel == (2, 2) == g.op(n).stride for n in ups)
    for level, ch in ((4, 512), (3, 256), (2, 128), (1, 64)):  # the skip first, as drawn
        cat = f"expand_{level}/concat"
        assert g.inputs(cat) == (f"contract_{level}/relu2", f"expand_{level}/upconv")
        assert tuple(g.shape(cat)) == (2 * ch, 256 >> (level - 1), 256 >> (level - 1))
    # any side divisible by 16 works; the paper's 572 does not once convs are padded
    # (four pools floor 572 to 35; the up-convs give 70 where the skip has 71)
    assert tuple(load("unet", input="1x512x512").shape("classifier")) == (2, 512, 512)
    with pytest.raises(CnnirError, match="concat"):
        load("unet", input="1x572x572")


# --------------------------------------------------------------------------- vs PyTorch

nn = torch.nn


def torch_zfnet():
    """Figure 3 of the ZFNet paper, in plain PyTorch."""
    pool = dict(kernel_size=3, stride=2, ceil_mode=True)
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, 2, 1), nn.ReLU(), nn.MaxPool2d(**pool), nn.LocalResponseNorm(5),
        nn.Conv2d(96, 256, 5, 2), nn.ReLU(), nn.MaxPool2d(**pool), nn.LocalResponseNorm(5),
        nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 384, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(**pool), nn.Flatten(),
        nn.Linear(6 * 6 * 256, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))


def torch_nin(cifar=False):
    """NiN: the authors' Caffe models (ImageNet: 4 mlpconv; CIFAR-10: 3)."""
    def mlpconv(cin, c, k, s, p, h1, h2):
        return [nn.Conv2d(cin, c, k, s, p), nn.ReLU(), nn.Conv2d(c, h1, 1), nn.ReLU(),
                nn.Conv2d(h1, h2, 1), nn.ReLU()]
    if cifar:
        return nn.Sequential(
            *mlpconv(3, 192, 5, 1, 2, 160, 96), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Dropout(), *mlpconv(96, 192, 5, 1, 2, 192, 192),
            nn.AvgPool2d(3, 2, ceil_mode=True), nn.Dropout(),
            *mlpconv(192, 192, 3, 1, 1, 192, 10), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(
        *mlpconv(3, 96, 11, 4, 0, 96, 96), nn.MaxPool2d(3, 2, ceil_mode=True),
        *mlpconv(96, 256, 5, 1, 2, 256, 256), nn.MaxPool2d(3, 2, ceil_mode=True),
        *mlpconv(256, 384, 3, 1, 1, 384, 384), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Dropout(), *mlpconv(384, 1024, 3, 1, 1, 1024, 1000),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


def torch_vgg_c():
    """VGG configuration C, Table 1, column C."""
    layers, cin = [], 3
    for block in ([64, 64], [128, 128], [256, 256, "1x1"], [512, 512, "1x1"],
                  [512, 512, "1x1"]):
        for spec in block:
            k = 1 if spec == "1x1" else 3
            cout = cin if spec == "1x1" else spec
            layers += [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(),
                         nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 1000))


class PreActUnit(nn.Module):
    """fb.resnet.torch ``preresnet``: BN-ReLU-conv ...; the BN-ReLU is skipped for the
    first unit (the stem did it) and shared with a projection shortcut."""

    def __init__(self, cin, planes, stride, bottleneck, preact):
        super().__init__()
        cout = planes * 4 if bottleneck else planes
        specs = ([(cin, planes, 1, 1), (planes, planes, 3, stride), (planes, cout, 1, 1)]
                 if bottleneck else [(cin, planes, 3, stride), (planes, planes, 3, 1)])
        self.pre = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU()) if preact else nn.Identity()
        body = []
        for i, (a, b, k, s) in enumerate(specs):
            if i:
                body += [nn.BatchNorm2d(a), nn.ReLU()]
            body.append(nn.Conv2d(a, b, k, s, k // 2, bias=False))
        self.body = nn.Sequential(*body)
        self.proj = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        a = self.pre(x)
        return self.body(a) + (x if self.proj is None else self.proj(a))


def torch_preact_resnet(layers, bottleneck):
    mods = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(n):
            mods.append(PreActUnit(cin, planes, 2 if i and not j else 1, bottleneck,
                                   preact=bool(i or j)))
            cin = planes * 4 if bottleneck else planes
    return nn.Sequential(*mods, nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(cin, 1000))


class TorchUNet(nn.Module):
    """U-Net, Figure 1, with padded 3x3 convs."""

    def __init__(self):
        super().__init__()
        def pair(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(b, b, 3, padding=1), nn.ReLU())
        ch = [64, 128, 256, 512, 1024]
        self.enc = nn.ModuleList([pair(1, 64)] + [pair(a, b) for a, b in zip(ch, ch[1:])])
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, 2) for a, b in zip(ch, ch[1:])])
        self.dec = nn.ModuleList([pair(2 * a, a) for a in ch[:-1]])
        self.out = nn.Conv2d(64, 2, 1)

    def forward(self, x):
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(4)):
            x = self.dec[i](torch.cat([skips[i], self.up[i](x)], 1))
        return self.out(x)


TORCH_REFERENCES = {
    "zfnet": torch_zfnet,
    "nin": torch_nin,
    "nin_cifar10": lambda: torch_nin(cifar=True),
    "vgg16_c": torch_vgg_c,
    "preact_resnet18": lambda: torch_preact_resnet((2, 2, 2, 2), False),
    "preact_resnet34": lambda: torch_preact_resnet((3, 4, 6, 3), False),
    "preact_resnet50": lambda: torch_preact_resnet((3, 4, 6, 3), True),
    "preact_resnet101": lambda: torch_preact_resnet((3, 4, 23, 3), True),
    "unet": TorchUNet,
}

WEIGHTED = {"Conv2d": O.Conv2d, "ConvTranspose2d": O.ConvTranspose2d, "Linear": O.Linear,
            "BatchNorm2d": O.BatchNorm2d}


@pytest.mark.parametrize("name", sorted(TORCH_REFERENCES))
def test_matches_pytorch_written_from_the_paper(name):
    g = load(name)
    with torch.device("meta"):  # shapes and sizes only: no memory, no arithmetic
        module = TORCH_REFERENCES[name]()
        seen = []

        def hook(mod, args, out):
            own = sum(p.numel() for p in mod.parameters(recurse=False))
            seen.append((type(mod).__name__, tuple(out.shape[1:]), own))

        for m in module.modules():
            if type(m).__name__ in WEIGHTED:
                m.register_forward_hook(hook)
        out = module(torch.empty(1, *g.input_shape))
    assert tuple(out.shape[1:]) == tuple(g.shape(g.outputs[0]))
    assert sum(p.numel() for p in module.parameters()) == totals(g)[0]
    ours = [(kind, tuple(g.shape(n)), layer_cost(g, n)[0]) for kind, cls in WEIGHTED.items()
            for n in of_kind(g, cls)]
    assert sorted(seen) == sorted(ours)
