"""ONNX import: files written by torch.onnx.export (BatchNorm folded away), the zoo through
cnnir's own ONNX backend and back, every mapping rule on hand-built graphs (numbers
checked against onnxruntime), names and scopes, and bad files on the command line."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch_nets as T
from onnx import TensorProto, helper, numpy_helper

import cnnir
from cnnir import ops as O
from cnnir import zoo
from cnnir.analysis import analyze
from cnnir.backends.onnx_export import save, to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.errors import FrontendError
from cnnir.frontends.onnx_import import from_onnx_model
from cnnir.frontends.onnx_rules import bin_matrix
from cnnir.weights import param_shapes

# --------------------------------------------------------------------------- helpers


def export(module: torch.nn.Module, path: str, dynamo: bool = False) -> str:
    """``torch.onnx.export`` in eval mode (the TorchScript exporter folds BatchNorm)."""
    x = torch.randn(1, *module.input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), path, dynamo=True, verbose=False)
        else:
            torch.onnx.export(module, (x,), path, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return path


def run_ort(path_or_model, x: np.ndarray) -> np.ndarray:
    data = path_or_model if isinstance(path_or_model, str) else \
        path_or_model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def run_ir(graph: cnnir.Graph, x: np.ndarray) -> np.ndarray:
    """The imported graph as a PyTorch module, with the file's weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read-only initializer buffers
        module = to_module(graph, weights=graph.weights).eval()
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()


def assert_close(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * scale)


def kinds(graph: cnnir.Graph) -> list[str]:
    return [graph.op(n).kind for n in graph.nodes()]


# --------------------------------------------------------------------------- torch.onnx.export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The hand-written networks exported once (TorchScript exporter, dynamic batch)."""
    d = tmp_path_factory.mktemp("torch_onnx")
    out = {}
    for cls in (T.TinyResNet, T.InceptionNet, T.TinyMobileNet, T.SENet):
        module = T.randomize(cls())
        out[cls.__name__] = (module, export(module, str(d / f"{cls.__name__}.onnx")))
    return out


def test_resnet_basic_blocks_with_bn_folded_by_the_exporter(exported):
    module, path = exported["TinyResNet"]
    g = cnnir.load(path)
    # the exporter folded every BatchNorm into its conv, which gained a bias
    assert "batchnorm2d" not in kinds(g)
    assert kinds(g).count("conv2d") == 6 and all(
        g.op(n).bias for n in g.nodes() if g.op(n).kind == "conv2d")
    a = analyze(g)
    assert a.params == T.tiny_resnet_params(folded=True) == 19850
    assert a.macs == T.TINY_RESNET_MACS
    assert g.input_shape == (3, 32, 32)
    assert g.shape("layer2/0/conv1") == (32, 16, 16)
    assert g.shape("layer2/0/downsample/0") == (32, 16, 16)
    assert [g.shape(o) for o in g.outputs] == [(10,)]
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    ref = run_ort(path, x)
    assert_close(run_ir(g, x), ref)
    with torch.no_grad():
        assert_close(run_ir(g, x), module(torch.from_numpy(x)).numpy())


def test_names_and_scopes_come_from_exporter_node_names(exported):
    _, path = exported["TinyResNet"]
    g = cnnir.load(path)
    model = onnx.load(path)
    assert "/layer1/layer1.0/conv1/Conv" in [n.name for n in model.graph.node]
    # "/layer1/layer1.0/conv1/Conv" -> layer1/0/conv1 in scope (layer1, 0)
    assert g.scope("layer1/0/conv1") == ("layer1", "0")
    assert g.scope("layer1/0/add") == ("layer1", "0")  # a functional op of the block
    # the block's ReLU module called twice: relu, relu_1 (the exporter's names)
    assert {"layer1/0/relu", "layer1/0/relu_1"} <= set(g.nodes())
    assert {("layer1",), ("layer1", "0"), ("layer2", "0", "downsample")} <= set(g.blocks)
    assert g.blocks[("layer2", "0", "downsample")].kind == "downsample"
    assert g.blocks[("layer1", "0")].kind == "module"  # a bare index names no kind
    assert all(g.loc(n).file == path for n in g.nodes())
    assert all("." not in n for n in g.nodes())


