"""The check itself: read the cells, run them through the pipeline, print the report or the JSON.

The user's output never reaches our stdout under ``--json``: while their code runs, fd 1 itself
points at stderr (:mod:`.stdout`), so ``os.write(1, ...)`` and a C extension's printf go there too.
stderr always carries the user's own exception as Python prints it, their frames only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from ..fix import WriteRefused, apply_to_file, unified_diff
from ..pipeline.core import CheckResult, check_cells
from ..present.text import fix_label, render_text
from ..replay.cells import Cell, UnusableInput, read_cells
from .channel import Channel
from .options import parser
from .stdout import user_output_to_stderr

EXIT = {"ok": 0, "inplace_error": 1, "other_error": 2}


@dataclass
class WriteOutcome:
    written: bool
    message: str
    path: str | None = None
    backup: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "message": self.message, "path": self.path, "backup": self.backup}


def _write(path: str, cells: list[Cell], result: CheckResult) -> WriteOutcome:
    fixes = result.diagnosis.fixes if result.diagnosis is not None else []
    best = fixes[0] if fixes else None
    if best is None or not best.get("verified"):
        return WriteOutcome(False, f"no verified fix to write; {path} is unchanged")
    try:
        written = apply_to_file(path, cells, best)
    except (OSError, WriteRefused) as exc:
        return WriteOutcome(False, f"could not write the fix ({exc}); {path} is unchanged")
    message = f"wrote the fix to {written.path} ({fix_label(best)}); the original is in {written.backup}"
    if written.note:
        message += f" ({written.note})"
    return WriteOutcome(True, message, written.path, written.backup)


def report_text(result: CheckResult, cells: list[Cell], *, diff: bool) -> str:
    """The report on stdout (the user's traceback goes to stderr, see :func:`main`)."""
    out: list[str] = []
    if result.status == "ok":
        out.append("ok: every cell ran without error")
    elif result.diagnosis is not None:
        out.append(render_text(result.diagnosis))
        if diff:
            out += _diff(cells, result.diagnosis.fixes)
    out += [f"Note: {note}" for note in result.notes]
    if result.executions.total > 1:
        out.append(result.executions.sentence())
    return "\n".join(out)


def _diff(cells: list[Cell], fixes: list[dict[str, Any]]) -> list[str]:
    if not fixes:
        return ["", "No fix could be proposed for this error."]
    best = fixes[0]
    out = ["", f"The suggested fix as a diff ({fix_label(best)}):", unified_diff(cells, best).rstrip("\n")]
    out += [f"  alternative ({fix_label(other)}): {other.get('title', '')}" for other in fixes[1:4]]
    return out


def main(argv: list[str] | None = None, channel_fd: int | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, --version (0) or a bad command line (3)
        return int(done.code or 0)
    diff = args.fix or args.write
    channel = Channel(channel_fd) if channel_fd is not None else None
    try:
        cells = read_cells(args.path)
    except UnusableInput as exc:
        if channel is not None:
            channel.finished()
        print(f"inplace-magic: {exc}", file=sys.stderr)
        return 3
    target = os.path.abspath(args.path)  # the file checked, wherever the code moves the working folder
    with user_output_to_stderr(args.json):
        result = check_cells(
            cells,
            script_path=args.path,
            with_fixes=not args.no_fix,
            time_limit_s=args.time_limit,
            skip_shell=args.skip_shell,
            watcher=channel.watching(lambda provisional: report_text(provisional, cells, diff=diff))
            if channel
            else None,
        )
    if result.interrupted:
        # a second Ctrl-C (a terminal and the watching parent may both send one) must not cut the report
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    write = _write(target, cells, result) if args.write and result.diagnosis is not None else None
    if channel is not None:
        channel.finished()
    if result.traceback:
        print(result.traceback, end="", file=sys.stderr)
    if args.json:
        out = result.to_json()
        if write is not None:
            out["write"] = write.to_json()
        print(json.dumps(out, indent=2, default=str))
    else:
        print(report_text(result, cells, diff=diff))
    if write is not None and write.written and not args.json:
        print(f"\nW{write.message[1:]}")
    elif write is not None and not write.written:
        print(f"inplace-magic: {write.message}", file=sys.stderr)
    return EXIT[result.status]
