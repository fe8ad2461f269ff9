"""The ``inplace-magic`` command: the check runs in a child process, watched by this one.

The user's code runs in the child (``python -m inplace_magic``, so no console-script frame sits
under it). This process imports nothing heavy; it forwards signals and reads the child's
:mod:`.channel`. When the child ends without having finished (``os._exit`` in the user's code, a
crash in a C extension, a kill), or a re-execution outlives its stage by far, this process says
so, prints the user's error when it is known, and still exits 0-3:

- during the user's own run: exit 2, the end of the process reported as the error, with the cell
  that was running;
- during the replay or the fix search: exit 1, the in-place error as it was raised (or diagnosed,
  without fixes), with a note.

Signals: a terminal's Ctrl-C reaches the child itself (same process group); this process then
ignores it. Without a terminal (CI, a test) a SIGINT sent to this process is passed on once.
SIGTERM and SIGHUP are always passed on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .options import CHILD_FLAG, parser

# A stage may take twice its own limit and this much more (the diagnosis after a replay that ended
# just in time, the sandbox's cleanup) before the child is killed: only code that defeats the limit
# inside the child (an ``except BaseException`` in a loop, a C call that never returns) meets it.
GRACE_S = 10.0
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Watch:
    """What the child said so far."""

    cell: int | None = None
    stage: dict[str, Any] | None = None
    deadline: float | None = None
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, fd: int) -> None:
        with os.fdopen(fd, encoding="utf-8") as lines:
            for line in lines:
                with contextlib.suppress(json.JSONDecodeError):
                    self._take(json.loads(line))

    def _take(self, event: dict[str, Any]) -> None:
        with self.lock:
            if event.get("event") == "cell":
                self.cell = event.get("cell")
            elif event.get("event") == "stage":
                self.stage = event
                self.deadline = time.monotonic() + 2 * float(event.get("seconds", 0)) + GRACE_S
            elif event.get("event") == "finished":
                self.finished, self.deadline = True, None


def _in_terminal_foreground() -> bool:
    """A Ctrl-C typed now reaches our whole process group, the child included."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _forwarding(child: subprocess.Popen[bytes]) -> dict[int, Any]:
    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if not _in_terminal_foreground():
            forward(signum, frame)

    previous: dict[int, Any] = {signal.SIGINT: signal.signal(signal.SIGINT, interrupt)}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, forward)
    return previous


def console(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)  # --help, --version and bad options answered here, at once
    except SystemExit as done:
        return int(done.code or 0)
    read_end, write_end = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "inplace_magic", CHILD_FLAG, str(write_end), *argv]
    child = subprocess.Popen(command, pass_fds=(write_end,), env=env)
    os.close(write_end)
    watch = Watch()
    reader = threading.Thread(target=watch.read, args=(read_end,), daemon=True)
    reader.start()
    previous = _forwarding(child)
    killed = False
    try:
        while child.poll() is None:
            with watch.lock:
                late = watch.deadline is not None and time.monotonic() > watch.deadline
            if late:
                child.kill()
                killed = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    reader.join(timeout=5)
    if watch.finished:
        return child.returncode
    return _report_end(watch, child.returncode, killed, json_output=args.json)


def _how(returncode: int, killed: bool) -> str:
    if killed:
        return "did not end within its time limit and was killed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was ended by {name}"
    return f"ended the process with exit status {returncode} (os._exit, or an exit in C code)"


def _report_end(watch: Watch, returncode: int, killed: bool, *, json_output: bool) -> int:
    how = _how(returncode, killed)
    stage = watch.stage
    if stage is None:
        where = f" while cell {watch.cell} ran" if watch.cell is not None else ""
        message = f"the code {how}{where}; nothing after it ran, and there is no traceback"
        error = {"type": "ProcessEnd", "message": message, "cell": watch.cell, "line": None}
        report: dict[str, Any] = {
            "status": "other_error",
            "error": error,
            "kind": None,
            "inplace": None,
            "saved_by": None,
            "skip": None,
            "tensor": None,
            "fixes": [],
            "notes": [],
            "traceback": "",
            "executions": {"run": 1, "replay": 0, "fix_verification": 0, "total": 1},
            "internal_errors": [],
        }
        text, code = f"inplace-magic: {message}", 2
    else:
        what = "the diagnostic replay" if stage.get("name") == "replay" else "the search for fixes"
        note = f"{what[:1].upper()}{what[1:]} {how}; what was known before it is shown."
        report = dict(stage.get("json") or {})
        report["notes"] = [*report.get("notes", []), note]
        text, code = f"{stage.get('text', '')}\nNote: {note}", 1
        print(stage.get("traceback", ""), end="", file=sys.stderr)
    if json_output:
        print(json.dumps(report, indent=2))
    elif code == 2:
        print(text, file=sys.stderr)
    else:
        print(text)
    return code
