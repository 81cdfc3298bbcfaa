# expect: conv2d 'conv2': expects a CxHxW feature map, got a flat tensor of shape 1024
# layer: conv2
from cnnir.dsl import model


@model(input=(3, 8, 8))
def net(x):
    x = x.conv(16, 3, padding=1).flatten()
    return x.conv(8, 1)  # <-
