"""The ``cnnir`` command: version, help, zoo and passes listings, check, usage errors, and
the light import path of ``cnnir report``."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

import cnnir
from cnnir import zoo
from cnnir.cli import COMMANDS, main
from cnnir.passes import available

ROOT = pathlib.Path(__file__).resolve().parents[1]
LENET_LAYERS = 12  # c1, tanh, s2, c3, tanh, s4, flatten, f5, tanh, f6, tanh, output (not input)


def test_version(cli):
    proc = cli("--version")
    assert (proc.returncode, proc.stdout) == (0, f"cnnir {cnnir.__version__}\n")


def test_help_lists_every_command(cli):
    proc = cli("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for command in ("check", "report", "compile", "draw", "run", "zoo", "passes"):
        assert f"\n    {command} " in proc.stdout
    assert "cnnir report resnet50" in proc.stdout


def test_no_command_prints_help_and_exits_2(cli):
    proc = cli()
    assert proc.returncode == 2 and proc.stdout.startswith("usage: cnnir")


@pytest.mark.parametrize("command", ["check", "report", "compile", "draw", "run"])
def test_subcommand_help(cli, command):
    proc = cli(command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: cnnir {command}")
    assert "MODEL" in proc.stdout


def test_zoo_lists_every_model_with_input_params_macs_and_description(cli):
    from cnnir.util import human
    from cnnir.zoo.catalog import figures

    proc = cli("zoo")
    assert proc.returncode == 0
    header, *lines = proc.stdout.splitlines()
    assert header.split() == ["name", "input", "params", "MACs", "description"]
    assert [line.split()[0] for line in lines] == sorted(zoo.MODELS)
    row = next(line for line in lines if line.startswith("googlenet "))
    e, f = zoo.entry("googlenet"), figures("googlenet")
    name, size, params, macs, text = row.split(None, 4)
    assert (name, size, params, macs) == ("googlenet", "3x224x224", human(f.params),
                                          human(f.macs))
    assert text == f"{e.summary} ({e.paper.short})"
    proc = cli("zoo", "--format", "json")
    data = json.loads(proc.stdout)
    assert [d["name"] for d in data] == sorted(zoo.MODELS)
    resnet50 = next(d for d in data if d["name"] == "resnet50")
    assert resnet50 == {"name": "resnet50", "input": [3, 224, 224], "params": 25_557_032,
                        "macs": 4_089_184_256, "summary": zoo.entry("resnet50").summary,
                        "paper": "He et al. 2015"}


def test_passes_lists_every_pass_with_kind_and_options(cli):
    proc = cli("passes")
    assert proc.returncode == 0
    head, listing = proc.stdout.split("\n\n", 1)  # the pipeline syntax first
    assert head == ("PIPELINE: passes joined by commas, options in braces: "
                    "name{key=value,key=value}, e.g. fuse-conv-bn-relu,insert-bottleneck{ratio=4}")
    rows = [line.split() for line in listing.splitlines() if not line.startswith(" ")]
    assert [r[0] for r in rows] == list(available())
    assert all(r[1] in ("analysis", "transform") for r in rows)
    assert "options: strict=True" in proc.stdout


def test_check_prints_one_ok_line(cli):
    proc = cli("check", "lenet5")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"ok: lenet5: {LENET_LAYERS} layers, input 1x32x32, output 10\n"


def test_check_with_input_override_and_print(cli):
    proc = cli("check", "resnet18", "--input", "3x64x64", "--print")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0] == "graph resnet18 {"
    conv1 = next(line for line in lines if line.startswith("  %stem/conv1 = "))
    assert conv1.startswith("  %stem/conv1 = conv2d[k=7x7,s=2,p=3,nobias](%input) : 64x32x32  "
                            "# resnet.py:")
    assert lines[-1].startswith("ok: resnet18: ") and lines[-1].endswith(
        "input 3x64x64, output 1000")


def test_check_a_dsl_file_with_two_outputs(cli, tmp_path):
    (tmp_path / "heads.py").write_text(textwrap.dedent("""\
        from cnnir.dsl import model

        @model(input=(3, 16, 16))
        def heads(x):
            x = x.conv(8, 3, padding=1).relu().global_avgpool().flatten()
            return x.linear(10), x.linear(5)
    """))
    proc = cli("check", "heads.py", cwd=tmp_path)
    # input, conv, relu, gap, flatten and two linear heads
    assert proc.stdout == "ok: heads: 6 layers, input 3x16x16, output 10, 5\n"


def test_print_after_all_and_explain_go_to_stderr(cli):
    proc = cli("check", "alexnet", "--passes", "remove-dropout,count-params",
               "--print-after-all", "--explain")
    assert proc.returncode == 0
    assert proc.stdout.startswith("ok: alexnet: ")
    headers = [line for line in proc.stderr.splitlines() if line.startswith("// IR after")]
    assert headers == ["// IR after remove-dropout", "// IR after count-params"]
    assert "dropout(" not in proc.stderr.split("// IR after count-params")[1]
    assert "[remove-dropout] changed (" in proc.stderr
    assert "[count-params] no change (" in proc.stderr


@pytest.mark.parametrize("name,suggestions", [
    ("resnet51", "did you mean resnet50, resnet18, resnet152? "),
    ("googlnet", "did you mean googlenet, googlenet_aux? "),
    ("transformer", ""),
])
def test_unknown_zoo_name_suggests_close_names(cli, name, suggestions):
    proc = cli("report", name)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: '{name}' is neither a file nor a zoo model; {suggestions}"
                           f"'cnnir zoo' lists the {len(zoo.MODELS)} zoo models\n")


@pytest.mark.parametrize("value,message", [
    ("3x224", "--input must be CxHxW such as 3x224x224 (or F for a flat input), without the "
     "batch size, got '3x224'"),
    ("1x3x224x224", "--input must be CxHxW such as 3x224x224 (or F for a flat input), without "
     "the batch size, got '1x3x224x224'"),
    ("3xbigx224", "--input must look like 3x224x224, got '3xbigx224'"),
    ("3x0x224", "--input needs positive sizes such as 3x224x224, got '3x0x224'"),
    ("", "--input must look like 3x224x224, got ''"),
])
def test_bad_input_flag(cli, value, message):
    proc = cli("check", "alexnet", "--input", value)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"error: {message}\n")


def test_input_too_small_for_the_network_names_the_layer(cli):
    proc = cli("check", "alexnet", "--input", "3x32x32")
    assert proc.returncode == 2
    assert proc.stderr.startswith("cnnir/zoo/alexnet.py:")
    assert ": error: maxpool2d 'maxpool3': kernel 3 is larger than the padded input 1 along " \
           "height" in proc.stderr


def test_usage_errors(cli):
    proc = cli("analyse", "resnet50")
    assert proc.returncode == 2 and proc.stderr.startswith("error: argument COMMAND: invalid "
                                                           "choice: 'analyse'")
    proc = cli("check")
    assert proc.returncode == 2
    assert proc.stderr == ("error: the following arguments are required: MODEL "
                           "(see 'cnnir check --help')\n")


def test_a_closed_pipe_is_not_an_error():
    proc = subprocess.run(f"{sys.executable} -m cnnir zoo | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("name ") and proc.stderr == ""


def test_a_cnnir_bug_is_not_swallowed(monkeypatch):
    def broken(args):
        raise RuntimeError("internal")

    monkeypatch.setitem(COMMANDS, "zoo", broken)
    with pytest.raises(RuntimeError, match="internal"):
        main(["zoo"])


def test_in_process_main_returns_exit_codes(capsys):
    assert main(["check", "lenet5"]) == 0
    assert capsys.readouterr().out.startswith("ok: lenet5")
    assert main(["check", "no-such-model"]) == 2
    assert capsys.readouterr().err.startswith("error: 'no-such-model' is neither a file")


LIGHT = """
import json, sys
from cnnir.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "onnx", "onnxruntime", "graphviz") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [
    ("report", "examples/googlenet.py"),
    ("report", "resnet50", "--format", "json"),
    ("check", "examples/googlenet.py"),
    ("check", "tests/dsl_bad/kernel_too_large.py"),
])
def test_report_and_check_import_no_heavy_library(argv):
    proc = subprocess.run([sys.executable, "-c", LIGHT, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    result = json.loads(proc.stderr.splitlines()[-1])
    assert result["heavy"] == []
    assert result["rc"] == (2 if "dsl_bad" in argv[1] else 0)
