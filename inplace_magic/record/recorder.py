"""Record what a replay does: every aten op (with the tensors it writes, decided from the op
schema), every tensor autograd saves (with its version at save time), the module and optimizer
context of each, and the forward-time in-place errors that never reach the dispatcher.

The traps this module works around are measured in ../shared/notes/engine.md:

* ``saved_tensors_hooks`` switch off autograd's own version check, so ``_unpack`` redoes it, and
  stops the replay at the first stale saved tensor with the full record in hand.
* ``_pack`` returns ``t.detach()`` (same storage and version counter), never ``t``: the identity
  leaks saved outputs through an uncollectable reference cycle.
* Under a dispatch mode in-place ``_foreach_*`` ops stop bumping version counters on CPU (not on
  CUDA, measured on an H200); a self-test per device type decides whether we must bump them
  ourselves, so optimizer steps still break the replay exactly as they break the plain run.
* No Python wrapper of an autograd node is made per op (no ``grad_fn`` access, no
  ``_current_autograd_node()``): on a deep graph whose backward failed, tearing such wrappers down
  overflowed the C stack.
* Leaf and view errors are raised by autograd before the op reaches the dispatcher: a function
  mode catches them at the call, with the tensor in hand.
* ``detach_()`` never reaches the dispatcher either, and with our hooks installed autograd no longer
  notices a saved tensor detached in place: the function mode records it and ``_unpack`` checks.
* ``torch.func.grad``/``vjp`` (and anything else that enters ``disable_saved_tensors_hooks``) raise at
  once while saved-tensor hooks are installed: inside such a region ours are taken off the stack and
  put back after it, so the replay runs as the plain run does (saves made there are not recorded).
* A user's own saved-tensor hooks (``save_on_cpu``, non-reentrant checkpoint) nest inside ours and
  take over the saves of their region; autograd then checks nothing there, and neither do we.
* Full backward hooks wrap a module's inputs and outputs in ``BackwardHookFunction`` views after our
  module hooks ran (outputs) or before its forward (inputs): a mark per hooked module call tells the
  diagnosis which module's hook made a view.

What it costs is Python per op, and on small models (and every model on a GPU) that is most of the
replay: a pass-through dispatch mode alone doubles a tiny ResNet's step. Two switches leave out what
a stale saved tensor's diagnosis never reads (see ``README`` "Benchmarks"):

* ``calls=False``: no function mode. It is needed only for errors autograd raises before the
  dispatcher (leaf and view writes) and for ``detach_()``, which a patched method records instead;
  an op's line is then the frame that called torch directly, exactly the one the function mode saw.
* ``backward_ops=False``: autograd's own backward ops are not recorded (one mark per backward call
  delimits the forward passes). The dispatch mode is then off during backward altogether, also
  under the kernel's undo log where :mod:`.lifted_backward` shows the log needs none of backward's
  ops; where it stays on, it records only the ops that write.
  :meth:`Recorder.saw_enough` says when the stale tensor's story may lie in what was left out.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.hooks import RemovableHandle

from .family import member_of
from .frames import (
    LIBRARY,
    USER,
    Frame,
    file_kind,
    forward_hook_of,
    is_code_file,
    is_own_file,
    is_user_file,
    user_frames,
)
from .lifted_backward import LiftedBackward, backward_calls
from .patched import detach_calls_seen, hooks_lifted_where_torch_disables_them
from .producers import Producers
from .records import (
    DetachEvent,
    ForwardFailure,
    HookMark,
    OpRecord,
    SaveRecord,
    StaleFinding,
    StaleUse,
    Trace,
    Write,
)
from .torch_facts import (
    OpInfo,
    arguments_at,
    bump_versions_foreach_missed,
    op_info,
    op_inputs,
    plain_dispatch,
    region_of,
    shape_of,
    storage_key,
    tensor_info,
    tensors_in,
    version_of,
)

TENSOR_SEQ_ATTR = "_inplace_magic_view_seq"
_DETACH_ = torch.Tensor.detach_
_BACKWARD_ENTRIES = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)
_MODULES = torch.nn.modules.module  # its global hook dicts are mutated in place, never rebound
_CHECKPOINT_FILE = os.path.join("torch", "utils", "checkpoint.py")


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)  # no __torch_dispatch__ of their own
BACKWARD_MARK = "autograd.backward"  # the op name of the one record a backward call gets when its ops are not


class ReplayStopped(RuntimeError):
    """Raised inside backward when the replay found the stale saved tensor; the diagnosis is in the trace."""


StorageVersions = tuple[tuple[int, int], ...]  # an op's tensors as (storage_key, version)


class OpObserver(Protocol):
    """Something else that must see every op the replay dispatches (the kernel's undo log): called
    from the recorder's own dispatch mode, so that one Python dispatch per op serves both. ``watched``
    is True while a recorder does so (the observer then needs no dispatch mode of its own)."""

    watched: bool

    # ``info`` is the op's op_info(func), looked up once per op for the mode and its observer
    def before(self, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...

    def after(self, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None: ...

    # instead of ``after`` for a recorded forward op that is neither a view nor in place: the
    # (storage, version) keys of its outputs and inputs, which the trace computes anyway
    def allocated(self, outputs: StorageVersions, inputs: StorageVersions) -> None: ...

    # ``t`` may be written by an op the observer will not see (backward without the dispatch mode)
    def will_write(self, t: torch.Tensor) -> None: ...


class SaveObserver(Protocol):
    """Something else that must see every tensor the recorder records as saved (the audit keeps
    their contents): ``packed`` when autograd saves ``t`` as ``trace.saves[rid]``, returning what to
    keep with it (freed with the graph that holds the save); ``unpacked`` when backward reads it and
    the recorder's own version check passed, with what ``packed`` returned. The ops either runs
    (a copy, a comparison) are not recorded as the user's."""

    def packed(self, t: torch.Tensor, rid: int) -> object: ...

    def unpacked(self, t: torch.Tensor, rid: int, kept: object) -> None: ...


def _names_bound_to(storage: int, skip: int) -> tuple[str, ...]:
    """Names in the innermost user or library frame whose tensor lives in ``storage`` (aliases such
    as ``r = y``)."""
    frame = sys._getframe(skip)
    while frame is not None and not is_code_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ()
    names = []
    for name, value in list(frame.f_locals.items()):
        if isinstance(value, torch.Tensor) and not name.startswith("_"):
            try:
                if storage_key(value) == storage:
                    names.append(name)
            except Exception:  # a user object that misbehaves is not our business
                continue
    return tuple(names)


def _calls_in_common(calls: tuple[int, ...], other: tuple[int, ...]) -> tuple[int, ...]:
    """The module calls two call stacks share from the outermost in: the innermost of them holds both."""
    common = 0
    for a, b in zip(calls, other, strict=False):
        if a != b:
            break
        common += 1
    return calls[:common]


class Recorder:
    """Installs every hook for the duration of a ``with`` block and fills a :class:`Trace`.

    ``calls`` and ``backward_ops`` (see the module docstring) decide how much is recorded; ``undo``
    is called for every op the replay dispatches, backward included, unless ``lift`` lets backward
    run without the dispatch mode where :mod:`.lifted_backward` shows the undo log needs none of its
    ops (:attr:`backward_ran_python` then says whether Python it could not see voided the run).
    ``saves``, when set before the ``with`` block, sees every saved tensor (:class:`SaveObserver`).
    """

    saves: SaveObserver | None = None

    def __init__(
        self,
        *,
        calls: bool = True,
        backward_ops: bool = True,
        undo: OpObserver | None = None,
        stop: StaleFinding | None = None,
        settled: Callable[[Trace, StaleUse], bool] | None = None,
        lift: bool = True,
    ) -> None:
        self.trace = Trace()
        self._calls, self._backward_ops, self._undo = calls, backward_ops, undo
        # the first pass's stale tensor: the replay stops once what its diagnosis reads is recorded
        self._stop = stop if stop is not None and stop.plain and not backward_ops else None
        self._target: tuple[int, SaveRecord, tuple[int, ...]] | None = None  # storage, save, calls
        self._stop_calls: tuple[int, ...] | None = None  # stop when this module call returns
        self._candidates: dict[int, tuple[SaveRecord, tuple[int, ...]]] = {}  # storage -> save, calls
        # ... those written to the stale version: storage -> save, its calls, the write's calls
        self._written_stale: dict[int, tuple[SaveRecord, tuple[int, ...], tuple[int, ...]]] = {}
        self._settled = settled  # the diagnosis stage: whether what is recorded decides its answer
        self.stopped_early = False
        self._call_ids: tuple[int, ...] = ()  # one id per module call on the stack (a module may recur)
        self._call_count = itertools.count()
        self._dispatch = _DispatchRecorder(self)
        self._lifting = LiftedBackward(self._dispatch, undo, lift)
        self._backward_depth = 0
        self._blind_saves: set[int] = set()  # packed where ops were not recorded: prev_seq means nothing
        self._seq = itertools.count()
        self._producers = Producers()
        self._modules: tuple[torch.nn.Module, ...] = ()
        self._call_sites: tuple[tuple[Frame, ...] | None, ...] = ()
        self._packing = False
        self._function_site: tuple[Frame, ...] | None = None
        self._optimizer: str | None = None
        self._optimizer_calls: dict[int, int] = {}
        self._root_ids: set[int] = set()
        # modules with forward hooks of their own: a last hook of ours says when theirs have run
        self._hooks_end: dict[int, RemovableHandle] = {}
        self._stack = ExitStack()

    # -- lifecycle

    def __enter__(self) -> Recorder:
        stack = self._stack
        if self._undo is not None:
            self._undo.watched = True
            stack.callback(setattr, self._undo, "watched", False)
        stack.callback(self._remove_hooks_end)
        stack.enter_context(self._construction_sites())
        stack.enter_context(
            _handle(torch.nn.modules.module.register_module_forward_pre_hook(self._pre_forward))
        )
        stack.enter_context(
            _handle(
                torch.nn.modules.module.register_module_forward_hook(self._post_forward, always_call=True)
            )
        )
        stack.enter_context(_handle(register_optimizer_step_pre_hook(self._pre_step)))
        stack.enter_context(_handle(register_optimizer_step_post_hook(self._post_step)))
        stack.enter_context(hooks_lifted_where_torch_disables_them(self._pack, self._unpack, self._lifted))
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack))
        if not self._backward_ops:
            stack.enter_context(self._backward_calls_marked())
            if self._undo is not None:  # after our own saved-tensor hooks: theirs alone are noted
                stack.enter_context(self._lifting.python_noted())
        stack.enter_context(self._dispatch)
        stack.enter_context(_FunctionRecorder(self) if self._calls else detach_calls_seen(self._detach_seen))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._modules, self._call_sites, self._call_ids = (), (), ()
        self._dispatch.end()

    # -- module, optimizer and construction context

    @contextmanager
    def _construction_sites(self) -> Iterator[None]:
        """Remember the user's line that constructed each module (where a fix edits ``inplace=True``)."""
        original = torch.nn.Module.__init__
        sites = self.trace.construction_sites

        def recording_init(module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
            original(module, *args, **kwargs)
            if module in sites:
                return
            frame = sys._getframe(1)
            while frame is not None:
                code = frame.f_code
                # skip the module's own __init__ chain (super().__init__()) and library frames
                own = code.co_varnames[:1] == ("self",) and frame.f_locals.get("self") is module
                if not own and is_user_file(code.co_filename):
                    sites[module] = Frame(code.co_filename, frame.f_lineno, code.co_name)
                    return
                frame = frame.f_back  # type: ignore[assignment]

        torch.nn.Module.__init__ = recording_init  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            torch.nn.Module.__init__ = original  # type: ignore[method-assign]

    def _lifted(self) -> Callable[[], None]:
        """The ops run while torch had our hooks off: their saves are not ours to check."""
        start = len(self.trace.ops)
        return lambda: self.trace.unhooked.append((start, len(self.trace.ops)))

    def _detach_seen(self, t: torch.Tensor) -> None:
        self.trace.detaches.append(
            DetachEvent(len(self.trace.ops), storage_key(t), user_frames(3, skip=3), self._modules)
        )

    @contextmanager
    def _backward_calls_marked(self) -> Iterator[None]:
        """One mark for each backward call instead of a record per op, and no dispatch mode while it
        runs where no undo log needs one (:mod:`.lifted_backward`)."""
        with backward_calls(self._enter_backward, self._leave_backward) as told:
            if not told:  # another torch: its backward ops are recorded like any others
                self._backward_ops = True
            yield

    @property
    def backward_ran_python(self) -> bool:
        """Backward ran Python the undo log could not see while the mode was off: the run is void."""
        return self._lifting.ran_python

    def _enter_backward(self, engine: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._stop_calls is not None:
            self._stop_now()  # the forward pass that saved and wrote the tensor ends here
        if self._backward_depth == 0:
            seq = next(self._seq)
            self.trace.ops.append(
                OpRecord(seq, BACKWARD_MARK, True, (), self._modules, self._optimizer, grad_enabled=False)
            )
        self._backward_depth += 1
        self._lifting.enter(engine, args, kwargs)

    def _leave_backward(self) -> None:
        self._backward_depth -= 1
        self._lifting.leave()

    def _note_target_write(self, writes: list[Write]) -> None:
        """The first pass's stale tensor is written: once its version reaches the one backward found,
        every write the diagnosis names is recorded, and the replay may stop when the module call
        that holds both the save and this write returns (the skip connection merges there), or at
        the next backward call when no module call holds both."""
        assert self._target is not None and self._stop is not None
        storage, _, save_calls = self._target
        current = self._stop.current_version
        if any(w.storage == storage and w.version_before + 1 >= current for w in writes):
            self._stop_calls = _calls_in_common(save_calls, self._call_ids)

    def _target_among_candidates(self, writes: list[Write]) -> None:
        """Saves that fit the failed run's stale tensor are written to its stale version: once as
        many memories as its graph held stale are, the one saved last is the one backward read
        (:mod:`.failed_graph`), and the replay stops when the module call that holds its save and
        its write returns, as for a first pass's."""
        stop = self._stop
        assert stop is not None
        for w in writes:
            candidate = self._candidates.get(w.storage)
            if candidate is not None and w.version_before + 1 >= stop.current_version:
                self._written_stale.setdefault(w.storage, (*candidate, self._call_ids))
        if len(self._written_stale) < stop.fitting:
            return
        storage, (save, save_calls, write_calls) = max(
            self._written_stale.items(), key=lambda item: item[1][0].rid
        )
        self._target = (storage, save, save_calls)
        self._candidates.clear()
        self._stop_calls = _calls_in_common(save_calls, write_calls)
        if self._call_ids[: len(self._stop_calls)] != self._stop_calls:
            self._stop_if_settled()  # that call returned already: a later block's write came last

    def _stale(self) -> StaleUse:
        assert self._target is not None and self._stop is not None
        stop = self._stop
        return StaleUse(
            self._target[1],
            stop.current_version,
            stop.node_name,
            stop.custom_function,
            None,
            function_forward=stop.function_forward,
            checkpoint=stop.checkpoint,
        )

    def _stop_if_settled(self) -> None:
        """Stop when the diagnosis's answer can no longer change; else wait for the caller of the
        call that just returned (a skip connection may merge further out)."""
        stale = self._stale()
        if self._settled is None or self._settled(self.trace, stale):
            self._stop_now(stale)
        self._stop_calls = _calls_in_common(self._stop_calls or (), self._call_ids)

    def _stop_now(self, stale: StaleUse | None = None) -> None:
        """Stop the replay with the first pass's stale tensor as this trace's: nothing after this
        point is read by its diagnosis."""
        stale = stale or self._stale()
        self._stop_calls = None
        self.stopped_early = True
        self.trace.stale = stale
        raise ReplayStopped(
            f"inplace_magic: saved tensor {list(stale.save.tensor.shape)} was written to version "
            f"{stale.current_version}; the replay stopped there"
        )

    def saw_enough(self) -> bool:
        """False when a recording without backward ops may have missed what the diagnosis of the
        stale saved tensor reads: it was saved during a backward (double backward, recomputation),
        or no recorded op moved its version from the saved one to the one backward found (autograd
        or a hook wrote it during backward)."""
        stale = self.trace.stale
        if self._backward_ops or stale is None or stale.detached is not None:
            return True
        save = stale.save
        if save.rid in self._blind_saves:
            return False
        storage, saved = save.tensor.storage, save.tensor.version
        for seq in self.trace.writes_by_storage.get(storage, ()):
            if seq > save.prev_seq and any(
                w.storage == storage and saved <= w.version_before < stale.current_version
                for w in self.trace.ops[seq].writes
            ):
                return True
        return False

    @staticmethod
    def _wraps_for_backward_hooks(module: torch.nn.Module) -> bool:
        """Autograd wraps this module call's inputs and outputs in BackwardHookFunction views."""
        if module._backward_pre_hooks or _MODULES._global_backward_pre_hooks:
            return True
        if module._backward_hooks and module._is_full_backward_hook:
            return True
        return bool(_MODULES._global_backward_hooks and _MODULES._global_is_full_backward_hook)

    def _pre_forward(self, module: torch.nn.Module, args: Any) -> None:
        if not self._modules and id(module) not in self._root_ids:
            self._root_ids.add(id(module))
            self.trace.roots.append(module)
        if self._wraps_for_backward_hooks(module):
            self.trace.hook_marks.append(HookMark(len(self.trace.ops), module, "inputs"))
        if module._forward_hooks:
            self._end_after_own_hooks(module)
        self._modules = (*self._modules, module)
        self._call_ids = (*self._call_ids, next(self._call_count))
        # a built-in module runs no user code: one frame walk here serves all of its ops
        builtin = type(module).__module__.startswith("torch.")
        self._call_sites = (*self._call_sites, user_frames(3, skip=2) if builtin else None)

    def _end_after_own_hooks(self, module: torch.nn.Module) -> None:
        """torch runs a module's own forward hooks inside its call, after our global hook: their ops
        are the module's. A hook of ours, kept last, ends the module's call after them."""
        handle = self._hooks_end.get(id(module))
        hooks = module._forward_hooks
        if handle is None or handle.id not in hooks:
            end = _OwnHooksEnd(self._leave)
            self._hooks_end[id(module)] = module.register_forward_hook(end, always_call=True)
        elif next(reversed(hooks)) != handle.id and isinstance(hooks, OrderedDict):  # one added since
            hooks.move_to_end(handle.id)  # torch runs the hooks in the dict's order

    def _remove_hooks_end(self) -> None:
        for handle in self._hooks_end.values():
            handle.remove()
        self._hooks_end.clear()

    def _post_forward(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self._wraps_for_backward_hooks(module):
            self.trace.hook_marks.append(HookMark(len(self.trace.ops), module, "outputs"))
        handle = self._hooks_end.get(id(module))
        if handle is None or handle.id not in module._forward_hooks:
            self._leave(module)
            return
        # the module's own hooks run next: their ops are the user's code, inside this module
        for depth in range(len(self._modules) - 1, -1, -1):
            if self._modules[depth] is module:
                self._modules = self._modules[: depth + 1]
                self._call_ids = self._call_ids[: depth + 1]
                self._call_sites = (*self._call_sites[:depth], None)
                return

    def _leave(self, module: torch.nn.Module) -> None:
        stack = self._modules
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth] is module:
                self._modules = stack[:depth]
                self._call_ids = self._call_ids[:depth]
                self._call_sites = self._call_sites[:depth]
                stop = self._stop_calls
                if stop is not None and self._call_ids[: len(stop)] != stop:
                    self._stop_if_settled()  # the call that holds the save and the write returned
                return

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        calls = self._optimizer_calls.get(id(optimizer), 0) + 1
        self._optimizer_calls[id(optimizer)] = calls
        if calls == 1:
            self.trace.optimizers.append(optimizer)
        self._optimizer = f"{type(optimizer).__name__}.step() call #{calls}"

    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer = None

    # -- saved tensors

    def _pack(self, t: torch.Tensor) -> tuple[Any, ...]:
        if t.is_inference():
            return t, -1
        if self.trace.stale is not None:  # found: the rest of the replay is not looked at
            return t.detach(), -1
        info = tensor_info(t)
        rid = len(self.trace.saves)
        if self._backward_depth:
            self._blind_saves.add(rid)
        save = SaveRecord(
            rid=rid,
            tensor=info,
            prev_seq=len(self.trace.ops) - 1,
            frames=(self._call_sites[-1] if self._call_sites else None)
            or (self._function_site if self._calls else _direct_call_site(2))
            or user_frames(3, skip=2),
            modules=self._modules,
            producer=self._producers.of((info.storage, info.version)),
        )
        self.trace.saves.append(save)
        stop = self._stop
        # the first pass's stale tensor, if this run saved the same tensor in the same place; from
        # the failed run's graph (no place known), each save that fits is a candidate until as many
        # memories as fit are written stale
        if (
            stop is not None
            and self._target is None
            and not self._backward_depth
            and (info.shape, t.dtype, info.version) == (stop.shape, stop.dtype, stop.saved_version)
        ):
            if rid == stop.index:
                self._target = (info.storage, save, self._call_ids)
            elif stop.index < 0:
                self._candidates[info.storage] = (save, self._call_ids)  # the latest save of that memory
        # detach(): same storage and version counter, and no reference cycle through grad_fn; past
        # the dispatch modes for a plain tensor (it writes nothing and allocates no memory)
        if type(t) in _PLAIN_TENSORS:
            with torch._C._DisableTorchDispatch():
                detached = t.detach()
        else:
            self._packing = True
            try:
                detached = t.detach()
            finally:
                self._packing = False
        if self.saves is None:
            return detached, rid
        self._packing = True  # the observer's own ops are not the user's
        try:
            return detached, rid, self.saves.packed(t, rid)
        finally:
            self._packing = False

    def _unpack(self, packed: tuple[Any, ...]) -> torch.Tensor:
        t: torch.Tensor = packed[0]
        rid: int = packed[1]
        if rid < 0 or self.trace.stale is not None:
            return t
        save = self.trace.saves[rid]
        current = version_of(t)
        detached = None
        if current == save.tensor.version and save.tensor.requires_grad:
            detached = next(
                (
                    d
                    for d in self.trace.detaches
                    if d.storage == save.tensor.storage and d.seq > save.prev_seq
                ),
                None,
            )
        if current != save.tensor.version or detached is not None:
            node = torch._C._current_autograd_node()
            node_name = node.name() if node is not None else "?"
            custom = isinstance(node, torch.autograd.function.BackwardCFunction)
            self.trace.stale = StaleUse(
                save,
                current,
                node_name,
                custom,
                detached,
                function_forward=_function_forward(node) if custom else None,
                checkpoint=_inside_checkpoint(),
            )
            raise ReplayStopped(
                f"inplace_magic: saved tensor {list(save.tensor.shape)} is at version {current}; "
                f"expected version {save.tensor.version}"
            )
        if self.saves is not None and len(packed) > 2:
            self._packing = True
            try:
                self.saves.unpacked(t, rid, packed[2])
            finally:
                self._packing = False
        return t

    # -- ops

    # One flat function on purpose (C901 exempt): it runs for every aten op of the replay, and on the
    # small models where Python overhead dominates each extra call per op shows in benchmark B2.
    def on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # noqa: C901
        undo = self._undo
        info = op_info(func)
        if self._packing or self.trace.stale is not None:  # our own detach(), or nothing left to find
            return _run(undo, func, info, args, kwargs)
        # the task id is a plain int; _current_autograd_node() would make a Python wrapper for every
        # node backward runs, and wrappers on a deep graph crash its teardown (stack overflow)
        backward = torch._C._current_graph_task_id() != -1
        if backward and not self._backward_ops and not info.written:
            # autograd's own work: nothing recorded, and nothing for the undo log but the writes
            # (batch norm's unannotated ones): the memory backward allocates is not noted as new, so
            # a later write into it is copied like older memory (restoring dead memory harms
            # nothing), and backward's ops, most of a tiny model's, pay no Python beyond this test
            if info.unannotated_written and undo is not None:
                return _run(undo, func, info, args, kwargs)
            return func(*args, **kwargs)
        seq = next(self._seq)
        writes: list[Write] = []
        written: list[torch.Tensor] = []  # the tensors of writes, one each
        written_lists: list[list[torch.Tensor]] = []
        for value in arguments_at(info.written, args, kwargs):
            if isinstance(value, torch.Tensor):
                writes.append(Write(storage_key(value), version_of(value), region_of(value)))
                written.append(value)
            elif isinstance(value, (list, tuple)):
                tensors = [v for v in value if isinstance(v, torch.Tensor)]
                writes.extend(Write(storage_key(v), version_of(v), region_of(v)) for v in tensors)
                written.extend(tensors)
                written_lists.append(tensors)

        # inside a torch built-in module every op has the module's call site as its user frame;
        # backward ops are located only when they write (their frame is the .backward() line)
        call_site = self._call_sites[-1] if self._call_sites else None
        modules = self._modules
        if call_site is not None and writes and _called_from_user_code():
            # the user's own code runs inside the built-in module (a saved-tensor pack hook, a
            # forward pre-hook): the write is at its line, and belongs to no built-in module unless
            # it runs in a hook registered on that module
            call_site = user_frames(3, skip=3)
            if forward_hook_of(modules[-1], call_site) is None:
                while modules and type(modules[-1]).__module__.startswith("torch."):
                    modules = modules[:-1]
        if call_site is None and not backward:
            if writes:
                call_site = user_frames(3, skip=3)
            else:
                call_site = (self._function_site if self._calls else _direct_call_site(2)) or user_frames(
                    1, skip=3
                )
        elif call_site is None and writes:
            call_site = user_frames(3, skip=3)
        record = OpRecord(
            seq=seq,
            op=info.name,
            backward=backward,
            frames=call_site or (),
            modules=modules,
            optimizer=self._optimizer,
            writes=tuple(writes),
            grad_enabled=torch.is_grad_enabled(),
        )
        if writes:  # a slope or alpha decides whether an in-place activation's backward is defined
            record.scalars = tuple(float(a) for a in args if isinstance(a, (int, float)) and a is not True)
        if not backward:
            inputs = op_inputs(info, args, kwargs)
            keys = tuple([(storage_key(t), version_of(t)) for t in inputs])
            # parameters and other leaves that require grad are roots of the forward dataflow:
            # their initialisation ops are not a path between two activations
            producer = self._producers.of
            record.inputs = keys
            record.producers = tuple(
                [
                    None if t.requires_grad and t.is_leaf else producer(k)
                    for t, k in zip(inputs, keys, strict=True)
                ]
            )
            if writes and self._optimizer is None:
                record.names = _names_bound_to(writes[0].storage, skip=3)
        self.trace.ops.append(record)
        for w in writes:
            self.trace.writes_by_storage.setdefault(w.storage, []).append(seq)
        if writes and self._target is None and self._candidates and not backward:
            self._target_among_candidates(writes)
        elif writes and self._target is not None and self._stop_calls is None and not backward:
            self._note_target_write(writes)

        if backward:
            out = _run(undo, func, info, args, kwargs)
        else:  # the undo log is told what this op allocated below, from the keys recorded anyway
            if undo is not None:
                undo.before(info, args, kwargs)
            out = func(*args, **kwargs)

        if written_lists and info.foreach:
            for tensors in written_lists:
                bump_versions_foreach_missed(tensors)
        if not backward:
            outputs = [out] if isinstance(out, torch.Tensor) else list(tensors_in(out))
            record.is_view = info.is_view and not writes
            bumped = {w.storage: w.version_before + 1 for w in writes}
            keys_out = []
            for t in outputs:
                storage = storage_key(t)
                # an in-place op returns its argument before autograd bumps the version
                key = (storage, bumped.get(storage, version_of(t)))
                keys_out.append(key)
                if not record.is_view:
                    self._producers.made(key, seq, t)
                elif self._calls:  # the view a refused write went into (a forward failure reads it)
                    with contextlib.suppress(AttributeError, RuntimeError):  # tensors with __slots__
                        setattr(t, TENSOR_SEQ_ATTR, seq)
            for w, t in zip(writes, written, strict=True):  # the written value's next version is this op's
                self._producers.made((w.storage, w.version_before + 1), seq, t)
            record.outputs = tuple(keys_out)
            if outputs:
                record.output_shape = shape_of(outputs[0])
                record.output_dtype = outputs[0].dtype
            if undo is not None and not (info.is_view or info.written):
                undo.allocated(record.outputs, record.inputs)
        return out

    # -- forward-time errors and detach_

    def on_function(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if func is _DETACH_ and args and isinstance(args[0], torch.Tensor):
            self.trace.detaches.append(
                DetachEvent(len(self.trace.ops), storage_key(args[0]), user_frames(3, skip=3), self._modules)
            )
        # a torch call made straight from the user's code: its aten ops share this one frame
        caller = sys._getframe(2)
        code = caller.f_code
        outer = self._function_site
        kind = file_kind(code.co_filename)
        if kind == USER:
            self._function_site = (Frame(code.co_filename, caller.f_lineno, code.co_name),)
        elif kind == LIBRARY:
            # a library's line has the user's line that ran it beside it: its ops walk the stack
            self._function_site = None
        first_seq = len(self.trace.ops)
        try:
            return func(*args, **kwargs)
        except RuntimeError as exc:
            if self.trace.forward_failure is None and member_of(exc, confirmable=True) is not None:
                self.trace.forward_failure = self._forward_failure(func, exc, args, kwargs, first_seq)
            raise
        finally:
            self._function_site = outer

    def _forward_failure(
        self,
        func: Callable[..., Any],
        exc: RuntimeError,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        first_seq: int,
    ) -> ForwardFailure:
        # the tensor written: an out= argument, else the first tensor (self of a method, x of F.relu)
        out = kwargs.get("out")
        target = (
            out
            if isinstance(out, torch.Tensor)
            else next((a for a in args if isinstance(a, torch.Tensor)), None)
        )
        grad_fn = target.grad_fn if target is not None else None
        inputs = [t for a in args for t in tensors_in(a)] + [
            t for name, a in kwargs.items() if name != "out" for t in tensors_in(a)
        ]
        frames = user_frames(3, skip=4)
        return ForwardFailure(
            function=_function_name(func),
            message=str(exc),
            frames=frames,
            modules=self._modules,
            tensor=tensor_info(target) if target is not None else None,
            view_seq=getattr(target, TENSOR_SEQ_ATTR, None) if target is not None else None,
            optimizer=self._optimizer,
            custom_function_view=isinstance(grad_fn, torch.autograd.function.BackwardCFunction),
            first_seq=first_seq,
            during_backward=func in _BACKWARD_ENTRIES or torch._C._current_graph_task_id() != -1,
            grad_fn=type(grad_fn).__name__ if grad_fn is not None else None,
            call=self._unrecorded_call(func, inputs, target, frames),
            grad_inputs=tuple(
                self._producers.of((storage_key(t), version_of(t))) for t in inputs if t.requires_grad
            ),
            running_op=_running_op(exc),
        )

    def _unrecorded_call(
        self,
        func: Callable[..., Any],
        inputs: list[torch.Tensor],
        target: torch.Tensor | None,
        frames: tuple[Frame, ...],
    ) -> OpRecord:
        """The failing call as the op it would have been: autograd refused it before the dispatcher."""
        keys = tuple((storage_key(t), version_of(t)) for t in inputs)
        record = OpRecord(
            seq=len(self.trace.ops),
            op=_function_name(func),
            backward=False,
            frames=frames,
            modules=self._modules,
            optimizer=self._optimizer,
            inputs=keys,
            producers=tuple(
                None if t.requires_grad and t.is_leaf else self._producers.of(k)
                for t, k in zip(inputs, keys, strict=True)
            ),
            writes=(Write(storage_key(target), version_of(target), region_of(target)),)
            if target is not None
            else (),
        )
        if target is not None:
            record.output_shape, record.output_dtype = shape_of(target), target.dtype
        return record


def _run(
    undo: OpObserver | None, func: Any, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if undo is None:
        return func(*args, **kwargs)
    undo.before(info, args, kwargs)
    out = func(*args, **kwargs)
    undo.after(info, args, kwargs, out)
    return out


def _direct_call_site(skip: int) -> tuple[Frame, ...] | None:
    """The user's line when it called torch directly (a built-in function, a Tensor method), else None
    (torch's own Python code stands between: ``F.relu``, an optimizer). This is the frame a function
    mode sees as the caller of the call, and it is kept as that mode kept it: one frame, as it is."""
    frame = sys._getframe(skip)
    while frame is not None and is_own_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or not is_user_file(frame.f_code.co_filename):
        return None
    code = frame.f_code
    return (Frame(code.co_filename, frame.f_lineno, code.co_name),)


class _OwnHooksEnd:
    """The last forward hook of a module with hooks of its own, for the replay's duration.

    It lives in the module's hook dict, so a copy of the module made in the replay (``deepcopy``,
    ``torch.save`` of the whole model) copies it: a copy is a hook that does nothing, and pickles
    where the recorder would not.
    """

    __slots__ = ("_leave",)

    def __init__(self, leave: Callable[[torch.nn.Module], None]) -> None:
        self._leave = leave

    def __call__(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self._leave(module)

    def __reduce__(self) -> tuple[Callable[[], Callable[..., None]], tuple[()]]:
        return _finished_hook_end, ()


def _finished_hook_end() -> Callable[..., None]:
    return _no_hook


def _no_hook(module: torch.nn.Module, args: Any, output: Any) -> None:
    """What a copy of :class:`_OwnHooksEnd` is: the replay it marked the end for is over."""


def _called_from_user_code() -> bool:
    """The op being dispatched was called by the user's code or a library's (not by torch's module
    code): the first frame above our own (the recorder's modes, the undo log's) is such a frame."""
    frame = sys._getframe(3)
    while frame is not None and is_own_file(frame.f_code.co_filename):
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and is_code_file(frame.f_code.co_filename)


def _function_forward(node: Any) -> Frame | None:
    """The ``def forward`` of the user's autograd.Function that ``node`` is the backward of."""
    cls = getattr(node, "_forward_cls", None)
    code = getattr(getattr(cls, "forward", None), "__code__", None)
    if cls is None or code is None or not is_code_file(code.co_filename):
        return None
    return Frame(code.co_filename, code.co_firstlineno, code.co_name, cls.__name__)


def _inside_checkpoint() -> bool:
    """torch.utils.checkpoint is unpacking: it saved the inputs to recompute the forward now."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith(_CHECKPOINT_FILE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _running_op(exc: BaseException) -> str | None:
    """The aten op a Python dispatch mode was running when ``exc`` was raised (the selective
    checkpoint's cache raises inside its ``__torch_dispatch__(func, ...)``)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        dispatching = tb.tb_frame.f_code.co_name == "__torch_dispatch__"
        func = tb.tb_frame.f_locals.get("func") if dispatching else None
        if isinstance(func, torch._ops.OpOverload):
            found = str(func)
        tb = tb.tb_next
    return found


def _function_name(func: Callable[..., Any]) -> str:
    """``Tensor.mul_``, ``F.relu``, ``torch.relu_``: the name as the user wrote the call."""
    name = getattr(func, "__name__", str(func))
    module = getattr(func, "__module__", None)
    if module is None or getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{name}"
    if module == "torch.nn.functional":
        return f"F.{name}"
    return f"torch.{name}" if module.startswith("torch") else f"{module}.{name}"


@contextmanager
def _handle(handle: RemovableHandle) -> Iterator[None]:
    try:
        yield
    finally:
        handle.remove()


@plain_dispatch
class _DispatchRecorder(TorchDispatchMode):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.on_op: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any] = recorder.on_op

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return self.on_op(func, args, kwargs or {})

    def end(self) -> None:
        """Let go of the recorder: the recorder holds this mode, and the cycle would keep each
        recorder, its whole trace with it, alive until the garbage collector runs."""
        self.on_op = _recording_ended


def _recording_ended(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    raise RuntimeError(f"inplace_magic: {func} dispatched to a recorder that has ended")


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return self.recorder.on_function(func, args, kwargs or {})
