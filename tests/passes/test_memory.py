"""memory: activation bytes, parameter bytes and the peak of a schedule that frees each
tensor after its last use, by hand on small graphs and against a brute-force replay."""

from __future__ import annotations

import pytest

from cnnir import load
from cnnir import ops as O
from cnnir.errors import PassError
from cnnir.ir import Graph
from cnnir.passes import get_pass
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.memory import Memory, peak_activation_bytes


def mem(g, n):
    return g.meta(n)["memory"]


def test_chain_by_hand():
    g = Graph("t")
    g.add("input", O.Input((1, 4, 4)))        # 16 elements
    g.add("a", O.Conv2d(2, 1), ["input"])     # 32
    g.add("b", O.Conv2d(8, 1), ["a"])         # 128
    g.add("c", O.MaxPool2d(2), ["b"])         # 32
    g.outputs = ["c"]
    infer_shapes(g)
    p = Memory()
    p.run(g)
    assert [mem(g, n)["activation_bytes"] for n in g.nodes()] == [64, 128, 512, 128]
    # while a node runs its inputs and its output are alive; input dies after a, etc.
    assert [mem(g, n)["live_bytes"] for n in g.nodes()] == [64, 64 + 128, 128 + 512, 512 + 128]
    assert p.peak_bytes == 640
    assert p.activation_bytes == 64 + 128 + 512 + 128
    assert mem(g, "a")["param_bytes"] == (2 * 1 + 2) * 4
    assert mem(g, "b")["param_bytes"] == (8 * 2 + 8) * 4


def test_a_branch_keeps_its_input_alive():
    g = Graph("t")
    g.add("input", O.Input((1, 2, 2)))       # 4 elements -> 16 bytes
    g.add("a", O.ReLU(), ["input"])          # 16
    g.add("b", O.Conv2d(3, 1), ["input"])    # 48
    g.add("cat", O.Concat(), ["a", "b"])     # 64
    g.outputs = ["cat"]
    infer_shapes(g)
    Memory().run(g)
    assert mem(g, "a")["live_bytes"] == 16 + 16
    assert mem(g, "b")["live_bytes"] == 16 + 16 + 48  # input still needed by b, a by cat
    assert mem(g, "cat")["live_bytes"] == 16 + 48 + 64  # input freed after b


def test_outputs_stay_alive_and_dead_ends_are_freed():
    g = Graph("t")
    g.add("input", O.Input((1, 2, 2)))      # 16 bytes
    g.add("head1", O.ReLU(), ["input"])     # output: kept to the end
    g.add("dead", O.Sigmoid(), ["input"])   # nobody reads it: freed at once
    g.add("head2", O.Tanh(), ["input"])
    g.outputs = ["head1", "head2"]
    infer_shapes(g)
    Memory().run(g)
    assert mem(g, "head1")["live_bytes"] == 32
    assert mem(g, "dead")["live_bytes"] == 48
    assert mem(g, "head2")["live_bytes"] == 48  # input + head1 + head2; dead is gone


def test_the_same_tensor_twice_is_freed_once():
    g = Graph("t")
    g.add("input", O.Input((1, 2, 2)))
    g.add("a", O.ReLU(), ["input"])
    g.add("sq", O.Mul(), ["a", "a"])
    g.add("out", O.ReLU(), ["sq"])
    g.outputs = ["out"]
    infer_shapes(g)
    Memory().run(g)
    assert [mem(g, n)["live_bytes"] for n in g.nodes()] == [16, 32, 32, 32]


def test_dtype_and_batch():
    g = infer_shapes(load("lenet5").copy())
    f32 = Memory()
    f32.run(g)
    for dtype, size in (("float16", 2), ("bfloat16", 2), ("int8", 1)):
        p = Memory(dtype=dtype)
        p.run(g)
        assert p.param_bytes * 4 == f32.param_bytes * size
        assert p.peak_bytes * 4 == f32.peak_bytes * size
    b8 = Memory(batch=8)
    b8.run(g)
    assert b8.activation_bytes == 8 * f32.activation_bytes
    assert b8.peak_bytes == 8 * f32.peak_bytes
    assert b8.param_bytes == f32.param_bytes  # weights are shared by the batch
    with pytest.raises(PassError, match="unknown dtype 'float64'"):
        Memory(dtype="float64").run(g)
    with pytest.raises(PassError, match="batch"):
        Memory(batch=0).run(g)
    assert get_pass("memory", dtype="int8", batch="2") == Memory(dtype="int8", batch=2)


def test_param_bytes_include_batchnorm_buffers():
    g = Graph("t")
    g.add("input", O.Input((5, 2, 2)))
    g.add("bn", O.BatchNorm2d(), ["input"])
    g.outputs = ["bn"]
    infer_shapes(g)
    Memory(dtype="float16").run(g)
    assert mem(g, "bn")["param_bytes"] == (10 + 10) * 2


def replay_peak(g, size):
    """Brute force: at step i a tensor is alive if it was made at or before i and is an
    output, or is made at i, or some user runs at i or later."""
    order = g.nodes()
    pos = {n: i for i, n in enumerate(order)}
    users = {n: [] for n in order}
    for n in order:
        for i in g.inputs(n):
            users[i].append(pos[n])
    peak = 0
    for i in range(len(order)):
        live = 0
        for n in order[: i + 1]:
            if n == order[i] or n in g.outputs or any(u >= i for u in users[n]):
                live += g.shape(n).numel * size
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("name, size", [("resnet18", 64), ("googlenet", 224)])
def test_peak_matches_a_brute_force_replay(name, size):
    g = load(name, input=(3, size, size))
    assert peak_activation_bytes(g) == replay_peak(g, 4)


def test_vgg16_memory_of_the_reference():
    g = load("vgg16")
    p = Memory()
    p.run(g)
    # REFERENCE.md: "on the order of 15M activations (~60 MB) plus 138M params (~553 MB)";
    # the 15M count is the output of every conv and pool plus the input (ReLUs run in
    # place in those notes): 224^2*64*2 + 112^2*128*2 + 56^2*256*3 + 28^2*512*3
    # + 14^2*512*3 (convs) + 112^2*64 + 56^2*128 + 28^2*256 + 14^2*512 + 7^2*512 (pools)
    # + 224^2*3 (input)
    convs = 224**2 * 64 * 2 + 112**2 * 128 * 2 + 56**2 * 256 * 3 + 28**2 * 512 * 3 + 14**2 * 512 * 3
    pools = 112**2 * 64 + 56**2 * 128 + 28**2 * 256 + 14**2 * 512 + 7**2 * 512
    counted = sum(g.meta(n)["memory"]["activation_bytes"] for n in g.nodes()
                  if g.op(n).kind in ("conv2d", "maxpool2d", "input")) // 4
    assert counted == convs + pools + 224**2 * 3 == 15_228_416
    assert round(counted / 1e6) == 15
    assert p.param_bytes == 138_357_544 * 4  # 553.4 MB
    assert round(p.param_bytes / 1e6) == 553
    # peak: a layer of block 1 and its input, two 64x224x224 maps (the 3x224x224 input
    # is freed once conv1_1 has run)
    assert p.peak_bytes == 2 * 224**2 * 64 * 4
