# expect: linear 'fc1': expects a flat input, got 16x4x4; add .flatten() (or a global pool and .flatten()) before it
# layer: fc1
from cnnir.dsl import model


@model(input=(3, 8, 8))
def net(x):
    x = x.conv(16, 3, padding=1).relu().maxpool(2)
    return x.linear(10)  # <-
