# expect: block 'unit': unit() missing 1 required positional argument: 'channels'
# layer: unit
from cnnir.dsl import block, model, repeat


@block
def unit(x, channels):
    return x.conv(channels, 3, padding=1).relu()


@model(input=(3, 16, 16))
def net(x):
    return repeat(unit, 3, x)  # <-
