"""The Python face of every ``cnnir`` command, one call each.

::

    import cnnir

    g = cnnir.load("examples/googlenet.py")        # cnnir check  (shapes inferred)
    g.analyze().macs                                # the totals of every analysis
    print(g.report(depth=1))                        # cnnir report --depth 1
    g.report(format="json").to_dict()               # the JSON contract, as a dict
    fused = g.passes("fuse-conv-bn-relu")           # cnnir compile --passes ...
    cnnir.compile(g, to="onnx", output="g.onnx")    # cnnir compile --to onnx
    g.draw("fig.pdf", level="block")                # cnnir draw -o fig.pdf
    cnnir.run(g).median_ms                          # cnnir run

The same functions are methods of :class:`cnnir.Graph` (``g.compile(to=...)``,
``g.draw()``, ``g.run()``).  Each imports its backend only when called, so the
analysis path never imports torch or onnxruntime.  Errors are the CLI's:
:class:`cnnir.CnnirError` subclasses with the same messages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import BackendError, CnnirError, MissingFileError, UsageError
from .ir import Graph

if TYPE_CHECKING:
    from .analysis import Analysis
    from .backends.compare import Comparison
    from .backends.report import Report
    from .passes.manager import PassRecord

#: ``compile(to=...)`` targets: what each returns
TARGETS = {
    "onnx": "an onnx.ModelProto (opset 17, dynamic batch axis)",
    "torch": "the source of a standalone PyTorch module (str)",
    "module": "a torch.fx.GraphModule (nn.Module) with the weights loaded",
    "json": "the JSON IR document (str)",
}

#: the file suffix of each target that writes a file (``cnnir compile``'s default name)
SUFFIXES = {"onnx": ".onnx", "torch": ".py", "json": ".json"}

#: where the pass log (``explain``, ``print_after_all``) goes unless ``log`` is given
Log = Callable[[str], None]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


# --------------------------------------------------------------------------- loading


def load(model: str, input: str | Sequence[int] | None = None, infer: bool = True, *,
         force: bool = False) -> Graph:
    """``MODEL`` as the CLI takes it: a zoo name, ``net.py[:NAME]``, ``.onnx`` or ``.json``.

    ``input`` (``"3x299x299"`` or a tuple) overrides the input size.  The shapes are
    inferred unless ``infer=False`` (a pipeline starting with a repair pass infers
    them itself).  Zoo names are resolved here, not in the frontends: the zoo is
    models written in the DSL (a user of the frontend, like ``examples/``), and a
    name is a reference the command layer resolves, as it resolves paths.

    An ``input`` that looks channels-last (``224x224x3``) is refused with "did you
    mean 3x224x224?" unless ``force`` (:func:`cnnir.frontends.check_input_layout`);
    one that changes a zoo model's declared channels is noted on stderr.
    """
    from .frontends import ForcedInput, check_input_layout, is_file_spec, parse_input
    from .frontends import load as load_file

    if force and input is not None:
        input = ForcedInput(parse_input(input) or ())
    if is_file_spec(model):
        return load_file(model, input=input, infer=infer)
    shape = parse_input(input)
    from . import zoo
    from .frontends.dsl import user_code

    m = zoo.get(model)
    note = check_input_layout(input if isinstance(input, ForcedInput) else shape,
                              m.input, model)
    if note:
        _stderr(note)
    with user_code():
        graph = m.build(shape)
    if infer:
        from .passes.infer_shapes import infer_shapes

        graph = infer_shapes(graph)
    return graph


def explain_lines(records: Sequence[PassRecord]) -> list[str]:
    """``--explain``: what each pass of a run did, one header line per pass and its notes."""
    lines = []
    for rec in records:
        lines.append(f"[{rec.name}] {'changed' if rec.changed else 'no change'} "
                     f"({rec.seconds * 1e3:.1f} ms)")
        lines.extend(f"  {note}" for note in rec.notes)
    return lines


def check(model: Graph | str, input: str | Sequence[int] | None = None,
          passes: str | None = None, *, explain: bool = False, print_after_all: bool = False,
          log: Log | None = None) -> Graph:
    """``cnnir check``: the model loaded (``input`` overrides its size), ``passes`` run,
    every shape inferred.  Every command starts here.

    ``explain`` logs what each pass changed and why candidates were skipped;
    ``print_after_all`` logs the IR after every pass (or once, without passes).
    The log goes to ``log`` (a function taking a line), by default stderr.
    """
    return _prepare(model, input, passes, explain, print_after_all, log)


def _prepare(model: Graph | str, input: Any, passes: str | None, explain: bool,
             print_after_all: bool, log: Log | None) -> Graph:
    """:func:`check`'s work (positional, for the commands; :func:`run`'s ``check`` is a flag)."""
    say = log or _stderr
    if isinstance(model, Graph):
        graph = model
        if not passes and any(graph.meta(n).get("shape") is None for n in graph.nodes()):
            from .passes.infer_shapes import InferShapes

            InferShapes().run(graph)
    elif isinstance(model, str):
        # with a pipeline the pass manager infers shapes (non-strictly before fix-residual)
        graph = load(model, input=input, infer=not passes)
    else:
        raise UsageError(f"expected a cnnir.Graph or a model name/path, "
                         f"got {type(model).__name__}")
    if passes:
        from .passes.manager import PassManager

        pm = PassManager.from_string(passes, print_after_all=print_after_all, printer=say)
        graph = pm.run(graph)
        if explain:
            for line in explain_lines(pm.records):
                say(line)
    elif print_after_all:
        say(graph.format())
    return graph


def run_passes(model: Graph | str, pipeline: str) -> Graph:
    """A new graph: ``pipeline`` (``"fix-residual,fuse-conv-bn-relu"``) run on ``model``."""
    from .passes.manager import run_pipeline

    return run_pipeline(model if isinstance(model, Graph) else load(model, infer=False),
                        pipeline)


def notebook_svg(graph: Graph) -> str | None:
    """The SVG Jupyter shows for a graph; None (plain repr) without Graphviz."""
    from .backends.dot import notebook_svg as _svg

    return _svg(graph)


def check_output(path: str, image: bool = False) -> None:
    """What every writing command checks before any work: ``path`` can be written
    (and, with ``image``, its suffix names a drawing format)."""
    from .util import check_writable

    check_writable(path)
    if image:
        from .backends.dot import _format_of

        _format_of(path)


def _backend(module: str, what: str) -> Any:
    """Import a backend (or the JSON frontend) for a command; a build without that
    cnnir module says so in one line (a missing third-party package is re-raised)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("cnnir"):
            raise UsageError(f"{what} is not available in this build") from None
        raise


