"""timm's blocks that imported with wrong counts or not at all, written here in plain torch
as timm writes them (CI has no timm), through both frontends.

* Inception-ResNet-v2's residual ``x * 0.17 + shortcut`` and MobileOne's ``out += 0``: a
  number of the code is a fixed scale (buffers, not parameters), through torch.fx and
  through ``torch.onnx.export`` (a ``Constant`` node; an initializer stays a parameter);
* NF-ResNet's ``ScaledStdConv2d`` (weight standardisation times a learned ``gain``): a
  conv with the standardised weight, then a per-channel scale by the gain, each parameter
  counted once; through ONNX the standardisation is computed in the graph from
  initializers (one of them a transposed copy of the weight) and folded;
* ConvNeXt-style ``x * self.gamma.reshape(1, -1, 1, 1)`` (a computed parameter);
* TF "same" padding: timm's ``pad_same`` (a stand-in module ``timm.layers.padding`` holds
  the copy below) with ``Conv2dSame``, ``MaxPool2dSame`` and ``AvgPool2dSame`` on odd
  and even sizes: a static asymmetric padding at the import's input size.

Each: params equal ``sum(p.numel())``, MACs equal ``FlopCounterMode`` (conv + linear),
and the PyTorch module and the ONNX file cnnir emits compute the original's outputs.
"""

from __future__ import annotations

import math
import sys
import types
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.errors import CnnirError
from cnnir.frontends.onnx_import import from_onnx_model

# --------------------------------------------------------------------------- timm, copied


def get_same_padding(x, kernel_size: int, stride: int, dilation: int):
    if isinstance(x, torch.Tensor):
        return torch.clamp(((x / stride).ceil() - 1) * stride + (kernel_size - 1) * dilation
                           + 1 - x, min=0)
    return max((math.ceil(x / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - x, 0)


def pad_same(x, kernel_size, stride, dilation=(1, 1), value: float = 0):
    ih, iw = x.size()[-2:]
    pad_h = get_same_padding(ih, kernel_size[0], stride[0], dilation[0])
    pad_w = get_same_padding(iw, kernel_size[1], stride[1], dilation[1])
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2),
                 value=value)


pad_same.__module__ = "timm.layers.padding"  # the function cnnir's rule names


@pytest.fixture
def timm_padding(monkeypatch):
    """``timm.layers.padding`` with the copy above, as importing timm would make it."""
    mod = types.ModuleType("timm.layers.padding")
    mod.pad_same = pad_same  # type: ignore[attr-defined]
    mod.get_same_padding = get_same_padding  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "timm.layers.padding", mod)


class Conv2dSame(nn.Conv2d):
    def __init__(self, cin, cout, k, stride=1, dilation=1, groups=1, bias=True):
        super().__init__(cin, cout, k, stride, 0, dilation, groups, bias)

    def forward(self, x):
        x = pad_same(x, self.weight.shape[-2:], self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation,
                        self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    def __init__(self, k, stride):
        super().__init__((k, k), (stride, stride), (0, 0), (1, 1), False)

    def forward(self, x):
        x = pad_same(x, self.kernel_size, self.stride, self.dilation, value=-float("inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, (0, 0), self.dilation,
                            self.ceil_mode)


class AvgPool2dSame(nn.AvgPool2d):
    def __init__(self, k, stride):
        super().__init__((k, k), (stride, stride), (0, 0), False, False)

    def forward(self, x):
        x = pad_same(x, self.kernel_size, self.stride)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class ScaledStdConv2d(nn.Conv2d):
    def __init__(self, cin, cout, k, stride=1, bias=True, gamma=1.0, eps=1e-6):
        super().__init__(cin, cout, k, stride, padding=k // 2, bias=bias)
        self.gain = nn.Parameter(torch.rand(cout, 1, 1, 1) + 0.5)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps = eps

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None,
            weight=(self.gain * self.scale).view(-1), training=True, momentum=0.,
            eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class InceptionResnetBlock(nn.Module):
    """Block35's shape: branches, a 1x1 conv back, ``out * self.scale + x`` (a float)."""

    def __init__(self, c=4, scale=0.17):
        super().__init__()
        self.scale = scale
        self.b0 = nn.Conv2d(c, 2, 1)
        self.b1 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.Conv2d(2, 2, 3, padding=1))
        self.conv2d = nn.Conv2d(4, c, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        out = torch.cat((self.b0(x), self.b1(x)), 1)
        out = self.conv2d(out)
        out = out * self.scale + x
        return self.act(out)


class MobileOneBlock(nn.Module):
    """MobileOne's train-time block without an identity branch: ``out += 0``."""

    def __init__(self, cin=4, cout=6):
        super().__init__()
        self.identity = None
        self.conv_scale = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                        nn.BatchNorm2d(cout))
        self.conv_kxk = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1,
                                                               bias=False),
                                                     nn.BatchNorm2d(cout))
                                       for _ in range(2)])
        self.act = nn.ReLU()

    def forward(self, x):
        identity_out = 0
        if self.identity is not None:
            identity_out = self.identity(x)
        out = self.conv_scale(x)
        for ck in self.conv_kxk:
            out += ck(x)
        out += identity_out
        return self.act(out)


