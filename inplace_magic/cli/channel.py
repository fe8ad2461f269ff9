"""What the check tells the process watching it, one JSON line at a time on an inherited pipe.

- ``{"event": "rank", "rank": r}`` when this check is rank ``r`` of a launch (torchrun, ``--nproc``):
  the watcher then leaves stdout to the rank that reports for the launch;
- ``{"event": "cell", "cell": i}`` when the user's run starts cell ``i``;
- ``{"event": "stage", "name", "seconds", "json", "text", "traceback"}`` before a re-execution
  (the replay, the fix search) and, on a rank, before each wait for the other ranks (``ranks``,
  ``report``): how long it may take, and the report to print if it never ends;
- ``{"event": "finished"}`` once the result is known, just before it is printed.

The pipe is not inherited by the user's own subprocesses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ..pipeline.core import CheckResult


class Channel:
    def __init__(self, fd: int) -> None:
        os.set_inheritable(fd, False)
        self._out = os.fdopen(fd, "w", encoding="utf-8")
        self._render: Callable[[CheckResult], str] = lambda result: ""

    def _send(self, payload: dict[str, Any]) -> None:
        try:
            self._out.write(json.dumps(payload, default=str) + "\n")
            self._out.flush()
        except OSError:  # the watcher is gone (killed): the check goes on and prints its result
            pass

    def watching(self, render: Callable[[CheckResult], str]) -> Channel:
        """This channel as the pipeline's watcher; ``render`` makes the text report of a result."""
        self._render = render
        return self

    def rank(self, rank: int) -> None:
        self._send({"event": "rank", "rank": rank})

    def cell(self, index: int) -> None:
        self._send({"event": "cell", "cell": index})

    def stage(self, name: str, seconds: float, provisional: CheckResult) -> None:
        self._send(
            {
                "event": "stage",
                "name": name,
                "seconds": seconds,
                "json": provisional.to_json(),
                "text": self._render(provisional),
                "traceback": provisional.traceback,
            }
        )

    def finished(self) -> None:
        self._send({"event": "finished"})
