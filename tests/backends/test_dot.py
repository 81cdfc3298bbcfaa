"""cnnir draw / to_dot: what each level draws (counted in the SVG), the legend, folding,
fusion, skips, determinism, PDF/PNG output, --width, themes, and the no-dot fallback."""

from __future__ import annotations

import itertools
import os
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from cnnir import infer_shapes, load
from cnnir import ops as O
from cnnir.backends.dot import number, op_title, parse_width, render, to_dot, to_svg
from cnnir.backends.dot_theme import FAMILY_NAMES, THEMES  # noqa: F401
from cnnir.cli import main
from cnnir.dsl import block, concat, model, repeat
from cnnir.errors import BackendError, UsageError
from cnnir.ir import Graph

SVG = "{http://www.w3.org/2000/svg}"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------- helpers


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    """SVG <g> elements whose class list contains ``cls``."""
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def boxes(root: ET.Element) -> list[ET.Element]:
    """Drawn IR boxes: every Graphviz node but the legend."""
    return [g for g in groups(root, "node") if "legend" not in g.get("class", "").split()]


def texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter(f"{SVG}text")]


def legend_words(root: ET.Element) -> set[str]:
    """The legend's entries (the swatches hold at most a one-letter symbol)."""
    (leg,) = groups(root, "legend")
    return {t.strip() for t in texts(leg) if len(t.strip()) > 1}


def drawn_families(root: ET.Element) -> set[str]:
    fams = set()
    for g in boxes(root):
        fams |= {c[len("family-"):] for c in g.get("class", "").split() if c.startswith("family-")}
    return fams


def center(el: ET.Element) -> tuple[float, float]:
    """Centre of a node's first polygon/ellipse (SVG coordinates: y grows downwards)."""
    for shape in el:
        if shape.tag == f"{SVG}polygon" or shape.tag == f"{SVG}path":
            nums = [float(v) for v in re.findall(r"-?[0-9.]+", shape.get("points") or shape.get("d"))]
            xs, ys = nums[0::2], nums[1::2]
            return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        if shape.tag == f"{SVG}ellipse":
            return float(shape.get("cx")), float(shape.get("cy"))
    raise AssertionError("node without a shape")


def by_id(root: ET.Element, ident: str) -> ET.Element:
    found = [g for g in root.iter(f"{SVG}g") if g.get("id") == ident]
    assert len(found) == 1, ident
    return found[0]


def build(m, input=None) -> Graph:
    g = m.build(input)
    infer_shapes(g)
    return g


# --------------------------------------------------------------------------- levels

# First principles, counted by hand from the zoo definitions (dropout and flatten
# hidden, conv(+BN)(+act) one box, repeated identical blocks drawn once):
#
# GoogLeNet
#   layer: input 1 + stem 7 (conv1+ReLU, pool1, LRN, conv2_reduce+ReLU, conv2+ReLU, LRN,
#          pool2) + 9 inception x 8 (six conv+ReLU, the branch pool, concat) + pool3,
#          pool4, avgpool, fc, softmax = 85 boxes; clusters: stem + 9 inceptions + the
#          3 stages (inception3: 3a-3b, inception4: 4a-4e, inception5: 5a-5b) = 13
#   block: 1 + 7 + 9 inception boxes + 5 = 22; clusters: the stem, the 3 stages = 4
#   stage: input, stem, inception3, pool3, inception4, pool4, inception5, avgpool, fc,
#          softmax = 10; none
# ResNet-50 and ResNet-152 (stage i: bottleneck1 with projection, then n_i - 1 identical
# bottlenecks, drawn once with "x (n_i - 1)")
#   layer: input, stem conv+BN+ReLU, maxpool, avgpool, fc = 5, and per stage
#          bottleneck1 (3 conv+BN boxes, projection conv+BN, add, ReLU = 6) + folded
#          bottleneck (3 convs, add, ReLU = 5) = 11; 5 + 4 x 11 = 49 boxes;
#          clusters: stem, 4 stages, 2 bottlenecks per stage = 13
#   block: input, conv, maxpool, 4 x 2 bottleneck boxes, avgpool, fc = 13 (<= 25);
#          clusters: stem + 4 stages = 5
#   stage: input, stem, layer1..4, avgpool, fc = 8; none
COUNTS = {
    ("googlenet", "layer"): (85, 13),
    ("googlenet", "block"): (22, 4),
    ("googlenet", "stage"): (10, 0),
    ("resnet50", "layer"): (49, 13),
    ("resnet50", "block"): (13, 5),
    ("resnet50", "stage"): (8, 0),
    ("resnet152", "layer"): (49, 13),
    ("resnet152", "block"): (13, 5),
    ("resnet152", "stage"): (8, 0),
}

WORDS = {"io": "input", "conv": "convolution", "norm": "normalisation", "act": "activation",
         "pool": "pooling", "linear": "fully connected", "block": "block"}
