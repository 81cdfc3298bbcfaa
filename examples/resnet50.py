"""ResNet-50 (He et al. 2015): bottleneck blocks 3-4-6-3, 1x1 projection shortcuts."""

from cnnir.dsl import block, model, repeat, scope


@block
def bottleneck(x, planes, stride=1, project=False):
    y = x.conv(planes, 1, bias=False).bn().relu()
    y = y.conv(planes, 3, stride=stride, padding=1, bias=False).bn().relu()
    y = y.conv(4 * planes, 1, bias=False).bn()
    if project:
        x = x.conv(4 * planes, 1, stride=stride, bias=False).bn()
    return (y + x).relu()


@model(input=(3, 224, 224))
def resnet50(x):
    x = x.conv(64, 7, stride=2, padding=3, bias=False).bn().relu().maxpool(3, stride=2, padding=1)
    for i, (planes, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        with scope(f"layer{i}"):
            x = bottleneck(x, planes, stride=1 if i == 1 else 2, project=True)
            x = repeat(bottleneck, n - 1, x, planes)
    return x.global_avgpool().flatten().linear(1000)
