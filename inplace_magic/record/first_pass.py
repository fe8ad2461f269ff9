"""The replay's cheap first pass: saved-tensor hooks only, to find which saved tensor goes stale.

A stale saved tensor's diagnosis reads the ops around its save and its write, but backward is what
says which tensor that is. This pass runs the code with nothing but ``saved_tensors_hooks`` (no
dispatch mode, no frames, no module hooks): each pack keeps the tensor's version and its place in
the order of packs, and the unpack hook redoes autograd's version check (hooks switch it off) and
stops the replay at the first stale tensor, as :class:`~.recorder.Recorder` does. What it found
(:class:`StaleFinding`) lets the second pass record only up to where the diagnosis has all it reads
(:meth:`~.recorder.Recorder.stop_when_seen`), instead of the whole forward and backward.

The traps of the recorder hold here as well: ``disable_saved_tensors_hooks`` regions lift our hooks
(``torch.func``), ``detach_()`` is seen by a patched method (autograd no longer notices a saved
tensor detached in place), and with an undo log (the kernel's) a dispatch mode of the minimal kind
shows it every op, re-bumping the versions that in-place ``_foreach_*`` ops skip under a mode.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .patched import detach_calls_seen, hooks_lifted_where_torch_disables_them
from .recorder import _PLAIN_TENSORS, OpObserver, ReplayStopped, _function_forward, _inside_checkpoint
from .records import StaleFinding
from .torch_facts import (
    bump_written_lists_foreach_missed,
    op_info,
    plain_dispatch,
    shape_of,
    storage_key,
    version_of,
)


class FirstPass:
    """Saved-tensor hooks for the duration of a ``with`` block; ``finding`` is set when backward
    reached a stale saved tensor (the block then raised :class:`ReplayStopped` inside backward)."""

    def __init__(self, undo: OpObserver | None = None) -> None:
        self.finding: StaleFinding | None = None
        # the code entered a region where torch lifts saved-tensor hooks (torch.func): autograd
        # checked the saves made there itself, and only a recording can say more about them
        self.unhooked = False
        self._undo = undo
        self._packs = 0
        self._backward_saves: set[int] = set()
        self._detached: list[tuple[int, int]] = []  # (packs so far, storage) of each detach_()
        self._stack = ExitStack()

    def __enter__(self) -> FirstPass:
        stack = self._stack
        if self._undo is not None:
            self._undo.watched = True
            stack.callback(setattr, self._undo, "watched", False)
        stack.enter_context(hooks_lifted_where_torch_disables_them(self._pack, self._unpack, self._lifted))
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack))
        stack.enter_context(detach_calls_seen(self._detach_seen))
        if self._undo is not None:
            stack.enter_context(_Observed(self._undo))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _pack(self, t: torch.Tensor) -> tuple[torch.Tensor, int, int, bool]:
        if t.is_inference():
            return t, -1, -1, False
        index = self._packs
        self._packs += 1
        if torch._C._current_graph_task_id() != -1:
            self._backward_saves.add(index)
        # detach(): same storage and version counter, no reference cycle through grad_fn; past the
        # undo log's mode for a plain tensor (a subclass needs its own dispatch to detach)
        if type(t) in _PLAIN_TENSORS:
            with torch._C._DisableTorchDispatch():
                return t.detach(), index, version_of(t), bool(t.requires_grad)
        return t.detach(), index, version_of(t), bool(t.requires_grad)

    def _unpack(self, packed: tuple[torch.Tensor, int, int, bool]) -> torch.Tensor:
        t, index, saved, requires_grad = packed
        if index < 0 or self.finding is not None:
            return t
        current = version_of(t)
        detached = current == saved and requires_grad and self._detached_since(index, t)
        if current == saved and not detached:
            return t
        node = torch._C._current_autograd_node()
        custom = isinstance(node, torch.autograd.function.BackwardCFunction)
        self.finding = StaleFinding(
            index=index,
            shape=shape_of(t),
            dtype=t.dtype,
            saved_version=saved,
            current_version=current,
            node_name=node.name() if node is not None else "?",
            custom_function=custom,
            function_forward=_function_forward(node) if custom else None,
            checkpoint=_inside_checkpoint(),
            plain=not detached and index not in self._backward_saves,
        )
        raise ReplayStopped(f"inplace_magic: saved tensor {list(t.shape)} is at version {current}")

    def _detached_since(self, index: int, t: torch.Tensor) -> bool:
        if not self._detached:  # the common case: no detach_() at all, and no storage to look up
            return False
        storage = storage_key(t)
        return any(packs > index and key == storage for packs, key in self._detached)

    def _lifted(self) -> Callable[[], None]:
        self.unhooked = True
        return lambda: None

    def _detach_seen(self, t: torch.Tensor) -> None:
        self._detached.append((self._packs, storage_key(t)))


@plain_dispatch
class _Observed(TorchDispatchMode):
    """The undo log's view of every op, and nothing else (one Python dispatch per op)."""

    def __init__(self, undo: OpObserver) -> None:
        super().__init__()
        self.undo = undo

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        undo, info = self.undo, op_info(func)
        undo.before(info, args, kwargs)
        out = func(*args, **kwargs)
        undo.after(info, args, kwargs, out)
        bump_written_lists_foreach_missed(info, args, kwargs)
        return out
