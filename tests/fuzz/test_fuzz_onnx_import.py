"""Property: random small ONNX models written with ``onnx.helper`` from the operators and
attributes the importer handles (Conv with every padding rule, groups and dilation, a
folded bias Add, ConvTranspose, BatchNormalization, the activations, pools, a zero Pad
before a conv, LRN, Resize by integer factors with axes, residual Add, concat,
squeeze-excitation Mul, Dropout, and a Gemm / MatMul head), in opsets 14, 17 and 19,
import and compute what onnxruntime computes on the original file, through cnnir's
PyTorch backend and through cnnir's re-emitted ONNX.

A fourth of ``CNNIR_FUZZ_EXAMPLES`` examples run in CI (50 by default).
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from cnnir.frontends.onnx_import import from_onnx_model

from .strategies import EXAMPLES, FUZZ

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "frontends"))
from onnx_cases import both_backends, make_model, run_ort  # noqa: E402

ONNX_FUZZ = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))


class Builder:
    """Appends nodes to a chain, tracking the current tensor's name and C x H x W shape."""

    def __init__(self, draw: Any, opset: int, shape: tuple[int, ...]) -> None:
        self.draw, self.opset = draw, opset
        self.nodes: list[Any] = []
        self.inits: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        self.x, self.shape = "x", shape

    def name(self, base: str) -> str:
        return f"{base}{len(self.nodes) + len(self.inits)}"

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        n = self.name("k")
        self.inits[n] = np.asarray(value, dtype)
        return n

    def weight(self, *shape: int) -> str:
        return self.const(self.rng.standard_normal(shape) * 0.5)

    def node(self, op: str, ins: list[str], shape: tuple[int, ...], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        self.x, self.shape = out, shape
        return out

    # ------------------------------------------------------------------ layers

    def conv(self, out: int | None = None, same: bool = False) -> None:
        d, (c, h, w) = self.draw, self.shape
        g = d(st.sampled_from([k for k in range(1, c + 1) if c % k == 0]))
        out = out or g * d(st.integers(1, max(1, 6 // g)))
        if out % g:
            g = 1
        k = (d(st.integers(1, min(3, h))), d(st.integers(1, min(3, w))))
        attrs: dict[str, Any] = {"group": g, "kernel_shape": list(k)}
        ins = [self.x, self.weight(out, c // g, *k)]
        if same:
            attrs["auto_pad"] = d(st.sampled_from(["SAME_UPPER", "SAME_LOWER"]))
            oh, ow = h, w
        else:
            s = (d(st.integers(1, 2)), d(st.integers(1, 2)))
            dil = d(st.sampled_from([1, 1, 2])) if min(h, w) > 2 * max(k) else 1
            p = [d(st.integers(0, 1)) for _ in range(4)]
            oh = (h + p[0] + p[2] - dil * (k[0] - 1) - 1) // s[0] + 1
            ow = (w + p[1] + p[3] - dil * (k[1] - 1) - 1) // s[1] + 1
            attrs.update(strides=list(s), pads=p, dilations=[dil, dil])
        if d(st.booleans()):
            ins.append(self.weight(out))
        self.node("Conv", ins, (out, oh, ow), **attrs)
        if d(st.booleans()):  # a bias Add the importer folds into the conv
            bias_shape = d(st.sampled_from([(out, 1, 1), (1, out, 1, 1), (1,)]))
            self.node("Add", [self.x, self.weight(*bias_shape)], self.shape)

    def deconv(self) -> None:
        d, (c, h, w) = self.draw, self.shape
        k, s = d(st.integers(2, 3)), d(st.integers(1, 2))
        p, op = d(st.integers(0, k - 1)), d(st.integers(0, s - 1))
        out = d(st.integers(1, 4))
        size = [(n - 1) * s - 2 * p + k + op for n in (h, w)]
        if min(size) < 1:
            return
        self.node("ConvTranspose", [self.x, self.weight(c, out, k, k), self.weight(out)],
                  (out, *size), strides=[s, s], pads=[p, p, p, p], output_padding=[op, op])

    def bn(self) -> None:
        c = self.shape[0]
        var = self.const(np.abs(self.rng.standard_normal(c)) + 0.5)
        self.node("BatchNormalization", [self.x, self.weight(c), self.weight(c), self.weight(c),
                                         var], self.shape, epsilon=1e-3)

    def act(self) -> None:
        kind = self.draw(st.sampled_from(["Relu", "LeakyRelu", "relu6", "Clip0", "Sigmoid",
                                          "HardSigmoid", "HardSwish", "Tanh"]))
        if kind == "LeakyRelu":
            self.node(kind, [self.x], self.shape, alpha=0.1)
        elif kind == "relu6":
            self.node("Clip", [self.x, self.const(0.0), self.const(6.0)], self.shape)
        elif kind == "Clip0":
            self.node("Clip", [self.x, self.const(0.0)], self.shape)
        elif kind == "HardSigmoid":
            self.node(kind, [self.x], self.shape, alpha=1 / 6, beta=0.5)
        else:
            self.node(kind, [self.x], self.shape)

    def pool(self) -> None:
        d, (c, h, w) = self.draw, self.shape
        k = d(st.integers(1, min(3, h, w)))
        s = d(st.integers(1, 2))
        p = d(st.integers(0, k // 2))
        size = [(n + 2 * p - k) // s + 1 for n in (h, w)]
        attrs: dict[str, Any] = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4}
        if d(st.booleans()):
            self.node("MaxPool", [self.x], (c, *size), **attrs)
        else:
            self.node("AveragePool", [self.x], (c, *size),
                      count_include_pad=int(d(st.booleans())), **attrs)

    def pad_conv(self) -> None:
        c, h, w = self.shape
        p = [self.draw(st.integers(0, 2)) for _ in range(4)]
        self.node("Pad", [self.x, self.const([0, 0, p[0], p[1], 0, 0, p[2], p[3]], np.int64)],
                  (c, h + p[0] + p[2], w + p[1] + p[3]))
        self.conv()

    def lrn(self) -> None:
        size = self.draw(st.sampled_from([1, 3, 5]))
        self.node("LRN", [self.x], self.shape, size=size, alpha=0.3, beta=0.75, bias=1.5)

    def resize(self) -> None:
        d, (c, h, w) = self.draw, self.shape
        f = (d(st.integers(1, 2)), d(st.integers(1, 3)))
        mode = d(st.sampled_from(["nearest", "linear"]))
        attrs: dict[str, Any] = {"mode": mode}
        if mode == "nearest":
            attrs["coordinate_transformation_mode"], attrs["nearest_mode"] = d(st.sampled_from(
                [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                 ("pytorch_half_pixel", "round_prefer_ceil")]))
        else:
            attrs["coordinate_transformation_mode"] = d(st.sampled_from(
                ["half_pixel", "pytorch_half_pixel", "align_corners"]))
        scales: list[float] = [1.0, 1.0, *f]
        if self.opset >= 18 and d(st.booleans()):
            attrs["axes"] = d(st.sampled_from([[2, 3], [3, 2], [-2, -1]]))
            scales = [float(f[a % 4 - 2]) for a in attrs["axes"]]
        self.node("Resize", [self.x, "", self.const(scales)], (c, h * f[0], w * f[1]), **attrs)

    def residual(self) -> None:
        x, shape = self.x, self.shape
        self.conv(out=shape[0], same=True)
        self.node("Add", [x, self.x], shape)

    def concat(self) -> None:
        x, (c, h, w) = self.x, self.shape
        self.conv(same=True)
        self.node("Concat", [x, self.x], (c + self.shape[0], h, w), axis=1)

    def se(self) -> None:
        x, (c, h, w) = self.x, self.shape
        self.node("GlobalAveragePool", [x], (c, 1, 1))
        self.node("Conv", [self.x, self.weight(c, c, 1, 1), self.weight(c)], (c, 1, 1))
        self.node("Sigmoid", [self.x], (c, 1, 1))
        self.node("Mul", [x, self.x], (c, h, w))

    def dropout(self) -> None:
        self.node("Dropout", [self.x, self.const(0.25)], self.shape)

    def head(self) -> None:
        d, (c, h, w) = self.draw, self.shape
        how = d(st.sampled_from(["gap", "mean", "flatten"]))
        if how == "gap":
            self.node("GlobalAveragePool", [self.x], (c, 1, 1))
            self.node("Flatten", [self.x], (c,), axis=1)
        elif how == "mean":
            keep = int(d(st.booleans()))
            if self.opset >= 18:
                self.node("ReduceMean", [self.x, self.const([2, 3], np.int64)], (c,),
                          keepdims=keep)
            else:
                self.node("ReduceMean", [self.x], (c,), axes=[2, 3], keepdims=keep)
            if keep:
                self.node("Flatten", [self.x], (c,), axis=1)
        else:
            self.node("Flatten", [self.x], (c * h * w,), axis=1)
        f, out = self.shape[0], d(st.integers(1, 6))
        if d(st.booleans()):
            t = d(st.booleans())
            b = self.weight(*((out, f) if t else (f, out)))
            c_shape = d(st.sampled_from([(out,), (1, out), (1,)]))
            self.node("Gemm", [self.x, b, self.weight(*c_shape)], (out,), transB=int(t),
                      alpha=d(st.sampled_from([1.0, 0.5])), beta=d(st.sampled_from([1.0, 2.0])))
        else:
            self.node("MatMul", [self.x, self.weight(f, out)], (out,))
            self.node("Add", [self.x, self.weight(out)], (out,))
        if d(st.booleans()):
            self.node("Softmax", [self.x], (out,), axis=1)


STEPS = ["conv", "conv", "deconv", "bn", "act", "act", "pool", "pad_conv", "lrn", "resize",
         "residual", "concat", "se", "dropout"]


@st.composite
def onnx_models(draw: st.DrawFn) -> tuple[Any, tuple[int, ...]]:
    opset = draw(st.sampled_from([14, 17, 19]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    b = Builder(draw, opset, shape)
    for step in draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=5)):
        if b.shape[1] * b.shape[2] > 400 and step == "resize":
            continue
        getattr(b, step)()
    if draw(st.booleans()):
        b.head()
    b.nodes[-1].output[0] = "y"
    return make_model(b.nodes, b.inits, ["N", *shape], opset=opset), shape


@ONNX_FUZZ
@given(case=onnx_models())
def test_imported_onnx_computes_what_onnxruntime_computes(case):
    model, shape = case
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    ref = run_ort(model, x)  # the original is a valid model
    graph = from_onnx_model(model)
    both_backends(graph, x, ref)
