"""ZFNet (Zeiler and Fergus, 2013), the network of the paper's Figure 3.

AlexNet with a 7x7 stride-2 first layer (instead of 11x11 stride 4) and a stride-2
second layer, dense connections throughout (the single-GPU model), and contrast
normalisation (LRN) after the first two pools.  Sizes follow Figure 3 for a
224x224 input: 110, 55, 26, 13, 13, 13, 13, 6.  The paper trained in Caffe-era
code whose pools round up (``ceil_mode``) and pads the first conv by 1; both are
needed to reproduce the figure's 110 -> 55 and 26 -> 13.
"""

from ..dsl import model, scope


@model(input=(3, 224, 224))
def zfnet(x):
    """ZFNet (Zeiler & Fergus 2013): AlexNet retuned by visualisation, 7x7/2 conv1; 3x224x224."""
    with scope("features"):
        x = x.conv(96, 7, stride=2, padding=1, name="conv1").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool1").lrn(name="norm1")
        x = x.conv(256, 5, stride=2, name="conv2").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool2").lrn(name="norm2")
        x = x.conv(384, 3, padding=1, name="conv3").relu()
        x = x.conv(384, 3, padding=1, name="conv4").relu()
        x = x.conv(256, 3, padding=1, name="conv5").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool5")
    with scope("classifier"):
        x = x.flatten()
        x = x.linear(4096, name="fc6").relu().dropout(0.5)
        x = x.linear(4096, name="fc7").relu().dropout(0.5)
        x = x.linear(1000, name="fc8")
    return x.softmax()
