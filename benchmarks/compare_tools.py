"""cnnir side by side with torchinfo, fvcore, ptflops, thop, onnx-tool and torchview.

::

    /tmp/toolsvenv/bin/python benchmarks/compare_tools.py [--runs 3] [--quick] [-o FILE.md]

Needs torch and onnx, and the tools importable (a tool that is missing is reported
and skipped).  It runs every tool on the same networks and prints what each one
returns next to cnnir:

1. **ResNet-50** (torchvision layout) and **GoogLeNet** (the paper's Table 1, with
   its two LRN layers): params and MACs/"FLOPs" exactly as each tool returns them,
   what it prints or logs on the way, and for ResNet-50 the time it takes
   (in-process, a fresh model each run, median of ``--runs``), next to one plain
   forward pass and to cnnir.
2. **Probes**: one layer on an 8x16x16 input per row (conv, BN, ReLU, pools, add,
   LRN, Hardswish, bilinear upsample, an inline ``x * torch.sigmoid(x)``,
   ``torch.cat``, a custom module with its own parameter, GELU): the figure each
   tool returns for that layer alone and whether it says anything when it counts
   nothing.  thop and ptflops run twice, with their defaults and with the flag
   that reports uncounted modules (``report_missing=True``, ``verbose=True``).
3. **Features**, checked by running: does importing the tool import torch, does it
   call the model's ``forward``, does it report memory, per-layer output shapes,
   receptive fields (its installed source is searched for the word), a diagram
   (node and edge counts of the DOT for ResNet-50) and whether repeated blocks fold.

The torch modules are written here by hand, as a user would have them.  Where
cnnir's PyTorch backend is importable, each is proved to be the same network as
``cnnir.backends.pytorch.to_module(cnnir.load(name))``: the same parameter and
buffer shapes in the same order, and the same output once the weights (and
randomised BatchNorm statistics) are copied across.  Parameter counts are compared
with cnnir's in every case.

onnx-tool reads ONNX files: each network is exported with ``torch.onnx.export``
(the TorchScript exporter, ``dynamo=False``, where torch still has it; opset 17).
In eval mode that exporter folds BatchNorm into the convolutions, so onnx-tool
sees the folded graph; cnnir is run on the same files for a like-for-like row.

Prints the machine and every version; asserts nothing (timings are not tests).
``-o FILE`` writes the Markdown summary that docs/comparison.md quotes.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata
import inspect
import io
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import cnnir  # noqa: E402
from cnnir.analysis import analyze  # noqa: E402
from cnnir.dsl import concat  # noqa: E402
from cnnir.dsl import model as dsl_model  # noqa: E402
from cnnir.errors import CnnirError  # noqa: E402

#: import name -> distribution name
TOOLS = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops", "thop": "thop",
         "onnx_tool": "onnx-tool", "torchview": "torchview"}

# ---------------------------------------------------------------------------- machine


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs (torch uses {torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}")


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__, "cnnir": cnnir.__version__}
    for dist in ("onnx", *TOOLS.values()):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def have(tool: str) -> bool:
    try:
        importlib.import_module(tool)
    except Exception:  # noqa: BLE001 - any failure to import means "not available"
        return False
    return True


# ---------------------------------------------------------------------------- the networks


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3, projection where shapes change)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


class ResNet50(nn.Module):
    """ResNet-50 as torchvision writes it (25,557,032 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for planes, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            blocks = []
            for i in range(n):
                blocks.append(Bottleneck(cin, planes, stride if i == 0 else 1))
                cin = planes * 4
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Inception(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1->3x3; 1x1->5x5; maxpool->1x1."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                 proj: int) -> None:
        super().__init__()
        self.b1_1x1 = nn.Conv2d(cin, c1, 1)
        self.b2_reduce = nn.Conv2d(cin, c3r, 1)
        self.b2_3x3 = nn.Conv2d(c3r, c3, 3, padding=1)
        self.b3_reduce = nn.Conv2d(cin, c5r, 1)
        self.b3_5x5 = nn.Conv2d(c5r, c5, 5, padding=2)
        self.b4_pool = nn.MaxPool2d(3, 1, 1)
        self.b4_proj = nn.Conv2d(cin, proj, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.relu
        return torch.cat([r(self.b1_1x1(x)),
                          r(self.b2_3x3(r(self.b2_reduce(x)))),
                          r(self.b3_5x5(r(self.b3_reduce(x)))),
                          r(self.b4_proj(self.b4_pool(x)))], 1)


class GoogLeNet(nn.Module):
    """GoogLeNet as in the paper's Table 1 (and cnnir/zoo/googlenet.py): LRN, no BN, no aux."""

    CFG = (("3a", 192, 64, 96, 128, 16, 32, 32), ("3b", 256, 128, 128, 192, 32, 96, 64),
           ("pool3",), ("4a", 480, 192, 96, 208, 16, 48, 64),
           ("4b", 512, 160, 112, 224, 24, 64, 64), ("4c", 512, 128, 128, 256, 24, 64, 64),
           ("4d", 512, 112, 144, 288, 32, 64, 64), ("4e", 528, 256, 160, 320, 32, 128, 128),
           ("pool4",), ("5a", 832, 256, 160, 320, 32, 128, 128),
           ("5b", 832, 384, 192, 384, 48, 128, 128))

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.conv2_reduce = nn.Conv2d(64, 64, 1)
        self.conv2 = nn.Conv2d(64, 192, 3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.relu = nn.ReLU(inplace=True)
        body: list[nn.Module] = []
        for row in self.CFG:
            body.append(nn.MaxPool2d(3, 2, ceil_mode=True) if len(row) == 1
                        else Inception(*row[1:]))  # type: ignore[arg-type]
        self.body = nn.Sequential(*body)
        self.pool5 = nn.AvgPool2d(7, 1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, 1000)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lrn1(self.pool1(self.relu(self.conv1(x))))
        x = self.relu(self.conv2(self.relu(self.conv2_reduce(x))))
        x = self.body(self.pool2(self.lrn2(x)))
        x = self.dropout(torch.flatten(self.pool5(x), 1))
        return self.softmax(self.fc(x))


NETWORKS: dict[str, Callable[[], nn.Module]] = {"resnet50": ResNet50, "googlenet": GoogLeNet}


def randomise_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm the non-trivial statistics a trained network has."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return module


def fresh(name: str) -> nn.Module:
    return NETWORKS[name]().eval()


def prove_same(name: str) -> str:
    """Params vs cnnir; where the backend exists, outputs vs ``to_module(cnnir.load(name))``."""
    hand = fresh(name)
    ours = analyze(cnnir.load(name)).params
    theirs = sum(p.numel() for p in hand.parameters())
    if ours != theirs:
        raise SystemExit(f"{name}: the hand-written module has {theirs:,} params, cnnir "
                         f"{ours:,}: not the same network")
    line = f"{name}: {theirs:,} params, equal to cnnir's count"
    try:
        from cnnir.backends.pytorch import to_module
    except ImportError as exc:
        return line + f"; cnnir.backends.pytorch not importable ({exc}), outputs not compared"
    ref = randomise_bn(to_module(cnnir.load(name)), seed=1).eval()
    a = [v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")]
    b = [v for k, v in hand.state_dict().items() if not k.endswith("num_batches_tracked")]
    if [tuple(t.shape) for t in a] != [tuple(t.shape) for t in b]:
        raise SystemExit(f"{name}: state_dict shapes differ from cnnir's to_module")
    with torch.no_grad():
        for src, dst in zip(a, b):
            dst.copy_(src)
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        want, got = ref(x.clone()), hand(x.clone())
    diff = (want - got).abs().max().item()
    scale = want.abs().max().item()
    if not diff <= 1e-4 * scale:
        raise SystemExit(f"{name}: output differs from cnnir's to_module by {diff:.3g}")
    return (line + f"; same {len(a)} state_dict tensors (shapes, order) and same output as "
            f"cnnir.backends.pytorch.to_module(cnnir.load({name!r})) "
            f"(max |diff| {diff:.1e}, max |output| {scale:.2g})")


# ---------------------------------------------------------------------------- capture


@contextmanager
def captured() -> Iterator[dict[str, str]]:
    """Everything printed, logged (WARNING and up) or warned inside the block."""
    buf, box = io.StringIO(), {"text": ""}
    handler = logging.StreamHandler(buf)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught, redirect_stdout(buf), \
                redirect_stderr(buf):
            warnings.simplefilter("always")
            yield box
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        text = buf.getvalue()
        text += "".join(f"\n{w.category.__name__}: {w.message}" for w in caught)
        box["text"] = re.sub(r"\x1b\[[0-9;]*m", "", text)


#: what a tool says when it leaves an op out (each tool's own wording)
UNCOUNTED = re.compile(r"unsupported operator|cannot find rule|treated as a zero-op|"
                       r"not supported|not implemented|ops? (?:were|was) not counted|"
                       r"no rule|unsupported", re.I)


#: this script's own container classes: thop (report_missing) and ptflops (verbose) also
#: name every container without a rule; those lines are noise and left out
CONTAINERS = re.compile(r"\b(?:Probe|Counting|Bottleneck|ResNet50|Inception|GoogLeNet)\b")


def uncounted_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines()
            if UNCOUNTED.search(ln) and not CONTAINERS.search(ln)]


# ---------------------------------------------------------------------------- the tools


@dataclass
class Result:
    params: float | None = None
    count: float | None = None          #: the tool's MACs / FLOPs figure, as returned
    seconds: float = math.nan
    text: str = ""                      #: everything it printed, logged or warned
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def says(self) -> list[str]:
        return uncounted_lines(self.text)


def run_torchinfo(model: nn.Module, shape: tuple[int, ...], path: str, loud: bool,
                  details: bool) -> Result:
    import torchinfo

    s = torchinfo.summary(model, input_size=(1, *shape), verbose=0)
    r = Result(s.total_params, s.total_mult_adds)
    if details:
        r.extra.update(table=str(s), output_bytes=s.total_output_bytes,
                       by_kind=_torchinfo_by_kind(s))
    return r


def _torchinfo_by_kind(s: Any) -> Counter[str]:
    out: Counter[str] = Counter()
    for layer in s.summary_list:
        if layer.is_leaf_layer:
            out[layer.class_name] += layer.macs
    return out


def run_fvcore(model: nn.Module, shape: tuple[int, ...], path: str, loud: bool,
               details: bool) -> Result:
    from fvcore.nn import FlopCountAnalysis, flop_count_table, parameter_count

    f = FlopCountAnalysis(model, (torch.randn(1, *shape),))
    r = Result(parameter_count(model)[""], f.total())
    if details:
        from fvcore.nn import ActivationCountAnalysis

        r.extra.update(by_kind=Counter(f.by_operator()), unsupported=dict(f.unsupported_ops()),
                       table=flop_count_table(f, max_depth=2),
                       activations=ActivationCountAnalysis(model, (torch.randn(1, *shape),))
                       .total())
    return r


def run_ptflops(backend: str) -> Callable[..., Result]:
    def run(model: nn.Module, shape: tuple[int, ...], path: str, loud: bool,
            details: bool) -> Result:
        from ptflops import get_model_complexity_info

        macs, params = get_model_complexity_info(
            model, shape, as_strings=False, print_per_layer_stat=details, verbose=loud,
            backend=backend, ost=sys.stdout)  # its default stream is bound at import time
        if macs is None:
            return Result(error="returned (None, None): 'Flops estimation was not finished "
                                "successfully' (it catches the exception)")
        return Result(params, macs)
    return run


def run_thop(model: nn.Module, shape: tuple[int, ...], path: str, loud: bool,
             details: bool) -> Result:
    import thop

    x = torch.randn(1, *shape)
    if details:
        macs, params, info = thop.profile(model, inputs=(x,), report_missing=loud,
                                          ret_layer_info=True)
        r = Result(params, macs)
        by_kind: Counter[str] = Counter()

        def walk(prefix: str, tree: dict[str, Any]) -> None:
            for name, (m, _p, kids) in tree.items():
                full = f"{prefix}.{name}" if prefix else name
                if kids:
                    walk(full, kids)
                else:
                    by_kind[type(model.get_submodule(full)).__name__] += m
        walk("", info)
        r.extra.update(by_kind=by_kind, table=repr(info))
        return r
    macs, params = thop.profile(model, inputs=(x,), report_missing=loud)
    return Result(params, macs)


def run_onnx_tool(model: nn.Module, shape: tuple[int, ...], path: str, loud: bool,
                  details: bool) -> Result:
    import onnx_tool

    out = path + ".profile.csv"
    onnx_tool.model_profile(path, save_profile=out)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    total = rows[-1]
    r = Result(int(total["Params"]), int(total["Forward_MACs"]))
    r.extra.update(memory=int(total["Memory"]))
    if details:
        by_kind: Counter[str] = Counter()
        for row in rows[:-1]:
            by_kind[row["Type"]] += int(row["Forward_MACs"])
        r.extra.update(by_kind=by_kind, table=Path(out).read_text())
    return r


Runner = Callable[[nn.Module, tuple[int, ...], str, bool, bool], Result]

#: column name -> (import name, runner, has a "tell me what you skipped" flag)
RUNNERS: dict[str, tuple[str, Runner, str]] = {
    "torchinfo": ("torchinfo", run_torchinfo, ""),
    "fvcore": ("fvcore", run_fvcore, ""),
    "ptflops (pytorch)": ("ptflops", run_ptflops("pytorch"), "verbose=True"),
    "ptflops (aten)": ("ptflops", run_ptflops("aten"), "verbose=True"),
    "thop": ("thop", run_thop, "report_missing=True"),
    "onnx-tool": ("onnx_tool", run_onnx_tool, ""),
}


def call(runner: Runner, model: nn.Module, shape: tuple[int, ...], path: str,
         loud: bool = False, details: bool = False) -> Result:
    with captured() as box:
        t0 = time.perf_counter()
        try:
            r = runner(model, shape, path, loud, details)
        except Exception as exc:  # noqa: BLE001 - a tool failing is a result here
            r = Result(error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
        r.seconds = time.perf_counter() - t0
    r.text = box["text"]
    return r


def export_onnx(model: nn.Module, shape: tuple[int, ...], path: str) -> float:
    """torch.onnx.export, TorchScript exporter where it exists; seconds taken."""
    kw: dict[str, Any] = {"opset_version": 17, "input_names": ["input"],
                          "output_names": ["output"]}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    t0 = time.perf_counter()
    with captured():
        torch.onnx.export(model, (torch.randn(1, *shape),), path, **kw)
    return time.perf_counter() - t0


def run_cnnir(spec: Any) -> Result:
    with captured() as box:
        t0 = time.perf_counter()
        try:
            a = analyze(spec() if callable(spec) else cnnir.load(spec))
            r = Result(a.params, a.macs, extra={"other_ops": a.other_ops, "analysis": a})
        except CnnirError as exc:
            r = Result(error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        r.seconds = time.perf_counter() - t0
    r.text = box["text"]
    return r


# ---------------------------------------------------------------------------- probes


class Probe(nn.Module):
    """One layer (or one inline expression) applied to the input."""

    def __init__(self, fn: Callable[..., torch.Tensor], **layers: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        for k, v in layers.items():
            self.add_module(k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


class LearnedScale(nn.Module):
    """A user's own layer: a learned per-channel scale (8 parameters)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


PROBE_SHAPE = (8, 16, 16)

#: name, what it is, torch module factory, DSL body (None: the DSL cannot say it)
PROBES: list[tuple[str, str, Callable[[], nn.Module], Callable[[Any], Any] | None]] = [
    ("conv3x3", "nn.Conv2d(8, 8, 3, padding=1, bias=False): 147,456 MACs",
     lambda: Probe(lambda m, x: m.l(x), l=nn.Conv2d(8, 8, 3, padding=1, bias=False)),
     lambda x: x.conv(8, 3, padding=1, bias=False)),
    ("conv3x3+bias", "the same with bias=True (2,048 bias adds)",
     lambda: Probe(lambda m, x: m.l(x), l=nn.Conv2d(8, 8, 3, padding=1)),
     lambda x: x.conv(8, 3, padding=1)),
    ("linear", "flatten, nn.Linear(2048, 10): 20,480 MACs + 10 bias adds",
     lambda: Probe(lambda m, x: m.l(torch.flatten(x, 1)), l=nn.Linear(2048, 10)),
     lambda x: x.flatten().linear(10)),
    ("batchnorm", "nn.BatchNorm2d(8), eval mode",
     lambda: Probe(lambda m, x: m.l(x), l=nn.BatchNorm2d(8)), lambda x: x.bn()),
    ("relu", "nn.ReLU()", lambda: Probe(lambda m, x: m.l(x), l=nn.ReLU()),
     lambda x: x.relu()),
    ("maxpool", "nn.MaxPool2d(2)", lambda: Probe(lambda m, x: m.l(x), l=nn.MaxPool2d(2)),
     lambda x: x.maxpool(2)),
    ("avgpool", "nn.AvgPool2d(2)", lambda: Probe(lambda m, x: m.l(x), l=nn.AvgPool2d(2)),
     lambda x: x.avgpool(2)),
    ("add", "x + x (a residual add, written inline)", lambda: Probe(lambda m, x: x + x),
     lambda x: x + x),
    ("lrn", "nn.LocalResponseNorm(5)",
     lambda: Probe(lambda m, x: m.l(x), l=nn.LocalResponseNorm(5)), lambda x: x.lrn()),
    ("hardswish", "nn.Hardswish()", lambda: Probe(lambda m, x: m.l(x), l=nn.Hardswish()),
     lambda x: x.hardswish()),
    ("upsample-bilinear", "nn.Upsample(scale_factor=2, mode='bilinear')",
     lambda: Probe(lambda m, x: m.l(x), l=nn.Upsample(scale_factor=2, mode="bilinear")),
     lambda x: x.upsample(2, mode="bilinear")),
    ("swish-inline", "x * torch.sigmoid(x), written inline",
     lambda: Probe(lambda m, x: x * torch.sigmoid(x)), lambda x: x * x.sigmoid()),
    ("cat", "torch.cat([x, x], 1)", lambda: Probe(lambda m, x: torch.cat([x, x], 1)),
     lambda x: concat(x, x)),
    ("custom-scale", "a user's nn.Module: x * self.gamma (8 params)",
     lambda: Probe(lambda m, x: m.l(x), l=LearnedScale(8)), None),
    ("gelu", "nn.GELU() (not in cnnir's op set)",
     lambda: Probe(lambda m, x: m.l(x), l=nn.GELU()), None),
]


def dsl_probe(name: str, body: Callable[[Any], Any]) -> Callable[[], Any]:
    def net(x: Any) -> Any:
        return body(x)

    net.__name__ = "probe_" + re.sub(r"\W", "_", name)
    return dsl_model(net, input=PROBE_SHAPE).build


@dataclass
class ProbeRow:
    name: str
    what: str
    out_elems: int
    results: dict[str, Result]
    loud: dict[str, Result]


def run_probes(tmp: str, tools: list[str]) -> list[ProbeRow]:
    rows = []
    for name, what, make, body in PROBES:
        mod = make().eval()
        with torch.no_grad():
            out_elems = mod(torch.randn(1, *PROBE_SHAPE)).numel()
        path = os.path.join(tmp, f"probe_{name}.onnx")
        export_onnx(make().eval(), PROBE_SHAPE, path)
        res, loud = {}, {}
        for col in tools:
            _imp, runner, flag = RUNNERS[col]
            res[col] = call(runner, make().eval(), PROBE_SHAPE, path)
            if flag:
                loud[col] = call(runner, make().eval(), PROBE_SHAPE, path, loud=True)
        if body is not None:
            res["cnnir (DSL)"] = run_cnnir(dsl_probe(name, body))
        else:
            res["cnnir (DSL)"] = Result(error="no such layer in the DSL")
        res["cnnir (ONNX)"] = run_cnnir(path)
        rows.append(ProbeRow(name, what, out_elems, res, loud))
    return rows


# ---------------------------------------------------------------------------- big networks


@dataclass
class NetRun:
    name: str
    results: dict[str, Result]
    times: dict[str, list[float]]
    export_s: float
    loud: dict[str, Result]


def cnnir_onnx(name: str, path: str, batch: str) -> None:
    """``cnnir compile NAME --to onnx``: its ONNX has the LRN op where torch decomposes it."""
    subprocess.run([sys.executable, "-m", "cnnir", "compile", name, "--to", "onnx", "--batch",
                    batch, "-o", path], cwd=REPO, capture_output=True, check=True)


def run_network(name: str, tmp: str, tools: list[str], runs: int) -> NetRun:
    path = os.path.join(tmp, f"{name}.onnx")
    export_s = export_onnx(randomise_bn(fresh(name)), (3, 224, 224), path)
    results: dict[str, Result] = {}
    times: dict[str, list[float]] = {}
    loud: dict[str, Result] = {}
    for col in tools:
        _imp, runner, flag = RUNNERS[col]
        r = call(runner, fresh(name), (3, 224, 224), path, details=True)
        results[col] = r
        times[col] = []
        for _ in range(runs):
            model = fresh(name)
            times[col].append(call(runner, model, (3, 224, 224), path).seconds)
        if flag:
            loud[f"{col}, {flag}"] = call(runner, fresh(name), (3, 224, 224), path, loud=True)
    if "onnx-tool" in tools:
        for label, batch in (("onnx-tool on cnnir's ONNX", "1"),
                             ("onnx-tool on cnnir's ONNX, dynamic batch", "dynamic")):
            cpath = os.path.join(tmp, f"{name}.cnnir.{batch}.onnx")
            cnnir_onnx(name, cpath, batch)
            results[label] = call(run_onnx_tool, nn.Identity(), (3, 224, 224), cpath,
                                  details=True)
    results["cnnir"] = run_cnnir(name)
    results["cnnir (ONNX)"] = run_cnnir(path)
    times["cnnir"] = [run_cnnir(name).seconds for _ in range(max(runs, 5))]
    times["cnnir (ONNX)"] = [results["cnnir (ONNX)"].seconds]
    return NetRun(name, results, times, export_s, loud)


def forward_seconds(name: str, runs: int) -> float:
    model, x = fresh(name), torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def subprocess_seconds(argv: list[str], runs: int) -> tuple[float, str]:
    ts, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
        ts.append(time.perf_counter() - t0)
        out = p.stdout
    return statistics.median(ts), out


# ---------------------------------------------------------------------------- features


def imports_torch(stmt: str) -> bool:
    code = f"import sys\n{stmt}\nprint('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(p.stderr.strip().splitlines()[-1])
    return p.stdout.split()[-1] == "True"


def source_mentions(package: str, word: str) -> int:
    """Files of the installed package whose text contains ``word`` (case-insensitive)."""
    mod = importlib.import_module(package)
    root = Path(mod.__file__).parent  # type: ignore[arg-type]
    pat = re.compile(word, re.I)
    return sum(1 for f in root.rglob("*.py") if pat.search(f.read_text(errors="replace")))


class Counting(nn.Module):
    """Counts how often the wrapped model's forward runs."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*\[', re.M)


def dot_counts(src: str) -> tuple[int, int]:
    nodes = [n for n in NODE.findall(src) if n not in ("graph", "node", "edge")
             and "legend" not in n.lower()]
    return len(nodes), src.count("->")


def torchview_runs(runs: int) -> dict[str, Any]:
    from torchview import draw_graph

    out: dict[str, Any] = {}
    for label, kw in (("depth=3 (default)", {}), ("depth=1", {"depth": 1}),
                      ("roll=True", {"roll": True})):
        with captured():
            ts = []
            for _ in range(runs if not kw else 1):
                model = fresh("resnet50")
                t0 = time.perf_counter()
                g = draw_graph(model, input_size=(1, 3, 224, 224), **kw)
                ts.append(time.perf_counter() - t0)
        src = g.visual_graph.source
        out[label] = (*dot_counts(src), statistics.median(ts),
                      bool(re.search(r"\(1, 64, 112, 112\)", src)))
    return out


def cnnir_draw() -> dict[str, tuple[int, int, bool, bool]]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("layer", "block", "stage"):
            dot = os.path.join(tmp, f"r50_{level}.dot")
            subprocess.run([sys.executable, "-m", "cnnir", "draw", "resnet50", "--level", level,
                            "-o", dot], cwd=REPO, capture_output=True, check=True)
            src = Path(dot).read_text()
            out[level] = (*dot_counts(src), bool(re.search(r"64×112×112", src)),
                          bool(re.search(r"×\s*\d+\s*<", src)))
    return out


#: what a user writes to use the tool
IMPORTS = {"torchinfo": "import torchinfo", "fvcore": "from fvcore.nn import FlopCountAnalysis",
           "ptflops": "import ptflops", "thop": "import thop", "onnx_tool": "import onnx_tool",
           "torchview": "import torchview"}


def cnnir_draw_seconds(runs: int) -> dict[str, float]:
    """In-process: load the zoo model and build the DOT text (no Graphviz layout)."""
    try:
        from cnnir.backends.dot import to_dot
    except ImportError:
        return {}
    out = {}
    for level in ("layer", "block", "stage"):
        ts = []
        for _ in range(max(runs, 3)):
            t0 = time.perf_counter()
            to_dot(cnnir.load("resnet50"), level=level)
            ts.append(time.perf_counter() - t0)
        out[level] = statistics.median(ts)
    return out


def feature_checks(tools: list[str], probe_tmp: str) -> dict[str, dict[str, Any]]:
    """Per tool: imports torch?  forward calls on a one-conv model?  'receptive' in its source?"""
    out: dict[str, dict[str, Any]] = {}
    probe = PROBES[0][2]
    path = os.path.join(probe_tmp, "probe_conv3x3.onnx")
    for col in tools:
        imp, runner, _ = RUNNERS[col]
        wrapped = Counting(probe().eval())
        if imp == "onnx_tool":
            export_onnx(wrapped, PROBE_SHAPE, path)
            calls = f"0 (the ONNX export before it: {wrapped.calls})"
            call(runner, wrapped, PROBE_SHAPE, path)
        else:
            call(runner, wrapped, PROBE_SHAPE, path)
            calls = str(wrapped.calls)
        out[col] = {"imports_torch": imports_torch(IMPORTS[imp]), "forward_calls": calls,
                    "receptive": source_mentions(imp, "receptive")}
    if have("torchview"):
        from torchview import draw_graph

        wrapped = Counting(probe().eval())
        with captured():
            draw_graph(wrapped, input_size=(1, *PROBE_SHAPE))
        out["torchview"] = {"imports_torch": imports_torch(IMPORTS["torchview"]),
                            "forward_calls": str(wrapped.calls),
                            "receptive": source_mentions("torchview", "receptive")}
    out["cnnir (DSL model)"] = {
        "imports_torch": imports_torch("import cnnir\nfrom cnnir.analysis import analyze\n"
                                       "analyze(cnnir.load('resnet50'))"),
        "forward_calls": "0", "receptive": source_mentions("cnnir", "receptive")}
    return out


# ---------------------------------------------------------------------------- printing


def num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms" if s < 10 else f"{s:,.1f} s"


def cell(r: Result) -> str:
    if r.error:
        return f"fails: {r.error}"
    return num(r.count)


def md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)


def network_table(run: NetRun, forward: float | None) -> str:
    cn = run.results["cnnir"]
    rows = []
    for col, r in run.results.items():
        t = run.times.get(col)
        said = r.says
        rows.append([
            col, num(r.params), cell(r),
            "-" if r.error or r.count is None or not cn.count
            else f"{r.count / cn.count:.4f}",
            ms(statistics.median(t)) if t else "-",
            (f"{len(said)} line(s), e.g. `{said[0][:90]}`" if said else "nothing")
            if not r.error else "-"])
    head = ["tool", "params", "MACs/FLOPs as returned", "/ cnnir MACs",
            "time (median)", "says about uncounted ops"]
    text = md_table(head, rows)
    if forward is not None:
        text += f"\n\nOne plain forward pass (torch.no_grad, batch 1): {ms(forward)}."
    return text


def breakdown_table(run: NetRun) -> str:
    """What each tool's total is made of, by the tool's own per-layer/per-op figures."""
    rows = []
    for col in ("torchinfo", "fvcore", "thop", "onnx-tool", "onnx-tool on cnnir's ONNX"):
        r = run.results.get(col)
        if r is None or r.error or "by_kind" not in r.extra:
            continue
        parts = [f"{k} {num(v)}" for k, v in sorted(r.extra["by_kind"].items(),
                                                   key=lambda kv: -kv[1]) if v]
        rows.append([col, "; ".join(parts)])
    a = run.results["cnnir"].extra["analysis"]
    kinds: Counter[str] = Counter()
    for n in a.graph.nodes():
        cost = a.graph.meta(n)["cost"]
        kinds[a.graph.op(n).kind] += cost["macs"]
    rows.append(["cnnir (macs)", "; ".join(f"{k} {num(v)}" for k, v in kinds.most_common()
                                            if v)])
    return md_table(["tool", "its figure per layer type / operator (non-zero only)"], rows)


def ptflops_functional(names: tuple[str, ...] = ("relu", "maxpool", "gelu", "lrn")) -> str:
    """ptflops' PyTorch backend with and without its functional patching, same probes."""
    from ptflops import get_model_complexity_info

    rows = []
    for name, _what, make, _body in PROBES:
        if name not in names:
            continue
        got = []
        for count_functional in (True, False):
            with captured():
                macs, _ = get_model_complexity_info(
                    make().eval(), PROBE_SHAPE, as_strings=False, print_per_layer_stat=False,
                    backend="pytorch",
                    backend_specific_config={"count_functional": count_functional})
            got.append(num(macs))
        rows.append([name, *got])
    return md_table(["probe", "ptflops (pytorch), count_functional=True (default)",
                     "count_functional=False"], rows)


def probe_table(rows: list[ProbeRow], tools: list[str]) -> str:
    cols = [*tools, "cnnir (DSL)", "cnnir (ONNX)"]
    out = []
    for p in rows:
        line = [f"{p.name}: {p.what}"]
        for col in cols:
            r = p.results[col]
            if r.error:
                line.append(f"fails: {r.error[:110]}")
                continue
            c = num(r.count)
            if col.startswith("cnnir"):
                c = f"MACs {num(r.count)}, other {num(r.extra['other_ops'])}"
            if r.count == 0 and not col.startswith("cnnir"):
                if r.says:
                    c += " (warns)"
                elif col in p.loud:
                    c += (" (silent; warns with flag)" if p.loud[col].says
                          else " (silent, also with flag)")
                else:
                    c += " (silent)"
            elif r.says:
                c += " (warns)"
            line.append(c)
        out.append(line)
    head = ["probe (input 8x16x16)", *cols]
    return md_table(head, out)


def probe_params_table(rows: list[ProbeRow], tools: list[str]) -> str:
    cols = [*tools, "cnnir (DSL)", "cnnir (ONNX)"]
    out = []
    for p in rows:
        if p.name not in ("conv3x3+bias", "linear", "batchnorm", "custom-scale"):
            continue
        out.append([p.name, *[("fails" if p.results[c].error else num(p.results[c].params))
                              for c in cols]])
    return md_table(["probe: params reported", *cols], out)


def feature_table(feat: dict[str, dict[str, Any]]) -> str:
    rows = [[k, "yes" if v["imports_torch"] else "no",
             v["forward_calls"], str(v["receptive"])] for k, v in feat.items()]
    return md_table(["tool", "importing it imports torch", "forward() calls on one analysis",
                     "source files mentioning 'receptive'"], rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool (median)")
    ap.add_argument("--quick", action="store_true", help="one timed run, skip GoogLeNet timing")
    ap.add_argument("-o", "--output", help="write the Markdown summary to this file")
    args = ap.parse_args(argv)
    runs = 1 if args.quick else args.runs
    logging.getLogger("fvcore").propagate = True

    md: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        md.append(text)

    say("# cnnir and the tools a user would use instead: measured")
    say()
    say(f"Machine: {machine()}  ")
    say("Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + "  ")
    say(f"Command: `{Path(sys.executable).name} benchmarks/compare_tools.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip() + "  ")
    say(f"Timed runs per tool: {runs} (median), in-process, a fresh model each run.")
    tools = [c for c, (imp, _r, _f) in RUNNERS.items() if have(imp)]
    missing = [c for c in RUNNERS if c not in tools]
    if missing:
        say(f"Not importable, skipped: {', '.join(missing)}")
    say()
    say("## The networks are the same")
    say()
    for name in NETWORKS:
        say("- " + prove_same(name))
    say()

    with tempfile.TemporaryDirectory() as tmp:
        nets = {}
        fwd = {}
        for name in NETWORKS:
            n_runs = runs if name == "resnet50" else 1
            nets[name] = run_network(name, tmp, tools, n_runs)
            fwd[name] = forward_seconds(name, max(runs, 3))
            say(f"## {name}: params and MACs as each tool returns them")
            say()
            say(network_table(nets[name], fwd[name]))
            say()
            say(f"Export to ONNX for onnx-tool (torch.onnx.export, TorchScript exporter, "
                f"opset 17): {ms(nets[name].export_s)}; BatchNorm is folded into the convs "
                f"by the exporter, so onnx-tool and 'cnnir (ONNX)' count the folded graph.")
            say()
            say("What the totals are made of (each tool's own per-layer figures):")
            say()
            say(breakdown_table(nets[name]))
            say()
            for col, r in {**nets[name].results, **nets[name].loud}.items():
                said = r.says
                say(f"- {col} said " + (f"({len(said)} lines): " + "; ".join(
                    f"`{s[:120]}`" for s in dict.fromkeys(said)) if said
                    else "nothing about uncounted layers"))
            say()

        r50 = nets["resnet50"].results
        cli_s, cli_out = subprocess_seconds(
            [sys.executable, "-m", "cnnir", "report", "resnet50"], max(runs, 3))
        torch_s, _ = subprocess_seconds([sys.executable, "-c", "import torch"], max(runs, 3))
        say("## Time to analyse ResNet-50")
        say()
        rows = [[c, ms(statistics.median(t))] for c, t in nets["resnet50"].times.items()]
        rows.append(["one forward pass (no_grad)", ms(fwd["resnet50"])])
        rows.append(["ONNX export (needed before onnx-tool)", ms(nets["resnet50"].export_s)])
        rows.append(["`cnnir report resnet50` (new process, table printed)", ms(cli_s)])
        rows.append(["`python -c 'import torch'` (new process)", ms(torch_s)])
        say(md_table(["what", "wall time (median)"], rows))
        say()

        say("## Probes: one layer each, what every tool counts for it")
        say()
        probes = run_probes(tmp, tools)
        say(probe_table(probes, tools))
        say()
        say("Output elements per probe (to read the figures per element): " + ", ".join(
            f"{p.name} {p.out_elems:,}" for p in probes) + ".")
        say("'(warns)': the tool printed or logged that it left something out; '(silent)': "
            "it returned the figure and said nothing; 'with flag': thop "
            "`report_missing=True`, ptflops `verbose=True`.")
        say()
        say(probe_params_table(probes, tools))
        say()
        if "ptflops (pytorch)" in tools:
            say("ptflops' PyTorch backend counts a module through its hook and, by default, "
                "the torch.nn.functional call inside it through a patch as well:")
            say()
            say(ptflops_functional())
            say()
        for p in probes:
            for col, r in {**p.results, **{f"{k} +flag": v for k, v in p.loud.items()}}.items():
                if r.says:
                    say(f"- {p.name}, {col}: " + "; ".join(
                        f"`{s[:120]}`" for s in dict.fromkeys(r.says)))
        say()

        say("## Features, checked by running")
        say()
        feat = feature_checks(tools, tmp)
        say(feature_table(feat))
        say()
        ti = r50.get("torchinfo")
        fv = r50.get("fvcore")
        ot = r50.get("onnx-tool")
        a = r50["cnnir"].extra["analysis"]
        say("Memory figures for ResNet-50 (each as the tool labels it):")
        say()
        if ti and not ti.error:
            say(f"- torchinfo: 'Forward/backward pass size' {ti.extra['output_bytes']:,} bytes "
                f"(`total_output_bytes`)")
        if fv and not fv.error:
            say(f"- fvcore: ActivationCountAnalysis total {fv.extra['activations']:,} "
                f"(elements)")
        if ot and not ot.error:
            say(f"- onnx-tool: 'Memory' total {ot.extra['memory']:,} bytes")
        say(f"- cnnir: activations {a.activation_bytes:,} bytes in all, peak "
            f"{a.peak_activation_bytes:,} (inference, freeing after last use), params "
            f"{a.param_bytes:,} bytes")
        say("- ptflops, thop: return (MACs, params) only")
        say()
        shape_re = re.compile(r"64\D{1,4}112\D{1,4}112")
        texts = {c: r.extra.get("table", "") + r.text for c, r in r50.items() if c in tools}
        texts["cnnir"] = cli_out
        say("Per-layer output shape of conv1 (64x112x112) present in the tool's per-layer "
            "output: " + ", ".join(f"{c} {'yes' if shape_re.search(t) else 'no'}"
                                   for c, t in texts.items()) + ".")
        say()
        if ti and not ti.error:
            say(f"Repeated blocks: torchinfo's table has "
                f"{ti.extra['table'].count('Bottleneck:')} 'Bottleneck' rows (one per block).")
        if fv and not fv.error:
            say(f"fvcore's flop_count_table starts `{fv.extra['table'].splitlines()[0][:60]}` "
                f"(a Markdown pipe table).")
        say()
        if have("torchview"):
            say("## Diagrams of ResNet-50")
            say()
            rows = [[f"torchview draw_graph, {k}", str(v[0]), str(v[1]), ms(v[2]),
                     "yes" if v[3] else "no", "no"]
                    for k, v in torchview_runs(runs).items()]
            draw_s = cnnir_draw_seconds(runs)
            for k, v in cnnir_draw().items():
                rows.append([f"cnnir draw --level {k}", str(v[0]), str(v[1]),
                             ms(draw_s[k]) if k in draw_s else "-",
                             "yes" if v[2] else "no", "yes" if v[3] else "no"])
            say(md_table(["diagram", "nodes", "edges", "time", "shapes on nodes",
                          "repeated blocks folded ('x N')"], rows))
            say()

    if args.output:
        Path(args.output).write_text("\n".join(md) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
