"""A line that says a replay is running, with elapsed time, so a long training cell never looks hung.

Nothing is shown for replays shorter than ``delay`` seconds. In a kernel the line is one display
updated in place (``display_id``); in a terminal it is rewritten with a carriage return. The timer
runs on its own thread in a copy of the caller's context, so the kernel routes the updates to the
cell that is running. The publisher and stream are taken when the indicator is created, before the
replay hides the user's own output.
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._tick,), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.shown:
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "done"
            self._show(f"inplace_magic: {self.what}: {outcome} after {self.elapsed():.1f} s", final=True)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _tick(self) -> None:
        if self._stop.wait(self.delay):
            return
        while True:
            seconds = f"{self.elapsed():.0f} s"
            self._show(f"inplace_magic: {self.what}... {seconds} (Ctrl-C stops it; state is restored)")
            if self._stop.wait(self.interval):
                return

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
            self._stop.set()
