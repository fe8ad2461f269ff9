"""A ``%%gradcheck`` cell whose body starts with another cell magic (``%%time``, ``%%capture``).

IPython recognises a cell magic only on a cell's first line, so the body runs as its own cell,
magic line first. For the magics whose body is this kernel's Python, the lines above that body are
repeated as comments inside it, so that its line numbers stay the user's; and the names IPython
compiles such a body under (``%%time``: ``<timed exec>``) are mapped to the cell while it is
diagnosed. Any other magic (``%%writefile``, ``%%bash``) gets its body exactly as written.
"""

from __future__ import annotations

import contextlib
import linecache
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .cellmap import CellMap

# magic -> the code names its body is compiled under ("capture" runs it as a cell of its own)
PYTHON_BODY: dict[str, tuple[str, ...]] = {"time": ("<timed exec>", "<timed eval>"), "capture": ()}

_MAGIC_LINE = re.compile(r"%%([A-Za-z_][\w.]*)")


@dataclass(frozen=True)
class InnerMagic:
    line: str  # "%%time" with its arguments
    name: str  # "time"
    body: str  # what follows that line

    @classmethod
    def of(cls, body: str) -> InnerMagic | None:
        """The cell magic ``body`` starts with, if any."""
        first, _, rest = body.lstrip("\n").partition("\n")
        match = _MAGIC_LINE.match(first.strip())
        return cls(first.strip(), match.group(1), rest) if match else None

    @property
    def runs_python(self) -> bool:
        return self.name in PYTHON_BODY

    def source(self, header: str) -> str:
        """The cell to run: this magic's line, then ``header`` (commented copies of the lines above
        the body, this magic's line included) in front of its body when that body is Python."""
        if not self.runs_python:
            return f"{self.line}\n{self.body}"
        return f"{self.line}\n{header}# {self.line}\n{self.body}"

    @contextlib.contextmanager
    def mapped(self, cellmap: CellMap, number: int, cell_id: str | None, header: str) -> Iterator[None]:
        """While diagnosing: this magic's code names are lines of In[number], with their text."""
        names = PYTHON_BODY.get(self.name, ())
        text = f"{header}# {self.line}\n{self.body}"
        lines = text.splitlines(keepends=True)
        for name in names:
            cellmap.cells[name] = (number, cell_id)
            linecache.cache[name] = (len(text), None, lines, name)
        try:
            yield
        finally:
            for name in names:
                cellmap.cells.pop(name, None)
                linecache.cache.pop(name, None)
