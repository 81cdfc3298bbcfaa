"""The Python API (cnnir.api and the Graph methods): each call gives what its CLI
command gives, checked against the CLI's own output or the backend it wraps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest

import cnnir
from cnnir.backends.dot import to_dot
from cnnir.backends.onnx_export import to_onnx
from cnnir.backends.pytorch_source import to_source
from cnnir.cli import main
from cnnir.frontends.json_io import load_json, to_json


@pytest.fixture(scope="module")
def lenet():
    return cnnir.load("lenet5")


def cli_stdout(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_everything_is_exported():
    for name in ("load", "analyze", "report", "compile", "draw", "run", "Diagram", "RunResult"):
        assert name in cnnir.__all__ and hasattr(cnnir, name), name


def test_analyze_is_the_analysis_totals(lenet):
    a = lenet.analyze()
    assert (a.params, a.macs, a.flops) == (61706, 416520, 2 * 416520)
    assert cnnir.analyze("lenet5", batch=4).macs == 4 * 416520


@pytest.mark.parametrize("fmt", ["table", "csv", "md", "latex"])
def test_report_text_equals_the_cli(lenet, capsys, fmt):
    assert str(lenet.report(format=fmt, depth=1)) == cli_stdout(
        capsys, "report", "lenet5", "--format", fmt, "--depth", "1")


def test_report_json_and_columns_equal_the_cli(capsys):
    g = cnnir.load("resnet18")
    r = g.report(format="json", dtype="float16", batch=2)
    assert r.to_dict() == json.loads(cli_stdout(
        capsys, "report", "resnet18", "--format", "json", "--dtype", "float16", "--batch", "2"))
    assert r.to_dict()["totals"]["params"] == 11689512
    cols = g.report(format="csv", columns=["name", "macs"])
    assert str(cols) == cli_stdout(capsys, "report", "resnet18", "--format", "csv",
                                   "--columns", "name,macs")
    # one report, rendered again in another format with the same columns
    assert cols.render("md").splitlines()[2] == "| Layer | MACs |"


def test_report_html_for_notebooks(lenet):
    html = lenet.report()._repr_html_()
    root = ET.fromstring(f"<div>{html}</div>")  # well-formed
    rows = root.find("table").find("tbody").findall("tr")
    assert len(rows) == len(lenet) + 1  # every layer and the totals
    assert [td.text for td in rows[1].findall("td")][:2] == ["c1", "conv2d"]
    assert rows[-1].findall("td")[0].find("b").text == "total"
    assert "61.71K" in html and "416.52K" in html


def test_report_rejects_a_bad_format(lenet):
    with pytest.raises(cnnir.UsageError, match="unknown report format 'xml'"):
        lenet.report(format="xml")
    with pytest.raises(cnnir.UsageError, match="unknown column"):
        lenet.report(columns="name,nope")


def test_passes_is_run_pipeline():
    g = cnnir.load("resnet18")
    fused = g.passes("fuse-conv-bn-relu")
    assert fused.format() == cnnir.run_pipeline(g, "fuse-conv-bn-relu").format()
    assert not any(fused.op(n).kind == "batchnorm2d" for n in fused.nodes())
    assert any(g.op(n).kind == "batchnorm2d" for n in g.nodes())  # left alone


def test_compile_onnx_returns_and_writes_the_model(lenet, tmp_path):
    out = tmp_path / "l.onnx"
    proto = cnnir.compile(lenet, to="onnx", output=str(out), seed=3)
    assert proto.SerializeToString() == to_onnx(lenet, seed=3).SerializeToString()
    assert out.read_bytes() == proto.SerializeToString()
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    fixed = lenet.compile(to="onnx", batch=4)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_compile_torch_source_and_module_agree(lenet, tmp_path):
    import torch

    text = lenet.compile(to="torch", output=str(tmp_path / "l.py"), seed=1)
    assert text == to_source(lenet, seed=1) == (tmp_path / "l.py").read_text()
    module = cnnir.compile(lenet, to="module", seed=1).eval()
    proto = cnnir.compile(lenet, to="onnx", weights=module)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y_torch = module(torch.from_numpy(x)).numpy()
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {"input": x})[0]
    assert np.abs(y_torch - y_ort).max() <= 1e-5 * max(1.0, np.abs(y_torch).max())


def test_compile_json_round_trips(lenet, tmp_path):
    text = cnnir.compile(lenet, to="json", output=str(tmp_path / "l.json"))
    assert text == to_json(lenet)
    again = cnnir.infer_shapes(load_json(str(tmp_path / "l.json")))
    assert again.format() == lenet.format()


def test_compile_with_passes_and_a_state_dict_file(tmp_path):
    import torch

    g = cnnir.load("resnet18", input=(3, 64, 64))
    module = cnnir.compile(g, to="module", seed=2)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    a = cnnir.compile(g, to="onnx", weights=str(tmp_path / "w.pt"))
    b = cnnir.compile(g, to="onnx", weights=module)
    assert a.SerializeToString() == b.SerializeToString()
    fused = cnnir.compile(g, to="onnx", passes="fuse-conv-bn-relu")
    assert "BatchNormalization" not in {n.op_type for n in fused.graph.node}


def test_compile_refuses_what_does_not_apply(lenet, tmp_path):
    with pytest.raises(cnnir.UsageError, match="unknown target 'tflite'"):
        lenet.compile(to="tflite")
    with pytest.raises(cnnir.UsageError, match="returns an object"):
        lenet.compile(to="module", output=str(tmp_path / "m.pt"))
    with pytest.raises(cnnir.UsageError, match="apply to to='onnx' only"):
        lenet.compile(to="torch", batch=2)
    with pytest.raises(cnnir.UsageError, match="does not exist"):
        lenet.compile(to="onnx", output=str(tmp_path / "no" / "l.onnx"))
    assert list(tmp_path.iterdir()) == []


def test_draw_returns_the_dot_and_writes_images(tmp_path):
    g = cnnir.load("resnet50")
    d = g.draw(level="block", detail="compact")
    assert d.dot == to_dot(g, level="block", detail="compact") == str(d)
    svg = ET.fromstring(d.svg())
    assert svg.tag.endswith("svg")
    assert d._repr_svg_() == d.svg()
    pdf = g.draw(str(tmp_path / "r.pdf"), level="stage")
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    assert pdf.save(str(tmp_path / "r.dot")) == str(tmp_path / "r.dot")
    assert (tmp_path / "r.dot").read_text() == to_dot(g, level="stage")
    with pytest.raises(cnnir.UsageError, match="cannot tell the image format"):
        g.draw(str(tmp_path / "r.gif"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.dot", "r.pdf"]


def test_run_times_onnxruntime_on_the_cpu(lenet):
    res = cnnir.run(lenet, provider="cpu", repeat=3, batch=2)
    assert res.provider == "CPUExecutionProvider" and res.note is None
    assert res.output.shape == (2, 10) and len(res.seconds) == 3
    assert res.macs == 416520
    assert 0 < res.median_ms <= res.p90_ms * (1 + 1e-9) + 1e-9
    assert res.throughput == pytest.approx(2 / (res.median_ms / 1e3))
    assert res.gflops == pytest.approx(2 * 416520 * 2 / (res.median_ms / 1e3) / 1e9)


def test_run_an_onnx_file_and_auto_says_why_it_fell_back(lenet, tmp_path):
    path = str(tmp_path / "l.onnx")
    lenet.compile(to="onnx", output=path)
    res = cnnir.run(path, repeat=2, verbose=True)  # verbose: the note even without a GPU
    assert res.output.shape == (1, 10) and res.macs == 416520
    if res.provider == "CPUExecutionProvider" and "CUDAExecutionProvider" in \
            __import__("onnxruntime").get_available_providers():
        assert res.note and "falling back to CPU" in res.note
    with pytest.raises(cnnir.UsageError, match="positive integers"):
        cnnir.run(lenet, repeat=0)


def test_the_analysis_api_imports_no_heavy_library():
    code = ("import sys, cnnir\n"
            "g = cnnir.load('examples/googlenet.py')\n"
            "r = g.report(depth=1); str(r); r.to_dict(); r._repr_html_(); g.analyze()\n"
            "d = g.draw(level='block')\n"
            "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'graphviz') "
            "if m in sys.modules]\n"
            "print(heavy)\n")
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_run_a_file_the_frontend_cannot_read(tmp_path):
    """onnxruntime runs it; cnnir cannot count an Erf, so macs is None, never 0."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])
    model = helper.make_model(helper.make_graph([helper.make_node("Erf", ["x"], ["y"])],
                                                "erf", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = str(tmp_path / "erf.onnx")
    onnx.save(model, path)
    with pytest.raises(cnnir.CnnirError, match="symbolic sizes"):
        cnnir.run(path, repeat=1)
    res = cnnir.run(path, repeat=1, input="3x4x5", provider="cpu")
    assert res.output.shape == (1, 3, 4, 5) and res.macs is None and res.gflops is None


def test_compile_torch_source_names_a_checked_weights_file(tmp_path):
    g = cnnir.load("lenet5")
    module = g.compile(to="module")
    import torch

    path = str(tmp_path / "w.pt")
    torch.save(module.state_dict(), path)
    assert f'torch.load("{path}", weights_only=True)' in g.compile(to="torch", weights=path)
    with pytest.raises(cnnir.UsageError, match="state_dict file path"):
        g.compile(to="torch", weights=module)
    bad = {k: v for k, v in module.state_dict().items() if not k.startswith("c1.")}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(cnnir.CnnirError, match="c1"):
        g.compile(to="torch", weights=str(tmp_path / "bad.pt"))


def test_a_graph_fresh_from_build_needs_no_infer_shapes_first():
    import torch

    from cnnir.backends.pytorch import to_module
    from cnnir.dsl import model

    @model(input=(3, 16, 16))
    def tiny(x):
        return x.conv(4, 3).relu().flatten().linear(2)

    assert cnnir.compile(tiny.build(), to="torch").startswith('"""tiny')
    assert len(cnnir.compile(tiny.build(), to="onnx").graph.node) == 4
    assert tiny.build().draw().dot.startswith("digraph")
    assert to_module(tiny.build())(torch.zeros(1, 3, 16, 16)).shape == (1, 2)


# --------------------------------------------------------------------------- once CLI-only
# Behaviours the CLI had and the API lacked; cnnir.api now implements both sides.

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _no_ms(text: str) -> str:
    import re

    return re.sub(r"\(\d+\.\d ms\)", "(ms)", text)


def test_explain_and_print_after_all_log_what_the_cli_prints(capsys):
    lines: list[str] = []
    g = cnnir.check("resnet18", passes="fuse-conv-bn-relu", explain=True, log=lines.append)
    assert lines[0].startswith("[fuse-conv-bn-relu] changed (")
    assert "  'stem/conv1' <- 'stem/bn1' + 'stem/relu1'" in lines
    assert sum(g.op(n).kind == "batchnorm2d" for n in g.nodes()) == 0
    # by default the log is stderr, line for line the CLI's
    cnnir.check("resnet18", passes="fuse-conv-bn-relu", explain=True, print_after_all=True)
    api_err = capsys.readouterr().err
    assert main(["check", "resnet18", "--passes", "fuse-conv-bn-relu", "--explain",
                 "--print-after-all"]) == 0
    assert _no_ms(api_err) == _no_ms(capsys.readouterr().err)
    assert g.format() in api_err and _no_ms("\n".join(lines)) in _no_ms(api_err)


def test_report_and_compare_write_what_the_cli_writes(tmp_path, capsys):
    out = tmp_path / "r.csv"
    rep = cnnir.report("lenet5", format="csv", depth=1, output=str(out))
    assert out.read_text() == str(rep) == _cli(capsys, "report", "lenet5", "--format", "csv",
                                                "--depth", "1")
    c = cnnir.compare("lenet5", "fuse-conv-bn-relu", format="json", batch=2,
                      output=str(tmp_path / "c.json"))
    assert json.loads((tmp_path / "c.json").read_text()) == json.loads(str(c)) == json.loads(
        _cli(capsys, "report", "lenet5", "--compare", "fuse-conv-bn-relu", "--format", "json",
             "--batch", "2"))
    assert c.before["layers"] - c.after["layers"] == 2
    with pytest.raises(cnnir.UsageError, match="does not exist"):
        cnnir.report("lenet5", output=str(tmp_path / "no" / "r.txt"))


def _cli(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_run_goes_through_external_data_above_the_threshold(monkeypatch, tmp_path):
    import tempfile

    from cnnir.backends import onnx_export

    saved = []
    real_save = onnx_export.save

    def spy(model, path, external_data=None, threshold=None):
        files = real_save(model, path, external_data, threshold)
        saved.append([os.path.getsize(f) for f in files])
        return files

    monkeypatch.setattr(onnx_export, "EXTERNAL_THRESHOLD", 100_000)
    monkeypatch.setattr(onnx_export, "save", spy)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    res = cnnir.run("lenet5", provider="cpu", repeat=2, check=True)
    assert len(saved) == 1 and len(saved[0]) == 2 and saved[0][1] >= 61_706 * 4
    assert os.listdir(tmp_path) == []  # the temporary model is gone
    assert res.check_ok and res.check is not None and res.check[0] <= res.tolerance * res.check[1]
    assert (res.title, res.input_shape, res.macs) == ("lenet5 (cnnir/zoo/lenet.py)",
                                                      (1, 32, 32), 416520)


def test_run_check_on_a_file_without_ir_is_refused(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])
    path = str(tmp_path / "erf.onnx")
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Erf", ["x"], ["y"])],
                                                  "erf", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    res = cnnir.run(path, repeat=1, provider="cpu")
    assert res.macs is None and res.macs_note.startswith("n/a (the ONNX frontend cannot read")
    with pytest.raises(cnnir.BackendError, match="--check: n/a"):
        cnnir.run(path, repeat=1, provider="cpu", check=True)


def test_draw_without_graphviz_writes_the_dot_and_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(cnnir.BackendError) as err:
        cnnir.draw("lenet5", str(tmp_path / "fig.png"))
    assert f"dot -Tpng {tmp_path / 'fig.dot'} -o {tmp_path / 'fig.png'}" in str(err.value)
    assert "apt-get install graphviz" in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["fig.dot"]
    assert (tmp_path / "fig.dot").read_text() == to_dot(cnnir.load("lenet5"))
    d = cnnir.draw("lenet5", str(tmp_path / "only.dot"))  # DOT needs no Graphviz
    assert d.saved == "dot" and (tmp_path / "only.dot").read_text() == d.dot


def test_draw_size_note_is_the_clis(tmp_path, capsys):
    d = cnnir.draw("resnet50", str(tmp_path / "a.svg"), level="stage", width="3.3in")
    assert main(["draw", "resnet50", "--level", "stage", "--width", "3.3in",
                 "-o", str(tmp_path / "b.svg")]) == 0
    assert capsys.readouterr().err == f"wrote {tmp_path / 'b.svg'}{d.size_note()}\n"
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    with pytest.raises(cnnir.UsageError, match="--width must look like"):
        cnnir.draw("no-such-model", width="wide")  # checked before the model is loaded


def test_compile_json_takes_weights_on_both_sides(tmp_path, capsys):
    import torch

    g = cnnir.load("lenet5")
    torch.save(g.compile(to="module", seed=4).state_dict(), tmp_path / "w.pt")
    text = cnnir.compile(g, to="json", output=str(tmp_path / "a.json"),
                         weights=str(tmp_path / "w.pt"))
    assert main(["compile", "lenet5", "--to", "json", "-o", str(tmp_path / "b.json"),
                 "--weights", str(tmp_path / "w.pt")]) == 0
    a, b = json.loads(text), json.loads((tmp_path / "b.json").read_text())
    assert a["weights"]["sha256"] == b["weights"]["sha256"]
    assert (tmp_path / "a.weights.npz").read_bytes() == (tmp_path / "b.weights.npz").read_bytes()
    assert main(["compile", "lenet5", "--to", "json", "--external-data"]) == 2
    assert "--external-data applies to --to onnx only" in capsys.readouterr().err


def test_zoo_names_are_the_command_layers():
    """cnnir.load resolves zoo names; the frontends read files and never import the zoo."""
    from cnnir.frontends import load as load_file

    with pytest.raises(cnnir.UsageError, match="cannot read resnet50"):
        load_file("resnet50")
    with pytest.raises(cnnir.UsageError, match="did you mean resnet50"):
        cnnir.load("resnet51")
    code = ("import sys, cnnir; cnnir.load('examples/googlenet.py');"
            "print('cnnir.zoo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_listings():
    assert cnnir.api.zoo_models()["resnet50"] == cnnir.zoo.describe("resnet50")
    info = {p.name: p for p in cnnir.api.pass_list()}
    assert info["infer-shapes"].options == {"strict": True}
    assert info["fuse-conv-bn-relu"].kind == "transform"


@pytest.mark.parametrize("module, call, argv, message", [
    ("cnnir.backends.dot", lambda: cnnir.draw("lenet5"), ["draw", "lenet5"],
     "the Graphviz backend is not available in this build"),
    ("cnnir.backends.runtime", lambda: cnnir.run("lenet5"), ["run", "lenet5"],
     "the onnxruntime backend is not available in this build"),
    ("cnnir.backends.onnx_export", lambda: cnnir.compile("lenet5", to="onnx"),
     ["compile", "lenet5", "--to", "onnx"], "the onnx target is not available in this build"),
])
def test_a_build_without_a_backend_says_so(monkeypatch, capsys, module, call, argv, message):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(cnnir.UsageError, match=message):
        call()
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
