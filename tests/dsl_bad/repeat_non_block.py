# expect: repeat() needs a @block function, got 'unit'
# layer: unit
from cnnir.dsl import model, repeat


def unit(x):
    return x.conv(8, 3, padding=1).relu()


@model(input=(3, 16, 16))
def net(x):
    return repeat(unit, 3, x)  # <-
