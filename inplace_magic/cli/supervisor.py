"""The ``inplace-magic`` command: the check runs in a child process, watched by this one.

The user's code runs in the child (``python -m inplace_magic``, so no console-script frame sits
under it). This process imports nothing heavy; it forwards signals and reads the child's
:mod:`.channel`. When the child ends without having finished (``os._exit`` in the user's code, a
crash in a C extension, a kill), or a re-execution outlives its stage by far, this process says
so, prints the user's error when it is known, and still exits 0-3:

- during the user's own run: exit 2, the end of the process reported as the error, with the cell
  that was running;
- during the replay or the fix search: exit 1, the in-place error as it was raised (or diagnosed,
  without fixes), with a note (exit 2 for an error whose text only the replay could have made ours).

Signals: a terminal's Ctrl-C reaches the child itself (same process group); this process then
ignores it. Without a terminal (CI, a test) a SIGINT sent to this process is passed on once.
SIGTERM and SIGHUP are always passed on.

In a DDP launch (torchrun runs ``python -m inplace_magic check`` once per rank, and so does
``--nproc``) each rank is such a pair. The child inherits the environment as it is (the launch's
variables, the rendezvous), only ``PYTHONPATH`` gains this package. Once the child says it is a
rank, stdout belongs to the rank that reports for the whole launch: a rank that ends unfinished is
said on stderr only, and this process exits with the child's own exit status (2 for a signal), so
the launcher and the other ranks see the rank exit as it did. With ``--nproc`` the child is the
launcher; when it ends without any report, this process reports the launch's end.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ..diagnose.contract import without_diagnosis  # torch-free: the watcher stays light
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
    rank: int | None = None  # the child is this rank of a launch
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
            elif event.get("event") == "rank":
                self.rank = event.get("rank")
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


@contextlib.contextmanager
def forwarding_signals(children: Sequence[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Pass SIGTERM and SIGHUP on to ``children`` while the block runs, and SIGINT unless it came
    from the terminal (which sends it to the children itself)."""

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
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
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
    killed = False
    with forwarding_signals([child]):
        while child.poll() is None:
            with watch.lock:
                late = watch.deadline is not None and time.monotonic() > watch.deadline
            if late:
                child.kill()
                killed = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
    reader.join(timeout=5)
    if watch.finished:
        return child.returncode
    if watch.rank is not None:
        return _report_rank_end(watch, watch.rank, child.returncode, killed)
    if args.nproc is not None:
        return _report_launch_end(args.nproc, child.returncode, killed, json_output=args.json)
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


_STAGES = {
    "replay": "the diagnostic replay",
    "fixes": "the search for fixes",
    "ranks": "the wait for the other ranks",
    "report": "the wait for the launch's report",
}


def _process_end(message: str, cell: int | None) -> dict[str, Any]:
    """The JSON report of a check whose process ended before it finished, outside any stage."""
    return {
        **without_diagnosis(
            "other_error", {"type": "ProcessEnd", "message": message, "cell": cell, "line": None}, []
        ),
        "traceback": "",
        "executions": {"run": 1, "replay": 0, "fix_verification": 0, "total": 1},
        "internal_errors": [],
    }


def _report_rank_end(watch: Watch, rank: int, returncode: int, killed: bool) -> int:
    """A rank of a launch ended unfinished: said on stderr (stdout is the reporting rank's), and
    its own exit status kept, so the launch reports the rank as exited with it."""
    how = _how(returncode, killed)
    stage = watch.stage
    if stage is None:
        where = f" while cell {watch.cell} ran" if watch.cell is not None else ""
        message = f"the code {how}{where}; nothing after it ran, and there is no traceback"
    else:
        print(stage.get("traceback", ""), end="", file=sys.stderr)
        message = f"{_STAGES.get(str(stage.get('name')), 'the check')} {how}"
    print(f"inplace-magic (rank {rank}): {message}", file=sys.stderr)
    return returncode if 0 < returncode < 256 and not killed else 2


def _report_launch_end(nproc: int, returncode: int, killed: bool, *, json_output: bool) -> int:
    """``--nproc``'s launcher ended before any rank printed the report."""
    message = f"the launch of {nproc} ranks {_how(returncode, killed)} before any rank reported"
    if json_output:
        print(json.dumps(_process_end(message, None), indent=2))
    print(f"inplace-magic: {message}", file=sys.stderr)
    return 2


def _report_end(watch: Watch, returncode: int, killed: bool, *, json_output: bool) -> int:
    how = _how(returncode, killed)
    stage = watch.stage
    if stage is None:
        where = f" while cell {watch.cell} ran" if watch.cell is not None else ""
        message = f"the code {how}{where}; nothing after it ran, and there is no traceback"
        report = _process_end(message, watch.cell)
        text, code = f"inplace-magic: {message}", 2
    else:
        what = _STAGES.get(str(stage.get("name")), "the check")
        note = f"{what[:1].upper()}{what[1:]} {how}; what was known before it is shown."
        report = dict(stage.get("json") or {})
        report["notes"] = [*report.get("notes", []), note]
        # an error whose text only the replay could make ours stays another error (2)
        code = 1 if report.get("status") == "inplace_error" else 2
        text = f"{stage.get('text', '')}\nNote: {note}".lstrip("\n")
        print(stage.get("traceback", ""), end="", file=sys.stderr)
    if json_output:
        print(json.dumps(report, indent=2))
    elif code == 2:
        print(text, file=sys.stderr)
    else:
        print(text)
    return code
