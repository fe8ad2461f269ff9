"""The error a failing step raises, as a value: the replay and the first pass call a step that
returns it (``BaseException | None``) rather than raising it, like the runner of the user's code.
"""

from __future__ import annotations

from collections.abc import Callable


def runtime_error_of(run: Callable[[], object]) -> RuntimeError | None:
    """``run()``; the RuntimeError it raises, or None. The forward belongs inside ``run`` too: the
    recorder's early stop (``ReplayStopped``, a RuntimeError) is raised there, in the middle of it."""
    try:
        run()
    except RuntimeError as exc:
        return exc
    return None
