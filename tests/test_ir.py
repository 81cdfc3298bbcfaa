"""The IR graph: building, ordered inputs and ports, rewiring, copies and the printer."""

from __future__ import annotations

import networkx as nx
import pytest

from cnnir import ops as O
from cnnir.errors import CnnirError
from cnnir.ir import BlockInfo, Graph, SourceLoc
from cnnir.passes.infer_shapes import infer_shapes


def residual_graph() -> Graph:
    """input -> conv -> relu -> add(relu, input) -> out"""
    g = Graph("tiny")
    loc = SourceLoc("/home/me/net.py", 3)
    g.add("input", O.Input((4, 8, 8)), loc=SourceLoc("/home/me/net.py", 1))
    g.add("conv", O.Conv2d(4, 3, 1, 1), ["input"], loc, ("blk",))
    g.add("relu", O.ReLU(), ["conv"], SourceLoc("/home/me/net.py", 4), ("blk",))
    g.add("add", O.Add(), ["relu", "input"], SourceLoc("/home/me/net.py", 5))
    g.outputs = ["add"]
    return g


def test_inputs_are_ordered_and_edges_carry_ports():
    g = residual_graph()
    assert g.inputs("add") == ("relu", "input")
    ports = {(u, v): d["port"] for u, v, d in g.nx.edges(data=True)}
    assert ports[("relu", "add")] == 0 and ports[("input", "add")] == 1
    assert g.users("input") == ["conv", "add"]
    assert g.scope("conv") == ("blk",) and g.scope("add") == ()
    assert g.loc("conv") == SourceLoc("/home/me/net.py", 3)


def test_one_tensor_may_feed_both_ports_of_a_node():
    g = Graph()
    g.add("input", O.Input((2, 4, 4)))
    g.add("sq", O.Mul(), ["input", "input"])
    assert g.inputs("sq") == ("input", "input")
    assert g.users("input") == ["sq"]  # each user once
    assert sorted(d["port"] for _, _, d in g.nx.in_edges("sq", data=True)) == [0, 1]
    assert infer_shapes(g).shape("sq") == (2, 4, 4)


def test_nodes_are_in_insertion_order_when_that_is_topological():
    g = Graph()
    g.add("input", O.Input((3, 8, 8)))
    g.add("b", O.ReLU(), ["input"])
    g.add("a", O.ReLU(), ["input"])
    g.add("cat", O.Concat(), ["a", "b"])
    assert g.nodes() == ["input", "b", "a", "cat"]
    assert list(g) == g.nodes() and len(g) == 4 and "cat" in g and "zzz" not in g


def test_order_follows_rewiring():
    g = Graph()
    g.add("input", O.Input((3, 8, 8)))
    g.add("late", O.ReLU(), ["input"])
    g.add("early", O.Sigmoid(), ["input"])
    g.set_inputs("late", ["early"])
    assert g.nodes() == ["input", "early", "late"]


def test_adding_bad_nodes_fails_with_cnnir_errors():
    g = residual_graph()
    with pytest.raises(CnnirError, match="duplicate node name 'conv'"):
        g.add("conv", O.ReLU(), ["input"])
    with pytest.raises(CnnirError, match="node 'x' reads unknown node 'nope'"):
        g.add("x", O.ReLU(), ["nope"])
    with pytest.raises(CnnirError, match="node 'relu' reads unknown node 'nope'"):
        g.set_inputs("relu", ["nope"])
    assert g.inputs("relu") == ("conv",)  # untouched by the failed rewiring


@pytest.mark.parametrize("call", [
    lambda g: g.op("nope"), lambda g: g.users("nope"), lambda g: g.set_inputs("nope", []),
    lambda g: g.set_op("nope", O.ReLU()), lambda g: g.remove("nope"), lambda g: g.meta("nope"),
    lambda g: g.replace_uses("nope", "conv"), lambda g: g.node("nope"),
])
def test_unknown_node_names_are_cnnir_errors(call):
    with pytest.raises(CnnirError, match="no node named 'nope' in graph 'tiny'"):
        call(residual_graph())


def test_a_cycle_is_reported_with_its_path():
    g = Graph("loop")
    g.add("input", O.Input((3, 8, 8)))
    g.add("a", O.ReLU(), ["input"])
    g.add("b", O.ReLU(), ["a"])
    g.set_inputs("a", ["b"])
    with pytest.raises(CnnirError) as info:
        g.nodes()
    assert info.value.msg in ("graph 'loop' has a cycle: a -> b -> a",
                              "graph 'loop' has a cycle: b -> a -> b")


