"""LeNet-5 (LeCun et al., 1998) and a small CIFAR-10 teaching network (no paper)."""

from ..dsl import model


@model(input=(1, 32, 32))
def lenet5(x):
    """LeNet-5 (LeCun et al. 1998): the classic digit CNN, tanh convs, avg pools; 1x32x32."""
    x = x.conv(6, 5, name="c1").tanh().avgpool(2, stride=2, name="s2")      # 28x28x6 -> 14x14x6
    x = x.conv(16, 5, name="c3").tanh().avgpool(2, stride=2, name="s4")     # 10x10x16 -> 5x5x16
    x = x.flatten()
    x = x.linear(120, name="f5").tanh()
    x = x.linear(84, name="f6").tanh()
    return x.linear(10, name="output")


@model(input=(3, 32, 32))
def cifar_small(x):
    """Small CIFAR-10 CNN (a teaching example, no paper): six 3x3 convs, 3 pools; 3x32x32."""
    x = x.conv(10, 3, padding=1).relu().conv(10, 3, padding=1).relu().maxpool(2)
    x = x.conv(10, 3, padding=1).relu().conv(20, 3, padding=1).relu().maxpool(2)
    x = x.conv(10, 3, padding=1).relu().conv(20, 3, padding=1).relu().maxpool(2)
    return x.flatten().linear(10)
