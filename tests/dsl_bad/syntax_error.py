# expect: syntax error: '(' was never closed
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.conv(8, 3  # <-
