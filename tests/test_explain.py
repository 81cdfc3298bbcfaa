"""``cnnir explain`` (issue 17 B): every figure with its derivation, and the inverse questions.

The main test evaluates every formula of every layer of every zoo model *from its JSON
tree* (an evaluator written here, not the one in cnnir.ops.formula) and compares it
with what the analysis passes computed: the explanation and the number cannot disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import pytest

from cnnir import api
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.backends.explain import explain
from cnnir.cli import main
from cnnir.dsl import model
from cnnir.errors import CnnirError
from cnnir.ops import TensorShape as T
from cnnir.ops.formula import render

ZOO = sorted(api.zoo_models())


def _num(v: Any) -> Any:
    return Fraction(v) if isinstance(v, str) else v


def evaluate(tree: dict[str, Any]) -> Any:
    """Evaluate a formula's JSON tree (independently of Expr.value)."""
    if "name" in tree:
        return _num(tree["value"])
    if "const" in tree:
        return _num(tree["const"])
    args = [evaluate(a) for a in tree["args"]]
    op = tree["op"]
    if op == "+":
        return args[0] + args[1]
    if op == "-":
        return args[0] - args[1]
    if op == "*":
        return args[0] * args[1]
    if op == "/":
        return Fraction(args[0]) / Fraction(args[1])
    return {"floor": lambda: math.floor(args[0]), "ceil": lambda: math.ceil(args[0]),
            "max": lambda: max(args), "min": lambda: min(args), "": lambda: args[0]}[op]()


def _same(a: Any, b: Any) -> bool:
    return Fraction(a) == Fraction(b)


def check_against_passes(name: str, batch: int = 1) -> int:
    graph = analyze(api.load(name), batch=batch).graph
    ex = explain(graph, batch=batch)
    data = ex.to_dict()
    checked = 0
    assert [la["name"] for la in data["layers"]] == graph.nodes()
    for la in data["layers"]:
        meta = graph.meta(la["name"])
        sums: dict[str, Any] = {}
        dims = []
        for t in la["terms"]:
            value = evaluate(t["formula"])
            assert _same(value, _num(t["value"])), (la["name"], t)
            checked += 1
            if t["kind"] == "shape":
                dims.append(value)
            elif t["kind"] == "rf":
                q, ax = t["name"].split("_")
                field = {"r": "size", "j": "stride", "rmin": "min_size"}[q]
                assert _same(value, getattr(meta["rf"], field)["HW".index(ax)]), (la["name"], t)
            else:
                sums[t["kind"]] = sums.get(t["kind"], 0) + value
        assert dims == list(meta["shape"]), la["name"]
        assert sums.get("param", 0) == meta["params"]["params"], la["name"]
        assert sums.get("buffer", 0) == meta["params"]["buffers"], la["name"]
        assert sums.get("macs", 0) == meta["cost"]["macs"], la["name"]
        assert sums.get("other", 0) == meta["cost"]["other_ops"], la["name"]
        assert sums["memory"] == meta["memory"]["activation_bytes"], la["name"]
        names = {t["name"] for t in la["terms"] if t["kind"] == "rf"}
        assert {"r_H", "r_W", "j_H", "j_W"} <= names, la["name"]
    return checked


@pytest.mark.parametrize("name", ZOO)
def test_every_formula_of_every_zoo_model_equals_the_analysis(name):
    assert check_against_passes(name) > 0


def test_batch_multiplies_the_costs_and_the_memory_in_the_formula():
    check_against_passes("resnet18", batch=3)


def _layer(name: str, layer: str, **kw: Any) -> dict[str, Any]:
    ex = api.explain(name, layer=layer, format="json", **kw).to_dict()
    (la,) = [x for x in ex["layers"] if x["name"] == layer]
    return {f"{t['kind']}:{t['name']}": t for t in la["terms"]}


def test_alexnet_conv1_reads_as_the_course_notes():
    t = _layer("alexnet_original", "features/conv1")
    assert t["shape:H"]["substituted"] == "floor((227 + 2*0 - 11) / 4) + 1"
    assert t["shape:H"]["value"] == 55
    w, b = t["param:weight"], t["param:bias"]
    assert (w["substituted"], w["value"], b["value"]) == ("11*11*3*96", 34848, 96)
    assert t["macs:conv"]["substituted"] == "55*55*96*(11*11*3)"
    assert t["macs:conv"]["value"] == 105_415_200
    assert t["rf:r_H"]["substituted"] == "1 + (11 - 1)*1" and t["rf:j_H"]["value"] == 4
    text = str(api.explain("alexnet_original", layer="features/conv1"))
    assert "= 34,944" in text and "= 105,415,200" in text and "96*55*55*4 = 1,161,600" in text


