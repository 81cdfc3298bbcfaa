"""The PyTorch backend: every op against its definition, names, the source round trip,
torch.compile / jit / half / training, fused convs, weights in and out, the CLI."""

from __future__ import annotations

import ast
import copy
import linecache
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from fuzz.strategies import build as build_program  # tests/ is on sys.path (conftest.py)
from fuzz.strategies import valid_programs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy_refs import ref_channel_conv1d, ref_radix_softmax, ref_space_to_depth
from torch import nn

from cnnir import load
from cnnir import ops as O
from cnnir.backends.pytorch import (
    expected_state_dict,
    layer_outputs,
    state_dict_to_weights,
    to_module,
    weights_from_module,
)
from cnnir.backends.pytorch_source import module_path, sanitize, to_source
from cnnir.cli import main
from cnnir.dsl import add, block, concat, mean, model, scope
from cnnir.errors import BackendError, CnnirError
from cnnir.ir import Graph
from cnnir.passes.count_params import CountParams
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import run_pipeline


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors here are small: one intra-op thread is as fast, and on a machine shared
    with other jobs two OpenMP threads waiting on each other can be 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- models


@block
def se(x, c):
    s = x.global_avgpool().conv(max(1, c // 4), 1).relu().conv(c, 1).hardsigmoid()
    return x * s


@model(input=(3, 17, 19))
def allops(x):
    """Every op kind, asymmetric conv / max / avg padding with ceil_mode, both count modes."""
    x = x.conv(8, 4, padding="same", name="same4")
    x = x.bn().leaky_relu(0.2)
    x = x.maxpool(3, stride=2, padding=(0, 1, 1, 0), ceil_mode=True, name="mp_asym")
    x = x.avgpool(3, stride=2, padding=(1, 0, 0, 1), ceil_mode=True, count_include_pad=False,
                  name="ap_exclude")
    y = x.avgpool(2, stride=1, padding=(0, 0, 1, 1), name="ap_include")
    z = x.avgpool(3, stride=2, padding=(1, 1, 0, 0), ceil_mode=True, name="ap_include_ceil")
    x = x.lrn(3, alpha=2e-4, beta=0.7, k=1.5).relu6()
    x = x.conv(8, 3, padding=1, groups=2).silu()
    x = x.layernorm2d(eps=1e-6).gelu().conv(8, 1).gelu("tanh")
    x = x + y
    x = se(x, 8, name="se")
    x = x.conv(8, 3, stride=(1, 2), padding=(2, 1), dilation=2, bias=False).bn(eps=1e-3).relu()
    x = x.conv_transpose(6, 3, stride=2, padding=1, output_padding=1, dilation=1).hardswish()
    x = x.upsample(2, mode="bilinear").tanh().maxpool(2).sigmoid()
    x = x.conv(6, 1).tanh()
    x = x.upsample((1, 2)).adaptive_avgpool((3, 4))
    x = concat(x, x.identity()).dropout(0.3)
    a, b = x.split([4, 8])
    x = concat(b.channel_shuffle(4).slice(h=(1, 3), w=(1, 3)),
               a.slice(w=(1, 4)).crop_to(b.slice(h=(0, 2), w=(0, 2))))
    x = x.avgpool(2, stride=1, padding=1, count_include_pad=False, ceil_mode=True)
    x = x.maxpool(2, stride=1, padding=1, ceil_mode=True)
    x = x.flatten().linear(7, bias=False).softmax()
    return x, z.flatten()


@model(input=(4, 9, 7))
def newops(x):
    """Sum / mean of n maps (broadcasting), scalar and per-channel scales, channel and
    spatial pads with a value, drop-path, space-to-depth, channel conv, radix softmax."""
    a = x.conv(4, 3, padding=1)
    b = x.scale(bias=True)
    s = add(a, b, x.global_avgpool(), x)
    m = mean(s, a.scale(per_channel=False), b)
    y = m.pad((1, 0, 2, 1), channels=(2, 3), value=0.5).drop_path(0.25)
    z = y.pad(0, channels=(0, 1)).conv(4, 1)
    # timm's attention ops: space-to-depth, ECA's channel conv, radix softmax
    d = z.space_to_depth(2)
    gate = d.global_avgpool().channel_conv1d(3, bias=True).sigmoid()
    att = d.global_avgpool().radix_softmax(2, 2)
    z = (d * gate + d * att).conv(3, 1)
    return z.flatten().scale(bias=True)


@model(input=(3, 16, 16))
def small_resnet(x):
    """conv-bn-relu, a residual block with a projection, SE, dropout, a linear head."""
    x = x.conv(8, 3, padding=1, bias=False).bn().relu()
    y = x.conv(16, 3, stride=2, padding=1, bias=False).bn().relu()
    y = y.conv(16, 3, padding=1, bias=False).bn()
    x = (y + x.conv(16, 1, stride=2, bias=False).bn()).relu()
    x = se(x, 16)
    x = x.conv(16, 3, padding="same").relu()
    return x.global_avgpool().flatten().dropout(0.5).linear(5)


def graph_of(m, input=None):
    return infer_shapes(m.build(input))


def fused(graph):
    return run_pipeline(graph, "fuse-conv-bn-relu")


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- references


def window_out(n, k, s, pb, pe, ceil):
    """REFERENCE.md: floor((I + Pb + Pe - F) / S) + 1; ceil drops a window starting in the end pad."""
    padded = n + pb + pe
    if ceil:
        o = -(-(padded - k) // s) + 1
        if (o - 1) * s >= n + pb:
            o -= 1
        return o
    return (padded - k) // s + 1


def ref_pool(x, kind, k, s, pads, ceil, include):
    """Pooling from its definition: windows over [-pb, n + pe), clipped to the input for
    max and the sum; the average divides by the window's part inside the padded extent
    (count_include_pad) or inside the input."""
    t, left, b, r = pads
    n_, c_, h, w = x.shape
    oh, ow = window_out(h, k[0], s[0], t, b, ceil), window_out(w, k[1], s[1], left, r, ceil)
    y = np.empty((n_, c_, oh, ow))
    for i in range(oh):
        hs, he = i * s[0] - t, i * s[0] - t + k[0]
        for j in range(ow):
            ws, we = j * s[1] - left, j * s[1] - left + k[1]
            win = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)]
            if kind == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                if include:
                    count = (min(he, h + b) - hs) * (min(we, w + r) - ws)
                else:
                    count = win.shape[2] * win.shape[3]
                y[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return y


def ref_conv(x, weight, bias, stride, pads, dilation, groups):
    """Convolution from its definition (explicit zero padding, a sum over taps)."""
    t, left, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)))
    n_, _, h, w = xp.shape
    cout, cg, kh, kw = weight.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og = cout // groups
    y = np.zeros((n_, cout, oh, ow))
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for a in range(kh):
            for c in range(kw):
                h0, w0 = a * dilation[0], c * dilation[1]
                patch = xs[:, :, h0:h0 + stride[0] * (oh - 1) + 1:stride[0],
                           w0:w0 + stride[1] * (ow - 1) + 1:stride[1]]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch,
                                                       weight[g * og:(g + 1) * og, :, a, c])
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTS = {
    O.ReLU: lambda x, op: np.maximum(x, 0),
    O.LeakyReLU: lambda x, op: np.where(x > 0, x, op.negative_slope * x),
    O.ReLU6: lambda x, op: np.clip(x, 0, 6),
    O.Sigmoid: lambda x, op: sigmoid(x),
    O.HardSigmoid: lambda x, op: np.clip(x / 6 + 0.5, 0, 1),
    O.Tanh: lambda x, op: np.tanh(x),
    O.HardSwish: lambda x, op: x * np.clip(x + 3, 0, 6) / 6,
    O.SiLU: lambda x, op: x * sigmoid(x),
    O.GELU: lambda x, op: (0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
                           if op.approximate == "none" else 0.5 * x * (1 + np.tanh(
                               math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
}


def ref_adaptive(x, out):
    """PyTorch's adaptive bins: [floor(i*H/o), ceil((i+1)*H/o))."""
    n_, c_, h, w = x.shape
    y = np.empty((n_, c_, *out))
    for i in range(out[0]):
        h0, h1 = (i * h) // out[0], -(-((i + 1) * h) // out[0])
        for j in range(out[1]):
            w0, w1 = (j * w) // out[1], -(-((j + 1) * w) // out[1])
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def expected(graph, n, ins, weights):
    """The output of node ``n`` from its definition, given its inputs (float64 numpy)."""
    op = graph.op(n)
    w = weights.get(n, {})
    x = ins[0] if ins else None
    if isinstance(op, O.Conv2d):
        return ref_conv(x, w["weight"], w.get("bias"), op.stride, op.padding, op.dilation,
                        op.groups)
    if isinstance(op, O.FusedConv2d):
        c = op.conv
        y = ref_conv(x, w["weight"], w["bias"], c.stride, c.padding, c.dilation, c.groups)
        return y if op.act is None else ACTS[type(op.act)](y, op.act)
    if isinstance(op, O.ConvTranspose2d):
        return torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x), torch.from_numpy(w["weight"]).double(),
            torch.from_numpy(w["bias"]).double() if "bias" in w else None, op.stride,
            op.padding, op.output_padding, op.groups, op.dilation).numpy()
    if isinstance(op, O.BatchNorm2d):
        def v(k):
            return w[k].astype(np.float64).reshape(1, -1, 1, 1)
        return (x - v("running_mean")) / np.sqrt(v("running_var") + op.eps) * v("weight") + v(
            "bias")
    if isinstance(op, O.LayerNorm2d):  # over the channels of each pixel, biased variance
        mean = x.mean(axis=1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
        return (x - mean) / np.sqrt(var + op.eps) * w["weight"].reshape(1, -1, 1, 1) + \
            w["bias"].reshape(1, -1, 1, 1)
    if isinstance(op, O.LocalResponseNorm):
        # b_c = a_c / (k + alpha/n * sum over the n channels around c of a^2) ^ beta
        sq = np.pad(x ** 2, ((0, 0), (op.size // 2, (op.size - 1) // 2), (0, 0), (0, 0)))
        win = sum(sq[:, i:i + x.shape[1]] for i in range(op.size))
        return x / (op.k + op.alpha / op.size * win) ** op.beta
    if type(op) in ACTS:
        return ACTS[type(op)](x, op)
    if isinstance(op, O.Softmax):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if isinstance(op, (O.MaxPool2d, O.AvgPool2d)):
        kind = "max" if isinstance(op, O.MaxPool2d) else "avg"
        return ref_pool(x, kind, op.kernel, op.stride, op.padding, op.ceil_mode,
                        getattr(op, "count_include_pad", True))
    if isinstance(op, O.AdaptiveAvgPool2d):
        return ref_adaptive(x, op.output_size)
    if isinstance(op, O.GlobalAvgPool):
        return x.mean(axis=(2, 3), keepdims=True)
    if isinstance(op, O.Upsample):
        if op.mode == "nearest":
            return np.repeat(np.repeat(x, op.scale[0], axis=2), op.scale[1], axis=3)
        return torch.nn.functional.interpolate(
            torch.from_numpy(x), scale_factor=tuple(float(s) for s in op.scale),
            mode="bilinear", align_corners=op.align_corners).numpy()
    if isinstance(op, (O.Dropout, O.Identity)):
        return x
    if isinstance(op, O.Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(op, O.Linear):
        return x @ w["weight"].T.astype(np.float64) + (w["bias"] if "bias" in w else 0)
    if isinstance(op, O.Concat):
        return np.concatenate(ins, axis=1)
    if isinstance(op, O.Add):
        return ins[0] + ins[1]
    if isinstance(op, O.Mul):
        return ins[0] * ins[1]
    if isinstance(op, O.Sum):
        return sum(ins[1:], ins[0])
    if isinstance(op, O.Mean):
        return sum(ins[1:], ins[0]) / len(ins)
    if isinstance(op, O.DropPath):
        return x
    if isinstance(op, O.Scale):
        y = x
        if "weight" in w:
            y = y / w["weight"] if op.divide else y * w["weight"]
        return y + w["bias"] if "bias" in w else y
    if isinstance(op, O.Pad):
        t, left, b, r = op.padding
        return np.pad(x, ((0, 0), op.channels, (t, b), (left, r)), constant_values=op.value)
    if isinstance(op, O.Slice):
        (c0, c1), (h0, h1), (w0, w1) = [r or (0, d) for r, d in zip(op.ranges, x.shape[1:])]
        return x[:, c0:c1, h0:h1, w0:w1]
    if isinstance(op, O.ChannelShuffle):  # output channel i*g + j is input channel j*n + i
        n_ = x.shape[1] // op.groups
        return x[:, [j * n_ + i for i in range(n_) for j in range(op.groups)]]
    if isinstance(op, O.SpaceToDepth):
        return ref_space_to_depth(x, op.block)
    if isinstance(op, O.ChannelConv1d):
        return ref_channel_conv1d(x, op, w)
    if isinstance(op, O.RadixSoftmax):
        return ref_radix_softmax(x, op)
    raise AssertionError(f"no reference for {op.kind}")


# --------------------------------------------------------------------------- every op


def test_the_test_models_cover_every_op_kind():
    g = graph_of(allops)
    kinds = {g.op(n).kind for n in g.nodes()} | {fused(g).op(n).kind for n in fused(g).nodes()}
    kinds |= {graph_of(newops).op(n).kind for n in graph_of(newops).nodes()}
    assert kinds == set(O.OP_TYPES)


def test_new_ops_compute_their_definition_in_module_and_source():
    """Sum, mean, scale, pad, drop-path: each node's output against its numpy definition
    (float64), and the written source's class gives the same outputs from the same weights."""
    g = graph_of(newops)
    m = to_module(g, mode="random", seed=5).double().eval()
    weights = {n: {k: a.astype(np.float64) for k, a in d.items()}
               for n, d in weights_from_module(m).items()}
    assert set(weights) == {"scale1", "scale2", "scale3", "conv1", "conv2", "conv3", "cconv1"}
    assert weights["scale1"]["weight"].shape == (4, 1, 1)
    assert weights["scale2"]["weight"].shape == (1,)
    x = rand(2, 4, 9, 7, dtype=torch.float64)
    outs = {k: v.numpy() for k, v in layer_outputs(m, x).items()}
    for n in g.nodes():
        assert outs[n].shape[1:] == tuple(g.shape(n)), n
        if not isinstance(g.op(n), O.Input):
            want = expected(g, n, [outs[i] for i in g.inputs(n)], weights)
            np.testing.assert_allclose(outs[n], want, rtol=1e-9, atol=1e-11, err_msg=n)
    space: dict = {}
    exec(compile(to_source(g), "newops_gen.py", "exec"), space)
    gen = space["Newops"]().double().eval()
    gen.load_state_dict(m.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(gen(x).numpy(), m(x).numpy())


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_every_layer_computes_its_definition(fuse):
    """Each node's output, from the recorded outputs of its inputs, against a numpy (or,
    for bilinear resize and transposed conv, a plain functional) reference, in float64."""
    g = graph_of(allops)
    g.weights = weights_from_module(to_module(g, mode="random", seed=3))
    if fuse:
        g = fused(g)
        assert any(isinstance(g.op(n), O.FusedConv2d) for n in g.nodes())
    m = to_module(g).double().eval()
    weights = {n: {k: a.astype(np.float64) for k, a in d.items()}
               for n, d in weights_from_module(m).items()}
    outs = {k: v.numpy() for k, v in layer_outputs(m, rand(2, 3, 17, 19, dtype=torch.float64))
            .items()}
    for n in g.nodes():
        assert outs[n].shape[1:] == tuple(g.shape(n)), n
        if isinstance(g.op(n), O.Input):
            continue
        want = expected(g, n, [outs[i] for i in g.inputs(n)], weights)
        np.testing.assert_allclose(outs[n], want, rtol=1e-9, atol=1e-11, err_msg=n)


POOL = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@POOL
@given(h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), pads=st.tuples(*[st.integers(0, 2)] * 4),
       ceil=st.booleans(), include=st.booleans(), kind=st.sampled_from(["max", "avg"]))
def test_pooling_with_any_padding_matches_the_definition(h, w, kh, kw, sh, sw, pads, ceil,
                                                         include, kind):
    g = Graph("pool")
    g.add("input", O.Input((2, h, w)))
    try:
        op = (O.MaxPool2d((kh, kw), (sh, sw), pads, ceil) if kind == "max"
              else O.AvgPool2d((kh, kw), (sh, sw), pads, ceil, include))
        g.add("pool", op, ["input"])
        g.outputs = ["pool"]
        infer_shapes(g)
    except CnnirError:
        assume(False)
    x = rand(1, 2, h, w, dtype=torch.float64)
    y = to_module(g).double()(x).numpy()
    want = ref_pool(x.numpy(), kind, (kh, kw), (sh, sw), pads, ceil, include)
    assert y.shape == want.shape == (1, *g.shape("pool"))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@POOL
@given(h=st.integers(1, 8), w=st.integers(1, 8), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 3)] * 4), groups=st.sampled_from([1, 2]),
       cin=st.integers(1, 2), cout=st.integers(1, 2), bias=st.booleans())
def test_conv_with_any_padding_matches_the_definition(h, w, kh, kw, sh, sw, dh, dw, pads,
                                                      groups, cin, cout, bias):
    g = Graph("conv")
    g.add("input", O.Input((cin * groups, h, w)))
    try:
        g.add("conv", O.Conv2d(cout * groups, (kh, kw), (sh, sw), pads, (dh, dw), groups, bias),
              ["input"])
        g.outputs = ["conv"]
        infer_shapes(g)
    except CnnirError:
        assume(False)
    m = to_module(g, mode="random").double()
    wts = weights_from_module(m)["conv"]
    x = rand(2, cin * groups, h, w, dtype=torch.float64)
    want = ref_conv(x.numpy(), wts["weight"].astype(np.float64), wts.get("bias"), (sh, sw), pads,
                    (dh, dw), groups)
    y = m(x).detach().numpy()
    assert y.shape == want.shape == (2, *g.shape("conv"))
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)  # weights were float32


def test_an_op_kind_without_a_rule_is_an_error_not_a_guess():
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Swirl(O.Op):
        kind: ClassVar[str] = "swirl"

        def infer(self, inputs):
            return inputs[0]

    g = Graph("odd")
    g.add("input", O.Input((3, 8, 8)))
    g.add("stage/swirl1", Swirl(), ["input"])
    g.outputs = ["stage/swirl1"]
    infer_shapes(g)
    with pytest.raises(BackendError, match="no rule for op kind 'swirl' .* 'stage/swirl1'"):
        to_module(g)
    with pytest.raises(BackendError, match="no rule for op kind 'swirl'"):
        to_source(g)


def test_every_op_kind_has_one_pytorch_rule_and_activations_an_inplace_form():
    from cnnir.backends.torch_rules import TORCH

    assert set(TORCH.keys()) == set(O.OP_TYPES.values())
    assert not set(TORCH.refused()) & set(O.OP_TYPES.values())  # (tests refuse their own)
    # a fused conv applies its activation in place: every fusable one has that form
    acts = [t for t in O.OP_TYPES.values() if O.FUSABLE_ACTIVATION in t.traits]
    assert acts and all(TORCH.lookup(t).inplace is not None for t in acts)
    assert TORCH.lookup(O.GELU).inplace is None and O.FUSABLE_ACTIVATION not in O.GELU.traits
    # producers an in-place user may overwrite (a fused conv only without its activation)
    assert [t.__name__ for t in O.OP_TYPES.values() if t is not O.FusedConv2d
            and TORCH.lookup(t).overwritable(t.__new__(t))] == [
        "Conv2d", "ConvTranspose2d", "ChannelConv1d", "BatchNorm2d", "Scale", "MaxPool2d",
        "AvgPool2d",
        "AdaptiveAvgPool2d", "GlobalAvgPool", "Upsample", "Linear", "Concat", "Add", "Sum",
        "Mean"]
    fused = TORCH.lookup(O.FusedConv2d).overwritable
    assert fused(O.FusedConv2d(O.Conv2d(8), O.BatchNorm2d()))
    assert not fused(O.FusedConv2d(O.Conv2d(8), O.BatchNorm2d(), O.ReLU()))


def test_a_refused_op_kind_says_why():
    from dataclasses import dataclass
    from typing import ClassVar

    from cnnir.backends.torch_rules import TORCH

    @dataclass(frozen=True)
    class Warp(O.Op):
        kind: ClassVar[str] = "warp"

        def infer(self, inputs):
            return inputs[0]

    TORCH.refuse(Warp, "warping is not emitted yet")
    g = Graph("odd")
    g.add("input", O.Input((3, 8, 8)))
    g.add("warp1", Warp(), ["input"])
    g.outputs = ["warp1"]
    infer_shapes(g)
    with pytest.raises(BackendError, match=r"does not emit op kind 'warp' \(node 'warp1'\): "
                                           r"warping is not emitted yet"):
        to_source(g)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(valid_programs(max_steps=6))
def test_random_networks_have_the_ir_shapes_and_params(program):
    """Differential: for random CNNs, every layer's PyTorch output shape is the IR's and
    sum(p.numel()) is count-params' total."""
    g = infer_shapes(build_program(program))
    m = to_module(g, mode="random").eval()
    outs = layer_outputs(m, rand(2, *g.shape("input")))
    for n in g.nodes():
        assert tuple(outs[n].shape) == (2, *g.shape(n)), n
    cp = CountParams()
    cp.run(g)
    assert sum(p.numel() for p in m.parameters()) == cp.total_params


# --------------------------------------------------------------------------- names


def test_state_dict_keys_read_like_the_model():
    g = load("googlenet")
    keys = list(to_module(g, device="meta").state_dict())
    assert keys[:2] == ["stem.conv1.weight", "stem.conv1.bias"]
    for key in ("inception_3a.b2_3x3.weight", "inception_5b.b4_proj.bias", "fc.weight"):
        assert key in keys
    assert list(expected_state_dict(g)) == keys
    r = to_module(load("resnet50", input=(3, 64, 64)), device="meta").state_dict()
    assert "layer3.bottleneck6.downsample_bn.running_var" not in r  # only block 1 projects
    assert r["layer3.bottleneck1.downsample_bn.running_var"].shape == (1024,)
    assert r["layer4.bottleneck3.conv2.weight"].shape == (512, 512, 3, 3)


@model(input=(3, 8, 8))
def odd_names(x):
    x = x.conv(4, 1, name="3a").conv(4, 1, name="a-b").conv(4, 1, name="a.b")
    x = x.conv(4, 1, name="class").conv(4, 1, name="forward").conv(4, 1, name="training")
    with scope("stem"):
        x = x.conv(4, 1, name="conv")
    x = x.conv(4, 1, name="stem")
    with scope("graph"):
        x = x.bn(name="code")
    with scope("layer1"), scope("0"):  # sequence indices, as torchvision's keys have them
        x = x.conv(4, 1, name="conv1").conv(4, 1, name="1")
    # names that the generated forward must not shadow (F.pad(..., value=float("-inf")))
    y = x.conv(4, 1, name="F").conv(4, 1, name="torch")
    return y + x.maxpool(2, stride=1, padding=(0, 0, 1, 1), name="float")


def test_names_are_sanitised_by_the_documented_rule():
    g = graph_of(odd_names)
    keys = [k for k in to_module(g).state_dict() if k.endswith("weight")]
    assert keys == ["_3a.weight", "a_b.weight", "a_b_2.weight", "class_.weight",
                    "forward_.weight", "training_.weight", "stem.conv.weight", "stem_2.weight",
                    "graph_.code_.weight", "layer1.0.conv1.weight", "layer1.0.1.weight",
                    "F.weight", "torch.weight"]
    assert sanitize("inception_3a") == "inception_3a"
    assert sanitize("x y") == "x_y"
    assert sanitize("0") == "0" and sanitize("0a") == "_0a"
    # the source uses the same names, and computes the same
    m = to_module(g, mode="random").eval()
    src = to_source(g)
    assert 'value=float("-inf")' in src and "F_ = self.F(" in src
    assert 'getattr(self.layer1, "0").add_module("1", nn.Conv2d(4, 4, kernel_size=1))' in src
    cls = exec_source(src, "odd_names")
    m2 = cls()
    m2.load_state_dict(m.state_dict())
    x = rand(2, 3, 8, 8)
    assert torch.equal(m2.eval()(x), m(x))


def test_module_paths_follow_scopes():
    g = load("resnet18", input=(3, 32, 32))
    from cnnir.backends.torch_plan import Names as _Names

    names = _Names()
    assert module_path(names, "layer2/basic1/downsample_conv") == "layer2.basic1.downsample_conv"
    m = to_module(g, device="meta")
    assert isinstance(m.get_submodule("layer2.basic1.downsample_conv"), nn.Conv2d)
    assert isinstance(m.get_submodule("layer2.basic1"), nn.Module)


# --------------------------------------------------------------------------- source


def exec_source(src, name):
    ns = {}
    exec(compile(src, f"{name}.py", "exec"), ns)
    classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, nn.Module)
               and v is not nn.Module]
    assert len(classes) == 1
    return classes[0]


