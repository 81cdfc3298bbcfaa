# expect: conv2d 'conv1': groups=2 does not divide the 3 input channels
# layer: conv1
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.conv(8, 3, groups=2)  # <-
