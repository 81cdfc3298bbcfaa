"""One seed, one set of weights: the PyTorch source ``--to torch`` writes, the module
``to_module`` builds and the ONNX file ``--to onnx`` exports hold the same arrays for
the same seed (issue 19), and run to the same outputs in torch and onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from cnnir import load
from cnnir import ops as O
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.backends.pytorch_source import to_source
from cnnir.backends.torch_rules import make_plan
from cnnir.cli import main
from cnnir.dsl import model
from cnnir.ir import Graph
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.weights import init_weights


@model(input=(4, 12, 12))
def scaled(x):
    """Scale (per channel and scalar, with a bias), LayerNorm2d, BatchNorm, a
    transposed conv, grouped and biased convs, ECA's channel conv, a linear layer."""
    x = x.conv(8, 3, padding=1).scale(bias=True).layernorm2d().gelu()
    x = x.conv(8, 3, padding=1, groups=2, bias=False).bn().relu()
    x = x.conv_transpose(6, 3, stride=2, padding=1, output_padding=1).scale(per_channel=False)
    gate = x.global_avgpool().channel_conv1d(3).sigmoid()  # ECA's Conv1d is drawn too
    return (x * gate).global_avgpool().flatten().linear(5)


def interleaved() -> Graph:
    """Scopes that interleave (``a``, ``b``, ``a`` again): ``self.modules()`` visits
    ``a.c2`` before ``b.c1``, the graph the other way round."""
    g = Graph("interleaved")
    x = g.add("input", O.Input((3, 8, 8)))
    y = g.add("a/c1", O.Conv2d(4, 3, padding=1), [x], scope=("a",))
    y = g.add("b/c1", O.Conv2d(5, 3, padding=1), [y], scope=("b",))
    y = g.add("a/c2", O.Conv2d(6, 3, padding=1), [y], scope=("a",))
    y = g.add("flat", O.Flatten(), [y])
    g.outputs = [g.add("fc", O.Linear(3), [y])]
    return infer_shapes(g)


GRAPHS = {
    "lenet5": lambda: load("lenet5"),
    "resnet18": lambda: load("resnet18", input=(3, 32, 32)),  # BatchNorm
    "mobilenet_v2": lambda: load("mobilenet_v2", input=(3, 32, 32)),
    "googlenet": lambda: load("googlenet"),
    "scaled": lambda: infer_shapes(scaled.build()),  # Scale, LayerNorm2d
    "interleaved": interleaved,
}


def source_class(src: str) -> type[nn.Module]:
    """The model class of a generated file (the one with ``reset_parameters``; a helper
    such as ``Scale`` is an ``nn.Module`` too)."""
    ns: dict = {}
    exec(compile(src, "generated.py", "exec"), ns)
    (cls,) = [v for v in ns.values() if isinstance(v, type) and "reset_parameters" in vars(v)]
    return cls


def state(module: nn.Module) -> dict[str, np.ndarray]:
    return {
        k: v.detach().numpy()
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def initializers(proto: onnx.ModelProto, graph: Graph) -> dict[str, np.ndarray]:
    """The ONNX weights (``node.param``) under their ``state_dict`` keys."""
    paths = make_plan(graph).paths
    out = {}
    for t in proto.graph.initializer:
        node, _, param = t.name.rpartition(".")
        if node in paths:
            out[f"{paths[node]}.{param}"] = numpy_helper.to_array(t)
    return out


def same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        # an ONNX scale holds its weight as C x 1 x 1 where the module holds C (or 1)
        assert np.array_equal(a[k].reshape(b[k].shape), b[k]), k


@pytest.mark.parametrize("name", list(GRAPHS))
def test_source_module_and_onnx_hold_the_same_weights_for_a_seed(name):
    g = GRAPHS[name]()
    seed = 11
    src = to_source(g, seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(123)  # the seeded draw must not read torch's generator
        from_source = state(source_class(src)())
    onnx_weights = initializers(to_onnx(g, seed=seed), g)
    same_arrays(onnx_weights, from_source)
    same_arrays(state(to_module(g, seed=seed)), from_source)
    # they are cnnir's seeded draw, not a default: the convs are not all alike
    drawn = init_weights(g, seed=seed)
    first = next(n for n in g.nodes() if g.op(n).init == "kaiming")
    key = f"{make_plan(g).paths[first]}.weight"
    assert np.array_equal(from_source[key], drawn[first]["weight"])
    assert from_source[key].std() > 0


@pytest.mark.parametrize("name", list(GRAPHS))
def test_another_seed_gives_other_weights(name):
    g = GRAPHS[name]()
    cls = source_class(to_source(g, seed=1))
    a, b = state(cls()), state(cls(seed=2))
    onnx_b = initializers(to_onnx(g, seed=2), g)
    same_arrays(onnx_b, b)
    changed = [k for k in a if not np.array_equal(a[k], b[k])]
    weights = [k for k in a if k.endswith(".weight") and a[k].std() > 0]
    assert weights and set(weights) <= set(changed)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "scaled"])
def test_the_source_module_and_onnxruntime_agree_on_a_random_input(name):
    g = GRAPHS[name]()
    m = source_class(to_source(g, seed=5))().eval()
    x = np.random.default_rng(0).standard_normal((2, *g.shape("input"))).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(
        to_onnx(g, seed=5).SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert np.abs(ref).max() > 0


def test_interleaved_scopes_list_the_draw_order():
    src = to_source(interleaved(), seed=0)
    assert (
        "        for m in (  # cnnir's order\n            self.a.c1,\n"
        "            self.b.c1,\n            self.a.c2,\n            self.fc,\n        ):" in src
    )
    assert "for m in (" not in to_source(load("lenet5"))  # modules() order is cnnir's


def test_seed_none_draws_from_torch_without_numpy():
    cls = source_class(to_source(load("lenet5"), seed=None))
    torch.manual_seed(0)
    a = state(cls())
    torch.manual_seed(0)
    b = state(cls())
    c = state(cls(seed=0))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["c1.weight"], c["c1.weight"])


def test_cli_torch_and_onnx_files_hold_the_same_weights(tmp_path):
    py, path = tmp_path / "net.py", tmp_path / "net.onnx"
    for to, out in (("torch", py), ("onnx", path)):
        argv = ["compile", "resnet18", "--input", "3x32x32", "--to", to, "-o", str(out)]
        assert main([*argv, "--seed", "4"]) == 0
    g = load("resnet18", input=(3, 32, 32))
    same_arrays(initializers(onnx.load(str(path)), g), state(source_class(py.read_text())()))
