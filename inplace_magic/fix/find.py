"""The fix stage: generate candidate rewrites, run each in the sandbox, chain once, rank."""

from __future__ import annotations

import time
from typing import Any

from ..replay.cells import Cell
from . import chain, generate, rank
from .context import Context
from .judge import verdict
from .model import Candidate, Fix, RunOutcome, Verdict
from .sandbox.verify import TOTAL_LIMIT_S, Session, apply

MAX_CANDIDATES = 12
MAX_BASES = 2  # candidates whose uncovered error we try to fix in turn


def _valid(cells: object, diagnosis: object) -> bool:
    return (
        isinstance(cells, list)
        and all(isinstance(c, Cell) for c in cells)
        and len({c.index for c in cells}) == len(cells)
        and isinstance(diagnosis, dict)
        and any(isinstance(diagnosis.get(k), dict) for k in ("inplace", "saved_by"))
    )


def fixes(cells: list[Cell], diagnosis: dict[str, Any], script_path: str | None, verify: bool) -> list[Fix]:
    if not _valid(cells, diagnosis):
        return []
    found = generate.candidates(Context.build(cells, diagnosis))[:MAX_CANDIDATES]
    if not found:
        return []
    if not verify:
        judged = [
            (c, Verdict(notes=[*c.notes, "Not verified: verification was switched off."])) for c in found
        ]
    else:
        judged = _verified(cells, diagnosis, script_path, found)
    return [rank.to_fix(cells, c, v) for c, v in rank.ranked(judged)]


def _verified(
    cells: list[Cell], diagnosis: dict[str, Any], script_path: str | None, found: list[Candidate]
) -> list[tuple[Candidate, Verdict]]:
    session = Session(cells, script_path, time.monotonic() + TOTAL_LIMIT_S)
    try:

        def judge(candidate: Candidate, job: str) -> Verdict:
            run = (
                session.run(job, apply(cells, candidate.cells), compare=not candidate.changes_semantics)
                if session.reference is not None
                else RunOutcome(ran=False)
            )
            # Compare with the original error at the line it moved to in the candidate's cells.
            original = chain.moved(cells, session.original or {}, candidate) if session.original else None
            return verdict(candidate, run, original, session.reference)

        judged = [(c, judge(c, f"c{i}")) for i, c in enumerate(found)]
        if not any(v.verified and not c.fallback for c, v in judged):
            for b, (base, error, diagnosis_after) in enumerate(_uncovered(session, cells, diagnosis, judged)):
                for i, follow in enumerate(chain.candidates(cells, diagnosis_after, base, error)):
                    judged.append((follow, judge(follow, f"chain{b}.{i}")))
        return judged
    finally:
        session.close()


def _uncovered(
    session: Session, cells: list[Cell], diagnosis: dict[str, Any], judged: list[tuple[Candidate, Verdict]]
) -> list[tuple[Candidate, dict[str, Any], dict[str, Any]]]:
    """Failed candidates that got past the original error: (candidate, new error, its diagnosis).

    A new error raised elsewhere is progress by itself; one raised at the same place (a version
    error surfaces at the same ``backward()`` whichever tensor is stale) counts only when the
    engine's diagnosis of the fixed code names another in-place op or saver.
    """
    found: list[tuple[Candidate, dict[str, Any], dict[str, Any]]] = []
    for index, (candidate, verdict_) in enumerate(judged):
        error = verdict_.error
        if len(found) >= MAX_BASES or candidate.fallback or not error or error.get("kind") is None:
            continue
        expected = chain.moved(cells, diagnosis, candidate)
        after = session.diagnose(f"diagnose{index}", apply(cells, candidate.cells))
        if after is not None and chain.same_error(after, expected):
            continue
        if after is None and verdict_.next_error is None:
            continue
        if verdict_.next_error is None:
            verdict_.next_error = error
            verdict_.notes = [
                n for n in verdict_.notes if not n.startswith("Not verified: the fixed code still")
            ]
            op = after.get("inplace") if after else None
            what = f"`{op.get('code')}`" if isinstance(op, dict) and op.get("code") else "another op"
            verdict_.notes.append(f"Fixes this error but uncovers the next one: an in-place write by {what}.")
        found.append((candidate, error, after or expected))
    return found
