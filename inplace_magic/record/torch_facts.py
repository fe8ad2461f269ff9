"""Facts about torch that the recorder and the undo log both rely on, measured or read once.

* which arguments an op writes, from its schema (``Tensor(a!)``), cached per overload; batch norm's
  running statistics, which its schema does not annotate;
* the identity of a tensor's memory (views share it) and its version counter;
* whether in-place ``_foreach_*`` ops bump version counters under a dispatch mode, per device type
  (on torch 2.13 CPU they do not; on CUDA they do: see the engine notes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .records import Region, TensorInfo


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


def tensor_info(t: torch.Tensor) -> TensorInfo:
    return TensorInfo(
        shape=shape_of(t),
        dtype=str(t.dtype).replace("torch.", ""),
        storage=storage_key(t),
        version=version_of(t),
        requires_grad=bool(t.requires_grad),
        is_leaf=bool(t.is_leaf),
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


_FOREACH_BUMPS: dict[str, bool] = {}


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


@dataclass(frozen=True, slots=True)
class OpInfo:
    name: str
    written: tuple[tuple[int, str], ...]  # (position, name) of each ``Tensor(a!)`` argument
    # batch norm updates running_mean/running_var in place, but its schema has no ``(a!)`` and it
    # bumps no version: invisible to the diagnosis, yet a write the replay's undo log must restore
    unannotated_written: tuple[tuple[int, str], ...]
    is_view: bool
    foreach: bool


_OP_INFO: dict[Any, OpInfo] = {}
_UNANNOTATED_WRITES = frozenset({"running_mean", "running_var"})


def op_info(func: Any) -> OpInfo:
    """What the schema says about an op, computed once per op overload (a hot path)."""
    info = _OP_INFO.get(func)
    if info is None:
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
        info = _OP_INFO[func] = OpInfo(str(func), written, unannotated, is_view, foreach)
    return info
