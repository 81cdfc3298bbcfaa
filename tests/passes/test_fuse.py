"""fuse-conv-bn-relu on tiny DSL graphs: the IR after the pass, the cases where it
must not fire (and what --explain says), and the folded weights computing the same
function (numpy and torch.nn.functional, independent of the PyTorch backend)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cnnir.errors import PassError
from cnnir.frontends.dsl import model
from cnnir.ops import BatchNorm2d, FusedConv2d
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import PassManager
from cnnir.weights import init_weights


def fuse(net, pipeline="fuse-conv-bn-relu"):
    """Run the pipeline on the model's graph; returns (graph after, notes of the last pass)."""
    pm = PassManager.from_string(pipeline)
    out = pm.run(net.build())
    return out, pm.records[-1].notes


def ir(text: str) -> str:
    return textwrap.dedent(text).strip()


# --------------------------------------------------------------------------- fires


@model(input=(3, 8, 8))
def chain(x):
    y = x.conv(4, 3, padding=1, bias=False).bn().relu()
    y = y.conv(6, 3, stride=2, padding=1, bias=False).bn(eps=1e-3)
    return y.conv(2, 1).relu6()


def test_conv_bn_act_conv_bn_and_conv_act_each_become_one_node():
    g, notes = fuse(chain)
    assert g.format(locs=False) == ir("""
        graph chain {
          %input = input() : 3x8x8
          %conv1 = fused_conv2d[k=3x3,s=1,p=1,+bn,+relu](%input) : 4x8x8
          %conv2 = fused_conv2d[k=3x3,s=2,p=1,+bn](%conv1) : 6x4x4
          %conv3 = fused_conv2d[k=1x1,s=1,p=0,+relu6](%conv2) : 2x4x4
          return %conv3
        }""")
    op = g.op("conv2")
    assert isinstance(op, FusedConv2d) and op.bn is not None and op.bn.eps == 1e-3
    assert op.act is None and op.conv.stride == (2, 2) and op.conv.bias is False
    assert notes[-1] == ("fused 3 conv(s): 2 batchnorm(s) and 2 activation(s) folded, "
                         "4 node(s) removed")


def test_fused_node_keeps_the_conv_name_loc_and_scope():
    from cnnir.frontends.dsl import block

    @block
    def unit(x):
        return x.conv(4, 3, padding=1, bias=False, name="c").bn().leaky_relu(0.2)

    @model(input=(3, 8, 8))
    def scoped(x):
        return unit(x, name="a")

    before = scoped.build()
    g, _ = fuse(scoped)
    assert g.nodes() == ["input", "unit_a/c"]
    assert g.loc("unit_a/c") == before.loc("unit_a/c")
    assert g.scope("unit_a/c") == ("unit_a",) and g.blocks == before.blocks
    assert g.format(locs=False).splitlines()[2].strip() == (
        "%unit_a/c = fused_conv2d[k=3x3,s=1,p=1,+bn,+leaky_relu](%input) : 4x8x8")
    assert g.op("unit_a/c").act.negative_slope == 0.2


def test_act_only_option_off_leaves_conv_relu_alone():
    g, _ = fuse(chain, "fuse-conv-bn-relu{act_only=false}")
    assert [g.op(n).kind for n in g.nodes()] == [
        "input", "fused_conv2d", "fused_conv2d", "conv2d", "relu6"]


# --------------------------------------------------------------------------- must not fire


@model(input=(3, 8, 8))
def conv_two_users(x):
    c = x.conv(4, 3, padding=1, bias=False)
    return c.bn().relu() + c


def test_conv_output_with_another_user_is_not_fused():
    g, notes = fuse(conv_two_users)
    assert g.format(locs=False) == ir("""
        graph conv_two_users {
          %input = input() : 3x8x8
          %conv1 = conv2d[k=3x3,s=1,p=1,nobias](%input) : 4x8x8
          %bn1 = batchnorm2d(%conv1) : 4x8x8
          %relu1 = relu(%bn1) : 4x8x8
          %add1 = add(%relu1, %conv1) : 4x8x8
          return %add1
        }""")
    assert "skip 'conv1': its output also feeds something else than 'bn1' " \
           "(it has 2 users (bn1, add1))" in notes
    assert notes[-1] == "nothing fused"


