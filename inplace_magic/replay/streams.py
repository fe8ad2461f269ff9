"""The streams a session holds: random generator objects and iterators, found from its names.

A stream hands out the next numbers or the next batch, and a replay that reads it would see other
data than the first run saw and would leave it moved on. :class:`Streams` finds them (a bounded
walk, cheap enough to run before every cell) and remembers where each stood; a replay sets each
back to where the failing cell *started* (:meth:`Streams.rewind_to`), runs, then puts each back to
where the failing run *left* it (:meth:`Streams.put_back`). What cannot be set back (a generator) is
listed so that the replay can refuse to run behind the user's back.

Found: up to :data:`MAX_DEPTH` attributes or items below a name (``loader.sampler.generator``),
the first :data:`MAX_ITEMS` items of a container, :data:`MAX_OBJECTS` objects in all. Tensors,
arrays, optimizers and the insides of functions are not walked.
"""

from __future__ import annotations

import itertools
import types
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from .generators import GeneratorState, generator_kind_of
from .iterators import Position, is_iterator_type, iterator_kind, position

MAX_DEPTH = 3
MAX_ITEMS = 1_000
MAX_OBJECTS = 5_000

_SKIPPED = (
    str,
    bytes,
    bytearray,
    int,
    float,
    complex,
    bool,
    type(None),
    range,
    slice,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    torch.Tensor,
    torch.optim.Optimizer,  # its state is tensors: the undo log's
)


class _TypeFacts(NamedTuple):
    skipped: bool  # an instance of _SKIPPED: neither a stream nor walked
    generator: str | None  # generator_kind_of it
    iterator: bool  # its values are iterators


# what the walk asks of each object depends on its type alone: asked once per type, the walk before
# every cell costs a third of what it did (a model's modules are a handful of types); bounded, as a
# notebook that redefines its classes makes new types at each run
_FACTS: dict[type, _TypeFacts] = {}
_MAX_FACTS = 4096


def _facts(kind: type) -> _TypeFacts:
    facts = _FACTS.get(kind)
    if facts is None:
        if len(_FACTS) >= _MAX_FACTS:
            _FACTS.clear()
        # a numpy type exists only once numpy is imported: a type found no generator before stays none
        facts = _TypeFacts(issubclass(kind, _SKIPPED), generator_kind_of(kind), is_iterator_type(kind))
        _FACTS[kind] = facts
    return facts


@dataclass(frozen=True)
class Stream:
    """One stream, where it was found, and its state then (None: it cannot be set back)."""

    value: Any
    path: str
    kind: str
    state: GeneratorState | Position | None

    def describe(self) -> str:
        return f"`{self.path}` ({self.kind})"


@dataclass
class Streams:
    found: dict[int, Stream] = field(default_factory=dict)  # id(stream) -> stream; it holds the object

    @classmethod
    def capture(cls, namespace: dict[str, Any], skip: frozenset[str] = frozenset()) -> Streams:
        streams = cls()
        for path, value in _walk(namespace, skip):
            facts = _facts(type(value))
            kind = facts.generator
            state: GeneratorState | Position | None
            if kind is not None:
                state = GeneratorState.read(value)
            else:
                kind = iterator_kind(value) if facts.iterator else None
                if kind is None:
                    continue
                state = position(value)
            streams.found[id(value)] = Stream(value, path, kind, state)
        return streams

    def rewind_to(self, start: Streams | None, names: set[str]) -> list[str]:
        """Set every stream found now back to where ``start`` found it. Returns, in words, those
        below ``names`` that could not be: one that ran out since, one not seen then."""
        missed = []
        for key, now in self.found.items():
            if now.state is None:
                continue  # cannot be set back at all: cannot_rewind() tells
            then = start.found.get(key) if start is not None else None
            state = then.state if then is not None and then.value is now.value else None
            if (state is None or not state.put_back()) and _root(now.path) in names:
                missed.append(now.describe())
        return missed

    def put_back(self) -> None:
        """Every stream back to where it stood when this was captured."""
        for stream in self.found.values():
            if stream.state is not None:
                stream.state.put_back()

    def cannot_rewind(self, names: set[str]) -> list[str]:
        """The streams below ``names`` that cannot be set back, in words."""
        return [s.describe() for s in self.found.values() if s.state is None and _root(s.path) in names]


def _root(path: str) -> str:
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    """What ``value`` holds, as (path suffix, child)."""
    if isinstance(value, dict):
        for key, item in itertools.islice(value.items(), MAX_ITEMS):
            yield f"[{key!r}]" if isinstance(key, (str, int)) else "[...]", item
    elif isinstance(value, (list, tuple, set, frozenset, deque)):
        for index, item in enumerate(itertools.islice(value, MAX_ITEMS)):
            yield f"[{index}]", item
    elif isinstance(value, torch.nn.Module):
        # the attributes of the user's own modules (torch's hold none of theirs) and submodules
        if not type(value).__module__.startswith("torch."):
            for name, item in vars(value).items():
                if not name.startswith("_"):
                    yield f".{name}", item
        for name, module in value._modules.items():
            yield f".{name}", module
    elif _facts(type(value)).iterator:
        dataset = getattr(value, "_dataset", None)  # a DataLoader iterator's dataset may hold a generator
        if dataset is not None:
            yield "._dataset", dataset
    else:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict) and not type(value).__module__.startswith(("IPython", "ipykernel")):
            for name, item in list(attributes.items()):
                yield f".{name}", item


def _walk(namespace: dict[str, Any], skip: frozenset[str]) -> Iterator[tuple[str, Any]]:
    """(path, object) for each object below the namespace's names, breadth first, each once."""
    seen: set[int] = set()
    queue = deque((name, value, 0) for name, value in list(namespace.items()) if name not in skip)
    while queue and len(seen) < MAX_OBJECTS:
        path, value, depth = queue.popleft()
        facts = _facts(type(value))
        if facts.skipped or id(value) in seen:
            continue
        seen.add(id(value))
        yield path, value
        if depth < MAX_DEPTH and facts.generator is None:
            # tested before a path is made for it: most children are numbers, strings, tensors
            queue.extend(
                (path + suffix, child, depth + 1)
                for suffix, child in _children(value)
                if not _facts(type(child)).skipped
            )