def test_inception_module(exported):
    _, path = exported["InceptionNet"]
    g = cnnir.load(path)
    a = analyze(g)
    assert a.params == T.INCEPTION_PARAMS and a.macs == T.INCEPTION_MACS
    cat = next(n for n in g.nodes() if g.op(n).kind == "concat")
    assert g.shape(cat) == (24, 14, 14) and len(g.inputs(cat)) == 4
    pool = next(n for n in g.nodes() if g.op(n).kind == "maxpool2d" and g.op(n).ceil_mode)
    assert g.shape(pool) == (16, 14, 14)
    x = np.random.default_rng(1).standard_normal((2, 3, 28, 28)).astype(np.float32)
    assert_close(run_ir(g, x), run_ort(path, x))


def test_mobilenet_inverted_residual_relu6(exported):
    _, path = exported["TinyMobileNet"]
    g = cnnir.load(path)
    assert "batchnorm2d" not in kinds(g) and kinds(g).count("relu6") == 5
    assert kinds(g).count("add") == 1  # only the first block keeps its residual
    dw = [n for n in g.nodes() if g.op(n).kind == "conv2d" and g.op(n).groups == 48]
    assert len(dw) == 2 and g.shape(dw[1]) == (48, 8, 8)
    assert analyze(g).params == T.tiny_mobilenet_params(folded=True)
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_close(run_ir(g, x), run_ort(path, x))


def test_squeeze_excitation_block(exported):
    _, path = exported["SENet"]
    g = cnnir.load(path)
    mul = next(n for n in g.nodes() if g.op(n).kind == "mul")
    a_, b_ = g.inputs(mul)
    assert (g.shape(a_), g.shape(b_), g.shape(mul)) == ((16, 16, 16), (16, 1, 1), (16, 16, 16))
    assert analyze(g).params == T.senet_params(folded=True)
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert_close(run_ir(g, x), run_ort(path, x))


def test_dynamo_exporter_names_from_metadata(tmp_path):
    module = T.randomize(T.SENet(torch.nn.Hardsigmoid))
    path = export(module, str(tmp_path / "se.onnx"), dynamo=True)
    g = cnnir.load(path)
    # the dynamo exporter averages with ReduceMean and names nodes node_*; the
    # module path comes from its pkg.torch.onnx.name_scopes metadata
    assert {"se/fc1", "se/fc2", "se/gate", "conv"} <= set(g.nodes())
    assert g.blocks[("se",)].kind == "SqueezeExcite"
    assert "hardsigmoid" in kinds(g)
    assert analyze(g).params == T.senet_params(folded=True)
    x = np.random.default_rng(4).standard_normal((1, 3, 16, 16)).astype(np.float32)
    assert_close(run_ir(g, x), run_ort(path, x))
    with torch.no_grad():
        assert_close(run_ir(g, x), module(torch.from_numpy(x)).numpy())


def test_unflatten_reshape_is_a_clear_error(tmp_path):
    path = export(T.LinearSE().eval(), str(tmp_path / "lse.onnx"))
    with pytest.raises(FrontendError) as err:
        cnnir.load(path)
    msg = str(err.value)
    assert "Reshape node" in msg and "N x 8" in msg and "flatten" in msg


# --------------------------------------------------------------------------- the zoo


def reduced(name: str) -> cnnir.Graph:
    """The zoo model at the smallest of a few square inputs it accepts."""
    declared = zoo.get(name).input
    for size in (64, 96, 128, 160, 188, 224):  # 188: the unpadded U-Net's smallest
        if size >= declared[1]:
            break
        try:
            return cnnir.load(name, input=(declared[0], size, size))
        except cnnir.ShapeError:
            continue
    return cnnir.load(name)


