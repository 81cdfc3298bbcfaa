"""The DSL: layer names, block scopes, repeat records, source lines, building options."""

from __future__ import annotations

import textwrap

import pytest

import cnnir
from cnnir import ops as O
from cnnir.dsl import add, block, concat, model, mul, repeat, scope
from cnnir.errors import DslError
from cnnir.frontends import parse_input, split_spec
from cnnir.frontends.dsl import load_file
from cnnir.ir import BlockInfo


@block
def unit(x, c, stride=1):
    return x.conv(c, 3, stride=stride, padding=1).relu()


@block
def pair(x, c):
    return unit(x, c, name="a"), unit(x, c, name="b")


def build(fn, input=(3, 16, 16), **kwargs):
    return cnnir.infer_shapes(model(input=input)(fn).build(**kwargs))


def test_layers_are_named_by_kind_and_numbered_per_scope():
    def net(x):
        x = x.conv(8, 3).relu().conv(8, 3).bn().relu()
        with scope("stage"):
            x = x.conv(8, 1).relu()
        return x.global_avgpool().flatten().linear(10).softmax()

    g = build(net)
    assert g.nodes() == ["input", "conv1", "relu1", "conv2", "bn1", "relu2", "stage/conv1",
                         "stage/relu1", "gap1", "flatten1", "fc1", "softmax1"]
    assert g.scope("stage/conv1") == ("stage",) and g.scope("conv2") == ()


def test_name_keyword_names_a_layer_and_numbering_skips_taken_names():
    def net(x):
        x = x.conv(8, 3, name="conv2")
        return x.conv(8, 3).conv(8, 3)

    g = build(net)
    assert g.nodes() == ["input", "conv2", "conv1", "conv3"]


def test_blocks_open_numbered_or_named_scopes_with_their_kind_and_line():
    def net(x):
        x = unit(x, 8)
        x = unit(x, 8)
        x = unit(x, 16, name="3a")
        a, b = pair(x, 4)
        return concat(a, b)

    g = build(net)
    assert [n for n in g.nodes() if n.endswith("conv1")] == [
        "unit1/conv1", "unit2/conv1", "unit_3a/conv1", "pair1/unit_a/conv1", "pair1/unit_b/conv1"]
    assert g.scope("pair1/unit_b/relu1") == ("pair1", "unit_b")
    info = g.blocks[("pair1", "unit_a")]
    assert info.kind == "unit" and info.repeat is None
    assert set(g.blocks) == {("unit1",), ("unit2",), ("unit_3a",), ("pair1",),
                             ("pair1", "unit_a"), ("pair1", "unit_b")}
    assert g.shape("concat1") == (8, 16, 16)


def test_repeat_records_group_index_and_count():
    def net(x):
        x = repeat(unit, 3, x, 8)
        with scope("layer2"):
            x = unit(x, 16, stride=2)
            x = repeat(unit, 2, x, 16, name="rep")
        return x

    g = build(net)
    rep = {path: info.repeat for path, info in g.blocks.items()}
    assert rep == {
        ("unit1",): (0, 0, 3), ("unit2",): (0, 1, 3), ("unit3",): (0, 2, 3),
        ("layer2",): None, ("layer2", "unit1"): None,
        ("layer2", "unit_rep1"): (1, 0, 2), ("layer2", "unit_rep2"): (1, 1, 2),
    }
    assert g.blocks[("layer2",)].kind == "scope"
    assert g.shape("layer2/unit_rep2/relu1") == (16, 8, 8)
    # a block called after a repeat is not part of it
    assert g.blocks[("layer2", "unit1")] == BlockInfo("unit", g.blocks[("layer2", "unit1")].loc)


