"""The lines above a distributed report: how the launch ended, rank by rank (plain data in, text out)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

_STATUS = {
    "ok": "ran without error",
    "inplace_error": "in-place error",
    "other_error": "another error",
    "missing": "no answer",
}


def _where(error: Mapping[str, Any] | None) -> str:
    if not error or error.get("line") is None:
        return ""
    where = f"cell {error['cell']}" if error.get("cell") is not None else str(error.get("file") or "?")
    return f" at {where}, line {error['line']}"


def _line(rank: Mapping[str, Any], reporter: int) -> str:
    status = str(rank.get("status"))
    error = rank.get("error") or None
    text = f"rank {rank.get('rank')}: {_STATUS.get(status, status)}"
    if status == "inplace_error":
        diagnosis = rank.get("diagnosis") or {}
        text += f" ({diagnosis.get('kind')}){_where(error)}"
        if rank.get("rank") == reporter:
            text += ", reported below"
        elif rank.get("same_as") is not None:
            text += f": the same writer, saver and tensor as rank {rank['same_as']}"
        elif diagnosis.get("headline"):
            text += f": {diagnosis['headline']}"
    elif status == "other_error" and error:
        first = str(error.get("message", "")).splitlines()[0][:160] if error.get("message") else ""
        text += f"{_where(error)}: {error.get('type')}: {first}"
    elif status == "missing":
        text += f": {rank.get('reason')}"
    if rank.get("replay"):
        text += f"; {rank['replay']}"
    return text


def rank_summary(world_size: int, launcher: str, ranks: Sequence[Mapping[str, Any]], reporter: int) -> str:
    failed = [str(r.get("rank")) for r in ranks if r.get("status") == "inplace_error"]
    head = f"Distributed check: {world_size} ranks ({launcher})."
    if failed:
        which = "rank " + failed[0] if len(failed) == 1 else "ranks " + ", ".join(failed)
        head += f" The in-place error was raised on {which}; the report below is rank {reporter}'s."
    out = textwrap.wrap(head, 100)
    for rank in ranks:
        out += textwrap.wrap(_line(rank, reporter), 100, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(out)
