"""``inplace-magic check --audit``: the audit's report and exit code (:mod:`..pipeline.audit`).

An error raised by the code is reported exactly as without ``--audit``; a run that finished gets the
audit's findings: ``1`` when it found a silent hazard, ``0`` when none.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..pipeline.audit import AuditResult, audit_cells
from ..present.audit import render_audit
from ..present.words import times
from ..replay.cells import Cell
from .channel import Channel
from .ranks import in_launch
from .report import EXIT, deliver, report_text
from .stdout import user_output_to_stderr

# Why a launch is refused (exit 3) rather than audited rank by rank: the audit runs the code again
# after it finished (under the recorder, then compiled, then for each fix), and under DDP each such run
# needs every rank to run it too, in lockstep, in a fresh process group; the distributed check
# (pipeline/distributed.py) gives a lockstep re-run only to replay an in-place error.
NPROC_REFUSED = (
    "--audit does not take --nproc or a torchrun launch: the audit runs the code again after it "
    "finished, and under DDP every rank would have to run again with it, in lockstep, which only the "
    "replay of an in-place error does. Audit the training step in one process (without DDP), or run "
    "the distributed check without --audit."
)


def _fixes_to_write(result: AuditResult) -> list[dict[str, Any]] | None:
    """``--write`` after an audit: an error's fixes as without ``--audit``; else those of the first
    hazard that has a verified fix (one write per run: run again for the next)."""
    if result.check.diagnosis is not None:
        return None  # the check's own
    for hazard in result.hazards:
        if any(f.get("verified") for f in hazard.diagnosis.fixes):
            return hazard.diagnosis.fixes
    return result.hazards[0].diagnosis.fixes if result.hazards else None


def main(args: argparse.Namespace, cells: list[Cell], channel: Channel | None) -> int:
    if args.nproc is not None or in_launch():
        if channel is not None:
            channel.finished()
        print(f"inplace-magic: {NPROC_REFUSED}", file=sys.stderr)
        return 3
    target = os.path.abspath(args.path)
    diff = args.fix or args.write
    with user_output_to_stderr(args.json):
        result = audit_cells(
            cells,
            script_path=args.path,
            with_fixes=not args.no_fix,
            time_limit_s=args.time_limit,
            skip_shell=args.skip_shell,
            watcher=channel.watching(lambda provisional: report_text(provisional, cells, diff=diff))
            if channel
            else None,
        )
    check = result.check
    text = report_text(check, cells, diff=diff, ok=None) if check.status != "ok" else None
    audit_text = render_audit(
        [h.diagnosis for h in result.hazards],
        [h.saves for h in result.hazards],
        result.compiled.to_json() if result.compiled is not None else None,
        result.limits() + result.notes,
        cells,
        diff=diff,
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
        fixes=_fixes_to_write(result),
    )
    return 1 if result.status == "silent_hazard" else EXIT[check.status]
