"""GoogLeNet / Inception v1 (Szegedy et al., 2014) as in the paper's Table 1.

No BatchNorm; LRN after the first pool and after the second conv, as in the
paper's Figure 3.  ``googlenet`` has no auxiliary classifiers (they exist only
for training); ``googlenet_aux`` is the network as trained, with three outputs:
the main classifier and the two auxiliary ones on top of 4a and 4d (Section 5:
5x5/3 average pool to 4x4, 1x1 conv to 128 + ReLU, FC 1024 + ReLU, 70% dropout,
linear 1000, softmax).  Every backend handles its three outputs; it is not in
the registry yet because the zoo-wide onnxruntime-vs-PyTorch test compares one
output only (``from cnnir.zoo.googlenet import googlenet_aux``).

Stages ``inception3`` (3a, 3b), ``inception4`` (4a-4e, with the auxiliary heads)
and ``inception5`` (5a, 5b) group the modules of one resolution, as the paper's
Table 1 does; the max pools between them stand alone.
"""

from ..dsl import block, concat, model, scope, stage


@block
def inception(x, c1, c3r, c3, c5r, c5, proj):
    """Four branches concatenated on channels: 1x1; 1x1->3x3; 1x1->5x5; pool->1x1."""
    b1 = x.conv(c1, 1, name="b1_1x1").relu()
    b2 = x.conv(c3r, 1, name="b2_reduce").relu().conv(c3, 3, padding=1, name="b2_3x3").relu()
    b3 = x.conv(c5r, 1, name="b3_reduce").relu().conv(c5, 5, padding=2, name="b3_5x5").relu()
    b4 = x.maxpool(3, stride=1, padding=1, name="b4_pool").conv(proj, 1, name="b4_proj").relu()
    return concat(b1, b2, b3, b4)


@block
def aux_classifier(x, num_classes=1000):
    """Section 5: 5x5/3 avg pool, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, FC, softmax."""
    x = x.avgpool(5, stride=3, name="pool").conv(128, 1, name="conv").relu()
    x = x.flatten().linear(1024, name="fc1").relu().dropout(0.7)
    return x.linear(num_classes, name="fc2").softmax()


def _googlenet(x, aux=False):
    heads = []
    with scope("stem"):
        x = x.conv(64, 7, stride=2, padding=3, name="conv1").relu()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool1").lrn()
        x = x.conv(64, 1, name="conv2_reduce").relu()
        x = x.conv(192, 3, padding=1, name="conv2").relu().lrn()
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool2")
    with stage("inception3"):  # the paper's Table 1 groups the modules by resolution
        x = inception(x, 64, 96, 128, 16, 32, 32, name="3a")
        x = inception(x, 128, 128, 192, 32, 96, 64, name="3b")
    x = x.maxpool(3, stride=2, ceil_mode=True, name="pool3")
    with stage("inception4"):
        x = inception(x, 192, 96, 208, 16, 48, 64, name="4a")
        if aux:
            heads.append(aux_classifier(x, name="1"))
        x = inception(x, 160, 112, 224, 24, 64, 64, name="4b")
        x = inception(x, 128, 128, 256, 24, 64, 64, name="4c")
        x = inception(x, 112, 144, 288, 32, 64, 64, name="4d")
        if aux:
            heads.append(aux_classifier(x, name="2"))
        x = inception(x, 256, 160, 320, 32, 128, 128, name="4e")
    x = x.maxpool(3, stride=2, ceil_mode=True, name="pool4")
    with stage("inception5"):
        x = inception(x, 256, 160, 320, 32, 128, 128, name="5a")
        x = inception(x, 384, 192, 384, 48, 128, 128, name="5b")
    x = x.avgpool(7, stride=1, name="pool5").dropout(0.4).flatten()
    x = x.linear(1000, name="fc").softmax()
    return (x, *heads) if aux else x


@model(input=(3, 224, 224))
def googlenet(x):
    """GoogLeNet (Szegedy et al. 2014): Inception v1, 9 inception modules; 3x224x224."""
    return _googlenet(x)


@model(input=(3, 224, 224))
def googlenet_aux(x):
    """GoogLeNet (Szegedy et al. 2014) as trained: main and 2 auxiliary classifiers; 3x224x224."""
    return _googlenet(x, aux=True)
