"""VGG (Simonyan and Zisserman, 2014), configurations A, B, D, E with and without BN.

torchvision layout: 3x3 convs with padding 1 in five blocks, a 2x2/2 max pool after
each, adaptive average pool to 7x7, then FC 4096-4096-1000 with dropout.
"""

from ..dsl import model, scope

CONFIGS = {
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


def vgg_features(x, blocks, batch_norm=False):
    """Conv blocks ``block1..block5``; layers named like the paper (conv1_1, pool1)."""
    for b, widths in enumerate(blocks, start=1):
        with scope(f"block{b}"):
            for i, ch in enumerate(widths, start=1):
                x = x.conv(ch, 3, padding=1, name=f"conv{b}_{i}")
                if batch_norm:
                    x = x.bn(name=f"bn{b}_{i}")
                x = x.relu(name=f"relu{b}_{i}")
            x = x.maxpool(2, stride=2, name=f"pool{b}")
    return x


def vgg_classifier(x, num_classes=1000):
    x = x.adaptive_avgpool(7).flatten()
    x = x.linear(4096, name="fc6").relu().dropout(0.5)
    x = x.linear(4096, name="fc7").relu().dropout(0.5)
    return x.linear(num_classes, name="fc8")


def _make(depth: int, batch_norm: bool):
    letter = {11: "A", 13: "B", 16: "D", 19: "E"}[depth]

    def net(x, num_classes=1000):
        return vgg_classifier(vgg_features(x, CONFIGS[depth], batch_norm), num_classes)

    net.__name__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    with_bn = " + BatchNorm" if batch_norm else ""
    net.__doc__ = (f"VGG-{depth} (Simonyan & Zisserman 2014), config {letter}: stacked 3x3 "
                   f"convs{with_bn}; 3x224x224.")

    return model(net, input=(3, 224, 224))


vgg11 = _make(11, False)
vgg13 = _make(13, False)
vgg16 = _make(16, False)
vgg19 = _make(19, False)
vgg11_bn = _make(11, True)
vgg13_bn = _make(13, True)
vgg16_bn = _make(16, True)
vgg19_bn = _make(19, True)
