"""GoogLeNet (Inception v1, Szegedy et al. 2014), as the paper's Table 1 draws it.

    cnnir report examples/googlenet.py
    cnnir compile examples/googlenet.py --to onnx
    cnnir draw examples/googlenet.py -o googlenet.pdf --level block
"""

from cnnir.dsl import block, concat, model


@block
def inception(x, c1, c3r, c3, c5r, c5, proj):
    b1 = x.conv(c1, 1).relu()
    b2 = x.conv(c3r, 1).relu().conv(c3, 3, padding=1).relu()
    b3 = x.conv(c5r, 1).relu().conv(c5, 5, padding=2).relu()
    b4 = x.maxpool(3, stride=1, padding=1).conv(proj, 1).relu()
    return concat(b1, b2, b3, b4)


@model(input=(3, 224, 224))
def googlenet(x):
    x = x.conv(64, 7, stride=2, padding=3).relu().maxpool(3, stride=2, ceil_mode=True).lrn()
    x = x.conv(64, 1).relu().conv(192, 3, padding=1).relu().lrn()
    x = x.maxpool(3, stride=2, ceil_mode=True)
    x = inception(x, 64, 96, 128, 16, 32, 32, name="3a")
    x = inception(x, 128, 128, 192, 32, 96, 64, name="3b")
    x = x.maxpool(3, stride=2, ceil_mode=True)
    x = inception(x, 192, 96, 208, 16, 48, 64, name="4a")
    x = inception(x, 160, 112, 224, 24, 64, 64, name="4b")
    x = inception(x, 128, 128, 256, 24, 64, 64, name="4c")
    x = inception(x, 112, 144, 288, 32, 64, 64, name="4d")
    x = inception(x, 256, 160, 320, 32, 128, 128, name="4e")
    x = x.maxpool(3, stride=2, ceil_mode=True)
    x = inception(x, 256, 160, 320, 32, 128, 128, name="5a")
    x = inception(x, 384, 192, 384, 48, 128, 128, name="5b")
    x = x.avgpool(7, stride=1).dropout(0.4).flatten()
    return x.linear(1000).softmax()
