"""What does conv-BN-ReLU fusion buy at inference?  ``python benchmarks/bench_fuse.py [--quick]``

For ResNet-50, VGG-16-BN and MobileNet-v2 (random weights and BN statistics), the
PyTorch backend's eval-mode forward pass before and after ``fuse-conv-bn-relu``,
side by side: median milliseconds per batch over ``--runs`` runs of each, interleaved
(after warm-up),
the speed-up ratio, the layer counts, and the largest output difference relative
to the output's scale.  Also the time the pass itself takes on ResNet-152's graph.

Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from cnnir import load  # noqa: E402
from cnnir.backends.pytorch import to_module  # noqa: E402
from cnnir.passes.manager import PassManager  # noqa: E402
from cnnir.weights import init_weights  # noqa: E402


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads)")


def paired_ms(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor,
              runs: int) -> tuple[float, float]:
    """Median ms per forward of ``a`` and of ``b``, runs interleaved (a, b, a, b...) so
    that load from other processes hits both alike."""
    ta: list[float] = []
    tb: list[float] = []
    with torch.inference_mode():
        for m in (a, b, a, b):
            m(x)
        for _ in range(runs):
            for m, out in ((a, ta), (b, tb)):
                t0 = time.perf_counter()
                m(x)
                out.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="112x112 inputs, 5 runs")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    size = 112 if args.quick else 224
    runs = 5 if args.quick else args.runs
    print(machine())
    print(f"input {args.batch}x3x{size}x{size}, median of {runs} interleaved runs, eval mode\n")
    print(f"{'model':<14} {'layers':>13} {'unfused ms':>11} {'fused ms':>9} {'speed-up':>9} "
          f"{'max |diff| / max |y|':>21}")
    for name in ("resnet50", "vgg16_bn", "mobilenet_v2"):
        g = load(name, input=(3, size, size))
        g.weights = init_weights(g, seed=0, mode="random")
        fused = PassManager.from_string("fuse-conv-bn-relu").run(g)
        x = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
        before = to_module(g).eval()
        after = to_module(fused).eval()
        with torch.inference_mode():
            ref, got = before(x), after(x)
        rel = ((got - ref).abs().max() / ref.abs().max()).item()
        t_before, t_after = paired_ms(before, after, x, runs)
        print(f"{name:<14} {len(g):>5} -> {len(fused):>4} {t_before:>11.1f} {t_after:>9.1f} "
              f"{t_before / t_after:>8.2f}x {rel:>21.1e}")

    g = load("resnet152")
    times = []
    for _ in range(5 if args.quick else 20):
        t0 = time.perf_counter()
        PassManager.from_string("fuse-conv-bn-relu").run(g)
        times.append(time.perf_counter() - t0)
    print(f"\nfuse-conv-bn-relu on resnet152's graph ({len(g)} nodes), shapes re-inferred: "
          f"{statistics.median(times) * 1e3:.1f} ms (median)")


if __name__ == "__main__":
    main()
