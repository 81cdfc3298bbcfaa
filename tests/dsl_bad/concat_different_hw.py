# expect: concat 'inception1/concat1': inputs must agree on everything but channels: got 8x16x16 from 'inception1/conv1' ({file}:{line:a}), 8x14x14 from 'inception1/conv2' ({file}:{line:b})
# hint: make the maps agree before the concat: upsample the smaller, crop or pad the larger, or change a stride or padding
# layer: inception1/concat1
from cnnir.dsl import block, concat, model


@block
def inception(x):
    a = x.conv(8, 1)  # @a
    b = x.conv(8, 3)  # forgot padding=1  # @b
    return concat(a, b)  # <-


@model(input=(3, 16, 16))
def net(x):
    return inception(x)
