"""The course-notes architectures of issue 17 against their papers' own figures.

AlexNet as published (Caffe's reference model), the CIFAR ResNets (6n+2), the
CIFAR DenseNets (Table 2), MobileNet v1 (Tables 1, 2, 6, 7), SqueezeNet 1.1 and
BN-Inception.  Totals are checked three ways: the papers' (rounded) figures, exact
integers recomputed here from the architecture descriptions with the textbook
formulas (independently of the DSL and the passes), and the passes' own counts.
Where a paper's table disagrees with first principles, the test says why.
"""

from __future__ import annotations

import pytest
import torch

from cnnir import load, zoo
from cnnir import ops as O
from cnnir.analysis import analyze
from cnnir.errors import CnnirError
from cnnir.frontends.torch_import import from_torch as cnnir_from_torch
from cnnir.zoo.densenet_cifar import densenet_cifar
from cnnir.zoo.fractalnet import fractalnet_cifar
from cnnir.zoo.googlenet import googlenet_aux
from cnnir.zoo.mobilenet_v1 import mobilenet_v1_any
from cnnir.zoo.resnet_cifar import resnet_cifar_n


def of_kind(g, cls):
    return [n for n in g.nodes() if isinstance(g.op(n), cls)]


def conv(h_out, cin, cout, k, groups=1, bias=False):
    """(params, MACs) of a k x k conv producing h_out x h_out x cout."""
    w = cout * (cin // groups) * k * k
    return w + (cout if bias else 0), w * h_out * h_out


def bn(c):
    return 2 * c, 0  # gamma and beta; the running statistics are buffers


def fc(fin, fout):
    return fin * fout + fout, fin * fout


def total(*costs):
    return tuple(map(sum, zip(*costs)))


def block_out(g, prefix):
    """Output shape of the block or scope ``prefix`` (its last node in topological order)."""
    inside = [n for n in g.nodes() if n.startswith(prefix + "/")]
    assert inside, f"no scope {prefix}"
    return tuple(g.shape(inside[-1]))


# --------------------------------------------------------------------------- AlexNet

#: Caffe's bvlc_alexnet, layer by layer: (output CxHxW at 227, params)
ALEXNET_CAFFE = {
    "features/conv1": ((96, 55, 55), 96 * 3 * 11 * 11 + 96),           # 34,944
    "features/pool1": ((96, 27, 27), 0),
    "features/conv2": ((256, 27, 27), 256 * 48 * 5 * 5 + 256),         # 307,456: 2 groups
    "features/pool2": ((256, 13, 13), 0),
    "features/conv3": ((384, 13, 13), 384 * 256 * 3 * 3 + 384),        # 885,120: both GPUs
    "features/conv4": ((384, 13, 13), 384 * 192 * 3 * 3 + 384),        # 663,936: 2 groups
    "features/conv5": ((256, 13, 13), 256 * 192 * 3 * 3 + 256),        # 442,624: 2 groups
    "features/pool5": ((256, 6, 6), 0),
    "classifier/fc6": ((4096,), 9216 * 4096 + 4096),
    "classifier/fc7": ((4096,), 4096 * 4096 + 4096),
    "classifier/fc8": ((1000,), 4096 * 1000 + 1000),
}


def test_alexnet_original_is_caffes_reference_model():
    a = analyze(load("alexnet_original"))
    g = a.graph
    assert tuple(g.input_shape) == (3, 227, 227)
    for name, (shape, params) in ALEXNET_CAFFE.items():
        assert (tuple(g.shape(name)), g.meta(name)["params"]["params"]) == (shape, params), name
    assert sum(p for _, p in ALEXNET_CAFFE.values()) == a.params == 60_965_224
    # the two-GPU split: conv2, conv4 and conv5 see only their own GPU's half
    assert {n: g.op(n).groups for n in of_kind(g, O.Conv2d)} == {
        "features/conv1": 1, "features/conv2": 2, "features/conv3": 1,
        "features/conv4": 2, "features/conv5": 2}
    # grouping halves those layers' weights: one tower would have 60,965,224 +
    # (614,400 - 307,200) + (1,327,104 - 663,552) + (884,736 - 442,368) params
    macs = total(*(conv(55, 3, 96, 11), conv(27, 96, 256, 5, 2), conv(13, 256, 384, 3),
                   conv(13, 384, 384, 3, 2), conv(13, 384, 256, 3, 2),
                   fc(9216, 4096), fc(4096, 4096), fc(4096, 1000)))[1]
    assert a.macs == macs == 724_406_816
    # LRN after the ReLUs of conv1 and conv2, then the pool (Section 3.5)
    assert [(g.inputs(n)[0], list(g.users(n))) for n in of_kind(g, O.LocalResponseNorm)] == [
        ("features/relu1", ["features/pool1"]), ("features/relu2", ["features/pool2"])]


def test_alexnet_original_lrn_paper_and_caffe():
    """Paper: k = 2, n = 5, alpha = 1e-4 on the plain sum of squares; PyTorch, ONNX and
    Caffe divide alpha by n, so the paper's is 5e-4 here.  Caffe's model: k = 1, 1e-4."""
    paper = load("alexnet_original")
    assert {paper.op(n) for n in of_kind(paper, O.LocalResponseNorm)} == {
        O.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)}
    caffe = zoo.get("alexnet_original").build(caffe=True)
    assert {caffe.op(n) for n in of_kind(caffe, O.LocalResponseNorm)} == {
        O.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)}


