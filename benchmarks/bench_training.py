"""How fast is the training analysis?  ``python benchmarks/bench_training.py [--quick]``

1. ``training-memory`` and ``backward-cost`` of ResNet-152 in-process, shapes already
   inferred: the median of many runs (target: under 20 ms together).
2. The ``--memory`` budget check (the peak at a batch, then the largest batch that
   fits: a doubling and a bisection, each step one ``training-memory`` run) of
   ResNet-50 at 24 GiB.
3. For scale: what PyTorch needs to measure the same figures (the module built on the
   meta device, one forward with ``saved_tensors_hooks``, one ``FlopCounterMode``
   forward and backward), when torch is installed.

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

from cnnir import api, load  # noqa: E402
from cnnir.passes.training import BackwardCost, TrainingMemory  # noqa: E402


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def median_ms(fn, runs: int) -> tuple[float, float]:
    """Median and best milliseconds of ``runs`` calls (the best shows the cost on a
    machine that other work shares)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def torch_seconds(name: str, batch: int) -> float | None:
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    from cnnir.backends.pytorch import to_module

    graph = load(name)
    t0 = time.perf_counter()
    module = to_module(graph, device="meta")
    x = torch.empty((batch, *graph.input_shape), device="meta")
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        module(x)
    with FlopCounterMode(display=False):
        module(x).sum().backward()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    args = ap.parse_args()
    runs = 20 if args.quick else 200
    print(machine())
    g = load("resnet152")
    mem = TrainingMemory(batch=32, optimizer="adam")
    bwd = BackwardCost(batch=32)
    mem.run(g)
    (m_mem, b_mem), (m_bwd, b_bwd) = median_ms(lambda: mem.run(g), runs), median_ms(
        lambda: bwd.run(g), runs)
    print(f"resnet152 ({len(g)} layers): training-memory {m_mem:.2f} ms (best {b_mem:.2f}), "
          f"backward-cost {m_bwd:.2f} ms (best {b_bwd:.2f}), together {m_mem + m_bwd:.2f} ms "
          f"(median of {runs}; target 20 ms)")
    r50 = load("resnet50")
    t0 = time.perf_counter()
    b = api.budget(r50, "24GiB", batch=64, optimizer="adam")
    print(f"resnet50 budget check: {(time.perf_counter() - t0) * 1e3:.1f} ms ({b})")
    t = torch_seconds("resnet152", 32)
    if t is not None:
        print(f"PyTorch measuring the same on the meta device: {t:.2f} s")


if __name__ == "__main__":
    main()
