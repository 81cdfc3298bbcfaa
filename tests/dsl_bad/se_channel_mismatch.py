# expect: mul 'se1/mul1' got 32x8x8 from 'input' ({file}:{line:input}) and 16x1x1 from 'se1/sigmoid1' ({file}:{line:sigmoid}) (channels differ)
# layer: se1/mul1
from cnnir.dsl import block, model


@block
def se(x, channels, reduce=4):
    s = x.global_avgpool().conv(channels // reduce, 1).relu()
    s = s.conv(channels, 1).sigmoid()  # @sigmoid
    return x * s  # <-


@model(input=(32, 8, 8))  # @input
def net(x):
    return se(x, 16)
