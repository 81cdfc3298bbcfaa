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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CnnirError, UsageError
from .ir import Graph

if TYPE_CHECKING:
    from .analysis import Analysis
    from .backends.report import Report

#: ``compile(to=...)`` targets: what each returns
TARGETS = {
    "onnx": "an onnx.ModelProto (opset 17, dynamic batch axis)",
    "torch": "the source of a standalone PyTorch module (str)",
    "module": "a torch.fx.GraphModule (nn.Module) with the weights loaded",
    "json": "the JSON IR document (str)",
}


def _graph(model: Graph | str, input: Any = None) -> Graph:
    """The graph to work on, its shapes inferred (a graph fresh from ``Model.build()``
    has none yet): every call here starts as ``cnnir check`` does."""
    if isinstance(model, Graph):
        if any(model.meta(n).get("shape") is None for n in model.nodes()):
            from .passes.infer_shapes import InferShapes

            InferShapes().run(model)
        return model
    if isinstance(model, str):
        from .frontends import load

        return load(model, input=input)
    raise UsageError(f"expected a cnnir.Graph or a model name/path, got {type(model).__name__}")


def analyze(model: Graph | str, dtype: str = "float32", batch: int = 1) -> Analysis:
    """Every analysis (shapes, params, MACs, memory, receptive fields); the totals."""
    from .analysis import analyze as _analyze

    return _analyze(_graph(model), dtype=dtype, batch=batch)


def report(model: Graph | str, format: str = "table", depth: int | None = None,
           columns: str | list[str] | None = None, dtype: str = "float32",
           batch: int = 1) -> Report:
    """``cnnir report``: a :class:`~cnnir.backends.report.Report`.

    ``str(r)`` is the text in ``format``, ``r.render("latex")`` another format,
    ``r.to_dict()`` the JSON contract; in Jupyter it shows as an HTML table.
    """
    from .backends.report import FORMATS, build_report, parse_columns

    if format not in FORMATS:
        raise UsageError(f"unknown report format {format!r}; formats: {', '.join(FORMATS)}")
    text = columns if columns is None or isinstance(columns, str) else ",".join(columns)
    cols = None if format == "json" else parse_columns(text, format)
    rep = build_report(_graph(model), dtype=dtype, batch=batch, depth=depth)
    rep.columns = cols
    rep.format = format
    return rep


def compile(model: Graph | str, to: str = "onnx", output: str | None = None, *,
            passes: str | None = None, weights: Any = None, seed: int = 0,
            batch: int | str = "dynamic", external_data: bool | None = None,
            max_params: float = 2e9) -> Any:
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
    graph = _graph(model)
    if passes:
        from .passes.manager import run_pipeline

        graph = run_pipeline(graph, passes)
    if output is not None:
        if to == "module":
            raise UsageError("compile(to='module') returns an object; write source with "
                             "to='torch' or ONNX with to='onnx'")
        from .util import check_writable

        check_writable(output)
    if to != "onnx" and (batch not in (None, "dynamic") or external_data):
        raise UsageError("batch and external_data apply to to='onnx' only")
    if isinstance(weights, (str, os.PathLike)):
        from .backends.onnx_export import weights_from_file

        path = os.fspath(weights)
        weights = weights_from_file(graph, path)  # every key and shape checked
        if to == "torch":  # the source loads the file itself: named in its docstring
            weights = path
    elif weights is not None and to == "torch":
        raise UsageError("compile(to='torch') writes source; give weights as a state_dict "
                         "file path (checked and named in the module's docstring), or use "
                         "to='module' for an object with the weights loaded")
    return _EMITTERS[to](graph, output, weights, seed, batch, external_data, max_params)


def _emit_onnx(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
               external_data: bool | None, max_params: float) -> Any:
    from .backends.onnx_export import needs_external, parse_batch, save, to_onnx

    proto = to_onnx(graph, weights=weights, seed=seed, batch=parse_batch(batch),
                    max_params=max_params)
    if output is not None:
        save(proto, output, external_data=bool(external_data) or needs_external(proto))
    return proto


def _emit_torch(graph: Graph, output: str | None, weights: Any, seed: int, batch: int | str,
                external_data: bool | None, max_params: float) -> Any:
    from .backends.pytorch_source import to_source
    from .weights import check_size

    check_size(graph, max_params)
    text = to_source(graph, seed=seed, weights_file=weights)
    if output is not None:
        from .util import write_atomic

        write_atomic(output, text)
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
    from types import SimpleNamespace

    from .frontends.json_io import emit_cli, to_json
    from .weights import with_weights

    g = with_weights(graph, weights, read_module=_torch_weights)
    if output is None:
        return to_json(g)
    text, _ = emit_cli(g, SimpleNamespace(output=output))  # writes the weights side file
    from .util import write_atomic

    write_atomic(output, text)
    return text


_EMITTERS: dict[str, Callable[..., Any]] = {
    "onnx": _emit_onnx, "torch": _emit_torch, "module": _emit_module, "json": _emit_json,
}


