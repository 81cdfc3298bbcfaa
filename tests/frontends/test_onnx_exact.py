"""Issue 21: valid ONNX files that cnnir imported without complaint and then computed
something else.  Each case is a small model built here; the import either computes
what onnxruntime computes on the original (through cnnir's PyTorch backend and its
re-emitted ONNX), or what the ONNX spec's formula gives in numpy where onnxruntime
refuses the model, or it is refused with a message naming the node."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_cases import agree, both_backends, make_model, run_ort

from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.errors import CnnirError, FrontendError
from cnnir.frontends.onnx_import import from_onnx_model

RNG = np.random.default_rng(21)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def refused(model, *parts: str) -> str:
    with pytest.raises(CnnirError) as info:
        from_onnx_model(model)
    msg = str(info.value)
    assert isinstance(info.value, FrontendError)
    for p in parts:
        assert p in msg, msg
    assert "np.int" not in msg and "np.float" not in msg, msg
    return msg


# --------------------------------------------------------------------------- 1. LRN


def lrn_spec(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """The ONNX spec's LRN: channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    for i in range(c):
        sq[:, i] = (x[:, max(0, i - lo):min(c, i + hi + 1)].astype(np.float64) ** 2).sum(1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


def lrn_model(size):
    return make_model([helper.make_node("LRN", ["x"], ["y"], name="lrn", size=size, alpha=0.5,
                                        beta=0.75, bias=1.0)], {}, ["N", 6, 3, 3])


@pytest.mark.parametrize("size", [2, 4])
def test_lrn_of_even_size_is_refused_its_window_is_not_pytorchs(size):
    lo, hi = (size - 1) // 2, size // 2
    refused(lrn_model(size), "LRN node 'lrn'", f"size={size}", f"c-{lo}..c+{hi}")
    # the refusal is needed: PyTorch's window (cnnir's lrn) computes something else
    x = 2 * w(2, 6, 3, 3)
    pytorch_window = lrn_spec(x[:, ::-1], size, 0.5, 0.75, 1.0)[:, ::-1]
    assert np.abs(pytorch_window - lrn_spec(x, size, 0.5, 0.75, 1.0)).max() > 0.01


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_of_odd_size_computes_the_spec_formula(size):
    g = from_onnx_model(lrn_model(size))
    assert g.op("lrn") == O.LocalResponseNorm(size, 0.5, 0.75, 1.0)
    x = 2 * w(2, 6, 3, 3)
    both_backends(g, x, lrn_spec(x, size, 0.5, 0.75, 1.0))


# --------------------------------------------------------------------------- 2. Add bias


def conv_add(const_shape, shape=(4, 4, 4)):
    return make_model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                       helper.make_node("Add", ["c", "b"], ["y"], name="bias")],
                      {"w": w(shape[0], 3, 1, 1), "b": w(*const_shape)}, ["N", 3, 4, 4])


@pytest.mark.parametrize("const_shape", [(4, 1, 1), (1, 4, 1, 1)])
def test_a_constant_varying_along_channels_only_folds_as_the_conv_bias(const_shape):
    g = agree(conv_add(const_shape), (3, 4, 4))
    assert [g.op(n).kind for n in g.nodes()] == ["input", "conv2d"] and g.op("conv").bias
    assert analyze(g).params == 4 * 3 + 4


@pytest.mark.parametrize("const_shape", [(1,), (1, 1, 1, 1), ()])
def test_a_single_value_added_stays_a_scale_of_one_parameter(const_shape):
    """Folded into the conv's bias it would count 4 parameters for the file's 1."""
    g = agree(conv_add(const_shape), (3, 4, 4))
    assert [g.op(n).kind for n in g.nodes()] == ["input", "conv2d", "scale"]
    assert analyze(g).params == 4 * 3 + 1


@pytest.mark.parametrize("const_shape", [(4, 1), (4,), (1, 4, 4), (1, 1, 4, 1), (2, 4, 1, 1),
                                         (1, 1, 1, 1, 1)])
def test_a_constant_varying_along_another_axis_is_refused(const_shape):
    model = conv_add(const_shape)
    run_ort(model, w(2 if const_shape[:1] == (2,) else 1, 3, 4, 4))  # a valid model
    refused(model, "Add node 'bias'", f"shape {list(const_shape)}", "channel axis alone")


# --------------------------------------------------------------------------- 3. Gemm C


