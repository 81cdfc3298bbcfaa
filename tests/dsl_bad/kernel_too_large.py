# expect: conv2d 'conv2': kernel 7 is larger than the padded input 4 along height (input 4, padding 0+0)
# layer: conv2
from cnnir.dsl import model


@model(input=(3, 8, 8))
def net(x):
    x = x.conv(8, 5)
    return x.conv(8, 7)  # <-
