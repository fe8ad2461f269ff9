"""A time limit for code we re-execute (a replay, a fix's verification): nothing we start may hang.

The limit is derived from how long the user's own run took, with a floor so that a fast run that
was unlucky on a loaded machine still gets room, and the user can set it outright. When it
expires, :class:`TimeLimitExceeded` is raised in the running code (a ``BaseException``, so a
user's ``except Exception`` does not swallow it), and raised again every second while the code
still runs (an ``except BaseException`` in a loop cannot keep it going); the caller then shows
the user's original error with a note.

:func:`interrupt_once` does the same for Ctrl-C: the first one stops the re-executed code, the
ones that follow at once (a terminal and a supervising process may both deliver it) are ignored
until the caller has shown the user's error.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

FLOOR_S = 30.0  # never less than this ...
FACTOR = 10.0  # ... and otherwise ten times the user's own run (the recorder costs a few times plain)
REPEAT_S = 1.0  # after expiring, raised again this often until the code stops


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


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in this thread after ``seconds`` (None or <= 0: no limit).

    Limits nest: inside another limit the sooner one counts, and the outer one goes on afterwards.
    Needs SIGALRM, so it limits only on the main thread of a POSIX process; elsewhere it is a
    no-op and the caller's own deadline (the sandbox's parent kills it) is the limit.
    """
    usable = hasattr(signal, "setitimer") and _on_main_thread()
    if not usable or seconds is None or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitExceeded(seconds)

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    outer, outer_repeat = signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_S)
    if outer and outer < seconds:
        signal.setitimer(signal.ITIMER_REAL, outer, REPEAT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_repeat)


@contextmanager
def interrupt_once() -> Iterator[list[bool]]:
    """Ctrl-C raises ``KeyboardInterrupt`` once; later ones are ignored until the block ends.

    Yields a one-item list that says whether an interrupt came. Off the main thread (where
    Python delivers no signals) it changes nothing.
    """
    interrupted = [False]
    if not _on_main_thread():
        yield interrupted
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        if interrupted[0]:
            return
        interrupted[0] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
