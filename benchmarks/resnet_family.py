"""The ResNet family ``benchmarks/bench_sweep.py`` costs: depth, base width, 3x3 groups
and the bottleneck's expansion (its output is ``expansion`` x its inner width).

``examples/resnet_space.py`` with one more dimension.  Depths 18 and 34 use basic
blocks (no expansion: the parameter leaves them as they are), 50, 101 and 152
bottlenecks; depth 50, width 64, groups 1, expansion 4 is torchvision's ResNet-50.
"""

from cnnir.dsl import block, model, repeat, scope

LAYERS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


@block
def unit(x, planes, stride=1, downsample=False, groups=1, expansion=0):
    """A basic block (two 3x3; ``expansion`` 0) or a bottleneck (1x1, grouped 3x3, 1x1
    at ``expansion`` x planes)."""
    out = planes * expansion if expansion else planes
    if expansion:
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
def resnet_family(x, depth=50, width=64, groups=1, expansion=4, num_classes=1000):
    """ResNet of any depth in LAYERS, base width, 3x3 groups, bottleneck expansion."""
    if depth not in LAYERS:
        raise ValueError(f"depth must be one of {sorted(LAYERS)}, got {depth}")
    if expansion < 1:
        raise ValueError(f"expansion must be at least 1, got {expansion}")
    expand = expansion if depth >= 50 else 0
    with scope("stem"):
        x = x.conv(width, 7, stride=2, padding=3, bias=False).bn().relu().maxpool(3, 2, 1)
    in_ch = width
    for i, n in enumerate(LAYERS[depth]):
        planes, stride = width * 2**i, 1 if i == 0 else 2
        out = planes * expand if expand else planes
        with scope(f"layer{i + 1}"):
            x = unit(
                x,
                planes,
                stride,
                downsample=stride != 1 or in_ch != out,
                groups=groups,
                expansion=expand,
            )
            if n > 1:
                x = repeat(unit, n - 1, x, planes, groups=groups, expansion=expand)
        in_ch = out
    return x.global_avgpool().flatten().linear(num_classes)