# legend entries from the same hand count: which families those boxes belong to; merge
# nodes are named after what was drawn (GoogLeNet concatenates, ResNet adds)
LEGENDS = {
    ("googlenet", "layer"): ("io conv norm act pool linear merge", "concatenation"),  # LRN
    ("googlenet", "block"): ("io conv norm act pool linear block", None),  # softmax: act
    ("googlenet", "stage"): ("io act pool linear block", None),
    ("resnet50", "layer"): ("io conv act pool linear merge", "addition"),  # BN fused
    ("resnet50", "block"): ("io conv pool linear block", None),
    ("resnet50", "stage"): ("io pool linear block", None),
}


@pytest.fixture(scope="module")
def zoo_graphs():
    return {m: load(m) for m in ("googlenet", "resnet50", "resnet152")}


@pytest.mark.parametrize("name,level", sorted(COUNTS))
def test_box_and_cluster_counts_per_level(zoo_graphs, name, level):
    root = parse(to_svg(zoo_graphs[name], level=level))
    n_boxes, n_clusters = COUNTS[name, level]
    assert len(boxes(root)) == n_boxes
    assert len(groups(root, "cluster")) == n_clusters
    if name == "resnet152" and level == "block":
        assert n_boxes <= 25


@pytest.mark.parametrize("name,level", sorted(LEGENDS))
def test_legend_lists_exactly_the_families_drawn(zoo_graphs, name, level):
    root = parse(to_svg(zoo_graphs[name], level=level))
    families, merge = LEGENDS[name, level]
    assert drawn_families(root) == set(families.split())   # read from the boxes' classes
    words = {WORDS.get(f, merge) for f in families.split()}
    assert legend_words(root) == words


def test_legend_shows_batchnorm_when_not_fused(zoo_graphs):
    root = parse(to_svg(zoo_graphs["resnet50"], level="layer", fuse=False))
    assert "normalisation" in legend_words(root)
    assert len(groups(root, "op-batchnorm2d")) == 1 + 4 * (4 + 3)  # stem + 7 BN per stage


def test_resnet_layer_level_structure(zoo_graphs):
    root = parse(to_svg(zoo_graphs["resnet50"], level="layer"))
    cls = Counter(c for g in boxes(root) for c in g.get("class", "").split())
    assert cls["op-add"] == 8            # one add per drawn bottleneck
    assert cls["op-conv2d"] == 1 + 4 * (4 + 3)
    assert cls["op-batchnorm2d"] == cls["op-conv2d"]   # every BN sits in a conv's box
    # skips: per stage the projection shortcut (fork -> 1x1 conv -> add: 2 edges) and
    # the identity shortcut of the folded block (1 edge)
    skips = groups(root, "skip")
    assert len(skips) == 4 * 3
    assert "edge-layer1.bottleneck2.add1--layer1.bottleneck2.relu3" not in {
        s.get("id") for s in skips}
    folded = [g for g in groups(root, "cluster") if "folded" in g.get("class", "").split()]
    assert sorted("".join(texts(g)) for g in folded) == sorted(
        ["bottleneck×2", "bottleneck×3", "bottleneck×5", "bottleneck×2"])


def test_stage_boxes_say_what_they_are_made_of(zoo_graphs):
    """ResNet-50 and -152 stages: 3-4-6-3 and 3-8-36-3 bottlenecks (paper Table 1)."""
    for name, counts in (("resnet50", (3, 4, 6, 3)), ("resnet152", (3, 8, 36, 3))):
        root = parse(to_svg(zoo_graphs[name], level="stage"))
        for i, (n, shape) in enumerate(zip(counts, ("256×56×56", "512×28×28",
                                                    "1024×14×14", "2048×7×7")), start=1):
            assert texts(by_id(root, f"block-layer{i}")) == [
                f"layer{i}", f"{n} × bottleneck", shape]


def test_resnet152_folds_to_the_paper_multiplicities(zoo_graphs):
    root = parse(to_svg(zoo_graphs["resnet152"], level="block"))
    badges = sorted("".join(texts(g)) for g in groups(root, "folded"))
    # 3, 8, 36, 3 bottlenecks: the first of each stage differs (projection)
    # the badge alone says how many (no "bottleneck2–36" beside "×35")
    assert badges == sorted(["bottleneck×2256×56×56", "bottleneck×7512×28×28",
                             "bottleneck×351024×14×14", "bottleneck×22048×7×7"])


def test_densenet_dense_blocks_fold_with_their_growth():
    """DenseNet-121: 6, 12, 24, 16 dense layers (paper Table 1) made with repeat(); each
    adds k = 32 channels to the concatenation: 64 + 32 = 96 ... 64 + 6 * 32 = 256 in
    block 1, and after each transition halves the channels, 128 + 12 * 32 = 512,
    256 + 24 * 32 = 1024, 512 + 16 * 32 = 1024."""
    root = parse(to_svg(load("densenet121"), level="block"))
    assert sorted("".join(texts(g)) for g in groups(root, "folded")) == sorted([
        "dense_layer×696×56×56 … 256×56×56", "dense_layer×12160×28×28 … 512×28×28",
        "dense_layer×24288×14×14 … 1024×14×14", "dense_layer×16544×7×7 … 1024×7×7"])


