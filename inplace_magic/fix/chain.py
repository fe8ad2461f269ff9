"""When a fix clears the error but uncovers the next in-place error, fix that one too (once).

The second round generates candidates on the fixed cells from the engine's diagnosis of the new
error when there is one, else from the first diagnosis with its lines moved to where they now are
plus the new error's own line (leaf and view errors are raised at the write itself). Each result
carries both rewrites.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from ..replay.cells import Cell
from . import generate
from .context import Context
from .judge import where
from .model import Candidate, Site
from .sandbox.verify import apply

MAX_CHAINED = 4


def line_map(old: str, new: str) -> dict[int, int]:
    """1-based old line → the line it became (or the nearest survivor) in ``new``."""
    mapping: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, old.split("\n"), new.split("\n"), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2):
            if tag == "equal":
                mapping[i + 1] = j1 + (i - i1) + 1
            else:
                mapping[i + 1] = min(j1 + (i - i1), max(j2 - 1, j1)) + 1
    return mapping


def _remap(value: Any, maps: dict[int, dict[int, int]]) -> Any:
    if isinstance(value, list):
        return [_remap(v, maps) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _remap(v, maps) for k, v in value.items()}
    cell, line = out.get("cell"), out.get("line")
    if isinstance(cell, int) and isinstance(line, int) and cell in maps:
        out["line"] = maps[cell].get(line, line)
    return out


def moved(cells: list[Cell], diagnosis: dict[str, Any], base: Candidate) -> dict[str, Any]:
    """A copy of ``diagnosis`` with every ``{cell, line}`` moved to where it is in ``base``'s cells."""
    by_index = {c.index: c.source for c in cells}
    maps = {i: line_map(by_index[i], text) for i, text in base.cells.items() if i in by_index}
    result: dict[str, Any] = _remap(copy.deepcopy(diagnosis), maps)
    return result


def _site(op: Any) -> tuple[Any, Any, Any] | None:
    return (op.get("cell"), op.get("file"), op.get("line")) if isinstance(op, dict) else None


def same_error(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Both diagnoses name the same in-place op and the same saver (lines in the same cells)."""
    return all(_site(first.get(k)) == _site(second.get(k)) for k in ("inplace", "saved_by"))


def candidates(
    cells: list[Cell], diagnosis: dict[str, Any], base: Candidate, error: dict[str, Any]
) -> list[Candidate]:
    """Fixes of the next error on top of ``base``; ``diagnosis`` refers to ``base``'s cells."""
    extra = []
    if isinstance(error.get("cell"), int) and isinstance(error.get("line"), int):
        extra.append(Site("inplace", error["cell"], error["line"]))
    ctx = Context.build(apply(cells, base.cells), diagnosis, extra)
    out: list[Candidate] = []
    for follow in generate.candidates(ctx):
        merged = {**base.cells, **follow.cells}
        if follow.fallback or merged == base.cells or any(c.cells == merged for c in out):
            continue
        out.append(
            Candidate(
                base.kind,
                f"{base.title}; then {follow.title[:1].lower()}{follow.title[1:]}",
                f"{base.description} That alone uncovers the next in-place error ({where(error)}), so: "
                f"{follow.description}",
                merged,
                changes_semantics=base.changes_semantics or follow.changes_semantics,
                notes=base.notes + follow.notes,
            )
        )
    return out[:MAX_CHAINED]
