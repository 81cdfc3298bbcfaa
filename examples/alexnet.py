"""AlexNet (Krizhevsky et al. 2012) in torchvision's single-GPU layout, 224x224 input."""

from cnnir.dsl import model


@model(input=(3, 224, 224))
def alexnet(x):
    x = x.conv(64, 11, stride=4, padding=2).relu().maxpool(3, stride=2)
    x = x.conv(192, 5, padding=2).relu().maxpool(3, stride=2)
    x = x.conv(384, 3, padding=1).relu()
    x = x.conv(256, 3, padding=1).relu()
    x = x.conv(256, 3, padding=1).relu().maxpool(3, stride=2)
    x = x.adaptive_avgpool(6).flatten()
    x = x.dropout().linear(4096).relu()
    x = x.dropout().linear(4096).relu()
    return x.linear(1000)
