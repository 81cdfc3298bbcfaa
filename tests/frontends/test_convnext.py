"""ConvNeXt's ops end to end: GELU and LayerNorm2d, and the channels-last Linear.

A ConvNeXt block written as torchvision writes ``CNBlock`` (without layer scale and
stochastic depth), torchvision's ``LayerNorm2d`` and ``Permute``, through torch.fx and
through ``torch.onnx.export`` (TorchScript at opsets 14, 17 and 20, dynamo at 18 and 20):
params equal ``sum(p.numel())``, MACs equal first principles and ``FlopCounterMode``
(conv + linear, halved), outputs of the emitted PyTorch module and of onnxruntime equal
the module's.  Near misses of the decompositions are refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.dsl import model
from cnnir.errors import FrontendError
from cnnir.frontends.onnx_import import from_onnx_model, load_onnx
from cnnir.frontends.torch_import import from_torch

# --------------------------------------------------------------------------- the modules


class Permute(nn.Module):
    """torchvision.ops.misc.Permute."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x


class CNBlock(nn.Module):
    """torchvision's CNBlock without layer scale and stochastic depth."""

    def __init__(self, dim: int, approximate: str = "none") -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            nn.GELU(approximate),
            nn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            Permute([0, 3, 1, 2]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.block(x)
        result += x
        return result


class TinyConvNeXt(nn.Module):
    """Stem, two blocks (erf and tanh GELU), a downsampling layer and the head."""

    def __init__(self, dim: int = 8, classes: int = 5, head: bool = True) -> None:
        super().__init__()
        self.head = head
        self.stem = nn.Sequential(nn.Conv2d(3, dim, 4, 4), LayerNorm2d(dim, eps=1e-6))
        self.stage = nn.Sequential(CNBlock(dim), CNBlock(dim, "tanh"))
        self.down = nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, 2 * dim, 2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(2 * dim, eps=1e-6), nn.Flatten(1),
                                        nn.Linear(2 * dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stage(self.stem(x)))
        return self.classifier(self.avgpool(x)) if self.head else x


SIZE = (3, 32, 32)
DIM = 8


def first_principles(dim: int = DIM, classes: int = 5, head: bool = True) -> tuple[int, int]:
    """(params, MACs) of TinyConvNeXt on 3x32x32, by hand."""
    hw = 8 * 8  # after the 4x4 / 4 stem
    stem = (3 * 16 * dim + dim, hw * dim * 3 * 16)
    ln = 2 * dim  # weight and bias
    block = (dim * 49 + dim + ln + dim * 4 * dim + 4 * dim + 4 * dim * dim + dim,
             hw * dim * 49 + hw * dim * 4 * dim + hw * 4 * dim * dim)
    down = (ln + dim * 4 * 2 * dim + 2 * dim, 4 * 4 * 2 * dim * dim * 4)
    parts = [stem, (ln, 0), block, block, down] + ([(2 * 2 * dim + 2 * dim * classes + classes,
                                                      2 * dim * classes)] if head else [])
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def net(head: bool = True) -> TinyConvNeXt:
    torch.manual_seed(0)
    module = TinyConvNeXt(head=head)
    with torch.no_grad():
        for p in module.parameters():  # no identity LayerNorms, no shared initializers
            p.normal_(0.0, 0.3)
    return module.eval()


def reference_macs(module: nn.Module) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.randn(1, *SIZE))
    counts = counter.get_flop_counts()["Global"]
    return sum(int(v) for k, v in counts.items()
               if str(k).split(".")[-1] in ("convolution", "addmm", "mm", "bmm")) // 2


