"""The one entry point every face calls: run code, and when it fails with an in-place autograd
error, replay it under the recorder and return the diagnosis (with its verified fixes).

How often the user's code ran is counted and returned (:class:`Executions`): once as given; up to
the failing cell, for the replay (under the recorder, which for a stale saved tensor stops once the
diagnosis has what it reads: the failed run's own graph says which tensor that is, or, where it
cannot and the run was short, a first pass of saved-tensor hooks runs before); and, with fixes, in a
sandbox process for each verification run. Every re-execution has a time limit and stops at the
first Ctrl-C; then, or when our own code fails, the user's original error is what is reported, with
a note saying why it is not diagnosed. The user's exception keeps their frames only.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..diagnose.analysis import diagnose
from ..diagnose.contract import without_diagnosis
from ..diagnose.diagnosis import Diagnosis, ErrorInfo, Location
from ..diagnose.explain import explain
from ..diagnose.locations import Locator
from ..diagnose.members import ANALYSES
from ..diagnose.stale import skip_settled
from ..present.words import times
from ..record.failed_graph import stale_in_failed_run
from ..record.family import Member, confirmable, member_of
from ..record.first_pass import FirstPass
from ..record.recorder import OpObserver, Recorder, ReplayStopped
from ..record.records import StaleFinding, Trace
from ..replay.cells import Cell
from ..replay.eager import eager_replay
from ..replay.run import (
    CellLookup,
    Dialect,
    RandomState,
    SourceMap,
    as_script,
    compile_cells,
    dialect_of,
    fresh_namespace,
    raising_frame,
    run_program,
)
from ..replay.time_limit import TimeLimitExceeded, interrupt_once, limit_for, time_limit
from . import compiled_region
from .internal import raise_if_strict

Status = Literal["ok", "inplace_error", "other_error"]

_KIND_WORDS = {
    "version_counter": "A tensor saved for backward was modified by an in-place operation",
    "leaf_inplace": "An in-place operation wrote into a leaf tensor that requires grad",
    "view_inplace": "An in-place operation wrote into a view autograd cannot track",
    "other": "An in-place operation broke autograd",
}


@dataclass
class Executions:
    """How many times the user's code was started: as given, replayed, and to verify fixes."""

    run: int = 0
    replay: int = 0
    fix_verification: int = 0
    fixes_ran: str = "in a sandbox process"  # where the fix verification ran (a DDP launch: its ranks)

    @property
    def total(self) -> int:
        return self.run + self.replay + self.fix_verification

    def to_json(self) -> dict[str, int]:
        return {
            "run": self.run,
            "replay": self.replay,
            "fix_verification": self.fix_verification,
            "total": self.total,
        }

    def count_fix_run(self) -> None:
        self.fix_verification += 1

    def sentence(self) -> str:
        parts = [f"{self.run} as given" if self.run != 1 else "once as given"]
        if self.replay == 1:
            parts.append("once more under the recorder (the replay)")
        elif self.replay:
            # a first pass of saved-tensor hooks, then the recorder (and a full recording when needed)
            parts.append(f"{times(self.replay)} more to replay it (a first pass, then under the recorder)")
        if self.fix_verification:
            parts.append(f"{times(self.fix_verification)} {self.fixes_ran} to verify fixes")
        return f"Your code ran {times(self.total)}: " + ", ".join(parts) + "."


class Watcher(Protocol):
    """Told what the check is doing, for a supervising process that must report if it never ends."""

    def cell(self, index: int) -> None: ...

    def stage(self, name: str, seconds: float, provisional: CheckResult) -> None: ...


