# expect: a tensor has no layer method 'concat'; concat is a function of several tensors: concat(a, b)
# layer: concat
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    a = x.conv(8, 1)
    return a.concat(x.conv(8, 1))  # <-
