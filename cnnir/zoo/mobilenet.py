"""MobileNetV2 (Sandler et al., 2018) in torchvision's layout.

Inverted residual blocks: a 1x1 conv expands the channels t times, a 3x3
depthwise conv (groups = channels) filters them, a 1x1 conv projects them back
down with no activation (the "linear bottleneck"); BN after every conv, ReLU6
after the first two.  A block adds its input when its stride is 1 and its channel
count does not change.  Stages follow the paper's Table 2 (t, c, n, s); the first
block of a stage carries the stride and the channel change, the other n-1 are
repeats.  Stem 3x3/2 conv to 32, last 1x1 conv to 1280, global average pool,
dropout 0.2, FC 1000.  Maps at 224: 112, 112, 56, 28, 14, 14, 7, 7.
"""

from ..dsl import block, model, repeat, scope

#: Table 2 of the paper: expansion t, output channels c, repeats n, stride s
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@block
def inverted_residual(x, in_ch, out_ch, stride=1, expand=6):
    """1x1 expand (t) -> 3x3 depthwise (stride) -> 1x1 linear projection; + x when shapes agree."""
    hidden = in_ch * expand
    y = x
    if expand != 1:
        y = y.conv(hidden, 1, bias=False, name="expand").bn(name="expand_bn").relu6()
    y = y.conv(hidden, 3, stride=stride, padding=1, groups=hidden, bias=False, name="depthwise")
    y = y.bn(name="depthwise_bn").relu6()
    y = y.conv(out_ch, 1, bias=False, name="project").bn(name="project_bn")
    return y + x if stride == 1 and in_ch == out_ch else y


@model(input=(3, 224, 224))
def mobilenet_v2(x):
    """MobileNetV2 (Sandler et al. 2018): inverted residuals, linear bottlenecks; 3x224x224."""
    with scope("stem"):
        x = x.conv(32, 3, stride=2, padding=1, bias=False, name="conv").bn(name="bn").relu6()
    in_ch = 32
    for i, (t, c, n, s) in enumerate(SETTINGS, start=1):
        with scope(f"stage{i}"):
            x = inverted_residual(x, in_ch, c, s, t)
            if n > 1:
                x = repeat(inverted_residual, n - 1, x, c, c, 1, t)
        in_ch = c
    with scope("head"):
        x = x.conv(1280, 1, bias=False, name="conv").bn(name="bn").relu6()
    x = x.global_avgpool(name="avgpool").flatten().dropout(0.2)
    return x.linear(1000, name="classifier")
