"""Iterator positions: read one, set it back on the very object, or say that it cannot be.

A cell that calls ``next(it)`` moves ``it`` on. A replay of that cell must take the item the first
run took, and leave ``it`` where the first run left it, or the user's loop skips one. Two kinds
can be set back in place:

- Python's iterators over a sequence (``iter(list)``, tuples, ranges, strings, bytes, ``reversed``,
  objects with ``__getitem__``): their index, through their pickle support (``__reduce__`` reads
  it, ``__setstate__`` sets it). One that ran out cannot start again.
- A single-process DataLoader iterator over a map-style dataset: its position is the index
  sampler's (a generator) and its count of batches. To be able to go back, the sampler is read
  through :func:`itertools.tee` from the first time we see the iterator on: the DataLoader then
  draws the same indices, and a saved branch of the tee stands where the sampler stood.

Every other iterator (a generator, ``zip``, ``enumerate``, a dict's iterator, a DataLoader with
worker processes, which prefetch) cannot be set back: :func:`position` returns None for it. Files
are not counted as iterators: their writes are side effects a replay does not undo.
"""

from __future__ import annotations

import io
import itertools
import sys
import types
from dataclasses import dataclass
from typing import Any


class _Indexed:
    def __getitem__(self, index: int) -> int:
        raise IndexError(index)


_SEQUENCE_ITERATORS = frozenset(
    type(it)
    for it in (
        iter([]),
        iter(()),
        iter(range(0)),
        iter(range(2**64)),  # a range past the machine word has its own iterator type
        iter(""),
        iter("é"),  # non-ASCII strings too
        iter(b""),
        iter(bytearray()),
        reversed([]),
        reversed(""),
        iter(_Indexed()),
    )
)


def _loader_iterator_types() -> tuple[type, ...]:
    dataloader = sys.modules.get("torch.utils.data.dataloader")  # loaded with torch; never imported here
    if dataloader is None:
        return ()
    return (dataloader._BaseDataLoaderIter,)


def is_iterator_type(kind: type) -> bool:
    """Whether values of type ``kind`` are iterators :func:`iterator_kind` names (a file is none)."""
    return hasattr(kind, "__next__") and not issubclass(kind, io.IOBase)


def iterator_kind(value: Any) -> str | None:
    """``value`` as an iterator, in words ("a generator"), or None when it is no iterator."""
    kind = type(value)
    if not is_iterator_type(kind):
        return None
    if isinstance(value, types.GeneratorType):
        return "a generator"
    if isinstance(value, _loader_iterator_types()):
        workers = getattr(value, "_num_workers", 0)
        return "a DataLoader iterator" + (" with worker processes" if workers else "")
    return f"an iterator ({kind.__name__})"


@dataclass(frozen=True)
class SequencePosition:
    iterator: Any
    index: int | None  # None: it had run out

    def put_back(self) -> bool:
        """Set the iterator back to this position; False when it ran out since (no way back)."""
        now = _index(self.iterator)
        if self.index is None or now is None:
            return self.index is None and now is None
        self.iterator.__setstate__(self.index)
        return True


@dataclass(frozen=True)
class LoaderPosition:
    iterator: Any
    branch: Any  # a tee of the index sampler, standing where it stood
    yielded: int

    def put_back(self) -> bool:
        # a copy of the branch, so that the same position can be put back again
        self.iterator._sampler_iter = itertools.tee(self.branch, 2)[1]
        self.iterator._num_yielded = self.yielded
        return True


Position = SequencePosition | LoaderPosition


def _index(iterator: Any) -> int | None:
    reduced = iterator.__reduce__()
    return int(reduced[2]) if len(reduced) > 2 else None


def position(iterator: Any) -> Position | None:
    """Where ``iterator`` stands, or None when that cannot be set back (see the module's doc)."""
    if type(iterator) in _SEQUENCE_ITERATORS:
        return SequencePosition(iterator, _index(iterator))
    dataloader = sys.modules.get("torch.utils.data.dataloader")
    if dataloader is None or not isinstance(iterator, dataloader._SingleProcessDataLoaderIter):
        return None
    sampler = getattr(iterator, "_sampler_iter", None)
    if iterator._dataset_kind != dataloader._DatasetKind.Map or sampler is None:
        return None  # an iterable dataset's own iterator has no position we could set
    ahead, branch = itertools.tee(sampler)
    iterator._sampler_iter = ahead
    return LoaderPosition(iterator, branch, int(iterator._num_yielded))
