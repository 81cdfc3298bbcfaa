"""The ``cnnir`` command.

Every subcommand loads MODEL (a zoo name, ``net.py[:name]``, ``.onnx`` or ``.json``),
optionally runs a pass pipeline, then hands the graph to one backend.  The work is
:mod:`cnnir.api`'s: this module only turns argv into those calls and prints what
they return.  A user's
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
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import CnnirError, UsageError
from .util import human

if TYPE_CHECKING:
    from . import api
else:
    class _Api:
        """``cnnir.api``, imported when a command first uses it: ``cnnir --version`` and
        ``--help`` load no IR, no networkx."""

        def __getattr__(self, name: str) -> Any:
            import importlib

            return getattr(importlib.import_module("cnnir.api"), name)

    api = _Api()

MODEL_HELP = ("a zoo name (see 'cnnir zoo'), a DSL file net.py or net.py:NAME, "
              "an .onnx file or a .json IR file")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (where it has one the text does not already say)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UsageError instead of printing usage and exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

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
    _add_force(p)


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="use --input as given even where it looks channels-last (224x224x3)")


def _add_passes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passes", metavar="PIPELINE",
                   help='passes to run first, e.g. "fuse-conv-bn-relu,remove-dropout" '
                        "(see 'cnnir passes')")
    p.add_argument("--print-after-all", action="store_true",
                   help="print the IR after every pass (to stderr)")
    p.add_argument("--explain", action="store_true",
                   help="say what each pass changed and why candidates were skipped")


def _add_training(p: argparse.ArgumentParser, check: bool) -> None:
    """The training flags of ``report`` and ``check`` (issue 18)."""
    p.add_argument("--training", action="store_true",
                   help="one training step: what autograd keeps, backward MACs, the peak"
                   + (" (with --memory: does it fit; exit 3 if not)" if check else ""))
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum", "adam", "adamw"],
                   help="optimizer state for --training (momentum 1x, Adam 2x the params)")
    p.add_argument("--amp", action="store_true",
                   help="--training with autocast: float32 master weights, activations in "
                   "--dtype (bfloat16 or float16)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="--training: where it trains (dropout keeps a bool mask on CUDA)")
    p.add_argument("--frozen", metavar="LAYER,...",
                   help="--training: layers or blocks whose weights get no gradient")
    if check:
        p.add_argument("--memory", metavar="SIZE", help="--training: the budget, e.g. 24GiB")
        p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                       help="--training: batch size")
        p.add_argument("--dtype", default="float32",
                       choices=["float32", "bfloat16", "float16"],
                       help="--training: element type")


def _training_args(args: argparse.Namespace) -> dict[str, Any]:
    """The training options a command's flags give; training flags without
    --training are a usage error."""
    if not args.training:
        for flag, given in (("--optimizer", args.optimizer != "sgd"), ("--amp", args.amp),
                            ("--device", args.device != "cuda"), ("--frozen", args.frozen),
                            ("--memory", getattr(args, "memory", None))):
            if given:
                raise UsageError(f"{flag} applies to --training only")
        return {}
    frozen = tuple(f.strip() for f in (args.frozen or "").split(",") if f.strip())
    return {"batch": args.batch, "optimizer": args.optimizer, "dtype": args.dtype,
            "amp": args.amp, "device": args.device, "frozen": frozen}


def _add_figures(p: argparse.ArgumentParser) -> None:
    """The flags of the commands that print figures: report and compare."""
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--dtype", default="float32",
                   choices=["float32", "float16", "int8", "bfloat16"],
                   help="element type for memory figures")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="batch size for MACs and memory")
    p.add_argument("--standalone", action="store_true",
                   help="--format latex: a whole document instead of the table to \\input{}")


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
    _add_training(p, check=True)

    p = sub.add_parser("report", help="per-layer table: shapes, params, MACs, memory, RF")
    _add_model(p)
    _add_passes(p)
    p.add_argument("--format", default=None,
                   choices=["table", "json", "csv", "md", "latex"],
                   help="output format (default: from the -o suffix, .json .csv .md .tex, "
                        "else table)")
    p.add_argument("--depth", type=depth_int, default=None, metavar="N",
                   help="group rows by block down to depth N, with subtotals")
    p.add_argument("--columns", metavar="C1,C2",
                   help="columns to show, in order: name, op, attrs, scope, output, params, "
                        "buffers, macs, flops, other_ops, activations, param_bytes, rf, "
                        "rf_size, rf_min_size, rf_stride, rf_padding, rf_aligned, rf_whole, "
                        "loc (default: each format's own set; the table drops some to fit "
                        "a terminal)")
    _add_figures(p)
    p.add_argument("--compare", metavar="PIPELINE",
                   help="print before / after / delta for a pass pipeline")
    p.add_argument("--symbolic", action="store_true",
                   help="params, MACs and memory as exact formulas of H, W and the batch N, "
                        "with the sizes where they hold (checked against the analysis)")
    _add_training(p, check=False)

    p = sub.add_parser("compare", help="models side by side: layers, params, MACs, memory")
    p.add_argument("models", metavar="MODEL", nargs="+", help=MODEL_HELP + " (two or more)")
    p.add_argument("--format", default=None, choices=["table", "json", "csv", "md", "latex"],
                   help="output format (default: from the -o suffix, else table)")
    _add_figures(p)

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
    p.add_argument("--level", default="layer", choices=["layer", "block", "stage"],
                   help="what one box is: a layer; a block (each @block with no @block "
                        "inside, e.g. a bottleneck); a stage (each with stage() group, e.g. "
                        "GoogLeNet's inception3..5, else each top-level scope, e.g. "
                        "ResNet's layer1..layer4)")
    p.add_argument("--detail", default="standard", choices=["compact", "standard", "full"],
                   help="box text: compact the layer type; standard adds kernel/stride and "
                        "the output CxHxW; full adds the layer's name, params and MACs")
    p.add_argument("--theme", default="paper", choices=["paper", "mono", "slides"],
                   help="paper: colour for print; mono: black and white; slides: large text")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"],
                   help="flow direction: TB top to bottom, LR left to right")
    p.add_argument("--width", metavar="3.3in", help="drawing width (journal column: 3.3in)")
    p.add_argument("--collapse", metavar="KIND,...", help="block kinds to draw as one box")
    p.add_argument("--expand", metavar="KIND,...", help="block kinds to draw expanded")
    p.add_argument("--legend", default="bottom", choices=["bottom", "top", "right", "none"],
                   help="where the legend goes: centred below (default) or above the drawing, "
                        "floating at its top right (makes it wider), or none")
    p.add_argument("--title", metavar="TEXT", help="a title centred above the drawing")

    p = sub.add_parser("run", help="run with onnxruntime and time it")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP + " (or a compiled .onnx)")
    p.add_argument("--input", metavar="CxHxW", help="override the input size")
    _add_force(p)
    p.add_argument("--passes", metavar="PIPELINE", help="passes to run before compiling")
    p.add_argument("--provider", default="auto", choices=["auto", "cuda", "tensorrt", "cpu"],
                   help="onnxruntime provider: auto is CUDA where it initialises, else CPU; "
                        "cuda/tensorrt fail rather than fall back")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="images per run")
    p.add_argument("--repeat", type=positive_int, default=20, metavar="K",
                   help="timed runs (after 3 warm-up runs)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the random weights and input")
    p.add_argument("--check", action="store_true",
                   help="compare the output with the PyTorch backend")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say why auto chose CPU (no NVIDIA driver, a CPU-only onnxruntime, "
                        "a CUDA provider that did not initialise)")

    p = sub.add_parser("zoo", help="list the built-in models")
    p.add_argument("--format", default="table", choices=["table", "json"],
                   help="table: a line per model; json: a list of {name, input, params, "
                        "macs, summary, paper} with exact integers")
    sub.add_parser("passes", help="list the passes and their options",
                   description="Passes run with --passes PIPELINE: names joined by commas, "
                               "each with optional options in braces, e.g. "
                               "fuse-conv-bn-relu,insert-bottleneck{ratio=4}")
    _add_sweep(sub)
    _add_explain(sub)
    return parser


# --------------------------------------------------------------------------- commands
# Each command turns its flags into one cnnir.api call and prints what it returns.


def _pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """MODEL's flags shared by every command: --input, --passes, --print-after-all, --explain."""
    return {"input": _input(args), "passes": getattr(args, "passes", None),
            "explain": getattr(args, "explain", False),
            "print_after_all": getattr(args, "print_after_all", False)}


