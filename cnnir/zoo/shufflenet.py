"""ShuffleNet v1 (Zhang et al., 2017, Table 1) and v2 (Ma et al., 2018, Table 5).

**v1.**  A 3x3/2 conv to 24 maps, a 3x3/2 max pool, three stages of ShuffleNet
units (4, 8 and 4 units; the first of each with stride 2), a global pool and an FC
layer.  A unit (Figure 2): a 1x1 *group* conv to a bottleneck of a quarter of the
unit's output channels, BN, ReLU, a channel shuffle over the ``g`` groups, a 3x3
depthwise conv (the unit's stride), BN, a 1x1 group conv, BN; with stride 1 the
input is added and ReLU follows; with stride 2 a 3x3/2 average pool of the input is
concatenated (the group conv then makes ``out - in`` channels) and ReLU follows.
The first pointwise conv of Stage 2 is not grouped ("the number of input channels
is relatively small").  Output channels per stage by ``g`` (Table 1): 144 / 288 /
576 for g=1, 200 / 400 / 800, 240 / 480 / 960, 272 / 544 / 1088, 384 / 768 / 1536
for g=8; "ShuffleNet s x" scales every channel count by s (the stem too: 12 maps at
0.5x and 48 at 2x, as in the authors' code).

**v2.**  The same stem, three stages of 4, 8 and 4 units, a 1x1 conv to 1024 (2048
at 2x) maps, global pool, FC.  A unit (Figure 3): with stride 1 a channel split in
halves, one half untouched, the other through 1x1 conv - BN - ReLU, 3x3 depthwise -
BN, 1x1 conv - BN - ReLU; the halves concatenated and shuffled over 2 groups.  With
stride 2 there is no split: both branches read the input, the left one 3x3/2
depthwise - BN, 1x1 - BN - ReLU.  Stage widths 48 / 96 / 192 (0.5x), 116 / 232 /
464 (1x), 176 / 352 / 704 (1.5x), 244 / 488 / 976 (2x); as torchvision's
``shufflenet_v2_x*`` (convs without bias).
"""

from ..dsl import block, concat, model, scope

#: Table 1: output channels of stages 2, 3 and 4 by the number of groups g (1x)
V1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
               4: (272, 544, 1088), 8: (384, 768, 1536)}
#: units per stage (the first with stride 2), both versions
REPEATS = (4, 8, 4)


@block
def shuffle_unit(x, in_ch, out_ch, groups, stride, first_groups):
    """ShuffleNet v1 unit: 1x1 GConv - BN - ReLU - shuffle - 3x3 DWConv - BN - 1x1 GConv -
    BN, added to the input (stride 1) or concatenated with its 3x3/2 average pool."""
    mid = out_ch // 4
    made = out_ch - in_ch if stride == 2 else out_ch
    y = x.conv(mid, 1, groups=first_groups, bias=False, name="gconv1").bn(name="bn1")
    y = y.relu(name="relu1").channel_shuffle(groups, name="shuffle")
    y = y.conv(mid, 3, stride=stride, padding=1, groups=mid, bias=False, name="dwconv")
    y = y.bn(name="bn2")
    y = y.conv(made, 1, groups=groups, bias=False, name="gconv2").bn(name="bn3")
    if stride == 1:
        return (x + y).relu(name="relu")
    return concat(x.avgpool(3, stride=2, padding=1, name="shortcut"), y).relu(name="relu")


def shufflenet_v1_net(x, groups=3, scale=1.0, num_classes=1000):
    stem = int(24 * scale)
    with scope("stem"):
        x = x.conv(stem, 3, stride=2, padding=1, bias=False, name="conv").bn(name="bn").relu()
        x = x.maxpool(3, stride=2, padding=1, name="pool")
    ch = stem
    for s, (out, n) in enumerate(zip(V1_CHANNELS[groups], REPEATS), start=2):
        out = int(out * scale)
        with scope(f"stage{s}"):
            for i in range(n):
                first = 1 if (s == 2 and i == 0) else groups
                x = shuffle_unit(x, ch, out, groups, 2 if i == 0 else 1, first,
                                 name=str(i + 1))
                ch = out
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc")


