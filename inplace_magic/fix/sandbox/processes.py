"""How a sandbox worker process starts: forked from this process's fork server (:mod:`.fork_server`),
or, where that is not possible, as a new interpreter (``python -m inplace_magic.fix.sandbox.worker``).

The fork server is started on first use (or forked from this process before: the CLI's check forks
it before the user's code runs, :mod:`.fork_here`, and hands it over with :func:`adopt`; either is
readied early with :func:`start_early`: the CLI does at the replay) and serves
every :class:`~.verify.Session` of this process after it: each pays a fork instead of an
interpreter's start-up and torch's import. A session gets a new interpreter when the server
cannot serve it, and :attr:`Worker.started` says why: not Linux (the server passes descriptors over a
``SOCK_SEQPACKET`` socket and kills through pidfds), the server refused to fork (a thread runs in it),
the server ended, or a variable of the environment that an import may read (``TORCHDYNAMO_DISABLE``,
``OMP_NUM_THREADS``: :data:`_READ_AT_IMPORT`) is not the server's: a new server with that environment
replaces it. The child gets the session's environment, the rest of it included.

Both kinds of worker look the same to the session: :class:`Worker` is the part of ``subprocess.Popen``
it uses (the jobs and answers as text streams, ``poll``, ``wait``, ``kill``), with the exit status as
``subprocess`` gives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Protocol

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FORKED = "forked"
_WORKER = [sys.executable, "-m", "inplace_magic.fix.sandbox.worker"]


class Worker(Protocol):
    stdin: IO[str] | None
    stdout: IO[str] | None
    started: str  # FORKED, or why the worker is a new interpreter
    lost: str | None  # why its exit status will not be known, if it will not

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def worker_environment() -> dict[str, str]:
    """The environment a worker inherits: this process's, with this package first on ``PYTHONPATH``
    (once: the CLI's check already has it there, and the fork server it forks has its environment)."""
    env = dict(os.environ)
    if env.get("PYTHONPATH", "").split(os.pathsep)[0] != _PACKAGE_ROOT:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


# Variables that the server's imports (Python itself, torch and its libraries, numpy, this package) may
# read once, at import: a fork serves an environment only where these are the server's. The others
# are the session's own in the child (``PYTEST_CURRENT_TEST`` changes with every test, for one).
_READ_AT_IMPORT = (
    "PYTHON",
    "TORCH",
    "PYTORCH",
    "OMP_",
    "KMP_",
    "GOMP_",
    "MKL",
    "OPENBLAS",
    "NUMPY",
    "LD_",
    "CUDA",
    "NVIDIA",
    "NCCL",
    "MALLOC",
    "INPLACE_MAGIC",
)


# ...except the ones torch itself writes into the environment and reads again at each use, so the
# child's own copy of the session's value is the one used: ``torch._dynamo``'s import sets
# ``TORCHINDUCTOR_CACHE_DIR`` (the CLI's check imports it after forking its server). Ours read at
# each use too: ``INPLACE_MAGIC_INTERNAL_ERRORS`` (pipeline/internal.py; a test that sets it for one
# check would otherwise replace the server twice).
_READ_AT_USE = frozenset({"TORCHINDUCTOR_CACHE_DIR", "INPLACE_MAGIC_INTERNAL_ERRORS"})


def read_at_import(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in env.items()
        if k.upper().startswith(_READ_AT_IMPORT) and k.upper() not in _READ_AT_USE
    }


class SpawnedWorker:
    """A worker started as a new interpreter."""

    def __init__(self, env: dict[str, str], why: str) -> None:
        self.started: str = why
        self.lost: str | None = None
        self._process = subprocess.Popen(
            _WORKER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self.stdin, self.stdout = self._process.stdin, self._process.stdout

    @property
    def pid(self) -> int:
        return self._process.pid

    def poll(self) -> int | None:
        return self._process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._process.wait(timeout)

    def kill(self) -> None:
        self._process.kill()


class Refused(Exception):
    """The fork server did not fork a worker (said why)."""


class ForkedWorker:
    """A worker forked by the fork server; its exit status comes on its status socket."""

    def __init__(self, pid: int, pidfd: int, status: socket.socket, jobs: int, answers: int) -> None:
        self.started: str = FORKED
        self.lost: str | None = None
        self._pid, self._pidfd, self._status = pid, pidfd, status
        self.returncode: int | None = None
        self.stdin: IO[str] | None = os.fdopen(jobs, "w", encoding="utf-8")
        self.stdout: IO[str] | None = os.fdopen(answers, "r", encoding="utf-8")

    @property
    def pid(self) -> int:
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._read_status(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(_WORKER, timeout or 0)
        return self.returncode

    def _read_status(self, timeout: float | None) -> None:
        if self.lost is not None:
            return
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return
        data = self._status.recv(4096)
        answer = json.loads(data) if data else {}
        if isinstance(answer.get("returncode"), int):
            self.returncode = answer["returncode"]
        else:  # the server ended before the worker (killed): the worker's status cannot be known
            self.lost = "its fork server ended before it, and how it ended is unknown"
        self._release()

    def kill(self) -> None:
        if self.returncode is None and self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):  # it has ended (not yet heard): nothing to kill
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def _release(self) -> None:
        self._status.close()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def __del__(self) -> None:
        if self._pidfd >= 0:
            self._release()


class ServerProcess(Protocol):
    """The part of ``subprocess.Popen`` a fork server's process is used through."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class ForkServer:
    """A fork server process of this process (see :mod:`.fork_server`), started with ``env``: a new
    interpreter, or (:meth:`adopt`) one forked from this process (:mod:`.fork_here`)."""

    def __init__(self, env: dict[str, str], preload: tuple[str, ...] = ()) -> None:
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-m", __package__ + ".fork_server", str(theirs.fileno()), *preload]
        with theirs:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        self._take(env, control, process)

    @classmethod
    def adopt(cls, env: dict[str, str], control: socket.socket, process: ServerProcess) -> ForkServer:
        """The server ``process`` already serving the other end of ``control``, started with ``env``."""
        server = cls.__new__(cls)
        server._take(env, control, process)
        return server

    def _take(self, env: dict[str, str], control: socket.socket, process: ServerProcess) -> None:
        self.env = env
        self.owner = os.getpid()  # a forked copy of this process must not share it
        self._control = control
        self._lock = threading.Lock()
        self.process = process

    @property
    def usable(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def fork(self, env: dict[str, str], timeout: float) -> ForkedWorker:
        """A forked worker with ``env`` in this process's working folder; raises :class:`Refused` (with
        why) when the server cannot fork one within ``timeout`` s (it may still be importing torch)."""
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        jobs_read, jobs_write = os.pipe()
        answers_read, answers_write = os.pipe()
        try:
            request = json.dumps({"cwd": os.getcwd(), "env": env}).encode()
            with self._lock:
                socket.send_fds(self._control, [request], [theirs.fileno(), jobs_read, answers_write])
        except OSError as error:
            for fd in (jobs_write, answers_read):
                os.close(fd)
            status.close()
            raise Refused(f"the fork server is gone ({error})") from None
        finally:
            theirs.close()
            os.close(jobs_read)
            os.close(answers_write)
        try:
            pid, pidfd = _forked(status, timeout)
        except Refused:
            status.close()
            os.close(jobs_write)
            os.close(answers_read)
            raise
        return ForkedWorker(pid, pidfd, status, jobs_write, answers_read)

    def prepare(self) -> None:
        """Have the server import what the worker imports lazily now, if it has not (a forked one)."""
        with self._lock, contextlib.suppress(OSError):  # gone: the first session will say so
            self._control.send(json.dumps({"prepare": True}).encode())

    def close(self) -> None:
        """Stop asking: the server ends once its workers have ended."""
        self._control.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=0)


def _forked(status: socket.socket, timeout: float) -> tuple[int, int]:
    ready, _, _ = select.select([status], [], [], max(timeout, 0.0))
    if not ready:
        raise Refused(f"the fork server did not answer within {timeout:.0f} s")
    data, fds, _, _ = socket.recv_fds(status, 4096, 1)
    answer = json.loads(data) if data else {"refused": "the fork server ended"}
    pid = answer.get("pid")
    if isinstance(pid, int) and len(fds) == 1:
        return pid, fds[0]
    for fd in fds:
        os.close(fd)
    raise Refused(f"the fork server refused: {answer.get('refused')}")


_shared: ForkServer | None = None
_shared_lock = threading.Lock()


def why_no_fork_server() -> str | None:
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return "the fork server needs Linux (pidfds)"
    return None


def _server_for(env: dict[str, str]) -> ForkServer | str:
    """This process's fork server for ``env`` (started, or replacing one with another environment),
    or why there is none."""
    global _shared
    why = why_no_fork_server()
    if why is not None:
        return why
    with _shared_lock:
        same = _shared is not None and read_at_import(_shared.env) == read_at_import(env)
        if _shared is not None and not (_shared.usable and same):
            if _shared.usable:
                _shared.close()
            _shared = None
        if _shared is None:
            try:
                _shared = ForkServer(env)
            except OSError as error:
                return f"the fork server did not start ({error})"
        return _shared


def adopt(server: ForkServer) -> None:
    """Serve this process's sessions from ``server`` (forked from this process: :mod:`.fork_here`)."""
    global _shared
    with _shared_lock:
        if _shared is not None and _shared.usable:
            _shared.close()
        _shared = server


def start_early() -> None:
    """Have this process's fork server ready for a first session now: started, its torch import
    beside other work (the CLI's replay), or, forked from this process (:mod:`.fork_here`), importing
    what the worker imports lazily."""
    server = _server_for(worker_environment())
    if not isinstance(server, str):
        server.prepare()


def start_worker(deadline: float, server: ForkServer | None = None) -> Worker:
    """A worker for one session: forked where the fork server (this process's, or ``server``) can,
    otherwise a new interpreter."""
    env = worker_environment()
    serving = server or _server_for(env)
    if isinstance(serving, str):
        return SpawnedWorker(env, serving)
    try:
        return serving.fork(env, deadline - time.monotonic())
    except Refused as refused:
        return SpawnedWorker(env, str(refused))
