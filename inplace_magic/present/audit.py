"""The audit's text report (``--audit``, ``%%gradcheck --audit``): each silent hazard as a diagnosis
is shown, under a title that says PyTorch did not detect it, then the compiled-versus-eager check."""

from __future__ import annotations

from typing import Any

from ..diagnose.diagnosis import Diagnosis
from ..diagnose.silent import SILENT
from ..fix import unified_diff
from ..replay.cells import Cell
from .text import fix_label, render_text
from .words import without_comment


def _times(n: int) -> str:
    return "1 saved tensor" if n == 1 else f"{n} saved tensors"


def _compiled(compiled: dict[str, Any]) -> list[str]:
    if not compiled.get("differ"):
        if compiled.get("compared"):
            return [f"torch.compile: the first backward's {compiled['compared']} gradients match eager."]
        return [f"torch.compile: {note}" for note in compiled.get("notes", [])]
    out = [
        f"Silent in-place hazard ({SILENT}): torch.compile computes other gradients than eager",
        "    differ   " + ", ".join(compiled.get("mismatched", [])[:6]),
        f"    against  {compiled.get('reference')}",
    ]
    writer = compiled.get("inplace")
    if isinstance(writer, dict):
        where = f"cell {writer.get('cell')}" if writer.get("cell") is not None else str(writer.get("file"))
        code = without_comment(str(writer.get("code") or ""))
        out.append(f"    in-place {writer.get('op')} at {where}, line {writer.get('line')}: {code}")
        if compiled.get("hidden_error"):
            out.append(
                "    Eager PyTorch raises its in-place error at this write; the compiled graph ran backward "
                "from the overwritten values. The fix of the hazard above applies."
            )
        else:
            out.append(
                "    This write inside the compiled function has another effect compiled than eager (the "
                "compiled graph dropped or moved it); write it out of place."
            )
    out += [f"    note     {note}" for note in compiled.get("notes", [])]
    return out


def render_audit(
    diagnoses: list[Diagnosis],
    saves: list[int],
    compiled: dict[str, Any] | None,
    notes: list[str],
    cells: list[Cell],
    *,
    diff: bool = False,
) -> str:
    """The audit's findings, or one line saying it found none."""
    out: list[str] = []
    for diagnosis, count in zip(diagnoses, saves, strict=True):
        report = render_text(diagnosis).split("\n")
        report[0] = f"Silent in-place hazard ({SILENT}): {_times(count)} overwritten"
        # no error was raised: the "original error" line would name one
        report = [line for line in report if not line.startswith("Original error: ")]
        where = diagnosis.error.location
        if where is not None:
            report.insert(1, f"read by the backward at {where.label()}: {where.code.strip()}")
        out += [*report, ""]
        if diff and diagnosis.fixes:
            best = diagnosis.fixes[0]
            out += [
                f"The suggested fix as a diff ({fix_label(best)}):",
                unified_diff(cells, best).rstrip("\n"),
                "",
            ]
    if compiled is not None:
        out += [*_compiled(compiled), ""]
    if not diagnoses and not (compiled or {}).get("differ"):
        out.insert(0, "audit: no silent in-place write found")
    out += [f"Note: {note}" for note in notes]
    return "\n".join(out).rstrip("\n")
