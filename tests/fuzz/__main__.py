"""Soak run of the differential fuzz tests: ``python -m tests.fuzz --examples 10000``.

Runs every property in tests/fuzz with N examples each (CI runs 200) and prints
the examples tried, the failures found and the time taken.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--examples", type=int, default=10000, help="examples per property")
    parser.add_argument("-k", default=None, help="pytest -k expression to pick properties")
    args = parser.parse_args()
    os.environ["CNNIR_FUZZ_EXAMPLES"] = str(args.examples)

    import pytest

    class Counter:
        def __init__(self) -> None:
            self.passed = self.failed = 0
            self.failures: list[str] = []

        def pytest_runtest_logreport(self, report):  # noqa: ANN001
            if report.when == "call":
                if report.passed:
                    self.passed += 1
                elif report.failed:
                    self.failed += 1
                    self.failures.append(report.nodeid)

    counter = Counter()
    here = os.path.dirname(os.path.abspath(__file__))
    argv = [here, "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics"]
    if args.k:
        argv += ["-k", args.k]
    t0 = time.perf_counter()
    code = pytest.main(argv, plugins=[counter])
    dt = time.perf_counter() - t0
    print(f"\nsoak: {counter.passed + counter.failed} properties x {args.examples} examples, "
          f"{counter.failed} failing, {dt:.0f} s on {platform.machine()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()})")
    for f in counter.failures:
        print(f"  failing: {f}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
