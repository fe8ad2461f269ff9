"""Diagnose a cell that just failed in a live kernel: replay it once under the engine, then undo it.

The replay goes through :func:`inplace_magic.api.replay`, the entry point every face uses; this
module only supplies what a kernel adds around it: the cell's code as the kernel compiled it, the
random state the cell started from, an undo log and snapshots that put the kernel back exactly as
the failed run left it, a progress line, and a guarantee that neither Ctrl-C nor a bug of ours
hides the user's error.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any, Literal

import torch

from . import api
from .celldeps import names_defined, names_read
from .cellmap import CellMap
from .diagnosis import Diagnosis, ErrorInfo, Location, OpSite
from .explain import explain
from .family import classify
from .locate import Locator
from .progress import Progress
from .run import RandomState, raising_frame
from .undo import ObjectSnapshot, WriteLog, deferred_interrupts

FixMode = Literal["none", "suggest", "verify"]

_LATEST: dict[str, Any] | None = None


def latest() -> dict[str, Any] | None:
    """A copy of the latest diagnosis of this session, as the CLI's JSON."""
    return copy.deepcopy(_LATEST)


MAX_WIDENINGS = 2  # earlier cells are added at most twice ...
MAX_WINDOW = 8  # ... and the replay never runs more than this many cells
COMPLETE = 4  # see _completeness


@dataclass(frozen=True)
class CellCode:
    number: int  # In[number]
    transformed: str  # the code the kernel ran, after IPython's input transformers
    filename: str  # the kernel's code name for it: frames of the replay map to the same cell


@dataclass
class FailedCell:
    """What to replay: cells in execution order (the failing one last) and the random state the
    first of them started with (None: not captured)."""

    cells: list[CellCode]
    start: RandomState | None

    @property
    def label(self) -> str:
        first, last = self.cells[0].number, self.cells[-1].number
        return f"In[{last}]" if first == last else f"In[{first}] to In[{last}]"


def widened(window: FailedCell, cellmap: CellMap, starts: Mapping[int, RandomState]) -> FailedCell | None:
    """``window`` with the earlier cells it reads names from (all cells between, as they ran)."""
    first = window.cells[0].number
    reads = set().union(*(names_read(c.transformed) for c in window.cells))
    earlier: list[CellCode] = []
    for number in cellmap.earlier_numbers(first, MAX_WINDOW - len(window.cells)):
        code = cellmap.cell_code(number)
        if code is None or "get_ipython()" in code[0]:
            return None  # a magic (%reset, %run, ...) is no code to replay behind the user's back
        earlier.insert(0, CellCode(number, *code))
        if names_defined(code[0]) & reads:
            return FailedCell(earlier + window.cells, starts.get(number))
    return None


def _built_elsewhere(site: OpSite | None) -> bool:
    """A torch module ran the op but the line that built it is unknown: it was built before the
    replayed cells, and a fix flipping its ``inplace=True`` would not know where to go."""
    if site is None or not site.module_type or site.defined_at is not None:
        return False
    return hasattr(torch.nn, site.module_type.split("(")[0])  # torch's own modules (nn.ReLU, ...)


def _completeness(diagnosis: Diagnosis | None) -> int:
    """0: not reproduced; 1-3: what it names (writer, saver); 4: also where their modules were built."""
    if diagnosis is None or not diagnosis.reproduced:
        return 0
    named = 1 + (diagnosis.inplace is not None)
    named += diagnosis.kind == "leaf_inplace" or diagnosis.saved_by is not None
    built = not any(_built_elsewhere(site) for site in (diagnosis.inplace, diagnosis.saved_by))
    return named + (named == 3 and built)


@dataclass
class Outcome:
    diagnosis: Diagnosis | None = None
    interrupted: bool = False
    internal_error: BaseException | None = None
    seconds: float = 0.0
    replayed: bool = False

    def note(self) -> str:
        """The short note attached to the user's exception."""
        if self.internal_error is not None:
            error = f"{type(self.internal_error).__name__}: {self.internal_error}"
            return (
                f"inplace_magic: could not diagnose this error (internal error, {error}); the error is yours."
            )
        if self.interrupted:
            return "inplace_magic: the diagnostic replay was interrupted (Ctrl-C); kernel state was restored."
        if not self.replayed:
            return "inplace_magic: not replayed; what the error alone tells is shown below."
        if self.diagnosis is not None and not self.diagnosis.reproduced:
            return "inplace_magic: the diagnostic replay did not reproduce this error; see the report below."
        return (
            f"inplace_magic: diagnosed by replaying the cell ({self.seconds:.1f} s; kernel state restored); "
            "see the report below, or inplace_magic.last_diagnosis()."
        )


def compile_like_kernel(shell: Any, transformed: str, filename: str) -> CodeType:
    """The cell as one code object, with the shell's AST transformers and ``__future__`` flags."""
    tree = shell.compile.ast_parse(transformed, filename=filename)
    tree = shell.transform_ast(tree)
    code: CodeType = shell.compile(tree, filename, "exec")
    return code


def _hidden_names(shell: Any) -> frozenset[str]:
    # IPython's own bookkeeping (In, Out, _oh, _i1, ...): never rebound by a replay, and often large
    hidden = getattr(shell, "user_ns_hidden", {})
    return frozenset(name for name in shell.user_ns if name in hidden or name.startswith("_"))


