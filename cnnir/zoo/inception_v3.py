"""Inception v3 (Szegedy et al., "Rethinking the Inception Architecture", 2015).

torchvision's layout at its 299x299 input, without the auxiliary classifier (it
exists only for training).  Every conv is torchvision's ``BasicConv2d``: conv
without bias, BatchNorm with eps 0.001, ReLU.  The paper's Table 1 grid sizes:
stem 299 -> 149 -> 147 -> 73 -> 71 -> 35; three Inception-A modules at 35x35
(figure 5: the 5x5 factorised into 3x3s), a grid reduction to 17x17x768,
four Inception-C modules at 17x17 (figure 6: n x n factorised into the
asymmetric 1x7 and 7x1 pair), a reduction to 8x8x1280 and two Inception-E
modules (figure 7: expanded 1x3 | 3x1 filter banks) to 8x8x2048; global average
pool, dropout, FC 1000.

Stage scopes ``mixed_5``, ``mixed_6`` and ``mixed_7`` group the modules per grid
size as Table 1 does; torchvision's ``Mixed_6c.branch7x7_2.conv`` is
``mixed_6/inception_c2/basic_conv_branch7x7_2/conv``.
"""

from ..dsl import block, concat, model, repeat, scope


@block
def basic_conv(x, out, kernel, stride=1, padding=0):
    """torchvision's BasicConv2d: conv (no bias) -> BN (eps 0.001) -> ReLU."""
    x = x.conv(out, kernel, stride=stride, padding=padding, bias=False, name="conv")
    return x.bn(eps=0.001, name="bn").relu(name="relu")


@block
def inception_a(x, pool_features):
    """35x35 module (figure 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""
    b1 = basic_conv(x, 64, 1, name="branch1x1")
    b5 = basic_conv(x, 48, 1, name="branch5x5_1")
    b5 = basic_conv(b5, 64, 5, padding=2, name="branch5x5_2")
    b3 = basic_conv(x, 64, 1, name="branch3x3dbl_1")
    b3 = basic_conv(b3, 96, 3, padding=1, name="branch3x3dbl_2")
    b3 = basic_conv(b3, 96, 3, padding=1, name="branch3x3dbl_3")
    bp = x.avgpool(3, stride=1, padding=1, name="branch_pool_avg")
    bp = basic_conv(bp, pool_features, 1, name="branch_pool")
    return concat(b1, b5, b3, bp, name="concat")


@block
def inception_b(x):
    """Grid reduction 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2."""
    b3 = basic_conv(x, 384, 3, stride=2, name="branch3x3")
    bd = basic_conv(x, 64, 1, name="branch3x3dbl_1")
    bd = basic_conv(bd, 96, 3, padding=1, name="branch3x3dbl_2")
    bd = basic_conv(bd, 96, 3, stride=2, name="branch3x3dbl_3")
    bp = x.maxpool(3, stride=2, name="branch_pool")
    return concat(b3, bd, bp, name="concat")


@block
def inception_c(x, c7):
    """17x17 module (figure 6, n = 7): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1."""
    b1 = basic_conv(x, 192, 1, name="branch1x1")
    b7 = basic_conv(x, c7, 1, name="branch7x7_1")
    b7 = basic_conv(b7, c7, (1, 7), padding=(0, 3), name="branch7x7_2")
    b7 = basic_conv(b7, 192, (7, 1), padding=(3, 0), name="branch7x7_3")
    bd = basic_conv(x, c7, 1, name="branch7x7dbl_1")
    bd = basic_conv(bd, c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")
    bd = basic_conv(bd, c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")
    bd = basic_conv(bd, c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")
    bd = basic_conv(bd, 192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")
    bp = x.avgpool(3, stride=1, padding=1, name="branch_pool_avg")
    bp = basic_conv(bp, 192, 1, name="branch_pool")
    return concat(b1, b7, bd, bp, name="concat")


@block
def inception_d(x):
    """Grid reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3x3/2."""
    b3 = basic_conv(x, 192, 1, name="branch3x3_1")
    b3 = basic_conv(b3, 320, 3, stride=2, name="branch3x3_2")
    b7 = basic_conv(x, 192, 1, name="branch7x7x3_1")
    b7 = basic_conv(b7, 192, (1, 7), padding=(0, 3), name="branch7x7x3_2")
    b7 = basic_conv(b7, 192, (7, 1), padding=(3, 0), name="branch7x7x3_3")
    b7 = basic_conv(b7, 192, 3, stride=2, name="branch7x7x3_4")
    bp = x.maxpool(3, stride=2, name="branch_pool")
    return concat(b3, b7, bp, name="concat")


@block
def inception_e(x):
    """8x8 module (figure 7): 1x1 | 1x1-(1x3|3x1) | 1x1-3x3-(1x3|3x1) | avgpool-1x1."""
    b1 = basic_conv(x, 320, 1, name="branch1x1")
    b3 = basic_conv(x, 384, 1, name="branch3x3_1")
    b3 = concat(basic_conv(b3, 384, (1, 3), padding=(0, 1), name="branch3x3_2a"),
                basic_conv(b3, 384, (3, 1), padding=(1, 0), name="branch3x3_2b"),
                name="branch3x3")
    bd = basic_conv(x, 448, 1, name="branch3x3dbl_1")
    bd = basic_conv(bd, 384, 3, padding=1, name="branch3x3dbl_2")
    bd = concat(basic_conv(bd, 384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a"),
                basic_conv(bd, 384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b"),
                name="branch3x3dbl")
    bp = x.avgpool(3, stride=1, padding=1, name="branch_pool_avg")
    bp = basic_conv(bp, 192, 1, name="branch_pool")
    return concat(b1, b3, bd, bp, name="concat")


@model(input=(3, 299, 299))
def inception_v3(x):
    """Inception v3 (Szegedy et al. 2015): factorised (1x7, 7x1) inception modules; 3x299x299."""
    with scope("stem"):
        x = basic_conv(x, 32, 3, stride=2, name="1a_3x3")
        x = basic_conv(x, 32, 3, name="2a_3x3")
        x = basic_conv(x, 64, 3, padding=1, name="2b_3x3")
        x = x.maxpool(3, stride=2, name="maxpool1")
        x = basic_conv(x, 80, 1, name="3b_1x1")
        x = basic_conv(x, 192, 3, name="4a_3x3")
        x = x.maxpool(3, stride=2, name="maxpool2")
    with scope("mixed_5"):  # 35x35
        x = inception_a(x, 32)
        x = inception_a(x, 64)
        x = inception_a(x, 64)
    with scope("mixed_6"):  # 17x17
        x = inception_b(x)
        x = inception_c(x, 128)
        x = repeat(inception_c, 2, x, 160)
        x = inception_c(x, 192)
    with scope("mixed_7"):  # 8x8
        x = inception_d(x)
        x = inception_e(x)
        x = inception_e(x)
    x = x.global_avgpool(name="avgpool").dropout(0.5).flatten()
    return x.linear(1000, name="fc")
