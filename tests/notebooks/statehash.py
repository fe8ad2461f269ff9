"""A digest of everything a notebook session holds, to compare a plain failing run with one under
``%%gradcheck``: the oracle of the replay-state tests, written without ``inplace_magic`` on purpose.

Per name of the namespace: tensors (values, dtype, shape, requires_grad, version, ``.grad``),
modules and optimizers (every attribute, so parameters, buffers and optimizer state), containers
of any size and depth, random generator objects (their state), and iterators (their position, read
as the items they still give: a generator's next :data:`ITEMS`). The global random states (torch,
numpy, random, CUDA when it is up) come under ``<random>``. Iterators are read last, because
reading them moves them on: call :func:`digest` once, at the end of a session.
"""

from __future__ import annotations

import hashlib
import io
import random
import types
from collections.abc import Iterator
from typing import Any

import numpy
import torch

ITEMS = 20  # items read from an iterator that may never end

_SKIP_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def _bytes(t: torch.Tensor) -> bytes:
    data = t.detach().cpu().contiguous()
    return data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""


def _tensor(t: torch.Tensor) -> str:
    version = -1 if t.is_inference() else t._version
    meta = f"tensor {t.dtype}{list(t.shape)} rg={t.requires_grad} v={version}"
    grad = _tensor(t.grad) if t.is_leaf and t.grad is not None else "-"
    return f"{meta} {hashlib.sha256(_bytes(t)).hexdigest()[:16]} grad=({grad})"


def _generator(value: Any) -> str | None:
    if isinstance(value, torch.Generator):
        return "torch.Generator " + hashlib.sha256(_bytes(value.get_state())).hexdigest()[:16]
    if isinstance(value, random.Random):
        return f"random.Random {_text(value.getstate())}"
    if isinstance(value, numpy.random.Generator):
        return f"numpy Generator {value.bit_generator.state!r}"
    if isinstance(value, numpy.random.RandomState):
        state = value.get_state()
        return f"numpy RandomState {state[1].tobytes().hex()[:32]} {state[2:]}"
    return None


def _text(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _is_iterator(value: Any) -> bool:
    return hasattr(type(value), "__next__") and not isinstance(value, io.IOBase)


class _Digest:
    def __init__(self) -> None:
        self.seen: dict[int, str] = {}
        self.alive: list[Any] = []  # what ``seen`` names stays alive: an id is never reused meanwhile
        self.iterators: list[tuple[str, Any]] = []  # read at the very end

    def of(self, value: Any, path: str) -> str:
        if isinstance(value, (str, bytes, int, float, complex, bool, type(None), range, slice)):
            return repr(value)
        if id(value) in self.seen:
            return f"<same as {self.seen[id(value)]}>"
        self.seen[id(value)] = path
        self.alive.append(value)
        if isinstance(value, torch.Tensor):
            return _tensor(value)
        if isinstance(value, numpy.ndarray):
            return f"array {value.dtype}{value.shape} {hashlib.sha256(value.tobytes()).hexdigest()[:16]}"
        generator = _generator(value)
        if generator is not None:
            return generator
        if _is_iterator(value):
            self.iterators.append((path, value))
            return "<iterator: see below>"
        if isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
            return f"<{type(value).__name__} {getattr(value, '__name__', '?')}>"
        if isinstance(value, dict):
            items = [f"{k!r}: {self.of(v, f'{path}[{k!r}]')}" for k, v in list(value.items())]
            return "{" + ", ".join(items) + "}"
        if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "deque":
            ordered = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
            return f"{type(value).__name__}[" + ", ".join(self.of(v, f"{path}[]") for v in ordered) + "]"
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            inner = self.of(dict(attributes), f"{path}.__dict__")
            return f"{type(value).__name__}({inner})"
        return f"<{type(value).__name__}>"

    def read_iterators(self) -> Iterator[tuple[str, str]]:
        while self.iterators:
            path, iterator = self.iterators.pop(0)
            items = []
            for _ in range(ITEMS):
                try:
                    items.append(self.of(next(iterator), f"{path}.next"))
                except StopIteration:
                    items.append("<end>")
                    break
            yield f"{path} (next items)", repr(items)


def global_random_state() -> str:
    parts = [
        hashlib.sha256(_bytes(torch.get_rng_state())).hexdigest()[:16],
        numpy.random.get_state()[1].tobytes().hex()[:32] + str(numpy.random.get_state()[2:]),
        _text(random.getstate()),
    ]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        parts += [hashlib.sha256(_bytes(s)).hexdigest()[:16] for s in torch.cuda.get_rng_state_all()]
    return " ".join(parts)


def digest(namespace: dict[str, Any]) -> dict[str, str]:
    """name -> digest of everything below it, plus the global random states and each iterator's
    next items. Moves iterators on: the last thing to do with a namespace."""
    out = {"<random>": global_random_state()}
    state = _Digest()
    for name in sorted(namespace):
        if not name.startswith("_") and name not in _SKIP_NAMES:
            out[name] = state.of(namespace[name], name)
    out.update(state.read_iterators())
    return out