def gemm(c_shape, batch=2):
    return make_model([helper.make_node("Gemm", ["x", "b", "c"], ["y"], name="fc", transB=1,
                                        beta=0.5)], {"b": w(5, 6), "c": w(*c_shape)},
                      [batch, 6])


@pytest.mark.parametrize("c_shape", [(5,), (1, 5), (1,), (1, 1)])
def test_gemm_bias_per_output(c_shape):
    g = agree(gemm(c_shape), (6,))
    assert g.op("fc") == O.Linear(5, True)


@pytest.mark.parametrize("c_shape", [(2, 1), (2, 5)])
def test_gemm_bias_per_sample_is_refused(c_shape):
    run_ort(gemm(c_shape), w(2, 6))  # valid for a batch of 2
    refused(gemm(c_shape), "Gemm node 'fc'", f"C of shape {list(c_shape)}",
            "no per-output bias")


# --------------------------------------------------------------------------- 4, 5. training


def bn(training):
    return make_model([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"],
                                        name="bn", training_mode=training)],
                      {"g": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.5},
                      ["N", 3, 4, 4], opset=15)


def test_batchnorm_in_training_mode_is_refused():
    refused(bn(1), "BatchNormalization node 'bn'", "training_mode=1", "batch's own statistics")
    assert agree(bn(0), (3, 4, 4)).op("bn") == O.BatchNorm2d()


def dropout(training):
    return make_model([helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")],
                      {"r": np.array(0.3, np.float32), "t": np.array(training)}, ["N", 8])


def test_dropout_in_training_mode_is_refused():
    refused(dropout(True), "Dropout node 'drop'", "training_mode is true")
    assert agree(dropout(False), (8,)).op("drop") == O.Dropout(0.3)


# --------------------------------------------------------------------------- 6, 7, 8. Resize


def resize(opset=19, scales=None, sizes=None, shape=(2, 2, 3), **attrs):
    inits = {}
    ins = ["x", "", "", ""]
    if scales is not None:
        inits["sc"], ins[2] = np.array(scales, np.float32), "sc"
    if sizes is not None:
        inits["sz"], ins[3] = np.array(sizes, np.int64), "sz"
    attrs.setdefault("mode", "nearest")
    return make_model([helper.make_node("Resize", [i for i in ins if i is not None], ["y"],
                                        name="up", **attrs)], inits, ["N", *shape], opset=opset)


@pytest.mark.parametrize("policy, sizes, scale", [
    ("not_larger", [4, 9], (2, 2)),    # min(4/2, 9/3) = 2: 4x6, not 4x9
    ("not_smaller", [4, 5], (2, 2)),   # max(4/2, 5/3) = 2: 4x6, not 4x5
    ("not_larger", [6, 6], (2, 2)),    # min(3, 2) = 2
    ("stretch", [4, 9], (2, 3)),
])
def test_resize_keep_aspect_ratio_policy(policy, sizes, scale):
    g = agree(resize(sizes=sizes, axes=[2, 3], keep_aspect_ratio_policy=policy), (2, 2, 3))
    assert g.op("up") == O.Upsample(scale, "nearest")


def test_resize_keep_aspect_ratio_to_a_fractional_scale_is_refused():
    refused(resize(sizes=[5, 9], axes=[2, 3], keep_aspect_ratio_policy="not_larger"),
            "Resize node 'up'", "keep_aspect_ratio_policy='not_larger'", "scale 2.5")


@pytest.mark.parametrize("axes, values, scale", [([3, 2], [3, 2], (2, 3)),
                                                 ([2, 3], [2, 3], (2, 3)),
                                                 ([-1, -2], [2, 1], (1, 2)),
                                                 ([3], [3], (1, 3))])
def test_resize_with_axes(axes, values, scale):
    g = agree(resize(scales=values, axes=axes), (2, 2, 3))
    assert g.op("up") == O.Upsample(scale, "nearest")
    sizes = [d * s for d, s in zip((2, 3), scale)]
    by_sizes = resize(sizes=[sizes[a % 4 - 2] for a in axes], axes=axes)
    assert agree(by_sizes, (2, 2, 3)).op("up") == O.Upsample(scale, "nearest")


def test_resize_messages_print_plain_numbers():
    refused(resize(scales=[2, 3], axes=[0, 3]), "Resize node 'up'", "scales [2, 3] (axes [0, 3])")
    refused(resize(scales=[1, 1, 1.5, 2]), "scales [1, 1, 1.5, 2]")
    refused(resize(sizes=[1, 2, 3, 3]), "sizes [1, 2, 3, 3]")


@pytest.mark.parametrize("coord", ["half_pixel", "pytorch_half_pixel", "half_pixel_symmetric",
                                   "align_corners"])
def test_resize_linear_coordinate_modes(coord):
    g = agree(resize(scales=[2, 3], axes=[2, 3], mode="linear",
                     coordinate_transformation_mode=coord), (2, 2, 3))
    assert g.op("up") == O.Upsample((2, 3), "bilinear", coord == "align_corners")


def test_resize_linear_that_reweights_the_edges_is_refused():
    refused(resize(scales=[2, 2], axes=[2, 3], mode="linear", exclude_outside=1),
            "Resize node 'up'", "exclude_outside=1")


def test_reduce_mean_message_prints_plain_axes():
    model = make_model([helper.make_node("ReduceMean", ["x", "ax"], ["y"], name="mean")],
                       {"ax": np.array([1, 3], np.int64)}, ["N", 2, 3, 3], opset=18)
    refused(model, "ReduceMean node 'mean'", "axes [1, 3]")


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype, name", [(TensorProto.UINT8, "uint8"),
                                         (TensorProto.FLOAT16, "float16"),
                                         (TensorProto.DOUBLE, "double")])