def test_replace_uses_rewires_users_and_outputs_except_excluded():
    g = residual_graph()
    g.add("proj", O.Conv2d(4, 1), ["input"])
    g.replace_uses("input", "proj", exclude=["proj"])
    assert g.inputs("conv") == ("proj",)
    assert g.inputs("add") == ("relu", "proj")
    assert g.users("input") == ["proj"]
    g.replace_uses("add", "relu")
    assert g.outputs == ["relu"]


def test_remove_refuses_nodes_in_use():
    g = residual_graph()
    with pytest.raises(CnnirError, match="cannot remove 'relu': it still has users"):
        g.remove("relu")
    with pytest.raises(CnnirError, match="cannot remove 'add': it is a graph output"):
        g.remove("add")
    g.replace_uses("relu", "conv")
    g.weights = {"conv": {"weight": 1}, "relu": {}}
    g.remove("relu")
    assert g.weights == {"conv": {"weight": 1}}  # no stale weights for a removed node
    assert g.nodes() == ["input", "conv", "add"] and g.inputs("add") == ("conv", "input")


def test_set_op_replaces_the_op_only():
    g = infer_shapes(residual_graph())
    g.set_op("relu", O.Sigmoid())
    assert g.op("relu") == O.Sigmoid() and g.inputs("relu") == ("conv",)
    assert g.loc("relu").line == 4


def test_copy_is_structural_with_fresh_meta():
    g = infer_shapes(residual_graph())
    g.blocks[("blk",)] = BlockInfo("scope", SourceLoc("net.py", 2))
    c = g.copy("other")
    assert c.name == "other" and c.nodes() == g.nodes() and c.outputs == g.outputs
    assert all(c.op(n) == g.op(n) and c.inputs(n) == g.inputs(n) for n in g.nodes())
    assert c.blocks == g.blocks and c.blocks is not g.blocks
    assert c.meta("conv") == {} and g.meta("conv")["shape"] == (4, 8, 8)
    c.set_inputs("add", ["relu", "relu"])
    c.outputs.append("conv")
    assert g.inputs("add") == ("relu", "input") and g.outputs == ["add"]


def test_shape_before_inference_says_what_to_do():
    g = residual_graph()
    with pytest.raises(CnnirError, match="shape of 'conv' is unknown: run infer-shapes first"):
        g.shape("conv")
    assert infer_shapes(g).shape("add") == (4, 8, 8)
    assert g.input_shape == (4, 8, 8) and g.input_nodes == ["input"]


def test_graph_without_input_has_no_input_shape():
    with pytest.raises(CnnirError, match="graph 'empty' has no input"):
        _ = Graph("empty").input_shape


def test_nx_view_is_read_only():
    g = residual_graph()
    with pytest.raises(nx.NetworkXError):
        g.nx.add_node("intruder")
    assert "intruder" not in g


def test_unique_and_local_names():
    g = residual_graph()
    assert g.unique_name("fresh") == "fresh"
    assert g.unique_name("conv") == "conv_2"
    g.add("conv_2", O.ReLU(), ["conv"])
    assert g.unique_name("conv") == "conv_3"
    assert g.local_name("inception_3a/b2_3x3") == "b2_3x3" and g.local_name("fc") == "fc"


def test_source_locations_print_as_file_line():
    loc = SourceLoc("/home/me/nets/googlenet.py", 12)
    assert str(loc) == "/home/me/nets/googlenet.py:12"
    assert loc.short == "googlenet.py:12"
    assert str(SourceLoc("model.onnx")) == "model.onnx" and SourceLoc("a/b.onnx").short == "b.onnx"


def test_printer_golden_output():
    g = infer_shapes(residual_graph())
    assert g.format() == "\n".join([
        "graph tiny {",
        "  %input = input() : 4x8x8  # net.py:1",
        "  %conv = conv2d[k=3x3,s=1,p=1](%input) : 4x8x8  # net.py:3",
        "  %relu = relu(%conv) : 4x8x8  # net.py:4",
        "  %add = add(%relu, %input) : 4x8x8  # net.py:5",
        "  return %add",
        "}",
    ])
    assert g.format(shapes=False, locs=False).splitlines()[2] == "  %conv = conv2d[k=3x3,s=1,p=1](%input)"
    assert str(g) == g.format()
    assert repr(g) == "<cnnir.Graph 'tiny': 4 nodes>"
    assert g.line_for("relu") == "%relu = relu(%conv) : 4x8x8  # net.py:4"


def test_node_view():
    g = infer_shapes(residual_graph())
    n = g.node("add")
    assert (n.name, n.op, n.inputs, n.scope, n.shape) == ("add", O.Add(), ("relu", "input"), (),
                                                          (4, 8, 8))
