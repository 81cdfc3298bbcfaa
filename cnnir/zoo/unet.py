"""U-Net (Ronneberger, Fischer and Brox, 2015), the network of the paper's Figure 1.

Contracting path: four levels of two 3x3 convs + ReLU (64, 128, 256, 512
channels), each followed by a 2x2/2 max pool; a bottom pair of 3x3 convs at
1024 channels with dropout "at the end of the contracting path".  Expanding
path: a 2x2 stride-2 up-convolution (transposed conv) halving the channels, the
concatenation with the skip from the same level (skip first, as in Figure 1's
white-then-blue boxes), two 3x3 convs + ReLU; a final 1x1 conv to 2 classes.
Parameters, the channel plan and the 2x2 up-convolutions are the paper's.

Two variants:

* ``unet_original`` is the paper's: the 3x3 convs are unpadded, so every conv trims
  a pixel per side (572 -> 388, Figure 1's sizes) and each skip is *cropped* to the
  smaller up-sampled map before the concat ("crop-and-copy", a centre crop:
  568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56).  The input side must be one for
  which every pooled map is even (572, or 572 + 16k).
* ``unet`` pads the convs (``padding=1``), the usual "same" U-Net: maps keep their
  size within a level and skips line up without cropping.  That needs an input
  whose side is divisible by 16 (four 2x2 pools); the paper's 572 is not (572/16 =
  35.75), so the model declares 1x256x256 (any multiple of 16 works:
  ``--input 1x512x512`` gives the 512x512 ISBI EM slices the paper segmented).

Padding changes no parameter: both have the same weights.
"""

from ..dsl import block, concat, model


@block
def contract(x, channels, pool=True):
    """A contracting step: 2x2/2 max pool (not on the first level), two 3x3 convs + ReLU."""
    if pool:
        x = x.maxpool(2, stride=2, name="pool")
    x = x.conv(channels, 3, padding=1, name="conv1").relu(name="relu1")
    return x.conv(channels, 3, padding=1, name="conv2").relu(name="relu2")


@block
def expand(x, skip, channels):
    """An expansive step: 2x2/2 up-convolution to ``channels``, concat with the skip,
    two 3x3 convs + ReLU."""
    x = x.conv_transpose(channels, 2, stride=2, name="upconv")
    x = concat(skip, x, name="concat")
    x = x.conv(channels, 3, padding=1, name="conv1").relu(name="relu1")
    return x.conv(channels, 3, padding=1, name="conv2").relu(name="relu2")


@model(input=(1, 256, 256))
def unet(x):
    """U-Net (Ronneberger et al. 2015): segmentation encoder-decoder, padded convs; 1x256x256."""
    c1 = contract(x, 64, pool=False, name="1")
    c2 = contract(c1, 128, name="2")
    c3 = contract(c2, 256, name="3")
    c4 = contract(c3, 512, name="4")
    x = contract(c4, 1024, name="5").dropout(0.5, name="dropout")
    x = expand(x, c4, 512, name="4")
    x = expand(x, c3, 256, name="3")
    x = expand(x, c2, 128, name="2")
    x = expand(x, c1, 64, name="1")
    return x.conv(2, 1, name="classifier")


# --------------------------------------------------------------------------- the paper's


@block
def contract_valid(x, channels, pool=True):
    """A contracting step as in the paper: 2x2/2 max pool, two unpadded 3x3 convs + ReLU."""
    if pool:
        x = x.maxpool(2, stride=2, name="pool")
    x = x.conv(channels, 3, name="conv1").relu(name="relu1")
    return x.conv(channels, 3, name="conv2").relu(name="relu2")


@block
def expand_valid(x, skip, channels):
    """An expansive step as in the paper: 2x2/2 up-convolution, the skip centre-cropped
    to its size and concatenated (crop-and-copy), two unpadded 3x3 convs + ReLU."""
    x = x.conv_transpose(channels, 2, stride=2, name="upconv")
    x = concat(skip.crop_to(x, name="crop"), x, name="concat")
    x = x.conv(channels, 3, name="conv1").relu(name="relu1")
    return x.conv(channels, 3, name="conv2").relu(name="relu2")


@model(input=(1, 572, 572))
def unet_original(x):
    """U-Net as published (Ronneberger et al. 2015): unpadded convs, crop-and-copy; 1x572x572."""
    c1 = contract_valid(x, 64, pool=False, name="1")
    c2 = contract_valid(c1, 128, name="2")
    c3 = contract_valid(c2, 256, name="3")
    c4 = contract_valid(c3, 512, name="4")
    x = contract_valid(c4, 1024, name="5").dropout(0.5, name="dropout")
    x = expand_valid(x, c4, 512, name="4")
    x = expand_valid(x, c3, 256, name="3")
    x = expand_valid(x, c2, 128, name="2")
    x = expand_valid(x, c1, 64, name="1")
    return x.conv(2, 1, name="classifier")
