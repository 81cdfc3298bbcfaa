"""LaTeX paper tables: the op column in words (as the diagrams write them), sizes
in $\\times$ everywhere (cells, caption, summary)."""

from __future__ import annotations

import re

from cnnir import load
from cnnir.backends.report import report
from cnnir.dsl import block, model, scope
from cnnir.passes.infer_shapes import infer_shapes


def load_dsl(m):
    return infer_shapes(m.build())


def op_cells(text):
    """(name, op) of every body row (bold and indentation taken off)."""
    body = text.split("\\endlastfoot", 1)[1].split("\\midrule", 1)[0]
    out = []
    for line in body.strip().splitlines():
        cells = [re.sub(r"\\textbf\{(.*)\}$", r"\1", c.strip()) for c in line[:-2].split(" & ")]
        out.append((cells[0].replace("\\quad ", ""), cells[1]))
    return out


@block
def unit(x, c):
    return x.conv(c, 3, padding=1, groups=c).bn().relu6()


@model(input=(8, 16, 16))
def words(x):
    with scope("stem"):
        x = x.conv(16, 3, stride=2, padding=1).bn().relu()
    with scope("stage1"):
        x = unit(x, 16)
    x = x.maxpool(2, stride=2).global_avgpool().flatten()
    return x.linear(10)


def test_op_column_is_words():
    text = report(load_dsl(words), "latex", depth=2)
    cells = op_cells(text)
    assert cells == [
        ("input", "input"),
        ("stem", "stem"),  # a `scope` block: its own name
        ("stem/conv1", "conv 3$\\times$3/2"), ("stem/bn1", "BN"), ("stem/relu1", "ReLU"),
        ("stage1", "stage"),
        ("stage1/unit1", "unit"),  # a @block: its function's name
        ("maxpool1", "max pool 2$\\times$2/2"),
        ("gap1", "global avg pool"),
        ("flatten1", "flatten"),
        ("fc1", "FC"),
    ]
    assert "block:" not in text and "global\\_avgpool &" not in text
    # depth 3: the depthwise conv inside the block says so
    deeper = dict(op_cells(report(load_dsl(words), "latex", depth=3)))
    assert deeper["stage1/unit1/conv1"] == "dw conv 3$\\times$3"
    assert deeper["stage1/unit1/relu6_1".replace("_", "\\_")] == "ReLU6"


def test_sizes_are_times_everywhere():
    text = report(load("resnet18", input=(3, 32, 32)), "latex", depth=1)
    assert "\\caption{resnet18: input 3$\\times$32$\\times$32, batch 1, float32}" in text
    assert "FLOPs = 2 $\\times$ MACs" in text
    assert ("\\textbf{layer1} & \\textbf{layer} & \\textbf{64$\\times$8$\\times$8}" in text)
    # no size or kernel written with a bare x in the table body
    body = text.split("\\endlastfoot", 1)[1].split("\\end{longtable}", 1)[0]
    assert not re.search(r"\d+x\d+", body)


def test_other_formats_keep_the_op_kinds():
    text = report(load_dsl(words), "md", depth=1)
    assert "block:scope" in text and "global_avgpool" in text