def _v1(groups: int, scale: float, suffix: str):
    def net(x, num_classes=1000):
        return shufflenet_v1_net(x, groups, scale, num_classes)

    net.__name__ = f"shufflenet_v1{suffix}"
    net.__doc__ = (f"ShuffleNet v1 {scale:g}x, g={groups} (Zhang et al. 2017): group 1x1 "
                   f"convs and channel shuffle; 3x224x224.")
    return model(net, input=(3, 224, 224))


shufflenet_v1_g1 = _v1(1, 1.0, "_g1")
shufflenet_v1_g2 = _v1(2, 1.0, "_g2")
shufflenet_v1_g3 = _v1(3, 1.0, "_g3")
shufflenet_v1_g4 = _v1(4, 1.0, "_g4")
shufflenet_v1_g8 = _v1(8, 1.0, "_g8")
shufflenet_v1_x0_5 = _v1(3, 0.5, "_x0_5")
shufflenet_v1_x2_0 = _v1(3, 2.0, "_x2_0")


# --------------------------------------------------------------------------- v2

#: Table 5 / torchvision: stage widths and the last conv's channels by scale
V2_CHANNELS = {"0_5": (48, 96, 192, 1024), "1_0": (116, 232, 464, 1024),
               "1_5": (176, 352, 704, 1024), "2_0": (244, 488, 976, 2048)}


@block
def inverted_residual(x, in_ch, out_ch, stride):
    """ShuffleNet v2 unit: channel split (stride 1) or two branches (stride 2), concat,
    channel shuffle over 2 groups."""
    half = out_ch // 2
    if stride == 1:
        left, right = x.split(half, name="split")
    else:
        with scope("branch1"):
            left = x.conv(in_ch, 3, stride=2, padding=1, groups=in_ch, bias=False, name="dw")
            left = left.bn(name="dw_bn")
            left = left.conv(half, 1, bias=False, name="pw").bn(name="pw_bn").relu(name="relu")
        right = x
    with scope("branch2"):
        y = right.conv(half, 1, bias=False, name="pw1").bn(name="pw1_bn").relu(name="relu1")
        y = y.conv(half, 3, stride=stride, padding=1, groups=half, bias=False, name="dw")
        y = y.bn(name="dw_bn")
        y = y.conv(half, 1, bias=False, name="pw2").bn(name="pw2_bn").relu(name="relu2")
    return concat(left, y, name="concat").channel_shuffle(2, name="shuffle")


def shufflenet_v2_net(x, widths=V2_CHANNELS["1_0"], num_classes=1000):
    with scope("stem"):
        x = x.conv(24, 3, stride=2, padding=1, bias=False, name="conv").bn(name="bn").relu()
        x = x.maxpool(3, stride=2, padding=1, name="pool")
    ch = 24
    for s, (out, n) in enumerate(zip(widths[:3], REPEATS), start=2):
        with scope(f"stage{s}"):
            for i in range(n):
                x = inverted_residual(x, ch, out, 2 if i == 0 else 1, name=str(i + 1))
                ch = out
    with scope("conv5"):
        x = x.conv(widths[3], 1, bias=False, name="conv").bn(name="bn").relu()
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc")


def _v2(scale: str):
    def net(x, num_classes=1000):
        return shufflenet_v2_net(x, V2_CHANNELS[scale], num_classes)

    shown = scale.replace("_", ".")
    net.__name__ = f"shufflenet_v2_x{scale}"
    net.__doc__ = (f"ShuffleNet v2 {shown}x (Ma et al. 2018): channel split and shuffle; "
                   f"3x224x224.")
    return model(net, input=(3, 224, 224))


shufflenet_v2_x0_5 = _v2("0_5")
shufflenet_v2_x1_0 = _v2("1_0")
shufflenet_v2_x1_5 = _v2("1_5")
shufflenet_v2_x2_0 = _v2("2_0")
