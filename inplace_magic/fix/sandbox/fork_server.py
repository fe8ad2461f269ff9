"""The sandbox's fork server: a process that imports torch and the worker once, and forks a worker
(:mod:`.worker`) for each :class:`~.verify.Session`, instead of a new interpreter paying the start-up
and torch's import each time (:mod:`.processes` is the client side).

The server is this module run as a new interpreter, or a fork of the CLI's check (:mod:`.fork_here`:
it has imported torch already); both serve requests with :func:`serve_requests`.

Usage (by :mod:`.processes` only): ``python -m inplace_magic.fix.sandbox.fork_server FD [MODULE ...]``,
``FD`` one end of a ``SOCK_SEQPACKET`` socket pair, ``MODULE`` more modules to import before serving
(tests use it). Each message on ``FD`` is one request: a JSON object ``{"cwd", "env"}`` with three file
descriptors passed along (``SCM_RIGHTS``): the session's status socket, the read end of its jobs pipe,
the write end of its answers pipe. On the status socket the server answers ``{"pid"}`` with a pidfd of
the child (the client kills through it: a pidfd cannot name a reused pid), or ``{"refused": why}``
when forking is unsafe; once the child has ended, ``{"returncode"}`` as ``subprocess`` gives it
(negative: the signal). The server ends when the client's end closes (its children end on their own:
their jobs pipes close too) once its children have ended, or after :data:`IDLE_S` with none.

Forking is safe only from a process with one thread and no OpenMP team: libgomp's thread pool,
started by torch's first parallel op, does not survive a fork (the child's first parallel op can
hang). The server runs no torch op and starts no thread; it counts its threads after importing torch
(numpy's OpenBLAS threads stop themselves before a fork and restart in the child) and refuses each
fork, saying why, while there are more: the client then starts the worker as a new interpreter.

What the child gets, as ``python -m inplace_magic.fix.sandbox.worker`` started by the client then would
get: the client's working folder (and ``sys.path[0]``, as ``-m`` sets it; PYTHONPATH's relative
entries, which the server resolved in its own folder, resolved in that one, and a fork refused where
a module the server imported came from one that resolves elsewhere), the environment (the
session's, sent with the request; the client forks only where what the imports read is the server's), a
random state of its own (torch seeds itself from entropy at import, numpy too: the child reseeds both,
Python's ``random`` reseeds itself in a forked child), stdin, stdout and stderr on ``/dev/null``, the
jobs and answers on fds of their own that the user's subprocesses do not inherit, SIGINT raising
KeyboardInterrupt (the server ignores it: a Ctrl-C or a kernel interrupt reaches the whole process
group) and the interpreter's own shutdown (atexit, non-daemon threads). It differs where only an
interpreter's start sets: the hash seed and ``sys.flags`` are the server's.

What the server imported is frozen before the first fork (``gc.freeze``): a child's garbage
collections then leave those objects alone instead of touching, and so copying, every page of torch
the fork shares.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

IDLE_S = 600.0  # with no child and no request for this long the server ends (it holds ~0.5 GB)
MAX_REQUEST = 1024 * 1024


@dataclass
class _Child:
    pid: int
    pidfd: int
    status: socket.socket


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def why_not_fork(baseline: int) -> str | None:
    """Why forking now would be unsafe, or None. ``baseline``: the threads once torch is imported."""
    import threading

    if threading.active_count() != 1:
        return f"Python threads are running: {threading.enumerate()}"
    if _threads() > baseline:
        return f"{_threads()} threads, {baseline} once torch was imported: a torch op started a thread pool"
    return None


def _moved_entries(pythonpath: str, was: str, now: str) -> list[tuple[str, str]]:
    """PYTHONPATH's relative entries (an empty one is the working folder) as this interpreter
    resolved them in ``was``, and as one started in ``now`` resolves them, where the two differ."""
    moved = []
    for entry in pythonpath.split(os.pathsep) if pythonpath else ():
        if not os.path.isabs(entry):
            old, new = os.path.abspath(os.path.join(was, entry)), os.path.abspath(os.path.join(now, entry))
            if old != new:
                moved.append((old, new))
    return moved


def why_not_here(request: dict[str, object], started_in: str) -> str | None:
    """Why a child in the request's working folder could not get what a new interpreter started there
    gets, or None: a module imported here came from a relative PYTHONPATH entry that resolves to
    another folder there (the child's path gets the new folder; the module would stay the old one)."""
    env = request.get("env")
    pythonpath = str(env.get("PYTHONPATH", "")) if isinstance(env, dict) else ""
    for old, new in _moved_entries(pythonpath, started_in, str(request.get("cwd"))):
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(old + os.sep):
                return f"{name} was imported from {old}, a relative PYTHONPATH entry that is {new} there"
    return None


def _say(status: socket.socket, payload: dict[str, object], fds: Sequence[int] = ()) -> None:
    with contextlib.suppress(OSError):  # the client is gone: nobody to tell
        socket.send_fds(status, [json.dumps(payload).encode()], list(fds))


def _receive(control: socket.socket) -> tuple[dict[str, object], list[int]] | None:
    """The next request and its file descriptors; None once the client has closed its end."""
    data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST, 3)
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    return json.loads(data), fds


