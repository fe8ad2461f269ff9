"""The kernel-side Apply path, for when no JupyterLab extension claimed the panel's Apply event.

It applies only fixes the kernel issued (:mod:`.issued`), by index: the request names a fix, the
kernel knows what the fix is. A kernel cannot edit notebook cells once the cell that displayed the
panel has finished (the next-input payload only rides on the reply of a running execution), so cell
fixes are offered as text to copy. Edits of a ``.py`` file are written only where the diagnosis
located code, after checking that every edited line is still what the diagnosis saw, through the
CLI's atomic writer (:func:`inplace_magic.fix.files.apply_to_file`: a temporary file swapped in, the
original kept as a backup); Undo restores it the same way when the file is still what was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..replay.cells import split_percent
from .issued import Issued
from .protocol import ApplyPath, CopyItem, EditView, FixView, Outcome, RequestType

MARKER = "# %%"


class Refused(Exception):
    """The fix cannot be applied as it is; nothing was written."""


@dataclass
class _Written:
    path: Path
    before: str
    after: str


def apply_edits(text: str, edits: list[EditView]) -> str:
    """``text`` with each edit's ``old`` lines at ``line`` replaced by its ``new`` lines.

    An empty ``old`` inserts before ``line`` (``line`` may be one past the end); an empty ``new``
    deletes. Raises :class:`Refused` when an ``old`` does not match, so text edited since the
    diagnosis is never overwritten. ``src/lab/edits.ts`` does the same in the browser: both run the
    vectors of ``tests/fixtures/apply/line_edits.json``.
    """
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: e["line"], reverse=True):
        start = edit["line"] - 1
        old = edit["old"].split("\n") if edit["old"] else []
        new = edit["new"].split("\n") if edit["new"] else []
        if start < 0 or start > len(lines) or lines[start : start + len(old)] != old:
            raise Refused(f"line {edit['line']} is no longer `{edit['old'].strip()}`")
        lines[start : start + len(old)] = new
    return "\n".join(lines)


def _edit_crlf(text: str, edits: list[EditView]) -> str:
    """:func:`apply_edits` on a file that may end its lines with CRLF (kept as it was)."""
    if "\r\n" not in text:
        return apply_edits(text, edits)
    return apply_edits(text.replace("\r\n", "\n"), edits).replace("\n", "\r\n")


def _write(path: Path, before: str, after: str) -> None:
    """Replace ``before`` by ``after`` in ``path`` with the CLI's writer (atomic, with a backup)."""
    from ..fix.files import apply_to_file  # the fix stage imports libcst: only when a file is written

    # the writer edits percent-format cells: say which cells changed, markers untouched
    if [line for line in before.split("\n") if line.startswith(MARKER)] != [
        line for line in after.split("\n") if line.startswith(MARKER)
    ]:
        raise Refused(f"the fix would change a `{MARKER}` line of {path.name}")
    cells, fixed = split_percent(before), split_percent(after)
    if len(cells) != len(fixed):
        raise Refused(f"the fix would change how {path.name} splits into cells")
    changes = {str(c.index): f.source for c, f in zip(cells, fixed, strict=True) if c.source != f.source}
    try:
        apply_to_file(str(path), cells, {"cells": changes})
    except (ValueError, OSError) as exc:
        raise Refused(str(exc)) from None


class KernelApplier:
    """Applies and undoes the fixes of one issued diagnosis, remembering what it wrote."""

    def __init__(self, issued: Issued) -> None:
        self.issued = issued
        self._written: dict[int, list[_Written]] = {}

    def apply(self, fix: FixView) -> Outcome:
        index = fix["index"]
        files: dict[str, list[EditView]] = {}
        for edit in fix["edits"]:
            if "file" in edit:
                files.setdefault(edit["file"], []).append(edit)
        try:
            planned = [self._plan(name, edits) for name, edits in sorted(files.items())]
        except Refused as exc:
            return outcome("apply", index, "none", False, f"Not applied: {exc}. Nothing was changed.")
        written: list[_Written] = []
        for item in planned:
            try:
                _write(item.path, item.before, item.after)
            except Refused as exc:
                self._written[index] = written  # Undo restores what was written before the failure
                names = ", ".join(w.path.name for w in written)
                done = f" {names} was written; Undo restores it." if written else " Nothing was changed."
                return outcome("apply", index, "kernel-file", False, f"Not applied in full: {exc}.{done}")
            written.append(item)
        self._written[index] = planned
        # the cells as the diagnosis named them (a kernel names them by their In[] prompt)
        named = {str(diff["cell"]): diff["label"] for diff in fix["diffs"] if diff["cell"] is not None}
        copy: list[CopyItem] = [
            {"label": named.get(k, f"cell {k}"), "text": v}
            for k, v in sorted(fix["cells"].items(), key=_cell_order)
        ]
        parts = []
        if planned:
            from ..fix.files import BACKUP_SUFFIX

            names = ", ".join(str(p.path.name) for p in planned)
            parts.append(f"Wrote {names} (the original is kept beside it, {BACKUP_SUFFIX}).")
        if copy:
            labels = ", ".join(c["label"] for c in copy)
            parts.append(
                "No JupyterLab extension took the fix and a kernel cannot edit cells: "
                f"copy the fixed {labels} below and paste it over the cell."
            )
        parts.append(fix["rerun"])
        path: ApplyPath = "copy" if copy else "kernel-file"
        return outcome("apply", index, path, bool(planned) or not copy, " ".join(parts), copy)

    def undo(self, fix: FixView) -> Outcome:
        index = fix["index"]
        written = self._written.get(index, [])
        for item in written:
            if _read(item.path) != item.after:
                message = f"Not undone: {item.path.name} changed since the fix was applied."
                return outcome("undo", index, "kernel-file", False, message)
        try:
            for item in written:
                _write(item.path, item.after, item.before)
        except Refused as exc:
            return outcome("undo", index, "kernel-file", False, f"Not undone: {exc}.")
        self._written.pop(index, None)
        if not written:
            return outcome("undo", index, "copy", False, "Nothing to undo: the kernel wrote nothing.")
        names = ", ".join(p.path.name for p in written)
        return outcome("undo", index, "kernel-file", True, f"Restored {names}.")

    def _plan(self, name: str, edits: list[EditView]) -> _Written:
        path = self.issued.resolve(name)
        if path not in self.issued.files:
            raise Refused(f"the diagnosis located no code in {name}, so the kernel does not edit it")
        if path.suffix != ".py" or not path.is_file():
            raise Refused(f"{name} is not a .py file")
        before = _read(path)
        try:
            after = _edit_crlf(before, edits)
        except Refused as exc:
            raise Refused(f"{path.name} changed since the diagnosis ({exc})") from None
        return _Written(path, before, after)


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def _cell_order(item: tuple[str, str]) -> int:
    return int(item[0]) if item[0].isdigit() else 0


def outcome(
    kind: RequestType | str,
    index: int,
    path: ApplyPath,
    applied: bool,
    message: str,
    copy: list[CopyItem] | None = None,
) -> Outcome:
    """An answer on the ``outcome`` trait (``requestId`` is filled in by the widget)."""
    return {
        "type": "undo" if kind == "undo" else "update" if kind == "update" else "apply",
        "fixIndex": index,
        "path": path,
        "applied": applied,
        "message": message,
        "copy": copy or [],
        "requestId": "",
    }
