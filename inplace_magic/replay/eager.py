"""Compiled code runs eagerly in a replay: the stance, paid only where compiled code can exist."""

from __future__ import annotations

import contextlib
import sys
from contextlib import AbstractContextManager
from typing import Any

import torch


def eager_replay() -> AbstractContextManager[Any]:
    """``torch.compiler.set_stance("force_eager")`` around a replay of code that already ran.

    Under the recorder compiled code must run eagerly: dynamo would otherwise trace into its hooks (and
    fall back at ``sys._getframe``), and the eager writer is what a diagnosis names. The stance imports
    ``torch._dynamo``, a second or more of CPU. ``torch.compile`` imports it at its first call, and a
    replay runs code that already ran in this process up to the same error: while ``torch._dynamo`` is
    not imported, nothing here was compiled, and the replay compiles nothing either. (A first run,
    such as the audit's, cannot know that: it takes the stance always.)
    """
    if "torch._dynamo" not in sys.modules:
        return contextlib.nullcontext()
    stance: AbstractContextManager[Any] = torch.compiler.set_stance("force_eager")
    return stance