def test_latex_uses_frac_and_lfloor():
    tex = api.explain("alexnet_original", layer="features/conv1", format="latex").render("latex")
    assert r"\left\lfloor \frac{227 + 2 \cdot 0 - 11}{4} \right\rfloor + 1 = 55" in tex
    assert r"\begin{align*}" in tex and "34{,}848" in tex and r"features/conv1" in tex


def test_markdown_has_one_section_per_layer():
    md = api.explain("lenet5", format="md").render("md")
    assert md.count("\n## ") == len(api.load("lenet5"))


def _graph(fn: Any) -> Any:
    return analyze(fn.build()).graph


def test_ceil_mode_drop_dilation_asymmetric_and_same_padding_are_shown_as_such():
    @model(input=(3, 7, 7))
    def net(x):
        a = x.conv(4, 3, dilation=2, padding=2)                 # 'same' via dilation
        b = a.conv(4, 4, padding=(1, 1, 2, 2))                  # PyTorch's 'same' for F=4
        return b.maxpool(2, stride=2, padding=1, ceil_mode=True)  # last window dropped

    g = _graph(net)
    names = g.nodes()
    ex = {la.name: la for la in explain(g).layers}
    d = {t.name: t for t in ex[names[1]].terms if t.kind == "shape"}
    assert render(d["H"].expr) == "floor((H_in + 2*P - D*(F - 1) - 1) / S) + 1"
    assert "'same'" in d["H"].note and d["H"].value() == 7
    d = {t.name: t for t in ex[names[2]].terms if t.kind == "shape"}
    assert render(d["H"].expr, True) == "floor((7 + 1 + 2 - 4) / 1) + 1"
    assert "extra pixel at the end" in d["H"].note
    d = {t.name: t for t in ex[names[3]].terms if t.kind == "shape"}
    assert render(d["H"].expr, True) == "ceil((7 + 2*1 - 2) / 2) + 1 - 1"
    assert "dropped" in d["H"].note and d["H"].value() == 4 == g.shape(names[3])[1]


def test_groups_bias_and_batchnorm_arrays_are_named_apart():
    t = _layer("alexnet_original", "features/conv2")
    assert t["param:weight"]["text"] == "F_h*F_w*(C_in / g)*C_out"
    assert t["param:weight"]["substituted"] == "5*5*(96 / 2)*256"
    bn = _layer("resnet18", "stem/bn1")
    assert bn["param:weight"]["value"] == bn["param:bias"]["value"] == 64
    assert "gamma" in bn["param:weight"]["note"] and "beta" in bn["param:bias"]["note"]
    assert {k for k in bn if k.startswith("buffer:")} == {"buffer:running_mean",
                                                          "buffer:running_var"}
    nobias = _layer("resnet18", "stem/conv1")
    assert "param:bias" not in nobias


def test_merges_name_the_branch_that_sets_the_largest_and_the_smallest_rf():
    g = analyze(api.load("googlenet")).graph
    (cat,) = [n for n in g.nodes() if n.startswith("inception_3a/") and "concat" in n]
    t = {x.name: x for x in explain(g, layer=cat).layers[0].terms}
    assert t["r_H"].value() == g.meta(cat)["rf"].size[0]
    assert "b3" in t["r_H"].note or "relu" in t["r_H"].note
    assert render(t["r_H"].expr).startswith("max(") and render(t["rmin_H"].expr).startswith(
        "min(")


def test_depth_sums_a_block_from_its_layers():
    g = analyze(api.load("googlenet")).graph
    ex = explain(g, depth=1)
    block = {la.name: la for la in ex.layers}["inception_3a"]
    members = [n for n in g.nodes() if g.scope(n)[:1] == ("inception_3a",)]
    assert block.sums()["param"] == sum(g.meta(n)["params"]["params"] for n in members)
    assert block.sums()["macs"] == sum(g.meta(n)["cost"]["macs"] for n in members)
    assert block.block and block.output == "256x28x28"


def test_a_layer_or_block_that_does_not_exist_is_one_clear_error(capsys):
    assert main(["explain", "alexnet", "--layer", "conv9"]) == 2
    err = capsys.readouterr().err
    assert "no layer or block named 'conv9'" in err and "Traceback" not in err


