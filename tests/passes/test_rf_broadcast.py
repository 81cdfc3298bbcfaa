"""receptive-field through broadcast gates (issue 21): squeeze-and-excitation's global
pool and the Mul that broadcasts the Cx1x1 gate back.  After the Mul a unit sees the
whole input (``whole``), while its size, stride, padding and alignment are those of
the spatial path, derived here by the textbook chain formulas, apart from the pass."""

from __future__ import annotations

import json
import warnings
from fractions import Fraction

import pytest

from cnnir import ops as O
from cnnir.backends.report import build_report, render, to_json
from cnnir.dsl import model, mul
from cnnir.ir import Graph
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.receptive_field import RF, ReceptiveField


def chain_rf(layers: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(r, S, P) of a chain of (kernel, stride, begin padding):
    r = 1 + sum (k_l - 1) prod_{i<l} s_i, S = prod s_l, P = sum p_l prod_{i<l} s_i."""
    r, jump, pad = 1, 1, 0
    for k, s, p in layers:
        r += (k - 1) * jump
        pad += p * jump
        jump *= s
    return r, jump, pad


def spatial(layers: list[tuple[int, int, int]], whole: bool = True) -> RF:
    r, s, p = chain_rf(layers)
    return RF((r, r), (r, r), (s, s), (p, p), True, whole)


def se(x, channels, name):
    """Squeeze-excitation: global pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid, x * gate."""
    g = x.global_avgpool(name=f"{name}_pool").conv(channels // 4, 1, name=f"{name}_reduce")
    g = g.relu().conv(channels, 1, name=f"{name}_expand").sigmoid()
    return mul(x, g, name=f"{name}_scale")


@model(input=(3, 64, 64))
def se_net(x):
    x = x.conv(16, 3, stride=2, padding=1, name="stem").relu()            # 32x32
    x = se(x.conv(16, 3, padding=1, name="c1").relu(), 16, "se1")
    x = se(x.conv(32, 3, stride=2, padding=1, name="c2").relu(), 32, "se2")  # 16x16
    x = x.conv(32, 3, padding=1, name="c3").relu()
    return x.global_avgpool(name="head_pool").flatten().linear(10, name="fc")


STEM, C1, C2, C3 = (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 1)


@pytest.fixture(scope="module")
def net() -> Graph:
    g = infer_shapes(se_net.build())
    ReceptiveField().run(g)
    return g


def rf(g: Graph, n: str) -> RF:
    return g.meta(n)["rf"]


def test_the_gate_sees_the_whole_input(net):
    r, s, p = chain_rf([STEM, C1])
    pooled = rf(net, "se1_pool")
    assert pooled.whole and pooled.size == (r + 31 * s,) * 2 and pooled.padding == (p, p)


def test_after_the_broadcast_mul_stride_and_alignment_are_the_spatial_paths(net):
    assert rf(net, "se1_scale") == spatial([STEM, C1])                  # 7/2/3 whole
    assert rf(net, "se2_scale") == spatial([STEM, C1, C2])              # 11/4/5 whole
    assert rf(net, "c3") == spatial([STEM, C1, C2, C3])                 # 19/4/9 whole
    assert str(rf(net, "se1_scale")) == "7/2/3 whole"
    assert str(rf(net, "c3")) == "19/4/9 whole"


def test_no_jump_exceeds_the_input_and_no_fraction_appears(net):
    for n in net.nodes():
        if net.shape(n).is_map and net.shape(n)[1] > 1:
            r = rf(net, n)
            assert max(r.stride) <= 64, n
            assert all(type(v) is int for p in (r.size, r.stride, r.padding) for v in p), n
            assert not any(isinstance(v, Fraction) for v in r.min_size), n


def test_the_table_and_the_json_say_the_same(net):
    report = build_report(se_net.build())
    text = render(report, "table", ["name", "rf"])
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == ["se2_scale"])
    assert line.split()[1:] == ["11/4/5", "whole"]
    layers = {x["name"]: x for x in json.loads(json.dumps(to_json(report)))["layers"]}
    r, s, p = chain_rf([STEM, C1, C2, C3])
    assert layers["c3"]["rf"] == {"size": [r, r], "min_size": [r, r], "stride": [s, s],
                                  "padding": [p, p], "aligned": True, "whole": True}
    assert layers["se2_scale"]["rf"]["whole"] is True  # the table's "whole", in the JSON too


def test_a_broadcast_operand_that_does_not_see_everything_is_unaligned():
    g = Graph("t")
    g.add("input", O.Input((4, 8, 8)))
    g.add("conv", O.Conv2d(4, 3, padding=1), ["input"])
    g.add("corner", O.MaxPool2d(2, stride=8), ["input"])  # 1x1: sees a 2x2 corner only
    g.add("mul", O.Mul(), ["conv", "corner"])
    g.outputs = ["mul"]
    infer_shapes(g)
    p = ReceptiveField()
    p.run(g)
    out = rf(g, "mul")
    assert not out.whole and not out.aligned
    assert out.size == (3, 3) and out.stride == (1, 1) and out.padding == (1, 1)
    assert any("'mul': broadcasts 'corner'" in n for n in p.notes)


def test_an_equal_shape_mul_is_an_ordinary_merge():
    g = Graph("t")
    g.add("input", O.Input((4, 8, 8)))
    g.add("a", O.Conv2d(4, 3, padding=1), ["input"])
    g.add("b", O.Conv2d(4, 5, padding=2), ["input"])
    g.add("mul", O.Mul(), ["a", "b"])
    g.outputs = ["mul"]
    infer_shapes(g)
    ReceptiveField().run(g)
    assert rf(g, "mul") == RF((5, 5), (3, 3), (1, 1), (2, 2), True, False)


def test_an_se_block_exported_by_torch_and_imported(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from torch import nn

    from cnnir.frontends.onnx_import import load_onnx

    class SE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 2, 1), nn.ReLU(),
                                      nn.Conv2d(2, 8, 1), nn.Sigmoid())
            self.body = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            return self.body(x * self.gate(x))

    path = str(tmp_path / "se.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SE().eval(), (torch.randn(1, 3, 32, 32),), path, dynamo=False,
                          input_names=["x"], output_names=["y"])
    g = infer_shapes(load_onnx(path))
    ReceptiveField().run(g)
    (mul,) = [n for n in g.nodes() if g.op(n).kind == "mul"]
    pool = [n for n in g.nodes() if g.op(n).family == "pool"]
    assert pool and all(rf(g, n).whole for n in pool)
    assert rf(g, mul) == spatial([STEM])
    (last,) = g.outputs
    assert rf(g, last) == spatial([STEM, C1])
