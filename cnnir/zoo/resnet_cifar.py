"""ResNet for CIFAR-10 (He et al., 2015, Section 4.2): the 6n+2 family.

32x32 input; a 3x3 conv to 16 maps, then three stages of n basic blocks (two
3x3 convs each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps; the
first block of stages 2 and 3 halves the map with stride 2; global average pool,
10-way FC, softmax.  6n + 2 weighted layers: n = 3, 5, 7, 9, 18 give ResNet-20,
32, 44, 56, 110 (``depth=1202``, n = 200, the paper's largest, builds too).
BatchNorm after every conv, ReLU after the first conv of a block and after the
add: the ImageNet ResNet's basic block (:mod:`cnnir.zoo.resnet`).

The shortcut where the shape changes is option B in ``resnet20_cifar`` ...: a 1x1
convolution with stride 2 (and BatchNorm) projecting 16 -> 32 and 32 -> 64 maps.
The paper's CIFAR nets use option A (``resnet20_cifar_a`` ...): the identity,
subsampled by 2 (``x[:, :, ::2, ::2]``, a 1x1 max pool of stride 2) with the extra
channels zero-padded (``F.pad(x, (0, 0, 0, 0, p, p))``, ``p = planes / 4`` on each
side), no parameters; its counts (0.27M, 0.46M, 0.66M, 0.85M, 1.7M) are option A's.
"""

from ..dsl import block, model, repeat, scope
from ..errors import DslError
from .resnet import basic


@block
def basic_a(x, planes, stride=1, downsample=False):
    """Two 3x3 convs; y = relu(F(x) + shortcut(x)), the shortcut option A: subsample
    by ``stride`` and zero-pad the new channels, half before and half after."""
    y = x.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv1").bn(name="bn1").relu()
    y = y.conv(planes, 3, padding=1, bias=False, name="conv2").bn(name="bn2")
    if downsample:
        extra = planes // 4  # in = planes / 2: a quarter of the output on each side
        if stride != 1:
            x = x.maxpool(1, stride=stride, name="downsample_subsample")
        x = x.pad(channels=(extra, extra), name="downsample_pad")
    return (y + x).relu()

WIDTHS = (16, 32, 64)


def resnet_cifar(x, depth, num_classes=10, option="B"):
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise DslError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, 1202), "
                         f"got {depth!r}")
    n = (depth - 2) // 6
    with scope("stem"):
        x = x.conv(16, 3, padding=1, bias=False, name="conv1").bn(name="bn1").relu()
    in_ch = 16
    for i, planes in enumerate(WIDTHS, start=1):
        stride = 1 if i == 1 else 2
        with scope(f"layer{i}"):
            unit = basic_a if option == "A" else basic
            x = unit(x, planes, stride, downsample=stride != 1 or in_ch != planes)
            if n > 1:
                x = repeat(unit, n - 1, x, planes)
        in_ch = planes
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc").softmax()


def _make(depth: int):
    def net(x, num_classes=10):
        return resnet_cifar(x, depth, num_classes)

    net.__name__ = f"resnet{depth}_cifar"
    net.__doc__ = (f"ResNet-{depth} for CIFAR-10 (He et al. 2015): 3 stages of {(depth - 2) // 6} "
                   f"basic blocks, 16-32-64 maps; 3x32x32.")
    return model(net, input=(3, 32, 32))


resnet20_cifar = _make(20)
resnet32_cifar = _make(32)
resnet44_cifar = _make(44)
resnet56_cifar = _make(56)
resnet110_cifar = _make(110)


def _make_a(depth: int):
    def net(x, num_classes=10):
        return resnet_cifar(x, depth, num_classes, option="A")

    net.__name__ = f"resnet{depth}_cifar_a"
    net.__doc__ = (f"ResNet-{depth} for CIFAR-10 (He et al. 2015), zero-padded identity "
                   f"shortcuts (option A); 3x32x32.")
    return model(net, input=(3, 32, 32))


resnet20_cifar_a = _make_a(20)
resnet32_cifar_a = _make_a(32)
resnet44_cifar_a = _make_a(44)
resnet56_cifar_a = _make_a(56)
resnet110_cifar_a = _make_a(110)


@model(input=(3, 32, 32))
def resnet_cifar_n(x, depth=20, num_classes=10):
    """ResNet for CIFAR-10 (He et al. 2015) of any depth 6n + 2 (``build(depth=1202)``)."""
    return resnet_cifar(x, depth, num_classes)
