"""The kernel-side Apply path, for when no JupyterLab extension claimed the panel's Apply event.

A kernel cannot edit notebook cells once the cell that displayed the panel has finished (the
next-input payload only rides on the reply of a running execution), so cell fixes are offered as
text to copy. Fixes to ``.py`` files are written on disk after checking that every edited line is
still what the diagnosis saw, with a backup beside the file; Undo restores it when the file is still
what we wrote. Only fixes from the panel's own state are applied: the front end sends an index,
never code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .protocol import EditView, FixView, Outcome

BACKUP_SUFFIX = ".inplace-magic.bak"


class Refused(Exception):
    """An edit does not match the file any more; nothing was written."""


@dataclass
class _Written:
    path: Path
    before: str
    after: str


def apply_edits(text: str, edits: list[EditView]) -> str:
    """``text`` with each edit's ``old`` lines at ``line`` replaced by its ``new`` lines.

    An empty ``old`` inserts before ``line``; an empty ``new`` deletes. Raises :class:`Refused` when
    an ``old`` does not match, so a file edited since the diagnosis is never overwritten.
    """
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: e.get("line", 0), reverse=True):
        start = edit.get("line", 0) - 1
        old = edit.get("old", "").split("\n") if edit.get("old") else []
        new = edit.get("new", "").split("\n") if edit.get("new") else []
        if start < 0 or lines[start : start + len(old)] != old:
            raise Refused(f"line {start + 1} is no longer `{edit.get('old', '').strip()}`")
        lines[start : start + len(old)] = new
    return "\n".join(lines)


class KernelApplier:
    """Applies and undoes the fixes of one panel, remembering what it wrote."""

    def __init__(self, base_dir: Path | None = None, error_cell: int | None = None) -> None:
        self.base_dir = base_dir or Path.cwd()
        self.error_cell = error_cell
        self._written: dict[int, list[_Written]] = {}

    def apply(self, fix: FixView) -> Outcome:
        index = fix["index"]
        files: dict[str, list[EditView]] = {}
        for edit in fix["edits"]:
            if "file" in edit:
                files.setdefault(edit["file"], []).append(edit)
        try:
            planned = [self._plan(name, edits) for name, edits in sorted(files.items())]
        except (Refused, OSError) as exc:
            return _outcome("apply", index, "none", False, f"Not applied: {exc}. Nothing was changed.")
        for item in planned:
            item.path.with_name(item.path.name + BACKUP_SUFFIX).write_text(item.before, encoding="utf-8")
            item.path.write_text(item.after, encoding="utf-8")
        self._written[index] = planned
        copy = [{"label": f"cell {k}", "text": v} for k, v in sorted(fix["cells"].items(), key=_cell_order)]
        parts = []
        if planned:
            names = ", ".join(str(p.path.name) for p in planned)
            parts.append(f"Wrote {names} (backup beside it, {BACKUP_SUFFIX}).")
        if copy:
            labels = ", ".join(c["label"] for c in copy)
            parts.append(
                "No JupyterLab extension took the fix and a kernel cannot edit cells: "
                f"copy the fixed {labels} below and paste it over the cell."
            )
        parts.append(self._rerun_hint(fix))
        return _outcome(
            "apply",
            index,
            "copy" if copy else "kernel-file",
            bool(planned) or not copy,
            " ".join(parts),
            copy,
        )

    def undo(self, fix: FixView) -> Outcome:
        index = fix["index"]
        written = self._written.get(index, [])
        for item in written:
            if item.path.read_text(encoding="utf-8") != item.after:
                return _outcome(
                    "undo",
                    index,
                    "kernel-file",
                    False,
                    f"Not undone: {item.path.name} changed since the fix was applied.",
                )
        for item in written:
            item.path.write_text(item.before, encoding="utf-8")
        self._written.pop(index, None)
        message = (
            "Restored " + ", ".join(p.path.name for p in written) + "." if written else "Nothing to undo."
        )
        return _outcome("undo", index, "kernel-file" if written else "copy", bool(written), message)

    def _plan(self, name: str, edits: list[EditView]) -> _Written:
        path = Path(name) if Path(name).is_absolute() else self.base_dir / name
        if path.suffix != ".py":
            raise Refused(f"{name} is not a .py file")
        before = path.read_text(encoding="utf-8")
        try:
            after = apply_edits(before, edits)
        except Refused as exc:
            raise Refused(f"{path.name} changed since the diagnosis ({exc})") from None
        return _Written(path, before, after)

    def _rerun_hint(self, fix: FixView) -> str:
        cells = sorted({int(k) for k in fix["cells"] if k.isdigit()})
        if not cells:
            return "Re-run the failing cell."
        first = cells[0]
        last = max(cells[-1], self.error_cell if self.error_cell is not None else cells[-1])
        return f"Then re-run cell {first}." if first == last else f"Then re-run cells {first}–{last}."


def _cell_order(item: tuple[str, str]) -> int:
    return int(item[0]) if item[0].isdigit() else 0


def _outcome(
    kind: str, index: int, path: str, applied: bool, message: str, copy: list[dict[str, str]] | None = None
) -> Outcome:
    return {
        "type": kind,  # type: ignore[typeddict-item]
        "fixIndex": index,
        "path": path,  # type: ignore[typeddict-item]
        "applied": applied,
        "message": message,
        "copy": copy or [],
    }
