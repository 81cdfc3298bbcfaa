"""BN-Inception, "Inception v2" (Ioffe and Szegedy, 2015), the paper's Figure 5.

GoogLeNet with BatchNorm after every convolution (conv - BN - ReLU; the conv's
bias is dropped, BN's beta takes its place) and these changes from Inception v1:
each 5x5 conv becomes two stacked 3x3 convs (the "double 3x3" branch); 3c and
4e reduce the grid with stride-2 3x3 convs beside a 3x3/2 max pool whose output
passes straight through (no 1x1 branch, no projection); the pool branch averages
(max in 5b) before its 1x1 projection; 3c is a third module at 28x28; no LRN,
no dropout, no auxiliary classifiers (training only).  A 7x7/2 conv, a 3x3/2 max
pool, a 1x1 (64) and a 3x3 (192) conv, a 3x3/2 max pool; pools round up as in
Caffe.  The final 7x7 average pool is written as a global one (the same at 224,
and other resolutions work).

Module columns as Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce,
double #3x3, pool + proj.  A module's channels are the sum of its branches'
(608 after 4c and 4d, 1056 after 4e, as in the Caffe model released with the
paper's follow-ups).
"""

from ..dsl import block, concat, model, scope, stage

#: Figure 5: name, #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, proj
#: (#1x1 0 and proj 0: a stride-2 module whose max pool passes through)
MODULES = (
    ("3a", 64, 64, 64, 64, 96, "avg", 32),
    ("3b", 64, 64, 96, 64, 96, "avg", 64),
    ("3c", 0, 128, 160, 64, 96, "max", 0),
    ("4a", 224, 64, 96, 96, 128, "avg", 128),
    ("4b", 192, 96, 128, 96, 128, "avg", 128),
    ("4c", 160, 128, 160, 128, 160, "avg", 128),
    ("4d", 96, 128, 192, 160, 192, "avg", 128),
    ("4e", 0, 128, 192, 192, 256, "max", 0),
    ("5a", 352, 192, 320, 160, 224, "avg", 128),
    ("5b", 352, 192, 320, 192, 224, "max", 128),
)


def conv_bn(x, out, kernel, stride=1, padding=0, name="conv"):
    """conv (no bias) - BN - ReLU."""
    x = x.conv(out, kernel, stride=stride, padding=padding, bias=False, name=name)
    return x.bn(name=f"{name}_bn").relu(name=f"{name}_relu")


@block
def inception(x, c1, c3r, c3, d3r, d3, pool, proj):
    """1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool (-> 1x1 proj); concatenated.

    ``c1 == 0``: a grid reduction (3x3 convs with stride 2, the max pool 3x3/2
    passed through)."""
    stride = 2 if c1 == 0 else 1
    branches = [conv_bn(x, c1, 1, name="1x1")] if c1 else []
    b = conv_bn(x, c3r, 1, name="3x3_reduce")
    branches.append(conv_bn(b, c3, 3, stride, 1, name="3x3"))
    b = conv_bn(x, d3r, 1, name="double_3x3_reduce")
    b = conv_bn(b, d3, 3, padding=1, name="double_3x3_1")
    branches.append(conv_bn(b, d3, 3, stride, 1, name="double_3x3_2"))
    if stride == 2:
        p = x.maxpool(3, stride=2, ceil_mode=True, name="pool")
    elif pool == "avg":
        p = x.avgpool(3, stride=1, padding=1, name="pool")
    else:
        p = x.maxpool(3, stride=1, padding=1, name="pool")
    branches.append(conv_bn(p, proj, 1, name="pool_proj") if proj else p)
    return concat(*branches, name="concat")


@model(input=(3, 224, 224))
def bn_inception(x, num_classes=1000):
    """BN-Inception (Ioffe & Szegedy 2015): GoogLeNet + BatchNorm, 5x5 as two 3x3; 3x224x224."""
    with scope("stem"):
        x = conv_bn(x, 64, 7, stride=2, padding=3, name="conv1")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool1")
        x = conv_bn(x, 64, 1, name="conv2_reduce")
        x = conv_bn(x, 192, 3, padding=1, name="conv2")
        x = x.maxpool(3, stride=2, ceil_mode=True, name="pool2")
    for level in "345":  # stages inception3..5: the modules of one resolution
        with stage(f"inception{level}"):
            for name, *cols in MODULES:
                if name[0] == level:
                    x = inception(x, *cols, name=name)
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc").softmax()
