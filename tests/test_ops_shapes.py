"""Shape rules of every op kind: first principles by hand, then PyTorch itself.

The hand cases state the arithmetic (``out = floor((I + Pb + Pe - D(F-1) - 1) / S) + 1``
and friends, REFERENCE.md); the differential cases run ``torch.nn.functional`` on zero
tensors for a seeded sample of a few hundred attribute combinations and require the
same shape, or an error from both sides.  That makes the rules PyTorch-exact,
including ``ceil_mode`` and the transposed conv's ``output_padding``.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from cnnir import ops as O
from cnnir.errors import CnnirError, ShapeError
from cnnir.ir import Graph
from cnnir.ops import TensorShape as T
from cnnir.passes.infer_shapes import InferShapes, infer_shapes


def infer(op: O.Op, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(op.infer([T(s) for s in shapes]))


# --------------------------------------------------------------------------- by hand

RELU = O.ReLU()
HAND = [
    # id, op, input shapes, expected output
    ("input", O.Input((3, 224, 224)), [], (3, 224, 224)),
    ("input-flat", O.Input((784,)), [], (784,)),
    # (224 + 3 + 3 - 7) // 2 + 1 = 112
    ("conv-7x7-s2-p3", O.Conv2d(64, 7, 2, 3), [(3, 224, 224)], (64, 112, 112)),
    # H: (10 + 1 + 1 - 3) // 1 + 1 = 10; W: (11 + 2 + 2 - 5) // 2 + 1 = 6
    ("conv-nonsquare", O.Conv2d(8, (3, 5), (1, 2), (1, 2)), [(4, 10, 11)], (8, 10, 6)),
    # per side (top, left, bottom, right): H 5 + 0 + 2 - 3 + 1 = 5; W 5 + 1 + 3 - 3 + 1 = 7
    ("conv-asym-pads", O.Conv2d(2, 3, 1, (0, 1, 2, 3)), [(1, 5, 5)], (2, 5, 7)),
    # dilation 2 makes a 3x3 kernel span 5: 9 - 5 + 1 = 5
    ("conv-dilated", O.Conv2d(4, 3, 1, 0, 2), [(3, 9, 9)], (4, 5, 5)),
    # dilation (2, 3): spans 5 and 7 -> (9 - 5) // 2 + 1 = 3, (9 - 7) // 1 + 1 = 3
    ("conv-dilated-nonsquare", O.Conv2d(4, 3, (2, 1), 0, (2, 3)), [(3, 9, 9)], (4, 3, 3)),
    ("conv-groups", O.Conv2d(8, 3, groups=4), [(4, 5, 5)], (8, 3, 3)),
    ("conv-depthwise", O.Conv2d(32, 3, 1, 1, groups=32), [(32, 7, 7)], (32, 7, 7)),
    # stride larger than the kernel: (8 - 1) // 3 + 1 = 3
    ("conv-1x1-s3", O.Conv2d(5, 1, 3), [(2, 8, 8)], (5, 3, 3)),
    # (I - 1) * s - 2p + d(k - 1) + op + 1 = 13 * 2 + 1 + 1 = 28 (U-Net up-conv)
    ("upconv-2x2-s2", O.ConvTranspose2d(64, 2, 2), [(128, 14, 14)], (64, 28, 28)),
    # 6 * 2 - 2 + 2 + 1 + 1 = 14: output_padding restores 2x exactly
    ("upconv-outpad", O.ConvTranspose2d(8, 3, 2, 1, 1), [(4, 7, 7)], (8, 14, 14)),
    # H: 4 * 3 - 0 + 1 + 2 + 1 = 16; W: 4 * 1 - 2 + 3 + 0 + 1 = 6
    ("upconv-nonsquare", O.ConvTranspose2d(2, (2, 4), (3, 1), (0, 1), (2, 0)), [(1, 5, 5)],
     (2, 16, 6)),
    # dilation 2: (5 - 1) + 2 * 2 + 1 = 9
    ("upconv-dilated", O.ConvTranspose2d(3, 3, 1, 0, 0, 2), [(3, 5, 5)], (3, 9, 9)),
    ("upconv-groups", O.ConvTranspose2d(6, 2, 2, groups=3), [(3, 4, 4)], (6, 8, 8)),
    ("batchnorm", O.BatchNorm2d(), [(64, 56, 56)], (64, 56, 56)),
    ("lrn", O.LocalResponseNorm(), [(96, 55, 55)], (96, 55, 55)),
    ("relu", RELU, [(8, 3, 3)], (8, 3, 3)),
    ("relu-flat", RELU, [(4096,)], (4096,)),
    ("leaky_relu", O.LeakyReLU(0.2), [(8, 3, 3)], (8, 3, 3)),
    ("relu6", O.ReLU6(), [(8, 3, 3)], (8, 3, 3)),
    ("sigmoid", O.Sigmoid(), [(8, 1, 1)], (8, 1, 1)),
    ("hardsigmoid", O.HardSigmoid(), [(8, 1, 1)], (8, 1, 1)),
    ("tanh", O.Tanh(), [(120,)], (120,)),
    ("hardswish", O.HardSwish(), [(16, 4, 4)], (16, 4, 4)),
    ("silu", O.SiLU(), [(16, 4, 4)], (16, 4, 4)),
    ("gelu", O.GELU(), [(16, 4, 4)], (16, 4, 4)),
    ("gelu-tanh-flat", O.GELU("tanh"), [(120,)], (120,)),
    ("layernorm2d", O.LayerNorm2d(1e-6), [(96, 56, 56)], (96, 56, 56)),
    ("softmax", O.Softmax(), [(1000,)], (1000,)),
    # floor: (112 - 3) // 2 + 1 = 55; ceil: ceil(109 / 2) + 1 = 56 (GoogLeNet)
    ("maxpool-floor", O.MaxPool2d(3, 2), [(64, 112, 112)], (64, 55, 55)),
    ("maxpool-ceil", O.MaxPool2d(3, 2, 0, True), [(64, 112, 112)], (64, 56, 56)),
    # ResNet stem: (112 + 2 - 3) // 2 + 1 = 56
    ("maxpool-padded", O.MaxPool2d(3, 2, 1), [(64, 112, 112)], (64, 56, 56)),
    # ceil: the 4th window would start at 6 = input 5 + left padding 1: dropped -> 3
    ("maxpool-ceil-drop", O.MaxPool2d(2, 2, 1, True), [(1, 5, 5)], (1, 3, 3)),
    # ceil without padding: ceil(3 / 2) + 1 = 3, but window 3 starts at 4 = input size -> 2
    ("maxpool-ceil-drop-k1", O.MaxPool2d(1, 2, 0, True), [(1, 4, 4)], (1, 2, 2)),
    # ceil: a kernel 3 overhanging a width-2 input by one is clipped, ceil(-1 / 2) + 1 = 1
    ("maxpool-ceil-overhang", O.MaxPool2d(3, 2, 0, True), [(1, 2, 2)], (1, 1, 1)),
    ("maxpool-nonsquare", O.MaxPool2d((2, 3), (2, 1), (1, 0)), [(4, 7, 7)], (4, 4, 5)),
    ("avgpool-lenet", O.AvgPool2d(2, 2), [(6, 28, 28)], (6, 14, 14)),
    ("avgpool-7x7-s1", O.AvgPool2d(7, 1), [(1024, 7, 7)], (1024, 1, 1)),
    ("avgpool-ceil", O.AvgPool2d(3, 2, 1, True, False), [(2, 6, 6)], (2, 4, 4)),
    ("adaptive-down", O.AdaptiveAvgPool2d(6), [(256, 13, 13)], (256, 6, 6)),
    ("adaptive-up", O.AdaptiveAvgPool2d((7, 3)), [(512, 2, 5)], (512, 7, 3)),
    ("global-avgpool", O.GlobalAvgPool(), [(2048, 7, 7)], (2048, 1, 1)),
    ("upsample", O.Upsample((2, 3)), [(8, 5, 4)], (8, 10, 12)),
    ("upsample-bilinear", O.Upsample(2, "bilinear", True), [(8, 5, 4)], (8, 10, 8)),
    ("dropout", O.Dropout(0.4), [(1024,)], (1024,)),
    ("identity", O.Identity(), [(3, 2, 1)], (3, 2, 1)),
    # 512 * 7 * 7 = 25088 (VGG's FC1 input)
    ("flatten", O.Flatten(), [(512, 7, 7)], (25088,)),
    ("flatten-flat", O.Flatten(), [(10,)], (10,)),
    ("linear", O.Linear(4096), [(25088,)], (4096,)),
    # GoogLeNet 3a: 64 + 128 + 32 + 32 = 256
    ("concat", O.Concat(), [(64, 28, 28), (128, 28, 28), (32, 28, 28), (32, 28, 28)],
     (256, 28, 28)),
    ("concat-flat", O.Concat(), [(3,), (4,)], (7,)),
    ("add", O.Add(), [(256, 56, 56), (256, 56, 56)], (256, 56, 56)),
    ("add-broadcast", O.Add(), [(8, 1, 1), (8, 4, 5)], (8, 4, 5)),
    # squeeze-excitation: CxHxW * Cx1x1
    ("mul-se", O.Mul(), [(64, 14, 14), (64, 1, 1)], (64, 14, 14)),
    ("sum-of-three", O.Sum(), [(64, 8, 8)] * 3, (64, 8, 8)),
    ("sum-broadcast", O.Sum(), [(8, 1, 1), (8, 4, 5), (1, 4, 5)], (8, 4, 5)),
    ("mean-fractal-join", O.Mean(), [(128, 16, 16)] * 4, (128, 16, 16)),
    ("scale-per-channel", O.Scale(bias=True), [(96, 56, 56)], (96, 56, 56)),
    ("scale-scalar-flat", O.Scale(False), [(1000,)], (1000,)),
    ("pad-channels-option-a", O.Pad(0, (8, 8)), [(16, 16, 16)], (32, 16, 16)),
    ("pad-spatial-asymmetric", O.Pad((0, 1, 2, 3)), [(3, 8, 8)], (3, 10, 12)),
    ("drop-path", O.DropPath(0.1), [(24, 56, 56)], (24, 56, 56)),
    # ShuffleNet v2's channel split: 116 -> 58 + 58
    ("slice-channels", O.Slice((58, 116)), [(116, 28, 28)], (58, 28, 28)),
    # U-Net's first crop-and-copy: 64x568x568 cropped to the 392x392 up-convolved map
    ("slice-crop", O.Slice(None, (88, 480), (88, 480)), [(64, 568, 568)], (64, 392, 392)),
    ("channel-shuffle", O.ChannelShuffle(3), [(240, 28, 28)], (240, 28, 28)),
    # TResNet's stem: 3x224x224 -> 48x56x56; ECA on ResNet-50's 256 channels (k = 5)
    ("space-to-depth", O.SpaceToDepth(4), [(3, 224, 224)], (48, 56, 56)),
    ("channel-conv1d", O.ChannelConv1d(5, 2), [(256, 1, 1)], (256, 1, 1)),
    ("channel-conv1d-valid", O.ChannelConv1d(3, 0), [(8, 1, 1)], (6, 1, 1)),
    # ResNeSt-14d's first split attention: radix 2 x 64 channels of attention
    ("radix-softmax", O.RadixSoftmax(2), [(128, 1, 1)], (128, 1, 1)),
    ("fused-conv", O.FusedConv2d(O.Conv2d(64, 7, 2, 3, bias=False), O.BatchNorm2d(), RELU),
     [(3, 224, 224)], (64, 112, 112)),
]


@pytest.mark.parametrize("op,inputs,expected", [c[1:] for c in HAND], ids=[c[0] for c in HAND])
def test_shape_rule_by_hand(op, inputs, expected):
    assert infer(op, *inputs) == expected


def test_every_op_kind_has_a_hand_case():
    covered = {type(c[1]) for c in HAND}
    missing = sorted(k for k, cls in O.OP_TYPES.items() if cls not in covered)
    assert not missing, f"op kinds without a shape test: {missing}"


def test_tensor_shape_prints_like_the_papers():
    s = T((64, 112, 112))
    assert str(s) == "64x112x112"
    assert s.numel == 64 * 112 * 112
    assert s.is_map and not T((10,)).is_map
    assert s == (64, 112, 112)


def test_same_padding_puts_the_odd_pixel_at_the_end():
    assert O.same_padding((3, 3)) == (1, 1, 1, 1)
    assert O.same_padding((4, 2)) == (1, 0, 2, 1)
    assert O.same_padding((3, 3), (2, 3)) == (2, 3, 2, 3)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel,dilation", [((4, 4), (1, 1)), ((2, 5), (1, 1)),
                                             ((3, 2), (2, 3))])
def test_same_padding_matches_torch_values(kernel, dilation):
    """Same shape is trivial; the side that gets the odd pixel shows in the values."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 9)
    w = torch.randn(3, 2, *kernel)
    top, left, bottom, right = O.same_padding(kernel, dilation)
    ours = F.conv2d(F.pad(x, (left, right, top, bottom)), w, dilation=dilation)
    theirs = F.conv2d(x, w, padding="same", dilation=dilation)
    assert torch.equal(ours, theirs)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("op,inputs,message", [
    (O.Conv2d(8, 7), [(3, 4, 6)],
     "kernel 7 is larger than the padded input 4 along height (input 4, padding 0+0)"),
    (O.Conv2d(8, 3, 1, 0, 3), [(3, 6, 9)],
     "kernel 3 (dilated to 7) is larger than the padded input 6 along height "
     "(input 6, padding 0+0)"),
    (O.Conv2d(8, (1, 5), 1, (0, 1, 0, 0)), [(3, 6, 3)],
     "kernel 5 is larger than the padded input 4 along width (input 3, padding 1+0)"),
    (O.MaxPool2d(3, 2), [(3, 2, 2)],
     "kernel 3 is larger than the padded input 2 along height (input 2, padding 0+0)"),
    # ceil mode overhang by a whole stride: ceil(-2 / 2) + 1 = 0 windows
    (O.MaxPool2d(4, 2, 0, True), [(1, 2, 8)],
     "kernel 4 is larger than the padded input 2 along height (input 2, padding 0+0)"),
    (O.Conv2d(8, 3, groups=2), [(3, 8, 8)], "groups=2 does not divide the 3 input channels"),
    (O.ConvTranspose2d(4, 2, groups=2), [(3, 8, 8)],
     "groups=2 does not divide the 3 input channels"),
    (O.ConvTranspose2d(4, 1, 1, 1), [(3, 1, 1)], "output height would be -1: padding too large"),
    (O.Conv2d(8, 3), [(300,)], "expects a CxHxW feature map, got a flat tensor of shape 300"),
    (O.MaxPool2d(2), [(300,)], "expects a CxHxW feature map, got a flat tensor of shape 300"),
    (O.BatchNorm2d(), [(300,)], "expects a CxHxW feature map, got a flat tensor of shape 300"),
    (O.LayerNorm2d(), [(300,)], "expects a CxHxW feature map, got a flat tensor of shape 300"),
    (O.Linear(10), [(8, 4, 4)],
     "expects a flat input, got 8x4x4; add .flatten() (or a global pool and .flatten()) "
     "before it"),
    (O.Concat(), [(8, 4, 4), (8, 4, 5)],
     "inputs must agree on everything but channels: input 0 is 8x4x4, input 1 is 8x4x5 "
     "(input 1 differs)"),
    (O.Concat(), [(8, 4, 4), (16,)],
     "inputs must agree on everything but channels: input 0 is 8x4x4, input 1 is 16 "
     "(input 1 differs)"),
    (O.Add(), [(16, 8, 8), (8, 16, 16)], "add got 16x8x8 and 8x16x16 (channels and spatial "
     "size differ)"),
    (O.Add(), [(16, 8, 8), (8, 8, 8)], "add got 16x8x8 and 8x8x8 (channels differ)"),
    (O.Mul(), [(8, 4, 4), (8, 4, 2)], "mul got 8x4x4 and 8x4x2 (width differs)"),
    (O.Add(), [(8, 4, 4), (128,)], "add got 8x4x4 and 128 (ranks differ)"),
    (O.Sum(), [(8, 4, 4), (8, 4, 4), (8, 4, 2)],
     "sum got 8x4x4, 8x4x4, 8x4x2 (width differs)"),
    (O.Mean(), [(8, 4, 4), (16, 4, 4)], "mean got 8x4x4, 16x4x4 (channels differ)"),
    (O.Pad(1), [(128,)], "expects a CxHxW feature map, got a flat tensor of shape 128"),
    (O.Slice((0, 10)), [(8, 4, 4)], "slices channels 0:10 of a 8x4x4 map (8 channels)"),
    (O.Slice(None, None, (2, 6)), [(8, 4, 4)], "slices width 2:6 of a 8x4x4 map (4 width)"),
    (O.Slice((0, 2)), [(8,)], "expects a CxHxW feature map, got a flat tensor of shape 8"),
    (O.ChannelShuffle(3), [(8, 4, 4)], "8 channels do not split into 3 groups"),
    (O.SpaceToDepth(4), [(3, 8, 6)], "a 8x6 map does not split into 4x4 blocks"),
    (O.ChannelConv1d(3, 1), [(8, 2, 2)], "convolves the channels of a Cx1x1 map (ECA's pooled channels), got 8x2x2"),
    (O.ChannelConv1d(9, 0), [(8, 1, 1)], "kernel 9 is longer than the 8 channels padded by 0 on each side"),
    (O.RadixSoftmax(2, 3), [(8, 1, 1)], "8 channels do not split into cardinality 3 x radix 2 groups"),
])
def test_impossible_shapes_raise_shape_errors(op, inputs, message):
    with pytest.raises(ShapeError) as info:
        infer(op, *inputs)
    assert info.value.msg == message


