"""Writing a fix never loses anything: backups, symlinks, hard links, encodings, line endings, layout.

Real files and real symlinks in a temporary folder; the last tests run the real check end to end, in
this process (``run_cli``: :func:`inplace_magic.cli.main`, what the command's child runs): their subject
is what is written and what is said, not the process around the check (tests/test_exit_codes.py and
test_cli.py run the console entry points themselves).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from inplace_magic.fix import BACKUP_SUFFIX, WriteRefused, apply_to_file, replace_file
from inplace_magic.fix.files import MAX_BACKUPS
from inplace_magic.replay.cells import UnusableInput, read_cells
from inplace_magic.replay.source_text import SourceText

SCRIPT = (
    "# %%\nimport torch\nx = torch.randn(3, requires_grad=True)\n"
    "# %%\ny = x.sigmoid()\ny += 1\ny.sum().backward()\n"
)
FIX = {"cells": {"1": "y = x.sigmoid()\ny = y + 1\ny.sum().backward()\n"}}
FIXED = SCRIPT.replace("y += 1", "y = y + 1")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _script(tmp_path: Path, text: str = SCRIPT, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_an_existing_backup_stays_and_a_new_name_is_taken(tmp_path: Path) -> None:
    path = _script(tmp_path)
    (tmp_path / "train.py.bak").write_text("the user's own backup")
    (tmp_path / "train.py.bak.1").write_text("an older one")
    written = apply_to_file(str(path), read_cells(str(path)), FIX)
    assert written.backup == str(tmp_path / f"train.py{BACKUP_SUFFIX}.2")
    assert (tmp_path / "train.py.bak").read_text() == "the user's own backup"
    assert (tmp_path / "train.py.bak.1").read_text() == "an older one"
    assert (tmp_path / "train.py.bak.2").read_text() == SCRIPT
    assert path.read_text() == FIXED
    assert _names(tmp_path) == ["train.py", "train.py.bak", "train.py.bak.1", "train.py.bak.2"]


def test_a_backup_name_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    path = _script(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("must not change")
    (tmp_path / "train.py.bak").symlink_to(victim)
    (tmp_path / "train.py.bak.1").symlink_to(tmp_path / "nowhere")  # dangling: must not be created
    written = apply_to_file(str(path), read_cells(str(path)), FIX)
    assert written.backup == str(tmp_path / "train.py.bak.2")
    assert victim.read_text() == "must not change"
    assert os.readlink(tmp_path / "train.py.bak") == str(victim)
    assert not (tmp_path / "nowhere").exists()
    assert (tmp_path / "train.py.bak.2").read_text() == SCRIPT and path.read_text() == FIXED


def test_a_symlinked_file_has_its_target_fixed_and_the_link_kept(tmp_path: Path) -> None:
    real = tmp_path / "src"
    real.mkdir()
    target = _script(real)
    link = tmp_path / "link.py"
    link.symlink_to(target)
    written = apply_to_file(str(link), read_cells(str(link)), FIX)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == FIXED
    assert written.path == str(target) and written.backup == str(real / "train.py.bak")
    assert (real / "train.py.bak").read_text() == SCRIPT
    assert _names(tmp_path) == ["link.py", "src"]


def test_when_every_backup_name_is_taken_nothing_is_written_or_left(tmp_path: Path) -> None:
    path = _script(tmp_path)
    taken = ["train.py.bak", *(f"train.py.bak.{n}" for n in range(1, MAX_BACKUPS))]
    for name in taken:
        (tmp_path / name).write_text(name)
    with pytest.raises(WriteRefused, match="numbered backups"):
        apply_to_file(str(path), read_cells(str(path)), FIX)
    assert path.read_text() == SCRIPT and _names(tmp_path) == sorted(["train.py", *taken])
    assert all((tmp_path / name).read_text() == name for name in taken)


def test_replace_file_refuses_bytes_that_are_not_the_expected_ones(tmp_path: Path) -> None:
    # the panel's kernel-side Apply writes through this function: the same guarantees hold for it
    path = _script(tmp_path)
    with pytest.raises(WriteRefused, match="changed on disk"):
        replace_file(str(path), b"new", expected=b"what the panel saw")
    assert path.read_text() == SCRIPT and _names(tmp_path) == ["train.py"]
    written = replace_file(str(path), b"new", expected=SCRIPT.encode())
    assert path.read_bytes() == b"new" and Path(written.backup).read_text() == SCRIPT


def test_a_hard_linked_file_is_refused(tmp_path: Path) -> None:
    path = _script(tmp_path)
    os.link(path, tmp_path / "other-name.py")
    with pytest.raises(WriteRefused, match="hard links"):
        apply_to_file(str(path), read_cells(str(path)), FIX)
    assert path.read_text() == SCRIPT and _names(tmp_path) == ["other-name.py", "train.py"]


def test_crlf_files_keep_crlf_and_only_the_fixed_line_changes(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    original = SCRIPT.replace("\n", "\r\n").encode()
    path.write_bytes(original)
    apply_to_file(str(path), read_cells(str(path)), FIX)
    assert path.read_bytes() == FIXED.replace("\n", "\r\n").encode()
    assert (tmp_path / "train.py.bak").read_bytes() == original


def test_mixed_line_endings_are_kept_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    original = SCRIPT.replace("\n", "\r\n").replace("y += 1\r\n", "y += 1\n")  # one LF line among CRLF
    path.write_bytes(original.encode())
    apply_to_file(str(path), read_cells(str(path)), FIX)
    assert path.read_bytes() == original.replace("y += 1", "y = y + 1").encode()


def test_bom_and_coding_line_are_kept(tmp_path: Path) -> None:
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + SCRIPT.encode())
    apply_to_file(str(bom), read_cells(str(bom)), FIX)
    assert bom.read_bytes() == b"\xef\xbb\xbf" + FIXED.encode()
    latin = tmp_path / "latin.py"
    text = "# -*- coding: latin-1 -*-\n" + SCRIPT.replace("y += 1", "y += 1  # é")
    latin.write_bytes(text.encode("latin-1"))
    cells = read_cells(str(latin))  # the coding line, before the first marker, is cell 0
    fix = {"cells": {"2": "y = x.sigmoid()\ny = y + 1  # é\ny.sum().backward()\n"}}
    apply_to_file(str(latin), cells, fix)
    assert latin.read_bytes() == text.replace("y += 1", "y = y + 1").encode("latin-1")
    unencodable = {"cells": {"2": "y = x.sigmoid()\ny = y + 1  # ∑\ny.sum().backward()\n"}}
    with pytest.raises(WriteRefused, match="cannot hold"):
        apply_to_file(str(latin), read_cells(str(latin)), unencodable)
    assert _names(tmp_path) == ["bom.py", "bom.py.bak", "latin.py", "latin.py.bak"]


def test_source_text_round_trips_bytes_exactly() -> None:
    for raw in (b"", b"a", b"a\n", b"a\r\nb\nc\rd", b"\xef\xbb\xbfx = 1\r\n", "é\n".encode()):
        source = SourceText.decode(raw)
        assert source.encode(source.text) == raw


def _notebook(path: Path, indent: int | None = 1) -> str:
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    )
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Überschrift"),
        nbformat.v4.new_code_cell("import torch\nx = torch.randn(3, requires_grad=True)"),
        nbformat.v4.new_code_cell("y = x.sigmoid()\ny += 1\ny.sum().backward()", execution_count=3),
    ]
    if indent == 1:
        text = nbformat.writes(notebook)
    else:  # another writer: its own indentation, keys in its own order, no trailing newline
        data = json.loads(nbformat.writes(notebook))
        data = {key: data[key] for key in ("nbformat", "nbformat_minor", "metadata", "cells")}
        text = json.dumps(data, indent=indent, ensure_ascii=True)
    path.write_text(text, encoding="utf-8")
    return text


@pytest.mark.parametrize("indent", [1, 2])
def test_a_notebook_keeps_its_layout_so_a_one_line_fix_is_a_one_line_diff(
    tmp_path: Path, indent: int
) -> None:
    path = tmp_path / "train.ipynb"
    before = _notebook(path, indent)
    fix = {"cells": {"2": "y = x.sigmoid()\ny = y + 1\ny.sum().backward()"}}
    written = apply_to_file(str(path), read_cells(str(path)), fix)
    after = path.read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(before.split("\n"), after.split("\n"), strict=True) if a != b]
    assert changed == [('    "y += 1\\n",', '    "y = y + 1\\n",')] if indent == 1 else len(changed) == 1
    assert "y = y + 1" in changed[0][1] and written.note is None
    assert after.endswith("\n") == before.endswith("\n")
    assert list(json.loads(after)) == list(json.loads(before))


def test_a_notebook_layout_we_cannot_reproduce_is_written_in_nbformats_and_said(tmp_path: Path) -> None:
    path = tmp_path / "train.ipynb"
    text = _notebook(path).replace('"cells": [', '"cells":   [')
    path.write_text(text, encoding="utf-8")
    fix = {"cells": {"2": "y = x.sigmoid()\ny = y + 1\ny.sum().backward()"}}
    written = apply_to_file(str(path), read_cells(str(path)), fix)
    assert written.note is not None and "layout" in written.note
    nbformat.validate(nbformat.read(str(path), as_version=4))


def test_a_notebook_nbformat_rejects_is_unusable_input(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.ipynb"
    data = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])))
    del data["cells"][0]["outputs"]  # a code cell without outputs: invalid
    path.write_text(json.dumps(data))
    with pytest.raises(UnusableInput, match="not a valid notebook"):
        read_cells(str(path))
    code, out, err = run_cli("check", str(path), "--write")
    assert code == 3 and out == ""
    assert err.startswith("inplace-magic: ") and "Traceback" not in err
    assert "not a valid notebook" in err and len(err.strip().splitlines()) == 1


def test_write_end_to_end_keeps_an_existing_backup(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = _script(tmp_path, SCRIPT.replace("\n", "\r\n"), "case.py")
    original = path.read_bytes()
    (tmp_path / "case.py.bak").write_text("mine")
    code, stdout, _ = run_cli("check", str(path), "--write", "--json")
    out = json.loads(stdout)
    assert code == 1 and out["write"]["written"] is True
    assert out["write"]["backup"] == str(tmp_path / "case.py.bak.1")
    assert (tmp_path / "case.py.bak").read_text() == "mine"
    assert (tmp_path / "case.py.bak.1").read_bytes() == original
    assert b"\r\n" in path.read_bytes() and b"\n" not in path.read_bytes().replace(b"\r\n", b"")
    assert path.read_bytes() != original


def test_write_fixes_the_checked_file_even_if_the_code_moves_the_working_folder(
    tmp_path: Path,
    run_cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = SCRIPT.replace("import torch\n", f"import os, torch\nos.chdir({str(elsewhere)!r})\n", 1)
    path = _script(tmp_path, script, "case.py")
    decoy = _script(elsewhere, script, "case.py")  # the same name and text, in the folder the code moves to
    monkeypatch.chdir(tmp_path)  # the command's folder; the code moves this process's, put back after
    code, out, _ = run_cli("check", "case.py", "--write", "--json")
    assert decoy.read_text() == script and _names(elsewhere) == ["case.py"]
    assert "y = y + 1" in path.read_text()
    got = json.loads(out)
    assert code == 1 and got["write"]["written"] and got["fixes"][0]["verified"]


def test_cells_that_kept_crlf_fit_a_crlf_file(tmp_path: Path) -> None:
    # the panel's kernel-side Apply reads the file keeping "\r\n" and splits it itself
    from inplace_magic.replay.cells import split_percent

    path = tmp_path / "train.py"
    original = SCRIPT.replace("\n", "\r\n")
    path.write_bytes(original.encode())
    cells = split_percent(original)
    fix = {"cells": {"1": FIX["cells"]["1"].replace("\n", "\r\n")}}
    apply_to_file(str(path), cells, fix)
    assert path.read_bytes() == FIXED.replace("\n", "\r\n").encode()
