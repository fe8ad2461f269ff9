"""Fixes for in-place autograd errors: exact source rewrites, each run in a sandbox before it is offered.

``search_fixes`` turns a diagnosis into ranked fixes (verified and gradient-preserving first), and
says how many times it ran the user's code to verify them; ``find_fixes`` is its list of fixes.
``unified_diff`` shows a fix; ``apply_to_file`` writes one (``--write``) through ``replace_file``,
the atomic, backup-keeping write the panel's kernel-side Apply uses too.

A bug in a fix kind raises: it is not turned into "no fix". The pipeline reports it as an internal
error next to the diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..replay.cells import Cell
from ..replay.run import Dialect
from .files import BACKUP_SUFFIX, WriteRefused, Written, apply_to_file, replace_file, unified_diff

if TYPE_CHECKING:
    from .find import FixSearch, search_deadline_s

# The search (.find) imports LibCST, about a second of CPU: it is imported when a search is asked for,
# not by every importer of this package (the sandbox worker, a package module, never needs it; nor do
# the CLI's report and --no-fix checks, which only diff and write).
_FROM_FIND = {"FixSearch", "search_deadline_s"}


def __getattr__(name: str) -> Any:
    if name in _FROM_FIND:
        from . import find

        return getattr(find, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKUP_SUFFIX",
    "FixSearch",
    "WriteRefused",
    "Written",
    "apply_to_file",
    "find_fixes",
    "replace_file",
    "search_deadline_s",
    "search_fixes",
    "unified_diff",
]


def search_fixes(
    cells: list[Cell],
    diagnosis: dict[str, Any],
    script_path: str | None = None,
    *,
    verify: bool = True,
    time_limit_s: float | None = None,
    dialect: Dialect | None = None,
    skip_shell: bool = False,
    on_executions: Callable[[int], None] | None = None,
) -> FixSearch:
    """Candidate fixes for ``diagnosis``, best first, as the CLI's ``fixes`` JSON.

    With ``verify`` each candidate is applied to a copy of the cells and re-executed in a separate
    Python process (the user's code runs again there, each run within ``time_limit_s``; this
    process and the user's files are not touched); ``on_executions`` hears the count of those runs
    as it grows. ``dialect`` is found from the cells when not given (IPython when they use its
    syntax). Input it cannot use gives no fix.
    """
    from .find import fixes

    return fixes(cells, diagnosis, script_path, verify, time_limit_s, dialect, skip_shell, on_executions)


def find_fixes(
    cells: list[Cell], diagnosis: dict[str, Any], script_path: str | None = None, *, verify: bool = True
) -> list[dict[str, Any]]:
    """The fixes of :func:`search_fixes`, with its defaults."""
    return search_fixes(cells, diagnosis, script_path, verify=verify).fixes
