"""The one entry point every face calls: run code, and when it fails with an in-place autograd
error, replay it under the recorder and return the diagnosis (with its verified fixes)."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from ..diagnose.analysis import diagnose
from ..diagnose.diagnosis import Diagnosis, ErrorInfo, Location
from ..diagnose.locations import Locator
from ..diagnose.members import ANALYSES
from ..record.family import classify, confirmable, member_of
from ..record.recorder import OpObserver, Recorder, ReplayStopped
from ..replay.cells import Cell
from ..replay.run import (
    CellLookup,
    RandomState,
    SourceMap,
    compile_cells,
    fresh_namespace,
    raising_frame,
    run_compiled,
    script_path_on_sys_path,
)

Status = Literal["ok", "inplace_error", "other_error"]


@dataclass
class CheckResult:
    status: Status
    error: ErrorInfo | None
    exception: BaseException | None
    diagnosis: Diagnosis | None

    def to_json(self) -> dict[str, Any]:
        if self.diagnosis is not None:
            return dict(self.diagnosis.to_json())
        return {
            "status": self.status,
            "error": self.error.to_json() if self.error else None,
            "kind": None,
            "member": None,
            "inplace": None,
            "saved_by": None,
            "skip": None,
            "tensor": None,
            "limits": [],
            "fixes": [],
        }


def recorder_for(original: BaseException, undo: OpObserver | None = None) -> Recorder:
    """A recorder of what the diagnosis of ``original`` reads. A stale saved tensor's diagnosis
    (the common error) reads no torch call and no op autograd runs in backward: those are left out,
    which on small models is most of the replay's cost. Every other member records everything."""
    member = member_of(original, confirmable=True)
    lean = member is not None and member.kind == "version_counter" and member.id not in ANALYSES
    return Recorder(calls=not lean, backward_ops=not lean, undo=undo)


def replay(
    rerun: Callable[[], BaseException | None],
    original: BaseException,
    source_map: CellLookup,
    namespace: Callable[[], dict[str, Any]],
    error_location: Location | None,
    *,
    undo: OpObserver | None = None,
) -> Diagnosis | None:
    """Re-run failing code under the recorder and diagnose ``original`` from what it recorded.

    ``rerun`` executes the code and returns the exception it raised (or None); ``namespace`` gives
    the names to resolve models and parameters against once it has run; ``undo`` sees every op the
    re-execution dispatches (the kernel's undo log). When the lean recording missed what the
    diagnosis needs (the stale tensor was written or saved during backward), ``rerun`` is called a
    second time, under a recorder of everything.
    """
    recorder = recorder_for(original, undo)
    with recorder:
        replay_error = rerun()
    if not recorder.saw_enough():
        recorder = Recorder(undo=undo)
        with recorder:
            replay_error = rerun()
    if isinstance(replay_error, ReplayStopped):
        replay_error = None
    return diagnose(recorder.trace, original, source_map, namespace(), replay_error, error_location)


def check_cells(
    cells: list[Cell],
    script_path: str | None = None,
    *,
    with_fixes: bool = True,
    replay_scope: Callable[[], AbstractContextManager[object]] | None = None,
) -> CheckResult:
    """Run ``cells`` in one fresh namespace, as a kernel would; diagnose an in-place error.

    ``replay_scope`` is entered around the replay only (one rank of a distributed launch meets the
    other ranks there and gives the replay a fresh process group: :mod:`.distributed`).
    """
    source_map = SourceMap()
    compiled = compile_cells(cells, source_map)
    random_state = RandomState.capture()
    with script_path_on_sys_path(script_path):
        first = run_compiled(compiled, fresh_namespace(script_path))
        if first.exception is None:
            return CheckResult("ok", None, None, None)
        exc = first.exception
        location = Locator(source_map).location(raising_frame(exc, source_map))
        error = ErrorInfo(type(exc).__name__, str(exc), location)
        if classify(exc) is None and confirmable(exc) is None:
            return CheckResult("other_error", error, exc, None)
        # release the first run (its namespace and the graph its traceback's frames hold) so the
        # replay's peak memory stays close to a plain run's; the traceback itself stays printable
        first.namespace.clear()
        traceback.clear_frames(exc.__traceback__)

        replay_namespace = fresh_namespace(script_path)
        replay_compiled = compile_cells(cells, source_map, prefix="replay cell")

        def rerun() -> BaseException | None:
            random_state.restore()
            return run_compiled(replay_compiled, replay_namespace, stop_after=first.cell).exception

        with replay_scope() if replay_scope is not None else contextlib.nullcontext():
            diagnosis = replay(rerun, exc, source_map, lambda: replay_namespace, location)
    if diagnosis is None:  # a text that only the replay could make ours, and it did not
        return CheckResult("other_error", error, exc, None)
    if with_fixes:
        diagnosis.fixes = find_fixes(cells, diagnosis, script_path)
    return CheckResult("inplace_error", error, exc, diagnosis)


def find_fixes(
    cells: list[Cell], diagnosis: Diagnosis, script_path: str | None, *, verify: bool = True
) -> list[dict[str, Any]]:
    """Candidate fixes of ``diagnosis`` (verified in a separate process with ``verify``), best first."""
    from ..fix import find_fixes as fix_stage  # the fix stage imports libcst: only when fixes are asked for

    return fix_stage(cells, dict(diagnosis.to_json()), script_path, verify=verify)
