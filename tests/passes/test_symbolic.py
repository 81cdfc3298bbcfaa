"""``cnnir report --symbolic`` / ``cnnir.symbolic``: params, MACs and memory as exact
polynomials in H, W and the batch N (``cnnir.passes.symbolic``).

Every formula is compared with the numeric analysis (``cnnir.api.analyze`` of the
model rebuilt at that size) at sizes the fit did not use; the tiny models' formulas
are derived by hand in the test."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest

from cnnir import api
from cnnir.errors import CnnirError
from cnnir.passes.symbolic import Poly, interpolate

H, W, N = Poly.var("H"), Poly.var("W"), Poly.var("N")


def numeric(model, c, h, w, batch=1):
    a = api.analyze(api.load(model, input=(c, h, w), force=True), batch=batch)
    return {
        "params": a.params,
        "buffers": a.buffers,
        "param_bytes": a.param_bytes,
        "macs": a.macs,
        "activation_bytes": a.activation_bytes,
        "peak_activation_bytes": a.peak_activation_bytes,
    }


# --------------------------------------------------------------------------- Poly


def test_poly_arithmetic_and_evaluation():
    p = H * W * 9 + H * Fraction(1, 2) - 3
    assert p(H=4, W=5) == 180 + 2 - 3
    assert (p - p).terms == {}
    assert (p * 2)(H=1, W=1) == 2 * p(H=1, W=1)
    assert p.degree("H") == 1 and p.degree("W") == 1 and not p.depends_on("N")
    assert p.value(H=2, W=1) == 16
    with pytest.raises(ValueError):
        p.value(H=1, W=1)  # 6.5 is no figure


def test_poly_text_and_json_are_exact():
    p = (H * W * 81 + H * 2 - W) * Fraction(1, 4) * N
    assert p.format() == "N*(81*H*W + 2*H - W) / 4"
    assert (H * W * 81456 * N + N * 2048000).format() == "N*(81,456*H*W + 2,048,000)"
    assert Poly.const(0).format() == "0"
    d = p.to_dict()
    assert d == {"denominator": 4, "numerators": {"N*H*W": 81, "N*H": 2, "N*W": -1}}
    assert Poly.from_dict(json.loads(json.dumps(d))) == p


def test_interpolation_recovers_a_random_polynomial_exactly():
    rng = random.Random(0)
    for _ in range(20):
        p = sum(
            (
                Poly({(a, b, 0): Fraction(rng.randint(-99, 99), rng.randint(1, 9))})
                for a in range(3)
                for b in range(3)
            ),
            Poly(),
        )
        hs, ws = [7, 39, 71], [3, 35, 67]
        assert interpolate(hs, ws, {(h, w): p(h, w) for h in hs for w in ws}) == p


# --------------------------------------------------------------------------- hand-derived


def _dsl(tmp_path, body, input="(3, 8, 8)"):
    path = tmp_path / "tiny.py"
    path.write_text(
        f"from cnnir.dsl import model\n\n@model(input={input})\ndef tiny(x):\n    return {body}\n"
    )
    return str(path)


def test_one_conv_3x3_same_padding_by_hand(tmp_path):
    """conv 3->8, 3x3, pad 1, stride 1: the output is HxW for every H, W >= 1, so
    MACs = C_out*C_in*9*H*W, params = 8*3*9 + 8 (bias), activations: the input (3HW)
    and the output (8HW) at 4 bytes, both alive while the conv runs."""
    sym = api.symbolic(_dsl(tmp_path, "x.conv(8, 3, padding=1)"))
    assert sym.modulus == (1, 1) and sym.residue == (0, 0) and sym.minimum == (1, 1)
    assert sym.formulas["macs"] == N * H * W * (8 * 3 * 9)
    assert sym.formulas["params"] == Poly.const(8 * 3 * 9 + 8)
    assert sym.formulas["activation_bytes"] == N * H * W * (4 * (3 + 8))
    assert sym.peak == [N * H * W * 44]
    assert str(sym.formulas["macs"]) == "N*216*H*W"


def test_a_stride_2_conv_is_piecewise_by_hand(tmp_path):
    """conv 3x3, stride 2, pad 1: out = floor((H - 1)/2) + 1, i.e. (H + 1)/2 for odd H
    and H/2 for even H: two formulas; declared at 9x9, the odd class is fitted."""
    path = _dsl(tmp_path, "x.conv(8, 3, stride=2, padding=1)", "(3, 9, 9)")
    sym = api.symbolic(path)
    assert sym.modulus == (2, 2) and sym.residue == (1, 1) and sym.minimum == (1, 1)
    assert sym.formulas["macs"] == N * (H + 1) * (W + 1) * Fraction(8 * 3 * 9, 4)
    even = api.symbolic(path, input=(3, 10, 10))
    assert even.residue == (0, 0) and even.minimum == (2, 2)
    assert even.formulas["macs"] == N * H * W * Fraction(8 * 3 * 9, 4)
    # the odd formula is wrong at an even size, which is why the class is part of it
    assert sym.formulas["macs"](10, 10) != numeric(path, 3, 10, 10)["macs"]
    for h, w in [(1, 1), (3, 17), (101, 55)]:
        assert sym.evaluate(h, w)["macs"] == numeric(path, 3, h, w)["macs"]


# --------------------------------------------------------------------------- the zoo

ZOO = [
    "lenet5",
    "alexnet",
    "vgg16",
    "resnet50",
    "googlenet",
    "mobilenet_v2",
    "unet",
    "unet_original",
    "squeezenet1_0",
]


@pytest.mark.parametrize("model", ZOO)
def test_zoo_formulas_equal_the_analysis_at_many_sizes(model):
    sym = api.symbolic(model)
    c = sym.channels
    (lh, lw), (hmin, wmin) = sym.modulus, sym.minimum
    sizes = [
        (hmin, wmin),
        (hmin + lh, wmin + 5 * lw),
        (hmin + 2 * lh, wmin),
        (hmin + 9 * lh, wmin + 4 * lw),
        (hmin + 11 * lh, wmin + 11 * lw),
        (hmin + 13 * lh, wmin + 2 * lw),
        (hmin + 3 * lh, wmin + 17 * lw),
        (hmin + 40 * lh, wmin + 33 * lw),
        (hmin + 6 * lh, wmin + 6 * lw),
        (hmin + 97 * lh, wmin + 1 * lw),
        (hmin + 1000 * lh, wmin + 3 * lw),
        (hmin + 21 * lh, wmin + 29 * lw),
        (hmin + 5 * lh, wmin + 50 * lw),
    ]
    fit_sizes = {(h, w) for h, w, _ in sym.checked}
    fresh = [s for s in sizes if s not in fit_sizes]
    assert len(fresh) >= 10
    for h, w in sizes:
        assert sym.holds(h, w)
        for batch in (1, 2) if (h, w) == sizes[1] else (1,):
            want = numeric(model, c, h, w, batch)
            assert sym.evaluate(h, w, batch) == want, (h, w, batch)
    # the smallest size is the smallest valid one in the class
    if hmin - lh >= 1:
        with pytest.raises(CnnirError):
            numeric(model, c, hmin - lh, sym.input[1])


def test_resnet50_macs_polynomial_and_the_class_it_needs():
    sym = api.symbolic("resnet50")
    assert sym.modulus == (32, 32) and sym.residue == (0, 0) and sym.minimum == (32, 32)
    assert sym.formulas["macs"] == N * (H * W * 81456 + 2048000)
    assert sym.formulas["params"] == Poly.const(25557032)
    assert sym.formulas["macs"].value(224, 224) == 4089184256
    # 225 is outside the class: the floors of the stride-2 layers differ there
    assert not sym.holds(225, 224)
    assert sym.formulas["macs"](225, 224) != numeric("resnet50", 3, 225, 224)["macs"]
    with pytest.raises(CnnirError, match="outside the formulas' domain"):
        sym.evaluate(225, 224)
    # 225 has its own class and formula
    other = api.symbolic("resnet50", input=(3, 225, 225))
    assert other.residue == (1, 1) and other.formulas["macs"] != sym.formulas["macs"]
    assert other.evaluate(257, 289)["macs"] == numeric("resnet50", 3, 257, 289)["macs"]


def test_flatten_then_linear_makes_params_depend_on_the_size():
    sym = api.symbolic("lenet5")
    # LeNet-5's f5 reads 16 x (H/4 - 3) x (W/4 - 3) features into 120 outputs
    assert sym.formulas["params"].depends_on("H") and sym.formulas["params"].depends_on("W")
    assert any("parameter count grows" in n for n in sym.notes)
    assert sym.formulas["params"].value(32, 32) == 61706


def test_a_graph_object_is_resized_by_its_input():
    g = api.load("resnet18")
    sym = api.symbolic(g)
    assert sym.formulas["macs"] == api.symbolic("resnet18").formulas["macs"]


def test_the_peak_is_a_maximum_where_no_step_dominates():
    sym = api.symbolic("unet_original")
    assert len(sym.peak) > 1 and len(sym.peak_nodes) == len(sym.peak)
    for h, w in [(188, 188), (188, 572), (700, 204), (2012, 2012)]:
        assert sym.peak_at(h, w) == numeric("unet_original", 1, h, w)["peak_activation_bytes"]


# --------------------------------------------------------------------------- the report


def test_report_formats_carry_the_formulas():
    rep = api.report("resnet50", format="json", symbolic=True, batch=4, depth=0)
    d = rep.to_dict()["symbolic"]
    assert d["domain"] == {"modulus": [32, 32], "residue": [0, 0], "minimum": [32, 32]}
    assert d["formulas"]["macs"] == {"denominator": 1, "numerators": {"N*H*W": 81456, "N": 2048000}}
    macs = Poly.from_dict(d["formulas"]["macs"])
    assert macs.value(224, 224, 4) == rep.totals["macs"]
    text = rep.render("table")
    assert "MACs = N*(81,456*H*W + 2,048,000)" in text
    assert "holds for H \u2261 0 (mod 32), H \u2265 32" in text
    assert "at 224x224, N=4" in text
    latex = rep.render("latex")
    assert r"H \equiv 0 \pmod{32}" in latex
    assert r"N \cdot \left(81{,}456\,HW + 2{,}048{,}000\right)" in latex
    rep.standalone = True
    doc = rep.render("latex")
    assert doc.rstrip().endswith(r"\end{document}") and r"\pmod{32}" in doc
    assert "`N*(81,456*H*W + 2,048,000)`" in rep.render("md")
    assert "symbolic" not in api.report("resnet50", format="json", depth=0).to_dict()


def test_cli_symbolic(cli, tmp_path):
    out = tmp_path / "r.json"
    proc = cli("report", "vgg16", "--symbolic", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    d = json.loads(out.read_text())["symbolic"]
    assert Poly.from_dict(d["formulas"]["macs"]).value(224, 224) == 15470264320
    proc = cli("report", "lenet5", "--symbolic", "--format", "csv")
    assert proc.returncode == 2 and "CSV" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("report", "lenet5", "--symbolic", "--compare", "fuse-conv-bn-relu")
    assert proc.returncode == 2 and "--symbolic does not apply" in proc.stderr


def test_cli_refuses_a_model_with_a_fixed_input(cli, tmp_path):
    onnx_path = tmp_path / "lenet5.onnx"
    api.compile("lenet5", to="onnx", output=str(onnx_path))
    proc = cli("report", str(onnx_path), "--symbolic")
    assert proc.returncode == 2, proc.stderr
    assert "cannot be made symbolic" in proc.stderr and "Gemm" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    flat = _dsl(tmp_path, "x.linear(4)", "(16,)")
    proc = cli("report", flat, "--symbolic")
    assert proc.returncode == 2 and "input is flat" in proc.stderr
