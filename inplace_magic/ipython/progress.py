"""A line that says a replay is running, with elapsed time, so a long training cell never looks hung.

Nothing is shown for replays shorter than ``delay`` seconds. In a kernel the line is one display
updated in place (``display_id``); in a terminal it is rewritten with a carriage return. The lines
are drawn by one timer thread for the process (:class:`_Ticker`), each in a copy of the context its
replay started in, so the kernel routes the updates to the cell that is running; it sleeps until
a line is due. A thread per replay cost a thread start and its hand-over at every diagnosis, the
short ones included (most: nothing is shown for them), and a preemption more on a loaded machine.
The publisher and stream are taken when the indicator is created, before the replay hides the
user's own output.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import uuid
from types import TracebackType
from typing import Any, TextIO


class Progress:
    def __init__(self, shell: Any, what: str, delay: float = 1.0, interval: float = 1.0) -> None:
        self.what = what
        self.delay = delay
        self.interval = interval
        self.shown = False
        self._in_kernel = getattr(shell, "kernel", None) is not None
        self._publisher = getattr(shell, "display_pub", None)
        self._stream: TextIO = sys.stderr
        self._display_id = f"inplace-magic-progress-{uuid.uuid4().hex}"
        self._stopped = False  # a line that cannot be drawn stops its ticks
        self._started = 0.0
        self.context: contextvars.Context | None = None

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self.context = contextvars.copy_context()
        _TICKER.add(self, self._started + self.delay)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _TICKER.remove(self)  # returns once a tick of this line being drawn is done
        if self.shown:
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "done"
            self._show(f"inplace_magic: {self.what}: {outcome} after {self.elapsed():.1f} s", final=True)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def tick(self) -> None:
        """Draw the line once (the ticker's thread, in the replay's context)."""
        if not self._stopped:
            seconds = f"{self.elapsed():.0f} s"
            self._show(f"inplace_magic: {self.what}... {seconds} (Ctrl-C stops it; state is restored)")

    def _show(self, text: str, final: bool = False) -> None:
        try:
            if self._in_kernel and self._publisher is not None:
                self._publisher.publish(
                    {"text/plain": text}, {}, transient={"display_id": self._display_id}, update=self.shown
                )
            else:
                self._stream.write("\r" + text + ("\n" if final else ""))
                self._stream.flush()
            self.shown = True
        except Exception:  # a progress line that cannot be drawn must never break the replay
            self._stopped = True


class _Ticker:
    """The one thread that draws every progress line when it is due, started at the first one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[Progress, float] = {}  # line -> when it is next drawn
        self._drawing: Progress | None = None
        self._thread: threading.Thread | None = None

    def add(self, progress: Progress, at: float) -> None:
        with self._changed:
            self._due[progress] = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inplace-magic-progress", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def remove(self, progress: Progress) -> None:
        with self._changed:
            self._due.pop(progress, None)
            while self._drawing is progress:  # its final line must come after its last tick
                self._changed.wait()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._drawing = None
                self._changed.notify_all()
                while True:
                    now = time.monotonic()
                    due = min(self._due.items(), key=lambda item: item[1], default=None)
                    if due is not None and due[1] <= now:
                        break
                    self._changed.wait(None if due is None else due[1] - now)
                progress = due[0]
                self._due[progress] = now + progress.interval
                self._drawing = progress
            context = progress.context
            if context is not None:
                context.run(progress.tick)


_TICKER = _Ticker()
