"""Slice (channel split, spatial crop) and ChannelShuffle through every frontend and backend.

* The ops' receptive-field rules: a channel slice leaves the RF as it is; a crop
  starting at ``h0`` shifts the effective padding by ``-h0 * stride``.
* ONNX import: Slice in its opset 7-9 attribute form and its 10+ input form (negative
  and INT_MAX ends, omitted axes), Split on channels into several outputs (``split``
  as attribute, as input, ``num_outputs``), the channel shuffle Reshape - Transpose -
  Reshape as exporters write it and as the Caffe2-converted model zoo writes it
  (explicit batch 1, opset 7); everything else refused by name.  Each imported model
  computes, in cnnir's PyTorch module and in cnnir's re-emitted ONNX, what
  onnxruntime computes on the original file.
* torch.fx import: ``x[:, a:b]``, ``x[:, :, t:b, l:r]``, ``x[..., t:b]``, split,
  chunk, narrow, ``nn.ChannelShuffle``, ``F.channel_shuffle`` and torchvision's
  ``channel_shuffle`` function; steps and batch-axis slicing refused.
* A module written like torchvision's ShuffleNet v2 ``InvertedResidual`` through
  torch.fx and through ``torch.onnx.export`` (both exporters): exact params and MACs,
  outputs equal to the module's.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper
from onnx_cases import both_backends, close, make_model, run_ort, run_torch

import cnnir
from cnnir import ops as O
from cnnir.dsl import concat, model
from cnnir.errors import CnnirError, DslError, FrontendError, ShapeError
from cnnir.frontends.onnx_import import from_onnx_model

INT_MAX = 2 ** 63 - 1


def kinds(g: cnnir.Graph) -> list[str]:
    return [g.op(n).kind for n in g.nodes()]


def agree(model_proto, x_shape=(2, 6, 8, 8), seed=0) -> cnnir.Graph:
    g = from_onnx_model(model_proto)
    x = np.random.default_rng(seed).standard_normal(x_shape).astype(np.float32)
    both_backends(g, x, run_ort(model_proto, x))
    return g


# --------------------------------------------------------------------------- op rules


def test_receptive_field_of_a_crop_shifts_the_padding_a_channel_slice_keeps_it():
    @model(input=(4, 20, 20))
    def net(x):
        x = x.conv(4, 3, stride=2, padding=1, name="conv")  # r 3, S 2, P 1
        c = x.slice(c=(0, 2), name="chan")
        k = x.slice(h=(2, 8), w=(1, 9), name="crop")
        return concat(c.slice(h=(2, 8), w=(1, 9)), k).conv(2, 3, name="after")

    a = cnnir.analyze(net.build())
    rf = a.graph.meta
    assert rf("chan")["rf"] == rf("conv")["rf"]
    crop = rf("crop")["rf"]
    # unit y of the crop is unit y + h0 of the conv: padding 1 - 2 * 2 = -3 (rows),
    # 1 - 1 * 2 = -1 (columns); size and stride unchanged
    assert (crop.size, crop.stride, crop.padding) == ((3, 3), (2, 2), (-3, -1))
    # an unpadded 3x3 conv after it: r 3 + 2 * 2 = 7, both paths crop alike: aligned
    after = rf("after")["rf"]
    assert (after.size, after.stride, after.padding, after.aligned) == (
        (7, 7), (2, 2), (-3, -1), True)
    # the slices cost nothing: the convs' MACs and bias adds alone
    assert a.macs == 10 * 10 * 4 * 4 * 9 + 4 * 6 * 2 * 6 * 9
    assert a.other_ops == 10 * 10 * 4 + 4 * 6 * 2


def test_dsl_split_and_crop_errors_name_the_layer():
    @model(input=(6, 8, 8))
    def bad_split(x):
        return x.split([2, 3])[0]

    with pytest.raises(DslError, match=r"split: sizes \[2, 3\] must be positive integers "
                                       r"summing to the 6 channels of 'input'"):
        bad_split.build()

    @model(input=(6, 8, 8))
    def bad_crop(x):
        return x.conv(6, 3).crop_to(x)

    with pytest.raises(ShapeError, match=r"crop_to: 'conv1' \(6x6\) is smaller than 'input'"):
        bad_crop.build()

    @model(input=(6, 8, 8))
    def parts(x):
        a, b, c = x.split(2, name="part")
        return concat(c, b, a).crop_to(x.maxpool(2))

    g = parts.build()
    assert [g.op(n).attrs() for n in ("part_1", "part_2", "part_3", "crop1")] == [
        "c=0:2", "c=2:4", "c=4:6", "h=2:6,w=2:6"]


# --------------------------------------------------------------------------- ONNX Slice


def _slice_model(opset, starts, ends, axes=None, steps=None, shape=(2, 6, 8, 8)):
    inits = {}
    if opset < 10:
        attrs = dict(starts=starts, ends=ends)
        if axes is not None:
            attrs["axes"] = axes
        node = helper.make_node("Slice", ["x"], ["y"], **attrs)
    else:
        names = ["x", "starts", "ends"]
        inits = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64)}
        for k, v in (("axes", axes), ("steps", steps)):
            if v is not None:
                inits[k] = np.array(v, np.int64)
                names.append(k)
            elif k == "axes" and steps is not None:
                names.append("")
        node = helper.make_node("Slice", names, ["y"])
    return make_model([node], inits, list(shape), opset=opset)


@pytest.mark.parametrize("opset", [7, 9, 10, 11, 13, 17])
@pytest.mark.parametrize("starts,ends,axes,want", [
    ([1], [4], [1], "c=1:4"),
    ([2, 1], [7, INT_MAX], [2, 3], "h=2:7,w=1:8"),
    ([-3], [INT_MAX], [-3], "c=3:6"),  # negative axis and start, INT_MAX end
    ([0, 1, 2], [-1, -2, 5], [1, 2, 3], "c=0:5,h=1:6,w=2:5"),
    ([0, 0, 2, 2], [INT_MAX, 6, -2, -2], None, "c=0:6,h=2:6,w=2:6"),  # axes omitted
])
def test_slice_in_every_opset_form(opset, starts, ends, axes, want):
    if opset < 10:  # attributes are int64 too, but exporters of old opsets wrote INT32 max
        ends = [min(e, 2 ** 31 - 1) for e in ends]
    g = agree(_slice_model(opset, starts, ends, axes))
    (node,) = [n for n in g.nodes() if g.op(n).kind == "slice"]
    # a whole channel range "c=0:6" is no slice of that axis
    assert g.op(node).attrs() == want.replace("c=0:6,", "")


def test_slice_with_unit_steps_input_and_a_whole_slice_is_an_identity():
    g = agree(_slice_model(13, [1], [5], [1], [1]))
    assert kinds(g) == ["input", "slice"]
    g = agree(_slice_model(13, [0, 0], [INT_MAX, INT_MAX], [0, 2]))
    assert kinds(g) == ["input", "identity"]


@pytest.mark.parametrize("starts,ends,axes,steps,message", [
    ([0], [6], [1], [2], "step 2 on axis 1; cnnir's slice takes a contiguous range"),
    ([1], [2], [0], None, r"slices the batch axis \[1, 2\)"),
    ([5], [2], [2], None, r"slices axis 2 to \[5, 2\): an empty tensor"),
])
def test_slice_refusals_name_the_node(starts, ends, axes, steps, message):
    with pytest.raises(FrontendError, match="Slice node 'y': " + message):
        from_onnx_model(_slice_model(13, starts, ends, axes, steps))


# --------------------------------------------------------------------------- ONNX Split


def _split_model(opset, sizes, outs=3, axis=1, num_outputs=None, used=None):
    names = [f"s{i}" for i in range(outs)]
    ins, inits, attrs = ["x"], {}, {"axis": axis}
    if sizes is not None and opset < 13:
        attrs["split"] = sizes
    elif sizes is not None:
        ins.append("sizes")
        inits["sizes"] = np.array(sizes, np.int64)
    if num_outputs is not None:
        attrs["num_outputs"] = num_outputs
    nodes = [helper.make_node("Split", ins, names, **attrs)]
    used = names if used is None else used
    nodes.append(helper.make_node("Concat", used[::-1], ["y"], axis=1) if len(used) > 1
                 else helper.make_node("Relu", used, ["y"]))
    return make_model(nodes, inits, [2, 7, 4, 4], opset=opset)


@pytest.mark.parametrize("opset,sizes,num_outputs,want", [
    (11, [1, 2, 4], None, ["c=0:1", "c=1:3", "c=3:7"]),
    (13, [3, 3, 1], None, ["c=0:3", "c=3:6", "c=6:7"]),
    (18, None, 3, ["c=0:3", "c=3:6", "c=6:7"]),  # uneven: ceil(7/3) each, last smaller
    (18, [2, 2, 3], None, ["c=0:2", "c=2:4", "c=4:7"]),
])
def test_split_on_channels_is_one_slice_per_output(opset, sizes, num_outputs, want):
    g = agree(_split_model(opset, sizes, num_outputs=num_outputs), (2, 7, 4, 4))
    assert [g.op(n).attrs() for n in g.nodes() if g.op(n).kind == "slice"] == want


def test_split_into_equal_parts_and_unused_outputs():
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1),
             helper.make_node("Add", ["a", "b"], ["y"])]
    g = agree(make_model(nodes, {}, [2, 6, 3, 3], opset=11), (2, 6, 3, 3))
    assert kinds(g) == ["input", "slice", "slice", "add"]
    g = agree(_split_model(13, [1, 2, 4], used=["s2"]), (2, 7, 4, 4))
    assert kinds(g) == ["input", "slice", "relu"]  # no layer for the unused parts


@pytest.mark.parametrize("opset,sizes,axis,message", [
    (13, [2, 2, 3], 2, "splits axis 2; cnnir splits channels"),
    (11, None, 1, "7 channels do not split into 3 equal parts"),
    (13, [2, 2, 2], 1, r"split sizes \[2, 2, 2\] for 3 outputs of 7 channels"),
])
def test_split_refusals(opset, sizes, axis, message):
    with pytest.raises(FrontendError, match="Split node 's0': " + message):
        from_onnx_model(_split_model(opset, sizes, axis=axis))


# --------------------------------------------------------------------------- ONNX shuffle


def _shuffle_model(grouped, back, perm=(0, 2, 1, 3, 4), opset=13, batch=2, channels=6):
    nodes = [helper.make_node("Reshape", ["x", "g"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=list(perm)),
             helper.make_node("Reshape", ["t", "b"], ["y"])]
    inits = {"g": np.array(grouped, np.int64), "b": np.array(back, np.int64)}
    return make_model(nodes, inits, [batch, channels, 4, 5], opset=opset)


@pytest.mark.parametrize("grouped,back,opset,batch,groups", [
    ([0, 2, 3, 4, 5], [0, 6, 4, 5], 13, 2, 2),     # as cnnir and torch.onnx write it
    ([0, 3, -1, 4, 5], [0, -1, 4, 5], 17, 2, 3),   # -1 for C/g and for C
    ([1, 3, 2, 4, 5], [1, -1, 4, 5], 7, 1, 3),     # Caffe2 model zoo: batch 1, opset 7
    ([1, 2, 3, 4, 5], [1, 6, 4, 5], 9, 1, 2),
])
def test_reshape_transpose_reshape_is_a_channel_shuffle(grouped, back, opset, batch, groups):
    g = agree(_shuffle_model(grouped, back, opset=opset, batch=batch), (batch, 6, 4, 5))
    assert kinds(g) == ["input", "channel_shuffle"]
    assert g.op(g.nodes()[1]) == O.ChannelShuffle(groups)


@pytest.mark.parametrize("grouped,back,perm,message", [
    # [N, card, radix, -1] and its Transpose start timm's rSoftMax: the Softmax is missing
    ([0, 2, 3, 20], [0, 6, 4, 5], (0, 2, 1, 3), r"Reshape node 'y': reads the transposed "
     r"rSoftMax view of 't'; cnnir maps it only when a Softmax over axis 1 follows"),
    ([0, 2, 3, 5, 4], [0, 6, 4, 5], (0, 2, 1, 3, 4), r"Reshape node 'r': reshapes N x 6x4x5 "
     r"to \[0, 2, 3, 5, 4\]; cnnir maps a 5-D Reshape only as channel shuffle's"),
    ([0, 2, 3, 4, 5], [0, 6, 4, 5], (0, 1, 2, 4, 3), r"Transpose node 't': Transpose "
     r"perm=\[0, 1, 2, 4, 3\]: cnnir maps Transpose only as the middle of a channel shuffle"),
    ([0, 2, 3, 4, 5], [0, 3, 8, 5], (0, 2, 1, 3, 4), r"Reshape node 'y': reshapes the "
     r"channel-shuffled 5-D tensor of 't' to \[0, 3, 8, 5\]"),
])
def test_other_reshapes_and_transposes_are_refused_by_name(grouped, back, perm, message):
    with pytest.raises(FrontendError, match=message):
        from_onnx_model(_shuffle_model(grouped, back, perm))


def test_a_5d_tensor_read_by_another_op_is_refused():
    nodes = [helper.make_node("Reshape", ["x", "g"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    m = make_model(nodes, {"g": np.array([0, 2, 3, 4, 5], np.int64)}, [2, 6, 4, 5])
    with pytest.raises(FrontendError, match=r"Relu node 'y': reads the 5-D output of Reshape "
                                            r"'r'; cnnir maps a 5-D Reshape only as the start"):
        from_onnx_model(m)


def test_slice_and_shuffle_round_trip_through_cnnirs_onnx_in_old_opset_form():
    """cnnir writes opset-17 Slice inputs; the same model written with opset-9 attributes
    imports to the same graph."""
    nodes = [helper.make_node("Slice", ["x"], ["s"], starts=[0, 1], ends=[4, 7], axes=[1, 3]),
             helper.make_node("Reshape", ["s", "g"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "b"], ["y"])]
    m = make_model(nodes, {"g": np.array([1, 2, 2, 8, 6], np.int64),
                           "b": np.array([1, -1, 8, 6], np.int64)}, [1, 6, 8, 8], opset=9)
    g = agree(m, (1, 6, 8, 8))
    assert [g.op(n).attrs() for n in g.nodes()[1:]] == ["c=0:4,w=1:7", "g=2"]
    again = from_onnx_model(cnnir.backends.onnx_export.to_onnx(g, weights=g.weights))
    assert [g.op(n) for n in g.nodes()] == [again.op(n) for n in again.nodes()]


# --------------------------------------------------------------------------- torch.fx


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle, as written there."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    x = x.view(batchsize, -1, height, width)
    return x


class InvertedResidual(nn.Module):
    """torchvision's ShuffleNet v2 unit, written as there."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if self.stride > 1:
            self.branch1 = nn.Sequential(
                self.depthwise_conv(inp, inp, kernel_size=3, stride=self.stride, padding=1),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if (self.stride > 1) else branch_features, branch_features,
                      kernel_size=1, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            self.depthwise_conv(branch_features, branch_features, kernel_size=3,
                                stride=self.stride, padding=1),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, stride=1, padding=0,
                      bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    @staticmethod
    def depthwise_conv(i, o, kernel_size, stride=1, padding=0, bias=False):
        return nn.Conv2d(i, o, kernel_size, stride, padding, bias=bias, groups=i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        out = channel_shuffle(out, 2)
        return out


class ShuffleStage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.units = nn.Sequential(InvertedResidual(24, 116, 2), InvertedResidual(116, 116, 1),
                                   InvertedResidual(116, 116, 1))

    def forward(self, x):
        return self.units(x)


def _randomise_bn(net: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
    return net.eval()


def _conv_macs(net: nn.Module, shape) -> int:
    """conv MACs of ``net`` by hooks: out elements x (in / groups) x kh x kw."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, *shape))
    for h in hs:
        h.remove()
    return total


def test_torchvision_style_inverted_residual_through_fx_is_exact():
    net = _randomise_bn(ShuffleStage())
    g = cnnir.from_torch(net, input=(24, 28, 28))
    assert kinds(g).count("channel_shuffle") == 3 and kinds(g).count("slice") == 4
    a = cnnir.analyze(g)
    assert a.params == sum(p.numel() for p in net.parameters())
    assert a.macs == _conv_macs(net, (24, 28, 28))
    x = torch.randn(2, 24, 28, 28)
    with torch.no_grad():
        assert torch.equal(torch.from_numpy(run_torch(g, x.numpy())), net(x))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torchvision_style_inverted_residual_through_torch_onnx_export(dynamo, tmp_path):
    net = _randomise_bn(ShuffleStage())
    x = torch.randn(2, 24, 28, 28)
    path = str(tmp_path / "unit.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"dynamic_shapes": {"x": {0: torch.export.Dim("N")}}} if dynamo else {
            "dynamic_axes": {"x": {0: "N"}}}
        torch.onnx.export(net, (x,), path, input_names=["x"], dynamo=dynamo, **kw)
    m = onnx.load(path)
    g = from_onnx_model(m, input=(24, 28, 28))
    assert kinds(g).count("channel_shuffle") == 3 and kinds(g).count("slice") == 4
    a = cnnir.analyze(g)
    assert a.macs == _conv_macs(net, (24, 28, 28))
    with torch.no_grad():
        ref = net(x).numpy()
    close(run_torch(g, x.numpy()), ref, "cnnir's module")
    both_backends(g, x.numpy(), ref)


class Slicing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3)
        self.shuffle = nn.ChannelShuffle(4)

    def forward(self, x):
        y = self.shuffle(self.conv(x))            # 8x10x10
        a = y[:, 2:6]                              # channels
        b = y[:, :, 1:-1, 2:8]                     # crop 8x8x6
        c = y[..., 1:9, 2:8]                       # crop with an ellipsis
        p, q = torch.split(b, [3, 5], dim=1)
        r, s = b.split(4, 1)
        u = torch.chunk(c, 3, dim=1)               # 3 + 3 + 2 channels
        v = torch.narrow(y, 2, 1, 8).narrow(3, 2, 6)
        w = F.channel_shuffle(torch.cat([p, q, r, s, u[0], u[1], u[2], v], 1), 2)
        return torch.cat([w, a.narrow(2, 1, 8)[..., 2:8]], dim=1)


def test_every_fx_slicing_and_shuffle_form_matches_the_module():
    net = Slicing().eval()
    g = cnnir.from_torch(net, input=(8, 12, 12))
    assert set(kinds(g)) == {"input", "conv2d", "channel_shuffle", "slice", "concat"}
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(torch.from_numpy(run_torch(g, x.numpy())), net(x))
    assert cnnir.analyze(g).macs == 10 * 10 * 8 * 8 * 9


class _Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("fn,message", [
    (lambda x: x[:, ::2], "step 2; cnnir's slice takes contiguous ranges"),
    (lambda x: x[1:], "slices the batch axis"),
    (lambda x: x[:, 0], "cnnir maps slices with ':' \\(start:stop\\) only"),
    (lambda x: torch.split(x, 2, dim=0)[0], "dim=0 \\(the batch\\); cnnir slices channels"),
    (lambda x: x.chunk(2, dim=2)[0], "dim=2 \\(height\\); cnnir slices channels"),
    (lambda x: torch.narrow(x, 0, 0, 1), "dim=0 \\(the batch\\)"),
    (lambda x: x.view(x.size(0), 2, 2, 16, 4), "cnnir maps a 5-D view only as channel"),
    (lambda x: x.view(-1, 2, 2, 4, 4).relu(), "reads the 5-D view"),
    (lambda x: x.transpose(2, 3), "transpose\\(2, 3\\) has no IR op"),
])
def test_fx_refusals_name_the_call(fn, message):
    with pytest.raises(CnnirError, match=message):
        cnnir.from_torch(_Fn(fn), input=(4, 4, 4))


def test_emitted_pytorch_shuffle_reads_back_through_fx():
    @model(input=(12, 5, 5))
    def net(x):
        return x.conv(12, 1).channel_shuffle(3).slice(c=(2, 9), w=(1, 4))

    g = net.build()
    module = cnnir.backends.pytorch.to_module(g, mode="random", seed=1).eval()
    back = cnnir.from_torch(module, input=(12, 5, 5))
    assert kinds(back) == kinds(g)
    assert [back.op(n) for n in back.nodes()[2:]] == [g.op(n) for n in g.nodes()[2:]]