def test_googlenet_has_no_skips_and_hides_dropout_and_flatten(zoo_graphs):
    root = parse(to_svg(zoo_graphs["googlenet"], level="layer"))
    assert groups(root, "skip") == []
    assert groups(root, "op-dropout") == [] and groups(root, "op-flatten") == []
    edges = {g.get("id") for g in groups(root, "edge")}
    assert "edge-pool5--fc" in edges       # through the hidden dropout and flatten


def test_svg_ids_are_named_after_the_ir_and_unique(zoo_graphs):
    root = parse(to_svg(zoo_graphs["resnet50"], level="layer"))
    ids = [g.get("id") for g in root.iter(f"{SVG}g") if g.get("id")]
    assert len(ids) == len(set(ids))
    for ident in ("node-input", "node-stem.conv1", "node-layer3.bottleneck1.downsample_conv",
                  "cluster-layer3", "cluster-layer3.bottleneck2", "legend",
                  "edge-stem.conv1--stem.maxpool"):
        by_id(root, ident)
    conv = by_id(root, "node-stem.conv1")
    assert set(conv.get("class").split()) >= {
        "layer", "family-conv", "op-conv2d", "op-batchnorm2d", "op-relu"}
    assert "block" in by_id(root, "cluster-layer3.bottleneck1").get("class").split()
    blocks = parse(to_svg(zoo_graphs["resnet50"], level="block"))
    assert "kind-bottleneck" in by_id(blocks, "block-layer2.bottleneck1").get("class").split()


def test_rankdir(zoo_graphs):
    for rankdir, axis in (("TB", 1), ("LR", 0)):
        root = parse(to_svg(zoo_graphs["resnet50"], level="stage", rankdir=rankdir))
        a, b = center(by_id(root, "node-input")), center(by_id(root, "node-fc"))
        assert a[axis] < b[axis] - 100
        assert abs(a[1 - axis] - b[1 - axis]) < 50


# --------------------------------------------------------------------------- collapse / expand


def test_collapse_and_expand(zoo_graphs):
    g = zoo_graphs["googlenet"]
    root = parse(to_svg(g, level="layer", collapse="inception"))
    assert (len(boxes(root)), len(groups(root, "cluster"))) == COUNTS["googlenet", "block"]
    # one inception expanded at block level: 8 boxes in its cluster instead of one box
    root = parse(to_svg(g, level="block", expand=["inception_4a"]))
    assert (len(boxes(root)), len(groups(root, "cluster"))) == (22 - 1 + 8, 4 + 1)
    # a stage expanded at stage level falls back to block rules inside it
    root = parse(to_svg(zoo_graphs["resnet50"], level="stage", expand="layer3"))
    assert len(boxes(root)) == 8 - 1 + 2
    by_id(root, "block-layer3.bottleneck2")
    # collapse wins over a level that shows layers: the stem as one box
    root = parse(to_svg(zoo_graphs["resnet50"], level="block", collapse="stem"))
    assert len(boxes(root)) == 13 - 2 + 1


def test_unknown_collapse_name_lists_block_kinds(zoo_graphs):
    with pytest.raises(UsageError, match=r"no block kind or scope named 'bottlenek'.*"
                                         r"block kinds: bottleneck, scope"):
        to_dot(zoo_graphs["resnet50"], collapse="bottlenek")


# --------------------------------------------------------------------------- folding


@block
def unit(x, ch):
    return x.conv(ch, 3, padding=1, name="a").relu().conv(ch, 3, padding=1, name="b").relu()


@block
def cbr(x, ch):
    """A wrapper block that draws as one box."""
    return x.conv(ch, 3, padding=1, name="conv").bn().relu()


@model(input=(3, 16, 16))
def loop_net(x):
    x = unit(x, 8)                 # 3 -> 8 channels: not identical to the next ones
    for _ in range(3):             # a hand-written loop, no repeat(): folded
        x = unit(x, 8)
    x = repeat(unit, 2, x, 16)     # 8 -> 16, then 16 -> 16: only shapes of copy 2 repeat
    return x


def test_chains_of_identical_blocks_fold_and_different_ones_do_not():
    g = build(loop_net)
    assert [p[-1] for p in g.blocks] == [f"unit{i}" for i in range(1, 7)]
    root = parse(to_svg(g, level="block"))
    labels = ["".join(texts(b)) for b in boxes(root)]
    # unit5-6 come from one repeat(): folded although unit5 widens 8 -> 16 channels
    assert labels == ["input3×16×16", "unit18×16×16", "unit×38×16×16",
                      "unit×216×16×16"]
    assert len(groups(root, "folded")) == 2
    no_fold = parse(to_svg(g, level="block", fold=False))
    assert len(boxes(no_fold)) == 7


@model(input=(3, 16, 16))
def wrapper_net(x):
    x = cbr(x, 8)
    x = repeat(cbr, 3, x, 8)
    return x.maxpool(2)