def assert_equal_outputs(graph, module: TinyConvNeXt) -> None:
    x = torch.randn(2, *SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emitted = to_module(graph, weights=graph.weights).eval()
    with torch.no_grad():
        np.testing.assert_allclose(emitted(x).numpy(), module(x).numpy(), rtol=1e-4,
                                   atol=1e-5)
    import onnxruntime as ort

    onnx_model = to_onnx(graph, weights=graph.weights)
    sess = ort.InferenceSession(onnx_model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, module(x).numpy(), rtol=1e-4, atol=1e-5)


def kinds(graph) -> list[str]:
    return [graph.op(n).kind for n in graph.nodes()]


BLOCK_KINDS = ["conv2d", "layernorm2d", "conv2d", "gelu", "conv2d", "add"]
KINDS = (["input", "conv2d", "layernorm2d"] + BLOCK_KINDS * 2 +
         ["layernorm2d", "conv2d", "global_avgpool", "layernorm2d", "flatten", "linear"])


# --------------------------------------------------------------------------- torch.fx


def test_first_principles_agree_with_torch():
    module = net()
    params, macs = first_principles()
    assert params == sum(p.numel() for p in module.parameters())
    assert macs == reference_macs(module)


def test_fx_import_is_exact_and_runs_equal():
    module = net()
    g = from_torch(module, input=SIZE)
    assert kinds(g) == KINDS
    a = analyze(g)
    assert (a.params, a.macs) == first_principles()
    linear = g.op("stage/0/block/3")  # nn.Linear(8, 32) on channels: a 1x1 conv
    assert linear == O.Conv2d(4 * DIM, 1) and g.shape("stage/0/block/3") == (32, 8, 8)
    np.testing.assert_array_equal(
        g.weights["stage/0/block/3"]["weight"][:, :, 0, 0],
        module.stage[0].block[3].weight.detach().numpy())
    assert g.op("stage/1/block/4") == O.GELU("tanh") and g.op("stage/0/block/4") == O.GELU()
    assert g.op("stem/1") == O.LayerNorm2d(1e-6)
    assert_equal_outputs(g, module)


def test_fx_layernorm_cost_and_rf():
    g = from_torch(net(), input=SIZE)
    c, h, w = g.shape("stem/1")
    op = g.op("stem/1")
    assert op.cost([g.shape("stem/0")], g.shape("stem/1")) == (0, (7 * c + 4) * h * w)
    assert op.params([g.shape("stem/0")]) == {"weight": (c,), "bias": (c,)}
    assert op.receptive_field([g.shape("stem/0")], (h, w)) is None
    gelu = g.op("stage/1/block/4")  # tanh form: 9 per element; erf form 5
    assert gelu.cost([g.shape("stage/1/block/3")], g.shape("stage/1/block/4")) == (
        0, 9 * 32 * 8 * 8)
    assert g.op("stage/0/block/4").cost([], g.shape("stage/0/block/4")) == (0, 5 * 32 * 8 * 8)


class _Bad(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.ln = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "perm":
            return x.permute(0, 3, 2, 1)
        if self.mode == "nchw_ln":
            return self.ln(x)
        if self.mode == "unreturned":
            return self.fc(x.permute(0, 2, 3, 1))
        return F.layer_norm(x, (4,))


@pytest.mark.parametrize("mode, message", [
    ("perm", "permute(0, 3, 2, 1) of an N x 4x4x4 tensor; cnnir maps permute(0, 2, 3, 1)"),
    ("nchw_ln", "LayerNorm(4,) on an N x 4x4x4 map normalises its last axes"),
    ("unreturned", "expects a feature map, got a channels-last view (permute(0, 2, 3, 1))"),
    ("fn_ln", "layer_norm of an NCHW map; cnnir maps layer_norm over the channels"),
])
def test_fx_refusals_say_what_cnnir_maps(mode, message):
    with pytest.raises(FrontendError) as err:
        from_torch(_Bad(mode), input=(4, 4, 4))
    assert message in str(err.value)


# --------------------------------------------------------------------------- torch.onnx.export


def export(module: nn.Module, path: str, opset: int, dynamo: bool) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (torch.randn(1, *SIZE),), path, dynamo=True,
                              opset_version=opset, verbose=False)
        else:
            torch.onnx.export(module, (torch.randn(1, *SIZE),), path, dynamo=False,
                              input_names=["x"], opset_version=opset)
    return path


@pytest.mark.parametrize("opset, dynamo, spelled", [
    (14, False, {"ReduceMean", "Pow", "Sqrt", "Erf", "Tanh"}),  # both decomposed
    (17, False, {"LayerNormalization", "Erf", "Tanh"}),
    (20, False, {"LayerNormalization", "Gelu"}),
    (18, True, {"LayerNormalization", "Erf", "Tanh", "Pow"}),  # onnxscript's spelling
    (20, True, {"LayerNormalization", "Gelu"}),
], ids=["ts14", "ts17", "ts20", "dynamo18", "dynamo20"])
def test_onnx_import_is_exact_and_runs_equal(tmp_path, opset, dynamo, spelled):
    # the dynamo exporter writes the 1x1 adaptive pool's output as Reshape / Gather
    # (as_strided), which is no concern of this test: its model ends at the downsampling
    head = not dynamo
    module = net(head)
    path = export(module, str(tmp_path / "convnext.onnx"), opset, dynamo)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert spelled <= ops and "Transpose" in ops and "MatMul" in ops
    g = load_onnx(path)
    assert kinds(g) == (KINDS if head else KINDS[:-4])
    a = analyze(g)
    assert (a.params, a.macs) == first_principles(head=head)
    assert_equal_outputs(g, module)


# --------------------------------------------------------------------------- round trip


@model(input=(6, 5, 7))
def ln_gelu(x):
    y = x.conv(6, 3, padding=1).layernorm2d(eps=1e-6).gelu().conv(12, 1).gelu("tanh")
    return y.conv(6, 1) + x


@pytest.mark.parametrize("opset", [17, 20])
def test_cnnir_onnx_round_trip(opset):
    g = ln_gelu.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = to_module(g, mode="random", seed=2).eval()
    onnx_model = to_onnx(g, weights=m, opset=opset)
    back = from_onnx_model(onnx_model)
    assert kinds(back) == kinds(g)
    assert [back.op(n) for n in back.nodes()] == [g.op(n) for n in g.nodes()]
    assert (analyze(back).params, analyze(back).macs) == (analyze(g).params, analyze(g).macs)
    x = torch.randn(2, 6, 5, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = to_module(back, weights=back.weights).eval()
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), m(x).numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- near misses


def make(nodes, inits, shape=(1, 4, 3, 3), opset=17):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def gelu_nodes(div=1.4142135, one=1.0, half=0.5):
    return ([helper.make_node("Div", ["x", "s"], ["d"], name="div"),
             helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["p"], name="plus"),
             helper.make_node("Mul", ["x", "p"], ["m"], name="times"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="half")],
            {"s": div, "one": one, "half": half})


