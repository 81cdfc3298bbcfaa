# expect: model 'net' returns nothing; return its output tensor
# layer: net
from cnnir.dsl import model


@model(input=(3, 16, 16))  # <-
def net(x):
    x = x.conv(8, 3).relu()