@pytest.mark.parametrize("case", ["allops", "allops_fused", "resnet18", "small_resnet_fused",
                                  "lenet5"])
def test_source_round_trip_is_bit_identical(case):
    graphs = {
        "allops": lambda: graph_of(allops),
        "allops_fused": lambda: fused(graph_of(allops)),
        "resnet18": lambda: load("resnet18", input=(3, 64, 64)),
        "small_resnet_fused": lambda: fused(graph_of(small_resnet)),
        "lenet5": lambda: load("lenet5"),
    }
    g = graphs[case]()
    m = to_module(g, mode="random", seed=1).eval()
    cls = exec_source(to_source(g), case)
    m2 = cls()
    assert [(k, v.shape) for k, v in m2.state_dict().items()] == [
        (k, v.shape) for k, v in m.state_dict().items()]
    m2.load_state_dict(m.state_dict())
    m2.eval()
    x = rand(2, *g.shape(g.nodes()[0]))
    with torch.no_grad():
        a, b = m(x), m2(x)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    assert len(a) == len(b) == len(g.outputs)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_source_is_formatted_lint_clean_and_imports_torch(tmp_path):
    for g in (fused(graph_of(allops)), load("googlenet"), graph_of(odd_names)):
        src = to_source(g)
        path = tmp_path / f"{g.name}.py"
        path.write_text(src)
        fmt = subprocess.run([sys.executable, "-m", "ruff", "format", "--isolated", "--diff",
                              str(path)], capture_output=True, text=True)
        assert fmt.returncode == 0, fmt.stdout + fmt.stderr
        lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated",
                               "--select", "E,F,W,I,UP", "--ignore", "E501", str(path)],
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        tree = ast.parse(src)
        imported = set()
        for node in tree.body:  # the file's own imports: torch (and math)
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
        assert {i.split(".")[0] for i in imported} == {"torch", "math"}
        # numpy only where a seed draws cnnir's weights (tests/backends/test_seeded_weights.py)
        inner = [n for n in ast.walk(tree) if isinstance(n, ast.Import) and n not in tree.body]
        assert [[a.name for a in n.names] for n in inner] == [["numpy"]]
        assert sum(isinstance(n, ast.ClassDef) for n in tree.body) == 1


