"""PyTorch import through torch.fx: the same report as the network written in the DSL,
outputs equal to the original module's, names / scopes / lines, ``file.py:ClassName`` on
the command line, and clear errors for what cannot be traced or mapped."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_nets as T
from torch import nn

import cnnir
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.pytorch import to_module
from cnnir.cli import main
from cnnir.dsl import block, model, scope
from cnnir.errors import FrontendError

HERE = pathlib.Path(__file__).resolve().parent
NETS = HERE / "torch_nets.py"


def run_ir(graph: cnnir.Graph, x: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = to_module(graph, weights=graph.weights).eval()
    with torch.no_grad():
        return module(x).numpy()


def same_outputs(module: nn.Module, shape: tuple[int, ...], seed: int = 0) -> cnnir.Graph:
    """Import ``module``; the IR's PyTorch module computes what the original computes."""
    g = cnnir.from_torch(module, input=shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = module.eval()(x).numpy()
    out = run_ir(g, x)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(ref).max()))
    return g


def line_of(path: pathlib.Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


# --------------------------------------------------------------------------- DSL twin


@block
def basic(x, planes, stride=1, downsample=False):
    y = x.conv(planes, 3, stride=stride, padding=1, bias=False).bn().relu()
    y = y.conv(planes, 3, padding=1, bias=False).bn()
    if downsample:
        x = x.conv(planes, 1, stride=stride, bias=False).bn()
    return (y + x).relu()


@model(input=(3, 32, 32))
def tiny_resnet(x):
    x = x.conv(16, 3, padding=1, bias=False).bn().relu()
    with scope("layer1"):
        x = basic(x, 16)
    with scope("layer2"):
        x = basic(x, 32, 2, downsample=True)
    return x.global_avgpool().flatten().linear(10)


def layer_table(g: cnnir.Graph) -> list[tuple]:
    """Per layer: op (with every attribute), output shape, params, MACs; order-free."""
    return sorted((repr(g.op(n)), tuple(g.shape(n)), g.meta(n)["params"]["params"],
                   g.meta(n)["cost"]["macs"]) for n in g.nodes())


def test_same_report_as_the_dsl_network():
    g = cnnir.from_torch(T.TinyResNet())
    d = cnnir.infer_shapes(tiny_resnet.build())
    a, b = analyze(g), analyze(d)
    assert a.totals() == b.totals()
    assert a.params == T.tiny_resnet_params(folded=False)
    assert a.macs == T.TINY_RESNET_MACS
    assert layer_table(g) == layer_table(d)
    # input, stem 3, block 7, block with projection 9, pool, flatten, fc
    assert len(g) == len(d) == 23


def test_same_report_on_the_command_line(tmp_path, capsys):
    dsl_file = tmp_path / "tiny_dsl.py"
    dsl_file.write_text(
        "from cnnir.dsl import model, scope\n"
        "from test_torch_import import basic\n\n\n"
        "@model(input=(3, 32, 32))\n"
        "def tiny(x):\n"
        "    x = x.conv(16, 3, padding=1, bias=False).bn().relu()\n"
        "    with scope('layer1'):\n"
        "        x = basic(x, 16)\n"
        "    with scope('layer2'):\n"
        "        x = basic(x, 32, 2, downsample=True)\n"
        "    return x.global_avgpool().flatten().linear(10)\n")

    def report(spec: str) -> dict:
        assert main(["report", spec, "--format", "json"]) == 0
        return json.loads(capsys.readouterr().out)

    a, b = report(f"{NETS}:TinyResNet"), report(str(dsl_file))
    assert a["totals"] == b["totals"]
    assert a["input"] == b["input"] == [3, 32, 32]

    def rows(rep: dict) -> list:
        return sorted((r["op"], r["output_shape"], r["params"]) for r in rep["layers"])

    assert rows(a) == rows(b)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("cls", [T.TinyResNet, T.InceptionNet, T.TinyMobileNet, T.SENet])
def test_outputs_and_params_match_the_module(cls):
    module = T.randomize(cls())
    g = same_outputs(module, cls.input_shape)
    assert analyze(g).params == sum(p.numel() for p in module.parameters())
    assert "batchnorm2d" in [g.op(n).kind for n in g.nodes()] or cls is T.InceptionNet


class Calls(nn.Module):
    """Every functional call of the docstring, each once, with exact shapes."""

    input_shape = (4, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding="same")
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.lrn = nn.LocalResponseNorm(3)
        self.acts = nn.Sequential(nn.SiLU(), nn.Tanh(), nn.Hardsigmoid(), nn.LeakyReLU(0.1),
                                  nn.Identity(), nn.Hardtanh(0.0, 6.0))
        self.bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.pool = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.fc = nn.Linear(20 * 4 * 4, 6)
        self.soft = nn.Softmax(dim=1)

    def forward(self, x):
        y = F.relu(self.conv(x), inplace=True)                     # 8x8x8
        a = F.max_pool2d(y, 2, 2)                                  # 8x4x4
        b = F.interpolate(a, scale_factor=2, mode="nearest")       # 8x8x8
        z = torch.cat([y, b * torch.sigmoid(y)], dim=1)            # 16x8x8
        z = F.leaky_relu(z, 0.2) + F.hardswish(z)
        u = self.lrn(self.up(y))                                   # 4x16x16
        u = self.pool(self.acts(u)).clamp(0, 6)                    # 4x8x8
        v = F.avg_pool2d(u, 2)                                     # 4x4x4
        w = self.bilinear(F.adaptive_avg_pool2d(z, 2))             # 16x4x4
        s = F.dropout(w.mean((2, 3), keepdim=True), 0.3, training=self.training)
        w = torch.add(F.relu6(w), torch.tanh(w * s))
        q = torch.cat([v, w.contiguous()], 1)                      # 20x4x4
        q = q.view(q.size(0), -1)
        return self.soft(self.fc(q))


def test_functional_calls_and_layers_match_the_module():
    g = same_outputs(T.randomize(Calls()), Calls.input_shape)
    got = [g.op(n).kind for n in g.nodes()]
    for kind in ("conv_transpose2d", "lrn", "silu", "tanh", "hardsigmoid", "leaky_relu",
                 "relu6", "upsample", "avgpool2d", "adaptive_avgpool2d", "global_avgpool",
                 "dropout", "concat", "mul", "add", "flatten", "softmax", "maxpool2d"):
        assert kind in got, kind
    assert g.op("conv").padding == (1, 1, 1, 1)
    assert g.op("bilinear") == O.Upsample(2, "bilinear", True)
    assert g.shape("fc") == (6,)


# --------------------------------------------------------------------------- names, lines


def test_names_scopes_blocks_and_lines():
    g = cnnir.from_torch(T.TinyResNet())
    assert {"layer1/0/conv1", "layer1/0/bn1", "layer1/0/relu", "layer1/0/relu_2",
            "layer1/0/add", "layer2/0/downsample/0", "layer2/0/downsample/1", "fc"} <= set(g)
    assert g.scope("layer2/0/downsample/0") == ("layer2", "0", "downsample")
    assert g.blocks[("layer1", "0")].kind == "BasicBlock"
    assert g.blocks[("layer2", "0", "downsample")].kind == "Sequential"
    forward = line_of(NETS, "def forward(self, x):\n".strip())
    assert g.blocks[("layer1", "0")].loc == cnnir.SourceLoc(os.path.relpath(NETS), forward)
    add_line = line_of(NETS, "return self.relu(y + identity)")
    assert g.loc("layer1/0/add") == cnnir.SourceLoc(os.path.relpath(NETS), add_line)
    conv_line = line_of(NETS, "y = self.relu(self.bn1(self.conv1(x)))")
    assert g.loc("layer1/0/conv1").line == conv_line
    assert g.name == "TinyResNet"
    assert g.weights["layer1/0/bn1"]["running_var"].shape == (16,)


def test_identical_blocks_of_a_sequential_are_one_repeated_group():
    class Stage(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Sequential(T.BasicBlock(8, 16, 2), *[T.BasicBlock(16, 16)
                                                                 for _ in range(3)])
            self.other = nn.Sequential(T.BasicBlock(16, 16), T.BasicBlock(16, 32, 2))

        def forward(self, x):
            return self.other(self.layer(x))

    g = cnnir.from_torch(Stage(), input=(8, 16, 16))
    assert g.blocks[("layer", "0")].repeat is None  # it downsamples: not like the others
    assert [g.blocks[("layer", str(i))].repeat for i in (1, 2, 3)] == [(0, 0, 3), (0, 1, 3),
                                                                      (0, 2, 3)]
    assert g.blocks[("other", "0")].repeat is None and g.blocks[("other", "1")].repeat is None


def test_class_or_instance_and_the_input_size():
    g = cnnir.from_torch(T.SENet)  # a class builds without arguments; input_shape attribute
    assert g.input_shape == (3, 16, 16)
    g = cnnir.from_torch(T.SENet(), input=(3, 40, 24))
    assert g.shape("conv") == (16, 40, 24)

    class NoSize(nn.Module):
        def forward(self, x):
            return x.relu()

    with pytest.raises(FrontendError, match="NoSize: the input size is unknown; give it with "
                                            "--input CxHxW"):
        cnnir.from_torch(NoSize())

    class NeedsArgs(nn.Module):
        def __init__(self, width):
            super().__init__()

    with pytest.raises(FrontendError, match=r"cannot build NeedsArgs\(\) without arguments"):
        cnnir.from_torch(NeedsArgs, input=(3, 8, 8))


def test_optional_forward_arguments_keep_their_defaults():
    class Opt(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x, scale=None, act=True):
            y = self.conv(x) if scale is None else self.conv(x) * scale
            return y.relu() if act else y

    g = same_outputs(Opt(), (3, 8, 8))
    assert [g.op(n).kind for n in g.nodes()] == ["input", "conv2d", "relu"]


def test_module_mode_is_restored():
    module = T.SENet().train()
    cnnir.from_torch(module)
    assert module.training


# --------------------------------------------------------------------------- errors


BAD = '''\
import torch
from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:
            return y
        return -y


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(1, 3)
        self.gn2 = nn.GroupNorm(3, 3)
        self.pr = nn.PReLU()

    def forward(self, x):
        return self.pr(self.gn2(self.gn(x)))


class Minus(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        return y ** 2
'''


@pytest.mark.parametrize("cls, line, message", [
    ("Branchy", "if y.sum() > 0:",
     "error: torch.fx cannot trace Branchy: TraceError: symbolically traced variables cannot "
     "be used as inputs to control flow"),
    ("Odd", "return self.pr(self.gn2(self.gn(x)))",  # named at its forward
     "error: cannot import Odd: unsupported layer types GroupNorm ('gn', 'gn2'); PReLU ('pr')"),
    ("Minus", "return y ** 2", "error: operator.pow(): has no IR op"),
])
def test_errors_name_the_users_line(tmp_path, monkeypatch, capsys, cls, line, message):
    path = tmp_path / "bad_net.py"
    path.write_text(BAD)
    monkeypatch.chdir(tmp_path)
    assert main(["report", f"{path.name}:{cls}", "--input", "3x8x8"]) == 2
    want = line_of(path, line) - (1 if cls == "Odd" else 0)
    err = capsys.readouterr().err
    assert err.startswith(f"bad_net.py:{want}: {message}")
    assert len(err.strip().splitlines()) == (2 if cls == "Branchy" else 1)  # + the hint


def test_untraceable_model_on_the_command_line(cli, tmp_path):
    """A fresh process: exit code 2, the located message and its hint, no traceback."""
    (tmp_path / "bad_net.py").write_text(BAD)
    r = cli("report", "bad_net.py:Branchy", "--input", "3x8x8", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    line = line_of(tmp_path / "bad_net.py", "if y.sum() > 0:")
    assert r.stderr.startswith(f"bad_net.py:{line}: error: torch.fx cannot trace Branchy")
    assert "hint: torch.fx traces without values" in r.stderr
    assert "Traceback" not in r.stderr


def test_unflatten_view_is_a_clear_error():
    with pytest.raises(FrontendError) as err:
        cnnir.from_torch(T.LinearSE())
    e = err.value
    assert e.loc.line == line_of(NETS, "return y * s.view(y.size(0), 8, 1, 1)")
    assert "reshape of N x 8 to ['N', 8, 1, 1]" in e.msg


def test_several_modules_in_a_file_need_a_name(capsys):
    assert main(["check", str(NETS)]) == 2
    err = capsys.readouterr().err
    assert "defines several nn.Modules" in err and "pick one with" in err


def test_dsl_files_and_cnnir_stay_torch_free():
    code = ("import sys, cnnir; cnnir.from_torch; cnnir.load('cifar_small'); "
            "cnnir.load('examples/googlenet.py'); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=HERE.parents[1], timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(HERE.parents[1])))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_importing_the_torch_frontend_imports_no_torch():
    code = ("import sys, cnnir.frontends.torch_import, cnnir.frontends.torch_rules; "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=HERE.parents[1], timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(HERE.parents[1])))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_import_rules_say_what_they_produce_for_every_op_kind():
    from cnnir.frontends.torch_rules import TORCH_IMPORT, function_key, module_key

    assert TORCH_IMPORT.reads and TORCH_IMPORT.produced() == set(O.OP_TYPES.values())
    assert module_key(nn.Conv2d) == "nn.Conv2d" and module_key(T.BasicBlock) is None
    assert function_key(F.relu) == "F.relu" and function_key(torch.cat) == "torch.cat"
    # every torch name a rule is keyed on resolves to that rule through the driver's lookup
    for key in TORCH_IMPORT.keys():
        space, _, name = key.partition(".")
        if space == "nn":
            assert module_key(getattr(nn, name)) == key
        elif space in ("F", "torch"):
            obj = getattr({"F": F, "torch": torch}[space], name, None)
            if obj is not None:
                assert TORCH_IMPORT.get(function_key(obj)) is TORCH_IMPORT.get(key), key
