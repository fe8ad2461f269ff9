"""``inplace-magic check PATH``: the headless face, for scripts, notebooks and CI.

Two halves. :func:`console` is the command (the console script and ``python -m inplace_magic``):
a small process that starts the check in a child process and watches it, so that whatever the
user's code does (``os._exit``, a crash in a C extension, a replay that never returns) the exit
code is one of the documented four and the user's error is reported. :func:`main` is the check
itself, in this process (the child runs it; so do the tests).

Exit codes: 0 every cell ran; 1 an in-place error (diagnosed, or said why not); 2 another
exception (printed as Python prints it); 3 unusable input, with a one-line reason.

Neither half imports torch until it runs a check: the watching process never does.
"""

from __future__ import annotations


def main(argv: list[str] | None = None, channel_fd: int | None = None) -> int:
    """The check in this process; ``channel_fd`` is the watching parent's pipe, if any."""
    from . import torch_first  # noqa: F401 - first: it counts the threads torch's import starts
    from .command import main as check

    return check(argv, channel_fd)


def console() -> int:
    """The command: the check in a watched child process."""
    from .supervisor import console as watched

    return watched()