class NFBlock(nn.Module):
    """NF-ResNet's shape: ScaledStdConv2d convs, ``* alpha`` (a float), a learned scalar
    ``skipinit_gain`` and a ConvNeXt-style ``gamma.reshape`` layer scale."""

    def __init__(self, c=4):
        super().__init__()
        self.alpha = 0.2
        self.conv1 = ScaledStdConv2d(c, 6, 3)
        self.conv2 = ScaledStdConv2d(6, c, 1, bias=False)
        self.skipinit_gain = nn.Parameter(torch.tensor(0.7))
        self.gamma = nn.Parameter(torch.rand(c) + 0.5)
        self.act = nn.ReLU()

    def forward(self, x):
        out = self.conv2(self.act(self.conv1(x) * self.alpha))
        out = out * self.gamma.reshape(1, -1, 1, 1)
        out.mul_(self.skipinit_gain)  # in place, its result dropped (as timm writes it)
        return out * 1.0 + x


class SameNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dSame(3, 4, 3, stride=2)
        self.dw = Conv2dSame(4, 4, 5, stride=1, groups=4, bias=False)
        self.maxpool = MaxPool2dSame(3, 2)
        self.avgpool = AvgPool2dSame(3, 2)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.avgpool(self.maxpool(self.dw(self.stem(x))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- helpers


def reference_macs(module: nn.Module, size) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(1, *size))
    counts = counter.get_flop_counts()["Global"]
    return sum(int(v) for k, v in counts.items()
               if str(k).split(".")[-1] in ("convolution", "addmm", "mm", "bmm")) // 2


def check(graph, module: nn.Module, size) -> None:
    """Exact params and MACs; the emitted PyTorch module and ONNX file run equal."""
    a = analyze(graph)
    assert a.params == sum(p.numel() for p in module.parameters())
    assert a.macs == reference_macs(module, size)
    x = torch.randn(2, *size)
    with torch.no_grad():
        want = module(x).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emitted = to_module(graph, weights=graph.weights).eval()
    assert sum(p.numel() for p in emitted.parameters()) == a.params
    with torch.no_grad():
        np.testing.assert_allclose(emitted(x).numpy(), want, rtol=1e-4, atol=1e-5)
    import onnxruntime as ort

    sess = ort.InferenceSession(to_onnx(graph, weights=graph.weights).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def via_onnx(module: nn.Module, size, dynamo: bool = False):
    import io

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *size),), f, dynamo=dynamo,
                          opset_version=17, training=torch.onnx.TrainingMode.PRESERVE)
    return from_onnx_model(onnx.load_from_string(f.getvalue()))


def randomize(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for mod in module.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(mod.weight, 0.5, 1.5)
            nn.init.uniform_(mod.bias, -0.5, 0.5)
    return module.eval()


def scales(graph) -> list[O.Scale]:
    return [graph.op(n) for n in graph.nodes() if isinstance(graph.op(n), O.Scale)]


SIZE = (4, 6, 6)


# --------------------------------------------------------------------------- fixed scales


def test_fx_a_number_in_the_code_is_a_fixed_scale():
    m = randomize(InceptionResnetBlock())
    g = cnnir.from_torch(m, input=SIZE)
    assert scales(g) == [O.Scale(per_channel=False, fixed=True)]
    assert analyze(g).buffers == 1
    check(g, m, SIZE)


def test_onnx_a_constant_node_is_a_fixed_scale():
    m = randomize(InceptionResnetBlock())
    g = via_onnx(m, SIZE)
    assert [s.fixed for s in scales(g)] == [True]
    check(g, m, SIZE)


def test_fx_a_buffer_is_fixed_and_a_parameter_learned():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)
            self.register_buffer("std", torch.rand(1, 4, 1, 1) + 0.5)
            self.g = nn.Parameter(torch.rand(4, 1, 1) + 0.5)

        def forward(self, x):
            return 1.0 - self.conv(x) / self.std * self.g

    m = M().eval()
    g = cnnir.from_torch(m, input=SIZE)
    assert scales(g) == [O.Scale(divide=True, fixed=True), O.Scale(),
                         O.Scale(per_channel=False, bias=True, fixed=True)]
    assert analyze(g).buffers == 4 + 2
    check(g, m, SIZE)


def test_onnx_an_initializer_stays_a_parameter_and_c_minus_x_keeps_its_minus_one_fixed():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)
            self.c = nn.Parameter(torch.rand(4, 1, 1))

        def forward(self, x):
            return self.c - self.conv(x)

    m = M().eval()
    for g in (cnnir.from_torch(m, input=SIZE), via_onnx(m, SIZE)):
        assert scales(g) == [O.Scale(per_channel=False, fixed=True),
                             O.Scale(scale=False, bias=True)]
        check(g, m, SIZE)