def test_an_input_that_is_not_float32_is_refused(dtype, name):
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], {}, ["N", 3, 4, 4],
                       in_type=dtype)
    refused(model, f"input 'x' is {name}", "float32 inputs only")


@pytest.mark.parametrize("to, name", [(TensorProto.FLOAT16, "float16"),
                                      (TensorProto.DOUBLE, "double"),
                                      (TensorProto.UINT8, "uint8")])
def test_a_cast_that_changes_the_values_or_dtype_is_refused(to, name):
    model = make_model([helper.make_node("Cast", ["x"], ["c"], name="cast", to=to),
                        helper.make_node("Cast", ["c"], ["y"], name="back", to=1)], {},
                       ["N", 3])
    refused(model, "Cast node 'cast'", f"to {name}")


def test_a_cast_to_float_is_the_identity():
    model = make_model([helper.make_node("Cast", ["x"], ["c"], name="cast", to=1),
                        helper.make_node("Relu", ["c"], ["y"], name="relu")], {}, ["N", 3])
    g = agree(model, (3,))
    assert [g.op(n).kind for n in g.nodes()] == ["input", "relu"]


# --------------------------------------------------------------------------- unknown attributes


def test_an_attribute_no_rule_knows_is_refused_by_name():
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="relu", future=1)], {},
                       ["N", 3])
    refused(model, "Relu node 'relu'", "'future' unknown")


def test_conv_transpose_kernel_shape_must_match_the_weight():
    model = make_model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up",
                                         kernel_shape=[2, 2])], {"w": w(3, 2, 3, 3)},
                       ["N", 3, 4, 4])
    refused(model, "ConvTranspose node 'up'", "kernel_shape [2, 2] disagrees")


def test_an_attribute_of_a_later_opset_is_refused():
    """``axes`` on a Resize of opset 17 (it came in 18) is not read with opset 18's meaning."""
    refused(resize(opset=17, scales=[2, 3], axes=[2, 3]), "Resize node 'up'",
            "'axes' not in Resize's spec at the model's opset 17")


@pytest.mark.parametrize("opset, op, from_attr", [(7, "Upsample", True), (9, "Upsample", False),
                                                  (10, "Resize", False)])
def test_old_opset_nearest_upsampling(opset, op, from_attr):
    scales = [1.0, 1.0, 2.0, 3.0]
    node = (helper.make_node(op, ["x"], ["y"], name="up", mode="nearest", scales=scales)
            if from_attr else helper.make_node(op, ["x", "sc"], ["y"], name="up", mode="nearest"))
    model = make_model([node], {} if from_attr else {"sc": np.array(scales, np.float32)},
                       ["N", 2, 2, 3], opset=opset)
    assert agree(model, (2, 2, 3)).op("up") == O.Upsample((2, 3), "nearest")
    linear = make_model([helper.make_node(op, ["x", "sc"], ["y"], name="up", mode="linear")],
                        {"sc": np.array(scales, np.float32)}, ["N", 2, 2, 3], opset=max(9, opset))
    refused(linear, f"{op} node 'up'", "linear resize with coordinate_transformation_mode="
            "'asymmetric'")