def test_source_comments_each_statement_with_its_dsl_line():
    g = load("googlenet")
    src = to_source(g)
    loc = g.loc("inception_4a/b3_5x5")
    text = linecache.getline(os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), loc.file), loc.line).strip()
    assert text.startswith("b3 = x.conv(c5r, 1")
    assert f"        # {loc.short}: {text}\n" in src
    assert "self.inception_4a.b3_5x5 = nn.Conv2d(16, 48, kernel_size=5, padding=2)" in src


def test_source_initialises_like_torchvision_from_the_seed():
    g = load("resnet18", input=(3, 32, 32))
    cls = exec_source(to_source(g, seed=7), "resnet18")
    a, b, c = cls(), cls(), cls(seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layer4.basic2.conv2.weight"], sc["layer4.basic2.conv2.weight"])
    w = sa["layer4.basic2.conv2.weight"]  # Kaiming normal, fan out = 512 * 3 * 3
    assert abs(w.std().item() / (2.0 / (512 * 9)) ** 0.5 - 1) < 0.02
    assert abs(w.mean().item()) < 1e-3
    assert torch.equal(sa["layer1.basic1.bn1.weight"], torch.ones(64))
    assert torch.equal(sa["layer1.basic1.bn1.running_var"], torch.ones(64))
    assert abs(sa["fc.weight"].std().item() / 0.01 - 1) < 0.02
    assert torch.equal(sa["fc.bias"], torch.zeros(1000))


# --------------------------------------------------------------------------- torch features


def test_torch_compile_matches_eager():
    g = fused(graph_of(small_resnet))
    m = to_module(g, mode="random").eval()
    x = rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = m(x)
        got = torch.compile(m)(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_jit_trace_and_script_match_eager():
    g = graph_of(allops)
    m = to_module(g, mode="random").eval()
    x = rand(2, 3, 17, 19)
    with torch.no_grad():
        ref = m(x)
        traced = torch.jit.trace(m, x)(x)
        scripted = torch.jit.script(m)(x)
    for got in (traced, scripted):
        for u, v in zip(got, ref):
            torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-7)


def test_half_double_and_device_moves():
    g = fused(graph_of(small_resnet))  # (PyTorch has no CPU half LRN kernel; this has no LRN)
    m = to_module(g, mode="random").eval()
    x = rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = m(x)
        half = copy.deepcopy(m).half()(x.half())
        assert half.dtype == torch.float16
        torch.testing.assert_close(half.float(), ref, rtol=2e-2, atol=2e-2)
        dbl = copy.deepcopy(m).to("cpu", torch.float64)(x.double())
        torch.testing.assert_close(dbl.float(), ref, rtol=1e-5, atol=1e-6)
    meta = to_module(g, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert meta(torch.empty(4, 3, 16, 16, device="meta")).shape == (4, 5)


def test_training_mode_batchnorm_dropout_and_gradients():
    g = graph_of(small_resnet)
    m = to_module(g, mode="random")
    assert m.training
    bn = m.get_submodule("bn1")
    before = bn.running_mean.clone()
    x = rand(4, 3, 16, 16)
    y1, y2 = m(x), m(x)
    assert not torch.equal(y1, y2)  # dropout is active
    assert not torch.equal(bn.running_mean, before)  # BN uses and updates batch stats
    assert bn.num_batches_tracked.item() == 2
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
    # the in-place activations and adds keep autograd exact: a finite-difference check
    # through the whole network in training mode (dropout off: p must be deterministic)
    g2 = fused(graph_of(small_resnet))
    for case in (g, g2):
        net = to_module(case, mode="random").double().train()
        net.get_submodule(module_of(case, O.Dropout)).p = 0.0
        xd = rand(2, 3, 16, 16, dtype=torch.float64).requires_grad_()
        assert torch.autograd.gradcheck(net, (xd,), eps=1e-6, atol=1e-5, fast_mode=True)


def module_of(g, kind):
    n = next(n for n in g.nodes() if isinstance(g.op(n), kind))
    from cnnir.backends.pytorch_source import make_plan

    return make_plan(g).paths[n]


def test_inplace_only_where_safe():
    g = graph_of(small_resnet)
    m = to_module(g)
    code = m.code
    # conv -> bn -> relu: in place, as torchvision does; the residual add too
    assert m.get_submodule("relu1").inplace
    assert ".add_(" in code
    # the SE block's relu follows a conv (safe); the input of the SE mul is read twice
    fused_code = to_module(fused(g)).code
    assert "relu(" in fused_code and "inplace = True" in fused_code
    # a relu whose input is also a graph output must not overwrite it
    g3 = Graph("t")
    g3.add("input", O.Input((2, 4, 4)))
    g3.add("conv", O.Conv2d(2, 1), ["input"])
    g3.add("relu", O.ReLU(), ["conv"])
    g3.outputs = ["conv", "relu"]
    infer_shapes(g3)
    m3 = to_module(g3, mode="random")
    assert not m3.get_submodule("relu").inplace
    a, b = m3(rand(1, 2, 4, 4))
    assert (a < 0).any() and torch.equal(b, a.clamp(min=0))


# --------------------------------------------------------------------------- weights


def test_weights_round_trip_through_the_ir():
    g = graph_of(small_resnet)
    m = to_module(g, mode="random", seed=5)
    m(rand(4, 3, 16, 16))  # a training step changes the running statistics
    w = weights_from_module(m)
    assert set(w["bn1"]) == {"weight", "bias", "running_mean", "running_var"}
    assert all(a.dtype == np.float32 for d in w.values() for a in d.values())
    m2 = to_module(g, weights=w)
    s1, s2 = m.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if not k.endswith("num_batches_tracked"))
    assert s2["bn1.num_batches_tracked"].item() == 0
    # mode="empty" loads the arrays it is given too (and only those)
    s4 = to_module(g, weights={"bn1": w["bn1"]}, mode="empty").state_dict()
    assert all(torch.equal(s4[f"bn1.{k}"], s1[f"bn1.{k}"]) for k in w["bn1"])
    with pytest.raises(BackendError, match="'weight' has shape"):
        to_module(g, weights={"bn1": {**w["bn1"], "weight": np.zeros(3, np.float32)}},
                  mode="empty")
    # from the source's class, with the graph to name the layers
    cls = exec_source(to_source(g), "small_resnet")
    src_mod = cls()
    src_mod.load_state_dict(s1)
    w3 = weights_from_module(src_mod, g)
    assert w3.keys() == w.keys()
    assert all(np.array_equal(w3[n][k], w[n][k]) for n in w for k in w[n])
    assert weights_from_module(m).keys() == state_dict_to_weights(g, s1).keys()


def test_fused_module_computes_the_unfused_one_with_trained_statistics():
    """Unfused module with random BN statistics (moved further by training steps), its
    weights exported into the graph, fuse-conv-bn-relu, the fused module: same outputs."""
    g = graph_of(small_resnet)
    m = to_module(g, mode="random", seed=2)
    for i in range(3):
        m(rand(8, 3, 16, 16, seed=10 + i))
    m.eval()
    g.weights = weights_from_module(m)
    f = fused(g)
    assert sum(isinstance(f.op(n), O.FusedConv2d) for n in f.nodes()) == 7
    mf = to_module(f).eval()
    assert not any(isinstance(x, nn.BatchNorm2d) for x in mf.modules())
    x = rand(4, 3, 16, 16, seed=99)
    with torch.no_grad():
        ref, got = m(x), mf(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_state_dict_mismatches_are_listed():
    g = graph_of(small_resnet)
    state = to_module(g).state_dict()
    state.pop("fc1.bias")
    state["bn1.weight"] = torch.zeros(3)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(BackendError) as err:
        state_dict_to_weights(g, state, "w.pt")
    msg = str(err.value)
    assert "w.pt does not fit model 'small_resnet'" in msg
    assert "missing keys: fc1.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "bn1.weight is 3, layer 'bn1' needs 8" in msg


def test_max_params_guard():
    with pytest.raises(BackendError, match="above --max-params 1,000,000"):
        to_module(load("vgg16", input=(3, 32, 32)), max_params=1e6)


# --------------------------------------------------------------------------- CLI


def test_cli_compile_to_torch(tmp_path, capsys):
    out = tmp_path / "lenet.py"
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out), "--seed", "3"]) == 0
    src = out.read_text()
    assert "def __init__(self, seed: int | None = 3) -> None:" in src
    cls = exec_source(src, "lenet")
    g = load("lenet5")
    ref = to_module(g, mode="random").eval()
    mod = cls()
    mod.load_state_dict(ref.state_dict())
    x = rand(2, 1, 32, 32)
    assert torch.equal(mod.eval()(x), ref(x))