#: the module each ``compile`` target needs; ``torch`` source is checked against
#: (and its weights file read by) the PyTorch backend, so it needs torch too
_TARGET_MODULES = {"onnx": "cnnir.backends.onnx_export", "torch": "cnnir.backends.pytorch",
                   "module": "cnnir.backends.pytorch", "json": "cnnir.frontends.json_io"}


def _write(path: str, data: str | bytes) -> None:
    from .util import write_atomic

    write_atomic(path, data)


#: a report file's suffix -> the format it holds (``-o out.json`` writes JSON)
REPORT_SUFFIXES = {".json": "json", ".csv": "csv", ".md": "md", ".tex": "latex",
                   ".txt": "table"}


def report_format(format: str | None, output: str | None) -> str:
    """The format of ``report``/``compare``: ``format``, else ``output``'s suffix, else
    ``table``; a ``format`` that contradicts the suffix (``--format csv -o r.json``) is
    refused rather than written into the wrong kind of file."""
    suffix = os.path.splitext(output)[1].lower() if output else ""
    implied = REPORT_SUFFIXES.get(suffix)
    if format is None:
        return implied or "table"
    if implied is not None and implied != format:
        raise UsageError(f"--format {format} does not match the output file {output} "
                         f"(a {suffix} file holds --format {implied}); drop --format to "
                         f"take the format from the suffix")
    return format


# --------------------------------------------------------------------------- analysis


def analyze(model: Graph | str, dtype: str = "float32", batch: int = 1) -> Analysis:
    """Every analysis (shapes, params, MACs, memory, receptive fields); the totals."""
    from .analysis import analyze as _analyze

    return _analyze(_prepare(model, None, None, False, False, None), dtype=dtype, batch=batch)


def report(model: Graph | str, format: str | None = None, depth: int | None = None,
           columns: str | list[str] | None = None, dtype: str = "float32",
           batch: int = 1, *, output: str | None = None,
           input: str | Sequence[int] | None = None, passes: str | None = None,
           explain: bool = False, print_after_all: bool = False,
           log: Log | None = None, width: int | None = None,
           standalone: bool = False, symbolic: bool = False) -> Report:
    """``cnnir report``: a :class:`~cnnir.backends.report.Report`.

    ``str(r)`` is the text in ``format``, ``r.render("latex")`` another format,
    ``r.to_dict()`` the JSON contract; in Jupyter it shows as an HTML table.
    ``output`` writes the text atomically too; ``format`` defaults to its suffix
    (``.json``, ``.csv``, ``.md``, ``.tex``), else ``table`` (:func:`report_format`).
    ``width`` (a terminal's columns) makes the default table drop columns to fit, and
    say which; columns given with ``columns`` are always shown.  LaTeX is the table
    fragment to ``\\input{}``, a whole document with ``standalone``.  ``symbolic``
    adds the costs as formulas of H, W and the batch (:func:`symbolic`) to every format
    but CSV.
    """
    from .backends.report import FORMATS, build_report, parse_columns

    format = report_format(format, output)
    if output is not None:
        check_output(output)
    if format not in FORMATS:
        raise UsageError(f"unknown report format {format!r}; formats: {', '.join(FORMATS)}")
    text = columns if columns is None or isinstance(columns, str) else ",".join(columns)
    cols = parse_columns(text, format)  # a bad column fails before any work
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    if symbolic and format == "csv":
        raise UsageError("--symbolic: a CSV file holds the layers' rows only; the formulas "
                         "go into --format table, json, md or latex")
    graph = _prepare(model, input, passes, explain, print_after_all, log)
    rep = build_report(graph, dtype=dtype, batch=batch, depth=depth)
    if symbolic:
        rep.symbolic = _symbolic(model if isinstance(model, str) else graph, input=input,
                                 dtype=dtype, batch=batch, passes=passes)
    rep.columns = None if format == "json" else cols
    rep.format = format
    rep.width = width if columns is None else None
    rep.standalone = standalone
    if output is not None:
        _write(output, str(rep))
    return rep


def symbolic(model: Graph | str, input: str | Sequence[int] | None = None,
             dtype: str = "float32", batch: int = 1, *, passes: str | None = None) -> Any:
    """``cnnir report --symbolic``: params, MACs and memory as exact polynomials in the
    input's H and W and the batch N (:class:`cnnir.passes.symbolic.Symbolic`), with the
    sizes where they hold and the sizes they were checked at.

    A model name or file is rebuilt at each size it is sampled at (its ``--input``
    override, then ``passes``); ``input`` sets the reference size, and with it the
    residue class.  A :class:`Graph` is resized by its input node (layers that take
    their sizes from their inputs follow).  One that cannot be made symbolic (a fixed
    input, a fixed reshape) raises a :class:`CnnirError` saying why.
    """
    from .passes.symbolic import fit

    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    base = _prepare(model, input, passes, False, False, None)
    shape = tuple(base.input_shape)
    if len(shape) != 3:
        raise CnnirError(f"{base.name} cannot be made symbolic: its input is flat "
                         f"({shape[0]} features), without H and W")
    c = shape[0]
    if isinstance(model, str):
        def sample(h: int, w: int) -> Graph:
            graph = load(model, input=(c, h, w), infer=not passes, force=True)
            return _prepare(graph, None, passes, False, False, None)
    else:
        def sample(h: int, w: int) -> Graph:
            from .ops import Input
            from .passes.infer_shapes import infer_shapes

            graph = base.copy()
            graph.set_op(graph.input_nodes[0], Input(shape=(c, h, w)))
            for n in graph.nodes():
                graph.meta(n).pop("shape", None)
            return infer_shapes(graph)
    return fit(sample, (c, shape[1], shape[2]), model=base.name, dtype=dtype, batch=batch)


