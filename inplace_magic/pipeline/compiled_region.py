"""An in-place error raised inside a ``torch.compile`` region (issue 16, item 3).

AOTAutograd traces a compiled function's backward when it compiles it, so an in-place write there
fails at compile time, wrapped: ``BackendCompilerFailed: backend='aot_eager' raised: RuntimeError:
one of the variables needed ...``. The family recognises the wrapped text
(:func:`..record.family.member_of` walks the causes) and the replay runs the function eagerly (under
the recorder dynamo falls back), so the writer is found at the user's line. Here:

* the diagnosis names the in-place error itself (the ``RuntimeError`` inside), and a note says
  which compiled region raised it and when; the user's exception, as raised, stays in the traceback;
* each verified fix, which the sandbox ran compiled (as the user runs it), is run once more with
  ``torch.compile`` switched off (``TORCH_COMPILE_DISABLE=1``, read by torch at import): a fix is
  verified only when it runs to its end both ways.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..diagnose.diagnosis import Diagnosis, ErrorInfo
from ..record.family import member_of
from ..replay.cells import Cell
from ..replay.run import Dialect

MAX_EAGER_CHECKS = 3
_DISABLE = "TORCH_COMPILE_DISABLE"


def wrapped_error(exc: BaseException) -> BaseException | None:
    """The in-place error inside a torch.compile wrapper (BackendCompilerFailed), or None."""
    if type(exc).__name__ != "BackendCompilerFailed":
        return None
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    seen = 0
    while inner is not None and seen < 8:
        if isinstance(inner, RuntimeError) and member_of(inner) is not None:
            return inner
        inner, seen = inner.__cause__, seen + 1
    return None


def unwrap(diagnosis: Diagnosis, exc: BaseException) -> bool:
    """Name the in-place error inside ``exc`` in ``diagnosis``; False when ``exc`` wraps none."""
    inner = wrapped_error(exc)
    if inner is None:
        return False
    backend = getattr(exc, "backend_name", None) or "?"
    location = diagnosis.error.location
    diagnosis.error = ErrorInfo(type(inner).__name__, str(inner), location)
    where = f" at {location.label()}" if location is not None else ""
    diagnosis.notes.append(
        f"Raised inside a torch.compile region (backend '{backend}'){where}, when the region was "
        f"compiled: AOTAutograd traces the backward then, and {type(exc).__name__} wraps the in-place "
        "error. The replay ran the compiled function eagerly and found the write at your line."
    )
    return True


@contextmanager
def _compile_disabled() -> Iterator[None]:
    """The sandbox process inherits this environment at its start: torch.compile is a no-op there."""
    before = os.environ.get(_DISABLE)
    os.environ[_DISABLE] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_DISABLE]
        else:
            os.environ[_DISABLE] = before


def verify_eagerly(
    diagnosis: Diagnosis,
    cells: list[Cell],
    script_path: str | None,
    limit: float,
    dialect: Dialect,
    skip_shell: bool,
) -> int:
    """Run the verified fixes once more with torch.compile off; returns the runs of the user's code."""
    from ..fix import search_deadline_s
    from ..fix.sandbox.verify import Session, apply

    verified = [f for f in diagnosis.fixes if f.get("verified")][:MAX_EAGER_CHECKS]
    if not verified:
        return 0
    with _compile_disabled():
        session = Session(
            cells,
            script_path,
            time.monotonic() + search_deadline_s(limit),
            limit,
            dialect=dialect,
            skip_shell=skip_shell,
        )
    try:
        for i, fix in enumerate(verified):
            changes = {int(k): v for k, v in dict(fix.get("cells") or {}).items()}
            run = session.run(f"eager{i}", apply(cells, changes), compare=False)
            _judge_eagerly(fix, run.ran, run.error)
    finally:
        session.close()
    diagnosis.fixes.sort(key=lambda f: not f.get("verified"))  # stable: the ranking stays otherwise
    return session.executions


def _judge_eagerly(fix: dict[str, Any], ran: bool, error: dict[str, Any] | None) -> None:
    notes = fix.setdefault("notes", [])
    if ran and error is None:
        notes.append("Verified eagerly too: the fixed cells ran to their end with torch.compile off.")
        return
    fix["verified"] = False
    if not ran or error is None:
        notes.append("Not verified eagerly: the run with torch.compile off did not finish.")
    else:
        notes.append(
            f"Not verified: with torch.compile off the fixed cells raise {error.get('type')}: "
            f"{str(error.get('message'))[:160]}"
        )
