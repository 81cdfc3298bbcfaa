"""torch.fx import of what timm and torchvision trace into: size reads folded at the
input size, functional layers on a module's own tensors, calls computed on parameters,
a resize to a size that is no multiple, and the message for a model fx cannot trace.

Each model is a small re-implementation of the pattern (no torchvision, no timm): params
equal ``sum(p.numel())``, MACs equal ``FlopCounterMode``'s (conv + linear, halved), and
the emitted PyTorch module computes the original's outputs."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.cli import main
from cnnir.errors import CnnirError, FrontendError
from cnnir.frontends.onnx_import import from_onnx_model as from_onnx

# torch.fx traces ``len(x)`` only where the module wraps it (otherwise its tracer refuses
# it before cnnir sees the graph); the recorded call is the batch size
torch.fx.wrap("len")


def emitted(graph: cnnir.Graph) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_module(graph, weights=graph.weights).eval()


def exact(module: nn.Module, shape: tuple[int, ...]) -> cnnir.Graph:
    """Import ``module``: exact params and MACs, outputs equal to the original's."""
    module.eval()
    g = cnnir.from_torch(module, input=shape)
    a = analyze(g)
    assert a.params == sum(p.numel() for p in module.parameters())
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(x[:1])
    flops = sum(v for k, v in fc.get_flop_counts()["Global"].items()
                if "conv" in str(k) or k in (torch.ops.aten.addmm, torch.ops.aten.mm))
    assert a.macs == flops // 2
    with torch.no_grad():
        ref, out = module(x), emitted(g)(x)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    return g


def ops_of(g: cnnir.Graph) -> list[str]:
    return [type(v.op).__name__ for v in g.walk()]


# --------------------------------------------------------------------------- size reads


class ShapeReads(nn.Module):
    """``b, c, h, w = x.shape``, ``x.size(1)``, ``x.dim()``, ``x.ndim``, ``len(x)``
    (wrapped above), a module attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.num_features = 8 * 4 * 4
        self.fc = nn.ModuleList([nn.Linear(self.num_features, 5) for _ in range(3)])
        self.fc2 = nn.ModuleList([nn.Linear(8, 5) for _ in range(2)])

    def forward(self, x):
        torch._assert(x.dim() == 4, "NCHW")
        y = F.max_pool2d(self.conv(x), 2)
        torch._assert(y.ndim == 4, "NCHW")
        b, c, h, w = y.shape
        flat = y.view(b, -1)                          # (N, 128)
        flat2 = y.reshape(y.size(0), c * h * w)       # the same, by size arithmetic
        flat3 = y.view(len(y), self.num_features)     # a module attribute
        g = F.adaptive_avg_pool2d(y, 1).reshape(y.shape[0], y.size(1))
        return self.fc[0](flat) + self.fc[1](flat2) + self.fc[2](flat3) + self.fc2[0](g) + \
            self.fc2[1](torch.flatten(F.avg_pool2d(y, y.size(-1)), 1))


def test_size_reads_fold_at_the_input_size_and_keep_the_batch_symbolic():
    m = ShapeReads()
    g = exact(m, (3, 8, 8))
    assert ops_of(g).count("Flatten") == 5
    x = torch.randn(5, 3, 8, 8)  # the batch stays N: another batch size runs too
    with torch.no_grad():
        np.testing.assert_allclose(emitted(g)(x).numpy(), m(x).numpy(), rtol=1e-5, atol=1e-5)


def test_a_read_of_another_tensor_attribute_is_named():
    class DType(nn.Module):
        def forward(self, x):
            return x.relu().to(x.dtype)

    with pytest.raises(FrontendError, match=r"reads the tensor attribute 'dtype'"):
        cnnir.from_torch(DType(), input=(3, 4, 4))


def test_arithmetic_on_the_batch_is_refused_not_guessed():
    class Half(nn.Module):
        def forward(self, x):
            return x.view(x.size(0) // 2, -1)

    with pytest.raises(FrontendError, match="arithmetic on the batch size"):
        cnnir.from_torch(Half(), input=(3, 4, 4))


# --------------------------------------------------------------------------- module tensors


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's: a BatchNorm2d subclass whose own forward calls F.batch_norm, then an act."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.act = nn.ReLU()

    def forward(self, x):
        torch._assert(x.ndim == 4, f"expected 4D input (got {x.ndim}D input)")
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         False, 0.1, self.eps)
        return self.act(x)


class ScaledStdConv2d(nn.Conv2d):
    """NFNet's: the weight standardised from the parameters in forward, then F.conv2d."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__(cin, cout, k, stride, padding=k // 2)
        self.gain = nn.Parameter(torch.rand(cout, 1, 1, 1) + 0.5)
        self.scale = (cin * k * k) ** -0.5

    def forward(self, x):
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         weight=(self.gain * self.scale).view(-1), training=True,
                         momentum=0.0, eps=1e-6).reshape_as(self.weight)
        pad = self.weight.shape[-1] // 2  # a size of a module tensor: a constant
        return F.conv2d(x, w, self.bias, self.stride, pad, self.dilation, self.groups)


