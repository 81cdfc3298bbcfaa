# expect: block 'unit': unit() got an unexpected keyword argument 'chanels'; did you mean 'channels'?
# layer: unit
from cnnir.dsl import block, model


@block
def unit(x, channels):
    return x.conv(channels, 3, padding=1).relu()


@model(input=(3, 16, 16))
def net(x):
    return unit(x, chanels=8)  # <-
