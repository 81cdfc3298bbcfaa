"""VGG-16 (configuration D, Simonyan and Zisserman 2014): 13 3x3 convs in five blocks."""

from cnnir.dsl import model, scope


@model(input=(3, 224, 224))
def vgg16(x):
    for b, (width, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        with scope(f"block{b}"):
            for _ in range(n):
                x = x.conv(width, 3, padding=1).relu()
            x = x.maxpool(2, stride=2)
    x = x.adaptive_avgpool(7).flatten()
    x = x.linear(4096).relu().dropout()
    x = x.linear(4096).relu().dropout()
    return x.linear(1000)
