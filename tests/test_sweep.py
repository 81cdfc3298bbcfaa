"""``cnnir sweep``: the design space (grid, sample, --where), exact per-variant costs, failed
variants recorded, resuming a killed sweep, the Pareto front, the plots, the same rows
from a two-worker ``dask.distributed.LocalCluster`` as from one process, and the CLI."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import xml.etree.ElementTree as ET

import pytest

from cnnir import api
from cnnir.analysis import analyze
from cnnir.errors import UsageError
from cnnir.frontends.dsl import load_file
from cnnir.sweep import pareto_front
from cnnir.sweep_space import Where, grid, parse_spec, parse_specs, sample

ROOT = pathlib.Path(__file__).resolve().parents[1]

NET = '''
from cnnir.dsl import model


@model(input=(3, 32, 32))
def net(x, width=8, depth=2, groups=1, k=3):
    for i in range(depth):
        x = x.conv(width, k, padding=k // 2, groups=groups if i else 1).bn().relu()
    return x.global_avgpool().flatten().linear(10)
'''

GRID = ["width=8..24:step8", "depth=1,2", "groups=1,3"]  # 12 variants, 4 invalid (3 ∤ 8, 16)


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    return str(path)


def serial(model, out, grid_=GRID, **kw):
    return api.sweep(model, grid_, output=str(out), scheduler="serial", **kw)


def _strip(rows):
    return [{k: v for k, v in r.items()} for r in rows]


# --------------------------------------------------------------------------- the space


def test_grid_is_the_product_in_order():
    specs = parse_specs(["width=16..32:step8", "depth=1,2", "act=relu,silu"])
    g = grid(specs)
    assert len(g) == 12
    assert g[0] == {"width": 16, "depth": 1, "act": "relu"}
    assert g[1] == {"width": 16, "depth": 1, "act": "silu"}
    assert g[-1] == {"width": 32, "depth": 2, "act": "silu"}
    assert parse_spec("d=2..5").enumerate() == [2, 3, 4, 5]
    assert parse_spec("r=0.25..1.0:step0.25").enumerate() == [0.25, 0.5, 0.75, 1.0]
    assert parse_spec("b=true,false,none").enumerate() == [True, False, None]


def test_sample_is_seeded_distinct_and_within_ranges():
    specs = parse_specs(["width=16..128:step8", "lr=1e-4..1e-1:log", "depth=18,34,50"])
    a, b = sample(specs, 50, seed=0), sample(specs, 50, seed=0)
    assert a == b and a != sample(specs, 50, seed=1)
    assert len({json.dumps(v, sort_keys=True) for v in a}) == 50
    for v in a:
        assert v["width"] in range(16, 129, 8) and 1e-4 <= v["lr"] <= 1e-1
        assert v["depth"] in (18, 34, 50)
    # log-uniform: about half the draws below the geometric mean 10**-2.5
    below = sum(v["lr"] < 10 ** -2.5 for v in sample(specs, 400, seed=3))
    assert 150 < below < 250
    # a space smaller than the sample: every variant once
    assert len(sample(parse_specs(["d=1,2,3"]), 10)) == 3


@pytest.mark.parametrize("text, msg", [
    ("width", "NAME=VALUES"), ("width=", "NAME=VALUES"), ("w=1..x", "numbers at both ends"),
    ("w=8..4", "lo <= hi"), ("w=0..4:log", "lo > 0"), ("w=1..4:stp2", "unknown range option"),
    ("w=1,,2", "empty value"),
])
def test_bad_specs_say_why(text, msg):
    with pytest.raises(UsageError, match=msg):
        parse_spec(text)


def test_a_float_range_without_a_step_cannot_be_a_grid():
    with pytest.raises(UsageError, match="cannot be enumerated"):
        grid(parse_specs(["lr=0.1..0.5"]))
    with pytest.raises(UsageError, match="twice"):
        parse_specs(["a=1", "a=2"])


def test_where_evaluates_without_eval():
    w = Where("macs < 600e6 and depth != 34 or width in (8, 16)")
    assert w({"macs": 5e8, "depth": 18, "width": 64})
    assert not w({"macs": 7e8, "depth": 18, "width": 64})
    assert w({"macs": 7e8, "depth": 34, "width": 16})
    assert not Where("macs < 1")({"macs": None})  # a failed variant has no metrics
    assert Where("2 * width - 1 >= 15 and not depth == 3")({"width": 8, "depth": 2})
    for bad in ("__import__('os')", "width.real", "[w for w in x]", "x if y else z"):
        with pytest.raises(UsageError, match="not allowed"):
            Where(bad)
    with pytest.raises(UsageError, match="not an expression"):
        Where("macs <")


# --------------------------------------------------------------------------- costing


def test_each_variant_costs_exactly_what_building_it_costs(net, tmp_path):
    res = serial(net, tmp_path / "out")
    assert len(res.rows) == 12 and res.costed == 12 and res.skipped == 0
    m = load_file(net)
    for row in res.rows:
        params = {k: row[k] for k in ("width", "depth", "groups")}
        if row["error"] is not None:
            continue
        a = analyze(m.build(**params))
        assert (row["params"], row["macs"], row["activation_bytes"],
                row["peak_activation_bytes"], row["layers"]) == (
            a.params, a.macs, a.activation_bytes, a.peak_activation_bytes, len(a.graph))
        assert row["rf"] == max(a.graph.meta(a.graph.outputs[0])["rf"].size)
    first = res.rows[0]
    assert (first["width"], first["depth"], first["groups"]) == (8, 1, 1)
    # conv(3->8, 3x3)+bias, bn (16 params), linear 8->10
    assert first["params"] == 8 * 27 + 8 + 16 + 90


def test_a_failing_variant_records_its_one_line_error_and_the_sweep_goes_on(net, tmp_path):
    res = serial(net, tmp_path / "out")
    failed = [r for r in res.rows if r["error"]]
    # groups=3 fails where width is 8 or 16 and the grouped conv exists (depth 2)
    assert [(r["width"], r["depth"]) for r in failed] == [(8, 2), (16, 2)]
    assert res.failed == 2
    for r in failed:
        assert "\n" not in r["error"] and "groups=3 does not divide" in r["error"]
        assert r["error"].startswith(f"{net}:") or "net.py:" in r["error"]
        assert r["params"] is None if "params" in r else True
    ok = [r for r in res.rows if not r["error"]]
    assert len(ok) == 10 and all(r["macs"] > 0 for r in ok)
    rows = list(csv.DictReader(open(res.output + "/variants.csv")))
    assert len(rows) == 12 and rows[3]["error"] == failed[0]["error"] and rows[3]["macs"] == ""


def test_an_unknown_parameter_fails_once_before_any_work(net, tmp_path):
    with pytest.raises(UsageError, match="takes no parameter 'widht'.*width, depth, groups, k"):
        serial(net, tmp_path / "out", ["widht=8,16"])
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="unknown name 'mac'"):
        serial(net, tmp_path / "out", where="mac < 5")
    with pytest.raises(UsageError, match="latency needs --measure"):
        serial(net, tmp_path / "out", pareto="macs,latency")


def test_where_on_parameters_filters_before_costing_on_metrics_after(net, tmp_path):
    res = serial(net, tmp_path / "a", where="width != 16")
    assert res.costed == 8 and {r["width"] for r in res.rows} == {8, 24}
    res = serial(net, tmp_path / "b", where="macs < 1e6")
    assert res.costed == 12
    assert all(r["error"] or r["macs"] < 1e6 for r in res.rows)
    assert 0 < sum(not r["error"] for r in res.rows) < 10


def test_input_is_a_parameter_too(net, tmp_path):
    res = serial(net, tmp_path / "out", ["input=3x32x32,3x64x64", "width=8"])
    assert res.rows[1]["macs"] == 4 * res.rows[0]["macs"] - 3 * 80  # conv scales, linear not


def test_zoo_resnets_take_their_natural_parameters():
    from cnnir import zoo

    assert analyze(zoo.get("resnet50").build(width=64)).params == 25557032
    a = analyze(zoo.get("resnet18").build(width=32, num_classes=10))
    assert a.graph.shape("fc")[-1] == 10 and a.params < 11689512 / 3
    # torchvision's mobilenet_v2(width_mult=0.5): 1,968,680 params; the paper's 97M MACs
    a = analyze(zoo.get("mobilenet_v2").build(width=0.5))
    assert (a.params, a.macs) == (1968680, 97131840)
    assert analyze(zoo.get("mobilenet_v2").build(width=1.0)).params == 3504872
    assert analyze(zoo.get("vgg16").build(num_classes=10)).params == 138357544 - 4097000 + 40970


# --------------------------------------------------------------------------- resuming


def test_a_killed_sweep_resumes_where_it_stopped(net, tmp_path):
    full = serial(net, tmp_path / "full", pareto="macs,params")
    half = serial(net, tmp_path / "out", limit=6, pareto="macs,params")
    assert half.costed == 6 and len(half.rows) == 6
    # a write torn by the kill: a half line at the journal's end is cut off
    with open(tmp_path / "out" / "journal.jsonl", "a") as fh:
        fh.write('{"params": {"width": 2')
    rest = serial(net, tmp_path / "out", pareto="macs,params")
    assert (rest.costed, rest.skipped) == (6, 6)
    assert rest.rows == full.rows and rest.pareto == full.pareto
    for name in ("variants.csv", "pareto.csv"):
        assert (tmp_path / "out" / name).read_text() == (tmp_path / "full" / name).read_text()
    again = serial(net, tmp_path / "out")
    assert (again.costed, again.skipped) == (0, 12)
    lines = (tmp_path / "out" / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 13  # the header and one line per variant, the torn one gone


def test_a_journal_of_other_settings_is_refused(net, tmp_path):
    serial(net, tmp_path / "out", ["width=8"])
    with pytest.raises(UsageError, match="other settings \\(dtype differ\\)"):
        serial(net, tmp_path / "out", ["width=8"], dtype="float16")
    # the seed changes only what --sample draws (and --measure's weights): static rows stay
    again = serial(net, tmp_path / "out", ["width=8,16"], sample=2, seed=5)
    assert (again.costed, again.skipped) == (1, 1)


# --------------------------------------------------------------------------- the front


def test_pareto_front_keeps_exactly_the_non_dominated():
    rows = [{"a": 1, "b": 5}, {"a": 2, "b": 2}, {"a": 3, "b": 3}, {"a": 5, "b": 1},
            {"a": 2, "b": 2}, {"a": None, "b": 0}, {"a": 1, "b": 6}]
    assert pareto_front(rows, [("a", False), ("b", False)]) == [0, 1, 3, 4]  # ties both stay
    assert pareto_front(rows, [("a", True), ("b", False)]) == [3]
    assert pareto_front(rows, [("a", True), ("b", True)]) == [2, 3, 6]
    assert pareto_front([], [("a", False)]) == []


def test_the_sweep_writes_its_front(net, tmp_path):
    res = serial(net, tmp_path / "out", pareto="macs,max:width")
    ok = [r for r in res.rows if not r["error"]]
    front = [res.rows[i] for i in res.pareto]
    for p in front:  # nothing is cheaper and at least as wide
        assert not any(q["macs"] <= p["macs"] and q["width"] >= p["width"] and
                       (q["macs"], q["width"]) != (p["macs"], p["width"]) for q in ok)
    doc = json.loads((tmp_path / "out" / "variants.json").read_text())
    assert doc["pareto"] == {"metrics": ["macs", "width"], "variants": res.pareto} or \
        doc["pareto"]["variants"] == res.pareto
    assert doc["parameters"] == ["width", "depth", "groups"] and len(doc["rows"]) == 12
    assert [int(r["variant"]) for r in csv.DictReader(open(tmp_path / "out" / "pareto.csv"))] \
        == res.pareto


# --------------------------------------------------------------------------- plots


def test_plots_are_written_and_valid(net, tmp_path):
    pytest.importorskip("matplotlib")
    res = serial(net, tmp_path / "out", pareto="macs,params", plots="png,svg", edf="macs,params",
                 group="depth")
    names = sorted(os.path.basename(f) for f in res.files if f.endswith((".png", ".svg")))
    assert names == ["edf_macs.png", "edf_macs.svg", "edf_params.png", "edf_params.svg",
                     "scatter_macs_params.png", "scatter_macs_params.svg"]
    for f in res.files:
        if f.endswith(".png"):
            data = pathlib.Path(f).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        if f.endswith(".svg"):
            root = ET.parse(f).getroot()
            assert root.tag.endswith("svg")
            assert "Pareto front" in pathlib.Path(f).read_text() or "edf" in f
    with pytest.raises(UsageError, match="formats are png, svg, pdf"):
        serial(net, tmp_path / "x", plots="gif")
    with pytest.raises(UsageError, match="--group 'nope'"):
        serial(net, tmp_path / "x", plots="png", group="nope")


# --------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_a_two_worker_cluster_gives_the_same_rows(net, tmp_path, client):
    local = serial(net, tmp_path / "local", pareto="macs,params")
    dist = api.sweep(net, GRID, output=str(tmp_path / "dist"), client=client, chunk=1,
                     pareto="macs,params")
    assert dist.workers == 2 and dist.costed == 12
    assert dist.rows == local.rows and dist.pareto == local.pareto
    for name in ("variants.csv", "pareto.csv"):
        assert (tmp_path / "dist" / name).read_text() == (tmp_path / "local" / name).read_text()
    # both workers took part, and the journal got each row as it arrived
    assert len((tmp_path / "dist" / "journal.jsonl").read_text().splitlines()) == 13


def test_a_cluster_worker_without_the_file_builds_from_its_text(tmp_path, client):
    path = tmp_path / "gone.py"
    path.write_text(NET)
    from cnnir.sweep import make_job

    job = make_job(str(path))
    path.unlink()  # the workers no longer see it; the job carries its text
    rows = client.submit(api._sweep_chunk, job, [{"width": 8}], pure=False).result()
    assert rows[0]["error"] is None and rows[0]["metrics"]["macs"] > 0


# --------------------------------------------------------------------------- measure, CLI


def test_measure_adds_the_onnxruntime_latency(net, tmp_path):
    pytest.importorskip("onnxruntime")
    res = serial(net, tmp_path / "out", ["width=8"], measure=True, repeat=3,
                 pareto="macs,latency")
    row = res.rows[0]
    assert row["latency_ms"] > 0 and row["provider"] == "CPUExecutionProvider"
    assert res.metrics[-2:] == ["latency_ms", "provider"] and res.pareto == [0]


def test_the_cli(net, tmp_path, capsys):
    from cnnir.cli import main

    out = tmp_path / "cli"
    assert main(["sweep", net, "--grid", "width=8,16", "depth=1,2", "--pareto", "macs,params",
                 "--scheduler", "serial", "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert "Pareto front over macs, params" in cap.out
    assert "swept 4 variants" in cap.err and "0 failed" in cap.err
    assert sorted(p.name for p in out.iterdir()) == [
        "journal.jsonl", "pareto.csv", "variants.csv", "variants.json"]
    assert main(["sweep", net, "--grid", "width=8", "--where", "import os",
                 "--scheduler", "serial", "-o", str(tmp_path / "bad")]) == 2
    assert "--where" in capsys.readouterr().err
    assert main(["sweep", net, "--grid", "width", "-o", str(tmp_path / "bad")]) == 2
    assert "NAME=VALUES" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_without_the_extra_the_sweep_says_which_to_install(net, tmp_path, monkeypatch, capsys):
    from cnnir.cli import main

    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # as if not installed
    assert main(["sweep", net, "--grid", "width=8", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == ("error: cnnir sweep needs distributed, which is not "
                                       "installed: pip install 'cnnir[sweep]'\n")
    assert not (tmp_path / "o").exists()
    # the serial scheduler needs no Dask
    assert main(["sweep", net, "--grid", "width=8", "--scheduler", "serial",
                 "-o", str(tmp_path / "s")]) == 0


def test_sweep_help(capsys):
    from cnnir.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: cnnir sweep") and "--grid" in out and "--pareto" in out
