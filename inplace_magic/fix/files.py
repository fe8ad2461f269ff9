"""Show a fix as a diff, and write it into the user's file, only when asked and never losing anything.

:func:`replace_file` is the one way we write a user's file (the CLI's ``--write`` and the panel's
kernel-side Apply both use it):

- the file is written only if its bytes are still those the edit was made from (a file the user
  changed since is refused);
- its current bytes go first into a fresh backup, ``PATH.bak`` or, when that name is taken (by a
  file, a folder or a symlink, which is never followed), ``PATH.bak.1``, ``PATH.bak.2``...; an
  existing backup is never overwritten;
- the new bytes go to a temporary file in the same folder, which ``os.replace`` swaps in: a reader
  sees the old file or the new one, never half of one;
- a symlink's target is written and the link kept; a file with several hard links is refused
  (the swap would leave the other names on the old text);
- anything refused or failed leaves the file as it was and no backup or temporary file behind.

Scripts keep their encoding, BOM and line endings (CRLF included); notebooks keep their JSON
layout (indentation, key order, trailing newline), so a one-line fix is a one-line diff.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..replay.cells import Cell, UnusableInput, check_notebook
from ..replay.source_text import SourceText

# The one backup suffix of every file the tool writes (the CLI's --write and the panel's kernel path).
BACKUP_SUFFIX = ".bak"
MAX_BACKUPS = 100  # PATH.bak, PATH.bak.1, ... PATH.bak.99, then we refuse


class WriteRefused(ValueError):
    """Nothing was written; the message says why."""


@dataclass(frozen=True)
class Written:
    path: str  # the file written (a symlink's target)
    backup: str  # where its previous bytes are
    note: str | None = None  # something the user should know about the write


def _changes(cells: list[Cell], fix: Mapping[str, Any]) -> dict[int, str]:
    raw = fix.get("cells")
    if not isinstance(raw, dict):
        raise WriteRefused("the fix has no cells")
    code = {c.index for c in cells if c.kind == "code"}
    changes = {int(k): str(v) for k, v in raw.items()}
    unknown = sorted(set(changes) - code)
    if unknown:
        raise WriteRefused(f"the fix changes cells that are not code cells here: {unknown}")
    return changes


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def unified_diff(cells: list[Cell], fix: Mapping[str, Any]) -> str:
    """The fix as one unified diff per changed cell ("" when it cannot be shown)."""
    try:
        changes = _changes(cells, fix)
    except (ValueError, TypeError):
        return ""
    by_index = {c.index: c.source for c in cells}
    return "".join(
        "".join(difflib.unified_diff(_lines(by_index[i]), _lines(text), f"cell {i}", f"cell {i} (fixed)"))
        for i, text in sorted(changes.items())
    )


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _changed_on_disk(index: int) -> WriteRefused:
    return WriteRefused(f"cell {index} changed on disk since it was checked; not writing")


def _percent_text(original: str, cells: list[Cell], changes: dict[int, str]) -> str:
    """``original`` with the bodies of the changed cells replaced; markers and the rest kept as they are.

    Cells are counted exactly as :func:`inplace_magic.replay.cells.split_percent` counts them.
    """
    pieces: list[tuple[str | None, list[str], bool]] = []  # (marker, body lines, is a cell)
    marker: str | None = None
    body: list[str] = []

    def close() -> None:
        pieces.append((marker, body, marker is not None or any(line.strip() for line in body)))

    for line in original.split("\n"):
        if line.startswith("# %%"):
            close()
            marker, body = line, []
        else:
            body.append(line)
    close()
    by_index = {c.index: c.source for c in cells}
    out: list[str] = []
    index = 0
    for piece_marker, piece_body, is_cell in pieces:
        if piece_marker is not None:
            out.append(piece_marker)
        if is_cell and index in changes:
            if "\n".join(piece_body) != by_index.get(index):
                raise _changed_on_disk(index)
            piece_body = changes[index].split("\n")
        out.extend(piece_body)
        index += is_cell
    return "\n".join(out)


def _json_layout(text: str, data: Any) -> dict[str, Any] | None:
    """``json.dumps`` arguments that give back ``text`` exactly (its trailing newline aside), if any."""
    indents: list[int | str | None] = [1, 2, 4, 0, "\t", None]
    for indent in indents:
        for separators in ((",", ": "), (", ", ": "), (",", ":")):
            for ensure_ascii in (False, True):
                layout: dict[str, Any] = {
                    "indent": indent,
                    "separators": separators,
                    "ensure_ascii": ensure_ascii,
                }
                if json.dumps(data, **layout) == text.rstrip("\n"):
                    return layout
    return None


def _notebook_text(
    path: str, source: SourceText, cells: list[Cell], changes: dict[int, str]
) -> tuple[str, str | None]:
    """The notebook's new text, and a note when its layout could not be kept."""
    data = json.loads(source.text)
    layout = _json_layout(source.text, data)  # before the edit: the layout of the file as it is
    raw_cells = data.get("cells") if isinstance(data, dict) else None
    by_index = {c.index: c.source for c in cells}
    for index, text in changes.items():
        cell = raw_cells[index] if isinstance(raw_cells, list) and index < len(raw_cells) else None
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            raise _changed_on_disk(index)
        old = cell.get("source")
        if ("".join(old) if isinstance(old, list) else old) != by_index.get(index):
            raise _changed_on_disk(index)
        # the notebook's own form: a list of lines (one JSON string per line) or a single string
        cell["source"] = text.splitlines(keepends=True) if isinstance(old, list) else text
    note = None
    if layout is None:
        import nbformat

        new = str(nbformat.writes(nbformat.from_dict(data)))
        note = f"{path}'s JSON layout is not one we can reproduce, so it was written in nbformat's layout"
    else:
        new = json.dumps(data, **layout)
    trailing = source.text[len(source.text.rstrip("\n")) :]
    try:
        check_notebook(path, json.loads(new))
    except UnusableInput as exc:
        raise WriteRefused(f"the fixed notebook would not be valid ({exc})") from exc
    return new + trailing, note


