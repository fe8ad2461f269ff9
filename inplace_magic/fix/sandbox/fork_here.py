"""The sandbox's fork server forked from this process (the CLI's check, before the user's code runs)
instead of started as a new interpreter: the check has imported torch already, so its sandbox pays
no second interpreter's start-up and torch import (about 2 CPU-s).

The fork server's rule is checked here before the fork (see :mod:`.fork_server`: one Python thread,
no thread started since torch's import, so no OpenMP team), against the threads torch's import
started, which the caller counted (the CLI imports torch first: :mod:`...cli.torch_first`); where
they are unknown, :func:`fork_server_here` does not fork.

The forked server is what ``python -m inplace_magic.fix.sandbox.fork_server`` would be, started now
in this working folder with this environment (its imports read this process's environment, by
construction; :func:`.processes.worker_environment` gives the sessions the same one): its stdin,
stdout and stderr are ``/dev/null``, it ignores SIGINT, it holds none of this process's other
descriptors (``close`` names them: the CLI's channel to its watcher, whose end must come when the
check ends), and it imports what the worker imports lazily (``torch._dynamo``, the pipeline) once
asked (:func:`.processes.start_early`, at the check's replay: beside it; a check without an
in-place error never asks, and pays only the fork). It ends as the other does: once this process
has ended (its end of the socket closes) and so have its workers. A worker it forks leaves by
raising ``SystemExit`` from :func:`fork_server_here`'s call, which the caller must let through (no
``except`` above it catches it): the worker then ends with the interpreter's own shutdown, as a
worker forked from the other server does.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

from . import fork_server, processes


class ForkedServerProcess:
    """The fork server forked from this process, as ``subprocess.Popen``'s ``pid``, ``poll``, ``wait``
    and ``kill``. It is not this process's child (:func:`fork_server_here` forks it through a child
    that leaves at once): the user's code runs in this process, and an ``os.wait()`` there must find
    no child of ours, or it would wait on the server for as long as the check runs. So its end is read
    from a pidfd (which a reused pid cannot fool), not reaped here, and its exit status is not ours to
    know: ``returncode`` is -1 once it has ended."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._pidfd = os.pidfd_open(pid)
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        return self._ended(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._ended(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(["fork server", str(self._pid)], timeout or 0)
        return code

    def _ended(self, timeout: float | None) -> int | None:
        if self.returncode is None and select.select([self._pidfd], [], [], timeout)[0]:
            self.returncode = -1  # ended; how, only its parent (init) is told
            os.close(self._pidfd)
            self._pidfd = -1
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None and self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):  # it has ended: nothing to kill
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


def why_not_fork_here(torch_threads: int | None) -> str | None:
    """Why this process cannot fork the fork server now, or None."""
    why = processes.why_no_fork_server()
    if why is not None:
        return why
    if torch_threads is None:
        return "the threads torch's import started in this process are unknown"
    return fork_server.why_not_fork(torch_threads)


def fork_server_here(torch_threads: int | None, close: Sequence[int] = ()) -> str | None:
    """Fork this process's fork server from this process now and let its sessions use it; or say why
    not (then the sessions start one as a new interpreter, as anywhere else). ``close``: descriptors
    of this process the server must not hold. In a worker the server forks, this raises
    ``SystemExit`` with the worker's exit status. ``torch_threads``: the threads once torch was
    imported (:mod:`...cli.torch_first`), None where unknown."""
    why = why_not_fork_here(torch_threads)
    if why is not None:
        return why
    env = processes.worker_environment()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    # through a child that forks the server and leaves at once: the server is then no child of this
    # process (ForkedServerProcess says why), and that child is reaped here before the user's code runs
    read_pid, write_pid = os.pipe()
    middle = os.fork()
    if middle == 0:
        ours.close()
        os.close(read_pid)
        server = os.fork()
        if server == 0:
            os.close(write_pid)
            sys.exit(_serve(theirs, close))
        os.write(write_pid, str(server).encode())
        os._exit(0)
    theirs.close()
    os.close(write_pid)
    os.waitpid(middle, 0)
    with os.fdopen(read_pid, "rb") as told:
        pid = told.read().decode()
    try:
        process = ForkedServerProcess(int(pid))
    except (ValueError, ProcessLookupError):  # the fork failed, or the server ended at once
        ours.close()
        return "the fork server forked from this process did not start"
    processes.adopt(processes.ForkServer.adopt(env, ours, process))
    return None


def _serve(control: socket.socket, close: Sequence[int]) -> int:
    """The server's life in the forked child; in a worker it forks, the worker's exit status."""
    server = os.getpid()
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as the other server: a Ctrl-C is the check's
        for fd in close:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        baseline = fork_server._threads()  # in this child: the forking thread (numpy's pool restarts later)
        # the worker's imports at the first message (the check's replay: processes.start_early), not
        # now: a check whose code raises no in-place error never asks, and pays the fork alone
        code = fork_server.serve_requests(control, baseline, prepared=False)
    except BaseException:
        if os.getpid() != server:
            raise  # a worker's: it ends as an interpreter does
        os._exit(1)  # the server failed: its clients see it gone and start new interpreters
    if os.getpid() == server:
        os._exit(code)  # the CLI's code above the call must not go on in the server
    return code  # a worker: ``SystemExit`` with it, and the interpreter's own shutdown
