"""``cnnir sweep``'s engine: cost every variant of a design space, locally or on Dask.

:func:`run_sweep` takes the variants (from :mod:`cnnir.sweep_space`), a picklable
``cost(job, variants) -> rows`` function (``cnnir.api`` gives it; this module never
imports the API) and an output directory, and

* skips the variants the directory's journal already holds (same settings), so a
  killed sweep loses nothing and a rerun finishes it;
* costs the others in chunks: in this process (``scheduler="serial"``), on a local
  ``dask.distributed`` cluster of ``workers`` processes (the default: every core), on a
  running scheduler (``scheduler="tcp://host:8786"``) or through a given ``Client``;
* appends each chunk's rows to ``journal.jsonl`` as it arrives (one JSON line per
  variant, flushed), then writes ``variants.csv``, ``variants.json`` and, with
  ``pareto``, ``pareto.csv`` (atomically), in the space's order whatever order the
  workers finished in: the same files from any scheduler.

A row is the variant's parameters, its metrics (:data:`METRICS`, and ``latency_ms`` /
``provider`` when measured) and ``error``: the one-line message of a variant that could
not be built or costed (``None`` otherwise); such a row has no metrics, and the sweep goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from .errors import CnnirError, UsageError
from .sweep_space import Where, key

#: the static metrics of every variant, in column order
METRICS = ("params", "macs", "activation_bytes", "peak_activation_bytes", "rf", "layers")
#: Training memory, once the analysis provides it: the attribute of
#: :class:`cnnir.analysis.Analysis` read when present (the column appears only then).
TRAINING_METRIC = "training_bytes"
#: what ``measure=True`` adds
MEASURED = ("latency_ms", "provider")
#: short names accepted wherever a metric is named (``--pareto macs,latency``)
ALIASES = {"latency": "latency_ms", "activations": "activation_bytes",
           "memory": "peak_activation_bytes"}
JOURNAL = "journal.jsonl"
FORMAT = 1  #: the journal's version


@dataclass(frozen=True)
class Job:
    """What every variant of one sweep shares (picklable: it travels to the workers).

    ``source`` is the DSL file's text, so that a worker without the file (a remote
    cluster) can still build it.
    """

    model: str
    source: str | None = field(default=None, repr=False)
    input: tuple[int, ...] | None = None
    dtype: str = "float32"
    batch: int = 1
    measure: bool = False
    repeat: int = 20
    provider: str = "cpu"
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        """What a resumed sweep must share with the journal (the file by its hash; the
        timing options only when measuring)."""
        out = asdict(self)
        src = out.pop("source")
        if not self.measure:
            for name in ("repeat", "provider", "seed"):
                del out[name]
        out["input"] = list(self.input) if self.input else None
        out["source_sha256"] = hashlib.sha256(src.encode()).hexdigest() if src else None
        return out


def make_job(model: str, **options: Any) -> Job:
    """A :class:`Job` for ``model`` (a zoo name or ``net.py[:NAME]``), its file read now."""
    from .frontends import is_file_spec, split_spec

    source = None
    if is_file_spec(model):
        path, _ = split_spec(model)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
        if os.path.splitext(path)[1].lower() != ".py":
            raise UsageError(f"cnnir sweep builds DSL models with keyword parameters: "
                             f"MODEL must be a zoo name or a .py DSL file, got {model}")
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    return Job(model, source, **options)


@lru_cache(maxsize=8)
def _model(spec: str, source: str | None) -> Any:
    from .frontends import dsl, is_file_spec, split_spec

    if not is_file_spec(spec):
        from . import zoo

        return zoo.get(spec)
    path, name = split_spec(spec)
    if not os.path.isfile(path) and source is not None:  # a worker without the file
        import tempfile

        where = tempfile.mkdtemp(prefix="cnnir-sweep-")
        path = os.path.join(where, os.path.basename(path))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
    return dsl.load_file(path, name)


def model_of(job: Job) -> Any:
    """The job's :class:`~cnnir.frontends.dsl.Model`, loaded once per process."""
    return _model(job.model, job.source)


