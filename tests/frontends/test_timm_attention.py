"""timm's attention blocks and stems through both frontends (issue 16), without timm.

Faithful small re-implementations in plain torch, written as timm 1.0 writes them:

* ECA (``timm.layers.eca.EcaModule``): ``x.mean((2, 3)).view(N, 1, -1)``,
  ``nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)``, a sigmoid module that
  calls ``x.sigmoid()``, ``view(N, -1, 1, 1)``, ``x * y.expand_as(x)``: a
  ``channel_conv1d``;
* split attention (``timm.layers.split_attn.SplitAttn`` with ``RadixSoftmax``):
  ``x.reshape(N, radix, C, H, W).sum(dim=1)``, rSoftMax's ``view(N, card, radix, -1)
  .transpose(1, 2)``, ``softmax(dim=1)``, ``reshape(N, -1)``, and
  ``(x * attn.reshape(N, radix, C, 1, 1)).sum(dim=1)``: slices, an add and a
  ``radix_softmax``;
* selective kernel (``timm.layers.selective_kernel``): ``torch.stack(paths, dim=1)``,
  ``.sum(1)``, ``view(N, 2, C, 1, 1)``, ``torch.softmax(x, dim=1)``, ``(x * attn)``,
  ``torch.sum(x, dim=1)``;
* space-to-depth (``timm.layers.space_to_depth.SpaceToDepth``, TResNet's stem):
  ``view(N, C, H/4, 4, W/4, 4).permute(0, 3, 5, 1, 2, 4).contiguous().view(...)``.

Each goes through torch.fx and through ``torch.onnx.export`` (TorchScript, opset 17,
``training=PRESERVE``, as ``benchmarks/import_coverage.py`` exports): params equal
``sum(p.numel())``, MACs equal ``FlopCounterMode``'s convolution and matmul FLOPs
halved, and the emitted PyTorch module and onnxruntime on cnnir's ONNX export give
the original's outputs.  cnnir's own ONNX export of each op reads back as itself.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.dsl import model
from cnnir.errors import FrontendError
from cnnir.frontends.onnx_import import from_onnx_model
from cnnir.frontends.torch_import import from_torch

# --------------------------------------------------------------------------- the blocks


class Sigmoid(nn.Module):
    """timm.layers.activations.Sigmoid: a module whose forward calls ``x.sigmoid()``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sigmoid()


class EcaModule(nn.Module):
    def __init__(self, channels: int, gamma: float = 2, beta: float = 1) -> None:
        super().__init__()
        t = int(abs(math.log(channels, 2) + beta) / gamma)
        kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2,
                              bias=False)
        self.gate = Sigmoid()

    def forward(self, x):
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)
        y = self.conv(y)
        y = self.gate(y).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)


class EcaBlock(nn.Module):
    def __init__(self, c: int = 64) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.se = EcaModule(c)  # 64 channels: kernel 3; 256 would give 5

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return self.se(y) + y


class RadixSoftmax(nn.Module):
    def __init__(self, radix: int, cardinality: int) -> None:
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x):
        batch = x.size(0)
        x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
        x = F.softmax(x, dim=1)
        return x.reshape(batch, -1)


