# expect: a tensor has no layer method 'gap'; did you mean 'global_avgpool'?
# layer: gap
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    x = x.conv(8, 3).relu()
    return x.gap().flatten().linear(10)  # <-
