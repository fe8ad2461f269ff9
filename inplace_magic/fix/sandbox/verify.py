"""Run candidates in the sandbox (:mod:`.worker`) and read back what happened.

One sandbox process serves a whole ``find_fixes`` call, forked from this process's fork server
(:mod:`.processes`: torch is imported once per process, not once per session) or, where that cannot
be, a new interpreter. It runs the original (to confirm it fails, and where), the gradient reference
(the original under ``allow_mutation_on_saved_tensors``) and then each candidate on request. Each
run has a time limit inside the sandbox; the parent also stops waiting at an overall deadline and
kills the process. Every answer says how many runs of the user's code the sandbox has started, so
the count is exact even when the process is killed; a failure of the sandbox itself is reported, never taken
for the user's code timing out.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ...replay.cells import Cell
from ...replay.run import Dialect
from ..model import RunOutcome
from .processes import Worker, start_worker


def _cells_json(cells: list[Cell]) -> list[list[Any]]:
    return [[c.index, c.source, c.kind, c.cell_id] for c in cells]


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class Session:
    """A running sandbox. ``original`` and ``reference`` describe the unfixed code."""

    def __init__(
        self,
        cells: list[Cell],
        script_path: str | None,
        deadline: float,
        run_limit_s: float,
        *,
        dialect: Dialect = "python",
        skip_shell: bool = False,
        on_executions: Callable[[int], None] | None = None,
        start: Callable[[float], Worker] = start_worker,
    ) -> None:
        """``start``: how the worker process starts, given the deadline (forked where it can be)."""
        self.deadline = deadline
        self.executions = 0  # runs of the user's code the sandbox started
        self.ended: str | None = None  # how the process ended under the user's code, if it did
        self.internal_errors: list[str] = []
        self._on_executions = on_executions
        self.process = start(deadline)
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, self.lines), daemon=True).start()
        setup = {
            "cells": _cells_json(cells),
            "script_path": script_path,
            "time_limit": run_limit_s,
            "dialect": dialect,
            "skip_shell": skip_shell,
        }
        self._send(setup)
        self.original = self._receive()
        self.original_timed_out = bool(self.original and self.original.get("timed_out"))
        self.reference = self._receive() if self.original else None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and time.monotonic() < self.deadline

    def _send(self, payload: dict[str, Any]) -> bool:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(payload) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def _receive(self) -> dict[str, Any] | None:
        """The next answer; the worker's "started a run" lines on the way only update the count."""
        while True:
            remaining = self.deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self.close()
                return None
            if line is None:
                self._ended()
                return None
            try:
                answer = json.loads(line)
            except json.JSONDecodeError:
                return None
            if not isinstance(answer, dict):
                return None
            if isinstance(answer.get("executions"), int):
                self._count(answer["executions"])
            if answer.get("internal_error"):
                self.internal_errors.append(f"the verification sandbox failed: {answer['internal_error']}")
                return None
            if set(answer) != {"executions"}:
                return answer

    def _ended(self) -> None:
        """The worker closed its answers unasked: the code it ran ended the process."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            if self.process.lost is not None:  # ours: the code's end cannot be told
                self.internal_errors.append(f"the verification sandbox failed: {self.process.lost}")
            return
        if not self.internal_errors:
            self.ended = f"exit status {code}" if code >= 0 else f"signal {-code}"

    def _count(self, executions: int) -> None:
        if executions != self.executions:
            self.executions = executions
            if self._on_executions is not None:
                self._on_executions(executions)

    def run(self, job: str, cells: list[Cell], compare: bool, *, audit: bool = False) -> RunOutcome:
        """Run ``cells`` in the sandbox (``audit``: under the audit's recorder, counting silent writes)."""
        payload = {"id": job, "cells": _cells_json(cells), "compare": compare, "audit": audit}
        if not self.alive or not self._send(payload):
            return RunOutcome(ran=False, ended=self.ended)
        answer = self._receive()
        if answer is None or answer.get("id") != job:
            self.close()
            return RunOutcome(ran=False, ended=self.ended)
        return outcome(answer)

    def diagnose(self, job: str, cells: list[Cell]) -> dict[str, Any] | None:
        if not self.alive or not self._send({"id": job, "cells": _cells_json(cells), "diagnose": True}):
            return None
        answer = self._receive()
        diagnosis = answer.get("diagnosis") if answer and answer.get("id") == job else None
        return diagnosis if isinstance(diagnosis, dict) else None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a forked one whose status was lost
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def outcome(answer: dict[str, Any]) -> RunOutcome:
    compared = int(answer.get("compared", 0))
    mismatched = [str(m) for m in answer.get("mismatched", [])]
    return RunOutcome(
        ran=True,
        error=answer.get("error"),
        gradients=int(answer.get("gradients", 0)),
        backward_calls=int(answer.get("backward_calls", 0)),
        finite=bool(answer.get("finite", True)),
        matches_reference=(not mismatched) if compared else None,
        compared=compared,
        mismatched=mismatched,
        timed_out=bool(answer.get("timed_out", False)),
        hazards=int(answer["hazards"]) if isinstance(answer.get("hazards"), int) else None,
    )


def apply(cells: list[Cell], changes: dict[int, str]) -> list[Cell]:
    return [Cell(c.index, changes[c.index], c.kind, c.cell_id) if c.index in changes else c for c in cells]
