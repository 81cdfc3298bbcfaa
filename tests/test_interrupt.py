"""Ctrl-C during ``compile`` or ``draw``: exit 130, no partial file, no temporary left behind.

The interrupt is raised at the worst moment a write has: the output is fully written to
its temporary file and about to be renamed into place.
"""

from __future__ import annotations

import os

import pytest

from cnnir import cli, util


def _interrupt(*args: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("argv,name", [
    (["compile", "lenet5", "--to", "onnx"], "out.onnx"),
    (["compile", "lenet5", "--to", "json"], "out.json"),
    (["draw", "lenet5"], "out.dot"),
    (["report", "lenet5", "--format", "json"], "out.json"),
])
def test_ctrl_c_leaves_no_file_and_exits_130(argv: list[str], name: str, tmp_path,
                                             monkeypatch, capsys) -> None:
    out = tmp_path / name
    monkeypatch.setattr(util.os, "replace", _interrupt)
    assert cli.main([*argv, "-o", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # neither the output nor a .cnnir-*.tmp


def test_ctrl_c_keeps_the_last_good_output(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out.onnx"
    assert cli.main(["compile", "lenet5", "--to", "onnx", "-o", str(out)]) == 0
    good = out.read_bytes()
    monkeypatch.setattr(util.os, "replace", _interrupt)
    assert cli.main(["compile", "lenet5", "--to", "onnx", "-o", str(out), "--seed", "1"]) == 130
    assert out.read_bytes() == good
    assert os.listdir(tmp_path) == ["out.onnx"]
