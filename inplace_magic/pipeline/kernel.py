"""Diagnose a cell that just failed in a live kernel: replay it under the engine, widen the replay
to earlier cells when the failing one alone does not tell enough, and find fixes.

The re-execution itself, with its undo log, is :func:`~inplace_magic.replay.kernel.replay_in_kernel`;
recording and diagnosing are :func:`~inplace_magic.pipeline.core.replay`, which the CLI uses too.
Neither Ctrl-C, a replay past its time limit, nor a bug of ours hides the user's error. A replay
that would move on a stream it cannot set back (a generator) is not run unless the user allows it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch

from ..diagnose.diagnosis import Diagnosis, ErrorInfo, Location, OpSite
from ..diagnose.explain import explain
from ..diagnose.locations import Locator
from ..present.words import VerificationStatus, times, verification_status
from ..record.family import confirmable, member_of
from ..record.lifted_backward import BackwardRanPython
from ..record.records import StaleFinding
from ..replay.kernel import (
    CellStart,
    FailedCell,
    KernelCells,
    Reach,
    ReplayReport,
    Rerun,
    replay_in_kernel,
    widened,
    would_advance,
)
from ..replay.run import raising_frame
from ..replay.time_limit import TimeLimitExceeded, limit_for
from ..replay.undo import MAX_OBJECTS
from . import compiled_region, core
from .internal import raise_if_strict

if TYPE_CHECKING:
    from ..fix.live import Checked, LiveVerification


class Progress(Protocol):
    """A factory of progress indicators (the notebook face's progress line)."""

    def __call__(self, shell: Any, what: str) -> AbstractContextManager[Any]: ...


# "verify": each fix is re-executed in this kernel (:mod:`inplace_magic.fix.live`), the default
FixMode = Literal["none", "suggest", "verify"]

# the latest diagnosis and how often it ran the user's code; its JSON is made when asked for, not
# at each diagnosis (a tenth of a millisecond on a small model, for a call most sessions never make)
_LATEST: tuple[Diagnosis, dict[str, int]] | None = None


def latest() -> dict[str, Any] | None:
    """The latest diagnosis of this session, as the CLI's JSON (a fresh copy at each call)."""
    if _LATEST is None:
        return None
    diagnosis, executions = _LATEST
    # through JSON: the dict the CLI prints, with no live objects in it
    found: dict[str, Any] = json.loads(json.dumps(diagnosis.to_json(), default=str))
    found["executions"] = dict(executions)
    return found


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
    replays: list[str] = field(default_factory=list)  # what each replay re-executed ("In[3] to In[5]")
    timed_out: float | None = None  # the time limit a replay ran past
    refused: list[str] = field(default_factory=list)  # streams a replay would have moved on: not replayed
    advanced: list[str] = field(default_factory=list)  # ... and moved on, because the user allowed it
    incomplete_snapshot: bool = False
    # the error's text is ours only if a replay finds an in-place write behind it, and none did: it
    # is another error, shown exactly as raised (as the CLI shows it)
    unconfirmed: bool = False
    verification: LiveVerification | None = None  # the fixes' verification, still to run (verify_fixes)

    @property
    def replayed(self) -> bool:
        return bool(self.replays)

    def executions(self) -> dict[str, int]:
        """How often the user's code ran: as given, replayed to diagnose, replayed to verify fixes."""
        verifying = self.verification.replays if self.verification is not None else 0
        counts = {"run": 1, "replay": len(self.replays), "fix_verification": verifying}
        return {**counts, "total": sum(counts.values())}

    def note(self) -> str:
        """The short note attached to the user's exception."""
        if self.internal_error is not None:
            error = f"{type(self.internal_error).__name__}: {self.internal_error}"
            return (
                f"inplace_magic: could not diagnose this error (internal error, {error}); the error is yours."
            )
        if self.refused:
            return (
                f"inplace_magic: not replayed: a replay would move on {', '.join(self.refused)}, which "
                "cannot be set back; --allow-advance (on %%gradcheck or %gradcheck on) replays anyway. "
                "What the error alone tells is shown below."
            )
        done = f"re-executed {times(len(self.replays))}: {'; '.join(self.replays)}; {self.seconds:.1f} s"
        if self.interrupted:
            return (
                f"inplace_magic: the diagnostic replay was interrupted (Ctrl-C) ({done}); "
                "kernel state was restored."
            )
        caveats = "".join(
            f" {text}"
            for text, applies in (
                (f"The replay moved on {', '.join(self.advanced)} (--allow-advance).", self.advanced),
                (
                    f"More than {MAX_OBJECTS:,} objects are reachable from the namespace: changes the "
                    "replay made past them were not undone.",
                    self.incomplete_snapshot,
                ),
            )
            if applies
        )
        reproduced = self.diagnosis is not None and self.diagnosis.reproduced
        if self.timed_out is not None and reproduced:  # a wider replay was stopped; the first one stands
            return (
                f"inplace_magic: diagnosed by replaying the cell ({done}; the last replay ran past its time "
                f"limit of {self.timed_out:g} s and was stopped; kernel state restored); see the report "
                "below, or inplace_magic.last_diagnosis()." + caveats
            )
        if self.timed_out is not None:
            return (
                f"inplace_magic: the diagnostic replay ran past its time limit of {self.timed_out:g} s and "
                f"was stopped ({done}); kernel state was restored. The error is yours; "
                "%%gradcheck --time-limit S sets the limit (0: none)." + caveats
            )
        if not self.replayed:
            return "inplace_magic: not replayed; what the error alone tells is shown below."
        if self.diagnosis is not None and not self.diagnosis.reproduced:
            return (
                f"inplace_magic: the diagnostic replay did not reproduce this error ({done}; kernel state "
                "restored); see the report below." + caveats
            )
        return (
            f"inplace_magic: diagnosed by replaying the cell ({done}; kernel state restored); "
            "see the report below, or inplace_magic.last_diagnosis()." + caveats
        )


def diagnose_failure(
    shell: Any,
    cellmap: KernelCells,
    cell: FailedCell | None,
    exc: BaseException,
    *,
    starts: Mapping[int, CellStart] | None = None,
    replay: bool = True,
    fixes: FixMode = "suggest",
    progress: Progress | None = None,
    time_limit: float | None = None,
    allow_advance: bool = False,
) -> Outcome:
    """Diagnose ``exc`` (an in-place error raised by ``cell``); never raises but KeyboardInterrupt
    is turned into ``interrupted`` and our own bugs into ``internal_error``.

    ``starts`` holds what each recent cell started from, for widened replays. Each replay has a
    time limit: ``time_limit`` seconds, or (None) one derived from how long the cells first took.
    """
    starts = starts or {}
    started = time.monotonic()
    outcome = Outcome()
    try:
        location = Locator(cellmap).location(raising_frame(exc, cellmap))
        if not replay:
            outcome.diagnosis = _without_replay(
                exc, location, "The cell was not replayed (--no-replay); run it under %%gradcheck without it."
            )
        elif cell is None:
            outcome.diagnosis = _without_replay(exc, location, "The failing cell's code was not available.")
        else:
            replayer = _Replayer(shell, cellmap, exc, location, progress, time_limit, allow_advance, outcome)
            graph_bugs = replayer.read_failed_graph()
            outcome.diagnosis = replayer.replay(cell)
            window: FailedCell | None = cell
            for _ in range(MAX_WIDENINGS):
                if outcome.refused or outcome.timed_out is not None or window is None:
                    break
                if _completeness(outcome.diagnosis) == COMPLETE:
                    break
                window = widened(window, cellmap, starts)
                if window is None:
                    break
                reach = Reach.of(shell, window)
                advanced = would_advance(shell, window, reach)
                if advanced and not allow_advance:
                    if outcome.diagnosis is not None:
                        outcome.diagnosis.notes.append(
                            f"A wider replay ({window.label}) was not run: it would move on "
                            f"{', '.join(advanced)}, which cannot be set back (--allow-advance runs it)."
                        )
                    break
                wider = replayer.replay(window, reach)
                if _completeness(wider) > _completeness(outcome.diagnosis):
                    outcome.diagnosis = wider
            if outcome.diagnosis is not None:
                outcome.diagnosis.notes.extend(graph_bugs)
        if outcome.diagnosis is not None and outcome.diagnosis.reproduced:
            compiled_region.unwrap(outcome.diagnosis, exc)  # raised inside a torch.compile region
        if outcome.diagnosis is not None and fixes == "verify" and cell is not None:
            # the candidates now, unverified; verify_fixes runs them once the diagnosis is shown
            from ..fix.live import LiveVerification  # the fix stage imports libcst: only when asked

            outcome.verification = LiveVerification(
                shell,
                cellmap,
                cell,
                dict(outcome.diagnosis.to_json()),
                starts=starts,
                time_limit=time_limit,
                allow_advance=allow_advance,
            )
            outcome.diagnosis.fixes = [_with_cell_ids(dict(f), cellmap) for f in outcome.verification.fixes]
        elif outcome.diagnosis is not None and fixes != "none":
            found = core.find_fixes(cellmap.session_cells(), outcome.diagnosis, None, verify=False)
            outcome.diagnosis.fixes = [_with_cell_ids(fix, cellmap) for fix in found]
    except KeyboardInterrupt:
        outcome.interrupted = True
    except Exception as error:  # ours: reported briefly, the user's error stays intact
        outcome.internal_error = error
    outcome.seconds = time.monotonic() - started
    outcome.unconfirmed = outcome.replayed and outcome.diagnosis is None and _unconfirmed(exc)
    _remember(outcome)
    return outcome


def _ours(what: str, bug: Exception) -> str:
    """The note a bug of ours leaves on a diagnosis it did not spoil."""
    return (
        f"inplace_magic internal error while {what} ({type(bug).__name__}: {bug}): a bug of ours, please "
        "report it; the replay found the tensor without it."
    )


def _remember(outcome: Outcome) -> None:
    """Keep ``outcome``'s diagnosis for :func:`latest`; called again whenever its fixes change."""
    global _LATEST
    if outcome.diagnosis is not None:
        _LATEST = (outcome.diagnosis, outcome.executions())


def pending_fixes(outcome: Outcome) -> list[int]:
    """The fixes ``verify_fixes`` will report on (each is "verifying" until then)."""
    if outcome.verification is None or outcome.diagnosis is None:
        return []
    return list(range(len(outcome.diagnosis.fixes)))


Verdict = dict[str, Any]  # the panel's FixVerdict: status, verified, preserves_gradients, detail, notes


def verify_fixes(
    shell: Any,
    outcome: Outcome,
    on_verdict: Callable[[int, Verdict], None] | None = None,
    progress: Progress | None = None,
) -> None:
    """Run the fixes' verification in the kernel, best first, telling ``on_verdict`` each fix's verdict
    as it is known; the diagnosis (and ``last_diagnosis()``) then holds the verified fixes. Never
    raises but KeyboardInterrupt stops it (the fixes not run say so) and our bugs become
    ``internal_error``."""
    verification, diagnosis = outcome.verification, outcome.diagnosis
    if verification is None or diagnosis is None:
        return
    told: set[int] = set()

    def checked(result: Checked) -> None:
        fix = _with_cell_ids(dict(result.fix), verification.cells)
        if result.outcome == "verified" and verification.replays:
            fix["notes"] = [*fix["notes"], _cost(verification.replays)]
        diagnosis.fixes[result.index] = fix
        told.add(result.index)
        if on_verdict is not None:
            on_verdict(result.index, _verdict(fix, result))

    def line(what: str) -> AbstractContextManager[Any]:
        return progress(shell, what) if progress is not None else contextlib.nullcontext()

    try:
        verification.run(checked, line)
    except KeyboardInterrupt:
        _stopped(diagnosis, told, on_verdict, "the verification was interrupted (Ctrl-C)")
    except Exception as error:  # ours: the diagnosis stands, unverified fixes say so
        raise_if_strict(error)  # the test suite wants our bugs raised
        outcome.internal_error = outcome.internal_error or error
        _stopped(diagnosis, told, on_verdict, f"inplace_magic failed while verifying ({error!r})")
    finally:
        _remember(outcome)


def _cost(replays: int) -> str:
    return (
        f"Verified in this kernel: the cells re-ran {times(replays)} (with a fix, and without it for "
        "the reference gradients); its state restored."
    )


def _verdict(fix: Mapping[str, Any], result: Checked) -> Verdict:
    status: VerificationStatus = {"verified": verification_status(fix), "failed": "did_not_help"}.get(
        result.outcome, "not_verified"
    )
    notes = [str(n) for n in fix.get("notes") or []]
    return {
        "status": status,
        "verified": bool(fix.get("verified")),
        "preserves_gradients": fix.get("preserves_gradients"),
        "detail": notes[-1] if notes else "",
        "notes": notes,
    }


def _stopped(
    diagnosis: Diagnosis, told: set[int], on_verdict: Callable[[int, Verdict], None] | None, why: str
) -> None:
    for index, fix in enumerate(diagnosis.fixes):
        if index in told:
            continue
        fix["notes"] = [*fix.get("notes", []), f"Not verified: {why}."]
        if on_verdict is not None:
            on_verdict(index, {"status": "not_verified", "detail": fix["notes"][-1], "notes": fix["notes"]})


@dataclass
class _Replayer:
    """One diagnosis's replays: each refused, limited in time, counted and reported in ``outcome``."""

    shell: Any
    cells: KernelCells
    exc: BaseException
    location: Location | None
    progress: Progress | None
    time_limit: float | None
    allow_advance: bool
    outcome: Outcome
    known: StaleFinding | None = None  # what the failed run's graph says of the stale tensor

    def read_failed_graph(self) -> list[str]:
        """Take what the failed run's graph says of the stale tensor (``known``); the notes of any bug
        of ours met on the way (the diagnosis carries them: it is still whole)."""
        bugs: list[str] = []
        self.known = core.known_stale(self.exc, lambda bug: bugs.append(_ours(core.GRAPH_READING, bug)))
        return bugs

    def replay(self, window: FailedCell, reach: Reach | None = None) -> Diagnosis | None:
        """The diagnosis from replaying ``window``; what the error alone tells when it is not replayed.
        ``reach``: what :meth:`Reach.of` found for ``window`` just before (taken here when None)."""
        outcome = self.outcome
        reach = reach if reach is not None else Reach.of(self.shell, window)
        advanced = would_advance(self.shell, window, reach)
        if advanced and not self.allow_advance:
            outcome.refused = advanced
            why = (
                f"The cell was not replayed: a replay would move on {', '.join(advanced)}, which cannot "
                "be set back (run it under %%gradcheck --allow-advance to replay it anyway)."
            )
            return _without_replay(self.exc, self.location, why)
        outcome.advanced = sorted(set(outcome.advanced) | set(advanced))
        seconds = limit_for(window.first_run_s, self.time_limit)
        what = f"replaying {window.label} to diagnose the in-place error"
        line = self.progress(self.shell, what) if self.progress is not None else None
        report = ReplayReport()
        outcome.replays.append(window.label)
        try:
            stray: list[BaseException] = []  # raised by an earlier cell of the window

            def through_the_failing_cell(rerun: Rerun) -> Rerun:
                def checked() -> BaseException | None:
                    error = rerun()
                    # BackwardRanPython: the guard voided that run, wherever its backward was; the
                    # pipeline runs it again (core.replay)
                    if error is None or isinstance(error, BackwardRanPython):
                        return error
                    if not _raised_through(error, window.cells[-1].filename):
                        stray.append(error)
                    return error

                return checked

            diagnosis = replay_in_kernel(
                self.shell,
                window,
                lambda rerun: core.replay(
                    through_the_failing_cell(rerun),
                    self.exc,
                    self.cells,
                    lambda: self.shell.user_ns,
                    self.location,
                    undo=rerun.undo,
                    # the undo log needs every forward op dispatched, so a first pass of saved-tensor
                    # hooks alone saves little here (5-10% of what %%gradcheck adds on the tiny
                    # models, measured again with backward run without the mode), and it would run
                    # the user's cell once more at every diagnosis, with whatever it does that no
                    # undo log reaches (a file written, a print)
                    first_pass=False,
                    # but the failed run's own graph may say which saved tensor went stale: the
                    # recording then stops once the diagnosis has what it reads, as after a first pass
                    known=self.known,
                    # backward off the dispatch mode pays where Python's cost per op dominates; in a
                    # long run it saves little, and a run that its guard voids would cost much
                    lift_backward=core.first_pass_pays(window.first_run_s or 0.0),
                ),
                line,
                seconds=seconds,
                report=report,
                reach=reach,
            )
            if stray:
                # an earlier cell of a wider window failed first (it failed when it ran, too): what
                # this replay recorded is that error's, not the user's
                return None
        except TimeLimitExceeded as hit:
            outcome.replays.extend([window.label] * (report.runs - 1))
            outcome.timed_out = hit.seconds
            outcome.incomplete_snapshot |= not report.snapshot_complete
            if outcome.diagnosis is not None:
                return None  # an earlier, narrower replay's diagnosis stands
            why = (
                f"The replay of {window.label} ran past its time limit of {hit.seconds:g} s and was stopped."
            )
            return _without_replay(self.exc, self.location, why)
        outcome.incomplete_snapshot |= not report.snapshot_complete
        outcome.replays.extend([window.label] * (report.runs - 1))  # re-executed a second time
        if diagnosis is not None:
            diagnosis.notes.extend(
                f"The replay could not set {stream} back to where {window.label} started (it ran out, or "
                "appeared since): the replay read on from where the failed run left it, and it was put "
                "back there afterwards."
                for stream in report.not_rewound
            )
        return diagnosis


def _raised_through(error: BaseException, filename: str) -> bool:
    """Whether the failing cell's own code is on ``error``'s traceback (it reached that cell)."""
    return any(frame.f_code.co_filename == filename for frame, _ in traceback.walk_tb(error.__traceback__))


def _with_cell_ids(fix: dict[str, Any], cellmap: KernelCells) -> dict[str, Any]:
    """Each edit also names its cell by id: In[] numbers mean nothing to the front end."""
    for edit in fix.get("edits", []) or []:
        if isinstance(edit, dict) and edit.get("cell") in cellmap.ids:
            edit["cell_id"] = cellmap.ids[edit["cell"]]
    return fix


_KIND_WORDS = {
    "version_counter": "A tensor saved for backward was modified by an in-place operation",
    "leaf_inplace": "An in-place operation wrote into a leaf tensor that requires grad",
    "view_inplace": "An in-place operation wrote into a view autograd cannot track",
    "other": "An in-place operation broke autograd",
}


def _unconfirmed(exc: BaseException) -> bool:
    try:
        return member_of(exc) is None and confirmable(exc) is not None
    except Exception:  # the user's __str__ raised
        return False


def _without_replay(exc: BaseException, location: Location | None, why: str) -> Diagnosis | None:
    """What the error alone tells: its kind and where it was raised (nothing for a text that only a
    replay makes ours)."""
    member = member_of(exc)
    if member is None:
        return None
    kind = member.kind
    diagnosis = Diagnosis(
        kind=kind,
        error=ErrorInfo(type(exc).__name__, str(exc), location),
        inplace=None,
        saved_by=None,
        tensor=None,
        reproduced=False,
        member=member.id,
    )
    note = (
        f"{why} Only the kind of error and where it was raised are known; a replay names the in-place "
        "operation and the one that saved the tensor."
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