_symbolic = symbolic  # report()'s flag of the same name hides the function there


#: the columns of :func:`summary` (torchinfo's: layer, output shape, params; and MACs)
SUMMARY_COLUMNS = ["name", "op", "output", "params", "macs"]


def summary(model: Graph | str, depth: int | None = None, dtype: str = "float32",
            batch: int = 1, *, input: str | Sequence[int] | None = None) -> Report:
    """``graph.summary()``: what torchinfo's ``summary`` shows, as a report of
    :data:`SUMMARY_COLUMNS` (``str()`` the text, Jupyter an HTML table, ``.to_dict()``
    the JSON contract)."""
    return report(model, "table", depth=depth, columns=SUMMARY_COLUMNS, dtype=dtype,
                  batch=batch, input=input)


def compare(model: Graph | str, pipeline: str, format: str | None = None,
            dtype: str = "float32",
            batch: int = 1, *, output: str | None = None,
            input: str | Sequence[int] | None = None, passes: str | None = None,
            explain: bool = False, print_after_all: bool = False,
            log: Log | None = None, standalone: bool = False) -> Comparison:
    """``cnnir report --compare PIPELINE``: before / after / delta of ``pipeline``.

    The model after ``passes`` is *before*; *after* is before + ``pipeline``
    (:class:`~cnnir.backends.compare.Comparison`; ``str(c)`` is the text in
    ``format``).  ``explain`` logs what each pass of both pipelines did.
    """
    try:
        from .backends.compare import RENDERERS
        from .backends.compare import compare as _compare
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("cnnir"):
            raise UsageError("--compare is not available in this build") from None
        raise
    from . import zoo
    from .frontends import is_file_spec

    if pipeline.lower() in zoo.MODELS or (is_file_spec(pipeline) and os.path.exists(pipeline)):
        name = model if isinstance(model, str) else model.name
        raise UsageError(f"--compare takes a pass pipeline, and {pipeline!r} is a model; "
                         f"to compare models: cnnir compare {name} {pipeline}")
    if not pipeline.replace(",", "").strip():
        raise UsageError(f"--compare needs a pass pipeline, got {pipeline!r}; e.g. --compare "
                         f"fuse-conv-bn-relu (see 'cnnir passes')")
    format = report_format(format, output)
    if output is not None:
        check_output(output)
    if format not in RENDERERS:
        raise UsageError(f"unknown format {format!r}; formats: {', '.join(RENDERERS)}")
    graph = _prepare(model, input, passes, explain, print_after_all, log)
    result = _compare(graph, pipeline, dtype=dtype, batch=batch)
    result.format = format
    result.standalone = standalone
    if explain:
        for line in explain_lines(result.records):
            (log or _stderr)(line)
    if output is not None:
        _write(output, str(result))
    return result


def compare_models(models: Sequence[Graph | str], format: str | None = None,
                   dtype: str = "float32", batch: int = 1, *, output: str | None = None,
                   standalone: bool = False) -> Any:
    """``cnnir compare A B [C ...]``: layers, params, buffers, MACs, other ops, memory,
    the output's receptive field and per-stage rows of each model side by side
    (:class:`~cnnir.backends.compare.Models`; ``str(m)`` is the text in ``format``,
    from ``output``'s suffix when not given)."""
    from .backends.compare import MODEL_RENDERERS
    from .backends.compare import compare_models as _compare_models

    if len(models) < 2:
        raise UsageError(f"compare needs two models or more, got {len(models)}")
    format = report_format(format, output)
    if format not in MODEL_RENDERERS:
        raise UsageError(f"unknown format {format!r}; formats: {', '.join(MODEL_RENDERERS)}")
    if output is not None:
        check_output(output)
    result = _compare_models([_prepare(m, None, None, False, False, None) for m in models],
                             dtype=dtype, batch=batch)
    result.format, result.standalone = format, standalone
    if output is not None:
        _write(output, str(result))
    return result


# --------------------------------------------------------------------------- compile


def compile(model: Graph | str, to: str = "onnx", output: str | None = None, *,
            passes: str | None = None, weights: Any = None, seed: int = 0,
            batch: int | str = "dynamic", external_data: bool | None = None,
            max_params: float = 2e9, input: str | Sequence[int] | None = None,
            explain: bool = False, print_after_all: bool = False,
            log: Log | None = None) -> Any:
    """``cnnir compile --to TARGET``: what each target returns is in :data:`TARGETS`.

    ``passes`` runs a pipeline first.  ``weights``: ``{node: {name: array}}``, a
    PyTorch module of the backend's layout, or a ``state_dict`` file path; else the
    graph's own or the seeded initialisation (``seed``).  ``output`` writes the
    result atomically (ONNX with external data when over protobuf's 2 GB, or
    ``external_data=True``; JSON with a ``.weights.npz`` side file when the graph
    carries weights) and the result is still returned.  ``batch`` (ONNX only):
    ``"dynamic"`` or a fixed size.
    """
    if to not in TARGETS:
        raise UsageError(f"unknown target {to!r}; targets: {', '.join(TARGETS)}")
    if output is not None:
        if to == "module":
            raise UsageError("compile(to='module') returns an object; write source with "
                             "to='torch' or ONNX with to='onnx'")
        check_output(output)
    _backend(_TARGET_MODULES[to], f"the {to} target")
    graph = _prepare(model, input, passes, explain, print_after_all, log)
    if to != "onnx" and (batch not in (None, "dynamic") or external_data):
        raise UsageError("batch and external_data apply to to='onnx' only")
    if to == "onnx":
        from .backends.onnx_export import parse_batch

        batch = parse_batch(batch)  # a bad batch fails before the weights are read
    elif to == "torch":
        import math

        from .weights import check_size

        if not (max_params > 0 and math.isfinite(max_params)):
            raise UsageError(f"--max-params must be a positive number, got {max_params:g}")
        check_size(graph, max_params)
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        weights = weights_from_file(graph, path)  # every key and shape checked
        if to == "torch":  # the source loads the file itself: named in its docstring
            weights = path
    elif weights is not None and to == "torch":
        raise UsageError("compile(to='torch') writes source; give weights as a state_dict "
                         "file path (checked and named in the module's docstring), or use "
                         "to='module' for an object with the weights loaded")
    return _EMITTERS[to](graph, output, weights, seed, batch, external_data, max_params)


