"""cnnir compare A B: the output's receptive field and the per-stage rows (the models'
top-level blocks, aligned by position) in every format, from first principles."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cnnir import load
from cnnir.backends.compare import compare_models, measure, stages
from cnnir.cli import main
from cnnir.dsl import block, model, scope
from cnnir.passes.infer_shapes import infer_shapes


@block
def unit(x, c):
    return x.conv(c, 3, padding=1, bias=False).bn().relu()


@model(input=(3, 16, 16))
def two(x):
    with scope("stem"):
        x = x.conv(8, 3, stride=2, padding=1)  # 8x8x8
    with scope("body"):
        x = unit(x, 16)
    return x.global_avgpool().flatten().linear(10)


@model(input=(3, 16, 16))
def one(x):
    with scope("stem"):
        x = x.conv(4, 1)  # 4x16x16
    return x.global_avgpool().flatten().linear(2)


# first principles: params and MACs of each stage, and of the layers outside
STEM2 = (8 * 3 * 3 * 3 + 8, 8 * 3 * 3 * 3 * 8 * 8)             # conv with bias
BODY2 = (16 * 8 * 3 * 3 + 2 * 16, 16 * 8 * 3 * 3 * 8 * 8)       # conv, BN affine
REST2 = (16 * 10 + 10, 16 * 10)                                 # the FC
STEM1 = (4 * 3 + 4, 4 * 3 * 16 * 16)
REST1 = (4 * 2 + 2, 4 * 2)


def graphs():
    return [infer_shapes(two.build()), infer_shapes(one.build())]


def test_stages_from_first_principles():
    m = compare_models(graphs())
    (a, b), (ra, rb) = m.stages, m.rests
    assert [(s.name, s.kind, s.params, s.macs, s.output) for s in a] == [
        ("stem", "scope", *STEM2, (8, 8, 8)), ("body", "scope", *BODY2, (16, 8, 8))]
    assert [(s.name, s.params, s.macs) for s in b] == [("stem", *STEM1)]
    assert (ra.params, ra.macs) == REST2 and (rb.params, rb.macs) == REST1
    assert a[1].buffers == 2 * 16  # BN running mean and variance
    for st, rest, f in zip(m.stages, m.rests, m.figures):  # the parts add up to the totals
        assert sum(s.params for s in st) + rest.params == f["params"]
        assert sum(s.macs for s in st) + rest.macs == f["macs"]


def test_json_and_csv_rows():
    m = compare_models(graphs())
    data = m.to_dict()["models"]
    assert data[0]["stages"][1] == {"name": "body", "kind": "scope", "params": BODY2[0],
                                    "buffers": 32, "macs": BODY2[1], "output": [16, 8, 8]}
    assert data[1]["outside_stages"] == {"params": REST1[0], "buffers": 0, "macs": REST1[1]}
    # RF of the output.  two: 3x3/2 p1, then 3x3 p1 (jump 2): 3 + 2*2 = 7, padding
    # 1 + 2*1 = 3; the global pool is an 8x8 kernel at jump 2: 7 + 7*2 = 21, stride 16
    assert data[0]["rf"] == {"size": [21, 21], "min_size": [21, 21], "stride": [16, 16],
                             "padding": [3, 3], "aligned": True, "whole": True}
    # one: 1x1 conv, then a 16x16 pool at jump 1: 16, stride 16, no padding
    assert data[1]["rf"]["size"] == [16, 16] and data[1]["rf"]["padding"] == [0, 0]
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(m.render("csv")))}
    assert rows["stages"] == ["2", "1"]
    assert rows["stage1"] == ["stem", "stem"]
    assert rows["stage1.params"] == [str(STEM2[0]), str(STEM1[0])]
    assert rows["stage2"] == ["body", ""]  # aligned by position; the shorter model is blank
    assert rows["stage2.macs"] == [str(BODY2[1]), ""]
    assert rows["stage2.output"] == ["16x8x8", ""]
    assert rows["outside.params"] == [str(REST2[0]), str(REST1[0])]
    assert rows["rf"] == ["21/16/3 whole", "16/16/0 whole"]


@pytest.mark.parametrize("fmt", ["table", "md", "latex"])
def test_every_text_format_has_the_stage_rows(fmt):
    text = compare_models(graphs()).render(fmt)
    for word in ("RF (output)", "stage 1", "stage 2", "body", "outside stages: params"):
        assert word in text, (fmt, word)
    if fmt == "latex":
        assert "\\quad params" in text and "16$\\times$8$\\times$8" in text
        assert "21/16/3 whole" in text


def test_zoo_models_side_by_side(capsys):
    assert main(["compare", "resnet18", "resnet50", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["models"]
    names = [[s["name"] for s in d["stages"]] for d in data]
    assert names == [["stem", "layer1", "layer2", "layer3", "layer4"]] * 2
    # resnet18's layer1: two basic blocks of two 3x3 convs (64->64) and two BNs
    assert data[0]["stages"][1]["params"] == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)
    assert data[0]["outside_stages"]["params"] == 512 * 1000 + 1000
    for d in data:
        assert sum(s["params"] for s in d["stages"]) + d["outside_stages"]["params"] == d["params"]
        assert sum(s["macs"] for s in d["stages"]) + d["outside_stages"]["macs"] == d["macs"]
    g = load("mobilenet_v2")
    measure(g)
    st, rest = stages(g)
    assert [s.name for s in st] == ["stem", *(f"stage{i}" for i in range(1, 8)), "head"]


def test_a_dsl_stage_groups_its_blocks_in_compare():
    """GoogLeNet's ``with stage("inception4")`` holds inception_4a..4e: one row, whose
    params are the five modules' (from their own block rows), kind ``stage``."""
    g = load("googlenet")
    measure(g)
    st, rest = stages(g)
    assert [(s.name, s.kind) for s in st] == [
        ("stem", "scope"), ("inception3", "stage"), ("inception4", "stage"),
        ("inception5", "stage")]
    per_module = {}
    for v in g.walk():
        if v.scope[:1] and v.scope[0].startswith("inception_4"):
            per_module[v.scope[0]] = per_module.get(v.scope[0], 0) + v.meta["params"]["params"]
    assert sorted(per_module) == [f"inception_4{c}" for c in "abcde"]
    assert st[2].params == sum(per_module.values()) and st[2].output == (832, 14, 14)
    assert sum(s.params for s in st) + rest.params == measure(g)["params"]