def zero_weights(g: cnnir.Graph) -> dict:
    return {n: {k: np.zeros(s, np.float32) for k, s in param_shapes(g, n).items()}
            for n in g.nodes() if param_shapes(g, n)}


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_through_onnx_keeps_params_macs_shapes_rf(name):
    g = reduced(name)
    h = from_onnx_model(to_onnx(g, weights=zero_weights(g)), name)
    a, b = analyze(g), analyze(h)
    assert (b.params, b.buffers, b.macs) == (a.params, a.buffers, a.macs)
    # one layer per layer, same names; the backend leaves dropout / identity out
    gone = {n for n in g.nodes() if isinstance(g.op(n), (O.Dropout, O.Identity, O.DropPath))}
    assert set(h.nodes()) == set(g.nodes()) - gone
    for n in h.nodes():
        assert h.shape(n) == g.shape(n), n
        assert h.meta(n)["rf"] == g.meta(n)["rf"], n
        assert h.scope(n) == g.scope(n), n


#: one model per family of op kinds (LRN, ceil-mode pools, softmax; residual BN; relu6 and
#: depthwise convs; dense concats; fire modules; transposed convs and upsampling; NiN);
#: every op rule is also checked against onnxruntime on small graphs below
OUTPUT_MODELS = ["lenet5", "cifar_small", "googlenet", "resnet18", "mobilenet_v2",
                 "densenet121", "squeezenet1_0", "unet", "nin_cifar10"]


@pytest.mark.parametrize("name", OUTPUT_MODELS)
def test_zoo_onnx_file_to_pytorch_matches_onnxruntime(name, tmp_path):
    g = reduced(name)
    path = str(tmp_path / f"{name}.onnx")
    save(to_onnx(g, mode="random", seed=1), path)
    h = cnnir.load(path)
    x = np.random.default_rng(5).standard_normal((2, *g.input_shape)).astype(np.float32)
    assert_close(run_ir(h, x), run_ort(path, x))


# --------------------------------------------------------------------------- mapping rules


def make_model(nodes, inits, in_shape, out_name="y", opset=17, in_name="x"):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


RNG = np.random.default_rng(7)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def check(model, in_shape) -> cnnir.Graph:
    """Import ``model`` and compare the PyTorch module's outputs with onnxruntime's."""
    g = from_onnx_model(model)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 2
    x = RNG.standard_normal((batch, *in_shape)).astype(np.float32)
    assert_close(run_ir(g, x), run_ort(model, x))
    return g


def test_zero_pad_folds_into_the_conv():
    model = make_model([
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["y"], name="conv", kernel_shape=[3, 3]),
    ], {"pads": np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64), "w": w(4, 3, 3, 3)},
        ["N", 3, 8, 8])
    g = check(model, (3, 8, 8))
    assert kinds(g) == ["input", "conv2d"]
    assert g.op("conv").padding == (1, 2, 0, 1) and g.shape("conv") == (4, 7, 9)


def test_edge_pad_is_an_error_naming_the_node_reflect_is_a_layer():
    def model(mode):
        return make_model([
            helper.make_node("Pad", ["x", "pads"], ["p"], name="mypad", mode=mode),
            helper.make_node("Conv", ["p", "w"], ["y"], name="conv"),
        ], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": w(4, 3, 3, 3)},
            [1, 3, 8, 8])

    with pytest.raises(FrontendError, match="Pad node 'mypad': edge padding"):
        from_onnx_model(model("edge"))
    g = check(model("reflect"), (3, 8, 8))  # not folded into the conv's zero padding
    assert g.op("mypad") == O.Pad(1, mode="reflect") and g.op("conv").padding == (0, 0, 0, 0)


def test_gemm_without_transb_transposes_the_weight():
    model = make_model([helper.make_node("Gemm", ["x", "b", "c"], ["y"], name="fc")],
                       {"b": w(6, 4), "c": w(4)}, ["N", 6])
    g = check(model, (6,))
    assert g.op("fc") == O.Linear(4, True)
    assert g.weights["fc"]["weight"].shape == (4, 6)


def test_matmul_plus_bias_is_one_linear():
    model = make_model([
        helper.make_node("Flatten", ["x"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "b"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "c"], ["y"], name="fc_bias"),
    ], {"b": w(12, 5), "c": w(5)}, ["N", 3, 2, 2])
    g = check(model, (3, 2, 2))
    assert kinds(g) == ["input", "flatten", "linear"] and g.op("fc").bias