@pytest.mark.parametrize("make,message", [
    (lambda: O.Conv2d(8, 3, 0), "stride must be at least 1, got 0"),
    (lambda: O.Conv2d(8, 3, (1, -2)), "stride must be at least 1, got 1x-2"),
    (lambda: O.Conv2d(8, 0), "kernel must be at least 1, got 0"),
    (lambda: O.Conv2d(8, 3, 1, -1), "padding must not be negative, got -1"),
    (lambda: O.Conv2d(8, 3, 1, (1, 2, 3)),
     "padding must be an int, a pair (h, w) or four ints (top, left, bottom, right), "
     "got (1, 2, 3)"),
    (lambda: O.Conv2d(8, 3, dilation=0), "dilation must be at least 1, got 0"),
    (lambda: O.Conv2d(0, 3), "out_channels must be a positive integer, got 0"),
    (lambda: O.Conv2d(True, 3), "out_channels must be a positive integer, got True"),
    (lambda: O.Conv2d(8, 2.5), "kernel must be an int or a pair of ints, got 2.5"),
    (lambda: O.Conv2d(8, 3, groups=3), "groups=3 does not divide out_channels=8"),
    (lambda: O.Conv2d(8, 3, groups=0), "groups must be a positive integer, got 0"),
    (lambda: O.Conv2d(8, 3, bias=1), "bias must be True or False, got 1"),
    (lambda: O.ConvTranspose2d(8, 3, 2, output_padding=2),
     "output_padding 2 must be smaller than the stride or the dilation"),
    (lambda: O.ConvTranspose2d(8, 3, 2, padding=-1),
     "padding and output_padding must not be negative"),
    (lambda: O.MaxPool2d(3, 1, 2), "pool padding 2 must be at most half the kernel 3x3"),
    (lambda: O.AvgPool2d((2, 4), 1, (1, 3)),
     "pool padding 1x3 must be at most half the kernel 2x4"),
    (lambda: O.MaxPool2d(2, 2, 0, 1), "ceil_mode must be True or False, got 1"),
    (lambda: O.Dropout(1.0), "dropout p must be < 1, got 1.0"),
    (lambda: O.Dropout(-0.1), "dropout p must be >= 0, got -0.1"),
    (lambda: O.BatchNorm2d(eps=0.0), "eps must be > 0, got 0.0"),
    (lambda: O.DropPath(1.0), "drop-path p must be < 1, got 1.0"),
    (lambda: O.Pad(-1), "padding must not be negative, got -1"),
    (lambda: O.Pad(0, (1, -1)),
     "pad channels must be two non-negative ints (before, after), got (1, -1)"),
    (lambda: O.Pad(0, value=float("inf")), "pad value must be a finite number, got inf"),
    (lambda: O.Scale(scale=False), "a scale needs a weight, a bias or both"),
    (lambda: O.Scale(scale=False, bias=True, divide=True), "divide needs a weight to divide by"),
    (lambda: O.Scale(per_channel=1), "scale per_channel must be True or False, got 1"),
    (lambda: O.LayerNorm2d(eps=-1.0), "eps must be > 0, got -1.0"),
    (lambda: O.GELU("erf"), "gelu approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: O.LeakyReLU(float("nan")), "negative_slope must be a finite number, got nan"),
    (lambda: O.Upsample(2, "bicubic"), "upsample mode must be 'nearest' or 'bilinear', "
     "got 'bicubic'"),
    (lambda: O.Upsample(2, "nearest", True), "align_corners applies to bilinear upsampling only"),
    (lambda: O.Upsample(0), "scale must be at least 1, got 0"),
    (lambda: O.AdaptiveAvgPool2d((0, 1)), "output_size must be at least 1, got 0x1"),
    (lambda: O.Linear(-3), "out_features must be a positive integer, got -3"),
    (lambda: O.LocalResponseNorm(0), "size must be a positive integer, got 0"),
    (lambda: O.Slice((3, 3)), "slice channels (3, 3) must have 0 <= start < stop"),
    (lambda: O.Slice(None, (-1, 4)), "slice height (-1, 4) must have 0 <= start < stop"),
    (lambda: O.Slice(None, None, 4), "slice width must be (start, stop), got 4"),
    (lambda: O.Slice((0.5, 2)), "slice channels bounds must be integers, got (0.5, 2)"),
    (lambda: O.ChannelShuffle(0), "channel shuffle groups must be a positive integer, got 0"),
    (lambda: O.SpaceToDepth(0), "space-to-depth block must be a positive integer, got 0"),
    (lambda: O.ChannelConv1d(3, -1), "channel conv padding must be a non-negative integer, got -1"),
    (lambda: O.RadixSoftmax(1), "radix softmax radix must be at least 2, got 1 (a softmax over one group is 1 everywhere)"),
    (lambda: O.Input((3, 0, 8)), "input shape must be positive integers, got (3, 0, 8)"),
    (lambda: O.Input((3, 224)),
     "input shape must be (C, H, W) or (F,), without the batch axis, got (3, 224)"),
    (lambda: O.Input((1, 3, 224, 224)),
     "input shape must be (C, H, W) or (F,), without the batch axis, got (1, 3, 224, 224)"),
])
def test_invalid_attributes_are_rejected_when_the_op_is_made(make, message):
    with pytest.raises(CnnirError) as info:
        make()
    assert info.value.msg == message


def test_infer_shapes_names_the_node_and_checks_arity():
    g = Graph("g")
    g.add("input", O.Input((3, 8, 8)))
    g.add("cat", O.Concat(), ["input"])
    with pytest.raises(ShapeError) as info:
        infer_shapes(g)
    assert info.value.msg == "concat 'cat': takes two or more inputs, got 1"
    assert info.value.node == "cat"

    g = Graph("g")
    g.add("input", O.Input((3, 8, 8)))
    g.add("add", O.Add(), ["input", "input", "input"])
    with pytest.raises(ShapeError) as info:
        infer_shapes(g)
    assert info.value.msg == "add 'add': takes 2 input(s), got 3"

    g = Graph("g")
    g.add("input", O.Input((3, 8, 8)))
    g.add("sum", O.Sum(), ["input"])
    with pytest.raises(ShapeError) as info:
        infer_shapes(g)
    assert info.value.msg == "sum 'sum': takes two or more inputs, got 1"


def test_infer_shapes_non_strict_records_errors_and_carries_on():
    g = Graph("g")
    g.add("input", O.Input((3, 8, 8)))
    g.add("big", O.Conv2d(4, 9), ["input"])
    g.add("after", O.ReLU(), ["big"])
    g.add("ok", O.Conv2d(4, 3), ["input"])
    g.outputs = ["after", "ok"]
    p = InferShapes(strict=False)
    p.run(g)
    assert [e.node for e in p.errors] == ["big"]
    assert g.meta("big")["shape"] is None and g.meta("after")["shape"] is None
    assert g.shape("ok") == (4, 6, 6)


# --------------------------------------------------------------------------- attrs, dicts


@pytest.mark.parametrize("op,text", [
    (O.Conv2d(64, 7, 2, 3), "k=7x7,s=2,p=3"),
    (O.Conv2d(8, (3, 5), (1, 2), (1, 2), groups=2, bias=False), "k=3x5,s=1x2,p=1x2,g=2,nobias"),
    (O.Conv2d(8, 3, 1, (0, 1, 2, 3), 2), "k=3x3,s=1,p=0,1,2,3,d=2"),
    (O.ConvTranspose2d(8, 3, 2, 1, 1), "k=3x3,s=2,p=1,op=1"),
    (O.MaxPool2d(3, 2, 0, True), "k=3x3,s=2,ceil"),
    (O.AvgPool2d(3, 1, 1, False, False), "k=3x3,s=1,p=1,exclude_pad"),
    (O.Linear(10, bias=False), "out=10,nobias"),
    (O.Upsample(2, "bilinear", True), "x2,bilinear,align_corners"),
    (O.FusedConv2d(O.Conv2d(8, 3, bias=False), O.BatchNorm2d(), O.ReLU()),
     "k=3x3,s=1,p=0,+bn,+relu"),
])
def test_printer_attributes(op, text):
    assert op.attrs() == text


@pytest.mark.parametrize("op", [c[1] for c in HAND], ids=[c[0] for c in HAND])
def test_to_dict_round_trips(op):
    assert O.op_from_dict(op.kind, op.to_dict()) == op


def test_op_from_dict_rejects_unknown_kinds_and_fields():
    with pytest.raises(CnnirError, match="unknown op kind 'conv3d'; known: adaptive_avgpool2d"):
        O.op_from_dict("conv3d", {})
    with pytest.raises(CnnirError, match=r"op 'conv2d' has no field\(s\) strides"):
        O.op_from_dict("conv2d", {"out_channels": 8, "strides": 2})


# --------------------------------------------------------------------------- against PyTorch


def _cnnir(op: O.Op, *shapes: tuple[int, ...]) -> tuple[int, ...] | str:
    try:
        out = infer(op, *shapes)
    except ShapeError:
        return "error"
    return out


def _torch(fn, *args, **kwargs) -> tuple[int, ...] | str:
    try:
        out = fn(*args, **kwargs)
    except RuntimeError:
        return "error"
    shape = tuple(out.shape[1:])
    return "error" if 0 in shape else shape  # cnnir refuses an empty output


def _divisor(rng: random.Random, n: int) -> int:
    return rng.choice([d for d in range(1, n + 1) if n % d == 0])


def _conv_cases(n: int) -> list[tuple]:
    rng = random.Random(2024)
    cases = []
    for _ in range(n):
        cin = rng.randint(1, 4)
        groups = _divisor(rng, cin)
        cases.append((cin, groups * rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 9),
                      (rng.randint(1, 5), rng.randint(1, 5)),
                      (rng.randint(1, 3), rng.randint(1, 3)),
                      tuple(rng.randint(0, 2) for _ in range(4)),
                      (rng.randint(1, 2), rng.randint(1, 2)), groups))
    return cases


