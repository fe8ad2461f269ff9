"""The readable text report of a diagnosis (terminal, CLI, nbconvert)."""

from __future__ import annotations

import textwrap

from ..diagnose.contract import DiagnosisJSON
from ..diagnose.diagnosis import Diagnosis, Location, OpSite, cell_name
from . import segments
from .words import fix_label, kind_name, without_comment

__all__ = ["fix_label", "render_text"]


def _loc(location: Location | None) -> str:
    if location is None:
        return "location unknown"
    code = without_comment(location.code)
    code = code if len(code) <= 90 else code[:87] + "..."
    return f"{location.label()}: {code}" if code else location.label()


def _site(title: str, site: OpSite | None) -> list[str]:
    if site is None:
        return [f"{title}: not recorded"]
    lines = [f"{title}: {site.op}" + (f"  ({site.optimizer})" if site.optimizer else "")]
    if site.module:
        lines.append(f"    module   {site.module}" + (f"  {site.module_type}" if site.module_type else ""))
    lines.append(f"    at       {_loc(site.location)}")
    for outer in site.stack[:2]:
        lines.append(f"    called   {_loc(outer)}")
    if site.defined_at:
        lines.append(f"    built at {_loc(site.defined_at)}")
    if site.role:
        lines.append(f"    role     {site.role}")
    if site.names:
        lines.append(f"    names    {', '.join(site.names)}")
    return lines


def render_text(
    diagnosis: Diagnosis, report: DiagnosisJSON | None = None, headline_line: str | None = None
) -> str:
    """The text report; ``report`` is ``diagnosis.to_json()`` and ``headline_line`` its headline as
    plain text (:func:`~.segments.headline_line`) where the caller has them already."""
    headline_line = segments.report_headline(diagnosis, report, headline_line)
    name = kind_name(diagnosis.kind)
    title = "In-place autograd error" if name == kind_name("other") else f"In-place autograd error: {name}"
    out = [title, ""]
    out += textwrap.wrap(headline_line, 100)
    out.append("")
    out += _site("WRITTEN IN PLACE BY", diagnosis.inplace)
    saver_title = "VIEW CREATED BY" if diagnosis.kind == "view_inplace" else "SAVED FOR BACKWARD BY"
    if diagnosis.kind != "leaf_inplace":
        out += _site(saver_title, diagnosis.saved_by)
    t = diagnosis.tensor
    if t is not None:
        versions = (
            f", saved at version {t.saved_version}, now {t.version}" if t.saved_version is not None else ""
        )
        param = f"  parameter {t.parameter}" if t.parameter else ""
        out.append(f"TENSOR: {t.dtype}{list(t.shape)}{versions}{param}")
    skip = diagnosis.skip
    if skip is not None:
        out.append(f"SKIP CONNECTION / BRANCH (merge: {skip.merge_kind})")
        out.append(f"    from     {_loc(skip.source)}")
        out.append(f"    merge    {_loc(skip.merge)}")
    for other in diagnosis.also_written_by:
        out.append(f"ALSO WRITTEN BY: {other.op} at {_loc(other.location)}")
    out.append("")
    out += textwrap.wrap(diagnosis.explanation, 100)
    for note in diagnosis.notes:
        out += textwrap.wrap("Note: " + note, 100)
    if diagnosis.fixes:
        best = diagnosis.fixes[0]
        out += ["", f"SUGGESTED FIX ({fix_label(best)}): {best.get('title', '')}"]
        for edit in best.get("edits", []):
            where = cell_name(edit["cell"]) if "cell" in edit else edit.get("file", "?")
            out.append(f"    {where}, line {edit.get('line')}:")
            for sign, text in (("-", edit.get("old") or ""), ("+", edit.get("new") or "")):
                out += [f"      {sign} {line}" for line in text.rstrip("\n").split("\n") if line.strip()]
    out += ["", f"Original error: {diagnosis.error.type}: {diagnosis.error.message.splitlines()[0][:300]}"]
    return "\n".join(out)
