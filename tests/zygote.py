"""``python SCRIPT`` without paying the interpreter and torch start-up each time: a "zygote" process
imports torch once, and each run is a child forked from it that becomes ``python SCRIPT`` (for the
tests whose subject is what a script does, not how a process starts: test_fix_cases.py runs each
case's fixed script so).

What the forked child gives the script, as ``python SCRIPT`` in ``cwd`` would (test_zygote.py compares
the two on a probe script): ``sys.argv``; ``sys.path[0]`` the script's folder; the working folder;
a new ``__main__`` module with the same attributes; the script's own modules imported afresh (the
zygote imported torch and nothing of the script); stdout and stderr on fds 1 and 2 (files the client
reads back); the exit status of ``sys.exit``, of an uncaught exception (its traceback from the
script's frames on, status 1), of ``os._exit`` and of a signal; the interpreter's own shutdown
(atexit, non-daemon threads, flushing). It differs in what only an interpreter's start sets: the
hash seed, the flags and the environment are the zygote's (it inherits the test worker's
environment at its start), stdin is /dev/null, and the child leads a session of its own (so that a
run past its time limit is killed with everything it started).

Forking is safe only from a process with one thread and no OpenMP team: libgomp's thread pool,
started by torch's first parallel op, does not survive a fork (the child's first parallel op can
hang), so the zygote only imports and never runs a torch op. numpy's OpenBLAS starts its threads at
import, but stops them before every fork itself (``pthread_atfork``) and restarts them in the child
on first use. The zygote checks before each fork that no thread of its own (Python's or an OpenMP
team) is running; otherwise it refuses with why instead of forking.

What the zygote imported is frozen before the first fork (``gc.freeze``): a child's garbage
collections then leave those objects alone, instead of touching, and so copying, every page of torch
the fork shares (a run cost 0.6 CPU-s more without it). What the script makes is collected as in any
interpreter.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

# -- the client, in the test process


class Zygote:
    """A zygote process that has imported ``preload``; :meth:`run` is ``subprocess.run([python,
    *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)`` served by a fork of it."""

    def __init__(self, preload: Sequence[str] = ("torch",)) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self._answer(timeout=300)
        assert ready.get("ready"), ready

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _answer(self, timeout: float) -> dict[str, Any]:
        line = self._answers.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"the zygote ended (exit status {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "refused" in answer:
            raise AssertionError(f"the zygote refused to fork: {answer['refused']}")
        return answer

    def run(self, argv: Sequence[str], cwd: Path | str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ``python *argv`` in ``cwd``; a run past ``timeout`` is killed and raises TimeoutExpired."""
        assert self.process.stdin is not None
        with tempfile.TemporaryDirectory(prefix="zygote-") as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            request = {"argv": list(argv), "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = self._answer(timeout=60)["pid"]
            try:
                returncode = self._answer(timeout=timeout)["returncode"]
            except queue.Empty:
                with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                    os.killpg(pid, signal.SIGKILL)  # the child leads its own session: all it started
                self._answer(timeout=60)
                raise subprocess.TimeoutExpired([sys.executable, *argv], timeout) from None
            return subprocess.CompletedProcess(
                [sys.executable, *argv],
                returncode,
                out.read_text(encoding="utf-8", errors="replace"),
                err.read_text(encoding="utf-8", errors="replace"),
            )

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()  # the zygote's loop ends at the end of its requests
        self.process.wait(timeout=60)


# -- the zygote process


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _why_not_fork(baseline: int) -> str | None:
    """Why forking now would be unsafe, or None. ``baseline``: the threads after the imports (the
    main thread, and OpenBLAS's, which stop themselves at each fork)."""
    if threading.active_count() != 1:
        return f"Python threads are running: {threading.enumerate()}"
    if _threads() > baseline:
        return f"{_threads()} threads, {baseline} after the imports: a torch op started a thread pool"
    return None


def _fresh_main(path: str) -> dict[str, Any]:
    """The namespace ``python SCRIPT`` runs the script in (the interpreter's new ``__main__``)."""
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__dict__.update(
        __annotations__={},
        __builtins__=builtins,
        __cached__=None,
        __file__=path,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __package__=None,
        __spec__=None,
    )
    sys.modules["__main__"] = main
    return main.__dict__


def _redirect(fd: int, path: str, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


def _become_the_script(request: dict[str, Any], protocol: Sequence[IO[str]]) -> int:
    """In the forked child: the script's run; returns its exit status for the interpreter's exit."""
    os.setsid()
    for stream in protocol:
        stream.close()  # this child's copies only: the zygote keeps its own
    _redirect(0, os.devnull, os.O_RDONLY)
    _redirect(1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    _redirect(2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.chdir(request["cwd"])
    script = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    # seeded from entropy when the zygote imported them: every fork would draw the same numbers
    # (Python's random reseeds itself in a forked child)
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    path = os.path.abspath(script)
    namespace = _fresh_main(path)
    try:
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec", dont_inherit=True)
    except SyntaxError as error:
        sys.excepthook(type(error), error, None)
        return 1
    try:
        exec(code, namespace)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else _said(done.code)
    except BaseException as error:
        # printed as python prints it: the traceback starts at the script's own frame, not this one
        assert error.__traceback__ is not None
        error = error.with_traceback(error.__traceback__.tb_next)
        sys.excepthook(type(error), error, error.__traceback__)
        if isinstance(error, KeyboardInterrupt):
            _end_by_sigint()
        return 1
    return 0


def _said(code: object) -> int:
    """``sys.exit(value)`` with a value that is not a status: printed, status 1 (None: 0)."""
    if code is None:
        return 0
    print(code, file=sys.stderr)
    return 1


def _end_by_sigint() -> None:
    """python ends on an uncaught KeyboardInterrupt by SIGINT itself, after its shutdown."""
    threading._shutdown()  # type: ignore[attr-defined]
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def serve(preload: Sequence[str]) -> int:
    """Import ``preload``, then fork a child per request; in the child, returns the script's status."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    _redirect(0, os.devnull, os.O_RDONLY)
    os.dup2(2, 1)  # whatever an import prints goes to stderr, never into the answers
    for name in preload:
        importlib.import_module(name)
    baseline = _threads()
    gc.freeze()  # see the module's docstring: the children's collections leave the shared pages alone
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        why = _why_not_fork(baseline)
        if why:
            answers.write(json.dumps({"refused": why}) + "\n")
            answers.flush()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return _become_the_script(request, (requests, answers))
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
