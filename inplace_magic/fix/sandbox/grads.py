"""Gradients as comparable data: which leaves a program's namespace holds, and their ``.grad``.

Leaves are named from the namespace (``model.fc1.weight``, ``opt.param_groups[0][2]``, ``w``) so
the same parameter gets the same name in the original and in the fixed program.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator
from typing import Any

import torch

from ...record.torch_facts import is_leaf

Snapshot = dict[str, "torch.Tensor | None"]

_MAX_ITEMS = 256


def _walk(name: str, value: Any, depth: int) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        if value.requires_grad and is_leaf(value):
            yield name, value
    elif isinstance(value, torch.nn.Module):
        for pname, param in value.named_parameters():
            yield f"{name}.{pname}", param
    elif isinstance(value, torch.optim.Optimizer):
        for g, group in enumerate(value.param_groups):
            for i, param in enumerate(group.get("params", [])):
                yield f"{name}.param_groups[{g}][{i}]", param
    elif depth >= 2:
        return
    elif isinstance(value, (list, tuple)) and len(value) <= _MAX_ITEMS:
        for i, item in enumerate(value):
            yield from _walk(f"{name}[{i}]", item, depth + 1)
    elif isinstance(value, dict) and len(value) <= _MAX_ITEMS:
        for key, item in list(value.items()):
            if isinstance(key, (str, int)):
                yield from _walk(f"{name}[{key!r}]", item, depth + 1)
    elif getattr(type(value), "__module__", None) == "__main__" and hasattr(value, "__dict__"):
        for key, item in list(vars(value).items()):
            yield from _walk(f"{name}.{key}", item, depth + 1)


def leaves(namespace: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every leaf tensor that requires grad, modules first so parameters get their module's name."""
    found: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    names = sorted(
        k
        for k, v in namespace.items()
        if not k.startswith("_") and not isinstance(v, (types.ModuleType, type))
    )
    for modules_pass in (True, False):
        for name in names:
            value = namespace[name]
            if isinstance(value, torch.nn.Module) != modules_pass:
                continue
            for path, tensor in _walk(name, value, 0):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    found[path] = tensor
    return found


def snapshot(namespace: dict[str, Any]) -> Snapshot:
    return {
        name: (t.grad.detach().clone() if t.grad is not None else None)
        for name, t in leaves(namespace).items()
    }


def count(snap: Snapshot) -> int:
    return sum(1 for g in snap.values() if g is not None)


def all_finite(snap: Snapshot) -> bool:
    return all(
        bool(torch.isfinite(g).all()) for g in snap.values() if g is not None and g.is_floating_point()
    )


def _tolerance(dtype: torch.dtype) -> tuple[float, float]:
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2, 1e-3
    if dtype == torch.float64:
        return 1e-7, 1e-9
    # float32: the in-place and out-of-place kernels of one op may round differently (ELU's
    # backward uses its result when in place, its input otherwise).
    return 1e-4, 1e-6


def compare(pairs: list[tuple[str, Snapshot, Snapshot]]) -> tuple[int, list[str]]:
    """(number of gradients compared, names that differ) over labelled (reference, candidate) pairs."""
    compared, mismatched = 0, []
    for label, reference, candidate in pairs:
        for name in reference.keys() & candidate.keys():
            a, b = reference[name], candidate[name]
            if a is None and b is None:
                continue
            compared += 1
            if a is None or b is None or a.shape != b.shape or not _close(a, b):
                mismatched.append(f"{name} ({label})")
    return compared, mismatched


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not a.is_floating_point():
        return bool(torch.equal(a, b.to(a.dtype)))
    rtol, atol = _tolerance(a.dtype)
    scale = float(a.abs().max()) if a.numel() else 0.0
    if not math.isfinite(scale):
        return bool(torch.equal(a.isfinite(), b.isfinite()))
    return bool(torch.allclose(a, b.to(a.dtype), rtol=rtol, atol=atol + rtol * 1e-3 * scale, equal_nan=True))
