# expect: conv 'dw': groups=4 does not divide out_channels=6
# layer: dw
from cnnir.dsl import model


@model(input=(4, 16, 16))
def net(x):
    return x.conv(6, 3, groups=4, name="dw")  # <-
