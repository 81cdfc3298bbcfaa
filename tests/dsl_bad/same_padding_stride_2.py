# expect: conv 'down': padding='same' needs stride 1 (as in PyTorch)
# layer: down
from cnnir.dsl import model


@model(input=(3, 16, 16))
def net(x):
    return x.conv(8, 3, stride=2, padding="same", name="down")  # <-
