# expect: conv() got an unexpected keyword argument 'strides'; did you mean 'stride'?
# layer: conv()
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.conv(8, 3, strides=2)  # <-
