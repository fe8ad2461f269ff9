"""Our own bugs: reported beside the user's error, or raised where the test suite asks for it.

A crash inside the engine must never replace the user's exception, so the pipeline catches it and says
it is ours (an internal-error note, ``internal_errors`` in the JSON). The same catch would let a test
pass while a fix kind or the replay crashes; with ``INPLACE_MAGIC_INTERNAL_ERRORS=raise`` in the
environment (the test suite sets it, and processes it starts inherit it) the bug is raised instead, so
the test that met it fails. Tests about the reporting itself unset it.
"""

from __future__ import annotations

import os

ENV = "INPLACE_MAGIC_INTERNAL_ERRORS"


class InternalError(RuntimeError):
    """A bug of ours that a sandbox or a child process reported as text."""


def raise_if_strict(bug: BaseException | str) -> None:
    """Raise ``bug`` when the environment asks for it; otherwise return and let the caller report it."""
    if os.environ.get(ENV) != "raise":
        return
    if isinstance(bug, BaseException):
        raise bug
    raise InternalError(bug)
