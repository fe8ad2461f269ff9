"""Which recorded op made each value a replay's forward holds: the dataflow the skip search walks.

A value is keyed by ``(storage_key, version)``, so that a view, a ``detach()`` or an in-place write
is found under the memory it shares. But a storage key is a memory address, and the allocator hands
freed memory to the next tensor at once: a temporary freed after ``sigmoid(linear(x))`` and the
scalar tensor that ``gates[:, 0] = 1.0`` makes (below the dispatcher, so no op of ours produced it)
can share an address and version 0. Read by address alone, the write then seems to merge the
linear's output with the sigmoid's, a skip connection that is not there; it came and went with the
allocator's state (measured: 3 to 8 runs in 60 of one shared case in one process).

So each entry holds a weak reference to the storage it was made in. Torch keeps a storage's Python
object for as long as the storage lives (``t.untyped_storage()`` is the same object each time), so
the reference dies exactly when the memory is freed, and an entry whose storage is gone made
nothing alive now. While the storage lives, no other storage can have its address.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

Key = tuple[int, int]  # (storage_key, version), as the records hold it


def _lifetime(t: torch.Tensor) -> weakref.ref[Any] | None:
    """What dies with the tensor's memory: its storage, or for a wrapper subclass without one (keyed
    by ``-id(t)``, an address too) the tensor object; None where neither takes a weak reference."""
    try:
        return weakref.ref(t.untyped_storage())
    except (RuntimeError, NotImplementedError, TypeError):
        pass
    try:
        return weakref.ref(t)
    except TypeError:
        return None


class Producers:
    """``made(key, seq, t)`` when op ``seq`` leaves a new value in ``t``'s memory; ``of(key)`` is that
    op while the memory still lives, else None (the address now holds something no op of ours made)."""

    def __init__(self) -> None:
        self._made: dict[Key, tuple[int, weakref.ref[Any] | None]] = {}

    def made(self, key: Key, seq: int, t: torch.Tensor) -> None:
        self._made[key] = (seq, _lifetime(t))

    def of(self, key: Key) -> int | None:
        entry = self._made.get(key)
        if entry is None:
            return None
        seq, alive = entry
        if alive is not None and alive() is None:
            del self._made[key]  # freed: the next value at this address is not this op's
            return None
        return seq
