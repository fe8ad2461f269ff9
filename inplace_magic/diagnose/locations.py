"""Frames -> locations people can click: a notebook cell and line, or a file and line."""

from __future__ import annotations

import contextlib
import functools
import io
import linecache
import os
import tokenize

from ..record.frames import Frame
from ..replay.run import CellLookup
from .diagnosis import Location


class Locator:
    """Frames -> :class:`Location` (cell and cell id, or a file path), with the code text."""

    def __init__(self, source_map: CellLookup) -> None:
        self.source_map = source_map

    def location(self, frame: Frame | None) -> Location | None:
        if frame is None:
            return None
        code = linecache.getline(frame.filename, frame.lineno).strip()
        cell = self.source_map.cell_of(frame.filename)
        if cell is not None:
            return Location(frame.lineno, code, frame.function, cell=cell[0], cell_id=cell[1])
        return Location(frame.lineno, code, frame.function, file=_display_path(frame.filename))

    def stack(self, frames: tuple[Frame, ...]) -> tuple[Location, ...]:
        """The callers of the innermost frame, up to the cell that ran them (not IPython's magic call)."""
        out = []
        for location in (self.location(f) for f in frames[1:]):
            if location is None or location.code.startswith("get_ipython()."):
                break
            out.append(location)
        return tuple(out)


@functools.lru_cache(maxsize=256)
def _display_path(filename: str) -> str:
    """A file path relative to the working directory when it is below it (what users type)."""
    if os.path.isabs(filename):
        with contextlib.suppress(ValueError):  # another drive on Windows
            relative = os.path.relpath(filename)
            return filename if relative.startswith("..") else relative
    return filename


@functools.lru_cache(maxsize=4096)  # a diagnosis quotes the same lines many times; tokenizing is slow
def without_comment(code: str) -> str:
    """A line of code without its trailing ``# comment`` (a ``#`` inside a string stays): how a
    sentence about the diagnosis quotes a line; the location itself keeps the line as it is."""
    if "#" not in code:
        return code
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT:
                return code[: token.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):  # a line of a longer statement: the tokens so far stand
        pass
    return code
