"""VGG configurations A-LRN and C (Simonyan and Zisserman, 2014, Table 1).

The columns of the paper's Table 1 that torchvision does not ship, written with
the same blocks and classifier as :mod:`cnnir.zoo.vgg` (3x3 convs with padding
1, a 2x2/2 max pool closing each of the five blocks, FC 4096-4096-1000):

* **A-LRN**: configuration A (11 weight layers) with Local Response
  Normalisation after the first conv (and its ReLU); the paper found it does
  not help (Table 3) and dropped it.
* **C**: 16 weight layers like D (VGG-16), but the last conv of blocks 3, 4 and
  5 is a 1x1 conv ("conv1-256", "conv1-512"): extra non-linearity without
  growing the receptive field.  Table 2: 134 M parameters (D: 138 M).

A layer spec is the conv's channels (3x3), ``(channels, kernel)`` for another
kernel, or ``"LRN"``.
"""

from ..dsl import model, scope
from .vgg import vgg_classifier

CONFIGS = {
    "A-LRN": [[64, "LRN"], [128], [256, 256], [512, 512], [512, 512]],
    "C": [[64, 64], [128, 128], [256, 256, (256, 1)], [512, 512, (512, 1)],
          [512, 512, (512, 1)]],
}


def vgg_features(x, blocks):
    """Conv blocks ``block1..block5`` from a Table 1 column; names as in the paper."""
    for b, specs in enumerate(blocks, start=1):
        with scope(f"block{b}"):
            i = 0
            for spec in specs:
                if spec == "LRN":
                    x = x.lrn(name=f"lrn{b}")
                    continue
                i += 1
                ch, k = spec if isinstance(spec, tuple) else (spec, 3)
                x = x.conv(ch, k, padding=k // 2, name=f"conv{b}_{i}").relu(name=f"relu{b}_{i}")
            x = x.maxpool(2, stride=2, name=f"pool{b}")
    return x


@model(input=(3, 224, 224))
def vgg11_lrn(x):
    """VGG-11 with LRN (Simonyan & Zisserman 2014), config A-LRN: LRN after conv1_1; 3x224x224."""
    return vgg_classifier(vgg_features(x, CONFIGS["A-LRN"]))


@model(input=(3, 224, 224))
def vgg16_c(x):
    """VGG-16 config C (Simonyan & Zisserman 2014): 1x1 convs close blocks 3, 4 and 5; 3x224x224."""
    return vgg_classifier(vgg_features(x, CONFIGS["C"]))