def test_one_box_blocks_are_not_clusters_and_carry_their_badge():
    g = build(wrapper_net)
    for level in ("layer", "block"):
        root = parse(to_svg(g, level=level))
        assert groups(root, "cluster") == []
        labels = ["".join(texts(b)) for b in boxes(root)]
        # cbr1 (3 -> 8) differs from the repeated cbr2..4 (8 -> 8): one box, one badge
        assert labels == ["input3×16×16", "conv 3×3 + BN + ReLU8×16×16",
                          "conv 3×3 + BN + ReLU×38×16×16", "max pool 2×2/28×8×8"], level


def test_folded_figures_are_per_copy():
    g = build(loop_net)
    root = parse(to_svg(g, level="block", detail="full"))
    same, widening = groups(root, "folded")
    # two convs 3x3, 8 -> 8 channels on 16x16: 2 * (8*8*9 + 8) = 1168 params,
    # 2 * 16*16*8*8*9 = 294912 MACs, the same in every copy
    assert "".join(texts(same)) == "unit×38×16×161.17K params · 294.91K MACs"
    # unit5: 16*8*9+16 + 16*16*9+16 = 3488, unit6: 2 * 2320 = 4640 -> 8128 in all;
    # MACs 16*16*16*(8+16)*9 = 884736 and 2 * 589824 -> 2064384: differ, so totals
    assert "".join(texts(widening)) == "unit×216×16×16total 8.13K params · 2.06M MACs"


# --------------------------------------------------------------------------- fusion, detail


def test_detail_levels_label_the_stem_conv(zoo_graphs):
    g = zoo_graphs["resnet50"]
    want = {
        "compact": ["conv + BN + ReLU"],
        "standard": ["conv 7×7/2 + BN + ReLU", "64×112×112"],
        # 64*3*7*7 weights (no bias) + 2*64 BN = 9536; 112*112*64*3*49 = 118,013,952 MACs
        "full": ["conv1: ", "conv 7×7/2 + BN + ReLU", "64×112×112",
                 "9.54K params · 118.01M MACs"],
    }
    for detail, lines in want.items():
        root = parse(to_svg(g, level="layer", detail=detail))
        assert texts(by_id(root, "node-stem.conv1")) == lines


def test_fused_conv_node_and_conv_with_two_users():
    g = Graph("fused")
    g.add("input", O.Input((3, 8, 8)))
    conv = O.Conv2d(4, 3, padding=1, bias=False)
    g.add("fc1", O.FusedConv2d(conv, O.BatchNorm2d(), O.ReLU()), ["input"])
    g.add("conv2", O.Conv2d(4, 3, padding=1), ["fc1"])
    g.add("bn2", O.BatchNorm2d(), ["conv2"])
    g.add("relu2", O.ReLU(), ["bn2"])
    g.add("sum", O.Add(), ["relu2", "conv2"])   # conv2 has two users: not fused with bn2
    g.outputs = ["sum"]
    infer_shapes(g)
    root = parse(to_svg(g))
    assert [texts(b)[0] for b in boxes(root)] == [
        "input", "conv 3×3 + BN + ReLU", "conv 3×3", "BN + ReLU", "+"]
    assert {g.get("id") for g in groups(root, "skip")} == {"edge-conv2--sum"}


def test_fused_graph_draws_like_the_unfused_one(zoo_graphs):
    """fuse-conv-bn-relu turns each conv(+BN)(+ReLU) into one FusedConv2d node; the
    diagram already drew them as one box, so the boxes and their labels agree."""
    from cnnir import run_pipeline

    fused = run_pipeline(load("resnet50"), "fuse-conv-bn-relu")
    a = parse(to_svg(zoo_graphs["resnet50"], level="layer"))
    b = parse(to_svg(fused, level="layer"))
    assert [texts(g) for g in boxes(a)] == [texts(g) for g in boxes(b)]
    assert len(groups(b, "op-fused_conv2d")) == 1 + 4 * (4 + 3)


def test_op_titles_from_first_principles():
    assert op_title(O.Conv2d(8, (1, 7), stride=(1, 2), groups=2), "standard") == "conv g2 1×7/1×2"
    assert op_title(O.Conv2d(32, 3, groups=32), "standard", in_channels=32) == "dw conv 3×3"
    assert op_title(O.ConvTranspose2d(8, 2, stride=2), "standard") == "up-conv 2×2/2"
    assert op_title(O.MaxPool2d(3, 2), "compact") == "max pool"
    assert op_title(O.Upsample(2, "bilinear"), "standard") == "upsample ×2 bilinear"
    # the report's formatter (cnnir.util.human): two decimals, 999,999 rounds up a unit
    assert [number(n) for n in (156, 2416, 117600, 999_999, 25_557_032)] == [
        "156", "2.42K", "117.60K", "1.00M", "25.56M"]


@model(input=(3, 32, 32))
def tiny_unet(x):
    e1 = x.conv(8, 3, padding=1, name="e1").relu()
    e2 = e1.maxpool(2).conv(16, 3, padding=1, name="e2").relu()
    u = e2.conv_transpose(8, 2, stride=2, name="up")
    d = concat(u, e1, name="cat").conv(8, 3, padding=1, name="d1").relu()
    return d.upsample(1).conv(2, 1, name="head")


