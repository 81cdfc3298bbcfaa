"""ONNX round trip keeps the blocks: a DSL model compiled to ONNX and imported back
reports the same block rows (names, kinds, repeats, per-block params and MACs)."""

from __future__ import annotations

import json

import onnx
import pytest

from cnnir import load
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.report import build_report
from cnnir.errors import FrontendError
from cnnir.frontends.onnx_import import from_onnx_model, load_onnx


def block_rows(graph, depth=3):
    return [(r.name, r.op, r.attrs, r.params, r.buffers, r.macs, r.other_ops)
            for r in build_report(graph, depth=depth).rows if r.is_block]


@pytest.mark.parametrize("model", ["resnet18", "googlenet", "mobilenet_v2"])
def test_round_trip_keeps_block_names_kinds_and_numbers(model, tmp_path):
    graph = load(model)
    path = tmp_path / f"{model}.onnx"
    onnx.save(to_onnx(graph, seed=0), str(path))
    back = load_onnx(str(path))
    want = block_rows(graph)
    assert want  # the zoo models have blocks
    assert block_rows(back) == want
    assert {s: (b.kind, b.repeat) for s, b in back.blocks.items()} == {
        s: (b.kind, b.repeat) for s, b in graph.blocks.items()}


def test_the_kinds_are_the_dsls_not_guessed_from_names(tmp_path):
    graph = load("resnet18")
    back = from_onnx_model(to_onnx(graph, seed=0), name="r")
    assert back.blocks[("stem",)].kind == "scope"  # `with scope("stem")`, not "stem"
    assert back.blocks[("layer1",)].kind == "scope"
    assert back.blocks[("layer1", "basic2")].kind == "basic"
    assert back.blocks[("layer1", "basic2")].repeat == graph.blocks[("layer1", "basic2")].repeat
    rows = {r.name: r for r in build_report(back, depth=1).rows if r.is_block}
    # layer1 = two basic blocks of two 3x3 convs (64->64, no bias) and two BNs each
    assert rows["layer1"].params == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)
    assert rows["layer1"].op == "block:scope"


def test_without_the_metadata_kinds_come_from_names():
    proto = to_onnx(load("resnet18"), seed=0)
    keep = [p for p in proto.metadata_props if p.key != "cnnir_blocks"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    back = from_onnx_model(proto, name="r")
    assert back.blocks[("stem",)].kind == "stem"
    assert back.blocks[("layer1", "basic2")].kind == "basic"


@pytest.mark.parametrize("text", ["{not json", json.dumps({"scope": "a"}),
                                  json.dumps([{"scope": "stem"}]),
                                  json.dumps([{"scope": "stem", "kind": "scope",
                                               "repeat": [1, 2]}])])
def test_a_broken_blocks_entry_is_a_clear_error(text):
    proto = to_onnx(load("resnet18"), seed=0)
    for p in proto.metadata_props:
        if p.key == "cnnir_blocks":
            p.value = text
    with pytest.raises(FrontendError, match="cnnir_blocks"):
        from_onnx_model(proto, name="r")
