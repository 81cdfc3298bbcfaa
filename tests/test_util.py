"""Atomic output files: all or nothing, with the mode a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from cnnir.errors import UsageError
from cnnir.util import write_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(str(tmp_path / "a.txt"), "hello")
        with open(tmp_path / "b.txt", "w") as fh:
            fh.write("hello")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt") == 0o644


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    write_atomic(str(path), b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    class Boom(str):
        def encode(self, *a, **k):  # noqa: ANN002, ANN003
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_atomic(str(path), Boom("new"))
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_an_unwritable_place_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        write_atomic(str(tmp_path / "no" / "a.txt"), "x")
    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(str(tmp_path), "x")