def diagnose_failure(
    shell: Any,
    cellmap: CellMap,
    cell: FailedCell | None,
    exc: BaseException,
    *,
    starts: Mapping[int, RandomState] | None = None,
    replay: bool = True,
    fixes: FixMode = "suggest",
) -> Outcome:
    """Diagnose ``exc`` (an in-place error raised by ``cell``); never raises but KeyboardInterrupt
    is turned into ``interrupted`` and our own bugs into ``internal_error``.

    ``starts`` holds the random state each recent cell started with, for widened replays.
    """
    starts = starts or {}
    global _LATEST
    started = time.monotonic()
    outcome = Outcome()
    try:
        location = Locator(cellmap).location(raising_frame(exc, cellmap))
        if not replay:
            outcome.diagnosis = _without_replay(exc, location, "The cell was not replayed (--no-replay).")
        elif cell is None:
            outcome.diagnosis = _without_replay(exc, location, "The failing cell's code was not available.")
        else:
            outcome.replayed = True
            outcome.diagnosis = _replayed(shell, cellmap, cell, exc, location)
            window: FailedCell | None = cell
            for _ in range(MAX_WIDENINGS):
                if _completeness(outcome.diagnosis) == COMPLETE or window is None:
                    break
                window = widened(window, cellmap, starts)
                if window is not None:
                    wider = _replayed(shell, cellmap, window, exc, location)
                    if _completeness(wider) > _completeness(outcome.diagnosis):
                        outcome.diagnosis = wider
        if outcome.diagnosis is not None and fixes != "none":
            found = api.find_fixes(cellmap.session_cells(), outcome.diagnosis, None, verify=fixes == "verify")
            outcome.diagnosis.fixes = [_with_cell_ids(fix, cellmap) for fix in found]
    except KeyboardInterrupt:
        outcome.interrupted = True
    except Exception as error:  # ours: reported briefly, the user's error stays intact
        outcome.internal_error = error
    outcome.seconds = time.monotonic() - started
    if outcome.diagnosis is not None:
        # stored through JSON: the dict the CLI prints, with no live objects in it
        _LATEST = json.loads(json.dumps(outcome.diagnosis.to_json(), default=str))
    return outcome


def _with_cell_ids(fix: dict[str, Any], cellmap: CellMap) -> dict[str, Any]:
    """Each edit also names its cell by id: In[] numbers mean nothing to the front end."""
    for edit in fix.get("edits", []) or []:
        if isinstance(edit, dict) and edit.get("cell") in cellmap.ids:
            edit["cell_id"] = cellmap.ids[edit["cell"]]
    return fix


def _replayed(
    shell: Any, cellmap: CellMap, cell: FailedCell, exc: BaseException, location: Location | None
) -> Diagnosis | None:
    from IPython.utils.capture import capture_output

    codes = [compile_like_kernel(shell, c.transformed, c.filename) for c in cell.cells]
    namespace = shell.user_ns
    after = RandomState.capture()  # what the failed run left: the kernel goes back to it
    snapshot = ObjectSnapshot.take(namespace, skip=_hidden_names(shell))
    writes = WriteLog()

    def rerun() -> BaseException | None:
        if cell.start is not None:
            cell.start.restore()  # same dropout masks and random batches as the failed run
        try:
            # the replay's prints and displays repeat the failed run's: hidden
            with capture_output(stdout=True, stderr=True, display=True):
                for code in codes:
                    exec(code, shell.user_global_ns, namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # the user's code failing again is the expected result
            return error
        return None

    progress = Progress(shell, f"replaying {cell.label} to diagnose the in-place error")
    try:
        # the undo log is entered first so that its mode sits below the recorder's
        with progress, writes:
            return api.replay(rerun, exc, cellmap, lambda: namespace, location)
    finally:
        with deferred_interrupts():
            writes.restore()
            snapshot.restore()
            after.restore()


_KIND_WORDS = {
    "version_counter": "A tensor saved for backward was modified by an in-place operation",
    "leaf_inplace": "An in-place operation wrote into a leaf tensor that requires grad",
    "view_inplace": "An in-place operation wrote into a view autograd cannot track",
    "other": "An in-place operation broke autograd",
}


def _without_replay(exc: BaseException, location: Location | None, why: str) -> Diagnosis | None:
    """What the error alone tells: its kind and where it was raised."""
    kind = classify(exc)
    if kind is None:
        return None
    diagnosis = Diagnosis(
        kind=kind,
        error=ErrorInfo(type(exc).__name__, str(exc), location),
        inplace=None,
        saved_by=None,
        tensor=None,
        reproduced=False,
    )
    note = (
        f"{why} Only the kind of error and where it was raised are known; run the cell under "
        "%%gradcheck (without --no-replay) to name the in-place operation and the one that saved the tensor."
    )
    diagnosis.notes.append(note)
    explain(diagnosis)
    where = f" (raised at {location.label()}: `{location.code}`)" if location is not None else ""
    diagnosis.headline = f"{_KIND_WORDS[kind]}{where}"
    if kind in ("version_counter", "other"):
        diagnosis.explanation = note
    return diagnosis


def report_internal_error(outcome: Outcome) -> None:
    """One line on stderr: a bug of ours is visible, and clearly not the user's error."""
    if outcome.internal_error is not None:
        print(outcome.note(), file=sys.stderr)
