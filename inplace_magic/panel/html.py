"""The panel as static HTML and plain text, for front ends that cannot render widgets.

Same content as the widget (headline, sites, tensor, timeline, fixes with their diffs), no script.
Every piece of user text goes through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape

from .protocol import FixView, PanelState, SiteView, Where

_LABELS = {
    "verified": "verified",
    "unverified": "not verified",
    "gradient-preserving": "gradient-preserving",
    "changes-semantics": "changes training semantics",
}
_BOX = (
    "border:1px solid var(--jp-border-color2,#ccc);border-radius:4px;padding:8px 12px;"
    "color:var(--jp-content-font-color1,inherit);background:var(--jp-layout-color1,transparent)"
)


def _where(loc: Where | None) -> str:
    if not loc:
        return ""
    code = f": <code>{escape(loc['code'])}</code>" if loc.get("code") else ""
    return f"{escape(loc.get('label', ''))}{code}"


def _site_html(title: str, site: SiteView | None) -> str:
    if site is None:
        return ""
    module = f" in <code>{escape(site['module'])}</code>" if site["module"] else ""
    mtype = f" ({escape(site['module_type'])})" if site["module_type"] else ""
    return (
        f"<li><b>{escape(title)}</b>: <code>{escape(site['op'])}</code>{module}{mtype}, "
        f"{escape(site['role'])} — {_where(site['where'])}</li>"
    )


def _fix_html(fix: FixView) -> str:
    labels = ", ".join(_LABELS[label] for label in fix["labels"])
    diffs = []
    for diff in fix["diffs"]:
        body = "\n".join(
            escape(f"{line['op']} {line['text']}" if line["op"] != "@" else f"@@ {line['text']} @@")
            for line in diff["lines"]
        )
        diffs.append(f"<div>{escape(diff['label'])}</div><pre>{body}</pre>")
    return (
        f"<li><b>{escape(fix['title'])}</b> <i>({escape(labels)})</i><br>{escape(fix['description'])}"
        f"{''.join(diffs)}</li>"
    )


def render_html(state: PanelState) -> str:
    """The panel as one self-contained HTML fragment."""
    tensor = state["tensor"]
    tensor_html = ""
    if tensor:
        param = f", parameter <code>{escape(tensor['parameter'])}</code>" if tensor["parameter"] else ""
        tensor_html = f"<p>Tensor: <code>{escape(tensor['label'])}</code>{param}</p>"
    sites = _site_html("Written in place by", state["writer"]) + _site_html(
        "View created by" if state["kind"] == "view_inplace" else "Saved for backward by", state["saver"]
    )
    timeline = "".join(
        f"<li>{escape(step['text'])} — {_where(step['where'])}</li>" for step in state["timeline"]
    )
    fixes = "".join(_fix_html(fix) for fix in state["fixes"])
    return (
        f'<div class="jp-InplaceMagic-fallback" style="{_BOX}">'
        f"<p><b>In-place autograd error</b> ({escape(state['kind'])})</p>"
        f"<p>{escape(state['headline'])}</p><p>{escape(state['explanation'])}</p>"
        f"<ul>{sites}</ul>{tensor_html}"
        + (f"<p><b>Version timeline</b></p><ol>{timeline}</ol>" if timeline else "")
        + (f"<p><b>Fixes</b></p><ol>{fixes}</ol>" if fixes else "")
        + "</div>"
    )


def render_plain(state: PanelState) -> str:
    """The panel as short plain text (the ``text/plain`` of the bundle)."""
    lines = [f"In-place autograd error ({state['kind']})", state["headline"]]
    lines += [f"  {step['text']}" for step in state["timeline"]]
    lines += [
        f"  fix {fix['index'] + 1}: {fix['title']} ({', '.join(fix['labels'])})" for fix in state["fixes"]
    ]
    return "\n".join(lines)