def test_gelu_decomposition_reads_as_one_gelu():
    g = from_onnx_model(make(*gelu_nodes()))
    assert kinds(g) == ["input", "gelu"] and g.op(g.nodes()[1]) == O.GELU()


@pytest.mark.parametrize("nodes, inits, message", [
    (*gelu_nodes(div=2.0), "Div node 'div': cnnir maps Div only inside GELU's"),
    (*gelu_nodes(one=2.0), "Div node 'div': cnnir maps Div only inside GELU's x * 0.5 * "
     "(1 + erf(x / sqrt(2))) and a LayerNorm decomposition; here after Erf 'erf' there is no "
     "Add of step 3 of the GELU (erf form) decomposition Div -> Erf -> Add -> Mul -> Mul"),
    (*gelu_nodes(half=0.25), "after Mul 'times' there is no Mul of step 5"),
    ([helper.make_node("Erf", ["x"], ["y"], name="lone")], {},
     "Erf node 'lone': cnnir maps Erf only inside GELU's"),
    ([helper.make_node("Transpose", ["x"], ["y"], name="tr", perm=[0, 1, 3, 2])], {},
     "Transpose node 'tr': transposes a feature map with perm [0, 1, 3, 2]"),
    ([helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[0, 2, 3, 1]),
      helper.make_node("Relu", ["t"], ["y"], name="r")], {},
     "Relu node 'r': reads the channels-last output of Transpose 'tr'"),
    ([helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[0, 2, 3, 1]),
      helper.make_node("LayerNormalization", ["t", "w", "b"], ["y"], name="ln", axis=1)],
     {"w": np.ones(4), "b": np.zeros(4)}, "LayerNormalization node 'ln': axis=1"),
    ([helper.make_node("LayerNormalization", ["x", "w", "b"], ["y"], name="ln")],
     {"w": np.ones(3), "b": np.zeros(3)},
     "LayerNormalization node 'ln': normalises a tensor that is no Transpose"),
    ([helper.make_node("Sub", ["x", "x"], ["y"], name="sub")], {},
     "Sub node 'sub': Sub of two feature maps has no IR op (cnnir maps Sub of a feature "
     "map and a constant, and Sub inside a LayerNorm decomposition)"),
])
def test_near_misses_are_refused_by_name(nodes, inits, message):
    with pytest.raises(FrontendError) as err:
        from_onnx_model(make(nodes, inits))
    assert message in str(err.value)


def test_a_constant_computed_later_is_checked_when_its_node_comes():
    """Constants from ``Constant`` nodes are known only when the node is reached."""
    nodes, inits = gelu_nodes()
    del inits["one"]
    nodes.append(helper.make_node("Constant", [], ["one"], name="c",
                                  value=numpy_helper.from_array(np.array(2.0, np.float32))))
    with pytest.raises(FrontendError) as err:
        from_onnx_model(make(nodes, inits))
    assert "Add node 'plus': step 3 of what looks like the GELU (erf form) decomposition" in \
        str(err.value)
    nodes[-1] = helper.make_node("Constant", [], ["one"], name="c",
                                 value=numpy_helper.from_array(np.array(1.0, np.float32)))
    assert kinds(from_onnx_model(make(nodes, inits))) == ["input", "gelu"]


def test_a_gelu_step_read_elsewhere_is_refused():
    nodes, inits = gelu_nodes()
    nodes[-1] = helper.make_node("Mul", ["m", "half"], ["h"], name="half")
    nodes.append(helper.make_node("Add", ["h", "e"], ["y"], name="peek"))
    with pytest.raises(FrontendError) as err:
        from_onnx_model(make(nodes, inits))
    assert "decomposition's Erf 'erf' is also read by Add 'peek'" in str(err.value)


def test_a_plain_square_is_still_a_mul():
    g = from_onnx_model(make([helper.make_node("Mul", ["x", "x"], ["y"], name="sq")], {}))
    assert kinds(g) == ["input", "mul"]


def test_json_round_trip_keeps_the_attributes(tmp_path):
    import cnnir
    from cnnir.frontends.json_io import load_json

    g = ln_gelu.build()
    path = tmp_path / "g.json"
    path.write_text(cnnir.compile(g, to="json"))
    back = load_json(str(path))
    assert [back.op(n) for n in back.nodes()] == [g.op(n) for n in g.nodes()]
    assert O.GELU("tanh") in [back.op(n) for n in back.nodes()]
