"""What a check prints: the text report or the JSON on stdout, the user's traceback on stderr, and
what ``--write`` did. One rank of a DDP launch prints through the same functions (:mod:`.ranks`).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import dataclass
from typing import Any

from ..fix import WriteRefused, apply_to_file, unified_diff
from ..pipeline.core import CheckResult
from ..present.text import fix_label, render_text
from ..replay.cells import Cell
from .channel import Channel

EXIT = {"ok": 0, "inplace_error": 1, "other_error": 2}


@dataclass
class WriteOutcome:
    written: bool
    message: str
    path: str | None = None
    backup: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "message": self.message, "path": self.path, "backup": self.backup}


def write_fix(path: str, cells: list[Cell], fixes: list[dict[str, Any]]) -> WriteOutcome:
    """``--write``: the best of ``fixes``, when it is verified, through the backup-safe writer."""
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


def report_text(
    result: CheckResult, cells: list[Cell], *, diff: bool, ok: str | None = "ok: every cell ran without error"
) -> str:
    """The report on stdout (the user's traceback goes to stderr, see :func:`deliver`); ``ok`` is
    what a run without error says (None: nothing)."""
    out: list[str] = []
    if result.status == "ok":
        if ok is not None:
            out.append(ok)
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


def deliver(
    args: argparse.Namespace,
    cells: list[Cell],
    result: CheckResult,
    channel: Channel | None,
    target: str,
    *,
    json_out: dict[str, Any] | None = None,
    text: str | None = None,
    fixes: list[dict[str, Any]] | None = None,
) -> None:
    """Once the check is done: write the fix (``--write``: the best of ``fixes``, by default the
    diagnosis'), tell the watcher, then print the user's traceback on stderr and the report
    (``text``, by default :func:`report_text`) or the JSON (``json_out``, by default the result's) on
    stdout, and what the write did."""
    if result.interrupted:
        # a second Ctrl-C (a terminal and the watching parent may both send one) must not cut the report
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if fixes is None and result.diagnosis is not None:
        fixes = result.diagnosis.fixes
    write = write_fix(target, cells, fixes) if args.write and fixes is not None else None
    if channel is not None:
        channel.finished()
    if result.traceback:
        print(result.traceback, end="", file=sys.stderr)
    if args.json:
        out = result.to_json() if json_out is None else json_out
        if write is not None:
            out["write"] = write.to_json()
        print(json.dumps(out, indent=2, default=str))
    else:
        print(report_text(result, cells, diff=args.fix or args.write) if text is None else text)
    if write is not None and write.written and not args.json:
        print(f"\nW{write.message[1:]}")
    elif write is not None and not write.written:
        print(f"inplace-magic: {write.message}", file=sys.stderr)
