"""Run cells in order in one namespace, as ``python PATH`` or a kernel would, under stable pseudo-filenames.

Each cell is compiled under ``<cell N>`` (registered in ``linecache`` so tracebacks and reports
show its lines); :class:`SourceMap` turns a filename back into a cell. Cells in IPython's dialect
run through IPython's transformers and a real shell (:mod:`.ipython_cells`). The run stops at the
first exception, which is returned, never swallowed, with its traceback starting at the user's
own code: the frame that ran the cell is ours, and Python's own ``python PATH`` shows none either.
``sys.exit(0)`` ends a run as finished, as it ends a script.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Literal, Protocol

import torch

from ..record.frames import Frame, traceback_user_frames
from .cells import Cell, without_own_magics
from .time_limit import TimeLimitExceeded

Dialect = Literal["python", "ipython"]

# what compile() raises for source it cannot turn into code; raised when the run reaches the cell
_COMPILE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError)


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


def dialect_of(cells: list[Cell], script_path: str | None) -> Dialect:
    """A notebook is IPython; so is a script one of whose cells uses IPython syntax."""
    if script_path is not None and script_path.endswith(".ipynb"):
        return "ipython"
    code = [c.source for c in cells if c.kind == "code"]
    if not any(_may_be_ipython(source) for source in code):
        return "python"
    from .ipython_cells import needs_ipython  # IPython is imported only for IPython's dialect

    return "ipython" if any(needs_ipython(source) for source in code) else "python"


def _may_be_ipython(source: str) -> bool:
    """A cheap test that spares importing IPython for plain Python (every IPython form has one of these)."""
    return any(mark in source for mark in ("%", "!", "?")) or source.startswith((" ", "\t", ">>>"))


@dataclass
class CompiledCell:
    cell: Cell
    filename: str
    code: CodeType | None
    error: BaseException | None  # what compiling it raised; raised when the run reaches the cell
    cell_magic_line: int | None = None


@dataclass
class Program:
    """The code cells of one run, compiled."""

    cells: list[CompiledCell]
    dialect: Dialect = "python"
    skip_shell: bool = False  # IPython's dialect: shell commands are skipped with a note


@dataclass
class RunResult:
    exception: BaseException | None
    cell: int | None  # index of the cell that was running when it was raised
    namespace: dict[str, Any]
    exit: SystemExit | None = None  # sys.exit(0) ended the run: finished, the cells after it not run
    notes: list[str] = field(default_factory=list)


def compile_cells(
    cells: list[Cell],
    source_map: SourceMap,
    prefix: str = "cell",
    *,
    dialect: Dialect = "python",
    skip_shell: bool = False,
) -> Program:
    compiled = []
    for cell in cells:
        if cell.kind != "code":
            continue
        name = cell_filename(cell.index, prefix)
        text, magic_line = without_own_magics(cell.source), None
        if dialect == "ipython":
            from .ipython_cells import to_python

            python = to_python(cell.source)
            text, magic_line = python.code, python.cell_magic_line
        # the user's text, not ours: tracebacks and reports quote what they wrote
        linecache.cache[name] = (len(cell.source), None, cell.source.splitlines(True), name)
        source_map.cells[name] = (cell.index, cell.cell_id)
        # IPython runs a cell with a top-level ``await`` on its event loop; Python would refuse it
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if dialect == "ipython" else 0
        try:
            code: CodeType | None = compile(text, name, "exec", flags, dont_inherit=True)
            error: BaseException | None = None
        except _COMPILE_ERRORS as exc:
            # without our compile_cells frame: raised later, it must look as Python shows it
            code, error = None, exc.with_traceback(None)
        compiled.append(CompiledCell(cell, name, code, error, magic_line))
    return Program(compiled, dialect, skip_shell)


def run_program(
    program: Program,
    namespace: dict[str, Any],
    *,
    stop_after: int | None = None,
    interruptible: bool = False,
    on_cell: Callable[[int], None] | None = None,
) -> RunResult:
    """Run the cells; the user's exception, of any type, is the result.

    Only a replay's own stop signals pass through: :class:`TimeLimitExceeded` always, and
    ``KeyboardInterrupt`` when ``interruptible`` (a Ctrl-C during the user's own run is theirs).
    """
    shell = _bound_shell(program, namespace)
    result = RunResult(None, None, namespace)
    try:
        for item in program.cells:
            if stop_after is not None and item.cell.index > stop_after:
                break
            if on_cell is not None:
                on_cell(item.cell.index)
            try:
                if item.error is not None:
                    raise item.error
                assert item.code is not None
                if item.code.co_flags & inspect.CO_COROUTINE:
                    shell.run_coroutine(eval(item.code, namespace))
                else:
                    exec(item.code, namespace)
            except BaseException as exc:
                if isinstance(exc, TimeLimitExceeded) or (
                    interruptible and isinstance(exc, KeyboardInterrupt)
                ):
                    raise
                result.cell = item.cell.index
                if isinstance(exc, SystemExit) and exc.code in (None, 0):
                    result.exit = exc
                else:
                    result.exception = exc
                _drop_our_frame(exc)
                break
    finally:
        if shell is not None:
            result.notes += shell.take_notes()
    return result


def _drop_our_frame(exc: BaseException) -> None:
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code is run_program.__code__:
        exc.__traceback__ = tb.tb_next


def _bound_shell(program: Program, namespace: dict[str, Any]) -> Any:
    if program.dialect != "ipython":
        return None
    from .ipython_cells import cell_shell

    shell = cell_shell(program.skip_shell)
    shell.bind(namespace, {c.filename: (c.cell.index, c.cell_magic_line) for c in program.cells})
    return shell


def fresh_namespace(script_path: str | None) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    if script_path:
        namespace["__file__"] = os.path.abspath(script_path)
    return namespace


@contextmanager
def as_script(script_path: str | None) -> Iterator[None]:
    """What ``python PATH`` gives the code: ``sys.argv == [PATH]`` and PATH's folder first on
    ``sys.path`` (imports of sibling modules work). Both are put back afterwards, and so is the
    working folder: a run that changes it must not move the next run (the replay, the sandbox's)."""
    cwd = os.getcwd()
    if not script_path:
        try:
            yield
        finally:
            os.chdir(cwd)
        return
    folder = os.path.dirname(os.path.abspath(script_path))
    argv = sys.argv
    sys.argv = [script_path]
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.argv = argv
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

    def restore(self, now: RandomState | None = None) -> None:
        """Set every global generator back to this state. ``now``: the states as they stand (taken
        since, and nothing drawn after): numpy's is then set only where it differs, as it is the
        slow one to set (65 us, two thirds of all) and most cells of torch code never draw from it."""
        torch.set_rng_state(self.torch_state)
        random.setstate(self.python_state)  # type: ignore[arg-type]
        numpy = sys.modules.get("numpy")
        unmoved = now is not None and _same_numpy_state(self.numpy_state, now.numpy_state)
        if numpy is not None and self.numpy_state is not None and not unmoved:
            numpy.random.set_state(self.numpy_state)
        if self.cuda_states is not None and torch.cuda.is_initialized():
            torch.cuda.set_rng_state_all(self.cuda_states)


def _same_numpy_state(state: Any, other: Any) -> bool:
    """Whether two of numpy's legacy states, ``(name, key, pos, has_gauss, gauss)``, are one."""
    if not isinstance(state, tuple) or not isinstance(other, tuple) or len(state) != len(other):
        return False
    import numpy  # both states were taken: numpy is imported

    return state[0] == other[0] and state[2:] == other[2:] and bool(numpy.array_equal(state[1], other[1]))


def raising_frame(exc: BaseException, source_map: CellLookup) -> Frame | None:
    """The innermost frame of the user's code in ``exc``'s traceback (a cell line when there is one).

    A syntax error has no frame of its own: its filename and line say where it is.
    """
    frames = traceback_user_frames(exc.__traceback__)
    for frame in frames:
        if source_map.cell_of(frame.filename) is not None:
            return frame
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return Frame(exc.filename, exc.lineno, "<module>")
    return frames[0] if frames else None
