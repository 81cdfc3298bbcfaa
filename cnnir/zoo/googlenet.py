"""GoogLeNet / Inception v1 (Szegedy et al., 2014) as in the paper's Table 1.

No BatchNorm and no auxiliary classifiers (they exist only for training); LRN
after the first pool and after the second conv, as in the paper's Figure 3.
"""

from ..dsl import block, concat, model, scope


@block
def inception(x, c1, c3r, c3, c5r, c5, proj):
    """Four branches concatenated on channels: 1x1; 1x1->3x3; 1x1->5x5; pool->1x1."""
    b1 = x.conv(c1, 1, name="b1_1x1").relu()
    b2 = x.conv(c3r, 1, name="b2_reduce").relu().conv(c3, 3, padding=1, name="b2_3x3").relu()
    b3 = x.conv(c5r, 1, name="b3_reduce").relu().conv(c5, 5, padding=2, name="b3_5x5").relu()
    b4 = x.maxpool(3, stride=1, padding=1, name="b4_pool").conv(proj, 1, name="b4_proj").relu()
    return concat(b1, b2, b3, b4)


@model(input=(3, 224, 224))
def googlenet(x):
    """GoogLeNet (2014), paper Table 1: 9 inception modules, no BN, no auxiliary heads."""
    with scope("stem"):
        x = x.conv(64, 7, stride=2, padding=3, name="conv1").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool1").lrn()
        x = x.conv(64, 1, name="conv2_reduce").relu()
        x = x.conv(192, 3, padding=1, name="conv2").relu().lrn()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool2")
    x = inception(x, 64, 96, 128, 16, 32, 32, name="3a")
    x = inception(x, 128, 128, 192, 32, 96, 64, name="3b")
    x = x.maxpool(3, stride=2, ceil_mode=True, name="pool3")
    x = inception(x, 192, 96, 208, 16, 48, 64, name="4a")
    x = inception(x, 160, 112, 224, 24, 64, 64, name="4b")
    x = inception(x, 128, 128, 256, 24, 64, 64, name="4c")
    x = inception(x, 112, 144, 288, 32, 64, 64, name="4d")
    x = inception(x, 256, 160, 320, 32, 128, 128, name="4e")
    x = x.maxpool(3, stride=2, ceil_mode=True, name="pool4")
    x = inception(x, 256, 160, 320, 32, 128, 128, name="5a")
    x = inception(x, 384, 192, 384, 48, 128, 128, name="5b")
    x = x.avgpool(7, stride=1, name="pool5").dropout(0.4).flatten()
    return x.linear(1000, name="fc").softmax()
