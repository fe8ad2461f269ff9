"""The diagnosis as static HTML, for front ends without the widget (nbconvert, classic notebooks),
and :data:`MIME_TYPE`, under which the diagnosis itself travels in a cell's outputs as JSON.

Rendering never raises on odd content: everything user-controlled is escaped.
"""

from __future__ import annotations

import html
from typing import Any

from ..diagnose.contract import DiagnosisJSON, FixJSON
from ..diagnose.diagnosis import Diagnosis, Location, OpSite, cell_name
from . import segments
from .words import fix_label, kind_name, without_comment

MIME_TYPE = "application/vnd.inplace-magic.diagnosis+json"

_STYLE = (
    "border-left: 4px solid var(--jp-warn-color1, #f57c00); padding: 6px 12px; margin: 4px 0;"
    " font-family: var(--jp-content-font-family, sans-serif); color: var(--jp-content-font-color1, inherit);"
    " background: var(--jp-layout-color1, transparent)"
)
_CODE = "font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 0.9em)"


def _e(value: object) -> str:
    try:
        return html.escape(str(value))
    except Exception:  # a user object whose str() fails
        return "?"


def _where(location: Location | None) -> str:
    if location is None:
        return "location unknown"
    line = without_comment(location.code)
    code = f' <code style="{_CODE}">{_e(line)}</code>' if line else ""
    return f"{_e(location.label())}{code}"


def _site_row(title: str, site: OpSite | None) -> str:
    if site is None:
        return f"<tr><th>{_e(title)}</th><td>not recorded</td></tr>"
    parts = [f'<code style="{_CODE}">{_e(site.op)}</code>']
    if site.optimizer:
        parts.append(f"({_e(site.optimizer)})")
    if site.module:
        kind = f" {_e(site.module_type)}" if site.module_type else ""
        parts.append(f'in module <code style="{_CODE}">{_e(site.module)}</code>{kind}')
    lines = [" ".join(parts), f"at {_where(site.location)}"]
    lines += [f"called from {_where(outer)}" for outer in site.stack[:2]]
    if site.defined_at:
        lines.append(f"built at {_where(site.defined_at)}")
    if site.role:
        lines.append(_e(site.role))
    return f"<tr><th>{_e(title)}</th><td>{'<br>'.join(lines)}</td></tr>"


def render_html(
    diagnosis: Diagnosis, report: DiagnosisJSON | None = None, headline_line: str | None = None
) -> str:
    """The HTML report; ``report`` is ``diagnosis.to_json()`` and ``headline_line`` its headline as
    plain text (:func:`~.segments.headline_line`) where the caller has them already."""
    headline_line = segments.report_headline(diagnosis, report, headline_line)
    rows = [_site_row("Written in place by", diagnosis.inplace)]
    if diagnosis.kind != "leaf_inplace":
        title = "View created by" if diagnosis.kind == "view_inplace" else "Saved for backward by"
        rows.append(_site_row(title, diagnosis.saved_by))
    t = diagnosis.tensor
    if t is not None:
        versions = ""
        if t.saved_version is not None:
            versions = f", saved at version {t.saved_version}, now {t.version}"
        param = f", parameter {_e(t.parameter)}" if t.parameter else ""
        rows.append(f"<tr><th>Tensor</th><td>{_e(t.dtype)}{_e(list(t.shape))}{_e(versions)}{param}</td></tr>")
    if diagnosis.skip is not None:
        skip = diagnosis.skip
        rows.append(
            f"<tr><th>Skip connection</th><td>branches at {_where(skip.source)}<br>"
            f"merges ({_e(skip.merge_kind)}) at {_where(skip.merge)}</td></tr>"
        )
    for other in diagnosis.also_written_by:
        rows.append(f"<tr><th>Also written by</th><td>{_where(other.location)}</td></tr>")
    body = [
        f'<div class="jp-InplaceMagic-report" style="{_STYLE}">',
        f"<div><b>In-place autograd error</b>: {_e(kind_name(diagnosis.kind))}</div>",
        f'<p class="jp-InplaceMagic-headline">{_e(headline_line)}</p>',
        f'<table class="jp-InplaceMagic-sites" style="text-align: left">{"".join(rows)}</table>',
        f"<p>{_e(diagnosis.explanation)}</p>",
    ]
    body += [f'<p class="jp-InplaceMagic-note"><i>Note: {_e(note)}</i></p>' for note in diagnosis.notes]
    if diagnosis.fixes:
        body.append(_fix_html(diagnosis.fixes[0]))
    error = diagnosis.error
    body.append(
        f"<details><summary>Original error: {_e(error.type)}</summary>"
        f'<pre style="{_CODE}; white-space: pre-wrap">{_e(error.message)}</pre></details></div>'
    )
    return "\n".join(body)


def _fix_html(fix: FixJSON | dict[str, Any]) -> str:
    label = fix_label(fix)
    edits = []
    for edit in fix.get("edits", []) or []:
        where = cell_name(edit["cell"]) if "cell" in edit else edit.get("file", "?")
        edits.append(
            f"{_e(where)}, line {_e(edit.get('line'))}\n- {_e(str(edit.get('old', '')).strip())}\n"
            f"+ {_e(str(edit.get('new', '')).strip())}"
        )
    pre = f'<pre style="{_CODE}">{chr(10).join(edits)}</pre>' if edits else ""
    title = _e(fix.get("title", ""))
    return f'<div class="jp-InplaceMagic-fix"><b>Suggested fix</b> ({_e(label)}): {title}{pre}</div>'
