"""How fast is a report, per format?  ``python benchmarks/bench_report.py [--quick]``

ResNet-152 (and a 100-fold chain of it with ``--depth``): the analysis, then each
format rendered from the same :class:`~cnnir.backends.report.Report`, in one run so
that the table and the JSON path are compared on the same machine and load.  The
table must be as fast as the analysis: it was drawn by rich (1.5 s for ResNet-152's
500 rows, the ``rich`` line here) and is now written out directly, line for line the
same text.  Prints the figures (median of several runs); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cnnir import load  # noqa: E402
from cnnir.analysis import analyze  # noqa: E402
from cnnir.backends import report as R  # noqa: E402
from cnnir.backends import tables  # noqa: E402


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    runs = 3 if ap.parse_args().quick else 9
    g = load("resnet152")
    rep = R.build_report(g)
    print(f"{platform.platform()}, Python {platform.python_version()}")
    print(f"resnet152: {len(rep.rows)} rows, median of {runs} runs")
    print(f"  {'analysis':<10} {median_s(lambda: analyze(g), runs) * 1e3:8.1f} ms")
    for fmt in R.FORMATS:
        print(f"  {fmt:<10} {median_s(lambda f=fmt: rep.render(f), runs) * 1e3:8.1f} ms")
    fast = R.text_table
    R.text_table = tables.text_table_rich
    try:
        print(f"  {'rich':<10} {median_s(lambda: rep.render('table'), 1) * 1e3:8.1f} ms"
              f"  (the former renderer, once)")
    finally:
        R.text_table = fast


if __name__ == "__main__":
    main()