def test_unet_skip_is_a_skip_and_upsampling_named_in_legend():
    root = parse(to_svg(build(tiny_unet)))
    assert {g.get("id") for g in groups(root, "skip")} == {"edge-e1--cat"}
    assert "pooling / upsampling" in legend_words(root)


def test_unet_is_drawn_as_a_u():
    """U-Net: input + 5 contracting blocks (2 + 4 x 3 boxes: pool, two conv+ReLU) + 4
    expanding blocks (up-conv, concat, two conv+ReLU) + the 1x1 classifier = 32 boxes in
    9 clusters; the 4 concat skips join boxes of one resolution: drawn on one rank."""
    root = parse(to_svg(load("unet")))
    assert (len(boxes(root)), len(groups(root, "cluster"))) == (32, 9)
    assert len(groups(root, "skip")) == 4
    y = {g.get("id"): center(g)[1] for g in boxes(root)}
    x = {g.get("id"): center(g)[0] for g in boxes(root)}
    for k in (1, 2, 3, 4):
        enc, dec = f"node-contract_{k}.conv2", f"node-expand_{k}.concat"
        assert abs(y[enc] - y[dec]) < 1 and x[dec] > x[enc]
        if k > 1:
            # the decoder rises: its convs lie above its concat (SVG y grows downwards),
            # and the up-conv arrives beside the concat
            assert y[f"node-expand_{k}.conv2"] < y[f"node-expand_{k}.conv1"] < y[dec]
            assert abs(y[f"node-expand_{k}.upconv"] - y[dec]) < 1
    assert max(y.values()) == y["node-contract_5.conv2"]       # the bottom of the U
    # the top row runs from the last concat to the output, the up-conv below it
    top = ["node-expand_1.concat", "node-expand_1.conv1", "node-expand_1.conv2",
           "node-classifier"]
    assert all(abs(y[t] - y[top[0]]) < 1 for t in top)
    assert [x[t] for t in top] == sorted(x[t] for t in top)
    assert y["node-expand_1.upconv"] > y[top[0]]


# --------------------------------------------------------------------------- determinism


def test_same_input_gives_byte_identical_dot_and_svg():
    a = to_dot(load("googlenet"), level="layer", detail="full")
    b = to_dot(load("googlenet"), level="layer", detail="full")
    assert a == b
    assert to_svg(load("resnet50")) == to_svg(load("resnet50"))


def test_byte_identical_across_processes(tmp_path):
    """Different hash seeds and processes: DOT, SVG and PDF bytes agree."""
    code = ("import sys; from cnnir import load; from cnnir.backends.dot import render\n"
            "g = load('resnet18', input=(3, 64, 64))\n"
            "for ext in ('dot', 'svg', 'pdf'):\n"
            "    render(g, sys.argv[1] + '.' + ext, level='block', detail='full')\n")
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / seed)], cwd=REPO, check=True,
                       env=dict(os.environ, PYTHONHASHSEED=seed))
    for ext in ("dot", "svg", "pdf"):
        assert (tmp_path / f"1.{ext}").read_bytes() == (tmp_path / f"2.{ext}").read_bytes()


# --------------------------------------------------------------------------- files


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_size_in(svg: str) -> tuple[float, float]:
    m = re.search(r'<svg width="([0-9.]+)pt" height="([0-9.]+)pt"', svg)
    return float(m.group(1)) / 72, float(m.group(2)) / 72


def test_pdf_and_png_are_real_drawings(tmp_path):
    g = load("resnet18", input=(3, 64, 64))
    w_in, h_in = svg_size_in(to_svg(g, level="block"))
    png = (tmp_path / "r.png")
    render(g, str(png), level="block", dpi=100)
    w, h = png_size(png.read_bytes())
    # the same drawing as the SVG, at 100 pixels per inch
    assert abs(w - w_in * 100) <= 2 and abs(h - h_in * 100) <= 2
    assert png.stat().st_size > 10_000
    pdf = (tmp_path / "r.pdf")
    render(g, str(pdf), level="block")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    box = [float(v) for v in re.search(rb"/MediaBox \[ ?([0-9. ]+)\]", data).group(1).split()]
    assert abs(box[2] - w_in * 72) <= 1 and abs(box[3] - h_in * 72) <= 1
    # fonts are embedded: every font descriptor carries its font program, no Type 3
    descriptors = re.findall(rb"/Type /FontDescriptor(.*?)>>", data, re.S)
    assert descriptors and all(re.search(rb"/FontFile[23]? ", d) for d in descriptors)
    assert b"/Type3" not in data


def test_width_sets_the_drawing_width(tmp_path):
    g = load("resnet50")
    for width, inches in (("3.3in", 3.3), ("175mm", 175 / 25.4), (6.9, 6.9)):
        w, _ = svg_size_in(to_svg(g, level="stage", rankdir="LR", width=width))
        assert abs(w - inches) < 0.02, width
    assert parse_width("240pt") == pytest.approx(240 / 72)
    with pytest.raises(UsageError, match="--width must look like 3.3in"):
        parse_width("wide")


