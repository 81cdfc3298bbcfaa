"""Sum, Mean, Scale, Pad and DropPath through both frontends.

ONNX files in the style of the classic model zoo (opset 7-9, converted from Caffe2 /
Caffe: Sum of three branches, Mul / Add by per-channel constants after BN folding, a
scalar Add, channel and spatial Pads that fold into no conv), imported exactly and
computing what onnxruntime computes on the original (through cnnir's PyTorch backend
and its re-emitted ONNX); and torch.fx modules using ``torch.stack(...).mean(0)``,
``x * self.gamma``, ``x / 6``, ``F.pad`` and torchvision's ``stochastic_depth``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper
from onnx_cases import agree, make_model, run_ort
from torch import nn

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.dsl import add, mean, model
from cnnir.errors import CnnirError
from cnnir.frontends.onnx_import import from_onnx_model
from cnnir.weights import init_weights

RNG = np.random.default_rng(16)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def kinds(g):
    return [g.op(n).kind for n in g.nodes()]


def conv(name, x, out, weight):
    return helper.make_node("Conv", [x, weight], [out], name=name, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1])


# --------------------------------------------------------------------------- ONNX, opset 7-9


@pytest.mark.parametrize("opset", [7, 8, 9])
def test_caffe2_sum_of_three_branches(opset):
    model = make_model([
        conv("a", "x", "ya", "wa"), conv("b", "x", "yb", "wb"),
        helper.make_node("Sum", ["ya", "yb", "x"], ["y"], name="sum"),
    ], {"wa": w(3, 3, 3, 3), "wb": w(3, 3, 3, 3)}, [2, 3, 6, 6], opset=opset)
    g = agree(model, (3, 6, 6))
    assert kinds(g) == ["input", "conv2d", "conv2d", "sum"]
    cost = analyze(g).graph.meta("sum")["cost"]
    assert (cost["macs"], cost["other_ops"]) == (0, 2 * 3 * 6 * 6)  # n - 1 adds per output


@pytest.mark.parametrize("opset", [7, 9])
def test_caffe2_mul_add_by_per_channel_constants_after_a_conv_is_one_scale(opset):
    """Caffe2's SpatialBN folded to Mul + Add of [C, 1, 1] constants (axis-1 broadcast)."""
    model = make_model([
        conv("conv", "x", "c", "w"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "s"], ["m"], name="bn_scale"),
        helper.make_node("Add", ["m", "b"], ["y"], name="bn_shift"),
    ], {"w": w(4, 3, 3, 3), "s": w(4, 1, 1), "b": w(1, 4, 1, 1)}, [2, 3, 5, 5], opset=opset)
    g = agree(model, (3, 5, 5))
    assert kinds(g) == ["input", "conv2d", "relu", "scale"]
    assert g.op("bn_scale") == O.Scale(per_channel=True, bias=True)
    assert g.weights["bn_scale"]["weight"].shape == (4, 1, 1)
    a = analyze(g)
    assert a.params == 4 * 3 * 9 + 4 + 4  # conv weight + the two constants (no conv bias)
    assert a.graph.meta("bn_scale")["cost"]["other_ops"] == 2 * 4 * 5 * 5


def test_scalar_add_and_mul_in_both_operand_orders():
    model = make_model([
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Add", ["k", "r"], ["a"], name="plus"),
        helper.make_node("Mul", ["a", "h"], ["y"], name="half"),
    ], {"k": np.array(1.5, np.float32), "h": np.array([0.5], np.float32)}, [2, 3, 4, 4],
        opset=8)
    g = agree(model, (3, 4, 4))
    assert [g.op(n) for n in g.nodes()][2:] == [
        O.Scale(per_channel=False, scale=False, bias=True), O.Scale(per_channel=False)]
    assert g.weights["plus"]["bias"].shape == (1,)


def test_sub_and_div_by_constants():
    model = make_model([
        helper.make_node("Sub", ["x", "m"], ["a"], name="minus_mean"),
        helper.make_node("Div", ["a", "s"], ["b"], name="by_std"),
        helper.make_node("Sub", ["k", "b"], ["y"], name="flip"),
    ], {"m": w(3, 1, 1), "s": np.abs(w(1, 3, 1, 1)) + 0.5, "k": np.array(2.0, np.float32)},
        [2, 3, 4, 4], opset=9)
    g = agree(model, (3, 4, 4))
    assert g.op("by_std") == O.Scale(divide=True)
    # c - x with c an initializer: the -1 is no parameter (a fixed scale), c is one
    assert g.op("flip/neg") == O.Scale(per_channel=False, fixed=True)
    assert g.op("flip/scale") == O.Scale(per_channel=False, scale=False, bias=True)
    assert analyze(g).params == 3 + 3 + 1


