"""The browser tests' kernels, started by forking a process that has already imported what every
kernel of theirs imports (torch, and torch._dynamo, which the extension's ``%load_ext`` imports),
instead of a new interpreter each time.

A kernel's start was most of its CPU in these tests (about 12 of 13-19 CPU-s per kernel on the
2-core machine: torch's import, then torch._dynamo's at ``%load_ext``), and the run starts six.
The server's kernel manager (:class:`ZygoteKernelManager`, named in jupyter_server_test_config.py,
for these tests only) gives each kernel a :class:`ZygoteProvisioner`, jupyter_client's
LocalProvisioner in every way but the launch: where LocalProvisioner would run ``python -m
ipykernel_launcher -f CONNECTION_FILE``, it asks the zygote for a child that becomes that command.

What the child is, as the command would be: ``sys.argv`` (``-f`` and the kernel's own connection
file, written by jupyter_client as always), ``sys.path[0]`` the working folder, the kernel's
working folder and environment (the server's, with jupyter_client's variables), a session and
process group of its own (as jupyter_client's launcher gives a kernel: an interrupt or a kill
reaches what the kernel started), stdin /dev/null, stdout and stderr the server's, and then
``ipykernel_launcher`` run as ``__main__``: ipykernel's own start, its sockets, its event loop,
its shutdown. So the extension, ``%load_ext`` and its background warm-up run in the kernel as in
any other; what differs is only that ``import torch`` and ``import torch._dynamo`` find the modules
already there, and what only an interpreter's start sets (the hash seed, the flags). torch's and
numpy's random generators are reseeded in each child (every fork would otherwise draw the same
numbers).

Forking is safe only with one thread and no OpenMP team (libgomp's pool does not survive a fork):
the zygote only imports, never runs a torch op, and checks before each fork that no thread has
started; otherwise it refuses and the provisioner starts the kernel the usual way. It also
refuses, the same way, an environment that differs from its own in a variable an import may read
(``OMP_NUM_THREADS``, ``TORCH_*``, ...): the zygote's imports were made under its own.

The zygote is the child of the server (started with it: see the config) and reaps its kernels,
reporting each one's exit status, which the provisioner's ``poll`` and ``wait`` read. When the
server goes, the zygote's stdin closes and it kills the kernels still running, which the server
would have shut down.

UI_TESTS_KERNEL_ZYGOTE=0: every kernel started the usual way (to compare).
UI_TESTS_KERNEL_PIDS: a file where each forked kernel's id and pid are appended (tests/cpu.ts
finds a kernel's process there: a fork's command line is the zygote's, not ipykernel's).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import queue
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import uuid
from functools import cache
from typing import IO, Any

# not ipykernel (half a CPU-second): it reads the kernel's own variables (JPY_PARENT_PID, the server
# it watches) at its import, which must be the kernel's
PRELOAD = ("torch", "torch._dynamo")
# what an import may read from the environment at the zygote's start; a kernel whose environment
# differs here from the zygote's is started the usual way. The same list as the sandbox's fork server
# (inplace_magic/fix/sandbox/processes.py, _READ_AT_IMPORT: libgomp reads GOMP_SPINCOUNT at load,
# glibc MALLOC_*, numpy NUMPY_*), written out here because the zygote must not import the package
# whose loading in each kernel the tests check.
_IMPORT_ENV_PREFIXES = (
    *("OMP_", "KMP_", "GOMP_", "MKL", "OPENBLAS", "GOTO", "NUMPY", "MALLOC"),
    *("TORCH", "PYTORCH", "CUDA", "NVIDIA", "NCCL", "PYTHON", "LD_"),
)

# -- the zygote process


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _import_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_IMPORT_ENV_PREFIXES)}


def _why_not_fork(baseline: int, started_under: dict[str, str], request: dict[str, Any]) -> str | None:
    if threading.active_count() != 1:
        return f"Python threads are running: {threading.enumerate()}"
    if _threads() > baseline:
        return f"{_threads()} threads, {baseline} after the imports"
    if _import_env(request["env"]) != started_under:
        return "the kernel's environment differs from the zygote's in what an import may read"
    return None


def _become_the_kernel(request: dict[str, Any], protocol: list[IO[str]], wakeup: tuple[int, int]) -> int:
    """In the forked child: ``python -m ipykernel_launcher ARGS`` in ``cwd`` with ``env``."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for stream in protocol:
        stream.close()  # this child's copies only: the zygote keeps its own
    for fd in wakeup:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # the zygote's stdout was the protocol: the kernel's goes where its stderr goes
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [request["argv"][0], *request["argv"][1:]]
    sys.path[0] = os.getcwd()  # what `python -m` puts first
    sys.modules["torch"].seed()
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    gc.unfreeze()  # what the kernel makes from now on is collected as anywhere
    try:
        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def serve() -> int:
    """Import :data:`PRELOAD`, then fork a kernel per request line; answers and exits on stdout."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # whatever an import prints goes to stderr, never into the answers
    started_under = _import_env(dict(os.environ))  # before the imports, some of which set variables
    for name in PRELOAD:
        importlib.import_module(name)
    baseline = _threads()
    gc.freeze()  # the children's collections then leave the pages they share with the zygote alone

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    # SIGCHLD wakes the loop through a pipe (no thread may run here: see the module's docstring)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    children: set[int] = set()
    answer({"ready": True, "pid": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.fileobj == wake_read:
                os.read(wake_read, 4096)
                continue
            line = requests.readline()
            if not line:  # the server is gone: so are the kernels it would have shut down
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                return 0
            request = json.loads(line)
            why = _why_not_fork(baseline, started_under, request)
            if why:
                answer({"refused": why})
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                selector.close()
                return _become_the_kernel(request, [requests, answers], (wake_read, wake_write))
            children.add(pid)
            answer({"pid": pid})
        while children:  # reap every kernel that ended, and say how
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            answer({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


# -- the server's side


class Zygote:
    """The zygote process, started by the server; :meth:`fork` asks it for a kernel."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._exited: dict[int, int] = {}
        self._lock = threading.Lock()  # one request, one answer, in order
        self._ready = threading.Event()
        threading.Thread(target=self._pump, name="kernel zygote answers", daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "exited" in message:
                self._exited[message["exited"]] = message["returncode"]
            elif "ready" in message:
                self._ready.set()
            else:
                self._answers.put(message)
        self._answers.put(None)
        self._ready.set()

    def fork(self, argv: list[str], cwd: str, env: dict[str, str]) -> int | str:
        """A kernel's pid, or why the zygote refused (or could not) fork one."""
        if not self._ready.wait(timeout=300) or self.process.poll() is not None:
            return f"the zygote is not running (exit status {self.process.poll()})"
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"argv": argv, "cwd": cwd, "env": env}) + "\n")
            self.process.stdin.flush()
            message = self._answers.get(timeout=60)
        if message is None:
            return f"the zygote ended (exit status {self.process.wait()})"
        if "refused" in message:
            return str(message["refused"])
        return int(message["pid"])

    def returncode(self, pid: int) -> int | None:
        return self._exited.get(pid)