def test_shape_gather_concat_reshape_chain_is_a_flatten():
    """What the TorchScript exporter writes for ``x.view(x.size(0), -1)``."""
    model = make_model([
        helper.make_node("Shape", ["x"], ["s"], name="/Shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="/Reshape"),
    ], {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64)}, ["N", 4, 3, 3])
    g = check(model, (4, 3, 3))
    assert kinds(g) == ["input", "flatten"] and g.shape("flatten") == (36,)


@pytest.mark.parametrize("auto_pad, pads", [("SAME_UPPER", (0, 0, 1, 1)),
                                            ("SAME_LOWER", (1, 1, 0, 0))])
def test_auto_pad(auto_pad, pads):
    # height: 6 / stride 2 -> 3 rows, kernel 3 needs 1 pixel; width: kernel 2 needs 1
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[2, 1],
                                         auto_pad=auto_pad)], {"w": w(2, 3, 3, 2)},
                       [1, 3, 6, 5])
    g = check(model, (3, 6, 5))
    assert g.op("c").padding == pads and g.shape("c") == (2, 3, 5)


def test_ceil_mode_end_padding_reads_back_as_ceil_mode():
    model = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool",
                                         kernel_shape=[3, 3], strides=[2, 2],
                                         pads=[0, 0, 1, 1])], {}, [1, 2, 8, 8])
    g = check(model, (2, 8, 8))
    assert g.op("pool") == O.MaxPool2d(3, 2, 0, ceil_mode=True)


@pytest.mark.parametrize("pool, size, out", [
    (O.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True), 6, 4),
    (O.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), 6, 4),
    (O.AvgPool2d(3, 2, 1, ceil_mode=False, count_include_pad=True), 6, 3),
    (O.AvgPool2d(2, 2, 0, ceil_mode=True), 5, 3),
    (O.MaxPool2d(3, 2, 1, ceil_mode=True), 6, 4),
])
def test_backend_pool_encodings_read_back_as_the_same_pool(pool, size, out):
    """cnnir's ONNX backend writes ceil mode as end padding, and a ceil-mode average that
    counts padding as an explicit zero Pad; both read back as the original pool (on
    inputs where ceil mode adds a window)."""
    g = cnnir.Graph("p")
    g.outputs = [g.add("pool", pool, [g.add("input", O.Input((2, size, size)))])]
    model = to_onnx(cnnir.infer_shapes(g))
    h = check(model, (2, size, size))
    assert h.op("pool") == pool and h.shape("pool") == g.shape("pool") == (2, out, out)


def test_adaptive_pool_bin_matmuls_read_back_as_one_pool():
    model = make_model([
        helper.make_node("MatMul", ["x", "aw"], ["r"], name="pool:w"),
        helper.make_node("MatMul", ["ah", "r"], ["y"], name="pool"),
    ], {"aw": bin_matrix(5, 3).T.astype(np.float32),
        "ah": bin_matrix(4, 3).astype(np.float32)}, ["N", 2, 4, 5])
    g = check(model, (2, 4, 5))
    assert g.op("pool") == O.AdaptiveAvgPool2d((3, 3))


@pytest.mark.parametrize("mode, coord, op", [
    ("nearest", "asymmetric", O.Upsample(2, "nearest")),
    ("linear", "half_pixel", O.Upsample(2, "bilinear")),
    ("linear", "align_corners", O.Upsample(2, "bilinear", True)),
])
def test_resize(mode, coord, op):
    attrs = {"nearest_mode": "floor"} if mode == "nearest" else {}
    model = make_model([helper.make_node("Resize", ["x", "", "sc"], ["y"], name="up", mode=mode,
                                         coordinate_transformation_mode=coord, **attrs)],
                       {"sc": np.array([1, 1, 2, 2], np.float32)}, ["N", 2, 3, 4])
    assert check(model, (2, 3, 4)).op("up") == op


