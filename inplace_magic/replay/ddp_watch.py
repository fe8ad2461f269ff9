"""Where a replay constructed ``DistributedDataParallel``: the line whose parameter broadcast may be
the in-place writer.

Constructing DDP broadcasts rank 0's parameters and buffers into every rank's tensors
(``_sync_module_states``): an in-place ``copy_`` that bumps their versions (measured on torch 2.13,
gloo, on every rank including 0). A forward through the unwrapped module before that line saved
those parameters, so a backward after it fails, with the write attributed to the ``DDP(...)`` line.
The recorder sees the ``copy_`` but not that DDP issued it; this watch gives the pipeline the
construction sites to say so. DDP's other writes were measured too: its buffer broadcast in forward
(``broadcast_buffers=True``) does not bump versions on torch 2.13, so it cannot raise (a saved
BatchNorm buffer is overwritten silently); its copy of the averaged gradient into ``.grad`` does
bump, which matters only to code that saved a ``.grad`` for backward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch.nn.parallel import DistributedDataParallel

from ..record.frames import Frame, user_frames


@dataclass(frozen=True)
class Construction:
    frame: Frame  # the user's line that called DistributedDataParallel(...)
    init_sync: bool  # False: DDP skipped the broadcast at construction


@contextlib.contextmanager
def watch_ddp() -> Iterator[list[Construction]]:
    """Record every ``DistributedDataParallel(...)`` of the block, in order."""
    found: list[Construction] = []
    original = DistributedDataParallel.__init__

    def recording_init(self: DistributedDataParallel, *args: Any, **kwargs: Any) -> None:
        frames = user_frames(limit=1, skip=2)
        if frames:
            found.append(Construction(frames[0], bool(kwargs.get("init_sync", True))))
        original(self, *args, **kwargs)

    DistributedDataParallel.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield found
    finally:
        DistributedDataParallel.__init__ = original  # type: ignore[method-assign]
