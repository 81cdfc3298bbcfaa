# expect: block 'unit' must return cnnir tensors, got int
# layer: unit
from cnnir.dsl import block, model


@block  # <-
def unit(x):
    x.conv(8, 3)
    return 8


@model(input=(3, 16, 16))
def net(x):
    return unit(x)
