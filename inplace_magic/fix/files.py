"""Show a fix as a diff, and write it into the user's script or notebook (only when asked).

Writes are atomic: the new text goes to a temporary file in the same folder, the original is copied
to ``PATH.bak``, and ``os.replace`` swaps the new file in. Anything that fails before the swap
leaves the original as it was. A file that changed since it was read is refused.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from ..replay.cells import Cell

# The one backup suffix of every file the tool writes (the CLI's --write and the panel's kernel path).
BACKUP_SUFFIX = ".bak"


def _changes(cells: list[Cell], fix: Mapping[str, Any]) -> dict[int, str]:
    raw = fix.get("cells")
    if not isinstance(raw, dict):
        raise ValueError("the fix has no cells")
    code = {c.index for c in cells if c.kind == "code"}
    changes = {int(k): str(v) for k, v in raw.items()}
    unknown = sorted(set(changes) - code)
    if unknown:
        raise ValueError(f"the fix changes cells that are not code cells here: {unknown}")
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


def _percent_text(original: str, cells: list[Cell], changes: dict[int, str]) -> str:
    """``original`` with the bodies of the changed cells replaced; markers and the rest kept byte for byte.

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
                raise ValueError(f"cell {index} changed on disk since it was checked; not writing")
            piece_body = changes[index].split("\n")
        out.extend(piece_body)
        index += is_cell
    return "\n".join(out)


def _notebook_text(path: str, cells: list[Cell], changes: dict[int, str]) -> str:
    import nbformat

    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    by_index = {c.index: c.source for c in cells}
    for index, text in changes.items():
        if index >= len(notebook.cells) or notebook.cells[index].source != by_index.get(index):
            raise ValueError(f"cell {index} changed on disk since it was checked; not writing")
        notebook.cells[index].source = text
    nbformat.validate(notebook)
    text = str(nbformat.writes(notebook))
    return text if text.endswith("\n") else text + "\n"


def apply_to_file(path: str, cells: list[Cell], fix: Mapping[str, Any]) -> None:
    """Write ``fix`` into ``path`` (a percent-format ``.py`` or an ``.ipynb``), keeping ``PATH.bak``.

    Raises ``ValueError`` when the fix does not fit the file and ``OSError`` when writing fails; in
    both cases the original file is untouched.
    """
    changes = _changes(cells, fix)
    if path.endswith(".ipynb"):
        text = _notebook_text(path, cells, changes)
    else:
        with open(path, encoding="utf-8", newline="") as handle:
            text = _percent_text(handle.read(), cells, changes)
    folder = os.path.dirname(os.path.abspath(path))
    handle_fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle_fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(path, temporary)
        # copyfile, not copy2: a folder named PATH.bak must fail the write, not receive the backup.
        shutil.copyfile(path, path + BACKUP_SUFFIX)
        shutil.copystat(path, path + BACKUP_SUFFIX)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
