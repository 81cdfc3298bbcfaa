"""ResNet (He et al., 2015) in torchvision's layout.

Basic blocks (18, 34) and bottlenecks (50, 101, 152) with the stride on the 3x3
conv (ResNet v1.5) and 1x1 projection shortcuts with BN where the shape changes
(option B).  Stages ``layer1..layer4`` at 56, 28, 14, 7 for a 224 input.  Each model
takes its natural parameters: ``resnet50.build(width=32, num_classes=10)`` (the stem
and the stages' planes are ``width`` x 1, 1, 2, 4, 8).
"""

from ..dsl import block, model, repeat, scope


@block
def basic(x, planes, stride=1, downsample=False):
    """Two 3x3 convs; y = relu(F(x) + shortcut(x))."""
    y = x.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv1").bn(name="bn1").relu()
    y = y.conv(planes, 3, padding=1, bias=False, name="conv2").bn(name="bn2")
    if downsample:
        x = x.conv(planes, 1, stride=stride, bias=False, name="downsample_conv")
        x = x.bn(name="downsample_bn")
    return (y + x).relu()


@block
def bottleneck(x, planes, stride=1, downsample=False):
    """1x1 (planes) -> 3x3 (planes, stride) -> 1x1 (4 planes); y = relu(F(x) + shortcut(x))."""
    y = x.conv(planes, 1, bias=False, name="conv1").bn(name="bn1").relu()
    y = y.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv2").bn(name="bn2").relu()
    y = y.conv(planes * 4, 1, bias=False, name="conv3").bn(name="bn3")
    if downsample:
        x = x.conv(planes * 4, 1, stride=stride, bias=False, name="downsample_conv")
        x = x.bn(name="downsample_bn")
    return (y + x).relu()


def resnet(x, unit, layers, num_classes=1000, width=64):
    """Stem, four stages of ``layers`` units at ``width`` x 1, 2, 4, 8 planes, head."""
    with scope("stem"):
        x = x.conv(width, 7, stride=2, padding=3, bias=False, name="conv1").bn(name="bn1").relu()
        x = x.maxpool(3, stride=2, padding=1, name="maxpool")
    expansion = 4 if unit is bottleneck else 1
    in_ch = width
    stages = (width, 2 * width, 4 * width, 8 * width)
    for i, (planes, n) in enumerate(zip(stages, layers), start=1):
        stride = 1 if i == 1 else 2
        with scope(f"layer{i}"):
            x = unit(x, planes, stride, downsample=stride != 1 or in_ch != planes * expansion)
            if n > 1:
                x = repeat(unit, n - 1, x, planes)
        in_ch = planes * expansion
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc")


def _make(depth: int, unit, layers):
    def net(x, width=64, num_classes=1000):
        return resnet(x, unit, layers, num_classes, width)

    net.__name__ = f"resnet{depth}"
    kind = "bottleneck" if unit is bottleneck else "basic"
    net.__doc__ = (f"ResNet-{depth} (He et al. 2015): residual net, {kind} blocks "
                   f"{'-'.join(map(str, layers))}; 3x224x224.")
    return model(net, input=(3, 224, 224))


resnet18 = _make(18, basic, (2, 2, 2, 2))
resnet34 = _make(34, basic, (3, 4, 6, 3))
resnet50 = _make(50, bottleneck, (3, 4, 6, 3))
resnet101 = _make(101, bottleneck, (3, 4, 23, 3))
resnet152 = _make(152, bottleneck, (3, 8, 36, 3))