def weights_from_file(graph: Graph, path: str) -> dict[str, dict[str, Any]]:
    """``--weights FILE.pt``: a PyTorch ``state_dict`` of the PyTorch backend's module,
    every key and shape checked (a mismatch is a user error, exit 2)."""
    from .backends.pytorch import load_state_dict_file, state_dict_to_weights

    return state_dict_to_weights(graph, load_state_dict_file(path), source=path)


def _emit_onnx(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
               external_data: bool | None, max_params: float) -> Any:
    from .backends import onnx_export

    proto = onnx_export.to_onnx(graph, weights=weights, seed=seed, batch=batch,
                                max_params=max_params)
    if output is not None:
        onnx_export.save(proto, output,
                         external_data=bool(external_data) or onnx_export.needs_external(proto))
    return proto


def _emit_torch(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
                external_data: bool | None, max_params: float) -> Any:
    from .backends.pytorch_source import to_source

    text = to_source(graph, seed=seed, weights_file=weights)
    if output is not None:
        _write(output, text)
    return text


def _torch_weights(module: Any, graph: Graph) -> Any:
    """A torch module's arrays in the IR's layout (torch imported only when given one)."""
    from .backends.pytorch import weights_from_module

    return weights_from_module(module, graph)


def _emit_module(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
                 external_data: bool | None, max_params: float) -> Any:
    from .backends.pytorch import to_module
    from .weights import with_weights

    g = with_weights(graph, weights, read_module=_torch_weights)
    return to_module(g, seed=seed, max_params=max_params)


def _emit_json(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
               external_data: bool | None, max_params: float) -> Any:
    """The JSON IR; written with its weights in a ``.weights.npz`` side file, named and
    hashed in the document, when the graph carries weights."""
    from .frontends.json_io import to_json, weights_npz
    from .weights import with_weights

    g = with_weights(graph, weights, read_module=_torch_weights)
    if output is None:
        return to_json(g)
    ref = None
    if g.weights:
        import hashlib

        side = os.path.splitext(output)[0] + ".weights.npz"
        data = weights_npz(g)
        _write(side, data)
        ref = {"file": os.path.basename(side), "sha256": hashlib.sha256(data).hexdigest()}
    text = to_json(g, ref)
    _write(output, text)
    return text


_EMITTERS: dict[str, Callable[..., Any]] = {
    "onnx": _emit_onnx, "torch": _emit_torch, "module": _emit_module, "json": _emit_json,
}


# --------------------------------------------------------------------------- draw


#: below this size (points) ``cnnir draw --width`` warns that the text is unreadable
MIN_TEXT_PT = 5.0


@dataclass
class Diagram:
    """A drawing of a graph: its DOT text, rendered by Graphviz on demand.

    ``d.dot`` is the DOT source, ``d.svg()`` the SVG text, ``d.save("fig.pdf")``
    writes .svg, .pdf, .png or .dot atomically; Jupyter shows it as SVG.
    """

    dot: str
    dpi: int = 192
    theme: str = "paper"  #: the theme's name, for :meth:`size_note`
    #: the format :meth:`save` last wrote (``"svg"``, ``"pdf"``, ``"png"``, ``"dot"``)
    saved: str | None = field(default=None, repr=False, compare=False)
    _svg: str | None = field(default=None, repr=False, compare=False)

    def svg(self) -> str:
        if self._svg is None:
            from .backends.dot import run_dot

            self._svg = run_dot(self.dot, "svg").decode()
        return self._svg

    def save(self, path: str) -> str:
        """Write the drawing to ``path`` (format from the suffix); returns ``path``.

        Without Graphviz an image cannot be drawn: the DOT text is written beside
        ``path`` (``fig.dot``) and :class:`~cnnir.BackendError` says how to finish.
        """
        from .backends.dot import INSTALL_HINT, _format_of, find_dot, run_dot

        fmt = _format_of(path)
        if fmt == "dot":
            _write(path, self.dot)
            self.saved = fmt
            return path
        if find_dot() is None:
            dot_path = os.path.splitext(path)[0] + ".dot"
            _write(dot_path, self.dot)
            raise BackendError(
                f"Graphviz's 'dot' program was not found, so {path} was not drawn; wrote "
                f"{dot_path}; {INSTALL_HINT} and run: dot -T{fmt} {dot_path} -o {path}")
        _write(path, self.svg().encode() if fmt == "svg" else run_dot(self.dot, fmt, self.dpi))
        self.saved = fmt
        return path

    def size_note(self) -> str:
        """`` (3.31 x 5.97 in, text at 9.1 to 11.4 pt)``: the drawing's size and its text
        size at that size (what ``cnnir draw --width`` prints); needs Graphviz."""
        from .backends.dot import svg_size_and_scale

        w, h, _ = svg_size_and_scale(self.svg())
        small, large = self.text_size()
        return f" ({w:.2f} x {h:.2f} in, text at {small:.1f} to {large:.1f} pt)"

    def text_size(self) -> tuple[float, float]:
        """The smallest and largest text of the drawing at its size, in points (a
        ``width`` scales the theme's font sizes down or up); needs Graphviz."""
        from .backends.dot import svg_size_and_scale
        from .backends.dot_theme import get_theme

        _, _, scale = svg_size_and_scale(self.svg())
        th = get_theme(self.theme)
        return th.small * scale, th.fontsize * scale

    def small_text_warning(self, minimum: float = MIN_TEXT_PT) -> str | None:
        """One line when the drawing's smallest text is below ``minimum`` points (too
        small to read in print), saying what would help; None when it is readable."""
        small, large = self.text_size()
        if small >= minimum:
            return None
        return (f"text at {small:.1f} to {large:.1f} pt is below {minimum:g} pt and hard to "
                f"read in print; draw fewer or narrower boxes (--level block or stage, "
                f"--detail compact) or give a larger --width")

    def _repr_svg_(self) -> str | None:
        from .backends.dot import find_dot

        return self.svg() if find_dot() else None

    def __str__(self) -> str:
        return self.dot


