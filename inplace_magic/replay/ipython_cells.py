"""Cells in IPython's dialect (magics, ``!cmd``, ``x?``), run as IPython runs them.

A notebook's cells, and ``# %%`` cells, are IPython, not Python: ``%time x = 1`` defines ``x``,
``%%writefile f`` writes ``f`` and does not run its body, ``!ls`` runs a shell command. We turn each
cell into Python with IPython's own input transformers (each magic becomes a
``get_ipython().run_line_magic(...)`` call on the same line) and run it in the cells' namespace
with a real :class:`~IPython.core.interactiveshell.InteractiveShell` bound to that namespace, so the
magics are IPython's own.

Line numbers stay the user's: leading blank lines, which IPython's transformers drop, are kept;
the body of ``%time``/``%%time`` (IPython compiles it as ``<timed exec>``) is compiled under the
cell's own name at the cell's own lines. Our own magics (``%%gradcheck``, ``%gradcheck``,
``%load_ext inplace_magic``) are blanked: what they do is what the check does.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from IPython.core.compilerop import CachingCompiler
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.text import SList
from traitlets.config import Config

from .cells import without_own_magics

# cell magics that hand their body to another program (IPython's script magics)
SHELL_CELL_MAGICS = ("bash", "sh", "script", "perl", "ruby", "python", "python2", "python3", "pypy")
_TIMED = ("<timed exec>", "<timed eval>")


@dataclass(frozen=True)
class CellCode:
    """A cell as Python, one line per line of the cell."""

    code: str
    cell_magic_line: int | None  # the line of a cell magic (its body follows it), else None


def to_python(source: str) -> CellCode:
    """``source`` as Python through IPython's input transformers, on the same lines."""
    lines = without_own_magics(source).split("\n")
    blank = 0
    while blank < len(lines) - 1 and not lines[blank].strip():
        blank += 1
    code = TransformerManager().transform_cell("\n".join(lines[blank:]))
    magic_line = blank + 1 if code.startswith("get_ipython().run_cell_magic(") else None
    return CellCode("\n" * blank + code, magic_line)


def needs_ipython(source: str) -> bool:
    """True when ``source`` is not Python but IPython's transformers make something else of it."""
    plain = without_own_magics(source)
    try:
        compile(plain, "<cell>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError:
        return to_python(source).code.rstrip("\n") != plain.rstrip("\n")
    except (ValueError, RecursionError, MemoryError):
        return False  # not a matter of syntax: Python reports it when the cell runs
    return False


class _CellCompiler(CachingCompiler):  # type: ignore[misc]
    """IPython's compiler, except that a timed body is compiled under its cell's name and lines."""

    def __init__(self, site: Callable[[], tuple[str, int] | None]) -> None:
        super().__init__()
        self._site = site

    def __call__(self, source: Any, filename: str, symbol: str, *args: Any) -> Any:
        site = self._site() if filename in _TIMED and isinstance(source, ast.AST) else None
        if site is not None:
            filename, offset = site
            ast.increment_lineno(source, offset)
        return super().__call__(source, filename, symbol, *args)


@dataclass
class CellShell:
    """A real IPython shell for cells that run in our namespace; one per process and setting."""

    skip_shell: bool
    notes: list[str] = field(default_factory=list)
    _cells: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # filename -> index, magic line
    shell: Any = None

    def __post_init__(self) -> None:
        config = Config()
        config.HistoryManager.hist_file = ":memory:"  # the check must not write the user's history
        config.InteractiveShell.colors = "nocolor"
        # not the singleton: a shell already running in this process (a kernel, a test) stays untouched
        self.shell = InteractiveShell(config=config)
        self.shell.compile = _CellCompiler(self._timed_site)
        if self.skip_shell:
            # instance attributes, not overrides: IPython finds the user's frame by stack depth
            self.shell.system = self._skipped("!")
            self.shell.getoutput = lambda cmd, *args, **kwargs: self._skipped("!")(cmd) or SList()
            for name in SHELL_CELL_MAGICS:
                self.shell.register_magic_function(self._skipped_cell(name), "cell", name)

    def bind(self, namespace: dict[str, Any], cells: dict[str, tuple[int, int | None]]) -> None:
        """Run the next cells in ``namespace`` (``get_ipython``, ``In``, ``Out`` are added to it)."""
        self.shell.init_create_namespaces(user_ns=namespace)
        self.shell.init_user_ns()
        self._cells = cells

    def run_coroutine(self, coroutine: Any) -> Any:
        """A cell with a top-level ``await``, on IPython's own event loop."""
        return self.shell.loop_runner(coroutine)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def _where(self) -> tuple[str, int, int] | None:
        """The cell running now: (filename, cell index, line)."""
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if name in self._cells:
                return name, self._cells[name][0], frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def _timed_site(self) -> tuple[str, int] | None:
        where = self._where()
        if where is None:
            return None
        name, _, line = where
        magic_line = self._cells[name][1]
        # a cell magic's body starts on the line after it; a line magic's statement is on its line
        return name, line if line == magic_line else line - 1

    def _skipped(self, what: str) -> Callable[[str], None]:
        def skip(cmd: str) -> None:
            self._note(f"the shell command `{what}{cmd.strip()}` was not run (--skip-shell).")

        return skip

    def _skipped_cell(self, name: str) -> Callable[[str, str], None]:
        def skip(line: str, cell: str) -> None:
            self._note(f"the `%%{name}` cell was not run (--skip-shell).")

        return skip

    def _note(self, text: str) -> None:
        where = self._where()
        self.notes.append(f"cell {where[1]}, line {where[2]}: {text}" if where else text)


_SHELLS: dict[bool, CellShell] = {}


def cell_shell(skip_shell: bool) -> CellShell:
    if skip_shell not in _SHELLS:
        _SHELLS[skip_shell] = CellShell(skip_shell)
    return _SHELLS[skip_shell]
