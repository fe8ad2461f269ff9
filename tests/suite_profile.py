"""Where the suite's time goes: a pytest plugin that writes, per test, its wall time and the CPU time of
the test process and of the processes it started (``make test-profile``; off otherwise).

On a machine shared with others wall time says little; CPU time (``getrusage``: this process, and the
children it has waited for) does not depend on the load. Each line of the output (JSON lines, one file
per xdist worker) holds the test id, the phase times summed over setup, call and teardown, and the
worker, so a module-scoped fixture's cost shows on the test that first needed it.

    PYTHONPATH=tests .venv/bin/python -m pytest -p suite_profile --suite-profile=/tmp/profile
    .venv/bin/python tests/suite_profile.py /tmp/profile      # the table: per file, then the top tests
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime + _unwaited_children()


_TICK = os.sysconf("SC_CLK_TCK")


def _unwaited_children() -> float:
    """The CPU of the children not yet waited for (alive, or ended and unreaped), with their own
    waited-for children: a process that lives across tests (the sandbox's fork server, whose forks
    it reaps; a zygote; a kernel) is counted as it works, not in one lump when it is reaped, and a
    child reaped between two readings moves from this sum into ``RUSAGE_CHILDREN`` unchanged."""
    mine, total = os.getpid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended since the listing
            continue
        if int(fields[1]) == mine:  # ppid; then utime, stime, cutime, cstime
            total += sum(int(v) for v in fields[11:15])
    return total / _TICK


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--suite-profile", metavar="FOLDER", help="write per-test wall and CPU times there")


class _Recorder:
    def __init__(self, folder: Path, worker: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.out: IO[str] = (folder / f"{worker}.jsonl").open("w", encoding="utf-8")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        wall, (own, children) = time.monotonic(), _cpu()
        yield
        after_own, after_children = _cpu()
        line = {
            "test": item.nodeid,
            "worker": self.worker,
            "wall": round(time.monotonic() - wall, 3),
            "cpu": round(after_own - own, 3),
            "children_cpu": round(after_children - children, 3),
        }
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()

    def pytest_sessionfinish(self) -> None:
        own, children = _cpu()
        self.out.write(json.dumps({"session": self.worker, "cpu": own, "children_cpu": children}) + "\n")
        self.out.close()


def pytest_configure(config: pytest.Config) -> None:
    folder = config.getoption("--suite-profile")
    if folder and not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        return  # the xdist controller runs no test: each worker writes its own file
    if folder:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        config.pluginmanager.register(_Recorder(Path(folder), worker), "suite-profile-recorder")


def _table(folder: Path, top: int = 40) -> str:
    rows: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            (sessions if "session" in json.loads(raw) else rows).append(json.loads(raw))
    per_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for row in rows:
        totals = per_file[row["test"].split("::")[0]]
        for i, key in enumerate(("wall", "cpu", "children_cpu")):
            totals[i] += row[key]
        totals[3] += 1
    lines = [f"{'file':44} {'tests':>5} {'wall':>8} {'cpu':>8} {'children':>8}"]
    for name, (wall, cpu, children, count) in sorted(per_file.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        lines.append(f"{name:44} {int(count):5d} {wall:8.1f} {cpu:8.1f} {children:8.1f}")
    wall = sum(r["wall"] for r in rows)
    cpu = sum(r["cpu"] + r["children_cpu"] for r in rows)
    lines.append(f"{'all tests':44} {len(rows):5d} {wall:8.1f} {cpu:17.1f} (cpu + children)")
    for session in sessions:
        own, children = session["cpu"], session["children_cpu"]
        lines.append(f"session {session['session']}: cpu {own:.1f}, children {children:.1f}")
    lines.append("")
    lines.append(f"top {top} tests by cpu + children")
    for row in sorted(rows, key=lambda r: -(r["cpu"] + r["children_cpu"]))[:top]:
        lines.append(f"{row['cpu'] + row['children_cpu']:8.1f} {row['wall']:8.1f}  {row['test']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SUITE_PROFILE", "."))))
