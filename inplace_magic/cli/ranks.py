"""``inplace-magic check`` on the ranks of a DDP launch: ``--nproc N`` starts them; under torchrun
this process is one of them.

Every rank is an ``inplace-magic check`` of its own, with its supervising process
(:mod:`.supervisor`): ``--nproc`` starts ``python -m inplace_magic check ...`` once per rank, as
torchrun does. The supervisor passes the launch's variables on untouched; once told that its
child is a rank, it leaves stdout to the reporting rank, and a rank that ends unfinished is said
on stderr only, with the child's own exit status (so the others report it as exited, with its code).

One report comes out, printed by one rank (the lowest rank with an in-place error, else the lowest
with another error, else rank 0) through the single-process printing (:func:`.report.deliver`),
and one exit code: 1 when any rank's in-place error was diagnosed, else 2 when a rank failed
otherwise or was lost, else 0. ``--nproc`` exits with that code; torchrun replaces a failing
worker's code by its own 1. The other ranks print nothing of ours, exit 0 once the report is out,
and the reporting rank waits for them (and their supervisors) to exit first (torchrun kills every
rank as soon as one exits with an error, which would read as a second failure).

Under ``--json`` stdout carries one JSON object for the whole launch: every rank's user code runs
with fd 1 pointed at stderr (:mod:`.stdout`), and when no rank could report, ``--nproc`` prints one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import sys
import time
from typing import Any

from ..diagnose.contract import without_diagnosis
from ..pipeline.distributed import MAX_LAUNCH_CHECKS, DistributedCheck, check_distributed
from ..present.ranks import rank_summary
from ..replay.cells import Cell
from ..replay.launch import LocalLaunch
from ..replay.process_group import World
from .channel import Channel
from .report import EXIT, deliver, report_text
from .stdout import user_output_to_stderr
from .supervisor import forwarding_signals

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXIT_WAIT_S = 10.0  # how long the reporting rank waits for the others' processes to end


def in_launch() -> bool:
    """This process is one rank of a launch (torchrun's variables are set)."""
    return World.from_env() is not None


def main(args: argparse.Namespace, cells: list[Cell], argv: list[str], channel: Channel | None) -> int:
    """``inplace-magic check`` with ``--nproc N``, or as one rank of a launch."""
    world = World.from_env()
    if args.nproc is not None:
        refused = None
        if world is not None:
            refused = "--nproc starts the ranks itself; leave it out under torchrun"
        elif args.nproc < 1:
            refused = f"--nproc needs at least one rank, got {args.nproc}"
        if refused is not None:
            if channel is not None:
                channel.finished()
            print(f"inplace-magic: {refused}", file=sys.stderr)
            return 3
        return launch(args.nproc, argv, channel, json_output=args.json)
    assert world is not None
    return run_rank(args, cells, world, channel)


def without_nproc(argv: list[str]) -> list[str]:
    """The command line each rank gets: the parent's, less ``--nproc N``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: list[str], channel: Channel | None, *, json_output: bool) -> int:
    """Start ``nproc`` ranks of ``inplace-magic check`` here and return the report's exit code.

    Signals sent to this process (not a terminal's Ctrl-C, which reaches every rank itself) are
    passed on to the ranks, which end their checks as a single process does.
    """
    ranks = LocalLaunch(nproc, python_path=_PACKAGE_ROOT)
    ranks.start([sys.executable, "-m", "inplace_magic", *without_nproc(argv)])

    def report_out() -> bool:
        if ranks.channel.get("printed") is None:
            return False
        if channel is not None:
            channel.finished()
        return True

    with forwarding_signals(ranks.processes):
        codes = ranks.wait(finished=report_out)
    printed = ranks.channel.get("printed")
    if printed is not None:
        return int(printed["code"])
    if channel is not None:
        channel.finished()
    by_rank = ", ".join(f"rank {r}: {code}" for r, code in enumerate(codes))
    message = f"no rank printed a report (exit codes {by_rank})"
    if json_output:
        print(json.dumps(_no_report(nproc, codes, message), indent=2))
    print(f"inplace-magic: {message}", file=sys.stderr)
    return 2


def _no_report(nproc: int, codes: list[int], message: str) -> dict[str, Any]:
    """The launch's JSON when every rank ended before one could report (stdout still has one object)."""
    return {
        **without_diagnosis(
            "other_error", {"type": "RankLost", "message": message, "cell": None, "line": None}, []
        ),
        "traceback": "",
        "executions": {"run": 1, "replay": 0, "fix_verification": 0, "total": 1},
        "internal_errors": [],
        "world_size": nproc,
        "launcher": "inplace-magic --nproc",
        "reporter": None,
        "failed_ranks": [],
        "ranks": [
            {"rank": r, "status": "missing", "reason": f"rank {r} exited (code {code}) before it answered"}
            for r, code in enumerate(codes)
        ],
    }


def run_rank(args: argparse.Namespace, cells: list[Cell], world: World, channel: Channel | None) -> int:
    """This process's part of a distributed check; prints the report when it is the reporter."""
    target = os.path.abspath(args.path)  # the file checked, wherever the code moves the working folder
    diff = args.fix or args.write
    if channel is not None:
        channel.rank(world.rank)
    with user_output_to_stderr(args.json):
        check = check_distributed(
            cells,
            args.path,
            with_fixes=not args.no_fix,
            world=world,
            time_limit_s=args.time_limit,
            skip_shell=args.skip_shell,
            watcher=channel.watching(lambda provisional: report_text(provisional, cells, diff=diff))
            if channel
            else None,
        )
    if not check.is_reporter:
        if channel is not None:  # the reporter may verify fixes first, each a re-run of every rank
            channel.stage("report", _report_wait_s(check), check.own)
        code = _after_report(check, channel)
        if channel is not None:
            channel.finished()
        return code
    # the reporter's own result, with the launch's notes; its text below the ranks' summary
    result = dataclasses.replace(check.own, notes=[*check.notes, *check.own.notes])
    n = check.world.world_size
    ok = f"ok: every cell ran without error on all {n} ranks" if check.status == "ok" else None
    summary = rank_summary(n, check.world.launcher, [r.to_json() for r in check.ranks], check.reporter)
    text = f"{summary}\n\n{report_text(result, cells, diff=diff, ok=ok)}".rstrip("\n")
    deliver(args, cells, result, channel, target, json_out=check.to_json(), text=text)
    code = EXIT[check.status]
    check.channel.put("printed", {"code": code, "rank": world.rank})
    _wait_for_the_others(check, channel)
    return code


def _processes(channel: Channel | None) -> list[int]:
    """This rank's processes: this one, and the supervisor watching it (it exits right after)."""
    return [os.getpid()] if channel is None else [os.getpid(), os.getppid()]


def _report_wait_s(check: DistributedCheck) -> float:
    """How long a rank waits for the report: the reporter may first verify fixes, each a re-run of
    every rank."""
    return (MAX_LAUNCH_CHECKS + 1) * (check.wait_s + 30.0)


def _after_report(check: DistributedCheck, channel: Channel | None) -> int:
    """A rank that does not report: wait until the report is out, say so, and exit 0."""
    deadline = time.monotonic() + _report_wait_s(check)
    printed = None
    while time.monotonic() < deadline:
        printed = check.channel.get("printed")
        if printed is not None or check.channel.get(f"gone/{check.reporter}") is not None:
            break
        time.sleep(0.05)
    check.channel.publish("exiting", {"pids": _processes(channel), "host": socket.gethostname()})
    if printed is None:
        print(
            f"inplace-magic (rank {check.world.rank}): rank {check.reporter} printed no report",
            file=sys.stderr,
        )
        return 2
    return 0


def _wait_for_the_others(check: DistributedCheck, channel: Channel | None) -> None:
    """Return once the other ranks' processes have ended (or after a few seconds)."""
    rank, host = check.world.rank, socket.gethostname()
    check.channel.publish("exiting", {"pids": _processes(channel), "host": host})
    others = check.channel.gather("exiting", _EXIT_WAIT_S)
    pids = [
        pid
        for r, answer in others.items()
        if r != rank and isinstance(answer, dict) and answer["host"] == host
        for pid in answer["pids"]
    ]
    deadline = time.monotonic() + _EXIT_WAIT_S
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """True while ``pid`` runs; an exited process waiting for its parent to reap it has ended."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, 0)
            return True
        return False
