"""Zoo output shapes against the published tables, row by row (REFERENCE.md), and the
standalone ``examples/*.py`` against the zoo models of the same name.

Shapes are written as in the papers, ``HxWxC``; the IR's are ``(C, H, W)``.
"""

from __future__ import annotations

import pathlib

import pytest

import cnnir
from cnnir import zoo

ROOT = pathlib.Path(__file__).resolve().parents[1]


def hwc(text: str) -> tuple[int, ...]:
    """``"56x56x192"`` -> ``(192, 56, 56)``; a plain ``"1000"`` -> ``(1000,)``."""
    dims = tuple(int(d) for d in text.split("x"))
    return dims if len(dims) == 1 else (dims[2], dims[0], dims[1])


def first_principles(size: int, kernel: int, stride: int = 1, pad: int = 0,
                     ceil: bool = False) -> int:
    """``floor((I + 2P - F) / S) + 1`` (``ceil`` with ceil_mode), REFERENCE.md."""
    num = size + 2 * pad - kernel
    return (-(-num // stride) if ceil else num // stride) + 1


# --------------------------------------------------------------------------- GoogLeNet

GOOGLENET_TABLE_1 = [
    # paper row, IR node, output size (HxWxC)
    ("conv 7x7/2", "stem/conv1", "112x112x64"),
    ("max pool 3x3/2", "stem/pool1", "56x56x64"),
    ("conv 1x1 (3x3 reduce)", "stem/conv2_reduce", "56x56x64"),
    ("conv 3x3/1", "stem/conv2", "56x56x192"),
    ("max pool 3x3/2", "stem/pool2", "28x28x192"),
    ("inception (3a)", "inception_3a/concat1", "28x28x256"),
    ("inception (3b)", "inception_3b/concat1", "28x28x480"),
    ("max pool 3x3/2", "pool3", "14x14x480"),
    ("inception (4a)", "inception_4a/concat1", "14x14x512"),
    ("inception (4b)", "inception_4b/concat1", "14x14x512"),
    ("inception (4c)", "inception_4c/concat1", "14x14x512"),
    ("inception (4d)", "inception_4d/concat1", "14x14x528"),
    ("inception (4e)", "inception_4e/concat1", "14x14x832"),
    ("max pool 3x3/2", "pool4", "7x7x832"),
    ("inception (5a)", "inception_5a/concat1", "7x7x832"),
    ("inception (5b)", "inception_5b/concat1", "7x7x1024"),
    ("avg pool 7x7/1", "pool5", "1x1x1024"),
    ("dropout (40%)", "dropout1", "1x1x1024"),
    ("linear", "fc", "1000"),
    ("softmax", "softmax1", "1000"),
]

#: Table 1's #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
GOOGLENET_BRANCHES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


@pytest.fixture(scope="module")
def googlenet():
    return cnnir.load("googlenet")


@pytest.mark.parametrize("row,node,size", GOOGLENET_TABLE_1,
                         ids=[f"{i:02d}-{r[1]}" for i, r in enumerate(GOOGLENET_TABLE_1)])
def test_googlenet_table_1(googlenet, row, node, size):
    assert googlenet.shape(node) == hwc(size), row


@pytest.mark.parametrize("module", GOOGLENET_BRANCHES)
def test_googlenet_inception_branches(googlenet, module):
    c1, c3r, c3, c5r, c5, proj = GOOGLENET_BRANCHES[module]
    p = f"inception_{module}/"
    h = googlenet.shape(p + "concat1")[1]
    got = [googlenet.shape(p + n) for n in ("b1_1x1", "b2_reduce", "b2_3x3", "b3_reduce",
                                            "b3_5x5", "b4_pool", "b4_proj")]
    cin = googlenet.shape(googlenet.inputs(p + "b1_1x1")[0])[0]
    assert got == [(c, h, h) for c in (c1, c3r, c3, c5r, c5, cin, proj)]
    assert c1 + c3 + c5 + proj == googlenet.shape(p + "concat1")[0]


def test_googlenet_sizes_from_first_principles():
    s = first_principles(224, 7, 2, 3)  # 112
    s = first_principles(s, 3, 2, ceil=True)  # 56
    assert s == 56
    s = first_principles(s, 3, 2, ceil=True)  # 28
    s = first_principles(s, 3, 2, ceil=True)  # 14
    s = first_principles(s, 3, 2, ceil=True)  # 7
    assert (s, first_principles(s, 7, 1)) == (7, 1)
    # without ceil_mode the first pool would give 55 and the table could not hold
    assert first_principles(112, 3, 2) == 55


# --------------------------------------------------------------------------- ResNet

RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}


@pytest.mark.parametrize("depth", sorted(RESNET_BLOCKS))
def test_resnet_stages(depth):
    g = cnnir.load(f"resnet{depth}")
    bottleneck = depth >= 50
    unit = "bottleneck" if bottleneck else "basic"
    assert g.shape("stem/conv1") == hwc("112x112x64")
    assert g.shape("stem/maxpool") == hwc("56x56x64")
    widths = (256, 512, 1024, 2048) if bottleneck else (64, 128, 256, 512)
    for stage, (size, width, count) in enumerate(
            zip((56, 28, 14, 7), widths, RESNET_BLOCKS[depth]), start=1):
        blocks = [p for p in g.blocks if len(p) == 2 and p[0] == f"layer{stage}"]
        assert blocks == [(f"layer{stage}", f"{unit}{i}") for i in range(1, count + 1)]
        for b in blocks:  # every block of the stage ends at the stage's size
            last = [n for n in g.nodes() if g.scope(n) == b][-1]
            assert g.shape(last) == (width, size, size), (depth, b)
        # the stride-2 block keeps its input size on the first 1x1 (v1.5: stride on the 3x3)
        first = f"layer{stage}/{unit}1/"
        if bottleneck:
            assert g.shape(first + "conv1")[1] == (56 if stage == 1 else 2 * size)
            assert g.shape(first + "conv3") == (width, size, size)
        assert g.shape(first + "add1") == (width, size, size)
        # the repeat record: blocks 2..n are one group of n - 1
        if count > 1:
            reps = [g.blocks[b].repeat for b in blocks[1:]]
            assert [r[1:] for r in reps] == [(i, count - 1) for i in range(count - 1)]
            assert len({r[0] for r in reps}) == 1
    assert g.shape("avgpool") == (widths[-1], 1, 1)
    assert g.shape("fc") == (1000,)


def test_resnet_projection_shortcuts_where_shapes_change():
    g = cnnir.load("resnet50")
    proj = sorted(n.split("/")[0] + "/" + n.split("/")[1] for n in g.nodes()
                  if n.endswith("downsample_conv"))
    assert proj == [f"layer{i}/bottleneck1" for i in range(1, 5)]
    assert [g.op(f"layer{i}/bottleneck1/downsample_conv").stride for i in range(1, 5)] == [
        (1, 1), (2, 2), (2, 2), (2, 2)]
    g = cnnir.load("resnet18")  # basic blocks: layer1 keeps 64 channels, identity shortcut
    assert not any(n.startswith("layer1/") and n.endswith("downsample_conv") for n in g.nodes())


# --------------------------------------------------------------------------- VGG

VGG_CONVS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG_BLOCKS = [("224x224x64", "112x112x64"), ("112x112x128", "56x56x128"),
              ("56x56x256", "28x28x256"), ("28x28x512", "14x14x512"), ("14x14x512", "7x7x512")]


@pytest.mark.parametrize("name", [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")])
def test_vgg_blocks(name):
    depth = int(name[3:5])
    g = cnnir.load(name)
    for b, ((conv, pool), n) in enumerate(zip(VGG_BLOCKS, VGG_CONVS[depth]), start=1):
        convs = [x for x in g.nodes() if g.scope(x) == (f"block{b}",)
                 and g.op(x).kind == "conv2d"]
        assert convs == [f"block{b}/conv{b}_{i}" for i in range(1, n + 1)]
        assert all(g.shape(c) == hwc(conv) for c in convs)
        assert g.shape(f"block{b}/pool{b}") == hwc(pool)
        bns = [x for x in g.nodes() if g.scope(x) == (f"block{b}",)
               and g.op(x).kind == "batchnorm2d"]
        assert len(bns) == (n if name.endswith("_bn") else 0)
    assert sum(VGG_CONVS[depth]) + 3 == depth  # weight layers: convs + 3 FC
    assert [g.shape(n) for n in ("flatten1", "fc6", "fc7", "fc8")] == [
        (7 * 7 * 512,), (4096,), (4096,), (1000,)]


# --------------------------------------------------------------------------- LeNet, AlexNet


def test_lenet5():
    g = cnnir.load("lenet5")
    assert g.input_shape == (1, 32, 32)
    assert [g.shape(n) for n in ("c1", "s2", "c3", "s4", "flatten1", "f5", "f6", "output")] == [
        hwc("28x28x6"), hwc("14x14x6"), hwc("10x10x16"), hwc("5x5x16"), (400,), (120,), (84,),
        (10,)]


def test_alexnet_torchvision_layout_from_first_principles():
    c1 = first_principles(224, 11, 4, 2)  # (224 + 4 - 11) // 4 + 1 = 55
    p1 = first_principles(c1, 3, 2)  # 27
    c2 = first_principles(p1, 5, 1, 2)  # 27
    p2 = first_principles(c2, 3, 2)  # 13
    c3 = first_principles(p2, 3, 1, 1)  # 13
    p3 = first_principles(c3, 3, 2)  # 6
    assert (c1, p1, c2, p2, c3, p3) == (55, 27, 27, 13, 13, 6)
    g = cnnir.load("alexnet")
    expected = {
        "conv1": (64, c1, c1), "maxpool1": (64, p1, p1), "conv2": (192, c2, c2),
        "maxpool2": (192, p2, p2), "conv3": (384, c3, c3), "conv4": (256, c3, c3),
        "conv5": (256, c3, c3), "maxpool3": (256, p3, p3), "adaptpool1": (256, 6, 6),
        "flatten1": (9216,), "fc1": (4096,), "fc2": (4096,), "fc3": (1000,),
    }
    assert {n: g.shape(n) for n in expected} == expected


def test_alexnet_original_227_input_gives_the_paper_sizes():
    """The paper's 227 input without padding: (227 - 11) / 4 + 1 = 55 exactly."""
    g = cnnir.load("alexnet", input="3x227x227")
    assert first_principles(227, 11, 4) == 55
    assert g.shape("conv1")[1:] == (56, 56)  # torchvision's padding 2 adds one row
    assert g.shape("maxpool3") == (256, 6, 6)


# --------------------------------------------------------------------------- every model


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_builds_and_says_what_it_is(name):
    g = cnnir.load(name)
    assert g.name == name
    assert all(g.meta(n)["shape"] is not None for n in g.nodes())
    assert zoo.describe(name)


# --------------------------------------------------------------------------- examples


def _example_twins() -> list[tuple[str, str]]:
    """(example file, zoo name) for every example whose model has a zoo namesake."""
    from cnnir.frontends.dsl import load_file

    out = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        name = load_file(str(path)).name
        if name in zoo.MODELS:
            out.append((path.name, name))
    return out


EXAMPLES = _example_twins()


def test_the_classic_examples_have_zoo_twins():
    assert {"alexnet.py", "googlenet.py", "lenet5.py", "resnet50.py", "vgg16.py"} <= {
        e for e, _ in EXAMPLES}


@pytest.mark.parametrize("example,name", EXAMPLES, ids=[e for e, _ in EXAMPLES])
def test_examples_match_the_zoo(example, name):
    """Same ops with the same attributes, in the same order, with the same shapes."""
    ex = cnnir.load(str(ROOT / "examples" / example))
    ref = cnnir.load(name)
    assert ex.input_shape == ref.input_shape
    seq = [(ex.op(n), ex.shape(n)) for n in ex.nodes()]
    assert seq == [(ref.op(n), ref.shape(n)) for n in ref.nodes()]
    assert [ex.shape(o) for o in ex.outputs] == [ref.shape(o) for o in ref.outputs]
