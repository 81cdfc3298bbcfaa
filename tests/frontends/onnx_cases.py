"""Helpers for the ONNX import tests: build a small model, run it three ways.

``agree(model)`` imports ``model`` and checks that cnnir's PyTorch module and cnnir's
re-emitted ONNX (run by onnxruntime) both compute what onnxruntime computes on the
original file.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

import cnnir
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import to_module
from cnnir.frontends.onnx_import import from_onnx_model

ort.set_default_logger_severity(3)


def make_model(nodes, inits, in_shape, opset=17, in_type=TensorProto.FLOAT, out="y"):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", in_type, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    return model


def run_ort(model, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def run_torch(graph: cnnir.Graph, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read-only initializer buffers
        module = to_module(graph, weights=graph.weights).eval()
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()


def close(out: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 1.0)
    diff = float(np.abs(out - ref).max()) if ref.size else 0.0
    assert diff <= 1e-4 * scale, f"{what}: max abs diff {diff:.3g} (scale {scale:.3g})"


def both_backends(graph: cnnir.Graph, x: np.ndarray, ref: np.ndarray) -> None:
    """cnnir's PyTorch module and its re-emitted ONNX model both give ``ref``."""
    close(run_torch(graph, x), ref, "pytorch backend")
    close(run_ort(to_onnx(graph), x), ref, "onnx backend")


def agree(model, in_shape, batch: int = 2, seed: int = 0) -> cnnir.Graph:
    """Import ``model``; both backends compute what onnxruntime computes on it."""
    g = from_onnx_model(model)
    x = np.random.default_rng(seed).standard_normal((batch, *in_shape)).astype(np.float32)
    both_backends(g, x, run_ort(model, x))
    return g
