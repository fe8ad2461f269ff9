"""``inplace-magic check`` on the ranks of a DDP launch: ``--nproc N`` starts them; under torchrun
this process is one of them.

One report comes out, printed by one rank (the lowest rank with an in-place error, else the lowest
with another error, else rank 0), and one exit code: 1 when any rank's in-place error was
diagnosed, else 2 when a rank failed otherwise or was lost, else 0. ``--nproc`` exits with that
code; torchrun replaces a failing worker's code by its own 1. The other ranks print nothing of
ours, exit 0 once the report is out, and the reporting rank waits for them to exit first (torchrun
kills every rank as soon as one exits with an error, which would read as a second failure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
import traceback
from typing import Any

from .fix import apply_to_file, unified_diff
from .pipeline.distributed import MAX_LAUNCH_CHECKS, DistributedCheck, check_distributed
from .present.ranks import rank_summary
from .present.text import fix_label, render_text
from .replay.cells import Cell
from .replay.launch import LocalLaunch
from .replay.process_group import World

EXIT = {"ok": 0, "inplace_error": 1, "other_error": 2}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_EXIT_WAIT_S = 10.0  # how long the reporting rank waits for the others' processes to end


def in_launch() -> bool:
    """This process is one rank of a launch (torchrun's variables are set)."""
    return World.from_env() is not None


def main(args: argparse.Namespace, cells: list[Cell], argv: list[str]) -> int:
    """``inplace-magic check`` with ``--nproc N``, or as one rank of a launch."""
    world = World.from_env()
    if args.nproc is not None:
        if world is not None:
            message = "--nproc starts the ranks itself; leave it out under torchrun"
            print(f"inplace-magic: {message}", file=sys.stderr)
            return 3
        if args.nproc < 1:
            print(f"inplace-magic: --nproc needs at least one rank, got {args.nproc}", file=sys.stderr)
            return 3
        return launch(args.nproc, argv)
    assert world is not None
    return run_rank(args, cells, world)


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


def launch(nproc: int, argv: list[str]) -> int:
    """Start ``nproc`` ranks of ``inplace-magic check`` here and return the report's exit code."""
    ranks = LocalLaunch(nproc, python_path=_PACKAGE_ROOT)
    ranks.start([sys.executable, "-m", "inplace_magic", *without_nproc(argv)])
    codes = ranks.wait(finished=lambda: ranks.channel.get("printed") is not None)
    printed = ranks.channel.get("printed")
    if printed is None:
        by_rank = ", ".join(f"rank {r}: {code}" for r, code in enumerate(codes))
        print(f"inplace-magic: no rank printed a report (exit codes {by_rank})", file=sys.stderr)
        return 2
    return int(printed["code"])


def run_rank(args: argparse.Namespace, cells: list[Cell], world: World) -> int:
    """This process's part of a distributed check; prints the report when it is the reporter."""
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        check = check_distributed(cells, args.path, with_fixes=not args.no_fix, world=world)
    if not check.is_reporter:
        return _after_report(check)
    code = EXIT[check.status]
    _print(args, cells, check)
    check.channel.put("printed", {"code": code, "rank": world.rank})
    _wait_for_the_others(check)
    return code


def _print(args: argparse.Namespace, cells: list[Cell], check: DistributedCheck) -> None:
    own = check.own
    if args.json:
        print(json.dumps(check.to_json(), indent=2, default=str))
    else:
        ranks = [r.to_json() for r in check.ranks]
        print(rank_summary(check.world.world_size, check.world.launcher, ranks, check.reporter))
        print()
        if check.status == "ok":
            print(f"ok: every cell ran without error on all {check.world.world_size} ranks")
        elif own.status == "other_error" and own.exception is not None:
            traceback.print_exception(own.exception, file=sys.stdout)
        elif own.diagnosis is not None:
            print(render_text(own.diagnosis))
            for note in check.notes:
                print(f"Note: {note}")
            if args.fix or args.write:
                _print_fix(cells, own.diagnosis.fixes)
    if args.write and own.diagnosis is not None:
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            _write(args.path, cells, own.diagnosis.fixes)
    if args.json and own.status == "other_error" and own.exception is not None:
        traceback.print_exception(own.exception)


def _print_fix(cells: list[Cell], fixes: list[dict[str, Any]]) -> None:
    if not fixes:
        print("\nNo fix could be proposed for this error.")
        return
    best = fixes[0]
    print(f"\nThe suggested fix as a diff ({fix_label(best)}):")
    print(unified_diff(cells, best), end="")
    for note in best.get("notes", []):
        print(f"  note: {note}")


def _write(path: str, cells: list[Cell], fixes: list[dict[str, Any]]) -> None:
    best = fixes[0] if fixes else None
    if best is None or not best.get("verified"):
        print(f"inplace-magic: no fix verified under the launch; {path} is unchanged", file=sys.stderr)
        return
    try:
        apply_to_file(path, cells, best)
    except (OSError, ValueError) as exc:
        print(f"inplace-magic: could not write the fix ({exc}); {path} is unchanged", file=sys.stderr)
        return
    print(f"\nWrote the fix to {path} ({fix_label(best)}); the original is in {path}.bak")


def _after_report(check: DistributedCheck) -> int:
    """A rank that does not report: wait until the report is out, say so, and exit 0."""
    # the reporter may first verify fixes, each a re-run of every rank
    deadline = time.monotonic() + (MAX_LAUNCH_CHECKS + 1) * (check.wait_s + 30.0)
    printed = None
    while time.monotonic() < deadline:
        printed = check.channel.get("printed")
        if printed is not None or check.channel.get(f"gone/{check.reporter}") is not None:
            break
        time.sleep(0.05)
    check.channel.publish("exiting", {"pid": os.getpid(), "host": socket.gethostname()})
    if printed is None:
        print(
            f"inplace-magic (rank {check.world.rank}): rank {check.reporter} printed no report",
            file=sys.stderr,
        )
        return 2
    return 0


def _wait_for_the_others(check: DistributedCheck) -> None:
    """Return once the other ranks' processes have ended (or after a few seconds)."""
    rank, host = check.world.rank, socket.gethostname()
    check.channel.publish("exiting", {"pid": os.getpid(), "host": host})
    others = check.channel.gather("exiting", _EXIT_WAIT_S)
    pids = [a["pid"] for r, a in others.items() if r != rank and isinstance(a, dict) and a["host"] == host]
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