# --------------------------------------------------------------------------- CLI


def test_cli_default_output_is_model_svg(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["draw", "lenet5"]) == 0
    parse((tmp_path / "lenet5.svg").read_text())
    assert "wrote lenet5.svg" in capsys.readouterr().err


def test_cli_reports_the_text_size_at_a_column_width(tmp_path, capsys):
    out = tmp_path / "f.svg"
    assert main(["draw", "resnet50", "--level", "stage", "--width", "3.3in", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"wrote .*f\.svg \(3\.3\d x [0-9.]+ in, text at [0-9.]+ to [0-9.]+ pt\)", err)


@pytest.mark.parametrize("argv,message", [
    (["-o", "fig.jpg"], "cannot tell the image format of 'fig.jpg'"),
    (["--width", "3.3 inches"], "--width must look like"),
    (["--collapse", "nope"], "no block kind or scope named 'nope'"),
])
def test_cli_user_errors_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["draw", "lenet5", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_without_dot_the_dot_file_is_written_and_exit_is_2(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path / "no-bin"))  # no dot on this PATH
    run = subprocess.run([sys.executable, "-m", "cnnir", "draw", "lenet5", "-o", "fig.png"],
                         env=dict(env, PYTHONPATH=REPO), cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert "apt-get install graphviz" in lines[0] and "brew install graphviz" in lines[0]
    assert "dot -Tpng fig.dot -o fig.png" in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["fig.dot"]
    assert (tmp_path / "fig.dot").read_text().startswith('digraph "lenet5" {')
    # a .dot asked for needs no Graphviz at all
    run = subprocess.run([sys.executable, "-m", "cnnir", "draw", "lenet5", "-o", "only.dot"],
                         env=dict(env, PYTHONPATH=REPO), cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0 and (tmp_path / "only.dot").exists()


def test_without_dot_python_api_raises_and_notebook_falls_back(monkeypatch):
    g = load("lenet5")
    assert parse(g._repr_svg_()).tag == f"{SVG}svg"
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendError, match="apt-get install graphviz"):
        to_svg(g)
    assert g._repr_svg_() is None


def test_drawing_imports_no_heavy_library():
    code = ("import sys, cnnir.backends.dot as d, cnnir; d.to_dot(cnnir.load('googlenet'));"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'graphviz')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- themes

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}


def _linear(hex_colour: str) -> np.ndarray:
    c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(lin: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ np.clip(lin, 0, 1)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_paper_theme_reads_in_greyscale_and_for_colour_blind_readers():
    fills = {f: c for f, c in THEMES["paper"].fills.items() if f not in ("merge", "reg")}
    assert len(set(fills.values())) == len(fills)
    lightness = sorted(_lab(_linear(c))[0] for c in fills.values())
    # greyscale print: each family its own grey, at least 4.5 L* apart
    assert min(b - a for a, b in zip(lightness, lightness[1:])) >= 4.5
    for name, m in [("normal", np.eye(3))] + [(k, np.array(v)) for k, v in CVD.items()]:
        for (fa, a), (fb, b) in itertools.combinations(fills.items(), 2):
            d = np.linalg.norm(_lab(m @ _linear(a)) - _lab(m @ _linear(b)))
            assert d >= 8, (name, fa, fb, d)


def test_every_op_family_has_a_style_in_every_theme():
    families = {cls.family for cls in O.OP_TYPES.values()} | {"block"}
    assert families <= set(FAMILY_NAMES)
    for theme in THEMES.values():
        assert families <= set(theme.fills)


def test_mono_theme_uses_no_colour_and_slides_is_larger(zoo_graphs):
    dot = to_dot(zoo_graphs["resnet50"], level="block", theme="mono")
    colours = set(re.findall(r'#([0-9A-Fa-f]{6})', dot))
    assert colours and all(c[0:2] == c[2:4] == c[4:6] for c in colours)
    paper = svg_size_in(to_svg(zoo_graphs["resnet50"], level="stage", legend="none"))
    slides = svg_size_in(to_svg(zoo_graphs["resnet50"], level="stage", theme="slides",
                                legend="none"))
    assert slides[0] > paper[0] * 1.3 and slides[1] > paper[1] * 1.3


# --------------------------------------------------------------------------- legend, title


def extent(el: ET.Element) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of an element's polygons, paths and texts (a text's end at half
    an em per character: an upper bound for Helvetica's lower case)."""
    xs: list[float] = []
    ys: list[float] = []
    for sub in el.iter():
        if sub.tag in (f"{SVG}polygon", f"{SVG}path"):
            nums = [float(v) for v in re.findall(r"-?[0-9.]+", sub.get("points") or sub.get("d"))]
            xs += nums[0::2]
            ys += nums[1::2]
        elif sub.tag == f"{SVG}text":
            x, size = float(sub.get("x")), float(sub.get("font-size"))
            xs += [x, x + len(sub.text or "") * size * 0.5]
            ys.append(float(sub.get("y")))
    return min(xs), min(ys), max(xs), max(ys)


def test_legend_goes_below_above_beside_or_nowhere():
    """LeNet-5 is one column of boxes: a legend below or above it is centred on that
    column (within 10 pt) and lies wholly below / above every box; beside it (the old
    ``right``) it makes the figure wider; ``none`` draws none."""
    g = load("lenet5")
    sizes = {}
    for place in ("bottom", "top", "right"):
        svg = to_svg(g, legend=place)
        root = parse(svg)
        sizes[place] = svg_size_in(svg)
        (leg,) = groups(root, "legend")
        lx0, ly0, lx1, ly1 = extent(leg)
        bx = [extent(b) for b in boxes(root)]
        col = (min(b[0] for b in bx) + max(b[2] for b in bx)) / 2
        if place == "bottom":
            assert ly0 > max(b[3] for b in bx)
        elif place == "top":
            assert ly1 < min(b[1] for b in bx)
        else:
            assert lx0 > max(b[2] for b in bx)
        if place != "right":
            assert abs((lx0 + lx1) / 2 - col) < 10, place
        assert legend_words(root) == {"input", "convolution", "pooling", "fully connected"}
    assert sizes["right"][0] > sizes["bottom"][0] + 0.5
    assert groups(parse(to_svg(g, legend="none")), "legend") == []
    assert to_dot(g, legend=True) == to_dot(g) and to_dot(g, legend=False) == to_dot(
        g, legend="none")
    with pytest.raises(UsageError, match="unknown legend place 'left'"):
        to_dot(g, legend="left")


def test_title_is_centred_above_the_drawing_and_legend():
    root = parse(to_svg(load("lenet5"), title="LeNet-5 <1998>", legend="top"))
    (title,) = [t for t in root.iter(f"{SVG}text") if t.text == "LeNet-5 <1998>"]
    (leg,) = groups(root, "legend")
    assert float(title.get("y")) < extent(leg)[1]
    assert title.get("font-weight") == "bold"
    assert "LeNet" not in "".join(t.text or "" for t in parse(to_svg(load("lenet5"))).iter(
        f"{SVG}text"))


def test_cli_legend_and_title(tmp_path):
    out = tmp_path / "f.svg"
    assert main(["draw", "lenet5", "--legend", "none", "--title", "LeNet", "-o", str(out)]) == 0
    root = parse(out.read_text())
    assert groups(root, "legend") == []
    assert "LeNet" in [t.text for t in root.iter(f"{SVG}text")]


# --------------------------------------------------------------------------- stages


def test_googlenet_stages_group_its_modules_as_table_1_does(zoo_graphs):
    """Stage level: the stem, inception3 (3a, 3b), inception4 (4a-4e), inception5
    (5a, 5b), the pools between them; node and scope names are the IR's own."""
    g = zoo_graphs["googlenet"]
    assert {p[0]: b.stage for p, b in g.blocks.items() if b.stage} == {
        "inception_3a": "inception3", "inception_3b": "inception3",
        **{f"inception_4{c}": "inception4" for c in "abcde"},
        "inception_5a": "inception5", "inception_5b": "inception5"}
    assert "inception_4a/b1_1x1" in g and not any(n.startswith("inception4") for n in g.nodes())
    root = parse(to_svg(g, level="stage"))
    assert [b.get("id") for b in boxes(root)] == [
        "node-input", "block-stem", "block-inception3", "node-pool3", "block-inception4",
        "node-pool4", "block-inception5", "node-pool5", "node-fc", "node-softmax1"]
    for name, n, shape in (("inception3", 2, "480×28×28"), ("inception4", 5, "832×14×14"),
                           ("inception5", 2, "1024×7×7")):
        box = by_id(root, f"block-{name}")
        assert texts(box) == [name, f"{n} × inception", shape]
        assert "stage" in box.get("class").split()
    # block level: the stages frame their modules
    root = parse(to_svg(g, level="block"))
    assert "stage" in by_id(root, "cluster-inception4").get("class").split()
    x0, y0, x1, y1 = extent(by_id(root, "cluster-inception4"))
    inside = {b.get("id") for b in boxes(root)
              if x0 < center(b)[0] < x1 and y0 < center(b)[1] < y1}
    assert inside == {f"block-inception4.inception_4{c}" for c in "abcde"}
    # a stage is expanded by its name, a module by its own
    assert len(boxes(parse(to_svg(g, level="stage", expand="inception4")))) == 10 - 1 + 5
    assert len(boxes(parse(to_svg(g, level="block", expand="inception_4a")))) == 22 - 1 + 8


def test_every_level_of_googlenet_and_bn_inception_differs(zoo_graphs):
    for g in (zoo_graphs["googlenet"], load("bn_inception")):
        counts = [len(boxes(parse(to_svg(g, level=lv)))) for lv in ("layer", "block", "stage")]
        assert counts[0] > counts[1] > counts[2], (g.name, counts)


# --------------------------------------------------------------------------- layout


def test_googlenet_modules_hang_from_one_straight_column(zoo_graphs):
    """The main line (the longest way through each module) is one Graphviz group: every
    concat and every pool between the modules sit on one vertical line, no zig-zag."""
    root = parse(to_svg(zoo_graphs["googlenet"], level="layer"))
    xs = [center(b)[0] for b in boxes(root)
          if re.fullmatch(r"node-(inception_\w+\.concat1|pool[345])", b.get("id"))]
    assert len(xs) == 9 + 3 and max(xs) - min(xs) < 1


def test_unet_encoder_is_straight_and_its_levels_are_not_stretched():
    root = parse(to_svg(load("unet"), level="layer"))
    c = {b.get("id")[len("node-"):]: center(b) for b in boxes(root)}
    enc = [n for n in c if n.startswith("contract_")]
    assert max(c[n][0] for n in enc) - min(c[n][0] for n in enc) < 1
    for k in (2, 3, 4, 5):   # pool -> conv1 -> conv2: equal steps inside each level
        y = [c[f"contract_{k}.{n}"][1] for n in ("pool", "conv1", "conv2")]
        assert abs((y[1] - y[0]) - (y[2] - y[1])) < 1, k
    # the edge into contract_5 comes straight down, clear of its cluster's label
    edge = by_id(root, "edge-contract_4.conv2--contract_5.pool")
    x0, _, x1, _ = extent(edge)
    (label,) = [t for t in by_id(root, "cluster-contract_5").iter(f"{SVG}text")]
    assert x1 - x0 < 5   # arrowhead width only
    assert float(label.get("x")) + len(label.text) * 8 * 0.6 < x0


# --------------------------------------------------------------------------- themes, badges


def _contrast_with_black(hex_colour: str) -> float:
    lum = float(np.array([0.2126, 0.7152, 0.0722]) @ _linear(hex_colour))
    return (lum + 0.05) / 0.05


def test_mono_theme_fills_are_light_and_skips_differ_from_cluster_borders(zoo_graphs):
    mono = THEMES["mono"]
    fills = {f: c for f, c in mono.fills.items() if f not in ("merge", "reg")}
    assert len(set(fills.values())) == len(fills)
    # black bold text on the darkest fill: at least 7:1 (WCAG AAA)
    assert min(_contrast_with_black(c) for c in fills.values()) >= 7
    lightness = sorted(_lab(_linear(c))[0] for c in fills.values())
    assert min(b - a for a, b in zip(lightness, lightness[1:])) >= 3
    dot = to_dot(zoo_graphs["resnet50"], level="layer", theme="mono")
    skips = [ln for ln in dot.splitlines() if 'class="skip"' in ln]
    assert skips and all('style="dashed"' in ln and 'arrowhead="onormal"' in ln for ln in skips)
    cluster_styles = set(re.findall(r'^\s*style="([^"]*)";', dot, re.M))
    assert cluster_styles and not any("dashed" in st for st in cluster_styles)


def test_a_folded_box_has_one_badge_with_a_gap_before_it(zoo_graphs):
    dot = to_dot(zoo_graphs["resnet152"], level="block", theme="slides")
    (line,) = [ln for ln in dot.splitlines()
               if ln.lstrip().startswith('"layer3/bottleneck2/" [')]
    assert "<b>bottleneck</b></td><td width=\"6\"></td>" in line and ">×35<" in line
    assert "36" not in line


def test_figures_use_the_reports_numbers():
    """LeNet-5 c1: 6 maps of 28x28, 5x5 kernel on one channel: 6*28*28*25 = 117,600
    MACs; the figure and the report both print 117.60K."""
    from cnnir import report

    root = parse(to_svg(load("lenet5"), detail="full"))
    assert "156 params · 117.60K MACs" in texts(by_id(root, "node-c1"))
    assert "117.60K" in report(load("lenet5")).render("md")


def test_cli_warns_when_text_is_below_5_pt(tmp_path, capsys):
    out = tmp_path / "f.svg"
    assert main(["draw", "googlenet", "--width", "3.3cm", "-o", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    small, large = map(float, re.search(r"text at ([0-9.]+) to ([0-9.]+) pt", err[0]).groups())
    assert len(err) == 2 and small < 5
    assert err[1] == (f"cnnir draw: warning: text at {small:.1f} to {large:.1f} pt is below 5 pt "
                      "and hard to read in print; draw fewer or narrower boxes (--level block "
                      "or stage, --detail compact) or give a larger --width")
    assert main(["draw", "lenet5", "--width", "3.3in", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_lr_legend_goes_below_or_above_the_row():
    g = load("lenet5")
    for place in ("bottom", "top"):
        root = parse(to_svg(g, rankdir="LR", legend=place))
        (leg,) = groups(root, "legend")
        _, ly0, _, ly1 = extent(leg)
        bx = [extent(b) for b in boxes(root)]
        if place == "bottom":
            assert ly0 > max(b[3] for b in bx)
        else:
            assert ly1 < min(b[1] for b in bx)
