# expect: conv2d 'wide': kernel 3 (dilated to 9) is larger than the padded input 8 along width (input 6, padding 1+1)
# layer: wide
from cnnir.dsl import model


@model(input=(3, 12, 6))
def net(x):
    return x.conv(8, 3, padding=1, dilation=4, name="wide")  # <-
