"""Invalid networks: cnnir raises its own error, never another exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cnnir.errors import CnnirError
from cnnir.passes.infer_shapes import infer_shapes

from .strategies import BREAKERS, FUZZ, build, invalid_programs, junk_step, valid_programs

FAST = FUZZ


def build_and_infer(program):
    return infer_shapes(build(program))


@FAST
@given(invalid_programs())
def test_invalid_program_raises_only_cnnir_errors(program):
    """Breakers must fail with a CnnirError; junk arguments may be valid by chance,
    but when they are not, the failure is a CnnirError with a message, never a crash."""
    must_fail = any(step in BREAKERS for step in program[1])
    try:
        build_and_infer(program)
    except CnnirError as exc:
        assert str(exc).strip(), "an error must say something"
        return
    assert not must_fail, f"{program} should have been rejected"


@FAST
@given(valid_programs(max_steps=3, head=False), st.data())
def test_junk_arguments_never_crash(program, data):
    (c, h, w), steps = program
    steps = [*steps, data.draw(junk_step())]
    try:
        build_and_infer(((c, h, w), steps))
    except CnnirError as exc:
        assert exc.loc is not None, f"error without a location: {exc}"


@FAST
@given(valid_programs())
def test_valid_programs_infer(program):
    graph = build_and_infer(program)
    assert all(graph.meta(n)["shape"] is not None for n in graph.nodes())
