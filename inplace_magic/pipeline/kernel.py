"""Diagnose a cell that just failed in a live kernel: replay it under the engine, widen the replay
to earlier cells when the failing one alone does not tell enough, and find fixes.

The re-execution itself, with its undo log, is :func:`~inplace_magic.replay.kernel.replay_in_kernel`;
recording and diagnosing are :func:`~inplace_magic.pipeline.core.replay`, which the CLI uses too.
Neither Ctrl-C nor a bug of ours hides the user's error.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from ..diagnose.diagnosis import Diagnosis, ErrorInfo, Location, OpSite
from ..diagnose.explain import explain
from ..diagnose.locations import Locator
from ..record.family import classify
from ..replay.kernel import FailedCell, KernelCells, replay_in_kernel, widened
from ..replay.run import RandomState, raising_frame
from . import core


class Progress(Protocol):
    """A factory of progress indicators (the notebook face's progress line)."""

    def __call__(self, shell: Any, what: str) -> AbstractContextManager[Any]: ...


FixMode = Literal["none", "suggest", "verify"]

_LATEST: dict[str, Any] | None = None


def latest() -> dict[str, Any] | None:
    """A copy of the latest diagnosis of this session, as the CLI's JSON."""
    return copy.deepcopy(_LATEST)


MAX_WIDENINGS = 2  # earlier cells are added at most twice (at most MAX_WINDOW cells in all)
COMPLETE = 4  # see _completeness


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


def diagnose_failure(
    shell: Any,
    cellmap: KernelCells,
    cell: FailedCell | None,
    exc: BaseException,
    *,
    starts: Mapping[int, RandomState] | None = None,
    replay: bool = True,
    fixes: FixMode = "suggest",
    progress: Progress | None = None,
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
            outcome.diagnosis = _replayed(shell, cellmap, cell, exc, location, progress)
            window: FailedCell | None = cell
            for _ in range(MAX_WIDENINGS):
                if _completeness(outcome.diagnosis) == COMPLETE or window is None:
                    break
                window = widened(window, cellmap, starts)
                if window is not None:
                    wider = _replayed(shell, cellmap, window, exc, location, progress)
                    if _completeness(wider) > _completeness(outcome.diagnosis):
                        outcome.diagnosis = wider
        if outcome.diagnosis is not None and fixes != "none":
            found = core.find_fixes(
                cellmap.session_cells(), outcome.diagnosis, None, verify=fixes == "verify"
            )
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


def _with_cell_ids(fix: dict[str, Any], cellmap: KernelCells) -> dict[str, Any]:
    """Each edit also names its cell by id: In[] numbers mean nothing to the front end."""
    for edit in fix.get("edits", []) or []:
        if isinstance(edit, dict) and edit.get("cell") in cellmap.ids:
            edit["cell_id"] = cellmap.ids[edit["cell"]]
    return fix


def _replayed(
    shell: Any,
    cells: KernelCells,
    window: FailedCell,
    exc: BaseException,
    location: Location | None,
    progress: Progress | None,
) -> Diagnosis | None:
    line = progress(shell, f"replaying {window.label} to diagnose the in-place error") if progress else None
    return replay_in_kernel(
        shell,
        window,
        lambda rerun: core.replay(rerun, exc, cells, lambda: shell.user_ns, location),
        line,
    )


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
