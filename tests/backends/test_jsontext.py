"""json_text writes exactly what json.dumps(obj, indent=...) writes: reports of zoo
models, generated JSON values, and the values it leaves to json.dumps."""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnir import load
from cnnir.backends.jsontext import json_text
from cnnir.backends.report import build_report, to_json


@pytest.mark.parametrize("model", ["resnet152", "googlenet", "mobilenet_v2"])
def test_a_zoo_report_is_the_text_json_dumps_writes(model):
    doc = to_json(build_report(load(model)))
    assert json_text(doc) == json.dumps(doc, indent=2)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=True, allow_infinity=True)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from([0, 1, 2, 4]))
def test_generated_values_match_json_dumps(value, indent):
    assert json_text(value, indent) == json.dumps(value, indent=indent)


class Level(enum.IntEnum):
    HIGH = 3


class Ratio(float):
    def __repr__(self):
        return "ratio"


@pytest.mark.parametrize(
    "value",
    [
        {1: "a", None: [1, 2]},  # non-string keys: json.dumps converts them
        [Level.HIGH, True, 2],  # an int subclass inside a list of ints
        {"r": Ratio(0.5)},  # a float subclass
        ["é", "\u2028", "\x00", math.inf, -math.inf],
        {"a": [], "b": {}, "c": [[]], "d": ()},
    ],
)
def test_values_left_to_json_dumps_or_written_alike(value):
    assert json_text(value) == json.dumps(value, indent=2)


def test_what_json_dumps_refuses_is_refused_alike():
    cyclic: list = []
    cyclic.append(cyclic)
    for value in ({"x": object()}, cyclic, {(1, 2): 3}):
        with pytest.raises((TypeError, ValueError)) as ours:
            json_text(value)
        with pytest.raises((TypeError, ValueError)) as theirs:
            json.dumps(value, indent=2)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)
