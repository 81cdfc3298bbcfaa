"""Packaging: a light core with torch and onnxruntime as extras (no upper bounds, never
both onnxruntime builds), the one-line "install this extra" errors, the README's
fresh-machine commands as CI runs them, and the wheel installed into a fresh
virtualenv without extras (``.ci/check_install.sh``)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from cnnir.errors import UsageError
from cnnir.extras import EXTRAS, MissingExtra, missing, require

ROOT = pathlib.Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = {"networkx", "numpy", "rich", "graphviz", "onnx"}
TORCH_MSG = "error: the PyTorch backend needs torch, which is not installed: pip install 'cnnir[torch]'"
ORT_MSG = ("error: cnnir run needs onnxruntime, which is not installed: pip install 'cnnir[run]' "
           "(CPU) or 'cnnir[gpu]' (CUDA), not both")


def _name(req: str) -> str:
    m = re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", req)
    assert m, req
    return m.group(0)


def _expand(extra: str) -> set[str]:
    """The distributions an extra installs, with ``cnnir[a,b]`` references followed."""
    out: set[str] = set()
    for req in PYPROJECT["optional-dependencies"][extra]:
        m = re.fullmatch(r"cnnir\[([^\]]+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _expand(sub.strip())
        else:
            out.add(_name(req))
    return out


# --------------------------------------------------------------------------- metadata


def test_the_core_is_the_five_light_libraries():
    assert {_name(r) for r in PYPROJECT["dependencies"]} == CORE


def test_no_requirement_is_bounded_from_above():
    reqs = PYPROJECT["dependencies"] + [
        r for rs in PYPROJECT["optional-dependencies"].values() for r in rs]
    for req in reqs:
        spec = req[len(_name(req)):]
        assert not re.search(r"<|==|~=", spec), f"{req}: an upper bound or a pin"


def test_the_extras():
    extras = PYPROJECT["optional-dependencies"]
    assert set(extras) == {"torch", "run", "gpu", "all", "dev", "sweep"}
    assert _expand("sweep") == {"dask[distributed]", "matplotlib"} <= _expand("dev")
    assert extras["torch"] == ["torch>=2.2"]
    assert _expand("run") == {"onnxruntime"} and _expand("gpu") == {"onnxruntime-gpu"}
    assert _expand("all") == {"torch", "onnxruntime"}  # one onnxruntime, never both
    assert not _expand("dev") & {"torch", "onnxruntime", "onnxruntime-gpu"}
    assert "build" in _expand("dev")  # .ci/check_install.sh runs `python -m build`
    assert {EXTRAS[m][0] for m in EXTRAS} <= set(extras)


# --------------------------------------------------------------------------- require


def test_require_returns_the_module():
    import json

    assert require("json") is json


def test_require_names_the_extra_of_a_missing_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(MissingExtra) as err:
        require("onnxruntime", "cnnir run")
    assert str(err.value) == ORT_MSG
    assert isinstance(err.value, UsageError) and err.value.extra == "run"
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_missing_knows_only_the_extras():
    err = missing(ModuleNotFoundError("No module named 'torch'", name="torch.fx"), "X")
    assert isinstance(err, MissingExtra) and err.extra == "torch"
    assert str(err) == "error: X needs torch, which is not installed: pip install 'cnnir[torch]'"
    assert missing(ModuleNotFoundError("x", name="sympy")) is None
    assert missing(ModuleNotFoundError("x")) is None


def test_a_module_missing_inside_an_installed_extra_is_not_hidden():
    with pytest.raises(ModuleNotFoundError) as err:
        require("cnnir_no_such_module")
    assert not isinstance(err.value, MissingExtra)


# --------------------------------------------------------------------------- the CLI without extras

BLOCK = ("import sys; sys.modules.update(torch=None, onnxruntime=None); "
         "sys.argv[0] = 'cnnir'; from cnnir.cli import entry; entry()")


def without_extras(*argv: str, cwd: os.PathLike[str] | str) -> subprocess.CompletedProcess[str]:
    """``cnnir ARGV`` in a process where ``import torch`` / ``import onnxruntime`` fail."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
    return subprocess.run([sys.executable, "-c", BLOCK, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, message", [
    (("compile", "lenet5", "--to", "torch", "-o", "l.py"), TORCH_MSG),
    (("run", "lenet5", "--repeat", "1"), ORT_MSG),
    (("run", "lenet5", "--check", "--repeat", "1"), ORT_MSG),
])
def test_a_command_needing_a_missing_extra_says_which_in_one_line(tmp_path, argv, message):
    r = without_extras(*argv, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", message + "\n")
    assert list(tmp_path.iterdir()) == []


def test_the_core_commands_need_no_extra(tmp_path):
    r = without_extras("compile", str(ROOT / "examples" / "googlenet.py"), "--to", "onnx",
                       "-o", "g.onnx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = without_extras("report", "g.onnx", "--format", "json", cwd=tmp_path)  # ONNX import
    assert r.returncode == 0, r.stderr
    assert '"params": 6998552' in r.stdout and '"macs": 1582671872' in r.stdout
    for argv in (("check", "resnet50"), ("draw", "resnet50", "-o", "r.dot"),
                 ("compile", "lenet5", "--to", "json", "-o", "l.json")):
        r = without_extras(*argv, cwd=tmp_path)
        assert r.returncode == 0, (argv, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx", "l.json", "r.dot"]


def test_the_api_names_the_extra_too(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import cnnir\n"
            "try:\n"
            "    cnnir.load('lenet5').compile(to='module')\n"
            "except cnnir.UsageError as e:\n"
            "    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (r.returncode, r.stdout, r.stderr) == (0, TORCH_MSG + "\n", "")


def test_the_cli_names_an_extra_an_unguarded_import_lacks(monkeypatch, capsys):
    """The CLI's fallback for an import site that does not go through ``require``."""
    from cnnir import cli

    def needs(module: str):
        def cmd(args):
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
        return cmd

    monkeypatch.setitem(cli.COMMANDS, "zoo", needs("onnxruntime"))
    assert cli.main(["zoo"]) == 2
    assert capsys.readouterr().err == ORT_MSG.replace("cnnir run", "this") + "\n"
    monkeypatch.setitem(cli.COMMANDS, "zoo", needs("sympy"))  # not an extra: a bug, exit 1
    with pytest.raises(ModuleNotFoundError):
        cli.main(["zoo"])


# --------------------------------------------------------------------------- fresh machine, wheel


def _bash_blocks(section: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    install_and_run, install_and_test = _bash_blocks(quick)
    assert install_and_run.startswith("./setup.sh && cnnir ")
    assert install_and_test == "./setup.sh --dev && python3 -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci, ".ci/run must run the README's test command verbatim"
    assert os.access(ROOT / "setup.sh", os.X_OK) and os.access(ROOT / ".ci" / "run", os.X_OK)


def test_the_wheel_installs_without_extras_and_runs():
    """``.ci/check_install.sh``: sdist and wheel by ``python -m build``, the wheel in a
    fresh virtualenv with the core only, the core commands there (about 20-40 s)."""
    r = subprocess.run(["bash", str(ROOT / ".ci" / "check_install.sh")], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("check_install: ok")
