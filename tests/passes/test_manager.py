"""Pipeline strings, pass options, and the pass manager (requirements, re-inference,
timing records, ``--print-after-all``), with small passes defined here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest

from cnnir import ops as O
from cnnir.errors import PassError
from cnnir.ir import Graph
from cnnir.passes import REGISTRY, available, get_pass, parse_pipeline
from cnnir.passes.base import Pass
from cnnir.passes.infer_shapes import infer_shapes
from cnnir.passes.manager import PassManager, run_pipeline

LOG: list[str] = []


@dataclass
class Knobs(Pass):
    """A pass with one option of every kind a pipeline string can carry."""

    name: ClassVar[str] = "test-knobs"
    count: int = 1
    scale: float = 1.0
    enabled: bool = False
    label: str = "x"
    kernels: tuple[int, ...] = (3, 5)
    width: int | None = None
    mode: Literal["fast", "exact"] = "exact"

    def run(self, graph: Graph) -> Graph:
        LOG.append(self.name)
        return graph


@dataclass
class Analysis(Pass):
    """Marks every node (an analysis: same graph back)."""

    name: ClassVar[str] = "test-mark"

    def run(self, graph: Graph) -> Graph:
        LOG.append(self.name)
        for n in graph.nodes():
            graph.meta(n)["mark"] = True
        return graph


@dataclass
class NeedsMark(Pass):
    """Reads what test-mark wrote."""

    name: ClassVar[str] = "test-needs-mark"
    requires: ClassVar[tuple[str, ...]] = ("test-mark",)

    def run(self, graph: Graph) -> Graph:
        LOG.append(self.name)
        assert all(graph.meta(n).get("mark") for n in graph.nodes())
        self.note(f"{len(graph)} nodes marked")
        return graph


@dataclass
class AppendRelu(Pass):
    """A transform: a new graph with one more relu at the end (shapes left to infer)."""

    name: ClassVar[str] = "test-append-relu"
    kind: ClassVar[str] = "transform"

    def run(self, graph: Graph) -> Graph:
        LOG.append(self.name)
        g = graph.copy()
        out = g.outputs[0]
        new = g.add(g.unique_name("extra_relu"), O.ReLU(), [out])
        g.outputs = [new]
        self.changed = True
        self.note(f"appended {new}")
        return g


@dataclass
class LoopA(Pass):
    name: ClassVar[str] = "test-loop-a"
    requires: ClassVar[tuple[str, ...]] = ("test-loop-b",)

    def run(self, graph: Graph) -> Graph:  # pragma: no cover - never reached
        return graph


@dataclass
class LoopB(Pass):
    name: ClassVar[str] = "test-loop-b"
    requires: ClassVar[tuple[str, ...]] = ("test-loop-a",)

    def run(self, graph: Graph) -> Graph:  # pragma: no cover - never reached
        return graph


TEST_PASSES = (Knobs, Analysis, NeedsMark, AppendRelu, LoopA, LoopB)


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    available()  # load the real passes first, then add these for this test only
    for cls in TEST_PASSES:
        monkeypatch.setitem(REGISTRY, cls.name, cls)
    LOG.clear()


def small() -> Graph:
    g = Graph("small")
    g.add("input", O.Input((3, 8, 8)))
    g.add("conv", O.Conv2d(4, 3), ["input"])
    g.outputs = ["conv"]
    return g


# --------------------------------------------------------------------------- pipeline strings


def test_names_whitespace_and_defaults():
    passes = parse_pipeline(" test-mark ,test-knobs,, infer-shapes ")
    assert [p.name for p in passes] == ["test-mark", "test-knobs", "infer-shapes"]
    assert passes[1] == Knobs()


def test_options_are_typed_by_the_pass_fields():
    (p,) = parse_pipeline("test-knobs{count=7, scale=0.25,enabled=yes,label=abc,kernels=3,5,7,"
                          "width=32,mode=fast}")
    assert p == Knobs(count=7, scale=0.25, enabled=True, label="abc", kernels=(3, 5, 7),
                      width=32, mode="fast")
    assert parse_pipeline("test-knobs{kernels=1}")[0].kernels == (1,)
    assert parse_pipeline("test-knobs{width=none}")[0].width is None


@pytest.mark.parametrize("text,value", [("true", True), ("1", True), ("on", True),
                                        ("False", False), ("no", False), ("0", False)])
def test_bool_spellings(text, value):
    assert parse_pipeline(f"test-knobs{{enabled={text}}}")[0].enabled is value


def test_the_real_bottleneck_pass_takes_a_kernel_list():
    (p,) = parse_pipeline("insert-bottleneck{ratio=4,kernels=3,5,min_channels=128}")
    assert (p.name, p.ratio, p.kernels, p.min_channels) == ("insert-bottleneck", 4, (3, 5), 128)


def test_several_passes_with_options():
    passes = parse_pipeline("test-knobs{count=2},test-knobs{kernels=3,5},test-mark")
    assert [(p.name, getattr(p, "count", None)) for p in passes] == [
        ("test-knobs", 2), ("test-knobs", 1), ("test-mark", None)]
    assert passes[1].kernels == (3, 5)


def test_unknown_pass_lists_the_valid_ones():
    with pytest.raises(PassError) as info:
        parse_pipeline("test-mark,fuse-everything")
    assert info.value.msg == f"unknown pass 'fuse-everything'; valid passes: {', '.join(available())}"
    assert "test-knobs" in info.value.msg and "infer-shapes" in info.value.msg


@pytest.mark.parametrize("text,message", [
    ("test-knobs{ratio=4}", "pass 'test-knobs' has no option 'ratio'; its options: count, scale, "
     "enabled, label, kernels, width, mode"),
    ("test-mark{x=1}", "pass 'test-mark' has no option 'x'; it takes no options"),
    ("test-knobs{count=many}", "option count='many' of pass 'test-knobs' is not a valid int"),
    ("test-knobs{count=2.5}", "option count='2.5' of pass 'test-knobs' is not a valid int"),
    ("test-knobs{scale=big}", "option scale='big' of pass 'test-knobs' is not a valid float"),
    ("test-knobs{enabled=maybe}", "option enabled='maybe' of pass 'test-knobs' is not a valid "
     "bool"),
    ("test-knobs{kernels=3,x}", "option kernels='3,x' of pass 'test-knobs' is not a valid list "
     "of ints (such as 3,5)"),
    ("test-knobs{width=wide}", "option width='wide' of pass 'test-knobs' is not a valid int"),
    ("test-knobs{mode=slow}", "option mode='slow' of pass 'test-knobs' must be one of fast, exact"),
    ("test-knobs{count=1,count=2}", "pass 'test-knobs': option 'count' is given twice"),
    ("test-knobs{count}", "pass 'test-knobs': option 'count' needs the form key=value"),
    ("test-knobs{count=1", "pipeline 'test-knobs{count=1': '{' after 'test-knobs' is never "
     "closed"),
    ("test-knobs{count=1}test-mark", "pipeline 'test-knobs{count=1}test-mark': expected ',' "
     "after the options of 'test-knobs', got 'test-mark'"),
    ("{count=1}", "pipeline '{count=1}': empty pass name at position 0"),
    ("", "pipeline '' names no pass"),
    (" , ,", "pipeline ' , ,' names no pass"),
])
def test_bad_pipelines(text, message):
    with pytest.raises(PassError) as info:
        parse_pipeline(text)
    assert info.value.msg == message


def test_get_pass_passes_python_values_through():
    assert get_pass("test-knobs", kernels=(1, 3), enabled=True) == Knobs(kernels=(1, 3),
                                                                        enabled=True)


# --------------------------------------------------------------------------- the manager


def test_shapes_are_inferred_first_and_after_every_transform():
    pm = PassManager.from_string("test-append-relu,test-append-relu")
    g = pm.run(small())
    assert g.outputs == ["extra_relu_2"]
    assert g.shape("extra_relu") == g.shape("extra_relu_2") == (4, 6, 6)
    assert g.shape("conv") == (4, 6, 6)


def test_records_one_entry_per_pass_with_kind_time_change_and_notes():
    pm = PassManager.from_string("test-mark,test-append-relu,test-needs-mark")
    pm.run(small())
    recs = [(r.name, r.kind, r.changed, r.notes) for r in pm.records]
    assert recs == [
        ("test-mark", "analysis", False, []),
        ("test-append-relu", "transform", True, ["appended extra_relu"]),
        # the transform made the marks stale: the requirement runs again
        ("test-mark", "analysis", False, []),
        ("test-needs-mark", "analysis", False, ["3 nodes marked"]),
    ]
    assert all(r.seconds >= 0 for r in pm.records)
    table = pm.timing_table().splitlines()
    assert table[0].split() == ["pass", "kind", "ms", "changed"]
    assert [line.split()[0] for line in table[1:]] == [r.name for r in pm.records]
    assert [line.split()[-1] for line in table[1:]] == ["no", "yes", "no", "no"]


def test_requirements_run_once_and_only_when_missing():
    PassManager.from_string("test-needs-mark,test-needs-mark").run(small())
    assert LOG == ["test-mark", "test-needs-mark", "test-needs-mark"]
    LOG.clear()
    PassManager.from_string("test-mark,test-needs-mark").run(small())
    assert LOG == ["test-mark", "test-needs-mark"]


def test_requirement_cycles_are_reported():
    with pytest.raises(PassError) as info:
        PassManager.from_string("test-loop-a").run(small())
    assert info.value.msg == ("passes require each other in a cycle: test-loop-a -> test-loop-b "
                              "-> test-loop-a")


def test_print_after_all_prints_the_ir_after_each_pass():
    printed: list[str] = []
    pm = PassManager.from_string("test-mark,test-append-relu", print_after_all=True,
                                 printer=printed.append)
    g = pm.run(small())
    assert len(printed) == 2
    assert printed[0].splitlines()[0] == "// IR after test-mark"
    assert printed[1] == "// IR after test-append-relu\n" + g.format()
    assert "%extra_relu = relu(%conv) : 4x6x6" in printed[1]
    assert "extra_relu" not in printed[0]


def test_analyses_return_the_same_graph_and_transforms_a_new_one():
    g = infer_shapes(small())
    assert run_pipeline(g, "test-mark") is g
    out = run_pipeline(g, [AppendRelu()])
    assert out is not g and "extra_relu" not in g


def test_real_pipeline_on_a_zoo_model():
    import cnnir

    g = cnnir.load("resnet18", input="3x64x64")
    pm = PassManager.from_string("fuse-conv-bn-relu,count-params")
    out = pm.run(g)
    assert [r.name for r in pm.records] == ["fuse-conv-bn-relu", "count-params"]
    assert pm.records[0].changed
    assert not any(out.op(n).kind == "batchnorm2d" for n in out.nodes())
    assert out.shape(out.outputs[0]) == (1000,)
