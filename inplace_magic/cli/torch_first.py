"""torch imported first in the CLI's check, and the threads its import starts counted: the baseline
the sandbox's fork server, forked from the check (:mod:`..fix.sandbox.fork_here`), is checked against.
Import it before anything else that may import torch (``inplace_magic.fix``'s package does).
"""

from __future__ import annotations

import os
import sys

_BEFORE = "torch" in sys.modules

import torch  # noqa: E402,F401 - after the look above: the threads counted are those torch's import starts

# None where torch was imported before (a test's in-process check): what its import started is unknown
THREADS: int | None = (
    None if _BEFORE or not os.path.isdir("/proc/self/task") else len(os.listdir("/proc/self/task"))
)
