"""Undo what a diagnostic replay did, so the kernel is left exactly as the failed run left it.

Nothing is copied up front. Tensors are restored from an undo log kept at the dispatch level: the
first time an op writes a storage that existed before the replay, that storage is copied once; at
the end every copy is written back and each written tensor gets its shape and version counter back.
Storages the replay allocated itself are never copied. The log sees the ops through the recorder's
own dispatch mode (one Python dispatch per op for both), or through its own mode when used alone.
``t.data = other`` reaches no aten op: :class:`DataAssignments` keeps what ``t`` held before and
puts it back. Python-side state is restored from shallow snapshots: the names of the namespace, and
below the names the replayed cells reach (with the names the notebook's own functions, methods and
closures met on the way read in turn), the ``__dict__`` of modules, optimizers and other objects, the
containers they hold (lists, dicts, sets, deques, of any size and at any depth, up to
:data:`MAX_OBJECTS` objects in all), and the ``.grad`` of every leaf tensor met. A snapshot thus
costs what the replay can reach, not what the session holds.

What is *not* undone: prints, files, network, numpy arrays written in place, state held by objects
the replayed code cannot reach by name (``globals()[...]``, objects held by other libraries; their
tensors' data is still restored), and ``detach_()`` on a tensor that existed before (autograd
history cannot be re-attached). Random generators and
iterators are :mod:`.streams`'.
"""

from __future__ import annotations

import contextlib
import operator
import signal
import threading
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..record.torch_facts import (
    OpInfo,
    arguments_at,
    bump_written_lists_foreach_missed,
    is_leaf,
    op_info,
    op_inputs,
    plain_dispatch,
    storage_key,
    tensors_in,
    version_of,
)
from .celldeps import code_names


