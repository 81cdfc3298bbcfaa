"""How long does it take to get a report out of an ONNX file or a PyTorch module?
`python benchmarks/bench_frontends.py`

What a user would otherwise run to get shapes:

* ONNX: ``onnx.load`` + ``onnx.shape_inference.infer_shapes`` (shapes of every tensor,
  no parameter or MAC counts) versus ``cnnir.load(file.onnx)`` + ``analyze`` (shapes,
  params, MACs, memory, receptive fields, and the weights read into ``graph.weights``).
* PyTorch: ``torch.fx.symbolic_trace`` + ``ShapeProp`` (which runs the model once on a
  zero tensor) versus ``cnnir.from_torch`` + ``analyze`` (traces, maps, copies the
  weights, never runs the model).

Models: the zoo's ResNet-50 (25.6M params) and VGG-16 (138M) at 3x224x224, written to
ONNX by cnnir's backend; for PyTorch, the same ResNet-50 as a ``torch.fx`` module from
the PyTorch backend.  Median seconds of ``--runs`` runs, interleaved.  Prints the
figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import onnx  # noqa: E402
import torch  # noqa: E402
from torch.fx.passes.shape_prop import ShapeProp  # noqa: E402

import cnnir  # noqa: E402
from cnnir.analysis import analyze  # noqa: E402
from cnnir.backends.onnx_export import save, to_onnx  # noqa: E402
from cnnir.backends.pytorch import to_module  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
          f"{torch.__version__}, onnx {onnx.__version__}")
    tmp = tempfile.mkdtemp()
    print(f"\n{'ONNX file':<12} {'onnx shape inference':>22} {'cnnir load+analyze':>20} "
          f"{'ratio':>7}")
    for name in ("resnet50", "vgg16"):
        path = os.path.join(tmp, f"{name}.onnx")
        save(to_onnx(cnnir.load(name)), path)

        def onnx_way(path: str = path) -> None:
            onnx.shape_inference.infer_shapes(onnx.load(path))

        def cnnir_way(path: str = path) -> None:
            analyze(cnnir.load(path))

        a = median_time(onnx_way, args.runs)
        b = median_time(cnnir_way, args.runs)
        print(f"{name:<12} {a:>21.3f}s {b:>19.3f}s {b / a:>6.2f}x")

    print(f"\n{'module':<12} {'fx trace + ShapeProp':>22} {'cnnir from_torch':>20} {'ratio':>7}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = to_module(cnnir.load("resnet50")).eval()
    x = torch.zeros(1, 3, 224, 224)

    def fx_way() -> None:
        gm = torch.fx.symbolic_trace(module)
        with torch.no_grad():
            ShapeProp(gm).propagate(x)

    def cnnir_torch() -> None:
        analyze(cnnir.from_torch(module, input=(3, 224, 224)))

    a = median_time(fx_way, args.runs)
    b = median_time(cnnir_torch, args.runs)
    print(f"{'resnet50':<12} {a:>21.3f}s {b:>19.3f}s {b / a:>6.2f}x")


if __name__ == "__main__":
    main()