def apply_to_file(path: str, cells: list[Cell], fix: Mapping[str, Any]) -> Written:
    """Write ``fix`` into ``path`` (a percent-format ``.py`` or an ``.ipynb``), as :func:`replace_file` does.

    Raises :class:`WriteRefused` when the fix does not fit the file and ``OSError`` when writing
    fails; in both cases the file is as it was and nothing else was created.
    """
    # in "\n" lines, as the file is read: a caller that kept a CRLF file's "\r\n" gets the same result
    cells = [Cell(c.index, _lf(c.source), c.kind, c.cell_id) for c in cells]
    changes = {index: _lf(text) for index, text in _changes(cells, fix).items()}
    notebook = path.endswith(".ipynb")
    try:
        source = SourceText.read(path, python=not notebook)
    except (UnicodeDecodeError, SyntaxError) as exc:
        raise WriteRefused(f"cannot read {path} back: {exc}") from exc
    note = None
    if notebook:
        text, note = _notebook_text(path, source, cells, changes)
    else:
        text = _percent_text(source.text, cells, changes)
    try:
        new = source.encode(text)
    except UnicodeEncodeError as exc:
        raise WriteRefused(
            f"the fix has characters that {path}'s encoding ({source.encoding}) cannot hold"
        ) from exc
    written = replace_file(path, new, expected=source.raw)
    return Written(written.path, written.backup, note)


def replace_file(path: str, new: bytes, *, expected: bytes) -> Written:
    """Replace the bytes of ``path`` by ``new``, keeping its current bytes, ``expected``, in a fresh backup.

    See the module's docstring for what is guaranteed. Raises :class:`WriteRefused` (nothing was
    written: the file is not ``expected`` any more, is not a regular file, has several hard links,
    or every backup name is taken) or ``OSError``.
    """
    target = os.path.realpath(path)  # a symlink: its target is the file to change
    try:
        status = os.stat(target)
    except FileNotFoundError as exc:
        raise WriteRefused(f"{path} does not exist (any more)") from exc
    if not os.path.isfile(target):
        raise WriteRefused(f"{path} is not a regular file")
    if status.st_nlink > 1:
        raise WriteRefused(f"{path} has {status.st_nlink} hard links; replacing it would split them")
    temporary = _temporary_copy(target, new)
    backup = None
    try:
        with open(target, "rb") as handle:
            current = handle.read()
        if current != expected:
            raise WriteRefused(f"{path} changed on disk since it was read; not writing")
        backup = _fresh_backup(target, current)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if backup is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(backup)
        raise
    _sync_folder(os.path.dirname(target))
    return Written(target, backup)


def _temporary_copy(target: str, data: bytes) -> str:
    folder, name = os.path.split(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(target, temporary)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def _fresh_backup(target: str, data: bytes) -> str:
    """Write ``data`` to the first free backup name; O_EXCL never follows or reuses an existing name."""
    mode = os.stat(target).st_mode & 0o7777
    for n in range(MAX_BACKUPS):
        name = target + BACKUP_SUFFIX + (f".{n}" if n else "")
        try:
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        except FileExistsError:
            continue
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            shutil.copystat(target, name)
        except BaseException:
            os.unlink(name)
            raise
        return name
    raise WriteRefused(f"{target}{BACKUP_SUFFIX} and {MAX_BACKUPS - 1} numbered backups beside it exist")


def _sync_folder(folder: str) -> None:
    """Make the swap itself durable (POSIX; elsewhere a folder cannot be opened)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
