"""The zygote (tests/zygote.py) against the real thing: a probe script run by ``python SCRIPT`` and by a
fork of the zygote must see the same interpreter (argv, sys.path[0], working folder, ``__main__``, its
own modules imported afresh), print the same and end with the same status; torch and numpy's threads
work in every child; and forking is refused once a thread runs in the zygote.

It starts real processes on purpose: the subject is that a forked child is as good as a new one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zygote

PROBE = textwrap.dedent(
    """\
    import json, os, random, sys
    import sibling

    main = sys.modules["__main__"]
    print(json.dumps({
        "argv": sys.argv,
        "path0": sys.path[0],
        "cwd": os.getcwd(),
        "name": __name__,
        "main_is_this_module": vars(main) is globals(),
        "file": __file__,
        "main_attributes": sorted(k for k in vars(main) if k.startswith("__")),
        "loader": type(__loader__).__name__,
        "spec": repr(__spec__),
        "sibling_imported_afresh": sibling.IMPORTED == [__name__],
        "stdin": sys.stdin.read(),
        "threads": len(os.listdir("/proc/self/task")),
        "random": random.random(),
    }))
    print("on stderr", file=sys.stderr)
    how = sys.argv[1]
    if how == "torch":
        import numpy, torch
        a = torch.randn(1024, 1024)
        print(json.dumps({"torch_seed": torch.initial_seed(), "numpy": numpy.random.random()}))
        print(torch.get_num_threads(), float((a @ a).sum()) != 0.0)
        b = numpy.ones((1024, 1024))
        print(float((b @ b).sum()))
    elif how == "exit":
        sys.exit(3)
    elif how == "exit-with-words":
        sys.exit("said on the way out")
    elif how == "raise":
        def inner():
            raise ValueError("boom")
        inner()
    elif how == "os-exit":
        sys.stdout.flush()
        os._exit(5)
    elif how == "atexit":
        import atexit, threading, time
        atexit.register(print, "atexit ran")
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined"))).start()
    elif how == "syntax":
        exec(compile("def broken(:", "x", "exec"))
    """
)
SIBLING = "import __main__\nIMPORTED = [__main__.__name__]\n"


# The subject includes torch's OpenMP team in every child: two threads, whatever the suite's
# OMP_NUM_THREADS=1 (the Makefile's TEST_ENV), so that the team is really started and forked past.
TEAM = {"OMP_NUM_THREADS": "2"}


@pytest.fixture(scope="module")
def warm() -> Iterator[zygote.Zygote]:
    with pytest.MonkeyPatch.context() as env:  # the zygote, and so each child, inherits it at its start
        for name, value in TEAM.items():
            env.setenv(name, value)
        started = zygote.Zygote(preload=("torch",))
    yield started
    started.close()


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """A script in a folder of its own beside its sibling module, run from that folder's parent."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "probe.py").write_text(PROBE)
    (tmp_path / "sub" / "sibling.py").write_text(SIBLING)
    return tmp_path


def _python(case: Path, how: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "sub/probe.py", how],
        cwd=case,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **TEAM},
    )


def _facts(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    facts: dict[str, object] = json.loads(done.stdout.splitlines()[0])
    del facts["random"]  # differs between any two interpreters
    return facts


def _draws(done: subprocess.CompletedProcess[str]) -> tuple[object, ...]:
    """What differs between any two interpreters: Python's, torch's and numpy's random numbers."""
    first, second = (json.loads(line) for line in done.stdout.splitlines()[:2])
    return first["random"], second["torch_seed"], second["numpy"]


@pytest.mark.parametrize("how", ["torch", "exit", "exit-with-words", "raise", "os-exit", "atexit"])
def test_a_forked_run_is_the_same_as_python_script(warm: zygote.Zygote, case: Path, how: str) -> None:
    python, forked = _python(case, how), warm.run(["sub/probe.py", how], cwd=case, timeout=120)
    assert forked.returncode == python.returncode
    assert _facts(forked) == _facts(python)
    assert _facts(forked)["threads"] == 1 and _facts(forked)["sibling_imported_afresh"]
    skip = 2 if how == "torch" else 1  # the torch run's second line: its random seeds
    assert forked.stdout.splitlines()[skip:] == python.stdout.splitlines()[skip:]
    assert forked.stderr == python.stderr  # tracebacks included: they start at the script's frame


def test_every_child_draws_its_own_random_numbers_and_runs_parallel_torch_ops(
    warm: zygote.Zygote, case: Path
) -> None:
    # an OpenMP team started in the zygote would hang the second child's matmul: none is started there
    runs = [warm.run(["sub/probe.py", "torch"], cwd=case, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (_draws(r) for r in runs)
    assert all(a != b for a, b in zip(first, second, strict=True)), (first, second)


def test_a_run_past_its_timeout_is_killed_and_the_zygote_serves_on(
    warm: zygote.Zygote, tmp_path: Path
) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import time\nwhile True:\n    time.sleep(0.05)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        warm.run([str(script)], cwd=tmp_path, timeout=1)
    (tmp_path / "ok.py").write_text("print('still here')\n")
    assert warm.run([str(tmp_path / "ok.py")], cwd=tmp_path, timeout=60).stdout == "still here\n"


def test_forking_is_refused_while_another_thread_runs() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert "Python threads are running" in (zygote._why_not_fork(zygote._threads()) or "")
    finally:
        stop.set()
        thread.join()


def test_a_torch_op_starts_the_threads_the_zygote_refuses_to_fork_beside() -> None:
    # why the zygote runs no torch op: its first parallel op starts an OpenMP team, which the check sees
    program = (
        "import torch, zygote\nbaseline = zygote._threads()\nassert zygote._why_not_fork(baseline) is None\n"
        "a = torch.randn(1024, 1024)\n(a @ a).sum()\nprint(zygote._why_not_fork(baseline))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=Path(zygote.__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **TEAM},
    )
    assert "a torch op started a thread pool" in done.stdout, done.stderr
