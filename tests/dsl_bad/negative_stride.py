# expect: conv 'conv1': stride must be at least 1, got 1x-1
# layer: conv1
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.conv(8, 3, stride=(1, -1))  # <-
