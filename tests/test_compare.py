"""cnnir report MODEL --compare PIPELINE: before / after / delta from first principles on
a tiny network, every format, the CLI flags, and no heavy import on the way."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap

from cnnir.backends.compare import METRICS, compare, render
from cnnir.cli import main
from cnnir.frontends.dsl import model

ROOT = pathlib.Path(__file__).resolve().parents[1]

NET = textwrap.dedent("""
    from cnnir.dsl import model

    @model(input=(3, 8, 8))
    def tiny(x):
        x = x.conv(8, 3, padding=1, bias=False).bn().relu()
        return x.global_avgpool().flatten().dropout().linear(4)
""")


@model(input=(3, 8, 8))
def tiny(x):
    x = x.conv(8, 3, padding=1, bias=False).bn().relu()
    return x.global_avgpool().flatten().dropout().linear(4)


PIPELINE = "fuse-conv-bn-relu,remove-dropout"
HW = 8 * 8

# conv 8x3x3x3 (no bias) -> bn(8) -> relu -> global pool -> flatten -> dropout -> fc 8->4
BEFORE = {
    "layers": 7,
    "params": 8 * 3 * 9 + 2 * 8 + (8 * 4 + 4),           # conv, BN gamma/beta, fc
    "buffers": 2 * 8,                                     # BN running mean and var
    "macs": HW * 8 * 3 * 9 + 8 * 4,
    "other_ops": 2 * 8 * HW + 8 * HW + 8 * HW + 4,        # BN, relu, pool sums, fc bias
    "param_bytes": 4 * (8 * 3 * 9 + 2 * 8 + 36 + 2 * 8),
    # input, conv, bn, relu (8x8x8 each), pool, flatten, dropout (8), fc (4)
    "activation_bytes": 4 * (3 * HW + 3 * 8 * HW + 3 * 8 + 4),
    "peak_activation_bytes": 4 * 2 * 8 * HW,                    # bn (or relu) in and out
}
# fused conv (+ bias 8, + relu) -> pool -> flatten -> fc
AFTER = {
    "layers": 4,
    "params": 8 * 3 * 9 + 8 + 36,
    "buffers": 0,
    "macs": HW * 8 * 3 * 9 + 8 * 4,
    "other_ops": (1 + 1) * 8 * HW + 8 * HW + 4,           # bias + relu, pool, fc bias
    "param_bytes": 4 * (8 * 3 * 9 + 8 + 36),
    "activation_bytes": 4 * (3 * HW + 8 * HW + 2 * 8 + 4),
    "peak_activation_bytes": 4 * (3 * HW + 8 * HW),             # the input and the fused output
}


def test_figures_from_first_principles():
    c = compare(_tiny(), PIPELINE)
    assert c.before == BEFORE
    assert c.after == AFTER
    assert c.delta == {k: AFTER[k] - BEFORE[k] for k in METRICS}
    assert [r.name for r in c.records] == ["fuse-conv-bn-relu", "remove-dropout"]


def _tiny():
    from cnnir.passes.infer_shapes import infer_shapes

    return infer_shapes(tiny.build())


def test_the_before_graph_is_not_rewritten():
    g = _tiny()
    text = g.format()
    c = compare(g, PIPELINE)
    assert g.format() == text and c.graph is not None and len(c.graph) == 5


def test_json_and_csv_are_exact():
    c = compare(_tiny(), PIPELINE)
    data = json.loads(render(c, "json"))
    assert data == {"model": "tiny", "pipeline": PIPELINE, "input": [3, 8, 8], "batch": 1,
                    "dtype": "float32", "before": BEFORE, "after": AFTER,
                    "delta": {k: AFTER[k] - BEFORE[k] for k in METRICS}}
    rows = list(csv.reader(io.StringIO(render(c, "csv"))))
    assert rows[0] == ["metric", "before", "after", "delta"]
    assert rows[1:] == [[k, str(BEFORE[k]), str(AFTER[k]), str(AFTER[k] - BEFORE[k])]
                        for k in METRICS]


def test_table_md_latex():
    c = compare(_tiny(), PIPELINE)
    table = render(c, "table").splitlines()
    assert table[0] == "tiny + fuse-conv-bn-relu,remove-dropout: input 3x8x8, batch 1, float32"
    rows = {line.split()[0]: line.split()[1:] for line in table[3:]}
    assert table[1].split() == ["metric", "before", "after", "delta", "change"]
    assert rows["layers"] == ["7", "4", "-3", "-42.9%"]
    assert rows["buffers"] == ["16", "0", "-16", "-100.0%"]
    assert rows["MACs"] == ["13.86K", "13.86K", "0", "0%"]
    md = render(c, "md").splitlines()
    assert md[2] == "| metric | before | after | delta | change |"
    assert md[4] == "| layers | 7 | 4 | -3 | -42.9% |"
    tex = render(c, "latex")
    assert r"layers & 7 & 4 & -3 & -42.9\% \\" in tex and tex.endswith("\\end{table}\n")


def test_cli_json_with_batch_and_dtype(tmp_path, capsys, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "net.py", "--compare", PIPELINE, "--format", "json",
                 "--batch", "2", "--dtype", "float16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 2 and data["dtype"] == "float16"
    assert data["before"]["macs"] == 2 * BEFORE["macs"]
    # float16 halves the bytes, batch 2 doubles them
    assert data["after"]["peak_activation_bytes"] == AFTER["peak_activation_bytes"]
    assert data["after"]["param_bytes"] == AFTER["param_bytes"] // 2  # not batch dependent


def test_cli_passes_apply_before_the_comparison(tmp_path, capsys, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "net.py", "--passes", "remove-dropout", "--compare",
                 "fuse-conv-bn-relu", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["before"]["layers"] == 6 and data["after"]["layers"] == 4


def test_cli_explain_output_file_and_errors(tmp_path, capsys, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cmp.csv"
    assert main(["report", "net.py", "--compare", PIPELINE, "--format", "csv", "-o", str(out),
                 "--explain"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and out.read_text().startswith("metric,before,after,delta\n")
    assert "[fuse-conv-bn-relu] changed" in captured.err
    assert "  'conv1' <- 'bn1' + 'relu1'" in captured.err
    for argv, msg in (
        (["--depth", "1"], "error: --depth does not apply to --compare"),
        (["--columns", "params"], "error: --columns does not apply to --compare"),
    ):
        out.write_text("old")
        assert main(["report", "net.py", "--compare", PIPELINE, "-o", str(out), *argv]) == 2
        assert msg in capsys.readouterr().err and out.read_text() == "old"
    assert main(["report", "net.py", "--compare", "no-such-pass"]) == 2
    assert "unknown pass 'no-such-pass'" in capsys.readouterr().err


def test_bottleneck_comparison():
    c = compare(_tiny(), "insert-bottleneck{channels=2,min_channels=3}")
    (p,) = [r for r in c.records if r.name == "insert-bottleneck"]
    # 1x1 to 2 channels (+ a copy of the conv's BN and relu) in front of the 3x3:
    # 3*2 + 2*2 (BN) + 8*9*2 params instead of 8*9*3, HW*(2*3 + 8*9*2) MACs
    assert c.after["params"] - c.before["params"] == (3 * 2 + 2 * 2 + 8 * 9 * 2) - 8 * 9 * 3
    assert c.after["buffers"] - c.before["buffers"] == 2 * 2
    assert c.after["macs"] - c.before["macs"] == HW * (2 * 3 + 8 * 9 * 2) - HW * 8 * 9 * 3
    assert c.after["layers"] == c.before["layers"] + 3
    assert p.changed


def test_compare_on_a_dsl_file_imports_neither_torch_nor_onnx(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    code = ("import sys\nfrom cnnir.cli import main\n"
            f"assert main(['report', 'net.py', '--compare', {PIPELINE!r}]) == 0\n"
            "heavy = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("tiny + fuse-conv-bn-relu,remove-dropout:")
