"""How fast is ``cnnir sweep``?  ``python benchmarks/bench_sweep.py [--count N] [--rounds R]``

1. One ResNet-50 variant (``benchmarks/resnet_family.py``: depth 50, width 64,
   groups 1, expansion 4, torchvision's ResNet-50 exactly), built with the DSL and
   statically costed in this process (shapes, params, MACs, memory, RF: what a sweep
   row holds): the median and the fastest of ``--repeat`` runs, wall clock and CPU
   time (goal: under 5 ms).
2. ``--count`` variants (default 10,000) drawn from the ResNet family (depth 18, 34,
   50, 101, 152; base width 16..256:step4; 3x3 groups 1..16; bottleneck expansion
   2, 4, 6; input 96..288:step32), costed statically by ``cnnir.api.sweep`` on a
   ``dask.distributed.LocalCluster`` of 1 worker process and on one of 2, side by
   side: the variants are cut into ``--rounds`` slices and each slice is costed on
   both clusters in turn (which goes first alternates), so a machine whose load
   changes (a shared one) weighs on both alike.  Both clusters are started and
   warmed first; their start-up is not counted.  Reported: variants per second, per
   second per core, and the speed-up from 1 to 2 workers (goal: close to linear),
   with the load average before and after.  The two clusters' rows are checked
   equal, slice by slice.

Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

from cnnir import api  # noqa: E402
from cnnir.sweep import make_job  # noqa: E402
from cnnir.sweep_space import parse_specs, sample  # noqa: E402

SPACE = os.path.join(ROOT, "benchmarks", "resnet_family.py")
GRID = [
    "depth=18,34,50,101,152",
    "width=16..256:step4",
    "groups=1,2,4,8,16",
    "expansion=2,4,6",
    "input=3x96x96,3x128x128,3x160x160,3x192x192,3x224x224,3x256x256,3x288x288",
]
RESNET50 = {"depth": 50, "width": 64, "groups": 1, "expansion": 4}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def one_variant(repeat: int) -> dict[str, float]:
    """ms per ResNet-50 variant in this process: wall median and min, CPU median."""
    job = make_job(SPACE)
    api._sweep_chunk(job, [dict(RESNET50)])  # warm: the file is loaded once per process
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        rows = api._sweep_chunk(job, [dict(RESNET50)])
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    m = rows[0]["metrics"]
    assert (m["params"], m["macs"]) == (25557032, 4089184256), m  # ResNet-50 exactly
    return {
        "median": statistics.median(wall) * 1e3,
        "min": min(wall) * 1e3,
        "cpu": statistics.median(cpu) * 1e3,
    }


def cluster(n: int) -> tuple[Any, Any]:
    import distributed

    cl = distributed.LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cl)
    client.run(api._sweep_chunk, make_job(SPACE), [dict(RESNET50)])  # warm every worker
    return cl, client


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=4, help="slices costed on both clusters")
    ap.add_argument("--repeat", type=int, default=50, help="runs of the one-variant timing")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the clusters' closing chatter
    import cnnir

    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; {load()}"
    )
    print(f"cnnir from {os.path.dirname(os.path.abspath(cnnir.__file__))}")
    one = one_variant(args.repeat)
    print(
        f"one ResNet-50 variant, built and costed: {one['median']:.2f} ms median, "
        f"{one['min']:.2f} ms fastest, {one['cpu']:.2f} ms CPU (goal 5 ms); {load()}"
    )
    if args.count <= 0:
        return
    variants = sample(parse_specs(GRID), args.count, args.seed)
    step = -(-len(variants) // args.rounds)
    slices = [variants[i : i + step] for i in range(0, len(variants), step)]
    gc.collect()
    clusters = {n: cluster(n) for n in (1, 2)}
    secs = {1: 0.0, 2: 0.0}
    cpu = {1: 0.0, 2: 0.0}  # CPU seconds the workers spent, all together
    rows: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        print(f"{len(variants)} variants in {len(slices)} slices; {load()}")
        for i, part in enumerate(slices):
            for n in (1, 2) if i % 2 == 0 else (2, 1):
                client = clusters[n][1]
                before = worker_cpu(client)
                s, r = run_part(client, part)
                cpu[n] += worker_cpu(client) - before
                secs[n] += s
                rows[n] += r
    finally:
        logging.getLogger("distributed").setLevel(logging.ERROR)
        for cl, client in clusters.values():
            client.close()
            cl.close()
    failed = sum(r["error"] is not None for r in rows[1])
    same = "rows equal" if rows[1] == rows[2] else "ROWS DIFFER"
    base = len(rows[1]) / secs[1]
    for n in (1, 2):
        rate = len(rows[n]) / secs[n]
        print(
            f"{n} worker(s): {len(rows[n])} variants ({failed} invalid) in {secs[n]:.1f} s "
            f"= {rate:.1f} variants/s, {rate / n:.1f} /s/core, speed-up {rate / base:.2f}x; "
            f"{len(rows[n]) / cpu[n]:.1f} variants per worker CPU second"
        )
    print(
        f"parallel efficiency from the workers' CPU time (1.00: two workers do the work of "
        f"one in half the time when they get two cores): "
        f"{(len(rows[2]) / cpu[2]) / (len(rows[1]) / cpu[1]):.2f}"
    )
    print(f"{same}; {load()}")


def worker_cpu(client: Any) -> float:
    """CPU seconds the client's workers have used so far, summed."""
    return sum(client.run(time.process_time).values())


def run_part(client: Any, part: list[dict[str, Any]]) -> tuple[float, list[dict[str, Any]]]:
    """Sweep exactly the variants ``part`` through ``client``: the seconds and the rows
    (``cnnir.api.sweep`` drawing the same sample would cost them all; the run engine
    takes the variants as they are)."""
    from cnnir.sweep import check_parameters, run_sweep

    job = make_job(SPACE)
    check_parameters(job, list(part[0]))
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        res = run_sweep(job, part, out, api._sweep_chunk, client=client)
        return time.perf_counter() - t, res.rows


if __name__ == "__main__":
    main()