@dataclass
class CheckResult:
    status: Status
    error: ErrorInfo | None
    exception: BaseException | None
    diagnosis: Diagnosis | None
    traceback: str = ""  # the user's exception as Python prints it: their frames only
    notes: list[str] = field(default_factory=list)  # about the run, the replay and the fix search
    internal_errors: list[str] = field(default_factory=list)  # bugs of ours, never the user's
    executions: Executions = field(default_factory=Executions)
    error_cell: int | None = None  # the cell of an error without a line (a cell too deep to compile)
    interrupted: bool = False  # a Ctrl-C stopped the replay or the fix search
    replay_finished: bool = False  # the diagnosis comes from a replay that ran to its end

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.diagnosis is not None:
            out = dict(self.diagnosis.to_json())
            out["notes"] = [*out["notes"], *self.notes]
        else:
            out = without_diagnosis(self.status, self.error.to_json() if self.error else None, self.notes)
        if out["error"] is not None and out["error"]["cell"] is None and self.error_cell is not None:
            out["error"]["cell"] = self.error_cell
        out["traceback"] = self.traceback
        out["executions"] = self.executions.to_json()
        out["internal_errors"] = list(self.internal_errors)
        return out


def lean_applies(original: BaseException) -> bool:
    """A stale saved tensor's diagnosis (the common error) reads no torch call and no op autograd
    runs in backward: those may be left out, which on small models is most of the replay's cost.
    Every other member records everything."""
    member = member_of(original, confirmable=True)
    return member is not None and member.kind == "version_counter" and member.id not in ANALYSES


def recorder_for(
    original: BaseException,
    undo: OpObserver | None = None,
    stop: StaleFinding | None = None,
    lift: bool = True,
) -> Recorder:
    """A recorder of what the diagnosis of ``original`` reads (see :func:`lean_applies`); ``stop``
    is what a first pass found: the recording then ends once the diagnosis has what it reads.
    ``lift=False`` keeps the dispatch mode on during backward for the undo log."""
    lean = lean_applies(original)
    if not lean:
        return Recorder(undo=undo)
    return Recorder(calls=False, backward_ops=False, undo=undo, stop=stop, settled=skip_settled, lift=lift)


# A first pass pays for itself where Python's cost per op dominates (small models, a GPU): there the
# recording of the ops after the write costs more than a second run without a recorder. A CPU run this
# long is compute-bound: the recorder adds a few percent over the whole run, while the second run
# adds what the forward costs up to the write's block (measured in B2: the realistic models at
# 1.05x with one recorded run, 1.10x with two; the tiny ones at half the cost with two).
FIRST_PASS_BELOW_S = 0.25


def first_pass_pays(first_run_s: float) -> bool:
    """Whether a replay of code whose own failing run took ``first_run_s`` is cheaper in two passes."""
    return first_run_s < FIRST_PASS_BELOW_S


@dataclass
class PassTimes:
    """How long each pass of one replay took (benchmark B2's columns), in seconds."""

    first: float = 0.0  # saved-tensor hooks only: which saved tensor goes stale
    record: float = 0.0  # the recorder, up to where the diagnosis has what it reads
    again: float = 0.0  # a recording of everything, when the lean one missed what it needs
    analysis: float = 0.0


def replay(
    rerun: Callable[[], BaseException | None],
    original: BaseException,
    source_map: CellLookup,
    namespace: Callable[[], dict[str, Any]],
    error_location: Location | None,
    *,
    undo: OpObserver | None = None,
    pass_times: PassTimes | None = None,
    first_pass: bool = True,
    lift_backward: bool = True,
    known: StaleFinding | None = None,
) -> Diagnosis | None:
    """Re-run failing code under the recorder and diagnose ``original`` from what it recorded.

    ``rerun`` executes the code and returns the exception it raised (or None); ``namespace`` gives
    the names to resolve models and parameters against once it has run; ``undo`` sees every op the
    re-execution dispatches (the kernel's undo log). For a stale saved tensor ``rerun`` is called
    twice, unless ``known`` says which tensor backward read stale: a first pass with saved-tensor
    hooks only finds it, and the recorder then stops the second once it has recorded that tensor's
    save and its writes and the module call that holds both has returned (the skip connection
    merges there). When the lean
    recording missed what the diagnosis needs (the stale tensor was written or saved during
    backward), ``rerun`` is called once more, under a recorder of everything. When the first pass
    reached no stale tensor (nor code where torch lifts saved-tensor hooks), a recording would find
    none either: the error is then diagnosed as not reproduced, without a second run.
    ``first_pass=False`` leaves the first pass out (a DDP launch: the other ranks re-run once).
    ``lift_backward=False`` keeps the dispatch mode on during backward for the undo log throughout
    (a long run: there the mode costs little, and a run the guard voids costs much). ``known`` is
    what the failed run's own graph said of its stale tensor (:mod:`~..record.failed_graph`): it
    stands in for the first pass.
    """
    spent = pass_times if pass_times is not None else PassTimes()
    raised: list[BaseException] = []

    def run() -> BaseException | None:
        error = rerun()
        if error is not None:
            raised.append(error)
        return error

    try:
        return _replay(
            run,
            original,
            source_map,
            namespace,
            error_location,
            undo,
            spent,
            first_pass,
            lift_backward,
            known,
        )
    finally:
        _released(raised, original)


