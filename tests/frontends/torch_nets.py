"""Hand-written PyTorch networks shared by the ONNX and torch.fx import tests.

Every BatchNorm gets random statistics (:func:`randomize`), so an import that
dropped or mis-folded one would change the outputs.  ``*_params`` / ``*_macs``
give the expected counts from first principles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_params(cin: int, cout: int, k: int, bias: bool = True, groups: int = 1) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def conv_macs(cin: int, cout: int, k: int, h: int, w: int, groups: int = 1) -> int:
    """MACs of a conv producing an ``h x w`` map (batch 1)."""
    return h * w * cout * (cin // groups) * k * k


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
    return module.eval()


class BasicBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + identity)


class TinyResNet(nn.Module):
    """stem 3x3 (16) -> BasicBlock(16) -> BasicBlock(32, stride 2) -> GAP -> fc 10."""

    input_shape = (3, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def tiny_resnet_params(folded: bool) -> int:
    """Trainable parameters; ``folded``: BatchNorm folded into conv biases (ONNX export)."""
    bn = 0 if folded else 1
    convs = [(3, 16, 3), (16, 16, 3), (16, 16, 3), (16, 32, 3), (32, 32, 3), (16, 32, 1)]
    total = sum(conv_params(ci, co, k, bias=folded) + bn * 2 * co for ci, co, k in convs)
    return total + 32 * 10 + 10


TINY_RESNET_MACS = (conv_macs(3, 16, 3, 32, 32) + 2 * conv_macs(16, 16, 3, 32, 32)
                    + conv_macs(16, 32, 3, 16, 16) + conv_macs(32, 32, 3, 16, 16)
                    + conv_macs(16, 32, 1, 16, 16) + 32 * 10)


class Inception(nn.Module):
    """GoogLeNet's module: 1x1 | 1x1->3x3 | 1x1->5x5 | maxpool->1x1, concatenated."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU(inplace=True))
        self.b2 = nn.Sequential(nn.Conv2d(cin, c3r, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(c3r, c3, 3, padding=1), nn.ReLU(inplace=True))
        self.b3 = nn.Sequential(nn.Conv2d(cin, c5r, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(c5r, c5, 5, padding=2), nn.ReLU(inplace=True))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, proj, 1),
                                nn.ReLU(inplace=True))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class InceptionNet(nn.Module):
    input_shape = (3, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inc = Inception(16, 8, 4, 8, 2, 4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        x = self.inc(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


INCEPTION_PARAMS = (conv_params(3, 16, 3) + conv_params(16, 8, 1) + conv_params(16, 4, 1)
                    + conv_params(4, 8, 3) + conv_params(16, 2, 1) + conv_params(2, 4, 5)
                    + conv_params(16, 4, 1) + 24 * 5 + 5)
# 28x28 -> stem conv 28x28 -> ceil-mode pool 3/2: ceil(25/2)+1 = 14
INCEPTION_MACS = (conv_macs(3, 16, 3, 28, 28) + conv_macs(16, 8, 1, 14, 14)
                  + conv_macs(16, 4, 1, 14, 14) + conv_macs(4, 8, 3, 14, 14)
                  + conv_macs(16, 2, 1, 14, 14) + conv_macs(2, 4, 5, 14, 14)
                  + conv_macs(16, 4, 1, 14, 14) + 24 * 5)


class InvertedResidual(nn.Module):
    """MobileNetV2: expand 1x1 -> depthwise 3x3 -> project 1x1, relu6, residual if it fits."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class TinyMobileNet(nn.Module):
    input_shape = (3, 32, 32)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(InvertedResidual(8, 8, 1, 6), InvertedResidual(8, 16, 2, 6))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def tiny_mobilenet_params(folded: bool) -> int:
    bn = 0 if folded else 1
    convs = [(3, 8, 3, 1), (8, 48, 1, 1), (48, 48, 3, 48), (48, 8, 1, 1),
             (8, 48, 1, 1), (48, 48, 3, 48), (48, 16, 1, 1)]
    return sum(conv_params(ci, co, k, bias=folded, groups=g) + bn * 2 * co
               for ci, co, k, g in convs) + 16 * 10 + 10


class SqueezeExcite(nn.Module):
    """Squeeze-excitation with 1x1 convs (torchvision's SqueezeExcitation)."""

    def __init__(self, c: int, r: int, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = gate()

    def forward(self, x):
        s = self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return x * s


class SENet(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.act = nn.Hardswish()
        self.se = SqueezeExcite(16, 4, gate)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                                  nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.se(self.act(self.bn(self.conv(x)))))


def senet_params(folded: bool) -> int:
    return (conv_params(3, 16, 3) + (0 if folded else 32) + conv_params(16, 4, 1)
            + conv_params(4, 16, 1) + 16 * 3 + 3)


class LinearSE(nn.Module):
    """The other common SE: Linear layers and ``view(b, c, 1, 1)`` (an unflatten)."""

    input_shape = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = self.conv(x)
        s = torch.sigmoid(self.fc(y.mean((2, 3))))
        return y * s.view(y.size(0), 8, 1, 1)
