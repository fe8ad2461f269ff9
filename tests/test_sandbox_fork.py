"""The sandbox's workers forked from one fork server per process (inplace_magic/fix/sandbox/processes.py,
fork_server.py), for real: real sessions, real servers and workers, the user's code in them.

Processes are the subject here: which process forked which (pid and ppid, written by the user's code
itself), what a forked worker gives the code compared with a worker started as a new interpreter, the
ends of a worker (its exit, a signal, the kill at the deadline), a server that ends under its worker,
and a server that refuses to fork. The comparisons with a new interpreter start one each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from inplace_magic.fix.sandbox import fork_server, processes
from inplace_magic.fix.sandbox.processes import FORKED, ForkServer, SpawnedWorker, start_worker
from inplace_magic.fix.sandbox.verify import Session
from inplace_magic.replay.cells import Cell, split_percent

ROOT = Path(__file__).resolve().parents[1]
VERSION_ERROR = "x = torch.randn(3, requires_grad=True)\ny = x.sigmoid()\ny += 1\ny.sum().backward()\n"


def _probe(log: Path, then: str = VERSION_ERROR) -> list[Cell]:
    """Cells whose every run writes down what its process gives it, then fail with a version error."""
    return split_percent(
        "# %%\nimport json, os, random, signal, sys\nimport numpy, torch\n"
        "try:\n    said = input()\nexcept EOFError:\n    said = 'EOF'\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'argv': sys.argv,\n"
        "        'cwd': os.getcwd(), 'path': sys.path, 'env': dict(os.environ), 'stdin': said,\n"
        "        'torch': torch.rand(2).tolist(), 'random': random.random(),\n"
        "        'numpy': float(numpy.random.random()),\n"
        "        'sigint': signal.getsignal(signal.SIGINT) is signal.default_int_handler}) + '\\n')\n"
        f"# %%\n{then}"
    )


def _runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _new_interpreter(deadline: float) -> SpawnedWorker:
    return SpawnedWorker(processes.worker_environment(), "a new interpreter, for the comparison")


def _session(
    cells: list[Cell], *, plain: bool = False, limit: float = 60, path: str | None = None
) -> Session:
    return Session(
        cells, path, time.monotonic() + 300, limit, start=_new_interpreter if plain else start_worker
    )


def test_one_fork_server_forks_every_session_of_a_process(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    cells = _probe(log)
    sessions = [_session(cells) for _ in range(3)]
    for session in sessions:
        session.close()
    assert [s.process.started for s in sessions] == [FORKED] * 3
    assert all(s.original and s.original["error"]["kind"] == "version_counter" for s in sessions)
    runs = _runs(log)
    assert len(runs) == 6  # each session: the original and its gradient reference, in one process
    assert (
        [r["pid"] for r in runs[::2]] == [r["pid"] for r in runs[1::2]] == [s.process.pid for s in sessions]
    )
    assert len({r["pid"] for r in runs}) == 3
    # one interpreter started for the three: the server, whose children they all are
    server = processes._shared
    assert server is not None and {r["ppid"] for r in runs} == {server.process.pid} != {os.getpid()}


def test_a_forked_worker_gives_the_code_what_a_new_interpreter_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # relative PYTHONPATH entries (an empty one is the working folder) resolve in the worker's folder,
    # not in the one the server started in
    (tmp_path / "work").mkdir()
    (tmp_path / "started").mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["rel", "", os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path / "started")
    server = processes._server_for(processes.worker_environment())
    assert isinstance(server, ForkServer)
    monkeypatch.chdir(tmp_path / "work")
    script = tmp_path / "probe.py"
    forked_log, plain_log = tmp_path / "forked", tmp_path / "plain"
    for log, plain in ((forked_log, False), (plain_log, True), (forked_log, False)):
        _session(_probe(log), plain=plain, path=str(script)).close()
    first, _, second, _ = forked_runs = _runs(forked_log)
    plain_run = _runs(plain_log)[0]
    assert first["ppid"] != os.getpid() and plain_run["ppid"] == os.getpid()
    for key in ("argv", "cwd", "path", "env", "stdin", "sigint"):
        assert first[key] == plain_run[key], key
    assert first["argv"] == [str(script)] and first["cwd"] == str(tmp_path / "work")
    assert (
        str(tmp_path / "work" / "rel") in first["path"]
        and str(tmp_path / "started" / "rel") not in first["path"]
    )
    assert {r["ppid"] for r in forked_runs} == {server.process.pid}
    assert first["stdin"] == "EOF" and first["sigint"]
    # every run of a session starts from the session's random state; each session draws its own
    for run in (first, second):
        twin = forked_runs[forked_runs.index(run) + 1]
        assert all(run[k] == twin[k] for k in ("torch", "random", "numpy"))
    assert all(first[k] != second[k] for k in ("torch", "random", "numpy"))


@pytest.mark.parametrize("plain", [False, True], ids=["forked", "new interpreter"])
def test_each_end_of_a_worker_is_reported_as_for_a_new_interpreter(tmp_path: Path, plain: bool) -> None:
    cells = split_percent("# %%\nimport os, signal, time, torch\n# %%\n" + VERSION_ERROR)
    fixed = split_percent(
        "# %%\nimport os, signal, time, torch\n# %%\n" + VERSION_ERROR.replace("+=", "= y +")
    )

    def but(code: str) -> list[Cell]:
        return [fixed[0], Cell(1, code + fixed[1].source, "code", None)]

    session = _session(cells, plain=plain, limit=1)
    assert session.process.started == (FORKED if not plain else "a new interpreter, for the comparison")
    fine = session.run("fine", fixed, compare=True)
    assert fine.ran and fine.error is None and fine.matches_reference is True
    late = session.run("late", but("while True:\n    time.sleep(0.05)\n"), compare=False)
    assert late.ran and late.timed_out  # the run's own time limit, inside the worker
    gone = session.run("exit", but("os._exit(5)\n"), compare=False)
    assert not gone.ran and gone.ended == "exit status 5" and session.internal_errors == []
    session.close()

    session = _session(cells, plain=plain, limit=1)
    signalled = session.run("signal", but("os.kill(os.getpid(), signal.SIGSEGV)\n"), compare=False)
    assert not signalled.ran and signalled.ended == "signal 11"
    session.close()

    session = _session(cells, plain=plain, limit=1)
    session.deadline = time.monotonic() + 3  # the overall deadline, met by code the time limit cannot stop
    stubborn = "while True:\n    try:\n        time.sleep(0.05)\n    except BaseException:\n        pass\n"
    killed = session.run("stubborn", but(stubborn), compare=False)
    assert not killed.ran and killed.ended is None and session.internal_errors == []
    assert session.process.poll() == -signal.SIGKILL
    assert session.executions == 3


def test_a_server_that_ends_under_its_worker_is_our_failure_and_is_started_again(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    session = _session(_probe(log))
    server = processes._shared
    assert session.process.started == FORKED and server is not None
    server.process.kill()
    server.process.wait()
    gone = session.run("exit", split_percent("# %%\nimport os\nos._exit(5)\n"), compare=False)
    # the worker outlived its server: how it ended cannot be known, and is not blamed on the code
    assert not gone.ran and gone.ended is None
    assert session.internal_errors == [
        "the verification sandbox failed: its fork server ended before it, and how it ended is unknown"
    ]
    session.close()
    again = _session(_probe(log))
    again.close()
    assert again.process.started == FORKED and processes._shared is not server
    assert _runs(log)[-1]["ppid"] == processes._shared.process.pid  # type: ignore[union-attr]


def test_a_server_that_ran_a_torch_op_refuses_to_fork_and_the_worker_starts_plainly(tmp_path: Path) -> None:
    # a parallel op starts torch's OpenMP pool, which a forked child cannot use (see fork_server.py)
    (tmp_path / "ran_a_torch_op.py").write_text("import torch\na = torch.randn(1024, 1024)\n(a @ a).sum()\n")
    env = processes.worker_environment()
    env["PYTHONPATH"] = os.pathsep.join((str(tmp_path), env["PYTHONPATH"]))
    env["OMP_NUM_THREADS"] = "2"  # a team of threads really starts (the Makefile's tests run with one)
    server = ForkServer(env, preload=("ran_a_torch_op",))
    log = tmp_path / "runs"
    try:
        session = Session(
            _probe(log), None, time.monotonic() + 300, 60, start=lambda d: start_worker(d, server)
        )
        session.close()
    finally:
        server.close()
    assert session.process.started.startswith("the fork server refused: ")
    assert "a torch op started a thread pool" in session.process.started
    assert session.original and session.original["error"]["kind"] == "version_counter"
    assert {r["ppid"] for r in _runs(log)} == {os.getpid()}  # a new interpreter, this process's child


def test_a_fork_is_refused_where_a_module_came_from_a_relative_entry_that_resolves_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a module imported through PYTHONPATH's relative entry ``rel`` in ``started``: a child in
    # ``work`` would get ``work/rel`` on its path, and still the module from ``started/rel``
    for folder in ("started", "work"):
        (tmp_path / folder / "rel").mkdir(parents=True)
    (tmp_path / "started" / "rel" / "from_started_rel.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "started" / "rel"))
    monkeypatch.delitem(sys.modules, "from_started_rel", raising=False)
    __import__("from_started_rel")
    env = {"PYTHONPATH": os.pathsep.join(["/absolute", "rel"])}
    why = fork_server.why_not_here({"cwd": str(tmp_path / "work"), "env": env}, str(tmp_path / "started"))
    assert why == (
        f"from_started_rel was imported from {tmp_path / 'started' / 'rel'}, a relative PYTHONPATH entry"
        f" that is {tmp_path / 'work' / 'rel'} there"
    )
    assert (
        fork_server.why_not_here({"cwd": str(tmp_path / "started"), "env": env}, str(tmp_path / "started"))
        is None
    )


def test_a_fork_is_refused_while_a_python_thread_runs() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        why = fork_server.why_not_fork(baseline=10**6)
    finally:
        stop.set()
        thread.join()
    assert why is not None and why.startswith("Python threads are running")


def test_the_command_forks_its_fork_server_from_its_check_before_the_code_runs(tmp_path: Path) -> None:
    # each run writes its process, its parent, its parent's parent, command line and start (clock
    # ticks since boot, as /proc says) and the time: the sandbox's runs show who their server is
    log = tmp_path / "runs"
    script = tmp_path / "case.py"
    script.write_text(
        "# %%\nimport json, os, time, torch\n"
        # a child of the check's process would make a user's os.wait() wait while the check runs
        "try:\n    os.waitpid(-1, os.WNOHANG)\n    children = True\n"
        "except ChildProcessError:\n    children = False\n"
        "ppid = os.getppid()\n"
        "stat = open(f'/proc/{ppid}/stat').read().rsplit(')', 1)[1].split()\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    now = time.clock_gettime(time.CLOCK_BOOTTIME)\n"
        "    f.write(json.dumps({'pid': os.getpid(), 'ppid': ppid, 'now': now, 'grandparent': int(stat[1]),\n"
        "        'children': children,\n"
        "        'parent_started': int(stat[19]) / os.sysconf('SC_CLK_TCK'),\n"
        "        'cmdline': open('/proc/self/cmdline').read(),\n"
        "        'parent_cmdline': open(f'/proc/{ppid}/cmdline').read()}) + '\\n')\n"
        "# %%\n" + VERSION_ERROR
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "inplace_magic", "check", str(script), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout)["fixes"][0]["verified"]
    runs = _runs(log)
    first = runs[0]
    sandbox = [r for r in runs if r["pid"] != first["pid"]]
    assert sandbox and {r["ppid"] for r in sandbox} == {sandbox[0]["ppid"]}
    server = sandbox[0]
    # the server was forked from the check's process (its command line, not a new interpreter's
    # ``-m ...fork_server``) before the user's code ran, and is no child of it: the user's code, there
    # and in the sandbox, finds no child to wait for
    assert server["ppid"] != first["pid"] and server["grandparent"] != first["pid"]
    assert not any(run["children"] for run in runs)
    assert server["parent_cmdline"] == first["cmdline"] and "fork_server" not in server["parent_cmdline"]
    assert server["parent_started"] <= first["now"]