def _input(args: argparse.Namespace) -> Any:
    """--input, marked as insisted upon with --force."""
    text = getattr(args, "input", None)
    if text is None or not getattr(args, "force", False):
        return text
    from .frontends import ForcedInput, parse_input

    return ForcedInput(parse_input(text) or ())


def cmd_check(args: argparse.Namespace) -> int:
    train = _training_args(args)
    if train:
        if args.print:
            raise UsageError("--print does not apply to --training")
        if not args.memory:
            raise UsageError("check --training needs --memory SIZE (e.g. 24GiB); "
                             "'cnnir report --training' shows the figures")
        pipe = _pipeline(args)
        result = api.budget(args.model, args.memory, input=pipe["input"],
                            passes=pipe["passes"], **train)
        print(result)
        return 0 if result.fits else 3
    graph = api.check(args.model, **_pipeline(args))
    if args.print:
        print(graph.format())
    outs = ", ".join(str(graph.shape(o)) for o in graph.outputs)
    from .analysis import layer_count  # the input is not a layer

    print(f"ok: {graph.name}: {layer_count(graph)} layers, input {graph.input_shape}, "
          f"output {outs}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    args.format = api.report_format(args.format, args.output)  # -o r.json: JSON
    train = _training_args(args)
    if train:
        for flag, value in (("--compare", args.compare), ("--depth", args.depth),
                            ("--columns", args.columns), ("--symbolic", args.symbolic or None)):
            if value is not None:
                raise UsageError(f"{flag} does not apply to --training")
        rep = api.training(args.model, format=args.format, output=args.output,
                           **_pipeline(args), **train)
        if not args.output:
            print(str(rep), end="")
        return 0
    if args.compare is not None:  # --compare "" is refused by the API, not ignored
        for flag, value in (("--depth", args.depth), ("--columns", args.columns),
                            ("--symbolic", args.symbolic or None)):
            if value is not None:
                raise UsageError(f"{flag} does not apply to --compare (it prints totals, "
                                 f"not layers)")
        result: Any = api.compare(args.model, args.compare, format=args.format,
                                  dtype=args.dtype, batch=args.batch, output=args.output,
                                  standalone=args.standalone, **_pipeline(args))
    else:
        result = api.report(args.model, format=args.format, depth=args.depth,
                            columns=args.columns, dtype=args.dtype, batch=args.batch,
                            output=args.output, width=_terminal_width(args),
                            standalone=args.standalone, symbolic=args.symbolic,
                            **_pipeline(args))
    if not args.output:
        print(str(result), end="")
    return 0


def _terminal_width(args: argparse.Namespace) -> int | None:
    """The terminal's columns when the table goes to one (a pipe or file gets it whole)."""
    if args.output or args.format != "table" or not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


def cmd_compare(args: argparse.Namespace) -> int:
    result = api.compare_models(args.models, format=args.format, dtype=args.dtype,
                                batch=args.batch, output=args.output,
                                standalone=args.standalone)
    if not args.output:
        print(str(result), end="")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    if args.output:
        api.check_output(args.output)
    graph = api.check(args.model, **_pipeline(args))
    if args.to != "onnx":  # the flags that only ONNX takes, named as flags
        if args.external_data:
            raise UsageError("--external-data applies to --to onnx only")
        if args.batch not in (None, "dynamic"):
            why = ": the PyTorch module takes any batch size" if args.to == "torch" else ""
            raise UsageError(f"--batch applies to --to onnx only{why}")
    out = args.output or f"{graph.name}{api.SUFFIXES[args.to]}"
    api.compile(graph, to=args.to, output=out, weights=args.weights, seed=args.seed,
                batch=args.batch, external_data=args.external_data or None,
                max_params=args.max_params)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    options = {"level": args.level, "detail": args.detail, "theme": args.theme,
               "rankdir": args.rankdir, "width": args.width,
               "collapse": args.collapse or (), "expand": args.expand or (),
               "legend": args.legend, "title": args.title}
    api.draw_check(args.output, **options)  # a bad -o or --width fails before any work
    graph = api.check(args.model, **_pipeline(args))
    out = args.output or f"{graph.name}.svg"
    diagram = api.draw(graph, out, **options)
    note = diagram.size_note() if args.width and diagram.saved != "dot" else ""
    print(f"wrote {out}{note}", file=sys.stderr)
    small = diagram.small_text_warning() if args.width and diagram.saved != "dot" else None
    if small:
        print(f"cnnir draw: warning: {small}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    res = api.run(args.model, provider=args.provider, batch=args.batch, repeat=args.repeat,
                  seed=args.seed, check=args.check, verbose=args.verbose, **_pipeline(args))
    for note in res.notes:
        print(note, file=sys.stderr)
    y = res.output
    print(f"model       {res.title}: input {res.batch}x{'x'.join(map(str, res.input_shape))}, "
          f"output {'x'.join(map(str, y.shape))}")
    print(f"provider    {res.provider_label} ({res.provider})")
    print(f"latency     median {res.median_ms:.3f} ms, p90 {res.p90_ms:.3f} ms "
          f"({args.repeat} runs, batch {res.batch})")
    print(f"throughput  {res.throughput:.1f} images/s")
    if res.macs is not None:
        print(f"compute     {res.macs:,} MACs/image ({human(res.macs)}), "
              f"{res.gflops:.1f} GFLOP/s achieved")
    else:
        print(f"compute     {res.macs_note}")
    if res.check is not None:
        diff, scale = res.check
        print(f"check       max |onnxruntime - pytorch| = {diff:.3g} "
              f"({diff / max(scale, 1e-30):.3g} of the output scale {scale:.3g}): "
              + ("ok" if res.check_ok else f"MISMATCH (tolerance {res.tolerance:g})"))
        if not res.check_ok:
            return 1
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    rows = api.zoo_table()
    if args.format == "json":
        import json

        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    width = max(len(r.name) for r in rows)
    print(f"{'name':<{width}}  {'input':<9}  {'params':>7}  {'MACs':>7}  description")
    for r in rows:
        paper = f" ({r.paper})" if r.paper else ""
        print(f"{r.name:<{width}}  {'x'.join(map(str, r.input)):<9}  {human(r.params):>7}  "
              f"{human(r.macs):>7}  {r.summary}{paper}")
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    print("PIPELINE: passes joined by commas, options in braces: "
          "name{key=value,key=value}, e.g. fuse-conv-bn-relu,insert-bottleneck{ratio=4}")
    print()
    for info in api.pass_list():
        opts = [f"{k}={v!r}" for k, v in info.options.items()]
        print(f"{info.name:<24} {info.kind:<10} {info.summary}")
        if opts:
            print(f"{'':<24} {'':<10} options: {', '.join(opts)}")
    return 0


def _add_explain(sub: Any) -> None:
    p = sub.add_parser("explain", help="each figure with its derivation; --solve: inverse "
                                       "questions (padding, output, rf, bottleneck)",
                       epilog="Examples:\n"
                              "  cnnir explain alexnet --layer features/conv1\n"
                              "  cnnir explain googlenet --depth 1 --format latex\n"
                              "  cnnir explain --solve padding --kernel 5\n"
                              "  cnnir explain --solve output --size 227 --out 55\n"
                              "  cnnir explain --solve rf --rf 7 --kernel 3\n"
                              "  cnnir explain --solve bottleneck --size 192x28x28 "
                              "--filters 32 --kernel 5 --reduce 16",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", nargs="?", help=MODEL_HELP)
    p.add_argument("--input", metavar="CxHxW", help="override the input size, e.g. 3x299x299")
    p.add_argument("--passes", metavar="PIPELINE", help="passes to run first")
    p.add_argument("--layer", metavar="NAME", help="one layer, or every layer of a block")
    p.add_argument("--depth", type=depth_int, default=None, metavar="N",
                   help="blocks down to depth N, each figure the sum of its layers")
    p.add_argument("--format", default="text", choices=["text", "md", "latex", "json"],
                   help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "int8"],
                   help="element type for memory figures")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N", help="batch size")
    g = p.add_argument_group("inverse questions (--solve)")
    g.add_argument("--solve", metavar="QUESTION",
                   choices=["padding", "output", "rf", "bottleneck"],
                   help="padding | output | rf | bottleneck")
    g.add_argument("--size", metavar="I|CxHxW", help="input size (with a model: the layer's)")
    for flag, what in (("--kernel", "kernel size F"), ("--stride", "stride S"),
                       ("--dilation", "dilation D"), ("--out", "target output size"),
                       ("--rf", "target receptive field"), ("--r-in", "RF of the input"),
                       ("--j-in", "stride (jump) of the input"),
                       ("--filters", "output channels of the conv"),
                       ("--reduce", "channels of the 1x1 reduction")):
        g.add_argument(flag, type=positive_int, metavar="N", help=what)
    g.add_argument("--bias", action="store_true", help="bottleneck: count biases")


def _size(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must be I or CxHxW (e.g. 192x28x28), got {text!r}") from None
    if not dims or min(dims) < 1:
        raise UsageError(f"--size must be positive, got {text!r}")
    return dims


def cmd_explain(args: argparse.Namespace) -> int:
    if args.solve:
        for flag, value in (("--depth", args.depth), ("--passes", args.passes)):
            if value is not None:
                raise UsageError(f"{flag} does not apply to --solve")
        result: Any = api.solve(
            args.solve, model=args.model, layer=args.layer, format=args.format,
            output=args.output, input=args.input, size=_size(args.size), kernel=args.kernel,
            stride=args.stride, dilation=args.dilation, out=args.out, rf=args.rf,
            r_in=args.r_in, j_in=args.j_in, filters=args.filters, reduce=args.reduce,
            bias=args.bias or None)
    else:
        if not args.model:
            raise UsageError("explain needs a MODEL (or --solve QUESTION)")
        result = api.explain(args.model, layer=args.layer, depth=args.depth,
                             format=args.format, dtype=args.dtype, batch=args.batch,
                             output=args.output, input=args.input, passes=args.passes)
    if not args.output:
        print(str(result), end="")
    return 0


COMMANDS = {
    "check": cmd_check, "report": cmd_report, "compile": cmd_compile, "draw": cmd_draw,
    "run": cmd_run, "zoo": cmd_zoo, "passes": cmd_passes, "explain": cmd_explain,
    "compare": cmd_compare,
}


# --------------------------------------------------------------------------- sweep


def _add_sweep(sub: Any) -> None:
    p = sub.add_parser("sweep", help="cost every variant of a design space (Dask)",
                       description="Build and cost every variant of a parameterised model: "
                                   "the product of --grid, or --sample N draws from it.")
    p.add_argument("model", metavar="MODEL",
                   help="a zoo name or a DSL file net.py[:NAME] whose @model takes keywords")
    p.add_argument("--grid", nargs="+", metavar="NAME=VALUES", default=[],
                   help="width=32,64,96  width=16..128:step8  lr=1e-3..1e-1:log  "
                        "input=3x160x160,3x224x224")
    p.add_argument("--sample", type=positive_int, metavar="N",
                   help="draw N distinct variants instead of the whole product")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (and of --measure)")
    p.add_argument("--where", metavar="EXPR", help="keep variants where EXPR holds, "
                   "e.g. 'macs < 600e6 and depth != 34'")
    p.add_argument("--input", metavar="CxHxW", help="override the input size")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="results directory (default: sweep-MODEL); a rerun resumes it")
    p.add_argument("--pareto", metavar="M1,M2", help="metrics of the Pareto front "
                   "(minimised; max:NAME to maximise), e.g. macs,latency")
    p.add_argument("--plot", metavar="FMT,...", default="",
                   help="draw the scatter and EDF plots as png, svg and/or pdf")
    p.add_argument("--edf", metavar="M1,M2", help="metrics to draw EDFs of (default: the "
                   "scatter's x)")
    p.add_argument("--group", metavar="PARAM", help="one colour / EDF curve per value of PARAM")
    p.add_argument("--measure", action="store_true",
                   help="add the onnxruntime latency of each variant's ONNX")
    p.add_argument("--repeat", type=positive_int, default=20, metavar="K",
                   help="timed runs per variant with --measure (the median is kept)")
    p.add_argument("--provider", default="cpu", choices=["auto", "cuda", "tensorrt", "cpu"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "int8"])
    p.add_argument("--batch", type=positive_int, default=1, metavar="N")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="local worker processes (default: every core)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="a Dask scheduler (tcp://host:8786), or 'serial' for this process")
    p.add_argument("--chunk", type=positive_int, metavar="N", help="variants per task")


def cmd_sweep(args: argparse.Namespace) -> int:
    out = args.output or "sweep-" + os.path.splitext(os.path.basename(
        args.model.split(":")[0]))[0]
    res = api.sweep(args.model, args.grid, sample=args.sample, seed=args.seed, where=args.where,
                    output=out, input=args.input, dtype=args.dtype, batch=args.batch,
                    measure=args.measure, repeat=args.repeat, provider=args.provider,
                    pareto=args.pareto, plots=args.plot, edf=args.edf, group=args.group,
                    scheduler=args.scheduler, workers=args.workers, chunk=args.chunk)
    rate = f", {res.costed / res.seconds:.0f} variants/s" if res.costed and res.seconds else ""
    print(f"swept {len(res.rows)} variants of {args.model}: {res.costed} costed now on "
          f"{res.workers} worker(s) in {res.seconds:.1f} s{rate}, {res.skipped} finished "
          f"before, {res.failed} failed", file=sys.stderr)
    if res.pareto_metrics:
        names = [*res.parameters, *res.pareto_metrics]
        print(f"Pareto front over {', '.join(res.pareto_metrics)}: {len(res.pareto)} variants")
        print("  ".join(f"{n:>12}" for n in names))
        for i in res.pareto:
            row = res.rows[i]
            print("  ".join(f"{_sweep_cell(row.get(n)):>12}" for n in names))
    for path in res.files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _sweep_cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return human(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 10_000 else str(v)


COMMANDS["sweep"] = cmd_sweep


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named with the subcommand's help, where the options are listed
            where = f"cnnir {args.command}" if args.command else "cnnir"
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} "
                             f"(see '{where} --help')")
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
