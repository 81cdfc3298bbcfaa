"""ONNX backend: every op kind against PyTorch's definition, the full checker, ONNX
shape inference vs cnnir's shapes, names / doc strings / metadata, batch axis,
weights, external data and atomic writes, ``cnnir compile --to onnx``, and the zoo
against the PyTorch backend (unfused and fused)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy_refs import ref_channel_conv1d, ref_radix_softmax, ref_space_to_depth
from onnx import numpy_helper

import cnnir
from cnnir import ops as O
from cnnir import zoo
from cnnir.backends import onnx_export
from cnnir.backends.onnx_export import bin_matrix, save, to_onnx
from cnnir.errors import BackendError, UsageError
from cnnir.ir import Graph
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.weights import init_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def chain(shape: tuple[int, ...], *ops: O.Op, name: str = "t") -> Graph:
    """``input -> ops[0] -> ops[1] ...`` with shapes inferred."""
    g = Graph(name)
    prev = g.add("input", O.Input(shape))
    for i, op in enumerate(ops):
        prev = g.add(f"{op.kind}{i}", op, [prev])
    g.outputs = [prev]
    return infer_shapes(g)


def _branches() -> Graph:
    g = Graph("branches")
    x = g.add("input", O.Input((4, 6, 6)))
    a = g.add("a", O.Conv2d(3, 1), [x])
    b = g.add("b", O.Conv2d(5, 3, padding=1), [x])
    c = g.add("c", O.MaxPool2d(3, 1, 1), [x])
    g.outputs = [g.add("cat", O.Concat(), [a, b, c])]
    return infer_shapes(g)


def _residual() -> Graph:
    g = Graph("residual")
    x = g.add("input", O.Input((4, 5, 5)))
    y = g.add("conv", O.Conv2d(4, 3, padding=1), [x])
    y = g.add("drop", O.Dropout(0.3), [y])
    s = g.add("add", O.Add(), [y, x])
    g.outputs = [g.add("twice", O.Add(), [s, s])]
    return infer_shapes(g)


def _squeeze_excite() -> Graph:
    g = Graph("se")
    x = g.add("input", O.Input((6, 4, 4)))
    p = g.add("pool", O.GlobalAvgPool(), [x])
    p = g.add("fc1", O.Conv2d(3, 1), [p])
    p = g.add("act", O.ReLU(), [p])
    p = g.add("fc2", O.Conv2d(6, 1), [p])
    p = g.add("gate", O.Sigmoid(), [p])
    g.outputs = [g.add("scale", O.Mul(), [x, p])]
    return infer_shapes(g)


def _two_outputs() -> Graph:
    g = Graph("two_outputs")
    x = g.add("input", O.Input((3, 6, 6)))
    c = g.add("conv", O.Conv2d(4, 3), [x])
    i = g.add("ident", O.Identity(), [c])
    r = g.add("relu", O.ReLU(), [i])
    d = g.add("drop", O.Dropout(0.5), [r])
    g.outputs = [d, c]
    return infer_shapes(g)


def _sum_mean() -> Graph:
    g = Graph("sum_mean")
    x = g.add("input", O.Input((4, 5, 5)))
    a = g.add("a", O.Conv2d(4, 3, padding=1), [x])
    b = g.add("b", O.Conv2d(4, 1), [x])
    gate = g.add("gate", O.GlobalAvgPool(), [x])
    s = g.add("sum", O.Sum(), [a, b, x, gate])
    m = g.add("mean", O.Mean(), [s, a, b])
    g.outputs = [g.add("drop", O.DropPath(0.3), [m])]
    return infer_shapes(g)


ACTS = [O.ReLU(), O.LeakyReLU(0.2), O.ReLU6(), O.Sigmoid(), O.HardSigmoid(), O.Tanh(),
        O.HardSwish(), O.SiLU(), O.GELU()]
BN = O.BatchNorm2d(eps=1e-3)

#: id -> builder; inputs are drawn with standard deviation 4 so that clamps saturate
CASES: dict[str, Callable[[], Graph]] = {
    "conv": lambda: chain((3, 8, 8), O.Conv2d(8, 3, padding=1)),
    "conv_asymmetric_pad": lambda: chain((3, 7, 8), O.Conv2d(4, (2, 3), padding=(0, 1, 1, 2))),
    "conv_stride_dilation_groups_nobias": lambda: chain(
        (4, 11, 9), O.Conv2d(8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False)),
    "conv_depthwise": lambda: chain((6, 7, 7), O.Conv2d(6, 3, stride=2, padding=1, groups=6)),
    "conv_transpose": lambda: chain(
        (4, 5, 6), O.ConvTranspose2d(6, 3, stride=2, padding=1, output_padding=1)),
    "conv_transpose_groups_dilation_nobias": lambda: chain(
        (4, 4, 4), O.ConvTranspose2d(6, 3, stride=(1, 2), padding=(2, 1), dilation=2, groups=2,
                                     bias=False)),
    "batchnorm": lambda: chain((5, 4, 4), BN),
    "lrn_odd": lambda: chain((7, 4, 4), O.LocalResponseNorm(5, alpha=0.1, beta=0.75, k=2.0)),
    "lrn_even": lambda: chain((7, 4, 4), O.LocalResponseNorm(4, alpha=0.2, beta=0.6, k=1.5)),
    "layernorm2d": lambda: chain((6, 4, 5), O.LayerNorm2d(1e-6)),
    "act_gelu_tanh": lambda: chain((3, 5, 5), O.GELU("tanh")),
    **{f"act_{a.kind}": (lambda a=a: chain((3, 5, 5), a)) for a in ACTS},
    "softmax_map": lambda: chain((5, 3, 3), O.Softmax()),
    "softmax_flat": lambda: chain((3, 4, 4), O.Flatten(), O.Linear(7), O.Softmax()),
    "maxpool": lambda: chain((3, 8, 8), O.MaxPool2d(2, 2)),
    "maxpool_ceil_dropped_window": lambda: chain((2, 5, 5), O.MaxPool2d(2, 2, 1, ceil_mode=True)),
    "maxpool_ceil_overhang": lambda: chain((2, 6, 7), O.MaxPool2d(3, 2, ceil_mode=True)),
    "avgpool_pad_include": lambda: chain((2, 6, 6), O.AvgPool2d(3, 2, 1)),
    "avgpool_pad_exclude": lambda: chain(
        (2, 6, 6), O.AvgPool2d(3, 2, 1, count_include_pad=False)),
    "avgpool_ceil_overhang": lambda: chain((2, 6, 7), O.AvgPool2d(3, 2, ceil_mode=True)),
    "avgpool_ceil_pad": lambda: chain((2, 6, 6), O.AvgPool2d(3, 2, 1, ceil_mode=True)),
    "avgpool_ceil_no_extra_window": lambda: chain((2, 5, 5), O.AvgPool2d(3, 2, 1, ceil_mode=True)),
    "avgpool_ceil_pad_exclude": lambda: chain(
        (2, 6, 6), O.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    "adaptive_to_1x1": lambda: chain((4, 5, 7), O.AdaptiveAvgPool2d(1)),
    "adaptive_divisible": lambda: chain((4, 8, 6), O.AdaptiveAvgPool2d((4, 3))),
    "adaptive_overlapping": lambda: chain((4, 7, 10), O.AdaptiveAvgPool2d((3, 4))),
    "adaptive_upsampling": lambda: chain((4, 2, 3), O.AdaptiveAvgPool2d(7)),
    "global_avgpool": lambda: chain((4, 5, 6), O.GlobalAvgPool()),
    "upsample_nearest": lambda: chain((3, 3, 4), O.Upsample((2, 3))),
    "upsample_bilinear": lambda: chain((3, 3, 4), O.Upsample(2, "bilinear")),
    "upsample_bilinear_align_corners": lambda: chain(
        (3, 3, 4), O.Upsample((3, 2), "bilinear", align_corners=True)),
    "flatten_linear": lambda: chain((3, 4, 4), O.Flatten(), O.Linear(10)),
    "linear_nobias_flat_input": lambda: chain((12,), O.Linear(5, bias=False), O.Tanh()),
    "concat": _branches,
    "add_dropout": _residual,
    "mul_broadcast": _squeeze_excite,
    "identity_outputs": _two_outputs,
    "sum_mean_drop_path": _sum_mean,
    "scale_per_channel_bias": lambda: chain((3, 4, 4), O.Scale(bias=True)),
    "scale_scalar_divide": lambda: chain((3, 4, 4), O.Scale(False, divide=True)),
    "scale_bias_only_flat": lambda: chain((3, 2, 2), O.Flatten(), O.Scale(scale=False, bias=True)),
    "pad_channels_and_spatial": lambda: chain((3, 4, 5), O.Pad((1, 0, 2, 3), (2, 1), 0.5)),
    "pad_channels_then_conv": lambda: chain((3, 4, 4), O.Pad(0, (0, 5)), O.Conv2d(4, 3)),
    "fused_bn_relu": lambda: chain((3, 6, 6), O.FusedConv2d(
        O.Conv2d(5, 3, padding=1, bias=False), BN, O.ReLU())),
    "fused_relu6_only": lambda: chain((3, 6, 6), O.FusedConv2d(O.Conv2d(5, 3), None, O.ReLU6())),
    "fused_bn_no_act": lambda: chain((3, 6, 6), O.FusedConv2d(
        O.Conv2d(5, 3, stride=2, groups=1), BN, None)),
    "fused_silu": lambda: chain((4, 6, 6), O.FusedConv2d(
        O.Conv2d(4, 3, padding=1, groups=2), BN, O.SiLU())),
    "slice_channels": lambda: chain((6, 4, 5), O.Slice((2, 5))),
    "slice_crop": lambda: chain((3, 9, 8), O.Slice(None, (2, 7), (1, 5))),
    "slice_all_axes": lambda: chain((6, 9, 8), O.Slice((1, 4), (0, 3), (5, 8))),
    "slice_whole": lambda: chain((3, 4, 4), O.Conv2d(4, 1), O.Slice()),
    "channel_shuffle": lambda: chain((12, 3, 4), O.Conv2d(12, 1), O.ChannelShuffle(3)),
    "space_to_depth": lambda: chain((3, 8, 12), O.Conv2d(5, 1), O.SpaceToDepth(4)),
    "channel_conv1d": lambda: chain((6, 4, 4), O.GlobalAvgPool(), O.ChannelConv1d(5, 2, True)),
    "channel_conv1d_valid": lambda: chain((9, 1, 1), O.ChannelConv1d(3, 0)),
    "radix_softmax": lambda: chain((12, 3, 2), O.Conv2d(12, 1), O.RadixSoftmax(2, 3)),
}


# --------------------------------------------------------------------------- reference


def torch_reference(graph: Graph, weights: dict, x: np.ndarray) -> list[np.ndarray]:
    """The graph's outputs computed with ``torch.nn.functional``, in float64."""
    import torch
    import torch.nn.functional as F

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, np.float64))

    def act(op: O.Op, v: torch.Tensor) -> torch.Tensor:
        fns = {
            O.ReLU: F.relu, O.ReLU6: F.relu6, O.Sigmoid: torch.sigmoid,
            O.HardSigmoid: F.hardsigmoid, O.Tanh: torch.tanh, O.HardSwish: F.hardswish,
            O.SiLU: F.silu,
        }
        if isinstance(op, O.GELU):
            return F.gelu(v, approximate=op.approximate)
        if isinstance(op, O.LeakyReLU):
            return F.leaky_relu(v, op.negative_slope)
        return fns[type(op)](v)

    def conv(op: O.Conv2d, v: torch.Tensor, w: dict) -> torch.Tensor:
        top, left, bottom, right = op.padding
        v = F.pad(v, (left, right, top, bottom))
        b = t(w["bias"]) if "bias" in w else None
        return F.conv2d(v, t(w["weight"]), b, op.stride, 0, op.dilation, op.groups)

    def bn(op: O.BatchNorm2d, v: torch.Tensor, w: dict) -> torch.Tensor:
        return F.batch_norm(v, t(w["running_mean"]), t(w["running_var"]), t(w["weight"]),
                            t(w["bias"]), False, 0.0, op.eps)

    def sym(p: tuple[int, int, int, int]) -> tuple[int, int]:
        assert p[0] == p[2] and p[1] == p[3], "PyTorch pools take symmetric padding"
        return (p[0], p[1])

    vals: dict[str, torch.Tensor] = {}
    for n in graph.nodes():
        op = graph.op(n)
        ins = [vals[s] for s in graph.inputs(n)]
        w = weights.get(n, {})
        if isinstance(op, O.Input):
            y = t(x)
        elif isinstance(op, O.Conv2d):
            y = conv(op, ins[0], w)
        elif isinstance(op, O.FusedConv2d):
            y = conv(op.conv, ins[0], w)
            y = y if op.act is None else act(op.act, y)
        elif isinstance(op, O.ConvTranspose2d):
            b = t(w["bias"]) if "bias" in w else None
            y = F.conv_transpose2d(ins[0], t(w["weight"]), b, op.stride, op.padding,
                                   op.output_padding, op.groups, op.dilation)
        elif isinstance(op, O.BatchNorm2d):
            y = bn(op, ins[0], w)
        elif isinstance(op, O.LocalResponseNorm):
            y = F.local_response_norm(ins[0], op.size, op.alpha, op.beta, op.k)
        elif isinstance(op, O.LayerNorm2d):
            y = F.layer_norm(ins[0].permute(0, 2, 3, 1), ins[0].shape[1:2], t(w["weight"]),
                             t(w["bias"]), op.eps).permute(0, 3, 1, 2)
        elif isinstance(op, O.Activation):
            y = act(op, ins[0])
        elif isinstance(op, O.Softmax):
            y = F.softmax(ins[0], dim=1)
        elif isinstance(op, O.MaxPool2d):
            y = F.max_pool2d(ins[0], op.kernel, op.stride, sym(op.padding),
                             ceil_mode=op.ceil_mode)
        elif isinstance(op, O.AvgPool2d):
            y = F.avg_pool2d(ins[0], op.kernel, op.stride, sym(op.padding),
                             ceil_mode=op.ceil_mode, count_include_pad=op.count_include_pad)
        elif isinstance(op, O.AdaptiveAvgPool2d):
            y = F.adaptive_avg_pool2d(ins[0], op.output_size)
        elif isinstance(op, O.GlobalAvgPool):
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif isinstance(op, O.Upsample):
            y = F.interpolate(ins[0], scale_factor=op.scale, mode=op.mode,
                              align_corners=op.align_corners if op.mode == "bilinear" else None)
        elif isinstance(op, (O.Dropout, O.Identity)):
            y = ins[0]
        elif isinstance(op, O.Flatten):
            y = torch.flatten(ins[0], 1)
        elif isinstance(op, O.Linear):
            y = F.linear(ins[0], t(w["weight"]), t(w["bias"]) if "bias" in w else None)
        elif isinstance(op, O.Concat):
            y = torch.cat(ins, dim=1)
        elif isinstance(op, O.Add):
            y = ins[0] + ins[1]
        elif isinstance(op, O.Mul):
            y = ins[0] * ins[1]
        elif isinstance(op, O.Sum):
            y = sum(ins[1:], ins[0])
        elif isinstance(op, O.Mean):
            y = torch.stack(torch.broadcast_tensors(*ins)).mean(0)
        elif isinstance(op, O.DropPath):
            y = ins[0]
        elif isinstance(op, O.Scale):
            y = ins[0]
            if "weight" in w:
                y = y / t(w["weight"]) if op.divide else y * t(w["weight"])
            if "bias" in w:
                y = y + t(w["bias"])
        elif isinstance(op, O.Pad):
            top, left, bottom, right = op.padding
            y = F.pad(ins[0], (left, right, top, bottom, *op.channels), value=op.value)
        elif isinstance(op, O.Slice):
            (c0, c1), (h0, h1), (w0, w1) = [r or (0, d) for r, d in zip(
                op.ranges, ins[0].shape[1:])]
            y = ins[0][:, c0:c1, h0:h1, w0:w1]
        elif isinstance(op, O.ChannelShuffle):  # channel i*g + j is channel j*n + i
            c = ins[0].shape[1]
            n_ = c // op.groups
            y = ins[0][:, [j * n_ + i for i in range(n_) for j in range(op.groups)]]
        elif isinstance(op, O.SpaceToDepth):
            y = t(ref_space_to_depth(ins[0].numpy(), op.block))
        elif isinstance(op, O.ChannelConv1d):
            y = t(ref_channel_conv1d(ins[0].numpy(), op, w))
        elif isinstance(op, O.RadixSoftmax):
            y = t(ref_radix_softmax(ins[0].numpy(), op))
        else:  # pragma: no cover - a new op kind needs a reference
            raise NotImplementedError(op.kind)
        vals[n] = y
    return [vals[o].numpy() for o in graph.outputs]