def test_resize_by_sizes():
    model = make_model([helper.make_node("Resize", ["x", "", "", "sz"], ["y"], name="up",
                                         mode="nearest", nearest_mode="floor",
                                         coordinate_transformation_mode="asymmetric")],
                       {"sz": np.array([1, 2, 9, 8], np.int64)}, [1, 2, 3, 4])
    assert check(model, (2, 3, 4)).op("up") == O.Upsample((3, 2), "nearest")


def test_activations_lrn_softmax_concat():
    model = make_model([
        helper.make_node("LeakyRelu", ["x"], ["a"], name="lrelu", alpha=0.2),
        helper.make_node("HardSigmoid", ["x"], ["b"], name="hsig", alpha=1 / 6, beta=0.5),
        helper.make_node("HardSwish", ["x"], ["c"], name="hswish"),
        helper.make_node("Tanh", ["x"], ["d"], name="tanh"),
        helper.make_node("Clip", ["x", "zero", "six"], ["e"], name="relu6"),
        helper.make_node("Concat", ["a", "b", "c", "d", "e"], ["f"], name="cat", axis=1),
        helper.make_node("LRN", ["f"], ["g"], name="lrn", size=3, alpha=1e-3, beta=0.7, bias=2.0),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=1),
    ], {"zero": np.array(0, np.float32), "six": np.array(6, np.float32)}, ["N", 2, 3, 3])
    g = check(model, (2, 3, 3))
    assert g.op("lrelu") == O.LeakyReLU(0.2)
    assert g.op("lrn") == O.LocalResponseNorm(3, 1e-3, 0.7, 2.0)
    assert kinds(g)[1:] == ["leaky_relu", "hardsigmoid", "hardswish", "tanh", "relu6",
                            "concat", "lrn", "softmax"]


def test_conv_transpose_and_batchnorm():
    model = make_model([
        helper.make_node("ConvTranspose", ["x", "w", "b"], ["t"], name="up", strides=[2, 2],
                         pads=[1, 1, 1, 1], output_padding=[1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["t", "g", "be", "m", "v"], ["y"], name="bn",
                         epsilon=1e-3),
    ], {"w": w(3, 4, 3, 3), "b": w(4), "g": np.abs(w(4)) + 0.5, "be": w(4), "m": w(4),
        "v": np.abs(w(4)) + 0.5}, ["N", 3, 5, 5])
    g = check(model, (3, 5, 5))
    assert g.op("up") == O.ConvTranspose2d(4, 3, 2, 1, 1) and g.shape("up") == (4, 10, 10)
    assert g.op("bn") == O.BatchNorm2d(1e-3)


@pytest.mark.parametrize("node, inits, message", [
    (helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip"),
     {"lo": np.array(-1, np.float32), "hi": np.array(1, np.float32)},
     "Clip node 'clip': Clip to [-1, 1] has no IR op"),
    (helper.make_node("Mul", ["x", "k"], ["y"], name="scale"), {"k": w(4, 1)},
     "Mul node 'scale': Mul of a constant ('k', shape [4, 1]) and an N x 2x4x4 tensor"),
    (helper.make_node("Div", ["k", "x"], ["y"], name="inv"), {"k": np.array(2, np.float32)},
     "Div node 'inv': divides the constant 'k' by a feature map (c / x)"),
    (helper.make_node("Sub", ["x", "x"], ["y"], name="diff"), {},
     "Sub node 'diff': Sub of two feature maps has no IR op"),
    (helper.make_node("HardSigmoid", ["x"], ["y"], name="hs"), {},
     "HardSigmoid node 'hs': HardSigmoid(alpha=0.2, beta=0.5) differs from PyTorch's"),
    (helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2), {},
     "Concat node 'cat': concatenates along axis 2"),
])
def test_mapped_ops_without_ir_equivalent_name_the_node(node, inits, message):
    with pytest.raises(FrontendError) as err:
        from_onnx_model(make_model([node], inits, [1, 2, 4, 4]))
    assert message in str(err.value)