def _tensors_at(
    places: tuple[tuple[int, str], ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[torch.Tensor]:
    """The tensors an op is given at its schema's ``places`` (``OpInfo.written``, the annotated
    writes; ``unannotated_written``, batch norm's running stats)."""
    return [t for value in arguments_at(places, args, kwargs) for t in tensors_in(value)]


def _geometry(t: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    return tuple(int(s) for s in t.shape), tuple(int(s) for s in t.stride()), int(t.storage_offset())


@dataclass
class _Written:
    """A tensor written during the replay whose memory existed before it, as it was before."""

    tensor: torch.Tensor
    storage: torch.UntypedStorage  # ``set_`` may point the tensor at other memory: this is its own
    version: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int


@plain_dispatch
class WriteLog(TorchDispatchMode):
    """The undo log: copy a pre-existing storage once, the first time an op writes it.

    Under the recorder it is the recorder's observer (``Recorder(undo=log)``), called from the
    recorder's mode, and is not entered itself. Entered on its own it is a dispatch mode; it must
    then sit below any recorder, so that the copies it makes never show up as ops in a trace.
    """

    def __init__(self) -> None:
        super().__init__()
        self.watched = False  # a recorder calls before() and after() for every op (OpObserver)
        # told of each tensor an op's schema says it writes, before the op: the gradient reference
        # keeps saved values through it (fix.live.reference), so that no second mode sees every op
        self.before_each_write: Callable[[torch.Tensor], None] | None = None
        self._born: set[int] = set()  # storages the replay allocated: nothing to restore
        self._copies: dict[int, tuple[torch.UntypedStorage, torch.UntypedStorage]] = {}
        self._written: dict[int, _Written] = {}  # id(tensor) -> state before its first write

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        info = op_info(func)
        self.before(info, args, kwargs)
        out = func(*args, **kwargs)
        self.after(info, args, kwargs, out)
        # entered alone (a verification run), this is the only mode: the version bump a foreach
        # optimizer's op skips under it must be made here, or the error it causes would vanish
        bump_written_lists_foreach_missed(info, args, kwargs)
        return out

    def before(self, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if info.written or info.unannotated_written:
            annotated = _tensors_at(info.written, args, kwargs)
            for t in annotated + _tensors_at(info.unannotated_written, args, kwargs):
                self._before_write(t)
            if self.before_each_write is not None:
                for t in annotated:  # what the schema says the op writes, as torch's own mode reads it
                    self.before_each_write(t)

    def after(self, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        # a view or an in-place op returns memory of its inputs: nothing was allocated
        if not (info.is_view or info.written):
            self._note_allocations(info, args, kwargs, out)

    def allocated(self, outputs: tuple[tuple[int, int], ...], inputs: tuple[tuple[int, int], ...]) -> None:
        """What ``after`` finds, from the recorder's keys: the outputs whose memory is no input's."""
        born, copies = self._born, self._copies
        for key, _ in outputs:
            if key > 0 and key not in born and key not in copies and all(key != k for k, _ in inputs):
                born.add(key)

    def will_write(self, t: torch.Tensor) -> None:
        """``t`` may be written by an op this log will not see (backward run without the mode)."""
        self._before_write(t)

    def _before_write(self, t: torch.Tensor) -> None:
        key = storage_key(t)
        if key <= 0 or key in self._born:
            return
        if key not in self._copies:
            storage = t.untyped_storage()
            self._copies[key] = (storage, storage.clone())
        if id(t) not in self._written:
            self._written[id(t)] = _Written(t, t.untyped_storage(), version_of(t), *_geometry(t))

    def _note_allocations(
        self, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> None:
        # an output whose memory is not one of the inputs' was allocated by this op
        born = self._born
        if isinstance(out, torch.Tensor):  # most ops: one output, tested without building lists
            key = storage_key(out)
            if key <= 0 or key in born or key in self._copies:
                return
            if all(storage_key(t) != key for t in op_inputs(info, args, kwargs)):
                born.add(key)
            return
        keys = [key for key in map(storage_key, tensors_in(out)) if key > 0 and key not in born]
        if keys:
            inputs = {storage_key(t) for t in op_inputs(info, args, kwargs)}
            born.update(key for key in keys if key not in inputs and key not in self._copies)

    @property
    def copied_bytes(self) -> int:
        return sum(copy.nbytes() for _, copy in self._copies.values())

    def restore(self) -> None:
        """Write every copy back, then each tensor's shape and version counter (views share one,
        so the oldest recorded version is set last)."""
        with torch.no_grad():
            for storage, copy in self._copies.values():
                if storage.nbytes() != copy.nbytes():
                    storage.resize_(copy.nbytes())
                storage.copy_(copy)
            for item in reversed(list(self._written.values())):
                t = item.tensor
                moved = t.untyped_storage().data_ptr() != item.storage.data_ptr()
                if moved or _geometry(t) != (item.size, item.stride, item.offset):
                    with contextlib.suppress(RuntimeError):
                        t.set_(item.storage, item.offset, item.size, item.stride)
                if item.version >= 0:
                    with contextlib.suppress(RuntimeError):  # inference tensors have no counter
                        torch._C._autograd._unsafe_set_version_counter((t,), (item.version,))
        self._copies.clear()
        self._written.clear()
        self._born.clear()


_DATA: Any = torch._C.TensorBase.data  # the C property itself (typed as a Tensor by torch)


class DataAssignments:
    """``t.data = other`` during the replay: what ``t`` held before, put back afterwards.

    The assignment swaps the tensor's memory without any aten op, so the undo log never sees it
    (a momentum encoder's ``p_k.data = p_k.data * m + p_q.data * (1 - m)`` would be applied twice).
    The first assignment to each tensor keeps an alias of its memory, its shape and its version.
    While entered, ``torch.Tensor.data`` is a property of ours that does this before it assigns: a
    function mode would see it too, but costs on every torch call the replay makes.
    """

    def __init__(self) -> None:
        self._before: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}  # id -> (t, alias, version)
        self._shadowed: Any = None

    def __enter__(self) -> DataAssignments:
        self._shadowed = torch.Tensor.__dict__.get("data")
        torch.Tensor.data = property(_DATA.__get__, self._assign)  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shadowed is None:
            del torch.Tensor.data
        else:
            torch.Tensor.data = self._shadowed  # type: ignore[method-assign]

    def _assign(self, t: torch.Tensor, value: torch.Tensor) -> None:
        if id(t) not in self._before:
            self._before[id(t)] = (t, _read_data(t), version_of(t))
        _DATA.__set__(t, value)

    def restore(self) -> None:
        for t, alias, version in self._before.values():
            with torch._C.DisableTorchFunction():  # our own assignment is no user call
                _DATA.__set__(t, alias)
            if version >= 0:
                with contextlib.suppress(RuntimeError):
                    torch._C._autograd._unsafe_set_version_counter((t,), (version,))
        self._before.clear()


def _read_data(t: torch.Tensor) -> torch.Tensor:
    with torch._C.DisableTorchFunction():  # our own read of .data is no user call
        data: torch.Tensor = _DATA.__get__(t, type(t))
    return data


# ---------------------------------------------------------------------------------------------- objects

_ATOMS = (str, bytes, int, float, complex, bool, type(None), range, slice)
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)
_ATOM_TYPES = frozenset(_ATOMS)  # exact types: the cheap test for the millions of floats in a history
# exact types whose empty instances are set aside as they are met, never queued: a module's dozen
# hook dicts are seven in ten of what a small model's snapshot meets (a notebook's own subclass is
# walked as before, for the names its methods read)
_PLAIN_CONTAINERS = frozenset({dict, OrderedDict, list, set, deque})
# the walk stops here (a notebook rarely holds a tenth of it); the note on the error then says so
MAX_OBJECTS = 200_000

# what the snapshot does with a value depends on its type alone: worked out once per type (a model
# is a few types met hundreds of times), bounded for notebooks that make new classes at each run
_DICT, _LIST, _SET, _DEQUE, _SEQUENCE, _TENSOR, _OPAQUE_KIND, _OBJECT = range(8)  # containers first
_KINDS: dict[type, int] = {}
_MAX_KINDS = 4096


def _kind_of(kind: type) -> int:
    found = _KINDS.get(kind)
    if found is not None:
        return found
    if len(_KINDS) >= _MAX_KINDS:
        _KINDS.clear()
    # in the order the isinstance tests ran: a tensor first, then the containers (their subclasses
    # too: OrderedDict, defaultdict)
    for base, value in (
        (torch.Tensor, _TENSOR),
        (dict, _DICT),
        (list, _LIST),
        (set, _SET),
        (deque, _DEQUE),
        ((tuple, frozenset), _SEQUENCE),
        (_OPAQUE, _OPAQUE_KIND),
    ):
        if issubclass(kind, base):
            found = value
            break
    else:
        found = _OBJECT
    _KINDS[kind] = found
    return found


@dataclass
class ObjectSnapshot:
    """Shallow copies of the namespace and of the mutable Python state reachable from it."""

    namespace: dict[str, Any]
    names: dict[str, Any] = field(default_factory=dict)
    dicts: list[tuple[dict[Any, Any], dict[Any, Any]]] = field(default_factory=list)
    lists: list[tuple[list[Any], list[Any]]] = field(default_factory=list)
    sets: list[tuple[set[Any], set[Any]]] = field(default_factory=list)
    deques: list[tuple[deque[Any], list[Any]]] = field(default_factory=list)
    leaves: list[tuple[torch.Tensor, torch.Tensor | None, bool]] = field(default_factory=list)
    # containers that were empty: nothing to copy or compare (most of a module's dicts are its
    # empty hook dicts, nine in ten of what a small model's snapshot met)
    empty: list[dict[Any, Any] | list[Any] | set[Any] | deque[Any]] = field(default_factory=list)
    complete: bool = True  # False: more than MAX_OBJECTS objects were reachable; the rest is not restored

    @classmethod
    def take(
        cls, namespace: dict[str, Any], skip: frozenset[str] = frozenset(), roots: set[str] | None = None
    ) -> ObjectSnapshot:
        """Snapshot the namespace's names, and the objects below ``roots`` (every name when None).

        From given roots the walk also follows the notebook's own code it meets (functions, bound
        methods, closures, instances of notebook classes) to the names that code reads: a hook
        registered in an earlier cell that appends to a global list is reached through the model.
        """
        snapshot = cls(namespace, names=dict(namespace))
        walk = _Walk(snapshot, namespace, skip, following=roots is not None)
        walk.names_done.update(roots if roots is not None else namespace.keys())
        walk.queue.extend(v for k, v in namespace.items() if k not in skip and (roots is None or k in roots))
        walk.run()
        return snapshot

    def record(self, value: Any, kind: int) -> list[Any]:
        """Snapshot ``value`` itself; return what it holds (to walk next). ``kind``: its type's
        :func:`_kind_of`."""
        if kind == _TENSOR:
            if is_leaf(value):
                self.leaves.append((value, value.grad, value.requires_grad))
            return []
        if kind < _SEQUENCE and not value:  # an empty container
            self.empty.append(value)
            return []
        if kind == _DICT:
            self.dicts.append((value, dict(value)))
            return [*value.keys(), *value.values()]
        if kind == _LIST:
            items = list(value)
            self.lists.append((value, items))
            return items
        if kind == _SET:
            self.sets.append((value, set(value)))
            return list(value)
        if kind == _DEQUE:
            items = list(value)
            self.deques.append((value, items))
            return items
        if kind == _SEQUENCE:
            return list(value)
        # a module's submodules, parameters, buffers and hooks are in the dicts of its __dict__
        attributes = getattr(value, "__dict__", None)
        if not isinstance(attributes, dict) or type(value).__module__.startswith(("IPython", "ipykernel")):
            return []
        self.dicts.append((attributes, dict(attributes)))
        return list(attributes.values())

    def restore(self) -> None:
        for tensor, grad, requires_grad in self.leaves:
            with contextlib.suppress(RuntimeError):
                if tensor.requires_grad != requires_grad:
                    tensor.requires_grad_(requires_grad)
                if tensor.grad is not grad:
                    tensor.grad = grad
        for container, items in self.dicts:
            _restore_dict(container, items)
        for emptied in self.empty:
            if emptied:
                emptied.clear()
        for lst, list_items in self.lists:
            if len(lst) != len(list_items) or not all(map(operator.is_, lst, list_items)):
                lst[:] = list_items
        for st, set_items in self.sets:
            if {id(x) for x in st} != {id(x) for x in set_items}:  # identity: tensors compare elementwise
                st.clear()
                st.update(set_items)
        for queue, queue_items in self.deques:
            if len(queue) != len(queue_items) or not all(map(operator.is_, queue, queue_items)):
                queue.clear()
                queue.extend(queue_items)
        _restore_dict(self.namespace, self.names)


@dataclass
class _Walk:
    """One walk of :meth:`ObjectSnapshot.take`: each object once, at most :data:`MAX_OBJECTS`."""

    snapshot: ObjectSnapshot
    namespace: dict[str, Any]
    skip: frozenset[str]
    following: bool  # follow the notebook's own code to the names it reads
    queue: list[Any] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    names_done: set[str] = field(default_factory=set)

    def run(self) -> None:
        seen, queue, snapshot = self.seen, self.queue, self.snapshot
        empty = snapshot.empty
        own_module = self.namespace.get("__name__")
        while queue:
            value = queue.pop()
            kind = type(value)
            if kind in _ATOM_TYPES or id(value) in seen:
                continue
            if len(seen) >= MAX_OBJECTS:
                snapshot.complete = False
                return
            seen.add(id(value))
            what = _kind_of(kind)
            if what == _OPAQUE_KIND:
                if self.following:
                    self._follow_code(value)
                continue
            if self.following and kind.__module__ == own_module and id(kind) not in seen:
                seen.add(id(kind))
                self._follow_code(kind)  # an instance of a notebook class: what its methods read
            for child in snapshot.record(value, what):
                kind = type(child)
                if kind in _ATOM_TYPES:
                    continue
                if kind in _PLAIN_CONTAINERS and not child:
                    empty.append(child)
                else:
                    queue.append(child)

    def _follow_code(self, value: Any) -> None:
        if isinstance(value, types.MethodType):
            self.queue.append(value.__self__)
            value = value.__func__
        if isinstance(value, types.FunctionType) and value.__globals__ is self.namespace:
            self.queue.extend(cell.cell_contents for cell in value.__closure__ or () if _filled(cell))
        elif not isinstance(value, (types.FunctionType, type)):
            return
        for name in code_names(value, self.namespace) - self.names_done:
            self.names_done.add(name)
            if name not in self.skip:
                self.queue.append(self.namespace[name])


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises on read)
    except ValueError:
        return False
    return True


def _restore_dict(container: dict[Any, Any], items: dict[Any, Any]) -> None:
    """Put back the keys and the very objects ``container`` held (no write when nothing changed)."""
    # unchanged, the common case: the same keys in the same order, each holding the very same object
    # (tested in C: a snapshot puts back hundreds of a model's dicts, nearly all as they were)
    if container.keys() == items.keys() and all(map(operator.is_, container.values(), items.values())):
        return
    for key in [k for k in container if k not in items]:
        del container[key]
    for key, value in items.items():
        if key not in container or container[key] is not value:
            container[key] = value


# ---------------------------------------------------------------------------------------------- signals


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C while state is being restored (a half-restored kernel is worse than a wait)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
