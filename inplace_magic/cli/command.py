"""The check itself: read the cells, run them through the pipeline, print the report or the JSON
(:mod:`.report`); a DDP launch (``--nproc``, or this process is a rank of one) goes to :mod:`.ranks`.

The user's output never reaches our stdout under ``--json``: while their code runs, fd 1 itself
points at stderr (:mod:`.stdout`), so ``os.write(1, ...)`` and a C extension's printf go there too.
stderr always carries the user's own exception as Python prints it, their frames only.

With fixes asked for, the watched check (the command's child) forks the fix sandbox's fork server
from itself before the user's code runs (:mod:`..fix.sandbox.fork_here`): torch is imported once,
not again in a server interpreter. When the replay starts, the server imports what the worker
imports lazily (``torch._dynamo``, beside the replay, not before the first fix; a check without an
in-place error never replays, and pays only the fork). Where the check cannot fork (an in-process
check, as the tests', in a process that imported torch before), the server starts then as a new
interpreter (:mod:`..fix.sandbox.processes`).
"""

from __future__ import annotations

import os
import sys

from ..fix.sandbox import fork_here, processes
from ..pipeline.core import CheckResult, check_cells
from ..replay.cells import UnusableInput, read_cells
from . import audit, ranks, torch_first
from .channel import Channel
from .options import parser
from .report import EXIT, deliver, report_text
from .stdout import user_output_to_stderr


def main(argv: list[str] | None = None, channel_fd: int | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, --version (0) or a bad command line (3)
        return int(done.code or 0)
    diff = args.fix or args.write
    try:
        cells = read_cells(args.path)
    except UnusableInput as exc:
        if channel_fd is not None:
            Channel(channel_fd).finished()
        print(f"inplace-magic: {exc}", file=sys.stderr)
        return 3
    if channel_fd is not None and not (args.no_fix or args.nproc is not None or ranks.in_launch()):
        # the sandbox's fork server (the check's fixes or the audit's): before the channel's file
        # object exists, so the server closes the bare descriptor; a worker it forks leaves through
        # here with SystemExit (nothing below catches it). Where it cannot fork, the first fix starts one.
        fork_here.fork_server_here(torch_first.THREADS, close=(channel_fd,))
    channel = Channel(channel_fd) if channel_fd is not None else None
    if args.audit:
        return audit.main(args, cells, channel)
    # a distributed check: --nproc launches the ranks, or this process is one of them (torchrun)
    if args.nproc is not None or ranks.in_launch():
        return ranks.main(args, cells, sys.argv[1:] if argv is None else argv, channel)
    target = os.path.abspath(args.path)  # the file checked, wherever the code moves the working folder
    watching = (
        channel.watching(lambda provisional: report_text(provisional, cells, diff=diff)) if channel else None
    )
    with user_output_to_stderr(args.json):
        result = check_cells(
            cells,
            script_path=args.path,
            with_fixes=not args.no_fix,
            time_limit_s=args.time_limit,
            skip_shell=args.skip_shell,
            watcher=watching if args.no_fix else _SandboxEarly(watching),
        )
    deliver(args, cells, result, channel, target)
    return EXIT[result.status]


class _SandboxEarly:
    """The pipeline's watcher when fixes are asked for: passes everything on to the channel (if any),
    and readies the sandbox's fork server when the replay starts (only an in-place error gets one)."""

    def __init__(self, channel: Channel | None) -> None:
        self._channel = channel

    def cell(self, index: int) -> None:
        if self._channel is not None:
            self._channel.cell(index)

    def stage(self, name: str, seconds: float, provisional: CheckResult) -> None:
        if name == "replay":
            processes.start_early()
        if self._channel is not None:
            self._channel.stage(name, seconds, provisional)