def test_conv2d_matches_torch_on_300_random_cases():
    errors = 0
    for cin, cout, h, w, k, s, pads, d, g in _conv_cases(300):
        ours = _cnnir(O.Conv2d(cout, k, s, pads, d, g), (cin, h, w))
        top, left, bottom, right = pads
        x = F.pad(torch.zeros(1, cin, h, w), (left, right, top, bottom))
        theirs = _torch(F.conv2d, x, torch.zeros(cout, cin // g, *k), None, s, 0, d, g)
        assert ours == theirs, (cin, cout, h, w, k, s, pads, d, g)
        errors += ours == "error"
    assert 10 < errors < 290  # the sample exercises both outcomes


def test_conv_transpose2d_matches_torch_on_300_random_cases():
    rng = random.Random(7)
    errors = 0
    for _ in range(300):
        cin = rng.randint(1, 4)
        g = _divisor(rng, cin)
        cout = g * rng.randint(1, 3)
        h, w = rng.randint(1, 6), rng.randint(1, 6)
        k = (rng.randint(1, 4), rng.randint(1, 4))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        p = (rng.randint(0, 2), rng.randint(0, 2))
        d = (rng.randint(1, 2), rng.randint(1, 2))
        op_ = (rng.randint(0, max(s[0], d[0]) - 1), rng.randint(0, max(s[1], d[1]) - 1))
        ours = _cnnir(O.ConvTranspose2d(cout, k, s, p, op_, d, g), (cin, h, w))
        theirs = _torch(F.conv_transpose2d, torch.zeros(1, cin, h, w),
                        torch.zeros(cin, cout // g, *k), None, s, p, op_, g, d)
        assert ours == theirs, (cin, cout, h, w, k, s, p, op_, d, g)
        errors += ours == "error"
    assert 0 < errors < 150


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_match_torch_on_400_random_cases_including_ceil_mode(kind):
    rng = random.Random(11)
    cls, fn = (O.MaxPool2d, F.max_pool2d) if kind == "max" else (O.AvgPool2d, F.avg_pool2d)
    dropped = overhang = 0
    for _ in range(400):
        h, w = rng.randint(1, 9), rng.randint(1, 9)
        k = (rng.randint(1, 4), rng.randint(1, 4))
        s = (rng.randint(1, 3), rng.randint(1, 3))
        p = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
        ceil = rng.random() < 0.6
        ours = _cnnir(cls(k, s, p, ceil), (2, h, w))
        theirs = _torch(fn, torch.zeros(1, 2, h, w), k, s, p, ceil_mode=ceil)
        assert ours == theirs, (h, w, k, s, p, ceil)
        if ceil and ours != "error":
            plain_ceil = -(-(h + 2 * p[0] - k[0]) // s[0]) + 1
            dropped += ours[1] < plain_ceil
            overhang += k[0] > h + 2 * p[0]
    assert dropped > 5 and overhang > 0  # the sample reaches both ceil_mode subtleties


@pytest.mark.parametrize("size,out", [((13, 13), 6), ((5, 7), (7, 3)), ((1, 1), 4),
                                      ((9, 10), (1, 1))])
def test_adaptive_avgpool_matches_torch(size, out):
    ours = infer(O.AdaptiveAvgPool2d(out), (3, *size))
    assert ours == tuple(F.adaptive_avg_pool2d(torch.zeros(1, 3, *size), out).shape[1:])


@pytest.mark.parametrize("scale,mode,align", [(2, "nearest", False), ((3, 2), "nearest", False),
                                              (2, "bilinear", False), ((2, 4), "bilinear", True)])
def test_upsample_matches_torch(scale, mode, align):
    ours = infer(O.Upsample(scale, mode, align), (3, 5, 6))
    sf = scale if isinstance(scale, tuple) else (scale, scale)
    kwargs = {"align_corners": align} if mode == "bilinear" else {}
    theirs = F.interpolate(torch.zeros(1, 3, 5, 6), scale_factor=sf, mode=mode, **kwargs)
    assert ours == tuple(theirs.shape[1:])


def test_shape_preserving_and_dense_ops_match_torch():
    x = torch.zeros(1, 8, 5, 6)
    flat = torch.zeros(1, 240)
    pairs = [
        (O.BatchNorm2d(), (8, 5, 6), F.batch_norm(x, torch.zeros(8), torch.ones(8))),
        (O.LocalResponseNorm(3), (8, 5, 6), F.local_response_norm(x, 3)),
        (O.Softmax(), (8, 5, 6), F.softmax(x, dim=1)),
        (O.GlobalAvgPool(), (8, 5, 6), F.adaptive_avg_pool2d(x, 1)),
        (O.Flatten(), (8, 5, 6), torch.flatten(x, 1)),
        (O.Linear(7), (240,), F.linear(flat, torch.zeros(7, 240))),
        (O.Dropout(0.5), (240,), F.dropout(flat, 0.5, training=False)),
        (O.HardSwish(), (8, 5, 6), F.hardswish(x)),
        (O.Pad((1, 2, 3, 4), (5, 6)), (8, 5, 6), F.pad(x, (2, 4, 1, 3, 5, 6))),
        (O.Scale(bias=True), (8, 5, 6), x * torch.ones(8, 1, 1) + torch.zeros(8, 1, 1)),
        (O.DropPath(0.5), (8, 5, 6), x),
    ]
    for op, shape, out in pairs:
        assert infer(op, shape) == tuple(out.shape[1:]), op.kind
    assert infer(O.Concat(), (8, 5, 6), (3, 5, 6)) == tuple(
        torch.cat([x, torch.zeros(1, 3, 5, 6)], 1).shape[1:])
    assert infer(O.Mul(), (8, 5, 6), (8, 1, 1)) == tuple((x * torch.zeros(1, 8, 1, 1)).shape[1:])
    assert infer(O.Mean(), (8, 5, 6), (8, 5, 6), (8, 1, 1)) == tuple(
        torch.stack([x, x, torch.zeros(1, 8, 5, 6)]).mean(0).shape[1:])
    assert infer(O.Sum(), (1, 5, 6), (8, 1, 6), (8, 5, 1)) == tuple(
        (torch.zeros(1, 1, 5, 6) + torch.zeros(1, 8, 1, 6) + torch.zeros(1, 8, 5, 1)).shape[1:])
    assert infer(O.Add(), (1, 5, 6), (8, 1, 6)) == tuple(
        (torch.zeros(1, 1, 5, 6) + torch.zeros(1, 8, 1, 6)).shape[1:])
