"""CPU-seconds of a command and of every process it starts, by kind, sampled from /proc.

    python cpu_tree.py OUT.json -- COMMAND...   (make ui-test-cpu)

`time make ui-test` counts only the processes make reaps: the server's kernels, reaped by nobody
once the server is killed, are most of the browser tests' CPU and never show there. This samples
/proc every 0.2 s, follows every descendant of COMMAND (an orphan stays counted) and keeps each
process' last utime + stime. A process that lives under one interval is missed, and the last
interval of each is lost: a few tenths of a second in a run. Prints and writes a JSON summary:
wall, CPU by kind (kernel, chromium, node, server, other), and each kernel's CPU and lifetime.

With UI_TESTS_CPU_LOG set (make ui-test-cpu sets it), each test appends its own CPU there
(tests/cpu.ts: its worker's Node and browser, and the worker's kernel); the summary lists those
tests too, the costliest first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")
_INTERVAL_S = 0.2
_TOP = 20


def kind(cmdline: str) -> str:
    """What a process is, from its command line."""
    program = os.path.basename(cmdline.split(" ")[0])
    # the zygote the kernels are forked from (kernel_zygote.py), and the forks: its command line
    if "ipykernel" in cmdline or "kernel_zygote" in cmdline:
        return "kernel"
    # Debian's /usr/bin/chromium is a shell script that execs the browser in the same process: seen
    # before the exec, the browser's command line is still `/bin/sh /usr/bin/chromium ...`
    if "chrom" in program or "chrom" in os.path.basename(cmdline.split(" ")[1] if " " in cmdline else ""):
        return "chromium"
    if "jupyterlab" in cmdline or "jupyter-lab" in cmdline:
        return "server"
    if program in ("node", "npm", "npx") or "playwright" in cmdline:
        return "node"
    return "other"


def processes() -> dict[int, tuple[int, int, int]]:
    """Every process now: pid -> (parent pid, CPU ticks so far, start time)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    text = stat.read()
            except OSError:  # it ended meanwhile
                continue
            fields = text[text.rindex(")") + 2 :].split()
            found[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19]))
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class _Seen:
    kind: str
    command: str
    first_s: float
    last_s: float = 0.0
    ticks: int = 0


def _per_test(log: str | None) -> list[dict]:
    """The tests' own records (tests/cpu.ts), the costliest first; none without the log."""
    if not log or not os.path.exists(log):
        return []
    with open(log) as file:
        lines = [json.loads(line) for line in file if line.strip()]
    return sorted(lines, key=lambda line: -(line["node_s"] + line["browser_s"] + (line["kernel_s"] or 0)))


def main(out: str, command: list[str]) -> int:
    started = time.monotonic()
    child = subprocess.Popen(command)
    tree = {child.pid}
    seen: dict[tuple[int, int], _Seen] = {}  # by (pid, start time): a pid may be reused
    while True:
        now = processes()
        grew = True
        while grew:
            new = {pid for pid, (parent, _, _) in now.items() if parent in tree and pid not in tree}
            tree |= new
            grew = bool(new)
        tree &= now.keys()
        at = round(time.monotonic() - started, 1)
        for pid in tree:
            _, ticks, start = now[pid]
            if (pid, start) not in seen:
                line = command_line(pid)
                seen[pid, start] = _Seen(kind(line), line, at)
            seen[pid, start].ticks, seen[pid, start].last_s = ticks, at
        if child.poll() is not None and tree <= {child.pid}:
            break
        time.sleep(_INTERVAL_S)
    by_kind: dict[str, float] = {}
    for record in seen.values():
        by_kind[record.kind] = by_kind.get(record.kind, 0.0) + record.ticks / _TICK
    kernels = [
        {"cpu_s": round(r.ticks / _TICK, 1), "from_s": r.first_s, "to_s": r.last_s}
        for r in sorted(seen.values(), key=lambda r: r.first_s)
        if r.kind == "kernel"
    ]
    per_test = _per_test(os.environ.get("UI_TESTS_CPU_LOG"))
    summary = {
        "command": command,
        "exit_status": child.returncode,
        "wall_s": round(time.monotonic() - started, 1),
        "cpu_s": round(sum(by_kind.values()), 1),
        "by_kind": {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda item: -item[1])},
        "kernels": kernels,
        # the processes that cost most, to see which of a kind's CPU is whose
        "top": [
            {"cpu_s": round(r.ticks / _TICK, 1), "kind": r.kind, "command": r.command[:160]}
            for r in sorted(seen.values(), key=lambda r: -r.ticks)[:_TOP]
        ],
        "tests": per_test,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as file:
        json.dump(summary, file, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("kernels", "top", "tests")}, indent=1))
    for line in per_test:
        node, browser, kernel = line["node_s"], line["browser_s"], line["kernel_s"] or 0
        print(
            f"{node + browser + kernel:6.1f} CPU-s: node {node:5.1f} browser {browser:5.1f}"
            f" kernel {kernel:5.1f}  {line['test']}"
        )
    return child.returncode


if __name__ == "__main__":
    split = sys.argv.index("--")
    sys.exit(main(sys.argv[1], sys.argv[split + 1 :]))