def test_cli_weights_file_is_checked(tmp_path, capsys):
    g = load("lenet5")
    good = tmp_path / "good.pt"
    torch.save(to_module(g).state_dict(), good)
    out = tmp_path / "a.py"
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out), "--weights",
                 str(good)]) == 0
    assert f'torch.load("{good}", weights_only=True)' in out.read_text()

    bad = tmp_path / "bad.pt"
    state = to_module(g).state_dict()
    state["f5.weight"] = torch.zeros(120, 399)
    torch.save(state, bad)
    out2 = tmp_path / "b.py"
    capsys.readouterr()
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2), "--weights",
                 str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {bad} does not fit model 'lenet5': wrong shapes: "
                           f"f5.weight is 120x399, layer 'f5' needs 120x400")
    assert not out2.exists()

    junk = tmp_path / "junk.pt"
    torch.save([1, 2, 3], junk)
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2), "--weights",
                 str(junk)]) == 2
    assert "is not a state_dict" in capsys.readouterr().err
    notpt = tmp_path / "text.pt"
    notpt.write_text("hello")
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2), "--weights",
                 str(notpt)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2), "--weights",
                 str(tmp_path / "none.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2),
                 "--max-params", "1000"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2), "--batch", "4"]) == 2
    assert "--batch applies to --to onnx only" in capsys.readouterr().err
    assert main(["compile", "lenet5", "--to", "torch", "-o", str(out2),
                 "--external-data"]) == 2
    assert "--external-data applies to --to onnx only" in capsys.readouterr().err
    assert not out2.exists()