def test_alexnet_original_at_the_papers_224():
    """The paper says 224x224 input and 55x55 after conv1; (224 - 11) / 4 + 1 = 54.25
    floors to 54, so 55 needs 227.  Caffe's rounding-up pools hide it afterwards
    ((54 - 3) / 2 rounds up to 26: 27 again), so only conv1 differs."""
    g = load("alexnet_original", input="3x224x224")
    assert tuple(g.shape("features/conv1")) == (96, 54, 54)
    assert tuple(g.shape("features/pool1")) == (96, 27, 27)
    assert analyze(g).params == 60_965_224


def test_alexnet_original_matches_plain_pytorch():
    nn = torch.nn
    with torch.device("meta"):
        ref = nn.Sequential(
            nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(96, 256, 5, padding=2, groups=2),
            nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(),
            nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))
        y = ref(torch.empty(1, 3, 227, 227))
    assert sum(p.numel() for p in ref.parameters()) == 60_965_224
    assert tuple(y.shape) == (1, 1000)


# --------------------------------------------------------------------------- CIFAR ResNet

#: Section 4.2: depth 6n + 2 and the paper's parameter counts (millions, rounded)
RESNET_CIFAR = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def resnet_cifar_costs(depth, option="B"):
    """(params, MACs) from Section 4.2: 3x3 conv 16; 2n 3x3 convs at each of 16, 32, 64
    filters on 32, 16, 8 maps; BN after each conv; 2 projections (option B); FC 64 -> 10."""
    n = (depth - 2) // 6
    parts = [conv(32, 3, 16, 3), bn(16)]
    cin = 16
    for planes, side in ((16, 32), (32, 16), (64, 8)):
        for _ in range(2 * n):
            parts += [conv(side, cin, planes, 3), bn(planes)]
            cin = planes
        if planes != 16 and option == "B":
            parts += [conv(side, planes // 2, planes, 1), bn(planes)]
    return total(*parts, fc(64, 10))


@pytest.mark.parametrize("depth", sorted(RESNET_CIFAR))
def test_resnet_cifar_6n_plus_2(depth):
    a = analyze(load(f"resnet{depth}_cifar"))
    g = a.graph
    n = (depth - 2) // 6
    assert (a.params, a.macs) == resnet_cifar_costs(depth)
    # 6n + 2 weighted layers: the 3x3 convs and the FC (the projections are shortcuts)
    weighted = [x for x in of_kind(g, O.Conv2d) if g.op(x).kernel == (3, 3)]
    assert len(weighted) + len(of_kind(g, O.Linear)) == depth
    assert [block_out(g, f"layer{i}") for i in (1, 2, 3)] == [
        (16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert len(of_kind(g, O.Add)) == 3 * n
    assert tuple(g.shape(g.outputs[0])) == (10,)
    # The paper's counts are option A's (zero-padded identity shortcuts, no
    # parameters: "we use identity shortcuts in all cases"); option B's two 1x1
    # projections and their BNs add 16*32 + 32*64 + 2*(32 + 64) = 2,752 params,
    # enough to round ResNet-32 to 0.47M and ResNet-56 to 0.86M.
    option_a = resnet_cifar_costs(depth, "A")[0]
    assert a.params - option_a == 2_752
    paper = RESNET_CIFAR[depth]
    digits = 1 if paper >= 1 else 2
    assert round(option_a / 1e6, digits) == paper
    assert (round(a.params / 1e6, digits) == paper) == (depth not in (32, 56))


def test_resnet_cifar_exact_figures_and_1202():
    assert resnet_cifar_costs(20) == (272_474, 40_813_184)
    # option A: ResNet-20 40,551,040 and ResNet-56 125,485,696 MACs (the 40.55M and
    # 125.49M "FLOPs" quoted for these nets in later papers: multiply-adds)
    assert resnet_cifar_costs(20, "A")[1] == 40_551_040
    assert resnet_cifar_costs(56, "A")[1] == 125_485_696
    a = analyze(resnet_cifar_n.build(depth=1202))
    assert (a.params, a.macs) == resnet_cifar_costs(1202)
    assert round(resnet_cifar_costs(1202, "A")[0] / 1e6, 1) == 19.4  # the paper's 19.4M
    with pytest.raises(CnnirError, match=r"6n \+ 2"):
        resnet_cifar_n.build(depth=21)


#: option A's exact counts: the paper's 0.27M, 0.46M, 0.66M, 0.85M, 1.7M
OPTION_A = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


@pytest.mark.parametrize("depth", sorted(OPTION_A))
def test_resnet_cifar_option_a_has_the_papers_parameters(depth):
    a = analyze(load(f"resnet{depth}_cifar_a"))
    g = a.graph
    assert (a.params, a.macs) == resnet_cifar_costs(depth, "A")
    assert a.params == OPTION_A[depth]
    assert round(a.params / 1e6, 1 if depth == 110 else 2) == RESNET_CIFAR[depth]
    # the shortcut: subsample by 2 (a 1x1 pool), zero-pad planes / 4 channels each side
    assert [g.op(p) for p in of_kind(g, O.Pad)] == [O.Pad(0, (8, 8)), O.Pad(0, (16, 16))]
    assert [g.op(p) for p in of_kind(g, O.MaxPool2d)] == [O.MaxPool2d(1, 2)] * 2
    assert not [c for c in of_kind(g, O.Conv2d) if g.op(c).kernel == (1, 1)]
    assert [block_out(g, f"layer{i}") for i in (1, 2, 3)] == [
        (16, 32, 32), (32, 16, 16), (64, 8, 8)]


class _PlainBlockA(torch.nn.Module):
    """The option-A basic block as CIFAR ResNet code writes it (x[:, :, ::2, ::2] is a
    1x1 max pool of stride 2)."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - cin) // 2 if stride != 1 else 0

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.pad:
            x = torch.nn.functional.pad(torch.nn.functional.max_pool2d(x, 1, 2),
                                        (0, 0, 0, 0, self.pad, self.pad))
        return torch.relu(y + x)


def test_resnet20_cifar_a_equals_plain_pytorch():
    nn = torch.nn
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for planes in (16, 32, 64):
        for i in range(3):
            layers.append(_PlainBlockA(cin, planes, 2 if i == 0 and planes != 16 else 1))
            cin = planes
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    assert sum(p.numel() for p in net.parameters()) == OPTION_A[20]
    imported = analyze(cnnir_from_torch(net, input=(3, 32, 32)))
    zoo_a = analyze(load("resnet20_cifar_a"))
    assert (imported.params, imported.macs) == (zoo_a.params, zoo_a.macs) == (
        OPTION_A[20], resnet_cifar_costs(20, "A")[1])


# --------------------------------------------------------------------------- FractalNet


def fractalnet_costs(columns, widths=(64, 128, 256, 512, 512)):
    """(params, MACs): each block 2^C - 1 convs 3x3 (no bias, BN after each), the first of
    each of the C columns reading the block's input; a 2x2 pool after each block
    (32 -> 1); FC 512 -> 10."""
    parts, cin, side = [], 3, 32
    n = 2 ** columns - 1
    for width in widths:
        parts += [conv(side, cin, width, 3)] * columns + [conv(side, width, width, 3)] * (
            n - columns) + [bn(width)] * n
        cin, side = width, side // 2
    return total(*parts, fc(widths[-1], 10))


@pytest.mark.parametrize("name, columns, joins", [
    ("fractalnet20_cifar", 3, [2, 3]), ("fractalnet40_cifar", 4, [2, 3, 2, 4])])
def test_fractalnet_by_first_principles(name, columns, joins):
    a = analyze(load(name))
    g = a.graph
    assert (a.params, a.macs) == fractalnet_costs(columns)
    means = of_kind(g, O.Mean)
    # per block, a join after every second row, of every column whose conv ends there
    assert [len(g.inputs(m)) for m in means] == joins * 5
    assert all(isinstance(g.op(i), O.DropPath) and g.op(i).p == 0.15
               for m in means for i in g.inputs(m))
    # the deepest path: B * 2^(C-1) convs and the FC
    assert len(of_kind(g, O.Conv2d)) == 5 * (2 ** columns - 1)
    longest = {}
    for n in g.nodes():
        here = longest.get(n, 0) + isinstance(g.op(n), (O.Conv2d, O.Linear))
        for u in g.users(n):
            longest[u] = max(longest.get(u, 0), here)
        longest[n] = here
    assert longest[g.outputs[0]] == 5 * 2 ** (columns - 1) + 1 == {3: 21, 4: 41}[columns]
    # dropout 0, 10, ... 40% by block after every conv (none in block 1)
    assert sorted({g.op(d).p for d in of_kind(g, O.Dropout)}) == [0.1, 0.2, 0.3, 0.4]
    # the join's cost: n - 1 adds and a multiply per output
    first = means[1]
    cost = g.meta(first)["cost"]
    assert cost["other_ops"] == len(g.inputs(first)) * 64 * 32 * 32


def test_fractalnet20_against_the_paper_and_reimplementations():
    """Table 1 prints 38.6M params for the 20-layer net; its own Section 4 description
    gives 33,724,618 (fractalnet_costs), which is what the independent re-implementations
    count: pytorchcv's test pins fractalnet_cifar10 at 33,724,618 and fractalnet_cifar100
    at 33,770,788 (the FC 512 -> 100), and khanrc/pt.fractalnet notes 33.7M against the
    paper's 38.6M.  The authors' generator (gustavla/fractalnet) builds the same columns and
    joins with FILTERS = [64, 128, 256, 512, 512]; it pools before a block's last join, which
    moves the join's adds but no parameter or MAC."""
    from cnnir.zoo.catalog import PUBLISHED, agrees, figures

    ten = analyze(load("fractalnet20_cifar"))
    hundred = analyze(fractalnet_cifar.build(columns=3, num_classes=100))
    assert (ten.params, hundred.params) == (33_724_618, 33_770_788)
    assert hundred.params - ten.params == 512 * 90 + 90
    pub = PUBLISHED["fractalnet20_cifar"]
    assert pub.params == "38.6M" and "33,724,618" in pub.note
    assert not agrees(pub, figures("fractalnet20_cifar"))  # 33.7M, not 38.6M


def test_fractalnet_any_columns():
    g = analyze(fractalnet_cifar.build(columns=1, dropout=False)).graph
    assert not of_kind(g, O.Mean) and len(of_kind(g, O.Conv2d)) == 5
    a = analyze(fractalnet_cifar.build(columns=2))
    assert (a.params, a.macs) == fractalnet_costs(2)
    with pytest.raises(CnnirError, match="1 or more columns"):
        fractalnet_cifar.build(columns=0)


# --------------------------------------------------------------------------- CIFAR DenseNet

#: Table 2: (L, k, BC) -> the paper's params (millions, one decimal)
DENSENET_TABLE_2 = {(40, 12, False): 1.0, (100, 12, False): 7.0, (100, 24, False): 27.2,
                    (100, 12, True): 0.8, (250, 24, True): 15.3, (190, 40, True): 25.6}


def densenet_cifar_costs(depth, k, bc):
    """(params, MACs) from Section 3: 3x3 conv (16, or 2k with BC); 3 dense blocks of
    (L - 4) / 3 layers (BN-ReLU-3x3 k), or (L - 4) / 6 with BC (BN-ReLU-1x1 4k -
    BN-ReLU-3x3 k), on 32, 16, 8 maps; transitions BN-ReLU-1x1 (halving with BC) and
    a 2x2 average pool; BN-ReLU, global average pool, FC to 10."""
    per_block = (depth - 4) // (6 if bc else 3)
    m = 2 * k if bc else 16
    parts = [conv(32, 3, m, 3)]
    for i, side in enumerate((32, 16, 8)):
        for _ in range(per_block):
            if bc:
                parts += [bn(m), conv(side, m, 4 * k, 1), bn(4 * k), conv(side, 4 * k, k, 3)]
            else:
                parts += [bn(m), conv(side, m, k, 3)]
            m += k
        if i < 2:
            out = m // 2 if bc else m
            parts += [bn(m), conv(side, m, out, 1)]
            m = out
    return total(*parts, bn(m), fc(m, 10))


@pytest.mark.parametrize("depth,k,bc", sorted(DENSENET_TABLE_2))
def test_densenet_cifar_table_2(depth, k, bc):
    a = analyze(densenet_cifar.build(depth=depth, growth=k, bc=bc))
    assert (a.params, a.macs) == densenet_cifar_costs(depth, k, bc)
    assert round(a.params / 1e6, 1) == DENSENET_TABLE_2[depth, k, bc]


def test_densenet_bc100_cifar_registered():
    a = analyze(load("densenet_bc100_cifar"))
    g = a.graph
    assert (a.params, a.macs) == densenet_cifar_costs(100, 12, True) == (769_162, 287_929_692)
    assert tuple(g.shape("stem/conv0")) == (24, 32, 32)  # 2k maps
    # 16 bottleneck layers a block, each adding k = 12 maps; compression 0.5
    assert [block_out(g, f"denseblock{i}") for i in (1, 2, 3)] == [
        (24 + 16 * 12, 32, 32), (108 + 16 * 12, 16, 16), (150 + 16 * 12, 8, 8)]
    assert [block_out(g, f"transition_{i}") for i in (1, 2)] == [(108, 16, 16), (150, 8, 8)]
    counts = {path[:-1]: info.repeat[2] for path, info in g.blocks.items() if info.repeat}
    assert counts == {(f"denseblock{i}",): 16 for i in (1, 2, 3)}
    with pytest.raises(CnnirError, match=r"6n \+ 4"):
        densenet_cifar.build(depth=101, bc=True)


# --------------------------------------------------------------------------- MobileNet v1

#: Table 1 after each layer at 224: (name, CxHxW)
MOBILENET_TABLE_1 = [("stem/relu1", (32, 112, 112)), ("separable_1/dw_relu", (32, 112, 112)),
                     ("separable_1", (64, 112, 112)), ("separable_2/dw_relu", (64, 56, 56)),
                     ("separable_2", (128, 56, 56)), ("separable_3", (128, 56, 56)),
                     ("separable_4", (256, 28, 28)), ("separable_5", (256, 28, 28)),
                     ("separable_6", (512, 14, 14)),
                     *[(f"separable_{i}", (512, 14, 14)) for i in range(7, 12)],
                     ("separable_12", (1024, 7, 7)), ("separable_13", (1024, 7, 7)),
                     ("avgpool", (1024, 1, 1)), ("fc", (1000,))]


def mobilenet_v1_costs(width=1.0, side=224):
    """(params, MACs): 3x3/2 conv (32 alpha); 13 x (3x3 depthwise + BN, 1x1 + BN) on
    the Table 1 channels times alpha; FC 1024 alpha -> 1000."""
    ch = [int(c * width) for c in (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
                                   1024, 1024)]
    strides = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
    h = (side + 1) // 2  # 3x3/2 with padding 1
    parts = [conv(h, 3, ch[0], 3), bn(ch[0])]
    for cin, cout, s in zip(ch, ch[1:], strides):
        h = (h - 1) // s + 1
        parts += [conv(h, cin, cin, 3, groups=cin), bn(cin), conv(h, cin, cout, 1), bn(cout)]
    return total(*parts, fc(ch[-1], 1000))


def test_mobilenet_v1_table_1_and_2():
    a = analyze(load("mobilenet_v1"))
    g = a.graph
    assert [(n, tuple(g.shape(n)) if n in g else block_out(g, n))
            for n, _ in MOBILENET_TABLE_1] == MOBILENET_TABLE_1
    assert (a.params, a.macs) == mobilenet_v1_costs() == (4_231_976, 568_740_352)
    # Keras' MobileNet(alpha=1.0): 4,231,976 trainable, 21,888 non-trainable (BN stats)
    assert a.buffers == 21_888
    # Table 2, resources per layer type: mult-adds and parameters in percent.  The
    # parameter shares are of the weights alone (no biases, no BN), which sum to
    # 4,209,088.  The paper's "Conv 3x3 1.19%" of mult-adds is 1.91% transposed: the
    # four shares must sum to 100, and 94.86 + 3.06 + 1.19 + 0.18 = 99.29.
    kinds: dict[str, list[int]] = {}
    for n in of_kind(g, O.Conv2d) + of_kind(g, O.Linear):
        op, meta = g.op(n), g.meta(n)
        kind = "fc" if isinstance(op, O.Linear) else "dw" if op.groups > 1 else \
            "1x1" if op.kernel == (1, 1) else "3x3"
        c = kinds.setdefault(kind, [0, 0])
        c[0] += meta["params"]["params"] - meta["params"]["bias"]
        c[1] += meta["cost"]["macs"]
    weights = sum(p for p, _ in kinds.values())
    assert weights == 4_209_088 and sum(m for _, m in kinds.values()) == a.macs
    assert {k: (round(100 * m / a.macs, 2), round(100 * p / weights, 2))
            for k, (p, m) in kinds.items()} == {
        "1x1": (94.86, 74.59), "dw": (3.06, 1.06), "3x3": (1.91, 0.02), "fc": (0.18, 24.33)}


#: Table 6 (width multiplier): params and mult-adds in millions, at 224
MOBILENET_TABLE_6 = {"mobilenet_v1": (4.2, 569), "mobilenet_v1_075": (2.6, 325),
                     "mobilenet_v1_050": (1.3, 149), "mobilenet_v1_025": (0.5, 41)}


@pytest.mark.parametrize("name", sorted(MOBILENET_TABLE_6))
def test_mobilenet_v1_width_multiplier_table_6(name):
    width = {"": 1.0, "_075": 0.75, "_050": 0.5, "_025": 0.25}[name[len("mobilenet_v1"):]]
    a = analyze(load(name))
    assert (a.params, a.macs) == mobilenet_v1_costs(width)
    params, madds = MOBILENET_TABLE_6[name]
    assert (round(a.params / 1e6, 1), round(a.macs / 1e6)) == (params, madds)


def test_mobilenet_v1_resolution_multiplier_table_7():
    # Table 7: 569, 418, 290, 186 million mult-adds at 224, 192, 160, 128.  160 gives
    # 290,675,200: the paper truncates it (to the nearest it would be 291), while
    # 568.74M at 224 is rounded up to 569.
    got = {side: analyze(load("mobilenet_v1", input=f"3x{side}x{side}")).macs
           for side in (224, 192, 160, 128)}
    assert got == {s: mobilenet_v1_costs(1.0, s)[1] for s in got}
    assert {s: m // 10**6 for s, m in got.items()} == {224: 568, 192: 418, 160: 290, 128: 186}
    assert {s: round(m / 1e6) for s, m in got.items()} == {224: 569, 192: 418, 160: 291, 128: 186}
    assert analyze(mobilenet_v1_any.build(width=0.5)).params == 1_331_592
    with pytest.raises(CnnirError, match="whole channel counts"):
        mobilenet_v1_any.build(width=0.3)


# --------------------------------------------------------------------------- SqueezeNet 1.1


def test_squeezenet1_1():
    a = analyze(load("squeezenet1_1"))
    g = a.graph
    # torchvision's squeezenet1_1 metadata: 1,235,496 params, 0.349 GFLOPS (MACs)
    assert a.params == 1_235_496 and round(a.macs / 1e9, 3) == 0.349
    fires = {2: (16, 64), 3: (16, 64), 4: (32, 128), 5: (32, 128), 6: (48, 192),
             7: (48, 192), 8: (64, 256), 9: (64, 256)}
    cin, parts = 64, [conv(111, 3, 64, 3, bias=True)]
    for i, (s, e) in fires.items():
        side = 55 if i < 4 else 27 if i < 6 else 13
        parts += [conv(side, cin, s, 1, bias=True), conv(side, s, e, 1, bias=True),
                  conv(side, s, e, 3, bias=True)]
        cin = 2 * e
    assert (a.params, a.macs) == total(*parts, conv(13, 512, 1000, 1, bias=True))
    assert [tuple(g.shape(f"features/{n}")) for n in ("conv1", "maxpool1", "maxpool3",
                                                      "maxpool5")] == [
        (64, 111, 111), (64, 55, 55), (128, 27, 27), (256, 13, 13)]
    # the same fire modules as 1.0 (1,248,424 params, 819M MACs); 2.35x less compute
    one = analyze(load("squeezenet1_0"))
    assert round(one.macs / a.macs, 2) == 2.35


# --------------------------------------------------------------------------- BN-Inception

#: Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool proj
#: (0 and 0: stride-2 module, the max pool passes through) and the grid
BN_INCEPTION = {"3a": (64, 64, 64, 64, 96, 32, 28), "3b": (64, 64, 96, 64, 96, 64, 28),
                "3c": (0, 128, 160, 64, 96, 0, 14), "4a": (224, 64, 96, 96, 128, 128, 14),
                "4b": (192, 96, 128, 96, 128, 128, 14), "4c": (160, 128, 160, 128, 160, 128, 14),
                "4d": (96, 128, 192, 160, 192, 128, 14), "4e": (0, 128, 192, 192, 256, 0, 7),
                "5a": (352, 192, 320, 160, 224, 128, 7), "5b": (352, 192, 320, 192, 224, 128, 7)}


def test_bn_inception_figure_5():
    a = analyze(load("bn_inception"))
    g = a.graph
    assert [tuple(g.shape(f"stem/{n}")) for n in ("conv1", "pool1", "conv2", "pool2")] == [
        (64, 112, 112), (64, 56, 56), (192, 56, 56), (192, 28, 28)]
    cin = 192
    parts = [conv(112, 3, 64, 7), bn(64), conv(56, 64, 64, 1), bn(64), conv(56, 64, 192, 3),
             bn(192)]
    for name, (c1, c3r, c3, d3r, d3, proj, side) in BN_INCEPTION.items():
        s_in = side * 2 if c1 == 0 else side  # a stride-2 module reads the larger grid
        parts += [conv(s_in, cin, c1, 1), bn(c1), conv(s_in, cin, c3r, 1), bn(c3r),
                  conv(side, c3r, c3, 3), bn(c3), conv(s_in, cin, d3r, 1), bn(d3r),
                  conv(s_in, d3r, d3, 3), bn(d3), conv(side, d3, d3, 3), bn(d3),
                  conv(side, cin, proj, 1), bn(proj)]
        out = c1 + c3 + d3 + (proj if proj else cin)
        assert tuple(g.shape(f"inception_{name}/concat")) == (out, side, side), name
        cin = out
    assert cin == 1024
    assert (a.params, a.macs) == total(*parts, fc(1024, 1000)) == (11_285_224, 2_032_600_064)
    # BN after every conv, whose bias it makes redundant; no LRN, no dropout (Section 4.2.1)
    convs = of_kind(g, O.Conv2d)
    assert len(convs) == len(of_kind(g, O.BatchNorm2d)) == 3 + 10 * 7 - 2 * 2  # stem; 7 a module, 5 in 3c, 4e
    assert all(isinstance(g.op(g.users(n)[0]), O.BatchNorm2d) and not g.op(n).bias
               for n in convs)
    assert not of_kind(g, O.LocalResponseNorm) and not of_kind(g, O.Dropout)
    # the 5x5 of GoogLeNet's 3a (16 -> 32, 12,800 weights) became two 3x3s (64 -> 96 -> 96)
    assert [g.op(n).kernel for n in convs if "double" in n and n.startswith("inception_3a")] == [
        (1, 1), (3, 3), (3, 3)]


#: Figure 5's "output size" column as printed (grid, depth)
BN_INCEPTION_PRINTED = {"3a": (28, 256), "3b": (28, 320), "3c": (28, 576), "4a": (14, 576),
                        "4b": (14, 576), "4c": (14, 576), "4d": (14, 576), "4e": (14, 1024),
                        "5a": (7, 1024), "5b": (7, 1024)}


def test_bn_inception_output_size_column_and_its_slips():
    """Figure 5's output-size column against the module outputs cnnir computes.

    Two kinds of disagreement, each explained by the table itself:
    - the stride-2 rows (3c, 4e) print the grid of their input (28, 14); their output is
      half of it, as the next row's grid (4a at 14, 5a at 7) shows;
    - 4c and 4d print 576, but their own branch columns sum to 608 (160 + 160 + 160 + 128
      and 96 + 192 + 192 + 128); 4e's 1024 is 576 + 192 + 256, the pass-through of that
      printed 576, where the branches give 608 + 192 + 256 = 1056.  5a's branches read
      1056 channels (its parameters say so), and 5b's output is the printed 1024 again.
    """
    g = analyze(load("bn_inception")).graph
    got = {}
    for name in BN_INCEPTION_PRINTED:
        c, h, _ = g.shape(f"inception_{name}/concat")
        got[name] = (h, c)
    slips = {n for n in got if got[n] != BN_INCEPTION_PRINTED[n]}
    assert slips == {"3c", "4c", "4d", "4e"}
    assert got["3c"] == (14, 576) and got["4e"] == (7, 1056)
    assert got["4c"] == got["4d"] == (14, 608)
    c1, _, c3, _, d3, proj, _ = BN_INCEPTION["4c"]
    assert c1 + c3 + d3 + proj == 608
    _, _, c3, _, d3, _, _ = BN_INCEPTION["4e"]
    assert BN_INCEPTION_PRINTED["4d"][1] + c3 + d3 == BN_INCEPTION_PRINTED["4e"][1] == 1024
    assert got["4d"][1] + c3 + d3 == got["4e"][1]
    assert g.meta("inception_5a/1x1")["params"]["params"] == 1056 * 352  # no bias: BN follows


# --------------------------------------------------------------------------- GoogLeNet aux


def aux_head(cin):
    """Section 5: 5x5/3 average pool (14 -> 4), 1x1 conv 128, FC 2048 -> 1024, FC 1000."""
    return total(conv(4, cin, 128, 1, bias=True), fc(4 * 4 * 128, 1024), fc(1024, 1000))


def test_googlenet_with_its_auxiliary_classifiers():
    import numpy as np
    import onnxruntime as ort

    from cnnir.backends.onnx_export import to_onnx
    from cnnir.backends.pytorch import to_module
    from cnnir.passes.infer_shapes import infer_shapes
    from cnnir.weights import init_weights

    g = infer_shapes(googlenet_aux.build())
    main = analyze(load("googlenet"))
    a = analyze(g)
    assert g.outputs == ["softmax1", "aux_classifier_1/softmax1", "aux_classifier_2/softmax1"]
    assert [tuple(g.shape(o)) for o in g.outputs] == [(1000,)] * 3
    # "4x4x512 output for the (4a), and 4x4x528 for the (4d) stage"
    assert [tuple(g.shape(f"aux_classifier_{i}/pool")) for i in (1, 2)] == [
        (512, 4, 4), (528, 4, 4)]
    assert [g.inputs(f"aux_classifier_{i}/pool") for i in (1, 2)] == [
        ("inception_4a/concat1",), ("inception_4d/concat1",)]
    heads = total(aux_head(512), aux_head(528))
    assert heads == (3_188_840 + 3_190_888, 8_372_224)
    assert (a.params - main.params, a.macs - main.macs) == heads
    # PyTorch and onnxruntime agree on all three outputs
    weights = init_weights(g, seed=3, mode="random")
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.inference_mode():
        ref = [t.double().numpy() for t in to_module(g, weights=weights).eval()(
            torch.from_numpy(x))]
    sess = ort.InferenceSession(to_onnx(g, weights=weights).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    assert [o.shape for o in got] == [r.shape for r in ref] == [(1, 1000)] * 3
    for o, r in zip(got, ref):
        assert np.max(np.abs(o - r)) <= 1e-4 * np.max(np.abs(r))


# --------------------------------------------------------------------------- NiN


def test_nin_imagenet_and_cifar_params():
    """The paper gives no counts; first principles for both configurations."""
    relu_convs = [(54, 3, 96, 11), (54, 96, 96, 1), (54, 96, 96, 1), (27, 96, 256, 5),
                  (27, 256, 256, 1), (27, 256, 256, 1), (13, 256, 384, 3), (13, 384, 384, 1),
                  (13, 384, 384, 1), (6, 384, 1024, 3), (6, 1024, 1024, 1), (6, 1024, 1000, 1)]
    imagenet = analyze(load("nin"))
    assert (imagenet.params, imagenet.macs) == total(
        *(conv(*c, bias=True) for c in relu_convs)) == (7_595_176, 1_100_188_800)

    def cifar(classes):
        return total(*(conv(*c, bias=True) for c in (
            (32, 3, 192, 5), (32, 192, 160, 1), (32, 160, 96, 1), (16, 96, 192, 5),
            (16, 192, 192, 1), (16, 192, 192, 1), (8, 192, 192, 3), (8, 192, 192, 1),
            (8, 192, classes, 1))))

    c10 = analyze(load("nin_cifar10"))
    assert (c10.params, c10.macs) == cifar(10) == (966_986, 222_486_528)
    c100 = analyze(zoo.get("nin_cifar10").build(num_classes=100))
    assert (c100.params, c100.macs) == cifar(100)
    assert tuple(c100.graph.shape(c100.graph.outputs[0])) == (100,)
