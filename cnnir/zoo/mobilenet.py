"""MobileNetV2 (Sandler et al., 2018) in torchvision's layout.

Inverted residual blocks: a 1x1 conv expands the channels t times, a 3x3
depthwise conv (groups = channels) filters them, a 1x1 conv projects them back
down with no activation (the "linear bottleneck"); BN after every conv, ReLU6
after the first two.  A block adds its input when its stride is 1 and its channel
count does not change.  Stages follow the paper's Table 2 (t, c, n, s); the first
block of a stage carries the stride and the channel change, the other n-1 are
repeats.  Stem 3x3/2 conv to 32, last 1x1 conv to 1280, global average pool,
dropout 0.2, FC 1000.  Maps at 224: 112, 112, 56, 28, 14, 14, 7, 7.

``mobilenet_v2.build(width=0.5, num_classes=10)``: torchvision's width multiplier
(every channel count scaled and rounded to a multiple of 8, never down by more than
10%; the last conv keeps 1280 unless ``width`` > 1).
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


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` to a multiple of ``divisor``, at most 10% down."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


@model(input=(3, 224, 224))
def mobilenet_v2(x, width=1.0, num_classes=1000):
    """MobileNetV2 (Sandler et al. 2018): inverted residuals, linear bottlenecks; 3x224x224."""
    stem = _divisible(32 * width)
    with scope("stem"):
        x = x.conv(stem, 3, stride=2, padding=1, bias=False, name="conv").bn(name="bn").relu6()
    in_ch = stem
    for i, (t, c, n, s) in enumerate(SETTINGS, start=1):
        c = _divisible(c * width)
        with scope(f"stage{i}"):
            x = inverted_residual(x, in_ch, c, s, t)
            if n > 1:
                x = repeat(inverted_residual, n - 1, x, c, c, 1, t)
        in_ch = c
    with scope("head"):
        last = _divisible(1280 * max(1.0, width))
        x = x.conv(last, 1, bias=False, name="conv").bn(name="bn").relu6()
    x = x.global_avgpool(name="avgpool").flatten().dropout(0.2)
    return x.linear(num_classes, name="classifier")