def test_cli_error_has_no_traceback(tmp_path, cli):
    bad = tmp_path / "bad.pt"
    torch.save({"c1.weight": torch.zeros(1)}, bad)
    r = cli("compile", "lenet5", "--to", "torch", "-o", str(tmp_path / "x.py"), "--weights",
            str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {bad} does not fit model 'lenet5': missing keys: ")
    assert not (tmp_path / "x.py").exists()


# --------------------------------------------------------------------------- ported models


class _Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class _TinyResNet(nn.Module):
    """torchvision's layout: Sequential stages, so keys such as layer2.0.downsample.1."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(_Block(8, 8, 1), _Block(8, 8, 1))
        self.layer2 = nn.Sequential(_Block(8, 16, 2), _Block(16, 16, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_a_ported_pytorch_model_keeps_its_state_dict_keys():
    """PyTorch module -> cnnir (torch frontend) -> PyTorch module and source: the
    original state_dict loads as it is and the outputs are bit-identical."""
    from cnnir.frontends.torch_import import from_torch

    ref = _TinyResNet()
    ref(rand(4, 3, 16, 16))  # training steps: non-trivial running statistics
    ref.eval()
    g = from_torch(ref, input=(3, 16, 16))
    assert "layer2.0.downsample.1.running_var" in to_module(g, device="meta").state_dict()
    x = rand(2, 3, 16, 16, seed=4)
    with torch.no_grad():
        want = ref(x)
        for m in (to_module(g, mode="empty"), exec_source(to_source(g), "tiny")()):
            # the same keys (in execution order, where PyTorch lists them by creation)
            assert sorted(m.state_dict()) == sorted(ref.state_dict())
            m.load_state_dict(ref.state_dict())
            assert torch.equal(m.eval()(x), want)


def test_source_comments_say_repeat_only_for_groups_of_two_or_more():
    src = to_source(load("resnet18"))  # layerN/basic2 come from repeat(basic, 1, ...)
    assert "        # layer1/basic2 (basic block, resnet.py:49)\n" in src
    assert " of 1," not in src
    src = to_source(load("resnet50"))  # layer1/bottleneck2-3: repeat(bottleneck, 2, ...)
    assert "        # layer1/bottleneck3 (bottleneck block, repeat 2 of 2, resnet.py:49)\n" in src