def test_locations_are_the_users_lines(tmp_path):
    src = textwrap.dedent('''\
        from cnnir.dsl import block, model, repeat, scope

        @block
        def unit(x, c):
            y = x.conv(c, 3, padding=1)  # L:unit-conv
            return y.relu()  # L:unit-relu

        @model(input=(3, 8, 8))  # L:model
        def net(x):
            with scope("stem"):  # L:scope
                x = x.conv(4, 1)  # L:stem-conv
            x = unit(x, 4)  # L:call
            x = repeat(unit, 2,  # L:repeat
                       x, 4)
            return x.flatten()  # L:flatten
    ''')
    line = {m.split("L:")[1]: i for i, m in enumerate(src.splitlines(), 1) if "L:" in m}
    path = tmp_path / "locnet.py"
    path.write_text(src)
    g = cnnir.load(str(path))
    assert g.loc("input").line == line["model"]
    assert g.loc("stem/conv1").line == line["stem-conv"]
    assert g.loc("unit1/conv1").line == line["unit-conv"]
    assert g.loc("unit2/relu1").line == line["unit-relu"]
    assert g.loc("flatten1").line == line["flatten"]
    assert g.blocks[("stem",)].loc.line == line["scope"]
    assert g.blocks[("unit1",)].loc.line == line["call"]
    assert g.blocks[("unit3",)].loc.line == line["repeat"]
    assert g.loc("flatten1").file.endswith("locnet.py")
    assert g.source.endswith("locnet.py")


def test_build_takes_an_input_override_and_keyword_arguments():
    @model(input=(3, 32, 32))
    def net(x, width=8):
        return x.conv(width, 3, stride=2, padding=1).global_avgpool()

    assert cnnir.infer_shapes(net.build()).shape("gap1") == (8, 1, 1)
    g = cnnir.infer_shapes(net.build((1, 64, 48), width=4))
    assert g.input_shape == (1, 64, 48) and g.shape("conv1") == (4, 32, 24)
    assert repr(net) == "<cnnir model 'net' input=3x32x32>"
    assert net.name == "net" and model(name="other")(net.fn).name == "other"


def test_load_with_input_override(tmp_path):
    g = cnnir.load("resnet18", input="3x64x64")
    assert g.input_shape == (3, 64, 64)
    assert g.shape("layer4/basic2/relu1") == (512, 2, 2)
    assert cnnir.load("lenet5", input=(1, 32, 32)).shape("output") == (10,)


def test_multiple_outputs_in_order():
    def net(x):
        x = x.conv(8, 3, padding=1).relu()
        aux = x.global_avgpool().flatten().linear(5, name="aux")
        main = x.maxpool(2).flatten().linear(10, name="main")
        return main, aux

    g = build(net)
    assert g.outputs == ["main", "aux"]
    assert [g.shape(o) for o in g.outputs] == [(10,), (5,)]


def test_merges_operators_and_aliases():
    def net(x):
        a = x.conv(4, 1)
        b = x.conv(4, 1)
        s = a + b
        p = a * x.conv(4, 1).global_avgpool()
        c = concat([s, p, add(a, b), mul(a, b)])
        u = c.upconv(2).conv_transpose(2, kernel=3, stride=1, padding=1)
        return u.flatten().fc(3)

    g = build(net, input=(3, 4, 4))
    assert [g.op(n).kind for n in ("add1", "mul1", "add2", "mul2", "concat1")] == [
        "add", "mul", "add", "mul", "concat"]
    assert g.inputs("add1") == ("conv1", "conv2")
    assert g.shape("concat1") == (16, 4, 4)
    assert g.shape("upconv1") == (2, 8, 8) and g.shape("upconv2") == (2, 8, 8)
    assert g.shape("fc1") == (3,)


def test_padding_same_and_valid_and_pool_stride_defaults_to_kernel():
    def net(x):
        x = x.conv(4, 4, padding="same", name="even")
        x = x.conv(4, (3, 5), padding="same", dilation=2, name="dil")
        x = x.conv(4, 3, padding="valid", name="valid")
        return x.maxpool(2).avgpool((2, 1))

    g = build(net, input=(3, 12, 12))
    assert g.op("even").padding == (1, 1, 2, 2)
    assert g.op("dil").padding == (2, 4, 2, 4)
    assert g.shape("dil") == (4, 12, 12) and g.shape("valid") == (4, 10, 10)
    assert g.op("maxpool1").stride == (2, 2) and g.shape("maxpool1") == (4, 5, 5)
    assert g.op("avgpool1").stride == (2, 1) and g.shape("avgpool1") == (4, 2, 5)


