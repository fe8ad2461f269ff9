"""The gradient reference's rule in the live kernel: a tensor saved for backward keeps its value when
the code writes it in place afterwards, as under torch's ``allow_mutation_on_saved_tensors``.

torch's context is a saved-tensor hook pair plus a dispatch mode of its own that clones a saved
tensor before an op writes it. Under the verification's undo log (itself a dispatch mode) that is
two Python dispatches per op, and torch wraps its mode's ``__torch_dispatch__`` in
``torch._disable_dynamo``, which cost a third of the reference's run on the skip-connection example
(issue 15, B10). Here the same rule is the undo log's: :class:`~inplace_magic.replay.undo.WriteLog`
calls :meth:`SavedValuesKept.before_write` for every tensor an op's schema says it writes, from the
one mode it already is, and the hooks below keep what torch's keep.

The bookkeeping is torch's (``torch/autograd/graph.py``, NOTE [Allow mutation on tensors saved for
backward]), so that the gradients are the ones the judge defines: a save is known by the tensor
object, its data pointer and its version; a write looks up the saves of the same data pointer and
version and clones each one still held by a graph, once; backward reads the clone where there is
one. Two differences, neither visible in a gradient: the original is kept detached (the same memory
and version counter, and no reference cycle through its ``grad_fn``), and a clone is taken under
``no_grad`` (the values are the same; no autograd node is made for it).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ...record.torch_facts import version_of
from ...replay.undo import WriteLog

_Save = tuple[int, int, int]  # id of the tensor object, its data pointer, its version (torch's "tid")
_Alias = tuple[int, int]  # data pointer and version: what a write finds its saves by (torch's "sid")


class _Kept:
    """One saved tensor: the original until it is written, then a clone of it as it was."""

    __slots__ = ("__weakref__", "clone", "original")

    def __init__(self, original: torch.Tensor) -> None:
        self.original: torch.Tensor | None = original
        self.clone: torch.Tensor | None = None

    def value(self) -> torch.Tensor:
        kept = self.clone if self.clone is not None else self.original
        assert kept is not None  # one of the two is always set
        return kept


def _data_ptr(t: torch.Tensor) -> int:
    try:
        return int(t.data_ptr())
    except (RuntimeError, NotImplementedError, TypeError):
        return 0  # a wrapper subclass has no storage (torch uses 0 for fake and functional tensors)


class SavedValuesKept:
    """Saved tensors keep their value across in-place writes while :meth:`kept_under` is entered."""

    def __init__(self) -> None:
        # freed with the graph that holds them: a long run does not keep every step's saves
        self._saves: weakref.WeakValueDictionary[_Save, _Kept] = weakref.WeakValueDictionary()
        self._aliases: dict[_Alias, set[_Save]] = {}

    @contextmanager
    def kept_under(self, log: WriteLog) -> Iterator[None]:
        """The hooks, and ``log`` telling this object of every write, for the duration of the block."""
        if log.before_each_write is not None:
            raise RuntimeError("the undo log already reports its writes elsewhere")
        log.before_each_write = self.before_write
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                yield
        finally:
            log.before_each_write = None
            self._saves.clear()
            self._aliases.clear()

    def _pack(self, t: torch.Tensor) -> _Kept:
        ptr, version = _data_ptr(t), version_of(t)
        save = (id(t), ptr, version)
        self._aliases.setdefault((ptr, version), set()).add(save)
        kept = self._saves.get(save)  # the same tensor at the same version, saved again
        if kept is None:
            kept = self._saves[save] = _Kept(t.detach())
        return kept

    def _unpack(self, kept: _Kept) -> torch.Tensor:
        return kept.value()

    def before_write(self, t: torch.Tensor) -> None:
        """An op is about to write ``t``: clone each save of its memory at its version, once."""
        saves = self._aliases.get((_data_ptr(t), version_of(t)))
        if not saves:
            return
        for save in saves:
            kept = self._saves.get(save)
            # a save whose graph backward already freed is gone: nothing will read it
            if kept is None or kept.clone is not None or kept.original is None:
                continue
            with torch.no_grad():
                kept.clone = kept.original.clone()
            kept.original = None
