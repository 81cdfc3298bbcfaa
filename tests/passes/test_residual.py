"""check-residual and fix-residual: a ResNet declared without its projections fails with
both DSL lines (library and `cnnir check`), fix-residual turns it into the intended
network (same IR), and the mismatches a projection cannot fix stay errors."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from cnnir.errors import ShapeError
from cnnir.frontends.dsl import block, concat, model
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import PassManager

HERE = pathlib.Path(__file__)


def line_of(marker: str) -> int:
    """The line of this file that carries ``# <marker>``."""
    for i, text in enumerate(HERE.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return i
    raise AssertionError(marker)


def where(marker: str) -> str:
    return f"tests/passes/test_residual.py:{line_of(marker)}"


def run(net, pipeline):
    pm = PassManager.from_string(pipeline)
    g = pm.run(net.build())
    return g, pm.passes[-1]


def ir(text: str) -> str:
    return textwrap.dedent(text).strip()


# --------------------------------------------------------------------------- the network


@block
def basic(x, planes, stride=1, downsample=False):
    y = x.conv(planes, 3, stride=stride, padding=1, bias=False, name="conv1").bn(name="bn1").relu()
    y = y.conv(planes, 3, padding=1, bias=False, name="conv2").bn(name="bn2")  # branch
    if downsample:
        x = x.conv(planes, 1, stride=stride, bias=False, name="downsample_conv")
        x = x.bn(name="downsample_bn")
    return (y + x).relu()  # add


def tiny_resnet(x, downsample):
    x = x.conv(16, 3, padding=1, bias=False).bn().relu()
    x = basic(x, 16)
    x = basic(x, 32, 2, downsample=downsample)
    x = basic(x, 32)
    x = basic(x, 64, 2, downsample=downsample)
    return x.global_avgpool().flatten().linear(10)


@model(input=(3, 32, 32))
def missing_projection(x):
    return tiny_resnet(x, downsample=False)


@model(input=(3, 32, 32))
def intended(x):
    return tiny_resnet(x, downsample=True)


def test_check_residual_names_both_layers_and_their_lines():
    with pytest.raises(ShapeError) as info:
        run(missing_projection, "check-residual")
    err = info.value
    assert err.node == "basic2/add1"
    assert str(err.loc) == where("add")
    assert err.msg == (
        f"add 'basic2/add1' got 32x16x16 from 'basic2/bn2' ({where('branch')}) and "
        f"16x32x32 from 'basic1/relu2' ({where('add')}) (channels and spatial size differ)")
    assert err.hint == ("project the shortcut with a 1x1 conv to 32 channels, stride 2, "
                        "or run with --passes fix-residual")


def test_fix_residual_gives_the_intended_network():
    g, p = run(missing_projection, "fix-residual")
    want = infer_shapes(intended.build())
    assert g.format(locs=False).splitlines()[1:] == want.format(locs=False).splitlines()[1:]
    assert g.shape(g.outputs[0]) == want.shape(want.outputs[0]) == (10,)
    assert g.shape("basic4/add1") == (64, 8, 8)
    assert [(r["add"], r["conv"], r["bn"], r["stride"]) for r in p.inserted] == [
        ("basic2/add1", "basic2/downsample_conv", "basic2/downsample_bn", (2, 2)),
        ("basic4/add1", "basic4/downsample_conv", "basic4/downsample_bn", (2, 2)),
    ]
    assert p.notes == [
        "add 'basic2/add1': shortcut 'basic1/relu2' 16x32x32 -> 32x16x16: inserted 1x1 conv "
        "'basic2/downsample_conv' (stride 2) + batchnorm 'basic2/downsample_bn', "
        f"test_residual.py:{line_of('add')}",
        "add 'basic4/add1': shortcut 'basic3/relu2' 32x16x16 -> 64x8x8: inserted 1x1 conv "
        "'basic4/downsample_conv' (stride 2) + batchnorm 'basic4/downsample_bn', "
        f"test_residual.py:{line_of('add')}",
    ]
    # the new layers point at the add that needed them, and sit in its block
    assert str(g.loc("basic4/downsample_bn")) == where("add")
    assert g.scope("basic4/downsample_conv") == ("basic4",)


def test_check_residual_passes_after_the_fix_and_on_the_intended_network():
    g, p = run(missing_projection, "fix-residual,check-residual")
    assert p.notes == ["4 add/mul node(s) checked, every one has compatible inputs"]
    _, p = run(intended, "check-residual")
    assert p.notes == ["4 add/mul node(s) checked, every one has compatible inputs"]


def test_fix_residual_on_a_correct_network_changes_nothing():
    pm = PassManager.from_string("fix-residual")
    g = pm.run(intended.build())
    assert not pm.records[0].changed
    assert pm.records[0].notes == ["every residual add already matches; nothing inserted"]
    assert g.format() == infer_shapes(intended.build()).format()


# --------------------------------------------------------------------------- the CLI


NET = textwrap.dedent("""
    from cnnir.dsl import model

    @model(input=(8, 16, 16))
    def net(x):
        y = x.conv(16, 3, stride=2, padding=1).relu()
        y = y.conv(16, 3, padding=1)
        return (y + x).relu()
""")


def test_cnnir_check_fails_with_both_lines_and_passes_after_fix_residual(cli, tmp_path):
    (tmp_path / "net.py").write_text(NET)
    for extra in ((), ("--passes", "check-residual")):
        r = cli("check", "net.py", *extra, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.splitlines()[0] == (
            "net.py:8: error: add 'add1' got 16x8x8 from 'conv2' (net.py:7) and 8x16x16 "
            "from 'input' (net.py:4) (channels and spatial size differ)")
    r = cli("check", "net.py", "--passes", "fix-residual", "--explain", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok: net: 6 layers, input 8x16x16, output 16x8x8"
    assert ("add 'add1': shortcut 'input' 8x16x16 -> 16x8x8: inserted 1x1 conv "
            "'downsample_conv' (stride 2), net.py:8") in r.stderr


# --------------------------------------------------------------------------- variants


@model(input=(8, 16, 16))
def no_bn_channels_only(x):
    y = x.conv(12, 3, padding=1).relu().conv(12, 3, padding=1)
    return y + x


def test_channel_only_mismatch_without_bn_gets_a_biased_stride_1_projection():
    g, p = run(no_bn_channels_only, "fix-residual")
    assert g.format(locs=False) == ir("""
        graph no_bn_channels_only {
          %input = input() : 8x16x16
          %conv1 = conv2d[k=3x3,s=1,p=1](%input) : 12x16x16
          %relu1 = relu(%conv1) : 12x16x16
          %conv2 = conv2d[k=3x3,s=1,p=1](%relu1) : 12x16x16
          %downsample_conv = conv2d[k=1x1,s=1,p=0](%input) : 12x16x16
          %add1 = add(%conv2, %downsample_conv) : 12x16x16
          return %add1
        }""")
    assert p.inserted[0]["bn"] is None


@model(input=(8, 15, 15))
def odd_size(x):
    y = x.conv(16, 3, stride=2, padding=1).bn(eps=1e-3)  # 15 -> 8
    return x + y  # shortcut first this time


def test_odd_size_and_shortcut_as_first_operand():
    g, p = run(odd_size, "fix-residual")
    # a 1x1 stride-2 conv maps 15 to ceil(15 / 2) = 8, like the branch's 3x3/2 pad 1
    assert g.format(locs=False).splitlines()[4:7] == [
        "  %downsample_conv = conv2d[k=1x1,s=2,p=0,nobias](%input) : 16x8x8",
        "  %downsample_bn = batchnorm2d[eps=0.001](%downsample_conv) : 16x8x8",
        "  %add1 = add(%downsample_bn, %bn1) : 16x8x8",
    ]


@model(input=(8, 16, 16))
def siblings(x):
    a = x.conv(8, 3, stride=2, padding=1)  # 8x8x8
    b = x.conv(16, 1)  # 16x16x16
    return a + b


def test_sibling_branches_project_the_larger_map():
    g, p = run(siblings, "fix-residual")
    assert p.inserted[0]["shortcut"] == "conv2"
    assert g.inputs("add1") == ("conv1", "downsample_conv")
    assert g.shape("downsample_conv") == (8, 8, 8)


# --------------------------------------------------------------------------- stays an error


@model(input=(8, 8, 8))
def branch_larger(x):
    y = x.upsample(2).conv(8, 3, padding=1)  # upsampled
    return y + x  # larger


def test_branch_larger_than_its_shortcut_stays_an_error():
    with pytest.raises(ShapeError) as info:
        run(branch_larger, "fix-residual")
    assert str(info.value) == (
        f"{where('larger')}: error: add 'add1' got 8x16x16 from 'conv1' ({where('upsampled')}) "
        f"and 8x8x8 from 'input' (tests/passes/test_residual.py:{line_of('larger') - 3}) "
        "(height and width differ); fix-residual cannot fix it: the branch 'conv1' (8x16x16) "
        "is larger than its shortcut 'input' (8x8x8), and a projection only downsamples")


@model(input=(8, 7, 7))
def no_stride(x):
    return x.conv(8, 3) + x  # 7 -> 5: no 1x1 stride maps 7 onto 5


def test_no_integral_stride_stays_an_error():
    with pytest.raises(ShapeError, match=r"fix-residual cannot fix it: no integral stride "
                                         r"maps the shortcut's 7x7 onto the branch's 5x5"):
        run(no_stride, "fix-residual")


@model(input=(8,))
def flat(x):
    return x.linear(10) + x


def test_flat_tensors_stay_an_error():
    with pytest.raises(ShapeError, match="a projection fixes feature maps, these inputs are flat"):
        run(flat, "fix-residual")


@model(input=(8, 8, 8))
def gate(x):
    g = x.global_avgpool().conv(4, 1).sigmoid()
    return x * g


def test_a_mismatched_mul_is_not_a_shortcut():
    with pytest.raises(ShapeError, match=r"mul 'mul1' got 8x8x8 from 'input' \(.*\) and "
                                         r"4x1x1 from 'sigmoid1' \(.*\) \(channels differ\)"):
        run(gate, "check-residual")
    with pytest.raises(ShapeError, match="a mul is a gate, not a shortcut"):
        run(gate, "fix-residual")


@model(input=(8, 8, 8))
def squeeze_excite(x):
    g = x.global_avgpool().conv(2, 1).relu().conv(8, 1).sigmoid()
    return x * g


def test_broadcasting_mul_passes_the_check():
    g, p = run(squeeze_excite, "check-residual")
    assert p.notes == ["1 add/mul node(s) checked, every one has compatible inputs"]
    assert g.shape("mul1") == (8, 8, 8)


@model(input=(8, 16, 16))
def two_independent(x):
    a = x.conv(16, 3, stride=2, padding=1) + x
    b = x.conv(4, 3, stride=2, padding=1) + x
    return concat(a, b)


def test_check_residual_counts_the_other_mismatches():
    with pytest.raises(ShapeError) as info:
        run(two_independent, "check-residual")
    assert info.value.node == "add1"
    assert info.value.msg.endswith("(and 1 more shape error(s), at 'add2')")
    g, p = run(two_independent, "fix-residual")
    assert [r["add"] for r in p.inserted] == ["add1", "add2"]
    assert g.shape("concat1") == (16 + 4, 8, 8)


def test_a_non_residual_shape_error_is_raised_as_is():
    @model(input=(3, 4, 4))
    def too_small(x):
        return x.conv(8, 7)

    with pytest.raises(ShapeError, match="kernel 7 is larger than the padded input 4"):
        run(too_small, "fix-residual")
    with pytest.raises(ShapeError, match="kernel 7 is larger than the padded input 4"):
        run(too_small, "check-residual")
