"""Startup: the whole ``cnnir report`` process against ``python -c "import networkx, numpy"``.

Issue 19's goal: the report path imports nothing it does not use, so a whole
``cnnir report resnet152 --format json`` process ends within 50 ms of a bare Python
that imports networkx and numpy (what the IR needs anyway).  Runs each command
alternately, in fresh processes, and prints the medians side by side with the machine:
wall time, and the CPU time (user + system) of the child, which a loaded machine
disturbs far less than the wall time.

Bytecode: an installed package has its ``.pyc`` files, so the children run with
bytecode writing on (``PYTHONDONTWRITEBYTECODE`` dropped) after one warm-up run of
each command.  A checkout without ``__pycache__`` under ``PYTHONDONTWRITEBYTECODE=1``
instead compiles the ~360 KB of cnnir source the report path imports in every run
(some 75 ms on a 2-core VM): a cost of that setup, not of cnnir.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, this child alone) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    for argv in COMMANDS.values():  # warm-up: writes the .pyc files
        run(argv, env)
    walls: dict[str, list[float]] = {k: [] for k in COMMANDS}
    cpus: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.runs):  # interleaved, so load changes hit every command alike
        for name, argv in COMMANDS.items():
            w, c = run(argv, env)
            walls[name].append(w)
            cpus[name].append(c)
    first = next(iter(COMMANDS))
    base_wall, base_cpu = statistics.median(walls[first]), statistics.median(cpus[first])
    for name in COMMANDS:
        w, c = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:38} wall {w * 1e3:6.1f} ms ({(w - base_wall) * 1e3:+6.1f}, best "
              f"{min(walls[name]) * 1e3:6.1f})  cpu {c * 1e3:6.1f} ms "
              f"({(c - base_cpu) * 1e3:+6.1f})")


if __name__ == "__main__":
    main()