def test_cli_formats_and_output_file(tmp_path, capsys):
    assert main(["explain", "lenet5", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "lenet5" and data["layers"][1]["terms"]
    out = tmp_path / "d.tex"
    assert main(["explain", "lenet5", "--layer", "c1", "--format", "latex", "-o", str(out)]) == 0
    assert r"\lfloor" in out.read_text() and capsys.readouterr().out == ""
    assert main(["explain"]) == 2
    assert "needs a MODEL" in capsys.readouterr().err


@dataclass(frozen=True)
class Strange(O.Conv2d):
    """An op kind from elsewhere: no explain rule."""

    kind: ClassVar[str] = "strange_explain"


def test_an_op_without_an_explain_rule_is_named():
    with pytest.raises(O.NoRule, match="explain"):
        Strange(4).explain([T((3, 8, 8))], T((4, 6, 6)))


def test_a_formula_that_disagrees_is_never_printed(monkeypatch):
    from cnnir.ops.formula import Const, Term

    right = O.Conv2d.explain
    monkeypatch.setattr(O.Conv2d, "explain", lambda self, ins, out: [
        Term("macs", "conv", Const(1)) if t.kind == "macs" else t for t in right(self, ins, out)])
    with pytest.raises(CnnirError, match="disagrees with the analysis"):
        api.explain("lenet5")


# ---------------------------------------------------------------------- --solve


def _answers(*argv: str) -> list[dict[str, Any]]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["explain", "--solve", *argv, "--format", "json"]) == 0
    return json.loads(buf.getvalue())["layers"]


def _terms(answer: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: t["value"] for t in answer["terms"]}


def test_solve_bottleneck_is_googlenets_example():
    direct, reduced = _answers("bottleneck", "--size", "192x28x28", "--filters", "32",
                               "--kernel", "5", "--reduce", "16")
    d, r = _terms(direct), _terms(reduced)
    assert d["direct weight"] == 153_600 and d["direct conv"] == 120_422_400
    assert r["1x1 weight"] == 3_072 and r["5x5 weight"] == 12_800
    assert r["1x1 conv"] == 2_408_448 and r["5x5 conv"] == 10_035_200
    assert r["MACs with the 1x1 first"] == 12_443_648


def test_solve_bottleneck_on_a_model_layer():
    ex = api.solve("bottleneck", model="vgg16", layer="block3/conv3_1", reduce=64).to_dict()
    direct = {t["name"]: t["value"] for t in ex["layers"][0]["terms"]}
    g = analyze(api.load("vgg16")).graph
    assert direct["direct conv"] == g.meta("block3/conv3_1")["cost"]["macs"]


def test_solve_padding_that_keeps_the_size():
    (a,) = _answers("padding", "--kernel", "5")
    assert _terms(a)["P_begin"] == _terms(a)["P_end"] == 2 and _terms(a)["check: H_out"] == 224
    (a,) = _answers("padding", "--kernel", "4")
    assert (_terms(a)["P_begin"], _terms(a)["P_end"]) == (1, 2)
    (a,) = _answers("padding", "--kernel", "3", "--stride", "2", "--size", "225")
    assert _terms(a)["check: H_out"] == 113 == _terms(a)["O"]


def test_solve_output_finds_alexnets_first_layer_first():
    answers = _answers("output", "--size", "227", "--out", "55", "--kernel", "11")
    assert answers[0]["name"] == "F=11, S=4, P=0" and "exact" in answers[0]["attrs"]
    for a in _answers("output", "--size", "32", "--out", "16"):
        assert _terms(a)["H"] == 16


def test_solve_rf_three_3x3_see_7x7():
    (a,) = _answers("rf", "--rf", "7", "--kernel", "3")
    t = _terms(a)
    assert t["k (one layer)"] == 7 and t["layers of 3x3, stride 1"] == 3
    assert t["weights / C*C, the stack"] == 27 and t["weights / C*C, one layer"] == 49
    ex = api.solve("rf", model="vgg16", layer="block1/pool1", rf=100, r_in=None).to_dict()
    t = {t["name"]: t for t in ex["layers"][0]["terms"]}
    # after pool1 (r 6, j 2) each 3x3 layer adds 4: ceil(94 / 4) = 24 layers reach 102
    assert t["layers of 3x3, stride 1"]["substituted"] == "ceil((100 - 6) / ((3 - 1)*2))"
    assert t["r after them"]["value"] == 102


def test_solve_says_what_it_needs(capsys):
    assert main(["explain", "--solve", "bottleneck", "--size", "192x28x28"]) == 2
    assert "needs --filters, --kernel, --reduce" in capsys.readouterr().err
    assert main(["explain", "--solve", "output", "--size", "ax3"]) == 2
    assert "--size must be" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["alexnet_original", "unet", "googlenet"])
def test_latex_is_balanced(name):
    """No TeX here to compile it: every row balances its braces and its \\left/\\right."""
    tex = api.explain(name, format="latex").render("latex")
    body = tex.replace(r"\{", "").replace(r"\}", "")
    for line in body.splitlines():
        assert line.count("{") == line.count("}"), line
        assert line.count(r"\left") == line.count(r"\right"), line
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") == len(api.load(name))
    assert "_" not in "".join(x.split("}")[0] for x in tex.split(r"\paragraph{")[1:]).replace(
        r"\_", "")
