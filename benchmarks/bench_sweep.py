"""How fast is ``cnnir sweep``?  ``python benchmarks/bench_sweep.py [--count N] [--workers 1,2]``

1. One ResNet-50-sized variant (``examples/resnet_space.py``, depth 50, width 64),
   built and statically costed in this process: the median of 20 (goal: 5 ms).
2. ``--count`` variants (default 10,000) drawn from a ResNet family (depth 18 to 152,
   base width 16..256:step4, 3x3 groups 1..16, input 96..288:step32), costed statically
   on a ``dask.distributed.LocalCluster`` of 1, then 2, worker processes (each warmed
   first, so cluster start-up is not counted): variants per second, per second per
   core, and the speed-up from 1 to 2 workers (goal: close to linear).  The two runs'
   rows are checked equal.

Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

from cnnir import api  # noqa: E402
from cnnir.sweep import make_job  # noqa: E402

SPACE = os.path.join(ROOT, "examples", "resnet_space.py")
GRID = ["depth=18,34,50,101,152", "width=16..256:step4", "groups=1,2,4,8,16",
        "input=3x96x96,3x128x128,3x160x160,3x192x192,3x224x224,3x256x256,3x288x288"]


def one_variant_ms() -> float:
    job = make_job(SPACE)
    api._sweep_chunk(job, [{"depth": 50}])  # warm: the file loaded once per process
    times = []
    for _ in range(20):
        t = time.perf_counter()
        rows = api._sweep_chunk(job, [{"depth": 50, "width": 64}])
        times.append(time.perf_counter() - t)
    assert rows[0]["metrics"]["params"] == 25557032  # ResNet-50 exactly
    return statistics.median(times) * 1e3


def on_cluster(n: int, count: int, seed: int) -> tuple[float, list]:
    import distributed

    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cl, \
            distributed.Client(cl) as client:
        job = make_job(SPACE)
        client.run(api._sweep_chunk, job, [{"depth": 18}])  # warm every worker
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            res = api.sweep(SPACE, GRID, sample=count, seed=seed, output=out, client=client)
            return time.perf_counter() - t, res.rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}")
    print(f"one ResNet-50 variant, built and costed: {one_variant_ms():.1f} ms (goal 5 ms)")
    base = None
    rows0 = None
    for n in (int(w) for w in args.workers.split(",")):
        secs, rows = on_cluster(n, args.count, args.seed)
        rate = len(rows) / secs
        base = base or rate
        same = "" if rows0 is None else (", rows equal" if rows == rows0 else ", ROWS DIFFER")
        rows0 = rows0 or rows
        failed = sum(r["error"] is not None for r in rows)
        print(f"{n} worker(s): {len(rows)} variants ({failed} invalid) in {secs:.1f} s = "
              f"{rate:.1f} variants/s, {rate / n:.1f} /s/core, speed-up {rate / base:.2f}x{same}")


if __name__ == "__main__":
    main()
