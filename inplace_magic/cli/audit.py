"""``inplace-magic check --audit``: the audit's report and exit code (:mod:`..pipeline.audit`).

An error raised by the code is reported exactly as without ``--audit``; a run that finished gets the
audit's findings: ``1`` when it found a silent hazard, ``0`` when none.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..pipeline.audit import audit_cells
from ..present.audit import render_audit
from ..present.words import times
from ..replay.cells import Cell
from .channel import Channel
from .report import EXIT, deliver, report_text
from .stdout import user_output_to_stderr


def main(args: argparse.Namespace, cells: list[Cell], channel: Channel | None) -> int:
    if args.write or args.nproc is not None:
        if channel is not None:
            channel.finished()
        option = "--write" if args.write else "--nproc"
        print(f"inplace-magic: --audit does not take {option} (yet)", file=sys.stderr)
        return 3
    target = os.path.abspath(args.path)
    with user_output_to_stderr(args.json):
        result = audit_cells(
            cells,
            script_path=args.path,
            with_fixes=not args.no_fix,
            time_limit_s=args.time_limit,
            skip_shell=args.skip_shell,
            watcher=channel.watching(lambda provisional: report_text(provisional, cells, diff=args.fix))
            if channel
            else None,
        )
    check = result.check
    text = report_text(check, cells, diff=args.fix, ok=None) if check.status != "ok" else None
    audit_text = render_audit(
        [h.diagnosis for h in result.hazards],
        [h.saves for h in result.hazards],
        result.compiled.to_json() if result.compiled is not None else None,
        result.limits() + result.notes,
        cells,
        diff=args.fix,
    )
    out = result.to_json()
    runs = out["executions"]
    parts = ["once as given"]
    if runs["audit"]:
        how = {
            1: "once more under the audit recorder",
            2: "twice for the audit (under the recorder, then compiled)",
            3: "3 times for the audit (under the recorder, then eagerly as the gradient reference, then "
            "compiled)",
        }
        parts.append(how.get(runs["audit"], f"{times(runs['audit'])} for the audit"))
    if runs["replay"]:
        parts.append("once more under the recorder to diagnose the error (the replay)")
    if runs["fix_verification"]:
        parts.append(f"{times(runs['fix_verification'])} to verify fixes")
    sentence = f"Your code ran {times(runs['total'])}: " + ", ".join(parts) + "."
    deliver(
        args,
        cells,
        check,
        channel,
        target,
        json_out=out,
        text="\n".join(t for t in (text, audit_text, sentence) if t),
    )
    return 1 if result.status == "silent_hazard" else EXIT[check.status]
