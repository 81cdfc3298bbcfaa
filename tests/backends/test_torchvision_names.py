"""torchvision's state_dict names for the zoo models that mirror torchvision.

No torchvision here (it cannot be installed beside CI's torch): the state_dicts are
written in the test by torchvision's naming rules, and the reference forwards are
written by hand with ``torch.nn.functional`` on those tensors.  The check against
real torchvision models is ``benchmarks/check_torchvision_names.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnir import load
from cnnir.backends.pytorch import (
    expected_state_dict,
    state_dict_to_weights,
    to_module,
    torchvision_state_dict,
)
from cnnir.backends.torch_rules import make_plan
from cnnir.backends.torchvision_names import torchvision_paths
from cnnir.errors import BackendError


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bn(sd: dict, prefix: str, c: int, g: torch.Generator) -> None:
    sd[f"{prefix}.weight"] = torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    sd[f"{prefix}.bias"] = torch.randn(c, generator=g, dtype=torch.float64) * 0.1
    sd[f"{prefix}.running_mean"] = torch.randn(c, generator=g, dtype=torch.float64) * 0.1
    sd[f"{prefix}.running_var"] = torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def _conv(sd: dict, key: str, cout: int, cin: int, k: int, g: torch.Generator) -> None:
    sd[key] = torch.randn(cout, cin, k, k, generator=g, dtype=torch.float64) * (2 / (cin * k * k)) ** 0.5


def resnet18_state(g: torch.Generator) -> dict[str, torch.Tensor]:
    """torchvision's resnet18 keys, in its order: conv1, bn1, layerN.i.{conv1,bn1,conv2,
    bn2[,downsample.0,downsample.1]}, fc."""
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "conv1.weight", 64, 3, 7, g)
    _bn(sd, "bn1", 64, g)
    cin = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            p = f"layer{layer}.{i}"
            _conv(sd, f"{p}.conv1.weight", planes, cin, 3, g)
            _bn(sd, f"{p}.bn1", planes, g)
            _conv(sd, f"{p}.conv2.weight", planes, planes, 3, g)
            _bn(sd, f"{p}.bn2", planes, g)
            if i == 0 and cin != planes:
                _conv(sd, f"{p}.downsample.0.weight", planes, cin, 1, g)
                _bn(sd, f"{p}.downsample.1", planes, g)
            cin = planes
    sd["fc.weight"] = torch.randn(1000, 512, generator=g, dtype=torch.float64) * 0.05
    sd["fc.bias"] = torch.randn(1000, generator=g, dtype=torch.float64) * 0.05
    # values a float32 holds exactly (cnnir keeps weights in float32), computed in float64
    return {k: v.float().double() if v.is_floating_point() else v for k, v in sd.items()}


def resnet18_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ResNet-18 as torchvision computes it, from the state_dict alone."""
    def bn(t, p):
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"],
                            sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5)

    x = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer in range(1, 5):
        for i in range(2):
            p = f"layer{layer}.{i}"
            stride = 2 if layer > 1 and i == 0 else 1
            y = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1),
                          f"{p}.bn1"))
            y = bn(F.conv2d(y, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride),
                       f"{p}.downsample.1")
            x = F.relu(y + x)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return F.linear(x, sd["fc.weight"], sd["fc.bias"])


def test_resnet18_loads_a_torchvision_state_dict():
    g = torch.Generator().manual_seed(0)
    sd = resnet18_state(g)
    assert len(sd) == 122  # 20 convs/BN pairs + 3 downsample pairs, 6 keys a BN
    graph = load("resnet18")
    weights = state_dict_to_weights(graph, sd)
    module = to_module(graph, weights=weights).eval().double()
    x = torch.randn(2, 3, 64, 64, generator=g, dtype=torch.float64)
    with torch.no_grad():
        want = resnet18_forward(sd, x)
        got = module(x)
    assert want.shape == (2, 1000)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # the stored values are torchvision's, key by key
    assert torch.equal(torch.from_numpy(weights["layer2/basic1/downsample_bn"]["running_var"]),
                       sd["layer2.0.downsample.1.running_var"].float())
    assert torch.equal(torch.from_numpy(weights["layer2/basic1/downsample_conv"]["weight"]),
                       sd["layer2.0.downsample.0.weight"].float())


def test_the_way_back_gives_torchvision_keys_in_order():
    graph = load("resnet18")
    module = to_module(graph)
    back = torchvision_state_dict(graph, module.state_dict())
    want = resnet18_state(torch.Generator().manual_seed(0))
    assert list(back) == list(want)
    assert all(tuple(back[k].shape) == tuple(want[k].shape) for k in want)


def vgg11_bn_keys() -> list[str]:
    """torchvision's VGG: features is one Sequential of conv, BN, ReLU (3 children a
    conv) and a max pool after each block; classifier is Linear, ReLU, Dropout x2, Linear."""
    keys, i = [], 0
    for block in ((64,), (128,), (256, 256), (512, 512), (512, 512)):
        for _ in block:
            keys += [f"features.{i}.weight", f"features.{i}.bias"]
            keys += [f"features.{i + 1}.{k}" for k in
                     ("weight", "bias", "running_mean", "running_var")]
            i += 3
        i += 1  # the pool
    keys += [f"classifier.{j}.{k}" for j in (0, 3, 6) for k in ("weight", "bias")]
    return keys


