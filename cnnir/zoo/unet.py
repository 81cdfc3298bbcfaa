"""U-Net (Ronneberger, Fischer and Brox, 2015), the network of the paper's Figure 1.

Contracting path: four levels of two 3x3 convs + ReLU (64, 128, 256, 512
channels), each followed by a 2x2/2 max pool; a bottom pair of 3x3 convs at
1024 channels with dropout "at the end of the contracting path".  Expanding
path: a 2x2 stride-2 up-convolution (transposed conv) halving the channels, the
concatenation with the skip from the same level (skip first, as in Figure 1's
white-then-blue boxes), two 3x3 convs + ReLU; a final 1x1 conv to 2 classes.
Parameters, the channel plan and the 2x2 up-convolutions are the paper's.

One departure, and why: the paper's 3x3 convs are unpadded, so every conv
trims a pixel per side (572 -> 388) and each skip must be *cropped* to the
smaller up-sampled map before the concat.  The IR has no crop op, so the convs
here are padded (``padding=1``), the usual "same" U-Net: maps keep their size
within a level and skips line up without cropping.  That needs an input whose
side is divisible by 16 (four 2x2 pools); the paper's 572 is not (572/16 =
35.75), so the model declares 1x256x256 (any multiple of 16 works:
``--input 1x512x512`` gives the 512x512 ISBI EM slices the paper segmented).
"""

from ..dsl import block, concat, model


@block
def double_conv(x, channels):
    """Two 3x3 convs (padded), ReLU after each."""
    x = x.conv(channels, 3, padding=1, name="conv1").relu(name="relu1")
    return x.conv(channels, 3, padding=1, name="conv2").relu(name="relu2")


@block
def down(x, channels):
    """2x2/2 max pool, then two 3x3 convs at ``channels``."""
    return double_conv(x.maxpool(2, stride=2, name="pool"), channels)


@block
def up(x, skip, channels):
    """2x2/2 up-convolution to ``channels``, concat with the skip, two 3x3 convs."""
    x = x.conv_transpose(channels, 2, stride=2, name="upconv")
    return double_conv(concat(skip, x, name="concat"), channels)


@model(input=(1, 256, 256))
def unet(x):
    """U-Net (2015): 4-level encoder-decoder, 2x2 up-convs, concat skips, 2 classes (padded)."""
    e1 = double_conv(x, 64, name="enc1")
    e2 = down(e1, 128, name="enc2")
    e3 = down(e2, 256, name="enc3")
    e4 = down(e3, 512, name="enc4")
    b = down(e4, 1024, name="bottom").dropout(0.5)
    d4 = up(b, e4, 512, name="dec4")
    d3 = up(d4, e3, 256, name="dec3")
    d2 = up(d3, e2, 128, name="dec2")
    d1 = up(d2, e1, 64, name="dec1")
    return d1.conv(2, 1, name="classifier")
