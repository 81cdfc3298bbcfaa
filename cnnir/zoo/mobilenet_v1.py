"""MobileNet v1 (Howard et al., 2017), the paper's Table 1.

Depthwise separable convolutions: a 3x3 depthwise conv (groups = channels)
filters each map, a 1x1 pointwise conv mixes them; BatchNorm and ReLU after
each.  A full 3x3/2 conv to 32 maps first; 13 separable layers (strides 1, 2,
1, 2, 1, 2, then five at 512 maps, then 2 and 1); average pool over the final
7x7, FC 1024 -> 1000, softmax.  Table 1 gives the last depthwise layer stride 2,
but its output is 7x7 as its input: the stride is 1 (as in the authors' code).
The pool is global so that other resolutions work.

Options as in Section 3.3: ``width`` (the width multiplier alpha, every layer's
channel count times alpha; registered at 1.0, 0.75, 0.5 and 0.25) and the
resolution multiplier as the input size (``--input 3x192x192``, 160, 128).
"""

from ..dsl import block, model, scope
from ..errors import DslError

#: Table 1: (pointwise output channels, depthwise stride) of the 13 separable layers
LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@block
def separable(x, in_ch, out_ch, stride=1):
    """3x3 depthwise (stride) - BN - ReLU, 1x1 pointwise - BN - ReLU."""
    x = x.conv(in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False, name="dw")
    x = x.bn(name="dw_bn").relu(name="dw_relu")
    x = x.conv(out_ch, 1, bias=False, name="pw")
    return x.bn(name="pw_bn").relu(name="pw_relu")


def _channels(c: int, width: float) -> int:
    scaled = c * width
    if scaled != int(scaled) or scaled < 1:
        raise DslError(f"width multiplier {width} gives {scaled} channels for {c}; "
                         f"pick one that gives whole channel counts (1, 0.75, 0.5, 0.25)")
    return int(scaled)


def mobilenet_v1_net(x, width=1.0, num_classes=1000):
    ch = _channels(32, width)
    with scope("stem"):
        x = x.conv(ch, 3, stride=2, padding=1, bias=False, name="conv").bn(name="bn").relu()
    for i, (out, stride) in enumerate(LAYERS, start=1):
        out = _channels(out, width)
        x = separable(x, ch, out, stride, name=str(i))
        ch = out
    x = x.global_avgpool(name="avgpool").flatten()
    return x.linear(num_classes, name="fc").softmax()


def _make(width: float, suffix: str):
    def net(x, num_classes=1000):
        return mobilenet_v1_net(x, width, num_classes)

    net.__name__ = f"mobilenet_v1{suffix}"
    net.__doc__ = (f"MobileNet v1 (Howard et al. 2017), width {width}: depthwise separable "
                   f"convs for mobiles; 3x224x224.")
    return model(net, input=(3, 224, 224))


mobilenet_v1 = _make(1.0, "")
mobilenet_v1_075 = _make(0.75, "_075")
mobilenet_v1_050 = _make(0.5, "_050")
mobilenet_v1_025 = _make(0.25, "_025")


@model(input=(3, 224, 224))
def mobilenet_v1_any(x, width=1.0, num_classes=1000):
    """MobileNet v1 (Howard et al. 2017), any whole-channel width (``build(width=0.5)``)."""
    return mobilenet_v1_net(x, width, num_classes)
