"""ResNet variants: pre-activation ResNet, Wide ResNet and ResNeXt.

* **Pre-activation ResNet** (He et al., "Identity Mappings in Deep Residual
  Networks", 2016): each residual unit is BN-ReLU-conv, BN-ReLU-conv(-BN-ReLU-
  conv) and nothing follows the add, so the shortcut path is a clean identity.
  As the paper's appendix and its ImageNet code (fb.resnet.torch ``preresnet``)
  do: the stem keeps its BN-ReLU after conv1, so the first unit starts with the
  conv; a unit with a projection shortcut pre-activates once, before the split,
  and the 1x1 projection (stride 2, no BN) reads that activated input; one extra
  BN-ReLU follows the last unit, before the average pool.  Same stages, widths
  and strides (on the 3x3 conv) as :mod:`cnnir.zoo.resnet`, so its convs and
  their MACs are exactly ResNet's; only the BatchNorms moved.
* **Wide ResNet-50-2** (Zagoruyko and Komodakis, 2016) and **ResNeXt-50 32x4d**
  (Xie et al., 2017) in torchvision's layout: the ResNet-50 bottleneck with its
  inner width ``planes * width_per_group / 64 * groups`` (128 for wide-2, so
  twice ResNet's) and, for ResNeXt, the 3x3 conv split into 32 groups
  ("cardinality").  The outer width stays ``4 * planes``.
"""

from ..dsl import block, model, repeat, scope

STAGES = (64, 128, 256, 512)


def _stem(x):
    with scope("stem"):
        x = x.conv(64, 7, stride=2, padding=3, bias=False, name="conv1").bn(name="bn1").relu()
        return x.maxpool(3, stride=2, padding=1, name="maxpool")


def _head(x, num_classes=1000):
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc")


# --------------------------------------------------------------------------- pre-activation


@block
def preact_basic(x, planes, stride=1, downsample=False, preact=True):
    """BN-ReLU-3x3 -> BN-ReLU-3x3; y = F(x) + shortcut(x), nothing after the add."""
    a = x.bn(name="bn1").relu(name="relu1") if preact else x
    y = a.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv1")
    y = y.bn(name="bn2").relu(name="relu2")
    y = y.conv(planes, 3, padding=1, bias=False, name="conv2")
    if downsample:
        x = a.conv(planes, 1, stride=stride, bias=False, name="downsample_conv")
    return y + x


@block
def preact_bottleneck(x, planes, stride=1, downsample=False, preact=True):
    """BN-ReLU-1x1 (planes) -> BN-ReLU-3x3 (planes, stride) -> BN-ReLU-1x1 (4 planes);
    y = F(x) + shortcut(x), nothing after the add."""
    a = x.bn(name="bn1").relu(name="relu1") if preact else x
    y = a.conv(planes, 1, bias=False, name="conv1")
    y = y.bn(name="bn2").relu(name="relu2")
    y = y.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv2")
    y = y.bn(name="bn3").relu(name="relu3")
    y = y.conv(planes * 4, 1, bias=False, name="conv3")
    if downsample:
        x = a.conv(planes * 4, 1, stride=stride, bias=False, name="downsample_conv")
    return y + x


def preact_resnet(x, unit, layers, num_classes=1000):
    x = _stem(x)  # conv1-BN-ReLU: the first unit's pre-activation
    expansion = 4 if unit is preact_bottleneck else 1
    in_ch = 64
    for i, (planes, n) in enumerate(zip(STAGES, layers), start=1):
        stride = 1 if i == 1 else 2
        with scope(f"layer{i}"):
            x = unit(x, planes, stride, downsample=stride != 1 or in_ch != planes * expansion,
                     preact=i != 1)
            if n > 1:
                x = repeat(unit, n - 1, x, planes)
        in_ch = planes * expansion
    with scope("final"):
        x = x.bn(name="bn").relu(name="relu")  # the extra activation after the last unit
    return _head(x, num_classes)


def _make_preact(depth: int, unit, layers):
    def net(x):
        return preact_resnet(x, unit, layers)

    kind = "bottleneck" if unit is preact_bottleneck else "basic"
    net.__name__ = f"preact_resnet{depth}"
    net.__doc__ = (f"Pre-activation ResNet-{depth} (He et al. 2016): BN-ReLU-conv {kind} "
                   f"units {'-'.join(map(str, layers))}; 3x224x224.")
    return model(net, input=(3, 224, 224))


preact_resnet18 = _make_preact(18, preact_basic, (2, 2, 2, 2))
preact_resnet34 = _make_preact(34, preact_basic, (3, 4, 6, 3))
preact_resnet50 = _make_preact(50, preact_bottleneck, (3, 4, 6, 3))
preact_resnet101 = _make_preact(101, preact_bottleneck, (3, 4, 23, 3))
preact_resnet152 = _make_preact(152, preact_bottleneck, (3, 8, 36, 3))


# --------------------------------------------------------------------------- wide / grouped


@block
def bottleneck(x, planes, width, groups=1, stride=1, downsample=False):
    """1x1 (width) -> 3x3 (width, groups, stride) -> 1x1 (4 planes); y = relu(F(x) + x)."""
    y = x.conv(width, 1, bias=False, name="conv1").bn(name="bn1").relu()
    y = y.conv(width, 3, stride=stride, padding=1, groups=groups, bias=False, name="conv2")
    y = y.bn(name="bn2").relu()
    y = y.conv(planes * 4, 1, bias=False, name="conv3").bn(name="bn3")
    if downsample:
        x = x.conv(planes * 4, 1, stride=stride, bias=False, name="downsample_conv")
        x = x.bn(name="downsample_bn")
    return (y + x).relu()


def grouped_resnet(x, layers, groups, width_per_group, num_classes=1000):
    """torchvision's ``ResNet(Bottleneck, layers, groups=, width_per_group=)``."""
    x = _stem(x)
    in_ch = 64
    for i, (planes, n) in enumerate(zip(STAGES, layers), start=1):
        stride = 1 if i == 1 else 2
        width = planes * width_per_group // 64 * groups
        with scope(f"layer{i}"):
            x = bottleneck(x, planes, width, groups, stride,
                           downsample=stride != 1 or in_ch != planes * 4)
            if n > 1:
                x = repeat(bottleneck, n - 1, x, planes, width, groups)
        in_ch = planes * 4
    return _head(x, num_classes)


def _make_grouped(name: str, doc: str, layers, groups: int, width_per_group: int):
    def net(x):
        return grouped_resnet(x, layers, groups, width_per_group)

    net.__name__ = name
    net.__doc__ = doc
    return model(net, input=(3, 224, 224))


wide_resnet50_2 = _make_grouped(
    "wide_resnet50_2",
    "Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): ResNet-50, bottlenecks 2x wider; 3x224x224.",
    (3, 4, 6, 3), 1, 128)
wide_resnet101_2 = _make_grouped(
    "wide_resnet101_2",
    "Wide ResNet-101-2 (Zagoruyko & Komodakis 2016): ResNet-101, bottlenecks 2x wider; 3x224x224.",
    (3, 4, 23, 3), 1, 128)
resnext50_32x4d = _make_grouped(
    "resnext50_32x4d",
    "ResNeXt-50 32x4d (Xie et al. 2016): ResNet-50, 3x3 convs in 32 groups of 4; 3x224x224.",
    (3, 4, 6, 3), 32, 4)
resnext101_32x8d = _make_grouped(
    "resnext101_32x8d",
    "ResNeXt-101 32x8d (Xie et al. 2016): ResNet-101, 3x3 convs in 32 groups of 8; 3x224x224.",
    (3, 4, 23, 3), 32, 8)
