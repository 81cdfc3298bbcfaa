# expect: conv_transpose 'up': output_padding 2 must be smaller than the stride or the dilation
# layer: up
from cnnir.dsl import model


@model(input=(8, 8, 8))
def net(x):
    return x.conv_transpose(4, 3, stride=2, padding=1, output_padding=2, name="up")  # <-
