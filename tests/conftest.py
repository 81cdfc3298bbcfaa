"""Shared fixtures: run the ``cnnir`` command as a user would (a fresh process)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli("check", "net.py", cwd=tmp_path)``: ``python -m cnnir ...`` in a subprocess
    (repository root by default), with this checkout first on the path."""

    def run(*argv: str, cwd: os.PathLike[str] | str = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
        return subprocess.run([sys.executable, "-m", "cnnir", *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)

    return run
