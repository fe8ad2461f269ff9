"""The cell lines a diagnosis points at, read defensively: the dict comes from JSON.

Besides each operation's own line we take the line that constructed its module (``defined_at``),
its enclosing user frames (``stack``) and annotated alternatives (``alt``): a fix may have to land
on any of them (the ``inplace=True`` flag sits where the module was built, not where it ran).
"""

from __future__ import annotations

from typing import Any

from .model import Role, Site


def _location(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, dict):
        return None
    cell, line = value.get("cell"), value.get("line")
    if isinstance(cell, int) and isinstance(line, int) and not isinstance(cell, bool) and line >= 1:
        return cell, line
    return None


def _related(op: dict[str, Any]) -> list[Any]:
    related: list[Any] = [op, op.get("defined_at")]
    for key in ("stack", "alt"):
        extra = op.get(key)
        if isinstance(extra, list):
            related.extend(extra)
    return related


def sites_of(diagnosis: dict[str, Any]) -> list[Site]:
    """Every distinct (role, cell, line) the diagnosis names, the operation's own line first."""
    found: list[Site] = []

    def add(role: Role, value: Any) -> None:
        where = _location(value)
        if where is not None:
            site = Site(role, *where)
            if site not in found:
                found.append(site)

    for role in ("inplace", "saved_by"):
        op = diagnosis.get(role)
        if isinstance(op, dict):
            for value in _related(op):
                add(role, value)  # type: ignore[arg-type]
    skip = diagnosis.get("skip")
    if isinstance(skip, dict):
        add("merge", skip.get("merge"))
    also = diagnosis.get("also_written_by")
    if isinstance(also, list):
        for op in also:
            if isinstance(op, dict):
                for value in _related(op):
                    add("also", value)
    return found


def roles(sites: list[Site], *wanted: Role) -> list[Site]:
    return [site for site in sites if site.role in wanted]
