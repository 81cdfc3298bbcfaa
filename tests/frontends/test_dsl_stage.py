"""``with stage(name):``: the stage recorded on the top-level blocks built inside it
(``BlockInfo.stage``), no node renamed; its errors; and its JSON round trip."""

from __future__ import annotations

import json

import pytest

import cnnir
from cnnir.dsl import block, model, scope, stage
from cnnir.errors import DslError, FrontendError
from cnnir.frontends.json_io import to_json
from cnnir.ir import BlockInfo


@block
def unit(x, c):
    return x.conv(c, 3, padding=1, name="conv").relu()


@block
def outer(x):
    return unit(x, 4)


def net(x):
    with stage("s1"):
        x = unit(x, 4)
        x = outer(x)
    x = x.maxpool(2, name="pool")
    with stage("s2"):
        with scope("plain"):
            x = x.conv(4, 1, name="proj")
    return x


def test_stage_is_recorded_on_top_level_blocks_and_renames_nothing():
    g = model(input=(3, 8, 8))(net).build()
    assert g.nodes() == [
        "input",
        "unit1/conv",
        "unit1/relu1",
        "outer1/unit1/conv",
        "outer1/unit1/relu1",
        "pool",
        "plain/proj",
    ]
    assert {p: b.stage for p, b in g.blocks.items()} == {
        ("unit1",): "s1",
        ("outer1",): "s1",
        ("outer1", "unit1"): None,
        ("plain",): "s2",
    }
    assert g.blocks[("unit1",)] == BlockInfo("unit", g.blocks[("unit1",)].loc, None, "s1")


def test_stage_round_trips_through_json(tmp_path):
    g = model(input=(3, 8, 8))(net).build()
    doc = json.loads(to_json(g))
    # written only where set: files without stages are unchanged
    assert [b.get("stage") for b in doc["blocks"]] == ["s1", "s1", None, "s2"]
    assert ["stage" in b for b in doc["blocks"]] == [True, True, False, True]
    path = tmp_path / "g.json"
    path.write_text(to_json(g))
    assert cnnir.load(str(path)).blocks == g.blocks


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda d: d["blocks"][0].update(stage=3),
            r"blocks\[0\]\.stage: expected a non-empty "
            r"string, got 3",
        ),
        (
            lambda d: d["blocks"][2].update(stage="s1"),
            r"blocks\[2\]\.stage: only a top-level "
            r"block belongs to a stage",
        ),
        (
            lambda d: d["blocks"][0].update(stage="plain"),
            r"blocks\[0\]\.stage: stage 'plain' has "
            r"the name of a top-level block",
        ),
    ],
)
def test_json_rejects_bad_stages(tmp_path, edit, message):
    doc = json.loads(to_json(model(input=(3, 8, 8))(net).build()))
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FrontendError, match=message):
        cnnir.load(str(path))


def _nested(x):
    with stage("a"):
        with stage("b"):
            x = unit(x, 4)
    return x


def _in_scope(x):
    with scope("s"):
        with stage("a"):
            x = unit(x, 4)
    return x


def _loose(x):
    with stage("a"):
        x = x.conv(4, 1)
    return x


def _twice(x):
    with stage("a"):
        x = unit(x, 4)
    with stage("a"):
        x = unit(x, 4)
    return x


def _clash(x):
    with stage("unit2"):
        x = unit(x, 4)
    return unit(x, 4)


@pytest.mark.parametrize(
    "fn,message",
    [
        (_nested, r"stage\('b'\) inside stage 'a': stages sit at the model's top level"),
        (_in_scope, r"stage\('a'\) inside scope 's': stages sit at the model's top level"),
        (_loose, r"stage 'a' holds layers outside any block or scope\(\)"),
        (_twice, r"a block or stage named 'a' already exists"),
        (_clash, r"'unit2' is the name of a stage already"),
    ],
)
def test_stage_mistakes_are_located_errors(fn, message):
    with pytest.raises(DslError, match=message) as err:
        model(input=(3, 8, 8))(fn).build()
    assert err.value.loc is not None and err.value.loc.file.endswith("test_dsl_stage.py")
