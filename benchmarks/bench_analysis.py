"""How fast are the analyses?  ``python benchmarks/bench_analysis.py [--quick]``

1. Every analysis (count-params, count-macs, memory, receptive-field) of ResNet-152
   in-process, shapes already inferred: the median of many runs (target: 20 ms).
2. Generated chains of 1k, 10k and 100k layers (conv 3x3 / BN / ReLU, with a
   residual add every 10 layers so merges are exercised): the time of all analyses
   (best of 3; target: 3 s at 100k) and the time per layer, which must stay flat
   (linear growth).  Every pass does a constant amount of work per node and edge;
   what growth remains per layer comes from the interpreter (cache misses on a
   large heap, the garbage collector: the last column runs with it off).

Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cnnir import load  # noqa: E402
from cnnir import ops as O  # noqa: E402
from cnnir.ir import Graph  # noqa: E402
from cnnir.passes.count_macs import CountMacs  # noqa: E402
from cnnir.passes.count_params import CountParams  # noqa: E402
from cnnir.passes.infer_shapes import InferShapes  # noqa: E402
from cnnir.passes.memory import Memory  # noqa: E402
from cnnir.passes.receptive_field import ReceptiveField  # noqa: E402

PASSES = (CountParams, CountMacs, Memory, ReceptiveField)


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def all_analyses(graph: Graph) -> dict[str, float]:
    """Run the four passes once; seconds per pass."""
    out = {}
    for cls in PASSES:
        t0 = time.perf_counter()
        cls().run(graph)
        out[cls.name] = time.perf_counter() - t0
    return out


def chain(layers: int) -> Graph:
    """``layers`` layers: conv/bn/relu triples on 16x16x16, an add every 10 layers."""
    g = Graph(f"chain{layers}")
    prev = g.add("input", O.Input((16, 16, 16)))
    skip = prev
    conv, bn, relu = O.Conv2d(16, 3, padding=1, bias=False), O.BatchNorm2d(), O.ReLU()
    for i in range(1, layers):
        kind = i % 10
        if kind == 0:
            prev = g.add(f"add{i}", O.Add(), [prev, skip])
            skip = prev
        else:
            op = (conv, bn, relu)[kind % 3]
            prev = g.add(f"l{i}", op, [prev])
    g.outputs = [prev]
    return g


def bench_resnet152(runs: int) -> None:
    g = load("resnet152")
    g.nodes()
    for _ in range(3):
        all_analyses(g)
    totals, per_pass = [], {cls.name: [] for cls in PASSES}
    for _ in range(runs):
        t = all_analyses(g)
        totals.append(sum(t.values()))
        for k, v in t.items():
            per_pass[k].append(v)
    med = statistics.median(totals)
    print(f"resnet152 ({len(g)} nodes), all analyses, median of {runs}: {med * 1e3:.2f} ms "
          f"(target <= 20 ms: {'ok' if med <= 0.020 else 'MISSED'})")
    for k, v in per_pass.items():
        print(f"  {k:<18} {statistics.median(v) * 1e3:7.2f} ms")


def bench_chains(sizes: list[int]) -> None:
    print(f"{'layers':>8} {'build s':>9} {'topo+shapes s':>14} {'analyses s':>11} "
          f"{'us/layer':>9} {'us/layer, gc off':>17}")
    per_layer = []
    for n in sizes:
        t0 = time.perf_counter()
        g = chain(n)
        t1 = time.perf_counter()
        g.nodes()
        InferShapes().run(g)
        t2 = time.perf_counter()
        t = min(sum(all_analyses(g).values()) for _ in range(3))
        gc.disable()  # what is left of the growth without the collector: memory effects
        try:
            t_nogc = min(sum(all_analyses(g).values()) for _ in range(3))
        finally:
            gc.enable()
        per_layer.append(t / n)
        print(f"{n:>8} {t1 - t0:9.3f} {t2 - t1:14.3f} {t:11.3f} {t / n * 1e6:9.2f} "
              f"{t_nogc / n * 1e6:17.2f}")
    if len(per_layer) > 1:
        growth = per_layer[-1] / per_layer[0]
        print(f"time per layer, largest / smallest: {growth:.2f}x (1.0 = linear)")
    if sizes[-1] >= 100_000:
        print(f"100k layers: {per_layer[-1] * sizes[-1]:.2f} s "
              f"(target <= 3 s: {'ok' if per_layer[-1] * sizes[-1] <= 3 else 'MISSED'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs, no 100k chain")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    bench_resnet152(20 if args.quick else 100)
    bench_chains([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])


if __name__ == "__main__":
    main()