@dataclass
class Diagram:
    """A drawing of a graph: its DOT text, rendered by Graphviz on demand.

    ``d.dot`` is the DOT source, ``d.svg()`` the SVG text, ``d.save("fig.pdf")``
    writes .svg, .pdf, .png or .dot atomically; Jupyter shows it as SVG.
    """

    dot: str
    dpi: int = 192

    def svg(self) -> str:
        from .backends.dot import run_dot

        return run_dot(self.dot, "svg").decode()

    def save(self, path: str) -> str:
        """Write the drawing to ``path`` (format from the suffix); returns ``path``."""
        from .backends.dot import _format_of, run_dot
        from .util import write_atomic

        fmt = _format_of(path)
        write_atomic(path, self.dot if fmt == "dot" else run_dot(self.dot, fmt, self.dpi))
        return path

    def _repr_svg_(self) -> str | None:
        from .backends.dot import find_dot

        return self.svg() if find_dot() else None

    def __str__(self) -> str:
        return self.dot


def draw(model: Graph | str, path: str | None = None, **options: Any) -> Diagram:
    """``cnnir draw``: a :class:`Diagram`; written to ``path`` too when given.

    ``options`` are those of :func:`cnnir.backends.dot.to_dot`: ``level``
    (layer/block/stage), ``detail`` (compact/standard/full), ``theme``
    (paper/mono/slides), ``rankdir`` (TB/LR), ``width`` ("3.3in"), ``collapse``,
    ``expand``.  Drawing DOT needs no Graphviz; images need its ``dot`` program.
    """
    from .backends.dot import PNG_DPI, to_dot

    dpi = int(options.pop("dpi", PNG_DPI))
    if path is not None:
        from .backends.dot import _format_of
        from .util import check_writable

        _format_of(path)
        check_writable(path)
    diagram = Diagram(to_dot(_graph(model), **options), dpi=dpi)
    if path is not None:
        diagram.save(path)
    return diagram


@dataclass
class RunResult:
    """What ``cnnir run`` prints, as data."""

    provider: str            #: the onnxruntime provider that ran (e.g. CPUExecutionProvider)
    note: str | None         #: the fallback line, when ``auto`` fell back to CPU
    batch: int
    seconds: list[float] = field(repr=False)  #: each timed run
    output: Any = field(repr=False)           #: the first output of the last run (numpy)
    macs: int | None = None  #: MACs per image (cnnir's count); None when cnnir cannot count

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


def run(model: Graph | str, provider: str = "auto", batch: int = 1, repeat: int = 20,
        seed: int = 0, warmup: int = 3, passes: str | None = None,
        input: Any = None) -> RunResult:
    """``cnnir run``: compile to ONNX (seeded random weights) and time onnxruntime.

    ``model`` is a graph, a zoo name or DSL file, or an ``.onnx`` file (run as it
    is).  ``provider``: ``auto`` (CUDA when it really initialises, else CPU, with
    the reason in ``note``), ``cuda``, ``tensorrt`` or ``cpu``; an unusable
    requested provider raises :class:`cnnir.BackendError`.  ``input`` (``"3x224x224"``
    or a tuple) overrides the model's input size, or fills an ONNX file's symbolic one.
    """
    from .backends.runtime import (
        available_providers,
        create_session,
        input_tensor,
        make_runner,
        plan_providers,
        time_runs,
    )

    if not (isinstance(batch, int) and batch >= 1 and isinstance(repeat, int) and repeat >= 1):
        raise UsageError(f"batch and repeat must be positive integers, got {batch!r}, {repeat!r}")
    plan = plan_providers(provider, available_providers())
    macs: int | None = None
    if isinstance(model, str) and model.lower().endswith(".onnx"):
        if not os.path.isfile(model):
            raise UsageError(f"no such file: {model}")
        source: bytes | str = model
        try:
            graph: Graph | None = _graph(model, input)
        except CnnirError:  # onnxruntime may still run what the frontend cannot read
            graph = None
    else:
        from .backends.onnx_export import to_onnx
        from .weights import ensure_weights

        graph = _graph(model, input)
        if passes:
            from .passes.manager import run_pipeline

            graph = run_pipeline(graph, passes)
        weights = ensure_weights(graph, seed, mode="random")
        source = to_onnx(graph, weights=weights, batch="dynamic").SerializeToString()
        macs = _macs(graph)
    sess, ran, fallback = create_session(source, plan)
    if isinstance(source, bytes):
        assert graph is not None
        shape = tuple(graph.input_shape)
    else:
        from .backends.runtime import _onnx_input_shape
        from .frontends import parse_input

        shape = _onnx_input_shape(sess, batch, source, parse_input(input))
        macs = _macs(graph) if graph is not None else None
    x = input_tensor(shape, batch, seed)
    step, outputs = make_runner(sess, x, ran)
    timing = time_runs(step, repeat, batch, warmup=warmup)
    notes = [n for n in (plan.note, fallback) if n]
    return RunResult(provider=ran, note="; ".join(notes) or None, batch=batch,
                     seconds=list(timing.seconds), output=outputs()[0], macs=macs)


def _macs(graph: Graph) -> int | None:
    """cnnir's MAC count, None when an op has no cost rule (never a silent zero)."""
    from .passes.count_macs import count_macs

    try:
        return count_macs(graph)
    except CnnirError:
        return None


__all__ = ["analyze", "report", "compile", "draw", "run", "Diagram", "RunResult", "TARGETS"]
