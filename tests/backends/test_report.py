"""cnnir report: one data model in five formats, each parsed back; the JSON contract;
--depth subtotals; --columns; -o; --compare delegation; no heavy imports."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap

import pytest

from cnnir import load
from cnnir.backends.report import (
    COLUMNS,
    DEFAULT_COLUMNS,
    build_report,
    parse_columns,
    render,
    report,
    tex_escape,
    to_json,
)
from cnnir.cli import main
from cnnir.errors import UsageError

SMALL = (3, 64, 64)

TOTAL_KEYS = {"params", "buffers", "macs", "flops", "other_ops", "param_bytes",
              "activation_bytes", "peak_activation_bytes"}
LAYER_KEYS = {"name", "op", "attrs", "scope", "loc", "output_shape", "params", "buffers", "macs",
              "flops", "other_ops", "activation_bytes", "param_bytes", "rf"}
RF_KEYS = {"size", "min_size", "stride", "padding", "aligned", "whole"}


def resnet18_small():
    return load("resnet18", input=SMALL)


# --------------------------------------------------------------------------- JSON


def test_json_contract_exactly():
    data = json.loads(report(load("lenet5"), "json"))
    assert set(data) == {"model", "input", "batch", "totals", "layers"}
    assert data["model"] == "lenet5" and data["input"] == [1, 32, 32] and data["batch"] == 1
    assert set(data["totals"]) == TOTAL_KEYS
    assert all(type(v) is int for v in data["totals"].values())
    for layer in data["layers"]:
        assert set(layer) == LAYER_KEYS
        assert set(layer["rf"]) == RF_KEYS
        assert isinstance(layer["scope"], list) and isinstance(layer["output_shape"], list)
        assert re.fullmatch(r".+\.py:\d+", layer["loc"])
        for key in ("params", "macs", "flops", "other_ops", "activation_bytes"):
            assert type(layer[key]) is int
        assert all(type(v) is int for k in ("size", "min_size", "stride", "padding")
                   for v in layer["rf"][k])
        assert type(layer["rf"]["aligned"]) is bool and type(layer["rf"]["whole"]) is bool
    c1 = next(layer for layer in data["layers"] if layer["name"] == "c1")
    assert c1 == {"name": "c1", "op": "conv2d", "attrs": "k=5x5,s=1,p=0", "scope": [], "loc": c1["loc"],
                  "output_shape": [6, 28, 28], "params": 156, "buffers": 0,
                  "macs": 28 * 28 * 6 * 25,
                  "flops": 2 * 28 * 28 * 6 * 25, "other_ops": 6 * 28 * 28,
                  "activation_bytes": 6 * 28 * 28 * 4, "param_bytes": 156 * 4,
                  "rf": {"size": [5, 5], "min_size": [5, 5], "stride": [1, 1],
                         "padding": [0, 0], "aligned": True, "whole": False}}
    assert c1["loc"].endswith("lenet.py:9")


def test_json_totals_are_the_sums_of_the_layers():
    data = to_json(build_report(resnet18_small()))
    for key in ("params", "macs", "flops", "other_ops", "activation_bytes"):
        assert data["totals"][key] == sum(layer[key] for layer in data["layers"])
    assert data["totals"]["flops"] == 2 * data["totals"]["macs"]
    assert data["totals"]["params"] == 11_689_512  # independent of the input size
    assert data["totals"]["buffers"] == 9_600
    assert data["totals"]["param_bytes"] == (11_689_512 + 9_600) * 4
    assert 0 < data["totals"]["peak_activation_bytes"] < data["totals"]["activation_bytes"]


def test_batch_and_dtype_reach_the_numbers():
    one = to_json(build_report(resnet18_small()))
    four = to_json(build_report(resnet18_small(), dtype="float16", batch=4))
    assert four["batch"] == 4
    assert four["totals"]["macs"] == 4 * one["totals"]["macs"]
    assert four["totals"]["activation_bytes"] == 4 * one["totals"]["activation_bytes"] // 2
    assert four["totals"]["param_bytes"] == one["totals"]["param_bytes"] // 2


def test_fractional_rf_becomes_a_float():
    from cnnir.dsl import concat, model

    @model(input=(1, 16, 16))
    def tiny_unet(x):
        skip = x.conv(4, 3, padding=1)
        deep = skip.maxpool(2).conv(8, 3, padding=1).conv_transpose(4, 2, stride=2)
        return concat(skip, deep)

    data = json.loads(report(load_dsl(tiny_unet), "json"))
    up = next(layer for layer in data["layers"] if layer["op"] == "conv_transpose2d")
    assert up["rf"]["padding"] == [3.5, 3.5] and up["rf"]["stride"] == [1, 1]
    assert "8/1/3.5" in report(load_dsl(tiny_unet), "table")


def load_dsl(m):
    from cnnir.passes.infer_shapes import infer_shapes

    return infer_shapes(m.build())


# --------------------------------------------------------------------------- depth


def test_depth_groups_rows_with_subtotals():
    rep = build_report(resnet18_small(), depth=1)
    names = [r.name for r in rep.rows]
    assert names == ["input", "stem", "layer1", "layer2", "layer3", "layer4", "avgpool",
                     "flatten1", "fc"]
    for key in ("params", "macs", "flops", "other_ops", "activation_bytes"):
        assert sum(getattr(r, key) for r in rep.rows) == rep.totals[key]
    layer4 = rep.rows[5]
    assert layer4.is_block and layer4.op == "block:scope"
    assert layer4.output_shape == (512, 2, 2)  # its last layer's output
    # stage 4 of ResNet-18: 3x3 convs 256->512 and 512->512, then another block of two
    # 512->512, a 1x1 projection 256->512, each conv followed by a BN (2 * 512)
    assert layer4.params == (9 * 256 * 512 + 3 * 9 * 512 * 512 + 256 * 512) + 5 * 2 * 512


def test_depth_two_blocks_sum_their_children():
    rep = build_report(resnet18_small(), depth=2)
    rows = rep.rows
    for i, row in enumerate(rows):
        if row.is_block and row.indent == 0:
            children = []
            for child in rows[i + 1:]:
                if child.indent == 0:
                    break
                children.append(child)
            assert children, row.name
            assert row.macs == sum(c.macs for c in children)
            assert row.params == sum(c.params for c in children)
    basic = [r for r in rows if r.op == "block:basic"]
    assert [r.name for r in basic[:2]] == ["layer1/basic1", "layer1/basic2"]
    assert basic[1].attrs == ""  # made by repeat(basic, 1, ...): a group of one says nothing
    assert any(r.name == "stem/conv1" and r.indent == 1 for r in rows)


def test_depth_zero_is_the_totals_alone():
    rep = build_report(resnet18_small(), depth=0)
    assert rep.rows == [] and rep.totals["params"] == 11_689_512
    with pytest.raises(UsageError, match="--depth"):
        build_report(resnet18_small(), depth=-1)


# --------------------------------------------------------------------------- CSV


def test_csv_parses_back_with_exact_integers():
    g = resnet18_small()
    text = report(g, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == DEFAULT_COLUMNS["csv"]
    *layers, total = rows
    assert total["name"] == "total" and total["op"] == ""
    data = to_json(build_report(g))
    assert [r["name"] for r in layers] == [layer["name"] for layer in data["layers"]]
    for key, col in (("params", "params"), ("macs", "macs"), ("flops", "flops"),
                     ("other_ops", "other_ops"), ("activation_bytes", "activations")):
        assert sum(int(r[col]) for r in layers) == int(total[col]) == data["totals"][key]
    conv1 = next(r for r in layers if r["name"] == "stem/conv1")
    assert conv1["output"] == "64x32x32" and conv1["rf_size"] == "7x7"
    assert conv1["rf_aligned"] == "true" and conv1["scope"] == "stem"


# --------------------------------------------------------------------------- Markdown


def md_table(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in lines]
    return lines, [[c.strip() for c in row] for row in cells]


def test_markdown_is_a_well_formed_table_with_human_numbers():
    text = report(load("resnet50"), "md")
    lines, rows = md_table(text)
    header, sep, *body = rows
    assert header == [COLUMNS[c][0] for c in DEFAULT_COLUMNS["md"]]
    assert all(re.fullmatch(r":?-{3,}:?", c) for c in sep)
    assert all(len(r) == len(header) for r in rows)
    total = dict(zip(header, body[-1]))
    assert total["Layer"] == "**total**"
    assert total["Params"] == "**25.56M**" and total["MACs"] == "**4.09G**"
    assert total["FLOPs"] == "**8.18G**"


def test_markdown_escapes_pipes():
    from cnnir.dsl import model

    @model(input=(3, 8, 8))
    def pipes(x):
        return x.conv(4, 3, name="a|b")

    _, rows = md_table(report(load_dsl(pipes), "md"))
    assert all(len(r) == len(rows[0]) for r in rows)
    assert any(r[0] == "a\\|b" for r in rows)


# --------------------------------------------------------------------------- LaTeX


def check_latex(text, ncols):
    """Structure of a document that compiles: environments nest, booktabs rules are in
    place, every row has ncols cells, braces balance, no special character unescaped."""
    assert text.startswith("% needs \\usepackage{booktabs,longtable}\n")  # a fragment
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", text):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env
    assert stack == []
    body = text.split("\\endlastfoot", 1)[1].split("\\end{longtable}", 1)[0]
    rows = [line for line in body.splitlines() if line.endswith("\\\\")]
    assert rows
    for line in rows:
        cells = re.split(r"(?<!\\)&", line.removesuffix("\\\\"))
        assert len(cells) == ncols, line
        for cell in cells:
            stripped = re.sub(r"\\[&%$#_{}]|\\[a-zA-Z]+|\$\\times\$", "", cell)
            assert not re.search(r"[&%$#_^~]", stripped), line
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in text
    return rows


def test_latex_is_a_booktabs_document():
    text = report(resnet18_small(), "latex", depth=2)
    ncols = len(DEFAULT_COLUMNS["latex"])
    assert f"\\begin{{longtable}}{{{'llrrrrl'}}}" in text
    rows = check_latex(text, ncols)
    assert rows[-1].startswith("total &")
    assert "\\textbf{layer1}" in text  # block rows in bold
    assert "\\quad layer1/basic1" in text.replace("\\textbf{", "")
    assert "64$\\times$32$\\times$32" in text


def test_latex_escapes_special_characters():
    from cnnir.dsl import model

    @model(input=(3, 8, 8), name="my_net%1")
    def net(x):
        return x.conv(4, 3, name="conv_1#a").relu(name="relu_&")

    text = report(load_dsl(net), "latex", columns="name,op,params,attrs")
    check_latex(text, 4)
    assert "conv\\_1\\#a" in text and "relu\\_\\&" in text and "my\\_net\\%1" in text
    assert tex_escape("a\\b~^{}") == "a\\textbackslash{}b\\textasciitilde{}\\textasciicircum{}\\{\\}"


# --------------------------------------------------------------------------- table


def test_table_has_human_numbers_and_a_summary():
    text = report(load("resnet50"), "table")
    assert "25.56M" in text and "4.09G" in text and "8.18G" in text
    assert "25,557,032" in text and "4,089,184,256" in text
    assert "peak" in text and "MiB" in text
    assert all(line == line.rstrip() for line in text.splitlines())


# --------------------------------------------------------------------------- columns


def test_columns_select_order_and_aliases():
    text = report(load("lenet5"), "csv", columns="name, output_shape,MACS,rf_stride")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "output", "macs", "rf_stride"]
    assert rows[2] == ["c1", "6x28x28", str(28 * 28 * 6 * 25), "1x1"]
    assert parse_columns(None, "table") == DEFAULT_COLUMNS["table"]
    with pytest.raises(UsageError, match="unknown column 'bogus'"):
        parse_columns("name,bogus", "csv")
    with pytest.raises(UsageError, match="json"):
        parse_columns("name", "json")
    with pytest.raises(UsageError, match="format"):
        render(build_report(load("lenet5")), "xml")


# --------------------------------------------------------------------------- CLI


def test_cli_writes_the_file(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["report", "lenet5", "--format", "json", "-o", str(out), "--batch", "2"]) == 0
    data = json.loads(out.read_text())
    assert data["batch"] == 2 and data["totals"]["macs"] == 2 * 416_520
    assert capsys.readouterr().out == ""


def test_cli_error_exits_2_and_keeps_the_old_file(tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("old")
    assert main(["report", "lenet5", "--format", "csv", "--columns", "nope",
                 "-o", str(out)]) == 2
    assert out.read_text() == "old"
    err = capsys.readouterr().err
    assert "error: unknown column 'nope'" in err and "Traceback" not in err


def test_cli_compare_is_delegated(monkeypatch, capsys):
    import cnnir.api

    calls = []

    def fake(model, pipeline, **options):
        calls.append((model, pipeline, options["format"], options["batch"]))
        return "compared\n"

    monkeypatch.setattr(cnnir.api, "compare", fake)
    assert main(["report", "lenet5", "--compare", "fuse-conv-bn-relu", "--batch", "3"]) == 0
    assert calls == [("lenet5", "fuse-conv-bn-relu", "table", 3)]
    assert capsys.readouterr().out == "compared\n"


def test_cli_compare_without_its_backend_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cnnir.backends.compare", None)
    assert main(["report", "lenet5", "--compare", "fuse-conv-bn-relu"]) == 2
    assert "--compare is not available" in capsys.readouterr().err


def test_report_on_a_dsl_file_never_imports_torch_or_onnx(tmp_path):
    net = tmp_path / "net.py"
    net.write_text(textwrap.dedent("""
        from cnnir.dsl import model

        @model(input=(3, 32, 32))
        def net(x):
            return x.conv(8, 3, padding=1).bn().relu().global_avgpool().flatten().linear(10)
    """))
    code = textwrap.dedent(f"""
        import sys
        from cnnir.cli import main
        for fmt in ("table", "json", "csv", "md", "latex"):
            assert main(["report", {str(net)!r}, "--format", fmt, "--depth", "1"]) == 0
        heavy = [m for m in ("torch", "onnx", "onnxruntime", "graphviz") if m in sys.modules]
        assert not heavy, heavy
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "net: input 3x32x32" in proc.stdout
