# expect: maxpool 'pool': stride must be at least 1, got 0
# layer: pool
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    x = x.conv(8, 3).relu()
    return x.maxpool(2, stride=0, name="pool")  # <-
