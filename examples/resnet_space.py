"""A ResNet design space for ``cnnir sweep``: depth, base width, groups of the 3x3 convs.

    cnnir sweep examples/resnet_space.py --grid depth=18,34,50 width=32..96:step16 groups=1,2,4

Depths 18 and 34 use basic blocks, 50, 101 and 152 bottlenecks (He et al. 2015);
``groups`` splits every 3x3 conv into groups (ResNeXt-style), so a width that
``groups`` does not divide is an invalid variant, which the sweep records and skips.
"""

from cnnir.dsl import block, model, repeat, scope

LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}


@block
def unit(x, planes, stride=1, downsample=False, groups=1, bottleneck=False):
    """A basic block (two 3x3) or a bottleneck (1x1, grouped 3x3, 1x1 at 4 planes)."""
    out = planes * 4 if bottleneck else planes
    if bottleneck:
        y = x.conv(planes, 1, bias=False).bn().relu()
        y = y.conv(planes, 3, stride=stride, padding=1, groups=groups, bias=False).bn().relu()
        y = y.conv(out, 1, bias=False).bn()
    else:
        y = x.conv(planes, 3, stride=stride, padding=1, groups=groups, bias=False).bn().relu()
        y = y.conv(planes, 3, padding=1, groups=groups, bias=False).bn()
    if downsample:
        x = x.conv(out, 1, stride=stride, bias=False).bn()
    return (y + x).relu()


@model(input=(3, 224, 224))
def resnet_space(x, depth=50, width=64, groups=1, num_classes=1000):
    """ResNet of any depth in LAYERS, base width and 3x3 group count; 3x224x224."""
    if depth not in LAYERS:
        raise ValueError(f"depth must be one of {sorted(LAYERS)}, got {depth}")
    bottleneck = depth >= 50
    with scope("stem"):
        x = x.conv(width, 7, stride=2, padding=3, bias=False).bn().relu().maxpool(3, 2, 1)
    in_ch = width
    for i, n in enumerate(LAYERS[depth]):
        planes, stride = width * 2 ** i, 1 if i == 0 else 2
        out = planes * 4 if bottleneck else planes
        with scope(f"layer{i + 1}"):
            x = unit(x, planes, stride, downsample=stride != 1 or in_ch != out, groups=groups,
                     bottleneck=bottleneck)
            if n > 1:
                x = repeat(unit, n - 1, x, planes, groups=groups, bottleneck=bottleneck)
        in_ch = out
    return x.global_avgpool().flatten().linear(num_classes)
