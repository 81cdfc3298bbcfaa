"""Every optimisation pass, alone and chained, on every zoo model: the result passes
strict shape inference, keeps the model's output shapes and blocks, and leaves the
input graph untouched; fusion removes exactly the parameters BN folding predicts."""

from __future__ import annotations

import pytest

from cnnir import load, zoo
from cnnir.ops import BatchNorm2d, Conv2d, FusedConv2d
from cnnir.passes.count_params import CountParams
from cnnir.passes.infer_shapes import InferShapes
from cnnir.passes.manager import PassManager

PASSES = [
    "fuse-conv-bn-relu", "insert-bottleneck", "insert-bottleneck{ratio=2,kernels=3,5,7}",
    "fix-residual", "check-residual", "remove-dropout", "eliminate-dead-code", "fold-identity",
    "fix-residual,remove-dropout,fold-identity,eliminate-dead-code,insert-bottleneck,"
    "fuse-conv-bn-relu,check-residual",
]


def out_shapes(g):
    return [g.shape(o) for o in g.outputs]


@pytest.mark.parametrize("name", zoo.names())
def test_every_pass_leaves_a_graph_that_infers(name):
    g = load(name)
    text = g.format()
    for pipeline in PASSES:
        out = PassManager.from_string(pipeline).run(g)
        fresh = out.copy()  # no meta: infer from scratch, strictly
        InferShapes().run(fresh)
        assert out_shapes(fresh) == out_shapes(g), (name, pipeline)
        assert out.blocks == g.blocks
        assert g.format() == text, f"{pipeline} modified its input graph"


def expected_fusion(g):
    """(params, buffers) removed by folding every conv -> BN pair: gamma and beta (2C)
    and the running statistics (2C) go, a bias of C comes when the conv had none."""
    params = buffers = 0
    for n in g.nodes():
        op = g.op(n)
        if not isinstance(op, BatchNorm2d):
            continue
        (src,) = g.inputs(n)
        if not isinstance(g.op(src), Conv2d) or g.users(src) != [n] or src in g.outputs:
            continue
        c = g.shape(n)[0]
        params += 2 * c - (0 if g.op(src).bias else c)
        buffers += 2 * c
    return params, buffers


@pytest.mark.parametrize("name", zoo.names())
def test_fusion_removes_what_folding_predicts(name):
    g = load(name)
    before = CountParams()
    before.run(g)
    removed_params, removed_buffers = expected_fusion(g)
    out = PassManager.from_string("fuse-conv-bn-relu").run(g)
    after = CountParams()
    after.run(out)
    assert before.total_params - after.total_params == removed_params
    assert before.total_buffers - after.total_buffers == removed_buffers
    # what stays a BatchNorm is not right after a conv it could fold into
    for n in out.nodes():
        if isinstance(out.op(n), BatchNorm2d):
            (src,) = out.inputs(n)
            assert not isinstance(out.op(src), (Conv2d, FusedConv2d)) or len(out.users(src)) > 1


def test_fused_resnet50_and_vgg16_bn_have_no_batchnorm():
    for name in ("resnet50", "vgg16_bn"):
        out = PassManager.from_string("fuse-conv-bn-relu").run(load(name))
        kinds = {out.op(n).kind for n in out.nodes()}
        assert "batchnorm2d" not in kinds and "fused_conv2d" in kinds