def _in_the_child(request: dict[str, object], jobs: int, answers: int, started_in: str) -> int:
    """The worker's life in the forked child; returns its exit status for the interpreter's exit."""
    from . import worker

    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = request.get("env")
    if isinstance(env, dict):  # the session's (the client forks only where what imports read is ours)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
    cwd = str(request["cwd"])
    os.chdir(cwd)
    moved = dict(_moved_entries(os.environ.get("PYTHONPATH", ""), started_in, cwd))
    sys.path[1:] = [moved.get(entry, entry) for entry in sys.path[1:]]
    sys.path[0] = cwd  # as ``python -m`` sets it
    sys.argv = [worker.__file__]
    # seeded from entropy at their import in the server: every fork would draw the same numbers
    sys.modules["torch"].seed()
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    return worker.serve_forked(jobs, answers)


def prepare(preload: Sequence[str]) -> int:
    """Import torch, the worker and ``preload``; returns the threads once torch was imported."""
    importlib.import_module("torch")
    baseline = _threads()
    from . import worker

    worker.import_lazily_imported()
    for name in preload:
        importlib.import_module(name)
    return baseline


def serve(control: socket.socket, preload: Sequence[str]) -> int:
    """Import, then fork a worker per request; in a child, returns the worker's exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve_requests(control, prepare(preload))


def serve_requests(control: socket.socket, baseline: int, prepared: bool = True) -> int:
    """Fork a worker per request (torch imported, ``baseline`` the threads then); in a child, returns
    the worker's exit status, in the server 0 once it ends. Unless ``prepared``, the worker's imports
    (:func:`prepare`) wait for the first message: a request, or ``{"prepare": true}`` alone."""
    started_in = os.getcwd()  # where this interpreter resolved PYTHONPATH's relative entries
    if prepared:
        gc.freeze()  # see the module's docstring: the children's collections leave the shared pages alone
    children: dict[int, _Child] = {}  # by pidfd
    accepting = True
    while accepting or children:
        waiting = list(children)
        watched = [control.fileno(), *waiting] if accepting else waiting
        ready, _, _ = select.select(watched, [], [], None if children else IDLE_S)
        if not ready:
            break  # idle: the client starts another server when it needs one
        for pidfd in ready:
            if pidfd == control.fileno():
                continue
            child = children.pop(pidfd)
            _, status = os.waitpid(child.pid, 0)
            _say(child.status, {"returncode": os.waitstatus_to_exitcode(status)})
            child.status.close()
            os.close(child.pidfd)
        if control.fileno() not in ready:
            continue
        received = _receive(control)
        if received is None:
            accepting = False
            continue
        request, fds = received
        if not prepared:
            prepare(())
            gc.freeze()
            prepared = True
        if len(fds) != 3:  # {"prepare": true}, or not a request
            for fd in fds:
                os.close(fd)
            continue
        status_socket = socket.socket(fileno=fds[0])
        jobs, answers = fds[1], fds[2]
        why = why_not_fork(baseline) or why_not_here(request, started_in)
        if why is not None:
            _say(status_socket, {"refused": why})
            status_socket.close()
            os.close(jobs)
            os.close(answers)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            # this child's copies of the server's own descriptors go; the worker's stay
            control.close()
            status_socket.close()
            for other in children.values():
                other.status.close()
                os.close(other.pidfd)
            return _in_the_child(request, jobs, answers, started_in)
        os.close(jobs)
        os.close(answers)
        pidfd = os.pidfd_open(pid)
        _say(status_socket, {"pid": pid}, [pidfd])
        children[pidfd] = _Child(pid, pidfd, status_socket)
    return 0


def main(argv: Sequence[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    os.set_inheritable(control.fileno(), False)
    return serve(control, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
