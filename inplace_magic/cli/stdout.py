"""Keep stdout for our one JSON object: the user's output goes to stderr at the file-descriptor level.

``contextlib.redirect_stdout`` alone moves ``print`` but not ``os.write(1, ...)``, a subprocess that
inherits fd 1 (``!cmd``), or a C extension's ``printf``. So fd 1 itself is pointed at stderr while
the user's code runs, and C's stdio buffers are flushed before it is pointed back (a ``printf``
without a newline would otherwise land in our JSON when the process exits).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator


def _flush_c_stdio() -> None:
    if os.name == "posix":
        ctypes.CDLL(None).fflush(None)  # fflush(NULL): every C stdio stream of this process


@contextlib.contextmanager
def user_output_to_stderr(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 at all (closed by the caller): nothing can reach it
        saved = None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for stream in (sys.__stdout__, sys.stderr):  # the user may write to sys.__stdout__ directly
            if stream is not None:
                stream.flush()
        _flush_c_stdio()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
