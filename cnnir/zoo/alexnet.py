"""AlexNet (Krizhevsky et al., 2012): torchvision's single-GPU layout (224) and as published."""

from ..dsl import model, scope


@model(input=(3, 224, 224))
def alexnet(x):
    """AlexNet (Krizhevsky et al. 2012) as in torchvision: 5 convs, 3 FC, no LRN; 3x224x224."""
    x = x.conv(64, 11, stride=4, padding=2).relu().maxpool(3, stride=2)
    x = x.conv(192, 5, padding=2).relu().maxpool(3, stride=2)
    x = x.conv(384, 3, padding=1).relu()
    x = x.conv(256, 3, padding=1).relu()
    x = x.conv(256, 3, padding=1).relu().maxpool(3, stride=2)
    x = x.adaptive_avgpool(6).flatten()
    x = x.dropout(0.5).linear(4096).relu()
    x = x.dropout(0.5).linear(4096).relu()
    return x.linear(1000)


@model(input=(3, 227, 227))
def alexnet_original(x, caffe=False, num_classes=1000):
    """AlexNet (Krizhevsky et al. 2012) as published: 2-GPU grouped convs, LRN; 3x227x227.

    The layout of Caffe's reference model (``bvlc_alexnet``: 60,965,224 parameters).
    227x227 input (the paper says 224, but 11x11/4 without padding needs 227 to give
    its 55x55); 96-256-384-384-256 convs; the two-GPU split shows as ``groups=2`` in
    conv2, conv4 and conv5, whose kernels "are connected only to those kernel maps in
    the previous layer which reside on the same GPU", while conv3 and the FC layers
    see both halves; ReLU, then response normalisation after conv1 and conv2, then
    the overlapping 3x3/2 max pools (after both LRNs and after conv5, rounding up as
    Caffe does); FC 4096-4096-1000 with dropout 0.5 on the first two; softmax.
    LRN as the paper's Section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, where the
    paper's alpha multiplies the plain sum of squares; PyTorch, ONNX and Caffe divide
    alpha by n, so the paper's value is ``alpha=5e-4`` here.  ``caffe=True`` takes the
    reference model's LRN instead (k = 1, alpha = 1e-4 divided by n).
    """
    k, alpha = (1.0, 1e-4) if caffe else (2.0, 5e-4)

    def norm(t, name):
        return t.lrn(size=5, alpha=alpha, beta=0.75, k=k, name=name)

    with scope("features"):
        x = x.conv(96, 11, stride=4, name="conv1").relu(name="relu1")
        x = norm(x, "norm1").maxpool(3, stride=2, ceil_mode=True, name="pool1")
        x = x.conv(256, 5, padding=2, groups=2, name="conv2").relu(name="relu2")
        x = norm(x, "norm2").maxpool(3, stride=2, ceil_mode=True, name="pool2")
        x = x.conv(384, 3, padding=1, name="conv3").relu(name="relu3")
        x = x.conv(384, 3, padding=1, groups=2, name="conv4").relu(name="relu4")
        x = x.conv(256, 3, padding=1, groups=2, name="conv5").relu(name="relu5")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool5")
    with scope("classifier"):
        x = x.flatten()
        x = x.linear(4096, name="fc6").relu(name="relu6").dropout(0.5, name="drop6")
        x = x.linear(4096, name="fc7").relu(name="relu7").dropout(0.5, name="drop7")
        x = x.linear(num_classes, name="fc8")
    return x.softmax(name="prob")