class Head(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class TimmLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = ScaledStdConv2d(3, 8, 3, stride=2)
        self.bn = BatchNormAct2d(8)
        self.conv = nn.Conv2d(8, 16, 3, bias=False)
        self.bn2 = BatchNormAct2d(16)
        self.head = Head(16, 4)
        for bn in (self.bn, self.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.5, 0.5)

    def forward(self, x):
        y = self.bn2(self.conv(self.bn(self.stem(x))))
        return self.head(y.mean((2, 3)))


def test_functional_layers_on_module_tensors_are_layers():
    g = exact(TimmLike(), (3, 16, 16))
    # the stem's ScaledStdConv2d: the standardised conv, then its gain (8 parameters)
    assert ops_of(g) == ["Input", "Conv2d", "Scale", "BatchNorm2d", "ReLU", "Conv2d",
                         "BatchNorm2d", "ReLU", "GlobalAvgPool", "Flatten", "Linear"]
    # the scopes are the modules: the functional batch norm is inside bn
    assert [v.name for v in g.walk()][1:5] == ["stem/conv", "stem/gain", "bn/bn", "bn/act"]


def test_batch_norm_with_batch_statistics_is_refused():
    class Train(nn.BatchNorm2d):
        def forward(self, x):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                self.bias, True)

    with pytest.raises(FrontendError, match="training=True"):
        cnnir.from_torch(Train(3), input=(3, 4, 4))


# --------------------------------------------------------------------------- control flow


class SamePad(nn.Module):
    """timm's Conv2dSame: padding computed with ``max`` on the traced size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        pad = max((-(-x.shape[-1] // 2) - 1) * 2 + 3 - x.shape[-1], 0)
        return self.conv(F.pad(x, [pad // 2, pad - pad // 2] * 2))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(SamePad(), nn.ReLU())

    def forward(self, x):
        return self.stem(x)


def test_an_untraceable_module_is_named_with_the_onnx_route():
    with pytest.raises(FrontendError) as err:
        cnnir.from_torch(Net(), input=(3, 9, 9))
    e = err.value
    assert e.msg.startswith("torch.fx cannot trace Net: TraceError:")
    assert e.msg.endswith("in module 'stem.0' (SamePad)") and "\n" not in e.msg
    assert "torch.onnx.export(model, torch.randn(1, 3, 9, 9), 'model.onnx')" in e.hint
    assert "`cnnir report model.onnx`" in e.hint


def test_an_untraceable_module_on_the_command_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "same_net.py").write_text(
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class Same(nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n"
        "            return F.relu(x)\n"
        "        return x\n")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "same_net.py:Same", "--input", "3x8x8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("same_net.py:8: error: torch.fx cannot trace Same: TraceError")
    assert "cnnir report model.onnx" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the message and its hint


# --------------------------------------------------------------------------- resize to a size


class Resize(nn.Module):
    def __init__(self, size, mode, align, module: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.size, self.mode, self.align = size, mode, align
        self.up = nn.Upsample(size=size, mode=mode, align_corners=align) if module else None

    def forward(self, x):
        y = self.conv(x)
        if self.up is not None:
            return self.up(y)
        return F.interpolate(y, size=self.size, mode=self.mode, align_corners=self.align)


CASES = [((33, 47), "bilinear", False, False), ((33, 47), "bilinear", True, False),
         ((33, 47), "nearest", None, False), ((5, 7), "bilinear", False, False),
         ((5, 7), "nearest", None, True), ((65, 65), "bilinear", False, True)]


@pytest.mark.parametrize("size, mode, align, module", CASES)
def test_resize_to_a_size_that_is_no_multiple_is_exact(size, mode, align, module):
    """DeepLab's / LR-ASPP's ``F.interpolate(x, size=input_size)``: through the torch
    import, the PyTorch backend, ONNX (onnxruntime) and back, PyTorch's pixels."""
    m = Resize(size, mode, align, module).eval()
    g = exact(m, (3, 29, 31))
    up = g.walk()[-1].op
    assert up == O.Upsample((1, 1), mode, bool(align), size=size)
    assert g.walk()[-1].meta["shape"] == (4, *size)
    n_out = 4 * size[0] * size[1]
    assert analyze(g).other_ops - 4 * 14 * 15 == (7 * n_out if mode == "bilinear" else 0)
    x = torch.randn(2, 3, 29, 31, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(x).numpy()
    proto = to_onnx(g)
    sess = ort.InferenceSession(proto.SerializeToString())
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    back = from_onnx(proto)
    assert back.walk()[-1].op == up
    with torch.no_grad():
        np.testing.assert_allclose(emitted(back)(x).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_upsample_to_a_size_shape_rf_and_json():
    op = O.Upsample((1, 1), "bilinear", size=(65, 65))
    assert op.infer([cnnir.TensorShape((8, 17, 17))]) == (8, 65, 65)
    assert op.attrs() == "to 65x65,bilinear"
    assert O.op_from_dict("upsample", op.to_dict()) == op
    assert "size" not in O.Upsample((2, 2)).to_dict()  # the scale form writes as before
    with pytest.raises(CnnirError, match="takes scale=\\(1, 1\\)"):
        O.Upsample((2, 2), size=(5, 5))
    # the receptive field grows through it (two input units per output, stride 17/65)
    (rf_h, rf_w, whole, _) = op.receptive_field([cnnir.TensorShape((8, 17, 17))], (17, 17))
    assert rf_h[0] == 2 and rf_h[1] == pytest.approx(17 / 65)