def draw(model: Graph | str, path: str | None = None, *,
         input: str | Sequence[int] | None = None, passes: str | None = None,
         explain: bool = False, print_after_all: bool = False, log: Log | None = None,
         **options: Any) -> Diagram:
    """``cnnir draw``: a :class:`Diagram`; written to ``path`` too when given.

    ``options`` are those of :func:`cnnir.backends.dot.to_dot`: ``level``
    (layer/block/stage), ``detail`` (compact/standard/full), ``theme``
    (paper/mono/slides), ``rankdir`` (TB/LR), ``width`` ("3.3in"), ``collapse``,
    ``expand``, ``legend`` (bottom/top/right/none), ``title``; and ``dpi`` for PNG.
    Drawing DOT needs no Graphviz; without it an image ``path`` gets its ``.dot``
    written beside it and raises (:meth:`Diagram.save`).
    """
    dpi = options.pop("dpi", None)
    draw_check(path, **options)
    from .backends.dot import PNG_DPI, to_dot

    dpi = int(PNG_DPI if dpi is None else dpi)
    graph = _prepare(model, input, passes, explain, print_after_all, log)
    theme = options.get("theme", "paper")
    diagram = Diagram(to_dot(graph, **options), dpi=dpi,
                      theme=theme if isinstance(theme, str) else "paper")
    if path is not None:
        diagram.save(path)
    return diagram


def draw_check(path: str | None = None, **options: Any) -> None:
    """What :func:`draw` checks before any work: ``path`` is writable and names a
    drawing format, ``options["width"]`` reads as a width and ``options["legend"]``
    names a place."""
    if path is not None:
        check_output(path)
    dot = _backend("cnnir.backends.dot", "the Graphviz backend")
    if path is not None:
        dot._format_of(path)
    dot.parse_width(options.get("width"))
    dot.check_legend(options.get("legend", True))


# --------------------------------------------------------------------------- run


@dataclass
class RunResult:
    """What ``cnnir run`` prints, as data."""

    provider: str            #: the onnxruntime provider that ran (e.g. CPUExecutionProvider)
    note: str | None         #: the fallback line(s), when ``auto`` fell back to CPU
    batch: int
    seconds: list[float] = field(repr=False)  #: each timed run
    output: Any = field(repr=False)           #: the first output of the last run (numpy)
    macs: int | None = None  #: MACs per image (cnnir's count); None when cnnir cannot count
    title: str = ""          #: the model's name (and source file), or the .onnx file's name
    input_shape: tuple[int, ...] = ()  #: the input of one image (batch excluded)
    macs_note: str | None = None  #: why ``macs`` is None (``n/a (...)``)
    notes: list[str] = field(default_factory=list)  #: the provider notes, one per line
    #: with ``check=True``: (max |onnxruntime - pytorch|, the output's scale)
    check: tuple[float, float] | None = None

    @property
    def median_ms(self) -> float:
        import numpy as np

        return float(np.median(self.seconds)) * 1e3

    @property
    def p90_ms(self) -> float:
        import numpy as np

        return float(np.percentile(self.seconds, 90)) * 1e3

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch / (self.median_ms / 1e3)

    @property
    def gflops(self) -> float | None:
        """Achieved GFLOP/s (2 x MACs per image) at the median latency."""
        if self.macs is None:
            return None
        return 2 * self.macs * self.batch / (self.median_ms / 1e3) / 1e9

    @property
    def provider_label(self) -> str:
        """``CPU``, ``CUDA`` or ``TensorRT``."""
        from .backends.runtime import LABELS

        return LABELS.get(self.provider, self.provider)

    @property
    def tolerance(self) -> float:
        """The relative tolerance of ``check`` (of the output's scale)."""
        from .backends.runtime import RTOL

        return RTOL

    @property
    def check_ok(self) -> bool | None:
        """Whether onnxruntime agrees with PyTorch within :attr:`tolerance`; None unchecked."""
        if self.check is None:
            return None
        diff, scale = self.check
        return diff <= self.tolerance * max(scale, 1e-30)


