"""Which cells a fix's verification re-executes in the live kernel, and their code.

A fix often changes an earlier cell (the one that defines the model class), and the objects the
failing cell uses were built from it by the cells in between (``model = Encoder()``). So the window
is the changed cells, the cells after them that read what they define (transitively) and whose
results the failing cell still reads, then the failing cell. Cells the fix cannot reach are not
re-run: their values come from the user's namespace, as the diagnosis' replay takes them. An earlier
run of the failing cell (it failed before) defines only what the failing cell defines again, so it is
left out. Module-level names only, as :mod:`~inplace_magic.replay.celldeps` reads them.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...replay import celldeps
from ...replay.kernel import MAX_WINDOW, CellCode, CellStart, FailedCell, KernelCells

_OWN_CELL_MAGIC = re.compile(r"^\s*%%gradcheck\b")
# the prompts IPython strips from pasted code (``>>>``, ``...``, ``In [3]:``)
_PROMPT = re.compile(r"^\s*(>>>|\.\.\.|In \[\d+\]:)", re.MULTILINE)


# each candidate of a diagnosis reads the same cells: parse each text once
@functools.lru_cache(maxsize=256)
def names_read(source: str) -> frozenset[str]:
    return frozenset(celldeps.names_read(source))


@functools.lru_cache(maxsize=256)
def names_defined(source: str) -> frozenset[str]:
    return frozenset(celldeps.names_defined(source))


class NotVerifiable(Exception):
    """The fix cannot be re-executed here; the message says why, in words for the user."""


@dataclass(frozen=True)
class Window:
    """The cells to re-execute for one fix: as the kernel ran them (the reference) and as fixed."""

    original: FailedCell
    fixed: FailedCell

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(cell.number for cell in self.original.cells)


def runnable(shell: Any, text: str) -> str:
    """A fixed cell's text as the kernel would run it: our own ``%%gradcheck`` line kept as a comment
    (so lines keep their numbers), through IPython's input transformers."""
    lines = text.split("\n")
    if lines and _OWN_CELL_MAGIC.match(lines[0]):
        lines[0] = "# " + lines[0].strip()
    text = "\n".join(lines)
    if _plain_python(text):
        return text if text.endswith("\n") else text + "\n"
    transformed: str = shell.transform_cell(text)
    return transformed


def _plain_python(text: str) -> bool:
    """Text that IPython's input transformers leave as it is (but for a last newline): Python that
    parses, with no leading blank line or indent and no prompt to strip; every magic, ``!cmd`` and
    ``x?`` is a syntax error in Python. Parsing it costs a tenth of running those transformers,
    which tokenize every line in Python: on a small cell, more than the cell's own re-run."""
    if not text.strip() or text[0].isspace() or _PROMPT.search(text):
        return False
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return False
    return True


def build(
    shell: Any,
    cells: KernelCells,
    failing: FailedCell,
    changes: Mapping[int, str],
    starts: Mapping[int, CellStart],
) -> Window:
    """The window of the fix that rewrites ``changes`` (In[] number -> fixed text) for ``failing``."""
    last = failing.cells[-1]
    if any(number > last.number for number in changes):
        raise NotVerifiable("it changes a cell that ran after the failing one.")
    earlier = [n for n in changes if n != last.number]
    between: list[CellCode] = []
    if earlier:
        first = min(earlier)
        numbers = [n for n in cells.earlier_numbers(last.number, 10 * MAX_WINDOW) if n >= first]
        if first not in numbers:
            raise NotVerifiable(f"the cell it changes, In[{first}], is no longer in the kernel's history.")
        for number in sorted(numbers):
            code = cells.cell_code(number)
            if code is None:
                raise NotVerifiable(f"the code of In[{number}] is not known.")
            between.append(CellCode(number, *code))
    fixed_text = {number: runnable(shell, text) for number, text in changes.items()}
    kept = _needed(between, fixed_text, fixed_text.get(last.number, last.transformed))
    if len(kept) + 1 > MAX_WINDOW:
        raise NotVerifiable(f"it would re-run {len(kept) + 1} cells (at most {MAX_WINDOW}).")
    original = [*kept, last]
    fixed = [_fixed(cell, fixed_text) for cell in original]
    for cell in fixed:
        if "get_ipython()" in cell.transformed:
            # a magic (%run, %%time, !cmd) is no code to re-run behind the user's back
            raise NotVerifiable(f"In[{cell.number}] runs IPython magics or shell commands.")
    start = starts.get(original[0].number) if kept else failing.start
    seconds = [getattr(starts.get(c.number), "seconds", None) for c in kept]
    known = [s for s in (*seconds, failing.first_run_s) if s is not None]
    first_run_s = sum(known) if known else None
    return Window(FailedCell(original, start, first_run_s), FailedCell(fixed, start, first_run_s))


def _fixed(cell: CellCode, fixed_text: Mapping[int, str]) -> CellCode:
    if cell.number not in fixed_text:
        return cell
    # a code name of its own: the fixed code's frames map to the cell, never to the code it replaces
    return CellCode(cell.number, fixed_text[cell.number], fixed_name(cell.number))


def fixed_name(number: int) -> str:
    return f"<inplace_magic fixed In[{number}]>"


def _needed(between: list[CellCode], changes: Mapping[int, str], failing_source: str) -> list[CellCode]:
    # ``changes``: the fixed cells' code, already through IPython's transformers
    """The cells of ``between`` the fix reaches (forward) and the failing cell still reads (backward)."""
    touched: frozenset[str] = frozenset()
    reached: list[tuple[CellCode, str]] = []
    for cell in between:
        source = changes.get(cell.number)
        text = cell.transformed if source is None else source
        if source is not None or names_read(text) & touched:
            reached.append((cell, text))
            touched |= names_defined(text)
    live = names_read(failing_source)
    kept: list[CellCode] = []
    for cell, text in reversed(reached):
        defined = names_defined(text)
        if cell.number in changes or defined & live:
            kept.insert(0, cell)
            live = (live - defined) | names_read(text)
    return kept
