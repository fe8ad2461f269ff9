"""Order judged candidates best first and render them as the ``fixes`` JSON."""

from __future__ import annotations

import difflib

from ..replay.cells import Cell
from .model import Candidate, Edit, Fix, Verdict


def _key(item: tuple[int, Candidate, Verdict]) -> tuple[bool, bool, bool, bool, bool, int]:
    order, candidate, verdict = item
    return (
        not verdict.verified,
        candidate.fallback,  # the fallback costs memory: after every precise verified fix
        verdict.preserves_gradients is not True,
        candidate.changes_semantics,
        verdict.next_error is None,  # among failures, those that got further first
        order,
    )


def ranked(judged: list[tuple[Candidate, Verdict]]) -> list[tuple[Candidate, Verdict]]:
    items = [(i, c, v) for i, (c, v) in enumerate(judged)]
    return [(c, v) for _, c, v in sorted(items, key=_key)]


def edits(cells: list[Cell], changes: dict[int, str]) -> list[Edit]:
    """Line-level edits, 1-based within each cell; an insertion names the line it goes before."""
    by_index = {c.index: c.source for c in cells}
    out: list[Edit] = []
    for index in sorted(changes):
        old, new = by_index.get(index, "").split("\n"), changes[index].split("\n")
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                out.append(
                    Edit(cell=index, line=i1 + 1, old="\n".join(old[i1:i2]), new="\n".join(new[j1:j2]))
                )
    return out


def to_fix(cells: list[Cell], candidate: Candidate, verdict: Verdict) -> Fix:
    fix = Fix(
        kind=candidate.kind,
        title=candidate.title,
        description=candidate.description,
        changes_semantics=candidate.changes_semantics,
        verified=verdict.verified,
        preserves_gradients=verdict.preserves_gradients,
        edits=edits(cells, candidate.cells),
        cells={str(i): text for i, text in sorted(candidate.cells.items())},
        notes=list(verdict.notes),
    )
    if verdict.next_error is not None:
        fix["next_error"] = verdict.next_error
    return fix
