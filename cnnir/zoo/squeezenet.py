"""SqueezeNet 1.0 (Iandola et al., 2016) in torchvision's layout.

A *fire* module squeezes with a 1x1 conv (s1x1 maps), then expands with a 1x1
(e1x1) and a 3x3 (e3x3) conv side by side, concatenated on channels; ReLU after
each conv.  Fire modules fire2..fire9 as in the paper's Table 1, max pools
(3x3/2, rounding up as Caffe did: ``ceil_mode``) after conv1, fire4 and fire8,
and no FC layer: dropout, a 1x1 conv to 1000 class maps, ReLU, global average.
At the paper's 227x227 input the maps are 111, 55, 27, 13 (Table 1); at
torchvision's 224 they are 109, 54, 27, 13.

SqueezeNet 1.1 (the authors' v1.1 release, torchvision's ``squeezenet1_1``):
the same fire modules and classifier with a 3x3/2 conv1 of 64 maps and the max
pools moved earlier (after conv1, fire3 and fire5), so more of the work runs on
small maps: 1,235,496 params and about 2.4 times fewer MACs than 1.0.
"""

from ..dsl import block, concat, model, scope


@block
def fire(x, squeeze, expand1x1, expand3x3):
    """1x1 squeeze -> (1x1 expand | 3x3 expand) concatenated, ReLU after each conv."""
    s = x.conv(squeeze, 1, name="squeeze").relu(name="squeeze_relu")
    e1 = s.conv(expand1x1, 1, name="expand1x1").relu(name="expand1x1_relu")
    e3 = s.conv(expand3x3, 3, padding=1, name="expand3x3").relu(name="expand3x3_relu")
    return concat(e1, e3, name="concat")


@model(input=(3, 224, 224))
def squeezenet1_0(x):
    """SqueezeNet 1.0 (Iandola et al. 2016): fire modules, AlexNet accuracy, no FC; 3x224x224."""
    with scope("features"):
        x = x.conv(96, 7, stride=2, name="conv1").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool1")
        x = fire(x, 16, 64, 64, name="2")
        x = fire(x, 16, 64, 64, name="3")
        x = fire(x, 32, 128, 128, name="4")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool4")
        x = fire(x, 32, 128, 128, name="5")
        x = fire(x, 48, 192, 192, name="6")
        x = fire(x, 48, 192, 192, name="7")
        x = fire(x, 64, 256, 256, name="8")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool8")
        x = fire(x, 64, 256, 256, name="9")
    with scope("classifier"):
        x = x.dropout(0.5).conv(1000, 1, name="conv10").relu()
        x = x.global_avgpool(name="avgpool10")
    return x.flatten()


@model(input=(3, 224, 224))
def squeezenet1_1(x):
    """SqueezeNet 1.1 (Iandola et al. 2016): 1.0 at 2.4x less compute; 3x224x224."""
    with scope("features"):
        x = x.conv(64, 3, stride=2, name="conv1").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool1")
        x = fire(x, 16, 64, 64, name="2")
        x = fire(x, 16, 64, 64, name="3")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool3")
        x = fire(x, 32, 128, 128, name="4")
        x = fire(x, 32, 128, 128, name="5")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="maxpool5")
        x = fire(x, 48, 192, 192, name="6")
        x = fire(x, 48, 192, 192, name="7")
        x = fire(x, 64, 256, 256, name="8")
        x = fire(x, 64, 256, 256, name="9")
    with scope("classifier"):
        x = x.dropout(0.5).conv(1000, 1, name="conv10").relu()
        x = x.global_avgpool(name="avgpool10")
    return x.flatten()