@pytest.mark.parametrize("path", ["fx", "onnx"])
def test_mobileone_plus_zero_is_no_layer(path):
    m = randomize(MobileOneBlock())
    g = cnnir.from_torch(m, input=SIZE) if path == "fx" else via_onnx(m, SIZE)
    assert scales(g) == []
    check(g, m, SIZE)


def test_cnnir_onnx_round_trip_keeps_a_scale_fixed():
    m = randomize(InceptionResnetBlock())
    g = cnnir.from_torch(m, input=SIZE)
    back = from_onnx_model(to_onnx(g, weights=g.weights))
    assert [s.fixed for s in scales(back)] == [True]
    assert analyze(back).params == analyze(g).params


# --------------------------------------------------------------------------- weights computed


@pytest.mark.parametrize("path", ["fx", "onnx"])
def test_scaled_std_conv_counts_its_gain(path):
    m = NFBlock().eval()
    g = cnnir.from_torch(m, input=SIZE) if path == "fx" else via_onnx(m, SIZE)
    # each ScaledStdConv2d: a bias-free conv, then the gain (and the bias) as a scale
    assert [s for s in scales(g) if s.per_channel and not s.fixed][:2] == [
        O.Scale(bias=True), O.Scale()]
    check(g, m, SIZE)


def test_fx_a_weight_made_of_two_parameters_is_refused():
    class LowRank(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.randn(4, 3))
            self.b = nn.Parameter(torch.randn(3, 4))

        def forward(self, x):
            return F.conv2d(x, (self.a @ self.b).reshape(4, 4, 1, 1))

    with pytest.raises(CnnirError, match=r"conv2d's arrays \(16 values\) are computed from "
                                         r"a, b \(24 parameter values\)"):
        cnnir.from_torch(LowRank(), input=SIZE)


def test_fx_a_buffer_as_a_conv_weight_is_refused():
    class Blur(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("filt", torch.ones(4, 1, 3, 3) / 9)

        def forward(self, x):
            return F.conv2d(x, self.filt, groups=4)

    with pytest.raises(CnnirError, match=r"conv2d's arrays \(36 values\) are computed from "
                                         r"no parameter \(0 parameter values\)"):
        cnnir.from_torch(Blur(), input=SIZE)


def test_onnx_a_constant_made_of_more_values_than_it_holds_is_refused():
    from onnx import helper
    from onnx_cases import make_model

    rng = np.random.default_rng(0)
    model = make_model([
        helper.make_node("Add", ["a", "b"], ["k"], name="sum_of_two"),
        helper.make_node("ReduceMean", ["k"], ["c"], name="mean", axes=[0], keepdims=1),
        helper.make_node("Mul", ["x", "c"], ["y"], name="scale"),
    ], {"a": rng.standard_normal((2, 3, 1, 1)).astype(np.float32),
        "b": rng.standard_normal((2, 3, 1, 1)).astype(np.float32)}, [1, 3, 4, 4])
    with pytest.raises(CnnirError, match=r"Mul node 'scale': the constant \('c', 3 values\) "
                                         r"is computed from the initializers a, b \(12 values\)"):
        from_onnx_model(model)


# --------------------------------------------------------------------------- TF "same"


@pytest.mark.parametrize("size", [(3, 15, 16), (3, 16, 16), (3, 17, 13)])
def test_fx_pad_same_is_a_static_pad(timm_padding, size):
    m = SameNet().eval()
    g = cnnir.from_torch(m, input=size)
    kinds = [g.op(n).kind for n in g.nodes()]
    assert "maxpool2d" in kinds and "avgpool2d" in kinds
    check(g, m, size)


@pytest.mark.parametrize("size", [(3, 15, 16), (3, 17, 13)])
def test_onnx_pad_same_shape_arithmetic_folds(timm_padding, size):
    m = SameNet().eval()
    g = via_onnx(m, size)
    check(g, m, size)


def test_fx_pad_same_pads_exactly_as_tensorflow(timm_padding):
    """15 rows, k=3, s=2: ceil(15/2)=8 outputs need 2*7+3-15=2 rows: 1 top, 1 bottom;
    16 columns: 2*7+3-16=1: 0 left, 1 right (the odd one at the end)."""
    g = cnnir.from_torch(SameNet().eval(), input=(3, 15, 16))
    pads = [g.op(n) for n in g.nodes() if isinstance(g.op(n), O.Pad)]
    assert pads[0].padding == (1, 0, 1, 1)
    conv = next(n for n in g.nodes() if isinstance(g.op(n), O.Conv2d))
    assert g.shape(conv) == (4, 8, 8)