def check_parameters(job: Job, names: Sequence[str]) -> None:
    """Every swept name (but ``input``) is a keyword of the model's function: a sweep
    whose every variant would fail the same way fails once, before any work."""
    import inspect

    from .frontends.dsl import user_code

    with user_code():
        fn = model_of(job).fn
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    takes = [n for n in list(sig.parameters)[1:]]
    for name in names:
        if name != "input" and name not in takes:
            raise UsageError(f"--grid {name}: model {job.model!r} takes no parameter {name!r}; "
                             f"it takes: {', '.join(takes) or 'none'} (and input=CxHxW)")


def one_line(exc: CnnirError) -> str:
    """A variant's error as its row records it: the first line of the message."""
    return str(exc).splitlines()[0]


def static_metrics(analysis: Any) -> dict[str, Any]:
    """The :data:`METRICS` of an :class:`~cnnir.analysis.Analysis` (and training memory
    once :data:`TRAINING_METRIC` exists there)."""
    g = analysis.graph
    rfs = [g.meta(o).get("rf") for o in g.outputs]
    out = {"params": analysis.params, "macs": analysis.macs,
           "activation_bytes": analysis.activation_bytes,
           "peak_activation_bytes": analysis.peak_activation_bytes,
           "rf": max((_num(s) for rf in rfs if rf is not None for s in rf.size), default=None),
           "layers": len(g)}
    training = getattr(analysis, TRAINING_METRIC, None)
    if training is not None:
        out[TRAINING_METRIC] = training
    return out


def _num(v: Any) -> int | float:
    return v if isinstance(v, int) else float(v)


def metric_name(name: str) -> str:
    return ALIASES.get(name.strip(), name.strip())


# --------------------------------------------------------------------------- the journal