class SplitAttn(nn.Module):
    def __init__(self, in_channels: int = 16, out_channels: int = 16, groups: int = 1,
                 radix: int = 2, attn_chs: int = 32) -> None:
        super().__init__()
        self.radix = radix
        mid = out_channels * radix
        self.conv = nn.Conv2d(in_channels, mid, 3, 1, 1, groups=groups * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(mid)
        self.act0 = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, attn_chs, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(attn_chs, mid, 1, groups=groups)
        self.rsoftmax = RadixSoftmax(radix, groups)

    def forward(self, x):
        x = self.act0(self.bn0(self.conv(x)))
        B, RC, H, W = x.shape
        x = x.reshape((B, self.radix, RC // self.radix, H, W))
        x_gap = x.sum(dim=1)
        x_gap = x_gap.mean((2, 3), keepdim=True)
        x_gap = self.act1(self.bn1(self.fc1(x_gap)))
        x_attn = self.fc2(x_gap)
        x_attn = self.rsoftmax(x_attn).view(B, -1, 1, 1)
        out = (x * x_attn.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1)
        return out.contiguous()


class ConvBnAct(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class SelectiveKernelAttn(nn.Module):
    def __init__(self, channels: int, num_paths: int = 2, attn_channels: int = 16) -> None:
        super().__init__()
        self.num_paths = num_paths
        self.fc_reduce = nn.Conv2d(channels, attn_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(attn_channels)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, 1, bias=False)

    def forward(self, x):
        torch._assert(x.shape[1] == self.num_paths, "")
        x = x.sum(1).mean((2, 3), keepdim=True)
        x = self.act(self.bn(self.fc_reduce(x)))
        x = self.fc_select(x)
        B, C, H, W = x.shape
        x = x.view(B, self.num_paths, C // self.num_paths, H, W)
        return torch.softmax(x, dim=1)


class SelectiveKernel(nn.Module):
    def __init__(self, in_channels: int = 16, out_channels: int = 24) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_paths = 2
        self.paths = nn.ModuleList([ConvBnAct(in_channels // 2, out_channels, d)
                                    for d in (1, 2)])
        self.attn = SelectiveKernelAttn(out_channels)

    def forward(self, x):
        x_split = torch.split(x, self.in_channels // self.num_paths, 1)
        x_paths = [op(x_split[i]) for i, op in enumerate(self.paths)]
        x = torch.stack(x_paths, dim=1)
        x_attn = self.attn(x)
        x = x * x_attn
        return torch.sum(x, dim=1)


class SpaceToDepth(nn.Module):
    def __init__(self, block_size: int = 4) -> None:
        super().__init__()
        self.bs = block_size

    def forward(self, x):
        N, C, H, W = x.size()
        x = x.view(N, C, H // self.bs, self.bs, W // self.bs, self.bs)
        x = x.permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(N, C * self.bs * self.bs, H // self.bs, W // self.bs)


class TResNetStem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s2d = SpaceToDepth()
        self.conv = nn.Conv2d(48, 16, 3, padding=1)

    def forward(self, x):
        return F.leaky_relu(self.conv(self.s2d(x)), 1e-3)


class Head(nn.Module):
    """A block, then pooling and a classifier (a linear's MACs in the count too)."""

    def __init__(self, body: nn.Module, c: int) -> None:
        super().__init__()
        self.body = body
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))


CASES = {
    "eca": (lambda: Head(EcaBlock(64), 64), (3, 10, 12)),
    "splat": (lambda: Head(SplitAttn(), 16), (16, 9, 7)),
    "splat_card2": (lambda: Head(SplitAttn(16, 16, groups=2), 16), (16, 6, 6)),
    "sk": (lambda: Head(SelectiveKernel(), 24), (16, 8, 10)),
    "s2d": (lambda: Head(TResNetStem(), 16), (3, 16, 24)),
}

KINDS = {
    "eca": {"channel_conv1d", "sigmoid", "mul"},
    "splat": {"slice", "add", "radix_softmax", "mul"},
    "splat_card2": {"radix_softmax"},
    "sk": {"concat", "radix_softmax", "mul"},
    "s2d": {"space_to_depth"},
}


def build(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    make, size = CASES[name]
    torch.manual_seed(0)
    m = make()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return m.eval(), size


def reference_macs(module: nn.Module, size: tuple[int, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(1, *size))
    counts = counter.get_flop_counts()["Global"]
    return sum(int(v) for k, v in counts.items()
               if str(k).split(".")[-1] in ("convolution", "addmm", "mm", "bmm")) // 2


def assert_runs_equal(graph, module: nn.Module, size: tuple[int, ...]) -> None:
    import onnxruntime as ort

    x = torch.randn(3, *size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emitted = to_module(graph, weights=graph.weights).eval()
    with torch.no_grad():
        want = module(x).numpy()
        np.testing.assert_allclose(emitted(x).numpy(), want, rtol=1e-5, atol=1e-5)
    sess = ort.InferenceSession(to_onnx(graph, weights=graph.weights).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def export(module: nn.Module, size: tuple[int, ...]) -> onnx.ModelProto:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *size),), f, dynamo=False, opset_version=17,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return onnx.load_from_string(f.getvalue())


def kinds(graph) -> list[str]:
    return [graph.op(n).kind for n in graph.nodes()]


def dead(graph) -> list[str]:
    return [n for n in graph.nodes() if not graph.users(n) and n not in graph.outputs]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("frontend", ["fx", "onnx"])
def test_imports_exactly_and_runs_equal(name, frontend):
    module, size = build(name)
    if frontend == "fx":
        g = from_torch(module, size)
    else:
        m = export(module, size)
        used = {n.op_type for n in m.graph.node}
        assert used & {"ReduceSum", "Expand", "SpaceToDepth", "Transpose", "Unsqueeze"}
        g = from_onnx_model(m)
    assert KINDS[name] <= set(kinds(g)) and not dead(g)
    a = analyze(g)
    assert a.params == sum(p.numel() for p in module.parameters())
    assert a.macs == reference_macs(module, size)
    assert_runs_equal(g, module, size)


def test_first_principles_of_the_new_ops():
    # ECA on 64 channels: k = 3 (|log2 64 + 1| / 2 = 3.5 -> 3), 3 weights, 64 * 3 MACs
    g = from_torch(EcaModule(64).eval(), (64, 5, 5))
    (conv,) = [n for n in g.nodes() if isinstance(g.op(n), O.ChannelConv1d)]
    assert g.op(conv) == O.ChannelConv1d(3, 1, False)
    a = analyze(g)
    assert (a.params, a.macs) == (3, 64 * 3)  # the conv is the only multiply-accumulate
    # EcaModule(256): k = |8 + 1| / 2 = 4 -> 5
    assert [g2.op(n) for g2 in [from_torch(EcaModule(256).eval(), (256, 2, 2))]
            for n in g2.nodes() if isinstance(g2.op(n), O.ChannelConv1d)] == [
        O.ChannelConv1d(5, 2, False)]
    # radix softmax: 3 other ops per output; space-to-depth: 0, its RF a 4-window of stride 4
    rs = O.RadixSoftmax(2, 2)
    assert rs.cost([O.TensorShape((8, 1, 1))], O.TensorShape((8, 1, 1))) == (0, 24)
    s2d = O.SpaceToDepth(4)
    assert s2d.infer([O.TensorShape((3, 16, 24))]) == (48, 4, 6)
    assert s2d.receptive_field([O.TensorShape((3, 16, 24))], (16, 24))[:2] == (
        (4, 4, 0), (4, 4, 0))


def test_space_to_depth_is_onnx_order_not_pixel_unshuffle():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    ours = SpaceToDepth(4)(x)
    # output channel (i*b + j)*C + c at (y, x) is input channel c at (y*b + i, x*b + j)
    for i in range(4):
        for j in range(4):
            for c in range(2):
                assert torch.equal(ours[0, (i * 4 + j) * 2 + c], x[0, c, i::4, j::4])
    assert not torch.equal(ours, F.pixel_unshuffle(x, 4))
    g = from_torch(SpaceToDepth(4), (2, 8, 8))
    m = to_onnx(g)
    assert [n.op_type for n in m.graph.node] == ["SpaceToDepth"]
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0],
                                  ours.numpy())


@model(input=(16, 6, 8))
def attention_ops(x):
    y = x.conv(16, 3, padding=1).space_to_depth(2)
    g = y.global_avgpool()
    gate = g.channel_conv1d(5).sigmoid()
    a = g.conv(64, 1).radix_softmax(2, 2)
    return (y * gate) + (y * a)


def test_cnnir_onnx_round_trip():
    g = attention_ops.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = to_module(g, mode="random", seed=3).eval()
    back = from_onnx_model(to_onnx(g, weights=m))
    assert [back.op(n) for n in back.nodes()] == [g.op(n) for n in g.nodes()]
    assert (analyze(back).params, analyze(back).macs) == (analyze(g).params, analyze(g).macs)
    x = torch.randn(2, 16, 6, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = to_module(back, weights=back.weights).eval()
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), m(x).numpy(), rtol=1e-5, atol=1e-6)


class Conv1dOnMap(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)

    def forward(self, x):
        return self.conv(x.flatten(2))


class BadPermute(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(
            n, c * 4, h // 2, w // 2)


class SumOfMap(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], 2, 2, 4, 4).sum(dim=2)


@pytest.mark.parametrize("module, message", [
    (Conv1dOnMap(), "flatten(start_dim=2"),
    (BadPermute(), "reads the 6-D view 'view'; cnnir maps a 6-D view only as space-to-depth"),
    (SumOfMap(), "sum over dim=2 of a 5-D (N, radix, C, H, W) view"),
], ids=["conv1d", "permute", "sum-dim"])
def test_fx_refusals_say_what_cnnir_maps(module, message):
    with pytest.raises(FrontendError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_torch(module, (4, 4, 4))


def test_onnx_radix_softmax_before_opset_13_is_refused():
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Reshape", ["x", "s"], ["g"]),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 2, 4, 1, 1], np.int64), "s")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    with pytest.raises(FrontendError, match="opset 13 or later"):
        from_onnx_model(m)
