"""Every op has a rule in every analysis and every target, or a refusal declared on purpose.

The analyses ask the op (``params``, ``cost``, ``receptive_field``: see cnnir/ops/base.py);
the targets keep their own :class:`~cnnir.rules.RuleTable` -- PyTorch emission, ONNX
export (keyed by op class: a rule or a ``refuse``) and ONNX and torch.fx import (keyed
by the foreign name: some rule ``produces`` the op, or ``not_produced`` says why none
does).  :func:`missing` lists every gap by name; the test wants the list empty, and the
second test shows it names an op the moment one rule goes.
"""

from __future__ import annotations

import importlib

import pytest

from cnnir import ops as O
from cnnir.ops.base import RULES as ANALYSIS_RULES
from cnnir.rules import RuleTable

#: the modules that fill the tables (importing them imports neither torch nor onnx)
TARGET_MODULES = ("cnnir.backends.torch_rules", "cnnir.backends.onnx_export_rules",
                  "cnnir.frontends.onnx_rules", "cnnir.frontends.torch_rules")
TARGETS = ("pytorch", "onnx-export", "onnx-import", "torch-import")


def _tables() -> dict[str, RuleTable]:
    for module in TARGET_MODULES:
        importlib.import_module(module)
    return {t: RuleTable.ALL[t] for t in TARGETS}


def missing(tables: dict[str, RuleTable]) -> list[str]:
    """``"<target>: <op kind>"`` for every op that some analysis or target cannot handle."""
    gaps = []
    for cls in O.ALL_OPS:
        for rule in ANALYSIS_RULES:
            if getattr(cls, rule) is getattr(O.Op, rule):
                gaps.append(f"analysis {rule}: {cls.kind}")
        for target, table in tables.items():
            covered = cls in table.produced() if table.reads else table.handles(cls)
            if not covered:
                gaps.append(f"{target}: {cls.kind}")
    return gaps


def test_every_op_has_a_rule_in_every_analysis_and_target() -> None:
    gaps = missing(_tables())
    assert not gaps, "ops without a rule (add one, or a deliberate refusal):\n  " + \
        "\n  ".join(gaps)


def _sole_rule(table: RuleTable) -> tuple[object, set[type]]:
    """A key whose rule is the only way its table covers some op, and those ops."""
    for key in table.keys():
        if not table.reads:
            return key, {key}  # type: ignore[arg-type]
        others = set(table._not_produced).union(
            *(made for k, made in table._produces.items() if k != key))
        sole = set(table._produces[key]) - others
        if sole:
            return key, sole
    raise AssertionError(f"{table.target}: every op is produced by two rules")


@pytest.mark.parametrize("target", TARGETS)
def test_removing_one_rule_is_named(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _tables()
    table = tables[target]
    key, victims = _sole_rule(table)
    assert not missing(tables)
    monkeypatch.delitem(table._rules, key)
    monkeypatch.delitem(table._produces, key)
    gaps = missing(tables)
    assert {f"{target}: {cls.kind}" for cls in victims} <= set(gaps), gaps


@pytest.mark.parametrize("rule", ANALYSIS_RULES)
def test_an_op_without_an_analysis_rule_is_named(rule: str) -> None:
    class Strange(O.Conv2d):
        kind = "strange"

    setattr(Strange, rule, getattr(O.Op, rule))
    try:
        O.ALL_OPS += (Strange,)  # type: ignore[misc]
        assert f"analysis {rule}: strange" in missing(_tables())
    finally:
        O.ALL_OPS = O.ALL_OPS[:-1]  # type: ignore[misc]


def test_the_derivation_is_an_analysis_rule() -> None:
    """``cnnir explain`` asks each op for its formulas (issue 17 B): an op without them
    is a gap, as one without a cost rule is."""
    assert "explain" in ANALYSIS_RULES
