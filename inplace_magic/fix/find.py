"""The fix stage: generate candidate rewrites, run each in the sandbox, chain once, rank."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..replay.cells import Cell
from ..replay.run import Dialect, dialect_of
from ..replay.time_limit import limit_for
from . import chain, generate, rank
from .context import Context
from .judge import verdict
from .model import Candidate, RunOutcome, Verdict
from .sandbox.verify import Session, apply

MAX_CANDIDATES = 12
MAX_BASES = 2  # candidates whose uncovered error we try to fix in turn
TOTAL_FLOOR_S = 150.0  # the whole verification, sandbox start-up included, may take at least this ...
TOTAL_RUNS = 6  # ... or this many runs at the time limit (most runs end far sooner)


@dataclass
class FixSearch:
    fixes: list[dict[str, Any]]
    executions: int = 0  # runs of the user's code in the sandbox (started, finished or not)
    notes: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)  # the sandbox's own failures


def search_deadline_s(run_limit_s: float) -> float:
    """How long the whole verification may take when each run may take ``run_limit_s``."""
    return max(TOTAL_FLOOR_S, TOTAL_RUNS * run_limit_s)


def _valid(cells: object, diagnosis: object) -> bool:
    return (
        isinstance(cells, list)
        and all(isinstance(c, Cell) for c in cells)
        and len({c.index for c in cells}) == len(cells)
        and isinstance(diagnosis, dict)
        and any(isinstance(diagnosis.get(k), dict) for k in ("inplace", "saved_by"))
    )


def fixes(
    cells: list[Cell],
    diagnosis: dict[str, Any],
    script_path: str | None,
    verify: bool,
    time_limit_s: float | None = None,
    dialect: Dialect | None = None,
    skip_shell: bool = False,
    on_executions: Callable[[int], None] | None = None,
) -> FixSearch:
    if not _valid(cells, diagnosis):
        return FixSearch([])
    found = generate.candidates(Context.build(cells, diagnosis))[:MAX_CANDIDATES]
    if not found:
        return FixSearch([])
    if not verify:
        judged = [
            (c, Verdict(notes=[*c.notes, "Not verified: verification was switched off."])) for c in found
        ]
        return FixSearch([dict(rank.to_fix(cells, c, v)) for c, v in rank.ranked(judged)])
    run_limit = limit_for(None, time_limit_s)
    session = Session(
        cells,
        script_path,
        time.monotonic() + search_deadline_s(run_limit),
        run_limit,
        dialect=dialect or dialect_of(cells, script_path),
        skip_shell=skip_shell,
        on_executions=on_executions,
    )
    try:
        judged = _verified(session, cells, diagnosis, found)
    finally:
        session.close()
    return FixSearch(
        [dict(rank.to_fix(cells, c, v)) for c, v in rank.ranked(judged)],
        session.executions,
        internal_errors=list(session.internal_errors),
    )


def _verified(
    session: Session, cells: list[Cell], diagnosis: dict[str, Any], found: list[Candidate]
) -> list[tuple[Candidate, Verdict]]:
    def judge(candidate: Candidate, job: str) -> Verdict:
        run = (
            session.run(job, apply(cells, candidate.cells), compare=not candidate.changes_semantics)
            if session.reference is not None and not session.original_timed_out
            else RunOutcome(ran=False, ended=session.ended)
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