_ZYGOTE: Zygote | None = None


def start() -> None:
    """Start the zygote now (from the server's config): its imports overlap the server's start."""
    global _ZYGOTE
    if os.environ.get("UI_TESTS_KERNEL_ZYGOTE", "1") != "0" and _ZYGOTE is None:
        _ZYGOTE = Zygote()


class ForkedKernel:
    """What LocalProvisioner keeps of its Popen, for a kernel the zygote forked (not the server's
    child: its exit status comes from the zygote, which reaps it)."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        return self.zygote.returncode(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        waited = 0.0
        while (code := self.poll()) is None:
            if timeout is not None and waited >= timeout:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            threading.Event().wait(0.05)
            waited += 0.05
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _provisioner_class() -> type:
    from jupyter_client.provisioning import LocalProvisioner

    class ZygoteProvisioner(LocalProvisioner):  # type: ignore[misc]
        """LocalProvisioner, whose kernel is a fork of the zygote where it can be."""

        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            ours = os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
            forkable = ours and cmd[1:3] == ["-m", "ipykernel_launcher"]
            if _ZYGOTE is None or not forkable:
                return await super().launch_kernel(cmd, **kwargs)
            env = dict(kwargs.get("env") or os.environ)
            if not kwargs.get("independent"):
                env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it
            cwd = str(kwargs.get("cwd") or os.getcwd())
            pid = await asyncio.to_thread(_ZYGOTE.fork, ["-m", *cmd[3:]], cwd, env)
            if isinstance(pid, str):
                # an error, to be seen: the tests' server logs nothing below (its config), and a
                # kernel started the usual way costs the run its whole start again
                self.log.error("kernel zygote: %s; starting the kernel the usual way", pid)
                return await super().launch_kernel(cmd, **kwargs)
            self.process = ForkedKernel(_ZYGOTE, pid)
            self.pid = self.pgid = pid  # the child leads its own session, as the launcher's would
            self.cwd = cwd
            pids = os.environ.get("UI_TESTS_KERNEL_PIDS")
            if pids:
                with open(pids, "a", encoding="utf-8") as file:
                    file.write(json.dumps({"kernel_id": self.kernel_id, "pid": pid}) + "\n")
            return self.connection_info

    return ZygoteProvisioner


@cache
def _manager_class() -> type:
    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    provisioner = _provisioner_class()

    class ZygoteKernelManager(ServerKernelManager):  # type: ignore[misc]
        """The server's kernel manager, with a :class:`ZygoteProvisioner` for each kernel."""

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            # as jupyter_client does first, so that the provisioner is made for the kernel's id
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            if self.provisioner is None:  # set already on a restart: the same one forks again
                spec = self.kernel_spec
                self.provisioner = provisioner(kernel_id=self.kernel_id, kernel_spec=spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

    return ZygoteKernelManager


def __getattr__(name: str) -> type:
    # made on first use, in the server: the zygote process itself never imports jupyter_server
    if name == "ZygoteKernelManager":
        return _manager_class()
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(serve())
