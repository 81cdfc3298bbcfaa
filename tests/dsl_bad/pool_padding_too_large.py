# expect: maxpool 'maxpool1': pool padding 2 must be at most half the kernel 3x3
# layer: maxpool1
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.maxpool(3, stride=2, padding=2)  # <-
