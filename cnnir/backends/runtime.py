"""``cnnir run``: execute a model with onnxruntime, say which provider ran, time it.

Provider choice is split in two pure functions, testable without a GPU:

* :func:`plan_providers` turns ``--provider`` and onnxruntime's list of *available*
  providers into the list to ask for.  ``auto`` asks for CUDA then CPU;
  ``cuda`` / ``tensorrt`` need their provider in the build (else a clear error).
* :func:`confirm_provider` reads the providers the *session* really has.
  onnxruntime-gpu lists CUDA even where its libraries (CUDA 13, cuDNN 9) or the GPU
  are missing, logs loud errors and silently falls back to CPU; so ``auto`` reports
  the fallback in one line (with the reason onnxruntime logged), and an explicitly
  requested provider that did not initialise is a :class:`BackendError` (exit 2).

Session creation captures onnxruntime's own logging (file descriptors 1 and 2)
so the user sees one line instead of a screen of CUDA errors; the log is only
read for the reason.  On CUDA/TensorRT the input and output stay on the device
(I/O binding) so latency excludes host transfers.

Printed: the provider that ran, latency median and p90 over ``--repeat`` runs
(after warm-up), throughput, and the achieved GFLOP/s from cnnir's MAC count
(``count-macs``; FLOPs = 2 MACs).  A ``.onnx`` MODEL runs as is; its MACs come
from the ONNX frontend, or are "n/a" (with the reason) when it cannot read the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendError, UsageError
from ..extras import require

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
#: ``--provider`` value -> onnxruntime provider name
PROVIDERS = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
LABELS = {CPU: "CPU", CUDA: "CUDA", TENSORRT: "TensorRT"}
#: relative tolerance of ``--check``: max |ort - torch| <= RTOL * max |torch|
RTOL = 1e-4


# --------------------------------------------------------------------------- providers


@dataclass(frozen=True)
class ProviderPlan:
    """What to ask onnxruntime for: ``providers`` in priority order."""

    requested: str
    providers: tuple[str, ...]
    #: a line to print before running (``auto`` on a CPU-only build), or None
    note: str | None = None
    #: the note is for ``-v`` only (``auto`` choosing CPU where there is no GPU to use)
    quiet: bool = False

    @property
    def wanted(self) -> str:
        """The provider we hope runs (the first asked for)."""
        return self.providers[0]


def nvidia_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver at all (Linux: the kernel module or its
    device nodes, WSL: its libcuda; other systems: assumed, onnxruntime will tell)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl",
                                           "/dev/nvidia0", "/usr/lib/wsl/lib/libcuda.so.1"))


def plan_providers(requested: str, available: Sequence[str], *,
                   driver: bool = True) -> ProviderPlan:
    """The providers to request for ``--provider requested`` given onnxruntime's list.

    ``auto`` on a machine without an NVIDIA driver (``driver=False``; see
    :func:`nvidia_driver_present`) does not try CUDA.  Its notes there and on a
    CPU-only build are ``quiet`` (printed with ``-v`` only: the ``provider`` line
    already says what ran).
    """
    available = list(available)
    if requested == "auto":
        if CUDA in available:
            if driver:
                return ProviderPlan("auto", (CUDA, CPU))
            return ProviderPlan("auto", (CPU,), quiet=True, note=(
                "auto: no NVIDIA driver on this machine; running on CPU without trying "
                "the CUDA provider"))
        return ProviderPlan("auto", (CPU,), quiet=True, note=(
            "auto: this onnxruntime build has no CUDA provider (install onnxruntime-gpu "
            "for GPUs); running on CPU"))
    if requested not in PROVIDERS:
        raise UsageError(f"unknown provider {requested!r}; choose auto, "
                         f"{', '.join(PROVIDERS)}")
    name = PROVIDERS[requested]
    if name not in available:
        have = ", ".join(LABELS.get(p, p) for p in available) or "none"
        hint = ("; install onnxruntime-gpu (CUDA 13, cuDNN 9)" if requested != "cpu" else "")
        raise BackendError(f"--provider {requested}: this onnxruntime build has no "
                           f"{name} (available: {have}){hint}")
    if requested == "tensorrt":
        return ProviderPlan(requested, (TENSORRT, CUDA, CPU))
    if requested == "cuda":
        return ProviderPlan(requested, (CUDA, CPU))
    return ProviderPlan(requested, (CPU,))


def confirm_provider(plan: ProviderPlan, session_providers: Sequence[str],
                     reason: str | None = None) -> tuple[str, str | None]:
    """The provider that actually runs, and the one-line fallback note (or None).

    Raises :class:`BackendError` when an explicitly requested provider did not
    initialise (onnxruntime fell back to CPU without saying so).
    """
    got = list(session_providers)
    if not got:
        raise BackendError("onnxruntime created a session without any provider")
    ran = got[0]
    if ran == plan.wanted:
        return ran, None
    why = f" ({reason})" if reason else ""
    label = LABELS.get(plan.wanted, plan.wanted)
    if plan.requested == "auto":
        return ran, (f"auto: the {label} provider did not initialise{why}; "
                     f"falling back to {LABELS.get(ran, ran)}")
    raise BackendError(
        f"--provider {plan.requested}: the {label} provider did not initialise{why}; "
        f"onnxruntime would have run on {LABELS.get(ran, ran)}. Use --provider auto "
        f"or --provider cpu")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_reason(log: str) -> str | None:
    """The most telling line of what onnxruntime logged while a provider failed."""
    lines = [_ANSI.sub("", s).strip() for s in log.splitlines()]
    lines = [s for s in lines if s]
    for s in lines:
        m = re.search(r"Failed to load library (\S+) with error: (.*)$", s)
        if m:
            return f"{os.path.basename(m.group(1))}: {m.group(2).strip()}"
    for s in lines:
        m = re.search(r"(CUDA failure \d+: .*|no CUDA-capable device[^;]*|"
                      r"CUDA driver version is insufficient[^;]*|"
                      r"Please install TensorRT libraries)", s)
        if m:
            return m.group(1).strip()
    errors = [s for s in lines if "[E:onnxruntime" in s or s.startswith("EP Error")]
    if errors:
        return re.sub(r"^.*?\] ", "", errors[-1])[:300]
    return None


# --------------------------------------------------------------------------- sessions


@contextlib.contextmanager
def captured_output() -> Iterator[list[str]]:
    """Collect what is written to file descriptors 1 and 2 (C++ logs and prints).

    The list yielded receives the text when the block ends.
    """
    box: list[str] = []
    buf = io.StringIO()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(buf))
    quiet.enter_context(contextlib.redirect_stderr(buf))
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
    except (OSError, ValueError):  # no real descriptors (embedded use): Python output only
        with quiet:
            yield box
        box.append(buf.getvalue())
        return
    tmp = tempfile.TemporaryFile()
    try:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        with quiet:
            yield box
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        tmp.seek(0)
        box.append(tmp.read().decode(errors="replace") + buf.getvalue())
        tmp.close()


OPT_LEVELS = ("disable", "basic", "extended", "all")


def session_options(optimization: str = "all", threads: int | None = None) -> Any:
    """onnxruntime session options with its logging quietened (errors only)."""
    ort = require("onnxruntime", "cnnir run")

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if threads:
        so.intra_op_num_threads = threads
    return so


def create_session(model: bytes | str, plan: ProviderPlan, options: Any = None
                   ) -> tuple[Any, str, str | None]:
    """``(session, provider that runs, fallback note)`` for a model (bytes or a path)."""
    ort = require("onnxruntime", "cnnir run")

    so = options if options is not None else session_options()
    gpu = any(p != CPU for p in plan.providers)
    with captured_output() as log:
        if gpu and hasattr(ort, "preload_dlls"):
            # CUDA/cuDNN from the nvidia-* wheels, where present; harmless otherwise
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        try:
            sess = ort.InferenceSession(model, so, providers=list(plan.providers))
            error = None
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail types
            sess, error = None, exc
    text = "".join(log)
    if sess is None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        reason = failure_reason(text)
        raise BackendError(f"onnxruntime could not create a session: {first}"
                           + (f" ({reason})" if reason else ""))
    ran, note = confirm_provider(plan, sess.get_providers(), failure_reason(text))
    return sess, ran, note


def available_providers() -> list[str]:
    ort = require("onnxruntime", "cnnir run")

    return list(ort.get_available_providers())


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    seconds: list[float]
    batch: int

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.seconds, 90))

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch / self.median


def make_runner(sess: Any, x: np.ndarray, provider: str) -> tuple[Callable[[], None],
                                                                  Callable[[], list[np.ndarray]]]:
    """``(run, outputs)``: one inference, and the outputs of the last one as numpy."""
    name = sess.get_inputs()[0].name
    if provider == CPU:
        box: list[list[np.ndarray]] = [[]]

        def run_cpu() -> None:
            box[0] = sess.run(None, {name: x})

        return run_cpu, lambda: box[0]
    ort = require("onnxruntime", "cnnir run")

    binding = sess.io_binding()
    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
    for out in sess.get_outputs():
        binding.bind_output(out.name, "cuda", 0)

    def run_gpu() -> None:
        sess.run_with_iobinding(binding)

    return run_gpu, lambda: [v.numpy() for v in binding.get_outputs()]


def time_runs(run: Callable[[], None], repeat: int, batch: int, warmup: int = 3) -> Timing:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return Timing(times, batch)


# --------------------------------------------------------------------------- the command


def input_tensor(shape: Sequence[int], batch: int, seed: int = 0) -> np.ndarray:
    """The seeded standard-normal input ``batch x shape``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *shape)).astype(np.float32)


