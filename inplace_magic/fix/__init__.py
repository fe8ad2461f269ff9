"""Fixes for in-place autograd errors: exact source rewrites, each run in a sandbox before it is offered.

``find_fixes`` turns a diagnosis into ranked fixes (verified and gradient-preserving first);
``unified_diff`` and ``apply_to_file`` are what the CLI's ``--fix`` and ``--write`` use.
"""

from __future__ import annotations

from typing import Any

from ..replay.cells import Cell
from .files import apply_to_file, unified_diff
from .find import fixes

__all__ = ["apply_to_file", "find_fixes", "unified_diff"]


def find_fixes(
    cells: list[Cell], diagnosis: dict[str, Any], script_path: str | None = None, *, verify: bool = True
) -> list[dict[str, Any]]:
    """Candidate fixes for ``diagnosis``, best first, as the CLI's ``fixes`` JSON.

    With ``verify`` each candidate is applied to a copy of the cells and re-executed in a separate
    Python process (the user's code runs again there; this process and the user's files are not
    touched). Never raises: input it cannot use gives an empty list.
    """
    try:
        return [dict(fix) for fix in fixes(cells, diagnosis, script_path, verify)]
    except Exception:  # a fix finder that crashes would hide the diagnosis it was asked to help with
        return []
