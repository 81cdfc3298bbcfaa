"""Every zoo model through the PyTorch backend: output shape, every layer's shape,
parameter and buffer counts equal the IR's (count-params).

The registry is iterated at collection time, so models added to the zoo are covered.
Each model runs at the smallest of a few reduced inputs that its layers allow
(GoogLeNet's fixed 7x7 average pool needs 223x223 or more), with weights left
filled by torch's fast generator (numpy's seeded initialisation is slower on the
VGGs' 140M weights, and uninitialised memory holds denormal floats, whose
arithmetic is some twenty times slower on x86): only shapes and counts are
checked here, numerics are in test_pytorch.py.  BatchNorm's ``num_batches_tracked`` counter is not model state and
is left out of the buffer count, as count-params leaves it out.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnir import load, zoo
from cnnir.backends.pytorch import layer_outputs, to_module
from cnnir.backends.pytorch_source import make_plan
from cnnir.errors import ShapeError
from cnnir.passes.count_params import CountParams

SIDES = (32, 64, 128, 188)  # 188: the smallest input of the unpadded U-Net


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors here are small: one intra-op thread is as fast, and on a machine shared
    with other jobs two OpenMP threads waiting on each other can be 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def fill(m: nn.Module) -> None:
    """Cheap, sane values: N(0, 0.02) weights and biases, identity BN statistics."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in m.state_dict().items():
            if key.endswith("running_var"):
                t.fill_(1.0)
            elif key.endswith("running_mean"):
                t.zero_()
            elif t.is_floating_point():
                t.normal_(0.0, 0.02, generator=gen)


def smallest(name):
    """The model at the smallest side in SIDES its layers allow, else its own input."""
    channels = zoo.get(name).input[0]
    for side in SIDES:
        try:
            return load(name, input=(channels, side, side))
        except ShapeError:
            continue
    return load(name)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_matches_the_ir(name):
    g = smallest(name)
    m = to_module(g, mode="empty").eval()
    fill(m)
    x = torch.randn(2, *g.shape("input"), generator=torch.Generator().manual_seed(0))

    outs = layer_outputs(m, x, clone=False)
    assert set(outs) == set(g.nodes())
    for n in g.nodes():
        assert tuple(outs[n].shape) == (2, *g.shape(n)), n
    with torch.no_grad():
        y = m(x)
    ys = y if isinstance(y, tuple) else (y,)
    assert [tuple(t.shape) for t in ys] == [(2, *g.shape(o)) for o in g.outputs]

    cp = CountParams()
    cp.run(g)
    assert sum(p.numel() for p in m.parameters()) == cp.total_params
    buffers = {k: b for k, b in m.named_buffers() if not k.endswith("num_batches_tracked")}
    assert sum(b.numel() for b in buffers.values()) == cp.total_buffers
    assert {k.rsplit(".", 1)[1] for k in buffers} <= {"running_mean", "running_var"}
    # and layer by layer: each submodule holds exactly its node's parameters
    for node, path in make_plan(g).paths.items():
        sub = m.get_submodule(path)
        assert sum(p.numel() for p in sub.parameters()) == g.meta(node)["params"]["params"], node
    assert sum(isinstance(s, nn.BatchNorm2d) for s in m.modules()) == sum(
        g.op(n).kind == "batchnorm2d" for n in g.nodes())
