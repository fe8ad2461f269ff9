"""What a replay in a forked child of the kernel would cost (issue 15's "a replay whose writes need no
undo"), measured before building it.

A child forked at the diagnosis has the kernel's state for free and its writes vanish with it: no undo
log, no snapshot, no restore. What it pays instead is measured here, in a process that holds torch and
the tiny ResNet as a kernel would, in thread CPU time (the parent's) and the children's CPU time
(``RUSAGE_CHILDREN``, which the parent's thread clock does not see but the user waits for all the same):

* the fork itself, in the parent (its page tables are copied);
* a child that does nothing but exit (its own share of the fork, and tearing its address space down);
* the failing step run in the child against the same step in the parent: the child's first touch of
  each page the step reads faults (copy-on-write for what it writes, a refault for torch's code),
  measured as minor page faults.

``python benchmarks/fork_cost.py [REPEATS]`` prints the medians and writes them to
``benchmarks/results/fork_cost.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import make_step  # noqa: E402  (the benchmarks' models, beside this file)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _forked(work: Callable[[], None]) -> dict[str, float]:
    """Fork, run ``work`` in the child, wait for it: the parent's thread CPU, the child's CPU, and
    what the child measured of ``work`` itself (its CPU time and minor page faults)."""
    read, write = os.pipe()
    before_children, before = _children_cpu(), time.thread_time()
    pid = os.fork()
    if pid == 0:  # the child: one intra-op thread first (libgomp's pool does not survive a fork)
        os.close(read)
        torch.set_num_threads(1)
        faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.thread_time()
        work()
        spent = time.thread_time() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        os.write(write, json.dumps([spent, faults]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        spent, faults = json.loads(pipe.read() or b"[0, 0]")
    os.waitpid(pid, 0)
    return {
        "parent_ms": (time.thread_time() - before) * 1e3,
        "child_ms": (_children_cpu() - before_children) * 1e3,
        "work_in_child_ms": spent * 1e3,
        "faults_in_child": faults,
    }


def fork_cost(repeats: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    step = make_step("resnet-tiny", buggy=True)

    def failing_step() -> None:
        with contextlib.suppress(RuntimeError):  # the in-place error, as in the kernel's failed cell
            step()

    for _ in range(5):
        failing_step()  # the parent is warm, as a kernel is after the failed run
    in_parent = []
    for _ in range(repeats):
        start = time.thread_time()
        failing_step()
        in_parent.append((time.thread_time() - start) * 1e3)
    empty = [_forked(lambda: None) for _ in range(repeats)]
    stepped = [_forked(failing_step) for _ in range(repeats)]

    def median(samples: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(s[key] for s in samples), 2)

    return {
        "step_in_parent_ms": round(statistics.median(in_parent), 2),
        "fork_in_parent_ms": median(empty, "parent_ms"),
        "empty_child_ms": median(empty, "child_ms"),
        "step_in_child_ms": median(stepped, "work_in_child_ms"),
        "step_in_child_faults": median(stepped, "faults_in_child"),
        "child_with_step_ms": median(stepped, "child_ms"),
        "runs": repeats,
    }


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    result = fork_cost(repeats)
    print(json.dumps(result, indent=2))
    (HERE / "results" / "fork_cost.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
