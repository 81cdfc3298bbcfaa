# expect: NameError: name 'widht' is not defined; did you mean 'width'?
from cnnir.dsl import model

width = 16
channels = widht * 2  # <-


@model(input=(3, 16, 16))
def net(x):
    return x.conv(channels, 3)
