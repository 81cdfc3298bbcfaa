# expect: a layer named 'stem' already exists; pick another name=
# layer: stem
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    x = x.conv(8, 3, name="stem")
    return x.conv(8, 3, name="stem")  # <-
