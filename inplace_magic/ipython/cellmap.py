"""Map the code the kernel compiled back to notebook cells: a cell's code name -> (In[] number, cell id).

IPython compiles each cell under a name from ``shell.compile.get_code_name`` (ipykernel: a temp file
named after a hash of the source; terminal IPython: ``<ipython-input-N-hash>``). ``pre_run_cell``
sees the cell before it is compiled, with JupyterLab's cell id, so we compute the same name there and
remember it: a method of a class defined in cell 1 then maps to cell 1's id when it fails in cell 2.

The *cell index* of a location is the cell's execution count, the ``N`` of ``In[N]`` (what the
kernel knows and the prompt shows), not its position in the notebook. ``cell_id`` is what edits
target. Cells run before ``%load_ext`` are found through IPython's own name -> count table, and
their id by matching their source against cells seen since and against the saved notebook.
"""

from __future__ import annotations

import json
import linecache
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..replay.cells import Cell
from ..replay.run import SourceMap

_TERMINAL_NAME = re.compile(r"^<ipython-input-(\d+)-[0-9a-f]+>$")


def _normalised(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@dataclass
class CellMap(SourceMap):
    """A :class:`SourceMap` filled from the kernel's ``pre_run_cell`` events."""

    shell: Any = None
    ids: dict[int, str] = field(default_factory=dict)  # execution count -> cell id
    sources: dict[int, str] = field(default_factory=dict)  # execution count -> raw cell source
    code: dict[int, tuple[str, str]] = field(default_factory=dict)  # count -> (code it ran, code name)
    _notebook_ids: dict[str, str] | None = None  # normalised source -> id, read from the saved notebook

    def code_name(self, raw_cell: str, transformed_cell: str | None, number: int) -> str:
        """The filename IPython compiles this cell under (the same computation, done in advance)."""
        if transformed_cell is None:
            transformed_cell = self.shell.transform_cell(raw_cell)
        name: str = self.shell.compile.get_code_name(raw_cell, transformed_cell, number)
        return name

    def record(
        self, filename: str, number: int, cell_id: str | None, raw_cell: str | None, transformed: str
    ) -> None:
        """Remember a cell about to run; ``raw_cell`` is None for the body a cell magic runs (the
        cell's source is the magic's), whose code then replaces the cell's."""
        self.cells[filename] = (number, cell_id)
        if cell_id:
            self.ids[number] = cell_id
        if raw_cell is not None:
            self.sources[number] = raw_cell
        self.code[number] = (transformed, filename)

    def cell_code(self, number: int) -> tuple[str, str] | None:
        """(transformed code, code name) of In[number], also for cells run before we listened."""
        if number in self.code:
            return self.code[number]
        source = self._history().get(number)
        if source is None:
            return None
        transformed: str = self.shell.transform_cell(source)
        return transformed, self.code_name(source, transformed, number)

    def earlier_numbers(self, before: int, limit: int) -> list[int]:
        """The In[] numbers run before ``before``, latest first."""
        numbers = sorted((set(self._history()) | set(self.code)) - {0}, reverse=True)
        return [n for n in numbers if n < before][:limit]

    def _history(self) -> dict[int, str]:
        history = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None)
        out = dict(self.sources)
        if isinstance(history, list):
            for number, source in enumerate(history):
                if number > 0 and isinstance(source, str):
                    out.setdefault(number, source)
        return out

    def cell_of(self, filename: str) -> tuple[int, str | None] | None:
        known = self.cells.get(filename)
        if known is not None:
            return known
        number = self._number_of(filename)
        if number is None:
            return None
        return number, self.ids.get(number) or self._id_by_source(filename)

    def _number_of(self, filename: str) -> int | None:
        """The execution count of a cell compiled before we were listening (IPython's own table)."""
        table = getattr(getattr(self.shell, "compile", None), "_filename_map", None)
        if isinstance(table, dict) and isinstance(table.get(filename), int):
            return int(table[filename])
        match = _TERMINAL_NAME.match(filename)
        return int(match.group(1)) if match else None

    def _id_by_source(self, filename: str) -> str | None:
        text = _normalised("".join(linecache.getlines(filename)))
        if not text:
            return None
        for number, source in self.sources.items():
            if number in self.ids and _normalised(source) == text:
                return self.ids[number]
        return self._saved_notebook_ids().get(text)

    def _saved_notebook_ids(self) -> dict[str, str]:
        """Source -> cell id from the notebook file the kernel was started for (as last saved)."""
        if self._notebook_ids is None:
            self._notebook_ids = {}
            path = os.environ.get("JPY_SESSION_NAME", "")  # set by jupyter_server for notebook kernels
            if not os.path.isfile(path):  # a path relative to the server root; the kernel runs beside it
                path = os.path.basename(path)
            if path.endswith(".ipynb") and os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8") as handle:
                        cells = json.load(handle).get("cells", [])
                    for cell in cells:
                        source = cell.get("source", "")
                        text = _normalised("".join(source) if isinstance(source, list) else str(source))
                        if cell.get("cell_type") == "code" and isinstance(cell.get("id"), str) and text:
                            self._notebook_ids.setdefault(text, cell["id"])
                except (OSError, ValueError, AttributeError):
                    pass  # an unreadable notebook only costs us the fallback
        return self._notebook_ids

    def session_cells(self) -> list[Cell]:
        """Every cell this kernel ran, in execution order, indexed by execution count (for fixes)."""
        by_number = self._history()
        return [Cell(n, by_number[n], "code", self.ids.get(n)) for n in sorted(by_number)]
