"""cnnir's ONNX against torch.onnx.export, on onnxruntime CPU.  ``python benchmarks/bench_onnx.py``

ResNet-50 (random weights and BatchNorm statistics, so BN is real work), one PyTorch
module built by the PyTorch backend, exported twice:

* ``cnnir``: :func:`cnnir.backends.onnx_export.to_onnx` from the IR, same weights;
* ``torch``: ``torch.onnx.export`` of that module (the default exporter of the
  installed torch), dynamic batch like cnnir's.

Both run on onnxruntime's CPU provider under the same session options (worker
threads do not spin between runs, so an idle session does not slow the other),
timed interleaved (a, b, b, a, a, b, ...) after warm-up so that load from other
processes and the position in a pair hit both alike; medians are compared.  Two comparisons:

1. full graph optimisation (``ORT_ENABLE_ALL``): cnnir / torch latency, target
   at most 1.0x (cnnir's graph must not be slower than the exporter's);
2. graph optimisation disabled (``ORT_DISABLE_ALL``, so onnxruntime fuses nothing
   itself): cnnir's model after ``fuse-conv-bn-relu`` against the unfused one,
   target: fused faster.

Outputs are checked equal (max difference relative to the output's scale).  The
noise floor (cnnir's model timed against itself the same way) and the op types
onnxruntime ends up running for each model are printed too: after ORT_ENABLE_ALL both
models are the same 53 NCHWc convolutions with fused BN/ReLU/Add, so comparison 1
is expected to be a tie within that noise.
Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from cnnir import load  # noqa: E402
from cnnir.backends.onnx_export import to_onnx  # noqa: E402
from cnnir.backends.pytorch import to_module  # noqa: E402
from cnnir.backends.runtime import session_options  # noqa: E402
from cnnir.passes.manager import run_pipeline  # noqa: E402
from cnnir.weights import init_weights  # noqa: E402

# the dynamo exporter logs a warning per torchvision op it skips: noise here
logging.getLogger("torch.onnx").setLevel(logging.ERROR)


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, onnxruntime "
            f"{ort.__version__}, torch {torch.__version__}")


def torch_export(module: torch.nn.Module, x: torch.Tensor) -> bytes:
    """``torch.onnx.export`` with a dynamic batch axis; the serialised model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, (x,), dynamo=True, verbose=False,
                                 dynamic_shapes={"x": {0: torch.export.Dim("N")}})
    return prog.model_proto.SerializeToString()