@pytest.mark.parametrize("node, inits, message", [
    (helper.make_node("Mul", ["x", "k"], ["y"], name="rowwise"), {"k": w(4, 1)},
     "Mul node 'rowwise': Mul of a constant ('k', shape [4, 1])"),
    (helper.make_node("Div", ["k", "x"], ["y"], name="inverse"), {"k": w(3, 1, 1)},
     "Div node 'inverse': divides the constant 'k' by a feature map"),
    (helper.make_node("Mean", ["x", "k"], ["y"], name="m"), {"k": w(3, 1, 1)},
     "Mean node 'm': input 1 ('k') is a constant"),
])
def test_constants_that_are_no_scale_are_refused_by_name(node, inits, message):
    with pytest.raises(CnnirError) as info:
        from_onnx_model(make_model([node], inits, [1, 3, 4, 4]))
    assert message in str(info.value)


@pytest.mark.parametrize("opset", [7, 13])
def test_mean_and_single_input_sum_mean(opset):
    model = make_model([
        conv("a", "x", "ya", "wa"),
        helper.make_node("Mean", ["ya", "x"], ["m"], name="mean"),
        helper.make_node("Sum", ["m"], ["s"], name="one_sum"),
        helper.make_node("Mean", ["s"], ["y"], name="one_mean"),
    ], {"wa": w(3, 3, 3, 3)}, [2, 3, 5, 5], opset=opset)
    g = agree(model, (3, 5, 5))
    assert kinds(g) == ["input", "conv2d", "mean", "identity", "identity"]


def test_pad_on_channels_and_before_a_max_pool_is_a_pad_layer():
    """Opset 7 pads as an attribute: on channels (ResNet option A) and spatially before a
    MaxPool, where no conv can take it; a zero H/W Pad before a Conv still folds."""
    model = make_model([
        helper.make_node("Pad", ["x"], ["p"], name="chan", pads=[0, 2, 0, 0, 0, 2, 0, 0]),
        helper.make_node("Pad", ["p"], ["q"], name="spatial", pads=[0, 0, 1, 0, 0, 0, 0, 1],
                         value=-1.0),
        helper.make_node("MaxPool", ["q"], ["mp"], name="pool", kernel_shape=[2, 2]),
        helper.make_node("Pad", ["mp"], ["z"], name="zero", pads=[0, 0, 1, 1, 0, 0, 1, 1]),
        helper.make_node("Conv", ["z", "w"], ["y"], name="conv", kernel_shape=[3, 3]),
    ], {"w": w(2, 7, 3, 3)}, [2, 3, 5, 5], opset=7)
    g = agree(model, (3, 5, 5))
    assert kinds(g) == ["input", "pad", "pad", "maxpool2d", "conv2d"]
    assert g.op("chan") == O.Pad(0, (2, 2)) and g.shape("chan") == (7, 5, 5)
    assert g.op("spatial") == O.Pad((1, 0, 0, 1), (0, 0), -1.0)
    assert g.op("conv").padding == (1, 1, 1, 1)
    rf = analyze(g).graph.meta("spatial")["rf"]
    assert str(rf) == "1/1/1x0"  # one unit per unit, 1 padded row above, no column left


# --------------------------------------------------------------------------- torch.fx


class LayerScale(nn.Module):
    """ConvNeXt / CaiT-style learned layer scale, arithmetic by constants, stack-mean."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.register_buffer("shift", torch.randn(1, 8, 1, 1))

    def forward(self, x):
        y = self.conv(x)
        a = y * self.gamma
        b = self.shift + y / 6
        c = 1.0 - (y * 0.5 + 1.0)
        return torch.stack([a, b, c]).mean(0) + torch.stack([a, c]).sum(0)


class OptionA(nn.Module):
    """ResNet-CIFAR's option-A shortcut: subsample (a 1x1 stride-2 pool) and F.pad channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)

    def forward(self, x):
        short = F.pad(F.max_pool2d(x, 1, 2), (0, 0, 0, 0, 2, 2))
        return F.pad(torch.relu(self.conv(x) + short), (1, 0, 0, 1), value=0.5)


