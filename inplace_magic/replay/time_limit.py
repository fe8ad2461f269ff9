"""A time limit for code we re-execute (a replay, a fix's verification): nothing we start may hang.

The limit is derived from how long the user's own run took, with a floor so that a fast run that
was unlucky on a loaded machine still gets room, and the user can set it outright. When it
expires, :class:`TimeLimitExceeded` is raised in the running code (a ``BaseException``, so a
user's ``except Exception`` does not swallow it); the caller then shows the user's original
error with a note.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FLOOR_S = 30.0  # never less than this ...
FACTOR = 10.0  # ... and otherwise ten times the user's own run (the recorder costs a few times plain)


class TimeLimitExceeded(BaseException):
    """The re-executed code ran past its time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"time limit of {seconds:g} s")
        self.seconds = seconds


def limit_for(first_run_s: float | None, configured: float | None = None) -> float:
    """The limit for re-running code whose first run took ``first_run_s`` (None: not measured)."""
    if configured is not None:
        return configured
    return max(FLOOR_S, FACTOR * (first_run_s or 0.0))


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in this thread after ``seconds`` (None or <= 0: no limit).

    Needs SIGALRM, so it limits only on the main thread of a POSIX process; elsewhere it is a
    no-op and the caller's own deadline (the sandbox's parent kills it) is the limit.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds is None or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