def session(model: bytes, optimization: str, threads: int | None) -> ort.InferenceSession:
    so = session_options(optimization, threads)
    # idle worker threads of one session must not spin while the other one runs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def optimised_ops(model: bytes, threads: int | None) -> str:
    """Op types of the graph onnxruntime runs after ORT_ENABLE_ALL, by count."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        so = session_options("all", threads)
        so.optimized_model_filepath = os.path.join(tmp, "optimised.onnx")
        ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        graph = onnx.load(so.optimized_model_filepath).graph
    counts = collections.Counter(n.op_type for n in graph.node)
    return ", ".join(f"{op} {k}" for op, k in counts.most_common())


def paired_ms(sessions: list[ort.InferenceSession], x: np.ndarray, runs: int
              ) -> tuple[list[float], list[float], list[np.ndarray]]:
    """Median and best ms per run of each session, runs interleaved, the order flipped
    every round (going first or second is not neutral); and each one's output."""
    feeds = [{s.get_inputs()[0].name: x} for s in sessions]
    outs = [s.run(None, f)[0] for s, f in zip(sessions, feeds)]
    for _ in range(2):
        for s, f in zip(sessions, feeds):
            s.run(None, f)
    times: list[list[float]] = [[] for _ in sessions]
    trio = list(zip(sessions, feeds, times))
    for i in range(runs):
        for s, f, t in (trio if i % 2 == 0 else trio[::-1]):
            t0 = time.perf_counter()
            s.run(None, f)
            t.append(time.perf_counter() - t0)
    return ([statistics.median(t) * 1e3 for t in times], [min(t) * 1e3 for t in times],
            outs)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--input", default=None, help="CxHxW (default: the model's, 3x224x224)")
    ap.add_argument("--quick", action="store_true", help="3x112x112 input, 10 runs")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None,
                    help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    args = ap.parse_args()
    shape = args.input or ("3x112x112" if args.quick else None)
    runs = 10 if args.quick else args.runs

    graph = load(args.model, input=shape)
    weights = init_weights(graph, seed=0, mode="random")
    module = to_module(graph, weights=weights).eval()
    x = np.random.default_rng(1).standard_normal(
        (args.batch, *graph.input_shape)).astype(np.float32)
    with torch.inference_mode():
        ref = module(torch.from_numpy(x)).numpy()

    t0 = time.perf_counter()
    ours = to_onnx(graph, weights=weights).SerializeToString()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = torch_export(module, torch.from_numpy(x))
    t_theirs = time.perf_counter() - t0
    carrying = graph.copy()
    carrying.weights = weights
    fused_graph = run_pipeline(carrying, "fuse-conv-bn-relu")
    fused = to_onnx(fused_graph).SerializeToString()

    print(f"machine: {machine()}")
    print(f"model: {graph.name}, input {args.batch}x{graph.input_shape}, {runs} interleaved "
          f"runs each, medians; threads: {args.threads or 'onnxruntime default'}")
    print(f"export time: cnnir {t_ours:.2f} s, torch.onnx.export {t_theirs:.2f} s; "
          f"fused graph: {len(fused_graph)} layers instead of {len(graph)}")
    print()

    full = [session(m, "all", args.threads) for m in (ours, theirs)]
    (ms_ours, ms_theirs), (best_ours, best_theirs), (y_ours, y_theirs) = paired_ms(
        full, x, runs)
    ratio = ms_ours / ms_theirs
    print("1. ORT_ENABLE_ALL         median ms   best ms   cnnir/torch   max diff vs PyTorch")
    print(f"   cnnir to_onnx          {ms_ours:9.2f} {best_ours:9.2f}   {ratio:10.3f}x   "
          f"{rel_diff(y_ours, ref):.1e} of scale")
    print(f"   torch.onnx.export      {ms_theirs:9.2f} {best_theirs:9.2f}   {1.0:10.3f}x   "
          f"{rel_diff(y_theirs, ref):.1e} of scale")
    print(f"   target cnnir/torch <= 1.00x (medians): {'met' if ratio <= 1.0 else 'MISSED'} "
          f"({ratio:.3f}x; best-of ratio {best_ours / best_theirs:.3f}x)")
    same = [session(ours, "all", args.threads) for _ in range(2)]
    (ms_a, ms_b), (best_a, best_b), _ = paired_ms(same, x, runs)
    print(f"   noise floor, cnnir's model against itself: {ms_a / ms_b:.3f}x "
          f"(best-of {best_a / best_b:.3f}x)")
    print(f"   what onnxruntime runs: cnnir: {optimised_ops(ours, args.threads)}")
    print(f"                          torch: {optimised_ops(theirs, args.threads)}")
    print()

    bare = [session(m, "disable", args.threads) for m in (ours, fused)]
    (ms_unfused, ms_fused), (best_unfused, best_fused), (y_unfused, y_fused) = paired_ms(
        bare, x, runs)
    speedup = ms_unfused / ms_fused
    print("2. ORT_DISABLE_ALL        median ms   best ms      speed-up   max diff vs PyTorch")
    print(f"   cnnir unfused          {ms_unfused:9.2f} {best_unfused:9.2f}   {1.0:10.3f}x   "
          f"{rel_diff(y_unfused, ref):.1e} of scale")
    print(f"   cnnir fused            {ms_fused:9.2f} {best_fused:9.2f}   {speedup:10.3f}x   "
          f"{rel_diff(y_fused, ref):.1e} of scale")
    print(f"   target fused faster (medians): {'met' if ms_fused < ms_unfused else 'MISSED'} "
          f"({speedup:.3f}x; best-of {best_unfused / best_fused:.3f}x)")


if __name__ == "__main__":
    main()
