# expect: concat 'inception1/concat1': inputs must agree on everything but channels: input 0 is 8x16x16, input 1 is 8x14x14 (input 1 differs)
# layer: inception1/concat1
from cnnir.dsl import block, concat, model


@block
def inception(x):
    a = x.conv(8, 1)
    b = x.conv(8, 3)  # forgot padding=1
    return concat(a, b)  # <-


@model(input=(3, 16, 16))
def net(x):
    return inception(x)
