"""The package stays lint-clean (ruff) and type-clean (mypy, config in pyproject.toml).

Both tools come with the ``dev`` extra that the README's test command installs.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool, argv", [
    ("ruff", ["check", "."]),
    ("mypy", ["--no-error-summary"]),
])
def test_tool_is_clean(tool, argv):
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([sys.executable, "-m", tool, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
