"""Differential fuzzing: random valid CNNs through every backend and frontend.

For each drawn network (chains, concat branches, residual adds with and without
projections, squeeze-excitation, transposed convs, pools with ceil_mode, random
kernels/strides/paddings/dilations/groups, linear heads):

* IR shapes == PyTorch shapes, layer by layer;
* IR params == ``sum(p.numel())`` of the PyTorch module, buffers likewise;
* PyTorch output == onnxruntime output (same weights);
* fused (``fuse-conv-bn-relu`` with BN folded) == unfused output;
* JSON round trip gives identical printer output;
* ONNX import of the export gives the same shapes, params and MACs, and its
  PyTorch module reproduces onnxruntime's output.

CI runs ``CNNIR_FUZZ_EXAMPLES`` (200) examples; ``python -m tests.fuzz`` soaks.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from hypothesis import given

from cnnir.analysis import analyze
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch import layer_outputs, to_module
from cnnir.frontends.json_io import load_json, to_json
from cnnir.frontends.onnx_import import load_onnx
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import run_pipeline
from cnnir.weights import init_weights

from .strategies import FUZZ, build, valid_programs

torch.set_num_threads(1)
ort.set_default_logger_severity(3)


def _close(a: np.ndarray, b: np.ndarray, rel: float) -> None:
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    diff = float(np.abs(a - b).max()) if a.size else 0.0
    assert diff <= rel * scale, f"max abs diff {diff:.3g} > {rel:g} x scale {scale:.3g}"


def _ort(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@FUZZ
@given(program=valid_programs())
def test_backends_and_frontends_agree(tmp_path_factory, program):
    graph = infer_shapes(build(program))
    graph.weights = init_weights(graph, seed=1, mode="random")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *graph.input_shape)).astype(np.float32)

    # IR vs PyTorch: shapes layer by layer, params and buffers
    module = to_module(graph).eval()
    outs = layer_outputs(module, torch.from_numpy(x))
    for n in graph.nodes():
        assert tuple(outs[n].shape[1:]) == tuple(graph.shape(n)), n
    result = analyze(graph)
    assert sum(p.numel() for p in module.parameters()) == result.params
    buffers = sum(b.numel() for name, b in module.named_buffers()
                  if not name.endswith("num_batches_tracked"))
    assert buffers == result.buffers
    y_torch = outs[graph.outputs[0]].numpy()

    # PyTorch vs onnxruntime
    proto = to_onnx(graph)
    y_ort = _ort(proto.SerializeToString(), x)
    _close(y_ort, y_torch, 1e-4)

    # fused vs unfused
    fused = run_pipeline(graph, "fuse-conv-bn-relu")
    with torch.no_grad():
        y_fused = to_module(fused).eval()(torch.from_numpy(x)).numpy()
    _close(y_fused, y_torch, 1e-4)

    # JSON round trip
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "g.json").write_text(to_json(graph))
    again = infer_shapes(load_json(str(tmp / "g.json")))
    assert again.format() == graph.format()

    # ONNX import of the export: same numbers, same outputs
    (tmp / "g.onnx").write_bytes(proto.SerializeToString())
    imported = infer_shapes(load_onnx(str(tmp / "g.onnx")))
    assert tuple(imported.shape(imported.outputs[0])) == tuple(graph.shape(graph.outputs[0]))
    back = analyze(imported)
    assert (back.params, back.macs) == (result.params, result.macs)
    with torch.no_grad():
        y_back = to_module(imported).eval()(torch.from_numpy(x)).numpy()
    _close(y_back, y_ort, 1e-4)
