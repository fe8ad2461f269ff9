"""The fix stage: generate candidate rewrites, run each in the sandbox, chain once, rank."""

from __future__ import annotations

import time
from typing import Any

from ..source import Cell
from . import chain, generate, rank
from .context import Context
from .judge import verdict
from .model import Candidate, Fix, RunOutcome, Verdict
from .verify import TOTAL_LIMIT_S, Session, apply

MAX_CANDIDATES = 12
MAX_BASES = 2  # candidates whose uncovered error we try to fix in turn


def _valid(cells: object, diagnosis: object) -> bool:
    return (
        isinstance(cells, list)
        and all(isinstance(c, Cell) for c in cells)
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
        judged = [(c, Verdict(notes=[*c.notes, "Not verified: verification was switched off."])) for c in found]
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
            return verdict(candidate, run, session.original, session.reference)

        judged = [(c, judge(c, f"c{i}")) for i, c in enumerate(found)]
        if not any(v.verified and not c.fallback for c, v in judged):
            bases = [(c, v.next_error) for c, v in judged if v.next_error and not c.fallback][:MAX_BASES]
            for b, (base, error) in enumerate(bases):
                assert error is not None
                for i, follow in enumerate(chain.candidates(cells, diagnosis, base, error)):
                    judged.append((follow, judge(follow, f"chain{b}.{i}")))
        return judged
    finally:
        session.close()