def run(model: Graph | str, provider: str = "auto", batch: int = 1, repeat: int = 20,
        seed: int = 0, warmup: int = 3, passes: str | None = None,
        input: Any = None, check: bool = False, *, explain: bool = False,
        print_after_all: bool = False, log: Log | None = None,
        verbose: bool = False) -> RunResult:
    """``cnnir run``: compile to ONNX (seeded random weights) and time onnxruntime.

    ``model`` is a graph, a zoo name or DSL file, or an ``.onnx`` file (run as it
    is).  ``provider``: ``auto`` (CUDA when it really initialises, else CPU, with
    the reason in ``note``), ``cuda``, ``tensorrt`` or ``cpu``; an unusable
    requested provider raises :class:`cnnir.BackendError`.  ``input`` (``"3x224x224"``
    or a tuple) overrides the model's input size, or fills an ONNX file's symbolic one.
    A model over protobuf's 2 GB goes to onnxruntime through a temporary external-data
    file.  ``check`` compares the output with the PyTorch backend's on the same weights.
    ``auto`` where no GPU can run (no NVIDIA driver, a CPU-only build) chooses CPU
    quietly; ``verbose`` tries CUDA anyway where the build has it and keeps every note.
    """
    import tempfile

    _backend("cnnir.backends.runtime", "the onnxruntime backend")
    from .backends.runtime import (
        _onnx_input_shape,
        available_providers,
        check_against_torch,
        create_session,
        input_tensor,
        make_runner,
        nvidia_driver_present,
        plan_providers,
        time_runs,
    )

    if not (isinstance(batch, int) and batch >= 1 and isinstance(repeat, int) and repeat >= 1):
        raise UsageError(f"batch and repeat must be positive integers, got {batch!r}, {repeat!r}")
    plan = plan_providers(provider, available_providers(),
                          driver=verbose or provider != "auto" or nvidia_driver_present())
    is_file = isinstance(model, str) and os.path.splitext(model)[1].lower() == ".onnx"
    graph: Graph | None = None
    weights = None
    macs_note = None
    tmpdir = None
    try:
        if is_file:
            assert isinstance(model, str)
            if not os.path.isfile(model):
                raise MissingFileError(model)
            source: bytes | str = model
            try:  # onnxruntime may still run what the frontend cannot convert
                graph = _prepare(model, input, passes, explain, print_after_all, log)
            except CnnirError as exc:
                from .frontends.onnx_import import _read

                _read(model)  # not an ONNX file at all: the frontend's clear error
                macs_note = f"n/a (the ONNX frontend cannot read it: {exc.msg})"
            weights = getattr(graph, "weights", None)
            title = os.path.basename(model)
        else:
            from .backends import onnx_export
            from .weights import ensure_weights

            graph = _prepare(model, input, passes, explain, print_after_all, log)
            # random biases and BN statistics, so that check= exercises them
            weights = ensure_weights(graph, seed, mode="random")
            proto = onnx_export.to_onnx(graph, weights=weights, batch="dynamic")
            if onnx_export.needs_external(proto):  # over protobuf's 2 GB
                tmpdir = tempfile.mkdtemp(prefix="cnnir-run-")
                source = os.path.join(tmpdir, f"{graph.name}.onnx")
                onnx_export.save(proto, source, external_data=True)
            else:
                source = proto.SerializeToString()
            del proto
            title = f"{graph.name} ({graph.source})" if graph.source else graph.name
        if check and graph is None:
            raise BackendError(f"--check: {macs_note or 'no IR for this file'}")
        sess, ran, fallback = create_session(source, plan)
    finally:
        if tmpdir is not None:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)
    if graph is not None and not is_file:
        shape = tuple(graph.input_shape)
    else:
        from .frontends import parse_input

        assert isinstance(model, str)
        shape = _onnx_input_shape(sess, batch, model, parse_input(input))
    x = input_tensor(shape, batch, seed)
    step, outputs = make_runner(sess, x, ran)
    timing = time_runs(step, repeat, batch, warmup=warmup)
    y = outputs()[0]
    macs = None
    if macs_note is None and graph is not None:
        try:
            macs = _macs(graph)
        except CnnirError as exc:  # an op without a cost rule: unknown, never zero
            macs_note = f"n/a ({exc.msg})"
    diff = None
    if check:
        import numpy as np

        assert graph is not None
        diff = check_against_torch(graph, weights, x, y.astype(np.float64))
    notes = [n for n in (None if plan.quiet and not verbose else plan.note, fallback) if n]
    return RunResult(provider=ran, note="; ".join(notes) or None, batch=batch,
                     seconds=list(timing.seconds), output=y, macs=macs, title=title,
                     input_shape=shape, macs_note=macs_note, notes=notes, check=diff)


def _macs(graph: Graph) -> int:
    """cnnir's MAC count; raises when an op has no cost rule (never a silent zero)."""
    from .passes.count_macs import count_macs

    return count_macs(graph)


# --------------------------------------------------------------------------- listings


def zoo_models() -> dict[str, str]:
    """``cnnir zoo``: each zoo model's name and its one-line description."""
    from . import zoo

    return {name: zoo.describe(name) for name in zoo.names()}


@dataclass(frozen=True)
class ZooInfo:
    """One row of ``cnnir zoo``: what a user choosing a model compares."""

    name: str
    input: tuple[int, ...]   #: the declared (C, H, W)
    params: int              #: trainable parameters, biases included (exact)
    macs: int                #: MACs of one image at ``input`` (exact)
    summary: str             #: what it is, in a sentence
    paper: str | None        #: "He et al. 2015"; None for the teaching examples

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input": list(self.input), "params": self.params,
                "macs": self.macs, "summary": self.summary, "paper": self.paper}


def zoo_table() -> list[ZooInfo]:
    """``cnnir zoo``: every zoo model with its input size, params and MACs (each model is
    built and analysed, well under a second for the whole zoo)."""
    from . import zoo
    from .zoo.catalog import figures

    rows = []
    for name in zoo.names():
        e, f = zoo.entry(name), figures(name)
        rows.append(ZooInfo(name, tuple(e.input), f.params, f.macs, e.summary,
                            e.paper.short if e.paper else None))
    return rows


@dataclass(frozen=True)
class PassInfo:
    """One line of ``cnnir passes``."""

    name: str
    kind: str            #: "analysis" or "transform"
    summary: str
    options: dict[str, Any]  #: option -> default


def pass_list() -> list[PassInfo]:
    """``cnnir passes``: every registered pass, its kind, summary and options."""
    from dataclasses import fields

    from .passes import available

    return [PassInfo(name, cls.kind, cls.summary(),
                     {f.name: f.default for f in fields(cls) if f.init})
            for name, cls in available().items()]


__all__ = ["load", "check", "analyze", "report", "compare", "compile", "draw", "run",
           "compare_models", "zoo_models", "zoo_table", "ZooInfo", "pass_list", "explain_lines",
           "check_output", "draw_check",
           "weights_from_file", "report_format", "REPORT_SUFFIXES", "summary",
           "SUMMARY_COLUMNS",
           "Diagram", "RunResult", "PassInfo", "TARGETS", "SUFFIXES"]