def _onnx_input_shape(sess: Any, batch: int, path: str,
                      override: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The file's per-sample input shape; ``override`` (``--input``) fills symbolic sizes."""
    inp = sess.get_inputs()
    if len(inp) != 1:
        raise BackendError(f"{path}: cnnir run feeds models with one input; this one has "
                           f"{len(inp)} ({', '.join(i.name for i in inp)})")
    if inp[0].type != "tensor(float)":
        raise BackendError(f"{path}: input '{inp[0].name}' is {inp[0].type}; cnnir run "
                           f"feeds float32 tensors")
    dims = list(inp[0].shape)
    if not dims:
        raise BackendError(f"{path}: input '{inp[0].name}' is a scalar")
    if isinstance(dims[0], int) and dims[0] != batch:
        raise UsageError(f"{path} has a fixed batch of {dims[0]}; run it with --batch {dims[0]}")
    rest = dims[1:]
    if override is not None:
        if len(override) != len(rest) or any(
                isinstance(d, int) and d > 0 and d != o for d, o in zip(rest, override)):
            raise UsageError(f"--input {'x'.join(map(str, override))} does not fit the input "
                             f"of {path}: {'x'.join(map(str, dims[1:]))}")
        return tuple(override)
    if not all(isinstance(d, int) and d > 0 for d in rest):
        raise BackendError(f"{path}: input '{inp[0].name}' has symbolic sizes {dims}; "
                           f"give them with --input CxHxW")
    return tuple(rest)


def check_against_torch(graph: Any, weights: Any, x: np.ndarray, y: np.ndarray
                        ) -> tuple[float, float]:
    """``(max |ort - torch|, output scale)`` with the PyTorch backend on the same weights."""
    try:
        torch = require("torch", "cnnir run --check")

        from .pytorch import to_module
    except ModuleNotFoundError as exc:
        raise UsageError(f"--check needs the PyTorch backend ({exc})") from None
    import warnings

    with warnings.catch_warnings():  # weights read from a file are read-only views;
        # the module copies them into its own tensors, so torch's warning is noise
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        module = to_module(graph, weights=weights).eval()
    with torch.inference_mode():
        ref = module(torch.from_numpy(x))
    if isinstance(ref, (tuple, list)):
        ref = ref[0]
    r = ref.detach().numpy().astype(np.float64)
    if r.shape != y.shape:
        raise BackendError(f"--check: PyTorch gives {r.shape}, onnxruntime {y.shape}")
    return float(np.max(np.abs(r - y))), float(np.max(np.abs(r)))


__all__ = ["ProviderPlan", "plan_providers", "nvidia_driver_present", "confirm_provider",
           "failure_reason",
           "create_session", "session_options", "captured_output", "time_runs", "Timing",
           "make_runner", "input_tensor", "check_against_torch", "PROVIDERS",
           "CPU", "CUDA", "TENSORRT", "RTOL"]
