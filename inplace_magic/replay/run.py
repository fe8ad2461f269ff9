"""Run cells in order in one namespace, as a kernel would, under stable pseudo-filenames.

Each cell is compiled under ``<cell N>`` (registered in ``linecache`` so tracebacks and reports
show its lines); :class:`SourceMap` turns a filename back into a cell. The run stops at the first
exception, which is returned, never swallowed.
"""

from __future__ import annotations

import linecache
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..record.frames import Frame, traceback_user_frames
from .cells import Cell, python_source


class CellLookup(Protocol):
    """Anything that turns a code object's filename back into a cell: (cell index, cell id)."""

    def cell_of(self, filename: str) -> tuple[int, str | None] | None: ...


@dataclass
class SourceMap:
    """filename -> (cell index, cell id) for code we compiled; other files are reported as files."""

    cells: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    def cell_of(self, filename: str) -> tuple[int, str | None] | None:
        return self.cells.get(filename)


def cell_filename(index: int, prefix: str = "cell") -> str:
    return f"<{prefix} {index}>"


@dataclass
class RunResult:
    exception: BaseException | None
    cell: int | None  # index of the cell that was running when it was raised
    namespace: dict[str, Any]


def compile_cells(cells: list[Cell], source_map: SourceMap, prefix: str = "cell") -> list[tuple[Cell, Any]]:
    compiled = []
    for cell in cells:
        if cell.kind != "code":
            continue
        name = cell_filename(cell.index, prefix)
        text = python_source(cell)
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        source_map.cells[name] = (cell.index, cell.cell_id)
        try:
            code: Any = compile(text, name, "exec", dont_inherit=True)
        except SyntaxError as exc:  # raised when the run reaches this cell, as a kernel would
            code = exc
        compiled.append((cell, code))
    return compiled


def run_compiled(
    compiled: list[tuple[Cell, Any]], namespace: dict[str, Any], stop_after: int | None = None
) -> RunResult:
    for cell, code in compiled:
        if stop_after is not None and cell.index > stop_after:
            break
        try:
            if isinstance(code, SyntaxError):
                raise code
            exec(code, namespace)
        except BaseException as exc:  # the user's exception, of any type, is the result
            if isinstance(exc, KeyboardInterrupt):
                raise
            return RunResult(exc, cell.index, namespace)
    return RunResult(None, None, namespace)


def fresh_namespace(script_path: str | None) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    if script_path:
        namespace["__file__"] = os.path.abspath(script_path)
    return namespace


@contextmanager
def script_path_on_sys_path(script_path: str | None) -> Iterator[None]:
    """Imports of sibling modules work as they do for ``python script.py``."""
    if not script_path:
        yield
        return
    folder = os.path.dirname(os.path.abspath(script_path))
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)


@dataclass
class RandomState:
    """The global RNG states a replay must start from to see the same numbers as the first run."""

    torch_state: torch.Tensor
    python_state: object
    numpy_state: object | None
    cuda_states: list[torch.Tensor] | None = None  # dropout on a GPU draws from these

    @classmethod
    def capture(cls) -> RandomState:
        numpy_state = None
        try:  # imported now so that a cell importing it later starts from the captured state
            import numpy
        except ImportError:
            numpy = None  # type: ignore[assignment]
        if numpy is not None:
            numpy_state = numpy.random.get_state()
        # only once CUDA is up: querying it earlier would initialise it (slow, and a change of state)
        cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), random.getstate(), numpy_state, cuda_states)

    def restore(self) -> None:
        torch.set_rng_state(self.torch_state)
        random.setstate(self.python_state)  # type: ignore[arg-type]
        numpy = sys.modules.get("numpy")
        if numpy is not None and self.numpy_state is not None:
            numpy.random.set_state(self.numpy_state)
        if self.cuda_states is not None and torch.cuda.is_initialized():
            torch.cuda.set_rng_state_all(self.cuda_states)


def raising_frame(exc: BaseException, source_map: CellLookup) -> Frame | None:
    """The innermost frame of the user's code in ``exc``'s traceback (a cell line when there is one)."""
    frames = traceback_user_frames(exc.__traceback__)
    for frame in frames:
        if source_map.cell_of(frame.filename) is not None:
            return frame
    return frames[0] if frames else None
