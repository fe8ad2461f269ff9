"""The CLI's faces of a fix: the unified diff and the atomic write into a script or notebook."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from inplace_magic.fix import WriteRefused, apply_to_file, unified_diff
from inplace_magic.replay.cells import read_cells

SCRIPT = """# %%
import torch
x = torch.randn(3, requires_grad=True)

# %% [markdown]
# The *training* step

# %% Step
y = x.sigmoid()
y += 1  # shift
y.sum().backward()
"""
FIX = {"cells": {"2": "y = x.sigmoid()\ny = y + 1  # shift\ny.sum().backward()\n"}}


def test_unified_diff_shows_each_changed_cell(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    assert unified_diff(read_cells(str(path)), FIX) == (
        "--- cell 2\n+++ cell 2 (fixed)\n@@ -1,3 +1,3 @@\n y = x.sigmoid()\n-y += 1  # shift\n"
        "+y = y + 1  # shift\n y.sum().backward()\n"
    )


def test_unified_diff_of_an_unusable_fix_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    cells = read_cells(str(path))
    assert unified_diff(cells, {"cells": {"1": "x = 1\n"}}) == ""  # a markdown cell
    assert unified_diff(cells, {}) == ""


def test_write_percent_script_keeps_markers_and_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    apply_to_file(str(path), read_cells(str(path)), FIX)
    assert path.read_text() == SCRIPT.replace("y += 1  # shift", "y = y + 1  # shift")
    assert (tmp_path / "train.py.bak").read_text() == SCRIPT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py", "train.py.bak"]


def _notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell("import torch\nx = torch.randn(3, requires_grad=True)", execution_count=1),
        nbformat.v4.new_markdown_cell("# Step"),
        nbformat.v4.new_code_cell(
            "y = x.sigmoid()\ny += 1\ny.sum().backward()",
            execution_count=2,
            metadata={"tags": ["train"]},
            outputs=[nbformat.v4.new_output("error", ename="RuntimeError", evalue="inplace", traceback=[])],
        ),
    ]
    nbformat.write(notebook, str(path))


def test_write_notebook_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "train.ipynb"
    _notebook(path)
    original = path.read_text()
    fix = {"cells": {"2": "y = x.sigmoid()\ny = y + 1\ny.sum().backward()"}}
    apply_to_file(str(path), read_cells(str(path)), fix)
    written = nbformat.read(str(path), as_version=4)
    nbformat.validate(written)
    before = json.loads(original)
    after = json.loads(path.read_text())
    assert written.cells[2].source == fix["cells"]["2"]
    assert after["metadata"] == before["metadata"]
    for old, new in zip(before["cells"], after["cells"], strict=True):
        assert (new["metadata"], new.get("outputs"), new["id"]) == (
            old["metadata"],
            old.get("outputs"),
            old["id"],
        )
    assert after["cells"][:2] == before["cells"][:2]
    assert (tmp_path / "train.ipynb.bak").read_text() == original


def test_a_file_changed_since_it_was_read_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    cells = read_cells(str(path))
    changed = SCRIPT.replace("y += 1", "y *= 2")
    path.write_text(changed)
    with pytest.raises(WriteRefused, match="changed on disk"):
        apply_to_file(str(path), cells, FIX)
    assert path.read_text() == changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_a_folder_named_like_the_backup_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    (tmp_path / "train.py.bak").mkdir()
    written = apply_to_file(str(path), read_cells(str(path)), FIX)
    assert written.backup == str(tmp_path / "train.py.bak.1")
    assert (tmp_path / "train.py.bak").is_dir() and not any((tmp_path / "train.py.bak").iterdir())
    assert (tmp_path / "train.py.bak.1").read_text() == SCRIPT


def test_a_fix_for_a_markdown_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.ipynb"
    _notebook(path)
    original = path.read_text()
    with pytest.raises(WriteRefused, match="not code cells"):
        apply_to_file(str(path), read_cells(str(path)), {"cells": {"1": "x = 1"}})
    assert path.read_text() == original
