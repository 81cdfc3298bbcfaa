# expect: model 'net': net() missing 1 required positional argument: 'width'; a @model function takes the input tensor, and every other argument needs a default or a keyword to build()
# layer: net
from cnnir.dsl import model


@model(input=(3, 16, 16))  # <-
def net(x, width):
    return x.conv(width, 3)
