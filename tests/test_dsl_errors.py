"""Malformed DSL programs (``tests/dsl_bad/*.py``) meet ``cnnir check`` as a user would.

Each file states what must happen in its header comments:

* ``# expect: MESSAGE``: the error message (after ``file:line: error:``);
* ``# hint: TEXT``: an optional second line ``  hint: TEXT``;
* ``# layer: NAME``: the layer (or block, model, method) the message must name;
* ``# spec: :NAME``: appended to the path on the command line;

and marks lines with comments: ``# <-`` on the line the error must point at (none
for an error about the whole file), ``# @label`` on lines the message refers to as
``{line:label}``.  ``{file}`` is the path as the user typed it.

Every program must end with exit code 2, exactly that message on stderr, nothing on
stdout, and no traceback.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BAD = sorted((ROOT / "tests" / "dsl_bad").glob("*.py"))


def expectation(path: pathlib.Path) -> tuple[str, str, str | None]:
    """(command-line spec, expected stderr, layer) from the file's own comments."""
    text = path.read_text()
    lines = text.splitlines()
    header = dict(re.findall(r"^# (expect|hint|layer|spec): (.*)$", text, re.M))
    rel = path.relative_to(ROOT).as_posix()
    marks = {m: i for i, line in enumerate(lines, 1) for m in re.findall(r"@(\w+)", line)
             if "# " in line and not line.startswith("# ")}
    message = re.sub(r"\{line:(\w+)\}", lambda m: str(marks[m.group(1)]), header["expect"])
    message = message.replace("{file}", rel)
    error_lines = [i for i, line in enumerate(lines, 1) if "# <-" in line]
    assert len(error_lines) <= 1, f"{path.name}: more than one '# <-' marker"
    where = f"{rel}:{error_lines[0]}" if error_lines else rel
    stderr = f"{where}: error: {message}"
    if "hint" in header:
        stderr += f"\n  hint: {header['hint']}"
    return rel + header.get("spec", ""), stderr, header.get("layer")


def test_there_are_at_least_15_distinct_malformed_programs():
    assert len(BAD) >= 15
    messages = [expectation(p)[1] for p in BAD]
    assert len(set(messages)) == len(messages)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_check_fails_with_one_located_message(path, cli):
    spec, expected, layer = expectation(path)
    proc = cli("check", spec)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.rstrip("\n") == expected
    if layer is not None:
        first = proc.stderr.splitlines()[0]
        assert (f"'{layer}'" if not layer.endswith("()") else layer) in first


def test_debug_shows_the_traceback(cli):
    proc = cli("--debug", "check", "tests/dsl_bad/kernel_too_large.py")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ShapeError" in proc.stderr
