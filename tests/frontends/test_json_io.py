"""JSON IR: every zoo model round-trips to the same printer output, fused ops nest,
``cnnir compile --to json`` and ``.json`` as MODEL, the weights side file, and every kind
of bad document rejected with its JSON path."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

import cnnir
from cnnir import zoo
from cnnir.backends.onnx_export import save, to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.dsl import block, model, repeat
from cnnir.errors import FrontendError
from cnnir.frontends.json_io import FORMAT, VERSION, load_json, to_dict, to_json
from cnnir.passes.manager import run_pipeline


def roundtrip(g: cnnir.Graph, tmp_path, name: str = "g.json") -> cnnir.Graph:
    path = tmp_path / name
    path.write_text(to_json(g))
    return cnnir.load(str(path))


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_round_trips(name, tmp_path):
    g = cnnir.load(name)
    h = roundtrip(g, tmp_path, f"{name}.json")
    assert h.format() == g.format()
    assert h.blocks == g.blocks and h.outputs == g.outputs and h.source == g.source
    assert to_json(h) == to_json(g)


def test_fused_ops_nest_and_round_trip(tmp_path):
    g = run_pipeline(cnnir.load("resnet18", input=(3, 64, 64)), "fuse-conv-bn-relu")
    fused = [n for n in g.nodes() if g.op(n).kind == "fused_conv2d"]
    assert fused
    node = next(d for d in to_dict(g)["nodes"] if d["name"] == fused[0])
    assert node["attrs"]["conv"]["op"] == "conv2d" and node["attrs"]["bn"]["op"] == "batchnorm2d"
    h = roundtrip(g, tmp_path)
    assert h.format() == g.format()
    assert [h.op(n) for n in h.nodes()] == [g.op(n) for n in g.nodes()]


def test_schema_fields(tmp_path):
    doc = json.loads(to_json(cnnir.load("resnet18")))
    assert (doc["format"], doc["version"], doc["name"], doc["input"]) == (
        FORMAT, VERSION, "resnet18", [3, 224, 224])
    conv = doc["nodes"][1]
    assert conv == {"name": "stem/conv1", "op": "conv2d",
                    "attrs": {"out_channels": 64, "kernel": [7, 7], "stride": [2, 2],
                              "padding": [3, 3, 3, 3], "dilation": [1, 1], "groups": 1,
                              "bias": False},
                    "inputs": ["input"], "scope": ["stem"], "loc": conv["loc"]}
    assert conv["loc"].startswith("cnnir/zoo/resnet.py:")
    assert {"scope": ["layer1", "basic2"], "kind": "basic", "loc": doc["blocks"][3]["loc"],
            "repeat": [0, 0, 1]} in doc["blocks"]
    assert "weights" not in doc  # a DSL graph carries no weights


def test_input_override(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(to_json(cnnir.load("resnet18")))
    h = cnnir.load(str(path), input="3x64x64")
    assert h.input_shape == (3, 64, 64) and h.shape("fc") == (1000,)
    assert h.shape("layer4/basic2/relu2") == (512, 2, 2)


def test_compile_to_json_then_use_it_as_model(cli, tmp_path):
    out = tmp_path / "g.json"
    r = cli("compile", "googlenet", "--to", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob("*.npz"))
    a = cli("check", "googlenet", "--print")
    b = cli("check", str(out), "--print")
    assert b.returncode == 0 and a.stdout == b.stdout


# --------------------------------------------------------------------------- weights


def test_weights_side_file(cli, tmp_path):
    src = tmp_path / "net.onnx"
    save(to_onnx(cnnir.load("cifar_small"), mode="random", seed=3), str(src))
    out = tmp_path / "net.json"
    r = cli("compile", str(src), "--to", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    side = tmp_path / "net.weights.npz"
    assert side.exists()
    assert json.loads(out.read_text())["weights"]["file"] == "net.weights.npz"
    g, h = cnnir.load(str(src)), cnnir.load(str(out))
    assert set(h.weights) == set(g.weights)
    for n, arrays in g.weights.items():
        for k, v in arrays.items():
            np.testing.assert_array_equal(h.weights[n][k], v)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"input": x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = to_module(h, weights=h.weights).eval()
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), ref, rtol=1e-4,
                                   atol=1e-5)

    side.write_bytes(side.read_bytes()[:-10] + b"0123456789")
    r = cli("check", str(out))
    assert r.returncode == 2
    assert "weights.sha256: net.weights.npz does not match the checksum" in r.stderr
    side.unlink()
    r = cli("check", str(out))
    assert r.returncode == 2 and "weights.file: cannot read" in r.stderr


# --------------------------------------------------------------------------- validation


@block
def unit(x, c):
    y = x.conv(c, 3, padding=1, name="conv").relu(name="relu")
    return y + x


@model(input=(4, 8, 8))
def small(x):
    x = x.conv(4, 1, name="conv1").relu(name="relu1")
    x = repeat(unit, 2, x, 4)
    return x.global_avgpool().flatten().linear(3, name="fc")


@pytest.fixture
def doc() -> dict:
    d = to_dict(cnnir.infer_shapes(small.build()))
    assert [n["name"] for n in d["nodes"]][:6] == ["input", "conv1", "relu1", "unit1/conv",
                                                   "unit1/relu", "unit1/add1"]
    return d


def _set(path: str, value):
    def mutate(d):
        *head, last = path.split(".")
        target = d
        for key in head:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value
    return mutate


def _del(path: str):
    def mutate(d):
        *head, last = path.split(".")
        target = d
        for key in head:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[last]
    return mutate


BAD_DOCS = [
    (_set("version", 2), "version: version 2 is newer than this cnnir reads (up to 1)"),
    (_set("version", "1"), 'version: expected a positive integer, got "1"'),
    (_set("format", "onnx"), "format: expected 'cnnir-ir', got \"onnx\""),
    (_del("nodes"), "nodes: missing"),
    (_set("extra", 1), "extra: unknown field; expected blocks, format, input"),
    (_set("nodes.1.attrs.stride", [0, 1]), "nodes[1].attrs.stride: stride must be at least 1"),
    (_set("nodes.1.attrs.stride", "2"),
     'nodes[1].attrs.stride: expected a list of 2 integers, got "2"'),
    (_set("nodes.1.attrs.out_channels", -3),
     "nodes[1].attrs.out_channels: out_channels must be a positive integer, got -3"),
    (_set("nodes.1.attrs.padding", [-1, 0, 0, 0]),
     "nodes[1].attrs.padding: padding must not be negative"),
    (_set("nodes.1.attrs.kernel", [3, 0]), "nodes[1].attrs.kernel: kernel must be at least 1"),
    (_set("nodes.0.attrs.shape", [4, -8, 8]),
     "nodes[0].attrs.shape: input shape must be positive integers"),
    (_set("nodes.1.attrs.bias", 1), "nodes[1].attrs.bias: expected true or false, got 1"),
    (_set("nodes.1.attrs.strides", 1),
     "nodes[1].attrs.strides: conv2d has no attribute 'strides'; it has out_channels, kernel"),
    (_del("nodes.1.attrs.out_channels"), "nodes[1].attrs.out_channels: missing"),
    (_set("nodes.1.op", "conv3d"), "nodes[1].op: unknown op 'conv3d'; known: "),
    (_set("nodes.1.op", 7), "nodes[1].op: expected an op kind string, got 7"),
    (_del("nodes.2.inputs"), "nodes[2].inputs: missing"),
    (_set("nodes.2.inputs", ["nope"]), "nodes[2].inputs[0]: unknown node 'nope'"),
    (_set("nodes.2.inputs", "conv1"), "nodes[2].inputs: expected a list of strings"),
    (_set("nodes.5.inputs", ["unit1/relu"]), "nodes[5].inputs: add takes 2 input(s), got 1"),
    (_set("nodes.2.name", "conv1"), "nodes[2].name: duplicate node name 'conv1' (also nodes[1])"),
    (_set("nodes.2.name", ""), 'nodes[2].name: expected a non-empty string, got ""'),
    (_set("nodes.1.inputs", ["relu1"]),
     "nodes: the graph has a cycle: conv1 -> relu1 -> conv1"),
    (_set("nodes.1.scope", "stem"), "nodes[1].scope: expected a list of strings, got a string"),
    (_set("nodes.1.loc", 12), "nodes[1].loc: expected a non-empty string, got 12"),
    (_set("nodes.1.colour", "red"), "nodes[1].colour: unknown field"),
    (_set("outputs", ["ghost"]), "outputs[0]: unknown node 'ghost'"),
    (_set("outputs", []), "outputs: expected at least one output"),
    (_set("input", [4, 9, 9]), "input: [4, 9, 9] disagrees with nodes[0].attrs.shape [4, 8, 8]"),
    (_set("blocks.0.repeat", [0, 3, 2]),
     "blocks[0].repeat: expected [group >= 0, index, count] with 0 <= index < count"),
    (_set("blocks.0.scope", []), "blocks[0].scope: expected a non-empty list of names"),
    (_set("nodes", []), "nodes: expected a non-empty list, got []"),
]


@pytest.mark.parametrize("mutate, message", BAD_DOCS, ids=[m for _, m in BAD_DOCS])
def test_bad_documents_name_the_json_path(doc, tmp_path, mutate, message):
    bad = copy.deepcopy(doc)
    mutate(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(FrontendError) as err:
        load_json(str(path))
    assert str(err.value).startswith(f"{path}: error: {message}")


def test_nested_op_errors_name_the_nested_path(tmp_path):
    g = run_pipeline(cnnir.load("resnet18", input=(3, 64, 64)), "fuse-conv-bn-relu")
    d = to_dict(g)
    i = next(k for k, n in enumerate(d["nodes"]) if n["op"] == "fused_conv2d")
    d["nodes"][i]["attrs"]["conv"]["stride"] = [1, 0]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(d))
    with pytest.raises(FrontendError, match=rf"nodes\[{i}\]\.attrs\.conv\.stride: stride must "):
        load_json(str(path))


def test_syntax_errors_point_at_the_line(cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "cnnir-ir",\n  "version": 1\n  "name": "x"\n}\n')
    r = cli("report", str(path))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"{path}:4: error: invalid JSON: Expecting ',' delimiter "
                                f"(column 3)")
    path.write_text("[1, 2]")
    r = cli("check", str(path))
    assert r.returncode == 2
    assert r.stderr.strip() == f"{path}: error: expected an object, got a list"
