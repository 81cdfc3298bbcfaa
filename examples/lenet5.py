"""LeNet-5 (LeCun et al. 1998): 32x32 grey input, two conv/subsample pairs, three FC layers."""

from cnnir.dsl import model


@model(input=(1, 32, 32))
def lenet5(x):
    x = x.conv(6, 5).tanh().avgpool(2)      # C1 28x28x6, S2 14x14x6
    x = x.conv(16, 5).tanh().avgpool(2)     # C3 10x10x16, S4 5x5x16
    x = x.flatten().linear(120).tanh()      # C5 / F5
    x = x.linear(84).tanh()                 # F6
    return x.linear(10)
