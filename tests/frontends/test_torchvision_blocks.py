"""The blocks that break CNN tools, written as torchvision writes them, through both frontends.

CI's torch cannot import torchvision, so each block is a faithful re-implementation of
torchvision's code (same module structure, same functional calls, same reads of
``x.shape``): ShuffleNet v2's unit (``chunk`` and the ``view``-``transpose``-``view``
channel shuffle), MobileNet v3's inverted residual (SE with hard-sigmoid, hard-swish),
EfficientNet's MBConv (SiLU, SE, stochastic depth), RegNet Y's bottleneck (grouped conv,
SE on the input width), DeepLab v3's ASPP head (dilated convs, a pooling branch
interpolated back to ``x.shape[-2:]``, a dict output) and LR-ASPP (a sigmoid gate, a
bilinear resize to the low-level map's size).

Each goes through torch.fx (``cnnir.from_torch``) and through ``torch.onnx.export``
(TorchScript exporter, opset 17, BatchNorm kept as a node) and ``cnnir.load``: params
equal ``sum(p.numel())``, MACs equal ``FlopCounterMode``'s convolution and matmul count
(halved), and the PyTorch module and the ONNX model cnnir emits compute the original's
outputs on a random batch.  ``benchmarks/import_coverage.py`` runs the real torchvision
models the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module

# --------------------------------------------------------------------------- torchvision's parts


def _stochastic_depth(x, p, mode, training=True):
    """torchvision.ops.stochastic_depth: the identity at inference (an fx leaf there)."""
    if not training or p == 0.0:
        return x
    raise AssertionError("training mode")


_stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
_stochastic_depth.__name__ = "stochastic_depth"
torch.fx.wrap("_stochastic_depth")


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        return _stochastic_depth(x, self.p, self.mode, self.training)


class Conv2dNormActivation(nn.Sequential):
    """torchvision.ops.Conv2dNormActivation: conv (bias only without a norm), BN, act."""

    def __init__(self, cin, cout, kernel=3, stride=1, groups=1, activation=nn.ReLU,
                 dilation=1):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation,
                      groups, bias=False),
            nn.BatchNorm2d(cout)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, cin, squeeze, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(cin, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, cin, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        scale = self.avgpool(x)
        scale = self.fc2(self.activation(self.fc1(scale)))
        return self.scale_activation(scale) * x


# --------------------------------------------------------------------------- the blocks


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleUnit(nn.Module):
    """torchvision.models.shufflenetv2.InvertedResidual."""

    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        bf = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else bf, bf, 1, bias=False), nn.BatchNorm2d(bf),
            nn.ReLU(inplace=True),
            nn.Conv2d(bf, bf, 3, stride, 1, bias=False, groups=bf), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2Stage(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = Conv2dNormActivation(3, 8, 3, 2)
        self.stage = nn.Sequential(ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1),
                                   ShuffleUnit(16, 16, 1))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stage(self.conv1(x))
        return self.fc(x.mean([2, 3]))


class MobileNetV3Block(nn.Module):
    """torchvision.models.mobilenetv3.InvertedResidual with SE and hard-swish."""

    def __init__(self, cin, exp, cout, kernel, stride, use_se=True):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(Conv2dNormActivation(cin, exp, 1, activation=nn.Hardswish))
        layers.append(Conv2dNormActivation(exp, exp, kernel, stride, groups=exp,
                                           activation=nn.Hardswish))
        if use_se:
            squeeze = max(8, int(exp // 4 + 4) // 8 * 8)  # _make_divisible(exp // 4, 8)
            layers.append(SqueezeExcitation(exp, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(exp, cout, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        result = self.block(x)
        if self.use_res:
            result += x
        return result


class MobileNetV3Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 16, 3, 2, activation=nn.Hardswish),
            MobileNetV3Block(16, 64, 24, 5, 2), MobileNetV3Block(24, 72, 24, 3, 1),
            MobileNetV3Block(24, 96, 24, 5, 1, use_se=False),
            Conv2dNormActivation(24, 48, 1, activation=nn.Hardswish))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(48, 32), nn.Hardswish(inplace=True),
                                        nn.Dropout(0.2, inplace=True), nn.Linear(32, 5))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class MBConv(nn.Module):
    """torchvision.models.efficientnet.MBConv."""

    def __init__(self, cin, ratio, cout, kernel, stride, sd_prob):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        exp = cin * ratio
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(Conv2dNormActivation(cin, exp, 1, activation=nn.SiLU))
        layers.append(Conv2dNormActivation(exp, exp, kernel, stride, groups=exp,
                                           activation=nn.SiLU))
        layers.append(SqueezeExcitation(exp, max(1, cin // 4), activation=nn.SiLU))
        layers.append(Conv2dNormActivation(exp, cout, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, x):
        result = self.block(x)
        if self.use_res:
            result = self.stochastic_depth(result)
            result += x
        return result


class EfficientNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 8, 3, 2, activation=nn.SiLU),
            MBConv(8, 1, 8, 3, 1, 0.0), MBConv(8, 6, 12, 3, 2, 0.0125),
            MBConv(12, 6, 12, 5, 1, 0.025), MBConv(12, 6, 12, 3, 1, 0.0375),
            Conv2dNormActivation(12, 40, 1, activation=nn.SiLU))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(40, 5))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class RegNetYBlock(nn.Module):
    """torchvision.models.regnet.ResBottleneckBlock (BottleneckTransform with SE)."""

    def __init__(self, w_in, w_out, stride, group_width, se_ratio=0.25):
        super().__init__()
        self.proj = None
        if w_in != w_out or stride != 1:
            self.proj = Conv2dNormActivation(w_in, w_out, 1, stride, activation=None)
        w_b = w_out
        g = w_b // group_width
        self.f = nn.Sequential(
            Conv2dNormActivation(w_in, w_b, 1),
            Conv2dNormActivation(w_b, w_b, 3, stride, groups=g),
            SqueezeExcitation(w_b, int(round(se_ratio * w_in))),
            Conv2dNormActivation(w_b, w_out, 1, activation=None))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.proj(x) + self.f(x) if self.proj is not None else x + self.f(x)
        return self.activation(x)


class RegNetYTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dNormActivation(3, 8, 3, 2)
        self.trunk = nn.Sequential(RegNetYBlock(8, 24, 2, 8), RegNetYBlock(24, 24, 1, 8),
                                   RegNetYBlock(24, 56, 2, 8))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(56, 5)

    def forward(self, x):
        x = self.avgpool(self.trunk(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))


class ASPPPooling(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """torchvision.models.segmentation.deeplabv3.ASPP."""

    def __init__(self, cin, rates, cout):
        super().__init__()
        modules: list[nn.Module] = [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                                  nn.BatchNorm2d(cout), nn.ReLU())]
        for rate in rates:  # ASPPConv
            modules.append(nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=rate, dilation=rate, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU()))
        modules.append(ASPPPooling(cin, cout))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(nn.Conv2d(len(self.convs) * cout, cout, 1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x):
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class DeepLabV3Tiny(nn.Module):
    """DeepLabV3: a stride-8 backbone, DeepLabHead, resize to the input, a dict out."""

    def __init__(self, classes=3):
        super().__init__()
        self.backbone = nn.Sequential(Conv2dNormActivation(3, 8, 3, 2),
                                      Conv2dNormActivation(8, 16, 3, 2),
                                      Conv2dNormActivation(16, 24, 3, 2),
                                      Conv2dNormActivation(24, 24, 3, 1, dilation=2))
        self.classifier = nn.Sequential(ASPP(24, (12, 24, 36), 16),
                                        nn.Conv2d(16, 16, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, classes, 1))

    def forward(self, x):
        input_shape = x.shape[-2:]
        x = self.classifier(self.backbone(x))
        x = F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)
        return {"out": x}


class LRASPPTiny(nn.Module):
    """torchvision.models.segmentation.lraspp: LRASPPHead on a low and a high map."""

    def __init__(self, classes=3, inter=16):
        super().__init__()
        self.low = nn.Sequential(Conv2dNormActivation(3, 8, 3, 2, activation=nn.Hardswish),
                                 Conv2dNormActivation(8, 12, 3, 2, activation=nn.Hardswish))
        self.high = nn.Sequential(Conv2dNormActivation(12, 24, 3, 2, activation=nn.Hardswish),
                                  Conv2dNormActivation(24, 32, 3, 2, activation=nn.Hardswish))
        self.cbr = nn.Sequential(nn.Conv2d(32, inter, 1, bias=False), nn.BatchNorm2d(inter),
                                 nn.ReLU(inplace=True))
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, inter, 1, bias=False),
                                   nn.Sigmoid())
        self.low_classifier = nn.Conv2d(12, classes, 1)
        self.high_classifier = nn.Conv2d(inter, classes, 1)

    def forward(self, inp):
        low = self.low(inp)
        high = self.high(low)
        x = self.cbr(high)
        x = x * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.low_classifier(low) + self.high_classifier(x)
        out = F.interpolate(out, size=inp.shape[-2:], mode="bilinear", align_corners=False)
        return {"out": out}


#: name -> (module, input CxHxW, an op kind the import must contain)
BLOCKS: dict[str, tuple[type[nn.Module], tuple[int, int, int], type]] = {
    "shufflenet_v2_unit": (ShuffleNetV2Stage, (3, 32, 32), O.ChannelShuffle),
    "mobilenet_v3_block": (MobileNetV3Tiny, (3, 48, 48), O.HardSigmoid),
    "efficientnet_mbconv": (EfficientNetTiny, (3, 40, 40), O.Sigmoid),
    "regnet_y_block": (RegNetYTiny, (3, 32, 32), O.Conv2d),
    "deeplab_aspp": (DeepLabV3Tiny, (3, 65, 65), O.Upsample),
    "lraspp": (LRASPPTiny, (3, 70, 70), O.Upsample),
}


# --------------------------------------------------------------------------- checks


def build(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    cls, shape, _ = BLOCKS[name]
    torch.manual_seed(0)
    module = cls()
    with torch.no_grad():  # BN statistics that are not the identity
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return module.eval(), shape


def flat(v: Any) -> list[np.ndarray]:
    if isinstance(v, torch.Tensor):
        return [v.detach().numpy()]
    if isinstance(v, dict):
        return [t for x in v.values() for t in flat(x)]
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in flat(x)]
    raise TypeError(type(v))


def reference_macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(1, *shape))
    counts = counter.get_flop_counts()["Global"]
    return sum(int(v) for k, v in counts.items()
               if str(k).split(".")[-1] in ("convolution", "addmm", "mm", "bmm")) // 2


def close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(got - ref).max()) <= 1e-4 * scale, what


def assert_exact(graph: cnnir.Graph, module: nn.Module, shape: tuple[int, ...]) -> None:
    a = analyze(graph)
    assert a.params == sum(p.numel() for p in module.parameters())
    assert a.macs == reference_macs(module, shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = flat(module(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emitted = to_module(graph, weights=graph.weights).eval()
    with torch.no_grad():
        got = flat(emitted(x))
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        close(g, r, "emitted PyTorch")
    sess = ort.InferenceSession(to_onnx(graph, weights=graph.weights).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    assert len(outs) == len(ref)
    for g, r in zip(outs, ref):
        close(g, r, "emitted ONNX on onnxruntime")


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_fx_import_is_exact_and_runs_equal(name):
    module, shape = build(name)
    g = cnnir.from_torch(module, input=shape)
    assert any(isinstance(g.op(n), BLOCKS[name][2]) for n in g.nodes())
    assert_exact(g, module, shape)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_onnx_export_import_is_exact_and_runs_equal(name, tmp_path):
    module, shape = build(name)
    path = str(tmp_path / f"{name}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *shape),), path, dynamo=False,
                          opset_version=17, training=torch.onnx.TrainingMode.PRESERVE)
    g = cnnir.load(path)
    assert any(isinstance(g.op(n), BLOCKS[name][2]) for n in g.nodes())
    assert_exact(g, module, shape)


def test_the_blocks_keep_what_makes_them_hard():
    """Not a trivial pass: the import keeps each block's defining ops, in the IR."""
    shuffle = cnnir.from_torch(build("shufflenet_v2_unit")[0], input=(3, 32, 32))
    assert sum(isinstance(shuffle.op(n), O.ChannelShuffle) for n in shuffle.nodes()) == 3
    effnet = cnnir.from_torch(build("efficientnet_mbconv")[0], input=(3, 40, 40))
    drops = sorted(op.p for n in effnet.nodes() if isinstance(op := effnet.op(n), O.DropPath))
    assert drops == [0.0, 0.025, 0.0375]  # one per residual MBConv, p = 0 included
    aspp = cnnir.from_torch(build("deeplab_aspp")[0], input=(3, 65, 65))
    dilations = sorted({aspp.op(n).dilation for n in aspp.nodes()
                        if isinstance(aspp.op(n), O.Conv2d)})
    assert dilations == [(1, 1), (2, 2), (12, 12), (24, 24), (36, 36)]
    assert tuple(aspp.shape(aspp.outputs[0])) == (3, 65, 65)  # resized to the odd input
