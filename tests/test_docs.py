"""The documentation's examples are executed, so they cannot rot.

Every ``>>>`` example in README.md and docs/*.md runs as a doctest.
"""

from __future__ import annotations

import doctest
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_doc_examples(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(path), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} example(s) failed in {path.name}"


def test_docs_have_examples():
    """The DSL reference must keep executable examples (a doc with none cannot fail)."""
    text = (ROOT / "docs" / "dsl.md").read_text()
    assert text.count(">>> ") >= 10