def _released(errors: list[BaseException], original: BaseException) -> None:
    """Drop the tracebacks of the errors a replay raised, once read. Each holds the replay's frames,
    and through them the frames that held the error: a cycle only the garbage collector frees, with
    the replay's tensors and every local of the diagnosis in it (on a small model a collection at
    most diagnoses). Only the errors themselves: what they were raised while handling may be the
    user's error (a diagnosis run from IPython's exception handler), whose traceback stays whole,
    as does that of an error the user's code raised again in the replay (the same object)."""
    for error in errors:
        if error is not original:
            error.__traceback__ = None
    errors.clear()


def _replay(
    rerun: Callable[[], BaseException | None],
    original: BaseException,
    source_map: CellLookup,
    namespace: Callable[[], dict[str, Any]],
    error_location: Location | None,
    undo: OpObserver | None,
    spent: PassTimes,
    first_pass: bool,
    lift_backward: bool,
    known: StaleFinding | None,
) -> Diagnosis | None:
    finding = known
    # compiled code runs eagerly there, for certain (replay/eager.py)
    started = time.perf_counter()
    if finding is None and first_pass and lean_applies(original):
        first = FirstPass(undo)
        with eager_replay(), first:
            replay_error = rerun()
        finding = first.finding
        if finding is None and not first.unhooked:
            spent.first = time.perf_counter() - started
            return diagnose(Trace(), original, source_map, namespace(), replay_error, error_location)
    first_done = time.perf_counter()
    recorder = recorder_for(original, undo, finding, lift=lift_backward)
    with eager_replay(), recorder:
        replay_error = rerun()
    if recorder.backward_ran_python:
        # backward ran Python the undo log could not have seen (a hook on a node, a tensor
        # subclass): that run stopped before it, and this one keeps the dispatch mode on throughout
        recorder = recorder_for(original, undo, finding, lift=False)
        with eager_replay(), recorder:
            replay_error = rerun()
    recorded = again = time.perf_counter()
    if not recorder.saw_enough():
        recorder = Recorder(undo=undo)
        with eager_replay(), recorder:
            replay_error = rerun()
        again = time.perf_counter()
    if isinstance(replay_error, ReplayStopped):
        replay_error = None
    diagnosis = diagnose(recorder.trace, original, source_map, namespace(), replay_error, error_location)
    spent.first, spent.record = first_done - started, recorded - first_done
    spent.again, spent.analysis = again - recorded, time.perf_counter() - again
    return diagnosis


def undiagnosed(member: Member, error: ErrorInfo, note: str) -> Diagnosis:
    """What the error alone tells (its kind and where it was raised), when no replay could say more."""
    kind = member.kind
    diagnosis = Diagnosis(kind, error, None, None, None, reproduced=False, notes=[note], member=member.id)
    explain(diagnosis)  # the advice for a leaf or a view holds without a replay; the rest needs one
    where = f" (raised at {error.location.label()}: `{error.location.code}`)" if error.location else ""
    diagnosis.headline = f"{_KIND_WORDS[kind]}{where}"
    if kind in ("version_counter", "other"):
        diagnosis.explanation = (
            "Which operation wrote the tensor and which one saved it is known only from a replay."
        )
    return diagnosis


def _message(exc: BaseException) -> str | None:
    """``str(exc)``, or None when the user's ``__str__`` itself raises (Python then prints a placeholder)."""
    try:
        return str(exc)
    except Exception:
        return None


