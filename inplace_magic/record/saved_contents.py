"""The audit's recorder: the replay's recorder, plus each saved tensor's contents kept from pack to
unpack, so that a write PyTorch's version counter did not see is found.

Writes that leave the saved tensor's version unchanged (measured on torch 2.13 CPU): fused
optimizers (``Adam``/``AdamW``/``SGD(fused=True)``), writes through ``.data`` (a separate version
counter), writes through ``.numpy()`` or a custom kernel (no op reaches the dispatcher). Autograd
then uses the overwritten values without a word. The recorder already records every dispatched
write with its storage; this adds, per saved tensor:

* a copy of its contents at pack time, compared bit for bit at unpack, while the live copies stay
  under :data:`MEMORY_CAP_BYTES` (a tensor past it is counted as unchecked, and the report says so);
* its version and the number of ops recorded when backward unpacked it, so that the writes recorded
  in between are the candidates;
* for a leaf, whether its ``.data`` was assigned since (autograd itself saved the leaf, so a plain
  run's backward reads the new storage, the replay's the old one).

The copies live in the packed value (what the recorder's :class:`~.recorder.SaveObserver` keeps), so
they are freed with the graph that holds them.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import Literal

import torch

from .frames import Frame, user_frames
from .recorder import Recorder
from .records import Trace
from .torch_facts import storage_key, version_of

_CAP_ENV = "INPLACE_MAGIC_AUDIT_MIB"
MEMORY_CAP_BYTES = int(float(os.environ.get(_CAP_ENV, "256")) * 2**20)

Contents = Literal["same", "changed", "unchecked"]


@dataclass(frozen=True, slots=True)
class Unpacked:
    """Backward read a saved tensor: what it found there."""

    rid: int  # the save (``Trace.saves[rid]``)
    seq: int  # ops recorded before the unpack: writes after the save and before this are candidates
    version: int
    contents: Contents
    node: str  # the autograd node that unpacked it
    frames: tuple[Frame, ...]  # the user's line that ran backward
    storage_swapped: bool = False  # a saved leaf's ``.data`` was assigned since the save


@dataclass
class ContentsLog:
    """Per save, the unpack that showed a change (the first), else the last one."""

    unpacked: dict[int, Unpacked] = field(default_factory=dict)
    unchecked: int = 0  # saved tensors whose contents were not kept (cap, layout)
    unchecked_bytes: int = 0
    cap_bytes: int = MEMORY_CAP_BYTES
    live_bytes: int = 0


def _copyable(t: torch.Tensor) -> bool:
    return (
        type(t) in (torch.Tensor, torch.nn.Parameter)
        and t.layout == torch.strided
        and not t.is_nested
        and t.device.type != "meta"
    )


def _same_bits(copy: torch.Tensor, now: torch.Tensor) -> bool:
    if copy.shape != now.shape or copy.dtype != now.dtype:
        return False
    if copy.is_floating_point() or copy.is_complex():
        # NaN is not equal to itself, but a NaN that stayed is no write
        return bool(((copy == now) | (copy.isnan() & now.isnan())).all())
    return bool(torch.equal(copy, now))


class _ContentsKept:
    """The audit's :class:`~.recorder.SaveObserver`: a copy of each saved tensor's contents at pack
    time, compared at unpack (see the module docstring)."""

    def __init__(self, log: ContentsLog, trace: Trace) -> None:
        self.log, self.trace = log, trace

    def _release(self, nbytes: int) -> None:
        self.log.live_bytes -= nbytes

    def packed(self, t: torch.Tensor, rid: int) -> object:
        log = self.log
        copy = None
        nbytes = t.numel() * t.element_size()
        if _copyable(t) and log.live_bytes + nbytes <= log.cap_bytes:
            with torch.no_grad():
                copy = t.detach().clone()
            log.live_bytes += nbytes
            weakref.finalize(copy, self._release, nbytes)
        else:
            log.unchecked += 1
            log.unchecked_bytes += nbytes
        leaf = weakref.ref(t) if t.is_leaf and t.requires_grad else None
        return copy, leaf

    def unpacked(self, t: torch.Tensor, rid: int, kept: object) -> None:
        assert isinstance(kept, tuple)
        copy, leaf = kept
        if isinstance(copy, torch.Tensor):
            with torch.no_grad():
                contents: Contents = "same" if _same_bits(copy, t) else "changed"
        else:
            contents = "unchecked"
        original = leaf() if isinstance(leaf, weakref.ref) else None
        swapped = isinstance(original, torch.Tensor) and storage_key(original) != storage_key(t)
        earlier = self.log.unpacked.get(rid)
        if earlier is not None and (earlier.contents == "changed" or earlier.storage_swapped):
            return
        node = torch._C._current_autograd_node()
        self.log.unpacked[rid] = Unpacked(
            rid=rid,
            seq=len(self.trace.ops),
            version=version_of(t),
            contents=contents,
            node=node.name() if node is not None else "?",
            frames=user_frames(1, skip=2),
            storage_swapped=swapped,
        )


class AuditRecorder(Recorder):
    """:class:`Recorder` that also keeps saved tensors' contents (see the module docstring)."""

    def __init__(self, cap_bytes: int = MEMORY_CAP_BYTES) -> None:
        super().__init__()
        self.contents = ContentsLog(cap_bytes=cap_bytes)
        self.saves = _ContentsKept(self.contents, self.trace)