def test_every_tensor_method_makes_its_op():
    def net(x):
        x = x.conv(4, 3, padding=1).bn().lrn().relu().leaky_relu(0.1).relu6().sigmoid()
        x = x.hardsigmoid().tanh().hardswish().silu().dropout(0.2).identity()
        x = x.upsample(2, "bilinear").adaptive_avgpool((3, 2)).maxpool(1)
        return x.global_avgpool().flatten().linear(2).softmax()

    g = build(net, input=(3, 4, 4))
    assert [g.op(n).kind for n in g.nodes()] == [
        "input", "conv2d", "batchnorm2d", "lrn", "relu", "leaky_relu", "relu6", "sigmoid",
        "hardsigmoid", "tanh", "hardswish", "silu", "dropout", "identity", "upsample",
        "adaptive_avgpool2d", "maxpool2d", "global_avgpool", "flatten", "linear", "softmax"]
    assert g.op("upsample1") == O.Upsample(2, "bilinear") and g.op("dropout1") == O.Dropout(0.2)
    assert g.op("lrelu1") == O.LeakyReLU(0.1) and g.shape("adaptpool1") == (4, 3, 2)


def test_layers_cannot_be_made_outside_a_model():
    holder = []

    @model(input=(3, 8, 8))
    def net(x):
        holder.append(x)
        return x.relu()

    net.build()
    with pytest.raises(DslError, match="layer 'conv' can only be used while a @model function "
                                       "is being built"):
        holder[0].conv(4, 3)
    with pytest.raises(DslError, match="block 'unit' can only be used while"):
        unit(holder[0], 4)


def test_a_tensor_has_no_truth_value():
    def net(x):
        return x if x else x

    with pytest.raises(DslError, match="a cnnir Tensor has no truth value"):
        build(net)


def test_block_name_collisions_and_bad_names():
    def twice(x):
        return unit(unit(x, 4, name="a"), 4, name="a")

    with pytest.raises(DslError, match="a block named 'unit_a' already exists; pick another name="):
        build(twice)

    def bad(x):
        return x.conv(4, 3, name="a/b")

    with pytest.raises(DslError, match="name must be a non-empty string without '/' or spaces, "
                                       "got 'a/b'"):
        build(bad)


def test_dsl_error_names_the_method_the_user_called():
    def net(x):
        return x.flatten().linear(0)

    with pytest.raises(DslError) as info:
        build(net)
    assert info.value.msg == "linear 'fc1': out_features must be a positive integer, got 0"
    assert info.value.node == "fc1"


def test_load_file_picks_a_model_by_name(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(textwrap.dedent('''\
        from cnnir.dsl import model
        from cnnir.zoo.lenet import lenet5

        @model(input=(3, 8, 8))
        def small(x):
            return x.conv(2, 3)

        @model(input=(3, 8, 8), name="big_one")
        def big(x):
            return x.conv(64, 3)
    '''))
    assert load_file(str(path), "small").name == "small"
    assert cnnir.load(f"{path}:big_one").shape("conv1") == (64, 6, 6)
    with pytest.raises(DslError, match="a second @model 'big_one'"):
        load_file(str(path))
    only_import = tmp_path / "reexport.py"
    only_import.write_text("from cnnir.zoo.lenet import lenet5\n")
    assert load_file(str(only_import)).name == "lenet5"


def test_spec_and_input_parsing():
    assert split_spec("net.py:resnet") == ("net.py", "resnet")
    assert split_spec("dir/net.py") == ("dir/net.py", None)
    assert split_spec("resnet50") == ("resnet50", None)
    assert split_spec("C:\\nets\\net.py") == ("C:\\nets\\net.py", None)
    assert parse_input("3x299x299") == (3, 299, 299)
    assert parse_input("3,64,48") == (3, 64, 48)
    assert parse_input("784") == (784,)
    assert parse_input(None) is None
