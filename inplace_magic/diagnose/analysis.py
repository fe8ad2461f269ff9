"""Turn a replay's records into a :class:`Diagnosis`: who wrote, who saved, which tensor, which branch.

The family member (record/family.py) says which analysis applies; the records say what happened.
A stale saved tensor found by the unpack hook goes to :mod:`.stale`; a call autograd refused (leaf,
view) to :mod:`.forward`; the rest of the family to :mod:`.members`. Error text is used only to decide
the member, never to name an operation.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from ..record.family import Member, member_of
from ..record.records import Trace
from ..replay.run import CellLookup
from .diagnosis import Diagnosis, ErrorInfo, Location
from .explain import explain
from .forward import from_forward
from .members import ANALYSES
from .sites import SiteBuilder
from .stale import from_stale, from_unhooked


def diagnose(
    trace: Trace,
    original: BaseException,
    source_map: CellLookup,
    namespace: dict[str, Any] | None = None,
    replay_error: BaseException | None = None,
    error_location: Location | None = None,
) -> Diagnosis | None:
    """The diagnosis of ``original`` from the replay's ``trace``; None when the error is not ours
    (also when its text belongs to a member that only a replay can confirm, and this one did not)."""
    member = member_of(original, confirmable=True)
    if member is None:
        return None
    # the analysis allocates an index per recorded op and frees no cycles: without collections
    # triggered by those allocations (each one scanning the whole trace) it stays linear in its size
    with _gc_paused():
        diagnosis = _diagnose(trace, member, original, source_map, namespace, replay_error, error_location)
    if diagnosis is not None:
        explain(diagnosis)
    return diagnosis


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _diagnose(
    trace: Trace,
    member: Member,
    original: BaseException,
    source_map: CellLookup,
    namespace: dict[str, Any] | None,
    replay_error: BaseException | None,
    error_location: Location | None,
) -> Diagnosis | None:
    builder = SiteBuilder(trace, source_map, namespace)
    error = ErrorInfo(type(original).__name__, str(original), error_location)
    if trace.stale is not None and member.kind in ("version_counter", "other"):
        return from_stale(builder, member, error, trace.stale)
    if member.kind == "version_counter" and trace.unhooked:
        unhooked = from_unhooked(builder, member, error)
        if unhooked is not None:
            return unhooked
    failure = trace.forward_failure
    analysis = ANALYSES.get(member.id)
    if failure is not None and analysis is not None:
        found = analysis(builder, member, error, failure)
        if found is not None or member.confirmed_by_replay:
            return found
    elif failure is not None and member.kind != "version_counter":
        return from_forward(builder, member, error, failure)
    if member.confirmed_by_replay:
        return None
    diagnosis = Diagnosis(
        kind=member.kind,
        error=error,
        inplace=None,
        saved_by=None,
        tensor=None,
        reproduced=False,
        member=member.id,
    )
    what = "passed" if replay_error is None else f"raised {type(replay_error).__name__}: {replay_error}"
    diagnosis.notes.append(
        f"The diagnostic replay did not reproduce the error (it {what}); the code may depend on state "
        "that a re-run does not recreate (files, time, unseeded randomness)."
    )
    return diagnosis
