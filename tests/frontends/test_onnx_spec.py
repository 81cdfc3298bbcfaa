"""Every attribute and input the ONNX spec gives an imported op (opsets 7 to the newest
this onnx package knows) is in its rule's list, handled or refused: a new opset's
attribute cannot slip through unread.  The list is the table in docs/frontends.md."""

from __future__ import annotations

import pathlib

import onnx.defs
import pytest
from onnx.defs import SchemaError

from cnnir import ops as O
from cnnir.frontends.onnx_import import _LATEST, CONST_SPECS
from cnnir.frontends.onnx_support import ONNX, SPECS, OpSpec, spec_table
from cnnir.rules import RuleTable

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "frontends.md"
LATEST = onnx.defs.onnx_opset_version()


def spec_names(op: str) -> dict[int, set[str]]:
    """opset -> the attribute and input names of ``op`` at that opset (7..LATEST)."""
    out = {}
    for v in range(7, LATEST + 1):
        try:
            s = onnx.defs.get_schema(op, v)
        except SchemaError:
            continue  # not defined yet at this opset (HardSwish before 14 ...)
        out[v] = set(s.attributes) | {i.name for i in s.inputs}
    return out


def missing(op: str, spec: OpSpec) -> dict[int, list[str]]:
    return {v: sorted(names - spec.known) for v, names in spec_names(op).items()
            if names - spec.known}


def test_the_rules_are_one_rule_table_per_onnx_op_type():
    assert RuleTable.ALL["onnx-import"] is ONNX and ONNX.reads
    assert set(ONNX.keys()) == set(SPECS)


@pytest.mark.parametrize("op", sorted(SPECS))
def test_every_attribute_and_input_of_a_rule_is_handled_or_refused(op):
    assert spec_names(op), f"{op} is no ONNX operator"
    assert missing(op, SPECS[op]) == {}
    # and nothing is listed that no opset has (a stale or misspelt name)
    every = set().union(*spec_names(op).values())
    assert SPECS[op].known <= every, sorted(SPECS[op].known - every)


@pytest.mark.parametrize("op", sorted(CONST_SPECS))
def test_every_attribute_and_input_of_constant_evaluation_is_read_or_refused(op):
    assert missing(op, CONST_SPECS[op]) == {}
    assert CONST_SPECS[op].known <= set().union(*spec_names(op).values())


def test_the_checker_sees_a_missing_name():
    """The walk can fail: drop one attribute from a rule's list and it is named."""
    conv = SPECS["Conv"]
    fewer = OpSpec(tuple(h for h in conv.handled if h != "dilations"), conv.refused)
    assert missing("Conv", fewer) == {v: ["dilations"] for v in spec_names("Conv")}


def test_the_driver_names_the_newest_opset_it_was_checked_against():
    assert _LATEST == LATEST


def test_every_cnnir_op_is_produced_by_some_rule_or_declared_not_to_be():
    assert set(O.OP_TYPES.values()) <= ONNX.produced()


def test_the_docs_table_is_the_rules_list():
    assert spec_table() in DOCS.read_text(), "regenerate with onnx_support.spec_table()"
