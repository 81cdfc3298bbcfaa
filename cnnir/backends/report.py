"""Reports: the per-layer table (name, op, output shape, source line)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..ir import Graph


def layer_rows(graph: Graph) -> list[dict[str, Any]]:
    rows = []
    for n in graph.nodes():
        op = graph.op(n)
        loc = graph.loc(n)
        rows.append({
            "name": n, "op": op.kind, "attrs": op.attrs(),
            "output_shape": list(graph.shape(n)), "loc": str(loc) if loc else "",
        })
    return rows


def render_table(graph: Graph) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{graph.name}  (input {graph.input_shape})", title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("output", "right"), ("source", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in layer_rows(graph):
        op = r["op"] + (f"[{r['attrs']}]" if r["attrs"] else "")
        table.add_row(r["name"], op, "x".join(map(str, r["output_shape"])), r["loc"])
    buf = StringIO()
    Console(file=buf, width=160, force_terminal=False).print(table)
    return buf.getvalue()


def cli_report(args: argparse.Namespace, load_graph: Callable[[argparse.Namespace], Graph]) -> int:
    graph = load_graph(args)
    text = render_table(graph)
    if args.output:
        from ..util import write_atomic

        write_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