def same(module, shape):
    g = cnnir.from_torch(module, input=shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = module.eval()(x).numpy()
    with torch.no_grad():
        out = to_module(g, weights=g.weights).eval()(x).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_ort(to_onnx(g), x.numpy()), ref, rtol=1e-5, atol=1e-5)
    return g


def test_fx_layer_scale_constants_and_stack_mean():
    m = LayerScale()
    g = same(m, (3, 6, 6))
    ops = [g.op(n) for n in g.nodes()]
    # y * gamma, y / 6, shift + ., y * 0.5, . + 1.0, 1.0 - . (= -1 * . + 1)
    assert sum(isinstance(o, O.Scale) for o in ops) == 6
    assert [o.kind for o in ops if isinstance(o, (O.Mean, O.Sum, O.Add))] == ["mean", "sum", "add"]
    a = analyze(g)
    # the module's parameters exactly; the shift buffer (8) and the numbers of the code
    # 1/6, 0.5, 1.0 and (-1, 1.0) are fixed scales: buffers, not parameters
    assert a.params == sum(p.numel() for p in m.parameters())
    assert a.buffers == 8 + 1 + 1 + 1 + 2
    scale = next(n for n in g.nodes() if g.op(n) == O.Scale())
    np.testing.assert_array_equal(g.weights[scale]["weight"], m.gamma.detach().numpy())


def test_fx_channel_pad_of_option_a():
    g = same(OptionA(), (4, 8, 8))
    pads = [n for n in g.nodes() if isinstance(g.op(n), O.Pad)]
    assert [g.op(n) for n in pads] == [O.Pad(0, (2, 2)), O.Pad((0, 1, 1, 0), (0, 0), 0.5)]
    assert [g.shape(n) for n in pads] == [(8, 4, 4), (8, 5, 5)]


@pytest.mark.parametrize("const, message", [
    (torch.ones(8), "of shape [8]; cnnir maps a constant that varies along the channel axis"),
    (torch.ones(1, 6, 1), "of shape [1, 6, 1]"),
])
def test_fx_a_constant_varying_along_w_or_h_is_refused(const, message):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)
            self.register_buffer("k", const)

        def forward(self, x):
            return self.conv(x) * self.k

    with pytest.raises(CnnirError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cnnir.from_torch(Bad(), input=(3, 6, 8))


def _stochastic_depth(x, p, mode, training=True):
    """Stands for torchvision.ops.stochastic_depth (an fx leaf there; CI has no torchvision)."""
    if not training or p == 0.0:
        return x
    raise AssertionError("training mode")


_stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
_stochastic_depth.__name__ = "stochastic_depth"
torch.fx.wrap("_stochastic_depth")


class MBConvTail(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.training_flag = False

    def forward(self, x):
        return x + _stochastic_depth(self.conv(x), 0.2, "row", False)


def test_fx_torchvision_stochastic_depth_is_drop_path():
    g = same(MBConvTail(), (4, 5, 5))
    assert [g.op(n) for n in g.nodes() if isinstance(g.op(n), O.DropPath)] == [O.DropPath(0.2)]


# --------------------------------------------------------------------------- round trip


@model(input=(4, 6, 6))
def every_new_op(x):
    a = x.conv(4, 3, padding=1)
    s = add(a, x.scale(bias=True), x.global_avgpool())
    m = mean(s, a.scale(per_channel=False), x).drop_path(0.1)
    y = m.pad((1, 0, 0, 1), channels=(1, 1), value=0.25).pad(0, channels=(0, 2))
    return y.conv(3, 1).flatten().scale(bias=True)


def test_onnx_round_trip_keeps_every_layer_and_number():
    g = cnnir.infer_shapes(every_new_op.build())
    weights = init_weights(g, seed=4, mode="random")
    model_ = to_onnx(g, weights=weights)
    h = from_onnx_model(model_)
    assert set(h.nodes()) == set(g.nodes()) - {"drop_path1"}  # exported as nothing
    for n in h.nodes():
        assert h.op(n) == g.op(n) and h.shape(n) == g.shape(n), n
    a, b = analyze(g), analyze(h)
    assert (a.params, a.macs, a.other_ops) == (b.params, b.macs, b.other_ops)
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)
    with torch.no_grad():
        ref = to_module(g, weights=weights).eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_ort(model_, x), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_ort(to_onnx(h), x), ref, rtol=1e-5, atol=1e-5)