def _internal(result: CheckResult, what: str, bug: Exception) -> None:
    raise_if_strict(bug)
    summary = f"{type(bug).__name__}: {_message(bug)}"
    result.internal_errors.append(f"{what}: {summary}")
    result.notes.append(
        f"inplace_magic internal error while {what} ({summary}): a bug of ours, please report it; "
        "the error shown is yours."
    )


def known_stale(exc: BaseException, on_bug: Callable[[Exception], None]) -> StaleFinding | None:
    """What the failed run's own graph says of its stale saved tensor: it stands in for a first pass.

    Both faces read it through here. A bug of ours while reading the graph is told to ``on_bug`` (the
    face says it is ours) and gives no finding: the replay then finds the tensor itself, so that bug
    costs speed, never the diagnosis.
    """
    if not lean_applies(exc):
        return None
    try:
        return stale_in_failed_run(exc)
    except Exception as bug:
        raise_if_strict(bug)  # the test suite wants our bugs raised
        on_bug(bug)
        return None


GRAPH_READING = "reading the failed run's graph"  # what the internal-error note says we were doing


def check_cells(
    cells: list[Cell],
    script_path: str | None = None,
    *,
    with_fixes: bool = True,
    time_limit_s: float | None = None,
    dialect: Dialect | None = None,
    skip_shell: bool = False,
    watcher: Watcher | None = None,
    replay_scope: Callable[[], AbstractContextManager[object]] | None = None,
) -> CheckResult:
    """Run ``cells`` in one fresh namespace, as ``python PATH`` or a kernel would; diagnose an in-place error.

    ``time_limit_s`` bounds each re-execution (None: derived from the first run, see
    :func:`~inplace_magic.replay.time_limit.limit_for`); the user's own run has no limit.
    ``replay_scope`` is entered around the replay only (one rank of a distributed launch meets the
    other ranks there and gives the replay a fresh process group: :mod:`.distributed`).
    """
    dialect = dialect or dialect_of(cells, script_path)
    source_map = SourceMap()
    program = compile_cells(cells, source_map, dialect=dialect, skip_shell=skip_shell)
    random_state = RandomState.capture()
    with as_script(script_path):
        started = time.monotonic()
        first = run_program(program, fresh_namespace(script_path), on_cell=watcher.cell if watcher else None)
        first_s = time.monotonic() - started
    result = CheckResult("ok", None, None, None, notes=list(first.notes), executions=Executions(run=1))
    if first.exit is not None:
        where = Locator(source_map).location(raising_frame(first.exit, source_map))
        result.notes.append(
            f"The code called sys.exit({first.exit.code!r})"
            + (f" at {where.label()}" if where else "")
            + "; as in a script, that ends the run: the code after it did not run."
        )
    exc = first.exception
    if exc is None:
        return result
    message = _message(exc)
    location = Locator(source_map).location(raising_frame(exc, source_map))
    result.error = ErrorInfo(
        type(exc).__name__, "<exception str() failed>" if message is None else message, location
    )
    result.exception, result.error_cell = exc, first.cell
    result.traceback = "".join(traceback.format_exception(exc))
    member = member_of(exc) if message is not None else None  # ours by its text
    # or a text that is ours only when the replay finds the in-place write behind it
    unconfirmed = confirmable(exc) if member is None and message is not None else None
    if member is None and unconfirmed is None:
        result.status = "other_error"
        return result
    result.status = "inplace_error" if member is not None else "other_error"
    # read before the graph goes (a DDP launch's ranks must all re-run alike: there, nothing)
    known = (
        known_stale(exc, lambda bug: _internal(result, GRAPH_READING, bug))
        if member is not None and replay_scope is None
        else None
    )
    # release the first run (its namespace and the graph its traceback's frames hold) so the
    # replay's peak memory stays close to a plain run's; the traceback itself stays printable
    first.namespace.clear()
    traceback.clear_frames(exc.__traceback__)
    limit = limit_for(first_s, time_limit_s)
    replay_namespace = fresh_namespace(script_path)
    replay_program = compile_cells(
        cells, source_map, prefix="replay cell", dialect=dialect, skip_shell=skip_shell
    )

    def rerun() -> BaseException | None:
        random_state.restore()
        result.executions.replay += 1
        with as_script(script_path), time_limit(limit):
            return run_program(
                replay_program, replay_namespace, stop_after=first.cell, interruptible=True
            ).exception

    if member is not None:  # until the replay says more (an unconfirmed text stays another error)
        result.diagnosis = undiagnosed(
            member, result.error, "Not diagnosed: the diagnostic replay did not finish."
        )
    if watcher is not None:
        watcher.stage("replay", limit, result)
    diagnosis: Diagnosis | None = None
    stopped: str | None = None  # why the replay did not run to its end
    with interrupt_once():
        try:
            with replay_scope() if replay_scope is not None else contextlib.nullcontext():
                # a replay scope meets other processes (a DDP launch), which re-run the cells once
                diagnosis = replay(
                    rerun,
                    exc,
                    source_map,
                    lambda: replay_namespace,
                    location,
                    first_pass=replay_scope is None and first_pass_pays(first_s),
                    known=known,
                )
        except TimeLimitExceeded:
            how = (
                "as set"
                if time_limit_s is not None
                else f"ten times your own run of {first_s:.1f} s, at least 30 s"
            )
            stopped = f"the diagnostic replay ran past its time limit of {limit:g} s ({how}) and was stopped"
        except KeyboardInterrupt:
            stopped, result.interrupted = "the diagnostic replay was interrupted (Ctrl-C)", True
        except Exception as bug:  # ours: reported as such, and the user's error stays what is shown
            _internal(result, "replaying and diagnosing", bug)
            stopped = "inplace_magic failed while replaying it"
        if diagnosis is None and member is None:  # not confirmed: the user's other error, as raised
            if stopped is not None:
                result.notes.append(
                    "The error's text is an in-place autograd error only when a replay finds the in-place "
                    f"write behind it, and {stopped}; it is shown as raised."
                )
            return result
        if diagnosis is None:
            assert member is not None
            why = stopped or "the diagnostic replay did not finish"
            result.diagnosis = undiagnosed(
                member, result.error, f"Not diagnosed: {why}; the error is shown as raised."
            )
            return result
        result.status, result.diagnosis, result.replay_finished = "inplace_error", diagnosis, True
        compiled = compiled_region.unwrap(diagnosis, exc)  # raised inside a torch.compile region
        if with_fixes:
            _search_fixes(result, cells, diagnosis, script_path, limit, dialect, skip_shell, watcher)
            if compiled:  # the sandbox ran each fix compiled; a fix must also run eagerly
                result.executions.fix_verification += compiled_region.verify_eagerly(
                    diagnosis, cells, script_path, limit, dialect, skip_shell
                )
    return result