def _read_journal(path: str, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished rows by variant key; a torn last line (a killed write) is cut off."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        data = fh.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    lines = data[:end].decode().splitlines()
    if not lines:
        return {}
    head = json.loads(lines[0])
    if head.get("cnnir_sweep") != FORMAT:
        raise UsageError(f"{path} is not a cnnir sweep journal (format {FORMAT})")
    if head.get("settings") != settings:
        diff = sorted(k for k in settings if head.get("settings", {}).get(k) != settings[k])
        raise UsageError(f"{path} holds a sweep with other settings ({', '.join(diff)} "
                         f"differ); give another --output, or delete it to start again")
    rows = (json.loads(line) for line in lines[1:])
    return {key(r["params"]): r for r in rows}


class _Journal:
    def __init__(self, path: str, settings: dict[str, Any]) -> None:
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        if new:
            self._line({"cnnir_sweep": FORMAT, "settings": settings})

    def _line(self, obj: Mapping[str, Any]) -> None:
        self.fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.fh.flush()

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


# --------------------------------------------------------------------------- running

Cost = Callable[[Job, list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass
class SweepResult:
    """What :func:`run_sweep` wrote and found."""

    rows: list[dict[str, Any]]     #: one per variant, in the space's order (flat: params + metrics)
    parameters: list[str]
    metrics: list[str]             #: the metric columns present
    output: str                    #: the directory
    files: list[str]               #: every file written, in order
    costed: int = 0                #: variants costed by this call
    skipped: int = 0               #: variants the journal already held
    failed: int = 0                #: rows with an error
    workers: int = 1
    seconds: float = 0.0           #: costing time of this call
    pareto: list[int] = field(default_factory=list)  #: indices into rows (the front)
    pareto_metrics: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return ["variant", *self.parameters, *self.metrics, "error"]


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _execute(job: Job, todo: list[dict[str, Any]], cost: Cost, journal: _Journal,
             done: dict[str, dict[str, Any]], *, client: Any, scheduler: str | None,
             workers: int | None, chunk: int | None) -> int:
    """Cost ``todo``; record each chunk as it arrives; the number of workers used."""
    def record(params_rows: list[dict[str, Any]]) -> None:
        journal.add(params_rows)
        for r in params_rows:
            done[key(r["params"])] = r

    if scheduler == "serial":
        for part in _chunks(todo, chunk or 16):
            record(cost(job, part))
        return 1
    from .extras import require

    distributed = require("distributed", "cnnir sweep")
    own = None
    try:
        if client is None:
            if scheduler:
                client = own = distributed.Client(scheduler)
            else:
                import logging

                n = workers or os.cpu_count() or 1
                cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR)
                client = own = distributed.Client(cluster)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = chunk or max(1, min(32, len(todo) // (8 * n_workers) or 1))
        futures = [client.submit(cost, job, part, pure=False)
                   for part in _chunks(todo, size)]
        for fut in distributed.as_completed(futures):
            record(fut.result())
        return n_workers
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()


def run_sweep(job: Job, variants: Sequence[dict[str, Any]], output: str, cost: Cost, *,
              where: str | None = None, pareto: Sequence[str] | None = None,
              plots: Sequence[str] = (), edf: Sequence[str] | None = None,
              group: str | None = None, client: Any = None, scheduler: str | None = None,
              workers: int | None = None, chunk: int | None = None,
              limit: int | None = None) -> SweepResult:
    """Cost ``variants`` into the directory ``output``; see the module's docstring.

    ``where`` filters: on the parameters alone it drops variants before costing, on
    metrics it drops costed rows from the outputs (the journal keeps them; failed rows
    are always kept).  ``pareto`` names the metrics of the front (``max:NAME`` to
    maximise); ``plots`` the image formats (``png``, ``svg``, ``pdf``) of the scatter
    (the first two Pareto metrics, front highlighted) and of the EDFs of ``edf``,
    one curve per value of the parameter ``group`` when given.  ``limit`` costs at most
    that many new variants (then writes the outputs of what is finished).
    """
    t0 = time.perf_counter()
    names = list(dict.fromkeys(n for v in variants for n in v))
    known = set(names) | set(METRICS) | set(MEASURED) | {TRAINING_METRIC}
    filt = Where(where) if where else None
    if filt is not None and not filt.names <= known:
        bad = sorted(filt.names - known)
        raise UsageError(f"--where {where!r}: unknown name {bad[0]!r}; names: "
                         f"{', '.join([*names, *METRICS, *MEASURED])}")
    front = [_front_metric(m, job, names) for m in (pareto or ())]
    if group is not None and group not in names:
        raise UsageError(f"--group {group!r} is not a parameter of the sweep "
                         f"(parameters: {', '.join(names)})")
    fmts = _plot_formats(plots)
    edf_metrics = [_front_metric(m, job, names)[0] for m in (edf or ())]
    from .extras import require

    if fmts:
        require("matplotlib", "cnnir sweep's plots")
    if scheduler != "serial":  # before any output: a missing extra writes nothing
        require("distributed", "cnnir sweep")
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"cannot write {output}: it is a file (--output names a directory)")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write {output}: directory {parent} does not exist")
    if filt is not None and filt.names <= set(names):  # parameters only: filter first
        variants = [v for v in variants if filt(v)]
    os.makedirs(output, exist_ok=True)
    jpath = os.path.join(output, JOURNAL)
    settings = job.settings()
    done = _read_journal(jpath, settings)
    todo = [dict(v) for v in variants if key(v) not in done]
    skipped = len(variants) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    journal = _Journal(jpath, settings)
    n_workers = 1
    try:
        if todo:
            n_workers = _execute(job, todo, cost, journal, done, client=client,
                                 scheduler=scheduler, workers=workers, chunk=chunk)
    finally:
        journal.close()
    seconds = time.perf_counter() - t0
    rows = []
    for v in variants:
        r = done.get(key(v))
        if r is None:
            continue
        row = {**r["params"], **r["metrics"], "error": r["error"]}
        if r["error"] is None and filt is not None and not filt(row):
            continue
        rows.append(row)
    cols = [m for m in (*METRICS, TRAINING_METRIC, *MEASURED) if any(m in r for r in rows)]
    res = SweepResult(rows=rows, parameters=names, metrics=cols, output=output, files=[jpath],
                      costed=len(todo), skipped=skipped, workers=n_workers, seconds=seconds,
                      failed=sum(r["error"] is not None for r in rows))
    if front:
        res.pareto = pareto_front(rows, front)
        res.pareto_metrics = [m for m, _ in front]
    _write_outputs(res, job)
    if fmts:
        from . import sweep_plot

        res.files += sweep_plot.draw_all(res, fmts, edf_metrics, group)
    return res


def _front_metric(text: str, job: Job, params: Sequence[str]) -> tuple[str, bool]:
    """``"macs"`` -> ("macs", minimise); ``"max:NAME"`` -> (NAME, maximise).  A metric,
    or a swept parameter (``max:width``)."""
    text = text.strip()
    maximise = text.startswith("max:")
    name = metric_name(text.removeprefix("max:").removeprefix("min:"))
    allowed = [*METRICS, *(("latency_ms",) if job.measure else ()), *params]
    if name not in allowed and name != TRAINING_METRIC:
        hint = " (latency needs --measure)" if name == "latency_ms" else ""
        raise UsageError(f"unknown metric {text!r}{hint}; metrics: {', '.join(allowed)}")
    return name, maximise


def _plot_formats(plots: Sequence[str]) -> list[str]:
    fmts = [p.strip().lower().lstrip(".") for p in plots if p.strip()]
    for f in fmts:
        if f not in ("png", "svg", "pdf"):
            raise UsageError(f"--plot {f!r}: formats are png, svg, pdf")
    return fmts


def pareto_front(rows: Sequence[Mapping[str, Any]],
                 metrics: Sequence[tuple[str, bool]]) -> list[int]:
    """Indices of the rows no other row dominates on ``metrics`` (``(name, maximise)``):
    at least as good on every metric and better on one.  Rows lacking a metric (failed
    variants) are on no front.  In row order."""
    import numpy as np

    idx = [i for i, r in enumerate(rows) if all(r.get(m) is not None for m, _ in metrics)]
    if not idx:
        return []
    pts = np.array([[(-1 if mx else 1) * float(rows[i][m]) for m, mx in metrics] for i in idx])
    keep = []
    for j, p in enumerate(pts):
        le = np.all(pts <= p, axis=1)
        lt = np.any(pts < p, axis=1)
        if not np.any(le & lt):
            keep.append(idx[j])
    return keep


# --------------------------------------------------------------------------- outputs


def _cell(v: Any) -> Any:
    return "" if v is None else v


def _csv(res: SweepResult, which: Sequence[int]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(res.columns)
    for i in which:
        r = res.rows[i]
        w.writerow([i, *(_cell(r.get(c)) for c in res.columns[1:])])
    return buf.getvalue()


def _write_outputs(res: SweepResult, job: Job) -> None:
    from .util import write_atomic

    def put(name: str, text: str) -> None:
        path = os.path.join(res.output, name)
        write_atomic(path, text)
        res.files.append(path)

    put("variants.csv", _csv(res, range(len(res.rows))))
    doc = {"model": job.model, "settings": job.settings(), "parameters": res.parameters,
           "metrics": res.metrics,
           "rows": [{"variant": i, **{c: r.get(c) for c in res.columns[1:]}}
                    for i, r in enumerate(res.rows)],
           "pareto": {"metrics": res.pareto_metrics, "variants": res.pareto}}
    put("variants.json", json.dumps(doc, indent=1) + "\n")
    if res.pareto_metrics:
        put("pareto.csv", _csv(res, res.pareto))


__all__ = ["Job", "make_job", "model_of", "check_parameters", "static_metrics", "one_line",
           "run_sweep",
           "pareto_front", "SweepResult", "METRICS", "MEASURED", "ALIASES", "TRAINING_METRIC"]