# --------------------------------------------------------------------------- sweep


def sweep(model: str, grid: Sequence[str] = (), *, sample: int | None = None, seed: int = 0,
          where: str | None = None, output: str = "sweep", input: str | Sequence[int] | None = None,
          dtype: str = "float32", batch: int = 1, measure: bool = False, repeat: int = 20,
          provider: str = "cpu", pareto: str | Sequence[str] | None = None,
          plots: str | Sequence[str] = (), edf: str | Sequence[str] | None = None,
          group: str | None = None, client: Any = None, scheduler: str | None = None,
          workers: int | None = None, chunk: int | None = None,
          limit: int | None = None) -> Any:
    """``cnnir sweep``: cost every variant of a design space into the directory ``output``.

    ``model`` is a zoo name or a DSL file whose ``@model`` function takes keyword
    parameters; ``grid`` its specs (``"width=32,64"``, ``"width=16..128:step8"``,
    ``"lr=1e-3..1e-1:log"``; a parameter named ``input`` sets the input size,
    ``3x160x160``).  Their product is swept, or ``sample`` variants drawn with
    ``seed``.  ``measure`` adds the onnxruntime latency (:func:`run`: median of
    ``repeat`` runs on ``provider``).  ``client`` (a ``dask.distributed.Client``) or
    ``scheduler`` (``"tcp://host:8786"``, or ``"serial"`` for this process) picks where
    it runs, else a local cluster of ``workers`` processes (default: every core).
    Returns a :class:`cnnir.sweep.SweepResult`; the rest is :func:`cnnir.sweep.run_sweep`.
    """
    from .frontends import parse_input
    from .sweep import check_parameters, make_job, run_sweep
    from .sweep_space import grid as product
    from .sweep_space import parse_specs
    from .sweep_space import sample as draw

    def names(v: str | Sequence[str] | None) -> list[str]:
        return [s for s in (v.split(",") if isinstance(v, str) else v or ()) if s.strip()]

    specs = parse_specs([grid] if isinstance(grid, str) else grid)
    if not specs:
        raise UsageError("cnnir sweep needs at least one --grid NAME=VALUES")
    if sample is not None and sample < 1:
        raise UsageError(f"--sample must be a positive integer, got {sample}")
    if not (isinstance(batch, int) and batch >= 1 and isinstance(repeat, int) and repeat >= 1):
        raise UsageError(f"batch and repeat must be positive integers, got {batch!r}, {repeat!r}")
    if measure:
        _backend("cnnir.backends.runtime", "the onnxruntime backend")
        from .extras import require

        require("onnxruntime", "cnnir sweep --measure")
    shape = parse_input(input)
    variants = product(specs) if sample is None else draw(specs, sample, seed)
    job = make_job(model, input=shape, dtype=dtype, batch=batch, measure=measure,
                   repeat=repeat, provider=provider, seed=seed)
    check_parameters(job, [s.name for s in specs])
    return run_sweep(job, variants, output, _sweep_chunk, where=where, pareto=names(pareto),
                     plots=names(plots), edf=names(edf), group=group, client=client,
                     scheduler=scheduler, workers=workers, chunk=chunk, limit=limit)


