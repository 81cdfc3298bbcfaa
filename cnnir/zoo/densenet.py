"""DenseNet (Huang et al., 2017) in torchvision's layout: 121, 161, 169 and 201.

DenseNet-121: four dense blocks of 6, 12, 24 and 16 layers with growth rate
k = 32 (161: k = 48, a 96-map stem, 6-12-36-24; 169: 6-12-32-32; 201: 6-12-48-32).  Each
DenseNet-B layer is BN-ReLU-1x1 conv (4k maps) - BN-ReLU-3x3 conv (k maps), and
every layer sees the concatenation of the block input and all earlier layers'
outputs.  Written as the equivalent running concatenation ``x = concat(x, layer(x))``
(channel order as torchvision's ``torch.cat(features)``: oldest first), which lets
one ``repeat`` draw "dense_layer x 24".  Transitions (DenseNet-BC, compression
0.5): BN-ReLU-1x1 conv halving the channels + 2x2/2 average pool.  Stem 7x7/2
conv + 3x3/2 max pool; a final BN-ReLU, global average pool and FC 1024 -> 1000.
DenseNet-121's maps: 56 (block 1, 256 ch), 28 (512), 14 (1024), 7 (1024).
"""

from ..dsl import block, concat, model, repeat, scope


@block
def dense_layer(x, growth, bn_size=4):
    """BN-ReLU-1x1 (bn_size * growth) -> BN-ReLU-3x3 (growth), concatenated to its input."""
    y = x.bn(name="norm1").relu(name="relu1").conv(bn_size * growth, 1, bias=False, name="conv1")
    y = y.bn(name="norm2").relu(name="relu2").conv(growth, 3, padding=1, bias=False, name="conv2")
    return concat(x, y, name="concat")


@block
def transition(x, out_channels):
    """BN-ReLU-1x1 conv (compression) -> 2x2/2 average pool."""
    x = x.bn(name="norm").relu(name="relu").conv(out_channels, 1, bias=False, name="conv")
    return x.avgpool(2, stride=2, name="pool")


def densenet(x, growth, blocks, init_features, num_classes=1000):
    with scope("stem"):
        x = x.conv(init_features, 7, stride=2, padding=3, bias=False, name="conv0")
        x = x.bn(name="norm0").relu(name="relu0").maxpool(3, stride=2, padding=1, name="pool0")
    channels = init_features
    for i, n in enumerate(blocks, start=1):
        with scope(f"denseblock{i}"):
            x = repeat(dense_layer, n, x, growth)
        channels += n * growth
        if i != len(blocks):
            channels //= 2
            x = transition(x, channels, name=str(i))
    x = x.bn(name="norm5").relu(name="relu5").global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="classifier")


@model(input=(3, 224, 224))
def densenet121(x):
    """DenseNet-121 (Huang et al. 2016): each layer sees all earlier maps, 6-12-24-16; 3x224x224."""
    return densenet(x, 32, (6, 12, 24, 16), 64)


@model(input=(3, 224, 224))
def densenet169(x):
    """DenseNet-169 (Huang et al. 2016): each layer sees all earlier maps, 6-12-32-32; 3x224x224."""
    return densenet(x, 32, (6, 12, 32, 32), 64)


@model(input=(3, 224, 224))
def densenet201(x):
    """DenseNet-201 (Huang et al. 2016): each layer sees all earlier maps, 6-12-48-32; 3x224x224."""
    return densenet(x, 32, (6, 12, 48, 32), 64)


@model(input=(3, 224, 224))
def densenet161(x):
    """DenseNet-161 (Huang et al. 2016): the wide one, growth 48, blocks 6-12-36-24; 3x224x224."""
    return densenet(x, 48, (6, 12, 36, 24), 96)
