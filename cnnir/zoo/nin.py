"""Network in Network (Lin, Chen and Yan, 2013).

An *mlpconv* layer is a kxk convolution followed by two 1x1 convolutions (the
"micro network", a two-layer perceptron slid over the map), ReLU after each;
the classifier is a global average pool over one map per class instead of
fully connected layers.

* ``nin``: the authors' ImageNet model (four mlpconv layers, released with the
  paper in the Caffe model zoo; 224 input, Caffe's ceil-mode pools):
  54 -> 27 -> 13 -> 6, the last mlpconv emitting 1000 maps of 6x6.
* ``nin_cifar10``: the paper's Figure 2 network, three mlpconv layers, as in
  the authors' CIFAR-10 setup (32x32 input, 192 maps, 10 class maps of 8x8).
"""

from ..dsl import block, model


@block
def mlpconv(x, out, kernel, stride=1, padding=0, mlp=None):
    """kxk conv -> 1x1 -> 1x1 (the micro MLP), ReLU after each; ``mlp`` sets the 1x1 widths."""
    h1, h2 = mlp if mlp is not None else (out, out)
    x = x.conv(out, kernel, stride=stride, padding=padding, name="conv").relu()
    x = x.conv(h1, 1, name="cccp1").relu()
    return x.conv(h2, 1, name="cccp2").relu()


@model(input=(3, 224, 224))
def nin(x):
    """Network in Network (Lin et al. 2013), ImageNet: 4 mlpconv layers, no FC; 3x224x224."""
    x = mlpconv(x, 96, 11, stride=4, name="1").maxpool(3, stride=2, ceil_mode=True)
    x = mlpconv(x, 256, 5, padding=2, name="2").maxpool(3, stride=2, ceil_mode=True)
    x = mlpconv(x, 384, 3, padding=1, name="3").maxpool(3, stride=2, ceil_mode=True)
    x = x.dropout(0.5)
    x = mlpconv(x, 1024, 3, padding=1, mlp=(1024, 1000), name="4")
    return x.global_avgpool(name="gap").flatten().softmax()


@model(input=(3, 32, 32))
def nin_cifar10(x, num_classes=10):
    """Network in Network (Lin et al. 2013), CIFAR-10: 3 mlpconv layers of 192 maps; 3x32x32.

    ``num_classes=100``: the paper's CIFAR-100 network (the same but for the last
    mlpconv's 100 maps)."""
    x = mlpconv(x, 192, 5, padding=2, mlp=(160, 96), name="1")
    x = x.maxpool(3, stride=2, ceil_mode=True).dropout(0.5)
    x = mlpconv(x, 192, 5, padding=2, name="2")
    x = x.avgpool(3, stride=2, ceil_mode=True).dropout(0.5)
    x = mlpconv(x, 192, 3, padding=1, mlp=(192, num_classes), name="3")
    return x.global_avgpool(name="gap").flatten().softmax()