def mobilenet_v2_keys() -> list[str]:
    """torchvision's MobileNetV2: features.0 the stem (Conv, BN, ReLU6), features.1..17
    the inverted residuals (conv.0 and conv.1 Conv-BN-ReLU6 triples, then the projection
    conv and BN; the first block has no expansion), features.18 the 1x1 head."""
    bn = ("weight", "bias", "running_mean", "running_var")
    keys = ["features.0.0.weight"] + [f"features.0.1.{k}" for k in bn]
    for i in range(1, 18):
        triples = 1 if i == 1 else 2
        for t in range(triples):
            keys += [f"features.{i}.conv.{t}.0.weight"]
            keys += [f"features.{i}.conv.{t}.1.{k}" for k in bn]
        keys += [f"features.{i}.conv.{triples}.weight"]
        keys += [f"features.{i}.conv.{triples + 1}.{k}" for k in bn]
    keys += ["features.18.0.weight"] + [f"features.18.1.{k}" for k in bn]
    return keys + ["classifier.1.weight", "classifier.1.bias"]


def squeezenet_keys(version: str) -> list[str]:
    """torchvision's SqueezeNet: features.0 the first conv; fire modules at 3, 4, 5, 7,
    8, 9, 10, 12 (1.0) or 3, 4, 6, 7, 9, 10, 11, 12 (1.1); classifier.1 the last conv."""
    fires = (3, 4, 5, 7, 8, 9, 10, 12) if version == "1_0" else (3, 4, 6, 7, 9, 10, 11, 12)
    keys = ["features.0.weight", "features.0.bias"]
    for i in fires:
        keys += [f"features.{i}.{c}.{k}" for c in ("squeeze", "expand1x1", "expand3x3")
                 for k in ("weight", "bias")]
    return keys + ["classifier.1.weight", "classifier.1.bias"]


def _named(model: str) -> list[str]:
    graph = load(model)
    plan = make_plan(graph)
    tv = torchvision_paths(graph, plan.paths)
    assert tv is not None
    renamed = {p: tv[n] for n, p in plan.paths.items() if n in tv}
    return [f"{renamed[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}"
            for k in expected_state_dict(graph)]


@pytest.mark.parametrize("model, keys", [
    ("vgg11_bn", vgg11_bn_keys()), ("mobilenet_v2", mobilenet_v2_keys()),
    ("squeezenet1_0", squeezenet_keys("1_0")), ("squeezenet1_1", squeezenet_keys("1_1")),
])
def test_key_lists_follow_torchvisions_rules(model, keys):
    assert _named(model) == keys


@pytest.mark.parametrize("model", ["vgg11_bn", "mobilenet_v2", "squeezenet1_1"])
def test_either_key_style_loads_the_same_numbers(model):
    """A state_dict in torchvision's names loads to the same weights as the same
    tensors in cnnir's names."""
    graph = load(model)
    ours = {k: v for k, v in to_module(graph, mode="random").state_dict().items()
            if not k.endswith("num_batches_tracked")}
    theirs = dict(zip(_named(model), ours.values(), strict=True))
    a = state_dict_to_weights(graph, ours)
    b = state_dict_to_weights(graph, theirs)
    assert a.keys() == b.keys()
    for n in a:
        for k in a[n]:
            assert (a[n][k] == b[n][k]).all()


def test_a_torchvision_file_with_a_wrong_key_names_torchvisions_keys():
    sd = resnet18_state(torch.Generator().manual_seed(1))
    sd["layer1.0.conv3.weight"] = sd.pop("layer1.0.conv2.weight")
    with pytest.raises(BackendError) as err:
        state_dict_to_weights(load("resnet18"), sd, source="tv.pt")
    msg = err.value.msg
    assert "missing keys: layer1.0.conv2.weight" in msg
    assert "unexpected keys: layer1.0.conv3.weight" in msg


def test_models_without_torchvision_names():
    graph = load("googlenet")  # torchvision's GoogLeNet differs (BN, a 3x3 for the 5x5)
    assert torchvision_paths(graph, make_plan(graph).paths) is None
    with pytest.raises(BackendError, match="no torchvision names"):
        torchvision_state_dict(graph, {})


def test_cli_compile_with_a_torchvision_state_dict(tmp_path, cli):
    sd = resnet18_state(torch.Generator().manual_seed(2))
    path = tmp_path / "tv.pt"
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, path)
    out = tmp_path / "r.onnx"
    r = cli("compile", "resnet18", "--to", "onnx", "--weights", str(path), "-o", str(out))
    assert r.returncode == 0, r.stderr
    import onnx

    proto = onnx.load(str(out))
    inits = {i.name: i for i in proto.graph.initializer}
    assert len(inits) > 0
    from onnx import numpy_helper

    fc = [numpy_helper.to_array(i) for i in inits.values() if tuple(i.dims) == (1000,)]
    assert any((torch.from_numpy(a.copy()) == sd["fc.bias"].float()).all() for a in fc)
