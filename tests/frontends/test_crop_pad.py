"""Pads that crop, pad modules and reflect padding: NASNet's pad-pool-crop, ``nn.ZeroPad2d`` /
``nn.ConstantPad2d``, ``F.pad`` with negative amounts and ONNX ``Pad`` with negative
pads (which crop: a Slice, then the positive rest as a Pad); ``nn.ReflectionPad2d``,
``F.pad(mode="reflect")`` and ONNX ``Pad(mode="reflect")`` as a reflect Pad.

timm's NASNet / PNASNet max pool is ``ZeroPad2d((1, 0, 1, 0))``, the pool, then
``x[:, :, 1:, 1:]``; written the same here, through torch.fx and through
``torch.onnx.export``: params equal ``sum(p.numel())``, outputs of the emitted PyTorch
module and of onnxruntime equal the module's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper
from onnx_cases import both_backends, make_model, run_ort

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.errors import CnnirError, FrontendError
from cnnir.frontends.onnx_import import from_onnx_model


class NasMaxPool(nn.Module):
    """timm.models.nasnet.MaxPool with zero_pad=True."""

    def __init__(self):
        super().__init__()
        self.zero_pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x):
        x = self.pool(self.zero_pad(x))
        return x[:, :, 1:, 1:]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.pool = NasMaxPool()
        self.pad = nn.ConstantPad2d((0, 1, 2, 0), 0.5)

    def forward(self, x):
        y = self.pool(self.conv(x))
        return self.pad(F.pad(y, (-1, 2, 0, -1)))


SIZE = (4, 11, 11)


def kinds(g):
    return [type(g.op(n)).__name__ for n in g.nodes()]


def check(g, module):
    a = analyze(g)
    assert a.params == sum(p.numel() for p in module.parameters())
    x = np.random.default_rng(0).standard_normal((2, *SIZE)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    both_backends(g, x, ref)
    # the shape by hand: 11 -> pad (1 top/left) 12 -> pool 3/2 p1 6 -> crop 5
    # -> F.pad: W -1 left +2 right = 6, H bottom -1 = 4 -> ConstantPad2d: W +1, H +2
    assert tuple(g.shape(g.outputs[0])) == (6, 6, 7) == ref.shape[1:]


def test_fx_pad_modules_and_negative_f_pad():
    module = Net().eval()
    g = cnnir.from_torch(module, input=SIZE)
    assert kinds(g) == ["Input", "Conv2d", "Pad", "MaxPool2d", "Slice", "Slice", "Pad", "Pad"]
    assert g.op(g.nodes()[2]) == O.Pad((1, 1, 0, 0))
    assert g.op(g.nodes()[5]) == O.Slice(height=(0, 4), width=(1, 5))
    assert g.op(g.nodes()[7]) == O.Pad((2, 0, 0, 1), value=0.5)
    check(g, module)


def test_onnx_negative_pads_crop(tmp_path):
    module = Net().eval()
    path = str(tmp_path / "pad.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *SIZE),), path, dynamo=False,
                          opset_version=17)
    g = cnnir.load(path)
    assert "Slice" in kinds(g) and kinds(g).count("Pad") == 3
    check(g, module)


@pytest.mark.parametrize("pads, kept", [
    ([0, 0, -1, -2, 0, 0, 0, -1], (5, (1, 8), (2, 8))),  # crop only: one Slice
    ([0, -1, -1, 0, 0, 0, 2, 1], (4, (1, 8), None)),      # crop C and H, then pad
])
def test_onnx_pad_with_negative_amounts_is_a_crop_then_a_pad(pads, kept):
    model = make_model([helper.make_node("Pad", ["x", "p"], ["y"])],
                       {"p": np.array(pads, dtype=np.int64)}, [1, 5, 8, 9])
    x = np.random.default_rng(1).standard_normal((1, 5, 8, 9)).astype(np.float32)
    g = from_onnx_model(model)
    crop = next(g.op(n) for n in g.nodes() if isinstance(g.op(n), O.Slice))
    c, h, w = kept
    assert crop.height == h and crop.width == w
    assert crop.channels == (None if c == 5 else (1, 5))
    both_backends(g, x, run_ort(model, x))


def test_a_crop_to_nothing_and_a_negative_pad_module_are_refused():
    model = make_model([helper.make_node("Pad", ["x", "p"], ["y"])],
                       {"p": np.array([0, 0, -4, 0, 0, 0, -4, 0], dtype=np.int64)},
                       [1, 5, 8, 9])
    with pytest.raises(FrontendError, match="to nothing"):
        from_onnx_model(model)

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = nn.ZeroPad2d((-1, 0, 0, 0))

        def forward(self, x):
            return self.pad(x)

    with pytest.raises(CnnirError, match="a negative pad crops"):
        cnnir.from_torch(Bad(), input=SIZE)


# --------------------------------------------------------------------------- reflect


class Reflect(nn.Module):
    """``nn.ReflectionPad2d`` and ``F.pad(mode="reflect")`` (timm's BlurPool pads so)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.rp = nn.ReflectionPad2d((1, 2, 0, 1))
        self.blur = nn.Conv2d(4, 4, 3, stride=2, groups=4, bias=False)

    def forward(self, x):
        x = F.pad(self.rp(self.conv(x)), (1, 1, 1, 1), mode="reflect")
        return self.blur(x)


RSIZE = (3, 9, 10)


def check_reflect(g, module):
    pads = [g.op(n) for n in g.nodes() if isinstance(g.op(n), O.Pad)]
    assert pads == [O.Pad((0, 1, 1, 2), mode="reflect"), O.Pad(1, mode="reflect")]
    assert analyze(g).params == sum(p.numel() for p in module.parameters())
    # 9x10 -> reflect (t0, b1, l1, r2) 10x13 -> reflect 1: 12x15 -> 3x3/2: 5x7
    assert tuple(g.shape(g.outputs[0])) == (4, 5, 7)
    x = np.random.default_rng(2).standard_normal((2, *RSIZE)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    both_backends(g, x, ref)


def test_fx_reflect_padding():
    module = Reflect().eval()
    check_reflect(cnnir.from_torch(module, input=RSIZE), module)


def test_onnx_reflect_padding(tmp_path):
    module = Reflect().eval()
    path = str(tmp_path / "reflect.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *RSIZE),), path, dynamo=False,
                          opset_version=17)
    check_reflect(cnnir.load(path), module)


def test_reflect_pad_in_the_dsl_json_and_onnx_round_trip(tmp_path):
    from cnnir.backends.onnx_export import save, to_onnx
    from cnnir.dsl import model

    @model(input=(2, 5, 6))
    def net(x):
        return x.pad((1, 2), mode="reflect").conv(3, 3)

    g = cnnir.infer_shapes(net.build())
    assert g.op("pad1") == O.Pad((1, 2, 1, 2), mode="reflect")
    assert tuple(g.shape("pad1")) == (2, 7, 10) and "mode=reflect" in g.format()
    from cnnir.frontends.json_io import to_json

    path = tmp_path / "r.json"
    path.write_text(to_json(g))
    assert cnnir.load(str(path)).op("pad1") == g.op("pad1")
    onnx_path = str(tmp_path / "r.onnx")
    save(to_onnx(g, mode="random"), onnx_path)
    back = cnnir.load(onnx_path)
    assert [back.op(n) for n in back.nodes() if isinstance(back.op(n), O.Pad)] == [g.op("pad1")]


def test_reflect_pad_mistakes_are_named():
    with pytest.raises(CnnirError, match="smaller than its axis"):
        cnnir.infer_shapes(_one(O.Pad(5, mode="reflect"), (2, 5, 6)))
    with pytest.raises(CnnirError, match="no channel pads"):
        O.Pad(1, (1, 0), mode="reflect")
    with pytest.raises(CnnirError, match="'constant' or 'reflect'"):
        O.Pad(1, mode="edge")
    model = make_model([helper.make_node("Pad", ["x", "p"], ["y"], mode="edge")],
                       {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)}, [1, 5, 8, 9])
    with pytest.raises(FrontendError, match="edge padding has no IR op"):
        from_onnx_model(model)


def _one(op, shape):
    g = cnnir.Graph("one")
    x = g.add("input", O.Input(shape))
    g.outputs = [g.add("pad", op, [x])]
    return g
