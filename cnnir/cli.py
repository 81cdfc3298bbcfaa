"""The ``cnnir`` command.

Every subcommand loads MODEL (a zoo name, ``net.py[:name]``, ``.onnx`` or ``.json``),
optionally runs a pass pipeline, then hands the graph to one backend.  A user's
mistake (any :class:`~cnnir.errors.CnnirError`) prints one message and exits 2;
``--debug`` shows the traceback.  Anything else is a cnnir bug: exit 1 with the
traceback.  Output files are written atomically.

Heavy libraries are imported by the backends that need them, never here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import CnnirError, UsageError

MODEL_HELP = ("a zoo name (see 'cnnir zoo'), a DSL file net.py or net.py:NAME, "
              "an .onnx file or a .json IR file")


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def positive_int(text: str, low: int = 1) -> int:
    """argparse type: an integer >= 1 (``low``)."""
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def depth_int(text: str) -> int:
    """argparse type for --depth: 0 (totals only) or more."""
    return positive_int(text, low=0)


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--input", metavar="CxHxW", help="override the input size, e.g. 3x299x299")


def _add_passes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passes", metavar="PIPELINE",
                   help='passes to run first, e.g. "fuse-conv-bn-relu,remove-dropout" '
                        "(see 'cnnir passes')")
    p.add_argument("--print-after-all", action="store_true",
                   help="print the IR after every pass (to stderr)")
    p.add_argument("--explain", action="store_true",
                   help="say what each pass changed and why candidates were skipped")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnir",
        description="Compile, analyse and draw convolutional neural networks.",
        epilog="Examples:\n"
               "  cnnir report resnet50\n"
               "  cnnir compile examples/googlenet.py --to onnx\n"
               "  cnnir draw examples/googlenet.py -o fig.pdf --level block\n"
               "  cnnir check net.py --input 3x299x299",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnir {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("check", help="load a model and infer every shape")
    _add_model(p)
    _add_passes(p)
    p.add_argument("--print", action="store_true", help="print the IR")

    p = sub.add_parser("report", help="per-layer table: shapes, params, MACs, memory, RF")
    _add_model(p)
    _add_passes(p)
    p.add_argument("--format", default="table",
                   choices=["table", "json", "csv", "md", "latex"], help="output format")
    p.add_argument("--depth", type=depth_int, default=None, metavar="N",
                   help="group rows by block down to depth N, with subtotals")
    p.add_argument("--columns", metavar="C1,C2", help="columns to show")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "int8"],
                   help="element type for memory figures")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N", help="batch size")
    p.add_argument("--compare", metavar="PIPELINE",
                   help="print before / after / delta for a pass pipeline")

    p = sub.add_parser("compile", help="emit ONNX, PyTorch source or JSON IR")
    _add_model(p)
    _add_passes(p)
    p.add_argument("--to", required=True, choices=["onnx", "torch", "json"], help="target")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output file (default: the model's name with the target's suffix)")
    p.add_argument("--batch", default="dynamic", metavar="N|dynamic",
                   help="ONNX batch size (default: a dynamic batch axis)")
    p.add_argument("--seed", type=int, default=0, help="seed for initial weights")
    p.add_argument("--weights", metavar="FILE.pt",
                   help="a PyTorch state_dict to take the weights from")
    p.add_argument("--external-data", action="store_true",
                   help="store ONNX weights in a side file")
    p.add_argument("--max-params", type=float, default=2e9,
                   help="refuse to materialise weights above this many parameters")

    p = sub.add_parser("draw", help="draw the architecture with Graphviz")
    _add_model(p)
    _add_passes(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="fig.svg, fig.pdf, fig.png or fig.dot (default: MODEL.svg)")
    p.add_argument("--level", default="layer", choices=["layer", "block", "stage"])
    p.add_argument("--detail", default="standard", choices=["compact", "standard", "full"])
    p.add_argument("--theme", default="paper", choices=["paper", "mono", "slides"])
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"])
    p.add_argument("--width", metavar="3.3in", help="drawing width (journal column: 3.3in)")
    p.add_argument("--collapse", metavar="KIND,...", help="block kinds to draw as one box")
    p.add_argument("--expand", metavar="KIND,...", help="block kinds to draw expanded")

    p = sub.add_parser("run", help="run with onnxruntime and time it")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP + " (or a compiled .onnx)")
    p.add_argument("--input", metavar="CxHxW", help="override the input size")
    p.add_argument("--passes", metavar="PIPELINE", help="passes to run before compiling")
    p.add_argument("--provider", default="auto", choices=["auto", "cuda", "tensorrt", "cpu"])
    p.add_argument("--batch", type=positive_int, default=1, metavar="N")
    p.add_argument("--repeat", type=positive_int, default=20, metavar="K", help="timed runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true",
                   help="compare the output with the PyTorch backend")

    sub.add_parser("zoo", help="list the built-in models")
    sub.add_parser("passes", help="list the passes and their options")
    return parser


# --------------------------------------------------------------------------- commands


def load_graph(args: argparse.Namespace) -> Any:
    """MODEL (+ --input), then --passes; returns the graph ready for a backend."""
    from .frontends import load

    pipeline = getattr(args, "passes", None)
    # with a pipeline the pass manager infers shapes (non-strictly before fix-residual)
    graph = load(args.model, input=getattr(args, "input", None), infer=not pipeline)
    if pipeline:
        from .passes.manager import PassManager

        pm = PassManager.from_string(
            pipeline, print_after_all=getattr(args, "print_after_all", False),
            printer=lambda s: print(s, file=sys.stderr))
        graph = pm.run(graph)
        if getattr(args, "explain", False):
            for rec in pm.records:
                print(f"[{rec.name}] {'changed' if rec.changed else 'no change'} "
                      f"({rec.seconds * 1e3:.1f} ms)", file=sys.stderr)
                for note in rec.notes:
                    print(f"  {note}", file=sys.stderr)
    elif getattr(args, "print_after_all", False):
        print(graph.format(), file=sys.stderr)
    return graph


def cmd_check(args: argparse.Namespace) -> int:
    graph = load_graph(args)
    if args.print:
        print(graph.format())
    outs = ", ".join(str(graph.shape(o)) for o in graph.outputs)
    print(f"ok: {graph.name}: {len(graph)} layers, input {graph.input_shape}, output {outs}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .backends.report import cli_report

    if args.output:
        from .util import check_writable

        check_writable(args.output)
    return cli_report(args, load_graph)


def cmd_compile(args: argparse.Namespace) -> int:
    from .backends import compile_cli

    if args.output:
        from .util import check_writable

        check_writable(args.output)
    return compile_cli(args, load_graph)


def cmd_draw(args: argparse.Namespace) -> int:
    if args.output:
        from .util import check_writable

        check_writable(args.output)
    try:
        from .backends.dot import cli_draw
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("cnnir"):
            raise UsageError("the Graphviz backend is not available in this build") from None
        raise
    return cli_draw(args, load_graph)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        from .backends.runtime import cli_run
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("cnnir"):
            raise UsageError("the onnxruntime backend is not available in this build") from None
        raise
    return cli_run(args, load_graph)


def cmd_zoo(args: argparse.Namespace) -> int:
    from . import zoo

    for name in zoo.names():
        print(f"{name:<20} {zoo.describe(name)}")
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from .passes import available

    for name, cls in available().items():
        opts = [f"{f.name}={f.default!r}" for f in fields(cls) if f.init]
        print(f"{name:<24} {cls.kind:<10} {cls.summary()}")
        if opts:
            print(f"{'':<24} {'':<10} options: {', '.join(opts)}")
    return 0


COMMANDS = {
    "check": cmd_check, "report": cmd_report, "compile": cmd_compile, "draw": cmd_draw,
    "run": cmd_run, "zoo": cmd_zoo, "passes": cmd_passes,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args) or 0
    except CnnirError as exc:
        if debug:
            raise
        print(str(exc), file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        from .extras import missing  # an extra not installed: one line naming it, exit 2

        err = missing(exc)
        if err is None or debug:
            raise
        print(str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `cnnir report resnet152 | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