def _sweep_chunk(job: Any, variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cost some variants of a sweep (runs on a worker): build each with its keyword
    parameters, :func:`analyze` it, :func:`run` it when measuring.  A variant that
    cannot be built or costed records its one-line error instead of its metrics."""
    from .frontends import parse_input
    from .frontends.dsl import user_code
    from .sweep import model_of, one_line, static_metrics

    m = model_of(job)
    rows = []
    for params in variants:
        metrics: dict[str, Any] = {}
        error = None
        try:
            kwargs = {k: v for k, v in params.items() if k != "input"}
            shape = parse_input(str(params["input"])) if "input" in params else job.input
            with user_code():
                graph = m.build(shape, **kwargs)
            metrics = static_metrics(analyze(graph, dtype=job.dtype, batch=job.batch))
            if job.measure:
                res = run(graph, provider=job.provider, batch=job.batch, repeat=job.repeat,
                          seed=job.seed)
                metrics.update(latency_ms=res.median_ms, provider=res.provider)
        except CnnirError as exc:
            metrics, error = {}, one_line(exc)
        rows.append({"params": params, "metrics": metrics, "error": error})
    return rows


__all__ += ["sweep", "symbolic"]


# --------------------------------------------------------------------------- training
# ``cnnir report --training`` and ``cnnir check --training --memory`` (issue 18)

_MEMORY_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(text: str | int) -> int:
    """``"24GiB"``, ``"16GB"``, ``"512MiB"`` or a number of bytes, as bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        s = str(text).strip().lower().replace(" ", "")
        i = len(s)
        while i and not (s[i - 1].isdigit() or s[i - 1] == "."):
            i -= 1
        unit = s[i:]
        try:
            value = float(s[:i])
        except ValueError:
            value = -1.0
        if unit not in _MEMORY_UNITS:
            value = -1.0
    if value <= 0:
        raise UsageError(f"--memory must be a positive size such as 24GiB, 16GB or 512MiB, "
                         f"got {text!r}")
    return int(value * _MEMORY_UNITS[unit])


def training(model: Graph | str, batch: int = 1, optimizer: str = "sgd",
             dtype: str = "float32", amp: bool = False, device: str = "cuda",
             frozen: Sequence[str] = (), format: str = "table", *,
             output: str | None = None, input: str | Sequence[int] | None = None,
             passes: str | None = None, explain: bool = False,
             print_after_all: bool = False, log: Log | None = None) -> Any:
    """``cnnir report --training``: a
    :class:`~cnnir.backends.training_report.TrainingReport` of one training step --
    per layer the bytes autograd keeps and the backward MACs (input and weight
    gradients apart); in total parameters, gradients, optimizer state and the peak.
    ``frozen`` names layers (or blocks) whose weights get no gradient."""
    from .backends.training_report import RENDERERS, build_training

    if output is not None:
        check_output(output)
    if format not in RENDERERS:
        raise UsageError(f"unknown report format {format!r}; formats: {', '.join(RENDERERS)}")
    graph = _prepare(model, input, passes, explain, print_after_all, log)
    rep = build_training(graph, batch=batch, dtype=dtype, amp=amp, optimizer=optimizer,
                         device=device, frozen=tuple(frozen))
    rep.format = format
    if output is not None:
        _write(output, str(rep))
    return rep


@dataclass
class Budget:
    """``cnnir check --training --memory M``: does one training step fit in ``memory``."""

    model: str
    batch: int
    memory: int          #: the budget, bytes
    peak: int            #: the training step's peak at ``batch``, bytes
    largest_batch: int   #: the largest batch that fits (0: not even batch 1)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.peak <= self.memory

    def __str__(self) -> str:
        from .util import human_bytes

        o = self.options
        how = (f"batch {self.batch}, {o.get('optimizer')}, {o.get('dtype')}"
               + (" AMP" if o.get("amp") else ""))
        verdict = "fits" if self.fits else "does not fit"
        most = (f"the largest batch that fits is {self.largest_batch}" if self.largest_batch
                else "not even batch 1 fits")
        return (f"{self.model}: {verdict}: training at {how} needs "
                f"{human_bytes(self.peak)} of {human_bytes(self.memory)}; {most}")


def budget(model: Graph | str, memory: str | int, batch: int = 1, optimizer: str = "sgd",
           dtype: str = "float32", amp: bool = False, device: str = "cuda",
           frozen: Sequence[str] = (), *, input: str | Sequence[int] | None = None,
           passes: str | None = None, log: Log | None = None) -> Budget:
    """The ``--memory`` check: the peak of one training step against ``memory``
    (``"24GiB"``), and the largest batch that fits."""
    from .backends.training_report import largest_batch, peak_at

    limit = parse_memory(memory)
    graph = _prepare(model, input, passes, False, False, log)
    opts: dict[str, Any] = {"dtype": dtype, "amp": amp, "optimizer": optimizer,
                            "device": device, "frozen": tuple(frozen)}
    peak = peak_at(graph, batch, **opts)
    most = largest_batch(graph, limit, **opts)
    return Budget(graph.name, batch, limit, peak, most, opts)


__all__ += ["training", "budget", "Budget", "parse_memory"]
# --------------------------------------------------------------------------- explain


def explain(model: Graph | str, layer: str | None = None, depth: int | None = None,
            format: str = "text", dtype: str = "float32", batch: int = 1, *,
            output: str | None = None, input: str | Sequence[int] | None = None,
            passes: str | None = None, log: Log | None = None) -> Any:
    """``cnnir explain``: an :class:`~cnnir.backends.explain.Explanation`, the derivation
    of every figure of the report with the numbers substituted (one ``layer`` or block,
    or the blocks down to ``depth``).  ``str(e)`` is the text in ``format`` (text, md,
    latex, json), ``e.to_dict()`` the JSON with each formula as a tree of terms."""
    from .backends.explain import FORMATS
    from .backends.explain import explain as _explain

    if output is not None:
        check_output(output)
    if format not in FORMATS:
        raise UsageError(f"unknown explain format {format!r}; formats: {', '.join(FORMATS)}")
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    graph = analyze(_prepare(model, input, passes, False, False, log), dtype=dtype,
                    batch=batch).graph
    ex = _explain(graph, layer=layer, depth=depth, dtype=dtype, batch=batch)
    ex.format = format
    if output is not None:
        _write(output, str(ex))
    return ex


def solve(question: str, model: Graph | str | None = None, layer: str | None = None,
          format: str = "text", *, output: str | None = None,
          input: str | Sequence[int] | None = None, **options: Any) -> Any:
    """``cnnir explain --solve QUESTION``: ``padding``, ``output``, ``rf`` or
    ``bottleneck`` (see :mod:`cnnir.backends.solve` for the options), each answer
    derived.  With a ``model`` and ``layer``, the layer gives what is not given: its
    input size (``size``), kernel, RF (``r_in``, ``j_in``) or, for ``bottleneck``, the
    conv itself."""
    from .backends.explain import FORMATS
    from .backends.solve import Question
    from .backends.solve import solve as _solve
    from .ops import Conv2d

    if output is not None:
        check_output(output)
    if format not in FORMATS:
        raise UsageError(f"unknown explain format {format!r}; formats: {', '.join(FORMATS)}")
    try:
        q = Question(question, **{k: v for k, v in options.items() if v is not None})
    except TypeError as exc:
        raise UsageError(f"--solve: {exc}") from None
    conv = None
    if model is not None:
        if layer is None:
            raise UsageError("--solve with a model needs --layer (the layer it asks about)")
        graph = analyze(_prepare(model, input, None, False, False, None)).graph
        if layer not in graph:
            raise UsageError(f"--solve: no layer named '{layer}' in {graph.name}")
        v = graph.node(layer)
        shape = graph.meta(v.inputs[0])["shape"] if v.inputs else v.meta["shape"]
        if q.size is None:
            q.size = tuple(shape)
        kernel = getattr(v.op, "kernel", None)
        if question == "padding" and q.kernel is None and kernel is not None:
            q.kernel = kernel[0]
        if question == "rf" and options.get("r_in") is None and options.get("j_in") is None:
            rf = v.meta["rf"]
            q.r_in, q.j_in = rf.size[0], rf.stride[0]
        if question == "bottleneck":
            if type(v.op) is not Conv2d:
                raise UsageError(f"--solve bottleneck: '{layer}' is a {v.op.kind}, not a conv2d")
            conv = v.op
    ex = _solve(q, conv)
    ex.format = format
    if output is not None:
        _write(output, str(ex))
    return ex