@model(input=(3, 8, 8))
def conv_is_output(x):
    c = x.conv(4, 3, padding=1)
    return c, c.bn()


def test_conv_that_is_a_graph_output_is_not_fused():
    g, notes = fuse(conv_is_output)
    assert [g.op(n).kind for n in g.nodes()] == ["input", "conv2d", "batchnorm2d"]
    assert "skip 'conv1': its output also feeds something else than 'bn1' " \
           "(it is a graph output)" in notes


@model(input=(3, 8, 8))
def bn_two_users(x):
    b = x.conv(4, 3, padding=1, bias=False).bn()
    return b.relu() + b


def test_bn_output_with_another_user_keeps_its_activation_apart():
    g, notes = fuse(bn_two_users)
    assert g.format(locs=False) == ir("""
        graph bn_two_users {
          %input = input() : 3x8x8
          %conv1 = fused_conv2d[k=3x3,s=1,p=1,+bn](%input) : 4x8x8
          %relu1 = relu(%conv1) : 4x8x8
          %add1 = add(%relu1, %conv1) : 4x8x8
          return %add1
        }""")
    assert any("fused with 'bn1' only; the activation stays apart" in n for n in notes)


@model(input=(3, 8, 8))
def bn_is_output(x):
    b = x.conv(4, 3, padding=1, bias=False).bn()
    return b, b.relu()


def test_bn_that_is_a_graph_output_keeps_its_activation_apart():
    g, _ = fuse(bn_is_output)
    assert g.outputs == ["conv1", "relu1"]
    assert [g.op(n).kind for n in g.nodes()] == ["input", "fused_conv2d", "relu"]


@model(input=(3, 8, 8))
def biasless_relu(x):
    return x.conv(4, 3, padding=1, bias=False).relu()


def test_biasless_conv_then_activation_is_not_fused():
    g, notes = fuse(biasless_relu)
    assert [g.op(n).kind for n in g.nodes()] == ["input", "conv2d", "relu"]
    assert notes[0] == ("skip 'conv1' -> 'relu1': the conv has no bias and no BN follows; "
                        "a fused conv always has a bias, fusing would add 4 parameters")


@model(input=(3, 8, 8))
def transposed(x):
    return x.conv_transpose(4, 2, stride=2).bn().relu()


def test_transposed_conv_is_not_fused():
    g, notes = fuse(transposed)
    assert [g.op(n).kind for n in g.nodes()] == [
        "input", "conv_transpose2d", "batchnorm2d", "relu"]
    assert notes[0] == "skip 'upconv1': a transposed conv is not fused (a fused conv holds a conv2d)"


@model(input=(3, 8, 8))
def pool_between(x):
    return x.conv(4, 3, padding=1).maxpool(2).bn().relu()


def test_conv_pool_bn_is_not_a_pattern():
    g, notes = fuse(pool_between)
    assert [g.op(n).kind for n in g.nodes()] == [
        "input", "conv2d", "maxpool2d", "batchnorm2d", "relu"]
    assert notes == ["nothing fused"]


def test_fusing_twice_changes_nothing():
    g, _ = fuse(chain)
    pm = PassManager.from_string("fuse-conv-bn-relu")
    again = pm.run(g)
    assert again.format() == g.format() and not pm.records[-1].changed


# --------------------------------------------------------------------------- weights


