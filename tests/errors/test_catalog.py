"""Run every case of the error catalog as a user would, and keep docs/errors.md in sync."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from .catalog import CASES, Case, render_markdown, substitutions

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_cli(argv, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "cnnir", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_catalog_has_at_least_40_distinct_cases():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40, f"only {len(CASES)} cases"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, tmp_path):
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    if case.output:
        (tmp_path / case.output).write_text("OLD RESULT\n")
    proc = run_cli(case.argv, tmp_path)
    expected = case.expect.format(**substitutions(str(tmp_path)))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.rstrip("\n") == expected
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")
             if "__pycache__" not in p.parts}
    if case.output:
        assert (tmp_path / case.output).read_text() == "OLD RESULT\n"
        after.discard(pathlib.Path(case.output))
    assert after == before, f"files left behind: {sorted(map(str, after - before))}"


def test_docs_errors_md_is_generated_from_the_catalog():
    doc = ROOT / "docs" / "errors.md"
    assert doc.read_text() == render_markdown(), (
        "docs/errors.md is stale: python -m tests.errors.catalog > docs/errors.md")