def test_all_unsupported_operators_in_one_message():
    model = make_model([
        helper.make_node("Cos", ["x"], ["a"], name="cos1"),
        helper.make_node("Sin", ["a"], ["b"], name="sin"),
        helper.make_node("Cos", ["b"], ["y"], name="cos2"),
    ], {}, [1, 2, 4, 4])
    with pytest.raises(FrontendError) as err:
        from_onnx_model(model, "m.onnx")
    assert str(err.value).startswith(
        "m.onnx: error: cannot import: unsupported ONNX operators Cos (nodes 'cos1', 'cos2'); "
        "Sin (node 'sin'); cnnir maps ")


def test_symbolic_input_needs_input_size(tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {},
                       ["N", 3, "H", "W"])
    path = str(tmp_path / "sym.onnx")
    onnx.save(model, path)
    with pytest.raises(FrontendError, match=r"input 'x' has symbolic size \[N, 3, H, W\]; "
                                            r"give it with --input"):
        cnnir.load(path)
    assert cnnir.load(path, input="3x20x30").shape("r") == (3, 20, 30)
    with pytest.raises(FrontendError, match="--input has 4 channels but input 'x' has 3"):
        cnnir.load(path, input="4x20x30")


# --------------------------------------------------------------------------- bad files (CLI)


def _write(tmp_path, name: str, model_or_bytes) -> str:
    path = tmp_path / name
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else \
        model_or_bytes.SerializeToString()
    path.write_bytes(data)
    return str(path)


def _cycle_model():
    nodes = [helper.make_node("Relu", ["x2"], ["x1"], name="first"),
             helper.make_node("Relu", ["x1"], ["x2"], name="second"),
             helper.make_node("Add", ["x", "x2"], ["y"], name="out")]
    return make_model(nodes, {}, [1, 2, 4, 4])


def _valid_bytes() -> bytes:
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")],
                       {"w": w(8, 3, 3, 3)}, [1, 3, 8, 8])
    return model.SerializeToString()


@pytest.mark.parametrize("name, content, message", [
    ("unsupported.onnx",
     make_model([helper.make_node("Cos", ["x"], ["a"], name="cos"),
                 helper.make_node("GroupNormalization", ["a", "s", "b"], ["y"], name="gn",
                                  num_groups=1)],
                {"s": np.ones(2, np.float32), "b": np.zeros(2, np.float32)}, [1, 2, 4, 4]),
     "error: cannot import: unsupported ONNX operators Cos (node 'cos'); "
     "GroupNormalization (node 'gn')"),
    ("truncated.onnx", _valid_bytes()[:60],
     "error: not a readable ONNX model (truncated or another format)"),
    ("cycle.onnx", _cycle_model(),
     "error: the ONNX graph has a cycle: 'first' -> 'second' -> 'first'"),
    ("missing.onnx", make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], {},
                                [1, 3, 8, 8]),
     "error: Conv node 'c' reads 'w', which is neither a graph input, an initializer nor "
     "any node's output (a missing initializer?)"),
    ("empty.onnx", b"", "error: empty file, not an ONNX model"),
])
def test_bad_files_exit_2_with_one_message(cli, tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    r = cli("report", path)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: error: ")
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def test_report_and_check_on_an_exported_file(cli, exported):
    _, path = exported["TinyResNet"]
    r = cli("check", path)
    assert r.returncode == 0, r.stderr
    # input, stem conv + relu, 5 layers per block + the downsample conv, pool, flatten, fc
    assert "ok: TinyResNet: 16 layers, input 3x32x32, output 10" in r.stdout
    r = cli("report", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    totals = json.loads(r.stdout)["totals"]
    assert (totals["params"], totals["macs"]) == (19850, T.TINY_RESNET_MACS)


def test_external_data_file_is_read(tmp_path):
    g = cnnir.load("cifar_small")
    path = str(tmp_path / "ext.onnx")
    save(to_onnx(g, mode="random"), path, external_data=True)
    assert os.path.exists(path + ".data")
    h = cnnir.load(path)
    x = RNG.standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert_close(run_ir(h, x), run_ort(path, x))
