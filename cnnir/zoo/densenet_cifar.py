"""DenseNet for CIFAR (Huang et al., 2017, Section 3 and Table 2).

32x32 input; a 3x3 conv (16 maps, or 2k for DenseNet-BC); three dense blocks with
the same number of layers, on 32x32, 16x16 and 8x8 maps, with transitions
between them (BN-ReLU-1x1 conv, 2x2/2 average pool); after the last block
BN-ReLU, global average pool, FC to the classes, softmax.  Convs have no bias
(BatchNorm precedes every one).

* DenseNet (``bc=False``): each layer is BN-ReLU-3x3 conv to k maps; depth L has
  (L - 4) / 3 layers per block; transitions keep the channel count.
* DenseNet-BC (``bc=True``): each layer is the bottleneck BN-ReLU-1x1 (4k) -
  BN-ReLU-3x3 (k) of :mod:`cnnir.zoo.densenet`, so (L - 4) / 6 layers per block;
  transitions compress to floor(0.5 m) maps.

Registered: ``densenet_bc100_cifar`` (L = 100, k = 12: 0.8M params in Table 2);
the other rows of Table 2 build from ``densenet_cifar`` with ``depth``,
``growth`` and ``bc``.
"""

from ..dsl import block, concat, model, repeat, scope
from ..errors import DslError
from .densenet import dense_layer, transition


@block
def basic_dense_layer(x, growth):
    """BN-ReLU-3x3 conv (growth maps), concatenated to its input (DenseNet without B)."""
    y = x.bn(name="norm").relu(name="relu").conv(growth, 3, padding=1, bias=False, name="conv")
    return concat(x, y, name="concat")


def densenet_cifar_net(x, depth, growth, bc, num_classes=10, compression=0.5):
    per_block, rest = divmod(depth - 4, 6 if bc else 3)
    if depth < 4 + (6 if bc else 3) or rest:
        raise DslError(f"a CIFAR DenseNet{'-BC' if bc else ''} has depth "
                         f"{'6n + 4 (100, 190, 250)' if bc else '3n + 4 (40, 100)'}, "
                         f"got {depth!r}")
    channels = 2 * growth if bc else 16
    with scope("stem"):
        x = x.conv(channels, 3, padding=1, bias=False, name="conv0")
    for i in (1, 2, 3):
        with scope(f"denseblock{i}"):
            if bc:
                x = repeat(dense_layer, per_block, x, growth)
            else:
                x = repeat(basic_dense_layer, per_block, x, growth)
        channels += per_block * growth
        if i != 3:
            if bc:
                channels = int(channels * compression)
            x = transition(x, channels, name=str(i))
    x = x.bn(name="norm_final").relu(name="relu_final").global_avgpool(name="avgpool")
    return x.flatten().linear(num_classes, name="classifier").softmax()


@model(input=(3, 32, 32))
def densenet_bc100_cifar(x, num_classes=10):
    """DenseNet-BC-100 for CIFAR (Huang et al. 2016): growth 12, 3x16 bottlenecks; 3x32x32."""
    return densenet_cifar_net(x, 100, 12, True, num_classes)


@model(input=(3, 32, 32))
def densenet_cifar(x, depth=40, growth=12, bc=False, num_classes=10):
    """DenseNet for CIFAR (Huang et al. 2016), any row of Table 2: ``depth``, ``growth``, ``bc``."""
    return densenet_cifar_net(x, depth, growth, bc, num_classes)