def conv1x1_numpy(x, w, b):
    """A 1x1 conv: x (C, H, W), w (O, C, 1, 1)."""
    out = np.einsum("chw,oc->ohw", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
    return out + (0 if b is None else b.astype(np.float64)[:, None, None])


@model(input=(5, 4, 4))
def pointwise(x):
    return x.conv(3, 1, bias=True).bn(eps=1e-3).relu()


def with_weights(net, seed):
    g = infer_shapes(net.build())
    g.weights = init_weights(g, seed=seed, mode="random")
    return g


def test_folded_weights_of_a_1x1_conv_compute_the_same_numpy():
    g = with_weights(pointwise, 3)
    before = g.weights
    out = PassManager.from_string("fuse-conv-bn-relu").run(g)
    assert set(out.weights) == {"conv1"}
    assert set(out.weights["conv1"]) == {"weight", "bias"}
    assert set(g.weights) == {"conv1", "bn1"}  # the input graph keeps its own

    x = np.random.default_rng(0).normal(size=(5, 4, 4))
    bn = before["bn1"]
    y = conv1x1_numpy(x, before["conv1"]["weight"], before["conv1"]["bias"])
    y = (y - bn["running_mean"][:, None, None]) / np.sqrt(bn["running_var"][:, None, None] + 1e-3)
    y = np.maximum(y * bn["weight"][:, None, None] + bn["bias"][:, None, None], 0)
    fw = out.weights["conv1"]
    y2 = np.maximum(conv1x1_numpy(x, fw["weight"], fw["bias"]), 0)
    assert np.abs(y - y2).max() <= 1e-5 * np.abs(y).max()


def test_folded_weights_of_a_strided_3x3_conv_match_torch_functional():
    import torch
    import torch.nn.functional as F

    g = with_weights(chain, 1)
    w = {k: {a: torch.from_numpy(v).double() for a, v in d.items()} for k, d in g.weights.items()}
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def bn(t, p, eps):
        return F.batch_norm(t, p["running_mean"], p["running_var"], p["weight"], p["bias"],
                            training=False, eps=eps)

    ref = F.relu(bn(F.conv2d(x, w["conv1"]["weight"], padding=1), w["bn1"], 1e-5))
    ref = bn(F.conv2d(ref, w["conv2"]["weight"], stride=2, padding=1), w["bn2"], 1e-3)
    ref = F.relu6(F.conv2d(ref, w["conv3"]["weight"], w["conv3"]["bias"]))

    pm = PassManager.from_string("fuse-conv-bn-relu")
    out = pm.run(g)
    assert set(out.weights) == {"conv1", "conv2", "conv3"}
    f = {k: {a: torch.from_numpy(v).double() for a, v in d.items()}
         for k, d in out.weights.items()}
    got = F.relu(F.conv2d(x, f["conv1"]["weight"], f["conv1"]["bias"], padding=1))
    got = F.conv2d(got, f["conv2"]["weight"], f["conv2"]["bias"], stride=2, padding=1)
    got = F.relu6(F.conv2d(got, f["conv3"]["weight"], f["conv3"]["bias"]))
    # the folded arrays are float32: agreement to float32 precision of the output's scale
    assert (got - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()
    # the input graph keeps its own weights
    assert set(g.weights) == {"conv1", "bn1", "conv2", "bn2", "conv3"}


def test_weights_for_the_conv_but_not_its_bn_is_an_error():
    g = with_weights(chain, 0)
    g.weights = {k: v for k, v in g.weights.items() if k != "bn2"}
    with pytest.raises(PassError, match="has weights for 'conv2' but none for 'bn2'"):
        PassManager.from_string("fuse-conv-bn-relu").run(g)


# --------------------------------------------------------------------------- PyTorch backend


@pytest.mark.parametrize("name", ["resnet50", "vgg16_bn"])
def test_fused_zoo_model_computes_the_same_in_eval_mode(name):
    """Random weights and BN statistics (identity BNs would hide a folding bug), a
    reduced 3x64x64 input, eval mode: the same output before and after fusion."""
    import torch
    from torch import nn

    from cnnir import load
    from cnnir.backends.pytorch import to_module

    g = load(name, input=(3, 64, 64))
    g.weights = init_weights(g, seed=0, mode="random")
    fused = PassManager.from_string("fuse-conv-bn-relu").run(g)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    before = to_module(g).eval()
    after = to_module(fused).eval()
    with torch.no_grad():
        ref = before(x)
        got = after(x)
    assert ref.shape == got.shape == (2, 1000)
    assert (got - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()
    assert any(isinstance(m, nn.BatchNorm2d) for m in before.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in after.modules())
    assert not any(isinstance(fused.op(n), BatchNorm2d) for n in fused.nodes())
