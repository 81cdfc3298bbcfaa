# expect: a tensor has no layer method 'cnov'; did you mean 'conv'?
# layer: cnov
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.cnov(8, 3)  # <-
