"""Facts about torch that the recorder and the undo log both rely on, measured or read once.

* which arguments an op writes, from its schema (``Tensor(a!)``), cached per overload; batch norm's
  running statistics, which its schema does not annotate;
* the identity of a tensor's memory (views share it) and its version counter;
* whether in-place ``_foreach_*`` ops bump version counters under a dispatch mode, per device type
  (on torch 2.13 CPU they do not; on CUDA they do: see the engine notes);
* that a dispatch mode's ``__torch_dispatch__`` is wrapped in ``torch._disable_dynamo``, which costs
  on every op and imports ``torch._dynamo`` (seconds) on the first: :func:`plain_dispatch`;
* how many of a graph's nodes a walk from Python may meet: :data:`GRAPH_WALK_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .records import Region, TensorInfo

# A walk of an autograd graph from Python meets at most this many nodes (or gives up): torch frees
# a graph whose nodes had Python wrappers by recursion, and a chain of some 50,000 such nodes
# overflows the thread's stack when the graph goes, a segmentation fault (measured on torch 2.13:
# 30,000 freed; a walk of the first 20,000 nodes of a 300,000-node chain too). The models of the
# benchmarks and the library cases have a few hundred to 2,000 nodes.
GRAPH_WALK_LIMIT = 10_000


def storage_key(t: torch.Tensor) -> int:
    """Identity of the memory a tensor lives in; views share it with their base."""
    try:
        ptr = t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):
        ptr = 0  # wrapper subclasses have no real storage
    return ptr if ptr else -id(t)


def version_of(t: torch.Tensor) -> int:
    try:
        return int(t._version)
    except (RuntimeError, AttributeError):
        return -1  # inference tensors have no version counter


def shape_of(t: torch.Tensor) -> tuple[int, ...]:
    """The sizes of ``t``; a nested tensor's ragged dimensions are -1 (a strided nested tensor has
    no ``shape`` at all, a jagged one has symbolic sizes)."""
    if not t.is_nested:
        return tuple(t.shape)  # torch.Size holds plain ints (a hot path: once per recorded op)
    # a jagged tensor's ragged size is a symbolic int whose int() raises AttributeError
    unknown = (RuntimeError, TypeError, ValueError, AttributeError)
    sizes: list[int] = []
    for dim in range(t.dim()):
        try:
            sizes.append(int(t.size(dim)))
        except unknown:
            sizes.append(-1)
    return tuple(sizes)


def region_of(t: torch.Tensor) -> Region | None:
    """Which elements of its storage a view covers (``h[t]`` is not ``h[t + 1]``). None for a tensor
    that owns its storage (it covers all of it) and where strides do not apply (nested tensors)."""
    if not t._is_view() or t.is_nested:
        return None
    return int(t.storage_offset()), tuple(t.shape), t.stride()


def is_leaf(t: torch.Tensor) -> bool:
    """``t.is_leaf``, or False where torch refuses to say: a view returned by a custom Function
    whose base was then written in place (under ``no_grad``, say) raises on any look at its history,
    and such a tensor, left in a namespace, must not stop a walk over it. It is no leaf: it has a base."""
    try:
        return bool(t.is_leaf)
    except RuntimeError:
        return False


def tensor_info(t: torch.Tensor) -> TensorInfo:
    return TensorInfo(
        shape=shape_of(t),
        dtype=dtype_name(t.dtype),
        storage=storage_key(t),
        version=version_of(t),
        requires_grad=bool(t.requires_grad),
        is_leaf=is_leaf(t),
        nested=bool(t.is_nested),
        region=region_of(t),
    )


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """The tensors of an op argument: a tensor, or the tensors of a list (``Tensor[]``)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, torch.Tensor):
                yield item


def arguments_at(
    places: Iterable[tuple[int, str]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[Any]:
    """An op's arguments at its schema's places (position, name), each given by position or by keyword
    (``OpInfo.written``: what the op writes)."""
    for position, name in places:
        yield args[position] if position < len(args) else kwargs.get(name)


ModeType = TypeVar("ModeType", bound=type[TorchDispatchMode])


def plain_dispatch(mode: ModeType) -> ModeType:
    """Install ``mode``'s own ``__torch_dispatch__`` instead of the wrapper TorchDispatchMode puts
    around it (``torch._disable_dynamo``): a large share of the per-op cost, and its first call imports
    torch._dynamo. Our modes run only eagerly (compiled code runs eagerly under them), so dynamo never
    traces them."""
    method = mode.__dict__["__torch_dispatch__"]
    mode.__torch_dispatch__ = getattr(method, "__wrapped__", method)  # type: ignore[method-assign]
    return mode


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).replace("torch.", "")
    return name


_FOREACH_BUMPS: dict[str, bool] = {}


@plain_dispatch
class _PassThrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))