def _search_fixes(
    result: CheckResult,
    cells: list[Cell],
    diagnosis: Diagnosis,
    script_path: str | None,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
    watcher: Watcher | None,
) -> None:
    from .. import fix  # the fix stage imports libcst: only when fixes are asked for

    if watcher is not None:
        watcher.stage("fixes", fix.search_deadline_s(limit), result)
    try:
        found = fix.search_fixes(
            cells,
            dict(diagnosis.to_json()),
            script_path,
            time_limit_s=limit,
            dialect=dialect,
            skip_shell=skip_shell,
            on_executions=lambda n: setattr(result.executions, "fix_verification", n),
        )
    except KeyboardInterrupt:
        result.interrupted = True
        result.notes.append("The search for fixes was interrupted (Ctrl-C); no fix is offered.")
        return
    except Exception as bug:  # ours: the diagnosis stands, and the bug is said to be ours
        _internal(result, "searching for fixes", bug)
        return
    diagnosis.fixes = found.fixes
    result.notes += found.notes
    for failure in found.internal_errors:
        raise_if_strict(failure)
        result.internal_errors.append(failure)
        result.notes.append(f"inplace_magic internal error: {failure} (a bug of ours, please report it).")


def find_fixes(
    cells: list[Cell], diagnosis: Diagnosis, script_path: str | None, *, verify: bool = True
) -> list[dict[str, Any]]:
    """Candidate fixes of ``diagnosis`` (verified in a separate process with ``verify``), best first."""
    from ..fix import find_fixes as fix_stage  # the fix stage imports libcst: only when fixes are asked for

    return fix_stage(cells, dict(diagnosis.to_json()), script_path, verify=verify)
