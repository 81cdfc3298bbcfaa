"""Startup: the whole ``cnnir report`` process against ``python -c "import networkx, numpy"``.

Issue 19's goal: the report path imports nothing it does not use, so a whole
``cnnir report resnet152 --format json`` process ends within 50 ms of a bare Python
that imports networkx and numpy (what the IR needs anyway).  Runs each command
alternately, in fresh processes, and prints the medians side by side with the machine.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import networkx, numpy'": [sys.executable, "-c", "import networkx, numpy"],
    "cnnir --version": [sys.executable, "-m", "cnnir", "--version"],
    "cnnir report resnet152 --format json": [sys.executable, "-m", "cnnir", "report",
                                             "resnet152", "--format", "json"],
    "cnnir report lenet5": [sys.executable, "-m", "cnnir", "report", "lenet5"],
}


def wall(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.runs):  # interleaved, so load changes hit every command alike
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
    base = statistics.median(times[next(iter(COMMANDS))])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:40} median {med * 1e3:7.1f} ms  (+{(med - base) * 1e3:6.1f} ms over "
              f"the bare imports, best {min(ts) * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