def foreach_bumps_versions(device: str = "cpu") -> bool:
    """Self-test: does an in-place ``_foreach_*`` op bump versions under a dispatch mode?

    Measured per device type because it differs: on torch 2.13 CPU it does not (upstream PR #191154
    fixes it), on torch 2.11 CUDA it does. Where it does, we must not bump a second time.
    """
    bumps = _FOREACH_BUMPS.get(device)
    if bumps is None:
        probe = torch.zeros(1, device=device)
        before = probe._version
        with _PassThrough():
            torch._foreach_add_([probe], 1.0)
        bumps = _FOREACH_BUMPS[device] = probe._version > before
    return bumps


def bump_versions_foreach_missed(tensors: list[torch.Tensor]) -> None:
    """The version bump an in-place ``_foreach_*`` op did not make under our dispatch mode, on the
    device types where it makes none (:func:`foreach_bumps_versions`): once, never twice."""
    if tensors and not foreach_bumps_versions(tensors[0].device.type):
        torch.autograd.graph.increment_version(tensors)


def bump_written_lists_foreach_missed(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """:func:`bump_versions_foreach_missed` for each tensor list an in-place ``_foreach_*`` op wrote
    (``info`` is its :func:`op_info`): what a dispatch mode of ours that sees every op on its own (the
    first pass's undo-log mode, the undo log entered alone) does after the op ran."""
    if not (info.foreach and info.written):
        return
    for value in arguments_at(info.written, args, kwargs):
        if isinstance(value, (list, tuple)):
            bump_versions_foreach_missed([v for v in value if isinstance(v, torch.Tensor)])


@dataclass(frozen=True, slots=True)
class OpInfo:
    name: str
    written: tuple[tuple[int, str], ...]  # (position, name) of each ``Tensor(a!)`` argument
    # batch norm updates running_mean/running_var in place, but its schema has no ``(a!)`` and it
    # bumps no version: invisible to the diagnosis, yet a write the replay's undo log must restore
    unannotated_written: tuple[tuple[int, str], ...]
    is_view: bool
    foreach: bool
    # positions of the arguments that can hold tensors; None: some argument's type may hide one
    tensor_positions: tuple[int, ...] | None = None


# keyed by id(): an ``OpOverload``'s own ``__hash__`` is Python code, and this is looked up several
# times per op (recorder, undo log, foreach bump); each entry holds its op, so the id stays its own
_OP_INFO: dict[int, tuple[Any, OpInfo]] = {}
_UNANNOTATED_WRITES = frozenset({"running_mean", "running_var"})
_NO_TENSOR = frozenset(
    f"{wrap[0]}{base}{wrap[1]}"
    for base in (
        *("int", "bool", "number", "float", "complex", "str", "Device", "Generator", "Layout"),
        *("ScalarType", "MemoryFormat", "SymInt"),
    )
    for wrap in (("", ""), ("Optional[", "]"), ("List[", "]"), ("Optional[List[", "]]"))
)


def _tensor_positions(schema: Any) -> tuple[int, ...] | None:
    positions = []
    for position, argument in enumerate(schema.arguments):
        kind = str(argument.type)
        if "Tensor" in kind:
            positions.append(position)
        elif kind not in _NO_TENSOR:
            return None
    return tuple(positions)


def op_inputs(info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors an op reads, in argument order (positional, then keyword): what
    ``tensors_in`` finds in each argument, looking only where the schema allows a tensor."""
    positions = info.tensor_positions
    found: list[torch.Tensor] = []
    for value in args if positions is None else (args[i] for i in positions if i < len(args)):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(item for item in value if isinstance(item, torch.Tensor))
    if kwargs:
        found.extend(t for value in kwargs.values() for t in tensors_in(value))
    return found


def op_info(func: Any) -> OpInfo:
    """What the schema says about an op, computed once per op overload (a hot path)."""
    entry = _OP_INFO.get(id(func))
    if entry is not None and entry[0] is func:
        return entry[1]
    schema = func._schema
    written = tuple(
        (position, argument.name)
        for position, argument in enumerate(schema.arguments)
        if argument.alias_info is not None and argument.alias_info.is_write
    )
    unannotated = tuple(
        (position, argument.name)
        for position, argument in enumerate(schema.arguments)
        if "batch_norm" in schema.name and argument.name in _UNANNOTATED_WRITES
    )
    is_view = bool(func.is_view) or any(
        r.alias_info is not None and not r.alias_info.is_write for r in schema.returns
    )
    foreach = schema.name.startswith("aten::_foreach_")
    info = OpInfo(str(func), written, unannotated, is_view, foreach, _tensor_positions(schema))
    _OP_INFO[id(func)] = (func, info)
    return info
