"""Read the code to check: percent-format scripts and notebooks, as a list of cells.

A percent-format script starts a cell at each line beginning with ``# %%``; non-blank lines before
the first marker form cell 0. Notebook cells are counted as the notebook lists them, markdown
included, so cell indices match what the user sees.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Literal

CellKind = Literal["code", "markdown"]


class UnusableInput(Exception):
    """The path cannot be checked (missing, unreadable, not a script or notebook)."""


@dataclass(frozen=True, slots=True)
class Cell:
    index: int
    source: str
    kind: CellKind = "code"
    cell_id: str | None = None


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


def _notebook_cells(path: str) -> list[Cell]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableInput(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UnusableInput(f"{path} is not a valid notebook (JSON error at line {exc.lineno})") from exc
    raw_cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(raw_cells, list):
        raise UnusableInput(f"{path} is not a valid notebook (no list of cells)")
    cells = []
    for index, raw in enumerate(raw_cells):
        if not isinstance(raw, dict):
            raise UnusableInput(f"{path} is not a valid notebook (cell {index} is not an object)")
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
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableInput(f"cannot read {path}: {exc}") from exc
    return split_percent(text)


def python_source(cell: Cell) -> str:
    """The cell as plain Python, line numbers kept: IPython magics and shell escapes are blanked.

    A leading ``%%gradcheck`` (or any cell magic) is dropped and its body checked as Python.
    """
    lines = cell.source.split("\n")
    out = []
    for line in lines:
        stripped = line.lstrip()
        out.append("" if stripped.startswith(("%", "!")) else line)
    return "\n".join(out)
