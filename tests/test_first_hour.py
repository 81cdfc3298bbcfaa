"""Issue 22, what a new user hits in the first hour: each rough edge, held by a test."""

from __future__ import annotations

import json
import os
import warnings

import pytest

import cnnir
from cnnir.analysis import analyze, layer_count
from cnnir.cli import main
from cnnir.errors import UsageError

# --------------------------------------------------------------------------- noise and traps


def test_external_data_gets_the_mode_of_a_plain_write(tmp_path):
    out = tmp_path / "r.onnx"
    assert main(["compile", "lenet5", "--to", "onnx", "--external-data", "-o", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    want = 0o666 & ~umask
    assert oct(os.stat(out).st_mode & 0o777) == oct(want)
    assert oct(os.stat(str(out) + ".data").st_mode & 0o777) == oct(want)


def test_channels_last_input_is_refused_unless_forced(capsys):
    with pytest.raises(UsageError) as err:
        cnnir.load("resnet50", input="224x224x3")
    assert str(err.value) == (
        "error: --input 224x224x3 gives 224 input channels: resnet50 declares 3 input "
        "channels (3x224x224); did you mean 3x224x224? (--input is CxHxW, channels first)"
        "\n  hint: add --force to use it as given")
    assert main(["check", "lenet5", "--input", "32x32x1"]) == 2
    assert "did you mean 1x32x32?" in capsys.readouterr().err
    g = cnnir.load("resnet18", input="64x64x3", force=True)
    assert g.input_shape == (64, 64, 3)
    assert main(["check", "resnet18", "--input", "64x64x3", "--force"]) == 0
    assert "input 64x64x3" in capsys.readouterr().out


def test_changing_the_declared_channels_is_noted(capsys):
    cnnir.load("lenet5", input="3x32x32")
    assert capsys.readouterr().err == (
        "note: --input 3x32x32 changes the input channels: lenet5 declares 1 input channel "
        "(1x32x32); the first layer's weights change with them\n")
    cnnir.load("lenet5", input="1x64x64")  # the same channels: nothing to say
    assert capsys.readouterr().err == ""


def test_adaptive_pool_on_a_smaller_input_does_not_claim_unequal_bins():
    notes = analyze(cnnir.load("vgg11", input="3x32x32")).notes
    assert notes == ("'adaptpool1': adaptive pooling to an output larger than its input "
                     "(1x1): each bin is one input unit, repeated; the RF is marked "
                     "unaligned",)
    assert not any("unequal" in n for n in notes)


def test_one_definition_of_a_layer(capsys):
    g = cnnir.load("resnet50")
    assert layer_count(g) == len(g) - 1 == analyze(g).layers
    assert main(["check", "resnet50"]) == 0
    assert f": {len(g) - 1} layers," in capsys.readouterr().out
    assert main(["report", "resnet50", "--compare", "remove-dropout", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["before"]["layers"] == len(g) - 1


def test_depth_0_prints_no_empty_table(capsys):
    assert main(["report", "lenet5", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "lenet5: input 1x32x32, batch 1, float32"
    assert "Layer" not in out and "─" not in out
    assert "params: 61.71K trainable (61,706, biases included)" in out


def test_totals_is_an_attribute_and_still_callable():
    a = analyze(cnnir.load("lenet5"))
    assert a.totals["params"] == a.params == 61_706
    assert a.totals() == a.totals


def test_run_check_on_an_onnx_file_warns_nothing(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    out = tmp_path / "l.onnx"
    assert main(["compile", "lenet5", "--to", "onnx", "-o", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["run", str(out), "--check", "--repeat", "1", "--provider", "cpu"]) == 0
    assert "not writable" not in capsys.readouterr().err


# --------------------------------------------------------------------------- reports


def test_every_format_carries_the_same_fields():
    from cnnir.backends.report import COLUMNS

    rep = cnnir.load("resnet18", input=(3, 64, 64)).report()
    data = rep.to_dict()
    cols = [c for c in COLUMNS if c != "rf"]  # rf is rf_size/rf_stride/rf_padding together
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(rep.render("csv", cols))))
    assert len(rows) == len(data["layers"]) + 1 and rows[-1]["name"] == "total"

    def x(v):
        return "x".join(str(e) for e in v)

    json_of = {"name": "name", "op": "op", "attrs": "attrs", "loc": "loc",
               "params": "params", "buffers": "buffers", "macs": "macs", "flops": "flops",
               "other_ops": "other_ops", "activations": "activation_bytes",
               "param_bytes": "param_bytes"}
    assert set(json_of.values()) | {"scope", "output_shape", "rf"} == set(data["layers"][0])
    for row, layer in zip(rows, data["layers"]):
        for col in cols:
            if col in json_of:
                assert row[col] == str(layer[json_of[col]]), (col, layer["name"])
            elif col == "scope":
                assert row[col] == "/".join(layer["scope"])
            elif col == "output":
                assert row[col] == x(layer["output_shape"])
            elif col in ("rf_aligned", "rf_whole"):
                assert row[col] == str(layer["rf"][col[3:]]).lower()
            else:
                assert row[col] == x(layer["rf"][col[3:]]), col
    assert set(data["totals"]) == {"params", "buffers", "macs", "flops", "other_ops",
                                   "param_bytes", "activation_bytes", "peak_activation_bytes"}
    c = cnnir.compare(cnnir.load("lenet5"), "remove-dropout")
    assert set(c.before) - {"layers"} <= set(data["totals"])


@pytest.mark.parametrize("suffix, start", [(".json", "{"), (".csv", "name,op,scope"),
                                           (".md", "**lenet5**"), (".tex", "% needs"),
                                           (".txt", "lenet5: input")])
def test_report_format_from_the_output_suffix(tmp_path, suffix, start):
    out = tmp_path / f"r{suffix}"
    assert main(["report", "lenet5", "-o", str(out)]) == 0
    assert out.read_text().startswith(start)


def test_report_format_contradicting_the_suffix_is_refused(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["report", "lenet5", "--format", "csv", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: --format csv does not match the output file {out} (a .json file holds "
        f"--format json); drop --format to take the format from the suffix\n")
    assert not out.exists()
    assert main(["report", "lenet5", "--format", "json", "-o", str(out)]) == 0


def test_compare_messages(capsys):
    assert main(["report", "lenet5", "--compare", "insert-bottleneck"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no change (see --explain)"
    assert main(["report", "lenet5", "--compare", "fuse-conv-bn-relu"]) == 0
    assert "no change" not in capsys.readouterr().out
    for empty in ("", ","):
        assert main(["report", "lenet5", "--compare", empty]) == 2
        assert capsys.readouterr().err == (
            f"error: --compare needs a pass pipeline, got {empty!r}; e.g. --compare "
            f"fuse-conv-bn-relu (see 'cnnir passes')\n")
    assert main(["check", "lenet5", "--passes", "fuse"]) == 2
    assert "unknown pass 'fuse'; did you mean fuse-conv-bn-relu? valid passes: " in (
        capsys.readouterr().err)


def test_an_unknown_flag_points_at_the_subcommands_help(capsys):
    assert main(["report", "lenet5", "--colour"]) == 2
    assert capsys.readouterr().err == (
        "error: unrecognized arguments: --colour (see 'cnnir report --help')\n")
    assert main(["--colour", "zoo"]) == 2
    assert capsys.readouterr().err == (
        "error: unrecognized arguments: --colour (see 'cnnir zoo --help')\n")


def test_version_imports_nothing_but_the_cli(cli):
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cnnir", "--version"],
                          capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and proc.stdout == f"cnnir {cnnir.__version__}\n"
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert {m for m in loaded if m.startswith("cnnir")} <= {
        "cnnir", "cnnir._version", "cnnir.cli", "cnnir.errors", "cnnir.util"}
    assert not loaded & {"networkx", "numpy", "rich", "torch", "onnx"}


def test_the_table_is_rich_s_layout_without_rich():
    from cnnir.backends import report as R
    from cnnir.backends import tables

    rep = R.build_report(cnnir.load("googlenet"), depth=2)
    for cols in (None, ["name"], list(R.COLUMNS)):
        fast = rep.render("table", cols)
        R.text_table = tables.text_table_rich
        try:
            assert rep.render("table", cols) == fast
        finally:
            R.text_table = tables.text_table


def test_the_table_fits_the_terminal_and_says_what_it_left_out():
    full = str(cnnir.report("resnet50"))
    assert max(map(len, full.splitlines())) > 150
    fitted = str(cnnir.report("resnet50", width=80))
    assert max(map(len, fitted.splitlines())) <= 80
    assert "(to fit 80 columns, not shown: Source, Other ops, FLOPs," in fitted
    header = fitted.splitlines()[2].split()
    assert header == ["Layer", "Op", "Output", "Params", "MACs"]
    assert fitted.count("\n") > 170  # every layer still has its row
    wide = str(cnnir.report("resnet50", width=400))
    assert wide == full
    assert str(cnnir.report("resnet50", width=80, columns="name,loc")) == str(
        cnnir.report("resnet50", columns="name,loc"))  # what was asked for is shown


# --------------------------------------------------------------------------- API and messages


@pytest.mark.parametrize("path", ["nothere.py", "nothere.onnx", "nothere.json", "dir/x.txt"])
def test_a_missing_file_is_its_own_error_class(path):
    with pytest.raises(cnnir.MissingFileError) as err:
        cnnir.load(path)
    assert isinstance(err.value, cnnir.CnnirError) and isinstance(err.value, FileNotFoundError)
    assert str(err.value) == f"error: no such file: {path}" and err.value.filename == path


def test_run_reads_the_file_through_the_checked_loader(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    fake = tmp_path / "fake.onnx"
    fake.write_text("hello\n")
    assert main(["run", str(fake)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{fake}: error: not a readable ONNX model (truncated or another "
                          f"format)")
    assert "INVALID_PROTOBUF" not in err
    assert main(["check", str(fake)]) == 2
    assert capsys.readouterr().err == err


# --------------------------------------------------------------------------- setup


def test_setup_sh_on_an_externally_managed_python_says_what_to_do(tmp_path):
    """A Python whose check says "externally managed" (a stand-in that answers yes):
    one line naming the virtualenv, exit 2, before pip is ever called."""
    import subprocess

    from tests.conftest import ROOT

    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PIP_BREAK_SYSTEM_PACKAGES"}
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    r = subprocess.run(["bash", str(ROOT / "setup.sh")], capture_output=True, text=True,
                       env=env, timeout=60)
    if "apt-get" in r.stderr or "Graphviz" in r.stderr:
        pytest.skip("no Graphviz here: setup.sh would install it first")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("setup.sh: this Python is externally managed (PEP 668); make a "
                        "virtualenv first: python3 -m venv .venv && . .venv/bin/activate "
                        "&& ./setup.sh\n")
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv .venv" in readme.split("## Install", 1)[0]


def test_latex_is_a_fragment_unless_standalone(capsys):
    assert main(["report", "lenet5", "--format", "latex"]) == 0
    frag = capsys.readouterr().out
    assert frag.startswith("% needs \\usepackage{booktabs,longtable}\n{\\small\n")
    assert "\\documentclass" not in frag and "\\begin{document}" not in frag
    assert "\\caption{lenet5: input 1$\\times$32$\\times$32, batch 1, float32}" in frag
    assert main(["report", "lenet5", "--format", "latex", "--standalone"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith("\\documentclass{article}\n") and doc.endswith("\\end{document}\n")
    assert main(["report", "lenet5", "--compare", "remove-dropout", "--format", "latex"]) == 0
    assert capsys.readouterr().out.startswith("% needs \\usepackage{booktabs}\n\\begin{table}")


def test_compare_models_side_by_side(tmp_path, capsys):
    assert main(["compare", "resnet18", "lenet5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "resnet18 vs lenet5: batch 1, float32"
    rows: dict[str, list[str]] = {}
    for line in lines[3:]:  # the first row of a name: the per-stage rows come later
        rows.setdefault(line.split()[0], line.split()[1:])
    assert rows["input"] == ["3x224x224", "1x32x32"]
    assert rows["layers"] == [str(len(cnnir.load("resnet18")) - 1), "12"]
    assert rows["params"] == ["11.69M", "61.71K"] and rows["MACs"] == ["1.81G", "416.52K"]
    out = tmp_path / "c.json"
    assert main(["compare", "resnet18", "lenet5", "resnet18", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [m["name"] for m in data["models"]] == ["resnet18", "lenet5", "resnet18"]
    lenet = data["models"][1]
    assert (lenet["params"], lenet["macs"], lenet["layers"]) == (61_706, 416_520, 12)
    assert set(lenet) == {"name", "input", "layers", "params", "buffers", "macs",
                          "other_ops", "param_bytes", "activation_bytes",
                          "peak_activation_bytes", "rf", "stages", "outside_stages"}
    for fmt in ("csv", "md", "latex"):
        assert main(["compare", "resnet18", "lenet5", "--format", fmt]) == 0
        assert "61.71K" in capsys.readouterr().out or fmt == "csv"
    assert main(["compare", "lenet5"]) == 2
    assert capsys.readouterr().err == "error: compare needs two models or more, got 1\n"
    assert main(["report", "resnet50", "--compare", "resnet18"]) == 2
    assert capsys.readouterr().err == (
        "error: --compare takes a pass pipeline, and 'resnet18' is a model; to compare "
        "models: cnnir compare resnet50 resnet18\n")
