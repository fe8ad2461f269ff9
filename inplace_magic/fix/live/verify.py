"""Verify candidate fixes in the live kernel, best first, within a budget of replays.

Each candidate's window (:mod:`.window`) is re-executed with the fix applied (:mod:`.run`); when it
runs without the error, the same window without the fix, with saved tensors kept as
``allow_mutation_on_saved_tensors`` keeps them (:mod:`.reference`) and from the same start, is the
gradient reference (the judge's definition, :mod:`..judge`), run once per window. So the best fix
costs at most two replays when it verifies, one when it does not help.
Verification stops at the first fix that is verified and gradient-preserving (or verified and
changing the training semantics, when that is what it is for); the others are said not to have run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from ...record.family import classify
from ...replay.kernel import CellStart, FailedCell, KernelCells, would_advance
from ...replay.run import raising_frame
from ...replay.time_limit import TimeLimitExceeded, limit_for
from .. import chain, generate, rank
from ..context import Context
from ..judge import verdict
from ..model import Candidate, Fix, RunOutcome, Verdict
from ..sandbox import grads
from .run import Observed, pairs, replay_window
from .window import NotVerifiable, Window, build, fixed_name

MAX_CANDIDATES = 12
MAX_REPLAYS = 6  # verification replays per diagnosis, all fixes together

Outcome = Literal["verified", "failed", "not_run"]
# (what the replay is for, the window's label) -> a progress indicator while it runs
ProgressLine = Callable[[str], AbstractContextManager[Any]]


@dataclass
class Checked:
    """One fix after its verification (or after it was passed over)."""

    index: int
    fix: Fix
    outcome: Outcome  # verified; ran and did not help; not run (budget, time limit, not verifiable)


@dataclass
class _Lookup:
    """Code names of a window -> In[] numbers (the fixed cells have names of their own)."""

    cells: KernelCells
    fixed: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    def cell_of(self, filename: str) -> tuple[int, str | None] | None:
        return self.fixed.get(filename) or self.cells.cell_of(filename)


class LiveVerification:
    """The candidates of one diagnosis, and their verification in the kernel (:meth:`run`)."""

    def __init__(
        self,
        shell: Any,
        cells: KernelCells,
        failing: FailedCell,
        diagnosis: dict[str, Any],
        *,
        starts: Mapping[int, CellStart] | None = None,
        time_limit: float | None = None,
        allow_advance: bool = False,
        max_replays: int = MAX_REPLAYS,
    ) -> None:
        self.shell = shell
        self.cells = cells
        self.failing = failing
        self.diagnosis = diagnosis
        self.starts = starts or {}
        self.time_limit = time_limit
        self.allow_advance = allow_advance
        self.max_replays = max_replays
        self.replays = 0  # re-executions of the user's code this verification ran
        self.seconds = 0.0
        self.session = cells.session_cells()
        found = generate.candidates(Context.build(self.session, diagnosis))[:MAX_CANDIDATES]
        # the order a verification would give them if all verified: the best is tried first
        self.candidates = [c for c, _ in rank.ranked([(c, Verdict()) for c in found])]
        self.fixes: list[Fix] = [
            rank.to_fix(self.session, c, Verdict(notes=list(c.notes))) for c in self.candidates
        ]
        self._references: dict[tuple[int, ...], Observed | None] = {}
        self._lookup = _Lookup(cells)

    def run(
        self,
        on_checked: Callable[[Checked], None] | None = None,
        progress: ProgressLine | None = None,
    ) -> list[Checked]:
        """Verify the fixes best first until one is verified; ``on_checked`` hears each as it is done."""
        started = time.monotonic()
        checked: list[Checked] = []
        done = False
        try:
            for index, candidate in enumerate(self.candidates):
                if done:
                    result = self._passed_over(index, "a better fix was verified first")
                elif self.replays >= self.max_replays:
                    result = self._passed_over(
                        index, f"the verification's budget of {self.max_replays} replays was spent"
                    )
                else:
                    result = self._check(index, candidate, progress)
                    done = result.outcome == "verified" and _best(candidate, result.fix)
                self.fixes[index] = result.fix
                checked.append(result)
                if on_checked is not None:
                    on_checked(result)
        finally:
            self.seconds = time.monotonic() - started
        return checked

    def _passed_over(self, index: int, why: str) -> Checked:
        fix = self.fixes[index].copy()
        fix["notes"] = [*fix.get("notes", []), f"Not verified: {why} (each verification re-runs cells here)."]
        return Checked(index, fix, "not_run")

    def _check(self, index: int, candidate: Candidate, progress: ProgressLine | None) -> Checked:
        def not_run(why: str) -> Checked:
            verdict_ = Verdict(notes=[*candidate.notes, f"Not verified: {why}"])
            return Checked(index, rank.to_fix(self.session, candidate, verdict_), "not_run")

        try:
            window = build(self.shell, self.cells, self.failing, candidate.cells, self.starts)
        except NotVerifiable as why:
            return not_run(f"it cannot be re-run in this kernel: {why}")
        advanced = would_advance(self.shell, window.original)
        if advanced and not self.allow_advance:
            return not_run(f"a re-run would move on {', '.join(advanced)}, which cannot be set back.")
        for cell in window.fixed.cells:
            if cell.filename == fixed_name(cell.number):
                self._lookup.fixed[cell.filename] = (cell.number, self.cells.ids.get(cell.number))
        label = window.original.label
        seconds = limit_for(window.original.first_run_s, self.time_limit)
        try:
            fixed = self._replay(window.fixed, False, seconds, progress, f"verifying a fix ({label})")
        except TimeLimitExceeded as hit:
            return not_run(f"its re-run ran past the time limit of {hit.seconds:g} s and was stopped.")
        run = self._outcome(fixed)
        reference: Observed | None = None
        compare = not candidate.changes_semantics
        if run.error is None and compare:
            reference = self._reference(window, seconds, progress)
            if reference is not None:
                run.compared, run.mismatched = grads.compare(pairs(reference, fixed))
                run.matches_reference = (not run.mismatched) if run.compared else None
        original = chain.moved(self.session, self._original(), candidate)
        judged = verdict(candidate, run, original, self._reference_json(reference))
        outcome: Outcome = "verified" if judged.verified else "failed"
        return Checked(index, rank.to_fix(self.session, candidate, judged), outcome)

    def _replay(
        self, window: FailedCell, reference: bool, seconds: float, progress: ProgressLine | None, what: str
    ) -> Observed:
        self.replays += 1
        line = progress(what) if progress is not None else None
        return replay_window(self.shell, window, allow_mutation=reference, seconds=seconds, progress=line)

    def _reference(self, window: Window, seconds: float, progress: ProgressLine | None) -> Observed | None:
        """The unfixed window with saved tensors kept (:mod:`.reference`), once per window."""
        if window.key not in self._references:
            what = f"computing the gradient reference ({window.original.label})"
            try:
                reference = self._replay(window.original, True, seconds, progress, what)
                reference.error = None  # its frames hold the overlay's objects; ``failed`` says it raised
                self._references[window.key] = reference
            except TimeLimitExceeded:
                self._references[window.key] = None
        return self._references[window.key]

    def _reference_json(self, reference: Observed | None) -> dict[str, Any]:
        if reference is None:
            return {"timed_out": True}
        return {"timed_out": False, "backward_calls": reference.backward_calls}

    def _original(self) -> dict[str, Any]:
        """The failed run, as the judge compares a fixed run with it: its error, where and what kind."""
        error = dict(self.diagnosis.get("error") or {})
        error["kind"] = self.diagnosis.get("kind")
        return {"error": error, "backward_calls": 0}

    def _outcome(self, observed: Observed) -> RunOutcome:
        error: dict[str, Any] | None = None
        if observed.error is not None:
            exc = observed.error
            try:
                message = str(exc)
            except Exception:  # the user's __str__ raised: Python prints a placeholder too
                message = "<exception str() failed>"
            error = {"type": type(exc).__name__, "message": message.strip().split("\n")[0][:500]}
            error["kind"] = classify(exc)
            frame = raising_frame(exc, self._lookup)
            if frame is not None:
                where = self._lookup.cell_of(frame.filename)
                error.update({"cell": where[0]} if where else {"file": frame.filename})
                error["line"] = frame.lineno
            observed.error = None  # its frames hold the overlay's objects: let them go
        return RunOutcome(
            ran=True,
            error=error,
            gradients=observed.gradients,
            backward_calls=observed.backward_calls,
            finite=grads.all_finite(observed.final),
        )


def _best(candidate: Candidate, fix: Fix) -> bool:
    """A fix worth stopping at: gradient-preserving, or compared with nothing, or one that changes the
    training on purpose (a reordered optimizer step). A precise fix whose gradients differ is not."""
    return candidate.changes_semantics or fix.get("preserves_gradients") is not False
