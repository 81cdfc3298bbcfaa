"""``training-memory``, ``backward-cost`` and the ``--memory`` budget (issue 18), by hand:
exact bytes and MACs of a small network, and what dtype, AMP, the device, frozen
layers and the optimizer change.  (``test_training_torch.py`` checks the zoo against
PyTorch.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from cnnir import api
from cnnir import ops as O
from cnnir.backends.training_report import build_training, largest_batch, peak_at
from cnnir.dsl import model
from cnnir.errors import CnnirError, PassError, UsageError
from cnnir.ir import Graph
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.training import BackwardCost, TrainingMemory


@model(input=(3, 8, 8))
def small(x):
    return x.conv(4, 3, padding=1).bn().relu().maxpool(2).flatten().linear(5)


@model(input=(3, 8, 8))
def with_dropout(x):
    return x.conv(4, 3, padding=1).relu().flatten().dropout(0.5).linear(5)


def graph(m=small) -> Graph:
    g = m.build()
    infer_shapes(g)
    return g


def saved_by_node(g: Graph) -> dict[str, int]:
    return {v.op.kind: v.meta["training"]["saved_bytes"] for v in g.walk()}


def test_small_network_by_hand():
    g = graph()
    mem = TrainingMemory(batch=2, optimizer="adam")
    mem.run(g)
    assert saved_by_node(g) == {
        "input": 0,
        "conv2d": 2 * 3 * 8 * 8 * 4,              # the image it reads
        "batchnorm2d": 2 * 4 * 8 * 8 * 4 + 2 * 4 * 4,  # its input, batch mean and invstd
        "relu": 2 * 4 * 8 * 8 * 4,                # its output
        "maxpool2d": 2 * 4 * 4 * 4 * 8,           # int64 indices (its input is relu's output)
        "flatten": 0,                             # a view
        "linear": 2 * 64 * 4,                     # its input (the pool's output, viewed)
    }
    assert mem.saved_bytes == 7200
    trainable = (4 * 3 * 9 + 4) + (4 + 4) + (64 * 5 + 5)
    assert mem.param_bytes == (trainable + 8) * 4  # BN running statistics are buffers
    assert mem.grad_bytes == trainable * 4 and mem.optimizer_bytes == 2 * trainable * 4
    assert mem.peak_bytes >= mem.saved_bytes + mem.param_bytes + mem.optimizer_bytes
    assert mem.peak_bytes == max(mem.forward_peak_bytes, mem.backward_peak_bytes)


def test_saved_bytes_grow_with_the_batch_but_statistics_do_not():
    a, b = TrainingMemory(batch=1), TrainingMemory(batch=3)
    a.run(graph())
    b.run(graph())
    per_image = 7200 // 2 - 16  # batch 2 above, less the BN statistics
    assert a.saved_bytes == per_image + 32 and b.saved_bytes == 3 * per_image + 32


def test_backward_macs_input_and_weight_gradients_apart():
    g = graph()
    bwd = BackwardCost(batch=2)
    bwd.run(g)
    got = {v.op.kind: v.meta["backward"] for v in g.walk()}
    conv_macs = 2 * 8 * 8 * 4 * 3 * 9
    assert got["conv2d"] == {"input_grad_macs": 0,  # the first layer: no input gradient
                             "weight_grad_macs": conv_macs, "other_ops": 2 * 256}
    assert got["linear"] == {"input_grad_macs": 2 * 64 * 5, "weight_grad_macs": 2 * 64 * 5,
                             "other_ops": 2 * 5}
    assert got["batchnorm2d"]["other_ops"] == 9 * 2 * 256
    assert bwd.total_input_grad_macs == 640 and bwd.total_weight_grad_macs == conv_macs + 640


def test_frozen_layers_keep_nothing_and_compute_no_weight_gradient():
    g = graph()
    mem = TrainingMemory(batch=2, frozen=("conv1",))
    mem.run(g)
    assert saved_by_node(g)["conv2d"] == 0  # neither its weight nor its input needs grad
    assert mem.saved_bytes == 7200 - 1536
    assert mem.grad_bytes == ((4 + 4) + (64 * 5 + 5)) * 4
    bwd = BackwardCost(batch=2, frozen=("conv1",))
    bwd.run(g)
    assert g.meta("conv1")["backward"] == {"input_grad_macs": 0, "weight_grad_macs": 0,
                                           "other_ops": 0}


def test_dropout_keeps_a_bool_mask_on_cuda_and_the_noise_on_cpu():
    g = graph(with_dropout)
    n = 2 * 4 * 8 * 8
    for device, size in (("cuda", 1), ("cpu", 4)):
        TrainingMemory(batch=2, device=device).run(g)
        assert g.meta("dropout1")["training"]["saved"] == [["mask" if size == 1 else "noise",
                                                            n * size]]


def test_amp_counts_low_precision_activations_weight_copies_and_fp32_masters():
    g = graph()
    mem = TrainingMemory(batch=2, dtype="bfloat16", amp=True, optimizer="momentum")
    mem.run(g)
    copies = 2 * 3 * 8 * 8 * 2 + 108 * 2 + 320 * 2  # the cast image, conv and fc weights
    assert mem.weight_copy_bytes == copies
    assert mem.saved_bytes == (7200 - 1536 - 32 - 1024) // 2 + 32 + 1024 + copies
    trainable = 445
    assert mem.param_bytes == (trainable + 8) * 4 and mem.optimizer_bytes == trainable * 4
    pure = TrainingMemory(batch=2, dtype="float16")
    pure.run(graph())
    assert pure.param_bytes == (trainable + 8) * 2


@pytest.mark.parametrize("options, message", [
    ({"dtype": "int8"}, "unknown dtype 'int8'"), ({"amp": True}, "amp needs a low dtype"),
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"), ({"batch": 0}, "at least 1")])
def test_bad_options_are_named(options, message):
    with pytest.raises(PassError, match=message):
        TrainingMemory(**options).run(graph())


@dataclass(frozen=True)
class Swish2(O.Activation):
    """A new activation from elsewhere: it has no saved-tensors rule."""

    kind: ClassVar[str] = "swish2_test"
    per_element: ClassVar[int | None] = 2

    def cost(self, inputs, out):
        return 0, 2 * O.numel(out)


def test_an_op_without_a_rule_is_named_never_counted_as_zero():
    g = Graph("t")
    g.add("input", O.Input((3, 4, 4)))
    g.add("conv", O.Conv2d(2, 1), ["input"])
    g.add("act", Swish2(), ["conv"])
    g.outputs = ["act"]
    infer_shapes(g)
    for p in (TrainingMemory(), BackwardCost()):
        with pytest.raises(PassError, match="no rule for op kind 'swish2_test'.*'act'"):
            p.run(g)


def test_largest_batch_is_the_exact_boundary():
    g = graph()
    budget = peak_at(g, 37, optimizer="adam") + 1
    most = largest_batch(g, budget, optimizer="adam")
    assert most == 37
    assert peak_at(g, most, optimizer="adam") <= budget < peak_at(g, most + 1, optimizer="adam")
    assert largest_batch(g, 10) == 0


def test_report_json_carries_the_figures():
    rep = build_training(graph(), batch=2, optimizer="adam")
    data = json.loads(rep.render("json"))
    assert data["totals"]["saved_bytes"] == 7200 and data["optimizer"] == "adam"
    assert [r["name"] for r in data["layers"]][:2] == ["input", "conv1"]
    for fmt in ("table", "csv", "md", "latex"):
        assert "conv1" in rep.render(fmt)
    assert "\\begin{longtable}" in rep.render("latex")


def test_api_budget_and_memory_sizes():
    assert api.parse_memory("24GiB") == 24 * 2**30 and api.parse_memory("16GB") == 16 * 10**9
    for bad in ("lots", "-1GiB", "12XB", "0"):
        with pytest.raises(UsageError, match="--memory must be a positive size"):
            api.parse_memory(bad)
    b = api.budget("resnet18", "8GiB", batch=64, optimizer="adam")
    assert b.fits and b.largest_batch >= 64 and "fits" in str(b)
    small_b = api.budget("resnet18", "1GiB", batch=64, optimizer="adam")
    assert not small_b.fits and 0 < small_b.largest_batch < 64


def test_cli_check_memory_fits_or_not(cli):
    ok = cli("check", "resnet18", "--training", "--batch", "64", "--optimizer", "adam",
             "--memory", "24GiB")
    assert ok.returncode == 0 and "resnet18: fits" in ok.stdout, ok.stderr
    no = cli("check", "resnet18", "--training", "--batch", "64", "--memory", "1GiB")
    assert no.returncode == 3 and "does not fit" in no.stdout
    assert "the largest batch that fits is" in no.stdout
    bad = cli("check", "resnet18", "--memory", "1GiB")
    assert bad.returncode == 2 and "--memory applies to --training only" in bad.stderr


def test_cli_report_training_json(cli, tmp_path):
    out = tmp_path / "t.json"
    r = cli("report", "resnet18", "--training", "--batch", "4", "--format", "json", "-o",
            str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["batch"] == 4 and data["totals"]["peak_bytes"] > 0
    bad = cli("report", "resnet18", "--training", "--compare", "fuse-conv-bn-relu")
    assert bad.returncode == 2 and "--compare does not apply to --training" in bad.stderr


def test_a_graph_error_is_a_cnnir_error():
    with pytest.raises(CnnirError):
        api.training("no_such_model_xyz")
