"""remove-dropout, eliminate-dead-code and fold-identity on tiny DSL graphs: the IR
after each pass, and the look-alikes each must leave alone."""

from __future__ import annotations

import textwrap

import numpy as np

from cnnir.frontends.dsl import model
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import PassManager
from cnnir.weights import init_weights


def run(net, pipeline):
    pm = PassManager.from_string(pipeline)
    g = pm.run(net.build())
    return g, pm.records[-1]


def ir(text: str) -> str:
    return textwrap.dedent(text).strip()


@model(input=(3, 8, 8))
def messy(x):
    y = x.conv(4, 3, padding=1).dropout(0.2).identity()
    y.conv(8, 1).relu()  # nobody reads this branch
    y = y.maxpool(1, stride=1).adaptive_avgpool(8).upsample(1).global_avgpool().global_avgpool()
    return y.flatten().flatten().linear(5).dropout()


def test_remove_dropout():
    g, rec = run(messy, "remove-dropout")
    assert g.format(locs=False) == ir("""
        graph messy {
          %input = input() : 3x8x8
          %conv1 = conv2d[k=3x3,s=1,p=1](%input) : 4x8x8
          %identity1 = identity(%conv1) : 4x8x8
          %conv2 = conv2d[k=1x1,s=1,p=0](%identity1) : 8x8x8
          %relu1 = relu(%conv2) : 8x8x8
          %maxpool1 = maxpool2d[k=1x1,s=1](%identity1) : 4x8x8
          %adaptpool1 = adaptive_avgpool2d[out=8x8](%maxpool1) : 4x8x8
          %upsample1 = upsample[x1,nearest](%adaptpool1) : 4x8x8
          %gap1 = global_avgpool(%upsample1) : 4x1x1
          %gap2 = global_avgpool(%gap1) : 4x1x1
          %flatten1 = flatten(%gap2) : 4
          %flatten2 = flatten(%flatten1) : 4
          %fc1 = linear[out=5](%flatten2) : 5
          return %fc1
        }""")
    assert rec.changed
    assert rec.notes == ["removed 'dropout1' (conv2d 'conv1' feeds its users)",
                         "removed 'dropout2' (linear 'fc1' feeds its users)"]


def test_eliminate_dead_code():
    g, rec = run(messy, "eliminate-dead-code")
    assert "conv2" not in g and "relu1" not in g
    assert len(g) == len(messy.build()) - 2
    assert rec.notes == ["removed 'conv2' (conv2d, test_housekeeping.py:29): no output reads it",
                         "removed 'relu1' (relu, test_housekeeping.py:29): no output reads it"]


def test_fold_identity():
    g, rec = run(messy, "fold-identity")
    assert g.format(locs=False) == ir("""
        graph messy {
          %input = input() : 3x8x8
          %conv1 = conv2d[k=3x3,s=1,p=1](%input) : 4x8x8
          %dropout1 = dropout[p=0.2](%conv1) : 4x8x8
          %conv2 = conv2d[k=1x1,s=1,p=0](%dropout1) : 8x8x8
          %relu1 = relu(%conv2) : 8x8x8
          %gap1 = global_avgpool(%dropout1) : 4x1x1
          %flatten1 = flatten(%gap1) : 4
          %fc1 = linear[out=5](%flatten1) : 5
          %dropout2 = dropout[p=0.5](%fc1) : 5
          return %dropout2
        }""")
    assert rec.notes == [
        "folded 'identity1' (identity); its users read 'dropout1'",
        "folded 'maxpool1' (maxpool2d with a 1x1 kernel, stride 1, no padding); "
        "its users read 'dropout1'",
        "folded 'adaptpool1' (adaptive pool to the input's own size 8x8); "
        "its users read 'dropout1'",
        "folded 'upsample1' (upsample by 1); its users read 'dropout1'",
        "folded 'gap2' (global pool of a 1x1 map); its users read 'gap1'",
        "folded 'flatten2' (flatten of a flat tensor); its users read 'flatten1'",
    ]


def test_all_three_leave_a_minimal_graph():
    g, _ = run(messy, "remove-dropout,eliminate-dead-code,fold-identity")
    assert g.format(locs=False) == ir("""
        graph messy {
          %input = input() : 3x8x8
          %conv1 = conv2d[k=3x3,s=1,p=1](%input) : 4x8x8
          %gap1 = global_avgpool(%conv1) : 4x1x1
          %flatten1 = flatten(%gap1) : 4
          %fc1 = linear[out=5](%flatten1) : 5
          return %fc1
        }""")


@model(input=(3, 8, 8))
def lookalikes(x):
    a = x.maxpool(2).avgpool(3, stride=1, padding=1).upsample(2)
    a = a.adaptive_avgpool(4).conv(4, 1)
    b = x.maxpool(1, stride=2).avgpool(1, stride=1)
    return a.global_avgpool().flatten(), b


def test_lookalikes_are_left_alone():
    before = infer_shapes(lookalikes.build()).format()
    for p in ("remove-dropout", "eliminate-dead-code"):
        g, rec = run(lookalikes, p)
        assert g.format() == before and not rec.changed
    g, rec = run(lookalikes, "fold-identity")
    # only the 1x1/stride-1 avgpool goes: pools of 2x2, 3x3/1 padded, a strided 1x1,
    # upsample x2, adaptive 8->4 and flatten of a map all compute something
    assert [n for n in infer_shapes(lookalikes.build()).nodes() if n not in g] == ["avgpool2"]
    assert g.outputs == ["flatten1", "maxpool2"]
    assert rec.notes == ["folded 'avgpool2' (avgpool2d with a 1x1 kernel, stride 1, no "
                         "padding); its users read 'maxpool2'"]


def test_nothing_to_do_is_said():
    _, rec = run(lookalikes, "remove-dropout")
    assert rec.notes == ["no dropout layer"]
    _, rec = run(lookalikes, "eliminate-dead-code")
    assert rec.notes == ["no dead code: every layer reaches an output"]


@model(input=(3, 8, 8))
def with_dead_weights(x):
    y = x.conv(4, 3, padding=1)
    y.conv(2, 1)
    return y.relu()


def test_dead_code_takes_its_weights_along():
    g = infer_shapes(with_dead_weights.build())
    g.weights = init_weights(g, seed=0)
    out = PassManager.from_string("eliminate-dead-code").run(g)
    assert set(out.weights) == {"conv1"}
    assert np.array_equal(out.weights["conv1"]["weight"], g.weights["conv1"]["weight"])
    assert set(g.weights) == {"conv1", "conv2"}  # the input graph is not modified
