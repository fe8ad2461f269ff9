"""Read the code to check: percent-format scripts and notebooks, as a list of cells.

A percent-format script starts a cell at each line beginning with ``# %%``; non-blank lines before
the first marker form cell 0. It is read as Python reads a script (a UTF-8 BOM or a PEP 263
coding line, universal newlines). Notebook cells are counted as the notebook lists them,
markdown included, so cell indices match what the user sees; a notebook that nbformat rejects is
unusable input, said before anything runs.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from .source_text import SourceText

CellKind = Literal["code", "markdown"]

_OWN_CELL_MAGIC = re.compile(r"\s*%%gradcheck\b")
_OWN_LINE_MAGIC = re.compile(r"\s*%(gradcheck\b|(re|un)?load_ext\s+inplace_magic\b)")


class UnusableInput(Exception):
    """The path cannot be checked (missing, unreadable, not a script or notebook)."""


@dataclass(frozen=True, slots=True)
class Cell:
    index: int
    source: str
    kind: CellKind = "code"
    cell_id: str | None = None


def without_own_magics(source: str) -> str:
    """``source`` with our own magics blanked (``%%gradcheck``, ``%gradcheck``, ``%load_ext
    inplace_magic``): what they do is what the check does. Lines keep their numbers."""
    lines = source.split("\n")
    if lines and _OWN_CELL_MAGIC.match(lines[0]):
        lines[0] = ""
    return "\n".join("" if _OWN_LINE_MAGIC.match(line) else line for line in lines)


def split_percent(text: str) -> list[Cell]:
    cells: list[Cell] = []
    current: list[str] = []
    kind: CellKind = "code"
    started = False

    def close() -> None:
        if started or any(line.strip() for line in current):
            cells.append(Cell(len(cells), "\n".join(current), kind))

    for line in text.split("\n"):
        if line.startswith("# %%"):
            close()
            current, started = [], True
            kind = "markdown" if "[markdown]" in line else "code"
            continue
        current.append(line)
    close()
    return cells


def _read(path: str, *, python: bool) -> SourceText:
    try:
        return SourceText.read(path, python=python)
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableInput(f"cannot read {path}: {exc}") from exc
    except SyntaxError as exc:  # an unknown encoding in its coding line
        raise UnusableInput(f"cannot read {path}: {exc.msg}") from exc


def check_notebook(path: str, data: Any) -> None:
    """Raise :class:`UnusableInput` when nbformat (and so Jupyter) would reject ``data``."""
    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing cell id is repaired, not an error (nbformat 5)
        try:
            nbformat.validate(nbformat.from_dict(data))
        except nbformat.ValidationError as exc:
            first = str(getattr(exc, "message", exc)).splitlines()[0]
            raise UnusableInput(f"{path} is not a valid notebook (nbformat: {first})") from exc


def _notebook_cells(path: str) -> list[Cell]:
    text = _read(path, python=False).text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnusableInput(f"{path} is not a valid notebook (JSON error at line {exc.lineno})") from exc
    raw_cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(raw_cells, list):
        raise UnusableInput(f"{path} is not a valid notebook (no list of cells)")
    check_notebook(path, data)
    cells = []
    for index, raw in enumerate(raw_cells):
        source = raw.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        kind: CellKind = "code" if raw.get("cell_type") == "code" else "markdown"
        cell_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        cells.append(Cell(index, text, kind, cell_id))
    return cells


def read_cells(path: str) -> list[Cell]:
    """The cells of ``path`` (``.ipynb`` or a ``.py`` in percent format)."""
    if not os.path.exists(path):
        raise UnusableInput(f"no such file: {path}")
    if os.path.isdir(path):
        raise UnusableInput(f"{path} is a directory, not a script or notebook")
    if path.endswith(".ipynb"):
        return _notebook_cells(path)
    return split_percent(_read(path, python=True).text)