# --------------------------------------------------------------------------- helpers


def ort_session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    data = model if isinstance(model, str) else model.SerializeToString()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def ort_run(model: onnx.ModelProto | str, x: np.ndarray) -> list[np.ndarray]:
    sess = ort_session(model)
    return sess.run(None, {sess.get_inputs()[0].name: x})


def assert_close(got: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """max |got - ref| <= 1e-4 of the reference's scale (its largest magnitude)."""
    assert got.shape == ref.shape, what
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
    assert scale > 0, f"{what}: the reference output is all zeros, the test would be blind"
    assert diff <= 1e-4 * scale, f"{what}: max diff {diff:.3g}, scale {scale:.3g}"


def dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value.type.tensor_type.shape.dim]


def inferred(model: onnx.ModelProto) -> dict[str, list[int | str]]:
    """ONNX shape inference (strict) on a copy without the declared output shapes."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    for out in bare.graph.output:
        out.type.tensor_type.ClearField("shape")
    inf = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True)
    return {v.name: dims(v) for v in [*inf.graph.value_info, *inf.graph.output]}


def assert_shapes_agree(graph: Graph, model: onnx.ModelProto, batch: int | str = "N") -> int:
    """Every IR node's ONNX tensor has cnnir's shape; returns how many were compared."""
    shapes = inferred(model)
    compared = 0
    for n in graph.nodes():
        op = graph.op(n)
        if isinstance(op, O.Input):
            continue
        if isinstance(op, (O.Dropout, O.Identity, O.DropPath)) and n not in shapes:
            continue  # omitted: its users read its input, whose shape is compared
        assert n in shapes, f"no inferred shape for '{n}' ({op.kind})"
        got = shapes[n]
        # opset-17 Resize scales the batch axis by 1.0, which inference leaves unnamed
        if isinstance(batch, str) and isinstance(got[0], str) and got[0].startswith("unk__"):
            got = [batch, *got[1:]]
        assert got == [batch, *graph.shape(n)], f"'{n}': onnx {shapes[n]}, cnnir {graph.shape(n)}"
        compared += 1
    return compared


def sample(graph: Graph, batch: int = 2, seed: int = 1, std: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (std * rng.standard_normal((batch, *graph.input_shape))).astype(np.float32)


# --------------------------------------------------------------------------- every op kind


def test_cases_cover_every_op_kind():
    seen = {type(chain_graph.op(n)) for build in CASES.values()
            for chain_graph in [build()] for n in chain_graph.nodes()}
    assert set(O.OP_TYPES.values()) - seen == set()
    assert set(onnx_export.RULES.keys()) == set(O.OP_TYPES.values())


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_pytorch_and_checker(case):
    graph = CASES[case]()
    weights = init_weights(graph, seed=3, mode="random")
    model = to_onnx(graph, weights=weights)
    onnx.checker.check_model(model, full_check=True)
    assert assert_shapes_agree(graph, model) >= 1
    x = sample(graph)
    got = ort_run(model, x)
    ref = torch_reference(graph, weights, x)
    assert len(got) == len(ref) == len(graph.outputs)
    for g_out, r_out, name in zip(got, ref, graph.outputs):
        assert_close(g_out, r_out, f"{case}:{name}")


@pytest.mark.parametrize("case", ["act_gelu", "act_gelu_tanh", "layernorm2d"])
@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_and_layernorm_at_each_opset(case, opset):
    """GELU is the ``Gelu`` operator from opset 20 and PyTorch's decomposition before;
    LayerNorm2d is Transpose / LayerNormalization / Transpose at either."""
    graph = CASES[case]()
    weights = init_weights(graph, seed=3, mode="random")
    model = to_onnx(graph, weights=weights, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    if case == "layernorm2d":
        assert ops == ["Transpose", "LayerNormalization", "Transpose"]
    elif opset >= 20:
        assert ops == ["Gelu"]
    else:
        assert "Gelu" not in ops and ("Erf" in ops) == (case == "act_gelu")
    x = sample(graph)
    (got,) = ort_run(model, x)
    assert_close(got, torch_reference(graph, weights, x)[0], case)


def test_lrn_even_size_is_pytorchs_asymmetric_window():
    # one channel lit: with size 4 PyTorch's window for channel c is [c-2, c+1], so the
    # lit channel 3 lowers channels 2..5 and leaves channel 1 untouched
    graph = chain((7, 1, 1), O.LocalResponseNorm(4, alpha=4.0, beta=1.0, k=1.0))
    x = np.ones((1, 7, 1, 1), np.float32)
    x[0, 3] = 10.0
    (y,) = ort_run(to_onnx(graph), x)
    # denominator k + alpha/size * sum of squares in the window: 1 + sum
    expect = [1 / (1 + 2), 1 / (1 + 3), 1 / (1 + 103), 10 / (1 + 103), 1 / (1 + 103),
              1 / (1 + 103), 1 / (1 + 3)]
    np.testing.assert_allclose(y.reshape(-1), expect, rtol=1e-6)


def test_bin_matrix_is_pytorchs_adaptive_bins():
    # 7 -> 3: bins [0,3), [2,5), [4,7); 2 -> 7: every output reads one input
    np.testing.assert_allclose(bin_matrix(7, 3) * 3, [[1, 1, 1, 0, 0, 0, 0],
                                                      [0, 0, 1, 1, 1, 0, 0],
                                                      [0, 0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(bin_matrix(2, 7).argmax(axis=1), [0, 0, 0, 0, 1, 1, 1])


def test_adaptive_pool_lowering_by_case():
    kinds = {
        "adaptive_to_1x1": ["GlobalAveragePool"],
        "adaptive_divisible": ["AveragePool"],
        "adaptive_overlapping": ["MatMul", "MatMul"],
        "adaptive_upsampling": ["MatMul", "MatMul"],
    }
    for case, expect in kinds.items():
        model = to_onnx(CASES[case]())
        assert [n.op_type for n in model.graph.node] == expect, case
    pool = to_onnx(CASES["adaptive_divisible"]()).graph.node[0]
    attrs = {a.name: list(a.ints) for a in pool.attribute}
    assert attrs["kernel_shape"] == attrs["strides"] == [2, 2]


def test_ceil_mode_pools_become_end_padding():
    def lowered(case):
        model = to_onnx(CASES[case]())
        return [(n.op_type, {a.name: list(a.ints) or a.i for a in n.attribute
                             if a.name in ("pads", "count_include_pad")})
                for n in model.graph.node]

    # 5x5, k2 s2 p1: ceil gives 4 windows, the 4th would start in the end padding: 3
    assert lowered("maxpool_ceil_dropped_window") == [("MaxPool", {"pads": [1, 1, 1, 1]})]
    # 6x7, k3 s2: the ceil windows reach one cell past the input
    assert lowered("maxpool_ceil_overhang") == [("MaxPool", {"pads": [0, 0, 1, 0]})]
    assert lowered("avgpool_ceil_no_extra_window") == [
        ("AveragePool", {"pads": [1, 1, 1, 1], "count_include_pad": 1})]
    # counted padding is made explicit, the ceil overhang is not counted
    assert lowered("avgpool_ceil_pad") == [
        ("Pad", {}), ("AveragePool", {"pads": [0, 0, 1, 1], "count_include_pad": 0})]
    assert lowered("avgpool_ceil_pad_exclude") == [
        ("AveragePool", {"pads": [1, 1, 2, 2], "count_include_pad": 0})]


def test_fused_conv_is_conv_then_activation():
    model = to_onnx(CASES["fused_bn_relu"]())
    assert [(n.op_type, n.name) for n in model.graph.node] == [
        ("Conv", "fused_conv2d0"), ("Relu", "fused_conv2d0:relu")]
    assert list(model.graph.node[0].input[1:]) == ["fused_conv2d0.weight", "fused_conv2d0.bias"]
    assert model.graph.node[1].output[0] == "fused_conv2d0"


def test_dropout_and_identity_are_omitted_inside_the_graph():
    model = to_onnx(CASES["add_dropout"]())
    assert [n.op_type for n in model.graph.node] == ["Conv", "Add", "Add"]
    assert list(model.graph.node[1].input) == ["conv", "input"]
    # as graph outputs they become Identity nodes producing the output names
    model = to_onnx(CASES["identity_outputs"]())
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "Identity"]
    assert [o.name for o in model.graph.output] == ["drop", "conv"]


class Mystery(O.Op):
    kind: ClassVar[str] = "mystery"

    def infer(self, inputs):
        return inputs[0]


def test_unknown_op_is_a_located_backend_error():
    graph = chain((3, 4, 4), O.ReLU())
    graph.add("odd", dataclass(frozen=True)(Mystery)(), ["relu0"],
              loc=cnnir.SourceLoc("net.py", 7))
    graph.outputs = ["odd"]
    infer_shapes(graph)
    with pytest.raises(BackendError) as err:
        to_onnx(graph)
    assert str(err.value) == "net.py:7: error: onnx: no ONNX rule for op 'mystery' of layer 'odd'"


def test_a_refused_op_says_why():
    from cnnir.backends.onnx_export_rules import EXPORT

    @dataclass(frozen=True)
    class Warp(Mystery):
        kind: ClassVar[str] = "warp"

    EXPORT.refuse(Warp, "warping has no ONNX form yet")
    graph = chain((3, 4, 4), O.ReLU())
    graph.add("odd", Warp(), ["relu0"], loc=cnnir.SourceLoc("net.py", 9))
    graph.outputs = ["odd"]
    infer_shapes(graph)
    with pytest.raises(BackendError) as err:
        to_onnx(graph)
    assert str(err.value) == ("net.py:9: error: onnx: no ONNX rule for op 'warp' of layer "
                              "'odd': warping has no ONNX form yet")


# --------------------------------------------------------------------------- model contents


NET = '''\
from cnnir.dsl import model

@model(input=(3, 16, 16))
def tiny(x):
    x = x.conv(8, 3, padding=1).bn().relu()
    x = x.maxpool(2).global_avgpool().flatten()
    return x.linear(10)
'''


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(NET)
    return cnnir.load(str(path)), str(path)


def test_names_doc_strings_and_metadata(tiny):
    graph, path = tiny
    model = to_onnx(graph)
    names = [n.name for n in model.graph.node]
    assert names == [n for n in graph.nodes() if n != "input"]
    docs = {n.name: n.doc_string for n in model.graph.node}
    assert docs["conv1"] == f"{path}:5: x = x.conv(8, 3, padding=1).bn().relu()"
    assert docs["fc1"] == f"{path}:7: return x.linear(10)"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {"cnnir_version": cnnir.__version__, "source": path, "model": "tiny",
                    "input_shape": "3x16x16"}
    assert (model.producer_name, model.producer_version) == ("cnnir", cnnir.__version__)
    assert model.graph.name == "tiny"
    assert [o.version for o in model.opset_import] == [17]
    assert model.ir_version <= 13  # what onnxruntime 1.2x reads
    inits = sorted(t.name for t in model.graph.initializer)
    assert inits == ["bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.weight",
                     "conv1.bias", "conv1.weight", "fc1.bias", "fc1.weight"]


def test_zoo_doc_strings_quote_the_zoo_source_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = to_onnx(cnnir.load("alexnet", input=(3, 64, 64)))
    assert model.graph.node[0].doc_string == (
        "cnnir/zoo/alexnet.py:9: x = x.conv(64, 11, stride=4, padding=2).relu()"
        ".maxpool(3, stride=2)")


def test_dynamic_and_fixed_batch(tiny):
    graph, _ = tiny
    dyn = to_onnx(graph)
    assert dims(dyn.graph.input[0]) == ["N", 3, 16, 16]
    assert dims(dyn.graph.output[0]) == ["N", 10]
    for b in (1, 5):
        assert ort_run(dyn, sample(graph, b))[0].shape == (b, 10)
    fixed = to_onnx(graph, batch=3)
    assert dims(fixed.graph.input[0]) == [3, 3, 16, 16]
    assert assert_shapes_agree(graph, fixed, batch=3) == 7
    x = sample(graph, 3)
    np.testing.assert_array_equal(ort_run(fixed, x)[0], ort_run(dyn, x)[0])
    with pytest.raises(UsageError, match="batch must be 'dynamic' or a positive integer"):
        to_onnx(graph, batch=0)
    with pytest.raises(UsageError, match="opset must be an integer >= 17"):
        to_onnx(graph, opset=13)


def test_newer_opset(tiny):
    graph, _ = tiny
    model = to_onnx(graph, opset=19)
    onnx.checker.check_model(model, full_check=True)
    x = sample(graph)
    np.testing.assert_allclose(ort_run(model, x)[0], ort_run(to_onnx(graph), x)[0], rtol=1e-6)


def test_weights_dict_are_the_initializers(tiny):
    graph, _ = tiny
    weights = init_weights(graph, seed=9, mode="random")
    model = to_onnx(graph, weights=weights)
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node, params in weights.items():
        for key, value in params.items():
            np.testing.assert_array_equal(arrays[f"{node}.{key}"], value)
    # seeded weights are reproducible, and differ by seed
    a = {t.name: t.raw_data for t in to_onnx(graph, seed=4).graph.initializer}
    b = {t.name: t.raw_data for t in to_onnx(graph, seed=4).graph.initializer}
    c = {t.name: t.raw_data for t in to_onnx(graph, seed=5).graph.initializer}
    assert a == b and a["conv1.weight"] != c["conv1.weight"]


def test_weights_from_a_pytorch_module(tiny):
    import torch

    from cnnir.backends.pytorch import to_module

    graph, _ = tiny
    module = to_module(graph, seed=2, mode="random").eval()
    with torch.no_grad():  # weights of the module's own, unlike any seeded draw
        module.get_submodule("conv1").weight.mul_(-3.0)
    x = sample(graph)
    with torch.inference_mode():
        ref = module(torch.from_numpy(x)).double().numpy()
    assert_close(ort_run(to_onnx(graph, weights=module), x)[0], ref, "module weights")


def test_wrong_weight_shape_is_an_error(tiny):
    graph, _ = tiny
    weights = init_weights(graph)
    weights["conv1"]["weight"] = np.zeros((8, 3, 5, 5), np.float32)
    with pytest.raises(BackendError, match="'weight' has shape \\(8, 3, 5, 5\\), the layer needs"):
        to_onnx(graph, weights=weights)


# --------------------------------------------------------------------------- files


def test_save_plain_and_external(tiny, tmp_path):
    graph, _ = tiny
    model = to_onnx(graph)
    x = sample(graph)
    expect = ort_run(model, x)[0]
    plain = tmp_path / "plain.onnx"
    assert save(model, str(plain)) == [str(plain)]
    ext = tmp_path / "ext.onnx"
    assert save(model, str(ext), external_data=True) == [str(ext), str(ext) + ".data"]
    auto = tmp_path / "auto.onnx"
    assert save(model, str(auto), threshold=1) == [str(auto), str(auto) + ".data"]
    assert sorted(os.listdir(tmp_path)) == ["auto.onnx", "auto.onnx.data", "ext.onnx",
                                            "ext.onnx.data", "plain.onnx", "tiny.py"]
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    assert os.path.getsize(str(ext) + ".data") >= weights
    stored = onnx.load(str(ext), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.EXTERNAL and not t.raw_data
               for t in stored.graph.initializer)
    assert {e.value for t in stored.graph.initializer for e in t.external_data
            if e.key == "location"} == {"ext.onnx.data"}
    for path in (plain, ext, auto):
        onnx.checker.check_model(str(path), full_check=True)
        np.testing.assert_array_equal(ort_run(str(path), x)[0], expect)
    # the in-memory model was not turned into external references
    assert all(not t.external_data for t in model.graph.initializer)


def test_save_is_atomic(tiny, tmp_path, monkeypatch):
    graph, _ = tiny
    model = to_onnx(graph)
    path = tmp_path / "m.onnx"
    save(model, str(path), external_data=True)
    before = {p: (tmp_path / p).read_bytes() for p in ("m.onnx", "m.onnx.data")}

    def broken(*args, **kwargs):
        with open(os.path.join(os.path.dirname(args[1]), "m.onnx.data"), "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export.onnx, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        save(model, str(path), external_data=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.data", "tiny.py"]
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    with pytest.raises(UsageError, match="does not exist"):
        save(model, str(tmp_path / "nowhere" / "m.onnx"))


# --------------------------------------------------------------------------- the CLI


def test_compile_googlenet_example(cli, tmp_path):
    example = os.path.join(ROOT, "examples", "googlenet.py")
    r = cli("compile", example, "--to", "onnx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "wrote googlenet.onnx"
    assert os.listdir(tmp_path) == ["googlenet.onnx"]
    path = str(tmp_path / "googlenet.onnx")
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    graph = cnnir.load(example)
    assert assert_shapes_agree(graph, model) == len(graph) - 2  # less input and dropout
    out = ort_run(path, sample(graph, 1, std=1.0))[0]
    assert out.shape == (1, 1000)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)  # ends in a softmax
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["source"] == example and meta["model"] == "googlenet"


def test_compile_options(cli, tmp_path):
    out = tmp_path / "r.onnx"
    r = cli("compile", "resnet18", "--input", "3x32x32", "--to", "onnx", "-o", str(out),
            "--batch", "2", "--seed", "7", "--passes", "fuse-conv-bn-relu", "--external-data")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["r.onnx", "r.onnx.data"]
    model = onnx.load(str(out))
    assert dims(model.graph.input[0]) == [2, 3, 32, 32]
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert sum(n.op_type == "Conv" for n in model.graph.node) == 20
    assert ort_run(str(out), np.ones((2, 3, 32, 32), np.float32))[0].shape == (2, 1000)


def test_compile_goes_external_above_the_threshold(monkeypatch, tmp_path, capsys):
    from cnnir.cli import main

    # vgg19 (570 MB) is below protobuf's 2 GB; lower the bar to exercise the switch
    monkeypatch.setattr(onnx_export, "EXTERNAL_THRESHOLD", 100_000)
    out = str(tmp_path / "lenet.onnx")
    assert main(["compile", "lenet5", "--to", "onnx", "-o", out]) == 0
    assert capsys.readouterr().err == f"wrote {out}\n"
    assert sorted(os.listdir(tmp_path)) == ["lenet.onnx", "lenet.onnx.data"]
    assert os.path.getsize(out + ".data") >= 61_706 * 4
    onnx.checker.check_model(out, full_check=True)
    assert ort_run(out, np.ones((1, 1, 32, 32), np.float32))[0].shape == (1, 10)
    monkeypatch.setattr(onnx_export, "EXTERNAL_THRESHOLD", 300_000)
    out = str(tmp_path / "small.onnx")
    assert main(["compile", "lenet5", "--to", "onnx", "-o", out]) == 0
    assert not os.path.exists(out + ".data")


@pytest.mark.parametrize("argv, message", [
    (["--batch", "zero"], "error: --batch must be 'dynamic' or a positive integer, got 'zero'"),
    (["--batch", "0"], "error: --batch must be 'dynamic' or a positive integer, got '0'"),
])
def test_compile_bad_batch(cli, tmp_path, argv, message):
    r = cli("compile", "lenet5", "--to", "onnx", *argv, cwd=tmp_path)
    assert (r.returncode, r.stderr.strip(), os.listdir(tmp_path)) == (2, message, [])


def test_compile_with_a_state_dict(cli, tmp_path):
    import torch

    from cnnir.backends.pytorch import to_module

    graph = cnnir.load("cifar_small")
    module = to_module(graph, seed=5, mode="random").eval()
    torch.save(module.state_dict(), tmp_path / "w.pt")
    out = str(tmp_path / "c.onnx")
    r = cli("compile", "cifar_small", "--to", "onnx", "--weights", str(tmp_path / "w.pt"),
            "-o", out)
    assert r.returncode == 0, r.stderr
    x = sample(graph)
    with torch.inference_mode():
        ref = module(torch.from_numpy(x)).double().numpy()
    assert_close(ort_run(out, x)[0], ref, "--weights")
    # a state_dict of another model: one message, exit 2, nothing written
    torch.save(to_module(cnnir.load("lenet5")).state_dict(), tmp_path / "other.pt")
    r = cli("compile", "cifar_small", "--to", "onnx", "--weights", str(tmp_path / "other.pt"),
            "-o", str(tmp_path / "x.onnx"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {tmp_path / 'other.pt'} does not fit model 'cifar_small'")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "x.onnx")


def test_compile_refuses_too_many_params(cli, tmp_path):
    r = cli("compile", "lenet5", "--to", "onnx", "--max-params", "1000", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: model 'lenet5' has 61,706 weights, above --max-params "
                                "1,000; refusing to allocate them (raise --max-params to force)")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- the zoo

#: square input sizes tried, smallest first, to keep the zoo test fast
SMALL_SIZES = (32, 48, 64, 75, 96, 128, 188)  # 188: the unpadded U-Net's smallest


def reduced(name: str) -> Graph:
    """The zoo model at the smallest input size from SMALL_SIZES it accepts (else its own)."""
    from cnnir.errors import ShapeError

    default = cnnir.load(name)
    c, h = default.input_shape[0], default.input_shape[1]
    for size in SMALL_SIZES:
        if size >= h:
            break
        try:
            return cnnir.load(name, input=(c, size, size))
        except ShapeError:
            continue
    return default


def random_weights(graph: Graph, seed: int) -> dict:
    """Weights like ``init_weights(mode="random")`` (random biases and BatchNorm
    statistics, fan-scaled convs and linears), drawn uniformly in float32: the zoo holds
    over two billion weights and numpy's float64 normals would dominate the test's time."""
    from cnnir.weights import param_shapes

    rng = np.random.default_rng(seed)

    def uniform(shape, low, high):
        a = rng.random(shape, dtype=np.float32)
        a *= high - low
        a += low
        return a

    out = {}
    for n in graph.nodes():
        shapes = param_shapes(graph, n)
        if not shapes:
            continue
        op = graph.op(n)
        if isinstance(op, O.BatchNorm2d):
            c = shapes["weight"]
            out[n] = {"weight": uniform(c, 0.5, 1.5), "bias": uniform(c, -0.2, 0.2),
                      "running_mean": uniform(c, -0.2, 0.2), "running_var": uniform(c, 0.5, 1.5)}
            continue
        w = shapes["weight"]
        fan = w[1] if isinstance(op, O.Linear) else w[0] * w[2] * w[3]
        if isinstance(op, O.Conv2d):
            fan = w[1] * w[2] * w[3]  # fan-in keeps deep BN-free stacks in range
        a = float(np.sqrt(3.0 * (1.0 if isinstance(op, O.Linear) else 2.0) / fan))
        out[n] = {"weight": uniform(w, -a, a)}
        if "bias" in shapes:
            out[n]["bias"] = uniform(shapes["bias"], -0.1, 0.1)
    return out


def fast_run_all(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """Every output of :func:`fast_run`'s session, in the graph's order."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.add_session_config_entry("session.disable_prepacking", "1")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def fast_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime CPU without graph optimisation or weight prepacking (quick to load)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.add_session_config_entry("session.disable_prepacking", "1")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def weightless(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large initializers turned into typed graph inputs: the same
    graph for the checker and shape inference, without copying hundreds of MB."""
    out = onnx.ModelProto()
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    g = out.graph
    g.name = model.graph.name
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    for t in model.graph.initializer:
        if len(t.raw_data) <= 1024:  # small constants (pads, scales) stay data
            g.initializer.append(t)
        else:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    return out


def canonical(model: onnx.ModelProto) -> tuple:
    """The computation of a model with tensor and node names abstracted away."""
    ids: dict[str, int] = {}

    def ref(name: str) -> int:
        return ids.setdefault(name, len(ids))

    for v in model.graph.input:
        ref(v.name)
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for n in model.graph.node:
        args = tuple((ref(i), inits[i].raw_data if i in inits else None) for i in n.input)
        nodes.append((n.op_type, args, tuple(ref(o) for o in n.output),
                      tuple(a.SerializeToString() for a in n.attribute)))
    return tuple(nodes), tuple(ref(o.name) for o in model.graph.output)


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_onnxruntime_equals_pytorch_backend(name):
    """onnxruntime == the PyTorch backend on the same weights, unfused and fused.

    A fused model that folded no BatchNorm (conv + activation only) emits the very
    same ONNX computation as the unfused one (checked op by op, weights byte for
    byte), so it is compared structurally instead of being run a second time.
    """
    import torch

    from cnnir.backends.pytorch import to_module
    from cnnir.passes.manager import run_pipeline

    graph = reduced(name)
    weights = random_weights(graph, seed=len(name))
    x = sample(graph, batch=2, seed=11, std=1.0)
    module = to_module(graph, weights=weights).eval()
    with torch.inference_mode():
        out = module(torch.from_numpy(x))
    # a model with several outputs (googlenet_aux) returns a tuple: every one is compared
    refs = [t.double().numpy() for t in (out if isinstance(out, tuple) else (out,))]
    del module

    def check_all(model: onnx.ModelProto, what: str) -> None:
        got = fast_run_all(model, x)
        assert len(got) == len(refs), what
        for k, (g, r) in enumerate(zip(got, refs)):
            assert_close(g, r, f"{what} output {k}")

    plain = to_onnx(graph, weights=weights)
    bare = weightless(plain)
    onnx.checker.check_model(bare, full_check=True)
    assert assert_shapes_agree(graph, bare) >= len(graph) // 2
    check_all(plain, f"{name} {graph.input_shape}")

    carrying = graph.copy()
    carrying.weights = weights
    fused = run_pipeline(carrying, "fuse-conv-bn-relu")
    def count(g, kind):
        return sum(g.op(n).kind == kind for n in g.nodes())

    # every BN either folded into a fused conv or still there (e.g. pre-activation nets)
    left = count(fused, "batchnorm2d")
    folded = sum(isinstance(fused.op(n), O.FusedConv2d) and fused.op(n).bn is not None
                 for n in fused.nodes())
    assert folded + left == count(graph, "batchnorm2d")
    model = to_onnx(fused)
    bare = weightless(model)
    onnx.checker.check_model(bare, full_check=True)
    assert_shapes_agree(fused, bare)
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == left
    assert sum(n.op_type == "Conv" for n in model.graph.node) >= count(graph, "conv2d")
    if folded:
        check_all(model, f"{name} fused ({folded} BN folded)")
    else:
        assert canonical(model) == canonical(plain)
